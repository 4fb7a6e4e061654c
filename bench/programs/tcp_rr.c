/* tcp_rr.c - request/response over loopback TCP: a forked child echoes one
 * byte back for every byte the parent sends (send, then a blocking recv),
 * with TCP_NODELAY on both ends, as a small RPC does.
 * Reported: ns per round trip.
 * usage: tcp_rr [iterations=20000] [max_seconds=10] */
#include "bench.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int exchange(int fd) {
  char c = 'x';
  return send(fd, &c, 1, 0) == 1 && recv(fd, &c, 1, 0) == 1 ? 0 : -1;
}

int main(int argc, char **argv) {
  long iters = arg_long(argc, argv, 1, 20000);
  double max_s = arg_double(argc, argv, 2, 10);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &len)) {
    perror("tcp_rr: listen");
    return 1;
  }
  pid_t pid = fork();
  if (pid == 0) {
    int s = accept(l, NULL, NULL);
    nodelay(s);
    char c;
    while (recv(s, &c, 1, 0) == 1 && send(s, &c, 1, 0) == 1) {}
    _exit(0);
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
    perror("tcp_rr: connect");
    return 1;
  }
  nodelay(fd);
  long done;
  double nsop;
  int failed = 0;
  BENCH_LOOP(failed |= exchange(fd), 100, iters, 100, max_s, &done, &nsop);
  close(fd);
  int status;
  waitpid(pid, &status, 0);
  if (failed) {
    fprintf(stderr, "tcp_rr: a round trip failed\n");
    return 1;
  }
  printf("RESULT tcp_rr %.1f iters=%ld\n", nsop, done);
  return 0;
}
