//! Clock syscalls, served from the Sentry's own clocks.

use crate::mm::UserRef;
use crate::task::Task;
use crate::time::to_timespec;
use rvisor_abi::structs::{Timespec, Timeval, Timezone};
use rvisor_abi::SysResult;

pub fn sys_clock_gettime(t: &mut Task, clock: i32, tp: UserRef<Timespec>) -> SysResult<()> {
    let ns = t.kernel.clocks.read(clock)?;
    t.mm.write_obj(tp, &to_timespec(ns))
}

pub fn sys_clock_getres(t: &mut Task, clock: i32, res: UserRef<Timespec>) -> SysResult<()> {
    let ns = t.kernel.clocks.resolution(clock)?;
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
        t.mm.write_obj(tz, &Timezone { tz_minuteswest: 0, tz_dsttime: 0 })?;
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
