// Backing changes leave mappings whole, as on Linux: copy-on-write after fork (in
// parent and child), MADV_DONTNEED of part of a mapping and a page fault do not split
// it, so /proc/self/maps keeps one line per mapping (glibc's pthread_getattr_np finds
// the main thread's stack by its line; every line counts against vm.max_map_count).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define REGION (2 << 20)

// The number of /proc/self/maps lines, and whether one line covers all of [lo, hi).
static int maps_lines(unsigned long lo, unsigned long hi, int *covered) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) { perror("maps"); exit(1); }
    char line[512];
    int n = 0;
    *covered = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s <= lo && hi <= e) *covered = 1;
        n++;
    }
    fclose(f);
    return n;
}

static void scribble(char *p, int v) {
    for (long off = 0; off < REGION; off += 3 * 4096 + 512) p[off] = (char)v;
}

int main(void) {
    char *p = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    unsigned long lo = (unsigned long)p, hi = lo + REGION;
    memset(p, 1, REGION);
    int covered;
    int before = maps_lines(lo, hi, &covered);
    check("one line covers the region", covered);

    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
        scribble(p, 3);
        int c, after = maps_lines(lo, hi, &c);
        _exit(after == before && c ? 0 : 1);
    }
    scribble(p, 2);
    int st;
    waitpid(pid, &st, 0);
    check("the child's copy-on-write split nothing", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int after = maps_lines(lo, hi, &covered);
    check("the parent's copy-on-write split nothing", after == before && covered);
    check("the parent sees its own writes", p[0] == 2 && p[3 * 4096 + 512] == 2 && p[1] == 1);

    if (madvise(p + REGION / 2, 64 << 10, MADV_DONTNEED)) { perror("madvise"); return 1; }
    after = maps_lines(lo, hi, &covered);
    check("MADV_DONTNEED of a part split nothing", after == before && covered);
    check("the part reads zeros again", p[REGION / 2] == 0 && p[REGION / 2 + (64 << 10)] != 0);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
