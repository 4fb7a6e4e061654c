//! Advisory locks: fcntl record locks (F_GETLK/F_SETLK/F_SETLKW and the OFD
//! variants) and flock; leases (F_SETLEASE, F_GETLEASE) and their breaking.

use crate::mm::UserRef;
use crate::task::Task;
use crate::vfs::locks::{FileId, Lock, Owner, F_RDLCK, F_UNLCK, F_WRLCK};
use crate::vfs::inode::S_IFREG;
use crate::vfs::{Fd, FileDescription, OpenFlags};
use rvisor_abi::{consts, errno, error, SysResult};
use std::sync::Arc;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const F_GETLK: i32 = 5;
pub const F_SETLK: i32 = 6;
pub const F_SETLKW: i32 = 7;
pub const F_OFD_GETLK: i32 = 36;
pub const F_OFD_SETLK: i32 = 37;
pub const F_OFD_SETLKW: i32 = 38;
pub const F_SETLEASE: i32 = 1024;
pub const F_GETLEASE: i32 = 1025;
pub const F_NOTIFY: i32 = 1026;

/// `struct flock`.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Flock {
    l_type: i16,
    l_whence: i16,
    pad: i32,
    l_start: i64,
    l_len: i64,
    l_pid: i32,
    pad2: i32,
}

/// The identity locks are keyed by: the file's inode. A file without a name in
/// the tree (a pipe, a socket, an inherited standard stream) is keyed by its
/// device and inode numbers, with the top bit set, which no inode's address has:
/// `make --output-sync` locks its standard output.
pub fn inode_key(file: &Arc<dyn FileDescription>) -> SysResult<usize> {
    if let Some(d) = file.dentry() {
        return Ok(crate::vfs::inode::inode_key(&d.inode));
    }
    use std::hash::{Hash, Hasher};
    let st = file.stat()?;
    let mut h = std::hash::DefaultHasher::new();
    (st.st_dev, st.st_ino).hash(&mut h);
    Ok((h.finish() as usize) | 1 << (usize::BITS - 1))
}

/// What /proc/locks will name `file` by.
fn file_id(file: &Arc<dyn FileDescription>) -> SysResult<FileId> {
    if let Some(d) = file.dentry() {
        return Ok(FileId::Inode(Arc::downgrade(&d.inode)));
    }
    let st = file.stat()?;
    Ok(FileId::Numbers { dev: st.st_dev, ino: st.st_ino })
}

/// The owner of `file`'s own locks (OFD and flock), noted as holding locks on
/// `key` so that they go with the description. EBADF for a file that cannot hold
/// them (O_PATH).
fn file_owner(t: &Task, file: &Arc<dyn FileDescription>, key: usize) -> SysResult<Owner> {
    let locks = file.file_locks().ok_or_else(|| errno!(EBADF))?;
    locks.note(&t.kernel.locks, key);
    Ok(locks.owner())
}

pub fn fcntl_lock(t: &mut Task, file: Arc<dyn FileDescription>, cmd: i32, arg: UserRef<Flock>) -> SysResult<u64> {
    let fl = t.mm.read_obj(arg)?;
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    if ofd && fl.l_pid != 0 {
        return error!(EINVAL);
    }
    let key = inode_key(&file)?;
    let owner = if ofd { file_owner(t, &file, key)? } else { Owner::Process(t.tg.tgid) };
    let base = match fl.l_whence {
        0 => 0,
        1 => file.seek(0, 1)?,
        2 => file.stat()?.st_size,
        _ => return error!(EINVAL),
    };
    let mut start = base.checked_add(fl.l_start).ok_or_else(|| errno!(EOVERFLOW))?;
    let mut end = match fl.l_len {
        0 => i64::MAX,
        n if n > 0 => start.checked_add(n).ok_or_else(|| errno!(EOVERFLOW))?,
        n => {
            let e = start;
            start = start.checked_add(n).ok_or_else(|| errno!(EINVAL))?;
            e
        }
    };
    if start < 0 {
        return error!(EINVAL);
    }
    if end == i64::MAX {
        end = i64::MAX;
    }
    let kind = fl.l_type;
    if !matches!(kind, F_RDLCK | F_WRLCK | F_UNLCK) {
        return error!(EINVAL);
    }
    let pid = if ofd { -1 } else { t.tg.tgid };
    let lock = Lock { owner, kind, pid, start: start as u64, end: if end == i64::MAX { u64::MAX } else { end as u64 } };
    let locks = &t.kernel.locks;
    match cmd {
        F_GETLK | F_OFD_GETLK => {
            let out = match locks.conflict(key, &lock, false) {
                Some(c) => Flock {
                    l_type: c.kind,
                    l_whence: 0,
                    pad: 0,
                    l_start: c.start as i64,
                    l_len: if c.end == u64::MAX { 0 } else { (c.end - c.start) as i64 },
                    l_pid: match c.owner {
                        Owner::Process(p) => p,
                        Owner::File(_) => -1,
                    },
                    pad2: 0,
                },
                None => Flock { l_type: F_UNLCK, ..fl },
            };
            t.mm.write_obj(arg, &out)?;
            Ok(0)
        }
        _ => {
            let access = OpenFlags(file.status_flags());
            if (kind == F_RDLCK && !access.readable()) || (kind == F_WRLCK && !access.writable()) {
                return error!(EBADF);
            }
            set_waiting(t, key, &file_id(&file)?, lock, false, matches!(cmd, F_SETLKW | F_OFD_SETLKW))?;
            Ok(0)
        }
    }
}

/// Takes a lock, waiting for conflicting ones to go if `wait` (EINTR on a signal).
fn set_waiting(t: &Task, key: usize, id: &FileId, lock: Lock, flock: bool, wait: bool) -> SysResult<()> {
    let locks = &t.kernel.locks;
    match locks.set(key, id, lock, flock) {
        Err(e) if wait && e.code == rvisor_abi::ErrnoCode::EAGAIN => {
            locks.waiters.register(&t.thread);
            let mut done = false;
            let r = t.block_until(None, || {
                done = locks.set(key, id, lock, flock).is_ok();
                done
            });
            locks.waiters.unregister(&t.thread);
            r.map_err(|e| if e.code == rvisor_abi::ErrnoCode::ERESTARTSYS { errno!(EINTR) } else { e })
        }
        r => r,
    }
}

const LOCK_SH: i32 = 1;
const LOCK_EX: i32 = 2;
const LOCK_NB: i32 = 4;
const LOCK_UN: i32 = 8;

pub fn sys_flock(t: &mut Task, fd: Fd, op: i32) -> SysResult<()> {
    let file = t.fds.get(fd)?;
    let kind = match op & !LOCK_NB {
        LOCK_SH => F_RDLCK,
        LOCK_EX => F_WRLCK,
        LOCK_UN => F_UNLCK,
        _ => return error!(EINVAL),
    };
    let key = inode_key(&file)?;
    let lock = Lock { owner: file_owner(t, &file, key)?, kind, pid: t.tg.tgid, start: 0, end: u64::MAX };
    set_waiting(t, key, &file_id(&file)?, lock, true, op & LOCK_NB == 0)
}

/// Closing a descriptor (close, dup2 over it, close_range, close-on-exec) drops
/// the process's record locks on the file, and the dnotify marks it set through
/// the description. The description's own locks and lease go when it does
/// (`FileLocks`).
pub fn release_on_close(t: &Task, file: &Arc<dyn FileDescription>) {
    release_process_locks(&t.kernel.locks, t.tg.tgid, file);
    crate::fs::dnotify::flush(t, file);
}

/// The same for a descriptor of process `tgid` that another replaced (seccomp's
/// SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SETFD).
pub fn release_process_locks(locks: &crate::vfs::locks::LockTable, tgid: i32, file: &Arc<dyn FileDescription>) {
    if let Ok(key) = inode_key(file) {
        locks.release(key, Owner::Process(tgid));
    }
}

/// fcntl F_SETLEASE, as Linux's fcntl_setlease: EINVAL for a type other than
/// F_RDLCK, F_WRLCK and F_UNLCK; EACCES unless the caller owns the file or has
/// CAP_LEASE; EINVAL for anything but a regular file; then the lease (see
/// `Leases::set`), whose breaks signal the caller's process, now the owner.
pub fn fcntl_setlease(t: &mut Task, file: Arc<dyn FileDescription>, fd: Fd, arg: u64) -> SysResult<u64> {
    let kind = match arg {
        0 => F_RDLCK,
        1 => F_WRLCK,
        2 => F_UNLCK,
        _ => return error!(EINVAL),
    };
    let st = file.stat()?;
    // capable(CAP_LEASE): in the sandbox's first user namespace only.
    let creds = t.thread.fs_creds();
    if st.st_uid != creds.uid && !(creds.ns.is_none() && creds.capable(consts::CAP_LEASE)) {
        return error!(EACCES);
    }
    let (Some(d), Some(locks)) = (file.dentry(), file.file_locks()) else { return error!(EINVAL) };
    if d.inode.kind() != S_IFREG {
        return error!(EINVAL);
    }
    let key = crate::vfs::inode::inode_key(&d.inode);
    let table = &t.kernel.locks;
    if kind == F_UNLCK {
        table.leases.unlock(key, locks.owner())?;
        crate::fs::fasync::clear_owner(&file);
        return Ok(0);
    }
    locks.note(table, key);
    let own = locks.open.get().map_or((false, false), |o| (o.read_only, o.write));
    table.leases.set(key, file_id(&file)?, locks.owner(), Arc::downgrade(&file), fd.0, kind, own, t.tg.tgid)?;
    crate::fs::fasync::own(t, &file)?;
    Ok(0)
}

/// fcntl F_GETLEASE: the description's lease type, or the type a break is taking
/// it to; F_UNLCK if none.
pub fn fcntl_getlease(t: &Task, file: &Arc<dyn FileDescription>) -> SysResult<u64> {
    let (Some(d), Some(locks)) = (file.dentry(), file.file_locks()) else { return Ok(F_UNLCK as u64) };
    Ok(t.kernel.locks.leases.get(crate::vfs::inode::inode_key(&d.inode), locks.owner()) as u64)
}

/// An open with `flags` (or a truncate, as O_WRONLY) of the regular file `key`
/// breaks the leases it conflicts with (Linux's __break_lease): their holders
/// get their signal, then the opener waits until none conflicts (holders gave
/// way, or lease-break-time forced them); EWOULDBLOCK (EAGAIN) at once with O_NONBLOCK;
/// ERESTARTSYS on a signal, as Linux's interruptible wait.
pub fn break_lease(t: &Task, key: usize, flags: u32) -> SysResult<()> {
    let leases = &t.kernel.locks.leases;
    let write = flags & OpenFlags::ACCMODE != 0;
    let b = leases.start_break(key, write);
    for (file, fd) in b.signal {
        if let Some(file) = file.upgrade() {
            crate::fs::fasync::send_msg(&file, fd);
        }
    }
    if !b.blocked {
        return Ok(());
    }
    if flags & OpenFlags::NONBLOCK != 0 {
        return error!(EAGAIN);
    }
    while let Some(until) = leases.waiting(key, write) {
        leases.waiters.register(&t.thread);
        let r = t.block_until(until, || leases.waiting(key, write).is_none());
        leases.waiters.unregister(&t.thread);
        match r {
            Err(e) if e.code == rvisor_abi::ErrnoCode::ETIMEDOUT => {}
            r => return r,
        }
    }
    Ok(())
}
