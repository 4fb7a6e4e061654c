// execve of this same program (its path from readlink("/proc/self/exe")), one mode per
// argument; the new image is told what to check by its arguments:
//   exec      fork + execve with arguments and an environment; status of the new image;
//             ENOENT and EFAULT; 1000 arguments
//   signals   handled signals reset to SIG_DFL, ignored stay ignored, mask and pending kept
//   thread    execve from a second thread: the process keeps its pid, one thread remains,
//             which takes the leader's start time (/proc/self/stat's starttime)
//   cloexec   O_CLOEXEC descriptors are closed by execve, others stay open
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static char self[PATH_MAX];

static int finish(void) {
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}

static const char *describe(int st) {
    static char buf[64];
    if (WIFEXITED(st)) snprintf(buf, sizeof buf, "exited %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(buf, sizeof buf, "killed by signal %d", WTERMSIG(st));
    else snprintf(buf, sizeof buf, "raw %#x", st);
    return buf;
}

static int run_and_wait(pid_t c) {
    int st = -1;
    if (waitpid(c, &st, 0) != c) return -1;
    return st;
}

/* Field 22 of a /proc stat file: the start time in clock ticks since boot (0 if unreadable). */
static unsigned long long start_time(const char *path) {
    char buf[1024] = "";
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    /* Fields 3 to 21 after the command's closing parenthesis. */
    for (int field = 3; field <= 22 && p; field++) p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* The uptime in clock ticks (/proc/uptime's hundredths of seconds). */
static unsigned long long uptime_ticks(void) {
    unsigned long long s = 0, cs = 0;
    FILE *f = fopen("/proc/uptime", "r");
    if (!f) return 0;
    if (fscanf(f, "%llu.%llu", &s, &cs) != 2) s = cs = 0;
    fclose(f);
    return s * 100 + cs;
}

/* ---- the new images ---------------------------------------------------------------- */

static int image_exec(int argc, char **argv, char **envp) {
    /* argv: self "image-exec" PID 42 "two words" "" */
    printf("[new image] argc=%d\n", argc);
    for (int i = 3; i < argc; i++)
        printf("[new image] argv[%d]=[%s]\n", i, argv[i]);
    printf("[new image] argv[argc] is NULL: %s\n", argv[argc] == NULL ? "yes" : "no");
    int n = 0;
    for (char **e = envp; *e; e++) {
        printf("[new image] env[%d]=[%s]\n", n, *e);
        n++;
    }
    printf("[new image] same pid as before execve: %s\n", getpid() == atoi(argv[2]) ? "yes" : "no");
    return 42;
}

static int image_many(int argc, char **argv) {
    int ok = argc == 1002;
    for (int i = 2; i < argc && ok; i++) {
        char want[32];
        snprintf(want, sizeof want, "arg-%d", i);
        if (strcmp(argv[i], want)) ok = 0;
    }
    printf("[new image] 1000 arguments intact: %s\n", ok ? "yes" : "no");
    return ok ? 0 : 1;
}

static int image_signals(void) {
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    printf("[new image] handled SIGUSR1 reset to SIG_DFL: %s\n", sa.sa_handler == SIG_DFL ? "yes" : "no");
    sigaction(SIGUSR2, NULL, &sa);
    printf("[new image] ignored SIGUSR2 still SIG_IGN: %s\n", sa.sa_handler == SIG_IGN ? "yes" : "no");
    sigset_t m, p;
    sigprocmask(SIG_BLOCK, NULL, &m);
    printf("[new image] SIGTERM still blocked: %s\n", sigismember(&m, SIGTERM) ? "yes" : "no");
    printf("[new image] SIGHUP not blocked: %s\n", !sigismember(&m, SIGHUP) ? "yes" : "no");
    sigpending(&p);
    printf("[new image] SIGTERM still pending: %s\n", sigismember(&p, SIGTERM) ? "yes" : "no");
    stack_t ss;
    sigaltstack(NULL, &ss);
    printf("[new image] alternate signal stack disabled: %s\n", (ss.ss_flags & SS_DISABLE) ? "yes" : "no");
    char name[17] = {0};
    prctl(PR_GET_NAME, name);
    printf("[new image] comm is \"exec-*\": %s\n", !strncmp(name, "exec-", 5) ? "yes" : "no");
    return 0;
}

static int image_thread(char **argv) {
    printf("[new image] pid kept by execve from a thread: %s\n", getpid() == atoi(argv[2]) ? "yes" : "no");
    printf("[new image] the exec'ing thread is now the leader (tid == pid): %s\n",
           syscall(SYS_gettid) == getpid() ? "yes" : "no");
    unsigned long long leader_start = strtoull(argv[3], NULL, 10);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", getpid());
    printf("[new image] its start time is the old leader's (stat, task stat): %s, %s\n",
           start_time("/proc/self/stat") == leader_start ? "yes" : "no", start_time(path) == leader_start ? "yes" : "no");
    return 43;
}

static int image_cloexec(void) {
    errno = 0;
    int r10 = fcntl(10, F_GETFD);
    printf("[new image] fd 10 (O_CLOEXEC) closed: %s\n", r10 == -1 && errno == EBADF ? "yes" : "no");
    int r11 = fcntl(11, F_GETFD);
    printf("[new image] fd 11 open without FD_CLOEXEC: %s\n", r11 == 0 ? "yes" : "no");
    errno = 0;
    int r12 = fcntl(12, F_GETFD);
    printf("[new image] fd 12 (FD_CLOEXEC via fcntl) closed: %s\n", r12 == -1 && errno == EBADF ? "yes" : "no");
    const char msg[] = "[new image] written through fd 11\n";
    fflush(stdout);
    return write(11, msg, sizeof msg - 1) == (ssize_t)(sizeof msg - 1) ? 0 : 1;
}

/* ---- the modes --------------------------------------------------------------------- */

static void mode_exec(void) {
    char pidbuf[32];
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        snprintf(pidbuf, sizeof pidbuf, "%d", getpid());
        char *args[] = {self, "image-exec", pidbuf, "42", "two words", "", NULL};
        char *env[] = {"RVT_EXEC=yes", "EMPTY=", "PATH=/nowhere", NULL};
        execve(self, args, env);
        printf("execve failed: %s\n", strerror(errno));
        _exit(127);
    }
    int st = run_and_wait(c);
    printf("new image %s\n", describe(st));

    errno = 0;
    char *args[] = {"x", NULL};
    check("execve(nonexistent) = -1 ENOENT", execve("/nonexistent-rvisor-test/prog", args, environ) == -1 && errno == ENOENT);
    errno = 0;
    check("execve(bad path pointer) = -1 EFAULT", syscall(SYS_execve, (char *)8, args, environ) == -1 && errno == EFAULT);

    /* 1000 arguments. */
    static char bufs[1000][16];
    static char *many[1003];
    many[0] = self;
    many[1] = "image-many";
    for (int i = 0; i < 1000; i++) {
        snprintf(bufs[i], sizeof bufs[i], "arg-%d", i + 2);
        many[i + 2] = bufs[i];
    }
    many[1002] = NULL;
    fflush(stdout);
    c = fork();
    if (c == 0) {
        execve(self, many, environ);
        _exit(127);
    }
    st = run_and_wait(c);
    printf("many-arguments image %s\n", describe(st));

    /* execve replaces the calling process without fork: done in a child here. */
    fflush(stdout);
    c = fork();
    if (c == 0) {
        char *a[] = {self, "image-exit", NULL};
        execve(self, a, environ);
        _exit(127);
    }
    st = run_and_wait(c);
    printf("exec of an image that exits 77: %s\n", describe(st));
}

static void never_called(int sig) { (void)sig; }

static void mode_signals(void) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_IGN;
        sigaction(SIGUSR2, &sa, NULL);
        sa.sa_handler = never_called;
        sigaction(SIGUSR1, &sa, NULL);
        sigset_t m;
        sigemptyset(&m);
        sigaddset(&m, SIGTERM);
        sigprocmask(SIG_BLOCK, &m, NULL);
        kill(getpid(), SIGTERM);
        static char altstack[65536];
        stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
        sigaltstack(&ss, NULL);
        char *a[] = {self, "image-signals", NULL};
        execve(self, a, environ);
        _exit(127);
    }
    int st = run_and_wait(c);
    printf("new image %s\n", describe(st));
}

static char pidarg[32], startarg[32];

static void *exec_from_thread(void *arg) {
    (void)arg;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", (long)syscall(SYS_gettid));
    unsigned long long leader_start = strtoull(startarg, NULL, 10);
    printf("[thread] its start time is later than the leader's: %s\n", start_time(path) > leader_start ? "yes" : "no");
    char *a[] = {self, "image-thread", pidarg, startarg, NULL};
    execve(self, a, environ);
    _exit(127);
}

static void mode_thread(void) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        snprintf(pidarg, sizeof pidarg, "%d", getpid());
        unsigned long long leader_start = start_time("/proc/self/stat");
        snprintf(startarg, sizeof startarg, "%llu", leader_start);
        /* The thread must start a clock tick later than the leader to tell them apart. */
        while (uptime_ticks() <= leader_start + 1) {}
        pthread_t t[3];
        pthread_create(&t[0], NULL, exec_from_thread, NULL);
        for (;;) pause(); /* the main thread is destroyed by the other thread's execve */
    }
    int st = run_and_wait(c);
    printf("new image %s\n", describe(st));
}

static void mode_cloexec(void) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        int ok = dup3(1, 10, O_CLOEXEC) == 10 && dup2(1, 11) == 11 && dup2(1, 12) == 12 &&
                 fcntl(12, F_SETFD, FD_CLOEXEC) == 0;
        printf("dup3/dup2/fcntl set up: %s\n", ok ? "yes" : "no");
        printf("fd 10 has FD_CLOEXEC: %s\n", fcntl(10, F_GETFD) == FD_CLOEXEC ? "yes" : "no");
        fflush(stdout);
        char *a[] = {self, "image-cloexec", NULL};
        execve(self, a, environ);
        _exit(127);
    }
    int st = run_and_wait(c);
    printf("new image %s\n", describe(st));
}

int main(int argc, char **argv, char **envp) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "image-exec")) return image_exec(argc, argv, envp);
    if (!strcmp(m, "image-many")) return image_many(argc, argv);
    if (!strcmp(m, "image-exit")) return 77;
    if (!strcmp(m, "image-signals")) return image_signals();
    if (!strcmp(m, "image-thread")) return image_thread(argv);
    if (!strcmp(m, "image-cloexec")) return image_cloexec();

    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        printf("readlink(/proc/self/exe) failed\n");
        return 1;
    }
    self[n] = 0;
    printf("mode %s\n", m);
    if (!strcmp(m, "exec")) mode_exec();
    else if (!strcmp(m, "signals")) mode_signals();
    else if (!strcmp(m, "thread")) mode_thread();
    else if (!strcmp(m, "cloexec")) mode_cloexec();
    else {
        printf("unknown mode\n");
        return 2;
    }
    return finish();
}
