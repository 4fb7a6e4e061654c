//! One VM per app address space: its guest-physical memory is the memory file
//! (guest-physical address = file offset) plus a private region holding the page
//! tables and the upper-half pages of `guest.rs`; its vCPUs are the host threads that
//! run the app's threads.
//!
//! Memslots are added in chunks as mappings reach them: KVM keeps per-page metadata
//! for every slot, so one slot over the whole (sparse, 256 GiB) memory file would
//! cost hundreds of MiB of host kernel memory per VM.
//!
//! The Sentry writes the guest page tables directly. KVM shadows them, and on this
//! host sees a host write that adds a mapping but not one that removes or narrows it
//! (the shadow keeps the old translation). So a PTE the guest may have used (its
//! Accessed bit is set) that is cleared, narrowed or pointed elsewhere counts as a revocation of its frame, and the next
//! `sync` or switch drops the shadow translations of those frames: it drops the
//! memory file's host page-table entries for them (`MADV_DONTNEED` on the shared
//! mapping KVM's slots point at, which keeps the data), and KVM's MMU notifier zaps
//! every shadow entry that maps them, in every VM. Only when there are too many
//! ranges for that does it drop every shadow translation at once by moving a one-page
//! memslot (a zap-all: every vCPU then rebuilds its shadow tables page by page, which
//! cost a thread's exit, whose stack glibc gives back, ~100 µs here). A flush returns
//! only once one that began after every revocation counted so far has finished: a
//! caller that frees frames next must not find another thread's flush still under
//! way and take it for done.

use super::guest;
use crate::{Perms, PlatformError, Result};
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const PAGE: u64 = 4096;
/// Memory-file memslots: 64 MiB each, slot ids from FILE_SLOTS.
const FILE_CHUNK_SHIFT: u32 = 26;
const FILE_SLOTS: u32 = 1 << 12;
/// The private region: at this guest-physical address, reserved this big in the
/// Sentry (untouched pages cost nothing), slotted 2 MiB at a time from slot 1.
pub const PRIVATE_GPA: u64 = 1 << 39;
const PRIVATE_SIZE: u64 = 1 << 30;
const PRIVATE_CHUNK_SHIFT: u32 = 21;
/// The one-page slot moved between two guest-physical pages (nothing maps
/// either) to drop KVM's shadow translations: a move zaps them as a delete does,
/// in one ioctl where an add and a delete take two (~50 µs against ~90 here).
const FLUSH_SLOT: u32 = 0;
const FLUSH_GPA: [u64; 2] = [PRIVATE_GPA - PAGE, PRIVATE_GPA - 2 * PAGE];
/// Revoked frames remembered for a precise flush; past this many (a fork's
/// write-protection of a large process) a flush zaps everything instead.
const MAX_REVOKED_FRAMES: usize = 4096;
/// Ranges of revoked frames one flush drops one by one (a host call each) before a
/// zap-all is cheaper.
const MAX_ZAP_RANGES: usize = 64;

const PTE_P: u64 = 1;
const PTE_W: u64 = 1 << 1;
const PTE_U: u64 = 1 << 2;
const PTE_A: u64 = 1 << 5;
const PTE_D: u64 = 1 << 6;
/// Software bit: a PROT_NONE page that keeps its frame (not present to the CPU).
const PTE_NONE: u64 = 1 << 9;
const PTE_NX: u64 = 1 << 63;
const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;

/// A host mapping of memory the VM uses as guest-physical memory.
struct HostMapping {
    base: *mut u8,
    len: u64,
}

// SAFETY: the mapping lives as long as this value; the guest and the Sentry share it
// as they share the memory file, through atomic or byte-copy accesses.
unsafe impl Send for HostMapping {}
// SAFETY: as above.
unsafe impl Sync for HostMapping {}

impl HostMapping {
    fn new(len: u64, fd: Option<i32>) -> Result<HostMapping> {
        let (flags, fd) = match fd {
            Some(fd) => (libc::MAP_SHARED | libc::MAP_NORESERVE, fd),
            None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1),
        };
        // SAFETY: a fresh mapping at an address the kernel picks.
        let base = unsafe { libc::mmap(std::ptr::null_mut(), len as usize, libc::PROT_READ | libc::PROT_WRITE, flags, fd, 0) };
        if base == libc::MAP_FAILED {
            return Err(PlatformError::Host("mmap guest memory", std::io::Error::last_os_error()));
        }
        Ok(HostMapping { base: base as *mut u8, len })
    }

    fn addr(&self, off: u64) -> u64 {
        self.base as u64 + off
    }

    /// The 64-bit word at `off` (8-aligned, inside the mapping).
    fn word(&self, off: u64) -> &AtomicU64 {
        assert!(off.is_multiple_of(8) && off + 8 <= self.len);
        // SAFETY: aligned, inside the mapping, which outlives `self`'s borrow; the
        // guest's page walker only reads and sets bits atomically.
        unsafe { &*(self.base.add(off as usize) as *const AtomicU64) }
    }

    fn write(&self, off: u64, bytes: &[u8]) {
        assert!(off + bytes.len() as u64 <= self.len);
        // SAFETY: inside the mapping.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(off as usize), bytes.len()) };
    }

    fn read(&self, off: u64, out: &mut [u8]) {
        assert!(off + out.len() as u64 <= self.len);
        // SAFETY: inside the mapping; the bytes may be changed by the guest meanwhile,
        // which the caller treats as hostile input anyway.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(off as usize), out.as_mut_ptr(), out.len()) };
    }
}

impl Drop for HostMapping {
    fn drop(&mut self) {
        // SAFETY: unmapping what `new` mapped; no reference into it outlives self.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len as usize) };
    }
}

/// The memory file as the Sentry maps it for every VM.
pub struct MemoryFile {
    map: HostMapping,
}

impl MemoryFile {
    pub fn new(fd: i32) -> Result<MemoryFile> {
        let size = nix::sys::stat::fstat(fd).map_err(|e| PlatformError::Host("fstat memory file", e.into()))?.st_size as u64;
        if size == 0 || size > PRIVATE_GPA {
            return Err(PlatformError::Unsupported(format!("memory file of {size} bytes")));
        }
        Ok(MemoryFile { map: HostMapping::new(size, Some(fd))? })
    }
}

/// The page tables and the page allocator of the private region.
struct Tables {
    /// Pages of the private region handed out so far (never given back: a VM's
    /// tables live as long as it does).
    used: u64,
    /// Private chunks already in memslots.
    private_chunks: u64,
    /// Memory-file chunks already in memslots, a bit per chunk.
    file_chunks: Vec<u64>,
}

/// Fields drop in order: the vCPUs, then the VM, then the memory its slots map.
pub struct Vm {
    /// vCPU slots (upper-half areas) in use, and released vCPUs ready for reuse.
    pub vcpus: Mutex<VcpuSlots>,
    pub fd: VmFd,
    file: std::sync::Arc<MemoryFile>,
    private: HostMapping,
    tables: Mutex<Tables>,
    /// Revocations so far: translations KVM may still hold that were removed or
    /// narrowed (see the module doc).
    revoked: AtomicU64,
    /// The frames of the revocations no flush has taken yet (counted under this lock).
    pending: Mutex<RevokedFrames>,
    /// How many of them the last finished flush covers.
    flushed: AtomicU64,
    /// Serializes flushes; which of `FLUSH_GPA` the flush slot is at.
    flushing: Mutex<usize>,
    /// The page-table root (guest-physical).
    pub root: u64,
}

/// Frames (guest-physical page addresses) whose translations were revoked.
#[derive(Default)]
struct RevokedFrames {
    frames: Vec<u64>,
    /// More than `MAX_REVOKED_FRAMES`, or a frame outside the memory file: the next
    /// flush zaps everything.
    overflow: bool,
}

#[derive(Default)]
pub struct VcpuSlots {
    pub created: usize,
    pub free: Vec<super::Vcpu>,
}

impl Vm {
    pub fn new(fd: VmFd, file: std::sync::Arc<MemoryFile>) -> Result<Vm> {
        let private = HostMapping::new(PRIVATE_SIZE, None)?;
        let files = (file.map.len >> FILE_CHUNK_SHIFT) as usize + 1;
        let vm = Vm {
            fd,
            file,
            private,
            tables: Mutex::new(Tables { used: 0, private_chunks: 0, file_chunks: vec![0; files.div_ceil(64)] }),
            revoked: AtomicU64::new(0),
            pending: Mutex::default(),
            flushed: AtomicU64::new(0),
            flushing: Mutex::new(0),
            root: PRIVATE_GPA,
            vcpus: Mutex::default(),
        };
        vm.add_slot(FLUSH_SLOT, FLUSH_GPA[0], PAGE, vm.private.addr(0))?;
        let mut t = vm.lock();
        let root = vm.alloc_page(&mut t)?;
        debug_assert_eq!(root, PRIVATE_GPA);
        let idt = vm.alloc_page(&mut t)?;
        vm.private.write(idt - PRIVATE_GPA, &guest::idt_page());
        let entry = vm.alloc_page(&mut t)?;
        vm.private.write(entry - PRIVATE_GPA, &guest::entry_page());
        vm.set_pte(&mut t, guest::IDT, idt | PTE_P | PTE_NX)?;
        vm.set_pte(&mut t, guest::ENTRY, entry | PTE_P | PTE_U)?;
        drop(t);
        Ok(vm)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds memslot `slot` mapping `len` bytes at `gpa` to host memory at `host`.
    fn add_slot(&self, slot: u32, gpa: u64, len: u64, host: u64) -> Result<()> {
        let region = kvm_userspace_memory_region { slot, flags: 0, guest_phys_addr: gpa, memory_size: len, userspace_addr: host };
        // SAFETY: `host..host+len` is a mapping this VM (or the platform's memory
        // file, which it keeps alive) owns for the VM's whole life.
        unsafe { self.fd.set_user_memory_region(region) }.map_err(|e| super::kvm_err("KVM_SET_USER_MEMORY_REGION", e))
    }

    /// A zeroed page of the private region, slotted in: its guest-physical address.
    fn alloc_page(&self, t: &mut Tables) -> Result<u64> {
        let off = t.used * PAGE;
        if off >= PRIVATE_SIZE {
            return Err(PlatformError::Unsupported("guest page tables full".into()));
        }
        let chunk = off >> PRIVATE_CHUNK_SHIFT;
        if chunk >= t.private_chunks {
            let at = chunk << PRIVATE_CHUNK_SHIFT;
            self.add_slot(1 + chunk as u32, PRIVATE_GPA + at, 1 << PRIVATE_CHUNK_SHIFT, self.private.addr(at))?;
            t.private_chunks = chunk + 1;
        }
        t.used += 1;
        Ok(PRIVATE_GPA + off)
    }

    /// Makes sure memory-file bytes `off..off+len` are in memslots.
    fn slot_file(&self, t: &mut Tables, off: u64, len: u64) -> Result<()> {
        let end = off.checked_add(len).filter(|&e| e <= self.file.map.len).ok_or_else(|| PlatformError::Unsupported("mapping past the memory file".into()))?;
        for chunk in off >> FILE_CHUNK_SHIFT..=(end - 1) >> FILE_CHUNK_SHIFT {
            let (word, bit) = ((chunk / 64) as usize, 1u64 << (chunk % 64));
            if t.file_chunks[word] & bit == 0 {
                let at = chunk << FILE_CHUNK_SHIFT;
                let size = (1u64 << FILE_CHUNK_SHIFT).min(self.file.map.len - at);
                self.add_slot(FILE_SLOTS + chunk as u32, at, size, self.file.map.addr(at))?;
                t.file_chunks[word] |= bit;
            }
        }
        Ok(())
    }

    /// The private-region word holding the PTE for `va` at level `level` (3 = PML4)
    /// under table `table`, as an offset into the private region.
    fn entry_off(table: u64, va: u64, level: u32) -> u64 {
        table - PRIVATE_GPA + ((va >> (12 + 9 * level)) & 511) * 8
    }

    /// The leaf PTE word for `va`, making the tables on the way if `create`.
    fn leaf(&self, t: &mut Tables, va: u64, create: bool) -> Result<Option<&AtomicU64>> {
        let mut table = self.root;
        for level in (1..4).rev() {
            let e = self.private.word(Self::entry_off(table, va, level));
            let v = e.load(Ordering::Relaxed);
            table = if v & PTE_P != 0 {
                v & PTE_ADDR
            } else if create {
                let page = self.alloc_page(t)?;
                e.store(page | PTE_P | PTE_W | PTE_U, Ordering::Release);
                page
            } else {
                return Ok(None);
            };
        }
        Ok(Some(self.private.word(Self::entry_off(table, va, 0))))
    }

    fn set_pte(&self, t: &mut Tables, va: u64, pte: u64) -> Result<()> {
        if let Some(e) = self.leaf(t, va, true)? {
            self.replace(e, pte);
        }
        Ok(())
    }

    /// Stores `pte`, noting a translation KVM may hold that this takes away.
    fn replace(&self, e: &AtomicU64, pte: u64) {
        let old = e.swap(pte, Ordering::AcqRel);
        if old & (PTE_P | PTE_A) == PTE_P | PTE_A {
            let narrowed = pte & PTE_P == 0 || (old ^ pte) & PTE_ADDR != 0 || (old & PTE_W != 0 && pte & PTE_W == 0) || (old & PTE_NX == 0 && pte & PTE_NX != 0);
            if narrowed {
                let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                let frame = old & PTE_ADDR;
                if p.frames.len() >= MAX_REVOKED_FRAMES || frame >= self.file.map.len {
                    p.overflow = true;
                    p.frames = Vec::new();
                } else if !p.overflow {
                    p.frames.push(frame);
                }
                self.revoked.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    /// Applies `f` to every leaf PTE of app pages in `addr..addr+len` (clipped to the
    /// lower half: the walk indexes tables by address bits, and the upper half's
    /// PML4 slot would alias a lower address past it) whose tables exist,
    /// skipping absent subtrees whole (a huge PROT_NONE reservation costs nothing).
    fn for_each_leaf(&self, addr: u64, len: u64, f: &mut dyn FnMut(&AtomicU64)) {
        fn walk(vm: &Vm, table: u64, level: u32, start: u64, end: u64, f: &mut dyn FnMut(&AtomicU64)) {
            let span = 1u64 << (12 + 9 * level);
            let mut va = start;
            while va < end {
                let e = vm.private.word(Vm::entry_off(table, va, level));
                let next = (va & !(span - 1)).saturating_add(span).min(end);
                if level == 0 {
                    f(e);
                } else {
                    let v = e.load(Ordering::Acquire);
                    if v & PTE_P != 0 {
                        walk(vm, v & PTE_ADDR, level - 1, va, next, f);
                    }
                }
                va = next;
            }
        }
        let end = addr.saturating_add(len).min(guest::LOWER_HALF_END);
        walk(self, self.root, 3, addr, end, f);
    }

    /// A present PTE is written accessed (and dirty, if writable): KVM prefetches
    /// the shadow entries of up to 8 neighbours of a faulting page, but only of
    /// accessed PTEs, and maps a clean writable one read-only at first; a dynamic
    /// exec took ~90 fewer shadow faults (~5 µs each here) this way.
    fn pte_bits(perms: Perms) -> u64 {
        if perms == Perms::NONE {
            return PTE_NONE;
        }
        PTE_P | PTE_U | PTE_A | if perms.write { PTE_W | PTE_D } else { 0 } | if perms.exec { 0 } else { PTE_NX }
    }

    pub fn map(&self, addr: u64, len: u64, file_offset: u64, perms: Perms) -> Result<()> {
        let mut t = self.lock();
        self.slot_file(&mut t, file_offset, len)?;
        let bits = Self::pte_bits(perms);
        for page in 0..len / PAGE {
            self.set_pte(&mut t, addr + page * PAGE, (file_offset + page * PAGE) | bits)?;
        }
        Ok(())
    }

    pub fn unmap(&self, addr: u64, len: u64) {
        let _t = self.lock();
        self.for_each_leaf(addr, len, &mut |e| self.replace(e, 0));
    }

    pub fn protect(&self, addr: u64, len: u64, perms: Perms) {
        let _t = self.lock();
        let bits = Self::pte_bits(perms);
        self.for_each_leaf(addr, len, &mut |e| {
            let v = e.load(Ordering::Acquire);
            if v & (PTE_P | PTE_NONE) != 0 {
                self.replace(e, (v & PTE_ADDR) | bits);
            }
        });
    }

    /// Drops KVM's shadow translations if a mapping was taken away since the last
    /// finished flush, or waits for the flush under way that covers it.
    pub fn flush(&self) -> Result<()> {
        let want = self.revoked.load(Ordering::Acquire);
        if self.flushed.load(Ordering::Acquire) >= want {
            return Ok(());
        }
        let mut at = self.flushing.lock().unwrap_or_else(|e| e.into_inner());
        if self.flushed.load(Ordering::Acquire) >= want {
            return Ok(());
        }
        let (covers, revoked) = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            (self.revoked.load(Ordering::Acquire), std::mem::take(&mut *p))
        };
        match frame_ranges(revoked) {
            Some(ranges) => {
                for (off, len) in ranges {
                    // SAFETY: a range of the memory file's shared mapping, which the
                    // VM keeps alive; dropping a shared mapping's pages keeps their
                    // data in the file, so nothing that reads it later sees a change.
                    if unsafe { libc::madvise(self.file.map.addr(off) as *mut libc::c_void, len as usize, libc::MADV_DONTNEED) } != 0 {
                        return Err(PlatformError::Host("madvise guest memory", std::io::Error::last_os_error()));
                    }
                }
            }
            None => {
                self.add_slot(FLUSH_SLOT, FLUSH_GPA[1 - *at], PAGE, self.private.addr(0))?;
                *at = 1 - *at;
            }
        }
        self.flushed.store(covers, Ordering::Release);
        Ok(())
    }

    /// Sets up the upper-half pages of vCPU slot `i`.
    pub fn add_vcpu_area(&self, i: usize) -> Result<()> {
        let mut t = self.lock();
        let tables = self.alloc_page(&mut t)?;
        self.private.write(tables - PRIVATE_GPA, &guest::vcpu_tables_page(i));
        let stack = self.alloc_page(&mut t)?;
        self.set_pte(&mut t, guest::vcpu_tables(i), tables | PTE_P | PTE_W | PTE_NX)?;
        self.set_pte(&mut t, guest::vcpu_tables(i) + PAGE, stack | PTE_P | PTE_W | PTE_U | PTE_NX)
    }

    /// Reads app memory at `va`, if the app may read all of it.
    pub fn read_user(&self, va: u64, out: &mut [u8]) -> Option<()> {
        let mut t = self.lock();
        for (k, b) in out.iter_mut().enumerate() {
            let at = va.checked_add(k as u64).filter(|&a| a < guest::LOWER_HALF_END)?;
            let pte = self.leaf(&mut t, at, false).ok()??.load(Ordering::Acquire);
            if pte & (PTE_P | PTE_U) != PTE_P | PTE_U {
                return None;
            }
            self.file.map.read((pte & PTE_ADDR) + (at & (PAGE - 1)), std::slice::from_mut(b));
        }
        Some(())
    }

    /// Reads `out.len()` bytes at guest virtual `va` in the upper half (an exception
    /// stack), through the page tables. None if not mapped.
    pub fn read_kernel(&self, va: u64, out: &mut [u8]) -> Option<()> {
        let mut t = self.lock();
        let e = self.leaf(&mut t, va, false).ok()??;
        let pte = e.load(Ordering::Acquire);
        let off = va & (PAGE - 1);
        if pte & PTE_P == 0 || off + out.len() as u64 > PAGE {
            return None;
        }
        self.private.read((pte & PTE_ADDR) - PRIVATE_GPA + off, out);
        Some(())
    }
}

/// The revoked frames as sorted, merged memory-file ranges `(offset, length)`, or
/// None when a zap-all is due (too many frames, or too many ranges).
fn frame_ranges(revoked: RevokedFrames) -> Option<Vec<(u64, u64)>> {
    if revoked.overflow {
        return None;
    }
    let mut frames = revoked.frames;
    frames.sort_unstable();
    frames.dedup();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for f in frames {
        if let Some((_, len)) = ranges.last_mut().filter(|(off, len)| *off + *len == f) {
            *len += PAGE;
        } else if ranges.len() == MAX_ZAP_RANGES {
            return None;
        } else {
            ranges.push((f, PAGE));
        }
    }
    Some(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_frames_merge_into_ranges() {
        let r = RevokedFrames { frames: vec![3 * PAGE, PAGE, 2 * PAGE, PAGE, 9 * PAGE], overflow: false };
        assert_eq!(frame_ranges(r), Some(vec![(PAGE, 3 * PAGE), (9 * PAGE, PAGE)]));
        let scattered = RevokedFrames { frames: (0..=MAX_ZAP_RANGES as u64).map(|k| 2 * k * PAGE).collect(), overflow: false };
        assert_eq!(frame_ranges(scattered), None);
        assert_eq!(frame_ranges(RevokedFrames { frames: vec![], overflow: true }), None);
    }
}
