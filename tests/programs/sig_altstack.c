// sigaltstack and SA_ONSTACK: handlers with SA_ONSTACK run on the alternate stack (a local
// variable's address lies inside it, and sigaltstack reports SS_ONSTACK there), others on
// the normal stack; a nested SA_ONSTACK handler continues below the outer one on the same
// stack; the alternate stack cannot be changed while on it; errors; a stack overflow is
// caught on the alternate stack and left with siglongjmp; new threads start without one,
// fork keeps it.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define ALT_SIZE (256 * 1024)
static char *alt;

static int on_alt(uintptr_t a) { return a >= (uintptr_t)alt && a < (uintptr_t)alt + ALT_SIZE; }

static volatile uintptr_t local_addr, nested_addr;
static volatile int flags_inside, change_errno, nest;

static void h_usr2(int sig) {
    (void)sig;
    volatile char here;
    nested_addr = (uintptr_t)&here;
}

static void handler(int sig) {
    (void)sig;
    volatile char here;
    local_addr = (uintptr_t)&here;
    stack_t cur;
    sigaltstack(NULL, &cur);
    flags_inside = cur.ss_flags;
    stack_t other = {.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0};
    errno = 0;
    change_errno = sigaltstack(&other, NULL) == -1 ? errno : 0;
    if (nest) raise(SIGUSR2);
}

static void install(int sig, void (*h)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static sigjmp_buf overflow_jmp;
static volatile uintptr_t overflow_handler_addr;
static volatile int overflow_code;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)uc;
    volatile char here;
    overflow_handler_addr = (uintptr_t)&here;
    overflow_code = si->si_code;
    siglongjmp(overflow_jmp, 1);
}

__attribute__((noinline)) static unsigned long forever(unsigned long n) {
    volatile char buf[4096];
    buf[0] = (char)n;
    if (n == ~0UL) return buf[0];
    return forever(n + 1) + buf[0];
}

static int thread_disabled;

static void *thread_fn(void *arg) {
    (void)arg;
    stack_t cur;
    sigaltstack(NULL, &cur);
    thread_disabled = (cur.ss_flags & SS_DISABLE) != 0;
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    stack_t cur;
    check("sigaltstack(NULL, &old)", sigaltstack(NULL, &cur) == 0);
    check("initially SS_DISABLE", cur.ss_flags == SS_DISABLE);

    alt = malloc(ALT_SIZE);
    stack_t ss = {.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0};
    check("sigaltstack(install)", sigaltstack(&ss, NULL) == 0);
    sigaltstack(NULL, &cur);
    check("query returns it, flags 0 outside a handler",
          cur.ss_sp == alt && cur.ss_size == ALT_SIZE && cur.ss_flags == 0);

    install(SIGUSR1, handler, SA_ONSTACK);
    raise(SIGUSR1);
    check("SA_ONSTACK handler runs on the alternate stack", on_alt(local_addr));
    check("sigaltstack in the handler reports SS_ONSTACK", flags_inside == SS_ONSTACK);
    printf("changing the alternate stack while on it: %s\n", change_errno == EPERM ? "EPERM" : strerror(change_errno));

    install(SIGUSR1, handler, 0);
    raise(SIGUSR1);
    check("a handler without SA_ONSTACK runs on the normal stack", !on_alt(local_addr));
    check("sigaltstack there reports flags 0", flags_inside == 0);
    check("and the alternate stack may be changed there", change_errno == 0);

    /* Nested: both SA_ONSTACK; the inner frame is below the outer one on the alt stack. */
    install(SIGUSR1, handler, SA_ONSTACK);
    install(SIGUSR2, h_usr2, SA_ONSTACK);
    nest = 1;
    raise(SIGUSR1);
    nest = 0;
    check("nested SA_ONSTACK handler also on the alternate stack", on_alt(nested_addr));
    check("below the outer handler's frame", nested_addr < local_addr);

    /* Errors. */
    stack_t small = {.ss_sp = alt, .ss_size = 1024, .ss_flags = 0}; /* the kernel's minimum is 2048 */
    errno = 0;
    check("ss_size 1024 (< MINSIGSTKSZ) = ENOMEM", sigaltstack(&small, NULL) == -1 && errno == ENOMEM);
    stack_t badflags = {.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0x10};
    errno = 0;
    check("unknown ss_flags = EINVAL", sigaltstack(&badflags, NULL) == -1 && errno == EINVAL);
    errno = 0;
    check("bad pointer = EFAULT", sigaltstack((stack_t *)8, NULL) == -1 && errno == EFAULT);

    /* Threads start without one; fork keeps it. */
    pthread_t t;
    pthread_create(&t, NULL, thread_fn, NULL);
    pthread_join(t, NULL);
    check("a new thread has no alternate stack", thread_disabled);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        stack_t s;
        sigaltstack(NULL, &s);
        _exit(s.ss_sp == alt && s.ss_size == ALT_SIZE && s.ss_flags == 0 ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    check("fork keeps the alternate stack", WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* Stack overflow, caught on the alternate stack. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(overflow_jmp, 1) == 0) {
        forever(0);
        printf("not reached\n");
    } else {
        check("stack overflow caught by a SIGSEGV handler", 1);
        check("which ran on the alternate stack", on_alt(overflow_handler_addr));
        printf("si_code: %s\n", overflow_code == SEGV_MAPERR ? "SEGV_MAPERR" : overflow_code == SEGV_ACCERR ? "SEGV_ACCERR" : "other");
        sigaltstack(NULL, &cur);
        check("after siglongjmp out, no longer on the alternate stack", cur.ss_flags == 0);
    }

    ss.ss_flags = SS_DISABLE;
    check("disable it", sigaltstack(&ss, NULL) == 0);
    sigaltstack(NULL, &cur);
    check("query: SS_DISABLE", cur.ss_flags == SS_DISABLE);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
