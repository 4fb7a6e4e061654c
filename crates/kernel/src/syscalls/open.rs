//! Opening files: open, openat, openat2, creat; and resolving the (dirfd, path)
//! pairs every *at call takes.

use crate::fs::dev::{Device, DeviceInode};
use crate::fs::simple::kept_flags;
use super::args::{UserCStr, PATH_MAX};
use crate::fs::inotify;
use crate::landlock;
use crate::task::Task;
use crate::vfs::inode::{inode_key, OpenFlags, S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG};
use crate::vfs::leases::OpenCount;
use crate::vfs::path::{walk, walk_parent, walk_parent_resolve, walk_resolve, Resolve};
use crate::vfs::perm::{self, FsCreds, MAY_READ, MAY_WRITE};
use crate::vfs::{Dentry, Fd, Follow, Mount, MountFlags};
use rvisor_abi::{errno, error, SysResult, UserAddr};
use std::sync::Arc;

pub const AT_FDCWD: i32 = -100;
pub const AT_SYMLINK_NOFOLLOW: i32 = 0x100;
pub const AT_REMOVEDIR: i32 = 0x200;
pub const AT_SYMLINK_FOLLOW: i32 = 0x400;
pub const AT_EMPTY_PATH: i32 = 0x1000;

/// Reads a path argument; ENOENT for an empty path unless `empty_ok`.
pub fn read_path(t: &Task, p: UserCStr) -> SysResult<Vec<u8>> {
    t.mm.read_cstr(p.0, PATH_MAX)
}

/// Where a relative path starts: the directory open at `dirfd`, or the cwd.
pub fn start_dir(t: &Task, dirfd: i32, path: &[u8]) -> SysResult<Arc<Dentry>> {
    if path.first() == Some(&b'/') {
        return Ok(t.fs.root());
    }
    if dirfd == AT_FDCWD {
        return Ok(t.fs.cwd());
    }
    let d = t.fds.get(Fd(dirfd))?.dentry().ok_or_else(|| errno!(ENOTDIR))?;
    if !d.is_dir() && !path.is_empty() {
        return error!(ENOTDIR);
    }
    Ok(d)
}

/// Resolves (dirfd, path) to a dentry. An empty path means `dirfd` itself when
/// AT_EMPTY_PATH is given, ENOENT otherwise.
pub fn lookup_at(t: &Task, dirfd: i32, path: &[u8], follow: Follow, empty_path: bool) -> SysResult<Arc<Dentry>> {
    lookup_at_as(t, &t.thread.fs_creds(), dirfd, path, follow, empty_path)
}

/// `lookup_at` walking as `c` (access(2) walks with the real ids).
pub fn lookup_at_as(t: &Task, c: &FsCreds, dirfd: i32, path: &[u8], follow: Follow, empty_path: bool) -> SysResult<Arc<Dentry>> {
    if path.is_empty() {
        if !empty_path {
            return error!(ENOENT);
        }
        if dirfd == AT_FDCWD {
            return Ok(t.fs.cwd());
        }
        return t.fds.get(Fd(dirfd))?.dentry().ok_or_else(|| errno!(EBADF));
    }
    let start = start_dir(t, dirfd, path)?;
    walk(c, &t.fs.root(), &start, path, follow)
}

/// Resolves (dirfd, path), walking as `c`, to the directory that holds its
/// last name.
pub fn parent_at(t: &Task, c: &FsCreds, dirfd: i32, path: &[u8]) -> SysResult<(Arc<Dentry>, Vec<u8>)> {
    if path.is_empty() {
        return error!(ENOENT);
    }
    let start = start_dir(t, dirfd, path)?;
    walk_parent(c, &t.fs.root(), &start, path)
}

/// Whether the mount holding `d` is read-only.
pub fn read_only(d: &Dentry) -> bool {
    d.mount.upgrade().is_some_and(|m| m.is_read_only())
}

const VALID_FLAGS: u32 = 0o37777777;
const O_NOATIME: u32 = 0o1000000;
/// The only flags O_PATH heeds.
const O_PATH_FLAGS: u32 = OpenFlags::PATH | OpenFlags::DIRECTORY | OpenFlags::NOFOLLOW | OpenFlags::CLOEXEC;

pub fn do_open(t: &mut Task, dirfd: i32, path: &[u8], flags: u32, mode: u32) -> SysResult<Fd> {
    // open and openat drop what O_PATH ignores (O_CREAT creates nothing,
    // O_TRUNC truncates nothing), as Linux's build_open_how does.
    let flags = if flags & OpenFlags::PATH != 0 { flags & O_PATH_FLAGS } else { flags };
    open_resolving(t, dirfd, path, flags, mode, 0)
}

/// Where an open's walk goes from, from where absolute paths and `..` stop,
/// and what it may not cross: openat2's `resolve` flags (0 for open/openat).
fn resolution(t: &Task, dirfd: i32, path: &[u8], resolve: u64) -> SysResult<(Arc<Dentry>, Arc<Dentry>, Resolve)> {
    let mut r = Resolve {
        beneath: None,
        no_symlinks: resolve & RESOLVE_NO_SYMLINKS != 0,
        no_magiclinks: resolve & RESOLVE_NO_MAGICLINKS != 0,
        no_xdev: resolve & RESOLVE_NO_XDEV != 0,
    };
    if resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT) == 0 {
        return Ok((t.fs.root(), start_dir(t, dirfd, path)?, r));
    }
    // The directory itself, even for an absolute path.
    let base = start_dir(t, dirfd, b"")?;
    if !base.is_dir() {
        return error!(ENOTDIR);
    }
    if resolve & RESOLVE_IN_ROOT != 0 {
        // As if chrooted there: absolute paths, absolute symlinks and `..` stop at it.
        r.no_magiclinks = true;
        return Ok((base.clone(), base, r));
    }
    r.beneath = Some(base.clone());
    Ok((t.fs.root(), base, r))
}

fn open_resolving(t: &mut Task, dirfd: i32, path: &[u8], flags: u32, mode: u32, resolve: u64) -> SysResult<Fd> {
    match open_once(t, dirfd, path, flags, mode, resolve) {
        // A host file replaced (renamed over) behind a cached name: the stale
        // dentry was forgotten, so a second walk finds the new file, as Linux
        // retries a lookup that met ESTALE.
        Err(e) if e.code == rvisor_abi::ErrnoCode::ESTALE => open_once(t, dirfd, path, flags, mode, resolve),
        r => r,
    }
}

fn open_once(t: &mut Task, dirfd: i32, path: &[u8], flags: u32, mode: u32, resolve: u64) -> SysResult<Fd> {
    if flags & !VALID_FLAGS != 0 {
        return error!(EINVAL);
    }
    let of = OpenFlags(flags);
    if path.is_empty() {
        return error!(ENOENT);
    }
    let (root, start, r) = resolution(t, dirfd, path, resolve)?;
    let c = t.thread.fs_creds();
    if flags & OpenFlags::TMPFILE == OpenFlags::TMPFILE {
        return open_tmpfile(t, &c, &walk_resolve(&c, &root, &start, path, Follow::Yes, &r)?, of, mode);
    }
    let follow = if flags & OpenFlags::NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
    let mut created = false;
    let dentry = if flags & OpenFlags::CREAT != 0 {
        let (dir, name) = walk_parent_resolve(&c, &root, &start, path, &r)?;
        match dir.child(&name) {
            Ok(existing) => {
                if flags & OpenFlags::EXCL != 0 {
                    return error!(EEXIST);
                }
                if existing.inode.kind() == S_IFLNK {
                    if follow == Follow::No {
                        return error!(ELOOP);
                    }
                    walk_resolve(&c, &root, &dir, &name, Follow::Yes, &r)?
                } else {
                    existing
                }
            }
            Err(e) if e.code == rvisor_abi::ErrnoCode::ENOENT => {
                if path.ends_with(b"/") {
                    return error!(EISDIR);
                }
                if read_only(&dir) {
                    return error!(EROFS);
                }
                landlock::fs::may_make(&c, &dir, S_IFREG)?;
                perm::may_create(&c, &dir)?;
                let made = dir.inode.create(&name, mode & !t.fs.umask() & 0o7777)?;
                perm::own_new(&c, &dir, &*made)?;
                dir.forget(&name);
                inotify::created(&dir, &name, false);
                created = true;
                dir.child(&name)?
            }
            Err(e) => return Err(e),
        }
    } else {
        walk_resolve(&c, &root, &start, path, follow, &r)?
    };
    let kind = dentry.inode.kind();
    // O_DIRECTORY refuses anything else, an O_PATH open of one (mv's probe
    // of its target) or of a symlink not followed included.
    if flags & OpenFlags::DIRECTORY != 0 && kind != S_IFDIR {
        return error!(ENOTDIR);
    }
    if flags & OpenFlags::PATH != 0 {
        let file: Arc<dyn crate::vfs::FileDescription> = Arc::new(PathFile { dentry, tree: None });
        return t.fds.install_lowest(file, 0, t.tg.rlimit(crate::task::RLIMIT_NOFILE).cur, flags & OpenFlags::CLOEXEC != 0);
    }
    if kind == S_IFLNK {
        return error!(ELOOP);
    }
    if kind == S_IFDIR && (of.writable() || flags & OpenFlags::CREAT != 0) {
        return error!(EISDIR);
    }
    if !created {
        may_open(&c, &dentry, flags)?;
    }
    let granted = landlock::fs::may_open(&c, &dentry, flags, false)?;
    // O_TRUNC of an existing file truncates as ftruncate would.
    if flags & OpenFlags::TRUNC != 0 && kind == S_IFREG && !created && granted & landlock::FS_TRUNCATE == 0 {
        return error!(EACCES);
    }
    if (of.writable() || flags & OpenFlags::TRUNC != 0) && read_only(&dentry) {
        return error!(EROFS);
    }
    // A device node of a nodev mount opens nothing.
    if matches!(kind, S_IFCHR | S_IFBLK) && Mount::of_has(&dentry, MountFlags::NODEV) {
        return error!(EACCES);
    }
    // A regular file's open is counted before it breaks leases, as Linux takes
    // write access first: no lease is granted meanwhile.
    let count = (kind == S_IFREG).then(|| OpenCount::new(&t.kernel.locks, inode_key(&dentry.inode), flags));
    if count.is_some() {
        super::lock::break_lease(t, inode_key(&dentry.inode), flags)?;
    }
    // /dev/tty and /dev/console open terminals only the caller's task can name.
    let device = dentry.inode.as_any().downcast_ref::<DeviceInode>().map(|d| d.device);
    let file: Arc<dyn crate::vfs::FileDescription> = match (dentry.inode.fifo(), device) {
        (Some(pipe), _) => pipe.open_fifo(t, dentry.clone(), of.0)?,
        (None, Some(Device::Tty)) => crate::tty::open_controlling(t, &dentry, kept_flags(of.0))?,
        (None, Some(Device::Console)) => crate::tty::open_console(t, &dentry, kept_flags(of.0))?,
        (None, _) => dentry.inode.open(&dentry, of).inspect_err(|e| {
            if e.code == rvisor_abi::ErrnoCode::ESTALE {
                if let Some(parent) = &dentry.parent {
                    parent.forget(&dentry.name);
                }
            }
        })?,
    };
    landlock::fs::opened(&file, granted);
    keep_count(&file, count);
    crate::tty::acquire_on_open(t, &file, flags & OpenFlags::NOCTTY != 0);
    inotify::notify_dentry(&dentry, inotify::IN_OPEN);
    if flags & OpenFlags::TRUNC != 0 && kind == S_IFREG && !created {
        inotify::notify_dentry(&dentry, inotify::IN_MODIFY);
    }
    t.fds.install_lowest(file, 0, t.tg.rlimit(crate::task::RLIMIT_NOFILE).cur, flags & OpenFlags::CLOEXEC != 0)
}

/// The description keeps its open's count while it lives.
fn keep_count(file: &Arc<dyn crate::vfs::FileDescription>, count: Option<OpenCount>) {
    if let (Some(locks), Some(count)) = (file.file_locks(), count) {
        let _ = locks.open.set(count);
    }
}

/// may_open: the permissions the access mode asks for, and write for O_TRUNC
/// (a read-only mount refuses truncating a regular file before any EACCES);
/// O_NOATIME only for the owner or CAP_FOWNER. A file the open just created
/// needs none.
fn may_open(c: &FsCreds, d: &Dentry, flags: u32) -> SysResult<()> {
    let st = d.inode.stat()?;
    if flags & OpenFlags::TRUNC != 0 && st.st_mode & crate::vfs::inode::S_IFMT == S_IFREG && read_only(d) {
        return error!(EROFS);
    }
    let mut want = match flags & OpenFlags::ACCMODE {
        0 => MAY_READ,
        OpenFlags::WRONLY => MAY_WRITE,
        _ => MAY_READ | MAY_WRITE,
    };
    if flags & OpenFlags::TRUNC != 0 {
        want |= MAY_WRITE;
    }
    perm::check(c, &st, want)?;
    if flags & O_NOATIME != 0 && !c.owns(&st) {
        return error!(EPERM);
    }
    Ok(())
}

/// open(O_TMPFILE): an unnamed file in the directory at `path` (tmpfs only; other
/// file systems say EOPNOTSUPP, as Linux's do, and callers fall back).
fn open_tmpfile(t: &mut Task, c: &FsCreds, dir: &Arc<Dentry>, of: OpenFlags, mode: u32) -> SysResult<Fd> {
    if !of.writable() {
        return error!(EINVAL);
    }
    let dir = dir.clone();
    if !dir.is_dir() {
        return error!(ENOTDIR);
    }
    if read_only(&dir) {
        return error!(EROFS);
    }
    perm::may_create(c, &dir)?;
    let inode = dir.inode.tmpfile(mode & !t.fs.umask() & 0o7777, of.0 & OpenFlags::EXCL == 0)?;
    perm::own_new(c, &dir, &*inode)?;
    let name = format!("#{} (deleted)", inode.stat()?.st_ino).into_bytes();
    let dentry = Dentry::unlinked(&dir, name, inode.clone());
    let granted = landlock::fs::may_open(c, &dentry, of.0, false)?;
    let file = inode.open(&dentry, OpenFlags(of.0 & !OpenFlags::TMPFILE))?;
    landlock::fs::opened(&file, granted);
    keep_count(&file, Some(OpenCount::new(&t.kernel.locks, inode_key(&inode), of.0)));
    t.fds.install_lowest(file, 0, t.tg.rlimit(crate::task::RLIMIT_NOFILE).cur, of.0 & OpenFlags::CLOEXEC != 0)
}

pub fn sys_open(t: &mut Task, path: UserCStr, flags: u32, mode: u32) -> SysResult<Fd> {
    let p = read_path(t, path)?;
    do_open(t, AT_FDCWD, &p, flags, mode)
}

pub fn sys_openat(t: &mut Task, dirfd: i32, path: UserCStr, flags: u32, mode: u32) -> SysResult<Fd> {
    let p = read_path(t, path)?;
    do_open(t, dirfd, &p, flags, mode)
}

pub fn sys_creat(t: &mut Task, path: UserCStr, mode: u32) -> SysResult<Fd> {
    let p = read_path(t, path)?;
    do_open(t, AT_FDCWD, &p, OpenFlags::CREAT | OpenFlags::WRONLY | OpenFlags::TRUNC, mode)
}

/// `struct open_how` (openat2).
#[derive(Clone, Copy, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
#[repr(C)]
pub struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_XDEV: u64 = 1;
const RESOLVE_NO_MAGICLINKS: u64 = 2;
const RESOLVE_NO_SYMLINKS: u64 = 4;
const RESOLVE_BENEATH: u64 = 8;
const RESOLVE_IN_ROOT: u64 = 0x10;
const RESOLVE_CACHED: u64 = 0x20;

pub fn sys_openat2(t: &mut Task, dirfd: i32, path: UserCStr, how: UserAddr, size: usize) -> SysResult<Fd> {
    if size < std::mem::size_of::<OpenHow>() {
        return error!(EINVAL);
    }
    let h: OpenHow = t.mm.read_obj(crate::mm::UserRef::new(how))?;
    if h.flags > VALID_FLAGS as u64 || h.resolve & !(RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_IN_ROOT | RESOLVE_CACHED) != 0 {
        return error!(EINVAL);
    }
    if h.flags & (OpenFlags::CREAT | OpenFlags::TMPFILE) as u64 == 0 && h.mode != 0 {
        return error!(EINVAL);
    }
    if h.resolve & RESOLVE_BENEATH != 0 && h.resolve & RESOLVE_IN_ROOT != 0 {
        return error!(EINVAL);
    }
    // openat2 refuses what open drops.
    if h.flags & OpenFlags::PATH as u64 != 0 && h.flags & !(O_PATH_FLAGS as u64) != 0 {
        return error!(EINVAL);
    }
    // Every lookup here comes from the dentry cache or a gofer round trip that
    // cannot block on I/O; only opens that would change a file are refused.
    if h.resolve & RESOLVE_CACHED != 0 && h.flags & (OpenFlags::CREAT | OpenFlags::TRUNC | OpenFlags::TMPFILE) as u64 != 0 {
        return error!(EAGAIN);
    }
    let p = read_path(t, path)?;
    open_resolving(t, dirfd, &p, h.flags as u32, h.mode as u32, h.resolve)
}

/// An O_PATH descriptor: names a file without opening it for I/O. open_tree
/// and fsmount give one too, naming the root of a detached tree (Linux's
/// FMODE_NEED_UNMOUNT): the tree goes when the last descriptor closes, unless
/// move_mount attached it.
pub(crate) struct PathFile {
    pub dentry: Arc<Dentry>,
    pub tree: Option<Arc<crate::vfs::MountNamespace>>,
}

impl PathFile {
    /// The O_PATH file behind `file`, if it is one.
    pub fn of(file: &Arc<dyn crate::vfs::FileDescription>) -> Option<&PathFile> {
        file.as_any().and_then(|a| a.downcast_ref::<PathFile>())
    }
}

impl crate::vfs::FileDescription for PathFile {
    fn read(&self, _t: &Task, _bufs: &crate::mm::UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        error!(EBADF)
    }
    fn write(&self, _t: &Task, _bufs: &crate::mm::UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        error!(EBADF)
    }
    fn stat(&self) -> SysResult<rvisor_abi::structs::Stat> {
        self.dentry.inode.stat()
    }
    fn status_flags(&self) -> u32 {
        OpenFlags::PATH
    }
    fn set_status_flags(&self, _flags: u32) {}
    fn dentry(&self) -> Option<Arc<Dentry>> {
        Some(self.dentry.clone())
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
