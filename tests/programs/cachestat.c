// cachestat (Linux 6.5): the page-cache state of a file's range. A memfd's
// (tmpfs) pages are all in memory and never dirty in the page cache's sense,
// so their counts are exact anywhere; files without pages (pipes, sockets,
// directories) count nothing; the running program's own file is cached
// wherever it runs. Then the errors, in Linux's order.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

#define NR_cachestat 451
#define PAGE 4096

struct cachestat_range {
    uint64_t off, len;
};

struct cachestat {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

static struct cachestat cs;

static long stat_of(int fd, uint64_t off, uint64_t len, unsigned flags) {
    struct cachestat_range r = {off, len};
    memset(&cs, 0xff, sizeof cs);
    return syscall(NR_cachestat, fd, &r, &cs, flags);
}

// The counts of [off, off + len), or the error.
static void show(const char *what, int fd, uint64_t off, uint64_t len) {
    if (stat_of(fd, off, len, 0) < 0) {
        printf("%s: -1 %s\n", what, errname(errno));
        return;
    }
    printf("%s: cache %llu dirty %llu writeback %llu evicted %llu recently %llu\n", what, (unsigned long long)cs.nr_cache,
           (unsigned long long)cs.nr_dirty, (unsigned long long)cs.nr_writeback, (unsigned long long)cs.nr_evicted,
           (unsigned long long)cs.nr_recently_evicted);
}

static void show_err(const char *what, long r) {
    printf("%s: %ld %s\n", what, r < 0 ? -1L : r, r < 0 ? errname(errno) : "");
}

int main(void) {
    char page[PAGE];
    memset(page, 'x', sizeof page);
    int m = memfd_create("cachestat", 0);
    if (m < 0) return 1;
    show("empty memfd", m, 0, 0);
    for (int i = 0; i < 4; i++) write(m, page, sizeof page);
    show("4 pages written", m, 0, 0);
    show("page 1, 1 byte", m, PAGE, 1);
    show("bytes 4095-4096", m, PAGE - 1, 2);
    show("from page 2 to the end", m, 2 * PAGE, 0);
    show("past the end", m, 1ull << 40, 0);
    show("a range that wraps", m, PAGE, UINT64_MAX);
    show("the last possible page", m, UINT64_MAX, 0);
    ftruncate(m, 100 * PAGE);
    show("grown to 100 pages", m, 0, 0);
    pwrite(m, "y", 1, 50 * PAGE);
    show("page 50 written", m, 0, 0);
    fallocate(m, 0, 60 * PAGE, 2 * PAGE);
    show("pages 60-61 allocated", m, 0, 0);
    show("pages 40-60", m, 40 * PAGE, 21 * PAGE);
    fallocate(m, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 2 * PAGE);
    show("pages 0-1 punched out", m, 0, 0);
    ftruncate(m, 3 * PAGE);
    show("cut to 3 pages", m, 0, 0);

    int p[2];
    pipe(p);
    write(p[1], "data", 4);
    show("a pipe", p[0], 0, 0);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    show("a socket", s, 0, 0);
    int d = open("/", O_RDONLY | O_DIRECTORY);
    show("a directory", d, 0, 0);
    int null = open("/dev/null", O_RDONLY);
    show("/dev/null", null, 0, 0);

    // The program's own file: mapped to run it, so cached.
    int self = open("/proc/self/exe", O_RDONLY);
    check("the program's file has pages cached", stat_of(self, 0, 0, 0) == 0 && cs.nr_cache > 0 && cs.nr_cache != UINT64_MAX);

    int opath = open("/proc/self/exe", O_PATH);
    show("an O_PATH descriptor", opath, 0, 0);
    show("a closed descriptor", 999, 0, 0);
    show_err("flags 1", stat_of(m, 0, 0, 1));
    struct cachestat_range r = {0, 0};
    show_err("range unreadable", syscall(NR_cachestat, m, (void *)8, &cs, 0));
    show_err("result unwritable", syscall(NR_cachestat, m, &r, (void *)8, 0));
    show_err("a closed descriptor, flags and bad pointers", syscall(NR_cachestat, 999, (void *)8, (void *)8, 1));
    show_err("range unreadable and flags", syscall(NR_cachestat, m, (void *)8, (void *)8, 1));
    show_err("flags and result unwritable", syscall(NR_cachestat, m, &r, (void *)8, 1));

    puts(failures ? "some failed" : "all ok");
    return failures != 0;
}
