// Prints an extended attribute list (listxattr's NUL-separated names) on one
// line after `what`, sorted, so that the output does not depend on the file
// system's order, and without security.* names, which the host may add (SELinux
// labels).
#include <stdio.h>
#include <string.h>

static void print_list(const char *what, const char *buf, long n) {
    printf("%s:", what);
    const char *names[32];
    int k = 0;
    for (long i = 0; i < n && k < 32; i += strlen(buf + i) + 1)
        names[k++] = buf + i;
    for (int a = 0; a < k; a++)
        for (int b = a + 1; b < k; b++)
            if (strcmp(names[a], names[b]) > 0) {
                const char *x = names[a];
                names[a] = names[b];
                names[b] = x;
            }
    for (int a = 0; a < k; a++)
        if (strncmp(names[a], "security.", 9) != 0)
            printf(" %s", names[a]);
    printf("\n");
}
