/* timerfd_tick.c - a 1 kHz periodic timerfd (CLOCK_MONOTONIC, 1 ms interval);
 * the program blocks in read(2) on it and timestamps each wake-up.
 * Reported: the jitter, the mean absolute deviation of the wake-up intervals from
 * their mean, in ns; mean_interval_ns=, dev_nominal_ns= (mean |interval - interval_ns|),
 * max_interval_ns=, missed= (expirations beyond one per read: ticks overrun).
 *
 * usage: timerfd_tick [ticks=1000] [max_seconds=10] [interval_ns=1000000] */
#include "bench.h"
#include <stdint.h>
#include <sys/timerfd.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long ticks = arg_long(argc, argv, 1, 1000);
  double max_s = arg_double(argc, argv, 2, 10);
  long ival = arg_long(argc, argv, 3, 1000000);
  if (ticks < 2) ticks = 2;
  long long *at = calloc(ticks + 1, sizeof *at);
  if (!at) { perror("calloc"); return 1; }
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  if (fd < 0) { perror("timerfd_create"); return 1; }
  struct itimerspec its = {{0, ival}, {0, ival}};
  if (timerfd_settime(fd, 0, &its, NULL) != 0) { perror("timerfd_settime"); return 1; }
  uint64_t exp;
  for (int i = 0; i < 20; i++)  /* warm-up ticks */
    if (read(fd, &exp, sizeof exp) != sizeof exp) { perror("read timerfd"); return 1; }
  long long limit = (long long)(max_s * 1e9), missed = 0;
  long n = 0;
  at[n++] = now_ns();
  while (n <= ticks) {
    if (read(fd, &exp, sizeof exp) != sizeof exp) { perror("read timerfd"); return 1; }
    at[n++] = now_ns();
    missed += exp - 1;
    if (at[n - 1] - at[0] > limit) break;
  }
  long intervals = n - 1;
  double mean = (double)(at[n - 1] - at[0]) / intervals, mad = 0, dev = 0;
  long long maxi = 0;
  for (long i = 1; i < n; i++) {
    double d = (double)(at[i] - at[i - 1]);
    mad += d > mean ? d - mean : mean - d;
    dev += d > ival ? d - ival : ival - d;
    if (at[i] - at[i - 1] > maxi) maxi = at[i] - at[i - 1];
  }
  printf("RESULT timerfd_tick %.1f mean_interval_ns=%.1f dev_nominal_ns=%.1f max_interval_ns=%lld "
         "missed=%lld ticks=%ld\n",
         mad / intervals, mean, dev / intervals, maxi, missed, intervals);
  return 0;
}
