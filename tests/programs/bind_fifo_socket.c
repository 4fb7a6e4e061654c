// FIFOs and AF_UNIX sockets in a directory given as the argument (a host
// directory bound read-write into the sandbox, where CI jobs make them in their
// workspace): mkfifo and mknod make FIFO and socket nodes the listing shows,
// a FIFO's ends meet through it (blocking opens wait for each other), and
// bind makes a socket node that connect finds, after a rename too, and that
// refuses connections once the socket is closed. Removes what it made.
#define _GNU_SOURCE
#include "check.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[2048];

static const char *at(const char *name) {
    static char buf[2][4096];
    static int which;
    which ^= 1;
    snprintf(buf[which], sizeof buf[which], "%s/%s", dir, name);
    return buf[which];
}

static struct sockaddr_un addr(const char *name) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", at(name));
    return a;
}

static int connect_to(const char *name, int type) {
    int s = socket(AF_UNIX, type, 0);
    struct sockaddr_un a = addr(name);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(s);
        errno = e;
        return -1;
    }
    return s;
}

static unsigned type_in_listing(const char *name) {
    DIR *d = opendir(dir);
    unsigned type = 255;
    for (struct dirent *e; d && (e = readdir(d));)
        if (!strcmp(e->d_name, name)) type = e->d_type;
    if (d) closedir(d);
    return type;
}

static void fifo(void) {
    check("mkfifo", mkfifo(at("fifo"), 0640) == 0);
    errno = 0;
    check("mkfifo of an existing name is EEXIST", mkfifo(at("fifo"), 0640) < 0 && errno == EEXIST);
    struct stat st;
    check("a FIFO, mode 0640", lstat(at("fifo"), &st) == 0 && S_ISFIFO(st.st_mode) && (st.st_mode & 07777) == 0640);
    check("listed as DT_FIFO", type_in_listing("fifo") == DT_FIFO);
    errno = 0;
    check("a write-only non-blocking open without a reader is ENXIO", open(at("fifo"), O_WRONLY | O_NONBLOCK) < 0 && errno == ENXIO);

    pid_t child = fork();
    if (child == 0) {
        int w = open(at("fifo"), O_WRONLY);
        _exit(w < 0 || write(w, "through the fifo", 16) != 16);
    }
    int r = open(at("fifo"), O_RDONLY);
    char buf[64] = {0};
    check("the reader's open waits for the writer", r >= 0);
    ssize_t n = 0, got;
    while ((got = read(r, buf + n, sizeof buf - 1 - n)) > 0) n += got;
    check("what the writer wrote comes out, then EOF", n == 16 && !strcmp(buf, "through the fifo") && got == 0);
    close(r);
    int status;
    check("the writer wrote", waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);

    int rw = open(at("fifo"), O_RDWR);
    check("O_RDWR opens both ends", rw >= 0 && write(rw, "x", 1) == 1 && read(rw, buf, 1) == 1 && buf[0] == 'x');
    close(rw);

    check("mknod S_IFIFO", mknod(at("node"), S_IFIFO | 0600, 0) == 0 && lstat(at("node"), &st) == 0 && S_ISFIFO(st.st_mode));
    check("rename of a FIFO", rename(at("node"), at("node2")) == 0 && lstat(at("node2"), &st) == 0 && S_ISFIFO(st.st_mode));
    check("unlink of the FIFOs", unlink(at("fifo")) == 0 && unlink(at("node2")) == 0 && type_in_listing("fifo") == 255);
}

static void stream_socket(void) {
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = addr("sock");
    check("bind", bind(l, (struct sockaddr *)&a, sizeof a) == 0);
    check("listen", listen(l, 4) == 0);
    struct stat st;
    check("a socket node", lstat(at("sock"), &st) == 0 && S_ISSOCK(st.st_mode));
    check("listed as DT_SOCK", type_in_listing("sock") == DT_SOCK);
    int again = socket(AF_UNIX, SOCK_STREAM, 0);
    errno = 0;
    check("a second bind to the name is EADDRINUSE", bind(again, (struct sockaddr *)&a, sizeof a) < 0 && errno == EADDRINUSE);
    close(again);

    pid_t child = fork();
    if (child == 0) {
        int c = connect_to("sock", SOCK_STREAM);
        char b[8] = {0};
        _exit(c < 0 || write(c, "ping", 4) != 4 || read(c, b, 4) != 4 || strcmp(b, "pong") != 0);
    }
    int s = accept(l, NULL, NULL);
    char buf[8] = {0};
    check("a child connects through the node", s >= 0 && read(s, buf, 4) == 4 && !strcmp(buf, "ping") && write(s, "pong", 4) == 4);
    close(s);
    int status;
    check("the child got the reply", waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);

    check("rename of the socket node", rename(at("sock"), at("sock2")) == 0);
    int c = connect_to("sock2", SOCK_STREAM);
    check("connect through the new name", c >= 0);
    close(c);
    errno = 0;
    check("a datagram socket there is EPROTOTYPE", connect_to("sock2", SOCK_DGRAM) < 0 && errno == EPROTOTYPE);
    close(l);
    errno = 0;
    check("once the socket is closed, ECONNREFUSED", connect_to("sock2", SOCK_STREAM) < 0 && errno == ECONNREFUSED);
    check("unlink of the socket node", unlink(at("sock2")) == 0);

    check("mknod S_IFSOCK", mknod(at("plain"), S_IFSOCK | 0600, 0) == 0 && lstat(at("plain"), &st) == 0 && S_ISSOCK(st.st_mode));
    errno = 0;
    check("a node no socket is bound to is ECONNREFUSED", connect_to("plain", SOCK_STREAM) < 0 && errno == ECONNREFUSED);
    unlink(at("plain"));
}

static void datagram_socket(void) {
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a = addr("dgram");
    check("bind of a datagram socket", bind(d, (struct sockaddr *)&a, sizeof a) == 0);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    check("sendto the node", sendto(s, "dgram", 5, 0, (struct sockaddr *)&a, sizeof a) == 5);
    char buf[8] = {0};
    check("received", recv(d, buf, sizeof buf, 0) == 5 && !strcmp(buf, "dgram"));
    close(s);
    close(d);
    unlink(at("dgram"));
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    snprintf(dir, sizeof dir, "%s", argv[1]);
    umask(022);
    fifo();
    stream_socket();
    datagram_socket();
    printf("%d failures\n", failures);
    if (!failures) printf("all ok\n");
    return failures != 0;
}
