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
use rvisor_platform::usertrap::{self as ut, ENTRIES, SITE_LEN, TABLE_LEN, TABLE_RANGE};
use rvisor_platform::Perms;
use std::collections::{HashMap, HashSet};

const NAME: &str = "[usertrap]";
/// How many sites that trapped once (patched at the second trap), and how many
/// that are none, are remembered.
const SEEN_MAX: usize = 4096;

/// One address space's patched sites: fork copies it (the child has the same
/// table and code, copy-on-write), exec starts afresh.
#[derive(Clone, Default)]
pub(crate) struct Usertrap {
    /// The table's address, once mapped.
    table: Option<u64>,
    /// Entry i's site and number.
    sites: Vec<(u64, u32)>,
    by_site: HashMap<u64, usize>,
    /// Sites that trapped once, and addresses found to be no site.
    seen: HashSet<u64>,
    rejected: HashSet<u64>,
    /// No more patching here: the table's range was taken, or it is full.
    done: bool,
}

/// What a syscall event that came through the table stands for.
pub struct PatchedCall {
    /// The address after the site: the call's rip, rcx.
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
        let &(site, nr) = st.usertrap.sites.get(i)?;
        st.vma_at(rip).filter(|(_, v)| v.name == Some(NAME))?;
        Some(PatchedCall { ret: site + SITE_LEN, nr })
    }

    /// Where a thread at `rip` should go instead, if `rip` is inside a patched site
    /// at the `syscall` that is no more (byte 5): with `restart`, a syscall being
    /// rewound to run again goes to its entry's own `syscall` (with whatever number
    /// rax has); else (an invalid opcode there: a thread that ran the old `mov`
    /// while the site was patched) the thread starts the site again.
    pub fn patched_site_detour(&self, rip: u64, restart: bool) -> Option<u64> {
        let site = rip.checked_sub(5)?;
        let (i, table) = {
            let st = self.lock();
            (*st.usertrap.by_site.get(&site)?, st.usertrap.table?)
        };
        let entry = ut::entry_addr(table, i);
        let mut now = [0u8; SITE_LEN as usize];
        if self.read_bytes_remote(UserAddr(site), &mut now) != now.len() || now != jump_bytes(entry) {
            return None;
        }
        if !restart {
            tracing::debug!("usertrap: a thread ran into the patch of {site:#x}: back to the site");
        }
        Some(if restart { entry + ut::RESUME } else { site })
    }

    /// Notes that the call `nr` trapped from the `syscall` at `rip - 2`, and patches
    /// the site the second time. `trampoline`: where entries jump.
    pub fn maybe_patch(&self, rip: u64, nr: u64, trampoline: u64) {
        let Some(site) = rip.checked_sub(SITE_LEN) else { return };
        let Ok(nr32) = u32::try_from(nr) else { return };
        {
            let mut st = self.lock();
            let u = &mut st.usertrap;
            if u.done || u.by_site.contains_key(&site) || u.rejected.contains(&site) {
                return;
            }
            if !u.seen.contains(&site) {
                if u.seen.len() < SEEN_MAX {
                    u.seen.insert(site);
                }
                return;
            }
            u.seen.remove(&site);
        }
        let mut bytes = [0u8; SITE_LEN as usize];
        let is_site = self.read_bytes_remote(UserAddr(site), &mut bytes) == bytes.len() && ut::is_site(&bytes, nr);
        let (table, i, new_table) = {
            let mut st = self.lock();
            if !is_site {
                if st.usertrap.rejected.len() < SEEN_MAX {
                    st.usertrap.rejected.insert(site);
                }
                return;
            }
            if st.usertrap.done || st.usertrap.by_site.contains_key(&site) {
                return;
            }
            // The 7 bytes in one private executable mapping: a write to a shared
            // one would reach the file or other processes.
            match st.vma_at(site) {
                Some((_, v)) if v.end >= rip && !v.shared && v.perms.exec && v.name.is_none() => {}
                _ => return,
            }
            if st.usertrap.sites.len() >= ENTRIES {
                st.usertrap.done = true;
                return;
            }
            let (table, new_table) = match st.usertrap.table {
                Some(t) => (t, false),
                None => match self.place_table(&mut st, site) {
                    Some(t) => (t, true),
                    None => {
                        st.usertrap.done = true;
                        return;
                    }
                },
            };
            let i = st.usertrap.sites.len();
            st.usertrap.sites.push((site, nr32));
            st.usertrap.by_site.insert(site, i);
            (table, i, new_table)
        };
        let entry = ut::entry_addr(table, i);
        let mut wrote = !new_table || self.write_bytes_force(UserAddr(table), &trampoline.to_le_bytes()).is_ok();
        wrote = wrote && self.write_bytes_force(UserAddr(entry), &ut::entry_code(table, i, site, nr32)).is_ok();
        if !wrote {
            self.forget(site);
            return;
        }
        // In three steps, each of which leaves code other threads may run (see
        // `ut::patch_steps`); a private file mapping gets its own copy first. The
        // bytes are not read again: another thread of this address space could
        // change them in between, but only to break its own code.
        for (off, b) in ut::patch_steps(entry) {
            if self.write_bytes_force(UserAddr(site + off), &b).is_err() {
                tracing::warn!("usertrap: the site at {site:#x} could not be patched whole");
                return;
            }
        }
        tracing::debug!("usertrap: patched syscall {nr32} at {site:#x} (entry {i})");
    }

    fn forget(&self, site: u64) {
        let mut st = self.lock();
        if let Some(i) = st.usertrap.by_site.remove(&site) {
            // The entry stays taken (its index names it); it is never used.
            st.usertrap.sites[i] = (0, 0);
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

/// The jump the kernel writes over a site whose entry is at `entry`.
fn jump_bytes(entry: u64) -> [u8; SITE_LEN as usize] {
    let mut b = [0u8; SITE_LEN as usize];
    for (off, bytes) in ut::patch_steps(entry) {
        b[off as usize..off as usize + bytes.len()].copy_from_slice(&bytes);
    }
    b
}
