// A loopback TCP connection's states as it ends, in TCP_INFO's tcpi_state and
// /proc/net/tcp's st column: the end that shuts writing first is in
// FIN_WAIT (FIN_WAIT1 until its peer's delayed ACK, then FIN_WAIT2: either
// is shown as FIN_WAIT), its peer in CLOSE_WAIT; once both FINs are in,
// both sockets are CLOSE, the first has a TIME_WAIT row without inode in
// their place and the second none. A socket closed first leaves a row
// without inode (FIN_WAIT, then TIME_WAIT once its peer closes); closing
// with bytes unread resets, without one; shutdown(SHUT_RD) alone sends
// nothing.
#define _GNU_SOURCE
#include "check.h"
#include "tcp_pair.h"
#include <netinet/tcp.h>

static const char *name(int st) {
    switch (st) {
    case 1: return "ESTABLISHED";
    case 4: case 5: return "FIN_WAIT";
    case 6: return "TIME_WAIT";
    case 7: return "CLOSE";
    case 8: return "CLOSE_WAIT";
    case 9: return "LAST_ACK";
    case -1: return "(none)";
    default: return "?";
    }
}

static int info_state(int fd) {
    struct tcp_info i;
    socklen_t l = sizeof i;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &i, &l) != 0) return -2;
    return i.tcpi_state;
}

static unsigned port(int fd) {
    struct sockaddr_in a;
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    return ntohs(a.sin_port);
}

// The ends' ports, fixed when the pair is made (a closed end still has a row).
static unsigned pa, pb;

// The st column of the row from local port `lp` to `rp`, or -1; whether it
// has an inode in *ino.
static int row_state(unsigned lp, unsigned rp, int *ino) {
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    int found = -1;
    *ino = 0;
    if (!f || !fgets(line, sizeof line, f)) return -3;
    while (fgets(line, sizeof line, f)) {
        unsigned l, r, st;
        unsigned long inode;
        if (sscanf(line, "%*d: %*8s:%x %*8s:%x %x %*x:%*x %*x:%*x %*x %*u %*d %lu", &l, &r, &st, &inode) == 4 && l == lp && r == rp) {
            found = st;
            *ino = inode != 0;
        }
    }
    fclose(f);
    return found;
}

static void show(const char *step, int a, int b) {
    int ia, ib;
    int ra = row_state(pa, pb, &ia), rb = row_state(pb, pa, &ib);
    printf("%s: A %s, B %s; rows: A %s%s, B %s%s\n", step, a >= 0 ? name(info_state(a)) : "closed", b >= 0 ? name(info_state(b)) : "closed",
           name(ra), ra >= 0 && !ia ? " (no inode)" : "", name(rb), rb >= 0 && !ib ? " (no inode)" : "");
}

static void pair(int *a, int *b) {
    int fd[2];
    tcp_pair(fd);
    *a = fd[0], *b = fd[1];
    pa = port(*a), pb = port(*b);
}

int main(void) {
    int a, b;
    char c;

    puts("-- A shuts writing first, then B");
    pair(&a, &b);
    show("connected", a, b);
    check("A shutdown(SHUT_WR)", shutdown(a, SHUT_WR) == 0);
    show("A shut writing", a, b);
    check("B reads EOF", read(b, &c, 1) == 0);
    show("B read EOF", a, b);
    check("B shutdown(SHUT_WR)", shutdown(b, SHUT_WR) == 0);
    show("B shut writing", a, b);
    check("A reads EOF", read(a, &c, 1) == 0);
    show("A read EOF", a, b);
    close(a), a = -1;
    show("A closed", a, b);
    close(b), b = -1;
    show("B closed", a, b);

    puts("-- A (the client) closes first, then B");
    pair(&a, &b);
    close(a), a = -1;
    show("A closed", a, b);
    check("B reads EOF", read(b, &c, 1) == 0);
    close(b), b = -1;
    show("B closed", a, b);

    puts("-- B (the accepted end) closes first, then A");
    pair(&a, &b);
    close(b), b = -1;
    show("B closed", a, b);
    close(a), a = -1;
    show("A closed", a, b);

    puts("-- both shut writing, neither reads");
    pair(&a, &b);
    check("A shutdown(SHUT_RDWR)", shutdown(a, SHUT_RDWR) == 0);
    check("B shutdown(SHUT_WR)", shutdown(b, SHUT_WR) == 0);
    show("both shut", a, b);
    close(a), a = -1;
    close(b), b = -1;
    show("both closed", a, b);

    puts("-- SHUT_RD alone, then B shuts both ways");
    pair(&a, &b);
    check("A shutdown(SHUT_RD)", shutdown(a, SHUT_RD) == 0);
    show("A shut reading", a, b);
    check("B shutdown(SHUT_RDWR)", shutdown(b, SHUT_RDWR) == 0);
    show("B shut both", a, b);
    close(b), b = -1;
    close(a), a = -1;
    show("both closed", a, b);

    puts("-- B closes with bytes unread: a reset");
    pair(&a, &b);
    check("A sends", write(a, "x", 1) == 1);
    close(b), b = -1;
    show("B closed", a, b);
    close(a), a = -1;

    if (failures == 0) puts("all ok");
    return failures != 0;
}
