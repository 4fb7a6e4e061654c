//! The pidfd calls: pidfd_open, pidfd_send_signal, pidfd_getfd (waitid's P_PIDFD
//! is in `process`, clone's CLONE_PIDFD in `task::clone`).

use super::signal::{check_sigpending, sender_info, valid_signal};
use crate::fs::pidfd::{PidFd, PIDFD_NONBLOCK};
use crate::mm::UserRef;
use crate::task::signals::{self, SigInfo, SI_TKILL, SI_USER};
use crate::task::{Task, ThreadGroup};
use crate::vfs::Fd;
use rvisor_abi::{errno, error, SysResult};
use std::sync::Arc;

/// The process a pidfd names; EBADF for any other file.
pub(super) fn pidfd_target(t: &Task, fd: Fd) -> SysResult<(Arc<ThreadGroup>, bool)> {
    let file = t.fds.get(fd)?;
    let p = PidFd::of(&file).ok_or_else(|| errno!(EBADF))?;
    Ok((p.tg.clone(), p.nonblocking()))
}

/// pidfd_open: a pidfd (always close-on-exec) for process `pid`, which must name
/// a thread group (a thread's id that is not its group's is EINVAL), exited or not
/// but not yet reaped.
pub fn sys_pidfd_open(t: &mut Task, pid: i32, flags: u32) -> SysResult<Fd> {
    if flags & !PIDFD_NONBLOCK != 0 || pid <= 0 {
        return error!(EINVAL);
    }
    let Some(tg) = t.pid_ns().group(pid) else {
        return if t.pid_ns().thread(pid).is_some() { error!(EINVAL) } else { error!(ESRCH) };
    };
    super::pipe::install(t, Arc::new(PidFd::new(tg, flags)), true)
}

/// pidfd_send_signal: like kill (`info` NULL) or rt_sigqueueinfo on the pidfd's
/// process (or an open /proc/[pid] directory's); ESRCH once it has been reaped.
pub fn sys_pidfd_send_signal(t: &mut Task, pidfd: Fd, signo: i32, info: UserRef<SigInfo>, flags: u32) -> SysResult<()> {
    if flags != 0 {
        return error!(EINVAL);
    }
    let file = t.fds.get(pidfd)?;
    let tg = match PidFd::of(&file) {
        Some(p) => p.tg.clone(),
        // An open /proc/[pid] directory names its process too.
        None => {
            let tgid = file.dentry().and_then(|d| crate::fs::proc::process_dir_tgid(&d.inode)).ok_or_else(|| errno!(EBADF))?;
            t.pid_ns().group(tgid).ok_or_else(|| errno!(ESRCH))?
        }
    };
    if signo != 0 {
        valid_signal(signo)?;
    }
    let info = if info.is_null() {
        sender_info(t, signo as u32, SI_USER)
    } else {
        let i = t.mm.read_obj(info)?;
        if i.signo != signo {
            return error!(EINVAL);
        }
        // Only a process signalling itself may claim a kernel or kill() origin.
        if !Arc::ptr_eq(&tg, &t.tg) && (i.code >= 0 || i.code == SI_TKILL) {
            return error!(EPERM);
        }
        check_sigpending(t)?;
        i
    };
    if tg.is_reaped() {
        return error!(ESRCH);
    }
    super::signal::may_signal(t, &tg, None, signo as u32)?;
    if signo != 0 {
        signals::send_to_group(&tg, info);
    }
    Ok(())
}

/// pidfd_getfd: a close-on-exec duplicate of descriptor `targetfd` of the pidfd's
/// process, for a caller that could ptrace it (Linux's PTRACE_MODE_ATTACH_REALCREDS:
/// CAP_SYS_PTRACE, or the same real, effective and saved ids as the caller's
/// real ones and a dumpable target).
pub fn sys_pidfd_getfd(t: &mut Task, pidfd: Fd, targetfd: i32, flags: u32) -> SysResult<Fd> {
    if flags != 0 {
        return error!(EINVAL);
    }
    let (tg, _) = pidfd_target(t, pidfd)?;
    if tg.is_reaped() {
        return error!(ESRCH);
    }
    if !crate::task::ptrace::may_trace(&t.tg, &tg) {
        return error!(EPERM);
    }
    // An exited process has no descriptors left.
    let fds = tg.threads().iter().find_map(|th| th.resources()).map(|r| r.fds).ok_or_else(|| errno!(EBADF))?;
    let file = fds.get(Fd(targetfd))?;
    super::pipe::install(t, file, true)
}
