//! Changing credentials: setuid and friends. A process with CAP_SETUID (for user
//! ids) or CAP_SETGID (for group ids and setgroups) may set any ids its user
//! namespace maps; others may only move between their real, effective and saved
//! ids. Ids are the caller's namespace's here, the sandbox's inside.

use crate::mm::UserRef;
use crate::task::{Capabilities, Credentials, Task};
use rvisor_abi::{consts, error, SysResult, UserAddr};

/// -1: leave this id unchanged.
const KEEP: u32 = u32::MAX;
/// Most supplementary groups (NGROUPS_MAX).
const NGROUPS_MAX: usize = 65536;

/// Applies `f` to a copy of the credentials and stores it if `f` succeeds; `f`
/// hears whether the caller holds `cap` (and so may set any id).
fn update(t: &Task, cap: u32, f: impl FnOnce(&mut Credentials, bool) -> SysResult<()>) -> SysResult<()> {
    let privileged = t.tg.capable(cap);
    let root = t.tg.user_ns().root_uid();
    let mut c = t.tg.creds.lock().unwrap_or_else(|e| e.into_inner());
    let mut n = *c;
    f(&mut n, privileged)?;
    // Every set*uid call moves the fsuid to the effective uid (set*gid: the fsgid).
    if cap == consts::CAP_SETUID {
        n.fsuid = n.euid;
    } else {
        n.fsgid = n.egid;
    }
    t.tg.caps.lock().unwrap_or_else(|e| e.into_inner()).after_setuid(&c, &n, root);
    *c = n;
    drop(c);
    t.tg.publish_growth_limits();
    Ok(())
}

fn allowed(id: u32, ids: [u32; 3], privileged: bool) -> bool {
    id == KEEP || privileged || ids.contains(&id)
}

pub fn sys_setuid(t: &mut Task, uid: u32) -> SysResult<()> {
    let uid = t.tg.user_ns().uid_arg(uid)?;
    update(t, consts::CAP_SETUID, |c, privileged| {
        if uid == KEEP {
            return error!(EINVAL);
        }
        if privileged {
            (c.uid, c.euid, c.suid) = (uid, uid, uid);
        } else if uid == c.uid || uid == c.suid {
            c.euid = uid;
        } else {
            return error!(EPERM);
        }
        Ok(())
    })
}

pub fn sys_setgid(t: &mut Task, gid: u32) -> SysResult<()> {
    let gid = t.tg.user_ns().gid_arg(gid)?;
    update(t, consts::CAP_SETGID, |c, privileged| {
        if gid == KEEP {
            return error!(EINVAL);
        }
        if privileged {
            (c.gid, c.egid, c.sgid) = (gid, gid, gid);
        } else if gid == c.gid || gid == c.sgid {
            c.egid = gid;
        } else {
            return error!(EPERM);
        }
        Ok(())
    })
}

pub fn sys_setresuid(t: &mut Task, ruid: u32, euid: u32, suid: u32) -> SysResult<()> {
    let ns = t.tg.user_ns();
    let [ruid, euid, suid] = [ns.uid_arg(ruid)?, ns.uid_arg(euid)?, ns.uid_arg(suid)?];
    update(t, consts::CAP_SETUID, |c, privileged| {
        let ids = [c.uid, c.euid, c.suid];
        if ![ruid, euid, suid].iter().all(|&i| allowed(i, ids, privileged)) {
            return error!(EPERM);
        }
        if ruid != KEEP { c.uid = ruid }
        if euid != KEEP { c.euid = euid }
        if suid != KEEP { c.suid = suid }
        Ok(())
    })
}

pub fn sys_setresgid(t: &mut Task, rgid: u32, egid: u32, sgid: u32) -> SysResult<()> {
    let ns = t.tg.user_ns();
    let [rgid, egid, sgid] = [ns.gid_arg(rgid)?, ns.gid_arg(egid)?, ns.gid_arg(sgid)?];
    update(t, consts::CAP_SETGID, |c, privileged| {
        let ids = [c.gid, c.egid, c.sgid];
        if ![rgid, egid, sgid].iter().all(|&i| allowed(i, ids, privileged)) {
            return error!(EPERM);
        }
        if rgid != KEEP { c.gid = rgid }
        if egid != KEEP { c.egid = egid }
        if sgid != KEEP { c.sgid = sgid }
        Ok(())
    })
}

pub fn sys_setreuid(t: &mut Task, ruid: u32, euid: u32) -> SysResult<()> {
    let ns = t.tg.user_ns();
    let [ruid, euid] = [ns.uid_arg(ruid)?, ns.uid_arg(euid)?];
    update(t, consts::CAP_SETUID, |c, privileged| {
        let ids = [c.uid, c.euid, c.suid];
        if !allowed(ruid, [c.uid, c.euid, c.uid], privileged) || !allowed(euid, ids, privileged) {
            return error!(EPERM);
        }
        let old_ruid = c.uid;
        if ruid != KEEP { c.uid = ruid }
        if euid != KEEP { c.euid = euid }
        if ruid != KEEP || (euid != KEEP && euid != old_ruid) { c.suid = c.euid }
        Ok(())
    })
}

pub fn sys_setregid(t: &mut Task, rgid: u32, egid: u32) -> SysResult<()> {
    let ns = t.tg.user_ns();
    let [rgid, egid] = [ns.gid_arg(rgid)?, ns.gid_arg(egid)?];
    update(t, consts::CAP_SETGID, |c, privileged| {
        let ids = [c.gid, c.egid, c.sgid];
        if !allowed(rgid, [c.gid, c.egid, c.gid], privileged) || !allowed(egid, ids, privileged) {
            return error!(EPERM);
        }
        let old_rgid = c.gid;
        if rgid != KEEP { c.gid = rgid }
        if egid != KEEP { c.egid = egid }
        if rgid != KEEP || (egid != KEEP && egid != old_rgid) { c.sgid = c.egid }
        Ok(())
    })
}

/// setfsuid: the caller's fsuid before the call, always. It moves to `uid` if that
/// is one of the caller's user ids or the caller holds CAP_SETUID; -1 (or an
/// id its namespace does not map) only asks.
pub fn sys_setfsuid(t: &mut Task, uid: u32) -> SysResult<i32> {
    let privileged = t.tg.capable(consts::CAP_SETUID);
    let ns = t.tg.user_ns();
    let uid = ns.uid_arg(uid).unwrap_or(KEEP);
    let mut c = t.tg.creds.lock().unwrap_or_else(|e| e.into_inner());
    let old = c.fsuid;
    if uid != KEEP && uid != old && (privileged || [c.uid, c.euid, c.suid].contains(&uid)) {
        t.tg.caps.lock().unwrap_or_else(|e| e.into_inner()).after_setfsuid(old, uid, ns.root_uid());
        c.fsuid = uid;
    }
    Ok(ns.show_uid(old) as i32)
}

/// setfsgid, as setfsuid with group ids and CAP_SETGID.
pub fn sys_setfsgid(t: &mut Task, gid: u32) -> SysResult<i32> {
    let privileged = t.tg.capable(consts::CAP_SETGID);
    let ns = t.tg.user_ns();
    let gid = ns.gid_arg(gid).unwrap_or(KEEP);
    let mut c = t.tg.creds.lock().unwrap_or_else(|e| e.into_inner());
    let old = c.fsgid;
    if gid != KEEP && gid != old && (privileged || [c.gid, c.egid, c.sgid].contains(&gid)) {
        c.fsgid = gid;
    }
    Ok(ns.show_gid(old) as i32)
}

pub fn sys_getgroups(t: &mut Task, size: i32, list: UserAddr) -> SysResult<i32> {
    let groups = t.tg.groups.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if size < 0 {
        return error!(EINVAL);
    }
    if size == 0 {
        return Ok(groups.len() as i32);
    }
    if (size as usize) < groups.len() {
        return error!(EINVAL);
    }
    let ns = t.tg.user_ns();
    for (i, g) in groups.iter().enumerate() {
        t.mm.write_obj(UserRef::<u32>::new(list).at(i)?, &ns.show_gid(*g))?;
    }
    Ok(groups.len() as i32)
}

pub fn sys_setgroups(t: &mut Task, size: usize, list: UserAddr) -> SysResult<()> {
    if size > NGROUPS_MAX {
        return error!(EINVAL);
    }
    let ns = t.tg.user_ns();
    if !t.tg.capable(consts::CAP_SETGID) || !ns.may_setgroups() {
        return error!(EPERM);
    }
    let mut groups = Vec::with_capacity(size);
    for i in 0..size {
        let gid: u32 = t.mm.read_obj(UserRef::<u32>::new(list).at(i)?)?;
        groups.push(ns.to_kernel(crate::task::user_ns::IdKind::Gid, gid).ok_or_else(|| rvisor_abi::errno!(EINVAL))?);
    }
    *t.tg.groups.lock().unwrap_or_else(|e| e.into_inner()) = groups;
    Ok(())
}

const CAP_V1: u32 = 0x1998_0330;
const CAP_V2: u32 = 0x2007_1026;
const CAP_V3: u32 = 0x2008_0522;

/// How many 32-bit `__user_cap_data_struct`s a header's version takes; an
/// unknown version gets the preferred one written back, and EINVAL.
fn cap_words(t: &Task, hdr: UserRef<[u32; 2]>) -> SysResult<usize> {
    let [version, _] = t.mm.read_obj(hdr)?;
    match version {
        CAP_V1 => Ok(1),
        CAP_V2 | CAP_V3 => Ok(2),
        _ => {
            t.mm.write_obj(UserRef::<u32>::new(hdr.addr), &CAP_V3)?;
            error!(EINVAL)
        }
    }
}

/// capget: a thread's capability sets (this process's, for any thread of it).
pub fn sys_capget(t: &mut Task, hdr: UserRef<[u32; 2]>, data: UserAddr) -> SysResult<()> {
    let words = match cap_words(t, hdr) {
        // Probing the version with no data buffer is not an error.
        Err(e) if data.is_null() && e.code == rvisor_abi::ErrnoCode::EINVAL => return Ok(()),
        r => r?,
    };
    let [_, pid] = t.mm.read_obj(hdr)?;
    let tg = match pid as i32 {
        0 => t.tg.clone(),
        p if p < 0 => return error!(EINVAL),
        p => t.pid_ns().thread(p).map(|th| th.tg.clone()).ok_or_else(|| rvisor_abi::errno!(ESRCH))?,
    };
    if data.is_null() {
        return Ok(());
    }
    let c = *tg.caps.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::with_capacity(words * 12);
    for w in 0..words {
        for set in [c.effective, c.permitted, c.inheritable] {
            out.extend_from_slice(&((set >> (32 * w)) as u32).to_ne_bytes());
        }
    }
    t.mm.write_bytes(data, &out)
}

/// capset: the caller's own sets, within Linux's rules (the permitted set only
/// shrinks, the effective set stays within it, the inheritable within the old
/// inheritable and permitted sets).
pub fn sys_capset(t: &mut Task, hdr: UserRef<[u32; 2]>, data: UserAddr) -> SysResult<()> {
    let words = cap_words(t, hdr)?;
    let [_, pid] = t.mm.read_obj(hdr)?;
    if pid != 0 && pid as i32 != t.vnr(t.tid()) {
        return error!(EPERM);
    }
    let mut raw = vec![0u8; words * 12];
    t.mm.read_bytes(data, &mut raw)?;
    let word = |i: usize| u64::from(u32::from_ne_bytes([raw[i * 4], raw[i * 4 + 1], raw[i * 4 + 2], raw[i * 4 + 3]]));
    let set = |k: usize| (0..words).fold(0u64, |acc, w| acc | (word(w * 3 + k) << (32 * w)));
    let mut caps = t.tg.caps.lock().unwrap_or_else(|e| e.into_inner());
    let old = *caps;
    let new = Capabilities { effective: set(0), permitted: set(1), inheritable: set(2), ..old };
    if new.permitted & !old.permitted != 0 || new.effective & !new.permitted != 0 || new.inheritable & !(old.inheritable | old.permitted) != 0 {
        return error!(EPERM);
    }
    // The ambient set stays within the permitted and inheritable ones.
    *caps = Capabilities { ambient: old.ambient & new.permitted & new.inheritable, ..new };
    drop(caps);
    t.tg.publish_growth_limits();
    Ok(())
}
