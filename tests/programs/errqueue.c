// The socket error queue of loopback UDP (ip(7) IP_RECVERR, ipv6(7)
// IPV6_RECVERR): a datagram to a port nobody has brings back ICMP port
// unreachable, which a socket with the option queues (connected or not) and
// reads with recvmsg(MSG_ERRQUEUE): the datagram's payload, the address it
// went to, and a sock_extended_err with the offender. SO_ERROR, poll's
// POLLERR, and what the next send and recv return, with the option on and
// off, connected and not. Prints only what is the same natively and in the
// sandbox (no port numbers).
#define _GNU_SOURCE
#include <errno.h>
#include <time.h>
#include <linux/errqueue.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "inet.h"

#ifndef IP_RECVERR_RFC4884
#define IP_RECVERR_RFC4884 26
#endif
#ifndef IPV6_RECVERR_RFC4884
#define IPV6_RECVERR_RFC4884 31
#endif

union addr {
    struct sockaddr_storage ss;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

static int port_of(const union addr *a) {
    return ntohs(a->ss.ss_family == AF_INET ? a->in.sin_port : a->in6.sin6_port);
}

// `ip` with a port nobody has: one just bound and closed.
static union addr unused(int family, const char *ip) {
    union addr a = {0};
    if (strchr(ip, ':')) a.in6 = v6(ip, 0); else a.in = v4(ip, 0);
    int fd = socket(family, SOCK_DGRAM, 0);
    socklen_t len = family == AF_INET ? sizeof a.in : sizeof a.in6;
    if (bind(fd, (struct sockaddr *)&a, len) != 0) printf("bind %s: %s\n", ip, errname(errno));
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return a;
}

static void so_error(const char *what, int fd) {
    printf("  %s: SO_ERROR %s, poll %s\n", what, errname(int_opt(fd, SOL_SOCKET, SO_ERROR)), poll_names(wait_for(fd, POLLIN | POLLOUT, 0)));
}

static void poll_only(const char *what, int fd) {
    printf("  %s: poll %s\n", what, poll_names(wait_for(fd, POLLIN | POLLOUT, 0)));
}

// The three ways to read the error queue, on an empty one.
static void empty(const char *what, int fd) {
    char buf[16];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    errno = 0;
    ssize_t a = recvmsg(fd, &m, MSG_ERRQUEUE);
    int ea = errno;
    errno = 0;
    ssize_t b = recv(fd, buf, sizeof buf, MSG_ERRQUEUE);
    int eb = errno;
    union addr from;
    socklen_t len = sizeof from;
    errno = 0;
    ssize_t c = recvfrom(fd, buf, sizeof buf, MSG_ERRQUEUE | MSG_DONTWAIT, (struct sockaddr *)&from, &len);
    printf("  %s: recvmsg %zd %s, recv %zd %s, recvfrom %zd %s\n", what, a, errname(ea), b, errname(eb), c, errname(errno));
}

static const char *offender(const struct sock_extended_err *e, size_t room) {
    static char buf[128];
    const struct sockaddr *o = SO_EE_OFFENDER(e);
    union addr a = {0};
    size_t len = room - sizeof *e;
    memcpy(&a, o, len < sizeof a ? len : sizeof a);
    if (a.ss.ss_family == AF_INET6)
        snprintf(buf, sizeof buf, "inet6 %s port %d flowinfo %u scope %u", host_of(&a.ss), port_of(&a), a.in6.sin6_flowinfo, a.in6.sin6_scope_id);
    else if (a.ss.ss_family == AF_INET)
        snprintf(buf, sizeof buf, "inet %s port %d zero %s", host_of(&a.ss), port_of(&a), memcmp(a.in.sin_zero, "\0\0\0\0\0\0\0\0", 8) ? "no" : "yes");
    else
        snprintf(buf, sizeof buf, "family %d", a.ss.ss_family);
    return buf;
}

// Reads one queued error into `room` bytes and prints all of it; `dest` is
// where the datagram went, `sent` its payload.
static void read_error(const char *what, int fd, size_t room, const union addr *dest, const char *sent, size_t sent_len) {
    char data[4096], control[256];
    union addr name;
    memset(&name, 0xee, sizeof name);
    memset(data, 0, sizeof data);
    struct iovec iov = {data, room};
    struct msghdr m = {.msg_name = &name, .msg_namelen = sizeof name, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    ssize_t n = recvmsg(fd, &m, MSG_ERRQUEUE | MSG_TRUNC);
    if (n < 0) {
        printf("  %s: recvmsg(MSG_ERRQUEUE) %s\n", what, errname(errno));
        return;
    }
    printf("  %s: %zd bytes, the payload's: %s, flags %#x, controllen %zu\n", what, n, memcmp(data, sent, (size_t)n < sent_len ? (size_t)n : sent_len) == 0 ? "yes" : "no", m.msg_flags, (size_t)m.msg_controllen);
    printf("    name: family %d len %u %s, the destination's port: %s", name.ss.ss_family, m.msg_namelen, host_of(&name.ss), port_of(&name) == port_of(dest) ? "yes" : "no");
    if (name.ss.ss_family == AF_INET6) printf(", flowinfo %u scope %u", name.in6.sin6_flowinfo, name.in6.sin6_scope_id);
    if (name.ss.ss_family == AF_INET) printf(", zero %s", memcmp(name.in.sin_zero, "\0\0\0\0\0\0\0\0", 8) ? "no" : "yes");
    printf("\n");
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        size_t len = c->cmsg_len - CMSG_LEN(0);
        printf("    cmsg level %d type %d len %zu\n", c->cmsg_level, c->cmsg_type, len);
        if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) || (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
            struct sock_extended_err *e = (struct sock_extended_err *)CMSG_DATA(c);
            printf("      ee_errno %s origin %d type %d code %d pad %d info %u data %u\n", errname(e->ee_errno), e->ee_origin, e->ee_type, e->ee_code, e->ee_pad, e->ee_info, e->ee_data);
            printf("      offender %s\n", offender(e, len));
        }
    }
}

static void sent(const char *what, ssize_t r) {
    printf("  %s: %zd %s\n", what, r, r < 0 ? errname(errno) : "0");
}

// A datagram (`len` bytes of `payload`) from a socket of `family` to a port
// nobody has at `ip`, connected or not, with the error option on or off.
static void scenario(int family, const char *ip, int connected, int recverr) {
    static char payload[2000];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (char)('a' + i % 26);
    int fam6 = family == AF_INET6;
    int dest6 = strchr(ip, ':') && !strstr(ip, "ffff");
    printf("%s socket to %s, %s, %s %s\n", fam6 ? "v6" : "v4", ip, connected ? "connected" : "unconnected", dest6 ? "IPV6_RECVERR" : "IP_RECVERR", recverr ? "on" : "off");
    int level = dest6 ? IPPROTO_IPV6 : IPPROTO_IP, name = dest6 ? IPV6_RECVERR : IP_RECVERR;
    int fd = socket(family, SOCK_DGRAM, 0);
    int mapped = strstr(ip, "ffff") != NULL;
    union addr dest = unused(dest6 ? AF_INET6 : AF_INET, mapped ? "127.0.0.1" : ip);
    if (mapped) {
        int port = port_of(&dest);
        dest.in6 = v6(ip, port);
    }
    socklen_t dlen = fam6 ? sizeof dest.in6 : sizeof dest.in;
    if (recverr && set_int(fd, level, name, 1) != 0) printf("  setsockopt: %s\n", errname(errno));
    printf("  option reads %d\n", int_opt(fd, level, name));
    empty("before", fd);
    if (connected && connect(fd, (struct sockaddr *)&dest, dlen) != 0) printf("  connect: %s\n", errname(errno));
    sent("send", connected ? send(fd, payload, 5, 0) : sendto(fd, payload, 5, 0, (struct sockaddr *)&dest, dlen));
    int expect = connected || recverr;
    printf("  waiting for POLLERR: %s\n", poll_names(wait_for(fd, 0, expect ? 2000 : 200)));
    so_error("after the send", fd);
    if (recverr) {
        read_error("cut to 3", fd, 3, &dest, payload, 5);
        so_error("after reading it", fd);
        empty("then", fd);
    } else {
        empty("without the option", fd);
    }
    // Two more errors; a send between them meets the first's pending error.
    sent("send 2000 bytes", connected ? send(fd, payload, sizeof payload, 0) : sendto(fd, payload, sizeof payload, 0, (struct sockaddr *)&dest, dlen));
    wait_for(fd, 0, expect ? 2000 : 200);
    usleep(50000);
    sent("send meeting it", connected ? send(fd, payload, 7, 0) : sendto(fd, payload, 7, 0, (struct sockaddr *)&dest, dlen));
    sent("send again", connected ? send(fd, payload, 9, 0) : sendto(fd, payload, 9, 0, (struct sockaddr *)&dest, dlen));
    wait_for(fd, 0, expect ? 2000 : 200);
    usleep(50000);
    poll_only("two sent", fd);
    char buf[16];
    sent("recv", recv(fd, buf, sizeof buf, MSG_DONTWAIT));
    if (recverr) {
        read_error("first", fd, sizeof payload, &dest, payload, sizeof payload);
        so_error("after the first", fd);
        read_error("second", fd, sizeof payload, &dest, payload, 9);
        so_error("after the second", fd);
        // Turning the option off empties the queue.
        sent("send once more", connected ? send(fd, payload, 5, 0) : sendto(fd, payload, 5, 0, (struct sockaddr *)&dest, dlen));
        wait_for(fd, 0, 2000);
        usleep(50000);
        so_error("queued again", fd);
        set_int(fd, level, name, 0);
        poll_only("option off", fd);
        empty("option off", fd);
    } else {
        sent("recv", recv(fd, buf, sizeof buf, MSG_DONTWAIT));
    }
    close(fd);
}

// The RFC 4884 options take 0 or 1 (the sandbox makes no extensions to read).
static void rfc4884(const char *what, int family, int level, int name) {
    int fd = socket(family, SOCK_DGRAM, 0);
    int r = set_int(fd, level, name, 1);
    int v = int_opt(fd, level, name);
    printf("%s 1: %d, reads %d", what, r, v);
    r = set_int(fd, level, name, 2);
    printf("; 2: %s\n", r ? errname(errno) : "0");
    close(fd);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    rfc4884("v4 IP_RECVERR_RFC4884", AF_INET, IPPROTO_IP, IP_RECVERR_RFC4884);
    rfc4884("v6 IPV6_RECVERR_RFC4884", AF_INET6, IPPROTO_IPV6, IPV6_RECVERR_RFC4884);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    set_int(fd, IPPROTO_IP, IP_RECVERR, 5);
    printf("v4 IP_RECVERR 5 reads %d\n", int_opt(fd, IPPROTO_IP, IP_RECVERR));
    close(fd);
    for (int connected = 0; connected < 2; connected++)
        for (int recverr = 0; recverr < 2; recverr++) {
            scenario(AF_INET, "127.0.0.1", connected, recverr);
            scenario(AF_INET6, "::1", connected, recverr);
        }
    scenario(AF_INET, "127.0.0.3", 0, 1);
    scenario(AF_INET6, "::ffff:127.0.0.1", 1, 1);
    return 0;
}
