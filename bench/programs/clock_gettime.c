/* clock_gettime.c - clock_gettime(CLOCK_MONOTONIC) through libc: the vDSO when
 * there is one, a trapped syscall otherwise.
 *
 * Steady state is what is reported: the program first calls clock_gettime in a
 * loop until settle_seconds have passed since it started (runsc's vDSO, for one,
 * falls back to a real syscall for about a second while its timekeeper
 * calibrates), then times `iterations` calls.  The average cost during the
 * settle phase is reported as settle_ns=.
 * usage: clock_gettime [iterations=1000000] [max_seconds=10] [settle_seconds=1.5] */
#include "bench.h"

int main(int argc, char **argv) {
  long long start = now_ns();
  long iters = arg_long(argc, argv, 1, 1000000);
  double max_s = arg_double(argc, argv, 2, 10);
  double settle_s = arg_double(argc, argv, 3, 1.5);
  struct timespec ts;
  volatile long sink = 0;

  long settle_calls = 0;
  long long t = start;
  while (t - start < (long long)(settle_s * 1e9)) {
    for (int i = 0; i < 100; i++) { clock_gettime(CLOCK_MONOTONIC, &ts); sink += ts.tv_nsec; }
    settle_calls += 100;
    t = now_ns();
  }
  double settle_ns = settle_calls ? (double)(t - start) / settle_calls : 0;

  long done;
  double nsop;
  BENCH_LOOP((clock_gettime(CLOCK_MONOTONIC, &ts), sink += ts.tv_nsec), 1000,
             iters, 1000, max_s, &done, &nsop);
  printf("RESULT clock_gettime %.1f iters=%ld settle_ns=%.1f settle_calls=%ld\n",
         nsop, done, settle_ns, settle_calls);
  return 0;
}
