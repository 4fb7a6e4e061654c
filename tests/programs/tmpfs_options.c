// The options /proc/self/mounts and mountinfo show for tmpfs mounts given
// size=, nr_blocks=, nr_inodes=, mode=, uid=, gid=, huge=, inode64 and noswap
// (each only when it differs from the default, in Linux's order, the size in
// KiB of whole pages), and after a remount with a new size. Natively the
// program first moves to a private mount namespace, so that nothing it mounts
// reaches the host's tree.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static char base[] = "/tmp/rvt-tmpfsopt-XXXXXX";

// The mounts line and mountinfo's super options of the mount at `base`.
static void show(const char *what) {
    char line[4096], mounts[1024] = "(none)", info[1024] = "(none)";
    FILE *f = fopen("/proc/self/mounts", "r");
    while (f && fgets(line, sizeof line, f)) {
        char src[512], mp[512], type[64], o[1024];
        if (sscanf(line, "%511s %511s %63s %1023s", src, mp, type, o) == 4 && !strcmp(mp, base)) snprintf(mounts, sizeof mounts, "%s %s %s", src, type, o);
    }
    if (f) fclose(f);
    f = fopen("/proc/self/mountinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char mp[512], *dash = strstr(line, " - ");
        char type[64], src[512], o[1024];
        if (sscanf(line, "%*d %*d %*s %*s %511s", mp) == 1 && !strcmp(mp, base) && dash && sscanf(dash + 3, "%63s %511s %1023s", type, src, o) == 3) snprintf(info, sizeof info, "%s %s %s", src, type, o);
    }
    if (f) fclose(f);
    printf("%s:\n  mounts %s\n  mountinfo %s\n", what, mounts, info);
}

static void try(const char *opts) {
    if (mount("t", base, "tmpfs", 0, opts)) {
        printf("%s: mount %s\n", opts, strerrorname_np(errno));
        return;
    }
    show(opts);
    umount(base);
}

int main(void) {
    if (unshare(CLONE_NEWNS) == 0) mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    if (!mkdtemp(base)) return 1;
    try("");
    try("size=1024k,mode=755");
    try("size=1m,nr_inodes=100,mode=1777,uid=0,gid=0");
    try("noswap,inode64,huge=within_size,gid=2,uid=1,mode=700,nr_inodes=100,size=1m");
    try("size=0,nr_inodes=0");
    try("size=4097");
    try("nr_blocks=10");
    try("nr_inodes=1k,mode=0");
    try("huge=never,size=1t");
    try("huge=always");
    try("huge=sometimes");
    try("inode32");
    // A remount's new size and inode count show; the mode stays.
    if (mount("t", base, "tmpfs", 0, "size=8k,mode=711") == 0) {
        show("before the remount");
        printf("remount: %d\n", mount(NULL, base, NULL, MS_REMOUNT, "size=16k,nr_inodes=7"));
        show("after the remount");
        umount(base);
    }
    rmdir(base);
    printf("all ok\n");
    return 0;
}
