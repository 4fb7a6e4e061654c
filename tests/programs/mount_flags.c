// A mount's flags: on a nosuid,nodev,noexec tmpfs nothing runs (execve EACCES,
// mmap PROT_EXEC EPERM, mprotect to PROT_EXEC EACCES) and a device node bound
// there with nodev opens nothing (EACCES); statfs and mountinfo show the flags;
// a bind remount without noexec lets the program run, one with MS_RDONLY makes
// the mount read-only. Natively the program first moves to a private mount
// namespace, so that nothing it mounts reaches the host's tree.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

static char base[] = "/tmp/rvt-mflags-XXXXXX";

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
    fflush(stdout);
}

#include "scratch.h"

// The options mountinfo gives the mount at `dir`.
static void options(const char *dir) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[2048], found[256] = "(none)";
    while (f && fgets(line, sizeof line, f)) {
        char mp[512], o[256];
        if (sscanf(line, "%*d %*d %*s %*s %511s %255s", mp, o) == 2 && !strcmp(mp, dir)) strcpy(found, o);
    }
    if (f) fclose(f);
    printf("options: %s\n", found);
    unsigned long flags = 0;
    struct statvfs sv;
    if (!statvfs(dir, &sv)) flags = sv.f_flag & (ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC);
    printf("statvfs flags: %s%s%s%s\n", flags & ST_RDONLY ? "ro " : "", flags & ST_NOSUID ? "nosuid " : "", flags & ST_NODEV ? "nodev " : "", flags & ST_NOEXEC ? "noexec" : "");
    fflush(stdout);
}

// Runs `path --exit`: the status it exits with, or -errno of execve.
static int run(const char *path) {
    int p[2];
    if (pipe2(p, O_CLOEXEC)) return -1000;
    pid_t pid = fork();
    if (pid == 0) {
        execl(path, path, "--exit", (char *)NULL);
        int e = errno;
        write(p[1], &e, sizeof e);
        _exit(127);
    }
    close(p[1]);
    int e = 0, st;
    ssize_t n = read(p[0], &e, sizeof e);
    close(p[0]);
    waitpid(pid, &st, 0);
    return n == sizeof e ? -e : WEXITSTATUS(st);
}

static void copy_self(const char *to) {
    int in = open("/proc/self/exe", O_RDONLY), out = open(to, O_CREAT | O_WRONLY | O_TRUNC, 0755);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) write(out, buf, n);
    close(in);
    close(out);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--exit")) return 42;
    if (unshare(CLONE_NEWNS) == 0) mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    if (!mkdtemp(base)) return 1;
    show("tmpfs nosuid,nodev,noexec", mount("t", base, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
    options(base);
    copy_self(at("prog"));
    printf("run from the noexec mount: %d\n", run(at("prog")));
    int fd = open(at("prog"), O_RDONLY);
    void *x = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    show("mmap PROT_EXEC", x == MAP_FAILED ? -1 : 0);
    void *r = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    show("mmap PROT_READ", r == MAP_FAILED ? -1 : 0);
    show("mprotect it to PROT_EXEC", mprotect(r, 4096, PROT_READ | PROT_EXEC));
    munmap(r, 4096);
    close(fd);

    close(open(at("null"), O_CREAT | O_WRONLY, 0644));
    show("bind /dev/null", mount("/dev/null", at("null"), NULL, MS_BIND, NULL));
    show("open it", open(at("null"), O_RDONLY) < 0 ? -1 : 0);
    show("remount the bind nodev", mount(NULL, at("null"), NULL, MS_REMOUNT | MS_BIND | MS_NODEV, NULL));
    show("open it nodev", open(at("null"), O_RDONLY) < 0 ? -1 : 0);
    umount2(at("null"), 0);

    show("remount without noexec", mount(NULL, base, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV, NULL));
    options(base);
    printf("run after: %d\n", run(at("prog")));
    show("remount read-only", mount(NULL, base, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL));
    options(base);
    show("create on it", open(at("new"), O_CREAT | O_WRONLY, 0644) < 0 ? -1 : 0);
    umount2(base, MNT_DETACH);
    rmdir(base);
    return 0;
}
