// pthreads: 8 worker threads using a mutex, condition variables, a barrier, a rwlock and
// thread-local storage, their join results summed; deferred cancellation at a condvar wait
// and at pthread_testcancel; pthread_kill to a thread with a handler; exit() from a thread,
// pthread_exit from the main thread, and fork from a thread (in child processes).
// Only the main thread prints, and only properties, so the output is deterministic.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define NT 8
#define INCS 5000
#define RW_ROUNDS 1000

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_go = PTHREAD_COND_INITIALIZER;
static pthread_cond_t cv_ready = PTHREAD_COND_INITIALIZER;
static int ready, go;
static long counter;
static pthread_barrier_t bar;
static atomic_int serial_count, barrier_errors;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static long rw_value;
static atomic_int readers_inside, writer_inside, rw_violations, rw_writes;
static __thread int tls_int = 5;
static __thread char tls_buf[512]; /* .tbss: zero in every thread */
static pid_t tids[NT];
static pid_t pids[NT];

static void *worker(void *arg) {
    int id = (int)(long)arg;
    int tls_ok = tls_int == 5 && tls_buf[0] == 0 && tls_buf[511] == 0;
    tls_int = 100 + id;
    memset(tls_buf, id + 1, sizeof tls_buf);
    tids[id] = gettid();
    pids[id] = getpid();

    pthread_mutex_lock(&mu);
    ready++;
    pthread_cond_signal(&cv_ready);
    while (!go) pthread_cond_wait(&cv_go, &mu);
    pthread_mutex_unlock(&mu);

    for (int i = 0; i < INCS; i++) {
        pthread_mutex_lock(&mu);
        counter++;
        pthread_mutex_unlock(&mu);
    }

    int r = pthread_barrier_wait(&bar);
    if (r == PTHREAD_BARRIER_SERIAL_THREAD) serial_count++;
    else if (r != 0) barrier_errors++;
    /* After the barrier every increment is done. */
    if (counter != (long)NT * INCS) barrier_errors++;

    for (int i = 0; i < RW_ROUNDS; i++) {
        if (i % 16 == id % 16) {
            pthread_rwlock_wrlock(&rw);
            if (atomic_fetch_add(&writer_inside, 1) != 0 || readers_inside != 0) rw_violations++;
            rw_value++;
            rw_writes++;
            atomic_fetch_sub(&writer_inside, 1);
            pthread_rwlock_unlock(&rw);
        } else {
            pthread_rwlock_rdlock(&rw);
            atomic_fetch_add(&readers_inside, 1);
            if (writer_inside != 0) rw_violations++;
            volatile long v = rw_value;
            (void)v;
            atomic_fetch_sub(&readers_inside, 1);
            pthread_rwlock_unlock(&rw);
        }
    }

    tls_ok = tls_ok && tls_int == 100 + id && tls_buf[0] == id + 1 && tls_buf[511] == id + 1;
    return (void *)(long)(tls_ok ? id * id : -1000);
}

/* --- cancellation ------------------------------------------------------------------- */

static pthread_mutex_t cmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ccv = PTHREAD_COND_INITIALIZER;
static int c_waiting, c_cleanup_ran, c_cleanup_held_mutex;

static void cond_cleanup(void *arg) {
    (void)arg;
    c_cleanup_ran = 1;
    /* A thread cancelled in pthread_cond_wait holds the mutex again when cleanup runs. */
    c_cleanup_held_mutex = pthread_mutex_trylock(&cmu) == EBUSY;
    pthread_mutex_unlock(&cmu);
}

static void *cancel_in_cond_wait(void *arg) {
    (void)arg;
    pthread_mutex_lock(&cmu);
    pthread_cleanup_push(cond_cleanup, NULL);
    c_waiting = 1;
    for (;;) pthread_cond_wait(&ccv, &cmu); /* never signalled */
    pthread_cleanup_pop(0);
    return NULL;
}

static sem_t t_ready, t_go;
static int t_survived_disabled, t_after_testcancel;

static void *cancel_at_testcancel(void *arg) {
    (void)arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    sem_post(&t_ready);
    while (sem_wait(&t_go) != 0) {
    }
    pthread_testcancel(); /* disabled: the pending request waits */
    t_survived_disabled = 1;
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    for (int i = 0; i < 1000000; i++) pthread_testcancel();
    t_after_testcancel = 1;
    return NULL;
}

/* --- pthread_kill ------------------------------------------------------------------- */

static atomic_int handler_tid;
static atomic_int handler_sig;
static sem_t k_handled, k_ready, k_done;

static void usr1_handler(int sig) {
    handler_sig = sig;
    handler_tid = (int)syscall(SYS_gettid);
    sem_post(&k_handled);
}

static atomic_int k_target_tid;

static void *kill_target(void *arg) {
    (void)arg;
    k_target_tid = gettid();
    sem_post(&k_ready);
    while (sem_wait(&k_done) != 0) { /* EINTR from the handler */
    }
    return NULL;
}

/* --- process exit from threads ------------------------------------------------------ */

static void *exit_3(void *arg) {
    (void)arg;
    exit(3);
}

static void *exit_4_later(void *arg) {
    pthread_t main_thread = *(pthread_t *)arg;
    (void)main_thread;
    /* The main thread has called pthread_exit (or is about to): the process lives on. */
    for (int i = 0; i < 100; i++) sched_yield();
    exit(4);
}

static int child_fork_ok;

static void *fork_from_thread(void *arg) {
    (void)arg;
    pid_t p = fork();
    if (p == 0) {
        /* The child has one thread: the one that forked. */
        _exit(gettid() == getpid() ? 5 : 6);
    }
    int st;
    child_fork_ok = waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 5;
    return NULL;
}

static int run_child(void (*fn)(void)) {
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        fn();
        _exit(99);
    }
    int st;
    if (waitpid(p, &st, 0) != p) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void child_thread_exits(void) {
    pthread_t t;
    pthread_create(&t, NULL, exit_3, NULL);
    for (;;) pause();
}

static void child_main_pthread_exit(void) {
    static pthread_t self;
    self = pthread_self();
    pthread_t t;
    pthread_create(&t, NULL, exit_4_later, &self);
    pthread_exit(NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_barrier_init(&bar, NULL, NT);
    tls_int = 77;
    pthread_t th[NT];
    int created = 0;
    for (long i = 0; i < NT; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)i) == 0) created++;
    check("8 threads created", created == NT);

    pthread_mutex_lock(&mu);
    while (ready < NT) pthread_cond_wait(&cv_ready, &mu);
    go = 1;
    pthread_cond_broadcast(&cv_go);
    pthread_mutex_unlock(&mu);

    long sum = 0;
    int joined = 0;
    for (int i = 0; i < NT; i++) {
        void *ret;
        if (pthread_join(th[i], &ret) == 0) joined++;
        sum += (long)ret;
    }
    check("8 threads joined", joined == NT);
    printf("sum of join results: %ld\n", sum);
    check("join results sum to 0^2+...+7^2 = 140 (TLS private and initialised)", sum == 140);
    printf("mutex-protected counter: %ld\n", counter);
    check("counter == 8 * 5000", counter == (long)NT * INCS);
    check("exactly one PTHREAD_BARRIER_SERIAL_THREAD", serial_count == 1);
    check("barrier released everyone after all increments", barrier_errors == 0);
    check("rwlock: no reader alongside a writer, one writer at a time", rw_violations == 0);
    check("rwlock-protected value == number of writes", rw_value == rw_writes && rw_writes > 0);
    check("main thread's TLS untouched", tls_int == 77);
    int distinct = 1, same_pid = 1;
    for (int i = 0; i < NT; i++) {
        if (tids[i] == getpid() || tids[i] <= 0) distinct = 0;
        if (pids[i] != getpid()) same_pid = 0;
        for (int j = 0; j < i; j++)
            if (tids[i] == tids[j]) distinct = 0;
    }
    check("thread ids distinct and not the pid", distinct);
    check("getpid() the same in every thread", same_pid);

    /* Deferred cancellation at pthread_cond_wait. */
    pthread_t ct;
    pthread_create(&ct, NULL, cancel_in_cond_wait, NULL);
    for (;;) {
        pthread_mutex_lock(&cmu); /* free only while the thread is inside pthread_cond_wait */
        int w = c_waiting;
        pthread_mutex_unlock(&cmu);
        if (w) break;
        sched_yield();
    }
    check("pthread_cancel(thread in cond_wait) = 0", pthread_cancel(ct) == 0);
    void *cret = NULL;
    check("join cancelled thread", pthread_join(ct, &cret) == 0);
    check("its result is PTHREAD_CANCELED", cret == PTHREAD_CANCELED);
    check("cleanup handler ran", c_cleanup_ran == 1);
    check("cleanup ran with the condvar mutex re-acquired", c_cleanup_held_mutex == 1);
    check("mutex free after cleanup", pthread_mutex_trylock(&cmu) == 0 && pthread_mutex_unlock(&cmu) == 0);

    /* Cancellation disabled, then acted on at pthread_testcancel. */
    sem_init(&t_ready, 0, 0);
    sem_init(&t_go, 0, 0);
    pthread_t tt;
    pthread_create(&tt, NULL, cancel_at_testcancel, NULL);
    while (sem_wait(&t_ready) != 0) {
    }
    check("pthread_cancel(thread with cancellation disabled) = 0", pthread_cancel(tt) == 0);
    sem_post(&t_go);
    void *tret = NULL;
    check("join", pthread_join(tt, &tret) == 0);
    check("cancelled at pthread_testcancel after re-enabling", tret == PTHREAD_CANCELED);
    check("survived pthread_testcancel while disabled", t_survived_disabled == 1);
    check("did not run past the enabled pthread_testcancel", t_after_testcancel == 0);

    /* pthread_kill runs the handler in the target thread. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = usr1_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sem_init(&k_handled, 0, 0);
    sem_init(&k_ready, 0, 0);
    sem_init(&k_done, 0, 0);
    pthread_t kt;
    pthread_create(&kt, NULL, kill_target, NULL);
    while (sem_wait(&k_ready) != 0) {
    }
    check("pthread_kill(t, 0) = 0 (thread alive)", pthread_kill(kt, 0) == 0);
    check("pthread_kill(t, SIGUSR1) = 0", pthread_kill(kt, SIGUSR1) == 0);
    while (sem_wait(&k_handled) != 0) {
    }
    check("handler got SIGUSR1", handler_sig == SIGUSR1);
    check("handler ran in the target thread", handler_tid == k_target_tid && handler_tid != gettid());
    sem_post(&k_done);
    check("join signalled thread", pthread_join(kt, NULL) == 0);
    check("pthread_kill(self, 65) = EINVAL", pthread_kill(pthread_self(), 65) == EINVAL);

    /* Processes with threads. */
    int st = run_child(child_thread_exits);
    printf("exit(3) from a second thread: process status %d\n", st);
    st = run_child(child_main_pthread_exit);
    printf("main pthread_exit, other thread exit(4): process status %d\n", st);
    pthread_t ft;
    pthread_create(&ft, NULL, fork_from_thread, NULL);
    pthread_join(ft, NULL);
    check("fork from a thread: child has the forking thread only (tid == pid)", child_fork_ok);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
