// Process and user identity calls: properties that hold both natively and in a sandbox.
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

int main(void) {
    pid_t pid = getpid();
    check("getpid() > 0", pid > 0);
    check("raw getpid == getpid()", syscall(SYS_getpid) == pid);
    check("getppid() >= 0", getppid() >= 0);
    check("gettid() == getpid() (single thread)", gettid() == pid);
    check("set_tid_address returns the tid", syscall(SYS_set_tid_address, &(int){0}) == pid);

    uid_t r, e, s;
    check("getresuid succeeds", getresuid(&r, &e, &s) == 0);
    check("getresuid real == getuid()", r == getuid());
    check("getresuid effective == geteuid()", e == geteuid());
    check("saved uid == effective uid", s == e);
    check("raw getuid == getuid()", (uid_t)syscall(SYS_getuid) == getuid());
    check("raw geteuid == geteuid()", (uid_t)syscall(SYS_geteuid) == geteuid());

    gid_t rg, eg, sg;
    check("getresgid succeeds", getresgid(&rg, &eg, &sg) == 0);
    check("getresgid real == getgid()", rg == getgid());
    check("getresgid effective == getegid()", eg == getegid());
    check("saved gid == effective gid", sg == eg);
    check("raw getgid == getgid()", (gid_t)syscall(SYS_getgid) == getgid());
    check("raw getegid == getegid()", (gid_t)syscall(SYS_getegid) == getegid());

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
