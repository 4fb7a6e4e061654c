// /proc/stat's procs_running counts runnable tasks: with three threads spinning, it
// is at least four (they and the reader), and it agrees with /proc/loadavg's count.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static atomic_int started, stop;

static void *spin(void *arg) {
    (void)arg;
    atomic_fetch_add(&started, 1);
    while (!atomic_load(&stop)) {}
    return NULL;
}

static long procs_running(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) { perror("/proc/stat"); exit(1); }
    char line[256];
    long n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "procs_running %ld", &n) == 1) break;
    fclose(f);
    return n;
}

int main(void) {
    check("procs_running counts the reader", procs_running() >= 1);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, spin, NULL);
    while (atomic_load(&started) < 3) {}
    long n = procs_running();
    check("procs_running counts three spinning threads and the reader", n >= 4);
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
