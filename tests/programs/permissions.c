// File permission checks (run as root): a tree of files and directories with
// various modes and owners, then children that drop privileges (uid 1000 with
// supplementary group 2000, uid 1000 with euid 0, root without the DAC
// capabilities) try each kind of operation. Each prints "operation: ok" or
// "operation: ERRNO"; the sandbox must print what Linux prints.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "child.h"

static void report(const char *what, int r) {
    printf("%s: %s\n", what, r < 0 ? errname(errno) : "ok");
}

static int open_close(const char *path, int flags) {
    int fd = open(path, flags, 0644);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

static int open_dir(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -1;
    closedir(d);
    return 0;
}

static int stat_ok(const char *path) {
    struct stat st;
    return stat(path, &st);
}

// execve in a grandchild: "ok" when the program ran (it exits 0 at once).
static int try_exec(const char *path) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return -1;
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char *argv[] = {(char *)path, "exec-ok", NULL};
        execve(path, argv, (char *[]){NULL});
        int e = errno;
        if (write(p[1], &e, sizeof e) < 0) _exit(3);
        _exit(2);
    }
    close(p[1]);
    int e = 0;
    ssize_t n = read(p[0], &e, sizeof e);
    close(p[0]);
    int st;
    waitpid(c, &st, 0);
    if (n == sizeof e) {
        errno = e;
        return -1;
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : (errno = EIO, -1);
}

static void print_owner(const char *what, const char *path) {
    struct stat st;
    if (lstat(path, &st) < 0) {
        printf("%s: %s\n", what, errname(errno));
        return;
    }
    printf("%s: uid %u gid %u mode %04o\n", what, st.st_uid, st.st_gid, st.st_mode & 07777);
}

static void mkfile(const char *path, mode_t mode, uid_t uid, gid_t gid) {
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd < 0 || write(fd, "data\n", 5) != 5) {
        perror(path);
        exit(1);
    }
    close(fd);
    if (chown(path, uid, gid) < 0 || chmod(path, mode) < 0) {
        perror(path);
        exit(1);
    }
}

static void mkdir_as(const char *path, mode_t mode, uid_t uid, gid_t gid) {
    if (mkdir(path, 0700) < 0 || chown(path, uid, gid) < 0 || chmod(path, mode) < 0) {
        perror(path);
        exit(1);
    }
}

static void copy_self(const char *to, mode_t mode) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        perror("readlink /proc/self/exe");
        exit(1);
    }
    self[n] = 0;
    int in = open(self, O_RDONLY), out = open(to, O_CREAT | O_WRONLY | O_TRUNC, 0700);
    char buf[65536];
    ssize_t r;
    while (in >= 0 && out >= 0 && (r = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, r) != r) break;
    close(in);
    close(out);
    if (chmod(to, mode) < 0) {
        perror(to);
        exit(1);
    }
}

static void drop_to(uid_t uid, gid_t gid) {
    gid_t groups[] = {2000};
    if (setgroups(1, groups) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
        perror("dropping privileges");
        exit(1);
    }
}

static void drop_caps(unsigned long long caps) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) < 0) {
        perror("capget");
        exit(1);
    }
    for (int i = 0; i < 2; i++) {
        d[i].effective &= ~(unsigned)(caps >> (32 * i));
        d[i].permitted &= ~(unsigned)(caps >> (32 * i));
    }
    if (syscall(SYS_capset, &h, d) < 0) {
        perror("capset");
        exit(1);
    }
}

static const struct timespec explicit_times[2] = {{1000000, 0}, {2000000, 0}};
static const struct timespec now_times[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};

// What uid 1000 (gid 1000, supplementary group 2000) may do.
static void as_user(void) {
    drop_to(1000, 1000);
    gid_t g[4] = {0};
    int n = getgroups(4, g);
    printf("getgroups: %d (%u)\n", n, g[0]);

    report("open secret O_RDONLY", open_close("secret", O_RDONLY));
    report("open public O_RDONLY", open_close("public", O_RDONLY));
    report("open public O_WRONLY", open_close("public", O_WRONLY));
    report("open public O_RDWR", open_close("public", O_RDWR));
    report("open public O_RDONLY|O_TRUNC", open_close("public", O_RDONLY | O_TRUNC));
    report("open public O_RDONLY|O_NOATIME", open_close("public", O_RDONLY | O_NOATIME));
    report("open world O_RDWR", open_close("world", O_RDWR));
    report("open grp O_RDONLY (supplementary group)", open_close("grp", O_RDONLY));
    report("open grp O_WRONLY", open_close("grp", O_WRONLY));
    report("open othergrp O_RDONLY (group bits deny, other bits allow)", open_close("othergrp", O_RDONLY));
    report("open ownernone O_RDONLY (owner bits deny)", open_close("ownernone", O_RDONLY));

    report("create in rodir", open_close("rodir/new", O_CREAT | O_WRONLY));
    report("open rodir/f O_RDWR", open_close("rodir/f", O_RDWR));
    report("open rodir/f O_CREAT|O_RDWR (exists)", open_close("rodir/f", O_CREAT | O_RDWR));
    report("mkdir in rodir", mkdir("rodir/d", 0755));
    report("mkdir rodir/sub (exists)", mkdir("rodir/sub", 0755));
    report("mknod fifo in rodir", mknod("rodir/fifo", S_IFIFO | 0644, 0));
    report("symlink in rodir", symlink("target", "rodir/link"));
    report("link world into rodir", link("world", "rodir/l"));
    report("link public (unreadable to us) into openw", link("public", "openw/l"));
    report("link world into openw", link("world", "openw/l"));
    report("unlink rodir/f", unlink("rodir/f"));
    report("rmdir rodir/sub", rmdir("rodir/sub"));
    report("rmdir openw/sub", rmdir("openw/sub"));
    report("rename rodir/f to openw/x", rename("rodir/f", "openw/x"));
    report("rename openw/theirs to rodir/x", rename("openw/theirs", "rodir/x"));
    report("rename openw/rootdir to openw/rootdir2 (same parent)", rename("openw/rootdir", "openw/rootdir2"));
    report("rename openw/rootdir2 to sticky/rootdir (new parent)", rename("openw/rootdir2", "sticky/rootdir"));
    report("unlink openw/theirs (not sticky)", unlink("openw/theirs"));

    report("stat private/f", stat_ok("private/f"));
    report("open private/f", open_close("private/f", O_RDONLY));
    report("opendir private", open_dir("private"));
    report("access private/f F_OK", access("private/f", F_OK));
    report("create in private", open_close("private/new", O_CREAT | O_WRONLY));
    report("stat xonly/f", stat_ok("xonly/f"));
    report("open xonly/f", open_close("xonly/f", O_RDONLY));
    report("opendir xonly", open_dir("xonly"));
    report("opendir rodir", open_dir("rodir"));
    report("chdir private", chdir("private"));
    report("chdir noread (search only)", chdir("xonly"));
    report("chdir back", chdir(".."));

    report("unlink sticky/mine", unlink("sticky/mine"));
    report("unlink sticky/theirs", unlink("sticky/theirs"));
    report("rename sticky/theirs", rename("sticky/theirs", "sticky/moved"));
    report("rmdir sticky/theirdir", rmdir("sticky/theirdir"));
    report("create in sticky", open_close("sticky/new", O_CREAT | O_WRONLY));
    report("rename ours over sticky/roots", rename("sticky/new", "sticky/roots"));
    report("unlink stickyown/theirs (directory is ours)", unlink("stickyown/theirs"));

    report("execve noexec", try_exec("./noexec"));
    report("execve exec", try_exec("./exec"));
    report("execve exec700", try_exec("./exec700"));
    report("execve xonlyexec (0711)", try_exec("./xonlyexec"));
    report("execve a directory", try_exec("./rodir"));
    report("execve /dev/null", try_exec("/dev/null"));
    report("execve private/exec", try_exec("./private/exec"));

    report("chmod public", chmod("public", 0666));
    report("chmod owned", chmod("owned", 0640));
    report("chmod owned with setgid, group not ours", chmod("ownedother", 02755));
    print_owner("ownedother after chmod", "ownedother");
    report("chown owned to 1001", chown("owned", 1001, -1));
    report("chown owned to 1000 (unchanged)", chown("owned", 1000, -1));
    report("chown owned group 2000 (supplementary)", chown("owned", -1, 2000));
    report("chown owned group 3000", chown("owned", -1, 3000));
    report("chown public group 1000", chown("public", -1, 1000));
    report("chown setuid group 2000", chown("setuid", -1, 2000));
    print_owner("setuid after chown", "setuid");
    report("chown setgid file (-1, -1)", chown("setgid", -1, -1));
    print_owner("setgid after chown", "setgid");

    report("utimensat public explicit", utimensat(AT_FDCWD, "public", explicit_times, 0));
    report("utimensat public now", utimensat(AT_FDCWD, "public", NULL, 0));
    report("utimensat public UTIME_NOW", utimensat(AT_FDCWD, "public", now_times, 0));
    report("utimensat world now", utimensat(AT_FDCWD, "world", NULL, 0));
    report("utimensat world explicit", utimensat(AT_FDCWD, "world", explicit_times, 0));
    report("utimensat owned explicit", utimensat(AT_FDCWD, "owned", explicit_times, 0));
    report("utimes public now", utimes("public", NULL));

    report("truncate public", truncate("public", 0));
    report("truncate world", truncate("world", 0));
    report("truncate owned", truncate("owned", 0));

    report("access secret R_OK", access("secret", R_OK));
    report("access public R_OK", access("public", R_OK));
    report("access public W_OK", access("public", W_OK));
    report("access grp R_OK", access("grp", R_OK));
    report("access noexec X_OK", access("noexec", X_OK));
    report("access exec X_OK", access("exec", X_OK));
    report("access xonly R_OK|X_OK", access("xonly", R_OK | X_OK));

    report("create in openw", open_close("openw/made", O_CREAT | O_WRONLY));
    print_owner("openw/made", "openw/made");
    report("reopen openw/made O_RDWR", open_close("openw/made", O_RDWR));
    report("mkdir openw/madedir", mkdir("openw/madedir", 0755));
    print_owner("openw/madedir", "openw/madedir");
    report("symlink openw/madelink", symlink("made", "openw/madelink"));
    print_owner("openw/madelink", "openw/madelink");
    report("create in sgiddir", open_close("sgiddir/f", O_CREAT | O_WRONLY));
    print_owner("sgiddir/f", "sgiddir/f");
    report("mkdir in sgiddir", mkdir("sgiddir/d", 0755));
    print_owner("sgiddir/d", "sgiddir/d");
}

// Real uid 1000, effective uid 0: access() judges by the real ids (and no
// capabilities), AT_EACCESS by the effective ones.
static void as_real_user(void) {
    if (setresuid(1000, 0, 0) < 0) {
        perror("setresuid");
        exit(1);
    }
    report("access secret R_OK (real uid 1000)", access("secret", R_OK));
    report("faccessat secret R_OK AT_EACCESS", faccessat(AT_FDCWD, "secret", R_OK, AT_EACCESS));
    report("access private/f F_OK (real uid 1000)", access("private/f", F_OK));
    report("open secret O_RDONLY (euid 0)", open_close("secret", O_RDONLY));
}

// Root, as in a container whose runtime gave it few capabilities. Each run
// changes its own copies of the files (`sfx`).
static void as_root_without(unsigned long long caps, const char *tag, const char *sfx) {
    drop_caps(caps);
    char what[160], u644[32], theirs[32];
    snprintf(u644, sizeof u644, "u644%s", sfx);
    snprintf(theirs, sizeof theirs, "sticky/theirs%s", sfx);
#define R(label, expr) (snprintf(what, sizeof what, "%s: %s", tag, label), report(what, (expr)))
    R("open u600 O_RDONLY", open_close("u600", O_RDONLY));
    R("open u644 O_RDONLY", open_close(u644, O_RDONLY));
    R("open u644 O_WRONLY", open_close(u644, O_WRONLY));
    R("open secret O_RDWR (root's own)", open_close("secret", O_RDWR));
    R("stat private2/f", stat_ok("private2/f"));
    R("opendir private2", open_dir("private2"));
    R("access u600 R_OK", access("u600", R_OK));
    R("access u600 R_OK AT_EACCESS", faccessat(AT_FDCWD, "u600", R_OK, AT_EACCESS));
    R("create in udir", open_close("udir/new", O_CREAT | O_WRONLY));
    R("unlink theirs in sticky", unlink(theirs));
    R("utimensat u600 explicit", utimensat(AT_FDCWD, "u600", explicit_times, 0));
    R("chmod u644", chmod(u644, 0640));
    R("chown u644 to 0", chown(u644, 0, 0));
    R("execve exec700u (0700, uid 1000)", try_exec("./exec700u"));
    R("execve exec", try_exec("./exec"));
#undef R
}

// Root with every capability: what a container's root with CAP_DAC_* may do.
static void as_root(void) {
    report("root: open u600 O_RDWR", open_close("u600", O_RDWR));
    report("root: stat private2/f", stat_ok("private2/f"));
    report("root: execve noexec (no x bit at all)", try_exec("./noexec"));
    report("root: execve exec700u", try_exec("./exec700u"));
    report("root: access noexec X_OK", access("noexec", X_OK));
    report("root: access exec700u X_OK", access("exec700u", X_OK));
    report("root: access u600 R_OK|W_OK", access("u600", R_OK | W_OK));
    report("root: access rodir X_OK", access("rodir", X_OK));
    report("root: access /dev/null X_OK", access("/dev/null", X_OK));
}

static void in_child(void (*f)(void)) {
    int st = run_child(f);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) printf("child failed: %#x\n", st);
}

static void without_dac(void) {
    as_root_without(1ULL << CAP_DAC_OVERRIDE | 1ULL << CAP_DAC_READ_SEARCH, "root without CAP_DAC_*", "a");
}

static void without_dac_fowner(void) {
    as_root_without(1ULL << CAP_DAC_OVERRIDE | 1ULL << CAP_DAC_READ_SEARCH | 1ULL << CAP_FOWNER | 1ULL << CAP_CHOWN,
                    "root without CAP_DAC_*, CAP_FOWNER, CAP_CHOWN", "b");
}

static int rm(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "exec-ok")) return 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (geteuid() != 0) {
        printf("must run as root\n");
        return 1;
    }
    umask(022);
    char base[] = "/tmp/permsXXXXXX";
    if (!mkdtemp(base) || chmod(base, 0755) < 0 || chdir(base) < 0) {
        perror(base);
        return 1;
    }
    mkfile("secret", 0600, 0, 0);
    mkfile("public", 0644, 0, 0);
    mkfile("world", 0666, 0, 0);
    mkfile("grp", 0640, 0, 2000);
    mkfile("othergrp", 0604, 0, 2000);
    mkfile("ownernone", 0044, 1000, 1000);
    mkfile("owned", 0644, 1000, 1000);
    mkfile("ownedother", 0644, 1000, 3000);
    mkfile("setuid", 04755, 1000, 1000);
    mkfile("setgid", 02755, 1000, 1000);
    mkfile("u600", 0600, 1000, 1000);
    mkfile("u644a", 0644, 1000, 1000);
    mkfile("u644b", 0644, 1000, 1000);
    copy_self("noexec", 0644);
    copy_self("exec", 0755);
    copy_self("exec700", 0700);
    copy_self("xonlyexec", 0711);
    copy_self("exec700u", 0700);
    if (chown("exec700u", 1000, 1000) < 0) return 1;

    mkdir_as("rodir", 0755, 0, 0);
    mkfile("rodir/f", 0666, 0, 0);
    mkdir_as("rodir/sub", 0755, 0, 0);
    mkdir_as("private", 0700, 0, 0);
    mkfile("private/f", 0644, 0, 0);
    copy_self("private/exec", 0755);
    mkdir_as("private2", 0700, 1000, 1000);
    mkfile("private2/f", 0644, 1000, 1000);
    mkdir_as("xonly", 0711, 0, 0);
    mkfile("xonly/f", 0644, 0, 0);
    mkdir_as("udir", 0755, 1000, 1000);
    mkdir_as("openw", 0777, 0, 0);
    mkfile("openw/theirs", 0644, 1001, 1001);
    mkdir_as("openw/sub", 0755, 0, 0);
    mkdir_as("openw/rootdir", 0755, 0, 0);
    mkdir_as("sticky", 01777, 0, 0);
    mkfile("sticky/mine", 0644, 1000, 1000);
    mkfile("sticky/theirs", 0666, 1001, 1001);
    mkfile("sticky/theirsa", 0644, 1001, 1001);
    mkfile("sticky/theirsb", 0644, 1001, 1001);
    mkfile("sticky/roots", 0666, 0, 0);
    mkdir_as("sticky/theirdir", 0777, 1001, 1001);
    mkdir_as("stickyown", 01777, 1000, 1000);
    mkfile("stickyown/theirs", 0644, 1001, 1001);
    mkdir_as("sgiddir", 02777, 0, 2000);

    in_child(as_user);
    in_child(as_real_user);
    in_child(without_dac);
    in_child(without_dac_fowner);
    as_root();

    check("the tree is removed", chdir("/") == 0 && nftw(base, rm, 16, FTW_DEPTH | FTW_PHYS) == 0 && access(base, F_OK) < 0);
    return failures != 0;
}
