/* process_vm_readv and process_vm_writev between a parent and its child, as
 * debuggers and profilers use them: scattered buffers on both sides, a transfer cut
 * short by an unreadable page, and the errors. Compared with the same run natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *res(long r) {
    static char buf[32];
    if (r >= 0) snprintf(buf, sizeof buf, "%ld", r);
    else snprintf(buf, sizeof buf, "%s", strerrorname_np(errno));
    return buf;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Shared with the child before fork: where its data is, and when to check. */
    char *page = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(page, "the child's first words");
    strcpy(page + 100, "and its second");
    mprotect(page + 2 * 4096, 4096, PROT_NONE);
    memcpy(page + 2 * 4096 - 8, "tailtail", 8);
    int go[2], done[2];
    pipe(go);
    pipe(done);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char x;
        read(go[0], &x, 1);
        printf("the child now has: \"%s\" / \"%s\"\n", page, page + 100);
        fflush(stdout);
        write(done[1], "x", 1);
        read(go[0], &x, 1);
        _exit(0);
    }
    /* The child's page is a copy: change ours so that a read shows the child's. */
    strcpy(page, "the parent's own words");

    char a[10], b[64];
    memset(b, 0, sizeof b);
    struct iovec local[2] = {{a, sizeof a}, {b, sizeof b}};
    struct iovec remote[2] = {{page, 23}, {page + 100, 15}};
    long n = process_vm_readv(c, local, 2, remote, 2, 0);
    printf("readv: %s, \"%.10s\" + \"%s\"\n", res(n), a, b);

    struct iovec one = {b, sizeof b};
    struct iovec over_end = {page + 2 * 4096 - 8, 16};
    n = process_vm_readv(c, &one, 1, &over_end, 1, 0);
    printf("readv across an unreadable page: %s, \"%.8s\"\n", res(n), b);
    struct iovec none = {page + 2 * 4096, 16};
    printf("readv of the unreadable page: %s\n", res(process_vm_readv(c, &one, 1, &none, 1, 0)));
    struct iovec bad_local = {(void *)8, 16};
    printf("readv into a bad buffer: %s\n", res(process_vm_readv(c, &bad_local, 1, remote, 1, 0)));

    char msg1[] = "WRITTEN", msg2[] = "BY THE PARENT";
    struct iovec from[2] = {{msg1, 7}, {msg2, 14}};
    struct iovec to[2] = {{page, 8}, {page + 100, 13}};
    printf("writev: %s\n", res(process_vm_writev(c, from, 2, to, 2, 0)));
    write(go[1], "x", 1);
    char x;
    read(done[0], &x, 1);

    printf("flags 1: %s\n", res(process_vm_readv(c, local, 2, remote, 2, 1)));
    printf("no such process: %s\n", res(process_vm_readv(999999, local, 2, remote, 2, 0)));
    printf("1025 iovecs: %s\n", res(process_vm_readv(c, local, 1025, remote, 2, 0)));
    printf("nothing to move: %s\n", res(process_vm_readv(c, local, 0, remote, 2, 0)));
    write(go[1], "x", 1);
    waitpid(c, NULL, 0);
    printf("the child is gone: %s\n", res(process_vm_readv(c, local, 2, remote, 2, 0)));
    /* Another user may not look. */
    fflush(stdout);
    pid_t d = fork();
    if (d == 0) {
        setuid(65534);
        long r = process_vm_readv(getppid(), local, 2, remote, 2, 0);
        printf("another user: %s\n", res(r));
        fflush(stdout);
        _exit(0);
    }
    waitpid(d, NULL, 0);
    printf("all ok\n");
    return 0;
}
