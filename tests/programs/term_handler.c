// Says "ready", then waits for SIGTERM; its handler reports and the program exits 7.
// SIGTERM stays blocked but in sigsuspend: with `while (!got) pause();` a signal
// landing between the test and the pause would be taken and the pause never end.
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static volatile sig_atomic_t got;
static void on_term(int s) { got = s; }
int main(void) {
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    signal(SIGTERM, on_term);
    printf("ready\n");
    fflush(stdout);
    while (!got) sigsuspend(&old);
    printf("got signal %d\n", (int)got);
    return 7;
}
