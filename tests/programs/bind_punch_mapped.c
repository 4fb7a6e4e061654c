/* A hole punched in a host file (the argument's directory is a bind mount in
 * the sandbox) under a shared mapping that stored to it stays a hole once the
 * mapping is written back (msync, munmap), as Linux drops the range's cached
 * pages: st_blocks and SEEK_HOLE/SEEK_DATA as natively; a store into the
 * hole after the punch fills its page again. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096

static void layout(const char *what, int fd) {
    struct stat st;
    fstat(fd, &st);
    printf("%s: blocks %ld, first hole at %ld, data from page 4 on at %ld, from page 6 on at %ld\n", what, (long)st.st_blocks,
           (long)lseek(fd, 0, SEEK_HOLE), (long)lseek(fd, 4 * PAGE, SEEK_DATA), (long)lseek(fd, 6 * PAGE, SEEK_DATA));
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/punched", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    size_t len = 16 * PAGE;
    if (fd < 0 || ftruncate(fd, len) != 0)
        return 1;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return 1;
    memset(m, 'x', len);
    // Pages 4 to 11 whole, and half of page 12.
    int r = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4 * PAGE, 8 * PAGE + PAGE / 2);
    printf("punch: %d; the mapping reads %c%c%c at pages 3, 4 and 12, %c in the second half of 12\n", r, m[3 * PAGE] ? 'x' : '0',
           m[4 * PAGE] ? 'x' : '0', m[12 * PAGE] ? 'x' : '0', m[12 * PAGE + PAGE / 2]);
    msync(m, len, MS_SYNC);
    layout("after msync", fd);
    m[10 * PAGE] = 'y';
    msync(m, len, MS_SYNC);
    layout("after a store into page 10", fd);
    munmap(m, len);
    layout("after munmap", fd);
    char c;
    pread(fd, &c, 1, 10 * PAGE);
    printf("page 10 reads %c\n", c);
    return 0;
}
