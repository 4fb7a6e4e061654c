// What a `#!` line adds to argv (the interpreter's path, its argument, the
// script's path, in place of argv[0]) must fit in the room execve's strings
// have on the new stack, as the strings passed: E2BIG past it. Under a 512 KiB
// RLIMIT_STACK that room is ARG_MAX (128 KiB) less the argv and envp pointers;
// each exec is tried at the largest argument that fits, and one byte more.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROOM (128 * 1024 - 2 * 8) // argv "x" and the big one, no envp

static char self[4096], script[4200];

// Execs `path` with argv {"x", a string of `len` bytes} and no environment:
// "ran" (the image, or the interpreter, exits 0), or execve's errno.
static const char *try_exec(const char *path, size_t len) {
    static char result[64];
    char *big = malloc(len + 1);
    memset(big, 'b', len);
    big[len] = 0;
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit rl = {512 * 1024, 512 * 1024};
        setrlimit(RLIMIT_STACK, &rl);
        char *argv[] = {"x", big, NULL}, *envp[] = {NULL};
        execve(path, argv, envp);
        _exit(100 + errno);
    }
    free(big);
    int st;
    waitpid(pid, &st, 0);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    snprintf(result, sizeof result, "%s", code == 0 ? "ran" : code >= 100 ? errname(code - 100) : "failed");
    return result;
}

static void expect(const char *what, const char *path, size_t len, const char *want) {
    const char *got = try_exec(path, len);
    char line[128];
    snprintf(line, sizeof line, "%s: %s", what, got);
    check(line, strcmp(got, want) == 0);
}

int main(int argc, char **argv) {
    // The image run: as the program, with the big argument, or as the interpreter.
    if (argc > 1 && (argv[1][0] == 'b' || strcmp(argv[1], "script-arg") == 0)) return 0;
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char dir[] = "/tmp/e2bigXXXXXX";
    if (n <= 0 || !mkdtemp(dir)) return 2;
    self[n] = 0;
    snprintf(script, sizeof script, "%s/s", dir);
    FILE *f = fopen(script, "w");
    fprintf(f, "#!%s script-arg\n", self);
    fclose(f);
    chmod(script, 0755);

    // Plain: the path, "x" and the big one.
    size_t plain = ROOM - (strlen(self) + 1) - 2 - 1;
    // Script: the path, then argv {self, "script-arg", script, big}.
    size_t scripted = ROOM - 2 * (strlen(script) + 1) - (strlen(self) + 1) - 11 - 1;
    expect("plain exec, the most that fits", self, plain, "ran");
    expect("plain exec, a byte more", self, plain + 1, "E2BIG");
    expect("script, the most that fits", script, scripted, "ran");
    expect("script, a byte more", script, scripted + 1, "E2BIG");
    expect("script, as much as a plain exec fits", script, plain, "E2BIG");
    unlink(script);
    rmdir(dir);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
