// IP-level control messages on loopback UDP (ip(7), ipv6(7), RFC 3542): what
// a receiver learns of each datagram (IP_PKTINFO, IP_RECVTTL, IP_RECVTOS,
// IP_RECVORIGDSTADDR; IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT, IPV6_RECVTCLASS,
// IPV6_RECVORIGDSTADDR; a v4 datagram on a dual-stack socket), what a sender
// sets for one datagram (IP_PKTINFO's source, IP_TTL, IP_TOS; IPV6_PKTINFO,
// IPV6_HOPLIMIT, IPV6_TCLASS), the socket options' ranges, and the errors;
// and the SOL_SOCKET stamps SO_TIMESTAMP and its kin ask for. Prints only what
// is the same natively and in the sandbox (no port numbers, no times).
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "inet.h"

static int port_of(int fd) {
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    return a.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&a)->sin_port) : ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
}

static void on(int fd, int level, int name) {
    int one = 1;
    if (setsockopt(fd, level, name, &one, sizeof one) != 0) printf("setsockopt %d/%d: %s\n", level, name, errname(errno));
}

// Receives one datagram and prints its sender's address and its control messages.
static void show(const char *what, int fd, int client_port) {
    char data[64], control[512];
    struct sockaddr_storage from;
    struct iovec iov = {data, sizeof data};
    struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    if (!wait_for(fd, POLLIN, 5000)) {
        printf("%s: nothing arrived\n", what);
        return;
    }
    ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT);
    if (n < 0) {
        printf("%s: recvmsg %s\n", what, errname(errno));
        return;
    }
    int port = from.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&from)->sin_port) : ntohs(((struct sockaddr_in6 *)&from)->sin6_port);
    printf("%s: %zd bytes from %s, the client's port: %s, flags %#x\n", what, n, host_of(&from), port == client_port ? "yes" : "no", m.msg_flags);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        unsigned char *d = CMSG_DATA(c);
        size_t len = c->cmsg_len - CMSG_LEN(0);
        char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo p;
            memcpy(&p, d, sizeof p);
            inet_ntop(AF_INET, &p.ipi_spec_dst, a, sizeof a);
            inet_ntop(AF_INET, &p.ipi_addr, b, sizeof b);
            printf("  IP_PKTINFO ifindex %d spec_dst %s addr %s (len %zu)\n", p.ipi_ifindex, a, b, len);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo p;
            memcpy(&p, d, sizeof p);
            inet_ntop(AF_INET6, &p.ipi6_addr, a, sizeof a);
            printf("  IPV6_PKTINFO ifindex %d addr %s (len %zu)\n", p.ipi6_ifindex, a, len);
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) {
            printf("  IP_TOS %#x (len %zu)\n", d[0], len);
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_ORIGDSTADDR) {
            struct sockaddr_in s;
            memcpy(&s, d, sizeof s);
            printf("  IP_ORIGDSTADDR %s, the server's port: %s (len %zu)\n", host_of((struct sockaddr_storage *)&s), ntohs(s.sin_port) == port_of(fd) ? "yes" : "no", len);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_ORIGDSTADDR) {
            struct sockaddr_in6 s;
            memcpy(&s, d, sizeof s);
            printf("  IPV6_ORIGDSTADDR %s, the server's port: %s (len %zu)\n", host_of((struct sockaddr_storage *)&s), ntohs(s.sin6_port) == port_of(fd) ? "yes" : "no", len);
        } else if (c->cmsg_level == SOL_SOCKET) {
            long long t[2];
            memcpy(t, d, sizeof t);
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            double at = t[0] + t[1] / (c->cmsg_type == 35 || c->cmsg_type == 64 ? 1e9 : 1e6);
            double off = now.tv_sec + now.tv_nsec / 1e9 - at;
            printf("  SOL_SOCKET type %d (len %zu), within 10 s before now: %s\n", c->cmsg_type, len, off >= 0 && off < 10 ? "yes" : "no");
        } else {
            int v = 0;
            memcpy(&v, d, len < sizeof v ? len : sizeof v);
            printf("  level %d type %d value %d (len %zu)\n", c->cmsg_level, c->cmsg_type, v, len);
        }
    }
}

// sendmsg with one control message of `len` bytes; prints the error if any.
static int send_with(int fd, const void *to, socklen_t tolen, int level, int type, const void *value, size_t len) {
    char control[CMSG_SPACE(64)] = {0};
    struct iovec iov = {"x", 1};
    struct msghdr m = {.msg_name = (void *)to, .msg_namelen = tolen, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = CMSG_SPACE(len)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(len);
    memcpy(CMSG_DATA(c), value, len);
    return sendmsg(fd, &m, 0) == 1 ? 0 : errno;
}

static void option(int fd, int level, int name, int value, const char *what) {
    int r = setsockopt(fd, level, name, &value, sizeof value);
    int e = errno, got = -99;
    socklen_t len = sizeof got;
    getsockopt(fd, level, name, &got, &len);
    printf("%s = %d: %s, reads %d\n", what, value, r == 0 ? "0" : errname(e), got);
}

// The four SO_TIMESTAMP options read back.
static void stamps(int fd) {
    int names[] = {29, 35, 63, 64}; // SO_TIMESTAMP, SO_TIMESTAMPNS, and their _NEW
    printf("reads back:");
    for (int i = 0; i < 4; i++) {
        int v = -1;
        socklen_t len = sizeof v;
        getsockopt(fd, SOL_SOCKET, names[i], &v, &len);
        printf(" %d=%d", names[i], v);
    }
    printf("\n");
}

// SO_TIMESTAMP and its kin: which stamp each asks for, and what reads back.
static void timestamps(int server, int client, struct sockaddr_in *to) {
    int names[] = {29, 35, 63, 64};
    for (int i = 0; i < 4; i++) {
        char what[32];
        snprintf(what, sizeof what, "SOL_SOCKET %d", names[i]);
        option(server, SOL_SOCKET, names[i], 1, what);
        stamps(server);
        sendto(client, "t", 1, 0, (struct sockaddr *)to, sizeof *to);
        show(what, server, port_of(client));
    }
    option(server, SOL_SOCKET, 29, 0, "SO_TIMESTAMP off");
    stamps(server);
    sendto(client, "t", 1, 0, (struct sockaddr *)to, sizeof *to);
    show("stamps off", server, port_of(client));
}

static void ipv4(void) {
    int server = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = v4("0.0.0.0", 0);
    bind(server, (struct sockaddr *)&any, sizeof any);
    on(server, IPPROTO_IP, IP_PKTINFO);
    on(server, IPPROTO_IP, IP_RECVTTL);
    on(server, IPPROTO_IP, IP_RECVTOS);
    on(server, IPPROTO_IP, IP_RECVORIGDSTADDR);
    int client = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in me = v4("0.0.0.0", 0);
    bind(client, (struct sockaddr *)&me, sizeof me);
    int cport = port_of(client);
    struct sockaddr_in to = v4("127.0.0.1", port_of(server)), to5 = v4("127.0.0.5", port_of(server));

    sendto(client, "plain", 5, 0, (struct sockaddr *)&to, sizeof to);
    show("v4 plain", server, cport);
    option(client, IPPROTO_IP, IP_TTL, 33, "IP_TTL");
    option(client, IPPROTO_IP, IP_TOS, 0x10, "IP_TOS");
    sendto(client, "options", 7, 0, (struct sockaddr *)&to5, sizeof to5);
    show("v4 to 127.0.0.5 with TTL 33, TOS 0x10", server, cport);

    int ttl = 7, tos = 0x28;
    unsigned char tos_byte = 0x04;
    printf("cmsg IP_TTL 7: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl)));
    show("v4 cmsg TTL", server, cport);
    printf("cmsg IP_TOS int: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IP, IP_TOS, &tos, sizeof tos)));
    show("v4 cmsg TOS int", server, cport);
    printf("cmsg IP_TOS byte: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IP, IP_TOS, &tos_byte, 1)));
    show("v4 cmsg TOS byte", server, cport);
    struct in_pktinfo p = {0};
    inet_pton(AF_INET, "127.0.0.7", &p.ipi_spec_dst);
    printf("cmsg IP_PKTINFO from 127.0.0.7: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IP, IP_PKTINFO, &p, sizeof p)));
    show("v4 cmsg source", server, cport);
    p.ipi_ifindex = 1;
    printf("cmsg IP_PKTINFO ifindex 1: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IP, IP_PKTINFO, &p, sizeof p)));
    show("v4 cmsg source on lo", server, cport);

    int zero = 0, big = 256, odd = 99;
    printf("cmsg IP_TTL 0: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IP, IP_TTL, &zero, sizeof zero)));
    printf("cmsg IP_TTL 256: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IP, IP_TTL, &big, sizeof big)));
    printf("cmsg IP_TTL short: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IP, IP_TTL, &ttl, 2)));
    printf("cmsg IP_PKTINFO short: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IP, IP_PKTINFO, &p, 8)));
    printf("cmsg SOL_IP type 99: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IP, 99, &odd, sizeof odd)));
    printf("cmsg SOL_IPV6 on AF_INET: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IPV6, IPV6_HOPLIMIT, &big, sizeof big)));
    show("v4 after a skipped SOL_IPV6 message", server, cport);
    inet_pton(AF_INET, "192.0.2.1", &p.ipi_spec_dst);
    printf("cmsg IP_PKTINFO from 192.0.2.1: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IP, IP_PKTINFO, &p, sizeof p)));
    inet_pton(AF_INET, "127.0.0.7", &p.ipi_spec_dst);
    p.ipi_ifindex = 999;
    printf("cmsg IP_PKTINFO ifindex 999: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IP, IP_PKTINFO, &p, sizeof p)));

    timestamps(server, client, &to);
    option(client, IPPROTO_IP, IP_TTL, -1, "IP_TTL");
    option(client, IPPROTO_IP, IP_TTL, 0, "IP_TTL");
    option(client, IPPROTO_IP, IP_TTL, 256, "IP_TTL");
    option(client, IPPROTO_IP, IP_TOS, 0x1ff, "IP_TOS");
    close(client);
    close(server);
}

static void ipv6(void) {
    int server = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 any = v6("::", 0);
    bind(server, (struct sockaddr *)&any, sizeof any);
    on(server, IPPROTO_IPV6, IPV6_RECVPKTINFO);
    on(server, IPPROTO_IPV6, IPV6_RECVHOPLIMIT);
    on(server, IPPROTO_IPV6, IPV6_RECVTCLASS);
    on(server, IPPROTO_IPV6, IPV6_RECVORIGDSTADDR);
    int client = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 me = v6("::", 0);
    bind(client, (struct sockaddr *)&me, sizeof me);
    int cport = port_of(client);
    struct sockaddr_in6 to = v6("::1", port_of(server));

    sendto(client, "plain", 5, 0, (struct sockaddr *)&to, sizeof to);
    show("v6 plain", server, cport);
    option(client, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 9, "IPV6_UNICAST_HOPS");
    option(client, IPPROTO_IPV6, IPV6_TCLASS, 0x20, "IPV6_TCLASS");
    sendto(client, "options", 7, 0, (struct sockaddr *)&to, sizeof to);
    show("v6 with hops 9, class 0x20", server, cport);

    int hops = 5, class = 4, minus = -1, big = 256;
    printf("cmsg IPV6_HOPLIMIT 5: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IPV6, IPV6_HOPLIMIT, &hops, sizeof hops)));
    show("v6 cmsg hop limit", server, cport);
    printf("cmsg IPV6_TCLASS 4: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IPV6, IPV6_TCLASS, &class, sizeof class)));
    show("v6 cmsg class", server, cport);
    printf("cmsg IPV6_HOPLIMIT -1: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IPV6, IPV6_HOPLIMIT, &minus, sizeof minus)));
    show("v6 cmsg default hop limit", server, cport);
    struct in6_pktinfo p = {.ipi6_ifindex = 1};
    inet_pton(AF_INET6, "::1", &p.ipi6_addr);
    printf("cmsg IPV6_PKTINFO ::1 on 1: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IPV6, IPV6_PKTINFO, &p, sizeof p)));
    show("v6 cmsg source", server, cport);

    printf("cmsg IPV6_HOPLIMIT 256: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IPV6, IPV6_HOPLIMIT, &big, sizeof big)));
    printf("cmsg IPV6_TCLASS short: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IPV6, IPV6_TCLASS, &class, 2)));
    printf("cmsg IPV6_PKTINFO short: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IPV6, IPV6_PKTINFO, &p, 16)));
    printf("cmsg SOL_IP on AF_INET6: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IP, IP_TTL, &big, sizeof big)));
    show("v6 after a skipped SOL_IP message", server, cport);
    inet_pton(AF_INET6, "2001:db8::1", &p.ipi6_addr);
    printf("cmsg IPV6_PKTINFO from 2001:db8::1: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IPV6, IPV6_PKTINFO, &p, sizeof p)));
    inet_pton(AF_INET6, "::1", &p.ipi6_addr);
    p.ipi6_ifindex = 999;
    printf("cmsg IPV6_PKTINFO ifindex 999: %s\n", errname(send_with(client, &to, sizeof to, IPPROTO_IPV6, IPV6_PKTINFO, &p, sizeof p)));

    option(client, IPPROTO_IPV6, IPV6_UNICAST_HOPS, -1, "IPV6_UNICAST_HOPS");
    option(client, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 256, "IPV6_UNICAST_HOPS");
    option(client, IPPROTO_IPV6, IPV6_TCLASS, -1, "IPV6_TCLASS");
    option(client, IPPROTO_IPV6, IPV6_TCLASS, -2, "IPV6_TCLASS");

    // An IPv4 datagram on the dual-stack server: IPV6_PKTINFO with the v4-mapped
    // address, then the IPv4 messages it asked for; not the IPv6 ones.
    on(server, IPPROTO_IP, IP_PKTINFO);
    on(server, IPPROTO_IP, IP_RECVTTL);
    int v4client = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to4 = v4("127.0.0.1", port_of(server));
    sendto(v4client, "v4", 2, 0, (struct sockaddr *)&to4, sizeof to4);
    show("v4 on the dual-stack server", server, port_of(v4client));
    close(v4client);
    close(client);
    close(server);
}

int main(void) {
    ipv4();
    ipv6();
    return 0;
}
