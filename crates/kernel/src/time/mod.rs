//! The Sentry's clocks. Sandbox time starts from the host's clock and is the
//! sandbox's own after that: realtime is an offset over the host's monotonic clock.

use nix::time::{clock_gettime, ClockId};
use rvisor_abi::structs::Timespec;
use rvisor_abi::{errno, SysResult};
use std::sync::atomic::{AtomicI64, Ordering};

pub const CLOCK_REALTIME: i32 = 0;
pub const CLOCK_MONOTONIC: i32 = 1;
pub const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
pub const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
pub const CLOCK_MONOTONIC_RAW: i32 = 4;
pub const CLOCK_REALTIME_COARSE: i32 = 5;
pub const CLOCK_MONOTONIC_COARSE: i32 = 6;
pub const CLOCK_BOOTTIME: i32 = 7;

/// Resolution Linux reports for the coarse clocks (one tick at HZ=250).
const COARSE_RES_NS: i64 = 4_000_000;

pub struct Clocks {
    /// Nanoseconds to add to the monotonic clock to get sandbox realtime.
    realtime_offset: AtomicI64,
    /// Monotonic time when the sandbox booted (for CLOCK_BOOTTIME / uptime).
    boot_mono: i64,
}

fn host_ns(id: ClockId) -> i64 {
    clock_gettime(id).map(|t| t.tv_sec() * 1_000_000_000 + t.tv_nsec()).unwrap_or(0)
}

pub fn to_timespec(ns: i64) -> Timespec {
    Timespec { tv_sec: ns.div_euclid(1_000_000_000), tv_nsec: ns.rem_euclid(1_000_000_000) }
}

impl Clocks {
    pub fn new() -> Clocks {
        let mono = host_ns(ClockId::CLOCK_MONOTONIC);
        let real = host_ns(ClockId::CLOCK_REALTIME);
        Clocks { realtime_offset: AtomicI64::new(real - mono), boot_mono: mono }
    }

    pub fn monotonic_ns(&self) -> i64 {
        host_ns(ClockId::CLOCK_MONOTONIC)
    }

    pub fn realtime_ns(&self) -> i64 {
        self.monotonic_ns() + self.realtime_offset.load(Ordering::Relaxed)
    }

    /// Nanoseconds since the sandbox booted.
    pub fn uptime_ns(&self) -> i64 {
        self.monotonic_ns() - self.boot_mono
    }

    /// Reads clock `id`. CPU-time clocks report the calling Sentry thread's CPU time,
    /// which includes the app's time in the stub only approximately.
    pub fn read(&self, id: i32) -> SysResult<i64> {
        Ok(match id {
            CLOCK_REALTIME | CLOCK_REALTIME_COARSE => self.realtime_ns(),
            CLOCK_MONOTONIC | CLOCK_MONOTONIC_COARSE | CLOCK_MONOTONIC_RAW | CLOCK_BOOTTIME => self.monotonic_ns(),
            CLOCK_PROCESS_CPUTIME_ID => host_ns(ClockId::CLOCK_PROCESS_CPUTIME_ID),
            CLOCK_THREAD_CPUTIME_ID => host_ns(ClockId::CLOCK_THREAD_CPUTIME_ID),
            _ => return Err(errno!(EINVAL)),
        })
    }

    pub fn resolution(&self, id: i32) -> SysResult<i64> {
        self.read(id)?;
        Ok(match id {
            CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE => COARSE_RES_NS,
            _ => 1,
        })
    }
}

impl Default for Clocks {
    fn default() -> Self {
        Self::new()
    }
}
