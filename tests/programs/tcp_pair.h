// A connected loopback TCP pair, as the TCP tests build it: a listener on
// 127.0.0.1 port 0, a client connected to it, the accepted end; the listener
// is closed again. fd[0] is the client, fd[1] the accepted end. A step that
// fails prints a FAIL line, as check does, and ends the program: what
// follows would test nothing. fill_until_eagain fills a connection.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void tcp_pair_failed(const char *step) {
    printf("tcp_pair: %s: FAIL (%s)\n", step, strerror(errno));
    exit(1);
}

static void tcp_pair(int fd[2]) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) tcp_pair_failed("socket");
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0) tcp_pair_failed("bind");
    if (listen(l, 1) != 0) tcp_pair_failed("listen");
    if (getsockname(l, (struct sockaddr *)&a, &al) != 0) tcp_pair_failed("getsockname");
    fd[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (fd[0] < 0) tcp_pair_failed("socket");
    if (connect(fd[0], (struct sockaddr *)&a, sizeof a) != 0) tcp_pair_failed("connect");
    fd[1] = accept(l, NULL, NULL);
    if (fd[1] < 0) tcp_pair_failed("accept");
    close(l);
}

// Writes to the stream `fd` without blocking until the connection is full:
// the bytes it took, or -1 if a write failed otherwise than with EAGAIN.
static long fill_until_eagain(int fd) {
    static char chunk[1 << 16];
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    long n = 0;
    ssize_t r;
    while ((r = write(fd, chunk, sizeof chunk)) > 0)
        n += r;
    int e = errno;
    fcntl(fd, F_SETFL, fl);
    return r < 0 && e == EAGAIN ? n : -1;
}
