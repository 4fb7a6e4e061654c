//! signalfd: a file that reads the caller's pending signals of a set (which it
//! usually blocks) as `struct signalfd_siginfo` records, and polls readable
//! while one is pending. Signal delivery notifies the process's
//! `ThreadGroup::signalfd_waiters`, so poll and epoll hear of new signals.

use super::eventfd::anon_inode_stat;
use crate::mm::UserBuffers;
use crate::task::signals::SigInfo;
use crate::task::{Task, Thread};
use crate::vfs::{FileDescription, OpenFlags, StatusFlags, WaitQueue, POLLIN};
use rvisor_abi::structs::Stat;
use rvisor_abi::{error, SysResult};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// SIGKILL and SIGSTOP are never read through a signalfd.
const UNREADABLE: u64 = (1 << 8) | (1 << 18);
/// sizeof(struct signalfd_siginfo).
pub const SIGINFO_SIZE: usize = 128;

pub struct SignalFd {
    /// The signals it reads (bit n-1 for signal n).
    mask: AtomicU64,
    flags: StatusFlags,
    /// The process whose signals it polls for (the reader's, as on Linux, is
    /// what a read takes; poll looks at the creator's process).
    waiters: Arc<WaitQueue>,
}

impl SignalFd {
    pub fn new(t: &Task, mask: u64, flags: u32) -> SignalFd {
        SignalFd { mask: AtomicU64::new(mask & !UNREADABLE), flags: StatusFlags::new(flags | OpenFlags::RDWR), waiters: t.tg.signalfd_waiters.clone() }
    }

    pub fn set_mask(&self, mask: u64) {
        self.mask.store(mask & !UNREADABLE, Ordering::Relaxed);
    }

    fn mask(&self) -> u64 {
        self.mask.load(Ordering::Relaxed)
    }
}

/// Whether `th` (or its process) has a signal of `mask` pending.
fn pending_in(th: &Thread, mask: u64) -> bool {
    (th.sig().pending.mask | th.tg.sig().pending.mask) & mask != 0
}

/// `struct signalfd_siginfo` from a dequeued signal.
fn record(info: &SigInfo) -> [u8; SIGINFO_SIZE] {
    let mut r = [0u8; SIGINFO_SIZE];
    let (w0, w1) = info.words();
    let mut put = |at: usize, bytes: &[u8]| r[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &info.signo().to_ne_bytes());
    put(4, &info.errno.to_ne_bytes());
    put(8, &info.code.to_ne_bytes());
    // ssi_pid, ssi_uid (or, for a timer, ssi_tid and ssi_overrun: the same words).
    put(12, &(w0 as u32).to_ne_bytes());
    put(16, &((w0 >> 32) as u32).to_ne_bytes());
    put(24, &(w0 as u32).to_ne_bytes());
    put(32, &((w0 >> 32) as u32).to_ne_bytes());
    // ssi_status and ssi_int, ssi_ptr: the value word.
    put(40, &(w1 as u32 as i32).to_ne_bytes());
    put(44, &(w1 as u32 as i32).to_ne_bytes());
    put(48, &w1.to_ne_bytes());
    // ssi_addr for faults.
    put(72, &w0.to_ne_bytes());
    r
}

impl FileDescription for SignalFd {
    fn read(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if offset.is_some() {
            return error!(ESPIPE);
        }
        let room = (bufs.total() as usize) / SIGINFO_SIZE;
        if room == 0 {
            return error!(EINVAL);
        }
        let mask = self.mask();
        let mut out = Vec::new();
        loop {
            while out.len() < room * SIGINFO_SIZE {
                match t.dequeue_signal(!mask) {
                    Some(info) => out.extend_from_slice(&record(&info)),
                    None => break,
                }
            }
            if !out.is_empty() {
                return super::simple::copy_out(t, bufs, &out);
            }
            if self.flags.get() & OpenFlags::NONBLOCK != 0 {
                return error!(EAGAIN);
            }
            self.waiters.register(&t.thread);
            let r = t.block_until(None, || pending_in(&t.thread, mask));
            self.waiters.unregister(&t.thread);
            r?;
        }
    }

    fn write(&self, _t: &Task, _bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        error!(EINVAL)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(anon_inode_stat())
    }

    fn flags(&self) -> Option<&crate::vfs::StatusFlags> {
        Some(&self.flags)
    }

    fn proc_name(&self) -> Option<Vec<u8>> {
        Some(b"anon_inode:[signalfd]".to_vec())
    }

    /// Readable while the polling thread (or its process) has one of the signals.
    fn readiness(&self, mask: u32) -> u32 {
        let ready = crate::fs::proc::current().is_some_and(|th| pending_in(&th, self.mask()));
        if ready { mask & POLLIN } else { 0 }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.waiters)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
