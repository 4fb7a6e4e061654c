// A loopback TCP connection's states as it ends, in TCP_INFO's tcpi_state,
// /proc/net/tcp's st column and sock_diag's idiag_state: the end that shuts
// writing first is in FIN_WAIT (FIN_WAIT1 until its peer's delayed ACK, then
// FIN_WAIT2: either is shown as FIN_WAIT where the timer decides), its peer
// in CLOSE_WAIT; once both FINs are in, both sockets are CLOSE, the first has
// a TIME_WAIT row without inode in their place and the second none. A socket
// closed first leaves a row without inode (FIN_WAIT, then TIME_WAIT once its
// peer closes); closing with bytes unread resets, without one;
// shutdown(SHUT_RD) alone sends nothing. A FIN queued behind bytes the peer's
// full window has no room for is not acknowledged until the reader drains
// them: FIN_WAIT1, or LAST_ACK if the peer's FIN had come, or CLOSING if the
// peer's FIN comes meanwhile, for a closed socket's row too; with the peer's
// FIN in, its CLOSE_WAIT counts one more to read in /proc/net/tcp and
// sock_diag (not in FIONREAD) until a read reaches it.
#define _GNU_SOURCE
#include "check.h"
#include "tcp_pair.h"
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>

// A state's name; FIN_WAIT1 and FIN_WAIT2 are told apart only if `exact`.
static const char *name(int st, int exact) {
    switch (st) {
    case 1: return "ESTABLISHED";
    case 4: return exact ? "FIN_WAIT1" : "FIN_WAIT";
    case 5: return exact ? "FIN_WAIT2" : "FIN_WAIT";
    case 6: return "TIME_WAIT";
    case 7: return "CLOSE";
    case 8: return "CLOSE_WAIT";
    case 9: return "LAST_ACK";
    case 11: return "CLOSING";
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

// What /proc/net/tcp or sock_diag shows of the connection from one port to another.
struct row {
    int st; // -1: no row
    unsigned rx;
    int ino;
};

static struct row proc_row(unsigned lp, unsigned rp) {
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    struct row found = {-1, 0, 0};
    if (!f || !fgets(line, sizeof line, f)) return (struct row){-3, 0, 0};
    while (fgets(line, sizeof line, f)) {
        unsigned l, r, st, rx;
        unsigned long inode;
        if (sscanf(line, "%*d: %*8s:%x %*8s:%x %x %*x:%x %*x:%*x %*x %*u %*d %lu", &l, &r, &st, &rx, &inode) == 5 && l == lp && r == rp)
            found = (struct row){st, rx, inode != 0};
    }
    fclose(f);
    return found;
}

static struct row diag_row(unsigned lp, unsigned rp) {
    static char buf[1 << 16];
    struct {
        struct nlmsghdr h;
        struct inet_diag_req_v2 r;
    } req = {
        .h = {.nlmsg_len = sizeof req, .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
        .r = {.sdiag_family = AF_INET, .sdiag_protocol = IPPROTO_TCP, .idiag_states = ~0u},
    };
    struct row found = {-1, 0, 0};
    int fd = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG);
    if (fd < 0 || send(fd, &req, sizeof req, 0) != sizeof req) return (struct row){-3, 0, 0};
    for (int done = 0; !done;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
                done = 1;
                break;
            }
            struct inet_diag_msg *m = NLMSG_DATA(h);
            if (ntohs(m->id.idiag_sport) == lp && ntohs(m->id.idiag_dport) == rp)
                found = (struct row){m->idiag_state, m->idiag_rqueue, m->idiag_inode != 0};
        }
    }
    close(fd);
    return found;
}

// A count of bytes to read: a full window's varies with the buffers.
static void show_count(const char *what, long n) {
    if (n < 100)
        printf(" %s %ld", what, n);
    else
        printf(" %s many", what);
}

static void show_row(const char *what, struct row r, int exact) {
    printf(", %s %s", what, name(r.st, exact));
    if (r.st < 0) return;
    if (!r.ino) printf(" (no inode)");
    show_count("rx", r.rx);
}

// One end: TCP_INFO's state and FIONREAD (unless closed), its rows.
static void show_end(const char *label, int fd, unsigned lp, unsigned rp, int exact) {
    int inq = -1;
    if (fd >= 0) {
        ioctl(fd, SIOCINQ, &inq);
        printf("%s %s", label, name(info_state(fd), exact));
        show_count("inq", inq);
    } else {
        printf("%s closed", label);
    }
    show_row("row", proc_row(lp, rp), exact);
    show_row("diag", diag_row(lp, rp), exact);
}

static void report(const char *step, int a, int b, int exact) {
    printf("%s: ", step);
    show_end("A", a, pa, pb, exact);
    show_end("; B", b, pb, pa, exact);
    printf("\n");
}

// Where FIN_WAIT1 may become FIN_WAIT2 by the peer's delayed-ACK timer.
static void show(const char *step, int a, int b) {
    report(step, a, b, 0);
}

// Where no timer decides.
static void show_exact(const char *step, int a, int b) {
    report(step, a, b, 1);
}

static void pair(int *a, int *b) {
    int fd[2];
    tcp_pair(fd);
    *a = fd[0], *b = fd[1];
    pa = port(*a), pb = port(*b);
}

// A's bytes wait for room in B's window.
static void full_pair(int *a, int *b) {
    pair(a, b);
    check("A fills the connection", fill_until_eagain(*a) > 0);
}

// Reads to EOF.
static void drain(int fd) {
    static char buf[1 << 16];
    while (read(fd, buf, sizeof buf) > 0)
        ;
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

    puts("-- A shuts writing behind bytes B's window has no room for");
    full_pair(&a, &b);
    check("A shutdown(SHUT_WR)", shutdown(a, SHUT_WR) == 0);
    show_exact("A shut writing", a, b);
    drain(b);
    show("B drained", a, b);
    check("B sends a byte back", write(b, "x", 1) == 1 && read(a, &c, 1) == 1);
    show_exact("A read it", a, b);
    check("B shutdown(SHUT_WR)", shutdown(b, SHUT_WR) == 0);
    show_exact("B shut writing", a, b);
    close(a), a = -1;
    close(b), b = -1;

    puts("-- B shuts writing, then A behind bytes B's window has no room for");
    full_pair(&a, &b);
    check("B shutdown(SHUT_WR)", shutdown(b, SHUT_WR) == 0);
    show("B shut writing", a, b);
    check("A shutdown(SHUT_WR)", shutdown(a, SHUT_WR) == 0);
    show("A shut writing", a, b);
    drain(b);
    show_exact("B drained", a, b);
    close(a), a = -1;
    close(b), b = -1;
    show_exact("both closed", a, b);

    puts("-- A shuts writing behind bytes B's window has no room for, then B");
    full_pair(&a, &b);
    check("A shutdown(SHUT_WR)", shutdown(a, SHUT_WR) == 0);
    check("B shutdown(SHUT_WR)", shutdown(b, SHUT_WR) == 0);
    show_exact("both shut writing", a, b);
    drain(b);
    show_exact("B drained", a, b);
    close(a), a = -1;
    close(b), b = -1;
    show_exact("both closed", a, b);

    puts("-- A closes behind bytes B's window has no room for");
    full_pair(&a, &b);
    close(a), a = -1;
    show_exact("A closed", a, b);
    drain(b);
    show("B drained", a, b);
    close(b), b = -1;
    show_exact("B closed", a, b);

    puts("-- B shuts writing, then A closes behind bytes B's window has no room for");
    full_pair(&a, &b);
    check("B shutdown(SHUT_WR)", shutdown(b, SHUT_WR) == 0);
    close(a), a = -1;
    show("A closed", a, b);
    drain(b);
    show_exact("B drained", a, b);
    close(b), b = -1;

    puts("-- A shuts writing behind bytes B's window has no room for, B too, A closes");
    full_pair(&a, &b);
    check("A shutdown(SHUT_WR)", shutdown(a, SHUT_WR) == 0);
    check("B shutdown(SHUT_WR)", shutdown(b, SHUT_WR) == 0);
    close(a), a = -1;
    show_exact("A closed", a, b);
    drain(b);
    show_exact("B drained", a, b);
    close(b), b = -1;

    puts("-- A closes behind bytes B's window has no room for, B closes with them unread");
    full_pair(&a, &b);
    close(a), a = -1;
    close(b), b = -1;
    show_exact("both closed", a, b);

    puts("-- CLOSE_WAIT's FIN to read");
    char buf[8];
    pair(&a, &b);
    check("A sends 3 bytes", write(a, "abc", 3) == 3);
    check("A shutdown(SHUT_WR)", shutdown(a, SHUT_WR) == 0);
    show("A shut writing", a, b);
    check("B peeks at them", recv(b, buf, sizeof buf, MSG_PEEK) == 3);
    show("B peeked", a, b);
    check("B reads 2", read(b, buf, 2) == 2);
    show("B read 2", a, b);
    check("B reads the last", read(b, buf, 1) == 1);
    show("B read the last", a, b);
    check("B reads EOF", read(b, buf, 1) == 0);
    show("B read EOF", a, b);
    close(a), a = -1;
    close(b), b = -1;
    pair(&a, &b);
    check("A shutdown(SHUT_WR)", shutdown(a, SHUT_WR) == 0);
    show("A shut writing, nothing sent", a, b);
    check("B peeks EOF", recv(b, buf, sizeof buf, MSG_PEEK) == 0);
    show("B peeked EOF", a, b);
    check("B reads EOF", read(b, buf, 1) == 0);
    show("B read EOF", a, b);
    close(a), a = -1;
    close(b), b = -1;

    if (failures == 0) puts("all ok");
    return failures != 0;
}
