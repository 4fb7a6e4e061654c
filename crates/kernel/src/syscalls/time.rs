//! Clock syscalls, served from the Sentry's own clocks.

use crate::mm::UserRef;
use crate::task::Task;
use crate::time::to_timespec;
use rvisor_abi::structs::{Timespec, Timeval, Timezone};
use rvisor_abi::{error, SysResult};
use std::time::{Duration, Instant};

const TIMER_ABSTIME: i32 = 1;

/// The CPU-time clocks (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID and the
/// per-pid ones clock_getcpuclockid makes), from the app's CPU accounting.
fn cpu_clock(t: &Task, clock: i32) -> Option<SysResult<i64>> {
    const CPUCLOCK_PERTHREAD: i32 = 4;
    match clock {
        2 => Some(Ok(t.tg.cpu_times().total() as i64)),
        3 => Some(Ok(t.thread.cpu_times().total() as i64)),
        c if c < 0 => {
            let id = !(c >> 3);
            let r = if c & CPUCLOCK_PERTHREAD != 0 {
                let id = if id == 0 { t.vnr(t.tid()) } else { id };
                t.pid_ns().thread(id).map(|th| th.cpu_times().total() as i64)
            } else {
                let id = if id == 0 { t.vnr(t.tg.tgid) } else { id };
                t.pid_ns().group(id).map(|g| g.cpu_times().total() as i64)
            };
            Some(r.ok_or_else(|| rvisor_abi::errno!(EINVAL)))
        }
        _ => None,
    }
}

/// Clock `clock` as the task's time namespace reads it.
pub fn read_clock(t: &Task, clock: i32) -> SysResult<i64> {
    Ok(t.kernel.clocks.read(clock)?.saturating_add(t.ns.time.offsets().of(clock)))
}

pub fn sys_clock_gettime(t: &mut Task, clock: i32, tp: UserRef<Timespec>) -> SysResult<()> {
    let ns = match cpu_clock(t, clock) {
        Some(r) => r?,
        None => read_clock(t, clock)?,
    };
    t.mm.write_obj(tp, &to_timespec(ns))
}

pub fn sys_clock_getres(t: &mut Task, clock: i32, res: UserRef<Timespec>) -> SysResult<()> {
    let ns = match cpu_clock(t, clock) {
        Some(r) => r.map(|_| 1)?,
        None => t.kernel.clocks.resolution(clock)?,
    };
    if !res.is_null() {
        t.mm.write_obj(res, &to_timespec(ns))?;
    }
    Ok(())
}

pub fn sys_gettimeofday(t: &mut Task, tv: UserRef<Timeval>, tz: UserRef<Timezone>) -> SysResult<()> {
    if !tv.is_null() {
        let ts = to_timespec(t.kernel.clocks.realtime_ns());
        t.mm.write_obj(tv, &Timeval { tv_sec: ts.tv_sec, tv_usec: ts.tv_nsec / 1000 })?;
    }
    if !tz.is_null() {
        let p = t.kernel.clocks.source.params();
        t.mm.write_obj(tz, &Timezone { tz_minuteswest: p.tz_minuteswest, tz_dsttime: p.tz_dsttime })?;
    }
    Ok(())
}

pub fn sys_time(t: &mut Task, tloc: UserRef<i64>) -> SysResult<i64> {
    let secs = to_timespec(t.kernel.clocks.realtime_ns()).tv_sec;
    if !tloc.is_null() {
        t.mm.write_obj(tloc, &secs)?;
    }
    Ok(secs)
}

/// A relative sleep until `deadline`. On a signal it writes the time left to
/// `rem` and returns ERESTART_RESTARTBLOCK: EINTR for a handler; else (a stop, an
/// ignored or a traced signal) restart_syscall goes on to the same deadline, as
/// Linux's hrtimer_nanosleep_restart does.
pub(crate) fn sleep_until(t: &mut Task, deadline: Option<Instant>, rem: UserRef<Timespec>) -> SysResult<()> {
    match t.block_until(deadline, || false) {
        Err(e) if e.code == rvisor_abi::ErrnoCode::ETIMEDOUT => Ok(()),
        Err(e) if e.code == rvisor_abi::ErrnoCode::ERESTARTSYS => {
            if !rem.is_null() {
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now())).unwrap_or(Duration::MAX);
                if left.is_zero() {
                    return Ok(());
                }
                t.mm.write_obj(rem, &to_timespec(i64::try_from(left.as_nanos()).unwrap_or(i64::MAX)))?;
            }
            t.restart_block = Some(crate::task::RestartBlock::Nanosleep { deadline, rem });
            error!(ERESTART_RESTARTBLOCK)
        }
        r => r,
    }
}

/// An absolute sleep on a realtime clock: until the clock reads `at_ns`, however
/// it is set meanwhile.
fn sleep_until_realtime(t: &mut Task, at_ns: i64) -> SysResult<()> {
    match t.block_until_realtime(at_ns, || false) {
        Err(e) if e.code == rvisor_abi::ErrnoCode::ETIMEDOUT => Ok(()),
        Err(e) if e.code == rvisor_abi::ErrnoCode::ERESTARTSYS => error!(ERESTARTNOHAND),
        r => r,
    }
}

fn read_duration(t: &Task, req: UserRef<Timespec>) -> SysResult<Timespec> {
    let ts = t.mm.read_obj(req)?;
    ts.duration()?;
    Ok(ts)
}

pub fn sys_nanosleep(t: &mut Task, req: UserRef<Timespec>, rem: UserRef<Timespec>) -> SysResult<()> {
    let deadline = crate::time::deadline_in(t.mm.read_obj(req)?.duration()?);
    sleep_until(t, deadline, rem)
}

pub fn sys_clock_nanosleep(t: &mut Task, clock: i32, flags: i32, req: UserRef<Timespec>, rem: UserRef<Timespec>) -> SysResult<()> {
    let ts = read_duration(t, req)?;
    let now = read_clock(t, clock)?;
    let ns = ts.as_ns();
    if flags & TIMER_ABSTIME != 0 && crate::time::is_realtime(clock) {
        return sleep_until_realtime(t, ns);
    }
    if flags & TIMER_ABSTIME != 0 {
        // Absolute sleeps restart as they were called, with nothing left to tell.
        let deadline = crate::time::deadline_in(Duration::from_nanos(ns.saturating_sub(now).max(0) as u64));
        return match t.block_until(deadline, || false) {
            Err(e) if e.code == rvisor_abi::ErrnoCode::ETIMEDOUT => Ok(()),
            Err(e) if e.code == rvisor_abi::ErrnoCode::ERESTARTSYS => error!(ERESTARTNOHAND),
            r => r,
        };
    }
    sleep_until(t, crate::time::deadline_in(Duration::from_nanos(ns as u64)), rem)
}

/// Only a task with CAP_SYS_TIME may set the sandbox's realtime clock; the
/// host's is never touched.
fn may_set_time(t: &Task) -> SysResult<()> {
    if t.tg.capable(rvisor_abi::consts::CAP_SYS_TIME) { Ok(()) } else { error!(EPERM) }
}

pub fn sys_clock_settime(t: &mut Task, clock: i32, tp: UserRef<Timespec>) -> SysResult<()> {
    let ts = read_duration(t, tp)?;
    match clock {
        0 => {
            may_set_time(t)?;
            t.kernel.clocks.source.set_realtime_ns(ts.as_ns());
            t.kernel.clock_was_set();
            Ok(())
        }
        c => {
            t.kernel.clocks.read(c)?;
            error!(EINVAL)
        }
    }
}

pub fn sys_settimeofday(t: &mut Task, tv: UserRef<Timeval>, tz: UserRef<Timezone>) -> SysResult<()> {
    may_set_time(t)?;
    if !tz.is_null() {
        let z = t.mm.read_obj(tz)?;
        t.kernel.clocks.source.set_timezone(z.tz_minuteswest, z.tz_dsttime);
    }
    if !tv.is_null() {
        let v = t.mm.read_obj(tv)?;
        if v.tv_sec < 0 || !(0..1_000_000).contains(&v.tv_usec) {
            return error!(EINVAL);
        }
        t.kernel.clocks.source.set_realtime_ns(v.tv_sec.saturating_mul(1_000_000_000).saturating_add(v.tv_usec * 1000));
        t.kernel.clock_was_set();
    }
    Ok(())
}
