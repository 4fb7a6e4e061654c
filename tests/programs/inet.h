// Helpers the loopback socket tests (inet_tcp.c, inet_udp.c) share: addresses,
// names and readiness printed the same way natively and in the sandbox.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>

static struct sockaddr_in v4(const char *ip, int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static struct sockaddr_in6 v6(const char *ip, int port) {
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    inet_pton(AF_INET6, ip, &a.sin6_addr);
    return a;
}

// The address part of a name, as inet_ntop writes it (deterministic: no port).
static const char *host_of(const struct sockaddr_storage *a) {
    static char buf[4][INET6_ADDRSTRLEN];
    static int next;
    char *b = buf[next++ % 4];
    strcpy(b, "?");
    if (a->ss_family == AF_INET) inet_ntop(AF_INET, &((struct sockaddr_in *)a)->sin_addr, b, INET6_ADDRSTRLEN);
    if (a->ss_family == AF_INET6) inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a)->sin6_addr, b, INET6_ADDRSTRLEN);
    return b;
}

static int wait_for(int fd, short events, int ms) {
    if (fd < 0) return 0; // poll would skip it, and wait
    struct pollfd p = {fd, events, 0};
    return poll(&p, 1, ms) == 1 ? p.revents : 0;
}

static const char *poll_names(int r) {
    static char buf[128];
    static const struct { int bit; const char *name; } bits[] = {
        {POLLIN, "POLLIN"}, {POLLPRI, "POLLPRI"}, {POLLOUT, "POLLOUT"}, {POLLERR, "POLLERR"},
        {POLLHUP, "POLLHUP"}, {POLLNVAL, "POLLNVAL"}, {POLLRDHUP, "POLLRDHUP"},
    };
    buf[0] = 0;
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        if (r & bits[i].bit) {
            if (buf[0]) strcat(buf, "|");
            strcat(buf, bits[i].name);
        }
    if (r & ~(POLLIN | POLLPRI | POLLOUT | POLLERR | POLLHUP | POLLNVAL | POLLRDHUP)) strcat(buf, "|other");
    return buf[0] ? buf : "none";
}

static int int_opt(int fd, int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    if (getsockopt(fd, level, name, &v, &len) != 0 || len != sizeof v) return -1;
    return v;
}

static int set_int(int fd, int level, int name, int v) { return setsockopt(fd, level, name, &v, sizeof v); }
