// /proc/self/map_files: one link per file mapping, named by its exact range
// ("%lx-%lx"), none for anonymous memory. readlink gives the file's name as
// /proc/self/fd would (" (deleted)" once unlinked, a memfd's own name); the
// link's mode is lr- or lrw- by the mapped file's open mode; opening it opens the
// mapped file (same device and inode, same bytes). Following a link takes
// CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE (EPERM without), reading it does not.
// Addresses and inode numbers differ between runs, so what is printed leaves
// them out; the files live in a directory of their own, printed as DIR.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static char dir[64];

// The link of the mapping that starts at `addr` and is `len` bytes long.
static void link_of(const void *addr, size_t len, char *out, size_t size) {
    snprintf(out, size, "/proc/self/map_files/%lx-%lx", (unsigned long)addr, (unsigned long)addr + len);
}

// Whether /proc/self/map_files lists `name`, as a link.
static int listed(const char *name) {
    DIR *d = opendir("/proc/self/map_files");
    struct dirent *e;
    int found = 0;
    while (d && (e = readdir(d)))
        if (!strcmp(e->d_name, name)) found = e->d_type == DT_LNK ? 1 : -1;
    if (d) closedir(d);
    return found;
}

// A file of `pages` pages in the test's directory, each page filled with 'a' + its index.
static int make_file(const char *name, int pages, int flags, char *path, size_t size) {
    snprintf(path, size, "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    for (int i = 0; i < pages; i++) {
        char page[4096];
        memset(page, 'a' + i, sizeof page);
        if (write(fd, page, sizeof page) != (ssize_t)sizeof page) return -1;
    }
    if (flags == O_RDWR) return fd;
    close(fd);
    return open(path, flags);
}

// Checks the map_files entry of a mapping of `len` bytes at `addr`, of the file
// `st` describes (without `st`: a file of `len` bytes) from byte `off` on, where
// the file holds `bytes`.
static void show(const char *what, const void *addr, size_t len, const struct stat *st, off_t off, const char *bytes) {
    char link[128], target[512] = "";
    link_of(addr, len, link, sizeof link);
    int l = listed(strrchr(link, '/') + 1);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n >= 0) target[n] = 0;
    size_t dn = strlen(dir);
    int in_dir = n >= 0 && !strncmp(target, dir, dn);
    struct stat lst;
    int lr = lstat(link, &lst);
    printf("%s: listed %s, readlink %s%s, lstat mode %o size %ld\n", what, l == 1 ? "as a link" : l ? "not as a link" : "no",
           n < 0 ? errname(errno) : in_dir ? "DIR" : "", n < 0 ? "" : in_dir ? target + dn : target, lr ? 0 : lst.st_mode,
           lr ? -1L : (long)lst.st_size);
    if (l != 1) failures++;
    int fd = open(link, O_RDONLY);
    struct stat fst;
    char buf[64] = "";
    size_t want = strlen(bytes);
    int same = fd >= 0 && fstat(fd, &fst) == 0 && (st ? fst.st_ino == st->st_ino && fst.st_dev == st->st_dev : fst.st_size == (off_t)len);
    check("... opening the link opens the mapped file", same);
    check("... whose bytes are the mapping's", fd >= 0 && pread(fd, buf, want, off) == (ssize_t)want && !memcmp(buf, bytes, want) && !memcmp(addr, bytes, want));
    if (fd >= 0) close(fd);
}

// The range of the mapping that contains `addr`, from /proc/self/maps.
static int range_of(const void *addr, unsigned long *lo, unsigned long *hi) {
    FILE *f = fopen("/proc/self/maps", "r");
    char l[1024];
    int found = 0;
    while (f && !found && fgets(l, sizeof l, f))
        found = sscanf(l, "%lx-%lx", lo, hi) == 2 && *lo <= (unsigned long)addr && (unsigned long)addr < *hi;
    if (f) fclose(f);
    return found;
}

static int drop_caps(void) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d)) return -1;
    d[CAP_SYS_ADMIN / 32].effective &= ~(1u << (CAP_SYS_ADMIN % 32));
    d[CAP_CHECKPOINT_RESTORE / 32].effective &= ~(1u << (CAP_CHECKPOINT_RESTORE % 32));
    return syscall(SYS_capset, &h, d);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/map_files.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }

    struct stat dst;
    check("map_files is dr-x------", stat("/proc/self/map_files", &dst) == 0 && dst.st_mode == (S_IFDIR | 0500));
    printf("map_files nlink %ld\n", (long)dst.st_nlink);

    // The executable's first mapping, opened by exec read-only.
    extern const char __ehdr_start[];
    unsigned long lo, hi;
    char exe[512] = "", link[128], target[512] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    check("the executable's first mapping has a range", n > 0 && range_of(__ehdr_start, &lo, &hi));
    link_of((void *)lo, hi - lo, link, sizeof link);
    n = readlink(link, target, sizeof target - 1);
    check("... whose link names /proc/self/exe", n > 0 && (target[n] = 0, !strcmp(target, exe)));
    struct stat lst;
    check("... lr--------", lstat(link, &lst) == 0 && lst.st_mode == (S_IFLNK | 0400));

    char path[128];
    int fd = make_file("file", 3, O_RDWR, path, sizeof path);
    struct stat st;
    fstat(fd, &st);
    char *priv = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 4096);
    show("private, of a file open read-write", priv, 8192, &st, 4096, "bbbb");
    char *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    show("shared, of a file open read-write", shared, 4096, &st, 0, "aaaa");

    char ro_path[128];
    int ro = make_file("readonly", 1, O_RDONLY, ro_path, sizeof ro_path);
    struct stat ro_st;
    fstat(ro, &ro_st);
    char *r = mmap(NULL, 4096, PROT_READ, MAP_SHARED, ro, 0);
    show("shared, of a file open read-only", r, 4096, &ro_st, 0, "aaaa");

    // Unlinked and closed: the mapping keeps the file.
    char gone_path[128];
    int gone = make_file("gone", 1, O_RDWR, gone_path, sizeof gone_path);
    struct stat gone_st;
    fstat(gone, &gone_st);
    char *g = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, gone, 0);
    close(gone);
    unlink(gone_path);
    show("unlinked and closed", g, 4096, &gone_st, 0, "aaaa");

    int mfd = memfd_create("map-files-test", 0);
    ftruncate(mfd, 8192);
    pwrite(mfd, "memfd bytes", 11, 4096);
    struct stat mst;
    fstat(mfd, &mst);
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 4096);
    close(mfd);
    show("memfd, closed", m, 4096, &mst, 4096, "memfd bytes");

    // A System V segment: a file of the kernel's own, open read-write.
    int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    char *seg = id >= 0 ? shmat(id, NULL, 0) : MAP_FAILED;
    if (id >= 0) shmctl(id, IPC_RMID, NULL);
    check("System V segment attached", seg != MAP_FAILED);
    if (seg != MAP_FAILED) {
        memcpy(seg, "segment bytes", 13);
        show("System V segment", seg, 8192, NULL, 0, "segment bytes");
    }

    // Reading through the link gives the file's bytes from its start.
    link_of(priv, 8192, link, sizeof link);
    int via = open(link, O_RDONLY);
    char buf[4] = "";
    check("read through a link starts at the file's start", via >= 0 && pread(via, buf, 4, 0) == 4 && !memcmp(buf, "aaaa", 4));
    check("... and reads on", via >= 0 && pread(via, buf, 4, 8192) == 4 && !memcmp(buf, "cccc", 4));
    if (via >= 0) close(via);

    // Anonymous memory has no file, so no link.
    char *anon = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    link_of(anon, 8192, link, sizeof link);
    check("private anonymous memory is not listed", listed(strrchr(link, '/') + 1) == 0);
    errno = 0;
    check("... nor found (ENOENT)", lstat(link, &lst) == -1 && errno == ENOENT);

    // Names must be a mapping's exact range, in Linux's spelling.
    char name[160];
    snprintf(name, sizeof name, "/proc/self/map_files/%lx-%lx", (unsigned long)priv, (unsigned long)priv + 4096);
    errno = 0;
    check("part of a mapping: ENOENT", lstat(name, &lst) == -1 && errno == ENOENT);
    snprintf(name, sizeof name, "/proc/self/map_files/0%lx-%lx", (unsigned long)priv, (unsigned long)priv + 8192);
    errno = 0;
    check("a leading zero: ENOENT", lstat(name, &lst) == -1 && errno == ENOENT);
    snprintf(name, sizeof name, "/proc/self/map_files/%lx_%lx", (unsigned long)priv, (unsigned long)priv + 8192);
    errno = 0;
    check("no dash: ENOENT", lstat(name, &lst) == -1 && errno == ENOENT);
    errno = 0;
    check("not under task/TID (ENOENT)", access("/proc/thread-self/map_files", F_OK) == -1 && errno == ENOENT);

    // Unmapped: gone from the directory.
    munmap(g, 4096);
    link_of(g, 4096, link, sizeof link);
    check("an unmapped file's link goes", listed(strrchr(link, '/') + 1) == 0);

    // Without CAP_SYS_ADMIN and CAP_CHECKPOINT_RESTORE: listed and readable, not followed.
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        int dropped = drop_caps() == 0;
        check("child dropped CAP_SYS_ADMIN and CAP_CHECKPOINT_RESTORE", dropped);
        link_of(priv, 8192, link, sizeof link);
        check("... still lists the link", listed(strrchr(link, '/') + 1) == 1);
        n = readlink(link, target, sizeof target - 1);
        printf("... readlink: %s\n", n < 0 ? errname(errno) : "ok");
        errno = 0;
        int o = open(link, O_RDONLY);
        printf("... open: %s\n", o < 0 ? errname(errno) : "opened");
        errno = 0;
        int s = stat(link, &lst);
        printf("... stat: %s\n", s < 0 ? errname(errno) : "ok");
        errno = 0;
        s = lstat(link, &lst);
        printf("... lstat: %s\n", s < 0 ? errname(errno) : "ok");
        fflush(stdout);
        _exit(failures != 0);
    }
    int status;
    waitpid(child, &status, 0);
    check("child's checks passed", WIFEXITED(status) && WEXITSTATUS(status) == 0);

    close(fd);
    close(ro);
    unlink(path);
    unlink(ro_path);
    rmdir(dir);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
