// A subreaper that ignores SIGCHLD never keeps a zombie, however its orphans
// die: before their parent (a zombie handed over, reaped at once), after it
// (their death news for it), or at the same moment as their parent, the case a
// race once left a zombie in: the child went to the heir while already on its
// way to its old parent (a window of a few instructions, which these rounds
// seldom hit: the test guards the property more than it reproduces the race).
// Each round a middle process and its child exit together; at the end wait()
// finds no child at all (ECHILD), as on Linux. Then a child exits while the
// subreaper waits: the wait blocks until it is gone and says ECHILD, never
// reporting the child it reaped at its death.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

int main(void) {
    check("PR_SET_CHILD_SUBREAPER", prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
    signal(SIGCHLD, SIG_IGN);
    volatile int *go = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    check("shared page", go != MAP_FAILED);
    const int rounds = 300;
    int forked = 0;
    for (int i = 0; i < rounds; i++) {
        *go = 0;
        pid_t middle = fork();
        if (middle == 0) {
            if (fork() == 0) {
                while (!*go) {
                }
                _exit(0);
            }
            *go = 1;
            _exit(0);
        }
        forked += middle > 0;
    }
    pid_t r = wait(NULL);
    int e = errno;
    printf("forked %d middles\n", forked);
    printf("wait after every orphan died: %d %s\n", r < 0 ? -1 : 0, r < 0 ? errname(e) : "a zombie was left");
    check("no zombie left", r < 0 && e == ECHILD);
    int reported = 0;
    for (int i = 0; i < rounds; i++) {
        pid_t child = fork();
        if (child == 0) {
            _exit(0);
        }
        reported += wait(NULL) >= 0;
    }
    printf("waits that reported a child reaped at its death: %d\n", reported);
    check("no reaped child reported", reported == 0);
    printf("%d failures\n", failures);
    return failures != 0;
}
