/* madvise: what a forked child gets of a mapping (MADV_DONTFORK leaves it a hole,
 * MADV_WIPEONFORK gives it zeros, as crypto libraries rely on to reseed after fork;
 * DOFORK and KEEPONFORK undo them), the checks (EINVAL, ENOMEM for unmapped ranges),
 * and MADV_DONTNEED's zero pages. Compared with the same run natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

static const char *res(int r) {
    return r == 0 ? "0" : strerrorname_np(errno);
}

/* In a child: the first byte of each of `n` pages, or '-' where nothing is mapped. */
static void child_sees(const char *what, char *p, int n) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char seen[16];
        for (int i = 0; i < n; i++) {
            unsigned char v;
            /* mincore fails with ENOMEM on an unmapped page: no fault needed to tell. */
            if (mincore(p + i * PAGE, PAGE, &v) != 0) seen[i] = '-';
            else seen[i] = p[i * PAGE] ? p[i * PAGE] : '0';
        }
        seen[n] = 0;
        printf("%s: the child sees %s\n", what, seen);
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char *p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 4; i++) p[i * PAGE] = 'A' + i;
    child_sees("nothing advised", p, 4);

    printf("WIPEONFORK page 1: %s\n", res(madvise(p + PAGE, PAGE, MADV_WIPEONFORK)));
    child_sees("page 1 wiped", p, 4);
    printf("the parent keeps its page 1: %c\n", p[PAGE]);
    printf("KEEPONFORK page 1: %s\n", res(madvise(p + PAGE, PAGE, MADV_KEEPONFORK)));
    child_sees("kept again", p, 4);

    printf("DONTFORK pages 2-3: %s\n", res(madvise(p + 2 * PAGE, 2 * PAGE, MADV_DONTFORK)));
    child_sees("pages 2-3 not copied", p, 4);
    printf("DOFORK page 3: %s\n", res(madvise(p + 3 * PAGE, PAGE, MADV_DOFORK)));
    child_sees("page 3 copied again", p, 4);

    /* Wiping is for private anonymous memory only. */
    char *shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    printf("WIPEONFORK on a shared mapping: %s\n", res(madvise(shared, PAGE, MADV_WIPEONFORK)));
    printf("DONTFORK on a shared mapping: %s\n", res(madvise(shared, PAGE, MADV_DONTFORK)));
    shared[0] = 'S';
    child_sees("shared, DONTFORK", shared, 1);

    /* Unmapped ranges, bad arguments. */
    char *hole = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(hole + PAGE, PAGE);
    printf("DONTFORK over a hole: %s\n", res(madvise(hole, 3 * PAGE, MADV_DONTFORK)));
    printf("NORMAL over a hole: %s\n", res(madvise(hole, 3 * PAGE, MADV_NORMAL)));
    printf("WILLNEED on the mapped page: %s\n", res(madvise(hole, PAGE, MADV_WILLNEED)));
    printf("misaligned: %s\n", res(madvise(p + 1, PAGE, MADV_NORMAL)));
    printf("unknown advice: %s\n", res(madvise(p, PAGE, 77)));
    printf("length 0: %s\n", res(madvise(p, 0, MADV_DONTFORK)));

    /* DONTNEED: private anonymous pages read back as zeros. */
    const char *r = res(madvise(p, PAGE, MADV_DONTNEED));
    printf("DONTNEED page 0: %s, reads %d\n", r, p[0]);
    printf("all ok\n");
    return 0;
}
