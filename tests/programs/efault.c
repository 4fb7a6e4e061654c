// Bad user pointers give EFAULT; zero-length transfers do not look at the pointer
// (Linux's delayed validation). Prints each result so it can be compared with Linux.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static void show(const char *what, long r) {
    if (r == -1) printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else printf("%s = %ld\n", what, r);
}

int main(void) {
    show("write(1, (void*)1, 10)", syscall(SYS_write, 1, (void *)1, 10));
    show("write(1, NULL, 0)", syscall(SYS_write, 1, NULL, 0));
    show("write(1, (void*)1, 0)", syscall(SYS_write, 1, (void *)1, 0));
    show("read(0, NULL, 0)", read(0, NULL, 0));
    show("read(0, (void*)1, 0)", syscall(SYS_read, 0, (void *)1, 0));
    show("write(1, kernel address, 4)", syscall(SYS_write, 1, (void *)0xffffffff81000000UL, 4));
    show("write(1, non-canonical, 4)", syscall(SYS_write, 1, (void *)0x0000800000000000UL, 4));
    struct iovec bad = {(void *)1, 10};
    show("writev(1, {(void*)1, 10}, 1)", syscall(SYS_writev, 1, &bad, 1));
    show("writev(1, (void*)1, 1)", syscall(SYS_writev, 1, (void *)1, 1));
    struct iovec empty = {(void *)1, 0};
    show("writev(1, {(void*)1, 0}, 1)", syscall(SYS_writev, 1, &empty, 1));
    show("readv(0, (void*)1, 1)", syscall(SYS_readv, 0, (void *)1, 1));
    show("uname((void*)1)", syscall(SYS_uname, (void *)1));
    show("getrandom((void*)1, 8, 0)", syscall(SYS_getrandom, (void *)1, 8, 0));
    show("clock_gettime(MONOTONIC, (void*)1)", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)1));
    show("gettimeofday((void*)1, NULL)", syscall(SYS_gettimeofday, (void *)1, NULL));
    show("clock_getres(MONOTONIC, (void*)1)", syscall(SYS_clock_getres, CLOCK_MONOTONIC, (void *)1));
    show("time((void*)1)", syscall(SYS_time, (void *)1));
    show("rt_sigprocmask(SIG_BLOCK, (void*)1, NULL, 8)", syscall(SYS_rt_sigprocmask, SIG_BLOCK, (void *)1, NULL, 8));
    show("rt_sigprocmask(SIG_BLOCK, NULL, (void*)1, 8)", syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, (void *)1, 8));
    show("rt_sigaction(SIGUSR1, (void*)1, NULL, 8)", syscall(SYS_rt_sigaction, SIGUSR1, (void *)1, NULL, 8));
    show("getrlimit(RLIMIT_NOFILE, (void*)1)", syscall(SYS_getrlimit, 7, (void *)1));
    show("prlimit64(0, RLIMIT_NOFILE, NULL, (void*)1)", syscall(SYS_prlimit64, 0, 7, NULL, (void *)1));
    show("fstat(1, (void*)1)", syscall(SYS_fstat, 1, (void *)1));
    show("getcwd((void*)1, 100)", syscall(SYS_getcwd, (void *)1, 100));
    show("sched_getaffinity(0, 128, (void*)1)", syscall(SYS_sched_getaffinity, 0, 128, (void *)1));
    show("getresuid((void*)1, (void*)1, (void*)1)", syscall(SYS_getresuid, (void *)1, (void *)1, (void *)1));
    show("readlink(\"/proc/self/exe\", (void*)1, 100)", syscall(SYS_readlink, "/proc/self/exe", (void *)1, 100));
    show("readlink((void*)1, buf, 100)", syscall(SYS_readlink, (void *)1, (char[100]){0}, 100));
    /* A regular file: a write stops at the first bad buffer and keeps what came before;
     * a big one arrives whole. */
    char path[] = "/tmp/rvisor-efault-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    struct iovec good_then_bad[2] = {{"hello", 5}, {(void *)1, 10}};
    show("writev(file, {5 good bytes, 10 bad}, 2)", syscall(SYS_writev, fd, good_then_bad, 2));
    show("write(file, (void*)1, 10)", syscall(SYS_write, fd, (void *)1, 10));
    size_t big = (3 << 20) + 5;
    char *data = malloc(big), *back = malloc(big);
    for (size_t i = 0; i < big; i++) data[i] = (char)(i * 7 + i / 4096);
    show("pwrite(file, 3 MiB + 5, 0)", pwrite(fd, data, big, 0));
    show("pread(file, 3 MiB + 5, 0)", pread(fd, back, big, 0));
    printf("reads back the same: %s\n", memcmp(data, back, big) == 0 ? "yes" : "no");
    close(fd);
    /* read of an EOF pipe returns 0 before touching the buffer (stdin is empty under the harness) */
    show("read(0, (void*)1, 10) at EOF", syscall(SYS_read, 0, (void *)1, 10));
    printf("still running\n");
    return 0;
}
