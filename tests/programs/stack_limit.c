// RLIMIT_STACK bounds how far the main stack grows, when the process touches
// memory below it and when the kernel writes there for it (read(2) into it), as
// set at the time of the access; an exec with an unlimited stack leaves it room
// to grow far. Each case runs in a child, which the access kills (SIGSEGV) or
// not, compared with Linux.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define MiB (1024L * 1024L)

static void set_stack(rlim_t bytes) {
    struct rlimit rl;
    getrlimit(RLIMIT_STACK, &rl);
    rl.rlim_cur = bytes;
    if (setrlimit(RLIMIT_STACK, &rl) != 0) _exit(90);
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

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "unlimited") == 0) {
        run("unlimited since exec, touch 256 MiB below", 0, touch, 256 * MiB);
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
