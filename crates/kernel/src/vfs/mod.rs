//! The VFS: open file descriptions behind fd tables, dentries and mounts, path
//! walks. File systems live in `crate::fs`; this is what they plug into.

mod dentry;
mod dir_file;
mod fd_table;
mod host_file;
pub mod leases;
pub mod locks;
pub mod inode;
pub mod path;
pub mod perm;
pub mod propagation;
pub mod readiness;
mod status_flags;
pub use status_flags::StatusFlags;
mod wait_queue;

pub use dentry::{release_stale, Dentry, Mount, MountFlags, MountNamespace};
pub use dir_file::DirFile;
pub use fd_table::{Fd, FdTable};
pub use host_file::{host_errno, HostFile, wait_host};
pub use inode::{DirEntry, Inode, OpenFlags, SetAttr};
pub use path::{FsContext, Follow};
pub use wait_queue::{WaitCallback, WaitQueue};

use crate::mm::UserBuffers;
use crate::task::Task;
use rvisor_abi::structs::Stat;
use rvisor_abi::{error, SysResult};

pub use readiness::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI};

/// An open file description (Linux's `struct file`).
/// The record layout a directory listing is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirentFormat {
    /// `struct linux_dirent64` (getdents64).
    Dirent64,
    /// The old `struct linux_dirent` (getdents): d_type in the record's last byte.
    Dirent,
}

pub trait FileDescription: Send + Sync {
    /// Reads into `bufs`, at `offset` when given (pread) or at the file position.
    fn read(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize>;
    fn write(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize>;
    fn stat(&self) -> SysResult<Stat>;
    fn ioctl(&self, _t: &Task, _request: u32, _arg: u64) -> SysResult<u64> {
        error!(ENOTTY)
    }
    /// Where the description keeps its status flags, if in a `StatusFlags`; a file
    /// that keeps them otherwise overrides the two methods below instead.
    fn flags(&self) -> Option<&StatusFlags> {
        None
    }
    /// The file status flags (F_GETFL): access mode, O_APPEND, O_NONBLOCK...
    fn status_flags(&self) -> u32 {
        self.flags().map_or(0, StatusFlags::get)
    }
    /// F_SETFL: only O_APPEND, O_NONBLOCK, O_ASYNC, O_DIRECT and O_NOATIME change.
    fn set_status_flags(&self, flags: u32) {
        if let Some(f) = self.flags() {
            f.set(flags)
        }
    }
    /// lseek.
    fn seek(&self, _offset: i64, _whence: i32) -> SysResult<i64> {
        error!(ESPIPE)
    }
    /// getdents64 or getdents into `buf` (at most `len` bytes).
    fn getdents(&self, _t: &Task, _buf: rvisor_abi::UserAddr, _len: usize, _format: DirentFormat) -> SysResult<usize> {
        error!(ENOTDIR)
    }
    /// Writes Sentry bytes at `offset` (or the position): sendfile, copy_file_range.
    fn write_from(&self, _t: &Task, _data: &[u8], _offset: Option<u64>) -> SysResult<usize> {
        error!(EINVAL)
    }
    /// Reads at `offset` into a Sentry buffer (exec, file mappings).
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> SysResult<usize> {
        error!(EINVAL)
    }
    /// The name it was opened by (/proc/self/fd, fchdir, openat relative to it).
    fn dentry(&self) -> Option<std::sync::Arc<Dentry>> {
        None
    }
    /// The owner of this description's OFD and flock locks, for files that can
    /// hold them (None: EBADF, as for an O_PATH descriptor).
    fn file_locks(&self) -> Option<&locks::FileLocks> {
        None
    }
    /// What /proc/[pid]/fd/N shows for a file without a name in the tree
    /// ("pipe:[123]", "anon_inode:[eventfd]"). None: procfs derives one from the
    /// dentry or the file type.
    fn proc_name(&self) -> Option<Vec<u8>> {
        None
    }
    /// Which of the poll events in `mask` (POLLIN, POLLOUT...) hold now.
    fn readiness(&self, mask: u32) -> u32 {
        mask & readiness::DEFAULT_POLLMASK
    }
    /// Where a task blocks until `readiness` may have changed; None for files
    /// that are always ready.
    fn wait_queue(&self) -> Option<&WaitQueue> {
        None
    }
    /// For a file backed by a host descriptor that can block: the descriptor. A
    /// poll over it waits in a host poll (see `readiness`), and epoll accepts it.
    fn host_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }
    /// The pipe behind a pipe end: fcntl's F_GETPIPE_SZ/F_SETPIPE_SZ (see
    /// `crate::fs::pipe::fcntl_pipe_size`).
    fn pipe(&self) -> Option<&std::sync::Arc<crate::fs::pipe::Pipe>> {
        None
    }
    /// The epoll set, for an epoll file (nesting, loop checks, epoll_wait).
    fn epoll(&self) -> Option<&crate::fs::epoll::Epoll> {
        None
    }
    /// F_GET_SEALS: the file's seals; only tmpfs files have any.
    fn seals(&self) -> SysResult<u32> {
        error!(EINVAL)
    }
    /// F_ADD_SEALS.
    fn add_seals(&self, _seals: u32) -> SysResult<()> {
        error!(EINVAL)
    }
    /// The socket, for a socket file (the socket calls).
    fn as_socket(&self) -> Option<&dyn crate::net::Socket> {
        None
    }
    /// For calls that work on one kind of file (timerfd_settime...).
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}
