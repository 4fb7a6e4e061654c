/* unix_oob.c - out-of-band data on AF_UNIX stream sockets (Linux 5.15+,
 * CONFIG_AF_UNIX_OOB): send(MSG_OOB) queues its last byte as the OOB byte, a
 * new one replaces the old (which stays in the stream as plain data);
 * recv(MSG_OOB) takes it (EINVAL when there is none, it was taken, or
 * SO_OOBINLINE); reads stop at the mark (also where a taken byte was) and skip
 * the byte unless SO_OOBINLINE; SIOCATMARK, FIONREAD, POLLIN/POLLPRI, select's
 * exceptfds and EPOLLPRI; SIGURG to the receiver's owner; recvmsg's flags,
 * splice; MSG_OOB on seqpacket and datagram sockets. Prints what it sees, to
 * compare with a native run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "check.h"
#include "oob.h"
#include "scm.h"

/* A connected stream pair: fd[0] sends, fd[1] receives (non-blocking). */
static void pair(int fd[2]) {
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fd)) {
    perror("socketpair");
    exit(1);
  }
  fcntl(fd[1], F_SETFL, O_NONBLOCK);
}

/* SIOCATMARK and poll's POLLIN/POLLPRI, without FIONREAD, which Linux 6.18
 * leaves one too high after a read skipped an OOB byte (inq_len). */
static const char *mark(int fd) {
  static char line[128];
  int mark = -1;
  ioctl(fd, SIOCATMARK, &mark);
  struct pollfd p = {fd, POLLIN | POLLPRI, 0};
  poll(&p, 1, 0);
  snprintf(line, sizeof line, "atmark %d%s%s", mark, p.revents & POLLIN ? " IN" : "", p.revents & POLLPRI ? " PRI" : "");
  return line;
}

/* Sends `s` with file `fd` (SCM_RIGHTS). */
static void out_fd(int sock, const char *s, int fd, int flags) {
  long r = send_with_fd(sock, s, strlen(s), fd, flags);
  if (r != (long)strlen(s)) printf("sendmsg %s: %ld %s\n", s, r, errname(errno));
}

/* recvmsg of at most `len` bytes: "n [bytes] flags F fds N" or the errno;
 * the files it got are closed. */
static const char *oob_msg(int fd, int len, int flags) {
  static char line[128];
  char b[64] = {0}, c[CMSG_SPACE(4 * sizeof(int))];
  struct iovec io = {b, len};
  struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = c, .msg_controllen = sizeof c};
  errno = 0;
  long r = recvmsg(fd, &m, flags | MSG_DONTWAIT);
  if (r < 0) {
    snprintf(line, sizeof line, "%s", errname(errno));
    return line;
  }
  int fds = 0;
  for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
    if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
      for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++, fds++) {
        int got;
        memcpy(&got, CMSG_DATA(h) + i * sizeof(int), sizeof got);
        close(got);
      }
    }
  }
  snprintf(line, sizeof line, "%ld [%s] flags %#x fds %d", r, b, m.msg_flags, fds);
  return line;
}

int main(void) {
  int f[2];

  puts("-- reads stop at the mark, recv(MSG_OOB) takes the byte");
  pair(f);
  out(f[0], "hello", MSG_OOB);
  expect("before reading", state(f[1]), "atmark 0 inq 5 IN PRI");
  expect("recv 10", in(f[1], 10, 0), "4 [hell]");
  expect("at the mark", state(f[1]), "atmark 1 inq 1 IN PRI");
  expect("MSG_OOB|MSG_PEEK", in(f[1], 1, MSG_OOB | MSG_PEEK), "1 [o]");
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "1 [o]");
  expect("after MSG_OOB", state(f[1]), "atmark 1 inq 0 IN");
  expect("MSG_OOB again", in(f[1], 1, MSG_OOB), "EINVAL");
  out(f[0], "world", 0);
  expect("more data", state(f[1]), "atmark 1 inq 5 IN");
  expect("recv 10 goes on after the taken byte", in(f[1], 10, 0), "5 [world]");
  expect("past the mark", state(f[1]), "atmark 0 inq 0");
  done(f);

  puts("-- reading past an OOB byte not taken drops it");
  pair(f);
  out(f[0], "hello", MSG_OOB);
  out(f[0], "world", 0);
  expect("recv 10", in(f[1], 10, 0), "4 [hell]");
  expect("at the mark", state(f[1]), "atmark 1 inq 6 IN PRI");
  expect("MSG_PEEK at the mark", in(f[1], 10, MSG_PEEK), "5 [world]");
  expect("recv 10", in(f[1], 10, 0), "5 [world]");
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "EINVAL");
  expect("after", mark(f[1]), "atmark 0");
  done(f);

  puts("-- a taken byte still stops reads");
  pair(f);
  out(f[0], "ab", MSG_OOB);
  out(f[0], "cd", 0);
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "1 [b]");
  expect("state", state(f[1]), "atmark 0 inq 3 IN");
  expect("recv 10", in(f[1], 10, 0), "1 [a]");
  expect("at the mark", state(f[1]), "atmark 1 inq 2 IN");
  expect("MSG_PEEK", in(f[1], 10, MSG_PEEK), "2 [cd]");
  expect("recv 10", in(f[1], 10, 0), "2 [cd]");
  done(f);

  puts("-- MSG_WAITALL stops at the mark too");
  pair(f);
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

  puts("-- only the OOB byte");
  pair(f);
  out(f[0], "x", MSG_OOB);
  expect("state", state(f[1]), "atmark 1 inq 1 IN PRI");
  expect("MSG_PEEK", in(f[1], 1, MSG_PEEK), "EAGAIN");
  expect("still there", state(f[1]), "atmark 1 inq 1 IN PRI");
  expect("recv drops it", in(f[1], 1, 0), "EAGAIN");
  expect("gone", mark(f[1]), "atmark 0");
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "EINVAL");
  done(f);
  pair(f);
  out(f[0], "x", MSG_OOB);
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "1 [x]");
  expect("taken", state(f[1]), "atmark 1 inq 0 IN");
  expect("recv", in(f[1], 1, 0), "EAGAIN");
  expect("after recv", state(f[1]), "atmark 0 inq 0");
  done(f);

  puts("-- a new OOB byte replaces the old one, which stays as data");
  pair(f);
  out(f[0], "hello", MSG_OOB);
  out(f[0], "wor", MSG_OOB);
  out(f[0], "ld", 0);
  expect("state", state(f[1]), "atmark 0 inq 10 IN PRI");
  expect("recv 10", in(f[1], 10, 0), "7 [hellowo]");
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "1 [r]");
  expect("recv 10", in(f[1], 10, 0), "2 [ld]");
  done(f);

  puts("-- a new OOB byte while the reader is at the old one");
  pair(f);
  out(f[0], "x", MSG_OOB);
  out(f[0], "y", MSG_OOB);
  expect("state", state(f[1]), "atmark 0 inq 2 IN PRI");
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "1 [y]");
  expect("recv", in(f[1], 10, 0), "1 [x]");
  expect("recv", in(f[1], 10, 0), "EAGAIN");
  done(f);

  puts("-- a new OOB byte after the old one was taken");
  pair(f);
  out(f[0], "hello", MSG_OOB);
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "1 [o]");
  out(f[0], "wor", MSG_OOB);
  expect("state", state(f[1]), "atmark 0 inq 7 IN PRI");
  expect("recv 10 passes the taken byte", in(f[1], 10, 0), "6 [hellwo]");
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "1 [r]");
  out(f[0], "ld", MSG_OOB);
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "1 [d]");
  expect("state", state(f[1]), "atmark 1 inq 1 IN");
  expect("recv 10", in(f[1], 10, 0), "1 [l]");
  expect("at the taken byte", state(f[1]), "atmark 1 inq 0 IN");
  expect("recv 10", in(f[1], 10, 0), "EAGAIN");
  done(f);

  puts("-- SO_OOBINLINE");
  pair(f);
  int on = 1;
  setsockopt(f[1], SOL_SOCKET, SO_OOBINLINE, &on, sizeof on);
  on = -1;
  socklen_t len = sizeof on;
  getsockopt(f[1], SOL_SOCKET, SO_OOBINLINE, &on, &len);
  printf("SO_OOBINLINE: %d\n", on);
  out(f[0], "hello", MSG_OOB);
  out(f[0], "world", 0);
  expect("state", state(f[1]), "atmark 0 inq 10 IN PRI");
  expect("recv 10", in(f[1], 10, 0), "4 [hell]");
  expect("at the mark", state(f[1]), "atmark 1 inq 6 IN PRI");
  expect("MSG_OOB", in(f[1], 1, MSG_OOB), "EINVAL");
  expect("recv 10 reads the OOB byte", in(f[1], 10, 0), "6 [oworld]");
  expect("after", state(f[1]), "atmark 0 inq 0");
  done(f);
  pair(f);
  out(f[0], "x", MSG_OOB);
  on = 1;
  setsockopt(f[1], SOL_SOCKET, SO_OOBINLINE, &on, sizeof on);
  expect("set when the byte came: state", state(f[1]), "atmark 1 inq 1 IN PRI");
  expect("MSG_PEEK", in(f[1], 10, MSG_PEEK), "1 [x]");
  expect("recv", in(f[1], 10, 0), "1 [x]");
  on = 0;
  setsockopt(f[1], SOL_SOCKET, SO_OOBINLINE, &on, sizeof on);
  out(f[0], "yz", MSG_OOB);
  expect("cleared again: MSG_OOB", in(f[1], 1, MSG_OOB), "1 [z]");
  expect("recv", in(f[1], 10, 0), "1 [y]");
  done(f);

  puts("-- recvmsg's flags, read and splice");
  pair(f);
  out(f[0], "ab", MSG_OOB);
  char c = 0;
  struct iovec iov = {&c, 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  long r = recvmsg(f[1], &m, MSG_OOB | MSG_PEEK);
  printf("MSG_OOB|MSG_PEEK: %ld [%c] msg_flags %#x\n", r, c, m.msg_flags);
  check("msg_flags has MSG_OOB", r == 1 && c == 'b' && m.msg_flags == MSG_OOB);
  m.msg_flags = 0;
  c = 0;
  r = recvmsg(f[1], &m, MSG_OOB);
  printf("MSG_OOB: %ld [%c] msg_flags %#x\n", r, c, m.msg_flags);
  errno = 0;
  r = recv(f[1], &c, 1, MSG_OOB);
  printf("then MSG_OOB: %ld %s\n", r, errname(errno));
  done(f);
  pair(f);
  out(f[0], "hello", MSG_OOB);
  out(f[0], "world", 0);
  char b[16] = {0};
  r = read(f[1], b, sizeof b);
  printf("read: %ld [%s]\n", r, r > 0 ? b : "");
  check("read stops at the mark", r == 4);
  memset(b, 0, sizeof b);
  r = read(f[1], b, sizeof b);
  printf("read: %ld [%s]\n", r, r > 0 ? b : "");
  check("read skips the OOB byte", r == 5 && !memcmp(b, "world", 5));
  done(f);
  pair(f);
  int p[2];
  pipe2(p, O_NONBLOCK);
  out(f[0], "hello", MSG_OOB);
  out(f[0], "world", 0);
  for (int i = 0; i < 3; i++) {
    errno = 0;
    r = splice(f[1], 0, p[1], 0, 64, SPLICE_F_NONBLOCK);
    printf("splice: %ld %s\n", r, errname(errno));
  }
  memset(b, 0, sizeof b);
  r = read(p[0], b, sizeof b);
  printf("spliced: %ld [%s]\n", r, r > 0 ? b : "");
  check("splice skips the OOB byte", r == 9 && !memcmp(b, "hellworld", 9));
  close(p[0]);
  close(p[1]);
  done(f);

  puts("-- without a connection, a listener, an empty send, EOF");
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
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
  struct sockaddr_un sa_un = {.sun_family = AF_UNIX};
  bind(s, (struct sockaddr *)&sa_un, sizeof(sa_family_t));
  listen(s, 1);
  errno = 0;
  r = recv(s, &c, 1, MSG_OOB);
  printf("listener recv MSG_OOB: %ld %s\n", r, errname(errno));
  mark = -1;
  errno = 0;
  r = ioctl(s, SIOCATMARK, &mark);
  printf("listener SIOCATMARK: %ld %s %d\n", r, errname(errno), mark);
  close(s);
  pair(f);
  errno = 0;
  r = send(f[0], "", 0, MSG_OOB);
  printf("empty send MSG_OOB: %ld %s\n", r, errname(errno));
  out(f[0], "ab", 0);
  expect("after an empty MSG_OOB", state(f[1]), "atmark 0 inq 2 IN");
  expect("recv", in(f[1], 10, 0), "2 [ab]");
  out(f[0], "x", MSG_OOB);
  shutdown(f[0], SHUT_WR);
  expect("OOB byte then EOF: recv", in(f[1], 10, 0), "0 []");
  expect("MSG_OOB", in(f[1], 10, MSG_OOB), "EINVAL");
  done(f);
  pair(f);
  close(f[1]);
  errno = 0;
  r = send(f[0], "ab", 2, MSG_OOB | MSG_NOSIGNAL);
  printf("send MSG_OOB to a closed peer: %ld %s\n", r, errname(errno));
  close(f[0]);

  oob_readiness(pair);

  puts("-- SIGURG");
  sigset_t urg;
  sigemptyset(&urg);
  sigaddset(&urg, SIGURG);
  sigprocmask(SIG_BLOCK, &urg, 0);
  pair(f);
  out(f[0], "a", MSG_OOB);
  check("no owner: no SIGURG", !urg_pending());
  printf("F_SETOWN: %d\n", fcntl(f[1], F_SETOWN, getpid()));
  out(f[0], "b", 0);
  check("plain data: no SIGURG", !urg_pending());
  out(f[0], "c", MSG_OOB);
  check("OOB data: SIGURG pending", urg_pending());
  siginfo_t si;
  struct timespec now = {0, 0};
  r = sigtimedwait(&urg, &si, &now);
  printf("sigtimedwait: %s si_code %#x\n", r == SIGURG ? "SIGURG" : "other", si.si_code);
  check("the sender's own end has no owner: no SIGURG", (out(f[1], "d", MSG_OOB), !urg_pending()));
  done(f);
  pair(f);
  struct sigaction sa = {.sa_handler = on_urg};
  sigaction(SIGURG, &sa, 0);
  printf("F_SETOWN: %d\n", fcntl(f[1], F_SETOWN, getpid()));
  sigprocmask(SIG_UNBLOCK, &urg, 0);
  out(f[0], "ef", MSG_OOB);
  printf("handler ran: %d\n", urgs);
  check("SIGURG handled once", urgs == 1);
  out(f[0], "gh", MSG_OOB);
  check("each OOB send signals", urgs == 2);
  expect("up to the last mark", in(f[1], 10, 0), "3 [efg]");
  done(f);

  puts("-- recv(MSG_OOB) into no room counts the byte");
  pair(f);
  out(f[0], "x", MSG_OOB);
  expect("0 bytes, MSG_OOB|MSG_PEEK", oob_msg(f[1], 0, MSG_OOB | MSG_PEEK), "1 [] flags 0x1 fds 0");
  expect("0 bytes, MSG_OOB", oob_msg(f[1], 0, MSG_OOB), "1 [] flags 0x1 fds 0");
  expect("taken", oob_msg(f[1], 1, MSG_OOB), "EINVAL");
  expect("0 bytes, none pending", oob_msg(f[1], 0, MSG_OOB), "EINVAL");
  done(f);

  puts("-- OOB bytes with files");
  pair(f);
  pipe(p);
  out_fd(f[0], "ab", p[0], MSG_OOB);
  expect("the files come with the bytes before", oob_msg(f[1], 8, 0), "1 [a] flags 0 fds 1");
  expect("not with the OOB byte", oob_msg(f[1], 8, MSG_OOB), "1 [b] flags 0x1 fds 0");
  out_fd(f[0], "c", p[0], MSG_OOB);
  expect("an OOB byte alone: no files with it", oob_msg(f[1], 8, MSG_OOB), "1 [c] flags 0x1 fds 0");
  expect("nor after it", oob_msg(f[1], 8, 0), "EAGAIN");
  out_fd(f[0], "d", p[0], MSG_OOB);
  out(f[0], "e", 0);
  expect("a read skips the OOB byte and its files", oob_msg(f[1], 8, 0), "1 [e] flags 0 fds 0");
  expect("which is gone", oob_msg(f[1], 8, MSG_OOB), "EINVAL");
  int one = 1;
  setsockopt(f[1], SOL_SOCKET, SO_OOBINLINE, &one, sizeof one);
  out_fd(f[0], "g", p[0], MSG_OOB);
  expect("inline, the OOB byte brings them", oob_msg(f[1], 8, 0), "1 [g] flags 0 fds 1");
  done(f);
  close(p[0]);
  signal(SIGPIPE, SIG_IGN);
  errno = 0;
  r = write(p[1], "z", 1);
  printf("the files went with the sockets: %ld %s\n", r, errname(errno));
  close(p[1]);

  puts("-- other AF_UNIX sockets");
  int kinds[] = {SOCK_SEQPACKET, SOCK_DGRAM};
  for (int i = 0; i < 2; i++) {
    int us[2];
    socketpair(AF_UNIX, kinds[i], 0, us);
    errno = 0;
    r = send(us[0], "o", 1, MSG_OOB);
    printf("%s send MSG_OOB: %ld %s\n", i ? "datagram" : "seqpacket", r, errname(errno));
    out(us[0], "p", 0);
    errno = 0;
    r = recv(us[1], &c, 1, MSG_OOB | MSG_DONTWAIT);
    printf("%s recv MSG_OOB: %ld %s\n", i ? "datagram" : "seqpacket", r, errname(errno));
    mark = -1;
    errno = 0;
    r = ioctl(us[1], SIOCATMARK, &mark);
    printf("%s SIOCATMARK: %ld %s %d\n", i ? "datagram" : "seqpacket", r, errname(errno), mark);
    close(us[0]);
    close(us[1]);
  }

  printf("%d failures\n", failures);
  if (!failures) puts("all ok");
  return failures != 0;
}
