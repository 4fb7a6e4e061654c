//! File leases (fcntl F_SETLEASE, F_GETLEASE), as Linux's fs/locks.c keeps them:
//! a lease belongs to an open file description of a regular file; an open (or
//! truncate) that conflicts with it marks it breaking, toward F_RDLCK for a
//! reader and F_UNLCK for a writer, and waits until its holder gives way or
//! lease-break-time passes, when the lease is forced to its target
//! (`time_out`, run lazily by everyone who looks, as Linux's time_out_leases).
//!
//! Leases need to know who else has the file open, so every open of a regular
//! file is counted here (`OpenCount`, kept by the description's `FileLocks`),
//! as Linux's i_writecount and i_readcount.

use super::locks::{FileId, Owner, F_RDLCK, F_UNLCK, F_WRLCK};
use super::{FileDescription, WaitQueue};
use rvisor_abi::{error, SysResult};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

/// /proc/sys/fs/lease-break-time's default, in seconds.
const LEASE_BREAK_TIME: i32 = 45;

/// A pending break: when it started forcing the lease (None: never, with a
/// lease-break-time of 0).
type Pending = Option<Option<Instant>>;

pub struct Lease {
    /// The description that holds it.
    owner: Owner,
    /// That description, whose F_SETOWN owner a break signals, with `fd` as si_fd.
    file: Weak<dyn FileDescription>,
    fd: i32,
    kind: i16,
    /// The process that took it, for /proc/locks.
    pid: i32,
    /// An opener for writing asked for F_UNLCK (Linux's FL_UNLOCK_PENDING).
    unlock: Pending,
    /// An opener for reading asked for F_RDLCK (FL_DOWNGRADE_PENDING).
    downgrade: Pending,
}

impl Lease {
    fn breaking(&self) -> bool {
        self.unlock.is_some() || self.downgrade.is_some()
    }

    /// What the holder is asked to make it (Linux's target_leasetype).
    fn target(&self) -> i16 {
        if self.unlock.is_some() {
            F_UNLCK
        } else if self.downgrade.is_some() {
            F_RDLCK
        } else {
            self.kind
        }
    }

    /// An opener wanting `write` must wait for it (Linux's leases_conflict: any
    /// write on either side, whoever holds it).
    fn conflicts(&self, write: bool) -> bool {
        write || self.kind == F_WRLCK
    }
}

/// One regular file's opens and leases.
#[derive(Default)]
struct File {
    /// Descriptions open read-only, and open for writing.
    readers: usize,
    writers: usize,
    leases: Vec<Lease>,
    /// Where /proc/locks finds the file; set with the first lease.
    id: Option<FileId>,
}

impl File {
    /// Forces the leases whose breaks ran out of time to their targets; true if
    /// any changed.
    fn time_out(&mut self, now: Instant) -> bool {
        let past = |p: Pending| matches!(p, Some(Some(at)) if at <= now);
        let before = self.leases.len();
        let mut changed = false;
        for l in &mut self.leases {
            if past(l.downgrade) {
                modify(l, F_RDLCK);
                changed = true;
            }
            if past(l.unlock) {
                l.kind = F_UNLCK;
                changed = true;
            }
        }
        self.leases.retain(|l| l.kind != F_UNLCK);
        changed || self.leases.len() != before
    }

    fn is_unused(&self) -> bool {
        self.readers == 0 && self.writers == 0 && self.leases.is_empty()
    }
}

/// A holder (or a timeout) changes a lease to `kind` (Linux's lease_modify and
/// lease_clear_pending): F_RDLCK settles a downgrade, F_UNLCK everything.
fn modify(l: &mut Lease, kind: i16) {
    l.kind = kind;
    match kind {
        F_UNLCK => {
            l.unlock = None;
            l.downgrade = None;
        }
        F_RDLCK => l.downgrade = None,
        _ => {}
    }
}

pub struct Leases {
    /// By inode key. A leaf lock, never held while a signal is sent or a task waits.
    files: Mutex<HashMap<usize, File>>,
    /// Openers waiting for a break, woken by every change of a lease.
    pub waiters: WaitQueue,
    /// /proc/sys/fs/lease-break-time, in seconds; 0 or less waits for the holder.
    pub break_time: AtomicI32,
}

impl Default for Leases {
    fn default() -> Leases {
        Leases { files: Mutex::default(), waiters: WaitQueue::default(), break_time: AtomicI32::new(LEASE_BREAK_TIME) }
    }
}

/// What a break did: the holders to signal (their descriptions and si_fd), and
/// whether the opener must wait.
pub struct Break {
    pub signal: Vec<(Weak<dyn FileDescription>, i32)>,
    pub blocked: bool,
}

impl Leases {
    fn lock(&self) -> MutexGuard<'_, HashMap<usize, File>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn counted(&self, key: usize, read_only: bool, write: bool, add: bool) {
        let mut t = self.lock();
        let f = t.entry(key).or_default();
        let step = |n: &mut usize| *n = if add { *n + 1 } else { n.saturating_sub(1) };
        if write {
            step(&mut f.writers);
        } else if read_only {
            step(&mut f.readers);
        }
        if f.is_unused() {
            t.remove(&key);
        }
    }

    /// F_SETLEASE F_RDLCK or F_WRLCK by the description `owner` (counted as
    /// `own`: read-only, writing), as Linux's generic_add_lease: EAGAIN if the
    /// file is open for writing (for a write lease: open at all) by anyone else,
    /// or another description holds a lease a write lease would exclude, or one
    /// is being broken for a writer.
    #[allow(clippy::too_many_arguments)]
    pub fn set(&self, key: usize, id: FileId, owner: Owner, file: Weak<dyn FileDescription>, fd: i32, kind: i16, own: (bool, bool), pid: i32) -> SysResult<()> {
        let mut t = self.lock();
        let f = t.entry(key).or_default();
        let woke = f.time_out(Instant::now());
        let (own_reader, own_writer) = (usize::from(own.0), usize::from(own.1));
        let refused = match kind {
            F_RDLCK => f.writers > 0,
            _ => f.writers != own_writer || f.readers != own_reader,
        } || f.leases.iter().any(|l| l.owner != owner && (kind == F_WRLCK || l.unlock.is_some()));
        let r = if refused {
            error!(EAGAIN)
        } else {
            match f.leases.iter_mut().find(|l| l.owner == owner) {
                Some(l) => {
                    modify(l, kind);
                    l.fd = fd;
                    l.file = file;
                }
                None => f.leases.push(Lease { owner, file, fd, kind, pid, unlock: None, downgrade: None }),
            }
            f.id.get_or_insert(id);
            Ok(())
        };
        if f.is_unused() {
            t.remove(&key);
        }
        drop(t);
        if woke || r.is_ok() {
            self.waiters.notify();
        }
        r
    }

    /// F_SETLEASE F_UNLCK: EAGAIN if `owner` holds no lease on the file.
    pub fn unlock(&self, key: usize, owner: Owner) -> SysResult<()> {
        let mut t = self.lock();
        let Some(f) = t.get_mut(&key) else { return error!(EAGAIN) };
        f.time_out(Instant::now());
        let before = f.leases.len();
        f.leases.retain(|l| l.owner != owner);
        let found = f.leases.len() != before;
        if f.is_unused() {
            t.remove(&key);
        }
        drop(t);
        self.waiters.notify();
        if found { Ok(()) } else { error!(EAGAIN) }
    }

    /// F_GETLEASE: the type `owner`'s lease has, or is being broken to.
    pub fn get(&self, key: usize, owner: Owner) -> i16 {
        let mut t = self.lock();
        let Some(f) = t.get_mut(&key) else { return F_UNLCK };
        let woke = f.time_out(Instant::now());
        let kind = f.leases.iter().find(|l| l.owner == owner).map_or(F_UNLCK, Lease::target);
        drop(t);
        if woke {
            self.waiters.notify();
        }
        kind
    }

    /// An open for writing (`write`) or reading starts breaking the leases it
    /// conflicts with (Linux's __break_lease up to its wait): each not yet asked
    /// is marked, with the time it will be forced by, and its holder is to be
    /// signalled.
    pub fn start_break(&self, key: usize, write: bool) -> Break {
        let mut out = Break { signal: Vec::new(), blocked: false };
        let mut t = self.lock();
        let Some(f) = t.get_mut(&key) else { return out };
        let now = Instant::now();
        if f.time_out(now) {
            self.waiters.notify();
        }
        let secs = self.break_time.load(Ordering::Relaxed);
        let by = u64::try_from(secs).ok().filter(|&s| s > 0).and_then(|s| now.checked_add(std::time::Duration::from_secs(s)));
        for l in f.leases.iter_mut().filter(|l| l.conflicts(write)) {
            if write {
                if l.unlock.is_some() {
                    continue;
                }
                l.unlock = Some(by);
            } else {
                if l.breaking() {
                    continue;
                }
                l.downgrade = Some(by);
            }
            out.signal.push((l.file.clone(), l.fd));
        }
        out.blocked = f.leases.iter().any(|l| l.conflicts(write));
        out
    }

    /// Whether an opener wanting `write` must still wait, after forcing the
    /// breaks that ran out of time; and, if so, the earliest time one will.
    pub fn waiting(&self, key: usize, write: bool) -> Option<Option<Instant>> {
        let mut t = self.lock();
        let f = t.get_mut(&key)?;
        if f.time_out(Instant::now()) {
            self.waiters.notify();
        }
        let conflicting: Vec<&Lease> = f.leases.iter().filter(|l| l.conflicts(write)).collect();
        if conflicting.is_empty() {
            return None;
        }
        Some(conflicting.iter().flat_map(|l| [l.unlock, l.downgrade]).flatten().flatten().min())
    }

    /// The description `owner` went (its last close): its lease goes too.
    pub fn release(&self, key: usize, owner: Owner) {
        let mut t = self.lock();
        let Some(f) = t.get_mut(&key) else { return };
        let before = f.leases.len();
        f.leases.retain(|l| l.owner != owner);
        let gone = f.leases.len() != before;
        if f.is_unused() {
            t.remove(&key);
        }
        drop(t);
        if gone {
            self.waiters.notify();
        }
    }

    /// Every lease, for /proc/locks: its file, the type it has or is broken to,
    /// whether it is breaking, and who took it.
    pub fn for_each(&self, mut f: impl FnMut(&FileId, i16, bool, i32)) {
        let t = self.lock();
        let mut keys: Vec<&usize> = t.keys().collect();
        keys.sort();
        for file in keys.into_iter().filter_map(|k| t.get(k)) {
            let Some(id) = &file.id else { continue };
            for l in &file.leases {
                f(id, l.target(), l.breaking(), l.pid);
            }
        }
    }
}

/// A description open on a regular file, counted while it lives.
pub struct OpenCount {
    table: Arc<super::locks::LockTable>,
    key: usize,
    /// Open read-only, open for writing.
    pub read_only: bool,
    pub write: bool,
}

impl OpenCount {
    /// Counts an open of the file `key` with `flags`' access mode (O_PATH counts
    /// as neither, as on Linux).
    pub fn new(table: &Arc<super::locks::LockTable>, key: usize, flags: u32) -> OpenCount {
        let of = super::OpenFlags(flags);
        let path = flags & super::OpenFlags::PATH != 0;
        let write = !path && of.writable();
        let read_only = !path && !write && of.readable();
        table.leases.counted(key, read_only, write, true);
        OpenCount { table: table.clone(), key, read_only, write }
    }
}

impl Drop for OpenCount {
    fn drop(&mut self) {
        self.table.leases.counted(self.key, self.read_only, self.write, false);
    }
}
