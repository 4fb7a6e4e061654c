// Netlink dumps read in parts, as Linux hands them out (net/netlink/af_netlink.c):
// the program opens 300 AF_UNIX sockets and 100 TCP listeners, dumps them over
// NETLINK_SOCK_DIAG with small and large buffers through recvmsg, recv, read and
// recvfrom, and checks that every part holds whole messages, that each of its
// sockets appears once, that NLMSG_DONE ends the last part, what MSG_PEEK and
// MSG_TRUNC report, a second dump while one runs (EBUSY), replies piling up unread
// (ENOBUFS) and a NETLINK_ROUTE dump cut short. A native run sees every socket of
// the host, so only verdicts are printed: no count, length or inode.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "check.h"
#include "inet.h"

#define UNIX_SOCKS 300
#define LISTENERS 100
#define BIG 65536

static unsigned unix_inodes[UNIX_SOCKS], tcp_inodes[LISTENERS];
static int unix_seen[UNIX_SOCKS], tcp_seen[LISTENERS];

static unsigned inode_of(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (unsigned)st.st_ino : 0;
}

static int nl_socket(int protocol) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0) printf("socket(AF_NETLINK, %d): %s\n", protocol, errname(errno));
    return fd;
}

static void send_request(int fd, int type, int flags, int seq, const void *body, size_t len) {
    struct {
        struct nlmsghdr h;
        char body[256];
    } req = {.h = {.nlmsg_len = NLMSG_LENGTH(len), .nlmsg_type = type, .nlmsg_flags = NLM_F_REQUEST | flags, .nlmsg_seq = seq}};
    memcpy(req.body, body, len);
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (sendto(fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) printf("sendto: %s\n", errname(errno));
}

static void dump_unix(int fd, int seq) {
    struct unix_diag_req r = {.sdiag_family = AF_UNIX, .udiag_states = -1, .udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN};
    send_request(fd, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, seq, &r, sizeof r);
}

static void dump_listeners(int fd, int seq) {
    struct inet_diag_req_v2 r = {.sdiag_family = AF_INET, .sdiag_protocol = IPPROTO_TCP, .idiag_states = 1 << TCP_LISTEN, .idiag_ext = 1 << (INET_DIAG_INFO - 1)};
    send_request(fd, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, seq, &r, sizeof r);
}

// How a dump's reading went.
struct reading {
    int parts, whole, fit, done_last, after_done, truncated, error, busy;
};

enum how { RECVMSG, RECV, READ, RECVFROM };

static ssize_t receive(int fd, char *buf, size_t len, enum how how, int *flags) {
    *flags = 0;
    switch (how) {
    case RECVMSG: {
        struct iovec iov = {buf, len};
        struct sockaddr_nl from;
        struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n = recvmsg(fd, &m, 0);
        *flags = m.msg_flags;
        return n;
    }
    case RECV:
        return recv(fd, buf, len, 0);
    case READ:
        return read(fd, buf, len);
    case RECVFROM: {
        struct sockaddr_nl from;
        socklen_t alen = sizeof from;
        return recvfrom(fd, buf, len, 0, (struct sockaddr *)&from, &alen);
    }
    }
    return -1;
}

// Marks the program's own sockets a dump message names.
static void seen(const struct nlmsghdr *h) {
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) return;
    const unsigned char *family = NLMSG_DATA(h);
    if (*family == AF_UNIX) {
        const struct unix_diag_msg *u = NLMSG_DATA(h);
        for (int i = 0; i < UNIX_SOCKS; i++) unix_seen[i] += unix_inodes[i] == u->udiag_ino;
    } else {
        const struct inet_diag_msg *d = NLMSG_DATA(h);
        for (int i = 0; i < LISTENERS; i++) tcp_seen[i] += tcp_inodes[i] == d->idiag_inode;
    }
}

// Reads the dump of `seq` to its NLMSG_DONE with `len`-byte reads, noting any
// NLMSG_ERROR for `other_seq` (a request sent meanwhile).
static struct reading read_dump(int fd, int seq, size_t len, enum how how, int other_seq) {
    static char buf[BIG];
    struct reading r = {.whole = 1, .fit = 1};
    for (int done = 0; !done;) {
        int flags;
        ssize_t n = receive(fd, buf, len, how, &flags);
        if (n < 0) {
            r.error = errno;
            break;
        }
        if (flags & MSG_TRUNC) r.truncated = 1;
        if ((size_t)n > len) r.fit = 0;
        int left = n;
        struct nlmsghdr *h = (struct nlmsghdr *)buf;
        int dump_part = 0;
        for (; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (done) r.done_last = 0; // a message after NLMSG_DONE
            if (h->nlmsg_seq == (unsigned)other_seq && h->nlmsg_type == NLMSG_ERROR) {
                r.busy = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
                continue;
            }
            dump_part = 1;
            if (h->nlmsg_type == NLMSG_DONE) done = r.done_last = 1;
            seen(h);
        }
        if (left != 0) r.whole = 0;
        r.parts += dump_part;
    }
    char c;
    r.after_done = recv(fd, &c, 1, MSG_DONTWAIT) < 0 ? errno : 0;
    return r;
}

static int once(const int *seen_count, int n) {
    for (int i = 0; i < n; i++)
        if (seen_count[i] != 1) return 0;
    return 1;
}

static void report(const char *what, struct reading r, int several) {
    char line[200];
    snprintf(line, sizeof line, "%s: read to its end", what);
    check(line, r.error == 0);
    if (r.error) printf("  error %s\n", errname(r.error));
    snprintf(line, sizeof line, "%s: %s parts", what, several ? "several" : "one or more");
    check(line, several ? r.parts > 1 : r.parts >= 1);
    snprintf(line, sizeof line, "%s: every part whole messages, none cut", what);
    check(line, r.whole && !r.truncated && r.fit);
    snprintf(line, sizeof line, "%s: NLMSG_DONE ends the last part", what);
    check(line, r.done_last);
    printf("%s: then %s\n", what, errname(r.after_done));
}

// A unix dump on a new socket, read with `len`-byte buffers.
static void unix_dump(size_t len, enum how how, const char *what) {
    int fd = nl_socket(NETLINK_SOCK_DIAG);
    memset(unix_seen, 0, sizeof unix_seen);
    dump_unix(fd, 1);
    struct reading r = read_dump(fd, 1, len, how, -1);
    report(what, r, len < 8192);
    char line[200];
    snprintf(line, sizeof line, "%s: each of the %d sockets once", what, UNIX_SOCKS);
    check(line, once(unix_seen, UNIX_SOCKS));
    close(fd);
}

// A socket remembers the largest buffer a read offered: its parts are made that
// large from then on, and a smaller read cuts them.
static void sticky(void) {
    static char buf[BIG];
    int fd = nl_socket(NETLINK_SOCK_DIAG);
    dump_unix(fd, 13);
    struct reading r = read_dump(fd, 13, BIG, RECVMSG, -1);
    check("a 64 KiB read", r.error == 0 && r.done_last && !r.truncated);
    dump_unix(fd, 14);
    struct iovec iov = {buf, 4096};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(fd, &m, 0);
    check("then a 4096-byte read of the next dump is cut (MSG_TRUNC)", n == 4096 && (m.msg_flags & MSG_TRUNC));
    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {}
    close(fd);
}

// The length the next datagram has, peeked with an empty buffer.
static ssize_t peek_length(int fd, int *flags) {
    struct iovec iov = {NULL, 0};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(fd, &m, MSG_PEEK | MSG_TRUNC);
    *flags = m.msg_flags;
    return n;
}

static void peeks(void) {
    static char a[BIG], b[BIG];
    int fd = nl_socket(NETLINK_SOCK_DIAG);
    dump_unix(fd, 7);
    int flags;
    ssize_t first = peek_length(fd, &flags);
    check("MSG_PEEK|MSG_TRUNC, empty buffer: MSG_TRUNC", (flags & MSG_TRUNC) != 0);
    ssize_t peeked = recv(fd, a, 100, MSG_PEEK);
    ssize_t n = recv(fd, b, 4096, 0);
    check("MSG_PEEK|MSG_TRUNC reports the first part's length", first > 0 && first == n);
    check("MSG_PEEK does not consume", peeked == 100 && memcmp(a, b, 100) == 0);
    ssize_t second = peek_length(fd, &flags);
    n = recv(fd, b, 4096, MSG_DONTWAIT);
    check("between parts the next is ready; MSG_PEEK|MSG_TRUNC reports its length", second > 0 && second == n);
    int ready = wait_for(fd, POLLIN, 0);
    printf("mid-dump, poll: %s\n", poll_names(ready));
    struct reading r = read_dump(fd, 7, 4096, RECVMSG, -1);
    check("the rest ends with NLMSG_DONE", r.error == 0 && r.done_last);
    printf("after NLMSG_DONE, poll: %s\n", poll_names(wait_for(fd, POLLIN, 0)));
    close(fd);
}

static void cut_parts(void) {
    static char buf[BIG];
    int fd = nl_socket(NETLINK_SOCK_DIAG);
    dump_unix(fd, 9);
    int flags;
    ssize_t full = peek_length(fd, &flags);
    char small[16];
    struct iovec iov = {small, sizeof small};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(fd, &m, 0);
    check("16-byte buffer: 16 bytes and MSG_TRUNC", n == 16 && (m.msg_flags & MSG_TRUNC));
    full = peek_length(fd, &flags);
    ssize_t got = recv(fd, small, sizeof small, MSG_TRUNC);
    check("with MSG_TRUNC in flags, the part's whole length", got == full && got > 16);
    // The cut parts are gone; the dump goes on.
    struct reading r = read_dump(fd, 9, sizeof buf, RECV, -1);
    check("the dump goes on to NLMSG_DONE", r.error == 0 && r.done_last && r.whole);
    close(fd);
}

static void busy(void) {
    int fd = nl_socket(NETLINK_SOCK_DIAG);
    memset(tcp_seen, 0, sizeof tcp_seen);
    dump_listeners(fd, 11);
    dump_unix(fd, 12);
    struct reading r = read_dump(fd, 11, 4096, RECVMSG, 12);
    printf("a second dump while the first is read: %s\n", errname(r.busy));
    check("the first reads on to NLMSG_DONE", r.error == 0 && r.done_last && r.whole);
    check("each listener once", once(tcp_seen, LISTENERS));
    close(fd);
}

// Requests answered with errors and never read: the queue fills, later replies
// are dropped and the reader learns it once.
static void flood(void) {
    int fd = nl_socket(NETLINK_SOCK_DIAG);
    struct inet_diag_req_v2 bad = {.sdiag_family = 255, .sdiag_protocol = IPPROTO_TCP};
    struct {
        struct nlmsghdr h;
        struct inet_diag_req_v2 r;
    } batch[100];
    for (int i = 0; i < 100; i++)
        batch[i] = (typeof(batch[i])){{.nlmsg_len = sizeof batch[i], .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = i}, bad};
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    int sent = 1;
    for (int i = 0; i < 50; i++) sent &= sendto(fd, batch, sizeof batch, 0, (struct sockaddr *)&kernel, sizeof kernel) == sizeof batch;
    check("5000 requests sent", sent);
    printf("flood, poll: %s\n", poll_names(wait_for(fd, POLLIN, 0)));
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    printf("flood, first receive: %s\n", n < 0 ? errname(errno) : "data");
    int answers = 0, ok = 1;
    while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
        struct nlmsghdr *h = (struct nlmsghdr *)buf;
        ok &= h->nlmsg_type == NLMSG_ERROR && ((struct nlmsgerr *)NLMSG_DATA(h))->error == -EINVAL && n == h->nlmsg_len;
        answers++;
    }
    printf("flood, then: %s\n", errname(errno));
    check("flood: some answers kept, each EINVAL alone, most dropped", ok && answers > 10 && answers < 5000);
    send_request(fd, SOCK_DIAG_BY_FAMILY, 0, 1, &bad, sizeof bad);
    n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    check("drained, a request is answered again", n > 0 && ((struct nlmsghdr *)buf)->nlmsg_type == NLMSG_ERROR);
    close(fd);
}

static void route(void) {
    static char buf[BIG];
    int fd = nl_socket(NETLINK_ROUTE);
    struct ifaddrmsg a = {.ifa_family = AF_UNSPEC};
    send_request(fd, RTM_GETADDR, NLM_F_DUMP, 3, &a, sizeof a);
    char small[16];
    struct iovec iov = {small, sizeof small};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(fd, &m, 0);
    check("route: 16-byte buffer: 16 bytes and MSG_TRUNC", n == 16 && (m.msg_flags & MSG_TRUNC));
    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {}
    struct ifinfomsg l = {.ifi_family = AF_UNSPEC};
    send_request(fd, RTM_GETLINK, NLM_F_DUMP, 4, &l, sizeof l);
    struct reading r = read_dump(fd, 4, sizeof buf, READ, -1);
    report("route: links, read(2)", r, 0);
    close(fd);
}

int main(void) {
    for (int i = 0; i < UNIX_SOCKS; i += 2) {
        int sv[2];
        if (socketpair(AF_UNIX, i % 4 ? SOCK_DGRAM : SOCK_STREAM, 0, sv) != 0) printf("socketpair: %s\n", errname(errno));
        unix_inodes[i] = inode_of(sv[0]);
        unix_inodes[i + 1] = inode_of(sv[1]);
    }
    for (int i = 0; i < LISTENERS; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = v4("127.0.0.1", 0);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0) printf("listener: %s\n", errname(errno));
        tcp_inodes[i] = inode_of(fd);
    }

    unix_dump(4096, RECVMSG, "unix, 4096-byte recvmsg");
    unix_dump(BIG, RECVMSG, "unix, 64 KiB recvmsg");
    unix_dump(4096, RECVFROM, "unix, 4096-byte recvfrom");
    unix_dump(4096, READ, "unix, 4096-byte read");
    sticky();

    int fd = nl_socket(NETLINK_SOCK_DIAG);
    memset(tcp_seen, 0, sizeof tcp_seen);
    dump_listeners(fd, 5);
    report("tcp listeners, 4096-byte recv", read_dump(fd, 5, 4096, RECV, -1), 1);
    check("tcp listeners: each once", once(tcp_seen, LISTENERS));
    close(fd);

    peeks();
    cut_parts();
    busy();
    flood();
    route();
    printf("%d failures\n", failures);
    return failures != 0;
}
