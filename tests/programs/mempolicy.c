// NUMA memory policies on a machine with one node (set_mempolicy, get_mempolicy,
// mbind): what is kept and reported, per thread and per mapping, inherited by a
// child; the mapping splits and merges mbind makes; and the errors. Then memory
// protection keys on a CPU without them (pkey_alloc, pkey_free, pkey_mprotect).
// Prints only what is the same natively and in the sandbox.
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

#define MPOL_DEFAULT 0
#define MPOL_PREFERRED 1
#define MPOL_BIND 2
#define MPOL_INTERLEAVE 3
#define MPOL_LOCAL 4
#define MPOL_F_NUMA_BALANCING (1 << 13)
#define MPOL_F_RELATIVE_NODES (1 << 14)
#define MPOL_F_STATIC_NODES (1 << 15)
#define MPOL_F_NODE 1
#define MPOL_F_ADDR 2
#define MPOL_F_MEMS_ALLOWED 4

static long set(int mode, unsigned long mask, unsigned long maxnode) {
    return syscall(SYS_set_mempolicy, mode, &mask, maxnode) == 0 ? 0 : errno;
}

static void show(const char *what, void *addr, int flags) {
    int mode = -1;
    unsigned long mask[2] = {~0UL, ~0UL};
    long r = syscall(SYS_get_mempolicy, &mode, mask, 128, addr, flags);
    if (r != 0)
        printf("%s: %s\n", what, errname(errno));
    else
        printf("%s: mode %#x nodes %#lx %#lx\n", what, mode, mask[0], mask[1]);
}

static void try_set(const char *what, int mode, unsigned long mask, unsigned long maxnode) {
    printf("set_mempolicy %s: %s\n", what, errname(set(mode, mask, maxnode)));
}

static void try_get(const char *what, int *mode, unsigned long *mask, unsigned long maxnode, void *addr, unsigned long flags) {
    printf("get_mempolicy %s: %s\n", what, syscall(SYS_get_mempolicy, mode, mask, maxnode, addr, flags) == 0 ? "0" : errname(errno));
}

static long mbind_(void *addr, unsigned long len, int mode, unsigned long mask, unsigned long maxnode, unsigned flags) {
    return syscall(SYS_mbind, addr, len, mode, &mask, maxnode, flags) == 0 ? 0 : errno;
}

// How many mappings of /proc/self/maps lie in [start, end).
static int mappings_in(char *start, char *end) {
    FILE *f = fopen("/proc/self/maps", "r");
    unsigned long a, b;
    int n = 0;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a >= (uintptr_t)start && b <= (uintptr_t)end) n++;
    fclose(f);
    return n;
}

static void thread_policy(void) {
    show("initial", NULL, 0);
    try_set("BIND {0}", MPOL_BIND, 1, 2);
    show("after BIND", NULL, 0);
    try_set("INTERLEAVE {0,1}", MPOL_INTERLEAVE, 3, 3);
    show("after INTERLEAVE", NULL, 0);
    show("interleave's next node", NULL, MPOL_F_NODE);
    try_set("BIND|STATIC {0,1}", MPOL_BIND | MPOL_F_STATIC_NODES, 3, 3);
    show("after STATIC", NULL, 0);
    try_set("INTERLEAVE|RELATIVE {1}", MPOL_INTERLEAVE | MPOL_F_RELATIVE_NODES, 2, 3);
    show("after RELATIVE", NULL, 0);
    try_set("PREFERRED {}", MPOL_PREFERRED, 0, 2);
    show("after PREFERRED {}", NULL, 0);
    try_set("PREFERRED {0}", MPOL_PREFERRED, 1, 2);
    show("after PREFERRED {0}", NULL, 0);
    try_set("LOCAL", MPOL_LOCAL, 0, 2);
    show("after LOCAL", NULL, 0);
    try_set("BIND|NUMA_BALANCING {0}", MPOL_BIND | MPOL_F_NUMA_BALANCING, 1, 2);
    show("after NUMA_BALANCING", NULL, 0);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        show("the child's", NULL, 0);
        fflush(stdout);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    try_set("DEFAULT", MPOL_DEFAULT, 0, 2);
    show("after DEFAULT", NULL, 0);
    try_set("DEFAULT, a mask with maxnode 0", MPOL_DEFAULT, 0, 0);
    printf("set_mempolicy DEFAULT, no mask: %s\n", errname(syscall(SYS_set_mempolicy, MPOL_DEFAULT, NULL, 0) ? errno : 0));

    try_set("DEFAULT {0}", MPOL_DEFAULT, 1, 2);
    try_set("BIND {}", MPOL_BIND, 0, 2);
    try_set("BIND {1}", MPOL_BIND, 2, 3);
    try_set("BIND|STATIC {1}", MPOL_BIND | MPOL_F_STATIC_NODES, 2, 3);
    try_set("LOCAL {0}", MPOL_LOCAL, 1, 2);
    try_set("mode 7", 7, 1, 2);
    try_set("mode -1", -1, 1, 2);
    try_set("STATIC|RELATIVE", MPOL_BIND | MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES, 1, 2);
    try_set("INTERLEAVE|NUMA_BALANCING", MPOL_INTERLEAVE | MPOL_F_NUMA_BALANCING, 1, 2);
    try_set("maxnode 1<<20", MPOL_BIND, 1, 1 << 20);
    printf("set_mempolicy bad mask: %s\n", errname(syscall(SYS_set_mempolicy, MPOL_BIND, (void *)8, 2) ? errno : 0));
    printf("set_mempolicy bad mask, mode 7: %s\n", errname(syscall(SYS_set_mempolicy, 7, (void *)8, 2) ? errno : 0));
    unsigned long big[40] = {1};
    big[20] = 1; // node 1280: past MAX_NUMNODES
    printf("set_mempolicy node 1280: %s\n", errname(syscall(SYS_set_mempolicy, MPOL_BIND, big, 2000) ? errno : 0));
    big[20] = 0;
    printf("set_mempolicy 2000 nodes, node 0: %s\n", errname(syscall(SYS_set_mempolicy, MPOL_BIND, big, 2000) ? errno : 0));
    set(MPOL_DEFAULT, 0, 2);

    int mode;
    unsigned long mask[2];
    try_get("flags 8", &mode, mask, 128, NULL, 8);
    try_get("MEMS_ALLOWED|NODE", &mode, mask, 128, NULL, MPOL_F_MEMS_ALLOWED | MPOL_F_NODE);
    try_get("an address without ADDR", &mode, mask, 128, &mode, 0);
    try_get("ADDR of nothing", &mode, mask, 128, (void *)4096, MPOL_F_ADDR);
    try_get("maxnode 0", &mode, mask, 0, NULL, 0);
    try_get("NODE without INTERLEAVE", &mode, mask, 128, NULL, MPOL_F_NODE);
    try_get("bad mode pointer", (int *)8, mask, 128, NULL, 0);
    show("MEMS_ALLOWED", NULL, MPOL_F_MEMS_ALLOWED);
    mask[0] = mask[1] = ~0UL;
    syscall(SYS_get_mempolicy, &mode, mask, 1, NULL, MPOL_F_MEMS_ALLOWED);
    printf("MEMS_ALLOWED with maxnode 1 writes: %#lx\n", mask[0]);
}

static void mapping_policy(void) {
    char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *end = p + 4 * 4096;
    set(MPOL_INTERLEAVE, 1, 2);
    printf("mbind BIND on pages 1-2: %s\n", errname(mbind_(p + 4096, 2 * 4096, MPOL_BIND, 1, 2, 0)));
    printf("mappings: %d\n", mappings_in(p, end));
    show("page 0 (ADDR)", p, MPOL_F_ADDR);
    show("page 1 (ADDR)", p + 4096, MPOL_F_ADDR);
    show("page 1's node", p + 4096, MPOL_F_ADDR | MPOL_F_NODE);
    show("the thread's, still", NULL, 0);
    printf("mbind the same on pages 0-3: %s\n", errname(mbind_(p, 4 * 4096, MPOL_BIND, 1, 2, 0)));
    printf("mappings: %d\n", mappings_in(p, end));
    printf("mbind DEFAULT on all: %s\n", errname(mbind_(p, 4 * 4096, MPOL_DEFAULT, 0, 2, 0)));
    printf("mappings: %d\n", mappings_in(p, end));
    show("page 2 (ADDR)", p + 2 * 4096, MPOL_F_ADDR);
    printf("mbind unaligned: %s\n", errname(mbind_(p + 1, 4096, MPOL_BIND, 1, 2, 0)));
    printf("mbind flags 8: %s\n", errname(mbind_(p, 4096, MPOL_BIND, 1, 2, 8)));
    printf("mbind STRICT|MOVE: %s\n", errname(mbind_(p, 4096, MPOL_BIND, 1, 2, 3)));
    printf("mbind length 0: %s\n", errname(mbind_(p, 0, MPOL_BIND, 1, 2, 0)));
    printf("mbind BIND {}: %s\n", errname(mbind_(p, 4096, MPOL_BIND, 0, 2, 0)));
    printf("mbind mode 9: %s\n", errname(mbind_(p, 4096, 9, 1, 2, 0)));
    munmap(p + 3 * 4096, 4096);
    printf("mbind over a hole: %s\n", errname(mbind_(p, 4 * 4096, MPOL_BIND, 1, 2, 0)));
    printf("mbind wraps: %s\n", errname(mbind_(p, -4096UL * 2, MPOL_BIND, 1, 2, 0)));
    show("page 0 after the failures", p, MPOL_F_ADDR);
    munmap(p, 3 * 4096);
    set(MPOL_DEFAULT, 0, 2);
}

static void protection_keys(void) {
    printf("pkey_alloc: %s\n", syscall(SYS_pkey_alloc, 0, 0) >= 0 ? "a key" : errname(errno));
    printf("pkey_alloc flags 1: %s\n", syscall(SYS_pkey_alloc, 1, 0) >= 0 ? "a key" : errname(errno));
    printf("pkey_alloc rights 4: %s\n", syscall(SYS_pkey_alloc, 0, 4) >= 0 ? "a key" : errname(errno));
    printf("pkey_free 5: %s\n", syscall(SYS_pkey_free, 5) == 0 ? "0" : errname(errno));
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("pkey_mprotect key -1: %s\n", syscall(SYS_pkey_mprotect, p, 4096, PROT_READ, -1) == 0 ? "0" : errname(errno));
    printf("pkey_mprotect key 3: %s\n", syscall(SYS_pkey_mprotect, p, 4096, PROT_READ, 3) == 0 ? "0" : errname(errno));
    printf("pkey_mprotect unaligned, key 3: %s\n", syscall(SYS_pkey_mprotect, p + 1, 4096, PROT_READ, 3) == 0 ? "0" : errname(errno));
    munmap(p, 4096);
}

int main(void) {
    thread_policy();
    mapping_policy();
    protection_keys();
    return 0;
}
