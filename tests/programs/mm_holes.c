// Calls on a range of several mappings go mapping by mapping, as Linux's do, and
// stop at the first they refuse, keeping what they changed before. mprotect stops at
// a hole (ENOMEM), at a mapping that may not become writable (EACCES: a shared
// mapping of a file opened read-only), and at the mapping RLIMIT_DATA refuses
// (ENOMEM); a range that starts in a hole changes nothing. mlock stops at a hole too;
// madvise(MADV_DONTNEED) drops every mapped part and then says ENOMEM. msync says
// EBUSY to MS_INVALIDATE of locked pages, before a hole's ENOMEM.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "proc_status.h"

#define PG 4096ul

static sigjmp_buf jb;

static void on_segv(int sig) {
    (void)sig;
    siglongjmp(jb, 1);
}

static int writable(char *p) {
    if (sigsetjmp(jb, 1)) return 0;
    *(volatile char *)p = 1;
    return 1;
}

// "wwr-" for four pages: writable or not, '-' where nothing is mapped.
static const char *pattern(char *p, int pages, const char *holes) {
    static char out[16];
    for (int i = 0; i < pages; i++) out[i] = holes[i] == '-' ? '-' : writable(p + i * PG) ? 'w' : 'r';
    out[pages] = 0;
    return out;
}

static void show(const char *what, int r, char *p, int pages, const char *holes) {
    printf("%s: %d %s, pages %s\n", what, r, r ? errname(errno) : "", pattern(p, pages, holes));
}

int main(void) {
    signal(SIGSEGV, on_segv);

    char *p = mmap(NULL, 4 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p + 2 * PG, PG);
    show("a hole in the middle", mprotect(p, 4 * PG, PROT_READ | PROT_WRITE), p, 4, "..-.");
    munmap(p, 4 * PG);

    p = mmap(NULL, 3 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p, PG);
    show("a hole at the start", mprotect(p, 3 * PG, PROT_READ | PROT_WRITE), p, 3, "-..");
    munmap(p, 3 * PG);

    // Anonymous, then a read-only file's shared pages, then anonymous again.
    char path[] = "/tmp/mprotect_partialXXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || ftruncate(fd, PG) != 0) return 1;
    close(fd);
    fd = open(path, O_RDONLY);
    p = mmap(NULL, 3 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check("a read-only file's shared pages in the middle", mmap(p + PG, PG, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == p + PG);
    show("a mapping that may not be written", mprotect(p, 3 * PG, PROT_READ | PROT_WRITE), p, 3, "...");
    munmap(p, 3 * PG);
    close(fd);
    unlink(path);

    // Two private read-only mappings, with room in RLIMIT_DATA for the first only.
    p = mmap(NULL, 32 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(p + 16 * PG, 16 * PG, PROT_READ | PROT_EXEC);
    long data = status_kb("VmData") * 1024;
    struct rlimit rl = {data + 20 * PG, RLIM_INFINITY};
    check("RLIMIT_DATA with room for 20 pages more", setrlimit(RLIMIT_DATA, &rl) == 0);
    int r = mprotect(p, 32 * PG, PROT_READ | PROT_WRITE);
    int first = writable(p), second = writable(p + 16 * PG);
    printf("RLIMIT_DATA refuses the second mapping: %d %s, first writable %d, second %d\n", r, r ? errname(errno) : "", first, second);

    rl.rlim_cur = RLIM_INFINITY;
    setrlimit(RLIMIT_DATA, &rl);

    // Four written pages with a hole at the third.
    p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 4; i++) p[i * PG] = 'x';
    munmap(p + 2 * PG, PG);
    long locked = status_kb("VmLck");
    r = mlock(p, 4 * PG);
    printf("mlock over a hole: %d %s, VmLck grew by %ld kB\n", r, r ? errname(errno) : "", status_kb("VmLck") - locked);
    // msync: MS_INVALIDATE of locked pages is EBUSY, met before the hole's ENOMEM.
    const struct {
        const char *what;
        long off, pages;
        int flags;
    } syncs[] = {
        {"MS_INVALIDATE over the locked pages and the hole", 0, 4, MS_INVALIDATE},
        {"MS_SYNC over the hole", 0, 4, MS_SYNC},
        {"MS_ASYNC from the hole", 2, 2, MS_ASYNC},
        {"MS_INVALIDATE of the unlocked page", 3, 1, MS_INVALIDATE},
    };
    for (unsigned i = 0; i < sizeof syncs / sizeof syncs[0]; i++) {
        r = msync(p + syncs[i].off * PG, syncs[i].pages * PG, syncs[i].flags);
        printf("msync %s: %d %s\n", syncs[i].what, r, r ? errname(errno) : "");
    }
    munlock(p, 2 * PG);
    r = madvise(p, 4 * PG, MADV_DONTNEED);
    printf("madvise(MADV_DONTNEED) over a hole: %d %s, pages now %d %d %d\n", r, r ? errname(errno) : "", p[0], p[PG], p[3 * PG]);

    printf(failures ? "FAILED\n" : "all ok\n");
    return failures != 0;
}
