// mseal: sealed mappings may not be unmapped, mapped over, moved or resized,
// nor have their protection changed; sealed read-only private anonymous memory
// may not be discarded (writable memory may). The seal is for good, kept by
// fork; unsealed neighbours are unaffected. And the errors.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096L
#ifndef SYS_mseal
#define SYS_mseal 462
#endif

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r < 0 ? -1 : r, r < 0 ? strerrorname_np(errno) : "");
}

static long seal(void *at, long len, long flags) {
    return syscall(SYS_mseal, at, len, flags);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    char *m = mmap(NULL, 6 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    m[PAGE] = 'x';
    show("flags", seal(m, PAGE, 1));
    show("unaligned", seal(m + 1, PAGE, 0));
    show("nothing", seal(m, 0, 0));
    show("seal pages 1-2", seal(m + PAGE, 2 * PAGE, 0));
    show("seal them again", seal(m + PAGE, 2 * PAGE, 0));
    show("munmap page 1", munmap(m + PAGE, PAGE));
    show("munmap pages 0-1", munmap(m, 2 * PAGE));
    show("munmap page 0", munmap(m, PAGE));
    show("mprotect page 2", mprotect(m + 2 * PAGE, PAGE, PROT_READ));
    show("mprotect page 3", mprotect(m + 3 * PAGE, PAGE, PROT_READ));
    show("map over page 2", mmap(m + 2 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED ? -1 : 0);
    show("map over page 4", mmap(m + 4 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED ? -1 : 0);
    show("mremap page 1", mremap(m + PAGE, PAGE, 2 * PAGE, MREMAP_MAYMOVE) == MAP_FAILED ? -1 : 0);
    show("MADV_DONTNEED on writable sealed memory", madvise(m + PAGE, PAGE, MADV_DONTNEED));
    printf("  page 1 reads %d\n", m[PAGE]);
    show("writes still go", (m[2 * PAGE] = 'y') == 'y' ? 0 : -1);

    char *ro = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    show("seal a read-only page", seal(ro, PAGE, 0));
    show("MADV_DONTNEED on it", madvise(ro, PAGE, MADV_DONTNEED));
    show("MADV_FREE on it", madvise(ro, PAGE, MADV_FREE));
    show("MADV_DONTFORK on it", madvise(ro, PAGE, MADV_DONTFORK));
    show("MADV_WILLNEED on it", madvise(ro, PAGE, MADV_WILLNEED));
    show("MADV_DONTNEED on the page after", madvise(ro + PAGE, PAGE, MADV_DONTNEED));

    char *hole = mmap(NULL, 3 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(hole + PAGE, PAGE);
    show("seal over a hole", seal(hole, 3 * PAGE, 0));
    show("the first page is still unsealed", munmap(hole, PAGE));

    pid_t p = fork();
    if (p == 0) {
        show("the child unmaps a sealed page", munmap(m + PAGE, PAGE));
        _exit(0);
    }
    waitpid(p, NULL, 0);
    return 0;
}
