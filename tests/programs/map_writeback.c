// What a shared writable mapping of a file on a host-backed directory writes
// back, and how it follows the file's size: `map_writeback DIR` works in DIR.
// Only pages stored to go back to the file: a sparse file read through the
// mapping stays sparse, and bytes written to the file through another name where
// the mapping only read stay. ftruncate growing the file lets the mapping reach
// the new pages, write() past the end shows through it, and shrinking makes the
// pages past the new end SIGBUS.
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"

#define PAGE 4096L
#define MIB (1L << 20)
#define SPARSE (64 * MIB)

static sigjmp_buf jump;
static void on_bus(int sig) {
    siglongjmp(jump, sig);
}

// Whether reading the byte at `p` raises SIGBUS.
static int bus_error(volatile char *p) {
    signal(SIGBUS, on_bus);
    if (sigsetjmp(jump, 1) == 0) {
        (void)*p;
        return 0;
    }
    return 1;
}

static int file_has(int fd, long off, const char *s, size_t n) {
    char buf[16] = {0};
    return pread(fd, buf, n, off) == (ssize_t)n && !memcmp(buf, s, n);
}

static long blocks(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (long)st.st_blocks : -1;
}

static void sparse(const char *dir) {
    char path[4096], alias[4096];
    snprintf(path, sizeof path, "%s/sparse", dir);
    snprintf(alias, sizeof alias, "%s/alias", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    check("create a sparse file of 64 MiB", fd >= 0 && ftruncate(fd, SPARSE) == 0);
    char *s = mmap(NULL, SPARSE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    check("map it shared read-write", s != MAP_FAILED);
    if (s == MAP_FAILED) return;
    long sum = 0;
    for (long off = 0; off < SPARSE; off += PAGE) sum += s[off];
    check("it reads as zeros", sum == 0);
    memcpy(s + 10 * MIB + 7, "STORE", 5);
    check("msync", msync(s, SPARSE, MS_SYNC) == 0);
    check("the store reached the file", file_has(fd, 10 * MIB + 7, "STORE", 5));
    // One page, or the file system's block around it: far from 64 MiB.
    long b = blocks(fd);
    check("the file stays sparse", b >= 0 && b * 512 <= 256 * 1024);
    if (b * 512 > 256 * 1024) printf("  (%ld KiB allocated)\n", b / 2);

    // Through another name, which the mapping's file does not see written.
    check("link another name to it", link(path, alias) == 0);
    int other = open(alias, O_RDWR);
    check("write there through the other name", other >= 0 && pwrite(other, "OTHER", 5, 20 * MIB) == 5);
    memcpy(s + 30 * MIB, "AGAIN", 5);
    check("msync again", msync(s, SPARSE, MS_SYNC) == 0);
    check("the write where the mapping only read stays", file_has(fd, 20 * MIB, "OTHER", 5));
    check("the new store reached the file", file_has(fd, 30 * MIB, "AGAIN", 5));
    memcpy(s + 10 * MIB + 7, "THIRD", 5);
    check("munmap", munmap(s, SPARSE) == 0);
    check("a store after a write-back reached the file at munmap", file_has(fd, 10 * MIB + 7, "THIRD", 5));
    check("... and the other write is still there", file_has(fd, 20 * MIB, "OTHER", 5));
    b = blocks(fd);
    check("the file is still sparse", b >= 0 && b * 512 <= 512 * 1024);
    close(other);
    close(fd);
}

static void resized(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/resized", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    check("create a file of 2 pages", fd >= 0 && ftruncate(fd, 2 * PAGE) == 0);
    char *s = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    check("map 16 pages of it shared", s != MAP_FAILED);
    if (s == MAP_FAILED) return;
    s[0] = 'a';
    check("the third page is past the end (SIGBUS)", bus_error(s + 2 * PAGE));
    check("grow it to 8 pages", ftruncate(fd, 8 * PAGE) == 0);
    int grown = !bus_error(s + 5 * PAGE);
    check("the sixth page reads (zeros)", grown && s[5 * PAGE] == 0);
    if (grown) memcpy(s + 5 * PAGE + 1, "GROWN", 5);
    check("msync", msync(s, 16 * PAGE, MS_SYNC) == 0);
    check("a store to a grown page reached the file", file_has(fd, 5 * PAGE + 1, "GROWN", 5));
    check("write() past the end", pwrite(fd, "WROTE", 5, 10 * PAGE + 3) == 5);
    check("shows through the mapping", !bus_error(s + 10 * PAGE) && !memcmp(s + 10 * PAGE + 3, "WROTE", 5));
    check("shrink it to 3 pages", ftruncate(fd, 3 * PAGE) == 0);
    check("the sixth page is past the end now", bus_error(s + 5 * PAGE));
    check("the eleventh too", bus_error(s + 10 * PAGE));
    check("the first pages still read", !bus_error(s + 2 * PAGE) && s[0] == 'a');
    // A mapping made after the file grew far past its first size (as SQLite's
    // shared-memory file grows region by region, mapping each).
    check("grow it to 40 MiB", ftruncate(fd, 40 * MIB) == 0);
    char *far = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 39 * MIB);
    check("map its last MiB", far != MAP_FAILED);
    if (far != MAP_FAILED) {
        int reads = !bus_error(far);
        check("... which reads", reads);
        if (reads) memcpy(far, "FAR!!", 5);
        munmap(far, PAGE);
        check("a store there reached the file", file_has(fd, 39 * MIB, "FAR!!", 5));
    }
    check("the first mapping reaches the grown file", !bus_error(s + 12 * PAGE));
    munmap(s, 16 * PAGE);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    sparse(argv[1]);
    resized(argv[1]);
    if (!failures) printf("all ok\n");
    return failures != 0;
}
