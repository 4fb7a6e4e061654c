// The xattrat calls (Linux 6.13): setxattrat, getxattrat, listxattrat and
// removexattrat on a /tmp file and a /dev/shm file, by dirfd and path, without
// following a symlink, and by descriptor (AT_EMPTY_PATH); struct xattr_args
// and its size (too small EINVAL, past a page or with nonzero bytes past the
// struct E2BIG), bad at-flags and getxattrat's nonzero flags (EINVAL), and
// which error comes first. The output is compared with the native run.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "xattr_list.h"

#include "check.h"

#define NR_setxattrat 463
#define NR_getxattrat 464
#define NR_listxattrat 465
#define NR_removexattrat 466

struct xattr_args {
    uint64_t value;
    uint32_t size;
    uint32_t flags;
};

static long r_val;
static int r_err;

static void show(const char *what, long r) {
    r_val = r;
    r_err = r < 0 ? errno : 0;
    if (r < 0)
        printf("%s: -1 %s\n", what, errname(r_err));
    else
        printf("%s: %ld\n", what, r);
}

static long set_at(int dfd, const char *path, unsigned at, const char *name, const char *v, size_t n, int flags) {
    struct xattr_args a = {(uintptr_t)v, (uint32_t)n, (uint32_t)flags};
    return syscall(NR_setxattrat, dfd, path, at, name, &a, sizeof a);
}

static long get_at(int dfd, const char *path, unsigned at, const char *name, char *v, size_t n) {
    struct xattr_args a = {(uintptr_t)v, (uint32_t)n, 0};
    return syscall(NR_getxattrat, dfd, path, at, name, &a, sizeof a);
}


static void on(const char *dir) {
    char f[128], buf[256];
    printf("-- in %s\n", dir);
    mkdir(dir, 0755);
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    snprintf(f, sizeof f, "%s/file", dir);
    close(open(f, O_CREAT | O_WRONLY, 0644));
    symlinkat("file", d, "link");

    show("set user.a by path", set_at(AT_FDCWD, f, 0, "user.a", "alpha", 5, 0));
    check("set user.a by path", r_val == 0);
    show("set user.b relative to the directory", set_at(d, "file", 0, "user.b", "beta", 4, 0));
    show("set user.a with XATTR_CREATE", set_at(d, "file", 0, "user.a", "x", 1, XATTR_CREATE));
    check("XATTR_CREATE on an existing one is EEXIST", r_err == EEXIST);
    show("set user.c with XATTR_REPLACE", set_at(d, "file", 0, "user.c", "x", 1, XATTR_REPLACE));
    show("set with flags 4", set_at(d, "file", 0, "user.c", "x", 1, 4));
    show("set through the symlink", set_at(d, "link", 0, "user.l", "viaLink", 7, 0));
    show("set on the symlink itself", set_at(d, "link", AT_SYMLINK_NOFOLLOW, "user.l", "x", 1, 0));
    check("a user attribute on a symlink is EPERM", r_err == EPERM);
    show("set an unknown namespace", set_at(d, "file", 0, "bogus.a", "x", 1, 0));
    show("set a value past XATTR_SIZE_MAX", set_at(d, "file", 0, "user.big", "x", 65537, 0));

    memset(buf, 0, sizeof buf);
    show("get user.a", get_at(d, "file", 0, "user.a", buf, sizeof buf));
    check("get user.a gives alpha", r_val == 5 && memcmp(buf, "alpha", 5) == 0);
    show("get user.a's size", get_at(d, "file", 0, "user.a", NULL, 0));
    show("get user.a into 2 bytes", get_at(d, "file", 0, "user.a", buf, 2));
    show("get user.l through the symlink", get_at(d, "link", 0, "user.l", buf, sizeof buf));
    show("get user.l on the symlink", get_at(d, "link", AT_SYMLINK_NOFOLLOW, "user.l", buf, sizeof buf));
    show("get user.missing", get_at(d, "file", 0, "user.missing", buf, sizeof buf));
    show("get on a missing file", get_at(d, "none", 0, "user.a", buf, sizeof buf));
    show("get with a bad name on a missing file", get_at(d, "none", 0, "bogus.a", buf, sizeof buf));
    show("get with an empty name on a missing file", get_at(d, "none", 0, "", buf, sizeof buf));
    show("set with an empty name on a missing file", set_at(d, "none", 0, "", "x", 1, 0));
    show("get with an empty path", get_at(d, "", 0, "user.a", buf, sizeof buf));
    show("get with bad at-flags", get_at(d, "file", AT_SYMLINK_FOLLOW, "user.a", buf, sizeof buf));
    show("get with bad at-flags on a missing file", get_at(d, "none", 0x8000, "user.a", buf, sizeof buf));

    // By descriptor: AT_EMPTY_PATH with an empty or a NULL path.
    int fd = open(f, O_RDONLY);
    show("set user.fd by descriptor", set_at(fd, "", AT_EMPTY_PATH, "user.fd", "byfd", 4, 0));
    check("setxattrat by descriptor", r_val == 0);
    memset(buf, 0, sizeof buf);
    show("get user.fd with a NULL path", get_at(fd, NULL, AT_EMPTY_PATH, "user.fd", buf, sizeof buf));
    check("getxattrat by descriptor gives byfd", r_val == 4 && memcmp(buf, "byfd", 4) == 0);
    show("get user.fd on the directory's descriptor", get_at(d, "", AT_EMPTY_PATH, "user.fd", buf, sizeof buf));
    show("get by a closed descriptor", get_at(1000, "", AT_EMPTY_PATH, "user.fd", buf, sizeof buf));
    show("get by a non-directory descriptor and a path", get_at(fd, "x", AT_EMPTY_PATH, "user.fd", buf, sizeof buf));
    int p[2];
    if (pipe(p) == 0) {
        show("get user.a on a pipe", get_at(p[0], "", AT_EMPTY_PATH, "user.a", buf, sizeof buf));
        show("set user.a on a pipe", set_at(p[0], "", AT_EMPTY_PATH, "user.a", "x", 1, 0));
        show("set trusted.a on a pipe", set_at(p[0], "", AT_EMPTY_PATH, "trusted.a", "x", 1, 0));
        show("list on a pipe", syscall(NR_listxattrat, p[0], "", AT_EMPTY_PATH, buf, sizeof buf));
        close(p[0]);
        close(p[1]);
    }
    int opath = open(f, O_PATH);
    show("get user.a by an O_PATH descriptor", get_at(opath, "", AT_EMPTY_PATH, "user.a", buf, sizeof buf));
    close(opath);

    // The size of struct xattr_args.
    struct {
        struct xattr_args a;
        uint64_t more;
    } big = {{(uintptr_t)buf, sizeof buf, 0}, 0};
    show("getxattrat with size 0", syscall(NR_getxattrat, d, "file", 0, "user.a", &big, 0));
    show("getxattrat with size 8", syscall(NR_getxattrat, d, "file", 0, "user.a", &big, 8));
    show("getxattrat with size 24, zeros past the struct", syscall(NR_getxattrat, d, "file", 0, "user.a", &big, 24));
    big.more = 1;
    show("getxattrat with size 24, nonzero past the struct", syscall(NR_getxattrat, d, "file", 0, "user.a", &big, 24));
    check("nonzero bytes past the struct are E2BIG", r_err == E2BIG);
    show("setxattrat with size 24, nonzero past the struct", syscall(NR_setxattrat, d, "file", 0, "user.a", &big, 24));
    char *page = calloc(2, 4096);
    memcpy(page, &big.a, sizeof big.a);
    show("getxattrat with size 4096", syscall(NR_getxattrat, d, "file", 0, "user.a", page, 4096));
    show("getxattrat with size 4097", syscall(NR_getxattrat, d, "file", 0, "user.a", page, 4097));
    check("a size past a page is E2BIG", r_err == E2BIG);
    show("setxattrat with size 4097 and bad at-flags", syscall(NR_setxattrat, d, "file", 0x8000, "user.a", page, 4097));
    show("setxattrat with size 4 and bad at-flags", syscall(NR_setxattrat, d, "file", 0x8000, "user.a", page, 4));
    free(page);
    show("getxattrat with a NULL struct", syscall(NR_getxattrat, d, "file", 0, "user.a", NULL, 16));
    struct xattr_args fl = {(uintptr_t)buf, sizeof buf, 1};
    show("getxattrat with flags 1", syscall(NR_getxattrat, d, "file", 0, "user.a", &fl, sizeof fl));
    check("getxattrat's nonzero flags are EINVAL", r_err == EINVAL);

    // listxattrat.
    long n = syscall(NR_listxattrat, d, "file", 0, buf, sizeof buf);
    print_list("list relative to the directory", buf, n);
    check("listxattrat lists", n > 0);
    n = syscall(NR_listxattrat, fd, "", AT_EMPTY_PATH, buf, sizeof buf);
    print_list("list by descriptor", buf, n);
    show("list the symlink", syscall(NR_listxattrat, d, "link", AT_SYMLINK_NOFOLLOW, buf, sizeof buf));
    show("list into 3 bytes", syscall(NR_listxattrat, d, "file", 0, buf, 3));
    show("list with bad at-flags", syscall(NR_listxattrat, d, "file", 1, buf, sizeof buf));

    // removexattrat.
    show("remove user.b", syscall(NR_removexattrat, d, "file", 0, "user.b"));
    check("removexattrat removes", r_val == 0);
    show("remove user.b again", syscall(NR_removexattrat, d, "file", 0, "user.b"));
    show("remove user.fd by descriptor", syscall(NR_removexattrat, fd, NULL, AT_EMPTY_PATH, "user.fd"));
    show("remove on the symlink", syscall(NR_removexattrat, d, "link", AT_SYMLINK_NOFOLLOW, "user.l"));
    show("remove with bad at-flags", syscall(NR_removexattrat, d, "file", 0x2, "user.a"));
    n = syscall(NR_listxattrat, d, "file", 0, buf, sizeof buf);
    print_list("list after", buf, n);
    close(fd);

    unlinkat(d, "link", 0);
    unlinkat(d, "file", 0);
    close(d);
    rmdir(dir);
}

int main(void) {
    on("/tmp/rvisor-xattrat-test");
    on("/dev/shm/rvisor-xattrat-test");
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
