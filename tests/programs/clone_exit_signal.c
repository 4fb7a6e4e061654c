// clone's exit signal (the low byte of its flags; clone3's exit_signal): a
// child with another signal than SIGCHLD is a "clone" child, which wait4 and
// waitid see only with __WCLONE or __WALL (and __WCLONE only such children);
// the parent gets that signal, with CLD_EXITED and the status, when it ends;
// 0 sends nothing; a byte that is no signal is taken and sends nothing. As
// Linux, the signal becomes SIGCHLD for a parent that exec'd since, and for
// good when the child gets another parent or a thread other than its leader
// execs; CLONE_PARENT takes the caller's own. A SIGCHLD-ignoring parent reaps
// only SIGCHLD children by itself. The pidfd of a clone child polls readable.
// Synchronisation is by pipes, waits and polls; never by sleeping.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

// Per signal: how many arrived, and the last one's si_code, si_status, si_pid.
static volatile sig_atomic_t got[65], code[65], status[65], from[65];

static void on_signal(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got[sig]++;
    code[sig] = si->si_code;
    status[sig] = si->si_status;
    from[sig] = si->si_pid;
}

// SIGUSR1 and SIGCHLD stay blocked but while awaited, so that one that
// arrives is seen, and one that should not is found pending.
static void handle(int sig) {
    struct sigaction sa = {.sa_sigaction = on_signal, .sa_flags = SA_SIGINFO | SA_RESTART};
    sigaction(sig, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, NULL);
}

static const char *code_name(int c) {
    return c == CLD_EXITED ? "CLD_EXITED" : c == CLD_KILLED ? "CLD_KILLED" : "other";
}

// Takes the signals still pending from before, and forgets who sent them.
static void drain(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    sigprocmask(SIG_BLOCK, &set, NULL);
    from[SIGUSR1] = from[SIGCHLD] = 0;
}

// Waits for signal `sig` from `child` and shows it.
static void await(int sig, pid_t child) {
    sigset_t none;
    sigemptyset(&none);
    while (from[sig] != child) sigsuspend(&none);
    printf("  %s: %s, si_status %d\n", sig == SIGUSR1 ? "SIGUSR1" : "SIGCHLD", code_name(code[sig]), status[sig]);
}

// Whether `sig` arrived beyond `before` or is pending.
static const char *sent(int sig, int before) {
    sigset_t p;
    sigpending(&p);
    return got[sig] != before || sigismember(&p, sig) ? "yes" : "no";
}

// A fork-like raw clone with exit signal `sig` (and `flags`).
static pid_t clone_with(long flags, int sig) {
    fflush(stdout);
    return syscall(SYS_clone, flags | sig, 0, NULL, NULL, 0);
}

static void show_wait(const char *what, pid_t r, pid_t child, const int *st) {
    if (r < 0)
        printf("%s: -1 %s\n", what, errname(errno));
    else
        printf("%s: %s, exited %d\n", what, r == child ? "the child" : "another", WIFEXITED(*st) ? WEXITSTATUS(*st) : -1);
}

static void basic(void) {
    drain();
    int st, u = got[SIGUSR1], c0 = got[SIGCHLD];
    pid_t c = clone_with(0, SIGUSR1);
    if (c == 0) _exit(5);
    show_wait("waitpid(SIGUSR1 child, 0)", waitpid(c, &st, 0), c, &st);
    show_wait("waitpid(-1, WNOHANG) with only a clone child", waitpid(-1, &st, WNOHANG), c, &st);
    siginfo_t si = {0};
    printf("waitid(P_PID, WEXITED) without __WCLONE: %s\n", waitid(P_PID, c, &si, WEXITED) < 0 ? errname(errno) : "found");
    show_wait("waitpid(SIGUSR1 child, __WCLONE)", waitpid(c, &st, __WCLONE), c, &st);
    await(SIGUSR1, c);
    printf("  SIGCHLD too: %s\n", sent(SIGCHLD, c0));

    u = got[SIGUSR1];
    c = clone_with(0, SIGUSR1);
    if (c == 0) _exit(6);
    show_wait("waitpid(-1, __WALL) reaps another", waitpid(-1, &st, __WALL), c, &st);
    await(SIGUSR1, c);

    // __WCLONE does not see a SIGCHLD child.
    u = got[SIGUSR1];
    c = clone_with(0, SIGCHLD);
    if (c == 0) _exit(7);
    show_wait("waitpid(SIGCHLD child, __WCLONE)", waitpid(c, &st, __WCLONE), c, &st);
    show_wait("waitpid(SIGCHLD child, 0)", waitpid(c, &st, 0), c, &st);
    await(SIGCHLD, c);
    printf("  SIGUSR1 too: %s\n", sent(SIGUSR1, u));
}

static void no_signal(void) {
    drain();
    int u = got[SIGUSR1], c0 = got[SIGCHLD];
    pid_t c = clone_with(0, 0);
    if (c == 0) _exit(8);
    siginfo_t si = {0};
    int r = waitid(P_PID, c, &si, WEXITED | __WALL);
    printf("exit signal 0: waitid(WEXITED|__WALL) %d, si_code %s, si_status %d; SIGCHLD %s, SIGUSR1 %s\n", r, code_name(si.si_code), si.si_status, sent(SIGCHLD, c0), sent(SIGUSR1, u));

    // Linux takes any byte from clone's flags; one that is no signal sends nothing.
    c = clone_with(0, 100);
    if (c == 0) _exit(9);
    int st;
    show_wait("exit signal 100: waitpid(__WCLONE)", waitpid(c, &st, __WCLONE), c, &st);
    printf("  SIGCHLD %s, SIGUSR1 %s\n", sent(SIGCHLD, c0), sent(SIGUSR1, u));
}

static void ignoring_parent(void) {
    drain();
    signal(SIGCHLD, SIG_IGN);
    int st;
    pid_t c = clone_with(0, SIGUSR1);
    if (c == 0) _exit(10);
    show_wait("SIGCHLD ignored: a SIGUSR1 child stays to be reaped", waitpid(c, &st, __WCLONE), c, &st);
    await(SIGUSR1, c);
    c = clone_with(0, 0);
    if (c == 0) _exit(11);
    show_wait("SIGCHLD ignored: an exit-signal-0 child stays to be reaped", waitpid(c, &st, __WALL), c, &st);
    handle(SIGCHLD);
}

static void pidfd(void) {
    drain();
    int fd = -1;
    struct clone_args args = {.flags = CLONE_PIDFD, .pidfd = (uintptr_t)&fd, .exit_signal = SIGUSR1};
    fflush(stdout);
    pid_t c = syscall(SYS_clone3, &args, sizeof args);
    if (c == 0) _exit(12);
    struct pollfd p = {fd, POLLIN};
    printf("clone3 SIGUSR1 child's pidfd polls readable: %d\n", poll(&p, 1, -1) == 1 && (p.revents & POLLIN) != 0);
    siginfo_t si = {0};
    printf("waitid(P_PIDFD, WEXITED|WNOHANG): %s\n", waitid(P_PIDFD, fd, &si, WEXITED | WNOHANG) < 0 ? errname(errno) : "found");
    si.si_pid = 0;
    int r = waitid(P_PIDFD, fd, &si, WEXITED | __WCLONE);
    printf("waitid(P_PIDFD, WEXITED|__WCLONE): %d, the child's: %s, si_status %d\n", r, si.si_pid == c ? "yes" : "no", si.si_status);
    await(SIGUSR1, c);
    close(fd);

    struct clone_args bad = {.exit_signal = 65};
    printf("clone3 exit_signal 65: %s\n", syscall(SYS_clone3, &bad, sizeof bad) < 0 ? errname(errno) : "made");
    bad.exit_signal = SIGUSR1 | 0x100;
    printf("clone3 exit_signal 0x10a: %s\n", syscall(SYS_clone3, &bad, sizeof bad) < 0 ? errname(errno) : "made");
    bad.exit_signal = SIGCHLD;
    bad.flags = SIGUSR1;
    printf("clone3 with a signal in its flags: %s\n", syscall(SYS_clone3, &bad, sizeof bad) < 0 ? errname(errno) : "made");
}

// CLONE_PARENT: a sibling ends as its maker does, towards the shared parent.
static void sibling(void) {
    drain();
    int pfd[2];
    pipe(pfd);
    int u = got[SIGUSR1];
    pid_t c1 = clone_with(0, SIGCHLD);
    if (c1 == 0) {
        pid_t c2 = clone_with(CLONE_PARENT, SIGUSR1);
        if (c2 == 0) _exit(14);
        write(pfd[1], &c2, sizeof c2);
        _exit(13);
    }
    pid_t c2 = 0;
    read(pfd[0], &c2, sizeof c2);
    int st;
    show_wait("CLONE_PARENT | SIGUSR1 sibling: waitpid(0)", waitpid(c2, &st, 0), c2, &st);
    show_wait("its maker", waitpid(c1, &st, 0), c1, &st);
    printf("  SIGUSR1: %s\n", sent(SIGUSR1, u));
    close(pfd[0]);
    close(pfd[1]);
}

// A clone child that another parent (a subreaper) inherits reports with SIGCHLD;
// a zombie one is news to it.
static void reparented(void) {
    drain();
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int up[2], down[2];
    pipe(up);
    pipe(down);
    pid_t me = getpid();
    int u = got[SIGUSR1];
    pid_t c1 = clone_with(0, SIGCHLD);
    if (c1 == 0) {
        pid_t c2 = clone_with(0, SIGUSR1);
        if (c2 == 0) {
            while (getppid() != me) sched_yield();
            c2 = getpid();
            write(up[1], &c2, sizeof c2);
            // Not before its maker's SIGCHLD was taken: two would be one.
            char b;
            read(down[0], &b, 1);
            _exit(16);
        }
        _exit(15);
    }
    int st;
    show_wait("the clone child's maker", waitpid(c1, &st, 0), c1, &st);
    await(SIGCHLD, c1);
    pid_t c2 = 0;
    read(up[0], &c2, sizeof c2);
    write(down[1], "go", 1);
    show_wait("the orphan, inherited: waitpid(-1, 0)", waitpid(-1, &st, 0), c2, &st);
    await(SIGCHLD, c2);
    printf("  SIGUSR1: %s\n", sent(SIGUSR1, u));

    // A zombie clone child comes to a parent that ignores SIGCHLD: reaped at once.
    signal(SIGCHLD, SIG_IGN);
    c1 = clone_with(0, SIGCHLD);
    if (c1 == 0) {
        pid_t c2 = clone_with(0, SIGUSR1);
        if (c2 == 0) _exit(19);
        siginfo_t si;
        waitid(P_PID, c2, &si, WEXITED | WNOWAIT | __WALL);
        _exit(20);
    }
    show_wait("SIGCHLD ignored, a zombie orphan came: waitpid(-1, __WALL)", waitpid(-1, &st, __WALL), c1, &st);
    handle(SIGCHLD);
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
}

static char stack[64 * 1024] __attribute__((aligned(16)));

static int exec_thread(void *arg) {
    char *argv[] = {"clone_exit_signal", "exit17", NULL};
    (void)arg;
    execv("/proc/self/exe", argv);
    _exit(99);
}

// A thread other than the leader execs: the process reports with SIGCHLD.
static void thread_exec(void) {
    drain();
    int u = got[SIGUSR1];
    pid_t c = clone_with(0, SIGUSR1);
    if (c == 0) {
        clone(exec_thread, stack + sizeof stack, CLONE_VM | CLONE_THREAD | CLONE_SIGHAND | CLONE_FS | CLONE_FILES, NULL);
        for (;;) pause();
    }
    siginfo_t si = {0};
    waitid(P_PID, c, &si, WEXITED | WNOWAIT | __WALL);
    int st;
    show_wait("after a thread's exec: waitpid(0)", waitpid(c, &st, 0), c, &st);
    await(SIGCHLD, c);
    printf("  SIGUSR1: %s\n", sent(SIGUSR1, u));
}

// The parent execs while its SIGUSR1 child lives: the child is still a clone
// child for wait, but its death sends SIGCHLD.
static void parent_exec(void) {
    int pfd[2];
    pipe(pfd);
    pid_t c = clone_with(0, SIGUSR1);
    if (c == 0) {
        char b;
        close(pfd[1]);
        read(pfd[0], &b, 1);
        _exit(18);
    }
    close(pfd[0]);
    char cs[16], fs[16];
    snprintf(cs, sizeof cs, "%d", c);
    snprintf(fs, sizeof fs, "%d", pfd[1]);
    char *argv[] = {"clone_exit_signal", "after_exec", cs, fs, NULL};
    fflush(stdout);
    execv("/proc/self/exe", argv);
    printf("exec: %s\n", errname(errno));
    exit(1);
}

static int after_exec(pid_t c, int fd) {
    handle(SIGUSR1);
    handle(SIGCHLD);
    write(fd, "go", 1);
    close(fd);
    int st;
    siginfo_t si = {0};
    waitid(P_PID, c, &si, WEXITED | WNOWAIT | __WALL);
    show_wait("after the parent's exec: waitpid(0)", waitpid(c, &st, 0), c, &st);
    show_wait("waitpid(__WCLONE)", waitpid(c, &st, __WCLONE), c, &st);
    await(SIGCHLD, c);
    printf("  SIGUSR1: %s\n", sent(SIGUSR1, 0));
    printf("all ok\n");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "exit17") == 0) _exit(17);
    if (argc > 3 && strcmp(argv[1], "after_exec") == 0) return after_exec(atoi(argv[2]), atoi(argv[3]));
    handle(SIGUSR1);
    handle(SIGCHLD);
    basic();
    no_signal();
    ignoring_parent();
    pidfd();
    sibling();
    reparented();
    thread_exec();
    parent_exec();
    return 1;
}
