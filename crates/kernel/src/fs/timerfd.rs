//! timerfd: a timer read as a file. Each expiry bumps a counter that read returns
//! and resets; poll sees it readable while the counter is non-zero.

use crate::vfs::StatusFlags;
use crate::mm::UserBuffers;
use crate::task::Task;
use crate::time::timers::{TimerAction, TimerId, Timers};
use crate::vfs::{FileDescription, WaitQueue, POLLIN};
use rvisor_abi::structs::Stat;
use rvisor_abi::{errno, error, SysResult};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// The part the timekeeper holds.
pub struct Expirations {
    pub count: AtomicU64,
    pub queue: WaitQueue,
    /// Armed absolute on a realtime clock with TFD_TIMER_CANCEL_ON_SET.
    pub cancel_on_set: AtomicBool,
    /// The realtime clock was set since: the next read fails with ECANCELED.
    pub cancelled: AtomicBool,
}

/// The timerfds ever armed with TFD_TIMER_CANCEL_ON_SET, told when the sandbox's
/// realtime clock is set. A leaf lock.
#[derive(Default)]
pub struct CancelOnSet {
    list: Mutex<Vec<Weak<Expirations>>>,
}

impl CancelOnSet {
    pub fn add(&self, e: &Arc<Expirations>) {
        let mut l = self.list.lock().unwrap_or_else(|p| p.into_inner());
        l.retain(|w| w.strong_count() > 0);
        if !l.iter().any(|w| w.as_ptr() == Arc::as_ptr(e)) {
            l.push(Arc::downgrade(e));
        }
    }

    /// clock_settime or settimeofday moved the realtime clock: as Linux, count a
    /// tick (so poll sees the fd readable) and make the next read ECANCELED.
    pub fn clock_was_set(&self) {
        let live: Vec<Arc<Expirations>> = self.list.lock().unwrap_or_else(|p| p.into_inner()).iter().filter_map(Weak::upgrade).collect();
        for e in live.iter().filter(|e| e.cancel_on_set.load(Ordering::Acquire)) {
            e.cancelled.store(true, Ordering::Release);
            e.count.fetch_add(1, Ordering::AcqRel);
            e.queue.notify();
        }
    }
}

impl TimerAction for Expirations {
    fn fire(&self, overrun: u64) {
        self.count.fetch_add(1 + overrun, Ordering::AcqRel);
        self.queue.notify();
    }
}

pub struct TimerFd {
    pub clock: i32,
    pub timer: TimerId,
    pub expirations: Arc<Expirations>,
    flags: StatusFlags,
}

const O_NONBLOCK: u32 = 0o4000;

impl TimerFd {
    pub fn new(clock: i32, timer: TimerId, flags: u32) -> TimerFd {
        TimerFd { clock, timer, expirations: Arc::new(Expirations { count: AtomicU64::new(0), queue: WaitQueue::default(), cancel_on_set: AtomicBool::new(false), cancelled: AtomicBool::new(false) }), flags: StatusFlags::new(2 | flags) }
    }
}

impl FileDescription for TimerFd {
    fn read(&self, t: &Task, bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        if bufs.total() < 8 {
            return error!(EINVAL);
        }
        let take = || self.expirations.count.swap(0, Ordering::AcqRel);
        if let Some(timers) = Timers::of(&self.timer) {
            timers.catch_up(&self.timer);
        }
        let mut got = take();
        if got == 0 {
            if self.flags.get() & O_NONBLOCK != 0 {
                return error!(EAGAIN);
            }
            self.expirations.queue.register(&t.thread);
            let r = t.block_until(None, || {
                got = take();
                got != 0
            });
            self.expirations.queue.unregister(&t.thread);
            r?;
        }
        if self.expirations.cancelled.swap(false, Ordering::AcqRel) {
            return error!(ECANCELED);
        }
        let (addr, _) = *bufs.iovs.iter().find(|(_, l)| *l >= 8).ok_or_else(|| errno!(EINVAL))?;
        t.mm.write_bytes(addr, &got.to_le_bytes())?;
        Ok(8)
    }

    fn write(&self, _t: &Task, _bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        error!(EINVAL)
    }

    fn stat(&self) -> SysResult<Stat> {
        let mut s = Stat::zeroed();
        s.st_mode = 0o600;
        s.st_blksize = 4096;
        Ok(s)
    }

    fn flags(&self) -> Option<&crate::vfs::StatusFlags> {
        Some(&self.flags)
    }

    fn proc_name(&self) -> Option<Vec<u8>> {
        Some(b"anon_inode:[timerfd]".to_vec())
    }

    fn readiness(&self, mask: u32) -> u32 {
        if self.expirations.count.load(Ordering::Acquire) > 0 { mask & POLLIN } else { 0 }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.expirations.queue)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
