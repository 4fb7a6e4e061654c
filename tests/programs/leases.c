// File leases (F_SETLEASE, F_GETLEASE) and directory notifications (F_NOTIFY) in a
// fresh directory under /tmp: which leases are granted and refused, and the
// errors; a child's open breaking the parent's lease (the parent's signal with
// si_fd, F_GETLEASE saying the break's target, /proc/locks saying BREAKING, the
// child's open completing once the parent gives way), an O_NONBLOCK open's
// EWOULDBLOCK; dnotify's signals for creates, deletes, changes, renames and
// reads, once or with DN_MULTISHOT; /proc/locks' record and flock lines too.
// Children report through their exit status, signals are awaited with
// sigwaitinfo: no sleeps. Prints only what is the same
// natively and in the sandbox.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static char base[64] = "/tmp/leases.XXXXXX";
#include "scratch.h"

#define SIG_LEASE (SIGRTMIN + 1)
#define SIG_DIR (SIGRTMIN + 2)

static const char *res(long r) {
    return r < 0 ? errname(errno) : "0";
}

static const char *lease_name(int t) {
    return t == F_RDLCK ? "F_RDLCK" : t == F_WRLCK ? "F_WRLCK" : t == F_UNLCK ? "F_UNLCK" : "?";
}

// Forks a child that opens `path` with `flags` and exits 0 if that worked, else
// with the errno.
static pid_t opener(const char *path, int flags) {
    pid_t c = fork();
    if (c == 0) {
        int fd = open(path, flags);
        _exit(fd < 0 ? errno : 0);
    }
    return c;
}

static const char *reaped(pid_t c) {
    int st;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st)) return "?";
    return errname(WEXITSTATUS(st));
}

// How many of `sig` are pending, taking them.
static int drain(int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    struct timespec zero = {0, 0};
    int n = 0;
    while (sigtimedwait(&s, NULL, &zero) == sig) n++;
    return n;
}

static siginfo_t await(int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    sigwaitinfo(&s, &si);
    return si;
}

// The /proc/locks line for the file `fd` is open on, as "KIND STATE TYPE" if its
// pid, device, inode and range are as Linux prints them for our lease; else why not.
static const char *locks_line(int fd) {
    static char out[128];
    struct stat st;
    fstat(fd, &st);
    FILE *f = fopen("/proc/locks", "r");
    if (!f) return "no /proc/locks";
    char line[256];
    snprintf(out, sizeof out, "no line for the file");
    while (fgets(line, sizeof line, f)) {
        int n, pid;
        unsigned maj, min;
        unsigned long ino;
        char kind[16], state[16], type[16], start[16], end[16];
        if (sscanf(line, "%d: %15s %15s %15s %d %x:%x:%lu %15s %15s", &n, kind, state, type, &pid, &maj, &min, &ino, start, end) != 10) continue;
        if (ino != st.st_ino || maj != major(st.st_dev) || min != minor(st.st_dev)) continue;
        int shape = pid == getpid() && n > 0 && !strcmp(start, "0") && !strcmp(end, "EOF") && strchr(line, '\n');
        snprintf(out, sizeof out, "%s %s %s%s", kind, state, type, shape ? "" : " (bad pid, number or range)");
        break;
    }
    fclose(f);
    return out;
}

static void grants(void) {
    const char *a = at("a");
    close(open(a, O_CREAT | O_WRONLY, 0644));
    int r = open(a, O_RDONLY);
    printf("read lease, only reader: %s\n", res(fcntl(r, F_SETLEASE, F_RDLCK)));
    printf("F_GETLEASE: %s\n", lease_name(fcntl(r, F_GETLEASE)));
    printf("F_GETOWN is the lease taker: %d\n", fcntl(r, F_GETOWN) == getpid());
    printf("upgrade to a write lease, only reader: %s\n", res(fcntl(r, F_SETLEASE, F_WRLCK)));
    printf("F_GETLEASE: %s\n", lease_name(fcntl(r, F_GETLEASE)));
    fcntl(r, F_SETSIG, SIG_LEASE);
    printf("unlock: %s\n", res(fcntl(r, F_SETLEASE, F_UNLCK)));
    printf("F_GETLEASE: %s\n", lease_name(fcntl(r, F_GETLEASE)));
    printf("after unlock, F_GETSIG %d, F_GETOWN %d\n", fcntl(r, F_GETSIG), fcntl(r, F_GETOWN));
    printf("unlock without a lease: %s\n", res(fcntl(r, F_SETLEASE, F_UNLCK)));
    printf("lease type 7: %s\n", res(fcntl(r, F_SETLEASE, 7)));
    printf("lease type F_EXLCK: %s\n", res(fcntl(r, F_SETLEASE, F_EXLCK)));

    int w = open(a, O_WRONLY);
    printf("read lease, the file open for writing elsewhere: %s\n", res(fcntl(r, F_SETLEASE, F_RDLCK)));
    printf("write lease, the file open for reading elsewhere: %s\n", res(fcntl(w, F_SETLEASE, F_WRLCK)));
    close(r);
    printf("write lease on the only (writing) description: %s\n", res(fcntl(w, F_SETLEASE, F_WRLCK)));
    printf("read lease on a writing description: %s\n", res(fcntl(w, F_SETLEASE, F_RDLCK)));
    printf("F_GETLEASE: %s\n", lease_name(fcntl(w, F_GETLEASE)));
    close(w);

    int r1 = open(a, O_RDONLY), r2 = open(a, O_RDONLY);
    printf("read lease with another reader: %s\n", res(fcntl(r1, F_SETLEASE, F_RDLCK)));
    printf("second description's write lease: %s\n", res(fcntl(r2, F_SETLEASE, F_WRLCK)));
    printf("second description's read lease: %s\n", res(fcntl(r2, F_SETLEASE, F_RDLCK)));
    printf("first description's upgrade beside it: %s\n", res(fcntl(r1, F_SETLEASE, F_WRLCK)));
    close(r2);
    printf("after the other closed, F_GETLEASE: %s\n", lease_name(fcntl(r1, F_GETLEASE)));
    close(r1);

    // The other kinds of lock /proc/locks lists.
    int l = open(a, O_RDWR);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    fcntl(l, F_SETLK, &fl);
    printf("/proc/locks, a record lock: %s\n", locks_line(l));
    fl.l_type = F_UNLCK;
    fcntl(l, F_SETLK, &fl);
    flock(l, LOCK_SH);
    printf("/proc/locks, a flock: %s\n", locks_line(l));
    close(l);

    int d = open(base, O_RDONLY | O_DIRECTORY);
    printf("lease on a directory: %s\n", res(fcntl(d, F_SETLEASE, F_RDLCK)));
    close(d);
    int p[2];
    pipe(p);
    printf("lease on a pipe: %s\n", res(fcntl(p[0], F_SETLEASE, F_RDLCK)));
    close(p[0]);
    close(p[1]);

    if (getuid() == 0) {
        const char *o = at("other");
        close(open(o, O_CREAT | O_WRONLY, 0644));
        chown(o, 65534, 65534);
        int fd = open(o, O_RDONLY);
        printf("lease on another's file with CAP_LEASE: %s\n", res(fcntl(fd, F_SETLEASE, F_RDLCK)));
        close(fd);
        fflush(stdout);
        pid_t c = fork();
        if (c == 0) {
            if (setresgid(65533, 65533, 65533) || setresuid(65533, 65533, 65533)) _exit(99);
            int fd = open(o, O_RDONLY);
            _exit(fcntl(fd, F_SETLEASE, F_RDLCK) < 0 ? errno : 0);
        }
        printf("lease on another's file without CAP_LEASE: %s\n", reaped(c));
    }
}

static void breaks(void) {
    const char *b = at("b");
    close(open(b, O_CREAT | O_WRONLY, 0644));

    // A read lease, broken by a writer: the holder's signal, the target, release.
    int r = open(b, O_RDONLY);
    fcntl(r, F_SETSIG, SIG_LEASE);
    check("read lease taken", fcntl(r, F_SETLEASE, F_RDLCK) == 0);
    printf("/proc/locks, held: %s\n", locks_line(r));
    pid_t c = opener(b, O_WRONLY);
    siginfo_t si = await(SIG_LEASE);
    printf("writer's open: signal %s, si_code %d, si_band %#lx, si_fd is the lease's: %d\n", si.si_signo == SIG_LEASE ? "F_SETSIG's" : "?", si.si_code, (long)si.si_band, si.si_fd == r);
    printf("F_GETLEASE while broken: %s\n", lease_name(fcntl(r, F_GETLEASE)));
    printf("/proc/locks, breaking: %s\n", locks_line(r));
    printf("a new read lease elsewhere meanwhile: ");
    int r2 = open(b, O_RDONLY | O_NONBLOCK);
    printf("%s\n", res(fcntl(r2, F_SETLEASE, F_RDLCK)));
    close(r2);
    printf("release: %s\n", res(fcntl(r, F_SETLEASE, F_UNLCK)));
    printf("the writer's open: %s\n", reaped(c));
    close(r);

    // A write lease, broken by a reader: the holder downgrades, the reader goes on.
    r = open(b, O_RDONLY);
    fcntl(r, F_SETSIG, SIG_LEASE);
    check("write lease taken", fcntl(r, F_SETLEASE, F_WRLCK) == 0);
    printf("/proc/locks, held: %s\n", locks_line(r));
    c = opener(b, O_RDONLY);
    si = await(SIG_LEASE);
    printf("reader's open: signal %s, si_fd is the lease's: %d\n", si.si_signo == SIG_LEASE ? "F_SETSIG's" : "?", si.si_fd == r);
    printf("F_GETLEASE while broken: %s\n", lease_name(fcntl(r, F_GETLEASE)));
    printf("/proc/locks, breaking: %s\n", locks_line(r));
    printf("downgrade: %s\n", res(fcntl(r, F_SETLEASE, F_RDLCK)));
    printf("the reader's open: %s\n", reaped(c));
    printf("F_GETLEASE after: %s\n", lease_name(fcntl(r, F_GETLEASE)));
    fcntl(r, F_SETLEASE, F_UNLCK);

    // O_NONBLOCK: EWOULDBLOCK at once, and the lease is breaking all the same;
    // plain SIGIO without F_SETSIG.
    fcntl(r, F_SETSIG, 0);
    check("write lease again", fcntl(r, F_SETLEASE, F_WRLCK) == 0);
    c = opener(b, O_WRONLY | O_NONBLOCK);
    printf("non-blocking writer's open: %s\n", reaped(c));
    si = await(SIGIO);
    printf("holder's signal: %s, si_code %#x\n", si.si_signo == SIGIO ? "SIGIO" : "?", si.si_code);
    printf("F_GETLEASE after it: %s\n", lease_name(fcntl(r, F_GETLEASE)));
    fcntl(r, F_SETLEASE, F_UNLCK);
    close(r);

    // truncate(2) breaks as a writer's open does.
    r = open(b, O_RDONLY);
    fcntl(r, F_SETSIG, SIG_LEASE);
    fcntl(r, F_SETLEASE, F_RDLCK);
    fflush(stdout);
    c = fork();
    if (c == 0) _exit(truncate(b, 0) < 0 ? errno : 0);
    si = await(SIG_LEASE);
    printf("truncate: signal with si_fd %d, F_GETLEASE %s\n", si.si_fd == r, lease_name(fcntl(r, F_GETLEASE)));
    fcntl(r, F_SETLEASE, F_UNLCK);
    printf("the truncate: %s\n", reaped(c));
    close(r);
}

// Signals F_NOTIFY's marks on `d` sent for `what`: how many SIG_DIR (with si_fd
// `d`) and SIGIO.
static void dir_event(const char *what, int d) {
    int n = 0, right_fd = 1;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIG_DIR);
    struct timespec zero = {0, 0};
    siginfo_t si;
    while (sigtimedwait(&s, &si, &zero) == SIG_DIR) {
        n++;
        right_fd &= si.si_fd == d && si.si_code == 3;
    }
    printf("%s: %d signal(s)%s, %d SIGIO\n", what, n, n && !right_fd ? " (wrong si_fd or si_code)" : "", drain(SIGIO));
}

static void dnotify(void) {
    char dir[128];
    snprintf(dir, sizeof dir, "%s/dir", base);
    mkdir(dir, 0755);
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    char x[160], y[160], z[160], w[160];
    snprintf(x, sizeof x, "%s/x", dir);
    snprintf(y, sizeof y, "%s/y", dir);
    snprintf(z, sizeof z, "%s/z", dir);
    snprintf(w, sizeof w, "%s/w", dir);

    int f = open(at("a"), O_RDONLY);
    printf("F_NOTIFY on a file: %s\n", res(fcntl(f, F_NOTIFY, DN_CREATE)));
    printf("F_NOTIFY 0 on a file: %s\n", res(fcntl(f, F_NOTIFY, 0)));
    close(f);

    fcntl(d, F_SETSIG, SIG_DIR);
    printf("F_NOTIFY DN_CREATE: %s\n", res(fcntl(d, F_NOTIFY, DN_CREATE)));
    printf("F_GETOWN after F_NOTIFY is self: %d\n", fcntl(d, F_GETOWN) == getpid());
    close(open(x, O_CREAT | O_WRONLY, 0644));
    dir_event("one-shot create", d);
    close(open(y, O_CREAT | O_WRONLY, 0644));
    dir_event("another create, the mark gone", d);

    fcntl(d, F_NOTIFY, DN_CREATE | DN_DELETE | DN_MULTISHOT);
    close(open(z, O_CREAT | O_WRONLY, 0644));
    dir_event("multishot create", d);
    close(open(w, O_CREAT | O_WRONLY, 0644));
    dir_event("multishot create again", d);
    unlink(z);
    dir_event("multishot delete", d);
    int fy = open(y, O_WRONLY);
    write(fy, "data", 4);
    dir_event("a write, DN_MODIFY not asked", d);
    fcntl(d, F_NOTIFY, DN_MODIFY | DN_MULTISHOT);
    write(fy, "more", 4);
    dir_event("a write, DN_MODIFY added", d);
    close(fy);
    rename(w, z);
    dir_event("a rename, as delete and create", d);
    chmod(y, 0600);
    dir_event("chmod, DN_ATTRIB not asked", d);

    fcntl(d, F_NOTIFY, 0);
    close(open(w, O_CREAT | O_WRONLY, 0644));
    dir_event("create after F_NOTIFY 0", d);
    fcntl(d, F_NOTIFY, DN_RENAME | DN_ATTRIB | DN_MULTISHOT);
    rename(w, x);
    dir_event("a rename, DN_RENAME", d);
    chmod(y, 0644);
    dir_event("chmod, DN_ATTRIB", d);

    // Plain SIGIO without F_SETSIG, for reads.
    fcntl(d, F_NOTIFY, 0);
    fcntl(d, F_SETSIG, 0);
    fcntl(d, F_NOTIFY, DN_ACCESS);
    char buf[8];
    int fr = open(y, O_RDONLY);
    read(fr, buf, sizeof buf);
    siginfo_t si;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGIO);
    struct timespec zero = {0, 0};
    int got = sigtimedwait(&s, &si, &zero);
    printf("a read, DN_ACCESS: %s, si_code %#x\n", got == SIGIO ? "SIGIO" : "no signal", got == SIGIO ? si.si_code : 0);
    read(fr, buf, sizeof buf);
    dir_event("another read, the one-shot mark gone", d);
    close(fr);

    // A closed descriptor's marks go.
    fcntl(d, F_SETSIG, SIG_DIR);
    fcntl(d, F_NOTIFY, DN_CREATE | DN_MULTISHOT);
    int d2 = dup(d);
    close(d);
    close(open(z, O_CREAT | O_WRONLY, 0644));
    dir_event("create after closing the marking descriptor", d2);
    close(d2);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!mkdtemp(base)) {
        printf("mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    // Searchable by the unprivileged child that is refused a lease.
    chmod(base, 0755);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIG_LEASE);
    sigaddset(&s, SIG_DIR);
    sigaddset(&s, SIGIO);
    sigprocmask(SIG_BLOCK, &s, NULL);

    grants();
    breaks();
    dnotify();
    printf("signals left over: %d %d %d\n", drain(SIG_LEASE), drain(SIG_DIR), drain(SIGIO));

    const char *names[] = {"dir/x", "dir/y", "dir/z", "dir/w", "dir", "a", "b", "other"};
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) remove(at(names[i]));
    rmdir(base);
    printf("failures: %d\n", failures);
    return failures != 0;
}
