//! The address-space operations behind mmap, munmap, mprotect, mremap, brk,
//! madvise, mincore and msync.

use super::vma::{Mlock, OnFork};
use super::{Frames, MemoryManager, MmState, Vma, FAULT_REGION};
use std::sync::Arc;
use rvisor_abi::{errno, page_down, page_up, Errno, SysResult, PAGE_SIZE};
use rvisor_platform::{Context, Perms};

/// How much of a file mapping `map_file` maps at once, when the file is in memory.
const EAGER_MAP_MAX: u64 = 8 << 20;

/// The next shared anonymous mapping's inode number (`Vma::shmem_ino`), sandbox-wide
/// as Linux's get_next_ino; from 1, as 0 means none.
static NEXT_SHMEM_INO: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Lowest address a mapping may take (Linux's default vm.mmap_min_addr).
pub const MMAP_MIN_ADDR: u64 = 0x10000;

/// How `map_anonymous` chooses the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// A hint: used if free, otherwise the allocator picks.
    Hint(u64),
    /// MAP_FIXED: replaces whatever is there.
    Fixed(u64),
    /// MAP_FIXED_NOREPLACE: fails with EEXIST if anything is there.
    FixedNoReplace(u64),
}

/// The limits a new mapping must keep to, checked under the address space's
/// lock together with its insertion (as Linux's, under mmap_lock), so that
/// threads mapping at once cannot pass one together.
#[derive(Clone, Copy, Debug)]
pub struct Admission {
    /// RLIMIT_MEMLOCK (infinite with CAP_IPC_LOCK), for a mapping that is to be
    /// locked: EAGAIN past it (Linux's mlock_future_ok).
    pub memlock: Option<u64>,
    /// RLIMIT_AS: ENOMEM past it.
    pub address_space: u64,
    /// RLIMIT_DATA's soft and hard limits, for a data mapping (`Vma::is_data`):
    /// ENOMEM past it. A soft limit of 0 lets data grow up to the hard one, as
    /// Linux does for Valgrind.
    pub data: Option<(u64, u64)>,
}

impl Admission {
    /// Those of the limits a mapping like `v` keeps to as it grows: RLIMIT_DATA
    /// only if it is data, RLIMIT_MEMLOCK only if it is locked (Linux's
    /// may_expand_vm and mlock_future_ok, given its vm_flags).
    fn for_vma(&self, v: &Vma) -> Admission {
        Admission { memlock: self.memlock.filter(|_| v.mlock != Mlock::Unlocked), address_space: self.address_space, data: self.data.filter(|_| v.is_data()) }
    }
}

/// What a change to the mappings of a range does at a hole: Linux's mbind refuses
/// the whole range, mlock changes what comes before it, madvise all that is mapped
/// (each then fails with the hole's error).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holes {
    Refuse,
    StopAt,
    Skip,
}

/// The bytes an address space maps, as its limits count them: locked, all, data.
struct MappedTotals {
    locked: u64,
    all: u64,
    data: u64,
}

impl MappedTotals {
    /// Whether `grow` bytes more keep to `adm` (Linux's may_expand_vm).
    fn admit(&self, adm: &Admission, grow: u64) -> SysResult<()> {
        if adm.memlock.is_some_and(|limit| self.locked.saturating_add(grow) > limit) {
            return Err(errno!(EAGAIN));
        }
        if self.all.saturating_add(grow) > adm.address_space {
            return Err(errno!(ENOMEM));
        }
        let data = self.data.saturating_add(grow);
        match adm.data {
            Some((cur, max)) if !(data <= cur || (cur == 0 && data <= max)) => Err(errno!(ENOMEM)),
            _ => Ok(()),
        }
    }
}

impl MmState {
    /// How many bytes of `[start, end)` mappings `which` picks map.
    pub(super) fn mapped_bytes(&self, start: u64, end: u64, which: impl Fn(&Vma) -> bool) -> u64 {
        // Mappings do not overlap: those that end after `start` are the last ones
        // that begin before `end`.
        self.vmas.range(..end).rev().take_while(|(_, v)| v.end > start).filter(|(_, v)| which(v)).map(|(&s, v)| v.end.min(end).saturating_sub(s.max(start))).sum()
    }

    /// Whether `grow` bytes more, less what `replaced` maps now, keep to `adm`
    /// (Linux's may_expand_vm).
    fn admit(&self, adm: &Admission, grow: u64, replaced: Option<(u64, u64)>) -> SysResult<()> {
        self.mapped_totals(adm, replaced).admit(adm, grow)
    }

    /// What is mapped now, less what `replaced` maps, counted only for the limits
    /// `adm` sets.
    fn mapped_totals(&self, adm: &Admission, replaced: Option<(u64, u64)>) -> MappedTotals {
        let count = |limited: bool, which: &dyn Fn(&Vma) -> bool| {
            if !limited {
                return 0;
            }
            let gone = replaced.map_or(0, |(s, e)| self.mapped_bytes(s, e, which));
            self.mapped_bytes(0, u64::MAX, which).saturating_sub(gone)
        };
        MappedTotals {
            locked: if adm.memlock.is_some_and(|l| l != u64::MAX) { self.mapped_bytes(0, u64::MAX, |v| v.mlock != Mlock::Unlocked) } else { 0 },
            all: count(adm.address_space != u64::MAX, &|_| true),
            data: count(adm.data.is_some_and(|d| d != (u64::MAX, u64::MAX)), &|v| v.is_data()),
        }
    }

    /// How far from `addr` towards `end` mprotect may give `perms`, and why it
    /// stops short: a hole (ENOMEM), a mapping that may not get them (EACCES), or
    /// RLIMIT_DATA (ENOMEM) where RLIMIT_AS alone would not refuse, as Linux's
    /// mprotect_fixup asks may_expand_vm for each mapping it makes private data.
    fn mprotect_reach(&self, addr: u64, end: u64, perms: Perms, refuse_exec_gain: bool, adm: &Admission) -> (u64, Option<Errno>) {
        let totals = self.mapped_totals(adm, None);
        let as_only = Admission { data: None, ..*adm };
        let mut at = addr;
        let mut becoming = 0u64;
        let first = self.vma_at(addr).map_or(addr, |(s, _)| s);
        for (&s, v) in self.vmas.range(first..end) {
            if s > at {
                return (at, Some(errno!(ENOMEM)));
            }
            let gains_exec = refuse_exec_gain && perms.exec && (perms.write || !v.perms.exec);
            if (perms.write && !v.may_write) || (perms.exec && !v.may_exec) || gains_exec {
                return (at, Some(errno!(EACCES)));
            }
            if perms.write && !v.perms.write && !v.shared && !v.growsdown {
                becoming = becoming.saturating_add(v.end.min(end) - s.max(addr));
                if let Err(e) = totals.admit(adm, becoming) {
                    if totals.admit(&as_only, becoming).is_ok() {
                        return (at, Some(e));
                    }
                }
            }
            at = v.end.min(end);
        }
        if at < end {
            return (at, Some(errno!(ENOMEM)));
        }
        (end, None)
    }

    /// Finds a free range of `len` bytes, top-down below `mmap_base`.
    fn find_free(&self, len: u64, max: u64) -> Option<u64> {
        let top = if self.layout.mmap_base != 0 { self.layout.mmap_base } else { max };
        let mut hi = top;
        for (&s, v) in self.vmas.range(..top).rev() {
            if v.end < hi && hi - v.end >= len {
                return Some(hi - len);
            }
            hi = hi.min(s);
        }
        (hi >= MMAP_MIN_ADDR + len).then(|| hi - len)
    }

    pub(super) fn is_free(&self, start: u64, end: u64) -> bool {
        self.vmas.range(..end).next_back().is_none_or(|(_, v)| v.end <= start)
    }
}

impl MemoryManager {
    pub(super) fn check_range(&self, addr: u64, len: u64) -> SysResult<u64> {
        let end = addr.checked_add(len).ok_or_else(|| errno!(ENOMEM))?;
        if end > self.max_addr {
            return Err(errno!(ENOMEM));
        }
        Ok(end)
    }

    /// Whether `grow` bytes more, less what `[replaced)` maps now, keep to `adm`.
    pub fn admit(&self, adm: &Admission, grow: u64, replaced: Option<(u64, u64)>) -> SysResult<()> {
        self.lock().admit(adm, grow, replaced)
    }

    /// Creates an anonymous mapping and returns its address; within `admission`'s
    /// limits, if given.
    #[allow(clippy::too_many_arguments)]
    pub fn map_anonymous(
        &self,
        ctx: &mut dyn Context,
        placement: Placement,
        len: u64,
        perms: Perms,
        shared: bool,
        growsdown: bool,
        admission: Option<&Admission>,
    ) -> SysResult<u64> {
        let len = page_up(len).filter(|&l| l != 0).ok_or_else(|| errno!(ENOMEM))?;
        let mut st = self.lock();
        let addr = match placement {
            Placement::Fixed(a) | Placement::FixedNoReplace(a) => {
                if a % PAGE_SIZE != 0 {
                    return Err(errno!(EINVAL));
                }
                let end = self.check_range(a, len)?;
                if a < MMAP_MIN_ADDR {
                    return Err(errno!(EPERM));
                }
                if matches!(placement, Placement::FixedNoReplace(_)) && !st.is_free(a, end) {
                    return Err(errno!(EEXIST));
                }
                a
            }
            Placement::Hint(h) => {
                let h = page_down(h);
                match h.checked_add(len) {
                    Some(end) if h >= MMAP_MIN_ADDR && end <= self.max_addr && st.is_free(h, end) => h,
                    _ => st.find_free(len, self.max_addr).ok_or_else(|| errno!(ENOMEM))?,
                }
            }
        };
        let end = addr + len;
        st.refuse_sealed(addr, end)?;
        if let Some(adm) = admission {
            st.admit(adm, len, matches!(placement, Placement::Fixed(_)).then_some((addr, end)))?;
        }
        let (released, _unmapped) = Self::unmap_locked(&mut st, &*self.aspace, addr, end);
        let shmem_ino = if shared { NEXT_SHMEM_INO.fetch_add(1, std::sync::atomic::Ordering::Relaxed) } else { 0 };
        let mlock = st.def_mlock;
        st.vmas.insert(addr, Vma { end, perms, shared, growsdown, name: None, may_write: true, may_exec: true, file: None, shmem_ino, on_fork: Default::default(), userfault: None, sealed: false, policy: None, mlock });
        if !growsdown && !shared {
            st.merge_around(addr, end);
        }
        drop(st);
        if !released.is_empty() {
            self.sync_then_release(ctx, released)?;
        }
        Ok(addr)
    }

    /// Removes VMAs and PMAs in `[start, end)` and queues the platform unmap. The
    /// returned PMAs must outlive a sync of the address space; the VMAs are to be
    /// dropped once the lock is released (a file's last dentry going may take
    /// file-system locks, and the address space's lock is taken alone).
    fn unmap_locked(st: &mut MmState, aspace: &dyn rvisor_platform::AddressSpace, start: u64, end: u64) -> (Vec<super::Pma>, Vec<(u64, Vma)>) {
        let vmas = st.take_vmas(start, end);
        let pmas = st.take_pmas(start, end);
        if !vmas.is_empty() {
            aspace.unmap(start, end - start);
            st.changes += 1;
        }
        (pmas.into_iter().map(|(_, p)| p).collect(), vmas)
    }

    pub fn munmap(&self, ctx: &mut dyn Context, addr: u64, len: u64) -> SysResult<()> {
        if addr % PAGE_SIZE != 0 || len == 0 {
            return Err(errno!(EINVAL));
        }
        let len = page_up(len).ok_or_else(|| errno!(EINVAL))?;
        let end = self.check_range(addr, len).map_err(|_| errno!(EINVAL))?;
        let (released, _unmapped) = {
            let mut st = self.lock();
            st.refuse_sealed(addr, end)?;
            Self::unmap_locked(&mut st, &*self.aspace, addr, end)
        };
        self.sync_then_release(ctx, released)
    }

/// Marks the mapping at [addr, addr + len) as one mprotect may not make
    /// executable: a file of a noexec mount's, just mapped.
    pub fn deny_exec(&self, addr: u64, len: u64) {
        let Some(end) = page_up(len).and_then(|l| addr.checked_add(l)) else { return };
        for (_, v) in self.lock().vmas.range_mut(addr..end) {
            v.may_exec = false;
        }
    }

    /// mprotect; with `refuse_exec_gain` (PR_SET_MDWE), memory may not become
    /// both writable and executable, nor executable when it was not (EACCES).
    /// Private memory made writable becomes data, within `admission`'s RLIMIT_DATA
    /// (ENOMEM), checked as it changes. As Linux's, it goes mapping by mapping and
    /// stops at the first it refuses or at a hole (ENOMEM), keeping what it changed
    /// before.
    pub fn mprotect(&self, addr: u64, len: u64, perms: Perms, refuse_exec_gain: bool, admission: &Admission) -> SysResult<()> {
        if addr % PAGE_SIZE != 0 {
            return Err(errno!(EINVAL));
        }
        let len = page_up(len).ok_or_else(|| errno!(ENOMEM))?;
        let end = self.check_range(addr, len)?;
        let mut st = self.lock();
        st.refuse_sealed(addr, end)?;
        let (reach, refusal) = st.mprotect_reach(addr, end, perms, refuse_exec_gain, admission);
        if reach > addr {
            st.split_at(addr);
            st.split_at(reach);
            for (_, v) in st.vmas.range_mut(addr..reach) {
                v.perms = perms;
            }
            let mut queued = 0;
            for (&s, p) in st.pmas.range_mut(addr..reach) {
                let want = p.effective(perms);
                if p.mapped != Perms::NONE && p.mapped != want {
                    p.mapped = want;
                    self.aspace.protect(s, p.end - s, want);
                    queued += 1;
                }
            }
            st.changes += queued;
            st.merge_around(addr, reach);
        }
        refusal.map_or(Ok(()), Err)
    }

    /// Maps a file's pages from byte `offset` on: shared, or private (copy-on-write
    /// over the file's pages). Faults fill it; `may_write` says whether mprotect
    /// may add write access later (a shared mapping of a file opened read-only
    /// may not). `file` is the open file's dentry and mode, for /proc.
    #[allow(clippy::too_many_arguments)]
    pub fn map_file(&self, ctx: &mut dyn Context, placement: Placement, len: u64, perms: Perms, shared: bool, may_write: bool, pages: std::sync::Arc<dyn super::FilePages>, offset: u64, file: super::VmFile, admission: Option<&Admission>) -> SysResult<u64> {
        let addr = self.map_anonymous(ctx, placement, len, perms, shared, false, admission)?;
        let len = page_up(len).ok_or_else(|| errno!(ENOMEM))?;
        let mut st = self.lock();
        // Its own VMA (map_anonymous may have merged it with a neighbour).
        st.split_at(addr);
        st.split_at(addr + len);
        let eager = pages.all_present() && perms != Perms::NONE;
        let Some(v) = st.vmas.get_mut(&addr) else { return Ok(addr) };
        pages.add_mapper(&self.mapper);
        let mapping = super::FileMapping { pages, offset, file };
        // A file already in memory (a program's or a library's) is mapped now, in the
        // batch that carries out the mmap, rather than in a fault (a round trip to the
        // stub) per region first touched: a dynamic /bin/true took 17 faults.
        let end = (addr + len).min(mapping.end_address(addr)).min(addr.saturating_add(EAGER_MAP_MAX));
        v.file = Some(mapping);
        v.shmem_ino = 0;
        v.may_write = may_write;
        if eager {
            let mut at = addr;
            // Best effort: whatever is not mapped here faults in later.
            while at < end && self.populate(&mut st, addr, at, true).is_ok() {
                at = (at & !(FAULT_REGION - 1)) + FAULT_REGION;
            }
        }
        Ok(addr)
    }

    /// mseal: seals the mappings of `[addr, addr + len)` (mapped throughout:
    /// ENOMEM otherwise), for good.
    pub fn seal(&self, addr: u64, len: u64) -> SysResult<()> {
        let end = self.check_range(addr, len).map_err(|_| errno!(EINVAL))?;
        let mut st = self.lock();
        if !st.fully_mapped(addr, end) {
            return Err(errno!(ENOMEM));
        }
        st.split_at(addr);
        st.split_at(end);
        for (_, v) in st.vmas.range_mut(addr..end) {
            v.sealed = true;
        }
        st.merge_around(addr, end);
        Ok(())
    }

    /// Whether madvise may discard `[addr, addr + len)` (DONTNEED, FREE,
    /// REMOVE, DONTFORK, WIPEONFORK): not where sealed private anonymous memory
    /// the process could not write anyway would lose its contents (EPERM).
    pub fn may_discard(&self, addr: u64, len: u64) -> SysResult<()> {
        let end = addr.saturating_add(len);
        let st = self.lock();
        let first = st.vma_at(addr).map_or(addr, |(s, _)| s);
        if st.vmas.range(first..end).any(|(_, v)| v.sealed && v.file.is_none() && !v.shared && !v.perms.write) {
            return Err(errno!(EPERM));
        }
        Ok(())
    }

    /// Bytes backed by frames (an upper bound of the resident size).
    pub fn populated_bytes(&self) -> u64 {
        self.lock().pmas.iter().map(|(&s, p)| p.end - s).sum()
    }

    /// A free range of `len` bytes where the next mmap without a hint would go.
    pub fn find_free(&self, len: u64) -> SysResult<u64> {
        self.lock().find_free(len, self.max_addr).ok_or_else(|| errno!(ENOMEM))
    }

    /// Maps the vDSO: the time namespace's page and the parameter page (one
    /// `[vvar]`, read-only), then the image read+exec. Returns the image's address,
    /// which the caller keeps in the layout (`Layout::vdso`).
    pub fn map_vdso(&self, vdso: super::VdsoFrames) -> SysResult<u64> {
        let (shared, timens) = (vdso.shared, vdso.timens);
        let len = rvisor_vdso::MAPPING_SIZE as u64;
        let mut st = self.lock();
        let base = st.find_free(len, self.max_addr).ok_or_else(|| errno!(ENOMEM))?;
        let (vvar, image) = (base + rvisor_vdso::TIMENS_SIZE as u64, base + (rvisor_vdso::TIMENS_SIZE + rvisor_vdso::VVAR_SIZE) as u64);
        let vma = |end, exec, name| Vma { end, perms: Perms { read: true, write: false, exec }, shared: true, growsdown: false, name: Some(name), may_write: false, may_exec: true, file: None, shmem_ino: 0, on_fork: Default::default(), userfault: None, sealed: false, policy: None, mlock: Mlock::Unlocked };
        st.vmas.insert(base, vma(image, false, "[vvar]"));
        st.vmas.insert(image, vma(base + len, true, "[vdso]"));
        let pmas = [(base, vvar, timens, 0), (vvar, image, shared, 0), (image, base + len, shared, rvisor_vdso::VVAR_SIZE as u64)];
        for (s, e, frames, offset) in pmas {
            st.pmas.insert(s, super::vma::Pma { end: e, frames: frames.clone(), offset, mapped: Perms::NONE, cow: false, clean: false });
        }
        Ok(image)
    }

    /// Puts time namespace page `timens` in place of the one this address space
    /// maps (a process entering another time namespace: setns, or a child forked
    /// into the one its parent made for it).
    pub fn replace_timens_page(&self, ctx: Option<&mut dyn Context>, timens: &Arc<Frames>) -> SysResult<()> {
        let page = rvisor_vdso::TIMENS_SIZE as u64;
        let released = {
            let mut st = self.lock();
            let Some(at) = st.layout.vdso.checked_sub(page + rvisor_vdso::VVAR_SIZE as u64).filter(|_| st.layout.vdso != 0) else {
                return Ok(());
            };
            // The app may have unmapped or replaced it: then it has no such page.
            if !st.vma_at(at).is_some_and(|(_, v)| v.name == Some("[vvar]")) {
                return Ok(());
            }
            let old = st.take_pmas(at, at + page);
            self.aspace.unmap(at, page);
            st.changes += 1;
            st.pmas.insert(at, super::vma::Pma { end: at + page, frames: timens.clone(), offset: 0, mapped: Perms::NONE, cow: false, clean: false });
            old.into_iter().map(|(_, p)| p).collect()
        };
        match ctx {
            Some(ctx) => self.sync_then_release(ctx, released),
            // An address space no thread has run yet: nothing of it reached the host.
            None => Ok(()),
        }
    }

    /// `brk`: returns the new break, or the old one if the request fails (past
    /// `admission`'s limits among other reasons).
    pub fn brk(&self, ctx: &mut dyn Context, want: u64, admission: &Admission) -> u64 {
        let layout = self.layout();
        let old_top = page_up(layout.brk).unwrap_or(layout.brk);
        let Some(new_top) = page_up(want) else { return layout.brk };
        if want < layout.brk_start {
            return layout.brk;
        }
        if new_top > old_top {
            let free = self.lock().is_free(old_top, new_top);
            if !free || new_top > self.max_addr {
                return layout.brk;
            }
            let placed = self.map_anonymous(ctx, Placement::Fixed(old_top), new_top - old_top, Perms { read: true, write: true, exec: false }, false, false, Some(admission));
            if placed.is_err() {
                return layout.brk;
            }
            let mut st = self.lock();
            if let Some((s, _)) = st.vma_at(old_top) {
                if let Some(v) = st.vmas.get_mut(&s) {
                    v.name = Some("[heap]");
                }
            }
            st.merge_around(layout.brk_start, new_top);
        } else if new_top < old_top && self.munmap(ctx, new_top, old_top - new_top).is_err() {
            return layout.brk;
        }
        let mut st = self.lock();
        st.layout.brk = want;
        want
    }

    /// `mremap` without MREMAP_DONTUNMAP. A mapping grows within `admission`
    /// (of which RLIMIT_DATA counts only for data, RLIMIT_MEMLOCK for locked
    /// memory), checked as it grows.
    #[allow(clippy::too_many_arguments)]
    pub fn mremap(&self, ctx: &mut dyn Context, old: u64, old_len: u64, new_len: u64, may_move: bool, fixed: Option<u64>, admission: &Admission) -> SysResult<u64> {
        if old % PAGE_SIZE != 0 {
            return Err(errno!(EINVAL));
        }
        let old_len = page_up(old_len).ok_or_else(|| errno!(EINVAL))?;
        let new_len = page_up(new_len).filter(|&l| l != 0).ok_or_else(|| errno!(EINVAL))?;
        let old_end = self.check_range(old, old_len).map_err(|_| errno!(EFAULT))?;
        let vma = self.vma_to_move(old, old_len, old_end)?;
        if let Some(dst) = fixed {
            if dst % PAGE_SIZE != 0 {
                return Err(errno!(EINVAL));
            }
            let dst_end = self.check_range(dst, new_len)?;
            if dst < old_end && old < dst_end {
                return Err(errno!(EINVAL));
            }
            // As Linux's mremap_to, the destination is unmapped first: a growth
            // then refused leaves it unmapped.
            self.munmap(ctx, dst, new_len)?;
            return self.move_range(ctx, old, old_len, new_len, dst, &vma, false, admission);
        }
        if new_len <= old_len {
            if new_len < old_len {
                self.munmap(ctx, old + new_len, old_len - new_len)?;
            }
            return Ok(old);
        }
        let new_end = self.check_range(old, new_len);
        {
            let mut st = self.lock();
            let (s, v) = st.vma_at(old).ok_or_else(|| errno!(EFAULT))?;
            // The limits first, whether it grows in place or moves (Linux's
            // vma_to_resize); a move checks them again as it maps.
            st.admit(&admission.for_vma(v), new_len - old_len, None)?;
            if old_len != 0 && new_end.is_ok_and(|e| st.is_free(old_end, e)) {
                st.split_at(old_end);
                if let Some(v) = st.vmas.get_mut(&s) {
                    v.end = old + new_len;
                }
                return Ok(old);
            }
        }
        if !may_move {
            return Err(errno!(ENOMEM));
        }
        let dst = self.lock().find_free(new_len, self.max_addr).ok_or_else(|| errno!(ENOMEM))?;
        self.move_range(ctx, old, old_len, new_len, dst, &vma, false, admission)
    }

    /// `mremap` with MREMAP_DONTUNMAP (MREMAP_MAYMOVE and equal lengths, which the
    /// caller checked): the pages of `[old, old + len)` move to a like mapping at
    /// `dst` (with MREMAP_FIXED) or near it, and the old mapping stays, empty: its
    /// next faults fill it afresh (zeros, the file, or its userfaultfd), as Linux's
    /// move_vma leaves it. The address space grows by `len`, within `admission`.
    pub fn mremap_dontunmap(&self, ctx: &mut dyn Context, old: u64, len: u64, dst: u64, fixed: bool, admission: &Admission) -> SysResult<u64> {
        if old % PAGE_SIZE != 0 || dst % PAGE_SIZE != 0 {
            return Err(errno!(EINVAL));
        }
        let len = page_up(len).filter(|&l| l != 0).ok_or_else(|| errno!(EINVAL))?;
        let dst_end = dst.checked_add(len).ok_or_else(|| errno!(EINVAL))?;
        // Linux checks the overlap against a hint as well.
        if old.checked_add(len).is_none_or(|old_end| dst < old_end && old < dst_end) {
            return Err(errno!(EINVAL));
        }
        let old_end = self.check_range(old, len).map_err(|_| errno!(EFAULT))?;
        let vma = self.vma_to_move(old, len, old_end)?;
        if vma.is_special() {
            return Err(errno!(EINVAL));
        }
        let dst = if fixed {
            self.check_range(dst, len)?;
            self.munmap(ctx, dst, len)?;
            dst
        } else {
            let st = self.lock();
            if dst >= MMAP_MIN_ADDR && dst_end <= self.max_addr && st.is_free(dst, dst_end) {
                dst
            } else {
                st.find_free(len, self.max_addr).ok_or_else(|| errno!(ENOMEM))?
            }
        };
        self.move_range(ctx, old, len, len, dst, &vma, true, admission)
    }

    /// The mapping `[old, old_end)` lies in, as it would begin at `old`: EFAULT if
    /// none does or the range runs past it, EPERM if sealed.
    fn vma_to_move(&self, old: u64, old_len: u64, old_end: u64) -> SysResult<Vma> {
        let st = self.lock();
        st.refuse_sealed(old, old_end.max(old + 1))?;
        let (s, v) = st.vma_at(old).ok_or_else(|| errno!(EFAULT))?;
        if old_len != 0 && v.end < old_end {
            return Err(errno!(EFAULT));
        }
        let mut v = v.clone();
        if let Some(f) = &mut v.file {
            f.offset += old - s;
        }
        Ok(v)
    }

    /// Moves `[old, old+old_len)` to `dst` (already free), growing it to `new_len`
    /// within `admission` (checked as the new mapping goes in); with `keep_old`
    /// (MREMAP_DONTUNMAP) the old mapping stays, without its pages, and the whole
    /// new one counts (but for RLIMIT_MEMLOCK: Linux unlocks the old one).
    /// The new mapping is not registered with a userfaultfd: Linux drops the
    /// registration of a moved mapping unless the userfaultfd asked for remap
    /// events, which ours do not offer.
    #[allow(clippy::too_many_arguments)]
    fn move_range(&self, ctx: &mut dyn Context, old: u64, old_len: u64, new_len: u64, dst: u64, vma: &Vma, keep_old: bool, admission: &Admission) -> SysResult<u64> {
        let keep = old_len.min(new_len);
        let mut st = self.lock();
        let (limits, grow) = if keep_old { (Admission { memlock: None, ..admission.for_vma(vma) }, new_len) } else { (admission.for_vma(vma), new_len.saturating_sub(old_len)) };
        // What does not grow is not checked: a process past a limit lowered
        // meanwhile may still move its memory.
        if grow > 0 {
            st.admit(&limits, grow, None)?;
        }
        if !keep_old {
            st.take_vmas(old, old + old_len);
        }
        let moved = if keep_old && vma.shared {
            // Shared pages stay in the old mapping too, which still shows them
            // (its faults would find the same pages again).
            st.split_pmas_at(old);
            st.split_pmas_at(old + keep);
            st.pmas.range(old..old + keep).map(|(&s, p)| (s, p.clone())).collect()
        } else {
            let moved = st.take_pmas(old, old + keep);
            self.aspace.unmap(old, old_len);
            st.changes += 1;
            moved
        };
        let dropped = st.take_pmas(old + keep, old + old_len);
        st.vmas.insert(dst, Vma { end: dst + new_len, userfault: None, ..vma.clone() });
        for (s, mut p) in moved {
            let at = dst + (s - old);
            let len = p.end - s;
            p.end = at + len;
            if p.mapped != Perms::NONE {
                self.aspace.map(at, len, p.file_offset(at, at), p.mapped);
            }
            st.pmas.insert(at, p);
        }
        drop(st);
        self.sync_then_release(ctx, dropped.into_iter().map(|(_, p)| p).collect())?;
        Ok(dst)
    }

    /// MADV_DONTNEED: private anonymous pages read as zero afterwards, private file
    /// pages as the file (the next fault fills them from it again).
    pub fn dont_need(&self, ctx: &mut dyn Context, addr: u64, len: u64) -> SysResult<()> {
        let end = self.check_range(addr, len)?;
        let mut st = self.lock();
        // As Linux's madvise, the mapped parts go, and a hole is ENOMEM after.
        let unmapped = !st.fully_mapped(addr, end);
        let private: Vec<(u64, u64)> = st
            .vmas
            .range(..end)
            .filter(|(_, v)| !v.shared && v.end > addr)
            .map(|(&s, v)| (s.max(addr), v.end.min(end)))
            .collect();
        let mut released = Vec::new();
        for (s, e) in private {
            for (ps, p) in st.take_pmas(s, e) {
                p.release_host_pages(&self.mf, ps, ps, p.end);
                released.push(p);
            }
            self.aspace.unmap(s, e - s);
            st.changes += 1;
        }
        drop(st);
        self.sync_then_release(ctx, released)?;
        if unmapped { Err(errno!(ENOMEM)) } else { Ok(()) }
    }

    /// Drops every VMA of an address space whose last task is leaving, without
    /// telling the platform (the stub goes with it). The frames stay until the
    /// memory manager itself goes, so none is reused while the stub maps it.
    /// Its AIO contexts go too (Linux's exit_aio), giving aio-nr their events back.
    pub fn forget_mappings(&self) {
        let vmas = std::mem::take(&mut self.lock().vmas);
        drop(vmas);
        let contexts = std::mem::take(&mut *self.aio_lock());
        drop(contexts);
    }

    /// shmdt: unmaps the System V segment attached at `addr`: the mapping of the
    /// segment's start that begins there, and the rest of that attachment up to the
    /// segment's size. EINVAL where none begins. Returns the segment's identity (the
    /// address of its pages).
    pub fn detach_sysv_segment(&self, ctx: &mut dyn Context, addr: u64) -> SysResult<usize> {
        let (segment, ranges): (*const (), Vec<(u64, u64)>) = {
            let st = self.lock();
            let Some((start, v)) = st.vma_at(addr) else { return Err(errno!(EINVAL)) };
            let Some(f) = v.file.as_ref().filter(|f| start == addr && f.offset == 0) else { return Err(errno!(EINVAL)) };
            let Some(size) = f.pages.sysv_segment_size() else { return Err(errno!(EINVAL)) };
            let end = page_up(size).and_then(|s| addr.checked_add(s)).ok_or_else(|| errno!(EINVAL))?;
            let segment = std::sync::Arc::as_ptr(&f.pages) as *const ();
            let ranges = st
                .vmas
                .range(addr..end)
                .filter(|(&s, v)| v.file.as_ref().is_some_and(|f| std::sync::Arc::as_ptr(&f.pages) as *const () == segment && f.offset == s - addr))
                .map(|(&s, v)| (s, v.end.min(end) - s))
                .collect();
            (segment, ranges)
        };
        for (s, len) in ranges {
            self.munmap(ctx, s, len)?;
        }
        Ok(segment as usize)
    }

    /// madvise's DONTFORK/DOFORK and WIPEONFORK/KEEPONFORK: what a child gets of
    /// `[addr, addr + len)` (whole pages, mapped: ENOMEM otherwise). Wiping is for
    /// private anonymous mappings only (EINVAL).
    pub fn set_on_fork(&self, addr: u64, len: u64, change: impl Fn(&mut OnFork)) -> SysResult<()> {
        let end = self.check_range(addr, len)?;
        let wipes_shared = |v: &Vma| {
            let mut f = v.on_fork;
            change(&mut f);
            f.wipe && (v.shared || v.file.is_some())
        };
        self.update_vmas(addr, end, Holes::Skip, errno!(ENOMEM), |v| if wipes_shared(v) { Err(errno!(EINVAL)) } else { Ok(()) }, |v| change(&mut v.on_fork))
    }

    /// mbind: the NUMA policy of `[addr, end)`, which must be mapped (EFAULT).
    pub fn set_policy(&self, addr: u64, end: u64, policy: Option<Arc<super::mempolicy::MemPolicy>>) -> SysResult<()> {
        self.update_vmas(addr, end, Holes::Refuse, errno!(EFAULT), |_| Ok(()), |v| v.policy = policy.clone())
    }

    /// mlock, mlock2 and munlock: locks `[addr, addr + len)` (widened to pages;
    /// ENOMEM at a hole, with what comes before it changed) as `mode` says, and
    /// populates it unless it is locked on fault.
    pub fn set_mlock(&self, addr: u64, len: u64, mode: Mlock) -> SysResult<()> {
        let start = page_down(addr);
        let end = addr.checked_add(len).and_then(page_up).ok_or_else(|| errno!(EINVAL))?;
        if start == end {
            return Ok(());
        }
        self.update_vmas(start, end, Holes::StopAt, errno!(ENOMEM), |_| Ok(()), |v| {
            if !v.is_special() {
                v.mlock = mode;
            }
        })?;
        if mode == Mlock::Locked {
            self.prefault(start, end, true);
        }
        Ok(())
    }

    /// mlockall and munlockall: how new mappings are locked (MCL_FUTURE), and
    /// with `current`, every mapping now (MCL_CURRENT, populated unless locked
    /// on fault; munlockall unlocks all).
    pub fn set_mlock_all(&self, future: Mlock, current: Option<Mlock>) {
        {
            let mut st = self.lock();
            st.def_mlock = future;
            let Some(mode) = current else { return };
            for v in st.vmas.values_mut().filter(|v| !v.is_special()) {
                v.mlock = mode;
            }
            st.merge_around(0, self.max_addr);
        }
        if current == Some(Mlock::Locked) {
            self.prefault(0, self.max_addr, true);
        }
    }

    /// How mlockall(MCL_FUTURE) has new mappings locked.
    pub fn future_mlock(&self) -> Mlock {
        self.lock().def_mlock
    }

    /// The mlock state of the mapping at `addr`, if one is there.
    pub fn mlock_at(&self, addr: u64) -> Option<Mlock> {
        self.lock().vma_at(addr).map(|(_, v)| v.mlock)
    }

    /// Populates the mappings of `[start, end)` that are accessible (Linux's
    /// mm_populate skips PROT_NONE), all or (`locked_only`) those mlock
    /// populates, as far as files reach; best effort, as Linux's, whose pages
    /// may fail to come in.
    pub fn prefault(&self, start: u64, end: u64, locked_only: bool) {
        let mut st = self.lock();
        let first = st.vma_at(start).map_or(start, |(s, _)| s);
        let wanted = |v: &Vma| v.perms != Perms::NONE && (!locked_only || v.mlock == Mlock::Locked);
        let vmas: Vec<(u64, u64)> = st.vmas.range(first..end).filter(|(_, v)| wanted(v)).map(|(&s, v)| (s, v.end)).collect();
        for (vstart, vend) in vmas {
            let mut at = vstart.max(start);
            while at < vend.min(end) && self.populate(&mut st, vstart, at, true).is_ok() {
                at = (at & !(FAULT_REGION - 1)) + FAULT_REGION;
            }
        }
    }

    /// The NUMA policy mbind gave the mapping at `addr` (EFAULT: none there).
    pub fn policy_at(&self, addr: u64) -> SysResult<Option<Arc<super::mempolicy::MemPolicy>>> {
        self.lock().vma_at(addr).map(|(_, v)| v.policy.clone()).ok_or_else(|| errno!(EFAULT))
    }

    /// Changes each VMA of `[addr, end)` (split at both ends) with `change`, in
    /// order, up to the first that `check` refuses (its error); `hole` if part of
    /// the range is unmapped, with what `holes` says changed. What became alike
    /// merges again.
    fn update_vmas(&self, addr: u64, end: u64, holes: Holes, hole: Errno, check: impl Fn(&Vma) -> SysResult<()>, change: impl Fn(&mut Vma)) -> SysResult<()> {
        let mut st = self.lock();
        if holes == Holes::Refuse && !st.fully_mapped(addr, end) {
            return Err(hole);
        }
        // The mapped pieces to change, in order, up to the first mapping `check`
        // refuses (or the first hole, with `Holes::StopAt`).
        let (mut pieces, mut at, mut unmapped, mut refused) = (Vec::new(), addr, false, None);
        let first = st.vma_at(addr).map_or(addr, |(s, _)| s);
        for (&s, v) in st.vmas.range(first..end) {
            if s > at {
                unmapped = true;
                if holes == Holes::StopAt {
                    break;
                }
            }
            if let Err(e) = check(v) {
                refused = Some(e);
                break;
            }
            pieces.push((s.max(addr), v.end.min(end)));
            at = v.end.min(end);
        }
        unmapped |= refused.is_none() && at < end;
        for &(s, e) in &pieces {
            st.split_at(s);
            st.split_at(e);
            for (_, v) in st.vmas.range_mut(s..e) {
                change(v);
            }
        }
        st.merge_around(addr, end);
        match refused {
            Some(e) => Err(e),
            None if unmapped => Err(hole),
            None => Ok(()),
        }
    }

    /// mincore: one byte per page, 1 where the page is populated.
    pub fn mincore(&self, addr: u64, len: u64) -> SysResult<Vec<u8>> {
        if addr % PAGE_SIZE != 0 {
            return Err(errno!(EINVAL));
        }
        let len = page_up(len).ok_or_else(|| errno!(ENOMEM))?;
        let end = self.check_range(addr, len)?;
        let st = self.lock();
        if !st.fully_mapped(addr, end) {
            return Err(errno!(ENOMEM));
        }
        let mut out = vec![0u8; (len / PAGE_SIZE) as usize];
        for (&s, p) in st.pmas.range(..end).rev().take_while(|(_, p)| p.end > addr) {
            for page in (s.max(addr)..p.end.min(end)).step_by(PAGE_SIZE as usize) {
                out[((page - addr) / PAGE_SIZE) as usize] = 1;
            }
        }
        Ok(out)
    }

    /// msync: writes back what shared mappings of host files stored. This
    /// address space's mappings of files that track stores are made read-only
    /// first, and synced, so that none of its stores escapes notice any more: the
    /// pages written back are then clean, unless another address space may still
    /// store to them unnoticed.
    pub fn msync(&self, ctx: &mut dyn Context, addr: u64, len: u64) -> SysResult<()> {
        if addr % PAGE_SIZE != 0 {
            return Err(errno!(EINVAL));
        }
        self.require_mapped(addr, len)?;
        let end = addr.saturating_add(len);
        let shared: Vec<_> = {
            let st = self.lock();
            let first = st.vma_at(addr).map_or(addr, |(s, _)| s);
            st.vmas.range(first..end).filter(|(_, v)| v.shared).filter_map(|(_, v)| v.file.as_ref().map(|f| f.pages.clone())).collect()
        };
        let tracked: Vec<_> = shared.iter().filter(|p| p.tracks_writes()).cloned().collect();
        if !tracked.is_empty() {
            self.write_protect(&tracked);
            self.sync_then_release(ctx, Vec::new())?;
            tracked.iter().for_each(|p| p.drop_writer(&self.mapper));
        }
        // Outside the lock: writing back is host I/O.
        shared.iter().try_for_each(|p| p.sync())
    }

    /// Maps every page of `files` this address space maps shared read-only until
    /// its next store (queued).
    fn write_protect(&self, files: &[Arc<dyn super::FilePages>]) {
        let same = |a: &Arc<dyn super::FilePages>, b: &Arc<dyn super::FilePages>| Arc::as_ptr(a) as *const () == Arc::as_ptr(b) as *const ();
        let mut st = self.lock();
        let ranges: Vec<(u64, u64)> = st
            .vmas
            .iter()
            .filter(|(_, v)| v.shared && v.file.as_ref().is_some_and(|f| files.iter().any(|p| same(p, &f.pages))))
            .map(|(&s, v)| (s, v.end))
            .collect();
        let mut queued = 0;
        for (s, e) in ranges {
            for (&ps, p) in st.pmas.range_mut(s..e) {
                p.clean = true;
                if p.mapped.write {
                    p.mapped = Perms { write: false, ..p.mapped };
                    self.aspace.protect(ps, p.end - ps, p.mapped);
                    queued += 1;
                }
            }
        }
        st.changes += queued;
    }

    /// ENOMEM unless the pages of `[addr, addr+len)` are all mapped (msync, mlock).
    pub fn require_mapped(&self, addr: u64, len: u64) -> SysResult<()> {
        let start = page_down(addr);
        let len = addr.checked_add(len).and_then(page_up).map(|e| e - start).ok_or_else(|| errno!(ENOMEM))?;
        let end = self.check_range(start, len)?;
        if self.lock().fully_mapped(start, end) { Ok(()) } else { Err(errno!(ENOMEM)) }
    }
}
