// Time namespaces (CLONE_NEWTIME): unshare makes one for the children to come,
// whose CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets /proc/self/timens_offsets sets
// until a process enters it (fork, exec, clone3, setns). Clocks are read through
// the vDSO and through the system call; absolute timers and sleeps, sysinfo and
// /proc/uptime follow the namespace. Run as root; prints only what is the same
// natively and in the sandbox.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define SEC 1000000000LL
#define DAY (86400 * SEC)
#define HOURS2 (7200 * SEC)

static int64_t now(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec * SEC + ts.tv_nsec;
}

static int64_t now_syscall(clockid_t c) {
    struct timespec ts;
    syscall(SYS_clock_gettime, c, &ts);
    return ts.tv_sec * SEC + ts.tv_nsec;
}

static ino_t ns_ino(const char *which) {
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/self/ns/%s", which);
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

// Within [lo, lo + 10 s]: a clock read some time after another, shifted by lo.
static int ahead(int64_t later, int64_t earlier, int64_t lo) {
    return later - earlier >= lo && later - earlier < lo + 10 * SEC;
}

static void show_offsets(const char *when) {
    char buf[256] = "";
    int fd = open("/proc/self/timens_offsets", O_RDONLY);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    printf("timens_offsets %s:\n%s", when, buf);
}

static const char *write_offsets(const char *text) {
    int fd = open("/proc/self/timens_offsets", O_WRONLY);
    ssize_t n = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    return n == (ssize_t)strlen(text) ? "0" : errname(e);
}

static void *idle_thread(void *arg) {
    pause();
    return arg;
}

// The exec'd half: the process entered the namespace its parent made.
static int after_exec(int64_t parent_mono) {
    check("exec: in the namespace made for children", ns_ino("time") == ns_ino("time_for_children"));
    check("exec: monotonic is an hour ahead (vDSO)", ahead(now(CLOCK_MONOTONIC), parent_mono, 3600 * SEC));
    check("exec: monotonic is an hour ahead (syscall)", ahead(now_syscall(CLOCK_MONOTONIC), parent_mono, 3600 * SEC));
    return failures != 0;
}

// A child forked into the new namespace (offsets: a day of monotonic time,
// two hours and 500 ns of boot time).
static int in_child(int64_t mono0, int64_t boot0, int64_t real0, ino_t parent_time, ino_t for_children, int first_fd) {
    check("child: in the new namespace", ns_ino("time") == for_children && ns_ino("time") != parent_time);
    check("child: monotonic a day ahead (vDSO)", ahead(now(CLOCK_MONOTONIC), mono0, DAY));
    check("child: monotonic a day ahead (syscall)", ahead(now_syscall(CLOCK_MONOTONIC), mono0, DAY));
    check("child: monotonic_raw a day ahead", ahead(now(CLOCK_MONOTONIC_RAW), mono0, DAY - SEC));
    check("child: monotonic_coarse a day ahead", ahead(now(CLOCK_MONOTONIC_COARSE), mono0, DAY - SEC));
    check("child: boottime two hours ahead (vDSO)", ahead(now(CLOCK_BOOTTIME), boot0, HOURS2));
    check("child: boottime two hours ahead (syscall)", ahead(now_syscall(CLOCK_BOOTTIME), boot0, HOURS2));
    check("child: realtime unchanged", ahead(now(CLOCK_REALTIME), real0, 0));
    struct sysinfo si;
    sysinfo(&si);
    check("child: sysinfo uptime counts the boottime offset", si.uptime >= 7200);
    double up = 0;
    FILE *f = fopen("/proc/uptime", "r");
    if (f) {
        if (fscanf(f, "%lf", &up) != 1) up = 0;
        fclose(f);
    }
    check("child: /proc/uptime counts the boottime offset", up >= 7200);
    printf("child: writing offsets once entered: %s\n", write_offsets("monotonic 5 0\n"));

    // An absolute sleep and an absolute timer on the namespace's clock.
    int64_t start = now(CLOCK_REALTIME);
    struct timespec until;
    int64_t target = now(CLOCK_MONOTONIC) + 50 * 1000000LL;
    until.tv_sec = target / SEC;
    until.tv_nsec = target % SEC;
    alarm(10);
    int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
    int64_t slept = now(CLOCK_REALTIME) - start;
    check("child: absolute clock_nanosleep waits its 50 ms", r == 0 && slept >= 40 * 1000000LL && slept < 5 * SEC);
    int tfd = timerfd_create(CLOCK_BOOTTIME, 0);
    int64_t at = now(CLOCK_BOOTTIME) + 50 * 1000000LL;
    struct itimerspec its = {.it_value = {at / SEC, at % SEC}};
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
    struct pollfd p = {tfd, POLLIN, 0};
    check("child: absolute timerfd fires, not at once", poll(&p, 1, 0) == 0 && poll(&p, 1, 5000) == 1);
    close(tfd);
    alarm(0);

    // Back to the parent's namespace, then a thread makes it impossible.
    int own = open("/proc/self/ns/time", O_RDONLY);
    check("child: setns to the first namespace", setns(first_fd, CLONE_NEWTIME) == 0);
    check("child: back on the first namespace's clock", ahead(now(CLOCK_MONOTONIC), mono0, 0));
    check("child: ... through the syscall too", ahead(now_syscall(CLOCK_MONOTONIC), mono0, 0));
    check("child: and for its children", ns_ino("time_for_children") == ns_ino("time"));
    printf("child: setns with the wrong type: %s\n", setns(own, CLONE_NEWNET) ? errname(errno) : "0");
    pthread_t th;
    pthread_create(&th, NULL, idle_thread, NULL);
    printf("child: setns with two threads: %s\n", setns(own, CLONE_NEWTIME) ? errname(errno) : "0");
    return failures != 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 3 && !strcmp(argv[1], "exec")) return after_exec(strtoll(argv[2], NULL, 10));

    ino_t first = ns_ino("time");
    int first_fd = open("/proc/self/ns/time", O_RDONLY);
    check("at first: time and time_for_children agree", first != 0 && ns_ino("time_for_children") == first);
    printf("clone with CLONE_NEWTIME's bit is an exit signal, unshare of nothing: %d\n", unshare(0));
    check("unshare(CLONE_NEWTIME)", unshare(CLONE_NEWTIME) == 0);
    ino_t for_children = ns_ino("time_for_children");
    check("the caller stays where it was", ns_ino("time") == first);
    check("its children will not", for_children != first);
    show_offsets("after unshare");
    printf("unknown clock: %s\n", write_offsets("realtime 5 0\n"));
    printf("nanoseconds out of range: %s\n", write_offsets("monotonic 1 1000000000\n"));
    printf("not a number: %s\n", write_offsets("monotonic x 0\n"));
    printf("too few fields: %s\n", write_offsets("boottime 5\n"));
    printf("seconds out of range: %s\n", write_offsets("monotonic 100000000000 0\n"));
    printf("clock before zero: %s\n", write_offsets("monotonic -1000000000 0\n"));
    show_offsets("after the refused writes");
    printf("a day and two hours: %s\n", write_offsets("monotonic 86400 0\n7 7200 500\n"));
    show_offsets("after the write");

    int64_t mono0 = now(CLOCK_MONOTONIC), boot0 = now(CLOCK_BOOTTIME), real0 = now(CLOCK_REALTIME);
    pid_t pid = fork();
    if (pid == 0) _exit(in_child(mono0, boot0, real0, first, for_children, first_fd));
    int status;
    waitpid(pid, &status, 0);
    check("the forked child's checks passed", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("writing offsets once a child entered: %s\n", write_offsets("monotonic 5 0\n"));
    check("the parent's clock is its own", ahead(now(CLOCK_MONOTONIC), mono0, 0));

    // clone3 with CLONE_NEWTIME: a namespace of the child's own, with the offsets
    // of the one it was made from.
    struct clone_args ca = {.flags = CLONE_NEWTIME, .exit_signal = SIGCHLD};
    mono0 = now(CLOCK_MONOTONIC);
    pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0) {
        int ok = ns_ino("time") != for_children && ns_ino("time") != first && ahead(now(CLOCK_MONOTONIC), mono0, DAY);
        _exit(ok ? 0 : 1);
    }
    waitpid(pid, &status, 0);
    check("clone3(CLONE_NEWTIME): a new namespace with the same offsets", pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ca.flags = CLONE_NEWTIME | 0x40;
    printf("clone3 with another exit-signal bit: %s\n", syscall(SYS_clone3, &ca, sizeof ca) < 0 ? errname(errno) : "0");

    // exec enters the namespace made for children. The forked child is in the
    // day-ahead namespace; the one it makes is an hour further.
    pid = fork();
    if (pid == 0) {
        unshare(CLONE_NEWTIME);
        write_offsets("monotonic 90000 0\n");
        char arg[32];
        snprintf(arg, sizeof arg, "%lld", (long long)now(CLOCK_MONOTONIC));
        execl("/proc/self/exe", argv[0], "exec", arg, (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    check("the exec'd child's checks passed", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("%s\n", failures ? "SOME FAILED" : "ALL OK");
    return failures != 0;
}
