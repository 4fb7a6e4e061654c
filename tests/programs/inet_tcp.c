// Loopback TCP over AF_INET and AF_INET6: names and ephemeral ports, bind
// conflicts and SO_REUSEADDR, connect/accept, refused and reset connections,
// EOF, EPIPE and SIGPIPE, a 1 MiB transfer each way with a forked child,
// non-blocking accept and connect, poll/epoll readiness, FIONREAD, MSG_PEEK,
// MSG_WAITALL, socket options, ::1, dual stack and IPV6_V6ONLY, and
// connecting to the unspecified address. Every port is one the kernel chose
// (bind to port 0), and no port number is printed.
#define _GNU_SOURCE
#include "check.h"
#include "inet.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 5000 // readiness that must come, comes at once; this only bounds a hang
#define MIB (1 << 20)

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int sig) { (void)sig; sigpipes++; }

// The port of a socket's own name (either family), or -1.
static int port_of(int fd) {
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &len) != 0) return -1;
    if (a.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&a)->sin_port);
    if (a.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
    return -1;
}

static int bind_any(int fd, const void *a) {
    socklen_t len = ((const struct sockaddr *)a)->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    return bind(fd, a, len);
}

static int connect_any(int fd, const void *a) {
    socklen_t len = ((const struct sockaddr *)a)->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    return connect(fd, a, len);
}

// A listening socket of `family` bound to `ip` port 0.
static int listener(int family, const char *ip) {
    int s = socket(family, SOCK_STREAM, 0);
    struct sockaddr_in a4 = v4(ip, 0);
    struct sockaddr_in6 a6 = v6(ip, 0);
    if (s < 0 || bind_any(s, family == AF_INET ? (void *)&a4 : (void *)&a6) != 0 || listen(s, 16) != 0) return -1;
    return s;
}

// A socket of `family` connected to `ip` at `port`, or -1 with errno set.
static int dial(int family, const char *ip, int port) {
    int c = socket(family, SOCK_STREAM, 0);
    struct sockaddr_in a4 = v4(ip, port);
    struct sockaddr_in6 a6 = v6(ip, port);
    if (connect_any(c, family == AF_INET ? (void *)&a4 : (void *)&a6) != 0) {
        int e = errno;
        close(c);
        errno = e;
        return -1;
    }
    return c;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return -1;
        p += w;
        n -= w;
    }
    return 0;
}

// FNV-1a of the bytes read until EOF; their count in *total.
static uint64_t read_sum(int fd, size_t *total) {
    static char buf[65536];
    uint64_t h = 14695981039346656037ull;
    *total = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0) return r == 0 ? h : 0;
        for (ssize_t i = 0; i < r; i++) h = (h ^ (unsigned char)buf[i]) * 1099511628211ull;
        *total += r;
    }
}

static uint64_t sum(const char *p, size_t n) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static void names_and_ports(void) {
    int s4 = socket(AF_INET, SOCK_STREAM, 0), s6 = socket(AF_INET6, SOCK_STREAM, 0);
    check("socket(AF_INET, SOCK_STREAM)", s4 >= 0);
    check("socket(AF_INET6, SOCK_STREAM)", s6 >= 0);
    int t = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    check("socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP)", t >= 0 && (fcntl(t, F_GETFL) & O_NONBLOCK) && (fcntl(t, F_GETFD) & FD_CLOEXEC));
    close(t);
    errno = 0;
    check("socket(AF_INET, SOCK_STREAM, IPPROTO_UDP) is EPROTONOSUPPORT", socket(AF_INET, SOCK_STREAM, IPPROTO_UDP) == -1 && errno == EPROTONOSUPPORT);

    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    check("an unbound socket's name is 0.0.0.0 port 0", getsockname(s4, (struct sockaddr *)&a, &len) == 0 && len == sizeof(struct sockaddr_in) && a.ss_family == AF_INET && !strcmp(host_of(&a), "0.0.0.0") && port_of(s4) == 0);
    len = sizeof a;
    check("an unbound AF_INET6 socket's name is :: port 0", getsockname(s6, (struct sockaddr *)&a, &len) == 0 && len == sizeof(struct sockaddr_in6) && a.ss_family == AF_INET6 && !strcmp(host_of(&a), "::") && port_of(s6) == 0);
    errno = 0;
    len = sizeof a;
    check("getpeername unconnected is ENOTCONN", getpeername(s4, (struct sockaddr *)&a, &len) == -1 && errno == ENOTCONN);

    struct sockaddr_in lo = v4("127.0.0.1", 0);
    check("bind 127.0.0.1 port 0", bind(s4, (struct sockaddr *)&lo, sizeof lo) == 0);
    len = sizeof a;
    getsockname(s4, (struct sockaddr *)&a, &len);
    int port = port_of(s4);
    printf("getsockname after bind: %s, length %u, ephemeral port nonzero: %s\n", host_of(&a), len, port > 0 ? "yes" : "no");
    int lo_lo = 32768, lo_hi = 60999; // Linux's default, if the file is not there
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &lo_lo, &lo_hi) != 2) lo_lo = lo_hi = -1;
        fclose(f);
    }
    check("the ephemeral port is in ip_local_port_range", port >= lo_lo && port <= lo_hi);
    errno = 0;
    check("binding a bound socket again is EINVAL", bind(s4, (struct sockaddr *)&lo, sizeof lo) == -1 && errno == EINVAL);

    int s2 = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in same = v4("127.0.0.1", port), any = v4("0.0.0.0", port);
    errno = 0;
    check("bind to the same address and port is EADDRINUSE", bind(s2, (struct sockaddr *)&same, sizeof same) == -1 && errno == EADDRINUSE);
    errno = 0;
    check("bind to 0.0.0.0 on that port is EADDRINUSE", bind(s2, (struct sockaddr *)&any, sizeof any) == -1 && errno == EADDRINUSE);
    close(s2);

    // A bound socket that does not listen refuses connections to its port.
    errno = 0;
    check("connect to a port nobody listens on is ECONNREFUSED", dial(AF_INET, "127.0.0.1", port) == -1 && errno == ECONNREFUSED);

    struct sockaddr_in far = v4("10.1.2.3", 0);
    int s3 = socket(AF_INET, SOCK_STREAM, 0);
    errno = 0;
    check("bind to a non-local address (10.1.2.3) is EADDRNOTAVAIL", bind(s3, (struct sockaddr *)&far, sizeof far) == -1 && errno == EADDRNOTAVAIL);
    struct sockaddr_in lo2 = v4("127.0.0.2", 0);
    check("bind to 127.0.0.2 (all of 127/8 is loopback)", bind(s3, (struct sockaddr *)&lo2, sizeof lo2) == 0);
    close(s3);
    s3 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 far6 = v6("2001:db8::1", 0);
    errno = 0;
    check("bind to a non-local IPv6 address (2001:db8::1) is EADDRNOTAVAIL", bind(s3, (struct sockaddr *)&far6, sizeof far6) == -1 && errno == EADDRNOTAVAIL);
    close(s3);
    s3 = socket(AF_INET, SOCK_STREAM, 0);
    errno = 0;
    check("bind with a short address is EINVAL", bind(s3, (struct sockaddr *)&lo, sizeof lo - 1) == -1 && errno == EINVAL);
    struct sockaddr_in6 six = v6("::1", 0);
    errno = 0;
    check("bind an AF_INET socket to an AF_INET6 address is EAFNOSUPPORT", bind(s3, (struct sockaddr *)&six, sizeof six) == -1 && errno == EAFNOSUPPORT);
    close(s3);

    // listen without bind picks a port, on the wildcard address.
    int l = socket(AF_INET, SOCK_STREAM, 0);
    check("listen without bind", listen(l, 4) == 0);
    len = sizeof a;
    getsockname(l, (struct sockaddr *)&a, &len);
    printf("listen autobinds: %s, port nonzero: %s\n", host_of(&a), port_of(l) > 0 ? "yes" : "no");
    int c = dial(AF_INET, "127.0.0.1", port_of(l));
    check("and 127.0.0.1 reaches it", c >= 0);
    close(c);
    close(l);
    l = socket(AF_INET6, SOCK_STREAM, 0);
    listen(l, 4);
    len = sizeof a;
    getsockname(l, (struct sockaddr *)&a, &len);
    printf("AF_INET6 listen autobinds: %s, port nonzero: %s\n", host_of(&a), port_of(l) > 0 ? "yes" : "no");
    close(l);
    close(s4);
    close(s6);
}

static void reuse(void) {
    int a = socket(AF_INET, SOCK_STREAM, 0), b = socket(AF_INET, SOCK_STREAM, 0);
    set_int(a, SOL_SOCKET, SO_REUSEADDR, 1);
    set_int(b, SOL_SOCKET, SO_REUSEADDR, 1);
    struct sockaddr_in lo = v4("127.0.0.1", 0);
    bind(a, (struct sockaddr *)&lo, sizeof lo);
    lo.sin_port = htons(port_of(a));
    check("SO_REUSEADDR on both, neither listening: the second bind succeeds", bind(b, (struct sockaddr *)&lo, sizeof lo) == 0);
    check("the first listens", listen(a, 4) == 0);
    errno = 0;
    check("the second cannot listen too: EADDRINUSE", listen(b, 4) == -1 && errno == EADDRINUSE);
    close(b);
    b = socket(AF_INET, SOCK_STREAM, 0);
    set_int(b, SOL_SOCKET, SO_REUSEADDR, 1);
    errno = 0;
    check("SO_REUSEADDR, bind to a listening port: EADDRINUSE", bind(b, (struct sockaddr *)&lo, sizeof lo) == -1 && errno == EADDRINUSE);
    close(b);

    // A server that closes its connection first leaves it in TIME_WAIT on the port.
    int c = dial(AF_INET, "127.0.0.1", port_of(a));
    int s = accept(a, NULL, NULL);
    close(a);
    close(s);
    char x;
    check("the client reads EOF", read(c, &x, 1) == 0);
    close(c);
    b = socket(AF_INET, SOCK_STREAM, 0);
    errno = 0;
    check("rebinding a port the server closed first: EADDRINUSE without SO_REUSEADDR", bind(b, (struct sockaddr *)&lo, sizeof lo) == -1 && errno == EADDRINUSE);
    set_int(b, SOL_SOCKET, SO_REUSEADDR, 1);
    check("and succeeds with it, and listens", bind(b, (struct sockaddr *)&lo, sizeof lo) == 0 && listen(b, 4) == 0);
    close(b);
}

static void connect_accept(int family, const char *ip) {
    char what[160];
    const char *fam = family == AF_INET ? "AF_INET" : "AF_INET6";
    socklen_t full = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    int l = listener(family, ip);
    snprintf(what, sizeof what, "%s %s: bind and listen", fam, ip);
    check(what, l >= 0);
    int c = dial(family, ip, port_of(l));
    snprintf(what, sizeof what, "%s %s: connect completes before accept", fam, ip);
    check(what, c >= 0);
    check("  data sent before accept", send(c, "early", 5, 0) == 5);
    struct sockaddr_storage from, lname, cname, cpeer, sname, speer;
    socklen_t flen = sizeof from, len;
    int s = accept(l, (struct sockaddr *)&from, &flen);
    check("  accept", s >= 0);
    check("  the accepted socket is blocking", !(fcntl(s, F_GETFL) & O_NONBLOCK));
    char buf[64] = {0};
    check("  the early data is there", recv(s, buf, sizeof buf, 0) == 5 && !memcmp(buf, "early", 5));
    len = sizeof lname;
    getsockname(l, (struct sockaddr *)&lname, &len);
    len = sizeof cname;
    getsockname(c, (struct sockaddr *)&cname, &len);
    check("  the client is bound by connect: its port nonzero, not the listener's", port_of(c) > 0 && port_of(c) != port_of(l));
    len = sizeof cpeer;
    check("  getpeername of the client", getpeername(c, (struct sockaddr *)&cpeer, &len) == 0 && len == full);
    len = sizeof sname;
    getsockname(s, (struct sockaddr *)&sname, &len);
    len = sizeof speer;
    check("  getpeername of the accepted socket", getpeername(s, (struct sockaddr *)&speer, &len) == 0 && len == full);
    printf("  accept's address: length %s, %s\n", flen == full ? "full" : "wrong", host_of(&from));
    printf("  client: name %s, peer %s; accepted: name %s, peer %s\n", host_of(&cname), host_of(&cpeer), host_of(&sname), host_of(&speer));
    check("  client's peer == listener's name", !memcmp(&cpeer, &lname, full));
    check("  client's peer == accepted socket's name", !memcmp(&cpeer, &sname, full));
    check("  accepted socket's peer == client's name", !memcmp(&speer, &cname, full));
    check("  accept's address == client's name", !memcmp(&from, &cname, full));
    check("  send and recv, client to server", send(c, "ping", 4, 0) == 4 && recv(s, buf, sizeof buf, 0) == 4 && !memcmp(buf, "ping", 4));
    check("  and server to client", write(s, "pong!", 5) == 5 && read(c, buf, sizeof buf) == 5 && !memcmp(buf, "pong!", 5));
    close(c);
    check("  EOF after the client closes", read(s, buf, sizeof buf) == 0);
    close(s);
    close(l);
}

// 1 MiB from a forked child, checksummed; then 1 MiB back, which the child checks.
static void bulk(void) {
    static char data[MIB];
    for (size_t i = 0; i < MIB; i++) data[i] = (char)(i * 7 + (i >> 11));
    int l = listener(AF_INET, "127.0.0.1");
    int port = port_of(l);
    pid_t child = fork();
    if (child == 0) {
        close(l);
        int c = dial(AF_INET, "127.0.0.1", port);
        if (c < 0 || write_all(c, data, MIB) != 0 || shutdown(c, SHUT_WR) != 0) _exit(2);
        size_t n;
        uint64_t h = read_sum(c, &n);
        _exit(n == MIB && h == sum(data, MIB) ? 0 : 3);
    }
    int s = accept(l, NULL, NULL);
    size_t n = 0;
    uint64_t h = read_sum(s, &n);
    printf("1 MiB from a forked child: %zu bytes, checksum matches: %s\n", n, h == sum(data, MIB) ? "yes" : "no");
    check("1 MiB back to the child", write_all(s, data, MIB) == 0 && close(s) == 0);
    int st;
    waitpid(child, &st, 0);
    check("the child got it all, checksum matches", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(l);
}

static void endings(void) {
    int l = listener(AF_INET, "127.0.0.1");
    int port = port_of(l);
    char buf[64];

    int c = dial(AF_INET, "127.0.0.1", port), s = accept(l, NULL, NULL);
    check("shutdown(SHUT_WR)", shutdown(c, SHUT_WR) == 0);
    check("the peer reads EOF", read(s, buf, sizeof buf) == 0);
    check("and again EOF", recv(s, buf, sizeof buf, MSG_DONTWAIT) == 0);
    check("the other direction still works", write(s, "back", 4) == 4 && read(c, buf, sizeof buf) == 4);
    errno = 0;
    check("writing after SHUT_WR is EPIPE", send(c, "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE);
    close(c);
    close(s);

    // Closing with data unread resets the connection.
    c = dial(AF_INET, "127.0.0.1", port);
    s = accept(l, NULL, NULL);
    send(c, "unread", 6, 0);
    wait_for(s, POLLIN, WAIT_MS);
    close(s);
    wait_for(c, 0, WAIT_MS); // POLLERR or POLLHUP: the reset has come
    printf("poll after the peer closed with data unread: %s\n", poll_names(wait_for(c, POLLIN | POLLOUT, 0)));
    errno = 0;
    check("close with unread data: the peer's recv is ECONNRESET", recv(c, buf, sizeof buf, 0) == -1 && errno == ECONNRESET);
    check("then recv reads EOF", recv(c, buf, sizeof buf, 0) == 0);
    printf("poll after the error is read: %s\n", poll_names(wait_for(c, POLLIN | POLLOUT, 0)));
    close(c);

    // SO_LINGER with a zero timeout resets too.
    c = dial(AF_INET, "127.0.0.1", port);
    s = accept(l, NULL, NULL);
    struct linger lg = {1, 0};
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(s);
    wait_for(c, 0, WAIT_MS);
    errno = 0;
    check("SO_LINGER {1, 0} then close: the peer's read is ECONNRESET", read(c, buf, sizeof buf) == -1 && errno == ECONNRESET);
    close(c);

    // Writing to a peer that closed: the first write goes, the peer resets, then EPIPE.
    c = dial(AF_INET, "127.0.0.1", port);
    s = accept(l, NULL, NULL);
    close(s);
    wait_for(c, POLLIN, WAIT_MS); // the FIN has come
    printf("poll after the peer closed: %s\n", poll_names(wait_for(c, POLLIN | POLLOUT, 0)));
    check("the first send after the peer closed succeeds", send(c, "x", 1, MSG_NOSIGNAL) == 1);
    printf("poll after the peer answered it: %s\n", poll_names(wait_for(c, 0, WAIT_MS) | wait_for(c, POLLIN | POLLOUT, 0)));
    errno = 0;
    check("the next send is EPIPE (MSG_NOSIGNAL)", send(c, "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE);
    check("no SIGPIPE with MSG_NOSIGNAL", sigpipes == 0);
    errno = 0;
    check("write is EPIPE and raises SIGPIPE", write(c, "x", 1) == -1 && errno == EPIPE && sigpipes == 1);
    check("recv reads EOF", recv(c, buf, sizeof buf, 0) == 0);
    close(c);

    // A connection still in the backlog is reset when the listener closes.
    c = dial(AF_INET, "127.0.0.1", port);
    close(l);
    wait_for(c, 0, WAIT_MS);
    errno = 0;
    check("a connection never accepted is reset when the listener closes", read(c, buf, sizeof buf) == -1 && errno == ECONNRESET);
    close(c);

    int u = socket(AF_INET, SOCK_STREAM, 0);
    errno = 0;
    check("recv unconnected is ENOTCONN", recv(u, buf, 1, 0) == -1 && errno == ENOTCONN);
    errno = 0;
    check("send unconnected is EPIPE", send(u, "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE);
    errno = 0;
    check("shutdown unconnected is ENOTCONN", shutdown(u, SHUT_RDWR) == -1 && errno == ENOTCONN);
    errno = 0;
    check("accept on a socket that is not listening is EINVAL", accept(u, NULL, NULL) == -1 && errno == EINVAL);
    struct sockaddr_in6 six = v6("::1", 1);
    errno = 0;
    check("connect an AF_INET socket to an AF_INET6 address is EAFNOSUPPORT", connect(u, (struct sockaddr *)&six, sizeof six) == -1 && errno == EAFNOSUPPORT);
    close(u);
}

static void nonblocking(void) {
    int l = listener(AF_INET, "127.0.0.1");
    int port = port_of(l);
    check("a listener with nothing pending: no POLLIN", wait_for(l, POLLIN, 0) == 0);
    fcntl(l, F_SETFL, O_NONBLOCK);
    errno = 0;
    check("non-blocking accept with nothing pending is EAGAIN", accept(l, NULL, NULL) == -1 && errno == EAGAIN);
    fcntl(l, F_SETFL, 0);

    // poll on the listener wakes when a forked child connects.
    int go[2];
    pipe(go);
    pid_t child = fork();
    if (child == 0) {
        char x;
        read(go[0], &x, 1);
        int c = dial(AF_INET, "127.0.0.1", port);
        _exit(c >= 0 && write(c, "child", 5) == 5 ? 0 : 1);
    }
    write(go[1], "g", 1);
    printf("poll on the listener while a child connects: %s\n", poll_names(wait_for(l, POLLIN | POLLOUT, WAIT_MS)));
    int s = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    check("accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)", s >= 0 && (fcntl(s, F_GETFL) & O_NONBLOCK) && (fcntl(s, F_GETFD) & FD_CLOEXEC));
    char buf[16];
    wait_for(s, POLLIN, WAIT_MS);
    check("the child's data", read(s, buf, sizeof buf) == 5 && !memcmp(buf, "child", 5));
    int st;
    waitpid(child, &st, 0);
    check("the child connected", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    check("no longer readable once accepted", wait_for(l, POLLIN, 0) == 0);
    close(s);
    close(go[0]);
    close(go[1]);

    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = v4("127.0.0.1", port);
    errno = 0;
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    check("non-blocking connect: 0 or EINPROGRESS", r == 0 || errno == EINPROGRESS);
    printf("poll POLLOUT after a non-blocking connect: %s\n", poll_names(wait_for(c, POLLOUT, WAIT_MS)));
    check("SO_ERROR is 0", int_opt(c, SOL_SOCKET, SO_ERROR) == 0);
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    check("getpeername works once connected", getpeername(c, (struct sockaddr *)&peer, &len) == 0 && !strcmp(host_of(&peer), "127.0.0.1"));
    // The socket layer learns of the completion from the next connect, which succeeds.
    check("connect again after the non-blocking connect completed: 0", connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    errno = 0;
    check("and once more: EISCONN", connect(c, (struct sockaddr *)&a, sizeof a) == -1 && errno == EISCONN);
    errno = 0;
    check("non-blocking recv with nothing there is EAGAIN", recv(c, buf, sizeof buf, 0) == -1 && errno == EAGAIN);
    s = accept(l, NULL, NULL);
    close(s);
    close(c);

    // A refused non-blocking connect reports through poll and SO_ERROR.
    int dead = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in lo = v4("127.0.0.1", 0);
    bind(dead, (struct sockaddr *)&lo, sizeof lo);
    a.sin_port = htons(port_of(dead));
    c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    errno = 0;
    r = connect(c, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    if (r == -1 && e == EINPROGRESS) {
        printf("poll after a refused non-blocking connect: %s\n", poll_names(wait_for(c, POLLOUT, WAIT_MS)));
        e = int_opt(c, SOL_SOCKET, SO_ERROR);
    } else {
        printf("poll after a refused non-blocking connect: %s\n", "POLLOUT|POLLERR|POLLHUP");
    }
    check("refused non-blocking connect: ECONNREFUSED", e == ECONNREFUSED);
    check("SO_ERROR reads it once: then 0", int_opt(c, SOL_SOCKET, SO_ERROR) == 0);
    close(c);
    close(dead);

    // Listening on a connected socket, connecting a listening one.
    c = dial(AF_INET, "127.0.0.1", port);
    errno = 0;
    check("listen on a connected socket is EINVAL", listen(c, 1) == -1 && errno == EINVAL);
    errno = 0;
    check("connect on a listening socket is EISCONN", connect(l, (struct sockaddr *)&a, sizeof a) == -1 && errno == EISCONN);
    close(c);
    close(l);
}

static void options(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    check("SO_TYPE is SOCK_STREAM", int_opt(s, SOL_SOCKET, SO_TYPE) == SOCK_STREAM);
    check("SO_DOMAIN is AF_INET", int_opt(s, SOL_SOCKET, SO_DOMAIN) == AF_INET);
    check("SO_PROTOCOL is IPPROTO_TCP", int_opt(s, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP);
    check("SO_ACCEPTCONN is 0 before listen", int_opt(s, SOL_SOCKET, SO_ACCEPTCONN) == 0);
    check("SO_ERROR is 0", int_opt(s, SOL_SOCKET, SO_ERROR) == 0);
    check("TCP_NODELAY, SO_REUSEADDR, SO_KEEPALIVE are 0 by default", int_opt(s, IPPROTO_TCP, TCP_NODELAY) == 0 && int_opt(s, SOL_SOCKET, SO_REUSEADDR) == 0 && int_opt(s, SOL_SOCKET, SO_KEEPALIVE) == 0);
    check("set TCP_NODELAY", set_int(s, IPPROTO_TCP, TCP_NODELAY, 1) == 0 && int_opt(s, IPPROTO_TCP, TCP_NODELAY) == 1);
    check("set SO_REUSEADDR", set_int(s, SOL_SOCKET, SO_REUSEADDR, 1) == 0 && int_opt(s, SOL_SOCKET, SO_REUSEADDR) == 1);
    check("set SO_KEEPALIVE", set_int(s, SOL_SOCKET, SO_KEEPALIVE, 1) == 0 && int_opt(s, SOL_SOCKET, SO_KEEPALIVE) == 1);
    check("and clear them", set_int(s, IPPROTO_TCP, TCP_NODELAY, 0) == 0 && int_opt(s, IPPROTO_TCP, TCP_NODELAY) == 0 && set_int(s, SOL_SOCKET, SO_KEEPALIVE, 0) == 0 && int_opt(s, SOL_SOCKET, SO_KEEPALIVE) == 0);
    listen(s, 1);
    check("SO_ACCEPTCONN is 1 when listening", int_opt(s, SOL_SOCKET, SO_ACCEPTCONN) == 1);
    close(s);
    s = socket(AF_INET6, SOCK_STREAM, 0);
    check("AF_INET6: SO_DOMAIN AF_INET6, SO_PROTOCOL IPPROTO_TCP", int_opt(s, SOL_SOCKET, SO_DOMAIN) == AF_INET6 && int_opt(s, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP);
    check("IPV6_V6ONLY can be set and read", set_int(s, IPPROTO_IPV6, IPV6_V6ONLY, 1) == 0 && int_opt(s, IPPROTO_IPV6, IPV6_V6ONLY) == 1);
    close(s);
}

static void data(void) {
    int l = listener(AF_INET, "127.0.0.1");
    int port = port_of(l);
    int c = dial(AF_INET, "127.0.0.1", port), s = accept(l, NULL, NULL);
    char buf[256];
    int n = -1;
    errno = 0;
    check("FIONREAD on a listener is EINVAL", ioctl(l, FIONREAD, &n) == -1 && errno == EINVAL);
    check("FIONREAD with nothing queued is 0", ioctl(s, FIONREAD, &n) == 0 && n == 0);
    send(c, "abcdef", 6, 0);
    wait_for(s, POLLIN, WAIT_MS);
    check("FIONREAD counts the bytes", ioctl(s, FIONREAD, &n) == 0 && n == 6);
    check("MSG_PEEK reads without taking", recv(s, buf, 4, MSG_PEEK) == 4 && !memcmp(buf, "abcd", 4) && ioctl(s, FIONREAD, &n) == 0 && n == 6);
    check("a read can take part", read(s, buf, 2) == 2 && !memcmp(buf, "ab", 2));
    check("then the rest", recv(s, buf, sizeof buf, 0) == 4 && !memcmp(buf, "cdef", 4));
    errno = 0;
    check("MSG_DONTWAIT with nothing there is EAGAIN", recv(s, buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    struct iovec iov[2] = {{"gath", 4}, {"ered", 4}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    check("sendmsg gathers iovecs", sendmsg(c, &m, 0) == 8);
    char p1[3], p2[16] = {0};
    struct iovec riov[2] = {{p1, 3}, {p2, sizeof p2}};
    struct msghdr rm = {.msg_iov = riov, .msg_iovlen = 2};
    wait_for(s, POLLIN, WAIT_MS);
    check("recvmsg scatters them", recvmsg(s, &rm, 0) == 8 && !memcmp(p1, "gat", 3) && !memcmp(p2, "hered", 5) && rm.msg_flags == 0);

    // MSG_WAITALL waits for the whole count, written in pieces by a child.
    pid_t child = fork();
    if (child == 0) {
        for (int i = 0; i < 10; i++)
            if (write(c, "0123456789", 10) != 10) _exit(1);
        _exit(0);
    }
    check("MSG_WAITALL: 100 bytes written in 10 pieces", recv(s, buf, 100, MSG_WAITALL) == 100 && !memcmp(buf + 90, "0123456789", 10));
    waitpid(child, NULL, 0);
    write(c, "short", 5);
    shutdown(c, SHUT_WR);
    check("MSG_WAITALL returns short at EOF", recv(s, buf, 100, MSG_WAITALL) == 5);
    close(c);
    close(s);

    // epoll: a listener, then a connection's data, EOF and write space.
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1}, got[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    check("epoll: a quiet listener", epoll_wait(ep, got, 4, 0) == 0);
    c = dial(AF_INET, "127.0.0.1", port);
    check("epoll: EPOLLIN on the listener once a client connects", epoll_wait(ep, got, 4, WAIT_MS) == 1 && got[0].data.u32 == 1 && got[0].events == EPOLLIN);
    s = accept(l, NULL, NULL);
    check("epoll: quiet again after accept", epoll_wait(ep, got, 4, 0) == 0);
    epoll_ctl(ep, EPOLL_CTL_DEL, l, NULL);
    ev = (struct epoll_event){.events = EPOLLIN | EPOLLRDHUP, .data.u32 = 2};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    check("epoll: nothing to read yet", epoll_wait(ep, got, 4, 0) == 0);
    send(c, "hi", 2, 0);
    check("epoll: EPOLLIN once the peer writes", epoll_wait(ep, got, 4, WAIT_MS) == 1 && got[0].data.u32 == 2 && got[0].events == EPOLLIN);
    read(s, buf, sizeof buf);
    check("epoll: quiet once read", epoll_wait(ep, got, 4, 0) == 0);
    shutdown(c, SHUT_WR);
    int k = epoll_wait(ep, got, 4, WAIT_MS);
    check("epoll: EPOLLIN | EPOLLRDHUP once the peer shuts down", k == 1 && got[0].events == (EPOLLIN | EPOLLRDHUP));
    epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL);

    // Fill the send buffer: not writable until the peer reads it all.
    ev = (struct epoll_event){.events = EPOLLOUT, .data.u32 = 3};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    check("epoll: EPOLLOUT on a fresh connection", epoll_wait(ep, got, 4, 0) == 1 && got[0].events == EPOLLOUT);
    fcntl(s, F_SETFL, O_NONBLOCK);
    static char chunk[65536];
    size_t sent = 0;
    ssize_t w;
    while ((w = send(s, chunk, sizeof chunk, 0)) > 0) sent += w;
    int full_err = errno;
    check("a full send buffer: EAGAIN", w == -1 && full_err == EAGAIN);
    check("epoll: no EPOLLOUT while full", epoll_wait(ep, got, 4, 0) == 0);
    size_t drained = 0;
    while (drained < sent) {
        ssize_t r = read(c, chunk, sizeof chunk);
        if (r <= 0) break;
        drained += r;
    }
    check("the peer reads it all", drained == sent);
    check("epoll: EPOLLOUT again", epoll_wait(ep, got, 4, WAIT_MS) == 1 && got[0].events == EPOLLOUT);
    close(ep);
    close(c);
    close(s);
    close(l);
}

static void ipv6(void) {
    connect_accept(AF_INET6, "::1");

    // An AF_INET6 socket on :: takes IPv4 connections, as ::ffff:a.b.c.d.
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    set_int(l, IPPROTO_IPV6, IPV6_V6ONLY, 0); // not /proc/sys/net/ipv6/bindv6only
    struct sockaddr_in6 any = v6("::", 0);
    check("dual stack: AF_INET6 listener on ::", bind(l, (struct sockaddr *)&any, sizeof any) == 0 && listen(l, 4) == 0);
    int c = dial(AF_INET, "127.0.0.1", port_of(l));
    check("dual stack: an AF_INET client connects to 127.0.0.1", c >= 0);
    struct sockaddr_storage from, name;
    socklen_t flen = sizeof from, len = sizeof name;
    int s = accept(l, (struct sockaddr *)&from, &flen);
    printf("dual stack: the accepted peer is %s (AF_INET6: %s, length %u)\n", host_of(&from), from.ss_family == AF_INET6 ? "yes" : "no", flen);
    check("dual stack: the peer's port is the client's", ntohs(((struct sockaddr_in6 *)&from)->sin6_port) == port_of(c));
    getsockname(s, (struct sockaddr *)&name, &len);
    printf("dual stack: the accepted socket's name is %s\n", host_of(&name));
    len = sizeof name;
    getpeername(c, (struct sockaddr *)&name, &len);
    printf("dual stack: the client's peer is %s\n", host_of(&name));
    char buf[16];
    check("dual stack: data flows", send(c, "v4", 2, 0) == 2 && recv(s, buf, sizeof buf, 0) == 2 && send(s, "v6", 2, 0) == 2 && recv(c, buf, sizeof buf, 0) == 2);
    close(c);
    close(s);
    c = dial(AF_INET6, "::ffff:127.0.0.1", port_of(l));
    check("dual stack: an AF_INET6 client to ::ffff:127.0.0.1", c >= 0);
    s = accept(l, NULL, NULL);
    close(c);
    close(s);
    close(l);

    // With IPV6_V6ONLY it takes none. The port is held for IPv4 by a bound, non-listening
    // AF_INET socket, so that no other listener can answer there.
    int hold = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in lo = v4("127.0.0.1", 0);
    bind(hold, (struct sockaddr *)&lo, sizeof lo);
    l = socket(AF_INET6, SOCK_STREAM, 0);
    set_int(l, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    any.sin6_port = htons(port_of(hold));
    check("IPV6_V6ONLY listener on :: at a port an AF_INET socket has bound", bind(l, (struct sockaddr *)&any, sizeof any) == 0 && listen(l, 4) == 0);
    errno = 0;
    check("IPV6_V6ONLY: the AF_INET connect is ECONNREFUSED", dial(AF_INET, "127.0.0.1", port_of(l)) == -1 && errno == ECONNREFUSED);
    c = dial(AF_INET6, "::1", port_of(l));
    check("IPV6_V6ONLY: ::1 connects", c >= 0);
    close(c);
    c = socket(AF_INET6, SOCK_STREAM, 0);
    set_int(c, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    struct sockaddr_in6 mapped = v6("::ffff:127.0.0.1", port_of(l));
    errno = 0;
    check("IPV6_V6ONLY socket connecting to ::ffff:127.0.0.1 is ENETUNREACH", connect(c, (struct sockaddr *)&mapped, sizeof mapped) == -1 && errno == ENETUNREACH);
    close(c);
    close(l);
    close(hold);
}

// Connecting to the unspecified address reaches the loopback address.
static void unspecified(void) {
    int l = listener(AF_INET, "127.0.0.1");
    int c = dial(AF_INET, "0.0.0.0", port_of(l));
    check("connect to 0.0.0.0 reaches a listener on 127.0.0.1", c >= 0);
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    getpeername(c, (struct sockaddr *)&a, &len);
    printf("connect to 0.0.0.0: the peer is %s\n", host_of(&a));
    len = sizeof a;
    getsockname(c, (struct sockaddr *)&a, &len);
    printf("connect to 0.0.0.0: the name is %s\n", host_of(&a));
    close(c);
    close(l);
    l = listener(AF_INET6, "::1");
    c = dial(AF_INET6, "::", port_of(l));
    check("connect to :: reaches a listener on ::1", c >= 0);
    len = sizeof a;
    getpeername(c, (struct sockaddr *)&a, &len);
    printf("connect to ::: the peer is %s\n", host_of(&a));
    close(c);
    close(l);
}

/* TCP_INFO: the state of a listener, a connection, and one whose peer closed. */
static void info(void) {
    int l = listener(AF_INET, "127.0.0.1");
    int c = dial(AF_INET, "127.0.0.1", port_of(l));
    int s = accept(l, NULL, NULL);
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    check("TCP_INFO of a listener: LISTEN", getsockopt(l, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state == TCP_LISTEN);
    len = sizeof ti;
    check("TCP_INFO of a connection: ESTABLISHED, at least 104 bytes",
          getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state == TCP_ESTABLISHED && len >= 104);
    check("with a segment size and a window", ti.tcpi_snd_mss > 0 && ti.tcpi_snd_cwnd > 0);
    close(s);
    char x;
    read(c, &x, 1);
    len = sizeof ti;
    check("after the peer closed: CLOSE_WAIT", getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state == TCP_CLOSE_WAIT);
    close(c);
    close(l);
}

int main(void) {
    // Line by line, so that a run that hangs shows how far it got before the alarm ends it.
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(30);
    struct sigaction sa = {.sa_handler = on_sigpipe};
    sigaction(SIGPIPE, &sa, NULL);
    names_and_ports();
    reuse();
    connect_accept(AF_INET, "127.0.0.1");
    bulk();
    endings();
    nonblocking();
    options();
    data();
    ipv6();
    unspecified();
    info();
    printf("%d failures\n", failures);
    return failures != 0;
}
