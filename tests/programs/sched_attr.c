// sched_getattr and sched_setattr: the policy, nice value and priority read back
// as set (also through sched_getscheduler, getpriority and sched_getparam), the
// KEEP_POLICY and KEEP_PARAMS flags, the size handshake (a short struct is read
// as the first version, a too-short one is E2BIG with the kernel's size written
// back, a larger one must be zero beyond), and the errors.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sched_attr.h"

static void show(const char *what, long r) {
    int e = errno;
    if (r < 0)
        printf("%s: -1 %s\n", what, strerror(e));
    else
        printf("%s: %ld\n", what, r);
}

static long getattr(struct attr *a, unsigned size) {
    memset(a, 0xff, sizeof *a);
    return syscall(SYS_sched_getattr, 0, a, size, 0);
}

static long setattr(struct attr *a) { return syscall(SYS_sched_setattr, 0, a, 0); }

static void report(const char *when) {
    struct attr a;
    long r = getattr(&a, 56);
    struct sched_param p;
    sched_getparam(0, &p);
    errno = 0;
    int prio = getpriority(PRIO_PROCESS, 0);
    printf("%s: getattr %ld size %u policy %u flags %llu nice %d priority %u; getscheduler %d, getpriority %d, getparam %d\n", when, r, a.size, a.policy,
           (unsigned long long)a.flags, a.nice, a.priority, sched_getscheduler(0), prio, p.sched_priority);
}

int main(void) {
    struct attr a;
    report("at start");
    show("getattr with 48 bytes", getattr(&a, 48));
    printf("size field %u, byte 48 untouched: %s\n", a.size, a.util_min == 0xffffffff ? "yes" : "no");
    show("getattr with 47 bytes", getattr(&a, 47));
    show("getattr with flags", syscall(SYS_sched_getattr, 0, &a, 56, 1));
    show("getattr of no such thread", syscall(SYS_sched_getattr, 4000000, &a, 56, 0));
    show("getattr with a NULL struct", syscall(SYS_sched_getattr, 0, NULL, 56, 0));

    memset(&a, 0, sizeof a);
    a.size = 48;
    a.policy = SCHED_BATCH;
    a.nice = 3;
    show("setattr SCHED_BATCH nice 3", setattr(&a));
    report("batch");
    memset(&a, 0, sizeof a);
    a.size = 48;
    a.flags = 0x08; /* SCHED_FLAG_KEEP_POLICY */
    a.nice = 5;
    show("setattr KEEP_POLICY nice 5", setattr(&a));
    report("kept policy");
    memset(&a, 0, sizeof a);
    a.size = 48;
    a.policy = SCHED_OTHER;
    a.flags = 0x10; /* SCHED_FLAG_KEEP_PARAMS */
    a.nice = -10;
    show("setattr SCHED_OTHER KEEP_PARAMS", setattr(&a));
    report("kept params");
    memset(&a, 0, sizeof a);
    a.size = 0; /* the first version */
    a.policy = SCHED_FIFO;
    a.priority = 10;
    show("setattr size 0 SCHED_FIFO 10", setattr(&a));
    report("fifo");
    memset(&a, 0, sizeof a);
    a.size = 48;
    a.policy = SCHED_FIFO;
    a.priority = 0;
    show("setattr SCHED_FIFO priority 0", setattr(&a));
    a.policy = SCHED_OTHER;
    a.priority = 3;
    show("setattr SCHED_OTHER priority 3", setattr(&a));
    a.priority = 0;
    a.policy = 77;
    show("setattr policy 77", setattr(&a));
    a.policy = SCHED_OTHER;
    a.flags = 1ull << 40;
    show("setattr unknown flag", setattr(&a));
    a.flags = 0;
    a.size = 40;
    show("setattr size 40", setattr(&a));
    printf("size written back: %u\n", a.size);
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.extra[3] = 1;
    show("setattr larger, nonzero beyond", setattr(&a));
    a.extra[3] = 0;
    a.nice = 40;
    show("setattr larger, zero beyond, nice 40", setattr(&a));
    report("clamped nice");
    show("setattr with flags argument", syscall(SYS_sched_setattr, 0, &a, 1));
    show("setattr of a negative pid", syscall(SYS_sched_setattr, -1, &a, 0));
    return 0;
}
