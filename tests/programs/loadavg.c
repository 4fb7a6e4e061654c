// Load averages in the sandbox: with four threads running for 11 s (three
// spinning in user space, the main one watching the clock), at least two 5 s
// periods end, so the 1-minute average is at least Linux's two folds of 4 from
// 0 (1260/2048, 0.61), whenever in the period the program started. sysinfo's
// loads[0] and /proc/loadavg's first field must show it alike, the latter in
// Linux's format. Sandbox only: the host's load is its own.
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#define SPINNERS 3

static atomic_int stop;

static void *spin(void *arg) {
    (void)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        ;
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int slurp(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    return 0;
}

int main(void) {
    pthread_t threads[SPINNERS];
    for (int i = 0; i < SPINNERS; i++)
        if (pthread_create(&threads[i], NULL, spin, NULL) != 0) {
            printf("pthread_create failed\n");
            return 1;
        }
    double end = now() + 11;
    while (now() < end)
        ;

    // Read while the spinners still run (so that total counts them); a period
    // ending between the reads would change the average, so read again then.
    struct sysinfo before, after;
    char text[256];
    int tries = 0, read_ok;
    do {
        sysinfo(&before);
        read_ok = slurp("/proc/loadavg", text, sizeof text) == 0;
        sysinfo(&after);
    } while (before.loads[0] != after.loads[0] && ++tries < 3);
    atomic_store(&stop, 1);
    for (int i = 0; i < SPINNERS; i++)
        pthread_join(threads[i], NULL);

    double si = before.loads[0] / 65536.0;
    printf("sysinfo loads: %.2f %.2f %.2f\n", si, before.loads[1] / 65536.0, before.loads[2] / 65536.0);
    printf("/proc/loadavg: %s", read_ok ? text : "unreadable\n");
    check("sysinfo loads[0] above 0.5", si > 0.5);
    check("sysinfo loads[1] and loads[2] above 0", before.loads[1] > 0 && before.loads[2] > 0);

    unsigned long a1, f1, a5, f5, a15, f15;
    int running = 0, total = 0, last = 0, consumed = 0;
    int fields = sscanf(text, "%lu.%2lu %lu.%2lu %lu.%2lu %d/%d %d%n", &a1, &f1, &a5, &f5, &a15, &f15, &running, &total, &last, &consumed);
    check("/proc/loadavg has Linux's fields", read_ok && fields == 9 && strcmp(text + consumed, "\n") == 0);
    // Each average is "%lu.%02lu": two digits after the point.
    int words = 0;
    for (char *w = strtok(text, " \n"); w; w = strtok(NULL, " \n"), words++)
        if (words < 3 && (!strchr(w, '.') || strlen(strchr(w, '.')) != 3))
            words = 100;
    check("/proc/loadavg has five fields, the averages to two decimals", words == 5);
    double pl = a1 + f1 / 100.0;
    check("/proc/loadavg's 1-minute average above 0.5", pl > 0.5);
    check("/proc/loadavg agrees with sysinfo", pl - si < 0.02 && si - pl < 0.02);
    check("running/total count the spinners", total >= 3 && running >= 3 && running <= total);
    check("a last pid", last >= 1);
    if (failures)
        return 1;
    printf("all ok\n");
    return 0;
}
