/* statfs and fstatfs of a host directory given as the argument (a bind mount
 * in the sandbox) and of a file in it: the fields that depend only on the
 * host file system (its type, block size, size, name length), which a
 * program checking "is this tmpfs / NFS / btrfs" or sizing its writes reads. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

static void show(const char *what, int r, const struct statfs *s) {
    if (r < 0) {
        printf("%s: failed\n", what);
        return;
    }
    printf("%s: type %#lx bsize %ld frsize %ld blocks %lu files %lu namelen %ld rdonly %d\n", what,
           (unsigned long)s->f_type, (long)s->f_bsize, (long)s->f_frsize, (unsigned long)s->f_blocks,
           (unsigned long)s->f_files, (long)s->f_namelen, !!(s->f_flags & ST_RDONLY));
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    char file[4096];
    snprintf(file, sizeof file, "%s/f", argv[1]);
    int fd = open(file, O_RDWR | O_CREAT, 0644);
    struct statfs s;
    show("statfs dir", statfs(argv[1], &s), &s);
    show("statfs file", statfs(file, &s), &s);
    show("fstatfs file", fstatfs(fd, &s), &s);
    struct statvfs v;
    int r = statvfs(argv[1], &v);
    printf("statvfs dir: %d bsize %lu namemax %lu\n", r, v.f_bsize, v.f_namemax);
    return 0;
}
