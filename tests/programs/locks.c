// Advisory locks between a parent and a forked child on a /tmp file: fcntl record
// locks (conflicts, F_GETLK, ranges, F_SETLKW waiting for an unlock), OFD locks and
// flock. The child is synchronised with waitpid only.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static int lk(int fd, int cmd, short type, off_t start, off_t len) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl);
}

static int child(int (*fn)(void)) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        int r = fn();
        fflush(stdout);
        _exit(r);
    }
    int st;
    waitpid(c, &st, 0);
    return WEXITSTATUS(st);
}

static const char *path = "/tmp/rvisor-locks-test";
static pid_t parent;

static int probe(void) {
    int fd = open(path, O_RDWR);
    int r1 = lk(fd, F_SETLK, F_WRLCK, 0, 10) == -1 && (errno == EAGAIN || errno == EACCES);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 1};
    fcntl(fd, F_GETLK, &fl);
    int r2 = fl.l_type == F_WRLCK && fl.l_pid == parent;
    printf("child: F_GETLK range start %ld len %ld\n", (long)fl.l_start, (long)fl.l_len);
    int r3 = lk(fd, F_SETLK, F_WRLCK, 10, 10) == 0;
    int r4 = lk(fd, F_SETLK, F_RDLCK, 0, 10) == -1;
    printf("child: conflicting F_SETLK refused: %s\n", r1 ? "yes" : "no");
    printf("child: F_GETLK names the parent's lock: %s\n", r2 ? "yes" : "no");
    printf("child: a disjoint range locks: %s\n", r3 ? "yes" : "no");
    printf("child: a read lock over a write lock is refused: %s\n", r4 ? "yes" : "no");
    int f2 = open(path, O_RDWR);
    printf("child: flock on its own open file while the parent holds one: %s\n", flock(f2, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK ? "EWOULDBLOCK" : "granted");
    return 0;
}

static int after(void) {
    int fd = open(path, O_RDWR);
    printf("child: after the parent unlocked, F_SETLKW = %d\n", lk(fd, F_SETLKW, F_WRLCK, 0, 10));
    return 0;
}

int main(void) {
    parent = getpid();
    unlink(path);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    write(fd, "0123456789abcdefghij", 20);
    printf("parent: write lock [0,10) = %d\n", lk(fd, F_SETLK, F_WRLCK, 0, 10));
    printf("parent: own overlapping lock = %d\n", lk(fd, F_SETLK, F_RDLCK, 2, 3));
    int f2 = open(path, O_RDWR);
    printf("parent: flock = %d\n", flock(f2, LOCK_EX));
    child(probe);
    lk(fd, F_SETLK, F_UNLCK, 0, 0);
    flock(f2, LOCK_UN);
    child(after);
    struct flock ofd = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    printf("parent: OFD lock = %d\n", fcntl(fd, F_OFD_SETLK, &ofd));
    struct flock other = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    printf("parent: OFD lock on another open file conflicts: %s\n", fcntl(f2, F_OFD_SETLK, &other) == -1 && errno == EAGAIN ? "yes" : "no");
    unlink(path);
    return 0;
}
