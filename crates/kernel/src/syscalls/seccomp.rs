//! seccomp(2) and its prctl forms, and the check of each syscall against the
//! calling thread's filters (`task/seccomp.rs` holds the filters themselves,
//! `fs/seccomp_notify.rs` their listeners).

use crate::fs::seccomp_notify::{Listener, Notifier, Reply};
use crate::mm::UserRef;
use crate::task::seccomp::{self, Filter, Insn, Mode};
use crate::task::signals::SigInfo;
use crate::task::{ExitStatus, Task};
use rvisor_abi::structs::{SeccompData, SeccompNotif, SeccompNotifResp};
use rvisor_abi::{consts, errno, error, Errno, ErrnoCode, SysResult, UserAddr};
use std::sync::Arc;

const SECCOMP_SET_MODE_STRICT: u32 = 0;
const SECCOMP_SET_MODE_FILTER: u32 = 1;
const SECCOMP_GET_ACTION_AVAIL: u32 = 2;
const SECCOMP_GET_NOTIF_SIZES: u32 = 3;

const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
const FLAG_NEW_LISTENER: u32 = 8;
const FLAG_TSYNC_ESRCH: u32 = 16;
const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// si_code of a seccomp SIGSYS.
const SYS_SECCOMP: i32 = 1;
/// Linux's MAX_ERRNO: SECCOMP_RET_ERRNO's data is capped there.
const MAX_ERRNO: u32 = 4095;

/// `struct sock_fprog`.
#[derive(Clone, Copy, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
#[repr(C)]
struct SockFprog {
    len: u16,
    pad: [u8; 6],
    filter: u64,
}

pub fn sys_seccomp(t: &mut Task, op: u32, flags: u32, args: UserAddr) -> SysResult<i64> {
    match op {
        SECCOMP_SET_MODE_STRICT => {
            if flags != 0 || !args.is_null() {
                return error!(EINVAL);
            }
            set_strict(t)
        }
        SECCOMP_SET_MODE_FILTER => set_filter(t, flags, args),
        SECCOMP_GET_ACTION_AVAIL => {
            if flags != 0 {
                return error!(EINVAL);
            }
            let action = t.mm.read_obj(UserRef::<u32>::new(args))?;
            if seccomp::action_known(action) {
                Ok(0)
            } else {
                error!(EOPNOTSUPP)
            }
        }
        SECCOMP_GET_NOTIF_SIZES => {
            if flags != 0 {
                return error!(EINVAL);
            }
            let sizes = [size_of::<SeccompNotif>() as u16, size_of::<SeccompNotifResp>() as u16, size_of::<SeccompData>() as u16];
            t.mm.write_obj(UserRef::<[u16; 3]>::new(args), &sizes)?;
            Ok(0)
        }
        _ => error!(EINVAL),
    }
}

/// prctl(PR_GET_SECCOMP).
pub fn get_mode(t: &Task) -> i32 {
    t.thread.seccomp().number()
}

/// prctl(PR_SET_SECCOMP, mode, filter): the older interface.
pub fn prctl_set(t: &mut Task, mode: u64, filter: u64) -> SysResult<i64> {
    match mode {
        1 => set_strict(t),
        2 => set_filter(t, 0, UserAddr(filter)),
        _ => error!(EINVAL),
    }
}

fn set_strict(t: &mut Task) -> SysResult<i64> {
    match t.thread.seccomp() {
        Mode::Disabled => {
            t.thread.set_seccomp(Mode::Strict);
            Ok(0)
        }
        _ => error!(EINVAL),
    }
}

fn set_filter(t: &mut Task, flags: u32, args: UserAddr) -> SysResult<i64> {
    let known = FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH | FLAG_WAIT_KILLABLE_RECV;
    if flags & !known != 0
        || (flags & FLAG_TSYNC != 0 && flags & FLAG_NEW_LISTENER != 0 && flags & FLAG_TSYNC_ESRCH == 0)
        || (flags & FLAG_WAIT_KILLABLE_RECV != 0 && flags & FLAG_NEW_LISTENER == 0)
    {
        return error!(EINVAL);
    }
    if t.tg.no_new_privs.load(std::sync::atomic::Ordering::Relaxed) == 0 && !t.tg.capable(consts::CAP_SYS_ADMIN) {
        return error!(EACCES);
    }
    let fprog = t.mm.read_obj(UserRef::<SockFprog>::new(args))?;
    let len = fprog.len as usize;
    if len == 0 || len > seccomp::MAX_INSNS {
        return error!(EINVAL);
    }
    let mut prog = vec![Insn { code: 0, jt: 0, jf: 0, k: 0 }; len];
    t.mm.read_bytes(UserAddr(fprog.filter), zerocopy::IntoBytes::as_mut_bytes(prog.as_mut_slice()))?;
    let current = match t.thread.seccomp() {
        Mode::Disabled => None,
        Mode::Filter(f) => Some(f),
        Mode::Strict | Mode::Dead(_) => return error!(EINVAL),
    };
    let notifier = (flags & FLAG_NEW_LISTENER != 0).then(|| Notifier::new(flags & FLAG_WAIT_KILLABLE_RECV != 0));
    let filter = match &notifier {
        Some(n) => Filter::with_notifier(prog, current.clone(), n.clone())?,
        None => Filter::new(prog, current.clone())?,
    };
    // A chain has one listener at most.
    if notifier.is_some() && current.as_ref().is_some_and(|c| c.has_listener()) {
        return error!(EBUSY);
    }
    if flags & FLAG_TSYNC != 0 {
        // Every other thread must be unfiltered or filtered by an ancestor of ours.
        let threads = t.tg.threads();
        for other in &threads {
            let fits = match other.seccomp() {
                Mode::Disabled => true,
                Mode::Filter(f) => current.as_ref().is_some_and(|c| c.extends(&f)),
                Mode::Strict | Mode::Dead(_) => false,
            };
            if !fits {
                return if flags & FLAG_TSYNC_ESRCH != 0 { error!(ESRCH) } else { Ok(other.tid() as i64) };
            }
        }
    }
    let listener = match notifier {
        Some(n) => Some(super::pipe::install(t, Arc::new(Listener::new(n)), true)?),
        None => None,
    };
    if flags & FLAG_TSYNC != 0 {
        for other in &t.tg.threads() {
            other.set_seccomp(Mode::Filter(filter.clone()));
        }
    }
    t.thread.set_seccomp(Mode::Filter(filter));
    Ok(listener.map_or(0, |fd| fd.0 as i64))
}

/// What the thread's seccomp mode says of the syscall it is making: None to run it,
/// or the value it returns without running (the thread may be dying, or have a
/// SIGSYS coming).
pub(super) fn check_entry(t: &mut Task, nr: u64, args: [u64; 6]) -> Option<u64> {
    let mode = t.thread.seccomp();
    // Like Linux, the uprobe trampolines' calls pass any filter.
    if nr == rvisor_abi::nr::__NR_uretprobe as u64 || nr == rvisor_abi::nr::__NR_uprobe as u64 {
        return None;
    }
    let (ret, matched) = match &mode {
        Mode::Disabled => return None,
        Mode::Strict => {
            let allowed = [rvisor_abi::nr::__NR_read, rvisor_abi::nr::__NR_write, rvisor_abi::nr::__NR_exit, rvisor_abi::nr::__NR_rt_sigreturn];
            if allowed.iter().any(|&a| a as u64 == nr) {
                return None;
            }
            t.thread.set_seccomp(Mode::Dead(None));
            t.exit = Some(ExitStatus::killed_by(consts::SIGKILL));
            return Some(0);
        }
        Mode::Filter(f) => f.evaluate_match(nr, t.cpu.ip(), args),
        // A thread its filter killed makes no more calls; Linux kills one that does.
        Mode::Dead(_) => {
            t.exit = Some(ExitStatus::killed_by(consts::SIGKILL));
            return Some(0);
        }
    };
    // The killing actions leave the thread in SECCOMP_MODE_DEAD, which /proc shows.
    let dead = |t: &Task| {
        if let Mode::Filter(f) = &mode {
            t.thread.set_seccomp(Mode::Dead(Some(f.clone())));
        }
    };
    let data = ret & seccomp::RET_DATA;
    let sigsys = || {
        let mut info = SigInfo::new(consts::SIGSYS, SYS_SECCOMP).with_syscall(t.cpu.ip(), nr as i32, seccomp::AUDIT_ARCH_X86_64);
        info.errno = data as i32;
        info
    };
    match ret & 0xffff_0000 {
        seccomp::RET_ALLOW => None,
        seccomp::RET_LOG => {
            tracing::info!("task {}: seccomp logs syscall {nr}", t.tid());
            None
        }
        seccomp::RET_ERRNO => Some(match data.min(MAX_ERRNO) {
            0 => 0,
            e => Errno::new(ErrnoCode(e as u16)).to_return(),
        }),
        seccomp::RET_TRAP => {
            let info = sigsys();
            t.force_signal(info);
            // The registers as they were: rax holds the syscall number again.
            Some(nr)
        }
        seccomp::RET_USER_NOTIF => {
            let Some(n) = matched.notifier() else {
                return Some(errno!(ENOSYS).to_return());
            };
            let data = SeccompData { nr: nr as i32, arch: seccomp::AUDIT_ARCH_X86_64, instruction_pointer: t.cpu.ip(), args };
            match n.ask(t, data) {
                // A restart code the supervisor answers restarts the call, as
                // in Linux, rather than reach the program.
                Ok(Reply::Value(v)) => Some(match (v as i64).checked_neg().and_then(|c| u16::try_from(c).ok()).map(ErrnoCode).filter(|c| c.is_restart()) {
                    Some(code) => super::error_return(t, Errno::new(code)),
                    None => v,
                }),
                Ok(Reply::Continue) => None,
                Err(e) => Some(super::error_return(t, e)),
            }
        }
        // No tracer: the call fails.
        seccomp::RET_TRACE => Some(errno!(ENOSYS).to_return()),
        seccomp::RET_KILL_THREAD if t.tg.threads().len() > 1 => {
            dead(t);
            t.exit = Some(ExitStatus::killed_by(consts::SIGSYS));
            Some(0)
        }
        // KILL_PROCESS, a lone thread's KILL_THREAD, and any unknown action.
        _ => {
            dead(t);
            let info = sigsys();
            t.force_default_signal(info);
            Some(nr)
        }
    }
}
