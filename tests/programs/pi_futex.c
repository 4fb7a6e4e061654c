// Priority-inheritance futexes: FUTEX_LOCK_PI, FUTEX_LOCK_PI2, FUTEX_TRYLOCK_PI and
// FUTEX_UNLOCK_PI through raw syscalls (the word protocol, the hand-over to a waiter,
// timeouts, and the errors: EDEADLK, EPERM, ESRCH, EINVAL, EAGAIN, ENOSYS), then
// glibc's PTHREAD_PRIO_INHERIT mutexes: contention, trylock, timed locks that expire,
// and a robust PI mutex whose owner exits (EOWNERDEAD, pthread_mutex_consistent),
// with and without a waiter, and a process-shared one whose owner process exits.
// A handled signal restarts a waiting FUTEX_LOCK_PI.
// "Queued" is established without sleeps: a locker that waits in the kernel has set
// FUTEX_WAITERS in the word before it is queued, under the same lock.
#define _GNU_SOURCE
#include <errno.h>
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

#ifndef FUTEX_LOCK_PI2
#define FUTEX_LOCK_PI2 13
#endif
#ifndef FUTEX_LOCK_PI2_PRIVATE
#define FUTEX_LOCK_PI2_PRIVATE (FUTEX_LOCK_PI2 | FUTEX_PRIVATE_FLAG)
#endif

// No TID reaches this (pid_max is at most 2^22).
#define NO_SUCH_TID 0x3fff0000u

static long futex_pi(void *uaddr, int op, const struct timespec *ts) {
    return syscall(SYS_futex, uaddr, op, 0, ts, NULL, 0);
}

static const char *res(long r) {
    static char buf[64];
    if (r >= 0) snprintf(buf, sizeof buf, "%ld", r);
    else snprintf(buf, sizeof buf, "-1 %s", errname(errno));
    return buf;
}

// A helper thread's result, kept with its errno for main to print.
static long saved(long r) {
    return r < 0 ? -errno : r;
}

static const char *res_saved(long v) {
    if (v < 0) errno = (int)-v;
    return res(v < 0 ? -1 : v);
}

static uint32_t my_tid(void) {
    return (uint32_t)gettid();
}

static struct timespec in_ms(clockid_t clk, long ms) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_nsec += ms * 1000000;
    ts.tv_sec += ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    return ts;
}

static void wait_for_waiters(_Atomic uint32_t *w) {
    while (!(atomic_load(w) & FUTEX_WAITERS)) sched_yield();
}

static void wait_for(atomic_int *flag, int value) {
    while (atomic_load(flag) != value) sched_yield();
}

// ---- raw syscalls ----

static _Atomic uint32_t word;
static atomic_int step;
static _Atomic uint32_t helper_tid;
// Helpers' results, printed by main once they are joined (for a fixed order).
static long helper_lock, helper_unlock, second_lock;
static int second_owns;

// Takes `word`, then gives it up at step 2 once a waiter (main) is queued.
static void *holder(void *arg) {
    (void)arg;
    atomic_store(&helper_tid, my_tid());
    helper_lock = saved(futex_pi(&word, FUTEX_LOCK_PI_PRIVATE, NULL));
    atomic_store(&step, 1);
    wait_for(&step, 2);
    wait_for_waiters(&word);
    helper_unlock = saved(futex_pi(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL));
    return NULL;
}

// For the EINVAL case: a second locker that queues behind `holder2`.
static void *second_locker(void *arg) {
    (void)arg;
    atomic_store(&helper_tid, my_tid());
    second_lock = saved(futex_pi(&word, FUTEX_LOCK_PI_PRIVATE, NULL));
    second_owns = (atomic_load(&word) & FUTEX_TID_MASK) == my_tid();
    futex_pi(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL);
    return NULL;
}

static void *holder2(void *arg) {
    (void)arg;
    helper_lock = saved(futex_pi(&word, FUTEX_LOCK_PI_PRIVATE, NULL));
    atomic_store(&step, 11);
    wait_for(&step, 12);
    helper_unlock = saved(futex_pi(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL));
    return NULL;
}

static void raw_calls(void) {
    uint32_t me = my_tid();
    long r;

    atomic_store(&word, 0);
    r = futex_pi(&word, FUTEX_LOCK_PI_PRIVATE, NULL);
    printf("LOCK_PI on a free word: %s\n", res(r));
    check("the word holds the caller's TID", atomic_load(&word) == me);
    printf("LOCK_PI again: %s\n", res(futex_pi(&word, FUTEX_LOCK_PI_PRIVATE, NULL)));
    printf("TRYLOCK_PI by the owner: %s\n", res(futex_pi(&word, FUTEX_TRYLOCK_PI_PRIVATE, NULL)));
    printf("UNLOCK_PI: %s\n", res(futex_pi(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL)));
    check("the unlocked word is 0", atomic_load(&word) == 0);
    printf("UNLOCK_PI of a free word: %s\n", res(futex_pi(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL)));
    printf("TRYLOCK_PI on a free word: %s\n", res(futex_pi(&word, FUTEX_TRYLOCK_PI_PRIVATE, NULL)));
    check("trylock took it", atomic_load(&word) == me);
    futex_pi(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL);

    // A dead owner's word: taken, FUTEX_OWNER_DIED kept for the new owner.
    atomic_store(&word, FUTEX_OWNER_DIED);
    printf("LOCK_PI on an owner-died word: %s\n", res(futex_pi(&word, FUTEX_LOCK_PI_PRIVATE, NULL)));
    check("the word is the caller's TID with FUTEX_OWNER_DIED", atomic_load(&word) == (me | FUTEX_OWNER_DIED));
    printf("UNLOCK_PI of it: %s\n", res(futex_pi(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL)));
    check("and it is 0 again", atomic_load(&word) == 0);

    // An owner that does not exist.
    atomic_store(&word, NO_SUCH_TID);
    printf("LOCK_PI on a word owned by no thread: %s\n", res(futex_pi(&word, FUTEX_LOCK_PI_PRIVATE, NULL)));
    check("FUTEX_WAITERS was set on the way", atomic_load(&word) == (NO_SUCH_TID | FUTEX_WAITERS));
    printf("TRYLOCK_PI on it: %s\n", res(futex_pi(&word, FUTEX_TRYLOCK_PI_PRIVATE, NULL)));
    printf("UNLOCK_PI of another's word: %s\n", res(futex_pi(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL)));

    // Bad arguments.
    char buf[16] __attribute__((aligned(8))) = {0};
    printf("LOCK_PI on a misaligned word: %s\n", res(futex_pi(buf + 2, FUTEX_LOCK_PI_PRIVATE, NULL)));
    printf("TRYLOCK_PI on a misaligned word: %s\n", res(futex_pi(buf + 2, FUTEX_TRYLOCK_PI_PRIVATE, NULL)));
    printf("UNLOCK_PI on a misaligned word: %s\n", res(futex_pi(buf + 2, FUTEX_UNLOCK_PI_PRIVATE, NULL)));
    printf("LOCK_PI with FUTEX_CLOCK_REALTIME: %s\n", res(futex_pi(buf, FUTEX_LOCK_PI_PRIVATE | FUTEX_CLOCK_REALTIME, NULL)));
    struct timespec bad = {.tv_sec = 0, .tv_nsec = 1000000000};
    printf("LOCK_PI with a bad timeout: %s\n", res(futex_pi(buf, FUTEX_LOCK_PI_PRIVATE, &bad)));

    // A word another live thread owns.
    atomic_store(&word, 0);
    atomic_store(&step, 0);
    pthread_t th;
    pthread_create(&th, NULL, holder, NULL);
    wait_for(&step, 1);
    uint32_t owner = atomic_load(&helper_tid);
    check("a helper takes the free word", helper_lock == 0 && atomic_load(&word) == owner);
    printf("TRYLOCK_PI on another's word: %s\n", res(futex_pi(&word, FUTEX_TRYLOCK_PI_PRIVATE, NULL)));
    printf("UNLOCK_PI by a non-owner: %s\n", res(futex_pi(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL)));
    struct timespec ts = in_ms(CLOCK_REALTIME, 30);
    printf("LOCK_PI, CLOCK_REALTIME deadline 30 ms ahead: %s\n", res(futex_pi(&word, FUTEX_LOCK_PI_PRIVATE, &ts)));
    ts = in_ms(CLOCK_MONOTONIC, 30);
    printf("LOCK_PI2, CLOCK_MONOTONIC deadline 30 ms ahead: %s\n", res(futex_pi(&word, FUTEX_LOCK_PI2_PRIVATE, &ts)));
    ts = in_ms(CLOCK_REALTIME, 30);
    printf("LOCK_PI2|FUTEX_CLOCK_REALTIME deadline 30 ms ahead: %s\n", res(futex_pi(&word, FUTEX_LOCK_PI2_PRIVATE | FUTEX_CLOCK_REALTIME, &ts)));
    ts = in_ms(CLOCK_REALTIME, 0);
    ts.tv_sec -= 1;
    printf("LOCK_PI with a deadline passed: %s\n", res(futex_pi(&word, FUTEX_LOCK_PI_PRIVATE, &ts)));
    check("the owner is unchanged", (atomic_load(&word) & FUTEX_TID_MASK) == owner);

    // The hand-over: main waits, the owner unlocks, main owns the word. The failed
    // attempts left FUTEX_WAITERS set (as Linux does); clear it, so that the owner
    // sees main queued by the bit.
    atomic_store(&word, owner);
    atomic_store(&step, 2);
    r = futex_pi(&word, FUTEX_LOCK_PI_PRIVATE, NULL);
    printf("LOCK_PI waiting for the owner's unlock: %s\n", res(r));
    check("the word is handed over: the waiter's TID with FUTEX_WAITERS", atomic_load(&word) == (me | FUTEX_WAITERS));
    pthread_join(th, NULL);
    check("the owner's unlock succeeded", helper_unlock == 0);
    printf("UNLOCK_PI with nobody waiting: %s\n", res(futex_pi(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL)));
    check("the word is 0", atomic_load(&word) == 0);

    // A word the app changed behind the kernel's back while a thread waits: EINVAL.
    atomic_store(&step, 10);
    pthread_t a, b;
    pthread_create(&a, NULL, holder2, NULL);
    wait_for(&step, 11);
    uint32_t first = atomic_load(&word);
    pthread_create(&b, NULL, second_locker, NULL);
    wait_for_waiters(&word);
    uint32_t waiter = atomic_load(&helper_tid);
    atomic_store(&word, waiter | FUTEX_WAITERS);
    printf("LOCK_PI on a word naming another than the kernel's owner: %s\n", res(futex_pi(&word, FUTEX_LOCK_PI_PRIVATE, NULL)));
    atomic_store(&word, first | FUTEX_WAITERS);
    atomic_store(&step, 12);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("the first owner hands the word on: %s\n", res_saved(helper_unlock));
    printf("the queued locker gets it: %s, owning the word: %s\n", res_saved(second_lock), second_owns ? "yes" : "no");
    check("the word is free at the end", atomic_load(&word) == 0);
}

// ---- a signal during the wait ----

static atomic_int handled;
static long interrupted_lock;
static int interrupted_owns;

static void on_usr1(int sig) {
    (void)sig;
    atomic_store(&handled, 1);
}

static void *interrupted_locker(void *arg) {
    (void)arg;
    interrupted_lock = saved(futex_pi(&word, FUTEX_LOCK_PI_PRIVATE, NULL));
    interrupted_owns = (atomic_load(&word) & FUTEX_TID_MASK) == my_tid();
    futex_pi(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL);
    return NULL;
}

// A handled signal (without SA_RESTART) does not end the wait: Linux restarts it.
static void signal_during_wait(void) {
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    atomic_store(&word, 0);
    futex_pi(&word, FUTEX_LOCK_PI_PRIVATE, NULL);
    pthread_t th;
    pthread_create(&th, NULL, interrupted_locker, NULL);
    wait_for_waiters(&word);
    pthread_kill(th, SIGUSR1);
    while (!atomic_load(&handled)) sched_yield();
    futex_pi(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL);
    pthread_join(th, NULL);
    printf("LOCK_PI interrupted by a handler without SA_RESTART: %s (handled: %d, owning the word: %s)\n", res_saved(interrupted_lock), atomic_load(&handled),
           interrupted_owns ? "yes" : "no");
}

// ---- pthread mutexes ----

#define THREADS 4
#define ROUNDS 3000

static pthread_mutex_t pi_mutex;
static long counter;

static void *contend(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&pi_mutex);
        long c = counter;
        if (i % 64 == 0) sched_yield();
        counter = c + 1;
        pthread_mutex_unlock(&pi_mutex);
    }
    return NULL;
}

static void *try_and_time(void *arg) {
    (void)arg;
    printf("pthread_mutex_trylock of a held PI mutex: %s\n", errname(pthread_mutex_trylock(&pi_mutex)));
    struct timespec ts = in_ms(CLOCK_REALTIME, 40);
    printf("pthread_mutex_timedlock, 40 ms: %s\n", errname(pthread_mutex_timedlock(&pi_mutex, &ts)));
    ts = in_ms(CLOCK_MONOTONIC, 40);
    printf("pthread_mutex_clocklock(CLOCK_MONOTONIC), 40 ms: %s\n", errname(pthread_mutex_clocklock(&pi_mutex, CLOCK_MONOTONIC, &ts)));
    return NULL;
}

static pthread_mutex_t robust;
static atomic_int robust_step;

static void *die_holding(void *arg) {
    int wait_for_main = *(int *)arg;
    pthread_mutex_lock(&robust);
    atomic_store(&robust_step, 1);
    if (wait_for_main) wait_for_waiters((_Atomic uint32_t *)&robust.__data.__lock);
    return NULL; // exits holding it
}

static void robust_case(int with_waiter) {
    atomic_store(&robust_step, 0);
    pthread_t th;
    pthread_create(&th, NULL, die_holding, &with_waiter);
    wait_for(&robust_step, 1);
    // Without a waiter: the owner is gone (its robust list walked) before the lock.
    if (!with_waiter) pthread_join(th, NULL);
    int r = pthread_mutex_lock(&robust);
    printf("locking a robust PI mutex whose owner exited%s: %s\n", with_waiter ? ", waiting" : "", errname(r));
    printf("the lock word names the new owner: %s, FUTEX_OWNER_DIED: %d, FUTEX_WAITERS: %d\n", (uint32_t)(robust.__data.__lock & FUTEX_TID_MASK) == my_tid() ? "yes" : "no",
           !!(robust.__data.__lock & FUTEX_OWNER_DIED), !!(robust.__data.__lock & FUTEX_WAITERS));
    printf("pthread_mutex_consistent: %s\n", errname(pthread_mutex_consistent(&robust)));
    printf("unlock: %s\n", errname(pthread_mutex_unlock(&robust)));
    printf("lock again: %s\n", errname(pthread_mutex_lock(&robust)));
    pthread_mutex_unlock(&robust);
    if (with_waiter) pthread_join(th, NULL);
}

// A process-shared robust PI mutex whose owner process exits while the parent waits.
static void robust_across_processes(pthread_mutexattr_t *a) {
    struct shared {
        pthread_mutex_t m;
        atomic_int locked;
    } *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_setpshared(a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&sh->m, a);
    atomic_store(&sh->locked, 0);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(&sh->m);
        atomic_store(&sh->locked, 1);
        wait_for_waiters((_Atomic uint32_t *)&sh->m.__data.__lock);
        _exit(0); // holding it
    }
    wait_for(&sh->locked, 1);
    int r = pthread_mutex_lock(&sh->m);
    printf("locking a shared robust PI mutex whose owner process exited, waiting: %s\n", errname(r));
    printf("the lock word names the new owner: %s\n", (uint32_t)(sh->m.__data.__lock & FUTEX_TID_MASK) == my_tid() ? "yes" : "no");
    printf("pthread_mutex_consistent: %s\n", errname(pthread_mutex_consistent(&sh->m)));
    printf("unlock: %s\n", errname(pthread_mutex_unlock(&sh->m)));
    int status;
    waitpid(pid, &status, 0);
    check("the child exited normally", WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void mutexes(void) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    pthread_mutex_init(&pi_mutex, &a);

    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, contend, NULL);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    printf("%d threads, %d rounds each under a PI mutex: %ld\n", THREADS, ROUNDS, counter);

    pthread_mutex_lock(&pi_mutex);
    pthread_t t;
    pthread_create(&t, NULL, try_and_time, NULL);
    pthread_join(t, NULL);
    pthread_mutex_unlock(&pi_mutex);
    printf("pthread_mutex_trylock of a free PI mutex: %s\n", errname(pthread_mutex_trylock(&pi_mutex)));
    pthread_mutex_unlock(&pi_mutex);

    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &a);
    robust_case(0);
    robust_case(1);
    robust_across_processes(&a);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    raw_calls();
    signal_during_wait();
    mutexes();
    printf("%d failures\n", failures);
    return failures != 0;
}
