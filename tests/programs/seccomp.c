/* seccomp(2) as programs that sandbox themselves use it: filters that fail calls with
 * an errno, trap them (SIGSYS with the call's details), or kill the thread or the
 * process; the strictest of several filters winning; inheritance across fork, threads
 * and exec; TSYNC; strict mode; and the checks that refuse a bad filter. Each case
 * runs in a child, so that the filters stay there. Compared with the same run natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "child.h"

#define LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define ON_NR(nr, ret) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, (ret))
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static long install(unsigned flags, struct sock_filter *f, unsigned short len) {
    struct sock_fprog prog = {len, f};
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

/* A filter that answers `nr` with `ret` and allows the rest. */
static long on_nr(unsigned flags, int nr, unsigned ret) {
    struct sock_filter f[] = {LOAD_NR, ON_NR(nr, ret), ALLOW};
    return install(flags, f, sizeof f / sizeof *f);
}

static const char *err(long r) {
    static char buf[64];
    if (r >= 0) snprintf(buf, sizeof buf, "%ld", r);
    else snprintf(buf, sizeof buf, "-1 %s", strerrorname_np(errno));
    return buf;
}

/* Runs `fn` in a child and prints how the child ended. */
static void in_child(const char *what, void (*fn)(void)) {
    int st = run_child(fn);
    if (WIFEXITED(st)) printf("%s: exited %d\n", what, WEXITSTATUS(st));
    else printf("%s: killed by signal %d\n", what, WTERMSIG(st));
}

static void errno_filters(void) {
    printf("PR_GET_SECCOMP before: %d\n", prctl(PR_GET_SECCOMP));
    printf("install errno EPERM for getppid: %s\n", err(on_nr(0, SYS_getppid, SECCOMP_RET_ERRNO | EPERM)));
    printf("PR_GET_SECCOMP after: %d\n", prctl(PR_GET_SECCOMP));
    errno = 0;
    printf("getppid: %s\n", err(syscall(SYS_getppid)));
    printf("getpid still works: %s\n", syscall(SYS_getpid) > 0 ? "yes" : "no");
    /* Of two errno answers the newest filter's wins; a trap beats both. */
    printf("second filter, errno 7: %s\n", err(on_nr(0, SYS_getppid, SECCOMP_RET_ERRNO | 7)));
    printf("getppid: %s\n", err(syscall(SYS_getppid)));
    printf("errno data 0 makes the call return 0: %s\n", err(on_nr(0, SYS_getuid, SECCOMP_RET_ERRNO | 0)));
    printf("getuid: %s\n", err(syscall(SYS_getuid)));
    printf("errno data above 4095 is capped: %s\n", err(on_nr(0, SYS_getgid, SECCOMP_RET_ERRNO | 5000)));
    errno = 0;
    long r = syscall(SYS_getgid);
    printf("getgid: %ld errno %d\n", r, errno);
    printf("SECCOMP_RET_TRACE without a tracer: %s\n", err(on_nr(0, SYS_getegid, SECCOMP_RET_TRACE)));
    printf("getegid: %s\n", err(syscall(SYS_getegid)));
    printf("SECCOMP_RET_LOG: %s\n", err(on_nr(0, SYS_geteuid, SECCOMP_RET_LOG)));
    printf("geteuid runs: %s\n", syscall(SYS_geteuid) >= 0 ? "yes" : "no");
    /* Inherited by a forked child, and kept across exec. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        printf("in a forked child, getppid: %s\n", err(syscall(SYS_getppid)));
        fflush(stdout);
        execl("/proc/self/exe", "seccomp", "exec-check", (char *)NULL);
        _exit(99);
    }
    waitpid(c, NULL, 0);
    char status[4096];
    FILE *f = fopen("/proc/self/status", "r");
    size_t n = f ? fread(status, 1, sizeof status - 1, f) : 0;
    status[n] = 0;
    if (f) fclose(f);
    char *s = strstr(status, "Seccomp:");
    char *filters = strstr(status, "Seccomp_filters:");
    if (s) *strchr(s, '\n') = 0;
    if (filters) *strchr(filters, '\n') = 0;
    printf("/proc/self/status: %s; %s\n", s ? s : "no Seccomp line", filters ? filters : "no filter count");
}

static volatile int trapped_nr, trapped_code, trapped_errno, trapped_arch, trapped_rax;
static volatile unsigned long trapped_addr;

static void on_sigsys(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    ucontext_t *uc = ucv;
    trapped_nr = si->si_syscall;
    trapped_code = si->si_code;
    trapped_errno = si->si_errno;
    trapped_arch = si->si_arch == AUDIT_ARCH_X86_64;
    trapped_addr = (unsigned long)si->si_call_addr;
    trapped_rax = (int)uc->uc_mcontext.gregs[REG_RAX];
    uc->uc_mcontext.gregs[REG_RAX] = 4242; /* what the call returns */
}

static void trap_filter(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
    printf("install trap for getppid: %s\n", err(on_nr(0, SYS_getppid, SECCOMP_RET_TRAP | 77)));
    long r = syscall(SYS_getppid);
    printf("getppid returned %ld; SIGSYS: nr %s, si_code %d (SYS_SECCOMP), si_errno %d, arch x86-64 %d, rax %s, "
           "call address set %d\n",
           r, trapped_nr == SYS_getppid ? "getppid" : "other", trapped_code, trapped_errno, trapped_arch,
           trapped_rax == SYS_getppid ? "the syscall number" : "other", trapped_addr != 0);
}

static void kill_process(void) {
    on_nr(0, SYS_getppid, SECCOMP_RET_KILL_PROCESS);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL); /* a handler does not save it */
    syscall(SYS_getppid);
    printf("still alive after KILL_PROCESS\n");
}

static void *killed_thread(void *arg) {
    (void)arg;
    syscall(SYS_getppid);
    return (void *)1;
}

static void kill_thread(void) {
    on_nr(0, SYS_getppid, SECCOMP_RET_KILL_THREAD);
    pthread_t t;
    pthread_create(&t, NULL, killed_thread, NULL);
    void *res = NULL;
    pthread_join(t, &res);
    printf("the other thread died, this one goes on: %s\n", res == NULL ? "yes" : "no");
    syscall(SYS_getppid); /* the last thread: the process dies */
    printf("still alive\n");
}

static void *tsync_thread(void *arg) {
    volatile int *go = arg;
    while (!*go) sched_yield();
    errno = 0;
    long r = syscall(SYS_getppid);
    printf("TSYNC: the other thread's getppid: %s\n", err(r));
    return NULL;
}

static void tsync(void) {
    static volatile int go;
    pthread_t t;
    pthread_create(&t, NULL, tsync_thread, (void *)&go);
    printf("install with TSYNC: %s\n", err(on_nr(SECCOMP_FILTER_FLAG_TSYNC, SYS_getppid, SECCOMP_RET_ERRNO | EACCES)));
    go = 1;
    pthread_join(t, NULL);
}

static void strict(void) {
    static const char msg[] = "strict: write works\n";
    fflush(stdout);
    printf("PR_SET_SECCOMP strict: %d\n", prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT));
    fflush(stdout);
    syscall(SYS_write, 1, msg, sizeof msg - 1);
    syscall(SYS_getpid);
    syscall(SYS_write, 1, "not reached\n", 12);
}

static void bad_filters(void) {
    struct sock_filter ok[] = {ALLOW};
    struct sock_filter no_ret[] = {LOAD_NR};
    struct sock_filter past_data[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64), ALLOW};
    struct sock_filter far_jump[] = {BPF_JUMP(BPF_JMP | BPF_JA, 5, 0, 0), ALLOW};
    struct sock_filter load_unset[] = {BPF_STMT(BPF_LD | BPF_MEM, 3), ALLOW};
    struct sock_filter div_zero[] = {BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0), ALLOW};
    struct sock_filter ind[] = {BPF_STMT(BPF_LD | BPF_W | BPF_IND, 0), ALLOW};
    printf("length 0: %s\n", err(install(0, ok, 0)));
    printf("length 4097: %s\n", err(install(0, ok, 4097)));
    printf("no final return: %s\n", err(install(0, no_ret, 1)));
    printf("load past seccomp_data: %s\n", err(install(0, past_data, 2)));
    printf("jump past the end: %s\n", err(install(0, far_jump, 2)));
    printf("scratch word loaded before any store: %s\n", err(install(0, load_unset, 2)));
    printf("division by a zero constant: %s\n", err(install(0, div_zero, 2)));
    printf("BPF_IND load: %s\n", err(install(0, ind, 2)));
    printf("unknown flag: %s\n", err(install(1u << 20, ok, 1)));
    printf("NULL program: %s\n", err(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, NULL)));
    printf("unknown operation: %s\n", err(syscall(SYS_seccomp, 99, 0, NULL)));
    printf("strict with flags: %s\n", err(syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 1, NULL)));
    unsigned action = SECCOMP_RET_KILL_PROCESS;
    printf("KILL_PROCESS available: %s\n", err(syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action)));
    action = SECCOMP_RET_LOG;
    printf("LOG available: %s\n", err(syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action)));
    action = 0x12340000;
    printf("unknown action available: %s\n", err(syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action)));
    printf("PR_GET_SECCOMP (nothing installed): %d\n", prctl(PR_GET_SECCOMP));
    /* A filter that kills: installed, then strict mode is refused. */
    on_nr(0, SYS_getppid, SECCOMP_RET_ERRNO | 1);
    printf("strict after a filter: %s\n", err(syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, NULL)));
}

/* A filter in the style of libseccomp: check the architecture, then compare a
 * 64-bit argument word by word. */
static void argument_filter(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        LOAD_NR,
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_dup, 0, 5),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]) + 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 100, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EMFILE),
        ALLOW,
    };
    printf("argument filter: %s\n", err(install(0, f, sizeof f / sizeof *f)));
    printf("dup(1): %s\n", dup(1) >= 0 ? "works" : strerrorname_np(errno));
    errno = 0;
    printf("dup(100): %s\n", err(syscall(SYS_dup, 100L)));
    errno = 0;
    printf("dup(100 + 2^32): %s\n", err(syscall(SYS_dup, 100L + (1L << 32))));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "exec-check")) {
        errno = 0;
        printf("after exec, getppid: %s; PR_GET_SECCOMP %d\n", err(syscall(SYS_getppid)), prctl(PR_GET_SECCOMP));
        return 0;
    }
    in_child("errno filters", errno_filters);
    in_child("trap", trap_filter);
    in_child("KILL_PROCESS", kill_process);
    in_child("KILL_THREAD", kill_thread);
    in_child("TSYNC", tsync);
    in_child("strict", strict);
    in_child("bad filters", bad_filters);
    in_child("argument filter", argument_filter);
    printf("all ok\n");
    return 0;
}
