// Threads that map, fill, check and unmap memory at the same time. Each must see
// zeros in a fresh mapping and keep what it wrote until it unmaps, however the
// others' unmaps interleave: a platform that frees a frame while a CPU may still
// reach it through an old translation fails both (kvm did, when one thread took
// another's flush under way for finished). Every 25th round maps 20 MiB, more
// frames than kvm's flush drops one range at a time, so its zap-all runs too.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "check.h"

#define THREADS 4
#define ROUNDS 300
#define LEN (128 * 1024)
#define BIG_LEN (20 << 20)
#define PAGE_WORDS (4096 / 8)

static long not_zero[THREADS], lost[THREADS];

static void *worker(void *arg) {
    long id = (long)arg;
    for (long r = 0; r < ROUNDS; r++) {
        size_t len = r % 25 == 0 ? BIG_LEN : LEN;
        unsigned long *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            perror("mmap");
            exit(1);
        }
        unsigned long tag = (unsigned long)id << 32 | (unsigned long)r;
        for (size_t k = 0; k < len / 8; k += PAGE_WORDS) {
            not_zero[id] += p[k] != 0;
            p[k] = tag;
        }
        // A trip through the kernel, where another thread's unmap may finish.
        sched_yield();
        for (size_t k = 0; k < len / 8; k += PAGE_WORDS)
            lost[id] += p[k] != tag;
        munmap(p, len);
    }
    return 0;
}

int main(void) {
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], 0, worker, (void *)i);
    long nz = 0, l = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], 0);
        nz += not_zero[i];
        l += lost[i];
    }
    check("every fresh page reads zeros", nz == 0);
    check("every page keeps what its thread wrote", l == 0);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
