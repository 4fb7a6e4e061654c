// SO_RCVLOWAT at work on stream sockets, and TCP's send-queue ioctls.
// A blocking read waits for min(SO_RCVLOWAT, its length) bytes (MSG_WAITALL:
// its length), unless EOF, an error, a signal or its timeout comes first; a
// non-blocking one takes what is there. AF_UNIX: a blocked reader wakes for
// every byte, a peek returns what is there, and poll ignores the mark
// (unix_poll). TCP: poll, select and epoll report POLLIN only once the mark's
// bytes are queued, and a blocked reader, which took what was there already,
// wakes only once the mark's bytes are queued again (tcp_data_ready); a peek
// waits for the mark too; lowering the mark wakes a poller. SIOCOUTQ and
// SIOCOUTQNSD: 0 while loopback's window takes what is sent, some once it
// is full, 0 again once read (EINVAL on a listener). MSG_ERRQUEUE: TCP's
// error queue is empty (EAGAIN), AF_UNIX ignores the flag.
#define _GNU_SOURCE
#include "check.h"
#include "sockopt.h"
#include "tcp_pair.h"
#include "timing.h"
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

static char buf[1 << 16];

// A loopback TCP connection: sv[0] the client (without Nagle's delay), sv[1] the server's end.
static void nodelay_pair(int sv[2]) {
    tcp_pair(sv);
    int one = 1;
    setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// The readiness poll, select and epoll report now (0 when none), as "poll select epoll".
static int poll_in(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

static int select_in(int fd) {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(fd, &r);
    struct timeval tv = {0};
    return select(fd + 1, &r, NULL, NULL, &tv);
}

static int epoll_in(int fd) {
    int e = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN}, out;
    epoll_ctl(e, EPOLL_CTL_ADD, fd, &ev);
    int n = epoll_wait(e, &out, 1, 0);
    close(e);
    return n;
}

// Sends `n` bytes and waits (without blocking) until the reader has at least `queued` queued.
static void send_queued(int w, int r, int n, int queued) {
    send(w, buf, n, 0);
    for (int i = 0; i < 1000000 && ioctl_int(r, SIOCINQ) < queued; i++)
        sched_yield();
}

// A reader thread: recv(fd, len, flags), or poll(fd, POLLIN) when `len` is -1.
static int rfd, rflags;
static long rlen;
static ssize_t rgot;
static pid_t rtid;
static int rdone;
static pthread_t th;

static void *reader(void *arg) {
    (void)arg;
    __atomic_store_n(&rtid, gettid(), __ATOMIC_SEQ_CST);
    if (rlen < 0) {
        struct pollfd p = {.fd = rfd, .events = POLLIN};
        rgot = poll(&p, 1, 10000) == 1 ? p.revents : 0;
    } else {
        rgot = recv(rfd, buf, rlen, rflags);
    }
    __atomic_store_n(&rdone, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

// Starts the reader: 1 once it sleeps, 0 when it returned at once (joined, `rgot` set).
static int start_reader(int fd, long len, int flags) {
    rfd = fd;
    rlen = len;
    rflags = flags;
    rtid = 0;
    rdone = 0;
    pthread_create(&th, NULL, reader, NULL);
    for (;;) {
        if (__atomic_load_n(&rdone, __ATOMIC_SEQ_CST)) {
            pthread_join(th, NULL);
            return 0;
        }
        pid_t t = __atomic_load_n(&rtid, __ATOMIC_SEQ_CST);
        if (t && task_state(getpid(), t) == 'S')
            return 1;
        sched_yield();
    }
}

static ssize_t finish_reader(void) {
    pthread_join(th, NULL);
    return rgot;
}

static void lowat(const char *kind, int tcp) {
    char what[160];
#define CHECK(text, ok) (snprintf(what, sizeof what, "%s: %s", kind, text), check(what, ok))
    int sv[2];
    if (tcp)
        nodelay_pair(sv);
    else
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int w = sv[0], r = sv[1];
    set(r, SO_RCVLOWAT, 10);
    send_queued(w, r, 4, 4);
    if (tcp)
        CHECK("4 bytes of 10 do not poll readable", poll_in(r) == 0 && select_in(r) == 0 && epoll_in(r) == 0);
    else
        CHECK("4 bytes of 10 poll readable", poll_in(r) == POLLIN && select_in(r) == 1 && epoll_in(r) == 1);
    CHECK("a non-blocking peek takes them", recv(r, buf, 100, MSG_DONTWAIT | MSG_PEEK) == 4);

    int blocked = start_reader(r, 100, 0);
    CHECK("a blocking read waits for 10", blocked);
    send_queued(w, r, 6, tcp ? 6 : 0);
    if (tcp && blocked) {
        CHECK("having taken the 4 already", ioctl_int(r, SIOCINQ) == 6);
        send(w, buf, 12, 0);
        CHECK("it wakes once 10 are queued again, and takes them all", finish_reader() == 22);
    } else if (blocked) {
        CHECK("it wakes for the 6 more, and has 10", finish_reader() == 10);
    }

    send_queued(w, r, 4, 4);
    blocked = start_reader(r, 100, MSG_PEEK);
    CHECK(tcp ? "a blocking peek waits for 10" : "a blocking peek returns what is there", blocked == tcp);
    if (blocked) {
        send(w, buf, 6, 0);
        CHECK("and sees the 10", finish_reader() == 10);
    } else {
        CHECK("and sees the 4", rgot == 4);
        send_queued(w, r, 6, 10);
    }
    CHECK("10 bytes of 10 poll readable", poll_in(r) == POLLIN && select_in(r) == 1 && epoll_in(r) == 1);
    recv(r, buf, 100, MSG_DONTWAIT);

    send_queued(w, r, 4, 4);
    CHECK("a read of 3 does not wait", start_reader(r, 3, 0) == 0 && rgot == 3);
    recv(r, buf, 100, MSG_DONTWAIT);

    send_queued(w, r, 4, 4);
    blocked = start_reader(r, 20, MSG_WAITALL);
    CHECK("MSG_WAITALL waits for its length", blocked);
    send(w, buf, 6, 0);
    send(w, buf, 10, 0);
    if (blocked)
        CHECK("and gets it", finish_reader() == 20);

    send_queued(w, r, 4, 4);
    CHECK("a non-blocking read takes what is there", recv(r, buf, 100, MSG_DONTWAIT) == 4);

    send_queued(w, r, 4, 4);
    struct timeval tv = {.tv_usec = 20000};
    setsockopt(r, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    CHECK("a read that times out returns what came", recv(r, buf, 100, 0) == 4);
    CHECK("or EAGAIN when nothing did", recv(r, buf, 100, 0) == -1 && errno == EAGAIN);
    tv.tv_usec = 0;
    setsockopt(r, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    send_queued(w, r, 4, 4);
    if (tcp) {
        blocked = start_reader(r, -1, 0);
        CHECK("poll waits for 10", blocked);
        set(r, SO_RCVLOWAT, 4);
        if (blocked)
            CHECK("a lower mark wakes it", finish_reader() == POLLIN);
        set(r, SO_RCVLOWAT, 10);
    }
    CHECK("MSG_ERRQUEUE", tcp ? recv(r, buf, 100, MSG_ERRQUEUE) == -1 && errno == EAGAIN : recv(r, buf, 100, MSG_ERRQUEUE | MSG_DONTWAIT) == 4);
    if (tcp)
        recv(r, buf, 100, MSG_DONTWAIT);

    send_queued(w, r, 4, 4);
    shutdown(w, SHUT_WR);
    for (int i = 0; i < 1000000 && !(poll_in(r) & POLLRDHUP); i++)
        sched_yield();
    CHECK("at EOF 4 bytes poll readable", poll_in(r) == (POLLIN | POLLRDHUP));
    CHECK("and a blocking read returns them", recv(r, buf, 100, 0) == 4);
    CHECK("then EOF", recv(r, buf, 100, 0) == 0);
    close(w);
    close(r);
#undef CHECK
}

static void tcp_outq(void) {
    int sv[2];
    nodelay_pair(sv);
    check("TCP: a new connection has nothing unacknowledged", ioctl_int(sv[0], SIOCOUTQ) == 0 && ioctl_int(sv[0], SIOCOUTQNSD) == 0);
    send_queued(sv[0], sv[1], 100, 100);
    check("TCP: 100 bytes unread are acknowledged", ioctl_int(sv[0], SIOCOUTQ) == 0 && ioctl_int(sv[0], SIOCOUTQNSD) == 0);
    int fl = fcntl(sv[0], F_GETFL);
    fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
    long n = 100;
    ssize_t k;
    while ((k = write(sv[0], buf, sizeof buf)) > 0)
        n += k;
    int outq = ioctl_int(sv[0], SIOCOUTQ), nsd = ioctl_int(sv[0], SIOCOUTQNSD);
    check("TCP: a full window leaves bytes unacknowledged", outq > 0 && outq < n);
    check("TCP: and unsent", nsd > 0 && nsd <= outq);
    long got = 0;
    while (got < n && (k = recv(sv[1], buf, sizeof buf, 0)) > 0)
        got += k;
    check("TCP: all read, nothing is unacknowledged", got == n && ioctl_int(sv[0], SIOCOUTQ) == 0 && ioctl_int(sv[0], SIOCOUTQNSD) == 0);
    close(sv[0]);
    close(sv[1]);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    check("TCP: an unconnected socket has empty queues", ioctl_int(s, SIOCOUTQ) == 0 && ioctl_int(s, SIOCOUTQNSD) == 0 && ioctl_int(s, SIOCINQ) == 0);
    listen(s, 1);
    check("TCP: a listener has none", ioctl_int(s, SIOCOUTQ) == -EINVAL && ioctl_int(s, SIOCOUTQNSD) == -EINVAL && ioctl_int(s, SIOCINQ) == -EINVAL);
    close(s);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    check("AF_UNIX: no SIOCOUTQNSD", ioctl_int(sv[0], SIOCOUTQNSD) == -ENOTTY);
    close(sv[0]);
    close(sv[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    lowat("AF_UNIX", 0);
    lowat("TCP", 1);
    tcp_outq();
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
