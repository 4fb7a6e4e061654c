// Who may raise scheduling priority, as Linux decides it: CAP_SYS_NICE, not
// being root, and otherwise RLIMIT_NICE and RLIMIT_RTPRIO, which are 0 here (a
// container's root without CAP_SYS_NICE, Docker's default, is refused as any
// user; the host's root here cannot raise hard limits to try other values):
//   - setpriority lowering the nice value: EACCES; sched_setattr: EPERM
//   - a real-time policy: EPERM, SCHED_DEADLINE too; leaving SCHED_IDLE: EPERM
//   - ioprio's real-time class: EPERM without CAP_SYS_ADMIN as well
//   - another user's process: EPERM
// Each case runs in a child that dropped CAP_SYS_NICE (and in one, its root ids).
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include "check.h"
#include "child.h"
#include "sched_attr.h"

static const char *res(long r) {
    return r == 0 ? "ok" : errname(errno);
}

static void drop_cap(int cap) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    d[cap / 32].effective &= ~(1u << (cap % 32));
    d[cap / 32].permitted &= ~(1u << (cap % 32));
    if (syscall(SYS_capset, &h, d) != 0) _exit(90);
}

static long set_policy(int policy, int prio) {
    struct sched_param p = {.sched_priority = prio};
    return sched_setscheduler(0, policy, &p);
}

static long set_attr(int policy, int nice, int prio) {
    struct attr a = {.size = SCHED_ATTR_VER0, .policy = policy, .nice = nice, .priority = prio};
    return syscall(SYS_sched_setattr, 0, &a, 0);
}

static void without_cap_sys_nice(void) {
    drop_cap(CAP_SYS_NICE);
    printf("nice 5: %s\n", res(setpriority(PRIO_PROCESS, 0, 5)));
    printf("back to nice 0: %s\n", res(setpriority(PRIO_PROCESS, 0, 0)));
    printf("nice 7 by sched_setattr: %s, ", res(set_attr(SCHED_OTHER, 7, 0)));
    printf("nice 6: %s\n", res(set_attr(SCHED_OTHER, 6, 0)));
    printf("SCHED_FIFO 10: %s, ", res(set_policy(SCHED_FIFO, 10)));
    printf("by sched_setattr: %s, ", res(set_attr(SCHED_RR, 0, 10)));
    printf("SCHED_DEADLINE: %s\n", res(set_attr(6, 0, 0)));
    printf("SCHED_BATCH: %s, ", res(set_policy(SCHED_BATCH, 0)));
    printf("then SCHED_OTHER: %s\n", res(set_policy(SCHED_OTHER, 0)));
    printf("SCHED_IDLE: %s, ", res(set_policy(SCHED_IDLE, 0)));
    printf("then SCHED_OTHER: %s\n", res(set_policy(SCHED_OTHER, 0)));
    printf("ioprio real-time with CAP_SYS_ADMIN: %s, ", res(syscall(SYS_ioprio_set, 1, 0, (1 << 13) | 4)));
    drop_cap(CAP_SYS_ADMIN);
    printf("without: %s\n", res(syscall(SYS_ioprio_set, 1, 0, (1 << 13) | 4)));
}

static void another_user(pid_t other) {
    drop_cap(CAP_SYS_NICE);
    if (setresuid(1000, 1000, 1000) != 0) _exit(92);
    printf("another user's process: nice 5 %s, ", res(setpriority(PRIO_PROCESS, other, 5)));
    struct sched_param p = {0};
    printf("SCHED_BATCH %s\n", res(sched_setscheduler(other, SCHED_BATCH, &p)));
}

static void in_child(void (*f)(void)) {
    int st = run_child(f);
    check("the child ran through", WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    in_child(without_cap_sys_nice);

    int go[2];
    pipe(go);
    pid_t other = fork();
    if (other == 0) {
        char c;
        read(go[0], &c, 1);
        _exit(0);
    }
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        another_user(other);
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    write(go[1], "x", 1);
    waitpid(other, NULL, 0);

    printf("with CAP_SYS_NICE: nice -5 %s, ", res(setpriority(PRIO_PROCESS, 0, -5)));
    printf("SCHED_FIFO 50 %s, ", res(set_policy(SCHED_FIFO, 50)));
    printf("back %s\n", res(set_policy(SCHED_OTHER, 0)));
    printf("%d failures\n", failures);
    return failures != 0;
}
