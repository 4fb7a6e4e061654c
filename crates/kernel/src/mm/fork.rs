//! fork's copy of an address space: same VMAs; shared mappings keep sharing their
//! frames, private ones become copy-on-write in both parent and child. AIO
//! contexts are not copied: the child has none (its ring is only memory).

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
    pub fn fork(&self, aspace: Arc<dyn AddressSpace>, sync: impl FnOnce() -> SysResult<()>) -> SysResult<MemoryManager> {
        let mut st = self.lock();
        let shared: Vec<(u64, u64)> = st.vmas.iter().filter(|(_, v)| v.shared && v.file.is_none() && !v.on_fork.skip).map(|(&s, v)| (s, v.end)).collect();
        for (s, e) in shared {
            self.fill(&mut st, s, e)?;
        }
        let mut pmas = BTreeMap::new();
        let mut changed = false;
        let starts: Vec<u64> = st.pmas.keys().copied().collect();
        for s in starts {
            let Some((shared, on_fork)) = st.vma_at(s).map(|(_, v)| (v.shared, v.on_fork)) else { continue };
            // The child has no pages here: a hole (DONTFORK) or fresh zeros (WIPEONFORK).
            if on_fork.skip || on_fork.wipe {
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
            // so that it does not fault on every page it reads.
            if p.mapped != Perms::NONE {
                aspace.map(s, p.end - s, p.file_offset(s, s), p.mapped);
            }
            pmas.insert(s, p.clone());
        }
        if changed {
            st.changes += 1;
            sync()?;
        }
        // Without UFFD_FEATURE_EVENT_FORK (not offered) the child's memory is
        // its own to fault in.
        let vmas = st.vmas.iter().filter(|(_, v)| !v.on_fork.skip).map(|(&s, v)| (s, super::Vma { userfault: None, ..v.clone() })).collect();
        let child = MmState { vmas, pmas, layout: st.layout, unsynced: Vec::new(), changes: 0 };
        Ok(MemoryManager { mf: self.mf.clone(), aspace, max_addr: self.max_addr, state: Mutex::new(child), aio: Default::default() })
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
