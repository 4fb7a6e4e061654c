// The race syscall patching must survive (docs/systrap-patching.md, §5), made
// deterministic: a thread is single-stepped by a tracer until it has run the `mov` of
// a `mov $nr, %eax; syscall` site and stands at the `syscall`; then another thread of
// its process calls the site until systrap has patched it (where the `syscall` was,
// the patched bytes are now the tail of a jump); then the first thread goes on. Its
// call must be made once, with the right result, and no signal may reach the tracer
// or the process.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "step.h"

__asm__(".pushsection .text\n"
        ".globl site_getppid\n"
        "site_getppid: mov $110, %eax\n"
        ".globl site_getppid_syscall\n"
        "site_getppid_syscall: syscall\n ret\n"
        ".popsection\n");
long site_getppid(void);
extern char site_getppid_syscall[];

static int go[2], done[2], result[2];

// The second thread: on the tracer's word, makes the site patchable and patches it.
static void *patcher(void *arg) {
    (void)arg;
    char c;
    if (read(go[0], &c, 1) != 1) _exit(3);
    long ppid = getppid(), ok = 1;
    for (int i = 0; i < 10; i++) ok &= site_getppid() == ppid;
    if (write(done[1], &ok, sizeof ok) != sizeof ok) _exit(4);
    return NULL;
}

static void child(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, patcher, NULL) != 0) _exit(2);
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) _exit(5);
    raise(SIGUSR1);
    long r = site_getppid();
    if (write(result[1], &r, sizeof r) != sizeof r) _exit(4);
    pthread_join(t, NULL);
    _exit(0);
}

int main(void) {
    if (pipe(go) != 0 || pipe(done) != 0 || pipe(result) != 0) return 1;
    pid_t pid = fork();
    if (pid == 0) child();
    int status;
    check("the child stops at its SIGUSR1", waitpid(pid, &status, 0) == pid && WIFSTOPPED(status) && WSTOPSIG(status) == SIGUSR1);

    // Step it to the site's `syscall`, with the site's `mov` done.
    struct user_regs_struct regs;
    int there = step_to(pid, site_getppid_syscall, &regs);
    check("stepped to the site's syscall", there);
    check("the site's mov is done", there && regs.rax == 110);

    long ok = 0;
    check("go", write(go[1], "g", 1) == 1);
    check("the other thread's calls from the site", read(done[0], &ok, sizeof ok) == sizeof ok && ok);

    // On: the stepped thread runs what is at the site's `syscall` now.
    check("continue", ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    int exited = waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    check("no signal on the way, and exit 0", exited);
    if (!exited && WIFSTOPPED(status)) {
        printf("stopped by signal %d\n", WSTOPSIG(status));
        kill(pid, SIGKILL);
    }
    long r = 0;
    check("the stepped thread's call", exited && read(result[0], &r, sizeof r) == sizeof r && r == getpid());
    printf(failures ? "FAILED\n" : "all ok\n");
    return failures != 0;
}
