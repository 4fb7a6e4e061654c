// /proc/sysvipc/shm, sem and msg: Linux's headings, and a line per object with
// its key, id, mode, sizes, pids, owners and times in Linux's columns. Each line
// expected is printed with Linux's format from what *_STAT says of the object;
// the lines are found by id, so the host's other objects do not matter.
#define _GNU_SOURCE
#include "check.h"
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

// The file's first line matches `header`, and some line equals `want`.
static void check_file(const char *what, const char *path, const char *header, const char *want) {
    FILE *f = fopen(path, "r");
    char line[512], msg[128];
    int header_ok = 0, found = 0;
    if (f) {
        header_ok = fgets(line, sizeof line, f) && strcmp(line, header) == 0;
        while (fgets(line, sizeof line, f))
            if (strcmp(line, want) == 0) found = 1;
        fclose(f);
    }
    snprintf(msg, sizeof msg, "%s heading", path);
    check(msg, header_ok);
    snprintf(msg, sizeof msg, "%s line of %s", path, what);
    check(msg, found);
    if (!found) printf("  wanted: %s", want);
}

// The segment's line; its rss is all its pages, which the program writes to
// (Linux counts those written, the sandbox may hold more of a segment touched).
static void shm_line(char *buf, size_t n, int id) {
    struct shmid_ds ds;
    if (shmctl(id, IPC_STAT, &ds) < 0) exit(2);
    snprintf(buf, n, "%10d %10d  %4o %21lu %5u %5u  %5lu %5u %5u %5u %5u %10llu %10llu %10llu %21lu %21lu\n",
             ds.shm_perm.__key, id, ds.shm_perm.mode, (unsigned long)ds.shm_segsz, ds.shm_cpid, ds.shm_lpid, (unsigned long)ds.shm_nattch,
             ds.shm_perm.uid, ds.shm_perm.gid, ds.shm_perm.cuid, ds.shm_perm.cgid, (unsigned long long)ds.shm_atime,
             (unsigned long long)ds.shm_dtime, (unsigned long long)ds.shm_ctime, (ds.shm_segsz + 4095) / 4096 * 4096, 0ul);
}

static const char SHM_HEAD[] = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n";
static const char SEM_HEAD[] = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n";
static const char MSG_HEAD[] = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n";

int main(void) {
    char want[512];
    // Keys unlikely to be in use on the host; one reads as negative.
    key_t k1 = 0x72766901 + (getpid() & 0xff) * 16, k2 = (key_t)0xf2766902 + (getpid() & 0xff) * 16;

    int shm = shmget(k1, 10000, IPC_CREAT | IPC_EXCL | 0640);
    char *p = shmat(shm, NULL, 0);
    check("shmget and shmat", shm >= 0 && p != (void *)-1);
    p[0] = p[4096] = p[8192] = 1;
    shm_line(want, sizeof want, shm);
    check_file("an attached segment", "/proc/sysvipc/shm", SHM_HEAD, want);
    // A removed segment still attached: key 0, SHM_DEST in its mode.
    int shm2 = shmget(k2, 8192, IPC_CREAT | IPC_EXCL | 0600);
    char *p2 = shmat(shm2, NULL, 0);
    p2[0] = p2[4096] = 1;
    shmctl(shm2, IPC_RMID, NULL);
    shm_line(want, sizeof want, shm2);
    check_file("a removed segment", "/proc/sysvipc/shm", SHM_HEAD, want);
    shmdt(p2);
    shmdt(p);
    shm_line(want, sizeof want, shm);
    check_file("a detached segment", "/proc/sysvipc/shm", SHM_HEAD, want);
    shmctl(shm, IPC_RMID, NULL);

    int sem = semget(k2, 3, IPC_CREAT | IPC_EXCL | 0604);
    check("semget", sem >= 0);
    struct sembuf op = {1, 2, 0};
    semop(sem, &op, 1);
    struct semid_ds sds;
    semctl(sem, 0, IPC_STAT, &sds);
    snprintf(want, sizeof want, "%10d %10d  %4o %10u %5u %5u %5u %5u %10llu %10llu\n", sds.sem_perm.__key, sem, sds.sem_perm.mode, (unsigned)sds.sem_nsems,
             sds.sem_perm.uid, sds.sem_perm.gid, sds.sem_perm.cuid, sds.sem_perm.cgid, (unsigned long long)sds.sem_otime, (unsigned long long)sds.sem_ctime);
    check_file("a semaphore set", "/proc/sysvipc/sem", SEM_HEAD, want);
    semctl(sem, 0, IPC_RMID);

    int msq = msgget(k1, IPC_CREAT | IPC_EXCL | 0620);
    check("msgget", msq >= 0);
    struct { long type; char text[8]; } m = {1, "hello"};
    msgsnd(msq, &m, 5, 0);
    msgsnd(msq, &m, 7, 0);
    msgrcv(msq, &m, sizeof m.text, 0, 0);
    struct msqid_ds mds;
    msgctl(msq, IPC_STAT, &mds);
    snprintf(want, sizeof want, "%10d %10d  %4o  %10lu %10lu %5u %5u %5u %5u %5u %5u %10llu %10llu %10llu\n", mds.msg_perm.__key, msq, mds.msg_perm.mode,
             (unsigned long)mds.__msg_cbytes, (unsigned long)mds.msg_qnum, mds.msg_lspid, mds.msg_lrpid, mds.msg_perm.uid, mds.msg_perm.gid,
             mds.msg_perm.cuid, mds.msg_perm.cgid, (unsigned long long)mds.msg_stime, (unsigned long long)mds.msg_rtime, (unsigned long long)mds.msg_ctime);
    check_file("a message queue", "/proc/sysvipc/msg", MSG_HEAD, want);
    check("message queue holds 7 bytes in 1 message", mds.__msg_cbytes == 7 && mds.msg_qnum == 1);
    msgctl(msq, IPC_RMID, NULL);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
