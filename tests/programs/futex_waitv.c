// futex_waitv(2) (Linux 5.16), through syscall(449): glibc has no wrapper.
//   - EAGAIN when a word differs from its value; EINVAL for bad arguments and entries
//   - an absolute CLOCK_MONOTONIC (and CLOCK_REALTIME) deadline: ETIMEDOUT once it passed
//   - FUTEX_WAKE_PRIVATE on the 2nd of 3 words, from another thread: returns 1
//   - a MAP_SHARED word (no FUTEX2_PRIVATE) woken by FUTEX_WAKE from a forked child
//   - a handled signal: restarted with SA_RESTART, EINTR without
// "Asleep" is established without sleeps: FUTEX_CMP_REQUEUE moves a waiter that is
// queued on a word to a parking futex, which counts it, and FUTEX_REQUEUE moves it back.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "timing.h"

#define NR_futex_waitv 449
#define SIZE_U8 0x00
#define SIZE_U32 0x02
#define SIZE_U64 0x03
#define F2_PRIVATE 128

/* struct futex_waitv, spelt out: older kernel headers lack it or the FUTEX2_* names. */
struct waitv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};

static long futex_waitv(struct waitv *w, unsigned n, unsigned flags, const struct timespec *ts, int clk) {
    return syscall(NR_futex_waitv, w, n, flags, ts, clk);
}

static long futex(void *uaddr, int op, long val, void *uaddr2, int val3) {
    return syscall(SYS_futex, uaddr, op, (int)val, NULL, uaddr2, val3);
}

static long futex_requeue(void *uaddr, int op, int nr_wake, long nr_requeue, void *uaddr2, int val3) {
    return syscall(SYS_futex, uaddr, op, nr_wake, nr_requeue, uaddr2, val3);
}

static const char *res(long r) {
    static char buf[64];
    if (r >= 0) snprintf(buf, sizeof buf, "%ld", r);
    else snprintf(buf, sizeof buf, "-1 %s", errname(errno));
    return buf;
}

static struct waitv entry(atomic_int *word, int val, unsigned flags) {
    struct waitv w = {.val = (uint64_t)(unsigned)val, .uaddr = (uintptr_t)word, .flags = flags, .reserved = 0};
    return w;
}

static atomic_int park;

/* Blocks until a waiter is queued on the private futex `f` (whose value is 0). */
static void wait_until_sleeping(atomic_int *f) {
    while (futex_requeue(f, FUTEX_CMP_REQUEUE_PRIVATE, 0, INT_MAX, &park, 0) < 1) sched_yield();
    futex_requeue(&park, FUTEX_REQUEUE_PRIVATE, 0, INT_MAX, f, 0);
}

/* ---- errors ---------------------------------------------------------------------- */

static void errors(void) {
    atomic_int a = 0, b = 0, c = 7;
    struct waitv w[3] = {entry(&a, 0, SIZE_U32 | F2_PRIVATE), entry(&b, 0, SIZE_U32 | F2_PRIVATE),
                         entry(&c, 0, SIZE_U32 | F2_PRIVATE)};
    struct timespec soon = abs_after(CLOCK_MONOTONIC, 1000);
    printf("third word differs: %s\n", res(futex_waitv(w, 3, 0, &soon, CLOCK_MONOTONIC)));
    struct waitv d[2] = {w[2], w[0]};
    printf("first word differs: %s\n", res(futex_waitv(d, 2, 0, NULL, 0)));

    printf("flags 1: %s\n", res(futex_waitv(w, 2, 1, NULL, 0)));
    printf("nr 0: %s\n", res(futex_waitv(w, 0, 0, NULL, 0)));
    struct waitv many[129];
    for (int i = 0; i < 129; i++) many[i] = entry(&a, 0, SIZE_U32 | F2_PRIVATE);
    printf("nr 129: %s\n", res(futex_waitv(many, 129, 0, NULL, 0)));
    printf("NULL waiters: %s\n", res(futex_waitv(NULL, 1, 0, NULL, 0)));
    printf("unmapped waiters: %s\n", res(futex_waitv((struct waitv *)8, 1, 0, NULL, 0)));
    struct timespec past = {1, 0};
    printf("clock CLOCK_BOOTTIME: %s\n", res(futex_waitv(w, 2, 0, &past, CLOCK_BOOTTIME)));
    printf("clock 99: %s\n", res(futex_waitv(w, 2, 0, &past, 99)));
    printf("clock 99 without a timeout (not looked at): %s\n", res(futex_waitv(&w[2], 1, 0, NULL, 99)));
    struct timespec bad = {0, 1000000000L};
    printf("tv_nsec = 1e9: %s\n", res(futex_waitv(w, 2, 0, &bad, CLOCK_MONOTONIC)));
    printf("unmapped timeout: %s\n", res(futex_waitv(w, 2, 0, (struct timespec *)8, CLOCK_MONOTONIC)));

    struct waitv e[2] = {w[0], w[1]};
    e[1].reserved = 1;
    printf("reserved 1: %s\n", res(futex_waitv(e, 2, 0, NULL, 0)));
    e[1] = w[1];
    e[1].flags = SIZE_U8 | F2_PRIVATE;
    printf("FUTEX2_SIZE_U8: %s\n", res(futex_waitv(e, 2, 0, NULL, 0)));
    e[1].flags = SIZE_U64 | F2_PRIVATE;
    printf("FUTEX2_SIZE_U64: %s\n", res(futex_waitv(e, 2, 0, NULL, 0)));
    e[1].flags = SIZE_U32 | F2_PRIVATE | 0x10;
    printf("unknown flag 0x10: %s\n", res(futex_waitv(e, 2, 0, NULL, 0)));
    /* Every entry is checked before any word is read. */
    struct waitv f[2] = {w[2], w[1]};
    f[1].reserved = 1;
    printf("first word differs, second entry bad: %s\n", res(futex_waitv(f, 2, 0, NULL, 0)));
    e[1] = w[1];
    e[1].uaddr = (uintptr_t)&b + 1;
    printf("misaligned word: %s\n", res(futex_waitv(e, 2, 0, NULL, 0)));
    e[1].uaddr = 8;
    printf("unmapped word: %s\n", res(futex_waitv(e, 2, 0, NULL, 0)));
}

/* ---- timeouts -------------------------------------------------------------------- */

static void timeouts(void) {
    atomic_int a = 0, b = 0;
    struct waitv w[2] = {entry(&a, 0, SIZE_U32 | F2_PRIVATE), entry(&b, 0, SIZE_U32 | F2_PRIVATE)};
    struct timespec dl = abs_after(CLOCK_MONOTONIC, 20);
    long r = futex_waitv(w, 2, 0, &dl, CLOCK_MONOTONIC);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    printf("absolute CLOCK_MONOTONIC deadline 20 ms ahead: %s\n", res(r));
    check("CLOCK_MONOTONIC is past the deadline", ts_ge(now, dl));

    dl = abs_after(CLOCK_REALTIME, 20);
    r = futex_waitv(w, 2, 0, &dl, CLOCK_REALTIME);
    clock_gettime(CLOCK_REALTIME, &now);
    printf("absolute CLOCK_REALTIME deadline 20 ms ahead: %s\n", res(r));
    check("CLOCK_REALTIME is past the deadline", ts_ge(now, dl));

    struct timespec past = {1, 0};
    printf("deadline in the past: %s\n", res(futex_waitv(w, 2, 0, &past, CLOCK_MONOTONIC)));
    printf("FUTEX_WAKE on the words after the timeouts: %ld %ld\n", futex(&a, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, 0),
           futex(&b, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, 0));
}

/* ---- a wake from another thread ------------------------------------------------- */

static atomic_int wa, wb, wc;
static long waiter_result;
static int waiter_errno;

static void *waiter(void *arg) {
    (void)arg;
    struct waitv w[3] = {entry(&wa, 0, SIZE_U32 | F2_PRIVATE), entry(&wb, 0, SIZE_U32 | F2_PRIVATE),
                         entry(&wc, 0, SIZE_U32 | F2_PRIVATE)};
    struct timespec safety = abs_after(CLOCK_MONOTONIC, 10000);
    waiter_result = futex_waitv(w, 3, 0, &safety, CLOCK_MONOTONIC);
    waiter_errno = errno;
    return NULL;
}

static void thread_wake(void) {
    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    wait_until_sleeping(&wa);
    wait_until_sleeping(&wc);
    printf("a thread waits on 3 words\n");
    long n;
    while ((n = futex(&wb, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, 0)) == 0) sched_yield();
    printf("FUTEX_WAKE_PRIVATE on the 2nd word: %ld\n", n);
    pthread_join(t, NULL);
    errno = waiter_errno;
    printf("futex_waitv returned %s\n", res(waiter_result));
    printf("FUTEX_WAKE on the other words afterwards: %ld %ld\n", futex(&wa, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, 0),
           futex(&wc, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, 0));
}

/* ---- a shared word woken from a child process ------------------------------------ */

static void shared_wake(void) {
    atomic_int *s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    s[0] = 0; /* the shared futex word */
    s[1] = 0; /* the child's FUTEX_WAKE result */
    atomic_int local = 0;
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        long n;
        while ((n = futex(&s[0], FUTEX_WAKE, INT_MAX, NULL, 0)) == 0) sched_yield();
        s[1] = (int)n;
        _exit(0);
    }
    struct waitv w[2] = {entry(&local, 0, SIZE_U32 | F2_PRIVATE), entry(&s[0], 0, SIZE_U32)};
    struct timespec safety = abs_after(CLOCK_MONOTONIC, 10000);
    long r = futex_waitv(w, 2, 0, &safety, CLOCK_MONOTONIC);
    printf("waiting on a private word and a shared one, woken by a child: %s\n", res(r));
    int st;
    waitpid(c, &st, 0);
    printf("the child's FUTEX_WAKE woke %d\n", s[1]);
    check("child exited 0", WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ---- signals --------------------------------------------------------------------- */

static atomic_int handled;

static void on_usr1(int sig) {
    (void)sig;
    handled++;
}

static void interrupted(int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    handled = 0;
    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    wait_until_sleeping(&wa);
    pthread_kill(t, SIGUSR1);
    while (atomic_load(&handled) == 0) sched_yield();
    /* Restarted, the call sleeps again and a wake ends it; interrupted, nobody waits. */
    long n = 0;
    if (flags & SA_RESTART)
        while ((n = futex(&wb, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, 0)) == 0) sched_yield();
    pthread_join(t, NULL);
    errno = waiter_errno;
    printf("futex_waitv interrupted by a handler%s: %s (wake: %ld)\n", flags & SA_RESTART ? " with SA_RESTART" : "",
           res(waiter_result), n);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    errors();
    timeouts();
    thread_wake();
    shared_wake();
    interrupted(SA_RESTART);
    interrupted(0);
    printf("%d failures\n", failures);
    return failures != 0;
}
