//! Advisory file locks: POSIX record locks (fcntl F_SETLK/F_SETLKW/F_GETLK, owned by
//! a process), open-file-description locks (F_OFD_*), and flock. One table for the
//! sandbox, keyed by inode; waiters sleep on one wait queue woken by every unlock.
//! A description's own locks (OFD and flock) go when the description does
//! (`FileLocks`, dropped with it), as Linux's `locks_remove_file` at the last `fput`;
//! a process's record locks go when it closes any descriptor of the file or ends.

use super::WaitQueue;
use rvisor_abi::{error, SysResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

pub const F_RDLCK: i16 = 0;
pub const F_WRLCK: i16 = 1;
pub const F_UNLCK: i16 = 2;

/// Who holds a lock: a process (POSIX record locks) or an open file description
/// (OFD locks and flock), identified by the address of its `FileLocks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    Process(i32),
    File(usize),
}

#[derive(Clone, Copy, Debug)]
pub struct Lock {
    pub owner: Owner,
    pub kind: i16,
    /// [start, end) in bytes; end == u64::MAX means "to end of file and beyond".
    pub start: u64,
    pub end: u64,
}

impl Lock {
    fn conflicts(&self, other: &Lock) -> bool {
        self.owner != other.owner && self.start < other.end && other.start < self.end && (self.kind == F_WRLCK || other.kind == F_WRLCK)
    }
}

/// Keyed by inode identity. `flock` locks live in a separate table: they never
/// conflict with record locks, as on Linux.
#[derive(Default)]
pub struct LockTable {
    records: Mutex<HashMap<usize, Vec<Lock>>>,
    flocks: Mutex<HashMap<usize, Vec<Lock>>>,
    pub waiters: WaitQueue,
}

impl LockTable {
    fn table(&self, flock: bool) -> &Mutex<HashMap<usize, Vec<Lock>>> {
        if flock { &self.flocks } else { &self.records }
    }

    /// The first lock that would block `want`, if any.
    pub fn conflict(&self, inode: usize, want: &Lock, flock: bool) -> Option<Lock> {
        let t = self.table(flock).lock().unwrap_or_else(|e| e.into_inner());
        t.get(&inode)?.iter().find(|l| l.conflicts(want)).copied()
    }

    /// Applies `want` (F_UNLCK unlocks the range) if nothing conflicts; EAGAIN otherwise.
    pub fn set(&self, inode: usize, want: Lock, flock: bool) -> SysResult<()> {
        let mut t = self.table(flock).lock().unwrap_or_else(|e| e.into_inner());
        let locks = t.entry(inode).or_default();
        if want.kind != F_UNLCK && locks.iter().any(|l| l.conflicts(&want)) {
            return error!(EAGAIN);
        }
        // Carve the range out of our own locks, then add the new one.
        let mut kept = Vec::with_capacity(locks.len() + 2);
        for l in locks.drain(..) {
            if l.owner != want.owner || l.end <= want.start || want.end <= l.start {
                kept.push(l);
                continue;
            }
            if l.start < want.start {
                kept.push(Lock { end: want.start, ..l });
            }
            if want.end < l.end {
                kept.push(Lock { start: want.end, ..l });
            }
        }
        if want.kind != F_UNLCK {
            kept.push(want);
        }
        *locks = kept;
        if locks.is_empty() {
            t.remove(&inode);
        }
        drop(t);
        self.waiters.notify();
        Ok(())
    }

    /// Drops every lock `owner` holds anywhere (a process has ended).
    pub fn release_owner(&self, owner: Owner) {
        for flock in [false, true] {
            let mut t = self.table(flock).lock().unwrap_or_else(|e| e.into_inner());
            t.retain(|_, v| {
                v.retain(|l| l.owner != owner);
                !v.is_empty()
            });
        }
        self.waiters.notify();
    }

    /// Drops every lock `owner` holds on `inode` (a process closing any descriptor
    /// of the file, or the last close of a description).
    pub fn release(&self, inode: usize, owner: Owner) {
        for flock in [false, true] {
            let mut t = self.table(flock).lock().unwrap_or_else(|e| e.into_inner());
            if let Some(v) = t.get_mut(&inode) {
                v.retain(|l| l.owner != owner);
                if v.is_empty() {
                    t.remove(&inode);
                }
            }
        }
        self.waiters.notify();
    }
}

/// Part of every open file description that can hold OFD locks and flock locks:
/// the owner identity of those locks, and, once it took one, where they are, so
/// that dropping the description (its last reference: a close, a process's end,
/// close-on-exec, a dropped SCM_RIGHTS message...) releases them and wakes waiters.
#[derive(Default)]
pub struct FileLocks {
    held: OnceLock<(Arc<LockTable>, usize)>,
}

impl FileLocks {
    pub fn owner(&self) -> Owner {
        Owner::File(self as *const FileLocks as usize)
    }

    /// Records that locks on `inode` (a description's inode never changes) may be
    /// held in `table`.
    pub fn note(&self, table: &Arc<LockTable>, inode: usize) {
        let _ = self.held.get_or_init(|| (table.clone(), inode));
    }
}

impl Drop for FileLocks {
    fn drop(&mut self) {
        if let Some((table, inode)) = self.held.get() {
            table.release(*inode, self.owner());
        }
    }
}
