// Sets the realtime clock a day ahead (never run natively: it would move the host's).
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
int main(void) {
    struct timespec r0, r1;
    clock_gettime(CLOCK_REALTIME, &r0);
    struct timespec set = {r0.tv_sec + 86400, 0};
    int rc = clock_settime(CLOCK_REALTIME, &set);
    clock_gettime(CLOCK_REALTIME, &r1);
    printf("clock_settime = %d, realtime moved a day: %s\n", rc, r1.tv_sec - r0.tv_sec >= 86399 ? "yes" : "no");
    struct timeval tv;
    gettimeofday(&tv, 0);
    printf("gettimeofday agrees: %s\n", tv.tv_sec - r1.tv_sec <= 1 ? "yes" : "no");
    printf("%ld\n", (long)r1.tv_sec);
    return 0;
}
