//! Reading the mount tree by mount ID, as Linux's fs/namespace.c (6.8's
//! fields and 6.10's mount options, the strings laid out as 6.18 does):
//! statmount tells of one mount of the caller's namespace, listmount lists the
//! mounts beneath one. IDs are the 64-bit unique ones (`Mount::unique_id`,
//! what statx's STATX_MNT_ID_UNIQUE gives); what they tell agrees with
//! /proc/PID/mountinfo, which shows the old IDs (`Mount::id`).

use super::landlock::read_sized;
use super::mount_api::mount_attrs;
use super::stat::{fs_magic, major, minor};
use crate::task::{Task, UserNamespace};
use crate::vfs::propagation::{self, MS_PRIVATE, MS_SHARED, MS_SLAVE, MS_UNBINDABLE};
use crate::vfs::{Dentry, Mount};
use rvisor_abi::{consts, errno, error, SysResult, UserAddr};
use std::sync::Arc;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// `struct mnt_id_req` as Linux 6.8 has it (MNT_ID_REQ_SIZE_VER0).
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct MntIdReq {
    size: u32,
    spare: u32,
    mnt_id: u64,
    /// statmount: the STATMOUNT_* wanted; listmount: the last ID listed.
    param: u64,
}
const MNT_ID_REQ_SIZE_VER0: usize = 24;

/// listmount's mount ID for "the caller's root".
const LSMT_ROOT: u64 = u64::MAX;

const STATMOUNT_SB_BASIC: u64 = 1;
const STATMOUNT_MNT_BASIC: u64 = 2;
const STATMOUNT_PROPAGATE_FROM: u64 = 4;
const STATMOUNT_MNT_ROOT: u64 = 8;
const STATMOUNT_MNT_POINT: u64 = 16;
const STATMOUNT_FS_TYPE: u64 = 32;
const STATMOUNT_MNT_OPTS: u64 = 0x80;
/// The fields that are strings.
const STATMOUNT_STRINGS: u64 = STATMOUNT_MNT_ROOT | STATMOUNT_MNT_POINT | STATMOUNT_FS_TYPE | STATMOUNT_MNT_OPTS;

const SB_RDONLY: u32 = 1;

/// What one of statmount's strings says of a mount, seen from the caller's root.
type StringOf = fn(&Mount, &Arc<Dentry>) -> Vec<u8>;

/// `struct statmount` (the strings follow it in the caller's buffer).
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Statmount {
    size: u32,
    mnt_opts: u32,
    mask: u64,
    sb_dev_major: u32,
    sb_dev_minor: u32,
    sb_magic: u64,
    sb_flags: u32,
    fs_type: u32,
    mnt_id: u64,
    mnt_parent_id: u64,
    mnt_id_old: u32,
    mnt_parent_id_old: u32,
    mnt_attr: u64,
    mnt_propagation: u64,
    mnt_peer_group: u64,
    mnt_master: u64,
    propagate_from: u64,
    mnt_root: u32,
    mnt_point: u32,
    spare2: [u64; 50],
}

/// Reads a `struct mnt_id_req` (Linux's copy_mnt_id_req): its size first,
/// E2BIG past a page (or with unknown trailing bytes set), EINVAL below the
/// first version or with `spare` set.
fn read_mnt_id_req(t: &Task, req: UserAddr) -> SysResult<MntIdReq> {
    let size: u32 = t.mm.read_obj(crate::mm::UserRef::new(req))?;
    let r: MntIdReq = read_sized(t, req, size as usize, MNT_ID_REQ_SIZE_VER0)?;
    if r.spare != 0 {
        return error!(EINVAL);
    }
    Ok(r)
}

/// The mount of the caller's namespace with unique ID `id` (ENOENT).
fn mount_by_id(mounts: &[Arc<Mount>], id: u64) -> SysResult<Arc<Mount>> {
    mounts.iter().find(|m| m.unique_id() == id).cloned().ok_or_else(|| errno!(ENOENT))
}

/// Whether the caller may look at what is at `d`: beneath its root, or with
/// CAP_SYS_ADMIN in the initial user namespace (EPERM).
fn may_see(t: &Task, d: &Arc<Dentry>, root: &Arc<Dentry>) -> SysResult<()> {
    if d.path_from(root).is_none() && !t.tg.capable_in(&UserNamespace::initial(), consts::CAP_SYS_ADMIN) {
        return error!(EPERM);
    }
    Ok(())
}

pub fn sys_statmount(t: &mut Task, req: UserAddr, buf: UserAddr, bufsize: usize, flags: u32) -> SysResult<()> {
    if flags != 0 {
        return error!(EINVAL);
    }
    let req = read_mnt_id_req(t, req)?;
    if !buf.range_ok(bufsize as u64) {
        return error!(EFAULT);
    }
    let head = std::mem::size_of::<Statmount>();
    let want = req.param;
    // Linux's prepare_kstatmount: strings want room past the struct, checked
    // before the mount is looked for (a smaller buffer gets the struct's start).
    if want & STATMOUNT_STRINGS != 0 && bufsize == head {
        return error!(EOVERFLOW);
    }
    let (ns, root) = (t.fs.mounts(), t.fs.root());
    let m = mount_by_id(&ns.mounts(), req.mnt_id)?;
    may_see(t, &m.root, &root)?;
    let mut sm = Statmount::new_zeroed();
    if want & STATMOUNT_SB_BASIC != 0 {
        let dev = m.root.inode.stat().map_or(0, |st| st.st_dev);
        (sm.sb_dev_major, sm.sb_dev_minor) = (major(dev), minor(dev));
        sm.sb_magic = fs_magic(&m.fstype, m.root.inode.host_statfs().as_ref()) as u64;
        sm.sb_flags = if m.sb_read_only() { SB_RDONLY } else { 0 };
        sm.mask |= STATMOUNT_SB_BASIC;
    }
    if want & (STATMOUNT_MNT_BASIC | STATMOUNT_PROPAGATE_FROM) != 0 {
        let prop = propagation::lock().info(&m, &ns, &root);
        if want & STATMOUNT_MNT_BASIC != 0 {
            let parent = m.parent().unwrap_or_else(|| m.clone());
            (sm.mnt_id, sm.mnt_parent_id) = (m.unique_id(), parent.unique_id());
            (sm.mnt_id_old, sm.mnt_parent_id_old) = (m.id as u32, parent.id as u32);
            sm.mnt_attr = mount_attrs(m.flags());
            let kinds = [(prop.shared.is_some(), MS_SHARED), (prop.master.is_some(), MS_SLAVE), (prop.unbindable, MS_UNBINDABLE)];
            sm.mnt_propagation = kinds.iter().filter(|(on, _)| *on).fold(0, |p, &(_, bit)| p | bit);
            if sm.mnt_propagation == 0 {
                sm.mnt_propagation = MS_PRIVATE;
            }
            sm.mnt_peer_group = u64::from(prop.shared.unwrap_or(0));
            sm.mnt_master = u64::from(prop.master.unwrap_or(0));
            sm.mask |= STATMOUNT_MNT_BASIC;
        }
        if want & STATMOUNT_PROPAGATE_FROM != 0 {
            sm.propagate_from = u64::from(prop.dominating.unwrap_or(0));
            sm.mask |= STATMOUNT_PROPAGATE_FROM;
        }
    }
    // The strings, in Linux's order, each NUL-terminated after a first NUL
    // (where the offsets of those not given point); EOVERFLOW unless the
    // buffer has room for each with a byte to spare. An empty one is not
    // given: its bit stays clear and its offset 0.
    let mut strs: Vec<u8> = Vec::new();
    let strings: [(u64, StringOf); 4] = [
        (STATMOUNT_FS_TYPE, |m, _| m.fstype.as_bytes().to_vec()),
        (STATMOUNT_MNT_ROOT, |m, _| m.root_path.clone()),
        // None for a mount outside the caller's root.
        (STATMOUNT_MNT_POINT, |m, root| m.root.path_from(root).unwrap_or_default()),
        // The file system's own, as mountinfo's last field shows them after
        // "rw" or "ro" (show_options' text without its first comma).
        (STATMOUNT_MNT_OPTS, |m, _| {
            let opts = m.root.inode.fs_options();
            opts.strip_prefix(',').unwrap_or(&opts).as_bytes().to_vec()
        }),
    ];
    for (flag, text) in strings {
        if want & flag == 0 {
            continue;
        }
        if strs.is_empty() {
            strs.push(0);
        }
        let at = strs.len() as u32;
        let text = text(&m, &root);
        if text.is_empty() {
            continue;
        }
        strs.extend(text);
        if head + strs.len() >= bufsize {
            return error!(EOVERFLOW);
        }
        strs.push(0);
        match flag {
            STATMOUNT_FS_TYPE => sm.fs_type = at,
            STATMOUNT_MNT_ROOT => sm.mnt_root = at,
            STATMOUNT_MNT_POINT => sm.mnt_point = at,
            _ => sm.mnt_opts = at,
        }
        sm.mask |= flag;
    }
    // After the struct even when the buffer is smaller, as Linux's
    // copy_statmount_to_user: a lone first NUL fits no check.
    if !strs.is_empty() {
        t.mm.write_bytes(buf.add(head as u64)?, &strs)?;
    }
    let copied = bufsize.min(head);
    sm.size = (copied + strs.len()) as u32;
    t.mm.write_bytes(buf, &sm.as_bytes()[..copied])
}

pub fn sys_listmount(t: &mut Task, req: UserAddr, buf: UserAddr, bufsize: usize, flags: u32) -> SysResult<usize> {
    if flags != 0 {
        return error!(EINVAL);
    }
    let bytes = bufsize.checked_mul(8).ok_or_else(|| errno!(EFAULT))?;
    if !buf.range_ok(bytes as u64) {
        return error!(EFAULT);
    }
    let req = read_mnt_id_req(t, req)?;
    let (ns, root) = (t.fs.mounts(), t.fs.root());
    let mounts = ns.mounts();
    let orig = match req.mnt_id {
        LSMT_ROOT => root.clone(),
        id => mount_by_id(&mounts, id)?.root.clone(),
    };
    may_see(t, &orig, &root)?;
    // Linux walks its namespace's mounts by ID from the one after `param`:
    // those beneath `orig`, but for the one asked about.
    let mut ids: Vec<u64> = mounts
        .iter()
        .filter(|m| m.unique_id() > req.param && m.unique_id() != req.mnt_id && m.root.path_from(&orig).is_some())
        .map(|m| m.unique_id())
        .collect();
    ids.sort_unstable();
    ids.truncate(bufsize);
    t.mm.write_bytes(buf, ids.as_bytes())?;
    Ok(ids.len())
}
