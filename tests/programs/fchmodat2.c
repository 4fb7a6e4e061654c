// fchmodat2 (Linux 6.6): fchmodat with flags. Each call prints "what: ok" or
// its errno, then the modes that result; the sandbox must print what Linux
// prints.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

static void report(const char *what, long r) {
    printf("%s: %s\n", what, r < 0 ? errname(errno) : "ok");
}

static long fchmodat2(int dirfd, const char *path, mode_t mode, int flags) {
    return syscall(SYS_fchmodat2, dirfd, path, mode, flags);
}

static void show_mode(const char *path) {
    struct stat st;
    if (lstat(path, &st) < 0)
        printf("%s: %s\n", path, errname(errno));
    else
        printf("%s: %o\n", path, st.st_mode & 07777);
}

int main(void) {
    char dir[] = "/tmp/fchmodat2-XXXXXX";
    if (!mkdtemp(dir) || chdir(dir) < 0) {
        perror("setup");
        return 1;
    }
    int fd = open("f", O_CREAT | O_WRONLY, 0644);
    if (fd < 0 || symlink("f", "link") < 0 || mkdir("d", 0755) < 0) {
        perror("setup");
        return 1;
    }
    report("fchmodat2 f 0600", fchmodat2(AT_FDCWD, "f", 0600, 0));
    show_mode("f");
    report("fchmodat2 link 0640 (follows)", fchmodat2(AT_FDCWD, "link", 0640, 0));
    show_mode("f");
    report("fchmodat2 link 0600 AT_SYMLINK_NOFOLLOW", fchmodat2(AT_FDCWD, "link", 0600, AT_SYMLINK_NOFOLLOW));
    show_mode("f");
    report("fchmodat2 f 0604 AT_SYMLINK_NOFOLLOW", fchmodat2(AT_FDCWD, "f", 0604, AT_SYMLINK_NOFOLLOW));
    show_mode("f");
    report("fchmodat2 fd \"\" 0611 AT_EMPTY_PATH", fchmodat2(fd, "", 0611, AT_EMPTY_PATH));
    show_mode("f");
    report("fchmodat2 fd \"\" 0600 (no AT_EMPTY_PATH)", fchmodat2(fd, "", 0600, 0));
    int dfd = open("d", O_RDONLY | O_DIRECTORY);
    report("fchmodat2 d/.. relative to d 0700", fchmodat2(dfd, "../d", 0700, 0));
    show_mode("d");
    report("fchmodat2 bad flags", fchmodat2(AT_FDCWD, "f", 0600, AT_REMOVEDIR));
    report("fchmodat2 missing", fchmodat2(AT_FDCWD, "missing", 0600, 0));
    report("fchmodat2 f/x (not a directory)", fchmodat2(AT_FDCWD, "f/x", 0600, 0));
    report("fchmodat2 bad address", fchmodat2(AT_FDCWD, (const char *)8, 0600, 0));
    close(fd);
    close(dfd);
    unlink("link");
    unlink("f");
    rmdir("d");
    chdir("/");
    rmdir(dir);
    return 0;
}
