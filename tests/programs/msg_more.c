/* msg_more.c - send(2)'s MSG_MORE and MSG_EOR, and UDP_CORK: a UDP datagram built
 * over several sends (to where the first addressed it, dropped whole when too
 * big), a stream's bytes all arriving, the flags other sockets ignore, and
 * MSG_OOB on UDP. Prints deterministic lines to compare with a native run. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "tcp_pair.h"

#ifndef UDP_CORK
#define UDP_CORK 1
#endif

static const char *err(long r) { return r < 0 ? strerror(errno) : "ok"; }

static int udp_bound(struct sockaddr_in *a) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  socklen_t len = sizeof *a;
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s, (struct sockaddr *)a, sizeof *a) || getsockname(s, (struct sockaddr *)a, &len)) {
    perror("bind");
    exit(1);
  }
  return s;
}

/* Every datagram waiting on `s`, each as [bytes]. */
static void drain(const char *what, int s) {
  char buf[70000];
  printf("%s:", what);
  for (;;) {
    ssize_t n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) break;
    if (n > 40) printf(" [%zd bytes]", n);
    else printf(" [%.*s]", (int)n, buf);
  }
  printf("\n");
}

int main(void) {
  struct sockaddr_in a, b;
  int ra = udp_bound(&a), rb = udp_bound(&b);
  int s = socket(AF_INET, SOCK_DGRAM, 0);

  printf("first part, no address: %s\n", err(send(s, "x", 1, MSG_MORE)));
  printf("part 1: %ld\n", (long)sendto(s, "12", 2, MSG_MORE, (struct sockaddr *)&a, sizeof a));
  drain("nothing yet at a", ra);
  printf("part 2 (addressed to b): %ld\n", (long)sendto(s, "34", 2, MSG_MORE, (struct sockaddr *)&b, sizeof b));
  printf("last part: %ld\n", (long)send(s, "56", 2, 0));
  drain("a", ra);
  drain("b", rb);

  int on = 1, got = -1;
  socklen_t gl = sizeof got;
  printf("UDP_CORK on: %s\n", err(setsockopt(s, IPPROTO_UDP, UDP_CORK, &on, sizeof on)));
  getsockopt(s, IPPROTO_UDP, UDP_CORK, &got, &gl);
  printf("UDP_CORK reads %d\n", got);
  for (int i = 0; i < 3; i++) sendto(s, "ab", 2, 0, (struct sockaddr *)&b, sizeof b);
  drain("corked, b", rb);
  on = 0;
  printf("UDP_CORK off: %s\n", err(setsockopt(s, IPPROTO_UDP, UDP_CORK, &on, sizeof on)));
  drain("uncorked, b", rb);

  static char big[40000];
  memset(big, 'z', sizeof big);
  printf("big part 1: %ld\n", (long)sendto(s, big, sizeof big, MSG_MORE, (struct sockaddr *)&a, sizeof a));
  errno = 0;
  long r = sendto(s, big, sizeof big, MSG_MORE, (struct sockaddr *)&a, sizeof a);
  printf("big part 2: %ld %s\n", r, err(r));
  printf("after the drop: %ld\n", (long)sendto(s, "fresh", 5, 0, (struct sockaddr *)&a, sizeof a));
  drain("a", ra);
  printf("MSG_EOR on UDP: %ld\n", (long)sendto(s, "e", 1, MSG_EOR, (struct sockaddr *)&a, sizeof a));
  drain("a", ra);
  errno = 0;
  r = sendto(s, "o", 1, MSG_OOB, (struct sockaddr *)&a, sizeof a);
  printf("MSG_OOB on UDP: %ld %s\n", r, err(r));

  /* TCP: every byte arrives, in order. */
  int tcp[2];
  tcp_pair(tcp);
  int c = tcp[0], acc = tcp[1];
  printf("tcp MSG_MORE: %ld\n", (long)send(c, "he", 2, MSG_MORE));
  printf("tcp MSG_EOR: %ld\n", (long)send(c, "ll", 2, MSG_EOR));
  printf("tcp plain: %ld\n", (long)send(c, "o", 1, 0));
  char buf[16];
  size_t have = 0;
  while (have < 5) {
    ssize_t n = recv(acc, buf + have, sizeof buf - have, 0);
    if (n <= 0) break;
    have += n;
  }
  printf("tcp got: %.*s\n", (int)have, buf);

  /* Unix sockets take both flags and ignore them. */
  int sv[2];
  socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
  printf("unix dgram MSG_MORE: %ld\n", (long)send(sv[0], "u1", 2, MSG_MORE));
  printf("unix dgram MSG_EOR: %ld\n", (long)send(sv[0], "u2", 2, MSG_EOR));
  drain("unix dgram", sv[1]);
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  printf("unix stream MSG_MORE: %ld\n", (long)send(sv[0], "s1", 2, MSG_MORE));
  have = 0;
  while (have < 2) {
    ssize_t n = recv(sv[1], buf + have, sizeof buf - have, 0);
    if (n <= 0) break;
    have += n;
  }
  printf("unix stream got: %.*s\n", (int)have, buf);
  return 0;
}
