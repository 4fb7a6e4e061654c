//! The Sentry's clocks. Sandbox time starts from the host's clock and is the
//! sandbox's own after that. The vDSO's `ClockSource` keeps it (TSC-based, steered
//! onto the host clock) and publishes it to the vDSO parameter page every process
//! maps, so `clock_gettime` in the app and in the Sentry agree to the nanosecond.

pub mod namespace;
pub mod process_timers;
pub mod timers;

use nix::time::{clock_gettime, ClockId};
use rvisor_abi::structs::Timespec;
use rvisor_abi::{errno, SysResult};
use rvisor_vdso::ClockSource;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

pub const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
pub const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

/// How often the clock parameters are re-steered onto the host clock while
/// tasks make syscalls.
const REFRESH_NS: i64 = 1_000_000_000;

pub struct Clocks {
    pub source: ClockSource,
    /// Monotonic time of the last refresh.
    last_refresh: AtomicI64,
    /// Monotonic time when the sandbox booted (for /proc/uptime).
    boot_mono: i64,
}

fn host_ns(id: ClockId) -> i64 {
    clock_gettime(id).map(|t| t.tv_sec() * 1_000_000_000 + t.tv_nsec()).unwrap_or(0)
}

/// CLOCK_REALTIME and CLOCK_REALTIME_ALARM: the clocks clock_settime moves.
pub fn is_realtime(clock: i32) -> bool {
    matches!(clock, 0 | 8)
}

/// Absolute sleeps on a realtime clock (clock_nanosleep TIMER_ABSTIME) wait here
/// and re-check their target when the clock is set.
#[derive(Default)]
pub struct ClockSets {
    pub generation: std::sync::atomic::AtomicU64,
    pub sleepers: crate::vfs::WaitQueue,
}

/// The deadline `d` from now; None if it is too far away to represent (never).
/// App-supplied timeouts go through here: adding them to an Instant could overflow.
pub fn deadline_in(d: Duration) -> Option<std::time::Instant> {
    std::time::Instant::now().checked_add(d)
}

pub fn to_timespec(ns: i64) -> Timespec {
    Timespec { tv_sec: ns.div_euclid(1_000_000_000), tv_nsec: ns.rem_euclid(1_000_000_000) }
}

impl Clocks {
    pub fn new() -> Clocks {
        // CPUID's TSC frequency if announced, else a short measurement that
        // `refresh` refines over the first seconds (a long one would delay start-up).
        let cal = rvisor_vdso::tsc_is_invariant()
            .then(|| rvisor_vdso::cpuid_tsc_hz().unwrap_or_else(|| rvisor_vdso::measure_tsc_hz(Duration::from_millis(1))));
        let source = ClockSource::with_calibration(cal);
        let now = source.monotonic_ns();
        Clocks { source, last_refresh: AtomicI64::new(now), boot_mono: now }
    }

    pub fn monotonic_ns(&self) -> i64 {
        self.source.monotonic_ns()
    }

    pub fn realtime_ns(&self) -> i64 {
        self.source.realtime_ns()
    }

    /// Nanoseconds since the sandbox booted.
    pub fn uptime_ns(&self) -> i64 {
        self.monotonic_ns() - self.boot_mono
    }

    /// Re-steers the clock onto the host's if a second has passed since the last time.
    pub fn maybe_refresh(&self) {
        let now = self.monotonic_ns();
        let last = self.last_refresh.load(Ordering::Relaxed);
        if now - last >= REFRESH_NS && self.last_refresh.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.source.refresh();
        }
    }

    /// Reads clock `id`. CPU-time clocks report the calling Sentry thread's and
    /// process's host CPU time until CPU accounting lands.
    pub fn read(&self, id: i32) -> SysResult<i64> {
        if let Some(ns) = self.source.now_ns(id) {
            return Ok(ns);
        }
        Ok(match id {
            CLOCK_PROCESS_CPUTIME_ID => host_ns(ClockId::CLOCK_PROCESS_CPUTIME_ID),
            CLOCK_THREAD_CPUTIME_ID => host_ns(ClockId::CLOCK_THREAD_CPUTIME_ID),
            _ => return Err(errno!(EINVAL)),
        })
    }

    /// The host instant at which clock `clock` reads `ns` (for absolute timeouts);
    /// None if that is too far away to represent, i.e. never.
    pub fn instant_at(&self, clock: i32, ns: i64) -> SysResult<Option<std::time::Instant>> {
        let now = self.read(clock)?;
        let ahead = ns.saturating_sub(now).max(0) as u64;
        Ok(deadline_in(std::time::Duration::from_nanos(ahead)))
    }

    pub fn resolution(&self, id: i32) -> SysResult<i64> {
        if let Some(r) = self.source.resolution_ns(id) {
            return Ok(r);
        }
        self.read(id).map(|_| 1)
    }
}

impl Default for Clocks {
    fn default() -> Self {
        Self::new()
    }
}
