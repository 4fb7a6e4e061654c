/* Changes files in a directory given as the argument (a bind mount in the
 * sandbox) and prints what it sees: creation, writes, appends, truncation,
 * modes, times, directories, unlink, rename, symlinks, hard links, listings,
 * shared mappings, fsync and extended attributes. Output is deterministic: no inode numbers, and
 * times only compared with each other. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static char dir[4096];

static const char *at(const char *name) {
    static char buf[2][8192];
    static int which;
    which ^= 1;
    snprintf(buf[which], sizeof buf[which], "%s/%s", dir, name);
    return buf[which];
}

static void result(const char *what, int r) {
    if (r < 0)
        printf("%s: %s\n", what, strerror(errno));
    else
        printf("%s: ok\n", what);
}

/* The whole file, printed. */
static void show(const char *name) {
    char buf[256];
    int fd = open(at(name), O_RDONLY);
    if (fd < 0) {
        printf("read %s: %s\n", name, strerror(errno));
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) {
        printf("read %s: %s\n", name, strerror(errno));
        return;
    }
    buf[n] = 0;
    printf("%s = \"%s\" (%zd bytes)\n", name, buf, n);
}

static void show_stat(const char *name) {
    struct stat st;
    if (lstat(at(name), &st) < 0) {
        printf("stat %s: %s\n", name, strerror(errno));
        return;
    }
    printf("stat %s: mode %o size %lld nlink %lu\n", name, st.st_mode, (long long)st.st_size,
           S_ISDIR(st.st_mode) ? 0ul : (unsigned long)st.st_nlink);
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list(const char *name) {
    DIR *d = opendir(at(name));
    if (!d) {
        printf("opendir %s: %s\n", name, strerror(errno));
        return;
    }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    printf("ls %s:", name);
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
}

static void put(const char *name, const char *text) {
    int fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        printf("put %s: %s\n", name, strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* A get's outcome: the value's length and the value, or the error. */
static void show_xattr(const char *what, ssize_t n, const char *v) {
    if (n < 0)
        printf("%s: %s\n", what, strerror(errno));
    else
        printf("%s: %zd \"%.*s\"\n", what, n, (int)n, v);
}

/* The host file's names, as listxattr gives them (in the host's order). */
static void show_names(const char *what, ssize_t n, const char *names) {
    if (n < 0) {
        printf("%s: %s\n", what, strerror(errno));
        return;
    }
    printf("%s: %zd bytes:", what, n);
    for (const char *p = names; p < names + n; p += strlen(p) + 1) printf(" %s", p);
    printf("\n");
}

/* User attributes of host files: set, read, listed and removed, with Linux's
 * errors for sizes and flags; a symlink keeps none; big values as the host
 * file system takes them. Some are left for the host directory's comparison. */
static void xattrs(void) {
    char v[64], names[256];
    int fd = open(at("xa"), O_RDWR | O_CREAT, 0644);
    close(fd);
    mkdir(at("xd"), 0755);
    symlink("xa", at("xl"));
    result("setxattr user.a", setxattr(at("xa"), "user.a", "alpha", 5, 0));
    result("setxattr user.a XATTR_CREATE again", setxattr(at("xa"), "user.a", "x", 1, XATTR_CREATE));
    result("setxattr user.b XATTR_REPLACE missing", setxattr(at("xa"), "user.b", "x", 1, XATTR_REPLACE));
    result("setxattr user.a XATTR_REPLACE", setxattr(at("xa"), "user.a", "alphabet", 8, XATTR_REPLACE));
    result("setxattr user.empty", setxattr(at("xa"), "user.empty", "", 0, XATTR_CREATE));
    result("setxattr user.b", setxattr(at("xa"), "user.b", "beta", 4, XATTR_CREATE));
    printf("getxattr user.a size: %zd\n", getxattr(at("xa"), "user.a", NULL, 0));
    show_xattr("getxattr user.a into 4 bytes", getxattr(at("xa"), "user.a", v, 4), v);
    show_xattr("getxattr user.a", getxattr(at("xa"), "user.a", v, sizeof v), v);
    show_xattr("getxattr user.empty", getxattr(at("xa"), "user.empty", v, sizeof v), v);
    show_xattr("getxattr user.none", getxattr(at("xa"), "user.none", v, sizeof v), v);
    show_xattr("getxattr through the symlink", getxattr(at("xl"), "user.b", v, sizeof v), v);
    printf("listxattr size: %zd\n", listxattr(at("xa"), NULL, 0));
    show_names("listxattr into 4 bytes", listxattr(at("xa"), names, 4), names);
    show_names("listxattr", listxattr(at("xa"), names, sizeof names), names);
    result("removexattr user.b", removexattr(at("xa"), "user.b"));
    result("removexattr user.b again", removexattr(at("xa"), "user.b"));
    show_names("listxattr after removing", listxattr(at("xa"), names, sizeof names), names);
    /* By descriptor, on a file opened read-only. */
    fd = open(at("xa"), O_RDONLY);
    result("fsetxattr user.f", fsetxattr(fd, "user.f", "eff", 3, 0));
    show_xattr("fgetxattr user.f", fgetxattr(fd, "user.f", v, sizeof v), v);
    result("fremovexattr user.f", fremovexattr(fd, "user.f"));
    close(fd);
    /* A directory's, and a symlink's (Linux keeps user attributes off them). */
    result("setxattr on a directory", setxattr(at("xd"), "user.d", "dir", 3, 0));
    show_xattr("getxattr on a directory", getxattr(at("xd"), "user.d", v, sizeof v), v);
    result("lsetxattr on a symlink", lsetxattr(at("xl"), "user.l", "x", 1, 0));
    show_xattr("lgetxattr on a symlink", lgetxattr(at("xl"), "user.b", v, sizeof v), v);
    show_names("llistxattr of a symlink", llistxattr(at("xl"), names, sizeof names), names);
    result("setxattr other.x", setxattr(at("xa"), "other.x", "x", 1, 0));
    result("setxattr on the mount's directory", setxattr(dir, "user.top", "t", 1, 0));
    show_xattr("getxattr user.kept of a.txt", getxattr(at("a.txt"), "user.kept", v, sizeof v), v);
    /* The largest value Linux takes, and one more byte. */
    static char big[65537];
    memset(big, 'v', sizeof big);
    result("setxattr 64 KiB", setxattr(at("xd"), "user.big", big, 65536, 0));
    result("setxattr 64 KiB + 1", setxattr(at("xd"), "user.big", big, 65537, 0));
    printf("getxattr of 64 KiB size: %zd\n", getxattr(at("xd"), "user.big", NULL, 0));
    show_names("listxattr of the directory", listxattr(at("xd"), names, sizeof names), names);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: bind_rw DIR\n");
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    umask(022);

    /* Create, write, read back through the same descriptor and a new one. */
    int fd = open(at("a.txt"), O_RDWR | O_CREAT | O_EXCL, 0640);
    result("create a.txt", fd);
    printf("write: %zd\n", write(fd, "hello world\n", 12));
    char buf[64] = {0};
    printf("pread: %zd \"%.11s\"\n", pread(fd, buf, sizeof buf, 0), buf);
    struct stat st;
    fstat(fd, &st);
    printf("fstat size %lld mode %o\n", (long long)st.st_size, st.st_mode);
    close(fd);
    show("a.txt");
    show_stat("a.txt");

    /* A read-only file created for writing: the creating open may write. */
    fd = open(at("ro.txt"), O_WRONLY | O_CREAT | O_EXCL, 0444);
    result("create ro.txt 0444", fd);
    printf("write ro.txt: %zd\n", write(fd, "ro", 2));
    close(fd);
    show_stat("ro.txt");

    /* O_EXCL on an existing file. */
    result("O_EXCL a.txt", open(at("a.txt"), O_RDWR | O_CREAT | O_EXCL, 0644));

    /* O_APPEND. */
    fd = open(at("a.txt"), O_WRONLY | O_APPEND);
    lseek(fd, 0, SEEK_SET);
    printf("append: %zd\n", write(fd, "more\n", 5));
    close(fd);
    show("a.txt");

    /* truncate and ftruncate, shrinking and growing. */
    result("truncate 5", truncate(at("a.txt"), 5));
    show("a.txt");
    fd = open(at("a.txt"), O_RDWR);
    result("ftruncate 8", ftruncate(fd, 8));
    fstat(fd, &st);
    printf("fstat after ftruncate: %lld\n", (long long)st.st_size);
    close(fd);
    show_stat("a.txt");
    fd = open(at("a.txt"), O_WRONLY | O_TRUNC);
    close(fd);
    show_stat("a.txt");
    put("a.txt", "again");

    /* chmod. */
    result("chmod 600", chmod(at("a.txt"), 0600));
    show_stat("a.txt");
    fd = open(at("a.txt"), O_RDONLY);
    result("fchmod 751", fchmod(fd, 0751));
    close(fd);
    show_stat("a.txt");

    /* utimensat: set, read back, and a write moves mtime on. */
    struct timespec times[2] = {{1000000000, 500}, {1200000000, 700}};
    result("utimensat", utimensat(AT_FDCWD, at("a.txt"), times, 0));
    stat(at("a.txt"), &st);
    printf("times: atime %lld.%ld mtime %lld.%ld\n", (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
           (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    fd = open(at("a.txt"), O_WRONLY);
    write(fd, "x", 1);
    close(fd);
    struct stat st2;
    stat(at("a.txt"), &st2);
    printf("mtime moved on after a write: %s\n", st2.st_mtim.tv_sec > st.st_mtim.tv_sec ? "yes" : "no");

    /* Directories. */
    result("mkdir d", mkdir(at("d"), 0755));
    result("mkdir d again", mkdir(at("d"), 0755));
    put("d/inner", "inner");
    result("rmdir d (not empty)", rmdir(at("d")));
    result("mkdir d/sub", mkdir(at("d/sub"), 0700));
    show_stat("d/sub");
    list("d");
    result("rmdir d/sub", rmdir(at("d/sub")));
    list("d");
    result("rmdir missing", rmdir(at("missing")));

    /* unlink. */
    put("gone", "gone");
    result("unlink gone", unlink(at("gone")));
    show("gone");
    result("unlink gone again", unlink(at("gone")));
    result("unlink a directory", unlink(at("d")));

    /* rename: a new name, over an existing file, a directory. */
    put("b.txt", "bee");
    put("c.txt", "sea");
    result("rename b.txt -> b2.txt", rename(at("b.txt"), at("b2.txt")));
    show("b.txt");
    show("b2.txt");
    result("rename b2.txt over c.txt", rename(at("b2.txt"), at("c.txt")));
    show("c.txt");
    result("rename d -> e", rename(at("d"), at("e")));
    show("e/inner");
    result("rename e/inner -> moved", rename(at("e/inner"), at("moved")));
    show("moved");
    list("e");
    result("rename a file over a directory", rename(at("moved"), at("e")));
    result("rename a directory into itself", rename(at("e"), at("e/x")));

    /* symlink and readlink. */
    result("symlink", symlink("c.txt", at("link")));
    char target[64] = {0};
    printf("readlink: %zd \"%s\"\n", readlink(at("link"), target, sizeof target - 1), target);
    show("link");
    result("symlink over existing", symlink("x", at("link")));

    /* Hard links. */
    result("link c.txt -> hard", link(at("c.txt"), at("hard")));
    show_stat("c.txt");
    show_stat("hard");
    fd = open(at("hard"), O_WRONLY | O_APPEND);
    write(fd, "+", 1);
    close(fd);
    show("c.txt");
    show_stat("c.txt");
    result("unlink hard", unlink(at("hard")));
    show_stat("c.txt");

    /* A shared mapping's stores, read back with read(2) while mapped and after. */
    put("map", "0123456789abcdef");
    fd = open(at("map"), O_RDWR);
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        printf("mmap: %s\n", strerror(errno));
    } else {
        memcpy(m + 4, "WXYZ", 4);
        memset(buf, 0, sizeof buf);
        printf("pread while mapped: %zd \"%s\"\n", pread(fd, buf, sizeof buf - 1, 0), buf);
        /* write(2) shows in the mapping. */
        pwrite(fd, "!!", 2, 0);
        printf("mapping after pwrite: \"%.16s\"\n", m);
        result("msync", msync(m, 4096, MS_SYNC));
        memcpy(m + 10, "mm", 2);
        munmap(m, 4096);
    }
    result("fsync", fsync(fd));
    result("fdatasync", fdatasync(fd));
    close(fd);
    show("map");

    /* A write through a second descriptor, seen through the first one's fstat. */
    int f1 = open(at("two"), O_RDWR | O_CREAT, 0644);
    int f2 = open(at("two"), O_WRONLY);
    write(f2, "12345", 5);
    fstat(f1, &st);
    printf("fstat through the other descriptor: %lld\n", (long long)st.st_size);
    close(f1);
    close(f2);

    /* fallocate: space the host holds (its blocks counted), with and without
     * KEEP_SIZE, and a hole punched under a shared mapping that has a store in it. */
    fd = open(at("alloc"), O_RDWR | O_CREAT, 0644);
    result("fallocate 64 KiB", fallocate(fd, 0, 0, 65536));
    fstat(fd, &st);
    printf("after fallocate: size %lld, at least 128 blocks %d\n", (long long)st.st_size, st.st_blocks >= 128);
    result("fallocate KEEP_SIZE", fallocate(fd, FALLOC_FL_KEEP_SIZE, 65536, 65536));
    fstat(fd, &st);
    printf("after KEEP_SIZE: size %lld, at least 256 blocks %d\n", (long long)st.st_size, st.st_blocks >= 256);
    close(fd);
    fd = open(at("holes"), O_RDWR | O_CREAT, 0644);
    memset(buf, 'x', sizeof buf);
    for (int i = 0; i < 4 * 4096; i += sizeof buf) pwrite(fd, buf, sizeof buf, i);
    result("punch the second page", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096));
    result("punch without KEEP_SIZE", fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096));
    printf("the hole starts at %lld, data again at %lld\n", (long long)lseek(fd, 0, SEEK_HOLE), (long long)lseek(fd, 4096, SEEK_DATA));
    m = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED) m[2 * 4096 + 10] = 'y';
    result("punch the third page, stored into through a mapping", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2 * 4096, 4096));
    fstat(fd, &st);
    memset(buf, 1, sizeof buf);
    pread(fd, buf, 16, 2 * 4096 + 8);
    printf("after the punches: size %lld, read %d %d %d, mapping %d %d %d %d\n", (long long)st.st_size, buf[0], buf[2], buf[15],
           m == MAP_FAILED ? -1 : m[0], m == MAP_FAILED ? -1 : m[4096], m == MAP_FAILED ? -1 : m[2 * 4096 + 10], m == MAP_FAILED ? -1 : m[3 * 4096]);
    if (m != MAP_FAILED) munmap(m, 4 * 4096);
    close(fd);

    xattrs();
    list(".");
    return 0;
}
