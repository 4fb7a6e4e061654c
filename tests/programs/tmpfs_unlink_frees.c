// An unlinked tmpfs file's pages go back once its last descriptor closes, as
// Linux frees a shmem inode on its last iput: /proc/meminfo's Shmem drops by
// the file's size (a tolerance for the host's other users natively).
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define MIB (1L << 20)
#define SIZE (32 * MIB)

static long shmem(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Shmem: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024;
}

int main(void) {
    static char buf[1 << 16];
    memset(buf, 0x5a, sizeof buf);
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/unlink_frees.%d", (int)getpid());
    long before = shmem();
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    check("open", fd >= 0);
    for (long done = 0; done < SIZE; done += sizeof buf)
        if (write(fd, buf, sizeof buf) != sizeof buf) { check("write", 0); return 1; }
    long written = shmem();
    check("the written file counts in Shmem", written - before >= SIZE - 8 * MIB);
    check("unlink", unlink(path) == 0);
    check("still counted while open", shmem() - before >= SIZE - 8 * MIB);
    close(fd);
    check("freed on the last close", written - shmem() >= SIZE - 8 * MIB);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
