// A process's own figures from /proc/self/status.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The value of /proc/self/status's line `key` ("VmLck", "VmRSS"), in kB; -1 if absent.
static inline long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':') v = atol(line + n + 1);
    if (f) fclose(f);
    return v;
}
