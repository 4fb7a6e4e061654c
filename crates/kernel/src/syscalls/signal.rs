//! Signal syscalls: dispositions, masks, the alternate stack, sending, waiting,
//! and returning from handlers.

use crate::mm::UserRef;
use crate::task::signals::{self, sigbit, SigInfo, SI_TKILL, SI_USER, UNBLOCKABLE};
use crate::task::Task;
use rvisor_abi::structs::{KernelSigaction, Timespec};
use rvisor_abi::{consts, errno, error, SysResult, UserAddr};
use std::sync::Arc;
use std::time::Instant;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

const SIG_BLOCK: i32 = 0;
const SIG_UNBLOCK: i32 = 1;
const SIG_SETMASK: i32 = 2;
const SIGSET_SIZE: usize = 8;
const SS_ONSTACK: i32 = 1;
const SS_DISABLE: i32 = 2;
const SS_AUTODISARM: i32 = 1 << 31;
const MINSIGSTKSZ: u64 = 2048;

pub(super) fn valid_signal(signo: i32) -> SysResult<u32> {
    if (1..=64).contains(&signo) { Ok(signo as u32) } else { error!(EINVAL) }
}

fn check_sigset_size(size: usize) -> SysResult<()> {
    if size == SIGSET_SIZE { Ok(()) } else { error!(EINVAL) }
}

pub fn sys_rt_sigaction(t: &mut Task, signo: i32, act: UserRef<KernelSigaction>, oldact: UserRef<KernelSigaction>, sigsetsize: usize) -> SysResult<()> {
    check_sigset_size(sigsetsize)?;
    let signo = valid_signal(signo)?;
    let new = if act.is_null() { None } else { Some(t.mm.read_obj(act)?) };
    if new.is_some() && sigbit(signo) & UNBLOCKABLE != 0 {
        return error!(EINVAL);
    }
    let old = {
        let mut sig = t.tg.sig();
        let slot = &mut sig.actions[signo as usize - 1];
        let old = *slot;
        if let Some(mut n) = new {
            n.mask &= !UNBLOCKABLE;
            *slot = n;
        }
        old
    };
    // Setting SIG_IGN (or SIG_DFL on a default-ignored signal) drops what is pending.
    if let Some(n) = new {
        let ign = n.handler == signals::SIG_IGN || (n.handler == signals::SIG_DFL && signals::default_action(signo) == signals::DefaultAction::Ignore);
        if ign {
            t.tg.sig().pending.discard(sigbit(signo));
            for th in t.tg.threads() {
                th.sig().pending.discard(sigbit(signo));
            }
        }
    }
    if !oldact.is_null() {
        t.mm.write_obj(oldact, &old)?;
    }
    Ok(())
}

pub fn sys_rt_sigprocmask(t: &mut Task, how: i32, set: UserRef<u64>, oldset: UserRef<u64>, sigsetsize: usize) -> SysResult<()> {
    check_sigset_size(sigsetsize)?;
    let old = t.thread.sig().mask;
    if !set.is_null() {
        let s = t.mm.read_obj(set)?;
        let new = match how {
            SIG_BLOCK => old | s,
            SIG_UNBLOCK => old & !s,
            SIG_SETMASK => s,
            _ => return error!(EINVAL),
        };
        t.thread.set_sigmask(new);
    }
    if !oldset.is_null() {
        t.mm.write_obj(oldset, &old)?;
    }
    Ok(())
}

pub fn sys_rt_sigpending(t: &mut Task, set: UserRef<u64>, sigsetsize: usize) -> SysResult<()> {
    check_sigset_size(sigsetsize)?;
    let (mask, mine) = {
        let s = t.thread.sig();
        (s.mask, s.pending.mask)
    };
    let pending = (mine | t.tg.sig().pending.mask) & mask;
    t.mm.write_obj(set, &pending)
}

pub fn sys_rt_sigreturn(t: &mut Task) -> SysResult<u64> {
    t.sigreturn()
}

/// `stack_t`.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct StackT {
    sp: u64,
    flags: i32,
    pad: i32,
    size: u64,
}

pub fn sys_sigaltstack(t: &mut Task, ss: UserRef<StackT>, old: UserRef<StackT>) -> SysResult<()> {
    let rsp = t.cpu.regs.rsp;
    let cur = t.thread.sig().altstack;
    let on = cur.contains(rsp);
    if !ss.is_null() {
        let new = t.mm.read_obj(ss)?;
        if on {
            return error!(EPERM);
        }
        let mode = new.flags & !SS_AUTODISARM;
        let mut s = t.thread.sig();
        match mode {
            SS_DISABLE => s.altstack = signals::SigAltStack { sp: 0, size: 0, disabled: true },
            0 | SS_ONSTACK => {
                if new.size < MINSIGSTKSZ {
                    return error!(ENOMEM);
                }
                s.altstack = signals::SigAltStack { sp: new.sp, size: new.size, disabled: false };
            }
            _ => return error!(EINVAL),
        }
    }
    if !old.is_null() {
        let flags = if on { SS_ONSTACK } else if !cur.is_set() { SS_DISABLE } else { 0 };
        t.mm.write_obj(old, &StackT { sp: cur.sp, flags, pad: 0, size: cur.size })?;
    }
    Ok(())
}

pub fn sys_rt_sigsuspend(t: &mut Task, mask: UserRef<u64>, sigsetsize: usize) -> SysResult<()> {
    check_sigset_size(sigsetsize)?;
    let new = t.mm.read_obj(mask)?;
    {
        let mut s = t.thread.sig();
        s.saved_mask = Some(s.mask);
    }
    t.thread.set_sigmask(new);
    // Returns only for a handler, and then always with EINTR (ERESTARTNOHAND).
    let _ = t.block_until(None, || false);
    error!(ERESTARTNOHAND)
}

pub fn sys_pause(t: &mut Task) -> SysResult<()> {
    let _ = t.block_until(None, || false);
    error!(ERESTARTNOHAND)
}

/// A relative timeout from user memory, as a deadline.
pub(super) fn deadline_after(t: &Task, ts: UserRef<Timespec>) -> SysResult<Option<Instant>> {
    if ts.is_null() {
        return Ok(None);
    }
    Ok(crate::time::deadline_in(t.mm.read_obj(ts)?.duration()?))
}

pub fn sys_rt_sigtimedwait(t: &mut Task, set: UserRef<u64>, info: UserAddr, timeout: UserRef<Timespec>, sigsetsize: usize) -> SysResult<i32> {
    check_sigset_size(sigsetsize)?;
    let want = t.mm.read_obj(set)? & !UNBLOCKABLE;
    let deadline = deadline_after(t, timeout)?;
    let mut got = t.dequeue_signal(!want);
    if got.is_none() {
        let r = t.block_until(deadline, || {
            got = t.dequeue_signal(!want);
            got.is_some()
        });
        match r {
            Ok(()) => {}
            Err(e) if e.code == rvisor_abi::ErrnoCode::ETIMEDOUT => return error!(EAGAIN),
            Err(_) => return error!(EINTR),
        }
    }
    let got = got.ok_or_else(|| errno!(EAGAIN))?;
    if !info.is_null() {
        t.mm.write_obj(UserRef::new(info), &got)?;
    }
    Ok(got.signo)
}

pub(super) fn sender_info(t: &Task, signo: u32, code: i32) -> SigInfo {
    SigInfo::new(signo, code).with_sender(t.tg.tgid, t.tg.creds().uid)
}

/// Whether a nested PID namespace's init drops `signo` from `t` (Linux's
/// SIGNAL_UNKILLABLE): a signal it has no handler for, unless it is SIGKILL or
/// SIGSTOP from an enclosing namespace.
fn init_ignores(t: &Task, tg: &crate::task::ThreadGroup, signo: u32) -> bool {
    let from_outside = !Arc::ptr_eq(&t.tg.pid_ns, &tg.pid_ns);
    tg.pid_ns.is_init(tg)
        && tg.action(signo).handler == crate::task::signals::SIG_DFL
        && !(from_outside && matches!(signo, rvisor_abi::consts::SIGKILL | rvisor_abi::consts::SIGSTOP))
}

pub fn sys_kill(t: &mut Task, pid: i32, signo: i32) -> SysResult<()> {
    if signo != 0 {
        valid_signal(signo)?;
    }
    let info = sender_info(t, signo as u32, SI_USER);
    let targets: Vec<Arc<crate::task::ThreadGroup>> = match pid {
        p if p > 0 => {
            let tg = t.pid_ns().group(p).or_else(|| t.pid_ns().thread(p).map(|th| th.tg.clone())).ok_or_else(|| errno!(ESRCH))?;
            vec![tg]
        }
        // Every process but the namespace's init and the caller.
        -1 => t.pid_ns().groups().into_iter().filter(|g| t.vnr(g.tgid) > 1 && !Arc::ptr_eq(g, &t.tg)).collect(),
        p => {
            let pgid = if p == 0 { t.tg.state().pgid } else { t.find_vpid(p.checked_neg().ok_or_else(|| errno!(ESRCH))?) };
            signals::process_group(t.pid_ns(), pgid)
        }
    };
    let live: Vec<_> = targets.into_iter().filter(|g| g.state().zombie.is_none() || pid > 0).collect();
    if live.is_empty() {
        return error!(ESRCH);
    }
    // As Linux: a process group's kill fails when no member could be
    // signalled; kill(-1) skips those it may not signal and succeeds.
    let permitted: Vec<_> = live.into_iter().filter(|g| may_signal(t, g, None, signo as u32).is_ok()).collect();
    if permitted.is_empty() && pid != -1 {
        return error!(EPERM);
    }
    if signo != 0 {
        for g in permitted.iter().filter(|g| !init_ignores(t, g, signo as u32)) {
            signals::send_to_group(g, info);
        }
    }
    Ok(())
}

/// Linux's check_kill_permission: whether `t` may send `signo` (0: only ask)
/// to process `g`, or to its thread `th`. Another process needs the sender's
/// real or effective uid to be its real or saved one, or CAP_KILL over it
/// (SIGCONT goes within a session regardless); then the sender's Landlock
/// domain must not scope it out (the first thread stands for a process).
pub(super) fn may_signal(t: &Task, g: &Arc<crate::task::ThreadGroup>, th: Option<&Arc<crate::task::Thread>>, signo: u32) -> SysResult<()> {
    if !Arc::ptr_eq(g, &t.tg) {
        let (me, them) = (t.tg.creds(), g.creds());
        let by_ids = [me.euid, me.uid].iter().any(|&u| u == them.suid || u == them.uid);
        let same_session = signo == rvisor_abi::consts::SIGCONT && {
            let theirs = g.state().sid;
            theirs == t.tg.state().sid
        };
        if !by_ids && !same_session && !t.tg.capable_in(&g.user_ns(), consts::CAP_KILL) {
            return error!(EPERM);
        }
    }
    if t.thread.landlock().is_none() {
        return Ok(());
    }
    match th.cloned().or_else(|| g.threads().into_iter().next()) {
        Some(th) => crate::landlock::scope::may_signal(&t.thread, &th),
        None => Ok(()),
    }
}

fn thread_in(t: &Task, tgid: Option<i32>, tid: i32) -> SysResult<Arc<crate::task::Thread>> {
    let th = t.pid_ns().thread(tid).ok_or_else(|| errno!(ESRCH))?;
    if tgid.is_some_and(|g| t.vnr(th.tg.tgid) != g) {
        return error!(ESRCH);
    }
    Ok(th)
}

fn send_to_thread(t: &Task, tgid: Option<i32>, tid: i32, signo: i32, info: Option<SigInfo>) -> SysResult<()> {
    if tid <= 0 || tgid.is_some_and(|g| g <= 0) {
        return error!(EINVAL);
    }
    if signo != 0 {
        valid_signal(signo)?;
    }
    let th = thread_in(t, tgid, tid)?;
    may_signal(t, &th.tg, Some(&th), signo as u32)?;
    if signo != 0 && !init_ignores(t, &th.tg, signo as u32) {
        signals::send_to_thread(&th, info.unwrap_or_else(|| sender_info(t, signo as u32, SI_TKILL)));
    }
    Ok(())
}

pub fn sys_tkill(t: &mut Task, tid: i32, signo: i32) -> SysResult<()> {
    send_to_thread(t, None, tid, signo, None)
}

pub fn sys_tgkill(t: &mut Task, tgid: i32, tid: i32, signo: i32) -> SysResult<()> {
    send_to_thread(t, Some(tgid), tid, signo, None)
}

/// RLIMIT_SIGPENDING: how many signals may be queued for the caller's user.
pub(super) fn check_sigpending(t: &Task) -> SysResult<()> {
    let uid = t.tg.creds().uid;
    let queued: usize = t
        .kernel
        .all_groups()
        .iter()
        .filter(|g| g.creds().uid == uid)
        .map(|g| g.sig().pending.len() + g.threads().iter().map(|th| th.sig().pending.len()).sum::<usize>())
        .sum();
    if queued as u64 >= t.tg.rlimit(crate::task::RLIMIT_SIGPENDING).cur { error!(EAGAIN) } else { Ok(()) }
}

/// A siginfo the app supplies: it may not pose as the kernel or kill(2) to others.
fn user_siginfo(t: &Task, target: i32, signo: i32, uinfo: UserRef<SigInfo>) -> SysResult<SigInfo> {
    let signo = valid_signal(signo)?;
    check_sigpending(t)?;
    let mut info = t.mm.read_obj(uinfo)?;
    if (info.code >= 0 || info.code == SI_TKILL) && target != t.vnr(t.tg.tgid) {
        return error!(EPERM);
    }
    info.signo = signo as i32;
    Ok(info)
}

pub fn sys_rt_sigqueueinfo(t: &mut Task, tgid: i32, signo: i32, uinfo: UserRef<SigInfo>) -> SysResult<()> {
    let info = user_siginfo(t, tgid, signo, uinfo)?;
    let tg = t.pid_ns().group(tgid).ok_or_else(|| errno!(ESRCH))?;
    may_signal(t, &tg, None, info.signo())?;
    if !init_ignores(t, &tg, info.signo()) {
        signals::send_to_group(&tg, info);
    }
    Ok(())
}

pub fn sys_rt_tgsigqueueinfo(t: &mut Task, tgid: i32, tid: i32, signo: i32, uinfo: UserRef<SigInfo>) -> SysResult<()> {
    let info = user_siginfo(t, tgid, signo, uinfo)?;
    send_to_thread(t, Some(tgid), tid, signo, Some(info))
}

const SFD_CLOEXEC: i32 = 0o2000000;
const SFD_NONBLOCK: i32 = 0o4000;

/// signalfd4: a new signalfd for `mask`, or (`fd` ≥ 0) a new mask for one.
pub fn sys_signalfd4(t: &mut Task, fd: i32, mask: UserRef<u64>, sizemask: usize, flags: i32) -> SysResult<crate::vfs::Fd> {
    if sizemask != 8 || flags & !(SFD_CLOEXEC | SFD_NONBLOCK) != 0 {
        return error!(EINVAL);
    }
    let set = t.mm.read_obj(mask)?;
    if fd >= 0 {
        let file = t.fds.get(crate::vfs::Fd(fd))?;
        let sfd = file.as_any().and_then(|a| a.downcast_ref::<crate::fs::signalfd::SignalFd>()).ok_or_else(|| errno!(EINVAL))?;
        sfd.set_mask(set);
        return Ok(crate::vfs::Fd(fd));
    }
    let nonblock = if flags & SFD_NONBLOCK != 0 { crate::vfs::OpenFlags::NONBLOCK } else { 0 };
    let file = Arc::new(crate::fs::signalfd::SignalFd::new(t, set, nonblock));
    super::pipe::install(t, file, flags & SFD_CLOEXEC != 0)
}

pub fn sys_signalfd(t: &mut Task, fd: i32, mask: UserRef<u64>, sizemask: usize) -> SysResult<crate::vfs::Fd> {
    sys_signalfd4(t, fd, mask, sizemask, 0)
}

/// restart_syscall: resumes the call that left a restart block (a relative sleep,
/// a poll or a timed futex wait a stop interrupted); without one, as Linux's
/// do_no_restart_syscall, EINTR.
pub fn sys_restart_syscall(t: &mut Task) -> SysResult<usize> {
    use crate::task::RestartBlock;
    match t.restart_block {
        Some(RestartBlock::Nanosleep { clock, until_ns, rem }) => super::time::sleep_until(t, clock, until_ns, true, rem).map(|()| 0),
        Some(RestartBlock::Poll { fds, nfds, deadline }) => super::poll::poll_until(t, fds, nfds, deadline),
        Some(RestartBlock::FutexWait { addr, private, val, bitset, deadline }) => super::futex::futex_wait(t, addr, private, val, bitset, deadline).map(|n| n as usize),
        None => error!(EINTR),
    }
}
