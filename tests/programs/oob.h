// What the out-of-band data tests (tcp_oob.c, unix_oob.c) share: sends and
// receives that print what they got, the socket's mark state, and SIGURG counting.
// A test includes it after check.h and the socket headers.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>

static void done(int fd[2]) {
  close(fd[0]);
  close(fd[1]);
}

static void out(int fd, const char *s, int flags) {
  long r = send(fd, s, strlen(s), flags);
  if (r != (long)strlen(s)) printf("send %s: %ld %s\n", s, r, errname(errno));
}

/* A receive with `flags` of at most `len` bytes: "n [bytes]" or the errno. */
static const char *in(int fd, int len, int flags) {
  static char line[128];
  char b[64] = {0};
  errno = 0;
  long r = recv(fd, b, len, flags | MSG_DONTWAIT);
  int e = errno;
  if (r < 0)
    snprintf(line, sizeof line, "%s", errname(e));
  else
    snprintf(line, sizeof line, "%ld [%s]", r, b);
  return line;
}

/* SIOCATMARK, FIONREAD and poll's POLLIN/POLLPRI. */
static const char *state(int fd) {
  static char line[128];
  int mark = -1, inq = -1;
  ioctl(fd, SIOCATMARK, &mark);
  ioctl(fd, FIONREAD, &inq);
  struct pollfd p = {fd, POLLIN | POLLPRI, 0};
  poll(&p, 1, 0);
  snprintf(line, sizeof line, "atmark %d inq %d%s%s", mark, inq, p.revents & POLLIN ? " IN" : "", p.revents & POLLPRI ? " PRI" : "");
  return line;
}

/* Prints `what: got` and checks it is `want`. */
static void expect(const char *what, const char *got, const char *want) {
  char name[256];
  snprintf(name, sizeof name, "%s: %s (want %s)", what, got, want);
  check(name, strcmp(got, want) == 0);
}

static volatile sig_atomic_t urgs;
static void on_urg(int sig) {
  (void)sig;
  urgs++;
}

static int urg_pending(void) {
  sigset_t s;
  sigpending(&s);
  return sigismember(&s, SIGURG);
}

/* select's exceptfds and EPOLLPRI while an OOB byte is pending, and once it is
 * taken, on a connection `make` opens. */
static void oob_readiness(void (*make)(int fd[2])) {
  int f[2];
  long r;
  puts("-- select's exceptfds and EPOLLPRI");
  make(f);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLPRI | EPOLLET, .data.fd = f[1]};
  epoll_ctl(ep, EPOLL_CTL_ADD, f[1], &ev);
  struct timeval zero = {0, 0};
  fd_set rd, ex;
  FD_ZERO(&rd);
  FD_ZERO(&ex);
  FD_SET(f[1], &rd);
  FD_SET(f[1], &ex);
  r = select(f[1] + 1, &rd, 0, &ex, &zero);
  printf("nothing sent: select %ld read %d except %d\n", r, FD_ISSET(f[1], &rd), FD_ISSET(f[1], &ex));
  out(f[0], "ab", MSG_OOB);
  FD_SET(f[1], &rd);
  FD_SET(f[1], &ex);
  r = select(f[1] + 1, &rd, 0, &ex, &zero);
  printf("OOB data: select %ld read %d except %d\n", r, FD_ISSET(f[1], &rd), FD_ISSET(f[1], &ex));
  check("select: exceptional", r == 2 && FD_ISSET(f[1], &ex));
  struct epoll_event got = {0};
  r = epoll_wait(ep, &got, 1, 0);
  printf("epoll: %ld events %#x\n", r, got.events);
  check("epoll: EPOLLPRI", r == 1 && (got.events & EPOLLPRI));
  in(f[1], 1, MSG_OOB);
  FD_SET(f[1], &rd);
  FD_SET(f[1], &ex);
  r = select(f[1] + 1, &rd, 0, &ex, &zero);
  printf("taken: select %ld read %d except %d\n", r, FD_ISSET(f[1], &rd), FD_ISSET(f[1], &ex));
  check("select: not exceptional once taken", !FD_ISSET(f[1], &ex));
  r = epoll_wait(ep, &got, 1, 0);
  printf("epoll after: %ld\n", r);
  close(ep);
  done(f);
}
