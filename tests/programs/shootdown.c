// Address-space changes reach the other threads of a process at once: once munmap,
// mprotect, a MAP_FIXED mmap or madvise(MADV_DONTNEED) returns in one thread, another
// thread that keeps touching the page (with no system call in between) must see the
// change. On Linux this is the TLB shootdown; in the sandbox the platform must drop
// what it cached of the old mapping (kvm's shadow page tables, for one) before the call
// returns. Each case: a toucher thread loops over the page; the main thread waits until
// it runs, changes the mapping, then raises a flag; every touch the toucher makes after
// it saw the flag must see the new mapping.
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define AFTER 200000 /* touches checked after the flag */

static volatile int *page;
static atomic_int running, changed;
static sigjmp_buf toucher_jmp;
static volatile int faulted;

static void on_segv(int sig) {
    (void)sig;
    faulted = 1;
    siglongjmp(toucher_jmp, 1);
}

enum touch { READ, WRITE };
static enum touch how;
static long stale; /* touches after the flag that saw the old mapping */

static void *toucher(void *arg) {
    (void)arg;
    stale = 0;
    faulted = 0;
    if (sigsetjmp(toucher_jmp, 1))
        return NULL;
    int seen = 0;
    for (long n = 0; n < AFTER;) {
        int v;
        if (how == READ) {
            v = *page;
        } else {
            *page = 7;
            v = 7;
        }
        if (seen) {
            if (v == 1 || how == WRITE)
                stale++;
            n++;
        }
        atomic_store(&running, 1);
        if (atomic_load(&changed))
            seen = 1;
    }
    return NULL;
}

/* Starts the toucher on `page` (holding 1), makes `change` once it runs, raises the
 * flag and waits for the toucher to finish. */
static void race(enum touch t, void (*change)(void)) {
    *page = 1;
    how = t;
    atomic_store(&running, 0);
    atomic_store(&changed, 0);
    pthread_t th;
    pthread_create(&th, NULL, toucher, NULL);
    while (!atomic_load(&running))
        ;
    change();
    atomic_store(&changed, 1);
    pthread_join(th, NULL);
}

static void run(const char *what, enum touch t, void (*change)(void), int expect_fault) {
    page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    race(t, change);
    if (expect_fault)
        printf("%s: the other thread faulted: %s\n", what, faulted ? "yes" : "no");
    else
        printf("%s: the other thread saw only the new page: %s\n", what, !faulted && stale == 0 ? "yes" : "no");
    munmap((void *)page, 4096);
}

static void do_munmap(void) { munmap((void *)page, 4096); }
static void do_mprotect(void) { mprotect((void *)page, 4096, PROT_READ); }
static void do_remap(void) { mmap((void *)page, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0); }
static void do_dontneed(void) { madvise((void *)page, 4096, MADV_DONTNEED); }

/* A shared mapping of a memfd's first page, replaced by its second page: the old page
 * lives on in the file (nothing frees it that the host would notice). */
static int memfd;
static void do_refile(void) { mmap((void *)page, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, memfd, 4096); }

static void run_file(void) {
    memfd = memfd_create("shootdown", 0);
    ftruncate(memfd, 8192);
    page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    race(READ, do_refile);
    printf("mmap of another file page over a shared one: the other thread saw only the new page: %s\n", !faulted && stale == 0 ? "yes" : "no");
    munmap((void *)page, 4096);
    close(memfd);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    sigaction(SIGSEGV, &sa, NULL);
    run("munmap", READ, do_munmap, 1);
    run("mprotect to read-only", WRITE, do_mprotect, 1);
    run("mmap MAP_FIXED over it", READ, do_remap, 0);
    run("madvise MADV_DONTNEED", READ, do_dontneed, 0);
    run_file();
    printf("all ok\n");
    return 0;
}
