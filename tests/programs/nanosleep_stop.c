// A relative sleep that a stop interrupts goes on, once continued, until its
// first deadline, not for its whole duration again: Linux restarts it through
// restart_syscall. A child sleeps 400 ms (nanosleep, then clock_nanosleep); its
// parent stops it once it sleeps (its /proc stat says so) and continues it
// 200 ms later. The sleep must end between 400 ms and 580 ms after it began
// (a restart with the full duration takes 600 ms and more). restart_syscall
// with nothing to restart is EINTR.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "timing.h"

#define SLEEP_MS 400
#define STOP_MS 200

static void one(const char *name, int use_clock_nanosleep) {
    int pfd[2];
    pipe(pfd);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        struct timespec t0, req = {0, SLEEP_MS * 1000000L}, rem = {0, 0};
        clock_gettime(CLOCK_MONOTONIC, &t0);
        write(pfd[1], "s", 1);
        int r = use_clock_nanosleep ? clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem) : nanosleep(&req, &rem);
        long ms = ms_since(&t0);
        printf("%s: returned %d; slept at least %d ms: %s; less than %d ms: %s\n", name, r, SLEEP_MS, ms >= SLEEP_MS ? "yes" : "no", SLEEP_MS + STOP_MS - 20,
               ms < SLEEP_MS + STOP_MS - 20 ? "yes" : "no");
        if (ms >= SLEEP_MS + STOP_MS - 20) fprintf(stderr, "%s: slept %ld ms\n", name, ms);
        fflush(stdout);
        _exit(0);
    }
    char b;
    read(pfd[0], &b, 1);
    while (state_of(c) != 'S') sched_yield();
    kill(c, SIGSTOP);
    int st;
    waitpid(c, &st, WUNTRACED);
    printf("%s: stopped: %s\n", name, WIFSTOPPED(st) ? "yes" : "no");
    fflush(stdout);
    // How long the stop lasts, not a synchronisation.
    struct timespec stop = {0, STOP_MS * 1000000L};
    nanosleep(&stop, NULL);
    kill(c, SIGCONT);
    waitpid(c, &st, 0);
    printf("%s: child exited %d\n", name, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    close(pfd[0]);
    close(pfd[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    errno = 0;
    long r = syscall(SYS_restart_syscall);
    printf("restart_syscall with nothing to restart: %ld %s\n", r, errname(errno));
    one("nanosleep", 0);
    one("clock_nanosleep", 1);
    printf("all ok\n");
    return 0;
}
