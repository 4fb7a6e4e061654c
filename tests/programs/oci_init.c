/* A container's process, for the OCI runtime tests (tests/oci.rs).
 *
 *   oci_init report CODE   prints what the bundle's config.json set up (identity,
 *                          directory, environment, root and mounts), exits CODE
 *   oci_init serve         prints "started", echoes each line of stdin as
 *                          "got LINE", and on SIGTERM prints "terminated" and exits 0
 *   oci_init exec CODE     prints its pid and parent, exits CODE
 *   oci_init alloc MIB     touches MIB mebibytes, prints "allocated"
 *   oci_init hold MIB      touches MIB mebibytes, prints "holding", and keeps them
 *                          until stdin ends
 *   oci_init oomchild MIB  a child touches MIB mebibytes; prints how it ended,
 *                          then "init lives on", and exits when stdin ends
 *   oci_init winsize       prints its terminal's size, waits for SIGWINCH,
 *                          prints the new size
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/sysinfo.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void try_write(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        printf("write %s: %s\n", path, strerror(errno));
        return;
    }
    int ok = write(fd, "written\n", 8) == 8;
    close(fd);
    printf("write %s: %s\n", path, ok ? "ok" : strerror(errno));
}

static void show_file(const char *path) {
    char buf[256] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("read %s: %s\n", path, strerror(errno));
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0 && buf[n - 1] == '\n')
        buf[n - 1] = 0;
    printf("read %s: %s\n", path, n < 0 ? strerror(errno) : buf);
}

static void report(void) {
    char host[65] = {0}, cwd[256] = {0};
    gethostname(host, sizeof host - 1);
    if (!getcwd(cwd, sizeof cwd))
        strcpy(cwd, strerror(errno));
    gid_t groups[16];
    int n = getgroups(16, groups);
    printf("hostname %s\nuid %d gid %d groups", host, getuid(), getgid());
    for (int i = 0; i < n; i++)
        printf(" %d", groups[i]);
    printf("\ncwd %s\nGREETING %s\n", cwd, getenv("GREETING") ? getenv("GREETING") : "(unset)");
    try_write("/rootfile");
    show_file("/ro/in.txt");
    try_write("/ro/new.txt");
    try_write("/rw/out.txt");
    show_file("/etc/motd");
    show_file("/dev/termination-log");
    struct stat st;
    if (stat("/scratch", &st) == 0)
        printf("/scratch mode %o\n", st.st_mode & 07777);
    try_write("/scratch/f");
    printf("/proc/self/status %s\n", access("/proc/self/status", R_OK) == 0 ? "readable" : strerror(errno));
    printf("/dev/null %s\n", access("/dev/null", W_OK) == 0 ? "writable" : strerror(errno));
    printf("/dev/pts %s\n", access("/dev/pts/ptmx", F_OK) == 0 ? "mounted" : strerror(errno));
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("nofile %llu %llu\n", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "CapEff:", 7) == 0 || strncmp(line, "CapBnd:", 7) == 0 || strncmp(line, "NoNewPrivs:", 11) == 0)
            fputs(line, stdout);
    if (f)
        fclose(f);
}

static volatile sig_atomic_t terminated, resized;

static void on_winch(int sig) {
    (void)sig;
    resized = 1;
}

static void print_size(void) {
    struct winsize ws = {0};
    ioctl(0, TIOCGWINSZ, &ws);
    printf("size %d %d\n", ws.ws_row, ws.ws_col);
}

/* SIGWINCH stays blocked except inside ppoll, as in serve. */
static int winsize(void) {
    struct sigaction sa = {.sa_handler = on_winch};
    sigaction(SIGWINCH, &sa, NULL);
    sigset_t winch, waiting;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    sigprocmask(SIG_BLOCK, &winch, &waiting);
    sigdelset(&waiting, SIGWINCH);
    print_size();
    while (!resized)
        ppoll(NULL, 0, NULL, &waiting);
    print_size();
    return 0;
}

static void on_term(int sig) {
    (void)sig;
    terminated = 1;
}

static int serve(void) {
    /* SIGTERM stays blocked except inside ppoll, so it cannot land between a
     * check of the flag and a blocking read. */
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    sigset_t term, waiting;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &waiting);
    sigdelset(&waiting, SIGTERM);
    printf("started pid %d\n", getpid());
    char line[256];
    for (;;) {
        struct pollfd in = {.fd = 0, .events = POLLIN};
        int r = ppoll(&in, 1, NULL, &waiting);
        if (terminated) {
            printf("terminated\n");
            return 0;
        }
        if (r < 0)
            continue;
        ssize_t n = read(0, line, sizeof line - 1);
        if (n <= 0)
            return 9;
        line[n] = 0;
        printf("got %s", line);
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "serve") == 0)
        return serve();
    if (argc > 1 && strcmp(argv[1], "winsize") == 0)
        return winsize();
    if (argc > 2 && (strcmp(argv[1], "alloc") == 0 || strcmp(argv[1], "hold") == 0)) {
        size_t n = (size_t)atoi(argv[2]) << 20;
        /* volatile: the compiler may not drop the stores (or the malloc). */
        volatile char *p = malloc(n);
        if (!p)
            return 1;
        for (size_t i = 0; i < n; i += 4096)
            p[i] = 1;
        if (strcmp(argv[1], "alloc") == 0) {
            printf("allocated\n");
            return 0;
        }
        printf("holding\n");
        char buf[256];
        while (read(0, buf, sizeof buf) > 0)
            ;
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "oomchild") == 0) {
        pid_t child = fork();
        if (child == 0) {
            size_t n = (size_t)atoi(argv[2]) << 20;
            volatile char *p = malloc(n);
            for (size_t i = 0; p && i < n; i += 4096)
                p[i] = 1;
            _exit(p ? 0 : 1);
        }
        int status;
        waitpid(child, &status, 0);
        if (WIFSIGNALED(status))
            printf("child killed by signal %d\n", WTERMSIG(status));
        else
            printf("child exited %d\n", WEXITSTATUS(status));
        printf("init lives on\n");
        char buf[64];
        while (read(0, buf, sizeof buf) > 0)
            ;
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "meminfo") == 0) {
        /* The memory the sandbox reports: /proc/meminfo's total and sysinfo's;
           then the limits its cgroup2 view shows. */
        char line[128] = "";
        FILE *f = fopen("/proc/meminfo", "r");
        if (f && fgets(line, sizeof line, f))
            printf("%s", line);
        struct sysinfo si;
        if (sysinfo(&si) == 0)
            printf("sysinfo totalram %llu\n", (unsigned long long)si.totalram * si.mem_unit);
        show_file("/sys/fs/cgroup/memory.max");
        show_file("/sys/fs/cgroup/cpu.max");
        show_file("/sys/fs/cgroup/pids.max");
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "fds") == 0) {
        /* What runc's --preserve-fds and LISTEN_FDS hand over: the variables,
           the descriptors from 3 on, a line written to 3 and one read from 4. */
        const char *n = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
        printf("LISTEN_FDS=%s LISTEN_PID=%s\n", n ? n : "-", pid ? pid : "-");
        for (int fd = 3; fd < 16; fd++) {
            struct stat st;
            if (fstat(fd, &st) == 0)
                printf("fd %d: %s\n", fd, S_ISFIFO(st.st_mode) ? "pipe" : S_ISSOCK(st.st_mode) ? "socket" : "other");
        }
        if (write(3, "written to fd 3\n", 16) != 16)
            printf("write to fd 3 failed\n");
        char buf[64];
        ssize_t got = read(4, buf, sizeof buf - 1);
        if (got > 0) {
            buf[got] = 0;
            printf("read from fd 4: %s", buf);
        }
        return 0;
    }
    int code = argc > 2 ? atoi(argv[2]) : 0;
    if (argc > 1 && strcmp(argv[1], "report") == 0)
        report();
    else
        printf("exec pid %d ppid %d\n", getpid(), getppid());
    return code;
}
