// Named AF_UNIX sockets: bind to a path (a socket node) or an abstract name,
// listen, connect from a forked child, accept(4), names on both ends, the
// listener's readiness, a reset for connections never accepted, and the errors.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static socklen_t addr_of(struct sockaddr_un *a, const char *path, int abstract) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (abstract) {
        memcpy(a->sun_path + 1, path, strlen(path));
        return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(path);
    }
    strcpy(a->sun_path, path);
    return sizeof *a;
}

static int serve(int type, const char *path, int abstract) {
    struct sockaddr_un a;
    socklen_t len = addr_of(&a, path, abstract);
    int s = socket(AF_UNIX, type, 0);
    if (bind(s, (struct sockaddr *)&a, len) != 0 || listen(s, 4) != 0) return -1;
    return s;
}

static int dial(int type, const char *path, int abstract) {
    struct sockaddr_un a;
    socklen_t len = addr_of(&a, path, abstract);
    int c = socket(AF_UNIX, type, 0);
    if (connect(c, (struct sockaddr *)&a, len) != 0) {
        close(c);
        return -1;
    }
    return c;
}

static void round_trip(const char *what, int type, const char *path, int abstract) {
    char name[128];
    int s = serve(type, path, abstract);
    snprintf(name, sizeof name, "%s: bind and listen", what);
    check(name, s >= 0);
    pid_t child = fork();
    if (child == 0) {
        int c = dial(type, path, abstract);
        char buf[32] = {0};
        if (c < 0 || write(c, "hello", 5) != 5 || read(c, buf, sizeof buf) != 5 || strcmp(buf, "HELLO")) _exit(1);
        _exit(0);
    }
    struct sockaddr_un peer;
    socklen_t plen = sizeof peer;
    int conn = accept(s, (struct sockaddr *)&peer, &plen);
    char buf[32] = {0};
    snprintf(name, sizeof name, "%s: accept, read what the client wrote", what);
    check(name, conn >= 0 && read(conn, buf, sizeof buf) == 5 && !strcmp(buf, "hello"));
    snprintf(name, sizeof name, "%s: an unbound client's address is the family alone", what);
    check(name, plen == sizeof(sa_family_t) && peer.sun_family == AF_UNIX);
    write(conn, "HELLO", 5);
    int st;
    waitpid(child, &st, 0);
    snprintf(name, sizeof name, "%s: the client got the reply", what);
    check(name, WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct sockaddr_un mine;
    socklen_t mlen = sizeof mine;
    getsockname(conn, (struct sockaddr *)&mine, &mlen);
    snprintf(name, sizeof name, "%s: the accepted socket is named like the listener", what);
    check(name, abstract ? (mine.sun_path[0] == 0 && !memcmp(mine.sun_path + 1, path, strlen(path))) : !strcmp(mine.sun_path, path));
    close(conn);
    close(s);
}

int main(void) {
    char path[64], other[64];
    snprintf(path, sizeof path, "/tmp/unix-socket-%d", getpid());
    snprintf(other, sizeof other, "/tmp/unix-socket-file-%d", getpid());
    round_trip("stream at a path", SOCK_STREAM, path, 0);
    struct stat st;
    check("the path is a socket node", stat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    errno = 0;
    check("opening a socket node is ENXIO", open(path, O_RDWR) == -1 && errno == ENXIO);
    errno = 0;
    check("connecting to a path nobody listens on is ECONNREFUSED", dial(SOCK_STREAM, path, 0) == -1 && errno == ECONNREFUSED);
    errno = 0;
    check("binding to an existing path is EADDRINUSE", serve(SOCK_STREAM, path, 0) == -1 && errno == EADDRINUSE);
    unlink(path);
    errno = 0;
    check("connecting to a missing path is ENOENT", dial(SOCK_STREAM, path, 0) == -1 && errno == ENOENT);
    close(open(other, O_CREAT | O_WRONLY, 0600));
    errno = 0;
    check("connecting to a regular file is ECONNREFUSED", dial(SOCK_STREAM, other, 0) == -1 && errno == ECONNREFUSED);
    unlink(other);

    char abstract_name[64];
    snprintf(abstract_name, sizeof abstract_name, "rvisor-test-%d", getpid());
    round_trip("stream at an abstract name", SOCK_STREAM, abstract_name, 1);
    round_trip("seqpacket at a path", SOCK_SEQPACKET, path, 0);
    unlink(path);

    int s = serve(SOCK_STREAM, path, 0);
    struct pollfd p = {s, POLLIN, 0};
    check("a listener with nothing pending is not readable", poll(&p, 1, 0) == 0);
    fcntl(s, F_SETFL, O_NONBLOCK);
    errno = 0;
    check("a non-blocking accept with nothing pending is EAGAIN", accept(s, NULL, NULL) == -1 && errno == EAGAIN);
    fcntl(s, F_SETFL, 0);
    int c = dial(SOCK_STREAM, path, 0);
    check("a pending connection makes it readable", c >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLIN));
    struct sockaddr_un peer;
    socklen_t plen = sizeof peer;
    check("the client's peer is the listener's path", getpeername(c, (struct sockaddr *)&peer, &plen) == 0 && !strcmp(peer.sun_path, path));
    int a = accept4(s, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    check("accept4 flags", a >= 0 && (fcntl(a, F_GETFL) & O_NONBLOCK) && (fcntl(a, F_GETFD) & FD_CLOEXEC));
    close(a);
    char buf[8];
    check("the client sees EOF once the accepted end closes", read(c, buf, sizeof buf) == 0);
    close(c);
    int pending = dial(SOCK_STREAM, path, 0);
    close(s);
    errno = 0;
    check("a connection never accepted is reset once the listener closes", pending >= 0 && read(pending, buf, sizeof buf) == -1 && errno == ECONNRESET);
    unlink(path);

    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    errno = 0;
    check("listen on an unbound socket is EINVAL", listen(u, 1) == -1 && errno == EINVAL);
    errno = 0;
    check("read on an unconnected socket is ENOTCONN or EINVAL", read(u, buf, 1) == -1 && (errno == ENOTCONN || errno == EINVAL));
    errno = 0;
    plen = sizeof peer;
    check("getpeername unconnected is ENOTCONN", getpeername(u, (struct sockaddr *)&peer, &plen) == -1 && errno == ENOTCONN);
    printf("%d failures\n", failures);
    return failures != 0;
}
