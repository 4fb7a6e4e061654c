//! A file backed directly by a host descriptor the caller handed to rvisor (the
//! standard streams of `rvisor do`). The Sentry does the I/O on the app's behalf,
//! straight between the host descriptor and the memory file.

use super::FileDescription;
use crate::mm::UserBuffers;
use crate::task::Task;
use nix::sys::stat::fstat;
use nix::sys::uio::{preadv, pwritev, readv, writev};
use rvisor_abi::structs::{Stat, Termios, Winsize};
use rvisor_abi::{errno, ErrnoCode, Errno, SysResult, UserAddr};
use rvisor_platform::hostcall;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

pub struct HostFile {
    /// Its OFD and flock locks, released when it goes.
    locks: crate::vfs::locks::FileLocks,
    fd: std::sync::Arc<OwnedFd>,
    /// For a host descriptor shared by several opens (read-only files from the
    /// gofer), the Sentry keeps each open's position; None: the host's position.
    position: Option<std::sync::Mutex<i64>>,
    /// Pipes, terminals and sockets can block; regular files and devices that
    /// are always ready are read and written directly.
    may_block: bool,
    readable: bool,
    writable: bool,
    /// Status flags as the app sees them. Changes stay in the sandbox: the host
    /// descriptor's description is shared with the caller.
    flags: super::StatusFlags,
    /// The name it was opened by, for files from the VFS.
    dentry: Option<std::sync::Arc<super::Dentry>>,
}

impl HostFile {
    /// A file the VFS opened at `dentry`.
    pub fn opened(fd: OwnedFd, dentry: std::sync::Arc<super::Dentry>) -> HostFile {
        let mut f = HostFile::new(fd);
        f.dentry = Some(dentry);
        f
    }

    /// A file the VFS opened at `dentry` with open(2)'s `flags`, on a host
    /// descriptor of its own that may allow more access than asked (the one
    /// a gofer's create opened read-write).
    pub fn opened_as(fd: OwnedFd, dentry: std::sync::Arc<super::Dentry>, flags: u32) -> HostFile {
        let of = super::OpenFlags(flags);
        let mut f = HostFile::opened(fd, dentry);
        f.readable = of.readable();
        f.writable = of.writable();
        f.flags = super::StatusFlags::new(flags);
        f.set_host_append(flags);
        f
    }

    /// O_APPEND must reach the host descriptor of a file opened by name, so that
    /// the host appends (such descriptors are the Sentry's own).
    fn set_host_append(&self, flags: u32) {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        if self.dentry.is_none() || self.position.is_some() {
            return;
        }
        if let Ok(fl) = fcntl(self.fd.as_raw_fd(), FcntlArg::F_GETFL) {
            let mut fl = OFlag::from_bits_truncate(fl);
            fl.set(OFlag::O_APPEND, flags & super::OpenFlags::APPEND != 0);
            let _ = fcntl(self.fd.as_raw_fd(), FcntlArg::F_SETFL(fl));
        }
    }

    /// Before host I/O on a file opened by name: its inode writes back what
    /// mappings changed (see `Inode::sync`).
    fn before_io(&self) -> SysResult<()> {
        self.dentry.as_ref().map_or(Ok(()), |d| d.inode.sync(false))
    }

    /// After `n` bytes were written at `offset` (None: at the host's position,
    /// which the write moved past them): the inode refreshes its mapped copies.
    fn after_write(&self, offset: Option<u64>, n: usize) {
        let Some(d) = &self.dentry else { return };
        let start = || match offset {
            Some(o) => Some(o),
            None => nix::unistd::lseek(self.fd.as_raw_fd(), 0, nix::unistd::Whence::SeekCur).ok().map(|end| (end as u64).saturating_sub(n as u64)),
        };
        d.inode.host_written(&start, n as u64);
    }

    /// A read-only open of a regular file whose host descriptor others share.
    pub fn shared(fd: std::sync::Arc<OwnedFd>, dentry: std::sync::Arc<super::Dentry>) -> HostFile {
        HostFile {
            fd,
            position: Some(std::sync::Mutex::new(0)),
            may_block: false,
            readable: true,
            writable: false,
            flags: super::StatusFlags::new(0),
            dentry: Some(dentry),
            locks: Default::default(),
        }
    }

    fn pos(&self) -> Option<std::sync::MutexGuard<'_, i64>> {
        self.position.as_ref().map(|p| p.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn new(fd: OwnedFd) -> HostFile {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let mode = fstat(fd.as_raw_fd()).map(|s| s.st_mode & libc_mode::S_IFMT).unwrap_or(0);
        let fl = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).unwrap_or(2);
        let acc = OFlag::from_bits_truncate(fl) & OFlag::O_ACCMODE;
        HostFile {
            fd: std::sync::Arc::new(fd),
            position: None,
            may_block: matches!(mode, libc_mode::S_IFIFO | libc_mode::S_IFSOCK | libc_mode::S_IFCHR),
            readable: acc != OFlag::O_WRONLY,
            writable: acc != OFlag::O_RDONLY,
            flags: super::StatusFlags::new(fl as u32 & !(OFlag::O_NONBLOCK.bits() as u32)),
            dentry: None,
            locks: Default::default(),
        }
    }

    /// Waits until the host descriptor is ready for `events`, or a signal (or the
    /// group's death) interrupts the task with ERESTARTSYS.
    fn wait_ready(&self, t: &Task, events: nix::poll::PollFlags) -> SysResult<()> {
        if !self.may_block {
            return Ok(());
        }
        wait_host(t, self.fd.as_fd(), events, None)
    }
}

/// Waits until host descriptor `fd` is ready for `events`: ERESTARTSYS if a
/// signal (or the group's death) interrupts the task, ETIMEDOUT at `deadline`.
pub fn wait_host(t: &Task, fd: std::os::fd::BorrowedFd<'_>, events: nix::poll::PollFlags, deadline: Option<std::time::Instant>) -> SysResult<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let Some(wake) = t.thread.host_wake() else { return Ok(()) };
    loop {
        if t.signal_pending() {
            return Err(errno!(ERESTARTSYS));
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Err(errno!(ETIMEDOUT));
                }
                PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(fd, events), PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
        match t.thread.waiter.asleep(|| poll(&mut fds, timeout)) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(host_errno(e)),
            Ok(_) => {}
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            let _ = wake.read();
            continue;
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            return Ok(());
        }
    }
}

/// File-type bits of st_mode.
mod libc_mode {
    pub const S_IFMT: u32 = 0o170000;
    pub const S_IFIFO: u32 = 0o010000;
    pub const S_IFCHR: u32 = 0o020000;
    pub const S_IFSOCK: u32 = 0o140000;
}

#[track_caller]
pub fn host_errno(e: nix::errno::Errno) -> Errno {
    Errno::new(ErrnoCode(e as u16))
}

#[track_caller]
fn io_errno(e: std::io::Error) -> Errno {
    Errno::new(ErrnoCode(e.raw_os_error().unwrap_or(5) as u16))
}

const TCGETS: u32 = 0x5401;
const TIOCGWINSZ: u32 = 0x5413;

impl HostFile {
    /// Whether a read would see end-of-file now: a seekable file at its end, or a
    /// hung-up pipe or terminal. Consumes nothing.
    fn at_eof(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let here = match self.pos() {
            Some(p) => Ok(*p),
            None => nix::unistd::lseek(self.fd.as_raw_fd(), 0, nix::unistd::Whence::SeekCur),
        };
        if let Ok(off) = here {
            return nix::sys::uio::pread(&*self.fd, &mut [0u8; 1], off) == Ok(0);
        }
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(1) => fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLHUP) && !r.contains(PollFlags::POLLIN)),
            _ => false,
        }
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        if let Some(d) = &self.dentry {
            crate::fs::inotify::closed(d, self.writable);
        }
    }
}

impl FileDescription for HostFile {
    fn read(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if !self.readable {
            return Err(errno!(EBADF));
        }
        let ranges = match t.mm.translate_buffers(bufs, true) {
            // Linux finds end-of-file before it copies anything, so a bad buffer
            // only faults when there is data to copy.
            Err(e) if e.code == ErrnoCode::EFAULT && self.at_eof() => return Ok(0),
            r => r?,
        };
        if ranges.is_empty() {
            return Ok(0);
        }
        if offset.is_none() {
            self.wait_ready(t, nix::poll::PollFlags::POLLIN)?;
        }
        self.before_io()?;
        let mut slices = t.mm.memory_file().io_slices_mut(&ranges);
        if let (None, Some(mut pos)) = (offset, self.pos()) {
            let n = preadv(&*self.fd, &mut slices, *pos).map_err(host_errno)?;
            *pos += n as i64;
            return Ok(n);
        }
        loop {
            let r = match offset {
                Some(off) => preadv(&*self.fd, &mut slices, off).map_err(host_errno),
                None => readv(&*self.fd, &mut slices).map_err(host_errno),
            };
            match r {
                Err(e) if e.code == ErrnoCode::EINTR => continue,
                r => return r,
            }
        }
    }

    fn write(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if !self.writable {
            return Err(errno!(EBADF));
        }
        let ranges = t.mm.translate_buffers(bufs, false)?;
        if ranges.is_empty() {
            return Ok(0);
        }
        if offset.is_none() {
            self.wait_ready(t, nix::poll::PollFlags::POLLOUT)?;
        }
        self.before_io()?;
        let slices = t.mm.memory_file().io_slices(&ranges);
        loop {
            let r = match offset {
                Some(off) => pwritev(&*self.fd, &slices, off).map_err(host_errno),
                None => writev(&*self.fd, &slices).map_err(host_errno),
            };
            match r {
                Err(e) if e.code == ErrnoCode::EINTR => continue,
                Ok(n) => {
                    self.after_write(offset.map(|o| o as u64), n);
                    return Ok(n);
                }
                r => return r,
            }
        }
    }

    fn seek(&self, offset: i64, whence: i32) -> SysResult<i64> {
        if let Some(mut pos) = self.pos() {
            let size = fstat(self.fd.as_raw_fd()).map_err(host_errno)?.st_size;
            let new = match whence {
                0 => Some(offset),
                1 => pos.checked_add(offset),
                2 => size.checked_add(offset),
                // The host knows where the file's holes are (its descriptor's
                // own position is no open's here).
                3 => Some(nix::unistd::lseek(self.fd.as_raw_fd(), offset, nix::unistd::Whence::SeekData).map_err(host_errno)?),
                4 => Some(nix::unistd::lseek(self.fd.as_raw_fd(), offset, nix::unistd::Whence::SeekHole).map_err(host_errno)?),
                _ => return Err(errno!(EINVAL)),
            };
            *pos = new.filter(|&n| n >= 0).ok_or_else(|| errno!(EINVAL))?;
            return Ok(*pos);
        }
        let whence = match whence {
            0 => nix::unistd::Whence::SeekSet,
            1 => nix::unistd::Whence::SeekCur,
            2 => nix::unistd::Whence::SeekEnd,
            3 => nix::unistd::Whence::SeekData,
            4 => nix::unistd::Whence::SeekHole,
            _ => return Err(errno!(EINVAL)),
        };
        nix::unistd::lseek(self.fd.as_raw_fd(), offset, whence).map_err(host_errno)
    }

    fn write_from(&self, t: &Task, data: &[u8], offset: Option<u64>) -> SysResult<usize> {
        if !self.writable {
            return Err(errno!(EBADF));
        }
        let n = match offset {
            Some(o) => {
                self.before_io()?;
                nix::sys::uio::pwrite(&*self.fd, data, o as i64).map_err(host_errno)?
            }
            None => {
                self.wait_ready(t, nix::poll::PollFlags::POLLOUT)?;
                self.before_io()?;
                nix::unistd::write(&*self.fd, data).map_err(host_errno)?
            }
        };
        self.after_write(offset, n);
        Ok(n)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        self.before_io()?;
        let mut done = 0;
        while done < buf.len() {
            match nix::sys::uio::pread(&*self.fd, &mut buf[done..], (offset + done as u64) as i64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(host_errno(e)),
            }
        }
        Ok(done)
    }

    fn dentry(&self) -> Option<std::sync::Arc<super::Dentry>> {
        self.dentry.clone()
    }
    fn file_locks(&self) -> Option<&crate::vfs::locks::FileLocks> {
        Some(&self.locks)
    }

    fn readiness(&self, mask: u32) -> u32 {
        if !self.may_block {
            return mask & super::readiness::DEFAULT_POLLMASK;
        }
        super::readiness::host_readiness(self.fd.as_fd(), mask)
    }

    fn host_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.may_block.then(|| self.fd.as_fd())
    }

    fn flags(&self) -> Option<&crate::vfs::StatusFlags> {
        Some(&self.flags)
    }

    fn set_status_flags(&self, flags: u32) {
        self.flags.set(flags);
        self.set_host_append(self.flags.get());
    }

    /// A file opened by name is what its inode says, as stat on the name is
    /// (the overlay's device number, not the host's: cp and tar compare them).
    /// The inherited standard streams are what the host says.
    fn stat(&self) -> SysResult<Stat> {
        match &self.dentry {
            Some(d) => d.inode.stat(),
            None => Ok(Stat::from_host(&fstat(self.fd.as_raw_fd()).map_err(host_errno)?)),
        }
    }

    fn ioctl(&self, t: &Task, request: u32, arg: u64) -> SysResult<u64> {
        match request {
            TCGETS => {
                let tio = nix::sys::termios::tcgetattr(self.fd.as_fd()).map_err(host_errno)?;
                let mut k = Termios::zeroed();
                k.c_iflag = tio.input_flags.bits() as u32;
                k.c_oflag = tio.output_flags.bits() as u32;
                k.c_cflag = tio.control_flags.bits() as u32;
                k.c_lflag = tio.local_flags.bits() as u32;
                k.c_line = tio.line_discipline;
                k.c_cc.copy_from_slice(&tio.control_chars[..19]);
                t.mm.write_obj(UserAddr(arg).into(), &k)?;
                Ok(0)
            }
            TIOCGWINSZ => {
                let [ws_row, ws_col, ws_xpixel, ws_ypixel] = hostcall::window_size(self.fd.as_fd()).map_err(io_errno)?;
                t.mm.write_obj(UserAddr(arg).into(), &Winsize { ws_row, ws_col, ws_xpixel, ws_ypixel })?;
                Ok(0)
            }
            _ => Err(errno!(ENOTTY)),
        }
    }
}
