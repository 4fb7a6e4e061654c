// PID namespaces: unshare(CLONE_NEWPID) puts the next child in a new namespace,
// where it is PID 1 with no parent, its children count from 2, and nothing
// outside is visible (its process group and session are 0 until setsid). A
// /proc mounted there lists the namespace alone; the enclosing /proc shows
// both ids. The init ignores signals it has no handler for from inside, kill(-1)
// spares it, and when it ends every other process in the namespace ends first,
// after which no process may join it. clone(CLONE_NEWPID), setns into a nested
// namespace for the children to come, and the nesting limit.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
}

static int code(int st) {
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static void finish(const char *who, pid_t pid) {
    int st;
    pid_t r = waitpid(pid, &st, 0);
    printf("%s exit: %d%s\n", who, r == pid ? code(st) : -100, r == pid ? "" : " (not waited)");
}

static ino_t ino(const char *path) {
    struct stat st;
    return stat(path, &st) ? 0 : st.st_ino;
}

// The NSpid line of /proc/<pid>/status, its tabs as spaces.
static void nspid(const char *proc, const char *pid, char *out, size_t n) {
    char path[128], line[256];
    snprintf(path, sizeof path, "%s/%s/status", proc, pid);
    FILE *f = fopen(path, "r");
    out[0] = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "NSpid:", 6)) {
            for (char *p = line; *p; p++)
                if (*p == '\t' || *p == '\n') *p = ' ';
            snprintf(out, n, "%s", line + 7);
        }
    if (f) fclose(f);
}

static void status_field(const char *pid, const char *key) {
    char path[128], line[256];
    snprintf(path, sizeof path, "/proc/%s/status", pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) printf("/proc/%s %s", pid, line);
    if (f) fclose(f);
}

static void list_proc(void) {
    DIR *d = opendir("/proc");
    int ids[64], n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 64)
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9') ids[n++] = atoi(e->d_name);
    if (d) closedir(d);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (ids[j] < ids[i]) {
                int x = ids[i];
                ids[i] = ids[j];
                ids[j] = x;
            }
    printf("/proc lists:");
    for (int i = 0; i < n; i++) printf(" %d", ids[i]);
    printf("\n");
}

// The namespace's init: what it sees and does.
static int ns_init(int report) {
    show("init getpid", getpid());
    show("init getppid", getppid());
    show("init getpgrp", getpgrp());
    show("init getsid", getsid(0));
    show("init setsid", setsid());
    show("init getpgrp after", getpgrp());
    // System V IPC reports pids as the reader's namespace sees them.
    int shm = shmget(IPC_PRIVATE, 4096, 0600);
    struct shmid_ds ds;
    shmctl(shm, IPC_STAT, &ds);
    show("shm_cpid", ds.shm_cpid);
    shmctl(shm, IPC_RMID, NULL);
    int sem = semget(IPC_PRIVATE, 1, 0600);
    struct sembuf up = {0, 1, 0};
    semop(sem, &up, 1);
    show("GETPID of a semaphore", semctl(sem, 0, GETPID));
    semctl(sem, 0, IPC_RMID);
    pid_t g = fork();
    if (g == 0) {
        printf("grandchild getpid %d getppid %d\n", getpid(), getppid());
        _exit(7);
    }
    siginfo_t si;
    show("waitid", waitid(P_ALL, 0, &si, WEXITED));
    printf("waitid si_pid %d si_status %d\n", si.si_pid, si.si_status);
    show("kill the reaped grandchild", kill(g, 0));
    show("unshare mount", unshare(CLONE_NEWNS));
    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    show("mount proc", mount("proc", "/proc", "proc", 0, NULL));
    pid_t s = fork();
    if (s == 0) {
        pause();
        _exit(0);
    }
    list_proc();
    char link[32] = "";
    readlink("/proc/self", link, sizeof link - 1);
    printf("/proc/self -> %s\n", link);
    char buf[64];
    nspid("/proc", "3", buf, sizeof buf);
    printf("/proc/3 NSpid: %s\n", buf);
    status_field("3", "PPid:");
    status_field("1", "PPid:");
    show("SIGTERM to itself", kill(1, SIGTERM));
    show("SIGKILL to itself", kill(1, SIGKILL));
    printf("init survived them\n");
    show("kill(-1, SIGKILL)", kill(-1, SIGKILL));
    int st;
    pid_t r = waitpid(s, &st, 0);
    printf("sleeper %d ended: %d\n", r, code(st));
    // A last one, which the init's end takes with it.
    s = fork();
    if (s == 0) {
        pause();
        _exit(0);
    }
    write(report, "x", 1);
    // Wait for the outside to look, then end.
    pause();
    return 3;
}

// The id outside of the process whose innermost id is `local` inside the
// namespace of outside process `init`.
static pid_t outer_of(pid_t init, int local) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    char want[64], initbuf[64], buf[64];
    snprintf(initbuf, sizeof initbuf, "%d", init);
    pid_t found = -1;
    while (d && (e = readdir(d)))
        if (e->d_name[0] >= '1' && e->d_name[0] <= '9') {
            nspid("/proc", e->d_name, buf, sizeof buf);
            snprintf(want, sizeof want, "%s %d ", e->d_name, local);
            if (!strcmp(buf, want) && strcmp(e->d_name, initbuf)) found = atoi(e->d_name);
        }
    if (d) closedir(d);
    return found;
}

static void unshared(void) {
    pid_t me = getpid();
    show("unshare pid", unshare(CLONE_NEWPID));
    printf("pid unchanged: %s\n", getpid() == me ? "yes" : "no");
    printf("pid_for_children differs: %s\n", ino("/proc/self/ns/pid") != ino("/proc/self/ns/pid_for_children") ? "yes" : "no");
    show("unshare pid again", unshare(CLONE_NEWPID));
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        _exit(ns_init(p[1]));
    }
    close(p[1]);
    char x;
    read(p[0], &x, 1);
    printf("init's pid outside > 1: %s\n", c > 1 ? "yes" : "no");
    char buf[64], cs[16];
    snprintf(cs, sizeof cs, "%d", c);
    nspid("/proc", cs, buf, sizeof buf);
    char want[64];
    snprintf(want, sizeof want, "%d 1 ", c);
    printf("init's NSpid outside is its two ids: %s\n", strcmp(buf, want) ? buf : "yes");
    pid_t last = outer_of(c, 4);
    printf("the last one is found outside: %s\n", last > 0 ? "yes" : "no");
    show("SIGTERM to the init from outside", kill(c, SIGTERM));
    show("SIGKILL to the init from outside", kill(c, SIGKILL));
    finish("init", c);
    show("the last one after the init", kill(last, 0));
    show("wait for more", wait(NULL));
    show("fork into the ended namespace", fork());
}

// A tracer in the namespace hears of its tracee's child by the id it sees.
static int trace_fork(void) {
    pid_t tracee = fork();
    if (tracee == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        pid_t g = fork();
        if (g == 0) _exit(0);
        waitpid(g, NULL, 0);
        _exit(0);
    }
    int st;
    waitpid(tracee, &st, 0);
    ptrace(PTRACE_SETOPTIONS, tracee, 0, PTRACE_O_TRACEFORK);
    ptrace(PTRACE_CONT, tracee, 0, 0);
    waitpid(tracee, &st, 0);
    unsigned long msg = 0;
    ptrace(PTRACE_GETEVENTMSG, tracee, 0, &msg);
    printf("fork event of tracee %d: new child %lu\n", tracee, msg);
    ptrace(PTRACE_DETACH, tracee, 0, 0);
    waitpid(msg, NULL, __WALL);
    ptrace(PTRACE_DETACH, msg, 0, 0);
    waitpid(tracee, &st, 0);
    return 0;
}

static void cloned(void) {
    long c = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
    if (c == 0) {
        if (getpid() != 1 || getppid() != 0) _exit(1);
        _exit(trace_fork());
    }
    // The child prints as it goes: it ends before this prints, so the order is fixed.
    finish("clone child", c);
    show("clone(CLONE_NEWPID) child's pid 1, no parent", c > 1 ? 0 : -1);
}

static void joined(void) {
    int go[2], up[2], cx[2];
    pipe(go);
    pipe(up);
    pipe(cx);
    int outer = open("/proc/self/ns/pid", O_RDONLY);
    pid_t x = fork();
    if (x == 0) {
        unshare(CLONE_NEWPID);
        pid_t c = fork();
        if (c == 0) {
            char b;
            show("setns from inside to the enclosing namespace", setns(outer, CLONE_NEWPID));
            write(cx[1], "r", 1);
            read(go[0], &b, 1);
            _exit(0);
        }
        char b;
        read(cx[0], &b, 1);
        write(up[1], &c, sizeof c);
        finish("nested init", c);
        _exit(0);
    }
    pid_t c;
    read(up[0], &c, sizeof c);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/pid", c);
    int fd = open(path, O_RDONLY);
    pid_t h = fork();
    if (h == 0) {
        pid_t me = getpid();
        show("setns into the nested namespace", setns(fd, CLONE_NEWPID));
        printf("own pid unchanged: %s\n", getpid() == me ? "yes" : "no");
        printf("pid_for_children is it: %s\n", ino("/proc/self/ns/pid_for_children") == ino(path) ? "yes" : "no");
        pid_t k = fork();
        if (k == 0) _exit(getpid());
        int st;
        waitpid(k, &st, 0);
        printf("its child's pid there: %d\n", code(st));
        _exit(0);
    }
    finish("helper", h);
    write(go[1], "g", 1);
    finish("joiner", x);
}

static int nest(int depth) {
    if (unshare(CLONE_NEWPID)) {
        printf("nested %d deep, then %s\n", depth, strerrorname_np(errno));
        return 0;
    }
    pid_t c = fork();
    if (c == 0) _exit(nest(depth + 1));
    int st;
    waitpid(c, &st, 0);
    return code(st);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t pid = fork();
    if (pid == 0) {
        unshared();
        _exit(0);
    }
    finish("unsharer", pid);
    cloned();
    joined();
    pid = fork();
    if (pid == 0) _exit(nest(0));
    finish("nester", pid);
    return 0;
}
