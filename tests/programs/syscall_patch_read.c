// glibc's `read` site, `xor %eax, %eax; syscall; cmp $-4096, %rax`, which systrap
// patches through an entry that runs the `cmp` in its stead (docs/systrap-patching.md):
// every thread that meets the site while it is patched must make its call once and
// see its result and the `cmp`'s flags as Linux gives them:
// - many calls, good and bad, from four threads while the site is patched, and from
//   a forked child afterwards;
// - a thread asleep in the call while another patches the site, then woken: it comes
//   back to where the `cmp` was;
// - the same thread's call interrupted by a handler then, restarted (SA_RESTART) or
//   failing with EINTR;
// - a thread single-stepped by a tracer to the site's `syscall` (its `xor` done), or
//   just past it (the call made), while another thread patches the site.
// Each case has a site of its own, so that each is patched while its case runs.
// Synchronisation is by pipes, waits and /proc states.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "step.h"
#include "timing.h"

// site_read_N(fd, buf, n): glibc's bytes; `above` gets the `cmp`'s "ja" (an error).
#define SITE(N)                                                                                  \
    __asm__(".pushsection .text\n"                                                              \
            ".globl site_read_" #N "\n"                                                         \
            "site_read_" #N ":\n"                                                               \
            "xor %eax, %eax\n"                                                                  \
            ".globl site_read_" #N "_syscall\n"                                                 \
            "site_read_" #N "_syscall: syscall\n"                                               \
            ".globl site_read_" #N "_cmp\n"                                                     \
            "site_read_" #N "_cmp: cmp $-4096, %rax\n"                                          \
            "seta %fs:above@tpoff\n"                                                                \
            "ret\n"                                                                             \
            ".popsection\n");                                                                   \
    long site_read_##N(int fd, void *buf, long n);                                              \
    extern char site_read_##N##_syscall[], site_read_##N##_cmp[];

// Set by the sites' `cmp` (per thread: each thread reads its own right after its call).
__thread char above;
SITE(many)
SITE(asleep)
SITE(restart)
SITE(eintr)
SITE(step_syscall)
SITE(step_cmp)

static int zero_fd;

// Two calls of `site` on /dev/zero: the second trap patches a site.
static int patch(long (*site)(int, void *, long)) {
    char buf[8];
    int ok = 1;
    for (int i = 0; i < 2; i++) ok &= site(zero_fd, buf, sizeof buf) == sizeof buf && !above;
    return ok;
}

static void await_asleep(pid_t tid) {
    while (task_state(getpid(), tid) != 'S') sched_yield();
}

// ---- many calls from four threads, then a forked child.

static void *caller(void *arg) {
    long bad = 0;
    char buf[32];
    for (int i = 0; i < 2000; i++) {
        memset(buf, 1, sizeof buf);
        long r = site_read_many(zero_fd, buf, 1 + i % sizeof buf);
        if (r != 1 + i % (long)sizeof buf || above || buf[0] != 0) bad++;
        r = site_read_many(-1, buf, 1);
        if (r != -EBADF || !above) bad++;
    }
    *(long *)arg = bad;
    return NULL;
}

static void many(void) {
    pthread_t t[4];
    long bad[4] = {0};
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, caller, &bad[i]);
    long all = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        all += bad[i];
    }
    check("four threads' calls: results and flags", all == 0);
    pid_t pid = fork();
    if (pid == 0) {
        long b = 0;
        caller(&b);
        _exit(b != 0);
    }
    int st;
    check("a forked child's calls", waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

// ---- a thread asleep in the call while the site is patched.

struct sleeper {
    long (*site)(int, void *, long);
    int fds[2];
    pid_t tid;
    long r;
    char above;
    char buf[8];
};

static void *sleep_in_read(void *arg) {
    struct sleeper *s = arg;
    s->tid = gettid();
    memset(s->buf, 0, sizeof s->buf);
    s->r = s->site(s->fds[0], s->buf, sizeof s->buf);
    s->above = above;
    return NULL;
}

static volatile int handled;
static void on_usr1(int sig) {
    (void)sig;
    handled++;
}

static void catch_usr1(int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = flags;
    sigaction(SIGUSR1, &sa, NULL);
}

// A sleeper in `site`, patched meanwhile; with `signal`, then interrupted.
static void asleep(const char *name, long (*site)(int, void *, long), int signal, int flags) {
    struct sleeper s = {.site = site};
    if (pipe(s.fds) != 0) return;
    catch_usr1(flags);
    handled = 0;
    pthread_t t;
    pthread_create(&t, NULL, sleep_in_read, &s);
    while (!__atomic_load_n(&s.tid, __ATOMIC_SEQ_CST)) sched_yield();
    await_asleep(s.tid);
    char what[128];
    snprintf(what, sizeof what, "%s: the site's other calls", name);
    check(what, patch(site));
    if (signal) {
        pthread_kill(t, SIGUSR1);
        while (!handled) sched_yield();
        if (flags & SA_RESTART) await_asleep(s.tid);
    }
    if (write(s.fds[1], "hello", 5) != 5) return;
    pthread_join(t, NULL);
    snprintf(what, sizeof what, "%s: the sleeper's call", name);
    if (signal && !(flags & SA_RESTART))
        check(what, s.r == -EINTR && s.above);
    else
        check(what, s.r == 5 && !s.above && memcmp(s.buf, "hello", 5) == 0);
    close(s.fds[0]);
    close(s.fds[1]);
}

// ---- a traced thread stepped to the site's `syscall`, or past it.

static int go[2], done[2], result[2];

static void *patcher(void *arg) {
    long (*site)(int, void *, long) = (long (*)(int, void *, long))arg;
    char c;
    if (read(go[0], &c, 1) != 1) _exit(3);
    long ok = patch(site);
    if (write(done[1], &ok, sizeof ok) != sizeof ok) _exit(4);
    return NULL;
}

static void stepped_child(long (*site)(int, void *, long)) {
    pthread_t t;
    if (pthread_create(&t, NULL, patcher, (void *)site) != 0) _exit(2);
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) _exit(5);
    raise(SIGUSR2);
    char buf[16];
    memset(buf, 1, sizeof buf);
    long r[3] = {site(zero_fd, buf, sizeof buf), above, buf[15]};
    if (write(result[1], r, sizeof r) != sizeof r) _exit(4);
    pthread_join(t, NULL);
    _exit(0);
}

static void stepped(const char *name, long (*site)(int, void *, long), const char *to) {
    if (pipe(go) != 0 || pipe(done) != 0 || pipe(result) != 0) return;
    pid_t pid = fork();
    if (pid == 0) stepped_child(site);
    int status;
    char what[128];
    snprintf(what, sizeof what, "%s: the child stops at its SIGUSR2", name);
    check(what, waitpid(pid, &status, 0) == pid && WIFSTOPPED(status) && WSTOPSIG(status) == SIGUSR2);
    struct user_regs_struct regs;
    int there = step_to(pid, to, &regs);
    snprintf(what, sizeof what, "%s: stepped there", name);
    check(what, there);
    long ok = 0;
    snprintf(what, sizeof what, "%s: the other thread's calls", name);
    check(what, write(go[1], "g", 1) == 1 && read(done[0], &ok, sizeof ok) == sizeof ok && ok);
    ptrace(PTRACE_CONT, pid, 0, 0);
    int exited = waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    snprintf(what, sizeof what, "%s: no signal on the way, and exit 0", name);
    check(what, exited);
    if (!exited && WIFSTOPPED(status)) {
        printf("stopped by signal %d\n", WSTOPSIG(status));
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    long r[3] = {0};
    snprintf(what, sizeof what, "%s: its call, made once", name);
    check(what, exited && read(result[0], r, sizeof r) == sizeof r && r[0] == 16 && r[1] == 0 && r[2] == 0);
    close(go[0]), close(go[1]), close(done[0]), close(done[1]), close(result[0]), close(result[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    zero_fd = open("/dev/zero", O_RDONLY);
    check("open /dev/zero", zero_fd >= 0);
    many();
    asleep("asleep", site_read_asleep, 0, 0);
    asleep("restarted", site_read_restart, 1, SA_RESTART);
    asleep("interrupted", site_read_eintr, 1, 0);
    stepped("at the syscall", site_read_step_syscall, site_read_step_syscall_syscall);
    stepped("past the syscall", site_read_step_cmp, site_read_step_cmp_cmp);
    printf(failures ? "FAILED\n" : "all ok\n");
    return failures != 0;
}
