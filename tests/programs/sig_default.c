// Default actions: a child sends itself each signal 1..31 and a few real-time ones with
// the default disposition; the parent reports how it ended: killed (WIFSIGNALED,
// WTERMSIG), stopped (then continued with SIGCONT, and exits 0), or unaffected (exits 0).
// The child runs in its own process group, so the terminal stop signals stop it (its group
// is not orphaned); in a new session (an orphaned group) they are discarded instead.
// The core-dump bit: a real dump depends on the host (RLIMIT_CORE, core_pattern), so the
// children turn dumping off with PR_SET_DUMPABLE 0, and WCOREDUMP must then be 0; whether
// the default action is "core" is printed from the table in signal(7).
// Also: SIGKILL and SIGSTOP cannot be caught, ignored or blocked; abort() kills even with
// a SIGABRT handler that returns. A SIGCONT sent right after a SIGSTOP leaves the child
// running, however far it got with the stop.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "timing.h"

static const char *table(int sig) {
    switch (sig) {
    case SIGQUIT: case SIGILL: case SIGTRAP: case SIGABRT: case SIGBUS: case SIGFPE:
    case SIGSEGV: case SIGXCPU: case SIGXFSZ: case SIGSYS:
        return "core";
    case SIGCHLD: case SIGURG: case SIGWINCH:
        return "ignore";
    case SIGCONT:
        return "continue";
    case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU:
        return "stop";
    default:
        return "term";
    }
}

static void describe(int st, char *out, size_t n) {
    if (WIFEXITED(st)) snprintf(out, n, "exited %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(out, n, "killed by %d, WCOREDUMP=%d", WTERMSIG(st), WCOREDUMP(st) ? 1 : 0);
    else if (WIFSTOPPED(st)) snprintf(out, n, "stopped by %d", WSTOPSIG(st));
    else snprintf(out, n, "raw %#x", st);
}

/* Forks a child that sends itself sig; returns a description of what happened. */
static void one(int sig, int new_session) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        if (new_session) setsid();
        else setpgid(0, 0);
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        kill(getpid(), sig);
        _exit(0);
    }
    int st;
    char what[96], after[64] = "";
    waitpid(c, &st, WUNTRACED);
    describe(st, what, sizeof what);
    if (WIFSTOPPED(st)) {
        kill(c, SIGCONT);
        waitpid(c, &st, 0);
        describe(st, after, sizeof after);
    }
    char name[16];
    if (sig >= SIGRTMIN) snprintf(name, sizeof name, "SIGRTMIN+%d", sig - SIGRTMIN);
    else snprintf(name, sizeof name, "%d", sig);
    printf("signal %s (%s, default %s): %s%s%s\n", name, strsignal(sig), table(sig), what, after[0] ? ", then " : "", after);
}

// SIGSTOP, then SIGCONT at once, then a ping the child answers: whether or not it stopped
// in between, it runs on (a stop signal it had just taken when the SIGCONT came once
// stopped it after the SIGCONT, for good). The rounds stop at the first in which it stays
// stopped (its answer does not come within 2 s, and its parent's wait sees it stopped).
static void stop_then_cont(void) {
    int ping[2], pong[2], stuck = 0;
    pipe(ping);
    pipe(pong);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char b;
        for (;;) {
            if (read(ping[0], &b, 1) == 1) write(pong[1], &b, 1);
        }
    }
    for (int round = 0; round < 1000 && !stuck; round++) {
        kill(c, SIGSTOP);
        // Varies how far the child got with the SIGSTOP.
        spin_us(CLOCK_MONOTONIC, round % 100);
        kill(c, SIGCONT);
        write(ping[1], "x", 1);
        struct pollfd pfd = {pong[0], POLLIN, 0};
        while (poll(&pfd, 1, 2000) <= 0) {
            int st;
            if (waitpid(c, &st, WUNTRACED | WNOHANG) == c && WIFSTOPPED(st)) {
                stuck = 1;
                kill(c, SIGCONT);
            }
        }
        char b;
        read(pong[0], &b, 1);
    }
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    printf("SIGSTOP then SIGCONT at once: the child ran on every time: %s\n", stuck ? "no" : "yes");
}

static void abort_handler(int sig) {
    (void)sig;
    write(1, "child: SIGABRT handler ran and returns\n", 39);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int sig = 1; sig < 32; sig++) one(sig, 0);
    one(SIGRTMIN, 0);
    one(SIGRTMIN + 5, 0);
    one(SIGRTMAX, 0);

    printf("in a new session (an orphaned process group):\n");
    one(SIGTSTP, 1);
    one(SIGTTIN, 1);
    one(SIGTTOU, 1);
    one(SIGSTOP, 1);

    /* SIGKILL and SIGSTOP cannot be caught or ignored... */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    errno = 0;
    check("sigaction(SIGKILL, SIG_IGN) = EINVAL", sigaction(SIGKILL, &sa, NULL) == -1 && errno == EINVAL);
    sa.sa_handler = abort_handler;
    errno = 0;
    check("sigaction(SIGKILL, handler) = EINVAL", sigaction(SIGKILL, &sa, NULL) == -1 && errno == EINVAL);
    errno = 0;
    check("sigaction(SIGSTOP, handler) = EINVAL", sigaction(SIGSTOP, &sa, NULL) == -1 && errno == EINVAL);
    sa.sa_handler = SIG_DFL;
    check("sigaction(SIGKILL, SIG_DFL) = EINVAL too", sigaction(SIGKILL, &sa, NULL) == -1 && errno == EINVAL);
    check("sigaction(SIGKILL, NULL, &old) works: SIG_DFL", sigaction(SIGKILL, NULL, &old) == 0 && old.sa_handler == SIG_DFL);
    /* ... nor blocked, nor left in a handler's sa_mask. */
    sigset_t all, cur;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &cur);
    sigset_t blocked;
    sigprocmask(SIG_SETMASK, &cur, &blocked);
    check("blocking everything leaves SIGKILL and SIGSTOP unblocked",
          !sigismember(&blocked, SIGKILL) && !sigismember(&blocked, SIGSTOP) && sigismember(&blocked, SIGTERM));
    sa.sa_handler = abort_handler;
    sa.sa_mask = all;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR1, NULL, &old);
    check("sa_mask never holds SIGKILL or SIGSTOP", !sigismember(&old.sa_mask, SIGKILL) && !sigismember(&old.sa_mask, SIGSTOP));
    signal(SIGUSR1, SIG_DFL);

    int st;
    char what[96];
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        sigprocmask(SIG_SETMASK, &all, NULL);
        kill(getpid(), SIGKILL);
        _exit(0);
    }
    waitpid(c, &st, 0);
    describe(st, what, sizeof what);
    printf("SIGKILL with everything blocked: %s\n", what);

    fflush(stdout);
    c = fork();
    if (c == 0) {
        setpgid(0, 0);
        sigprocmask(SIG_SETMASK, &all, NULL);
        kill(getpid(), SIGSTOP);
        _exit(3);
    }
    waitpid(c, &st, WUNTRACED);
    describe(st, what, sizeof what);
    printf("SIGSTOP with everything blocked: %s\n", what);
    kill(c, SIGCONT);
    waitpid(c, &st, 0);
    describe(st, what, sizeof what);
    printf("then after SIGCONT: %s\n", what);

    stop_then_cont();

    /* abort() kills even when a SIGABRT handler returns. */
    fflush(stdout);
    c = fork();
    if (c == 0) {
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        signal(SIGABRT, abort_handler);
        abort();
    }
    waitpid(c, &st, 0);
    describe(st, what, sizeof what);
    printf("abort() with a returning SIGABRT handler: %s\n", what);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
