//! Signal dispositions, masks, and sending signals. Delivery to handlers comes
//! with the process model; until then a signal that is not ignored or blocked
//! takes its default action.

use crate::mm::UserRef;
use crate::task::{ExitStatus, Task};
use rvisor_abi::structs::KernelSigaction;
use rvisor_abi::{consts, error, SysResult};

const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;
const SIG_BLOCK: i32 = 0;
const SIG_UNBLOCK: i32 = 1;
const SIG_SETMASK: i32 = 2;
const SIGSET_SIZE: usize = 8;

fn bit(signo: u32) -> u64 {
    1 << (signo - 1)
}

/// SIGKILL and SIGSTOP can be neither caught, blocked nor ignored.
const UNBLOCKABLE: u64 = (1 << (consts::SIGKILL - 1)) | (1 << (consts::SIGSTOP - 1));

fn valid_signal(signo: i32) -> SysResult<u32> {
    if (1..=64).contains(&signo) { Ok(signo as u32) } else { error!(EINVAL) }
}

pub fn sys_rt_sigaction(t: &mut Task, signo: i32, act: UserRef<KernelSigaction>, oldact: UserRef<KernelSigaction>, sigsetsize: usize) -> SysResult<()> {
    if sigsetsize != SIGSET_SIZE {
        return error!(EINVAL);
    }
    let signo = valid_signal(signo)?;
    let new = if act.is_null() { None } else { Some(t.mm.read_obj(act)?) };
    if new.is_some() && bit(signo) & UNBLOCKABLE != 0 {
        return error!(EINVAL);
    }
    let old = {
        let mut actions = t.tg.sigactions.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut actions[signo as usize - 1];
        let old = *slot;
        if let Some(mut n) = new {
            n.mask &= !UNBLOCKABLE;
            *slot = n;
        }
        old
    };
    if !oldact.is_null() {
        t.mm.write_obj(oldact, &old)?;
    }
    Ok(())
}

pub fn sys_rt_sigprocmask(t: &mut Task, how: i32, set: UserRef<u64>, oldset: UserRef<u64>, sigsetsize: usize) -> SysResult<()> {
    if sigsetsize != SIGSET_SIZE {
        return error!(EINVAL);
    }
    let old = t.signal_mask;
    if !set.is_null() {
        let s = t.mm.read_obj(set)?;
        t.signal_mask = match how {
            SIG_BLOCK => old | s,
            SIG_UNBLOCK => old & !s,
            SIG_SETMASK => s,
            _ => return error!(EINVAL),
        } & !UNBLOCKABLE;
    }
    if !oldset.is_null() {
        t.mm.write_obj(oldset, &old)?;
    }
    Ok(())
}

/// Signals whose default action is to do nothing.
fn ignored_by_default(signo: u32) -> bool {
    matches!(signo, consts::SIGCHLD | consts::SIGCONT | consts::SIGURG | consts::SIGWINCH)
}

/// Sends `signo` to the calling (single-threaded) process.
fn send_to_self(t: &mut Task, signo: i32) -> SysResult<()> {
    if signo == 0 {
        return Ok(());
    }
    let signo = valid_signal(signo)?;
    let handler = t.tg.sigactions.lock().unwrap_or_else(|e| e.into_inner())[signo as usize - 1].handler;
    let blocked = t.signal_mask & bit(signo) != 0;
    if signo == consts::SIGKILL {
        t.exit_group(ExitStatus::killed_by(signo));
    } else if handler == SIG_IGN || blocked || (handler == SIG_DFL && ignored_by_default(signo)) {
        tracing::debug!("signal {signo} ignored or left pending");
    } else {
        // A handler cannot run yet; the default action applies.
        t.exit_group(ExitStatus::killed_by(signo));
    }
    Ok(())
}

pub fn sys_kill(t: &mut Task, pid: i32, signo: i32) -> SysResult<()> {
    // The sandbox has one process: pid 1, its own group, and "everyone" all name it.
    if pid == t.tg.tgid || pid == 0 || pid == -1 || pid == -t.tg.tgid {
        send_to_self(t, signo)
    } else {
        error!(ESRCH)
    }
}

pub fn sys_tkill(t: &mut Task, tid: i32, signo: i32) -> SysResult<()> {
    if tid <= 0 {
        return error!(EINVAL);
    }
    if tid != t.tid {
        return error!(ESRCH);
    }
    send_to_self(t, signo)
}

pub fn sys_tgkill(t: &mut Task, tgid: i32, tid: i32, signo: i32) -> SysResult<()> {
    if tgid <= 0 || tid <= 0 {
        return error!(EINVAL);
    }
    if tgid != t.tg.tgid || tid != t.tid {
        return error!(ESRCH);
    }
    send_to_self(t, signo)
}
