// Capabilities (run as root): capget's version probe and sets, capset dropping
// one (it stays dropped, in /proc and in a forked child) and refusing to raise
// it again, and setuid away from root clearing them; root without CAP_SETUID,
// CAP_SETGID or CAP_SYS_CHROOT may not change ids, groups or its root.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

static int get(struct __user_cap_data_struct d[2]) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    return syscall(SYS_capget, &h, d);
}

static int set(struct __user_cap_data_struct d[2]) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    return syscall(SYS_capset, &h, d);
}

static unsigned long long status_caps(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    unsigned long long v = ~0ULL;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, strlen(field))) sscanf(line + strlen(field), "%llx", &v);
    if (f) fclose(f);
    return v;
}

int main(void) {
    struct __user_cap_header_struct probe = {0, 0};
    check("probing the version with no data succeeds", syscall(SYS_capget, &probe, NULL) == 0 && probe.version == _LINUX_CAPABILITY_VERSION_3);
    struct __user_cap_data_struct d[2];
    check("capget", get(d) == 0);
    check("root: effective equals permitted, inheritable empty", d[0].effective == d[0].permitted && d[1].effective == d[1].permitted && !d[0].inheritable);
    check("root has CAP_SETUID and CAP_NET_RAW", (d[0].effective >> CAP_SETUID & 1) && (d[0].effective >> CAP_NET_RAW & 1));
    d[0].effective &= ~(1u << CAP_NET_RAW);
    d[0].permitted &= ~(1u << CAP_NET_RAW);
    check("capset drops CAP_NET_RAW", set(d) == 0);
    struct __user_cap_data_struct now[2];
    get(now);
    check("and it stays dropped", !(now[0].effective >> CAP_NET_RAW & 1) && !(now[0].permitted >> CAP_NET_RAW & 1));
    check("/proc/self/status agrees", status_caps("CapEff:") == ((unsigned long long)now[1].effective << 32 | now[0].effective));
    pid_t c = fork();
    if (c == 0) {
        struct __user_cap_data_struct k[2];
        get(k);
        _exit(k[0].permitted >> CAP_NET_RAW & 1);
    }
    int st;
    waitpid(c, &st, 0);
    check("a child inherits the dropped set", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    d[0].permitted |= 1u << CAP_NET_RAW;
    errno = 0;
    check("raising a dropped capability is EPERM", set(d) == -1 && errno == EPERM);
    c = fork();
    if (c == 0) {
        struct __user_cap_data_struct k[2];
        if (setuid(65534) != 0) _exit(2);
        get(k);
        _exit(k[0].effective || k[0].permitted || k[1].effective || k[1].permitted);
    }
    waitpid(c, &st, 0);
    check("setuid away from root clears every set", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    c = fork();
    if (c == 0) {
        struct __user_cap_data_struct k[2];
        get(k);
        k[0].effective &= ~(1u << CAP_SETUID | 1u << CAP_SETGID | 1u << CAP_SYS_CHROOT);
        if (set(k) != 0) _exit(9);
        int bad = 0;
        gid_t none[1] = {0};
        errno = 0;
        bad |= !(setuid(65534) == -1 && errno == EPERM) << 0;
        errno = 0;
        bad |= !(setgid(65534) == -1 && errno == EPERM) << 1;
        errno = 0;
        bad |= !(setgroups(1, none) == -1 && errno == EPERM) << 2;
        errno = 0;
        bad |= !(chroot("/") == -1 && errno == EPERM) << 3;
        bad |= !(setuid(0) == 0) << 4; /* its own id needs no capability */
        _exit(bad);
    }
    waitpid(c, &st, 0);
    check("without CAP_SETUID/SETGID/SYS_CHROOT, root may not setuid, setgid, setgroups or chroot", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("%d failures\n", failures);
    return failures != 0;
}
