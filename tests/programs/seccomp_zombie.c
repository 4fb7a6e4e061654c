// A zombie's /proc/PID/status keeps the seccomp mode and filter count its
// leader had when it exited, as Linux's (which keeps them in the dead task);
// a thread its mode or filter killed is in SECCOMP_MODE_DEAD (3) with its
// filters still counted.
// Synchronisation is by pipes and waitid(WNOWAIT); never by sleeping.
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

// The Seccomp: and Seccomp_filters: values of PID's status (-1 if missing).
static void seccomp_status(pid_t pid, int *mode, int *filters) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    *mode = *filters = -1;
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        sscanf(line, "Seccomp: %d", mode);
        sscanf(line, "Seccomp_filters: %d", filters);
    }
    fclose(f);
}

static void allow_all(void) {
    struct sock_filter insns[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {.len = 1, .filter = insns};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) _exit(90);
}

// A child sets itself up with `setup` (filters: how many allow-all filters;
// -1: strict mode), tells us, waits for a byte, and exits; its status is read
// alive and as a zombie.
static void zombie_shows(const char *what, int filters, int want_mode) {
    int ready[2], go[2];
    if (pipe(ready) || pipe(go)) exit(2);
    pid_t c = fork();
    if (c == 0) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) _exit(91);
        for (int i = 0; i < filters; i++) allow_all();
        if (filters < 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT)) _exit(92);
        char b = 'x';
        if (write(ready[1], &b, 1) != 1 || read(go[0], &b, 1) != 1) syscall(SYS_exit, 93);
        // Strict mode allows exit, not exit_group.
        syscall(SYS_exit, 0);
    }
    char b;
    if (read(ready[0], &b, 1) != 1) exit(3);
    int mode, n;
    seccomp_status(c, &mode, &n);
    int want_n = filters < 0 ? 0 : filters;
    printf("%s, alive: Seccomp %d, Seccomp_filters %d\n", what, mode, n);
    check("alive", mode == want_mode && n == want_n);
    if (write(go[1], "x", 1) != 1) exit(4);
    siginfo_t si;
    if (waitid(P_PID, c, &si, WEXITED | WNOWAIT)) exit(5);
    seccomp_status(c, &mode, &n);
    printf("%s, zombie: Seccomp %d, Seccomp_filters %d\n", what, mode, n);
    check("the zombie keeps them", mode == want_mode && n == want_n);
    int st;
    check("reaped", waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

// A filter that kills with `action` on getppid, allowing the rest.
static void kill_on_getppid(unsigned action) {
    struct sock_filter insns[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = 4, .filter = insns};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) _exit(94);
}

static void *call_getppid(void *arg) {
    (void)arg;
    syscall(SYS_getppid);
    return NULL;
}

// A child with an allow-all filter and one that kills with `action` (0: strict
// mode instead) calls getppid, from a second thread if `in_thread`; its zombie
// shows the leader's mode and count.
static void killed_shows(const char *what, unsigned action, int strict, int in_thread, int want_sig, int want_mode, int want_n) {
    pid_t c = fork();
    if (c == 0) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) _exit(91);
        if (strict) {
            if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT)) _exit(92);
        } else {
            allow_all();
            kill_on_getppid(action);
        }
        if (in_thread) {
            pthread_t t;
            if (pthread_create(&t, NULL, call_getppid, NULL) == 0) pthread_join(t, NULL);
            syscall(SYS_exit_group, 95);
        }
        syscall(SYS_getppid);
        syscall(SYS_exit, 96);
    }
    siginfo_t si;
    if (waitid(P_PID, c, &si, WEXITED | WNOWAIT)) exit(6);
    check("killed", (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED) && si.si_status == want_sig);
    int mode, n;
    seccomp_status(c, &mode, &n);
    printf("%s, zombie: Seccomp %d, Seccomp_filters %d\n", what, mode, n);
    check("the zombie shows it", mode == want_mode && n == want_n);
    check("reaped", waitpid(c, NULL, 0) == c);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    zombie_shows("no filter", 0, 0);
    zombie_shows("two filters", 2, 2);
    zombie_shows("strict", -1, 1);
    killed_shows("killed by its filter", SECCOMP_RET_KILL_PROCESS, 0, 0, SIGSYS, 3, 2);
    killed_shows("its lone thread killed", SECCOMP_RET_KILL_THREAD, 0, 0, SIGSYS, 3, 2);
    killed_shows("killed in strict mode", 0, 1, 0, SIGKILL, 3, 0);
    // Only the thread that made the call is dead; the leader's mode stays.
    killed_shows("killed by another thread's call", SECCOMP_RET_KILL_PROCESS, 0, 1, SIGSYS, 2, 2);
    if (!failures) printf("all ok\n");
    return failures != 0;
}
