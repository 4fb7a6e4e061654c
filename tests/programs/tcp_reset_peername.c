// A connection reset by its peer (SO_LINGER 0 close) is closed (Linux's TCP_CLOSE):
// getpeername is ENOTCONN, while what arrived before the reset can still be read,
// then the reset is reported. (CPython's ssl checks getpeername to see that a peer
// closed before the TLS handshake: test_ssl.TestPreHandshakeClose.)
#define _GNU_SOURCE
#include "check.h"
#include "tcp_pair.h"
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    int fd[2];
    tcp_pair(fd);
    int c = fd[0], s = fd[1];
    struct sockaddr_in p;
    socklen_t pl = sizeof p;
    check("getpeername while connected", getpeername(s, (struct sockaddr *)&p, &pl) == 0);

    check("send", send(c, "hello", 5, 0) == 5);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(c);
    struct pollfd pf = {.fd = s, .events = POLLIN};
    poll(&pf, 1, 5000);
    printf("poll after the reset: %s%s%s\n", pf.revents & POLLIN ? "IN " : "", pf.revents & POLLERR ? "ERR " : "", pf.revents & POLLHUP ? "HUP" : "");

    pl = sizeof p;
    int r = getpeername(s, (struct sockaddr *)&p, &pl);
    check("getpeername after the reset is ENOTCONN", r == -1 && errno == ENOTCONN);
    char buf[16];
    ssize_t n = recv(s, buf, 1, MSG_DONTWAIT);
    check("what came before the reset is read", n == 1 && buf[0] == 'h');
    n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    check("to its end", n == 4);
    n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    printf("then: %zd %s\n", n, errname(n < 0 ? errno : 0));
    n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    printf("then: %zd %s\n", n, errname(n < 0 ? errno : 0));
    pl = sizeof p;
    r = getpeername(s, (struct sockaddr *)&p, &pl);
    check("getpeername stays ENOTCONN", r == -1 && errno == ENOTCONN);
    close(s);

    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
