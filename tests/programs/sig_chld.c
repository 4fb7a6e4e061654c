// SIGCHLD and job control: the siginfo the parent gets (taken with sigtimedwait while
// SIGCHLD is blocked, one state change at a time since SIGCHLD does not queue) for a child
// that exits (CLD_EXITED, si_status the exit code), is killed (CLD_KILLED, the signal;
// dumping is off, so never CLD_DUMPED), stops on SIGSTOP (CLD_STOPPED) and is continued by
// SIGCONT (CLD_CONTINUED); SA_NOCLDSTOP silences stop and continue; an SA_SIGINFO handler
// gets the same fields; a clone child with another exit signal sends that one instead.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static atomic_int *shm;

static void wait_for(atomic_int *addr, int want) {
    int v;
    while ((v = atomic_load(addr)) != want) syscall(SYS_futex, addr, FUTEX_WAIT, v, NULL, NULL, 0);
}

static void set_and_wake(atomic_int *addr, int v) {
    atomic_store(addr, v);
    syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static const char *code(int c) {
    switch (c) {
    case CLD_EXITED: return "CLD_EXITED";
    case CLD_KILLED: return "CLD_KILLED";
    case CLD_DUMPED: return "CLD_DUMPED";
    case CLD_STOPPED: return "CLD_STOPPED";
    case CLD_CONTINUED: return "CLD_CONTINUED";
    case CLD_TRAPPED: return "CLD_TRAPPED";
    default: return "other";
    }
}

static sigset_t chld;

/* sigwaitinfo with a safety net: a missing signal shows as a difference, not a hang. */
static int wait_signal(const sigset_t *set, siginfo_t *si) {
    struct timespec safety = {10, 0};
    int r = sigtimedwait(set, si, &safety);
    if (r < 0) printf("(no signal within 10 s: %s)\n", strerror(errno));
    return r;
}

static void take(const char *what, pid_t expect_pid) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = wait_signal(&chld, &si);
    printf("%s: signal %d, %s, si_status %d, si_pid is the child: %s, si_uid ours: %s\n", what, r, code(si.si_code),
           si.si_status, si.si_pid == expect_pid ? "yes" : "no", si.si_uid == getuid() ? "yes" : "no");
}

static int nothing_pending(void) {
    struct timespec zero = {0, 0};
    siginfo_t si;
    return sigtimedwait(&chld, &si, &zero) == -1 && errno == EAGAIN;
}

static volatile int h_count, h_code, h_status;
static volatile pid_t h_pid;

static void on_chld(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)uc;
    h_count++;
    h_code = si->si_code;
    h_status = si->si_status;
    h_pid = si->si_pid;
}

static int clone_child(void *arg) {
    (void)arg;
    return 4;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int st;

    fflush(stdout);
    pid_t c = fork();
    if (c == 0) _exit(7);
    take("child exits 7", c);
    waitpid(c, &st, 0);

    shm[0] = 0;
    fflush(stdout);
    c = fork();
    if (c == 0) {
        wait_for(&shm[0], 1); /* never set: killed */
        _exit(0);
    }
    kill(c, SIGTERM);
    take("child killed by SIGTERM", c);
    waitpid(c, &st, 0);

    fflush(stdout);
    c = fork();
    if (c == 0) {
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        volatile int *volatile bad = NULL;
        *bad = 1;
        _exit(0);
    }
    take("child faults (SIGSEGV, not dumpable)", c);
    waitpid(c, &st, 0);

    shm[0] = 0;
    fflush(stdout);
    c = fork();
    if (c == 0) {
        kill(getpid(), SIGSTOP);
        wait_for(&shm[0], 1);
        _exit(0);
    }
    take("child stops itself", c);
    waitpid(c, &st, WUNTRACED);
    check("waitpid sees it stopped", WIFSTOPPED(st));
    kill(c, SIGCONT);
    take("parent sends SIGCONT", c);
    waitpid(c, &st, WCONTINUED);
    check("waitpid sees it continued", WIFCONTINUED(st));
    set_and_wake(&shm[0], 1);
    take("then it exits 0", c);
    waitpid(c, &st, 0);

    /* A SIGSTOP sent by the parent to a sleeping child. */
    shm[0] = 0;
    fflush(stdout);
    c = fork();
    if (c == 0) {
        wait_for(&shm[0], 1);
        _exit(0);
    }
    kill(c, SIGSTOP);
    take("parent stops it", c);
    waitpid(c, &st, WUNTRACED);
    kill(c, SIGCONT);
    take("parent continues it", c);
    waitpid(c, &st, WCONTINUED);
    set_and_wake(&shm[0], 1);
    take("it exits", c);
    waitpid(c, &st, 0);

    /* SA_NOCLDSTOP: no SIGCHLD for stop and continue. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    shm[0] = 0;
    fflush(stdout);
    c = fork();
    if (c == 0) {
        kill(getpid(), SIGSTOP);
        wait_for(&shm[0], 1);
        _exit(5);
    }
    waitpid(c, &st, WUNTRACED);
    check("SA_NOCLDSTOP: child stopped", WIFSTOPPED(st));
    check("SA_NOCLDSTOP: no SIGCHLD for the stop", nothing_pending());
    kill(c, SIGCONT);
    waitpid(c, &st, WCONTINUED);
    check("SA_NOCLDSTOP: no SIGCHLD for the continue", nothing_pending());
    set_and_wake(&shm[0], 1);
    take("SA_NOCLDSTOP: the exit is still signalled", c);
    waitpid(c, &st, 0);

    /* The same fields through an SA_SIGINFO handler (SIGCHLD unblocked in sigsuspend). */
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGCHLD, &sa, NULL);
    fflush(stdout);
    c = fork();
    if (c == 0) _exit(9);
    sigset_t none;
    sigemptyset(&none);
    while (h_count == 0) sigsuspend(&none);
    printf("handler: %s, si_status %d, si_pid is the child: %s\n", code(h_code), h_status, h_pid == c ? "yes" : "no");
    waitpid(c, &st, 0);
    signal(SIGCHLD, SIG_DFL);

    /* A clone child whose exit signal is SIGUSR1. */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    size_t sz = 64 * 1024;
    char *stack = malloc(sz);
    fflush(stdout);
    c = clone(clone_child, stack + sz, SIGUSR1, NULL);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = wait_signal(&usr1, &si);
    printf("clone child with exit signal SIGUSR1: signal %d, %s, si_status %d, si_pid is the child: %s\n", r,
           code(si.si_code), si.si_status, si.si_pid == c ? "yes" : "no");
    check("no SIGCHLD for it", nothing_pending());
    check("reaped with __WCLONE", waitpid(c, &st, __WCLONE) == c && WIFEXITED(st) && WEXITSTATUS(st) == 4);
    free(stack);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
