// O_PATH keeps only O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC of open's flags:
// O_DIRECTORY still refuses what is not a directory (mv's "is the target a
// directory?" probe), and O_CREAT, O_TRUNC, O_EXCL and the access mode do
// nothing; openat2 refuses any other flag with O_PATH.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int open_errno(const char *path, int flags) {
    errno = 0;
    int fd = open(path, flags, 0644);
    int e = fd < 0 ? errno : 0;
    if (fd >= 0) close(fd);
    return e;
}

static void in(const char *base) {
    char dir[256], file[256], link_dir[256], link_file[256], missing[256], what[512];
    snprintf(dir, sizeof dir, "%s/o_path.XXXXXX", base);
    if (!mkdtemp(dir)) {
        check("mkdtemp", 0);
        return;
    }
    snprintf(file, sizeof file, "%s/f", dir);
    snprintf(link_dir, sizeof link_dir, "%s/ld", dir);
    snprintf(link_file, sizeof link_file, "%s/lf", dir);
    snprintf(missing, sizeof missing, "%s/missing", dir);
    int fd = open(file, O_CREAT | O_WRONLY, 0644);
    if (write(fd, "data", 4) != 4) check("write", 0);
    close(fd);
    if (symlink(dir, link_dir) || symlink(file, link_file)) check("symlink", 0);

#define EXPECT(desc, got, want)                                                   \
    do {                                                                          \
        int g_ = (got);                                                           \
        snprintf(what, sizeof what, "%s: %s (%s)", base, desc, errname(g_));      \
        check(what, g_ == (want));                                                \
    } while (0)

    EXPECT("O_PATH|O_DIRECTORY of a file is ENOTDIR", open_errno(file, O_PATH | O_DIRECTORY), ENOTDIR);
    EXPECT("O_PATH|O_DIRECTORY of a directory", open_errno(dir, O_PATH | O_DIRECTORY), 0);
    EXPECT("O_PATH|O_DIRECTORY through a link to a directory", open_errno(link_dir, O_PATH | O_DIRECTORY), 0);
    EXPECT("O_PATH|O_DIRECTORY through a link to a file is ENOTDIR", open_errno(link_file, O_PATH | O_DIRECTORY), ENOTDIR);
    EXPECT("O_PATH|O_DIRECTORY|O_NOFOLLOW of a link is ENOTDIR", open_errno(link_dir, O_PATH | O_DIRECTORY | O_NOFOLLOW), ENOTDIR);
    EXPECT("O_DIRECTORY|O_NOFOLLOW of a link is ENOTDIR", open_errno(link_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW), ENOTDIR);
    EXPECT("O_NOFOLLOW of a link is ELOOP", open_errno(link_file, O_RDONLY | O_NOFOLLOW), ELOOP);
    EXPECT("O_PATH|O_NOFOLLOW of a link opens the link", open_errno(link_file, O_PATH | O_NOFOLLOW), 0);
    EXPECT("O_PATH|O_CREAT of a missing name is ENOENT", open_errno(missing, O_PATH | O_CREAT), ENOENT);
    EXPECT("O_PATH|O_CREAT|O_EXCL of a missing name is ENOENT", open_errno(missing, O_PATH | O_CREAT | O_EXCL), ENOENT);
    check("O_PATH|O_CREAT created nothing", access(missing, F_OK) != 0);
    EXPECT("O_PATH|O_CREAT|O_EXCL of a file opens it", open_errno(file, O_PATH | O_CREAT | O_EXCL), 0);
    EXPECT("O_PATH|O_WRONLY|O_TRUNC of a file", open_errno(file, O_PATH | O_WRONLY | O_TRUNC), 0);
    struct stat st;
    check("O_PATH|O_TRUNC truncated nothing", stat(file, &st) == 0 && st.st_size == 4);
    EXPECT("O_PATH|O_RDWR of a directory", open_errno(dir, O_PATH | O_RDWR), 0);
    EXPECT("O_PATH|O_TMPFILE opens the directory", open_errno(dir, O_PATH | O_TMPFILE | O_RDWR), 0);

    struct open_how how = {.flags = O_PATH | O_CREAT, .mode = 0644};
    errno = 0;
    fd = syscall(SYS_openat2, AT_FDCWD, missing, &how, sizeof how);
    EXPECT("openat2 O_PATH|O_CREAT is EINVAL", fd < 0 ? errno : 0, EINVAL);
    how = (struct open_how){.flags = O_PATH | O_DIRECTORY};
    errno = 0;
    fd = syscall(SYS_openat2, AT_FDCWD, file, &how, sizeof how);
    EXPECT("openat2 O_PATH|O_DIRECTORY of a file is ENOTDIR", fd < 0 ? errno : 0, ENOTDIR);
    how = (struct open_how){.flags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC};
    fd = syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof how);
    EXPECT("openat2 O_PATH|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC of a directory", fd < 0 ? errno : 0, 0);
    if (fd >= 0) close(fd);

    unlink(link_dir);
    unlink(link_file);
    unlink(file);
    rmdir(dir);
}

int main(void) {
    in("/tmp");
    in("/var/tmp");
    printf("%d failures\n", failures);
    if (!failures) printf("all ok\n");
    return failures != 0;
}
