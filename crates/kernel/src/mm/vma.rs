//! VMAs and PMAs: what the app asked for, and what backs it.

use rvisor_memory::{FileRange, MemoryFile, UsageKind};
use rvisor_abi::{errno, SysResult};
use rvisor_platform::Perms;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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
    /// A shared anonymous mapping's inode number for /proc/PID/maps, which Linux
    /// backs with a file of its own ("/dev/zero (deleted)"); 0 for other mappings.
    pub shmem_ino: u64,
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

    /// The part of the file range `[off, off + len)` that a fault at file offset
    /// `at` in it should back: all of it, unless bringing pages in costs by the byte.
    fn fault_span(&self, off: u64, len: u64, _at: u64) -> (u64, u64) {
        (off, off + len)
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
    /// Its bytes were just read from the host (what makes a fault major).
    pub read_in: bool,
}

/// A file mapping: the file's pages from byte `offset` (where the VMA starts) on.
#[derive(Clone)]
pub struct FileMapping {
    pub pages: Arc<dyn FilePages>,
    pub offset: u64,
    /// The file mapped, for /proc/PID/maps and map_files.
    pub file: VmFile,
}

/// The open file a mapping was made from, as much of Linux's vm_file as /proc
/// shows: its dentry (maps' path, device and inode number; what a map_files link
/// opens) and whether it was open for writing (the link's mode).
#[derive(Clone)]
pub struct VmFile {
    pub dentry: Arc<crate::vfs::Dentry>,
    pub writable: bool,
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

/// A read-only host file's contents in frames, read in `PAGE_CACHE_CHUNK`s as
/// mappings first need them; private and read-only shared mappings of the file
/// share the frames. Read whole at the first mmap, files cost their full copy per
/// sandbox: rustc read 510 MB for a hello world (librustc_driver alone is 153 MB),
/// 189 MB in chunks.
pub struct PageCache {
    frames: Arc<Frames>,
    /// The file's size, and the host descriptor its bytes are read from.
    size: u64,
    source: Arc<OwnedFd>,
    /// Which chunks hold the file's bytes. Leaf lock, held across the host read so
    /// that a chunk is read once.
    read_in: Mutex<Vec<bool>>,
    /// Every chunk is read in.
    complete: AtomicBool,
}

/// How much of a file [`PageCache`] reads in at a time, and the most of it a
/// fault maps beyond what is read in already.
const PAGE_CACHE_CHUNK: u64 = 256 << 10;

impl PageCache {
    /// A cache of the file of `size` bytes that `source` reads, with nothing read
    /// in yet.
    pub fn new(mf: &Arc<MemoryFile>, size: u64, source: Arc<OwnedFd>) -> SysResult<PageCache> {
        let len = rvisor_abi::page_up(size).ok_or_else(|| errno!(EFBIG))?;
        let frames = Frames::allocate_as(mf, len, UsageKind::PageCache).ok_or_else(|| errno!(ENOMEM))?;
        let chunks = len.div_ceil(PAGE_CACHE_CHUNK) as usize;
        Ok(PageCache { frames, size, source, read_in: Mutex::new(vec![false; chunks]), complete: AtomicBool::new(chunks == 0) })
    }

    /// Reads in every chunk of `[off, off + len)` not read in yet; whether any was.
    fn read_in(&self, off: u64, len: u64) -> SysResult<bool> {
        if len == 0 || self.complete.load(Ordering::Acquire) {
            return Ok(false);
        }
        let mut read = false;
        let mut read_in = self.read_in.lock().unwrap_or_else(|e| e.into_inner());
        let first = (off / PAGE_CACHE_CHUNK) as usize;
        let last = ((off + len - 1) / PAGE_CACHE_CHUNK) as usize;
        for c in first..=last.min(read_in.len().saturating_sub(1)) {
            if read_in[c] {
                continue;
            }
            let at = c as u64 * PAGE_CACHE_CHUNK;
            let n = PAGE_CACHE_CHUNK.min(self.size.saturating_sub(at));
            self.frames.mf.fill_from(self.frames.range.start + at, n, self.source.as_fd(), at).map_err(|_| errno!(EIO))?;
            read_in[c] = true;
            read = true;
        }
        if read_in.iter().all(|&r| r) {
            self.complete.store(true, Ordering::Release);
        }
        Ok(read)
    }
}

impl FilePages for PageCache {
    fn end(&self) -> u64 {
        self.frames.range.len
    }

    fn frames(&self, off: u64, len: u64) -> SysResult<Vec<PageRun>> {
        let read_in = self.read_in(off, len)?;
        Ok(vec![PageRun { off, len, frames: self.frames.clone(), at: off, read_in }])
    }

    fn check_shared_write(&self) -> SysResult<()> {
        Err(errno!(ENODEV))
    }

    fn all_present(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    fn fault_span(&self, off: u64, len: u64, at: u64) -> (u64, u64) {
        if self.complete.load(Ordering::Acquire) {
            return (off, off + len);
        }
        // The chunk faulted in, and the chunks around it read in already.
        let read_in = self.read_in.lock().unwrap_or_else(|e| e.into_inner());
        let is_in = |c: u64| read_in.get(c as usize).copied().unwrap_or(false);
        let (mut lo, mut hi) = (at / PAGE_CACHE_CHUNK, at / PAGE_CACHE_CHUNK + 1);
        while lo * PAGE_CACHE_CHUNK > off && is_in(lo - 1) {
            lo -= 1;
        }
        while hi * PAGE_CACHE_CHUNK < off + len && is_in(hi) {
            hi += 1;
        }
        ((lo * PAGE_CACHE_CHUNK).max(off), (hi * PAGE_CACHE_CHUNK).min(off + len))
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

    /// New anonymous frames holding a copy of `len` bytes at file offset `src`.
    pub fn copy_of(mf: &Arc<MemoryFile>, src: u64, len: u64) -> Option<Arc<Frames>> {
        let kind = UsageKind::Anonymous;
        let range = mf.copy_to_new(src, len, kind)?;
        Some(Arc::new(Frames { range, kind, mf: mf.clone() }))
    }

    /// Whether these are a process's own memory, not a file's pages.
    pub fn is_anonymous(&self) -> bool {
        self.kind == UsageKind::Anonymous
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A host file of `len` bytes whose byte `i` is `i % 251`, and a cache of it.
    fn cached(len: usize) -> (Arc<MemoryFile>, PageCache) {
        let mut f = tempfile_in_tmp();
        f.write_all(&(0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>()).unwrap();
        let mf = Arc::new(MemoryFile::new().unwrap());
        let cache = PageCache::new(&mf, len as u64, Arc::new(OwnedFd::from(f))).unwrap();
        (mf, cache)
    }

    fn tempfile_in_tmp() -> std::fs::File {
        let path = std::env::temp_dir().join(format!("rvisor-page-cache-{}-{:?}", std::process::id(), std::thread::current().id()));
        let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    #[test]
    fn a_page_cache_reads_in_only_the_chunks_asked_for() {
        let len = 3 * PAGE_CACHE_CHUNK as usize + 100;
        let (mf, cache) = cached(len);
        assert_eq!(cache.end(), rvisor_abi::page_up(len as u64).unwrap());
        assert!(!cache.all_present());
        let at = PAGE_CACHE_CHUNK + 4096;
        assert!(cache.frames(at, 4096).unwrap()[0].read_in, "the first touch reads from the host");
        assert!(!cache.frames(at, 4096).unwrap()[0].read_in, "the second finds the bytes in memory");
        let mut buf = vec![0u8; 8192];
        cache.read(&mf, at, &mut buf).unwrap();
        assert!(buf.iter().enumerate().all(|(i, &b)| b == ((at as usize + i) % 251) as u8));
        assert_eq!(*cache.read_in.lock().unwrap(), vec![false, true, false, false]);
        // The last chunk holds the file's tail, then zeros to the page's end.
        let mut tail = vec![1u8; 4096];
        let last = rvisor_abi::page_down(len as u64 - 1);
        cache.read(&mf, last, &mut tail).unwrap();
        let in_file = len - last as usize;
        assert!(tail[..in_file].iter().enumerate().all(|(i, &b)| b == ((last as usize + i) % 251) as u8));
        assert!(tail[in_file..].iter().all(|&b| b == 0));
        cache.frames(0, 2 * PAGE_CACHE_CHUNK).unwrap();
        assert!(!cache.all_present(), "chunk 2 is still out");
        cache.frames(2 * PAGE_CACHE_CHUNK, 1).unwrap();
        assert!(cache.all_present());
    }

    #[test]
    fn a_fault_backs_its_chunk_and_the_read_in_chunks_around_it() {
        let c = PAGE_CACHE_CHUNK;
        let (_mf, cache) = cached(8 * c as usize);
        cache.frames(2 * c, 3 * c).unwrap();
        cache.frames(6 * c, c).unwrap();
        assert_eq!(cache.fault_span(0, 8 * c, 5 * c + 10), (2 * c, 6 * c + c), "chunk 5 joins the read-in 2 to 4 and 6");
        assert_eq!(cache.fault_span(0, 8 * c, 10), (0, c), "chunk 0 stands alone");
        assert_eq!(cache.fault_span(c + 100, 2 * c, 2 * c), (2 * c, 3 * c + 100), "clipped to the range asked about");
        cache.frames(0, 8 * c).unwrap();
        assert_eq!(cache.fault_span(0, 8 * c, 10), (0, 8 * c), "a complete file backs the whole range");
    }
}
