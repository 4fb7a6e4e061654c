// A million clock_gettime calls (through the vDSO), then a monotonicity check.
#include <stdio.h>
#include <time.h>
int main(void) {
    struct timespec prev = {0, 0}, t;
    int backwards = 0;
    for (int i = 0; i < 1000000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec < prev.tv_sec || (t.tv_sec == prev.tv_sec && t.tv_nsec < prev.tv_nsec)) backwards++;
        prev = t;
    }
    printf("monotonic went backwards %d times\n", backwards);
    return 0;
}
