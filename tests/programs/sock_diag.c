// NETLINK_SOCK_DIAG (sock_diag(7)), what `ss` reads: the program opens TCP
// listeners and connections, UDP sockets and AF_UNIX sockets of every type,
// dumps them through SOCK_DIAG_BY_FAMILY (inet_diag_req_v2, unix_diag_req),
// asks for single sockets, and sends bad requests. A native run sees every
// socket of the host's namespace, so only the program's own sockets (found by
// inode, as `ss -p` finds them) are printed, each under a label, in a fixed
// order: states, families, which ports and peers, queue lengths, unix names
// relative to the program's directory. No inode, port or cookie is printed.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/rtnetlink.h>
#include <linux/unix_diag.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "check.h"
#include "inet.h"

#define MAX_SOCKS 32

struct sock {
    const char *label;
    int fd;
    unsigned ino;
    int family, type;
    int port;      // its own port (inet)
    int peer_port; // its peer's port (inet), 0 if none
};

static struct sock socks[MAX_SOCKS];
static int nsocks;
static char dir[64];

static unsigned inode_of(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (unsigned)st.st_ino : 0;
}

static int port_of(int fd, int peer) {
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a, &len) != 0) return 0;
    return a.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&a)->sin_port) : ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
}

static void add(const char *label, int fd, int family, int type) {
    struct sock *s = &socks[nsocks++];
    *s = (struct sock){label, fd, inode_of(fd), family, type, 0, 0};
    if (family != AF_UNIX) {
        s->port = port_of(fd, 0);
        s->peer_port = port_of(fd, 1);
    }
}

static int tcp_listener4(const char *ip, int port, int backlog) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = v4(ip, port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, backlog) != 0) printf("tcp4 listener: %s\n", errname(errno));
    return fd;
}

static int tcp_listener6(const char *ip, int port, int backlog, int v6only) {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only);
    struct sockaddr_in6 a = v6(ip, port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, backlog) != 0) printf("tcp6 listener: %s\n", errname(errno));
    return fd;
}

static int tcp_connect4(const char *ip, int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = v4(ip, port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) printf("tcp4 connect: %s\n", errname(errno));
    return fd;
}

static int tcp_connect6(const char *ip, int port) {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = v6(ip, port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) printf("tcp6 connect: %s\n", errname(errno));
    return fd;
}

static int udp_bound4(const char *ip, int port) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = v4(ip, port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) printf("udp4 bind: %s\n", errname(errno));
    return fd;
}

static int udp_bound6(const char *ip, int port) {
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a = v6(ip, port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) printf("udp6 bind: %s\n", errname(errno));
    return fd;
}

static struct sock *by_inode(unsigned ino) {
    for (int i = 0; i < nsocks; i++)
        if (socks[i].ino == ino) return &socks[i];
    return NULL;
}

// The label of the socket with port `port` of family `family` and type `type`, or "?".
static const char *by_port(int family, int type, int port) {
    for (int i = 0; i < nsocks; i++)
        if (socks[i].family == family && socks[i].type == type && socks[i].port == port) return socks[i].label;
    return "?";
}

// What a dump said of each of our sockets, by index into socks.
static char seen[MAX_SOCKS][256];

static int diag_socket(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) {
        printf("socket(NETLINK_SOCK_DIAG): %s\n", errname(errno));
        exit(1);
    }
    return fd;
}

static void send_request(int fd, int type, int flags, const void *body, size_t len) {
    struct {
        struct nlmsghdr h;
        char body[128];
    } req = {0};
    req.h.nlmsg_len = NLMSG_LENGTH(len);
    req.h.nlmsg_type = type;
    req.h.nlmsg_flags = NLM_F_REQUEST | flags;
    req.h.nlmsg_seq = 42;
    memcpy(req.body, body, len);
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (sendto(fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) printf("sendto: %s\n", errname(errno));
}

typedef void (*on_message)(struct nlmsghdr *h);

// Reads replies until NLMSG_DONE or NLMSG_ERROR (or one message when `single`);
// returns the error they carry (0, or an errno).
static int receive(int fd, on_message each, int single) {
    static char buf[1 << 16];
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) != 1) return ETIMEDOUT;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) return errno;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != 42) continue;
            if (h->nlmsg_type == NLMSG_DONE) return h->nlmsg_len >= NLMSG_LENGTH(4) ? -*(int *)NLMSG_DATA(h) : 0;
            if (h->nlmsg_type == NLMSG_ERROR) return -((struct nlmsgerr *)NLMSG_DATA(h))->error;
            if (each) each(h);
            if (single) return 0;
        }
    }
}

static const char *state_name(int st) {
    static const char *names[] = {"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"};
    return st > 0 && st < 12 ? names[st] : "?";
}

static void on_inet(struct nlmsghdr *h) {
    struct inet_diag_msg *m = NLMSG_DATA(h);
    struct sock *s = by_inode(m->idiag_inode);
    if (!s) return;
    char *out = seen[s - socks];
    int sport = ntohs(m->id.idiag_sport), dport = ntohs(m->id.idiag_dport);
    char addr[INET6_ADDRSTRLEN];
    inet_ntop(m->idiag_family, m->id.idiag_src, addr, sizeof addr);
    int n = snprintf(out, 256, "%s %s %s port %s peer %s uid %s", m->idiag_family == AF_INET ? "inet" : "inet6", state_name(m->idiag_state), addr,
                     sport == s->port ? "own" : "wrong", dport == 0 ? "none" : by_port(m->idiag_family, s->type, dport), m->idiag_uid == geteuid() ? "mine" : "other");
    if (s->type == SOCK_STREAM)
        n += snprintf(out + n, 256 - n, " rqueue %u wqueue %u", m->idiag_rqueue, m->idiag_state == TCP_LISTEN ? m->idiag_wqueue : 0);
    else
        n += snprintf(out + n, 256 - n, " rqueue %s", m->idiag_rqueue ? "some" : "0");
    struct rtattr *a = (struct rtattr *)((char *)m + NLMSG_ALIGN(sizeof *m));
    int left = h->nlmsg_len - NLMSG_LENGTH(sizeof *m);
    for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
        if (a->rta_type == INET_DIAG_SKV6ONLY) n += snprintf(out + n, 256 - n, " v6only %d", *(unsigned char *)RTA_DATA(a));
        if (a->rta_type == INET_DIAG_INFO) {
            struct tcp_info *ti = RTA_DATA(a);
            n += snprintf(out + n, 256 - n, " info state %s", state_name(ti->tcpi_state));
        }
    }
}

static const char *unix_type(int t) {
    return t == SOCK_STREAM ? "stream" : t == SOCK_DGRAM ? "dgram" : t == SOCK_SEQPACKET ? "seqpacket" : "?";
}

static void on_unix(struct nlmsghdr *h) {
    struct unix_diag_msg *m = NLMSG_DATA(h);
    struct sock *s = by_inode(m->udiag_ino);
    if (!s) return;
    char *out = seen[s - socks];
    int n = snprintf(out, 256, "unix %s %s", unix_type(m->udiag_type), state_name(m->udiag_state));
    struct rtattr *a = (struct rtattr *)((char *)m + NLMSG_ALIGN(sizeof *m));
    int left = h->nlmsg_len - NLMSG_LENGTH(sizeof *m);
    for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
        char *v = RTA_DATA(a);
        int len = RTA_PAYLOAD(a);
        if (a->rta_type == UNIX_DIAG_NAME) {
            if (len > 0 && v[0] == 0) {
                n += snprintf(out + n, 256 - n, " name @%.*s", len - 1 > 3 ? 3 : len - 1, v + 1);
            } else {
                size_t d = strlen(dir);
                int path = strnlen(v, len);
                n += snprintf(out + n, 256 - n, " name %s%.*s (nul %s)", strncmp(v, dir, d) == 0 ? "DIR" : "", path - (int)d, v + d, path < len ? "yes" : "no");
            }
        }
        if (a->rta_type == UNIX_DIAG_PEER) {
            struct sock *p = by_inode(*(unsigned *)v);
            n += snprintf(out + n, 256 - n, " peer %s", p ? p->label : "?");
        }
        if (a->rta_type == UNIX_DIAG_RQLEN) {
            struct unix_diag_rqlen *q = (void *)v;
            n += snprintf(out + n, 256 - n, " rqueue %u", q->udiag_rqueue);
            if (m->udiag_state == TCP_LISTEN) n += snprintf(out + n, 256 - n, " backlog %u", q->udiag_wqueue);
            // What its datagrams unread cost: more than their bytes, with
            // their sk_buffs' overhead.
            else if (m->udiag_type == SOCK_DGRAM) n += snprintf(out + n, 256 - n, " wqueue %s", q->udiag_wqueue > 6 ? "some" : "0");
        }
        if (a->rta_type == UNIX_DIAG_ICONS) n += snprintf(out + n, 256 - n, " waiting %d", len / 4);
    }
}

static void dump_inet(int family, int protocol, unsigned states, int ext) {
    int fd = diag_socket();
    struct inet_diag_req_v2 r = {.sdiag_family = family, .sdiag_protocol = protocol, .idiag_ext = ext, .idiag_states = states};
    send_request(fd, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &r, sizeof r);
    int e = receive(fd, on_inet, 0);
    if (e) printf("dump %d/%d: %s\n", family, protocol, errname(e));
    close(fd);
}

static void dump_unix(unsigned states, unsigned show) {
    int fd = diag_socket();
    struct unix_diag_req r = {.sdiag_family = AF_UNIX, .udiag_states = states, .udiag_show = show};
    send_request(fd, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &r, sizeof r);
    int e = receive(fd, on_unix, 0);
    if (e) printf("unix dump: %s\n", errname(e));
    close(fd);
}

// Prints what the dumps since the last call said of each socket.
static void report(const char *what) {
    printf("%s:\n", what);
    for (int i = 0; i < nsocks; i++) {
        if (seen[i][0]) printf("  %s: %s\n", socks[i].label, seen[i]);
        seen[i][0] = 0;
    }
}

static void unix_path(struct sockaddr_un *a, const char *name) {
    *a = (struct sockaddr_un){.sun_family = AF_UNIX};
    snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", dir, name);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    snprintf(dir, sizeof dir, "/tmp/sock_diag.XXXXXX");
    if (!mkdtemp(dir)) return 1;

    // TCP: a listener with one connection accepted and one waiting.
    int l4 = tcp_listener4("127.0.0.1", 0, 7);
    add("tcp4 listener", l4, AF_INET, SOCK_STREAM);
    int c4 = tcp_connect4("127.0.0.1", port_of(l4, 0));
    int a4 = accept(l4, NULL, NULL);
    int w4 = tcp_connect4("127.0.0.1", port_of(l4, 0));
    add("tcp4 client", c4, AF_INET, SOCK_STREAM);
    add("tcp4 accepted", a4, AF_INET, SOCK_STREAM);
    add("tcp4 waiting client", w4, AF_INET, SOCK_STREAM);
    write(c4, "hello", 5);
    wait_for(a4, POLLIN, 5000);
    // An IPv6-only listener, with a connection.
    int l6 = tcp_listener6("::1", 0, 3, 1);
    add("tcp6 listener", l6, AF_INET6, SOCK_STREAM);
    int c6 = tcp_connect6("::1", port_of(l6, 0));
    int a6 = accept(l6, NULL, NULL);
    add("tcp6 client", c6, AF_INET6, SOCK_STREAM);
    add("tcp6 accepted", a6, AF_INET6, SOCK_STREAM);
    // Bound, neither listening nor connected.
    int b4 = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in any4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(b4, (struct sockaddr *)&any4, sizeof any4);
    add("tcp4 bound", b4, AF_INET, SOCK_STREAM);

    // UDP: an unconnected v4 socket with a datagram waiting, a connected v6 pair.
    int u4 = udp_bound4("127.0.0.1", 0);
    add("udp4 bound", u4, AF_INET, SOCK_DGRAM);
    int s4 = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port_of(u4, 0)), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sendto(s4, "x", 1, 0, (struct sockaddr *)&to, sizeof to);
    add("udp4 sender", s4, AF_INET, SOCK_DGRAM);
    wait_for(u4, POLLIN, 5000);
    int z6 = udp_bound6("::", 0);
    add("udp6 wildcard", z6, AF_INET6, SOCK_DGRAM);
    int x6 = udp_bound6("::1", 0);
    int y6 = udp_bound6("::1", 0);
    add("udp6 x", x6, AF_INET6, SOCK_DGRAM);
    add("udp6 y", y6, AF_INET6, SOCK_DGRAM);
    struct sockaddr_in6 p6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    p6.sin6_port = htons(port_of(y6, 0));
    connect(x6, (struct sockaddr *)&p6, sizeof p6);
    p6.sin6_port = htons(port_of(x6, 0));
    connect(y6, (struct sockaddr *)&p6, sizeof p6);
    socks[nsocks - 2].peer_port = port_of(x6, 1);
    socks[nsocks - 1].peer_port = port_of(y6, 1);

    // AF_UNIX: a path listener with one connection accepted (bytes unread) and
    // one waiting, an abstract seqpacket listener, a datagram pair, an unbound socket.
    struct sockaddr_un ua;
    unix_path(&ua, "listener");
    int ul = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(ul, (struct sockaddr *)&ua, sizeof ua);
    listen(ul, 5);
    add("unix listener", ul, AF_UNIX, SOCK_STREAM);
    int uc = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(uc, (struct sockaddr *)&ua, sizeof ua);
    int uacc = accept(ul, NULL, NULL);
    int uw = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(uw, (struct sockaddr *)&ua, sizeof ua);
    add("unix client", uc, AF_UNIX, SOCK_STREAM);
    add("unix accepted", uacc, AF_UNIX, SOCK_STREAM);
    add("unix waiting client", uw, AF_UNIX, SOCK_STREAM);
    write(uc, "abc", 3);
    struct sockaddr_un abs = {.sun_family = AF_UNIX};
    int alen = snprintf(abs.sun_path + 1, sizeof abs.sun_path - 1, "sdg%d", getpid()) + 1;
    int useq = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    bind(useq, (struct sockaddr *)&abs, offsetof(struct sockaddr_un, sun_path) + alen);
    listen(useq, 2);
    add("unix abstract seqpacket", useq, AF_UNIX, SOCK_SEQPACKET);
    int pair[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, pair);
    add("unix dgram a", pair[0], AF_UNIX, SOCK_DGRAM);
    add("unix dgram b", pair[1], AF_UNIX, SOCK_DGRAM);
    send(pair[0], "1234", 4, 0);
    send(pair[0], "56", 2, 0);
    int ulone = socket(AF_UNIX, SOCK_DGRAM, 0);
    add("unix unbound", ulone, AF_UNIX, SOCK_DGRAM);

    unsigned all = (1 << 12) - 1;
    dump_inet(AF_INET, IPPROTO_TCP, all, 1 << (INET_DIAG_INFO - 1));
    report("tcp4, every state, with TCP_INFO");
    dump_inet(AF_INET6, IPPROTO_TCP, all, 0);
    report("tcp6, every state");
    dump_inet(AF_INET, IPPROTO_TCP, 1 << TCP_LISTEN, 0);
    dump_inet(AF_INET6, IPPROTO_TCP, 1 << TCP_LISTEN, 0);
    report("tcp, listening");
    dump_inet(AF_INET, IPPROTO_TCP, 1 << 13, 0);
    report("tcp4, bound-inactive");
    dump_inet(AF_INET, IPPROTO_UDP, all, 0);
    dump_inet(AF_INET6, IPPROTO_UDP, all, 0);
    report("udp, every state");
    dump_inet(AF_INET6, IPPROTO_UDP, 1 << TCP_CLOSE, 0);
    report("udp6, unconnected only");
    dump_unix(all, UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_ICONS);
    report("unix, every state");
    dump_unix(1 << TCP_LISTEN, UDIAG_SHOW_NAME);
    report("unix, listening");

    // Single sockets: by inode (unix) or addresses (inet), with cookies.
    int fd = diag_socket();
    struct unix_diag_req ur = {.sdiag_family = AF_UNIX, .udiag_ino = inode_of(ul), .udiag_show = UDIAG_SHOW_NAME, .udiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}};
    send_request(fd, SOCK_DIAG_BY_FAMILY, 0, &ur, sizeof ur);
    printf("unix listener by inode: %s\n", errname(receive(fd, on_unix, 1)));
    report("  found");
    ur.udiag_cookie[0] = 1;
    ur.udiag_cookie[1] = 0;
    send_request(fd, SOCK_DIAG_BY_FAMILY, 0, &ur, sizeof ur);
    printf("with another cookie: %s\n", errname(receive(fd, on_unix, 1)));
    ur.udiag_ino = 1;
    ur.udiag_cookie[0] = ur.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
    send_request(fd, SOCK_DIAG_BY_FAMILY, 0, &ur, sizeof ur);
    printf("an inode that is no socket: %s\n", errname(receive(fd, on_unix, 1)));

    struct inet_diag_req_v2 ir = {.sdiag_family = AF_INET, .sdiag_protocol = IPPROTO_TCP, .idiag_states = all};
    ir.id.idiag_sport = htons(port_of(c4, 0));
    ir.id.idiag_dport = htons(port_of(c4, 1));
    ir.id.idiag_src[0] = ir.id.idiag_dst[0] = htonl(INADDR_LOOPBACK);
    ir.id.idiag_cookie[0] = ir.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    send_request(fd, SOCK_DIAG_BY_FAMILY, 0, &ir, sizeof ir);
    printf("tcp4 client by address: %s\n", errname(receive(fd, on_inet, 1)));
    report("  found");
    ir.id.idiag_dport = htons(1);
    send_request(fd, SOCK_DIAG_BY_FAMILY, 0, &ir, sizeof ir);
    printf("a connection nobody has: %s\n", errname(receive(fd, on_inet, 1)));

    // Bad requests.
    send_request(fd, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &ir, 20);
    printf("a short inet request: %s\n", errname(receive(fd, NULL, 0)));
    send_request(fd, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &ur, 10);
    printf("a short unix request: %s\n", errname(receive(fd, NULL, 0)));
    send_request(fd, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, "", 1);
    printf("no protocol byte: %s\n", errname(receive(fd, NULL, 0)));
    struct inet_diag_req_v2 bad = ir;
    bad.sdiag_family = AF_MAX;
    send_request(fd, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &bad, sizeof bad);
    printf("family AF_MAX: %s\n", errname(receive(fd, NULL, 0)));
    bad.sdiag_family = AF_IPX;
    send_request(fd, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &bad, sizeof bad);
    printf("family AF_IPX: %s\n", errname(receive(fd, NULL, 0)));
    bad = ir;
    bad.sdiag_protocol = 200;
    send_request(fd, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &bad, sizeof bad);
    printf("protocol 200: %s\n", errname(receive(fd, NULL, 0)));
    send_request(fd, 99, NLM_F_DUMP, &ir, sizeof ir);
    printf("message type 99: %s\n", errname(receive(fd, NULL, 0)));
    close(fd);

    for (int i = 0; i < nsocks; i++) close(socks[i].fd);
    unlink(ua.sun_path);
    rmdir(dir);
    printf("%d failures\n", failures);
    return failures != 0;
}
