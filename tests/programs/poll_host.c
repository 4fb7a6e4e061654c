// poll, select and epoll over the host streams rvisor hands the sandbox (stdin, stdout and
// stderr are host pipes here), alone and mixed with pipes inside the sandbox: stdin's data
// and EOF (POLLHUP), stdout writable, a wait over a never-ready host descriptor (stderr
// asked for POLLIN) that a timeout ends or that another thread's write to a sandbox pipe
// wakes, and level- and edge-triggered epoll items for stdin. Run with "hello\n" on stdin.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *ev(unsigned m) {
    static char b[8][96];
    static int i;
    char *s = b[i++ % 8];
    s[0] = 0;
    if (!m) return "0";
    if (m & POLLIN) strcat(s, "IN|");
    if (m & POLLOUT) strcat(s, "OUT|");
    if (m & POLLERR) strcat(s, "ERR|");
    if (m & POLLHUP) strcat(s, "HUP|");
    if (m & POLLNVAL) strcat(s, "NVAL|");
    s[strlen(s) - 1] = 0;
    return s;
}

static int wake_fd;
static void *late_writer(void *arg) {
    (void)arg;
    write(wake_fd, "w", 1);
    return NULL;
}

static void show(int ep, const char *what) {
    struct epoll_event evs[4];
    int n = epoll_wait(ep, evs, 4, 0);
    printf("%s: %d", what, n);
    for (int i = 0; i < n; i++) printf(" [%llu %s]", (unsigned long long)evs[i].data.u64, ev(evs[i].events));
    printf("\n");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct pollfd in = {0, POLLIN, 0};
    int r = poll(&in, 1, -1);
    printf("stdin: poll until data: %d %s\n", r, ev(in.revents & POLLIN));
    struct pollfd out = {1, POLLOUT, 0};
    r = poll(&out, 1, -1);
    printf("stdout: %d %s\n", r, ev(out.revents));

    /* Level-triggered epoll item for stdin while it has data. */
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 0};
    r = epoll_ctl(ep, EPOLL_CTL_ADD, 0, &e);
    printf("epoll_ctl ADD stdin: %d\n", r);
    struct epoll_event got[4];
    r = epoll_wait(ep, got, 4, -1);
    printf("epoll_wait on stdin with data: %d %s\n", r, ev(got[0].events & EPOLLIN));

    char buf[64];
    size_t n = 0;
    ssize_t k;
    while ((k = read(0, buf + n, sizeof buf - 1 - n)) > 0) n += k;
    buf[n] = 0;
    printf("stdin: read \"%.*s\" then %zd\n", (int)(n ? n - 1 : 0), buf, k);
    r = poll(&in, 1, -1);
    printf("stdin at EOF: %d %s\n", r, ev(in.revents));
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(0, &rs);
    r = select(1, &rs, NULL, NULL, NULL);
    printf("select: stdin at EOF readable: %d %d\n", r, FD_ISSET(0, &rs));
    show(ep, "epoll LT, stdin at EOF");
    show(ep, "epoll LT, again");
    e.events = EPOLLIN | EPOLLET;
    e.data.u64 = 1;
    epoll_ctl(ep, EPOLL_CTL_MOD, 0, &e);
    show(ep, "epoll ET, stdin at EOF");
    show(ep, "epoll ET, again");
    epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);

    /* stderr is a pipe's write end: never readable. A wait on it times out... */
    struct pollfd er = {2, POLLIN, 0};
    double t0 = mono();
    r = poll(&er, 1, 20);
    double el = mono() - t0;
    printf("poll stderr for POLLIN, 20 ms: %d\n", r);
    check("it waited at least 20 ms", el >= 0.020);
    check("and less than 5 s", el < 5);

    /* ... or another thread's write to a sandbox pipe ends it. */
    int p[2];
    pipe(p);
    wake_fd = p[1];
    pthread_t th;
    pthread_create(&th, NULL, late_writer, NULL);
    struct pollfd mix[2] = {{2, POLLIN, 0}, {p[0], POLLIN, 0}};
    r = poll(mix, 2, -1);
    printf("poll [stderr for POLLIN, pipe] woken by a thread: %d %s %s\n", r, ev(mix[0].revents), ev(mix[1].revents));
    pthread_join(th, NULL);
    read(p[0], buf, 1);

    e.events = EPOLLIN;
    e.data.u64 = 2;
    epoll_ctl(ep, EPOLL_CTL_ADD, 2, &e);
    e.data.u64 = 3;
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e);
    t0 = mono();
    r = epoll_wait(ep, got, 4, 20);
    el = mono() - t0;
    printf("epoll_wait [stderr, pipe], 20 ms: %d\n", r);
    check("it waited at least 20 ms", el >= 0.020);
    pthread_create(&th, NULL, late_writer, NULL);
    r = epoll_wait(ep, got, 4, -1);
    printf("epoll_wait [stderr, pipe] woken by a thread: %d [%llu %s]\n", r, (unsigned long long)got[0].data.u64, ev(got[0].events));
    pthread_join(th, NULL);

    /* An epoll set with a host item, inside poll. */
    read(p[0], buf, 1);
    pthread_create(&th, NULL, late_writer, NULL);
    struct pollfd pe = {ep, POLLIN, 0};
    r = poll(&pe, 1, -1);
    printf("poll on that epoll set woken by a thread: %d %s\n", r, ev(pe.revents));
    pthread_join(th, NULL);

    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("all ok\n");
    return 0;
}
