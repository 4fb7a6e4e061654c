/* open_close.c - open(2) an existing file read-only and close(2) it at once.
 * Reported: ns per open + close pair.
 *
 * usage: open_close [iterations=20000] [max_seconds=10] [path=/etc/passwd] */
#include "bench.h"
#include <fcntl.h>
#include <unistd.h>

static const char *path;

static void open_close(void) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) { perror(path); exit(1); }
  if (close(fd) != 0) { perror("close"); exit(1); }
}

int main(int argc, char **argv) {
  long iters = arg_long(argc, argv, 1, 20000);
  double max_s = arg_double(argc, argv, 2, 10);
  path = argc > 3 ? argv[3] : "/etc/passwd";
  long done;
  double nsop;
  BENCH_LOOP(open_close(), 100, iters, 100, max_s, &done, &nsop);
  printf("RESULT open_close %.1f iters=%ld\n", nsop, done);
  return 0;
}
