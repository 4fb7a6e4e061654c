// An exec from one thread of a traced process, as Linux's de_thread has it:
// the other threads are killed (a stopped one leaves its stop), each reports
// PTRACE_EVENT_EXIT and then exits with 0; the exec waits until they are gone,
// a traced thread's zombie until its tracer reaps it, the old leader until it
// is a zombie, which then goes unreaped; the exec'ing thread takes the
// leader's id and reports PTRACE_EVENT_EXEC with its former id as the message.
// Also: a traced leader that exits before its group tells its tracer at once
// (SIGCHLD) and again when the group dies; a tracer's wait for a thread's
// zombie gives the usage of its whole process, not counted as the tracer's
// children's. Everything the tracer sees is printed and compared with Linux.
// With "threads-exec", A execs untraced, for strace -f (host_programs.rs).
// Synchronisation is by pipes, waits and /proc states; the one timed wait
// (200 ms) only checks that an exec is still waiting.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "timing.h"

static void rd(int fd, void *buf, size_t n) {
    if (read(fd, buf, n) != (ssize_t)n) _exit(100);
}

static void wr(int fd, const void *buf, size_t n) {
    if (write(fd, buf, n) != (ssize_t)n) _exit(101);
}

static char *self_path;
// The process's threads: its leader L, A and B.
static pid_t L, A, B;
// tids: the threads tell their ids (A's negated); go: A (or L) execs, or B
// exits; block: never written.
static int tids[2], go[2], go_b[2], block[2];

static const char *name(pid_t p) {
    return p == L ? "L" : p == A ? "A" : p == B ? "B" : p == 0 ? "0" : "another";
}

static void exec_self(void) {
    char *argv[] = {self_path, "new-image", NULL};
    execve("/proc/self/exe", argv, NULL);
    _exit(99);
}

// Waits until thread `tid` sleeps. With "threads-exec", L and B are asleep in
// their reads when A execs: a stop of L that strace had collected but not yet
// looked at when the exec gave A L's id would be looked at in A (Linux too
// has this race).
static void await_asleep(pid_t tid) {
    while (task_state(getpid(), tid) != 'S') sched_yield();
}

// A: tells its id, then execs when told (with `arg`, once L sleeps).
static void *thread_a(void *arg) {
    pid_t t = -gettid();
    wr(tids[1], &t, sizeof t);
    char b;
    rd(go[0], &b, 1);
    if (arg) await_asleep(getpid());
    exec_self();
    return NULL;
}

// B: tells its id, then waits for nothing (or exits with 7 when told).
static void *thread_b(void *arg) {
    pid_t t = gettid();
    wr(tids[1], &t, sizeof t);
    char b;
    if (arg) {
        rd(go_b[0], &b, 1);
        syscall(SYS_exit, 7);
    }
    rd(block[0], &b, 1);
    return NULL;
}

// The SIGCHLDs pending (the tracer blocks it; one at a time, as SIGCHLD does not queue).
static void sigchld(const char *when) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    struct timespec zero = {0, 0};
    siginfo_t si;
    printf("%s: SIGCHLD", when);
    int n = 0;
    while (sigtimedwait(&set, &si, &zero) == SIGCHLD) {
        const char *code = si.si_code == CLD_EXITED ? "CLD_EXITED" : si.si_code == CLD_STOPPED ? "CLD_STOPPED" : si.si_code == CLD_TRAPPED ? "CLD_TRAPPED" : "other";
        printf(" from %s, %s, status %d", name(si.si_pid), code, si.si_status);
        n++;
    }
    printf("%s\n", n ? "" : " none");
}

static void drain_sigchld(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    struct timespec zero = {0, 0};
    siginfo_t si;
    while (sigtimedwait(&set, &si, &zero) == SIGCHLD) {
    }
}

// What a wait found, as the tracer sees it.
static void report(const char *what, pid_t r, int st) {
    printf("%s: ", what);
    if (r < 0) {
        printf("-1 %s\n", errname(errno));
    } else if (r == 0) {
        printf("nothing\n");
    } else if (WIFEXITED(st)) {
        printf("%s exited %d\n", name(r), WEXITSTATUS(st));
    } else if (WIFSIGNALED(st)) {
        printf("%s killed by %d\n", name(r), WTERMSIG(st));
    } else if (WIFSTOPPED(st)) {
        unsigned long msg = 0;
        long e = ptrace(PTRACE_GETEVENTMSG, r, 0, &msg);
        int event = st >> 16;
        printf("%s stopped, %d, event %s", name(r), WSTOPSIG(st), event == PTRACE_EVENT_EXEC ? "EXEC" : event == PTRACE_EVENT_EXIT ? "EXIT" : event == PTRACE_EVENT_STOP ? "STOP" : event ? "other" : "none");
        if (e == 0 && event == PTRACE_EVENT_EXEC) printf(", message %s", name((pid_t)msg));
        else if (e == 0 && event) printf(", message %lu", msg);
        printf("\n");
    }
}

// Waits for `pid` with `flags` and reports what came; its status.
static int wait_report(const char *what, pid_t pid, int flags) {
    int st = 0;
    pid_t r = waitpid(pid, &st, flags);
    report(what, r, st);
    return st;
}

// Waits (up to 10 s) until thread `tid` of L shows `state` in /proc.
static int becomes(pid_t tid, char state) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (task_state(L, tid) != state && ms_since(&t0) < 10000) sched_yield();
    return task_state(L, tid) == state;
}

// L's threads as /proc lists them under task/, with their states.
static void tasks(const char *when) {
    printf("%s: task/", when);
    pid_t all[] = {L, A, B};
    for (int i = 0; i < 3; i++) {
        char s = task_state(L, all[i]);
        if (s != '?') printf(" %s(%c)", name(all[i]), s);
    }
    printf("\n");
}

static void on_alarm(int sig) {
    (void)sig;
}

// Waits for L with a 200 ms timer: EINTR if nothing came.
static pid_t timed_wait(int *st) {
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {0, 200000}};
    setitimer(ITIMER_REAL, &it, NULL);
    pid_t r = waitpid(L, st, __WALL);
    int e = errno;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    errno = e;
    return r;
}

static long cpu_ms(const struct rusage *ru) {
    return (ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000 + (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000;
}

// Continues L after its exec and collects the new image's exit.
static void finish_new_image(void) {
    int st;
    ptrace(PTRACE_CONT, L, 0, 0);
    pid_t r = waitpid(L, &st, __WALL);
    report("the new image ends", r, st);
    if (r == L && WIFSTOPPED(st)) {
        ptrace(PTRACE_CONT, L, 0, 0);
        r = waitpid(L, &st, __WALL);
        report("then", r, st);
    }
    drain_sigchld();
}

// A, not the leader, execs while B is in a ptrace stop; all three are traced.
static void thread_execs(void) {
    printf("-- a thread execs\n");
    if (pipe(tids) || pipe(go) || pipe(block)) exit(2);
    pid_t c = fork();
    if (c == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_a, NULL) || pthread_create(&t, NULL, thread_b, NULL)) _exit(102);
        // The process's CPU time, for the usage of B's zombie.
        spin_us(CLOCK_THREAD_CPUTIME_ID, 100000);
        pid_t me = gettid();
        wr(tids[1], &me, sizeof me);
        char b;
        rd(block[0], &b, 1);
        _exit(103);
    }
    L = c;
    for (int i = 0; i < 3; i++) {
        pid_t t;
        rd(tids[0], &t, sizeof t);
        if (t < 0) A = -t;
        else if (t != L) B = t;
    }
    int opts = PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT;
    check("seize L, A and B", !ptrace(PTRACE_SEIZE, L, 0, opts) && !ptrace(PTRACE_SEIZE, A, 0, opts) && !ptrace(PTRACE_SEIZE, B, 0, opts));
    int st;
    check("interrupt B", ptrace(PTRACE_INTERRUPT, B, 0, 0) == 0);
    wait_report("B", B, __WALL);
    sigchld("B's interrupt");
    wr(go[1], "x", 1);
    wait_report("B, after A's exec began", B, __WALL);
    wait_report("L", L, __WALL);
    drain_sigchld();
    check("A waits killably (D)", becomes(A, 'D'));
    tasks("both in their exit stops");
    ptrace(PTRACE_CONT, B, 0, 0);
    siginfo_t si = {0};
    check("B's exit is reported", waitid(P_PID, B, &si, WEXITED | WNOWAIT | __WALL) == 0 && si.si_pid == B);
    printf("B's exit: %s, status %d\n", si.si_code == CLD_EXITED ? "CLD_EXITED" : "other", si.si_status);
    sigchld("B's exit");
    ptrace(PTRACE_CONT, L, 0, 0);
    check("L becomes a zombie", becomes(L, 'Z'));
    sigchld("L's exit");
    wait_report("L's zombie, to a wait", L, __WALL | WNOHANG);
    tasks("B not reaped yet");
    pid_t w = timed_wait(&st);
    report("the exec, while B is not reaped", w, st);
    struct rusage before, ru, after;
    getrusage(RUSAGE_CHILDREN, &before);
    w = wait4(B, &st, __WALL, &ru);
    report("reap B", w, st);
    getrusage(RUSAGE_CHILDREN, &after);
    check("B's usage is its process's (at least L's 100 ms)", cpu_ms(&ru) >= 90);
    check("nor is it counted as the tracer's children's", cpu_ms(&after) == cpu_ms(&before));
    printf("B's peak size: %ld\n", ru.ru_maxrss);
    wait_report("the exec", L, __WALL);
    sigchld("the exec");
    tasks("after the exec");
    wait_report("A's old id, to a wait", A, __WALL | WNOHANG);
    long r = syscall(SYS_tgkill, L, A, 0);
    printf("tgkill(L, A's old id): %ld %s\n", r, errname(r ? errno : 0));
    r = syscall(SYS_tgkill, L, L, 0);
    printf("tgkill(L, L): %ld %s\n", r, errname(r ? errno : 0));
    finish_new_image();
}

// B, traced, exits and is not reaped; then L execs: it waits for B's zombie.
static void zombie_before_exec(void) {
    printf("-- a traced thread's zombie, then the leader execs\n");
    if (pipe(tids) || pipe(go) || pipe(go_b)) exit(2);
    A = 0;
    pid_t c = fork();
    if (c == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_b, (void *)1)) _exit(102);
        char b;
        rd(go[0], &b, 1);
        exec_self();
    }
    L = c;
    rd(tids[0], &B, sizeof B);
    check("seize L and B", !ptrace(PTRACE_SEIZE, L, 0, PTRACE_O_TRACEEXEC) && !ptrace(PTRACE_SEIZE, B, 0, 0));
    wr(go_b[1], "x", 1);
    siginfo_t si = {0};
    check("B's exit is reported", waitid(P_PID, B, &si, WEXITED | WNOWAIT | __WALL) == 0 && si.si_pid == B && si.si_status == 7);
    drain_sigchld();
    becomes(L, 'S'); // L may not have reached its read of `go` yet
    tasks("B exited");
    wr(go[1], "x", 1);
    int st;
    pid_t w = timed_wait(&st);
    report("the exec, while B is not reaped", w, st);
    wait_report("reap B", B, __WALL);
    wait_report("the exec", L, __WALL);
    tasks("after the exec");
    finish_new_image();
}

// L, traced, exits alone (5), then B (7): the tracer hears of L twice, and
// its wait reports L once the group is gone, with L's status.
static void leader_exits_first(void) {
    printf("-- a traced leader exits first\n");
    if (pipe(tids) || pipe(go) || pipe(go_b)) exit(2);
    A = 0;
    pid_t c = fork();
    if (c == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_b, (void *)1)) _exit(102);
        char b;
        rd(go[0], &b, 1);
        syscall(SYS_exit, 5);
    }
    L = c;
    rd(tids[0], &B, sizeof B);
    check("seize L", ptrace(PTRACE_SEIZE, L, 0, 0) == 0);
    wr(go[1], "x", 1);
    check("L becomes a zombie", becomes(L, 'Z'));
    sigchld("L's exit");
    wait_report("L, to a wait", L, __WALL | WNOHANG);
    wr(go_b[1], "x", 1);
    wait_report("then B exits; L", L, __WALL);
    sigchld("the group's end");
    wait_report("again", -1, __WALL | WNOHANG);
}

// Untraced (for strace -f to trace): A execs once B waits, L waiting too.
static int threads_exec(void) {
    if (pipe(tids) || pipe(go) || pipe(block)) return 2;
    pthread_t t;
    if (pthread_create(&t, NULL, thread_a, "when L sleeps") || pthread_create(&t, NULL, thread_b, NULL)) return 3;
    pid_t id[2];
    rd(tids[0], &id[0], sizeof id[0]);
    rd(tids[0], &id[1], sizeof id[1]);
    await_asleep(id[0] > 0 ? id[0] : id[1]);
    wr(go[1], "x", 1);
    char b;
    rd(block[0], &b, 1);
    return 4;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "new-image") == 0) {
        printf("new image: its id is its process's: %s\n", getpid() == gettid() ? "yes" : "no");
        return 0;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    self_path = argv[0];
    if (argc > 1 && strcmp(argv[1], "threads-exec") == 0) return threads_exec();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    thread_execs();
    zombie_before_exec();
    leader_exits_first();
    if (!failures) printf("all ok\n");
    return failures != 0;
}
