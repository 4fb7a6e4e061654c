/* bench.h - shared helpers for the rvisor benchmark programs.
 *
 * Every program prints exactly one machine-readable line on stdout:
 *     RESULT <name> <ns_per_op> [key=value ...]
 * Timing uses clock_gettime(CLOCK_MONOTONIC) inside the program, so process
 * start-up and sandbox boot never pollute the per-operation numbers.
 *
 * Loop benchmarks take two optional arguments:  [iterations] [max_seconds]
 * The loop runs in chunks and stops early once max_seconds have elapsed, so a
 * very slow platform still finishes; the line then reports iters=<actually done>.
 */
#ifndef RVISOR_BENCH_H
#define RVISOR_BENCH_H

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline long arg_long(int argc, char **argv, int i, long dflt) {
  return argc > i ? atol(argv[i]) : dflt;
}

static inline double arg_double(int argc, char **argv, int i, double dflt) {
  return argc > i ? atof(argv[i]) : dflt;
}

/* Run body() `iters` times after `warm` warm-up calls, in chunks of `chunk`,
 * stopping early after max_s seconds.  Returns ns/op; *done = iterations timed. */
#define BENCH_LOOP(body, warm, iters, chunk, max_s, done_out, nsop_out)        \
  do {                                                                          \
    for (long _w = 0; _w < (warm); _w++) { body; }                              \
    long long _limit = (long long)((max_s) * 1e9);                              \
    long _done = 0;                                                             \
    long long _t0 = now_ns(), _t1 = _t0;                                        \
    while (_done < (iters)) {                                                   \
      long _n = (iters) - _done < (chunk) ? (iters) - _done : (chunk);          \
      for (long _i = 0; _i < _n; _i++) { body; }                                \
      _done += _n;                                                              \
      _t1 = now_ns();                                                           \
      if (_t1 - _t0 > _limit) break;                                            \
    }                                                                           \
    *(done_out) = _done;                                                        \
    *(nsop_out) = (double)(_t1 - _t0) / (double)_done;                          \
  } while (0)

#endif
