// ptrace(2) from a tracer's side, on forked children: PTRACE_TRACEME and the
// stop it starts with, registers (GETREGS, PEEKUSER, SETREGS, GETREGSET),
// memory (PEEKDATA, POKEDATA), syscall stops with TRACESYSGOOD (a result
// changed, a call skipped), signal-delivery stops (siginfo, a signal cancelled,
// one replaced), PTRACE_ATTACH and DETACH of a child blocked in read(2) (which
// restarts), SEIZE and INTERRUPT, exec and exit events, a single step,
// PTRACE_KILL, and the errors.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include <elf.h>
#include <linux/audit.h>
#include <fcntl.h>
#include <sys/mman.h>

static volatile uint64_t shared_word = 0x1111;
static volatile int handled;

static void on_signal(int sig) { handled = sig; }

// Waits for `pid` and returns the raw status (-1 on error).
static int wait_for(pid_t pid) {
    int status;
    return waitpid(pid, &status, __WALL) == pid ? status : -1;
}

static int stopped_by(int status, int sig) { return status != -1 && WIFSTOPPED(status) && WSTOPSIG(status) == sig; }

// A child that asks to be traced and stops itself; then runs `body` and exits with its result.
static pid_t traced_child(int (*body)(void)) {
    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        _exit(body());
    }
    return pid;
}

static int marked_getppid(void) {
    // getppid's result, which the tracer changes to 4242, then a skipped call.
    long a = syscall(SYS_getppid);
    long b = syscall(SYS_getppid);
    return (a == 4242 ? 1 : 0) | (b == 77 ? 2 : 0) | (shared_word == 0x2222 ? 4 : 0);
}

static void registers_memory_syscalls(void) {
    pid_t pid = traced_child(marked_getppid);
    int st = wait_for(pid);
    check("TRACEME: the child's SIGSTOP is a stop for the tracer", stopped_by(st, SIGSTOP));
    struct user_regs_struct regs;
    check("GETREGS", ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
    errno = 0;
    long rip = ptrace(PTRACE_PEEKUSER, pid, offsetof(struct user, regs.rip), 0);
    check("PEEKUSER of rip agrees with GETREGS", errno == 0 && (unsigned long)rip == regs.rip);
    struct user_regs_struct set;
    struct iovec iov = {&set, sizeof set};
    check("GETREGSET NT_PRSTATUS: all of them", ptrace(PTRACE_GETREGSET, pid, NT_PRSTATUS, &iov) == 0 && iov.iov_len == sizeof set && set.rip == regs.rip && set.rsp == regs.rsp);
    errno = 0;
    long word = ptrace(PTRACE_PEEKDATA, pid, &shared_word, 0);
    check("PEEKDATA reads the child's variable", errno == 0 && word == 0x1111);
    check("POKEDATA changes it", ptrace(PTRACE_POKEDATA, pid, &shared_word, 0x2222) == 0);
    check("SETOPTIONS TRACESYSGOOD", ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD) == 0);
    int getppids = 0, entries_ok = 1, changed = 0;
    for (int i = 0; i < 100; i++) {
        if (ptrace(PTRACE_SYSCALL, pid, 0, 0) != 0) break;
        st = wait_for(pid);
        if (!stopped_by(st, SIGTRAP | 0x80)) break;
        ptrace(PTRACE_GETREGS, pid, 0, &regs);
        if (regs.orig_rax != SYS_getppid) continue;
        // The entry stop: rax is -ENOSYS.
        entries_ok &= (long)regs.rax == -ENOSYS;
        getppids++;
        if (getppids == 1) {
            struct __ptrace_syscall_info info;
            long size = ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof info, &info);
            check("GET_SYSCALL_INFO at the entry: the call and its arguments",
                  size == offsetof(struct __ptrace_syscall_info, entry.args) + sizeof info.entry.args && info.op == PTRACE_SYSCALL_INFO_ENTRY &&
                      info.arch == AUDIT_ARCH_X86_64 && info.entry.nr == SYS_getppid && info.instruction_pointer == regs.rip);
        }
        if (getppids == 2) {
            regs.orig_rax = -1;  // skip the second call
            ptrace(PTRACE_SETREGS, pid, 0, &regs);
        }
        ptrace(PTRACE_SYSCALL, pid, 0, 0);
        st = wait_for(pid);
        ptrace(PTRACE_GETREGS, pid, 0, &regs);
        if (getppids == 1) {
            struct __ptrace_syscall_info info;
            long size = ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof info, &info);
            check("and at the exit: its result",
                  size == offsetof(struct __ptrace_syscall_info, exit.is_error) + 1 && info.op == PTRACE_SYSCALL_INFO_EXIT &&
                      info.exit.rval == getpid() && info.exit.is_error == 0);
            changed = (pid_t)regs.rax == getpid();
            regs.rax = 4242;
        } else {
            regs.rax = 77;
        }
        ptrace(PTRACE_SETREGS, pid, 0, &regs);
        if (getppids == 2) break;
    }
    check("syscall stops: two getppid entries, each with rax -ENOSYS", getppids == 2 && entries_ok);
    check("the exit stop has the real result", changed);
    ptrace(PTRACE_CONT, pid, 0, 0);
    st = wait_for(pid);
    check("the child saw the changed result, the skipped call's and the poked word", WIFEXITED(st) && WEXITSTATUS(st) == 7);
    errno = 0;
    check("reaped: waiting for it again is ECHILD", waitpid(pid, &st, 0) == -1 && errno == ECHILD);
}

static int signals_body(void) {
    signal(SIGUSR1, on_signal);
    signal(SIGUSR2, on_signal);
    raise(SIGUSR1);  // cancelled by the tracer
    int first = handled;
    raise(SIGUSR1);  // delivered
    int second = handled;
    raise(SIGUSR1);  // replaced by SIGUSR2
    int third = handled;
    return (first == 0 ? 1 : 0) | (second == SIGUSR1 ? 2 : 0) | (third == SIGUSR2 ? 4 : 0);
}

static void signal_stops(void) {
    pid_t pid = traced_child(signals_body);
    wait_for(pid);
    ptrace(PTRACE_CONT, pid, 0, 0);
    int st = wait_for(pid);
    siginfo_t si;
    check("a signal is a stop first", stopped_by(st, SIGUSR1));
    check("GETSIGINFO: the signal and its sender", ptrace(PTRACE_GETSIGINFO, pid, 0, &si) == 0 && si.si_signo == SIGUSR1 && si.si_code == SI_TKILL && si.si_pid == pid);
    ptrace(PTRACE_CONT, pid, 0, 0);
    st = wait_for(pid);
    ptrace(PTRACE_CONT, pid, 0, SIGUSR1);
    st = wait_for(pid);
    ptrace(PTRACE_CONT, pid, 0, SIGUSR2);
    st = wait_for(pid);
    check("cancelled, delivered, replaced", WIFEXITED(st) && WEXITSTATUS(st) == 7);
}

static void attach_detach(void) {
    int p[2];
    pipe(p);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        ssize_t n = read(p[0], &c, 1);
        _exit(n == 1 && c == 'x' ? 0 : 1);
    }
    check("PTRACE_ATTACH to a child blocked in read", ptrace(PTRACE_ATTACH, pid, 0, 0) == 0);
    int st = wait_for(pid);
    check("it stops with SIGSTOP", stopped_by(st, SIGSTOP));
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    int tracer = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "TracerPid: %d", &tracer) == 1) break;
    if (f) fclose(f);
    check("its /proc status names the tracer", tracer == getpid());
    errno = 0;
    check("attaching twice is EPERM", ptrace(PTRACE_ATTACH, pid, 0, 0) == -1 && errno == EPERM);
    struct user_regs_struct regs;
    check("its registers can be read", ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
    check("PTRACE_DETACH with no signal", ptrace(PTRACE_DETACH, pid, 0, 0) == 0);
    errno = 0;
    check("after which it is not ours: ESRCH", ptrace(PTRACE_GETREGS, pid, 0, &regs) == -1 && errno == ESRCH);
    write(p[1], "x", 1);
    st = wait_for(pid);
    check("its read restarted and got the byte", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(p[0]);
    close(p[1]);
}

static void seize_interrupt(void) {
    int p[2];
    pipe(p);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        ssize_t n = read(p[0], &c, 1);
        _exit(n == 1 ? 0 : 1);
    }
    errno = 0;
    check("SEIZE with an address is EIO", ptrace(PTRACE_SEIZE, pid, 1, 0) == -1 && errno == EIO);
    check("PTRACE_SEIZE", ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACEEXIT) == 0);
    int none;
    check("a seized child runs on: no stop to wait for", waitpid(pid, &none, __WALL | WNOHANG) == 0);
    check("PTRACE_INTERRUPT", ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0);
    int st = wait_for(pid);
    check("it stops with PTRACE_EVENT_STOP", WIFSTOPPED(st) && (st >> 8) == (SIGTRAP | (PTRACE_EVENT_STOP << 8)));
    ptrace(PTRACE_CONT, pid, 0, 0);
    write(p[1], "x", 1);
    st = wait_for(pid);
    unsigned long msg = 0;
    check("at exit, PTRACE_EVENT_EXIT with the exit status", WIFSTOPPED(st) && (st >> 8) == (SIGTRAP | (PTRACE_EVENT_EXIT << 8)) && ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg) == 0 && msg == 0);
    ptrace(PTRACE_CONT, pid, 0, 0);
    st = wait_for(pid);
    check("then it exits", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(p[0]);
    close(p[1]);
}

static const char *self_path;

static int exec_body(void) {
    execl(self_path, self_path, "exit5", (char *)NULL);
    return 99;
}

static void exec_events(void) {
    pid_t pid = traced_child(exec_body);
    wait_for(pid);
    ptrace(PTRACE_CONT, pid, 0, 0);
    int st = wait_for(pid);
    check("after exec, a traced (not seized) program gets SIGTRAP", stopped_by(st, SIGTRAP));
    ptrace(PTRACE_CONT, pid, 0, 0);
    st = wait_for(pid);
    check("the new program runs", WIFEXITED(st) && WEXITSTATUS(st) == 5);

    pid = traced_child(exec_body);
    wait_for(pid);
    ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEEXEC);
    ptrace(PTRACE_CONT, pid, 0, 0);
    st = wait_for(pid);
    unsigned long msg = 0;
    check("with TRACEEXEC: PTRACE_EVENT_EXEC, the old tid as its message",
          WIFSTOPPED(st) && (st >> 8) == (SIGTRAP | (PTRACE_EVENT_EXEC << 8)) && ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg) == 0 && msg == (unsigned long)pid);
    ptrace(PTRACE_CONT, pid, 0, 0);
    st = wait_for(pid);
    check("and no SIGTRAP after it", WIFEXITED(st) && WEXITSTATUS(st) == 5);
}

static int fork_body(void) {
    pid_t g = fork();
    if (g == 0) _exit(3);
    int st;
    return waitpid(g, &st, 0) == g && WIFEXITED(st) && WEXITSTATUS(st) == 3 ? 0 : 1;
}

// PTRACE_O_TRACEFORK: the tracee's fork stops it with PTRACE_EVENT_FORK (the new
// pid as its message), and the new process is traced from its first instruction,
// stopped by SIGSTOP; the tracer waits for it too (it is not the tracer's child).
static void fork_events(void) {
    pid_t pid = traced_child(fork_body);
    wait_for(pid);
    ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEFORK);
    ptrace(PTRACE_CONT, pid, 0, 0);
    int st = wait_for(pid);
    unsigned long grandchild = 0;
    check("TRACEFORK: PTRACE_EVENT_FORK, the new pid as its message",
          WIFSTOPPED(st) && (st >> 8) == (SIGTRAP | (PTRACE_EVENT_FORK << 8)) && ptrace(PTRACE_GETEVENTMSG, pid, 0, &grandchild) == 0 && grandchild > 0);
    int gst = wait_for((pid_t)grandchild);
    check("the new process starts traced, stopped by SIGSTOP", stopped_by(gst, SIGSTOP));
    ptrace(PTRACE_CONT, (pid_t)grandchild, 0, 0);
    ptrace(PTRACE_CONT, pid, 0, 0);
    gst = wait_for((pid_t)grandchild);
    check("its tracer hears of its exit", WIFEXITED(gst) && WEXITSTATUS(gst) == 3);
    st = wait_for(pid);
    check("its parent's SIGCHLD is a stop first (even ignored, a tracer sees it)", stopped_by(st, SIGCHLD));
    ptrace(PTRACE_CONT, pid, 0, SIGCHLD);
    st = wait_for(pid);
    check("and its parent reaped it", WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int spin_body(void) {
    volatile int spin = 1;
    while (spin) {}
    return 0;
}

static void step_and_kill(void) {
    pid_t pid = traced_child(spin_body);
    wait_for(pid);
    struct user_regs_struct before, after;
    ptrace(PTRACE_GETREGS, pid, 0, &before);
    check("PTRACE_SINGLESTEP", ptrace(PTRACE_SINGLESTEP, pid, 0, 0) == 0);
    int st = wait_for(pid);
    ptrace(PTRACE_GETREGS, pid, 0, &after);
    check("one instruction, then SIGTRAP", stopped_by(st, SIGTRAP) && after.rip != before.rip);
    errno = 0;
    check("PEEKDATA of an unmapped address: EIO", ptrace(PTRACE_PEEKDATA, pid, 8, 0) == -1 && errno == EIO);
    errno = 0;
    check("POKEDATA there: EIO", ptrace(PTRACE_POKEDATA, pid, 8, 1) == -1 && errno == EIO);
    errno = 0;
    check("GETREGS into a bad buffer: EFAULT", ptrace(PTRACE_GETREGS, pid, 0, (void *)8) == -1 && errno == EFAULT);
    struct iovec iov = {&after, sizeof after};
    errno = 0;
    check("GETREGSET of an unknown note: EINVAL", ptrace(PTRACE_GETREGSET, pid, 0x999, &iov) == -1 && errno == EINVAL);
    errno = 0;
    check("SETOPTIONS with an unknown bit: EINVAL", ptrace(PTRACE_SETOPTIONS, pid, 0, 1UL << 30) == -1 && errno == EINVAL);
    errno = 0;
    check("PTRACE_INTERRUPT of a tracee not seized: EIO", ptrace(PTRACE_INTERRUPT, pid, 0, 0) == -1 && errno == EIO);
    errno = 0;
    check("a signal number past 64 is EIO", ptrace(PTRACE_CONT, pid, 0, 65) == -1 && errno == EIO);
    errno = 0;
    check("an unknown request is EIO", ptrace((enum __ptrace_request)12345, pid, 0, 0) == -1 && errno == EIO);
    check("PTRACE_KILL", ptrace(PTRACE_KILL, pid, 0, 0) == 0);
    st = wait_for(pid);
    check("kills it", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

// /proc/PID/mem: addresses as offsets, through protections (a PROT_NONE page reads,
// read-only data is written, copied on write), EIO where nothing is mapped; only a
// process that may trace the owner opens it.
static const char read_only[] = "read-only text";

static void proc_mem(void) {
    int fd = open("/proc/self/mem", O_RDWR);
    check("/proc/self/mem opens for reading and writing", fd >= 0);
    char buf[32] = {0};
    check("pread at an address reads that memory", pread(fd, buf, sizeof read_only, (off_t)(uintptr_t)read_only) == sizeof read_only && !strcmp(buf, read_only));
    char *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check("a PROT_NONE page reads (zeros)", pread(fd, buf, 4, (off_t)(uintptr_t)none) == 4 && buf[0] == 0);
    errno = 0;
    ssize_t n = pread(fd, buf, 4, 8);
    check("an unmapped address is EIO", n == -1 && errno == EIO);
    const volatile char *seen = read_only;  // not folded into a constant
    check("read-only data can be written", pwrite(fd, "READ", 4, (off_t)(uintptr_t)read_only) == 4 && seen[0] == 'R' && seen[3] == 'D' && seen[4] == '-');
    check("lseek to an address, then read", lseek(fd, (off_t)(uintptr_t)read_only, SEEK_SET) == (off_t)(uintptr_t)read_only && read(fd, buf, 4) == 4 && !strncmp(buf, "READ", 4));
    close(fd);
    pid_t parent = getpid();
    pid_t c = fork();
    if (c == 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", parent);
        int same_uid = open(path, O_RDONLY);
        if (setuid(65534) != 0) _exit(3);
        errno = 0;
        int other = open(path, O_RDONLY);
        _exit(same_uid >= 0 && other == -1 && errno == EACCES ? 0 : 1);
    }
    int st = wait_for(c);
    check("the parent's mem: the same user opens it, another gets EACCES", WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void errors(void) {
    struct user_regs_struct regs;
    pid_t pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    errno = 0;
    check("GETREGS of a child nobody traces: ESRCH", ptrace(PTRACE_GETREGS, pid, 0, &regs) == -1 && errno == ESRCH);
    errno = 0;
    check("attaching to yourself: EPERM", ptrace(PTRACE_ATTACH, getpid(), 0, 0) == -1 && errno == EPERM);
    errno = 0;
    check("attaching to nobody: ESRCH", ptrace(PTRACE_ATTACH, 999999, 0, 0) == -1 && errno == ESRCH);
    kill(pid, SIGKILL);
    wait_for(pid);
    pid = fork();
    if (pid == 0) {
        int first = ptrace(PTRACE_TRACEME, 0, 0, 0);
        errno = 0;
        int second = ptrace(PTRACE_TRACEME, 0, 0, 0);
        _exit(first == 0 && second == -1 && errno == EPERM ? 0 : 1);
    }
    int st = wait_for(pid);
    check("TRACEME twice: EPERM", WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(int argc, char **argv) {
    if (argc > 1) return 5;  // "exit5": the program exec_events runs
    self_path = argv[0];
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(30);
    registers_memory_syscalls();
    signal_stops();
    attach_detach();
    seize_interrupt();
    exec_events();
    fork_events();
    step_and_kill();
    errors();
    proc_mem();
    printf("%d failures\n", failures);
    return failures != 0;
}
