//! Advisory locks: fcntl record locks (F_GETLK/F_SETLK/F_SETLKW and the OFD
//! variants) and flock.

use crate::mm::UserRef;
use crate::task::Task;
use crate::vfs::locks::{Lock, Owner, F_RDLCK, F_UNLCK, F_WRLCK};
use crate::vfs::{Fd, FileDescription, OpenFlags};
use rvisor_abi::{errno, error, SysResult};
use std::sync::Arc;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const F_GETLK: i32 = 5;
pub const F_SETLK: i32 = 6;
pub const F_SETLKW: i32 = 7;
pub const F_OFD_GETLK: i32 = 36;
pub const F_OFD_SETLK: i32 = 37;
pub const F_OFD_SETLKW: i32 = 38;

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
    let lock = Lock { owner, kind, start: start as u64, end: if end == i64::MAX { u64::MAX } else { end as u64 } };
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
            set_waiting(t, key, lock, false, matches!(cmd, F_SETLKW | F_OFD_SETLKW))?;
            Ok(0)
        }
    }
}

/// Takes a lock, waiting for conflicting ones to go if `wait` (EINTR on a signal).
fn set_waiting(t: &Task, key: usize, lock: Lock, flock: bool, wait: bool) -> SysResult<()> {
    let locks = &t.kernel.locks;
    match locks.set(key, lock, flock) {
        Err(e) if wait && e.code == rvisor_abi::ErrnoCode::EAGAIN => {
            locks.waiters.register(&t.thread);
            let mut done = false;
            let r = t.block_until(None, || {
                done = locks.set(key, lock, flock).is_ok();
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
    let lock = Lock { owner: file_owner(t, &file, key)?, kind, start: 0, end: u64::MAX };
    set_waiting(t, key, lock, true, op & LOCK_NB == 0)
}

/// Closing a descriptor (close, dup2 over it, close_range, close-on-exec) drops
/// the process's record locks on the file. The description's own locks go when it
/// does (`FileLocks`).
pub fn release_on_close(t: &Task, file: &Arc<dyn FileDescription>) {
    release_process_locks(&t.kernel.locks, t.tg.tgid, file)
}

/// The same for a descriptor of process `tgid` that another replaced (seccomp's
/// SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SETFD).
pub fn release_process_locks(locks: &crate::vfs::locks::LockTable, tgid: i32, file: &Arc<dyn FileDescription>) {
    if let Ok(key) = inode_key(file) {
        locks.release(key, Owner::Process(tgid));
    }
}
