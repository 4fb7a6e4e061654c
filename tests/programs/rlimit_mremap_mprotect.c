// The limits that bound a growing address space hold for mremap, mprotect and
// shmat as for mmap (Linux's may_expand_vm, asked under mmap_lock):
//   - mremap growing a mapping past RLIMIT_AS is ENOMEM, in place or moving,
//     to a fixed address (unmapped first, as Linux does) or with
//     MREMAP_DONTUNMAP (which adds the whole length); within it, it grows
//   - mremap growing a data mapping past RLIMIT_DATA is ENOMEM; a read-only
//     one is no data and grows
//   - mprotect making a private read-only mapping writable counts it as data:
//     ENOMEM past RLIMIT_DATA, the mapping unchanged (still read-only in
//     /proc/self/maps, a write to it faults); a shared one is no data; and, as
//     Linux's mprotect_fixup, it is not refused when RLIMIT_AS would refuse the
//     pages too
//   - shmat of a segment larger than the room under RLIMIT_AS is ENOMEM, a
//     smaller one attaches
// Each part runs in a child of its own, with limits set from its VmSize/VmData.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_status.h"
#include "check.h"

#define MiB (1024ul * 1024ul)

static void limit(int resource, unsigned long cur) {
    struct rlimit rl = {cur, RLIM_INFINITY};
    if (setrlimit(resource, &rl) != 0) check("setrlimit", 0);
}

static const char *res(void *p) { return p == MAP_FAILED ? errname(errno) : "ok"; }

// `len` bytes mapped with room for `room` more after them, which stays free as
// long as nothing is mapped after it (the holes of those mapped before are too
// small for it).
static char *map_with_room(unsigned long len, unsigned long room, int prot) {
    char *p = mmap(NULL, len + room, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return p;
    munmap(p + len, room);
    return p;
}

// The permissions /proc/self/maps shows for the mapping holding `p` ("r--p").
static const char *maps_perms(void *p) {
    static char perms[8];
    char line[512];
    unsigned long s, e, a = (unsigned long)p;
    strcpy(perms, "none");
    FILE *f = fopen("/proc/self/maps", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "%lx-%lx %4s", &s, &e, perms) == 3 && s <= a && a < e) break;
        else strcpy(perms, "none");
    if (f) fclose(f);
    return perms;
}

// How a child that writes a byte at `p` ends: "exited" or the signal's name.
static const char *write_in_child(char *p) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        *(volatile char *)p = 1;
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    if (WIFSIGNALED(st)) return sigabbrev_np(WTERMSIG(st));
    return "exited";
}

static void address_space(void) {
    char *q = mmap(NULL, 16 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    // A free range of 64 MiB to move to.
    char *dst = mmap(NULL, 64 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(dst, 64 * MiB);
    char *p = map_with_room(8 * MiB, 64 * MiB, PROT_READ | PROT_WRITE);
    limit(RLIMIT_AS, (unsigned long)status_kb("VmSize") * 1024 + 16 * MiB);
    printf("RLIMIT_AS 16 MiB above VmSize\n");
    printf("  mremap 8 -> 40 MiB in place: %s\n", res(mremap(p, 8 * MiB, 40 * MiB, 0)));
    printf("  mremap 8 -> 40 MiB, may move: %s\n", res(mremap(p, 8 * MiB, 40 * MiB, MREMAP_MAYMOVE)));
    printf("  mremap 8 -> 40 MiB to a free fixed address: %s\n", res(mremap(p, 8 * MiB, 40 * MiB, MREMAP_MAYMOVE | MREMAP_FIXED, dst)));
    printf("  mremap 8 -> 24 MiB in place: %s\n", res(mremap(p, 8 * MiB, 24 * MiB, 0)));
    printf("  then 24 -> 32 MiB, may move: %s\n", res(mremap(p, 24 * MiB, 32 * MiB, MREMAP_MAYMOVE)));
    printf("  16 MiB, MREMAP_DONTUNMAP with nothing left: %s\n", res(mremap(q, 16 * MiB, 16 * MiB, MREMAP_MAYMOVE | MREMAP_DONTUNMAP)));
    munmap(p, 24 * MiB);
    printf("  after munmap of 24 MiB, the 16 MiB MREMAP_DONTUNMAP: %s\n", res(mremap(q, 16 * MiB, 16 * MiB, MREMAP_MAYMOVE | MREMAP_DONTUNMAP)));
}

static void data(void) {
    char *big = mmap(NULL, 64 * MiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *shared = mmap(NULL, 64 * MiB, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *ro = map_with_room(8 * MiB, 64 * MiB, PROT_READ);
    char *p = map_with_room(8 * MiB, 80 * MiB, PROT_READ | PROT_WRITE);
    limit(RLIMIT_DATA, (unsigned long)status_kb("VmData") * 1024 + 16 * MiB);
    printf("RLIMIT_DATA 16 MiB above VmData\n");
    printf("  mremap of data 8 -> 40 MiB in place: %s\n", res(mremap(p, 8 * MiB, 40 * MiB, 0)));
    printf("  mremap of data 8 -> 40 MiB, may move: %s\n", res(mremap(p, 8 * MiB, 40 * MiB, MREMAP_MAYMOVE)));
    printf("  mremap of data 8 -> 16 MiB in place: %s\n", res(mremap(p, 8 * MiB, 16 * MiB, 0)));
    printf("  mremap of read-only 8 -> 40 MiB in place: %s\n", res(mremap(ro, 8 * MiB, 40 * MiB, 0)));
    int r = mprotect(big, 64 * MiB, PROT_READ | PROT_WRITE);
    printf("  mprotect of private read-only 64 MiB to read-write: %s\n", r == 0 ? "ok" : errname(errno));
    printf("  then maps shows it %s, a write to it: %s\n", maps_perms(big), write_in_child(big));
    r = mprotect(big, 8 * MiB, PROT_READ | PROT_WRITE);
    printf("  mprotect of 8 MiB of it to read-write: %s\n", r == 0 ? "ok" : errname(errno));
    printf("  then maps shows it %s, a write to it: %s\n", maps_perms(big), write_in_child(big));
    r = mprotect(shared, 64 * MiB, PROT_READ | PROT_WRITE);
    printf("  mprotect of shared read-only 64 MiB to read-write: %s\n", r == 0 ? "ok" : errname(errno));
    // Pages RLIMIT_AS would refuse as well: not refused (may_expand_vm for the
    // old flags fails too).
    limit(RLIMIT_AS, (unsigned long)status_kb("VmSize") * 1024 + 16 * MiB);
    r = mprotect(big + 8 * MiB, 56 * MiB, PROT_READ | PROT_WRITE);
    printf("  with RLIMIT_AS 16 MiB above VmSize, mprotect of the other 56 MiB: %s\n", r == 0 ? "ok" : errname(errno));
}

static void shared_memory(void) {
    int small = shmget(IPC_PRIVATE, 8 * MiB, IPC_CREAT | 0600);
    int large = shmget(IPC_PRIVATE, 32 * MiB, IPC_CREAT | 0600);
    check("shmget", small >= 0 && large >= 0);
    limit(RLIMIT_AS, (unsigned long)status_kb("VmSize") * 1024 + 16 * MiB);
    printf("RLIMIT_AS 16 MiB above VmSize\n");
    void *a = shmat(large, NULL, 0);
    printf("  shmat of 32 MiB: %s\n", a == (void *)-1 ? errname(errno) : "ok");
    void *b = shmat(small, NULL, 0);
    printf("  shmat of 8 MiB: %s\n", b == (void *)-1 ? errname(errno) : "ok");
    void *c = shmat(small, NULL, 0);
    printf("  shmat of it again: %s\n", c == (void *)-1 ? errname(errno) : "ok");
    void *d = shmat(small, NULL, 0);
    printf("  and a third time: %s\n", d == (void *)-1 ? errname(errno) : "ok");
    shmctl(small, IPC_RMID, NULL);
    shmctl(large, IPC_RMID, NULL);
}

static void in_child(void (*part)(void)) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        part();
        fflush(stdout);
        _exit(failures != 0);
    }
    int st;
    waitpid(c, &st, 0);
    check("the part ran", WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void) {
    in_child(address_space);
    in_child(data);
    in_child(shared_memory);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
