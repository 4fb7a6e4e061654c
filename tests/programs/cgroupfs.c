// /sys/fs/cgroup in the sandbox: a cgroup2 mount showing the container's cgroup
// (the sandbox's, unlimited under `rvisor do`), as a JVM or Go's automaxprocs
// finds and reads it: /proc/self/cgroup names the cgroup, mountinfo the mount.
// Sandbox only: the host's cgroup layout is its own.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define CGROUP2_SUPER_MAGIC 0x63677270

static char *slurp(const char *path) {
    static char buf[8192];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0)
        return NULL;
    buf[n] = 0;
    return buf;
}

static int has_line(const char *text, const char *line) {
    size_t len = strlen(line);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, line, len) && (p[len] == '\n' || p[len] == 0))
            return 1;
    return 0;
}

static int has_id(const char *path, int id) {
    char want[16];
    snprintf(want, sizeof want, "%d", id);
    return has_line(slurp(path), want);
}

static long long number(const char *path) {
    char *s = slurp(path);
    return s ? atoll(s) : -1;
}

/* The value of `key` in a "key value" file such as memory.stat or cpu.stat. */
static long long stat_value(const char *path, const char *key) {
    char *s = slurp(path);
    size_t len = strlen(key);
    for (char *p = s; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, key, len) && p[len] == ' ')
            return atoll(p + len + 1);
    return -1;
}

static int stop_thread[2];
static volatile int thread_tid;

static void *thread_main(void *arg) {
    (void)arg;
    thread_tid = gettid();
    char c;
    ssize_t n = read(stop_thread[0], &c, 1);
    (void)n;
    return NULL;
}

int main(void) {
    struct statfs fs;
    check("/sys/fs/cgroup is a cgroup2 mount", statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC);
    char *s = slurp("/proc/self/cgroup");
    check("/proc/self/cgroup is 0::/", s && !strcmp(s, "0::/\n"));
    s = slurp("/proc/self/mountinfo");
    char *line = s ? strstr(s, " /sys/fs/cgroup ") : NULL;
    char *end = line ? strchr(line, '\n') : NULL;
    if (end)
        *end = 0;
    check("mountinfo shows cgroup2 rw,nosuid,nodev,noexec", line && strstr(line, " rw,nosuid,nodev,noexec,relatime ") && strstr(line, " - cgroup2 "));

    s = slurp("/sys/fs/cgroup/cgroup.controllers");
    check("cgroup.controllers is cpu memory pids", s && !strcmp(s, "cpu memory pids\n"));
    s = slurp("/sys/fs/cgroup/cgroup.subtree_control");
    check("cgroup.subtree_control is empty", s && !strcmp(s, "\n"));
    s = slurp("/sys/fs/cgroup/cgroup.type");
    check("cgroup.type is domain", s && !strcmp(s, "domain\n"));
    check("cgroup.procs holds this process", has_id("/sys/fs/cgroup/cgroup.procs", getpid()));

    // A child process and a thread are in it too.
    int child_stop[2];
    if (pipe(child_stop) || pipe(stop_thread))
        return 2;
    pid_t child = fork();
    if (child == 0) {
        char c;
        _exit(read(child_stop[0], &c, 1) == 1 ? 0 : 1);
    }
    pthread_t th;
    pthread_create(&th, NULL, thread_main, NULL);
    while (!thread_tid)
        usleep(1000);
    check("cgroup.procs holds a child", has_id("/sys/fs/cgroup/cgroup.procs", child));
    check("cgroup.threads holds a thread", has_id("/sys/fs/cgroup/cgroup.threads", thread_tid) && has_id("/sys/fs/cgroup/cgroup.threads", getpid()));
    check("pids.current counts them", number("/sys/fs/cgroup/pids.current") >= 3);
    if (write(child_stop[1], "x", 1) != 1 || write(stop_thread[1], "x", 1) != 1)
        return 2;
    pthread_join(th, NULL);
    waitpid(child, NULL, 0);
    check("cgroup.procs no longer holds the child", !has_id("/sys/fs/cgroup/cgroup.procs", child));

    // No limits under rvisor do.
    s = slurp("/sys/fs/cgroup/memory.max");
    check("memory.max is max", s && !strcmp(s, "max\n"));
    s = slurp("/sys/fs/cgroup/cpu.max");
    check("cpu.max is max 100000", s && !strcmp(s, "max 100000\n"));
    s = slurp("/sys/fs/cgroup/pids.max");
    check("pids.max is max", s && !strcmp(s, "max\n"));

    // memory.current and memory.stat's anon follow what the program touches.
    long long before = number("/sys/fs/cgroup/memory.current"), anon_before = stat_value("/sys/fs/cgroup/memory.stat", "anon");
    size_t len = 32 << 20;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 2;
    memset(p, 1, len);
    long long after = number("/sys/fs/cgroup/memory.current"), anon_after = stat_value("/sys/fs/cgroup/memory.stat", "anon");
    check("memory.current grows by what was touched", before > 0 && after - before >= (long long)(30 << 20));
    check("memory.stat anon grows too", anon_before >= 0 && anon_after - anon_before >= (long long)(30 << 20));
    munmap(p, len);

    // cpu.stat counts the time spent.
    volatile unsigned long spin = 0;
    for (unsigned long i = 0; i < 100000000UL; i++)
        spin += i;
    check("cpu.stat usage_usec counts CPU time", stat_value("/sys/fs/cgroup/cpu.stat", "usage_usec") > 10000);

    // The view is read-only: writes and new cgroups are refused.
    int fd = open("/sys/fs/cgroup/memory.max", O_WRONLY);
    errno = 0;
    check("writing memory.max is EPERM", fd >= 0 && write(fd, "1000000\n", 8) < 0 && errno == EPERM);
    close(fd);
    s = slurp("/sys/fs/cgroup/memory.max");
    check("memory.max is unchanged", s && !strcmp(s, "max\n"));
    fd = open("/sys/fs/cgroup/cgroup.subtree_control", O_WRONLY);
    errno = 0;
    check("writing cgroup.subtree_control is EPERM", fd >= 0 && write(fd, "+memory", 7) < 0 && errno == EPERM);
    close(fd);
    errno = 0;
    check("mkdir of a child cgroup is EPERM", mkdir("/sys/fs/cgroup/child", 0755) < 0 && errno == EPERM);

    if (failures)
        return 1;
    printf("all ok\n");
    return 0;
}
