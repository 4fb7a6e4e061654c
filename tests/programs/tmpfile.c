// open(O_TMPFILE): an unnamed file in a directory, named later by linkat (by the
// descriptor with AT_EMPTY_PATH, or through /proc/self/fd), unless O_EXCL.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *err(int r) { return r >= 0 ? "ok" : strerrorname_np(errno); }

int main(void) {
    umask(0);
    char a[64], b[64], fdpath[64], link[128] = {0}, buf[16] = {0};
    snprintf(a, sizeof a, "/tmp/tmpfile-a-%d", getpid());
    snprintf(b, sizeof b, "/tmp/tmpfile-b-%d", getpid());
    int fd = open("/tmp", O_TMPFILE | O_RDWR, 0640);
    printf("O_TMPFILE: %s\n", err(fd));
    write(fd, "data", 4);
    struct stat st;
    fstat(fd, &st);
    printf("regular %d, nlink %lu, mode %o, size %lld\n", S_ISREG(st.st_mode), (unsigned long)st.st_nlink, st.st_mode & 0777, (long long)st.st_size);
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(fdpath, link, sizeof link - 1);
    printf("fd link is /tmp/#... (deleted): %s\n", n > 16 && strncmp(link, "/tmp/#", 6) == 0 && strcmp(link + n - 10, " (deleted)") == 0 ? "yes" : "no");

    printf("linkat AT_EMPTY_PATH: %s\n", err(linkat(fd, "", AT_FDCWD, a, AT_EMPTY_PATH)));
    printf("linkat via /proc/self/fd: %s\n", err(linkat(AT_FDCWD, fdpath, AT_FDCWD, b, AT_SYMLINK_FOLLOW)));
    fstat(fd, &st);
    printf("nlink now %lu\n", (unsigned long)st.st_nlink);
    int r = open(b, O_RDONLY);
    printf("content by name: %.*s\n", (int)read(r, buf, sizeof buf), buf);
    close(r);
    unlink(a);
    unlink(b);
    close(fd);

    int ex = open("/tmp", O_TMPFILE | O_WRONLY | O_EXCL, 0600);
    printf("O_EXCL open: %s, linkat: %s\n", err(ex), err(linkat(ex, "", AT_FDCWD, a, AT_EMPTY_PATH)));
    close(ex);
    printf("read-only O_TMPFILE: %s\n", err(open("/tmp", O_TMPFILE | O_RDONLY, 0600)));
    int reg = open(a, O_CREAT | O_WRONLY, 0600);
    close(reg);
    printf("O_TMPFILE on a file: %s\n", err(open(a, O_TMPFILE | O_RDWR, 0600)));
    unlink(a);
    int m = memfd_create("m", 0);
    printf("linkat of a memfd: %s\n", err(linkat(m, "", AT_FDCWD, a, AT_EMPTY_PATH)));
    return 0;
}
