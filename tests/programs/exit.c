// Exit paths: exit(), return from main, _exit, raw exit and exit_group, status truncation.
// Prints "mode M" through stdio (buffered: a pipe is fully buffered), so whether that line
// appears also tests that exit() flushes and _exit() does not.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: exit MODE\n");
        return 2;
    }
    const char *m = argv[1];
    printf("mode %s\n", m);
    if (!strcmp(m, "exit0")) exit(0);
    if (!strcmp(m, "exit42")) exit(42);
    if (!strcmp(m, "exit300")) exit(300);       /* status is 300 & 0xff = 44 */
    if (!strcmp(m, "return7")) return 7;
    if (!strcmp(m, "_exit3")) { fflush(stdout); _exit(3); }
    if (!strcmp(m, "unflushed")) _exit(5);      /* the buffered line is lost */
    if (!strcmp(m, "sys_exit")) { fflush(stdout); syscall(SYS_exit, 9); }
    if (!strcmp(m, "exit_group")) { fflush(stdout); syscall(SYS_exit_group, 11); }
    fprintf(stderr, "unknown mode %s\n", m);
    return 99;
}
