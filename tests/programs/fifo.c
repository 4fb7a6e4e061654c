// Named FIFOs: mkfifo/mknod on tmpfs, the open rendezvous (a blocking reader waits
// for a writer and the other way round), O_NONBLOCK rules, O_RDWR, EINTR.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(int r) { return r >= 0 ? "ok" : strerrorname_np(errno); }
static void on_alarm(int s) { (void)s; }

int main(void) {
    char path[64], reg[64], link[128] = {0}, fdpath[64];
    snprintf(path, sizeof path, "/tmp/fifo-test-%d", getpid());
    snprintf(reg, sizeof reg, "/tmp/fifo-test-%d.reg", getpid());
    umask(0);
    printf("mkfifo: %s\n", err(mkfifo(path, 0640)));
    printf("again: %s\n", err(mkfifo(path, 0640)));
    struct stat st;
    stat(path, &st);
    printf("is a FIFO: %d, mode %o, size %lld\n", S_ISFIFO(st.st_mode), st.st_mode & 0777, (long long)st.st_size);

    printf("write-only non-blocking, no reader: %s\n", err(open(path, O_WRONLY | O_NONBLOCK)));
    int r = open(path, O_RDONLY | O_NONBLOCK);
    printf("read-only non-blocking: %s\n", err(r));
    int w = open(path, O_WRONLY | O_NONBLOCK);
    printf("write-only non-blocking with a reader: %s\n", err(w));
    char buf[64] = {0};
    write(w, "ping", 4);
    printf("read: %.*s\n", (int)read(r, buf, sizeof buf), buf);
    printf("empty, writer open: %s\n", err(read(r, buf, sizeof buf)));
    close(w);
    printf("empty, no writer: %zd\n", read(r, buf, sizeof buf));
    struct stat fst;
    fstat(r, &fst);
    printf("fstat is the FIFO's inode: %s\n", fst.st_ino == st.st_ino && S_ISFIFO(fst.st_mode) ? "yes" : "no");
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", r);
    readlink(fdpath, link, sizeof link - 1);
    printf("fd link is the path: %s\n", strcmp(link, path) == 0 ? "yes" : "no");
    close(r);

    int rw = open(path, O_RDWR);
    printf("O_RDWR does not block: %s\n", err(rw));
    close(rw);

    // The rendezvous, in both orders.
    for (int round = 0; round < 2; round++) {
        pid_t c = fork();
        if (c == 0) {
            int fd = open(path, round ? O_RDONLY : O_WRONLY);
            if (round) {
                char b[64] = {0};
                ssize_t n = read(fd, b, sizeof b - 1);
                _exit(n == 16 && memcmp(b, "hello from paren", 16) == 0 ? 0 : 1);
            }
            write(fd, "hello from child", 16);
            _exit(0);
        }
        int fd = open(path, round ? O_WRONLY : O_RDONLY);
        if (round) {
            write(fd, "hello from paren", 16);
        } else {
            ssize_t n = read(fd, buf, sizeof buf);
            printf("reader got: %.*s\n", (int)n, buf);
            printf("then EOF: %zd\n", read(fd, buf, sizeof buf));
        }
        close(fd);
        int status;
        waitpid(c, &status, 0);
        printf("round %d child status: %d\n", round, WEXITSTATUS(status));
    }

    // A blocked open is interrupted by a signal without SA_RESTART.
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
    printf("blocked open, then a signal: %s\n", err(open(path, O_RDONLY)));

    printf("mknod S_IFREG: %s\n", err(mknod(reg, S_IFREG | 0600, 0)));
    stat(reg, &st);
    printf("regular: %d\n", S_ISREG(st.st_mode));
    printf("mknod of a bad type: %s\n", err(mknod(reg, 0170000 | 0600, 0)));
    printf("mknod S_IFIFO over a file: %s\n", err(mknod(reg, S_IFIFO | 0600, 0)));
    unlink(reg);
    printf("unlink: %s\n", err(unlink(path)));
    return 0;
}
