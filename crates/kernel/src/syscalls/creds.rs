//! Changing credentials: setuid and friends. A privileged process (euid 0) may set
//! any ids; others may only move between their real, effective and saved ids.

use crate::mm::UserRef;
use crate::task::{Credentials, Task};
use rvisor_abi::{error, SysResult, UserAddr};

/// -1: leave this id unchanged.
const KEEP: u32 = u32::MAX;
/// Most supplementary groups (NGROUPS_MAX).
const NGROUPS_MAX: usize = 65536;

/// Applies `f` to a copy of the credentials and stores it if `f` succeeds.
fn update(t: &Task, f: impl FnOnce(&mut Credentials, bool) -> SysResult<()>) -> SysResult<()> {
    let mut c = t.tg.creds.lock().unwrap_or_else(|e| e.into_inner());
    let mut n = *c;
    f(&mut n, c.euid == 0)?;
    *c = n;
    Ok(())
}

fn allowed(id: u32, ids: [u32; 3], privileged: bool) -> bool {
    id == KEEP || privileged || ids.contains(&id)
}

pub fn sys_setuid(t: &mut Task, uid: u32) -> SysResult<()> {
    update(t, |c, privileged| {
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
    update(t, |c, privileged| {
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
    update(t, |c, privileged| {
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
    update(t, |c, privileged| {
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
    update(t, |c, privileged| {
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
    update(t, |c, privileged| {
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
    for (i, g) in groups.iter().enumerate() {
        t.mm.write_obj(UserRef::<u32>::new(list).at(i)?, g)?;
    }
    Ok(groups.len() as i32)
}

pub fn sys_setgroups(t: &mut Task, size: usize, list: UserAddr) -> SysResult<()> {
    if size > NGROUPS_MAX {
        return error!(EINVAL);
    }
    if t.tg.creds().euid != 0 {
        return error!(EPERM);
    }
    let mut groups = Vec::with_capacity(size);
    for i in 0..size {
        groups.push(t.mm.read_obj(UserRef::<u32>::new(list).at(i)?)?);
    }
    *t.tg.groups.lock().unwrap_or_else(|e| e.into_inner()) = groups;
    Ok(())
}
