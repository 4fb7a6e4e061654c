/* tmpfs_rw.c - write a file in /tmp (the sandbox's tmpfs; natively the host's
 * /tmp) with write(2) of 64 KiB blocks, then read it back from offset 0 with
 * read(2) of 64 KiB blocks, checking a word of every block; close and unlink.
 * Each rep uses a fresh file. Reported: the median rep's ns per 64 KiB block
 * written and read back ((write + read time) / blocks); total_ms=, write_ms=,
 * read_ms= (that rep), write_MBps=, read_MBps=, first_ms= (the first rep's total).
 *
 * usage: tmpfs_rw [reps=5] [max_seconds=10] [mib=64] [dir=/tmp] */
#include "bench.h"
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define BS 65536

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  long reps = arg_long(argc, argv, 1, 5);
  double max_s = arg_double(argc, argv, 2, 10);
  long mib = arg_long(argc, argv, 3, 64);
  const char *dir = argc > 4 ? argv[4] : "/tmp";
  long blocks = mib * (1024 * 1024 / BS);
  if (reps < 1 || reps > 100 || blocks < 1) { fprintf(stderr, "tmpfs_rw: bad arguments\n"); return 1; }
  char path[4096];
  snprintf(path, sizeof path, "%s/rvisor-bench-tmpfs_rw.%d", dir, (int)getpid());
  char *buf = aligned_alloc(4096, BS), *rbuf = aligned_alloc(4096, BS);
  if (!buf || !rbuf) { perror("aligned_alloc"); return 1; }
  for (int i = 0; i < BS; i++) buf[i] = (char)(i * 7 + 3);

  long long wr[100], rd[100], tot[100], t_start = now_ns();
  long done = 0;
  for (long r = 0; r < reps; r++) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) { perror(path); return 1; }
    long long t0 = now_ns();
    for (long b = 0; b < blocks; b++) {
      memcpy(buf, &b, sizeof b);  /* each block carries its number */
      if (write(fd, buf, BS) != BS) { perror("write"); unlink(path); return 1; }
    }
    long long t1 = now_ns();
    if (lseek(fd, 0, SEEK_SET) != 0) { perror("lseek"); unlink(path); return 1; }
    for (long b = 0; b < blocks; b++) {
      ssize_t n = read(fd, rbuf, BS);
      long got;
      memcpy(&got, rbuf, sizeof got);
      if (n != BS || got != b) {
        fprintf(stderr, "tmpfs_rw: block %ld: read %zd bytes, tag %ld\n", b, n, got);
        unlink(path);
        return 1;
      }
    }
    long long t2 = now_ns();
    close(fd);
    if (unlink(path) != 0) { perror("unlink"); return 1; }
    wr[r] = t1 - t0; rd[r] = t2 - t1; tot[r] = t2 - t0;
    done++;
    if (now_ns() - t_start > (long long)(max_s * 1e9)) break;
  }
  long long first = tot[0], sorted[100];
  memcpy(sorted, tot, done * sizeof *tot);
  qsort(sorted, done, sizeof *sorted, cmp_ll);
  long long med = sorted[done / 2];
  long m = 0;
  while (tot[m] != med) m++;
  double bytes = (double)blocks * BS;
  printf("RESULT tmpfs_rw %.1f total_ms=%.2f write_ms=%.2f read_ms=%.2f write_MBps=%.0f "
         "read_MBps=%.0f first_ms=%.2f reps=%ld mib=%ld\n",
         (double)med / blocks, med / 1e6, wr[m] / 1e6, rd[m] / 1e6, bytes / (wr[m] / 1e9) / 1e6,
         bytes / (rd[m] / 1e9) / 1e6, first / 1e6, done, mib);
  return 0;
}
