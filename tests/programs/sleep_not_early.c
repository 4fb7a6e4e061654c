// A sleep never ends early by its own clock: after nanosleep(d), clock_nanosleep
// of a duration, and clock_nanosleep(TIMER_ABSTIME) to a time, CLOCK_MONOTONIC
// (and CLOCK_BOOTTIME) has reached the end, in every one of many short sleeps.
// The sandbox times sleeps on the host's clock while its own may run a little
// slow as it slews onto the host's; the sleep must go on until its own is there.
#define _GNU_SOURCE
#include <stdio.h>
#include <time.h>

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
    check("none", early_rel + early_clock + early_boot + early_abs == 0);
    printf("%d failures\n", failures);
    return failures != 0;
}
