// RLIMIT_DATA (ulimit -d) bounds a process's data: private writable mappings that
// are no stack, the heap among them (Linux's may_expand_vm and is_data_mapping).
//   - a private writable mmap past the limit is ENOMEM; read-only, shared and
//     MAP_GROWSDOWN ones are not data and are not limited
//   - mprotect making a large read-only private mapping writable is ENOMEM
//   - brk cannot grow the heap past it (the break stays), a small step still can
//   - mremap growing a data mapping past it is ENOMEM
//   - a limit of 0 lets a process map data up to its hard limit (Linux's
//     workaround for Valgrind), but no brk: the heap and the data segment
//     (end_data - start_data) count against the limit at any new break, a
//     lower one too (check_data_rlimit)
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define MiB (1024L * 1024L)

static const char *res(void *p) {
    static char buf[64];
    if (p != MAP_FAILED) snprintf(buf, sizeof buf, "ok");
    else snprintf(buf, sizeof buf, "%s", errname(errno));
    return buf;
}

static void *map(long len, int prot, int flags) {
    return mmap(NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0);
}

int main(void) {
    struct rlimit rl = {32 * MiB, RLIM_INFINITY};
    check("setrlimit(RLIMIT_DATA, 32 MiB)", setrlimit(RLIMIT_DATA, &rl) == 0);
    printf("private writable 64 MiB: %s\n", res(map(64 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE)));
    void *ro = map(64 * MiB, PROT_READ, MAP_PRIVATE);
    printf("private read-only 64 MiB: %s\n", res(ro));
    printf("mprotect of it to read-write: %s\n", mprotect(ro, 64 * MiB, PROT_READ | PROT_WRITE) == 0 ? "ok" : errname(errno));
    printf("mprotect of 1 MiB of it to read-write: %s\n", mprotect(ro, MiB, PROT_READ | PROT_WRITE) == 0 ? "ok" : errname(errno));
    printf("shared writable 64 MiB: %s\n", res(map(64 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED)));
    printf("MAP_GROWSDOWN writable 64 MiB: %s\n", res(map(64 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_GROWSDOWN)));
    void *small = map(8 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    printf("private writable 8 MiB: %s\n", res(small));
    void *moved = mremap(small, 8 * MiB, 40 * MiB, MREMAP_MAYMOVE);
    printf("mremap of it to 40 MiB: %s\n", res(moved));
    moved = mremap(small, 8 * MiB, 12 * MiB, MREMAP_MAYMOVE);
    printf("mremap of it to 12 MiB: %s\n", res(moved));

    uintptr_t b0 = syscall(SYS_brk, 0);
    uintptr_t b1 = syscall(SYS_brk, b0 + 64 * MiB);
    printf("brk up 64 MiB: %s\n", b1 == b0 ? "refused, the break stays" : "moved");
    uintptr_t b2 = syscall(SYS_brk, b0 + MiB);
    printf("brk up 1 MiB: %s\n", b2 == b0 + MiB ? "moved" : "refused");

    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        struct rlimit zero = {0, 128 * MiB};
        setrlimit(RLIMIT_DATA, &zero);
        void *a = map(64 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE);
        void *b = map(256 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE);
        printf("limit 0, hard 128 MiB: 64 MiB %s", res(a));
        printf(", 256 MiB %s\n", res(b));
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);

    fflush(stdout);
    c = fork();
    if (c == 0) {
        struct rlimit zero = {0, RLIM_INFINITY}, big = {32 * MiB, RLIM_INFINITY}, small = {MiB, RLIM_INFINITY};
        uintptr_t b = syscall(SYS_brk, 0);
        setrlimit(RLIMIT_DATA, &zero);
        printf("limit 0: brk up a page: %s\n", syscall(SYS_brk, b + 4096) == b ? "refused" : "moved");
        setrlimit(RLIMIT_DATA, &big);
        printf("32 MiB: brk up 8 MiB: %s\n", syscall(SYS_brk, b + 8 * MiB) == b + 8 * MiB ? "moved" : "refused");
        setrlimit(RLIMIT_DATA, &small);
        printf("then 1 MiB: brk down to 4 MiB: %s\n", syscall(SYS_brk, b + 4 * MiB) == b + 4 * MiB ? "moved" : "refused");
        printf("brk down to the start: %s\n", syscall(SYS_brk, b) == b ? "moved" : "refused");
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("%d failures\n", failures);
    return failures != 0;
}
