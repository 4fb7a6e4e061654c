/* A 32-bit system call from a 64-bit program. The sandbox is a Linux without IA32
 * emulation: `int 0x80` raises a general protection fault (SIGSEGV, SI_KERNEL, at the
 * instruction) and is never taken for the 64-bit call of the same number (20 is
 * getpid for i386 and writev for x86-64; 4 is write and stat). Only run in the
 * sandbox: the host may well have IA32 emulation. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

static sigjmp_buf back;
static volatile int code;
static volatile unsigned long fault_ip;

static void on_segv(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    ucontext_t *uc = ucv;
    code = si->si_code;
    fault_ip = uc->uc_mcontext.gregs[REG_RIP];
    siglongjmp(back, 1);
}

extern const char int80_insn[];

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    static const char msg[] = "written by int 0x80\n";
    if (sigsetjmp(back, 1) == 0) {
        long r;
        __asm__ volatile(".globl int80_insn\nint80_insn: int $0x80"
                         : "=a"(r)
                         : "a"(4L), "b"(1L), "c"(msg), "d"((long)sizeof msg - 1), "D"(1L), "S"(msg)
                         : "memory");
        printf("int 0x80 returned %ld\n", r);
        return 1;
    }
    printf("SIGSEGV, si_code %d (SI_KERNEL %d), at the instruction: %s\n", code, SI_KERNEL,
           fault_ip == (unsigned long)int80_insn ? "yes" : "no");
    return 0;
}
