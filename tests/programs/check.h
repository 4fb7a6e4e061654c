// The check every self-checking test program prints: one line per check, "ok" or
// "FAIL", counted in `failures` for the program's summary and exit status.
#include <stdio.h>
#include <string.h>

static int failures;

static void check(const char *what, int ok) {
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok) failures++;
}

// An errno's name ("EAGAIN"), or "0" for none; programs print these so that the
// sandbox's output compares with the native run's. (Needs _GNU_SOURCE.)
static inline const char *errname(int e) {
    const char *name = e ? strerrorname_np(e) : "0";
    return name ? name : "?";
}
