/* fault64m.c - fault in 64 MiB of fresh anonymous memory: mmap, then write one
 * byte to every 4 KiB page.  Repeated `reps` times, each on a fresh mapping
 * (munmap'ed afterwards); reports the median repetition.
 * RESULT fault64m <ns per 4 KiB page> total_ms=<ms for the 64 MiB> ...
 * usage: fault64m [reps=5] */
#include "bench.h"
#include <sys/mman.h>

#define SIZE (64UL << 20)
#define PAGE 4096UL

static int cmp(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  long reps = arg_long(argc, argv, 1, 5);
  if (reps < 1) reps = 1;
  if (reps > 64) reps = 64;
  long long t[64], mmap_ns[64];
  for (long r = 0; r < reps; r++) {
    long long t0 = now_ns();
    volatile char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    long long t1 = now_ns();
    for (unsigned long off = 0; off < SIZE; off += PAGE) p[off] = 1;
    long long t2 = now_ns();
    if (munmap((void *)p, SIZE)) { perror("munmap"); return 1; }
    t[r] = t2 - t0;          /* mmap + touch */
    mmap_ns[r] = t1 - t0;
  }
  long long first = t[0];
  qsort(t, reps, sizeof t[0], cmp);
  qsort(mmap_ns, reps, sizeof mmap_ns[0], cmp);
  long long med = t[reps / 2];
  printf("RESULT fault64m %.1f total_ms=%.2f first_ms=%.2f mmap_us=%.1f reps=%ld\n",
         (double)med / (SIZE / PAGE), med / 1e6, first / 1e6,
         mmap_ns[reps / 2] / 1e3, reps);
  return 0;
}
