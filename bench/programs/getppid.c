/* getppid.c - raw syscall(SYS_getppid) round trip: the cost of one trapped syscall.
 * usage: getppid [iterations=20000] [max_seconds=10] */
#include "bench.h"
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long iters = arg_long(argc, argv, 1, 20000);
  double max_s = arg_double(argc, argv, 2, 10);
  long done;
  double nsop;
  BENCH_LOOP(syscall(SYS_getppid), 1000, iters, 500, max_s, &done, &nsop);
  printf("RESULT getppid %.1f iters=%ld\n", nsop, done);
  return 0;
}
