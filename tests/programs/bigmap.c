// A 1 GiB anonymous mapping touched at 10 pages, then released, step by step so that the
// harness can measure the host footprint between steps. Protocol (stdout / stdin):
//   prints "mapped"            then waits for a line on stdin
//   touches 10 pages spread over the GiB
//   prints "touched 10 pages"  then waits for a line
//   releases them: mode "munmap" unmaps the GiB, mode "dontneed" uses madvise(MADV_DONTNEED)
//   prints "released"          then waits for a line
//   mode "dontneed": checks the 10 pages read zero and prints "zero after dontneed: yes"
//   prints "done" and exits 0.
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GIB (1UL << 30)
#define PAGE 4096UL

static void wait_line(void) {
    char c;
    while (read(0, &c, 1) == 1 && c != '\n') {
    }
}

static void say(const char *s) {
    printf("%s\n", s);
    fflush(stdout);
}

int main(int argc, char **argv) {
    int dontneed = argc == 2 && !strcmp(argv[1], "dontneed");
    if (argc != 2 || (!dontneed && strcmp(argv[1], "munmap"))) {
        fprintf(stderr, "usage: bigmap munmap|dontneed\n");
        return 2;
    }
    volatile char *p = mmap(NULL, GIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap 1 GiB");
        return 1;
    }
    say("mapped");
    wait_line();

    const unsigned long step = (GIB / 10) & ~(PAGE - 1);
    for (int i = 0; i < 10; i++) p[i * step + 100] = (char)(i + 1);
    for (int i = 0; i < 10; i++)
        if (p[i * step + 100] != (char)(i + 1)) {
            say("touched pages lost their contents");
            return 1;
        }
    say("touched 10 pages");
    wait_line();

    if (dontneed) {
        if (madvise((void *)p, GIB, MADV_DONTNEED) != 0) {
            perror("madvise");
            return 1;
        }
    } else if (munmap((void *)p, GIB) != 0) {
        perror("munmap");
        return 1;
    }
    say("released");
    wait_line();

    if (dontneed) {
        int zero = 1;
        for (int i = 0; i < 10; i++)
            if (p[i * step + 100] != 0) zero = 0;
        printf("zero after dontneed: %s\n", zero ? "yes" : "no");
        if (!zero) return 1;
    }
    say("done");
    return 0;
}
