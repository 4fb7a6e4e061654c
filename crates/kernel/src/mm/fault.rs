//! Demand paging: populating regions on faults and on Sentry accesses, and stack growth.

use super::vma::{Frames, Pma};
use super::{MemoryManager, MmState, FAULT_REGION};
use rvisor_abi::{errno, page_down, SysResult, PAGE_SIZE};
use rvisor_platform::{Context, Perms};

/// How much one copy-on-write fault copies, unless it continues a run.
pub(super) const COW_REGION: u64 = 64 << 10;

/// The most a copy-on-write fault that continues a run of them copies.
const COW_RUN_MAX: u64 = 2 << 20;

/// The most pages one store fault on clean file pages makes writable (and
/// dirty), for a run of stores each starting where the last one's pages ended.
const MKWRITE_RUN_MAX: u64 = 64 << 10;

/// Linux keeps a guard gap of 256 pages below a stack to any other mapping.
const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;

/// What bounds a stack's growth (Linux's acct_stack_growth): the process's
/// RLIMIT_STACK, RLIMIT_AS, and RLIMIT_MEMLOCK for a locked stack (infinite
/// with CAP_IPC_LOCK); growth past any of them is a fault (SIGSEGV).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrowthLimits {
    pub stack: u64,
    pub address_space: u64,
    pub memlock: u64,
}

impl Default for GrowthLimits {
    /// The usual 8 MiB stack, nothing else limited.
    fn default() -> GrowthLimits {
        GrowthLimits { stack: 8 << 20, address_space: u64::MAX, memlock: u64::MAX }
    }
}

/// What a fault turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// Memory was populated or mapped: run the app again.
    Handled,
    /// As `Handled`, having read file bytes from the host: a major fault.
    ReadIn,
    /// No mapping there (SEGV_MAPERR).
    Unmapped,
    /// The mapping forbids the access (SEGV_ACCERR).
    Forbidden,
    /// A file mapping past the end of its file (SIGBUS, BUS_ADRERR).
    PastFileEnd,
    /// A missing page a userfaultfd handles: the task waits for it.
    Missing(std::sync::Arc<super::userfault::Userfault>),
}

impl MmState {
    /// The VMA for an access at `addr`, growing a stack down to it if that is how
    /// Linux would treat the access.
    pub(super) fn vma_for_access(&mut self, addr: u64) -> Option<u64> {
        if let Some((s, _)) = self.vma_at(addr) {
            return Some(s);
        }
        let (&s, v) = self.vmas.range(addr..).next()?;
        let new_start = page_down(addr);
        if !v.growsdown || v.end - new_start > self.limits.stack {
            return None;
        }
        let grow = s - new_start;
        let total = |which: &dyn Fn(&super::Vma) -> bool| self.vmas.iter().filter(|(_, v)| which(v)).map(|(&s, v)| v.end - s).sum::<u64>();
        if self.limits.address_space != u64::MAX && total(&|_| true).saturating_add(grow) > self.limits.address_space {
            return None;
        }
        let locked = |v: &super::Vma| v.mlock != super::Mlock::Unlocked;
        if locked(v) && self.limits.memlock != u64::MAX && total(&locked).saturating_add(grow) > self.limits.memlock {
            return None;
        }
        let below_ok = self
            .vmas
            .range(..s)
            .next_back()
            .is_none_or(|(_, p)| p.end.saturating_add(STACK_GUARD_GAP) <= new_start);
        if !below_ok {
            return None;
        }
        let v = self.vmas.remove(&s)?;
        self.vmas.insert(new_start, v);
        Some(new_start)
    }
}

impl MemoryManager {
    /// Handles an app page fault at `addr`. ptrace cannot tell reads from writes, so
    /// a fault on a page that is already mapped with all its VMA's rights is a real
    /// access violation — unless the host found no mapping there at all
    /// (`host_maperr`, SIGSEGV with SEGV_MAPERR): then another thread (or a Sentry
    /// access through `translate`) mapped the page between this thread's fault and
    /// now, and the access is retried (the page is mapped again, in case the host's
    /// view lags ours). Likewise another thread may have widened the page's mapping
    /// (broken copy-on-write, after a fork by a third) after this thread's access
    /// faulted and before its change reached the host: such a fault is retried once
    /// after a sync, and is a violation only if it recurs with nothing changed since
    /// (`retry`, the task's record of its last such retry: page and `changes`).
    /// Where the platform knows the fault was a `write`, copy-on-write frames are
    /// copied at once, rather than mapped read-only to fault again, and a write to a
    /// page the VMA keeps read-only is a violation at once. Clean pages of a file
    /// that tracks stores (`Pma::clean`) are treated alike: a fault on one mapped
    /// read-only in a writable VMA is a store (`page_mkwrite`), unless the host
    /// found nothing mapped there (then another thread mapped it meanwhile).
    pub fn handle_fault(&self, ctx: &mut dyn Context, addr: u64, host_maperr: bool, write: bool, retry: &mut Option<(u64, u64)>) -> SysResult<FaultOutcome> {
        let mut st = self.lock();
        let Some(vstart) = st.vma_for_access(addr) else { return Ok(FaultOutcome::Unmapped) };
        let v = &st.vmas[&vstart];
        let perms = v.perms;
        if perms == Perms::NONE {
            return Ok(FaultOutcome::Forbidden);
        }
        if v.file.as_ref().is_some_and(|f| addr >= f.end_address(vstart)) {
            return Ok(FaultOutcome::PastFileEnd);
        }
        if let Some((&ps, p)) = st.pmas.range(..=addr).next_back().filter(|(_, p)| p.end > addr) {
            if p.cow && perms.write && (write || p.mapped == p.effective(perms)) {
                // A write, known or implied: the page was already mapped read-only
                // for copy-on-write and faulted again.
                return self.copy_on_write(ctx, st, ps, addr, perms);
            }
            if p.clean && perms.write && (write || (!host_maperr && p.mapped == p.effective(perms))) {
                // A store, known or implied: the page was mapped (read-only, until
                // stored to) when it faulted.
                return Ok(self.page_mkwrite(&mut st, vstart, ps, addr, perms));
            }
            if p.mapped == p.effective(perms) {
                if host_maperr && p.mapped != Perms::NONE {
                    let page = page_down(addr);
                    self.aspace.map(page, PAGE_SIZE, p.file_offset(ps, page), p.mapped);
                    return Ok(FaultOutcome::Handled);
                }
                let page = page_down(addr);
                if (write && !p.mapped.write) || *retry == Some((page, st.changes)) {
                    return Ok(FaultOutcome::Forbidden);
                }
                *retry = Some((page, st.changes));
                drop(st);
                self.sync_then_release(ctx, Vec::new())?;
                return Ok(FaultOutcome::Handled);
            }
        }
        if let Some(uf) = st.vmas[&vstart].userfault.clone() {
            if st.pmas.range(..=addr).next_back().is_none_or(|(_, p)| p.end <= addr) {
                return Ok(FaultOutcome::Missing(uf));
            }
        }
        let outcome = if self.populate(&mut st, vstart, addr, true)? { FaultOutcome::ReadIn } else { FaultOutcome::Handled };
        if write && perms.write {
            if let Some((&ps, p)) = st.pmas.range(..=addr).next_back().filter(|(_, p)| p.end > addr) {
                if p.cow {
                    return self.copy_on_write(ctx, st, ps, addr, perms).map(|_| outcome);
                }
                if p.clean {
                    self.page_mkwrite(&mut st, vstart, ps, addr, perms);
                }
            }
        }
        Ok(outcome)
    }

    /// A store to clean pages of a file that tracks stores (in the PMA at `ps`,
    /// around `addr`), as Linux's do_page_mkwrite: the file notes the pages dirty
    /// and this address space as one that stores to it unnoticed, then the pages
    /// are mapped writable (at the next switch). A store right where the last one
    /// ended takes twice as many pages as that one, up to `MKWRITE_RUN_MAX`, as
    /// copy-on-write runs grow: a program writing a mapped file through takes a
    /// fault per 64 KiB rather than per page, while a lone store dirties (and
    /// has written back) its page only.
    fn page_mkwrite(&self, st: &mut MmState, vstart: u64, ps: u64, addr: u64, perms: Perms) -> FaultOutcome {
        let page = page_down(addr);
        let len = match st.mkwrite_run {
            (end, len) if end == page && len != 0 => (len * 2).min(MKWRITE_RUN_MAX),
            _ => PAGE_SIZE,
        };
        let (lo, hi) = (page.max(ps), page.saturating_add(len).min(st.pmas[&ps].end));
        st.mkwrite_run = (hi, len);
        let Some(f) = st.vmas[&vstart].file.clone() else { return FaultOutcome::Forbidden };
        f.pages.page_mkwrite(f.offset + (lo - vstart), hi - lo, Some(&self.mapper));
        st.split_pmas_at(lo);
        st.split_pmas_at(hi);
        if let Some(p) = st.pmas.get_mut(&lo) {
            p.clean = false;
            let want = p.effective(perms);
            if p.mapped == Perms::NONE {
                self.aspace.map(lo, hi - lo, p.file_offset(lo, lo), want);
            } else {
                self.aspace.protect(lo, hi - lo, want);
            }
            p.mapped = want;
            st.changes += 1;
        }
        FaultOutcome::Handled
    }

    /// Breaks copy-on-write around `addr` (in the PMA at `ps`) for a write.
    fn copy_on_write(&self, ctx: &mut dyn Context, mut st: std::sync::MutexGuard<'_, MmState>, ps: u64, addr: u64, perms: Perms) -> SysResult<FaultOutcome> {
        let released = self.break_cow(&mut st, ps, addr, perms)?;
        drop(st);
        self.sync_then_release(ctx, released)?;
        Ok(FaultOutcome::Handled)
    }

    /// Gives the app its own copy of the frames around `addr` (in the PMA at `ps`).
    /// Returns the PMA pieces it replaced, to drop once the platform is synced.
    /// A break right where the last one ended copies twice as much as that one, up
    /// to `COW_RUN_MAX`, as readahead grows: a process writing through memory it
    /// shares since a fork took 64 faults per 4 MiB (~170 µs each here), and now
    /// takes 7; scattered writes still copy 64 KiB each.
    pub(super) fn break_cow(&self, st: &mut MmState, ps: u64, addr: u64, perms: Perms) -> SysResult<Vec<Pma>> {
        let block = addr & !(COW_REGION - 1);
        let len = match st.cow_run {
            (end, len) if end == block && len != 0 => (len * 2).min(COW_RUN_MAX),
            _ => COW_REGION,
        };
        let pend = st.pmas[&ps].end;
        let lo = block.max(ps);
        let hi = block.saturating_add(len).min(pend);
        st.cow_run = (hi, len);
        let old = st.take_pmas(lo, hi);
        // Every copy is made before anything changes: out of memory half way,
        // the pieces not yet copied went with the error, and the retried fault
        // backed their pages afresh (the file's bytes, or zeros) in place of the
        // app's data (an init's relocated GOT, after its OOM-killed child).
        let mut copies = Vec::with_capacity(old.len());
        for (s, p) in &old {
            let copy = match std::sync::Arc::strong_count(&p.frames) {
                1 => None,
                _ => Some(Frames::copy_of(&self.mf, p.file_offset(*s, *s), p.end - s)),
            };
            if copy.is_some() && p.frames.is_anonymous() {
                st.fork_writes.note(page_down(addr.max(*s)));
            }
            if copy.as_ref().is_some_and(Option::is_none) {
                st.pmas.extend(old);
                return Err(errno!(ENOMEM));
            }
            copies.push(copy.flatten());
        }
        let mut released = Vec::new();
        for ((s, p), copy) in old.into_iter().zip(copies) {
            let len = p.end - s;
            let replacement = match copy {
                None => Pma { cow: false, mapped: perms, ..p.clone() },
                Some(frames) => {
                    Pma { end: p.end, frames, offset: 0, mapped: perms, cow: false, clean: false }
                }
            };
            self.aspace.map(s, len, replacement.file_offset(s, s), perms);
            st.changes += 1;
            st.pmas.insert(s, replacement);
            released.push(p);
        }
        Ok(released)
    }

    /// Backs the fault region around `addr` (inside the VMA at `vstart`) with
    /// frames, and when `map` is set also maps it in the platform. A file mapping
    /// is backed by the file's pages, up to the file's end (EFAULT past it).
    /// Returns whether file bytes had to be read from the host.
    pub(super) fn populate(&self, st: &mut MmState, vstart: u64, addr: u64, map: bool) -> SysResult<bool> {
        let v = st.vmas[&vstart].clone();
        let block = addr & !(FAULT_REGION - 1);
        let (mut lo, mut hi) = (block.max(vstart), (block + FAULT_REGION).min(v.end));
        let mut read_in = false;
        match &v.file {
            Some(f) => {
                hi = hi.min(f.end_address(vstart));
                if addr >= hi {
                    return Err(errno!(EFAULT));
                }
                let to_file = |a: u64| f.offset + (a - vstart);
                let (s, e) = f.pages.fault_span(to_file(lo), hi - lo, to_file(addr));
                let clean = v.shared && f.pages.tracks_writes();
                (lo, hi) = (vstart + (s - f.offset), vstart + (e - f.offset));
                for (s, e) in st.holes(lo, hi) {
                    for run in f.pages.frames(to_file(s), e - s)? {
                        read_in |= run.read_in;
                        let at = vstart + (run.off - f.offset);
                        st.pmas.insert(at, Pma { end: at + run.len, frames: run.frames, offset: run.at, mapped: Perms::NONE, cow: !v.shared, clean });
                    }
                }
            }
            // A userfaultfd fills its registered ranges' pages itself.
            None if v.userfault.is_some() => {}
            None => self.fill(st, lo, hi)?,
        }
        if map {
            let first = st.pmas.range(..lo).next_back().filter(|(_, p)| p.end > lo).map(|(&s, _)| s).unwrap_or(lo);
            let mut queued = 0;
            for (&s, p) in st.pmas.range_mut(first..hi) {
                let want = p.effective(v.perms);
                if p.mapped != want {
                    self.aspace.map(s, p.end - s, p.file_offset(s, s), want);
                    queued += 1;
                    p.mapped = want;
                }
            }
            st.changes += queued;
        }
        Ok(read_in)
    }

    /// Backs every address in `[lo, hi)` that has no frames yet with fresh ones.
    pub(super) fn fill(&self, st: &mut MmState, lo: u64, hi: u64) -> SysResult<()> {
        for (s, e) in st.holes(lo, hi) {
            let frames = Frames::allocate(&self.mf, e - s).ok_or_else(|| errno!(ENOMEM))?;
            st.pmas.insert(s, Pma { end: e, frames, offset: 0, mapped: Perms::NONE, cow: false, clean: false });
        }
        Ok(())
    }
}

impl MmState {
    /// The sub-ranges of `[lo, hi)` no PMA backs.
    fn holes(&self, lo: u64, hi: u64) -> Vec<(u64, u64)> {
        let existing: Vec<(u64, u64)> = self
            .pmas
            .range(..hi)
            .rev()
            .take_while(|(_, p)| p.end > lo)
            .map(|(&s, p)| (s, p.end))
            .collect();
        let mut at = lo;
        let mut holes = Vec::new();
        for (s, e) in existing.into_iter().rev() {
            if s > at {
                holes.push((at, s));
            }
            at = at.max(e);
        }
        if at < hi {
            holes.push((at, hi));
        }
        holes
    }
}
