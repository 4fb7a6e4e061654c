// Landlock: a process restricts itself without privilege, and whatever it
// starts inherits the restriction. Each case runs in a child (restrictions are
// for good) and prints what its calls return: the ruleset calls' errors, file
// rights beneath directories (reading, writing, listing, making and removing
// each kind of file, truncating, executing), moving files between directories
// (FS_REFER: EXDEV when a file would gain rights), stacked layers, TCP ports,
// the scopes (signals, abstract unix sockets), tracing, device ioctls,
// mounts, threads (a restriction is the calling thread's) and exec.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define FS_EXECUTE (1ULL << 0)
#define FS_WRITE_FILE (1ULL << 1)
#define FS_READ_FILE (1ULL << 2)
#define FS_READ_DIR (1ULL << 3)
#define FS_REMOVE_DIR (1ULL << 4)
#define FS_REMOVE_FILE (1ULL << 5)
#define FS_MAKE_CHAR (1ULL << 6)
#define FS_MAKE_DIR (1ULL << 7)
#define FS_MAKE_REG (1ULL << 8)
#define FS_MAKE_SOCK (1ULL << 9)
#define FS_MAKE_FIFO (1ULL << 10)
#define FS_MAKE_BLOCK (1ULL << 11)
#define FS_MAKE_SYM (1ULL << 12)
#define FS_REFER (1ULL << 13)
#define FS_TRUNCATE (1ULL << 14)
#define FS_IOCTL_DEV (1ULL << 15)
#define FS_V1 ((1ULL << 13) - 1)
#define FS_ALL ((1ULL << 16) - 1)
#define NET_BIND (1ULL << 0)
#define NET_CONNECT (1ULL << 1)
#define SCOPE_ABSTRACT (1ULL << 0)
#define SCOPE_SIGNAL (1ULL << 1)

struct ruleset_attr {
    uint64_t fs, net, scoped;
};
struct path_beneath {
    uint64_t allowed;
    int32_t parent_fd;
} __attribute__((packed));
struct net_port {
    uint64_t allowed, port;
};

static char dir[64];

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r < 0 ? -1 : r, r < 0 ? strerrorname_np(errno) : "");
    fflush(stdout);
}

static const char *at(const char *name) {
    static char bufs[4][160];
    static int n;
    char *b = bufs[n++ % 4];
    snprintf(b, 160, "%s/%s", dir, name);
    return b;
}

static long create(uint64_t fs, uint64_t net, uint64_t scoped) {
    struct ruleset_attr a = {fs, net, scoped};
    return syscall(SYS_landlock_create_ruleset, &a, sizeof a, 0);
}

static long add_path(int rs, const char *path, uint64_t allowed) {
    int fd = open(path, O_PATH | O_CLOEXEC);
    struct path_beneath pb = {allowed, fd};
    long r = syscall(SYS_landlock_add_rule, rs, 1, &pb, 0);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

static long add_port(int rs, uint64_t allowed, uint64_t port) {
    struct net_port np = {allowed, port};
    return syscall(SYS_landlock_add_rule, rs, 2, &np, 0);
}

static long enforce(int rs) {
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    long r = syscall(SYS_landlock_restrict_self, rs, 0);
    int e = errno;
    close(rs);
    errno = e;
    return r;
}

// O_NONBLOCK: a FIFO opened for writing fails rather than waits.
static long try_open(const char *name, int flags) {
    int fd = open(at(name), flags | O_CLOEXEC | O_NONBLOCK, 0644);
    if (fd >= 0) close(fd);
    return fd < 0 ? -1 : 0;
}

static void touch(const char *name) {
    close(open(at(name), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
}

// Runs `f` in a child and waits for it.
static void child(const char *title, void (*f)(void)) {
    printf("== %s\n", title);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        f();
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) printf("child ended with %#x\n", st);
}

static void errors(void) {
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1);
    printf("abi at least 6: %d\n", abi >= 6);
    show("version with an attr", syscall(SYS_landlock_create_ruleset, &abi, 0, 1));
    show("unknown flag", syscall(SYS_landlock_create_ruleset, NULL, 0, 1 << 7));
    show("no attr", syscall(SYS_landlock_create_ruleset, NULL, 24, 0));
    struct ruleset_attr a = {FS_READ_FILE, 0, 0};
    show("4 bytes", syscall(SYS_landlock_create_ruleset, &a, 4, 0));
    show("fs only (8 bytes)", syscall(SYS_landlock_create_ruleset, &a, 8, 0) >= 0);
    uint64_t big[5] = {FS_READ_FILE, 0, 0, 0, 0};
    show("40 bytes, zero tail", syscall(SYS_landlock_create_ruleset, big, sizeof big, 0) >= 0);
    big[4] = 1;
    show("40 bytes, nonzero tail", syscall(SYS_landlock_create_ruleset, big, sizeof big, 0));
    show("unknown fs right", create(1ULL << 16, 0, 0));
    show("unknown net right", create(0, 4, 0));
    show("unknown scope", create(0, 0, 4));
    show("nothing handled", create(0, 0, 0));
    int rs = create(FS_READ_FILE | FS_READ_DIR, NET_BIND, 0);
    char link[64], name[64] = "";
    snprintf(link, sizeof link, "/proc/self/fd/%d", rs);
    name[readlink(link, name, sizeof name - 1) < 0 ? 0 : sizeof name - 1] = 0;
    printf("ruleset fd: %s, cloexec %d\n", name, (fcntl(rs, F_GETFD) & FD_CLOEXEC) != 0);
    char c;
    show("read a ruleset", read(rs, &c, 1));
    struct path_beneath pb = {FS_READ_FILE, open("/", O_PATH)};
    show("rule flags", syscall(SYS_landlock_add_rule, rs, 1, &pb, 1));
    show("rule type", syscall(SYS_landlock_add_rule, rs, 9, &pb, 0));
    show("rule on a closed fd", syscall(SYS_landlock_add_rule, 999, 1, &pb, 0));
    int fds[2];
    pipe(fds);
    show("rule on a pipe's fd", syscall(SYS_landlock_add_rule, fds[0], 1, &pb, 0));
    pb.allowed = 0;
    show("no rights", syscall(SYS_landlock_add_rule, rs, 1, &pb, 0));
    pb.allowed = FS_WRITE_FILE;
    show("an unhandled right", syscall(SYS_landlock_add_rule, rs, 1, &pb, 0));
    pb.allowed = FS_READ_FILE;
    pb.parent_fd = 999;
    show("parent not open", syscall(SYS_landlock_add_rule, rs, 1, &pb, 0));
    pb.parent_fd = fds[0];
    show("parent a pipe", syscall(SYS_landlock_add_rule, rs, 1, &pb, 0));
    pb.parent_fd = rs;
    show("parent a ruleset", syscall(SYS_landlock_add_rule, rs, 1, &pb, 0));
    show("a file with a directory right", add_path(rs, at("rw/f"), FS_READ_DIR));
    show("a file with a file right", add_path(rs, at("rw/f"), FS_READ_FILE));
    show("a port", add_port(rs, NET_BIND, 8080));
    show("a port past 65535", add_port(rs, NET_BIND, 70000));
    show("an unhandled port right", add_port(rs, NET_CONNECT, 8080));
    show("restrict flags", syscall(SYS_landlock_restrict_self, rs, 1 << 5));
    show("restrict a pipe", syscall(SYS_landlock_restrict_self, fds[0], 0));
    show("restrict nothing", syscall(SYS_landlock_restrict_self, -1, 0));
    if (fork() == 0) {
        setuid(65534);
        show("restrict without no_new_privs", syscall(SYS_landlock_restrict_self, rs, 0));
        _exit(0);
    }
    wait(NULL);
    int layers = 0;
    while (syscall(SYS_landlock_restrict_self, rs, 0) == 0) layers++;
    printf("layers: %d, then %s\n", layers, strerrorname_np(errno));
}

static void files(void) {
    int rs = create(FS_ALL, 0, 0);
    add_path(rs, at("rw"), FS_ALL);
    add_path(rs, at("rw2"), FS_ALL);
    add_path(rs, at("ro"), FS_READ_FILE | FS_READ_DIR);
    show("restrict", enforce(rs));
    show("read ro/f", try_open("ro/f", O_RDONLY));
    show("write ro/f", try_open("ro/f", O_WRONLY));
    show("read and write rw/f", try_open("rw/f", O_RDWR));
    show("read none/f", try_open("none/f", O_RDONLY));
    show("list ro", try_open("ro", O_RDONLY | O_DIRECTORY));
    show("list the top", try_open("", O_RDONLY | O_DIRECTORY));
    show("O_PATH none/f", try_open("none/f", O_PATH));
    struct stat st;
    show("stat none/f", stat(at("none/f"), &st));
    show("create in rw", try_open("rw/new", O_CREAT | O_WRONLY));
    show("create in ro", try_open("ro/new", O_CREAT | O_WRONLY));
    show("mkdir in rw", mkdir(at("rw/d"), 0755));
    show("mkdir in ro", mkdir(at("ro/d"), 0755));
    show("symlink in rw", symlink("f", at("rw/l")));
    show("symlink in ro", symlink("f", at("ro/l")));
    show("mkfifo in ro", mkfifo(at("ro/p"), 0644));
    show("mkfifo in rw", mkfifo(at("rw/p"), 0644));
    show("unlink ro/f", unlink(at("ro/f")));
    show("unlink rw/new", unlink(at("rw/new")));
    show("rmdir ro/sub", rmdir(at("ro/sub")));
    show("rmdir rw/d", rmdir(at("rw/d")));
    show("truncate rw/f", truncate(at("rw/f"), 0));
    show("truncate ro/f", truncate(at("ro/f"), 0));
    show("O_TRUNC ro/f", try_open("ro/f", O_RDONLY | O_TRUNC));
    int fd = open(at("rw/f"), O_WRONLY);
    show("ftruncate rw/f", ftruncate(fd, 1));
    close(fd);
    show("rename in rw", rename(at("rw/f"), at("rw/g")));
    show("rename rw to ro", rename(at("rw/g"), at("ro/g")));
    show("rename rw to rw2", rename(at("rw/g"), at("rw2/g")));
    show("rename rw2 to rw, over a file", rename(at("rw2/g"), at("rw/p")));
    show("link rw to rw2", link(at("rw/p"), at("rw2/h")));
    show("exchange rw and ro", syscall(SYS_renameat2, AT_FDCWD, at("rw/p"), AT_FDCWD, at("ro/f"), 2));
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = {AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s", at("ro/sock"));
    show("bind a socket in ro", bind(s, (struct sockaddr *)&un, sizeof un));
    snprintf(un.sun_path, sizeof un.sun_path, "%s", at("rw/sock"));
    show("bind a socket in rw", bind(s, (struct sockaddr *)&un, sizeof un));
    show("mount a tmpfs", mount("none", at("rw"), "tmpfs", 0, NULL));
    show("unmount", umount(at("rw")));
    show("exec /bin/true", execl("/bin/true", "true", NULL));
}

static void refer(void) {
    touch("rw/r1");
    touch("rw/r2");
    int rs = create(FS_V1, 0, 0);
    add_path(rs, at("rw"), FS_V1);
    add_path(rs, at("rw2"), FS_V1);
    show("restrict (no REFER)", enforce(rs));
    show("rename in rw", rename(at("rw/r1"), at("rw/r3")));
    show("rename rw to rw2", rename(at("rw/r3"), at("rw2/r3")));
    show("link rw to rw2", link(at("rw/r2"), at("rw2/r2")));
    show("rename rw to ro", rename(at("rw/r2"), at("ro/r2")));
}

static void gains(void) {
    touch("rw/m1");
    touch("rw2/m2");
    touch("rw2/m3");
    uint64_t base = FS_READ_FILE | FS_WRITE_FILE | FS_REFER | FS_MAKE_REG | FS_REMOVE_FILE;
    int rs = create(base | FS_EXECUTE, 0, 0);
    add_path(rs, at("rw"), base);
    add_path(rs, at("rw2"), base | FS_EXECUTE);
    show("restrict", enforce(rs));
    show("rw to rw2 gains execute", rename(at("rw/m1"), at("rw2/m1")));
    show("rw2 to rw loses it", rename(at("rw2/m2"), at("rw/m2")));
    show("exchange them", syscall(SYS_renameat2, AT_FDCWD, at("rw/m1"), AT_FDCWD, at("rw2/m3"), 2));
}

static void layers(void) {
    int rs = create(FS_READ_FILE | FS_WRITE_FILE, 0, 0);
    add_path(rs, dir, FS_READ_FILE | FS_WRITE_FILE);
    show("outer", enforce(rs));
    rs = create(FS_WRITE_FILE, 0, 0);
    add_path(rs, at("rw"), FS_WRITE_FILE);
    show("inner", enforce(rs));
    show("write rw/p", try_open("rw/p", O_WRONLY));
    show("write ro/f", try_open("ro/f", O_WRONLY));
    show("read ro/f", try_open("ro/f", O_RDONLY));
    show("read /etc/hostname", open("/etc/hostname", O_RDONLY) >= 0 ? 0 : -1);
}

static void net(void) {
    int rs = create(0, NET_BIND | NET_CONNECT, 0);
    add_port(rs, NET_BIND | NET_CONNECT, 5555);
    add_port(rs, NET_BIND, 0);
    show("restrict", enforce(rs));
    show("read /etc/hostname", open("/etc/hostname", O_RDONLY) >= 0 ? 0 : -1);
    struct sockaddr_in a = {AF_INET, htons(5555), {htonl(INADDR_LOOPBACK)}};
    int l = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
    show("bind 5555", bind(l, (struct sockaddr *)&a, sizeof a));
    listen(l, 1);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    show("connect 5555", connect(c, (struct sockaddr *)&a, sizeof a));
    int d = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_port = htons(5556);
    show("bind 5556", bind(d, (struct sockaddr *)&a, sizeof a));
    show("connect 5556", connect(d, (struct sockaddr *)&a, sizeof a));
    show("bind 5556, short", bind(d, (struct sockaddr *)&a, 8));
    struct sockaddr_in6 a6 = {AF_INET6, htons(5556)};
    show("bind an IPv6 address to IPv4", bind(d, (struct sockaddr *)&a6, sizeof a6));
    a.sin_family = AF_UNSPEC;
    show("bind AF_UNSPEC loopback", bind(d, (struct sockaddr *)&a, sizeof a));
    show("connect AF_UNSPEC", connect(c, (struct sockaddr *)&a, sizeof a));
    a.sin_family = AF_INET;
    a.sin_port = 0;
    show("bind port 0", bind(d, (struct sockaddr *)&a, sizeof a));
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    a.sin_port = htons(5557);
    show("bind UDP 5557", bind(u, (struct sockaddr *)&a, sizeof a));
}

static pid_t outsider;

static void scopes(void) {
    int rs = create(0, 0, SCOPE_SIGNAL | SCOPE_ABSTRACT);
    show("restrict", enforce(rs));
    show("signal an outsider", kill(outsider, 0));
    show("signal the parent", kill(getppid(), 0));
    show("signal itself", kill(getpid(), 0));
    pid_t kid = fork();
    if (kid == 0) {
        pause();
        _exit(0);
    }
    show("signal its child", kill(kid, SIGKILL));
    waitpid(kid, NULL, 0);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = {AF_UNIX};
    snprintf(un.sun_path + 1, sizeof un.sun_path - 1, "rvisor-landlock-%d", getppid());
    socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(un.sun_path + 1);
    show("connect to an outsider's abstract socket", connect(s, (struct sockaddr *)&un, len));
    int mine = socket(AF_UNIX, SOCK_DGRAM, 0);
    snprintf(un.sun_path + 1, sizeof un.sun_path - 1, "rvisor-landlock-in-%d", getpid());
    len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(un.sun_path + 1);
    bind(mine, (struct sockaddr *)&un, len);
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    show("send to its own abstract socket", sendto(d, "x", 1, 0, (struct sockaddr *)&un, len));
    show("trace an outsider", ptrace(PTRACE_ATTACH, outsider, 0, 0));
}

static void tracing(void) {
    int rs = create(FS_MAKE_DIR, 0, 0);
    show("restrict (files)", enforce(rs));
    show("signal an outsider", kill(outsider, 0));
    show("trace an outsider", ptrace(PTRACE_ATTACH, outsider, 0, 0));
}

static void devices(void) {
    int rs = create(FS_READ_FILE | FS_WRITE_FILE | FS_IOCTL_DEV, 0, 0);
    add_path(rs, "/dev", FS_READ_FILE | FS_WRITE_FILE);
    show("restrict", enforce(rs));
    int fd = open("/dev/null", O_RDWR);
    show("open /dev/null", fd < 0 ? -1 : 0);
    int n;
    show("FIONREAD on /dev/null", ioctl(fd, FIONREAD, &n));
    show("FIOCLEX on /dev/null", ioctl(fd, FIOCLEX));
    show("write /dev/null", write(fd, "x", 1));
}

static void *reader(void *arg) {
    (void)arg;
    show("the other thread reads none/f", try_open("none/f", O_RDONLY));
    return NULL;
}

static int go[2];

static void *waiting_reader(void *arg) {
    char c;
    read(go[0], &c, 1);
    return reader(arg);
}

// A thread restricts itself: a thread started before reads on, one it starts
// after does not.
static void *restricter(void *arg) {
    pthread_t *early = arg;
    int rs = create(FS_READ_FILE, 0, 0);
    show("a thread restricts itself", enforce(rs));
    show("it reads none/f", try_open("none/f", O_RDONLY));
    write(go[1], "x", 1);
    pthread_join(*early, NULL);
    pthread_t made;
    pthread_create(&made, NULL, reader, NULL);
    pthread_join(made, NULL);
    return NULL;
}

static void threads(void) {
    pipe(go);
    pthread_t early, r;
    pthread_create(&early, NULL, waiting_reader, NULL);
    pthread_create(&r, NULL, restricter, &early);
    pthread_join(r, NULL);
}

static void execs(void) {
    int rs = create(FS_READ_FILE | FS_WRITE_FILE | FS_EXECUTE, 0, 0);
    add_path(rs, "/", FS_READ_FILE | FS_EXECUTE);
    show("restrict", enforce(rs));
    execl("/proc/self/exe", "landlock", dir, "after-exec", NULL);
    show("exec", -1);
}

static void no_exec(void) {
    int rs = create(FS_EXECUTE, 0, 0);
    add_path(rs, "/proc", FS_EXECUTE);
    show("restrict", enforce(rs));
    show("exec", execl("/proc/self/exe", "landlock", dir, "after-exec", NULL));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[2], "after-exec") == 0) {
        snprintf(dir, sizeof dir, "%s", argv[1]);
        show("after exec: read ro/f", try_open("ro/f", O_RDONLY));
        show("after exec: write rw/p", try_open("rw/p", O_WRONLY));
        return 0;
    }
    snprintf(dir, sizeof dir, "/tmp/landlock-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    const char *dirs[] = {"ro", "ro/sub", "rw", "rw2", "none"};
    for (unsigned i = 0; i < sizeof dirs / sizeof *dirs; i++) mkdir(at(dirs[i]), 0755);
    touch("ro/f");
    touch("rw/f");
    touch("none/f");

    child("errors", errors);
    child("files", files);
    child("moving without FS_REFER", refer);
    child("moving to more rights", gains);
    child("layers", layers);
    child("TCP ports", net);
    outsider = fork();
    if (outsider == 0) {
        pause();
        _exit(0);
    }
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = {AF_UNIX};
    snprintf(un.sun_path + 1, sizeof un.sun_path - 1, "rvisor-landlock-%d", getpid());
    bind(l, (struct sockaddr *)&un, offsetof(struct sockaddr_un, sun_path) + 1 + strlen(un.sun_path + 1));
    listen(l, 1);
    child("scopes", scopes);
    child("tracing", tracing);
    kill(outsider, SIGKILL);
    waitpid(outsider, NULL, 0);
    child("devices", devices);
    child("threads", threads);
    child("exec", execs);
    child("exec denied", no_exec);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
