//! pidfd: a descriptor naming a process (pidfd_open, clone's CLONE_PIDFD). It
//! polls readable once the whole process has exited, and hung up as well once it
//! has been reaped; pidfd_send_signal signals it, waitid(P_PIDFD) waits for it
//! and pidfd_getfd copies its descriptors.

use crate::task::{Task, ThreadGroup};
use crate::vfs::readiness::{POLLHUP, POLLIN, POLLRDNORM};
use crate::vfs::{FileDescription, StatusFlags, WaitQueue};
use super::nsfs::{Namespace, NsInode, NsKind};
use rvisor_abi::{errno, error, SysResult, UserAddr};
use std::sync::Arc;

pub const PIDFD_NONBLOCK: u32 = 0o4000;
/// PIDFD_GET_INFO's type and number; its size varies with the struct's version.
const PIDFD_GET_INFO_NR: u32 = 0xff0b;
const IOC_READ_WRITE: u32 = 3;
const PIDFD_INFO_PID: u64 = 1;
const PIDFD_INFO_CREDS: u64 = 2;
const PIDFD_INFO_EXIT: u64 = 8;
/// The first `struct pidfd_info`'s size.
const PIDFD_INFO_SIZE_VER0: usize = 64;

/// `struct pidfd_info` (its first version).
#[derive(Clone, Copy, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
#[repr(C)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    exit_code: i32,
}
const O_RDWR: u32 = 2;

pub struct PidFd {
    pub tg: Arc<ThreadGroup>,
    flags: StatusFlags,
}

impl PidFd {
    pub fn new(tg: Arc<ThreadGroup>, flags: u32) -> PidFd {
        PidFd { tg, flags: StatusFlags::new(O_RDWR | (flags & PIDFD_NONBLOCK)) }
    }

    /// The pidfd behind `file`, if it is one.
    pub fn of(file: &Arc<dyn FileDescription>) -> Option<&PidFd> {
        file.as_any().and_then(|a| a.downcast_ref::<PidFd>())
    }

    pub fn nonblocking(&self) -> bool {
        self.flags.get() & PIDFD_NONBLOCK != 0
    }

    /// PIDFD_GET_INFO into a caller's struct of `size` bytes: ids and
    /// credentials as the caller sees them (ESRCH once it was reaped, or from
    /// outside its PID namespace), and once it was reaped the exit status, if
    /// asked (Linux records it when the process is released).
    fn info(&self, t: &Task, at: UserAddr, size: usize) -> SysResult<u64> {
        if at.is_null() {
            return error!(EINVAL);
        }
        let asked: u64 = t.mm.read_obj(crate::mm::UserRef::new(at))?;
        let pid = t.vnr(self.tg.tgid);
        if pid == 0 {
            return error!(ESRCH);
        }
        let mut info = PidfdInfo::default();
        let zombie = self.tg.state().zombie;
        if let Some(status) = zombie.filter(|_| asked & PIDFD_INFO_EXIT != 0 && self.tg.is_reaped()) {
            info.mask |= PIDFD_INFO_EXIT;
            info.exit_code = status.wait_status();
        }
        if self.tg.is_reaped() {
            if info.mask & PIDFD_INFO_EXIT == 0 {
                return error!(ESRCH);
            }
        } else {
            let (c, ns) = (self.tg.creds(), t.tg.user_ns());
            [info.ruid, info.euid, info.suid, info.fsuid] = [c.uid, c.euid, c.suid, c.fsuid].map(|u| ns.show_uid(u));
            [info.rgid, info.egid, info.sgid, info.fsgid] = [c.gid, c.egid, c.sgid, c.fsgid].map(|g| ns.show_gid(g));
            info.ppid = self.tg.parent().map_or(0, |p| t.vnr(p.tgid)) as u32;
            (info.pid, info.tgid) = (pid as u32, pid as u32);
            info.mask |= PIDFD_INFO_CREDS | PIDFD_INFO_PID;
        }
        // A larger struct than ours gets zeros past it, as copy_struct_to_user.
        let mut out = vec![0u8; size];
        let ours = zerocopy::IntoBytes::as_bytes(&info);
        out[..ours.len()].copy_from_slice(ours);
        t.mm.write_bytes(at, &out)?;
        Ok(0)
    }

    /// The process's id as this pidfd's /proc fdinfo shows it: -1 once reaped.
    pub fn pid(&self) -> i32 {
        if self.tg.is_reaped() { -1 } else { self.tg.tgid }
    }
}

impl FileDescription for PidFd {
    crate::fs::eventfd::anon_file_without_io!();

    fn flags(&self) -> Option<&crate::vfs::StatusFlags> {
        Some(&self.flags)
    }

    fn readiness(&self, mask: u32) -> u32 {
        let m = if self.tg.is_reaped() {
            POLLIN | POLLRDNORM | POLLHUP
        } else if self.tg.state().zombie.is_some() {
            POLLIN | POLLRDNORM
        } else {
            0
        };
        m & mask
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.tg.exit_waiters)
    }

    fn proc_name(&self) -> Option<Vec<u8>> {
        Some(b"anon_inode:[pidfd]".to_vec())
    }

    /// The pidfs ioctls: PIDFD_GET_INFO, and PIDFD_GET_*_NAMESPACE, which open
    /// the process's namespaces as /proc/PID/ns would.
    fn ioctl(&self, t: &Task, request: u32, arg: u64) -> SysResult<u64> {
        let size = (request >> 16 & 0x3fff) as usize;
        if request & 0xffff == PIDFD_GET_INFO_NR && request >> 30 == IOC_READ_WRITE && size >= PIDFD_INFO_SIZE_VER0 {
            return self.info(t, UserAddr(arg), size);
        }
        let kind = match request {
            0xff01..=0xff0a => NsKind::ALL[(request - 0xff01) as usize],
            _ => return error!(ENOTTY),
        };
        let res = self.tg.threads().first().and_then(|th| th.resources()).ok_or_else(|| errno!(ESRCH))?;
        if arg != 0 {
            return error!(EINVAL);
        }
        if !crate::task::ptrace::may_trace(&t.tg, &self.tg) {
            return error!(EACCES);
        }
        let dentry = NsInode::dentry(kind, Namespace::of(&self.tg, &res, kind));
        let file = dentry.inode.open(&dentry, crate::vfs::OpenFlags(0))?;
        let fd = t.fds.install_lowest(file, 0, t.tg.rlimit(crate::task::RLIMIT_NOFILE).cur, true)?;
        Ok(fd.0 as u64)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
