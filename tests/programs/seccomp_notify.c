/* seccomp user notification, as a supervisor uses it: a child installs a filter with
 * SECCOMP_FILTER_FLAG_NEW_LISTENER that sends getppid, mkdir and openat to the
 * listener, hands the listener to its parent over a socket, and the parent answers
 * the calls with a value, an error, "continue" and descriptors (ADDFD). Also poll and
 * epoll on the listener, POLLHUP once the child is gone, ENOSYS once the listener is
 * closed, a signal withdrawing a call (re-notified after SA_RESTART, EINTR without),
 * WAIT_KILLABLE_RECV, one listener per chain, and bad requests. Every line is
 * deterministic; the child and its parent take turns through a pipe. Compared with
 * the same run natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static const char *res(long r) {
    static char buf[64];
    if (r >= 0) snprintf(buf, sizeof buf, "%ld", r);
    else snprintf(buf, sizeof buf, "-1 %s", errname(errno));
    return buf;
}

static long install(unsigned flags) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mkdir, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
    };
    struct sock_fprog prog = {sizeof f / sizeof *f, f};
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

/* The child's turn is over: it printed, now the parent goes on. */
static int turn[2];
static void done(void) { char c = 'x'; write(turn[1], &c, 1); }
static void await(void) { char c; read(turn[0], &c, 1); }

/* Forks a child that installs the notifying filter (with `flags`), sends the listener
 * to the parent and runs `body`; returns the parent's listener. */
static int spawn(unsigned flags, void (*body)(void), pid_t *pid) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(turn);
    *pid = fork();
    if (*pid == 0) {
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        int l = install(SECCOMP_FILTER_FLAG_NEW_LISTENER | flags);
        char cbuf[CMSG_SPACE(sizeof(int))] = {0};
        char b = 'l';
        struct iovec io = {&b, 1};
        struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &l, sizeof l);
        sendmsg(sv[1], &m, 0);
        close(l);
        close(sv[0]);
        close(sv[1]);
        body();
        _exit(0);
    }
    char cbuf[CMSG_SPACE(sizeof(int))];
    char b;
    struct iovec io = {&b, 1};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    int l = -1;
    if (recvmsg(sv[0], &m, 0) == 1 && CMSG_FIRSTHDR(&m)) memcpy(&l, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof l);
    close(sv[0]);
    close(sv[1]);
    return l;
}

static const char *events(int l, int timeout) {
    struct pollfd p = {l, POLLIN | POLLOUT, 0};
    poll(&p, 1, timeout);
    static char buf[64];
    snprintf(buf, sizeof buf, "%s%s%s%s", p.revents & POLLIN ? "POLLIN " : "", p.revents & POLLOUT ? "POLLOUT " : "",
             p.revents & POLLHUP ? "POLLHUP " : "", p.revents ? "" : "none");
    return buf;
}

static pid_t child, parent;

/* Waits for a call and receives it; prints what it was. */
static struct seccomp_notif recv_call(int l, const char *what) {
    printf("%s: poll says %s\n", what, events(l, -1));
    struct seccomp_notif n;
    memset(&n, 0, sizeof n);
    long r = ioctl(l, SECCOMP_IOCTL_NOTIF_RECV, &n);
    const char *name = n.data.nr == SYS_getppid ? "getppid" : n.data.nr == SYS_mkdir ? "mkdir" : n.data.nr == SYS_openat ? "openat" : "?";
    printf("%s: RECV %s, call %s, pid is the child's %d, flags %u, arch x86-64 %d, ip set %d\n", what, res(r), name,
           (pid_t)n.pid == child, n.flags, n.data.arch == AUDIT_ARCH_X86_64, n.data.instruction_pointer != 0);
    return n;
}

static long send_resp(int l, __u64 id, __s64 val, __s32 error, __u32 flags) {
    struct seccomp_notif_resp r = {.id = id, .val = val, .error = error, .flags = flags};
    return ioctl(l, SECCOMP_IOCTL_NOTIF_SEND, &r);
}

/* Prints the result of an answer once the child has printed its side. */
static void answered(const char *what, long r) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", res(r));
    await();
    printf("%s: %s\n", what, buf);
}

static long id_valid(int l, __u64 id) { return ioctl(l, SECCOMP_IOCTL_NOTIF_ID_VALID, &id); }

static long addfd(int l, __u64 id, int src, int newfd, unsigned flags, unsigned newfd_flags) {
    struct seccomp_notif_addfd a = {.id = id, .flags = flags, .srcfd = src, .newfd = newfd, .newfd_flags = newfd_flags};
    return ioctl(l, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
}

static void answers_body(void) {
    long r = syscall(SYS_getppid);
    printf("child: getppid answered %s\n", res(r));
    done();
    r = syscall(SYS_mkdir, "/seccomp-notify-dir", 0700);
    printf("child: mkdir answered %s\n", res(r));
    done();
    r = syscall(SYS_getppid);
    printf("child: continued getppid is the parent: %s\n", r == parent ? "yes" : "no");
    done();
    int fd = openat(AT_FDCWD, "/seccomp-notify-absent", O_RDONLY);
    char buf[16] = {0};
    read(fd, buf, sizeof buf - 1);
    printf("child: openat answered with a descriptor that reads \"%s\", close-on-exec %d\n", buf, fcntl(fd, F_GETFD) & FD_CLOEXEC);
    done();
    r = syscall(SYS_mkdir, "/seccomp-notify-dir", 0700);
    printf("child: mkdir answered %s; fd 100 close-on-exec %d, reads ", res(r), fcntl(100, F_GETFD) & FD_CLOEXEC);
    memset(buf, 0, sizeof buf);
    read(100, buf, sizeof buf - 1);
    printf("\"%s\"\n", buf);
    done();
}

static void answers(void) {
    int l = spawn(0, answers_body, &child);
    char link[64], target[64] = {0};
    snprintf(link, sizeof link, "/proc/self/fd/%d", l);
    readlink(link, target, sizeof target - 1);
    printf("listener: %s\n", target);

    struct seccomp_notif bad;
    memset(&bad, 0, sizeof bad);
    bad.pid = 1;
    errno = 0;
    printf("RECV into a buffer that is not zeroed: %s\n", res(ioctl(l, SECCOMP_IOCTL_NOTIF_RECV, &bad)));

    struct seccomp_notif n = recv_call(l, "getppid");
    printf("after RECV, poll says %s\n", events(l, 0));
    printf("ID_VALID: %s\n", res(id_valid(l, n.id)));
    printf("SEND to an unknown id: %s\n", res(send_resp(l, n.id + 1000, 0, 0, 0)));
    printf("SEND with bad flags: %s\n", res(send_resp(l, n.id, 0, 0, 2)));
    printf("SEND CONTINUE with a value: %s\n", res(send_resp(l, n.id, 1, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE)));
    printf("unknown ioctl: %s\n", res(ioctl(l, _IO('!', 9), 0)));
    answered("SEND 4242", send_resp(l, n.id, 4242, 0, 0));
    printf("ID_VALID after the answer: %s\n", res(id_valid(l, n.id)));
    printf("SEND again: %s\n", res(send_resp(l, n.id, 1, 0, 0)));

    /* The next call: its id is one more, and before RECV it cannot be answered. */
    printf("mkdir: poll says %s\n", events(l, -1));
    printf("SEND before RECV: %s\n", res(send_resp(l, n.id + 1, 0, 0, 0)));
    printf("ID_VALID before RECV: %s\n", res(id_valid(l, n.id + 1)));
    printf("ADDFD before RECV: %s\n", res(addfd(l, n.id + 1, l, 0, 0, 0)));
    struct seccomp_notif m = recv_call(l, "mkdir");
    printf("ids count up by one: %s; mode argument %llu\n", m.id == n.id + 1 ? "yes" : "no", (unsigned long long)m.data.args[1]);
    answered("SEND -EPERM", send_resp(l, m.id, 0, -EPERM, 0));

    n = recv_call(l, "getppid again");
    answered("SEND CONTINUE", send_resp(l, n.id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE));

    int p[2];
    pipe(p);
    write(p[1], "hello", 5);
    write(p[1], "world", 5);
    close(p[1]);
    n = recv_call(l, "openat");
    printf("ADDFD with bad flags: %s\n", res(addfd(l, n.id, p[0], 0, 4, 0)));
    printf("ADDFD with bad descriptor flags: %s\n", res(addfd(l, n.id, p[0], 0, 0, O_NONBLOCK)));
    printf("ADDFD newfd without SETFD: %s\n", res(addfd(l, n.id, p[0], 5, 0, 0)));
    printf("ADDFD of a closed descriptor: %s\n", res(addfd(l, n.id, 999, 0, 0, 0)));
    long fd = addfd(l, n.id, p[0], 0, SECCOMP_ADDFD_FLAG_SEND, O_CLOEXEC);
    answered("ADDFD with SEND gave a descriptor", fd >= 3);
    printf("ADDFD after the answer: %s\n", res(addfd(l, n.id, p[0], 0, 0, 0)));

    int q[2];
    pipe(q);
    write(q[1], "setfd", 5);
    close(q[1]);
    n = recv_call(l, "mkdir again");
    fd = addfd(l, n.id, p[0], 0, 0, 0);
    printf("ADDFD plain: %s\n", fd >= 3 ? "a descriptor" : res(fd));
    printf("ADDFD SETFD 100: %s\n", res(addfd(l, n.id, q[0], 100, SECCOMP_ADDFD_FLAG_SETFD, O_CLOEXEC)));
    answered("SEND 0", send_resp(l, n.id, 0, 0, 0));
    close(p[0]);
    close(q[0]);

    int st;
    waitpid(child, &st, 0);
    printf("child exited %d; poll says %s\n", WEXITSTATUS(st), events(l, 0));
    memset(&n, 0, sizeof n);
    printf("RECV once the filter is gone: %s\n", res(ioctl(l, SECCOMP_IOCTL_NOTIF_RECV, &n)));
    close(l);
}

static void closed_body(void) {
    long r = syscall(SYS_getppid);
    printf("child: getppid once the listener closed: %s\n", res(r));
    r = syscall(SYS_getppid);
    printf("child: and again: %s\n", res(r));
    printf("child: a new listener after the old one closed: %s\n", install(SECCOMP_FILTER_FLAG_NEW_LISTENER) >= 0 ? "ok" : res(-1));
}

static void closing(void) {
    int l = spawn(0, closed_body, &child);
    printf("pending call: poll says %s\n", events(l, -1));
    close(l);
    waitpid(child, NULL, 0);
}

static volatile int handled;
static void on_usr1(int sig) {
    (void)sig;
    handled++;
    char c = 's';
    write(turn[1], &c, 1);
}

static void signal_body(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    long r = syscall(SYS_getppid);
    printf("child: getppid after a signal with SA_RESTART: %s, handler ran %d\n", res(r), handled);
    done();
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    r = syscall(SYS_mkdir, "/seccomp-notify-dir", 0700);
    printf("child: mkdir after a signal without SA_RESTART: %s, handler ran %d\n", res(r), handled);
    done();
}

static void signals(void) {
    int l = spawn(0, signal_body, &child);
    struct seccomp_notif n = recv_call(l, "interrupted getppid");
    kill(child, SIGUSR1);
    await(); /* the handler ran: the call was withdrawn first */
    printf("ID_VALID of the withdrawn call: %s\n", res(id_valid(l, n.id)));
    printf("SEND to the withdrawn call: %s\n", res(send_resp(l, n.id, 1, 0, 0)));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    struct epoll_event out;
    int k = epoll_wait(ep, &out, 1, -1);
    printf("epoll: %d ready, EPOLLIN %d, data %u\n", k, !!(out.events & EPOLLIN), out.data.u32);
    close(ep);
    struct seccomp_notif again = recv_call(l, "restarted getppid");
    printf("restarted call has a new id: %s\n", again.id != n.id ? "yes" : "no");
    answered("SEND 7", send_resp(l, again.id, 7, 0, 0));
    n = recv_call(l, "interrupted mkdir");
    kill(child, SIGUSR1);
    await();
    await();
    printf("ID_VALID of the withdrawn mkdir: %s\n", res(id_valid(l, n.id)));
    waitpid(child, NULL, 0);
    close(l);
}

static void killable_body(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    long r = syscall(SYS_getppid);
    printf("child: WAIT_KILLABLE_RECV: getppid after a signal: %s\n", res(r));
    done();
}

static void killable(void) {
    int l = spawn(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, killable_body, &child);
    struct seccomp_notif n = recv_call(l, "killable getppid");
    kill(child, SIGUSR1);
    printf("ID_VALID after the signal: %s\n", res(id_valid(l, n.id)));
    long r = send_resp(l, n.id, 5, 0, 0);
    await(); /* the handler, after the call */
    answered("SEND 5", r);
    waitpid(child, NULL, 0);
    close(l);
}

static void chains(void) {
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    errno = 0;
    printf("TSYNC with NEW_LISTENER: %s\n", res(install(SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_NEW_LISTENER)));
    printf("WAIT_KILLABLE_RECV alone: %s\n", res(install(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)));
    long l = install(SECCOMP_FILTER_FLAG_NEW_LISTENER);
    printf("first listener: %s, close-on-exec %d\n", l >= 0 ? "ok" : res(l), fcntl(l, F_GETFD) & FD_CLOEXEC);
    printf("poll with nothing to receive: %s\n", events(l, 0));
    printf("second listener: %s\n", res(install(SECCOMP_FILTER_FLAG_NEW_LISTENER)));
    printf("a filter without one: %s\n", res(install(0)));
    printf("a listener over it: %s\n", res(install(SECCOMP_FILTER_FLAG_NEW_LISTENER)));
    long t = install(SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH | SECCOMP_FILTER_FLAG_NEW_LISTENER);
    printf("TSYNC|TSYNC_ESRCH|NEW_LISTENER: %s\n", res(t));
    close(l);
    l = install(SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH | SECCOMP_FILTER_FLAG_NEW_LISTENER);
    printf("once the first is closed, TSYNC|TSYNC_ESRCH|NEW_LISTENER: %s\n", l >= 0 ? "ok" : res(l));
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    parent = getpid();
    struct seccomp_notif_sizes sizes;
    long r = syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes);
    printf("GET_NOTIF_SIZES: %s: notif %u, resp %u, data %u\n", res(r), sizes.seccomp_notif, sizes.seccomp_notif_resp, sizes.seccomp_data);
    check("the sizes are the structs'", sizes.seccomp_notif == sizeof(struct seccomp_notif) && sizes.seccomp_notif_resp == sizeof(struct seccomp_notif_resp) && sizes.seccomp_data == sizeof(struct seccomp_data));
    printf("GET_NOTIF_SIZES with flags: %s\n", res(syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 1, &sizes)));
    answers();
    closing();
    signals();
    killable();
    pid_t c = fork();
    if (c == 0) {
        chains();
        _exit(0);
    }
    waitpid(c, NULL, 0);
    if (!failures) printf("all ok\n");
    return failures != 0;
}
