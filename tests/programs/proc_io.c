// /proc/self/io counts the bytes and calls of read and write (all forms, and
// sendfile as one of each), of every thread, exited ones included;
// /proc/self/task/[tid]/io one thread's.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

struct io {
    long rchar, wchar, syscr, syscw, len;
};

/* One read of the whole file: that read counts from the next snapshot on. */
static struct io snap(const char *path) {
    char buf[1024];
    struct io s = {0};
    int fd = open(path, O_RDONLY);
    long n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    s.len = n;
    char *p;
    if ((p = strstr(buf, "rchar: "))) s.rchar = atol(p + 7);
    if ((p = strstr(buf, "wchar: "))) s.wchar = atol(p + 7);
    if ((p = strstr(buf, "syscr: "))) s.syscr = atol(p + 7);
    if ((p = strstr(buf, "syscw: "))) s.syscw = atol(p + 7);
    return s;
}

static void *writer(void *arg) {
    int fd = *(int *)arg;
    char b[50] = {0};
    write(fd, b, sizeof b);
    write(fd, b, sizeof b);
    return NULL;
}

int main(void) {
    int null = open("/dev/null", O_WRONLY), zero = open("/dev/zero", O_RDONLY);
    char buf[100] = {0};
    struct io a = snap("/proc/self/io");
    write(null, buf, 100);
    write(null, buf, 100);
    struct iovec iov[2] = {{buf, 30}, {buf + 30, 70}};
    writev(null, iov, 2);
    read(zero, buf, 10);
    pread(zero, buf, 10, 0);
    read(-1, buf, 10); /* no file: not counted */
    struct io b = snap("/proc/self/io");
    printf("wchar +%ld, syscw +%ld\n", b.wchar - a.wchar, b.syscw - a.syscw);
    printf("rchar +%ld (less the snapshot read), syscr +%ld\n", b.rchar - a.rchar - a.len, b.syscr - a.syscr);

    pthread_t t;
    pthread_create(&t, NULL, writer, &null);
    pthread_join(t, NULL);
    struct io c = snap("/proc/self/io");
    printf("after an exited thread's writes: wchar +%ld, syscw +%ld\n", c.wchar - b.wchar, c.syscw - b.syscw);

    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/io", gettid());
    struct io m1 = snap(path);
    write(null, buf, 7);
    struct io m2 = snap(path);
    printf("this thread's own: wchar +%ld, syscw +%ld\n", m2.wchar - m1.wchar, m2.syscw - m1.syscw);

    int f = open("/tmp/rvisor-proc-io-test", O_RDWR | O_CREAT | O_TRUNC, 0644);
    char data[64] = {0};
    pwrite(f, data, sizeof data, 0);
    struct io s1 = snap("/proc/self/io");
    off_t off = 0;
    long sent = sendfile(null, f, &off, 64);
    struct io s2 = snap("/proc/self/io");
    printf("sendfile of %ld bytes: rchar +%ld (less the snapshot read), wchar +%ld, syscr +%ld, syscw +%ld\n", sent, s2.rchar - s1.rchar - s1.len,
           s2.wchar - s1.wchar, s2.syscr - s1.syscr, s2.syscw - s1.syscw);
    close(f);
    unlink("/tmp/rvisor-proc-io-test");
    return 0;
}
