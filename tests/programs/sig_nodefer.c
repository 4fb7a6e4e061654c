// A signal raised inside its own handler: deferred by default (delivered after the handler
// returns), nested at once with SA_NODEFER. sa_mask defers other signals the same way.
// SA_RESETHAND resets the disposition to SIG_DFL on delivery; a second raise then takes
// the default action (in a child: it dies of SIGUSR1), at once with SA_NODEFER too.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static char trace[256];
static volatile int depth, entries;

static void add(const char *s) {
    strcat(trace, s);
    strcat(trace, " ");
}

static void h_self(int sig) {
    char b[16];
    depth++;
    entries++;
    snprintf(b, sizeof b, "enter%d", depth);
    add(b);
    if (entries == 1) {
        raise(sig);
        add("raised");
    }
    snprintf(b, sizeof b, "exit%d", depth);
    add(b);
    depth--;
}

static void h_usr1_raises_usr2(int sig) {
    (void)sig;
    add("usr1-enter");
    raise(SIGUSR2);
    add("usr1-raised-usr2");
    add("usr1-exit");
}

static void h_usr2(int sig) {
    (void)sig;
    add("usr2");
}

static void install(int sig, void (*h)(int), int flags, int masked) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    if (masked) sigaddset(&sa.sa_mask, masked);
    sigaction(sig, &sa, NULL);
}

static void run(const char *name, int sig) {
    trace[0] = 0;
    depth = entries = 0;
    raise(sig);
    printf("%s: %s\n", name, trace);
}

static volatile int reset_seen_dfl;
static volatile int reset_flags_in_handler;

static void h_reset(int sig, siginfo_t *si, void *uc) {
    (void)si, (void)uc;
    struct sigaction cur;
    sigaction(sig, NULL, &cur);
    reset_seen_dfl = cur.sa_handler == SIG_DFL;
    reset_flags_in_handler = cur.sa_flags & SA_SIGINFO;
}

static void h_reset_raise(int sig) {
    printf("child: in the SA_RESETHAND handler, raising again\n");
    fflush(stdout);
    raise(sig);
    printf("child: back in the handler after raise\n");
    fflush(stdout);
}

static const char *status(int st) {
    static char b[64];
    if (WIFEXITED(st)) snprintf(b, sizeof b, "exited %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(b, sizeof b, "killed by signal %d", WTERMSIG(st));
    else snprintf(b, sizeof b, "raw %#x", st);
    return b;
}

static void child_reset_raise(int flags) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        install(SIGUSR1, h_reset_raise, SA_RESETHAND | flags, 0);
        raise(SIGUSR1);
        printf("child: survived\n");
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    printf("SA_RESETHAND%s, raise inside the handler: child %s\n", flags ? "|SA_NODEFER" : "", status(st));
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    install(SIGUSR1, h_self, 0, 0);
    run("default (deferred)", SIGUSR1);
    install(SIGUSR1, h_self, SA_NODEFER, 0);
    run("SA_NODEFER (nested)", SIGUSR1);
    install(SIGRTMIN, h_self, 0, 0);
    run("real-time, default", SIGRTMIN);
    install(SIGRTMIN, h_self, SA_NODEFER, 0);
    run("real-time, SA_NODEFER", SIGRTMIN);
    install(SIGUSR2, h_usr2, 0, 0);
    install(SIGUSR1, h_usr1_raises_usr2, 0, SIGUSR2);
    run("SIGUSR2 in sa_mask", SIGUSR1);
    install(SIGUSR1, h_usr1_raises_usr2, 0, 0);
    run("SIGUSR2 not in sa_mask", SIGUSR1);

    struct sigaction sa, cur;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h_reset;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    check("SA_RESETHAND: inside the handler the disposition is already SIG_DFL", reset_seen_dfl);
    sigaction(SIGUSR1, NULL, &cur);
    check("SA_RESETHAND: SIG_DFL after the handler", cur.sa_handler == SIG_DFL);
    printf("SA_RESETHAND: SA_SIGINFO still in sa_flags inside the handler: %s\n", reset_flags_in_handler ? "yes" : "no");

    child_reset_raise(0);
    child_reset_raise(SA_NODEFER);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
