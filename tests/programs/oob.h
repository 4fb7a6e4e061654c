// What the out-of-band data tests (tcp_oob.c, unix_oob.c) share: sends and
// receives that print what they got, the socket's mark state, and SIGURG counting.
// A test includes it after check.h and the socket headers.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
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
