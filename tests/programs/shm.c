/* System V shared memory: segments by key and IPC_PRIVATE, attached at chosen or
 * kernel-chosen addresses, shared with a forked child, read-only attachments, the
 * attachment count, removal while attached, and the errors. Compared with the same run
 * natively (which makes real segments on the host, all removed at the end); ids,
 * addresses and times are never printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *res(long r) {
    static char buf[32];
    if (r >= 0) return "ok";
    snprintf(buf, sizeof buf, "%s", strerrorname_np(errno));
    return buf;
}

static void stat_line(const char *when, int id) {
    struct shmid_ds ds;
    if (shmctl(id, IPC_STAT, &ds) != 0) {
        printf("%s: IPC_STAT %s\n", when, strerrorname_np(errno));
        return;
    }
    printf("%s: size %zu, nattch %lu, mode %o, creator is us %d, key %s\n", when, ds.shm_segsz, (unsigned long)ds.shm_nattch,
           ds.shm_perm.mode, ds.shm_cpid == getpid() && ds.shm_perm.cuid == geteuid(), ds.shm_perm.__key ? "set" : "0");
}

/* Runs `fn(id, p)` in a child and says how it ended. */
static void in_child(const char *what, void (*fn)(int, char *), int id, char *p) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        fn(id, p);
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    if (WIFSIGNALED(st)) printf("%s: child killed by signal %d\n", what, WTERMSIG(st));
}

static void child_writes(int id, char *p) {
    stat_line("in the child", id);
    strcpy(p, "written by the child");
}

static void child_writes_read_only(int id, char *p) {
    (void)p;
    char *ro = shmat(id, NULL, SHM_RDONLY);
    printf("read-only attach: %s, reads \"%s\"\n", res(ro == (void *)-1 ? -1 : 0), ro);
    ro[0] = 'X';
    printf("wrote through a read-only attachment\n");
}

static void child_without_rights(int id, char *p) {
    (void)p;
    if (setuid(65534) != 0) printf("setuid failed\n");
    printf("another user attaches: %s\n", res(shmat(id, NULL, 0) == (void *)-1 ? -1 : 0));
    printf("another user removes: %s\n", res(shmctl(id, IPC_RMID, NULL)));
    struct shmid_ds ds;
    printf("another user stats: %s\n", res(shmctl(id, IPC_STAT, &ds)));
}

static void child_attaches_and_exits(int id, char *p) {
    (void)p;
    shmat(id, NULL, 0);
    stat_line("a child attached once more", id);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int id = shmget(IPC_PRIVATE, 10000, IPC_CREAT | 0600);
    printf("shmget IPC_PRIVATE: %s\n", res(id));
    char *p = shmat(id, NULL, 0);
    printf("shmat: %s, page aligned %d\n", res(p == (void *)-1 ? -1 : 0), ((uintptr_t)p & 4095) == 0);
    printf("fresh memory is zero: %d\n", p[0] == 0 && p[9999] == 0);
    stat_line("attached", id);

    in_child("fork", child_writes, id, p);
    printf("the parent reads \"%s\"\n", p);
    stat_line("child gone", id);

    char *q = shmat(id, NULL, 0);
    printf("second attachment: %s, another address %d, same memory %d\n", res(q == (void *)-1 ? -1 : 0), q != p, strcmp(q, p) == 0);
    stat_line("attached twice", id);
    printf("shmdt the second: %s\n", res(shmdt(q)));
    stat_line("once again", id);
    in_child("read-only", child_writes_read_only, id, p);
    in_child("exit", child_attaches_and_exits, id, p);
    stat_line("after the child's exit", id);

    /* Addresses. */
    char *hint = p + 1;
    printf("unaligned address: %s\n", res(shmat(id, hint, 0) == (void *)-1 ? -1 : 0));
    printf("an occupied address: %s\n", res(shmat(id, p, 0) == (void *)-1 ? -1 : 0));
    char *again = shmat(id, p, SHM_REMAP);
    printf("the same address with SHM_REMAP: %s, same place %d\n", res(again == (void *)-1 ? -1 : 0), again == p);
    printf("shmdt of an address with nothing attached: %s\n", res(shmdt(p + 4 * 4096)));
    printf("shmdt unaligned: %s\n", res(shmdt(p + 1)));

    /* Keys. */
    key_t key = 0x52560000 | (getpid() & 0xffff);
    int kid = shmget(key, 4096, IPC_CREAT | 0640);
    printf("shmget by key: %s\n", res(kid));
    printf("again, same id: %d\n", shmget(key, 4096, 0) == kid);
    printf("a smaller size finds it: %d\n", shmget(key, 100, 0) == kid);
    printf("IPC_CREAT|IPC_EXCL: %s\n", res(shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0640)));
    printf("bigger than the segment: %s\n", res(shmget(key, 8192, 0)));
    printf("a key nobody made: %s\n", res(shmget(key ^ 0x8000, 4096, 0)));
    printf("size 0: %s\n", res(shmget(IPC_PRIVATE, 0, IPC_CREAT | 0600)));
    stat_line("by key", kid);
    struct shmid_ds set;
    shmctl(kid, IPC_STAT, &set);
    set.shm_perm.mode = 0400;
    printf("IPC_SET mode 0400: %s\n", res(shmctl(kid, IPC_SET, &set)));
    stat_line("after IPC_SET", kid);
    printf("IPC_RMID by key: %s\n", res(shmctl(kid, IPC_RMID, NULL)));
    printf("the key is free again: %s\n", res(shmget(key, 4096, 0)));

    /* Permissions, and removal while attached. */
    in_child("no rights", child_without_rights, id, p);
    printf("IPC_RMID while attached: %s\n", res(shmctl(id, IPC_RMID, NULL)));
    stat_line("removed, still attached", id);
    strcpy(p, "still usable");
    printf("the memory: \"%s\"\n", p);
    printf("shmdt: %s\n", res(shmdt(p)));
    stat_line("after the last detach", id);
    printf("bad id: %s\n", res(shmctl(-1, IPC_STAT, NULL)));
    printf("bad command: %s\n", res(shmctl(id, 99, NULL)));
    struct shminfo info;
    printf("IPC_INFO: %s\n", res(shmctl(0, IPC_INFO, (struct shmid_ds *)&info)));
    printf("all ok\n");
    return 0;
}
