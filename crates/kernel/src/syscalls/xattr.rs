//! Extended attributes. No file system in the sandbox stores any yet: reads find
//! none (ENODATA), lists are empty, and setting one is not supported.

use super::args::UserCStr;
use super::open::{lookup_at, read_path, AT_FDCWD};
use crate::task::Task;
use crate::vfs::{Fd, Follow};
use rvisor_abi::{error, SysResult, UserAddr};

/// Longest attribute name Linux accepts (XATTR_NAME_MAX).
const XATTR_NAME_MAX: usize = 255;

fn check_name(t: &Task, name: UserCStr) -> SysResult<()> {
    let n = t.mm.read_cstr(name.0, XATTR_NAME_MAX + 1)?;
    if n.is_empty() || n.len() > XATTR_NAME_MAX {
        return error!(ERANGE);
    }
    Ok(())
}

fn exists(t: &Task, path: UserCStr, follow: Follow) -> SysResult<()> {
    let p = read_path(t, path)?;
    lookup_at(t, AT_FDCWD, &p, follow, false).map(|_| ())
}

pub fn sys_getxattr(t: &mut Task, path: UserCStr, name: UserCStr, _value: UserAddr, _size: usize) -> SysResult<usize> {
    exists(t, path, Follow::Yes)?;
    check_name(t, name)?;
    error!(ENODATA)
}

pub fn sys_lgetxattr(t: &mut Task, path: UserCStr, name: UserCStr, _value: UserAddr, _size: usize) -> SysResult<usize> {
    exists(t, path, Follow::No)?;
    check_name(t, name)?;
    error!(ENODATA)
}

pub fn sys_fgetxattr(t: &mut Task, fd: Fd, name: UserCStr, _value: UserAddr, _size: usize) -> SysResult<usize> {
    t.fds.get(fd)?;
    check_name(t, name)?;
    error!(ENODATA)
}

pub fn sys_listxattr(t: &mut Task, path: UserCStr, _list: UserAddr, _size: usize) -> SysResult<usize> {
    exists(t, path, Follow::Yes).map(|()| 0)
}

pub fn sys_llistxattr(t: &mut Task, path: UserCStr, _list: UserAddr, _size: usize) -> SysResult<usize> {
    exists(t, path, Follow::No).map(|()| 0)
}

pub fn sys_flistxattr(t: &mut Task, fd: Fd, _list: UserAddr, _size: usize) -> SysResult<usize> {
    t.fds.get(fd).map(|_| 0)
}

pub fn sys_setxattr(t: &mut Task, path: UserCStr, name: UserCStr, _value: UserAddr, _size: usize, _flags: i32) -> SysResult<()> {
    exists(t, path, Follow::Yes)?;
    check_name(t, name)?;
    error!(EOPNOTSUPP)
}

pub fn sys_fsetxattr(t: &mut Task, fd: Fd, name: UserCStr, _value: UserAddr, _size: usize, _flags: i32) -> SysResult<()> {
    t.fds.get(fd)?;
    check_name(t, name)?;
    error!(EOPNOTSUPP)
}
