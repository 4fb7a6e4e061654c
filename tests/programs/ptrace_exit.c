// The exit of a traced process, as Linux's exit_notify, do_notify_parent,
// wait_task_zombie and __ptrace_detach have it: a tracer that is not the
// parent hears of it first (SIGCHLD) and reaps it, while the parent's wait
// does not see it; the parent gets its signal and reaps it once the tracer
// did, or once the tracer is gone. A parent that traces its child reaps it
// without __WCLONE, and even when it ignores SIGCHLD. The tracer is always
// an ancestor of its tracee (so Yama's ptrace_scope 1 allows it).
// Synchronisation is by pipes and waits (WNOWAIT); never by sleeping.
#define _GNU_SOURCE
#include <errno.h>
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

// A signal of `sig` pending now (both are kept blocked): 1 and its siginfo, or 0.
static int take_pending(int sig, siginfo_t *si) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    struct timespec zero = {0, 0};
    return sigtimedwait(&set, si, &zero) == sig;
}

static void rd(int fd, void *buf, size_t n) {
    if (read(fd, buf, n) != (ssize_t)n) _exit(100);
}

static void wr(int fd, const void *buf, size_t n) {
    if (write(fd, buf, n) != (ssize_t)n) _exit(101);
}

// A child that exits with `code` once a byte arrives on `go`.
static pid_t exit_on(int go, int code) {
    pid_t c = fork();
    if (c == 0) {
        char b;
        rd(go, &b, 1);
        _exit(code);
    }
    return c;
}

// What the parent saw, sent to the tracer to print.
struct seen {
    int wnohang;       // waitpid(WNOHANG) while the tracer holds the zombie
    int sigchld_early; // a SIGCHLD pending then
    int sigchld;       // a SIGCHLD pending after the tracer let it go
    int code, status, from_child;
    int waited, exit_code; // waitpid(0) after that
};

static void parent_after_release(pid_t c, struct seen *s) {
    siginfo_t si;
    s->sigchld = take_pending(SIGCHLD, &si);
    s->code = si.si_code;
    s->status = si.si_status;
    s->from_child = si.si_pid == c;
    int st = 0;
    s->waited = waitpid(c, &st, 0) == c;
    s->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void check_parent(const char *who, const struct seen *s, int code) {
    printf("%s: parent's waitpid(WNOHANG) while the tracer holds the zombie: %d\n", who, s->wnohang);
    check("parent does not see the held zombie", s->wnohang == 0);
    check("parent has no SIGCHLD yet", !s->sigchld_early);
    printf("%s: parent's SIGCHLD after the release: %s, si_code %s, si_status %d, from the child %s\n", who, s->sigchld ? "yes" : "no",
           s->code == CLD_EXITED ? "CLD_EXITED" : "other", s->status, s->from_child ? "yes" : "no");
    check("parent's SIGCHLD after the release", s->sigchld && s->code == CLD_EXITED && s->status == code && s->from_child);
    printf("%s: parent's waitpid(0): %s, exited %d\n", who, s->waited ? "the child" : "other", s->exit_code);
    check("parent reaps it", s->waited && s->exit_code == code);
}

// The tracer (this process) is the child's grandparent: it reaps the child first.
static void tracer_reaps(void) {
    int to_tracer[2], to_parent[2], go[2];
    if (pipe(to_tracer) || pipe(to_parent) || pipe(go)) exit(2);
    pid_t p = fork();
    if (p == 0) {
        pid_t c = exit_on(go[0], 7);
        wr(to_tracer[1], &c, sizeof c);
        struct seen s = {0};
        char b;
        siginfo_t si;
        rd(to_parent[0], &b, 1); // the child is the tracer's zombie now
        s.wnohang = waitpid(c, NULL, WNOHANG);
        s.sigchld_early = take_pending(SIGCHLD, &si);
        wr(to_tracer[1], &s, sizeof s);
        rd(to_parent[0], &b, 1); // the tracer reaped it
        parent_after_release(c, &s);
        wr(to_tracer[1], &s, sizeof s);
        _exit(0);
    }
    pid_t c;
    rd(to_tracer[0], &c, sizeof c);
    check("PTRACE_SEIZE the grandchild", ptrace(PTRACE_SEIZE, c, 0, 0) == 0);
    wr(go[1], "x", 1);
    siginfo_t si = {0};
    int r = waitid(P_PID, c, &si, WEXITED | WNOWAIT);
    printf("tracer's waitid(WNOWAIT): %d, si_code %s, si_status %d\n", r, si.si_code == CLD_EXITED ? "CLD_EXITED" : "other", si.si_status);
    check("tracer sees the exit", r == 0 && si.si_pid == c && si.si_code == CLD_EXITED && si.si_status == 7);
    siginfo_t got = {0};
    int pending = take_pending(SIGCHLD, &got);
    printf("tracer's SIGCHLD: %s, si_code %s, si_status %d, from the tracee %s\n", pending ? "yes" : "no",
           got.si_code == CLD_EXITED ? "CLD_EXITED" : "other", got.si_status, got.si_pid == c ? "yes" : "no");
    check("tracer gets SIGCHLD", pending && got.si_code == CLD_EXITED && got.si_status == 7 && got.si_pid == c);
    wr(to_parent[1], "x", 1);
    struct seen s;
    rd(to_tracer[0], &s, sizeof s);
    int st = 0;
    r = waitpid(c, &st, 0);
    printf("tracer's waitpid: %s, exited %d\n", r == c ? "the tracee" : "other", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    check("tracer reaps it", r == c && WIFEXITED(st) && WEXITSTATUS(st) == 7);
    wr(to_parent[1], "x", 1);
    struct seen s2;
    rd(to_tracer[0], &s2, sizeof s2);
    s2.wnohang = s.wnohang;
    s2.sigchld_early = s.sigchld_early;
    check_parent("tracer reaps", &s2, 7);
    check("the parent ends", waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    take_pending(SIGCHLD, &got);
}

// The tracer is the child's grandparent and exits without reaping it: the
// parent hears of the child then. (This process is a subreaper: the parent
// comes to it.)
static void tracer_exits(void) {
    int to_tracer[2], to_parent[2], go[2], results[2];
    if (pipe(to_tracer) || pipe(to_parent) || pipe(go) || pipe(results)) exit(2);
    pid_t d = fork();
    if (d == 0) {
        pid_t p = fork();
        if (p == 0) {
            pid_t c = exit_on(go[0], 9);
            wr(to_tracer[1], &c, sizeof c);
            struct seen s = {0};
            char b;
            siginfo_t si;
            rd(to_parent[0], &b, 1);
            s.wnohang = waitpid(c, NULL, WNOHANG);
            s.sigchld_early = take_pending(SIGCHLD, &si);
            wr(to_tracer[1], &s, sizeof s);
            // Blocks until the tracer is gone.
            int st = 0;
            s.waited = waitpid(c, &st, 0) == c;
            s.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            s.sigchld = take_pending(SIGCHLD, &si);
            s.code = si.si_code;
            s.status = si.si_status;
            s.from_child = si.si_pid == c;
            wr(results[1], &s, sizeof s);
            _exit(0);
        }
        pid_t c;
        rd(to_tracer[0], &c, sizeof c);
        if (ptrace(PTRACE_SEIZE, c, 0, 0)) _exit(3);
        wr(go[1], "x", 1);
        siginfo_t si;
        if (waitid(P_PID, c, &si, WEXITED | WNOWAIT)) _exit(4);
        wr(to_parent[1], "x", 1);
        struct seen s;
        rd(to_tracer[0], &s, sizeof s);
        wr(results[1], &s, sizeof s);
        _exit(0);
    }
    struct seen early, late;
    rd(results[0], &early, sizeof early);
    int st = 0;
    check("the tracer ends", waitpid(d, &st, 0) == d && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    rd(results[0], &late, sizeof late);
    late.wnohang = early.wnohang;
    late.sigchld_early = early.sigchld_early;
    check_parent("tracer exits", &late, 9);
    pid_t p = wait(&st);
    check("the parent ends", p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    siginfo_t got;
    take_pending(SIGCHLD, &got);
}

// A parent that traces its clone child (exit signal SIGUSR1) reaps it without
// __WCLONE, and gets SIGUSR1, not SIGCHLD.
static void parent_traces_clone_child(void) {
    int go[2];
    if (pipe(go)) exit(2);
    pid_t c = syscall(SYS_clone, SIGUSR1, 0, 0, 0, 0);
    if (c == 0) {
        char b;
        rd(go[0], &b, 1);
        _exit(5);
    }
    check("PTRACE_SEIZE the clone child", ptrace(PTRACE_SEIZE, c, 0, 0) == 0);
    wr(go[1], "x", 1);
    siginfo_t si = {0};
    int r = waitid(P_PID, c, &si, WEXITED | WNOWAIT);
    printf("clone child: waitid(WEXITED|WNOWAIT) without __WCLONE: %d %s\n", r, errname(r ? errno : 0));
    check("the traced clone child is waitable", r == 0 && si.si_pid == c && si.si_status == 5);
    siginfo_t got = {0};
    int usr1 = take_pending(SIGUSR1, &got);
    int chld = take_pending(SIGCHLD, &got);
    printf("clone child: SIGUSR1 %s, SIGCHLD %s\n", usr1 ? "yes" : "no", chld ? "yes" : "no");
    check("its exit signal, not SIGCHLD", usr1 && !chld);
    int st = 0;
    r = waitpid(c, &st, 0);
    printf("clone child: waitpid(0): %s, exited %d\n", r == c ? "the child" : "other", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    check("reaped without __WCLONE", r == c && WIFEXITED(st) && WEXITSTATUS(st) == 5);
}

// A parent that traces its child and ignores SIGCHLD still reaps it itself.
static void ignoring_parent_traces(void) {
    int go[2];
    if (pipe(go)) exit(2);
    signal(SIGCHLD, SIG_IGN);
    pid_t c = exit_on(go[0], 6);
    check("PTRACE_SEIZE the child", ptrace(PTRACE_SEIZE, c, 0, 0) == 0);
    wr(go[1], "x", 1);
    int st = 0;
    int r = waitpid(c, &st, 0);
    printf("SIGCHLD ignored, traced child: waitpid: %s, exited %d\n", r == c ? "the child" : r < 0 ? errname(errno) : "other",
           r == c && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    check("the traced child stays to be reaped", r == c && WIFEXITED(st) && WEXITSTATUS(st) == 6);
    signal(SIGCHLD, SIG_DFL);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1)) return 2;
    tracer_reaps();
    tracer_exits();
    parent_traces_clone_child();
    ignoring_parent_traces();
    if (!failures) printf("all ok\n");
    return failures != 0;
}
