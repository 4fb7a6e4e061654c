// What the host's debugging tools work on in tests/…/host_programs.rs (built
// there with the host's gcc, not as a static test program): a recursion that
// dereferences NULL at its bottom (gdb's breakpoints, steps and backtrace),
// and, with an argument, a leak (LeakSanitizer, which stops the program's
// threads with ptrace to scan them).
#include <stdio.h>
#include <stdlib.h>

void *kept;

int depth(int n) {
    if (n == 0) {
        volatile int *p = 0;
        return *p;
    }
    return depth(n - 1) + 1;
}

int main(int argc, char **argv) {
    if (argc > 1) {
        void *lost = malloc(77);
        lost = 0;
        kept = malloc(5);
        printf("leaking %p\n", lost);
        return 0;
    }
    printf("about to crash\n");
    fflush(stdout);
    return depth(3);
}
