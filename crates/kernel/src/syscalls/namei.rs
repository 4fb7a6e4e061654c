//! Calls that change names and attributes: mkdir, unlink, rmdir, rename, symlink,
//! link, chmod/chown, truncate, utimensat; and the working directory.

use super::args::UserCStr;
use super::open::{lookup_at, lookup_at_as, parent_at, read_only, read_path, PathFile, AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW};
use crate::fs::inotify;
use crate::landlock;
use crate::mm::{CacheStat, UserRef};
use crate::task::Task;
use crate::vfs::inode::{SetAttr, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};
use crate::vfs::perm::{self, Change, FsCreds, MAY_EXEC, MAY_WRITE};
use crate::vfs::{Dentry, Fd, Follow};
use rvisor_abi::structs::{Timespec, Timeval};
use rvisor_abi::{consts, errno, error, PAGE_SIZE, SysResult, UserAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use std::sync::Arc;

/// The directory and name for a call that changes a name, refusing read-only mounts.
fn writable_parent(t: &Task, c: &FsCreds, dirfd: i32, path: &[u8]) -> SysResult<(Arc<Dentry>, Vec<u8>)> {
    let (dir, name) = parent_at(t, c, dirfd, path)?;
    if read_only(&dir) {
        return error!(EROFS);
    }
    Ok((dir, name))
}

pub fn sys_mkdirat(t: &mut Task, dirfd: i32, path: UserCStr, mode: u32) -> SysResult<()> {
    let p = read_path(t, path)?;
    let c = t.thread.fs_creds();
    let (dir, name) = parent_at(t, &c, dirfd, &p)?;
    if name == b"." || name == b".." || dir.child(&name).is_ok() {
        return error!(EEXIST);
    }
    if read_only(&dir) {
        return error!(EROFS);
    }
    landlock::fs::may_make(&c, &dir, S_IFDIR)?;
    perm::may_create(&c, &dir)?;
    let made = dir.inode.mkdir(&name, mode & !t.fs.umask() & 0o7777)?;
    perm::own_new(&c, &dir, &*made)?;
    dir.forget(&name);
    inotify::created(&dir, &name, true);
    Ok(())
}

pub fn sys_mkdir(t: &mut Task, path: UserCStr, mode: u32) -> SysResult<()> {
    sys_mkdirat(t, AT_FDCWD, path, mode)
}

/// Makes regular files, FIFOs and socket nodes; the sandbox makes no device nodes.
pub fn sys_mknodat(t: &mut Task, dirfd: i32, path: UserCStr, mode: u32, _dev: u32) -> SysResult<()> {
    let p = read_path(t, path)?;
    let c = t.thread.fs_creds();
    let (dir, name) = parent_at(t, &c, dirfd, &p)?;
    let perm = mode & !t.fs.umask() & 0o7777;
    let kind = mode & S_IFMT;
    if !matches!(kind, 0 | S_IFREG | S_IFIFO | S_IFCHR | S_IFBLK | S_IFSOCK) {
        return error!(EINVAL);
    }
    if name == b"." || name == b".." || dir.child(&name).is_ok() {
        return error!(EEXIST);
    }
    if read_only(&dir) {
        return error!(EROFS);
    }
    landlock::fs::may_make(&c, &dir, kind)?;
    perm::may_create(&c, &dir)?;
    let made = match kind {
        0 | S_IFREG => dir.inode.create(&name, perm)?,
        S_IFIFO => dir.inode.mkfifo(&name, perm)?,
        S_IFSOCK => dir.inode.mksock(&name, perm, std::sync::Weak::new())?,
        _ => return error!(EPERM),
    };
    perm::own_new(&c, &dir, &*made)?;
    dir.forget(&name);
    inotify::created(&dir, &name, false);
    Ok(())
}

pub fn sys_mknod(t: &mut Task, path: UserCStr, mode: u32, dev: u32) -> SysResult<()> {
    sys_mknodat(t, AT_FDCWD, path, mode, dev)
}

pub fn sys_unlinkat(t: &mut Task, dirfd: i32, path: UserCStr, flags: i32) -> SysResult<()> {
    if flags & !AT_REMOVEDIR != 0 {
        return error!(EINVAL);
    }
    let p = read_path(t, path)?;
    let c = t.thread.fs_creds();
    let (dir, name) = parent_at(t, &c, dirfd, &p)?;
    let child = if flags & AT_REMOVEDIR != 0 {
        match name.as_slice() {
            b"." => return error!(EINVAL),
            b".." => return error!(ENOTEMPTY),
            _ => {}
        }
        let child = dir.child(&name)?;
        if read_only(&dir) {
            return error!(EROFS);
        }
        landlock::fs::may_remove(&c, &dir, &child)?;
        perm::may_delete(&c, &dir, &child, true)?;
        if child.mounted().is_some() {
            return error!(EBUSY);
        }
        dir.inode.rmdir(&name)?;
        child
    } else {
        let child = dir.child(&name)?;
        if read_only(&dir) {
            return error!(EROFS);
        }
        landlock::fs::may_remove(&c, &dir, &child)?;
        perm::may_delete(&c, &dir, &child, false)?;
        dir.inode.unlink(&name)?;
        child
    };
    dir.forget(&name);
    inotify::unlinked(&dir, &name, &child);
    Ok(())
}

pub fn sys_unlink(t: &mut Task, path: UserCStr) -> SysResult<()> {
    sys_unlinkat(t, AT_FDCWD, path, 0)
}

pub fn sys_rmdir(t: &mut Task, path: UserCStr) -> SysResult<()> {
    sys_unlinkat(t, AT_FDCWD, path, AT_REMOVEDIR)
}

const RENAME_NOREPLACE: u32 = 1;
const RENAME_EXCHANGE: u32 = 2;

pub fn sys_renameat2(t: &mut Task, olddirfd: i32, oldpath: UserCStr, newdirfd: i32, newpath: UserCStr, flags: u32) -> SysResult<()> {
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0 || flags == RENAME_NOREPLACE | RENAME_EXCHANGE {
        return error!(EINVAL);
    }
    let (op, np) = (read_path(t, oldpath)?, read_path(t, newpath)?);
    let c = t.thread.fs_creds();
    let (odir, oname) = parent_at(t, &c, olddirfd, &op)?;
    let (ndir, nname) = parent_at(t, &c, newdirfd, &np)?;
    // Linux's order: two mounts are EXDEV before either is found read-only.
    if !Arc::ptr_eq(&mount_root(&odir), &mount_root(&ndir)) {
        return error!(EXDEV);
    }
    if [oname.as_slice(), nname.as_slice()].iter().any(|n| *n == b"." || *n == b"..") {
        return error!(EBUSY);
    }
    if read_only(&odir) {
        return error!(EROFS);
    }
    let moving = odir.child(&oname)?;
    let replaced = ndir.child(&nname).ok();
    if flags & RENAME_EXCHANGE != 0 {
        let other = replaced.ok_or_else(|| errno!(ENOENT))?;
        landlock::fs::may_refer(&c, &odir, &moving, &ndir, Some(&other), true, true)?;
        return exchange(&c, &odir, &oname, &moving, &ndir, &nname, other);
    }
    if let Some(existing) = &replaced {
        if flags & RENAME_NOREPLACE != 0 {
            return error!(EEXIST);
        }
        if Arc::ptr_eq(existing, &moving) {
            return Ok(());
        }
    }
    // A directory cannot move into itself.
    let mut at = Some(ndir.clone());
    while let Some(d) = at {
        if Arc::ptr_eq(&d, &moving) {
            return error!(EINVAL);
        }
        at = d.parent.clone();
    }
    landlock::fs::may_refer(&c, &odir, &moving, &ndir, replaced.as_ref(), true, false)?;
    // As vfs_rename: the name leaves one directory and enters (or replaces one
    // in) the other; the replaced file must be of the moving one's kind.
    perm::may_delete(&c, &odir, &moving, moving.is_dir())?;
    match &replaced {
        Some(existing) => perm::may_delete(&c, &ndir, existing, moving.is_dir())?,
        None => perm::may_create(&c, &ndir)?,
    }
    may_reparent(&c, &odir, &ndir, &moving)?;
    odir.inode.rename(&oname, &ndir.inode, &nname)?;
    odir.forget(&oname);
    ndir.forget(&nname);
    inotify::renamed(&odir, &oname, &ndir, &nname, &moving, replaced.as_deref());
    Ok(())
}

/// Whether `dir` is `d` or lies below it.
fn is_within(dir: &Arc<Dentry>, d: &Arc<Dentry>) -> bool {
    let mut at = Some(dir.clone());
    while let Some(x) = at {
        if Arc::ptr_eq(&x, d) {
            return true;
        }
        at = x.parent.clone();
    }
    false
}

/// A directory moving to another parent has its `..` rewritten: that takes
/// write permission on it.
fn may_reparent(c: &FsCreds, from: &Arc<Dentry>, to: &Arc<Dentry>, moving: &Dentry) -> SysResult<()> {
    if moving.is_dir() && !Arc::ptr_eq(from, to) {
        perm::permission(c, &*moving.inode, MAY_WRITE)?;
    }
    Ok(())
}

/// The root of the mount `d` is in (`d` itself if the mount is gone).
fn mount_root(d: &Arc<Dentry>) -> Arc<Dentry> {
    d.mount.upgrade().map(|m| m.root.clone()).unwrap_or(d.clone())
}

/// RENAME_EXCHANGE: `a` (named `aname` in `adir`) and `b` swap names.
fn exchange(c: &FsCreds, adir: &Arc<Dentry>, aname: &[u8], a: &Arc<Dentry>, bdir: &Arc<Dentry>, bname: &[u8], b: Arc<Dentry>) -> SysResult<()> {
    if Arc::ptr_eq(a, &b) {
        return Ok(());
    }
    // Neither may end up inside itself.
    if is_within(bdir, a) || is_within(adir, &b) {
        return error!(EINVAL);
    }
    perm::may_delete(c, adir, a, a.is_dir())?;
    perm::may_delete(c, bdir, &b, b.is_dir())?;
    may_reparent(c, adir, bdir, a)?;
    may_reparent(c, bdir, adir, &b)?;
    adir.inode.exchange(aname, &bdir.inode, bname)?;
    adir.forget(aname);
    bdir.forget(bname);
    inotify::renamed(adir, aname, bdir, bname, a, None);
    inotify::renamed(bdir, bname, adir, aname, &b, None);
    Ok(())
}

pub fn sys_renameat(t: &mut Task, olddirfd: i32, oldpath: UserCStr, newdirfd: i32, newpath: UserCStr) -> SysResult<()> {
    sys_renameat2(t, olddirfd, oldpath, newdirfd, newpath, 0)
}

pub fn sys_rename(t: &mut Task, oldpath: UserCStr, newpath: UserCStr) -> SysResult<()> {
    sys_renameat2(t, AT_FDCWD, oldpath, AT_FDCWD, newpath, 0)
}

pub fn sys_symlinkat(t: &mut Task, target: UserCStr, dirfd: i32, path: UserCStr) -> SysResult<()> {
    let tg = read_path(t, target)?;
    if tg.is_empty() {
        return error!(ENOENT);
    }
    let p = read_path(t, path)?;
    let c = t.thread.fs_creds();
    let (dir, name) = parent_at(t, &c, dirfd, &p)?;
    if dir.child(&name).is_ok() {
        return error!(EEXIST);
    }
    if read_only(&dir) {
        return error!(EROFS);
    }
    landlock::fs::may_make(&c, &dir, S_IFLNK)?;
    perm::may_create(&c, &dir)?;
    let made = dir.inode.symlink(&name, &tg)?;
    perm::own_new(&c, &dir, &*made)?;
    dir.forget(&name);
    inotify::created(&dir, &name, false);
    Ok(())
}

pub fn sys_symlink(t: &mut Task, target: UserCStr, path: UserCStr) -> SysResult<()> {
    sys_symlinkat(t, target, AT_FDCWD, path)
}

pub fn sys_linkat(t: &mut Task, olddirfd: i32, oldpath: UserCStr, newdirfd: i32, newpath: UserCStr, flags: i32) -> SysResult<()> {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return error!(EINVAL);
    }
    let op = read_path(t, oldpath)?;
    let follow = if flags & AT_SYMLINK_FOLLOW != 0 { Follow::Yes } else { Follow::No };
    let c = t.thread.fs_creds();
    let src = lookup_at_as(t, &c, olddirfd, &op, follow, flags & AT_EMPTY_PATH != 0)?;
    let np = read_path(t, newpath)?;
    let (dir, name) = writable_parent(t, &c, newdirfd, &np)?;
    if !std::sync::Weak::ptr_eq(&src.mount, &dir.mount) {
        return error!(EXDEV);
    }
    if dir.child(&name).is_ok() {
        return error!(EEXIST);
    }
    landlock::fs::may_refer(&c, src.parent.as_ref().unwrap_or(&src), &src, &dir, None, false, false)?;
    perm::may_link(&c, &*src.inode)?;
    perm::may_create(&c, &dir)?;
    if src.is_dir() {
        return error!(EPERM);
    }
    dir.inode.link(&name, &src.inode)?;
    dir.forget(&name);
    inotify::linked(&dir, &name, &src.inode);
    Ok(())
}

pub fn sys_link(t: &mut Task, oldpath: UserCStr, newpath: UserCStr) -> SysResult<()> {
    sys_linkat(t, AT_FDCWD, oldpath, AT_FDCWD, newpath, 0)
}

/// Changes attributes if `t` may (a read-only mount refuses first), reporting
/// the change as Linux's fsnotify_change does.
fn setattr(t: &Task, d: &Dentry, mut a: SetAttr, change: Change) -> SysResult<()> {
    if read_only(d) {
        return error!(EROFS);
    }
    let st = d.inode.stat()?;
    perm::may_setattr(&t.thread.fs_creds(), &st, &mut a, change)?;
    if let Some(size) = a.size {
        super::fs::check_new_size(t, st.st_size as u64, size)?;
    }
    d.inode.setattr(&a)?;
    let mut mask = 0;
    if a.mode.is_some() || a.uid.is_some() || a.gid.is_some() {
        mask |= inotify::IN_ATTRIB;
    }
    if a.size.is_some() {
        mask |= inotify::IN_MODIFY;
    }
    mask |= match (a.atime.is_some(), a.mtime.is_some()) {
        (true, true) => inotify::IN_ATTRIB,
        (true, false) => inotify::IN_ACCESS,
        (false, true) => inotify::IN_MODIFY,
        (false, false) => 0,
    };
    if mask != 0 {
        inotify::notify_dentry(d, mask);
    }
    Ok(())
}

pub fn sys_fchmodat(t: &mut Task, dirfd: i32, path: UserCStr, mode: u32) -> SysResult<()> {
    let p = read_path(t, path)?;
    let d = lookup_at(t, dirfd, &p, Follow::Yes, false)?;
    setattr(t, &d, SetAttr { mode: Some(mode & 0o7777), ..SetAttr::default() }, Change::Other)
}

/// fchmodat2 (Linux 6.6): fchmodat with flags. A symlink's mode cannot be
/// changed (EOPNOTSUPP), as Linux's notify_change refuses it.
pub fn sys_fchmodat2(t: &mut Task, dirfd: i32, path: UserCStr, mode: u32, flags: u32) -> SysResult<()> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) as u32 != 0 {
        return error!(EINVAL);
    }
    let p = read_path(t, path)?;
    let follow = if flags & AT_SYMLINK_NOFOLLOW as u32 != 0 { Follow::No } else { Follow::Yes };
    let d = lookup_at(t, dirfd, &p, follow, flags & AT_EMPTY_PATH as u32 != 0)?;
    if d.inode.kind() == crate::vfs::inode::S_IFLNK {
        return error!(EOPNOTSUPP);
    }
    setattr(t, &d, SetAttr { mode: Some(mode & 0o7777), ..SetAttr::default() }, Change::Other)
}

pub fn sys_chmod(t: &mut Task, path: UserCStr, mode: u32) -> SysResult<()> {
    sys_fchmodat(t, AT_FDCWD, path, mode)
}

fn fd_dentry(t: &Task, fd: Fd) -> SysResult<Arc<Dentry>> {
    t.fds.get(fd)?.dentry().ok_or_else(|| rvisor_abi::errno!(EINVAL))
}

pub fn sys_fchmod(t: &mut Task, fd: Fd, mode: u32) -> SysResult<()> {
    setattr(t, &*fd_dentry(t, fd)?, SetAttr { mode: Some(mode & 0o7777), ..SetAttr::default() }, Change::Other)
}

/// chown's change: the ids the caller's user namespace names (EINVAL for one it
/// does not map), -1 for none.
fn owner(t: &Task, uid: u32, gid: u32) -> SysResult<SetAttr> {
    let ns = t.tg.user_ns();
    let (uid, gid) = (ns.uid_arg(uid)?, ns.gid_arg(gid)?);
    Ok(SetAttr { uid: (uid != u32::MAX).then_some(uid), gid: (gid != u32::MAX).then_some(gid), ..SetAttr::default() })
}

pub fn sys_fchownat(t: &mut Task, dirfd: i32, path: UserCStr, uid: u32, gid: u32, flags: i32) -> SysResult<()> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return error!(EINVAL);
    }
    let p = read_path(t, path)?;
    let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
    let d = lookup_at(t, dirfd, &p, follow, flags & AT_EMPTY_PATH != 0)?;
    setattr(t, &d, owner(t, uid, gid)?, Change::Chown)
}

pub fn sys_chown(t: &mut Task, path: UserCStr, uid: u32, gid: u32) -> SysResult<()> {
    sys_fchownat(t, AT_FDCWD, path, uid, gid, 0)
}

pub fn sys_lchown(t: &mut Task, path: UserCStr, uid: u32, gid: u32) -> SysResult<()> {
    sys_fchownat(t, AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW)
}

pub fn sys_fchown(t: &mut Task, fd: Fd, uid: u32, gid: u32) -> SysResult<()> {
    setattr(t, &*fd_dentry(t, fd)?, owner(t, uid, gid)?, Change::Chown)
}

pub fn sys_truncate(t: &mut Task, path: UserCStr, length: i64) -> SysResult<()> {
    if length < 0 {
        return error!(EINVAL);
    }
    let p = read_path(t, path)?;
    let c = t.thread.fs_creds();
    let d = lookup_at_as(t, &c, AT_FDCWD, &p, Follow::Yes, false)?;
    if d.is_dir() {
        return error!(EISDIR);
    }
    if read_only(&d) {
        return error!(EROFS);
    }
    perm::permission(&c, &*d.inode, MAY_WRITE)?;
    landlock::fs::may_truncate(&c, &d)?;
    // As a writer's open would, counted meanwhile (Linux's vfs_truncate).
    let key = crate::vfs::inode::inode_key(&d.inode);
    let _count = crate::vfs::leases::OpenCount::new(&t.kernel.locks, key, crate::vfs::OpenFlags::WRONLY);
    super::lock::break_lease(t, key, crate::vfs::OpenFlags::WRONLY)?;
    setattr(t, &d, SetAttr { size: Some(length as u64), ..SetAttr::default() }, Change::Other)
}

pub fn sys_ftruncate(t: &mut Task, fd: Fd, length: i64) -> SysResult<()> {
    if length < 0 {
        return error!(EINVAL);
    }
    let file = t.fds.get(fd)?;
    if !crate::vfs::OpenFlags(file.status_flags()).writable() {
        return error!(EINVAL);
    }
    landlock::fs::file_may_truncate(&file)?;
    let d = file.dentry().ok_or_else(|| rvisor_abi::errno!(EINVAL))?;
    setattr(t, &d, SetAttr { size: Some(length as u64), ..SetAttr::default() }, Change::Other)
}

const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

pub fn sys_utimensat(t: &mut Task, dirfd: i32, path: UserAddr, times: UserRef<[Timespec; 2]>, flags: i32) -> SysResult<()> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return error!(EINVAL);
    }
    let d = if path.is_null() {
        fd_dentry(t, Fd(dirfd))?
    } else {
        let p = read_path(t, UserCStr(path))?;
        let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
        lookup_at(t, dirfd, &p, follow, flags & AT_EMPTY_PATH != 0)?
    };
    let now = crate::time::to_timespec(t.kernel.clocks.realtime_ns());
    let pick = |ts: Timespec| -> SysResult<Option<(i64, i64)>> {
        match ts.tv_nsec {
            UTIME_OMIT => Ok(None),
            UTIME_NOW => Ok(Some((now.tv_sec, now.tv_nsec))),
            n if (0..1_000_000_000).contains(&n) => Ok(Some((ts.tv_sec, n))),
            _ => error!(EINVAL),
        }
    };
    let [a, m] = if times.is_null() { [now, now] } else { t.mm.read_obj(times)? };
    // No times, or both UTIME_NOW, is a touch.
    let change = if times.is_null() || (a.tv_nsec == UTIME_NOW && m.tv_nsec == UTIME_NOW) { Change::Touch } else { Change::Other };
    setattr(t, &d, SetAttr { atime: pick(a)?, mtime: pick(m)?, ..SetAttr::default() }, change)
}

/// utime: whole-second times from a `struct utimbuf`, or now.
pub fn sys_utime(t: &mut Task, path: UserCStr, times: UserRef<[i64; 2]>) -> SysResult<()> {
    let p = read_path(t, path)?;
    let d = lookup_at(t, AT_FDCWD, &p, Follow::Yes, false)?;
    let now = crate::time::to_timespec(t.kernel.clocks.realtime_ns());
    let [a, m] = if times.is_null() { [(now.tv_sec, now.tv_nsec); 2] } else { t.mm.read_obj(times)?.map(|s| (s, 0)) };
    let change = if times.is_null() { Change::Touch } else { Change::Other };
    setattr(t, &d, SetAttr { atime: Some(a), mtime: Some(m), ..SetAttr::default() }, change)
}

pub fn sys_utimes(t: &mut Task, path: UserCStr, times: UserRef<[Timeval; 2]>) -> SysResult<()> {
    sys_futimesat(t, AT_FDCWD, path, times)
}

/// futimesat and utimes: microsecond times (EINVAL outside a second), or now.
pub fn sys_futimesat(t: &mut Task, dirfd: i32, path: UserCStr, times: UserRef<[Timeval; 2]>) -> SysResult<()> {
    let p = read_path(t, path)?;
    let d = lookup_at(t, dirfd, &p, Follow::Yes, false)?;
    let now = crate::time::to_timespec(t.kernel.clocks.realtime_ns());
    let [a, m] = if times.is_null() {
        [(now.tv_sec, now.tv_nsec); 2]
    } else {
        let tv = t.mm.read_obj(times)?;
        if tv.iter().any(|v| !(0..1_000_000).contains(&v.tv_usec)) {
            return error!(EINVAL);
        }
        tv.map(|v| (v.tv_sec, v.tv_usec * 1000))
    };
    let change = if times.is_null() { Change::Touch } else { Change::Other };
    setattr(t, &d, SetAttr { atime: Some(a), mtime: Some(m), ..SetAttr::default() }, change)
}

pub fn sys_getcwd(t: &mut Task, buf: UserAddr, size: usize) -> SysResult<usize> {
    // A cwd outside the root (after chroot) is shown as such, as Linux does.
    let mut path = t.fs.cwd().path_from(&t.fs.root()).unwrap_or_else(|| [b"(unreachable)".as_slice(), &t.fs.cwd().path()].concat());
    path.push(0);
    if size < path.len() {
        return error!(ERANGE);
    }
    t.mm.write_bytes(buf, &path)?;
    Ok(path.len())
}

pub fn sys_chdir(t: &mut Task, path: UserCStr) -> SysResult<()> {
    let p = read_path(t, path)?;
    let c = t.thread.fs_creds();
    let d = lookup_at_as(t, &c, AT_FDCWD, &p, Follow::Yes, false)?;
    if d.inode.kind() != S_IFDIR {
        return error!(ENOTDIR);
    }
    perm::permission(&c, &*d.inode, MAY_EXEC)?;
    t.fs.set_cwd(d);
    Ok(())
}

pub fn sys_fchdir(t: &mut Task, fd: Fd) -> SysResult<()> {
    let d = fd_dentry(t, fd)?;
    if !d.is_dir() {
        return error!(ENOTDIR);
    }
    perm::permission(&t.thread.fs_creds(), &*d.inode, MAY_EXEC)?;
    t.fs.set_cwd(d);
    Ok(())
}

pub fn sys_chroot(t: &mut Task, path: UserCStr) -> SysResult<()> {
    if !t.tg.capable(consts::CAP_SYS_CHROOT) {
        return error!(EPERM);
    }
    let p = read_path(t, path)?;
    let d = lookup_at(t, AT_FDCWD, &p, Follow::Yes, false)?;
    if !d.is_dir() {
        return error!(ENOTDIR);
    }
    t.fs.set_root(d);
    Ok(())
}

pub fn sys_umask(t: &mut Task, mask: u32) -> SysResult<u32> {
    Ok(t.fs.set_umask(mask))
}

/// fsync and fdatasync: a host file (a writable gofer mount's) gets what its
/// shared mappings changed and is committed by the host; memory files have
/// nothing to flush.
pub fn sys_fsync(t: &mut Task, fd: Fd) -> SysResult<()> {
    fsync_file(&*t.fds.get(fd)?)
}

/// fsync of an open file (also AIO's IOCB_CMD_FSYNC and FDSYNC).
pub(super) fn fsync_file(file: &dyn crate::vfs::FileDescription) -> SysResult<()> {
    match file.dentry() {
        Some(d) => d.inode.sync(true),
        None => Ok(()),
    }
}

pub fn sys_fdatasync(t: &mut Task, fd: Fd) -> SysResult<()> {
    sys_fsync(t, fd)
}

pub fn sys_syncfs(t: &mut Task, fd: Fd) -> SysResult<()> {
    t.fds.get(fd).map(|_| ())
}

pub fn sys_sync(_t: &mut Task) -> SysResult<()> {
    Ok(())
}

/// The file an advice or range-sync call names: a pipe (or FIFO) is ESPIPE.
fn seekable_file(t: &Task, fd: Fd) -> SysResult<std::sync::Arc<dyn crate::vfs::FileDescription>> {
    let file = t.fds.get(fd)?;
    if file.pipe().is_some() {
        return error!(ESPIPE);
    }
    Ok(file)
}

const POSIX_FADV_NOREUSE: i32 = 5;

/// posix_fadvise: there is no page cache to steer for most files; Linux's checks.
pub fn sys_fadvise64(t: &mut Task, fd: Fd, _offset: i64, len: i64, advice: i32) -> SysResult<()> {
    seekable_file(t, fd)?;
    if !(0..=POSIX_FADV_NOREUSE).contains(&advice) || len < 0 {
        return error!(EINVAL);
    }
    Ok(())
}

/// readahead: files are read on demand; Linux's checks.
pub fn sys_readahead(t: &mut Task, fd: Fd, _offset: i64, _count: usize) -> SysResult<()> {
    let file = t.fds.get(fd)?;
    if !crate::vfs::OpenFlags(file.status_flags()).readable() {
        return error!(EBADF);
    }
    if file.stat()?.st_mode & crate::vfs::inode::S_IFMT != crate::vfs::inode::S_IFREG {
        return error!(EINVAL);
    }
    Ok(())
}

/// `struct cachestat_range`.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct CachestatRange {
    off: u64,
    len: u64,
}

/// cachestat: the pages of a file's range the Sentry holds in memory
/// (`Inode::cache_stat`); files without pages (pipes, sockets, directories)
/// have none, as on Linux. A length of 0 is to the end of the file; an end
/// that wraps around makes the range end before it starts (nothing), as in
/// Linux's arithmetic.
pub fn sys_cachestat(t: &mut Task, fd: Fd, range: UserRef<CachestatRange>, cstat: UserRef<CacheStat>, flags: u32) -> SysResult<()> {
    let file = t.fds.get(fd)?;
    if PathFile::of(&file).is_some() {
        return error!(EBADF);
    }
    let r = t.mm.read_obj(range)?;
    if flags != 0 {
        return error!(EINVAL);
    }
    let first = r.off / PAGE_SIZE;
    let last = if r.len == 0 { u64::MAX } else { r.off.wrapping_add(r.len).wrapping_sub(1) / PAGE_SIZE };
    let cs = match file.dentry() {
        Some(d) if first <= last => d.inode.cache_stat(first, last),
        _ => CacheStat::default(),
    };
    t.mm.write_obj(cstat, &cs)
}

const SYNC_FILE_RANGE_ALL: u32 = 1 | 2 | 4;

/// sync_file_range: in-memory files have nothing to write back.
pub fn sys_sync_file_range(t: &mut Task, fd: Fd, offset: i64, nbytes: i64, flags: u32) -> SysResult<()> {
    if flags & !SYNC_FILE_RANGE_ALL != 0 || offset < 0 || nbytes < 0 || offset.checked_add(nbytes).is_none() {
        return error!(EINVAL);
    }
    seekable_file(t, fd).map(|_| ())
}

const FALLOC_FL_KEEP_SIZE: i32 = 1;
const FALLOC_FL_PUNCH_HOLE: i32 = 2;

pub fn sys_fallocate(t: &mut Task, fd: Fd, mode: i32, offset: i64, len: i64) -> SysResult<()> {
    if offset < 0 || len <= 0 {
        return error!(EINVAL);
    }
    let file = t.fds.get(fd)?;
    if !crate::vfs::OpenFlags(file.status_flags()).writable() {
        return error!(EBADF);
    }
    let end = offset.checked_add(len).ok_or_else(|| rvisor_abi::errno!(EFBIG))?;
    let d = file.dentry().ok_or_else(|| rvisor_abi::errno!(ESPIPE))?;
    if mode == FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE {
        return d.inode.punch_hole(offset as u64, len as u64);
    }
    if mode & !FALLOC_FL_KEEP_SIZE != 0 {
        // Punching without KEEP_SIZE, collapsing and zeroing ranges: not supported.
        return error!(EOPNOTSUPP);
    }
    let size = d.inode.stat()?.st_size;
    if mode & FALLOC_FL_KEEP_SIZE == 0 {
        super::fs::check_new_size(t, size as u64, end as u64)?;
    }
    d.inode.allocate(offset as u64, len as u64)?;
    if mode & FALLOC_FL_KEEP_SIZE == 0 && end > size {
        setattr(t, &d, SetAttr { size: Some(end as u64), ..SetAttr::default() }, Change::Other)?;
    }
    Ok(())
}
