// rt_sigaction and rt_sigprocmask record state and return the old values (no delivery).
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

static void handler(int sig) { (void)sig; }
static void handler2(int sig, siginfo_t *si, void *uc) { (void)sig, (void)si, (void)uc; }

int main(void) {
    /* The initial state: empty mask, nothing pending-relevant, default dispositions. */
    sigset_t m;
    check("initial mask readable", sigprocmask(SIG_SETMASK, NULL, &m) == 0);
    int blocked = 0;
    for (int s = 1; s < NSIG; s++)
        if (sigismember(&m, s) == 1) blocked++;
    printf("initially blocked signals: %d\n", blocked);
    int nondefault = 0;
    for (int s = 1; s < 32; s++) {
        struct sigaction sa;
        if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL) nondefault++;
    }
    printf("standard signals with a non-default disposition: %d\n", nondefault);

    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    sigemptyset(&act.sa_mask);
    sigaddset(&act.sa_mask, SIGUSR2);
    sigaddset(&act.sa_mask, SIGRTMIN + 3);
    act.sa_flags = SA_RESTART;
    check("sigaction(SIGUSR1) install", sigaction(SIGUSR1, &act, &old) == 0);
    check("old SIGUSR1 action is SIG_DFL", old.sa_handler == SIG_DFL);

    struct sigaction act2;
    memset(&act2, 0, sizeof act2);
    act2.sa_sigaction = handler2;
    act2.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&act2.sa_mask);
    check("sigaction(SIGUSR1) replace", sigaction(SIGUSR1, &act2, &old) == 0);
    check("old handler returned", old.sa_handler == handler);
    check("old sa_mask returned", sigismember(&old.sa_mask, SIGUSR2) == 1 && sigismember(&old.sa_mask, SIGRTMIN + 3) == 1 &&
                                      sigismember(&old.sa_mask, SIGINT) == 0);
    check("old SA_RESTART returned", (old.sa_flags & SA_RESTART) != 0 && (old.sa_flags & SA_SIGINFO) == 0);
    printf("old flags: %#x\n", old.sa_flags);
    check("query only", sigaction(SIGUSR1, NULL, &old) == 0);
    check("query returns SA_SIGINFO handler", old.sa_sigaction == handler2 && (old.sa_flags & SA_SIGINFO) && (old.sa_flags & SA_NODEFER));
    act.sa_handler = SIG_IGN;
    check("set SIG_IGN", sigaction(SIGUSR1, &act, &old) == 0 && old.sa_sigaction == handler2);
    check("query SIG_IGN", sigaction(SIGUSR1, NULL, &old) == 0 && old.sa_handler == SIG_IGN);
    act.sa_handler = handler;
    check("real-time signal SIGRTMAX", sigaction(SIGRTMAX, &act, &old) == 0 && old.sa_handler == SIG_DFL);

    check("sigaction(SIGKILL) -> EINVAL", sigaction(SIGKILL, &act, NULL) == -1 && errno == EINVAL);
    check("sigaction(SIGSTOP) -> EINVAL", sigaction(SIGSTOP, &act, NULL) == -1 && errno == EINVAL);
    check("query SIGKILL allowed", sigaction(SIGKILL, NULL, &old) == 0 && old.sa_handler == SIG_DFL);
    check("sigaction(0) -> EINVAL", syscall(SYS_rt_sigaction, 0, NULL, &old, 8) == -1 && errno == EINVAL);
    check("sigaction(65) -> EINVAL", syscall(SYS_rt_sigaction, 65, NULL, &old, 8) == -1 && errno == EINVAL);
    check("rt_sigaction sigsetsize 4 -> EINVAL", syscall(SYS_rt_sigaction, SIGUSR1, NULL, &old, 4) == -1 && errno == EINVAL);

    sigset_t set, oldset;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGRTMIN + 1);
    check("SIG_BLOCK", sigprocmask(SIG_BLOCK, &set, &oldset) == 0);
    check("old mask empty", sigismember(&oldset, SIGUSR1) == 0 && sigismember(&oldset, SIGRTMIN + 1) == 0);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    check("SIG_BLOCK more", sigprocmask(SIG_BLOCK, &set, &oldset) == 0);
    check("old mask has the first block", sigismember(&oldset, SIGUSR1) == 1 && sigismember(&oldset, SIGRTMIN + 1) == 1 &&
                                              sigismember(&oldset, SIGUSR2) == 0);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    check("SIG_UNBLOCK", sigprocmask(SIG_UNBLOCK, &set, &oldset) == 0 && sigismember(&oldset, SIGUSR2) == 1);
    check("query mask", sigprocmask(SIG_SETMASK, NULL, &oldset) == 0);
    check("mask is {SIGRTMIN+1, SIGUSR2}", sigismember(&oldset, SIGUSR1) == 0 && sigismember(&oldset, SIGUSR2) == 1 &&
                                                sigismember(&oldset, SIGRTMIN + 1) == 1);
    sigfillset(&set);
    check("SIG_SETMASK everything", sigprocmask(SIG_SETMASK, &set, NULL) == 0);
    check("query mask", sigprocmask(SIG_SETMASK, NULL, &oldset) == 0);
    check("SIGKILL and SIGSTOP cannot be blocked", sigismember(&oldset, SIGKILL) == 0 && sigismember(&oldset, SIGSTOP) == 0);
    check("everything else blocked", sigismember(&oldset, SIGSEGV) == 1 && sigismember(&oldset, SIGRTMAX) == 1 &&
                                         sigismember(&oldset, SIGINT) == 1);
    unsigned long raw = 0;
    check("raw rt_sigprocmask query", syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &raw, 8) == 0);
    printf("raw mask after blocking everything: %#lx\n", raw);
    sigemptyset(&set);
    check("SIG_SETMASK empty", sigprocmask(SIG_SETMASK, &set, &oldset) == 0);
    check("query mask empty", sigprocmask(SIG_SETMASK, NULL, &oldset) == 0 && sigismember(&oldset, SIGINT) == 0);
    check("bad how -> EINVAL", syscall(SYS_rt_sigprocmask, 99, &raw, NULL, 8) == -1 && errno == EINVAL);
    check("sigsetsize 4 -> EINVAL", syscall(SYS_rt_sigprocmask, SIG_BLOCK, &raw, NULL, 4) == -1 && errno == EINVAL);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
