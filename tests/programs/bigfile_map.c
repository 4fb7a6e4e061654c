// Mappings of a host file larger than 256 MiB (a sparse 1 GiB + 3 pages), on a
// host-backed directory: `bigfile_map rw DIR` makes the file in DIR and maps it
// shared read-write (stores reach the file at msync and munmap) and private
// (stores stay in the mapping); `bigfile_map ro FILE` maps a file made by the
// test on a read-only volume. Either way only the pages touched may cost memory
// (VmRSS grows by far less than the file), /proc/self/maps names the file, and an
// empty file maps but SIGBUSes when touched.
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "proc_status.h"
#include "check.h"

#define SIZE ((1L << 30) + 3 * 4096)
#define MIB (1L << 20)
// Where the test (or `rw` mode) writes markers: the start, before and past 256
// MiB, and the last page.
static const long marks[] = {0, 100 * MIB + 17, 300 * MIB + 5, SIZE - 100};

static void marker(char *buf, int i) {
    snprintf(buf, 8, "mark%d", i);
}

static int file_has(int fd, long off, const char *s, size_t n) {
    char buf[16] = {0};
    return pread(fd, buf, n, off) == (ssize_t)n && !memcmp(buf, s, n);
}

static int markers_seen(const char *m) {
    for (int i = 0; i < 4; i++) {
        char want[8];
        marker(want, i);
        if (memcmp(m + marks[i], want, 5)) return 0;
    }
    return 1;
}

// Whether /proc/self/maps has a line for `addr` that names `name`.
static int maps_names(void *addr, const char *name) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        if (strtoul(line, NULL, 16) == (unsigned long)addr && strstr(line, name)) found = 1;
    if (f) fclose(f);
    return found;
}

static sigjmp_buf jump;
static void on_bus(int sig) {
    siglongjmp(jump, sig);
}

// Whether reading the first byte at `p` raises SIGBUS.
static int bus_error(volatile char *p) {
    signal(SIGBUS, on_bus);
    if (sigsetjmp(jump, 1) == 0) {
        (void)*p;
        return 0;
    }
    return 1;
}

static void empty_file(const char *path, int writable) {
    int fd = open(path, writable ? O_RDWR | O_CREAT | O_TRUNC : O_RDONLY, 0644);
    char *s = mmap(NULL, 4096, PROT_READ | (writable ? PROT_WRITE : 0), writable ? MAP_SHARED : MAP_PRIVATE, fd, 0);
    check("an empty file maps", s != MAP_FAILED);
    check("... and touching it is SIGBUS", s != MAP_FAILED && bus_error(s));
    close(fd);
}

static void read_write(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/big", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    check("create the file", fd >= 0);
    check("ftruncate it to 1 GiB + 3 pages", ftruncate(fd, SIZE) == 0);
    for (int i = 0; i < 4; i++) {
        char m[8];
        marker(m, i);
        pwrite(fd, m, 5, marks[i]);
    }
    long before = status_kb("VmRSS");
    char *s = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    check("map it shared read-write", s != MAP_FAILED);
    if (s == MAP_FAILED) return;
    check("the markers show through the mapping", markers_seen(s));
    check("/proc/self/maps names the file", maps_names(s, "/big"));
    const long stores[] = {5, 200 * MIB, 700 * MIB + 3, SIZE - 4096 + 1};
    for (int i = 0; i < 4; i++) memcpy(s + stores[i], "STORE", 5);
    check("msync", msync(s, SIZE, MS_SYNC) == 0);
    int reached = 1;
    for (int i = 0; i < 4; i++) reached &= file_has(fd, stores[i], "STORE", 5);
    check("the stores reached the file", reached);
    check("the markers beside them are still there", file_has(fd, marks[2], "mark2", 5) && file_has(fd, marks[3], "mark3", 5));
    long grown = status_kb("VmRSS") - before;
    check("touching a few pages cost far less than the file", before > 0 && grown < 64 * 1024);
    pwrite(fd, "WROTE", 5, 500 * MIB);
    check("a write to the file shows through the mapping", !memcmp(s + 500 * MIB, "WROTE", 5));
    memcpy(s + 900 * MIB, "LAST!", 5);
    check("munmap", munmap(s, SIZE) == 0);
    check("a store reaches the file at munmap", file_has(fd, 900 * MIB, "LAST!", 5));

    char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    check("map it private", p != MAP_FAILED);
    if (p == MAP_FAILED) return;
    check("the private mapping shows the file's bytes", !memcmp(p + 5, "STORE", 5) && !memcmp(p + 900 * MIB, "LAST!", 5));
    memcpy(p + marks[2], "PRIV!", 5);
    check("a private store shows in the mapping", !memcmp(p + marks[2], "PRIV!", 5));
    msync(p, SIZE, MS_SYNC);
    check("... and not in the file", file_has(fd, marks[2], "mark2", 5));
    munmap(p, SIZE);
    check("nor after munmap", file_has(fd, marks[2], "mark2", 5));
    struct stat st;
    check("the file keeps its size", fstat(fd, &st) == 0 && st.st_size == SIZE);
    close(fd);
    snprintf(path, sizeof path, "%s/empty", dir);
    empty_file(path, 1);
}

static void read_only(const char *path) {
    int fd = open(path, O_RDONLY);
    check("open the file", fd >= 0);
    long before = status_kb("VmRSS");
    char *s = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0);
    check("map it shared read-only", s != MAP_FAILED);
    char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    check("map it private", p != MAP_FAILED);
    if (s == MAP_FAILED || p == MAP_FAILED) return;
    check("the markers show through both", markers_seen(s) && markers_seen(p));
    check("/proc/self/maps names the file", maps_names(s, "/big") && maps_names(p, "/big"));
    memcpy(p + marks[2], "PRIV!", 5);
    check("a private store shows in its mapping only", !memcmp(p + marks[2], "PRIV!", 5) && !memcmp(s + marks[2], "mark2", 5));
    check("... and not in the file", file_has(fd, marks[2], "mark2", 5));
    long grown = status_kb("VmRSS") - before;
    check("touching a few pages cost far less than the file", before > 0 && grown < 64 * 1024);
    close(fd);
    char empty[4096];
    snprintf(empty, sizeof empty, "%.*s/empty", (int)(strrchr(path, '/') - path), path);
    empty_file(empty, 0);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    if (!strcmp(argv[1], "rw")) {
        read_write(argv[2]);
    } else {
        read_only(argv[2]);
    }
    if (!failures) printf("all ok\n");
    return failures != 0;
}
