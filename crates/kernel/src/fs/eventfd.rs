//! eventfd: a 64-bit counter behind a descriptor. A write adds to it (blocking
//! while the sum would pass 2^64-2), a read takes the whole count (or 1 with
//! EFD_SEMAPHORE) and blocks while it is zero. Reads and writes move exactly 8
//! bytes; shorter buffers are EINVAL.

use crate::vfs::StatusFlags;
use super::user_io::RangeCursor;
use crate::mm::UserBuffers;
use crate::task::Task;
use crate::vfs::readiness::{POLLERR, POLLIN, POLLOUT};
use crate::vfs::{FileDescription, WaitQueue};
use rvisor_abi::structs::Stat;
use rvisor_abi::{error, SysResult};

use std::sync::{Mutex, MutexGuard};

pub const EFD_SEMAPHORE: u32 = 1;
pub const EFD_NONBLOCK: u32 = 0o4000;
pub const EFD_CLOEXEC: u32 = 0o2000000;
const O_RDWR: u32 = 2;
const MAX: u64 = u64::MAX - 1;

/// The read, write and stat of an anonymous-inode file with nothing to read or
/// write (a pidfd, a Landlock ruleset, a seccomp listener): EINVAL, and the
/// shared anonymous inode.
macro_rules! anon_file_without_io {
    () => {
        fn read(&self, _t: &$crate::task::Task, _bufs: &$crate::mm::UserBuffers, _offset: Option<i64>) -> rvisor_abi::SysResult<usize> {
            rvisor_abi::error!(EINVAL)
        }

        fn write(&self, _t: &$crate::task::Task, _bufs: &$crate::mm::UserBuffers, _offset: Option<i64>) -> rvisor_abi::SysResult<usize> {
            rvisor_abi::error!(EINVAL)
        }

        fn stat(&self) -> rvisor_abi::SysResult<rvisor_abi::structs::Stat> {
            Ok($crate::fs::eventfd::anon_inode_stat())
        }
    };
}
pub(crate) use anon_file_without_io;

/// Anonymous-inode files (eventfd, epoll) share one inode, as on Linux.
pub(crate) fn anon_inode_stat() -> Stat {
    let mut st = Stat::zeroed();
    st.st_dev = 0xf;
    st.st_ino = 1;
    st.st_nlink = 1;
    st.st_mode = 0o600;
    st.st_blksize = 4096;
    st
}

pub struct EventFd {
    /// A leaf lock, never held while notifying or blocking.
    count: Mutex<u64>,
    semaphore: bool,
    flags: StatusFlags,
    queue: WaitQueue,
}

impl EventFd {
    /// eventfd2's flags: EFD_SEMAPHORE and EFD_NONBLOCK (EFD_CLOEXEC is the caller's).
    pub fn new(initval: u32, flags: u32) -> EventFd {
        EventFd {
            count: Mutex::new(initval as u64),
            semaphore: flags & EFD_SEMAPHORE != 0,
            flags: StatusFlags::new(O_RDWR | (flags & EFD_NONBLOCK)),
            queue: WaitQueue::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The eventfd behind a descriptor, if it is one.
    pub fn of(file: &dyn FileDescription) -> Option<&EventFd> {
        file.as_any().and_then(|a| a.downcast_ref::<EventFd>())
    }

    /// Adds 1 without blocking, as Linux's eventfd_signal (a completed AIO
    /// request's IOCB_FLAG_RESFD): a count at 2^64-1 stays there.
    pub fn signal(&self) {
        {
            let mut c = self.lock();
            *c = c.saturating_add(1);
        }
        self.queue.notify_events(POLLIN);
    }

    fn nonblock(&self) -> bool {
        self.status_flags() & EFD_NONBLOCK != 0
    }

    /// Runs `f` on the counter once `ready` holds for it (blocking unless O_NONBLOCK).
    fn when<R>(&self, t: &Task, ready: impl Fn(u64) -> bool, f: impl FnOnce(&mut u64) -> R) -> SysResult<R> {
        loop {
            {
                let mut c = self.lock();
                if ready(*c) {
                    return Ok(f(&mut c));
                }
            }
            if self.nonblock() {
                return error!(EAGAIN);
            }
            self.queue.register(&t.thread);
            let r = t.block_until(None, || ready(*self.lock()));
            self.queue.unregister(&t.thread);
            r?;
        }
    }
}

impl FileDescription for EventFd {
    fn read(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if offset.is_some() {
            return error!(ESPIPE);
        }
        if bufs.total() < 8 {
            return error!(EINVAL);
        }
        let semaphore = self.semaphore;
        let v = self.when(t, |c| c > 0, |c| {
            let v = if semaphore { 1 } else { *c };
            *c -= v;
            v
        })?;
        self.queue.notify_events(POLLOUT);
        // The count is taken even if the copy then fails, as on Linux.
        let ranges = t.mm.translate_buffers(bufs, true)?;
        if RangeCursor::new(t.mm.memory_file(), ranges).write(&v.to_ne_bytes()) < 8 {
            return error!(EFAULT);
        }
        Ok(8)
    }

    fn write(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if offset.is_some() {
            return error!(ESPIPE);
        }
        if bufs.total() < 8 {
            return error!(EINVAL);
        }
        let ranges = t.mm.translate_buffers(bufs, false)?;
        let mut raw = Vec::with_capacity(8);
        if RangeCursor::new(t.mm.memory_file(), ranges).read_append(&mut raw, 8) < 8 {
            return error!(EFAULT);
        }
        let v = u64::from_ne_bytes(raw.try_into().unwrap_or([0; 8]));
        if v == u64::MAX {
            return error!(EINVAL);
        }
        self.when(t, |c| MAX - c >= v, |c| *c += v)?;
        self.queue.notify_events(POLLIN);
        Ok(8)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(anon_inode_stat())
    }

    fn flags(&self) -> Option<&crate::vfs::StatusFlags> {
        Some(&self.flags)
    }

    fn readiness(&self, mask: u32) -> u32 {
        let c = *self.lock();
        let mut m = 0;
        if c > 0 {
            m |= POLLIN;
        }
        if c == u64::MAX {
            m |= POLLERR;
        }
        if c < MAX {
            m |= POLLOUT;
        }
        m & mask
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
