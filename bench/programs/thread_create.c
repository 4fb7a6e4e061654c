/* thread_create.c - pthread_create of a thread that returns at once, then
 * pthread_join.  Reported: ns per create + join.  glibc caches the stack of a
 * joined thread, so after the warm-up this is, in system calls: clone3, the
 * signal-mask calls around it, rseq and set_robust_list in the thread,
 * madvise(MADV_DONTNEED) of its stack and exit, and the joiner's FUTEX_WAIT
 * woken by the CLEARTID wake; no mmap.
 * usage: thread_create [iterations=5000] [max_seconds=10] */
#include "bench.h"
#include <pthread.h>
#include <string.h>

static void *empty(void *arg) { return arg; }

static void create_join(void) {
  pthread_t t;
  int e = pthread_create(&t, NULL, empty, NULL);
  if (e) { fprintf(stderr, "pthread_create: %s\n", strerror(e)); exit(1); }
  e = pthread_join(t, NULL);
  if (e) { fprintf(stderr, "pthread_join: %s\n", strerror(e)); exit(1); }
}

int main(int argc, char **argv) {
  long iters = arg_long(argc, argv, 1, 5000);
  double max_s = arg_double(argc, argv, 2, 10);
  long done;
  double nsop;
  BENCH_LOOP(create_join(), 20, iters, 20, max_s, &done, &nsop);
  printf("RESULT thread_create %.1f iters=%ld\n", nsop, done);
  return 0;
}
