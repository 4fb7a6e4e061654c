// process_madvise(2) (Linux 5.10) on a child through its pidfd: the hints a
// process may give another (MADV_COLD, MADV_PAGEOUT, MADV_WILLNEED) over several
// ranges return the bytes advised and leave the memory as it was; other advice,
// flags, an unaligned range and a descriptor that is no pidfd are refused; a gap
// in the ranges stops the call (ENOMEM, or the bytes before it).
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static long padvise(int pidfd, const struct iovec *iov, size_t n, int advice, unsigned flags) {
    return syscall(SYS_process_madvise, pidfd, iov, n, advice, flags);
}

static const char *res(long r) {
    static char buf[64];
    if (r >= 0) snprintf(buf, sizeof buf, "%ld", r);
    else snprintf(buf, sizeof buf, "-1 %s", errname(errno));
    return buf;
}

int main(void) {
    long ps = sysconf(_SC_PAGESIZE);
    /* Three pages, the middle one unmapped: the child inherits the same layout. */
    char *m = mmap(NULL, 3 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(m, 'x', 3 * ps);
    munmap(m + ps, ps);
    int go[2], back[2];
    pipe(go);
    pipe(back);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        char c;
        read(go[0], &c, 1);
        c = m[0] == 'x' && m[2 * ps] == 'x' ? 'y' : 'n';
        write(back[1], &c, 1);
        _exit(0);
    }
    int pidfd = syscall(SYS_pidfd_open, child, 0);
    struct iovec both[2] = {{m, ps}, {m + 2 * ps, ps}};
    printf("MADV_COLD over two ranges: %s\n", res(padvise(pidfd, both, 2, MADV_COLD, 0)));
    printf("MADV_PAGEOUT: %s\n", res(padvise(pidfd, both, 2, MADV_PAGEOUT, 0)));
    printf("MADV_WILLNEED: %s\n", res(padvise(pidfd, both, 1, MADV_WILLNEED, 0)));
    printf("no ranges: %s\n", res(padvise(pidfd, both, 0, MADV_COLD, 0)));
    printf("MADV_DONTNEED (not for another process): %s\n", res(padvise(pidfd, both, 2, MADV_DONTNEED, 0)));
    printf("advice 999: %s\n", res(padvise(pidfd, both, 2, 999, 0)));
    printf("flags 1: %s\n", res(padvise(pidfd, both, 2, MADV_COLD, 1)));
    struct iovec odd = {m + 1, ps};
    printf("an unaligned range: %s\n", res(padvise(pidfd, &odd, 1, MADV_COLD, 0)));
    struct iovec gap = {m + ps, ps};
    printf("an unmapped range: %s\n", res(padvise(pidfd, &gap, 1, MADV_COLD, 0)));
    struct iovec then_gap[2] = {{m, ps}, {m + ps, ps}};
    printf("a mapped range, then an unmapped one: %s\n", res(padvise(pidfd, then_gap, 2, MADV_COLD, 0)));
    printf("1025 ranges: %s\n", res(padvise(pidfd, both, 1025, MADV_COLD, 0)));
    printf("ranges at an unmapped address: %s\n", res(padvise(pidfd, (struct iovec *)8, 1, MADV_COLD, 0)));
    printf("a descriptor that is no pidfd: %s\n", res(padvise(go[0], both, 2, MADV_COLD, 0)));
    printf("descriptor 999: %s\n", res(padvise(999, both, 2, MADV_COLD, 0)));
    write(go[1], "x", 1);
    char c = '?';
    read(back[0], &c, 1);
    check("the child's memory is as it was", c == 'y');
    waitpid(child, NULL, 0);
    printf("after the child was reaped: %s\n", res(padvise(pidfd, both, 2, MADV_COLD, 0)));
    printf("%d failures\n", failures);
    return failures != 0;
}
