// Floating-point and vector state across signal handlers. The main code holds values in
// xmm0-15 (and ymm0-15 with AVX), the x87 stack, MXCSR and the x87 control word across a
// tgkill syscall whose signal is delivered on the way back; the handler clobbers all of
// them and does float math; everything is intact after sigreturn. The handler starts with
// a fresh FP state (default rounding), sees the interrupted values in the frame's fpregs,
// and changes xmm1 there, which takes effect at sigreturn. Nested handlers too.
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "check.h"

static uint32_t get_mxcsr(void) {
    uint32_t m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    return m;
}

static void set_mxcsr(uint32_t m) { __asm__ volatile("ldmxcsr %0" ::"m"(m)); }

static uint16_t get_fcw(void) {
    uint16_t c;
    __asm__ volatile("fnstcw %0" : "=m"(c));
    return c;
}

static void set_fcw(uint16_t c) { __asm__ volatile("fldcw %0" ::"m"(c)); }

static void clobber_xmm(void) {
    __asm__ volatile("pcmpeqd %%xmm0, %%xmm0\n\t"
                     "movdqa %%xmm0, %%xmm1\n\tmovdqa %%xmm0, %%xmm2\n\tmovdqa %%xmm0, %%xmm3\n\t"
                     "movdqa %%xmm0, %%xmm4\n\tmovdqa %%xmm0, %%xmm5\n\tmovdqa %%xmm0, %%xmm6\n\t"
                     "movdqa %%xmm0, %%xmm7\n\tmovdqa %%xmm0, %%xmm8\n\tmovdqa %%xmm0, %%xmm9\n\t"
                     "movdqa %%xmm0, %%xmm10\n\tmovdqa %%xmm0, %%xmm11\n\tmovdqa %%xmm0, %%xmm12\n\t"
                     "movdqa %%xmm0, %%xmm13\n\tmovdqa %%xmm0, %%xmm14\n\tmovdqa %%xmm0, %%xmm15\n\t" ::
                         : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
                           "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

__attribute__((target("avx"))) static void clobber_ymm(void) {
    __asm__ volatile("vpcmpeqd %%ymm0, %%ymm0, %%ymm0\n\t"
                     "vmovdqa %%ymm0, %%ymm1\n\tvmovdqa %%ymm0, %%ymm7\n\tvmovdqa %%ymm0, %%ymm15\n\t" ::
                         : "xmm0", "xmm1", "xmm7", "xmm15");
}

static volatile int have_avx;
static volatile int h_count;
static volatile uint32_t h_mxcsr_live, h_mxcsr_frame;
static volatile uint16_t h_fcw_live;
static volatile int h_xmm0_in_frame, h_xstate_flag, h_magic1, h_magic2;
static volatile double h_math;
static volatile int nested_mode, nested_ok;

static void inner(int sig) {
    (void)sig;
    clobber_xmm();
    set_mxcsr(0x1f80 | 0x4000); /* round down */
    if (have_avx) clobber_ymm();
}

static void handler(int sig, siginfo_t *si, void *ucv) {
    (void)sig, (void)si;
    ucontext_t *uc = ucv;
    h_count++;
    h_mxcsr_live = get_mxcsr();
    h_fcw_live = get_fcw();
    struct _libc_fpstate *fp = uc->uc_mcontext.fpregs;
    h_mxcsr_frame = fp->mxcsr;
    h_xmm0_in_frame = fp->_xmm[0].element[0] == 0x01010101 && fp->_xmm[0].element[3] == 0x01010101;
    h_xstate_flag = (uc->uc_flags & 1) != 0; /* UC_FP_XSTATE */
    uint32_t *sw = (uint32_t *)((char *)fp + 464); /* struct _fpx_sw_bytes */
    h_magic1 = sw[0] == 0x46505853;                /* FP_XSTATE_MAGIC1 */
    h_magic2 = h_magic1 && *(uint32_t *)((char *)fp + sw[1] - 4) == 0x46505845; /* MAGIC2 at extended_size */
    /* Change xmm1 in the frame: sigreturn loads it. */
    for (int i = 0; i < 4; i++) fp->_xmm[1].element[i] = 0xdeadbeef;
    /* Now wreck the live state. */
    volatile double d = 1.0;
    for (int i = 0; i < 50; i++) d = d * 1.0001 + 0.5 / (i + 1);
    h_math = d;
    clobber_xmm();
    if (have_avx) clobber_ymm();
    set_mxcsr(0x1f80 | 0x2000); /* round up */
    set_fcw(0x037f | 0x0800);   /* x87 round up */
    __asm__ volatile("fldpi\n\tfldpi\n\tfldpi\n\tfstp %%st(0)\n\tfstp %%st(0)\n\tfstp %%st(0)" ::: "st");
    if (nested_mode) {
        /* Our own xmm values survive a nested handler. */
        double keep = 2.5, after = 0;
        long rax = SYS_tgkill;
        long pid = getpid(), tid = gettid(), sig = SIGUSR2;
        __asm__ volatile("movsd %[k], %%xmm6\n\t"
                         "syscall\n\t"
                         "movsd %%xmm6, %[a]\n\t"
                         : "+a"(rax), [a] "=m"(after)
                         : [k] "m"(keep), "D"(pid), "S"(tid), "d"(sig)
                         : "rcx", "r11", "memory", "xmm6");
        nested_ok = rax == 0 && after == 2.5;
    }
}

static uint8_t in_x[16][16] __attribute__((aligned(16))), out_x[16][16] __attribute__((aligned(16)));
static uint8_t in_y[16][32] __attribute__((aligned(32))), out_y[16][32] __attribute__((aligned(32)));

static long signal_self_xmm(void) {
    long rax = SYS_tgkill;
    long pid = getpid(), tid = gettid(), sig = SIGUSR1;
    __asm__ volatile(
        "movdqu 0(%[in]), %%xmm0\n\tmovdqu 16(%[in]), %%xmm1\n\tmovdqu 32(%[in]), %%xmm2\n\t"
        "movdqu 48(%[in]), %%xmm3\n\tmovdqu 64(%[in]), %%xmm4\n\tmovdqu 80(%[in]), %%xmm5\n\t"
        "movdqu 96(%[in]), %%xmm6\n\tmovdqu 112(%[in]), %%xmm7\n\tmovdqu 128(%[in]), %%xmm8\n\t"
        "movdqu 144(%[in]), %%xmm9\n\tmovdqu 160(%[in]), %%xmm10\n\tmovdqu 176(%[in]), %%xmm11\n\t"
        "movdqu 192(%[in]), %%xmm12\n\tmovdqu 208(%[in]), %%xmm13\n\tmovdqu 224(%[in]), %%xmm14\n\t"
        "movdqu 240(%[in]), %%xmm15\n\t"
        "syscall\n\t"
        "movdqu %%xmm0, 0(%[out])\n\tmovdqu %%xmm1, 16(%[out])\n\tmovdqu %%xmm2, 32(%[out])\n\t"
        "movdqu %%xmm3, 48(%[out])\n\tmovdqu %%xmm4, 64(%[out])\n\tmovdqu %%xmm5, 80(%[out])\n\t"
        "movdqu %%xmm6, 96(%[out])\n\tmovdqu %%xmm7, 112(%[out])\n\tmovdqu %%xmm8, 128(%[out])\n\t"
        "movdqu %%xmm9, 144(%[out])\n\tmovdqu %%xmm10, 160(%[out])\n\tmovdqu %%xmm11, 176(%[out])\n\t"
        "movdqu %%xmm12, 192(%[out])\n\tmovdqu %%xmm13, 208(%[out])\n\tmovdqu %%xmm14, 224(%[out])\n\t"
        "movdqu %%xmm15, 240(%[out])\n\t"
        : "+a"(rax)
        : [in] "r"(in_x), [out] "r"(out_x), "D"(pid), "S"(tid), "d"(sig)
        : "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    return rax;
}

__attribute__((target("avx"))) static long signal_self_ymm(void) {
    long rax = SYS_tgkill;
    long pid = getpid(), tid = gettid(), sig = SIGUSR1;
    __asm__ volatile(
        "vmovdqu 0(%[in]), %%ymm0\n\tvmovdqu 32(%[in]), %%ymm1\n\tvmovdqu 64(%[in]), %%ymm2\n\t"
        "vmovdqu 96(%[in]), %%ymm3\n\tvmovdqu 128(%[in]), %%ymm4\n\tvmovdqu 160(%[in]), %%ymm5\n\t"
        "vmovdqu 192(%[in]), %%ymm6\n\tvmovdqu 224(%[in]), %%ymm7\n\tvmovdqu 256(%[in]), %%ymm8\n\t"
        "vmovdqu 288(%[in]), %%ymm9\n\tvmovdqu 320(%[in]), %%ymm10\n\tvmovdqu 352(%[in]), %%ymm11\n\t"
        "vmovdqu 384(%[in]), %%ymm12\n\tvmovdqu 416(%[in]), %%ymm13\n\tvmovdqu 448(%[in]), %%ymm14\n\t"
        "vmovdqu 480(%[in]), %%ymm15\n\t"
        "syscall\n\t"
        "vmovdqu %%ymm0, 0(%[out])\n\tvmovdqu %%ymm1, 32(%[out])\n\tvmovdqu %%ymm2, 64(%[out])\n\t"
        "vmovdqu %%ymm3, 96(%[out])\n\tvmovdqu %%ymm4, 128(%[out])\n\tvmovdqu %%ymm5, 160(%[out])\n\t"
        "vmovdqu %%ymm6, 192(%[out])\n\tvmovdqu %%ymm7, 224(%[out])\n\tvmovdqu %%ymm8, 256(%[out])\n\t"
        "vmovdqu %%ymm9, 288(%[out])\n\tvmovdqu %%ymm10, 320(%[out])\n\tvmovdqu %%ymm11, 352(%[out])\n\t"
        "vmovdqu %%ymm12, 384(%[out])\n\tvmovdqu %%ymm13, 416(%[out])\n\tvmovdqu %%ymm14, 448(%[out])\n\t"
        "vmovdqu %%ymm15, 480(%[out])\n\t"
        "vzeroupper\n\t"
        : "+a"(rax)
        : [in] "r"(in_y), [out] "r"(out_y), "D"(pid), "S"(tid), "d"(sig)
        : "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    return rax;
}

static long double signal_self_x87(long double v) {
    long double out;
    long rax = SYS_tgkill;
    long pid = getpid(), tid = gettid(), sig = SIGUSR1;
    __asm__ volatile("fldt %[v]\n\t"
                     "syscall\n\t"
                     "fstpt %[o]\n\t"
                     : "+a"(rax), [o] "=m"(out)
                     : [v] "m"(v), "D"(pid), "S"(tid), "d"(sig)
                     : "rcx", "r11", "memory");
    return out;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    __builtin_cpu_init();
    have_avx = __builtin_cpu_supports("avx");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = inner;
    sigaction(SIGUSR2, &sa, NULL);

    for (int r = 0; r < 16; r++)
        for (int b = 0; b < 16; b++) in_x[r][b] = (uint8_t)(r + 1);
    /* Main's rounding: toward zero in MXCSR and the x87 control word; a sticky flag. */
    uint32_t main_mxcsr = 0x1f80 | 0x6000 | 0x0004; /* RZ and the divide-by-zero flag */
    set_mxcsr(main_mxcsr);
    uint16_t main_fcw = 0x037f | 0x0c00; /* x87 round toward zero */
    set_fcw(main_fcw);

    long r = signal_self_xmm();
    uint32_t mx_after = get_mxcsr();
    uint16_t fcw_after = get_fcw();
    set_mxcsr(0x1f80);
    set_fcw(0x037f);
    check("tgkill returned 0 and the handler ran once", r == 0 && h_count == 1);
    int same = 1;
    for (int i = 0; i < 16; i++)
        if (i != 1 && memcmp(in_x[i], out_x[i], 16)) same = 0;
    check("xmm0 and xmm2-15 intact after the handler clobbered them", same);
    uint32_t x1[4];
    memcpy(x1, out_x[1], 16);
    check("xmm1 is the value the handler wrote into the frame's fpregs",
          x1[0] == 0xdeadbeef && x1[1] == 0xdeadbeef && x1[2] == 0xdeadbeef && x1[3] == 0xdeadbeef);
    printf("MXCSR after the handler: %#x (before: %#x)\n", mx_after, main_mxcsr);
    printf("x87 control word after the handler: %#x (before: %#x)\n", fcw_after, main_fcw);
    printf("handler started with MXCSR %#x and x87 control word %#x\n", h_mxcsr_live, h_fcw_live);
    check("the frame's fpregs held the interrupted MXCSR", h_mxcsr_frame == main_mxcsr);
    check("the frame's fpregs held the interrupted xmm0", h_xmm0_in_frame);
    printf("uc_flags has UC_FP_XSTATE: %s\n", h_xstate_flag ? "yes" : "no");
    printf("fpregs carries the xstate magic numbers: %s\n", h_magic1 && h_magic2 ? "yes" : "no");
    check("the handler's float math ran", h_math > 1.0);

    /* The x87 register stack. */
    long double ld = 1.0L / 3.0L;
    long double back = signal_self_x87(ld);
    check("an x87 stack value survives the handler", back == ld && h_count == 2);

    /* ymm upper halves. */
    if (have_avx) {
        for (int i = 0; i < 16; i++)
            for (int b = 0; b < 32; b++) in_y[i][b] = (uint8_t)(i * 7 + b);
        r = signal_self_ymm();
        int ysame = 1;
        for (int i = 0; i < 16; i++)
            if (i != 1 && memcmp(in_y[i], out_y[i], 32)) ysame = 0;
        /* xmm1 (the low half of ymm1) was changed by the handler; its upper half was not. */
        if (memcmp(in_y[1] + 16, out_y[1] + 16, 16)) ysame = 0;
        check("ymm0-15 intact (or no AVX)", r == 0 && ysame);
    } else {
        check("ymm0-15 intact (or no AVX)", 1);
    }

    /* A nested handler does not disturb the outer handler's registers. */
    nested_mode = 1;
    raise(SIGUSR1);
    check("outer handler's xmm6 intact across a nested handler", nested_ok);

    /* Plain C doubles across a signal. */
    volatile double a = 1.5, b = 2.25;
    double c = a * b;
    raise(SIGUSR1);
    check("C doubles intact", c == 3.375 && a * b == c);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
