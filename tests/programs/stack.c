// Stack growth: deep recursion over ~4.5 MiB of stack, a 1 MiB frame touched at its far end
// first, and (mode "overflow") unbounded recursion that must die with SIGSEGV.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uintptr_t deepest;

__attribute__((noinline)) static unsigned long recurse(int depth) {
    volatile char buf[1024];
    buf[0] = (char)depth;
    buf[1023] = (char)(depth >> 3);
    if (depth == 0) {
        deepest = (uintptr_t)buf;
        return 0;
    }
    unsigned long r = recurse(depth - 1);
    return r + (unsigned char)buf[0] + (unsigned char)buf[1023]; /* no tail call */
}

__attribute__((noinline)) static int big_frame(void) {
    volatile char big[1 << 20];
    big[0] = 1; /* the lowest address first: 1 MiB below the current stack pointer */
    big[sizeof big - 1] = 2;
    for (size_t i = 0; i < sizeof big; i += 4096) big[i] = (char)i;
    int ok = 1;
    for (size_t i = 0; i < sizeof big; i += 4096)
        if (big[i] != (char)i) ok = 0;
    return ok;
}

__attribute__((noinline)) static unsigned long forever(unsigned long n) {
    volatile char buf[4096];
    buf[0] = (char)n;
    if (n == ~0UL) return buf[0]; /* never: keeps -Winfinite-recursion quiet */
    return forever(n + 1) + buf[0];
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "overflow")) {
        printf("recursing forever\n");
        fflush(stdout);
        return (int)forever(0);
    }
    volatile char top;
    unsigned long sum = recurse(4500);
    unsigned long expect = 0;
    for (int d = 1; d <= 4500; d++) expect += (unsigned char)(char)d + (unsigned char)(char)(d >> 3);
    printf("recursion result matches: %s\n", sum == expect ? "yes" : "no");
    printf("stack used >= 4 MiB: %s\n", (uintptr_t)&top - deepest >= (4u << 20) ? "yes" : "no");
    printf("1 MiB frame touched from its far end: %s\n", big_frame() ? "yes" : "no");
    return sum == expect ? 0 : 1;
}
