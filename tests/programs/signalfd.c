// signalfd: blocked signals read as signalfd_siginfo records (sender, value,
// child status), several per read, poll/epoll readiness, a new mask on an
// existing fd, non-blocking reads, and the errors.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    check("signalfd", fd >= 0);
    struct signalfd_siginfo si[4];
    errno = 0;
    check("nothing pending: EAGAIN", read(fd, si, sizeof si) == -1 && errno == EAGAIN);
    struct pollfd p = {fd, POLLIN, 0};
    check("nothing pending: not readable", poll(&p, 1, 0) == 0);

    raise(SIGUSR1);
    check("a pending signal makes it readable", poll(&p, 1, 0) == 1 && (p.revents & POLLIN));
    union sigval v = {.sival_int = 42};
    sigqueue(getpid(), SIGUSR2, v);
    ssize_t n = read(fd, si, sizeof si);
    check("two signals in one read", n == 2 * (ssize_t)sizeof si[0]);
    check("SIGUSR1 from raise, with our pid", si[0].ssi_signo == SIGUSR1 && si[0].ssi_pid == (unsigned)getpid() && si[0].ssi_code == SI_TKILL);
    check("SIGUSR2 from sigqueue, with its value", si[1].ssi_signo == SIGUSR2 && si[1].ssi_code == SI_QUEUE && si[1].ssi_int == 42);
    errno = 0;
    check("a buffer smaller than a record is EINVAL", read(fd, si, sizeof si[0] - 1) == -1 && errno == EINVAL);

    pid_t c = fork();
    if (c == 0) _exit(7);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN}, got;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    check("epoll wakes for SIGCHLD", epoll_wait(ep, &got, 1, 5000) == 1);
    n = read(fd, si, sizeof si);
    check("SIGCHLD carries the child's pid and status", n == sizeof si[0] && si[0].ssi_signo == SIGCHLD && si[0].ssi_pid == (unsigned)c && si[0].ssi_status == 7 && si[0].ssi_code == CLD_EXITED);
    waitpid(c, NULL, 0);

    sigset_t only1;
    sigemptyset(&only1);
    sigaddset(&only1, SIGUSR1);
    check("a new mask on the same fd", signalfd(fd, &only1, 0) == fd);
    raise(SIGUSR2);
    errno = 0;
    check("a signal outside the mask is not read", read(fd, si, sizeof si) == -1 && errno == EAGAIN);
    sigset_t pending;
    sigpending(&pending);
    check("and stays pending", sigismember(&pending, SIGUSR2));
    errno = 0;
    check("a non-signalfd fd is EINVAL", signalfd(ep, &only1, 0) == -1 && errno == EINVAL);
    printf("%d failures\n", failures);
    return failures != 0;
}
