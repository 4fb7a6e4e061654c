// SO_RCVLOWAT, SO_SNDLOWAT, SIOCINQ, SIOCOUTQ and MSG_ERRQUEUE on a TCP
// connection to a server beyond the sandbox (argv[1], port argv[2]), which
// answers each line "N" with N bytes (sandbox_network.rs): poll reports
// POLLIN once the mark's bytes came, a blocking read waits for them (having
// taken what was there, it wakes once the mark's bytes are queued again, as
// Linux's tcp_data_ready), what was answered was acknowledged (SIOCOUTQ and
// SIOCOUTQNSD 0), and the error queue is empty.
#define _GNU_SOURCE
#include "check.h"
#include "sockopt.h"
#include "timing.h"
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
static char buf[4096];

// A reader thread: recv(fd, 100) into `got`.
static int fd; static ssize_t got; static pid_t tid; static int done;
static void *reader(void *a) { (void)a; __atomic_store_n(&tid, gettid(), __ATOMIC_SEQ_CST); got = recv(fd, buf, 100, 0); __atomic_store_n(&done, 1, __ATOMIC_SEQ_CST); return NULL; }
// Asks the server for `n` bytes.
static void ask(int s, int n) { char l[16]; int k = snprintf(l, sizeof l, "%d\n", n); send(s, l, k, 0); }
// Waits (without blocking) until `n` bytes are queued.
static void wait_inq(int s, int n) { for (int i = 0; i < 100000000 && ioctl_int(s, SIOCINQ) < n; i++) sched_yield(); }
// poll(POLLIN) for `ms` milliseconds: the events, 0 if none.
static int pin(int s, int ms) { struct pollfd p = {.fd = s, .events = POLLIN}; return poll(&p, 1, ms) == 1 ? p.revents : 0; }
int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    check("connect", connect(s, (struct sockaddr *)&a, sizeof a) == 0);
    int one = 1; setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    check("SO_SNDLOWAT reads 1", get(s, SO_SNDLOWAT) == 1);
    check("and cannot be set", setsockopt(s, SOL_SOCKET, SO_SNDLOWAT, &one, sizeof one) == -1 && errno == ENOPROTOOPT);
    ask(s, 4);
    check("4 bytes come", pin(s, 10000) == POLLIN && ioctl_int(s, SIOCINQ) == 4);
    set(s, SO_RCVLOWAT, 10);
    check("SO_RCVLOWAT reads back", get(s, SO_RCVLOWAT) == 10);
    check("4 of 10 do not poll readable", pin(s, 0) == 0);
    check("a non-blocking peek takes them", recv(s, buf, 100, MSG_DONTWAIT | MSG_PEEK) == 4);
    ask(s, 6);
    check("10 of 10 poll readable", pin(s, 10000) == POLLIN && ioctl_int(s, SIOCINQ) == 10);
    check("and read", recv(s, buf, 100, 0) == 10);
    ask(s, 4);
    wait_inq(s, 4);
    fd = s;
    pthread_t th; pthread_create(&th, NULL, reader, NULL);
    int blocked = 0;
    for (;;) { if (__atomic_load_n(&done, __ATOMIC_SEQ_CST)) break; pid_t t = __atomic_load_n(&tid, __ATOMIC_SEQ_CST); if (t && task_state(getpid(), t) == 'S') { blocked = 1; break; } sched_yield(); }
    check("a blocking read waits for 10", blocked);
    ask(s, 12);
    pthread_join(th, NULL);
    check("and gets them all", got == 16);
    check("what it sent was acknowledged with the answer", ioctl_int(s, SIOCOUTQ) == 0 && ioctl_int(s, SIOCOUTQNSD) == 0);
    check("MSG_ERRQUEUE: EAGAIN", recv(s, buf, 100, MSG_ERRQUEUE) == -1 && errno == EAGAIN);
    set(s, SO_RCVLOWAT, 1);
    ask(s, 3);
    check("MSG_WAITALL waits for its length", recv(s, buf, 3, MSG_WAITALL) == 3);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
