// The futex2 calls of Linux 6.7, through syscall(): glibc has no wrappers.
//   - futex_wake(454): a mask, a strict count (0 wakes none), EINVAL for bad flags
//     and masks
//   - futex_wait(455): EAGAIN, an absolute deadline on CLOCK_MONOTONIC or
//     CLOCK_REALTIME, a mask that futex_wake's must meet, EINVAL for bad arguments
//   - futex_requeue(456): two futex_waitv entries, EAGAIN when the first word
//     differs, wakes then moves waiters to the second word
//   - and the old futex(2)'s FUTEX_WAKE, whose count 0 (or negative) wakes one, and
//     FUTEX_WAKE_OP, whose store to a word a fork shares stays the storer's
// "Asleep" is established without sleeps: FUTEX_CMP_REQUEUE moves a waiter that is
// queued on a word to a parking futex, which counts it, and FUTEX_REQUEUE moves it back.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "timing.h"

#define NR_futex_wake 454
#define NR_futex_wait 455
#define NR_futex_requeue 456
#define SIZE_U8 0x00
#define SIZE_U32 0x02
#define SIZE_U64 0x03
#define F2_PRIVATE 128

struct waitv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};

static long futex_wake(atomic_int *w, unsigned long mask, int nr, unsigned flags) {
    return syscall(NR_futex_wake, w, mask, nr, flags);
}

static long futex_wait(atomic_int *w, unsigned long val, unsigned long mask, unsigned flags, const struct timespec *ts,
                       int clk) {
    return syscall(NR_futex_wait, w, val, mask, flags, ts, clk);
}

static long futex_requeue2(struct waitv *w, unsigned flags, int nr_wake, int nr_requeue) {
    return syscall(NR_futex_requeue, w, flags, nr_wake, nr_requeue);
}

static long futex(void *uaddr, int op, long val, long val2, void *uaddr2, int val3) {
    return syscall(SYS_futex, uaddr, op, (int)val, val2, uaddr2, val3);
}

static const char *res(long r) {
    static char buf[64];
    if (r >= 0) snprintf(buf, sizeof buf, "%ld", r);
    else snprintf(buf, sizeof buf, "-1 %s", errname(errno));
    return buf;
}

static atomic_int park;

static atomic_int returned; /* waiters whose futex_wait returned */

/* Blocks until `n` waiters are queued on the private futex `f` (whose value is 0),
 * or one returned (and will show its result). */
static void wait_until_sleeping(atomic_int *f, int n) {
    int before = returned;
    while (futex(f, FUTEX_CMP_REQUEUE_PRIVATE, 0, INT_MAX, &park, 0) < n && returned == before) {
        futex(&park, FUTEX_REQUEUE_PRIVATE, 0, INT_MAX, f, 0);
        sched_yield();
    }
    futex(&park, FUTEX_REQUEUE_PRIVATE, 0, INT_MAX, f, 0);
}

/* ---- errors ---------------------------------------------------------------------- */

static void errors(void) {
    atomic_int a = 0;
    printf("futex_wake, no waiter: %s\n", res(futex_wake(&a, 0xffffffff, 1, SIZE_U32 | F2_PRIVATE)));
    printf("futex_wake, mask 0: %s\n", res(futex_wake(&a, 0, 1, SIZE_U32 | F2_PRIVATE)));
    printf("futex_wake, mask past 32 bits: %s\n", res(futex_wake(&a, 0x100000000UL, 1, SIZE_U32 | F2_PRIVATE)));
    printf("futex_wake, FUTEX2_SIZE_U8: %s\n", res(futex_wake(&a, 1, 1, SIZE_U8 | F2_PRIVATE)));
    printf("futex_wake, FUTEX2_SIZE_U64: %s\n", res(futex_wake(&a, 1, 1, SIZE_U64 | F2_PRIVATE)));
    printf("futex_wake, unknown flag 0x20: %s\n", res(futex_wake(&a, 1, 1, SIZE_U32 | 0x20)));
    printf("futex_wake, misaligned word: %s\n", res(futex_wake((atomic_int *)((char *)&a + 1), 1, 1, SIZE_U32)));
    printf("futex_wake, unmapped word: %s\n", res(futex_wake((atomic_int *)8, 1, 1, SIZE_U32)));

    printf("futex_wait, value differs: %s\n", res(futex_wait(&a, 1, 0xffffffff, SIZE_U32 | F2_PRIVATE, NULL, 0)));
    printf("futex_wait, value past 32 bits: %s\n",
           res(futex_wait(&a, 0x100000000UL, 0xffffffff, SIZE_U32 | F2_PRIVATE, NULL, 0)));
    printf("futex_wait, mask 0: %s\n", res(futex_wait(&a, 0, 0, SIZE_U32 | F2_PRIVATE, NULL, 0)));
    printf("futex_wait, FUTEX2_SIZE_U8: %s\n", res(futex_wait(&a, 0, 1, SIZE_U8, NULL, 0)));
    struct timespec past = {1, 0};
    printf("futex_wait, clock CLOCK_BOOTTIME: %s\n", res(futex_wait(&a, 0, 1, SIZE_U32, &past, CLOCK_BOOTTIME)));
    printf("futex_wait, clock 99 without a timeout: %s\n", res(futex_wait(&a, 1, 1, SIZE_U32, NULL, 99)));
    struct timespec bad = {0, 1000000000L};
    printf("futex_wait, tv_nsec = 1e9: %s\n", res(futex_wait(&a, 0, 1, SIZE_U32, &bad, CLOCK_MONOTONIC)));
    printf("futex_wait, unmapped timeout: %s\n",
           res(futex_wait(&a, 0, 1, SIZE_U32, (struct timespec *)8, CLOCK_MONOTONIC)));
    printf("futex_wait, deadline in the past: %s\n", res(futex_wait(&a, 0, 1, SIZE_U32, &past, CLOCK_MONOTONIC)));

    atomic_int b = 0;
    struct waitv w[2] = {{0, (uintptr_t)&a, SIZE_U32 | F2_PRIVATE, 0}, {0, (uintptr_t)&b, SIZE_U32 | F2_PRIVATE, 0}};
    printf("futex_requeue, no waiter: %s\n", res(futex_requeue2(w, 0, 1, 1)));
    printf("futex_requeue, flags 1: %s\n", res(futex_requeue2(w, 1, 1, 1)));
    printf("futex_requeue, NULL waiters: %s\n", res(futex_requeue2(NULL, 0, 1, 1)));
    printf("futex_requeue, nr_wake -1: %s\n", res(futex_requeue2(w, 0, -1, 1)));
    printf("futex_requeue, nr_requeue -1: %s\n", res(futex_requeue2(w, 0, 1, -1)));
    w[0].val = 5;
    printf("futex_requeue, first word differs: %s\n", res(futex_requeue2(w, 0, 1, 1)));
    w[0].val = 0;
    w[1].val = 5;
    printf("futex_requeue, second word differs (not compared): %s\n", res(futex_requeue2(w, 0, 1, 1)));
    w[1].reserved = 1;
    printf("futex_requeue, reserved 1: %s\n", res(futex_requeue2(w, 0, 1, 1)));
    w[1].reserved = 0;
    w[1].flags = SIZE_U64;
    printf("futex_requeue, FUTEX2_SIZE_U64: %s\n", res(futex_requeue2(w, 0, 1, 1)));
}

/* ---- timeouts -------------------------------------------------------------------- */

static void timeouts(void) {
    atomic_int a = 0;
    struct timespec dl = abs_after(CLOCK_MONOTONIC, 20);
    long r = futex_wait(&a, 0, 0xffffffff, SIZE_U32 | F2_PRIVATE, &dl, CLOCK_MONOTONIC);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    printf("absolute CLOCK_MONOTONIC deadline 20 ms ahead: %s\n", res(r));
    check("CLOCK_MONOTONIC is past the deadline", ts_ge(now, dl));
    dl = abs_after(CLOCK_REALTIME, 20);
    r = futex_wait(&a, 0, 0xffffffff, SIZE_U32 | F2_PRIVATE, &dl, CLOCK_REALTIME);
    clock_gettime(CLOCK_REALTIME, &now);
    printf("absolute CLOCK_REALTIME deadline 20 ms ahead: %s\n", res(r));
    check("CLOCK_REALTIME is past the deadline", ts_ge(now, dl));
}

/* ---- wakes and requeues from another thread -------------------------------------- */

static atomic_int wa, wb;

struct waiter {
    atomic_int *word;
    unsigned long mask;
    long result;
    int err;
};

static void *waiter(void *arg) {
    struct waiter *w = arg;
    struct timespec safety = abs_after(CLOCK_MONOTONIC, 10000);
    w->result = futex_wait(w->word, 0, w->mask, SIZE_U32 | F2_PRIVATE, &safety, CLOCK_MONOTONIC);
    w->err = errno;
    returned++;
    return NULL;
}

static void report(const char *what, struct waiter *w) {
    errno = w->err;
    printf("%s: %s\n", what, res(w->result));
}

static void wakes(void) {
    struct waiter w1 = {&wa, 0x1, 0, 0}, w2 = {&wa, 0x2, 0, 0};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, waiter, &w1);
    pthread_create(&t2, NULL, waiter, &w2);
    wait_until_sleeping(&wa, 2);
    printf("futex_wake, nr 0: %s\n", res(futex_wake(&wa, 0xffffffff, 0, SIZE_U32 | F2_PRIVATE)));
    printf("futex_wake, mask 0x4 (no waiter's): %s\n", res(futex_wake(&wa, 0x4, 2, SIZE_U32 | F2_PRIVATE)));
    printf("futex_wake, mask 0x2: %s\n", res(futex_wake(&wa, 0x2, 2, SIZE_U32 | F2_PRIVATE)));
    pthread_join(t2, NULL);
    report("the waiter with mask 0x2", &w2);
    printf("futex_wake, shared (not FUTEX2_PRIVATE) on a private waiter: %s\n",
           res(futex_wake(&wa, 0xffffffff, 1, SIZE_U32)));
    printf("FUTEX_WAKE_BITSET 0x1 from futex(2): %s\n", res(futex(&wa, FUTEX_WAKE_BITSET_PRIVATE, 1, 0, NULL, 0x1)));
    pthread_join(t1, NULL);
    report("the waiter with mask 0x1", &w1);

    /* futex(2)'s FUTEX_WAKE with a count of 0 wakes one. */
    struct waiter w3 = {&wa, 0xffffffff, 0, 0};
    pthread_t t3;
    pthread_create(&t3, NULL, waiter, &w3);
    wait_until_sleeping(&wa, 1);
    printf("FUTEX_WAKE, count 0: %s\n", res(futex(&wa, FUTEX_WAKE_PRIVATE, 0, 0, NULL, 0)));
    pthread_join(t3, NULL);
    report("its waiter", &w3);

    /* futex_requeue: one woken, one moved to wb, woken there. */
    struct waiter w4 = {&wa, 0xffffffff, 0, 0}, w5 = {&wa, 0xffffffff, 0, 0};
    pthread_t t4, t5;
    pthread_create(&t4, NULL, waiter, &w4);
    pthread_create(&t5, NULL, waiter, &w5);
    wait_until_sleeping(&wa, 2);
    struct waitv w[2] = {{0, (uintptr_t)&wa, SIZE_U32 | F2_PRIVATE, 0}, {0, (uintptr_t)&wb, SIZE_U32 | F2_PRIVATE, 0}};
    printf("futex_requeue, 1 woken and 1 moved: %s\n", res(futex_requeue2(w, 0, 1, 1)));
    long left = 0, moved = 0;
    while (left + moved < 1 && returned < 5) {
        long l = futex_wake(&wa, 0xffffffff, INT_MAX, SIZE_U32 | F2_PRIVATE);
        long m = futex_wake(&wb, 0xffffffff, INT_MAX, SIZE_U32 | F2_PRIVATE);
        left += l > 0 ? l : 0;
        moved += m > 0 ? m : 0;
    }
    printf("then woken on the first word: %ld, on the second: %ld\n", left, moved);
    pthread_join(t4, NULL);
    pthread_join(t5, NULL);
    check("both requeued waiters returned 0", w4.result == 0 && w5.result == 0);
}

/* ---- FUTEX_WAKE_OP after a fork ------------------------------------------------- */

static void wake_op_after_fork(void) {
    /* A page of its own, so that no other store broke its sharing before the fork. */
    atomic_int *word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *word = 7;
    atomic_int other = 0;
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        /* FUTEX_OP_SET 5, then wake on the second word if its old value was 7. */
        int op = FUTEX_OP(FUTEX_OP_SET, 5, FUTEX_OP_CMP_EQ, 7);
        long r = futex(&other, FUTEX_WAKE_OP_PRIVATE, 1, 1, word, op);
        _exit(r == 0 && *word == 5 ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    check("the child's FUTEX_WAKE_OP stored to its own copy", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("the parent's word after the child's FUTEX_WAKE_OP: %d\n", (int)*word);
}

int main(void) {
    errors();
    timeouts();
    wakes();
    wake_op_after_fork();
    printf("%d failures\n", failures);
    return failures != 0;
}
