// lseek SEEK_DATA / SEEK_HOLE on a sparse tmpfs file (/dev/shm is tmpfs both
// natively and in the sandbox): data pages, holes between them, the implicit
// hole at the end, ENXIO past the end.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void seek(int fd, off_t at, int whence, const char *what) {
    errno = 0;
    off_t r = lseek(fd, at, whence);
    printf("%s from %lld: %lld %s\n", what, (long long)at, (long long)r, r < 0 ? strerrorname_np(errno) : "");
}

int main(void) {
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/seek_hole.%d", getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    unlink(path);
    char page[4096];
    memset(page, 'x', sizeof page);
    pwrite(fd, page, 4096, 8192);     // data at [8K, 12K)
    pwrite(fd, page, 100, 5 * 4096);  // data at [20K, 20K+100)
    ftruncate(fd, 40000);             // a hole to the end
    off_t points[] = {0, 100, 8192, 9000, 12288, 20480, 20500, 30000, 39999, 40000, 50000};
    for (unsigned i = 0; i < sizeof points / sizeof *points; i++) {
        seek(fd, points[i], SEEK_DATA, "SEEK_DATA");
        seek(fd, points[i], SEEK_HOLE, "SEEK_HOLE");
    }
    seek(fd, -1, SEEK_DATA, "SEEK_DATA");
    return 0;
}
