// A leader that exits while other threads of its group live on stays a zombie
// until the group is gone (Linux's delay_group_leader): it keeps its id, task/
// lists it, stat and status show Z, Threads: counts it, and, its memory and
// files gone, /proc/PID (which /proc/self is for every thread) shows what a
// zombie's does. A live thread's own task/TID files still work. An exec from
// the live thread then takes the leader's id, and the old leader is gone. Calls
// naming the zombie leader's id answer as Linux's do.
// Synchronisation is by the leader's state in /proc; never by sleeping.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "timing.h"

static pid_t pid;
// The program, for the exec: /proc/self/exe is the zombie leader's by then.
static char exe[4096];

// The bytes of `path` (-1 and errno if it cannot be read).
static ssize_t slurp(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    size_t n = 0;
    ssize_t r;
    while (n < size - 1 && (r = read(fd, buf + n, size - 1 - n)) > 0) n += r;
    close(fd);
    buf[n] = 0;
    return n;
}

// The entries of a directory, except . and .., or -1 and errno.
static int entries(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    int err = errno;
    closedir(d);
    errno = err;
    return err ? -1 : n;
}

static void print_errno(const char *what, int r) {
    printf("%s: %d %s\n", what, r < 0 ? -1 : r, r < 0 ? errname(errno) : "0");
}

static void wait_leader_zombie(void) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, pid);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (stat_state(path) != 'Z' && ms_since(&t0) < 3000) sched_yield();
}

static void leader_view(const char *label, const char *dir) {
    char path[128], buf[8192];
    printf("-- %s\n", label);
    snprintf(path, sizeof path, "%s/stat", dir);
    check("stat says Z", stat_state(path) == 'Z');
    snprintf(path, sizeof path, "%s/status", dir);
    check("status read", slurp(path, buf, sizeof buf) > 0);
    check("status State: Z (zombie)", strstr(buf, "State:\tZ (zombie)\n") != NULL);
    check("status Threads: 2", strstr(buf, "Threads:\t2\n") != NULL);
    check("status no VmSize", strstr(buf, "VmSize:") == NULL);
    check("status no VmRSS", strstr(buf, "VmRSS:") == NULL);
    snprintf(path, sizeof path, "%s/cmdline", dir);
    print_errno("cmdline bytes", (int)slurp(path, buf, sizeof buf));
    snprintf(path, sizeof path, "%s/maps", dir);
    print_errno("maps bytes", (int)slurp(path, buf, sizeof buf));
    snprintf(path, sizeof path, "%s/fd", dir);
    print_errno("fd entries", entries(path));
    snprintf(path, sizeof path, "%s/exe", dir);
    print_errno("exe readlink", (int)(readlink(path, buf, sizeof buf) < 0 ? -1 : 0));
    snprintf(path, sizeof path, "%s/cwd", dir);
    print_errno("cwd readlink", (int)(readlink(path, buf, sizeof buf) < 0 ? -1 : 0));
}

static void live_view(const char *label, const char *dir) {
    char path[128], buf[8192];
    printf("-- %s\n", label);
    snprintf(path, sizeof path, "%s/stat", dir);
    char s = stat_state(path);
    check("live stat R or S", s == 'R' || s == 'S');
    snprintf(path, sizeof path, "%s/status", dir);
    check("live status read", slurp(path, buf, sizeof buf) > 0);
    check("live status has VmRSS", strstr(buf, "VmRSS:") != NULL);
    check("live status Threads: 2", strstr(buf, "Threads:\t2\n") != NULL);
    snprintf(path, sizeof path, "%s/cmdline", dir);
    check("live cmdline", slurp(path, buf, sizeof buf) > 0);
    snprintf(path, sizeof path, "%s/maps", dir);
    check("live maps", slurp(path, buf, sizeof buf) > 0);
    snprintf(path, sizeof path, "%s/fd", dir);
    check("live fd readable", entries(path) >= 3);
    snprintf(path, sizeof path, "%s/exe", dir);
    check("live exe", readlink(path, buf, sizeof buf) > 0);
}

static void *worker(void *arg) {
    int exec_after = *(int *)arg;
    wait_leader_zombie();
    char path[128], buf[256];
    pid_t tid = gettid();
    check("still our pid", getpid() == pid);
    ssize_t n = readlink("/proc/self", buf, sizeof buf - 1);
    buf[n < 0 ? 0 : n] = 0;
    check("/proc/self is the tgid", atoi(buf) == pid && n > 0);
    n = readlink("/proc/thread-self", buf, sizeof buf - 1);
    buf[n < 0 ? 0 : n] = 0;
    snprintf(path, sizeof path, "%d/task/%d", pid, tid);
    check("/proc/thread-self is the caller", strcmp(buf, path) == 0);
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    check("task/ lists leader and worker", entries(path) == 2);
    snprintf(path, sizeof path, "/proc/%d/task/%d", pid, pid);
    check("task/PID exists", access(path, F_OK) == 0);
    snprintf(path, sizeof path, "/proc/%d", pid);
    leader_view("/proc/PID", path);
    leader_view("/proc/self", "/proc/self");
    snprintf(path, sizeof path, "/proc/%d/task/%d", pid, pid);
    leader_view("/proc/PID/task/PID", path);
    snprintf(path, sizeof path, "/proc/%d/task/%d", pid, tid);
    live_view("/proc/PID/task/TID", path);
    live_view("/proc/thread-self", "/proc/thread-self");
    // A zombie cannot be attached to (Linux's ptrace_attach: EPERM).
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        long r = ptrace(PTRACE_ATTACH, pid, 0, 0);
        printf("attach to the zombie leader: %ld %s\n", r, r < 0 ? errname(errno) : "0");
        if (r == 0) ptrace(PTRACE_DETACH, pid, 0, 0);
        fflush(stdout);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    // Calls that name the zombie leader's id answer as Linux's do for a zombie:
    // most succeed, process_vm_readv has no memory to read (ESRCH).
    static int word = 42;
    int got = 0;
    struct iovec local = {&got, sizeof got}, remote = {&word, sizeof word};
    cpu_set_t cpus;
    struct rlimit rl;
    struct sched_param sp;
    print_errno("tgkill 0 to the leader", (int)syscall(SYS_tgkill, pid, pid, 0));
    print_errno("kill 0", kill(pid, 0));
    print_errno("process_vm_readv of the leader", (int)process_vm_readv(pid, &local, 1, &remote, 1, 0));
    print_errno("sched_getaffinity", sched_getaffinity(pid, sizeof cpus, &cpus));
    print_errno("sched_setaffinity", sched_getaffinity(pid, sizeof cpus, &cpus) ? -1 : sched_setaffinity(pid, sizeof cpus, &cpus));
    print_errno("sched_getparam", sched_getparam(pid, &sp));
    print_errno("prlimit", prlimit(pid, RLIMIT_NOFILE, NULL, &rl));
    errno = 0;
    int prio = getpriority(PRIO_PROCESS, pid);
    print_errno("getpriority", prio == -1 && errno ? -1 : 0);
    fflush(stdout);
    if (exec_after) {
        char *argv[] = {"leader_zombie", "after-exec", NULL};
        execv(exe, argv);
        printf("exec: %s\n", errname(errno));
        exit(1);
    }
    exit(failures ? 1 : 0);
}

// Run in a child: the leader exits alone, the worker looks.
static int scenario(int exec_after) {
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        pid = getpid();
        static int arg;
        arg = exec_after;
        pthread_t t;
        if (pthread_create(&t, NULL, worker, &arg)) _exit(2);
        pthread_exit(NULL);
    }
    int status;
    if (waitpid(child, &status, 0) != child) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// After an exec from the worker: the worker is the leader, alone.
static int after_exec(void) {
    char buf[4096];
    check("exec'd thread took the leader's id", gettid() == getpid());
    check("task/ lists one", entries("/proc/self/task") == 1);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", getpid());
    char s = stat_state(path);
    check("new leader R or S", s == 'R' || s == 'S');
    check("status read", slurp("/proc/self/status", buf, sizeof buf) > 0);
    check("status Threads: 1", strstr(buf, "Threads:\t1\n") != NULL);
    check("status has VmRSS", strstr(buf, "VmRSS:") != NULL);
    check("cmdline", slurp("/proc/self/cmdline", buf, sizeof buf) > 0);
    return failures ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "after-exec") == 0) return after_exec();
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 3;
    check("leader zombie scenario", scenario(0) == 0);
    check("exec from the worker", scenario(1) == 0);
    if (!failures) printf("all ok\n");
    return failures != 0;
}
