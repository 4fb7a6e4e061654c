// Signals and threads: masks are per thread (inherited by pthread_create), dispositions per
// process; a process-directed signal goes to a thread that does not block it, a
// thread-directed one waits for its thread; sigpending shows the thread's own pending set
// plus the process's; sigwaitinfo in one thread takes a process-directed signal; a thread
// that blocks a process-directed signal sent to it just then leaves it to another that can
// take it; a fatal signal aimed at one thread (or a fault in one thread) ends the whole
// process.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "timing.h"

/* A step counter the two threads hand back and forth. */
static atomic_int step;

static void wait_step(int want) {
    int v;
    while ((v = atomic_load(&step)) < want) syscall(SYS_futex, &step, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}

static void set_step(int v) {
    atomic_store(&step, v);
    syscall(SYS_futex, &step, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static atomic_int handled, handler_tid;

static void handler(int sig) {
    (void)sig;
    handler_tid = (int)syscall(SYS_gettid);
    handled++;
    syscall(SYS_futex, &handled, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static pid_t t_tid;
static int t_inherited_block, t_pending_shared, t_pending_private, t_waited_sig, t_sees_main_private;
static sigset_t usr1;

static int pending_has(int sig) {
    sigset_t p;
    sigpending(&p);
    return sigismember(&p, sig);
}

static void *thread_fn(void *arg) {
    (void)arg;
    t_tid = gettid();
    sigset_t m;
    pthread_sigmask(SIG_BLOCK, NULL, &m);
    t_inherited_block = sigismember(&m, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL); /* only this thread takes SIGUSR1 */
    set_step(1);

    wait_step(2); /* main sent a process-directed SIGUSR1: handled here */
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    set_step(3);

    wait_step(4); /* main sent SIGUSR1 to the process while everyone blocks it */
    t_pending_shared = pending_has(SIGUSR1);
    siginfo_t si;
    t_waited_sig = sigwaitinfo(&usr1, &si);
    set_step(5);

    wait_step(6); /* main sent SIGUSR1 to this thread, and SIGUSR2 to itself */
    t_pending_private = pending_has(SIGUSR1);
    t_sees_main_private = pending_has(SIGUSR2);
    sigwaitinfo(&usr1, &si);
    set_step(7);
    return NULL;
}

static void *fault_thread(void *arg) {
    (void)arg;
    volatile int *volatile bad = (volatile int *)8;
    *bad = 1;
    return NULL;
}

static void *sleeper(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

/* The rounds of `retarget`: the blocker unblocks SIGUSR1 for a while at each. */
static atomic_int round_go, round_unblocked, round_done;

static void *blocker(void *arg) {
    (void)arg;
    for (int r = 1;; r++) {
        int v;
        while ((v = atomic_load(&round_go)) < r) syscall(SYS_futex, &round_go, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
        pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
        atomic_store(&round_unblocked, r);
        spin_us(CLOCK_MONOTONIC, 20);
        pthread_sigmask(SIG_BLOCK, &usr1, NULL);
        atomic_store(&round_done, r);
    }
    return NULL;
}

static void *taker(void *arg) {
    (void)arg;
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    for (;;) pause();
    return NULL;
}

/* A process-directed SIGUSR1 at about the time one of the two threads that take it
 * (the blocker, first in line) blocks it: it runs in one of them, so in the taker if the
 * blocker blocked it first (Linux's retarget_shared_pending wakes the taker). Returns the
 * rounds in which no thread took it within 5 s (it stops at the first). */
static int retarget(void) {
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    pthread_t b, s;
    pthread_create(&b, NULL, blocker, NULL);
    pthread_create(&s, NULL, taker, NULL);
    for (int r = 1; r <= 1000; r++) {
        atomic_store(&round_go, r);
        syscall(SYS_futex, &round_go, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
        /* Varies when the signal comes in the blocker's unblocked stretch, or
         * just after it. */
        while (atomic_load(&round_unblocked) < r) sched_yield();
        spin_us(CLOCK_MONOTONIC, r % 40);
        kill(getpid(), SIGUSR1);
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int h;
        while ((h = atomic_load(&handled)) < r) {
            if (ms_since(&t0) > 5000) return 1;
            struct timespec tick = {0, 10 * 1000 * 1000};
            syscall(SYS_futex, &handled, FUTEX_WAIT_PRIVATE, h, &tick, NULL, 0);
        }
        while (atomic_load(&round_done) < r) sched_yield();
    }
    return 0;
}

static const char *status(int st) {
    static char b[64];
    if (WIFEXITED(st)) snprintf(b, sizeof b, "exited %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(b, sizeof b, "killed by signal %d", WTERMSIG(st));
    else snprintf(b, sizeof b, "raw %#x", st);
    return b;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);

    pthread_t t;
    pthread_create(&t, NULL, thread_fn, NULL);
    wait_step(1);
    check("a new thread inherits its creator's mask", t_inherited_block);
    sigset_t m;
    pthread_sigmask(SIG_BLOCK, NULL, &m);
    check("the thread's unblock did not change the main thread's mask", sigismember(&m, SIGUSR1));

    check("kill(getpid(), SIGUSR1)", kill(getpid(), SIGUSR1) == 0);
    while (handled == 0) sched_yield();
    check("the process-directed signal ran in the thread that does not block it", handler_tid == t_tid);
    set_step(2);
    wait_step(3);

    handled = 0;
    kill(getpid(), SIGUSR1);
    check("blocked everywhere: pending for the process, seen from the main thread", pending_has(SIGUSR1));
    set_step(4);
    wait_step(5);
    check("... and from the other thread", t_pending_shared);
    check("sigwaitinfo in the other thread took it", t_waited_sig == SIGUSR1);
    check("no longer pending anywhere", !pending_has(SIGUSR1));
    check("no handler ran", handled == 0);

    pthread_kill(t, SIGUSR1);
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL);
    syscall(SYS_tgkill, getpid(), gettid(), SIGUSR2);
    check("a signal sent to the other thread is not pending in the main thread", !pending_has(SIGUSR1));
    check("the main thread's own signal is pending in it", pending_has(SIGUSR2));
    set_step(6);
    wait_step(7);
    check("the other thread saw its own signal pending", t_pending_private);
    check("but not the main thread's", !t_sees_main_private);
    pthread_join(t, NULL);
    siginfo_t si;
    sigwaitinfo(&usr2, &si);

    check("sigprocmask == pthread_sigmask in a single thread", sigprocmask(SIG_BLOCK, NULL, &m) == 0 && sigismember(&m, SIGUSR1));

    int st;
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        handled = 0;
        _exit(retarget());
    }
    waitpid(c, &st, 0);
    printf("rounds whose process-directed signal no thread took: %s\n", status(st));

    /* Fatal signals end the process, whichever thread they target. */
    fflush(stdout);
    c = fork();
    if (c == 0) {
        signal(SIGUSR1, SIG_DFL);
        pthread_t s;
        pthread_create(&s, NULL, sleeper, NULL);
        sigset_t all;
        sigemptyset(&all);
        pthread_sigmask(SIG_SETMASK, &all, NULL);
        pthread_kill(s, SIGTERM);
        for (;;) pause();
    }
    waitpid(c, &st, 0);
    printf("SIGTERM (default action) sent to one thread: the process %s\n", status(st));

    fflush(stdout);
    c = fork();
    if (c == 0) {
        pthread_t s;
        pthread_create(&s, NULL, fault_thread, NULL);
        for (;;) pause();
    }
    waitpid(c, &st, 0);
    printf("a SIGSEGV fault in one thread: the process %s\n", status(st));

    fflush(stdout);
    c = fork();
    if (c == 0) {
        pthread_t s;
        pthread_create(&s, NULL, sleeper, NULL);
        pthread_kill(s, SIGKILL);
        for (;;) pause();
    }
    waitpid(c, &st, 0);
    printf("SIGKILL sent to one thread: the process %s\n", status(st));

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
