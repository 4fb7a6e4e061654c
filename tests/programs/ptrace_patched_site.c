// A tracer seizing a process that calls getppid from a `mov $nr, %eax; syscall` site
// it has used often enough for systrap to patch (docs/systrap-patching.md): the
// syscall stops must look as Linux's do (number, rip and rcx after the site's
// `syscall`, rax -ENOSYS at entry), and the tracer's changes (another number at entry,
// another result at exit) must reach the call, as for a call that traps.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

__asm__(".pushsection .text\n"
        ".globl site_getppid\n"
        "site_getppid: mov $110, %eax\n syscall\n"
        ".globl site_getppid_after\n"
        "site_getppid_after: ret\n"
        ".popsection\n");
long site_getppid(void);
extern char site_getppid_after[];

enum { REWRITTEN_RESULT = 4242 };

// Calls the site until a call returns something other than the parent's pid, and
// writes that value to `out`.
static void child(int ready, int out) {
    long ppid = getppid();
    for (int i = 0; i < 100; i++)
        if (site_getppid() != ppid) _exit(2);
    if (write(ready, "r", 1) != 1) _exit(3);
    long r;
    while ((r = site_getppid()) == ppid) {
    }
    if (write(out, &r, sizeof r) != sizeof r) _exit(4);
    r = site_getppid();
    if (write(out, &r, sizeof r) != sizeof r) _exit(4);
    _exit(0);
}

// Resumes `pid` to its next syscall stop and returns its registers there.
static int next_syscall_stop(pid_t pid, struct user_regs_struct *regs) {
    for (;;) {
        int status;
        if (ptrace(PTRACE_SYSCALL, pid, 0, 0) != 0) return 0;
        if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status)) return 0;
        if (WSTOPSIG(status) == (SIGTRAP | 0x80)) return ptrace(PTRACE_GETREGS, pid, 0, regs) == 0;
    }
}

// Resumes `pid` to its next getppid entry stop, past any other call.
static int next_getppid_entry(pid_t pid, struct user_regs_struct *regs) {
    while (next_syscall_stop(pid, regs))
        if (regs->orig_rax == SYS_getppid && (long)regs->rax == -ENOSYS) return 1;
    return 0;
}

int main(void) {
    int ready[2], out[2];
    if (pipe(ready) != 0 || pipe(out) != 0) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        close(out[0]);
        child(ready[1], out[1]);
    }
    close(ready[1]);
    close(out[1]);
    char c;
    check("the child warmed its site", read(ready[0], &c, 1) == 1);

    check("seize", ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACESYSGOOD) == 0);
    check("interrupt", ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0);
    int status;
    check("group stop", waitpid(pid, &status, 0) == pid && WIFSTOPPED(status));

    // The child does nothing but call the site, so the next getppid is there.
    struct user_regs_struct regs;
    check("entry stop", next_getppid_entry(pid, &regs));
    check("entry: rip after the site's syscall", regs.rip == (uintptr_t)site_getppid_after);
    check("entry: rcx is the return address", regs.rcx == (uintptr_t)site_getppid_after);

    regs.orig_rax = SYS_getpid;
    check("entry: set getpid", ptrace(PTRACE_SETREGS, pid, 0, &regs) == 0);
    check("exit stop", next_syscall_stop(pid, &regs));
    check("exit: orig_rax is getpid", regs.orig_rax == SYS_getpid);
    check("exit: rax is the child's pid", (long)regs.rax == pid);
    check("exit: rip after the site's syscall", regs.rip == (uintptr_t)site_getppid_after);

    // The child writes what it got, then calls the site again: a result rewritten at exit.
    check("entry stop again", next_getppid_entry(pid, &regs));
    long got;
    check("the child saw getpid's result", read(out[0], &got, sizeof got) == sizeof got && got == pid);
    check("exit stop again", next_syscall_stop(pid, &regs) && (long)regs.rax == getpid());
    regs.rax = REWRITTEN_RESULT;
    check("exit: set the result", ptrace(PTRACE_SETREGS, pid, 0, &regs) == 0);
    check("detach", ptrace(PTRACE_DETACH, pid, 0, 0) == 0);
    check("the child saw the tracer's result", read(out[0], &got, sizeof got) == sizeof got && got == REWRITTEN_RESULT);
    check("the child exited 0", waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf(failures ? "FAILED\n" : "all ok\n");
    return failures != 0;
}
