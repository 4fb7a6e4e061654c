//! Clock syscalls, served from the Sentry's own clocks.

use crate::mm::UserRef;
use crate::task::Task;
use crate::time::to_timespec;
use rvisor_abi::structs::{Timespec, Timeval, Timezone};
use rvisor_abi::{error, SysResult};
use std::time::Duration;

const TIMER_ABSTIME: i32 = 1;
const CLOCK_MONOTONIC: i32 = rvisor_abi::consts::CLOCK_MONOTONIC as i32;
const CLOCK_BOOTTIME: i32 = rvisor_abi::consts::CLOCK_BOOTTIME as i32;
const CLOCK_BOOTTIME_ALARM: i32 = rvisor_abi::consts::CLOCK_BOOTTIME_ALARM as i32;

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

/// A sleep until clock `clock` reads `until_ns`. The host times it stretch by
/// stretch, and it goes on while the sandbox's clock is not there yet: that
/// clock may run up to 500 ppm slow while it slews onto the host's, and a sleep
/// never ends early by its own clock on Linux. On a signal a relative sleep
/// writes the time left to `rem` and returns ERESTART_RESTARTBLOCK: EINTR for a
/// handler; else (a stop, an ignored or a traced signal) restart_syscall goes
/// on to the same end, as Linux's hrtimer_nanosleep_restart does. An absolute
/// one (`relative` false) restarts as it was called (ERESTARTNOHAND).
pub(crate) fn sleep_until(t: &mut Task, clock: i32, until_ns: i64, relative: bool, rem: UserRef<Timespec>) -> SysResult<()> {
    loop {
        let left = until_ns.saturating_sub(read_clock(t, clock)?);
        if left <= 0 {
            return Ok(());
        }
        match t.block_until(crate::time::deadline_in(Duration::from_nanos(left as u64)), || false) {
            Err(e) if e.code == rvisor_abi::ErrnoCode::ETIMEDOUT => continue,
            Err(e) if e.code == rvisor_abi::ErrnoCode::ERESTARTSYS && !relative => return error!(ERESTARTNOHAND),
            Err(e) if e.code == rvisor_abi::ErrnoCode::ERESTARTSYS => {
                let left = until_ns.saturating_sub(read_clock(t, clock)?);
                if left <= 0 {
                    return Ok(());
                }
                if !rem.is_null() {
                    t.mm.write_obj(rem, &to_timespec(left))?;
                }
                t.restart_block = Some(crate::task::RestartBlock::Nanosleep { clock, until_ns, rem });
                return error!(ERESTART_RESTARTBLOCK);
            }
            r => return r,
        }
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
    let ns = read_duration(t, req)?.as_ns();
    let until = read_clock(t, CLOCK_MONOTONIC)?.saturating_add(ns);
    sleep_until(t, CLOCK_MONOTONIC, until, true, rem)
}

pub fn sys_clock_nanosleep(t: &mut Task, clock: i32, flags: i32, req: UserRef<Timespec>, rem: UserRef<Timespec>) -> SysResult<()> {
    let ts = read_duration(t, req)?;
    read_clock(t, clock)?;
    let ns = ts.as_ns();
    if flags & TIMER_ABSTIME != 0 && crate::time::is_realtime(clock) {
        return sleep_until_realtime(t, ns);
    }
    if flags & TIMER_ABSTIME != 0 {
        // Absolute sleeps restart as they were called, with nothing left to tell.
        return sleep_until(t, clock, ns, false, UserRef::new(rvisor_abi::UserAddr(0)));
    }
    // A relative sleep is not moved by setting the clock: it is measured on
    // the monotonic clock unless its own is one that is never set.
    let measure = if matches!(clock, CLOCK_BOOTTIME | CLOCK_BOOTTIME_ALARM) { clock } else { CLOCK_MONOTONIC };
    let until = read_clock(t, measure)?.saturating_add(ns);
    sleep_until(t, measure, until, true, rem)
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
