/* System V semaphores: sets by key and IPC_PRIVATE, values, semop's all-or-nothing
 * operations, sleeping until they can go (woken by another process, a timeout, a
 * signal or the set's removal), SEM_UNDO at exit, and the errors. Compared with the
 * same run natively (which makes real sets on the host, all removed at the end); ids
 * and pids are never printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

union semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
};

static const char *res(long r) {
    static char buf[32];
    if (r >= 0) return "ok";
    snprintf(buf, sizeof buf, "%s", strerrorname_np(errno));
    return buf;
}

static int op(int id, unsigned short num, short delta, short flags) {
    struct sembuf b = {num, delta, flags};
    return semop(id, &b, 1);
}

static void values(const char *when, int id) {
    unsigned short v[3];
    union semun u = {.array = v};
    semctl(id, 0, GETALL, u);
    printf("%s: %d %d %d\n", when, v[0], v[1], v[2]);
}

/* Waits (yielding) until `n` processes sleep on semaphore `num` of `id` in the way asked. */
static void until_sleeping(int id, int num, int cmd, int n) {
    while (semctl(id, num, cmd) != n) sched_yield();
}

static void on_usr1(int sig) {
    (void)sig;
}

static int rc_of(pid_t c) {
    int st;
    waitpid(c, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int id = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    printf("semget: %s\n", res(id));
    values("fresh", id);
    union semun u = {.val = 5};
    printf("SETVAL 5: %s\n", res(semctl(id, 0, SETVAL, u)));
    printf("GETVAL: %d\n", semctl(id, 0, GETVAL));
    unsigned short all[3] = {1, 2, 3};
    u.array = all;
    printf("SETALL: %s\n", res(semctl(id, 0, SETALL, u)));
    values("after SETALL", id);

    printf("sem 0 - 1: %s\n", res(op(id, 0, -1, 0)));
    printf("sem 0 - 1 again, IPC_NOWAIT: %s\n", res(op(id, 0, -1, IPC_NOWAIT)));
    printf("wait for sem 0 to be zero: %s\n", res(op(id, 0, 0, 0)));
    printf("wait for sem 1 to be zero, IPC_NOWAIT: %s\n", res(op(id, 1, 0, IPC_NOWAIT)));
    struct sembuf two[2] = {{1, -1, IPC_NOWAIT}, {2, -5, IPC_NOWAIT}};
    printf("sem 1 - 1 and sem 2 - 5 together: %s\n", res(semop(id, two, 2)));
    values("nothing applied", id);
    struct sembuf same[2] = {{2, 1, 0}, {2, -4, IPC_NOWAIT}};
    printf("sem 2 + 1 then - 4 in one call: %s\n", res(semop(id, same, 2)));
    values("both applied", id);
    printf("sem 1 + 32767: %s\n", res(op(id, 1, 32767, 0)));

    /* A sleeper woken by another process's increment. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) _exit(op(id, 2, -3, 0) == 0 ? 0 : 1);
    until_sleeping(id, 2, GETNCNT, 1);
    printf("a child sleeps on sem 2: GETNCNT 1\n");
    printf("sem 2 + 3: %s\n", res(op(id, 2, 3, 0)));
    printf("the child got it: exit %d\n", rc_of(c));
    printf("GETPID is the child's: %d\n", semctl(id, 2, GETPID) == c);
    values("after the child", id);

    /* Waiting for zero, woken when it gets there. */
    c = fork();
    if (c == 0) _exit(op(id, 1, 0, 0) == 0 ? 0 : 1);
    until_sleeping(id, 1, GETZCNT, 1);
    printf("a child waits for sem 1 to be zero: GETZCNT 1\n");
    printf("sem 1 - 2: %s\n", res(op(id, 1, -2, 0)));
    printf("the child saw zero: exit %d\n", rc_of(c));

    /* A timeout, and a signal. */
    struct sembuf take = {0, -1, 0};
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    printf("semtimedop, 10 ms: %s\n", res(semtimedop(id, &take, 1, &ten_ms)));
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    c = fork();
    if (c == 0) {
        int r = op(id, 0, -1, 0);
        _exit(r == -1 && errno == EINTR ? 0 : 1);
    }
    until_sleeping(id, 0, GETNCNT, 1);
    kill(c, SIGUSR1);
    printf("a signal interrupts semop even with SA_RESTART: exit %d\n", rc_of(c));

    /* SEM_UNDO: a child's increment is undone when it exits. */
    c = fork();
    if (c == 0) {
        op(id, 0, 4, SEM_UNDO);
        _exit(semctl(id, 0, GETVAL) == 4 ? 0 : 1);
    }
    printf("the child saw its SEM_UNDO increment: exit %d\n", rc_of(c));
    printf("undone at its exit: GETVAL %d\n", semctl(id, 0, GETVAL));

    /* Errors. */
    printf("no operations: %s\n", res(semop(id, &take, 0)));
    static struct sembuf many[501];
    printf("501 operations: %s\n", res(semop(id, many, 501)));
    printf("semaphore 3 of 3: %s\n", res(op(id, 3, 1, 0)));
    u.val = 40000;
    printf("SETVAL 40000: %s\n", res(semctl(id, 0, SETVAL, u)));
    printf("GETVAL of semaphore 7: %s\n", res(semctl(id, 7, GETVAL)));
    printf("bad command: %s\n", res(semctl(id, 0, 99)));
    printf("no semaphores: %s\n", res(semget(IPC_PRIVATE, 0, IPC_CREAT | 0600)));
    printf("32001 semaphores: %s\n", res(semget(IPC_PRIVATE, 32001, IPC_CREAT | 0600)));
    key_t key = 0x53450000 | (getpid() & 0xffff);
    int kid = semget(key, 2, IPC_CREAT | 0640);
    printf("semget by key: %s, again %d\n", res(kid), semget(key, 2, 0) == kid);
    printf("more semaphores than it has: %s\n", res(semget(key, 3, 0)));
    printf("IPC_CREAT|IPC_EXCL: %s\n", res(semget(key, 2, IPC_CREAT | IPC_EXCL | 0640)));
    printf("a key nobody made: %s\n", res(semget(key ^ 0x8000, 1, 0)));
    struct semid_ds ds;
    u.buf = &ds;
    semctl(kid, 0, IPC_STAT, u);
    printf("IPC_STAT: nsems %lu, mode %o, ours %d\n", (unsigned long)ds.sem_nsems, ds.sem_perm.mode, ds.sem_perm.cuid == geteuid());
    ds.sem_perm.mode = 0400;
    printf("IPC_SET mode 0400: %s\n", res(semctl(kid, 0, IPC_SET, u)));
    semctl(kid, 0, IPC_STAT, u);
    printf("mode now %o\n", ds.sem_perm.mode);
    printf("IPC_RMID by key: %s\n", res(semctl(kid, 0, IPC_RMID)));
    printf("the key is free again: %s\n", res(semget(key, 1, 0)));

    /* Another user, and removal under a sleeper. */
    c = fork();
    if (c == 0) {
        if (setuid(65534) != 0) _exit(9);
        int a = op(id, 0, 1, IPC_NOWAIT) == -1 && errno == EACCES;
        int b = semctl(id, 0, IPC_RMID) == -1 && errno == EPERM;
        _exit(a && b ? 0 : 1);
    }
    printf("another user: EACCES to change, EPERM to remove: exit %d\n", rc_of(c));
    c = fork();
    if (c == 0) {
        int r = op(id, 0, -1, 0);
        _exit(r == -1 && errno == EIDRM ? 0 : 1);
    }
    until_sleeping(id, 0, GETNCNT, 1);
    printf("IPC_RMID under a sleeper: %s\n", res(semctl(id, 0, IPC_RMID)));
    printf("the sleeper got EIDRM: exit %d\n", rc_of(c));
    printf("the set is gone: %s\n", res(semctl(id, 0, GETVAL)));
    printf("all ok\n");
    return 0;
}
