// The program break: grow, shrink, regrow (fresh pages read zero), and raw brk edge cases.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

static uintptr_t raw_brk(uintptr_t addr) { return (uintptr_t)syscall(SYS_brk, addr); }

int main(void) {
    /* Let stdio allocate its buffer first: malloc may move the break behind our back. */
    printf("brk test\n");
    fflush(stdout);

    const uintptr_t page = 4096;
    uintptr_t b0 = (uintptr_t)sbrk(0);
    check("raw brk(0) == sbrk(0)", raw_brk(0) == b0);

    char *p = sbrk(1 << 20);
    check("sbrk(+1 MiB) returns the old break", (uintptr_t)p == b0);
    memset(p, 0xab, 1 << 20);
    int ok = 1;
    for (size_t i = 0; i < (1 << 20); i += 997)
        if ((unsigned char)p[i] != 0xab) ok = 0;
    check("1 MiB of new heap is writable", ok);
    check("break moved up by 1 MiB", (uintptr_t)sbrk(0) == b0 + (1 << 20));

    char *q = sbrk(-(512 << 10));
    check("sbrk(-512 KiB) returns the old break", (uintptr_t)q == b0 + (1 << 20));
    check("break moved down by 512 KiB", (uintptr_t)sbrk(0) == b0 + (512 << 10));

    char *r = sbrk(512 << 10);
    check("regrow returns the lowered break", (uintptr_t)r == b0 + (512 << 10));
    /* Whole pages released by the shrink come back zeroed. */
    uintptr_t lo = (b0 + (512 << 10) + page - 1) & ~(page - 1);
    ok = 1;
    for (uintptr_t a = lo; a < b0 + (1 << 20); a++)
        if (*(volatile unsigned char *)a != 0) { ok = 0; break; }
    check("pages released by a shrink read zero after regrowing", ok);

    uintptr_t cur = (uintptr_t)sbrk(0);
    check("raw brk to the current break is a no-op", raw_brk(cur) == cur);
    check("raw brk below the start of the heap fails (returns current)",
          raw_brk(b0 - (64u << 20)) == cur || b0 < (64u << 20));
    check("raw brk to a huge address fails (returns current)", raw_brk((uintptr_t)1 << 47) == cur);
    check("raw brk(+4 pages) succeeds", raw_brk(cur + 4 * page) == cur + 4 * page);
    *(volatile char *)(cur + 4 * page - 1) = 1;
    check("raw brk back down succeeds", raw_brk(cur) == cur);
    check("sbrk(0) agrees with raw brk", (uintptr_t)sbrk(0) == cur);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
