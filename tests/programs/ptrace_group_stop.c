// Group stops of traced processes, compared with Linux: a seized tracee's
// SIGSTOP (its signal-delivery stop, then its group stop as a PTRACE_EVENT_STOP
// with the stop signal), PTRACE_INTERRUPT in and after the group stop (the
// group-stop signal while the group stays stopped, SIGTRAP once it continued),
// PTRACE_LISTEN (ended by PTRACE_INTERRUPT or SIGCONT), the siginfo of every
// kind of stop, waitid on traced stops, PTRACE_DETACH of a running tracee,
// PTRACE_SEIZE of a stopped process (also as strace starts its command), and
// what the parent's wait sees of the group stop of a child that it or another
// process traces.
#define _GNU_SOURCE
#include "check.h"
#include "timing.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

// "stopped STOP event 128", "exited 7", "none" (WNOHANG found nothing).
static const char *describe(pid_t r, pid_t pid, int st) {
    static char buf[80];
    if (r == 0) return "none";
    if (r != pid) snprintf(buf, sizeof buf, "waitpid %d %s", r, errname(errno));
    else if (WIFSTOPPED(st) && WSTOPSIG(st) < 64) snprintf(buf, sizeof buf, "stopped %s event %d", sigabbrev_np(WSTOPSIG(st)), st >> 16);
    else if (WIFSTOPPED(st)) snprintf(buf, sizeof buf, "stopped %#x event %d", WSTOPSIG(st), st >> 16);
    else if (WIFCONTINUED(st)) snprintf(buf, sizeof buf, "continued");
    else if (WIFEXITED(st)) snprintf(buf, sizeof buf, "exited %d", WEXITSTATUS(st));
    else snprintf(buf, sizeof buf, "killed by %s", sigabbrev_np(WTERMSIG(st)));
    return buf;
}

static void show_wait(const char *what, pid_t pid, int opts) {
    int st = 0;
    pid_t r = waitpid(pid, &st, opts);
    printf("%s: %s\n", what, describe(r, pid, st));
}

// PTRACE_GETSIGINFO of the stop: its signal, si_code and sender, or the error.
static void show_siginfo(const char *what, pid_t pid) {
    siginfo_t si = {0};
    errno = 0;
    long r = ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
    if (r != 0) {
        printf("%s: GETSIGINFO %s\n", what, errname(errno));
        return;
    }
    const char *from = si.si_pid == pid ? "the tracee" : si.si_pid == getpid() ? "the tracer" : "another";
    printf("%s: GETSIGINFO %s, si_code %#x, from %s, uid %d\n", what, sigabbrev_np(si.si_signo), si.si_code, from, si.si_uid);
}

static void show_request(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r == 0 ? "" : errname(errno));
}

// A child blocked in read(2) of `fd` until a byte comes, then it exits with 7.
static pid_t reader(int fd) {
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        while (read(fd, &c, 1) != 1) {}
        _exit(7);
    }
    return pid;
}

static void seized_group_stop(void) {
    int p[2];
    pipe(p);
    pid_t pid = reader(p[0]);
    check("PTRACE_SEIZE", ptrace(PTRACE_SEIZE, pid, 0, 0) == 0);
    kill(pid, SIGSTOP);
    show_wait("SIGSTOP", pid, __WALL);
    show_siginfo("its signal-delivery stop", pid);
    ptrace(PTRACE_CONT, pid, 0, SIGSTOP);
    siginfo_t wi = {0};
    int r = waitid(P_PID, pid, &wi, WSTOPPED | WNOWAIT | __WALL);
    printf("the group stop, waitid(WNOWAIT): %d, si_code %d, si_status %#x\n", r, wi.si_code, wi.si_status);
    show_wait("the group stop", pid, __WALL);
    show_siginfo("the group stop", pid);
    show_wait("the parent's WUNTRACED after it (it traces the child)", pid, WUNTRACED | WNOHANG);
    show_request("PTRACE_INTERRUPT in the group stop", ptrace(PTRACE_INTERRUPT, pid, 0, 0));
    show_wait("no new stop before it goes on", pid, __WALL | WNOHANG);
    ptrace(PTRACE_CONT, pid, 0, 0);
    show_wait("the interrupt's stop after PTRACE_CONT", pid, __WALL);
    show_siginfo("the interrupt's stop", pid);
    show_request("PTRACE_LISTEN", ptrace(PTRACE_LISTEN, pid, 0, 0));
    show_wait("listening: no stop to wait for", pid, __WALL | WNOHANG);
    struct user_regs_struct regs;
    show_request("listening: GETREGS", ptrace(PTRACE_GETREGS, pid, 0, &regs));
    show_request("listening: LISTEN again", ptrace(PTRACE_LISTEN, pid, 0, 0));
    show_request("listening: CONT", ptrace(PTRACE_CONT, pid, 0, 0));
    show_request("PTRACE_INTERRUPT of the listening tracee", ptrace(PTRACE_INTERRUPT, pid, 0, 0));
    show_wait("its stop", pid, __WALL);
    ptrace(PTRACE_CONT, pid, 0, 0);
    show_wait("resumed while the group stays stopped", pid, __WALL | WNOHANG);
    ptrace(PTRACE_INTERRUPT, pid, 0, 0);
    show_wait("PTRACE_INTERRUPT of the running tracee", pid, __WALL);
    show_siginfo("its stop", pid);
    show_request("PTRACE_LISTEN", ptrace(PTRACE_LISTEN, pid, 0, 0));
    kill(pid, SIGCONT);
    show_wait("SIGCONT while listening", pid, __WALL);
    show_siginfo("its stop", pid);
    ptrace(PTRACE_CONT, pid, 0, 0);
    show_wait("then", pid, __WALL);
    show_siginfo("SIGCONT's signal-delivery stop", pid);
    ptrace(PTRACE_CONT, pid, 0, 0);
    ptrace(PTRACE_INTERRUPT, pid, 0, 0);
    show_wait("PTRACE_INTERRUPT once the group continued", pid, __WALL);
    show_siginfo("its stop", pid);
    show_request("PTRACE_LISTEN of an interrupt's stop", ptrace(PTRACE_LISTEN, pid, 0, 0));
    ptrace(PTRACE_INTERRUPT, pid, 0, 0);
    show_wait("PTRACE_INTERRUPT of the listening tracee", pid, __WALL);
    ptrace(PTRACE_CONT, pid, 0, 0);
    kill(pid, SIGCONT);
    show_wait("SIGCONT of the running tracee", pid, __WALL);
    ptrace(PTRACE_CONT, pid, 0, 0);
    show_wait("then", pid, __WALL);
    ptrace(PTRACE_CONT, pid, 0, 0);
    show_request("PTRACE_DETACH of the running tracee", ptrace(PTRACE_DETACH, pid, 0, 0));
    write(p[1], "x", 1);
    show_wait("the end", pid, __WALL);
    close(p[0]);
    close(p[1]);
}

// A tracee not seized: its group stop has no siginfo and takes no LISTEN; its
// syscall stops and PTRACE_EVENT stops have theirs.
static void attached_group_stop(void) {
    int p[2];
    pipe(p);
    pid_t pid = reader(p[0]);
    ptrace(PTRACE_ATTACH, pid, 0, 0);
    show_wait("PTRACE_ATTACH", pid, __WALL);
    ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXIT);
    ptrace(PTRACE_CONT, pid, 0, SIGSTOP);
    show_wait("the group stop", pid, __WALL);
    show_siginfo("the group stop", pid);
    show_request("PTRACE_LISTEN", ptrace(PTRACE_LISTEN, pid, 0, 0));
    show_request("PTRACE_INTERRUPT", ptrace(PTRACE_INTERRUPT, pid, 0, 0));
    ptrace(PTRACE_SYSCALL, pid, 0, 0);
    write(p[1], "x", 1);
    show_wait("a syscall stop", pid, __WALL);
    show_siginfo("the syscall stop", pid);
    siginfo_t wi = {0};
    int r = waitid(P_PID, pid, &wi, WSTOPPED | WNOWAIT | __WALL | WNOHANG);
    printf("the syscall stop, reported, waitid(WNOWAIT|WNOHANG): %d, pid %s\n", r, wi.si_pid == pid ? "the tracee" : "none");
    ptrace(PTRACE_CONT, pid, 0, 0);
    r = waitid(P_PID, pid, &wi, WSTOPPED | WNOWAIT | __WALL);
    printf("the exit event, waitid(WNOWAIT): %d, si_code %d, si_status %#x\n", r, wi.si_code, wi.si_status);
    show_wait("the exit event", pid, __WALL);
    show_siginfo("the exit event", pid);
    ptrace(PTRACE_CONT, pid, 0, 0);
    show_wait("the end", pid, __WALL);
    close(p[0]);
    close(p[1]);
}

// PTRACE_SEIZE of a process in a group stop: it stops for the tracer at once.
static void seize_stopped(void) {
    int p[2];
    pipe(p);
    pid_t pid = reader(p[0]);
    kill(pid, SIGSTOP);
    show_wait("an untraced child's SIGSTOP", pid, WUNTRACED);
    check("PTRACE_SEIZE of it", ptrace(PTRACE_SEIZE, pid, 0, 0) == 0);
    show_wait("its stop for the tracer", pid, __WALL);
    show_siginfo("that stop", pid);
    ptrace(PTRACE_CONT, pid, 0, 0);
    write(p[1], "x", 1);
    show_wait("the end", pid, __WALL);
    close(p[0]);
    close(p[1]);
}

// strace's start of a command: the child stops itself; the tracer seizes it,
// interrupts it and sends SIGCONT, then LISTENs at group stops and resumes
// other stops until the child exits. The stops it sees, the first time (the
// later rounds must see the same: the race between the seize's wake-up, the
// interrupt and the SIGCONT once left a stale group stop that nothing ended).
static void strace_start(void) {
    char first[256] = "", seen[256];
    int differ = 0;
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            kill(getpid(), SIGSTOP);
            _exit(3);
        }
        int st;
        waitpid(pid, &st, WSTOPPED);
        ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACESYSGOOD);
        ptrace(PTRACE_INTERRUPT, pid, 0, 0);
        // Later rounds give the tracee longer to wake up before the SIGCONT.
        spin_us(round * 20);
        kill(pid, SIGCONT);
        seen[0] = 0;
        for (;;) {
            pid_t r = waitpid(pid, &st, __WALL);
            size_t n = strlen(seen);
            snprintf(seen + n, sizeof seen - n, "%s; ", describe(r, pid, st));
            if (r != pid || !WIFSTOPPED(st)) break;
            int sig = WSTOPSIG(st);
            if (st >> 16 == PTRACE_EVENT_STOP && sig != SIGTRAP) ptrace(PTRACE_LISTEN, pid, 0, 0);
            else ptrace(PTRACE_CONT, pid, 0, st >> 16 == 0 ? sig : 0);
        }
        if (round == 0) strcpy(first, seen);
        else differ += strcmp(first, seen) != 0;
    }
    printf("strace's start: %s\nlater rounds that differ: %d\n", first, differ);
}

// The parent of a child that another process traces sees its group stop, and
// hears of it (SIGCHLD, CLD_STOPPED), while the tracer resumed it.
static void other_tracer(void) {
    int p[2], done[2], told[2];
    pipe(p);
    pipe(done);
    pipe(told);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    pid_t pid = reader(p[0]);
    pid_t tracer = fork();
    if (tracer == 0) {
        ptrace(PTRACE_SEIZE, pid, 0, 0);
        kill(pid, SIGSTOP);
        int st;
        waitpid(pid, &st, __WALL);
        ptrace(PTRACE_CONT, pid, 0, SIGSTOP);
        waitpid(pid, &st, __WALL);
        int group_stop = WIFSTOPPED(st) && (st >> 8) == (SIGSTOP | (PTRACE_EVENT_STOP << 8));
        ptrace(PTRACE_CONT, pid, 0, 0);
        write(told[1], &group_stop, sizeof group_stop);
        char c;
        read(done[0], &c, 1);
        _exit(0);
    }
    int group_stop = 0;
    read(told[0], &group_stop, sizeof group_stop);
    check("tracer: the group stop with PTRACE_EVENT_STOP", group_stop);
    siginfo_t si;
    int sig = sigwaitinfo(&chld, &si);
    printf("parent: SIGCHLD %s, si_code %d, si_status %s, from the child %s\n", sig == SIGCHLD ? "yes" : "no", si.si_code, sigabbrev_np(si.si_status), si.si_pid == pid ? "yes" : "no");
    show_wait("parent: waitpid(WUNTRACED)", pid, WUNTRACED | WNOHANG);
    write(done[1], "x", 1);
    int st;
    waitpid(tracer, &st, 0);
    kill(pid, SIGCONT);
    show_wait("parent: waitpid(WCONTINUED) after SIGCONT", pid, WCONTINUED);
    write(p[1], "x", 1);
    show_wait("parent: the end", pid, 0);
    sigprocmask(SIG_UNBLOCK, &chld, NULL);
    for (int i = 0; i < 2; i++) {
        close(p[i]);
        close(done[i]);
        close(told[i]);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(30);
    seized_group_stop();
    attached_group_stop();
    seize_stopped();
    strace_start();
    other_tracer();
    if (failures == 0) printf("all ok\n");
    return failures != 0;
}
