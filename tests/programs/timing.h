// What tests that time a sleeper need: the milliseconds since a start, absolute
// deadlines, a CPU spin that varies the timing of races, and the state letter of a task in /proc, which tells when it is
// asleep or stopped without the test sleeping itself.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static inline long ms_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

// The time on clock `clk` `ms` milliseconds from now, as an absolute deadline.
static inline struct timespec abs_after(clockid_t clk, long ms) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_nsec += ms * 1000000L;
    while (ts.tv_nsec >= 1000000000L) {
        ts.tv_nsec -= 1000000000L;
        ts.tv_sec++;
    }
    return ts;
}

// Burns `us` microseconds of clock `clk` (CLOCK_THREAD_CPUTIME_ID: of this
// thread's CPU time). Not a synchronisation: it varies how far a racing thread gets.
static inline void spin_us(clockid_t clk, long us) {
    struct timespec t0, t;
    clock_gettime(clk, &t0);
    do clock_gettime(clk, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000 + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

// Whether `a` is at or after `b`.
static inline int ts_ge(struct timespec a, struct timespec b) {
    return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec >= b.tv_nsec);
}

// The state letter of the stat file at `path` ('?' if it cannot be read).
static inline char stat_state(const char *path) {
    char buf[512];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0) close(fd);
    if (n <= 0) return '?';
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] && p[2] ? p[2] : '?';
}

// The state letter of thread `tid` of process `pid`.
static inline char task_state(pid_t pid, pid_t tid) {
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
    return stat_state(path);
}

// The state letter of process `pid`.
static inline char state_of(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    return stat_state(path);
}
