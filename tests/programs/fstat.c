// fstat and newfstatat(AT_EMPTY_PATH) on stdio.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *kind(mode_t m) {
    return S_ISFIFO(m) ? "fifo" : S_ISCHR(m) ? "char device" : S_ISREG(m) ? "regular" : S_ISSOCK(m) ? "socket" : "other";
}

static void show(const char *what, long r) {
    if (r == -1) printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else printf("%s = %ld\n", what, r);
}

int main(void) {
    for (int fd = 0; fd <= 2; fd++) {
        struct stat st, st2;
        if (fstat(fd, &st) != 0) {
            printf("fstat(%d) = -1 %s\n", fd, strerrorname_np(errno));
            continue;
        }
        printf("fstat(%d): %s, S_ISFIFO=%d, perms %o, nlink %lu\n", fd, kind(st.st_mode), S_ISFIFO(st.st_mode),
               st.st_mode & 07777, (unsigned long)st.st_nlink);
        int r = fstatat(fd, "", &st2, AT_EMPTY_PATH);
        printf("newfstatat(%d, \"\", AT_EMPTY_PATH) = %d, same inode: %s, same mode: %s\n", fd, r,
               r == 0 && st2.st_ino == st.st_ino && st2.st_dev == st.st_dev ? "yes" : "no",
               r == 0 && st2.st_mode == st.st_mode ? "yes" : "no");
    }
    struct stat st;
    show("fstat(99)", fstat(99, &st));
    show("fstat(-1)", fstat(-1, &st));
    show("newfstatat(1, \"\", 0)", syscall(SYS_newfstatat, 1, "", &st, 0));
    show("newfstatat(99, \"\", AT_EMPTY_PATH)", syscall(SYS_newfstatat, 99, "", &st, AT_EMPTY_PATH));
    return 0;
}
