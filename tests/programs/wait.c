// fork, wait4, waitid and their options, one mode per argument:
//   basic     exit statuses through waitpid/wait, a signalled child, ECHILD for non-children
//   wnohang   WNOHANG returns 0 while the child lives (it waits on a futex in shared memory)
//   waitid    waitid with P_PID, P_ALL and P_PGID; siginfo fields; EINVAL/ECHILD
//   wnowait   WNOWAIT leaves the child waitable: its status reads twice
//   stopcont  WUNTRACED/WSTOPPED and WCONTINUED; SIGKILL of a stopped child
//   echild    ECHILD without children; SIGCHLD ignored means children are auto-reaped
//   storm     64 children alive at once, each exits with its own status; all reaped
//   chain     a chain of 5 processes, each forking the next and passing exit codes up
//   clone     clone3 as fork, vfork (whose wait a signal does not end), and a clone child
//             with no exit signal (__WALL/__WCLONE)
//   rusage    children's CPU time from wait4's rusage and getrusage(RUSAGE_CHILDREN)
// Synchronisation is by futexes on MAP_SHARED memory and by wait itself; never by sleeping.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "timing.h"

static atomic_int *shm;

static void futex_wait(atomic_int *addr, int val) {
    syscall(SYS_futex, addr, FUTEX_WAIT, val, NULL, NULL, 0);
}

static void futex_wake(atomic_int *addr) {
    syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Blocks until *addr == want. */
static void wait_for(atomic_int *addr, int want) {
    int v;
    while ((v = atomic_load(addr)) != want) futex_wait(addr, v);
}

static void set_and_wake(atomic_int *addr, int v) {
    atomic_store(addr, v);
    futex_wake(addr);
}

static void add_and_wake(atomic_int *addr, int v) {
    atomic_fetch_add(addr, v);
    futex_wake(addr);
}

static pid_t fork_flushed(void) {
    fflush(stdout);
    return fork();
}

static const char *describe(int st) {
    static char buf[64];
    if (WIFEXITED(st)) snprintf(buf, sizeof buf, "exited %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(buf, sizeof buf, "killed by signal %d", WTERMSIG(st));
    else if (WIFSTOPPED(st)) snprintf(buf, sizeof buf, "stopped by signal %d", WSTOPSIG(st));
    else if (WIFCONTINUED(st)) snprintf(buf, sizeof buf, "continued");
    else snprintf(buf, sizeof buf, "raw %#x", st);
    return buf;
}

static void mode_basic(void) {
    int codes[] = {0, 1, 42, 255, 256, 257};
    pid_t p[6];
    for (int i = 0; i < 6; i++)
        if ((p[i] = fork_flushed()) == 0) _exit(codes[i]);
    for (int i = 5; i >= 0; i--) { /* reaped in the other order */
        int st = -1;
        pid_t r = waitpid(p[i], &st, 0);
        printf("child _exit(%d): waitpid returns its pid: %s, %s\n", codes[i], r == p[i] ? "yes" : "no",
               describe(st));
    }
    pid_t q[3];
    for (int i = 0; i < 3; i++)
        if ((q[i] = fork_flushed()) == 0) _exit(10 + i);
    int sum = 0, found = 0;
    for (int i = 0; i < 3; i++) {
        int st;
        pid_t r = wait(&st);
        for (int j = 0; j < 3; j++)
            if (r == q[j]) found |= 1 << j;
        sum += WEXITSTATUS(st);
    }
    check("wait() reaped the three children", found == 7);
    printf("sum of their statuses: %d\n", sum);

    pid_t k = fork_flushed();
    if (k == 0) {
        signal(SIGTERM, SIG_DFL);
        kill(getpid(), SIGTERM);
        _exit(1);
    }
    int st;
    check("waitpid on a child killed by SIGTERM", waitpid(k, &st, 0) == k);
    printf("it was %s (WIFSIGNALED=%d WIFEXITED=%d)\n", describe(st), !!WIFSIGNALED(st), !!WIFEXITED(st));

    pid_t r = fork_flushed();
    if (r == 0) _exit(0);
    struct rusage ru;
    check("wait4 with rusage", wait4(r, &st, 0, &ru) == r && WIFEXITED(st));
    check("fork returns distinct pids", p[0] != p[1] && q[0] != q[1] && k != r);

    errno = 0;
    check("waitpid(own pid) = ECHILD", waitpid(getpid(), &st, 0) == -1 && errno == ECHILD);
    errno = 0;
    check("waitpid(reaped child) = ECHILD", waitpid(p[0], &st, 0) == -1 && errno == ECHILD);
    errno = 0;
    check("waitpid(-1) without children = ECHILD", waitpid(-1, &st, 0) == -1 && errno == ECHILD);
    errno = 0;
    check("wait4 with bad options = EINVAL", wait4(-1, &st, 0x1000, NULL) == -1 && errno == EINVAL);

    /* The child sees its parent; the parent sees the child's pid returned by fork. */
    pid_t me = getpid();
    shm[0] = 0;
    pid_t c = fork_flushed();
    if (c == 0) {
        shm[1] = getpid();
        _exit(getppid() == me ? 0 : 1);
    }
    check("child's getppid() is the parent", waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    check("child's getpid() is what fork returned", shm[1] == c);
}

static void mode_wnohang(void) {
    shm[0] = 0;
    pid_t c = fork_flushed();
    if (c == 0) {
        wait_for(&shm[0], 1);
        _exit(9);
    }
    int st = 12345;
    check("wait4(child, WNOHANG) = 0 while it runs", wait4(c, &st, WNOHANG, NULL) == 0);
    check("status untouched by WNOHANG returning 0", st == 12345);
    check("waitpid(-1, WNOHANG) = 0 while it runs", waitpid(-1, &st, WNOHANG) == 0);
    siginfo_t si;
    memset(&si, 0x5a, sizeof si);
    check("waitid(P_ALL, WEXITED|WNOHANG) = 0 while it runs", waitid(P_ALL, 0, &si, WEXITED | WNOHANG) == 0);
    check("... and si_pid/si_signo zeroed", si.si_pid == 0 && si.si_signo == 0);
    set_and_wake(&shm[0], 1);
    pid_t r = wait4(c, &st, 0, NULL);
    check("blocking wait4 then reaps it", r == c);
    printf("child %s\n", describe(st));
    errno = 0;
    check("wait4(-1, WNOHANG) without children = ECHILD", wait4(-1, &st, WNOHANG, NULL) == -1 && errno == ECHILD);

    /* WNOHANG when the child has already exited returns it. */
    c = fork_flushed();
    if (c == 0) _exit(21);
    siginfo_t w;
    waitid(P_PID, c, &w, WEXITED | WNOWAIT); /* it is now a zombie */
    r = waitpid(c, &st, WNOHANG);
    check("waitpid(zombie, WNOHANG) reaps it", r == c && WIFEXITED(st) && WEXITSTATUS(st) == 21);
}

static void mode_waitid(void) {
    siginfo_t si;
    pid_t c = fork_flushed();
    if (c == 0) _exit(3);
    memset(&si, 0, sizeof si);
    check("waitid(P_PID) = 0", waitid(P_PID, c, &si, WEXITED) == 0);
    check("si_pid is the child", si.si_pid == c);
    check("si_uid is our uid", si.si_uid == getuid());
    printf("P_PID: si_signo=%d si_code=%s si_status=%d\n", si.si_signo,
           si.si_code == CLD_EXITED ? "CLD_EXITED" : "other", si.si_status);

    c = fork_flushed();
    if (c == 0) {
        for (;;) pause();
    }
    kill(c, SIGKILL);
    memset(&si, 0, sizeof si);
    check("waitid(P_ALL) = 0", waitid(P_ALL, 0, &si, WEXITED) == 0);
    check("si_pid is the killed child", si.si_pid == c);
    printf("P_ALL: si_signo=%d si_code=%s si_status=%d\n", si.si_signo,
           si.si_code == CLD_KILLED ? "CLD_KILLED" : "other", si.si_status);

    /* Two children in a new process group, plus one outside it. */
    shm[0] = 0;
    pid_t g1 = fork_flushed();
    if (g1 == 0) {
        setpgid(0, 0);
        wait_for(&shm[0], 1);
        _exit(4);
    }
    setpgid(g1, g1);
    pid_t g2 = fork_flushed();
    if (g2 == 0) {
        setpgid(0, g1);
        wait_for(&shm[0], 1);
        _exit(5);
    }
    setpgid(g2, g1);
    pid_t other = fork_flushed();
    if (other == 0) {
        wait_for(&shm[0], 2);
        _exit(6);
    }
    check("getpgid(first) is itself", getpgid(g1) == g1);
    check("getpgid(second) is the first", getpgid(g2) == g1);
    check("getpgid(third) is ours", getpgid(other) == getpgrp());
    set_and_wake(&shm[0], 1);
    int sum = 0, n = 0;
    for (int i = 0; i < 2; i++) {
        memset(&si, 0, sizeof si);
        if (waitid(P_PGID, g1, &si, WEXITED) == 0 && (si.si_pid == g1 || si.si_pid == g2)) {
            n++;
            sum += si.si_status;
        }
    }
    check("waitid(P_PGID) reaped both members", n == 2);
    printf("P_PGID statuses sum: %d\n", sum);
    errno = 0;
    check("waitid(P_PGID) again = ECHILD (the other child is not in the group)",
          waitid(P_PGID, g1, &si, WEXITED | WNOHANG) == -1 && errno == ECHILD);
    set_and_wake(&shm[0], 2);
    memset(&si, 0, sizeof si);
    check("waitid(P_PID, other)", waitid(P_PID, other, &si, WEXITED) == 0 && si.si_status == 6);

    errno = 0;
    check("waitid without WEXITED/WSTOPPED/WCONTINUED = EINVAL", waitid(P_ALL, 0, &si, WNOHANG) == -1 && errno == EINVAL);
    errno = 0;
    check("waitid bad idtype = EINVAL", waitid((idtype_t)42, 0, &si, WEXITED) == -1 && errno == EINVAL);
    errno = 0;
    check("waitid(P_PID, self) = ECHILD", waitid(P_PID, getpid(), &si, WEXITED) == -1 && errno == ECHILD);
    errno = 0;
    check("waitid(P_ALL) without children = ECHILD", waitid(P_ALL, 0, &si, WEXITED) == -1 && errno == ECHILD);
}

static void mode_wnowait(void) {
    pid_t c = fork_flushed();
    if (c == 0) _exit(7);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    check("waitid(WEXITED|WNOWAIT) first", waitid(P_PID, c, &si, WEXITED | WNOWAIT) == 0 && si.si_pid == c);
    printf("first peek: si_code=%s si_status=%d\n", si.si_code == CLD_EXITED ? "CLD_EXITED" : "other", si.si_status);
    memset(&si, 0, sizeof si);
    check("waitid(WEXITED|WNOWAIT) second", waitid(P_ALL, 0, &si, WEXITED | WNOWAIT) == 0 && si.si_pid == c);
    printf("second peek: si_status=%d\n", si.si_status);
    int st;
    check("waitpid still reaps it", waitpid(c, &st, 0) == c);
    printf("reaped: %s\n", describe(st));
    errno = 0;
    check("then it is gone: ECHILD", waitpid(c, &st, WNOHANG) == -1 && errno == ECHILD);
}

static void mode_stopcont(void) {
    int st;
    shm[0] = 0;
    pid_t c = fork_flushed();
    if (c == 0) {
        kill(getpid(), SIGSTOP);
        wait_for(&shm[0], 1);
        _exit(12);
    }
    check("waitpid(WUNTRACED) returns the child", waitpid(c, &st, WUNTRACED) == c);
    printf("after SIGSTOP: %s\n", describe(st));
    check("the stop is reported once: waitpid(WUNTRACED|WNOHANG) = 0", waitpid(c, &st, WUNTRACED | WNOHANG) == 0);
    check("kill(SIGCONT)", kill(c, SIGCONT) == 0);
    check("waitpid(WCONTINUED) returns the child", waitpid(c, &st, WCONTINUED) == c);
    printf("after SIGCONT: %s\n", describe(st));
    check("the continue is reported once: waitpid(WCONTINUED|WNOHANG) = 0", waitpid(c, &st, WCONTINUED | WNOHANG) == 0);
    set_and_wake(&shm[0], 1);
    check("waitpid reaps it", waitpid(c, &st, 0) == c);
    printf("finally: %s\n", describe(st));

    /* The same through waitid, with the stop sent by the parent to a sleeping child. */
    shm[0] = 0;
    c = fork_flushed();
    if (c == 0) {
        wait_for(&shm[0], 1);
        _exit(13);
    }
    siginfo_t si;
    kill(c, SIGSTOP);
    memset(&si, 0, sizeof si);
    check("waitid(WSTOPPED)", waitid(P_PID, c, &si, WSTOPPED) == 0 && si.si_pid == c);
    printf("waitid stop: si_code=%s si_status=%d\n", si.si_code == CLD_STOPPED ? "CLD_STOPPED" : "other", si.si_status);
    kill(c, SIGCONT);
    memset(&si, 0, sizeof si);
    check("waitid(WCONTINUED)", waitid(P_PID, c, &si, WCONTINUED) == 0 && si.si_pid == c);
    printf("waitid continue: si_code=%s si_status=%d\n", si.si_code == CLD_CONTINUED ? "CLD_CONTINUED" : "other",
           si.si_status);
    set_and_wake(&shm[0], 1);
    memset(&si, 0, sizeof si);
    check("waitid(WEXITED)", waitid(P_PID, c, &si, WEXITED) == 0 && si.si_pid == c);
    printf("waitid exit: si_code=%s si_status=%d\n", si.si_code == CLD_EXITED ? "CLD_EXITED" : "other", si.si_status);

    /* A stopped child killed by SIGKILL. */
    c = fork_flushed();
    if (c == 0) {
        kill(getpid(), SIGSTOP);
        _exit(14);
    }
    waitpid(c, &st, WUNTRACED);
    check("child stopped", WIFSTOPPED(st));
    kill(c, SIGKILL);
    check("SIGKILL ends a stopped child", waitpid(c, &st, 0) == c);
    printf("stopped then SIGKILL: %s\n", describe(st));

    /* Without WUNTRACED a stop is not reported: waitpid waits for the exit. */
    shm[0] = 0;
    c = fork_flushed();
    if (c == 0) {
        kill(getpid(), SIGSTOP);
        _exit(15);
    }
    memset(&si, 0, sizeof si);
    waitid(P_PID, c, &si, WSTOPPED | WNOWAIT);
    check("stopped (seen with WNOWAIT)", si.si_code == CLD_STOPPED);
    check("waitpid(WNOHANG) without WUNTRACED ignores the stop", waitpid(c, &st, WNOHANG) == 0);
    kill(c, SIGCONT);
    check("waitpid without WCONTINUED waits for the exit", waitpid(c, &st, 0) == c);
    printf("then: %s\n", describe(st));
}

static void mode_echild(void) {
    int st;
    siginfo_t si;
    errno = 0;
    check("wait() = ECHILD", wait(&st) == -1 && errno == ECHILD);
    errno = 0;
    check("waitpid(-1, WNOHANG) = ECHILD", waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD);
    errno = 0;
    check("waitpid(0) = ECHILD", waitpid(0, &st, 0) == -1 && errno == ECHILD);
    errno = 0;
    check("waitid(P_ALL) = ECHILD", waitid(P_ALL, 0, &si, WEXITED) == -1 && errno == ECHILD);
    errno = 0;
    check("waitpid(1) = ECHILD (not our child, or ourselves)", waitpid(1, &st, 0) == -1 && errno == ECHILD);

    /* With SIGCHLD ignored, children are reaped by the kernel: wait blocks until they are
       all gone and then fails with ECHILD. */
    signal(SIGCHLD, SIG_IGN);
    shm[0] = 0;
    for (int i = 0; i < 3; i++)
        if (fork_flushed() == 0) {
            wait_for(&shm[0], 1);
            _exit(1);
        }
    set_and_wake(&shm[0], 1);
    errno = 0;
    check("SIGCHLD=SIG_IGN: wait() = ECHILD after the children exit", wait(&st) == -1 && errno == ECHILD);
    signal(SIGCHLD, SIG_DFL);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sa.sa_flags = SA_NOCLDWAIT;
    sigaction(SIGCHLD, &sa, NULL);
    if (fork_flushed() == 0) _exit(2);
    errno = 0;
    check("SA_NOCLDWAIT: wait() = ECHILD after the child exits", wait(&st) == -1 && errno == ECHILD);
    sa.sa_flags = 0;
    sigaction(SIGCHLD, &sa, NULL);
}

#define STORM 64

static void mode_storm(void) {
    pid_t pids[STORM];
    shm[0] = 0;
    shm[1] = 0;
    int forked = 0;
    for (int i = 0; i < STORM; i++) {
        pids[i] = fork_flushed();
        if (pids[i] == 0) {
            add_and_wake(&shm[1], 1);
            wait_for(&shm[0], 1);
            _exit((i * 37 + 11) % 256);
        }
        if (pids[i] > 0) forked++;
    }
    check("64 children forked", forked == STORM);
    wait_for(&shm[1], STORM); /* all 64 alive at once */
    check("all 64 running at once", atomic_load(&shm[1]) == STORM);
    set_and_wake(&shm[0], 1);
    int reaped = 0, right = 0;
    long sum = 0;
    for (;;) {
        int st;
        pid_t r = wait(&st);
        if (r < 0) break;
        reaped++;
        sum += WEXITSTATUS(st);
        for (int i = 0; i < STORM; i++)
            if (pids[i] == r && WIFEXITED(st) && WEXITSTATUS(st) == (i * 37 + 11) % 256) right++;
    }
    long want = 0;
    for (int i = 0; i < STORM; i++) want += (i * 37 + 11) % 256;
    printf("reaped %d children, statuses sum %ld (expected %ld)\n", reaped, sum, want);
    check("each child's status matches its pid", right == STORM);
    check("wait then ECHILD", errno == ECHILD);
}

/* Each level forks the next; the deepest exits 100; each level exits with its child's
   status plus one, and checks its parent and the child's pid. */
static int chain(int level, pid_t parent) {
    if (getppid() != parent) return 200;
    if (level == 5) return 100;
    pid_t me = getpid();
    pid_t c = fork_flushed();
    if (c == 0) _exit(chain(level + 1, me));
    int st;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st)) return 201;
    return WEXITSTATUS(st) + 1;
}

static void mode_chain(void) {
    pid_t me = getpid();
    pid_t c = fork_flushed();
    if (c == 0) _exit(chain(1, me));
    int st;
    check("waitpid(chain)", waitpid(c, &st, 0) == c);
    printf("chain of 5: %s (expected exited 104)\n", describe(st));
}

static int clone_fn(void *arg) {
    (void)arg;
    return 6;
}

static volatile int vfork_mark, mark_at_usr1 = -1;

static void vfork_usr1(int sig) {
    (void)sig;
    mark_at_usr1 = vfork_mark;
}

static void mode_clone(void) {
    int st;
    /* clone3 with only an exit signal is fork. */
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.exit_signal = SIGCHLD;
    fflush(stdout);
    long c = syscall(SYS_clone3, &ca, sizeof ca);
    if (c == 0) _exit(31);
    check("clone3(exit_signal=SIGCHLD) forks", c > 0);
    check("its child is waitable", waitpid((pid_t)c, &st, 0) == c);
    printf("clone3 child: %s\n", describe(st));

    /* CLONE_PARENT_SETTID through clone3. */
    int ptid = 0;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_PARENT_SETTID;
    ca.parent_tid = (uint64_t)(uintptr_t)&ptid;
    ca.exit_signal = SIGCHLD;
    fflush(stdout);
    c = syscall(SYS_clone3, &ca, sizeof ca);
    if (c == 0) _exit(32);
    check("clone3 CLONE_PARENT_SETTID writes the child's pid", c > 0 && ptid == c);
    waitpid((pid_t)c, &st, 0);
    errno = 0;
    check("clone3 with a too-small size = EINVAL", syscall(SYS_clone3, &ca, 8) == -1 && errno == EINVAL);

    /* vfork: the child shares memory and the parent waits until it exits. */
    vfork_mark = 0;
    fflush(stdout);
    pid_t v = vfork();
    if (v == 0) {
        vfork_mark = 1;
        _exit(33);
    }
    check("vfork child's write is visible (shared memory, parent resumed after it)", vfork_mark == 1);
    check("vfork child waitable", waitpid(v, &st, 0) == v && WIFEXITED(st) && WEXITSTATUS(st) == 33);

    /* Only a fatal signal ends the vfork parent's wait (Linux's is killable): one
     * with a handler runs after the child is done with the memory. */
    signal(SIGUSR1, vfork_usr1);
    vfork_mark = 0;
    fflush(stdout);
    v = vfork();
    if (v == 0) {
        kill(getppid(), SIGUSR1);
        spin_us(CLOCK_MONOTONIC, 2000);
        vfork_mark = 1;
        _exit(34);
    }
    check("vfork parent's signal handled once the child exited", vfork_mark == 1 && mark_at_usr1 == 1);
    check("that vfork child waitable", waitpid(v, &st, 0) == v && WIFEXITED(st) && WEXITSTATUS(st) == 34);
    signal(SIGUSR1, SIG_DFL);

    /* A "clone" child: no exit signal; only __WALL or __WCLONE see it. */
    size_t sz = 64 * 1024;
    char *stack = malloc(sz);
    fflush(stdout);
    pid_t cc = clone(clone_fn, stack + sz, 0, NULL);
    check("clone(flags=0) creates a child", cc > 0);
    errno = 0;
    check("waitpid(clone child, 0) = ECHILD", waitpid(cc, &st, 0) == -1 && errno == ECHILD);
    check("waitpid(clone child, __WCLONE) reaps it", waitpid(cc, &st, __WCLONE) == cc);
    printf("clone child: %s\n", describe(st));
    cc = clone(clone_fn, stack + sz, 0, NULL);
    check("waitpid(-1, __WALL) reaps another", waitpid(-1, &st, __WALL) == cc && WIFEXITED(st) && WEXITSTATUS(st) == 6);
    free(stack);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double tv(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

static void mode_rusage(void) {
    struct rusage before, after, ru;
    check("getrusage(RUSAGE_CHILDREN) before", getrusage(RUSAGE_CHILDREN, &before) == 0);
    check("no children yet: zero CPU time", tv(before.ru_utime) + tv(before.ru_stime) == 0);
    pid_t c = fork_flushed();
    if (c == 0) {
        /* 100 ms of its own CPU time, however busy the machine. */
        volatile unsigned long x = 0;
        while (cpu_now() < 0.1)
            for (int i = 0; i < 10000; i++) x += i;
        _exit(0);
    }
    int st;
    check("wait4 with rusage", wait4(c, &st, 0, &ru) == c);
    double cpu = tv(ru.ru_utime) + tv(ru.ru_stime);
    check("wait4's rusage: the child's CPU time >= 20 ms of its 100 ms busy loop", cpu >= 0.02);
    check("wait4's rusage: and not absurd (< 10 s)", cpu < 10);
    check("getrusage(RUSAGE_CHILDREN) after", getrusage(RUSAGE_CHILDREN, &after) == 0);
    double cpu2 = tv(after.ru_utime) + tv(after.ru_stime);
    check("RUSAGE_CHILDREN includes the reaped child", cpu2 >= 0.02);
    check("RUSAGE_CHILDREN maxrss > 0", after.ru_maxrss > 0);
    errno = 0;
    check("getrusage(42) = EINVAL", getrusage(42, &ru) == -1 && errno == EINVAL);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) {
        printf("mmap(MAP_SHARED|MAP_ANONYMOUS) failed: %s\n", strerror(errno));
        return 1;
    }
    const char *m = argc > 1 ? argv[1] : "";
    printf("mode %s\n", m);
    if (!strcmp(m, "basic")) mode_basic();
    else if (!strcmp(m, "wnohang")) mode_wnohang();
    else if (!strcmp(m, "waitid")) mode_waitid();
    else if (!strcmp(m, "wnowait")) mode_wnowait();
    else if (!strcmp(m, "stopcont")) mode_stopcont();
    else if (!strcmp(m, "echild")) mode_echild();
    else if (!strcmp(m, "storm")) mode_storm();
    else if (!strcmp(m, "chain")) mode_chain();
    else if (!strcmp(m, "clone")) mode_clone();
    else if (!strcmp(m, "rusage")) mode_rusage();
    else {
        printf("unknown mode\n");
        return 2;
    }
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
