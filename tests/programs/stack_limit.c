// RLIMIT_STACK bounds how far the main stack grows, when the process touches
// memory below it and when the kernel writes there for it (read(2) into it), as
// set at the time of the access; an exec with an unlimited stack leaves it room
// to grow far. Each case runs in a child, which the access kills (SIGSEGV) or
// not, compared with Linux.
//   - exec maps an initial stack of the argument pages and 128 KiB more, but no
//     more than RLIMIT_STACK (a tiny `ulimit -s` makes a program fault)
//   - exec refuses (E2BIG) argv and envp past a quarter of RLIMIT_STACK (at
//     most 6 MiB, at least 128 KiB), their pointers included, and any string
//     of 128 KiB or more
//   - growth past RLIMIT_AS, or past RLIMIT_MEMLOCK for a stack mlockall
//     locked (without CAP_IPC_LOCK), faults too
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include "check.h"

#define MiB (1024L * 1024L)

static void set_limit(int resource, rlim_t bytes) {
    struct rlimit rl;
    getrlimit(resource, &rl);
    rl.rlim_cur = bytes;
    if (setrlimit(resource, &rl) != 0) _exit(90);
}

static void set_stack(rlim_t bytes) {
    set_limit(RLIMIT_STACK, bytes);
}

// The address space's size (VmSize), in bytes.
static long vm_size(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024;
}

// Stores a byte `below` bytes under the current stack frame.
static __attribute__((noinline)) void touch(long below) {
    volatile char here;
    volatile char *p = &here - below;
    *p = 1;
}

// read(2) of /dev/zero into a page `below` bytes under the stack frame.
static __attribute__((noinline)) long read_below(long below) {
    volatile char here;
    int fd = open("/dev/zero", O_RDONLY);
    long r = read(fd, (char *)((unsigned long)(&here - below) & ~4095UL), 4096);
    return r < 0 ? -errno : r;
}

// Runs `f(arg)` in a child under a stack limit (0: unchanged) and says how the child ended.
static void run(const char *what, rlim_t limit, void (*f)(long), long arg) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        if (limit) set_stack(limit);
        f(arg);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    if (WIFSIGNALED(st)) printf("%s: killed by %s\n", what, sigabbrev_np(WTERMSIG(st)));
    else printf("%s: exited %d\n", what, WEXITSTATUS(st));
}

static void read_case(long below) {
    long r = read_below(below);
    printf("  read(2) %ld MiB below the stack: %s\n", below / MiB, r > 0 ? "ok" : errname(-r));
}

// RLIMIT_AS 1 MiB above what is mapped now, then a touch `below` the stack.
static void as_case(long below) {
    set_limit(RLIMIT_AS, vm_size() + MiB);
    touch(below);
}

// mlockall(MCL_CURRENT | MCL_FUTURE) without CAP_IPC_LOCK, RLIMIT_MEMLOCK 1 MiB
// above what is mapped (all locked now), then a touch `below` the stack.
static void memlock_case(long below) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
    if (syscall(SYS_capset, &h, d) != 0) _exit(91);
    set_limit(RLIMIT_MEMLOCK, vm_size() + MiB);
    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) _exit(92);
    touch(below);
}

static char **strings(int n, size_t len) {
    char **v = calloc(n + 2, sizeof *v);
    v[0] = "noop";
    for (int i = 1; i <= n; i++) {
        v[i] = malloc(len + 1);
        memset(v[i], 'x', len);
        v[i][len] = 0;
    }
    return v;
}

// An exec of this program under stack limit `limit` (0: unchanged) with `args`
// (after argv[0]; the environment `env`): how it failed (the child says, and
// exits 1), or how the program ended.
static void exec_case(const char *what, rlim_t limit, char **args, char **env) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        if (limit) set_stack(limit);
        args[-1] = "/proc/self/exe";
        execve("/proc/self/exe", args - 1, env);
        printf("%s: %s\n", what, errname(errno));
        _exit(1);
    }
    int st;
    waitpid(c, &st, 0);
    if (WIFSIGNALED(st)) printf("%s: killed by %s\n", what, sigabbrev_np(WTERMSIG(st)));
    else if (WEXITSTATUS(st) == 0) printf("%s: ran\n", what);
    else if (WEXITSTATUS(st) != 1) printf("%s: exited %d\n", what, WEXITSTATUS(st));
}

static void exec_cases(void) {
    char *none[] = {NULL};
    char *v[8] = {0};
    v[1] = "touch";
    v[2] = "100";
    exec_case("exec under 64 KiB, touch 100 KiB below", 64 << 10, v + 1, none);
    v[2] = "32";
    exec_case("exec under 64 KiB, touch 32 KiB below", 64 << 10, v + 1, none);
    v[2] = "200";
    exec_case("exec under 256 KiB, touch 200 KiB below", 256 << 10, v + 1, none);
    v[2] = "400";
    exec_case("exec under 256 KiB, touch 400 KiB below", 256 << 10, v + 1, none);

    // 24 strings of 64 KiB: 1.5 MiB.
    char **big = strings(24, 64 << 10);
    exec_case("argv of 1.5 MiB", 0, big, none);
    exec_case("argv and envp of 1.5 MiB each", 0, big, big + 1);
    char **k200 = strings(4, 50 << 10), **k300 = strings(6, 50 << 10);
    exec_case("under 1 MiB, argv of 200 KiB", MiB, k200, none);
    exec_case("under 1 MiB, argv of 300 KiB", MiB, k300, none);
    exec_case("under 64 KiB, argv of 100 KiB", 64 << 10, strings(2, 50 << 10), none);
    exec_case("under 64 KiB, argv of 50 KiB", 64 << 10, strings(1, 50 << 10), none);
    exec_case("under 64 KiB, argv of 64 KiB", 64 << 10, strings(1, 64 << 10), none);
    exec_case("a string of 128 KiB less a byte", 0, strings(1, (128 << 10) - 1), none);
    exec_case("a string of 128 KiB", 0, strings(1, 128 << 10), none);
    exec_case("under 1 MiB, 40000 empty arguments", MiB, strings(40000, 0), none);
    exec_case("40000 empty arguments", 0, strings(40000, 0), none);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "unlimited") == 0) {
        run("unlimited since exec, touch 256 MiB below", 0, touch, 256 * MiB);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "noop") == 0) return 0;
    if (argc > 2 && strcmp(argv[1], "touch") == 0) {
        touch(atol(argv[2]) << 10);
        return 0;
    }
    run("default 8 MiB, touch 4 MiB below", 0, touch, 4 * MiB);
    run("default 8 MiB, touch 16 MiB below", 0, touch, 16 * MiB);
    run("64 MiB, touch 16 MiB below", 64 * MiB, touch, 16 * MiB);
    run("64 MiB, touch 100 MiB below", 64 * MiB, touch, 100 * MiB);
    run("1 MiB, touch 512 KiB below", 1 * MiB, touch, MiB / 2);
    run("1 MiB, touch 2 MiB below", 1 * MiB, touch, 2 * MiB);
    run("default 8 MiB, read(2) 32 MiB below", 0, read_case, 32 * MiB);
    run("64 MiB, read(2) 32 MiB below", 64 * MiB, read_case, 32 * MiB);
    run("RLIMIT_AS 1 MiB above, touch 512 KiB below", 0, as_case, MiB / 2);
    run("RLIMIT_AS 1 MiB above, touch 4 MiB below", 0, as_case, 4 * MiB);
    run("mlockall, RLIMIT_MEMLOCK 1 MiB above, touch 512 KiB below", 0, memlock_case, MiB / 2);
    run("mlockall, RLIMIT_MEMLOCK 1 MiB above, touch 4 MiB below", 0, memlock_case, 4 * MiB);
    exec_cases();

    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        set_stack(RLIM_INFINITY);
        execl("/proc/self/exe", argv[0], "unlimited", (char *)NULL);
        _exit(99);
    }
    int st;
    waitpid(c, &st, 0);
    check("the unlimited run", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("%d failures\n", failures);
    return failures != 0;
}
