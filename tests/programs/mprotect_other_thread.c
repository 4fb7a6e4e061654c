// mprotect takes write access away from every thread before it returns, as
// Linux's TLB shootdown does: a thread storing to the page in a loop faults on
// its next store, and the value seen after mprotect returns never changes. The
// Sentry queues the change, and the caller's return to the app carries it out on
// every platform first. Runtimes rely on this: mprotect as a process-wide
// barrier, write barriers of garbage collectors, safepoint pages.
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "check.h"

static volatile unsigned long *page;
static atomic_int faulted;
static sigjmp_buf out;

static void on_segv(int sig) {
    (void)sig;
    atomic_store(&faulted, 1);
    siglongjmp(out, 1);
}

static void *writer(void *arg) {
    (void)arg;
    if (!sigsetjmp(out, 1))
        for (;;)
            page[0]++;
    return 0;
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_segv;
    sigaction(SIGSEGV, &sa, 0);
    page = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    pthread_t t;
    pthread_create(&t, 0, writer, 0);
    while (page[0] < 100000) {
    }
    mprotect((void *)page, 4096, PROT_READ);
    unsigned long seen = page[0];
    int changed = 0;
    // Watch the page for a while without entering the kernel.
    for (long i = 0; i < 50000000 && !changed; i++)
        changed = page[0] != seen;
    check("no store lands after mprotect returns", !changed);
    pthread_join(t, 0);
    check("the storing thread faulted", atomic_load(&faulted));
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
