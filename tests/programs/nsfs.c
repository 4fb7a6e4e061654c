// UTS and IPC namespaces, /proc/PID/ns and setns: the links name each kind and
// their inode numbers tell namespaces apart; a child's new UTS namespace has its
// own hostname and a new IPC namespace its own (empty) System V objects, which
// go with it; setns joins another process's UTS and mount namespaces (and the
// process's own PID and network ones), refuses a wrong type, a file that is no
// namespace and its own user namespace; EPERM without CAP_SYS_ADMIN. Only
// children change namespaces, so the native run leaves the host as it was.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

static const char *kinds[] = {"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children", "user", "uts"};

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
    fflush(stdout);
}

// The inode number /proc/<pid>/ns/<kind> names, checked against its stat.
static unsigned long ns_of(const char *pid, const char *kind) {
    char path[128], link[128];
    snprintf(path, sizeof path, "/proc/%s/ns/%s", pid, kind);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0) return 0;
    link[n] = 0;
    unsigned long id = 0;
    char *open = strchr(link, '[');
    struct stat st;
    if (!open || sscanf(open, "[%lu]", &id) != 1 || stat(path, &st) || st.st_ino != id) return 0;
    return id;
}

static void wait_child(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    printf("child exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    fflush(stdout);
}

static void links(void) {
    for (unsigned i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        char path[64], link[128];
        snprintf(path, sizeof path, "/proc/self/ns/%s", kinds[i]);
        ssize_t n = readlink(path, link, sizeof link - 1);
        link[n < 0 ? 0 : n] = 0;
        char *colon = strchr(link, ':');
        if (colon) *colon = 0;
        printf("ns/%s: %s, numbered: %s\n", kinds[i], link, ns_of("self", kinds[i]) ? "yes" : "no");
    }
    printf("pid_for_children is pid: %s\n", ns_of("self", "pid") == ns_of("self", "pid_for_children") ? "yes" : "no");
    fflush(stdout);
}

static void uts(void) {
    struct utsname before, after;
    uname(&before);
    unsigned long mine = ns_of("self", "uts"), my_ipc = ns_of("self", "ipc");
    pid_t pid = fork();
    if (pid == 0) {
        show("unshare(CLONE_NEWUTS)", unshare(CLONE_NEWUTS));
        struct utsname u;
        uname(&u);
        printf("the child starts with the parent's name: %s\n", strcmp(u.nodename, before.nodename) ? "no" : "yes");
        show("sethostname", sethostname("rvt-inner", 9));
        uname(&u);
        printf("child's hostname: %s\n", u.nodename);
        int h = open("/proc/sys/kernel/hostname", O_WRONLY);
        show("write /proc/sys/kernel/hostname", write(h, "rvt-proc\n", 9));
        close(h);
        uname(&u);
        char back[80] = {0};
        h = open("/proc/sys/kernel/hostname", O_RDONLY);
        read(h, back, sizeof back - 1);
        close(h);
        printf("hostname after: %s, reads back: %s", u.nodename, back);
        printf("child's uts differs: %s, ipc differs: %s\n", ns_of("self", "uts") != mine ? "yes" : "no", ns_of("self", "ipc") != my_ipc ? "yes" : "no");
        fflush(stdout);
        _exit(0);
    }
    wait_child(pid);
    uname(&after);
    printf("parent's hostname unchanged: %s\n", strcmp(after.nodename, before.nodename) ? "no" : "yes");
    long cloned = syscall(SYS_clone, CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD, 0, 0, 0, 0);
    if (cloned == 0) _exit(ns_of("self", "uts") != mine && ns_of("self", "ipc") != my_ipc ? 0 : 3);
    wait_child(cloned);
}

static void ipc(void) {
    key_t key = 0x52560000 + getpid() % 0x10000, child_key = key + 0x10000;
    int shm = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600);
    show("parent shmget", shm < 0 ? -1 : 0);
    pid_t pid = fork();
    if (pid == 0) {
        show("child shmget of the parent's key", shmget(key, 0, 0) < 0 ? -1 : 0);
        show("unshare(CLONE_NEWIPC)", unshare(CLONE_NEWIPC));
        show("child shmget of the parent's key after", shmget(key, 0, 0) < 0 ? -1 : 0);
        show("child msgget of its own key", msgget(child_key, IPC_CREAT | 0600) < 0 ? -1 : 0);
        _exit(0);
    }
    wait_child(pid);
    show("parent msgget of the child's key", msgget(child_key, 0) < 0 ? -1 : 0);
    shmctl(shm, IPC_RMID, NULL);
}

static void setns_calls(void) {
    char dir[] = "/tmp/rvt-nsfs-XXXXXX", file[64];
    if (!mkdtemp(dir)) exit(1);
    snprintf(file, sizeof file, "%s/in-a", dir);
    int ready[2], done[2];
    char c;
    if (pipe(ready) || pipe(done)) exit(1);
    pid_t a = fork();
    if (a == 0) {
        unshare(CLONE_NEWUTS | CLONE_NEWNS);
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
        sethostname("rvt-a", 5);
        mount("t", dir, "tmpfs", 0, NULL);
        close(open(file, O_CREAT | O_WRONLY, 0600));
        write(ready[1], "x", 1);
        read(done[0], &c, 1);
        _exit(0);
    }
    read(ready[0], &c, 1);
    char apid[16];
    snprintf(apid, sizeof apid, "%d", a);
    pid_t b = fork();
    if (b == 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%s/ns/uts", apid);
        int uts = open(path, O_RDONLY);
        show("setns a uts file as ipc", setns(uts, CLONE_NEWIPC));
        show("setns a uts file", setns(uts, CLONE_NEWUTS));
        struct utsname u;
        uname(&u);
        printf("hostname after setns: %s\n", u.nodename);
        printf("file in a's mounts before: %s\n", access(file, F_OK) == 0 ? "yes" : "no");
        snprintf(path, sizeof path, "/proc/%s/ns/mnt", apid);
        int mnt = open(path, O_RDONLY);
        chdir("/tmp");
        show("setns a mnt file, any type", setns(mnt, 0));
        char cwd[256];
        printf("cwd after: %s\n", getcwd(cwd, sizeof cwd) ? cwd : strerrorname_np(errno));
        printf("file in a's mounts after: %s\n", access(file, F_OK) == 0 ? "yes" : "no");
        fflush(stdout);
        printf("same uts and mnt as a: %s\n", ns_of("self", "uts") == ns_of(apid, "uts") && ns_of("self", "mnt") == ns_of(apid, "mnt") ? "yes" : "no");
        show("setns /dev/null", setns(open("/dev/null", O_RDONLY), 0));
        show("setns own pid", setns(open("/proc/self/ns/pid", O_RDONLY), CLONE_NEWPID));
        show("setns own net", setns(open("/proc/self/ns/net", O_RDONLY), CLONE_NEWNET));
        show("setns own user", setns(open("/proc/self/ns/user", O_RDONLY), CLONE_NEWUSER));
        _exit(0);
    }
    wait_child(b);
    pid_t by_pidfd = fork();
    if (by_pidfd == 0) {
        int pidfd = syscall(SYS_pidfd_open, a, 0);
        show("setns a pidfd, no type", setns(pidfd, 0));
        show("setns a pidfd, uts and mnt", setns(pidfd, CLONE_NEWUTS | CLONE_NEWNS));
        struct utsname u;
        uname(&u);
        printf("hostname after setns by pidfd: %s\n", u.nodename);
        printf("file in a's mounts by pidfd: %s\n", access(file, F_OK) == 0 ? "yes" : "no");
        fflush(stdout);
        show("setns own pidfd, user", setns(syscall(SYS_pidfd_open, getpid(), 0), CLONE_NEWUSER));
        _exit(0);
    }
    wait_child(by_pidfd);
    write(done[1], "x", 1);
    wait_child(a);
    rmdir(dir);
}

static void unprivileged(void) {
    pid_t pid = fork();
    if (pid == 0) {
        int uts = open("/proc/self/ns/uts", O_RDONLY);
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2] = {{0}};
        syscall(SYS_capset, &h, d);
        show("unshare(CLONE_NEWUTS) without CAP_SYS_ADMIN", unshare(CLONE_NEWUTS));
        show("unshare(CLONE_NEWIPC) without CAP_SYS_ADMIN", unshare(CLONE_NEWIPC));
        show("setns without CAP_SYS_ADMIN", setns(uts, CLONE_NEWUTS));
        _exit(0);
    }
    wait_child(pid);
}

int main(void) {
    links();
    uts();
    ipc();
    setns_calls();
    unprivileged();
    return 0;
}
