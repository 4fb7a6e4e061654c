// Clocks: monotonic never goes back, realtime agrees with time() and gettimeofday() and
// with the host clock passed as argv[1] (seconds since the epoch, taken by the harness).
// Both the libc entry points (maybe vDSO) and raw syscalls are checked.
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static int valid(struct timespec t) { return t.tv_sec >= 0 && t.tv_nsec >= 0 && t.tv_nsec < 1000000000; }

static int monotonic_over(clockid_t id, int raw) {
    struct timespec prev = {0, 0}, now;
    for (int i = 0; i < 1000; i++) {
        int r = raw ? (int)syscall(SYS_clock_gettime, id, &now) : clock_gettime(id, &now);
        if (r != 0 || !valid(now) || ns(now) < ns(prev)) return 0;
        prev = now;
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: time HOST_EPOCH_SECONDS\n");
        return 2;
    }
    long host = atol(argv[1]);

    check("CLOCK_MONOTONIC non-decreasing over 1000 calls", monotonic_over(CLOCK_MONOTONIC, 0));
    check("raw CLOCK_MONOTONIC non-decreasing over 1000 calls", monotonic_over(CLOCK_MONOTONIC, 1));
    check("raw CLOCK_BOOTTIME non-decreasing", monotonic_over(CLOCK_BOOTTIME, 1));
    check("raw CLOCK_MONOTONIC_RAW non-decreasing", monotonic_over(CLOCK_MONOTONIC_RAW, 1));
    check("raw CLOCK_MONOTONIC_COARSE non-decreasing", monotonic_over(CLOCK_MONOTONIC_COARSE, 1));

    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    volatile unsigned long spin = 0;
    for (int i = 0; i < 10000000; i++) spin += i;
    clock_gettime(CLOCK_MONOTONIC, &b);
    check("CLOCK_MONOTONIC advances over a busy loop", ns(b) > ns(a));

    struct timespec rt, rtraw, rtc;
    check("clock_gettime(CLOCK_REALTIME)", clock_gettime(CLOCK_REALTIME, &rt) == 0 && valid(rt));
    check("raw clock_gettime(CLOCK_REALTIME)", syscall(SYS_clock_gettime, CLOCK_REALTIME, &rtraw) == 0 && valid(rtraw));
    check("raw clock_gettime(CLOCK_REALTIME_COARSE)", syscall(SYS_clock_gettime, CLOCK_REALTIME_COARSE, &rtc) == 0 && valid(rtc));
    time_t t = time(NULL);
    time_t traw = (time_t)syscall(SYS_time, NULL);
    time_t tout = 0;
    time_t tret = (time_t)syscall(SYS_time, &tout);
    struct timeval tv, tvraw;
    check("gettimeofday", gettimeofday(&tv, NULL) == 0 && tv.tv_usec >= 0 && tv.tv_usec < 1000000);
    check("raw gettimeofday", syscall(SYS_gettimeofday, &tvraw, NULL) == 0 && tvraw.tv_usec >= 0 && tvraw.tv_usec < 1000000);
    check("realtime within 5 s of time()", llabs((long long)rt.tv_sec - t) <= 5);
    check("raw realtime within 5 s of raw time()", llabs((long long)rtraw.tv_sec - traw) <= 5);
    check("realtime coarse within 5 s of time()", llabs((long long)rtc.tv_sec - t) <= 5);
    check("time(&t) stores what it returns", tret == tout && llabs((long long)tret - t) <= 5);
    check("gettimeofday within 5 s of time()", llabs((long long)tv.tv_sec - t) <= 5 && llabs((long long)tvraw.tv_sec - t) <= 5);
    check("time() within 60 s of the host clock", llabs((long long)t - host) <= 60);

    struct timespec res;
    check("clock_getres(CLOCK_MONOTONIC) in (0, 1 ms]",
          clock_getres(CLOCK_MONOTONIC, &res) == 0 && res.tv_sec == 0 && res.tv_nsec > 0 && res.tv_nsec <= 1000000);
    check("raw clock_getres(CLOCK_REALTIME) in (0, 1 ms]",
          syscall(SYS_clock_getres, CLOCK_REALTIME, &res) == 0 && res.tv_sec == 0 && res.tv_nsec > 0 && res.tv_nsec <= 1000000);
    check("raw clock_getres(CLOCK_MONOTONIC, NULL)", syscall(SYS_clock_getres, CLOCK_MONOTONIC, NULL) == 0);
    check("clock_gettime(bad clock) -> EINVAL", syscall(SYS_clock_gettime, 1000, &res) == -1 && errno == EINVAL);
    check("clock_getres(bad clock) -> EINVAL", syscall(SYS_clock_getres, 1000, &res) == -1 && errno == EINVAL);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
