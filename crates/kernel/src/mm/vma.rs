//! VMAs and PMAs: what the app asked for, and what backs it.

use rvisor_memory::{FileRange, MemoryFile, UsageKind};
use rvisor_platform::Perms;
use std::sync::Arc;

/// A virtual memory area: a range of addresses with one set of properties.
#[derive(Clone, Debug)]
pub struct Vma {
    pub end: u64,
    pub perms: Perms,
    /// MAP_SHARED: frames stay shared with other mappings of them (after fork).
    pub shared: bool,
    /// A stack that grows down on faults below it.
    pub growsdown: bool,
    /// What /proc/[pid]/maps calls it ("[stack]", "[heap]"), if anything.
    pub name: Option<&'static str>,
    /// Whether mprotect may add write access (not for the vDSO and its page).
    pub may_write: bool,
    /// A private mapping of a cached file: what its pages read once dropped.
    pub file: Option<FileBacking>,
}

/// The page cache behind a private file mapping: MADV_DONTNEED brings the file's
/// bytes back (as on Linux) instead of zeros.
#[derive(Clone)]
pub struct FileBacking {
    pub frames: Arc<Frames>,
    /// Where in `frames` the VMA starts.
    pub offset: u64,
}

impl std::fmt::Debug for FileBacking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileBacking({:#x}+{:#x})", self.frames.range.start, self.offset)
    }
}

impl FileBacking {
    /// A copy-on-write PMA over the cache for `[start, end)` of a VMA starting at
    /// `vma_start`; None past the end of the file.
    pub fn pma(&self, vma_start: u64, start: u64, end: u64) -> Option<Pma> {
        let offset = self.offset + (start - vma_start);
        let len = self.frames.range.len.saturating_sub(offset).min(end - start);
        (len > 0).then(|| Pma { end: start + len, frames: self.frames.clone(), offset, mapped: Perms::NONE, cow: true })
    }
}

/// A run of memory-file frames. Freed, and given back to the host, when the last
/// PMA referring to it goes away.
pub struct Frames {
    pub range: FileRange,
    mf: Arc<MemoryFile>,
}

impl Frames {
    pub fn allocate(mf: &Arc<MemoryFile>, len: u64) -> Option<Arc<Frames>> {
        let range = mf.allocate(len, UsageKind::Anonymous)?;
        Some(Arc::new(Frames { range, mf: mf.clone() }))
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        self.mf.free(self.range, UsageKind::Anonymous);
    }
}

/// A populated range: addresses backed by frames at `offset` within `frames`.
#[derive(Clone)]
pub struct Pma {
    pub end: u64,
    pub frames: Arc<Frames>,
    pub offset: u64,
    /// The permissions the platform currently maps this range with.
    pub mapped: Perms,
    /// The frames may be shared with another address space after fork: map them
    /// read-only and copy before the first write.
    pub cow: bool,
}

impl Pma {
    /// The memory-file offset backing address `addr` (which lies in `[start, end)`).
    pub fn file_offset(&self, start: u64, addr: u64) -> u64 {
        self.frames.range.start + self.offset + (addr - start)
    }

    /// Gives the host pages behind `[lo, hi)` (a sub-range of this PMA, which
    /// starts at `start`) back at once, unless fork may have shared them.
    pub fn release_host_pages(&self, mf: &MemoryFile, start: u64, lo: u64, hi: u64) {
        if !self.cow {
            mf.punch(FileRange { start: self.file_offset(start, lo), len: hi - lo });
        }
    }

    /// What the platform may map this range with inside a VMA allowing `perms`.
    pub fn effective(&self, perms: Perms) -> Perms {
        if self.cow { Perms { write: false, ..perms } } else { perms }
    }
}
