// statmount and listmount (Linux 6.8), and statx's mount IDs: every mount
// listmount lists from the root is one /proc/self/mountinfo shows, and
// statmount tells of each what mountinfo says (IDs, parent, device, type,
// root, mount point, flags, propagation); then mounts made here (read-only
// and nosuid, a bind of a subdirectory, a shared mount and its slave, an
// unbindable one), listing beneath a mount in pieces, the errors, and what a
// process chrooted without CAP_SYS_ADMIN may see. Natively it first moves to
// a private mount namespace, as mount_api.c does; only what holds on any
// kernel since 6.8 is printed (unique IDs and group numbers differ), but for
// the mount options (6.10) and the layout of the strings (6.18: a NUL first,
// an empty string not given). The options of every mount are compared with
// mountinfo's.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include "check.h"

#define NR_statmount 457
#define NR_listmount 458
#define LSMT_ROOT UINT64_MAX
#define SM_SB_BASIC 1
#define SM_MNT_BASIC 2
#define SM_PROPAGATE_FROM 4
#define SM_MNT_ROOT 8
#define SM_MNT_POINT 16
#define SM_FS_TYPE 32
#define SM_ALL 63
#define SM_MNT_OPTS 0x80
#define ATTR_RDONLY 0x1
#define ATTR_NOSUID 0x2
#define ATTR_NODEV 0x4
#define ATTR_NOEXEC 0x8
#define ATTR_ATIME 0x70
#define ATTR_NOATIME 0x10
#define ATTR_STRICTATIME 0x20
#define ATTR_NODIRATIME 0x80
#define ATTR_NOSYMFOLLOW 0x200000
#define X_MNT_ID 0x1000
#define X_MNT_ID_UNIQUE 0x4000

struct req {
    uint32_t size, spare;
    uint64_t mnt_id, param;
};

struct sm {
    uint32_t size, mnt_opts;
    uint64_t mask;
    uint32_t sb_dev_major, sb_dev_minor;
    uint64_t sb_magic;
    uint32_t sb_flags, fs_type;
    uint64_t mnt_id, mnt_parent_id;
    uint32_t mnt_id_old, mnt_parent_id_old;
    uint64_t mnt_attr, mnt_propagation, mnt_peer_group, mnt_master, propagate_from;
    uint32_t mnt_root, mnt_point;
    uint64_t spare2[50];
    char str[];
};

static char base[] = "/tmp/rvt-statmount-XXXXXX";
#include "scratch.h"

static char smbuf[1 << 16];
static struct sm *sm = (struct sm *)smbuf;

static long statmount_(uint64_t id, uint64_t mask, void *buf, size_t size, unsigned flags) {
    struct req q = {sizeof q, 0, id, mask};
    return syscall(NR_statmount, &q, buf, size, flags);
}

static long listmount_(uint64_t id, uint64_t last, uint64_t *ids, size_t n, unsigned flags) {
    struct req q = {sizeof q, 0, id, last};
    return syscall(NR_listmount, &q, ids, n, flags);
}

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r < 0 ? -1L : r, r < 0 ? errname(errno) : "");
}

// The mount ID statx gives for `path`: unique or old, 0 if it says none.
static uint64_t mnt_id_of(const char *path, unsigned want) {
    struct statx x;
    if (statx(AT_FDCWD, path, 0, want, &x) != 0 || !(x.stx_mask & want)) return 0;
    return x.stx_mnt_id;
}

// statmount of everything into `sm`: 0 or -1.
static int stat_all(uint64_t id) {
    memset(smbuf, 0, sizeof smbuf);
    return statmount_(id, SM_ALL, smbuf, sizeof smbuf, 0) == 0 ? 0 : -1;
}

struct info {
    unsigned id, parent, major, minor;
    char root[512], point[512], opts[256], optional[256], fstype[64], super[256];
};

static struct info infos[512];
static int ninfos;

// Undoes mountinfo's octal escapes.
static void unmangle(char *s) {
    char *o = s;
    for (char *i = s; *i; o++) {
        if (i[0] == '\\' && i[1] >= '0' && i[1] <= '7' && i[2] && i[3]) {
            *o = (char)((i[1] - '0') * 64 + (i[2] - '0') * 8 + (i[3] - '0'));
            i += 4;
        } else {
            *o = *i++;
        }
    }
    *o = 0;
}

static void read_mountinfo(void) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[2048];
    ninfos = 0;
    while (f && ninfos < 512 && fgets(line, sizeof line, f)) {
        struct info *m = &infos[ninfos];
        int n = 0;
        if (sscanf(line, "%u %u %u:%u %511s %511s %255s %n", &m->id, &m->parent, &m->major, &m->minor, m->root, m->point, m->opts, &n) < 7) continue;
        char *rest = line + n, *dash = strstr(rest, "- ");
        if (!dash) continue;
        snprintf(m->optional, sizeof m->optional, "%.*s", (int)(dash - rest), rest);
        char source[512];
        if (sscanf(dash + 2, "%63s %511s %255s", m->fstype, source, m->super) < 3) continue;
        unmangle(m->root);
        unmangle(m->point);
        ninfos++;
    }
    if (f) fclose(f);
}

static struct info *info_of(unsigned id) {
    for (int i = 0; i < ninfos; i++)
        if (infos[i].id == id) return &infos[i];
    return NULL;
}

// Whether the comma-separated `opts` has `opt`.
static int has_opt(const char *opts, const char *opt) {
    size_t n = strlen(opt);
    for (const char *p = opts; (p = strstr(p, opt)); p += n)
        if ((p == opts || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return 1;
    return 0;
}

// The number after `key` in mountinfo's optional fields, or 0.
static uint64_t field(const char *optional, const char *key) {
    const char *p = strstr(optional, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

// Where the strings of `sm` end (Linux 6.8 puts the first at offset 0, later
// kernels a NUL first).
static size_t strings_end(void) {
    uint32_t at[3] = {sm->fs_type, sm->mnt_root, sm->mnt_point};
    size_t end = 0;
    for (int i = 0; i < 3; i++) {
        size_t e = at[i] + strlen(sm->str + at[i]) + 1;
        if (e > end) end = e;
    }
    return end;
}

// Whether `sm` (of everything) says what mountinfo's `m` says; the first
// difference goes to stderr.
static int agrees(const struct info *m) {
    const char *why = NULL;
    uint64_t attr = sm->mnt_attr, prop = sm->mnt_propagation;
    uint64_t atime = has_opt(m->opts, "noatime") ? ATTR_NOATIME : has_opt(m->opts, "relatime") ? 0 : ATTR_STRICTATIME;
    uint64_t shared = field(m->optional, "shared:"), master = field(m->optional, "master:");
    uint64_t from = field(m->optional, "propagate_from:");
    if (sm->mask != SM_ALL) why = "mask";
    else if (sm->mnt_id_old != m->id || sm->mnt_parent_id_old != m->parent) why = "ids";
    else if (sm->sb_dev_major != m->major || sm->sb_dev_minor != m->minor) why = "device";
    else if (strcmp(sm->str + sm->fs_type, m->fstype)) why = "type";
    else if (strcmp(sm->str + sm->mnt_root, m->root)) why = "root";
    else if (strcmp(sm->str + sm->mnt_point, m->point)) why = "mount point";
    else if (!!(attr & ATTR_RDONLY) != has_opt(m->opts, "ro") || !!(attr & ATTR_NOSUID) != has_opt(m->opts, "nosuid") ||
             !!(attr & ATTR_NODEV) != has_opt(m->opts, "nodev") || !!(attr & ATTR_NOEXEC) != has_opt(m->opts, "noexec") ||
             (attr & ATTR_ATIME) != atime || !!(attr & ATTR_NODIRATIME) != has_opt(m->opts, "nodiratime") ||
             !!(attr & ATTR_NOSYMFOLLOW) != has_opt(m->opts, "nosymfollow"))
        why = "attributes";
    else if (!!(sm->sb_flags & 1) != (strncmp(m->super, "ro", 2) == 0 && (m->super[2] == 0 || m->super[2] == ','))) why = "sb_flags";
    else if (!!(prop & MS_SHARED) != !!shared || sm->mnt_peer_group != shared) why = "shared";
    else if (!!(prop & MS_SLAVE) != !!master || sm->mnt_master != master) why = "master";
    else if (from ? sm->propagate_from != from : sm->propagate_from != 0 && sm->propagate_from != master) why = "propagate_from";
    else if (!!(prop & MS_UNBINDABLE) != !!strstr(m->optional, "unbindable")) why = "unbindable";
    else if (!!(prop & MS_PRIVATE) != (!shared && !master && !strstr(m->optional, "unbindable"))) why = "private";
    else if (sm->size != sizeof *sm + strings_end())
        why = "size";
    if (why) fprintf(stderr, "mount %u (%s) disagrees with mountinfo: %s\n", m->id, m->point, why);
    return why == NULL;
}

// The file system's options mountinfo shows for `m`: its last field without
// "rw" or "ro" and the superblock's flags (show_sb_opts), which statmount's
// MNT_OPTS leaves out.
static void fs_opts(const struct info *m, char *out, size_t size) {
    char super[256];
    snprintf(super, sizeof super, "%s", m->super);
    *out = 0;
    for (char *save = NULL, *o = strtok_r(super, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
        if (!strcmp(o, "rw") || !strcmp(o, "ro") || !strcmp(o, "sync") || !strcmp(o, "dirsync") || !strcmp(o, "mand") || !strcmp(o, "lazytime")) continue;
        snprintf(out + strlen(out), size - strlen(out), "%s%s", *out ? "," : "", o);
    }
}

// Whether statmount's MNT_OPTS of `id` says what mountinfo's `m` shows: none
// (6.18 leaves the mask bit clear, 6.10 gives "") or the same text.
static int opts_agree(uint64_t id, const struct info *m) {
    char want[256];
    fs_opts(m, want, sizeof want);
    memset(smbuf, 0, sizeof smbuf);
    if (statmount_(id, SM_MNT_OPTS, smbuf, sizeof smbuf, 0) != 0) return 0;
    int ok = sm->mask == SM_MNT_OPTS ? !strcmp(sm->str + sm->mnt_opts, want) : sm->mask == 0 && !*want;
    if (!ok) fprintf(stderr, "mount %u (%s): options [%s], mountinfo's [%s]\n", m->id, m->point, sm->mask ? sm->str + sm->mnt_opts : "(none)", want);
    return ok;
}

// The mount IDs under `id` (all of them, from repeated calls of 2 at a time).
static int list_all(uint64_t id, uint64_t *ids, int max) {
    int n = 0;
    for (;;) {
        long got = listmount_(id, n ? ids[n - 1] : 0, ids + n, max - n < 2 ? max - n : 2, 0);
        if (got <= 0) return got < 0 ? -1 : n;
        n += got;
    }
}

static void drop_sys_admin(void) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    d[0].effective &= ~(1u << CAP_SYS_ADMIN);
    syscall(SYS_capset, &h, d);
}

int main(void) {
    if (unshare(CLONE_NEWNS) == 0) mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    if (!mkdtemp(base)) return 1;
    if (mount("none", base, "tmpfs", 0, NULL) != 0) return 1;
    mkdir(at("a"), 0755);
    mkdir(at("b"), 0755);
    mkdir(at("c"), 0755);
    mkdir(at("d"), 0755);
    if (mount("none", at("a"), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOATIME, NULL) != 0) return 1;
    mkdir(at("a/sub"), 0755);
    mount(NULL, at("a"), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOATIME, NULL);
    mount(at("a/sub"), at("b"), NULL, MS_BIND, NULL);
    mount(NULL, at("a"), NULL, MS_SHARED, NULL);
    mount(at("a"), at("c"), NULL, MS_BIND, NULL);
    mount(NULL, at("c"), NULL, MS_SLAVE, NULL);
    mount("none", at("d"), "tmpfs", MS_NOEXEC | MS_STRICTATIME, "size=1m,mode=700");
    mount(NULL, at("d"), NULL, MS_UNBINDABLE, NULL);

    // statx: the old ID unasked, the unique one when asked for.
    uint64_t base_id = mnt_id_of(base, X_MNT_ID_UNIQUE), a_id = mnt_id_of(at("a"), X_MNT_ID_UNIQUE);
    uint64_t b_id = mnt_id_of(at("b"), X_MNT_ID_UNIQUE), c_id = mnt_id_of(at("c"), X_MNT_ID_UNIQUE);
    uint64_t d_id = mnt_id_of(at("d"), X_MNT_ID_UNIQUE);
    check("statx gives unique mount IDs", base_id && a_id && b_id && c_id && d_id);
    check("they are not the old ones", base_id > UINT32_MAX / 2 && base_id != mnt_id_of(base, X_MNT_ID));
    struct statx x;
    check("statx gives the old ID with the basic stats", statx(AT_FDCWD, base, 0, 0x7ff, &x) == 0 && (x.stx_mask & X_MNT_ID) &&
                                                              !(x.stx_mask & X_MNT_ID_UNIQUE) && x.stx_mnt_id == mnt_id_of(base, X_MNT_ID));

    // Every mount against mountinfo.
    read_mountinfo();
    static uint64_t ids[1024];
    long n = listmount_(LSMT_ROOT, 0, ids, 1024, 0);
    check("listmount from the root lists what mountinfo shows", n > 0 && n == ninfos);
    int all_agree = n > 0, increasing = 1, opts_all_agree = n > 0;
    for (long i = 0; i < n; i++) {
        struct info *m;
        if (stat_all(ids[i]) != 0 || sm->mnt_id != ids[i] || !(m = info_of(sm->mnt_id_old)) || !agrees(m)) all_agree = 0;
        else if (!opts_agree(ids[i], m)) opts_all_agree = 0;
        if (i && ids[i] <= ids[i - 1]) increasing = 0;
    }
    check("statmount of each says what mountinfo says", all_agree);
    check("statmount's options of each are mountinfo's", opts_all_agree);
    // /dev, a devtmpfs or a container runtime's tmpfs, shows its mode.
    char dev_opts[256] = "";
    for (int i = 0; i < ninfos; i++)
        if (!strcmp(infos[i].point, "/dev")) fs_opts(&infos[i], dev_opts, sizeof dev_opts);
    check("/dev's options have mode=755", has_opt(dev_opts, "mode=755"));
    check("listmount lists by increasing ID", increasing);
    check("statx's old ID is mountinfo's", stat_all(base_id) == 0 && sm->mnt_id_old == mnt_id_of(base, X_MNT_ID));
    check("each mount's unique parent ID is its parent's", stat_all(a_id) == 0 && sm->mnt_parent_id == base_id);

    // The mounts made here.
    stat_all(a_id);
    printf("a: type %s, root %s, at base%s: %s\n", sm->str + sm->fs_type, sm->str + sm->mnt_root,
           sm->str + sm->mnt_point + strlen(base), strcmp(sm->str + sm->mnt_point, at("a")) ? "FAIL" : "ok");
    printf("a: attributes %#llx, propagation %#llx, in a peer group: %s\n", (unsigned long long)sm->mnt_attr,
           (unsigned long long)sm->mnt_propagation, sm->mnt_peer_group ? "yes" : "no");
    check("a is tmpfs by its magic", sm->sb_magic == 0x01021994);
    uint64_t group = sm->mnt_peer_group;
    stat_all(b_id);
    printf("b: root %s, attributes %#llx, propagation %#llx\n", sm->str + sm->mnt_root, (unsigned long long)sm->mnt_attr, (unsigned long long)sm->mnt_propagation);
    stat_all(c_id);
    printf("c: root %s, propagation %#llx, peer group %llu\n", sm->str + sm->mnt_root, (unsigned long long)sm->mnt_propagation, (unsigned long long)sm->mnt_peer_group);
    check("c is a slave of a's group", sm->mnt_master == group && sm->propagate_from == group);
    stat_all(d_id);
    printf("d: attributes %#llx, propagation %#llx\n", (unsigned long long)sm->mnt_attr, (unsigned long long)sm->mnt_propagation);

    // Beneath the scratch mount, whole and in pieces.
    uint64_t under[16];
    n = listmount_(base_id, 0, under, 16, 0);
    check("listmount of base lists a, b, c and d", n == 4 && under[0] == a_id && under[1] == b_id && under[2] == c_id && under[3] == d_id);
    printf("listmount of base, 2 at a time: %d\n", list_all(base_id, under, 16));
    show("listmount after d", listmount_(base_id, d_id, under, 16, 0));
    show("listmount of a", listmount_(a_id, 0, under, 16, 0));
    show("listmount into no room", listmount_(base_id, 0, under, 0, 0));

    // Partial results and the buffer's size.
    memset(smbuf, 0, sizeof smbuf);
    show("statmount of nothing", statmount_(a_id, 0, smbuf, sizeof smbuf, 0));
    printf("its size %u, mask %llu\n", sm->size, (unsigned long long)sm->mask);
    show("statmount of the basics into 100 bytes", statmount_(a_id, SM_SB_BASIC | SM_MNT_BASIC, smbuf, 100, 0));
    printf("its size %u\n", sm->size);
    show("statmount of the type into 517 bytes", statmount_(a_id, SM_FS_TYPE, smbuf, sizeof *sm + 5, 0));
    show("statmount of the type into 519 bytes", statmount_(a_id, SM_FS_TYPE, smbuf, sizeof *sm + 7, 0));
    printf("its type %s, its size right: %s\n", sm->str + sm->fs_type, sm->size == sizeof *sm + strings_end() ? "yes" : "no");
    show("statmount of a mask of later kernels' bits", statmount_(a_id, 1ull << 40, smbuf, sizeof smbuf, 0));

    // The options: a NUL-terminated string after a first NUL, with room for
    // both or EOVERFLOW; a buffer of the struct alone has no room for any
    // string, asked for a mount that is or is not.
    memset(smbuf, 0, sizeof smbuf);
    show("statmount of d's options", statmount_(d_id, SM_MNT_OPTS, smbuf, sizeof smbuf, 0));
    char d_opts[256];
    snprintf(d_opts, sizeof d_opts, "%s", sm->str + sm->mnt_opts);
    size_t need = sizeof *sm + 1 + strlen(d_opts) + 1;
    printf("its mask %#llx, offset %u, size right: %s\n", (unsigned long long)sm->mask, sm->mnt_opts, sm->size == need ? "yes" : "no");
    check("d's options are its size and mode", has_opt(d_opts, "size=1024k") && has_opt(d_opts, "mode=700"));
    memset(smbuf, 0, sizeof smbuf);
    show("statmount of d's type and options", statmount_(d_id, SM_FS_TYPE | SM_MNT_OPTS, smbuf, sizeof smbuf, 0));
    printf("type %s at %u, options at %s\n", sm->str + sm->fs_type, sm->fs_type, sm->mnt_opts == sm->fs_type + strlen("tmpfs") + 1 && !strcmp(sm->str + sm->mnt_opts, d_opts) ? "the next" : "FAIL");
    show("statmount of d's options into a byte too few", statmount_(d_id, SM_MNT_OPTS, smbuf, need - 1, 0));
    memset(smbuf, 0, sizeof smbuf);
    show("statmount of d's options into just enough", statmount_(d_id, SM_MNT_OPTS, smbuf, need, 0));
    printf("its mask %#llx, options right: %s\n", (unsigned long long)sm->mask, strcmp(sm->str + sm->mnt_opts, d_opts) ? "no" : "yes");
    show("statmount of d's options into the struct alone", statmount_(d_id, SM_MNT_OPTS, smbuf, sizeof *sm, 0));
    show("statmount of d's basics into the struct alone", statmount_(d_id, SM_SB_BASIC, smbuf, sizeof *sm, 0));
    show("statmount of an unknown ID's options into the struct alone", statmount_(UINT64_MAX - 1, SM_MNT_OPTS, smbuf, sizeof *sm, 0));

    // The errors.
    show("statmount flags 1", statmount_(a_id, SM_ALL, smbuf, sizeof smbuf, 1));
    show("statmount of LSMT_ROOT", statmount_(LSMT_ROOT, SM_ALL, smbuf, sizeof smbuf, 0));
    show("statmount of an unknown ID", statmount_(UINT64_MAX - 1, SM_ALL, smbuf, sizeof smbuf, 0));
    long r = statmount_(5, SM_ALL, smbuf, sizeof smbuf, 0);
    check("statmount of an old-style ID fails", r < 0 && (errno == ENOENT || errno == EINVAL));
    show("statmount into an unwritable buffer", statmount_(a_id, SM_ALL, (void *)8, 4096, 0));
    show("statmount into a buffer past user memory", statmount_(a_id, SM_ALL, (void *)0x7ffffffff000, 4096, 0));
    struct {
        struct req q;
        uint8_t tail[232];
    } big = {{sizeof big, 0, a_id, SM_FS_TYPE}, {0}};
    show("a request of 256 bytes", syscall(NR_statmount, &big, smbuf, sizeof smbuf, 0));
    big.tail[200] = 1;
    show("a request of 256 bytes with a byte set past the known", syscall(NR_statmount, &big, smbuf, sizeof smbuf, 0));
    struct req q = {16, 0, a_id, SM_FS_TYPE};
    show("a request of 16 bytes", syscall(NR_statmount, &q, smbuf, sizeof smbuf, 0));
    q.size = 4097;
    show("a request of 4097 bytes", syscall(NR_statmount, &q, smbuf, sizeof smbuf, 0));
    q = (struct req){sizeof q, 1, a_id, SM_FS_TYPE};
    show("a request with spare set", syscall(NR_statmount, &q, smbuf, sizeof smbuf, 0));
    show("an unreadable request", syscall(NR_statmount, (void *)8, smbuf, sizeof smbuf, 0));
    show("listmount flags 2", listmount_(LSMT_ROOT, 0, under, 16, 2));
    show("listmount of an unknown ID", listmount_(UINT64_MAX - 1, 0, under, 16, 0));
    show("listmount into NULL", listmount_(LSMT_ROOT, 0, NULL, 16, 0));
    q.spare = 0;
    q.size = 16;
    show("listmount of a request of 16 bytes", syscall(NR_listmount, &q, under, 16, 0));

    // Chrooted into a: what lies outside is for CAP_SYS_ADMIN only.
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        failures = 0;
        if (chroot(at("a")) != 0 || chdir("/") != 0) _exit(1);
        stat_all(base_id);
        printf("chrooted, base's mount point: [%s]\n", sm->str + sm->mnt_point);
        stat_all(a_id);
        printf("chrooted, a's mount point: [%s]\n", sm->str + sm->mnt_point);
        drop_sys_admin();
        show("without CAP_SYS_ADMIN, statmount of base", statmount_(base_id, SM_ALL, smbuf, sizeof smbuf, 0));
        show("without CAP_SYS_ADMIN, statmount of a", statmount_(a_id, SM_ALL, smbuf, sizeof smbuf, 0));
        show("without CAP_SYS_ADMIN, listmount of base", listmount_(base_id, 0, under, 16, 0));
        n = listmount_(LSMT_ROOT, 0, under, 16, 0);
        show("without CAP_SYS_ADMIN, listmount of the root", n);
        check("which is a", n == 1 && under[0] == a_id);
        fflush(stdout);
        _exit(failures != 0);
    }
    int status;
    waitpid(pid, &status, 0);
    check("the chrooted child's checks", WIFEXITED(status) && WEXITSTATUS(status) == 0);

    // Read-only: a bind's own flag leaves its superblock writable; a remount
    // without MS_BIND makes the superblock read-only under every mount of it.
    stat_all(a_id);
    printf("a, a read-only bind remount: attributes ro %d, sb_flags %#x\n", !!(sm->mnt_attr & ATTR_RDONLY), sm->sb_flags);
    mkdir(at("e"), 0755);
    mkdir(at("f"), 0755);
    mount("none", at("e"), "tmpfs", 0, NULL);
    mount(at("e"), at("f"), NULL, MS_BIND, NULL);
    uint64_t e_id = mnt_id_of(at("e"), X_MNT_ID_UNIQUE), f_id = mnt_id_of(at("f"), X_MNT_ID_UNIQUE);
    mount(NULL, at("f"), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
    stat_all(e_id);
    printf("e, f bound read-only: e's attributes ro %d, sb_flags %#x\n", !!(sm->mnt_attr & ATTR_RDONLY), sm->sb_flags);
    stat_all(f_id);
    printf("e, f bound read-only: f's attributes ro %d, sb_flags %#x\n", !!(sm->mnt_attr & ATTR_RDONLY), sm->sb_flags);
    show("remount e read-only", mount(NULL, at("e"), NULL, MS_REMOUNT | MS_RDONLY, NULL));
    show("remount f's bind writable", mount(NULL, at("f"), NULL, MS_REMOUNT | MS_BIND, NULL));
    stat_all(e_id);
    printf("e remounted read-only: e's attributes ro %d, sb_flags %#x\n", !!(sm->mnt_attr & ATTR_RDONLY), sm->sb_flags);
    stat_all(f_id);
    printf("e remounted read-only: f's attributes ro %d, sb_flags %#x\n", !!(sm->mnt_attr & ATTR_RDONLY), sm->sb_flags);
    check("a read-only superblock is read-only through every mount", creat(at("f/x"), 0644) < 0 && errno == EROFS);
    read_mountinfo();
    struct info *mi = NULL;
    check("statmount of f says what mountinfo says", stat_all(f_id) == 0 && (mi = info_of(sm->mnt_id_old)) && agrees(mi));
    show("remount e writable", mount(NULL, at("e"), NULL, MS_REMOUNT, NULL));
    stat_all(f_id);
    printf("e remounted writable: f's attributes ro %d, sb_flags %#x\n", !!(sm->mnt_attr & ATTR_RDONLY), sm->sb_flags);
    int fd = creat(at("f/x"), 0644);
    check("and writable again", fd >= 0);
    close(fd);

    umount2(base, MNT_DETACH);
    rmdir(base);
    puts(failures ? "some failed" : "all ok");
    return failures != 0;
}
