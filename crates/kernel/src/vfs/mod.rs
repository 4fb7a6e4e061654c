//! Files as the app sees them: open file descriptions behind an fd table.
//!
//! Until the VFS lands this holds only what a program inherits: its standard
//! streams, backed by the host descriptors the caller gave rvisor.

mod fd_table;
mod host_file;

pub use fd_table::{Fd, FdTable};
pub use host_file::HostFile;

use crate::mm::UserBuffers;
use crate::task::Task;
use rvisor_abi::structs::Stat;
use rvisor_abi::{error, SysResult};

/// An open file description (Linux's `struct file`).
pub trait FileDescription: Send + Sync {
    /// Reads into `bufs`, at `offset` when given (pread) or at the file position.
    fn read(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize>;
    fn write(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize>;
    fn stat(&self) -> SysResult<Stat>;
    fn ioctl(&self, _t: &Task, _request: u32, _arg: u64) -> SysResult<u64> {
        error!(ENOTTY)
    }
    /// The file status flags (F_GETFL): access mode, O_APPEND, O_NONBLOCK...
    fn status_flags(&self) -> u32;
    /// F_SETFL: only O_APPEND, O_NONBLOCK, O_ASYNC, O_DIRECT and O_NOATIME change.
    fn set_status_flags(&self, flags: u32);
}
