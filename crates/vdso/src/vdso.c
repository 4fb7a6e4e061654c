/*
 * rvisor's vDSO: clock_gettime, gettimeofday, time, clock_getres and getcpu
 * served in user space from the parameter page the Sentry keeps up to date.
 *
 * Freestanding: no libc, no data, no relocations. The parameter page is found
 * PC-relatively through `__rvisor_vvar`, which the linker script places one
 * page below the image. Anything the page cannot answer takes the real
 * `syscall` instruction, which the Sentry serves.
 */
#include "vvar.h"

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_MONOTONIC_RAW 4
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_MONOTONIC_COARSE 6
#define CLOCK_BOOTTIME 7

#define NR_gettimeofday 96
#define NR_time 201
#define NR_clock_gettime 228
#define NR_clock_getres 229
#define NR_getcpu 309

#define NSEC_PER_SEC 1000000000L

struct timespec { s64 tv_sec; s64 tv_nsec; };
struct timeval { s64 tv_sec; s64 tv_usec; };
struct timezone { s32 tz_minuteswest; s32 tz_dsttime; };

extern const volatile struct vvar_page __rvisor_vvar __attribute__((visibility("hidden")));
extern const struct timens_page __rvisor_timens __attribute__((visibility("hidden")));

#define EXPORT __attribute__((visibility("default")))

#define barrier() __asm__ __volatile__("" ::: "memory")

static inline long syscall2(long nr, long a, long b)
{
	long ret;
	__asm__ __volatile__("syscall"
			     : "=a"(ret)
			     : "0"(nr), "D"(a), "S"(b)
			     : "rcx", "r11", "memory");
	return ret;
}

static inline long syscall3(long nr, long a, long b, long c)
{
	long ret;
	__asm__ __volatile__("syscall"
			     : "=a"(ret)
			     : "0"(nr), "D"(a), "S"(b), "d"(c)
			     : "rcx", "r11", "memory");
	return ret;
}

/* lfence orders rdtsc after the loads before it (Linux's rdtsc_ordered). */
static inline u64 rdtsc_ordered(void)
{
	u32 lo, hi;
	__asm__ __volatile__("lfence; rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
	return ((u64)hi << 32) | lo;
}

enum { BASE_MONO, BASE_REAL, BASE_BOOT, BASE_NONE };

static inline int clock_base(long clock)
{
	switch (clock) {
	case CLOCK_REALTIME:
	case CLOCK_REALTIME_COARSE:
		return BASE_REAL;
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_MONOTONIC_COARSE:
		return BASE_MONO;
	case CLOCK_BOOTTIME:
		return BASE_BOOT;
	default:
		return BASE_NONE;
	}
}

/*
 * Reads clock `base` in nanoseconds. Returns 0 when the page has no valid
 * parameters (the caller then takes the syscall). x86 does not reorder loads
 * with loads, so compiler barriers complete the seqlock read side.
 */
static inline int read_ns(int base, s64 *out)
{
	const volatile struct vvar_page *v = &__rvisor_vvar;
	u32 seq;
	s64 ns;
	do {
		while ((seq = v->seq) & 1)
			__builtin_ia32_pause();
		barrier();
		if (!(v->flags & VVAR_TSC_VALID))
			return 0;
		u64 tsc = rdtsc_ordered();
		u64 tsc_base = v->tsc_base;
		/* A CPU whose TSC lags the writer's must not go back in time. */
		u64 delta = tsc > tsc_base ? tsc - tsc_base : 0;
		ns = v->mono_base_ns +
		     (s64)(u64)(((unsigned __int128)delta * v->mult) >> v->shift);
		if (base == BASE_REAL)
			ns += v->realtime_offset_ns;
		else if (base == BASE_BOOT)
			ns += v->boottime_offset_ns;
		barrier();
	} while (v->seq != seq);
	/* The time namespace's offsets never change under a running process. */
	if (base == BASE_MONO)
		ns += __rvisor_timens.monotonic_offset_ns;
	else if (base == BASE_BOOT)
		ns += __rvisor_timens.boottime_offset_ns;
	*out = ns;
	return 1;
}

static inline s64 floor_div_sec(s64 ns, s64 *rem)
{
	s64 sec = ns / NSEC_PER_SEC;
	s64 r = ns % NSEC_PER_SEC;
	if (r < 0) {
		r += NSEC_PER_SEC;
		sec--;
	}
	*rem = r;
	return sec;
}

EXPORT long __vdso_clock_gettime(long clock, struct timespec *ts)
{
	int base = clock_base(clock);
	s64 ns;
	if (base == BASE_NONE || !read_ns(base, &ns))
		return syscall2(NR_clock_gettime, clock, (long)ts);
	s64 rem;
	ts->tv_sec = floor_div_sec(ns, &rem);
	ts->tv_nsec = rem;
	return 0;
}

EXPORT long __vdso_gettimeofday(struct timeval *tv, struct timezone *tz)
{
	s64 ns;
	if (!read_ns(BASE_REAL, &ns))
		return syscall2(NR_gettimeofday, (long)tv, (long)tz);
	if (tv) {
		s64 rem;
		tv->tv_sec = floor_div_sec(ns, &rem);
		tv->tv_usec = rem / 1000;
	}
	if (tz) {
		tz->tz_minuteswest = __rvisor_vvar.tz_minuteswest;
		tz->tz_dsttime = __rvisor_vvar.tz_dsttime;
	}
	return 0;
}

EXPORT long __vdso_time(long *t)
{
	s64 ns;
	if (!read_ns(BASE_REAL, &ns))
		return syscall2(NR_time, (long)t, 0);
	s64 rem;
	s64 sec = floor_div_sec(ns, &rem);
	if (t)
		*t = sec;
	return sec;
}

EXPORT long __vdso_clock_getres(long clock, struct timespec *res)
{
	s64 ns;
	switch (clock) {
	case CLOCK_REALTIME:
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_BOOTTIME:
		ns = 1;
		break;
	case CLOCK_REALTIME_COARSE:
	case CLOCK_MONOTONIC_COARSE:
		ns = __rvisor_vvar.coarse_res_ns;
		if (ns > 0)
			break;
		/* The Sentry has not filled the page: ask it. */
		__attribute__((fallthrough));
	default:
		return syscall2(NR_clock_getres, clock, (long)res);
	}
	if (res) {
		res->tv_sec = 0;
		res->tv_nsec = ns;
	}
	return 0;
}

/* The sandbox shows one CPU and one node to code that asks the vDSO. */
EXPORT long __vdso_getcpu(u32 *cpu, u32 *node, void *unused)
{
	(void)unused;
	if (cpu)
		*cpu = 0;
	if (node)
		*node = 0;
	return 0;
}

long clock_gettime(long, struct timespec *) EXPORT __attribute__((weak, alias("__vdso_clock_gettime")));
long gettimeofday(struct timeval *, struct timezone *) EXPORT __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) EXPORT __attribute__((weak, alias("__vdso_time")));
long clock_getres(long, struct timespec *) EXPORT __attribute__((weak, alias("__vdso_clock_getres")));
long getcpu(u32 *, u32 *, void *) EXPORT __attribute__((weak, alias("__vdso_getcpu")));
