// poll, ppoll, select and pselect6 over pipes and eventfds: readiness (POLLIN, POLLOUT,
// POLLHUP, POLLERR, POLLNVAL), ignored negative descriptors, timeouts (a 10 ms timeout
// returns 0 after at least 10 ms; zero returns at once), the remaining time written back
// by select, pselect6 and ppoll, EINVAL and EBADF, waits woken by another thread and by a
// child, and the signal mask of ppoll and pselect6: the handler runs with the old mask in
// its frame, the mask is restored after, and a signal the old mask blocks is not taken
// when the call returns ready. Never sleeps to synchronize.
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
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
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

static const char *ev(int m) {
    static char b[8][96];
    static int i;
    char *s = b[i++ % 8];
    s[0] = 0;
    if (!m) return "0";
    if (m & POLLIN) strcat(s, "IN|");
    if (m & POLLPRI) strcat(s, "PRI|");
    if (m & POLLOUT) strcat(s, "OUT|");
    if (m & POLLERR) strcat(s, "ERR|");
    if (m & POLLHUP) strcat(s, "HUP|");
    if (m & POLLNVAL) strcat(s, "NVAL|");
    if (m & POLLRDNORM) strcat(s, "RDNORM|");
    if (m & POLLWRNORM) strcat(s, "WRNORM|");
    if (m & POLLRDHUP) strcat(s, "RDHUP|");
    s[strlen(s) - 1] = 0;
    return s;
}

static int poll1(int fd, short events) {
    struct pollfd p = {fd, events, 0};
    int r = poll(&p, 1, 0);
    return r < 0 ? -1 : p.revents;
}

static void readiness(void) {
    int p[2];
    pipe(p);
    printf("empty pipe: read end %s, write end %s\n", ev(poll1(p[0], POLLIN | POLLOUT)), ev(poll1(p[1], POLLIN | POLLOUT)));
    printf("empty pipe, all events asked: read end %s, write end %s\n", ev(poll1(p[0], 0x7fff)), ev(poll1(p[1], 0x7fff)));
    write(p[1], "x", 1);
    printf("with data: read end %s\n", ev(poll1(p[0], POLLIN | POLLRDNORM | POLLOUT)));
    printf("with data, only POLLOUT asked: read end %s\n", ev(poll1(p[0], POLLOUT)));
    close(p[1]);
    printf("writer closed, data left: read end %s\n", ev(poll1(p[0], POLLIN)));
    char c;
    read(p[0], &c, 1);
    printf("writer closed, empty: read end %s, with events 0: %s\n", ev(poll1(p[0], POLLIN)), ev(poll1(p[0], 0)));
    close(p[0]);
    pipe(p);
    close(p[0]);
    printf("reader closed: write end %s, with events 0: %s\n", ev(poll1(p[1], POLLOUT)), ev(poll1(p[1], 0)));
    close(p[1]);

    /* A full pipe is not writable; reading a whole page makes it so. */
    pipe2(p, O_NONBLOCK);
    char buf[4096] = {0};
    while (write(p[1], buf, 1) == 1) {
    }
    printf("full pipe: write end %s\n", ev(poll1(p[1], POLLOUT)));
    read(p[0], buf, 1);
    printf("full pipe after reading 1 byte: write end %s\n", ev(poll1(p[1], POLLOUT)));
    read(p[0], buf, 4095);
    printf("after reading a whole page: write end %s\n", ev(poll1(p[1], POLLOUT)));

    /* Bad and negative descriptors. */
    struct pollfd fds[4] = {{p[0], POLLIN, 0x55}, {-1, POLLIN, 0x55}, {999, POLLIN, 0x55}, {p[1], POLLOUT, 0x55}};
    int r = poll(fds, 4, 0);
    printf("poll [data, -1, 999 (closed), writable]: %d -> %s, %s, %s, %s\n", r, ev(fds[0].revents), ev(fds[1].revents),
           ev(fds[2].revents), ev(fds[3].revents));
    fds[0].fd = -5;
    fds[3].fd = -5;
    r = poll(fds, 4, 0);
    printf("the same with only 999 left: %d\n", r);
    r = poll(NULL, 0, 0);
    printf("poll of nothing, zero timeout: %d\n", r);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    errno = 0;
    r = poll(fds, rl.rlim_cur + 1, 0);
    printf("poll of RLIMIT_NOFILE+1 descriptors: %d %s\n", r, errname(errno));
    errno = 0;
    r = (int)syscall(SYS_poll, (void *)8, 1, 0);
    printf("poll of a bad array: %d %s\n", r, errname(errno));
    close(p[0]);
    close(p[1]);

    /* A regular file is always readable and writable. */
    int reg = open("/proc/self/exe", O_RDONLY);
    printf("regular file: %s\n", ev(poll1(reg, POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM | POLLPRI)));
    fd_set rs, ws;
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    FD_SET(reg, &rs);
    FD_SET(reg, &ws);
    struct timeval tv0 = {0, 0};
    printf("regular file in select: %d\n", select(reg + 1, &rs, &ws, NULL, &tv0));
    close(reg);

    /* eventfd. */
    int e = eventfd(0, 0);
    printf("eventfd at 0: %s; ", ev(poll1(e, POLLIN | POLLOUT)));
    uint64_t one = 1;
    write(e, &one, 8);
    printf("at 1: %s\n", ev(poll1(e, POLLIN | POLLOUT)));
    close(e);
}

static void timeouts(void) {
    int p[2];
    pipe(p);
    struct pollfd fd = {p[0], POLLIN, 0};
    double t0 = mono();
    int r = poll(&fd, 1, 10);
    double el = mono() - t0;
    printf("poll, empty pipe, 10 ms: %d\n", r);
    check("poll waited at least 10 ms", el >= 0.010);
    check("poll returned within 5 s", el < 5);
    t0 = mono();
    r = poll(&fd, 1, 0);
    printf("poll, zero timeout: %d\n", r);
    check("poll with zero timeout returned at once", mono() - t0 < 1);

    struct timespec ts = {0, 10 * 1000000};
    t0 = mono();
    r = (int)syscall(SYS_ppoll, &fd, 1, &ts, NULL, 8);
    el = mono() - t0;
    printf("ppoll, 10 ms: %d, time left %ld.%09ld\n", r, (long)ts.tv_sec, ts.tv_nsec);
    check("ppoll waited at least 10 ms", el >= 0.010);
    ts.tv_sec = 0;
    ts.tv_nsec = 1000000000;
    errno = 0;
    r = ppoll(&fd, 1, &ts, NULL);
    printf("ppoll, tv_nsec 1e9: %d %s\n", r, errname(errno));

    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {0, 10000};
    t0 = mono();
    r = (int)syscall(SYS_select, p[0] + 1, &rs, NULL, NULL, &tv);
    el = mono() - t0;
    printf("select, 10 ms: %d, set now %d, time left %ld.%06ld\n", r, FD_ISSET(p[0], &rs), (long)tv.tv_sec, (long)tv.tv_usec);
    check("select waited at least 10 ms", el >= 0.010);
    write(p[1], "x", 1);
    FD_SET(p[0], &rs);
    tv.tv_sec = 100;
    tv.tv_usec = 0;
    r = (int)syscall(SYS_select, p[0] + 1, &rs, NULL, NULL, &tv);
    printf("select, ready at once with 100 s: %d, set %d\n", r, FD_ISSET(p[0], &rs));
    check("select wrote back more than 99 s left", tv.tv_sec >= 99 && tv.tv_sec <= 100);
    tv.tv_sec = 0;
    tv.tv_usec = 2500000;
    r = (int)syscall(SYS_select, p[0] + 1, &rs, NULL, NULL, &tv);
    printf("select, tv_usec 2.5e6 (accepted: folded into seconds): %d\n", r);
    check("select with tv_usec 2.5e6 left about 2 s", tv.tv_sec == 2 && tv.tv_usec > 0);
    tv.tv_sec = -1;
    errno = 0;
    r = (int)syscall(SYS_select, p[0] + 1, &rs, NULL, NULL, &tv);
    printf("select, negative timeout: %d %s\n", r, errname(errno));
    struct timespec pts = {0, 10 * 1000000};
    FD_ZERO(&rs);
    FD_SET(p[1], &rs);
    fd_set ws;
    FD_ZERO(&ws);
    r = (int)syscall(SYS_pselect6, p[1] + 1, &ws, NULL, NULL, &pts, NULL);
    printf("pselect6 with empty sets, 10 ms: %d, time left %ld.%09ld\n", r, (long)pts.tv_sec, pts.tv_nsec);
    pts.tv_nsec = -1;
    errno = 0;
    r = (int)syscall(SYS_pselect6, p[1] + 1, &ws, NULL, NULL, &pts, NULL);
    printf("pselect6, negative tv_nsec: %d %s\n", r, errname(errno));
    close(p[0]);
    close(p[1]);
}

static void selects(void) {
    int a[2], b[2];
    pipe(a);
    pipe(b);
    write(b[1], "y", 1);
    fd_set r, w, x;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&x);
    FD_SET(a[0], &r);
    FD_SET(b[0], &r);
    FD_SET(a[1], &w);
    FD_SET(a[0], &x);
    FD_SET(b[0], &x);
    struct timeval tv = {0, 0};
    int n = select(b[1] + 1, &r, &w, &x, &tv);
    printf("select: %d; read a %d b %d, write a %d, except a %d b %d\n", n, FD_ISSET(a[0], &r), FD_ISSET(b[0], &r), FD_ISSET(a[1], &w),
           FD_ISSET(a[0], &x), FD_ISSET(b[0], &x));
    /* The same descriptor in read and write sets counts twice. */
    FD_ZERO(&r);
    FD_ZERO(&w);
    int e = eventfd(1, 0);
    FD_SET(e, &r);
    FD_SET(e, &w);
    n = select(e + 1, &r, &w, NULL, &tv);
    printf("select: an eventfd readable and writable counts %d\n", n);
    /* EOF is readable; a pipe without reader is writable (and an error). */
    close(a[1]);
    close(b[0]);
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(a[0], &r);
    FD_SET(b[1], &w);
    n = select(b[1] + 1, &r, &w, NULL, &tv);
    printf("select: at EOF readable %d; without reader writable %d; n %d\n", FD_ISSET(a[0], &r), FD_ISSET(b[1], &w), n);
    /* EBADF and EINVAL. */
    FD_ZERO(&r);
    FD_SET(900, &r);
    errno = 0;
    n = select(901, &r, NULL, NULL, &tv);
    printf("select of a closed descriptor: %d %s\n", n, errname(errno));
    errno = 0;
    n = select(-1, NULL, NULL, NULL, &tv);
    printf("select with nfds -1: %d %s\n", n, errname(errno));
    /* Descriptors at or above nfds are not looked at. */
    FD_ZERO(&r);
    FD_SET(a[0], &r);
    n = select(a[0], &r, NULL, NULL, &tv);
    printf("select with nfds == fd: %d\n", n);
    close(a[0]);
    close(b[1]);
    close(e);
}

/* ---- waits woken by others ---- */

static int wake_fd;
static void *late_writer(void *arg) {
    (void)arg;
    write(wake_fd, "w", 1);
    return NULL;
}

static void wakeups(void) {
    int p[2];
    pipe(p);
    wake_fd = p[1];
    pthread_t th;
    pthread_create(&th, NULL, late_writer, NULL);
    struct pollfd fd = {p[0], POLLIN, 0};
    int r = poll(&fd, 1, -1);
    printf("poll woken by a thread's write: %d %s\n", r, ev(fd.revents));
    pthread_join(th, NULL);
    char c;
    read(p[0], &c, 1);

    fflush(stdout);
    pid_t k = fork();
    if (k == 0) {
        write(p[1], "c", 1);
        _exit(0);
    }
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    r = select(p[0] + 1, &rs, NULL, NULL, NULL);
    printf("select woken by a child's write: %d %d\n", r, FD_ISSET(p[0], &rs));
    waitpid(k, NULL, 0);
    read(p[0], &c, 1);

    /* A child that exits closes its write end: POLLHUP wakes the parent. */
    int q[2];
    pipe(q);
    fflush(stdout);
    k = fork();
    if (k == 0) {
        close(q[0]);
        _exit(0);
    }
    close(q[1]);
    struct pollfd hf = {q[0], POLLIN, 0};
    r = poll(&hf, 1, -1);
    printf("poll woken by the last writer exiting: %d %s\n", r, ev(hf.revents));
    waitpid(k, NULL, 0);
    close(q[0]);
    close(p[0]);
    close(p[1]);
}

/* ---- signal masks ---- */

static atomic_int *shm; /* [0]: the spammer should stop; [1]: handler runs so far */

static volatile sig_atomic_t usr1, usr1_saw_old_mask, usr1_blocked_in_handler;

static void on_usr1(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    usr1++;
    usr1_saw_old_mask = sigismember(&uc->uc_sigmask, SIGUSR1) && sigismember(&uc->uc_sigmask, SIGUSR2);
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    usr1_blocked_in_handler = sigismember(&now, SIGUSR1);
    if (shm) atomic_fetch_add(&shm[1], 1);
}

/* A child that sends SIGUSR1 to us until shm[0] is set, one signal at a time: the next
 * only once the handler ran for the last, so that the parent always gets on between two
 * (a signal that lands before the parent sleeps is followed by another that wakes it). */
static pid_t spammer(void) {
    atomic_store(&shm[0], 0);
    pid_t parent = getpid();
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        while (atomic_load(&shm[0]) == 0) {
            int handled = atomic_load(&shm[1]);
            kill(parent, SIGUSR1);
            while (atomic_load(&shm[1]) == handled && atomic_load(&shm[0]) == 0) sched_yield();
        }
        _exit(0);
    }
    return c;
}

static void stop(pid_t c) {
    atomic_store(&shm[0], 1);
    waitpid(c, NULL, 0);
}

static void masks(void) {
    shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sigset_t none_set;
    sigemptyset(&none_set);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t both, only2, cur;
    sigemptyset(&both);
    sigaddset(&both, SIGUSR1);
    sigaddset(&both, SIGUSR2);
    sigemptyset(&only2);
    sigaddset(&only2, SIGUSR2);
    sigprocmask(SIG_SETMASK, &both, NULL);
    int p[2];
    pipe(p);

    /* SIGUSR1 pending and blocked; ppoll's mask lets it in: EINTR, handler ran. */
    raise(SIGUSR1);
    struct pollfd fd = {p[0], POLLIN, 0};
    errno = 0;
    int r = ppoll(&fd, 1, NULL, &only2);
    int e = errno;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("ppoll with SIGUSR1 let in: %d %s, handler ran %d\n", r, errname(e), (int)usr1);
    check("ppoll: the handler's uc_sigmask is the mask from before ppoll", usr1_saw_old_mask);
    check("ppoll: SIGUSR1 blocked inside the handler", usr1_blocked_in_handler);
    check("ppoll: the old mask is back after", sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGUSR2));

    /* Ready at once: the old mask comes back before any delivery. */
    usr1 = 0;
    raise(SIGUSR1);
    write(p[1], "x", 1);
    r = ppoll(&fd, 1, NULL, &only2);
    sigset_t pend;
    sigpending(&pend);
    printf("ppoll ready at once with SIGUSR1 let in: %d, handler ran %d, still pending %d\n", r, (int)usr1, sigismember(&pend, SIGUSR1));
    char c;
    read(p[0], &c, 1);

    /* The same with pselect. */
    usr1 = 0;
    usr1_saw_old_mask = 0;
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    errno = 0;
    r = pselect(p[0] + 1, &rs, NULL, NULL, NULL, &only2);
    e = errno;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("pselect with SIGUSR1 let in: %d %s, handler ran %d\n", r, errname(e), (int)usr1);
    check("pselect: the handler's uc_sigmask is the mask from before pselect", usr1_saw_old_mask);
    check("pselect: the old mask is back after", sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGUSR2));

    /* A timeout with the signal still blocked by the temporary mask. */
    usr1 = 0;
    raise(SIGUSR1);
    struct timespec ts = {0, 5 * 1000000};
    r = ppoll(&fd, 1, &ts, &both);
    printf("ppoll timing out with SIGUSR1 still blocked: %d, handler ran %d\n", r, (int)usr1);
    sigprocmask(SIG_SETMASK, &only2, NULL);
    printf("after unblocking: handler ran %d\n", (int)usr1);

    /* Bad sigsetsize. */
    errno = 0;
    r = (int)syscall(SYS_ppoll, &fd, 1, &ts, &only2, 4);
    printf("ppoll with sigsetsize 4: %d %s\n", r, errname(errno));

    /* poll and select are interrupted by a handled signal with EINTR, even with
     * SA_RESTART. */
    sigprocmask(SIG_SETMASK, &none_set, NULL);
    for (int restart = 0; restart < 2; restart++) {
        sa.sa_flags = SA_SIGINFO | (restart ? SA_RESTART : 0);
        sigaction(SIGUSR1, &sa, NULL);
        usr1 = 0;
        pid_t k = spammer();
        errno = 0;
        r = poll(&fd, 1, -1);
        e = errno;
        stop(k);
        printf("poll interrupted by a handler%s: %d %s\n", restart ? " with SA_RESTART" : "", r, errname(e));
        check("the handler ran", usr1 > 0);
        usr1 = 0;
        k = spammer();
        FD_ZERO(&rs);
        FD_SET(p[0], &rs);
        errno = 0;
        r = select(p[0] + 1, &rs, NULL, NULL, NULL);
        e = errno;
        stop(k);
        printf("select interrupted by a handler%s: %d %s\n", restart ? " with SA_RESTART" : "", r, errname(e));
        check("the handler ran", usr1 > 0);
    }
    close(p[0]);
    close(p[1]);
    signal(SIGUSR1, SIG_DFL);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *only = argc > 1 ? argv[1] : "";
    if (!*only || !strcmp(only, "readiness")) readiness();
    if (!*only || !strcmp(only, "timeouts")) timeouts();
    if (!*only || !strcmp(only, "select")) selects();
    if (!*only || !strcmp(only, "wakeups")) wakeups();
    if (!*only || !strcmp(only, "masks")) masks();
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("all ok\n");
    return 0;
}
