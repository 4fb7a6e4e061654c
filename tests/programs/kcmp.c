// kcmp(2): whether two processes (or threads) share a file description, an address
// space, a descriptor table, a file-system context or signal handlers.
//   - KCMP_FILE: dup'd and fork-inherited descriptors are the same description, a
//     second open of the same file is not; EBADF for a closed descriptor
//   - KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND: a thread shares them all, a forked
//     child none, a vfork-like clone(CLONE_VM) child the address space
//   - the order it gives (1 or 2) is consistent: a < b and b > a
//   - KCMP_EPOLL_TFD: a file against the nth one an epoll set has under a
//     descriptor number (the same file added twice under two numbers), in this
//     process and a forked child's inherited set; ENOENT, EINVAL, EBADF
//   - ESRCH for a pid nobody has, EINVAL for an unknown type, EPERM for a process
//     that may not be traced (another user's)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static long kcmp(pid_t a, pid_t b, int type, unsigned long i1, unsigned long i2) {
    return syscall(SYS_kcmp, a, b, type, i1, i2);
}

/* 0 same, "different" for 1 or 2 (the order is the kernel's), or the errno. */
static const char *cmp(long r) {
    static char buf[64];
    if (r == 0) return "same";
    if (r == 1 || r == 2) return "different";
    if (r < 0) snprintf(buf, sizeof buf, "-1 %s", errname(errno));
    else snprintf(buf, sizeof buf, "%ld", r);
    return buf;
}

static atomic_int thread_tid, thread_done;

static void *thread(void *arg) {
    (void)arg;
    thread_tid = gettid();
    while (!thread_done) sched_yield();
    return NULL;
}

static int pipe_in[2];

static int parked(void *arg) {
    (void)arg;
    char c;
    read(pipe_in[0], &c, 1);
    _exit(0);
}

int main(void) {
    pid_t me = getpid();
    int fd = open("/proc/self/exe", O_RDONLY);
    int dup_fd = dup(fd);
    int other_fd = open("/proc/self/exe", O_RDONLY);
    printf("KCMP_FILE, a dup: %s\n", cmp(kcmp(me, me, KCMP_FILE, fd, dup_fd)));
    printf("KCMP_FILE, another open of the file: %s\n", cmp(kcmp(me, me, KCMP_FILE, fd, other_fd)));
    printf("KCMP_FILE, a closed descriptor: %s\n", cmp(kcmp(me, me, KCMP_FILE, fd, 999)));
    long ab = kcmp(me, me, KCMP_FILE, fd, other_fd), ba = kcmp(me, me, KCMP_FILE, other_fd, fd);
    check("the order is the same both ways", (ab == 1 && ba == 2) || (ab == 2 && ba == 1));

    int ep = epoll_create1(0), watched[2];
    pipe(watched);
    int watched_dup = dup(watched[0]);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, watched[0], &ev);
    epoll_ctl(ep, EPOLL_CTL_ADD, watched_dup, &ev);
    struct kcmp_epoll_slot slot = {ep, watched[0], 0};
    printf("KCMP_EPOLL_TFD, the watched file: %s\n", cmp(kcmp(me, me, KCMP_EPOLL_TFD, watched[0], (unsigned long)&slot)));
    printf("KCMP_EPOLL_TFD, its dup: %s\n", cmp(kcmp(me, me, KCMP_EPOLL_TFD, watched_dup, (unsigned long)&slot)));
    printf("KCMP_EPOLL_TFD, the pipe's other end: %s\n", cmp(kcmp(me, me, KCMP_EPOLL_TFD, watched[1], (unsigned long)&slot)));
    slot.tfd = watched_dup;
    printf("KCMP_EPOLL_TFD, under the dup's number: %s\n", cmp(kcmp(me, me, KCMP_EPOLL_TFD, watched[0], (unsigned long)&slot)));
    slot.toff = 1;
    printf("KCMP_EPOLL_TFD, a second entry under it: %s\n", cmp(kcmp(me, me, KCMP_EPOLL_TFD, watched[0], (unsigned long)&slot)));
    struct kcmp_epoll_slot unwatched = {ep, watched[1], 0}, not_epoll = {fd, fd, 0}, closed = {999, fd, 0};
    printf("KCMP_EPOLL_TFD, a descriptor not watched: %s\n", cmp(kcmp(me, me, KCMP_EPOLL_TFD, watched[1], (unsigned long)&unwatched)));
    printf("KCMP_EPOLL_TFD, a set that is no epoll: %s\n", cmp(kcmp(me, me, KCMP_EPOLL_TFD, fd, (unsigned long)&not_epoll)));
    printf("KCMP_EPOLL_TFD, a closed set: %s\n", cmp(kcmp(me, me, KCMP_EPOLL_TFD, fd, (unsigned long)&closed)));
    printf("KCMP_EPOLL_TFD, a closed file: %s\n", cmp(kcmp(me, me, KCMP_EPOLL_TFD, 999, (unsigned long)&slot)));
    printf("KCMP_EPOLL_TFD, a bad slot address: %s\n", cmp(kcmp(me, me, KCMP_EPOLL_TFD, fd, 8)));

    pthread_t t;
    pthread_create(&t, NULL, thread, NULL);
    while (!thread_tid) sched_yield();
    printf("a thread: VM %s, FILES %s, FS %s, SIGHAND %s\n", cmp(kcmp(me, thread_tid, KCMP_VM, 0, 0)),
           cmp(kcmp(me, thread_tid, KCMP_FILES, 0, 0)), cmp(kcmp(me, thread_tid, KCMP_FS, 0, 0)),
           cmp(kcmp(me, thread_tid, KCMP_SIGHAND, 0, 0)));
    thread_done = 1;
    pthread_join(t, NULL);

    pipe(pipe_in);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        char c;
        read(pipe_in[0], &c, 1);
        _exit(0);
    }
    printf("a forked child: VM %s, FILES %s, FS %s, SIGHAND %s\n", cmp(kcmp(me, child, KCMP_VM, 0, 0)),
           cmp(kcmp(me, child, KCMP_FILES, 0, 0)), cmp(kcmp(me, child, KCMP_FS, 0, 0)),
           cmp(kcmp(me, child, KCMP_SIGHAND, 0, 0)));
    printf("KCMP_FILE, the child's inherited copy: %s\n", cmp(kcmp(me, child, KCMP_FILE, fd, fd)));
    printf("KCMP_FILE, the child's copy against another open: %s\n", cmp(kcmp(me, child, KCMP_FILE, other_fd, fd)));
    struct kcmp_epoll_slot inherited = {ep, watched[0], 0};
    printf("KCMP_EPOLL_TFD, the child's inherited set: %s\n", cmp(kcmp(me, child, KCMP_EPOLL_TFD, watched[0], (unsigned long)&inherited)));

    static char stack[65536];
    pid_t vmchild = clone(parked, stack + sizeof stack, CLONE_VM | CLONE_FS | SIGCHLD, NULL);
    printf("a CLONE_VM|CLONE_FS child: VM %s, FILES %s, FS %s\n", cmp(kcmp(me, vmchild, KCMP_VM, 0, 0)),
           cmp(kcmp(me, vmchild, KCMP_FILES, 0, 0)), cmp(kcmp(me, vmchild, KCMP_FS, 0, 0)));

    printf("a pid nobody has: %s\n", cmp(kcmp(me, 999999, KCMP_VM, 0, 0)));
    printf("type 99: %s\n", cmp(kcmp(me, me, 99, 0, 0)));
    printf("type -1: %s\n", cmp(kcmp(me, me, -1, 0, 0)));
    write(pipe_in[1], "xx", 2);
    waitpid(child, NULL, 0);
    waitpid(vmchild, NULL, 0);

    /* Another user's process: EPERM (only when we are root and may switch users). */
    if (geteuid() == 0) {
        int go[2];
        pipe(go);
        fflush(stdout);
        pid_t other = fork();
        if (other == 0) {
            if (setresuid(65534, 65534, 65534) != 0) _exit(1);
            char c;
            read(go[0], &c, 1);
            _exit(0);
        }
        /* Once it changed its ids, a kcmp from another unprivileged process fails. */
        int res[2];
        pipe(res);
        pid_t asker = fork();
        if (asker == 0) {
            setresuid(1000, 1000, 1000);
            long r;
            while ((r = kcmp(getpid(), other, KCMP_VM, 0, 0)) == 1 || r == 2) sched_yield();
            int e = errno;
            write(res[1], &e, sizeof e);
            _exit(0);
        }
        int e = 0;
        read(res[0], &e, sizeof e);
        printf("kcmp with another user's process: -1 %s\n", errname(e));
        write(go[1], "x", 1);
        waitpid(other, NULL, 0);
        waitpid(asker, NULL, 0);
    }
    printf("%d failures\n", failures);
    return failures != 0;
}
