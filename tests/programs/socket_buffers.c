// SO_SNDBUF and SO_RCVBUF: what is set reads back doubled (no less than Linux's
// minimum), and it bounds what a connection holds: an AF_UNIX stream its writer's
// send buffer (the reader's receive buffer plays no part), a TCP connection the
// writer's send buffer and the reader's window; an accepted TCP socket has its
// listener's. Raising the send buffer lets a blocked writer go on. (CPython's
// test_asyncio.test_sendfile closes a peer after 1 KiB with 4 KiB buffers, and
// expects the file not to have gone out whole.) TCP sockets report Linux's
// defaults until set (tcp_wmem[1] and tcp_rmem[1], the send buffer grown to
// tcp_wmem[2] once connected over loopback), yet hold as much as before.
// An AF_UNIX stream's writer queues sk_buffs while what they cost (SIOCOUTQ,
// 768 bytes at least) is below its send buffer, each at most half of it less
// 64 bytes; it polls writable once they cost at most a quarter of it. A piece
// partly read still costs all of it; a reader's close drops them.
// Every socket has SO_RCVLOWAT (1 until set; 0 is 1, a negative value
// INT_MAX; TCP's at most half of tcp_rmem[2], and it grows a receive buffer
// not set to twice it) and reads SO_SNDLOWAT as 1 (setting it is
// ENOPROTOOPT); SO_SNDBUFFORCE and SO_RCVBUFFORCE take CAP_NET_ADMIN and
// pass net.core.wmem_max and rmem_max. A TCP listener has no queues to ask
// about (EINVAL). The sizes agree with /proc/sys/net's core/{w,r}mem_default
// and _max and ipv4/tcp_{w,r}mem.
#define _GNU_SOURCE
#include "check.h"
#include "sockopt.h"
#include "timing.h"
#include "scm.h"
#include "tcp_pair.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sockios.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];

// Reads what is queued, without blocking.
static long drain(int fd) {
    long n = 0;
    ssize_t r;
    while ((r = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        n += r;
    return n;
}

// Reads `n` bytes as they come, without blocking (loopback TCP delivers a
// little later): what it read.
static long drain_all(int fd, long n) {
    long got = 0;
    for (int i = 0; i < 1000 && got < n; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 1000);
        got += drain(fd);
    }
    return got;
}

static int blocked_fd;
static ssize_t blocked_wrote;
static pid_t writer_tid;

static void *blocked_writer(void *arg) {
    (void)arg;
    __atomic_store_n(&writer_tid, gettid(), __ATOMIC_SEQ_CST);
    blocked_wrote = write(blocked_fd, buf, 1000);
    return NULL;
}

// Sends file descriptor `fd` with `len` bytes, without blocking.
static ssize_t send_fd(int s, int fd, size_t len) {
    return send_with_fd(s, buf, len, fd, MSG_DONTWAIT);
}

// What an AF_UNIX stream's sk_buffs cost its writer's send buffer.
static void unix_stream_sk_buffs(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int sndbuf = get(sv[0], SO_SNDBUF);
    int n = 0;
    while (send(sv[0], buf, 100, MSG_DONTWAIT) == 100)
        n++;
    int outq = ioctl_int(sv[0], SIOCOUTQ);
    check("a unix stream's small writes cost more than their bytes", errno == EAGAIN && n > sndbuf / 1024 && n <= sndbuf / 768 + 1);
    check("SIOCOUTQ counts their cost, up to a piece past the send buffer", outq >= sndbuf && outq < sndbuf + 1024);
    check("SIOCINQ counts their bytes", ioctl_int(sv[1], SIOCINQ) == n * 100);
    // Read piece by piece: writable exactly while at most a quarter is left.
    int wrong = 0, waited = 0;
    for (int i = 0; i < n; i++) {
        int left = ioctl_int(sv[0], SIOCOUTQ);
        wrong += writable(sv[0]) != (left * 4 < sndbuf);
        waited += !writable(sv[0]);
        recv(sv[1], buf, 100, MSG_DONTWAIT);
    }
    check("a unix stream polls writable once at most a quarter of its send buffer is taken", wrong == 0 && waited > n / 2);
    check("all read, SIOCOUTQ is 0", ioctl_int(sv[0], SIOCOUTQ) == 0);

    // A write is cut into pieces of half the send buffer less 64 bytes; the
    // one that passes the send buffer is the last.
    set(sv[0], SO_SNDBUF, 4096);
    check("a large write into a small send buffer takes two pieces", send(sv[0], buf, 65536, MSG_DONTWAIT) == 2 * (8192 / 2 - 64));
    outq = ioctl_int(sv[0], SIOCOUTQ);
    check("which cost more than their bytes", outq > 8192 && outq < 8192 + 4096);
    recv(sv[1], buf, 10, 0);
    check("a piece partly read costs all it did", ioctl_int(sv[0], SIOCOUTQ) == outq);
    recv(sv[1], buf, 8192 / 2 - 64 - 10, 0);
    check("a piece read whole costs nothing", ioctl_int(sv[0], SIOCOUTQ) < outq);
    int one = ioctl_int(sv[0], SIOCOUTQ);
    check("an OOB byte is a piece of its own", send(sv[0], buf, 1, MSG_OOB) == 1 && ioctl_int(sv[0], SIOCOUTQ) > one);
    close(sv[1]);
    check("the reader's close drops what it had not read", ioctl_int(sv[0], SIOCOUTQ) == 0 && writable(sv[0]));
    struct pollfd p = {.fd = sv[0], .events = POLLIN | POLLOUT};
    check("and hangs the writer up", poll(&p, 1, 0) == 1 && (p.revents & POLLHUP));
    close(sv[0]);

    // Files without bytes go nowhere.
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    check("a file with no bytes sends nothing", send_fd(sv[0], 1, 0) == 0 && recv(sv[1], buf, 10, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    shutdown(sv[0], SHUT_WR);
    check("no bytes on a stream shut down for writing: EPIPE", send(sv[0], buf, 0, MSG_NOSIGNAL) == -1 && errno == EPIPE);
    close(sv[0]);
    close(sv[1]);
}

static int has_net_admin(void) {
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2];
    return syscall(SYS_capget, &h, d) == 0 && (d[0].effective & (1u << CAP_NET_ADMIN));
}

// The generic options every family answers alike.
static void generic_options(void) {
    const struct { const char *name; int domain, type; } kinds[] = {
        {"unix stream", AF_UNIX, SOCK_STREAM}, {"unix datagram", AF_UNIX, SOCK_DGRAM},
        {"TCP", AF_INET, SOCK_STREAM}, {"UDP", AF_INET, SOCK_DGRAM},
    };
    int admin = has_net_admin();
    char what[128];
    for (unsigned i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        int fd = socket(kinds[i].domain, kinds[i].type, 0);
        int tcp = kinds[i].domain == AF_INET && kinds[i].type == SOCK_STREAM;
        snprintf(what, sizeof what, "%s: SO_RCVLOWAT and SO_SNDLOWAT read 1", kinds[i].name);
        check(what, get(fd, SO_RCVLOWAT) == 1 && get(fd, SO_SNDLOWAT) == 1);
        set(fd, SO_RCVLOWAT, 0);
        snprintf(what, sizeof what, "%s: SO_RCVLOWAT 0 is 1", kinds[i].name);
        check(what, get(fd, SO_RCVLOWAT) == 1);
        set(fd, SO_RCVLOWAT, 100);
        snprintf(what, sizeof what, "%s: SO_RCVLOWAT reads back", kinds[i].name);
        check(what, get(fd, SO_RCVLOWAT) == 100);
        set(fd, SO_RCVLOWAT, -5);
        snprintf(what, sizeof what, "%s: a negative SO_RCVLOWAT is the most it can be", kinds[i].name);
        check(what, get(fd, SO_RCVLOWAT) == (tcp ? 16 << 20 : 0x7fffffff));
        int five = 5;
        errno = 0;
        snprintf(what, sizeof what, "%s: SO_SNDLOWAT cannot be set", kinds[i].name);
        check(what, setsockopt(fd, SOL_SOCKET, SO_SNDLOWAT, &five, sizeof five) == -1 && errno == ENOPROTOOPT && get(fd, SO_SNDLOWAT) == 1);
        set(fd, SO_SNDBUFFORCE, 1000000);
        set(fd, SO_RCVBUFFORCE, -1);
        snprintf(what, sizeof what, "%s: SO_SNDBUFFORCE and SO_RCVBUFFORCE pass the caps, with CAP_NET_ADMIN", kinds[i].name);
        check(what, admin ? get(fd, SO_SNDBUF) == 2000000 && get(fd, SO_RCVBUF) == 2304 : get(fd, SO_SNDBUF) != 2000000);
        close(fd);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    check("a new TCP socket's queues are empty", ioctl_int(fd, SIOCINQ) == 0 && ioctl_int(fd, SIOCOUTQ) == 0);
    set(fd, SO_RCVLOWAT, 100000);
    check("TCP: SO_RCVLOWAT grows the receive buffer", get(fd, SO_RCVBUF) == 200000);
    set(fd, SO_RCVLOWAT, 1000);
    check("and does not shrink it", get(fd, SO_RCVBUF) == 200000);
    set(fd, SO_RCVBUF, 10000);
    set(fd, SO_RCVLOWAT, 100000);
    check("a receive buffer set bounds SO_RCVLOWAT to half of it", get(fd, SO_RCVLOWAT) == 10000 && get(fd, SO_RCVBUF) == 20000);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    listen(fd, 1);
    check("a TCP listener's SIOCINQ and SIOCOUTQ are EINVAL", ioctl_int(fd, SIOCINQ) == -EINVAL && ioctl_int(fd, SIOCOUTQ) == -EINVAL);
    close(fd);

    // Without CAP_NET_ADMIN the forced sizes are EPERM.
    pid_t child = fork();
    if (child == 0) {
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[2];
        syscall(SYS_capget, &h, d);
        d[0].effective &= ~(1u << CAP_NET_ADMIN);
        syscall(SYS_capset, &h, d);
        int s = socket(AF_UNIX, SOCK_STREAM, 0), v = 100000;
        int r = setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v) == -1 && errno == EPERM;
        r = r && setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) == -1 && errno == EPERM;
        _exit(r && get(s, SO_SNDBUF) == 212992 ? 0 : 1);
    }
    int status = -1;
    waitpid(child, &status, 0);
    check("SO_SNDBUFFORCE and SO_RCVBUFFORCE without CAP_NET_ADMIN: EPERM", status == 0);
}

// Up to three numbers of the sysctl /proc/sys/net/`name` (-1 for each missing).
static void sysctl(const char *name, int v[3]) {
    char path[128];
    snprintf(path, sizeof path, "/proc/sys/net/%s", name);
    v[0] = v[1] = v[2] = -1;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fscanf(f, "%d %d %d", &v[0], &v[1], &v[2]) < 1) v[0] = -1;
    fclose(f);
}

// The sysctls the sizes come from, as the sockets report them: net.core's
// defaults and caps, net.ipv4.tcp_wmem and tcp_rmem (and somaxconn is there).
static void sysctls(void) {
    int wdef[3], wmax[3], rdef[3], rmax[3], somax[3], tw[3], tr[3];
    sysctl("core/wmem_default", wdef);
    sysctl("core/wmem_max", wmax);
    sysctl("core/rmem_default", rdef);
    sysctl("core/rmem_max", rmax);
    sysctl("core/somaxconn", somax);
    sysctl("ipv4/tcp_wmem", tw);
    sysctl("ipv4/tcp_rmem", tr);
    check("net.core's buffer sysctls and somaxconn read", wdef[0] > 0 && wmax[0] > 0 && rdef[0] > 0 && rmax[0] > 0 && somax[0] > 0);
    check("net.ipv4.tcp_wmem and tcp_rmem have three numbers", tw[0] > 0 && tw[2] >= tw[1] && tr[0] > 0 && tr[2] >= tr[1]);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    check("a UDP socket has wmem_default and rmem_default", get(u, SO_SNDBUF) == wdef[0] && get(u, SO_RCVBUF) == rdef[0]);
    set(u, SO_SNDBUF, 0x7fffffff);
    set(u, SO_RCVBUF, 0x7fffffff);
    check("set past wmem_max and rmem_max, twice them", get(u, SO_SNDBUF) == 2 * wmax[0] && get(u, SO_RCVBUF) == 2 * rmax[0]);
    close(u);
    int fd[2];
    tcp_pair(fd);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    check("a new TCP socket has tcp_wmem[1] and tcp_rmem[1]", get(t, SO_SNDBUF) == tw[1] && get(t, SO_RCVBUF) == tr[1]);
    check("a connected one's send buffer grew to tcp_wmem[2]", get(fd[0], SO_SNDBUF) == tw[2] && get(fd[1], SO_SNDBUF) == tw[2]);
    close(t);
    close(fd[0]);
    close(fd[1]);
}

int main(void) {
    unix_stream_sk_buffs();
    generic_options();
    sysctls();
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    set(sv[0], SO_SNDBUF, 0);
    set(sv[0], SO_RCVBUF, 0);
    check("the smallest send buffer", get(sv[0], SO_SNDBUF) == 4608);
    check("the smallest receive buffer", get(sv[0], SO_RCVBUF) == 2304);
    set(sv[0], SO_SNDBUF, 100000);
    set(sv[0], SO_RCVBUF, 2303);
    check("a send buffer set reads back doubled", get(sv[0], SO_SNDBUF) == 200000);
    check("a receive buffer set reads back doubled", get(sv[0], SO_RCVBUF) == 4606);

    set(sv[0], SO_SNDBUF, 4096);
    long n = fill_until_eagain(sv[0]);
    check("a small send buffer bounds a unix stream", n > 0 && n <= 8192);
    check("a full unix stream is not writable", !writable(sv[0]));
    check("the reader gets it all", drain(sv[1]) == n);
    check("an emptied unix stream is writable", writable(sv[0]));
    close(sv[0]);
    close(sv[1]);

    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    set(sv[1], SO_RCVBUF, 4096);
    n = fill_until_eagain(sv[0]);
    check("the reader's receive buffer does not bound a unix stream", n > 100000);
    check("the reader gets that too", drain(sv[1]) == n);
    close(sv[0]);
    close(sv[1]);

    // A writer blocked on a full stream goes on when its send buffer grows.
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    set(sv[0], SO_SNDBUF, 4096);
    fill_until_eagain(sv[0]);
    struct timeval limit = {.tv_sec = 10};
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    blocked_fd = sv[0];
    pthread_t th;
    pthread_create(&th, NULL, blocked_writer, NULL);
    while (!__atomic_load_n(&writer_tid, __ATOMIC_SEQ_CST) || task_state(getpid(), writer_tid) != 'S')
        sched_yield();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    set(sv[0], SO_SNDBUF, 65536);
    pthread_join(th, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    // Not at its timeout, which would also find the room.
    check("a larger send buffer wakes a blocked writer", blocked_wrote == 1000 && t1.tv_sec - t0.tv_sec < 5);
    close(sv[0]);
    close(sv[1]);

    int l = socket(AF_INET, SOCK_STREAM, 0);
    check("a new TCP socket reports tcp_wmem[1] and tcp_rmem[1]", get(l, SO_SNDBUF) == 16384 && get(l, SO_RCVBUF) == 131072);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 2);
    getsockname(l, (struct sockaddr *)&a, &al);
    check("so does a listener", get(l, SO_SNDBUF) == 16384 && get(l, SO_RCVBUF) == 131072);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (struct sockaddr *)&a, sizeof a);
    int s = accept(l, NULL, NULL);
    // Linux's tcp_sndbuf_expand: loopback's large segments take it to tcp_wmem[2].
    check("a connection's send buffer grows to tcp_wmem[2]", get(c, SO_SNDBUF) == 4194304 && get(s, SO_SNDBUF) == 4194304);
    check("its receive buffer starts at tcp_rmem[1]", get(c, SO_RCVBUF) == 131072 && get(s, SO_RCVBUF) == 131072);
    n = fill_until_eagain(c);
    check("default buffers hold as much as before", n >= 200000);
    check("and give it all", drain_all(s, n) == n);
    close(c);
    close(s);
    set(l, SO_RCVBUF, 4096);
    c = socket(AF_INET, SOCK_STREAM, 0);
    check("connect", connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    s = accept(l, NULL, NULL);
    check("an accepted socket has its listener's receive buffer", get(s, SO_RCVBUF) == 8192);
    check("and a send buffer that grew, not set", get(s, SO_SNDBUF) == 4194304);
    set(c, SO_SNDBUF, 4096);
    check("a connected socket's send buffer reads back", get(c, SO_SNDBUF) == 8192);
    n = fill_until_eagain(c);
    check("small buffers bound a TCP connection", n > 0 && n <= 32768);
    check("a full TCP connection is not writable", !writable(c));
    check("the TCP reader gets it all", drain_all(s, n) == n);
    close(c);
    // Unlike an AF_UNIX stream's, a TCP send of no bytes minds only its own side.
    check("the peer closed: EOF", recv(s, buf, 1, 0) == 0);
    check("and no bytes to it are no error", send(s, buf, 0, MSG_NOSIGNAL) == 0);
    shutdown(s, SHUT_WR);
    check("a TCP socket shut down for writing: EPIPE", send(s, buf, 0, MSG_NOSIGNAL) == -1 && errno == EPIPE);
    close(s);
    close(l);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
