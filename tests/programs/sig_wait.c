// Waiting for signals: sigtimedwait (timeout expiring with EAGAIN, zero timeout, pending
// signal taken at once with its siginfo, EINTR from another handled signal, EINVAL),
// sigwaitinfo for a signal from a child, sigsuspend (temporary mask, EINTR, mask restored)
// and pause (EINTR after a handler). Children that must catch the parent inside a wait
// signal repeatedly until the parent reports it was interrupted; never sleeps.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static atomic_int *shm;
static volatile int handled_usr1, handled_usr2;

static void on_usr1(int sig) {
    (void)sig;
    handled_usr1++;
}

static void on_usr2(int sig) {
    (void)sig;
    handled_usr2++;
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A child that sends `sig` to us until shm[0] is set. */
static pid_t spammer(int sig) {
    shm[0] = 0;
    pid_t parent = getpid();
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        for (long i = 0; i < 2000000 && atomic_load(&shm[0]) == 0; i++) {
            kill(parent, sig);
            sched_yield();
        }
        _exit(0);
    }
    return c;
}

static void stop_spammer(pid_t c) {
    atomic_store(&shm[0], 1);
    waitpid(c, NULL, 0);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, on_usr2);
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old);

    /* Timeouts. */
    siginfo_t si;
    struct timespec t20 = {0, 20 * 1000000L};
    double t0 = mono();
    int r = sigtimedwait(&usr1, &si, &t20);
    int e = errno;
    double el = mono() - t0;
    printf("sigtimedwait, nothing pending, 20 ms: %d %s\n", r, errname(e));
    check("it waited at least 20 ms", el >= 0.020);
    check("and less than 5 s", el < 5);
    struct timespec zero = {0, 0};
    t0 = mono();
    errno = 0;
    r = sigtimedwait(&usr1, &si, &zero);
    printf("sigtimedwait, zero timeout: %d %s\n", r, errname(errno));
    check("returned at once", mono() - t0 < 1);
    struct timespec bad = {0, 1000000000L};
    errno = 0;
    r = sigtimedwait(&usr1, &si, &bad);
    printf("sigtimedwait, tv_nsec = 1e9: %d %s\n", r, errname(errno));
    errno = 0;
    r = (int)syscall(SYS_rt_sigtimedwait, &usr1, &si, &zero, 4);
    printf("rt_sigtimedwait with sigsetsize 4: %d %s\n", r, errname(errno));

    /* A pending signal is taken at once, with its siginfo, and no handler runs. */
    sigqueue(getpid(), SIGUSR1, (union sigval){.sival_int = 31});
    memset(&si, 0, sizeof si);
    r = sigtimedwait(&usr1, &si, &t20);
    printf("sigtimedwait with SIGUSR1 pending: %d, si_code %s, value %d\n", r, si.si_code == SI_QUEUE ? "SI_QUEUE" : "other",
           si.si_value.sival_int);
    check("no handler ran", handled_usr1 == 0);

    /* sigwaitinfo for a signal from a child. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    memset(&si, 0, sizeof si);
    r = sigwaitinfo(&usr1, &si);
    check("sigwaitinfo returns SIGUSR1 sent by the child", r == SIGUSR1);
    check("si_pid is the child", si.si_pid == c);
    check("si_code SI_USER", si.si_code == SI_USER);
    waitpid(c, NULL, 0);

    /* A handled signal outside the set interrupts sigtimedwait: EINTR. */
    c = spammer(SIGUSR2);
    struct timespec ten = {10, 0};
    errno = 0;
    r = sigtimedwait(&usr1, &si, &ten);
    e = errno;
    stop_spammer(c);
    printf("sigtimedwait interrupted by a SIGUSR2 handler: %d %s\n", r, errname(e));
    check("the SIGUSR2 handler ran", handled_usr2 > 0);

    /* pause returns after a handler. */
    handled_usr2 = 0;
    c = spammer(SIGUSR2);
    errno = 0;
    r = pause();
    e = errno;
    stop_spammer(c);
    printf("pause: %d %s\n", r, errname(e));
    check("the handler ran", handled_usr2 > 0);

    /* sigsuspend: SIGUSR1 is pending while blocked; sigsuspend's mask lets it in. */
    kill(getpid(), SIGUSR1);
    check("SIGUSR1 pending and not handled yet", handled_usr1 == 0);
    sigset_t during;
    sigemptyset(&during);
    sigaddset(&during, SIGUSR2);
    errno = 0;
    r = sigsuspend(&during);
    printf("sigsuspend: %d %s\n", r, errname(errno));
    check("the SIGUSR1 handler ran inside sigsuspend", handled_usr1 == 1);
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    check("the mask is restored: SIGUSR1 blocked, SIGUSR2 not", sigismember(&now, SIGUSR1) && !sigismember(&now, SIGUSR2));

    /* sigsuspend's mask blocks SIGUSR2: a SIGUSR2 stays pending until SIGUSR1 comes. */
    handled_usr1 = handled_usr2 = 0;
    sigset_t u2;
    sigemptyset(&u2);
    sigaddset(&u2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &u2, NULL);
    kill(getpid(), SIGUSR2); /* pending, and blocked during the sigsuspend below */
    kill(getpid(), SIGUSR1);
    sigsuspend(&during);
    check("sigsuspend ran SIGUSR1's handler, not SIGUSR2's", handled_usr1 == 1 && handled_usr2 == 0);
    sigprocmask(SIG_UNBLOCK, &u2, NULL);
    check("SIGUSR2 delivered once unblocked", handled_usr2 == 1);

    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
