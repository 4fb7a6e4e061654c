//! The control file: a memfd holding one request-queue page per stub process. The
//! Sentry maps it read-write; each stub maps its own page read-only, so the app can
//! never change what the stub is asked to do.

use crate::stub::QueuedCall;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

const SLOTS: u64 = 4096;
const PAGE: u64 = 4096;

pub struct ControlFile {
    fd: OwnedFd,
    base: *mut u8,
    free: Mutex<Vec<u64>>,
}

// SAFETY: `base` is a shared mapping owned by this struct; each page is written
// only by the holder of its `ControlSlot`.
unsafe impl Send for ControlFile {}
// SAFETY: as above.
unsafe impl Sync for ControlFile {}

impl ControlFile {
    pub fn new() -> io::Result<ControlFile> {
        // SAFETY: creating and sizing a fresh memfd, then mapping it; all checked.
        unsafe {
            let raw = libc::memfd_create(c"rvisor-control".as_ptr(), libc::MFD_CLOEXEC);
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(raw);
            if libc::ftruncate(raw, (SLOTS * PAGE) as i64) < 0 {
                return Err(io::Error::last_os_error());
            }
            let base = libc::mmap(
                std::ptr::null_mut(),
                (SLOTS * PAGE) as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                raw,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            Ok(ControlFile { fd, base: base as *mut u8, free: Mutex::new((0..SLOTS).rev().collect()) })
        }
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn alloc_slot(self: &Arc<Self>) -> Option<ControlSlot> {
        let index = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
        Some(ControlSlot { file: self.clone(), index })
    }
}

/// One stub's queue page.
pub struct ControlSlot {
    file: Arc<ControlFile>,
    index: u64,
}

impl ControlSlot {
    pub fn offset(&self) -> u64 {
        self.index * PAGE
    }

    pub fn write_queue(&self, calls: &[QueuedCall]) {
        assert!(std::mem::size_of_val(calls) <= PAGE as usize);
        // SAFETY: the slot's page lies inside the mapping and only this slot writes it.
        unsafe {
            let dst = self.file.base.add(self.offset() as usize) as *mut QueuedCall;
            std::ptr::copy_nonoverlapping(calls.as_ptr(), dst, calls.len());
        }
    }
}

impl Drop for ControlSlot {
    fn drop(&mut self) {
        self.file.free.lock().unwrap_or_else(|e| e.into_inner()).push(self.index);
    }
}
