/* Extended attributes of a host file seen through the sandbox's root (the
 * host's files under a writable overlay): read as the host has them, kept
 * when a change copies the file up, removed from the copy only. The file is
 * the argument; the host sets user.kept = "host" on it first. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

static const char *path;

static void get(const char *what, const char *name) {
    char v[64];
    ssize_t n = getxattr(path, name, v, sizeof v);
    if (n < 0)
        printf("%s %s: %s\n", what, name, strerror(errno));
    else
        printf("%s %s: \"%.*s\"\n", what, name, (int)n, v);
}

static void list(const char *what) {
    char names[256];
    ssize_t n = listxattr(path, names, sizeof names);
    if (n < 0) {
        printf("%s: %s\n", what, strerror(errno));
        return;
    }
    printf("%s:", what);
    for (const char *p = names; p < names + n; p += strlen(p) + 1) printf(" %s", p);
    printf("\n");
}

static void result(const char *what, int r) {
    printf("%s: %s\n", what, r < 0 ? strerror(errno) : "ok");
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    path = argv[1];
    printf("size of user.kept: %zd\n", getxattr(path, "user.kept", NULL, 0));
    get("before", "user.kept");
    list("names before");
    result("remove user.none", removexattr(path, "user.none"));
    result("set user.new", setxattr(path, "user.new", "new", 3, XATTR_CREATE));
    get("after the copy-up", "user.kept");
    list("names after the copy-up");
    result("remove user.kept", removexattr(path, "user.kept"));
    get("after removing", "user.kept");
    list("names at the end");
    return 0;
}
