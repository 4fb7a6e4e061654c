// RLIMIT_NPROC: fork and pthread_create fail with EAGAIN at the limit, never a hang.
//
// Linux does not enforce RLIMIT_NPROC for root (CAP_SYS_RESOURCE / CAP_SYS_ADMIN), so the
// program first shows that (a fork over the limit succeeds as root), then drops to an
// otherwise unused uid (54321) with setuid, which also drops the capabilities, and counts:
// the limit counts the processes and threads of the real uid, and nothing else on the host
// runs as uid 54321, so the native count is exactly ours, as it is in the sandbox.
// Natively this must run as root (it does in the test harness; the sandbox's user is root).
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static atomic_int *shm;

static void wait_for(atomic_int *addr, int want) {
    int v;
    while ((v = atomic_load(addr)) != want) syscall(SYS_futex, addr, FUTEX_WAIT, v, NULL, NULL, 0);
}

static void set_and_wake(atomic_int *addr, int v) {
    atomic_store(addr, v);
    syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

#define UID 54321

static void *idle_thread(void *arg) {
    (void)arg;
    wait_for(&shm[0], 1);
    return NULL;
}

static int as_user(void) {
    /* Runs as uid 54321 in a child: RLIMIT_NPROC soft 4, hard unchanged (inherited). */
    if (setgid(UID) != 0 || setuid(UID) != 0) {
        printf("setuid(%d) failed: %s\n", UID, strerror(errno));
        return 1;
    }
    check("uid is now 54321", getuid() == UID && geteuid() == UID);
    shm[0] = 0;
    pid_t kids[8];
    int n = 0, err = 0;
    for (int i = 0; i < 8; i++) {
        fflush(stdout);
        pid_t c = fork();
        if (c == 0) {
            wait_for(&shm[0], 1);
            _exit(0);
        }
        if (c < 0) {
            err = errno;
            break;
        }
        kids[n++] = c;
    }
    printf("with RLIMIT_NPROC=4 and 1 process of ours, forks before failure: %d\n", n);
    check("the failing fork gave EAGAIN", err == EAGAIN);

    /* Threads count too: at the limit, pthread_create fails with EAGAIN. */
    pthread_t t;
    int r = pthread_create(&t, NULL, idle_thread, NULL);
    check("pthread_create at the limit = EAGAIN", r == EAGAIN);

    /* One child gone (reaped): one fork is possible again. */
    set_and_wake(&shm[0], 1);
    for (int i = 0; i < n; i++) waitpid(kids[i], NULL, 0);
    shm[0] = 0;
    int m = 0;
    for (int i = 0; i < 8; i++) {
        fflush(stdout);
        pid_t c = fork();
        if (c == 0) {
            wait_for(&shm[0], 1);
            _exit(0);
        }
        if (c < 0) break;
        kids[m++] = c;
    }
    printf("after reaping them, forks before failure: %d\n", m);
    set_and_wake(&shm[0], 1);
    for (int i = 0; i < m; i++) waitpid(kids[i], NULL, 0);

    /* Raising the soft limit up to the hard limit needs no privilege. */
    struct rlimit rl;
    getrlimit(RLIMIT_NPROC, &rl);
    rlim_t hard = rl.rlim_max;
    rl.rlim_cur = 1;
    check("lower the soft limit to 1", setrlimit(RLIMIT_NPROC, &rl) == 0);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) _exit(0);
    check("fork over the limit = EAGAIN", c == -1 && errno == EAGAIN);
    rl.rlim_cur = hard;
    check("raise the soft limit to the hard limit", setrlimit(RLIMIT_NPROC, &rl) == 0);
    fflush(stdout);
    c = fork();
    if (c == 0) _exit(0);
    check("fork works again", c > 0 && waitpid(c, NULL, 0) == c);
    rl.rlim_cur = rl.rlim_max = 50;
    check("lower the hard limit", setrlimit(RLIMIT_NPROC, &rl) == 0);
    rl.rlim_max = hard;
    errno = 0;
    check("raising the hard limit without privilege = EPERM", setrlimit(RLIMIT_NPROC, &rl) == -1 && errno == EPERM);
    fflush(stdout);
    return failures;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (geteuid() != 0) {
        printf("this program must run as root (it does in the sandbox)\n");
        return 1;
    }
    shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    /* Only the soft limit is changed: the hard limit may be raised only with
       CAP_SYS_RESOURCE, which root does not always have (e.g. in a container). */
    struct rlimit rl;
    getrlimit(RLIMIT_NPROC, &rl);
    check("hard RLIMIT_NPROC is at least 100", rl.rlim_max >= 100);
    rl.rlim_cur = 1;
    check("setrlimit(RLIMIT_NPROC, soft 1) as root", setrlimit(RLIMIT_NPROC, &rl) == 0);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) _exit(0);
    check("as root, fork over RLIMIT_NPROC still succeeds", c > 0 && waitpid(c, NULL, 0) == c);

    rl.rlim_cur = 4;
    setrlimit(RLIMIT_NPROC, &rl);
    fflush(stdout);
    c = fork();
    if (c == 0) _exit(as_user());
    int st;
    waitpid(c, &st, 0);
    check("the uid-54321 child finished cleanly", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
