//! `Inode`: a file as a file system knows it, independent of any name.

use super::FileDescription;
use rvisor_abi::structs::Stat;
use rvisor_abi::{error, SysResult};
use std::sync::Arc;

pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

/// `d_type` values for getdents64.
pub const DT_UNKNOWN: u8 = 0;
pub const DT_CHR: u8 = 2;
pub const DT_DIR: u8 = 4;
pub const DT_REG: u8 = 8;
pub const DT_LNK: u8 = 10;

/// The `d_type` of a file with mode `mode`.
pub fn dtype_of(mode: u32) -> u8 {
    ((mode & S_IFMT) >> 12) as u8
}

/// The identity of the file behind an inode, for tables keyed by file (advisory
/// locks, inotify watches): the inode's address.
pub fn inode_key(inode: &Arc<dyn Inode>) -> usize {
    Arc::as_ptr(inode) as *const () as usize
}

/// setxattr's XATTR_CREATE (fail if it exists) and XATTR_REPLACE (fail if it
/// does not); both together always fail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XattrSet {
    pub create: bool,
    pub replace: bool,
}

/// One directory entry, as readdir returns it.
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: u64,
    pub dtype: u8,
}

/// How a file is opened (the O_* flags that reach the file system).
#[derive(Clone, Copy, Debug)]
pub struct OpenFlags(pub u32);

impl OpenFlags {
    pub const ACCMODE: u32 = 3;
    pub const WRONLY: u32 = 1;
    pub const RDWR: u32 = 2;
    pub const LARGEFILE: u32 = 0o100000;
    pub const CREAT: u32 = 0o100;
    pub const EXCL: u32 = 0o200;
    pub const NOCTTY: u32 = 0o400;
    pub const TRUNC: u32 = 0o1000;
    pub const APPEND: u32 = 0o2000;
    pub const NONBLOCK: u32 = 0o4000;
    pub const DIRECTORY: u32 = 0o200000;
    pub const NOFOLLOW: u32 = 0o400000;
    pub const CLOEXEC: u32 = 0o2000000;
    pub const PATH: u32 = 0o10000000;
    pub const TMPFILE: u32 = 0o20000000 | 0o200000;

    pub fn readable(self) -> bool {
        self.0 & Self::ACCMODE != Self::WRONLY
    }

    pub fn writable(self) -> bool {
        matches!(self.0 & Self::ACCMODE, Self::WRONLY | Self::RDWR)
    }
}

/// Attribute changes (chmod, chown, truncate, utimensat).
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<(i64, i64)>,
    pub mtime: Option<(i64, i64)>,
}

/// A file in some file system. Directory operations take names, never paths: the
/// VFS walks paths itself.
pub trait Inode: Send + Sync {
    fn stat(&self) -> SysResult<Stat>;

    /// The file type bits of the mode (S_IFDIR...), which never change.
    fn kind(&self) -> u32;

    fn lookup(&self, _name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        error!(ENOTDIR)
    }

    fn readlink(&self) -> SysResult<Vec<u8>> {
        error!(EINVAL)
    }

    /// For procfs's "magic" links (/proc/[pid]/fd/N, cwd, root): the dentry the
    /// link stands for, which a walk jumps to instead of resolving the text
    /// `readlink` shows (Linux's nd_jump_link). So /dev/stdin reaches a pipe and a
    /// deleted file stays reachable. None for ordinary symlinks.
    fn jump_link(&self) -> Option<SysResult<Arc<super::Dentry>>> {
        None
    }

    /// Whether the VFS may cache this directory's lookups in its dentries. procfs
    /// directories answer false: their entries come and go with processes and
    /// descriptors, so every walk asks them again (Linux's d_revalidate).
    fn cache_lookups(&self) -> bool {
        true
    }

    /// Opens the file found at `dentry` (already checked for access and type).
    fn open(&self, dentry: &Arc<super::Dentry>, flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>>;

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        error!(ENOTDIR)
    }

    fn create(&self, _name: &[u8], _mode: u32) -> SysResult<Arc<dyn Inode>> {
        error!(EROFS)
    }

    fn mkdir(&self, _name: &[u8], _mode: u32) -> SysResult<Arc<dyn Inode>> {
        error!(EROFS)
    }

    /// open(O_TMPFILE) in this directory: a file with no name yet.
    fn tmpfile(&self, _mode: u32, _linkable: bool) -> SysResult<Arc<dyn Inode>> {
        error!(EOPNOTSUPP)
    }

    /// mknod of a FIFO, the one special file the sandbox can make.
    fn mkfifo(&self, _name: &[u8], _mode: u32) -> SysResult<Arc<dyn Inode>> {
        error!(EPERM)
    }

    /// The pipe behind a FIFO made by `mkfifo` (open(2) gives an end of it).
    fn fifo(&self) -> Option<Arc<crate::fs::pipe::Pipe>> {
        None
    }

    /// A socket node: what bind(2) of an AF_UNIX socket (or mknod S_IFSOCK,
    /// with no socket) makes; connect(2) finds the socket through it.
    fn mksock(&self, _name: &[u8], _mode: u32, _socket: std::sync::Weak<crate::net::unix::UnixSocket>) -> SysResult<Arc<dyn Inode>> {
        error!(EPERM)
    }

    /// The socket a socket node names, if it is still bound.
    fn bound_socket(&self) -> Option<Arc<crate::net::unix::UnixSocket>> {
        None
    }

    fn symlink(&self, _name: &[u8], _target: &[u8]) -> SysResult<Arc<dyn Inode>> {
        error!(EROFS)
    }

    fn link(&self, _name: &[u8], _target: &Arc<dyn Inode>) -> SysResult<()> {
        error!(EROFS)
    }

    fn unlink(&self, _name: &[u8]) -> SysResult<()> {
        error!(EROFS)
    }

    fn rmdir(&self, _name: &[u8]) -> SysResult<()> {
        error!(EROFS)
    }

    /// Moves `name` here to `new_name` in `new_dir` (same file system).
    fn rename(&self, _name: &[u8], _new_dir: &Arc<dyn Inode>, _new_name: &[u8]) -> SysResult<()> {
        error!(EROFS)
    }

    /// fallocate(FALLOC_FL_PUNCH_HOLE): `[offset, offset+len)` reads as zeros and
    /// holds no memory (partial pages are zeroed); the size is unchanged.
    fn punch_hole(&self, _offset: u64, _len: u64) -> SysResult<()> {
        error!(EOPNOTSUPP)
    }

    /// RENAME_EXCHANGE: `name` here and `new_name` in `new_dir` (same file
    /// system, both existing) swap places, atomically.
    fn exchange(&self, _name: &[u8], _new_dir: &Arc<dyn Inode>, _new_name: &[u8]) -> SysResult<()> {
        error!(EROFS)
    }

    fn setattr(&self, _attr: &SetAttr) -> SysResult<()> {
        error!(EROFS)
    }

    /// fallocate's allocation of `[offset, offset+len)`, for a file system that
    /// holds space (ENOSPC when it cannot); the size is the caller's business.
    fn allocate(&self, _offset: u64, _len: u64) -> SysResult<()> {
        Ok(())
    }

    /// Its file system's size and use in pages (statfs), where it keeps count.
    fn space(&self) -> Option<(u64, u64)> {
        None
    }

    /// Its file system's own options, as /proc/mounts shows them after the
    /// mount's flags (Linux's show_options): ",size=1024k,mode=755".
    fn fs_options(&self) -> String {
        String::new()
    }

    /// The host file system's figures (statfs), for a file on one.
    fn host_statfs(&self) -> Option<rvisor_gofer::StatFs> {
        None
    }

    /// Extended attributes, by full name ("user.x"); the syscalls check names,
    /// namespaces, sizes and flags. A file system that keeps none finds none and
    /// refuses to store any.
    fn getxattr(&self, _name: &[u8]) -> SysResult<Vec<u8>> {
        error!(ENODATA)
    }

    fn listxattr(&self) -> SysResult<Vec<Vec<u8>>> {
        Ok(Vec::new())
    }

    fn setxattr(&self, _name: &[u8], _value: &[u8], _mode: XattrSet) -> SysResult<()> {
        error!(EOPNOTSUPP)
    }

    fn removexattr(&self, _name: &[u8]) -> SysResult<()> {
        error!(EOPNOTSUPP)
    }

    /// Writes back to the host file what memory holds of it that the host lacks
    /// (stores through shared mappings of a host file), before the Sentry reads or
    /// writes the host file directly; `durable`: and has the host commit the file
    /// to storage (fsync).
    fn sync(&self, _durable: bool) -> SysResult<()> {
        Ok(())
    }

    /// `len` bytes of the host file changed through a host descriptor, starting
    /// where `start` says (asked only when the inode has mapped copies: it may
    /// cost a host call): the copies mappings hold of them take the new bytes.
    fn host_written(&self, _start: &dyn Fn() -> Option<u64>, _len: u64) {}

    /// cachestat(2) of the pages `first..=last` (page indexes): what of the
    /// file the Sentry holds in memory, made by nothing (a file read through
    /// host calls only has no pages here).
    fn cache_stat(&self, _first: u64, _last: u64) -> crate::mm::CacheStat {
        crate::mm::CacheStat::default()
    }

    /// The pages mmap maps (a tmpfs file's own, a read-only host file's page
    /// cache); None to give mappings a copy of the contents instead.
    fn file_pages(&self, _mf: &Arc<rvisor_memory::MemoryFile>) -> SysResult<Option<Arc<dyn crate::mm::FilePages>>> {
        Ok(None)
    }

    /// For rename and link across inodes of one file system.
    fn as_any(&self) -> &dyn std::any::Any;
}
