//! inotify_init, inotify_init1, inotify_add_watch, inotify_rm_watch.

use super::args::UserCStr;
use super::open::{lookup_at, read_path, AT_FDCWD};
use super::pipe::install;
use crate::fs::inotify::{Inotify, ALL_INOTIFY_BITS, IN_CLOEXEC, IN_DONT_FOLLOW, IN_MASK_ADD, IN_MASK_CREATE, IN_NONBLOCK, IN_ONLYDIR};
use crate::task::Task;
use crate::vfs::{Fd, Follow};
use rvisor_abi::{errno, error, SysResult};
use std::sync::Arc;

pub fn sys_inotify_init(t: &mut Task) -> SysResult<Fd> {
    sys_inotify_init1(t, 0)
}

pub fn sys_inotify_init1(t: &mut Task, flags: i32) -> SysResult<Fd> {
    let flags = flags as u32;
    if flags & !(IN_NONBLOCK | IN_CLOEXEC) != 0 {
        return error!(EINVAL);
    }
    install(t, Arc::new(Inotify::new(flags)), flags & IN_CLOEXEC != 0)
}

/// Runs `f` on the inotify instance open at `fd`: EBADF if nothing is open
/// there, EINVAL if another kind of file is.
fn with_instance<R>(t: &Task, fd: Fd, f: impl FnOnce(&Inotify) -> SysResult<R>) -> SysResult<R> {
    let file = t.fds.get(fd)?;
    f(file.as_any().and_then(|a| a.downcast_ref::<Inotify>()).ok_or_else(|| errno!(EINVAL))?)
}

pub fn sys_inotify_add_watch(t: &mut Task, fd: Fd, path: UserCStr, mask: u32) -> SysResult<i32> {
    if mask & IN_MASK_ADD != 0 && mask & IN_MASK_CREATE != 0 || mask & ALL_INOTIFY_BITS == 0 {
        return error!(EINVAL);
    }
    with_instance(t, fd, |inotify| {
        let p = read_path(t, path)?;
        let follow = if mask & IN_DONT_FOLLOW != 0 { Follow::No } else { Follow::Yes };
        let d = lookup_at(t, AT_FDCWD, &p, follow, false)?;
        if mask & IN_ONLYDIR != 0 && !d.is_dir() {
            return error!(ENOTDIR);
        }
        // Watching reports what happens to a file: only a reader may.
        crate::vfs::perm::permission(&t.thread.fs_creds(), &*d.inode, crate::vfs::perm::MAY_READ)?;
        inotify.add_watch(d, mask)
    })
}

pub fn sys_inotify_rm_watch(t: &mut Task, fd: Fd, wd: i32) -> SysResult<()> {
    with_instance(t, fd, |inotify| inotify.rm_watch(wd))
}
