// Timers on the sandbox's timekeeper: setitimer intervals, alarm, a POSIX timer with
// its sigev_value, timerfd expiration counts and errors, nanosleep, and the vDSO
// clock agreeing with the syscall path. Output is deterministic.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static volatile int alrm, rt, val;
static void on_alrm(int s) { (void)s; alrm++; }
static void on_rt(int s, siginfo_t *si, void *u) {
    (void)s;
    (void)u;
    rt++;
    val = si->si_value.sival_int;
}

static long ns(struct timespec t) { return t.tv_sec * 1000000000L + t.tv_nsec; }

int main(void) {
    signal(SIGALRM, on_alrm);
    struct itimerval it = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, 0);
    while (alrm < 5) pause();
    struct itimerval off = {0}, got;
    setitimer(ITIMER_REAL, &off, &got);
    printf("setitimer: the interval fired at least 5 times; old interval %ld us\n", (long)got.it_interval.tv_usec);
    alarm(100);
    printf("alarm(0) after alarm(100) returns %u\n", alarm(0));

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGRTMIN, &sa, 0);
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN;
    ev.sigev_value.sival_int = 77;
    timer_t tid;
    timer_create(CLOCK_MONOTONIC, &ev, &tid);
    struct itimerspec its = {{0, 0}, {0, 10000000}};
    /* Blocked but in sigsuspend: a one-shot signal landing between the test of
       rt and a pause() would leave the pause waiting forever. */
    sigset_t rtmin, old;
    sigemptyset(&rtmin);
    sigaddset(&rtmin, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &rtmin, &old);
    timer_settime(tid, 0, &its, 0);
    while (!rt) sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, 0);
    struct itimerspec cur;
    timer_gettime(tid, &cur);
    printf("POSIX timer: value %d, disarmed after one shot: %s\n", val, cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0 ? "yes" : "no");
    printf("timer_delete = %d, again = %d %s\n", timer_delete(tid), timer_delete(tid), strerror(errno));

    int fd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec tfs = {{0, 2000000}, {0, 2000000}};
    timerfd_settime(fd, 0, &tfs, 0);
    uint64_t n = 0, total = 0;
    while (total < 5) {
        if (read(fd, &n, 8) != 8) return 1;
        total += n;
    }
    printf("timerfd: counted at least 5 expirations\n");
    int nb = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    printf("timerfd: unarmed nonblocking read: %s\n", read(nb, &n, 8) < 0 && errno == EAGAIN ? "EAGAIN" : "other");
    char small[4];
    printf("timerfd: 4-byte read: %s\n", read(fd, small, 4) < 0 && errno == EINVAL ? "EINVAL" : "other");

    struct timespec a, b, d = {0, 5000000};
    clock_gettime(CLOCK_MONOTONIC, &a);
    nanosleep(&d, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("nanosleep(5 ms) slept at least 5 ms: %s\n", ns(b) - ns(a) >= 5000000 ? "yes" : "no");

    // The vDSO and the syscall agree within a millisecond (a coarse clock within its
    // tick). A loaded host may preempt the program between the two reads, so each
    // clock gets a few tries; one in agreement is enough.
    struct timespec v, s;
    int ok = 1;
    for (int clk = 0; clk < 8; clk++) {
        if (clk == 2 || clk == 3) continue;
        int agree = 0;
        for (int try = 0; try < 5 && !agree; try++) {
            clock_gettime(clk, &v);
            syscall(SYS_clock_gettime, clk, &s);
            long diff = ns(s) - ns(v);
            agree = diff >= 0 && diff <= (clk == 5 || clk == 6 ? 10000000L : 1000000L);
        }
        if (!agree) ok = 0;
    }
    printf("vDSO and syscall clocks agree: %s\n", ok ? "yes" : "no");
    return 0;
}
