// FUTEX_WAIT_REQUEUE_PI and FUTEX_CMP_REQUEUE_PI, as glibc's old condition
// variables on PI mutexes used them: a waiter sleeps on a plain word (the
// condition) and wakes owning a PI word (the mutex). CMP_REQUEUE_PI takes a free
// mutex for the first waiter and wakes it; waiters it requeues onto a held mutex
// get it by unlocks, in order. The argument checks, the pairing rules (FUTEX_WAKE
// and plain requeues refuse such waiters; the PI futex must be the one the waiter
// named), timeouts, and signals (before the requeue the wait restarts; after it the
// call ends with EAGAIN). Threads are ordered by their /proc state, not by sleeps.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "timing.h"

#define WAITERS FUTEX_WAITERS
#define TID_MASK FUTEX_TID_MASK

static uint32_t cond, mutex, other;

static long futex(uint32_t *uaddr, int op, uint32_t val, const void *timeout_or_n, uint32_t *uaddr2, uint32_t val3) {
    return syscall(SYS_futex, uaddr, op | FUTEX_PRIVATE_FLAG, val, timeout_or_n, uaddr2, val3);
}

// CMP_REQUEUE_PI's third argument is a count, passed where the timeout goes.
static long cmp_requeue_pi(uint32_t *from, int nr_wake, long nr_requeue, uint32_t *to, uint32_t expect) {
    return futex(from, FUTEX_CMP_REQUEUE_PI, nr_wake, (void *)nr_requeue, to, expect);
}

static struct timespec in_ms(clockid_t clock, long ms) {
    struct timespec t;
    clock_gettime(clock, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) t.tv_sec++, t.tv_nsec -= 1000000000L;
    return t;
}

// The state letter of thread `tid` of this process.
static char thread_state(pid_t tid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    return stat_state(path);
}

// A waiter thread: WAIT_REQUEUE_PI on `cond` for `pi` (timeout in ms, 0: none),
// then, owning the mutex, records whether the word named it and unlocks.
struct waiter {
    pthread_t th;
    uint32_t *pi;
    long timeout_ms;
    int plain; // a plain FUTEX_WAIT instead
    volatile pid_t tid;
    long r;
    int err;
    int owned;
};

static void *wait_thread(void *arg) {
    struct waiter *w = arg;
    struct timespec at = in_ms(CLOCK_MONOTONIC, w->timeout_ms);
    pid_t tid = gettid();
    w->tid = tid;
    errno = 0;
    if (w->plain)
        w->r = futex(&cond, FUTEX_WAIT, 0, NULL, NULL, 0);
    else
        w->r = futex(&cond, FUTEX_WAIT_REQUEUE_PI, 0, w->timeout_ms ? &at : NULL, w->pi, 0);
    w->err = errno;
    if (w->r == 0 && !w->plain) {
        w->owned = (*w->pi & TID_MASK) == (uint32_t)tid;
        // Unlock: hand over to the next waiter if the kernel has any.
        uint32_t me = tid;
        if (!__atomic_compare_exchange_n(w->pi, &me, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) futex(w->pi, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0);
    }
    return NULL;
}

static void start(struct waiter *w, uint32_t *pi, long timeout_ms, int plain) {
    memset(w, 0, sizeof *w);
    w->pi = pi;
    w->timeout_ms = timeout_ms;
    w->plain = plain;
    pthread_create(&w->th, NULL, wait_thread, w);
    while (!w->tid) sched_yield();
    while (thread_state(w->tid) != 'S') sched_yield();
}

static void finish(const char *what, struct waiter *w) {
    pthread_join(w->th, NULL);
    printf("%s: returned %ld %s", what, w->r, errname(w->err));
    if (w->r == 0 && !w->plain) printf("; owned the mutex: %s", w->owned ? "yes" : "no");
    printf("\n");
}

static volatile int handled;
static void on_usr1(int sig) {
    (void)sig;
    handled = 1;
}

static void show(const char *what, long r) { printf("%s: %ld %s\n", what, r, r < 0 ? errname(errno) : "0"); }

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    uint32_t me = gettid();
    struct waiter a, b;

    // Argument checks.
    show("CMP_REQUEUE_PI waking 2", cmp_requeue_pi(&cond, 2, 0, &mutex, 0));
    show("CMP_REQUEUE_PI with uaddr == uaddr2", cmp_requeue_pi(&cond, 1, 0, &cond, 0));
    show("CMP_REQUEUE_PI with a negative count", cmp_requeue_pi(&cond, 1, -1, &mutex, 0));
    show("CMP_REQUEUE_PI with a stale value", cmp_requeue_pi(&cond, 1, 0, &mutex, 1));
    show("CMP_REQUEUE_PI with no waiters", cmp_requeue_pi(&cond, 1, 0, &mutex, 0));
    show("WAIT_REQUEUE_PI with uaddr == uaddr2", futex(&cond, FUTEX_WAIT_REQUEUE_PI, 0, NULL, &cond, 0));
    show("WAIT_REQUEUE_PI with a stale value", futex(&cond, FUTEX_WAIT_REQUEUE_PI, 1, NULL, &mutex, 0));
    struct timespec at = in_ms(CLOCK_MONOTONIC, 50);
    show("WAIT_REQUEUE_PI timing out (monotonic)", futex(&cond, FUTEX_WAIT_REQUEUE_PI, 0, &at, &mutex, 0));
    at = in_ms(CLOCK_REALTIME, 50);
    show("WAIT_REQUEUE_PI timing out (realtime)", futex(&cond, FUTEX_WAIT_REQUEUE_PI | FUTEX_CLOCK_REALTIME, 0, &at, &mutex, 0));

    // A free mutex: the woken waiter returns owning it.
    start(&a, &mutex, 0, 0);
    show("CMP_REQUEUE_PI with the mutex free", cmp_requeue_pi(&cond, 1, 0, &mutex, 0));
    finish("waiter woken with the mutex free", &a);
    printf("mutex free again: %s\n", mutex == 0 ? "yes" : "no");

    // A held mutex: both are requeued, and each gets it by an unlock, in order.
    mutex = me;
    start(&a, &mutex, 0, 0);
    start(&b, &mutex, 0, 0);
    show("CMP_REQUEUE_PI with the mutex held, requeueing 1 more", cmp_requeue_pi(&cond, 1, 1, &mutex, 0));
    printf("mutex marked FUTEX_WAITERS: %s\n", mutex == (me | WAITERS) ? "yes" : "no");
    show("FUTEX_WAKE on the condition after the requeue", futex(&cond, FUTEX_WAKE, 1, NULL, NULL, 0));
    show("UNLOCK_PI by the holder", futex(&mutex, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0));
    finish("first requeued waiter", &a);
    finish("second requeued waiter", &b);
    printf("mutex free again: %s\n", (mutex & TID_MASK) == 0 ? "yes" : "no");
    mutex = 0;

    // Only CMP_REQUEUE_PI, to the PI futex named, moves such a waiter.
    start(&a, &mutex, 0, 0);
    show("FUTEX_WAKE on a WAIT_REQUEUE_PI waiter", futex(&cond, FUTEX_WAKE, 1, NULL, NULL, 0));
    show("FUTEX_CMP_REQUEUE of a WAIT_REQUEUE_PI waiter", futex(&cond, FUTEX_CMP_REQUEUE, 0, (void *)1L, &other, 0));
    show("CMP_REQUEUE_PI to another PI futex", cmp_requeue_pi(&cond, 1, 0, &other, 0));
    show("CMP_REQUEUE_PI to the one it named", cmp_requeue_pi(&cond, 1, 0, &mutex, 0));
    finish("waiter after the refused wakes", &a);
    mutex = 0;
    start(&a, &mutex, 0, 1);
    show("CMP_REQUEUE_PI of a plain FUTEX_WAIT waiter", cmp_requeue_pi(&cond, 1, 0, &mutex, 0));
    show("FUTEX_WAKE of the plain waiter", futex(&cond, FUTEX_WAKE, 1, NULL, NULL, 0));
    finish("plain waiter", &a);

    // A signal before the requeue: the handler runs and the wait goes on.
    start(&a, &mutex, 0, 0);
    pthread_kill(a.th, SIGUSR1);
    while (!handled) sched_yield();
    while (thread_state(a.tid) != 'S') sched_yield();
    show("CMP_REQUEUE_PI after a signal", cmp_requeue_pi(&cond, 1, 0, &mutex, 0));
    finish("waiter signalled before the requeue", &a);
    mutex = 0;

    // A signal after the requeue: EAGAIN, the mutex not taken.
    mutex = me;
    start(&a, &mutex, 0, 0);
    show("CMP_REQUEUE_PI onto the held mutex", cmp_requeue_pi(&cond, 1, 0, &mutex, 0));
    handled = 0;
    pthread_kill(a.th, SIGUSR1);
    finish("waiter signalled after the requeue", &a);
    show("UNLOCK_PI by the holder with nobody waiting", futex(&mutex, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0));
    printf("mutex free again: %s\n", mutex == 0 ? "yes" : "no");

    // The deadline holds after the requeue too.
    mutex = me;
    start(&a, &mutex, 500, 0);
    show("CMP_REQUEUE_PI of a timed waiter", cmp_requeue_pi(&cond, 1, 0, &mutex, 0));
    finish("timed waiter requeued onto the held mutex", &a);
    show("UNLOCK_PI after the timeout", futex(&mutex, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0));
    mutex = 0;

    printf("all ok\n");
    return 0;
}
