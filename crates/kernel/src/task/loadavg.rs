//! Load averages, as Linux's kernel/sched/loadavg.c: every LOAD_FREQ (5 s) the
//! number of the sandbox's active tasks (running app code, or served in the
//! Sentry and not asleep) is folded into three fixed-point exponential averages,
//! over 1, 5 and 15 minutes, which sysinfo and /proc/loadavg show.
//!
//! Linux folds from its timer tick. A thread waking every 5 s would wake an idle
//! sandbox forever, so the folds are made lazily instead: the active count only
//! changes when a task falls asleep, wakes, starts or ends, and each change (and
//! each reader) first folds the periods that ended since the last fold with the
//! count that held through them. The result is what sampling at every period's
//! end would give, with no wake-ups while everything sleeps.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Bits of fraction in a load (Linux's FSHIFT) and 1.0 in them (FIXED_1).
pub const FSHIFT: u32 = 11;
pub const FIXED_1: u64 = 1 << FSHIFT;
/// 1/exp(5 s / 1, 5 and 15 min) in fixed point (Linux's EXP_1, EXP_5, EXP_15).
const EXP: [u64; 3] = [1884, 2014, 2037];
/// The sampling period (Linux's LOAD_FREQ, 5 s), in nanoseconds.
const LOAD_FREQ_NS: u64 = 5_000_000_000;

pub struct LoadAvg {
    /// Periods end every LOAD_FREQ from here (the sandbox's boot).
    origin: Instant,
    /// Tasks running or runnable (Linux's nr_running; none sleeps
    /// uninterruptibly, so nr_uninterruptible is 0). Briefly negative while a
    /// task not yet started waits.
    active: AtomicI64,
    /// When the current period ends, in ns after `origin`: lets a state change
    /// skip the lock until a fold is due. Written under `avenrun`'s lock.
    next_fold_ns: AtomicU64,
    /// The averages (Linux's avenrun), FSHIFT fixed point. A leaf lock.
    avenrun: Mutex<[u64; 3]>,
}

impl Default for LoadAvg {
    fn default() -> Self {
        LoadAvg { origin: Instant::now(), active: AtomicI64::new(0), next_fold_ns: AtomicU64::new(LOAD_FREQ_NS), avenrun: Mutex::new([0; 3]) }
    }
}

impl LoadAvg {
    /// A task became runnable: it started, or woke.
    pub fn activate(&self) {
        self.catch_up();
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    /// A task stopped being runnable: it fell asleep, or ended.
    pub fn deactivate(&self) {
        self.catch_up();
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// The averages, each plus `offset` and shifted left by `shift` (Linux's
    /// get_avenrun).
    pub fn get_avenrun(&self, offset: u64, shift: u32) -> [u64; 3] {
        self.catch_up();
        self.avenrun.lock().unwrap_or_else(|e| e.into_inner()).map(|l| (l + offset) << shift)
    }

    /// Folds the periods that ended since the last fold, with the active count
    /// that held through them (it changes only after a call to this).
    fn catch_up(&self) {
        self.catch_up_at(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }

    /// `catch_up` at `now`, in ns after `origin`.
    fn catch_up_at(&self, now: u64) {
        if now < self.next_fold_ns.load(Ordering::Relaxed) {
            return;
        }
        let mut avenrun = self.avenrun.lock().unwrap_or_else(|e| e.into_inner());
        let next = self.next_fold_ns.load(Ordering::Relaxed);
        if now < next {
            return;
        }
        let periods = (now - next) / LOAD_FREQ_NS + 1;
        let active = self.active.load(Ordering::Relaxed).max(0) as u64 * FIXED_1;
        *avenrun = fold_n(*avenrun, active, periods);
        self.next_fold_ns.store(next.saturating_add(periods.saturating_mul(LOAD_FREQ_NS)), Ordering::Relaxed);
    }
}

/// One period's fold of `load` towards `active` (both fixed point), with
/// Linux's rounding: up while the load rises, down while it falls.
fn calc_load(load: u64, exp: u64, active: u64) -> u64 {
    let mut new = load * exp + active * (FIXED_1 - exp);
    if active >= load {
        new += FIXED_1 - 1;
    }
    new / FIXED_1
}

/// `n` periods' folds of the three averages with the same active count. Each
/// period is folded on its own, so the result is exactly what `n` samples give
/// (Linux's calc_load_n approximates it with one power of the decay); it stops
/// once a fold changes nothing, which with integer rounding comes within a few
/// hundred folds, so a long idle stretch costs no more.
fn fold_n(mut loads: [u64; 3], active: u64, n: u64) -> [u64; 3] {
    for _ in 0..n {
        let next = [0, 1, 2].map(|i| calc_load(loads[i], EXP[i], active));
        if next == loads {
            break;
        }
        loads = next;
    }
    loads
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One task runnable for 60 s: twelve folds from 0. Linux's 1-minute
    /// average is then 1299/2048, shown as 0.63 (1 - 1/e, to its rounding).
    #[test]
    fn one_task_for_a_minute() {
        let loads = fold_n([0; 3], FIXED_1, 12);
        assert_eq!(loads, [1299, 378, 132]);
        let shown = loads[0] + FIXED_1 / 200;
        assert_eq!((shown >> FSHIFT, ((shown & (FIXED_1 - 1)) * 100) >> FSHIFT), (0, 63));
    }

    #[test]
    fn single_folds_round_as_linux() {
        // Rising rounds up, falling rounds down.
        assert_eq!(calc_load(0, EXP[0], FIXED_1), 164);
        assert_eq!(calc_load(FIXED_1, EXP[0], 0), 1884);
        assert_eq!(calc_load(1, EXP[2], 0), 0);
        assert_eq!(calc_load(0, EXP[2], 1), 1);
    }

    #[test]
    fn catching_up_equals_single_folds() {
        for (start, active, n) in [([0; 3], 2 * FIXED_1, 7), ([5000, 3000, 1000], 0, 40), ([700, 800, 900], 3 * FIXED_1, 1)] {
            let mut one_by_one = start;
            for _ in 0..n {
                one_by_one = [0, 1, 2].map(|i| calc_load(one_by_one[i], EXP[i], active));
            }
            assert_eq!(fold_n(start, active, n), one_by_one);
        }
    }

    /// A long stretch ends where the averages settle: the active count
    /// exactly, or 0 once idle.
    #[test]
    fn long_stretches_settle() {
        assert_eq!(fold_n([0; 3], 3 * FIXED_1, u64::MAX), [3 * FIXED_1; 3]);
        assert_eq!(fold_n([9000, 8000, 7000], 0, u64::MAX), [0; 3]);
    }

    #[test]
    fn lazy_folds_use_the_count_of_their_period() {
        let l = LoadAvg::default();
        l.activate();
        l.activate();
        l.catch_up_at(LOAD_FREQ_NS - 1);
        assert_eq!(l.get_avenrun(0, 0), [0; 3], "no period has ended yet");
        // Two periods ended with two tasks active, then both slept through two more.
        l.catch_up_at(2 * LOAD_FREQ_NS + 1);
        let busy = fold_n([0; 3], 2 * FIXED_1, 2);
        assert_eq!(*l.avenrun.lock().unwrap(), busy);
        l.active.store(0, Ordering::Relaxed);
        l.catch_up_at(4 * LOAD_FREQ_NS);
        l.catch_up_at(4 * LOAD_FREQ_NS + 2);
        let idle = fold_n(busy, 0, 2);
        assert_eq!(*l.avenrun.lock().unwrap(), idle);
        // sysinfo's scaling of them.
        assert_eq!(l.get_avenrun(0, 16 - FSHIFT)[0], idle[0] << 5);
    }
}
