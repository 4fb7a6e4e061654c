// epoll over pipes and eventfds: creation flags and errors; epoll_ctl's EEXIST, ENOENT,
// EINVAL, EBADF and ELOOP rules; level-triggered (reported again and again),
// edge-triggered (once per write), EPOLLONESHOT (once until EPOLL_CTL_MOD); EPOLLOUT on a
// pipe that fills and drains; EPOLLHUP and EPOLLERR; timeouts; maxevents and the order of
// ready items; closing a watched descriptor (and a dup of it); nested epoll sets and poll on
// an epoll descriptor; waits woken by a thread and by a child; epoll_pwait's signal mask,
// epoll_pwait2's timespec timeout, and EINTR even with SA_RESTART. Never sleeps to
// synchronize.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "check.h"

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *ev(uint32_t m) {
    static char b[8][96];
    static int i;
    char *s = b[i++ % 8];
    s[0] = 0;
    if (!m) return "0";
    if (m & EPOLLIN) strcat(s, "IN|");
    if (m & EPOLLPRI) strcat(s, "PRI|");
    if (m & EPOLLOUT) strcat(s, "OUT|");
    if (m & EPOLLERR) strcat(s, "ERR|");
    if (m & EPOLLHUP) strcat(s, "HUP|");
    if (m & EPOLLRDNORM) strcat(s, "RDNORM|");
    if (m & EPOLLWRNORM) strcat(s, "WRNORM|");
    if (m & EPOLLRDHUP) strcat(s, "RDHUP|");
    s[strlen(s) - 1] = 0;
    return s;
}

static int add(int ep, int fd, uint32_t events, uint64_t data) {
    struct epoll_event e = {.events = events, .data.u64 = data};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static int mod(int ep, int fd, uint32_t events, uint64_t data) {
    struct epoll_event e = {.events = events, .data.u64 = data};
    return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
}

/* epoll_wait with a zero timeout; prints what came back. */
static int show(int ep, const char *what, int max) {
    struct epoll_event evs[16];
    int n = epoll_wait(ep, evs, max, 0);
    printf("%s: %d", what, n);
    for (int i = 0; i < n; i++) printf(" [%llu %s]", (unsigned long long)evs[i].data.u64, ev(evs[i].events));
    printf("\n");
    return n;
}

#define T(expr)                                                                                                              \
    do {                                                                                                                      \
        errno = 0;                                                                                                            \
        long r_ = (long)(expr);                                                                                               \
        printf("%s = %ld %s\n", #expr, r_, r_ < 0 ? errname(errno) : "");                                                    \
    } while (0)

static void errors(void) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    printf("epoll_create1(0): FD_CLOEXEC %d, F_GETFL %#o\n", fcntl(ep, F_GETFD), fcntl(ep, F_GETFL));
    int ep2 = epoll_create1(EPOLL_CLOEXEC);
    printf("epoll_create1(EPOLL_CLOEXEC): FD_CLOEXEC %d\n", fcntl(ep2, F_GETFD));
    close(ep2);
    T(epoll_create1(1));
    T(epoll_create(0));
    T(epoll_create(-1));
    ep2 = epoll_create(1);
    printf("epoll_create(1) gives a descriptor: %s\n", ep2 >= 0 ? "yes" : "no");
    close(ep2);
    struct stat st;
    fstat(ep, &st);
    printf("fstat: mode %o\n", st.st_mode);
    char buf[8];
    T(read(ep, buf, 8));
    T(write(ep, buf, 8));

    struct epoll_event e = {.events = EPOLLIN};
    T(add(ep, p[0], EPOLLIN, 1));
    T(add(ep, p[0], EPOLLIN, 1));
    T(mod(ep, p[1], EPOLLOUT, 2));
    T(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL));
    T(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    T(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    T(epoll_ctl(ep, 7, p[0], &e));
    T(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &e));
    T(epoll_ctl(p[0], EPOLL_CTL_ADD, p[1], &e));
    T(epoll_ctl(999, EPOLL_CTL_ADD, p[1], &e));
    T(epoll_ctl(ep, EPOLL_CTL_ADD, 999, &e));
    T(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], NULL));
    T(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], (void *)8));
    T(add(ep, p[1], EPOLLOUT | EPOLLEXCLUSIVE, 3));
    T(mod(ep, p[1], EPOLLOUT | EPOLLEXCLUSIVE, 3));
    T(mod(ep, p[1], EPOLLOUT, 3));
    T(add(ep, p[0], EPOLLIN | EPOLLEXCLUSIVE | EPOLLPRI, 3));
    int reg = open("/proc/self/exe", O_RDONLY);
    T(add(ep, reg, EPOLLIN, 9));
    close(reg);
    struct epoll_event out[4];
    T(epoll_wait(ep, out, 0, 0));
    T(syscall(SYS_epoll_wait, ep, out, -1, 0));
    T(epoll_wait(p[0], out, 4, 0));
    T(epoll_wait(999, out, 4, 0));
    T(syscall(SYS_epoll_wait, ep, (void *)0xffffffffffff0000ull, 4, 0));
    T(syscall(SYS_epoll_wait, ep, (void *)8, 4, 0));
    T(syscall(SYS_epoll_pwait, ep, out, 4, 0, NULL, 8));
    sigset_t none;
    sigemptyset(&none);
    T(syscall(SYS_epoll_pwait, ep, out, 4, 0, &none, 4));
    close(ep);
    close(p[0]);
    close(p[1]);
}

static void triggers(void) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);

    /* Level-triggered. */
    add(ep, p[0], EPOLLIN, 10);
    show(ep, "LT, empty", 8);
    write(p[1], "ab", 2);
    show(ep, "LT, after a write", 8);
    show(ep, "LT, again without reading", 8);
    char c[8];
    read(p[0], c, 1);
    show(ep, "LT, after reading 1 of 2 bytes", 8);
    read(p[0], c, 1);
    show(ep, "LT, after reading the rest", 8);

    /* Edge-triggered: one event per write. */
    mod(ep, p[0], EPOLLIN | EPOLLET, 11);
    show(ep, "ET, empty", 8);
    write(p[1], "a", 1);
    show(ep, "ET, after a write", 8);
    show(ep, "ET, again", 8);
    write(p[1], "b", 1);
    show(ep, "ET, after a second write, nothing read", 8);
    read(p[0], c, 1);
    show(ep, "ET, after a partial read", 8);
    mod(ep, p[0], EPOLLIN | EPOLLET, 12);
    show(ep, "ET, after EPOLL_CTL_MOD with data in", 8);
    read(p[0], c, 8);

    /* One-shot. */
    mod(ep, p[0], EPOLLIN | EPOLLONESHOT, 13);
    write(p[1], "x", 1);
    show(ep, "ONESHOT, after a write", 8);
    show(ep, "ONESHOT, again", 8);
    write(p[1], "y", 1);
    show(ep, "ONESHOT, after another write", 8);
    errno = 0;
    int r = mod(ep, p[0], EPOLLIN | EPOLLONESHOT, 14);
    printf("ONESHOT: MOD to re-arm: %d\n", r);
    show(ep, "ONESHOT, re-armed", 8);
    read(p[0], c, 8);
    epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL);

    /* EPOLLOUT on the write end: a full pipe is not writable until a page is read. */
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    add(ep, p[1], EPOLLOUT | EPOLLET, 20);
    show(ep, "OUT ET, empty pipe", 8);
    show(ep, "OUT ET, again", 8);
    char page[4096] = {0};
    while (write(p[1], page, 1) == 1) {
    }
    show(ep, "OUT ET, full", 8);
    read(p[0], page, 1);
    show(ep, "OUT ET, 1 byte read", 8);
    read(p[0], page, 4095);
    show(ep, "OUT ET, a page read", 8);
    mod(ep, p[1], EPOLLOUT, 21);
    show(ep, "OUT LT", 8);
    epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL);

    /* EPOLLHUP and EPOLLERR, reported even when not asked for. */
    add(ep, p[0], EPOLLIN, 30);
    add(ep, p[1], 0, 31);
    show(ep, "data in, write end watched for nothing", 8);
    close(p[1]);
    show(ep, "write end closed (its item goes with it)", 8);
    epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL);
    int q[2];
    pipe(q);
    add(ep, q[1], EPOLLOUT, 32);
    close(q[0]);
    show(ep, "read end closed", 8);
    close(q[1]);
    close(p[0]);

    /* eventfd edge-triggered: every write is an edge, even of 0. */
    int e = eventfd(0, EFD_NONBLOCK);
    add(ep, e, EPOLLIN | EPOLLET, 40);
    show(ep, "eventfd ET, 0", 8);
    uint64_t one = 1;
    write(e, &one, 8);
    show(ep, "eventfd ET, +1", 8);
    show(ep, "eventfd ET, again", 8);
    uint64_t zero = 0;
    write(e, &zero, 8);
    show(ep, "eventfd ET, +0", 8);
    mod(ep, e, EPOLLIN | EPOLLOUT, 41);
    show(ep, "eventfd LT IN|OUT", 8);
    uint64_t v;
    read(e, &v, 8);
    show(ep, "eventfd LT after the read", 8);
    close(e);
    close(ep);
}

static void order_and_close(void) {
    int ep = epoll_create1(0);
    int p[4][2];
    for (int i = 0; i < 4; i++) {
        pipe(p[i]);
        add(ep, p[i][0], EPOLLIN, 100 + i);
    }
    write(p[2][1], "x", 1);
    write(p[0][1], "x", 1);
    write(p[3][1], "x", 1);
    show(ep, "three ready, maxevents 2", 2);
    show(ep, "again, maxevents 2", 2);
    show(ep, "again, maxevents 8", 8);

    /* Closing a watched descriptor removes it, unless a dup keeps the file open. */
    close(p[2][0]);
    show(ep, "after closing the first ready one", 8);
    int d = dup(p[0][0]);
    close(p[0][0]);
    show(ep, "after closing one that has a dup", 8);
    errno = 0;
    int r = epoll_ctl(ep, EPOLL_CTL_DEL, d, NULL);
    printf("EPOLL_CTL_DEL through the dup: %d %s\n", r, errname(errno));
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 200};
    r = epoll_ctl(ep, EPOLL_CTL_ADD, d, &e);
    printf("the dup added as its own item: %d\n", r);
    show(ep, "two items for the same pipe", 8);
    close(d);
    close(p[3][0]);
    show(ep, "after closing the rest", 8);
    for (int i = 0; i < 4; i++) close(p[i][1]);
    close(p[1][0]);

    /* Timeouts. */
    struct epoll_event out[4];
    double t0 = mono();
    r = epoll_wait(ep, out, 4, 10);
    double el = mono() - t0;
    printf("epoll_wait with nothing ready, 10 ms: %d\n", r);
    check("it waited at least 10 ms", el >= 0.010);
    struct timespec ts = {0, 10 * 1000000};
    t0 = mono();
    r = (int)syscall(SYS_epoll_pwait2, ep, out, 4, &ts, NULL, 8);
    el = mono() - t0;
    printf("epoll_pwait2, 10 ms: %d\n", r);
    check("it waited at least 10 ms", el >= 0.010);
    ts.tv_nsec = 1000000000;
    errno = 0;
    r = (int)syscall(SYS_epoll_pwait2, ep, out, 4, &ts, NULL, 8);
    printf("epoll_pwait2, tv_nsec 1e9: %d %s\n", r, errname(errno));
    close(ep);
}

static void nesting(void) {
    int inner = epoll_create1(0), outer = epoll_create1(0);
    int p[2];
    pipe(p);
    add(inner, p[0], EPOLLIN, 1);
    add(outer, inner, EPOLLIN, 2);
    struct pollfd pf = {inner, POLLIN, 0};
    poll(&pf, 1, 0);
    printf("nested: poll on the inner set, empty: %#x\n", pf.revents);
    show(outer, "nested: outer, empty", 8);
    write(p[1], "x", 1);
    poll(&pf, 1, 0);
    printf("nested: poll on the inner set with data: %#x\n", pf.revents);
    show(outer, "nested: outer with data", 8);
    show(inner, "nested: inner with data", 8);
    show(outer, "nested: outer again", 8);
    char c;
    read(p[0], &c, 1);
    show(outer, "nested: outer after reading", 8);

    /* Loops. */
    errno = 0;
    int r = add(inner, outer, EPOLLIN, 3);
    printf("nested: adding the outer set into the inner one: %d %s\n", r, errname(errno));
    int a = epoll_create1(0);
    add(a, outer, EPOLLIN, 4);
    errno = 0;
    r = add(inner, a, EPOLLIN, 5);
    printf("nested: a longer loop: %d %s\n", r, errname(errno));
    close(a);

    /* Depth: a chain of epoll sets, each added into the next. */
    int chain[8];
    for (int i = 0; i < 8; i++) chain[i] = epoll_create1(0);
    printf("nested: chain:");
    for (int i = 0; i < 7; i++) {
        errno = 0;
        r = add(chain[i + 1], chain[i], EPOLLIN, i);
        printf(" %d%s%s", r, r ? "/" : "", r ? errname(errno) : "");
    }
    printf("\n");
    /* Adding on top of a deep chain from above. */
    int top = epoll_create1(0), mid = epoll_create1(0);
    add(top, mid, EPOLLIN, 0);
    errno = 0;
    r = add(mid, chain[3], EPOLLIN, 0);
    printf("nested: a set under a parent, taking a 3-deep chain: %d %s\n", r, errname(errno));
    errno = 0;
    r = add(mid, chain[2], EPOLLIN, 0);
    printf("nested: the same with a 2-deep chain: %d %s\n", r, errname(errno));
    for (int i = 0; i < 8; i++) close(chain[i]);
    close(top);
    close(mid);

    /* An epoll set in a poll wait, woken by a thread's write. */
    close(inner);
    close(outer);
    close(p[0]);
    close(p[1]);
}

static int wake_fd;
static void *late_writer(void *arg) {
    (void)arg;
    write(wake_fd, "w", 1);
    return NULL;
}

static void wakeups(void) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    add(ep, p[0], EPOLLIN | EPOLLET, 7);
    wake_fd = p[1];
    pthread_t th;
    pthread_create(&th, NULL, late_writer, NULL);
    struct epoll_event out[2];
    int r = epoll_wait(ep, out, 2, -1);
    printf("epoll_wait woken by a thread: %d [%llu %s]\n", r, (unsigned long long)out[0].data.u64, ev(out[0].events));
    pthread_join(th, NULL);

    fflush(stdout);
    pid_t k = fork();
    if (k == 0) {
        write(p[1], "c", 1);
        _exit(0);
    }
    r = epoll_wait(ep, out, 2, -1);
    printf("epoll_wait woken by a child: %d [%llu %s]\n", r, (unsigned long long)out[0].data.u64, ev(out[0].events));
    waitpid(k, NULL, 0);

    /* The epoll set inside a poll() wait. */
    int outer_ep = epoll_create1(0);
    add(outer_ep, ep, EPOLLIN, 8);
    pthread_create(&th, NULL, late_writer, NULL);
    struct pollfd pf = {ep, POLLIN, 0};
    r = poll(&pf, 1, -1);
    printf("poll on an epoll set woken by a thread: %d %#x\n", r, pf.revents);
    pthread_join(th, NULL);
    r = epoll_wait(outer_ep, out, 2, -1);
    printf("the outer set saw it too: %d [%llu %s]\n", r, (unsigned long long)out[0].data.u64, ev(out[0].events));
    show(ep, "the inner set", 2);
    close(outer_ep);
    close(ep);
    close(p[0]);
    close(p[1]);
}

static atomic_int *shm;
static volatile sig_atomic_t usr1, saw_old_mask;

static void on_usr1(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    usr1++;
    saw_old_mask = sigismember(&uc->uc_sigmask, SIGUSR1);
}

static pid_t spammer(void) {
    atomic_store(&shm[0], 0);
    pid_t parent = getpid();
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        for (long i = 0; i < 20000000 && atomic_load(&shm[0]) == 0; i++) {
            kill(parent, SIGUSR1);
            sched_yield();
        }
        _exit(0);
    }
    return c;
}

static void stop(pid_t c) {
    atomic_store(&shm[0], 1);
    waitpid(c, NULL, 0);
}

static void signals(void) {
    shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    add(ep, p[0], EPOLLIN, 1);
    struct epoll_event out[2];

    pid_t k = spammer();
    errno = 0;
    int r = epoll_wait(ep, out, 2, -1);
    int e = errno;
    stop(k);
    printf("epoll_wait interrupted by a handler with SA_RESTART: %d %s\n", r, errname(e));
    check("the handler ran", usr1 > 0);

    sigset_t usr1set, none, cur;
    sigemptyset(&usr1set);
    sigaddset(&usr1set, SIGUSR1);
    sigemptyset(&none);
    sigprocmask(SIG_BLOCK, &usr1set, NULL);
    usr1 = 0;
    raise(SIGUSR1);
    errno = 0;
    r = epoll_pwait(ep, out, 2, -1, &none);
    e = errno;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("epoll_pwait letting a pending SIGUSR1 in: %d %s, handler ran %d\n", r, errname(e), (int)usr1);
    check("epoll_pwait: the handler's uc_sigmask is the old mask", saw_old_mask);
    check("epoll_pwait: the old mask is back", sigismember(&cur, SIGUSR1));

    usr1 = 0;
    raise(SIGUSR1);
    write(p[1], "x", 1);
    r = epoll_pwait(ep, out, 2, -1, &none);
    sigset_t pend;
    sigpending(&pend);
    printf("epoll_pwait ready at once: %d, handler ran %d, still pending %d\n", r, (int)usr1, sigismember(&pend, SIGUSR1));
    r = epoll_pwait(ep, out, 2, 0, &none);
    printf("epoll_pwait with zero timeout and SIGUSR1 let in: %d, handler ran %d\n", r, (int)usr1);
    sigprocmask(SIG_SETMASK, &none, NULL);
    close(ep);
    close(p[0]);
    close(p[1]);
    signal(SIGUSR1, SIG_DFL);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *only = argc > 1 ? argv[1] : "";
    if (!*only || !strcmp(only, "errors")) errors();
    if (!*only || !strcmp(only, "triggers")) triggers();
    if (!*only || !strcmp(only, "order")) order_and_close();
    if (!*only || !strcmp(only, "nesting")) nesting();
    if (!*only || !strcmp(only, "wakeups")) wakeups();
    if (!*only || !strcmp(only, "signals")) signals();
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("all ok\n");
    return 0;
}
