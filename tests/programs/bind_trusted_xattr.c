// trusted.* attributes of a file in the directory argv[1] (a bind-mounted
// host directory in the sandbox) and of the program itself (in the sandbox a
// file of the root overlay not yet copied up: the overlay keeps trusted
// attributes on its copies, so it has none), with CAP_SYS_ADMIN and without. Without it Linux's
// xattr_permission answers first: get ENODATA, set and remove EPERM, list
// hides them. With it the sandbox's host files are on a file system that
// keeps none (the gofer would need the host's CAP_SYS_ADMIN): get, set and
// remove EOPNOTSUPP, as Linux's for a namespace without a handler.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

static void show(const char *where, const char *what, long r) {
    printf("%s: %s: %ld %s\n", where, what, r, r < 0 ? strerrorname_np(errno) : "");
}

static void attrs(const char *where, const char *f) {
    char buf[256];
    show(where, "get trusted.x", getxattr(f, "trusted.x", buf, sizeof buf));
    show(where, "set trusted.x", setxattr(f, "trusted.x", "v", 1, 0));
    show(where, "remove trusted.x", removexattr(f, "trusted.x"));
    show(where, "set user.u", setxattr(f, "user.u", "v", 1, 0));
    long n = listxattr(f, buf, sizeof buf);
    printf("%s: list:", where);
    for (long i = 0; i < n; i += strlen(buf + i) + 1) printf(" %s", buf + i);
    printf("\n");
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    char host[4096];
    snprintf(host, sizeof host, "%s/trusted-file", argv[1]);
    const char *root = argv[0];
    close(open(host, O_CREAT | O_WRONLY, 0644));
    attrs("host with CAP_SYS_ADMIN", host);
    show("root with CAP_SYS_ADMIN", "get trusted.x", getxattr(root, "trusted.x", NULL, 0));
    show("root with CAP_SYS_ADMIN", "remove trusted.x", removexattr(root, "trusted.x"));
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    d[0].effective &= ~(1u << CAP_SYS_ADMIN);
    show("", "drop CAP_SYS_ADMIN", syscall(SYS_capset, &h, d));
    attrs("host without", host);
    unlink(host);
    printf("all ok\n");
    return 0;
}
