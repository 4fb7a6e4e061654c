// User namespaces: a process that makes one holds every capability in it and
// sees ids through its maps (unmapped ones as 65534) until /proc/PID/uid_map and
// gid_map are written, once, by the rules Linux keeps (one's own id alone
// without privilege, a gid only after setgroups is denied; any ids the parent
// maps with CAP_SETUID there). Its capabilities count for files whose owner it
// maps and for namespaces it owns: not the parent's UTS or mount namespace,
// yes for ones it makes after. Exec keeps them for its root; setuid away from
// it drops them. setns joins one (for its owner) and not back out. Errors: a
// threaded process, CLONE_FS, depth. Only children change namespaces.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

static char dir[64];

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
    fflush(stdout);
}

static void at(char *buf, const char *name) {
    snprintf(buf, 128, "%s/%s", dir, name);
}

// Writes `text` to /proc/<pid>/<file>: 0 or -1 with errno.
static long put(const char *pid, const char *file, const char *text) {
    char path[128];
    snprintf(path, sizeof path, "/proc/%s/%s", pid, file);
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    long r = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return r < 0 ? -1 : 0;
}

// Prints /proc/<pid>/<file>, its lines joined by '|'.
static void cat(const char *pid, const char *file) {
    char path[128], buf[512];
    snprintf(path, sizeof path, "/proc/%s/%s", pid, file);
    int fd = open(path, O_RDONLY);
    long n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0) close(fd);
    if (n < 0) n = 0;
    buf[n] = 0;
    for (char *p = buf; *p; p++)
        if (*p == '\n') *p = '|';
    printf("%s: [%s]\n", file, buf);
    fflush(stdout);
}

// A line of /proc/self/status that starts with `key`.
static void status_line(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) printf("status %s", line);
    if (f) fclose(f);
    fflush(stdout);
}

static const char *caps(void) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d)) return "?";
    unsigned long long eff = d[0].effective | (unsigned long long)d[1].effective << 32;
    unsigned long long all = (1ULL << (CAP_LAST_CAP + 1)) - 1;
    return eff == all ? "all" : eff == 0 ? "none" : "some";
}

static void ids(const char *when) {
    printf("%s: uid %d euid %d gid %d egid %d caps %s\n", when, getuid(), geteuid(), getgid(), getegid(), caps());
    fflush(stdout);
}

static void owner(const char *name) {
    char p[128];
    struct stat st;
    at(p, name);
    if (stat(p, &st)) show("stat", -1);
    else printf("%s owned by %u:%u\n", name, st.st_uid, st.st_gid);
    fflush(stdout);
}

static int finish(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    printf("child exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    fflush(stdout);
    return st;
}

// A root process maps only itself.
static void own_map(void) {
    char p[128], self[] = "self";
    int parent_user = open("/proc/self/ns/user", O_RDONLY);
    struct stat before, after;
    stat("/proc/self/ns/user", &before);
    show("unshare user", unshare(CLONE_NEWUSER));
    stat("/proc/self/ns/user", &after);
    printf("new user namespace: %s\n", before.st_ino != after.st_ino ? "yes" : "no");
    ids("before the maps");
    cat(self, "uid_map");
    cat(self, "setgroups");
    owner("root-file");
    show("gid_map before setgroups deny", put(self, "gid_map", "0 0 1"));
    show("uid_map of another id", put(self, "uid_map", "0 1 1"));
    show("uid_map of two lines", put(self, "uid_map", "0 0 1\n1 1 1"));
    show("uid_map 0 0 1", put(self, "uid_map", "0 0 1"));
    show("uid_map again", put(self, "uid_map", "0 0 1"));
    show("setgroups allow", put(self, "setgroups", "allow"));
    show("setgroups deny", put(self, "setgroups", "deny"));
    show("setgroups allow after deny", put(self, "setgroups", "allow"));
    show("gid_map 0 0 1", put(self, "gid_map", "0 0 1"));
    show("setgroups after the gid map", put(self, "setgroups", "deny"));
    cat(self, "uid_map");
    cat(self, "gid_map");
    cat(self, "setgroups");
    ids("after the maps");
    status_line("Uid:");
    owner("root-file");
    owner("other-file");
    at(p, "other-file");
    show("open a 0600 file of an unmapped owner", open(p, O_RDONLY));
    show("chown to an unmapped uid", chown(p, 5, -1));
    show("chown a file of an unmapped owner", chown(p, 0, -1));
    at(p, "root-file");
    show("chown a mapped file", chown(p, 0, 0));
    show("setuid to an unmapped uid", setuid(5));
    show("setgroups denied", setgroups(0, NULL));
    show("sethostname in the parent's UTS namespace", sethostname("inner", 5));
    show("unshare uts", unshare(CLONE_NEWUTS));
    show("sethostname in its own", sethostname("inner", 5));
    at(p, "mnt");
    show("mount in the parent's mount namespace", mount("none", p, "tmpfs", 0, NULL));
    show("unshare mount", unshare(CLONE_NEWNS));
    show("mount in its own", mount("none", p, "tmpfs", 0, NULL));
    show("setns back to the parent's user namespace", setns(parent_user, CLONE_NEWUSER));
    fflush(stdout);
    // Exec keeps every capability for the namespace's root.
    execl("/proc/self/exe", "userns", "after-exec", (char *)NULL);
    show("exec", -1);
}

// The parent maps a range for a child; the child moves about in it.
static void parent_map(void) {
    int up[2], down[2];
    pipe(up);
    pipe(down);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        show("child unshare user", unshare(CLONE_NEWUSER));
        write(up[1], "u", 1);
        read(down[0], &c, 1);
        ids("child with the parent's map");
        cat("self", "uid_map");
        show("child setgroups", setgroups(0, NULL));
        show("child setuid 5", setuid(5));
        ids("child after setuid 5");
        char p[128];
        at(p, "made-by-5");
        show("child creates a file", open(p, O_CREAT | O_WRONLY, 0644));
        _exit(0);
    }
    char c, pidname[16];
    read(up[0], &c, 1);
    snprintf(pidname, sizeof pidname, "%d", pid);
    show("overlapping uid_map", put(pidname, "uid_map", "0 100000 10\n5 200000 10"));
    show("uid_map of count 0", put(pidname, "uid_map", "0 100000 0"));
    show("uid_map of words", put(pidname, "uid_map", "zero one two"));
    show("parent writes uid_map", put(pidname, "uid_map", "0 0 1\n1 100001 999"));
    show("parent writes gid_map", put(pidname, "gid_map", "0 0 1\n1 100001 999"));
    char nsfile[64];
    snprintf(nsfile, sizeof nsfile, "/proc/%d/ns/user", pid);
    int nsfd = open(nsfile, O_RDONLY);
    printf("parent reads: ");
    cat(pidname, "uid_map");
    // A helper joins the child's namespace: its owner may.
    pid_t helper = fork();
    if (helper == 0) {
        show("helper setns into the child's user namespace", setns(nsfd, CLONE_NEWUSER));
        ids("helper in it");
        show("helper setns into it again", setns(nsfd, CLONE_NEWUSER));
        _exit(0);
    }
    finish(helper);
    write(down[1], "g", 1);
    finish(pid);
    owner("made-by-5");
}

// A process that is not root maps its own id alone.
static void unprivileged(void) {
    char p[128];
    show("setresgid 1000", setresgid(1000, 1000, 1000));
    show("setresuid 1000", setresuid(1000, 1000, 1000));
    // Changing ids made it undumpable, and so its /proc files root's.
    show("dumpable again", prctl(PR_SET_DUMPABLE, 1));
    ids("unprivileged");
    show("unshare net without a user namespace", unshare(CLONE_NEWNET));
    show("unshare user", unshare(CLONE_NEWUSER));
    ids("in its own");
    show("uid_map of root", put("self", "uid_map", "0 0 1"));
    show("uid_map of its own uid", put("self", "uid_map", "0 1000 1"));
    show("gid_map before setgroups deny", put("self", "gid_map", "0 1000 1"));
    put("self", "setgroups", "deny");
    show("gid_map of its own gid", put("self", "gid_map", "0 1000 1"));
    ids("mapped");
    // Senders' uids as the namespace sees them.
    sigset_t set;
    siginfo_t si;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    kill(getpid(), SIGUSR1);
    sigwaitinfo(&set, &si);
    printf("kill's si_uid: %d\n", si.si_uid);
    pid_t pid = fork();
    if (pid == 0) _exit(3);
    waitid(P_PID, pid, &si, WEXITED);
    printf("waitid's si_uid: %d si_status %d\n", si.si_uid, si.si_status);
    at(p, "root-file");
    show("open a root 0600 file", open(p, O_RDONLY));
    // Capabilities in its own user namespace are none over the parent's IPC objects.
    show("shmget of root's 0600 segment for reading", shmget(0x5151, 0, 0400));
    show("unshare net", unshare(CLONE_NEWNET));
    show("unshare user and mount together", unshare(CLONE_NEWUSER | CLONE_NEWNS));
    ids("nested");
}

// Mounts a user namespace gets from a more privileged one keep their flags
// and their places.
static void locked_mounts(void) {
    char p[128], q[128], b[64];
    at(p, "ro");
    at(q, "ro/sub");
    mkdir(p, 0755);
    show("unshare mount as root", unshare(CLONE_NEWNS));
    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    show("mount a read-only tmpfs", mount("none", p, "tmpfs", MS_RDONLY | MS_NOSUID, "mode=755"));
    setresgid(1000, 1000, 1000);
    setresuid(1000, 1000, 1000);
    prctl(PR_SET_DUMPABLE, 1);
    show("unshare user and mount", unshare(CLONE_NEWUSER | CLONE_NEWNS));
    put("self", "setgroups", "deny");
    snprintf(b, sizeof b, "0 1000 1");
    put("self", "uid_map", b);
    put("self", "gid_map", b);
    show("remount it read-write", mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID, NULL));
    show("remount it without nosuid", mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL));
    show("remount it read-only, nosuid, noexec", mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL));
    show("bind it elsewhere", mount(p, dir, NULL, MS_BIND, NULL));
    show("remount the bind read-write", mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID, NULL));
    show("unmount the bind", umount2(dir, MNT_DETACH));
    show("unmount it", umount2(p, MNT_DETACH));
    show("mount a tmpfs of its own", mount("none", p, "tmpfs", 0, NULL));
    show("mkdir in it", mkdir(q, 0755));
    show("remount its own read-only and back", mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) || mount(NULL, p, NULL, MS_REMOUNT | MS_BIND, NULL));
    show("unmount its own", umount2(p, 0));
}

static void *sleeper(void *arg) {
    pause();
    return arg;
}

static void errors(void) {
    pthread_t th;
    pthread_create(&th, NULL, sleeper, NULL);
    show("unshare user with two threads", unshare(CLONE_NEWUSER));
    long r = syscall(SYS_clone, CLONE_NEWUSER | CLONE_FS | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    show("clone with CLONE_NEWUSER | CLONE_FS", r);
    pid_t pid = fork();
    if (pid == 0) {
        int depth = 0;
        while (unshare(CLONE_NEWUSER) == 0 && !put("self", "setgroups", "deny") && !put("self", "uid_map", "0 0 1") && !put("self", "gid_map", "0 0 1")) depth++;
        printf("nested %d deep, then %s\n", depth, strerrorname_np(errno));
        _exit(0);
    }
    finish(pid);
    pid = fork();
    if (pid == 0) {
        show("chroot", chroot(dir));
        show("unshare user in a chroot", unshare(CLONE_NEWUSER));
        _exit(0);
    }
    finish(pid);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && !strcmp(argv[1], "after-exec")) {
        ids("after exec");
        return 0;
    }
    char p[128];
    strcpy(dir, "/tmp/userns-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    chmod(dir, 0755);
    at(p, "root-file");
    close(open(p, O_CREAT | O_WRONLY, 0600));
    at(p, "other-file");
    close(open(p, O_CREAT | O_WRONLY, 0600));
    chown(p, 1, 1);
    at(p, "mnt");
    mkdir(p, 0755);

    pid_t pid = fork();
    if (pid == 0) {
        own_map();
        _exit(1);
    }
    finish(pid);
    printf("parent still: uid %d gid %d\n", getuid(), getgid());

    // The child's file: 100005 outside.
    chmod(dir, 0777);
    parent_map();

    int shm = shmget(0x5151, 4096, IPC_CREAT | 0600);
    pid = fork();
    if (pid == 0) {
        unprivileged();
        _exit(0);
    }
    finish(pid);
    shmctl(shm, IPC_RMID, NULL);

    pid = fork();
    if (pid == 0) {
        locked_mounts();
        _exit(0);
    }
    finish(pid);

    pid = fork();
    if (pid == 0) {
        errors();
        _exit(0);
    }
    finish(pid);

    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
