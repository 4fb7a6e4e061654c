// RLIMIT_AS holds against threads mapping at once: with room for one more
// mapping of 64 MiB, two threads mmap 64 MiB each at the same moment, round
// after round, and exactly one succeeds every time (the limit is checked as the
// mapping goes in, not before). Only the rounds' outcome is printed.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>

#define SIZE (64ul << 20)
#define ROUNDS 300

// The round the workers may start, which they spin for (to call mmap as close
// together as can be), and the barrier the round ends at.
static _Atomic int round_started = -1;
static pthread_barrier_t done;
static void *got[2];
static int err[2];

static void *worker(void *arg) {
    long i = (long)arg;
    for (int r = 0; r < ROUNDS; r++) {
        while (round_started < r)
            ;
        got[i] = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        err[i] = got[i] == MAP_FAILED ? errno : 0;
        pthread_barrier_wait(&done);
    }
    return NULL;
}

// The address space's size now (VmSize), in bytes.
static unsigned long vm_size(void) {
    char line[256];
    unsigned long kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %lu kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb << 10;
}

int main(void) {
    pthread_t th[2];
    pthread_barrier_init(&done, NULL, 3);
    for (long i = 0; i < 2; i++) pthread_create(&th[i], NULL, worker, (void *)i);
    // Room for one more mapping, with half of one to spare.
    struct rlimit rl = {vm_size() + SIZE + SIZE / 2, RLIM_INFINITY};
    check("setrlimit(RLIMIT_AS)", setrlimit(RLIMIT_AS, &rl) == 0);
    int one = 0, both = 0, none = 0, other_errors = 0;
    for (int r = 0; r < ROUNDS; r++) {
        round_started = r;
        pthread_barrier_wait(&done);
        int ok = 0;
        for (int i = 0; i < 2; i++) {
            if (got[i] != MAP_FAILED) {
                ok++;
                munmap(got[i], SIZE);
            } else if (err[i] != ENOMEM) {
                other_errors++;
            }
        }
        if (ok == 1) one++;
        else if (ok == 2) both++;
        else none++;
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    printf("rounds with one mapping: %d, both: %d, none: %d\n", one, both, none);
    check("exactly one of the two mmaps succeeds in every round", one == ROUNDS);
    check("the other fails with ENOMEM", other_errors == 0);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
