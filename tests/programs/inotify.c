// inotify: watches on directories and files in /tmp (tmpfs) and /var/tmp (the
// root overlay), the events each file operation produces and in what order, the
// watch flags, and the descriptor itself: whole-event reads, blocking, signals,
// poll/select/epoll, FIONREAD, coalescing and queue overflow.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/time.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static const char *err(long r) { return r >= 0 ? "ok" : strerrorname_np(errno); }

// Watch descriptors are printed by label, so the output names what was watched.
static struct { int wd; const char *label; } labels[16];
static int nlabels;

static void label(int wd, const char *name) {
    labels[nlabels].wd = wd;
    labels[nlabels++].label = name;
}

static const char *wd_label(int wd) {
    if (wd == -1) return "-1";
    for (int i = nlabels - 1; i >= 0; i--)
        if (labels[i].wd == wd) return labels[i].label;
    return "?";
}

static void mask_names(uint32_t m, char *out) {
    static const struct { uint32_t bit; const char *name; } names[] = {
        {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"},
        {IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"},
        {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"}, {IN_CREATE, "CREATE"},
        {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
        {IN_UNMOUNT, "UNMOUNT"}, {IN_Q_OVERFLOW, "Q_OVERFLOW"}, {IN_IGNORED, "IGNORED"},
        {IN_ISDIR, "ISDIR"},
    };
    out[0] = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (m & names[i].bit) {
            if (out[0]) strcat(out, "|");
            strcat(out, names[i].name);
            m &= ~names[i].bit;
        }
    }
    if (m) sprintf(out + strlen(out), "|%#x", m);
}

static char buf[1 << 20] __attribute__((aligned(8)));
static uint32_t last_cookies[8];
static int ncookies;

// Reads every queued event (the fd is non-blocking) into "label MASK name; ...".
static const char *events(int fd) {
    static char out[8192];
    out[0] = 0;
    ncookies = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            char m[256];
            mask_names(e->mask, m);
            size_t at = strlen(out);
            snprintf(out + at, sizeof out - at, "%s%s %s%s%s", at ? "; " : "", wd_label(e->wd), m, e->len ? " " : "", e->len ? e->name : "");
            if (e->cookie && ncookies < 8) last_cookies[ncookies++] = e->cookie;
            p += sizeof *e + e->len;
        }
    }
    return out;
}

static void expect(const char *what, int fd, const char *want) {
    const char *got = events(fd);
    printf("%s: %s\n", what, got);
    check(what, strcmp(got, want) == 0);
    if (strcmp(got, want) != 0) printf("  wanted: %s\n", want);
}

static void touch(const char *path) {
    close(open(path, O_WRONLY | O_CREAT, 0644));
}

static void on_alarm(int sig) { (void)sig; }

// The directory tests, in a directory of the file system under `base`.
static void directory_events(int fd, const char *base, const char *tag) {
    char dir[256], a[300], b[300], c[300], sub[300], lnk[300];
    snprintf(dir, sizeof dir, "%s/inotify.XXXXXX", base);
    if (!mkdtemp(dir)) {
        printf("%s: mkdtemp: %s\n", tag, strerror(errno));
        failures++;
        return;
    }
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(c, sizeof c, "%s/c", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(lnk, sizeof lnk, "%s/link", dir);
    char what[128];
#define WHAT(s) (snprintf(what, sizeof what, "%s %s", tag, s), what)

    int dwd = inotify_add_watch(fd, dir, IN_ALL_EVENTS);
    label(dwd, "D");
    check(WHAT("watch directory"), dwd > 0);

    int f = open(a, O_WRONLY | O_CREAT | O_EXCL, 0644);
    write(f, "x", 1);
    write(f, "y", 1);
    close(f);
    expect(WHAT("create, two writes, close"), fd, "D CREATE a; D OPEN a; D MODIFY a; D CLOSE_WRITE a");

    int fwd = inotify_add_watch(fd, a, IN_ALL_EVENTS);
    label(fwd, "F");
    f = open(a, O_RDONLY);
    char tmp[8];
    read(f, tmp, 1);
    read(f, tmp, 1);
    read(f, tmp, 8);
    close(f);
    expect(WHAT("open, reads, close"), fd, "D OPEN a; F OPEN; D ACCESS a; F ACCESS; D ACCESS a; F ACCESS; D CLOSE_NOWRITE a; F CLOSE_NOWRITE");

    chmod(a, 0600);
    truncate(a, 1);
    utimensat(AT_FDCWD, a, NULL, 0);
    expect(WHAT("chmod, truncate, utimensat"), fd, "D ATTRIB a; F ATTRIB; D MODIFY a; F MODIFY; D ATTRIB a; F ATTRIB");

    f = open(a, O_WRONLY | O_TRUNC);
    close(f);
    expect(WHAT("open O_TRUNC"), fd, "D OPEN a; F OPEN; D MODIFY a; F MODIFY; D CLOSE_WRITE a; F CLOSE_WRITE");

    mkdir(sub, 0755);
    int s = open(sub, O_RDONLY | O_DIRECTORY);
    syscall(SYS_getdents64, s, buf, sizeof buf);
    close(s);
    expect(WHAT("mkdir, opendir, getdents"), fd, "D CREATE|ISDIR sub; D OPEN|ISDIR sub; D ACCESS|ISDIR sub; D CLOSE_NOWRITE|ISDIR sub");

    rename(a, b);
    const char *got = events(fd);
    printf("%s: %s\n", WHAT("rename"), got);
    check(WHAT("rename"), strcmp(got, "D MOVED_FROM a; D MOVED_TO b; F MOVE_SELF") == 0);
    check(WHAT("rename cookies match"), ncookies == 2 && last_cookies[0] == last_cookies[1] && last_cookies[0] != 0);

    link(b, c);
    expect(WHAT("link"), fd, "F ATTRIB; D CREATE c");
    unlink(c);
    expect(WHAT("unlink one of two links"), fd, "F ATTRIB; D DELETE c");

    symlink("b", lnk);
    expect(WHAT("symlink"), fd, "D CREATE link");
    int lwd = inotify_add_watch(fd, lnk, IN_ATTRIB | IN_DONT_FOLLOW);
    label(lwd, "L");
    check(WHAT("IN_DONT_FOLLOW watches the link itself"), lwd > 0 && lwd != fwd);
    check(WHAT("following the link finds the file's watch"), inotify_add_watch(fd, lnk, IN_ALL_EVENTS) == fwd);
    unlink(lnk);
    expect(WHAT("unlink symlink"), fd, "L ATTRIB; L IGNORED; D DELETE link");

    // A rename over an existing file deletes that file.
    touch(a);
    int owd = inotify_add_watch(fd, a, IN_ALL_EVENTS);
    label(owd, "O");
    events(fd);
    rename(b, a);
    expect(WHAT("rename over a watched file"), fd, "D MOVED_FROM b; D MOVED_TO a; O ATTRIB; F MOVE_SELF; O DELETE_SELF; O IGNORED");

    unlink(a);
    expect(WHAT("unlink last link"), fd, "F ATTRIB; F DELETE_SELF; F IGNORED; D DELETE a");

    int swd = inotify_add_watch(fd, sub, IN_ALL_EVENTS);
    label(swd, "S");
    rename(sub, c);
    rename(c, sub);
    expect(WHAT("rename a directory"), fd, "D MOVED_FROM|ISDIR sub; D MOVED_TO|ISDIR c; S MOVE_SELF; D MOVED_FROM|ISDIR c; D MOVED_TO|ISDIR sub; S MOVE_SELF");
    rmdir(sub);
    expect(WHAT("rmdir"), fd, "S DELETE_SELF; S IGNORED; D DELETE|ISDIR sub");

    check(WHAT("rm_watch"), inotify_rm_watch(fd, dwd) == 0);
    expect(WHAT("rm_watch event"), fd, "D IGNORED");
    check(WHAT("rm_watch again: EINVAL"), inotify_rm_watch(fd, dwd) == -1 && errno == EINVAL);
    touch(a);
    unlink(a);
    expect(WHAT("no events after rm_watch"), fd, "");

    dwd = inotify_add_watch(fd, dir, IN_DELETE_SELF);
    label(dwd, "D2");
    rmdir(dir);
    expect(WHAT("rmdir the watched directory"), fd, "D2 DELETE_SELF; D2 IGNORED");
#undef WHAT
}

static void flags_and_errors(int fd, const char *dir) {
    char file[300];
    snprintf(file, sizeof file, "%s/flags", dir);
    touch(file);
    int pipefd[2];
    pipe(pipefd);
    errno = 0;
    printf("init1(bad flag): %s\n", err(inotify_init1(1)));
    printf("add_watch on a bad fd: %s\n", err(inotify_add_watch(999, dir, IN_ALL_EVENTS)));
    printf("add_watch on a pipe: %s\n", err(inotify_add_watch(pipefd[0], dir, IN_ALL_EVENTS)));
    printf("add_watch with mask 0: %s\n", err(inotify_add_watch(fd, dir, 0)));
    printf("add_watch of a missing path: %s\n", err(inotify_add_watch(fd, "/nonexistent/x", IN_ALL_EVENTS)));
    printf("IN_ONLYDIR on a file: %s\n", err(inotify_add_watch(fd, file, IN_ONLYDIR | IN_ALL_EVENTS)));
    printf("IN_MASK_ADD|IN_MASK_CREATE: %s\n", err(inotify_add_watch(fd, file, IN_MASK_ADD | IN_MASK_CREATE | IN_OPEN)));
    printf("rm_watch of an unknown wd: %s\n", err(inotify_rm_watch(fd, 12345)));
    printf("rm_watch on a pipe: %s\n", err(inotify_rm_watch(pipefd[0], 1)));
    close(pipefd[0]);
    close(pipefd[1]);

    int w1 = inotify_add_watch(fd, file, IN_OPEN);
    label(w1, "W");
    int w2 = inotify_add_watch(fd, file, IN_CLOSE);
    check("same inode twice gives the same wd", w1 > 0 && w1 == w2);
    check("IN_MASK_CREATE on a watched inode: EEXIST", inotify_add_watch(fd, file, IN_MASK_CREATE | IN_OPEN) == -1 && errno == EEXIST);
    close(open(file, O_RDONLY));
    expect("replaced mask: close only", fd, "W CLOSE_NOWRITE");
    inotify_add_watch(fd, file, IN_MASK_ADD | IN_OPEN);
    close(open(file, O_RDONLY));
    expect("IN_MASK_ADD: open and close", fd, "W OPEN; W CLOSE_NOWRITE");
    inotify_rm_watch(fd, w1);
    expect("rm_watch", fd, "W IGNORED");

    int w3 = inotify_add_watch(fd, file, IN_ONESHOT | IN_OPEN | IN_CLOSE);
    label(w3, "ONE");
    check("wds are not reused at once", w3 > w1);
    close(open(file, O_RDONLY));
    close(open(file, O_RDONLY));
    expect("IN_ONESHOT", fd, "ONE OPEN; ONE IGNORED");
    printf("rm_watch after the oneshot fired: %s\n", err(inotify_rm_watch(fd, w3)));

    int w4 = inotify_add_watch(fd, file, IN_EXCL_UNLINK | IN_ATTRIB);
    label(w4, "X");
    chmod(file, 0600);
    expect("IN_EXCL_UNLINK accepted", fd, "X ATTRIB");
    unlink(file);
    expect("unlinked", fd, "X ATTRIB; X IGNORED");
}

static void reading(int fd, const char *dir) {
    char file[300];
    snprintf(file, sizeof file, "%s/reading", dir);
    int w = inotify_add_watch(fd, dir, IN_CREATE | IN_DELETE);
    label(w, "R");
    check("non-blocking read of an empty queue: EAGAIN", read(fd, buf, sizeof buf) == -1 && errno == EAGAIN);
    int avail = -1;
    check("FIONREAD on an empty queue: 0", ioctl(fd, FIONREAD, &avail) == 0 && avail == 0);
    struct pollfd p = {fd, POLLIN, 0};
    check("poll: not readable", poll(&p, 1, 0) == 0);
    touch(file);
    unlink(file);
    // "reading" + NUL is padded to 16 bytes: each event is 32.
    check("FIONREAD: two events of 32 bytes", ioctl(fd, FIONREAD, &avail) == 0 && avail == 64);
    check("poll: readable", poll(&p, 1, 0) == 1 && p.revents == POLLIN);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(fd, &rs);
    struct timeval tv = {0, 0};
    check("select: readable", select(fd + 1, &rs, NULL, NULL, &tv) == 1 && FD_ISSET(fd, &rs));
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    check("epoll: readable", epoll_wait(ep, &out, 1, 0) == 1 && out.data.u32 == 7 && out.events == EPOLLIN);

    check("read into 16 bytes: EINVAL", read(fd, buf, 16) == -1 && errno == EINVAL);
    ssize_t n = read(fd, buf, 48);
    struct inotify_event *e = (struct inotify_event *)buf;
    check("read into 48 bytes: one whole event", n == 32 && e->len == 16 && e->mask == IN_CREATE && strcmp(e->name, "reading") == 0);
    n = read(fd, buf, sizeof buf);
    check("the next read: the other event", n == 32 && e->mask == IN_DELETE);
    check("epoll: drained", epoll_wait(ep, &out, 1, 0) == 0);

    // A blocking read wakes when another process makes an event.
    int bfd = inotify_init();
    inotify_add_watch(bfd, dir, IN_CREATE | IN_DELETE);
    pid_t child = fork();
    if (child == 0) {
        usleep(50000);
        touch(file);
        _exit(0);
    }
    n = read(bfd, buf, sizeof buf);
    check("blocking read wakes on an event", n == 32 && e->mask == IN_CREATE && strcmp(e->name, "reading") == 0);
    waitpid(child, NULL, 0);
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    struct epoll_event ev2 = {.events = EPOLLIN, .data.u32 = 8};
    epoll_ctl(ep, EPOLL_CTL_ADD, bfd, &ev2);
    child = fork();
    if (child == 0) {
        usleep(50000);
        unlink(file);
        _exit(0);
    }
    check("epoll_wait wakes on an event", epoll_wait(ep, &out, 1, 5000) == 1 && out.data.u32 == 8);
    waitpid(child, NULL, 0);
    read(bfd, buf, sizeof buf);

    // A signal without SA_RESTART interrupts a blocked read.
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval soon = {{0, 0}, {0, 100000}};
    setitimer(ITIMER_REAL, &soon, NULL);
    n = read(bfd, buf, sizeof buf);
    check("blocked read interrupted by a signal: EINTR", n == -1 && errno == EINTR);
    close(bfd);
    close(ep);
    inotify_rm_watch(fd, w);
    events(fd);
}

static void overflow(const char *dir) {
    int fd = inotify_init1(IN_NONBLOCK);
    char file[300];
    snprintf(file, sizeof file, "%s/o", dir);
    touch(file);
    inotify_add_watch(fd, dir, IN_OPEN | IN_CLOSE_NOWRITE);
    // Alternating events never merge: 2 * 8300 of them overflow the 16384 queue.
    for (int i = 0; i < 8300; i++) close(open(file, O_RDONLY));
    int count = 0, overflows = 0, last_overflow = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            count++;
            last_overflow = e->mask == IN_Q_OVERFLOW && e->wd == -1 && e->len == 0;
            overflows += e->mask == IN_Q_OVERFLOW;
            p += sizeof *e + e->len;
        }
    }
    printf("overflow: %d events, %d overflow, last is overflow %d\n", count, overflows, last_overflow);
    check("queue overflow", count == 16385 && overflows == 1 && last_overflow);
    close(fd);
    unlink(file);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    check("inotify_init1(IN_NONBLOCK|IN_CLOEXEC)", fd >= 0 && (fcntl(fd, F_GETFL) & O_NONBLOCK) && fcntl(fd, F_GETFD) == FD_CLOEXEC);
    int fd0 = inotify_init();
    check("inotify_init", fd0 >= 0 && !(fcntl(fd0, F_GETFL) & O_NONBLOCK) && fcntl(fd0, F_GETFD) == 0);
    close(fd0);

    char tmp[] = "/tmp/inotify.XXXXXX";
    if (!mkdtemp(tmp)) {
        printf("mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    flags_and_errors(fd, tmp);
    reading(fd, tmp);
    directory_events(fd, tmp, "tmp");
    directory_events(fd, "/var/tmp", "var/tmp");
    overflow(tmp);
    rmdir(tmp);
    printf("%d failures\n", failures);
    return failures != 0;
}
