//! VMAs and PMAs: what the app asked for, and what backs it.

use rvisor_memory::{FileRange, MemoryFile, UsageKind};
use rvisor_abi::{errno, error, SysResult, PAGE_SIZE};
use rvisor_platform::Perms;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// mlock: locked pages count against RLIMIT_MEMLOCK (the memory file is
    /// never swapped, so locking changes nothing else).
    pub mlock: Mlock,
}

impl Vma {
    /// A data mapping, as RLIMIT_DATA counts them (Linux's is_data_mapping):
    /// private and writable, and no stack.
    pub fn is_data(&self) -> bool {
        self.perms.write && !self.shared && !self.growsdown
    }

    /// The vDSO and its data page, which mlock leaves alone and mremap does not
    /// move (Linux's VM_SPECIAL).
    pub fn is_special(&self) -> bool {
        matches!(self.name, Some("[vdso]" | "[vvar]"))
    }
}

/// A mapping's mlock state: Linux's VM_LOCKED, with VM_LOCKONFAULT (its pages
/// are populated as touched, not at once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mlock {
    #[default]
    Unlocked,
    Locked,
    OnFault,
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

    /// Whether stores through shared mappings must be written back (a copy of a
    /// writable mount's host file): such mappings map the pages read-only until
    /// the first store, whose fault reports it (`page_mkwrite`), as Linux's
    /// writenotify, so that only what was stored to is written back.
    fn tracks_writes(&self) -> bool {
        false
    }

    /// An address space maps the file: it hears of the file shrinking
    /// (`Mapper::file_shrank`). Held weakly.
    fn add_mapper(&self, _mapper: &Arc<super::Mapper>) {}

    /// The file range `[off, off + len)` is about to be stored to: by an app
    /// mapping it writable from now on (`writer`, until `drop_writer`), or by the
    /// Sentry (None).
    fn page_mkwrite(&self, _off: u64, _len: u64, _writer: Option<&Arc<super::Mapper>>) {}

    /// An address space has mapped the pages read-only again and synced: its
    /// stores no longer escape notice.
    fn drop_writer(&self, _writer: &Arc<super::Mapper>) {}

    /// A System V shared memory segment's size (shmdt finds attachments by it).
    fn sysv_segment_size(&self) -> Option<u64> {
        None
    }

    /// cachestat(2) of the file's pages `first..=last` (page indexes): which of
    /// them are in memory, and which were stored to and not written back.
    fn cache_stat(&self, _first: u64, _last: u64) -> CacheStat {
        CacheStat::default()
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

/// What cachestat(2) tells of a range of a file's pages (Linux's `struct
/// cachestat`). Pages here are never written back in the background nor
/// evicted, so the last three stay 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, zerocopy::IntoBytes, zerocopy::Immutable)]
#[repr(C)]
pub struct CacheStat {
    pub nr_cache: u64,
    pub nr_dirty: u64,
    pub nr_writeback: u64,
    pub nr_evicted: u64,
    pub nr_recently_evicted: u64,
}

/// The bytes of the page range `first..=last` (page indexes) as a byte range
/// `[off, off + len)`, saturating at the top.
pub fn page_span(first: u64, last: u64) -> (u64, u64) {
    let off = first.saturating_mul(PAGE_SIZE);
    (off, last.saturating_add(1).saturating_mul(PAGE_SIZE).saturating_sub(off))
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

/// The pages of an empty file: none, so that any access through a mapping of it
/// is past the end of the file (SIGBUS), as on Linux, which maps empty files.
pub struct NoPages;

impl FilePages for NoPages {
    fn end(&self) -> u64 {
        0
    }

    fn frames(&self, _off: u64, _len: u64) -> SysResult<Vec<PageRun>> {
        Ok(Vec::new())
    }

    fn check_shared_write(&self) -> SysResult<()> {
        Ok(())
    }
}

/// A host file's bytes in memory-file frames, read in by `FILE_CHUNK` from a
/// host descriptor as they are first needed: what [`PageCache`] and a writable
/// mount's mapped pages (gofer's `HostPages`) are made of. The frames are a
/// reservation (`Frames::reserve`), so a file costs memory only for the chunks
/// read in: mapping a 4 GiB file costs nothing until it is touched.
pub struct FileChunks {
    pub frames: Arc<Frames>,
    /// The file offset of the frames' first byte (offsets here are from it).
    pub base: u64,
    /// The descriptor the bytes are read from.
    source: Arc<OwnedFd>,
    /// Which chunks are read in (a bit each), and how many are not. Leaf lock,
    /// held across the host read so that a chunk is read once, and across
    /// `each_read_in`'s work so that it sees no chunk half read.
    read_in: Mutex<ChunkBits>,
    /// Every chunk is read in.
    complete: AtomicBool,
}

struct ChunkBits {
    bits: Vec<u64>,
    missing: u64,
    chunks: u64,
}

impl ChunkBits {
    fn has(&self, c: u64) -> bool {
        c < self.chunks && self.bits[(c / 64) as usize] & (1 << (c % 64)) != 0
    }
}

/// How much of a file [`FileChunks`] reads in at a time, and the most of it a
/// fault maps beyond what is read in already.
const FILE_CHUNK: u64 = 256 << 10;

/// The least room a file that may grow while mapped gets past its size.
const GROWTH_MIN: u64 = 1 << 20;

/// The largest file a mapping may reserve frames for: a quarter of the memory
/// file, so that one file cannot leave no room for anything else (ENOMEM past it).
const FILE_PAGES_MAX: u64 = rvisor_memory::FILE_SIZE / 4;

impl FileChunks {
    /// Room for a file of `size` bytes that `source` reads, nothing read in yet.
    pub fn new(mf: &Arc<MemoryFile>, size: u64, source: Arc<OwnedFd>) -> SysResult<FileChunks> {
        Self::at(mf, 0, size, source)
    }

    /// As `new`, for a file that may grow while mapped: room for its bytes from
    /// `base` (page-aligned) on, of which there are `size` now, and for as many
    /// again (at least `GROWTH_MIN`), within `FILE_PAGES_MAX`. Only a range of
    /// the memory file is set aside: nothing is read in or counted for it, and
    /// what lies past the host file's end reads as zeros.
    pub fn growable(mf: &Arc<MemoryFile>, base: u64, size: u64, source: Arc<OwnedFd>) -> SysResult<FileChunks> {
        let room = size.saturating_mul(2).max(size.saturating_add(GROWTH_MIN)).min(FILE_PAGES_MAX.max(size));
        Self::at(mf, base, room, source)
    }

    /// Room for `size` bytes of the file from `base` on.
    fn at(mf: &Arc<MemoryFile>, base: u64, size: u64, source: Arc<OwnedFd>) -> SysResult<FileChunks> {
        let len = rvisor_abi::page_up(size).ok_or_else(|| errno!(ENOMEM))?;
        if len > FILE_PAGES_MAX {
            return error!(ENOMEM);
        }
        let frames = Frames::reserve(mf, len, UsageKind::PageCache).ok_or_else(|| errno!(ENOMEM))?;
        let chunks = len.div_ceil(FILE_CHUNK);
        let bits = ChunkBits { bits: vec![0; chunks.div_ceil(64) as usize], missing: chunks, chunks };
        Ok(FileChunks { frames, base, source, read_in: Mutex::new(bits), complete: AtomicBool::new(chunks == 0) })
    }

    /// Bytes of pages there is room for.
    pub fn end(&self) -> u64 {
        self.frames.range.len
    }

    pub fn complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ChunkBits> {
        self.read_in.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads in every chunk of `[off, off + len)` not read in yet; whether any
    /// was. ENOMEM when the sandbox's memory limit leaves no room for a chunk.
    pub fn read_in(&self, off: u64, len: u64) -> SysResult<bool> {
        if len == 0 || self.complete() {
            return Ok(false);
        }
        let mut read = false;
        let mut bits = self.lock();
        let last = ((off + len - 1) / FILE_CHUNK).min(bits.chunks.saturating_sub(1));
        for c in off / FILE_CHUNK..=last {
            if bits.has(c) {
                continue;
            }
            let at = c * FILE_CHUNK;
            let n = FILE_CHUNK.min(self.end() - at);
            if !self.frames.charge(n) {
                return error!(ENOMEM);
            }
            // Bytes past the host file's end stay zeros: the frames are fresh.
            if self.frames.mf.fill_from(self.frames.range.start + at, n, self.source.as_fd(), self.base + at).is_err() {
                self.frames.uncharge(n);
                return error!(EIO);
            }
            bits.bits[(c / 64) as usize] |= 1 << (c % 64);
            bits.missing -= 1;
            read = true;
        }
        if bits.missing == 0 {
            self.complete.store(true, Ordering::Release);
        }
        Ok(read)
    }

    /// The part of `[off, off + len)` a fault at `at` in it should back: its
    /// chunk and the chunks around it read in already.
    pub fn fault_span(&self, off: u64, len: u64, at: u64) -> (u64, u64) {
        if self.complete() {
            return (off, off + len);
        }
        let bits = self.lock();
        let (mut lo, mut hi) = (at / FILE_CHUNK, at / FILE_CHUNK + 1);
        while lo * FILE_CHUNK > off && bits.has(lo - 1) {
            lo -= 1;
        }
        while hi * FILE_CHUNK < off + len && bits.has(hi) {
            hi += 1;
        }
        ((lo * FILE_CHUNK).max(off), (hi * FILE_CHUNK).min(off + len))
    }

    /// How many bytes of `[off, off + len)` are read in.
    pub fn bytes_read_in(&self, off: u64, len: u64) -> u64 {
        let mut n = 0;
        let _ = self.each_read_in(off, len, |a, b| {
            n += b - a;
            Ok(())
        });
        n
    }

    /// Calls `f` on each run `[a, b)` of read-in bytes within `[off, off + len)`,
    /// with no chunk read in meanwhile; stops at its first error.
    pub fn each_read_in(&self, off: u64, len: u64, mut f: impl FnMut(u64, u64) -> SysResult<()>) -> SysResult<()> {
        let end = off.saturating_add(len).min(self.end());
        if off >= end {
            return Ok(());
        }
        let bits = self.lock();
        let mut c = off / FILE_CHUNK;
        while c * FILE_CHUNK < end {
            if !bits.has(c) {
                c += 1;
                continue;
            }
            let first = c;
            while c * FILE_CHUNK < end && bits.has(c) {
                c += 1;
            }
            f((first * FILE_CHUNK).max(off), (c * FILE_CHUNK).min(end))?;
        }
        Ok(())
    }
}

/// A read-only host file's contents in frames (a [`FileChunks`]); private and
/// read-only shared mappings of the file share the frames. Read whole at the
/// first mmap, files cost their full copy per sandbox: rustc read 510 MB for a
/// hello world (librustc_driver alone is 153 MB), 189 MB in chunks.
pub struct PageCache {
    chunks: FileChunks,
}

impl PageCache {
    /// A cache of the file of `size` bytes that `source` reads, with nothing read
    /// in yet.
    pub fn new(mf: &Arc<MemoryFile>, size: u64, source: Arc<OwnedFd>) -> SysResult<PageCache> {
        Ok(PageCache { chunks: FileChunks::new(mf, size, source)? })
    }
}

impl FilePages for PageCache {
    fn end(&self) -> u64 {
        self.chunks.end()
    }

    fn frames(&self, off: u64, len: u64) -> SysResult<Vec<PageRun>> {
        let read_in = self.chunks.read_in(off, len)?;
        Ok(vec![PageRun { off, len, frames: self.chunks.frames.clone(), at: off, read_in }])
    }

    fn check_shared_write(&self) -> SysResult<()> {
        Err(errno!(ENODEV))
    }

    fn cache_stat(&self, first: u64, last: u64) -> CacheStat {
        let (off, len) = page_span(first, last);
        CacheStat { nr_cache: self.chunks.bytes_read_in(off, len) / PAGE_SIZE, ..CacheStat::default() }
    }

    fn all_present(&self) -> bool {
        self.chunks.complete()
    }

    fn fault_span(&self, off: u64, len: u64, at: u64) -> (u64, u64) {
        self.chunks.fault_span(off, len, at)
    }
}

/// A run of memory-file frames. Freed, and given back to the host, when the last
/// PMA referring to it goes away.
pub struct Frames {
    pub range: FileRange,
    kind: UsageKind,
    mf: Arc<MemoryFile>,
    /// How much of the range is counted in the memory file's usage: all of it,
    /// but for a reservation (`reserve`), which counts what is `charge`d.
    charged: AtomicU64,
}

impl Frames {
    pub fn allocate(mf: &Arc<MemoryFile>, len: u64) -> Option<Arc<Frames>> {
        Self::allocate_as(mf, len, UsageKind::Anonymous)
    }

    /// New anonymous frames holding a copy of `len` bytes at file offset `src`.
    pub fn copy_of(mf: &Arc<MemoryFile>, src: u64, len: u64) -> Option<Arc<Frames>> {
        let kind = UsageKind::Anonymous;
        let range = mf.copy_to_new(src, len, kind)?;
        Some(Arc::new(Frames { range, kind, mf: mf.clone(), charged: AtomicU64::new(len) }))
    }

    /// Whether these are a process's own memory, not a file's pages.
    pub fn is_anonymous(&self) -> bool {
        self.kind == UsageKind::Anonymous
    }

    /// Frames counted in the memory file's usage as `kind`.
    pub fn allocate_as(mf: &Arc<MemoryFile>, len: u64, kind: UsageKind) -> Option<Arc<Frames>> {
        let range = mf.allocate(len, kind)?;
        Some(Arc::new(Frames { range, kind, mf: mf.clone(), charged: AtomicU64::new(len) }))
    }

    /// Frames for bytes brought in by parts (a file's), each part counted in the
    /// usage and checked against the limit when brought in (`charge`).
    pub fn reserve(mf: &Arc<MemoryFile>, len: u64, kind: UsageKind) -> Option<Arc<Frames>> {
        let range = mf.reserve(len)?;
        Some(Arc::new(Frames { range, kind, mf: mf.clone(), charged: AtomicU64::new(0) }))
    }

    /// Counts `len` more bytes of a reservation as used; false past the limit.
    pub fn charge(&self, len: u64) -> bool {
        let ok = self.mf.charge(len, self.kind);
        if ok {
            self.charged.fetch_add(len, Ordering::Relaxed);
        }
        ok
    }

    /// Takes back a `charge` whose bytes could not be brought in.
    pub fn uncharge(&self, len: u64) {
        self.charged.fetch_sub(len, Ordering::Relaxed);
        self.mf.uncharge(len, self.kind);
    }

    /// Lets go of many frames at once (a tmpfs file's pages): those nothing
    /// else holds that lie next to each other in the memory file go back to the
    /// host together, one hole punch (and one host TLB flush) for the lot
    /// rather than one per page.
    pub fn release_all(frames: impl IntoIterator<Item = Arc<Frames>>) {
        let mut run: Option<Frames> = None;
        for f in frames {
            // Others still hold it: it goes when they let go.
            let Ok(mut f) = Arc::try_unwrap(f) else { continue };
            match &mut run {
                Some(r) if r.kind == f.kind && Arc::ptr_eq(&r.mf, &f.mf) && r.range.end() == f.range.start => {
                    r.range.len += f.range.len;
                    *r.charged.get_mut() += *f.charged.get_mut();
                    // Its frames are the run's now: its drop frees nothing.
                    f.range.len = 0;
                }
                _ => run = Some(f),
            }
        }
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        // Empty: merged into a neighbour's release (`release_all`).
        if self.range.len != 0 {
            self.mf.release(self.range, *self.charged.get_mut(), self.kind);
        }
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
    /// A shared mapping of a file whose stores are written back
    /// (`FilePages::tracks_writes`), not stored to since it was last written
    /// back: mapped read-only, so that the first store faults and is noted.
    pub clean: bool,
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
        if self.cow || self.clean { Perms { write: false, ..perms } } else { perms }
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
        let len = 3 * FILE_CHUNK as usize + 100;
        let (mf, cache) = cached(len);
        assert_eq!(cache.end(), rvisor_abi::page_up(len as u64).unwrap());
        assert!(!cache.all_present());
        let at = FILE_CHUNK + 4096;
        assert!(cache.frames(at, 4096).unwrap()[0].read_in, "the first touch reads from the host");
        assert!(!cache.frames(at, 4096).unwrap()[0].read_in, "the second finds the bytes in memory");
        let mut buf = vec![0u8; 8192];
        cache.read(&mf, at, &mut buf).unwrap();
        assert!(buf.iter().enumerate().all(|(i, &b)| b == ((at as usize + i) % 251) as u8));
        assert_eq!((0..4).map(|c| cache.chunks.lock().has(c)).collect::<Vec<_>>(), vec![false, true, false, false]);
        // The last chunk holds the file's tail, then zeros to the page's end.
        let mut tail = vec![1u8; 4096];
        let last = rvisor_abi::page_down(len as u64 - 1);
        cache.read(&mf, last, &mut tail).unwrap();
        let in_file = len - last as usize;
        assert!(tail[..in_file].iter().enumerate().all(|(i, &b)| b == ((last as usize + i) % 251) as u8));
        assert!(tail[in_file..].iter().all(|&b| b == 0));
        cache.frames(0, 2 * FILE_CHUNK).unwrap();
        assert!(!cache.all_present(), "chunk 2 is still out");
        cache.frames(2 * FILE_CHUNK, 1).unwrap();
        assert!(cache.all_present());
    }

    #[test]
    fn a_fault_backs_its_chunk_and_the_read_in_chunks_around_it() {
        let c = FILE_CHUNK;
        let (_mf, cache) = cached(8 * c as usize);
        cache.frames(2 * c, 3 * c).unwrap();
        cache.frames(6 * c, c).unwrap();
        assert_eq!(cache.fault_span(0, 8 * c, 5 * c + 10), (2 * c, 6 * c + c), "chunk 5 joins the read-in 2 to 4 and 6");
        assert_eq!(cache.fault_span(0, 8 * c, 10), (0, c), "chunk 0 stands alone");
        assert_eq!(cache.fault_span(c + 100, 2 * c, 2 * c), (2 * c, 3 * c + 100), "clipped to the range asked about");
        cache.frames(0, 8 * c).unwrap();
        assert_eq!(cache.fault_span(0, 8 * c, 10), (0, 8 * c), "a complete file backs the whole range");
    }

    #[test]
    fn file_chunks_count_and_list_only_what_is_read_in() {
        let c = FILE_CHUNK;
        let (mf, cache) = cached(8 * c as usize + 100);
        assert_eq!(mf.usage(UsageKind::PageCache), 0, "a reservation counts nothing");
        cache.frames(c + 10, 1).unwrap();
        cache.frames(3 * c, c + 1).unwrap();
        cache.frames(8 * c, 1).unwrap();
        assert_eq!(mf.usage(UsageKind::PageCache), 3 * c + 4096, "the chunks read in, the last one a page");
        let mut runs = Vec::new();
        cache.chunks.each_read_in(c / 2, 8 * c, |a, b| Ok(runs.push((a, b)))).unwrap();
        assert_eq!(runs, vec![(c, 2 * c), (3 * c, 5 * c), (8 * c, 8 * c + 4096)], "clipped to the range asked about and the pages");
        drop(cache);
        assert_eq!(mf.usage(UsageKind::PageCache), 0);
    }
}
