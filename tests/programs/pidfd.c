// pidfds: pidfd_open, poll and epoll readiness (readable once the process has
// exited, hung up once reaped), pidfd_send_signal, waitid(P_PIDFD) (EAGAIN on a
// nonblocking pidfd), clone3's and clone's CLONE_PIDFD, pidfd_getfd, fdinfo, and
// the errors. Children block on pipes; nothing sleeps.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static void show(const char *what, long r) {
    int e = errno;
    if (r < 0)
        printf("%s: -1 %s\n", what, strerror(e));
    else
        printf("%s: %ld\n", what, r);
}

static int pidfd_open(pid_t pid, unsigned flags) { return syscall(SYS_pidfd_open, pid, flags); }
static int pidfd_send_signal(int fd, int sig, siginfo_t *info, unsigned flags) { return syscall(SYS_pidfd_send_signal, fd, sig, info, flags); }
static int pidfd_getfd(int fd, int target, unsigned flags) { return syscall(SYS_pidfd_getfd, fd, target, flags); }

static short polled(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

static void fdinfo_pid(int fd) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    int f = open(path, O_RDONLY);
    int n = read(f, buf, sizeof buf - 1);
    close(f);
    buf[n > 0 ? n : 0] = 0;
    char *p = strstr(buf, "Pid:");
    printf("fdinfo Pid line: %s\n", p ? (p[5] == '-' ? "-1" : "the child's") : "missing");
}

/* A child that waits for EOF on a pipe, then exits with `code`. */
static pid_t blocked_child(int *release, int code) {
    int p[2];
    pipe(p);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char b;
        close(p[1]);
        read(p[0], &b, 1);
        _exit(code);
    }
    close(p[0]);
    *release = p[1];
    return c;
}

/* A thread that reports its id, then waits for EOF. */
static void *idle(void *arg) {
    int *p = arg;
    pid_t me = gettid();
    char b;
    write(p[1], &me, sizeof me);
    read(p[2], &b, 1);
    return NULL;
}

int main(void) {
    int release;
    pid_t c = blocked_child(&release, 0);
    int fd = pidfd_open(c, 0);
    printf("pidfd_open: %s, close-on-exec: %s\n", fd >= 0 ? "ok" : strerror(errno), fcntl(fd, F_GETFD) == FD_CLOEXEC ? "yes" : "no");
    printf("running child: poll 0x%x\n", polled(fd));
    fdinfo_pid(fd);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    struct epoll_event got;
    show("epoll_wait before the exit", epoll_wait(ep, &got, 1, 0));
    show("pidfd_send_signal SIGTERM", pidfd_send_signal(fd, SIGTERM, NULL, 0));
    show("epoll_wait after", epoll_wait(ep, &got, 1, -1));
    printf("epoll data %u events 0x%x\n", got.data.u32, got.events);
    printf("exited child: poll 0x%x\n", polled(fd));
    siginfo_t si = {0};
    show("waitid(P_PIDFD)", waitid(P_PIDFD, fd, &si, WEXITED));
    printf("waitid: pid is the child's: %s, code %s, status %d\n", si.si_pid == c ? "yes" : "no", si.si_code == CLD_KILLED ? "CLD_KILLED" : "other", si.si_status);
    printf("reaped child: poll 0x%x\n", polled(fd));
    fdinfo_pid(fd);
    show("pidfd_send_signal to a reaped process", pidfd_send_signal(fd, SIGTERM, NULL, 0));
    show("waitid(P_PIDFD) on a reaped process", waitid(P_PIDFD, fd, &si, WEXITED));
    close(release);
    close(fd);

    show("pidfd_open(0)", pidfd_open(0, 0));
    show("pidfd_open(no such pid)", pidfd_open(4000000, 0));
    show("pidfd_open(bad flags)", pidfd_open(getpid(), 1));
    int tp[4];
    pipe(tp);
    pipe(tp + 2);
    pthread_t th;
    pthread_create(&th, NULL, idle, tp);
    pid_t tid = 0;
    read(tp[0], &tid, sizeof tid);
    /* EINVAL until Linux 6.9 (where PIDFD_THREAD came), ENOENT in later ones. */
    int tfd = pidfd_open(tid, 0);
    printf("pidfd_open(a thread that is not the leader) refused: %s\n", tfd == -1 && (errno == EINVAL || errno == ENOENT) ? "yes" : "no");
    close(tp[3]);
    pthread_join(th, NULL);

    c = blocked_child(&release, 3);
    fd = pidfd_open(c, PIDFD_NONBLOCK);
    show("waitid on a nonblocking pidfd of a running child", waitid(P_PIDFD, fd, &si, WEXITED));
    si.si_pid = 0;
    show("the same with WNOHANG", waitid(P_PIDFD, fd, &si, WEXITED | WNOHANG));
    printf("WNOHANG found nothing: %s\n", si.si_pid == 0 ? "yes" : "no");
    siginfo_t q = {0};
    q.si_signo = SIGUSR1;
    q.si_code = SI_QUEUE;
    q.si_pid = getpid();
    q.si_uid = getuid();
    siginfo_t forged = q;
    forged.si_code = SI_USER;
    show("pidfd_send_signal with a forged SI_USER", pidfd_send_signal(fd, SIGUSR1, &forged, 0));
    show("pidfd_send_signal with another signal in the info", pidfd_send_signal(fd, SIGUSR2, &q, 0));
    show("pidfd_send_signal with unknown flags", pidfd_send_signal(fd, 0, NULL, 0x10));
    show("pidfd_send_signal(0)", pidfd_send_signal(fd, 0, NULL, 0));
    show("pidfd_send_signal on a pipe", pidfd_send_signal(release, SIGTERM, NULL, 0));
    show("waitid(P_PIDFD) on a pipe", waitid(P_PIDFD, release, &si, WEXITED));
    close(release);
    /* Blocking until it has exited: poll, not a nonblocking waitid. */
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    poll(&pf, 1, -1);
    show("waitid on the nonblocking pidfd once it exited", waitid(P_PIDFD, fd, &si, WEXITED));
    printf("exit status %d\n", si.si_status);
    close(fd);

    /* pidfd_getfd: the child's copy of a pipe's write end. */
    int p[2], gate[2];
    pipe(p);
    pipe(gate);
    fflush(stdout);
    c = fork();
    if (c == 0) {
        char b;
        close(p[0]);
        close(gate[1]);
        read(gate[0], &b, 1);
        _exit(0);
    }
    close(gate[0]);
    fd = pidfd_open(c, 0);
    int wr = p[1];
    close(p[1]);
    int dup = pidfd_getfd(fd, wr, 0);
    printf("pidfd_getfd: %s, close-on-exec: %s\n", dup >= 0 ? "ok" : strerror(errno), fcntl(dup, F_GETFD) == FD_CLOEXEC ? "yes" : "no");
    write(dup, "via the child's fd", 18);
    char buf[32] = {0};
    read(p[0], buf, sizeof buf - 1);
    printf("read: %s\n", buf);
    show("pidfd_getfd of a closed fd", pidfd_getfd(fd, 1000, 0));
    show("pidfd_getfd with flags", pidfd_getfd(fd, wr, 1));
    close(gate[1]);
    waitid(P_PIDFD, fd, &si, WEXITED);
    close(fd);

    /* An open /proc/[pid] directory was a pidfd before pidfd_open. */
    c = blocked_child(&release, 0);
    char procdir[64];
    snprintf(procdir, sizeof procdir, "/proc/%d", c);
    int dfd = open(procdir, O_RDONLY | O_DIRECTORY);
    show("pidfd_send_signal SIGKILL through /proc/[pid]", pidfd_send_signal(dfd, SIGKILL, NULL, 0));
    int status;
    waitpid(c, &status, 0);
    printf("killed by signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    close(dfd);
    close(release);
    int sfd = open("/proc/self/status", O_RDONLY);
    show("pidfd_send_signal through /proc/self/status", pidfd_send_signal(sfd, 0, NULL, 0));
    close(sfd);

    /* clone3 with CLONE_PIDFD. */
    int cfd = -1;
    struct {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
    } args = {.flags = CLONE_PIDFD, .pidfd = (uintptr_t)&cfd, .exit_signal = SIGCHLD};
    fflush(stdout);
    long r = syscall(SYS_clone3, &args, sizeof args);
    if (r == 0)
        _exit(7);
    printf("clone3 CLONE_PIDFD: pidfd %s, close-on-exec: %s\n", cfd >= 0 ? "set" : "unset", fcntl(cfd, F_GETFD) == FD_CLOEXEC ? "yes" : "no");
    pf.fd = cfd;
    poll(&pf, 1, -1);
    printf("poll after its exit: 0x%x\n", pf.revents);
    si.si_status = 0;
    show("waitid(P_PIDFD)", waitid(P_PIDFD, cfd, &si, WEXITED));
    printf("exit status %d, pid matches: %s\n", si.si_status, si.si_pid == r ? "yes" : "no");
    close(cfd);
    show("clone with CLONE_PIDFD | CLONE_PARENT_SETTID", syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, &cfd, NULL, 0));
    return 0;
}
