//! Process and thread identity, exit, and the per-thread registrations glibc
//! makes at start-up (arch_prctl, set_tid_address, set_robust_list).

use crate::mm::UserRef;
use crate::task::{ExitStatus, Task};
use rvisor_abi::{error, SysResult, UserAddr};

const ARCH_SET_GS: i32 = 0x1001;
const ARCH_SET_FS: i32 = 0x1002;
const ARCH_GET_FS: i32 = 0x1003;
const ARCH_GET_GS: i32 = 0x1004;
/// `sizeof(struct robust_list_head)`.
const ROBUST_LIST_HEAD_LEN: usize = 24;

pub fn sys_exit(t: &mut Task, code: i32) -> SysResult<()> {
    // The only thread of its group: its exit ends the process.
    t.exit_group(ExitStatus::Exited(code as u8));
    Ok(())
}

pub fn sys_exit_group(t: &mut Task, code: i32) -> SysResult<()> {
    t.exit_group(ExitStatus::Exited(code as u8));
    Ok(())
}

pub fn sys_getpid(t: &mut Task) -> SysResult<i32> {
    Ok(t.tg.tgid)
}

pub fn sys_getppid(t: &mut Task) -> SysResult<i32> {
    Ok(t.tg.ppid)
}

pub fn sys_gettid(t: &mut Task) -> SysResult<i32> {
    Ok(t.tid)
}

pub fn sys_getuid(t: &mut Task) -> SysResult<u32> {
    Ok(t.tg.creds().uid)
}

pub fn sys_geteuid(t: &mut Task) -> SysResult<u32> {
    Ok(t.tg.creds().euid)
}

pub fn sys_getgid(t: &mut Task) -> SysResult<u32> {
    Ok(t.tg.creds().gid)
}

pub fn sys_getegid(t: &mut Task) -> SysResult<u32> {
    Ok(t.tg.creds().egid)
}

fn write_ids(t: &Task, refs: [UserRef<u32>; 3], ids: [u32; 3]) -> SysResult<()> {
    for (r, id) in refs.into_iter().zip(ids) {
        t.mm.write_obj(r, &id)?;
    }
    Ok(())
}

pub fn sys_getresuid(t: &mut Task, ruid: UserRef<u32>, euid: UserRef<u32>, suid: UserRef<u32>) -> SysResult<()> {
    let c = t.tg.creds();
    write_ids(t, [ruid, euid, suid], [c.uid, c.euid, c.suid])
}

pub fn sys_getresgid(t: &mut Task, rgid: UserRef<u32>, egid: UserRef<u32>, sgid: UserRef<u32>) -> SysResult<()> {
    let c = t.tg.creds();
    write_ids(t, [rgid, egid, sgid], [c.gid, c.egid, c.sgid])
}

pub fn sys_arch_prctl(t: &mut Task, code: i32, addr: u64) -> SysResult<()> {
    match code {
        ARCH_SET_FS | ARCH_SET_GS => {
            // A non-canonical base would make the host reject the register write.
            if addr >= 0x0000_8000_0000_0000 {
                return error!(EPERM);
            }
            if code == ARCH_SET_FS { t.cpu.regs.fs_base = addr } else { t.cpu.regs.gs_base = addr }
            Ok(())
        }
        ARCH_GET_FS => t.mm.write_obj(UserRef::new(UserAddr(addr)), &t.cpu.regs.fs_base),
        ARCH_GET_GS => t.mm.write_obj(UserRef::new(UserAddr(addr)), &t.cpu.regs.gs_base),
        _ => error!(EINVAL),
    }
}

pub fn sys_set_tid_address(t: &mut Task, tidptr: UserAddr) -> SysResult<i32> {
    t.clear_child_tid = tidptr;
    Ok(t.tid)
}

pub fn sys_set_robust_list(t: &mut Task, head: UserAddr, len: usize) -> SysResult<()> {
    if len != ROBUST_LIST_HEAD_LEN {
        return error!(EINVAL);
    }
    t.robust_list = head;
    Ok(())
}
