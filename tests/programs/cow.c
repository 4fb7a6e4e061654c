// Copy-on-write after fork: private memory (data, bss, heap, stack, anonymous mappings
// touched or not before fork, read-only then made writable) diverges between parent and
// child in both directions; MAP_SHARED|MAP_ANONYMOUS memory is shared, also with a
// grandchild; MADV_DONTNEED and munmap in the child leave the parent's memory alone.
// (The forking thread's stack and thread block are copied at fork, so are the pages
// both sides wrote after earlier forks, the rest on write.)
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static atomic_int *shm; /* shared flags and results */

static void wait_for(atomic_int *addr, int want) {
    int v;
    while ((v = atomic_load(addr)) != want) syscall(SYS_futex, addr, FUTEX_WAIT, v, NULL, NULL, 0);
}

static void set_and_wake(atomic_int *addr, int v) {
    atomic_store(addr, v);
    syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static int reap(pid_t c) {
    int st;
    if (waitpid(c, &st, 0) != c) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static pid_t fork_flushed(void) {
    fflush(stdout);
    return fork();
}

static int data_var = 1;
static int bss_var;
static __thread int tls_var = 7; /* in the thread block fork copies for the child at once */

#define BIG (8 << 20)
#define PG 4096

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    shm = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    check("mmap shared flags page", shm != MAP_FAILED);
    if (shm == MAP_FAILED) return 1;

    /* 1. Every kind of private memory, written by the child. */
    bss_var = 2;
    int *heap = malloc(sizeof(int) * 1024);
    heap[0] = 3;
    heap[1023] = 3;
    volatile int stack_var = 4;
    unsigned char *big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < BIG; i += PG) big[i] = (unsigned char)(i / PG);
    unsigned char *untouched = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *ro = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ro[0] = 5;
    mprotect(ro, PG, PROT_READ);
    unsigned char *shared = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    shared[0] = 6;

    pid_t c = fork_flushed();
    if (c == 0) {
        int ok = data_var == 1 && bss_var == 2 && heap[0] == 3 && stack_var == 4 && big[PG] == 1 && ro[0] == 5 &&
                 shared[0] == 6 && untouched[0] == 0 && tls_var == 7;
        tls_var = 17;
        data_var = 11;
        bss_var = 12;
        heap[0] = 13;
        heap[1023] = 13;
        stack_var = 14;
        for (size_t i = 0; i < BIG; i += PG) big[i] = 0xEE;
        for (size_t i = 0; i < 16 * PG; i += PG) untouched[i] = 0xDD;
        int mp = mprotect(ro, PG, PROT_READ | PROT_WRITE) == 0;
        if (mp) ro[0] = 15;
        shared[0] = 16;
        shared[3 * PG + 5] = 17;
        ok = ok && data_var == 11 && bss_var == 12 && heap[0] == 13 && stack_var == 14 && big[PG] == 0xEE &&
             untouched[PG] == 0xDD && ro[0] == 15 && tls_var == 17;
        shm[0] = ok;
        shm[1] = mp;
        _exit(0);
    }
    check("child exits 0", reap(c) == 0);
    check("child saw the parent's values at fork, and its own writes", shm[0] == 1);
    check("child could mprotect its copy writable", shm[1] == 1);
    check("parent's data variable unchanged", data_var == 1);
    check("parent's bss variable unchanged", bss_var == 2);
    check("parent's heap unchanged", heap[0] == 3 && heap[1023] == 3);
    check("parent's stack unchanged", stack_var == 4);
    check("parent's thread-local variable unchanged", tls_var == 7);
    int big_ok = 1;
    for (size_t i = 0; i < BIG; i += PG)
        if (big[i] != (unsigned char)(i / PG)) big_ok = 0;
    check("parent's 8 MiB private mapping unchanged in every page", big_ok);
    int untouched_ok = 1;
    for (size_t i = 0; i < 16 * PG; i++)
        if (untouched[i] != 0) untouched_ok = 0;
    check("pages never touched before fork still zero in the parent", untouched_ok);
    check("parent's read-only page unchanged", ro[0] == 5);
    check("MAP_SHARED page written by the child is seen by the parent", shared[0] == 16 && shared[3 * PG + 5] == 17);

    /* 2. The parent writes after fork; the child keeps the old values. */
    data_var = 100;
    shm[2] = 0;
    shm[3] = 0;
    c = fork_flushed();
    if (c == 0) {
        wait_for(&shm[2], 1); /* the parent has written */
        shm[3] = (data_var == 100 && big[0] == 0 && untouched[5] == 0) ? 2 : 1;
        _exit(0);
    }
    data_var = 200;
    big[0] = 0x77;
    untouched[5] = 0x55;
    set_and_wake(&shm[2], 1);
    reap(c);
    check("child keeps values from fork time after the parent writes", shm[3] == 2);

    /* 3. MADV_DONTNEED and munmap in the child do not reach the parent. */
    big[2 * PG] = 0x42;
    c = fork_flushed();
    if (c == 0) {
        madvise(big, BIG, MADV_DONTNEED);
        int zero = big[2 * PG] == 0;
        munmap(untouched, 16 * PG);
        _exit(zero ? 0 : 1);
    }
    check("child: MADV_DONTNEED on its private copy reads zero", reap(c) == 0);
    check("parent: its copy survives the child's MADV_DONTNEED", big[2 * PG] == 0x42);
    check("parent: its mapping survives the child's munmap", untouched[5] == 0x55);

    /* 4. Shared memory across three generations. */
    shared[100] = 0;
    c = fork_flushed();
    if (c == 0) {
        pid_t g = fork();
        if (g == 0) {
            shared[100] = 33;
            _exit(0);
        }
        _exit(reap(g) == 0 && shared[100] == 33 ? 0 : 1);
    }
    check("grandchild's write to shared memory is seen by the child", reap(c) == 0);
    check("... and by the grandparent", shared[100] == 33);

    /* 5. Many forks of the same pages: each child sees its own copy. */
    int right = 0;
    for (int i = 0; i < 8; i++) {
        c = fork_flushed();
        if (c == 0) {
            int ok = big[PG] == 1;
            big[PG] = (unsigned char)(50 + i);
            _exit(ok && big[PG] == 50 + i ? 0 : 1);
        }
        if (reap(c) == 0) right++;
        big[PG]++; /* the parent writes between forks */
        big[PG]--;
    }
    check("8 successive children each saw the parent's value and wrote their own", right == 8);
    check("parent value intact after 8 children", big[PG] == 1);

    /* 6. Fork after fork, both sides writing the same pages at once: once the
     * sandbox learned which pages those are, it copies them for the child at fork;
     * every child must still see a snapshot, and the parent keep its own writes. */
    int snapshots = 0, kept = 0;
    for (int i = 0; i < 6; i++) {
        data_var = 300 + i;
        bss_var = 400 + i;
        heap[7] = 500 + i;
        big[3 * PG] = (unsigned char)(60 + i);
        shm[4] = 0;
        shm[5] = 0;
        c = fork_flushed();
        if (c == 0) {
            wait_for(&shm[4], 1); /* the parent has written */
            int ok = data_var == 300 + i && bss_var == 400 + i && heap[7] == 500 + i && big[3 * PG] == 60 + i;
            data_var = bss_var = heap[7] = -1;
            big[3 * PG] = 0xFF;
            shm[5] = ok ? 2 : 1;
            _exit(0);
        }
        data_var = 600 + i;
        bss_var = 700 + i;
        heap[7] = 800 + i;
        big[3 * PG] = (unsigned char)(90 + i);
        set_and_wake(&shm[4], 1);
        reap(c);
        snapshots += shm[5] == 2;
        kept += data_var == 600 + i && bss_var == 700 + i && heap[7] == 800 + i && big[3 * PG] == 90 + i;
    }
    check("6 children forked in a row saw the fork-time values while the parent wrote", snapshots == 6);
    check("the parent kept its own writes through 6 forks", kept == 6);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
