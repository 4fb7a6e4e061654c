// Sets the realtime clock (never run natively: it would move the host's): a
// TFD_TIMER_CANCEL_ON_SET timerfd is cancelled; absolute realtime timers and
// sleeps an hour away fire when the clock jumps past them (relative ones do
// not); then the clock moves a day ahead.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

// A timerfd armed absolute on CLOCK_REALTIME with TFD_TIMER_CANCEL_ON_SET.
static int cancel_on_set_timer(void) {
    int fd = timerfd_create(CLOCK_REALTIME, 0);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct itimerspec it = {{0, 0}, {now.tv_sec + 3600, 0}};
    timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &it, NULL);
    return fd;
}

static void *blocked_reader(void *arg) {
    uint64_t n;
    ssize_t r = read(*(int *)arg, &n, sizeof n);
    return (void *)(intptr_t)(r < 0 ? errno : 0);
}

static void step_clock(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    now.tv_sec += 1;
    clock_settime(CLOCK_REALTIME, &now);
}

static struct timespec target;

static void *abs_sleeper(void *arg) {
    (void)arg;
    return (void *)(intptr_t)clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &target, NULL);
}

static sem_t never_posted;

// sem_timedwait waits on a futex with an absolute CLOCK_REALTIME timeout.
static void *abs_sem_waiter(void *arg) {
    (void)arg;
    int r = sem_timedwait(&never_posted, &target);
    return (void *)(intptr_t)(r < 0 ? errno : 0);
}

static double mono(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

// Timers and a sleep due an hour from now on CLOCK_REALTIME: a clock set past
// that hour makes them due at once.
static void absolute_deadlines(void) {
    clock_gettime(CLOCK_REALTIME, &target);
    target.tv_sec += 3600;
    struct itimerspec at = {{0, 0}, target}, in_an_hour = {{0, 0}, {3600, 0}};
    int abs_fd = timerfd_create(CLOCK_REALTIME, 0);
    timerfd_settime(abs_fd, TFD_TIMER_ABSTIME, &at, NULL);
    int rel_fd = timerfd_create(CLOCK_REALTIME, 0);
    timerfd_settime(rel_fd, 0, &in_an_hour, NULL);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    timer_t tid;
    struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
    timer_create(CLOCK_REALTIME, &sev, &tid);
    timer_settime(tid, TIMER_ABSTIME, &at, NULL);
    pthread_t th, sem_th;
    sem_init(&never_posted, 0, 0);
    pthread_create(&th, NULL, abs_sleeper, NULL);
    pthread_create(&sem_th, NULL, abs_sem_waiter, NULL);
    double t0 = mono();
    struct timespec jump = {target.tv_sec + 1, 0};
    clock_settime(CLOCK_REALTIME, &jump);
    struct pollfd p = {abs_fd, POLLIN, 0};
    printf("absolute realtime timerfd fires after the jump: %s\n", poll(&p, 1, 10000) == 1 ? "yes" : "no");
    struct timespec ten = {10, 0};
    printf("absolute realtime POSIX timer fires after the jump: %s\n", sigtimedwait(&usr1, NULL, &ten) == SIGUSR1 ? "yes" : "no");
    void *res;
    pthread_join(th, &res);
    printf("absolute clock_nanosleep returns after the jump: %s\n", res == 0 && mono() - t0 < 10 ? "yes" : "no");
    pthread_join(sem_th, &res);
    printf("sem_timedwait (a realtime futex timeout) times out after the jump: %s\n", (intptr_t)res == ETIMEDOUT && mono() - t0 < 10 ? "yes" : "no");
    p.fd = rel_fd;
    printf("a relative realtime timerfd does not move: %s\n", poll(&p, 1, 0) == 0 ? "yes" : "no");
}

int main(void) {
    absolute_deadlines();
    int tfd = cancel_on_set_timer();
    struct pollfd pfd = {tfd, POLLIN, 0};
    printf("before a clock set, readable: %d\n", poll(&pfd, 1, 0));
    step_clock();
    printf("after a clock set, readable: %d\n", poll(&pfd, 1, 0));
    uint64_t n;
    printf("read: %s\n", read(tfd, &n, sizeof n) < 0 ? strerrorname_np(errno) : "ok");
    // A reader blocked in read wakes with ECANCELED when the clock is set.
    int tfd2 = cancel_on_set_timer();
    pthread_t th;
    pthread_create(&th, NULL, blocked_reader, &tfd2);
    void *res;
    // Blocked or not yet, the reader sees the cancellation of this one clock set.
    step_clock();
    pthread_join(th, &res);
    printf("blocked reader woke with: %s\n", strerrorname_np((int)(intptr_t)res));

    struct timespec r0, r1;
    clock_gettime(CLOCK_REALTIME, &r0);
    struct timespec set = {r0.tv_sec + 86400, 0};
    int rc = clock_settime(CLOCK_REALTIME, &set);
    clock_gettime(CLOCK_REALTIME, &r1);
    printf("clock_settime = %d, realtime moved a day: %s\n", rc, r1.tv_sec - r0.tv_sec >= 86399 ? "yes" : "no");
    struct timeval tv;
    gettimeofday(&tv, 0);
    printf("gettimeofday agrees: %s\n", tv.tv_sec - r1.tv_sec <= 1 ? "yes" : "no");
    // The legacy vsyscall page (its calls are emulated by the host, not syscall
    // instructions) answers with the sandbox's clock too.
    long (*vsys_gettimeofday)(struct timeval *, void *) = (void *)0xffffffffff600000;
    long (*vsys_time)(long *) = (void *)0xffffffffff600400;
    long (*vsys_getcpu)(unsigned *, unsigned *, void *) = (void *)0xffffffffff600800;
    struct timeval vtv = {0, 0};
    long vr = vsys_gettimeofday(&vtv, 0);
    long vt = vsys_time(0);
    unsigned vcpu = 99, cpu = 98;
    vsys_getcpu(&vcpu, 0, 0);
    syscall(SYS_getcpu, &cpu, 0, 0);
    printf("vsyscall gettimeofday = %ld, agrees: %s\n", vr, vtv.tv_sec - r1.tv_sec <= 1 && vtv.tv_sec >= r1.tv_sec ? "yes" : "no");
    printf("vsyscall time agrees: %s\n", vt - r1.tv_sec <= 1 && vt >= r1.tv_sec ? "yes" : "no");
    printf("vsyscall getcpu agrees with the syscall: %s\n", vcpu == cpu ? "yes" : "no");
    printf("%ld\n", (long)r1.tv_sec);
    return 0;
}
