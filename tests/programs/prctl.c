// Process relationships and prctl, one mode per argument:
//   reparent   an orphaned grandchild is reparented to us (we are a child subreaper, so
//              natively and in the sandbox, where we are PID 1, the answer is the same)
//   subreaper  PR_SET_CHILD_SUBREAPER in a middle process; reparenting up a chain of them
//   pdeathsig  PR_SET_PDEATHSIG: the child gets its signal when its parent exits
//   name       PR_SET_NAME / PR_GET_NAME, per thread, inherited by fork
//   nnp        PR_SET_NO_NEW_PRIVS / PR_GET_NO_NEW_PRIVS, inherited, cannot be unset
//   dumpable   PR_SET_DUMPABLE / PR_GET_DUMPABLE
//   sessions   setsid, setpgid, getpgid, getsid and their errors
//   pgkill     kill(-pgid) and kill(0) reach a whole process group
// Facts that differ between a native run (started by the test harness) and the sandbox
// (where we are PID 1, a session leader) are never printed: only relationships are.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
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

static pid_t fork_flushed(void) {
    fflush(stdout);
    return fork();
}

/* Waits for a child; returns its exit code, or 128+signal. */
static int reap(pid_t c) {
    int st;
    if (waitpid(c, &st, 0) != c) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A pid that no process has: a child that has been reaped (pids are not reused at once). */
static pid_t dead_pid(void) {
    pid_t c = fork_flushed();
    if (c == 0) _exit(0);
    reap(c);
    return c;
}

/* Runs fn in a child which prints its own checks; returns its failure count. */
static void in_child(const char *what, void (*fn)(void)) {
    pid_t c = fork_flushed();
    if (c == 0) {
        fn();
        fflush(stdout);
        _exit(failures);
    }
    int r = reap(c);
    char buf[128];
    snprintf(buf, sizeof buf, "%s: child finished cleanly", what);
    check(buf, r == 0);
}

/* ---- reparenting ------------------------------------------------------------------- */

static void mode_reparent(void) {
    check("PR_SET_CHILD_SUBREAPER", prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
    int v = -1;
    check("PR_GET_CHILD_SUBREAPER = 1", prctl(PR_GET_CHILD_SUBREAPER, &v, 0, 0, 0) == 0 && v == 1);
    pid_t top = getpid();
    shm[0] = 0;
    shm[1] = 0;
    shm[2] = 0;
    pid_t a = fork_flushed();
    if (a == 0) {
        pid_t me = getpid();
        pid_t g = fork();
        if (g == 0) {
            shm[1] = getppid() == me; /* before the orphaning */
            set_and_wake(&shm[0], 1);
            wait_for(&shm[0], 2); /* until the middle process has been reaped */
            shm[2] = getppid() == top;
            _exit(7);
        }
        shm[3] = g;
        wait_for(&shm[0], 1);
        _exit(0); /* orphans g */
    }
    check("middle process exits 0", reap(a) == 0);
    check("grandchild's parent was the middle process", shm[1] == 1);
    set_and_wake(&shm[0], 2);
    pid_t g = shm[3];
    int st;
    pid_t r = waitpid(-1, &st, 0);
    check("the orphan is now our child: waitpid(-1) returns it", r == g);
    check("its status is 7", WIFEXITED(st) && WEXITSTATUS(st) == 7);
    check("the orphan saw getppid() == our pid", shm[2] == 1);
    errno = 0;
    check("no more children", waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD);
}

static void subreaper_middle(void) {
    /* The middle process S: a subreaper whose grandchild G is orphaned by A. */
    check("S: PR_SET_CHILD_SUBREAPER", prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
    pid_t s = getpid();
    shm[0] = 0;
    pid_t a = fork_flushed();
    if (a == 0) {
        int v = -1;
        prctl(PR_GET_CHILD_SUBREAPER, &v, 0, 0, 0);
        shm[4] = v; /* not inherited */
        pid_t g = fork();
        if (g == 0) {
            wait_for(&shm[0], 1);
            shm[2] = getppid() == s;
            _exit(8);
        }
        shm[3] = g;
        _exit(0);
    }
    check("S: A exits 0", reap(a) == 0);
    check("S: the subreaper attribute is not inherited by fork", shm[4] == 0);
    set_and_wake(&shm[0], 1);
    int st;
    check("S: reaps the orphan G", waitpid(-1, &st, 0) == shm[3] && WIFEXITED(st) && WEXITSTATUS(st) == 8);
    check("S: G's getppid() was S", shm[2] == 1);
}

static void mode_subreaper(void) {
    check("top: PR_SET_CHILD_SUBREAPER", prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
    in_child("subreaper in a middle process", subreaper_middle);

    /* S2 is a subreaper that exits before its orphan: the orphan moves up to us. */
    pid_t top = getpid();
    shm[0] = 0;
    shm[2] = 0;
    pid_t s2 = fork_flushed();
    if (s2 == 0) {
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        pid_t s2pid = getpid();
        pid_t a = fork();
        if (a == 0) {
            pid_t g = fork();
            if (g == 0) {
                wait_for(&shm[0], 1);
                shm[5] = getppid() == s2pid; /* S2 adopted it first */
                set_and_wake(&shm[0], 2);
                wait_for(&shm[0], 3);
                shm[2] = getppid() == top;
                _exit(9);
            }
            shm[3] = g;
            _exit(0);
        }
        reap(a);
        set_and_wake(&shm[0], 1);
        wait_for(&shm[0], 2);
        _exit(0); /* exits without reaping G */
    }
    check("S2 exits 0", reap(s2) == 0);
    set_and_wake(&shm[0], 3);
    int st;
    check("the orphan of a dead subreaper is ours", waitpid(-1, &st, 0) == shm[3] && WEXITSTATUS(st) == 9);
    check("it was first adopted by S2", shm[5] == 1);
    check("then its getppid() was our pid", shm[2] == 1);
}

/* ---- pdeathsig --------------------------------------------------------------------- */

static void mode_pdeathsig(void) {
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); /* so that we can reap the grandchild */
    errno = 0;
    check("PR_SET_PDEATHSIG(65) = EINVAL", prctl(PR_SET_PDEATHSIG, 65, 0, 0, 0) == -1 && errno == EINVAL);
    int v = -1;
    check("PR_GET_PDEATHSIG initially 0", prctl(PR_GET_PDEATHSIG, &v, 0, 0, 0) == 0 && v == 0);
    shm[0] = 0;
    shm[1] = 0;
    pid_t m = fork_flushed();
    if (m == 0) {
        pid_t me = getpid();
        pid_t c = fork();
        if (c == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
            int s = -1;
            prctl(PR_GET_PDEATHSIG, &s, 0, 0, 0);
            shm[1] = s;
            if (getppid() != me) _exit(50); /* the parent died already: cannot happen here */
            set_and_wake(&shm[0], 1);
            for (;;) pause(); /* until SIGTERM */
        }
        shm[2] = c;
        wait_for(&shm[0], 1);
        _exit(0);
    }
    check("middle process exits 0", reap(m) == 0);
    printf("PR_GET_PDEATHSIG in the child: %d\n", shm[1]);
    int r = reap(shm[2]);
    printf("the child, when its parent exited: %s %d\n", r > 128 ? "killed by signal" : "exited",
           r > 128 ? r - 128 : r);

    /* Not inherited by fork. */
    prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0);
    pid_t c = fork_flushed();
    if (c == 0) {
        int s = -1;
        prctl(PR_GET_PDEATHSIG, &s, 0, 0, 0);
        _exit(s == 0 ? 0 : 1);
    }
    check("pdeathsig not inherited by fork", reap(c) == 0);
    prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
}

/* ---- names ------------------------------------------------------------------------- */

static char thread_name[32];
static char thread_name_after[32];

static void *name_thread(void *arg) {
    (void)arg;
    prctl(PR_GET_NAME, thread_name, 0, 0, 0);
    prctl(PR_SET_NAME, "worker", 0, 0, 0);
    prctl(PR_GET_NAME, thread_name_after, 0, 0, 0);
    return NULL;
}

static void mode_name(const char *argv0) {
    char name[32] = {0};
    const char *base = strrchr(argv0, '/');
    base = base ? base + 1 : argv0;
    char want[16] = {0};
    strncpy(want, base, 15);
    check("PR_GET_NAME", prctl(PR_GET_NAME, name, 0, 0, 0) == 0);
    check("initial name is the program's file name, cut to 15 bytes", !strcmp(name, want));
    check("PR_SET_NAME", prctl(PR_SET_NAME, "rvisor-test", 0, 0, 0) == 0);
    prctl(PR_GET_NAME, name, 0, 0, 0);
    printf("after PR_SET_NAME: [%s]\n", name);
    prctl(PR_SET_NAME, "a-name-longer-than-fifteen-bytes", 0, 0, 0);
    memset(name, 'x', sizeof name);
    prctl(PR_GET_NAME, name, 0, 0, 0);
    printf("a long name is cut: [%s]\n", name);
    check("and NUL-terminated at 15", name[15] == 0);
    prctl(PR_SET_NAME, "parent", 0, 0, 0);

    pthread_t t;
    pthread_create(&t, NULL, name_thread, NULL);
    pthread_join(t, NULL);
    printf("a new thread starts with: [%s]\n", thread_name);
    printf("the thread renamed itself: [%s]\n", thread_name_after);
    prctl(PR_GET_NAME, name, 0, 0, 0);
    printf("the main thread is still: [%s]\n", name);

    pid_t c = fork_flushed();
    if (c == 0) {
        char n[32] = {0};
        prctl(PR_GET_NAME, n, 0, 0, 0);
        _exit(!strcmp(n, "parent") ? 0 : 1);
    }
    check("fork inherits the name", reap(c) == 0);
    errno = 0;
    check("PR_SET_NAME with a bad pointer = EFAULT", prctl(PR_SET_NAME, (char *)8, 0, 0, 0) == -1 && errno == EFAULT);
}

/* ---- no_new_privs ------------------------------------------------------------------ */

static void nnp_child(void) {
    check("PR_SET_NO_NEW_PRIVS(1)", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    check("PR_GET_NO_NEW_PRIVS = 1", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
    errno = 0;
    check("PR_SET_NO_NEW_PRIVS(0) = EINVAL (cannot be unset)", prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0) == -1 && errno == EINVAL);
    errno = 0;
    check("PR_SET_NO_NEW_PRIVS with a nonzero extra argument = EINVAL",
          prctl(PR_SET_NO_NEW_PRIVS, 1, 1, 0, 0) == -1 && errno == EINVAL);
    pid_t c = fork_flushed();
    if (c == 0) _exit(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? 0 : 1);
    check("inherited by fork", reap(c) == 0);
}

static void mode_nnp(void) {
    in_child("no_new_privs", nnp_child);
}

/* ---- dumpable ---------------------------------------------------------------------- */

static void mode_dumpable(void) {
    check("PR_GET_DUMPABLE = 1 initially", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1);
    check("PR_SET_DUMPABLE(0)", prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0);
    check("PR_GET_DUMPABLE = 0", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0);
    pid_t c = fork_flushed();
    if (c == 0) _exit(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    check("inherited by fork", reap(c) == 0);
    errno = 0;
    check("PR_SET_DUMPABLE(2) = EINVAL", prctl(PR_SET_DUMPABLE, 2, 0, 0, 0) == -1 && errno == EINVAL);
    check("PR_SET_DUMPABLE(1)", prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0);
    check("PR_GET_DUMPABLE = 1", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1);
    errno = 0;
    check("prctl(12345) = EINVAL", prctl(12345, 0, 0, 0, 0) == -1 && errno == EINVAL);
}

/* ---- sessions and process groups --------------------------------------------------- */

static pid_t top_pid, top_pgrp, top_sid;

static void session_child(void) {
    pid_t me = getpid();
    check("child starts in the parent's process group", getpgrp() == top_pgrp && getpgid(0) == top_pgrp);
    check("child starts in the parent's session", getsid(0) == top_sid);
    check("getpgid(parent) from the child", getpgid(top_pid) == top_pgrp);
    check("setsid() returns the new session id, our pid", setsid() == me);
    check("then getsid(0) == pid", getsid(0) == me);
    check("then getpgrp() == pid", getpgrp() == me);
    check("the parent's session is another one", getsid(top_pid) == top_sid && top_sid != me);
    errno = 0;
    check("setsid() again = EPERM", setsid() == -1 && errno == EPERM);
    errno = 0;
    check("setpgid into a group of another session = EPERM", setpgid(0, top_pgrp) == -1 && errno == EPERM);
    errno = 0;
    check("setpgid(0, 0) as a session leader = EPERM", setpgid(0, 0) == -1 && errno == EPERM);
}

static void group_child(void) {
    pid_t me = getpid();
    check("setpgid(0, 0) makes a new group", setpgid(0, 0) == 0 && getpgrp() == me);
    check("still in the parent's session", getsid(0) == top_sid);
    errno = 0;
    check("setsid() as a group leader = EPERM", setsid() == -1 && errno == EPERM);
    check("setpgid back into the parent's group", setpgid(0, top_pgrp) == 0 && getpgrp() == top_pgrp);
    errno = 0;
    check("setpgid into a group that does not exist = EPERM", setpgid(0, dead_pid()) == -1 && errno == EPERM);
    errno = 0;
    check("setpgid(0, -1) = EINVAL", setpgid(0, -1) == -1 && errno == EINVAL);
    errno = 0;
    check("setpgid(-1, 0) = EINVAL", setpgid(-1, 0) == -1 && errno == EINVAL);
    errno = 0;
    check("setpgid on a process that is not a child = ESRCH", setpgid(top_pid, top_pid) == -1 && errno == ESRCH);
    errno = 0;
    check("getpgid(no such pid) = ESRCH", getpgid(dead_pid()) == -1 && errno == ESRCH);
    errno = 0;
    check("getsid(no such pid) = ESRCH", getsid(dead_pid()) == -1 && errno == ESRCH);
}

static void mode_sessions(void) {
    top_pid = getpid();
    top_pgrp = getpgrp();
    top_sid = getsid(0);
    check("getpgid(0) == getpgrp()", getpgid(0) == top_pgrp);
    check("getpgid(getpid()) == getpgrp()", getpgid(top_pid) == top_pgrp);
    check("getsid(getpid()) == getsid(0)", getsid(top_pid) == top_sid);
    in_child("setsid", session_child);
    in_child("setpgid", group_child);

    /* The parent moves a child into a new group; the child sees it. */
    shm[0] = 0;
    pid_t c = fork_flushed();
    if (c == 0) {
        wait_for(&shm[0], 1);
        _exit(getpgrp() == getpid() ? 0 : 1);
    }
    check("parent: setpgid(child, child)", setpgid(c, c) == 0);
    check("parent: getpgid(child) == child", getpgid(c) == c);
    set_and_wake(&shm[0], 1);
    check("the child sees its new group", reap(c) == 0);

    /* A child that became a session leader cannot be moved by its parent. */
    shm[0] = 0;
    c = fork_flushed();
    if (c == 0) {
        setsid();
        set_and_wake(&shm[0], 1);
        wait_for(&shm[0], 2);
        _exit(0);
    }
    wait_for(&shm[0], 1);
    errno = 0;
    check("parent: setpgid(session-leader child) = EPERM", setpgid(c, c) == -1 && errno == EPERM);
    check("parent: getsid(child) == child", getsid(c) == c);
    set_and_wake(&shm[0], 2);
    reap(c);
}

/* ---- signals to process groups ----------------------------------------------------- */

static void mode_pgkill(void) {
    shm[0] = 0;
    shm[1] = 0;
    pid_t c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = fork_flushed();
        if (c[i] == 0) {
            setpgid(0, i == 0 ? 0 : c[0]);
            atomic_fetch_add(&shm[1], 1);
            syscall(SYS_futex, &shm[1], FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
            wait_for(&shm[0], 1); /* never set: killed first */
            _exit(0);
        }
        setpgid(c[i], c[0]);
    }
    wait_for(&shm[1], 3);
    pid_t pg = c[0];
    check("kill(-pgid, 0) = 0", kill(-pg, 0) == 0);
    check("kill(-pgid, SIGTERM) = 0", kill(-pg, SIGTERM) == 0);
    int n = 0;
    for (int i = 0; i < 3; i++) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PGID, pg, &si, WEXITED) == 0 && si.si_code == CLD_KILLED && si.si_status == SIGTERM) n++;
    }
    printf("members of the group killed by SIGTERM: %d\n", n);
    errno = 0;
    check("kill(-pgid, 0) once they are gone = ESRCH", kill(-pg, 0) == -1 && errno == ESRCH);
    errno = 0;
    check("kill(no such pid, 0) = ESRCH", kill(dead_pid(), 0) == -1 && errno == ESRCH);
    errno = 0;
    check("kill(pid, 65) = EINVAL", kill(getpid(), 65) == -1 && errno == EINVAL);

    /* kill(0, sig) signals the caller's own group: the sender ignores it, its child dies. */
    pid_t k = fork_flushed();
    if (k == 0) {
        setpgid(0, 0);
        shm[0] = 0;
        pid_t g = fork();
        if (g == 0) {
            wait_for(&shm[0], 1); /* never set */
            _exit(0);
        }
        signal(SIGUSR2, SIG_IGN);
        kill(0, SIGUSR2);
        int r = reap(g);
        _exit(r == 128 + SIGUSR2 ? 0 : 1);
    }
    check("kill(0, SIGUSR2) killed the sender's child in its group", reap(k) == 0);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) return 1;
    const char *m = argc > 1 ? argv[1] : "";
    printf("mode %s\n", m);
    if (!strcmp(m, "reparent")) mode_reparent();
    else if (!strcmp(m, "subreaper")) mode_subreaper();
    else if (!strcmp(m, "pdeathsig")) mode_pdeathsig();
    else if (!strcmp(m, "name")) mode_name(argv[0]);
    else if (!strcmp(m, "nnp")) mode_nnp();
    else if (!strcmp(m, "dumpable")) mode_dumpable();
    else if (!strcmp(m, "sessions")) mode_sessions();
    else if (!strcmp(m, "pgkill")) mode_pgkill();
    else {
        printf("unknown mode\n");
        return 2;
    }
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
