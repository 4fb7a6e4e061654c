//! Advisory file locks: POSIX record locks (fcntl F_SETLK/F_SETLKW/F_GETLK, owned by
//! a process), open-file-description locks (F_OFD_*), and flock. One table for the
//! sandbox, keyed by inode; waiters sleep on one wait queue woken by every unlock.
//! A description's own locks (OFD and flock) go when the description does
//! (`FileLocks`, dropped with it), as Linux's `locks_remove_file` at the last `fput`;
//! a process's record locks go when it closes any descriptor of the file or ends.
//! Leases (`leases.rs`) share the table, since they go with their description too.
//!
//! Lock order: `records`, then `flocks` (never both held by one caller today),
//! then `leases`' own; all are leaves below the caller's locks, never held while a
//! task waits or a signal is sent.

use super::inode::Inode;
use super::leases::Leases;
use super::WaitQueue;
use rvisor_abi::{error, SysResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

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
    /// The process that took it, as /proc/locks names it (-1 for OFD locks).
    pub pid: i32,
    /// [start, end) in bytes; end == u64::MAX means "to end of file and beyond".
    pub start: u64,
    pub end: u64,
}

impl Lock {
    fn conflicts(&self, other: &Lock) -> bool {
        self.owner != other.owner && self.start < other.end && other.start < self.end && (self.kind == F_WRLCK || other.kind == F_WRLCK)
    }
}

/// The file a lock is on, for /proc/locks: its inode (whose device and number are
/// read when the list is), or, for a file without one in the tree, the numbers.
#[derive(Clone)]
pub enum FileId {
    Inode(Weak<dyn Inode>),
    Numbers { dev: u64, ino: u64 },
}

impl FileId {
    /// (st_dev, st_ino), if the file still exists.
    pub fn numbers(&self) -> Option<(u64, u64)> {
        match self {
            FileId::Inode(i) => i.upgrade()?.stat().ok().map(|st| (st.st_dev, st.st_ino)),
            FileId::Numbers { dev, ino } => Some((*dev, *ino)),
        }
    }
}

/// The locks on one file.
struct Held {
    file: FileId,
    locks: Vec<Lock>,
}

/// Keyed by inode identity. `flock` locks live in a separate table: they never
/// conflict with record locks, as on Linux.
#[derive(Default)]
pub struct LockTable {
    records: Mutex<HashMap<usize, Held>>,
    flocks: Mutex<HashMap<usize, Held>>,
    pub waiters: WaitQueue,
    pub leases: Leases,
}

impl LockTable {
    fn table(&self, flock: bool) -> &Mutex<HashMap<usize, Held>> {
        if flock { &self.flocks } else { &self.records }
    }

    /// The first lock that would block `want`, if any.
    pub fn conflict(&self, inode: usize, want: &Lock, flock: bool) -> Option<Lock> {
        let t = self.table(flock).lock().unwrap_or_else(|e| e.into_inner());
        t.get(&inode)?.locks.iter().find(|l| l.conflicts(want)).copied()
    }

    /// Applies `want` (F_UNLCK unlocks the range) to the file `file` if nothing
    /// conflicts; EAGAIN otherwise.
    pub fn set(&self, inode: usize, file: &FileId, want: Lock, flock: bool) -> SysResult<()> {
        let mut t = self.table(flock).lock().unwrap_or_else(|e| e.into_inner());
        let locks = &mut t.entry(inode).or_insert_with(|| Held { file: file.clone(), locks: Vec::new() }).locks;
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
            t.retain(|_, h| {
                h.locks.retain(|l| l.owner != owner);
                !h.locks.is_empty()
            });
        }
        self.waiters.notify();
    }

    /// Drops every lock `owner` holds on `inode` (a process closing any descriptor
    /// of the file, or the last close of a description).
    pub fn release(&self, inode: usize, owner: Owner) {
        for flock in [false, true] {
            let mut t = self.table(flock).lock().unwrap_or_else(|e| e.into_inner());
            if let Some(h) = t.get_mut(&inode) {
                h.locks.retain(|l| l.owner != owner);
                if h.locks.is_empty() {
                    t.remove(&inode);
                }
            }
        }
        self.waiters.notify();
        self.leases.release(inode, owner);
    }

    /// /proc/locks: every lock and lease, as Linux's lock_get_status prints them,
    /// with pids as `pid_of` translates them (0 for a process it cannot see).
    pub fn proc_locks(&self, pid_of: impl Fn(i32) -> i32) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let mut n = 0;
        let mut line = |out: &mut String, kind: &str, mode: i16, pid: i32, file: &FileId, range: &str| {
            let Some((dev, ino)) = file.numbers() else { return };
            let (major, minor) = crate::fs::simple::major_minor(dev);
            let mode = match mode {
                F_WRLCK => "WRITE",
                F_RDLCK => "READ",
                _ => "UNLCK",
            };
            n += 1;
            let _ = writeln!(out, "{n}: {kind}{mode} {pid} {major:02x}:{minor:02x}:{ino} {range}");
        };
        for flock in [false, true] {
            let t = self.table(flock).lock().unwrap_or_else(|e| e.into_inner());
            let mut keys: Vec<&usize> = t.keys().collect();
            keys.sort();
            for h in keys.into_iter().filter_map(|k| t.get(k)) {
                for l in &h.locks {
                    let (kind, pid, range) = match (flock, l.owner) {
                        (true, _) => ("FLOCK  ADVISORY  ", pid_of(l.pid), "0 EOF".to_string()),
                        (false, owner) => {
                            let range = if l.end == u64::MAX { format!("{} EOF", l.start) } else { format!("{} {}", l.start, l.end - 1) };
                            match owner {
                                Owner::File(_) => ("OFDLCK ADVISORY  ", -1, range),
                                Owner::Process(_) => ("POSIX  ADVISORY  ", pid_of(l.pid), range),
                            }
                        }
                    };
                    line(&mut out, kind, l.kind, pid, &h.file, &range);
                }
            }
        }
        self.leases.for_each(|file, kind, breaking, pid| {
            let state = if breaking { "LEASE  BREAKING  " } else { "LEASE  ACTIVE    " };
            line(&mut out, state, kind, pid_of(pid), file, "0 EOF");
        });
        out
    }
}

/// Part of every open file description that can hold OFD locks and flock locks:
/// the owner identity of those locks, and, once it took one, where they are, so
/// that dropping the description (its last reference: a close, a process's end,
/// close-on-exec, a dropped SCM_RIGHTS message...) releases them and wakes waiters.
#[derive(Default)]
pub struct FileLocks {
    held: OnceLock<(Arc<LockTable>, usize)>,
    /// The description counted as open on its regular file, which leases consult.
    pub open: OnceLock<super::leases::OpenCount>,
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
