// Says "ready", then waits for SIGTERM; its handler reports and the program exits 7.
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static volatile sig_atomic_t got;
static void on_term(int s) { got = s; }
int main(void) {
    signal(SIGTERM, on_term);
    printf("ready\n");
    fflush(stdout);
    while (!got) pause();
    printf("got signal %d\n", (int)got);
    return 7;
}
