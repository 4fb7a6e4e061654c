// The lowest free descriptor, with many open: after close and close_range, dup2 into a
// hole, F_DUPFD above a minimum, socketpair, and EMFILE in a full table of 16000.
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MANY 16000

int main(void) {
    struct rlimit rl = {MANY + 64, MANY + 64};
    check("setrlimit NOFILE", setrlimit(RLIMIT_NOFILE, &rl) == 0);
    // Only the standard streams stay open, whatever the runner passed down.
    syscall(SYS_close_range, 3, ~0U, 0);
    int base = open("/dev/null", O_RDONLY);
    int fds[100];
    for (int i = 0; i < 100; i++) fds[i] = dup(base);
    int consecutive = 1;
    for (int i = 0; i < 100; i++) consecutive &= fds[i] == base + 1 + i;
    check("dup gives consecutive descriptors", consecutive);
    close(fds[50]);
    close(fds[20]);
    check("dup after two closes takes the lower hole", dup(base) == fds[20]);
    check("then the higher one", dup(base) == fds[50]);
    check("then past the end", dup(base) == fds[99] + 1);
    close(fds[99] + 1);
    check("F_DUPFD from a minimum above the holes", fcntl(base, F_DUPFD, fds[10]) == fds[99] + 1);
    close(fds[30]);
    check("F_DUPFD from a minimum past a hole skips it", fcntl(base, F_DUPFD, fds[40]) == fds[99] + 2);
    check("dup still finds the hole below that minimum", dup(base) == fds[30]);
    close(fds[60]);
    check("dup2 into the hole", dup2(base, fds[60]) == fds[60]);
    check("dup after dup2 filled the hole goes past the end", dup(base) == fds[99] + 3);
    check("close_range of ten", syscall(SYS_close_range, fds[5], fds[14], 0) == 0);
    int low = 1;
    for (int i = 5; i < 15; i++) low &= dup(base) == fds[i];
    check("the ten come back lowest first", low);
    int sv[2];
    close(fds[70]);
    close(fds[71]);
    check("socketpair takes the two holes", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 && sv[0] == fds[70] && sv[1] == fds[71]);
    // Fill the table to the limit, then free one low descriptor.
    int n = 0, last = -1, fd;
    while ((fd = dup(base)) >= 0) {
        last = fd;
        n++;
    }
    int e = errno;
    printf("filled with %d more, the last %d, then %s\n", n, last, errname(e));
    check("EMFILE at the limit", e == EMFILE && last == MANY + 63);
    close(fds[3]);
    check("a closed low descriptor is found in a full table", dup(base) == fds[3]);
    check("and then EMFILE again", dup(base) == -1 && errno == EMFILE);
    check("close_range of nearly all", syscall(SYS_close_range, base + 1, ~0U, 0) == 0);
    check("then dup gives base + 1", dup(base) == base + 1);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
