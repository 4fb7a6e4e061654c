// splice, tee, vmsplice and sendfile into a pipe: the data, the offsets, and the
// errors Linux gives.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *err(long r) { return r >= 0 ? "ok" : strerrorname_np(errno); }

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    char path[64], out[64];
    snprintf(path, sizeof path, "/tmp/splice-in-%d", getpid());
    snprintf(out, sizeof out, "/tmp/splice-out-%d", getpid());
    static char data[10000], got[10000];
    for (int i = 0; i < (int)sizeof data; i++) data[i] = 'a' + i % 23;
    int f = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    write(f, data, sizeof data);
    int p[2];
    pipe(p);

    loff_t off = 100;
    printf("file to pipe: %zd\n", splice(f, &off, p[1], NULL, 5000, 0));
    printf("offset now %lld, file position %lld\n", (long long)off, (long long)lseek(f, 0, SEEK_CUR));
    ssize_t n = read(p[0], got, sizeof got);
    printf("pipe holds the slice: %s\n", n == 5000 && memcmp(got, data + 100, 5000) == 0 ? "yes" : "no");

    int o = open(out, O_CREAT | O_RDWR | O_TRUNC, 0600);
    write(p[1], "spliced!", 8);
    printf("pipe to file: %zd\n", splice(p[0], NULL, o, NULL, 100, 0));
    char buf[64] = {0};
    pread(o, buf, sizeof buf, 0);
    printf("file holds: %s\n", buf);

    int q[2];
    pipe(q);
    write(p[1], "teedata", 7);
    printf("tee: %zd\n", tee(p[0], q[1], 100, 0));
    memset(buf, 0, sizeof buf);
    read(q[0], buf, sizeof buf);
    printf("copy: %s\n", buf);
    memset(buf, 0, sizeof buf);
    read(p[0], buf, sizeof buf);
    printf("original still there: %s\n", buf);

    struct iovec iov[2] = {{"vm", 2}, {"splice", 6}};
    printf("vmsplice: %zd\n", vmsplice(p[1], iov, 2, 0));
    memset(buf, 0, sizeof buf);
    read(p[0], buf, sizeof buf);
    printf("read: %s\n", buf);

    off_t soff = 0;
    printf("sendfile into a pipe: %zd\n", sendfile(p[1], f, &soff, 3000));
    n = read(p[0], got, sizeof got);
    printf("pipe holds the file's start: %s\n", n == 3000 && memcmp(got, data, 3000) == 0 ? "yes" : "no");

    printf("file to file: %s\n", err(splice(f, NULL, o, NULL, 10, 0)));
    off = 0;
    printf("offset on the pipe side: %s\n", err(splice(p[0], &off, o, NULL, 10, 0)));
    printf("tee into the same pipe: %s\n", err(tee(p[0], p[1], 10, 0)));
    printf("tee from a file: %s\n", err(tee(f, p[1], 10, 0)));
    printf("bad flags: %s\n", err(splice(f, NULL, p[1], NULL, 10, 0x100)));
    printf("empty pipe, SPLICE_F_NONBLOCK: %s\n", err(splice(p[0], NULL, o, NULL, 10, SPLICE_F_NONBLOCK)));
    printf("zero length: %zd\n", splice(f, NULL, p[1], NULL, 0, 0));
    close(p[1]);
    printf("no writer left: %zd\n", splice(p[0], NULL, o, NULL, 10, 0));
    close(q[0]);
    printf("no reader left: %s\n", err(splice(f, NULL, q[1], NULL, 10, 0)));
    printf("vmsplice on a file: %s\n", err(vmsplice(f, iov, 1, 0)));
    unlink(path);
    unlink(out);
    return 0;
}
