//! The memfd itself and the Sentry's mapping of it.

use crate::allocator::FrameAllocator;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// How much of the file the Sentry reserves address space for. Sparse: only
/// pages actually touched cost host memory.
pub const FILE_SIZE: u64 = 1 << 38;

/// The buffer `fill_from` copies through.
const FILL_CHUNK: usize = 1 << 20;

/// Freed ranges of this length (a copy-on-write copy's) are kept resident, up to
/// [`WARM_MAX`] of them, for the next copy (`copy_to_new`), which overwrites every
/// byte. A page the host must back afresh costs ~4 µs on this VM: a 64 KiB copy into
/// punched frames took ~60 µs, into resident ones ~5 µs, and a fork and exit frees
/// and copies a few such blocks each time.
const WARM_LEN: u64 = 64 << 10;
const WARM_MAX: usize = 16;

/// A page-aligned range of the memory file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRange {
    pub start: u64,
    pub len: u64,
}

impl FileRange {
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// What a range of the memory file is used for, for the usage breakdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageKind {
    Anonymous = 0,
    Tmpfs = 1,
    PageCache = 2,
    System = 3,
}

const KINDS: usize = 4;

pub struct MemoryFile {
    fd: OwnedFd,
    base: *mut u8,
    /// Guards the frame allocator; never held across anything but the fallocate.
    alloc: Mutex<FrameAllocator>,
    /// Freed `WARM_LEN` ranges still allocated and resident, with stale bytes: only
    /// `copy_to_new` hands them out. Lock: a leaf.
    warm: Mutex<Vec<u64>>,
    usage: [AtomicU64; KINDS],
    /// The most the host may back (resident bytes) after an allocation; 0: no bound.
    /// Past it an allocation fails, and the kernel's OOM killer makes room.
    limit: AtomicU64,
}

// SAFETY: `base` points at a MAP_SHARED mapping that lives as long as the
// MemoryFile; all access goes through bounds-checked methods that copy bytes.
unsafe impl Send for MemoryFile {}
// SAFETY: as above; concurrent copies to/from shared memory are what the
// application itself does, and the allocator is behind a Mutex.
unsafe impl Sync for MemoryFile {}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryFile {
    pub fn new() -> io::Result<MemoryFile> {
        // SAFETY: memfd_create with a static NUL-terminated name has no memory effects.
        let raw = unsafe { libc::memfd_create(c"rvisor-memory".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: plain syscall on our own descriptor.
        if unsafe { libc::ftruncate(raw, FILE_SIZE as i64) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh shared mapping of our memfd at an address the kernel picks.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FILE_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                raw,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(MemoryFile {
            fd,
            base: base as *mut u8,
            alloc: Mutex::new(FrameAllocator::new(FILE_SIZE)),
            warm: Mutex::new(Vec::new()),
            usage: Default::default(),
            limit: AtomicU64::new(0),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Allocates `len` bytes (page multiple) of zeroed frames.
    pub fn allocate(&self, len: u64, kind: UsageKind) -> Option<FileRange> {
        if !self.charge(len, kind) {
            return None;
        }
        match self.reserve(len) {
            Some(r) => Some(r),
            None => {
                self.usage[kind as usize].fetch_sub(len, Ordering::Relaxed);
                None
            }
        }
    }

    /// Reserves `len` bytes (page multiple) of zeroed frames without counting them
    /// in the usage or against the limit: a file's pages, which cost nothing until
    /// read in, and are counted then (`charge`) as they are.
    pub fn reserve(&self, len: u64) -> Option<FileRange> {
        let start = self.lock_alloc().alloc(len)?;
        Some(FileRange { start, len })
    }

    /// Counts `len` more bytes of a reserved range as used by `kind`, if the
    /// limit allows them; whether it did.
    pub fn charge(&self, len: u64, kind: UsageKind) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        // What is allocated bounds what is resident (freed ranges are punched out):
        // only near the limit is the host asked (fstat) what it backs.
        if limit != 0 {
            let allocated: u64 = self.usage.iter().map(|u| u.load(Ordering::Relaxed)).sum();
            if allocated.saturating_add(len) > limit && self.resident().saturating_add(len) > limit {
                // Kept frames are the first to go back to the host.
                if !self.drain_warm() || self.resident().saturating_add(len) > limit {
                    return false;
                }
            }
        }
        self.usage[kind as usize].fetch_add(len, Ordering::Relaxed);
        true
    }

    /// A new range holding a copy of `len` bytes at `src` (copy-on-write), counted
    /// as `kind`: a kept range where one fits, which the copy overwrites whole.
    pub fn copy_to_new(&self, src: u64, len: u64, kind: UsageKind) -> Option<FileRange> {
        let kept = if len == WARM_LEN { lock(&self.warm).pop() } else { None };
        let r = match kept {
            Some(start) => {
                self.usage[kind as usize].fetch_add(len, Ordering::Relaxed);
                FileRange { start, len }
            }
            None => self.allocate(len, kind)?,
        };
        self.copy(r.start, src, len as usize);
        Some(r)
    }

    /// Returns the kept ranges to the host; whether there were any.
    fn drain_warm(&self) -> bool {
        let kept = std::mem::take(&mut *lock(&self.warm));
        for &start in &kept {
            let r = FileRange { start, len: WARM_LEN };
            self.punch(r);
            self.lock_alloc().free(r.start, r.len);
        }
        !kept.is_empty()
    }

    /// Takes back a `charge` of `len` bytes.
    pub fn uncharge(&self, len: u64, kind: UsageKind) {
        self.usage[kind as usize].fetch_sub(len, Ordering::Relaxed);
    }

    /// Frees a range and returns its pages to the host at once, but for a few
    /// `WARM_LEN` ranges kept for the next copies.
    pub fn free(&self, r: FileRange, kind: UsageKind) {
        self.release(r, r.len, kind);
    }

    /// Frees a range of which `charged` bytes were counted as used (`reserve`,
    /// `charge`).
    pub fn release(&self, r: FileRange, charged: u64, kind: UsageKind) {
        self.usage[kind as usize].fetch_sub(charged, Ordering::Relaxed);
        if r.len == WARM_LEN && charged == r.len {
            let mut warm = lock(&self.warm);
            if warm.len() < WARM_MAX {
                warm.push(r.start);
                return;
            }
        }
        self.punch(r);
        self.lock_alloc().free(r.start, r.len);
    }

    /// Drops the contents of a range (it reads as zeros afterwards), keeping it allocated.
    pub fn punch(&self, r: FileRange) {
        // SAFETY: fallocate on our own memfd; a hole punch only affects file contents.
        let rc = unsafe {
            libc::fallocate(
                self.fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                r.start as i64,
                r.len as i64,
            )
        };
        if rc < 0 {
            tracing::warn!("punch hole {:?}: {}", r, io::Error::last_os_error());
        }
    }

    fn lock_alloc(&self) -> std::sync::MutexGuard<'_, FrameAllocator> {
        lock(&self.alloc)
    }

    /// The bound `set_limit` set.
    pub fn limit(&self) -> Option<u64> {
        Some(self.limit.load(Ordering::Relaxed)).filter(|&l| l != 0)
    }

    /// Bounds what the host backs (None: unbounded); see `limit`.
    pub fn set_limit(&self, bytes: Option<u64>) {
        self.limit.store(bytes.unwrap_or(0), Ordering::Relaxed);
    }

    /// Bytes allocated, per kind.
    pub fn usage(&self, kind: UsageKind) -> u64 {
        self.usage[kind as usize].load(Ordering::Relaxed)
    }

    /// Bytes the host actually backs (what `st_blocks` of the memfd says).
    pub fn resident(&self) -> u64 {
        nix::sys::stat::fstat(self.fd()).map(|s| s.st_blocks as u64 * 512).unwrap_or(0)
    }

    fn check(&self, off: u64, len: usize) -> *mut u8 {
        assert!(off.checked_add(len as u64).is_some_and(|e| e <= FILE_SIZE), "memory file access out of range");
        // SAFETY: in bounds of the mapping, checked above.
        unsafe { self.base.add(off as usize) }
    }

    /// Copies out of the file. Offsets come from the MM's own translation, never
    /// from the app directly.
    pub fn read(&self, off: u64, buf: &mut [u8]) {
        let p = self.check(off, buf.len());
        // SAFETY: `p..p+len` is inside our mapping; the app may write the same bytes
        // concurrently, which at worst yields a torn copy, as on Linux.
        unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) }
    }

    /// Fills `[off, off + len)` with the bytes of host file `src` from `src_off` on
    /// (zeros past its end), through `store`: a page cache filled through the
    /// mapping took 0.8 ms a megabyte, this way ~0.12 ms.
    /// The bytes go through a buffer each thread keeps: a fresh one per call cost
    /// its page faults again.
    pub fn fill_from(&self, off: u64, len: u64, src: BorrowedFd<'_>, src_off: u64) -> nix::Result<()> {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with_borrow_mut(|buf| {
            if buf.is_empty() {
                buf.resize(FILL_CHUNK, 0);
            }
            let mut done = 0u64;
            while done < len {
                let want = ((len - done) as usize).min(buf.len());
                let n = nix::sys::uio::pread(src, &mut buf[..want], (src_off + done) as i64)?;
                if n == 0 {
                    break;
                }
                self.store(off + done, &buf[..n])?;
                done += n as u64;
            }
            Ok(())
        })
    }

    /// Writes `buf` at `off` with pwrite rather than through the mapping, which is
    /// cheaper for frames not touched since they were allocated: they are holes, and
    /// the mapping would fault each page in.
    pub fn store(&self, off: u64, buf: &[u8]) -> nix::Result<()> {
        self.check(off, buf.len());
        let mut put = 0;
        while put < buf.len() {
            put += nix::sys::uio::pwrite(&self.fd, &buf[put..], (off + put as u64) as i64)?;
        }
        Ok(())
    }

    /// As [`MemoryFile::store`], from ranges of `src` (this file or another) in
    /// order: app memory into fresh frames, with no buffer between, and one host
    /// call for all the pieces of the app's buffer. The app may change the bytes
    /// meanwhile, as during a write on Linux; the host call copies what it finds.
    pub fn store_ranges(&self, off: u64, src: &MemoryFile, ranges: &[FileRange]) -> nix::Result<()> {
        let total: u64 = ranges.iter().map(|r| r.len).sum();
        self.check(off, total as usize);
        let mut slices = src.io_slices(ranges);
        let mut rest = &mut slices[..];
        let mut put = 0u64;
        while put < total {
            // At most IOV_MAX pieces a call.
            let n = nix::sys::uio::pwritev(&self.fd, &rest[..rest.len().min(1024)], (off + put) as i64)?;
            if n == 0 {
                return Err(nix::errno::Errno::EIO);
            }
            put += n as u64;
            std::io::IoSlice::advance_slices(&mut rest, n);
        }
        Ok(())
    }

    pub fn write(&self, off: u64, buf: &[u8]) {
        let p = self.check(off, buf.len());
        // SAFETY: as in `read`.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), p, buf.len()) }
    }

    pub fn zero(&self, off: u64, len: usize) {
        let p = self.check(off, len);
        // SAFETY: as in `read`.
        unsafe { std::ptr::write_bytes(p, 0, len) }
    }

    fn atomic_u32(&self, off: u64) -> &std::sync::atomic::AtomicU32 {
        assert!(off % 4 == 0, "unaligned atomic access");
        let p = self.check(off, 4);
        // SAFETY: in bounds and 4-byte aligned; AtomicU32 has u32's layout, and the
        // mapping lives as long as `self`.
        unsafe { &*(p as *const std::sync::atomic::AtomicU32) }
    }

    /// The aligned words at `off` as atomics (the vDSO parameter page, which the
    /// Sentry writes under a seqlock while apps read it).
    pub fn atomic_u64s(&self, off: u64, n: usize) -> &[std::sync::atomic::AtomicU64] {
        assert!(off % 8 == 0, "unaligned atomic access");
        let p = self.check(off, n * 8);
        // SAFETY: in bounds and 8-byte aligned; AtomicU64 has u64's layout, and the
        // mapping lives as long as `self`.
        unsafe { std::slice::from_raw_parts(p as *const std::sync::atomic::AtomicU64, n) }
    }

    /// An atomic load of the aligned u32 at `off` (futex words).
    pub fn load_u32(&self, off: u64) -> u32 {
        self.atomic_u32(off).load(Ordering::SeqCst)
    }

    /// Atomically replaces the u32 at `off` with `f(old)` and returns `old`.
    pub fn update_u32(&self, off: u64, f: impl Fn(u32) -> u32) -> u32 {
        let a = self.atomic_u32(off);
        let mut old = a.load(Ordering::SeqCst);
        loop {
            match a.compare_exchange(old, f(old), Ordering::SeqCst, Ordering::SeqCst) {
                Ok(v) => return v,
                Err(v) => old = v,
            }
        }
    }

    /// Copies `len` bytes between two ranges of the file (copy-on-write breaks).
    pub fn copy(&self, dst: u64, src: u64, len: usize) {
        self.copy_from(dst, self, src, len)
    }

    /// Copies `len` bytes from `src` (this file or another) at `src_off` to `dst`
    /// in this one: a file's page straight into app memory, with no buffer between.
    pub fn copy_from(&self, dst: u64, src: &MemoryFile, src_off: u64, len: usize) {
        let d = self.check(dst, len);
        let s = src.check(src_off, len);
        // SAFETY: both in bounds of mappings that live as long as the borrows;
        // `ptr::copy` allows the ranges to overlap. The app may touch the bytes
        // concurrently, which at worst tears the copy, as on Linux.
        unsafe { std::ptr::copy(s, d, len) }
    }

    /// Borrows file ranges as I/O slices for vectored host I/O (`readv`, `writev`,
    /// `preadv`...). The app may change the bytes concurrently, as it could on Linux
    /// during a `write`; the host call copies whatever it finds.
    pub fn io_slices(&self, ranges: &[FileRange]) -> Vec<std::io::IoSlice<'_>> {
        ranges
            .iter()
            .map(|r| {
                let p = self.check(r.start, r.len as usize);
                // SAFETY: in bounds of our mapping, which lives as long as `self`.
                std::io::IoSlice::new(unsafe { std::slice::from_raw_parts(p, r.len as usize) })
            })
            .collect()
    }

    /// Like `io_slices`, for host calls that fill app memory.
    pub fn io_slices_mut(&self, ranges: &[FileRange]) -> Vec<std::io::IoSliceMut<'_>> {
        ranges
            .iter()
            .map(|r| {
                let p = self.check(r.start, r.len as usize);
                // SAFETY: in bounds of our mapping; ranges come from the MM's translation
                // of one I/O request and do not overlap.
                std::io::IoSliceMut::new(unsafe { std::slice::from_raw_parts_mut(p, r.len as usize) })
            })
            .collect()
    }
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping created in `new`; no references outlive self.
        unsafe { libc::munmap(self.base as *mut libc::c_void, FILE_SIZE as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A limit bounds what the host backs, not what is allocated: untouched frames
    /// do not count, written ones do, and punched ones stop counting.
    #[test]
    fn a_limit_bounds_what_the_host_backs() {
        const MIB: u64 = 1 << 20;
        let mf = MemoryFile::new().unwrap();
        mf.set_limit(Some(8 * MIB));
        let untouched = mf.allocate(6 * MIB, UsageKind::Anonymous).unwrap();
        let more = mf.allocate(6 * MIB, UsageKind::Anonymous).expect("untouched frames are not backed");
        mf.zero(more.start, (6 * MIB) as usize);
        mf.store(more.start, &vec![1u8; (6 * MIB) as usize]).unwrap();
        assert!(mf.allocate(4 * MIB, UsageKind::Anonymous).is_none(), "6 MiB backed + 4 > 8");
        mf.free(more, UsageKind::Anonymous);
        assert!(mf.allocate(4 * MIB, UsageKind::Anonymous).is_some(), "freed frames are punched out");
        mf.set_limit(None);
        mf.free(untouched, UsageKind::Anonymous);
    }

    /// A freed copy-sized range is kept resident for the next copy, which overwrites
    /// it whole; plain allocations never get one (they must read as zeros); a limit
    /// gives the kept ones back before it refuses anything.
    #[test]
    fn copies_reuse_kept_frames() {
        let mf = MemoryFile::new().unwrap();
        let src = mf.allocate(WARM_LEN, UsageKind::Anonymous).unwrap();
        mf.store(src.start, &vec![7u8; WARM_LEN as usize]).unwrap();
        let first = mf.copy_to_new(src.start, WARM_LEN, UsageKind::Anonymous).unwrap();
        mf.store(first.start, &vec![9u8; WARM_LEN as usize]).unwrap();
        mf.free(first, UsageKind::Anonymous);
        assert_eq!(mf.usage(UsageKind::Anonymous), WARM_LEN, "a kept range is not in use");
        let plain = mf.allocate(WARM_LEN, UsageKind::Anonymous).unwrap();
        assert_ne!(plain.start, first.start, "a kept range holds stale bytes");
        let mut b = vec![1u8; WARM_LEN as usize];
        mf.read(plain.start, &mut b);
        assert!(b.iter().all(|&x| x == 0));
        let again = mf.copy_to_new(src.start, WARM_LEN, UsageKind::Anonymous).unwrap();
        assert_eq!(again.start, first.start, "the kept range is reused");
        mf.read(again.start, &mut b);
        assert!(b.iter().all(|&x| x == 7), "and overwritten whole");
        // More freed than are kept: the rest go back to the host.
        let many: Vec<FileRange> = (0..WARM_MAX + 4).map(|_| mf.copy_to_new(src.start, WARM_LEN, UsageKind::Anonymous).unwrap()).collect();
        for r in many {
            mf.free(r, UsageKind::Anonymous);
        }
        assert_eq!(lock(&mf.warm).len(), WARM_MAX);
        // Near a limit, kept frames go back first: here what the host backs but for
        // them leaves room for 8 blocks, with them for none.
        let untouched = mf.allocate(64 << 20, UsageKind::Anonymous).unwrap();
        mf.set_limit(Some(mf.resident() - WARM_MAX as u64 * WARM_LEN + 8 * WARM_LEN));
        assert!(mf.allocate(4 * WARM_LEN, UsageKind::Anonymous).is_some(), "the kept frames made room");
        assert!(lock(&mf.warm).is_empty());
        mf.set_limit(None);
        mf.free(untouched, UsageKind::Anonymous);
    }

    #[test]
    fn stores_and_fills_land_where_the_mapping_reads() {
        let mf = MemoryFile::new().unwrap();
        let r = mf.allocate(4 << 20, UsageKind::Anonymous).unwrap();
        mf.store(r.start + 10, b"stored").unwrap();
        let mut b = [0u8; 6];
        mf.read(r.start + 10, &mut b);
        assert_eq!(&b, b"stored");
        // A host file larger than one copy chunk, filled at an offset; past its end
        // the frames stay zero.
        let data: Vec<u8> = (0..(FILL_CHUNK + 12345)).map(|i| (i % 251) as u8).collect();
        let path = std::env::temp_dir().join(format!("rvisor-fill-{}", std::process::id()));
        std::fs::write(&path, &data).unwrap();
        let src = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        mf.fill_from(r.start + 8192, 3 << 20, std::os::fd::AsFd::as_fd(&src), 100).unwrap();
        let mut back = vec![0u8; data.len() - 100];
        mf.read(r.start + 8192, &mut back);
        assert_eq!(back, data[100..]);
        let mut after = [1u8; 64];
        mf.read(r.start + 8192 + back.len() as u64, &mut after);
        assert_eq!(after, [0u8; 64]);
    }

    /// Pieces of a buffer land in order, more of them than one host call takes.
    #[test]
    fn stores_from_ranges_keep_their_order() {
        let mf = MemoryFile::new().unwrap();
        let src = mf.allocate(16 << 20, UsageKind::Anonymous).unwrap();
        let dst = mf.allocate(1 << 20, UsageKind::Anonymous).unwrap();
        // 1500 pieces of 100 bytes, every other 4 KiB apart, backwards.
        let pieces: Vec<FileRange> = (0..1500u64).rev().map(|i| FileRange { start: src.start + i * 8192, len: 100 }).collect();
        for (n, r) in pieces.iter().enumerate() {
            mf.write(r.start, &[(n % 251) as u8; 100]);
        }
        mf.store_ranges(dst.start + 10, &mf, &pieces).unwrap();
        let mut back = vec![0u8; 150_000];
        mf.read(dst.start + 10, &mut back);
        assert!(back.chunks(100).enumerate().all(|(n, c)| c.iter().all(|&b| b == (n % 251) as u8)));
    }

    #[test]
    fn freed_frames_return_to_the_host() {
        let mf = MemoryFile::new().unwrap();
        let r = mf.allocate(1 << 20, UsageKind::Anonymous).unwrap();
        mf.write(r.start + 4096, b"hello");
        let mut b = [0u8; 5];
        mf.read(r.start + 4096, &mut b);
        assert_eq!(&b, b"hello");
        assert!(mf.resident() >= 4096);
        mf.free(r, UsageKind::Anonymous);
        assert_eq!(mf.resident(), 0);
        assert_eq!(mf.usage(UsageKind::Anonymous), 0);
        let r2 = mf.allocate(1 << 20, UsageKind::Anonymous).unwrap();
        mf.read(r2.start + 4096, &mut b);
        assert_eq!(b, [0; 5]);
    }
}
