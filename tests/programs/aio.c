// Linux native AIO through raw syscalls (no libaio): io_setup's checks and the
// ring at the context's address, reads and writes (one buffer and vectored) and
// fsync through io_submit with their completions, what fails a submission and
// what becomes the event's result, a submission stopped by a bad request,
// io_getevents' min_nr, timeouts and signals, IOCB_FLAG_RESFD's eventfd,
// IOCB_CMD_POLL (at once, later, cancelled, left waiting), io_cancel, io_pgetevents, io_destroy, and a forked child, which has no
// contexts. Prints only what does not depend on timing.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void show(const char *what, long ret) {
    if (ret < 0)
        printf("%s: %ld %s\n", what, ret, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, ret);
}

static long setup(unsigned nr, aio_context_t *ctx) { return syscall(SYS_io_setup, nr, ctx); }
static long destroy(aio_context_t ctx) { return syscall(SYS_io_destroy, ctx); }
static long submit(aio_context_t ctx, long nr, struct iocb **iocbs) { return syscall(SYS_io_submit, ctx, nr, iocbs); }
static long cancel(aio_context_t ctx, struct iocb *iocb, struct io_event *ev) { return syscall(SYS_io_cancel, ctx, iocb, ev); }
static long getevents(aio_context_t ctx, long min, long nr, struct io_event *ev, struct timespec *ts) {
    return syscall(SYS_io_getevents, ctx, min, nr, ev, ts);
}

struct aio_sigset {
    const sigset_t *sigmask;
    size_t sigsetsize;
};

static long pgetevents(aio_context_t ctx, long min, long nr, struct io_event *ev, struct timespec *ts, struct aio_sigset *sig) {
    return syscall(SYS_io_pgetevents, ctx, min, nr, ev, ts, sig);
}

static struct iocb make(int op, int fd, void *buf, uint64_t nbytes, int64_t offset, uint64_t data) {
    struct iocb cb;
    memset(&cb, 0, sizeof cb);
    cb.aio_lio_opcode = op;
    cb.aio_fildes = fd;
    cb.aio_buf = (uint64_t)(uintptr_t)buf;
    cb.aio_nbytes = nbytes;
    cb.aio_offset = offset;
    cb.aio_data = data;
    return cb;
}

// Submits one request alone and shows the call's result.
static long submit_one(const char *what, aio_context_t ctx, struct iocb *cb) {
    struct iocb *list[1] = {cb};
    long r = submit(ctx, 1, list);
    show(what, r);
    return r;
}

static void print_event(const struct io_event *ev, const struct iocb *cb) {
    printf("  event data %llu, obj is the iocb: %s, res %lld, res2 %lld\n", (unsigned long long)ev->data,
           ev->obj == (uint64_t)(uintptr_t)cb ? "yes" : "no", (long long)ev->res, (long long)ev->res2);
}

// Takes exactly one event (waiting for it) and prints it.
static void reap_one(aio_context_t ctx, const struct iocb *cb) {
    struct io_event ev;
    long n = getevents(ctx, 1, 1, &ev, NULL);
    show("  io_getevents", n);
    if (n == 1)
        print_event(&ev, cb);
}

// Takes exactly one poll event (waiting for it) and prints whether its result
// has `bit`.
static void reap_bits(aio_context_t ctx, const struct iocb *cb, int bit) {
    struct io_event ev;
    long n = getevents(ctx, 1, 1, &ev, NULL);
    show("  io_getevents", n);
    if (n == 1)
        printf("  event data %llu, obj is the iocb: %s, res has %#x: %s, res2 %lld\n", (unsigned long long)ev.data,
               ev.obj == (uint64_t)(uintptr_t)cb ? "yes" : "no", bit, ev.res & bit ? "yes" : "no", (long long)ev.res2);
}

static int by_data(const void *a, const void *b) {
    const struct io_event *x = a, *y = b;
    return (x->data > y->data) - (x->data < y->data);
}

static long read_number(const char *path) {
    char buf[64] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    read(fd, buf, sizeof buf - 1);
    close(fd);
    return atol(buf);
}

// Whether /proc/self/maps names the mapping at `addr` "/[aio] (deleted)".
static const char *ring_named(unsigned long addr) {
    char line[512], start[32];
    snprintf(start, sizeof start, "%lx-", addr);
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return "no maps";
    const char *r = "not found";
    while (fgets(line, sizeof line, f))
        if (strncmp(line, start, strlen(start)) == 0)
            r = strstr(line, " /[aio] (deleted)") ? "yes" : "another name";
    fclose(f);
    return r;
}

static void on_signal(int sig) { (void)sig; }

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    aio_context_t ctx = 0, other = 1;

    // io_setup's checks.
    show("io_setup NULL ctxp", setup(1, NULL));
    show("io_setup *ctxp not 0", setup(1, &other));
    show("io_setup 0 events", setup(0, &ctx));
    show("io_setup past aio-max-nr", setup(65537, &ctx));
    show("io_setup UINT_MAX events", setup(0xffffffffu, &ctx));
    show("io_setup 2^31 events", setup(0x80000000u, &ctx));
    printf("ctx still 0: %s\n", ctx == 0 ? "yes" : "no");
    long nr_before = read_number("/proc/sys/fs/aio-nr");
    printf("aio-max-nr: %ld\n", read_number("/proc/sys/fs/aio-max-nr"));

    show("io_setup 16", setup(16, &ctx));
    printf("ctx set, page aligned: %s\n", ctx != 0 && ctx % 4096 == 0 ? "yes" : "no");
    printf("aio-nr grew by %ld\n", read_number("/proc/sys/fs/aio-nr") - nr_before);
    struct aio_ring_header {
        unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length;
    } *ring = (void *)(uintptr_t)ctx;
    printf("ring readable: head %u, tail %u, header_length %u, incompat_features %u\n", ring->head, ring->tail,
           ring->header_length, ring->incompat_features);
    printf("maps names the ring /[aio] (deleted): %s\n", ring_named(ctx));

    char dir[] = "/tmp/aio-XXXXXX", path[64];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/file", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int rfd = open(path, O_RDONLY);
    int wfd = open(path, O_WRONLY);

    // One request of each kind, each reaped on its own.
    char text[] = "hello, aio world", in[32] = {0};
    struct iocb cb = make(IOCB_CMD_PWRITE, fd, text, 16, 0, 1);
    submit_one("pwrite", ctx, &cb);
    reap_one(ctx, &cb);
    cb = make(IOCB_CMD_PREAD, fd, in, 9, 7, 2);
    submit_one("pread", ctx, &cb);
    reap_one(ctx, &cb);
    printf("  read \"%s\"\n", in);
    printf("  aio_key written back: %u\n", cb.aio_key);
    cb = make(IOCB_CMD_PREAD, fd, in, sizeof in, 100, 3);
    submit_one("pread past the end", ctx, &cb);
    reap_one(ctx, &cb);
    struct iovec wv[2] = {{"-ab", 3}, {"-cd", 3}};
    cb = make(IOCB_CMD_PWRITEV, fd, wv, 2, 16, 4);
    submit_one("pwritev", ctx, &cb);
    reap_one(ctx, &cb);
    char a[5] = {0}, b[5] = {0};
    struct iovec rv[2] = {{a, 4}, {b, 4}};
    cb = make(IOCB_CMD_PREADV, fd, rv, 2, 12, 5);
    submit_one("preadv", ctx, &cb);
    reap_one(ctx, &cb);
    printf("  read \"%s\" \"%s\"\n", a, b);
    cb = make(IOCB_CMD_FSYNC, fd, NULL, 0, 0, 6);
    submit_one("fsync", ctx, &cb);
    reap_one(ctx, &cb);
    cb = make(IOCB_CMD_FDSYNC, fd, NULL, 0, 0, 7);
    submit_one("fdatasync", ctx, &cb);
    reap_one(ctx, &cb);
    cb = make(IOCB_CMD_PREAD, fd, (void *)16, 4, 0, 8);
    submit_one("pread into an unmapped buffer", ctx, &cb);
    reap_one(ctx, &cb);

    // Several at once, reaped together (fsync may complete after the others on
    // Linux, so they are printed by their data).
    char x[4], y[4] = "XY";
    struct iocb batch[4] = {make(IOCB_CMD_PREAD, fd, x, 4, 0, 10), make(IOCB_CMD_PWRITE, fd, y, 2, 22, 11),
                            make(IOCB_CMD_FSYNC, fd, NULL, 0, 0, 12), make(IOCB_CMD_FDSYNC, fd, NULL, 0, 0, 13)};
    struct iocb *list[4] = {&batch[0], &batch[1], &batch[2], &batch[3]};
    show("submit 4", submit(ctx, 4, list));
    struct io_event evs[8];
    long n = getevents(ctx, 4, 8, evs, NULL);
    show("  io_getevents min 4", n);
    if (n > 0) {
        qsort(evs, n, sizeof evs[0], by_data);
        for (long i = 0; i < n; i++)
            print_event(&evs[i], &batch[evs[i].data - 10]);
    }

    // What fails the submission.
    show("nr -1", submit(ctx, -1, list));
    show("nr 0", submit(ctx, 0, list));
    show("unknown context", submit(ctx + 4096, 1, list));
    show("NULL iocb array", submit(ctx, 1, NULL));
    struct iocb *nulls[1] = {NULL};
    show("NULL iocb", submit(ctx, 1, nulls));
    cb = make(99, fd, in, 4, 0, 20);
    submit_one("opcode 99", ctx, &cb);
    cb = make(IOCB_CMD_NOOP, fd, in, 4, 0, 20);
    submit_one("IOCB_CMD_NOOP", ctx, &cb);
    cb = make(IOCB_CMD_PREAD, fd, in, 4, 0, 20);
    cb.aio_reserved2 = 1;
    submit_one("aio_reserved2 set", ctx, &cb);
    cb = make(IOCB_CMD_PREAD, fd, in, (uint64_t)-1, 0, 20);
    submit_one("negative aio_nbytes", ctx, &cb);
    cb = make(IOCB_CMD_PREAD, fd, in, 4, -1, 20);
    submit_one("negative aio_offset", ctx, &cb);
    cb = make(IOCB_CMD_PREAD, 9999, in, 4, 0, 20);
    submit_one("bad aio_fildes", ctx, &cb);
    cb = make(IOCB_CMD_PREAD, wfd, in, 4, 0, 20);
    submit_one("pread on a write-only descriptor", ctx, &cb);
    cb = make(IOCB_CMD_PWRITE, rfd, in, 4, 0, 20);
    submit_one("pwrite on a read-only descriptor", ctx, &cb);
    cb = make(IOCB_CMD_PREADV, fd, (void *)16, 2, 0, 20);
    submit_one("preadv with an unmapped iovec array", ctx, &cb);
    cb = make(IOCB_CMD_PREADV, fd, rv, 1025, 0, 20);
    submit_one("preadv of 1025 iovecs", ctx, &cb);
    cb = make(IOCB_CMD_FSYNC, fd, in, 0, 0, 20);
    submit_one("fsync with a buffer", ctx, &cb);
    cb = make(IOCB_CMD_PREAD, fd, in, 4, 0, 20);
    cb.aio_rw_flags = 0x40000000;
    submit_one("unknown aio_rw_flags", ctx, &cb);
    cb = make(IOCB_CMD_PREAD, fd, in, 4, 0, 20);
    cb.aio_flags = IOCB_FLAG_RESFD;
    cb.aio_resfd = fd;
    submit_one("IOCB_FLAG_RESFD on a regular file", ctx, &cb);
    cb.aio_resfd = 9999;
    submit_one("IOCB_FLAG_RESFD on no descriptor", ctx, &cb);
    cb = make(IOCB_CMD_PREAD, fd, in, 4, 0, 20);
    cb.aio_reqprio = 12345;
    submit_one("aio_reqprio without IOCB_FLAG_IOPRIO is ignored", ctx, &cb);
    reap_one(ctx, &cb);
    cb.aio_flags = IOCB_FLAG_IOPRIO;
    cb.aio_reqprio = 7 << 13;
    submit_one("IOCB_FLAG_IOPRIO with an invalid class", ctx, &cb);
    printf("nothing was queued by the failures: ");
    struct timespec zero = {0, 0};
    show("io_getevents", getevents(ctx, 0, 8, evs, &zero));

    // A submission stopped by its second request.
    struct iocb good = make(IOCB_CMD_PREAD, fd, in, 5, 0, 30), bad = make(IOCB_CMD_PREAD, 9999, in, 5, 0, 31);
    struct iocb *partial[3] = {&good, &bad, &good};
    show("submit good, bad, good", submit(ctx, 3, partial));
    n = getevents(ctx, 0, 8, evs, &zero);
    show("  io_getevents", n);
    if (n == 1)
        print_event(&evs[0], &good);

    // io_getevents' checks and waits.
    show("io_getevents min_nr > nr", getevents(ctx, 2, 1, evs, &zero));
    show("io_getevents min_nr -1", getevents(ctx, -1, 1, evs, &zero));
    show("io_getevents nr -1", getevents(ctx, 0, -1, evs, &zero));
    show("io_getevents unknown context", getevents(ctx + 4096, 0, 1, evs, &zero));
    show("io_getevents unmapped timeout", getevents(ctx, 1, 1, evs, (void *)16));
    show("io_getevents nothing queued, zero timeout", getevents(ctx, 1, 1, evs, &zero));
    struct timespec short_wait = {0, 20 * 1000 * 1000};
    show("io_getevents nothing queued, 20 ms", getevents(ctx, 1, 1, evs, &short_wait));
    struct timespec unnormalized = {1, -980 * 1000 * 1000};
    show("io_getevents nothing queued, {1 s, -980 ms} (not checked: 20 ms)", getevents(ctx, 1, 1, evs, &unnormalized));
    struct iocb two[2] = {make(IOCB_CMD_PREAD, fd, in, 1, 0, 40), make(IOCB_CMD_PREAD, fd, in, 1, 1, 41)};
    struct iocb *twolist[2] = {&two[0], &two[1]};
    show("submit 2", submit(ctx, 2, twolist));
    show("io_getevents into an unmapped array", getevents(ctx, 1, 2, (void *)16, &zero));
    n = getevents(ctx, 1, 1, evs, NULL);
    show("io_getevents nr 1 takes the first", n);
    if (n == 1)
        print_event(&evs[0], &two[0]);
    show("io_getevents min 2, 20 ms, one queued", getevents(ctx, 2, 2, evs, &short_wait));
    print_event(&evs[0], &two[1]);

    // A signal ends a wait: EINTR (not restarted), with a handler or not.
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    // 100 ms: long enough for the call to be waiting when it fires.
    struct itimerval it = {{0, 0}, {0, 100 * 1000}};
    struct timespec long_wait = {5, 0};
    setitimer(ITIMER_REAL, &it, NULL);
    show("io_getevents interrupted by SIGALRM (SA_RESTART)", getevents(ctx, 1, 1, evs, &long_wait));

    // io_pgetevents: the same, with a signal mask for the wait.
    sigset_t block_alrm;
    sigemptyset(&block_alrm);
    sigaddset(&block_alrm, SIGALRM);
    struct aio_sigset sig = {&block_alrm, 8};
    show("io_pgetevents zero timeout", pgetevents(ctx, 1, 1, evs, &zero, &sig));
    struct aio_sigset badsize = {&block_alrm, 4};
    show("io_pgetevents sigsetsize 4", pgetevents(ctx, 1, 1, evs, &zero, &badsize));
    show("io_pgetevents unmapped sigset", pgetevents(ctx, 1, 1, evs, &zero, (void *)16));
    setitimer(ITIMER_REAL, &it, NULL);
    show("io_pgetevents with SIGALRM blocked, 200 ms", pgetevents(ctx, 1, 1, evs, &(struct timespec){0, 200 * 1000 * 1000}, &sig));
    sigset_t pending;
    sigpending(&pending);
    printf("  SIGALRM pending meanwhile: %s\n", sigismember(&pending, SIGALRM) ? "yes" : "no");
    sigset_t empty;
    sigemptyset(&empty);
    struct aio_sigset unblock = {&empty, 8};
    sigprocmask(SIG_BLOCK, &block_alrm, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
    show("io_pgetevents unblocking SIGALRM for the wait", pgetevents(ctx, 1, 1, evs, &long_wait, &unblock));
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("  SIGALRM blocked again after: %s\n", sigismember(&now, SIGALRM) ? "yes" : "no");
    sigprocmask(SIG_UNBLOCK, &block_alrm, NULL);

    // IOCB_FLAG_RESFD: each completion adds 1 to the eventfd.
    int efd = eventfd(0, EFD_NONBLOCK);
    struct iocb r1 = make(IOCB_CMD_PREAD, fd, in, 2, 0, 50), r2 = make(IOCB_CMD_PWRITE, fd, "zz", 2, 30, 51);
    r1.aio_flags = r2.aio_flags = IOCB_FLAG_RESFD;
    r1.aio_resfd = r2.aio_resfd = efd;
    struct iocb *rlist[2] = {&r1, &r2};
    struct io_event res;
    show("submit 2 with IOCB_FLAG_RESFD", submit(ctx, 2, rlist));
    uint64_t count = 0;
    show("  eventfd read", read(efd, &count, 8));
    printf("  eventfd count %llu\n", (unsigned long long)count);
    show("  io_getevents", getevents(ctx, 2, 2, evs, NULL));

    // IOCB_CMD_POLL: completes at once when the file is ready, else at its first
    // wanted event; a waiting one can be cancelled.
    int p[2];
    pipe(p);
    struct iocb pin = make(IOCB_CMD_POLL, p[0], NULL, 0, 0, 70);
    pin.aio_buf = POLLIN;
    submit_one("poll an empty pipe for POLLIN", ctx, &pin);
    show("  io_getevents zero timeout", getevents(ctx, 1, 1, evs, &zero));
    show("  write to the pipe", write(p[1], "x", 1));
    // Linux reports the waking event's whole mask (POLLIN | POLLRDNORM here).
    reap_bits(ctx, &pin, POLLIN);
    struct iocb pout = make(IOCB_CMD_POLL, p[1], NULL, 0, 0, 71);
    pout.aio_buf = POLLOUT;
    submit_one("poll the pipe's write end for POLLOUT", ctx, &pout);
    reap_one(ctx, &pout);
    struct iocb pfile = make(IOCB_CMD_POLL, fd, NULL, 0, 0, 72);
    pfile.aio_buf = POLLIN | POLLOUT;
    submit_one("poll a regular file", ctx, &pfile);
    reap_one(ctx, &pfile);
    show("drain the pipe", read(p[0], in, 1));
    pin.aio_data = 73;
    submit_one("poll the drained pipe", ctx, &pin);
    show("io_cancel the waiting poll", cancel(ctx, &pin, &res));
    reap_one(ctx, &pin);
    show("io_cancel it again", cancel(ctx, &pin, &res));
    pin.aio_data = 74;
    pin.aio_flags = IOCB_FLAG_RESFD;
    pin.aio_resfd = efd;
    submit_one("poll the pipe with IOCB_FLAG_RESFD", ctx, &pin);
    show("  eventfd read before", read(efd, &count, 8));
    show("  close the write end", close(p[1]));
    reap_bits(ctx, &pin, POLLHUP);
    show("  eventfd read", read(efd, &count, 8));
    printf("  eventfd count %llu\n", (unsigned long long)count);
    close(p[0]);
    struct iocb pbad = make(IOCB_CMD_POLL, fd, NULL, 0, 0, 75);
    pbad.aio_buf = 0x10000;
    submit_one("poll events past 16 bits", ctx, &pbad);
    pbad.aio_buf = POLLIN;
    pbad.aio_nbytes = 1;
    submit_one("poll with aio_nbytes", ctx, &pbad);

    // io_cancel: a finished request is not in flight.
    show("io_cancel a finished request", cancel(ctx, &r1, &res));
    show("io_cancel NULL iocb", cancel(ctx, NULL, &res));
    r1.aio_key = 1;
    show("io_cancel aio_key 1", cancel(ctx, &r1, &res));
    r1.aio_key = 0;
    show("io_cancel unknown context", cancel(ctx + 4096, &r1, &res));

    // A forked child has none of its parent's contexts, though it has the ring's memory.
    cb = make(IOCB_CMD_PREAD, fd, in, 4, 0, 60);
    pid_t pid = fork();
    if (pid == 0) {
        show("child: io_getevents on the parent's context", getevents(ctx, 0, 1, evs, &zero));
        struct iocb *one[1] = {&cb};
        show("child: io_submit on the parent's context", submit(ctx, 1, one));
        show("child: io_destroy of the parent's context", destroy(ctx));
        printf("child: ring memory readable: header_length %u\n", ring->header_length);
        aio_context_t mine = 0;
        show("child: io_setup of its own", setup(4, &mine));
        submit_one("child: pread", mine, &cb);
        reap_one(mine, &cb);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    submit_one("parent's context still works", ctx, &cb);
    reap_one(ctx, &cb);

    // io_destroy, with a poll left waiting.
    int q[2];
    pipe(q);
    struct iocb pwait = make(IOCB_CMD_POLL, q[0], NULL, 0, 0, 80);
    pwait.aio_buf = POLLIN;
    submit_one("poll left waiting", ctx, &pwait);
    show("io_destroy 0", destroy(0));
    show("io_destroy", destroy(ctx));
    show("io_destroy again", destroy(ctx));
    show("write to the polled pipe after io_destroy", write(q[1], "y", 1));
    close(q[0]);
    close(q[1]);
    show("io_getevents after io_destroy", getevents(ctx, 0, 1, evs, &zero));
    show("ring mapped after io_destroy (msync)", msync((void *)(uintptr_t)ctx, 4096, MS_ASYNC));
    printf("aio-nr back: %s\n", read_number("/proc/sys/fs/aio-nr") == nr_before ? "yes" : "no");

    close(fd);
    close(rfd);
    close(wfd);
    close(efd);
    unlink(path);
    rmdir(dir);
    printf("done\n");
    return 0;
}
