/* getdents.c - list a big directory: open(O_DIRECTORY), getdents64 with a 32 KiB
 * buffer (glibc readdir's size) until it returns 0, close.  Reported: ns per full
 * listing; entries= (per listing, with . and ..), calls= (getdents64 per listing),
 * ns_per_entry=.  Fails if the count changes between listings.
 *
 * usage: getdents [iterations=200] [max_seconds=10] [dir=data/dir_10k]
 *   (bench/run creates build/data/dir_10k with 10,000 empty files) */
#include "bench.h"
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *dir;
static char buf[32768] __attribute__((aligned(8)));
static long entries, calls, expect = -1;

static void list_dir(void) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) { perror(dir); exit(1); }
  long n_ent = 0, n_calls = 0;
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    n_calls++;
    if (n < 0) { perror("getdents64"); exit(1); }
    if (n == 0) break;
    for (long off = 0; off < n;) {
      unsigned short reclen;
      __builtin_memcpy(&reclen, buf + off + 16, sizeof reclen);  /* d_reclen */
      if (reclen == 0) { fprintf(stderr, "getdents: d_reclen 0\n"); exit(1); }
      off += reclen;
      n_ent++;
    }
  }
  close(fd);
  if (expect >= 0 && n_ent != expect) {
    fprintf(stderr, "getdents: %ld entries, then %ld\n", expect, n_ent);
    exit(1);
  }
  expect = entries = n_ent;
  calls = n_calls;
}

int main(int argc, char **argv) {
  long iters = arg_long(argc, argv, 1, 200);
  double max_s = arg_double(argc, argv, 2, 10);
  dir = argc > 3 ? argv[3] : "data/dir_10k";
  long done;
  double nsop;
  BENCH_LOOP(list_dir(), 2, iters, 1, max_s, &done, &nsop);
  printf("RESULT getdents %.1f iters=%ld entries=%ld calls=%ld ns_per_entry=%.1f\n", nsop, done,
         entries, calls, nsop / entries);
  return 0;
}
