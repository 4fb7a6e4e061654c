// Pipes: data between a parent and a forked child and between threads, EOF once every
// writer is gone, EPIPE with SIGPIPE (handled, ignored, default), O_NONBLOCK and EAGAIN,
// how much a pipe holds (64 KiB, counted in page slots), atomic writes of PIPE_BUF bytes
// from several writers, FIONREAD, F_GETPIPE_SZ/F_SETPIPE_SZ, pipe2 flags, packet mode
// (O_DIRECT), wrong-end and positional I/O, fstat, and a blocked read interrupted by a
// signal with and without SA_RESTART. Never sleeps to synchronize.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static uint8_t pattern(size_t i) {
    return (uint8_t)(i * 2654435761u >> 13);
}

static int nread_of(int fd) {
    int n = -1;
    ioctl(fd, FIONREAD, &n);
    return n;
}

/* Fills a non-blocking pipe with writes of `chunk` bytes until EAGAIN; returns the total. */
static long fill(int wfd, size_t chunk) {
    static char buf[70000];
    long total = 0;
    for (;;) {
        ssize_t r = write(wfd, buf, chunk);
        if (r < 0) {
            if (errno != EAGAIN) printf("fill: unexpected %s\n", errname(errno));
            return total;
        }
        total += r;
    }
}

static void drain(int rfd) {
    char buf[4096];
    int fl = fcntl(rfd, F_GETFL);
    fcntl(rfd, F_SETFL, fl | O_NONBLOCK);
    while (read(rfd, buf, sizeof buf) > 0) {
    }
    fcntl(rfd, F_SETFL, fl);
}

/* ---- threads ---- */

#define BIG (1 << 20)

struct writer_arg {
    int fd;
    size_t total;
};

static void *writer_thread(void *p) {
    struct writer_arg *a = p;
    static uint8_t buf[BIG];
    for (size_t i = 0; i < a->total; i++) buf[i] = pattern(i);
    size_t off = 0, step = 1;
    while (off < a->total) {
        size_t n = step < a->total - off ? step : a->total - off;
        ssize_t r = write(a->fd, buf + off, n);
        if (r <= 0) break;
        off += r;
        step = step * 3 + 1;
        if (step > 100000) step = 7;
    }
    close(a->fd);
    return (void *)off;
}

static void between_threads(void) {
    int p[2];
    pipe(p);
    struct writer_arg a = {p[1], BIG};
    pthread_t th;
    pthread_create(&th, NULL, writer_thread, &a);
    static uint8_t got[BIG + 1];
    size_t off = 0;
    size_t step = 5;
    for (;;) {
        ssize_t r = read(p[0], got + off, step);
        if (r <= 0) break;
        off += r;
        step = step * 7 % 65537 + 1;
        if (off + step > sizeof got) step = sizeof got - off;
    }
    void *wrote;
    pthread_join(th, &wrote);
    int same = off == BIG;
    for (size_t i = 0; same && i < BIG; i++) same = got[i] == pattern(i);
    printf("threads: writer wrote %zu, reader read %zu\n", (size_t)wrote, off);
    check("threads: 1 MiB arrives intact and in order, then EOF", same);
    close(p[0]);
}

/* ---- parent and child ---- */

static void parent_and_child(void) {
    int p[2], back[2];
    pipe(p);
    pipe(back);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        close(back[1]);
        for (int i = 0; i < 100; i++) {
            char line[64];
            int n = snprintf(line, sizeof line, "line %d from the child\n", i);
            write(p[1], line, n);
        }
        // Wait for the parent's answer, then one single large write.
        char ack[8];
        ssize_t r = read(back[0], ack, sizeof ack);
        static char big[300000];
        memset(big, 'z', sizeof big);
        ssize_t w = write(p[1], big, sizeof big);
        _exit(r == 3 && w == (ssize_t)sizeof big ? 0 : 1);
    }
    close(p[1]);
    close(back[0]);
    char buf[8192];
    size_t have = 0;
    int lines = 0;
    char all[4096];
    size_t alen = 0;
    while (lines < 100) {
        ssize_t r = read(p[0], buf, 100);
        if (r <= 0) break;
        for (ssize_t i = 0; i < r; i++) {
            if (alen < sizeof all - 1) all[alen++] = buf[i];
            if (buf[i] == '\n') lines++;
        }
        have += r;
    }
    all[alen] = 0;
    check("fork: 100 lines from the child", lines == 100);
    check("fork: first line intact", strncmp(all, "line 0 from the child\nline 1 from the child\n", 44) == 0);
    write(back[1], "ack", 3);
    size_t z = 0;
    int only_z = 1;
    for (;;) {
        ssize_t r = read(p[0], buf, sizeof buf);
        if (r <= 0) break;
        for (ssize_t i = 0; i < r; i++) only_z &= buf[i] == 'z';
        z += r;
    }
    int st;
    waitpid(c, &st, 0);
    printf("fork: one 300000-byte write from the child read as %zu bytes\n", z);
    check("fork: the child's large write completed in one call", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    check("fork: read returns 0 after the child exited", read(p[0], buf, 1) == 0 && only_z);
    close(p[0]);
    close(back[1]);
}

/* ---- EOF ---- */

static void eof(void) {
    int p[2];
    pipe(p);
    write(p[1], "abc", 3);
    int d = dup(p[1]);
    close(p[1]);
    char buf[16];
    ssize_t r = read(p[0], buf, sizeof buf);
    printf("EOF: read with data and a dup'ed writer open: %zd\n", r);
    close(d);
    r = read(p[0], buf, sizeof buf);
    printf("EOF: read after the last writer closed: %zd\n", r);
    r = syscall(SYS_read, p[0], NULL, 10);
    printf("EOF: read into NULL at EOF: %zd\n", r);
    close(p[0]);

    pipe(p);
    write(p[1], "xyz", 3);
    close(p[1]);
    r = read(p[0], buf, 2);
    ssize_t r2 = read(p[0], buf + 2, 10);
    ssize_t r3 = read(p[0], buf, 10);
    printf("EOF: data written before the close is still read: %zd %zd %zd\n", r, r2, r3);
    close(p[0]);

    /* A read of 0 bytes. */
    pipe(p);
    printf("EOF: read of 0 bytes on an empty pipe with a writer: %zd\n", read(p[0], buf, 0));
    printf("EOF: write of 0 bytes: %zd\n", write(p[1], buf, 0));
    close(p[0]);
    errno = 0;
    r = write(p[1], buf, 0);
    printf("EOF: write of 0 bytes without a reader: %zd %s\n", r, errname(errno));
    close(p[1]);

    /* A writer in a child that exits gives EOF. */
    pipe(p);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        write(p[1], "bye", 3);
        _exit(0);
    }
    close(p[1]);
    char got[8] = {0};
    size_t n = 0;
    while ((r = read(p[0], got + n, sizeof got - 1 - n)) > 0) n += r;
    waitpid(c, NULL, 0);
    printf("EOF: from an exited child: \"%s\" then %zd\n", got, r);
    close(p[0]);
}

/* ---- EPIPE and SIGPIPE ---- */

static volatile sig_atomic_t pipe_signals, pipe_code, pipe_pid;

static void on_pipe(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    pipe_signals++;
    pipe_code = si->si_code;
    pipe_pid = si->si_pid;
}

static void epipe(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_pipe;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGPIPE, &sa, NULL);
    int p[2];
    pipe(p);
    close(p[0]);
    errno = 0;
    ssize_t r = write(p[1], "x", 1);
    printf("EPIPE: write without a reader: %zd %s\n", r, errname(errno));
    check("EPIPE: SIGPIPE handled once", pipe_signals == 1);
    check("EPIPE: si_code is SI_USER", pipe_code == SI_USER);
    check("EPIPE: si_pid is the writer itself", pipe_pid == getpid());
    struct iovec iov[2] = {{"ab", 2}, {"cd", 2}};
    errno = 0;
    r = writev(p[1], iov, 2);
    printf("EPIPE: writev: %zd %s, signals %d\n", r, errname(errno), (int)pipe_signals);
    close(p[1]);

    /* Ignored: EPIPE only. */
    signal(SIGPIPE, SIG_IGN);
    pipe(p);
    close(p[0]);
    errno = 0;
    r = write(p[1], "x", 1);
    printf("EPIPE: with SIGPIPE ignored: %zd %s\n", r, errname(errno));
    close(p[1]);

    /* Blocked: EPIPE, and SIGPIPE stays pending. */
    sigaction(SIGPIPE, &sa, NULL);
    pipe_signals = 0;
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    sigprocmask(SIG_BLOCK, &s, &old);
    pipe(p);
    close(p[0]);
    errno = 0;
    r = write(p[1], "x", 1);
    int e = errno;
    sigset_t pend;
    sigpending(&pend);
    printf("EPIPE: with SIGPIPE blocked: %zd %s, pending %d\n", r, errname(e), sigismember(&pend, SIGPIPE));
    sigprocmask(SIG_SETMASK, &old, NULL);
    check("EPIPE: the pending SIGPIPE is handled once unblocked", pipe_signals == 1);
    close(p[1]);

    /* Default action: the writer dies of SIGPIPE. */
    pipe(p);
    close(p[0]);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        signal(SIGPIPE, SIG_DFL);
        write(p[1], "x", 1);
        _exit(0);
    }
    close(p[1]);
    int st;
    waitpid(c, &st, 0);
    printf("EPIPE: default action: killed by signal %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : 0);

    /* A writer blocked on a full pipe gets EPIPE (or its partial count) when the
     * last reader goes. */
    pipe(p);
    fflush(stdout);
    c = fork();
    if (c == 0) {
        signal(SIGPIPE, SIG_IGN);
        close(p[0]);
        static char big[200000];
        errno = 0;
        ssize_t w = write(p[1], big, sizeof big);
        // It wrote 64 KiB before blocking, then the reader went: a partial count.
        _exit(w == 65536 ? 0 : 1);
    }
    close(p[1]);
    // Wait until the pipe is full: the writer is then blocked.
    while (nread_of(p[0]) < 65536) sched_yield();
    close(p[0]);
    waitpid(c, &st, 0);
    check("EPIPE: a blocked writer returns its partial count when the reader closes", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    signal(SIGPIPE, SIG_DFL);
}

/* ---- capacity, O_NONBLOCK, atomicity, FIONREAD ---- */

static void nonblocking(void) {
    int p[2];
    pipe2(p, O_NONBLOCK);
    static char buf[16384];
    errno = 0;
    ssize_t r = read(p[0], buf, 10);
    printf("nonblock: read of an empty pipe: %zd %s\n", r, errname(errno));
    printf("nonblock: FIONREAD of an empty pipe: %d\n", nread_of(p[0]));
    printf("nonblock: F_GETPIPE_SZ: %d\n", fcntl(p[0], F_GETPIPE_SZ));
    long t1 = fill(p[1], 1);
    printf("nonblock: 1-byte writes until EAGAIN: %ld bytes, FIONREAD %d (write end %d)\n", t1, nread_of(p[0]), nread_of(p[1]));
    drain(p[0]);
    static const size_t chunks[] = {100, 1000, 3000, 4096, 4097, 5000, 10000, 65536, 70000};
    for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
        long t = fill(p[1], chunks[i]);
        printf("nonblock: %zu-byte writes until EAGAIN: %ld bytes, FIONREAD %d\n", chunks[i], t, nread_of(p[0]));
        drain(p[0]);
    }

    /* Atomic: a write of <= PIPE_BUF bytes goes in whole or not at all. */
    fill(p[1], 4096);
    r = read(p[0], buf, 100); // frees 100 bytes, but no slot
    errno = 0;
    ssize_t w = write(p[1], buf, 50);
    printf("nonblock: full slots, 100 bytes read, write of 50: %zd %s\n", w, errname(errno));
    drain(p[0]);
    fill(p[1], 1);
    r = read(p[0], buf, 4096); // one whole page: one free slot
    errno = 0;
    w = write(p[1], buf, 4096);
    printf("nonblock: one free slot, write of 4096: %zd %s\n", w, errname(errno));
    errno = 0;
    w = write(p[1], buf, 1);
    printf("nonblock: then a write of 1: %zd %s\n", w, errname(errno));
    drain(p[0]);
    fill(p[1], 1);
    read(p[0], buf, 4096);
    read(p[0], buf, 4096);
    errno = 0;
    w = write(p[1], buf, 8192 + 10);
    printf("nonblock: two free slots, write of 8202 (> PIPE_BUF): %zd %s\n", w, errname(errno));
    drain(p[0]);

    /* Small writes merge into the last page. */
    write(p[1], "a", 1);
    write(p[1], "b", 1);
    r = read(p[0], buf, sizeof buf);
    printf("nonblock: two 1-byte writes read at once: %zd\n", r);

    /* Turning O_NONBLOCK off and on with F_SETFL and FIONBIO. */
    printf("nonblock: F_GETFL read end %#o, write end %#o\n", fcntl(p[0], F_GETFL), fcntl(p[1], F_GETFL));
    fcntl(p[0], F_SETFL, 0);
    printf("nonblock: after F_SETFL 0: %#o\n", fcntl(p[0], F_GETFL));
    int on = 1;
    ioctl(p[0], FIONBIO, &on);
    errno = 0;
    r = read(p[0], buf, 1);
    printf("nonblock: after FIONBIO 1: F_GETFL %#o, read %zd %s\n", fcntl(p[0], F_GETFL), r, errname(errno));
    close(p[0]);
    close(p[1]);
}

static void pipe_size(void) {
    int p[2];
    pipe2(p, O_NONBLOCK);
    static const int sizes[] = {0, 1, 4096, 5000, 8192, 65536, 100000, 1048576};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int r = fcntl(p[1], F_SETPIPE_SZ, sizes[i]);
        printf("F_SETPIPE_SZ %d: %d, F_GETPIPE_SZ %d\n", sizes[i], r, fcntl(p[0], F_GETPIPE_SZ));
    }
    fcntl(p[1], F_SETPIPE_SZ, 8192);
    long t = fill(p[1], 1);
    printf("F_SETPIPE_SZ 8192: holds %ld bytes\n", t);
    errno = 0;
    int r = fcntl(p[1], F_SETPIPE_SZ, 4096);
    printf("F_SETPIPE_SZ below the data in it: %d %s\n", r, errname(errno));
    errno = 0;
    r = fcntl(p[1], F_SETPIPE_SZ, -1);
    printf("F_SETPIPE_SZ -1: %d %s\n", r, errname(errno));
    int efd = eventfd(0, 0);
    errno = 0;
    r = fcntl(efd, F_GETPIPE_SZ);
    printf("F_GETPIPE_SZ of an eventfd: %d %s\n", r, errname(errno));
    close(efd);
    close(p[0]);
    close(p[1]);
}

/* ---- atomic writes from several writers ---- */

#define WRITERS 4
#define RECORDS 64

static void atomic_writers(void) {
    int p[2];
    pipe(p);
    fflush(stdout);
    pid_t kids[WRITERS];
    for (int k = 0; k < WRITERS; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            close(p[0]);
            char rec[PIPE_BUF];
            for (int i = 0; i < RECORDS; i++) {
                memset(rec, 'A' + k, sizeof rec);
                rec[0] = '0' + (i % 10);
                if (write(p[1], rec, sizeof rec) != sizeof rec) _exit(1);
            }
            _exit(0);
        }
    }
    close(p[1]);
    static char all[WRITERS * RECORDS * PIPE_BUF + 1];
    size_t n = 0;
    ssize_t r;
    while ((r = read(p[0], all + n, 1000)) > 0) n += r;
    int whole = n == sizeof all - 1;
    int per[WRITERS] = {0};
    for (size_t rec = 0; whole && rec < n / PIPE_BUF; rec++) {
        char *x = all + rec * PIPE_BUF;
        int k = x[1] - 'A';
        if (k < 0 || k >= WRITERS) {
            whole = 0;
            break;
        }
        if (x[0] != '0' + per[k] % 10) whole = 0;
        per[k]++;
        for (int i = 1; i < PIPE_BUF; i++)
            if (x[i] != 'A' + k) whole = 0;
    }
    for (int k = 0; k < WRITERS; k++) {
        int st;
        waitpid(kids[k], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) whole = 0;
    }
    printf("atomic: %d writers x %d records of PIPE_BUF bytes: %zu bytes read\n", WRITERS, RECORDS, n);
    check("atomic: every record arrived whole, each writer's in order", whole);
    close(p[0]);
}

/* ---- flags, packet mode, wrong ends, fstat ---- */

static void flags_and_misc(void) {
    int p[2];
    pipe2(p, O_CLOEXEC);
    printf("pipe2 O_CLOEXEC: FD_CLOEXEC %d %d\n", fcntl(p[0], F_GETFD), fcntl(p[1], F_GETFD));
    close(p[0]);
    close(p[1]);
    pipe(p);
    printf("pipe: FD_CLOEXEC %d %d, F_GETFL %#o %#o\n", fcntl(p[0], F_GETFD), fcntl(p[1], F_GETFD), fcntl(p[0], F_GETFL),
           fcntl(p[1], F_GETFL));
    char buf[64];
    errno = 0;
    ssize_t r = read(p[1], buf, 1);
    printf("read of the write end: %zd %s\n", r, errname(errno));
    errno = 0;
    r = write(p[0], "x", 1);
    printf("write of the read end: %zd %s\n", r, errname(errno));
    errno = 0;
    r = pread(p[0], buf, 1, 0);
    printf("pread: %zd %s\n", r, errname(errno));
    errno = 0;
    r = pwrite(p[1], "x", 1, 0);
    printf("pwrite: %zd %s\n", r, errname(errno));
    errno = 0;
    int rr = ioctl(p[0], TCGETS, buf);
    printf("ioctl TCGETS: %d %s\n", rr, errname(errno));
    struct stat st0, st1;
    fstat(p[0], &st0);
    fstat(p[1], &st1);
    write(p[1], "12345", 5);
    struct stat st2;
    fstat(p[0], &st2);
    printf("fstat: fifo %d, perms %o, nlink %ld, size %ld (with 5 bytes in: %ld), blksize %ld, same inode %d\n", S_ISFIFO(st0.st_mode),
           st0.st_mode & 07777, (long)st0.st_nlink, (long)st0.st_size, (long)st2.st_size, (long)st0.st_blksize,
           st0.st_ino == st1.st_ino && st0.st_dev == st1.st_dev);
    check("fstat: owned by us", st0.st_uid == geteuid() && st0.st_gid == getegid());
    int q[2];
    pipe(q);
    struct stat st3;
    fstat(q[0], &st3);
    check("fstat: another pipe has another inode", st3.st_ino != st0.st_ino);
    close(q[0]);
    close(q[1]);
    errno = 0;
    rr = pipe2(q, O_APPEND);
    printf("pipe2 O_APPEND: %d %s\n", rr, errname(errno));
    int before = dup(0);
    close(before);
    errno = 0;
    rr = (int)syscall(SYS_pipe2, (void *)8, 0);
    printf("pipe2 into a bad address: %d %s\n", rr, errname(errno));
    int f = dup(0);
    check("pipe2 into a bad address leaves no descriptors behind", f == before);
    close(f);
    /* Reading into a bad buffer. */
    errno = 0;
    r = syscall(SYS_read, p[0], (void *)8, 5);
    printf("read into a bad buffer with data: %zd %s (FIONREAD after: %d)\n", r, errname(errno), nread_of(p[0]));
    errno = 0;
    r = syscall(SYS_write, p[1], (void *)8, 5);
    printf("write from a bad buffer: %zd %s\n", r, errname(errno));
    close(p[0]);
    close(p[1]);

    /* Packet mode. */
    pipe2(p, O_DIRECT | O_NONBLOCK);
    printf("O_DIRECT: F_GETFL %#o %#o\n", fcntl(p[0], F_GETFL) & ~O_NONBLOCK, fcntl(p[1], F_GETFL) & ~O_NONBLOCK);
    write(p[1], "0123456789", 10);
    write(p[1], "abcdefghij", 10);
    r = read(p[0], buf, sizeof buf);
    printf("O_DIRECT: two 10-byte writes, read of 64: %zd\n", r);
    r = read(p[0], buf, 4);
    errno = 0;
    ssize_t r2 = read(p[0], buf + 4, sizeof buf - 4);
    printf("O_DIRECT: read 4 of a 10-byte packet: %zd (\"%.4s\"), then %zd %s\n", r, buf, r2, errname(errno));
    long t = fill(p[1], 1);
    printf("O_DIRECT: 1-byte packets until EAGAIN: %ld\n", t);
    close(p[0]);
    close(p[1]);
}

/* ---- a blocked read and signals ---- */

static atomic_int *shm;
static volatile sig_atomic_t usr1;
static void on_usr1(int sig) {
    (void)sig;
    usr1++;
    atomic_fetch_add(&shm[1], 1);
}

/* A child that signals the parent until shm[0] is set; after `then_write` handled
 * signals it writes one byte to `fd` (if fd >= 0). */
static pid_t spammer(int fd, int then_write) {
    atomic_store(&shm[0], 0);
    atomic_store(&shm[1], 0);
    pid_t parent = getpid();
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        int wrote = 0;
        for (long i = 0; i < 20000000 && atomic_load(&shm[0]) == 0; i++) {
            if (fd >= 0 && !wrote && atomic_load(&shm[1]) >= then_write) {
                write(fd, "!", 1);
                wrote = 1;
            }
            if (!wrote) kill(parent, SIGUSR1);
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

static void interrupted(void) {
    shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    int p[2];
    pipe(p);
    char c;
    pid_t k = spammer(-1, 0);
    errno = 0;
    ssize_t r = read(p[0], &c, 1);
    int e = errno;
    stop(k);
    printf("signal without SA_RESTART: read %zd %s\n", r, errname(e));
    check("the handler ran", usr1 > 0);

    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    usr1 = 0;
    k = spammer(p[1], 3);
    errno = 0;
    r = read(p[0], &c, 1);
    e = errno;
    stop(k);
    printf("signal with SA_RESTART: read %zd %s '%c'\n", r, errname(e), r == 1 ? c : '?');
    check("the handler ran at least 3 times", usr1 >= 3);

    /* A writer blocked on a full pipe: EINTR without SA_RESTART. */
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    fill(p[1], 4096);
    fcntl(p[1], F_SETFL, 0);
    k = spammer(-1, 0);
    errno = 0;
    r = write(p[1], "x", 1);
    e = errno;
    stop(k);
    printf("signal without SA_RESTART: write to a full pipe %zd %s\n", r, errname(e));
    close(p[0]);
    close(p[1]);
    signal(SIGUSR1, SIG_DFL);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *only = argc > 1 ? argv[1] : "";
    if (!*only || !strcmp(only, "threads")) between_threads();
    if (!*only || !strcmp(only, "fork")) parent_and_child();
    if (!*only || !strcmp(only, "eof")) eof();
    if (!*only || !strcmp(only, "epipe")) epipe();
    if (!*only || !strcmp(only, "nonblock")) nonblocking();
    if (!*only || !strcmp(only, "size")) pipe_size();
    if (!*only || !strcmp(only, "atomic")) atomic_writers();
    if (!*only || !strcmp(only, "misc")) flags_and_misc();
    if (!*only || !strcmp(only, "signals")) interrupted();
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("all ok\n");
    return 0;
}
