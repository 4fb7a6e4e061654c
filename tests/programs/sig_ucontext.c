// The ucontext a handler receives, and changes to it taking effect at sigreturn.
//   (no argument) SIGSEGV on a write to a PROT_READ page: si_code SEGV_ACCERR, si_addr the
//                 exact address, REG_RIP the faulting instruction (a known 6-byte encoding);
//                 the handler adds 6 to REG_RIP and sets REG_RCX, and execution continues
//                 after the instruction with the new RCX. SEGV_MAPERR for unmapped and NULL
//                 addresses, PROT_NONE reads, a call into a non-executable page (the
//                 handler returns from it by popping the return address). A handler that
//                 changes REG_RAX after a syscall changes the syscall's result, and one that
//                 changes uc_sigmask changes the mask restored by sigreturn.
//   regs          the trap number, page-fault error code and CR2 in the mcontext.
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "check.h"

static volatile int h_count, h_signo, h_code;
static volatile uintptr_t h_addr, h_rip, h_err, h_trapno, h_cr2;
static volatile int mode_skip = 1; /* 1: skip 6 bytes; 2: return from a call */

static void on_segv(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    h_count++;
    h_signo = sig;
    h_code = si->si_code;
    h_addr = (uintptr_t)si->si_addr;
    h_rip = (uintptr_t)g[REG_RIP];
    h_err = (uintptr_t)g[REG_ERR];
    h_trapno = (uintptr_t)g[REG_TRAPNO];
    h_cr2 = (uintptr_t)g[REG_CR2];
    if (mode_skip == 1) {
        g[REG_RIP] += 6; /* movl $1, (%rax) is c7 00 01 00 00 00 */
        g[REG_RCX] = 0x1234567;
    } else {
        /* We were called: return to the caller as a ret would. */
        uintptr_t *sp = (uintptr_t *)g[REG_RSP];
        g[REG_RIP] = (greg_t)sp[0];
        g[REG_RSP] += 8;
    }
}

static volatile uintptr_t insn_addr;

/* Writes 1 to *p with the 6-byte instruction; returns RCX after it (7 unless changed). */
static uintptr_t faulting_write(void *p) {
    uintptr_t rcx;
    __asm__ volatile("leaq 1f(%%rip), %%rdx\n\t"
                     "movq %%rdx, %1\n\t"
                     "movq $7, %%rcx\n\t"
                     "1: movl $1, (%%rax)\n\t"
                     "movq %%rcx, %0\n\t"
                     : "=r"(rcx), "=m"(insn_addr)
                     : "a"(p)
                     : "rcx", "rdx", "memory");
    return rcx;
}

/* Reads *p with the 6-byte instruction cmpl $1, (%rax) (83 38 01 is 3 bytes: use a 6-byte
   form: 81 38 01 00 00 00). */
static uintptr_t faulting_read(void *p) {
    uintptr_t rcx;
    __asm__ volatile("leaq 1f(%%rip), %%rdx\n\t"
                     "movq %%rdx, %1\n\t"
                     "movq $7, %%rcx\n\t"
                     "1: .byte 0x81, 0x38, 0x01, 0x00, 0x00, 0x00\n\t" /* cmpl $1, (%rax) */
                     "movq %%rcx, %0\n\t"
                     : "=r"(rcx), "=m"(insn_addr)
                     : "a"(p)
                     : "rcx", "rdx", "memory", "cc");
    return rcx;
}

static const char *segv_code(int c) {
    return c == SEGV_MAPERR ? "SEGV_MAPERR" : c == SEGV_ACCERR ? "SEGV_ACCERR" : "other";
}

static void reset(void) {
    h_count = 0;
    h_signo = 0;
    h_code = 0;
    h_addr = h_rip = 0;
}

static void fault_case(const char *what, void *target, int write) {
    reset();
    mode_skip = 1;
    uintptr_t rcx = write ? faulting_write(target) : faulting_read(target);
    printf("%s: handler ran %d time(s), signal %d, %s\n", what, h_count, h_signo, segv_code(h_code));
    char buf[160];
    snprintf(buf, sizeof buf, "%s: si_addr is the accessed address", what);
    check(buf, h_addr == (uintptr_t)target);
    snprintf(buf, sizeof buf, "%s: REG_RIP is the faulting instruction", what);
    check(buf, h_rip == insn_addr);
    snprintf(buf, sizeof buf, "%s: execution resumed after it with the handler's RCX", what);
    check(buf, rcx == 0x1234567);
}

static volatile int usr1_count;
static volatile long usr1_rax_seen;

static void on_usr1(int sig, siginfo_t *si, void *ucv) {
    (void)sig, (void)si;
    ucontext_t *uc = ucv;
    usr1_count++;
    usr1_rax_seen = uc->uc_mcontext.gregs[REG_RAX];
    uc->uc_mcontext.gregs[REG_RAX] = 4242;      /* the syscall's "result" */
    sigaddset(&uc->uc_sigmask, SIGUSR2);         /* the mask sigreturn restores */
}

static void mode_main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);

    char *ro = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ro[0] = 0;
    mprotect(ro, 8192, PROT_READ);
    fault_case("write to a PROT_READ page", ro, 1);
    const unsigned char enc[] = {0xc7, 0x00, 0x01, 0x00, 0x00, 0x00};
    check("the faulting instruction is c7 00 01 00 00 00", insn_addr && memcmp((const void *)insn_addr, enc, 6) == 0);
    check("the write did not happen", ro[0] == 0);
    fault_case("write at an odd offset in a PROT_READ page", ro + 4096 + 123, 1);

    char *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, 4096);
    fault_case("write to an unmapped page", gone + 8, 1);
    fault_case("read of an unmapped page", gone + 16, 0);
    fault_case("write to NULL", NULL, 1);

    char *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fault_case("read of a PROT_NONE page", none + 100, 0);
    fault_case("write to a PROT_NONE page", none + 200, 1);

    /* A call into a page that is not executable. */
    unsigned char *nx = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    nx[0] = 0xc3; /* ret, were it executable */
    reset();
    mode_skip = 2;
    ((void (*)(void))nx)();
    printf("call into a non-executable page: handler ran %d time(s), %s\n", h_count, segv_code(h_code));
    check("si_addr and REG_RIP are the page", h_addr == (uintptr_t)nx && h_rip == (uintptr_t)nx);
    mode_skip = 1;

    /* Changing the interrupted syscall's return value and the restored mask. */
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    long ret;
    long pid = getpid();
    __asm__ volatile("syscall" : "=a"(ret) : "0"((long)SYS_kill), "D"(pid), "S"((long)SIGUSR1) : "rcx", "r11", "memory");
    check("SIGUSR1 delivered on return from kill", usr1_count == 1);
    check("the handler saw kill's result (0) in REG_RAX", usr1_rax_seen == 0);
    printf("kill returned %ld after the handler set REG_RAX to 4242\n", ret);
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    check("SIGUSR2 blocked after sigreturn (added to uc_sigmask by the handler)", sigismember(&cur, SIGUSR2));
    check("SIGUSR1 not blocked after sigreturn", !sigismember(&cur, SIGUSR1));
}

static void mode_regs(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    char *ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ro[0] = 0;
    mprotect(ro, 4096, PROT_READ);
    char *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, 4096);

    reset();
    faulting_write(ro + 8);
    printf("write to a present read-only page: trapno %lu, error code %#lx, cr2 == address: %s\n",
           (unsigned long)h_trapno, (unsigned long)h_err, h_cr2 == (uintptr_t)(ro + 8) ? "yes" : "no");
    reset();
    faulting_write(gone + 8);
    printf("write to an unmapped page: trapno %lu, error code %#lx, cr2 == address: %s\n", (unsigned long)h_trapno,
           (unsigned long)h_err, h_cr2 == (uintptr_t)(gone + 8) ? "yes" : "no");
    reset();
    faulting_read(gone + 8);
    printf("read of an unmapped page: trapno %lu, error code %#lx, cr2 == address: %s\n", (unsigned long)h_trapno,
           (unsigned long)h_err, h_cr2 == (uintptr_t)(gone + 8) ? "yes" : "no");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "regs")) mode_regs();
    else mode_main();
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
