//! Time namespaces (CLONE_NEWTIME): per-namespace offsets of CLOCK_MONOTONIC and
//! CLOCK_BOOTTIME, as Linux's kernel/time/namespace.c. A process reads its clocks
//! ahead of (or behind) the sandbox's by its namespace's offsets; CLOCK_REALTIME is
//! the same everywhere.
//!
//! unshare(CLONE_NEWTIME) makes a namespace for the caller's children to come (its
//! own stays), with the offsets of the one it copies; they may be changed through
//! /proc/PID/timens_offsets until a process enters it (a child forked into it, an
//! exec, setns), which freezes them. At that moment the namespace gets its page of
//! the vDSO's data (`TimensPage`): every process in it maps that page just below the
//! shared parameter page, so the vDSO adds the offsets without a system call.

use crate::mm::Frames;
use crate::task::UserNamespace;
use rvisor_abi::{errno, SysResult};
use rvisor_memory::MemoryFile;
use rvisor_vdso::TimensPage;
use std::sync::{Arc, Mutex, MutexGuard};
use zerocopy::IntoBytes;

pub const CLOCK_MONOTONIC: i32 = 1;
pub const CLOCK_MONOTONIC_RAW: i32 = 4;
pub const CLOCK_MONOTONIC_COARSE: i32 = 6;
pub const CLOCK_BOOTTIME: i32 = 7;
pub const CLOCK_BOOTTIME_ALARM: i32 = 9;

/// Linux's KTIME_SEC_MAX: what an offset and the time it gives must stay within.
const KTIME_SEC_MAX: i64 = i64::MAX / 1_000_000_000;

/// What a namespace's clocks read ahead of the sandbox's, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeOffsets {
    pub monotonic_ns: i64,
    pub boottime_ns: i64,
}

impl TimeOffsets {
    /// The offset that applies to `clock` (0 for the clocks namespaces leave alone).
    pub fn of(&self, clock: i32) -> i64 {
        match clock {
            CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_MONOTONIC_COARSE => self.monotonic_ns,
            CLOCK_BOOTTIME | CLOCK_BOOTTIME_ALARM => self.boottime_ns,
            _ => 0,
        }
    }
}

struct State {
    offsets: TimeOffsets,
    /// The vDSO page with the offsets, made when the first process enters (and the
    /// offsets freeze).
    page: Option<Arc<Frames>>,
}

pub struct TimeNamespace {
    pub id: u64,
    /// The user namespace whose CAP_SYS_TIME may set the offsets, and whose
    /// CAP_SYS_ADMIN lets a process join.
    pub owner: Arc<UserNamespace>,
    /// Leaf lock.
    state: Mutex<State>,
}

impl TimeNamespace {
    /// The sandbox's first time namespace, with Linux's inode number for the initial
    /// one, already entered (its page is `page`, all zeros).
    pub fn first(page: Arc<Frames>) -> Arc<TimeNamespace> {
        let state = State { offsets: TimeOffsets::default(), page: Some(page) };
        Arc::new(TimeNamespace { id: 0xEFFF_FFFA, owner: UserNamespace::initial(), state: Mutex::new(state) })
    }

    /// A new namespace with this one's offsets, not entered yet.
    pub fn child(&self, owner: Arc<UserNamespace>) -> Arc<TimeNamespace> {
        let state = State { offsets: self.offsets(), page: None };
        Arc::new(TimeNamespace { id: crate::task::namespaces::new_ns_id(), owner, state: Mutex::new(state) })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn offsets(&self) -> TimeOffsets {
        self.state().offsets
    }

    /// Sets the offsets of `clock`s (a write to /proc/PID/timens_offsets): EINVAL for
    /// a clock without one, ERANGE where the clock would read below zero or too
    /// far ahead, EACCES once a process is in the namespace. `now` reads the
    /// sandbox's clock. All or nothing.
    pub fn set_offsets(&self, changes: &[(i32, i64, i64)], now: impl Fn(i32) -> SysResult<i64>) -> SysResult<()> {
        let mut wanted = Vec::with_capacity(changes.len());
        for &(clock, sec, nsec) in changes {
            if clock != CLOCK_MONOTONIC && clock != CLOCK_BOOTTIME {
                return Err(errno!(EINVAL));
            }
            if !(-KTIME_SEC_MAX..=KTIME_SEC_MAX).contains(&sec) {
                return Err(errno!(ERANGE));
            }
            let offset = sec * 1_000_000_000 + nsec;
            let then = now(clock)?.saturating_add(offset);
            if then < 0 || then / 1_000_000_000 > KTIME_SEC_MAX / 2 {
                return Err(errno!(ERANGE));
            }
            wanted.push((clock, offset));
        }
        let mut st = self.state();
        if st.page.is_some() {
            return Err(errno!(EACCES));
        }
        for (clock, offset) in wanted {
            match clock {
                CLOCK_MONOTONIC => st.offsets.monotonic_ns = offset,
                _ => st.offsets.boottime_ns = offset,
            }
        }
        Ok(())
    }

    /// A process enters the namespace: its offsets freeze and its vDSO page, made
    /// now if this is the first, is what the process maps. ENOMEM without memory
    /// for the page.
    pub fn enter(&self, mf: &Arc<MemoryFile>) -> SysResult<Arc<Frames>> {
        let mut st = self.state();
        if let Some(page) = &st.page {
            return Ok(page.clone());
        }
        let page = Frames::allocate(mf, rvisor_vdso::TIMENS_SIZE as u64).ok_or_else(|| errno!(ENOMEM))?;
        let o = TimensPage { monotonic_offset_ns: st.offsets.monotonic_ns, boottime_offset_ns: st.offsets.boottime_ns };
        mf.write(page.range.start, o.as_bytes());
        st.page = Some(page.clone());
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ns: i64) -> impl Fn(i32) -> SysResult<i64> {
        move |_| Ok(ns)
    }

    #[test]
    fn offsets_apply_to_the_monotonic_and_boottime_clocks_only() {
        let o = TimeOffsets { monotonic_ns: 5, boottime_ns: 7 };
        assert_eq!([1, 4, 6, 7, 9, 0, 5, 2].map(|c| o.of(c)), [5, 5, 5, 7, 7, 0, 0, 0]);
    }

    #[test]
    fn setting_offsets_checks_the_clock_and_the_range() {
        let ns = TimeNamespace { id: 1, owner: UserNamespace::initial(), state: Mutex::new(State { offsets: TimeOffsets::default(), page: None }) };
        assert_eq!(ns.set_offsets(&[(0, 1, 0)], at(0)).map_err(|e| e.code), Err(rvisor_abi::ErrnoCode::EINVAL));
        // Monotonic time may not go below zero...
        assert_eq!(ns.set_offsets(&[(1, -10, 0)], at(5_000_000_000)).map_err(|e| e.code), Err(rvisor_abi::ErrnoCode::ERANGE));
        assert_eq!(ns.set_offsets(&[(1, KTIME_SEC_MAX + 1, 0)], at(0)).map_err(|e| e.code), Err(rvisor_abi::ErrnoCode::ERANGE));
        // ...and a failed write changes nothing, even the valid part.
        assert!(ns.set_offsets(&[(7, 100, 0), (1, -10, 0)], at(5_000_000_000)).is_err());
        assert_eq!(ns.offsets(), TimeOffsets::default());
        ns.set_offsets(&[(1, -2, 500), (7, 3600, 0)], at(5_000_000_000)).unwrap();
        assert_eq!(ns.offsets(), TimeOffsets { monotonic_ns: -1_999_999_500, boottime_ns: 3_600_000_000_000 });
    }
}
