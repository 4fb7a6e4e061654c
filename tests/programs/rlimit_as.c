// RLIMIT_AS (`ulimit -v`, which test scripts set to catch runaway memory): mmap,
// brk and mremap may not grow the address space past it (ENOMEM; brk keeps the old
// break), a MAP_FIXED mapping over mapped pages counts only what it adds, and
// unmapping makes room again.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

#define MB (1UL << 20)

// The bytes mapped now, from /proc/self/maps.
static unsigned long mapped(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    unsigned long a, b, total = 0;
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "%lx-%lx", &a, &b) == 2) total += b - a;
    if (f) fclose(f);
    return total;
}

int main(void) {
    // Room for 64 MiB more than is mapped now (/proc/self/maps counts the vsyscall page, which RLIMIT_AS does not).
    struct rlimit rl = {mapped() + 64 * MB, RLIM_INFINITY};
    check("setrlimit(RLIMIT_AS)", setrlimit(RLIMIT_AS, &rl) == 0);

    void *big = mmap(NULL, 128 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check("mmap of 128 MiB: ENOMEM", big == MAP_FAILED && errno == ENOMEM);
    check("even PROT_NONE: ENOMEM", mmap(NULL, 128 * MB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED && errno == ENOMEM);
    char *a = mmap(NULL, 32 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check("mmap of 32 MiB", a != MAP_FAILED);
    check("another 40 MiB: ENOMEM", mmap(NULL, 40 * MB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED && errno == ENOMEM);
    check("MAP_FIXED over the 32 MiB counts only what it adds",
          mmap(a, 32 * MB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == a);
    check("mremap growing it to 128 MiB: ENOMEM", mremap(a, 32 * MB, 128 * MB, MREMAP_MAYMOVE) == MAP_FAILED && errno == ENOMEM);
    char *b = mremap(a, 32 * MB, 48 * MB, MREMAP_MAYMOVE);
    check("mremap growing it to 48 MiB", b != MAP_FAILED);

    void *brk0 = (void *)syscall(SYS_brk, 0);
    void *brk1 = (void *)syscall(SYS_brk, (char *)brk0 + 64 * MB);
    check("brk past the limit keeps the old break", brk1 == brk0);
    check("sbrk: ENOMEM", sbrk(64 * MB) == (void *)-1 && errno == ENOMEM);
    check("malloc of 100 MiB fails", malloc(100 * MB) == NULL);

    check("munmap", munmap(b, 48 * MB) == 0);
    char *c = mmap(NULL, 40 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check("after munmap 40 MiB fits", c != MAP_FAILED);
    check("the brk grows by 1 MiB", syscall(SYS_brk, (char *)brk0 + MB) == (long)((char *)brk0 + MB));

    printf(failures ? "%d failures\n" : "all ok\n", failures);
    return failures != 0;
}
