// Loopback UDP over AF_INET and AF_INET6: names and autobinding, sendto and
// recvfrom with the sender's name, datagram boundaries and truncation, the
// largest datagrams, zero-length datagrams, FIONREAD, MSG_PEEK, sending to a
// port nobody has bound (dropped unconnected; ECONNREFUSED once, later, when
// connected), connected sockets' filtering and AF_UNSPEC, readiness, socket
// options, ::1, dual stack and IPV6_V6ONLY, and the unspecified address. Every
// port is one the kernel chose (bind to port 0), and no port number is printed.
#define _GNU_SOURCE
#include "check.h"
#include "inet.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 5000 // readiness that must come, comes at once; this only bounds a hang

static socklen_t len_of(const void *a) {
    return ((const struct sockaddr *)a)->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static int port_in(const struct sockaddr_storage *a) {
    if (a->ss_family == AF_INET) return ntohs(((struct sockaddr_in *)a)->sin_port);
    if (a->ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)a)->sin6_port);
    return -1;
}

static struct sockaddr_storage name_of(int fd) {
    struct sockaddr_storage a = {0};
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    return a;
}

static int port_of(int fd) {
    struct sockaddr_storage a = name_of(fd);
    return port_in(&a);
}

// A UDP socket of `family` bound to `ip` port 0, or -1.
static int bound(int family, const char *ip) {
    int s = socket(family, SOCK_DGRAM, 0);
    struct sockaddr_in a4 = v4(ip, 0);
    struct sockaddr_in6 a6 = v6(ip, 0);
    void *a = family == AF_INET ? (void *)&a4 : (void *)&a6;
    if (s < 0 || bind(s, a, len_of(a)) != 0) return -1;
    return s;
}

// sendto `fd`'s own name (for the unspecified address: loopback of its family).
static ssize_t send_to_name(int from, int to, const void *buf, size_t n) {
    struct sockaddr_storage a = name_of(to);
    if (a.ss_family == AF_INET && ((struct sockaddr_in *)&a)->sin_addr.s_addr == htonl(INADDR_ANY))
        ((struct sockaddr_in *)&a)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (a.ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&a)->sin6_addr))
        ((struct sockaddr_in6 *)&a)->sin6_addr = in6addr_loopback;
    return sendto(from, buf, n, 0, (struct sockaddr *)&a, len_of(&a));
}

// A port that was free a moment ago: bound by a socket that is closed again.
static int free_port(int family, const char *ip) {
    int s = bound(family, ip);
    int p = port_of(s);
    close(s);
    return p;
}

static void basics(void) {
    int s4 = socket(AF_INET, SOCK_DGRAM, 0), s6 = socket(AF_INET6, SOCK_DGRAM, 0);
    check("socket(AF_INET, SOCK_DGRAM)", s4 >= 0);
    check("socket(AF_INET6, SOCK_DGRAM)", s6 >= 0);
    errno = 0;
    check("socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP) is EPROTONOSUPPORT", socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP) == -1 && errno == EPROTONOSUPPORT);
    int t = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    check("socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP)", t >= 0);
    close(t);
    check("SO_TYPE is SOCK_DGRAM", int_opt(s4, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM);
    check("SO_DOMAIN is AF_INET", int_opt(s4, SOL_SOCKET, SO_DOMAIN) == AF_INET);
    check("SO_PROTOCOL is IPPROTO_UDP", int_opt(s4, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_UDP);
    check("AF_INET6: SO_DOMAIN AF_INET6, SO_PROTOCOL IPPROTO_UDP", int_opt(s6, SOL_SOCKET, SO_DOMAIN) == AF_INET6 && int_opt(s6, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_UDP);
    check("SO_ACCEPTCONN is 0, SO_ERROR is 0", int_opt(s4, SOL_SOCKET, SO_ACCEPTCONN) == 0 && int_opt(s4, SOL_SOCKET, SO_ERROR) == 0);
    check("SO_REUSEADDR set and read", set_int(s4, SOL_SOCKET, SO_REUSEADDR, 1) == 0 && int_opt(s4, SOL_SOCKET, SO_REUSEADDR) == 1 && set_int(s4, SOL_SOCKET, SO_REUSEADDR, 0) == 0);
    check("SO_BROADCAST set and read", set_int(s4, SOL_SOCKET, SO_BROADCAST, 1) == 0 && int_opt(s4, SOL_SOCKET, SO_BROADCAST) == 1 && set_int(s4, SOL_SOCKET, SO_BROADCAST, 0) == 0);

    struct sockaddr_storage a = name_of(s4);
    check("an unbound socket's name is 0.0.0.0 port 0", a.ss_family == AF_INET && !strcmp(host_of(&a), "0.0.0.0") && port_in(&a) == 0);
    struct sockaddr_in lo = v4("127.0.0.1", 0);
    check("bind 127.0.0.1 port 0", bind(s4, (struct sockaddr *)&lo, sizeof lo) == 0);
    socklen_t len = sizeof a;
    getsockname(s4, (struct sockaddr *)&a, &len);
    printf("getsockname after bind: %s, length %u, ephemeral port nonzero: %s\n", host_of(&a), len, port_in(&a) > 0 ? "yes" : "no");
    int s2 = socket(AF_INET, SOCK_DGRAM, 0);
    lo.sin_port = htons(port_of(s4));
    errno = 0;
    check("bind to the same address and port is EADDRINUSE", bind(s2, (struct sockaddr *)&lo, sizeof lo) == -1 && errno == EADDRINUSE);
    close(s2);
    int r1 = socket(AF_INET, SOCK_DGRAM, 0), r2 = socket(AF_INET, SOCK_DGRAM, 0);
    set_int(r1, SOL_SOCKET, SO_REUSEADDR, 1);
    set_int(r2, SOL_SOCKET, SO_REUSEADDR, 1);
    lo.sin_port = 0;
    bind(r1, (struct sockaddr *)&lo, sizeof lo);
    lo.sin_port = htons(port_of(r1));
    check("SO_REUSEADDR on both: the second bind succeeds", bind(r2, (struct sockaddr *)&lo, sizeof lo) == 0);
    close(r1);
    close(r2);
    struct sockaddr_in far = v4("10.1.2.3", 0);
    int s3 = socket(AF_INET, SOCK_DGRAM, 0);
    errno = 0;
    check("bind to a non-local address (10.1.2.3) is EADDRNOTAVAIL", bind(s3, (struct sockaddr *)&far, sizeof far) == -1 && errno == EADDRNOTAVAIL);
    close(s3);
    close(s6);
    close(s4);
}

static void send_recv(void) {
    int r = bound(AF_INET, "127.0.0.1"), s = bound(AF_INET, "127.0.0.1");
    char buf[256];
    struct sockaddr_storage from, sname = name_of(s);
    socklen_t flen = sizeof from;
    check("sendto", send_to_name(s, r, "hello", 5) == 5);
    check("recvfrom", recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen) == 5 && !memcmp(buf, "hello", 5));
    check("the sender's address is its name", flen == sizeof(struct sockaddr_in) && !memcmp(&from, &sname, flen));
    errno = 0;
    check("send without an address, unconnected, is EDESTADDRREQ", send(s, "x", 1, 0) == -1 && errno == EDESTADDRREQ);
    struct sockaddr_in6 six = v6("::1", port_of(r));
    errno = 0;
    check("sendto an AF_INET6 address from AF_INET is EAFNOSUPPORT", sendto(s, "x", 1, 0, (struct sockaddr *)&six, sizeof six) == -1 && errno == EAFNOSUPPORT);

    // An unbound sender gets a port on its first sendto.
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    check("an unbound sender's port is 0", port_of(u) == 0);
    send_to_name(u, r, "auto", 4);
    struct sockaddr_storage un = name_of(u);
    printf("after sendto: %s, port nonzero: %s\n", host_of(&un), port_in(&un) > 0 ? "yes" : "no");
    flen = sizeof from;
    check("the receiver sees 127.0.0.1 and that port", recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen) == 4 && !strcmp(host_of(&from), "127.0.0.1") && port_in(&from) == port_in(&un));
    check("and the sender receives a reply there", sendto(r, "reply", 5, 0, (struct sockaddr *)&from, flen) == 5 && recv(u, buf, sizeof buf, 0) == 5);
    close(u);

    // Boundaries and truncation.
    send_to_name(s, r, "one", 3);
    send_to_name(s, r, "two!", 4);
    check("datagrams keep their boundaries", recv(r, buf, sizeof buf, 0) == 3 && recv(r, buf, sizeof buf, 0) == 4 && !memcmp(buf, "two!", 4));
    send_to_name(s, r, "truncated", 9);
    send_to_name(s, r, "next", 4);
    check("a short read takes the start of a datagram", recv(r, buf, 4, 0) == 4 && !memcmp(buf, "trun", 4));
    check("and the rest of it is gone", recv(r, buf, sizeof buf, 0) == 4 && !memcmp(buf, "next", 4));
    send_to_name(s, r, "truncated", 9);
    check("recv with MSG_TRUNC returns the datagram's length", recv(r, buf, 4, MSG_TRUNC) == 9);
    send_to_name(s, r, "truncated", 9);
    struct iovec iov = {buf, 4};
    struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(r, &m, 0);
    check("recvmsg into a short buffer: 4 bytes, MSG_TRUNC set, the sender named", n == 4 && (m.msg_flags & MSG_TRUNC) && m.msg_namelen == sizeof(struct sockaddr_in) && !memcmp(&from, &sname, m.msg_namelen));
    send_to_name(s, r, "whole", 5);
    iov.iov_len = sizeof buf;
    m.msg_flags = -1;
    check("recvmsg of a whole datagram: no flags", recvmsg(r, &m, 0) == 5 && m.msg_flags == 0);
    struct sockaddr_storage rname = name_of(r);
    struct iovec out[2] = {{"gath", 4}, {"ered", 4}};
    struct msghdr sm = {.msg_name = &rname, .msg_namelen = sizeof(struct sockaddr_in), .msg_iov = out, .msg_iovlen = 2};
    check("sendmsg gathers iovecs into one datagram", sendmsg(s, &sm, 0) == 8 && recv(r, buf, sizeof buf, 0) == 8 && !memcmp(buf, "gathered", 8));

    // MSG_PEEK and FIONREAD.
    int q = -1;
    check("FIONREAD with nothing queued is 0", ioctl(r, FIONREAD, &q) == 0 && q == 0);
    send_to_name(s, r, "abc", 3);
    send_to_name(s, r, "defghij", 7);
    wait_for(r, POLLIN, WAIT_MS);
    check("FIONREAD is the next datagram's size, 3", ioctl(r, FIONREAD, &q) == 0 && q == 3);
    flen = sizeof from;
    check("MSG_PEEK reads it and its sender without taking it", recvfrom(r, buf, sizeof buf, MSG_PEEK, (struct sockaddr *)&from, &flen) == 3 && !memcmp(&from, &sname, flen) && recv(r, buf, sizeof buf, 0) == 3 && !memcmp(buf, "abc", 3));
    wait_for(r, POLLIN, WAIT_MS);
    check("then FIONREAD is 7", ioctl(r, FIONREAD, &q) == 0 && q == 7);
    check("a peek of part, then the whole", recv(r, buf, 2, MSG_PEEK) == 2 && recv(r, buf, sizeof buf, 0) == 7 && !memcmp(buf, "defghij", 7));

    // Zero-length datagrams.
    check("sendto of zero bytes returns 0", send_to_name(s, r, "", 0) == 0);
    wait_for(r, POLLIN, WAIT_MS);
    printf("poll with a zero-length datagram queued: %s\n", poll_names(wait_for(r, POLLIN | POLLOUT, 0)));
    check("FIONREAD with a zero-length datagram queued is 0", ioctl(r, FIONREAD, &q) == 0 && q == 0);
    flen = sizeof from;
    check("recvfrom reads it as 0 bytes, with the sender", recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen) == 0 && !memcmp(&from, &sname, flen));
    errno = 0;
    check("and it is gone: MSG_DONTWAIT is EAGAIN", recv(r, buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    close(s);
    close(r);
}

static void sizes(int family, const char *ip, int max) {
    char what[128];
    const char *fam = family == AF_INET ? "AF_INET" : "AF_INET6";
    int r = bound(family, ip), s = bound(family, ip);
    char *big = malloc(max + 1), *in = malloc(max + 1);
    for (int i = 0; i <= max; i++) big[i] = (char)(i * 13);
    snprintf(what, sizeof what, "%s: a %d-byte datagram is sent", fam, max);
    check(what, send_to_name(s, r, big, max) == max);
    snprintf(what, sizeof what, "%s: and received whole", fam);
    check(what, recv(r, in, max + 1, 0) == max && !memcmp(in, big, max));
    errno = 0;
    snprintf(what, sizeof what, "%s: %d bytes is EMSGSIZE", fam, max + 1);
    check(what, send_to_name(s, r, big, max + 1) == -1 && errno == EMSGSIZE);
    free(big);
    free(in);
    close(r);
    close(s);
}

static void refused(void) {
    char buf[64];
    // Unconnected: a datagram to a port nobody has bound is dropped, and nothing is reported.
    int s = bound(AF_INET, "127.0.0.1");
    struct sockaddr_in dead = v4("127.0.0.1", free_port(AF_INET, "127.0.0.1"));
    check("unconnected sendto a port nobody has bound succeeds", sendto(s, "lost", 4, 0, (struct sockaddr *)&dead, sizeof dead) == 4);
    check("sendto it again succeeds too", sendto(s, "lost", 4, 0, (struct sockaddr *)&dead, sizeof dead) == 4);
    send_to_name(s, s, "self", 4);
    wait_for(s, POLLIN, WAIT_MS);
    check("the socket's next datagram is its own, no error", recv(s, buf, sizeof buf, 0) == 4 && !memcmp(buf, "self", 4));
    check("SO_ERROR is 0", int_opt(s, SOL_SOCKET, SO_ERROR) == 0);
    errno = 0;
    check("MSG_DONTWAIT: EAGAIN", recv(s, buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    close(s);

    // Connected: the port-unreachable answer is reported once, by the next call.
    int c = socket(AF_INET, SOCK_DGRAM, 0);
    check("connect to a port nobody has bound", connect(c, (struct sockaddr *)&dead, sizeof dead) == 0);
    check("the first send succeeds", send(c, "x", 1, 0) == 1);
    printf("poll after it: %s\n", poll_names(wait_for(c, 0, WAIT_MS) | wait_for(c, POLLIN | POLLOUT, 0)));
    errno = 0;
    check("recv is ECONNREFUSED", recv(c, buf, sizeof buf, 0) == -1 && errno == ECONNREFUSED);
    errno = 0;
    check("once: then MSG_DONTWAIT is EAGAIN", recv(c, buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    printf("poll once it is read: %s\n", poll_names(wait_for(c, POLLIN | POLLOUT, 0)));
    check("send succeeds again", send(c, "x", 1, 0) == 1);
    wait_for(c, 0, WAIT_MS);
    errno = 0;
    check("the next send is ECONNREFUSED", send(c, "x", 1, 0) == -1 && errno == ECONNREFUSED);
    check("and the one after succeeds", send(c, "x", 1, 0) == 1);
    wait_for(c, 0, WAIT_MS);
    check("SO_ERROR is ECONNREFUSED", int_opt(c, SOL_SOCKET, SO_ERROR) == ECONNREFUSED);
    check("then 0", int_opt(c, SOL_SOCKET, SO_ERROR) == 0);
    errno = 0;
    check("and recv is EAGAIN", recv(c, buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    close(c);
}

static void connected(void) {
    char buf[64];
    int a = bound(AF_INET, "127.0.0.1"), b = bound(AF_INET, "127.0.0.1"), x = bound(AF_INET, "127.0.0.1");
    struct sockaddr_storage bname = name_of(b), aname = name_of(a), peer, from;
    check("connect to a bound peer", connect(a, (struct sockaddr *)&bname, sizeof(struct sockaddr_in)) == 0);
    socklen_t len = sizeof peer;
    check("getpeername is the peer's name", getpeername(a, (struct sockaddr *)&peer, &len) == 0 && len == sizeof(struct sockaddr_in) && !memcmp(&peer, &bname, len));
    struct sockaddr_storage after = name_of(a);
    check("the name stays as bound", !memcmp(&after, &aname, sizeof(struct sockaddr_in)));
    check("a stranger's sendto succeeds", send_to_name(x, a, "stranger", 8) == 8);
    check("the peer's sendto succeeds", send_to_name(b, a, "peer", 4) == 4);
    check("a connected socket receives only from its peer", recv(a, buf, sizeof buf, 0) == 4 && !memcmp(buf, "peer", 4));
    errno = 0;
    check("nothing else is queued", recv(a, buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    check("send goes to the peer", send(a, "to b", 4, 0) == 4 && recv(b, buf, sizeof buf, 0) == 4 && !memcmp(buf, "to b", 4));
    check("write too", write(a, "w", 1) == 1 && recv(b, buf, sizeof buf, 0) == 1);
    check("sendto another address from a connected socket", send_to_name(a, x, "to x", 4) == 4 && recv(x, buf, sizeof buf, 0) == 4 && !memcmp(buf, "to x", 4));

    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    check("connect(AF_UNSPEC) disconnects", connect(a, &unspec, sizeof unspec) == 0);
    errno = 0;
    len = sizeof peer;
    check("getpeername is then ENOTCONN", getpeername(a, (struct sockaddr *)&peer, &len) == -1 && errno == ENOTCONN);
    // Bound to port 0, the socket's port was the kernel's choice: disconnecting gives it up.
    after = name_of(a);
    printf("after AF_UNSPEC: %s, port zero: %s\n", host_of(&after), port_in(&after) == 0 ? "yes" : "no");
    errno = 0;
    check("send is EDESTADDRREQ", send(a, "x", 1, 0) == -1 && errno == EDESTADDRREQ);
    after = name_of(a);
    printf("after the failed send: %s, port nonzero: %s\n", host_of(&after), port_in(&after) > 0 ? "yes" : "no");
    send_to_name(x, a, "stranger", 8);
    len = sizeof from;
    struct sockaddr_storage xname = name_of(x);
    check("a stranger's datagram is received again", recvfrom(a, buf, sizeof buf, 0, (struct sockaddr *)&from, &len) == 8 && !memcmp(&from, &xname, len));

    // A port asked for by number stays through AF_UNSPEC.
    int e = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ep = v4("127.0.0.1", free_port(AF_INET, "127.0.0.1"));
    check("bind to a port by number", bind(e, (struct sockaddr *)&ep, sizeof ep) == 0);
    connect(e, (struct sockaddr *)&bname, sizeof(struct sockaddr_in));
    connect(e, &unspec, sizeof unspec);
    check("connect, AF_UNSPEC: that name stays", port_of(e) == ntohs(ep.sin_port));
    close(e);

    // A socket bound by connect is unbound again by AF_UNSPEC.
    int c = socket(AF_INET, SOCK_DGRAM, 0);
    connect(c, (struct sockaddr *)&bname, sizeof(struct sockaddr_in));
    struct sockaddr_storage cn = name_of(c);
    printf("connect binds: %s, port nonzero: %s\n", host_of(&cn), port_in(&cn) > 0 ? "yes" : "no");
    connect(c, &unspec, sizeof unspec);
    cn = name_of(c);
    printf("a socket bound by connect, after AF_UNSPEC: %s, port zero: %s\n", host_of(&cn), port_in(&cn) == 0 ? "yes" : "no");
    close(c);

    // connect to 0.0.0.0 and sendto 0.0.0.0 reach loopback.
    c = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = v4("0.0.0.0", port_of(b));
    check("connect to 0.0.0.0", connect(c, (struct sockaddr *)&any, sizeof any) == 0);
    len = sizeof peer;
    getpeername(c, (struct sockaddr *)&peer, &len);
    printf("connect to 0.0.0.0: the peer is %s\n", host_of(&peer));
    check("and send reaches 127.0.0.1", send(c, "any", 3, 0) == 3 && recv(b, buf, sizeof buf, 0) == 3);
    close(c);
    len = sizeof from;
    check("sendto 0.0.0.0 reaches 127.0.0.1", sendto(x, "any", 3, 0, (struct sockaddr *)&any, sizeof any) == 3 && recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &len) == 3 && !memcmp(&from, &xname, len));
    close(a);
    close(b);
    close(x);
}

static void readiness(void) {
    char buf[64];
    int r = bound(AF_INET, "127.0.0.1"), s = bound(AF_INET, "127.0.0.1");
    errno = 0;
    check("MSG_DONTWAIT on an empty socket is EAGAIN", recv(r, buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    fcntl(r, F_SETFL, O_NONBLOCK);
    errno = 0;
    check("O_NONBLOCK: recvfrom is EAGAIN", recvfrom(r, buf, sizeof buf, 0, NULL, NULL) == -1 && errno == EAGAIN);
    fcntl(r, F_SETFL, 0);
    struct timeval tv = {0, 20000};
    setsockopt(r, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    errno = 0;
    check("SO_RCVTIMEO: EAGAIN after the timeout", recv(r, buf, sizeof buf, 0) == -1 && errno == EAGAIN);
    tv.tv_usec = 0;
    setsockopt(r, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    printf("poll on an empty socket: %s\n", poll_names(wait_for(r, POLLIN | POLLOUT, 0)));

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 5}, got;
    epoll_ctl(ep, EPOLL_CTL_ADD, r, &ev);
    check("epoll: nothing yet", epoll_wait(ep, &got, 1, 0) == 0);

    // A forked child's datagram wakes poll, then epoll, then a blocking recvfrom.
    int go[2];
    pipe(go);
    int port = port_of(r);
    pid_t child = fork();
    if (child == 0) {
        struct sockaddr_in to = v4("127.0.0.1", port);
        char x;
        for (int i = 0; i < 3; i++)
            if (read(go[0], &x, 1) != 1 || sendto(s, "child", 5, 0, (struct sockaddr *)&to, sizeof to) != 5) _exit(1);
        _exit(0);
    }
    write(go[1], "g", 1);
    printf("poll while a child sends: %s\n", poll_names(wait_for(r, POLLIN, WAIT_MS)));
    check("the datagram", recv(r, buf, sizeof buf, 0) == 5);
    write(go[1], "g", 1);
    check("epoll wakes for the next", epoll_wait(ep, &got, 1, WAIT_MS) == 1 && got.events == EPOLLIN && got.data.u32 == 5);
    recv(r, buf, sizeof buf, 0);
    check("epoll: quiet once read", epoll_wait(ep, &got, 1, 0) == 0);
    write(go[1], "g", 1);
    struct sockaddr_storage from, sname = name_of(s);
    socklen_t len = sizeof from;
    check("a blocking recvfrom wakes for the third, from the child's socket", recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&from, &len) == 5 && !memcmp(&from, &sname, len));
    int st;
    waitpid(child, &st, 0);
    check("the child sent them", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(go[0]);
    close(go[1]);
    close(ep);
    close(r);
    close(s);
}

static void ipv6(void) {
    char buf[64];
    int r = bound(AF_INET6, "::1"), s = bound(AF_INET6, "::1");
    struct sockaddr_storage rn = name_of(r), sn = name_of(s), from;
    socklen_t len = sizeof rn;
    getsockname(r, (struct sockaddr *)&rn, &len);
    printf("::1: bound to %s, length %u, port nonzero: %s\n", host_of(&rn), len, port_in(&rn) > 0 ? "yes" : "no");
    check("::1: sendto", send_to_name(s, r, "six", 3) == 3);
    len = sizeof from;
    check("::1: recvfrom, from the sender's name", recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&from, &len) == 3 && len == sizeof(struct sockaddr_in6) && !memcmp(&from, &sn, len));
    printf("::1: the sender is %s\n", host_of(&from));
    struct sockaddr_in6 any = v6("::", port_of(r));
    check("::1: sendto :: reaches ::1", sendto(s, "any", 3, 0, (struct sockaddr *)&any, sizeof any) == 3 && recv(r, buf, sizeof buf, 0) == 3);
    int c = socket(AF_INET6, SOCK_DGRAM, 0);
    check("::1: connect and send", connect(c, (struct sockaddr *)&rn, sizeof(struct sockaddr_in6)) == 0 && send(c, "c", 1, 0) == 1 && recv(r, buf, sizeof buf, 0) == 1);
    struct sockaddr_storage cn = name_of(c);
    printf("::1: connect binds: %s, port nonzero: %s\n", host_of(&cn), port_in(&cn) > 0 ? "yes" : "no");
    close(c);
    close(r);
    close(s);

    // Dual stack: an AF_INET6 socket on :: receives IPv4 datagrams, from ::ffff:a.b.c.d.
    int d = socket(AF_INET6, SOCK_DGRAM, 0);
    set_int(d, IPPROTO_IPV6, IPV6_V6ONLY, 0); // not /proc/sys/net/ipv6/bindv6only
    any.sin6_port = 0;
    bind(d, (struct sockaddr *)&any, sizeof any);
    int f = bound(AF_INET, "127.0.0.1");
    struct sockaddr_in to = v4("127.0.0.1", port_of(d));
    check("dual stack: an AF_INET sendto 127.0.0.1", sendto(f, "v4", 2, 0, (struct sockaddr *)&to, sizeof to) == 2);
    len = sizeof from;
    check("dual stack: the AF_INET6 socket on :: receives it", recvfrom(d, buf, sizeof buf, 0, (struct sockaddr *)&from, &len) == 2);
    printf("dual stack: the sender is %s (AF_INET6: %s, length %u)\n", host_of(&from), from.ss_family == AF_INET6 ? "yes" : "no", len);
    check("dual stack: with the sender's port", port_in(&from) == port_of(f));
    struct sockaddr_storage back;
    check("dual stack: a reply to ::ffff:127.0.0.1 reaches the AF_INET socket", sendto(d, "re", 2, 0, (struct sockaddr *)&from, len) == 2 && (len = sizeof back, recvfrom(f, buf, sizeof buf, 0, (struct sockaddr *)&back, &len)) == 2);
    printf("dual stack: the reply comes from %s\n", host_of(&back));
    close(d);

    // IPV6_V6ONLY: no IPv4 datagrams.
    d = socket(AF_INET6, SOCK_DGRAM, 0);
    set_int(d, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    any.sin6_port = 0;
    bind(d, (struct sockaddr *)&any, sizeof any);
    to.sin_port = htons(port_of(d));
    sendto(f, "v4", 2, 0, (struct sockaddr *)&to, sizeof to);
    int six = bound(AF_INET6, "::1");
    send_to_name(six, d, "v6", 2);
    check("IPV6_V6ONLY: the IPv4 datagram does not arrive, the IPv6 one does", recv(d, buf, sizeof buf, 0) == 2 && !memcmp(buf, "v6", 2));
    errno = 0;
    check("IPV6_V6ONLY: nothing else", recv(d, buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    close(six);
    close(d);
    close(f);
}

/* sendmmsg and recvmmsg: a batch of datagrams each way, MSG_WAITFORONE. */
static void batches(void) {
    int r = bound(AF_INET, "127.0.0.1"), s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_storage to = name_of(r);
    connect(s, (struct sockaddr *)&to, len_of(&to));
    struct mmsghdr m[4];
    struct iovec iov[4];
    char bufs[4][16];
    memset(m, 0, sizeof m);
    for (int i = 0; i < 3; i++) {
        snprintf(bufs[i], sizeof bufs[i], "batch %d", i);
        iov[i] = (struct iovec){bufs[i], strlen(bufs[i]) + (size_t)i};
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    int sent = sendmmsg(s, m, 3, 0);
    check("sendmmsg sends three", sent == 3);
    check("and records each length", m[0].msg_len == 7 && m[1].msg_len == 8 && m[2].msg_len == 9);
    memset(m, 0, sizeof m);
    memset(bufs, 0, sizeof bufs);
    for (int i = 0; i < 4; i++) {
        iov[i] = (struct iovec){bufs[i], sizeof bufs[i]};
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    int got = recvmmsg(r, m, 4, MSG_WAITFORONE, NULL);
    check("recvmmsg with MSG_WAITFORONE takes the three there are", got == 3);
    check("in order, with their lengths", !strcmp(bufs[0], "batch 0") && m[0].msg_len == 7 && m[2].msg_len == 9 && !strcmp(bufs[2], "batch 2"));
    errno = 0;
    check("recvmmsg on an empty socket, MSG_DONTWAIT: EAGAIN", recvmmsg(r, m, 4, MSG_DONTWAIT, NULL) == -1 && errno == EAGAIN);
    close(r);
    close(s);
}

int main(void) {
    // Line by line, so that a run that hangs shows how far it got before the alarm ends it.
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(30);
    basics();
    send_recv();
    sizes(AF_INET, "127.0.0.1", 65507);
    sizes(AF_INET6, "::1", 65527);
    refused();
    connected();
    readiness();
    ipv6();
    batches();
    printf("%d failures\n", failures);
    return failures != 0;
}
