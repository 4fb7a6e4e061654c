// futex(2), one mode per argument:
//   fork      a shared futex over MAP_SHARED memory: the parent sleeps, the child wakes it
//   timeout   relative and absolute (monotonic and realtime) timeouts, EAGAIN, EINVAL...
//   eintr     FUTEX_WAIT interrupted by a handled signal returns EINTR even with SA_RESTART
//   restart   ...unless it has no timeout: then SA_RESTART restarts it
//   wake      FUTEX_WAKE counts, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE
//   wakeop    FUTEX_WAKE_OP with its operations and comparisons
//   bitset    FUTEX_WAIT_BITSET / FUTEX_WAKE_BITSET masks
//   robust    robust mutexes: owner death gives EOWNERDEAD (threads and processes)
//   cleartid  CLONE_CHILD_CLEARTID: the word is cleared and woken when the thread exits
// "Sleeping" is established without sleeps: FUTEX_CMP_REQUEUE moves the waiters that are
// asleep to a parking futex, which counts them, and FUTEX_REQUEUE moves them back.
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
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "timing.h"

static long futex(void *uaddr, int op, int val, const struct timespec *ts, void *uaddr2, int val3) {
    return syscall(SYS_futex, uaddr, op, val, ts, uaddr2, val3);
}

/* The fourth argument of the requeue operations is a count, not a pointer. */
static long futex_requeue(void *uaddr, int op, int nr_wake, long nr_requeue, void *uaddr2, int val3) {
    return syscall(SYS_futex, uaddr, op, nr_wake, nr_requeue, uaddr2, val3);
}

static const char *err(long r) {
    static char buf[64];
    if (r >= 0) snprintf(buf, sizeof buf, "%ld", r);
    else snprintf(buf, sizeof buf, "-1 %s", errno == ETIMEDOUT ? "ETIMEDOUT" : errno == EAGAIN ? "EAGAIN"
                                            : errno == EINVAL    ? "EINVAL"
                                            : errno == EINTR     ? "EINTR"
                                            : errno == EFAULT    ? "EFAULT"
                                            : errno == ENOSYS    ? "ENOSYS"
                                            : errno == EPERM     ? "EPERM"
                                                                 : strerror(errno));
    return buf;
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static atomic_int park; /* where waiters are counted */

/* Blocks until exactly `n` threads are asleep in FUTEX_WAIT(_PRIVATE) on `f`. */
static void wait_until_sleeping(atomic_int *f, int n) {
    int moved = 0;
    while (moved < n) {
        long r = futex_requeue(f, FUTEX_CMP_REQUEUE_PRIVATE, 0, INT_MAX, &park, atomic_load(f));
        if (r > 0) moved += (int)r;
        else sched_yield();
    }
    futex_requeue(&park, FUTEX_REQUEUE_PRIVATE, 0, INT_MAX, f, 0);
}

static void spin_until(atomic_int *v, int want) {
    while (atomic_load(v) != want) sched_yield();
}

/* ---- fork: shared futex ------------------------------------------------------------ */

static void mode_fork(void) {
    atomic_int *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    w[0] = 0; /* the futex word */
    w[1] = 0; /* the child's result */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        /* Wake until a waiter was actually woken: the parent was asleep in the kernel. */
        long n;
        while ((n = futex(&w[0], FUTEX_WAKE, 1, NULL, NULL, 0)) == 0) sched_yield();
        w[1] = (int)n;
        atomic_store(&w[0], 1);
        futex(&w[0], FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
        _exit(0);
    }
    int sleeps = 0;
    while (atomic_load(&w[0]) == 0) {
        long r = futex(&w[0], FUTEX_WAIT, 0, NULL, NULL, 0);
        if (r == 0) sleeps++;
    }
    int st;
    waitpid(c, &st, 0);
    check("parent slept on the shared futex and was woken", sleeps >= 1);
    printf("child's first FUTEX_WAKE woke %d waiter\n", w[1]);
    check("value written by the child is seen", w[0] == 1);

    /* The other way round, over a futex in a page that was shared before fork, with the
       child asleep and several wakes racing with its wait. */
    w[0] = 0;
    w[2] = 0;
    fflush(stdout);
    c = fork();
    if (c == 0) {
        while (atomic_load(&w[2]) == 0) futex(&w[2], FUTEX_WAIT, 0, NULL, NULL, 0);
        _exit(atomic_load(&w[2]) == 42 ? 0 : 1);
    }
    long n;
    while ((n = futex(&w[2], FUTEX_WAKE, 1, NULL, NULL, 0)) == 0) sched_yield();
    atomic_store(&w[2], 42);
    futex(&w[2], FUTEX_WAKE, 1, NULL, NULL, 0);
    waitpid(c, &st, 0);
    check("child slept on the shared futex, parent woke it", WIFEXITED(st) && WEXITSTATUS(st) == 0 && n == 1);

    /* A private futex op does not reach another process. */
    w[3] = 0;
    w[4] = 0;
    fflush(stdout);
    c = fork();
    if (c == 0) {
        struct timespec t = {0, 50 * 1000000L};
        w[4] = 1;
        long r = futex(&w[3], FUTEX_WAIT, 0, &t, NULL, 0);
        _exit(r == -1 && errno == ETIMEDOUT ? 0 : 1);
    }
    while (atomic_load(&w[4]) == 0) sched_yield();
    long woken_private = 0;
    for (int i = 0; i < 20; i++) woken_private += futex(&w[3], FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    waitpid(c, &st, 0);
    check("FUTEX_WAKE_PRIVATE from another process wakes nobody (the waiter times out)",
          woken_private == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ---- timeouts and errors ----------------------------------------------------------- */

static void mode_timeout(void) {
    int word = 0;
    struct timespec rel = {0, 20 * 1000000L};
    double t0 = mono();
    long r = futex(&word, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0);
    double el = mono() - t0;
    printf("FUTEX_WAIT, 20 ms relative timeout: %s\n", err(r));
    check("waited at least 20 ms", el >= 0.020);
    check("and less than 5 s", el < 5);

    struct timespec zero = {0, 0};
    r = futex(&word, FUTEX_WAIT_PRIVATE, 0, &zero, NULL, 0);
    printf("FUTEX_WAIT, zero timeout: %s\n", err(r));

    r = futex(&word, FUTEX_WAIT_PRIVATE, 1, &rel, NULL, 0);
    printf("FUTEX_WAIT, value differs: %s\n", err(r));

    struct timespec dl = abs_after(CLOCK_MONOTONIC, 20);
    r = futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, &dl, NULL, FUTEX_BITSET_MATCH_ANY);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    printf("FUTEX_WAIT_BITSET, absolute CLOCK_MONOTONIC deadline: %s\n", err(r));
    check("CLOCK_MONOTONIC now past the deadline", ts_ge(now, dl));

    dl = abs_after(CLOCK_REALTIME, 20);
    r = futex(&word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &dl, NULL, FUTEX_BITSET_MATCH_ANY);
    clock_gettime(CLOCK_REALTIME, &now);
    printf("FUTEX_WAIT_BITSET|FUTEX_CLOCK_REALTIME, absolute deadline: %s\n", err(r));
    check("CLOCK_REALTIME now past the deadline", ts_ge(now, dl));

    struct timespec past = {1, 0};
    t0 = mono();
    r = futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, &past, NULL, FUTEX_BITSET_MATCH_ANY);
    printf("FUTEX_WAIT_BITSET, deadline in the past: %s\n", err(r));
    check("returned at once", mono() - t0 < 1);

    struct timespec bad = {0, 1000000000L};
    r = futex(&word, FUTEX_WAIT_PRIVATE, 0, &bad, NULL, 0);
    printf("FUTEX_WAIT, tv_nsec = 1e9: %s\n", err(r));
    struct timespec neg = {-1, 0};
    r = futex(&word, FUTEX_WAIT_PRIVATE, 0, &neg, NULL, 0);
    printf("FUTEX_WAIT, tv_sec = -1: %s\n", err(r));
    r = futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, &rel, NULL, 0);
    printf("FUTEX_WAIT_BITSET, bitset 0: %s\n", err(r));
    r = futex((char *)&word + 1, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0);
    printf("FUTEX_WAIT, misaligned address: %s\n", err(r));
    r = futex(NULL, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0);
    printf("FUTEX_WAIT, NULL address: %s\n", err(r));
    r = futex(&word, FUTEX_WAIT_PRIVATE, 0, (struct timespec *)8, NULL, 0);
    printf("FUTEX_WAIT, bad timeout pointer: %s\n", err(r));
    r = futex(&word, 99, 0, NULL, NULL, 0);
    printf("futex op 99: %s\n", err(r));
    r = futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    printf("FUTEX_WAKE without waiters: %s\n", err(r));
    r = futex(&word, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 0);
    printf("FUTEX_WAKE_BITSET, bitset 0: %s\n", err(r));
}

/* ---- EINTR ------------------------------------------------------------------------- */

static atomic_int handled;

static void on_usr1(int sig) {
    (void)sig;
    handled++;
}

static void mode_eintr(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    atomic_int *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    w[0] = 0; /* set when the parent saw EINTR */
    int word = 0;
    pid_t parent = getpid();
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        /* Signal until the parent has seen an interrupted FUTEX_WAIT. */
        for (long i = 0; i < 2000000 && atomic_load(&w[0]) == 0; i++) {
            kill(parent, SIGUSR1);
            sched_yield();
        }
        _exit(0);
    }
    /* Only a timeout (the safety net) or EINTR can end this wait: nobody wakes it. */
    struct timespec safety = {10, 0};
    long r = futex(&word, FUTEX_WAIT_PRIVATE, 0, &safety, NULL, 0);
    int e = errno;
    atomic_store(&w[0], 1);
    int st;
    waitpid(c, &st, 0);
    errno = e;
    printf("FUTEX_WAIT interrupted by a SA_RESTART handler: %s\n", err(r));
    check("the handler ran", handled > 0);
}

/* An untimed FUTEX_WAIT on a shared word: the child signals until the handler has run,
 * then sets the word and wakes it. A restarted wait ends in 0 or EAGAIN, never EINTR. */
static atomic_int *ran;

static void on_usr1_shared(int sig) {
    (void)sig;
    atomic_store(ran, 1);
}

static void mode_restart(void) {
    atomic_int *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ran = &w[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1_shared;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    pid_t parent = getpid();
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        while (atomic_load(&w[1]) == 0) {
            kill(parent, SIGUSR1);
            sched_yield();
        }
        atomic_store(&w[0], 1);
        futex(&w[0], FUTEX_WAKE, 1, NULL, NULL, 0);
        _exit(0);
    }
    long r = futex(&w[0], FUTEX_WAIT, 0, NULL, NULL, 0);
    int e = errno;
    int st;
    waitpid(c, &st, 0);
    check("an untimed FUTEX_WAIT under a SA_RESTART handler restarts (0 or EAGAIN, not EINTR)", r == 0 || e == EAGAIN);
    check("the handler ran", atomic_load(&w[1]) == 1);
}

/* ---- wake counts and requeue ------------------------------------------------------- */

static atomic_int fa, fb;
static atomic_int woken;

static void *waiter_a(void *arg) {
    (void)arg;
    futex(&fa, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    woken++;
    return NULL;
}

static void start(pthread_t *t, int n, void *(*fn)(void *), void *arg) {
    for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, fn, arg);
}

static void join(pthread_t *t, int n) {
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
}

static void mode_wake(void) {
    pthread_t t[4];
    fa = 0;
    woken = 0;
    start(t, 4, waiter_a, NULL);
    wait_until_sleeping(&fa, 4);
    printf("4 waiters asleep\n");
    printf("FUTEX_WAKE(1): %s\n", err(futex(&fa, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0)));
    spin_until(&woken, 1);
    printf("FUTEX_WAKE(2): %s\n", err(futex(&fa, FUTEX_WAKE_PRIVATE, 2, NULL, NULL, 0)));
    spin_until(&woken, 3);
    printf("FUTEX_WAKE(INT_MAX): %s\n", err(futex(&fa, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0)));
    spin_until(&woken, 4);
    printf("FUTEX_WAKE(INT_MAX) again: %s\n", err(futex(&fa, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0)));
    join(t, 4);

    woken = 0;
    start(t, 4, waiter_a, NULL);
    wait_until_sleeping(&fa, 4);
    long r = futex_requeue(&fa, FUTEX_CMP_REQUEUE_PRIVATE, 1, 2, &fb, 5);
    printf("FUTEX_CMP_REQUEUE with a wrong expected value: %s\n", err(r));
    r = futex_requeue(&fa, FUTEX_CMP_REQUEUE_PRIVATE, 1, -1, &fb, 0);
    printf("FUTEX_CMP_REQUEUE with nr_requeue -1: %s\n", err(r));
    r = futex_requeue(&fa, FUTEX_CMP_REQUEUE_PRIVATE, 1, 2, &fb, 0);
    printf("FUTEX_CMP_REQUEUE(wake 1, requeue 2): %s\n", err(r));
    spin_until(&woken, 1);
    printf("FUTEX_WAKE(INT_MAX) on the source: %s\n", err(futex(&fa, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0)));
    spin_until(&woken, 2);
    r = futex_requeue(&fb, FUTEX_REQUEUE_PRIVATE, 0, 1, &fa, 0);
    printf("FUTEX_REQUEUE(wake 0, requeue 1) back: %s\n", err(r));
    printf("FUTEX_WAKE(INT_MAX) on the target: %s\n", err(futex(&fb, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0)));
    spin_until(&woken, 3);
    printf("FUTEX_WAKE(INT_MAX) on the source: %s\n", err(futex(&fa, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0)));
    spin_until(&woken, 4);
    join(t, 4);
    check("every waiter woke exactly once", woken == 4);
}

/* ---- wake_op ----------------------------------------------------------------------- */

static atomic_int f1, f2;
static atomic_int w1, w2;

static void *wait_f1(void *arg) {
    (void)arg;
    futex(&f1, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    w1++;
    return NULL;
}

static void *wait_f2(void *arg) {
    int val = (int)(long)arg;
    futex(&f2, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
    w2++;
    return NULL;
}

static void mode_wakeop(void) {
    pthread_t a, b;
    f1 = 0;
    f2 = 0;
    pthread_create(&a, NULL, wait_f1, NULL);
    pthread_create(&b, NULL, wait_f2, (void *)0L);
    wait_until_sleeping(&f1, 1);
    wait_until_sleeping(&f2, 1);
    long r = futex_requeue(&f1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &f2, FUTEX_OP(FUTEX_OP_SET, 7, FUTEX_OP_CMP_EQ, 0));
    printf("WAKE_OP(SET 7, old == 0): %s, *uaddr2 = %d\n", err(r), f2);
    spin_until(&w1, 1);
    spin_until(&w2, 1);
    pthread_join(a, NULL);
    pthread_join(b, NULL);

    pthread_create(&a, NULL, wait_f1, NULL);
    pthread_create(&b, NULL, wait_f2, (void *)7L);
    wait_until_sleeping(&f1, 1);
    wait_until_sleeping(&f2, 1);
    r = futex_requeue(&f1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &f2, FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_GT, 100));
    printf("WAKE_OP(ADD 1, old > 100): %s, *uaddr2 = %d\n", err(r), f2);
    spin_until(&w1, 2);
    r = futex_requeue(&f1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &f2,
                      (int)FUTEX_OP((FUTEX_OP_OR | FUTEX_OP_OPARG_SHIFT), 4, FUTEX_OP_CMP_EQ, 8));
    printf("WAKE_OP(OR 1<<4, old == 8), no waiter on uaddr: %s, *uaddr2 = %d\n", err(r), f2);
    spin_until(&w2, 2);
    pthread_join(a, NULL);
    pthread_join(b, NULL);

    f2 = 0xff;
    r = futex_requeue(&f1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &f2, FUTEX_OP(FUTEX_OP_ANDN, 0x0f, FUTEX_OP_CMP_LT, 0));
    printf("WAKE_OP(ANDN 0x0f, old < 0) without waiters: %s, *uaddr2 = %#x\n", err(r), f2);
    r = futex_requeue(&f1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &f2, FUTEX_OP(FUTEX_OP_XOR, 0xff, FUTEX_OP_CMP_GE, 0));
    printf("WAKE_OP(XOR 0xff, old >= 0): %s, *uaddr2 = %#x\n", err(r), f2);
    r = futex_requeue(&f1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &f2, (7 << 28));
    printf("WAKE_OP with an unknown operation: %s\n", err(r));
}

/* ---- bitsets ----------------------------------------------------------------------- */

static atomic_int fbits;
static atomic_int woke_mask;

static void *wait_bits(void *arg) {
    int bits = (int)(long)arg;
    futex(&fbits, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, bits);
    woke_mask |= bits;
    return NULL;
}

static void mode_bitset(void) {
    pthread_t t[3];
    fbits = 0;
    pthread_create(&t[0], NULL, wait_bits, (void *)1L);
    pthread_create(&t[1], NULL, wait_bits, (void *)2L);
    pthread_create(&t[2], NULL, wait_bits, (void *)6L);
    wait_until_sleeping(&fbits, 3);
    long r = futex(&fbits, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 8);
    printf("WAKE_BITSET(0x8) with waiters 0x1, 0x2, 0x6: %s\n", err(r));
    r = futex(&fbits, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 4);
    printf("WAKE_BITSET(0x4): %s\n", err(r));
    spin_until(&woke_mask, 6);
    printf("woken so far: %#x\n", woke_mask);
    r = futex(&fbits, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 3);
    printf("WAKE_BITSET(0x3, nr 1): %s\n", err(r));
    r = futex(&fbits, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    printf("FUTEX_WAKE (all bits) for the rest: %s\n", err(r));
    spin_until(&woke_mask, 7);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    printf("woken: %#x\n", woke_mask);

    /* A plain FUTEX_WAIT waiter matches every bitset. */
    woke_mask = 0;
    pthread_create(&t[0], NULL, wait_bits, (void *)(long)FUTEX_BITSET_MATCH_ANY);
    wait_until_sleeping(&fbits, 1);
    r = futex(&fbits, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x100);
    printf("WAKE_BITSET(0x100) wakes a MATCH_ANY waiter: %s\n", err(r));
    pthread_join(t[0], NULL);
}

/* ---- robust mutexes ---------------------------------------------------------------- */

static pthread_mutex_t rm;
static atomic_int r_locked;

static void *lock_and_die(void *arg) {
    int wait_for_waiter = (int)(long)arg;
    pthread_mutex_lock(&rm);
    r_locked = 1;
    if (wait_for_waiter) /* until the main thread is blocked on the mutex */
        while (!(atomic_load((atomic_int *)&rm.__data.__lock) & FUTEX_WAITERS)) sched_yield();
    return NULL; /* exits holding the mutex */
}

static const char *lockres(int r) {
    return r == 0 ? "0" : r == EOWNERDEAD ? "EOWNERDEAD" : r == ENOTRECOVERABLE ? "ENOTRECOVERABLE" : strerror(r);
}

static void mode_robust(void) {
    struct {
        void *head;
        size_t len;
    } rl = {0};
    long r = syscall(SYS_get_robust_list, 0, &rl.head, &rl.len);
    check("get_robust_list(0): glibc registered a list head", r == 0 && rl.head != NULL);
    printf("robust list head length: %zu\n", rl.len);

    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&rm, &ma);

    /* The owner dies while we are blocked on the mutex. */
    pthread_t t;
    r_locked = 0;
    pthread_create(&t, NULL, lock_and_die, (void *)1L);
    spin_until(&r_locked, 1);
    int lr = pthread_mutex_lock(&rm);
    printf("lock while the owner exits: %s\n", lockres(lr));
    check("pthread_mutex_consistent", pthread_mutex_consistent(&rm) == 0);
    check("unlock", pthread_mutex_unlock(&rm) == 0);
    printf("lock again: %s\n", lockres(pthread_mutex_lock(&rm)));
    pthread_mutex_unlock(&rm);
    pthread_join(t, NULL);

    /* The owner is already dead; not made consistent, it becomes unrecoverable. */
    r_locked = 0;
    pthread_create(&t, NULL, lock_and_die, (void *)0L);
    pthread_join(t, NULL);
    unsigned word = (unsigned)atomic_load((atomic_int *)&rm.__data.__lock);
    check("futex word after owner death: FUTEX_OWNER_DIED set, owner tid cleared",
          (word & FUTEX_OWNER_DIED) && (word & FUTEX_TID_MASK) == 0);
    printf("trylock after the owner exited: %s\n", lockres(pthread_mutex_trylock(&rm)));
    pthread_mutex_unlock(&rm);
    printf("lock after unlocking without consistent: %s\n", lockres(pthread_mutex_lock(&rm)));

    /* A process-shared robust mutex whose owner process exits. */
    pthread_mutex_t *pm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(pm, &ma);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        pthread_mutex_lock(pm);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    word = (unsigned)pm->__data.__lock;
    check("shared mutex word after the owner process exited: FUTEX_OWNER_DIED, no owner",
          (word & FUTEX_OWNER_DIED) && (word & FUTEX_TID_MASK) == 0);
    printf("lock of a mutex whose owner process died: %s\n", lockres(pthread_mutex_lock(pm)));
    pthread_mutex_consistent(pm);
    pthread_mutex_unlock(pm);

    /* ... and while the parent is blocked on it. */
    atomic_int *flag = (atomic_int *)(pm + 1);
    *flag = 0;
    fflush(stdout);
    c = fork();
    if (c == 0) {
        pthread_mutex_lock(pm);
        atomic_store(flag, 1);
        while (!(atomic_load((atomic_int *)&pm->__data.__lock) & FUTEX_WAITERS)) sched_yield();
        _exit(0);
    }
    while (atomic_load(flag) == 0) sched_yield();
    printf("lock while the owner process exits: %s\n", lockres(pthread_mutex_lock(pm)));
    waitpid(c, &st, 0);
}

/* ---- clear_child_tid --------------------------------------------------------------- */

static atomic_int ctid = -1;
static atomic_int child_ran;

static int thread_fn(void *arg) {
    (void)arg;
    child_ran = 1;
    return 0; /* glibc's clone then calls exit(2) for this thread only */
}

static void mode_cleartid(void) {
    size_t sz = 64 * 1024;
    char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
    pid_t tid = clone(thread_fn, stack + sz, flags, NULL, &ctid, NULL, &ctid);
    check("clone(thread) succeeded", tid > 0);
    int seen = atomic_load(&ctid);
    check("CLONE_PARENT_SETTID stored the tid before clone returned (or it was already cleared)",
          seen == tid || seen == 0);
    int v;
    while ((v = atomic_load(&ctid)) != 0) futex(&ctid, FUTEX_WAIT, v, NULL, NULL, 0);
    check("thread ran", child_ran == 1);
    check("CLONE_CHILD_CLEARTID cleared the word at thread exit and woke us", atomic_load(&ctid) == 0);

    /* set_tid_address returns the caller's tid. */
    check("set_tid_address returns the tid", syscall(SYS_set_tid_address, NULL) == gettid());
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *m = argc > 1 ? argv[1] : "";
    printf("mode %s\n", m);
    if (!strcmp(m, "fork")) mode_fork();
    else if (!strcmp(m, "timeout")) mode_timeout();
    else if (!strcmp(m, "eintr")) mode_eintr();
    else if (!strcmp(m, "restart")) mode_restart();
    else if (!strcmp(m, "wake")) mode_wake();
    else if (!strcmp(m, "wakeop")) mode_wakeop();
    else if (!strcmp(m, "bitset")) mode_bitset();
    else if (!strcmp(m, "robust")) mode_robust();
    else if (!strcmp(m, "cleartid")) mode_cleartid();
    else {
        printf("unknown mode\n");
        return 2;
    }
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
