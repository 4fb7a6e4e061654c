// Sends `len` bytes of `data` with file descriptor `fd` attached (SCM_RIGHTS).
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

static ssize_t send_with_fd(int sock, const void *data, size_t len, int fd, int flags) {
    char c[CMSG_SPACE(sizeof fd)];
    memset(c, 0, sizeof c);
    struct iovec io = {(void *)data, len};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = c, .msg_controllen = sizeof c};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof fd);
    memcpy(CMSG_DATA(h), &fd, sizeof fd);
    return sendmsg(sock, &m, flags);
}
