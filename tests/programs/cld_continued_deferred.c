// CLD_CONTINUED reaches the parent when the continued child next runs (Linux's
// get_signal sends it), not when SIGCONT is sent. A traced child in a group
// stop stays stopped on SIGCONT (it is TASK_TRACED, which SIGCONT does not
// wake), so its parent and tracer has no SIGCHLD until it resumes the child;
// the child then notifies before it stops again to deliver SIGCONT.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *code(int c) {
    switch (c) {
    case CLD_STOPPED: return "CLD_STOPPED";
    case CLD_CONTINUED: return "CLD_CONTINUED";
    case CLD_TRAPPED: return "CLD_TRAPPED";
    case CLD_EXITED: return "CLD_EXITED";
    default: return "other";
    }
}

static const char *status(int st) {
    static char s[64];
    if (WIFSTOPPED(st)) snprintf(s, sizeof s, "stopped by %s", sigabbrev_np(WSTOPSIG(st)));
    else if (WIFEXITED(st)) snprintf(s, sizeof s, "exited %d", WEXITSTATUS(st));
    else snprintf(s, sizeof s, "other %#x", st);
    return s;
}

// Whether SIGCHLD is pending now, and takes it.
static void pending(const char *when) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    siginfo_t si;
    struct timespec zero = {0, 0};
    int n = 0, last = 0;
    while (sigtimedwait(&set, &si, &zero) == SIGCHLD) {
        n++;
        last = si.si_code;
    }
    printf("%s: SIGCHLD %s%s\n", when, n ? "pending, " : "not pending", n ? code(last) : "");
    fflush(stdout);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pid_t c = fork();
    if (c == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        printf("child runs again\n");
        _exit(7);
    }
    int st;
    waitpid(c, &st, 0);
    printf("child: %s (signal-delivery stop)\n", status(st));
    // The tracer lets SIGSTOP through: the child stops its group.
    ptrace(PTRACE_CONT, c, 0, SIGSTOP);
    waitpid(c, &st, 0);
    printf("child: %s (group stop)\n", status(st));
    pending("after the group stop");
    kill(c, SIGCONT);
    pending("after SIGCONT");
    ptrace(PTRACE_CONT, c, 0, 0);
    siginfo_t si;
    sigwaitinfo(&set, &si);
    printf("after the resume: SIGCHLD %s status %s\n", code(si.si_code), sigabbrev_np(si.si_status));
    waitpid(c, &st, 0);
    printf("child: %s (delivering SIGCONT)\n", status(st));
    ptrace(PTRACE_CONT, c, 0, 0);
    waitpid(c, &st, 0);
    printf("child: %s\n", status(st));
    printf("all ok\n");
    return 0;
}
