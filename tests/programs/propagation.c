// Mount propagation (shared subtrees): shared bind mounts see each other's
// mounts and unmounts (lazy ones too), a slave receives and sends nothing
// back (what it receives where it has a mount of its own goes beneath that),
// a private mount does neither, an unbindable one is bound nowhere and an
// rbind leaves it out; MS_MOVE's rules; copies made by unshare(CLONE_NEWNS)
// are peers (slaves, from a new user namespace); mountinfo's optional fields
// (which kind, and whether two mounts share a group: the numbers differ from
// the host's); mount_setattr's propagation with AT_RECURSIVE;
// MOVE_MOUNT_SET_GROUP; the errors (pivot_root's too). Natively it first moves to a private
// mount namespace and works in a tmpfs of its own, so the host's tree is
// untouched.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MOVE_MOUNT_BENEATH
#define MOVE_MOUNT_BENEATH 0x200
#endif

static char base[] = "/tmp/rvt-prop-XXXXXX";

#include "scratch.h"

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r < 0 ? -1L : r, r < 0 ? strerrorname_np(errno) : "");
    fflush(stdout);
}

static void touch(const char *rel) {
    int fd = open(at(rel), O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) close(fd);
}

static void seen(const char *who, const char *rel) {
    printf("%s sees %s: %s\n", who, rel, access(at(rel), F_OK) == 0 ? "yes" : "no");
    fflush(stdout);
}

static void dirs(const char *list[]) {
    for (int i = 0; list[i]; i++) mkdir(at(list[i]), 0755);
}

static int tmpfs(const char *rel) {
    return mount("t", at(rel), "tmpfs", 0, NULL);
}

// The propagation mountinfo shows for the topmost mount on `rel`, as `pid`
// reads it: its peer group, its master's, propagate_from's, unbindable.
struct prop {
    int listed, shared, master, from, unbindable;
};

static struct prop prop_in(const char *pid, const char *rel) {
    struct prop p = {0};
    char file[64], line[2048];
    snprintf(file, sizeof file, "/proc/%s/mountinfo", pid);
    FILE *f = fopen(file, "r");
    while (f && fgets(line, sizeof line, f)) {
        char mp[512];
        int used = 0;
        if (sscanf(line, "%*d %*d %*s %*s %511s %*s%n", mp, &used) != 1 || strcmp(mp, rel[0] ? at(rel) : base)) continue;
        struct prop q = {.listed = 1};
        char *dash = strstr(line, " - ");
        if (dash) *dash = 0;
        for (char *t = strtok(line + used, " \n"); t; t = strtok(NULL, " \n")) {
            sscanf(t, "shared:%d", &q.shared);
            sscanf(t, "master:%d", &q.master);
            sscanf(t, "propagate_from:%d", &q.from);
            if (!strcmp(t, "unbindable")) q.unbindable = 1;
        }
        p = q;
    }
    if (f) fclose(f);
    return p;
}

static struct prop prop_of(const char *rel) {
    return prop_in("self", rel);
}

static const char *kind(struct prop p) {
    if (!p.listed) return "not mounted";
    if (p.unbindable) return p.master ? "unbindable slave" : "unbindable";
    if (p.shared && p.master) return "shared and slave";
    if (p.shared) return "shared";
    if (p.master) return "slave";
    return "private";
}

static void show_kind(const char *rel) {
    struct prop p = prop_of(rel);
    printf("%s is %s%s\n", rel[0] ? rel : "the scratch tmpfs", kind(p), p.from ? " with propagate_from" : "");
    fflush(stdout);
}

static void peers(const char *x, const char *y) {
    struct prop p = prop_of(x), q = prop_of(y);
    printf("%s and %s are peers: %s\n", x, y, p.shared && p.shared == q.shared ? "yes" : "no");
    fflush(stdout);
}

static void receives(const char *x, const char *y) {
    struct prop p = prop_of(x), q = prop_of(y);
    printf("%s receives from %s's group: %s\n", x, y, p.master && p.master == q.shared ? "yes" : "no");
    fflush(stdout);
}

static void mounted(const char *rel) {
    printf("%s is a mount: %s\n", rel, prop_of(rel).listed ? "yes" : "no");
    fflush(stdout);
}

static int make(const char *rel, unsigned long type) {
    return mount(NULL, at(rel), NULL, type, NULL);
}

static int setattr(const char *rel, unsigned flags, unsigned long long propagation) {
    struct mount_attr a = {.propagation = propagation};
    return mount_setattr(AT_FDCWD, at(rel), flags, &a, sizeof a);
}

// Shared pairs, slaves, private binds, lazy unmounts.
static void peer_groups(void) {
    dirs((const char *[]){"a", "b", "c", "d", NULL});
    show("tmpfs on a", tmpfs("a"));
    show_kind("a");
    show("make-shared a", make("a", MS_SHARED));
    show_kind("a");
    dirs((const char *[]){"a/x", "a/y", "a/s", "a/t", "a/k", "a/p", "a/q", "a/dx", NULL});
    show("bind a on b", mount(at("a"), at("b"), NULL, MS_BIND, NULL));
    show_kind("b");
    peers("a", "b");
    show("tmpfs on a/x", tmpfs("a/x"));
    touch("a/x/f");
    seen("b", "b/x/f");
    peers("a/x", "b/x");
    show("tmpfs on b/y", tmpfs("b/y"));
    touch("b/y/f");
    seen("a", "a/y/f");
    show("umount a/x", umount(at("a/x")));
    seen("b", "b/x/f");
    mounted("b/x");
    show("umount b/y", umount(at("b/y")));
    mounted("a/y");

    // A slave receives and sends nothing back.
    show("bind a on c", mount(at("a"), at("c"), NULL, MS_BIND, NULL));
    show("make-slave c", make("c", MS_SLAVE));
    show_kind("c");
    receives("c", "a");
    show("tmpfs on a/s", tmpfs("a/s"));
    touch("a/s/f");
    seen("c", "c/s/f");
    show_kind("c/s");
    receives("c/s", "a/s");
    show("tmpfs on c/t", tmpfs("c/t"));
    touch("c/t/f");
    seen("a", "a/t/f");
    seen("b", "b/t/f");
    show("umount a/s", umount(at("a/s")));
    seen("c", "c/s/f");
    show("umount c/t", umount(at("c/t")));
    // What comes to a place the slave has its own mount on goes beneath it,
    // and its unmount leaves that mount in place.
    show("tmpfs on c/k", tmpfs("c/k"));
    touch("c/k/mine");
    show("tmpfs on a/k", tmpfs("a/k"));
    touch("a/k/theirs");
    seen("c", "c/k/mine");
    seen("b", "b/k/theirs");
    show("umount a/k", umount(at("a/k")));
    seen("c", "c/k/mine");
    show("umount c/k", umount(at("c/k")));
    mounted("c/k");

    // A private bind neither sends nor receives.
    show("bind a on d", mount(at("a"), at("d"), NULL, MS_BIND, NULL));
    show("make-private d", make("d", MS_PRIVATE));
    show_kind("d");
    show("tmpfs on a/p", tmpfs("a/p"));
    touch("a/p/f");
    seen("d", "d/p/f");
    seen("c", "c/p/f");
    show("tmpfs on d/q", tmpfs("d/q"));
    touch("d/q/f");
    seen("a", "a/q/f");
    show("umount a/p", umount(at("a/p")));
    show("umount d/q", umount(at("d/q")));

    // A lazy unmount of a tree takes the peers' copies along.
    show("tmpfs on a/dx", tmpfs("a/dx"));
    mkdir(at("a/dx/in"), 0755);
    show("tmpfs on a/dx/in", tmpfs("a/dx/in"));
    touch("a/dx/in/f");
    seen("b", "b/dx/in/f");
    seen("c", "c/dx/in/f");
    show("umount a/dx busy", umount(at("a/dx")));
    show("umount -l a/dx", umount2(at("a/dx"), MNT_DETACH));
    mounted("b/dx/in");
    mounted("b/dx");
    mounted("c/dx");

    // A slave that is shared too, and making it shared again.
    show("make-shared c", make("c", MS_SHARED));
    show_kind("c");
    receives("c", "a");
    peers("c", "a");
}

// Unbindable mounts and rbind.
static void unbindable(void) {
    dirs((const char *[]){"u", "e", "r", "rb", NULL});
    show("tmpfs on u", tmpfs("u"));
    mkdir(at("u/sub"), 0755);
    show("make-unbindable u", make("u", MS_UNBINDABLE));
    show_kind("u");
    show("bind the unbindable u", mount(at("u"), at("e"), NULL, MS_BIND, NULL));
    show("bind a directory of u", mount(at("u/sub"), at("e"), NULL, MS_BIND, NULL));
    show("make-shared u", make("u", MS_SHARED));
    show_kind("u");
    show("make-private u", make("u", MS_PRIVATE));
    show_kind("u");

    show("tmpfs on r", tmpfs("r"));
    dirs((const char *[]){"r/in", "r/un", NULL});
    show("tmpfs on r/in", tmpfs("r/in"));
    touch("r/in/f");
    show("tmpfs on r/un", tmpfs("r/un"));
    touch("r/un/f");
    show("make-unbindable r/un", make("r/un", MS_UNBINDABLE));
    show("rbind r on rb", mount(at("r"), at("rb"), NULL, MS_BIND | MS_REC, NULL));
    seen("rb", "rb/in/f");
    seen("rb", "rb/un/f");
    mounted("rb/un");
}

// MS_MOVE: not out of a shared parent, no unbindable tree into a shared
// mount; a tree moved into one is shared and propagates.
static void moves(void) {
    dirs((const char *[]){"a/m", "a/mvin", "a/pmin", "mvdst", "mv", "pm", NULL});
    show("tmpfs on a/m", tmpfs("a/m"));
    show("move out of a shared parent", mount(at("a/m"), at("mvdst"), NULL, MS_MOVE, NULL));
    show("umount a/m", umount(at("a/m")));
    show("tmpfs on mv", tmpfs("mv"));
    show("make-unbindable mv", make("mv", MS_UNBINDABLE));
    show("move an unbindable mount into a shared one", mount(at("mv"), at("a/mvin"), NULL, MS_MOVE, NULL));
    show("tmpfs on pm", tmpfs("pm"));
    touch("pm/f");
    show_kind("pm");
    show("move pm into a", mount(at("pm"), at("a/pmin"), NULL, MS_MOVE, NULL));
    show_kind("a/pmin");
    seen("b", "b/pmin/f");
    peers("a/pmin", "b/pmin");
    show("umount a/pmin", umount(at("a/pmin")));
    mounted("b/pmin");
}

// Copies made by unshare(CLONE_NEWNS) are peers of the originals (a
// private mount's copy is private); from a new user namespace, slaves.
static void namespaces(void) {
    dirs((const char *[]){"n", "pv", NULL});
    show("tmpfs on n", tmpfs("n"));
    show("make-shared n", make("n", MS_SHARED));
    show("tmpfs on pv", tmpfs("pv"));
    dirs((const char *[]){"n/x", "n/y", "n/z", "n/w", "pv/x", NULL});
    for (int userns = 0; userns < 2; userns++) {
        int to_parent[2], to_child[2];
        char c;
        if (pipe(to_parent) || pipe(to_child)) exit(1);
        const char *who = userns ? "user-ns child" : "child";
        pid_t pid = fork();
        if (pid == 0) {
            char line[128];
            snprintf(line, sizeof line, "%s unshare", who);
            show(line, unshare(userns ? CLONE_NEWUSER | CLONE_NEWNS : CLONE_NEWNS));
            char ppid[16];
            snprintf(ppid, sizeof ppid, "%d", getppid());
            struct prop mine = prop_of("n"), theirs = prop_in(ppid, "n");
            printf("%s's n is %s; a peer of the parent's: %s; receives from it: %s\n", who, kind(mine), mine.shared && mine.shared == theirs.shared ? "yes" : "no",
                   mine.master && mine.master == theirs.shared ? "yes" : "no");
            printf("%s's pv is %s\n", who, kind(prop_of("pv")));
            fflush(stdout);
            write(to_parent[1], "x", 1);
            read(to_child[0], &c, 1);
            printf("%s: n/%s is a mount: %s, pv/x is a mount: %s\n", who, userns ? "z" : "x", prop_of(userns ? "n/z" : "n/x").listed ? "yes" : "no", prop_of("pv/x").listed ? "yes" : "no");
            snprintf(line, sizeof line, "%s tmpfs on n/%s", who, userns ? "w" : "y");
            show(line, tmpfs(userns ? "n/w" : "n/y"));
            write(to_parent[1], "x", 1);
            read(to_child[0], &c, 1);
            _exit(0);
        }
        read(to_parent[0], &c, 1);
        show("parent tmpfs on n/x or n/z", tmpfs(userns ? "n/z" : "n/x"));
        show("parent tmpfs on pv/x", tmpfs("pv/x"));
        write(to_child[1], "x", 1);
        read(to_parent[0], &c, 1);
        printf("parent: n/%s is a mount: %s\n", userns ? "w" : "y", prop_of(userns ? "n/w" : "n/y").listed ? "yes" : "no");
        fflush(stdout);
        write(to_child[1], "x", 1);
        int st;
        waitpid(pid, &st, 0);
        printf("%s exit: %d\n", who, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        fflush(stdout);
        umount2(at(userns ? "n/z" : "n/x"), MNT_DETACH);
        umount2(at(userns ? "n/w" : "n/y"), MNT_DETACH);
        umount2(at("pv/x"), MNT_DETACH);
        close(to_parent[0]), close(to_parent[1]), close(to_child[0]), close(to_child[1]);
    }
}

// propagate_from: a slave whose master this root does not show, where the
// master's own master has a mount it does.
static void propagate_from(void) {
    dirs((const char *[]){"pf", "pf/a", "pf/c", "pf/proc", "b2", NULL});
    show("tmpfs on pf/a", tmpfs("pf/a"));
    show("make-shared pf/a", make("pf/a", MS_SHARED));
    show("bind pf/a on b2", mount(at("pf/a"), at("b2"), NULL, MS_BIND, NULL));
    show("make-slave b2", make("b2", MS_SLAVE));
    show("make-shared b2", make("b2", MS_SHARED));
    show("bind b2 on pf/c", mount(at("b2"), at("pf/c"), NULL, MS_BIND, NULL));
    show("make-slave pf/c", make("pf/c", MS_SLAVE));
    show_kind("pf/c");
    receives("pf/c", "b2");
    show("proc on pf/proc", mount("proc", at("pf/proc"), "proc", 0, NULL));
    pid_t pid = fork();
    if (pid == 0) {
        if (chroot(at("pf"))) _exit(1);
        // The paths are the chroot's now.
        char line[2048], mp[512];
        FILE *f = fopen("/proc/self/mountinfo", "r");
        while (f && fgets(line, sizeof line, f)) {
            if (sscanf(line, "%*d %*d %*s %*s %511s", mp) != 1 || strcmp(mp, "/c")) continue;
            printf("in the chroot, /c has master: %s, propagate_from: %s\n", strstr(line, " master:") ? "yes" : "no", strstr(line, " propagate_from:") ? "yes" : "no");
        }
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    show("umount pf/proc", umount(at("pf/proc")));
}

// mount_setattr's propagation, alone and with AT_RECURSIVE.
static void setattr_propagation(void) {
    dirs((const char *[]){"sa", NULL});
    show("tmpfs on sa", tmpfs("sa"));
    mkdir(at("sa/in"), 0755);
    show("tmpfs on sa/in", tmpfs("sa/in"));
    show("setattr shared, recursive", setattr("sa", AT_RECURSIVE, MS_SHARED));
    show_kind("sa");
    show_kind("sa/in");
    peers("sa", "sa/in");
    show("setattr private", setattr("sa", 0, MS_PRIVATE));
    show_kind("sa");
    show_kind("sa/in");
    show("setattr slave, recursive", setattr("sa", AT_RECURSIVE, MS_SLAVE));
    show_kind("sa");
    show_kind("sa/in");
    show("setattr unbindable, recursive", setattr("sa", AT_RECURSIVE, MS_UNBINDABLE));
    show_kind("sa/in");
    show("setattr two types", setattr("sa", 0, MS_SHARED | MS_SLAVE));
    show("setattr MS_REC as a type", setattr("sa", 0, MS_REC));
    show("setattr private, recursive", setattr("sa", AT_RECURSIVE, MS_PRIVATE));
    show_kind("sa/in");
}

// MOVE_MOUNT_SET_GROUP: a private mount joins another's peer group.
static void set_group(void) {
    dirs((const char *[]){"g1", "g2", "g3", "g4", "h", "h2", NULL});
    show("tmpfs on g1", tmpfs("g1"));
    mkdir(at("g1/sub"), 0755);
    mkdir(at("g1/sub/x"), 0755);
    show("make-shared g1", make("g1", MS_SHARED));
    show("bind g1/sub on g2", mount(at("g1/sub"), at("g2"), NULL, MS_BIND, NULL));
    peers("g1", "g2");
    show("make-private g2", make("g2", MS_PRIVATE));
    show("set group g1 -> g2", move_mount(AT_FDCWD, at("g1"), AT_FDCWD, at("g2"), MOVE_MOUNT_SET_GROUP));
    peers("g1", "g2");
    show("tmpfs on g1/sub/x", tmpfs("g1/sub/x"));
    touch("g1/sub/x/f");
    seen("g2", "g2/x/f");
    show("umount g1/sub/x", umount(at("g1/sub/x")));
    show("set group onto a shared mount", move_mount(AT_FDCWD, at("g1"), AT_FDCWD, at("g2"), MOVE_MOUNT_SET_GROUP));
    show("bind g1 on g3", mount(at("g1"), at("g3"), NULL, MS_BIND, NULL));
    show("make-private g3", make("g3", MS_PRIVATE));
    show("set group onto a wider root", move_mount(AT_FDCWD, at("g2"), AT_FDCWD, at("g3"), MOVE_MOUNT_SET_GROUP));
    show("tmpfs on h", tmpfs("h"));
    show("bind h on h2", mount(at("h"), at("h2"), NULL, MS_BIND, NULL));
    show("set group from a private mount", move_mount(AT_FDCWD, at("h"), AT_FDCWD, at("h2"), MOVE_MOUNT_SET_GROUP));
    show("set group across file systems", move_mount(AT_FDCWD, at("g1"), AT_FDCWD, at("h2"), MOVE_MOUNT_SET_GROUP));
    show("set group onto a directory", move_mount(AT_FDCWD, at("g1"), AT_FDCWD, at("g1/sub"), MOVE_MOUNT_SET_GROUP));
    show("set group and beneath", move_mount(AT_FDCWD, at("g1"), AT_FDCWD, at("g3"), MOVE_MOUNT_SET_GROUP | MOVE_MOUNT_BENEATH));
    // From a slave: `to` receives from the same master.
    show("set group g1 -> g3", move_mount(AT_FDCWD, at("g1"), AT_FDCWD, at("g3"), MOVE_MOUNT_SET_GROUP));
    show("make-slave g3", make("g3", MS_SLAVE));
    receives("g3", "g1");
    show("bind g1 on g4", mount(at("g1"), at("g4"), NULL, MS_BIND, NULL));
    show("make-private g4", make("g4", MS_PRIVATE));
    show("set group from the slave g3 -> g4", move_mount(AT_FDCWD, at("g3"), AT_FDCWD, at("g4"), MOVE_MOUNT_SET_GROUP));
    show_kind("g4");
    receives("g4", "g1");
}

// mount(2)'s errors.
static void errors(void) {
    show("two propagation types", mount(NULL, at("a"), NULL, MS_SHARED | MS_PRIVATE, NULL));
    show("a type and MS_RDONLY", mount(NULL, at("a"), NULL, MS_SHARED | MS_RDONLY, NULL));
    show("a type and MS_NOSUID|MS_NOATIME", mount(NULL, at("a"), NULL, MS_SHARED | MS_NOSUID | MS_NOATIME, NULL));
    show("a type and MS_MOVE", mount(NULL, at("a"), NULL, MS_SHARED | MS_MOVE, NULL));
    show("a type on a directory", mount(NULL, at("a/x"), NULL, MS_SHARED, NULL));
    show("a type with MS_REC and MS_SILENT", mount(NULL, at("a"), NULL, MS_SHARED | MS_REC | MS_SILENT, NULL));
    show_kind("a");
    // Nothing moves out of a shared mount: pivot_root with put_old on one (in
    // a namespace of its own, where it would otherwise succeed).
    pid_t pid = fork();
    if (pid == 0) {
        unshare(CLONE_NEWNS);
        show("pivot_root with put_old on a shared mount", syscall(SYS_pivot_root, at("a"), at("a/x")));
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

int main(void) {
    if (unshare(CLONE_NEWNS) == 0) mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    if (!mkdtemp(base)) return 1;
    if (mount("none", base, "tmpfs", 0, NULL) != 0) return 1;
    show_kind("");
    peer_groups();
    unbindable();
    moves();
    namespaces();
    propagate_from();
    setattr_propagation();
    set_group();
    errors();
    umount2(base, MNT_DETACH);
    rmdir(base);
    return 0;
}
