/* nanosleep.c - overshoot of nanosleep(1 ms): time each nanosleep of the
 * requested length with CLOCK_MONOTONIC; overshoot = elapsed - requested.
 * Reported: mean overshoot in ns per sleep; median_ns=, max_ns=, min_ns=.
 *
 * usage: nanosleep [iterations=1000] [max_seconds=10] [request_ns=1000000] */
#include "bench.h"
#include <string.h>

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  long iters = arg_long(argc, argv, 1, 1000);
  double max_s = arg_double(argc, argv, 2, 10);
  long req = arg_long(argc, argv, 3, 1000000);
  if (iters < 1) iters = 1;
  long long *over = calloc(iters, sizeof *over);
  if (!over) { perror("calloc"); return 1; }
  struct timespec ts = {req / 1000000000L, req % 1000000000L};
  for (int i = 0; i < 10; i++) nanosleep(&ts, NULL);  /* warm-up */
  long long limit = (long long)(max_s * 1e9), start = now_ns(), sum = 0;
  long done = 0;
  while (done < iters) {
    long long t0 = now_ns();
    if (nanosleep(&ts, NULL) != 0) { perror("nanosleep"); return 1; }
    long long t1 = now_ns();
    if (t1 - t0 < req) {
      fprintf(stderr, "nanosleep: woke after %lld ns < %ld ns\n", t1 - t0, req);
      return 1;
    }
    over[done++] = t1 - t0 - req;
    sum += t1 - t0 - req;
    if (t1 - start > limit) break;
  }
  qsort(over, done, sizeof *over, cmp_ll);
  printf("RESULT nanosleep %.1f iters=%ld median_ns=%lld min_ns=%lld max_ns=%lld\n",
         (double)sum / done, done, over[done / 2], over[0], over[done - 1]);
  return 0;
}
