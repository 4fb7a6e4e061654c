// read/write/readv/writev/pread64/pwrite64 on the inherited stdio.
// Copies stdin to stdout with readv/writev (odd-sized iovecs), then writes 1 MiB in one
// write(2), then prints a report of the byte counts and of the error cases.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static char report[4096];
static size_t rlen;

static void note(const char *what, long r) {
    if (r == -1)
        rlen += snprintf(report + rlen, sizeof report - rlen, "%s = -1 %s\n", what, strerrorname_np(errno));
    else
        rlen += snprintf(report + rlen, sizeof report - rlen, "%s = %ld\n", what, r);
}

static int write_all(const char *p, size_t n) {
    while (n) {
        ssize_t w = write(1, p, n);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(void) {
    static char a[1000], b[3001];
    unsigned long total = 0;
    for (;;) {
        struct iovec in[2] = {{a, sizeof a}, {b, sizeof b}};
        ssize_t n = readv(0, in, 2);
        if (n < 0) {
            perror("readv");
            return 1;
        }
        if (n == 0) break;
        total += (unsigned long)n;
        struct iovec out[2] = {{a, n < (ssize_t)sizeof a ? (size_t)n : sizeof a},
                               {b, n > (ssize_t)sizeof a ? (size_t)n - sizeof a : 0}};
        ssize_t left = n;
        /* writev may be partial in principle: finish with write_all. */
        ssize_t w = writev(1, out, 2);
        if (w < 0) {
            perror("writev");
            return 1;
        }
        if (w < left) {
            char tmp[sizeof a + sizeof b];
            memcpy(tmp, a, sizeof a);
            memcpy(tmp + sizeof a, b, sizeof b);
            if (write_all(tmp + w, (size_t)(left - w))) return 1;
        }
    }
    static char big[1 << 20];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + i % 26);
    big[sizeof big - 1] = '\n';
    ssize_t w = write(1, big, sizeof big);

    note("bytes copied from stdin", (long)total);
    note("write of 1 MiB", (long)w);
    note("read after EOF", read(0, a, sizeof a));
    char c = 'x';
    note("pread64(0)", pread(0, a, 10, 0));
    note("pwrite64(1)", pwrite(1, &c, 1, 0));
    note("pread64(0, offset -1)", syscall(SYS_pread64, 0, a, 10, -1L));
    note("write(99)", write(99, &c, 1));
    note("read(99)", read(99, a, 1));
    note("read(-1)", read(-1, a, 1));
    note("read(1) (write end of a pipe)", read(1, a, 1));
    note("write(0) (read end of a pipe)", write(0, &c, 1));
    struct iovec iov[2] = {{&c, 1}, {&c, 1}};
    note("writev(1, iov, 0)", writev(1, iov, 0));
    note("writev(1, iov, -1)", syscall(SYS_writev, 1, iov, -1));
    note("writev(1, iov, 1025)", syscall(SYS_writev, 1, iov, 1025));
    note("readv(0, iov, 1025)", syscall(SYS_readv, 0, iov, 1025));
    printf("%s", report);
    return 0;
}
