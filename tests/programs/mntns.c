// Mount namespaces, MS_MOVE and pivot_root: what a process mounts after
// unshare(CLONE_NEWNS) or clone(CLONE_NEWNS) only it sees, and it no longer sees
// what is mounted outside; its cwd stays; /proc/PID/mountinfo shows each
// process's own tree; a moved mount takes its files along; pivot_root both ways
// (put_old beneath the new root, and runc's `pivot_root . .`); getcwd outside a
// chroot; the errors. Natively the whole program first moves to a private mount
// namespace, so that nothing it does reaches the host's tree.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

static char base[] = "/tmp/rvt-mntns-XXXXXX";

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
    fflush(stdout);
}

#include "scratch.h"

static void touch(const char *path) {
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) close(fd);
}

static void seen(const char *who, const char *path) {
    printf("%s sees %s: %s\n", who, strncmp(path, base, strlen(base)) ? path : path + strlen(base) + 1, access(path, F_OK) == 0 ? "yes" : "no");
    fflush(stdout);
}

// How many mounts of `type` at `dir` (relative to base unless absolute) the
// mountinfo of `pid` lists, read from the proc mounted at `proc`.
static int listed_in(const char *proc, const char *pid, const char *dir, const char *type) {
    char file[64], line[2048];
    snprintf(file, sizeof file, "%s/%s/mountinfo", proc, pid);
    FILE *f = fopen(file, "r");
    int found = 0;
    while (f && fgets(line, sizeof line, f)) {
        char mp[512], t[64];
        char *dash = strstr(line, " - ");
        if (sscanf(line, "%*d %*d %*s %*s %511s", mp) != 1 || !dash || sscanf(dash + 3, "%63s", t) != 1) continue;
        if (!strcmp(mp, dir[0] == '/' ? dir : at(dir)) && !strcmp(t, type)) found++;
    }
    if (f) fclose(f);
    return found;
}

static int listed(const char *pid, const char *dir, const char *type) {
    return listed_in("/proc", pid, dir, type);
}

static void wait_child(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    printf("child exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    fflush(stdout);
}

// The entries of `dir`, sorted, on one line.
static void list(const char *what, const char *dir) {
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    printf("%s:", what);
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) printf(" %s", names[i]->d_name);
        free(names[i]);
    }
    printf("%s\n", n < 0 ? " (error)" : "");
    fflush(stdout);
    if (n >= 0) free(names);
}

// unshare(CLONE_NEWNS) in a child: its mounts and the parent's stay apart.
static void unshared_child(void) {
    int to_parent[2], to_child[2];
    char c;
    if (pipe(to_parent) || pipe(to_child)) exit(1);
    mkdir(at("a"), 0755);
    mkdir(at("b"), 0755);
    mkdir(at("shared"), 0755);
    show("tmpfs on shared", mount("t", at("shared"), "tmpfs", 0, NULL));
    pid_t pid = fork();
    if (pid == 0) {
        chdir(at("shared"));
        show("child unshare(CLONE_NEWNS)", unshare(CLONE_NEWNS));
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
        char cwd[512];
        show("child getcwd is unchanged", getcwd(cwd, sizeof cwd) && !strcmp(cwd, at("shared")) ? 0 : -1);
        touch("made-after-unshare");
        show("child tmpfs on a", mount("t", at("a"), "tmpfs", 0, NULL));
        touch(at("a/child-file"));
        write(to_parent[1], "x", 1);
        read(to_child[0], &c, 1);
        seen("child", at("a/child-file"));
        seen("child", at("b/parent-file"));
        printf("child's mountinfo lists a: %d, b: %d\n", listed("self", "a", "tmpfs"), listed("self", "b", "tmpfs"));
        chdir("/");
        show("child umount shared", umount2(at("shared"), 0));
        _exit(0);
    }
    read(to_parent[0], &c, 1);
    show("parent tmpfs on b", mount("t", at("b"), "tmpfs", 0, NULL));
    touch(at("b/parent-file"));
    seen("parent", at("a/child-file"));
    seen("parent", at("shared/made-after-unshare"));
    char child[16];
    snprintf(child, sizeof child, "%d", pid);
    printf("parent's mountinfo lists a: %d, b: %d; the child's lists a: %d, b: %d\n", listed("self", "a", "tmpfs"), listed("self", "b", "tmpfs"), listed(child, "a", "tmpfs"), listed(child, "b", "tmpfs"));
    fflush(stdout);
    write(to_child[1], "x", 1);
    wait_child(pid);
    seen("parent after the child's umount", at("shared/made-after-unshare"));
    umount2(at("b"), 0);
    umount2(at("shared"), 0);
}

// clone(CLONE_NEWNS): the child starts in a copy.
static void cloned_child(void) {
    errno = 0;
    show("clone(CLONE_NEWNS|CLONE_FS)", syscall(SYS_clone, CLONE_NEWNS | CLONE_FS | SIGCHLD, 0, 0, 0, 0));
    long pid = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) {
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
        int r = mount("t", at("a"), "tmpfs", 0, NULL);
        touch(at("a/cloned-file"));
        _exit(r == 0 && access(at("a/cloned-file"), F_OK) == 0 ? 0 : 2);
    }
    wait_child(pid);
    seen("parent", at("a/cloned-file"));
}

// MS_MOVE: the mount, and what is beneath it, go to the new place.
static void move(void) {
    mkdir(at("m1"), 0755);
    mkdir(at("m2"), 0755);
    show("tmpfs on m1", mount("t", at("m1"), "tmpfs", 0, NULL));
    touch(at("m1/moved-file"));
    mkdir(at("m1/sub"), 0755);
    show("tmpfs on m1/sub", mount("t", at("m1/sub"), "tmpfs", 0, NULL));
    touch(at("m1/sub/deeper"));
    show("move a directory that is no mount", mount(at("m2"), at("m1"), NULL, MS_MOVE, NULL));
    show("move m1 beneath itself", mount(at("m1"), at("m1/sub"), NULL, MS_MOVE, NULL));
    show("move m1 to m2", mount(at("m1"), at("m2"), NULL, MS_MOVE, NULL));
    seen("after the move", at("m1/moved-file"));
    seen("after the move", at("m2/moved-file"));
    seen("after the move", at("m2/sub/deeper"));
    printf("mountinfo lists m1: %d, m2: %d, m2/sub: %d\n", listed("self", "m1", "tmpfs"), listed("self", "m2", "tmpfs"), listed("self", "m2/sub", "tmpfs"));
    show("umount m2/sub", umount2(at("m2/sub"), 0));
    show("umount m2", umount2(at("m2"), 0));
}

// pivot_root(new, new/old) in a new namespace, then the old root let go.
static void pivot_with_put_old(void) {
    mkdir(at("newroot"), 0755);
    pid_t pid = fork();
    if (pid == 0) {
        unshare(CLONE_NEWNS);
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
        show("pivot_root onto a directory that is no mount", syscall(SYS_pivot_root, at("newroot"), at("newroot")));
        show("tmpfs on newroot", mount("t", at("newroot"), "tmpfs", 0, NULL));
        mkdir(at("newroot/old"), 0755);
        touch(at("newroot/marker"));
        show("pivot_root with put_old outside the new root", syscall(SYS_pivot_root, at("newroot"), at("a")));
        show("chdir newroot", chdir(at("newroot")));
        show("pivot_root(., old)", syscall(SYS_pivot_root, ".", "old"));
        char cwd[512];
        printf("cwd: %s\n", getcwd(cwd, sizeof cwd) ? cwd : "(error)");
        seen("pivoted child", "/marker");
        seen("pivoted child", "/old/proc/self");
        printf("mountinfo lists / as tmpfs: %d, /old/proc: %d\n", listed_in("/old/proc", "self", "/", "tmpfs"), listed_in("/old/proc", "self", "/old/proc", "proc"));
        show("umount /old lazily", umount2("/old", MNT_DETACH));
        list("/ after", "/");
        list("/old after", "/old");
        _exit(0);
    }
    wait_child(pid);
}

// runc's way: the new root a bind of itself, `pivot_root . .`, then `umount .`.
static void pivot_dot_dot(void) {
    mkdir(at("rootfs"), 0755);
    touch(at("rootfs/inside"));
    pid_t pid = fork();
    if (pid == 0) {
        unshare(CLONE_NEWNS);
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
        show("bind rootfs on itself", mount(at("rootfs"), at("rootfs"), NULL, MS_BIND | MS_REC, NULL));
        chdir(at("rootfs"));
        show("pivot_root(., .)", syscall(SYS_pivot_root, ".", "."));
        show("umount . lazily", umount2(".", MNT_DETACH));
        show("chdir /", chdir("/"));
        list("/ after", "/");
        _exit(0);
    }
    wait_child(pid);
}

// getcwd of a cwd the root no longer reaches.
static void unreachable_cwd(void) {
    pid_t pid = fork();
    if (pid == 0) {
        chdir("/");
        show("chroot base/a", chroot(at("a")));
        char cwd[512];
        printf("getcwd: %s\n", getcwd(cwd, sizeof cwd) ? cwd : strerrorname_np(errno));
        long n = syscall(SYS_getcwd, cwd, sizeof cwd);
        printf("the getcwd call: %ld %s\n", n, n > 0 ? cwd : "");
        fflush(stdout);
        _exit(0);
    }
    wait_child(pid);
}

// Without CAP_SYS_ADMIN: EPERM.
static void unprivileged(void) {
    pid_t pid = fork();
    if (pid == 0) {
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2] = {{0}};
        syscall(SYS_capset, &h, d);
        show("unshare(CLONE_NEWNS) without CAP_SYS_ADMIN", unshare(CLONE_NEWNS));
        show("pivot_root without CAP_SYS_ADMIN", syscall(SYS_pivot_root, ".", "."));
        _exit(0);
    }
    wait_child(pid);
}

int main(void) {
    if (unshare(CLONE_NEWNS) == 0) mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    if (!mkdtemp(base)) return 1;
    // Everything happens in a tmpfs of its own: what the host's /tmp is (the root
    // file system or a mount) changes pivot_root's errors.
    show("tmpfs on base", mount("t", base, "tmpfs", 0, NULL));
    unshared_child();
    cloned_child();
    move();
    pivot_with_put_old();
    pivot_dot_dot();
    unreachable_cwd();
    unprivileged();
    show("umount base", umount2(base, MNT_DETACH));
    show("rmdir base", rmdir(base));
    return 0;
}
