//! Memory management: one `MemoryManager` per address space.
//!
//! VMAs (what the app mapped) and PMAs (which memory-file frames back which
//! addresses) live in ordered maps. Memory is populated on demand by regions of up
//! to `FAULT_REGION` bytes around a fault, bounded by the VMA, and handed to the
//! platform as one mapping each; the host only backs pages the app touches.

mod access;
pub mod aio;
mod fault;
mod fork;
mod layout;
pub mod mempolicy;
pub mod ops;
pub mod oom;
pub mod userfault;
pub mod usertrap;
mod vma;

pub use access::{UserBuffers, UserRef};
pub use fault::{FaultOutcome, GrowthLimits};
pub use layout::Layout;
pub use vma::{page_span, CacheStat, FileChunks, FileMapping, FilePages, Frames, Mlock, NoPages, PageCache, PageRun, Vma, VmFile};

/// What a process maps as its vDSO: the frames every process shares (the
/// parameter page, then the image) and its time namespace's page.
#[derive(Clone, Copy)]
pub struct VdsoFrames<'a> {
    pub shared: &'a std::sync::Arc<Frames>,
    pub timens: &'a std::sync::Arc<Frames>,
}

use rvisor_memory::MemoryFile;
use rvisor_platform::{AddressSpace, Context};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use vma::Pma;

/// How much is populated around one fault.
const FAULT_REGION: u64 = 2 << 20;

/// One mapping, for /proc/[pid]/maps, statm and status.
#[derive(Clone)]
pub struct MapInfo {
    pub start: u64,
    pub end: u64,
    pub perms: rvisor_platform::Perms,
    pub shared: bool,
    pub name: Option<&'static str>,
    /// Bytes backed by memory-file frames (populated; an upper bound on what the
    /// host holds, since populating goes by regions).
    pub resident: u64,
    /// A file mapping's file and the offset in it where the mapping starts (smaps:
    /// file pages are clean, anonymous ones dirty).
    pub file: Option<(VmFile, u64)>,
    pub may_write: bool,
    pub growsdown: bool,
    /// A shared anonymous mapping's inode number (`Vma::shmem_ino`).
    pub shmem_ino: u64,
    pub mlock: Mlock,
}

pub struct MemoryManager {
    mf: Arc<MemoryFile>,
    pub aspace: Arc<dyn AddressSpace>,
    /// The app's highest usable address (exclusive).
    max_addr: u64,
    /// Lock order: taken alone (but for the leaf locks of file pages);
    /// never held across a platform switch or sync.
    state: Arc<Mutex<MmState>>,
    /// Native AIO contexts (io_setup), which belong to the address space.
    aio: aio::AioContexts,
    /// This address space to the files it maps.
    mapper: Arc<Mapper>,
    /// Syscall patching's writes of a site (`usertrap.rs`).
    patching: usertrap::PatchLock,
}

/// An address space as the files it maps know it, as much of Linux's reverse
/// map as they need: a file's pages hold it weakly, to tell the mappings that
/// store to them unnoticed (`FilePages::page_mkwrite`) and to take back the
/// pages past their end when the file shrinks.
pub struct Mapper {
    state: std::sync::Weak<Mutex<MmState>>,
    aspace: Arc<dyn AddressSpace>,
}

impl Mapper {
    fn new(state: &Arc<Mutex<MmState>>, aspace: &Arc<dyn AddressSpace>) -> Arc<Mapper> {
        Arc::new(Mapper { state: Arc::downgrade(state), aspace: aspace.clone() })
    }

    /// The file whose pages are at `pages` ends earlier now (`FilePages::end`):
    /// what this address space has of it past the end goes (the unmap is queued
    /// for its next switch, as Linux's unmap_mapping_range), so that accesses
    /// there fault, and SIGBUS. Private copies go too, as Linux's do.
    pub fn file_shrank(&self, pages: *const ()) {
        self.unmap_file(pages, |v, f, s| (f.end_address(s).clamp(s, v.end), v.end));
    }

    /// A hole was punched in the file whose pages are at `pages`, over its whole
    /// pages `[lo, hi)`: the shared mappings' pages there go (private copies
    /// stay), so that the next store faults and is noted, as Linux's
    /// truncate_pagecache_range; the file then forgets them dirty.
    pub fn file_punched(&self, pages: *const (), lo: u64, hi: u64) {
        self.unmap_file(pages, |v, f, s| {
            if !v.shared {
                return (s, s);
            }
            let at = |off: u64| s.saturating_add(off.saturating_sub(f.offset)).clamp(s, v.end);
            (at(lo), at(hi))
        });
    }

    /// Unmaps, in each VMA mapping the file whose pages are at `pages`, the
    /// address range `range` gives for it (from the VMA, its file mapping and start).
    fn unmap_file(&self, pages: *const (), range: impl Fn(&Vma, &FileMapping, u64) -> (u64, u64)) {
        let Some(state) = self.state.upgrade() else { return };
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        let ranges: Vec<(u64, u64)> = st
            .vmas
            .iter()
            .filter_map(|(&s, v)| {
                let f = v.file.as_ref().filter(|f| Arc::as_ptr(&f.pages) as *const () == pages)?;
                Some(range(v, f, s))
            })
            .filter(|(a, b)| a < b)
            .collect();
        for (a, b) in ranges {
            let taken = st.take_pmas(a, b);
            if !taken.is_empty() {
                self.aspace.unmap(a, b - a);
                st.changes += 1;
                // The stub may map them until its next sync.
                st.unsynced.extend(taken.into_iter().map(|(_, p)| p));
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct MmState {
    /// VMAs keyed by start address; they never overlap.
    vmas: BTreeMap<u64, Vma>,
    /// PMAs keyed by start address; each lies inside one VMA.
    pmas: BTreeMap<u64, Pma>,
    pub layout: Layout,
    /// PMAs a Sentry write replaced (copy-on-write breaks in `translate`, which
    /// has no context to sync): their frames stay referenced until the next sync,
    /// since the stub may still map them until then.
    unsynced: Vec<Pma>,
    /// Counts the platform changes queued (map, protect, unmap), so a fault can
    /// tell whether anything changed since it last synced and retried.
    pub(super) changes: u64,
    /// The last copy-on-write break's end and length (`break_cow`'s run).
    cow_run: (u64, u64),
    /// The last store fault's end and length on clean file pages (`mkwrite`'s run).
    mkwrite_run: (u64, u64),
    /// Where this process and those it forked from or forked wrote to memory shared
    /// since a fork (see `MemoryManager::fork`).
    fork_writes: Arc<fork::ForkWrites>,
    /// mlockall(MCL_FUTURE): how new mappings are locked (Linux's def_flags).
    def_mlock: Mlock,
    /// How far the stack may grow: the process's limits, which setrlimit,
    /// capset and exec update here (faults and Sentry accesses grow the stack).
    limits: GrowthLimits,
    /// Patched syscall sites.
    usertrap: usertrap::Usertrap,
}

impl MemoryManager {
    pub fn new(mf: Arc<MemoryFile>, aspace: Arc<dyn AddressSpace>, max_addr: u64) -> MemoryManager {
        let state = Arc::new(Mutex::new(MmState { limits: GrowthLimits::default(), ..MmState::default() }));
        let mapper = Mapper::new(&state, &aspace);
        MemoryManager { mf, aspace, max_addr, state, aio: Default::default(), mapper, patching: Default::default() }
    }

    fn lock(&self) -> MutexGuard<'_, MmState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn layout(&self) -> Layout {
        self.lock().layout
    }

    /// How many bytes of `[start, end)` mappings `which` picks map: over the
    /// whole space, all of them are what RLIMIT_AS limits (Linux's total_vm),
    /// the data ones (`Vma::is_data`) what RLIMIT_DATA limits (data_vm).
    pub fn mapped_bytes(&self, start: u64, end: u64, which: impl Fn(&Vma) -> bool) -> u64 {
        self.lock().mapped_bytes(start, end, which)
    }

    /// The limits on the stack's growth; RLIMIT_STACK also sizes (at exec)
    /// the initial stack and the room left below it.
    pub fn set_growth_limits(&self, limits: GrowthLimits) {
        self.lock().limits = limits;
    }

    pub fn stack_limit(&self) -> u64 {
        self.lock().limits.stack
    }

    pub fn set_layout(&self, layout: Layout) {
        self.lock().layout = layout;
    }

    pub fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.mf
    }

    /// Every mapping, in address order, as /proc/[pid]/maps shows them. The VMA
    /// holding the initial stack is named "[stack]".
    pub fn mappings(&self) -> Vec<MapInfo> {
        let st = self.lock();
        let stack = st.layout.stack_top.checked_sub(1);
        st.vmas
            .iter()
            .map(|(&start, v)| {
                let resident = st.pmas.range(start..v.end).map(|(&s, p)| p.end.min(v.end) - s).sum();
                let name = v.name.or_else(|| stack.filter(|&a| start <= a && a < v.end).map(|_| "[stack]"));
                MapInfo { start, end: v.end, perms: v.perms, shared: v.shared, name, resident, file: v.file.as_ref().map(|f| (f.file.clone(), f.offset)), may_write: v.may_write, growsdown: v.growsdown, shmem_ino: v.shmem_ino, mlock: v.mlock }
            })
            .collect()
    }

    /// Makes queued platform changes take effect, then drops released frames: a
    /// frame must not be reused while a stub can still reach it.
    fn sync_then_release(&self, ctx: &mut dyn Context, released: Vec<Pma>) -> rvisor_abi::SysResult<()> {
        let earlier = std::mem::take(&mut self.lock().unsynced);
        let r = ctx.sync(&self.aspace);
        drop(released);
        drop(earlier);
        r.map_err(|e| {
            tracing::error!("address space sync failed: {e}");
            rvisor_abi::errno!(ENOMEM)
        })
    }
}

impl MmState {
    /// The VMA containing `addr`, as (start, vma).
    fn vma_at(&self, addr: u64) -> Option<(u64, &Vma)> {
        let (&s, v) = self.vmas.range(..=addr).next_back()?;
        (addr < v.end).then_some((s, v))
    }

    /// EPERM if a mapping in `[start, end)` is sealed (mseal).
    fn refuse_sealed(&self, start: u64, end: u64) -> rvisor_abi::SysResult<()> {
        let first = self.vma_at(start).map_or(start, |(s, _)| s);
        if self.vmas.range(first..end).any(|(_, v)| v.sealed) { Err(rvisor_abi::errno!(EPERM)) } else { Ok(()) }
    }

    /// Whether `[start, end)` is entirely covered by VMAs.
    fn fully_mapped(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        while at < end {
            match self.vma_at(at) {
                Some((_, v)) => at = v.end,
                None => return false,
            }
        }
        true
    }

    /// Splits the VMA and PMA maps so that `addr` is a boundary in both.
    fn split_at(&mut self, addr: u64) {
        if let Some((&s, v)) = self.vmas.range(..addr).next_back() {
            if v.end > addr {
                let mut tail = v.clone();
                if let Some(f) = &mut tail.file {
                    f.offset += addr - s;
                }
                if let Some(head) = self.vmas.get_mut(&s) {
                    head.end = addr;
                }
                self.vmas.insert(addr, tail);
            }
        }
        self.split_pmas_at(addr);
    }

    /// Splits the PMA map (only) so that `addr` is a boundary in it: backing
    /// changes (copy-on-write, DONTNEED) leave the VMAs, which the app sees in
    /// /proc/PID/maps and counts against vm.max_map_count, whole.
    fn split_pmas_at(&mut self, addr: u64) {
        if let Some((&s, p)) = self.pmas.range(..addr).next_back() {
            if p.end > addr {
                let mut tail = p.clone();
                tail.offset += addr - s;
                if let Some(head) = self.pmas.get_mut(&s) {
                    head.end = addr;
                }
                self.pmas.insert(addr, tail);
            }
        }
    }

    /// Removes every PMA in `[start, end)` (splitting them, not the mappings, at
    /// the edges) and returns them.
    fn take_pmas(&mut self, start: u64, end: u64) -> Vec<(u64, Pma)> {
        self.split_pmas_at(start);
        self.split_pmas_at(end);
        let keys: Vec<u64> = self.pmas.range(start..end).map(|(&k, _)| k).collect();
        keys.into_iter().filter_map(|k| self.pmas.remove(&k).map(|p| (k, p))).collect()
    }

    /// Removes every VMA in `[start, end)`, splitting at the edges.
    fn take_vmas(&mut self, start: u64, end: u64) -> Vec<(u64, Vma)> {
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.vmas.range(start..end).map(|(&k, _)| k).collect();
        keys.into_iter().filter_map(|k| self.vmas.remove(&k).map(|v| (k, v))).collect()
    }

    /// Merges adjacent VMAs with identical properties around `[start, end)`, so
    /// that repeated brk or mmap growth does not fragment the map.
    fn merge_around(&mut self, start: u64, end: u64) {
        let mut at = match self.vmas.range(..start).next_back() {
            Some((&k, v)) if v.end == start => k,
            _ => start,
        };
        while let Some(v) = self.vmas.get(&at).cloned() {
            match self.vmas.get(&v.end) {
                Some(next)
                    if next.perms == v.perms
                        && next.shared == v.shared
                        && next.growsdown == v.growsdown
                        && next.name == v.name
                        && next.on_fork == v.on_fork
                        && next.userfault == v.userfault
                        && next.sealed == v.sealed
                        && next.policy == v.policy
                        && next.mlock == v.mlock
                        && next.shmem_ino == v.shmem_ino
                        && next.file.is_none()
                        && v.file.is_none() =>
                {
                    let next_end = next.end;
                    self.vmas.remove(&v.end);
                    if let Some(cur) = self.vmas.get_mut(&at) {
                        cur.end = next_end;
                    }
                }
                _ if v.end >= end => break,
                _ => at = v.end,
            }
        }
    }
}
