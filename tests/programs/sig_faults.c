// Synchronous faults, each caught by an SA_SIGINFO handler that records si_signo, si_code,
// si_addr and REG_RIP and leaves with siglongjmp: SIGSEGV (unmapped, read-only, a
// privileged instruction), SIGFPE (integer divide by zero, integer overflow of idiv, an
// unmasked SSE divide by zero), SIGILL (ud2), SIGTRAP (int3); with the argument "bus",
// SIGBUS from a misaligned access with EFLAGS.AC set (alignment checking: the host must
// deliver #AC, so this is separate) and raise(SIGBUS). Then, in children, a fault whose signal is blocked
// or ignored still kills (the kernel forces the default action), and a handler that
// returns without fixing the cause faults again: handled twice, then the default.
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "check.h"

static sigjmp_buf jb;
static volatile int h_signo, h_code, h_count;
static volatile uintptr_t h_addr, h_rip;
static volatile uintptr_t insn; /* address of the faulting instruction, set by the asm */

static void handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    /* Clear EFLAGS.AC first: with it set, the handler's own misaligned accesses would fault. */
    __asm__ volatile("pushfq\n\tandq $~0x40000, (%%rsp)\n\tpopfq" ::: "memory", "cc");
    h_count++;
    h_signo = sig;
    h_code = si->si_code;
    h_addr = (uintptr_t)si->si_addr;
    h_rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    siglongjmp(jb, 1);
}

static const char *code_name(int sig, int code) {
    if (code == SI_KERNEL) return "SI_KERNEL";
    if (code == SI_USER) return "SI_USER";
    if (code == SI_TKILL) return "SI_TKILL";
    switch (sig) {
    case SIGSEGV: return code == SEGV_MAPERR ? "SEGV_MAPERR" : code == SEGV_ACCERR ? "SEGV_ACCERR" : "?";
    case SIGFPE:
        return code == FPE_INTDIV ? "FPE_INTDIV" : code == FPE_INTOVF ? "FPE_INTOVF" : code == FPE_FLTDIV ? "FPE_FLTDIV"
             : code == FPE_FLTINV ? "FPE_FLTINV" : "?";
    case SIGILL: return code == ILL_ILLOPN ? "ILL_ILLOPN" : code == ILL_ILLOPC ? "ILL_ILLOPC" : code == ILL_PRVOPC ? "ILL_PRVOPC" : "?";
    case SIGTRAP: return code == TRAP_BRKPT ? "TRAP_BRKPT" : code == TRAP_TRACE ? "TRAP_TRACE" : "?";
    case SIGBUS: return code == BUS_ADRALN ? "BUS_ADRALN" : code == BUS_ADRERR ? "BUS_ADRERR" : "?";
    }
    return "?";
}

static const char *where(uintptr_t a, uintptr_t data) {
    if (a == insn) return "the instruction";
    if (a == insn + 1) return "the instruction + 1";
    if (data && a == data) return "the data address";
    if (a == 0) return "0";
    return "elsewhere";
}

static void report(const char *what, uintptr_t data) {
    printf("%s: handled %d, signal %d, %s, si_addr %s, REG_RIP %s\n", what, h_count, h_signo, code_name(h_signo, h_code),
           where(h_addr, data), where(h_rip, 0));
    h_count = 0;
}

#define FAULT(what, data, body)                                                                                        \
    do {                                                                                                               \
        insn = 0;                                                                                                      \
        if (sigsetjmp(jb, 1) == 0) {                                                                                   \
            body;                                                                                                      \
            printf("%s: no fault\n", what);                                                                            \
        } else {                                                                                                       \
            report(what, (uintptr_t)(data));                                                                           \
        }                                                                                                              \
    } while (0)

static void segv_write(void *p) {
    __asm__ volatile("leaq 1f(%%rip), %%rdx\n\tmovq %%rdx, %0\n\t1: movl $1, (%%rax)" : "=m"(insn) : "a"(p) : "rdx", "memory");
}

static void priv_insn(void) {
    __asm__ volatile("leaq 1f(%%rip), %%rdx\n\tmovq %%rdx, %0\n\t1: hlt" : "=m"(insn) : : "rdx", "memory");
}

static void div_zero(void) {
    __asm__ volatile("leaq 1f(%%rip), %%rdx\n\tmovq %%rdx, %0\n\t"
                     "xorl %%ecx, %%ecx\n\tmovl $1, %%eax\n\tcltd\n\t1: idivl %%ecx"
                     : "=m"(insn) : : "rax", "rcx", "rdx", "memory", "cc");
}

static void div_overflow(void) {
    __asm__ volatile("leaq 1f(%%rip), %%rdx\n\tmovq %%rdx, %0\n\t"
                     "movl $-1, %%ecx\n\tmovl $0x80000000, %%eax\n\tcltd\n\t1: idivl %%ecx"
                     : "=m"(insn) : : "rax", "rcx", "rdx", "memory", "cc");
}

static void sse_div_zero(void) {
    static const double one = 1.0, zero = 0.0;
    uint32_t unmasked = 0x1f80 & ~0x200; /* unmask divide-by-zero */
    __asm__ volatile("ldmxcsr %1\n\t"
                     "movsd %2, %%xmm0\n\t"
                     "leaq 1f(%%rip), %%rdx\n\tmovq %%rdx, %0\n\t"
                     "1: divsd %3, %%xmm0\n\t"
                     : "=m"(insn) : "m"(unmasked), "m"(one), "m"(zero) : "rdx", "xmm0", "memory");
}

static void ud2(void) {
    __asm__ volatile("leaq 1f(%%rip), %%rdx\n\tmovq %%rdx, %0\n\t1: ud2" : "=m"(insn) : : "rdx", "memory");
}

static void int3(void) {
    __asm__ volatile("leaq 1f(%%rip), %%rdx\n\tmovq %%rdx, %0\n\t1: int3\n\tnop" : "=m"(insn) : : "rdx", "memory");
}

static void misaligned(void *p) {
    __asm__ volatile("leaq 1f(%%rip), %%rdx\n\tmovq %%rdx, %0\n\t"
                     "pushfq\n\torq $0x40000, (%%rsp)\n\tpopfq\n\t"
                     "1: movl (%%rax), %%ecx\n\t"
                     "pushfq\n\tandq $~0x40000, (%%rsp)\n\tpopfq\n\t"
                     : "=m"(insn) : "a"(p) : "rcx", "rdx", "memory", "cc");
}

static void install(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static const char *status(int st) {
    static char b[64];
    if (WIFEXITED(st)) snprintf(b, sizeof b, "exited %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(b, sizeof b, "killed by signal %d", WTERMSIG(st));
    else snprintf(b, sizeof b, "raw %#x", st);
    return b;
}

static volatile int returning_count;

static void returning_handler(int sig) {
    (void)sig;
    if (++returning_count == 2) signal(SIGSEGV, SIG_DFL); /* the third fault kills */
}

static void mode_bus(void) {
    static char buf[16] __attribute__((aligned(16)));
    FAULT("misaligned load with EFLAGS.AC set", buf + 1, misaligned(buf + 1));
    h_count = 0;
    if (sigsetjmp(jb, 1) == 0) {
        raise(SIGBUS);
        printf("raise(SIGBUS): no signal\n");
    } else {
        /* si_addr overlaps si_pid/si_uid here: not printed. */
        printf("raise(SIGBUS): handled %d, signal %d, %s\n", h_count, h_signo, code_name(h_signo, h_code));
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) install(sigs[i]);
    if (argc > 1 && !strcmp(argv[1], "bus")) {
        mode_bus();
        printf("%s\n", failures ? "FAILED" : "all ok");
        return failures ? 1 : 0;
    }

    char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *gone = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, 4096); /* after mapping ro, so that ro cannot reuse it */
    FAULT("write to an unmapped page", gone + 12, segv_write(gone + 12));
    FAULT("write to a read-only page", ro + 12, segv_write(ro + 12));
    FAULT("hlt (privileged)", 0, priv_insn());
    FAULT("integer divide by zero", 0, div_zero());
    FAULT("INT_MIN / -1", 0, div_overflow());
    FAULT("SSE divide by zero, unmasked", 0, sse_div_zero());
    uint32_t mx = 0x1f80;
    __asm__ volatile("ldmxcsr %0" ::"m"(mx));
    FAULT("ud2", 0, ud2());
    FAULT("int3", 0, int3());

    sigset_t m;
    sigprocmask(SIG_BLOCK, NULL, &m);
    check("siglongjmp restored the mask: nothing blocked", !sigismember(&m, SIGSEGV) && !sigismember(&m, SIGFPE));

    /* A blocked or ignored fault signal still kills. */
    int st;
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGSEGV);
        sigprocmask(SIG_BLOCK, &s, NULL);
        segv_write(gone);
        _exit(0);
    }
    waitpid(c, &st, 0);
    printf("fault with SIGSEGV blocked (and a handler): %s\n", status(st));
    fflush(stdout);
    c = fork();
    if (c == 0) {
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        signal(SIGFPE, SIG_IGN);
        div_zero();
        _exit(0);
    }
    waitpid(c, &st, 0);
    printf("divide by zero with SIGFPE ignored: %s\n", status(st));
    fflush(stdout);
    c = fork();
    if (c == 0) {
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        signal(SIGSEGV, returning_handler);
        segv_write(gone);
        _exit(0);
    }
    waitpid(c, &st, 0);
    printf("a SIGSEGV handler that returns twice, then SIG_DFL: %s\n", status(st));

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
