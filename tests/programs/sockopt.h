// What the socket-buffer tests share: an int socket option read and set at
// SOL_SOCKET, and whether poll says a socket is writable now.
#include <poll.h>
#include <sys/socket.h>

static inline int get(int fd, int opt) {
    int v = -1;
    socklen_t l = sizeof v;
    getsockopt(fd, SOL_SOCKET, opt, &v, &l);
    return v;
}

static inline void set(int fd, int opt, int v) {
    setsockopt(fd, SOL_SOCKET, opt, &v, sizeof v);
}

static inline int writable(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}
