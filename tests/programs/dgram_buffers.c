// Datagram buffers as Linux bounds them. AF_UNIX datagram and seqpacket
// sockets: SO_SNDBUF bounds what a sender has queued and unread, wherever it
// went (EAGAIN, or a blocked send until the reader drains it), a datagram
// larger than it is EMSGSIZE, POLLOUT waits until at most a quarter of it is
// taken, SIOCOUTQ counts it and SIOCINQ what waits to be read; a receiver
// that is not the sender's peer takes at most 11 datagrams (max_dgram_qlen).
// Loopback UDP: SO_RCVBUF bounds the receive queue, datagrams beyond it are
// dropped and counted in /proc/net/udp, one always fits an empty queue, and
// SO_SNDBUF does not bound a datagram's size. Counts depend on Linux's
// sk_buff overhead, so only their bounds are checked.
#define _GNU_SOURCE
#include "check.h"
#include "sockopt.h"
#include "timing.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static char buf[1 << 18];

// Sends datagrams of `len` bytes without blocking until one fails: how many
// went, with errno EAGAIN (else -1).
static int fill(int fd, int len, const struct sockaddr *to, socklen_t tolen) {
    int n = 0;
    while (sendto(fd, buf, len, MSG_DONTWAIT, to, tolen) == len)
        n++;
    return errno == EAGAIN ? n : -1;
}

static int drain(int fd) {
    int n = 0;
    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) >= 0)
        n++;
    return n;
}

// A pair's sender's limits: EMSGSIZE past the send buffer, a fill bounded by
// it (about 768 bytes a small datagram), POLLOUT and the queue ioctls.
static void pair_limits(const char *kind, int type) {
    int sv[2];
    char what[128];
    socketpair(AF_UNIX, type, 0, sv);
    int sndbuf = get(sv[0], SO_SNDBUF);
    errno = 0;
    snprintf(what, sizeof what, "%s: the largest datagram is the send buffer less 32", kind);
    check(what, send(sv[0], buf, sndbuf - 32, MSG_DONTWAIT) == sndbuf - 32);
    snprintf(what, sizeof what, "%s: one more byte is EMSGSIZE", kind);
    check(what, send(sv[0], buf, sndbuf - 31, MSG_DONTWAIT) == -1 && errno == EMSGSIZE);
    recv(sv[1], buf, sizeof buf, 0);

    set(sv[0], SO_SNDBUF, 4096);
    errno = 0;
    snprintf(what, sizeof what, "%s: a smaller send buffer, a smaller datagram", kind);
    check(what, send(sv[0], buf, 8161, MSG_DONTWAIT) == -1 && errno == EMSGSIZE && send(sv[0], buf, 8160, MSG_DONTWAIT) == 8160);
    snprintf(what, sizeof what, "%s: a datagram past the send buffer is not writable", kind);
    check(what, !writable(sv[0]));
    recv(sv[1], buf, sizeof buf, 0);
    snprintf(what, sizeof what, "%s: and writable once read", kind);
    check(what, writable(sv[0]) && ioctl_int(sv[0], SIOCOUTQ) == 0);

    int n = fill(sv[0], 100, NULL, 0);
    snprintf(what, sizeof what, "%s: the send buffer bounds small datagrams too", kind);
    check(what, n >= 8192 / 1024 && n <= 8192 / 100);
    int outq = ioctl_int(sv[0], SIOCOUTQ);
    snprintf(what, sizeof what, "%s: SIOCOUTQ counts them with their overhead", kind);
    check(what, outq >= n * 100 && outq >= 8192 - 1024 && outq < 8192 + 1024);
    int inq = ioctl_int(sv[1], SIOCINQ);
    snprintf(what, sizeof what, "%s: SIOCINQ: %s", kind, type == SOCK_DGRAM ? "the next datagram" : "all of them");
    check(what, inq == (type == SOCK_DGRAM ? 100 : n * 100));
    snprintf(what, sizeof what, "%s: a full send buffer is not writable", kind);
    check(what, !writable(sv[0]));
    int reads = 0;
    while (!writable(sv[0]) && recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) > 0)
        reads++;
    snprintf(what, sizeof what, "%s: writable again once three quarters are read", kind);
    check(what, reads >= n / 2 && reads < n && writable(sv[0]));
    drain(sv[1]);
    snprintf(what, sizeof what, "%s: all read, SIOCOUTQ is 0", kind);
    check(what, ioctl_int(sv[0], SIOCOUTQ) == 0);
    set(sv[1], SO_RCVBUF, 0);
    snprintf(what, sizeof what, "%s: the receiver's SO_RCVBUF plays no part", kind);
    check(what, fill(sv[0], 100, NULL, 0) == n);
    close(sv[0]);
    close(sv[1]);
}

static int blocked_fd;
static const struct sockaddr *blocked_to;
static socklen_t blocked_tolen;
static ssize_t blocked_sent;
static pid_t sender_tid;

static void *blocked_sender(void *arg) {
    (void)arg;
    __atomic_store_n(&sender_tid, gettid(), __ATOMIC_SEQ_CST);
    blocked_sent = sendto(blocked_fd, buf, 100, 0, blocked_to, blocked_tolen);
    return NULL;
}

// A sender blocked on its full send buffer goes on once the reader drains
// it: sv[0] sends to sv[1], to the address `to` if given.
static void blocked(const char *kind, int sv[2], const struct sockaddr *to, socklen_t tolen) {
    char what[128];
    set(sv[0], SO_SNDBUF, 4096);
    fill(sv[0], 100, to, tolen);
    blocked_to = to;
    blocked_tolen = tolen;
    struct timeval limit = {.tv_sec = 10};
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    blocked_fd = sv[0];
    sender_tid = 0;
    pthread_t th;
    pthread_create(&th, NULL, blocked_sender, NULL);
    while (!__atomic_load_n(&sender_tid, __ATOMIC_SEQ_CST) || task_state(getpid(), sender_tid) != 'S')
        sched_yield();
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    drain(sv[1]);
    pthread_join(th, NULL);
    gettimeofday(&t1, NULL);
    snprintf(what, sizeof what, "%s: a blocked sender goes on once its datagrams are read", kind);
    check(what, blocked_sent == 100 && t1.tv_sec - t0.tv_sec < 5);
    close(sv[0]);
    close(sv[1]);
}

static socklen_t bound(int fd, struct sockaddr_un *a, const char *name) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strcpy(a->sun_path + 1, name);
    socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
    bind(fd, (struct sockaddr *)a, len);
    return len;
}

int main(void) {
    pair_limits("datagram", SOCK_DGRAM);
    pair_limits("seqpacket", SOCK_SEQPACKET);
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    blocked("datagram", sv, NULL, 0);
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
    blocked("seqpacket", sv, NULL, 0);
    struct sockaddr_un a, b;
    sv[0] = socket(AF_UNIX, SOCK_DGRAM, 0);
    sv[1] = socket(AF_UNIX, SOCK_DGRAM, 0);
    socklen_t la = bound(sv[1], &a, "dgram_buffers.blocked");
    blocked("unconnected datagram", sv, (struct sockaddr *)&a, la);

    // Unconnected senders: the receiver's queue length bounds them, and one
    // sender's send buffer counts what it queued at every receiver.
    int ra = socket(AF_UNIX, SOCK_DGRAM, 0), rb = socket(AF_UNIX, SOCK_DGRAM, 0);
    la = bound(ra, &a, "dgram_buffers.a");
    socklen_t lb = bound(rb, &b, "dgram_buffers.b");
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    check("a receiver takes 11 datagrams from others", fill(s, 1, (struct sockaddr *)&a, la) == 11);
    check("the sender's buffer is not what stopped it", writable(s));
    drain(ra);
    set(s, SO_SNDBUF, 0);
    int n = 0;
    for (int i = 0; i < 20; i++) {
        if (sendto(s, buf, 1, MSG_DONTWAIT, (struct sockaddr *)(i % 2 ? &b : &a), i % 2 ? lb : la) != 1)
            break;
        n++;
    }
    check("the sender's buffer counts what waits at both receivers", errno == EAGAIN && n >= 2 && n < 11);
    recv(ra, buf, sizeof buf, MSG_DONTWAIT);
    check("reading at one receiver makes room to send to the other", sendto(s, buf, 1, MSG_DONTWAIT, (struct sockaddr *)&b, lb) == 1);
    int before = ioctl_int(s, SIOCOUTQ);
    close(ra);
    int after = ioctl_int(s, SIOCOUTQ);
    check("a receiver closed drops what waited there", after > 0 && after < before);
    drain(rb);
    check("all dropped or read: SIOCOUTQ is 0", ioctl_int(s, SIOCOUTQ) == 0);
    close(rb);
    close(s);

    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    bound(l, &a, "dgram_buffers.l");
    listen(l, 1);
    check("SIOCINQ of a listener is EINVAL", ioctl_int(l, SIOCINQ) == -EINVAL);
    close(l);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[0], buf, 1000);
    check("a stream's SIOCOUTQ counts what is unread", ioctl_int(sv[0], SIOCOUTQ) >= 1000);
    check("its SIOCINQ what waits", ioctl_int(sv[1], SIOCINQ) == 1000);
    read(sv[1], buf, 1000);
    check("none once read", ioctl_int(sv[0], SIOCOUTQ) == 0);
    close(sv[0]);
    close(sv[1]);

    // UDP on loopback.
    int u = socket(AF_INET, SOCK_DGRAM, 0), r = socket(AF_INET, SOCK_DGRAM, 0);
    check("UDP's default buffers", get(u, SO_SNDBUF) == 212992 && get(u, SO_RCVBUF) == 212992);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t tl = sizeof to;
    bind(r, (struct sockaddr *)&to, sizeof to);
    getsockname(r, (struct sockaddr *)&to, &tl);
    set(r, SO_RCVBUF, 4096);
    int sent = 0;
    for (int i = 0; i < 1000; i++)
        sent += sendto(u, buf, 1, 0, (struct sockaddr *)&to, sizeof to) == 1;
    int got = drain(r);
    printf("UDP: %d sent\n", sent);
    check("a small receive buffer holds a few datagrams", got >= 2 && got <= 8192 / 256);
    FILE *f = fopen("/proc/net/udp", "r");
    char line[512], port[16];
    unsigned drops = 0;
    int found = 0;
    snprintf(port, sizeof port, ":%04X ", ntohs(to.sin_port));
    while (f && fgets(line, sizeof line, f)) {
        char *local = strchr(line, ':');
        if (local && strncmp(strchr(local + 1, ':'), port, strlen(port)) == 0) {
            // The last field (Linux pads the line with spaces).
            char *last = NULL;
            for (char *t = strtok(line, " \n"); t; t = strtok(NULL, " \n"))
                last = t;
            drops = strtoul(last, NULL, 10);
            found = 1;
        }
    }
    if (f)
        fclose(f);
    check("/proc/net/udp counts the others dropped", found && drops == (unsigned)(sent - got));
    check("one large datagram fits an empty queue", sendto(u, buf, 60000, 0, (struct sockaddr *)&to, sizeof to) == 60000 && drain(r) == 1);
    set(u, SO_SNDBUF, 4096);
    check("UDP's send buffer does not bound a datagram", sendto(u, buf, 60000, 0, (struct sockaddr *)&to, sizeof to) == 60000 && drain(r) == 1);
    close(u);
    close(r);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
