//! pipe, pipe2, eventfd, eventfd2.

use crate::fs::eventfd::{EventFd, EFD_CLOEXEC, EFD_NONBLOCK, EFD_SEMAPHORE};
use crate::fs::pipe::{new_pipe, O_DIRECT, O_NONBLOCK};
use crate::task::Task;
use crate::vfs::{Fd, FileDescription};
use rvisor_abi::{error, Errno, ErrnoCode, SysResult, UserAddr};
use std::sync::Arc;

const O_CLOEXEC: u32 = 0o2000000;
/// O_NOTIFICATION_PIPE (O_EXCL): watch queues, which rvisor does not have.
const O_NOTIFICATION_PIPE: u32 = 0o200;
const ENOPKG: u16 = 65;

pub(super) fn nofile(t: &Task) -> u64 {
    t.tg.rlimit(crate::task::RLIMIT_NOFILE).cur
}

/// Installs `file` at the lowest free descriptor.
pub(super) fn install(t: &Task, file: Arc<dyn FileDescription>, cloexec: bool) -> SysResult<Fd> {
    t.fds.install_lowest(file, 0, nofile(t), cloexec)
}

pub fn sys_pipe(t: &mut Task, fds: UserAddr) -> SysResult<()> {
    sys_pipe2(t, fds, 0)
}

pub fn sys_pipe2(t: &mut Task, fds: UserAddr, flags: i32) -> SysResult<()> {
    let flags = flags as u32;
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_DIRECT | O_NOTIFICATION_PIPE) != 0 {
        return error!(EINVAL);
    }
    if flags & O_NOTIFICATION_PIPE != 0 {
        return Err(Errno::new(ErrnoCode(ENOPKG)));
    }
    let (r, w) = new_pipe(t, flags);
    install_pair(t, r, w, flags & O_CLOEXEC != 0, fds.into())
}

/// Installs two new files (pipe2, socketpair) and writes their descriptors to
/// `out`; on any failure neither stays installed.
pub(super) fn install_pair(t: &Task, a: Arc<dyn FileDescription>, b: Arc<dyn FileDescription>, cloexec: bool, out: crate::mm::UserRef<[i32; 2]>) -> SysResult<()> {
    let fa = install(t, a, cloexec)?;
    let fb = match install(t, b, cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = t.fds.close(fa);
            return Err(e);
        }
    };
    if let Err(e) = t.mm.write_obj(out, &[fa.0, fb.0]) {
        let _ = t.fds.close(fa);
        let _ = t.fds.close(fb);
        return Err(e);
    }
    Ok(())
}

pub fn sys_eventfd(t: &mut Task, initval: u32) -> SysResult<Fd> {
    sys_eventfd2(t, initval, 0)
}

pub fn sys_eventfd2(t: &mut Task, initval: u32, flags: i32) -> SysResult<Fd> {
    let flags = flags as u32;
    if flags & !(EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC) != 0 {
        return error!(EINVAL);
    }
    install(t, Arc::new(EventFd::new(initval, flags)), flags & EFD_CLOEXEC != 0)
}
