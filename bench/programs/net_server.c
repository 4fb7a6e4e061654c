/* net_server.c - the host end of bench/network: listens on ADDR with three
 * kernel-chosen ports and prints them, then serves each connection in a
 * forked child:
 *   stream port:  reads to EOF, then sends back the byte count (8 bytes, LE)
 *   rr port:      echoes every byte it reads, one byte per byte (TCP_NODELAY)
 *   connect port: accepts, and closes on the client's EOF (in this process,
 *                 polling every open one, so a fast client never overflows
 *                 the listen queue; the client closes first, as a short-lived
 *                 client does)
 * It prints "listening stream=P rr=P connect=P" once all three listen, and
 * runs until killed.
 * usage: net_server ADDR */
#include "bench.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int listener(const char *addr, int *port) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t len = sizeof a;
  int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0 || inet_pton(AF_INET, addr, &a.sin_addr) != 1) return -1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4096) || getsockname(l, (struct sockaddr *)&a, &len)) return -1;
  *port = ntohs(a.sin_port);
  return l;
}

static void sink(int s) {
  static char buf[1 << 16];
  unsigned long long total = 0;
  ssize_t n;
  while ((n = read(s, buf, sizeof buf)) > 0) total += (unsigned long long)n;
  if (write(s, &total, sizeof total) != sizeof total) _exit(1);
}

static void echo(int s) {
  int one = 1;
  char c;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  while (read(s, &c, 1) == 1 && write(s, &c, 1) == 1) {}
}

#define MAXFD 16384

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: net_server ADDR\n");
    return 2;
  }
  signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
  signal(SIGPIPE, SIG_IGN);
  int ports[3];
  static struct pollfd p[MAXFD]; /* the three listeners, then open connect-port connections */
  int n = 3;
  for (int i = 0; i < 3; i++) {
    p[i].fd = listener(argv[1], &ports[i]);
    p[i].events = POLLIN;
    if (p[i].fd < 0) {
      perror("net_server: listen");
      return 1;
    }
  }
  fcntl(p[2].fd, F_SETFL, O_NONBLOCK);
  printf("listening stream=%d rr=%d connect=%d\n", ports[0], ports[1], ports[2]);
  fflush(stdout);
  for (;;) {
    if (poll(p, n, -1) < 0) continue;
    for (int i = 0; i < 2; i++) {
      if (!(p[i].revents & POLLIN)) continue;
      int s = accept(p[i].fd, NULL, NULL);
      if (s < 0) continue;
      if (fork() == 0) {
        for (int j = 0; j < n; j++) close(p[j].fd);
        if (i == 0) sink(s); else echo(s);
        _exit(0);
      }
      close(s);
    }
    for (int i = n - 1; i >= 3; i--) {
      char c;
      if (p[i].revents && read(p[i].fd, &c, 1) <= 0) {
        close(p[i].fd);
        p[i] = p[--n];
      }
    }
    if (p[2].revents & POLLIN) {
      int s;
      while (n < MAXFD && (s = accept(p[2].fd, NULL, NULL)) >= 0) {
        p[n].fd = s;
        p[n].events = POLLIN;
        p[n++].revents = 0;
      }
    }
  }
}
