//! System V IPC: the sandbox's one IPC namespace. Shared memory segments (`shm.rs`),
//! semaphore sets (`sem.rs`) and message queues (`msg.rs`); their ids, keys and
//! permissions work as Linux's do.

pub mod msg;
pub mod sem;
pub mod shm;

use crate::task::ThreadGroup;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `IPC_PRIVATE`: a key that always makes a new object.
pub const IPC_PRIVATE: i32 = 0;
pub const IPC_CREAT: i32 = 0o1000;
pub const IPC_EXCL: i32 = 0o2000;
pub const IPC_RMID: i32 = 0;
pub const IPC_SET: i32 = 1;
pub const IPC_STAT: i32 = 2;
pub const IPC_INFO: i32 = 3;
/// The "new layout" bit some callers add to a ctl command; x86-64 has one layout.
pub const IPC_64: i32 = 0x100;
/// Ids are `seq * SEQ_MULTIPLIER + index`, so a reused slot gets a new id.
const SEQ_MULTIPLIER: i32 = 32768;
const CAP_IPC_OWNER: u32 = 15;
const CAP_SYS_ADMIN: u32 = 21;

/// `struct ipc64_perm`.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Ipc64Perm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    pub mode: u32,
    pub seq: u16,
    pad: [u8; 6],
    unused: [u64; 2],
}

impl Ipc64Perm {
    /// A new object's: the creator owns it, with `flags`' permission bits.
    fn new(key: i32, flags: i32, seq: u16, tg: &ThreadGroup) -> Ipc64Perm {
        let c = tg.creds();
        Ipc64Perm { key, uid: c.euid, gid: c.egid, cuid: c.euid, cgid: c.egid, mode: (flags & 0o777) as u32, seq, ..Default::default() }
    }

    /// Linux's ipcperms: whether `tg` may access the object as `flags`' permission
    /// bits ask (read 4, write 2, in any of the three positions).
    pub fn allows(&self, tg: &ThreadGroup, flags: i32) -> bool {
        let requested = ((flags >> 6) | (flags >> 3) | flags) as u32 & 0o7;
        let c = tg.creds();
        let granted = if c.euid == self.cuid || c.euid == self.uid {
            self.mode >> 6
        } else if [self.cgid, self.gid].iter().any(|&g| g == c.egid || tg.groups.lock().unwrap_or_else(|e| e.into_inner()).contains(&g)) {
            self.mode >> 3
        } else {
            self.mode
        };
        requested & !granted & 0o7 == 0 || tg.capable(CAP_IPC_OWNER)
    }

    /// Whether `tg` may change or remove the object (IPC_SET, IPC_RMID): its owner,
    /// its creator, or CAP_SYS_ADMIN.
    pub fn may_change(&self, tg: &ThreadGroup) -> bool {
        let euid = tg.creds().euid;
        euid == self.uid || euid == self.cuid || tg.capable(CAP_SYS_ADMIN)
    }
}

/// Objects of one kind by index, with the key lookup and id arithmetic.
pub struct Registry<T> {
    slots: Vec<Option<T>>,
    /// The sequence number each slot's next object gets.
    seqs: Vec<u16>,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry { slots: Vec::new(), seqs: Vec::new() }
    }
}

impl<T> Registry<T> {
    /// Puts an object in the lowest free slot (None past `max` objects); returns
    /// its id and the sequence number it was given.
    pub fn insert(&mut self, max: usize, make: impl FnOnce(u16) -> T) -> Option<(i32, &mut T)> {
        let idx = match self.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.slots.len() < max => {
                self.slots.push(None);
                self.seqs.push(0);
                self.slots.len() - 1
            }
            None => return None,
        };
        let seq = self.seqs[idx];
        self.seqs[idx] = (seq + 1) % (i32::MAX / SEQ_MULTIPLIER) as u16;
        let obj = self.slots[idx].insert(make(seq));
        Some((seq as i32 * SEQ_MULTIPLIER + idx as i32, obj))
    }

    /// The object with this id (an old id of a reused slot finds nothing).
    pub fn get(&mut self, id: i32, seq_of: impl Fn(&T) -> u16) -> Option<&mut T> {
        if id < 0 {
            return None;
        }
        let (seq, idx) = ((id / SEQ_MULTIPLIER) as u16, (id % SEQ_MULTIPLIER) as usize);
        self.slots.get_mut(idx)?.as_mut().filter(|o| seq_of(o) == seq)
    }

    /// The object in slot `idx` (SHM_STAT's "id"), with its id.
    pub fn at_index(&mut self, idx: i32, seq_of: impl Fn(&T) -> u16) -> Option<(i32, &mut T)> {
        let o = self.slots.get_mut(usize::try_from(idx).ok()?)?.as_mut()?;
        let id = seq_of(o) as i32 * SEQ_MULTIPLIER + idx;
        Some((id, o))
    }

    pub fn remove(&mut self, id: i32) {
        if let Some(s) = self.slots.get_mut((id % SEQ_MULTIPLIER) as usize) {
            *s = None;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (i32, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, o)| o.as_ref().map(|o| (i as i32, o)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().filter_map(Option::as_mut)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        for s in &mut self.slots {
            if s.as_ref().is_some_and(|o| !keep(o)) {
                *s = None;
            }
        }
    }

    /// The highest slot in use (IPC_INFO's answer), or 0.
    pub fn max_index(&self) -> i32 {
        self.slots.iter().rposition(Option::is_some).unwrap_or(0) as i32
    }
}
