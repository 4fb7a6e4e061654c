// Two processes (two address spaces) that wait for a line on stdin, so the harness
// can look at the host's /proc meanwhile. Prints "ready" once both exist.
#define _GNU_SOURCE
#include <linux/futex.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    volatile int *go = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t child = fork();
    if (child == 0) {
        while (*go == 0) syscall(SYS_futex, go, FUTEX_WAIT, 0, NULL, NULL, 0);
        _exit(0);
    }
    printf("ready\n");
    fflush(stdout);
    char c;
    while (read(0, &c, 1) == 1 && c != '\n') {
    }
    *go = 1;
    syscall(SYS_futex, go, FUTEX_WAKE, 1, NULL, NULL, 0);
    int st;
    waitpid(child, &st, 0);
    printf("done %d\n", WEXITSTATUS(st));
    return 0;
}
