/* System V message queues: typed messages in order, selection by type (first, exact,
 * MSG_EXCEPT, lowest up to), truncation, MSG_COPY, a full queue that blocks its sender
 * until a receiver makes room, a receiver woken by a sender or by the queue's removal,
 * and the errors. Compared with the same run natively (which makes real queues on the
 * host, all removed at the end); ids and pids are never printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

struct message {
    long mtype;
    char text[64];
};

static const char *res(long r) {
    static char buf[32];
    if (r >= 0) return "ok";
    snprintf(buf, sizeof buf, "%s", strerrorname_np(errno));
    return buf;
}

static int send(int id, long type, const char *text, int flags) {
    struct message m = {type, {0}};
    strncpy(m.text, text, sizeof m.text - 1);
    return msgsnd(id, &m, strlen(text) + 1, flags);
}

static void receive(const char *what, int id, long type, size_t size, int flags) {
    struct message m = {0, {0}};
    ssize_t n = msgrcv(id, &m, size, type, flags);
    if (n < 0) printf("%s: %s\n", what, strerrorname_np(errno));
    else printf("%s: type %ld, %zd bytes, \"%.*s\"\n", what, m.mtype, n, (int)n, m.text);
}

static void counts(const char *when, int id) {
    struct msqid_ds ds;
    msgctl(id, IPC_STAT, &ds);
    printf("%s: %lu messages, %lu bytes, limit %lu\n", when, (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes, (unsigned long)ds.msg_qbytes);
}

/* Waits (yielding) until process `pid` sleeps, as /proc/PID/stat says. */
static void until_asleep(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    for (;;) {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        buf[n] = 0;
        char *end = strrchr(buf, ')');
        if (end && end[1] == ' ' && end[2] == 'S') return;
        sched_yield();
    }
}

static int rc_of(pid_t c) {
    int st;
    waitpid(c, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    printf("msgget: %s\n", res(id));
    send(id, 3, "three", 0);
    send(id, 1, "one", 0);
    send(id, 2, "two", 0);
    send(id, 1, "one again", 0);
    send(id, 5, "five", 0);
    counts("five sent", id);
    receive("type 0 (the first)", id, 0, 64, 0);
    receive("type 2", id, 2, 64, 0);
    receive("lowest type up to 5", id, -5, 64, 0);
    receive("not type 1 (MSG_EXCEPT)", id, 1, 64, MSG_EXCEPT);
    counts("one left", id);
    receive("MSG_COPY of the first", id, 0, 64, MSG_COPY | IPC_NOWAIT);
    receive("MSG_COPY past the end", id, 5, 64, MSG_COPY | IPC_NOWAIT);
    receive("too small a buffer", id, 0, 3, 0);
    receive("MSG_NOERROR truncates", id, 0, 3, MSG_NOERROR);
    receive("empty, IPC_NOWAIT", id, 0, 64, IPC_NOWAIT);

    /* A receiver sleeping until a sender comes. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        struct message m;
        ssize_t n = msgrcv(id, &m, sizeof m.text, 7, 0);
        _exit(n == 6 && !strcmp(m.text, "hello") ? 0 : 1);
    }
    /* A message of another type does not end its wait. */
    until_asleep(c);
    send(id, 8, "not for it", 0);
    send(id, 7, "hello", 0);
    printf("the sleeping receiver got its message: exit %d\n", rc_of(c));
    receive("the other is still there", id, 0, 64, IPC_NOWAIT);

    /* A full queue blocks its sender until there is room. */
    struct msqid_ds ds;
    msgctl(id, IPC_STAT, &ds);
    ds.msg_qbytes = 64;
    printf("IPC_SET limit 64 bytes: %s\n", res(msgctl(id, IPC_SET, &ds)));
    char big[60];
    memset(big, 'x', sizeof big - 1);
    big[59] = 0;
    printf("60 bytes: %s\n", res(send(id, 1, big, 0)));
    printf("10 more, IPC_NOWAIT: %s\n", res(send(id, 1, "123456789", IPC_NOWAIT)));
    c = fork();
    if (c == 0) _exit(send(id, 2, "123456789", 0) == 0 ? 0 : 1);
    receive("make room", id, 1, 64, 0);
    printf("the blocked sender went on: exit %d\n", rc_of(c));
    receive("its message", id, 2, 64, 0);

    /* Removal under a sleeping receiver. */
    c = fork();
    if (c == 0) {
        struct message m;
        ssize_t n = msgrcv(id, &m, sizeof m.text, 0, 0);
        _exit(n < 0 && errno == EIDRM ? 0 : 1);
    }
    until_asleep(c);
    printf("IPC_RMID: %s\n", res(msgctl(id, IPC_RMID, NULL)));
    printf("the sleeping receiver got EIDRM: exit %d\n", rc_of(c));

    /* Errors. */
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct message m = {0, "zero"};
    printf("type 0: %s\n", res(msgsnd(q, &m, 5, 0)));
    m.mtype = 1;
    printf("8193 bytes: %s\n", res(msgsnd(q, &m, 8193, 0)));
    printf("negative size: %s\n", res(msgrcv(q, &m, -1, 0, IPC_NOWAIT)));
    printf("MSG_COPY without IPC_NOWAIT: %s\n", res(msgrcv(q, &m, 64, 0, MSG_COPY)));
    printf("a removed queue: %s\n", res(msgsnd(id, &m, 5, 0)));
    printf("bad command: %s\n", res(msgctl(q, 99, NULL)));
    key_t key = 0x4d530000 | (getpid() & 0xffff);
    int kid = msgget(key, IPC_CREAT | 0640);
    printf("msgget by key: %s, again %d\n", res(kid), msgget(key, 0) == kid);
    printf("IPC_CREAT|IPC_EXCL: %s\n", res(msgget(key, IPC_CREAT | IPC_EXCL | 0640)));
    printf("a key nobody made: %s\n", res(msgget(key ^ 0x8000, 0)));
    c = fork();
    if (c == 0) {
        if (setuid(65534) != 0) _exit(9);
        int a = send(q, 1, "x", IPC_NOWAIT) == -1 && errno == EACCES;
        int b = msgctl(q, IPC_RMID, NULL) == -1 && errno == EPERM;
        _exit(a && b ? 0 : 1);
    }
    printf("another user: EACCES to send, EPERM to remove: exit %d\n", rc_of(c));
    msgctl(kid, IPC_RMID, NULL);
    msgctl(q, IPC_RMID, NULL);
    printf("all ok\n");
    return 0;
}
