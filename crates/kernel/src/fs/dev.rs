//! devfs, mounted at /dev: the memory-like character devices (null, zero, full,
//! random, urandom), tty and console, the fd and standard-stream links into
//! /proc/self/fd, `ptmx` (a link into devpts), and empty `shm` and `pts`
//! directories (tmpfs and devpts are mounted on them). As devtmpfs, it takes new
//! files and directories (in memory): mount points such as Kubernetes'
//! /dev/termination-log, or what a program makes there.

use crate::vfs::StatusFlags;
use super::simple::{copy_in, copy_out, kept_flags, makedev, Attrs, InoAlloc, StaticDir, StaticLink};
use super::tmpfs::Tmpfs;
use crate::mm::UserBuffers;
use crate::task::Task;
use crate::vfs::inode::{Inode, OpenFlags, S_IFCHR};
use crate::vfs::{Dentry, FileDescription};
use rvisor_abi::structs::Stat;
use rvisor_abi::{errno, error, SysResult};

use std::sync::Arc;

/// The character devices devfs serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
    /// The controlling terminal (opened by the open syscall, which knows the
    /// caller's; ENXIO without one).
    Tty,
    /// The system console: the `-t` terminal, else ENXIO as on a machine without one
    /// (opened by the open syscall, which knows the kernel's console).
    Console,
}

impl Device {
    /// Linux's (major, minor) numbers.
    pub fn numbers(self) -> (u64, u64) {
        match self {
            Device::Null => (1, 3),
            Device::Zero => (1, 5),
            Device::Full => (1, 7),
            Device::Random => (1, 8),
            Device::Urandom => (1, 9),
            Device::Tty => (5, 0),
            Device::Console => (5, 1),
        }
    }

    fn mode(self) -> u32 {
        match self {
            Device::Console => 0o600,
            _ => 0o666,
        }
    }
}

/// A device node.
pub struct DeviceInode {
    attrs: Attrs,
    pub device: Device,
}

impl Inode for DeviceInode {
    fn stat(&self) -> SysResult<Stat> {
        Ok(self.attrs.stat(0))
    }

    fn kind(&self) -> u32 {
        S_IFCHR
    }

    fn open(&self, dentry: &Arc<Dentry>, flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        if matches!(self.device, Device::Tty | Device::Console) {
            return error!(ENXIO);
        }
        Ok(Arc::new(DeviceFile { device: self.device, dentry: dentry.clone(), flags: StatusFlags::new(kept_flags(flags.0)), locks: Default::default() }))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An open device.
pub struct DeviceFile {
    /// Its OFD and flock locks, released when it goes.
    locks: crate::vfs::locks::FileLocks,
    device: Device,
    dentry: Arc<Dentry>,
    flags: StatusFlags,
}

/// Longest single read of a random device (as getrandom's cap, 32 MiB - 1).
const RANDOM_READ_MAX: u64 = (32 << 20) - 1;

impl DeviceFile {
    fn flags(&self) -> OpenFlags {
        OpenFlags(self.flags.get())
    }

    /// Fills the app's buffers with zeros; a fault ends the read early.
    fn read_zeros(&self, t: &Task, bufs: &UserBuffers) -> SysResult<usize> {
        let mut done = 0usize;
        for &(addr, len) in &bufs.iovs {
            if len == 0 {
                continue;
            }
            if let Err(e) = t.mm.zero(addr, len) {
                // Zero what is writable, page by page, up to the fault.
                let mut ok = 0u64;
                while ok < len {
                    let n = (4096 - (addr.get().wrapping_add(ok) % 4096)).min(len - ok);
                    match addr.add(ok) {
                        Ok(a) if t.mm.zero(a, n).is_ok() => ok += n,
                        _ => break,
                    }
                }
                done += ok as usize;
                return if done == 0 { Err(e) } else { Ok(done) };
            }
            done += len as usize;
        }
        Ok(done)
    }

    fn read_random(&self, t: &Task, bufs: &UserBuffers) -> SysResult<usize> {
        let mut done = 0u64;
        let mut chunk = vec![0u8; 64 << 10];
        for &(addr, len) in &bufs.iovs {
            let mut at = 0u64;
            let len = len.min(RANDOM_READ_MAX - done);
            while at < len {
                let n = (len - at).min(chunk.len() as u64) as usize;
                getrandom::fill(&mut chunk[..n]).map_err(|_| errno!(EIO))?;
                let one = UserBuffers { iovs: vec![(addr.add(at)?, n as u64)] };
                match copy_out(t, &one, &chunk[..n]) {
                    Ok(k) if k == n => at += n as u64,
                    Ok(k) => return Ok((done + at) as usize + k),
                    Err(e) if done + at == 0 => return Err(e),
                    Err(_) => return Ok((done + at) as usize),
                }
            }
            done += len;
            if done >= RANDOM_READ_MAX {
                break;
            }
        }
        Ok(done as usize)
    }
}

impl FileDescription for DeviceFile {
    fn read(&self, t: &Task, bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        if !self.flags().readable() {
            return error!(EBADF);
        }
        match self.device {
            Device::Null => Ok(0),
            Device::Zero | Device::Full => self.read_zeros(t, bufs),
            Device::Random | Device::Urandom => self.read_random(t, bufs),
            Device::Tty | Device::Console => error!(ENXIO),
        }
    }

    fn write(&self, t: &Task, bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        if !self.flags().writable() {
            return error!(EBADF);
        }
        match self.device {
            Device::Null | Device::Zero => Ok(bufs.total() as usize),
            Device::Full => error!(ENOSPC),
            // Written bytes would be mixed into the pool; reading them checks the
            // buffers as Linux does.
            Device::Random | Device::Urandom => copy_in(t, bufs, 1 << 20).map(|_| bufs.total() as usize),
            Device::Tty | Device::Console => error!(ENXIO),
        }
    }

    fn stat(&self) -> SysResult<Stat> {
        self.dentry.inode.stat()
    }

    fn flags(&self) -> Option<&crate::vfs::StatusFlags> {
        Some(&self.flags)
    }

    /// These devices have no position: lseek succeeds and reports 0 (null_lseek,
    /// full_lseek; noop_llseek on a never-moved position for zero and random).
    fn seek(&self, _offset: i64, _whence: i32) -> SysResult<i64> {
        Ok(0)
    }

    /// sendfile and splice into a device: as a write.
    fn write_from(&self, _t: &Task, data: &[u8], _offset: Option<u64>) -> SysResult<usize> {
        match self.device {
            Device::Null | Device::Zero | Device::Random | Device::Urandom => Ok(data.len()),
            Device::Full => error!(ENOSPC),
            Device::Tty | Device::Console => error!(ENXIO),
        }
    }

    fn read_at(&self, _offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        match self.device {
            Device::Null => Ok(0),
            Device::Zero | Device::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            Device::Random | Device::Urandom => getrandom::fill(buf).map(|_| buf.len()).map_err(|_| errno!(EIO)),
            Device::Tty | Device::Console => error!(ENXIO),
        }
    }

    fn dentry(&self) -> Option<Arc<Dentry>> {
        Some(self.dentry.clone())
    }
    fn file_locks(&self) -> Option<&crate::vfs::locks::FileLocks> {
        Some(&self.locks)
    }
}

/// Builds a devfs and returns its root directory.
pub fn new_devfs(dev: u64, files: Arc<Tmpfs>) -> Arc<dyn Inode> {
    let ino = Arc::new(InoAlloc::new(dev));
    let root_attrs = ino.attrs(0o755);
    let device = |d: Device| -> Arc<dyn Inode> {
        let (major, minor) = d.numbers();
        let mut attrs = ino.attrs(S_IFCHR | d.mode());
        attrs.rdev = makedev(major, minor);
        if d == Device::Tty {
            attrs.gid = 5; // the tty group, as on most distributions
        }
        Arc::new(DeviceInode { attrs, device: d })
    };
    let link = |target: &str| -> Arc<dyn Inode> { StaticLink::new(ino.attrs(0o777), target) };
    let entries: Vec<(&str, Arc<dyn Inode>)> = vec![
        ("console", device(Device::Console)),
        ("fd", link("/proc/self/fd")),
        ("full", device(Device::Full)),
        ("null", device(Device::Null)),
        ("ptmx", link("pts/ptmx")),
        ("pts", StaticDir::new(ino.attrs(0o755), vec![])),
        ("random", device(Device::Random)),
        ("shm", StaticDir::new(ino.attrs(0o1777), vec![])),
        ("stderr", link("/proc/self/fd/2")),
        ("stdin", link("/proc/self/fd/0")),
        ("stdout", link("/proc/self/fd/1")),
        ("tty", device(Device::Tty)),
        ("urandom", device(Device::Urandom)),
        ("zero", device(Device::Zero)),
    ];
    StaticDir::growable(root_attrs, entries, files, ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::vfs::inode::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};

    fn test_files() -> Arc<Tmpfs> {
        Tmpfs::new(Arc::new(rvisor_memory::MemoryFile::new().unwrap()), 9)
    }

    #[test]
    fn takes_new_files_and_directories_as_devtmpfs() {
        let root = new_devfs(7, test_files());
        let code = |r: SysResult<()>| r.err().map(|e| e.code);
        let f = root.create(b"termination-log", 0o644).unwrap();
        assert_eq!(f.kind(), S_IFREG);
        assert!(root.create(b"termination-log", 0o644).is_err());
        assert!(root.create(b"null", 0o644).is_err());
        let d = root.mkdir(b"mqueue", 0o755).unwrap();
        assert_eq!(d.stat().unwrap().st_mode & 0o7777, 0o755);
        d.create(b"inner", 0o600).unwrap();
        assert_eq!(code(root.rmdir(b"mqueue")), Some(rvisor_abi::ErrnoCode::ENOTEMPTY));
        d.unlink(b"inner").unwrap();
        root.rmdir(b"mqueue").unwrap();
        assert_eq!(code(root.unlink(b"shm")), Some(rvisor_abi::ErrnoCode::EISDIR));
        assert_eq!(code(root.rmdir(b"shm")), Some(rvisor_abi::ErrnoCode::EBUSY));
        assert_eq!(code(root.rmdir(b"termination-log")), Some(rvisor_abi::ErrnoCode::ENOTDIR));
        root.unlink(b"termination-log").unwrap();
        assert!(root.lookup(b"termination-log").is_err());
        // Its fixed subdirectories do not grow.
        assert!(root.lookup(b"pts").unwrap().create(b"x", 0o644).is_err());
    }

    #[test]
    fn devices_have_linux_numbers() {
        let root = new_devfs(7, test_files());
        for (name, major, minor) in [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)] {
            let i = root.lookup(name.as_bytes()).unwrap();
            let st = i.stat().unwrap();
            assert_eq!(st.st_mode & S_IFMT, S_IFCHR, "{name}");
            assert_eq!(st.st_rdev, makedev(major, minor), "{name}");
            assert_eq!(super::super::simple::major_minor(st.st_rdev), (major, minor));
            assert_eq!(st.st_dev, 7);
        }
        assert_eq!(root.lookup(b"stdin").unwrap().readlink().unwrap(), b"/proc/self/fd/0");
        assert_eq!(root.lookup(b"fd").unwrap().kind(), S_IFLNK);
        assert_eq!(root.lookup(b"shm").unwrap().kind(), S_IFDIR);
        assert_eq!(root.lookup(b"shm").unwrap().stat().unwrap().st_mode & 0o7777, 0o1777);
        assert!(root.lookup(b"nope").is_err());
        let names: Vec<_> = root.readdir().unwrap().into_iter().map(|e| String::from_utf8(e.name).unwrap()).collect();
        assert!(names.contains(&"urandom".to_string()) && names.contains(&"stdout".to_string()));
    }

    #[test]
    fn tty_without_terminal_is_enxio() {
        let root = new_devfs(7, test_files());
        let tty = root.lookup(b"tty").unwrap();
        let d = Dentry::new_root(tty.clone(), std::sync::Weak::new());
        assert_eq!(tty.open(&d, OpenFlags(2)).err().map(|e| e.code), Some(rvisor_abi::ErrnoCode::ENXIO));
    }

    #[test]
    fn read_at_semantics() {
        let root = new_devfs(7, test_files());
        let mut buf = [1u8; 64];
        for (name, n, zero) in [("null", 0, false), ("zero", 64, true), ("full", 64, true), ("urandom", 64, false)] {
            let i = root.lookup(name.as_bytes()).unwrap();
            let d = Dentry::new_root(i.clone(), std::sync::Weak::new());
            let f = i.open(&d, OpenFlags(2)).unwrap();
            buf.fill(1);
            assert_eq!(f.read_at(0, &mut buf).unwrap(), n, "{name}");
            if zero {
                assert!(buf.iter().all(|&b| b == 0));
            }
            assert_eq!(f.seek(100, 0).unwrap(), 0);
        }
    }
}
