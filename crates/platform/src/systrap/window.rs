//! The Sentry's view of a stub's shared window: a memfd mapped read-write here and
//! (partly read-only) at `stub::WINDOW` in the stub. Everything in it that the stub
//! can write is hostile: it is read with volatile loads, once, into Sentry memory,
//! and validated there; nothing here hands out references into it except the
//! atomic handoff words.

use super::stub::*;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::AtomicU32;

pub struct Window {
    base: *mut u8,
    fd: Option<OwnedFd>,
}

// SAFETY: the mapping is owned by this struct and only accessed through volatile
// or atomic operations on offsets checked against its length.
unsafe impl Send for Window {}
// SAFETY: as above.
unsafe impl Sync for Window {}

/// A descriptor number >= 3, so that the stub's dup2 onto 0..2 never clobbers another input.
pub fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() >= 3 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor we then own.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: r is a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

impl Window {
    pub fn new() -> io::Result<Window> {
        // SAFETY: creating, sizing and mapping a fresh memfd; all results checked.
        unsafe {
            let raw = libc::memfd_create(c"rvisor-systrap".as_ptr(), libc::MFD_CLOEXEC);
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = above_stdio(OwnedFd::from_raw_fd(raw))?;
            if libc::ftruncate(fd.as_raw_fd(), WINDOW_LEN as i64) < 0 {
                return Err(io::Error::last_os_error());
            }
            let base = libc::mmap(
                std::ptr::null_mut(),
                WINDOW_LEN as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            Ok(Window { base: base as *mut u8, fd: Some(fd) })
        }
    }

    /// The memfd, until the stub has its own copy.
    pub fn fd(&self) -> i32 {
        self.fd.as_ref().map_or(-1, |f| f.as_raw_fd())
    }

    /// Closes the Sentry's descriptor: the mapping stays, and the stub keeps its own.
    pub fn close_fd(&mut self) {
        self.fd = None;
    }

    fn at(&self, off: u64, size: u64) -> *mut u8 {
        assert!(off.checked_add(size).is_some_and(|e| e <= WINDOW_LEN), "window access out of range");
        // SAFETY: in bounds of the mapping, checked above.
        unsafe { self.base.add(off as usize) }
    }

    pub fn read_u32(&self, off: u64) -> u32 {
        // SAFETY: in bounds and aligned (our offsets are); volatile because the stub writes it.
        unsafe { std::ptr::read_volatile(self.at(off, 4) as *const u32) }
    }

    pub fn read_u64(&self, off: u64) -> u64 {
        // SAFETY: as in read_u32.
        unsafe { std::ptr::read_volatile(self.at(off, 8) as *const u64) }
    }

    pub fn write_u32(&self, off: u64, v: u32) {
        // SAFETY: as in read_u32.
        unsafe { std::ptr::write_volatile(self.at(off, 4) as *mut u32, v) }
    }

    pub fn write_u64(&self, off: u64, v: u64) {
        // SAFETY: as in read_u32.
        unsafe { std::ptr::write_volatile(self.at(off, 8) as *mut u64, v) }
    }

    pub fn read_bytes(&self, off: u64, out: &mut [u8]) {
        let p = self.at(off, out.len() as u64);
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: in bounds (checked for the whole range above).
            *b = unsafe { std::ptr::read_volatile(p.add(i)) };
        }
    }

    pub fn write_bytes(&self, off: u64, data: &[u8]) {
        let p = self.at(off, data.len() as u64);
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: in bounds (checked for the whole range above).
            unsafe { std::ptr::write_volatile(p.add(i), b) };
        }
    }

    /// A handoff word, shared with the stub (which may write anything into it).
    pub fn word(&self, off: u64) -> &AtomicU32 {
        let p = self.at(off, 4);
        assert!(p as usize % 4 == 0);
        // SAFETY: aligned, in bounds, lives as long as self; AtomicU32 has u32's layout.
        unsafe { &*(p as *const AtomicU32) }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping; nothing refers to it any more.
        unsafe { libc::munmap(self.base as *mut libc::c_void, WINDOW_LEN as usize) };
    }
}

/// Window offset of app thread `k`'s block.
pub fn block_off(k: usize) -> u64 {
    WIN_SLOTS + k as u64 * BLOCK
}

/// The stub's address of window offset `off`.
pub fn stub_addr(off: u64) -> u64 {
    WINDOW + off
}
