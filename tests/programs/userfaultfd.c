// userfaultfd: a process handles its own missing pages. A handler thread reads
// each fault of a registered range from the descriptor and fills the page
// (UFFDIO_COPY, ZEROPAGE) or wakes the faulting thread to fault again
// (UFFDIO_WAKE); MADV_DONTNEED makes a page missing again; a forked child's
// memory is its own; unregistering or closing the descriptor makes the range
// ordinary memory (closing lets a waiting fault go on); a signal interrupts a
// wait and the fault is taken again after the handler. The API handshake,
// registration and filling errors are checked too.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096L
#define PAGES 8

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r < 0 ? -1 : r, r < 0 ? strerrorname_np(errno) : "");
}

static int new_uffd(uint64_t features) {
    int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    struct uffdio_api api = {.api = UFFD_API, .features = features};
    if (fd < 0 || ioctl(fd, UFFDIO_API, &api)) return -1;
    return fd;
}

static long reg(int fd, char *at, long len) {
    struct uffdio_register r = {.range = {(uintptr_t)at, len}, .mode = UFFDIO_REGISTER_MODE_MISSING};
    return ioctl(fd, UFFDIO_REGISTER, &r);
}

// Waits for one fault message.
static struct uffd_msg next_fault(int fd) {
    struct uffd_msg m = {0};
    struct pollfd p = {fd, POLLIN};
    while (poll(&p, 1, -1) != 1 || read(fd, &m, sizeof m) != sizeof m) {}
    return m;
}

static char *area;
static int uffd;
static char page_of_a[PAGE];

static long copy_to(char *dst, const char *src, int dontwake, long long *copied) {
    struct uffdio_copy c = {(uintptr_t)dst, (uintptr_t)src, PAGE, dontwake ? UFFDIO_COPY_MODE_DONTWAKE : 0, 0};
    long r = ioctl(uffd, UFFDIO_COPY, &c);
    if (copied) *copied = c.copy;
    return r;
}

static void *toucher(void *arg) {
    volatile char *p = arg;
    return (void *)(intptr_t)*p;
}

static int pipe_fds[2];

// read(2) five bytes from a pipe into missing page 4.
static void *reader(void *arg) {
    (void)arg;
    write(pipe_fds[1], "hello", 5);
    return (void *)(intptr_t)read(pipe_fds[0], area + 4 * PAGE, 5);
}

// write(2) three bytes of missing page 5 into the pipe.
static void *writer(void *arg) {
    (void)arg;
    return (void *)(intptr_t)write(pipe_fds[1], area + 5 * PAGE, 3);
}

static volatile int handled;
static void on_usr1(int sig) {
    (void)sig;
    handled++;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    memset(page_of_a, 'A', PAGE);
    pipe(pipe_fds);

    // The handshake.
    show("userfaultfd with a bad flag", syscall(SYS_userfaultfd, 1 << 20));
    int fd = syscall(SYS_userfaultfd, O_CLOEXEC);
    show("userfaultfd", fd >= 0 ? 0 : -1);
    char buf[64];
    show("register before UFFDIO_API", ioctl(fd, UFFDIO_REGISTER, buf));
    struct uffdio_api api = {.api = 0x55};
    show("UFFDIO_API with a bad api", ioctl(fd, UFFDIO_API, &api));
    printf("  it reports features %#llx\n", (unsigned long long)api.features);
    api = (struct uffdio_api){.api = UFFD_API, .features = UFFD_FEATURE_THREAD_ID};
    show("UFFDIO_API", ioctl(fd, UFFDIO_API, &api));
    printf("  thread ids and exact addresses offered: %d, API ioctls %#llx\n",
           (api.features & (UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_EXACT_ADDRESS)) == (UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_EXACT_ADDRESS),
           (unsigned long long)(api.ioctls & UFFD_API_IOCTLS));
    show("UFFDIO_API again", ioctl(fd, UFFDIO_API, &api));
    char link[64], name[64] = "";
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    name[readlink(link, name, sizeof name - 1) < 0 ? 0 : sizeof name - 1] = 0;
    printf("descriptor: %s\n", name);
    close(fd);

    uffd = new_uffd(UFFD_FEATURE_THREAD_ID);
    area = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct uffdio_register r = {.range = {(uintptr_t)area, PAGES * PAGE}, .mode = UFFDIO_REGISTER_MODE_MISSING};
    show("register", ioctl(uffd, UFFDIO_REGISTER, &r));
    printf("  range ioctls wake, copy, zeropage: %d\n", (r.ioctls & 0x1c) == 0x1c);
    show("register unaligned", reg(uffd, area + 1, PAGE));
    show("register an empty range", reg(uffd, area, 0));
    char *hole = mmap(NULL, 3 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(hole + PAGE, PAGE);
    show("register over a hole", reg(uffd, hole, 3 * PAGE));
    int other = new_uffd(0);
    show("register with a second userfaultfd", reg(other, area, PAGE));
    struct uffd_msg m;
    show("read with no fault", read(uffd, &m, sizeof m));
    show("read into a short buffer", read(uffd, &m, 8));

    // A read fault filled by UFFDIO_COPY.
    pthread_t t;
    pthread_create(&t, NULL, toucher, area);
    m = next_fault(uffd);
    printf("fault: event %#x, page %ld, write flag %llu, thread id set %d\n", m.event, (long)((char *)(uintptr_t)m.arg.pagefault.address - area) / PAGE,
           (unsigned long long)(m.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE), m.arg.pagefault.feat.ptid > 0 && m.arg.pagefault.feat.ptid != (unsigned)getpid());
    long long copied;
    show("UFFDIO_COPY", copy_to(area, page_of_a, 0, &copied));
    printf("  copied %lld\n", copied);
    void *got;
    pthread_join(t, &got);
    printf("the faulting thread read '%c'\n", (char)(intptr_t)got);

    // ZEROPAGE, after the thread's fault.
    pthread_create(&t, NULL, toucher, area + PAGE + 5);
    m = next_fault(uffd);
    printf("fault: page %ld\n", (long)((char *)(uintptr_t)m.arg.pagefault.address - area) / PAGE);
    struct uffdio_zeropage z = {{(uintptr_t)(area + PAGE), PAGE}, 0, 0};
    show("UFFDIO_ZEROPAGE", ioctl(uffd, UFFDIO_ZEROPAGE, &z));
    printf("  zeroed %lld\n", (long long)z.zeropage);
    pthread_join(t, &got);
    printf("the faulting thread read %d\n", (int)(intptr_t)got);

    // Filling errors.
    show("UFFDIO_COPY onto a page that is there", copy_to(area, page_of_a, 0, &copied));
    printf("  copy field %lld\n", copied);
    show("UFFDIO_COPY outside the range", copy_to(hole, page_of_a, 0, &copied));
    show("UFFDIO_COPY unaligned", copy_to(area + 2 * PAGE + 1, page_of_a, 0, &copied));
    struct uffdio_range wr = {(uintptr_t)area, 0};
    show("UFFDIO_WAKE of nothing", ioctl(uffd, UFFDIO_WAKE, &wr));
    show("an unknown ioctl", ioctl(uffd, _IOR(0xAA, 0x30, long), buf));

    // UFFDIO_WAKE without a page: the thread faults again.
    pthread_create(&t, NULL, toucher, area + 2 * PAGE);
    m = next_fault(uffd);
    wr = (struct uffdio_range){(uintptr_t)(area + 2 * PAGE), PAGE};
    show("UFFDIO_WAKE", ioctl(uffd, UFFDIO_WAKE, &wr));
    struct uffd_msg again = next_fault(uffd);
    printf("faulted again after the wake: %d\n", again.arg.pagefault.address == m.arg.pagefault.address);
    show("UFFDIO_COPY with DONTWAKE", copy_to(area + 2 * PAGE, page_of_a, 1, NULL));
    show("UFFDIO_WAKE", ioctl(uffd, UFFDIO_WAKE, &wr));
    pthread_join(t, &got);
    printf("the faulting thread read '%c'\n", (char)(intptr_t)got);

    // MADV_DONTNEED: missing again.
    madvise(area, PAGE, MADV_DONTNEED);
    pthread_create(&t, NULL, toucher, area);
    m = next_fault(uffd);
    printf("after MADV_DONTNEED, fault on page %ld\n", (long)((char *)(uintptr_t)m.arg.pagefault.address - area) / PAGE);
    memset(buf, 'C', sizeof buf);
    char page_of_c[PAGE];
    memset(page_of_c, 'C', PAGE);
    copy_to(area, page_of_c, 0, NULL);
    pthread_join(t, &got);
    printf("the faulting thread read '%c'\n", (char)(intptr_t)got);

    // A signal ends the wait; the fault comes again after the handler.
    signal(SIGUSR1, on_usr1);
    pthread_create(&t, NULL, toucher, area + 3 * PAGE);
    m = next_fault(uffd);
    pthread_kill(t, SIGUSR1);
    again = next_fault(uffd);
    printf("faulted again after a signal: %d, handler ran %d\n", again.arg.pagefault.address == m.arg.pagefault.address, handled);
    copy_to(area + 3 * PAGE, page_of_a, 0, NULL);
    pthread_join(t, &got);
    printf("the faulting thread read '%c'\n", (char)(intptr_t)got);

    // A syscall's own access to a missing page waits for it too: read(2)
    // into one (the kernel writes), write(2) from one (it reads).
    pthread_create(&t, NULL, reader, NULL);
    m = next_fault(uffd);
    printf("read(2) into a missing page: fault on page %ld, write flag %llu\n", (long)((char *)(uintptr_t)m.arg.pagefault.address - area) / PAGE,
           (unsigned long long)(m.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE));
    copy_to(area + 4 * PAGE, page_of_a, 0, NULL);
    pthread_join(t, &got);
    printf("  it read %ld bytes: \"%.5s\", then '%c'\n", (long)(intptr_t)got, area + 4 * PAGE, area[4 * PAGE + 5]);
    pthread_create(&t, NULL, writer, NULL);
    m = next_fault(uffd);
    printf("write(2) from a missing page: fault on page %ld, write flag %llu\n", (long)((char *)(uintptr_t)m.arg.pagefault.address - area) / PAGE,
           (unsigned long long)(m.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE));
    copy_to(area + 5 * PAGE, page_of_c, 0, NULL);
    pthread_join(t, &got);
    char back[4] = "";
    read(pipe_fds[0], back, 3);
    printf("  it wrote %ld bytes: \"%.3s\"\n", (long)(intptr_t)got, back);

    // A syscall waiting for a page ends when a signal would kill the process
    // (SIGTERM with its default action), not for a handled one: here the
    // only thread waits, and another process holds the descriptor.
    int seen[2];
    pipe(seen);
    pid_t waiter = fork();
    if (waiter == 0) {
        int own = new_uffd(0);
        char *buf = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        reg(own, buf, PAGE);
        if (fork() == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            next_fault(own);
            write(seen[1], "s", 1);
            pause();
            _exit(0);
        }
        write(pipe_fds[1], "abc", 3);
        read(pipe_fds[0], buf, 3);
        _exit(0);
    }
    char c;
    read(seen[0], &c, 1);
    kill(waiter, SIGTERM);
    int st;
    waitpid(waiter, &st, 0);
    printf("SIGTERM ends a syscall's wait for a page: killed by %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : 0);

    // A forked child's memory is its own.
    pid_t kid = fork();
    if (kid == 0) {
        printf("the child reads page 6: %d\n", area[6 * PAGE]);
        _exit(0);
    }
    waitpid(kid, NULL, 0);
    show("no fault from the child", read(uffd, &m, sizeof m));

    // Unregistered, a page fills with zeros.
    wr = (struct uffdio_range){(uintptr_t)(area + 6 * PAGE), PAGE};
    show("UFFDIO_UNREGISTER", ioctl(uffd, UFFDIO_UNREGISTER, &wr));
    printf("page 6 reads %d\n", area[6 * PAGE]);

    // Closing the descriptor lets a waiting fault go on.
    pthread_create(&t, NULL, toucher, area + 7 * PAGE);
    next_fault(uffd);
    close(uffd);
    pthread_join(t, &got);
    printf("after the close, the faulting thread read %d\n", (int)(intptr_t)got);

    // Exact addresses.
    int exact = new_uffd(UFFD_FEATURE_EXACT_ADDRESS);
    char *more = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    reg(exact, more, PAGE);
    pthread_create(&t, NULL, toucher, more + 123);
    m = next_fault(exact);
    printf("exact address: offset %ld\n", (long)((char *)(uintptr_t)m.arg.pagefault.address - more));
    uffd = exact;
    copy_to(more, page_of_a, 0, NULL);
    pthread_join(t, &got);
    printf("the faulting thread read '%c'\n", (char)(intptr_t)got);
    return 0;
}
