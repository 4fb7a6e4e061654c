/* membarrier: the commands, their registrations and errors (the barrier itself is the
 * host's, on the CPUs that run stub threads). Compared with the same run natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
static const char *res(long r) { static char b[32]; if (r >= 0) snprintf(b, 32, "%ld", r); else snprintf(b, 32, "%s", strerrorname_np(errno)); return b; }
static long mb(int cmd, unsigned flags) { return syscall(SYS_membarrier, cmd, flags, 0); }
static void *idle(void *a) { (void)a; pause(); return NULL; }
int main(void) {
    long q = mb(MEMBARRIER_CMD_QUERY, 0);
    long want = MEMBARRIER_CMD_GLOBAL | MEMBARRIER_CMD_PRIVATE_EXPEDITED | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED | MEMBARRIER_CMD_GLOBAL_EXPEDITED | MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED;
    printf("QUERY has the basic commands: %d\n", (q & want) == want);
    printf("PRIVATE_EXPEDITED unregistered: %s\n", res(mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0)));
    printf("REGISTER_PRIVATE_EXPEDITED: %s\n", res(mb(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0)));
    pthread_t t; pthread_create(&t, NULL, idle, NULL);
    printf("PRIVATE_EXPEDITED: %s\n", res(mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0)));
    printf("GLOBAL: %s\n", res(mb(MEMBARRIER_CMD_GLOBAL, 0)));
    printf("GLOBAL_EXPEDITED: %s\n", res(mb(MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0)));
    printf("flags 1: %s\n", res(mb(MEMBARRIER_CMD_GLOBAL, 1)));
    printf("command 3: %s\n", res(mb(3, 0)));
    printf("SYNC_CORE unregistered: %s\n", res(mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0)));
    return 0;
}
