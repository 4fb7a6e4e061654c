// readlink("/proc/self/exe") names the running program.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    (void)argc;
    char buf[PATH_MAX + 1];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    printf("readlink succeeds: %s\n", n > 0 ? "yes" : "no");
    if (n <= 0) return 1;
    buf[n] = 0;
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    size_t bl = strlen(base);
    printf("absolute: %s\n", buf[0] == '/' ? "yes" : "no");
    printf("ends with /%s: %s\n", base,
           (size_t)n > bl && buf[n - bl - 1] == '/' && !strcmp(buf + n - bl, base) ? "yes" : "no");
    printf("equals argv[0]: %s\n", !strcmp(buf, argv[0]) ? "yes" : "no");
    char small[4];
    printf("readlink into 4 bytes returns 4 (truncated): %s\n",
           readlink("/proc/self/exe", small, sizeof small) == 4 && !memcmp(small, buf, 4) ? "yes" : "no");
    return 0;
}
