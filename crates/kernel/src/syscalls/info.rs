//! System information and resource limits: uname and the UTS names, sysinfo, getrandom,
//! rlimits, syslog (the kernel log, which the sandbox's kernel keeps empty).

use crate::mm::UserRef;
use crate::task::{Task, ThreadGroup, RLIMIT_COUNT};
use std::sync::Arc;
use rvisor_abi::structs::{set_cstr, Rlimit, Sysinfo, Utsname};
use rvisor_memory::UsageKind;
use rvisor_abi::{consts, errno, error, SysResult, UserAddr};

/// The kernel version the sandbox reports.
pub const RELEASE: &str = "6.8.0-rvisor";
pub const VERSION: &str = "#1 SMP PREEMPT_DYNAMIC rvisor";

const GRND_NONBLOCK: u32 = 1;
const GRND_RANDOM: u32 = 2;
const GRND_INSECURE: u32 = 4;
/// Largest single getrandom answer (Linux caps reads at 32 MiB - 1).
const GETRANDOM_MAX: usize = (32 << 20) - 1;

pub fn sys_uname(t: &mut Task, buf: UserRef<Utsname>) -> SysResult<()> {
    let mut u = Utsname::zeroed();
    set_cstr(&mut u.sysname, "Linux");
    set_cstr(&mut u.release, RELEASE);
    set_cstr(&mut u.version, VERSION);
    set_cstr(&mut u.machine, "x86_64");
    {
        let uts = t.ns.uts.names();
        u.nodename[..uts.hostname.len()].copy_from_slice(&uts.hostname);
        u.domainname[..uts.domainname.len()].copy_from_slice(&uts.domainname);
    }
    t.mm.write_obj(buf, &u)
}

/// `__NEW_UTS_LEN`: a UTS name's longest length; uname's fields hold one more byte.
const UTS_NAME_MAX: usize = 64;

/// The bytes of a new UTS name, after Linux's checks.
fn new_uts_name(t: &Task, name: UserAddr, len: usize) -> SysResult<Vec<u8>> {
    if !t.tg.capable_in(&t.ns.uts.owner, consts::CAP_SYS_ADMIN) {
        return error!(EPERM);
    }
    if len > UTS_NAME_MAX {
        return error!(EINVAL);
    }
    let mut bytes = vec![0u8; len];
    t.mm.read_bytes(name, &mut bytes)?;
    Ok(bytes)
}

pub fn sys_sethostname(t: &mut Task, name: UserAddr, len: usize) -> SysResult<()> {
    let name = new_uts_name(t, name, len)?;
    t.ns.uts.names().hostname = name;
    Ok(())
}

pub fn sys_setdomainname(t: &mut Task, name: UserAddr, len: usize) -> SysResult<()> {
    let name = new_uts_name(t, name, len)?;
    t.ns.uts.names().domainname = name;
    Ok(())
}

/// sysinfo: uptime, the load averages (scaled by 1 << SI_LOAD_SHIFT), memory
/// from the memory file's usage against the host's RAM (as /proc/meminfo), and
/// the number of threads.
/// sysinfo's fixed point for loads (Linux's SI_LOAD_SHIFT).
const SI_LOAD_SHIFT: u32 = 16;

pub fn sys_sysinfo(t: &mut Task, info: UserRef<Sysinfo>) -> SysResult<()> {
    let k = &t.kernel;
    let total = k.memory_total();
    let mf = &k.memory;
    let kinds = [UsageKind::Anonymous, UsageKind::Tmpfs, UsageKind::PageCache, UsageKind::System];
    let used: u64 = kinds.iter().map(|&u| mf.usage(u)).sum();
    let mut s = Sysinfo::zeroed();
    s.uptime = k.clocks.uptime_ns().saturating_add(t.ns.time.offsets().boottime_ns).max(0) / 1_000_000_000;
    s.loads = k.loadavg.get_avenrun(0, SI_LOAD_SHIFT - crate::task::loadavg::FSHIFT);
    s.totalram = total;
    s.freeram = total.saturating_sub(used);
    s.sharedram = mf.usage(UsageKind::Tmpfs);
    s.procs = k.thread_count().min(u16::MAX as usize) as u16;
    s.mem_unit = 1;
    t.mm.write_obj(info, &s)
}

pub fn sys_getrandom(t: &mut Task, buf: UserAddr, len: usize, flags: u32) -> SysResult<usize> {
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0 || flags & (GRND_RANDOM | GRND_INSECURE) == (GRND_RANDOM | GRND_INSECURE) {
        return error!(EINVAL);
    }
    let len = len.min(GETRANDOM_MAX);
    let mut done = 0;
    let mut chunk = [0u8; 4096];
    while done < len {
        let n = (len - done).min(chunk.len());
        getrandom::fill(&mut chunk[..n]).map_err(|_| errno!(EIO))?;
        let at = buf.add(done as u64)?;
        if let Err(e) = t.mm.write_bytes(at, &chunk[..n]) {
            return if done == 0 { Err(e) } else { Ok(done) };
        }
        done += n;
    }
    Ok(done)
}

const SYSLOG_ACTION_CLOSE: i32 = 0;
const SYSLOG_ACTION_OPEN: i32 = 1;
const SYSLOG_ACTION_READ: i32 = 2;
const SYSLOG_ACTION_READ_ALL: i32 = 3;
const SYSLOG_ACTION_READ_CLEAR: i32 = 4;
const SYSLOG_ACTION_CLEAR: i32 = 5;
const SYSLOG_ACTION_CONSOLE_OFF: i32 = 6;
const SYSLOG_ACTION_CONSOLE_ON: i32 = 7;
const SYSLOG_ACTION_CONSOLE_LEVEL: i32 = 8;
const SYSLOG_ACTION_SIZE_UNREAD: i32 = 9;
const SYSLOG_ACTION_SIZE_BUFFER: i32 = 10;
/// The log buffer's size (CONFIG_LOG_BUF_SHIFT=17, as distribution kernels have).
const LOG_BUF_LEN: usize = 1 << 17;

/// syslog: the kernel log, which holds nothing here (the Sentry logs to its own
/// log, not the app's). Reading all of it or its size is open to everyone, as
/// with dmesg_restrict off; the rest takes CAP_SYSLOG (or consts::CAP_SYS_ADMIN). A blocking read
/// waits for messages that never come, until a signal.
pub fn sys_syslog(t: &mut Task, action: i32, buf: UserAddr, len: i32) -> SysResult<usize> {
    let open_to_all = matches!(action, SYSLOG_ACTION_READ_ALL | SYSLOG_ACTION_SIZE_BUFFER);
    let privileged = t.tg.capable(consts::CAP_SYSLOG) || t.tg.capable(consts::CAP_SYS_ADMIN);
    if !open_to_all && (SYSLOG_ACTION_CLOSE..=SYSLOG_ACTION_SIZE_BUFFER).contains(&action) && !privileged {
        return error!(EPERM);
    }
    match action {
        SYSLOG_ACTION_CLOSE | SYSLOG_ACTION_OPEN | SYSLOG_ACTION_CLEAR | SYSLOG_ACTION_CONSOLE_OFF | SYSLOG_ACTION_CONSOLE_ON => Ok(0),
        SYSLOG_ACTION_READ | SYSLOG_ACTION_READ_ALL | SYSLOG_ACTION_READ_CLEAR => {
            if buf.is_null() || len < 0 {
                return error!(EINVAL);
            }
            if action == SYSLOG_ACTION_READ && len > 0 {
                t.block_until(None, || false)?;
            }
            Ok(0)
        }
        SYSLOG_ACTION_CONSOLE_LEVEL if (1..=8).contains(&len) => Ok(0),
        SYSLOG_ACTION_SIZE_UNREAD => Ok(0),
        SYSLOG_ACTION_SIZE_BUFFER => Ok(LOG_BUF_LEN),
        _ => error!(EINVAL),
    }
}

fn check_resource(resource: u32) -> SysResult<usize> {
    let r = resource as usize;
    if r < RLIMIT_COUNT { Ok(r) } else { error!(EINVAL) }
}

/// Reads and optionally replaces a resource limit of `tg` (the caller's process,
/// or prlimit's target); raising a hard limit takes CAP_SYS_RESOURCE.
fn exchange_rlimit(t: &Task, tg: &Arc<ThreadGroup>, resource: u32, new: Option<Rlimit>) -> SysResult<Rlimit> {
    let r = check_resource(resource)?;
    let privileged = t.tg.capable(consts::CAP_SYS_RESOURCE);
    let mut limits = tg.rlimits.lock().unwrap_or_else(|e| e.into_inner());
    let old = limits[r];
    if let Some(n) = new {
        if n.cur > n.max {
            return error!(EINVAL);
        }
        if n.max > old.max && !privileged {
            return error!(EPERM);
        }
        limits[r] = n;
        drop(limits);
        if [crate::task::RLIMIT_STACK, crate::task::RLIMIT_AS, crate::task::RLIMIT_MEMLOCK].contains(&r) {
            tg.publish_growth_limits();
        }
        if r == crate::task::RLIMIT_CPU_INDEX && (n.cur != u64::MAX || n.max != u64::MAX) {
            t.kernel.cpu_watch.watch(&t.kernel.timers, tg);
        }
    }
    Ok(old)
}

pub fn sys_getrlimit(t: &mut Task, resource: u32, rlim: UserRef<Rlimit>) -> SysResult<()> {
    let old = exchange_rlimit(t, &t.tg, resource, None)?;
    t.mm.write_obj(rlim, &old)
}

pub fn sys_setrlimit(t: &mut Task, resource: u32, rlim: UserRef<Rlimit>) -> SysResult<()> {
    check_resource(resource)?;
    let new = t.mm.read_obj(rlim)?;
    exchange_rlimit(t, &t.tg, resource, Some(new)).map(|_| ())
}

/// prlimit64 on the process of thread `pid` (0: the caller's). Another process's
/// limits take the same real, effective and saved ids as the caller's real ones
/// (Linux's check_prlimit_permission), or CAP_SYS_RESOURCE over it.
pub fn sys_prlimit64(t: &mut Task, pid: i32, resource: u32, new: UserRef<Rlimit>, old: UserRef<Rlimit>) -> SysResult<()> {
    let tg = match pid {
        0 => t.tg.clone(),
        p => t.pid_ns().thread(p).map(|th| th.tg.clone()).ok_or_else(|| errno!(ESRCH))?,
    };
    if !Arc::ptr_eq(&tg, &t.tg) {
        let (me, them) = (t.tg.creds(), tg.creds());
        let same_ids = [them.uid, them.euid, them.suid].iter().all(|&u| u == me.uid) && [them.gid, them.egid, them.sgid].iter().all(|&g| g == me.gid);
        if !same_ids && !t.tg.capable_in(&tg.user_ns(), consts::CAP_SYS_RESOURCE) {
            return error!(EPERM);
        }
    }
    check_resource(resource)?;
    let new = if new.is_null() { None } else { Some(t.mm.read_obj(new)?) };
    let prev = exchange_rlimit(t, &tg, resource, new)?;
    if !old.is_null() {
        t.mm.write_obj(old, &prev)?;
    }
    Ok(())
}
