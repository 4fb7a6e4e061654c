//! Waiting on many descriptors: poll, ppoll, select, pselect6 and the epoll calls.
//!
//! poll and select look at each file's `readiness`, and sleep registered on every
//! file's wait queue (or in a host poll when host streams are among them; see
//! `vfs::readiness`). Interrupted by a signal they return ERESTARTNOHAND: EINTR
//! when a handler runs, else a restart (poll through restart_syscall until its
//! first deadline; select, ppoll and pselect6 with the remaining time they wrote
//! back, as Linux's do). ppoll, pselect6 and epoll_pwait(2) install their signal mask for the wait;
//! the old mask comes back at once unless the call was interrupted, in which case
//! it stays in `saved_mask` so the handler's frame records it (like sigsuspend).

use super::pipe::{install, nofile};
use crate::fs::epoll::{Epoll, EPOLL_CLOEXEC, EPOLL_CTL_DEL};
use crate::mm::UserRef;
use crate::task::Task;
use crate::vfs::readiness::{wait_for, Watched, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, POLLRDBAND, POLLRDNORM, POLLWRBAND, POLLWRNORM};
use crate::vfs::{Fd, FileDescription};
use rvisor_abi::structs::{Timespec, Timeval};
use rvisor_abi::{errno, error, ErrnoCode, SysResult, UserAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `struct pollfd`.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

/// `struct epoll_event` (packed on x86-64).
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
struct EpollEvent {
    events: u32,
    data: u64,
}

/// personality(2)'s flag that keeps select's and ppoll's timeouts as given.
const STICKY_TIMEOUTS: u32 = 0x0400_0000;

const EP_MAX_EVENTS: i32 = i32::MAX / std::mem::size_of::<EpollEvent>() as i32;

/// When a wait ends: never, or at an instant (`zero` for a timeout of zero).
#[derive(Clone, Copy)]
struct Timeout {
    deadline: Option<Instant>,
    zero: bool,
}

impl Timeout {
    const INFINITE: Timeout = Timeout { deadline: None, zero: false };

    /// A relative timeout; one too large for the clock is infinite.
    fn after(d: Duration) -> Timeout {
        Timeout { deadline: Instant::now().checked_add(d), zero: d.is_zero() }
    }

    fn from_timespec(ts: Timespec) -> SysResult<Timeout> {
        Ok(Timeout::after(ts.duration()?))
    }

    fn from_ms(ms: i64) -> Timeout {
        if ms < 0 { Timeout::INFINITE } else { Timeout::after(Duration::from_millis(ms as u64)) }
    }

    fn remaining(&self) -> Duration {
        self.deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(Instant::now()))
    }
}

/// Reads a relative timespec timeout (NULL: infinite).
fn read_timespec(t: &Task, ts: UserRef<Timespec>) -> SysResult<Timeout> {
    if ts.is_null() {
        return Ok(Timeout::INFINITE);
    }
    Timeout::from_timespec(t.mm.read_obj(ts)?)
}

/// Installs the temporary signal mask of ppoll/pselect6/epoll_pwait. Returns
/// whether one was installed.
fn set_sigmask(t: &Task, mask: UserRef<u64>, size: usize) -> SysResult<bool> {
    if mask.is_null() {
        return Ok(false);
    }
    if size != 8 {
        return error!(EINVAL);
    }
    let new = t.mm.read_obj(mask)?;
    {
        let mut s = t.thread.sig();
        s.saved_mask = Some(s.mask);
    }
    t.thread.set_sigmask(new);
    Ok(true)
}

/// Installs the temporary signal mask of pselect6 and io_pgetevents, given as
/// their `{ sigset pointer, size }` argument (NULL: none).
pub(super) fn set_sigmask_arg(t: &Task, sig: UserRef<SigsetArg>) -> SysResult<bool> {
    if sig.is_null() {
        return Ok(false);
    }
    let a = t.mm.read_obj(sig)?;
    set_sigmask(t, UserRef::new(UserAddr(a.set)), a.size as usize)
}

/// Puts the old mask back unless the call was interrupted (`keep`): then the
/// signal delivery on the way out records it in the handler's frame, or restores
/// it if no handler runs.
pub(super) fn restore_sigmask(t: &Task, installed: bool, keep: bool) {
    if installed && !keep {
        let saved = t.thread.sig().saved_mask.take();
        if let Some(m) = saved {
            t.thread.set_sigmask(m);
        }
    }
}

/// A wait's outcome for poll and select: timeouts are not errors, signals are
/// ERESTARTNOHAND.
fn poll_outcome<R>(r: SysResult<R>, timed_out: R) -> SysResult<R> {
    match r {
        Ok(v) => Ok(v),
        Err(e) if e.code == ErrnoCode::ETIMEDOUT => Ok(timed_out),
        Err(e) if e.code == ErrnoCode::ERESTARTSYS => error!(ERESTARTNOHAND),
        Err(e) => Err(e),
    }
}

fn do_poll(t: &Task, ufds: UserAddr, nfds: u32, timeout: Timeout) -> SysResult<usize> {
    // Linux's RLIMIT_NOFILE cannot pass fs.nr_open (2^20): the same bound here
    // keeps the copy of the array bounded whatever the limit says.
    if nfds as u64 > nofile(t).min(1 << 20) {
        return error!(EINVAL);
    }
    let n = nfds as usize;
    let mut pfds = vec![PollFd { fd: 0, events: 0, revents: 0 }; n];
    if n > 0 {
        t.mm.read_bytes(ufds, pfds.as_mut_slice().as_mut_bytes())?;
    }
    let files: Vec<Option<Arc<dyn FileDescription>>> = pfds.iter().map(|p| if p.fd < 0 { None } else { t.fds.get(Fd(p.fd)).ok() }).collect();
    let wanted = |p: &PollFd| (p.events as u16 as u32) | POLLERR | POLLHUP;
    let watched: Vec<Watched> = pfds.iter().zip(&files).filter_map(|(p, f)| f.as_ref().map(|f| Watched { file: f.clone(), events: wanted(p) })).collect();
    let mut revents = vec![0u32; n];
    let r = {
        let mut check = || {
            let mut count = 0;
            for (i, (p, f)) in pfds.iter().zip(&files).enumerate() {
                revents[i] = match f {
                    _ if p.fd < 0 => 0,
                    None => POLLNVAL,
                    Some(f) => f.readiness(wanted(p)) & wanted(p),
                };
                count += (revents[i] != 0) as usize;
            }
            (count > 0).then_some(count)
        };
        wait_for(t, &watched, timeout.deadline, &mut check)
    };
    for (p, r) in pfds.iter_mut().zip(&revents) {
        p.revents = *r as u16 as i16;
    }
    if n > 0 {
        t.mm.write_bytes(ufds, pfds.as_bytes())?;
    }
    poll_outcome(r, 0)
}

pub fn sys_poll(t: &mut Task, fds: UserAddr, nfds: u32, timeout_ms: i32) -> SysResult<usize> {
    let timeout = Timeout::from_ms(timeout_ms as i64);
    let r = do_poll(t, fds, nfds, timeout);
    restart_poll(t, fds, nfds, timeout.deadline, r)
}

/// poll has nowhere to write the time left: interrupted, it leaves a restart block
/// with its deadline, so that a restart (after a stop, or a signal without a
/// handler) waits only for what is left, as Linux's does; a handler gets EINTR.
fn restart_poll(t: &mut Task, fds: UserAddr, nfds: u32, deadline: Option<Instant>, r: SysResult<usize>) -> SysResult<usize> {
    match r {
        Err(e) if e.code == ErrnoCode::ERESTARTNOHAND => {
            t.restart_block = Some(crate::task::RestartBlock::Poll { fds, nfds, deadline });
            error!(ERESTART_RESTARTBLOCK)
        }
        r => r,
    }
}

/// restart_syscall after an interrupted poll: on until its first deadline.
pub(super) fn poll_until(t: &mut Task, fds: UserAddr, nfds: u32, deadline: Option<Instant>) -> SysResult<usize> {
    let r = do_poll(t, fds, nfds, Timeout { deadline, zero: false });
    restart_poll(t, fds, nfds, deadline, r)
}

/// How a remaining timeout is written back.
enum TimeKind {
    Timeval,
    Timespec,
}

/// Linux's poll_select_finish: writes the time left back over the caller's
/// timeout (not for a NULL or zero one). A failed write is ignored, but then the
/// call is not restarted (the time left is lost), so ERESTARTNOHAND becomes EINTR.
/// Under the STICKY_TIMEOUTS personality nothing is written back, so such an
/// interrupted call is not restarted either.
fn write_back_time<R>(t: &Task, at: UserAddr, timeout: Timeout, kind: TimeKind, r: SysResult<R>) -> SysResult<R> {
    if at.is_null() {
        return r;
    }
    let sticky = t.tg.personality.load(std::sync::atomic::Ordering::Relaxed) & STICKY_TIMEOUTS != 0;
    let written = if sticky {
        false
    } else if timeout.zero || timeout.deadline.is_none() {
        return r;
    } else {
        let left = timeout.remaining();
        match kind {
            TimeKind::Timeval => t.mm.write_obj(at.into(), &Timeval { tv_sec: left.as_secs() as i64, tv_usec: left.subsec_micros() as i64 }),
            TimeKind::Timespec => t.mm.write_obj(at.into(), &Timespec { tv_sec: left.as_secs() as i64, tv_nsec: left.subsec_nanos() as i64 }),
        }
        .is_ok()
    };
    match r {
        Err(e) if e.code == ErrnoCode::ERESTARTNOHAND && !written => error!(EINTR),
        r => r,
    }
}

pub fn sys_ppoll(t: &mut Task, fds: UserAddr, nfds: u32, tsp: UserRef<Timespec>, sigmask: UserRef<u64>, sigsetsize: usize) -> SysResult<usize> {
    let timeout = read_timespec(t, tsp)?;
    let masked = set_sigmask(t, sigmask, sigsetsize)?;
    let r = do_poll(t, fds, nfds, timeout);
    restore_sigmask(t, masked, r.as_ref().is_err_and(|e| e.code == ErrnoCode::ERESTARTNOHAND));
    write_back_time(t, tsp.addr, timeout, TimeKind::Timespec, r)
}

const POLLIN_SET: u32 = POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR;
const POLLOUT_SET: u32 = POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR;
const POLLEX_SET: u32 = POLLPRI;

/// The size of Linux's fd table holding the current highest descriptor.
fn fd_table_size(t: &Task) -> usize {
    match t.fds.highest() {
        Some(Fd(h)) if h >= 64 => ((h as usize / 128) + 1).next_power_of_two() * 128,
        _ => 64,
    }
}

fn do_select(t: &Task, nfds: i32, sets: [UserAddr; 3], timeout: Timeout) -> SysResult<usize> {
    if nfds < 0 {
        return error!(EINVAL);
    }
    // Linux clamps nfds to the size of the fd table: 64 slots, then multiples of
    // 128 rounded to a power of two (alloc_fdtable). Ours has no size; this is the
    // size Linux's would have for the highest open descriptor.
    let n = (nfds as usize).min(fd_table_size(t));
    let words = n.div_ceil(64);
    let mut input = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    for (set, at) in input.iter_mut().zip(sets) {
        if !at.is_null() && words > 0 {
            t.mm.read_bytes(at, set.as_mut_slice().as_mut_bytes())?;
        }
    }
    let bit = |set: &[u64], fd: usize| set[fd / 64] >> (fd % 64) & 1 != 0;
    const MASKS: [u32; 3] = [POLLIN_SET, POLLOUT_SET, POLLEX_SET];
    let mut fds: Vec<(usize, Arc<dyn FileDescription>)> = Vec::new();
    let mut watched = Vec::new();
    for fd in 0..n {
        if (0..3).any(|s| bit(&input[s], fd)) {
            let file = t.fds.get(Fd(fd as i32))?;
            let events = (0..3).filter(|&s| bit(&input[s], fd)).fold(0, |m, s| m | MASKS[s]);
            watched.push(Watched { file: file.clone(), events });
            fds.push((fd, file));
        }
    }
    let mut out = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    let r = {
        let mut check = || {
            let mut count = 0;
            out.iter_mut().for_each(|s| s.fill(0));
            for (fd, file) in &fds {
                let mask = file.readiness(!0);
                for s in 0..3 {
                    if bit(&input[s], *fd) && mask & MASKS[s] != 0 {
                        out[s][fd / 64] |= 1 << (fd % 64);
                        count += 1;
                    }
                }
            }
            (count > 0).then_some(count)
        };
        poll_outcome(wait_for(t, &watched, timeout.deadline, &mut check), 0)?
    };
    for (set, at) in out.iter().zip(sets) {
        if !at.is_null() && words > 0 {
            t.mm.write_bytes(at, set.as_bytes())?;
        }
    }
    Ok(r)
}

pub fn sys_select(t: &mut Task, nfds: i32, readfds: UserAddr, writefds: UserAddr, exceptfds: UserAddr, timeout: UserRef<Timeval>) -> SysResult<usize> {
    let to = if timeout.is_null() {
        Timeout::INFINITE
    } else {
        let tv = t.mm.read_obj(timeout)?;
        if tv.tv_sec < 0 || tv.tv_usec < 0 {
            return error!(EINVAL);
        }
        let secs = (tv.tv_sec as u64).saturating_add(tv.tv_usec as u64 / 1_000_000);
        Timeout::after(Duration::new(secs, (tv.tv_usec as u64 % 1_000_000) as u32 * 1000))
    };
    let r = do_select(t, nfds, [readfds, writefds, exceptfds], to);
    write_back_time(t, timeout.addr, to, TimeKind::Timeval, r)
}

/// pselect6's sixth argument (io_pgetevents' `struct __aio_sigset` too).
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct SigsetArg {
    set: u64,
    size: u64,
}

pub fn sys_pselect6(t: &mut Task, nfds: i32, readfds: UserAddr, writefds: UserAddr, exceptfds: UserAddr, timeout: UserRef<Timespec>, sig: UserRef<SigsetArg>) -> SysResult<usize> {
    let to = read_timespec(t, timeout)?;
    let masked = set_sigmask_arg(t, sig)?;
    let r = do_select(t, nfds, [readfds, writefds, exceptfds], to);
    restore_sigmask(t, masked, r.as_ref().is_err_and(|e| e.code == ErrnoCode::ERESTARTNOHAND));
    write_back_time(t, timeout.addr, to, TimeKind::Timespec, r)
}

pub fn sys_epoll_create(t: &mut Task, size: i32) -> SysResult<Fd> {
    if size <= 0 {
        return error!(EINVAL);
    }
    install(t, Arc::new(Epoll::new()), false)
}

pub fn sys_epoll_create1(t: &mut Task, flags: i32) -> SysResult<Fd> {
    if flags as u32 & !EPOLL_CLOEXEC != 0 {
        return error!(EINVAL);
    }
    install(t, Arc::new(Epoll::new()), flags as u32 & EPOLL_CLOEXEC != 0)
}

pub fn sys_epoll_ctl(t: &mut Task, epfd: Fd, op: i32, fd: Fd, event: UserAddr) -> SysResult<()> {
    let ev = if op == EPOLL_CTL_DEL {
        (0, 0)
    } else {
        let e: EpollEvent = t.mm.read_obj(event.into())?;
        (e.events, e.data)
    };
    let ep_file = t.fds.get(epfd)?;
    let file = t.fds.get(fd)?;
    if !Epoll::can_watch(file.as_ref()) {
        return error!(EPERM);
    }
    let ep = match ep_file.epoll() {
        Some(ep) if !Arc::ptr_eq(&ep_file, &file) => ep,
        _ => return error!(EINVAL),
    };
    ep.ctl(op, fd.0, &file, ev)
}

fn do_epoll_wait(t: &Task, epfd: Fd, events: UserAddr, maxevents: i32, timeout: Timeout) -> SysResult<usize> {
    if maxevents <= 0 || maxevents > EP_MAX_EVENTS {
        return error!(EINVAL);
    }
    let size = maxevents as u64 * std::mem::size_of::<EpollEvent>() as u64;
    if !events.range_ok(size) {
        return error!(EFAULT);
    }
    let file = t.fds.get(epfd)?;
    let ep = file.epoll().ok_or_else(|| errno!(EINVAL))?;
    let mut faulted = false;
    let mut check = || {
        let n = ep.harvest(maxevents as usize, |i, ev, data| {
            let at = events.get() + i as u64 * std::mem::size_of::<EpollEvent>() as u64;
            let ok = t.mm.write_obj(UserAddr(at).into(), &EpollEvent { events: ev, data }).is_ok();
            faulted |= !ok && i == 0;
            ok
        });
        (n > 0 || faulted).then_some(n)
    };
    let r = if timeout.zero {
        Ok(check().unwrap_or(0))
    } else {
        match wait_for(t, &[Watched { file: file.clone(), events: POLLIN }], timeout.deadline, &mut check) {
            Err(e) if e.code == ErrnoCode::ETIMEDOUT => Ok(0),
            Err(e) if e.code == ErrnoCode::ERESTARTSYS => error!(EINTR),
            r => r,
        }
    };
    if faulted {
        return error!(EFAULT);
    }
    r
}

pub fn sys_epoll_wait(t: &mut Task, epfd: Fd, events: UserAddr, maxevents: i32, timeout: i32) -> SysResult<usize> {
    do_epoll_wait(t, epfd, events, maxevents, Timeout::from_ms(timeout as i64))
}

pub fn sys_epoll_pwait(t: &mut Task, epfd: Fd, events: UserAddr, maxevents: i32, timeout: i32, sigmask: UserRef<u64>, sigsetsize: usize) -> SysResult<usize> {
    let masked = set_sigmask(t, sigmask, sigsetsize)?;
    let r = do_epoll_wait(t, epfd, events, maxevents, Timeout::from_ms(timeout as i64));
    restore_sigmask(t, masked, r.as_ref().is_err_and(|e| e.code == ErrnoCode::EINTR));
    r
}

pub fn sys_epoll_pwait2(t: &mut Task, epfd: Fd, events: UserAddr, maxevents: i32, timeout: UserRef<Timespec>, sigmask: UserRef<u64>, sigsetsize: usize) -> SysResult<usize> {
    let to = read_timespec(t, timeout)?;
    let masked = set_sigmask(t, sigmask, sigsetsize)?;
    let r = do_epoll_wait(t, epfd, events, maxevents, to);
    restore_sigmask(t, masked, r.as_ref().is_err_and(|e| e.code == ErrnoCode::EINTR));
    r
}
