// lseek SEEK_DATA / SEEK_HOLE on a sparse tmpfs file (/dev/shm is tmpfs both
// natively and in the sandbox): data pages, holes between them, the implicit
// hole at the end, ENXIO past the end; fallocate's PUNCH_HOLE making holes.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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

    // Punching the first data page out makes it a hole that reads as zeros; a
    // partial punch zeroes bytes inside a page; the size stays.
    printf("punch 8K..12K: %d\n", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8192, 4096));
    seek(fd, 0, SEEK_DATA, "SEEK_DATA");
    char got[8] = {1};
    pread(fd, got, 4, 9000);
    printf("punched bytes read as zeros: %s\n", !got[0] && !got[3] ? "yes" : "no");
    printf("partial punch: %d\n", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 20480 + 10, 20));
    pread(fd, got, 4, 20480 + 8);
    printf("bytes around a partial punch: %c %d %d %d\n", got[0], got[2], got[3], got[1]);
    struct stat st;
    fstat(fd, &st);
    printf("size after punching: %lld\n", (long long)st.st_size);
    int r = fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096);
    printf("punch without KEEP_SIZE: %d %s\n", r, strerrorname_np(errno));
    return 0;
}
