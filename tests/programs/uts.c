/* sethostname and setdomainname change the sandbox's own names: uname, gethostname and
 * /proc/sys/kernel see them, and so does a child; they take up to 64 bytes and need
 * CAP_SYS_ADMIN. Only run in the sandbox (natively they would rename the host). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *res(int r) {
    return r == 0 ? "0" : strerrorname_np(errno);
}

static void proc_line(const char *path) {
    char buf[128] = {0};
    FILE *f = fopen(path, "r");
    if (f && fgets(buf, sizeof buf, f)) printf("%s: %s", path, buf);
    else printf("%s: unreadable\n", path);
    if (f) fclose(f);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("sethostname: %s\n", res(sethostname("rvisor-uts-test", 15)));
    printf("setdomainname: %s\n", res(setdomainname("example.org", 11)));
    struct utsname u;
    uname(&u);
    printf("uname: nodename %s, domainname %s\n", u.nodename, u.domainname);
    char h[128];
    gethostname(h, sizeof h);
    printf("gethostname: %s\n", h);
    proc_line("/proc/sys/kernel/hostname");
    proc_line("/proc/sys/kernel/domainname");
    char long_name[66];
    memset(long_name, 'x', sizeof long_name);
    printf("65 bytes: %s\n", res(sethostname(long_name, 65)));
    printf("64 bytes: %s\n", res(sethostname(long_name, 64)));
    uname(&u);
    printf("uname nodename length %zu\n", strlen(u.nodename));
    printf("bad pointer: %s\n", res((int)syscall(SYS_sethostname, 8L, 5L)));
    sethostname("rvisor-uts-test", 15);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        gethostname(h, sizeof h);
        printf("a child sees %s\n", h);
        setuid(65534);
        printf("without CAP_SYS_ADMIN: %s\n", res(sethostname("nope", 4)));
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    gethostname(h, sizeof h);
    printf("still %s\n", h);
    return 0;
}
