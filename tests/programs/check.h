// The check every self-checking test program prints: one line per check, "ok" or
// "FAIL", counted in `failures` for the program's summary and exit status.
#include <stdio.h>

static int failures;

static void check(const char *what, int ok) {
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok) failures++;
}
