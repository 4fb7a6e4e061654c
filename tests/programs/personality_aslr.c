// personality(ADDR_NO_RANDOMIZE): every exec under it lays the address space out
// the same (stack, mmap area, heap, vDSO); without it, exec randomises each.
// The flag is kept across fork and exec; READ_IMPLIES_EXEC is dropped by a
// 64-bit exec. Prints only comparisons, never addresses.
#define _GNU_SOURCE
#include "check.h"
#include <stdint.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUNS 4

struct layout {
    uintptr_t stack, mmap, brk, vdso;
    unsigned persona;
};

// The re-exec'd image: reports where things landed, and its personality.
static int report(void) {
    int local;
    void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct layout l = {(uintptr_t)&local, (uintptr_t)m, (uintptr_t)sbrk(0), getauxval(AT_SYSINFO_EHDR), (unsigned)personality(0xffffffff)};
    return write(1, &l, sizeof l) == sizeof l ? 0 : 1;
}

// Forks a child that reports its personality before exec (kept by fork), then
// execs this program, whose report is returned.
static struct layout run(const char *self, unsigned *forked) {
    int p[2];
    struct layout l = {0};
    if (pipe(p)) exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        unsigned persona = personality(0xffffffff);
        if (write(p[1], &persona, sizeof persona) != sizeof persona) _exit(3);
        dup2(p[1], 1);
        close(p[0]);
        execl(self, self, "report", (char *)NULL);
        _exit(4);
    }
    close(p[1]);
    if (read(p[0], forked, sizeof *forked) != sizeof *forked || read(p[0], &l, sizeof l) != sizeof l) exit(5);
    close(p[0]);
    waitpid(pid, NULL, 0);
    return l;
}

// Runs RUNS execs under personality `persona`; returns how many of the fields
// were the same in every run (stack, mmap, brk, vdso as bits 0..3).
static unsigned same_fields(const char *self, unsigned persona, unsigned expect_after) {
    struct layout l[RUNS];
    unsigned forked_ok = 1, exec_ok = 1;
    personality(persona);
    for (int i = 0; i < RUNS; i++) {
        unsigned forked;
        l[i] = run(self, &forked);
        forked_ok &= forked == persona;
        exec_ok &= l[i].persona == expect_after;
    }
    personality(0);
    char what[128];
    snprintf(what, sizeof what, "personality %#x kept by fork", persona);
    check(what, forked_ok);
    snprintf(what, sizeof what, "personality %#x is %#x after exec", persona, expect_after);
    check(what, exec_ok);
    unsigned same = 15;
    for (int i = 1; i < RUNS; i++) {
        if (l[i].stack != l[0].stack) same &= ~1u;
        if (l[i].mmap != l[0].mmap) same &= ~2u;
        if (l[i].brk != l[0].brk) same &= ~4u;
        if (l[i].vdso != l[0].vdso) same &= ~8u;
    }
    return same;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "report") == 0) return report();
    const char *self = "/proc/self/exe";
    static const char *names[] = {"stack", "mmap", "brk", "vdso"};
    unsigned fixed = same_fields(self, ADDR_NO_RANDOMIZE, ADDR_NO_RANDOMIZE);
    unsigned random = same_fields(self, 0, 0);
    unsigned read_exec = same_fields(self, ADDR_NO_RANDOMIZE | READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE);
    for (int i = 0; i < 4; i++) {
        char what[96];
        snprintf(what, sizeof what, "ADDR_NO_RANDOMIZE: %s the same in %d execs", names[i], RUNS);
        check(what, fixed & read_exec & (1u << i));
        snprintf(what, sizeof what, "randomised: %s differs between %d execs", names[i], RUNS);
        check(what, !(random & (1u << i)));
    }
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
