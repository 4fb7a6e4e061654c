//! The new mount API, as Linux's fs/fsopen.c and fs/namespace.c: fsopen,
//! fsconfig, fsmount and fspick make and reconfigure file systems through an
//! fs context (`fs::fs_context`); fsmount and open_tree's clones give
//! detached trees (an O_PATH descriptor holding a mount namespace of their
//! own, `PathFile::tree`) that move_mount attaches; move_mount also moves
//! attached mounts, or joins a mount to another's peer group
//! (MOVE_MOUNT_SET_GROUP), and mount_setattr changes mounts' flags and
//! propagation types. The checks are mount(2)'s (`mount.rs`), and so is
//! propagation (`vfs::propagation`).

use super::args::UserCStr;
use super::landlock::read_sized;
use super::mount::{check_tmpfs_option, fs_name, landlock_allows, make_fs, may_mount, mount_of_root, move_mount, reconfigure_fs, unbindable_into_shared};
use super::open::{lookup_at, read_path, PathFile, AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW};
use super::pipe::install;
use crate::fs::fs_context::{FsContext, FsOption, Params, Phase};
use crate::fs::nsfs::{Namespace, NsFile};
use crate::task::Task;
use crate::vfs::path::cross_down;
use crate::vfs::propagation::{self, CloneAs, Kind};
use crate::vfs::{Dentry, Fd, Follow, Mount, MountFlags, MountNamespace};
use rvisor_abi::structs::MountAttr;
use rvisor_abi::{consts, errno, error, PAGE_SIZE, SysResult, UserAddr};
use std::sync::Arc;

const O_CLOEXEC: u32 = 0o2000000;
const AT_NO_AUTOMOUNT: u32 = 0x800;
const AT_RECURSIVE: u32 = 0x8000;

const OPEN_TREE_CLONE: u32 = 1;
const OPEN_TREE_CLOEXEC: u32 = O_CLOEXEC;

const MOVE_MOUNT_F_SYMLINKS: u32 = 0x1;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_SYMLINKS: u32 = 0x10;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
const MOVE_MOUNT_SET_GROUP: u32 = 0x100;
const MOVE_MOUNT_BENEATH: u32 = 0x200;
/// Every flag, the automount ones (nothing here automounts) included.
const MOVE_MOUNT_MASK: u32 = 0x377;

const FSOPEN_CLOEXEC: u32 = 1;
const FSMOUNT_CLOEXEC: u32 = 1;
const FSPICK_CLOEXEC: u32 = 1;
const FSPICK_SYMLINK_NOFOLLOW: u32 = 2;
const FSPICK_NO_AUTOMOUNT: u32 = 4;
const FSPICK_EMPTY_PATH: u32 = 8;

const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_SET_BINARY: u32 = 2;
const FSCONFIG_SET_PATH: u32 = 3;
const FSCONFIG_SET_PATH_EMPTY: u32 = 4;
const FSCONFIG_SET_FD: u32 = 5;
const FSCONFIG_CMD_CREATE: u32 = 6;
const FSCONFIG_CMD_RECONFIGURE: u32 = 7;
const FSCONFIG_CMD_CREATE_EXCL: u32 = 8;
/// The longest key or string value fsconfig reads.
const PARAM_MAX: usize = 256;

/// MOUNT_ATTR_RDONLY, NOSUID, NODEV and NOEXEC: mount(2)'s MS_* bits.
const MOUNT_ATTR_FLAGS: u64 = 0xf;
const MOUNT_ATTR_ATIME: u64 = 0x70;
const MOUNT_ATTR_RELATIME: u64 = 0;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_IDMAP: u64 = 0x10_0000;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x20_0000;
/// fsmount's attributes (no idmapping: a new mount has none).
const FSMOUNT_VALID: u64 = MOUNT_ATTR_FLAGS | MOUNT_ATTR_ATIME | MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_NOSYMFOLLOW;
const SETATTR_VALID: u64 = FSMOUNT_VALID | MOUNT_ATTR_IDMAP;
/// struct mount_attr's first size.
const MOUNT_ATTR_SIZE_VER0: usize = 32;

/// The superblock flags every file system takes (Linux's common_set_sb_flag
/// and common_clear_sb_flag); only ro and rw act here.
const SB_FLAGS: &[&[u8]] = &[b"dirsync", b"lazytime", b"mand", b"posixacl", b"sync", b"async", b"nolazytime", b"nomand"];

fn follow_unless(nofollow: bool) -> Follow {
    if nofollow { Follow::No } else { Follow::Yes }
}

/// The detached tree `m` is in, if one of the caller's descriptors holds it:
/// a path reaches a detached tree only from a descriptor of it (itself, a
/// path relative to it, or its /proc/self/fd link).
fn detached_tree(t: &Task, m: &Arc<Mount>) -> Option<Arc<MountNamespace>> {
    t.fds.list().into_iter().find_map(|(_, file, _)| PathFile::of(&file)?.tree.clone().filter(|tree| tree.contains(m)))
}

/// The detached tree whose root `m` is (what move_mount attaches, and
/// mount_setattr changes outside the caller's namespace), or EINVAL.
fn detached_root(t: &Task, m: &Arc<Mount>) -> SysResult<Arc<MountNamespace>> {
    detached_tree(t, m).filter(|tree| Arc::ptr_eq(&tree.root(), m)).ok_or_else(|| errno!(EINVAL))
}

/// Installs an O_PATH descriptor for `dentry`, holding `tree` if detached.
fn install_path(t: &Task, dentry: Arc<Dentry>, tree: Option<Arc<MountNamespace>>, cloexec: bool) -> SysResult<Fd> {
    install(t, Arc::new(PathFile { dentry, tree }), cloexec)
}

pub fn sys_open_tree(t: &mut Task, dfd: i32, path: UserCStr, flags: u32) -> SysResult<Fd> {
    let known = AT_EMPTY_PATH as u32 | AT_NO_AUTOMOUNT | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW as u32 | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if flags & !known != 0 || flags & (AT_RECURSIVE | OPEN_TREE_CLONE) == AT_RECURSIVE {
        return error!(EINVAL);
    }
    let clone = flags & OPEN_TREE_CLONE != 0;
    if clone && !may_mount(t) {
        return error!(EPERM);
    }
    let follow = follow_unless(flags & AT_SYMLINK_NOFOLLOW as u32 != 0);
    let d = lookup_at(t, dfd, &read_path(t, path)?, follow, flags & AT_EMPTY_PATH as u32 != 0)?;
    let cloexec = flags & OPEN_TREE_CLOEXEC != 0;
    if !clone {
        return install_path(t, d, None, cloexec);
    }
    // Only a tree of the caller's namespace, or a detached one it holds, is
    // copied (Linux's may_copy_tree).
    let ns = t.fs.mounts();
    let m = d.mount.upgrade().ok_or_else(|| errno!(EINVAL))?;
    let from = match ns.contains(&m) {
        true => ns.clone(),
        false => detached_tree(t, &m).ok_or_else(|| errno!(EINVAL))?,
    };
    let mut propagation = propagation::lock();
    // An unbindable mount is copied nowhere (Linux's __do_loopback).
    if propagation.is_unbindable(&m) {
        return error!(EINVAL);
    }
    let (root, beneath) = propagation.copy_tree(&from, &d, None, flags & AT_RECURSIVE != 0, CloneAs::Same)?;
    drop(propagation);
    let dentry = root.root.clone();
    install_path(t, dentry, Some(MountNamespace::detached(ns.owner.clone(), root, beneath)), cloexec)
}

pub fn sys_move_mount(t: &mut Task, from_dfd: i32, from_path: UserCStr, to_dfd: i32, to_path: UserCStr, flags: u32) -> SysResult<()> {
    if !may_mount(t) {
        return error!(EPERM);
    }
    if flags & !MOVE_MOUNT_MASK != 0 || flags & (MOVE_MOUNT_BENEATH | MOVE_MOUNT_SET_GROUP) == MOVE_MOUNT_BENEATH | MOVE_MOUNT_SET_GROUP {
        return error!(EINVAL);
    }
    let from = lookup_at(t, from_dfd, &read_path(t, from_path)?, follow_unless(flags & MOVE_MOUNT_F_SYMLINKS == 0), flags & MOVE_MOUNT_F_EMPTY_PATH != 0)?;
    let to = lookup_at(t, to_dfd, &read_path(t, to_path)?, follow_unless(flags & MOVE_MOUNT_T_SYMLINKS == 0), flags & MOVE_MOUNT_T_EMPTY_PATH != 0)?;
    landlock_allows(t)?;
    // Mounting beneath is not done here.
    if flags & MOVE_MOUNT_BENEATH != 0 {
        return error!(EINVAL);
    }
    if flags & MOVE_MOUNT_SET_GROUP != 0 {
        return set_group(t, &from, &to);
    }
    let ns = t.fs.mounts();
    let to = cross_down(to);
    if !to.mount.upgrade().is_some_and(|m| ns.contains(&m)) {
        return error!(EINVAL);
    }
    let m = mount_of_root(&from)?;
    if ns.contains(&m) {
        return move_mount(&ns, &from, to);
    }
    let tree = detached_root(t, &m)?;
    if from.is_dir() != to.is_dir() {
        return error!(EINVAL);
    }
    let mut propagation = propagation::lock();
    if unbindable_into_shared(&propagation, &tree.mounts(), &to) {
        return error!(EINVAL);
    }
    ns.room(tree.mounts().len())?;
    ns.attach_tree(&tree, to);
    propagation.graft(&m)
}

/// MOVE_MOUNT_SET_GROUP: the mount whose root `to` is joins the peer group of
/// the one whose root `from` is (`Propagation::set_group` has the rules);
/// both must be in a namespace, or a detached tree, whose owner gives the
/// caller CAP_SYS_ADMIN (EPERM), as Linux's do_set_group.
fn set_group(t: &Task, from: &Arc<Dentry>, to: &Arc<Dentry>) -> SysResult<()> {
    let mut propagation = propagation::lock();
    let (Some(from_mount), Some(to_mount)) = (from.mount.upgrade(), to.mount.upgrade()) else { return error!(EINVAL) };
    let (Some(from_ns), Some(to_ns)) = (from_mount.ns(), to_mount.ns()) else { return error!(EINVAL) };
    if !t.tg.capable_in(&from_ns.owner, consts::CAP_SYS_ADMIN) || !t.tg.capable_in(&to_ns.owner, consts::CAP_SYS_ADMIN) {
        return error!(EPERM);
    }
    propagation.set_group(&mount_of_root(from)?, &mount_of_root(to)?)
}

pub fn sys_fsopen(t: &mut Task, fstype: UserCStr, flags: u32) -> SysResult<Fd> {
    if !may_mount(t) {
        return error!(EPERM);
    }
    if flags & !FSOPEN_CLOEXEC != 0 {
        return error!(EINVAL);
    }
    let name = fs_name(&t.mm.read_cstr(fstype.0, PAGE_SIZE as usize)?).ok_or_else(|| errno!(ENODEV))?;
    install(t, Arc::new(FsContext::new(name, Phase::Create(Params::default()))), flags & FSOPEN_CLOEXEC != 0)
}

pub fn sys_fspick(t: &mut Task, dfd: i32, path: UserCStr, flags: u32) -> SysResult<Fd> {
    if !may_mount(t) {
        return error!(EPERM);
    }
    if flags & !(FSPICK_CLOEXEC | FSPICK_SYMLINK_NOFOLLOW | FSPICK_NO_AUTOMOUNT | FSPICK_EMPTY_PATH) != 0 {
        return error!(EINVAL);
    }
    let d = lookup_at(t, dfd, &read_path(t, path)?, follow_unless(flags & FSPICK_SYMLINK_NOFOLLOW != 0), flags & FSPICK_EMPTY_PATH != 0)?;
    let mount = mount_of_root(&d)?;
    let ctx = FsContext::new(mount.fstype.clone(), Phase::Reconfigure { mount, params: Params::default() });
    install(t, Arc::new(ctx), flags & FSPICK_CLOEXEC != 0)
}

pub fn sys_fsconfig(t: &mut Task, fd: i32, cmd: u32, key: UserAddr, value: UserAddr, aux: i32) -> SysResult<()> {
    if fd < 0 {
        return error!(EINVAL);
    }
    // What each command takes (Linux checks the shape before the descriptor).
    let (k, v) = (!key.is_null(), !value.is_null());
    let fits = match cmd {
        FSCONFIG_SET_FLAG => k && !v && aux == 0,
        FSCONFIG_SET_STRING => k && v && aux == 0,
        FSCONFIG_SET_BINARY => k && v && aux > 0 && aux <= 1 << 20,
        FSCONFIG_SET_PATH | FSCONFIG_SET_PATH_EMPTY => k && v && (aux == super::open::AT_FDCWD || aux >= 0),
        FSCONFIG_SET_FD => k && !v && aux >= 0,
        FSCONFIG_CMD_CREATE | FSCONFIG_CMD_RECONFIGURE | FSCONFIG_CMD_CREATE_EXCL => !k && !v && aux == 0,
        _ => return error!(EOPNOTSUPP),
    };
    if !fits {
        return error!(EINVAL);
    }
    let file = t.fds.get(Fd(fd))?;
    let ctx = FsContext::of(&file).ok_or_else(|| errno!(EINVAL))?;
    let param = match k {
        true => Some(FsOption {
            key: t.mm.read_cstr(key, PARAM_MAX)?,
            // Only a string is a value the options here take.
            value: if cmd == FSCONFIG_SET_STRING { Some(t.mm.read_cstr(value, PARAM_MAX)?) } else { None },
        }),
        false => None,
    };
    if cmd == FSCONFIG_SET_FD {
        t.fds.get(Fd(aux))?;
    }
    let mut phase = ctx.phase();
    match (cmd, param) {
        (FSCONFIG_CMD_CREATE | FSCONFIG_CMD_CREATE_EXCL, _) => create(t, ctx, &mut phase),
        (FSCONFIG_CMD_RECONFIGURE, _) => reconfigure(t, ctx, &mut phase),
        (_, Some(param)) => match &mut *phase {
            Phase::Create(params) | Phase::Reconfigure { params, .. } => set_param(t, ctx, params, param),
            _ => error!(EBUSY),
        },
        (_, None) => error!(EINVAL),
    }
}

/// One parameter, checked now as Linux's vfs_parse_fs_param does: the
/// superblock flags, then the file system's own options (only tmpfs's are
/// checked; the others take any, as their mount(2) does), then "source".
/// What is wrong is logged for read(2).
fn set_param(t: &Task, ctx: &FsContext, params: &mut Params, param: FsOption) -> SysResult<()> {
    match param.key.as_slice() {
        b"ro" | b"rw" => {
            params.read_only = Some(param.key == b"ro");
            return Ok(());
        }
        k if SB_FLAGS.contains(&k) => return Ok(()),
        b"source" => {
            let problem = match (&param.value, &params.source) {
                (None, _) => "VFS: Non-string source",
                (_, Some(_)) => "VFS: Multiple sources",
                (Some(v), None) => {
                    params.source = Some(v.clone());
                    return Ok(());
                }
            };
            ctx.error(problem);
            return error!(EINVAL);
        }
        _ => {}
    }
    if ctx.fstype == "tmpfs" {
        if let Err(problem) = check_tmpfs_option(t, &param) {
            ctx.error(&format!("{}: {problem}", ctx.fstype));
            return error!(EINVAL);
        }
    }
    params.options.push(param);
    Ok(())
}

/// FSCONFIG_CMD_CREATE: the file system, made once.
fn create(t: &Task, ctx: &FsContext, phase: &mut Phase) -> SysResult<()> {
    let Phase::Create(params) = phase else { return error!(EBUSY) };
    if !may_mount(t) {
        return error!(EPERM);
    }
    match make_fs(t, ctx.fstype.as_bytes(), &params.options) {
        Ok((root, _)) => {
            *phase = Phase::AwaitingMount { root, params: std::mem::take(params) };
            Ok(())
        }
        Err(e) => {
            *phase = Phase::Failed;
            Err(e)
        }
    }
}

/// FSCONFIG_CMD_RECONFIGURE: "ro" or "rw" make the superblock read-only or
/// writable (every mount of it), as mount(2)'s remount without MS_BIND does,
/// leaving the mount's own flag alone (mount_setattr's business); a tmpfs takes
/// its new size; the parameters start afresh for the next one.
fn reconfigure(t: &Task, ctx: &FsContext, phase: &mut Phase) -> SysResult<()> {
    let Phase::Reconfigure { mount, params } = phase else { return error!(EBUSY) };
    if !may_mount(t) {
        *phase = Phase::Failed;
        return error!(EPERM);
    }
    landlock_allows(t)?;
    if !t.tg.capable_in(mount.sb_owner(), consts::CAP_SYS_ADMIN) {
        return error!(EPERM);
    }
    if let Err(problem) = reconfigure_fs(t, mount, &params.options) {
        ctx.error(&format!("{}: {problem}", ctx.fstype));
        return error!(EINVAL);
    }
    if let Some(ro) = params.read_only {
        mount.set_sb_read_only(ro);
    }
    *params = Params::default();
    Ok(())
}

/// The mount flags among MOUNT_ATTR_* `attrs` (MOUNT_ATTR__ATIME, all of it,
/// is both atime modes).
fn mount_flags(attrs: u64) -> MountFlags {
    let others = [
        (MOUNT_ATTR_NOATIME, MountFlags::NOATIME),
        (MOUNT_ATTR_STRICTATIME, MountFlags::STRICTATIME),
        (MOUNT_ATTR_NODIRATIME, MountFlags::NODIRATIME),
        (MOUNT_ATTR_NOSYMFOLLOW, MountFlags::NOSYMFOLLOW),
    ];
    MountFlags(others.iter().filter(|&&(attr, _)| attrs & attr != 0).fold((attrs & MOUNT_ATTR_FLAGS) as u32, |f, &(_, flag)| f | flag))
}

/// The MOUNT_ATTR_* attributes of a mount with `flags` (statmount's mnt_attr,
/// as Linux's mnt_to_attr_flags: relatime, the default, is 0).
pub(super) fn mount_attrs(flags: MountFlags) -> u64 {
    let atime = if flags.has(MountFlags::NOATIME) {
        MOUNT_ATTR_NOATIME
    } else if flags.has(MountFlags::STRICTATIME) {
        MOUNT_ATTR_STRICTATIME
    } else {
        MOUNT_ATTR_RELATIME
    };
    let others = [(MountFlags::NODIRATIME, MOUNT_ATTR_NODIRATIME), (MountFlags::NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW)];
    others.iter().filter(|&&(flag, _)| flags.has(flag)).fold(u64::from(flags.0 & MountFlags::LOCKABLE) | atime, |a, &(_, attr)| a | attr)
}

pub fn sys_fsmount(t: &mut Task, fs_fd: Fd, flags: u32, attr_flags: u32) -> SysResult<Fd> {
    if !may_mount(t) {
        return error!(EPERM);
    }
    let attrs = u64::from(attr_flags);
    if flags & !FSMOUNT_CLOEXEC != 0 || attrs & !FSMOUNT_VALID != 0 {
        return error!(EINVAL);
    }
    if !matches!(attrs & MOUNT_ATTR_ATIME, MOUNT_ATTR_RELATIME | MOUNT_ATTR_NOATIME | MOUNT_ATTR_STRICTATIME) {
        return error!(EINVAL);
    }
    let file = t.fds.get(fs_fd)?;
    let ctx = FsContext::of(&file).ok_or_else(|| errno!(EINVAL))?;
    let mut phase = ctx.phase();
    // Not yet made: no root to mount (EINVAL); made and mounted: EBUSY.
    let (root, params) = match std::mem::replace(&mut *phase, Phase::Failed) {
        Phase::AwaitingMount { root, params } => (root, params),
        other @ Phase::Reconfigure { .. } => {
            *phase = other;
            return error!(EBUSY);
        }
        other => {
            *phase = other;
            return error!(EINVAL);
        }
    };
    let mount_flags = mount_flags(attrs);
    let source = String::from_utf8_lossy(params.source.as_deref().unwrap_or(b"none")).into_owned();
    let mount = Mount::new(t.tg.user_ns(), root, None, ctx.fstype.clone(), &source, mount_flags);
    // The superblock is read-only by "ro", not by MOUNT_ATTR_RDONLY.
    mount.set_sb_read_only(params.read_only == Some(true));
    // The context goes on as fspick's would, for the new mount.
    *phase = Phase::Reconfigure { mount: mount.clone(), params: Params::default() };
    drop(phase);
    let dentry = mount.root.clone();
    let tree = MountNamespace::detached(t.fs.mounts().owner.clone(), mount, Vec::new());
    install_path(t, dentry, Some(tree), flags & FSMOUNT_CLOEXEC != 0)
}

pub fn sys_mount_setattr(t: &mut Task, dfd: i32, path: UserCStr, flags: u32, uattr: UserAddr, size: usize) -> SysResult<()> {
    if flags & !(AT_EMPTY_PATH as u32 | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW as u32 | AT_NO_AUTOMOUNT) != 0 {
        return error!(EINVAL);
    }
    if !may_mount(t) {
        return error!(EPERM);
    }
    let a: MountAttr = read_sized(t, uattr, size, MOUNT_ATTR_SIZE_VER0)?;
    if a.attr_set == 0 && a.attr_clr == 0 && a.propagation == 0 {
        return Ok(());
    }
    // Linux's build_mount_kattr: one propagation type at most, known
    // attributes, and an atime mode changed only with all of _ATIME cleared.
    let kind = Kind::from_flags(a.propagation);
    if (a.propagation != 0 && kind.is_none()) || (a.attr_set | a.attr_clr) & !SETATTR_VALID != 0 {
        return error!(EINVAL);
    }
    let atime_ok = match a.attr_clr & MOUNT_ATTR_ATIME {
        0 => a.attr_set & MOUNT_ATTR_ATIME == 0,
        MOUNT_ATTR_ATIME => matches!(a.attr_set & MOUNT_ATTR_ATIME, MOUNT_ATTR_RELATIME | MOUNT_ATTR_NOATIME | MOUNT_ATTR_STRICTATIME),
        _ => false,
    };
    if !atime_ok {
        return error!(EINVAL);
    }
    if (a.attr_set | a.attr_clr) & MOUNT_ATTR_IDMAP != 0 {
        return idmap(t, &a);
    }
    let follow = follow_unless(flags & AT_SYMLINK_NOFOLLOW as u32 != 0);
    let d = lookup_at(t, dfd, &read_path(t, path)?, follow, flags & AT_EMPTY_PATH as u32 != 0)?;
    let m = mount_of_root(&d)?;
    // A mount of the caller's namespace, or the root of a detached tree.
    let ns = t.fs.mounts();
    let ns = match ns.contains(&m) {
        true => ns,
        false => detached_root(t, &m)?,
    };
    let mounts = if flags & AT_RECURSIVE != 0 { ns.subtree(&m) } else { vec![m] };
    let (set, clear) = (mount_flags(a.attr_set).0, mount_flags(a.attr_clr).0);
    let new = |m: &Mount| MountFlags((m.flags().0 & !clear) | set);
    // All or nothing: a locked flag anywhere changes none.
    if mounts.iter().any(|m| !m.may_set_flags(new(m))) {
        return error!(EPERM);
    }
    mounts.iter().for_each(|m| m.set_flags(new(m)));
    if let Some(kind) = kind {
        let mut propagation = propagation::lock();
        mounts.iter().for_each(|m| propagation.change(m, kind));
    }
    Ok(())
}

/// MOUNT_ATTR_IDMAP: the user namespace is checked as Linux's
/// build_mount_idmapped does; then EINVAL, as for a file system without
/// idmapped mounts, which none here has.
fn idmap(t: &Task, a: &MountAttr) -> SysResult<()> {
    if a.attr_clr & MOUNT_ATTR_IDMAP != 0 {
        return error!(EINVAL);
    }
    let fd = i32::try_from(a.userns_fd).or(error!(EINVAL))?;
    let file = t.fds.get(Fd(fd))?;
    let Some(NsFile { ns: Namespace::User(user_ns), .. }) = NsFile::of(&file) else { return error!(EINVAL) };
    if user_ns.is_initial() || !t.tg.capable_in(user_ns, consts::CAP_SYS_ADMIN) {
        return error!(EPERM);
    }
    error!(EINVAL)
}
