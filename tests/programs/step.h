// Single-stepping a stopped tracee to an address, for tests that put a thread at an
// exact instruction (syscall patching's races).
#include <stdint.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>

// Steps tracee `pid` (stopped) until its rip is `to`, at most a million steps; 1 if
// it got there, its registers then in *regs.
static int step_to(pid_t pid, const void *to, struct user_regs_struct *regs) {
    int status;
    for (int steps = 0; steps < 1000000; steps++) {
        if (ptrace(PTRACE_SINGLESTEP, pid, 0, 0) != 0 || waitpid(pid, &status, 0) != pid) return 0;
        if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP) return 0;
        if (ptrace(PTRACE_GETREGS, pid, 0, regs) != 0) return 0;
        if (regs->rip == (uintptr_t)to) return 1;
    }
    return 0;
}
