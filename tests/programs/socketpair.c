// AF_UNIX socket pairs: stream bytes both ways, datagram and seqpacket message
// boundaries and truncation, MSG_PEEK/DONTWAIT/TRUNC, shutdown and EOF, EPIPE,
// poll/epoll readiness, FIONREAD, socket options and names, fork, and the
// errors of the calls this sandbox does not support on them.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(void) { return strerrorname_np(errno); }

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    int s[2];
    check("socketpair(AF_UNIX, SOCK_STREAM)", socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0);
    char buf[64] = {0};
    check("write one way, read the other", write(s[0], "ping", 4) == 4 && read(s[1], buf, sizeof buf) == 4 && !memcmp(buf, "ping", 4));
    check("and back", send(s[1], "pong", 4, 0) == 4 && recv(s[0], buf, sizeof buf, 0) == 4 && !memcmp(buf, "pong", 4));
    write(s[0], "abcdef", 6);
    int avail = 0;
    ioctl(s[1], FIONREAD, &avail);
    check("FIONREAD counts the bytes", avail == 6);
    check("a stream read can take part", read(s[1], buf, 2) == 2 && !memcmp(buf, "ab", 2));
    check("MSG_PEEK leaves the bytes", recv(s[1], buf, 2, MSG_PEEK) == 2 && recv(s[1], buf, sizeof buf, 0) == 4 && !memcmp(buf, "cdef", 4));
    errno = 0;
    check("MSG_DONTWAIT on nothing is EAGAIN", recv(s[1], buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    struct pollfd p = {s[1], POLLIN | POLLOUT, 0};
    check("poll: writable, not readable", poll(&p, 1, 0) == 1 && p.revents == POLLOUT);
    write(s[0], "x", 1);
    check("poll: readable once written", poll(&p, 1, 0) == 1 && (p.revents & POLLIN));
    read(s[1], buf, 1);

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u32 = 7}, got;
    epoll_ctl(ep, EPOLL_CTL_ADD, s[1], &ev);
    check("epoll: nothing yet", epoll_wait(ep, &got, 1, 0) == 0);
    pid_t c = fork();
    if (c == 0) {
        write(s[0], "from the child", 14);
        _exit(0);
    }
    check("epoll: a forked child's write wakes it", epoll_wait(ep, &got, 1, 5000) == 1 && got.data.u32 == 7);
    waitpid(c, NULL, 0);
    check("and the data is there", read(s[1], buf, sizeof buf) == 14 && !memcmp(buf, "from the child", 14));

    int type = 0, dom = 0;
    socklen_t len = sizeof type;
    check("SO_TYPE", getsockopt(s[0], SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM && len == sizeof type);
    len = sizeof dom;
    check("SO_DOMAIN", getsockopt(s[0], SOL_SOCKET, SO_DOMAIN, &dom, &len) == 0 && dom == AF_UNIX);
    struct sockaddr_un name;
    len = sizeof name;
    check("getsockname: AF_UNIX, unnamed", getsockname(s[0], (struct sockaddr *)&name, &len) == 0 && name.sun_family == AF_UNIX && len == sizeof(sa_family_t));
    struct stat st;
    check("fstat: a socket", fstat(s[0], &st) == 0 && S_ISSOCK(st.st_mode));
    char link[64] = {0}, path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", s[0]);
    readlink(path, link, sizeof link - 1);
    check("its /proc/self/fd name is socket:[...]", !strncmp(link, "socket:[", 8));
    errno = 0;
    check("opening it through /proc/self/fd is ENXIO", open(path, O_RDWR) == -1 && errno == ENXIO);
    int opath = open(path, O_PATH);
    check("with O_PATH it opens, a socket", opath >= 0 && fstat(opath, &st) == 0 && S_ISSOCK(st.st_mode));
    close(opath);
    errno = 0;
    check("recv on a pipe is ENOTSOCK", recv(ep, buf, 1, MSG_DONTWAIT) == -1 && errno == ENOTSOCK);

    check("shutdown(SHUT_WR)", shutdown(s[0], SHUT_WR) == 0);
    check("the peer reads EOF", read(s[1], buf, sizeof buf) == 0);
    check("the other direction still works", write(s[1], "ok", 2) == 2 && read(s[0], buf, 2) == 2);
    close(s[1]);
    errno = 0;
    check("writing to a closed peer is EPIPE", write(s[0], "x", 1) == -1 && errno == EPIPE);
    close(s[0]);

    int d[2];
    check("socketpair(SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC)", socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, d) == 0);
    check("non-blocking and close-on-exec", (fcntl(d[0], F_GETFL) & O_NONBLOCK) && (fcntl(d[0], F_GETFD) & FD_CLOEXEC));
    send(d[0], "one", 3, 0);
    send(d[0], "two!", 4, 0);
    send(d[0], "", 0, 0);
    check("datagrams keep their boundaries", recv(d[1], buf, sizeof buf, 0) == 3 && recv(d[1], buf, sizeof buf, 0) == 4 && !memcmp(buf, "two!", 4));
    check("an empty datagram reads as 0", recv(d[1], buf, sizeof buf, 0) == 0);
    send(d[0], "truncated", 9, 0);
    struct iovec iov = {buf, 4};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(d[1], &m, 0);
    check("recvmsg into a short buffer: 4 bytes, MSG_TRUNC set", n == 4 && (m.msg_flags & MSG_TRUNC));
    send(d[0], "truncated", 9, 0);
    check("recv with MSG_TRUNC returns the datagram's length", recv(d[1], buf, 4, MSG_TRUNC) == 9);
    char a[] = "gather", b[] = "ed";
    struct iovec out[2] = {{a, 6}, {b, 2}};
    struct msghdr sm = {.msg_iov = out, .msg_iovlen = 2};
    check("sendmsg gathers iovecs into one datagram", sendmsg(d[0], &sm, 0) == 8 && recv(d[1], buf, sizeof buf, 0) == 8 && !memcmp(buf, "gathered", 8));
    errno = 0;
    check("nothing left: EAGAIN", recv(d[1], buf, sizeof buf, 0) == -1 && errno == EAGAIN);
    close(d[0]);
    close(d[1]);

    int q[2];
    check("socketpair(SOCK_SEQPACKET)", socketpair(AF_UNIX, SOCK_SEQPACKET, 0, q) == 0);
    send(q[0], "packet", 6, 0);
    check("a seqpacket read takes one packet", read(q[1], buf, 3) == 3 && recv(q[1], buf, sizeof buf, MSG_DONTWAIT) == -1);
    close(q[0]);
    check("EOF once the peer closes", read(q[1], buf, sizeof buf) == 0);
    close(q[1]);

    // Open files travel with the bytes they were sent with (SCM_RIGHTS).
    int f[2], pp[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, f);
    pipe(pp);
    char cbuf[CMSG_SPACE(2 * sizeof(int))] = {0};
    struct iovec one = {"F", 1};
    struct msghdr fm = {.msg_iov = &one, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = CMSG_SPACE(2 * sizeof(int))};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&fm);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
    memcpy(CMSG_DATA(cm), pp, 2 * sizeof(int));
    check("sendmsg with two files", sendmsg(f[0], &fm, 0) == 1);
    write(f[0], "after", 5);
    char rb[16] = {0}, rc[CMSG_SPACE(2 * sizeof(int))] = {0};
    struct iovec rio = {rb, sizeof rb};
    struct msghdr rm = {.msg_iov = &rio, .msg_iovlen = 1, .msg_control = rc, .msg_controllen = sizeof rc};
    n = recvmsg(f[1], &rm, MSG_CMSG_CLOEXEC);
    struct cmsghdr *rcm = CMSG_FIRSTHDR(&rm);
    int passed[2] = {-1, -1};
    if (rcm && rcm->cmsg_type == SCM_RIGHTS) memcpy(passed, CMSG_DATA(rcm), sizeof passed);
    check("the read stops after the bytes the files came with", n == 1 && rb[0] == 'F');
    check("two new descriptors, close-on-exec", passed[0] > 2 && passed[1] > 2 && passed[0] != pp[0] && (fcntl(passed[0], F_GETFD) & FD_CLOEXEC) && rcm->cmsg_len == CMSG_LEN(2 * sizeof(int)));
    check("they are the same pipe", write(passed[1], "via", 3) == 3 && read(pp[0], rb, 3) == 3 && !memcmp(rb, "via", 3));
    check("the rest of the stream follows", read(f[1], rb, sizeof rb) == 5);
    sendmsg(f[0], &fm, 0);
    char small[CMSG_LEN(sizeof(int))];
    struct msghdr tm = {.msg_iov = &rio, .msg_iovlen = 1, .msg_control = small, .msg_controllen = sizeof small};
    check("a control buffer for one of two files: MSG_CTRUNC", recvmsg(f[1], &tm, 0) == 1 && (tm.msg_flags & MSG_CTRUNC));
    cm->cmsg_type = SCM_CREDENTIALS + 100;
    errno = 0;
    check("an unknown control message is refused", sendmsg(f[0], &fm, 0) == -1);

    errno = 0;
    socketpair(AF_INET, SOCK_STREAM, 0, s);
    printf("socketpair(AF_INET): %s\n", err());
    errno = 0;
    socketpair(AF_UNIX, SOCK_STREAM, 99, s);
    printf("socketpair(AF_UNIX, protocol 99): %s\n", err());
    printf("%d failures\n", failures);
    return failures != 0;
}
