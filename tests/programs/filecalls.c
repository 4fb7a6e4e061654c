// File calls on a /tmp file: preadv/pwritev(2), sendfile (to a file, a socket and
// /dev/null) and copy_file_range,
// fallocate, close_range, the generic FIOCLEX/FIONBIO ioctls, and the advice and
// sync calls (posix_fadvise, readahead, sync_file_range) with their errors.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

int main(void) {
    char path[] = "/tmp/rvisor-filecalls-XXXXXX";
    int fd = mkstemp(path);
    char a[] = "hello ", b[] = "world";
    struct iovec w[2] = {{a, 6}, {b, 5}};
    printf("pwritev = %zd\n", pwritev(fd, w, 2, 0));
    char x[6] = {0}, y[6] = {0};
    struct iovec r[2] = {{x, 5}, {y, 5}};
    printf("preadv = %zd [%s][%s]\n", preadv(fd, r, 2, 1), x, y);
    printf("pwritev2 at -1 (position) = %zd, position now %ld\n", pwritev2(fd, w, 1, -1, 0), (long)lseek(fd, 0, SEEK_CUR));
    char path2[] = "/tmp/rvisor-filecalls2-XXXXXX";
    int fd2 = mkstemp(path2);
    off_t off = 0;
    printf("sendfile = %zd, offset %ld\n", sendfile(fd2, fd, &off, 100), (long)off);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    off = 0;
    long to_socket = sendfile(sv[0], fd, &off, 5);
    char got[8] = {0};
    long n_got = recv(sv[1], got, sizeof got - 1, MSG_DONTWAIT);
    printf("sendfile to a socket = %ld, the peer reads %ld bytes [%s]\n", to_socket, n_got, got);
    int null = open("/dev/null", O_WRONLY);
    off = 0;
    printf("sendfile to /dev/null = %zd\n", sendfile(null, fd, &off, 5));
    close(null);
    close(sv[0]);
    close(sv[1]);
    loff_t in = 6, out = 100;
    printf("copy_file_range = %zd\n", copy_file_range(fd, &in, fd2, &out, 5, 0));
    struct stat st;
    fstat(fd2, &st);
    printf("size after copy_file_range at 100: %ld\n", (long)st.st_size);
    printf("fallocate = %d\n", fallocate(fd2, 0, 0, 8192));
    fstat(fd2, &st);
    printf("size after fallocate: %ld\n", (long)st.st_size);
    printf("FIOCLEX = %d, FD_CLOEXEC set: %d\n", ioctl(fd, FIOCLEX), (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    int on = 1;
    printf("FIONBIO = %d, O_NONBLOCK set: %d\n", ioctl(fd, FIONBIO, &on), (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    int d1 = dup(fd), d2 = dup(fd);
    printf("close_range = %ld\n", syscall(SYS_close_range, d1, d2, 0));
    printf("closed: %d %d\n", fcntl(d1, F_GETFD) == -1 && errno == EBADF, fcntl(d2, F_GETFD) == -1 && errno == EBADF);
    printf("posix_fadvise SEQUENTIAL = %d\n", posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL));
    printf("posix_fadvise bad advice = %d\n", posix_fadvise(fd, 0, 0, 99));
    int p[2];
    pipe(p);
    printf("posix_fadvise on a pipe = %d (ESPIPE %d)\n", posix_fadvise(p[0], 0, 0, 0), ESPIPE);
    printf("posix_fadvise on a closed fd = %d (EBADF %d)\n", posix_fadvise(-1, 0, 0, 0), EBADF);
    ssize_t ra = readahead(fd, 0, 4096);
    printf("readahead = %zd\n", ra);
    ra = readahead(p[0], 0, 4096);
    printf("readahead on a pipe = %zd %s\n", ra, strerrorname_np(errno));
    int sr = sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    printf("sync_file_range = %d\n", sr);
    sr = sync_file_range(fd, 0, 0, 8);
    printf("sync_file_range with bad flags = %d %s\n", sr, strerrorname_np(errno));
    sr = sync_file_range(p[1], 0, 0, 0);
    printf("sync_file_range on a pipe = %d %s\n", sr, strerrorname_np(errno));
    unlink(path);
    unlink(path2);
    return 0;
}
