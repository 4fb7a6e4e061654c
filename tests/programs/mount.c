// mount(2) and umount2(2): tmpfs (options, stacking), proc, cgroup2, bind mounts and read-only
// remounts, propagation changes, the errors, and EPERM without CAP_SYS_ADMIN.
// Natively it first moves to a private mount namespace (the sandbox has none to
// move to, and its mounts stay inside it anyway), so both runs print the same.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/syscall.h>

static void show(const char *what, int r) {
    printf("%s: %d %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
}

static int exists(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void touch(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) close(fd);
}

// Whether /proc/self/mountinfo lists a mount on `dir` of type `type` with
// options starting `opts` and root `root`.
static int listed(const char *dir, const char *type, const char *opts, const char *root) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[2048];
    int found = 0;
    while (f && fgets(line, sizeof line, f)) {
        char r[512], mp[512], o[256], t[64];
        if (sscanf(line, "%*d %*d %*s %511s %511s %255s", r, mp, o) != 3) continue;
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(dash + 3, "%63s", t) != 1) continue;
        if (!strcmp(mp, dir) && !strcmp(t, type) && !strncmp(o, opts, strlen(opts)) && !strcmp(r, root)) found = 1;
    }
    if (f) fclose(f);
    return found;
}

int main(void) {
    if (unshare(CLONE_NEWNS) == 0) mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    char base[] = "/tmp/rvt-mount-XXXXXX";
    if (!mkdtemp(base)) return 1;
    char a[300], b[300], p[300], src[300];
    snprintf(a, sizeof a, "%s/a", base);
    snprintf(b, sizeof b, "%s/b", base);
    snprintf(p, sizeof p, "%s/p", base);
    snprintf(src, sizeof src, "%s/src", base);
    mkdir(a, 0755);
    mkdir(b, 0755);
    mkdir(p, 0755);
    mkdir(src, 0755);
    touch(a, "under");
    touch(src, "file");

    // A tmpfs with options, on a directory that has a file.
    show("mount tmpfs", mount("none", a, "tmpfs", 0, "mode=0710,uid=12,gid=34,size=1m"));
    struct stat st;
    stat(a, &st);
    printf("root mode %o uid %d gid %d\n", st.st_mode & 07777, st.st_uid, st.st_gid);
    struct statfs sf;
    statfs(a, &sf);
    printf("statfs tmpfs magic: %d\n", sf.f_type == 0x01021994);
    printf("the file beneath hidden: %d\n", !exists(a, "under"));
    printf("listed rw tmpfs: %d\n", listed(a, "tmpfs", "rw", "/"));
    touch(a, "top");
    // Another on top of it hides it; unmounting one by one shows each again.
    show("mount tmpfs again", mount("none", a, "tmpfs", 0, NULL));
    printf("the first tmpfs hidden: %d\n", !exists(a, "top"));
    show("umount the second", umount2(a, 0));
    printf("the first tmpfs back: %d\n", exists(a, "top"));
    // A mount beneath makes it busy, unless detached.
    char sub[320];
    snprintf(sub, sizeof sub, "%s/sub", a);
    mkdir(sub, 0755);
    show("mount on a subdirectory", mount("none", sub, "tmpfs", 0, NULL));
    show("umount with a mount beneath", umount2(a, 0));
    show("umount MNT_DETACH", umount2(a, MNT_DETACH));
    printf("the directory beneath back: %d\n", exists(a, "under"));
    printf("the submount gone too: %d\n", !listed(sub, "tmpfs", "", "/"));

    // Read-only: writes are EROFS; a remount makes it writable.
    show("mount read-only", mount("none", a, "tmpfs", MS_RDONLY, NULL));
    printf("listed ro: %d\n", listed(a, "tmpfs", "ro", "/"));
    char f[320];
    snprintf(f, sizeof f, "%s/new", a);
    int fd = open(f, O_CREAT | O_WRONLY, 0644);
    show("create on read-only", fd);
    show("remount rw", mount(NULL, a, NULL, MS_REMOUNT, NULL));
    fd = open(f, O_CREAT | O_WRONLY, 0644);
    printf("create after remount: %d\n", fd >= 0);
    if (fd >= 0) close(fd);
    show("umount", umount2(a, 0));

    // A size limit: writes past it are ENOSPC, statfs counts pages, and
    // truncation and unlinking give them back.
    show("mount a 64k tmpfs", mount("none", a, "tmpfs", 0, "size=64k"));
    statfs(a, &sf);
    printf("blocks %ld free %ld\n", (long)sf.f_blocks, (long)sf.f_bfree);
    snprintf(f, sizeof f, "%s/big", a);
    fd = open(f, O_CREAT | O_WRONLY, 0644);
    char block[4096];
    memset(block, 'x', sizeof block);
    int pages = 0;
    for (int i = 0; i < 20; i++) {
        ssize_t n = write(fd, block, sizeof block);
        if (n != (ssize_t)sizeof block) {
            printf("write of page %d: %zd %s\n", i, n, n < 0 ? strerrorname_np(errno) : "");
            break;
        }
        pages++;
    }
    statfs(a, &sf);
    printf("pages written %d, free %ld\n", pages, (long)sf.f_bfree);
    ftruncate(fd, 8192);
    statfs(a, &sf);
    printf("free after truncating to 2 pages: %ld\n", (long)sf.f_bfree);
    close(fd);
    unlink(f);
    statfs(a, &sf);
    printf("free after unlinking: %ld\n", (long)sf.f_bfree);
    // One write of more than fits is cut short at the limit, then ENOSPC.
    fd = open(f, O_CREAT | O_WRONLY, 0644);
    static char more[81920];
    memset(more, 'y', sizeof more);
    ssize_t cut = write(fd, more, sizeof more);
    printf("a write of 80k into 64k: %zd\n", cut);
    cut = write(fd, more, 4096);
    printf("then a page more: %zd %s\n", cut, cut < 0 ? strerrorname_np(errno) : "");
    close(fd);
    unlink(f);
    fd = open(f, O_CREAT | O_WRONLY, 0644);
    printf("posix_fallocate of 32k: %s\n", strerrorname_np(posix_fallocate(fd, 0, 32768)) ?: "0");
    statfs(a, &sf);
    printf("free after it: %ld\n", (long)sf.f_bfree);
    printf("posix_fallocate of 64k more: %s\n", strerrorname_np(posix_fallocate(fd, 32768, 65536)) ?: "0");
    close(fd);
    unlink(f);
    show("bad size", mount("none", b, "tmpfs", 0, "size=lots"));
    show("umount", umount2(a, 0));

    // Bind mounts: the same files at a second place; a read-only remount of the
    // bind leaves the source writable.
    show("bind", mount(src, b, NULL, MS_BIND, NULL));
    printf("file seen through the bind: %d\n", exists(b, "file"));
    touch(b, "through");
    printf("created through the bind, seen in the source: %d\n", exists(src, "through"));
    show("remount the bind read-only", mount(NULL, b, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL));
    snprintf(f, sizeof f, "%s/ro", b);
    show("create through the read-only bind", open(f, O_CREAT | O_WRONLY, 0644));
    snprintf(f, sizeof f, "%s/rw", src);
    fd = open(f, O_CREAT | O_WRONLY, 0644);
    printf("the source still writable: %d\n", fd >= 0);
    if (fd >= 0) close(fd);
    show("umount the bind", umount2(b, 0));
    printf("bind gone: %d\n", !exists(b, "file"));
    // A recursive bind brings what is mounted beneath the source along.
    char srcsub[320], bsub[320];
    snprintf(srcsub, sizeof srcsub, "%s/sub", src);
    snprintf(bsub, sizeof bsub, "%s/sub", b);
    mkdir(srcsub, 0755);
    show("mount beneath the source", mount("none", srcsub, "tmpfs", 0, NULL));
    touch(srcsub, "deep");
    show("bind again", mount(src, b, NULL, MS_BIND, NULL));
    printf("a plain bind shows the mount beneath: %d\n", exists(bsub, "deep"));
    show("umount the plain bind", umount2(b, 0));
    show("rbind", mount(src, b, NULL, MS_BIND | MS_REC, NULL));
    printf("a recursive bind shows it: %d\n", exists(bsub, "deep"));
    show("umount the rbind", umount2(b, 0));
    show("umount the rbind detached", umount2(b, MNT_DETACH));
    show("umount beneath the source", umount2(srcsub, 0));
    char file_target[320];
    snprintf(file_target, sizeof file_target, "%s/file", src);
    show("bind a directory on a file", mount(a, file_target, NULL, MS_BIND, NULL));

    // proc.
    show("mount proc", mount("proc", p, "proc", 0, NULL));
    char self[320];
    snprintf(self, sizeof self, "%s/self/status", p);
    printf("proc's self/status: %d\n", access(self, R_OK) == 0);
    statfs(p, &sf);
    printf("statfs proc magic: %d\n", sf.f_type == 0x9fa0);
    show("umount proc", umount2(p, 0));

    // cgroup2 (in the sandbox, its own cgroup).
    show("mount cgroup2", mount("cgroup2", p, "cgroup2", 0, NULL));
    printf("cgroup2's cgroup.controllers: %d\n", exists(p, "cgroup.controllers"));
    statfs(p, &sf);
    printf("statfs cgroup2 magic: %d\n", sf.f_type == 0x63677270);
    printf("listed cgroup2: %d\n", listed(p, "cgroup2", "rw", "/"));
    show("umount cgroup2", umount2(p, 0));

    // Propagation: one type (and MS_REC) on a mount point.
    show("make-rprivate /", mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
    show("two propagation types", mount(NULL, "/", NULL, MS_PRIVATE | MS_SHARED, NULL));
    show("propagation off a mount point", mount(NULL, a, NULL, MS_PRIVATE, NULL));

    // Errors.
    show("unknown type", mount("none", a, "nosuchfs", 0, NULL));
    show("missing target", mount("none", "/nonexistent/x", "tmpfs", 0, NULL));
    show("bad tmpfs option", mount("none", a, "tmpfs", 0, "bogus=1"));
    show("umount a directory", umount2(a, 0));
    show("umount bad flags", umount2(a, 0x100));
    show("umount missing", umount2("/nonexistent/x", 0));

    // Without CAP_SYS_ADMIN.
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2] = {{0}};
        syscall(SYS_capset, &h, d);
        show("mount without CAP_SYS_ADMIN", mount("none", a, "tmpfs", 0, NULL));
        show("umount without CAP_SYS_ADMIN", umount2("/proc", 0));
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(c, &status, 0);

    const char *files[] = {"a/under", "src/file", "src/through", "src/rw", "src/sub", "a", "b", "p", "src", ""};
    for (int i = 0; files[i][0]; i++) {
        snprintf(f, sizeof f, "%s/%s", base, files[i]);
        if (unlink(f) != 0 && rmdir(f) != 0) printf("cannot remove %s: %s\n", files[i], strerrorname_np(errno));
    }
    return rmdir(base) != 0;
}
