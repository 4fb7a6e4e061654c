//! Interval and POSIX timers: alarm, setitimer, getitimer, timer_create and friends,
//! all on the kernel's one timekeeper.

use crate::mm::UserRef;
use crate::task::Task;
use crate::time::process_timers::{CpuTimer, PosixTimer, ProcessTimers, SignalOnExpiry};
use crate::time::deadline_in;
use crate::time::timers::TimerAction;
use rvisor_abi::structs::{Timespec, Timeval};
use rvisor_abi::{consts, errno, error, SysResult};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Itimerval {
    interval: Timeval,
    value: Timeval,
}

impl Default for Itimerval {
    fn default() -> Self {
        zerocopy::FromZeros::new_zeroed()
    }
}

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Itimerspec {
    pub interval: Timespec,
    pub value: Timespec,
}

/// `struct sigevent` (64 bytes).
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Sigevent {
    value: u64,
    signo: i32,
    notify: i32,
    tid: i32,
    pad: [i32; 11],
}

const ITIMER_REAL: i32 = 0;
const ITIMER_VIRTUAL: i32 = 1;
const ITIMER_PROF: i32 = 2;
const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD_ID: i32 = 4;
pub const TIMER_ABSTIME: i32 = 1;

fn tv_duration(tv: &Timeval) -> SysResult<Duration> {
    if tv.tv_sec < 0 || !(0..1_000_000).contains(&tv.tv_usec) {
        return error!(EINVAL);
    }
    Ok(Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000))
}

fn to_timeval(d: Duration) -> Timeval {
    Timeval { tv_sec: d.as_secs() as i64, tv_usec: d.subsec_micros() as i64 }
}

pub fn to_ts(d: Duration) -> Timespec {
    Timespec { tv_sec: d.as_secs() as i64, tv_nsec: d.subsec_nanos() as i64 }
}

/// The remaining time and interval of the process's real timer.
fn real_timer_now(t: &Task) -> (Duration, Duration) {
    let timers = t.tg.timers.lock().unwrap_or_else(|e| e.into_inner());
    match timers.real.as_ref().and_then(|(id, _)| t.kernel.timers.get(id)) {
        Some((deadline, interval)) => (deadline.saturating_duration_since(Instant::now()), interval.unwrap_or_default()),
        None => (Duration::ZERO, Duration::ZERO),
    }
}

/// Arms (or with a zero value disarms) the process's ITIMER_REAL.
fn set_real_timer(t: &Task, value: Duration, interval: Duration) {
    let mut timers = t.tg.timers.lock().unwrap_or_else(|e| e.into_inner());
    let (id, action) = timers.real.get_or_insert_with(|| {
        let action = Arc::new(SignalOnExpiry::new(Arc::downgrade(&t.tg), None, consts::SIGALRM, None));
        (t.kernel.timers.create(), action)
    });
    let when = if value.is_zero() { None } else { deadline_in(value).map(|d| (d, Some(interval))) };
    let weak: std::sync::Weak<dyn TimerAction> = Arc::downgrade(action) as std::sync::Weak<dyn TimerAction>;
    t.kernel.timers.arm(id, when, weak);
}

pub fn sys_alarm(t: &mut Task, seconds: u32) -> SysResult<u32> {
    let (left, _) = real_timer_now(t);
    set_real_timer(t, Duration::from_secs(seconds as u64), Duration::ZERO);
    // Linux rounds the old value up to whole seconds (and reports 1 for < 1 s left).
    Ok(if left.is_zero() { 0 } else { left.as_secs() as u32 + (left.subsec_nanos() >= 500_000_000 || left.as_secs() == 0) as u32 })
}

pub fn sys_getitimer(t: &mut Task, which: i32, value: UserRef<Itimerval>) -> SysResult<()> {
    let v = match which {
        ITIMER_REAL => {
            let (left, interval) = real_timer_now(t);
            Itimerval { interval: to_timeval(interval), value: to_timeval(left) }
        }
        ITIMER_VIRTUAL | ITIMER_PROF => cpu_timer_now(t, which),
        _ => return error!(EINVAL),
    };
    t.mm.write_obj(value, &v)
}

/// The slot of a CPU-time interval timer in the process's timers.
fn cpu_slot(timers: &mut ProcessTimers, which: i32) -> &mut Option<CpuTimer> {
    if which == ITIMER_VIRTUAL {
        &mut timers.virt
    } else {
        &mut timers.prof
    }
}

/// The remaining CPU time and interval of ITIMER_VIRTUAL or ITIMER_PROF.
fn cpu_timer_now(t: &Task, which: i32) -> Itimerval {
    let cpu = crate::time::process_timers::itimer_clock(t.tg.cpu_times(), which == ITIMER_VIRTUAL);
    let mut timers = t.tg.timers.lock().unwrap_or_else(|e| e.into_inner());
    match *cpu_slot(&mut timers, which) {
        // An expired timer not yet seen by the CPU tick still shows a sliver left, as in Linux.
        Some(ct) => Itimerval { interval: to_timeval(Duration::from_nanos(ct.interval_ns)), value: to_timeval(Duration::from_nanos(ct.expires_ns.saturating_sub(cpu).max(1000))) },
        None => Itimerval::default(),
    }
}

/// Arms (or with a zero value disarms) ITIMER_VIRTUAL (user time) or ITIMER_PROF
/// (user and system time).
fn set_cpu_timer(t: &Task, which: i32, value: Duration, interval: Duration) {
    let cpu = crate::time::process_timers::itimer_clock(t.tg.cpu_times(), which == ITIMER_VIRTUAL);
    let armed = !value.is_zero();
    let ns = |d: Duration| d.as_nanos().min(u64::MAX as u128) as u64;
    *cpu_slot(&mut t.tg.timers.lock().unwrap_or_else(|e| e.into_inner()), which) = armed.then(|| CpuTimer { expires_ns: cpu.saturating_add(ns(value)), interval_ns: ns(interval) });
    if armed {
        t.kernel.cpu_watch.watch(&t.kernel.timers, &t.tg);
    }
}

pub fn sys_setitimer(t: &mut Task, which: i32, new: UserRef<Itimerval>, old: UserRef<Itimerval>) -> SysResult<()> {
    if !matches!(which, ITIMER_REAL | ITIMER_VIRTUAL | ITIMER_PROF) {
        return error!(EINVAL);
    }
    let n = if new.is_null() { Itimerval::default() } else { t.mm.read_obj(new)? };
    let (value, interval) = (tv_duration(&n.value)?, tv_duration(&n.interval)?);
    if !old.is_null() {
        let prev = if which == ITIMER_REAL {
            let (left, iv) = real_timer_now(t);
            Itimerval { interval: to_timeval(iv), value: to_timeval(left) }
        } else {
            cpu_timer_now(t, which)
        };
        t.mm.write_obj(old, &prev)?;
    }
    if which == ITIMER_REAL {
        set_real_timer(t, value, interval);
    } else {
        set_cpu_timer(t, which, value, interval);
    }
    Ok(())
}

pub fn sys_timer_create(t: &mut Task, clock: i32, sevp: UserRef<Sigevent>, timerid: UserRef<i32>) -> SysResult<()> {
    t.kernel.clocks.read(clock)?;
    let ev = if sevp.is_null() {
        Sigevent { value: 0, signo: consts::SIGALRM as i32, notify: SIGEV_SIGNAL, tid: 0, pad: [0; 11] }
    } else {
        t.mm.read_obj(sevp)?
    };
    let thread = match ev.notify {
        SIGEV_SIGNAL | SIGEV_NONE => None,
        SIGEV_THREAD_ID => {
            let th = t.pid_ns().thread(ev.tid).filter(|th| Arc::ptr_eq(&th.tg, &t.tg)).ok_or_else(|| errno!(EINVAL))?;
            Some(Arc::downgrade(&th))
        }
        _ => return error!(EINVAL),
    };
    if ev.notify != SIGEV_NONE && !(1..=64).contains(&ev.signo) {
        return error!(EINVAL);
    }
    let mut timers = t.tg.timers.lock().unwrap_or_else(|e| e.into_inner());
    let id = timers.next_id;
    timers.next_id = id.checked_add(1).ok_or_else(|| errno!(EAGAIN))?;
    let value = if sevp.is_null() { id as u64 } else { ev.value };
    let signo = if ev.notify == SIGEV_NONE { 0 } else { ev.signo as u32 };
    let action = Arc::new(SignalOnExpiry::new(Arc::downgrade(&t.tg), thread, signo, Some((id, value))));
    timers.posix.insert(id, PosixTimer { timer: t.kernel.timers.create(), action, clock });
    drop(timers);
    t.mm.write_obj(timerid, &id)
}

fn remaining(t: &Task, p: &PosixTimer) -> Itimerspec {
    match t.kernel.timers.get(&p.timer) {
        Some((deadline, interval)) => Itimerspec { interval: to_ts(interval.unwrap_or_default()), value: to_ts(deadline.saturating_duration_since(Instant::now())) },
        None => Itimerspec { interval: to_ts(Duration::ZERO), value: to_ts(Duration::ZERO) },
    }
}

pub fn sys_timer_settime(t: &mut Task, timerid: i32, flags: i32, new: UserRef<Itimerspec>, old: UserRef<Itimerspec>) -> SysResult<()> {
    let n = t.mm.read_obj(new)?;
    let (value, interval) = (n.value.duration()?, n.interval.duration()?);
    let timers = t.tg.timers.lock().unwrap_or_else(|e| e.into_inner());
    let p = timers.posix.get(&timerid).ok_or_else(|| errno!(EINVAL))?;
    let prev = remaining(t, p);
    let weak: std::sync::Weak<dyn TimerAction> = Arc::downgrade(&p.action) as std::sync::Weak<dyn TimerAction>;
    arm_timer(t, &p.timer, p.clock, flags & TIMER_ABSTIME != 0, value, interval, weak)?;
    drop(timers);
    if !old.is_null() {
        t.mm.write_obj(old, &prev)?;
    }
    Ok(())
}

/// Arms a POSIX timer or a timerfd as its settime call asks: relative, absolute
/// on its clock, or, absolute on a realtime clock, due at that realtime even if
/// the clock is set meanwhile (as Linux's CLOCK_REALTIME hrtimers); a zero value
/// disarms it.
fn arm_timer(t: &Task, timer: &crate::time::timers::TimerId, clock: i32, absolute: bool, value: Duration, interval: Duration, action: std::sync::Weak<dyn TimerAction>) -> SysResult<()> {
    let timers = &t.kernel.timers;
    if value.is_zero() {
        timers.arm(timer, None, action);
    } else if absolute && crate::time::is_realtime(clock) {
        timers.arm_realtime(timer, t.kernel.clocks.realtime_ns(), value.as_nanos().min(i64::MAX as u128) as i64, interval, action);
    } else {
        // An absolute time is in the task's time namespace.
        let at = (value.as_nanos().min(i64::MAX as u128) as i64).saturating_sub(t.ns.time.offsets().of(clock));
        let when = if absolute { t.kernel.clocks.instant_at(clock, at)? } else { deadline_in(value) };
        timers.arm(timer, when.map(|d| (d, Some(interval))), action);
    }
    Ok(())
}

pub fn sys_timer_gettime(t: &mut Task, timerid: i32, cur: UserRef<Itimerspec>) -> SysResult<()> {
    let v = {
        let timers = t.tg.timers.lock().unwrap_or_else(|e| e.into_inner());
        remaining(t, timers.posix.get(&timerid).ok_or_else(|| errno!(EINVAL))?)
    };
    t.mm.write_obj(cur, &v)
}

pub fn sys_timer_getoverrun(t: &mut Task, timerid: i32) -> SysResult<i32> {
    let timers = t.tg.timers.lock().unwrap_or_else(|e| e.into_inner());
    let p = timers.posix.get(&timerid).ok_or_else(|| errno!(EINVAL))?;
    Ok(p.action.overrun.load(std::sync::atomic::Ordering::Relaxed).min(i32::MAX as u64) as i32)
}

pub fn sys_timer_delete(t: &mut Task, timerid: i32) -> SysResult<()> {
    t.tg.timers.lock().unwrap_or_else(|e| e.into_inner()).posix.remove(&timerid).map(|_| ()).ok_or_else(|| errno!(EINVAL))
}

const _: () = assert!(std::mem::size_of::<Sigevent>() == 64);

const TFD_TIMER_ABSTIME: i32 = 1;
const TFD_TIMER_CANCEL_ON_SET: i32 = 2;
const TFD_CLOEXEC: i32 = 0o2000000;
const TFD_NONBLOCK: i32 = 0o4000;

pub fn sys_timerfd_create(t: &mut Task, clock: i32, flags: i32) -> SysResult<crate::vfs::Fd> {
    if flags & !(TFD_CLOEXEC | TFD_NONBLOCK) != 0 || !matches!(clock, 0 | 1 | 7 | 8 | 9) {
        return error!(EINVAL);
    }
    let tfd = crate::fs::timerfd::TimerFd::new(clock, t.kernel.timers.create(), (flags & TFD_NONBLOCK) as u32);
    t.fds.install_lowest(Arc::new(tfd), 0, t.tg.rlimit(crate::task::RLIMIT_NOFILE).cur, flags & TFD_CLOEXEC != 0)
}

fn timerfd(t: &Task, fd: crate::vfs::Fd) -> SysResult<Arc<dyn crate::vfs::FileDescription>> {
    let f = t.fds.get(fd)?;
    if f.as_any().and_then(|a| a.downcast_ref::<crate::fs::timerfd::TimerFd>()).is_none() {
        return error!(EINVAL);
    }
    Ok(f)
}

fn timerfd_remaining(t: &Task, tfd: &crate::fs::timerfd::TimerFd) -> Itimerspec {
    match t.kernel.timers.get(&tfd.timer) {
        Some((deadline, interval)) => Itimerspec { interval: to_ts(interval.unwrap_or_default()), value: to_ts(deadline.saturating_duration_since(Instant::now()).max(Duration::from_nanos(1))) },
        None => Itimerspec { interval: to_ts(Duration::ZERO), value: to_ts(Duration::ZERO) },
    }
}

pub fn sys_timerfd_settime(t: &mut Task, fd: crate::vfs::Fd, flags: i32, new: UserRef<Itimerspec>, old: UserRef<Itimerspec>) -> SysResult<()> {
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return error!(EINVAL);
    }
    let f = timerfd(t, fd)?;
    let tfd = f.as_any().and_then(|a| a.downcast_ref::<crate::fs::timerfd::TimerFd>()).ok_or_else(|| errno!(EINVAL))?;
    let n = t.mm.read_obj(new)?;
    let (value, interval) = (n.value.duration()?, n.interval.duration()?);
    let prev = timerfd_remaining(t, tfd);
    tfd.expirations.count.store(0, std::sync::atomic::Ordering::Release);
    // CLOCK_REALTIME or CLOCK_REALTIME_ALARM, absolute: a clock set cancels it.
    let cancel = flags & TFD_TIMER_CANCEL_ON_SET != 0 && flags & TFD_TIMER_ABSTIME != 0 && matches!(tfd.clock, 0 | 8);
    tfd.expirations.cancel_on_set.store(cancel, std::sync::atomic::Ordering::Release);
    tfd.expirations.cancelled.store(false, std::sync::atomic::Ordering::Release);
    if cancel {
        t.kernel.timerfd_cancel.add(&tfd.expirations);
    }
    let weak: std::sync::Weak<dyn TimerAction> = Arc::downgrade(&tfd.expirations) as std::sync::Weak<dyn TimerAction>;
    arm_timer(t, &tfd.timer, tfd.clock, flags & TFD_TIMER_ABSTIME != 0, value, interval, weak)?;
    if !old.is_null() {
        t.mm.write_obj(old, &prev)?;
    }
    Ok(())
}

pub fn sys_timerfd_gettime(t: &mut Task, fd: crate::vfs::Fd, cur: UserRef<Itimerspec>) -> SysResult<()> {
    let f = timerfd(t, fd)?;
    let tfd = f.as_any().and_then(|a| a.downcast_ref::<crate::fs::timerfd::TimerFd>()).ok_or_else(|| errno!(EINVAL))?;
    let v = timerfd_remaining(t, tfd);
    t.mm.write_obj(cur, &v)
}
