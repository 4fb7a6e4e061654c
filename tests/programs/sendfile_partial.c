// sendfile into a non-blocking socket that fills up: the call returns the bytes it moved,
// not EAGAIN, and the offset (or the file position, without one) moves by exactly that.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#define SIZE (4 << 20)

// Reads everything the socket holds and checks it is the file's bytes from `from`.
static long drain(int s, const unsigned char *file, long from) {
    static unsigned char buf[65536];
    long got = 0;
    int same = 1;
    for (;;) {
        ssize_t r = recv(s, buf, sizeof buf, MSG_DONTWAIT);
        if (r <= 0) break;
        same &= memcmp(buf, file + from + got, r) == 0;
        got += r;
    }
    return same ? got : -1;
}

int main(void) {
    unsigned char *file = malloc(SIZE);
    for (long i = 0; i < SIZE; i++) file[i] = (unsigned char)(i * 7 + i / 251);
    char path[] = "/tmp/sendfile_partialXXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    check("write the file", write(fd, file, SIZE) == SIZE);
    int sv[2];
    check("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    off_t off = 0;
    ssize_t n = sendfile(sv[0], fd, &off, SIZE);
    printf("with an offset: moved some, not all: %d, EAGAIN not returned: %d\n", n > 0 && n < SIZE, n >= 0);
    check("the offset moved by what was returned", off == n);
    check("the reader gets exactly that, the file's bytes", drain(sv[1], file, 0) == n);
    ssize_t again = sendfile(sv[0], fd, &off, SIZE);
    check("a second call goes on from there", again > 0 && drain(sv[1], file, n) == again);
    lseek(fd, 0, SEEK_SET);
    n = sendfile(sv[0], fd, NULL, SIZE);
    check("without an offset: some moved", n > 0 && n < SIZE);
    check("the file position moved by what was returned", lseek(fd, 0, SEEK_CUR) == n);
    check("the reader gets exactly that", drain(sv[1], file, 0) == n);
    n = sendfile(sv[0], fd, NULL, SIZE);
    check("a second call goes on from the position", n > 0 && drain(sv[1], file, lseek(fd, 0, SEEK_CUR) - n) == n);
    // Full: the next call moves nothing and says EAGAIN.
    while (sendfile(sv[0], fd, NULL, SIZE) > 0) {}
    errno = 0;
    n = sendfile(sv[0], fd, NULL, SIZE);
    printf("full socket: %zd %s\n", n, errname(errno));
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
