// /proc/self and /proc/[pid]: checked against what the process knows of itself
// (getpid, argv, environ, getrlimit, the auxv on its stack, its own stack
// address...). Prints properties, not values, so the output is the same natively
// and in the sandbox.
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
#include "check.h"

/* The whole of a file (NUL-terminated too), or NULL. */
static char *slurp(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0) break;
        n += r;
    }
    close(fd);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static char *link_of(const char *path) {
    static char buf[PATH_MAX + 1];
    ssize_t n = readlink(path, buf, PATH_MAX);
    if (n < 0) return NULL;
    buf[n] = 0;
    return buf;
}

/* The value after "Key:\t" in a status-like text, or NULL. */
static char *field(const char *text, const char *key) {
    static char val[256];
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (!strncmp(p, key, kl) && p[kl] == ':') {
            const char *v = p + kl + 1;
            while (*v == '\t' || *v == ' ') v++;
            size_t n = strcspn(v, "\n");
            if (n >= sizeof val) n = sizeof val - 1;
            memcpy(val, v, n);
            val[n] = 0;
            return val;
        }
    }
    return NULL;
}

static int dir_has(const char *dir, const char *name, int *count) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0, n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        n++;
        if (!strcmp(e->d_name, name)) found = 1;
    }
    closedir(d);
    if (count) *count = n;
    return found;
}

static void self_links(const char *argv0) {
    char want[64];
    snprintf(want, sizeof want, "%d", getpid());
    char *l = link_of("/proc/self");
    check("/proc/self names getpid()", l && !strcmp(l, want));
    snprintf(want, sizeof want, "%d/task/%d", getpid(), (int)syscall(SYS_gettid));
    l = link_of("/proc/thread-self");
    check("/proc/thread-self names pid/task/tid", l && !strcmp(l, want));
    char real[PATH_MAX];
    l = link_of("/proc/self/exe");
    check("/proc/self/exe is argv[0]'s realpath", l && realpath(argv0, real) && !strcmp(l, real));
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/exe", getpid());
    char *l2 = link_of(p);
    check("/proc/<pid>/exe is the same", l2 && realpath(argv0, real) && !strcmp(l2, real));
    struct stat a, b;
    check("stat /proc/self/exe is the program", stat("/proc/self/exe", &a) == 0 && stat(argv0, &b) == 0 && a.st_ino == b.st_ino && a.st_size == b.st_size);
    check("/proc/self/root is /", (l = link_of("/proc/self/root")) && !strcmp(l, "/"));
    char *cwd = getcwd(NULL, 0);
    check("/proc/self/cwd is getcwd()", cwd && (l = link_of("/proc/self/cwd")) && !strcmp(l, cwd));
    check("chdir /tmp", chdir("/tmp") == 0);
    check("/proc/self/cwd follows chdir", (l = link_of("/proc/self/cwd")) && !strcmp(l, "/tmp"));
    check("the cwd link can be walked", stat("/proc/self/cwd/.", &a) == 0 && stat("/tmp", &b) == 0 && a.st_ino == b.st_ino);
    check("chdir back", chdir(cwd) == 0);
    free(cwd);
    struct stat st;
    check("lstat /proc/self is a symlink", lstat("/proc/self", &st) == 0 && S_ISLNK(st.st_mode));
    check("stat /proc/self is a directory", stat("/proc/self", &st) == 0 && S_ISDIR(st.st_mode));
    snprintf(want, sizeof want, "%d", getpid());
    check("/proc lists our pid", dir_has("/proc", want, NULL));
    check("/proc lists self", dir_has("/proc", "self", NULL));
}

static void strings(int argc, char **argv) {
    size_t n;
    char *c = slurp("/proc/self/cmdline", &n);
    size_t want = 0;
    for (int i = 0; i < argc; i++) want += strlen(argv[i]) + 1;
    int same = c && n == want;
    for (size_t off = 0, i = 0; same && i < (size_t)argc; off += strlen(argv[i]) + 1, i++)
        same = !strcmp(c + off, argv[i]);
    check("/proc/self/cmdline is argv, NUL-separated", same);
    free(c);

    c = slurp("/proc/self/environ", &n);
    want = 0;
    int envc = 0;
    for (char **e = environ; *e; e++, envc++) want += strlen(*e) + 1;
    same = c && n == want;
    size_t off = 0;
    for (int i = 0; same && i < envc; off += strlen(environ[i]) + 1, i++)
        same = !strcmp(c + off, environ[i]);
    check("/proc/self/environ is the initial environment", same);
    free(c);
}

static void status_files(const char *argv0) {
    const char *base = strrchr(argv0, '/') ? strrchr(argv0, '/') + 1 : argv0;
    char name[16];
    snprintf(name, sizeof name, "%.15s", base);
    char *s = slurp("/proc/self/status", NULL);
    char want[64];
    check("status: Name is the comm", s && field(s, "Name") && !strcmp(field(s, "Name"), name));
    snprintf(want, sizeof want, "%d", getpid());
    check("status: Pid is getpid()", s && field(s, "Pid") && !strcmp(field(s, "Pid"), want));
    check("status: Tgid is getpid()", s && field(s, "Tgid") && !strcmp(field(s, "Tgid"), want));
    snprintf(want, sizeof want, "%d", getppid());
    check("status: PPid is getppid()", s && field(s, "PPid") && !strcmp(field(s, "PPid"), want));
    snprintf(want, sizeof want, "%u\t%u\t%u\t%u", getuid(), geteuid(), geteuid(), geteuid());
    check("status: Uid", s && field(s, "Uid") && !strcmp(field(s, "Uid"), want));
    snprintf(want, sizeof want, "%u\t%u\t%u\t%u", getgid(), getegid(), getegid(), getegid());
    check("status: Gid", s && field(s, "Gid") && !strcmp(field(s, "Gid"), want));
    check("status: State is R (running)", s && field(s, "State") && !strcmp(field(s, "State"), "R (running)"));
    check("status: Threads is 1", s && field(s, "Threads") && !strcmp(field(s, "Threads"), "1"));
    check("status: VmSize in kB", s && field(s, "VmSize") && strstr(field(s, "VmSize"), " kB") && atol(field(s, "VmSize")) > 0);
    mode_t old = umask(027);
    free(s);
    s = slurp("/proc/self/status", NULL);
    check("status: Umask follows umask()", s && field(s, "Umask") && !strcmp(field(s, "Umask"), "0027"));
    umask(old);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGUSR2, SIG_IGN);
    free(s);
    s = slurp("/proc/self/status", NULL);
    check("status: SigBlk shows SIGUSR1", s && field(s, "SigBlk") && strtoull(field(s, "SigBlk"), NULL, 16) == 1ull << (SIGUSR1 - 1));
    check("status: SigIgn shows SIGUSR2", s && field(s, "SigIgn") && (strtoull(field(s, "SigIgn"), NULL, 16) & (1ull << (SIGUSR2 - 1))));
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    signal(SIGUSR2, SIG_DFL);
    free(s);

    s = slurp("/proc/self/stat", NULL);
    int pid = 0, ppid = 0, pgrp = 0, sid = 0;
    char state = 0;
    char *close_paren = s ? strrchr(s, ')') : NULL;
    char comm[64] = "";
    if (s && close_paren) {
        char *open_paren = strchr(s, '(');
        snprintf(comm, sizeof comm, "%.*s", (int)(close_paren - open_paren - 1), open_paren + 1);
        pid = atoi(s);
        sscanf(close_paren + 2, "%c %d %d %d", &state, &ppid, &pgrp, &sid);
    }
    check("stat: pid (comm) R", pid == getpid() && !strcmp(comm, name) && state == 'R');
    check("stat: ppid pgrp session", ppid == getppid() && pgrp == getpgrp() && sid == getsid(0));
    int fields = 0;
    for (char *p = close_paren; p && *p; p++)
        if (*p == ' ') fields++;
    check("stat: 52 fields", fields + 2 == 52);
    free(s);

    s = slurp("/proc/self/statm", NULL);
    long v[7];
    check("statm: seven numbers, size > 0", s && sscanf(s, "%ld %ld %ld %ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]) == 7 && v[0] > 0);
    free(s);

    s = slurp("/proc/self/comm", NULL);
    snprintf(want, sizeof want, "%s\n", name);
    check("comm is the name and a newline", s && !strcmp(s, want));
    free(s);
    prctl(PR_SET_NAME, "renamed");
    s = slurp("/proc/self/comm", NULL);
    check("comm follows PR_SET_NAME", s && !strcmp(s, "renamed\n"));
    free(s);
    int fd = open("/proc/self/comm", O_WRONLY);
    check("comm can be written", fd >= 0 && write(fd, "written", 7) == 7);
    close(fd);
    char got[17] = "";
    prctl(PR_GET_NAME, got);
    check("PR_GET_NAME sees the written name", !strcmp(got, "written"));
    prctl(PR_SET_NAME, name);
    // Refused at open (mode 0444) unless privileged; then write(2) is EINVAL.
    errno = 0;
    fd = open("/proc/self/status", O_WRONLY);
    check("status cannot be written", fd < 0 ? errno == EACCES : write(fd, "x", 1) == -1 && errno == EINVAL);
    if (fd >= 0) close(fd);

    s = slurp("/proc/self/limits", NULL);
    check("limits: header", s && !strncmp(s, "Limit                     Soft Limit           Hard Limit           Units     \n", 79));
    static const int res[] = {RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_DATA, RLIMIT_STACK, RLIMIT_CORE, RLIMIT_RSS, RLIMIT_NPROC, RLIMIT_NOFILE, RLIMIT_MEMLOCK, RLIMIT_AS, RLIMIT_LOCKS, RLIMIT_SIGPENDING, RLIMIT_MSGQUEUE, RLIMIT_NICE, RLIMIT_RTPRIO, RLIMIT_RTTIME};
    int match = s != NULL;
    char *line = s ? strchr(s, '\n') + 1 : NULL;
    for (int i = 0; match && i < 16; i++) {
        struct rlimit rl;
        getrlimit(res[i], &rl);
        char soft[32], hard[32], a[32], b[32];
        if (rl.rlim_cur == RLIM_INFINITY) strcpy(soft, "unlimited"); else snprintf(soft, sizeof soft, "%lu", (unsigned long)rl.rlim_cur);
        if (rl.rlim_max == RLIM_INFINITY) strcpy(hard, "unlimited"); else snprintf(hard, sizeof hard, "%lu", (unsigned long)rl.rlim_max);
        match = sscanf(line + 26, "%31s %31s", a, b) == 2 && !strcmp(a, soft) && !strcmp(b, hard);
        line = strchr(line, '\n') + 1;
    }
    check("limits: every row is getrlimit's", match);
    free(s);
    struct rlimit rl = {100, 200};
    setrlimit(RLIMIT_NOFILE, &rl);
    s = slurp("/proc/self/limits", NULL);
    check("limits: follow setrlimit", s && strstr(s, "\nMax open files            100                  200                  files     \n"));
    free(s);
}

static void maps(void) {
    int local = 0;
    uintptr_t me = (uintptr_t)&local;
    void *area = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap((char *)area + 4096, 4096);
    char *s = slurp("/proc/self/maps", NULL);
    int stack_ok = 0, column_ok = 0, vdso = 0, vvar = 0, area_ok = 0, format_ok = s != NULL, lines = 0;
    for (char *l = s; l && *l; l = strchr(l, '\n') + 1) {
        unsigned long lo, hi, off;
        char perms[5];
        unsigned maj, min;
        unsigned long ino;
        int name_at = 0;
        if (sscanf(l, "%lx-%lx %4s %lx %x:%x %lu %n", &lo, &hi, perms, &off, &maj, &min, &ino, &name_at) < 7) format_ok = 0;
        lines++;
        size_t len = strcspn(l, "\n");
        if (len > 73 && !strncmp(l + 73, "[stack]", 7)) {
            stack_ok = lo <= me && me < hi && !strcmp(perms, "rw-p");
            column_ok = l[72] == ' ' && l[71] == ' ';
        }
        if (len > 73 && !strncmp(l + 73, "[vdso]", 6)) vdso = perms[2] == 'x';
        if (len > 73 && !strncmp(l + 73, "[vvar]", 6)) vvar = 1;
        if (lo == (uintptr_t)area && hi == (uintptr_t)area + 4096 && !strcmp(perms, "r--p")) area_ok++;
        if (lo == (uintptr_t)area + 8192 && hi == (uintptr_t)area + 12288 && !strcmp(perms, "r--p")) area_ok++;
    }
    check("maps: every line parses", format_ok && lines > 3);
    check("maps: the [stack] line holds a local variable", stack_ok);
    check("maps: names start at column 74", column_ok);
    check("maps: [vdso] is executable", vdso);
    check("maps: [vvar] is there", vvar);
    check("maps: a split mmap shows as its two pieces", area_ok == 2);
    free(s);
    void *big = malloc(100000);
    s = slurp("/proc/self/maps", NULL);
    check("maps: [heap] after malloc", s && strstr(s, "[heap]\n"));
    free(s);
    free(big);
}

static void fds(void) {
    struct stat st;
    check("/proc/self/fd/1 is a symlink", lstat("/proc/self/fd/1", &st) == 0 && S_ISLNK(st.st_mode));
    check("stat through /proc/self/fd/1 works", stat("/proc/self/fd/1", &st) == 0);
    char path[64];
    snprintf(path, sizeof path, "/tmp/procfs-test-%d", getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    char fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
    char *l = link_of(fdpath);
    check("fd link names the file", l && !strcmp(l, path));
    char name[16];
    snprintf(name, sizeof name, "%d", fd);
    int n = 0;
    check("fd/ lists it", dir_has("/proc/self/fd", name, &n));
    check("fdinfo/ lists it", dir_has("/proc/self/fdinfo", name, NULL));
    check("lstat of the link: lrwx", lstat(fdpath, &st) == 0 && (st.st_mode & 0777) == 0700);
    write(fd, "hello", 5);
    snprintf(fdpath, sizeof fdpath, "/proc/self/fdinfo/%d", fd);
    char *s = slurp(fdpath, NULL);
    unsigned flags = 0;
    check("fdinfo: pos follows writes", s && field(s, "pos") && !strcmp(field(s, "pos"), "5"));
    check("fdinfo: flags show O_RDWR and O_CLOEXEC", s && field(s, "flags") && sscanf(field(s, "flags"), "%o", &flags) == 1 && (flags & O_ACCMODE) == O_RDWR && (flags & O_CLOEXEC));
    check("fdinfo: mnt_id and ino", s && field(s, "mnt_id") && field(s, "ino") && fstat(fd, &st) == 0 && strtoul(field(s, "ino"), NULL, 10) == st.st_ino);
    free(s);
    // fdinfo of the very file being read (it asks the file for its position).
    int info = open(fdpath, O_RDONLY);
    int alias = dup(info);
    snprintf(fdpath, sizeof fdpath, "/proc/self/fdinfo/%d", alias);
    int self_info = open(fdpath, O_RDONLY);
    if (self_info >= 0 && self_info != alias) dup2(self_info, alias);
    char tmp[256];
    check("fdinfo of itself", self_info >= 0 && read(self_info, tmp, sizeof tmp) > 0 && !strncmp(tmp, "pos:\t0\n", 7));
    close(self_info);
    close(alias);
    close(info);
    // Opening the fd link opens the file anew, with its own offset.
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
    int again = open(fdpath, O_RDONLY);
    char buf[8] = "";
    check("open through the fd link reads from the start", again >= 0 && read(again, buf, 5) == 5 && !memcmp(buf, "hello", 5));
    check("... while the original offset stays", lseek(fd, 0, SEEK_CUR) == 5);
    close(again);
    // Deleted files stay reachable through the link.
    unlink(path);
    again = open(fdpath, O_RDONLY);
    check("a deleted file opens through its fd link", again >= 0 && read(again, buf, 5) == 5 && !memcmp(buf, "hello", 5));
    close(again);
    close(fd);
    errno = 0;
    check("a closed fd is gone from fd/", lstat(fdpath, &st) == -1 && errno == ENOENT);
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", tfd);
    check("a timerfd shows as anon_inode:[timerfd]", tfd >= 0 && (l = link_of(fdpath)) && !strcmp(l, "anon_inode:[timerfd]"));
    close(tfd);
}

/* Separate (mode "pipe"), as it needs pipes. */
static void pipe_fd(void) {
    int p[2];
    char fdpath[64];
    if (pipe(p) != 0) {
        check("pipe", 0);
        return;
    }
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", p[0]);
    char *l = link_of(fdpath);
    struct stat a, b;
    check("a pipe shows as pipe:[ino]", l && !strncmp(l, "pipe:[", 6));
    check("... with the pipe's inode number", l && fstat(p[0], &a) == 0 && strtoul(l + 6, NULL, 10) == a.st_ino);
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", p[1]);
    int w = open(fdpath, O_WRONLY);
    check("the pipe opens through its fd link", w >= 0 && fstat(w, &b) == 0 && b.st_ino == a.st_ino);
    char c = 0;
    check("and carries data", write(w, "z", 1) == 1 && read(p[0], &c, 1) == 1 && c == 'z');
    close(w);
    close(p[0]);
    close(p[1]);
}

static ElfW(auxv_t) *stack_auxv(char **envp) {
    char **e = envp;
    while (*e) e++;
    return (ElfW(auxv_t) *)(e + 1);
}

static void auxv_file(char **envp) {
    size_t n;
    char *s = slurp("/proc/self/auxv", &n);
    ElfW(auxv_t) *a = stack_auxv(envp);
    size_t words = 0;
    while (a[words].a_type != AT_NULL) words++;
    check("auxv is the vector the program started with", s && n == (words + 1) * sizeof *a && !memcmp(s, a, n));
    free(s);
}

static void mounts(void) {
    char *s = slurp("/proc/self/mounts", NULL);
    check("mounts shows /proc", s && strstr(s, " /proc proc "));
    free(s);
    s = slurp("/proc/self/mountinfo", NULL);
    check("mountinfo shows /proc", s && strstr(s, " /proc ") && strstr(s, " - proc "));
    free(s);
    char *l = link_of("/proc/mounts");
    check("/proc/mounts -> self/mounts", l && !strcmp(l, "self/mounts"));
    s = slurp("/proc/self/cgroup", NULL);
    check("cgroup is readable", s != NULL);
    free(s);
}

static pthread_barrier_t barrier;
static volatile int thread_tid;

static void *thread_main(void *arg) {
    (void)arg;
    thread_tid = syscall(SYS_gettid);
    char want[64];
    snprintf(want, sizeof want, "%d/task/%d", getpid(), thread_tid);
    char *l = link_of("/proc/thread-self");
    check("thread: thread-self names its tid", l && !strcmp(l, want));
    prctl(PR_SET_NAME, "worker");
    pthread_barrier_wait(&barrier);
    pthread_barrier_wait(&barrier);
    return NULL;
}

static void threads(void) {
    pthread_t t;
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_barrier_wait(&barrier);
    int n = 0;
    char name[16], path[96];
    snprintf(name, sizeof name, "%d", thread_tid);
    check("task/ lists both threads", dir_has("/proc/self/task", name, &n) && n == 2);
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", thread_tid);
    char *s = slurp(path, NULL);
    check("task/<tid>/comm is the thread's name", s && !strcmp(s, "worker\n"));
    free(s);
    snprintf(path, sizeof path, "/proc/self/task/%d/status", thread_tid);
    s = slurp(path, NULL);
    check("task/<tid>/status: Pid is the tid", s && field(s, "Pid") && atoi(field(s, "Pid")) == thread_tid);
    check("task/<tid>/status: Threads is 2", s && field(s, "Threads") && !strcmp(field(s, "Threads"), "2"));
    free(s);
    snprintf(path, sizeof path, "/proc/self/task/%d/task", thread_tid);
    struct stat st;
    check("task/<tid> has no task/", stat(path, &st) == -1);
    snprintf(path, sizeof path, "/proc/%d/status", thread_tid);
    s = slurp(path, NULL);
    check("/proc/<tid> answers for a thread too", s && field(s, "Tgid") && atoi(field(s, "Tgid")) == getpid());
    free(s);
    pthread_barrier_wait(&barrier);
    pthread_join(t, NULL);
    snprintf(path, sizeof path, "/proc/self/task/%d", thread_tid);
    /* The join returns when the thread clears its tid, which is a little before
       its exit is complete (in Linux too): allow it a moment. */
    int gone = 0;
    for (int i = 0; i < 200 && !gone; i++) {
        gone = stat(path, &st) == -1 && errno == ENOENT;
        if (!gone) usleep(10000);
    }
    check("an exited thread leaves task/", gone);
}

static void children(int argc, char **argv) {
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", child);
    size_t n;
    char *s = slurp(path, &n);
    size_t want = 0;
    for (int i = 0; i < argc; i++) want += strlen(argv[i]) + 1;
    check("a child's cmdline, read from its memory", s && n == want && !strcmp(s, argv[0]));
    free(s);
    snprintf(path, sizeof path, "/proc/%d/stat", child);
    int ppid = 0;
    char state = 0;
    /* Until the child is in pause(). */
    for (int i = 0; i < 500 && state != 'S'; i++) {
        s = slurp(path, NULL);
        if (!s || sscanf(strrchr(s, ')') + 2, "%c %d", &state, &ppid) != 2) state = '?';
        free(s);
        if (state != 'S') usleep(10000);
    }
    check("a child's stat: sleeping, our child", state == 'S' && ppid == getpid());
    kill(child, SIGKILL);
    siginfo_t si;
    waitid(P_PID, child, &si, WEXITED | WNOWAIT);
    s = slurp(path, NULL);
    check("an unreaped child is a zombie", s && sscanf(strrchr(s, ')') + 2, "%c", &state) == 1 && state == 'Z');
    free(s);
    waitpid(child, NULL, 0);
    snprintf(path, sizeof path, "/proc/%d", child);
    struct stat st;
    errno = 0;
    check("a reaped child is gone", stat(path, &st) == -1 && errno == ENOENT);
}

int main(int argc, char **argv, char **envp) {
    if (argc == 2 && !strcmp(argv[1], "pipe")) {
        pipe_fd();
        printf(failures ? "%d failures\n" : "all ok\n", failures);
        return failures != 0;
    }
    self_links(argv[0]);
    strings(argc, argv);
    status_files(argv[0]);
    maps();
    fds();
    auxv_file(envp);
    mounts();
    threads();
    children(argc, argv);
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("all ok\n");
    return 0;
}
