// execveat relative to a directory descriptor, and with AT_EMPTY_PATH on an open
// executable (fexecve); the new image reports how it was started.
#define _GNU_SOURCE
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int run(int dirfd, const char *path, int flags, const char *tag) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char *argv[] = {(char *)"execveat", (char *)tag, NULL};
        char *envp[] = {NULL};
        syscall(SYS_execveat, dirfd, path, argv, envp, flags);
        _exit(99);
    }
    int st;
    waitpid(c, &st, 0);
    return WEXITSTATUS(st);
}

int main(int argc, char **argv) {
    if (argc > 1) {
        printf("new image started as %s\n", argv[1]);
        return 0;
    }
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n] = 0;
    char dir[4096], base[4096];
    strcpy(dir, self);
    strcpy(base, self);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    printf("relative to a directory fd: %d\n", run(dfd, basename(base), 0, "dirfd-relative"));
    int efd = open(self, O_RDONLY);
    printf("AT_EMPTY_PATH on an open file: %d\n", run(efd, "", AT_EMPTY_PATH, "fexecve"));
    printf("bad flags: %d\n", run(AT_FDCWD, self, 0x8000, "never"));
    return 0;
}
