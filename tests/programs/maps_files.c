// /proc/self/maps of file mappings: each line's offset, device and inode (which
// must be what fstat gives for the file) and name, as Linux shows them: a file's
// path, " (deleted)" once unlinked, a memfd's and a System V segment's names, and
// "/dev/zero (deleted)" for shared anonymous memory. Splits, mremap and fork keep
// them, and the executable's header is named by its path. Addresses and inode
// numbers differ between runs, so what is printed leaves them out; the files live
// in a directory of their own, printed as DIR.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include "check.h"

static char dir[64];

struct line {
    int found;
    char perms[5];
    unsigned long off, ino;
    unsigned maj, min;
    int column_ok;
    char name[1024];
};

// The line of /proc/self/maps for the mapping that contains `addr`.
static struct line find(const void *addr) {
    struct line r = {0};
    FILE *f = fopen("/proc/self/maps", "r");
    char l[1024];
    while (f && fgets(l, sizeof l, f)) {
        unsigned long lo, hi;
        int at = 0;
        if (sscanf(l, "%lx-%lx %4s %lx %x:%x %lu %n", &lo, &hi, r.perms, &r.off, &r.maj, &r.min, &r.ino, &at) < 7) continue;
        if ((unsigned long)addr < lo || (unsigned long)addr >= hi) continue;
        l[strcspn(l, "\n")] = 0;
        r.found = 1;
        // Linux pads the line to column 74 before a name; a shorter fixed part
        // ends at the name, one space after the inode.
        r.column_ok = strlen(l) > 73 && l[72] == ' ' && l[73] != ' ' && at <= 73;
        snprintf(r.name, sizeof r.name, "%s", strlen(l) > 73 ? l + 73 : "");
        break;
    }
    if (f) fclose(f);
    return r;
}

// One mapping's line as printed: permissions, offset, name (with this run's
// directory as DIR), the padding, and whether device and inode are `st`'s, or
// without `st` whether an inode is given (with `ino`: a System V segment's is its
// id, which may be 0).
static void show_as(const char *what, const void *addr, const struct stat *st, int ino) {
    struct line l = find(addr);
    if (!l.found) {
        printf("%s: no line\n", what);
        failures++;
        return;
    }
    size_t n = strlen(dir);
    const char *name = strncmp(l.name, dir, n) ? l.name : l.name + n;
    printf("%s: %s %08lx %s%s, name at column 74: %s", what, l.perms, l.off, strncmp(l.name, dir, n) ? "" : "DIR", name, l.column_ok ? "yes" : "no");
    if (st) printf(", dev+inode match fstat: %s", makedev(l.maj, l.min) == st->st_dev && l.ino == st->st_ino ? "yes" : "no");
    else if (ino) printf(", inode given: %s", l.ino != 0 ? "yes" : "no");
    printf("\n");
}

static void show(const char *what, const void *addr, const struct stat *st) {
    show_as(what, addr, st, 1);
}

// A file of `pages` pages in the test's directory, each page filled with its index.
static int make_file(const char *name, int pages, char *path, size_t size) {
    snprintf(path, size, "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    for (int i = 0; i < pages; i++) {
        char page[4096];
        memset(page, 'a' + i, sizeof page);
        if (write(fd, page, sizeof page) != (ssize_t)sizeof page) return -1;
    }
    return fd;
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/maps_files.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    struct stat st;

    // The executable: the line with its ELF header names it, at offset 0.
    extern const char __ehdr_start[];
    char exe[512] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    struct line l = find(__ehdr_start);
    check("the executable's first mapping names /proc/self/exe", n > 0 && l.found && !strcmp(l.name, exe));
    check("... from offset 0", l.found && l.off == 0);
    struct stat exe_st;
    check("... with its device and inode", stat(exe, &exe_st) == 0 && makedev(l.maj, l.min) == exe_st.st_dev && l.ino == exe_st.st_ino);

    char path[128];
    int fd = make_file("file", 4, path, sizeof path);
    fstat(fd, &st);
    char *priv = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 4096);
    show("private at a page", priv, &st);
    check("private mapping reads the file", priv != MAP_FAILED && priv[0] == 'b');
    char *shared = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 8192);
    show("shared at two pages", shared, &st);

    // Split by mprotect: the pieces keep the file, at their own offsets.
    char *whole = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    mprotect(whole + 4096, 4096, PROT_READ | PROT_WRITE);
    show("split, first piece", whole, &st);
    show("split, middle piece", whole + 4096, &st);
    show("split, last piece", whole + 8192, &st);

    // Moved by mremap, grown in the move.
    char *moved = mremap(priv, 4096, 8192, MREMAP_MAYMOVE);
    show("mremap'd", moved, &st);

    // A fork's child sees the same lines.
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        show("in a forked child", shared, &st);
        fflush(stdout);
        _exit(0);
    }
    waitpid(child, NULL, 0);

    // Unlinked: " (deleted)", the same device and inode.
    char gone_path[128];
    int gone = make_file("gone", 1, gone_path, sizeof gone_path);
    struct stat gone_st;
    fstat(gone, &gone_st);
    char *g = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, gone, 0);
    close(gone);
    unlink(gone_path);
    show("unlinked and closed", g, &gone_st);

    // A memfd.
    int mfd = memfd_create("maps-test", 0);
    ftruncate(mfd, 8192);
    struct stat mst;
    fstat(mfd, &mst);
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 4096);
    show("memfd", m, &mst);

    // Shared anonymous memory and a System V segment: files of the kernel's own.
    char *anon = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    show("shared anonymous", anon, NULL);
    char *priv_anon = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    show("private anonymous", priv_anon, NULL);
    int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    char *seg = id >= 0 ? shmat(id, NULL, 0) : MAP_FAILED;
    if (seg != MAP_FAILED) show_as("System V segment", seg, NULL, 0);
    if (id >= 0) shmctl(id, IPC_RMID, NULL);

    close(fd);
    unlink(path);
    rmdir(dir);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
