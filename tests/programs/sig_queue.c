// Pending signals, one mode per argument:
//   (none)  sigpending; a standard signal raised 3 times while blocked is delivered once;
//           real-time signals queue with their values and are delivered lowest number
//           first, in order within a number (the handler's sa_mask blocks all of them, so
//           one is delivered per sigreturn); SIG_IGN discards; sigsuspend delivers one and
//           the handler's sigreturn restores the mask from before sigsuspend.
//   nested  the same with handlers that block only their own signal: on unblocking, Linux
//           sets up a frame for every deliverable signal at once, so the last one set up
//           runs first.
//   limit   RLIMIT_SIGPENDING: sigqueue beyond it fails with EAGAIN (as uid 54322, whose
//           pending signals are only ours, so the count is exact natively; needs root).
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static char trace[512];

static void handler(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    char b[48];
    if (sig == SIGUSR1) snprintf(b, sizeof b, "USR1 ");
    else if (si->si_code == SI_QUEUE) snprintf(b, sizeof b, "RTMIN+%d:%d ", sig - SIGRTMIN, si->si_value.sival_int);
    else snprintf(b, sizeof b, "RTMIN+%d ", sig - SIGRTMIN);
    strcat(trace, b);
}

static sigset_t test_set(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGRTMIN);
    sigaddset(&s, SIGRTMIN + 1);
    return s;
}

static void install(int own_only) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    if (own_only) sigemptyset(&sa.sa_mask);
    else sa.sa_mask = test_set();
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGRTMIN, &sa, NULL);
    sigaction(SIGRTMIN + 1, &sa, NULL);
}

static void queue_all(void) {
    pid_t me = getpid();
    for (int i = 0; i < 3; i++) raise(SIGUSR1);
    sigqueue(me, SIGRTMIN + 1, (union sigval){.sival_int = 10});
    for (int i = 1; i <= 3; i++) sigqueue(me, SIGRTMIN, (union sigval){.sival_int = i});
    sigqueue(me, SIGRTMIN, (union sigval){.sival_int = 3}); /* the same value again: queued too */
}

static void mode_main(void) {
    install(0);
    sigset_t s = test_set(), old, p;
    sigprocmask(SIG_BLOCK, &s, &old);
    sigpending(&p);
    check("nothing pending at first", !sigismember(&p, SIGUSR1) && !sigismember(&p, SIGRTMIN));
    queue_all();
    sigpending(&p);
    check("sigpending: SIGUSR1, SIGRTMIN, SIGRTMIN+1", sigismember(&p, SIGUSR1) && sigismember(&p, SIGRTMIN) &&
                                                           sigismember(&p, SIGRTMIN + 1) && !sigismember(&p, SIGUSR2));
    check("nothing delivered while blocked", trace[0] == 0);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("delivered after unblocking: %s\n", trace);
    sigpending(&p);
    check("nothing pending afterwards", !sigismember(&p, SIGUSR1) && !sigismember(&p, SIGRTMIN) && !sigismember(&p, SIGRTMIN + 1));

    /* sigsuspend unblocks for its duration; the pending signals run inside it. */
    trace[0] = 0;
    sigprocmask(SIG_BLOCK, &s, &old);
    queue_all();
    errno = 0;
    int r = sigsuspend(&old);
    printf("sigsuspend returned %d %s; delivered inside it: %s\n", r, errno == EINTR ? "EINTR" : "?", trace);
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    check("the mask is back to blocking them after sigsuspend", sigismember(&now, SIGUSR1) && sigismember(&now, SIGRTMIN));
    /* The first handler's sigreturn restored the pre-sigsuspend mask: the rest waited. */
    trace[0] = 0;
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("delivered after unblocking: %s\n", trace);

    /* Ignored signals: discarded when unblocked; kept pending when blocked (the
       disposition may change before they are unblocked); setting SIG_IGN discards them. */
    signal(SIGUSR2, SIG_IGN);
    raise(SIGUSR2);
    sigpending(&p);
    check("an unblocked, ignored signal is discarded", !sigismember(&p, SIGUSR2));
    sigset_t u2;
    sigemptyset(&u2);
    sigaddset(&u2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &u2, NULL);
    raise(SIGUSR2);
    sigpending(&p);
    printf("a blocked, ignored signal is left pending: %s\n", sigismember(&p, SIGUSR2) ? "yes" : "no");
    signal(SIGUSR2, SIG_IGN);
    sigpending(&p);
    check("setting SIG_IGN again discards it", !sigismember(&p, SIGUSR2));
    signal(SIGUSR2, SIG_DFL);
    raise(SIGUSR2);
    sigpending(&p);
    check("a blocked signal with SIG_DFL is pending", sigismember(&p, SIGUSR2));
    signal(SIGUSR2, SIG_IGN);
    sigpending(&p);
    check("setting SIG_IGN discards it", !sigismember(&p, SIGUSR2));
    sigprocmask(SIG_UNBLOCK, &u2, NULL);
    signal(SIGUSR2, SIG_DFL);
    errno = 0;
    check("sigpending with a bad pointer = EFAULT", sigpending((sigset_t *)8) == -1 && errno == EFAULT);
}

static void mode_nested(void) {
    install(1);
    sigset_t s = test_set(), old;
    sigprocmask(SIG_BLOCK, &s, &old);
    queue_all();
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("delivered after unblocking, handlers blocking only their own signal: %s\n", trace);
}

static void mode_limit(void) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        if (setgid(54322) || setuid(54322)) {
            printf("setuid failed: %s\n", strerror(errno));
            _exit(1);
        }
        struct rlimit rl;
        getrlimit(RLIMIT_SIGPENDING, &rl);
        rl.rlim_cur = 5;
        check("setrlimit(RLIMIT_SIGPENDING, 5)", setrlimit(RLIMIT_SIGPENDING, &rl) == 0);
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGRTMIN);
        sigaddset(&s, SIGUSR1);
        sigprocmask(SIG_BLOCK, &s, NULL);
        int ok = 0, err = 0;
        for (int i = 0; i < 10; i++) {
            if (sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = i}) == 0) ok++;
            else {
                err = errno;
                break;
            }
        }
        printf("sigqueue succeeded %d times, then: %s\n", ok, err == EAGAIN ? "EAGAIN" : strerror(err));
        check("kill of a standard signal still works at the limit", kill(getpid(), SIGUSR1) == 0);
        siginfo_t si;
        int n = 0;
        struct timespec zero = {0, 0};
        while (sigtimedwait(&s, &si, &zero) > 0) n++;
        printf("signals taken with sigtimedwait: %d\n", n);
        check("after taking them, sigqueue works again", sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 0}) == 0);
        fflush(stdout);
        _exit(failures);
    }
    int st;
    waitpid(c, &st, 0);
    check("child finished cleanly", WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "nested")) mode_nested();
    else if (!strcmp(m, "limit")) mode_limit();
    else mode_main();
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
