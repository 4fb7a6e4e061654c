//! fork's copy of an address space: same VMAs; shared mappings keep sharing their
//! frames, private ones become copy-on-write in both parent and child. AIO
//! contexts are not copied: the child has none (its ring is only memory).

use super::fault::COW_REGION;
use super::vma::{Frames, Pma};
use super::{MemoryManager, MmState};
use rvisor_abi::{errno, SysResult, UserAddr};
use rvisor_platform::{AddressSpace, Perms};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

impl MemoryManager {
    /// The child's copy. The parent's writable private pages are write-protected,
    /// and `sync` makes that reach the host before the state is unlocked: the
    /// parent's other threads, still running, may write their pages until then
    /// (the child sees those writes, as made before the fork), but cannot map new
    /// ones, whose contents the child would lack while it saw what points to them
    /// (glibc's thread-stack list, in a child that then spun walking it).
    /// Shared anonymous mappings are backed in full first, so that both processes
    /// later fault in the same frames (shared file mappings fault in the file's).
    /// The child's address space maps what the parent's had mapped (queued, for its
    /// first switch): a forked shell faulted on each page it read before its exec.
    /// The copy-on-write blocks holding the `hot` addresses (the forking thread's stack
    /// and thread block, which both processes write at once) are copied for the child
    /// now and stay the parent's, writable: one copy either way, and two faults fewer
    /// (a fork and exit took four or five). So are the blocks this family of
    /// processes wrote after its last forks (`ForkWrites`: glibc's own state, which
    /// fork's wrappers write in both processes, a server's per-request data): a
    /// process that forks again and again stops taking copy-on-write faults. Only
    /// for a caller whose memory no other thread can write meanwhile (`hot` is
    /// empty otherwise), or the child's copy would not be a snapshot.
    pub fn fork(&self, aspace: Arc<dyn AddressSpace>, hot: &[u64], sync: impl FnOnce() -> SysResult<()>) -> SysResult<MemoryManager> {
        let mut st = self.lock();
        let shared: Vec<(u64, u64)> = st.vmas.iter().filter(|(_, v)| v.shared && v.file.is_none() && !v.on_fork.skip).map(|(&s, v)| (s, v.end)).collect();
        for (s, e) in shared {
            self.fill(&mut st, s, e)?;
        }
        let mut copies: BTreeMap<u64, Pma> = BTreeMap::new();
        let learned = if hot.is_empty() { Vec::new() } else { st.fork_writes.pages() };
        for &addr in hot.iter().chain(&learned) {
            if copies.range(..=addr).next_back().is_some_and(|(_, c)| c.end > addr) {
                continue;
            }
            if let Some((start, copy)) = self.copy_for_child(&mut st, addr) {
                copies.insert(start, copy);
            }
        }
        let mut pmas = BTreeMap::new();
        let mut changed = false;
        let starts: Vec<u64> = st.pmas.keys().copied().collect();
        for s in starts {
            let Some((shared, on_fork, tracked)) = st.vma_at(s).map(|(_, v)| (v.shared, v.on_fork, v.shared && v.file.as_ref().is_some_and(|f| f.pages.tracks_writes()))) else { continue };
            // The child has no pages here: a hole (DONTFORK) or fresh zeros (WIPEONFORK).
            if on_fork.skip || on_fork.wipe {
                continue;
            }
            if let Some(copy) = copies.remove(&s) {
                aspace.map(s, copy.end - s, copy.file_offset(s, s), copy.mapped);
                pmas.insert(s, copy);
                continue;
            }
            let Some(p) = st.pmas.get_mut(&s) else { continue };
            if !shared {
                p.cow = true;
                if p.mapped.write {
                    let ro = Perms { write: false, ..p.mapped };
                    self.aspace.protect(s, p.end - s, ro);
                    changed = true;
                    p.mapped = ro;
                }
            }
            // The child starts with what the parent has mapped, as Linux copies page
            // tables: read-only where it is copy-on-write (as the parent now has it),
            // so that it does not fault on every page it reads; read-only too where
            // its stores to a file must be noticed (it is no writer of it yet).
            let mut copy = p.clone();
            if tracked {
                copy.clean = true;
                copy.mapped = copy.effective(copy.mapped);
            }
            if copy.mapped != Perms::NONE {
                aspace.map(s, copy.end - s, copy.file_offset(s, s), copy.mapped);
            }
            pmas.insert(s, copy);
        }
        if changed {
            st.changes += 1;
            sync()?;
        }
        // Without UFFD_FEATURE_EVENT_FORK (not offered) the child's memory is
        // its own to fault in. Locks are not inherited (the mappings stay split).
        let vmas = st.vmas.iter().filter(|(_, v)| !v.on_fork.skip).map(|(&s, v)| (s, super::Vma { userfault: None, mlock: super::vma::Mlock::Unlocked, ..v.clone() })).collect();
        let child = MmState { vmas, pmas, layout: st.layout, fork_writes: st.fork_writes.clone(), limits: st.limits, usertrap: st.usertrap.for_fork(), ..MmState::default() };
        let state = Arc::new(Mutex::new(child));
        let mapper = super::Mapper::new(&state, &aspace);
        for f in st.vmas.values().filter_map(|v| v.file.as_ref().filter(|_| !v.on_fork.skip)) {
            f.pages.add_mapper(&mapper);
        }
        Ok(MemoryManager { mf: self.mf.clone(), aspace, max_addr: self.max_addr, state, aio: Default::default(), mapper, patching: Default::default() })
    }

    /// The child's own copy of the copy-on-write block around `addr` (as far as the
    /// PMA holding `addr` covers it), as a PMA to put at the returned start (the
    /// parent's PMAs are split there), when the parent has it privately in a writable
    /// mapping and shares its frames with nothing else (still marked copy-on-write from
    /// an earlier fork whose other side is gone is as good). None otherwise, or
    /// without memory: then the block is copied on write as any other.
    fn copy_for_child(&self, st: &mut MmState, addr: u64) -> Option<(u64, Pma)> {
        let block = addr & !(COW_REGION - 1);
        let (&ps, p) = st.pmas.range(..=addr).next_back().filter(|(_, p)| p.end > addr)?;
        let (_, v) = st.vma_at(addr)?;
        let perms = v.perms;
        if v.shared || v.on_fork.skip || v.on_fork.wipe || !perms.write || (p.cow && Arc::strong_count(&p.frames) > 1) {
            return None;
        }
        let (lo, hi) = (block.max(ps), (block + COW_REGION).min(p.end));
        let src = p.file_offset(ps, lo);
        let frames = Frames::copy_of(&self.mf, src, hi - lo)?;
        st.split_pmas_at(lo);
        st.split_pmas_at(hi);
        Some((lo, Pma { end: hi, frames, offset: 0, mapped: perms, cow: false, clean: false }))
    }

    /// The memory-file offset of the aligned futex word at `addr`.
    pub fn futex_word(&self, addr: UserAddr) -> SysResult<u64> {
        if addr.get() % 4 != 0 {
            return Err(errno!(EINVAL));
        }
        let ranges = self.translate_all(addr, 4, super::access::Access::Read)?;
        ranges.first().map(|r| r.start).ok_or_else(|| errno!(EFAULT))
    }

    /// The memory-file offset of the aligned futex word at `addr`, which the Sentry
    /// is about to change (PI futexes, robust lists): a copy-on-write page is broken
    /// first, and a word the app may not write is EFAULT, as Linux's cmpxchg faults.
    pub fn futex_word_for_write(&self, addr: UserAddr) -> SysResult<u64> {
        if addr.get() % 4 != 0 {
            return Err(errno!(EINVAL));
        }
        let ranges = self.translate_all(addr, 4, super::access::Access::Write)?;
        ranges.first().map(|r| r.start).ok_or_else(|| errno!(EFAULT))
    }

    /// Whether `addr` lies in a MAP_SHARED mapping (futexes there are keyed by frame).
    pub fn is_shared_at(&self, addr: UserAddr) -> bool {
        self.lock().vma_at(addr.get()).is_some_and(|(_, v)| v.shared)
    }
}

/// The pages of the latest copy-on-write breaks of anonymous memory (memory a fork
/// shared), most recent first, shared by a process and every process forked from
/// it until an exec: which memory each side writes after a fork is much the same
/// from one fork to the next. Leaf lock.
#[derive(Default)]
pub(super) struct ForkWrites(Mutex<Vec<u64>>);

/// How many pages `ForkWrites` keeps: each costs a fork one block's copy
/// (`COW_REGION`), ~5 µs, against a fault of 30 µs or more.
const FORK_WRITES_MAX: usize = 6;

impl ForkWrites {
    pub(super) fn note(&self, page: u64) {
        let mut pages = self.0.lock().unwrap_or_else(|e| e.into_inner());
        pages.retain(|&p| p != page);
        pages.insert(0, page);
        pages.truncate(FORK_WRITES_MAX);
    }

    fn pages(&self) -> Vec<u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
