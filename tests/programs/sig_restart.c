// SA_RESTART: wait4 interrupted by a handled signal is restarted with SA_RESTART and fails
// with EINTR without it. A child sends SIGUSR1 repeatedly until the parent's handler has
// seen, in its ucontext, that it interrupted the wait4 (REG_RIP at the syscall instruction
// and REG_RAX the syscall number when it will be restarted; REG_RIP after it and REG_RAX
// -EINTR when not), and then exits. wait4 is issued by inline assembly so that the address
// of its syscall instruction is known. Also: a stop and continue, and an ignored signal,
// never interrupt wait4.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "check.h"

static atomic_int *shm;
static volatile uintptr_t syscall_insn;
static volatile int handled, saw_restart_frame, saw_eintr_frame, saw_other;

static long raw_wait4(pid_t pid, int *st) {
    long rax = SYS_wait4;
    register long r10 __asm__("r10") = 0;
    __asm__ volatile("leaq 1f(%%rip), %%rcx\n\t"
                     "movq %%rcx, %[ins]\n\t"
                     "1: syscall\n\t"
                     : "+a"(rax), [ins] "=m"(syscall_insn)
                     : "D"((long)pid), "S"(st), "d"(0L), "r"(r10)
                     : "rcx", "r11", "memory");
    return rax;
}

static void handler(int sig, siginfo_t *si, void *ucv) {
    (void)sig, (void)si;
    ucontext_t *uc = ucv;
    uintptr_t rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    long rax = uc->uc_mcontext.gregs[REG_RAX];
    handled++;
    if (rip == syscall_insn && rax == SYS_wait4) saw_restart_frame = 1;
    else if (rip == syscall_insn + 2 && rax == -EINTR) saw_eintr_frame = 1;
    else saw_other = 1;
    if (saw_restart_frame || saw_eintr_frame) atomic_store(&shm[0], 1);
}

static void one(int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    handled = saw_restart_frame = saw_eintr_frame = saw_other = 0;
    shm[0] = 0;
    pid_t parent = getpid();
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        /* Signal until the parent saw an interrupted wait4 (bounded, never a hang). */
        for (long i = 0; i < 2000000 && atomic_load(&shm[0]) == 0; i++) {
            kill(parent, SIGUSR1);
            sched_yield();
        }
        _exit(5);
    }
    int st = 0, eintr = 0;
    long r;
    for (;;) {
        r = raw_wait4(c, &st);
        if (r != -EINTR) break;
        eintr++;
        atomic_store(&shm[0], 1);
    }
    const char *name = flags & SA_RESTART ? "SA_RESTART" : "no SA_RESTART";
    printf("%s: wait4 returned EINTR: %s\n", name, eintr ? "yes" : "no");
    printf("%s: wait4 finally returned the child with status %d: %s\n", name, WEXITSTATUS(st), r == c ? "yes" : "no");
    printf("%s: handler saw the syscall rewound for restart: %s\n", name, saw_restart_frame ? "yes" : "no");
    printf("%s: handler saw it completed with -EINTR: %s\n", name, saw_eintr_frame ? "yes" : "no");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    one(SA_RESTART);
    one(0);
    errno = 0;
    long rr = syscall(SYS_restart_syscall);
    printf("restart_syscall with nothing to restart: %ld %s\n", rr, strerrorname_np(errno));

    /* Stops, continues and ignored signals are invisible to a waiting wait4. */
    shm[1] = 0;
    signal(SIGUSR2, SIG_IGN); /* inherited by the child */
    fflush(stdout);
    pid_t c1 = fork();
    if (c1 == 0) {
        pid_t g = fork();
        if (g == 0) {
            int v;
            while ((v = atomic_load(&shm[1])) == 0) syscall(SYS_futex, &shm[1], FUTEX_WAIT, v, NULL, NULL, 0);
            _exit(6);
        }
        int st;
        long r = raw_wait4(g, &st);
        _exit(r == g && WIFEXITED(st) && WEXITSTATUS(st) == 6 ? 0 : 1);
    }
    int st, stops = 0;
    for (int i = 0; i < 20; i++) {
        kill(c1, SIGSTOP);
        if (waitpid(c1, &st, WUNTRACED) == c1 && WIFSTOPPED(st)) stops++;
        kill(c1, SIGCONT);
        waitpid(c1, &st, WCONTINUED);
        kill(c1, SIGUSR2);
    }
    signal(SIGUSR2, SIG_DFL);
    atomic_store(&shm[1], 1);
    syscall(SYS_futex, &shm[1], FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    check("child stopped and continued 20 times", stops == 20);
    check("its wait4 was never interrupted: it returned the grandchild",
          waitpid(c1, &st, 0) == c1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
