//! pidfd: a descriptor naming a process (pidfd_open, clone's CLONE_PIDFD). It
//! polls readable once the whole process has exited, and hung up as well once it
//! has been reaped; pidfd_send_signal signals it, waitid(P_PIDFD) waits for it
//! and pidfd_getfd copies its descriptors.

use super::eventfd::anon_inode_stat;
use crate::mm::UserBuffers;
use crate::task::{Task, ThreadGroup};
use crate::vfs::readiness::{POLLHUP, POLLIN, POLLRDNORM};
use crate::vfs::{FileDescription, StatusFlags, WaitQueue};
use rvisor_abi::structs::Stat;
use rvisor_abi::{error, SysResult};
use std::sync::Arc;

pub const PIDFD_NONBLOCK: u32 = 0o4000;
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

    /// The process's id as this pidfd's /proc fdinfo shows it: -1 once reaped.
    pub fn pid(&self) -> i32 {
        if self.tg.is_reaped() { -1 } else { self.tg.tgid }
    }
}

impl FileDescription for PidFd {
    fn read(&self, _t: &Task, _bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        error!(EINVAL)
    }

    fn write(&self, _t: &Task, _bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        error!(EINVAL)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(anon_inode_stat())
    }

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

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
