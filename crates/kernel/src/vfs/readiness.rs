//! Waiting for files to become ready: what poll, select and epoll_wait share.
//!
//! Files in the Sentry (pipes, eventfds, epoll sets) say when their readiness may
//! have changed through their `WaitQueue`. Files backed by a host descriptor that
//! can block (the inherited standard streams) cannot: a wait over them is a host
//! `poll` on their descriptors plus the thread's host wake-up eventfd, which
//! `Thread::interrupt` (signals, group exit) and the Sentry files' queues (through
//! `WaitQueue::register_host`) make readable.

use super::FileDescription;
use crate::task::Task;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use rvisor_abi::{errno, SysResult};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::Instant;

pub const POLLIN: u32 = 0x1;
pub const POLLPRI: u32 = 0x2;
pub const POLLOUT: u32 = 0x4;
pub const POLLERR: u32 = 0x8;
pub const POLLHUP: u32 = 0x10;
pub const POLLNVAL: u32 = 0x20;
pub const POLLRDNORM: u32 = 0x40;
pub const POLLRDBAND: u32 = 0x80;
pub const POLLWRNORM: u32 = 0x100;
pub const POLLWRBAND: u32 = 0x200;
pub const POLLMSG: u32 = 0x400;
pub const POLLRDHUP: u32 = 0x2000;

/// What a file without a poll operation reports (Linux's DEFAULT_POLLMASK).
pub const DEFAULT_POLLMASK: u32 = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;

/// The poll events of a host descriptor right now (zero timeout).
pub fn host_readiness(fd: BorrowedFd<'_>, mask: u32) -> u32 {
    let mut fds = [PollFd::new(fd, PollFlags::from_bits_truncate(mask as i16))];
    loop {
        match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return POLLERR,
            Ok(_) => return fds[0].revents().map_or(0, |r| r.bits() as u16 as u32),
        }
    }
}

/// A file to wait on and the events wanted from it.
pub struct Watched {
    pub file: Arc<dyn FileDescription>,
    pub events: u32,
}

/// The host-backed files under `w`: the file itself, or those inside an epoll set.
fn host_files(w: &[Watched]) -> Vec<Watched> {
    let mut out = Vec::new();
    for x in w {
        if x.file.host_fd().is_some() {
            out.push(Watched { file: x.file.clone(), events: x.events });
        } else if let Some(ep) = x.file.epoll() {
            ep.host_files(&mut out, 0);
        }
    }
    out
}

/// Waits until `check` returns Some, with the task registered on every watched
/// file's wait queue. `check` runs first, then again after every wake-up. Fails
/// with ETIMEDOUT at `deadline` and ERESTARTSYS when a signal is pending (or the
/// group stops or dies); `check` is always tried before either.
pub fn wait_for<R>(t: &Task, watched: &[Watched], deadline: Option<Instant>, mut check: impl FnMut() -> Option<R>) -> SysResult<R> {
    let host = host_files(watched);
    let wake = if host.is_empty() { None } else { t.thread.host_wake() };
    let queues: Vec<&super::WaitQueue> = watched.iter().filter_map(|w| w.file.wait_queue()).collect();
    for q in &queues {
        if wake.is_some() {
            q.register_host(&t.thread);
        } else {
            q.register(&t.thread);
        }
    }
    let mut result = None;
    let r = match wake {
        None if host.is_empty() => t.block_until(deadline, || {
            result = check();
            result.is_some()
        }),
        _ => host_wait(t, &host, wake, deadline, || {
            result = check();
            result.is_some()
        }),
    };
    for q in &queues {
        q.unregister(&t.thread);
    }
    r?;
    result.ok_or_else(|| errno!(ETIMEDOUT))
}

/// `block_until` for a wait that includes host descriptors.
fn host_wait(t: &Task, host: &[Watched], wake: Option<&nix::sys::eventfd::EventFd>, deadline: Option<Instant>, mut ready: impl FnMut() -> bool) -> SysResult<()> {
    // Host descriptors that reported an event `ready` did not care about (POLLHUP
    // when only POLLOUT was asked for...): left out of the next wait, which is then
    // capped, so the wait does not spin.
    let mut skip: Vec<bool> = vec![false; host.len()];
    loop {
        if let Some(w) = wake {
            let _ = w.read();
        }
        if ready() {
            return Ok(());
        }
        if t.signal_pending() {
            return Err(errno!(ERESTARTSYS));
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(errno!(ETIMEDOUT));
        }
        let spun = skip.iter().any(|&s| s);
        let mut cap_ms: Option<u128> = if wake.is_none() || spun { Some(10) } else { None };
        if let Some(d) = deadline {
            let left = (d - now).as_nanos().div_ceil(1_000_000);
            cap_ms = Some(cap_ms.map_or(left, |c| c.min(left)));
        }
        let timeout = match cap_ms {
            None => PollTimeout::NONE,
            Some(ms) => PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX),
        };
        let fds: Vec<BorrowedFd<'_>> = host.iter().filter_map(|w| w.file.host_fd()).collect();
        let mut pfds: Vec<PollFd<'_>> = Vec::with_capacity(fds.len() + 1);
        let mut which = Vec::with_capacity(fds.len());
        for (i, (fd, w)) in fds.iter().zip(host).enumerate() {
            if !skip[i] {
                pfds.push(PollFd::new(*fd, PollFlags::from_bits_truncate(w.events as i16)));
                which.push(i);
            }
        }
        if let Some(w) = wake {
            pfds.push(PollFd::new(w.as_fd(), PollFlags::POLLIN));
        }
        skip.iter_mut().for_each(|s| *s = false);
        match t.thread.waiter.asleep(|| nix::poll::poll(&mut pfds, timeout)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(super::host_file::host_errno(e)),
        }
        // A host descriptor that woke us but turns out not to satisfy `ready` is
        // skipped once.
        let fired: Vec<usize> = which.iter().zip(&pfds).filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty())).map(|(&i, _)| i).collect();
        if !fired.is_empty() && !ready() {
            for i in fired {
                skip[i] = true;
            }
        } else if !fired.is_empty() {
            return Ok(());
        }
    }
}
