/*
 * The parameter page ("vvar") the Sentry maps read-only one page below the
 * vDSO. Keep this identical to `VvarPage` in lib.rs (a test checks the offsets).
 */
#ifndef RVISOR_VVAR_H
#define RVISOR_VVAR_H

typedef unsigned int u32;
typedef int s32;
typedef unsigned long u64;
typedef long s64;

/* flags: the TSC parameters are valid. Clear: every call takes the syscall. */
#define VVAR_TSC_VALID 1u

struct vvar_page {
	u32 seq;                /* seqlock: odd while the Sentry writes */
	u32 flags;              /* VVAR_* */
	u64 tsc_base;           /* TSC at which monotonic time was mono_base_ns */
	s64 mono_base_ns;
	u32 mult;               /* ns = mono_base_ns + ((tsc - tsc_base) * mult) >> shift */
	u32 shift;
	s64 realtime_offset_ns; /* CLOCK_REALTIME = CLOCK_MONOTONIC + this */
	s64 boottime_offset_ns; /* CLOCK_BOOTTIME = CLOCK_MONOTONIC + this */
	s64 coarse_res_ns;      /* clock_getres of the *_COARSE clocks */
	s32 tz_minuteswest;     /* gettimeofday's struct timezone */
	s32 tz_dsttime;
};

_Static_assert(sizeof(struct vvar_page) == 64, "vvar layout");
_Static_assert(__builtin_offsetof(struct vvar_page, tsc_base) == 8, "vvar layout");
_Static_assert(__builtin_offsetof(struct vvar_page, mono_base_ns) == 16, "vvar layout");
_Static_assert(__builtin_offsetof(struct vvar_page, mult) == 24, "vvar layout");
_Static_assert(__builtin_offsetof(struct vvar_page, shift) == 28, "vvar layout");
_Static_assert(__builtin_offsetof(struct vvar_page, realtime_offset_ns) == 32, "vvar layout");
_Static_assert(__builtin_offsetof(struct vvar_page, boottime_offset_ns) == 40, "vvar layout");
_Static_assert(__builtin_offsetof(struct vvar_page, coarse_res_ns) == 48, "vvar layout");
_Static_assert(__builtin_offsetof(struct vvar_page, tz_minuteswest) == 56, "vvar layout");
_Static_assert(__builtin_offsetof(struct vvar_page, tz_dsttime) == 60, "vvar layout");

/*
 * The time namespace's page, one page below the parameter page: what the
 * process's time namespace adds to its clocks. Written once, before any process
 * of the namespace runs. Keep identical to `TimensPage` in lib.rs.
 */
struct timens_page {
	s64 monotonic_offset_ns;
	s64 boottime_offset_ns;
};

_Static_assert(sizeof(struct timens_page) == 16, "timens layout");

#endif
