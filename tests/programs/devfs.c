// /dev: the memory-like character devices, their numbers, the standard-stream
// links into /proc/self/fd, the tmpfs on /dev/shm, and which of them map (only
// /dev/zero: private anonymous or shared memory). Prints properties, not
// values, so the output is the same natively and in the sandbox. Reads its stdin
// through /dev/stdin: run it with "stdin data\n" on stdin.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static void check_dev(const char *path, unsigned maj, unsigned min) {
    struct stat st;
    char what[128];
    snprintf(what, sizeof what, "%s is a character device %u:%u", path, maj, min);
    check(what, stat(path, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == maj && minor(st.st_rdev) == min);
}

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static int read_link_is(const char *path, const char *want) {
    char buf[256];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0) return 0;
    buf[n] = 0;
    return !strcmp(buf, want);
}

int main(void) {
    check_dev("/dev/null", 1, 3);
    check_dev("/dev/zero", 1, 5);
    check_dev("/dev/full", 1, 7);
    check_dev("/dev/random", 1, 8);
    check_dev("/dev/urandom", 1, 9);
    check_dev("/dev/tty", 5, 0);

    static unsigned char buf[1 << 20];

    int null = open("/dev/null", O_RDWR);
    check("open /dev/null", null >= 0);
    check("read /dev/null gives 0 bytes", read(null, buf, sizeof buf) == 0);
    check("write /dev/null swallows everything", write(null, buf, 12345) == 12345);
    check("lseek /dev/null gives 0", lseek(null, 100, SEEK_SET) == 0);
    check("pread /dev/null gives 0 bytes", pread(null, buf, 10, 5) == 0);
    close(null);

    int zero = open("/dev/zero", O_RDWR);
    memset(buf, 0xaa, sizeof buf);
    check("read 1 MiB of /dev/zero", read(zero, buf, sizeof buf) == (ssize_t)sizeof buf);
    check("... all zeros", all_zero(buf, sizeof buf));
    memset(buf, 0xaa, 300);
    struct iovec iov[3] = {{buf, 100}, {buf + 100, 0}, {buf + 150, 150}};
    check("readv /dev/zero", readv(zero, iov, 3) == 250);
    check("... zeros where asked, untouched between", all_zero(buf, 100) && buf[120] == 0xaa && all_zero(buf + 150, 150));
    check("write /dev/zero swallows everything", write(zero, buf, 4096) == 4096);
    errno = 0;
    void *volatile nowhere = NULL;
    check("read /dev/zero into NULL is EFAULT", read(zero, nowhere, 10) == -1 && errno == EFAULT);
    check("read /dev/zero of 0 bytes into NULL is 0", read(zero, nowhere, 0) == 0);
    close(zero);

    int full = open("/dev/full", O_RDWR);
    errno = 0;
    check("write /dev/full is ENOSPC", write(full, "x", 1) == -1 && errno == ENOSPC);
    memset(buf, 1, 64);
    check("read /dev/full gives zeros", read(full, buf, 64) == 64 && all_zero(buf, 64));
    close(full);

    for (int i = 0; i < 2; i++) {
        const char *path = i ? "/dev/random" : "/dev/urandom";
        char what[64];
        int fd = open(path, O_RDONLY);
        unsigned char a[64] = {0}, b[64] = {0};
        snprintf(what, sizeof what, "read %s twice, different bytes", path);
        check(what, fd >= 0 && read(fd, a, sizeof a) == 64 && read(fd, b, sizeof b) == 64 && memcmp(a, b, 64) && !all_zero(a, 64));
        close(fd);
    }
    int ur = open("/dev/urandom", O_WRONLY);
    check("write /dev/urandom is accepted", ur >= 0 && write(ur, "entropy", 7) == 7);
    close(ur);

    check("/dev/fd -> /proc/self/fd", read_link_is("/dev/fd", "/proc/self/fd"));
    check("/dev/stdin -> /proc/self/fd/0", read_link_is("/dev/stdin", "/proc/self/fd/0"));
    check("/dev/stdout -> /proc/self/fd/1", read_link_is("/dev/stdout", "/proc/self/fd/1"));
    check("/dev/stderr -> /proc/self/fd/2", read_link_is("/dev/stderr", "/proc/self/fd/2"));

    // Opening the standard streams by name reaches the same pipes.
    int in = open("/dev/stdin", O_RDONLY);
    char line[64] = {0};
    ssize_t n = in >= 0 ? read(in, line, sizeof line - 1) : -1;
    check("open /dev/stdin and read the input", n == 11 && !strcmp(line, "stdin data\n"));
    close(in);
    fflush(stdout);
    int out = open("/dev/stdout", O_WRONLY);
    check("open /dev/stdout", out >= 0);
    fflush(stdout);
    if (out >= 0) {
        const char msg[] = "written through /dev/stdout\n";
        write(out, msg, sizeof msg - 1);
        close(out);
    }
    struct stat st;
    check("/dev/fd/1 reaches stdout", stat("/dev/fd/1", &st) == 0);

    // /dev/shm is a tmpfs where files can be made.
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/devfs-test-%d", getpid());
    int shm = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    check("create a file in /dev/shm", shm >= 0);
    check("write and read it back", write(shm, "shared", 6) == 6 && pread(shm, line, 6, 0) == 6 && !memcmp(line, "shared", 6));
    close(shm);
    check("unlink it", unlink(path) == 0);
    check("/dev/shm is sticky and world-writable", stat("/dev/shm", &st) == 0 && (st.st_mode & 07777) == 01777);

    zero = open("/dev/zero", O_RDWR);
    unsigned char *zp = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, zero, 0);
    check("mmap /dev/zero private: zeros, writable", zp != MAP_FAILED && all_zero(zp, 8192) && (zp[5] = 7) && zp[5] == 7);
    unsigned char *zs = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, zero, 0);
    check("mmap /dev/zero shared read-write", zs != MAP_FAILED && all_zero(zs, 4096));
    if (zs != MAP_FAILED) {
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            zs[0] = 9;
            _exit(0);
        }
        waitpid(child, NULL, 0);
        check("... shared with a forked child", zs[0] == 9);
    }
    close(zero);
    const char *unmappable[] = {"/dev/null", "/dev/full", "/dev/urandom", "/proc/self/status"};
    for (int i = 0; i < 4; i++) {
        int fd = open(unmappable[i], O_RDONLY);
        errno = 0;
        char what[64];
        snprintf(what, sizeof what, "mmap %s is ENODEV", unmappable[i]);
        check(what, mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED && errno == ENODEV);
        close(fd);
    }

    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("all ok\n");
    return 0;
}
