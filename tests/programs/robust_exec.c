// exec releases the robust futexes the execing thread holds, as its exit would
// (Linux's exec_mm_release): a process-shared robust mutex, plain and PI, locked by
// a child that then execs, reaches the waiting parent as EOWNERDEAD while the new
// image still runs.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static void init(pthread_mutex_t *m, int protocol) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_setprotocol(&a, protocol);
    pthread_mutex_init(m, &a);
}

static int lock_within(pthread_mutex_t *m, int seconds) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += seconds;
    return pthread_mutex_timedlock(m, &t);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "image") == 0) {
        // The new image: waits until the parent is done, so that only exec (not an
        // exit) can have released the locks.
        char c;
        return read(3, &c, 1) == 1 ? 0 : 2;
    }
    pthread_mutex_t *m = mmap(NULL, 2 * sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    init(&m[0], PTHREAD_PRIO_NONE);
    init(&m[1], PTHREAD_PRIO_INHERIT);
    int locked[2], release[2];
    if (pipe(locked) || pipe(release)) { perror("pipe"); return 1; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (pthread_mutex_lock(&m[0]) || pthread_mutex_lock(&m[1])) _exit(3);
        if (write(locked[1], "L", 1) != 1) _exit(4);
        dup2(release[0], 3);
        execl("/proc/self/exe", argv[0], "image", (char *)NULL);
        _exit(5);
    }
    char c;
    check("the child holds both locks", read(locked[0], &c, 1) == 1);
    const char *kinds[2] = {"plain", "PI"};
    for (int i = 0; i < 2; i++) {
        int r = lock_within(&m[i], 10);
        char what[96];
        snprintf(what, sizeof what, "%s robust mutex after the holder's exec: %s", kinds[i], errname(r));
        check(what, r == EOWNERDEAD);
        if (r == EOWNERDEAD) {
            check("made consistent", pthread_mutex_consistent(&m[i]) == 0);
            check("unlocked", pthread_mutex_unlock(&m[i]) == 0);
        }
    }
    check("the new image still runs", waitpid(pid, NULL, WNOHANG) == 0);
    if (write(release[1], "x", 1) != 1) { perror("write"); return 1; }
    int st;
    check("the new image exits 0", waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
