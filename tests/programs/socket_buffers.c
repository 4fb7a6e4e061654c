// SO_SNDBUF and SO_RCVBUF: what is set reads back doubled (no less than Linux's
// minimum), and it bounds what a connection holds: an AF_UNIX stream its writer's
// send buffer (the reader's receive buffer plays no part), a TCP connection the
// writer's send buffer and the reader's window; an accepted TCP socket has its
// listener's. Raising the send buffer lets a blocked writer go on. (CPython's
// test_asyncio.test_sendfile closes a peer after 1 KiB with 4 KiB buffers, and
// expects the file not to have gone out whole.) TCP sockets report Linux's
// defaults until set (tcp_wmem[1] and tcp_rmem[1], the send buffer grown to
// tcp_wmem[2] once connected over loopback), yet hold as much as before.
#define _GNU_SOURCE
#include "check.h"
#include "sockopt.h"
#include "timing.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];

// Writes without blocking until the connection is full: the bytes it took.
static long fill(int fd) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    long n = 0;
    ssize_t r;
    while ((r = write(fd, buf, sizeof buf)) > 0)
        n += r;
    fcntl(fd, F_SETFL, fl);
    return r < 0 && errno == EAGAIN ? n : -1;
}

// Reads what is queued, without blocking.
static long drain(int fd) {
    long n = 0;
    ssize_t r;
    while ((r = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        n += r;
    return n;
}

// Reads `n` bytes as they come, without blocking (loopback TCP delivers a
// little later): what it read.
static long drain_all(int fd, long n) {
    long got = 0;
    for (int i = 0; i < 1000 && got < n; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 1000);
        got += drain(fd);
    }
    return got;
}

static int blocked_fd;
static ssize_t blocked_wrote;
static pid_t writer_tid;

static void *blocked_writer(void *arg) {
    (void)arg;
    __atomic_store_n(&writer_tid, gettid(), __ATOMIC_SEQ_CST);
    blocked_wrote = write(blocked_fd, buf, 1000);
    return NULL;
}

int main(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    set(sv[0], SO_SNDBUF, 0);
    set(sv[0], SO_RCVBUF, 0);
    check("the smallest send buffer", get(sv[0], SO_SNDBUF) == 4608);
    check("the smallest receive buffer", get(sv[0], SO_RCVBUF) == 2304);
    set(sv[0], SO_SNDBUF, 100000);
    set(sv[0], SO_RCVBUF, 2303);
    check("a send buffer set reads back doubled", get(sv[0], SO_SNDBUF) == 200000);
    check("a receive buffer set reads back doubled", get(sv[0], SO_RCVBUF) == 4606);

    set(sv[0], SO_SNDBUF, 4096);
    long n = fill(sv[0]);
    check("a small send buffer bounds a unix stream", n > 0 && n <= 8192);
    check("a full unix stream is not writable", !writable(sv[0]));
    check("the reader gets it all", drain(sv[1]) == n);
    check("an emptied unix stream is writable", writable(sv[0]));
    close(sv[0]);
    close(sv[1]);

    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    set(sv[1], SO_RCVBUF, 4096);
    n = fill(sv[0]);
    check("the reader's receive buffer does not bound a unix stream", n > 100000);
    check("the reader gets that too", drain(sv[1]) == n);
    close(sv[0]);
    close(sv[1]);

    // A writer blocked on a full stream goes on when its send buffer grows.
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    set(sv[0], SO_SNDBUF, 4096);
    fill(sv[0]);
    struct timeval limit = {.tv_sec = 10};
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    blocked_fd = sv[0];
    pthread_t th;
    pthread_create(&th, NULL, blocked_writer, NULL);
    while (!__atomic_load_n(&writer_tid, __ATOMIC_SEQ_CST) || task_state(getpid(), writer_tid) != 'S')
        sched_yield();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    set(sv[0], SO_SNDBUF, 65536);
    pthread_join(th, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    // Not at its timeout, which would also find the room.
    check("a larger send buffer wakes a blocked writer", blocked_wrote == 1000 && t1.tv_sec - t0.tv_sec < 5);
    close(sv[0]);
    close(sv[1]);

    int l = socket(AF_INET, SOCK_STREAM, 0);
    check("a new TCP socket reports tcp_wmem[1] and tcp_rmem[1]", get(l, SO_SNDBUF) == 16384 && get(l, SO_RCVBUF) == 131072);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 2);
    getsockname(l, (struct sockaddr *)&a, &al);
    check("so does a listener", get(l, SO_SNDBUF) == 16384 && get(l, SO_RCVBUF) == 131072);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (struct sockaddr *)&a, sizeof a);
    int s = accept(l, NULL, NULL);
    // Linux's tcp_sndbuf_expand: loopback's large segments take it to tcp_wmem[2].
    check("a connection's send buffer grows to tcp_wmem[2]", get(c, SO_SNDBUF) == 4194304 && get(s, SO_SNDBUF) == 4194304);
    check("its receive buffer starts at tcp_rmem[1]", get(c, SO_RCVBUF) == 131072 && get(s, SO_RCVBUF) == 131072);
    n = fill(c);
    check("default buffers hold as much as before", n >= 200000);
    check("and give it all", drain_all(s, n) == n);
    close(c);
    close(s);
    set(l, SO_RCVBUF, 4096);
    c = socket(AF_INET, SOCK_STREAM, 0);
    check("connect", connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    s = accept(l, NULL, NULL);
    check("an accepted socket has its listener's receive buffer", get(s, SO_RCVBUF) == 8192);
    check("and a send buffer that grew, not set", get(s, SO_SNDBUF) == 4194304);
    set(c, SO_SNDBUF, 4096);
    check("a connected socket's send buffer reads back", get(c, SO_SNDBUF) == 8192);
    n = fill(c);
    check("small buffers bound a TCP connection", n > 0 && n <= 32768);
    check("a full TCP connection is not writable", !writable(c));
    check("the TCP reader gets it all", drain_all(s, n) == n);
    close(c);
    close(s);
    close(l);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
