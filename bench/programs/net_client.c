/* net_client.c - the container end of bench/network: TCP to net_server on
 * another host (over a veth, from the container's network namespace).
 *   stream:  writes COUNT MiB in 64 KiB writes (after a short write, the rest
 *            of that block, then whole blocks again; short_writes= counts
 *            them), shuts down its side, and waits
 *            for the server's byte count (so the time covers delivery, not
 *            only the local send buffer). Reported: ns per 64 KiB, and MB/s.
 *   rr:      COUNT 1-byte request/response round trips, TCP_NODELAY.
 *            Reported: ns per round trip.
 *   connect: COUNT times connect and close (the server closes on the EOF).
 *            Reported: ns per connection.
 * usage: net_client stream|rr|connect ADDR PORT [COUNT] [max_seconds=10] */
#include "bench.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BLOCK 65536

static struct sockaddr_in server;

static int dial(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&server, sizeof server)) {
    perror("net_client: connect");
    exit(1);
  }
  return fd;
}

static int stream(long mib) {
  static char buf[BLOCK];
  memset(buf, 'x', sizeof buf);
  long long want = mib << 20;
  int fd = dial();
  long long t0 = now_ns();
  long short_writes = 0; /* writes that took less than asked (Linux's blocking ones do not) */
  for (long long sent = 0; sent < want;) {
    size_t ask = want - sent < BLOCK ? (size_t)(want - sent) : BLOCK - (size_t)(sent % BLOCK);
    ssize_t n = write(fd, buf, ask);
    if (n <= 0) {
      perror("net_client: stream: write");
      return 1;
    }
    short_writes += (size_t)n < ask;
    sent += n;
  }
  unsigned long long got = 0;
  shutdown(fd, SHUT_WR);
  if (read(fd, &got, sizeof got) != sizeof got || (long long)got != want) {
    fprintf(stderr, "net_client: stream: the server counted %llu of %lld bytes\n", got, want);
    return 1;
  }
  long long t1 = now_ns();
  close(fd);
  printf("RESULT tcp_stream %.1f MBps=%.0f bytes=%lld short_writes=%ld\n", (double)(t1 - t0) / ((double)want / BLOCK),
         (double)want / ((double)(t1 - t0) / 1e9) / 1e6, want, short_writes);
  return 0;
}

static int exchange(int fd) {
  char c = 'x';
  if (write(fd, &c, 1) != 1) {
    perror("net_client: rr: write");
    return -1;
  }
  ssize_t n = read(fd, &c, 1);
  if (n != 1) {
    if (n == 0) fprintf(stderr, "net_client: rr: read: EOF\n");
    else perror("net_client: rr: read");
    return -1;
  }
  return 0;
}

static int rr(long iters, double max_s) {
  int one = 1, fd = dial(), failed = 0;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  long done;
  double nsop;
  BENCH_LOOP(if (!failed) failed = exchange(fd), 100, iters, 100, max_s, &done, &nsop);
  close(fd);
  if (failed) return 1;
  printf("RESULT tcp_rr %.1f iters=%ld\n", nsop, done);
  return 0;
}

static int connect_close(void) {
  if (close(dial())) {
    perror("net_client: connect: close");
    return -1;
  }
  return 0;
}

static int connects(long iters, double max_s) {
  long done;
  double nsop;
  int failed = 0;
  BENCH_LOOP(if (!failed) failed = connect_close(), 10, iters, 50, max_s, &done, &nsop);
  if (failed) return 1;
  printf("RESULT tcp_connect %.1f iters=%ld\n", nsop, done);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: net_client stream|rr|connect ADDR PORT [COUNT] [max_seconds]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  server.sin_family = AF_INET;
  server.sin_port = htons((unsigned short)atoi(argv[3]));
  if (inet_pton(AF_INET, argv[2], &server.sin_addr) != 1) {
    fprintf(stderr, "net_client: bad address %s\n", argv[2]);
    return 2;
  }
  double max_s = arg_double(argc, argv, 5, 10);
  if (!strcmp(argv[1], "stream")) return stream(arg_long(argc, argv, 4, 256));
  if (!strcmp(argv[1], "rr")) return rr(arg_long(argc, argv, 4, 20000), max_s);
  if (!strcmp(argv[1], "connect")) return connects(arg_long(argc, argv, 4, 5000), max_s);
  fprintf(stderr, "net_client: unknown mode %s\n", argv[1]);
  return 2;
}
