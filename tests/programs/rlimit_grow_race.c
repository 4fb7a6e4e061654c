// The limits hold against threads growing the address space at once: with room
// for 64 MiB more, one thread grows its memory by 64 MiB (mremap in place under
// RLIMIT_AS, mprotect of a private read-only mapping to writable under
// RLIMIT_DATA, shmat under RLIMIT_AS) while another mmaps 64 MiB, round after
// round, and exactly one of the two succeeds every time (the limit is checked
// as the address space changes, not before). Only the outcome is printed.
#define _GNU_SOURCE
#include "proc_status.h"
#include "check.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/shm.h>

#define MiB (1024ul * 1024ul)
#define SIZE (64 * MiB)
#define ROUNDS 300

// The growth under test: done (0 or an errno) and undone.
struct race {
    const char *name;
    int resource;
    int (*grow)(void);
    void (*undo)(void);
};

static char *base;   // mremap's mapping, with SIZE free after it
static char *ro;     // mprotect's mapping
static int segment;  // shmat's segment
static void *attached;
static void *hint;   // where the other thread maps, away from `base`'s room

static int grow_mremap(void) { return mremap(base, 8 * MiB, 8 * MiB + SIZE, 0) == MAP_FAILED ? errno : 0; }
static void undo_mremap(void) { mremap(base, 8 * MiB + SIZE, 8 * MiB, 0); }
static int grow_mprotect(void) { return mprotect(ro, SIZE, PROT_READ | PROT_WRITE) ? errno : 0; }
static void undo_mprotect(void) { mprotect(ro, SIZE, PROT_READ); }
static int grow_shmat(void) {
    attached = shmat(segment, NULL, 0);
    return attached == (void *)-1 ? errno : 0;
}
static void undo_shmat(void) { shmdt(attached); }

static const struct race races[] = {
    {"mremap in place, RLIMIT_AS", RLIMIT_AS, grow_mremap, undo_mremap},
    {"mprotect to writable, RLIMIT_DATA", RLIMIT_DATA, grow_mprotect, undo_mprotect},
    {"shmat, RLIMIT_AS", RLIMIT_AS, grow_shmat, undo_shmat},
};

// The round the workers may start, which they spin for (to make their calls as
// close together as can be), and the barrier the round ends at.
static _Atomic int round_started = -1;
static pthread_barrier_t done;
static const struct race *current;
static int err[2];
static void *mapped;

static void *worker(void *arg) {
    long i = (long)arg;
    for (int r = 0; r < ROUNDS * 3; r++) {
        while (round_started < r)
            ;
        if (i == 0) {
            err[0] = current->grow();
        } else {
            mapped = mmap(hint, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            err[1] = mapped == MAP_FAILED ? errno : 0;
        }
        pthread_barrier_wait(&done);
    }
    return NULL;
}

int main(void) {
    segment = shmget(IPC_PRIVATE, SIZE, IPC_CREAT | 0600);
    check("shmget", segment >= 0);
    ro = mmap(NULL, SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_t th[2];
    pthread_barrier_init(&done, NULL, 3);
    for (long i = 0; i < 2; i++) pthread_create(&th[i], NULL, worker, (void *)i);
    // mremap's 8 MiB and its room, a page that keeps the room apart, and the
    // other thread's place: the other thread's mmap cannot take the room.
    base = mmap(NULL, 8 * MiB + SIZE + 4096 + SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(base + 8 * MiB, SIZE);
    hint = base + 8 * MiB + SIZE + 4096;
    munmap(hint, SIZE);
    int r = 0;
    for (int k = 0; k < 3; k++) {
        current = &races[k];
        // Room for one more 64 MiB, with half of one to spare.
        struct rlimit rl = {(unsigned long)status_kb(current->resource == RLIMIT_AS ? "VmSize" : "VmData") * 1024 + SIZE + SIZE / 2, RLIM_INFINITY};
        check("setrlimit", setrlimit(current->resource, &rl) == 0);
        int one = 0, both = 0, none = 0, other_errors = 0;
        for (int n = 0; n < ROUNDS; n++, r++) {
            round_started = r;
            pthread_barrier_wait(&done);
            for (int i = 0; i < 2; i++)
                if (err[i] != 0 && err[i] != ENOMEM) other_errors++;
            int ok = (err[0] == 0) + (err[1] == 0);
            if (err[0] == 0) current->undo();
            if (err[1] == 0) munmap(mapped, SIZE);
            if (ok == 1) one++;
            else if (ok == 2) both++;
            else none++;
        }
        struct rlimit inf = {RLIM_INFINITY, RLIM_INFINITY};
        setrlimit(current->resource, &inf);
        printf("%s: rounds with one success: %d, both: %d, none: %d\n", current->name, one, both, none);
        check("exactly one of the two succeeds in every round", one == ROUNDS);
        check("the other fails with ENOMEM", other_errors == 0);
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    shmctl(segment, IPC_RMID, NULL);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
