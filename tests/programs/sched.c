// sched_getaffinity and sched_yield.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

int main(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    check("sched_getaffinity(0)", sched_getaffinity(0, sizeof set, &set) == 0);
    check("at least one CPU in the mask", CPU_COUNT(&set) >= 1);
    cpu_set_t set2;
    CPU_ZERO(&set2);
    check("sched_getaffinity(getpid()) agrees", sched_getaffinity(getpid(), sizeof set2, &set2) == 0 && CPU_EQUAL(&set, &set2));
    long r = syscall(SYS_sched_getaffinity, 0, sizeof set, &set);
    check("raw call returns a byte count, a multiple of 8", r > 0 && r % 8 == 0 && r <= (long)sizeof set);
    check("size 0 -> EINVAL", syscall(SYS_sched_getaffinity, 0, 0, &set) == -1 && errno == EINVAL);
    check("size 7 (not a multiple of 8) -> EINVAL", syscall(SYS_sched_getaffinity, 0, 7, &set) == -1 && errno == EINVAL);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    check("mask count <= online CPUs (or online unknown)", online <= 0 || CPU_COUNT(&set) <= online);
    int ok = 1;
    for (int i = 0; i < 100; i++)
        if (sched_yield() != 0) ok = 0;
    check("sched_yield x100 returns 0", ok);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
