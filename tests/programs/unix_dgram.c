// AF_UNIX datagram sockets by name (paths and abstract names): sendto/recvfrom
// with the sender's address, connect (default peer, AF_UNSPEC, only the peer is
// heard), the errors, full queues; autobind; SO_PASSCRED and SCM_CREDENTIALS
// (with SCM_RIGHTS beside them, capability checks) and SO_PEERCRED.
#define _GNU_SOURCE
#include "check.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAMILY_LEN ((socklen_t)offsetof(struct sockaddr_un, sun_path))

static char dir[64];
static int sigpipes;

static void on_sigpipe(int sig) {
    (void)sig;
    sigpipes++;
}

// A path name under the test's directory, or an abstract name (leading NUL).
static socklen_t name_of(struct sockaddr_un *a, const char *name, int abstract) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (abstract) {
        int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "%s-%s", dir + 5, name);
        return FAMILY_LEN + 1 + n;
    }
    snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", dir, name);
    return FAMILY_LEN + strlen(a->sun_path) + 1;
}

static int bound(int type, const char *name, int abstract) {
    struct sockaddr_un a;
    socklen_t len = name_of(&a, name, abstract);
    int s = socket(AF_UNIX, type, 0);
    return s >= 0 && bind(s, (struct sockaddr *)&a, len) == 0 ? s : -1;
}

static int send_to(int s, const void *buf, size_t n, int flags, const char *name, int abstract) {
    struct sockaddr_un a;
    socklen_t len = name_of(&a, name, abstract);
    return sendto(s, buf, n, flags, (struct sockaddr *)&a, len);
}

static int connect_to(int s, const char *name, int abstract) {
    struct sockaddr_un a;
    socklen_t len = name_of(&a, name, abstract);
    return connect(s, (struct sockaddr *)&a, len);
}

// Whether an address of `len` bytes is `name`.
static int is_name(const struct sockaddr_un *a, socklen_t len, const char *name, int abstract) {
    struct sockaddr_un want;
    socklen_t wlen = name_of(&want, name, abstract);
    return len == wlen && a->sun_family == AF_UNIX && !memcmp(a->sun_path, want.sun_path, wlen - FAMILY_LEN);
}

// An autobound name: 8 bytes, a NUL then five lowercase hex digits.
static int is_autobound(const struct sockaddr_un *a, socklen_t len) {
    if (len != FAMILY_LEN + 6 || a->sun_family != AF_UNIX || a->sun_path[0] != 0) return 0;
    for (int i = 1; i < 6; i++)
        if (!isxdigit((unsigned char)a->sun_path[i]) || isupper((unsigned char)a->sun_path[i])) return 0;
    return 1;
}

static socklen_t own_name(int s, struct sockaddr_un *a) {
    socklen_t len = sizeof *a;
    memset(a, 0x55, sizeof *a);
    return getsockname(s, (struct sockaddr *)a, &len) == 0 ? len : (socklen_t)-1;
}

static void report_errno(const char *what, int r, int want) {
    char line[200];
    int e = r == -1 ? errno : 0;
    snprintf(line, sizeof line, "%s is %s", what, errname(want));
    check(line, r == -1 && e == want);
    if (r != -1 || e != want) printf("  got %d, %s\n", r, errname(e));
}

static void names_and_messages(int abstract) {
    const char *kind = abstract ? "abstract" : "path";
    char what[160];
    int srv = bound(SOCK_DGRAM, "server", abstract);
    snprintf(what, sizeof what, "%s: bind a datagram socket", kind);
    check(what, srv >= 0);

    int anon = socket(AF_UNIX, SOCK_DGRAM, 0);
    snprintf(what, sizeof what, "%s: an unbound socket sends to the name", kind);
    check(what, send_to(anon, "one", 3, 0, "server", abstract) == 3);
    struct sockaddr_un from;
    socklen_t flen = sizeof from;
    char buf[64];
    memset(&from, 0x55, sizeof from);
    ssize_t n = recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
    snprintf(what, sizeof what, "%s: received the datagram", kind);
    check(what, n == 3 && !memcmp(buf, "one", 3));
    printf("%s: an unbound sender's address length is %u\n", kind, flen);
    struct sockaddr_un a;
    snprintf(what, sizeof what, "%s: sending did not bind the sender", kind);
    check(what, own_name(anon, &a) == FAMILY_LEN);

    int cli = bound(SOCK_DGRAM, "client", abstract);
    send_to(cli, "first", 5, 0, "server", abstract);
    send_to(cli, "second!", 7, 0, "server", abstract);
    send_to(cli, "", 0, 0, "server", abstract);
    flen = sizeof from;
    n = recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
    snprintf(what, sizeof what, "%s: recvfrom reports a bound sender's name", kind);
    check(what, n == 5 && is_name(&from, flen, "client", abstract));
    struct iovec iov = {buf, 3};
    struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
    n = recvmsg(srv, &m, 0);
    snprintf(what, sizeof what, "%s: a short recvmsg truncates one datagram and names the sender", kind);
    check(what, n == 3 && (m.msg_flags & MSG_TRUNC) && is_name(&from, m.msg_namelen, "client", abstract));
    snprintf(what, sizeof what, "%s: an empty datagram keeps its boundary", kind);
    check(what, recv(srv, buf, sizeof buf, MSG_DONTWAIT) == 0 && recv(srv, buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN);

    snprintf(what, sizeof what, "%s: sending to a name nobody bound", kind);
    report_errno(what, send_to(cli, "x", 1, 0, "nobody", abstract), abstract ? ECONNREFUSED : ENOENT);
    snprintf(what, sizeof what, "%s: connecting to a name nobody bound", kind);
    report_errno(what, connect_to(socket(AF_UNIX, SOCK_DGRAM, 0), "nobody", abstract), abstract ? ECONNREFUSED : ENOENT);
    int listener = bound(SOCK_STREAM, "listener", abstract);
    listen(listener, 1);
    snprintf(what, sizeof what, "%s: sending to a stream socket's name", kind);
    // Abstract names are per socket type: the datagram socket finds none.
    report_errno(what, send_to(cli, "x", 1, 0, "listener", abstract), abstract ? ECONNREFUSED : EPROTOTYPE);
    int same = bound(SOCK_STREAM, "server", abstract);
    snprintf(what, sizeof what, "%s: a stream socket binds a datagram socket's name", kind);
    printf("%s: %s\n", what, same >= 0 ? "0" : errname(errno));
    close(same);
    close(listener);
    snprintf(what, sizeof what, "%s: sending to a closed socket's name", kind);
    report_errno(what, send_to(cli, "x", 1, 0, "listener", abstract), ECONNREFUSED);
    snprintf(what, sizeof what, "%s: binding a taken name", kind);
    report_errno(what, bound(SOCK_DGRAM, "server", abstract), EADDRINUSE);
    snprintf(what, sizeof what, "%s: binding a bound socket again", kind);
    {
        struct sockaddr_un b;
        socklen_t blen = name_of(&b, "again", abstract);
        report_errno(what, bind(cli, (struct sockaddr *)&b, blen), EINVAL);
    }
    close(anon);
    close(cli);
    close(srv);
}

static void connected(void) {
    int srv = bound(SOCK_DGRAM, "peer-server", 0);
    int other = bound(SOCK_DGRAM, "peer-other", 0);
    int c = socket(AF_UNIX, SOCK_DGRAM, 0);
    char buf[64];
    report_errno("send on an unconnected datagram socket", send(c, "x", 1, 0), ENOTCONN);
    report_errno("accept on a datagram socket", accept(srv, NULL, NULL), EOPNOTSUPP);
    report_errno("listen on a datagram socket", listen(srv, 1), EOPNOTSUPP);
    struct sockaddr_un a;
    socklen_t alen = sizeof a;
    report_errno("getpeername unconnected", getpeername(c, (struct sockaddr *)&a, &alen), ENOTCONN);
    check("connect to a bound datagram socket", connect_to(c, "peer-server", 0) == 0);
    check("connect without SO_PASSCRED does not bind", own_name(c, &a) == FAMILY_LEN);
    alen = sizeof a;
    check("getpeername names the peer", getpeername(c, (struct sockaddr *)&a, &alen) == 0 && is_name(&a, alen, "peer-server", 0));
    check("send goes to the peer", send(c, "hi", 2, 0) == 2 && recv(srv, buf, sizeof buf, 0) == 2 && !memcmp(buf, "hi", 2));
    check("write goes to the peer", write(c, "wr", 2) == 2 && read(srv, buf, sizeof buf) == 2);
    check("sendto another name while connected", send_to(c, "to", 2, 0, "peer-other", 0) == 2 && recv(other, buf, sizeof buf, 0) == 2);
    check("connect again to another peer", connect_to(c, "peer-other", 0) == 0 && send(c, "o", 1, 0) == 1 && recv(other, buf, sizeof buf, 0) == 1);

    // srv connected to other: it hears only from other.
    check("the server connects to another socket", connect_to(srv, "peer-other", 0) == 0);
    int stranger = socket(AF_UNIX, SOCK_DGRAM, 0);
    report_errno("sending to a socket connected elsewhere", send_to(stranger, "x", 1, 0, "peer-server", 0), EPERM);
    report_errno("connected elsewhere, from a connected socket", send_to(c, "x", 1, 0, "peer-server", 0), EPERM);
    check("its peer may still send to it", send_to(other, "back", 4, 0, "peer-server", 0) == 4 && recv(srv, buf, sizeof buf, MSG_DONTWAIT) == 4);
    struct sockaddr_un unspec = {.sun_family = AF_UNSPEC};
    check("connect to AF_UNSPEC dissolves the association", connect(srv, (struct sockaddr *)&unspec, sizeof(sa_family_t)) == 0);
    alen = sizeof a;
    report_errno("getpeername after AF_UNSPEC", getpeername(srv, (struct sockaddr *)&a, &alen), ENOTCONN);
    report_errno("send after AF_UNSPEC", send(srv, "x", 1, 0), ENOTCONN);
    check("anyone may send to it again", send_to(stranger, "x", 1, 0, "peer-server", 0) == 1 && recv(srv, buf, sizeof buf, MSG_DONTWAIT) == 1);
    check("AF_UNSPEC on an unconnected socket", connect(stranger, (struct sockaddr *)&unspec, sizeof(sa_family_t)) == 0);

    // The peer goes away: the next send is refused once, then ENOTCONN.
    int gone = bound(SOCK_DGRAM, "peer-gone", 0);
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    connect_to(d, "peer-gone", 0);
    close(gone);
    report_errno("sending to a closed peer", send(d, "x", 1, 0), ECONNREFUSED);
    report_errno("then the socket is unconnected", send(d, "x", 1, 0), ENOTCONN);

    // shutdown: only this socket's own directions; no SIGPIPE for datagrams.
    int e = socket(AF_UNIX, SOCK_DGRAM, 0);
    connect_to(e, "peer-other", 0);
    check("shutdown(SHUT_WR) on a datagram socket", shutdown(e, SHUT_WR) == 0);
    report_errno("sending after SHUT_WR", send(e, "x", 1, 0), EPIPE);
    report_errno("sendto after SHUT_WR", send_to(e, "x", 1, 0, "peer-server", 0), EPIPE);
    check("shutdown(SHUT_RD) on the receiver", shutdown(other, SHUT_RD) == 0);
    report_errno("sending to a receiver shut for reading", send_to(stranger, "x", 1, 0, "peer-other", 0), EPIPE);
    check("the receiver reads EOF", recv(other, buf, sizeof buf, 0) == 0);
    printf("SIGPIPEs from datagram sends: %d\n", sigpipes);

    // Sending an address on connection-oriented sockets.
    int sp[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
    report_errno("sendto with an address on a connected stream socket", send_to(sp[0], "x", 1, 0, "peer-server", 0), EISCONN);
    int st = socket(AF_UNIX, SOCK_STREAM, 0);
    report_errno("sendto with an address on an unconnected stream socket", send_to(st, "x", 1, 0, "peer-server", 0), EOPNOTSUPP);
    check("shutdown of an unconnected stream socket", shutdown(st, SHUT_RDWR) == 0);
    int qp[2];
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, qp);
    check("a seqpacket socket ignores the address", send_to(qp[0], "pk", 2, 0, "peer-server", 0) == 2 && recv(qp[1], buf, sizeof buf, 0) == 2);
    struct sockaddr_un from;
    socklen_t flen = sizeof from;
    send(sp[0], "s", 1, 0);
    memset(&from, 0x55, sizeof from);
    recvfrom(sp[1], buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
    printf("recvfrom on a stream socket pair: address length %u\n", flen);
    flen = sizeof from;
    send(qp[0], "q", 1, 0);
    recvfrom(qp[1], buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
    printf("recvfrom on a seqpacket socket pair: address length %u\n", flen);
    int l = bound(SOCK_STREAM, "peer-listener", 0);
    listen(l, 1);
    int k = socket(AF_UNIX, SOCK_STREAM, 0);
    connect_to(k, "peer-listener", 0);
    int acc = accept(l, NULL, NULL);
    send(acc, "a", 1, 0);
    flen = sizeof from;
    check("recvfrom on a stream connection names the listener", recvfrom(k, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen) == 1 && is_name(&from, flen, "peer-listener", 0));
    close(acc);
    close(k);
    close(l);
    int q2[2], avail = -1;
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, q2);
    send(q2[0], "ab", 2, 0);
    send(q2[0], "cde", 3, 0);
    ioctl(q2[1], FIONREAD, &avail);
    printf("FIONREAD on a seqpacket socket holding 2 and 3 bytes: %d\n", avail);
    close(q2[1]);
    sigpipes = 0;
    report_errno("a seqpacket send to a peer closed with packets unread", send(q2[0], "x", 1, 0), ECONNRESET);
    report_errno("the next one", send(q2[0], "x", 1, 0), EPIPE);
    printf("SIGPIPEs from it: %d\n", sigpipes);
    close(q2[0]);
    int s2[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s2);
    send(s2[1], "z", 1, 0);
    send(s2[0], "unread", 6, 0);
    close(s2[1]);
    sigpipes = 0;
    check("a stream reads what came before its peer closed", recv(s2[0], buf, sizeof buf, 0) == 1);
    report_errno("a stream send to a peer closed with bytes unread", send(s2[0], "x", 1, 0), EPIPE);
    printf("SIGPIPEs from it: %d\n", sigpipes);
    report_errno("the next receive", recv(s2[0], buf, sizeof buf, 0), ECONNRESET);
    check("then EOF", recv(s2[0], buf, sizeof buf, 0) == 0);
    close(s2[0]);
    int dp[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, dp);
    send(dp[0], "ab", 2, 0);
    send(dp[0], "cde", 3, 0);
    ioctl(dp[1], FIONREAD, &avail);
    printf("FIONREAD on a datagram socket holding 2 and 3 bytes: %d\n", avail);
    recv(dp[1], buf, sizeof buf, 0);
    recv(dp[1], buf, sizeof buf, 0);
    check("a datagram pair sends to a name too", send_to(dp[0], "n", 1, 0, "peer-server", 0) == 1 && recv(srv, buf, sizeof buf, 0) == 1);
    close(dp[1]);
    report_errno("a datagram pair whose peer closed", send(dp[0], "x", 1, 0), ECONNREFUSED);
    close(dp[0]);
    close(sp[0]);
    close(sp[1]);
    close(qp[0]);
    close(qp[1]);
    close(st);
    close(c);
    close(d);
    close(e);
    close(srv);
    close(other);
    close(stranger);
}

// Changing the peer drops what is queued; an old peer connected back hears ECONNRESET once.
static void reconnect(void) {
    char buf[8];
    int p[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, p);
    int third = bound(SOCK_DGRAM, "re-third", 0);
    send(p[1], "x", 1, 0);
    check("a pair's end connects elsewhere", connect_to(p[0], "re-third", 0) == 0);
    report_errno("what the old peer sent was dropped", recv(p[0], buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    struct pollfd pf = {p[1], POLLIN | POLLOUT, 0};
    poll(&pf, 1, 0);
    printf("the old peer polls: POLLERR %d, POLLOUT %d, POLLIN %d\n", !!(pf.revents & POLLERR), !!(pf.revents & POLLOUT), !!(pf.revents & POLLIN));
    report_errno("the old peer's next send", send(p[1], "y", 1, 0), ECONNRESET);
    report_errno("and the one after", send(p[1], "y", 1, 0), EPERM);
    int q[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, q);
    send(q[1], "x", 1, 0);
    connect_to(q[0], "re-third", 0);
    int err = -1;
    socklen_t elen = sizeof err;
    check("SO_ERROR reports ECONNRESET once", getsockopt(q[1], SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == ECONNRESET && getsockopt(q[1], SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0);
    int r[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, r);
    send(r[1], "x", 1, 0);
    connect_to(r[0], "re-third", 0);
    report_errno("a receive on the old peer", recv(r[1], buf, sizeof buf, MSG_DONTWAIT), ECONNRESET);
    int s[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, s);
    connect_to(s[0], "re-third", 0);
    report_errno("nothing was queued: no error, the old peer is refused", send(s[1], "y", 1, 0), EPERM);
    int fresh = bound(SOCK_DGRAM, "re-fresh", 0);
    send_to(p[1], "k", 1, 0, "re-fresh", 0);
    check("a socket without a peer keeps its queue when it connects", connect_to(fresh, "re-third", 0) == 0 && recv(fresh, buf, sizeof buf, MSG_DONTWAIT) == 1);
    close(fresh);
    int x = bound(SOCK_DGRAM, "re-x", 0);
    connect_to(third, "re-x", 0);
    int lone = socket(AF_UNIX, SOCK_DGRAM, 0);
    report_errno("connecting to a socket connected elsewhere", connect_to(lone, "re-third", 0), EPERM);
    int *pairs[] = {p, q, r, s};
    for (int i = 0; i < 4; i++) {
        close(pairs[i][0]);
        close(pairs[i][1]);
    }
    close(x);
    close(lone);
    close(third);
}

static void sizes_and_queues(void) {
    int srv = bound(SOCK_DGRAM, "queue-server", 0);
    int c = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct pollfd fresh = {c, POLLIN | POLLOUT | POLLRDHUP, 0};
    poll(&fresh, 1, 0);
    printf("a new datagram socket polls %#x\n", fresh.revents);
    connect_to(c, "queue-server", 0);
    static char big[300000];
    report_errno("a datagram over the send buffer", send(c, big, sizeof big, 0), EMSGSIZE);
    check("a 100000-byte datagram goes whole", send(c, big, 100000, 0) == 100000 && recv(srv, big, sizeof big, 0) == 100000);
    int queued = 0;
    while (send(c, "q", 1, MSG_DONTWAIT) == 1) queued++;
    printf("datagrams queued before the receiver is full: %d (%s)\n", queued, errname(errno));
    struct pollfd p = {c, POLLOUT, 0};
    check("a sender connected to a full receiver is not writable", poll(&p, 1, 0) == 0);
    struct pollfd r = {srv, POLLIN, 0};
    check("the receiver is readable", poll(&r, 1, 0) == 1 && (r.revents & POLLIN));
    pid_t child = fork();
    if (child == 0) {
        char buf[4];
        usleep(100000);
        recv(srv, buf, sizeof buf, 0);
        _exit(0);
    }
    check("the sender becomes writable once the receiver reads", poll(&p, 1, 5000) == 1 && (p.revents & POLLOUT));
    check("a blocking send then goes", send(c, "q", 1, 0) == 1);
    waitpid(child, NULL, 0);
    child = fork();
    if (child == 0) {
        char buf[4];
        usleep(100000);
        recv(srv, buf, sizeof buf, 0);
        _exit(0);
    }
    check("a blocking send to a full receiver waits until it reads", send_to(c, "w", 1, 0, "queue-server", 0) == 1);
    waitpid(child, NULL, 0);
    int dp[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, dp);
    int many = 0;
    while (many < 100 && send(dp[0], "m", 1, MSG_DONTWAIT) == 1) many++;
    check("a receiver connected back to the sender takes more than the queue length", many == 100);
    close(dp[0]);
    close(dp[1]);
    close(c);
    close(srv);
}

static void autobind(void) {
    struct sockaddr_un a;
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    check("an unbound socket's name is the family alone", own_name(s, &a) == FAMILY_LEN);
    struct sockaddr_un fam = {.sun_family = AF_UNIX};
    check("bind with only the family autobinds", bind(s, (struct sockaddr *)&fam, sizeof(sa_family_t)) == 0);
    socklen_t len = own_name(s, &a);
    check("the name: length 8, starts with NUL, 5 hex digits", is_autobound(&a, len));
    struct sockaddr_un first = a;
    printf("autobinding a bound socket again: %s\n", bind(s, (struct sockaddr *)&fam, sizeof(sa_family_t)) == 0 ? "0" : errname(errno));
    check("keeps its name", own_name(s, &a) == len && !memcmp(&a, &first, len));
    int t = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(t, (struct sockaddr *)&fam, sizeof(sa_family_t));
    check("two autobound sockets differ", own_name(t, &a) == len && is_autobound(&a, len) && memcmp(a.sun_path, first.sun_path, 6));
    close(t);

    int srv = bound(SOCK_DGRAM, "auto-server", 0);
    int one = 1;
    int c = socket(AF_UNIX, SOCK_DGRAM, 0);
    setsockopt(c, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    check("connect with SO_PASSCRED autobinds", connect_to(c, "auto-server", 0) == 0 && is_autobound(&a, own_name(c, &a)));
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    setsockopt(d, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    check("sendto with SO_PASSCRED autobinds", send_to(d, "x", 1, 0, "auto-server", 0) == 1 && is_autobound(&a, own_name(d, &a)));
    struct sockaddr_un from;
    socklen_t flen = sizeof from;
    char buf[8];
    check("the receiver sees the autobound name", recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen) == 1 && flen == len && !memcmp(&from, &a, len));
    int back = socket(AF_UNIX, SOCK_DGRAM, 0);
    check("and can answer to it", sendto(back, "y", 1, 0, (struct sockaddr *)&from, flen) == 1 && recv(d, buf, sizeof buf, 0) == 1);
    int e = socket(AF_UNIX, SOCK_STREAM, 0);
    setsockopt(e, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    int l = bound(SOCK_STREAM, "auto-listener", 0);
    listen(l, 1);
    check("a stream connect with SO_PASSCRED autobinds", connect_to(e, "auto-listener", 0) == 0 && is_autobound(&a, own_name(e, &a)));
    close(e);
    close(l);
    close(back);
    close(c);
    close(d);
    close(srv);
    close(s);
}

// A SCM_CREDENTIALS (and optional SCM_RIGHTS) sendmsg of one byte.
static int send_creds(int s, const struct ucred *cred, int fd) {
    union {
        char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    char byte = 'c';
    struct iovec iov = {&byte, 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = 0};
    struct cmsghdr *c = (struct cmsghdr *)u.buf;
    if (cred) {
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_CREDENTIALS;
        c->cmsg_len = CMSG_LEN(sizeof *cred);
        memcpy(CMSG_DATA(c), cred, sizeof *cred);
        m.msg_controllen += CMSG_SPACE(sizeof *cred);
        c = (struct cmsghdr *)(u.buf + m.msg_controllen);
    }
    if (fd >= 0) {
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
        m.msg_controllen += CMSG_SPACE(sizeof(int));
    }
    if (!m.msg_controllen) m.msg_control = NULL;
    return sendmsg(s, &m, 0);
}

struct got {
    ssize_t n;
    int flags, has_cred, fd, order; // order: 1 when credentials came before rights
    struct ucred cred;
};

static struct got recv_creds(int s, size_t controllen, int flags) {
    union {
        char buf[256];
        struct cmsghdr align;
    } u;
    char byte;
    struct iovec iov = {&byte, 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = controllen ? u.buf : NULL, .msg_controllen = controllen};
    struct got g = {.fd = -1};
    g.n = recvmsg(s, &m, flags);
    g.flags = m.msg_flags;
    int seen_cred = 0;
    for (struct cmsghdr *c = controllen ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
            memcpy(&g.cred, CMSG_DATA(c), sizeof g.cred);
            g.has_cred = seen_cred = 1;
        }
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int))) {
            memcpy(&g.fd, CMSG_DATA(c), sizeof g.fd);
            g.order = seen_cred;
        }
    }
    return g;
}

static int is_own(const struct ucred *c) {
    return c->pid == getpid() && c->uid == getuid() && c->gid == getgid();
}

static int drop_caps(int caps) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d)) return -1;
    d[0].effective &= ~caps;
    return syscall(SYS_capset, &h, d);
}

static void credentials(void) {
    int one = 1, zero = 0, v = -1;
    socklen_t vlen = sizeof v;
    int srv = bound(SOCK_DGRAM, "cred-server", 0);
    check("SO_PASSCRED is off by default", getsockopt(srv, SOL_SOCKET, SO_PASSCRED, &v, &vlen) == 0 && v == 0 && vlen == sizeof v);
    int c = socket(AF_UNIX, SOCK_DGRAM, 0);
    connect_to(c, "cred-server", 0);
    send(c, "x", 1, 0);
    struct got g = recv_creds(srv, 256, 0);
    check("without SO_PASSCRED no credentials arrive", g.n == 1 && !g.has_cred && !g.flags);

    setsockopt(srv, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    vlen = sizeof v;
    check("getsockopt reports SO_PASSCRED", getsockopt(srv, SOL_SOCKET, SO_PASSCRED, &v, &vlen) == 0 && v == 1);
    send(c, "x", 1, 0);
    g = recv_creds(srv, 256, 0);
    check("with SO_PASSCRED every message carries the sender's credentials", g.n == 1 && g.has_cred && is_own(&g.cred));
    send(c, "x", 1, 0);
    g = recv_creds(srv, 0, 0);
    check("no control buffer: MSG_CTRUNC", g.n == 1 && (g.flags & MSG_CTRUNC));

    pid_t child = fork();
    if (child == 0) {
        int k = socket(AF_UNIX, SOCK_DGRAM, 0);
        _exit(send_to(k, "k", 1, 0, "cred-server", 0) == 1 ? 0 : 1);
    }
    waitpid(child, NULL, 0);
    g = recv_creds(srv, 256, 0);
    check("a child's message carries the child's pid", g.has_cred && g.cred.pid == child && g.cred.uid == getuid());

    struct ucred mine = {getpid(), getuid(), getgid()};
    check("sending one's own credentials explicitly", send_creds(c, &mine, -1) == 1);
    g = recv_creds(srv, 256, 0);
    check("they arrive", g.has_cred && is_own(&g.cred));
    int pp[2];
    pipe(pp);
    check("credentials and a file in one message", send_creds(c, &mine, pp[1]) == 1);
    g = recv_creds(srv, 256, 0);
    check("both arrive, credentials first", g.has_cred && is_own(&g.cred) && g.fd >= 0 && g.order == 1);
    check("the file works", write(g.fd, "p", 1) == 1 && read(pp[0], &one, 1) == 1);
    close(g.fd);
    check("a file alone still gets credentials added", send_creds(c, NULL, pp[1]) == 1);
    g = recv_creds(srv, 256, 0);
    check("both arrive", g.has_cred && is_own(&g.cred) && g.fd >= 0);
    close(g.fd);
    send_creds(c, NULL, pp[1]);
    g = recv_creds(srv, CMSG_SPACE(sizeof(struct ucred)), 0);
    check("room for the credentials only: MSG_CTRUNC, no file", g.has_cred && g.fd == -1 && (g.flags & MSG_CTRUNC));

    // Another live process (the sandbox's init has no parent to name).
    pid_t sleeper = fork();
    if (sleeper == 0) {
        pause();
        _exit(0);
    }
    struct ucred foreign = {sleeper, 1234, 4321};
    check("root may claim another pid, uid and gid", send_creds(c, &foreign, -1) == 1);
    g = recv_creds(srv, 256, 0);
    check("they arrive as claimed", g.has_cred && g.cred.pid == foreign.pid && g.cred.uid == 1234 && g.cred.gid == 4321);
    struct ucred bad = mine;
    bad.uid = -1;
    report_errno("uid -1 in SCM_CREDENTIALS", send_creds(c, &bad, -1), EINVAL);
    bad = mine;
    bad.pid = 999999;
    report_errno("a pid that does not exist", send_creds(c, &bad, -1), ESRCH);

    child = fork();
    if (child == 0) {
        // Without the capabilities only one's own ids pass.
        struct ucred own = {getpid(), getuid(), getgid()};
        struct ucred p = own, u = own, gg = own;
        p.pid = getppid();
        u.uid = 1234;
        gg.gid = 4321;
        int r0 = drop_caps(1 << CAP_SYS_ADMIN | 1 << CAP_SETUID | 1 << CAP_SETGID);
        int r1 = send_creds(c, &p, -1) == -1 && errno == EPERM;
        int r2 = send_creds(c, &u, -1) == -1 && errno == EPERM;
        int r3 = send_creds(c, &gg, -1) == -1 && errno == EPERM;
        int r4 = send_creds(c, &own, -1) == 1;
        _exit(r0 == 0 && r1 && r2 && r3 && r4 ? 0 : 1);
    }
    int status;
    waitpid(child, &status, 0);
    check("without CAP_SYS_ADMIN/SETUID/SETGID other ids are EPERM, one's own pass", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    g = recv_creds(srv, 256, 0);
    check("the child's own credentials arrived", g.has_cred && g.cred.pid == child);

    // A short SCM_CREDENTIALS is EINVAL.
    {
        union {
            char buf[CMSG_SPACE(sizeof(struct ucred))];
            struct cmsghdr align;
        } u;
        memset(&u, 0, sizeof u);
        struct cmsghdr *h = (struct cmsghdr *)u.buf;
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_CREDENTIALS;
        h->cmsg_len = CMSG_LEN(8);
        char byte = 'x';
        struct iovec iov = {&byte, 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
        report_errno("a short SCM_CREDENTIALS", sendmsg(c, &m, 0), EINVAL);
    }

    // Turned on after the message was queued, by neither side: no credentials were recorded.
    int late = bound(SOCK_DGRAM, "cred-late", 0);
    send_to(c, "l", 1, 0, "cred-late", 0);
    setsockopt(late, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    g = recv_creds(late, 256, 0);
    printf("credentials of a message queued before SO_PASSCRED: present %d, pid %d, uid %u, gid %u\n", g.has_cred, g.cred.pid, g.cred.uid, g.cred.gid);
    // The sender's SO_PASSCRED records them even if the receiver turns it on later.
    setsockopt(c, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    setsockopt(late, SOL_SOCKET, SO_PASSCRED, &zero, sizeof zero);
    send_to(c, "l", 1, 0, "cred-late", 0);
    setsockopt(late, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    g = recv_creds(late, 256, 0);
    check("a sender with SO_PASSCRED records its credentials", g.has_cred && is_own(&g.cred));
    close(late);

    // Streams: credentials per message, and reads do not merge different senders.
    int sp[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
    setsockopt(sp[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    send(sp[0], "ab", 2, 0);
    send_creds(sp[0], &foreign, -1);
    char buf[16];
    struct iovec iov = {buf, sizeof buf};
    union {
        char b[256];
        struct cmsghdr align;
    } u;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
    ssize_t n = recvmsg(sp[1], &m, 0);
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    struct ucred uc = {0};
    if (h && h->cmsg_type == SCM_CREDENTIALS) memcpy(&uc, CMSG_DATA(h), sizeof uc);
    check("a stream read stops where the credentials change", n == 2 && is_own(&uc));
    g = recv_creds(sp[1], 256, 0);
    check("the next read has the other credentials", g.n == 1 && g.has_cred && g.cred.uid == 1234);
    vlen = sizeof uc;
    check("SO_PEERCRED on a socket pair: the creator", getsockopt(sp[0], SOL_SOCKET, SO_PEERCRED, &uc, &vlen) == 0 && vlen == sizeof uc && uc.pid == getpid() && uc.uid == geteuid() && uc.gid == getegid());
    close(sp[0]);
    close(sp[1]);

    // An accepted socket has its listener's SO_PASSCRED from the connect on.
    int pl = bound(SOCK_STREAM, "cred-passing-listener", 0);
    listen(pl, 2);
    setsockopt(pl, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    int early = socket(AF_UNIX, SOCK_STREAM, 0);
    connect_to(early, "cred-passing-listener", 0);
    send(early, "e", 1, 0);
    int late_conn = socket(AF_UNIX, SOCK_STREAM, 0);
    connect_to(late_conn, "cred-passing-listener", 0);
    setsockopt(pl, SOL_SOCKET, SO_PASSCRED, &zero, sizeof zero);
    int ea = accept(pl, NULL, NULL), la = accept(pl, NULL, NULL);
    vlen = sizeof v;
    check("an accepted socket inherits the listener's SO_PASSCRED", getsockopt(ea, SOL_SOCKET, SO_PASSCRED, &v, &vlen) == 0 && v == 1);
    g = recv_creds(ea, 256, 0);
    check("bytes sent before accept carry credentials", g.n == 1 && g.has_cred && is_own(&g.cred));
    vlen = sizeof v;
    check("as the listener had it at connect", getsockopt(la, SOL_SOCKET, SO_PASSCRED, &v, &vlen) == 0 && v == 1);
    close(ea);
    close(la);
    close(early);
    close(late_conn);
    close(pl);

    int l = bound(SOCK_STREAM, "cred-listener", 0);
    listen(l, 1);
    child = fork();
    if (child == 0) {
        int k = socket(AF_UNIX, SOCK_STREAM, 0);
        struct ucred peer = {0};
        socklen_t plen = sizeof peer;
        int ok = connect_to(k, "cred-listener", 0) == 0 && getsockopt(k, SOL_SOCKET, SO_PEERCRED, &peer, &plen) == 0 && peer.pid == getppid();
        char b;
        read(k, &b, 1);
        _exit(ok ? 0 : 1);
    }
    int a = accept(l, NULL, NULL);
    vlen = sizeof uc;
    check("SO_PEERCRED on an accepted socket: the connecting process", getsockopt(a, SOL_SOCKET, SO_PEERCRED, &uc, &vlen) == 0 && uc.pid == child && uc.uid == geteuid());
    write(a, "x", 1);
    waitpid(child, &status, 0);
    check("SO_PEERCRED on the connecting socket: the listener's process", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(a);
    close(l);
    int u0 = socket(AF_UNIX, SOCK_DGRAM, 0);
    vlen = sizeof uc;
    memset(&uc, 0x55, sizeof uc);
    int r = getsockopt(u0, SOL_SOCKET, SO_PEERCRED, &uc, &vlen);
    printf("SO_PEERCRED unconnected: %d, pid %d, uid %u, gid %u\n", r, uc.pid, uc.uid, uc.gid);
    close(u0);
    kill(sleeper, SIGKILL);
    waitpid(sleeper, NULL, 0);
    close(pp[0]);
    close(pp[1]);
    close(c);
    close(srv);
}

int main(void) {
    signal(SIGPIPE, on_sigpipe);
    setvbuf(stdout, NULL, _IONBF, 0);
    snprintf(dir, sizeof dir, "/tmp/unix-dgram-%d", getpid());
    mkdir(dir, 0700);
    names_and_messages(0);
    names_and_messages(1);
    connected();
    reconnect();
    sizes_and_queues();
    autobind();
    credentials();
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') unlinkat(dirfd(d), e->d_name, 0);
    if (d) closedir(d);
    rmdir(dir);
    printf("%d failures\n", failures);
    return failures != 0;
}
