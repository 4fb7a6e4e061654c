// Allocates and frees 2 GiB twenty times, writing one byte per MiB of each allocation.
// Protocol: prints "ready", waits for a line on stdin, runs the loop, prints
// "done 20 x 2 GiB", waits for a line (the harness measures the footprint here), exits 0.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SIZE (2UL << 30)
#define STRIDE (1UL << 20)

static void wait_line(void) {
    char c;
    while (read(0, &c, 1) == 1 && c != '\n') {
    }
}

int main(void) {
    printf("ready\n");
    fflush(stdout);
    wait_line();
    for (int iter = 0; iter < 20; iter++) {
        volatile char *p = malloc(SIZE);
        if (!p) {
            printf("malloc 2 GiB failed at iteration %d\n", iter);
            return 1;
        }
        for (unsigned long off = 0; off < SIZE; off += STRIDE) {
            if (p[off] != 0) {
                printf("fresh memory not zero at iteration %d offset %lu\n", iter, off);
                return 1;
            }
            p[off] = (char)(iter + 1);
        }
        for (unsigned long off = 0; off < SIZE; off += STRIDE)
            if (p[off] != (char)(iter + 1)) {
                printf("lost a write at iteration %d offset %lu\n", iter, off);
                return 1;
            }
        free((void *)p);
    }
    printf("done 20 x 2 GiB\n");
    fflush(stdout);
    wait_line();
    return 0;
}
