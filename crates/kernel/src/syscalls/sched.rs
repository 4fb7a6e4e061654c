//! Scheduling: sched_yield, affinity, nice values (getpriority/setpriority),
//! policies and priorities (sched_{get,set}{param,scheduler}), I/O priorities
//! (ioprio_{get,set}), sched_{get,set}attr, getcpu.
//!
//! Host threads are scheduled by the host; the sandbox keeps each thread's
//! settings (`Thread::sched`) so programs read back what they set, with Linux's
//! checks, ranges and permissions: raising a priority takes CAP_SYS_NICE or
//! room under RLIMIT_NICE and RLIMIT_RTPRIO, being root alone is not enough.

use crate::mm::UserRef;
use crate::task::{SchedAttrs, Task, Thread, RLIMIT_NICE, RLIMIT_RTPRIO};
use rvisor_abi::structs::Timespec;
use rvisor_abi::{consts, error, SysResult, UserAddr};
use std::sync::Arc;

const PRIO_PROCESS: i32 = 0;
const PRIO_PGRP: i32 = 1;
const PRIO_USER: i32 = 2;

const SCHED_OTHER: i32 = 0;
const SCHED_FIFO: i32 = 1;
const SCHED_RR: i32 = 2;
const SCHED_BATCH: i32 = 3;
const SCHED_IDLE: i32 = 5;
const SCHED_RESET_ON_FORK: i32 = 0x4000_0000;

/// SCHED_RR's time slice as Linux reports it (RR_TIMESLICE, 100 ms).
const RR_TIMESLICE_NS: i64 = 100_000_000;

pub fn sys_sched_yield(_t: &mut Task) -> SysResult<()> {
    std::thread::yield_now();
    Ok(())
}

/// The thread `pid` names (0: the caller), ESRCH if none.
fn target(t: &Task, pid: i32) -> SysResult<Arc<Thread>> {
    match pid {
        0 => Ok(t.thread.clone()),
        p if p < 0 => error!(EINVAL),
        p => t.pid_ns().thread(p).ok_or_else(|| rvisor_abi::errno!(ESRCH)),
    }
}

/// Whether the caller may change `other`'s scheduling: its effective user is
/// the other's real or effective one, or it has CAP_SYS_NICE over it.
fn may_change(t: &Task, other: &Thread) -> SysResult<()> {
    let (me, them) = (t.tg.creds(), other.tg.creds());
    if me.euid == them.uid || me.euid == them.euid || t.tg.capable_in(&other.tg.user_ns(), consts::CAP_SYS_NICE) {
        Ok(())
    } else {
        error!(EPERM)
    }
}

/// Whether `th` may run at nice value `nice` (Linux's can_nice): 20 - nice
/// within its RLIMIT_NICE, or the caller has CAP_SYS_NICE.
fn can_nice(t: &Task, th: &Thread, nice: i32) -> bool {
    u64::try_from(20 - nice).unwrap_or(0) <= th.tg.rlimit(RLIMIT_NICE).cur || t.tg.capable(consts::CAP_SYS_NICE)
}

/// Whether the caller may give `th` (now at `cur`) policy `policy` with
/// `priority` and `nice` (Linux's __sched_setscheduler for a user): without
/// CAP_SYS_NICE, no lower nice value than RLIMIT_NICE allows, a real-time
/// policy only up to RLIMIT_RTPRIO, no SCHED_DEADLINE, no leaving SCHED_IDLE
/// past RLIMIT_NICE, and only for a thread of its own user.
fn may_schedule(t: &Task, th: &Thread, cur: &SchedAttrs, policy: i32, priority: i32, nice: i32) -> SysResult<()> {
    if t.tg.capable(consts::CAP_SYS_NICE) {
        return Ok(());
    }
    let refused = match policy {
        SCHED_FIFO | SCHED_RR => {
            let rtprio = th.tg.rlimit(RLIMIT_RTPRIO).cur;
            let priority = u64::try_from(priority).unwrap_or(0);
            (policy != cur.policy && rtprio == 0) || (priority > u64::try_from(cur.priority).unwrap_or(0) && priority > rtprio)
        }
        SCHED_DEADLINE => true,
        _ => nice < cur.nice && !can_nice(t, th, nice),
    };
    if refused || (cur.policy == SCHED_IDLE && policy != SCHED_IDLE && !can_nice(t, th, cur.nice)) {
        return error!(EPERM);
    }
    may_change(t, th)
}

/// The CPUs the sandbox shows, as a mask.
fn all_cpus(t: &Task) -> u64 {
    if t.kernel.cpus >= 64 { u64::MAX } else { (1u64 << t.kernel.cpus) - 1 }
}

/// The thread the affinity calls name: unlike the policy calls, which refuse a
/// negative pid (EINVAL), they look it up and find none (ESRCH), as Linux does.
fn affinity_target(t: &Task, pid: i32) -> SysResult<Arc<Thread>> {
    if pid < 0 {
        return error!(ESRCH);
    }
    target(t, pid)
}

pub fn sys_sched_getaffinity(t: &mut Task, pid: i32, len: usize, mask: UserAddr) -> SysResult<usize> {
    let th = affinity_target(t, pid)?;
    // The kernel answers in whole longs covering nr_cpu_ids.
    let size = t.kernel.cpus.div_ceil(64).max(1) * 8;
    if len < size || len % 8 != 0 {
        return error!(EINVAL);
    }
    let set = th.sched().affinity & all_cpus(t);
    let mut bytes = vec![0u8; size];
    bytes[..8].copy_from_slice(&set.to_le_bytes());
    t.mm.write_bytes(mask, &bytes)?;
    Ok(size)
}

pub fn sys_sched_setaffinity(t: &mut Task, pid: i32, len: usize, mask: UserAddr) -> SysResult<()> {
    let th = affinity_target(t, pid)?;
    may_change(t, &th)?;
    let mut bytes = vec![0u8; len.min(8)];
    t.mm.read_bytes(mask, &mut bytes)?;
    bytes.resize(8, 0);
    let set = u64::from_le_bytes(bytes.try_into().unwrap_or_default()) & all_cpus(t);
    if set == 0 {
        return error!(EINVAL);
    }
    th.set_sched(|s| s.affinity = set);
    Ok(())
}

/// The threads a getpriority/setpriority `which`/`who` pair names.
fn priority_targets(t: &Task, which: i32, who: i32) -> SysResult<Vec<Arc<Thread>>> {
    let all = || t.pid_ns().groups().into_iter().flat_map(|g| g.threads());
    let found: Vec<Arc<Thread>> = match which {
        PRIO_PROCESS => vec![target(t, who).map_err(|_| rvisor_abi::errno!(ESRCH))?],
        PRIO_PGRP => {
            let pgid = if who == 0 { t.tg.state().pgid } else { who };
            all().filter(|th| th.tg.state().pgid == pgid).collect()
        }
        PRIO_USER => {
            let uid = if who == 0 { t.tg.creds().uid } else { who as u32 };
            all().filter(|th| th.tg.creds().uid == uid).collect()
        }
        _ => return error!(EINVAL),
    };
    if found.is_empty() {
        return error!(ESRCH);
    }
    Ok(found)
}

/// getpriority: the highest priority (lowest nice) among the targets, as the
/// raw syscall returns it: 20 - nice, so always positive.
pub fn sys_getpriority(t: &mut Task, which: i32, who: i32) -> SysResult<i64> {
    let nice = priority_targets(t, which, who)?.iter().map(|th| th.sched().nice).min().unwrap_or(0);
    Ok(i64::from(20 - nice))
}

/// setpriority: nice values are clamped to [-20, 19]; a lower one than the
/// thread has takes CAP_SYS_NICE or room under RLIMIT_NICE (EACCES).
pub fn sys_setpriority(t: &mut Task, which: i32, who: i32, prio: i32) -> SysResult<()> {
    let nice = prio.clamp(-20, 19);
    let targets = priority_targets(t, which, who)?;
    for th in &targets {
        may_change(t, th)?;
        if nice < th.sched().nice && !can_nice(t, th, nice) {
            return error!(EACCES);
        }
    }
    for th in &targets {
        th.set_sched(|s| s.nice = nice);
    }
    Ok(())
}

const IOPRIO_WHO_PROCESS: i32 = 1;
const IOPRIO_WHO_USER: i32 = 3;
const IOPRIO_CLASS_SHIFT: u32 = 13;
const IOPRIO_CLASS_NONE: u16 = 0;
const IOPRIO_CLASS_RT: u16 = 1;
const IOPRIO_CLASS_BE: u16 = 2;
const IOPRIO_CLASS_IDLE: u16 = 3;

/// The threads an ioprio `which`/`who` pair names: the same sets as
/// getpriority's PRIO_PROCESS, PRIO_PGRP and PRIO_USER.
fn ioprio_targets(t: &Task, which: i32, who: i32) -> SysResult<Vec<Arc<Thread>>> {
    if !(IOPRIO_WHO_PROCESS..=IOPRIO_WHO_USER).contains(&which) {
        return error!(EINVAL);
    }
    priority_targets(t, which - IOPRIO_WHO_PROCESS + PRIO_PROCESS, who)
}

/// The I/O priority a thread's I/O gets: the one it set, or else one derived
/// from its CPU scheduling (Linux's `__get_task_ioprio`).
fn effective_ioprio(th: &Thread) -> u16 {
    let s = th.sched();
    if s.ioprio >> IOPRIO_CLASS_SHIFT != IOPRIO_CLASS_NONE {
        return s.ioprio;
    }
    let class = match s.policy & !SCHED_RESET_ON_FORK {
        SCHED_IDLE => IOPRIO_CLASS_IDLE,
        SCHED_FIFO | SCHED_RR => IOPRIO_CLASS_RT,
        _ => IOPRIO_CLASS_BE,
    };
    (class << IOPRIO_CLASS_SHIFT) | ((s.nice + 20) / 5) as u16
}

/// ioprio_get: a thread's I/O priority as set (IOPRIO_CLASS_NONE if never), or
/// the highest effective one (the lowest value) of a process group's or a
/// user's threads, as Linux does since 6.0.
pub fn sys_ioprio_get(t: &mut Task, which: i32, who: i32) -> SysResult<i64> {
    let targets = ioprio_targets(t, which, who)?;
    let prio = if which == IOPRIO_WHO_PROCESS {
        targets.first().map(|th| th.sched().ioprio).unwrap_or(0)
    } else {
        targets.iter().map(|th| effective_ioprio(th)).min().unwrap_or(0)
    };
    Ok(i64::from(prio))
}

/// ioprio_set: the real-time class takes privilege, IOPRIO_CLASS_NONE takes
/// level 0, and each target must belong to the caller's real or effective user
/// (or the caller is root). Kept and reported; the host schedules the I/O.
pub fn sys_ioprio_set(t: &mut Task, which: i32, who: i32, ioprio: i32) -> SysResult<()> {
    check_ioprio(t, ioprio)?;
    let me = t.tg.creds();
    // Linux keeps an unsigned short.
    let value = ioprio as u16;
    for th in ioprio_targets(t, which, who)? {
        let owner = th.tg.creds().uid;
        if owner != me.euid && owner != me.uid && !t.tg.capable(consts::CAP_SYS_NICE) {
            return error!(EPERM);
        }
        th.set_sched(|s| s.ioprio = value);
    }
    Ok(())
}

/// Whether the caller may use I/O priority `ioprio` (Linux's ioprio_check_cap;
/// also an AIO request's, with IOCB_FLAG_IOPRIO).
pub(super) fn check_ioprio(t: &Task, ioprio: i32) -> SysResult<()> {
    let class = ((ioprio >> IOPRIO_CLASS_SHIFT) & 7) as u16;
    let level = ioprio & 7;
    match class {
        IOPRIO_CLASS_RT if !t.tg.capable(consts::CAP_SYS_NICE) && !t.tg.capable(consts::CAP_SYS_ADMIN) => error!(EPERM),
        IOPRIO_CLASS_RT | IOPRIO_CLASS_BE | IOPRIO_CLASS_IDLE => Ok(()),
        IOPRIO_CLASS_NONE if level == 0 => Ok(()),
        _ => error!(EINVAL),
    }
}

/// The priority range of a policy: 1..99 for the real-time ones, 0 otherwise.
fn priority_range(policy: i32) -> SysResult<(i32, i32)> {
    match policy {
        SCHED_FIFO | SCHED_RR => Ok((1, 99)),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => Ok((0, 0)),
        _ => error!(EINVAL),
    }
}

pub fn sys_sched_get_priority_max(_t: &mut Task, policy: i32) -> SysResult<i32> {
    priority_range(policy).map(|(_, max)| max)
}

pub fn sys_sched_get_priority_min(_t: &mut Task, policy: i32) -> SysResult<i32> {
    priority_range(policy).map(|(min, _)| min)
}

pub fn sys_sched_getscheduler(t: &mut Task, pid: i32) -> SysResult<i32> {
    Ok(target(t, pid)?.sched().policy)
}

pub fn sys_sched_getparam(t: &mut Task, pid: i32, param: UserRef<i32>) -> SysResult<()> {
    let th = target(t, pid)?;
    if param.is_null() {
        return error!(EINVAL);
    }
    t.mm.write_obj(param, &th.sched().priority)
}

/// Sets a thread's policy and priority, as `may_schedule` allows.
fn set_scheduler(t: &Task, pid: i32, policy: Option<i32>, param: UserRef<i32>) -> SysResult<()> {
    if param.is_null() {
        return error!(EINVAL);
    }
    let th = target(t, pid)?;
    let priority: i32 = t.mm.read_obj(param)?;
    let policy = policy.map(|p| p & !SCHED_RESET_ON_FORK).unwrap_or(th.sched().policy);
    let (min, max) = priority_range(policy)?;
    if !(min..=max).contains(&priority) {
        return error!(EINVAL);
    }
    let cur = th.sched();
    may_schedule(t, &th, &cur, policy, priority, cur.nice)?;
    th.set_sched(|s| (s.policy, s.priority) = (policy, priority));
    Ok(())
}

pub fn sys_sched_setscheduler(t: &mut Task, pid: i32, policy: i32, param: UserRef<i32>) -> SysResult<()> {
    if policy < 0 {
        return error!(EINVAL);
    }
    set_scheduler(t, pid, Some(policy), param)
}

pub fn sys_sched_setparam(t: &mut Task, pid: i32, param: UserRef<i32>) -> SysResult<()> {
    set_scheduler(t, pid, None, param)
}

const SCHED_DEADLINE: i32 = 6;
const SCHED_FLAG_KEEP_POLICY: u64 = 0x08;
const SCHED_FLAG_KEEP_PARAMS: u64 = 0x10;
const SCHED_FLAG_UTIL_CLAMP: u64 = 0x60;
const SCHED_FLAG_UTIL_CLAMP_MIN: u64 = 0x20;
const SCHED_FLAG_UTIL_CLAMP_MAX: u64 = 0x40;
/// Every flag Linux knows (SCHED_FLAG_ALL).
const SCHED_FLAG_ALL: u64 = 0x7f;
/// `struct sched_attr`'s first version (without the clamps), and the whole of it.
const SCHED_ATTR_SIZE_VER0: usize = 48;
const SCHED_ATTR_SIZE_VER1: usize = 56;
const SCHED_CAPACITY_SCALE: u32 = 1024;
const PAGE_SIZE: usize = 4096;

/// `struct sched_attr`.
#[derive(Clone, Copy, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// sched_getattr: the thread's policy with its nice value (fair policies) or its
/// priority (real-time ones), and its clamps, in as much of the struct as the
/// caller's size holds (the size field says how much that is).
pub fn sys_sched_getattr(t: &mut Task, pid: i32, uattr: UserAddr, usize_: u32, flags: u32) -> SysResult<()> {
    let size = usize_ as usize;
    if uattr.is_null() || pid < 0 || flags != 0 || !(SCHED_ATTR_SIZE_VER0..=PAGE_SIZE).contains(&size) {
        return error!(EINVAL);
    }
    let s = target(t, pid)?.sched();
    let n = size.min(SCHED_ATTR_SIZE_VER1);
    let mut a = SchedAttr { size: n as u32, policy: s.policy as u32, util_min: s.util_min, util_max: s.util_max, ..SchedAttr::default() };
    if matches!(s.policy, SCHED_FIFO | SCHED_RR) {
        a.priority = s.priority as u32;
    } else {
        a.nice = s.nice;
    }
    t.mm.write_bytes(uattr, &zerocopy::IntoBytes::as_bytes(&a)[..n])
}

/// sched_setattr: sched_setscheduler and setpriority in one, with Linux's size
/// handshake and checks. SCHED_DEADLINE is never admitted (EBUSY: the sandbox
/// has no deadline bandwidth to give), and the clamps are only kept.
pub fn sys_sched_setattr(t: &mut Task, pid: i32, uattr: UserAddr, flags: u32) -> SysResult<()> {
    if uattr.is_null() || pid < 0 || flags != 0 {
        return error!(EINVAL);
    }
    let size_at = rvisor_abi::UserAddr(uattr.0);
    let mut size: u32 = t.mm.read_obj(crate::mm::UserRef::new(size_at))?;
    if size == 0 {
        size = SCHED_ATTR_SIZE_VER0 as u32;
    }
    let size = size as usize;
    if !(SCHED_ATTR_SIZE_VER0..=PAGE_SIZE).contains(&size) {
        t.mm.write_obj(crate::mm::UserRef::<u32>::new(size_at), &(SCHED_ATTR_SIZE_VER1 as u32))?;
        return error!(E2BIG);
    }
    let mut raw = vec![0u8; size];
    t.mm.read_bytes(uattr, &mut raw)?;
    // A newer caller's struct may be larger only if we would ignore nothing.
    if raw.iter().skip(SCHED_ATTR_SIZE_VER1).any(|&b| b != 0) {
        t.mm.write_obj(crate::mm::UserRef::<u32>::new(size_at), &(SCHED_ATTR_SIZE_VER1 as u32))?;
        return error!(E2BIG);
    }
    raw.resize(SCHED_ATTR_SIZE_VER1.max(size), 0);
    let a = <SchedAttr as zerocopy::FromBytes>::read_from_prefix(&raw).map(|(a, _)| a).map_err(|_| rvisor_abi::errno!(EINVAL))?;
    if a.flags & SCHED_FLAG_UTIL_CLAMP != 0 && size < SCHED_ATTR_SIZE_VER1 {
        return error!(EINVAL);
    }
    if (a.policy as i32) < 0 || a.flags & !SCHED_FLAG_ALL != 0 {
        return error!(EINVAL);
    }
    let th = target(t, pid)?;
    let cur = th.sched();
    let policy = if a.flags & SCHED_FLAG_KEEP_POLICY != 0 { cur.policy } else { a.policy as i32 };
    if policy == SCHED_DEADLINE {
        if !deadline_params_valid(&a) {
            return error!(EINVAL);
        }
        may_schedule(t, &th, &cur, policy, 0, cur.nice)?;
        return error!(EBUSY);
    }
    let (min, max) = priority_range(policy)?;
    let priority = a.priority as i32;
    if a.priority > 99 || !(min..=max).contains(&priority) {
        return error!(EINVAL);
    }
    let clamp_min = if a.flags & SCHED_FLAG_UTIL_CLAMP_MIN != 0 { a.util_min } else { cur.util_min };
    let clamp_max = if a.flags & SCHED_FLAG_UTIL_CLAMP_MAX != 0 { a.util_max } else { cur.util_max };
    if clamp_min > SCHED_CAPACITY_SCALE || clamp_max > SCHED_CAPACITY_SCALE || clamp_min > clamp_max {
        return error!(EINVAL);
    }
    let nice = a.nice.clamp(-20, 19);
    let fair = !matches!(policy, SCHED_FIFO | SCHED_RR);
    may_schedule(t, &th, &cur, policy, priority, if fair { nice } else { cur.nice })?;
    let keep_params = a.flags & SCHED_FLAG_KEEP_PARAMS != 0;
    th.set_sched(|s| {
        s.util_min = clamp_min;
        s.util_max = clamp_max;
        if !keep_params {
            s.policy = policy;
            s.priority = priority;
            if fair {
                s.nice = nice;
            }
        }
    });
    Ok(())
}

/// SCHED_DEADLINE's parameters as Linux's __checkparam_dl takes them: runtime
/// at least 1024 ns, runtime <= deadline <= period (the deadline when 0), the
/// period between the default sysctl bounds (100 µs, 2^22 µs).
fn deadline_params_valid(a: &SchedAttr) -> bool {
    let period = if a.period == 0 { a.deadline } else { a.period };
    a.deadline != 0
        && a.runtime >= 1 << 10
        && (a.deadline | a.period) >> 63 == 0
        && a.runtime <= a.deadline
        && a.deadline <= period
        && (100_000..=(1u64 << 22) * 1000).contains(&period)
}

pub fn sys_sched_rr_get_interval(t: &mut Task, pid: i32, interval: UserRef<Timespec>) -> SysResult<()> {
    let th = target(t, pid)?;
    let ns = if th.sched().policy == SCHED_FIFO { 0 } else { RR_TIMESLICE_NS };
    t.mm.write_obj(interval, &crate::time::to_timespec(ns))
}

/// getcpu: like the vDSO's, CPU 0 on node 0.
pub fn sys_getcpu(t: &mut Task, cpu: UserRef<u32>, node: UserRef<u32>, _cache: UserAddr) -> SysResult<()> {
    if !cpu.is_null() {
        t.mm.write_obj(cpu, &0)?;
    }
    if !node.is_null() {
        t.mm.write_obj(node, &0)?;
    }
    Ok(())
}
