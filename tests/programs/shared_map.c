// MAP_SHARED mappings of files in memory (tmpfs, POSIX shm, memfd, files created
// in the root overlay): the mapping and the file are the same bytes, across
// mappings, fork and separately opened descriptors; private mappings copy on
// write; past the end of the file is SIGBUS; seals and open modes are enforced.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static sigjmp_buf jump;
static volatile int bus_code;

static void on_bus(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)ctx;
    bus_code = si->si_code;
    siglongjmp(jump, 1);
}

// One file's checks: fd is an empty read-write file, `path` its name (or NULL).
static void shared_file(const char *what, int fd, const char *path) {
    char name[128], buf[64] = {0};
    ftruncate(fd, 8192);
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    snprintf(name, sizeof name, "%s: mmap shared read-write", what);
    check(name, m != MAP_FAILED);
    if (m == MAP_FAILED) return;
    memcpy(m + 4090, "across pages", 12);
    pread(fd, buf, 12, 4090);
    snprintf(name, sizeof name, "%s: a store through the mapping is in the file", what);
    check(name, !memcmp(buf, "across pages", 12));
    pwrite(fd, "written", 7, 100);
    snprintf(name, sizeof name, "%s: a write(2) shows in the mapping", what);
    check(name, !memcmp(m + 100, "written", 7));
    char *m2 = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 4096);
    snprintf(name, sizeof name, "%s: a second mapping at an offset aliases the first", what);
    check(name, m2 != MAP_FAILED && !memcmp(m2, " pages", 6));

    pid_t c = fork();
    if (c == 0) {
        m[0] = 'C';
        _exit(0);
    }
    waitpid(c, NULL, 0);
    snprintf(name, sizeof name, "%s: a forked child's store reaches the parent", what);
    check(name, m[0] == 'C');
    if (path) {
        c = fork();
        if (c == 0) {
            int f = open(path, O_RDWR);
            char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
            if (p == MAP_FAILED) _exit(1);
            p[1] = 'D';
            _exit(0);
        }
        int st;
        waitpid(c, &st, 0);
        snprintf(name, sizeof name, "%s: a store through another open of the file reaches this mapping", what);
        check(name, WIFEXITED(st) && WEXITSTATUS(st) == 0 && m[1] == 'D');
    }
    snprintf(name, sizeof name, "%s: msync", what);
    check(name, msync(m, 8192, MS_SYNC) == 0);

    char *priv = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    snprintf(name, sizeof name, "%s: a private mapping starts with the file", what);
    check(name, priv != MAP_FAILED && priv[0] == 'C' && !memcmp(priv + 100, "written", 7));
    priv[0] = 'P';
    snprintf(name, sizeof name, "%s: a private store stays private", what);
    check(name, m[0] == 'C');
    madvise(priv, 4096, MADV_DONTNEED);
    snprintf(name, sizeof name, "%s: MADV_DONTNEED brings the file's byte back", what);
    check(name, priv[0] == 'C');

    // Past the end of the file (page-rounded) is SIGBUS; growing the file makes it reachable.
    char *big = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    bus_code = 0;
    volatile char got = 0;
    if (sigsetjmp(jump, 1) == 0) got = big[3 * 4096];
    snprintf(name, sizeof name, "%s: a read past the end is SIGBUS BUS_ADRERR", what);
    check(name, bus_code == BUS_ADRERR);
    ftruncate(fd, 4 * 4096);
    bus_code = 0;
    if (sigsetjmp(jump, 1) == 0) got = big[3 * 4096];
    snprintf(name, sizeof name, "%s: after growing the file it reads zeros", what);
    check(name, bus_code == 0 && got == 0);
    big[3 * 4096] = 'G';
    pread(fd, buf, 1, 3 * 4096);
    snprintf(name, sizeof name, "%s: and a store there is in the file", what);
    check(name, buf[0] == 'G');
    munmap(m, 8192);
    munmap(m2, 4096);
    munmap(priv, 8192);
    munmap(big, 4 * 4096);
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_bus;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, NULL);
    char path[64];

    snprintf(path, sizeof path, "/tmp/shared_map.%d", getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    shared_file("tmpfs", fd, path);
    close(fd);
    unlink(path);

    snprintf(path, sizeof path, "/shared_map.%d", getpid());
    fd = shm_open(path, O_RDWR | O_CREAT, 0600);
    char shm_path[80];
    snprintf(shm_path, sizeof shm_path, "/dev/shm%s", path);
    shared_file("shm", fd, shm_path);
    close(fd);
    shm_unlink(path);

    fd = memfd_create("shared_map", MFD_ALLOW_SEALING);
    shared_file("memfd", fd, NULL);

    snprintf(path, sizeof path, "/var/tmp/shared_map.%d", getpid());
    int root_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    shared_file("root overlay", root_fd, path);
    close(root_fd);
    unlink(path);

    // Seals: no new shared writable mapping of a write-sealed memfd; read-only is fine.
    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE);
    errno = 0;
    check("write-sealed memfd: shared writable mmap is EPERM", mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EPERM);
    check("write-sealed memfd: shared read-only mmap works", mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) != MAP_FAILED);
    check("write-sealed memfd: private writable mmap works", mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0) != MAP_FAILED);
    close(fd);

    // A file opened read-only: no shared writable mapping, and no mprotect to one.
    snprintf(path, sizeof path, "/tmp/shared_map_ro.%d", getpid());
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ftruncate(fd, 4096);
    int ro = open(path, O_RDONLY);
    errno = 0;
    check("read-only fd: shared writable mmap is EACCES", mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED && errno == EACCES);
    char *r = mmap(NULL, 4096, PROT_READ, MAP_SHARED, ro, 0);
    errno = 0;
    check("read-only fd: mprotect of the shared mapping to writable is EACCES", mprotect(r, 4096, PROT_READ | PROT_WRITE) == -1 && errno == EACCES);
    pwrite(fd, "late", 4, 0);
    check("read-only shared mapping sees later writes", !memcmp(r, "late", 4));
    unlink(path);

    // A host file's read-only shared mapping shows its bytes.
    int host = open("/etc/passwd", O_RDONLY);
    char want[16] = {0};
    pread(host, want, 8, 0);
    char *h = mmap(NULL, 4096, PROT_READ, MAP_SHARED, host, 0);
    check("host file: shared read-only mapping shows the file", h != MAP_FAILED && !memcmp(h, want, 8));

    printf("%d failures\n", failures);
    return failures != 0;
}
