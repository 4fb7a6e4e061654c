// Anonymous memory: mmap, munmap, mprotect, mremap, madvise, msync, mincore,
// private and shared, with their error cases. One line per check.
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

#include "check.h"

static void *map(size_t len, int prot, int flags) {
    return mmap(NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0);
}

static void *map_rw(size_t len) { return map(len, PROT_READ | PROT_WRITE, MAP_PRIVATE); }

static int is_mapped(void *p) {
    unsigned char v;
    return mincore(p, PAGE, &v) == 0;
}

static int all_bytes(const void *p, size_t n, unsigned char b) {
    const volatile unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != b) return 0;
    return 1;
}

static int fails_with(long r, int err) { return r == -1 && errno == err; }

int main(void) {
    /* Private anonymous memory is zero-filled and writable. */
    char *p = map_rw(16 * PAGE);
    check("mmap private anon", p != MAP_FAILED);
    check("page aligned", ((uintptr_t)p & (PAGE - 1)) == 0);
    check("fresh memory reads zero", all_bytes(p, 16 * PAGE, 0));
    memset(p, 0x5a, 16 * PAGE);
    check("memory keeps what is written", all_bytes(p, 16 * PAGE, 0x5a));

    /* munmap a hole in the middle: both sides survive, the hole is gone. */
    check("munmap middle pages", munmap(p + 4 * PAGE, 4 * PAGE) == 0);
    check("hole is unmapped (mincore ENOMEM)", !is_mapped(p + 5 * PAGE) && errno == ENOMEM);
    check("pages below the hole intact", all_bytes(p, 4 * PAGE, 0x5a));
    check("pages above the hole intact", all_bytes(p + 8 * PAGE, 8 * PAGE, 0x5a));
    check("munmap whole range including the hole", munmap(p, 16 * PAGE) == 0);
    check("munmap of an unmapped range succeeds", munmap(p, 16 * PAGE) == 0);
    check("range is unmapped", !is_mapped(p) && !is_mapped(p + 15 * PAGE));

    /* mmap errors. */
    check("mmap len 0 -> EINVAL", map(0, PROT_READ, MAP_PRIVATE) == MAP_FAILED && errno == EINVAL);
    check("mmap without PRIVATE/SHARED -> EINVAL",
          mmap(NULL, PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0) == MAP_FAILED && errno == EINVAL);
    check("mmap MAP_FIXED unaligned -> EINVAL",
          mmap((void *)0x10000001, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED &&
              errno == EINVAL);
    check("munmap unaligned -> EINVAL", fails_with(munmap((void *)0x10000001, PAGE), EINVAL));
    check("munmap len 0 -> EINVAL", fails_with(munmap((void *)0x10000000, 0), EINVAL));
    check("mmap huge length -> ENOMEM", map((size_t)1 << 62, PROT_READ, MAP_PRIVATE) == MAP_FAILED && errno == ENOMEM);

    /* MAP_FIXED replaces; MAP_FIXED_NOREPLACE refuses. */
    p = map_rw(4 * PAGE);
    memset(p, 1, 4 * PAGE);
    char *f = mmap(p + PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    check("MAP_FIXED over a mapping returns the address", f == p + PAGE);
    check("MAP_FIXED page reads zero, neighbours intact",
          all_bytes(p + PAGE, PAGE, 0) && all_bytes(p, PAGE, 1) && all_bytes(p + 2 * PAGE, 2 * PAGE, 1));
    check("MAP_FIXED_NOREPLACE over a mapping -> EEXIST",
          mmap(p, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED &&
              errno == EEXIST);
    munmap(p, 4 * PAGE);
    f = mmap(p, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    check("MAP_FIXED_NOREPLACE on a free range maps there", f == p);
    munmap(f, PAGE);

    /* mprotect: read-only pages are readable; protection can be restored; splits work. */
    p = map_rw(3 * PAGE);
    memset(p, 7, 3 * PAGE);
    check("mprotect middle page PROT_READ", mprotect(p + PAGE, PAGE, PROT_READ) == 0);
    check("read-only page still readable", all_bytes(p + PAGE, PAGE, 7));
    p[0] = 8;
    p[2 * PAGE] = 8;
    check("neighbours of a read-only page stay writable", p[0] == 8 && p[2 * PAGE] == 8);
    long r = syscall(SYS_getrandom, p + PAGE, 16, 0);
    check("getrandom into a read-only page -> EFAULT", r == -1 && errno == EFAULT);
    r = syscall(SYS_uname, p + PAGE);
    check("uname into a read-only page -> EFAULT", r == -1 && errno == EFAULT);
    check("mprotect back to RW", mprotect(p + PAGE, PAGE, PROT_READ | PROT_WRITE) == 0);
    p[PAGE] = 9;
    check("page writable again", p[PAGE] == 9);
    check("mprotect PROT_NONE", mprotect(p, 3 * PAGE, PROT_NONE) == 0);
    r = syscall(SYS_getrandom, p, 16, 0);
    check("getrandom into PROT_NONE -> EFAULT", r == -1 && errno == EFAULT);
    r = syscall(SYS_write, 1, p, 16);
    check("write from PROT_NONE -> EFAULT", r == -1 && errno == EFAULT);
    check("mprotect PROT_READ again", mprotect(p, 3 * PAGE, PROT_READ) == 0);
    check("contents survive PROT_NONE", p[0] == 8 && p[PAGE] == 9 && p[PAGE + 1] == 7);
    check("mprotect unaligned -> EINVAL", fails_with(mprotect(p + 1, PAGE, PROT_READ), EINVAL));
    check("mprotect bad prot -> EINVAL", fails_with(mprotect(p, PAGE, 0x1000), EINVAL));
    munmap(p, 3 * PAGE);
    check("mprotect of unmapped -> ENOMEM", fails_with(mprotect(p, PAGE, PROT_READ), ENOMEM));

    /* Executable memory: code written to a page runs after mprotect(PROT_EXEC). */
    p = map_rw(PAGE);
    static const unsigned char code[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3}; /* mov eax,42; ret */
    memcpy(p, code, sizeof code);
    check("mprotect RX", mprotect(p, PAGE, PROT_READ | PROT_EXEC) == 0);
    int (*fn)(void) = (int (*)(void))p;
    check("code in an RX page runs", fn() == 42);
    munmap(p, PAGE);

    /* mremap: grow in place, shrink, move, fixed. */
    p = map_rw(4 * PAGE);
    memset(p, 3, 4 * PAGE);
    munmap(p + 2 * PAGE, 2 * PAGE);
    char *m = mremap(p, 2 * PAGE, 4 * PAGE, 0);
    check("mremap grow in place", m == p);
    check("grown: old contents kept, new pages zero", all_bytes(m, 2 * PAGE, 3) && all_bytes(m + 2 * PAGE, 2 * PAGE, 0));
    m = mremap(p, 4 * PAGE, PAGE, 0);
    check("mremap shrink keeps the address", m == p);
    check("shrunk: tail unmapped", !is_mapped(p + PAGE) && is_mapped(p));
    munmap(p, PAGE);

    p = map_rw(3 * PAGE);
    memset(p, 4, 3 * PAGE);
    m = mremap(p, PAGE, 2 * PAGE, 0);
    check("mremap grow blocked without MAYMOVE -> ENOMEM", m == MAP_FAILED && errno == ENOMEM);
    m = mremap(p, PAGE, 8 * PAGE, MREMAP_MAYMOVE);
    check("mremap grow with MAYMOVE moves", m != MAP_FAILED && m != p);
    check("moved: contents kept, new pages zero", m != MAP_FAILED && all_bytes(m, PAGE, 4) && all_bytes(m + PAGE, 7 * PAGE, 0));
    check("moved: old page unmapped, rest of old mapping intact",
          !is_mapped(p) && all_bytes(p + PAGE, 2 * PAGE, 4));
    munmap(m, 8 * PAGE);
    munmap(p + PAGE, 2 * PAGE);

    p = map_rw(2 * PAGE);
    memset(p, 5, 2 * PAGE);
    char *target = map(4 * PAGE, PROT_NONE, MAP_PRIVATE);
    m = mremap(p, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target + PAGE);
    check("mremap MREMAP_FIXED moves to the target", m == target + PAGE);
    check("fixed: contents kept, protection carried", m == target + PAGE && all_bytes(m, 2 * PAGE, 5) && (m[0] = 6, m[0] == 6));
    check("fixed: old range unmapped", !is_mapped(p) && !is_mapped(p + PAGE));
    check("fixed: target neighbours still mapped", is_mapped(target) && is_mapped(target + 3 * PAGE));
    munmap(target, 4 * PAGE);
    check("mremap FIXED without MAYMOVE -> EINVAL",
          mremap(target, PAGE, PAGE, MREMAP_FIXED, target + PAGE) == MAP_FAILED && errno == EINVAL);
    check("mremap of unmapped -> EFAULT", mremap(target, PAGE, 2 * PAGE, MREMAP_MAYMOVE) == MAP_FAILED && errno == EFAULT);
    check("mremap unaligned -> EINVAL", mremap(target + 1, PAGE, 2 * PAGE, MREMAP_MAYMOVE) == MAP_FAILED && errno == EINVAL);

    /* madvise(MADV_DONTNEED): private pages read zero afterwards, shared pages keep data. */
    p = map_rw(8 * PAGE);
    memset(p, 0x77, 8 * PAGE);
    check("madvise DONTNEED private", madvise(p + 2 * PAGE, 4 * PAGE, MADV_DONTNEED) == 0);
    check("private DONTNEED pages read zero", all_bytes(p + 2 * PAGE, 4 * PAGE, 0));
    check("pages outside the range keep data", all_bytes(p, 2 * PAGE, 0x77) && all_bytes(p + 6 * PAGE, 2 * PAGE, 0x77));
    p[3 * PAGE] = 1;
    check("DONTNEED pages are writable again", p[3 * PAGE] == 1);
    check("madvise unaligned -> EINVAL", fails_with(madvise(p + 1, PAGE, MADV_DONTNEED), EINVAL));
    munmap(p, 8 * PAGE);
    check("madvise DONTNEED unmapped -> ENOMEM", fails_with(madvise(p, PAGE, MADV_DONTNEED), ENOMEM));

    char *s = map(4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED);
    check("mmap MAP_SHARED|MAP_ANONYMOUS", s != MAP_FAILED);
    check("shared anon reads zero", all_bytes(s, 4 * PAGE, 0));
    memset(s, 0x33, 4 * PAGE);
    check("shared anon keeps what is written", all_bytes(s, 4 * PAGE, 0x33));
    check("madvise DONTNEED shared", madvise(s, 4 * PAGE, MADV_DONTNEED) == 0);
    check("shared DONTNEED pages keep their data", all_bytes(s, 4 * PAGE, 0x33));
    check("mprotect shared read-only", mprotect(s, 4 * PAGE, PROT_READ) == 0 && all_bytes(s, 4 * PAGE, 0x33));
    check("msync shared MS_SYNC", msync(s, 4 * PAGE, MS_SYNC) == 0);
    munmap(s, 4 * PAGE);

    /* msync. */
    p = map_rw(2 * PAGE);
    p[0] = 1;
    check("msync private MS_SYNC", msync(p, 2 * PAGE, MS_SYNC) == 0);
    check("msync MS_ASYNC", msync(p, PAGE, MS_ASYNC) == 0);
    check("msync MS_ASYNC|MS_SYNC -> EINVAL", fails_with(msync(p, PAGE, MS_ASYNC | MS_SYNC), EINVAL));
    check("msync unaligned -> EINVAL", fails_with(msync(p + 1, PAGE, MS_SYNC), EINVAL));
    munmap(p, 2 * PAGE);
    check("msync unmapped -> ENOMEM", fails_with(msync(p, PAGE, MS_SYNC), ENOMEM));

    /* mincore. */
    p = map_rw(4 * PAGE);
    p[0] = 1;
    unsigned char vec[4] = {0xff, 0xff, 0xff, 0xff};
    check("mincore on a mapping", mincore(p, 4 * PAGE, vec) == 0);
    check("touched page is resident", vec[0] & 1);
    check("mincore vec holds only the resident bit", !(vec[0] & 0xfe) && !(vec[1] & 0xfe) && !(vec[2] & 0xfe) && !(vec[3] & 0xfe));
    check("mincore unaligned -> EINVAL", fails_with(mincore(p + 1, PAGE, vec), EINVAL));
    check("mincore bad vec -> EFAULT", fails_with(mincore(p, PAGE, (unsigned char *)8), EFAULT));
    munmap(p, 4 * PAGE);
    check("mincore unmapped -> ENOMEM", fails_with(mincore(p, PAGE, vec), ENOMEM));

    /* A large sparse mapping: touching far-apart pages works. */
    size_t big = 256UL << 20;
    p = map(big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE);
    check("mmap 256 MiB", p != MAP_FAILED);
    if (p != MAP_FAILED) {
        for (size_t off = 0; off < big; off += 16UL << 20) p[off] = (char)(off >> 20);
        p[big - 1] = 1;
        int ok = p[big - 1] == 1;
        for (size_t off = 0; off < big; off += 16UL << 20)
            if (p[off] != (char)(off >> 20) || p[off + 1] != 0) ok = 0;
        check("sparse touches across 256 MiB", ok);
        check("munmap 256 MiB", munmap(p, big) == 0);
    }

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
