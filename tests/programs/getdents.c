// A directory listed with the old getdents (struct linux_dirent: d_type in the
// record's last byte) and with getdents64, in small buffers so that the listing
// takes several calls: the same names and types either way, and the errors.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct linux_dirent {
    unsigned long d_ino;
    unsigned long d_off;
    unsigned short d_reclen;
    char d_name[];
};

static const char *dir = "/tmp/rvisor-getdents-test";
static char names[64][300];
static int n;

static void show(const char *what, long r) {
    int e = errno;
    printf("%s: %ld %s\n", what, r, r < 0 ? strerror(e) : "");
}

static int cmp(const void *a, const void *b) { return strcmp(a, b); }

static void list(int old, int bufsize) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    char buf[4096];
    n = 0;
    int calls = 0;
    for (;;) {
        long got = syscall(old ? SYS_getdents : SYS_getdents64, fd, buf, bufsize);
        if (got < 0) {
            printf("error %s\n", strerror(errno));
            break;
        }
        if (got == 0)
            break;
        calls++;
        for (long off = 0; off < got;) {
            const char *name;
            unsigned char type;
            unsigned short reclen;
            if (old) {
                struct linux_dirent *d = (struct linux_dirent *)(buf + off);
                reclen = d->d_reclen;
                name = d->d_name;
                type = buf[off + reclen - 1];
            } else {
                struct dirent64 *d = (struct dirent64 *)(buf + off);
                reclen = d->d_reclen;
                name = d->d_name;
                type = d->d_type;
            }
            if (reclen % 8 != 0)
                printf("record length %u is not 8-aligned\n", reclen);
            snprintf(names[n++], sizeof names[0], "%s type %s", name, type == DT_DIR ? "dir" : type == DT_REG ? "file" : type == DT_LNK ? "link" : type == DT_FIFO ? "fifo" : "other");
            off += reclen;
        }
    }
    qsort(names, n, sizeof names[0], cmp);
    printf("%s, %d-byte buffer: %d entries in %s\n", old ? "getdents" : "getdents64", bufsize, n, calls > 1 ? "several calls" : "one call");
    for (int i = 0; i < n; i++)
        printf("  %s\n", names[i]);
    close(fd);
}

int main(void) {
    char p[512], longname[256];
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/file", dir);
    close(open(p, O_CREAT | O_WRONLY, 0644));
    snprintf(p, sizeof p, "%s/subdir", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/link", dir);
    symlink("file", p);
    snprintf(p, sizeof p, "%s/fifo", dir);
    mkfifo(p, 0644);
    memset(longname, 'x', 200);
    longname[200] = 0;
    snprintf(p, sizeof p, "%s/%s", dir, longname);
    close(open(p, O_CREAT | O_WRONLY, 0644));
    for (int i = 0; i < 20; i++) {
        snprintf(p, sizeof p, "%s/f%02d", dir, i);
        close(open(p, O_CREAT | O_WRONLY, 0644));
    }

    list(1, 4096);
    list(1, 256);
    list(0, 256);

    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    char small[16];
    show("getdents into 16 bytes", syscall(SYS_getdents, fd, small, sizeof small));
    close(fd);
    snprintf(p, sizeof p, "%s/file", dir);
    fd = open(p, O_RDONLY);
    show("getdents on a file", syscall(SYS_getdents, fd, small, sizeof small));
    close(fd);
    show("getdents on a closed fd", syscall(SYS_getdents, fd, small, sizeof small));

    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0)
            rmdir(p);
    }
    closedir(d);
    rmdir(dir);
    return 0;
}
