// A loopback TCP connection's queue ioctls as Linux keeps them: FIONREAD
// (SIOCINQ) counts what arrived, SIOCOUTQ what was sent and not acknowledged,
// SIOCOUTQNSD what was not sent. On a full connection the writer's unsent
// bytes and the reader's arrived ones add up to what was written, no byte in
// both; after shutdown(SHUT_WR) the FIN counts one more in each while it
// waits behind them. Once the window took all, the FIN is sent: its ACK may
// wait for the peer's delayed-ACK timer (SIOCOUTQ 1 for a few milliseconds
// on Linux), and comes at once with what the peer sends.
#define _GNU_SOURCE
#include "check.h"
#include "sockopt.h"
#include "tcp_pair.h"
#include "timing.h"
#include <linux/sockios.h>
#include <sched.h>

static char buf[1 << 16];

// Waits (at most 10 s) until everything sent on `fd` was acknowledged, as
// Linux's delayed ACKs of the last segments come by a timer.
static void settle(int fd) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (ioctl_int(fd, SIOCOUTQ) != ioctl_int(fd, SIOCOUTQNSD) && ms_since(&t0) < 10000)
        sched_yield();
}

// The peer's byte has come back to `fd`: whatever it acknowledges is acknowledged.
static int echo_back(int from, int fd) {
    char c;
    return send(from, "x", 1, 0) == 1 && recv(fd, &c, 1, 0) == 1;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int fd[2];

    tcp_pair(fd);
    check("shutdown(SHUT_WR)", shutdown(fd[0], SHUT_WR) == 0);
    check("the FIN is sent at once: SIOCOUTQNSD 0", ioctl_int(fd[0], SIOCOUTQNSD) == 0);
    check("SIOCOUTQ counts at most the FIN", ioctl_int(fd[0], SIOCOUTQ) <= 1);
    check("the peer's FIONREAD counts no FIN", ioctl_int(fd[1], SIOCINQ) == 0);
    check("the peer sends a byte back", echo_back(fd[1], fd[0]));
    check("which acknowledged the FIN: SIOCOUTQ 0", ioctl_int(fd[0], SIOCOUTQ) == 0 && ioctl_int(fd[0], SIOCOUTQNSD) == 0);
    close(fd[0]);
    close(fd[1]);

    tcp_pair(fd);
    long n = fill_until_eagain(fd[0]);
    settle(fd[0]);
    int outq = ioctl_int(fd[0], SIOCOUTQ), nsd = ioctl_int(fd[0], SIOCOUTQNSD), inq = ioctl_int(fd[1], SIOCINQ);
    check("a full connection: bytes wait unsent", nsd > 0 && outq == nsd);
    check("some arrived", inq > 0);
    check("the writer's unsent and the reader's arrived bytes add up to what was written", outq + inq == n);
    check("the writer has nothing to read", ioctl_int(fd[0], SIOCINQ) == 0);
    check("the reader nothing to send", ioctl_int(fd[1], SIOCOUTQ) == 0 && ioctl_int(fd[1], SIOCOUTQNSD) == 0);
    check("shutdown(SHUT_WR) behind them", shutdown(fd[0], SHUT_WR) == 0);
    settle(fd[0]);
    check("the FIN waits unsent: SIOCOUTQ one more", ioctl_int(fd[0], SIOCOUTQ) == outq + 1);
    check("and SIOCOUTQNSD", ioctl_int(fd[0], SIOCOUTQNSD) == nsd + 1);
    check("the reader's FIONREAD is as before", ioctl_int(fd[1], SIOCINQ) == inq);
    long got = 0;
    ssize_t k;
    while ((k = recv(fd[1], buf, sizeof buf, 0)) > 0)
        got += k;
    check("the reader gets it all, then EOF", got == n && k == 0);
    check("all sent: SIOCOUTQNSD 0", ioctl_int(fd[0], SIOCOUTQNSD) == 0);
    check("the reader sends a byte back", echo_back(fd[1], fd[0]));
    check("which acknowledged the FIN: SIOCOUTQ 0", ioctl_int(fd[0], SIOCOUTQ) == 0);
    close(fd[0]);
    close(fd[1]);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
