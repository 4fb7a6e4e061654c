// Root without the capabilities a container's default set leaves out (Docker
// drops CAP_SYS_ADMIN, CAP_SYS_TIME, CAP_SYSLOG, CAP_SYS_RESOURCE, CAP_SYS_NICE,
// CAP_SYS_PTRACE): Linux checks the capability, not the user id, so uid 0 alone
// may not raise a hard limit, set the clock, touch trusted.* attributes, control
// the console log or take another user's descriptors or limits, while with them
// it may (the host's root here lacks CAP_SYS_RESOURCE, so that one is not tried).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

#include "check.h"

static const char *res(long r) {
    return r >= 0 ? "ok" : errname(errno);
}

static void drop_caps(const int *caps, int n) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    for (int i = 0; i < n; i++) {
        d[caps[i] / 32].effective &= ~(1u << (caps[i] % 32));
        d[caps[i] / 32].permitted &= ~(1u << (caps[i] % 32));
    }
    if (syscall(SYS_capset, &h, d) != 0) _exit(90);
}

// Whether list holds the attribute name.
static int listed(const char *list, ssize_t n, const char *name) {
    for (ssize_t i = 0; i < n; i += strlen(list + i) + 1)
        if (strcmp(list + i, name) == 0) return 1;
    return 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int mfd = memfd_create("attrs", 0);
    check("trusted.a set with CAP_SYS_ADMIN", fsetxattr(mfd, "trusted.a", "1", 1, 0) == 0);
    check("user.b set", fsetxattr(mfd, "user.b", "2", 1, 0) == 0);
    int go[2], ready[2];
    pipe(go);
    pipe(ready);
    pid_t other = fork();
    if (other == 0) {
        if (setresuid(1000, 1000, 1000) != 0) _exit(1);
        write(ready[1], "r", 1);
        char c;
        read(go[0], &c, 1);
        _exit(0);
    }
    char r;
    read(ready[0], &r, 1);

    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        const int caps[] = {CAP_SYS_ADMIN, CAP_SYS_TIME, CAP_SYSLOG, CAP_SYS_RESOURCE, CAP_SYS_NICE, CAP_SYS_PTRACE};
        drop_caps(caps, sizeof caps / sizeof caps[0]);
        printf("uid %d without the capabilities:\n", getuid());
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_max += 1;
        printf("  raise RLIMIT_NOFILE's hard limit: %s\n", res(setrlimit(RLIMIT_NOFILE, &rl)));
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        printf("  clock_settime: %s\n", res(clock_settime(CLOCK_REALTIME, &now)));
        struct timeval tv;
        gettimeofday(&tv, NULL);
        printf("  settimeofday: %s\n", res(settimeofday(&tv, NULL)));
        printf("  set trusted.c: %s\n", res(fsetxattr(mfd, "trusted.c", "3", 1, 0)));
        char v[16];
        printf("  get trusted.a: %s\n", res(fgetxattr(mfd, "trusted.a", v, sizeof v)));
        char list[256];
        ssize_t n = flistxattr(mfd, list, sizeof list);
        printf("  list: user.b %s, trusted.a %s\n", listed(list, n, "user.b") ? "yes" : "no", listed(list, n, "trusted.a") ? "yes" : "no");
        printf("  syslog console on: %s\n", res(klogctl(7, NULL, 0)));
        int pidfd = syscall(SYS_pidfd_open, other, 0);
        printf("  pidfd_getfd of another user's stdin: %s\n", res(syscall(SYS_pidfd_getfd, pidfd, 0, 0)));
        struct rlimit theirs = {64, 64};
        printf("  prlimit of another user's process: %s\n", res(prlimit(other, RLIMIT_CORE, &theirs, NULL)));
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    check("the child ran through", WIFEXITED(st) && WEXITSTATUS(st) == 0);

    printf("with them:\n");
    char list[256];
    ssize_t n = flistxattr(mfd, list, sizeof list);
    printf("  list: user.b %s, trusted.a %s\n", listed(list, n, "user.b") ? "yes" : "no", listed(list, n, "trusted.a") ? "yes" : "no");
    int pidfd = syscall(SYS_pidfd_open, other, 0);
    long fd = syscall(SYS_pidfd_getfd, pidfd, 0, 0);
    printf("  pidfd_getfd of another user's stdin: %s\n", res(fd));
    write(go[1], "x", 1);
    waitpid(other, NULL, 0);
    printf("%d failures\n", failures);
    return failures != 0;
}
