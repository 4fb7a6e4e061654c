/* getppid_libc.c - glibc's getppid() round trip: its `mov $110, %eax; syscall` is
 * the shape systrap's syscall patching (--systrap-patch) rewrites, where the raw
 * syscall(SYS_getppid) of getppid.c is not.
 * usage: getppid_libc [iterations=20000] [max_seconds=10] */
#include "bench.h"
#include <unistd.h>

int main(int argc, char **argv) {
  long iters = arg_long(argc, argv, 1, 20000);
  double max_s = arg_double(argc, argv, 2, 10);
  long done;
  double nsop;
  BENCH_LOOP(getppid(), 1000, iters, 500, max_s, &done, &nsop);
  printf("RESULT getppid_libc %.1f iters=%ld\n", nsop, done);
  return 0;
}
