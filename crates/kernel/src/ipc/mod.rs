//! The sandbox's one IPC namespace. System V: shared memory segments (`shm.rs`),
//! semaphore sets (`sem.rs`) and message queues (`msg.rs`), whose ids, keys and
//! permissions work as Linux's do; and POSIX message queues (`mqueue.rs`).

pub mod mqueue;
pub mod msg;
pub mod sem;
pub mod shm;

use crate::task::{ThreadGroup, UserNamespace};
use rvisor_abi::{consts, errno, SysResult};
use std::sync::{Arc, Mutex};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `IPC_PRIVATE`: a key that always makes a new object.
pub const IPC_PRIVATE: i32 = 0;
pub const IPC_CREAT: i32 = 0o1000;
/// Don't wait (semop's sembuf flag, msgsnd's and msgrcv's flag).
pub const IPC_NOWAIT: i32 = 0o4000;
/// Read and write permission in all three positions, as ipcperms takes a request.
pub const S_IRUGO: i32 = 0o444;
pub const S_IWUGO: i32 = 0o222;
pub const IPC_EXCL: i32 = 0o2000;
pub const IPC_RMID: i32 = 0;
pub const IPC_SET: i32 = 1;
pub const IPC_STAT: i32 = 2;
pub const IPC_INFO: i32 = 3;
/// The "new layout" bit some callers add to a ctl command; x86-64 has one layout.
pub const IPC_64: i32 = 0x100;
/// Ids are `seq * SEQ_MULTIPLIER + index`, so a reused slot gets a new id.
const SEQ_MULTIPLIER: i32 = 32768;

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
    /// Capabilities count over the IPC namespace, in the user namespace `owner`
    /// that owns it.
    pub fn allows(&self, tg: &ThreadGroup, owner: &Arc<UserNamespace>, flags: i32) -> bool {
        let requested = ((flags >> 6) | (flags >> 3) | flags) as u32 & 0o7;
        let c = tg.creds();
        let granted = if c.euid == self.cuid || c.euid == self.uid {
            self.mode >> 6
        } else if [self.cgid, self.gid].iter().any(|&g| g == c.egid || tg.groups.lock().unwrap_or_else(|e| e.into_inner()).contains(&g)) {
            self.mode >> 3
        } else {
            self.mode
        };
        requested & !granted & 0o7 == 0 || tg.capable_in(owner, consts::CAP_IPC_OWNER)
    }

    /// Whether `tg` may change or remove the object (IPC_SET, IPC_RMID): its owner,
    /// its creator, or CAP_SYS_ADMIN.
    pub fn may_change(&self, tg: &ThreadGroup, owner: &Arc<UserNamespace>) -> bool {
        let euid = tg.creds().euid;
        euid == self.uid || euid == self.cuid || tg.capable_in(owner, consts::CAP_SYS_ADMIN)
    }
}

/// What every System V object has: permissions, inside the status structure that
/// IPC_STAT copies out.
pub trait IpcObject {
    type Status: Copy + IntoBytes + Immutable;
    fn perm(&self) -> &Ipc64Perm;
    fn perm_mut(&mut self) -> &mut Ipc64Perm;
    /// The status as a reader sees it: `pid` turns the kernel's process ids
    /// into the reader's PID namespace's.
    fn status(&self, pid: &dyn Fn(i32) -> i32) -> Self::Status;
    /// Records a change of its permissions or state (the ctime).
    fn changed(&mut self, now: i64);
    /// The heading of its kind's /proc/sysvipc file.
    const PROC_HEADER: &'static str;
    /// Its line there, as Linux's sysvipc_*_proc_show prints it, for id `id`.
    fn proc_line(&self, id: i32, pid: &dyn Fn(i32) -> i32) -> String;
}

/// An object callers sleep on (semaphore sets, message queues): its wait queue, and
/// a counter every change moves.
pub trait Waitable: IpcObject {
    fn queue(&self) -> &std::sync::Arc<crate::vfs::WaitQueue>;
    fn version(&self) -> u64;
}

/// Which object a *_STAT command names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StatBy {
    /// IPC_STAT: an id, read permission needed.
    Id,
    /// SHM_STAT and friends: a slot index.
    Index,
    /// SHM_STAT_ANY and friends: a slot index, no permission check.
    IndexAny,
}

/// The objects of one kind, by slot: ids are `seq * SEQ_MULTIPLIER + index`, so a
/// reused slot gets a new id. A leaf lock.
pub struct Namespace<T> {
    reg: Mutex<Registry<T>>,
    /// The user namespace that owns the IPC namespace.
    owner: Arc<UserNamespace>,
}

impl<T> Namespace<T> {
    pub fn new(owner: Arc<UserNamespace>) -> Self {
        Namespace { reg: Mutex::new(Registry { slots: Vec::new(), seqs: Vec::new() }), owner }
    }
}

pub struct Registry<T> {
    slots: Vec<Option<T>>,
    /// The sequence number each slot's next object gets.
    seqs: Vec<u16>,
}

impl<T: IpcObject> Registry<T> {
    fn id_of(idx: usize, o: &T) -> i32 {
        o.perm().seq as i32 * SEQ_MULTIPLIER + idx as i32
    }

    /// The object with this id (an old id of a reused slot finds nothing).
    pub fn get(&mut self, id: i32) -> Option<&mut T> {
        if id < 0 {
            return None;
        }
        let (seq, idx) = ((id / SEQ_MULTIPLIER) as u16, (id % SEQ_MULTIPLIER) as usize);
        self.slots.get_mut(idx)?.as_mut().filter(|o| o.perm().seq == seq)
    }

    pub fn remove(&mut self, id: i32) -> Option<T> {
        self.get(id)?;
        self.slots.get_mut((id % SEQ_MULTIPLIER) as usize)?.take()
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(Option::as_ref)
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

impl<T: IpcObject> Namespace<T> {
    pub fn with<R>(&self, f: impl FnOnce(&mut Registry<T>) -> R) -> R {
        f(&mut self.reg.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// /proc/sysvipc/{shm,sem,msg}: the heading, then a line per object by slot
    /// (Linux's order, its idr's); `pid` as for `stat`.
    pub fn proc_table(&self, pid: &dyn Fn(i32) -> i32) -> String {
        self.with(|reg| {
            let mut out = T::PROC_HEADER.to_string();
            for (idx, o) in reg.slots.iter().enumerate() {
                if let Some(o) = o {
                    out += &o.proc_line(Registry::id_of(idx, o), pid);
                }
            }
            out
        })
    }

    /// The object with `id`, for `f` (EINVAL if there is none).
    pub fn lookup<R>(&self, id: i32, f: impl FnOnce(&mut T) -> SysResult<R>) -> SysResult<R> {
        self.with(|reg| f(reg.get(id).ok_or_else(|| errno!(EINVAL))?))
    }

    /// The *get calls: the id of the object with `key` (which `fits` checks, then
    /// the permissions `flags` ask), or of a new one `make` builds, up to `max`.
    pub fn get(&self, tg: &ThreadGroup, key: i32, flags: i32, max: usize, fits: impl FnOnce(&T) -> SysResult<()>, make: impl FnOnce(Ipc64Perm) -> SysResult<T>) -> SysResult<i32> {
        self.with(|reg| {
            if key != IPC_PRIVATE {
                if let Some((idx, o)) = reg.slots.iter().enumerate().find_map(|(i, o)| o.as_ref().filter(|o| o.perm().key == key).map(|o| (i, o))) {
                    if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
                        return Err(errno!(EEXIST));
                    }
                    fits(o)?;
                    if !o.perm().allows(tg, &self.owner, flags) {
                        return Err(errno!(EACCES));
                    }
                    return Ok(Registry::id_of(idx, o));
                }
                if flags & IPC_CREAT == 0 {
                    return Err(errno!(ENOENT));
                }
            }
            let idx = match reg.slots.iter().position(Option::is_none) {
                Some(i) => i,
                None if reg.slots.len() < max => {
                    reg.slots.push(None);
                    reg.seqs.push(0);
                    reg.slots.len() - 1
                }
                None => return Err(errno!(ENOSPC)),
            };
            let seq = reg.seqs[idx];
            let o = make(Ipc64Perm::new(key, flags, seq, tg))?;
            reg.seqs[idx] = (seq + 1) % (i32::MAX / SEQ_MULTIPLIER) as u16;
            let id = Registry::id_of(idx, &o);
            reg.slots[idx] = Some(o);
            Ok(id)
        })
    }

    /// The status of the object a *_STAT command names, and what the command returns
    /// (0, or the id for the index forms).
    pub fn stat(&self, tg: &ThreadGroup, id: i32, by: StatBy, pid: &dyn Fn(i32) -> i32) -> SysResult<(i32, T::Status)> {
        self.with(|reg| {
            let (ret, o) = match by {
                StatBy::Id => (0, reg.get(id).ok_or_else(|| errno!(EINVAL))?),
                _ => {
                    let idx = usize::try_from(id).map_err(|_| errno!(EINVAL))?;
                    let o = reg.slots.get_mut(idx).and_then(Option::as_mut).ok_or_else(|| errno!(EINVAL))?;
                    (Registry::id_of(idx, o), o)
                }
            };
            if by != StatBy::IndexAny && !o.perm().allows(tg, &self.owner, S_IRUGO) {
                return Err(errno!(EACCES));
            }
            Ok((ret, o.status(pid)))
        })
    }

    /// IPC_SET: owner, group and mode from `new`, by the owner or creator (EPERM);
    /// `more` sets what else the kind takes.
    pub fn set(&self, tg: &ThreadGroup, id: i32, new: &Ipc64Perm, now: i64, more: impl FnOnce(&mut T) -> SysResult<()>) -> SysResult<()> {
        self.lookup(id, |o| {
            if !o.perm().may_change(tg, &self.owner) {
                return Err(errno!(EPERM));
            }
            more(o)?;
            let p = o.perm_mut();
            p.uid = new.uid;
            p.gid = new.gid;
            p.mode = (p.mode & !0o777) | (new.mode & 0o777);
            o.changed(now);
            Ok(())
        })
    }

    /// IPC_RMID, by the owner or creator (EPERM): the object leaves the namespace,
    /// unless `keep` (called with it first) says it must stay for now.
    pub fn remove(&self, tg: &ThreadGroup, id: i32, now: i64, keep: impl FnOnce(&mut T) -> bool) -> SysResult<Option<T>> {
        self.with(|reg| {
            let o = reg.get(id).ok_or_else(|| errno!(EINVAL))?;
            if !o.perm().may_change(tg, &self.owner) {
                return Err(errno!(EPERM));
            }
            o.changed(now);
            if keep(o) {
                return Ok(None);
            }
            Ok(reg.remove(id))
        })
    }
}
