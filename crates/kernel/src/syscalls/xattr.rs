//! Extended attributes: the get, set, list and remove calls, by path (following
//! symlinks or not) and by descriptor. tmpfs keeps them (so does the overlay root,
//! by copying a host file up first); host files have none and other file systems
//! store none. As Linux's tmpfs: the user, trusted and security namespaces (no
//! POSIX ACLs under system), user attributes only on regular files and
//! directories, trusted ones only for root. A file without a name (a pipe, a
//! socket) keeps none, but the namespace rules come first there too.

use super::args::UserCStr;
use super::open::{lookup_at, read_path, AT_FDCWD};
use crate::task::Task;
use crate::vfs::inode::{Inode, XattrSet, S_IFDIR, S_IFMT, S_IFREG};
use crate::vfs::{Fd, Follow};
use rvisor_abi::{consts, error, SysResult, UserAddr};
use std::sync::Arc;

/// Longest attribute name Linux accepts (XATTR_NAME_MAX).
const XATTR_NAME_MAX: usize = 255;
/// Largest value (XATTR_SIZE_MAX), and largest list (XATTR_LIST_MAX).
const XATTR_SIZE_MAX: usize = 65536;
const XATTR_CREATE: i32 = 1;
const XATTR_REPLACE: i32 = 2;

/// Where an attribute's name puts it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Namespace {
    User,
    Trusted,
    Security,
    System,
}

fn read_name(t: &Task, name: UserCStr) -> SysResult<(Vec<u8>, Namespace)> {
    let n = t.mm.read_cstr(name.0, XATTR_NAME_MAX + 1)?;
    if n.is_empty() || n.len() > XATTR_NAME_MAX {
        return error!(ERANGE);
    }
    let ns = if n.starts_with(b"user.") {
        Namespace::User
    } else if n.starts_with(b"trusted.") {
        Namespace::Trusted
    } else if n.starts_with(b"security.") {
        Namespace::Security
    } else if n.starts_with(b"system.") {
        Namespace::System
    } else {
        return error!(EOPNOTSUPP);
    };
    Ok((n, ns))
}

/// Linux's xattr_permission, as far as it goes here: user attributes only on
/// regular files and directories (elsewhere none can be read, none written),
/// trusted ones only for root; no POSIX ACLs.
fn permitted(t: &Task, kind: u32, ns: Namespace, write: bool) -> SysResult<()> {
    match ns {
        Namespace::User if !matches!(kind, S_IFREG | S_IFDIR) => {
            if write { error!(EPERM) } else { error!(ENODATA) }
        }
        Namespace::Trusted if !t.tg.capable(consts::CAP_SYS_ADMIN) => {
            if write { error!(EPERM) } else { error!(ENODATA) }
        }
        Namespace::System => {
            if write { error!(EOPNOTSUPP) } else { error!(ENODATA) }
        }
        _ => Ok(()),
    }
}

/// Whose attributes: a file's inode, or a file without a name (its type).
enum Target {
    Inode(Arc<dyn Inode>),
    Nameless(u32),
}

impl Target {
    fn kind(&self) -> u32 {
        match self {
            Target::Inode(i) => i.kind(),
            Target::Nameless(k) => *k,
        }
    }

    fn inode(&self) -> SysResult<&Arc<dyn Inode>> {
        match self {
            Target::Inode(i) => Ok(i),
            Target::Nameless(_) => error!(EOPNOTSUPP),
        }
    }
}

fn by_path(t: &Task, path: UserCStr, follow: Follow) -> SysResult<Target> {
    let p = read_path(t, path)?;
    Ok(Target::Inode(lookup_at(t, AT_FDCWD, &p, follow, false)?.inode.clone()))
}

fn by_fd(t: &Task, fd: Fd) -> SysResult<Target> {
    let file = t.fds.get(fd)?;
    Ok(match file.dentry() {
        Some(d) => Target::Inode(d.inode.clone()),
        None => Target::Nameless(file.stat()?.st_mode & S_IFMT),
    })
}

fn get(t: &Task, target: Target, name: UserCStr, value: UserAddr, size: usize) -> SysResult<usize> {
    let (name, ns) = read_name(t, name)?;
    permitted(t, target.kind(), ns, false)?;
    let v = target.inode()?.getxattr(&name)?;
    if size == 0 {
        return Ok(v.len());
    }
    if v.len() > size {
        return error!(ERANGE);
    }
    t.mm.write_bytes(value, &v)?;
    Ok(v.len())
}

fn list(t: &Task, target: Target, out: UserAddr, size: usize) -> SysResult<usize> {
    let Target::Inode(inode) = target else { return Ok(0) };
    let trusted = t.tg.capable(consts::CAP_SYS_ADMIN);
    let mut names = Vec::new();
    for n in inode.listxattr()? {
        if n.starts_with(b"trusted.") && !trusted {
            continue;
        }
        names.extend_from_slice(&n);
        names.push(0);
    }
    if size == 0 {
        return Ok(names.len());
    }
    if names.len() > size.min(XATTR_SIZE_MAX) {
        return error!(ERANGE);
    }
    t.mm.write_bytes(out, &names)?;
    Ok(names.len())
}

fn set(t: &Task, target: Target, name: UserCStr, value: UserAddr, size: usize, flags: i32) -> SysResult<()> {
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return error!(EINVAL);
    }
    let mode = XattrSet { create: flags & XATTR_CREATE != 0, replace: flags & XATTR_REPLACE != 0 };
    let (name, ns) = read_name(t, name)?;
    if size > XATTR_SIZE_MAX {
        return error!(E2BIG);
    }
    let mut v = vec![0u8; size];
    t.mm.read_bytes(value, &mut v)?;
    permitted(t, target.kind(), ns, true)?;
    target.inode()?.setxattr(&name, &v, mode)
}

fn remove(t: &Task, target: Target, name: UserCStr) -> SysResult<()> {
    let (name, ns) = read_name(t, name)?;
    permitted(t, target.kind(), ns, true)?;
    target.inode()?.removexattr(&name)
}

pub fn sys_getxattr(t: &mut Task, path: UserCStr, name: UserCStr, value: UserAddr, size: usize) -> SysResult<usize> {
    let i = by_path(t, path, Follow::Yes)?;
    get(t, i, name, value, size)
}

pub fn sys_lgetxattr(t: &mut Task, path: UserCStr, name: UserCStr, value: UserAddr, size: usize) -> SysResult<usize> {
    let i = by_path(t, path, Follow::No)?;
    get(t, i, name, value, size)
}

pub fn sys_fgetxattr(t: &mut Task, fd: Fd, name: UserCStr, value: UserAddr, size: usize) -> SysResult<usize> {
    let i = by_fd(t, fd)?;
    get(t, i, name, value, size)
}

pub fn sys_listxattr(t: &mut Task, path: UserCStr, list_: UserAddr, size: usize) -> SysResult<usize> {
    let i = by_path(t, path, Follow::Yes)?;
    list(t, i, list_, size)
}

pub fn sys_llistxattr(t: &mut Task, path: UserCStr, list_: UserAddr, size: usize) -> SysResult<usize> {
    let i = by_path(t, path, Follow::No)?;
    list(t, i, list_, size)
}

pub fn sys_flistxattr(t: &mut Task, fd: Fd, list_: UserAddr, size: usize) -> SysResult<usize> {
    let i = by_fd(t, fd)?;
    list(t, i, list_, size)
}

pub fn sys_setxattr(t: &mut Task, path: UserCStr, name: UserCStr, value: UserAddr, size: usize, flags: i32) -> SysResult<()> {
    let i = by_path(t, path, Follow::Yes)?;
    set(t, i, name, value, size, flags)
}

pub fn sys_lsetxattr(t: &mut Task, path: UserCStr, name: UserCStr, value: UserAddr, size: usize, flags: i32) -> SysResult<()> {
    let i = by_path(t, path, Follow::No)?;
    set(t, i, name, value, size, flags)
}

pub fn sys_fsetxattr(t: &mut Task, fd: Fd, name: UserCStr, value: UserAddr, size: usize, flags: i32) -> SysResult<()> {
    let i = by_fd(t, fd)?;
    set(t, i, name, value, size, flags)
}

pub fn sys_removexattr(t: &mut Task, path: UserCStr, name: UserCStr) -> SysResult<()> {
    let i = by_path(t, path, Follow::Yes)?;
    remove(t, i, name)
}

pub fn sys_lremovexattr(t: &mut Task, path: UserCStr, name: UserCStr) -> SysResult<()> {
    let i = by_path(t, path, Follow::No)?;
    remove(t, i, name)
}

pub fn sys_fremovexattr(t: &mut Task, fd: Fd, name: UserCStr) -> SysResult<()> {
    let i = by_fd(t, fd)?;
    remove(t, i, name)
}
