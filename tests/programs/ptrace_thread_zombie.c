// A traced thread other than the leader stays a zombie when it exits, as
// Linux's exit_notify has it (a tracee is never autoreaped): its tracer's
// waitpid(tid, __WALL) reports it, /proc shows it as Z under task/, and until
// it is reaped the group is not empty, so its dead leader is not reported to
// the parent (delay_group_leader). Reaping it (release_task) tells the parent;
// so does its tracer's exit (__ptrace_detach releases it).
// Synchronisation is by pipes, waits and the leader's state in /proc; never by
// sleeping.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "timing.h"

static void rd(int fd, void *buf, size_t n) {
    if (read(fd, buf, n) != (ssize_t)n) _exit(100);
}

static void wr(int fd, const void *buf, size_t n) {
    if (write(fd, buf, n) != (ssize_t)n) _exit(101);
}

// go_thread and go_leader tell each thread of the child to exit.
static int go_thread[2], go_leader[2], tids[2];

// The second thread: tells its id, and exits alone with 7 when told.
static void *second(void *arg) {
    (void)arg;
    pid_t tid = gettid();
    wr(tids[1], &tid, sizeof tid);
    char b;
    rd(go_thread[0], &b, 1);
    syscall(SYS_exit, 7);
    return NULL;
}

// A process whose second thread exits alone when told, and whose leader exits
// alone with `code` when told; the second thread's id comes back.
static pid_t two_threads(int code, pid_t *tid) {
    if (pipe(go_thread) || pipe(go_leader) || pipe(tids)) exit(2);
    pid_t c = fork();
    if (c == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, second, NULL)) _exit(102);
        char b;
        rd(go_leader[0], &b, 1);
        syscall(SYS_exit, code);
    }
    rd(tids[0], tid, sizeof *tid);
    return c;
}

// Waits (polling /proc, up to 10 s) until process `pid` shows as a zombie: its
// leader is (its other thread was before).
static int becomes_zombie(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    struct timespec t0, ms = {0, 1000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (ms_since(&t0) < 10000) {
        if (stat_state(path) == 'Z') return 1;
        nanosleep(&ms, NULL);
    }
    return 0;
}

// Whether /proc/PID/task lists `tid`.
static int task_listed(pid_t pid, pid_t tid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (atoi(e->d_name) == tid) found = 1;
    closedir(d);
    return found;
}

static int sigchld_pending(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    struct timespec zero = {0, 0};
    siginfo_t si;
    return sigtimedwait(&set, &si, &zero) == SIGCHLD;
}

// The parent traces the second thread: it reaps the thread's zombie, and only
// then hears of the whole process.
static void parent_traces(void) {
    pid_t tid;
    pid_t c = two_threads(3, &tid);
    check("seize the second thread", ptrace(PTRACE_SEIZE, tid, 0, 0) == 0);
    wr(go_thread[1], "x", 1);
    siginfo_t si = {0};
    check("its exit is reported", waitid(P_PID, tid, &si, WEXITED | WNOWAIT | __WALL) == 0 && si.si_pid == tid && si.si_code == CLD_EXITED && si.si_status == 7);
    check("the tracer got SIGCHLD", sigchld_pending());
    check("it is a zombie under task/", task_state(c, tid) == 'Z' && task_listed(c, tid));
    wr(go_leader[1], "x", 1);
    check("the leader is a zombie", becomes_zombie(c));
    si.si_pid = 0;
    int r = waitid(P_PID, c, &si, WEXITED | WNOHANG);
    printf("parent traces: parent's wait before the thread is reaped: %d, pid %s\n", r, si.si_pid == c ? "the child" : si.si_pid == 0 ? "none" : "other");
    check("no SIGCHLD for the process yet", !sigchld_pending());
    int st;
    r = waitpid(tid, &st, __WALL);
    printf("parent traces: the tracer's waitpid(tid, __WALL): %s, exited %d\n", r == tid ? "the thread" : "other", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    check("the thread is gone from task/", !task_listed(c, tid));
    check("SIGCHLD for the process", sigchld_pending());
    r = waitpid(c, &st, WNOHANG);
    printf("parent traces: then the parent's waitpid: %s, exited %d\n", r == c ? "the child" : "none", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

// Another process traces the second thread and exits without reaping it: the
// thread is released, and the parent (a subreaper the process went to) hears
// of the process.
static void tracer_exits(void) {
    check("subreaper", prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    int report[2];
    if (pipe(report)) exit(7);
    pid_t tracer = fork();
    if (tracer == 0) {
        pid_t tid;
        pid_t c = two_threads(4, &tid);
        int ok = ptrace(PTRACE_SEIZE, tid, 0, 0) == 0;
        wr(go_thread[1], "x", 1);
        siginfo_t si = {0};
        ok = ok && waitid(P_PID, tid, &si, WEXITED | WNOWAIT | __WALL) == 0 && si.si_pid == tid;
        wr(go_leader[1], "x", 1);
        ok = ok && becomes_zombie(c) && task_state(c, tid) == 'Z';
        si.si_pid = 0;
        ok = ok && waitid(P_PID, c, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0;
        pid_t out[3] = {c, tid, ok};
        wr(report[1], out, sizeof out);
        _exit(0);
    }
    pid_t in[3];
    rd(report[0], in, sizeof in);
    check("the tracer held the zombie thread, and the process from its parent", in[2]);
    int st;
    check("the tracer exits", waitpid(tracer, &st, 0) == tracer && WIFEXITED(st));
    // The process is ours now; its thread was released when the tracer exited.
    struct timespec t0, ms = {0, 1000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t r;
    while ((r = waitpid(in[0], &st, WNOHANG)) == 0 && ms_since(&t0) < 10000) nanosleep(&ms, NULL);
    printf("tracer exits: the new parent's waitpid: %s, exited %d\n", r == in[0] ? "the child" : "none", r == in[0] && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    check("the thread is gone", !task_listed(in[0], in[1]));
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    parent_traces();
    tracer_exits();
    if (!failures) printf("all ok\n");
    return failures != 0;
}
