// Who may signal whom (Linux's check_kill_permission): a process whose real or
// effective uid is the target's real or saved uid, one with CAP_KILL, or any
// process of the same session for SIGCONT. kill(-1) skips the rest and
// succeeds; a process group none of whose members may be signalled is EPERM;
// asking (signal 0) is checked too.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r < 0 ? -1 : r, r < 0 ? strerrorname_np(errno) : "");
}

// Each sleeper writes a byte here once it has its ids, and the checks wait for
// them all: a check must not see a sleeper that is still root.
static int ready[2];

static void sleep_as(uid_t uid) {
    if (uid) setresuid(uid, uid, uid);
    write(ready[1], "x", 1);
    for (;;) pause();
}

static pid_t sleeper(uid_t uid) {
    pid_t p = fork();
    if (p == 0) sleep_as(uid);
    return p;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pipe(ready);
    pid_t root = sleeper(0), other = sleeper(2000);
    // A sleeper of its own group, for the process-group kill.
    pid_t grouped = fork();
    if (grouped == 0) {
        setpgid(0, 0);
        sleep_as(2000);
    }
    setpgid(grouped, grouped);
    char byte;
    for (int i = 0; i < 3; i++) read(ready[0], &byte, 1);
    if (fork() == 0) {
        setresuid(1000, 1000, 1000);
        show("uid 1000 asks about root's", kill(root, 0));
        show("uid 1000 signals 2000's", kill(other, SIGTERM));
        show("tgkill 2000's", syscall(SYS_tgkill, other, other, 0));
        siginfo_t si = {.si_signo = SIGUSR1, .si_code = SI_QUEUE};
        show("sigqueue to 2000's", syscall(SYS_rt_sigqueueinfo, other, SIGUSR1, &si));
        int pidfd = syscall(SYS_pidfd_open, other, 0);
        show("pidfd_send_signal to 2000's", syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0));
        show("SIGCONT within the session", kill(root, SIGCONT));
        show("kill -1", kill(-1, 0));
        show("a group of 2000's", kill(-grouped, 0));
        show("itself", kill(getpid(), 0));
        _exit(0);
    }
    wait(NULL);
    if (fork() == 0) {
        setsid();
        setresuid(1000, 1000, 1000);
        show("SIGCONT from another session", kill(root, SIGCONT));
        _exit(0);
    }
    wait(NULL);
    if (fork() == 0) {
        setresuid(1000, 2000, 1000);
        show("euid 2000 asks about 2000's", kill(other, 0));
        _exit(0);
    }
    wait(NULL);
    if (fork() == 0) {
        setresuid(2000, 2000, 1000);
        show("uid 2000 signals its group", kill(-grouped, 0));
        _exit(0);
    }
    wait(NULL);
    kill(root, SIGKILL);
    kill(other, SIGKILL);
    kill(grouped, SIGKILL);
    while (wait(NULL) > 0) {}
    return 0;
}
