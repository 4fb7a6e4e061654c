// Signal-driven I/O: O_ASYNC with an owner (F_SETOWN, F_SETOWN_EX) signals it
// when input arrives: SIGIO without details, or F_SETSIG's signal with si_code
// POLL_IN, si_band and si_fd; on a pipe and a socketpair, for a process, a
// process group and a thread; and the errors. Prints only what is the same
// natively and in the sandbox.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "check.h"

static volatile int got, code, fd_seen;
static volatile long band;

static void on_signal(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    got++;
    code = si->si_code;
    band = si->si_band;
    fd_seen = si->si_fd;
}

static void catch(int sig) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(sig, &sa, NULL);
}

static void reset(void) {
    got = 0;
    code = 0;
    band = 0;
    fd_seen = -1;
}

static const char *err(long r) {
    return r < 0 ? errname(errno) : "0";
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    // Signals to our process group must not reach whoever started us.
    setpgid(0, 0);
    catch(SIGIO);
    catch(SIGRTMIN + 1);
    catch(SIGRTMIN + 2);
    char buf[64];

    int p[2];
    pipe(p);
    printf("F_GETOWN at first: %d\n", fcntl(p[0], F_GETOWN));
    printf("F_GETSIG at first: %d\n", fcntl(p[0], F_GETSIG));
    reset();
    write(p[1], "x", 1);
    read(p[0], buf, sizeof buf);
    printf("without O_ASYNC: %d signals\n", got);

    check("F_SETOWN to self", fcntl(p[0], F_SETOWN, getpid()) == 0);
    check("F_GETOWN says self", fcntl(p[0], F_GETOWN) == getpid());
    check("F_SETFL O_ASYNC", fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_ASYNC) == 0);
    printf("O_ASYNC in F_GETFL: %d\n", !!(fcntl(p[0], F_GETFL) & O_ASYNC));
    reset();
    write(p[1], "x", 1);
    printf("pipe input, SIGIO: %d signal(s), si_code %#x\n", got, code);
    read(p[0], buf, sizeof buf);

    check("F_SETSIG SIGRTMIN+1", fcntl(p[0], F_SETSIG, SIGRTMIN + 1) == 0);
    check("F_GETSIG says it", fcntl(p[0], F_GETSIG) == SIGRTMIN + 1);
    reset();
    write(p[1], "xy", 2);
    printf("pipe input, F_SETSIG: %d signal(s), si_code %d, si_band %#lx, si_fd is the read end: %d\n", got, code, band, fd_seen == p[0]);
    read(p[0], buf, sizeof buf);

    // A process group owner.
    check("F_SETOWN to our process group", fcntl(p[0], F_SETOWN, -getpgrp()) == 0);
    check("F_GETOWN says it, negated", fcntl(p[0], F_GETOWN) == -getpgrp());
    struct f_owner_ex ex;
    fcntl(p[0], F_GETOWN_EX, &ex);
    printf("F_GETOWN_EX: type %d, is our group %d\n", ex.type, ex.pid == getpgrp());
    reset();
    write(p[1], "x", 1);
    printf("pipe input to the group: %d signal(s)\n", got);
    read(p[0], buf, sizeof buf);

    // No owner, then no O_ASYNC: no signals.
    fcntl(p[0], F_SETOWN, 0);
    reset();
    write(p[1], "x", 1);
    read(p[0], buf, sizeof buf);
    printf("owner 0: %d signals\n", got);
    fcntl(p[0], F_SETOWN, getpid());
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) & ~O_ASYNC);
    reset();
    write(p[1], "x", 1);
    read(p[0], buf, sizeof buf);
    printf("O_ASYNC cleared: %d signals\n", got);

    // A socketpair end owned by this thread.
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    ex.type = F_OWNER_TID;
    ex.pid = gettid();
    check("F_SETOWN_EX to this thread", fcntl(s[0], F_SETOWN_EX, &ex) == 0);
    memset(&ex, 0, sizeof ex);
    fcntl(s[0], F_GETOWN_EX, &ex);
    printf("F_GETOWN_EX: type %d, is this thread %d\n", ex.type, ex.pid == gettid());
    fcntl(s[0], F_SETSIG, SIGRTMIN + 2);
    fcntl(s[0], F_SETFL, O_ASYNC | O_NONBLOCK);
    reset();
    write(s[1], "hello", 5);
    printf("socket input: %d signal(s), si_code %d, si_band %#lx, si_fd is the socket: %d\n", got, code, band, fd_seen == s[0]);
    read(s[0], buf, sizeof buf);

    // Errors.
    printf("F_SETSIG 65: %s\n", err(fcntl(p[0], F_SETSIG, 65)));
    printf("F_SETOWN to no process: %s\n", err(fcntl(p[0], F_SETOWN, 4000000)));
    ex.type = 7;
    ex.pid = getpid();
    printf("F_SETOWN_EX with a bad type: %s\n", err(fcntl(p[0], F_SETOWN_EX, &ex)));
    ex.pid = 0;
    printf("F_SETOWN_EX with a bad type and no id: %s\n", err(fcntl(p[0], F_SETOWN_EX, &ex)));
    ex.type = F_OWNER_PID;
    ex.pid = -1;
    printf("F_SETOWN_EX with a negative id: %s\n", err(fcntl(p[0], F_SETOWN_EX, &ex)));
    printf("F_GETOWN_EX to a bad address: %s\n", err(fcntl(p[0], F_GETOWN_EX, (void *)8)));
    printf("%s\n", failures ? "SOME FAILED" : "ALL OK");
    return failures != 0;
}
