// rename and renameat2 (RENAME_NOREPLACE, RENAME_EXCHANGE) in /tmp (tmpfs in the
// sandbox) and /var/tmp (the root overlay): contents follow names, errors match.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void put(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(fd, text, strlen(text));
    close(fd);
}

static int holds(const char *path, const char *text) {
    char buf[64] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    read(fd, buf, sizeof buf - 1);
    close(fd);
    return !strcmp(buf, text);
}

static void in(const char *base) {
    char dir[128], a[160], b[160], sub[160], c[200], name[200];
    snprintf(dir, sizeof dir, "%s/rename-XXXXXX", base);
    mkdtemp(dir);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(c, sizeof c, "%s/sub/c", dir);
    put(a, "A");
    put(b, "B");
    mkdir(sub, 0755);
    put(c, "C");
#define CHECK(what, cond) (snprintf(name, sizeof name, "%s: %s", base, what), check(name, cond))
    errno = 0;
    CHECK("NOREPLACE onto an existing name is EEXIST", renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_NOREPLACE) == -1 && errno == EEXIST);
    CHECK("EXCHANGE swaps two files", renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0 && holds(a, "B") && holds(b, "A"));
    CHECK("EXCHANGE across directories", renameat2(AT_FDCWD, a, AT_FDCWD, c, RENAME_EXCHANGE) == 0 && holds(a, "C") && holds(c, "B"));
    struct stat st;
    CHECK("EXCHANGE a file and a directory", renameat2(AT_FDCWD, b, AT_FDCWD, sub, RENAME_EXCHANGE) == 0 && stat(b, &st) == 0 && S_ISDIR(st.st_mode) && holds(sub, "A"));
    char moved[200];
    snprintf(moved, sizeof moved, "%s/b/c", dir);
    CHECK("the directory's contents moved with it", holds(moved, "B"));
    // In the same directory: a name on another mount would be EXDEV first, as on Linux.
    char missing[200];
    snprintf(missing, sizeof missing, "%s/no-such-file", dir);
    errno = 0;
    CHECK("EXCHANGE with a missing name is ENOENT", renameat2(AT_FDCWD, a, AT_FDCWD, missing, RENAME_EXCHANGE) == -1 && errno == ENOENT);
    errno = 0;
    CHECK("NOREPLACE and EXCHANGE together are EINVAL", renameat2(AT_FDCWD, a, AT_FDCWD, sub, RENAME_NOREPLACE | RENAME_EXCHANGE) == -1 && errno == EINVAL);
    errno = 0;
    CHECK("a directory cannot be exchanged into itself", renameat2(AT_FDCWD, b, AT_FDCWD, moved, RENAME_EXCHANGE) == -1 && errno == EINVAL);
    char fresh[160];
    snprintf(fresh, sizeof fresh, "%s/fresh", dir);
    CHECK("NOREPLACE onto a free name moves", renameat2(AT_FDCWD, a, AT_FDCWD, fresh, RENAME_NOREPLACE) == 0 && holds(fresh, "C") && access(a, F_OK) == -1);
    CHECK("plain rename replaces", rename(fresh, sub) == 0 && holds(sub, "C"));
    unlink(moved);
    rmdir(b);
    unlink(sub);
    rmdir(dir);
}

int main(void) {
    in("/tmp");
    in("/var/tmp");
    printf("%d failures\n", failures);
    return failures != 0;
}
