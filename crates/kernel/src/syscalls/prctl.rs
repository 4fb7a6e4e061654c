//! prctl(2): per-process and per-thread settings, and syscall user dispatch.

use crate::mm::UserRef;
use crate::task::signals::{self, SigInfo};
use crate::task::{MmFlags, Task};
use rvisor_abi::{consts, error, SysResult, UserAddr};

const PR_SET_PDEATHSIG: i32 = 1;
const PR_GET_PDEATHSIG: i32 = 2;
const PR_GET_DUMPABLE: i32 = 3;
const PR_SET_DUMPABLE: i32 = 4;
const PR_SET_PTRACER: i32 = 0x5961_6d61;
const PR_GET_KEEPCAPS: i32 = 7;
const PR_SET_KEEPCAPS: i32 = 8;
const PR_SET_NAME: i32 = 15;
const PR_GET_NAME: i32 = 16;
const PR_SET_CHILD_SUBREAPER: i32 = 36;
const PR_GET_CHILD_SUBREAPER: i32 = 37;
const PR_GET_SECCOMP: i32 = 21;
const PR_SET_SECCOMP: i32 = 22;
const PR_CAPBSET_READ: i32 = 23;
const PR_CAPBSET_DROP: i32 = 24;
const PR_SET_NO_NEW_PRIVS: i32 = 38;
/// The highest capability number (CAP_CHECKPOINT_RESTORE).
const CAP_LAST_CAP: u64 = 40;
const PR_GET_NO_NEW_PRIVS: i32 = 39;
const PR_SET_TIMERSLACK: i32 = 29;
const PR_GET_TIMERSLACK: i32 = 30;
const PR_MCE_KILL: i32 = 33;
const PR_MCE_KILL_GET: i32 = 34;
const PR_GET_TID_ADDRESS: i32 = 40;
const PR_SET_THP_DISABLE: i32 = 41;
const PR_GET_THP_DISABLE: i32 = 42;
const PR_CAP_AMBIENT: i32 = 47;
const PR_CAP_AMBIENT_IS_SET: u64 = 1;
const PR_CAP_AMBIENT_RAISE: u64 = 2;
const PR_CAP_AMBIENT_LOWER: u64 = 3;
const PR_CAP_AMBIENT_CLEAR_ALL: u64 = 4;
const PR_SET_SYSCALL_USER_DISPATCH: i32 = 59;
const PR_SET_MDWE: i32 = 65;
const PR_GET_MDWE: i32 = 66;
const PR_GET_AUXV: i32 = 0x4155_5856;

pub fn sys_prctl(t: &mut Task, option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> SysResult<i32> {
    use std::sync::atomic::Ordering;
    match option {
        PR_SET_PDEATHSIG => {
            if arg2 > 64 {
                return error!(EINVAL);
            }
            t.thread.sig().pdeathsig = arg2 as u32;
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            let v = t.thread.sig().pdeathsig as i32;
            t.mm.write_obj(UserRef::<i32>::new(UserAddr(arg2)), &v)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(t.tg.dumpable.load(Ordering::Relaxed)),
        PR_SET_DUMPABLE => {
            if arg2 > 1 {
                return error!(EINVAL);
            }
            t.tg.dumpable.store(arg2 as i32, Ordering::Relaxed);
            Ok(0)
        }
        PR_SET_NAME => {
            // Up to 15 bytes are kept; a longer or unterminated name is cut.
            let name = match t.mm.read_cstr(UserAddr(arg2), 16) {
                Err(e) if e.code == rvisor_abi::ErrnoCode::ENAMETOOLONG => {
                    let mut raw = vec![0u8; 15];
                    t.mm.read_bytes(UserAddr(arg2), &mut raw)?;
                    raw
                }
                r => r?,
            };
            let mut comm = [0u8; 16];
            let n = name.len().min(15);
            comm[..n].copy_from_slice(&name[..n]);
            *t.thread.comm.lock().unwrap_or_else(|e| e.into_inner()) = comm;
            Ok(0)
        }
        PR_GET_NAME => {
            let comm = *t.thread.comm.lock().unwrap_or_else(|e| e.into_inner());
            t.mm.write_bytes(UserAddr(arg2), &comm)?;
            Ok(0)
        }
        PR_SET_CHILD_SUBREAPER => {
            t.tg.state().subreaper = arg2 != 0;
            Ok(0)
        }
        PR_GET_CHILD_SUBREAPER => {
            let v = t.tg.state().subreaper as i32;
            t.mm.write_obj(UserRef::<i32>::new(UserAddr(arg2)), &v)?;
            Ok(0)
        }
        PR_SET_NO_NEW_PRIVS => {
            if arg2 != 1 || arg3 != 0 || arg4 != 0 || arg5 != 0 {
                return error!(EINVAL);
            }
            t.tg.no_new_privs.store(1, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => Ok(t.tg.no_new_privs.load(Ordering::Relaxed)),
        PR_CAPBSET_READ if arg2 <= CAP_LAST_CAP => Ok((t.tg.caps.lock().unwrap_or_else(|e| e.into_inner()).bounding >> arg2 & 1) as i32),
        PR_CAPBSET_DROP if arg2 <= CAP_LAST_CAP => {
            if !t.tg.capable(consts::CAP_SETPCAP) {
                return error!(EPERM);
            }
            t.tg.caps.lock().unwrap_or_else(|e| e.into_inner()).bounding &= !(1 << arg2);
            Ok(0)
        }
        PR_GET_KEEPCAPS => Ok(i32::from(t.tg.caps.lock().unwrap_or_else(|e| e.into_inner()).keep)),
        PR_SET_KEEPCAPS if arg2 <= 1 => {
            t.tg.caps.lock().unwrap_or_else(|e| e.into_inner()).keep = arg2 == 1;
            Ok(0)
        }
        PR_GET_SECCOMP => Ok(super::seccomp::get_mode(t)),
        PR_SET_SECCOMP => super::seccomp::prctl_set(t, arg2, arg3).map(|r| r as i32),
        // Yama's exception for a named tracer: the sandbox has no Yama, so any
        // tracer that may trace may already.
        PR_SET_PTRACER => Ok(0),
        PR_CAP_AMBIENT => ambient(t, arg2, arg3, arg4 | arg5),
        // Timer slack is kept and reported (the host's timers fire as set).
        PR_SET_TIMERSLACK => {
            t.thread.set_sched(|s| s.timer_slack_ns = if arg2 == 0 { s.default_timer_slack_ns } else { arg2 });
            Ok(0)
        }
        PR_GET_TIMERSLACK => Ok(t.thread.sched().timer_slack_ns.min(i32::MAX as u64) as i32),
        PR_GET_TID_ADDRESS => {
            t.mm.write_obj(UserRef::<u64>::new(UserAddr(arg2)), &t.clear_child_tid.get())?;
            Ok(0)
        }
        PR_SET_THP_DISABLE | PR_GET_THP_DISABLE if arg3 | arg4 | arg5 != 0 => error!(EINVAL),
        PR_SET_THP_DISABLE => {
            t.tg.set_mm_flag(MmFlags::THP_DISABLED, arg2 != 0);
            Ok(0)
        }
        PR_GET_THP_DISABLE => Ok(i32::from(t.tg.mm_flags().contains(MmFlags::THP_DISABLED))),
        // Memory errors never reach the sandbox: the policy is accepted only.
        PR_MCE_KILL if arg2 <= 1 && arg4 | arg5 == 0 => Ok(0),
        PR_MCE_KILL_GET if arg2 | arg3 | arg4 | arg5 == 0 => Ok(PR_MCE_KILL_DEFAULT),
        PR_SET_MDWE => set_mdwe(t, arg2, arg3 | arg4 | arg5),
        PR_GET_MDWE if arg2 | arg3 | arg4 | arg5 == 0 => Ok(t.tg.mm_flags().mdwe_bits() as i32),
        PR_GET_AUXV => {
            if arg4 | arg5 != 0 {
                return error!(EINVAL);
            }
            let auxv = t.mm.layout().auxv_bytes();
            let n = auxv.len().min(usize::try_from(arg3).unwrap_or(usize::MAX));
            t.mm.write_bytes(UserAddr(arg2), &auxv[..n])?;
            Ok(auxv.len() as i32)
        }
        PR_SET_SYSCALL_USER_DISPATCH => set_user_dispatch(t, arg2, arg3, arg4, UserAddr(arg5)),
        _ => error!(EINVAL),
    }
}

const PR_MCE_KILL_DEFAULT: i32 = 2;

/// PR_CAP_AMBIENT: the ambient set, which exec keeps for a process that is
/// not root; a capability must be permitted and inheritable to be raised.
fn ambient(t: &Task, op: u64, cap: u64, rest: u64) -> SysResult<i32> {
    let mut caps = t.tg.caps.lock().unwrap_or_else(|e| e.into_inner());
    if op == PR_CAP_AMBIENT_CLEAR_ALL {
        if cap | rest != 0 {
            return error!(EINVAL);
        }
        caps.ambient = 0;
        return Ok(0);
    }
    if cap > CAP_LAST_CAP || rest != 0 {
        return error!(EINVAL);
    }
    let bit = 1u64 << cap;
    match op {
        PR_CAP_AMBIENT_IS_SET => Ok(i32::from(caps.ambient & bit != 0)),
        PR_CAP_AMBIENT_RAISE if caps.permitted & caps.inheritable & bit == 0 => error!(EPERM),
        PR_CAP_AMBIENT_RAISE => {
            caps.ambient |= bit;
            Ok(0)
        }
        PR_CAP_AMBIENT_LOWER => {
            caps.ambient &= !bit;
            Ok(0)
        }
        _ => error!(EINVAL),
    }
}

/// PR_SET_MDWE: memory that is writable may not also be executable, nor may
/// memory become executable later (MDWE_REFUSE_EXEC_GAIN); for good (once
/// set, EPERM for any other bits), and for children too unless MDWE_NO_INHERIT.
fn set_mdwe(t: &Task, bits: u64, rest: u64) -> SysResult<i32> {
    let Some(wanted) = MmFlags::from_mdwe_bits(bits).filter(|_| rest == 0) else { return error!(EINVAL) };
    let have = t.tg.mm_flags().mdwe_bits();
    if have != 0 && have != bits {
        return error!(EPERM);
    }
    t.tg.set_mm_flag(wanted, true);
    Ok(0)
}

const PR_SYS_DISPATCH_OFF: u64 = 0;
const PR_SYS_DISPATCH_EXCLUSIVE_ON: u64 = 1;
const PR_SYS_DISPATCH_INCLUSIVE_ON: u64 = 2;

/// PR_SET_SYSCALL_USER_DISPATCH: the calling thread's syscalls from outside
/// `[offset, offset + len)` (EXCLUSIVE_ON) or from inside it (INCLUSIVE_ON)
/// become SIGSYS while the byte at `selector` says so (`syscall_dispatch`).
fn set_user_dispatch(t: &mut Task, mode: u64, offset: u64, len: u64, selector: UserAddr) -> SysResult<i32> {
    let end = offset.checked_add(len);
    t.user_dispatch = match mode {
        PR_SYS_DISPATCH_OFF if offset | len != 0 || !selector.is_null() => return error!(EINVAL),
        PR_SYS_DISPATCH_OFF => None,
        PR_SYS_DISPATCH_EXCLUSIVE_ON if offset != 0 && end.is_none_or(|e| e <= offset) => return error!(EINVAL),
        PR_SYS_DISPATCH_INCLUSIVE_ON if len == 0 || end.is_none_or(|e| e <= offset) => return error!(EINVAL),
        PR_SYS_DISPATCH_EXCLUSIVE_ON | PR_SYS_DISPATCH_INCLUSIVE_ON => {
            if selector.get() >= t.kernel.platform.max_user_address() {
                return error!(EFAULT);
            }
            Some(UserDispatch { offset, len, inclusive: mode == PR_SYS_DISPATCH_INCLUSIVE_ON, selector })
        }
        _ => return error!(EINVAL),
    };
    Ok(0)
}

/// A thread's syscall user dispatch setting.
#[derive(Clone, Copy, Debug)]
pub struct UserDispatch {
    offset: u64,
    len: u64,
    inclusive: bool,
    selector: UserAddr,
}

const SYSCALL_DISPATCH_FILTER_ALLOW: u8 = 0;
const SYSCALL_DISPATCH_FILTER_BLOCK: u8 = 1;
/// si_code of a syscall user dispatch SIGSYS.
const SYS_USER_DISPATCH: i32 = 2;

/// Whether the syscall `t` stopped at is dispatched to the program itself:
/// then it does not run, and a SIGSYS names it (the registers roll back to the
/// call's). A selector that cannot be read kills with SIGSEGV, one holding
/// neither ALLOW nor BLOCK with SIGSYS, as Linux's syscall_user_dispatch.
pub fn syscall_dispatch(t: &mut Task, d: UserDispatch) -> bool {
    let ip = t.cpu.ip();
    if (ip.wrapping_sub(d.offset) < d.len) != d.inclusive {
        return false;
    }
    if !d.selector.is_null() {
        match t.mm.read_obj(UserRef::<u8>::new(d.selector)) {
            Ok(SYSCALL_DISPATCH_FILTER_ALLOW) => return false,
            Ok(SYSCALL_DISPATCH_FILTER_BLOCK) => {}
            Ok(_) => {
                t.force_default_signal(SigInfo::new(consts::SIGSYS, signals::SI_KERNEL));
                return true;
            }
            Err(_) => {
                t.force_default_signal(SigInfo::new(consts::SIGSEGV, signals::SI_KERNEL));
                return true;
            }
        }
    }
    let nr = t.cpu.syscall_nr();
    t.cpu.regs.rax = nr;
    t.force_signal(SigInfo::new(consts::SIGSYS, SYS_USER_DISPATCH).with_syscall(ip, nr as i32, crate::task::seccomp::AUDIT_ARCH_X86_64));
    true
}

