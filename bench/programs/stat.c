/* stat.c - stat(2) of a path (every component walked each call).
 * Reported: ns per stat.
 *
 * usage: stat [iterations=20000] [max_seconds=10] [path=/etc/passwd] */
#include "bench.h"
#include <sys/stat.h>

static const char *path;
static struct stat st;

static void do_stat(void) {
  if (stat(path, &st) != 0) { perror(path); exit(1); }
}

int main(int argc, char **argv) {
  long iters = arg_long(argc, argv, 1, 20000);
  double max_s = arg_double(argc, argv, 2, 10);
  path = argc > 3 ? argv[3] : "/etc/passwd";
  long done;
  double nsop;
  BENCH_LOOP(do_stat(), 100, iters, 100, max_s, &done, &nsop);
  printf("RESULT stat %.1f iters=%ld size=%lld\n", nsop, done, (long long)st.st_size);
  return 0;
}
