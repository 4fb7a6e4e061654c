// What the socket-buffer tests share: an int socket option read and set at
// SOL_SOCKET, whether poll says a socket is writable now, and an int ioctl's
// value (-errno on failure).
#include <errno.h>
#include <poll.h>
#include <sys/ioctl.h>
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

static inline int ioctl_int(int fd, unsigned long req) {
    int v = -1;
    return ioctl(fd, req, &v) == 0 ? v : -errno;
}
