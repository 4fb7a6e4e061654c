// CPU-time accounting: a busy loop shows in CLOCK_PROCESS_CPUTIME_ID,
// CLOCK_THREAD_CPUTIME_ID, clock_getcpuclockid's clock, times() and getrusage,
// as user time; a loop of system calls shows as system time. The busy loop runs for
// 100 ms of the thread's CPU time and the syscall loop until 20 ms of system time
// (each at most 10 s of wall time), so that a loaded host does not fail them.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

static double secs(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

// Whether a loop that started at thread CPU time `cpu0` and wall time `wall0` is done.
static int done(double cpu0, double wall0) {
    return secs(CLOCK_THREAD_CPUTIME_ID) >= cpu0 + 0.1 || secs(CLOCK_MONOTONIC) >= wall0 + 10;
}

static double user_of(const struct rusage *r) { return r->ru_utime.tv_sec + r->ru_utime.tv_usec / 1e6; }
static double system_of(const struct rusage *r) { return r->ru_stime.tv_sec + r->ru_stime.tv_usec / 1e6; }

int main(void) {
    struct rusage r0;
    double p0 = secs(CLOCK_PROCESS_CPUTIME_ID), t0 = secs(CLOCK_THREAD_CPUTIME_ID);
    double wall0 = secs(CLOCK_MONOTONIC);
    volatile unsigned long x = 0;
    while (!done(t0, wall0))
        for (int i = 0; i < 10000; i++) x += i;
    double p1 = secs(CLOCK_PROCESS_CPUTIME_ID), t1 = secs(CLOCK_THREAD_CPUTIME_ID);
    clockid_t mine;
    clock_getcpuclockid(0, &mine);
    struct tms tm;
    times(&tm);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("process CPU clock advanced >= 20 ms: %s\n", p1 - p0 >= 0.02 ? "yes" : "no");
    printf("thread CPU clock advanced >= 20 ms: %s\n", t1 - t0 >= 0.02 ? "yes" : "no");
    printf("clock_getcpuclockid's clock >= 20 ms: %s\n", secs(mine) >= 0.02 ? "yes" : "no");
    printf("times() user+system >= 2 ticks: %s\n", tm.tms_utime + tm.tms_stime >= 2 ? "yes" : "no");
    printf("getrusage user+system >= 20 ms: %s\n", ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6 >= 0.02 ? "yes" : "no");
    printf("maxrss > 0: %s\n", ru.ru_maxrss > 0 ? "yes" : "no");
    printf("the busy loop is user time: %s\n", ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec >= 20000 ? "yes" : "no");
    /* A loop with no system call at all (the one above reads a CPU clock, a system
     * call) is user time only: not counted twice (on kvm the app runs on the
     * Sentry's own host thread). */
    getrusage(RUSAGE_SELF, &r0);
    for (unsigned long i = 0; i < 200000000UL; i++) x += i;
    struct rusage r1;
    getrusage(RUSAGE_SELF, &r1);
    printf("a loop without system calls is not system time: %s\n", system_of(&r1) - system_of(&r0) < (user_of(&r1) - user_of(&r0)) / 2 ? "yes" : "no");

    /* System calls until getrusage shows 20 ms more system time (at most 10 s): how
     * fast it accrues depends on the host's load and sampling, not whether. */
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    wall0 = secs(CLOCK_MONOTONIC);
    double sys = 0;
    while (sys < 0.02 && secs(CLOCK_MONOTONIC) < wall0 + 10) {
        for (int i = 0; i < 100; i++) syscall(SYS_getppid);
        getrusage(RUSAGE_SELF, &after);
        sys = (after.ru_stime.tv_sec - before.ru_stime.tv_sec) + (after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1e6;
    }
    printf("a loop of system calls is system time (>= 10 ms): %s\n", sys >= 0.01 ? "yes" : "no");
    times(&tm);
    printf("times() counts system time too: %s\n", tm.tms_stime >= 1 ? "yes" : "no");
    return 0;
}
