/* tcp_oob.c - TCP urgent data on loopback: send(MSG_OOB) marks its last byte;
 * recv(MSG_OOB) takes that byte (EINVAL when there is none, it was taken, or
 * SO_OOBINLINE); reads stop before the mark and skip the byte unless
 * SO_OOBINLINE; a new mark replaces the old one; SIOCATMARK, FIONREAD, POLLPRI,
 * select's exceptfds and EPOLLPRI; SIGURG to the owner (F_SETOWN, F_SETOWN_EX);
 * MSG_OOB on other sockets. Prints what it sees, to compare with a native run. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>
#include "check.h"
#include "oob.h"

/* A connection on loopback: fd[0] sends, fd[1] (non-blocking) receives; with
 * `inline_on` the listener has SO_OOBINLINE, which the accepted socket inherits. */
static void connection(int fd[2], int inline_on) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t n = sizeof a;
  setsockopt(l, SOL_SOCKET, SO_OOBINLINE, &inline_on, sizeof inline_on);
  if (bind(l, (struct sockaddr *)&a, n) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &n)) {
    perror("listen");
    exit(1);
  }
  fd[0] = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd[0], (struct sockaddr *)&a, n)) {
    perror("connect");
    exit(1);
  }
  fd[1] = accept(l, 0, 0);
  close(l);
  fcntl(fd[1], F_SETFL, O_NONBLOCK);
}

/* A connection without SO_OOBINLINE. */
static void plain_connection(int fd[2]) {
  connection(fd, 0);
}

int main(void) {
  int f[2];

  puts("-- reads stop at the mark, recv(MSG_OOB) takes the byte");
  connection(f, 0);
  out(f[0], "hello", MSG_OOB);
  expect("before reading", state(f[1]), "atmark 0 inq 4 IN PRI");
  expect("recv 10", in(f[1], 10, 0), "4 [hell]");
  expect("at the mark", state(f[1]), "atmark 1 inq 0 PRI");
  expect("MSG_OOB|MSG_PEEK", in(f[1], 1, MSG_OOB | MSG_PEEK), "1 [o]");
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "1 [o]");
  expect("after MSG_OOB", state(f[1]), "atmark 1 inq 0");
  expect("MSG_OOB again", in(f[1], 1, MSG_OOB), "EINVAL");
  out(f[0], "world", 0);
  expect("more data", state(f[1]), "atmark 1 inq 0 IN");
  expect("recv 10 skips the urgent byte", in(f[1], 10, 0), "5 [world]");
  expect("past the mark", state(f[1]), "atmark 0 inq 0");
  expect("MSG_OOB past the mark", in(f[1], 1, MSG_OOB), "EINVAL");
  done(f);

  puts("-- reading past an urgent byte not taken drops it");
  connection(f, 0);
  out(f[0], "hello", MSG_OOB);
  out(f[0], "world", 0);
  expect("recv 10", in(f[1], 10, 0), "4 [hell]");
  expect("at the mark", state(f[1]), "atmark 1 inq 0 IN PRI");
  expect("MSG_PEEK at the mark", in(f[1], 10, MSG_PEEK), "5 [world]");
  expect("recv 10", in(f[1], 10, 0), "5 [world]");
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "EINVAL");
  expect("after", state(f[1]), "atmark 0 inq 0");
  done(f);

  puts("-- MSG_WAITALL stops at the mark too");
  connection(f, 0);
  fcntl(f[1], F_SETFL, 0);
  /* A guard only: a read that went past the mark would wait for a tenth byte. */
  struct timeval guard = {2, 0};
  setsockopt(f[1], SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
  out(f[0], "hello", MSG_OOB);
  out(f[0], "world", 0);
  char w[16] = {0};
  long n = recv(f[1], w, 10, MSG_WAITALL);
  printf("MSG_WAITALL 10: %ld [%s]\n", n, n > 0 ? w : "");
  check("MSG_WAITALL: hell", n == 4 && !memcmp(w, "hell", 4));
  done(f);

  puts("-- only the urgent byte");
  connection(f, 0);
  out(f[0], "x", MSG_OOB);
  expect("state", state(f[1]), "atmark 1 inq 0 PRI");
  expect("MSG_PEEK", in(f[1], 1, MSG_PEEK), "EAGAIN");
  expect("still there", state(f[1]), "atmark 1 inq 0 PRI");
  expect("recv skips it", in(f[1], 1, 0), "EAGAIN");
  expect("gone", state(f[1]), "atmark 0 inq 0");
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "EINVAL");
  done(f);

  puts("-- a new mark replaces the old one, whose byte is data");
  connection(f, 0);
  out(f[0], "hello", MSG_OOB);
  out(f[0], "wor", MSG_OOB);
  out(f[0], "ld", 0);
  expect("recv 10", in(f[1], 10, 0), "7 [hellowo]");
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "1 [r]");
  expect("recv 10", in(f[1], 10, 0), "2 [ld]");
  done(f);

  puts("-- a new mark while the reader is at the old one");
  connection(f, 0);
  out(f[0], "x", MSG_OOB);
  out(f[0], "y", MSG_OOB);
  expect("state", state(f[1]), "atmark 1 inq 0 PRI");
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "1 [y]");
  expect("recv", in(f[1], 1, 0), "EAGAIN");
  done(f);

  puts("-- a new mark after the old byte was taken");
  connection(f, 0);
  out(f[0], "hello", MSG_OOB);
  out(f[0], "wor", MSG_OOB);
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "1 [r]");
  expect("state", state(f[1]), "atmark 0 inq 7 IN");
  out(f[0], "ld", MSG_OOB);
  expect("recv 10", in(f[1], 10, 0), "9 [helloworl]");
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "1 [d]");
  expect("recv 10", in(f[1], 10, 0), "EAGAIN");
  done(f);

  puts("-- SO_OOBINLINE");
  connection(f, 1);
  int on = -1;
  socklen_t len = sizeof on;
  getsockopt(f[1], SOL_SOCKET, SO_OOBINLINE, &on, &len);
  printf("accepted socket inherits SO_OOBINLINE: %d\n", on);
  out(f[0], "hello", MSG_OOB);
  out(f[0], "world", 0);
  expect("state", state(f[1]), "atmark 0 inq 10 IN PRI");
  expect("recv 10", in(f[1], 10, 0), "4 [hell]");
  expect("at the mark", state(f[1]), "atmark 1 inq 6 IN PRI");
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "EINVAL");
  expect("recv 10 reads the urgent byte", in(f[1], 10, 0), "6 [oworld]");
  expect("after", state(f[1]), "atmark 0 inq 0");
  done(f);
  connection(f, 0);
  out(f[0], "x", MSG_OOB);
  on = 1;
  setsockopt(f[1], SOL_SOCKET, SO_OOBINLINE, &on, sizeof on);
  expect("set when the byte came: state", state(f[1]), "atmark 1 inq 1 IN PRI");
  expect("recv", in(f[1], 10, 0), "1 [x]");
  on = 0;
  setsockopt(f[1], SOL_SOCKET, SO_OOBINLINE, &on, sizeof on);
  out(f[0], "yz", MSG_OOB);
  expect("cleared again: MSG_OOB", in(f[1], 1, MSG_OOB), "1 [z]");
  expect("recv", in(f[1], 10, 0), "1 [y]");
  done(f);

  puts("-- recvmsg's flags");
  connection(f, 0);
  out(f[0], "ab", MSG_OOB);
  char c = 0;
  struct iovec iov = {&c, 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  long r = recvmsg(f[1], &m, MSG_OOB | MSG_PEEK);
  printf("MSG_OOB|MSG_PEEK: %ld [%c] msg_flags %#x\n", r, c, m.msg_flags);
  check("msg_flags has MSG_OOB", r == 1 && c == 'b' && m.msg_flags == MSG_OOB);
  iov.iov_len = 0;
  m.msg_flags = 0;
  r = recvmsg(f[1], &m, MSG_OOB);
  printf("MSG_OOB into 0 bytes: %ld msg_flags %#x\n", r, m.msg_flags);
  errno = 0;
  r = recv(f[1], &c, 1, MSG_OOB);
  printf("then MSG_OOB: %ld %s\n", r, errname(errno));
  done(f);

  puts("-- without a connection, a listener, an empty send, EOF");
  int s = socket(AF_INET, SOCK_STREAM, 0);
  errno = 0;
  r = recv(s, &c, 1, MSG_OOB);
  printf("unconnected recv MSG_OOB: %ld %s\n", r, errname(errno));
  errno = 0;
  r = send(s, "a", 1, MSG_OOB | MSG_NOSIGNAL);
  printf("unconnected send MSG_OOB: %ld %s\n", r, errname(errno));
  int mark = -1;
  errno = 0;
  r = ioctl(s, SIOCATMARK, &mark);
  printf("unconnected SIOCATMARK: %ld %s %d\n", r, errname(errno), mark);
  listen(s, 1);
  errno = 0;
  r = recv(s, &c, 1, MSG_OOB);
  printf("listener recv MSG_OOB: %ld %s\n", r, errname(errno));
  mark = -1;
  errno = 0;
  r = ioctl(s, SIOCATMARK, &mark);
  printf("listener SIOCATMARK: %ld %s %d\n", r, errname(errno), mark);
  close(s);
  connection(f, 0);
  errno = 0;
  r = send(f[0], "", 0, MSG_OOB);
  printf("empty send MSG_OOB: %ld %s\n", r, errname(errno));
  out(f[0], "ab", 0);
  r = send(f[0], "", 0, MSG_OOB);
  expect("after an empty MSG_OOB", state(f[1]), "atmark 0 inq 2 IN");
  expect("recv", in(f[1], 10, 0), "2 [ab]");
  out(f[0], "x", MSG_OOB);
  shutdown(f[0], SHUT_WR);
  expect("urgent byte then EOF: recv", in(f[1], 10, 0), "0 []");
  expect("MSG_OOB", in(f[1], 10, MSG_OOB), "EINVAL");
  done(f);

  oob_readiness(plain_connection);

  puts("-- SIGURG");
  sigset_t urg;
  sigemptyset(&urg);
  sigaddset(&urg, SIGURG);
  sigprocmask(SIG_BLOCK, &urg, 0);
  connection(f, 0);
  out(f[0], "a", MSG_OOB);
  check("no owner: no SIGURG", !urg_pending());
  printf("F_SETOWN: %d\n", fcntl(f[1], F_SETOWN, getpid()));
  printf("F_GETOWN is us: %d\n", fcntl(f[1], F_GETOWN) == getpid());
  out(f[0], "b", 0);
  check("plain data: no SIGURG", !urg_pending());
  out(f[0], "c", MSG_OOB);
  check("urgent data: SIGURG pending", urg_pending());
  siginfo_t si;
  struct timespec now = {0, 0};
  r = sigtimedwait(&urg, &si, &now);
  printf("sigtimedwait: %s si_code %#x\n", r == SIGURG ? "SIGURG" : "other", si.si_code);
  check("the sender's own end has no owner: no SIGURG", (out(f[1], "d", MSG_OOB), !urg_pending()));
  done(f);
  connection(f, 0);
  struct sigaction sa = {.sa_handler = on_urg};
  sigaction(SIGURG, &sa, 0);
  struct f_owner_ex owner = {F_OWNER_TID, gettid()};
  printf("F_SETOWN_EX: %d\n", fcntl(f[1], F_SETOWN_EX, &owner));
  sigprocmask(SIG_UNBLOCK, &urg, 0);
  out(f[0], "ef", MSG_OOB);
  printf("handler ran: %d\n", urgs);
  check("SIGURG handled once", urgs == 1);
  out(f[0], "gh", MSG_OOB);
  check("each urgent send signals", urgs == 2);
  expect("the last mark", in(f[1], 10, 0), "3 [efg]");
  owner.pid = 0;
  fcntl(f[1], F_SETOWN_EX, &owner);
  out(f[0], "i", MSG_OOB);
  check("owner cleared: no more", urgs == 2);
  done(f);

  puts("-- other sockets");
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(u, (struct sockaddr *)&a, sizeof a);
  socklen_t alen = sizeof a;
  getsockname(u, (struct sockaddr *)&a, &alen);
  errno = 0;
  r = sendto(u, "o", 1, MSG_OOB, (struct sockaddr *)&a, sizeof a);
  printf("UDP send MSG_OOB: %ld %s\n", r, errname(errno));
  errno = 0;
  r = recv(u, &c, 1, MSG_OOB | MSG_DONTWAIT);
  printf("UDP recv MSG_OOB: %ld %s\n", r, errname(errno));
  close(u);
  int us[2];
  socketpair(AF_UNIX, SOCK_DGRAM, 0, us);
  errno = 0;
  r = send(us[0], "o", 1, MSG_OOB);
  printf("AF_UNIX datagram send MSG_OOB: %ld %s\n", r, errname(errno));
  errno = 0;
  r = recv(us[1], &c, 1, MSG_OOB | MSG_DONTWAIT);
  printf("AF_UNIX datagram recv MSG_OOB: %ld %s\n", r, errname(errno));

  printf("%d failures\n", failures);
  if (!failures) puts("all ok");
  return failures != 0;
}
