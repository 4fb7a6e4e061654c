// The SIGCHLD a tracer gets for its seized tracee's stops, compared with
// Linux: PTRACE_INTERRUPT's stop is CLD_STOPPED with the group's stop status
// (0 before any group stop), a signal-delivery stop CLD_TRAPPED with the
// signal, a group stop CLD_STOPPED with the stop signal, and a SIGCONT that
// ends a PTRACE_LISTEN CLD_CONTINUED with SIGCONT (the tracee then traps
// again, with SIGTRAP). Each step takes its SIGCHLD (blocked) with sigwaitinfo
// before the next.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static const char *code_name(int c) {
    switch (c) {
    case CLD_STOPPED: return "CLD_STOPPED";
    case CLD_TRAPPED: return "CLD_TRAPPED";
    case CLD_CONTINUED: return "CLD_CONTINUED";
    case CLD_EXITED: return "CLD_EXITED";
    case CLD_KILLED: return "CLD_KILLED";
    default: return "other";
    }
}

static pid_t child;

// Takes the pending SIGCHLD and the tracee's wait status, and prints them.
static void step(const char *what, int code, int status, int wait_status) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = sigwaitinfo(&s, &si);
    printf("%s: SIGCHLD %s, si_status %d, from the tracee %s\n", what, code_name(si.si_code), si.si_status, si.si_pid == child ? "yes" : "no");
    char line[160];
    snprintf(line, sizeof line, "%s: the SIGCHLD", what);
    check(line, r == SIGCHLD && si.si_code == code && si.si_status == status && si.si_pid == child);
    int st = 0;
    pid_t w = waitpid(child, &st, 0);
    printf("%s: wait status %#x\n", what, st);
    snprintf(line, sizeof line, "%s: the wait status", what);
    check(line, w == child && st == wait_status);
}

int main(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    sigprocmask(SIG_BLOCK, &s, NULL);
    child = fork();
    if (child == 0) {
        for (;;) pause();
    }
    check("PTRACE_SEIZE", ptrace(PTRACE_SEIZE, child, 0, 0) == 0);
    check("PTRACE_INTERRUPT", ptrace(PTRACE_INTERRUPT, child, 0, 0) == 0);
    step("interrupt", CLD_STOPPED, 0, 0x80057f);
    ptrace(PTRACE_CONT, child, 0, 0);
    kill(child, SIGSTOP);
    step("SIGSTOP's signal-delivery stop", CLD_TRAPPED, SIGSTOP, 0x137f);
    ptrace(PTRACE_CONT, child, 0, SIGSTOP);
    step("the group stop", CLD_STOPPED, SIGSTOP, 0x80137f);
    check("PTRACE_LISTEN", ptrace(PTRACE_LISTEN, child, 0, 0) == 0);
    kill(child, SIGCONT);
    // The SIGCHLD of the trap that follows may merge with this one: none is
    // taken after it.
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = sigwaitinfo(&s, &si);
    printf("SIGCONT ends the listen: SIGCHLD %s, si_status %d\n", code_name(si.si_code), si.si_status);
    check("SIGCONT ends the listen: CLD_CONTINUED", r == SIGCHLD && si.si_code == CLD_CONTINUED && si.si_status == SIGCONT && si.si_pid == child);
    int st = 0;
    check("after SIGCONT the listening tracee traps with SIGTRAP", waitpid(child, &st, 0) == child && st == 0x80057f);
    kill(child, SIGKILL);
    waitpid(child, &st, 0);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
