/* read_file.c - read a large host file sequentially with read(2) of one block
 * (64 KiB) at a time, from offset 0, into one buffer.
 * Reported: ns per block read; MBps= (10^6 bytes per second), total_ms=, bytes=.
 *
 * usage: read_file [blocks=0 (whole file)] [max_seconds=10] [path] [block_size=65536]
 *   path  the file to read (bench/run creates build/data/read_1g, 1 GiB of data).
 * It stops early after max_seconds (then bytes= says how much was read). */
#include "bench.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long blocks = arg_long(argc, argv, 1, 0);
  double max_s = arg_double(argc, argv, 2, 10);
  const char *path = argc > 3 ? argv[3] : "data/read_1g";
  long bs = arg_long(argc, argv, 4, 65536);
  char *buf = aligned_alloc(4096, bs);
  if (!buf) { perror("aligned_alloc"); return 1; }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) { perror(path); return 1; }
  /* warm-up: one block, then back to the start */
  if (read(fd, buf, bs) < 0) { perror("read"); return 1; }
  if (lseek(fd, 0, SEEK_SET) != 0) { perror("lseek"); return 1; }

  long long limit = (long long)(max_s * 1e9), bytes = 0;
  long reads = 0;
  volatile unsigned char sink = 0;
  long long t0 = now_ns(), t1 = t0;
  for (;;) {
    if (blocks > 0 && reads >= blocks) break;
    ssize_t n = read(fd, buf, bs);
    if (n < 0) { perror("read"); return 1; }
    if (n == 0) break;
    sink ^= buf[n - 1];
    bytes += n;
    reads++;
    if ((reads & 63) == 0 && (t1 = now_ns()) - t0 > limit) break;
  }
  t1 = now_ns();
  close(fd);
  if (reads == 0) { fprintf(stderr, "read_file: %s is empty\n", path); return 1; }
  double ns = (double)(t1 - t0);
  printf("RESULT read_file %.1f MBps=%.1f total_ms=%.2f bytes=%lld reads=%ld block=%ld\n",
         ns / reads, bytes / (ns / 1e9) / 1e6, ns / 1e6, bytes, reads, bs);
  return 0;
}
