// malloc/calloc/realloc/free over many sizes, from a few bytes (brk heap) to 64 MiB (mmap).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 31 + seed);
}

static int verify(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 31 + seed)) return 0;
    return 1;
}

int main(void) {
    /* Doubling sizes and their odd neighbours, all live at once, then freed. */
    enum { N = 3 * 27 };
    unsigned char *ptrs[N];
    size_t sizes[N];
    int n = 0, ok = 1;
    for (int shift = 0; shift < 27; shift++) {
        size_t s = (size_t)1 << shift;
        size_t cand[3] = {s, s + 1, s > 1 ? s - 1 : 3};
        for (int k = 0; k < 3; k++) {
            sizes[n] = cand[k];
            ptrs[n] = malloc(cand[k]);
            if (!ptrs[n] || ((uintptr_t)ptrs[n] & 15)) ok = 0;
            else fill(ptrs[n], cand[k], (unsigned)n);
            n++;
        }
    }
    check("81 blocks of 1 B .. 64 MiB allocated, 16-byte aligned", ok);
    ok = 1;
    for (int i = 0; i < n; i++)
        if (ptrs[i] && !verify(ptrs[i], sizes[i], (unsigned)i)) ok = 0;
    check("contents intact while all are live", ok);
    for (int i = 0; i < n; i += 2) free(ptrs[i]);
    ok = 1;
    for (int i = 1; i < n; i += 2)
        if (ptrs[i] && !verify(ptrs[i], sizes[i], (unsigned)i)) ok = 0;
    check("contents intact after freeing every other block", ok);
    for (int i = 1; i < n; i += 2) free(ptrs[i]);

    /* Many small allocations. */
    enum { SMALL = 20000 };
    static void *small[SMALL];
    ok = 1;
    for (int i = 0; i < SMALL; i++) {
        small[i] = malloc(16 + i % 200);
        if (!small[i]) ok = 0;
        else memset(small[i], i & 0xff, 16 + i % 200);
    }
    for (int i = 0; i < SMALL && ok; i++)
        if (((unsigned char *)small[i])[15 + i % 200] != (i & 0xff)) ok = 0;
    for (int i = SMALL - 1; i >= 0; i--) free(small[i]);
    check("20000 small blocks", ok);

    /* calloc returns zeroed memory, also when reusing freed memory and for large sizes. */
    ok = 1;
    for (size_t s = 8; s <= (32u << 20); s *= 4) {
        unsigned char *p = malloc(s);
        if (!p) { ok = 0; break; }
        memset(p, 0xee, s);
        free(p);
        unsigned char *q = calloc(1, s);
        if (!q) { ok = 0; break; }
        for (size_t i = 0; i < s; i++)
            if (q[i]) { ok = 0; break; }
        free(q);
    }
    check("calloc zeroes, small to 32 MiB", ok);

    /* realloc grows (through the mmap threshold) and shrinks, keeping the contents. */
    unsigned char *r = malloc(100);
    ok = r != NULL;
    if (ok) fill(r, 100, 7);
    size_t cur = 100;
    for (size_t s = 1000; ok && s <= (48u << 20); s *= 3) {
        unsigned char *nr = realloc(r, s);
        if (!nr || !verify(nr, cur < s ? cur : s, 7)) { ok = 0; break; }
        r = nr;
        fill(r, s, 7);
        cur = s;
    }
    unsigned char *shrunk = ok ? realloc(r, 10) : NULL;
    if (ok && (!shrunk || !verify(shrunk, 10, 7))) ok = 0;
    free(shrunk ? shrunk : r);
    check("realloc grow to 48 MiB and shrink keep contents", ok);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
