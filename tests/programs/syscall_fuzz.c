/* Random system calls with hostile arguments, for the Sentry's robustness: whatever a
 * program passes, the Sentry must answer with an errno (or kill the program), never
 * panic, hang or reach the host.
 *
 *   syscall_fuzz SEED CHILDREN CALLS HOST_PATH [-v]
 *
 * Forks CHILDREN children, one after the other; child i opens a descriptor of each kind,
 * then three threads make CALLS system calls each, chosen from SEED+i, with arguments drawn from values that catch bugs: 0, -1, boundaries,
 * huge counts, NULL, unmapped, kernel and misaligned addresses, pointers into a page of
 * random bytes and into paths (HOST_PATH among them, which must never appear on the
 * host). A child that blocks is killed after a bounded wait. Calls that would reach
 * beyond the child (signals and ptrace on other processes, rlimits of others, new
 * processes) are left out. Prints one summary line and "done" (with -v, each child's end
 * first); only ever run in the sandbox. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_NR 470
#define ARENA_PAGES 8

static __thread uint64_t rng;

static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int denied(long nr) {
    switch (nr) {
    case SYS_exit:
    case SYS_exit_group:
    case SYS_kill:
    case SYS_tkill:
    case SYS_tgkill:
    case SYS_rt_sigqueueinfo:
    case SYS_rt_tgsigqueueinfo:
    case SYS_pidfd_send_signal:
    case SYS_ptrace:
    case SYS_process_vm_writev:
    case SYS_prlimit64:
    case SYS_clone:
    case SYS_clone3:
    case SYS_fork:
    case SYS_vfork:
    case SYS_reboot:
        return 1;
    }
    return 0;
}

/* Calls that end most children at once (a forged signal frame, uretprobe's SIGILL,
 * unmapping the program) or block for good: made rarely, so that children get on to
 * the rest. */
static int rare(long nr) {
    return nr == SYS_rt_sigreturn || nr == 335 || nr == SYS_munmap || nr == SYS_mremap || nr == SYS_pause ||
           nr == SYS_rt_sigsuspend;
}

static char *arena;
static const char *host_path;
static void *hole;

static const char *paths[] = {"/", ".", "..", "/tmp/fuzz", "/tmp/fuzz/a", "/dev/null", "/proc/self/mem",
                              "/proc/self/fd/0", "/etc/passwd", "", "/tmp/fuzz/../../etc"};

/* Page 1 of the arena holds well-formed structures, so that calls get past their
 * first checks: an iovec array, a msghdr, a short timespec, pollfds, socket addresses,
 * a sigaction, a sigset, an SCM_RIGHTS message, a seccomp program, an IPv4, an IPv6
 * and a netlink address. */
#define STRUCTS 4096
static const unsigned structs[] = {0, 128, 256, 272, 512, 640, 768, 896, 1024, 1152, 1280, 1312, 1344};

static void write_structs(void) {
    char *b = arena + STRUCTS;
    uint64_t *iov = (uint64_t *)b; /* 4 x {base, len} into page 2 */
    for (int i = 0; i < 4; i++) {
        iov[2 * i] = (uint64_t)(arena + 2 * 4096 + 256 * i);
        iov[2 * i + 1] = 16 << i;
    }
    uint64_t *msg = (uint64_t *)(b + 128); /* struct msghdr */
    msg[0] = (uint64_t)(b + 512);          /* name */
    msg[1] = 110;                          /* namelen */
    msg[2] = (uint64_t)b;                  /* iov */
    msg[3] = 4;                            /* iovlen */
    msg[4] = (uint64_t)(b + 1024);         /* control */
    msg[5] = 24;                           /* controllen */
    msg[6] = 0;
    uint64_t *ts = (uint64_t *)(b + 256); /* 1 ms */
    ts[0] = 0;
    ts[1] = 1000000;
    int *pfd = (int *)(b + 272); /* 8 x {fd, events|revents} */
    for (int i = 0; i < 8; i++) {
        pfd[2 * i] = 3 + i;
        pfd[2 * i + 1] = 0x5; /* POLLIN | POLLOUT */
    }
    unsigned short *un = (unsigned short *)(b + 512);
    un[0] = 1; /* AF_UNIX */
    strcpy(b + 514, "/tmp/fuzz/sock");
    uint64_t *sa = (uint64_t *)(b + 640); /* handler SIG_IGN, flags SA_RESTART, mask */
    sa[0] = 1;
    sa[1] = 0x10000000;
    sa[3] = 0;
    uint64_t *set = (uint64_t *)(b + 768);
    set[0] = 1ull << 9;
    uint32_t *cmsg = (uint32_t *)(b + 1024); /* len 24, SOL_SOCKET, SCM_RIGHTS, fds 3 4 */
    *(uint64_t *)cmsg = 24;
    cmsg[2] = 1;
    cmsg[3] = 1;
    cmsg[4] = 3;
    cmsg[5] = 4;
    *(uint64_t *)(b + 896) = 0; /* a zero word: futexes, counts */
    struct sockaddr_in *in4 = (struct sockaddr_in *)(b + 1280); /* 127.0.0.1, a port of a few */
    in4->sin_family = AF_INET;
    in4->sin_port = htons(40000 + next() % 4);
    in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(b + 1312); /* ::1 */
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(40000 + next() % 4);
    in6->sin6_addr = in6addr_loopback;
    struct sockaddr_nl *nl = (struct sockaddr_nl *)(b + 1344);
    nl->nl_family = AF_NETLINK;
    /* A seccomp program (struct sock_fprog, then 4 instructions): one random syscall
     * gets a random action, the rest are allowed. */
    static const uint32_t actions[] = {0x00050001, 0x00030000, 0x7ff00000, 0x7ffc0000, 0x00050000, 0x80000000};
    uint32_t *insns = (uint32_t *)(b + 1168);
    *(uint16_t *)(b + 1152) = 4;
    *(uint64_t *)(b + 1160) = (uint64_t)insns;
    uint32_t prog[8] = {0x20, 0,                                       /* ld [nr] */
                        0x15 | 1u << 24, (uint32_t)(next() % MAX_NR), /* jeq k, 0, 1 */
                        0x06, actions[next() % 6],                     /* ret action */
                        0x06, 0x7fff0000};                             /* ret allow */
    memcpy(insns, prog, sizeof prog);
}

static uint64_t pointer(void) {
    switch (next() % 12) {
    case 0: return 0;
    case 1: return 1;
    case 2: return (uint64_t)hole;
    case 3: return 0xffff800000000000ull;
    case 4: return 0x7fffff000000ull; /* where the systrap stub lives */
    case 5: return 0x7ffffffff000ull;
    case 6: return (uint64_t)(arena + ARENA_PAGES * 4096 - 1 - next() % 16); /* runs off the end */
    case 7: return ~0ull - next() % 4096;
    case 8: return (uint64_t)(arena + 2048 + next() % 1024); /* a path, or the middle of one */
    case 9:
    case 10: return (uint64_t)(arena + STRUCTS + structs[next() % (sizeof structs / sizeof *structs)]);
    default: return (uint64_t)(arena + 2 * 4096 + next() % ((ARENA_PAGES - 3) * 4096));
    }
}

static uint64_t integer(void) {
    switch (next() % 14) {
    case 0: return 0;
    case 1: return 1;
    case 2: return 2;
    case 3: return (uint64_t)-1;
    case 4: return 4096;
    case 5: return 0x7fffffff;
    case 6: return 0x80000000;
    case 7: return 0xffffffff;
    case 8: return 1ull << 63;
    case 9: return next() % 16;  /* a small fd, signal, flag */
    case 10: return next() % 1024;
    case 11: return 1ull << (next() % 64);
    case 12: return (uint32_t)next();
    default: return next();
    }
}

static uint64_t argument(void) {
    return next() % 2 ? pointer() : integer();
}

/* One descriptor of each kind the Sentry has, so that small fd numbers hit them all. */
static void open_one_of_each(void) {
    int p[2];
    pipe2(p, O_NONBLOCK);
    socketpair(AF_UNIX, SOCK_STREAM, 0, p);
    socketpair(AF_UNIX, SOCK_DGRAM, 0, p);
    socket(AF_UNIX, SOCK_SEQPACKET, 0);
    /* Loopback TCP (a listener and a connection to it), UDP and rtnetlink. */
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof lo;
    bind(l, (struct sockaddr *)&lo, sizeof lo);
    listen(l, 4);
    getsockname(l, (struct sockaddr *)&lo, &len);
    connect(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), (struct sockaddr *)&lo, sizeof lo);
    accept4(l, NULL, NULL, SOCK_NONBLOCK);
    socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK, NETLINK_ROUTE);
    eventfd(1, EFD_NONBLOCK);
    epoll_create1(0);
    timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    sigset_t all;
    sigfillset(&all);
    signalfd(-1, &all, SFD_NONBLOCK);
    inotify_init1(IN_NONBLOCK);
    syscall(SYS_memfd_create, "fuzz", 0);
    open("/tmp/fuzz/f", O_RDWR | O_CREAT, 0600);
    open("/etc/passwd", O_RDONLY);
    open("/proc/self/status", O_RDONLY);
    open("/", O_RDONLY | O_DIRECTORY);
}

static void calls(uint64_t seed, long n) {
    rng = seed * 2654435761u + 88172645463325252ull;
    for (long i = 0; i < n; i++) {
        long nr = (long)(next() % MAX_NR);
        if (denied(nr) || (rare(nr) && next() % 16)) continue;
        uint64_t a[6];
        for (int k = 0; k < 6; k++) a[k] = argument();
        if (nr == SYS_seccomp && next() % 2) {
            /* Often a well-formed filter install, so that filters do get installed. */
            a[0] = 1;
            a[1] = next() % 2;
            a[2] = (uint64_t)(arena + STRUCTS + 1152);
        }
        syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    }
}

struct job {
    uint64_t seed;
    long n;
};

static void *thread_calls(void *arg) {
    struct job *j = arg;
    calls(j->seed, j->n);
    return NULL;
}

/* A child: the arena, descriptors, then `n` calls on each of three threads at once, so
 * that they race on the same tables. */
static void fuzz(uint64_t seed, long n, int devnull) {
    rng = seed * 2654435761u + 88172645463325252ull;
    for (int fd = 0; fd < 3; fd++) dup2(devnull, fd);
    close(devnull);
    arena = mmap(NULL, ARENA_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    hole = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (arena == MAP_FAILED || hole == MAP_FAILED) _exit(2);
    munmap(hole, 4096);
    for (int i = 0; i < ARENA_PAGES * 4096; i += 8) {
        uint64_t v = next();
        memcpy(arena + i, &v, 8);
    }
    /* Paths at 2048 + 64k, each NUL-terminated; the host path among them. */
    int k = sizeof paths / sizeof *paths;
    for (int i = 0; i <= k; i++) {
        const char *p = i < k ? paths[i] : host_path;
        snprintf(arena + 2048 + 64 * (i % 16), 64, "%s", p);
    }
    write_structs();
    open_one_of_each();
    static struct job jobs[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        jobs[i] = (struct job){seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(i + 1)), n};
        pthread_create(&t[i], NULL, thread_calls, &jobs[i]);
    }
    calls(seed, n);
    _exit(0);
}

int main(int argc, char **argv) {
    int verbose = argc == 6 && !strcmp(argv[5], "-v");
    if (argc != 5 && !verbose) {
        fprintf(stderr, "usage: %s SEED CHILDREN CALLS HOST_PATH [-v]\n", argv[0]);
        return 2;
    }
    uint64_t seed = strtoull(argv[1], NULL, 0);
    long children = atol(argv[2]), calls = atol(argv[3]);
    host_path = argv[4];
    mkdir("/tmp/fuzz", 0777);
    int devnull = open("/dev/null", O_RDWR);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    long exited = 0, signalled = 0, timed_out = 0;
    for (long c = 0; c < children; c++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) fuzz(seed + (uint64_t)c, calls, devnull);
        /* Wait for it, at most 50 ms at a time: a child blocked in a call is killed. */
        struct timespec limit = {0, 50 * 1000 * 1000};
        int status, killed = 0;
        pid_t got;
        while ((got = waitpid(pid, &status, WNOHANG)) == 0) {
            if (sigtimedwait(&chld, NULL, &limit) < 0 && errno == EAGAIN) {
                kill(pid, SIGKILL);
                timed_out++;
                killed = 1;
                got = waitpid(pid, &status, 0);
                break;
            }
        }
        if (got != pid) {
            printf("waitpid for child %ld: %s\n", c, strerror(errno));
            return 1;
        }
        if (WIFEXITED(status)) exited++;
        else if (WIFSIGNALED(status)) signalled++;
        if (verbose) printf("child %ld: %s %d\n", c, killed ? "timeout" : WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
    printf("children %ld: exited %ld, killed by a signal %ld (timed out %ld)\n", children, exited, signalled, timed_out);
    printf("done\n");
    return 0;
}
