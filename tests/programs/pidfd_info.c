// The pidfs ioctls systemd and other managers use: PIDFD_GET_INFO (ids as the
// caller sees them, credentials, the exit status once it is known; only the
// exit status once reaped) and PIDFD_GET_*_NAMESPACE (the process's
// namespaces, as /proc/PID/ns names them), with their errors.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct pidfd_info {
    uint64_t mask, cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
};

#define PIDFD_INFO_PID 1
#define PIDFD_INFO_CREDS 2
#define PIDFD_INFO_EXIT 8
#define PIDFD_GET_INFO _IOWR(0xFF, 11, struct pidfd_info)

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r < 0 ? -1 : r, r < 0 ? strerrorname_np(errno) : "");
}

static long info(int pidfd, uint64_t mask, struct pidfd_info *i) {
    memset(i, 0, sizeof *i);
    i->mask = mask;
    return ioctl(pidfd, PIDFD_GET_INFO, i);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int ready[2], go[2];
    pipe(ready);
    pipe(go);
    pid_t kid = fork();
    if (kid == 0) {
        setresgid(10, 11, 12);
        setresuid(1000, 1001, 1002);
        write(ready[1], "r", 1);
        char c;
        read(go[0], &c, 1);
        _exit(7);
    }
    char c;
    read(ready[0], &c, 1);
    int pidfd = syscall(SYS_pidfd_open, kid, 0);
    struct pidfd_info i;
    show("PIDFD_GET_INFO", info(pidfd, 0, &i));
    printf("  mask pid+creds %d, pid is the child %d, tgid %d, ppid is us %d\n", (i.mask & (PIDFD_INFO_PID | PIDFD_INFO_CREDS)) == 3, i.pid == (uint32_t)kid, i.tgid == i.pid, i.ppid == (uint32_t)getpid());
    printf("  uids %u %u %u fsuid %u, gids %u %u %u fsgid %u\n", i.ruid, i.euid, i.suid, i.fsuid, i.rgid, i.egid, i.sgid, i.fsgid);
    show("asking for the exit status of a live one", info(pidfd, PIDFD_INFO_EXIT, &i));
    printf("  exit in mask %d\n", (i.mask & PIDFD_INFO_EXIT) != 0);
    show("a struct of 32 bytes", ioctl(pidfd, _IOWR(0xFF, 11, char[32]), &i));
    show("no struct", ioctl(pidfd, PIDFD_GET_INFO, NULL));
    char big[96];
    memset(big, 0x55, sizeof big);
    ((struct pidfd_info *)big)->mask = 0;
    show("a struct of 96 bytes", ioctl(pidfd, _IOWR(0xFF, 11, char[96]), big));
    printf("  zeros past ours %d\n", big[64] == 0 && big[95] == 0);

    const char *names[] = {"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children", "user", "uts"};
    for (int n = 1; n <= 10; n++) {
        int fd = ioctl(pidfd, _IO(0xFF, n), 0);
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/%s", kid, names[n - 1]);
        struct stat a, b;
        int same = fd >= 0 && fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
        printf("%s namespace: same as /proc %d, close-on-exec %d\n", names[n - 1], same, fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
        close(fd);
    }
    show("a namespace ioctl with an argument", ioctl(pidfd, _IO(0xFF, 2), 1));
    show("an unknown pidfd ioctl", ioctl(pidfd, _IO(0xFF, 12), 0));

    write(go[1], "g", 1);
    siginfo_t si;
    waitid(P_PID, kid, &si, WEXITED | WNOWAIT);
    show("PIDFD_GET_INFO of a zombie, with its exit", info(pidfd, PIDFD_INFO_EXIT, &i));
    printf("  mask pid+creds+exit %d, exit code %#x\n", (i.mask & 11) == 11, i.exit_code);
    waitpid(kid, NULL, 0);
    show("PIDFD_GET_INFO once reaped", info(pidfd, 0, &i));
    show("with its exit", info(pidfd, PIDFD_INFO_EXIT, &i));
    printf("  mask exit only %d, exit code %#x\n", (i.mask & 11) == PIDFD_INFO_EXIT, i.exit_code);
    show("a namespace once reaped", ioctl(pidfd, _IO(0xFF, 10), 0));
    return 0;
}
