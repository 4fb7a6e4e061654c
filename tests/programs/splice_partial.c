// splice into a pipe with little or no room (SPLICE_F_NONBLOCK): only what went into
// the pipe leaves the source. A file's position moves by what was spliced, and a
// source pipe keeps what did not fit.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char data[20000], got[70000];

// A pipe with `pages` full 4 KiB buffers of its 16 in use.
static void pipe_with(int p[2], int pages) {
    pipe(p);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    for (int i = 0; i < pages; i++)
        write(p[1], data, 4096);
}

static void drain(int fd, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, got, n < sizeof got ? n : sizeof got);
        if (r <= 0)
            return;
        n -= r;
    }
}

int main(void) {
    for (int i = 0; i < (int)sizeof data; i++) data[i] = 'a' + i % 23;
    char path[64];
    snprintf(path, sizeof path, "/tmp/splice-partial-%d", getpid());
    int f = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    write(f, data, sizeof data);
    lseek(f, 0, SEEK_SET);

    int full[2];
    pipe_with(full, 16);
    ssize_t r = splice(f, NULL, full[1], NULL, 5000, SPLICE_F_NONBLOCK);
    printf("file into a full pipe: %zd %s, file position %lld\n", r, r < 0 ? strerrorname_np(errno) : "", (long long)lseek(f, 0, SEEK_CUR));

    int room[2];
    pipe_with(room, 15);
    r = splice(f, NULL, room[1], NULL, 5000, SPLICE_F_NONBLOCK);
    printf("file into one free buffer: %zd, file position %lld\n", r, (long long)lseek(f, 0, SEEK_CUR));
    drain(room[0], 15 * 4096);
    ssize_t n = read(room[0], got, sizeof got);
    printf("the pipe holds the file's first %zd bytes: %s\n", n, n > 0 && memcmp(got, data, n) == 0 ? "yes" : "no");

    int src[2], dst[2];
    pipe(src);
    write(src[1], data, 5000);
    pipe_with(dst, 15);
    r = splice(src[0], NULL, dst[1], NULL, 5000, SPLICE_F_NONBLOCK);
    printf("pipe into one free buffer: %zd\n", r);
    fcntl(src[0], F_SETFL, O_NONBLOCK);
    n = read(src[0], got, sizeof got);
    printf("the source keeps %zd bytes, the rest: %s\n", n, n > 0 && memcmp(got, data + r, n) == 0 ? "yes" : "no");
    pipe_with(dst, 16);
    write(src[1], data, 100);
    r = splice(src[0], NULL, dst[1], NULL, 100, SPLICE_F_NONBLOCK);
    n = read(src[0], got, sizeof got);
    printf("pipe into a full pipe: %zd %s, the source keeps %zd bytes\n", r, r < 0 ? strerrorname_np(errno) : "", n);

    unlink(path);
    printf("all ok\n");
    return 0;
}
