//! Syscall patching (systrap's `--systrap-patch`): a site that traps again and
//! again (`mov $nr, %eax; syscall`) is rewritten to jump, through its entry in a
//! `[usertrap]` table mapped in the app's address space, to the platform's
//! trampoline, which hands the call to the Sentry without a host signal. See
//! `rvisor_platform::usertrap` for the code and docs/systrap-patching.md.
//!
//! The kernel trusts only its own record of the sites here, never the table's
//! bytes (the app cannot write them, but may map over them): an event is taken for
//! a patched call only at an entry of the table still mapped as `[usertrap]`, and a
//! site only while it still holds the jump the kernel wrote.

use super::vma::{Mlock, Vma};
use super::MemoryManager;
use rvisor_abi::UserAddr;
use rvisor_platform::usertrap::{self as ut, Detour, SiteKind, ENTRIES, SITE_LEN, TABLE_LEN, TABLE_RANGE};
use rvisor_platform::Perms;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

const NAME: &str = "[usertrap]";
/// How many sites that trapped once (patched at the second trap), and how many
/// that are none, are remembered.
const SEEN_MAX: usize = 4096;

/// One address space's patched sites: fork copies them (the child has the same
/// table and code, copy-on-write), exec starts afresh.
#[derive(Default)]
pub(crate) struct Usertrap {
    /// The table's address, once mapped.
    table: Option<u64>,
    /// The site each taken entry serves (address 0: an entry whose writing failed).
    entries: HashMap<usize, Site>,
    /// Entries by their site's address.
    by_site: HashMap<u64, usize>,
    /// Calls (by the address after their `syscall`) that trapped once, and those
    /// found to come from no site.
    seen: HashSet<u64>,
    rejected: HashSet<u64>,
    /// No more patching here: the table's range was taken, or it is full.
    done: bool,
}

impl Usertrap {
    /// What a forked child keeps: the sites its copy of the code jumps from.
    pub(crate) fn for_fork(&self) -> Usertrap {
        Usertrap { table: self.table, entries: self.entries.clone(), by_site: self.by_site.clone(), done: self.done, ..Usertrap::default() }
    }

    /// A free entry for a site of `kind` (a `Mov` site leaves those a `Read` one could take).
    fn free_entry(&self, table: u64, kind: SiteKind) -> Option<usize> {
        let free = |i: &usize| !self.entries.contains_key(i);
        match kind {
            SiteKind::Read => (0..ENTRIES).filter(free).find(|&i| kind.fits(table, i)),
            SiteKind::Mov => (0..ENTRIES).filter(free).find(|&i| !SiteKind::Read.fits(table, i)).or_else(|| (0..ENTRIES).find(free)),
        }
    }
}

#[derive(Clone, Copy)]
struct Site {
    addr: u64,
    nr: u32,
    kind: SiteKind,
}

/// Serialises the writing of a site's jump with the detours of threads that ran
/// into it half-written: a detour waits until the jump is whole. Taken before the
/// address space's lock.
#[derive(Default)]
pub(crate) struct PatchLock(Mutex<()>);

/// What a syscall event that came through the table stands for.
pub struct PatchedCall {
    /// Where the call returns: its rip and rcx.
    pub ret: u64,
    pub nr: u32,
}

impl MemoryManager {
    /// The patched call an event at `rip` is (the trampoline's, reported as after
    /// the entry's `syscall`, or that `syscall`'s own trap).
    pub fn patched_call(&self, rip: u64) -> Option<PatchedCall> {
        if !(TABLE_RANGE.0..TABLE_RANGE.1).contains(&rip) {
            return None;
        }
        let st = self.lock();
        let table = st.usertrap.table?;
        let i = ut::entry_at(table, rip, ut::AFTER_SYSCALL)?;
        let site = *st.usertrap.entries.get(&i).filter(|s| s.addr != 0)?;
        st.vma_at(rip).filter(|(_, v)| v.name == Some(NAME))?;
        let ret = match site.kind {
            SiteKind::Mov => site.addr + SITE_LEN,
            SiteKind::Read => rip,
        };
        Some(PatchedCall { ret, nr: site.nr })
    }

    /// Where a thread at `rip` should go instead, if `rip` is inside a patched
    /// site (`SiteKind::detour`): with `restart`, a syscall being rewound to run
    /// again onto a `syscall` that is no more; else a thread that met an invalid
    /// opcode there, having run old bytes while the site was being patched.
    pub fn patched_site_detour(&self, rip: u64, restart: bool) -> Option<u64> {
        let (site, entry, detour) = {
            let st = self.lock();
            let table = st.usertrap.table?;
            [2, 4, 5, 7].into_iter().find_map(|off| {
                let at = rip.checked_sub(off)?;
                let i = *st.usertrap.by_site.get(&at)?;
                let site = st.usertrap.entries.get(&i)?;
                Some((at, ut::entry_addr(table, i), site.kind.detour(off, restart)?))
            })?
        };
        // A site is recorded before its jump is written: wait for the writing.
        let _written = self.patching.0.lock().unwrap_or_else(|e| e.into_inner());
        if !self.holds_jump(site, entry) {
            return None;
        }
        if !restart {
            tracing::debug!("usertrap: a thread ran into the patch of {site:#x}: {detour:?}");
        }
        Some(match detour {
            Detour::Resume => entry + ut::RESUME,
            Detour::Site => site,
            Detour::AfterCall => entry + ut::AFTER_SYSCALL,
        })
    }

    /// Where a thread about to run one instruction at a time (the trap flag) at
    /// `rip` goes instead: at a patched site's jump, or in its entry before the
    /// fallback, to the fallback, whose `syscall` traps; the trampoline is never
    /// single-stepped (a trap there would find the thread's slot in use).
    pub fn stepping_detour(&self, rip: u64) -> Option<u64> {
        let st = self.lock();
        let table = st.usertrap.table?;
        let (i, at_site) = match st.usertrap.by_site.get(&rip) {
            Some(&i) => (i, true),
            None => {
                let i = (rip.checked_sub(table + ut::ENTRY)? / ut::ENTRY) as usize;
                (i < ENTRIES && rip < ut::entry_addr(table, i) + ut::FALLBACK).then_some((i, false))?
            }
        };
        st.usertrap.entries.get(&i).filter(|s| s.addr != 0)?;
        let entry = ut::entry_addr(table, i);
        drop(st);
        (!at_site || self.holds_jump(rip, entry)).then_some(entry + ut::FALLBACK)
    }

    /// Whether the site at `site` still holds the jump to `entry` the kernel wrote
    /// (an munmap and mmap of the code may have replaced it).
    fn holds_jump(&self, site: u64, entry: u64) -> bool {
        let mut now = [0u8; SITE_LEN as usize];
        self.read_bytes_remote(UserAddr(site), &mut now) == now.len() && now == ut::jump_to(entry)
    }

    /// Notes that the call `nr` trapped from a `syscall` ending at `rip`, and patches
    /// its site the second time. `trampoline`: where entries jump. Returns where the
    /// caller goes on instead of `rip`, if its site's code there is gone (a `Read`
    /// site's `cmp`: the entry's copy of it).
    pub fn maybe_patch(&self, rip: u64, nr: u64, trampoline: u64) -> Option<u64> {
        let nr32 = u32::try_from(nr).ok()?;
        {
            let mut st = self.lock();
            let u = &mut st.usertrap;
            if u.done || u.rejected.contains(&rip) {
                return None;
            }
            if !u.seen.contains(&rip) {
                if u.seen.len() < SEEN_MAX {
                    u.seen.insert(rip);
                }
                return None;
            }
            u.seen.remove(&rip);
        }
        let start = rip.checked_sub(SITE_LEN)?;
        // The 7 bytes before the trap and 6 after it; what could not be read stays nop.
        let mut bytes = [0x90u8; SITE_LEN as usize + 6];
        let n = self.read_bytes_remote(UserAddr(start), &mut bytes);
        let found = (n >= SITE_LEN as usize).then(|| ut::site_before(&bytes, rip, nr)).flatten();
        let _writing = self.patching.0.lock().unwrap_or_else(|e| e.into_inner());
        let (site, kind, table, i, new_table) = {
            let mut st = self.lock();
            let Some((site, kind)) = found else {
                if st.usertrap.rejected.len() < SEEN_MAX {
                    st.usertrap.rejected.insert(rip);
                }
                return None;
            };
            if st.usertrap.done || st.usertrap.by_site.contains_key(&site) {
                return None;
            }
            // The site in one private executable mapping: a write to a shared one
            // would reach the file or other processes.
            match st.vma_at(site) {
                Some((_, v)) if v.end >= site + kind.code_len() && !v.shared && v.perms.exec && v.name.is_none() => {}
                _ => return None,
            }
            let (table, new_table) = match st.usertrap.table {
                Some(t) => (t, false),
                None => match self.place_table(&mut st, site) {
                    Some(t) => (t, true),
                    None => {
                        st.usertrap.done = true;
                        return None;
                    }
                },
            };
            let Some(i) = st.usertrap.free_entry(table, kind) else {
                // No entry left for this kind: a full table ends patching, one
                // without a `Read` entry free only this site's.
                if kind == SiteKind::Mov {
                    st.usertrap.done = true;
                } else if st.usertrap.rejected.len() < SEEN_MAX {
                    st.usertrap.rejected.insert(rip);
                }
                return None;
            };
            st.usertrap.entries.insert(i, Site { addr: site, nr: nr32, kind });
            st.usertrap.by_site.insert(site, i);
            (site, kind, table, i, new_table)
        };
        let entry = ut::entry_addr(table, i);
        let mut wrote = !new_table || self.write_bytes_force(UserAddr(table), &trampoline.to_le_bytes()).is_ok();
        wrote = wrote && self.write_bytes_force(UserAddr(entry), &ut::entry_code(table, i, site, nr32, kind)).is_ok();
        if !wrote {
            self.forget(site);
            return None;
        }
        // In steps, each of which leaves code other threads may run (see
        // `ut::patch_steps`); a private file mapping gets its own copy first. The
        // bytes are not read again: another thread of this address space could
        // change them in between, but only to break its own code.
        for (off, b) in ut::patch_steps(entry, kind) {
            if self.write_bytes_force(UserAddr(site + off), &b).is_err() {
                tracing::warn!("usertrap: the site at {site:#x} could not be patched whole");
                return None;
            }
        }
        tracing::debug!("usertrap: patched syscall {nr32} at {site:#x} (entry {i}, {kind:?})");
        (kind == SiteKind::Read).then_some(entry + ut::AFTER_SYSCALL)
    }

    fn forget(&self, site: u64) {
        let mut st = self.lock();
        if let Some(i) = st.usertrap.by_site.remove(&site) {
            // The entry stays taken (its index names it); it is never used.
            if let Some(s) = st.usertrap.entries.get_mut(&i) {
                s.addr = 0;
            }
        }
    }

    /// Maps the table on a free, random-ish page run of its range (the site's
    /// address picks it, so that it differs between programs); None if the range
    /// is taken.
    fn place_table(&self, st: &mut super::MmState, seed: u64) -> Option<u64> {
        let slots = (TABLE_RANGE.1 - TABLE_RANGE.0 - TABLE_LEN) / rvisor_abi::PAGE_SIZE + 1;
        let first = (seed ^ (seed >> 12) ^ (seed >> 24)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
        let table = (0..slots).map(|k| TABLE_RANGE.0 + ((first + k) % slots) * rvisor_abi::PAGE_SIZE).find(|&a| st.is_free(a, a + TABLE_LEN))?;
        let perms = Perms { read: true, write: false, exec: true };
        st.vmas.insert(table, Vma { end: table + TABLE_LEN, perms, shared: false, growsdown: false, name: Some(NAME), may_write: false, may_exec: true, file: None, shmem_ino: 0, on_fork: Default::default(), userfault: None, sealed: false, policy: None, mlock: Mlock::Unlocked });
        st.usertrap.table = Some(table);
        Some(table)
    }
}
