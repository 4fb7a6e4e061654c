// getcwd. The sandbox's working directory is "/"; natively it is wherever the harness runs,
// so the actual path goes to stderr and stdout has only properties.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    char buf[PATH_MAX];
    char *c = getcwd(buf, sizeof buf);
    printf("getcwd succeeds: %s\n", c == buf ? "yes" : "no");
    printf("cwd is absolute: %s\n", c && buf[0] == '/' ? "yes" : "no");
    fprintf(stderr, "cwd=%s\n", c ? buf : "(null)");
    long r = syscall(SYS_getcwd, buf, sizeof buf);
    printf("raw getcwd returns strlen+1: %s\n", r > 0 && (size_t)r == strlen(buf) + 1 ? "yes" : "no");
    errno = 0;
    c = getcwd(buf, 1);
    printf("getcwd(buf, 1) = %s %s\n", c ? "ok" : "NULL", strerrorname_np(errno));
    char *dyn = getcwd(NULL, 0);
    printf("getcwd(NULL, 0) allocates the same path: %s\n", dyn && !strcmp(dyn, buf) ? "yes" : "no");
    free(dyn);
    return 0;
}
