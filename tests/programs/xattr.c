// Extended attributes on a /tmp file and directory: set (XATTR_CREATE and
// XATTR_REPLACE), get (size 0 asks the size, too small is ERANGE), list, remove,
// by path, without following a symlink and by descriptor; the namespaces (an
// unknown one, user attributes on a symlink, a pipe). `xattr set PATH` and
// `xattr get PATH` set and read user.where on one file (the overlay test gives it
// a host file, which the sandbox copies up).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "xattr_list.h"

static void show(const char *what, long r) {
    int e = errno;
    if (r < 0)
        printf("%s: -1 %s\n", what, strerror(e));
    else
        printf("%s: %ld\n", what, r);
}


int main(int argc, char **argv) {
    char buf[256];
    if (argc == 3 && strcmp(argv[1], "set") == 0) {
        show("set user.where", setxattr(argv[2], "user.where", "sandbox", 7, 0));
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "get") == 0) {
        long n = getxattr(argv[2], "user.where", buf, sizeof buf);
        if (n > 0)
            printf("user.where: %.*s\n", (int)n, buf);
        else
            printf("user.where: none\n");
        return 0;
    }
    const char *dir = "/tmp/rvisor-xattr-test";
    char f[128], l[128];
    mkdir(dir, 0755);
    snprintf(f, sizeof f, "%s/file", dir);
    snprintf(l, sizeof l, "%s/link", dir);
    close(open(f, O_CREAT | O_WRONLY, 0644));
    symlink("file", l);

    show("set user.a", setxattr(f, "user.a", "alpha", 5, 0));
    show("set user.a again with XATTR_CREATE", setxattr(f, "user.a", "x", 1, XATTR_CREATE));
    show("set user.b with XATTR_REPLACE", setxattr(f, "user.b", "x", 1, XATTR_REPLACE));
    show("set user.b", setxattr(f, "user.b", "", 0, 0));
    show("set user.a with XATTR_REPLACE", setxattr(f, "user.a", "ALPHA!", 6, XATTR_REPLACE));
    show("set with both flags", setxattr(f, "user.c", "x", 1, XATTR_CREATE | XATTR_REPLACE));
    show("set trusted.t", setxattr(f, "trusted.t", "t", 1, 0));
    show("set an unknown namespace", setxattr(f, "nonsense.a", "x", 1, 0));
    show("set an empty name", setxattr(f, "", "x", 1, 0));
    show("get user.a size", getxattr(f, "user.a", NULL, 0));
    show("get user.a into 3 bytes", getxattr(f, "user.a", buf, 3));
    long n = getxattr(f, "user.a", buf, sizeof buf);
    printf("get user.a: %.*s\n", (int)(n > 0 ? n : 0), buf);
    show("get user.b (empty)", getxattr(f, "user.b", buf, sizeof buf));
    show("get user.missing", getxattr(f, "user.missing", buf, sizeof buf));
    show("get through the symlink", getxattr(l, "user.a", buf, sizeof buf));
    show("lget on the symlink", lgetxattr(l, "user.a", buf, sizeof buf));
    show("lset user.x on the symlink", lsetxattr(l, "user.x", "x", 1, 0));
    n = listxattr(f, buf, sizeof buf);
    print_list("list", buf, n);
    show("list size", listxattr(f, NULL, 0) >= 0 ? 0 : -1);
    show("list into 2 bytes", listxattr(f, buf, 2));
    int fd = open(f, O_RDONLY);
    show("fset user.fd", fsetxattr(fd, "user.fd", "byfd", 4, 0));
    n = fgetxattr(fd, "user.fd", buf, sizeof buf);
    printf("fget user.fd: %.*s\n", (int)(n > 0 ? n : 0), buf);
    show("fremove user.fd", fremovexattr(fd, "user.fd"));
    close(fd);
    show("remove user.b", removexattr(f, "user.b"));
    show("remove user.b again", removexattr(f, "user.b"));
    n = listxattr(f, buf, sizeof buf);
    print_list("list after", buf, n);
    show("set user.d on the directory", setxattr(dir, "user.d", "dir", 3, 0));
    show("get it", getxattr(dir, "user.d", buf, sizeof buf));
    show("get on a missing file", getxattr("/tmp/rvisor-xattr-test/none", "user.a", buf, sizeof buf));
    int p[2];
    pipe(p);
    show("fget on a pipe", fgetxattr(p[0], "user.a", buf, sizeof buf));

    unlink(l);
    unlink(f);
    rmdir(dir);
    return 0;
}
