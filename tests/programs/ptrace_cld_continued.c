// A tracer that is not its tracee's parent (here the grandparent) is told of
// the end of the tracee's group stop too: SIGCHLD with CLD_CONTINUED and
// SIGCONT, once the tracee runs again, before the SIGCONT's own
// signal-delivery stop (whose own SIGCHLD may merge with it) (Linux's get_signal notifies the parent and, "for
// backward compatibility", a tracer that is not it).
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static const char *code_name(int c) {
    switch (c) {
    case CLD_STOPPED: return "CLD_STOPPED";
    case CLD_CONTINUED: return "CLD_CONTINUED";
    case CLD_TRAPPED: return "CLD_TRAPPED";
    default: return "other";
    }
}

// Takes the next SIGCHLD (blocked) and prints what it says.
static void next_sigchld(const char *what, pid_t tracee, int want_code, int want_status) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    siginfo_t si;
    sigwaitinfo(&set, &si);
    printf("%s: %s status %d\n", what, code_name(si.si_code), si.si_status);
    check(what, si.si_pid == tracee && si.si_code == want_code && si.si_status == want_status);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int up[2], down[2];
    if (pipe(up) || pipe(down)) return 1;
    pid_t parent = fork();
    if (parent == 0) {
        pid_t child = fork();
        if (child == 0) {
            for (;;) pause();
        }
        char c;
        write(up[1], &child, sizeof child);
        read(down[0], &c, 1);
        kill(child, SIGCONT);
        write(up[1], "c", 1);
        read(down[0], &c, 1);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        _exit(0);
    }
    pid_t tracee;
    char c;
    read(up[0], &tracee, sizeof tracee);
    check("attach", ptrace(PTRACE_ATTACH, tracee, 0, 0) == 0);
    int status;
    waitpid(tracee, &status, __WALL);
    check("SIGSTOP's signal-delivery stop", WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP);
    next_sigchld("its SIGCHLD", tracee, CLD_TRAPPED, SIGSTOP);
    ptrace(PTRACE_CONT, tracee, 0, SIGSTOP);
    waitpid(tracee, &status, __WALL);
    check("group stop", WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP);
    next_sigchld("its SIGCHLD", tracee, CLD_STOPPED, SIGSTOP);
    // The parent continues the group, then the tracee runs.
    write(down[1], "c", 1);
    read(up[0], &c, 1);
    ptrace(PTRACE_CONT, tracee, 0, 0);
    next_sigchld("the tracer is told of the continue", tracee, CLD_CONTINUED, SIGCONT);
    waitpid(tracee, &status, __WALL);
    check("SIGCONT's signal-delivery stop", WIFSTOPPED(status) && WSTOPSIG(status) == SIGCONT);
    // The parent kills the tracee, which the tracer reaps first.
    write(down[1], "c", 1);
    waitpid(tracee, &status, __WALL);
    check("killed", WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    waitpid(parent, &status, 0);
    check("the parent ended", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
