//! timerfd: a timer read as a file. Each expiry bumps a counter that read returns
//! and resets; poll sees it readable while the counter is non-zero.

use crate::vfs::StatusFlags;
use crate::mm::UserBuffers;
use crate::task::Task;
use crate::time::timers::{TimerAction, TimerId};
use crate::vfs::{FileDescription, WaitQueue, POLLIN};
use rvisor_abi::structs::Stat;
use rvisor_abi::{errno, error, SysResult};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The part the timekeeper holds.
pub struct Expirations {
    pub count: AtomicU64,
    pub queue: WaitQueue,
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
        TimerFd { clock, timer, expirations: Arc::new(Expirations { count: AtomicU64::new(0), queue: WaitQueue::default() }), flags: StatusFlags::new(2 | flags) }
    }
}

impl FileDescription for TimerFd {
    fn read(&self, t: &Task, bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        if bufs.total() < 8 {
            return error!(EINVAL);
        }
        let take = || self.expirations.count.swap(0, Ordering::AcqRel);
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

    fn status_flags(&self) -> u32 {
        self.flags.get()
    }

    fn set_status_flags(&self, flags: u32) {
        self.flags.set(flags)
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
