/* tcp_stream.c - bulk transfer over loopback TCP: a forked child writes
 * blocks of 64 KiB as fast as it can, the parent reads them (64 KiB recv
 * calls) and checks the byte count.
 * Reported: ns per 64 KiB received, and MB/s.
 * usage: tcp_stream [blocks=4096] [max_seconds=10] */
#include "bench.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BLOCK 65536

int main(int argc, char **argv) {
  long blocks = arg_long(argc, argv, 1, 4096);
  double max_s = arg_double(argc, argv, 2, 10);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &len)) {
    perror("tcp_stream: listen");
    return 1;
  }
  static char buf[BLOCK];
  memset(buf, 'x', sizeof buf);
  pid_t pid = fork();
  if (pid == 0) {
    int s = accept(l, NULL, NULL);
    for (long i = 0; i < blocks; i++) {
      for (size_t off = 0; off < BLOCK;) {
        ssize_t n = send(s, buf + off, BLOCK - off, 0);
        if (n <= 0) _exit(1);
        off += (size_t)n;
      }
    }
    _exit(0);
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
    perror("tcp_stream: connect");
    return 1;
  }
  long long total = 0, want = (long long)blocks * BLOCK;
  long long t0 = now_ns(), limit = (long long)(max_s * 1e9), t1 = t0;
  while (total < want) {
    ssize_t n = recv(fd, buf, BLOCK, 0);
    if (n <= 0) break;
    total += n;
    t1 = now_ns();
    if (t1 - t0 > limit) break;
  }
  close(fd);
  int status;
  waitpid(pid, &status, 0);
  if (total == 0 || (total < want && t1 - t0 <= limit)) {
    fprintf(stderr, "tcp_stream: got %lld of %lld bytes\n", total, want);
    return 1;
  }
  double per_block = (double)(t1 - t0) / ((double)total / BLOCK);
  printf("RESULT tcp_stream %.1f MBps=%.0f bytes=%lld\n", per_block, (double)total / ((double)(t1 - t0) / 1e9) / 1e6, total);
  return 0;
}
