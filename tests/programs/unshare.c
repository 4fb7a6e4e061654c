// unshare(2) of what a process shares with its threads: CLONE_FILES (a thread's new
// descriptors stay its own, and the others' stay theirs), CLONE_FS (its chdir leaves
// the others' directory alone), CLONE_THREAD only while single-threaded, the no-ops,
// and flags unshare does not know.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static sem_t to_thread, to_main;
static int thread_fd = -1, main_fd = -1, seen_main_fd;
static int thread_files, thread_fs;

static void *worker(void *arg) {
    (void)arg;
    thread_files = unshare(CLONE_FILES);
    thread_fd = open("/dev/null", O_RDONLY);
    thread_fs = unshare(CLONE_FS);
    if (chdir("/") != 0) thread_fs = -2;
    sem_post(&to_main);
    sem_wait(&to_thread);
    // The descriptor main opened after our unshare is not ours.
    seen_main_fd = fcntl(main_fd, F_GETFD) != -1 || errno != EBADF;
    sem_post(&to_main);
    sem_wait(&to_thread);
    return NULL;
}

int main(void) {
    if (chdir("/tmp") != 0) return 2;
    sem_init(&to_thread, 0, 0);
    sem_init(&to_main, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    sem_wait(&to_main);
    check("a thread's unshare(CLONE_FILES)", thread_files == 0);
    errno = 0;
    check("what it opens after is not the others' (EBADF here)", fcntl(thread_fd, F_GETFD) == -1 && errno == EBADF);
    check("a thread's unshare(CLONE_FS)", thread_fs == 0);
    char cwd[64];
    check("its chdir leaves the others' directory alone", getcwd(cwd, sizeof cwd) && !strcmp(cwd, "/tmp"));
    // Numbered past anything either table holds, so that only the tables differ.
    main_fd = fcntl(open("/dev/zero", O_RDONLY), F_DUPFD, 100);
    sem_post(&to_thread);
    sem_wait(&to_main);
    check("and what they open is not its", !seen_main_fd);
    errno = 0;
    check("unshare(CLONE_THREAD) with two threads: EINVAL", unshare(CLONE_THREAD) == -1 && errno == EINVAL);
    errno = 0;
    check("unshare(CLONE_VM) with two threads: EINVAL", unshare(CLONE_VM) == -1 && errno == EINVAL);
    sem_post(&to_thread);
    pthread_join(t, NULL);
    // In a child, which has one thread (a joined thread may still be leaving this process).
    pid_t c = fork();
    if (c == 0) _exit(unshare(CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) == 0 ? 0 : 1);
    int st;
    check("unshare(CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) with one thread: nothing to do", waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    check("unshare(0) and unshare(CLONE_SYSVSEM)", unshare(0) == 0 && unshare(CLONE_SYSVSEM) == 0);
    errno = 0;
    check("a flag unshare does not know (CLONE_SETTLS): EINVAL", unshare(CLONE_SETTLS) == -1 && errno == EINVAL);
    printf("%d failures\n", failures);
    return failures != 0;
}
