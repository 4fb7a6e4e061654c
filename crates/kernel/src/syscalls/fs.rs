//! File I/O on descriptors: read, write and their vector and positional forms,
//! close, fstat, newfstatat, ioctl; and the path calls that need no VFS yet.

use crate::fs::fasync;
use crate::fs::inotify::{notify_file, IN_ACCESS, IN_MODIFY};
use crate::mm::{UserBuffers, UserRef};
use crate::task::signals::{send_to_thread, SigInfo, SI_USER};
use crate::task::{Task, RLIMIT_FSIZE, RLIM_INFINITY};
use crate::vfs::inode::{S_IFMT, S_IFREG};
use crate::vfs::{Fd, FileDescription, OpenFlags};
use rvisor_abi::structs::Stat;
use rvisor_abi::{errno, error, Errno, SysResult, UserAddr};

/// Reads from `file`, reporting IN_ACCESS when something was read.
/// Every call that reaches the file counts for I/O accounting, as in Linux's vfs_read.
pub(super) fn read(t: &Task, file: &dyn FileDescription, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
    let r = file.read(t, bufs, offset);
    t.thread.io.read_call(*r.as_ref().unwrap_or(&0));
    let n = r?;
    if n > 0 {
        notify_file(file, IN_ACCESS);
    }
    Ok(n)
}

const SEEK_CUR: i32 = 1;

/// A write or a size change that would take a file past RLIMIT_FSIZE: SIGXFSZ to the
/// calling thread, as from itself (Linux's send_sig(SIGXFSZ, current, 0)), and EFBIG.
pub(super) fn file_too_big(t: &Task) -> Errno {
    let info = SigInfo::new(rvisor_abi::consts::SIGXFSZ, SI_USER).with_sender(t.tg.tgid, t.tg.creds().uid);
    send_to_thread(&t.thread, info);
    errno!(EFBIG)
}

/// A regular file may not grow from `size` to `new_size` past RLIMIT_FSIZE
/// (truncate, fallocate: Linux's inode_newsize_ok).
pub(super) fn check_new_size(t: &Task, size: u64, new_size: u64) -> SysResult<()> {
    let limit = t.tg.rlimit(RLIMIT_FSIZE).cur;
    if new_size > size && limit != RLIM_INFINITY && new_size > limit {
        return Err(file_too_big(t));
    }
    Ok(())
}

/// How many of `count` bytes a write to `file` at `offset` (or where a write goes:
/// the file position, or the end with O_APPEND) may write under RLIMIT_FSIZE, as
/// Linux's generic_write_check_limits: only a regular file is limited; a write that
/// would start at or past the limit writes nothing (file_too_big), one that would
/// cross it stops at it.
pub(super) fn writable_len(t: &Task, file: &dyn FileDescription, count: u64, offset: Option<u64>) -> SysResult<u64> {
    let limit = t.tg.rlimit(RLIMIT_FSIZE).cur;
    if limit == RLIM_INFINITY || count == 0 {
        return Ok(count);
    }
    let st = file.stat()?;
    if st.st_mode & S_IFMT != S_IFREG {
        return Ok(count);
    }
    let pos = match offset {
        Some(o) => o,
        None if file.status_flags() & OpenFlags::APPEND != 0 => st.st_size as u64,
        None => file.seek(0, SEEK_CUR)? as u64,
    };
    if pos >= limit {
        return Err(file_too_big(t));
    }
    Ok(count.min(limit - pos))
}

/// Writes to `file`, reporting IN_MODIFY when something was written.
pub(super) fn write(t: &Task, file: &dyn FileDescription, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
    let total = bufs.total();
    let allowed = writable_len(t, file, total, offset.map(|o| o as u64));
    let limited;
    let bufs = match allowed {
        Ok(n) if n < total => {
            limited = bufs.truncated(n);
            &limited
        }
        Ok(_) => bufs,
        Err(e) => {
            t.thread.io.write_call(0);
            return Err(e);
        }
    };
    let r = file.write(t, bufs, offset);
    t.thread.io.write_call(*r.as_ref().unwrap_or(&0));
    let n = r?;
    if n > 0 {
        notify_file(file, IN_MODIFY);
    }
    Ok(n)
}

pub fn sys_read(t: &mut Task, fd: Fd, buf: UserAddr, count: usize) -> SysResult<usize> {
    read(t, &*t.fds.get(fd)?, &UserBuffers::single(buf, count), None)
}

pub fn sys_write(t: &mut Task, fd: Fd, buf: UserAddr, count: usize) -> SysResult<usize> {
    write(t, &*t.fds.get(fd)?, &UserBuffers::single(buf, count), None)
}

pub(super) fn check_offset(offset: i64) -> SysResult<Option<i64>> {
    if offset < 0 { error!(EINVAL) } else { Ok(Some(offset)) }
}

pub fn sys_pread64(t: &mut Task, fd: Fd, buf: UserAddr, count: usize, offset: i64) -> SysResult<usize> {
    let file = t.fds.get(fd)?;
    read(t, &*file, &UserBuffers::single(buf, count), check_offset(offset)?)
}

pub fn sys_pwrite64(t: &mut Task, fd: Fd, buf: UserAddr, count: usize, offset: i64) -> SysResult<usize> {
    let file = t.fds.get(fd)?;
    write(t, &*file, &UserBuffers::single(buf, count), check_offset(offset)?)
}

fn iovecs(t: &Task, iov: UserAddr, iovcnt: i32) -> SysResult<UserBuffers> {
    let n = usize::try_from(iovcnt).map_err(|_| errno!(EINVAL))?;
    t.mm.read_iovecs(iov, n)
}

pub fn sys_readv(t: &mut Task, fd: Fd, iov: UserAddr, iovcnt: i32) -> SysResult<usize> {
    let file = t.fds.get(fd)?;
    read(t, &*file, &iovecs(t, iov, iovcnt)?, None)
}

pub fn sys_writev(t: &mut Task, fd: Fd, iov: UserAddr, iovcnt: i32) -> SysResult<usize> {
    let file = t.fds.get(fd)?;
    write(t, &*file, &iovecs(t, iov, iovcnt)?, None)
}

pub fn sys_close(t: &mut Task, fd: Fd) -> SysResult<()> {
    let file = t.fds.close(fd)?;
    super::lock::release_on_close(t, &file);
    Ok(())
}

pub fn sys_fstat(t: &mut Task, fd: Fd, statbuf: UserRef<Stat>) -> SysResult<()> {
    let st = t.fds.get(fd)?.stat()?;
    super::stat::write_stat(t, statbuf, st)
}

const FIONCLEX: u32 = 0x5450;
const FIOCLEX: u32 = 0x5451;
const FIONBIO: u32 = 0x5421;
const O_NONBLOCK: u32 = 0o4000;

pub fn sys_ioctl(t: &mut Task, fd: Fd, request: u32, arg: u64) -> SysResult<u64> {
    let file = t.fds.get(fd)?;
    crate::landlock::fs::file_may_ioctl(&file, request)?;
    // The requests every file answers the same way.
    match request {
        FIOCLEX | FIONCLEX => t.fds.set_cloexec(fd, request == FIOCLEX).map(|()| 0),
        FIONBIO => {
            let on: i32 = t.mm.read_obj(crate::mm::UserRef::new(UserAddr(arg)))?;
            let flags = file.status_flags();
            file.set_status_flags(if on != 0 { flags | O_NONBLOCK } else { flags & !O_NONBLOCK });
            Ok(0)
        }
        _ => file.ioctl(t, request, arg),
    }
}

const CLOSE_RANGE_UNSHARE: u32 = 2;
const CLOSE_RANGE_CLOEXEC: u32 = 4;

pub fn sys_close_range(t: &mut Task, first: u32, last: u32, flags: u32) -> SysResult<()> {
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return error!(EINVAL);
    }
    if flags & CLOSE_RANGE_UNSHARE != 0 {
        t.fds = std::sync::Arc::new(t.fds.fork());
        t.publish_resources();
    }
    let cap = |v: u32| v.min(i32::MAX as u32) as i32;
    for file in t.fds.close_range(cap(first), cap(last), flags & CLOSE_RANGE_CLOEXEC != 0) {
        super::lock::release_on_close(t, &file);
    }
    Ok(())
}

fn offset_of(pos: i64, flags: i32) -> SysResult<Option<i64>> {
    // preadv2/pwritev2: offset -1 means the file position.
    if pos == -1 && flags >= 0 {
        return Ok(None);
    }
    check_offset(pos)
}

/// RWF_* flags preadv2/pwritev2 accept (HIPRI, DSYNC, SYNC, NOWAIT, APPEND).
pub(super) const RWF_SUPPORTED: i32 = 0x1f;

pub fn sys_preadv(t: &mut Task, fd: Fd, iov: UserAddr, iovcnt: i32, pos: i64) -> SysResult<usize> {
    let file = t.fds.get(fd)?;
    read(t, &*file, &iovecs(t, iov, iovcnt)?, check_offset(pos)?)
}

pub fn sys_pwritev(t: &mut Task, fd: Fd, iov: UserAddr, iovcnt: i32, pos: i64) -> SysResult<usize> {
    let file = t.fds.get(fd)?;
    write(t, &*file, &iovecs(t, iov, iovcnt)?, check_offset(pos)?)
}

pub fn sys_preadv2(t: &mut Task, fd: Fd, iov: UserAddr, iovcnt: i32, pos: i64, _pos_h: i64, flags: i32) -> SysResult<usize> {
    if flags & !RWF_SUPPORTED != 0 {
        return error!(EOPNOTSUPP);
    }
    let file = t.fds.get(fd)?;
    read(t, &*file, &iovecs(t, iov, iovcnt)?, offset_of(pos, flags)?)
}

pub fn sys_pwritev2(t: &mut Task, fd: Fd, iov: UserAddr, iovcnt: i32, pos: i64, _pos_h: i64, flags: i32) -> SysResult<usize> {
    if flags & !RWF_SUPPORTED != 0 {
        return error!(EOPNOTSUPP);
    }
    let file = t.fds.get(fd)?;
    write(t, &*file, &iovecs(t, iov, iovcnt)?, offset_of(pos, flags)?)
}

const O_CLOEXEC: i32 = 0o2000000;
const F_DUPFD: i32 = 0;
const F_GETFD: i32 = 1;
const F_SETFD: i32 = 2;
const F_GETFL: i32 = 3;
const F_ADD_SEALS: i32 = 1033;
const F_GET_SEALS: i32 = 1034;
const F_SETFL: i32 = 4;
const F_DUPFD_CLOEXEC: i32 = 1030;
const F_SETOWN: i32 = 8;
const F_GETOWN: i32 = 9;
const F_SETSIG: i32 = 10;
const F_GETSIG: i32 = 11;
const F_SETOWN_EX: i32 = 15;
const F_GETOWN_EX: i32 = 16;
const O_ASYNC: u32 = 0o20000;
const FD_CLOEXEC: u64 = 1;

fn nofile(t: &Task) -> u64 {
    t.tg.rlimit(crate::task::RLIMIT_NOFILE).cur
}

pub fn sys_dup(t: &mut Task, fd: Fd) -> SysResult<Fd> {
    let file = t.fds.get(fd)?;
    t.fds.install_lowest(file, 0, nofile(t), false)
}

pub fn sys_dup2(t: &mut Task, oldfd: Fd, newfd: Fd) -> SysResult<Fd> {
    let file = t.fds.get(oldfd)?;
    if oldfd == newfd {
        return Ok(newfd);
    }
    sys_dup3_file(t, file, newfd, 0)
}

fn sys_dup3_file(t: &mut Task, file: std::sync::Arc<dyn crate::vfs::FileDescription>, newfd: Fd, flags: i32) -> SysResult<Fd> {
    if newfd.0 < 0 || newfd.0 as u64 >= nofile(t) {
        return error!(EBADF);
    }
    if let Some(old) = t.fds.install_at(newfd, file, flags & O_CLOEXEC != 0) {
        super::lock::release_on_close(t, &old);
    }
    Ok(newfd)
}

pub fn sys_dup3(t: &mut Task, oldfd: Fd, newfd: Fd, flags: i32) -> SysResult<Fd> {
    if flags & !O_CLOEXEC != 0 || oldfd == newfd {
        return error!(EINVAL);
    }
    let file = t.fds.get(oldfd)?;
    sys_dup3_file(t, file, newfd, flags)
}

pub fn sys_fcntl(t: &mut Task, fd: Fd, cmd: i32, arg: u64) -> SysResult<u64> {
    let file = t.fds.get(fd)?;
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = i32::try_from(arg).map_err(|_| errno!(EINVAL))?;
            if min < 0 || min as u64 >= nofile(t) {
                return error!(EINVAL);
            }
            t.fds.install_lowest(file, min, nofile(t), cmd == F_DUPFD_CLOEXEC).map(|f| f.0 as u64)
        }
        F_GETFD => Ok(t.fds.cloexec(fd)? as u64),
        F_SETFD => t.fds.set_cloexec(fd, arg & FD_CLOEXEC != 0).map(|()| 0),
        F_GETFL => Ok(file.status_flags() as u64),
        F_SETFL => {
            let was = file.status_flags();
            file.set_status_flags(arg as u32);
            let now = file.status_flags();
            if (was ^ now) & O_ASYNC != 0 {
                fasync::set_async(&file, fd.0, now & O_ASYNC != 0);
            }
            Ok(0)
        }
        // F_GETOWN says a process group as its negated id.
        F_GETOWN => Ok(match fasync::owner(&file) {
            (fasync::F_OWNER_PGRP, id) => -(id as i64) as u64,
            (_, id) => id as u64,
        }),
        F_SETOWN => {
            let who = arg as i32;
            let (kind, id) = if who < 0 { (fasync::F_OWNER_PGRP, who.checked_neg().ok_or_else(|| errno!(EINVAL))?) } else { (fasync::F_OWNER_PID, who) };
            fasync::set_owner(t, &file, kind, id).map(|()| 0)
        }
        F_GETOWN_EX => {
            let (kind, id) = fasync::owner(&file);
            t.mm.write_obj(crate::mm::UserRef::<[i32; 2]>::new(UserAddr(arg)), &[kind, id]).map(|()| 0)
        }
        F_SETOWN_EX => {
            let [kind, id]: [i32; 2] = t.mm.read_obj(crate::mm::UserRef::new(UserAddr(arg)))?;
            fasync::set_owner(t, &file, kind, id).map(|()| 0)
        }
        F_GETSIG => Ok(u64::from(fasync::signal(&file))),
        F_SETSIG => fasync::set_signal(&file, arg).map(|()| 0),
        super::lock::F_GETLK | super::lock::F_SETLK | super::lock::F_SETLKW | super::lock::F_OFD_GETLK | super::lock::F_OFD_SETLK | super::lock::F_OFD_SETLKW => {
            super::lock::fcntl_lock(t, file, cmd, crate::mm::UserRef::new(UserAddr(arg)))
        }
        super::lock::F_SETLEASE => super::lock::fcntl_setlease(t, file, fd, arg),
        super::lock::F_GETLEASE => super::lock::fcntl_getlease(t, &file),
        super::lock::F_NOTIFY => crate::fs::dnotify::fcntl(t, &file, fd.0, arg).map(|()| 0),
        crate::fs::pipe::F_SETPIPE_SZ | crate::fs::pipe::F_GETPIPE_SZ => crate::fs::pipe::fcntl_pipe_size(file.as_ref(), cmd, arg),
        F_ADD_SEALS => file.add_seals(u32::try_from(arg).map_err(|_| errno!(EINVAL))?).map(|()| 0),
        F_GET_SEALS => file.seals().map(u64::from),
        _ => error!(EINVAL),
    }
}
