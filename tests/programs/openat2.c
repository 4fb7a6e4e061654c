// openat2's RESOLVE_* flags, enforced during the walk: BENEATH (no escape by
// "..", absolute paths or symlinks), IN_ROOT (the directory as root),
// NO_SYMLINKS, NO_MAGICLINKS, NO_XDEV, CACHED, and their errors.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int dirfd_;

static const char *try(int at, const char *path, unsigned long long resolve, unsigned long long flags) {
    struct open_how how = {.flags = flags, .mode = flags & O_CREAT ? 0600 : 0, .resolve = resolve};
    errno = 0;
    long fd = syscall(SYS_openat2, at, path, &how, sizeof how);
    if (fd >= 0) {
        close(fd);
        return "ok";
    }
    return strerrorname_np(errno);
}

static void show(const char *what, int at, const char *path, unsigned long long resolve) {
    printf("%-48s %s\n", what, try(at, path, resolve, O_RDONLY));
}

int main(void) {
    char dir[] = "/tmp/openat2-XXXXXX", p[256];
    mkdtemp(dir);
    snprintf(p, sizeof p, "%s/sub", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/sub/file", dir);
    close(open(p, O_CREAT | O_WRONLY, 0644));
    snprintf(p, sizeof p, "%s/abs", dir);
    symlink("/etc/passwd", p);
    snprintf(p, sizeof p, "%s/up", dir);
    symlink("..", p);
    snprintf(p, sizeof p, "%s/in", dir);
    symlink("sub/file", p);
    snprintf(p, sizeof p, "%s/sub/dotdot", dir);
    symlink("..", p);
    dirfd_ = open(dir, O_PATH | O_DIRECTORY);
    char outside[256];
    snprintf(outside, sizeof outside, "up/%s/sub/file", strrchr(dir, '/') + 1);

    show("BENEATH sub/file", dirfd_, "sub/file", RESOLVE_BENEATH);
    show("BENEATH ../x", dirfd_, "../x", RESOLVE_BENEATH);
    show("BENEATH /etc/passwd", dirfd_, "/etc/passwd", RESOLVE_BENEATH);
    show("BENEATH abs (an absolute symlink)", dirfd_, "abs", RESOLVE_BENEATH);
    show("BENEATH in (a symlink inside)", dirfd_, "in", RESOLVE_BENEATH);
    show("BENEATH sub/dotdot/sub/file", dirfd_, "sub/dotdot/sub/file", RESOLVE_BENEATH);
    show("BENEATH out through a symlink and back", dirfd_, outside, RESOLVE_BENEATH);
    show("IN_ROOT /sub/file", dirfd_, "/sub/file", RESOLVE_IN_ROOT);
    show("IN_ROOT abs (/etc/passwd inside the root)", dirfd_, "abs", RESOLVE_IN_ROOT);
    show("IN_ROOT ../../sub/file", dirfd_, "../../sub/file", RESOLVE_IN_ROOT);
    show("NO_SYMLINKS in", dirfd_, "in", RESOLVE_NO_SYMLINKS);
    show("NO_SYMLINKS sub/file", dirfd_, "sub/file", RESOLVE_NO_SYMLINKS);
    char magic[64];
    snprintf(magic, sizeof magic, "/proc/self/fd/%d/sub/file", dirfd_);
    show("a magic link, unrestricted", AT_FDCWD, magic, 0);
    show("NO_MAGICLINKS through a magic link", AT_FDCWD, magic, RESOLVE_NO_MAGICLINKS);
    show("NO_XDEV into /proc", AT_FDCWD, "/proc/self/status", RESOLVE_NO_XDEV);
    show("NO_XDEV sub/file", dirfd_, "sub/file", RESOLVE_NO_XDEV);
    show("BENEATH | IN_ROOT", dirfd_, "sub/file", RESOLVE_BENEATH | RESOLVE_IN_ROOT);
    show("an unknown resolve flag", dirfd_, "sub/file", 0x1000);
    printf("%-48s %s\n", "CACHED with O_CREAT", try(dirfd_, "new", RESOLVE_CACHED, O_CREAT | O_WRONLY));
    printf("%-48s %s\n", "BENEATH O_CREAT ../new", try(dirfd_, "../new", RESOLVE_BENEATH, O_CREAT | O_WRONLY));
    printf("%-48s %s\n", "IN_ROOT O_CREAT /created", try(dirfd_, "/created", RESOLVE_IN_ROOT, O_CREAT | O_WRONLY));
    snprintf(p, sizeof p, "%s/created", dir);
    printf("%-48s %s\n", "and it is in the directory", access(p, F_OK) == 0 ? "yes" : "no");

    check("BENEATH keeps the walk inside", !strcmp(try(dirfd_, "abs", RESOLVE_BENEATH, O_RDONLY), "EXDEV"));
    unlink(p);
    return failures != 0;
}
