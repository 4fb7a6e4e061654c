// The ELF auxiliary vector and the initial stack layout, checked from inside.
// Prints properties, not raw values, so the output is the same natively and in the sandbox.
// With the argument "--print-base" it prints only the load address of the ELF header
// (used to check that static-pie is loaded at a random base).
#define _GNU_SOURCE
#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

extern const ElfW(Ehdr) __ehdr_start;
extern char _start[];

#include "check.h"

static ElfW(auxv_t) *auxv;

/* The value the kernel put on the stack (not getauxval: glibc rewrites AT_HWCAP on x86). */
static int aux(unsigned long type, unsigned long *val) {
    for (ElfW(auxv_t) *a = auxv; a->a_type != AT_NULL; a++)
        if (a->a_type == type) {
            *val = a->a_un.a_val;
            return 1;
        }
    *val = 0;
    return 0;
}

int main(int argc, char **argv, char **envp) {
    if (argc == 2 && !strcmp(argv[1], "--print-base")) {
        printf("%p\n", (const void *)&__ehdr_start);
        return 0;
    }

    /* Walk the initial stack: envp ... NULL, then auxv pairs up to AT_NULL. */
    char **e = envp;
    while (*e) e++;
    ElfW(auxv_t) *a;
    auxv = (ElfW(auxv_t) *)(e + 1);
    int count = 0, dups = 0;
    for (a = auxv; a->a_type != AT_NULL && count < 256; a++, count++)
        for (ElfW(auxv_t) *b = auxv; b < a; b++)
            if (b->a_type == a->a_type) dups++;
    uintptr_t auxv_end = (uintptr_t)(a + 1);
    check("auxv terminated by AT_NULL", a->a_type == AT_NULL);
    check("auxv follows envp NULL", (uintptr_t)auxv == (uintptr_t)(e + 1));
    check("auxv has no duplicate keys", dups == 0);

    static const struct { unsigned long type; const char *name; } want[] = {
        {AT_PHDR, "AT_PHDR"}, {AT_PHENT, "AT_PHENT"}, {AT_PHNUM, "AT_PHNUM"},
        {AT_PAGESZ, "AT_PAGESZ"}, {AT_BASE, "AT_BASE"}, {AT_FLAGS, "AT_FLAGS"},
        {AT_ENTRY, "AT_ENTRY"}, {AT_UID, "AT_UID"}, {AT_EUID, "AT_EUID"},
        {AT_GID, "AT_GID"}, {AT_EGID, "AT_EGID"}, {AT_SECURE, "AT_SECURE"},
        {AT_RANDOM, "AT_RANDOM"}, {AT_HWCAP, "AT_HWCAP"}, {AT_HWCAP2, "AT_HWCAP2"},
        {AT_EXECFN, "AT_EXECFN"}, {AT_PLATFORM, "AT_PLATFORM"}, {AT_CLKTCK, "AT_CLKTCK"},
        {AT_MINSIGSTKSZ, "AT_MINSIGSTKSZ"},
    };
    unsigned long v;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s present", want[i].name);
        check(what, aux(want[i].type, &v));
    }

    check("AT_PAGESZ == 4096", aux(AT_PAGESZ, &v) && v == 4096);
    check("sysconf(_SC_PAGESIZE) == 4096", sysconf(_SC_PAGESIZE) == 4096);
    errno = 0;
    check("getauxval(AT_PAGESZ) == 4096", getauxval(AT_PAGESZ) == 4096 && errno == 0);
    unsigned long phdr, phnum, phent;
    int ok = aux(AT_PHDR, &phdr) && aux(AT_PHNUM, &phnum) && aux(AT_PHENT, &phent);
    check("AT_PHENT == sizeof(Elf64_Phdr)", ok && phent == sizeof(ElfW(Phdr)));
    check("AT_PHDR == ELF header + e_phoff",
          ok && phdr == (uintptr_t)&__ehdr_start + __ehdr_start.e_phoff);
    check("AT_PHNUM == e_phnum", ok && phnum == __ehdr_start.e_phnum);
    /* The program headers it points at are readable and contain a PT_LOAD that covers them. */
    int covered = 0, loads = 0;
    if (ok) {
        const ElfW(Phdr) *ph = (const ElfW(Phdr) *)phdr;
        uintptr_t bias = 0;
        for (unsigned long i = 0; i < phnum; i++)
            if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0)
                bias = (uintptr_t)&__ehdr_start - ph[i].p_vaddr;
        for (unsigned long i = 0; i < phnum; i++) {
            if (ph[i].p_type != PT_LOAD) continue;
            loads++;
            uintptr_t lo = ph[i].p_vaddr + bias, hi = lo + ph[i].p_memsz;
            if (phdr >= lo && phdr + phnum * sizeof(ElfW(Phdr)) <= hi) covered = 1;
        }
    }
    check("program headers have a PT_LOAD", loads > 0);
    check("AT_PHDR lies inside a PT_LOAD", covered);
    check("AT_ENTRY == _start", aux(AT_ENTRY, &v) && v == (uintptr_t)_start && v != 0);
    check("AT_BASE == 0 (no interpreter)", aux(AT_BASE, &v) && v == 0);
    check("AT_FLAGS == 0", aux(AT_FLAGS, &v) && v == 0);
    check("AT_SECURE == 0", aux(AT_SECURE, &v) && v == 0);
    check("AT_CLKTCK == 100", aux(AT_CLKTCK, &v) && v == 100);
    check("AT_MINSIGSTKSZ nonzero", aux(AT_MINSIGSTKSZ, &v) && v != 0);
    check("AT_UID == getuid()", aux(AT_UID, &v) && v == getuid());
    check("AT_EUID == geteuid()", aux(AT_EUID, &v) && v == geteuid());
    check("AT_GID == getgid()", aux(AT_GID, &v) && v == getgid());
    check("AT_EGID == getegid()", aux(AT_EGID, &v) && v == getegid());

    unsigned int eax, ebx, ecx, edx;
    __cpuid(1, eax, ebx, ecx, edx);
    check("AT_HWCAP == CPUID.1:EDX", aux(AT_HWCAP, &v) && v == edx);
    check("AT_HWCAP2 readable", aux(AT_HWCAP2, &v));

    unsigned long rnd;
    int rnd_ok = aux(AT_RANDOM, &rnd) && rnd != 0;
    int nonzero = 0;
    if (rnd_ok) {
        const volatile unsigned char *r = (const unsigned char *)rnd;
        for (int i = 0; i < 16; i++) nonzero |= r[i];
    }
    check("AT_RANDOM 16 bytes readable, not all zero", rnd_ok && nonzero);
    check("AT_RANDOM lies above auxv (in the stack strings)", rnd_ok && rnd >= auxv_end);

    unsigned long execfn;
    int ef_ok = aux(AT_EXECFN, &execfn) && execfn != 0;
    int ef_match = 0;
    if (ef_ok) {
        const char *fn = (const char *)execfn;
        const char *base = strrchr(argv[0], '/');
        base = base ? base + 1 : argv[0];
        size_t fl = strlen(fn), bl = strlen(base);
        ef_match = !strcmp(fn, argv[0]) ||
                   (fn[0] == '/' && fl > bl && fn[fl - bl - 1] == '/' && !strcmp(fn + fl - bl, base));
    }
    check("AT_EXECFN names the program", ef_match);
    check("AT_EXECFN lies above auxv", ef_ok && execfn >= auxv_end);

    unsigned long plat;
    check("AT_PLATFORM == \"x86_64\"",
          aux(AT_PLATFORM, &plat) && plat && !strcmp((const char *)plat, "x86_64"));

    /* Linux lays out the argument and environment strings contiguously, above auxv. */
    int contiguous = 1;
    char *prev = NULL;
    for (int i = 0; i < argc; i++) {
        if (prev && argv[i] != prev + strlen(prev) + 1) contiguous = 0;
        prev = argv[i];
    }
    for (char **p = envp; *p; p++) {
        if (prev && *p != prev + strlen(prev) + 1) contiguous = 0;
        prev = *p;
    }
    check("argv and envp strings contiguous", contiguous);
    check("argv strings lie above auxv", (uintptr_t)argv[0] >= auxv_end);
    check("argv array 8-byte aligned", ((uintptr_t)argv & 7) == 0);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
