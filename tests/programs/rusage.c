// Page-fault and context-switch accounting: getrusage's ru_minflt and ru_nvcsw
// for RUSAGE_THREAD, RUSAGE_SELF (exited threads included) and RUSAGE_CHILDREN
// (only once a child is reaped, its own reaped children included), wait4's and
// waitid's rusage, /proc/[pid]/stat's minflt, cminflt, majflt and cmajflt (the
// process's and a thread's), and /proc/[pid]/status's ctxt_switches lines. The
// sandbox populates faults in up to 2 MiB regions, so counts are checked in shape
// (at least one, at most one a page), never exactly; /proc's values must lie
// between getrusage readings taken before and after.
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGES 64
#define PAGE 4096

static struct rusage usage(int who) {
    struct rusage r;
    if (getrusage(who, &r) != 0) {
        perror("getrusage");
        exit(2);
    }
    return r;
}

// Writes to each of PAGES fresh pages of a new anonymous mapping.
static void touch_fresh_pages(void) {
    char *p = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    for (int i = 0; i < PAGES; i++) ((volatile char *)p)[i * PAGE] = 1;
}

// A /proc file read with raw calls into a static buffer that is already touched,
// so that reading it takes no page fault of its own.
static char text[8192];

static int read_proc(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n < 0) return -1;
    text[n] = 0;
    return 0;
}

// Fields 10 to 13 of a stat file (minflt, cminflt, majflt, cmajflt).
static int stat_faults(const char *path, unsigned long f[4]) {
    if (read_proc(path) != 0) return -1;
    char *p = strrchr(text, ')');
    if (!p) return -1;
    // After ") ": state (3), ppid, pgrp, session, tty_nr, tpgid, flags (9), then ours.
    return sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %lu %lu %lu %lu", &f[0], &f[1], &f[2], &f[3]) == 4 ? 0 : -1;
}

static long status_field(const char *name) {
    char *p = strstr(text, name);
    return p ? strtol(p + strlen(name), NULL, 10) : -1;
}

static int between(long lo, long x, long hi) { return lo <= x && x <= hi; }

// Waits (at most 10 s) until the thread whose stat file is `path` sleeps (state
// S), so that a wake-up sent after it finds it blocked.
static void wait_until_sleeping(const char *path) {
    char buf[512];
    for (int i = 0; i < 10000; i++) {
        int fd = open(path, O_RDONLY);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
        if (fd >= 0) close(fd);
        if (n > 0) {
            buf[n] = 0;
            char *p = strrchr(buf, ')');
            if (p && p[1] == ' ' && p[2] == 'S') return;
        }
        usleep(1000);
    }
}

static void faults_in_this_thread(void) {
    struct rusage a = usage(RUSAGE_THREAD), sa = usage(RUSAGE_SELF);
    touch_fresh_pages();
    struct rusage b = usage(RUSAGE_THREAD), sb = usage(RUSAGE_SELF);
    long d = b.ru_minflt - a.ru_minflt;
    check("touching 64 fresh pages raises RUSAGE_THREAD ru_minflt by 1 to 64", between(1, d, PAGES));
    check("and RUSAGE_SELF ru_minflt by at least as much", sb.ru_minflt - sa.ru_minflt >= d);
    check("ru_majflt does not fall", b.ru_majflt >= a.ru_majflt);
}

static void proc_stat_agrees(void) {
    unsigned long f[4];
    struct rusage a = usage(RUSAGE_SELF);
    int r = stat_faults("/proc/self/stat", f);
    struct rusage b = usage(RUSAGE_SELF), c = usage(RUSAGE_CHILDREN);
    check("/proc/self/stat parses", r == 0);
    check("its minflt lies between getrusage's readings", r == 0 && between(a.ru_minflt, f[0], b.ru_minflt));
    check("its cminflt is RUSAGE_CHILDREN's", r == 0 && f[1] == (unsigned long)c.ru_minflt);
    check("its majflt lies between getrusage's readings", r == 0 && between(a.ru_majflt, f[2], b.ru_majflt));
    check("its cmajflt is RUSAGE_CHILDREN's", r == 0 && f[3] == (unsigned long)c.ru_majflt);
}

static void proc_status_agrees(void) {
    // The main thread is the leader, which /proc/self/status shows.
    struct rusage a = usage(RUSAGE_THREAD);
    int r = read_proc("/proc/self/status");
    struct rusage b = usage(RUSAGE_THREAD);
    long v = r == 0 ? status_field("voluntary_ctxt_switches:") : -1;
    long nv = r == 0 ? status_field("nonvoluntary_ctxt_switches:") : -1;
    check("/proc/self/status has voluntary_ctxt_switches", v >= 0);
    check("/proc/self/status has nonvoluntary_ctxt_switches", nv >= 0);
    check("voluntary_ctxt_switches lies between getrusage's ru_nvcsw", between(a.ru_nvcsw, v, b.ru_nvcsw));
    check("nonvoluntary_ctxt_switches lies between getrusage's ru_nivcsw", between(a.ru_nivcsw, nv, b.ru_nivcsw));
}

static void blocking_read_switches(void) {
    int p[2];
    if (pipe(p) != 0) exit(2);
    struct rusage a = usage(RUSAGE_THREAD), sa = usage(RUSAGE_SELF);
    pid_t pid = fork();
    if (pid == 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)getppid());
        wait_until_sleeping(path);
        _exit(write(p[1], "x", 1) == 1 ? 0 : 1);
    }
    char c;
    ssize_t n = read(p[0], &c, 1);
    struct rusage b = usage(RUSAGE_THREAD), sb = usage(RUSAGE_SELF);
    check("a read of an empty pipe a child fills later returns its byte", n == 1);
    check("it raises RUSAGE_THREAD ru_nvcsw", b.ru_nvcsw > a.ru_nvcsw);
    check("and RUSAGE_SELF ru_nvcsw", sb.ru_nvcsw > sa.ru_nvcsw);
    int st;
    check("the writer exits 0", waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(p[0]);
    close(p[1]);
}

// A child that touches fresh pages and has a child of its own do so, reaps it,
// and sends back its own and its children's minor faults just before it exits.
static pid_t faulting_child(int out) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    pid_t g = fork();
    if (g == 0) {
        touch_fresh_pages();
        _exit(0);
    }
    int st;
    if (waitpid(g, &st, 0) != g) _exit(1);
    touch_fresh_pages();
    long counts[2] = {usage(RUSAGE_SELF).ru_minflt, usage(RUSAGE_CHILDREN).ru_minflt};
    _exit(write(out, counts, sizeof counts) == sizeof counts ? 0 : 1);
}

static void children_faults(void) {
    int p[2];
    if (pipe(p) != 0) exit(2);
    struct rusage c0 = usage(RUSAGE_CHILDREN);
    pid_t pid = faulting_child(p[1]);
    long counts[2] = {0, 0};
    check("the child reports its faults", read(p[0], counts, sizeof counts) == sizeof counts);
    check("the child took faults, and so did its child", counts[0] >= 1 && counts[1] >= 1);
    siginfo_t si;
    check("waitid WNOWAIT sees it exit", waitid(P_PID, pid, &si, WEXITED | WNOWAIT) == 0 && si.si_pid == pid);
    struct rusage c1 = usage(RUSAGE_CHILDREN);
    check("an unreaped child's faults are not in RUSAGE_CHILDREN", c1.ru_minflt == c0.ru_minflt);
    check("nor its switches", c1.ru_nvcsw == c0.ru_nvcsw);
    struct rusage w;
    int st;
    check("wait4 reaps it", wait4(pid, &st, 0, &w) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    check("wait4's ru_minflt has its faults and its reaped child's", w.ru_minflt >= counts[0] + counts[1]);
    struct rusage c2 = usage(RUSAGE_CHILDREN);
    check("RUSAGE_CHILDREN ru_minflt grew by wait4's", c2.ru_minflt - c0.ru_minflt == w.ru_minflt);
    check("RUSAGE_CHILDREN ru_nvcsw grew by wait4's", c2.ru_nvcsw - c0.ru_nvcsw == w.ru_nvcsw);
    check("RUSAGE_CHILDREN ru_majflt grew by wait4's", c2.ru_majflt - c0.ru_majflt == w.ru_majflt);
    unsigned long f[4];
    check("/proc/self/stat's cminflt is RUSAGE_CHILDREN's", stat_faults("/proc/self/stat", f) == 0 && f[1] == (unsigned long)c2.ru_minflt);

    // waitid's rusage (the system call's fifth argument, which glibc hides).
    pid = faulting_child(p[1]);
    check("another child reports its faults", read(p[0], counts, sizeof counts) == sizeof counts);
    struct rusage wi;
    memset(&wi, 0, sizeof wi);
    check("waitid reaps it", syscall(SYS_waitid, P_PID, pid, &si, WEXITED, &wi) == 0 && si.si_pid == pid);
    check("waitid's ru_minflt has its faults and its reaped child's", wi.ru_minflt >= counts[0] + counts[1]);
    struct rusage c3 = usage(RUSAGE_CHILDREN);
    check("RUSAGE_CHILDREN ru_minflt grew by waitid's", c3.ru_minflt - c2.ru_minflt == wi.ru_minflt);
    close(p[0]);
    close(p[1]);
}

static int wake[2];
static volatile pid_t thread_tid;
static long thread_faults, thread_switches;
static int thread_stat_ok;

static void *faulting_thread(void *arg) {
    (void)arg;
    struct rusage a = usage(RUSAGE_THREAD);
    touch_fresh_pages();
    thread_tid = gettid();
    char c;
    // Blocks until the main thread writes.
    if (read(wake[0], &c, 1) != 1) return NULL;
    unsigned long f[4];
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)gettid());
    struct rusage b = usage(RUSAGE_THREAD);
    int r = stat_faults(path, f);
    struct rusage e = usage(RUSAGE_THREAD), ch = usage(RUSAGE_CHILDREN);
    thread_stat_ok = r == 0 && between(b.ru_minflt, f[0], e.ru_minflt) && f[1] == (unsigned long)ch.ru_minflt;
    thread_faults = e.ru_minflt - a.ru_minflt;
    thread_switches = e.ru_nvcsw;
    return NULL;
}

static void thread_counts(void) {
    if (pipe(wake) != 0) exit(2);
    pthread_t th;
    if (pthread_create(&th, NULL, faulting_thread, NULL) != 0) exit(2);
    while (!thread_tid) usleep(1000);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)thread_tid);
    wait_until_sleeping(path);
    if (write(wake[1], "x", 1) != 1) exit(2);
    pthread_join(th, NULL);
    check("a thread's /proc/self/task/TID/stat minflt and cminflt agree with getrusage", thread_stat_ok);
    check("the thread took faults and blocked", thread_faults >= 1 && thread_switches >= 1);
    // Counted once in RUSAGE_SELF, after it exited, and not in the main thread's.
    struct rusage self = usage(RUSAGE_SELF), mine = usage(RUSAGE_THREAD);
    check("RUSAGE_SELF keeps an exited thread's faults", self.ru_minflt - mine.ru_minflt >= thread_faults);
    check("and its switches", self.ru_nvcsw - mine.ru_nvcsw >= thread_switches);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    faults_in_this_thread();
    proc_stat_agrees();
    proc_status_agrees();
    blocking_read_switches();
    children_faults();
    thread_counts();
    printf("%d failures\n", failures);
    return failures != 0;
}
