// A timed wait that a stop interrupts goes on, once continued, as Linux's does:
// poll and a timed FUTEX_WAIT restart through restart_syscall until their first
// deadline (the stop counts); select, pselect6 and ppoll restart with the time
// left they wrote back when the stop came (the stop does not count). A child waits
// 600 ms on an empty pipe (or a futex nobody wakes); its parent stops it 200 ms
// after it sleeps (its /proc stat says so) and continues it 200 ms later. poll and
// FUTEX_WAIT time out 600 ms to 780 ms after the wait began, select and the like
// 780 ms to 950 ms after; a restart with the whole timeout takes 1000 ms and more.
// Also: a handler, even an SA_RESTART one, makes poll and a timed FUTEX_WAIT fail
// with EINTR; select and ppoll write the time left back on every return, not only
// on signals; under the STICKY_TIMEOUTS personality select writes nothing back.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "timing.h"

#define WAIT_MS 600
#define STOP_AFTER_MS 200
#define STOP_MS 200

enum call { POLL, PPOLL, SELECT, PSELECT6, FUTEX_REL, FUTEX_ABS };
static const char *names[] = {"poll", "ppoll", "select", "pselect6", "FUTEX_WAIT", "FUTEX_WAIT_BITSET"};

static uint32_t word;

// One timed wait of WAIT_MS on `fd` (which never becomes readable) or on `word`.
static long timed_wait(enum call c, int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    struct timespec ts = {0, WAIT_MS * 1000000L};
    struct timeval tv = {0, WAIT_MS * 1000};
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    switch (c) {
    case POLL:
        return syscall(SYS_poll, &p, 1, WAIT_MS);
    case PPOLL:
        return syscall(SYS_ppoll, &p, 1, &ts, NULL, 8);
    case SELECT:
        return syscall(SYS_select, fd + 1, &set, NULL, NULL, &tv);
    case PSELECT6:
        return syscall(SYS_pselect6, fd + 1, &set, NULL, NULL, &ts, NULL);
    case FUTEX_REL:
        return syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
    case FUTEX_ABS: {
        struct timespec at;
        clock_gettime(CLOCK_MONOTONIC, &at);
        at.tv_nsec += WAIT_MS * 1000000L;
        if (at.tv_nsec >= 1000000000L) at.tv_sec++, at.tv_nsec -= 1000000000L;
        return syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, &at, NULL, FUTEX_BITSET_MATCH_ANY);
    }
    }
    return -1;
}

static void stopped(enum call c) {
    const char *name = names[c];
    int sync[2], idle[2];
    pipe(sync);
    pipe(idle);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        write(sync[1], "s", 1);
        errno = 0;
        long r = timed_wait(c, idle[0]);
        int e = errno;
        long ms = ms_since(&t0);
        // Whether the stop counts against the timeout.
        int deadline = c == POLL || c == FUTEX_REL || c == FUTEX_ABS;
        long lo = deadline ? WAIT_MS - 5 : WAIT_MS + STOP_MS - 20, hi = deadline ? WAIT_MS + 180 : WAIT_MS + STOP_MS + 150;
        printf("%s stopped and continued: returned %ld %s; waited at least %ld ms: %s; less than %ld ms: %s\n", name, r, errname(e), lo, ms >= lo ? "yes" : "no", hi,
               ms < hi ? "yes" : "no");
        if (ms < lo || ms >= hi) fprintf(stderr, "%s: waited %ld ms\n", name, ms);
        int timed_out = deadline && c != POLL ? r == -1 && e == ETIMEDOUT : r == 0;
        fflush(stdout);
        _exit(timed_out && ms >= lo && ms < hi ? 0 : 1);
    }
    char b;
    read(sync[0], &b, 1);
    while (state_of(child) != 'S') sched_yield();
    // How far into the wait the stop comes, not a synchronisation.
    struct timespec before = {0, STOP_AFTER_MS * 1000000L};
    nanosleep(&before, NULL);
    kill(child, SIGSTOP);
    int st;
    waitpid(child, &st, WUNTRACED);
    // How long the stop lasts, not a synchronisation.
    struct timespec stop = {0, STOP_MS * 1000000L};
    nanosleep(&stop, NULL);
    kill(child, SIGCONT);
    waitpid(child, &st, 0);
    check(name, WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(sync[0]);
    close(sync[1]);
    close(idle[0]);
    close(idle[1]);
}

static void on_alarm(int sig) { (void)sig; }

// An SA_RESTART handler interrupts the wait 100 ms in: EINTR all the same.
static void handled(enum call c) {
    int idle[2];
    pipe(idle);
    struct itimerval it = {{0, 0}, {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
    errno = 0;
    long r = timed_wait(c, idle[0]);
    printf("%s interrupted by an SA_RESTART handler: %ld %s\n", names[c], r, errname(errno));
    close(idle[0]);
    close(idle[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (enum call c = POLL; c <= FUTEX_ABS; c++) stopped(c);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    handled(POLL);
    handled(FUTEX_REL);

    // select writes the time left back when it times out (all of it gone) ...
    struct timeval tv = {0, 50000};
    long r = syscall(SYS_select, 0, NULL, NULL, NULL, &tv);
    printf("select timing out: %ld; timeval left %ld.%06ld\n", r, (long)tv.tv_sec, (long)tv.tv_usec);
    // ... and when a descriptor is ready at once (some of it left).
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    fd_set set;
    FD_ZERO(&set);
    FD_SET(p[0], &set);
    tv = (struct timeval){5, 0};
    r = syscall(SYS_select, p[0] + 1, &set, NULL, NULL, &tv);
    printf("select ready at once: %ld; timeval left between 4 s and 5 s: %s\n", r, tv.tv_sec == 4 || (tv.tv_sec == 5 && tv.tv_usec == 0) ? "yes" : "no");
    struct timespec ts = {5, 0};
    struct pollfd pfd = {p[0], POLLIN, 0};
    r = syscall(SYS_ppoll, &pfd, 1, &ts, NULL, 8);
    printf("ppoll ready at once: %ld; timespec left between 4 s and 5 s: %s\n", r, ts.tv_sec == 4 || (ts.tv_sec == 5 && ts.tv_nsec == 0) ? "yes" : "no");

    // STICKY_TIMEOUTS: the timeout stays as given.
    int old = personality(0xffffffff);
    personality(old | STICKY_TIMEOUTS);
    tv = (struct timeval){0, 50000};
    r = syscall(SYS_select, 0, NULL, NULL, NULL, &tv);
    printf("select under STICKY_TIMEOUTS: %ld; timeval %ld.%06ld\n", r, (long)tv.tv_sec, (long)tv.tv_usec);
    personality(old);

    printf("%d failures\n", failures);
    if (failures == 0) printf("all ok\n");
    return failures != 0;
}
