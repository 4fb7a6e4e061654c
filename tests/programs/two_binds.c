// Two bind mounts served by one gofer: argv[1] read-write, argv[2] read-only. Prints
// "ready" and waits for a line on stdin (so the harness can count the host's gofer
// processes meanwhile), then checks each mount shows its own directory, only the
// read-write one takes changes, and a rename between them is EXDEV.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include "check.h"

static void path(char *out, size_t n, const char *dir, const char *name) {
    snprintf(out, n, "%s/%s", dir, name);
}

// The first line of DIR/marker, or "" if unreadable.
static void marker(const char *dir, char *buf, size_t n) {
    char p[4096];
    path(p, sizeof p, dir, "marker");
    buf[0] = 0;
    int fd = open(p, O_RDONLY);
    if (fd < 0) return;
    ssize_t got = read(fd, buf, n - 1);
    close(fd);
    buf[got > 0 ? got : 0] = 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    const char *rw = argv[1], *ro = argv[2];
    printf("ready\n");
    fflush(stdout);
    char c;
    while (read(0, &c, 1) == 1 && c != '\n') {
    }
    char m[64], p[4096], q[4096];
    marker(rw, m, sizeof m);
    check("rw mount shows its directory", strcmp(m, "rw") == 0);
    marker(ro, m, sizeof m);
    check("ro mount shows its directory", strcmp(m, "ro") == 0);

    path(p, sizeof p, rw, "new.txt");
    int fd = open(p, O_CREAT | O_WRONLY | O_EXCL, 0644);
    check("create in the rw mount", fd >= 0 && write(fd, "new", 3) == 3);
    if (fd >= 0) close(fd);
    path(p, sizeof p, ro, "new.txt");
    errno = 0;
    fd = open(p, O_CREAT | O_WRONLY | O_EXCL, 0644);
    printf("create in the ro mount: %s\n", errname(fd < 0 ? errno : 0));
    check("create in the ro mount is EROFS", fd < 0 && errno == EROFS);
    path(p, sizeof p, rw, "moveme");
    path(q, sizeof q, ro, "moved");
    errno = 0;
    int r = rename(p, q);
    printf("rename across mounts: %s\n", errname(r < 0 ? errno : 0));
    check("rename across mounts is EXDEV", r < 0 && errno == EXDEV);
    printf("failures %d\n", failures);
    return failures != 0;
}
