// The new mount API: fsopen, fsconfig, fsmount, move_mount, open_tree,
// mount_setattr and fspick; detached trees (files opened in them before they
// are attached), the fs context's message log, the errors, and EPERM without
// CAP_SYS_ADMIN. Natively it first moves to a private mount namespace, as
// mount.c does, so both runs print the same and the host's tree is untouched.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <sys/prctl.h>

#ifndef ST_NOSYMFOLLOW
#define ST_NOSYMFOLLOW 0x2000
#endif

static void show(const char *what, int r) {
    printf("%s: %d %s\n", what, r < 0 ? -1 : 0, r < 0 ? strerrorname_np(errno) : "");
}

static char base[] = "/tmp/rvt-mntapi-XXXXXX";

#include "scratch.h"

static int exists(const char *rel) {
    return access(at(rel), F_OK) == 0;
}

// Creates `rel` with `text`: 0, or -1 with errno.
static int put(int dirfd, const char *path, const char *text) {
    int fd = openat(dirfd, path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) return -1;
    int r = write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -1;
    close(fd);
    return r;
}

// What `path` (from `dirfd`) holds, or the error.
static void cat(const char *what, int dirfd, const char *path) {
    char buf[64] = {0};
    int fd = openat(dirfd, path, O_RDONLY);
    if (fd < 0) {
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    printf("%s: [%.*s]\n", what, n > 0 ? (int)n : 0, buf);
}

// The options /proc/self/mountinfo shows for the mount on `rel`.
static const char *options_of(const char *rel) {
    static char found[256];
    char line[2048], mp[512], o[256];
    FILE *f = fopen("/proc/self/mountinfo", "r");
    strcpy(found, "(not listed)");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "%*d %*d %*s %*s %511s %255s", mp, o) == 2 && !strcmp(mp, at(rel))) strcpy(found, o);
    if (f) fclose(f);
    return found;
}

// The first super option (ro or rw) of the mount at `rel` (after the " - TYPE SOURCE" of its line).
static const char *super_options_of(const char *rel) {
    static char found[256];
    char line[2048], mp[512];
    FILE *f = fopen("/proc/self/mountinfo", "r");
    strcpy(found, "(not listed)");
    while (f && fgets(line, sizeof line, f)) {
        char *dash = strstr(line, " - ");
        if (sscanf(line, "%*d %*d %*s %*s %511s", mp) == 1 && !strcmp(mp, at(rel)) && dash) sscanf(dash, " - %*s %*s %255[^,\n]", found);
    }
    if (f) fclose(f);
    return found;
}

// The next message of an fs context, or the error.
static void message(const char *what, int fs) {
    char buf[256];
    ssize_t n = read(fs, buf, sizeof buf - 1);
    if (n < 0) printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else printf("%s: [%.*s]\n", what, (int)n, buf);
}

static int setattr(const char *path, unsigned flags, unsigned long long set, unsigned long long clr, unsigned long long prop, size_t size) {
    struct mount_attr a = {.attr_set = set, .attr_clr = clr, .propagation = prop};
    return mount_setattr(AT_FDCWD, path, flags, &a, size);
}

int main(void) {
    if (unshare(CLONE_NEWNS) == 0) mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    if (!mkdtemp(base)) return 1;
    // A scratch tmpfs holds every directory used, so one lazy unmount cleans up.
    if (mount("none", base, "tmpfs", 0, NULL) != 0) return 1;
    const char *dirs[] = {"a", "b", "c", "src", "src/sub", "plain", ""};
    for (int i = 0; dirs[i][0]; i++) mkdir(at(dirs[i]), 0755);
    put(AT_FDCWD, at("src/file"), "source");
    put(AT_FDCWD, at("plain/x"), "x");

    // fsopen, fsconfig and the context's message log.
    int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
    show("fsopen tmpfs", fs);
    message("read with no message", fs);
    {
        char l[64], t[64] = {0};
        snprintf(l, sizeof l, "/proc/self/fd/%d", fs);
        printf("its link: %s, access mode %o\n", readlink(l, t, sizeof t - 1) > 0 ? t : strerrorname_np(errno), fcntl(fs, F_GETFL) & O_ACCMODE);
        show("write(2) on it", write(fs, "x", 1));
    }
    show("set size", fsconfig(fs, FSCONFIG_SET_STRING, "size", "1m", 0));
    show("set mode", fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0700", 0));
    show("set source", fsconfig(fs, FSCONFIG_SET_STRING, "source", "apitmp", 0));
    show("unknown parameter", fsconfig(fs, FSCONFIG_SET_STRING, "bogus", "1", 0));
    message("its message", fs);
    message("read again", fs);
    show("bad size", fsconfig(fs, FSCONFIG_SET_STRING, "size", "lots", 0));
    char small[4];
    show("message into 4 bytes", read(fs, small, sizeof small));
    message("that message still there", fs);
    show("set flag with a value", fsconfig(fs, FSCONFIG_SET_FLAG, "ro", "x", 0));
    show("set string without a value", fsconfig(fs, FSCONFIG_SET_STRING, "size", NULL, 0));
    show("create with a key", fsconfig(fs, FSCONFIG_CMD_CREATE, "size", NULL, 0));
    show("unknown command", fsconfig(fs, 99, NULL, NULL, 0));
    show("negative fd", fsconfig(-1, FSCONFIG_CMD_CREATE, NULL, NULL, 0));
    show("bad fd", fsconfig(999, FSCONFIG_CMD_CREATE, NULL, NULL, 0));
    int dirfd = open(base, O_RDONLY | O_DIRECTORY);
    show("not a context", fsconfig(dirfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0));
    show("fsmount before create", fsmount(fs, FSMOUNT_CLOEXEC, 0));
    show("reconfigure before create", fsconfig(fs, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0));
    show("create", fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0));
    show("create again", fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0));
    show("set after create", fsconfig(fs, FSCONFIG_SET_STRING, "size", "2m", 0));
    show("fsmount bad flags", fsmount(fs, 2, 0));
    show("fsmount bad attributes", fsmount(fs, FSMOUNT_CLOEXEC, 0x40000000));
    show("fsmount two atime modes", fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOATIME | MOUNT_ATTR_STRICTATIME));
    show("fsmount a directory fd", fsmount(dirfd, FSMOUNT_CLOEXEC, 0));
    int mfd = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
    show("fsmount", mfd);
    show("fsmount again", fsmount(fs, FSMOUNT_CLOEXEC, 0));
    close(fs);

    // The detached tree: files made in it through its fd before it is attached.
    struct stat st;
    fstat(mfd, &st);
    printf("detached root: dir %d mode %o\n", S_ISDIR(st.st_mode), st.st_mode & 07777);
    struct statfs sf;
    fstatfs(mfd, &sf);
    printf("detached statfs tmpfs: %d blocks %ld\n", sf.f_type == 0x01021994, (long)sf.f_blocks);
    show("create in the detached tree", put(mfd, "pre", "made detached"));
    cat("read it back detached", mfd, "pre");
    char link[64], target[256] = {0};
    snprintf(link, sizeof link, "/proc/self/fd/%d", mfd);
    printf("its /proc/self/fd link: %s\n", readlink(link, target, sizeof target - 1) > 0 ? target : strerrorname_np(errno));
    show("read(2) on it", read(mfd, target, 1));
    printf("its flags: O_PATH %d\n", (fcntl(mfd, F_GETFL) & O_PATH) != 0);
    {
        struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY}, rw = {.attr_clr = MOUNT_ATTR_RDONLY};
        mkdirat(mfd, "sub", 0755);
        show("read-only detached", mount_setattr(mfd, "", AT_EMPTY_PATH, &ro, sizeof ro));
        show("create in it", put(mfd, "ro", "x"));
        show("mount_setattr a directory in it", mount_setattr(mfd, "sub", 0, &ro, sizeof ro));
        show("read-write again", mount_setattr(mfd, "", AT_EMPTY_PATH, &rw, sizeof rw));
        show("create in it", put(mfd, "rw", "x"));
    }
    printf("not yet on a: %d\n", !exists("a/pre"));
    show("move_mount without F_EMPTY_PATH", move_mount(mfd, "", AT_FDCWD, at("a"), 0));
    show("move_mount bad flags", move_mount(mfd, "", AT_FDCWD, at("a"), 0x8000));
    show("move_mount onto a file", move_mount(mfd, "", AT_FDCWD, at("plain/x"), MOVE_MOUNT_F_EMPTY_PATH));
    show("move_mount the detached tree onto a", move_mount(mfd, "", AT_FDCWD, at("a"), MOVE_MOUNT_F_EMPTY_PATH));
    cat("a/pre", AT_FDCWD, at("a/pre"));
    show("write a/hello", put(AT_FDCWD, at("a/hello"), "hello"));
    cat("read a/hello", AT_FDCWD, at("a/hello"));
    cat("a/hello through the fd", mfd, "hello");
    statfs(at("a"), &sf);
    printf("a is a 1m tmpfs: %d %ld\n", sf.f_type == 0x01021994, (long)sf.f_blocks);
    struct statvfs sv;
    statvfs(at("a"), &sv);
    printf("a is nodev: %d, nosuid: %d\n", (sv.f_flag & ST_NODEV) != 0, (sv.f_flag & ST_NOSUID) != 0);

    // move_mount of an attached mount, by fd and by path.
    show("move it on to b", move_mount(mfd, "", AT_FDCWD, at("b"), MOVE_MOUNT_F_EMPTY_PATH));
    printf("a empty again: %d, b has hello: %d\n", !exists("a/hello"), exists("b/hello"));
    show("move b back by path", move_mount(AT_FDCWD, at("b"), AT_FDCWD, at("a"), 0));
    printf("a has hello: %d\n", exists("a/hello"));
    show("move a directory that is no mount", move_mount(AT_FDCWD, at("plain"), AT_FDCWD, at("b"), 0));
    mkdir(at("a/inner"), 0755);
    show("move a beneath itself", move_mount(AT_FDCWD, at("a"), AT_FDCWD, at("a/inner"), 0));
    show("move_mount bad fd", move_mount(999, "", AT_FDCWD, at("b"), MOVE_MOUNT_F_EMPTY_PATH));
    show("move_mount missing source", move_mount(AT_FDCWD, at("nothing"), AT_FDCWD, at("b"), 0));

    // open_tree: a recursive clone of src (with the tmpfs on src/sub), read
    // before it is attached, then attached on c: a bind mount.
    show("tmpfs on src/sub", mount("none", at("src/sub"), "tmpfs", 0, NULL));
    put(AT_FDCWD, at("src/sub/deep"), "deep");
    show("open_tree bad flags", open_tree(AT_FDCWD, at("src"), 0x40000000));
    show("open_tree AT_RECURSIVE without clone", open_tree(AT_FDCWD, at("src"), AT_RECURSIVE));
    int tfd = open_tree(AT_FDCWD, at("src"), OPEN_TREE_CLONE | AT_RECURSIVE | OPEN_TREE_CLOEXEC);
    show("open_tree clone recursive", tfd);
    printf("its close-on-exec: %d\n", (fcntl(tfd, F_GETFD) & FD_CLOEXEC) != 0);
    cat("src/file in the clone", tfd, "file");
    cat("src/sub/deep in the clone", tfd, "sub/deep");
    int t2 = open_tree(tfd, "", OPEN_TREE_CLONE | AT_RECURSIVE | AT_EMPTY_PATH);
    show("clone the clone", t2);
    cat("sub/deep in the clone of the clone", t2, "sub/deep");
    close(t2);
    t2 = open_tree(tfd, "sub", OPEN_TREE_CLONE);
    show("clone a submount of the clone", t2);
    cat("deep in it", t2, "deep");
    close(t2);
    show("move_mount a submount of it", move_mount(tfd, "sub", AT_FDCWD, at("c"), 0));
    show("attach it on c", move_mount(tfd, "", AT_FDCWD, at("c"), MOVE_MOUNT_F_EMPTY_PATH));
    cat("c/file", AT_FDCWD, at("c/file"));
    cat("c/sub/deep", AT_FDCWD, at("c/sub/deep"));
    put(AT_FDCWD, at("c/new"), "both");
    cat("c/new seen in src", AT_FDCWD, at("src/new"));
    close(tfd);
    printf("still on c after closing: %d\n", exists("c/file"));
    int plain_clone = open_tree(AT_FDCWD, at("src"), OPEN_TREE_CLONE);
    cat("a plain clone has no submount", plain_clone, "sub/deep");
    snprintf(link, sizeof link, "/proc/self/fd/%d", plain_clone);
    show("attach it through /proc/self/fd", move_mount(AT_FDCWD, link, AT_FDCWD, at("b"), MOVE_MOUNT_F_SYMLINKS));
    cat("b/file", AT_FDCWD, at("b/file"));
    close(plain_clone);
    show("umount b", umount2(at("b"), 0));
    int dropped = open_tree(AT_FDCWD, at("src"), OPEN_TREE_CLONE | AT_RECURSIVE);
    show("a clone closed unattached", close(dropped));
    int pfd = open_tree(AT_FDCWD, at("src"), OPEN_TREE_CLOEXEC);
    show("open_tree without clone", pfd);
    show("read(2) on it", read(pfd, target, 1));
    cat("src/file through it", pfd, "file");
    show("move_mount it (no mount root)", move_mount(pfd, "", AT_FDCWD, at("b"), MOVE_MOUNT_F_EMPTY_PATH));
    close(pfd);
    int lfd = open_tree(AT_FDCWD, at("plain/x"), OPEN_TREE_CLONE);
    show("open_tree clone of a file", lfd);
    show("attach it on a directory", move_mount(lfd, "", AT_FDCWD, at("b"), MOVE_MOUNT_F_EMPTY_PATH));
    show("attach it on a file", move_mount(lfd, "", AT_FDCWD, at("src/file"), MOVE_MOUNT_F_EMPTY_PATH));
    cat("src/file now", AT_FDCWD, at("src/file"));
    close(lfd);
    show("umount it", umount2(at("src/file"), 0));

    // mount_setattr.
    show("set read-only", setattr(at("a"), 0, MOUNT_ATTR_RDONLY, 0, 0, sizeof(struct mount_attr)));
    show("write on it", put(AT_FDCWD, at("a/ro"), "x"));
    show("clear read-only", setattr(at("a"), 0, 0, MOUNT_ATTR_RDONLY, 0, sizeof(struct mount_attr)));
    show("write after", put(AT_FDCWD, at("a/ro"), "x"));
    show("bad attribute", setattr(at("a"), 0, 0x40000000, 0, 0, sizeof(struct mount_attr)));
    show("bad flags", setattr(at("a"), 0x1, MOUNT_ATTR_RDONLY, 0, 0, sizeof(struct mount_attr)));
    show("size too small", setattr(at("a"), 0, MOUNT_ATTR_RDONLY, 0, 0, 16));
    show("size past a page", setattr(at("a"), 0, MOUNT_ATTR_RDONLY, 0, 0, 8192));
    show("nothing to do, not a mount", setattr(at("plain"), 0, 0, 0, 0, sizeof(struct mount_attr)));
    show("not a mount root", setattr(at("plain"), 0, MOUNT_ATTR_RDONLY, 0, 0, sizeof(struct mount_attr)));
    show("two propagation types", setattr(at("a"), 0, 0, 0, MS_PRIVATE | MS_SHARED, sizeof(struct mount_attr)));
    show("bad propagation", setattr(at("a"), 0, 0, 0, MS_RDONLY, sizeof(struct mount_attr)));
    show("private", setattr(at("a"), 0, 0, 0, MS_PRIVATE, sizeof(struct mount_attr)));
    show("noatime without clearing atime", setattr(at("a"), 0, MOUNT_ATTR_NOATIME, 0, 0, sizeof(struct mount_attr)));
    show("noatime", setattr(at("a"), 0, MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME, 0, sizeof(struct mount_attr)));
    show("part of atime cleared", setattr(at("a"), 0, 0, MOUNT_ATTR_NOATIME, 0, sizeof(struct mount_attr)));
    show("nosuid,nodiratime", setattr(at("a"), 0, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODIRATIME, 0, 0, sizeof(struct mount_attr)));
    statvfs(at("a"), &sv);
    printf("a is nodev: %d, nosuid: %d\n", (sv.f_flag & ST_NODEV) != 0, (sv.f_flag & ST_NOSUID) != 0);
    symlink("hello", at("a/link"));
    show("nosymfollow", setattr(at("a"), 0, MOUNT_ATTR_NOSYMFOLLOW, 0, 0, sizeof(struct mount_attr)));
    statvfs(at("a"), &sv);
    printf("statvfs nosymfollow: %d\n", (sv.f_flag & ST_NOSYMFOLLOW) != 0);
    printf("a's options: %s, statvfs noatime %d\n", options_of("a"), (sv.f_flag & ST_NOATIME) != 0);
    cat("follow a/link", AT_FDCWD, at("a/link"));
    char linked[64] = {0};
    printf("readlink a/link: %s\n", readlink(at("a/link"), linked, sizeof linked - 1) > 0 ? linked : strerrorname_np(errno));
    show("clear nosymfollow", setattr(at("a"), 0, 0, MOUNT_ATTR_NOSYMFOLLOW, 0, sizeof(struct mount_attr)));
    cat("follow a/link after", AT_FDCWD, at("a/link"));
    show("missing path", setattr(at("nothing"), 0, MOUNT_ATTR_RDONLY, 0, 0, sizeof(struct mount_attr)));
    {
        struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = 999};
        show("idmap bad fd", mount_setattr(AT_FDCWD, at("a"), 0, &a, sizeof a));
        a.userns_fd = dirfd;
        show("idmap not a user namespace", mount_setattr(AT_FDCWD, at("a"), 0, &a, sizeof a));
        int uns = open("/proc/self/ns/user", O_RDONLY);
        a.userns_fd = uns;
        show("idmap the initial user namespace", mount_setattr(AT_FDCWD, at("a"), 0, &a, sizeof a));
        a.attr_set = 0;
        a.attr_clr = MOUNT_ATTR_IDMAP;
        show("clear idmap", mount_setattr(AT_FDCWD, at("a"), 0, &a, sizeof a));
        close(uns);
    }
    // A larger struct with zeros past ours is fine; with a nonzero byte, E2BIG.
    {
        char big[64] = {0};
        struct mount_attr a = {.attr_set = MOUNT_ATTR_NOEXEC};
        memcpy(big, &a, sizeof a);
        show("larger struct, zeros", mount_setattr(AT_FDCWD, at("a"), 0, (struct mount_attr *)big, sizeof big));
        big[40] = 1;
        show("larger struct, a nonzero byte", mount_setattr(AT_FDCWD, at("a"), 0, (struct mount_attr *)big, sizeof big));
    }
    show("recursive read-only on c", setattr(at("c"), AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0, 0, sizeof(struct mount_attr)));
    show("write on c/sub", put(AT_FDCWD, at("c/sub/x"), "x"));
    show("write on src/sub", put(AT_FDCWD, at("src/sub/x"), "x"));
    show("clear it on c only", setattr(at("c"), 0, 0, MOUNT_ATTR_RDONLY, 0, sizeof(struct mount_attr)));
    show("write on c", put(AT_FDCWD, at("c/y"), "y"));
    show("write on c/sub still", put(AT_FDCWD, at("c/sub/y"), "y"));
    show("by fd with AT_EMPTY_PATH", ({
        int cfd = open(at("c/sub"), O_PATH);
        struct mount_attr a = {.attr_clr = MOUNT_ATTR_RDONLY};
        int r = mount_setattr(cfd, "", AT_EMPTY_PATH, &a, sizeof a);
        close(cfd);
        r;
    }));
    show("write on c/sub after", put(AT_FDCWD, at("c/sub/y"), "y"));

    // fspick and a reconfigure: read-only, then read-write again.
    show("fspick bad flags", fspick(AT_FDCWD, at("a"), 0x100));
    show("fspick no mount root", fspick(AT_FDCWD, at("plain"), 0));
    int pk = fspick(AT_FDCWD, at("a"), FSPICK_CLOEXEC);
    show("fspick a", pk);
    show("create on it", fsconfig(pk, FSCONFIG_CMD_CREATE, NULL, NULL, 0));
    show("set ro", fsconfig(pk, FSCONFIG_SET_FLAG, "ro", NULL, 0));
    show("reconfigure", fsconfig(pk, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0));
    show("write after the read-only reconfigure", put(AT_FDCWD, at("a/rc"), "x"));
    // "ro" is the superblock's: the mount's own flag stays read-write.
    printf("a's options: %s, super options %s\n", options_of("a"), super_options_of("a"));
    statfs(at("a"), &sf);
    printf("a's statfs read-only: %d\n", (sf.f_flags & ST_RDONLY) != 0);
    show("set rw", fsconfig(pk, FSCONFIG_SET_FLAG, "rw", NULL, 0));
    show("reconfigure again", fsconfig(pk, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0));
    printf("a's options: %s, super options %s\n", options_of("a"), super_options_of("a"));
    show("write after", put(AT_FDCWD, at("a/rc"), "x"));
    show("unknown parameter", fsconfig(pk, FSCONFIG_SET_FLAG, "bogus", NULL, 0));
    message("its message", pk);
    show("fsmount a picked context", fsmount(pk, FSMOUNT_CLOEXEC, 0));
    // A reconfigure resizes a tmpfs (one made without a size too: its size was
    // half the RAM), not below what its files hold; so does mount(2)'s remount.
    show("set size 2m", fsconfig(pk, FSCONFIG_SET_STRING, "size", "2m", 0));
    show("reconfigure the size", fsconfig(pk, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0));
    statfs(at("a"), &sf);
    printf("a's blocks now: %ld\n", (long)sf.f_blocks);
    show("set size 4k", fsconfig(pk, FSCONFIG_SET_STRING, "size", "4k", 0));
    show("reconfigure too small", fsconfig(pk, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0));
    message("its message", pk);
    close(pk);
    pk = fspick(AT_FDCWD, base, FSPICK_CLOEXEC);
    show("size for the scratch tmpfs", fsconfig(pk, FSCONFIG_SET_STRING, "size", "1m", 0));
    show("reconfigure it", fsconfig(pk, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0));
    statfs(base, &sf);
    printf("the scratch tmpfs's blocks now: %ld\n", (long)sf.f_blocks);
    close(pk);
    show("remount a with size=3m", mount(NULL, at("a"), NULL, MS_REMOUNT | MS_NODEV, "size=3m"));
    statfs(at("a"), &sf);
    printf("a's blocks now: %ld\n", (long)sf.f_blocks);
    printf("a's options after the remount: %s\n", options_of("a"));
    show("strictatime", setattr(at("a"), 0, MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME, 0, sizeof(struct mount_attr)));
    printf("a's options: %s\n", options_of("a"));
    show("remount a relatime", mount(NULL, at("a"), NULL, MS_REMOUNT | MS_NODEV | MS_RELATIME, NULL));
    printf("a's options: %s\n", options_of("a"));
    show("remount a with a bad option", mount(NULL, at("a"), NULL, MS_REMOUNT | MS_NODEV, "bogus"));

    // proc through the new API.
    int pr = fsopen("proc", FSOPEN_CLOEXEC);
    show("fsopen proc", pr);
    show("create proc", fsconfig(pr, FSCONFIG_CMD_CREATE, NULL, NULL, 0));
    int prm = fsmount(pr, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV);
    show("fsmount proc", prm);
    show("attach it on b", move_mount(prm, "", AT_FDCWD, at("b"), MOVE_MOUNT_F_EMPTY_PATH));
    printf("b/self/status: %d\n", exists("b/self/status"));
    close(pr);
    close(prm);
    show("umount b", umount2(at("b"), 0));

    // In a less privileged user namespace, the mounts copied are locked: their
    // flags stay, their place too, and nothing beneath them is uncovered.
    printf("c's options: %s\n", options_of("c"));
    show("a read-only before", setattr(at("a"), 0, MOUNT_ATTR_RDONLY, 0, 0, sizeof(struct mount_attr)));
    fflush(stdout);
    pid_t u = fork();
    if (u == 0) {
        char map[32];
        snprintf(map, sizeof map, "0 %d 1", (int)getuid());
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) _exit(1);
        int f = open("/proc/self/uid_map", O_WRONLY);
        if (f < 0 || write(f, map, strlen(map)) < 0) _exit(2);
        close(f);
        show("in a user namespace, clear read-only", setattr(at("a"), 0, 0, MOUNT_ATTR_RDONLY, 0, sizeof(struct mount_attr)));
        show("set nosuid", setattr(at("a"), 0, MOUNT_ATTR_NOSUID, 0, 0, sizeof(struct mount_attr)));
        int k = fspick(AT_FDCWD, at("a"), FSPICK_CLOEXEC);
        show("fspick", k);
        fsconfig(k, FSCONFIG_SET_FLAG, "rw", NULL, 0);
        show("reconfigure read-write", fsconfig(k, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0));
        show("clone c without its submount", open_tree(AT_FDCWD, at("c"), OPEN_TREE_CLONE));
        int r = open_tree(AT_FDCWD, at("c"), OPEN_TREE_CLONE | AT_RECURSIVE);
        show("clone c with it", r);
        show("attach the clone on b", move_mount(r, "", AT_FDCWD, at("b"), MOVE_MOUNT_F_EMPTY_PATH));
        cat("b/sub/deep", AT_FDCWD, at("b/sub/deep"));
        show("move the locked c", move_mount(AT_FDCWD, at("c"), AT_FDCWD, at("b"), 0));
        fflush(stdout);
        _exit(0);
    }
    int ustatus;
    waitpid(u, &ustatus, 0);
    printf("user namespace child: %d\n", WIFEXITED(ustatus) ? WEXITSTATUS(ustatus) : -1);
    show("a read-write again", setattr(at("a"), 0, 0, MOUNT_ATTR_RDONLY, 0, sizeof(struct mount_attr)));

    // fsopen's errors.
    show("fsopen unknown type", fsopen("nosuchfs", 0));
    show("fsopen bad flags", fsopen("tmpfs", 2));

    // A Landlock domain forbids changing the tree (move_mount, a reconfigure),
    // as for mount(2); Linux has no hook for mount_setattr or a clone.
    fflush(stdout);
    pid_t l = fork();
    if (l == 0) {
        struct landlock_ruleset_attr ra = {.handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE};
        int rs = syscall(SYS_landlock_create_ruleset, &ra, sizeof ra, 0);
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if (syscall(SYS_landlock_restrict_self, rs, 0) != 0) _exit(1);
        show("landlocked mount_setattr", setattr(at("a"), 0, MOUNT_ATTR_NOSUID, 0, 0, sizeof(struct mount_attr)));
        setattr(at("a"), 0, 0, MOUNT_ATTR_NOSUID, 0, sizeof(struct mount_attr));
        int k = fspick(AT_FDCWD, at("a"), FSPICK_CLOEXEC);
        fsconfig(k, FSCONFIG_SET_FLAG, "ro", NULL, 0);
        show("landlocked reconfigure", fsconfig(k, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0));
        int f = fsopen("tmpfs", FSOPEN_CLOEXEC);
        show("landlocked create", fsconfig(f, FSCONFIG_CMD_CREATE, NULL, NULL, 0));
        int m = fsmount(f, FSMOUNT_CLOEXEC, 0);
        show("landlocked fsmount", m);
        show("landlocked move_mount", move_mount(m, "", AT_FDCWD, at("b"), MOVE_MOUNT_F_EMPTY_PATH));
        show("landlocked open_tree clone", open_tree(AT_FDCWD, at("src"), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
        fflush(stdout);
        _exit(0);
    }
    waitpid(l, &ustatus, 0);
    printf("landlocked child: %d\n", WIFEXITED(ustatus) ? WEXITSTATUS(ustatus) : -1);

    // Without CAP_SYS_ADMIN.
    int ctx = fsopen("tmpfs", FSOPEN_CLOEXEC);
    fsconfig(ctx, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2] = {{0}};
        syscall(SYS_capset, &h, d);
        show("fsopen without CAP_SYS_ADMIN", fsopen("tmpfs", 0));
        show("fsmount without CAP_SYS_ADMIN", fsmount(ctx, 0, 0));
        show("fspick without CAP_SYS_ADMIN", fspick(AT_FDCWD, at("a"), 0));
        show("open_tree clone without CAP_SYS_ADMIN", open_tree(AT_FDCWD, at("src"), OPEN_TREE_CLONE));
        show("move_mount without CAP_SYS_ADMIN", move_mount(AT_FDCWD, at("a"), AT_FDCWD, at("b"), 0));
        show("mount_setattr without CAP_SYS_ADMIN", setattr(at("a"), 0, MOUNT_ATTR_RDONLY, 0, 0, sizeof(struct mount_attr)));
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(c, &status, 0);
    close(ctx);

    close(mfd);
    close(dirfd);
    if (umount2(base, MNT_DETACH) != 0) printf("cannot unmount the scratch tmpfs: %s\n", strerrorname_np(errno));
    return rmdir(base) != 0;
}
