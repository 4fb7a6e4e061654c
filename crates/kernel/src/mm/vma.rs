//! VMAs and PMAs: what the app asked for, and what backs it.

use rvisor_memory::{FileRange, MemoryFile, UsageKind};
use rvisor_abi::{errno, SysResult};
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
    /// Whether mprotect may add execute access (not for a file of a noexec mount).
    pub may_exec: bool,
    /// A file mapping: where its pages come from (faults fill it from there).
    pub file: Option<FileMapping>,
    /// What fork gives the child here (madvise).
    pub on_fork: OnFork,
    /// The userfaultfd its missing pages are reported to (not kept by fork).
    pub userfault: Option<Arc<super::userfault::Userfault>>,
    /// mseal: the mapping may not be unmapped, moved, remapped over, have its
    /// protection changed, or (read-only private anonymous memory) be discarded.
    pub sealed: bool,
    /// mbind's NUMA policy (None: the thread's).
    pub policy: Option<Arc<super::mempolicy::MemPolicy>>,
}

/// What a child gets of a mapping at fork: Linux's VM_DONTCOPY and VM_WIPEONFORK.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OnFork {
    /// MADV_DONTFORK: nothing; the child has a hole there.
    pub skip: bool,
    /// MADV_WIPEONFORK: the mapping, zero-filled (private anonymous mappings only).
    pub wipe: bool,
}

/// What a file mapping's pages come from, as Linux's `address_space`: a tmpfs
/// file's own pages (shared mappings write into the file) or a read-only host
/// file's page cache.
pub trait FilePages: Send + Sync {
    /// Bytes of pages the file has (page-rounded size): an access through a
    /// mapping at or past it is past the end of the file (SIGBUS).
    fn end(&self) -> u64;
    /// The frames behind the page-aligned file range `[off, off + len)` (below
    /// `end()`), in runs; pages the file lacks are allocated.
    fn frames(&self, off: u64, len: u64) -> SysResult<Vec<PageRun>>;
    /// Whether a MAP_SHARED mapping may write the pages (EPERM when sealed,
    /// ENODEV when writes could not reach the file).
    fn check_shared_write(&self) -> SysResult<()>;

    /// msync: writes stores through shared mappings back to the file, for pages
    /// that are a copy of a host file's.
    fn sync(&self) -> SysResult<()> {
        Ok(())
    }

    /// Whether every page is in memory already, so that mapping the file ahead of
    /// faults allocates nothing (a tmpfs file would allocate its holes).
    fn all_present(&self) -> bool {
        false
    }

    /// A System V shared memory segment's size (shmdt finds attachments by it).
    fn sysv_segment_size(&self) -> Option<u64> {
        None
    }

    /// Copies the file's bytes `[off, off + buf.len())` (below `end()`) out of
    /// its pages.
    fn read(&self, mf: &MemoryFile, off: u64, buf: &mut [u8]) -> SysResult<()> {
        let end = off.checked_add(buf.len() as u64).ok_or_else(|| errno!(EINVAL))?;
        let lo = rvisor_abi::page_down(off);
        let hi = rvisor_abi::page_up(end).ok_or_else(|| errno!(EINVAL))?;
        if buf.is_empty() {
            return Ok(());
        }
        for run in self.frames(lo, hi - lo)? {
            let (a, b) = (run.off.max(off), (run.off + run.len).min(end));
            if a < b {
                mf.read(run.frames.range.start + run.at + (a - run.off), &mut buf[(a - off) as usize..(b - off) as usize]);
            }
        }
        Ok(())
    }
}

/// File bytes `[off, off + len)` live in `frames` from offset `at` on.
pub struct PageRun {
    pub off: u64,
    pub len: u64,
    pub frames: Arc<Frames>,
    pub at: u64,
}

/// A file mapping: the file's pages from byte `offset` (where the VMA starts) on.
#[derive(Clone)]
pub struct FileMapping {
    pub pages: Arc<dyn FilePages>,
    pub offset: u64,
}

impl std::fmt::Debug for FileMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileMapping(+{:#x} of {:#x})", self.offset, self.pages.end())
    }
}

impl FileMapping {
    /// Where the file's pages end for a VMA starting at `vma_start`.
    pub fn end_address(&self, vma_start: u64) -> u64 {
        vma_start.saturating_add(self.pages.end().saturating_sub(self.offset))
    }
}

/// A host file's contents read once into frames: the page cache private and
/// read-only shared mappings of the file share.
pub struct PageCache(pub Arc<Frames>);

impl FilePages for PageCache {
    fn end(&self) -> u64 {
        self.0.range.len
    }

    fn frames(&self, off: u64, len: u64) -> SysResult<Vec<PageRun>> {
        Ok(vec![PageRun { off, len, frames: self.0.clone(), at: off }])
    }

    fn check_shared_write(&self) -> SysResult<()> {
        Err(errno!(ENODEV))
    }

    fn all_present(&self) -> bool {
        true
    }
}

/// A run of memory-file frames. Freed, and given back to the host, when the last
/// PMA referring to it goes away.
pub struct Frames {
    pub range: FileRange,
    kind: UsageKind,
    mf: Arc<MemoryFile>,
}

impl Frames {
    pub fn allocate(mf: &Arc<MemoryFile>, len: u64) -> Option<Arc<Frames>> {
        Self::allocate_as(mf, len, UsageKind::Anonymous)
    }

    /// Frames counted in the memory file's usage as `kind`.
    pub fn allocate_as(mf: &Arc<MemoryFile>, len: u64, kind: UsageKind) -> Option<Arc<Frames>> {
        let range = mf.allocate(len, kind)?;
        Some(Arc::new(Frames { range, kind, mf: mf.clone() }))
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        self.mf.free(self.range, self.kind);
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
