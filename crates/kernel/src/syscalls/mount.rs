//! mount, umount2 and pivot_root inside the sandbox: new tmpfs, proc, sysfs,
//! devpts and cgroup2 mounts, bind mounts, moves, read-only remounts,
//! propagation types and unmounts, in the calling process's mount namespace;
//! what is mounted and unmounted under a shared mount propagates
//! (`vfs::propagation`). The new mount API (`mount_api.rs`) shares the checks
//! and the making of file systems.

use super::args::UserCStr;
use super::open::{lookup_at, read_path, AT_FDCWD};
use crate::fs::fs_context::FsOption;
use crate::fs::tmpfs::{parse_size, Tmpfs};
use crate::kernel::Special;
use crate::task::Task;
use crate::vfs::inode::{Inode, SetAttr};
use crate::vfs::path::cross_down;
use crate::vfs::propagation::{self, CloneAs, Kind, MS_REC, PROPAGATION};
use crate::vfs::{Dentry, Follow, Mount, MountFlags, MountNamespace};
use rvisor_abi::{consts, errno, error, PAGE_SIZE, SysResult, UserAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const MS_RDONLY: u64 = 1;
const MS_REMOUNT: u64 = 32;
const MS_NOATIME: u64 = 1024;
const MS_NODIRATIME: u64 = 2048;
const MS_RELATIME: u64 = 1 << 21;
const MS_STRICTATIME: u64 = 1 << 24;
const MS_BIND: u64 = 4096;
const MS_MOVE: u64 = 8192;
/// Only quiets the kernel log.
const MS_SILENT: u64 = 32768;
/// The "magic number" old programs put in the flags' top half.
const MS_MGC_MSK: u64 = 0xffff_0000;
const MS_MGC_VAL: u64 = 0xc0ed_0000;

const MNT_FORCE: i32 = 1;
const MNT_DETACH: i32 = 2;
const MNT_EXPIRE: i32 = 4;
const UMOUNT_NOFOLLOW: i32 = 8;

/// The size of the option string mount(2) reads (Linux copies one page).
const DATA_MAX: usize = 4096;

/// Minor numbers of tmpfs instances mounted at run time: anonymous devices
/// (major 0), above those the boot's mounts take.
static NEXT_TMPFS_MINOR: AtomicU64 = AtomicU64::new(0x200);

/// may_mount: CAP_SYS_ADMIN over the caller's mount namespace (in the user
/// namespace that owns it).
pub(super) fn may_mount(t: &Task) -> bool {
    t.tg.capable_in(&t.fs.mounts().owner, consts::CAP_SYS_ADMIN)
}

/// A thread in a Landlock domain restricting files may not change its mount
/// tree, which the domain's rules follow (checked where Linux's security hooks
/// are: before anything else for mount, after the checks of what is named
/// for umount and pivot_root).
pub(super) fn landlock_allows(t: &Task) -> SysResult<()> {
    if crate::landlock::fs::may_change_mounts(t.thread.landlock().as_deref()) { Ok(()) } else { error!(EPERM) }
}

pub fn sys_mount(t: &mut Task, source: UserCStr, target: UserCStr, fstype: UserCStr, flags: u64, data: UserAddr) -> SysResult<()> {
    landlock_allows(t)?;
    if !may_mount(t) {
        return error!(EPERM);
    }
    let flags = if flags & MS_MGC_MSK == MS_MGC_VAL { flags & !MS_MGC_MSK } else { flags };
    let target = lookup_at(t, AT_FDCWD, &read_path(t, target)?, Follow::Yes, false)?;
    let ns = t.fs.mounts();
    // A place in another namespace (a directory opened before unshare) is not ours.
    if !target.mount.upgrade().is_some_and(|m| ns.contains(&m)) {
        return error!(EINVAL);
    }
    // Linux's path_mount order: remount, bind, propagation type, move, new.
    // A remount sets the mount's own flags and, but for a bind's, its
    // superblock's read-only state and a tmpfs's size.
    if flags & MS_REMOUNT != 0 {
        let m = mount_of_root(&target)?;
        let new = MountFlags::from_bits(flags);
        // Without an atime flag, a remount keeps the atime mode.
        let new = match flags & (MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME) {
            0 => MountFlags(new.0 | (m.flags().0 & MountFlags::ATIME)),
            _ => new,
        };
        if !m.may_set_flags(new) {
            return error!(EPERM);
        }
        if flags & MS_BIND == 0 {
            if !t.tg.capable_in(m.sb_owner(), consts::CAP_SYS_ADMIN) {
                return error!(EPERM);
            }
            reconfigure_fs(t, &m, &options(t, data)?).or(error!(EINVAL))?;
            m.set_sb_read_only(flags & MS_RDONLY != 0);
        }
        m.set_flags(new);
        return Ok(());
    }
    if flags & MS_BIND != 0 {
        let source = lookup_at(t, AT_FDCWD, &read_path(t, source)?, Follow::Yes, false)?;
        return bind(&ns, &source, target, flags & MS_REC != 0);
    }
    if flags & PROPAGATION != 0 {
        // Exactly one propagation type, with MS_REC at most (Linux's EINVAL).
        let kind = Kind::from_flags(flags & !(MS_REC | MS_SILENT)).ok_or_else(|| errno!(EINVAL))?;
        let m = mount_of_root(&target)?;
        let mut propagation = propagation::lock();
        let mounts = if flags & MS_REC != 0 { ns.subtree(&m) } else { vec![m] };
        mounts.iter().for_each(|m| propagation.change(m, kind));
        return Ok(());
    }
    if flags & MS_MOVE != 0 {
        let source = lookup_at(t, AT_FDCWD, &read_path(t, source)?, Follow::Yes, false)?;
        return move_mount(&ns, &source, target);
    }
    if !target.is_dir() {
        return error!(ENOTDIR);
    }
    let fstype = t.mm.read_cstr(fstype.0, 256)?;
    let name = if source.0.is_null() { Vec::new() } else { t.mm.read_cstr(source.0, DATA_MAX)? };
    let (inode, kind) = make_fs(t, &fstype, &options(t, data)?)?;
    let mut propagation = propagation::lock();
    ns.room(1)?;
    let m = Mount::new(t.tg.user_ns(), inode, Some(target), kind, &String::from_utf8_lossy(&name), MountFlags::from_bits(flags));
    ns.add(m.clone());
    propagation.graft(&m)
}

/// mount(2)'s comma-separated options.
fn options(t: &Task, data: UserAddr) -> SysResult<Vec<FsOption>> {
    let data = if data.is_null() { Vec::new() } else { t.mm.read_cstr(data, DATA_MAX)? };
    Ok(data.split(|&b| b == b',').filter(|o| !o.is_empty()).map(FsOption::parse).collect())
}

/// A remount's or reconfigure's options for the file system `m` is in: only
/// tmpfs checks them, and only its `size=` (or `nr_blocks=`) changes (Linux's
/// shmem_reconfigure leaves the root's owner and mode). The error is Linux's
/// message.
pub(super) fn reconfigure_fs(t: &Task, m: &Mount, options: &[FsOption]) -> Result<(), String> {
    let Some(fs) = Tmpfs::of(&*m.root.inode) else { return Ok(()) };
    let mut o = TmpfsOptions::default();
    for opt in options {
        tmpfs_option(t, &mut o, opt)?;
    }
    o.size.map_or(Ok(()), |size| fs.resize(size).map_err(String::from))?;
    // What else Linux's shmem_reconfigure changes; the size shows from now.
    fs.show(|s| {
        s.sized |= o.size.is_some();
        s.nr_inodes = o.nr_inodes.or(s.nr_inodes.take());
        s.huge = o.huge.or(s.huge.take());
        s.inode64 = o.inode64.unwrap_or(s.inode64);
    });
    Ok(())
}

/// The type name of the file system `fstype` names, if the sandbox has it.
pub(super) fn fs_name(fstype: &[u8]) -> Option<&'static str> {
    match Special::by_name(fstype) {
        Some(special) => Some(special.name()),
        None => (fstype == b"tmpfs").then_some("tmpfs"),
    }
}

/// A new file system of type `fstype` (ENODEV for one the sandbox lacks) with
/// `options` (only tmpfs reads them), and its type name.
pub(super) fn make_fs(t: &Task, fstype: &[u8], options: &[FsOption]) -> SysResult<(Arc<dyn Inode>, &'static str)> {
    match (Special::by_name(fstype), fstype) {
        (Some(special), _) => Ok(special.make(&Arc::downgrade(&t.kernel), t.pid_ns(), &t.kernel.devpts, t.kernel.cpus)),
        (None, b"tmpfs") => Ok((new_tmpfs(t, options)?, "tmpfs")),
        _ => error!(ENODEV),
    }
}

/// MS_MOVE and move_mount: the mount whose root `source` is, and what is
/// mounted beneath it, go to `target`, which must not be beneath it (ELOOP),
/// and propagate from there. As Linux's do_move_mount, a mount whose parent is
/// shared does not move (its peers would not follow), nor does a tree with an
/// unbindable mount go under a shared one (EINVAL).
pub(super) fn move_mount(ns: &Arc<MountNamespace>, source: &Arc<Dentry>, target: Arc<Dentry>) -> SysResult<()> {
    let m = mount_of_root(source)?;
    if !ns.contains(&m) || m.mountpoint().is_none() || m.is_locked() || source.is_dir() != target.is_dir() {
        return error!(EINVAL);
    }
    let mut propagation = propagation::lock();
    if m.parent().is_some_and(|p| propagation.is_shared(&p)) || unbindable_into_shared(&propagation, &ns.subtree(&m), &target) {
        return error!(EINVAL);
    }
    if target.is_beneath(&m.root) {
        return error!(ELOOP);
    }
    ns.move_mount(&m, target);
    propagation.graft(&m)
}

/// Whether `tree` has an unbindable mount and `target` is on a shared one,
/// where Linux moves and attaches no tree.
pub(super) fn unbindable_into_shared(propagation: &propagation::Propagation, tree: &[Arc<Mount>], target: &Arc<Dentry>) -> bool {
    target.mount.upgrade().is_some_and(|d| propagation.is_shared(&d)) && tree.iter().any(|m| propagation.is_unbindable(m))
}

/// pivot_root: the mount whose root `new_root` is becomes the root of the
/// calling process's namespace (in the place of the process's root mount), and
/// that mount goes on `put_old`, at or beneath `new_root`. The processes whose
/// root or cwd was the old root move to the new one.
pub fn sys_pivot_root(t: &mut Task, new_root: UserCStr, put_old: UserCStr) -> SysResult<()> {
    if !may_mount(t) {
        return error!(EPERM);
    }
    let new = lookup_at(t, AT_FDCWD, &read_path(t, new_root)?, Follow::Yes, false)?;
    let old = lookup_at(t, AT_FDCWD, &read_path(t, put_old)?, Follow::Yes, false)?;
    if !new.is_dir() || !old.is_dir() {
        return error!(ENOTDIR);
    }
    let ns = t.fs.mounts();
    let root = t.fs.root();
    let root_mount = mount_of_root(&root)?;
    let new_mount = mount_of_root(&new)?;
    let in_ns = |d: &Arc<Dentry>| d.mount.upgrade().is_some_and(|m| ns.contains(&m));
    if !in_ns(&root) || !in_ns(&new) || !in_ns(&old) {
        return error!(EINVAL);
    }
    // Nothing moves out of or into a shared mount (its peers would not
    // follow): put_old's mount, and the parents of the new and the old root
    // (the tree's root is its own parent, as in Linux).
    let propagation = propagation::lock();
    let old = cross_down(old);
    let shared_parent = |m: &Arc<Mount>| propagation.is_shared(&m.parent().unwrap_or_else(|| m.clone()));
    if old.mount.upgrade().is_some_and(|m| propagation.is_shared(&m)) || shared_parent(&new_mount) || shared_parent(&root_mount) {
        return error!(EINVAL);
    }
    // The new root must be a mount of its own, attached, and not the root's file
    // system seen again.
    if Arc::ptr_eq(&new_mount, &root_mount) || old.mount.ptr_eq(&root.mount) {
        return error!(EBUSY);
    }
    let new_place = new_mount.mountpoint().ok_or_else(|| errno!(EINVAL))?;
    if !old.is_beneath(&new) || !new_place.is_beneath(&root) {
        return error!(EINVAL);
    }
    landlock_allows(t)?;
    ns.pivot_root(&root_mount, &new_mount, old);
    drop(propagation);
    for th in t.kernel.all_groups().iter().flat_map(|tg| tg.threads()) {
        if let Some(res) = th.resources() {
            res.fs.pivoted(&ns, &root, &new);
        }
    }
    Ok(())
}

/// A bind mount of `source` on `target`; with `recursive` (MS_REC), what is
/// mounted beneath `source` comes along, but for unbindable mounts. Each copy
/// is a peer of a shared original and a slave of a slave's master; the new
/// tree propagates as a new mount does. An unbindable mount is bound nowhere
/// (EINVAL).
fn bind(ns: &Arc<MountNamespace>, source: &Arc<Dentry>, target: Arc<Dentry>, recursive: bool) -> SysResult<()> {
    let mut propagation = propagation::lock();
    if source.mount.upgrade().is_some_and(|m| propagation.is_unbindable(&m)) {
        return error!(EINVAL);
    }
    if source.is_dir() != target.is_dir() {
        return error!(ENOTDIR);
    }
    let copies = match source.mount.upgrade() {
        Some(m) if recursive => ns.subtree(&m).len(),
        _ => 1,
    };
    ns.room(copies)?;
    let (copy, beneath) = propagation.copy_tree(ns, source, Some(target), recursive, CloneAs::Same)?;
    ns.add(copy.clone());
    beneath.into_iter().for_each(|m| ns.add(m));
    propagation.graft(&copy)
}

/// What tmpfs's options ask for.
#[derive(Default)]
struct TmpfsOptions {
    mode: Option<u32>,
    attr: SetAttr,
    size: Option<u64>,
    nr_inodes: Option<u64>,
    huge: Option<String>,
    /// `inode64` (true) or `inode32` (false).
    inode64: Option<bool>,
    noswap: bool,
}

/// Whether `o` is one of tmpfs's options with a value it takes: EINVAL with
/// the message Linux logs ("Unknown parameter", "Bad value") otherwise. The
/// fs context's fsconfig checks each as it comes.
pub(super) fn check_tmpfs_option(t: &Task, o: &FsOption) -> Result<(), String> {
    tmpfs_option(t, &mut TmpfsOptions::default(), o)
}

fn tmpfs_option(t: &Task, to: &mut TmpfsOptions, o: &FsOption) -> Result<(), String> {
    let key = String::from_utf8_lossy(&o.key);
    let bad = || format!("Bad value for '{key}'");
    let value = std::str::from_utf8(o.value.as_deref().unwrap_or_default()).unwrap_or("");
    let number = |radix| u32::from_str_radix(value, radix).map_err(|_| bad());
    let user_ns = t.tg.user_ns();
    match o.key.as_slice() {
        b"mode" => to.mode = Some(number(8)? & 0o7777),
        b"uid" => to.attr.uid = Some(user_ns.uid_arg(number(10)?).map_err(|_| bad())?),
        b"gid" => to.attr.gid = Some(user_ns.gid_arg(number(10)?).map_err(|_| bad())?),
        b"size" => to.size = Some(parse_size(value).ok_or_else(bad)?),
        b"nr_blocks" => to.size = Some(parse_size(value).and_then(|n| n.checked_mul(PAGE_SIZE)).ok_or_else(bad)?),
        b"nr_inodes" => to.nr_inodes = Some(parse_size(value).filter(|_| !value.ends_with('%')).ok_or_else(bad)?),
        b"huge" if ["never", "always", "within_size", "advise"].contains(&value) => to.huge = Some(value.to_string()),
        b"huge" => return Err(bad()),
        b"inode32" | b"inode64" => to.inode64 = Some(o.key == b"inode64"),
        b"noswap" => to.noswap = true,
        b"mpol" => {}
        _ => return Err(format!("Unknown parameter '{key}'")),
    }
    Ok(())
}

/// A tmpfs with the options `mode=`, `uid=` and `gid=` (ids in the mounter's
/// user namespace) applied to its root, which is the mounter's otherwise, and
/// `size=` (or `nr_blocks=`) enforced; inode limits and the rest of Linux's
/// options are accepted; anything else is EINVAL.
fn new_tmpfs(t: &Task, options: &[FsOption]) -> SysResult<Arc<dyn Inode>> {
    let mut o = TmpfsOptions::default();
    for opt in options {
        tmpfs_option(t, &mut o, opt).or(error!(EINVAL))?;
    }
    let (mode, mut attr, size) = (o.mode.unwrap_or(0o1777), o.attr, o.size);
    let minor = NEXT_TMPFS_MINOR.fetch_add(1, Ordering::Relaxed);
    // Linux's new_encode_dev with major 0.
    let dev = (minor & 0xff) | ((minor & !0xff) << 12);
    let fs = Tmpfs::sized(t.kernel.memory.clone(), dev, size);
    let root = fs.root(mode);
    let c = t.tg.creds();
    let (uid, gid) = (*attr.uid.get_or_insert(c.fsuid), *attr.gid.get_or_insert(c.fsgid));
    if uid != 0 || gid != 0 {
        root.setattr(&attr)?;
    }
    fs.show(|s| {
        (s.uid, s.gid, s.nr_inodes, s.huge, s.noswap) = (uid, gid, o.nr_inodes, o.huge, o.noswap);
        s.inode64 = o.inode64.unwrap_or(false);
    });
    Ok(root)
}

/// The mount whose root `d` is (a walk ends on the topmost one), or EINVAL.
pub(super) fn mount_of_root(d: &Arc<Dentry>) -> SysResult<Arc<Mount>> {
    match d.mount.upgrade() {
        Some(m) if Arc::ptr_eq(&m.root, d) => Ok(m),
        _ => error!(EINVAL),
    }
}

pub fn sys_umount2(t: &mut Task, target: UserCStr, flags: i32) -> SysResult<()> {
    if flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0 || (flags & MNT_EXPIRE != 0 && flags & (MNT_FORCE | MNT_DETACH) != 0) {
        return error!(EINVAL);
    }
    if !may_mount(t) {
        return error!(EPERM);
    }
    let follow = if flags & UMOUNT_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
    // What is mounted on the place named goes (`umount .` in a directory since
    // mounted over, as runc does after `pivot_root . .`).
    let target = cross_down(lookup_at(t, AT_FDCWD, &read_path(t, target)?, follow, false)?);
    let m = mount_of_root(&target)?;
    let ns = t.fs.mounts();
    let mut propagation = propagation::lock();
    // The root of the tree cannot go, nor a locked mount; MNT_EXPIRE needs a
    // mount unused since the last call, which nothing here tracks.
    if m.mountpoint().is_none() || !ns.contains(&m) || m.is_locked() {
        return error!(EINVAL);
    }
    if flags & MNT_EXPIRE != 0 {
        return error!(EAGAIN);
    }
    landlock_allows(t)?;
    if flags & MNT_DETACH == 0 && !ns.children(&m).is_empty() {
        return error!(EBUSY);
    }
    propagation.umount(&ns, &m);
    Ok(())
}
