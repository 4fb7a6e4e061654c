// RLIMIT_FSIZE (`ulimit -f`): a write to a regular file stops at the limit, one
// that would start at or past it fails with EFBIG and raises SIGXFSZ (which kills
// by default); truncate, ftruncate and fallocate may not grow a file past it;
// copy_file_range and sendfile stop at it; so do native AIO writes (io_submit),
// whose completion has the count or -EFBIG; pipes are not limited.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define LIMIT 10000

static volatile sig_atomic_t xfsz, xfsz_code, xfsz_pid;

static void on_xfsz(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)ctx;
    xfsz++;
    xfsz_code = si->si_code;
    xfsz_pid = si->si_pid;
}

static off_t size_of(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_size : -1;
}

static char buf[3 * LIMIT];

// The SIGXFSZ signals seen so far, and one more for each EFBIG.
static int seen;

static void efbig(const char *what, long r) {
    char line[160];
    snprintf(line, sizeof line, "%s: EFBIG and SIGXFSZ", what);
    check(line, r == -1 && errno == EFBIG && xfsz == seen + 1);
    seen = xfsz;
}

static void no_signal(const char *what) {
    check(what, xfsz == seen);
}

// One AIO write (PWRITE, or PWRITEV of `iov`) submitted alone: the completion's
// res, or -1000 - errno if the submission failed.
static long aio_write(aio_context_t ctx, int op, int fd, void *buf, uint64_t n, int64_t off) {
    struct iocb cb = {.aio_lio_opcode = op, .aio_fildes = fd, .aio_buf = (uint64_t)(uintptr_t)buf, .aio_nbytes = n, .aio_offset = off};
    struct iocb *list[1] = {&cb};
    if (syscall(SYS_io_submit, ctx, 1, list) != 1) return -1000 - errno;
    struct io_event ev;
    if (syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL) != 1) return -2000 - errno;
    return ev.res;
}

int main(void) {
    memset(buf, 'x', sizeof buf);
    char path[] = "/tmp/fsizeXXXXXX", src_path[] = "/tmp/fsize_srcXXXXXX";
    int fd = mkstemp(path), src = mkstemp(src_path);
    check("temporary files", fd >= 0 && src >= 0);
    check("source of 30000 bytes", write(src, buf, sizeof buf) == (ssize_t)sizeof buf);

    struct sigaction sa = {.sa_sigaction = on_xfsz, .sa_flags = SA_SIGINFO};
    sigaction(SIGXFSZ, &sa, NULL);
    struct rlimit rl = {LIMIT, RLIM_INFINITY};
    check("setrlimit(RLIMIT_FSIZE, 10000)", setrlimit(RLIMIT_FSIZE, &rl) == 0);

    check("write of 8000 bytes", write(fd, buf, 8000) == 8000);
    check("write of 4000 more stops at the limit: 2000", write(fd, buf, 4000) == 2000);
    no_signal("no signal for a short write");
    efbig("write at the limit", write(fd, buf, 1));
    check("SIGXFSZ is SI_USER from the writer", xfsz_code == SI_USER && xfsz_pid == getpid());
    check("an empty write at the limit: 0", write(fd, buf, 0) == 0);
    no_signal("no signal for it");
    check("size is the limit", size_of(fd) == LIMIT);

    check("pwrite across the limit: 1 of 10", pwrite(fd, buf, 10, LIMIT - 1) == 1);
    efbig("pwrite past the limit", pwrite(fd, buf, 10, 2 * LIMIT));
    struct iovec iov[2] = {{buf, 8}, {buf, 8}};
    check("writev across the limit: 10 of 16", lseek(fd, LIMIT - 10, SEEK_SET) == LIMIT - 10 && writev(fd, iov, 2) == 10);
    efbig("pwritev past the limit", pwritev(fd, iov, 2, LIMIT));
    int app = open(path, O_WRONLY | O_APPEND);
    lseek(app, 0, SEEK_SET);
    efbig("O_APPEND write at an end at the limit", write(app, buf, 1));
    close(app);

    check("ftruncate down", ftruncate(fd, 5000) == 0 && size_of(fd) == 5000);
    check("ftruncate up to the limit", ftruncate(fd, LIMIT) == 0);
    efbig("ftruncate past the limit", ftruncate(fd, LIMIT + 1));
    efbig("truncate past the limit", truncate(path, 2 * LIMIT));
    efbig("fallocate past the limit", fallocate(fd, 0, 0, LIMIT + 1));
    check("the size did not change", size_of(fd) == LIMIT);

    check("ftruncate to 5000", ftruncate(fd, 5000) == 0);
    loff_t in = 0, out = 5000;
    check("copy_file_range stops at the limit: 5000", copy_file_range(src, &in, fd, &out, sizeof buf, 0) == 5000 && out == LIMIT);
    no_signal("no signal for it: it was cut up front");
    check("ftruncate to 4000", ftruncate(fd, 4000) == 0 && lseek(fd, 4000, SEEK_SET) == 4000);
    off_t soff = 0;
    check("sendfile stops at the limit: 6000", sendfile(fd, src, &soff, sizeof buf) == 6000 && soff == 6000);
    // Linux's splice write goes on at the limit after the cut write, which raises it.
    check("with SIGXFSZ", xfsz == seen + 1);
    seen = xfsz;
    efbig("copy_file_range at the limit", copy_file_range(src, NULL, fd, NULL, 10, 0));

    aio_context_t ctx = 0;
    check("io_setup", syscall(SYS_io_setup, 4, &ctx) == 0);
    check("AIO pwrite across the limit: 3 of 10", aio_write(ctx, IOCB_CMD_PWRITE, fd, buf, 10, LIMIT - 3) == 3);
    no_signal("no signal for it");
    check("AIO pwrite past the limit: -EFBIG in the completion", aio_write(ctx, IOCB_CMD_PWRITE, fd, buf, 10, LIMIT) == -EFBIG);
    check("with SIGXFSZ, SI_USER from the submitter", xfsz == seen + 1 && xfsz_code == SI_USER && xfsz_pid == getpid());
    seen = xfsz;
    struct iovec aiov[2] = {{buf, 8}, {buf, 8}};
    check("AIO pwritev across the limit: 4 of 16", aio_write(ctx, IOCB_CMD_PWRITEV, fd, aiov, 2, LIMIT - 4) == 4);
    check("AIO pwritev past the limit: -EFBIG", aio_write(ctx, IOCB_CMD_PWRITEV, fd, aiov, 2, 2 * LIMIT) == -EFBIG);
    check("with SIGXFSZ", xfsz == seen + 1);
    seen = xfsz;
    check("AIO pwrite of 0 bytes at the limit: 0", aio_write(ctx, IOCB_CMD_PWRITE, fd, buf, 0, LIMIT) == 0);
    no_signal("no signal for it");
    check("the size is the limit", size_of(fd) == LIMIT);
    syscall(SYS_io_destroy, ctx);

    int p[2];
    check("a pipe is not limited", pipe(p) == 0 && write(p[1], buf, sizeof buf) == (ssize_t)sizeof buf);

    signal(SIGXFSZ, SIG_IGN);
    check("ignored SIGXFSZ: EFBIG only", pwrite(fd, buf, 1, LIMIT) == -1 && errno == EFBIG);
    no_signal("the handler did not run");

    signal(SIGXFSZ, SIG_DFL);
    pid_t child = fork();
    if (child == 0) {
        pwrite(fd, buf, 1, LIMIT);
        _exit(0);
    }
    int status;
    check("SIGXFSZ kills by default", waitpid(child, &status, 0) == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ);

    unlink(path);
    unlink(src_path);
    printf(failures ? "%d failures\n" : "all ok\n", failures);
    return failures != 0;
}
