// System-wide /proc files and /sys/devices/system/cpu: their formats, and
// agreement with what the program learns otherwise (uname, sysconf, the clock).
// Prints properties, not values, so the output is the same natively and in the
// sandbox.
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h> /* get_nprocs */
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static char *slurp(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
        ssize_t r = read(fd, buf + n, cap - n);
        if (r <= 0) break;
        n += r;
    }
    close(fd);
    buf[n] = 0;
    return buf;
}

/* The number after "Key:" in meminfo, in kB, or -1. Checks the layout: the key and
   colon padded to 16 columns, the number right-aligned in 8, then " kB". */
static long meminfo_kb(const char *text, const char *key, int *layout_ok) {
    char pat[64];
    snprintf(pat, sizeof pat, "\n%s:", key);
    const char *p = strncmp(text, pat + 1, strlen(pat + 1)) ? strstr(text, pat) : text - 1;
    if (!p) return -1;
    p++;
    const char *nl = strchr(p, '\n');
    if (layout_ok && nl && !(nl - p >= 27 && !strncmp(nl - 3, " kB", 3) && isdigit((unsigned char)nl[-4]))) *layout_ok = 0;
    return strtol(p + strlen(key) + 1, NULL, 10);
}

static int is_uuid(const char *s) {
    if (strlen(s) != 37 || s[36] != '\n') return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

int main(void) {
    char *s = slurp("/proc/meminfo");
    int layout = s != NULL;
    long total = s ? meminfo_kb(s, "MemTotal", &layout) : -1;
    long free_kb = s ? meminfo_kb(s, "MemFree", &layout) : -1;
    long avail = s ? meminfo_kb(s, "MemAvailable", &layout) : -1;
    check("meminfo: MemTotal first, > 0", s && !strncmp(s, "MemTotal:", 9) && total > 0);
    check("meminfo: MemFree and MemAvailable within MemTotal", free_kb >= 0 && free_kb <= total && avail >= 0 && avail <= total);
    check("meminfo: Cached, SwapTotal, Shmem present", s && meminfo_kb(s, "Cached", &layout) >= 0 && meminfo_kb(s, "SwapTotal", &layout) >= 0 && meminfo_kb(s, "Shmem", &layout) >= 0);
    check("meminfo: Linux's column layout", layout);
    free(s);

    long online = sysconf(_SC_NPROCESSORS_ONLN);
    s = slurp("/proc/cpuinfo");
    int procs = 0;
    for (char *p = s; p && (p = strstr(p, "processor\t: ")); p++) procs++;
    check("cpuinfo: one block per online CPU", procs == online);
    check("cpuinfo: vendor, model name, flags", s && strstr(s, "\nvendor_id\t: ") && strstr(s, "\nmodel name\t: ") && strstr(s, "\nflags\t\t: "));
    char *flags = s ? strstr(s, "\nflags\t\t: ") : NULL;
    char line[8192] = "";
    if (flags) snprintf(line, sizeof line, " %.*s ", (int)strcspn(flags + 10, "\n"), flags + 10);
    check("cpuinfo: flags include fpu, sse2 and lm", strstr(line, " fpu ") && strstr(line, " sse2 ") && strstr(line, " lm "));
    free(s);

    char want[160];
    snprintf(want, sizeof want, online > 1 ? "0-%ld\n" : "0\n", online - 1);
    s = slurp("/sys/devices/system/cpu/online");
    check("/sys/devices/system/cpu/online is 0-(n-1)", s && !strcmp(s, want));
    free(s);
    s = slurp("/sys/devices/system/cpu/possible");
    check("/sys/devices/system/cpu/possible reads as a range", s && s[0] == '0' && s[strlen(s) - 1] == '\n');
    free(s);
    check("get_nprocs agrees", get_nprocs() == online);

    s = slurp("/proc/uptime");
    double up = -1, idle = -1;
    check("uptime: two numbers, hundredths", s && sscanf(s, "%lf %lf", &up, &idle) == 2 && up >= 0 && idle >= 0 && strchr(s, '.') && strchr(s, '.')[3] == ' ');
    free(s);

    s = slurp("/proc/loadavg");
    double l1, l5, l15;
    int running, total_tasks, last;
    check("loadavg: three loads, running/total, last pid", s && sscanf(s, "%lf %lf %lf %d/%d %d", &l1, &l5, &l15, &running, &total_tasks, &last) == 6 && running >= 1 && total_tasks >= running);
    free(s);

    s = slurp("/proc/stat");
    char *btime = s ? strstr(s, "\nbtime ") : NULL;
    long bt = btime ? atol(btime + 7) : 0;
    check("stat: cpu line first", s && !strncmp(s, "cpu  ", 5));
    check("stat: cpu0 line", s && strstr(s, "\ncpu0 "));
    check("stat: btime is in the past", bt > 0 && bt <= time(NULL));
    check("stat: processes, procs_running", s && strstr(s, "\nprocesses ") && strstr(s, "\nprocs_running "));
    free(s);

    struct utsname u;
    uname(&u);
    s = slurp("/proc/version");
    snprintf(want, sizeof want, "Linux version %s ", u.release);
    check("version: starts with uname's release", s && !strncmp(s, want, strlen(want)));
    free(s);
    s = slurp("/proc/sys/kernel/osrelease");
    snprintf(want, sizeof want, "%s\n", u.release);
    check("sys/kernel/osrelease is uname's", s && !strcmp(s, want));
    free(s);
    s = slurp("/proc/sys/kernel/ostype");
    check("sys/kernel/ostype is Linux", s && !strcmp(s, "Linux\n"));
    free(s);
    s = slurp("/proc/sys/kernel/hostname");
    snprintf(want, sizeof want, "%s\n", u.nodename);
    check("sys/kernel/hostname is uname's", s && !strcmp(s, want));
    free(s);
    s = slurp("/proc/sys/kernel/pid_max");
    check("sys/kernel/pid_max is a number", s && atol(s) >= 32768);
    free(s);
    char *b1 = slurp("/proc/sys/kernel/random/boot_id"), *b2 = slurp("/proc/sys/kernel/random/boot_id");
    check("boot_id is a UUID, the same each time", b1 && b2 && is_uuid(b1) && !strcmp(b1, b2));
    free(b1);
    free(b2);
    char *u1 = slurp("/proc/sys/kernel/random/uuid"), *u2 = slurp("/proc/sys/kernel/random/uuid");
    check("uuid is a UUID, a new one each time", u1 && u2 && is_uuid(u1) && strcmp(u1, u2));
    free(u1);
    free(u2);
    s = slurp("/proc/sys/vm/overcommit_memory");
    check("sys/vm/overcommit_memory is 0, 1 or 2", s && strlen(s) == 2 && strchr("012", s[0]) && s[1] == '\n');
    free(s);
    s = slurp("/proc/filesystems");
    check("filesystems lists proc and tmpfs", s && strstr(s, "\tproc\n") && strstr(s, "\ttmpfs\n"));
    free(s);

    // Reading in small pieces gives the same text as one read.
    int fd = open("/proc/self/status", O_RDONLY);
    char small[65536] = "", *at = small;
    ssize_t r;
    while ((r = read(fd, at, 7)) > 0) at += r;
    close(fd);
    check("small reads give one consistent text", at > small && !strncmp(small, "Name:\t", 6) && at[-1] == '\n');
    fd = open("/proc/uptime", O_RDONLY);
    char a[64] = "", b[64] = "";
    check("pread at 0 and lseek 0 reread", fd >= 0 && read(fd, a, sizeof a - 1) > 0 && lseek(fd, 0, SEEK_SET) == 0 && read(fd, b, sizeof b - 1) > 0);
    close(fd);

    struct stat st;
    check("/proc is a directory", stat("/proc", &st) == 0 && S_ISDIR(st.st_mode));
    check("/proc/meminfo reports size 0", stat("/proc/meminfo", &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0);
    check("/proc/sys/kernel is a directory", stat("/proc/sys/kernel", &st) == 0 && S_ISDIR(st.st_mode));
    DIR *d = opendir("/proc/sys/kernel/random");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strcmp(e->d_name, "boot_id") || !strcmp(e->d_name, "uuid")) n++;
    if (d) closedir(d);
    check("/proc/sys/kernel/random lists boot_id and uuid", n == 2);

    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("all ok\n");
    return 0;
}
