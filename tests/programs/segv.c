// Memory-protection faults kill the program with SIGSEGV (status 139 as a shell reports it).
// Modes: mprotect (write after mprotect(PROT_READ)), null (write to address 0),
// prot_none (read from a PROT_NONE page), exec (call into a non-executable page),
// munmapped (read after munmap).
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: segv MODE\n");
        return 2;
    }
    const char *m = argv[1];
    volatile char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 3;
    p[0] = 1;
    printf("before fault (%s)\n", m);
    fflush(stdout);
    if (!strcmp(m, "mprotect")) {
        if (mprotect((void *)p, 4096, PROT_READ) != 0) return 4;
        printf("read back %d after mprotect\n", p[0]);
        fflush(stdout);
        p[0] = 2;
    } else if (!strcmp(m, "null")) {
        *(volatile int *)0 = 1;
    } else if (!strcmp(m, "prot_none")) {
        if (mprotect((void *)p, 4096, PROT_NONE) != 0) return 4;
        printf("read %d\n", p[0]);
    } else if (!strcmp(m, "exec")) {
        p[0] = (char)0xc3; /* ret */
        ((void (*)(void))p)();
    } else if (!strcmp(m, "munmapped")) {
        munmap((void *)p, 4096);
        printf("read %d\n", p[0]);
    } else {
        fprintf(stderr, "unknown mode %s\n", m);
        return 2;
    }
    printf("after fault: not reached\n");
    return 0;
}
