// Scheduling and small system calls: sched_{get,set}affinity, sched_yield, nice
// values, policies and priorities, getcpu, sysinfo, the mlock family,
// personality, and the utime family.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utime.h>

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
    check("sched_getaffinity of pid -1 -> ESRCH", syscall(SYS_sched_getaffinity, -1, sizeof set, &set) == -1 && errno == ESRCH);
    check("sched_setaffinity of pid -1 -> ESRCH", syscall(SYS_sched_setaffinity, -1, sizeof set, &set) == -1 && errno == ESRCH);
    check("sched_getscheduler of pid -1 -> EINVAL", syscall(SYS_sched_getscheduler, -1) == -1 && errno == EINVAL);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    check("mask count <= online CPUs (or online unknown)", online <= 0 || CPU_COUNT(&set) <= online);
    int ok = 1;
    for (int i = 0; i < 100; i++)
        if (sched_yield() != 0) ok = 0;
    check("sched_yield x100 returns 0", ok);

    // Affinity: a one-CPU mask reads back, an empty one is EINVAL.
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    check("sched_setaffinity to CPU 0", sched_setaffinity(0, sizeof one, &one) == 0);
    CPU_ZERO(&set2);
    sched_getaffinity(0, sizeof set2, &set2);
    check("and it reads back", CPU_COUNT(&set2) == 1 && CPU_ISSET(0, &set2));
    CPU_ZERO(&one);
    errno = 0;
    check("an empty mask is EINVAL", sched_setaffinity(0, sizeof one, &one) == -1 && errno == EINVAL);
    sched_setaffinity(0, sizeof set, &set);

    // Nice values: read back, inherited by a child, clamped, raw getpriority is 20-nice.
    errno = 0;
    check("getpriority starts at 0", getpriority(PRIO_PROCESS, 0) == 0 && errno == 0);
    check("setpriority to 5", setpriority(PRIO_PROCESS, 0, 5) == 0 && getpriority(PRIO_PROCESS, 0) == 5);
    check("the raw call returns 20 - nice", syscall(SYS_getpriority, PRIO_PROCESS, 0) == 15);
    pid_t c = fork();
    if (c == 0) _exit(getpriority(PRIO_PROCESS, 0) == 5 ? 0 : 1);
    int st;
    waitpid(c, &st, 0);
    check("a child inherits the nice value", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    check("nice 100 is clamped to 19", setpriority(PRIO_PROCESS, 0, 100) == 0 && getpriority(PRIO_PROCESS, 0) == 19);
    errno = 0;
    check("an unknown pid is ESRCH", getpriority(PRIO_PROCESS, 999999) == -1 && errno == ESRCH);
    errno = 0;
    check("an unknown which is EINVAL", getpriority(42, 0) == -1 && errno == EINVAL);
    setpriority(PRIO_PROCESS, 0, 0);

    // Policies and priorities.
    check("SCHED_OTHER by default", sched_getscheduler(0) == SCHED_OTHER);
    check("priority ranges", sched_get_priority_max(SCHED_FIFO) == 99 && sched_get_priority_min(SCHED_RR) == 1 && sched_get_priority_max(SCHED_OTHER) == 0);
    errno = 0;
    check("an unknown policy's range is EINVAL", sched_get_priority_max(42) == -1 && errno == EINVAL);
    struct sched_param sp = {.sched_priority = 0};
    check("SCHED_BATCH can be set and read back", sched_setscheduler(0, SCHED_BATCH, &sp) == 0 && sched_getscheduler(0) == SCHED_BATCH);
    sp.sched_priority = 5;
    errno = 0;
    check("a priority outside the policy's range is EINVAL", sched_setscheduler(0, SCHED_OTHER, &sp) == -1 && errno == EINVAL);
    sp.sched_priority = 0;
    sched_setscheduler(0, SCHED_OTHER, &sp);
    check("sched_getparam", sched_getparam(0, &sp) == 0 && sp.sched_priority == 0);
    struct timespec slice;
    check("sched_rr_get_interval", sched_rr_get_interval(0, &slice) == 0);

    unsigned cpu = 99, node = 99;
    check("getcpu names an online CPU", syscall(SYS_getcpu, &cpu, &node, NULL) == 0 && (long)cpu < online && node == 0);

    struct sysinfo si;
    check("sysinfo", sysinfo(&si) == 0 && si.totalram > 0 && si.freeram <= si.totalram && si.procs >= 1 && si.mem_unit >= 1 && si.uptime >= 0);

    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check("mlock and munlock a mapping", mlock(m, 8192) == 0 && munlock(m, 8192) == 0);
    munmap(m + 4096, 4096);
    errno = 0;
    check("mlock over a hole is ENOMEM", mlock(m, 8192) == -1 && errno == ENOMEM);
    check("mlockall(MCL_CURRENT) and munlockall", mlockall(MCL_CURRENT) == 0 && munlockall() == 0);
    errno = 0;
    check("mlockall(0) is EINVAL", mlockall(0) == -1 && errno == EINVAL);

    check("personality query is PER_LINUX", personality(0xffffffff) == PER_LINUX);
    check("personality set returns the old value", personality(PER_LINUX | ADDR_NO_RANDOMIZE) == PER_LINUX && personality(0xffffffff) == (PER_LINUX | ADDR_NO_RANDOMIZE));
    personality(PER_LINUX);

    char path[] = "/tmp/rvisor-sched-XXXXXX";
    close(mkstemp(path));
    struct utimbuf ub = {.actime = 1000, .modtime = 2000};
    struct stat sb;
    check("utime", utime(path, &ub) == 0 && stat(path, &sb) == 0 && sb.st_atime == 1000 && sb.st_mtime == 2000);
    struct timeval tv[2] = {{3000, 5}, {4000, 7}};
    check("utimes keeps microseconds", utimes(path, tv) == 0 && stat(path, &sb) == 0 && sb.st_mtime == 4000 && sb.st_mtim.tv_nsec == 7000);
    tv[0].tv_usec = 1000000;
    errno = 0;
    check("utimes with tv_usec of a million is EINVAL", utimes(path, tv) == -1 && errno == EINVAL);
    check("futimesat with NULL times is now", futimesat(AT_FDCWD, path, NULL) == 0 && stat(path, &sb) == 0 && sb.st_mtime > 4000);
    unlink(path);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
