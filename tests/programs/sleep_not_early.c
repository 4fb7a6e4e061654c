// A sleep never ends early by its own clock: after nanosleep(d), clock_nanosleep
// of a duration, and clock_nanosleep(TIMER_ABSTIME) to a time, CLOCK_MONOTONIC
// (and CLOCK_BOOTTIME) has reached the end, in every one of many short sleeps.
// Nor does a wait with a timeout that nothing ends sooner: poll, ppoll, select,
// epoll_wait, a futex wait and sigtimedwait. The sandbox times these on the
// host's clock while its own may run a little slow as it slews onto the host's;
// the wait must go on until its own is there.
#define _GNU_SOURCE
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static long long ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void) {
    const long d = 3000000;
    struct timespec req = {0, d};
    int early_rel = 0, early_clock = 0, early_abs = 0, early_boot = 0;
    for (int i = 0; i < 40; i++) {
        long long t0 = ns(CLOCK_MONOTONIC);
        nanosleep(&req, NULL);
        early_rel += ns(CLOCK_MONOTONIC) - t0 < d;
        t0 = ns(CLOCK_BOOTTIME);
        clock_nanosleep(CLOCK_BOOTTIME, 0, &req, NULL);
        early_boot += ns(CLOCK_BOOTTIME) - t0 < d;
        t0 = ns(CLOCK_MONOTONIC);
        clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL);
        early_clock += ns(CLOCK_MONOTONIC) - t0 < d;
        long long end = ns(CLOCK_MONOTONIC) + d;
        struct timespec at = {end / 1000000000LL, end % 1000000000LL};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
        early_abs += ns(CLOCK_MONOTONIC) < end;
    }
    printf("sleeps that ended early: nanosleep %d, clock_nanosleep %d, on CLOCK_BOOTTIME %d, TIMER_ABSTIME %d\n", early_rel, early_clock, early_boot, early_abs);
    check("no sleep ended early", early_rel + early_clock + early_boot + early_abs == 0);

    // The waits: on a pipe nobody writes, a futex nobody wakes, a signal nobody sends.
    int p[2], ep = epoll_create1(0);
    pipe(p);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    uint32_t word = 0;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    int early[6] = {0};
    for (int i = 0; i < 20; i++) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        long long t0 = ns(CLOCK_MONOTONIC);
        poll(&pfd, 1, d / 1000000);
        early[0] += ns(CLOCK_MONOTONIC) - t0 < d;
        t0 = ns(CLOCK_MONOTONIC);
        ppoll(&pfd, 1, &req, NULL);
        early[1] += ns(CLOCK_MONOTONIC) - t0 < d;
        fd_set set;
        FD_ZERO(&set);
        FD_SET(p[0], &set);
        struct timeval tv = {0, d / 1000};
        t0 = ns(CLOCK_MONOTONIC);
        select(p[0] + 1, &set, NULL, NULL, &tv);
        early[2] += ns(CLOCK_MONOTONIC) - t0 < d;
        t0 = ns(CLOCK_MONOTONIC);
        epoll_wait(ep, &ev, 1, d / 1000000);
        early[3] += ns(CLOCK_MONOTONIC) - t0 < d;
        t0 = ns(CLOCK_MONOTONIC);
        syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &req, NULL, 0);
        early[4] += ns(CLOCK_MONOTONIC) - t0 < d;
        t0 = ns(CLOCK_MONOTONIC);
        sigtimedwait(&usr1, NULL, &req);
        early[5] += ns(CLOCK_MONOTONIC) - t0 < d;
    }
    printf("waits that ended early: poll %d, ppoll %d, select %d, epoll_wait %d, futex %d, sigtimedwait %d\n", early[0], early[1], early[2], early[3], early[4], early[5]);
    check("no wait ended early", early[0] + early[1] + early[2] + early[3] + early[4] + early[5] == 0);
    printf("%d failures\n", failures);
    return failures != 0;
}
