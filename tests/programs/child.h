// Runs a test's case in a forked child, so that what it changes (ids,
// capabilities, limits) stays there.
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

// Runs fn in a child (standard output flushed on both sides of the fork) and
// returns how the child ended, as waitpid gives it.
static inline int run_child(void (*fn)(void)) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        fn();
        fflush(stdout);
        _exit(0);
    }
    int st = 0;
    waitpid(c, &st, 0);
    return st;
}
