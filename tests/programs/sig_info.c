// SA_SIGINFO handlers: the siginfo fields each way of sending fills in (kill: SI_USER with
// the sender's pid and uid; sigqueue: SI_QUEUE with si_value; tkill, tgkill and raise:
// SI_TKILL; rt_sigqueueinfo and rt_tgsigqueueinfo: the caller's siginfo), the ucontext's
// saved mask, the mask while the handler runs (the signal itself plus sa_mask), and
// delivery before kill() returns.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "check.h"

static volatile sig_atomic_t count;
static siginfo_t last;
static sigset_t mask_in_handler, uc_mask;
static int uc_nonnull;
static pid_t handler_tid;

static void handler(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    ucontext_t *uc = ucv;
    count++;
    last = *si;
    uc_nonnull = uc != NULL;
    if (uc) uc_mask = uc->uc_sigmask;
    sigprocmask(SIG_BLOCK, NULL, &mask_in_handler);
    handler_tid = (pid_t)syscall(SYS_gettid);
}

static const char *code_name(int code) {
    switch (code) {
    case SI_USER: return "SI_USER";
    case SI_QUEUE: return "SI_QUEUE";
    case SI_TKILL: return "SI_TKILL";
    case SI_KERNEL: return "SI_KERNEL";
    case SI_TIMER: return "SI_TIMER";
    case SI_MESGQ: return "SI_MESGQ";
    case SI_ASYNCIO: return "SI_ASYNCIO";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "%d", code);
        return buf;
    }
    }
}

static void show(const char *how) {
    printf("%s: deliveries=%d si_signo=%d si_code=%s si_errno=%d\n", how, (int)count, last.si_signo,
           code_name(last.si_code), last.si_errno);
    count = 0;
}

static sem_t t_ready;
static pid_t t_tid;

static void *waiting_thread(void *arg) {
    sigset_t *none = arg;
    t_tid = gettid();
    sem_post(&t_ready);
    sigsuspend(none); /* returns after one handler ran in this thread */
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pid_t me = getpid();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGHUP);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGRTMIN + 2, &sa, NULL);

    /* kill to ourselves: delivered before kill returns. */
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    sigprocmask(SIG_BLOCK, &m, NULL);
    check("kill(getpid(), SIGUSR1) = 0", kill(me, SIGUSR1) == 0);
    check("handler ran before kill returned", count == 1);
    check("si_pid is our pid", last.si_pid == me);
    check("si_uid is our uid", last.si_uid == getuid());
    show("kill");
    check("ucontext passed", uc_nonnull);
    check("uc_sigmask is the mask before the handler: SIGUSR2 in, SIGUSR1 and SIGHUP out",
          sigismember(&uc_mask, SIGUSR2) && !sigismember(&uc_mask, SIGUSR1) && !sigismember(&uc_mask, SIGHUP));
    check("mask in the handler: SIGUSR1 (the signal), SIGHUP (sa_mask), SIGUSR2 (before)",
          sigismember(&mask_in_handler, SIGUSR1) && sigismember(&mask_in_handler, SIGHUP) &&
              sigismember(&mask_in_handler, SIGUSR2));
    sigset_t after;
    sigprocmask(SIG_BLOCK, NULL, &after);
    check("mask restored after the handler", !sigismember(&after, SIGUSR1) && !sigismember(&after, SIGHUP) &&
                                                 sigismember(&after, SIGUSR2));
    sigprocmask(SIG_UNBLOCK, &m, NULL);

    /* kill with signal 0 only checks. */
    check("kill(getpid(), 0) = 0, no delivery", kill(me, 0) == 0 && count == 0);

    /* sigqueue: SI_QUEUE and the value. */
    union sigval v = {.sival_int = 1234};
    check("sigqueue(SIGUSR1, 1234) = 0", sigqueue(me, SIGUSR1, v) == 0);
    check("si_pid is our pid", last.si_pid == me);
    printf("sigqueue value: %d\n", last.si_value.sival_int);
    show("sigqueue");
    static int target;
    v.sival_ptr = &target;
    sigqueue(me, SIGRTMIN + 2, v);
    check("sigqueue of a pointer to a real-time signal: si_ptr intact", last.si_ptr == &target);
    show("sigqueue SIGRTMIN+2");

    /* tkill / tgkill / raise. */
    check("tkill(gettid(), SIGUSR2) = 0", syscall(SYS_tkill, gettid(), SIGUSR2) == 0);
    check("si_pid is our pid", last.si_pid == me);
    show("tkill");
    check("tgkill(getpid(), gettid(), SIGUSR2) = 0", syscall(SYS_tgkill, me, gettid(), SIGUSR2) == 0);
    show("tgkill");
    check("raise(SIGUSR1) = 0", raise(SIGUSR1) == 0);
    show("raise");
    errno = 0;
    check("tgkill with the wrong tgid = ESRCH", syscall(SYS_tgkill, me + 100000, gettid(), SIGUSR2) == -1 && errno == ESRCH);
    errno = 0;
    check("tkill(0) = EINVAL", syscall(SYS_tkill, 0, SIGUSR2) == -1 && errno == EINVAL);

    /* rt_sigqueueinfo: the kernel keeps the caller's fields when it signals itself. */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = SI_QUEUE;
    si.si_pid = 4242;
    si.si_uid = 77;
    si.si_value.sival_int = 99;
    check("rt_sigqueueinfo(self, SI_QUEUE, forged pid) = 0", syscall(SYS_rt_sigqueueinfo, me, SIGUSR1, &si) == 0);
    printf("rt_sigqueueinfo: si_pid=%d si_uid=%d value=%d\n", last.si_pid, last.si_uid, last.si_value.sival_int);
    show("rt_sigqueueinfo");

    /* Threads: SIGUSR2 is blocked in the main thread; the other thread takes signals in
       sigsuspend with an empty mask. */
    sigset_t usr2, none;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigemptyset(&none);
    sigprocmask(SIG_BLOCK, &usr2, NULL);
    pthread_t t;

    /* rt_tgsigqueueinfo to a given thread. */
    sem_init(&t_ready, 0, 0);
    pthread_create(&t, NULL, waiting_thread, &none);
    while (sem_wait(&t_ready) != 0) {
    }
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR2;
    si.si_code = SI_QUEUE;
    si.si_pid = me;
    si.si_uid = getuid();
    si.si_value.sival_int = 6;
    check("rt_tgsigqueueinfo(pid, thread, SIGUSR2) = 0", syscall(SYS_rt_tgsigqueueinfo, me, t_tid, SIGUSR2, &si) == 0);
    pthread_join(t, NULL);
    check("the handler ran in that thread", handler_tid == t_tid);
    printf("rt_tgsigqueueinfo: value=%d\n", last.si_value.sival_int);
    show("rt_tgsigqueueinfo");

    /* A process-directed signal goes to the thread not blocking it. */
    pthread_create(&t, NULL, waiting_thread, &none);
    while (sem_wait(&t_ready) != 0) {
    }
    si.si_value.sival_int = 5;
    check("rt_sigqueueinfo(pid, SIGUSR2) = 0", syscall(SYS_rt_sigqueueinfo, me, SIGUSR2, &si) == 0);
    pthread_join(t, NULL);
    check("the process-directed signal went to the only thread not blocking it", handler_tid == t_tid);
    printf("rt_sigqueueinfo to the process: value=%d\n", last.si_value.sival_int);
    show("rt_sigqueueinfo to the process");

    /* A thread-directed signal blocked by its target stays pending there, even though
       another thread could take it; a process-directed one does not wait. */
    pthread_create(&t, NULL, waiting_thread, &none);
    while (sem_wait(&t_ready) != 0) {
    }
    check("tgkill(main thread, SIGUSR2) = 0", syscall(SYS_tgkill, me, gettid(), SIGUSR2) == 0);
    sigset_t p;
    sigpending(&p);
    check("it is pending in the main thread", sigismember(&p, SIGUSR2));
    check("and the other thread did not take it", count == 0);
    check("kill(pid, SIGUSR2) = 0", kill(me, SIGUSR2) == 0);
    pthread_join(t, NULL);
    check("the process-directed one went to the other thread", count == 1 && handler_tid == t_tid);
    show("kill with the main thread blocking");
    siginfo_t got;
    memset(&got, 0, sizeof got);
    /* The raw call: glibc's sigwaitinfo reports SI_TKILL as SI_USER. */
    check("rt_sigtimedwait takes the main thread's pending one",
          syscall(SYS_rt_sigtimedwait, &usr2, &got, NULL, 8) == SIGUSR2);
    printf("rt_sigtimedwait: si_code=%s\n", code_name(got.si_code));
    sigprocmask(SIG_UNBLOCK, &usr2, NULL);
    count = 0;

    /* From a child: si_pid is the child's pid. */
    sigprocmask(SIG_BLOCK, &m, NULL);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        kill(getppid(), SIGUSR2);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    sigprocmask(SIG_UNBLOCK, &m, NULL); /* delivered here */
    check("signal from a child: si_pid is the child's pid", count == 1 && last.si_pid == c);
    show("kill from a child");

    /* A forged si_code >= 0 to another process is refused. */
    sigprocmask(SIG_BLOCK, &usr2, NULL); /* inherited: the child waits for it with sigwait */
    fflush(stdout);
    c = fork();
    if (c == 0) {
        int s;
        sigwait(&usr2, &s); /* the real signal below */
        _exit(0);
    }
    sigprocmask(SIG_UNBLOCK, &usr2, NULL);
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR2;
    si.si_code = SI_USER;
    errno = 0;
    check("rt_sigqueueinfo(child, si_code SI_USER) = EPERM", syscall(SYS_rt_sigqueueinfo, c, SIGUSR2, &si) == -1 && errno == EPERM);
    si.si_code = SI_KERNEL;
    errno = 0;
    check("rt_sigqueueinfo(child, si_code SI_KERNEL) = EPERM", syscall(SYS_rt_sigqueueinfo, c, SIGUSR2, &si) == -1 && errno == EPERM);
    si.si_code = SI_TKILL;
    errno = 0;
    check("rt_sigqueueinfo(child, si_code SI_TKILL) = EPERM", syscall(SYS_rt_sigqueueinfo, c, SIGUSR2, &si) == -1 && errno == EPERM);
    kill(c, SIGUSR2);
    waitpid(c, NULL, 0);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
