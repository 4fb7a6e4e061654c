// Advisory locks between a parent and a forked child on a /tmp file: fcntl record
// locks (conflicts, F_GETLK, ranges, F_SETLKW waiting for an unlock), OFD locks and
// flock. The child is synchronised with waitpid only. Then when locks go: a
// description's flock and OFD locks with the description (not before: a child that
// inherited it keeps them; not after: a process ending without closing drops them),
// a process's record locks on any close of the file (dup2 over it, close-on-exec).
// Last, locks on files without a name: a pipe, the standard output.
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

static int flock_then_exit(void) {
    int fd = open(path, O_RDWR);
    struct flock ofd = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 1};
    return flock(fd, LOCK_EX) != 0 || fcntl(fd, F_OFD_SETLK, &ofd) != 0; /* exits holding both */
}

/* 0 if a fresh open file can take an exclusive flock now, else errno. */
static int flock_free(void) {
    int fd = open(path, O_RDWR);
    int r = flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
    close(fd);
    return r;
}

/* 0 if a fresh open file can take an OFD write lock on byte 100, else errno. */
static int ofd_free(void) {
    int fd = open(path, O_RDWR);
    struct flock ofd = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 1};
    int r = fcntl(fd, F_OFD_SETLK, &ofd) == 0 ? 0 : errno;
    close(fd);
    return r;
}

static int record_free(void) {
    int fd = open(path, O_RDWR);
    return lk(fd, F_SETLK, F_WRLCK, 0, 10) == 0 ? 0 : errno;
}

static void lifetimes(const char *self) {
    int code = child(flock_then_exit);
    printf("a child that exits holding flock and OFD locks took them: %d\n", code);
    printf("after it ended, flock is free: %s\n", strerror(flock_free()));
    printf("after it ended, the OFD lock is free: %s\n", strerror(ofd_free()));

    int fd = open(path, O_RDWR);
    printf("the parent flocks: %d\n", flock(fd, LOCK_EX | LOCK_NB));
    int go[2];
    pipe(go);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char b;
        close(go[1]);
        read(go[0], &b, 1); /* holds the inherited description until the parent says */
        _exit(0);
    }
    close(go[0]);
    close(fd);
    printf("the parent closed its flocked fd, a child still has it: flock is free: %s\n", strerror(flock_free()));
    close(go[1]);
    waitpid(c, NULL, 0);
    printf("the child ended too: flock is free: %s\n", strerror(flock_free()));

    int r = open(path, O_RDWR);
    lk(r, F_SETLK, F_WRLCK, 0, 10);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, r);
    printf("record lock after dup2 over its fd, another process locks: %s\n", strerror(child(record_free)));

    /* A child locks through a close-on-exec fd, then execs this program ("hold"),
       which says when it runs and waits for EOF: the exec closed the fd, so the
       lock is gone while the process lives on. */
    int ready[2], hold[2];
    pipe(ready);
    pipe(hold);
    fflush(stdout);
    c = fork();
    if (c == 0) {
        int l = open(path, O_RDWR | O_CLOEXEC);
        lk(l, F_SETLK, F_WRLCK, 0, 10);
        close(ready[0]);
        close(hold[1]);
        dup2(ready[1], 3);
        dup2(hold[0], 4);
        execl(self, self, "hold", (char *)NULL);
        _exit(127);
    }
    close(ready[1]);
    close(hold[0]);
    char b;
    read(ready[0], &b, 1);
    printf("record lock through a close-on-exec fd after exec, another process locks: %s\n", strerror(child(record_free)));
    close(hold[1]);
    waitpid(c, NULL, 0);
}

static int pipe_w;

static int probe_pipe(void) {
    return lk(pipe_w, F_SETLK, F_WRLCK, 0, 0) == 0 ? 0 : errno;
}

/* Files without a name have inodes too: a pipe, the standard output (make
   --output-sync locks it). */
static void unnamed(void) {
    int p[2];
    pipe(p);
    pipe_w = p[1];
    printf("record lock on a pipe = %d\n", lk(p[1], F_SETLK, F_WRLCK, 0, 0));
    printf("another process's lock on the pipe: %s\n", strerror(child(probe_pipe)));
    printf("flock on the pipe = %d\n", flock(p[0], LOCK_EX | LOCK_NB));
    close(p[0]);
    close(p[1]);
    fflush(stdout);
    printf("F_SETLKW on standard output = %d\n", lk(1, F_SETLKW, F_WRLCK, 0, 0));
    printf("unlock it = %d\n", lk(1, F_SETLK, F_UNLCK, 0, 0));
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "hold") == 0) {
        char b;
        write(3, "r", 1);
        read(4, &b, 1);
        return 0;
    }
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
    lifetimes(argv[0]);
    unnamed();
    struct flock ofd = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    printf("parent: OFD lock = %d\n", fcntl(fd, F_OFD_SETLK, &ofd));
    struct flock other = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    printf("parent: OFD lock on another open file conflicts: %s\n", fcntl(f2, F_OFD_SETLK, &other) == -1 && errno == EAGAIN ? "yes" : "no");
    unlink(path);
    return 0;
}
