//! Discretionary access control, as Linux's fs/namei.c and fs/attr.c decide it:
//! mode bits for the owner, the group (effective and supplementary) and others,
//! overridden by capabilities; and the rules for creating, removing, linking and
//! changing the attributes of files built on it.

use super::dentry::Dentry;
use super::inode::{Inode, SetAttr, S_IFDIR, S_IFMT, S_IFREG};
use rvisor_abi::structs::Stat;
use rvisor_abi::{consts, error, SysResult};

pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;
const S_IXGRP: u32 = 0o010;
const S_IXUGO: u32 = 0o111;

/// Who asks, as file-system checks see it: Linux's fsuid and fsgid (the effective
/// ids unless setfsuid/setfsgid moved them), the supplementary groups and the effective
/// capabilities.
#[derive(Clone, Debug)]
pub struct FsCreds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub caps: u64,
    /// Its user namespace, unless the sandbox's first: its capabilities then
    /// count only for files whose owner and group it maps.
    pub ns: Option<std::sync::Arc<crate::task::UserNamespace>>,
    /// The asking thread's Landlock domain, which `crate::landlock::fs` checks
    /// after the mode bits.
    pub landlock: Option<std::sync::Arc<crate::landlock::Domain>>,
}

impl FsCreds {
    /// The kernel's own walks (building the mount tree): nothing is refused.
    pub fn kernel() -> FsCreds {
        FsCreds { uid: 0, gid: 0, groups: Vec::new(), caps: crate::task::CAP_FULL, ns: None, landlock: None }
    }

    pub fn capable(&self, cap: u32) -> bool {
        self.caps >> cap & 1 != 0
    }

    /// capable_wrt_inode_uidgid: `cap`, over a file with attributes `st`.
    pub fn capable_wrt(&self, cap: u32, st: &Stat) -> bool {
        self.capable(cap) && self.ns.as_ref().is_none_or(|ns| ns.uid_to_user(st.st_uid).is_some() && ns.gid_to_user(st.st_gid).is_some())
    }

    /// Linux's in_group_p: the effective gid or a supplementary group.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// inode_owner_or_capable.
    pub fn owns(&self, st: &Stat) -> bool {
        st.st_uid == self.uid || self.capable_wrt(consts::CAP_FOWNER, st)
    }

    /// in_group_or_capable: may keep a setgid bit for group `gid` on a file
    /// with attributes `st`.
    fn keeps_sgid(&self, gid: u32, st: &Stat) -> bool {
        self.in_group(gid) || self.capable_wrt(consts::CAP_FSETID, st)
    }
}

/// generic_permission: may `c` do `mask` (MAY_READ | MAY_WRITE | MAY_EXEC) to a
/// file with attributes `st`? EACCES if not.
pub fn check(c: &FsCreds, st: &Stat, mask: u32) -> SysResult<()> {
    let mode = st.st_mode;
    let mask = mask & 7;
    // The owner's bits alone decide for the owner, even when they allow less
    // than the group's or others'.
    let bits = if st.st_uid == c.uid {
        mode >> 6
    } else if mask & (mode ^ (mode >> 3)) != 0 && c.in_group(st.st_gid) {
        mode >> 3
    } else {
        mode
    };
    if mask & !bits & 7 == 0 {
        return Ok(());
    }
    if mode & S_IFMT == S_IFDIR {
        if mask & MAY_WRITE == 0 && c.capable_wrt(consts::CAP_DAC_READ_SEARCH, st) {
            return Ok(());
        }
        if c.capable_wrt(consts::CAP_DAC_OVERRIDE, st) {
            return Ok(());
        }
        return error!(EACCES);
    }
    if mask == MAY_READ && c.capable_wrt(consts::CAP_DAC_READ_SEARCH, st) {
        return Ok(());
    }
    // Executing is overridable only when someone may execute the file.
    if (mask & MAY_EXEC == 0 || mode & S_IXUGO != 0) && c.capable_wrt(consts::CAP_DAC_OVERRIDE, st) {
        return Ok(());
    }
    error!(EACCES)
}

/// `check` on an inode's current attributes (Linux's inode_permission).
pub fn permission(c: &FsCreds, inode: &dyn Inode, mask: u32) -> SysResult<()> {
    check(c, &inode.stat()?, mask)
}

/// may_lookup: search permission on a directory a walk goes through. Either
/// capability grants it for any directory, so root's walks never stat (in the
/// sandbox's first user namespace; in another, only for directories it maps).
pub fn may_search(c: &FsCreds, dir: &Dentry) -> SysResult<()> {
    if c.ns.is_none() && (c.capable(consts::CAP_DAC_READ_SEARCH) || c.capable(consts::CAP_DAC_OVERRIDE)) {
        return Ok(());
    }
    permission(c, &*dir.inode, MAY_EXEC)
}

/// may_create: adding a name to `dir` takes write and search permission on it.
pub fn may_create(c: &FsCreds, dir: &Dentry) -> SysResult<()> {
    permission(c, &*dir.inode, MAY_WRITE | MAY_EXEC)
}

/// may_delete: removing (or renaming away) `victim` from `dir`. In a sticky
/// directory only the file's owner, the directory's owner or CAP_FOWNER may
/// (EPERM); then rmdir needs a directory and unlink a non-directory.
pub fn may_delete(c: &FsCreds, dir: &Dentry, victim: &Dentry, isdir: bool) -> SysResult<()> {
    let d = dir.inode.stat()?;
    check(c, &d, MAY_WRITE | MAY_EXEC)?;
    let v = victim.inode.stat()?;
    if d.st_mode & S_ISVTX != 0 && v.st_uid != c.uid && d.st_uid != c.uid && !c.capable_wrt(consts::CAP_FOWNER, &v) {
        return error!(EPERM);
    }
    match (isdir, victim.is_dir()) {
        (true, false) => error!(ENOTDIR),
        (false, true) => error!(EISDIR),
        _ => Ok(()),
    }
}

/// may_linkat with fs.protected_hardlinks on (the usual distribution default):
/// only the owner (or CAP_FOWNER) may link a file that is not a regular file
/// the caller may read and write, or that is setuid or executable setgid.
pub fn may_link(c: &FsCreds, src: &dyn Inode) -> SysResult<()> {
    let st = src.stat()?;
    let mode = st.st_mode;
    let safe = mode & S_IFMT == S_IFREG
        && mode & S_ISUID == 0
        && mode & (S_ISGID | S_IXGRP) != S_ISGID | S_IXGRP
        && check(c, &st, MAY_READ | MAY_WRITE).is_ok();
    if safe || c.owns(&st) {
        Ok(())
    } else {
        error!(EPERM)
    }
}

/// Makes a file just created in `dir` the creator's (inode_init_owner): its
/// owner is the caller, its group the caller's, or the directory's when the
/// directory is setgid (a new directory then is setgid too; a new group-
/// executable setgid file keeps the bit only for a member or CAP_FSETID).
/// File systems create files as root, so only a difference is written.
pub fn own_new(c: &FsCreds, dir: &Dentry, made: &dyn Inode) -> SysResult<()> {
    let d = dir.inode.stat()?;
    let st = made.stat()?;
    let mut mode = st.st_mode & 0o7777;
    let gid = if d.st_mode & S_ISGID != 0 {
        if made.kind() == S_IFDIR {
            mode |= S_ISGID;
        } else if mode & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP && !c.keeps_sgid(d.st_gid, &d) {
            mode &= !S_ISGID;
        }
        d.st_gid
    } else {
        c.gid
    };
    if (c.uid, gid, mode) == (st.st_uid, st.st_gid, st.st_mode & 0o7777) {
        return Ok(());
    }
    made.setattr(&SetAttr { uid: Some(c.uid), gid: Some(gid), mode: Some(mode), ..SetAttr::default() })
}

/// Which call changes attributes, where Linux's checks differ: chown clears
/// setuid and setgid bits even when it changes no id; utimes with no times (or
/// both UTIME_NOW) is a touch, which write permission allows too.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Chown,
    Touch,
    Other,
}

/// setattr_prepare and notify_change's checks: who may chown (CAP_CHOWN, or the
/// owner keeping the owner and picking one of its groups), chmod (the owner or
/// CAP_FOWNER) and set times. Adjusts `a` as Linux does: chown of a
/// non-directory clears setuid (and setgid when group-executable or the caller
/// could not set it), chmod drops setgid for a group the caller is not in.
pub fn may_setattr(c: &FsCreds, st: &Stat, a: &mut SetAttr, change: Change) -> SysResult<()> {
    if change == Change::Chown && st.st_mode & S_IFMT != S_IFDIR {
        let mut mode = a.mode.unwrap_or(st.st_mode & 0o7777);
        let sgid_dropped = st.st_mode & S_ISGID != 0 && (st.st_mode & S_IXGRP != 0 || !c.keeps_sgid(st.st_gid, st));
        if st.st_mode & S_ISUID != 0 {
            mode &= !S_ISUID;
        }
        if sgid_dropped {
            mode &= !S_ISGID;
        }
        if mode != st.st_mode & 0o7777 {
            a.mode = Some(mode);
        }
    }
    if (a.atime.is_some() || a.mtime.is_some()) && change == Change::Touch && !c.owns(st) {
        check(c, st, MAY_WRITE)?;
    }
    if let Some(uid) = a.uid {
        if !(st.st_uid == c.uid && uid == st.st_uid) && !c.capable_wrt(consts::CAP_CHOWN, st) {
            return error!(EPERM);
        }
    }
    if let Some(gid) = a.gid {
        if !(st.st_uid == c.uid && (gid == st.st_gid || c.in_group(gid))) && !c.capable_wrt(consts::CAP_CHOWN, st) {
            return error!(EPERM);
        }
    }
    if let Some(mode) = a.mode {
        if !c.owns(st) {
            return error!(EPERM);
        }
        if !c.keeps_sgid(a.gid.unwrap_or(st.st_gid), st) {
            a.mode = Some(mode & !S_ISGID);
        }
    }
    if (a.atime.is_some() || a.mtime.is_some()) && change != Change::Touch && !c.owns(st) {
        return error!(EPERM);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(mode: u32, uid: u32, gid: u32) -> Stat {
        let mut s = Stat::zeroed();
        (s.st_mode, s.st_uid, s.st_gid) = (mode, uid, gid);
        s
    }

    fn user(uid: u32, gid: u32, groups: &[u32]) -> FsCreds {
        FsCreds { uid, gid, groups: groups.to_vec(), caps: 0, ns: None, landlock: None }
    }

    #[test]
    fn owner_group_other() {
        let f = st(S_IFREG | 0o640, 1000, 2000);
        assert!(check(&user(1000, 1000, &[]), &f, MAY_READ | MAY_WRITE).is_ok());
        assert!(check(&user(1001, 1001, &[2000]), &f, MAY_READ).is_ok());
        assert!(check(&user(1001, 1001, &[2000]), &f, MAY_WRITE).is_err());
        assert!(check(&user(1001, 1001, &[]), &f, MAY_READ).is_err());
        // An owner with fewer rights than others gets only the owner's.
        assert!(check(&user(1000, 1000, &[]), &st(S_IFREG | 0o077, 1000, 0), MAY_READ).is_err());
    }

    #[test]
    fn capabilities_override() {
        let root = |caps: u64| FsCreds { caps, ..user(0, 0, &[]) };
        let noexec = st(S_IFREG | 0o600, 1000, 1000);
        assert!(check(&root(1 << consts::CAP_DAC_OVERRIDE), &noexec, MAY_READ | MAY_WRITE).is_ok());
        assert!(check(&root(1 << consts::CAP_DAC_OVERRIDE), &noexec, MAY_EXEC).is_err());
        assert!(check(&root(1 << consts::CAP_DAC_READ_SEARCH), &noexec, MAY_READ).is_ok());
        assert!(check(&root(1 << consts::CAP_DAC_READ_SEARCH), &noexec, MAY_WRITE).is_err());
        let dir = st(S_IFDIR | 0o700, 1000, 1000);
        assert!(check(&root(1 << consts::CAP_DAC_READ_SEARCH), &dir, MAY_READ | MAY_EXEC).is_ok());
        assert!(check(&root(1 << consts::CAP_DAC_OVERRIDE), &dir, MAY_EXEC).is_ok());
        assert!(check(&root(0), &dir, MAY_EXEC).is_err());
    }
}
