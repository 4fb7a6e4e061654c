//! Looking at files: the stat family, statx, statfs, readlink, access, getdents64,
//! lseek.

use super::args::UserCStr;
use super::open::{lookup_at, lookup_at_as, read_only, read_path, AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW};
use crate::mm::UserRef;
use crate::task::Task;
use crate::vfs::inode::{S_IFBLK, S_IFCHR, S_IFIFO, S_IFLNK, S_IFMT, S_IFSOCK};
use crate::vfs::perm;
use crate::vfs::{Fd, Follow, MountFlags};
use rvisor_abi::structs::Stat;
use rvisor_abi::{error, SysResult, UserAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

const AT_NO_AUTOMOUNT: i32 = 0x800;
const AT_STATX_SYNC_TYPE: i32 = 0x6000;

fn follow_of(flags: i32) -> Follow {
    if flags & AT_SYMLINK_NOFOLLOW != 0 { Follow::No } else { Follow::Yes }
}

/// Copies a stat out, its owner and group as the caller's user namespace sees them.
pub(super) fn write_stat(t: &Task, statbuf: UserRef<Stat>, mut st: Stat) -> SysResult<()> {
    let ns = t.tg.user_ns();
    if !ns.is_initial() {
        (st.st_uid, st.st_gid) = (ns.show_uid(st.st_uid), ns.show_gid(st.st_gid));
    }
    t.mm.write_obj(statbuf, &st)
}

pub fn sys_stat(t: &mut Task, path: UserCStr, statbuf: UserRef<Stat>) -> SysResult<()> {
    let p = read_path(t, path)?;
    let st = lookup_at(t, AT_FDCWD, &p, Follow::Yes, false)?.inode.stat()?;
    write_stat(t, statbuf, st)
}

pub fn sys_lstat(t: &mut Task, path: UserCStr, statbuf: UserRef<Stat>) -> SysResult<()> {
    let p = read_path(t, path)?;
    let st = lookup_at(t, AT_FDCWD, &p, Follow::No, false)?.inode.stat()?;
    write_stat(t, statbuf, st)
}

pub fn sys_newfstatat(t: &mut Task, dirfd: i32, path: UserCStr, statbuf: UserRef<Stat>, flags: i32) -> SysResult<()> {
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) != 0 {
        return error!(EINVAL);
    }
    let p = read_path(t, path)?;
    let st = if p.is_empty() && flags & AT_EMPTY_PATH != 0 && dirfd != AT_FDCWD {
        t.fds.get(Fd(dirfd))?.stat()?
    } else {
        lookup_at(t, dirfd, &p, follow_of(flags), flags & AT_EMPTY_PATH != 0)?.inode.stat()?
    };
    write_stat(t, statbuf, st)
}

#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct StatxTimestamp {
    sec: i64,
    nsec: u32,
    pad: i32,
}

/// `struct statx`.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Statx {
    mask: u32,
    blksize: u32,
    attributes: u64,
    nlink: u32,
    uid: u32,
    gid: u32,
    mode: u16,
    pad1: u16,
    ino: u64,
    size: u64,
    blocks: u64,
    attributes_mask: u64,
    atime: StatxTimestamp,
    btime: StatxTimestamp,
    ctime: StatxTimestamp,
    mtime: StatxTimestamp,
    rdev_major: u32,
    rdev_minor: u32,
    dev_major: u32,
    dev_minor: u32,
    mnt_id: u64,
    spare: [u64; 13],
}

/// STATX_BASIC_STATS: everything `struct stat` has.
const STATX_BASIC_STATS: u32 = 0x7ff;
const STATX_MNT_ID: u32 = 0x1000;
const STATX_MNT_ID_UNIQUE: u32 = 0x4000;

pub(super) fn major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)) as u32
}

pub(super) fn minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0xff)) as u32
}

pub fn sys_statx(t: &mut Task, dirfd: i32, path: UserCStr, flags: i32, mask: u32, buf: UserAddr) -> SysResult<()> {
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) != 0 || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE {
        return error!(EINVAL);
    }
    if mask & 0x8000_0000 != 0 {
        return error!(EINVAL);
    }
    let p = read_path(t, path)?;
    let (s, dentry) = if p.is_empty() && flags & AT_EMPTY_PATH != 0 && dirfd != AT_FDCWD {
        let file = t.fds.get(Fd(dirfd))?;
        (file.stat()?, file.dentry())
    } else {
        let d = lookup_at(t, dirfd, &p, follow_of(flags), flags & AT_EMPTY_PATH != 0)?;
        (d.inode.stat()?, Some(d))
    };
    // The mount's ID, as Linux gives it whether asked or not: the unique one
    // when asked for, else the one /proc/PID/mountinfo shows. Files in no
    // mount (pipes, sockets) have none here.
    let (mnt_mask, mnt_id) = match dentry.and_then(|d| d.mount.upgrade()) {
        Some(m) if mask & STATX_MNT_ID_UNIQUE != 0 => (STATX_MNT_ID_UNIQUE, m.unique_id()),
        Some(m) => (STATX_MNT_ID, m.id),
        None => (0, 0),
    };
    let ts = |sec: i64, nsec: i64| StatxTimestamp { sec, nsec: nsec as u32, pad: 0 };
    let ns = t.tg.user_ns();
    let x = Statx {
        mask: STATX_BASIC_STATS | mnt_mask,
        blksize: s.st_blksize as u32,
        attributes: 0,
        nlink: s.st_nlink as u32,
        uid: ns.show_uid(s.st_uid),
        gid: ns.show_gid(s.st_gid),
        mode: s.st_mode as u16,
        pad1: 0,
        ino: s.st_ino,
        size: s.st_size as u64,
        blocks: s.st_blocks as u64,
        attributes_mask: 0,
        atime: ts(s.st_atime, s.st_atime_nsec),
        btime: StatxTimestamp::default(),
        ctime: ts(s.st_ctime, s.st_ctime_nsec),
        mtime: ts(s.st_mtime, s.st_mtime_nsec),
        rdev_major: major(s.st_rdev),
        rdev_minor: minor(s.st_rdev),
        dev_major: major(s.st_dev),
        dev_minor: minor(s.st_dev),
        mnt_id,
        spare: [0; 13],
    };
    t.mm.write_obj(UserRef::new(buf), &x)
}

/// `struct statfs`.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Statfs {
    f_type: i64,
    f_bsize: i64,
    f_blocks: u64,
    f_bfree: u64,
    f_bavail: u64,
    f_files: u64,
    f_ffree: u64,
    f_fsid: [i32; 2],
    f_namelen: i64,
    f_frsize: i64,
    f_flags: i64,
    f_spare: [i64; 4],
}

const TMPFS_MAGIC: i64 = 0x0102_1994;
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
const V9FS_MAGIC: i64 = 0x0102_1997;
const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const SYSFS_MAGIC: i64 = 0x6265_6572;
const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const ST_RELATIME: i64 = 4096;
const ST_NOSYMFOLLOW: i64 = 0x2000;

/// The magic number of a file system of type `fstype` (statfs's f_type,
/// statmount's sb_magic), `host` its host file system's figures if it has
/// them: what programs check (systemd's and procps' "is /proc mounted", "is
/// this tmpfs"). A host directory's mount says the host file system's type, as
/// a bind mount under runc does (runsc says 9P's, which tells a program nothing
/// about the files), whatever its type's name (`HostFs`); the root is an
/// overlay, as under runc and runsc.
pub(super) fn fs_magic(fstype: &str, host: Option<&rvisor_gofer::StatFs>) -> i64 {
    match fstype {
        "tmpfs" | "devtmpfs" => TMPFS_MAGIC,
        "proc" => PROC_SUPER_MAGIC,
        "sysfs" => SYSFS_MAGIC,
        "devpts" => DEVPTS_SUPER_MAGIC,
        "cgroup2" => CGROUP2_SUPER_MAGIC,
        "overlay" => OVERLAYFS_SUPER_MAGIC,
        _ => host.map_or(V9FS_MAGIC, |h| h.fs_type as i64),
    }
}

fn statfs_of(d: &crate::vfs::Dentry) -> Statfs {
    let (fstype, flags) = match d.mount.upgrade() {
        // ST_RDONLY from the mount's flag or its superblock's.
        Some(m) => (m.fstype.clone(), m.flags().read_only(m.is_read_only())),
        None => ("overlay".into(), MountFlags(MountFlags::RDONLY)),
    };
    let mut st = Statfs {
        f_type: 0,
        f_bsize: 4096,
        f_blocks: 1 << 20,
        f_bfree: 1 << 19,
        f_bavail: 1 << 19,
        f_files: 1 << 20,
        f_ffree: 1 << 19,
        f_fsid: [0, 0],
        f_namelen: 255,
        f_frsize: 4096,
        // ST_RDONLY, ST_NOSUID, ST_NODEV, ST_NOEXEC, ST_NOATIME and
        // ST_NODIRATIME are the MS_ bits; ST_RELATIME and ST_NOSYMFOLLOW are not.
        f_flags: i64::from(flags.0 & (MountFlags::LOCKABLE | MountFlags::NOATIME | MountFlags::NODIRATIME))
            | if flags.has(MountFlags::NOATIME | MountFlags::STRICTATIME) { 0 } else { ST_RELATIME }
            | if flags.has(MountFlags::NOSYMFOLLOW) { ST_NOSYMFOLLOW } else { 0 },
        f_spare: [0; 4],
    };
    // A tmpfs counts its pages; a host file's file system gives its own figures
    // (df in the sandbox shows the host disk's size and use, the root's too, whose
    // upper layer is in memory); others give nominal ones.
    if let Some((blocks, used)) = d.inode.space() {
        (st.f_blocks, st.f_bfree, st.f_bavail) = (blocks, blocks.saturating_sub(used), blocks.saturating_sub(used));
    }
    let host = d.inode.host_statfs();
    if let Some(h) = &host {
        (st.f_bsize, st.f_frsize, st.f_namelen) = (h.bsize as i64, h.frsize as i64, h.namelen as i64);
        (st.f_blocks, st.f_bfree, st.f_bavail) = (h.blocks, h.bfree, h.bavail);
        (st.f_files, st.f_ffree) = (h.files, h.ffree);
    }
    st.f_type = fs_magic(&fstype, host.as_ref());
    st
}

pub fn sys_statfs(t: &mut Task, path: UserCStr, buf: UserRef<Statfs>) -> SysResult<()> {
    let p = read_path(t, path)?;
    let d = lookup_at(t, AT_FDCWD, &p, Follow::Yes, false)?;
    t.mm.write_obj(buf, &statfs_of(&d))
}

pub fn sys_fstatfs(t: &mut Task, fd: Fd, buf: UserRef<Statfs>) -> SysResult<()> {
    let file = t.fds.get(fd)?;
    let st = match file.dentry() {
        Some(d) => statfs_of(&d),
        None => Statfs { f_type: 0x5049_5045, ..statfs_of(&t.fs.root()) },
    };
    t.mm.write_obj(buf, &st)
}

pub fn sys_readlinkat(t: &mut Task, dirfd: i32, path: UserCStr, buf: UserAddr, bufsiz: usize) -> SysResult<usize> {
    if bufsiz == 0 || bufsiz > i32::MAX as usize {
        return error!(EINVAL);
    }
    let p = read_path(t, path)?;
    let d = lookup_at(t, dirfd, &p, Follow::No, true)?;
    if d.inode.kind() != S_IFLNK {
        return error!(EINVAL);
    }
    let target = d.inode.readlink()?;
    let n = target.len().min(bufsiz);
    t.mm.write_bytes(buf, &target[..n])?;
    Ok(n)
}

pub fn sys_readlink(t: &mut Task, path: UserCStr, buf: UserAddr, bufsiz: usize) -> SysResult<usize> {
    sys_readlinkat(t, AT_FDCWD, path, buf, bufsiz)
}

const R_OK: i32 = 4;
const W_OK: i32 = 2;
const X_OK: i32 = 1;
const AT_EACCESS: i32 = 0x200;

pub fn sys_faccessat2(t: &mut Task, dirfd: i32, path: UserCStr, mode: i32, flags: i32) -> SysResult<()> {
    if mode & !(R_OK | W_OK | X_OK) != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return error!(EINVAL);
    }
    let p = read_path(t, path)?;
    let mut c = t.thread.fs_creds();
    if flags & AT_EACCESS == 0 {
        // Linux's access_override_creds: the real ids, with the permitted
        // capabilities for a real root and none for anyone else.
        let ids = t.tg.creds();
        (c.uid, c.gid) = (ids.uid, ids.gid);
        c.caps = if ids.uid == 0 { t.tg.caps.lock().unwrap_or_else(|e| e.into_inner()).permitted } else { 0 };
    }
    let d = lookup_at_as(t, &c, dirfd, &p, follow_of(flags), flags & AT_EMPTY_PATH != 0)?;
    let st = d.inode.stat()?;
    perm::check(&c, &st, mode as u32)?;
    // A read-only mount is reported after the permission check, and never for
    // device nodes, FIFOs and sockets.
    let special = matches!(st.st_mode & S_IFMT, S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK);
    if mode & W_OK != 0 && !special && read_only(&d) {
        return error!(EROFS);
    }
    Ok(())
}

pub fn sys_faccessat(t: &mut Task, dirfd: i32, path: UserCStr, mode: i32) -> SysResult<()> {
    sys_faccessat2(t, dirfd, path, mode, 0)
}

pub fn sys_access(t: &mut Task, path: UserCStr, mode: i32) -> SysResult<()> {
    sys_faccessat2(t, AT_FDCWD, path, mode, 0)
}

fn getdents(t: &mut Task, fd: Fd, buf: UserAddr, count: usize, format: crate::vfs::DirentFormat) -> SysResult<usize> {
    let file = t.fds.get(fd)?;
    let n = file.getdents(t, buf, count, format)?;
    crate::fs::inotify::notify_file(&*file, crate::fs::inotify::IN_ACCESS);
    Ok(n)
}

pub fn sys_getdents64(t: &mut Task, fd: Fd, buf: UserAddr, count: usize) -> SysResult<usize> {
    getdents(t, fd, buf, count, crate::vfs::DirentFormat::Dirent64)
}

/// The old getdents (struct linux_dirent), which sanitizers' runtimes still use.
pub fn sys_getdents(t: &mut Task, fd: Fd, buf: UserAddr, count: usize) -> SysResult<usize> {
    getdents(t, fd, buf, count, crate::vfs::DirentFormat::Dirent)
}

pub fn sys_lseek(t: &mut Task, fd: Fd, offset: i64, whence: i32) -> SysResult<i64> {
    t.fds.get(fd)?.seek(offset, whence)
}
