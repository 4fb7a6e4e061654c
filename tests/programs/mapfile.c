// Private mappings of a host file share its cached pages copy-on-write: a write
// changes only that mapping; other mappings, forked children's own writes, and the
// file itself keep the original bytes.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/etc/passwd";
    int fd = open(path, O_RDONLY);
    char first[16] = {0};
    pread(fd, first, 8, 0);
    char *a = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    char *b = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("mappings start with the file's bytes: %s\n", !memcmp(a, first, 8) && !memcmp(b, first, 8) ? "yes" : "no");
    a[0] = '#';
    printf("a write changes its own mapping: %s\n", a[0] == '#' ? "yes" : "no");
    printf("the other mapping keeps the file's byte: %s\n", b[0] == first[0] ? "yes" : "no");
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        a[1] = '!';
        _exit(a[0] == '#' && a[1] == '!' ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    printf("the child saw the parent's private write, and its own: %s\n", WEXITSTATUS(st) == 0 ? "yes" : "no");
    printf("the child's write stayed in the child: %s\n", a[1] == first[1] ? "yes" : "no");
    char again[16] = {0};
    pread(fd, again, 8, 0);
    printf("the file is unchanged: %s\n", !memcmp(again, first, 8) ? "yes" : "no");
    char *c2 = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("a new mapping shows the file's bytes: %s\n", c2[0] == first[0] ? "yes" : "no");
    // Dropping written private pages brings the file's bytes back, not zeros; in
    // the middle of a mapping too (after munmap split it).
    madvise(a, 4096, MADV_DONTNEED);
    printf("MADV_DONTNEED brings back the file's bytes: %s\n", a[0] == first[0] && a[1] == first[1] ? "yes" : "no");
    int big = open("/bin/sh", O_RDONLY);
    char want[8];
    pread(big, want, 8, 8192);
    char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, big, 0);
    munmap(m, 4096);
    m[8192] ^= 0x55;
    madvise(m + 8192, 4096, MADV_DONTNEED);
    printf("and at the right offset after a split: %s\n", !memcmp(m + 8192, want, 8) ? "yes" : "no");

    // The Sentry writing into copy-on-write memory (a read(2) into it) copies it
    // first, like an app store: the file, other mappings and a parent keep theirs.
    int p[2];
    pipe(p);
    char *q = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    write(p[1], "ZZ", 2);
    read(p[0], q, 2);
    char *r = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    pread(fd, again, 2, 0);
    printf("read() into a private mapping: it changes, the file and other mappings do not: %s\n", q[0] == 'Z' && r[0] == first[0] && again[0] == first[0] ? "yes" : "no");
    static char cow[1 << 17] = {1};
    char *page = cow + (1 << 16);
    memcpy(page, "parent", 6);
    fflush(stdout);
    c = fork();
    if (c == 0) {
        write(p[1], "child!", 6);
        _exit(read(p[0], page, 6) == 6 && !memcmp(page, "child!", 6) ? 0 : 1);
    }
    waitpid(c, &st, 0);
    printf("a child's read() into copy-on-write memory stays in the child: %s\n", WEXITSTATUS(st) == 0 && !memcmp(page, "parent", 6) ? "yes" : "no");
    return 0;
}
