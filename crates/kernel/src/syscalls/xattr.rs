//! Extended attributes: the get, set, list and remove calls, by path (following
//! symlinks or not), by descriptor, and (the xattrat calls) from a directory
//! descriptor with at-flags. tmpfs keeps them (so does the overlay root,
//! by copying a host file up first, attributes and all); host files served by
//! the gofer have their user ones (and security ones to read: the gofer gives
//! no trusted or system ones); other file systems store none. As Linux's tmpfs: the user, trusted and security namespaces (no
//! POSIX ACLs under system), user attributes only on regular files and
//! directories, trusted ones only for root. A file without a name (a pipe, a
//! socket) keeps none, but the namespace rules come first there too.

use super::args::UserCStr;
use super::landlock::read_sized;
use super::open::{lookup_at, read_path, PathFile, AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW};
use crate::task::Task;
use crate::vfs::inode::{Inode, XattrSet, S_IFDIR, S_IFMT, S_IFREG};
use crate::vfs::{Fd, Follow};
use rvisor_abi::{consts, error, SysResult, UserAddr};
use std::sync::Arc;
use zerocopy::{FromBytes, Immutable, IntoBytes};

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

/// The name as Linux's import_xattr_name takes it: empty or too long is ERANGE.
fn read_name(t: &Task, name: UserCStr) -> SysResult<Vec<u8>> {
    let n = t.mm.read_cstr(name.0, XATTR_NAME_MAX + 1)?;
    if n.is_empty() || n.len() > XATTR_NAME_MAX {
        return error!(ERANGE);
    }
    Ok(n)
}

/// The name's namespace: checked once the file is found, as Linux's
/// xattr_resolve_name does (EOPNOTSUPP for none it knows).
fn namespace(n: &[u8]) -> SysResult<Namespace> {
    Ok(if n.starts_with(b"user.") {
        Namespace::User
    } else if n.starts_with(b"trusted.") {
        Namespace::Trusted
    } else if n.starts_with(b"security.") {
        Namespace::Security
    } else if n.starts_with(b"system.") {
        Namespace::System
    } else {
        return error!(EOPNOTSUPP);
    })
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

/// Whose attributes a call names, resolved only after the name is read (a
/// name too long or empty is ERANGE before any lookup, as Linux's
/// path_*xattrat do).
enum Where {
    /// A path from `dirfd` (AT_FDCWD for the plain calls), with its at-flags.
    Path { dirfd: i32, path: UserCStr, at_flags: u32 },
    /// An open descriptor (the f* calls).
    Fd(Fd),
}

impl Where {
    /// The at-flags the xattrat calls take: EINVAL for others.
    fn at(dirfd: i32, path: UserCStr, at_flags: u32) -> SysResult<Where> {
        if at_flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) as u32 != 0 {
            return error!(EINVAL);
        }
        Ok(Where::Path { dirfd, path, at_flags })
    }

    fn plain(path: UserCStr, follow: Follow) -> Where {
        let at_flags = if matches!(follow, Follow::Yes) { 0 } else { AT_SYMLINK_NOFOLLOW as u32 };
        Where::Path { dirfd: AT_FDCWD, path, at_flags }
    }

    /// With AT_EMPTY_PATH, an empty or NULL path names the descriptor `dirfd`
    /// itself. Linux's get and set then look AT_FDCWD up as the cwd
    /// (`fdcwd_is_cwd`); its list and remove take AT_FDCWD as a descriptor, EBADF.
    fn resolve(self, t: &Task, fdcwd_is_cwd: bool) -> SysResult<Target> {
        let (dirfd, path, at_flags) = match self {
            Where::Fd(fd) => return by_fd(t, fd),
            Where::Path { dirfd, path, at_flags } => (dirfd, path, at_flags),
        };
        let empty_path = at_flags & AT_EMPTY_PATH as u32 != 0;
        let p = if empty_path && path.0.is_null() { Vec::new() } else { read_path(t, path)? };
        if empty_path && p.is_empty() && (dirfd >= 0 || !fdcwd_is_cwd) {
            return by_fd(t, Fd(dirfd));
        }
        let follow = if at_flags & AT_SYMLINK_NOFOLLOW as u32 != 0 { Follow::No } else { Follow::Yes };
        Ok(Target::Inode(lookup_at(t, dirfd, &p, follow, empty_path)?.inode.clone()))
    }
}

/// A descriptor's file: an O_PATH one has no attributes to give (EBADF, as
/// Linux's fdget skips it).
fn by_fd(t: &Task, fd: Fd) -> SysResult<Target> {
    let file = t.fds.get(fd)?;
    if PathFile::of(&file).is_some() {
        return error!(EBADF);
    }
    Ok(match file.dentry() {
        Some(d) => Target::Inode(d.inode.clone()),
        None => Target::Nameless(file.stat()?.st_mode & S_IFMT),
    })
}

fn get(t: &Task, at: Where, name: UserCStr, value: UserAddr, size: usize) -> SysResult<usize> {
    let name = read_name(t, name)?;
    let target = at.resolve(t, true)?;
    let ns = namespace(&name)?;
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

fn list(t: &Task, at: Where, out: UserAddr, size: usize) -> SysResult<usize> {
    let Target::Inode(inode) = at.resolve(t, false)? else { return Ok(0) };
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

fn set(t: &Task, at: Where, name: UserCStr, value: UserAddr, size: usize, flags: i32) -> SysResult<()> {
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return error!(EINVAL);
    }
    let mode = XattrSet { create: flags & XATTR_CREATE != 0, replace: flags & XATTR_REPLACE != 0 };
    let name = read_name(t, name)?;
    if size > XATTR_SIZE_MAX {
        return error!(E2BIG);
    }
    let mut v = vec![0u8; size];
    t.mm.read_bytes(value, &mut v)?;
    let target = at.resolve(t, true)?;
    let ns = namespace(&name)?;
    permitted(t, target.kind(), ns, true)?;
    target.inode()?.setxattr(&name, &v, mode)
}

fn remove(t: &Task, at: Where, name: UserCStr) -> SysResult<()> {
    let name = read_name(t, name)?;
    let target = at.resolve(t, false)?;
    let ns = namespace(&name)?;
    permitted(t, target.kind(), ns, true)?;
    target.inode()?.removexattr(&name)
}

pub fn sys_getxattr(t: &mut Task, path: UserCStr, name: UserCStr, value: UserAddr, size: usize) -> SysResult<usize> {
    get(t, Where::plain(path, Follow::Yes), name, value, size)
}

pub fn sys_lgetxattr(t: &mut Task, path: UserCStr, name: UserCStr, value: UserAddr, size: usize) -> SysResult<usize> {
    get(t, Where::plain(path, Follow::No), name, value, size)
}

pub fn sys_fgetxattr(t: &mut Task, fd: Fd, name: UserCStr, value: UserAddr, size: usize) -> SysResult<usize> {
    get(t, Where::Fd(fd), name, value, size)
}

pub fn sys_listxattr(t: &mut Task, path: UserCStr, list_: UserAddr, size: usize) -> SysResult<usize> {
    list(t, Where::plain(path, Follow::Yes), list_, size)
}

pub fn sys_llistxattr(t: &mut Task, path: UserCStr, list_: UserAddr, size: usize) -> SysResult<usize> {
    list(t, Where::plain(path, Follow::No), list_, size)
}

pub fn sys_flistxattr(t: &mut Task, fd: Fd, list_: UserAddr, size: usize) -> SysResult<usize> {
    list(t, Where::Fd(fd), list_, size)
}

pub fn sys_setxattr(t: &mut Task, path: UserCStr, name: UserCStr, value: UserAddr, size: usize, flags: i32) -> SysResult<()> {
    set(t, Where::plain(path, Follow::Yes), name, value, size, flags)
}

pub fn sys_lsetxattr(t: &mut Task, path: UserCStr, name: UserCStr, value: UserAddr, size: usize, flags: i32) -> SysResult<()> {
    set(t, Where::plain(path, Follow::No), name, value, size, flags)
}

pub fn sys_fsetxattr(t: &mut Task, fd: Fd, name: UserCStr, value: UserAddr, size: usize, flags: i32) -> SysResult<()> {
    set(t, Where::Fd(fd), name, value, size, flags)
}

pub fn sys_removexattr(t: &mut Task, path: UserCStr, name: UserCStr) -> SysResult<()> {
    remove(t, Where::plain(path, Follow::Yes), name)
}

pub fn sys_lremovexattr(t: &mut Task, path: UserCStr, name: UserCStr) -> SysResult<()> {
    remove(t, Where::plain(path, Follow::No), name)
}

pub fn sys_fremovexattr(t: &mut Task, fd: Fd, name: UserCStr) -> SysResult<()> {
    remove(t, Where::Fd(fd), name)
}

/// The xattrat calls' struct xattr_args: where the value is, its size, and
/// setxattrat's XATTR_CREATE/REPLACE (getxattrat takes none).
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct XattrArgs {
    value: u64,
    size: u32,
    flags: u32,
}

/// The first struct xattr_args (XATTR_ARGS_SIZE_VER0): any shorter is EINVAL.
const XATTR_ARGS_SIZE_VER0: usize = 16;

pub fn sys_setxattrat(t: &mut Task, dirfd: i32, path: UserCStr, at_flags: u32, name: UserCStr, uargs: UserAddr, args_size: usize) -> SysResult<()> {
    let a: XattrArgs = read_sized(t, uargs, args_size, XATTR_ARGS_SIZE_VER0)?;
    let at = Where::at(dirfd, path, at_flags)?;
    set(t, at, name, UserAddr(a.value), a.size as usize, a.flags as i32)
}

pub fn sys_getxattrat(t: &mut Task, dirfd: i32, path: UserCStr, at_flags: u32, name: UserCStr, uargs: UserAddr, args_size: usize) -> SysResult<usize> {
    let a: XattrArgs = read_sized(t, uargs, args_size, XATTR_ARGS_SIZE_VER0)?;
    if a.flags != 0 {
        return error!(EINVAL);
    }
    let at = Where::at(dirfd, path, at_flags)?;
    get(t, at, name, UserAddr(a.value), a.size as usize)
}

pub fn sys_listxattrat(t: &mut Task, dirfd: i32, path: UserCStr, at_flags: u32, list_: UserAddr, size: usize) -> SysResult<usize> {
    let at = Where::at(dirfd, path, at_flags)?;
    list(t, at, list_, size)
}

pub fn sys_removexattrat(t: &mut Task, dirfd: i32, path: UserCStr, at_flags: u32, name: UserCStr) -> SysResult<()> {
    let at = Where::at(dirfd, path, at_flags)?;
    remove(t, at, name)
}
