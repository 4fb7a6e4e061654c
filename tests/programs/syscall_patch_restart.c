// Calls interrupted by a signal at a site of the shape syscall patching rewrites
// (`mov $nr, %eax; syscall`, see docs/systrap-patching.md), once the site has trapped
// often enough to be patched: restarted after a handler with SA_RESTART (the restart
// must not run the patched bytes, where `syscall` was), failing with EINTR without it,
// and returning to the address after the site with the registers Linux leaves. And a
// jump into a site, at its `syscall` (a thread that ran the old `mov` as the site was
// patched finds an invalid opcode there, and must make the same call).
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"

// read(fd, buf, n) from one `mov $0, %eax; syscall` site; *rcx gets rcx after it.
__asm__(".pushsection .text\n"
        ".globl site_read\n"
        "site_read:\n"
        "push %rcx\n"
        "mov $0, %eax\n syscall\n"
        "site_read_after:\n"
        "pop %r8\n mov %rcx, (%r8)\n"
        "ret\n"
        ".popsection\n");
long site_read(int fd, void *buf, long n, uint64_t *rcx);
extern char site_read_after[];

// getppid at another site, and a way in at its `syscall` instruction with the number
// already in eax: what a thread that ran the site's `mov` just before the site was
// patched does next.
__asm__(".pushsection .text\n"
        ".globl site_ppid\n"
        "site_ppid: mov $110, %eax\n"
        ".globl site_ppid_syscall\n"
        "site_ppid_syscall: syscall\n ret\n"
        ".globl run_in_at\n"
        "run_in_at: mov $110, %eax\n jmp *%rdi\n"
        ".popsection\n");
long site_ppid(void);
long run_in_at(void *at);
extern char site_ppid_syscall[];

static int pipefd[2];
static volatile int handled;
static volatile int refill;

static void on_alarm(int sig) {
    (void)sig;
    handled++;
    if (refill) {
        char c = 'x';
        if (write(pipefd[1], &c, 1) != 1) _exit(3);
    }
}

static void arm(int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

int main(void) {
    if (pipe(pipefd) != 0) return 1;
    char buf[8];
    uint64_t rcx = 0;
    int warm = 1;
    for (int i = 0; i < 8; i++) {
        if (write(pipefd[1], "ab", 1) != 1) return 1;
        warm &= site_read(pipefd[0], buf, 1, &rcx) == 1 && buf[0] == 'a' && rcx == (uint64_t)site_read_after;
    }
    check("calls from the site before and after it can be patched", warm);

    int restarted = 1;
    for (int round = 0; round < 5; round++) {
        handled = 0;
        refill = 1;
        arm(SA_RESTART);
        long r = site_read(pipefd[0], buf, 1, &rcx);
        restarted &= r == 1 && buf[0] == 'x' && handled == 1 && rcx == (uint64_t)site_read_after;
    }
    check("a read interrupted by a handler with SA_RESTART restarts, and returns after the site", restarted);

    handled = 0;
    refill = 0;
    arm(0);
    long r = site_read(pipefd[0], buf, 1, &rcx);
    check("without SA_RESTART it fails with EINTR, after the site", r == -EINTR && handled == 1 && rcx == (uint64_t)site_read_after);

    long ppid = getppid();
    int same = 1;
    for (int i = 0; i < 8; i++) same &= site_ppid() == ppid;
    for (int i = 0; i < 4; i++) same &= run_in_at(site_ppid_syscall) == ppid;
    check("a jump to a site's syscall instruction, the number in eax, makes that call", same);

    if (write(pipefd[1], "c", 1) != 1) return 1;
    check("the site serves again", site_read(pipefd[0], buf, 1, &rcx) == 1 && buf[0] == 'c');
    printf(failures ? "FAILED\n" : "all ok\n");
    return failures != 0;
}
