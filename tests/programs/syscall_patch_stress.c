// A soak of syscall patching (docs/systrap-patching.md): four threads call 64
// `mov $nr, %eax; syscall` sites (getppid, getpid and gettid) in turn, so that sites
// are patched while other threads run them; a timer signal interrupts them, and its
// handler calls sites too; the main thread forks children that call every site (they
// inherit the patched sites) and exit with the number of wrong results. Every call
// must return what it returns natively.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define SITE(name, nr)                                     \
    __asm__(".pushsection .text\n"                         \
            ".globl " #name "\n" #name ": mov $" #nr ", %eax\n syscall\n ret\n" \
            ".popsection\n");                              \
    long name(void);

#define SITES4(p, nr) SITE(p##0, nr) SITE(p##1, nr) SITE(p##2, nr) SITE(p##3, nr)
#define SITES16(p, nr) SITES4(p##0, nr) SITES4(p##1, nr) SITES4(p##2, nr) SITES4(p##3, nr)
SITES16(ppid_, 110)
SITES16(ppid2_, 110)
SITES16(pid_, 39)
SITES16(tid_, 186)

#define REF4(p) p##0, p##1, p##2, p##3
#define REF16(p) REF4(p##0), REF4(p##1), REF4(p##2), REF4(p##3)
enum { KIND_PPID, KIND_PID, KIND_TID, KINDS };
static long (*const sites[KINDS][32])(void) = {
    {REF16(ppid_), REF16(ppid2_)},
    {REF16(pid_)},
    {REF16(tid_)},
};
static const int counts[KINDS] = {32, 16, 16};

enum { THREADS = 4, ROUNDS = 50, FORKS = 4 };

static atomic_long wrong;
static atomic_int handled;

// Calls every site once; returns how many gave another answer than the libc call.
static long call_all(void) {
    long want[KINDS] = {getppid(), getpid(), gettid()}, bad = 0;
    for (int k = 0; k < KINDS; k++)
        for (int i = 0; i < counts[k]; i++) bad += sites[k][i]() != want[k];
    return bad;
}

static void on_alarm(int sig) {
    (void)sig;
    atomic_fetch_add(&handled, 1);
    long want = getpid();
    if (pid_03() != want || pid_32() != want) atomic_fetch_add(&wrong, 1);
}

static void *caller(void *arg) {
    (void)arg;
    long bad = 0;
    for (int r = 0; r < ROUNDS; r++) bad += call_all();
    atomic_fetch_add(&wrong, bad);
    return NULL;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_REAL, &it, NULL);

    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, caller, NULL);
    int children_ok = 1;
    for (int f = 0; f < FORKS; f++) {
        pid_t pid = fork();
        if (pid == 0) {
            long bad = 0;
            for (int r = 0; r < 20; r++) bad += call_all();
            _exit(bad > 100 ? 100 : (int)bad);
        }
        int status;
        children_ok &= pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);

    check("every call from a site on four threads and in handlers gave its answer", atomic_load(&wrong) == 0);
    check("forked children's calls from the sites too", children_ok);
    check("the main thread's calls after it all", call_all() == 0);
    printf(failures ? "FAILED\n" : "all ok\n");
    return failures != 0;
}
