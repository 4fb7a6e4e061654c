// mlock and RLIMIT_MEMLOCK, compared with Linux:
//   - mlock of part of a mapping splits it (/proc/self/maps), populates it
//     (mincore), and counts in VmLck and smaps' Locked and VmFlags "lo";
//     munlock merges it back; MLOCK_ONFAULT locks without populating;
//     MADV_DONTNEED and MADV_FREE refuse locked pages, MADV_DONTNEED_LOCKED not;
//     MAP_LOCKED and MAP_POPULATE (without MAP_NONBLOCK) populate
//   - a forked child inherits no locks (VmLck 0) but the split mappings
//   - without CAP_IPC_LOCK, RLIMIT_MEMLOCK bounds what a process locks: mlock
//     past it is ENOMEM (what is locked already counts once), mlockall of more
//     than the limit ENOMEM, mmap(MAP_LOCKED) and, after mlockall(MCL_FUTURE),
//     any mmap, brk or mremap growth past it EAGAIN (brk: the break stays);
//     a limit of 0 makes mlock and MAP_LOCKED EPERM
//   - SHM_LOCK counts a System V segment against RLIMIT_MEMLOCK per user, apart
//     from mlock (ENOMEM past it, EPERM when it is 0), shown as SHM_LOCKED in
//     shm_perm.mode; a second SHM_LOCK is free, SHM_UNLOCK and the segment's
//     removal give the pages back
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include "proc_status.h"
#include "check.h"

static long page;

static const char *res(long r) {
    return r == 0 ? "ok" : errname(errno);
}

static const char *map_res(void *p) {
    return p != MAP_FAILED ? "ok" : errname(errno);
}

static char *map(long pages, int flags) {
    return mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
}

// The mappings of /proc/self/maps that overlap [p, p + pages).
static int maps_in(char *p, long pages) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s < (uintptr_t)p + pages * page && e > (uintptr_t)p) n++;
    }
    if (f) fclose(f);
    return n;
}

// smaps of the mapping that starts at p: its Locked (kB) and whether its
// VmFlags has "lo".
static void smaps_of(char *p, long *locked, int *lo) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0;
    *locked = -1;
    *lo = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) in = s == (uintptr_t)p;
        else if (in && strncmp(line, "Locked:", 7) == 0) *locked = atol(line + 7);
        else if (in && strncmp(line, "VmFlags:", 8) == 0) *lo = strstr(line, " lo") != NULL;
    }
    if (f) fclose(f);
}

// Resident pages of [p, p + pages), by mincore.
static int resident(char *p, long pages) {
    unsigned char v[64];
    if (mincore(p, pages * page, v) != 0) return -1;
    int n = 0;
    for (long i = 0; i < pages; i++) n += v[i] & 1;
    return n;
}

static void drop_ipc_lock(void) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
    check("capset without CAP_IPC_LOCK", syscall(SYS_capset, &h, d) == 0);
}

static void set_memlock(long bytes) {
    struct rlimit rl;
    getrlimit(RLIMIT_MEMLOCK, &rl);
    rl.rlim_cur = bytes;
    check("setrlimit(RLIMIT_MEMLOCK)", setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
}

// Whether segment `id` shows SHM_LOCKED in its mode.
static int shm_locked(int id) {
    struct shmid_ds ds;
    return shmctl(id, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & SHM_LOCKED) != 0;
}

// SHM_LOCK and SHM_UNLOCK under a limit of 4 pages, without CAP_IPC_LOCK.
static void shm_lock_cases(void) {
    int a = shmget(IPC_PRIVATE, 3 * page, IPC_CREAT | 0600), b = shmget(IPC_PRIVATE, 2 * page, IPC_CREAT | 0600);
    const char *r1 = res(shmctl(a, SHM_LOCK, NULL));
    printf("limit 4 pages: SHM_LOCK of 3 pages: %s, SHM_LOCKED %d\n", r1, shm_locked(a));
    printf("SHM_LOCK of them again: %s\n", res(shmctl(a, SHM_LOCK, NULL)));
    r1 = res(shmctl(b, SHM_LOCK, NULL));
    printf("SHM_LOCK of 2 more: %s, SHM_LOCKED %d\n", r1, shm_locked(b));
    r1 = res(shmctl(a, SHM_UNLOCK, NULL));
    printf("SHM_UNLOCK of the 3: %s, SHM_LOCKED %d\n", r1, shm_locked(a));
    r1 = res(shmctl(b, SHM_LOCK, NULL));
    printf("then SHM_LOCK of the 2: %s, SHM_LOCKED %d\n", r1, shm_locked(b));
    printf("SHM_LOCK of the 3: %s\n", res(shmctl(a, SHM_LOCK, NULL)));
    shmctl(b, IPC_RMID, NULL);
    printf("after the 2's removal, SHM_LOCK of the 3: %s\n", res(shmctl(a, SHM_LOCK, NULL)));
    char *m = map(4, 0);
    printf("and mlock of 4 pages: %s\n", res(mlock(m, 4 * page)));
    munlock(m, 4 * page);
    shmctl(a, IPC_RMID, NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    page = sysconf(_SC_PAGESIZE);
    long base = status_kb("VmLck");
    printf("VmLck at start: %ld kB\n", base);

    char *p = map(8, 0);
    printf("mlock of pages 2-4 of 8: %s\n", res(mlock(p + 2 * page, 3 * page)));
    printf("mappings there: %d, VmLck %ld kB, resident pages %d (locked ones %d)\n", maps_in(p, 8), status_kb("VmLck") - base, resident(p, 8), resident(p + 2 * page, 3));
    long locked;
    int lo;
    smaps_of(p + 2 * page, &locked, &lo);
    printf("smaps of the locked part: Locked %ld kB, VmFlags lo %s\n", locked, lo ? "yes" : "no");
    smaps_of(p, &locked, &lo);
    printf("smaps of the part before: Locked %ld kB, VmFlags lo %s\n", locked, lo ? "yes" : "no");
    printf("MADV_DONTNEED of a locked page: %s\n", res(madvise(p + 2 * page, page, MADV_DONTNEED)));
    printf("MADV_FREE of a locked page: %s\n", res(madvise(p + 2 * page, page, MADV_FREE)));
    printf("MADV_DONTNEED of pages 1-2: %s\n", res(madvise(p + page, 2 * page, MADV_DONTNEED)));
    const char *r0 = res(madvise(p + 2 * page, page, MADV_DONTNEED_LOCKED));
    printf("MADV_DONTNEED_LOCKED of a locked page: %s, resident %d\n", r0, resident(p + 2 * page, 1));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        printf("child: VmLck %ld kB, mappings there %d\n", status_kb("VmLck") - base, maps_in(p, 8));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    const char *r1 = res(munlock(p + 3 * page, page));
    printf("munlock of page 3: %s, mappings there %d, VmLck %ld kB\n", r1, maps_in(p, 8), status_kb("VmLck") - base);
    r1 = res(munlock(p, 8 * page));
    printf("munlock of all 8: %s, mappings there %d, VmLck %ld kB\n", r1, maps_in(p, 8), status_kb("VmLck") - base);

    char *pop = map(4, MAP_POPULATE);
    printf("MAP_POPULATE: resident %d of 4\n", resident(pop, 4));
    pop = map(4, MAP_POPULATE | MAP_NONBLOCK);
    printf("MAP_POPULATE|MAP_NONBLOCK: resident %d of 4\n", resident(pop, 4));
    pop = map(4, MAP_LOCKED);
    printf("MAP_LOCKED: resident %d of 4, ", resident(pop, 4));
    printf("VmLck %ld kB\n", status_kb("VmLck") - base);
    munlock(pop, 4 * page);

    char *q = map(4, 0);
    r1 = res(syscall(SYS_mlock2, q, 4 * page, MLOCK_ONFAULT));
    printf("mlock2(MLOCK_ONFAULT) of 4 pages: %s, VmLck %ld kB, resident %d\n", r1, status_kb("VmLck") - base, resident(q, 4));
    printf("mlock2 with flag 2: %s\n", res(syscall(SYS_mlock2, q, page, 2)));
    munmap(q + page, page);
    printf("mlock across a hole: %s\n", res(mlock(q, 3 * page)));
    munlock(q, page);
    munlock(q + 2 * page, 2 * page);
    r1 = res(mlockall(0));
    printf("mlockall(0): %s, mlockall(MCL_ONFAULT): %s\n", r1, res(mlockall(MCL_ONFAULT)));

    drop_ipc_lock();
    set_memlock(4 * page);
    char *r = map(8, 0);
    printf("limit 4 pages, mlock of 3: %s\n", res(mlock(r, 3 * page)));
    printf("mlock of 2 more: %s\n", res(mlock(r + 3 * page, 2 * page)));
    r1 = res(mlock(r, 4 * page));
    printf("mlock of the same 3 and 1 more: %s, VmLck %ld kB\n", r1, status_kb("VmLck") - base);
    printf("mlock of 1 more: %s\n", res(mlock(r + 4 * page, page)));
    printf("mlockall(MCL_CURRENT): %s\n", res(mlockall(MCL_CURRENT)));
    printf("mmap(MAP_LOCKED) of 1 page: %s\n", map_res(map(1, MAP_LOCKED)));
    munlock(r, 8 * page);
    r1 = map_res(map(2, MAP_LOCKED));
    printf("after munlock, mmap(MAP_LOCKED) of 2 pages: %s, VmLck %ld kB\n", r1, status_kb("VmLck") - base);
    printf("mmap(MAP_LOCKED) of 3 pages: %s\n", map_res(map(3, MAP_LOCKED)));
    printf("mlockall(MCL_FUTURE): %s\n", res(mlockall(MCL_FUTURE)));
    printf("then mmap of 3 pages: %s\n", map_res(map(3, 0)));
    char *s = map(1, 0);
    printf("mmap of 1 page: %s, VmLck %ld kB\n", map_res(s), status_kb("VmLck") - base);
    printf("mremap of it to 2 pages: %s\n", map_res(mremap(s, page, 2 * page, MREMAP_MAYMOVE)));
    uintptr_t b0 = syscall(SYS_brk, 0);
    uintptr_t b1 = syscall(SYS_brk, b0 + 16 * page);
    printf("brk up 16 pages: %s\n", b1 == b0 ? "refused, the break stays" : "moved");
    r1 = res(munlockall());
    printf("munlockall: %s, VmLck %ld kB\n", r1, status_kb("VmLck") - base);
    r1 = map_res(map(3, 0));
    printf("then mmap of 3 pages: %s, VmLck %ld kB\n", r1, status_kb("VmLck") - base);
    shm_lock_cases();
    set_memlock(0);
    int seg = shmget(IPC_PRIVATE, page, IPC_CREAT | 0600);
    printf("limit 0: SHM_LOCK %s\n", res(shmctl(seg, SHM_LOCK, NULL)));
    shmctl(seg, IPC_RMID, NULL);
    r1 = res(mlock(r, page));
    const char *r2 = map_res(map(1, MAP_LOCKED));
    printf("limit 0: mlock %s, mmap(MAP_LOCKED) %s, mlockall(MCL_FUTURE) %s\n", r1, r2, res(mlockall(MCL_FUTURE)));
    printf("%d failures\n", failures);
    return failures != 0;
}
