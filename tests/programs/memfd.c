// memfd_create: an anonymous read-write tmpfs file with a /proc/self/fd name,
// usable through read/write/ftruncate/fstat/mmap, seals enforced, and runnable
// with fexecve (as runc runs its cloned binary).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(int r) { return r == 0 || r > 0 ? "ok" : strerrorname_np(errno); }

int main(int argc, char **argv, char **envp) {
    if (argc > 1) {
        printf("exec'd from a memfd: %s\n", argv[1]);
        return 0;
    }
    int fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    printf("created: %s, cloexec %d, rdwr %s\n", fd >= 0 ? "yes" : "no", fcntl(fd, F_GETFD), (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR ? "yes" : "no");
    char buf[64] = {0};
    write(fd, "hello", 5);
    lseek(fd, 0, SEEK_SET);
    read(fd, buf, sizeof buf - 1);
    printf("read back: %s\n", buf);
    printf("ftruncate 8192: %s\n", err(ftruncate(fd, 8192)));
    struct stat st;
    fstat(fd, &st);
    printf("size %lld, regular %d, nlink %lu, mode %o\n", (long long)st.st_size, S_ISREG(st.st_mode), (unsigned long)st.st_nlink, st.st_mode & 0777);
    char path[64], link[128] = {0};
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    readlink(path, link, sizeof link - 1);
    printf("fd link: %s\n", link);
    char *p = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("private mapping sees: %.5s\n", p == MAP_FAILED ? "FAILED" : p);

    printf("seals at start: %d\n", fcntl(fd, F_GET_SEALS));
    printf("add GROW|SHRINK: %s\n", err(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK)));
    printf("shrink: %s\n", err(ftruncate(fd, 100)));
    printf("grow: %s\n", err(ftruncate(fd, 1 << 20)));
    printf("write past the end: %s\n", err(pwrite(fd, "x", 1, 8192)));
    printf("write inside: %s\n", err(pwrite(fd, "J", 1, 0)));
    printf("add WRITE: %s\n", err(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)));
    printf("write after WRITE seal: %s\n", err(pwrite(fd, "x", 1, 0)));
    printf("add SEAL: %s\n", err(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL)));
    printf("add after SEAL: %s\n", err(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK)));
    printf("seals now: %#x\n", fcntl(fd, F_GET_SEALS));
    pread(fd, buf, 5, 0);
    printf("content: %.5s\n", buf);

    int plain = memfd_create("plain", 0);
    printf("without ALLOW_SEALING: seals %d, add: %s\n", fcntl(plain, F_GET_SEALS), err(fcntl(plain, F_ADD_SEALS, F_SEAL_WRITE)));
    printf("bad flags: %s\n", err(memfd_create("x", 0x100)));
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    printf("name too long: %s\n", err(memfd_create(longname, 0)));
    int pfd[2];
    pipe(pfd);
    printf("seals of a pipe: %s\n", err(fcntl(pfd[0], F_GET_SEALS)));

    // Copy our own binary into a memfd and run it from there.
    int exe = open("/proc/self/exe", O_RDONLY), m = memfd_create("self", 0);
    char chunk[65536];
    ssize_t n;
    while ((n = read(exe, chunk, sizeof chunk)) > 0) write(m, chunk, n);
    pid_t c = fork();
    if (c == 0) {
        char *args[] = {"memfd", "yes", NULL};
        fexecve(m, args, envp);
        printf("fexecve: %s\n", strerrorname_np(errno));
        _exit(1);
    }
    int status;
    waitpid(c, &status, 0);
    printf("child status: %d\n", WEXITSTATUS(status));
    return 0;
}
