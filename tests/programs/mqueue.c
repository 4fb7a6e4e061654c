/* POSIX message queues: attributes, priority order, sizes, a full queue with
 * O_NONBLOCK, timeouts, a receiver woken by a sender, poll readiness, mq_notify's
 * signal, names and permissions. Compared with the same run natively (which makes
 * real queues on the host, all unlinked at the end). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *res(long r) {
    static char buf[32];
    if (r >= 0) snprintf(buf, sizeof buf, "%ld", r);
    else snprintf(buf, sizeof buf, "%s", strerrorname_np(errno));
    return buf;
}

static volatile int notified, notified_code, notified_value;

static void on_usr1(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    notified++;
    notified_code = si->si_code;
    notified_value = si->si_value.sival_int;
}

static void receive(const char *what, mqd_t q, size_t len) {
    char buf[9000];
    unsigned prio = 0;
    ssize_t n = mq_receive(q, buf, len, &prio);
    if (n < 0) printf("%s: %s\n", what, strerrorname_np(errno));
    else printf("%s: \"%.*s\" priority %u\n", what, (int)n, buf, prio);
}

static struct timespec in_ms(int ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char name[64], small[64];
    snprintf(name, sizeof name, "/rvisor-mq-%d", getpid());
    snprintf(small, sizeof small, "/rvisor-mq-small-%d", getpid());
    mqd_t q = mq_open(name, O_CREAT | O_RDWR, 0600, NULL);
    printf("mq_open: %s\n", res(q));
    struct mq_attr a;
    mq_getattr(q, &a);
    printf("default attributes: flags %ld, maxmsg %ld, msgsize %ld, curmsgs %ld\n", a.mq_flags, a.mq_maxmsg, a.mq_msgsize, a.mq_curmsgs);

    mq_send(q, "low", 3, 1);
    mq_send(q, "high", 4, 9);
    mq_send(q, "mid", 3, 5);
    mq_send(q, "high again", 10, 9);
    mq_getattr(q, &a);
    printf("four sent: curmsgs %ld\n", a.mq_curmsgs);
    receive("first", q, 8192);
    receive("second", q, 8192);
    receive("third", q, 8192);
    receive("fourth", q, 8192);
    receive("a buffer smaller than msgsize", q, 100);
    char big[8193] = {0};
    printf("8193 bytes: %s\n", res(mq_send(q, big, 8193, 0)));
    printf("priority 32768: %s\n", res(mq_send(q, "x", 1, 32768)));

    /* A small queue: full, O_NONBLOCK, timeouts. */
    struct mq_attr want = {0, 2, 16, 0, {0}};
    mqd_t s = mq_open(small, O_CREAT | O_EXCL | O_RDWR, 0600, &want);
    mq_getattr(s, &a);
    printf("asked attributes: maxmsg %ld, msgsize %ld\n", a.mq_maxmsg, a.mq_msgsize);
    struct pollfd pfd = {s, POLLIN | POLLOUT, 0};
    poll(&pfd, 1, 0);
    printf("empty: readable %d, writable %d\n", !!(pfd.revents & POLLIN), !!(pfd.revents & POLLOUT));
    mq_send(s, "one", 3, 0);
    mq_send(s, "two", 3, 0);
    poll(&pfd, 1, 0);
    printf("full: readable %d, writable %d\n", !!(pfd.revents & POLLIN), !!(pfd.revents & POLLOUT));
    struct timespec soon = in_ms(10);
    printf("send to a full queue, 10 ms: %s\n", res(mq_timedsend(s, "three", 5, 0, &soon)));
    struct mq_attr nb = {O_NONBLOCK, 0, 0, 0, {0}}, old;
    mq_setattr(s, &nb, &old);
    printf("O_NONBLOCK set (was %ld): send %s\n", old.mq_flags, res(mq_send(s, "three", 5, 0)));
    receive("take one", s, 16);
    receive("take the other", s, 16);
    receive("empty, O_NONBLOCK", s, 16);
    nb.mq_flags = 0;
    mq_setattr(s, &nb, NULL);
    soon = in_ms(10);
    char tiny[16];
    printf("receive from an empty queue, 10 ms: %s\n", res(mq_timedreceive(s, tiny, 16, NULL, &soon)));
    struct timespec bad = {0, 2000000000L};
    printf("a bad timeout: %s\n", res(mq_timedreceive(s, tiny, 16, NULL, &bad)));

    /* A receiver woken by another process's message. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) _exit(mq_send(s, "from the child", 14, 3) == 0 ? 0 : 1);
    receive("the child's message", s, 16);
    waitpid(c, NULL, 0);

    /* Notification: the first message into an empty queue signals. */
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    ev.sigev_value.sival_int = 42;
    printf("mq_notify: %s\n", res(mq_notify(s, &ev)));
    c = fork();
    if (c == 0) _exit(mq_notify(s, &ev) == -1 && errno == EBUSY ? 0 : 1);
    int st;
    waitpid(c, &st, 0);
    printf("another process registers: EBUSY %d\n", WEXITSTATUS(st) == 0);
    mq_send(s, "ping", 4, 0);
    printf("notified %d, si_code SI_MESGQ %d, value %d\n", notified, notified_code == SI_MESGQ, notified_value);
    mq_send(s, "pong", 4, 0);
    printf("a second message does not notify again: %d\n", notified);
    printf("unregister: %s\n", res(mq_notify(s, NULL)));
    receive("ping back", s, 16);
    receive("pong back", s, 16);

    /* Names, modes, permissions. */
    printf("O_CREAT|O_EXCL on an existing name: %s\n", res(mq_open(small, O_CREAT | O_EXCL | O_RDWR, 0600, NULL)));
    printf("no such queue: %s\n", res(mq_open("/rvisor-mq-nobody-made-this", O_RDONLY)));
    printf("a name with a slash inside: %s\n", res(mq_open("/a/b", O_CREAT | O_RDWR, 0600, NULL)));
    struct mq_attr zero = {0, 0, 16, 0, {0}};
    printf("maxmsg 0: %s\n", res(mq_open("/rvisor-mq-zero", O_CREAT | O_RDWR, 0600, &zero)));
    mqd_t wo = mq_open(name, O_WRONLY);
    printf("receive on a write-only descriptor: %s\n", res(mq_receive(wo, tiny, 8192, NULL)));
    int p[2];
    pipe(p);
    printf("send on a pipe: %s\n", res(mq_send(p[1], "x", 1, 0)));
    c = fork();
    if (c == 0) {
        if (setuid(65534) != 0) _exit(9);
        _exit(mq_open(name, O_RDONLY) == -1 && errno == EACCES ? 0 : 1);
    }
    waitpid(c, &st, 0);
    printf("another user opens a 0600 queue: EACCES %d\n", WEXITSTATUS(st) == 0);
    printf("mq_unlink: %s\n", res(mq_unlink(small)));
    printf("mq_unlink again: %s\n", res(mq_unlink(small)));
    printf("the open descriptor still works: %s\n", res(mq_send(s, "after", 5, 0)));
    char info[128] = {0};
    ssize_t n = read(s, info, sizeof info - 1);
    printf("read on the descriptor: %zd \"%s\"\n", n, info);
    mq_unlink(name);
    printf("all ok\n");
    return 0;
}
