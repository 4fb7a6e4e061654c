// Sandbox escape probe: raw `syscall` instructions (no libc wrapper in between) that would
// have visible effects on the host if they reached the host kernel. Run it only in the
// sandbox: natively it really does create the directory and kill the victim.
//
//   escape MKDIR_PATH FIFO_PATH VICTIM_PID
//
// 1. mkdir(MKDIR_PATH)                          host effect: the directory appears
// 2. openat(AT_FDCWD, "/etc/hostname", O_RDONLY) a host file (prints the result only)
// 3. openat(AT_FDCWD, FIFO_PATH, O_RDONLY|O_NONBLOCK)
//                                               host effect: the FIFO gains a reader, so a
//                                               host open(O_WRONLY|O_NONBLOCK) succeeds
//                                               instead of failing with ENXIO
// 4. kill(VICTIM_PID, SIGKILL)                  host effect: the harness's victim dies
// 5. kill(1, 0)                                 signal 0 only: never SIGKILL a host pid 1
// Then prints "waiting", blocks reading stdin until EOF (the harness checks the host
// meanwhile, while the FIFO would still be open), prints "still running" and exits 0.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long raw3(long nr, long a, long b, long c) {
    long ret;
    register long r10 __asm__("r10") = 0;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}

static void show(const char *what, long r) {
    if (r < 0 && r > -4096) printf("%s = -%s\n", what, strerrorname_np((int)-r) ? strerrorname_np((int)-r) : "E?");
    else printf("%s = %ld\n", what, r);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: escape MKDIR_PATH FIFO_PATH VICTIM_PID\n");
        return 2;
    }
    long victim = atol(argv[3]);
    if (victim <= 1) {
        fprintf(stderr, "refusing victim pid %ld\n", victim);
        return 2;
    }
    show("getpid", raw3(SYS_getpid, 0, 0, 0) > 0 ? 1 : 0);
    show("mkdir", raw3(SYS_mkdir, (long)argv[1], 0755, 0));
    long fd = raw3(SYS_openat, AT_FDCWD, (long)"/etc/hostname", O_RDONLY);
    show("openat /etc/hostname", fd < 0 ? fd : 0);
    if (fd >= 0) {
        char buf[256];
        long n = raw3(SYS_read, fd, (long)buf, sizeof buf);
        printf("read from /etc/hostname: %s\n", n >= 0 ? "some bytes" : "error");
    }
    long ffd = raw3(SYS_openat, AT_FDCWD, (long)argv[2], O_RDONLY | O_NONBLOCK);
    show("openat fifo", ffd < 0 ? ffd : 0);
    show("kill victim SIGKILL", raw3(SYS_kill, victim, SIGKILL, 0));
    show("kill(1, 0)", raw3(SYS_kill, 1, 0, 0));
    printf("waiting\n");
    fflush(stdout);
    char c;
    while (raw3(SYS_read, 0, (long)&c, 1) == 1) {
    }
    printf("still running\n");
    return 0;
}
