//! System V semaphore sets: semop's operations apply all at once or not at all; a
//! caller that cannot go on sleeps on the set's wait queue until another operation,
//! a SETVAL, or the set's removal changes it. SEM_UNDO adjustments are kept per set
//! and process, and applied when the process exits.

use super::{Ipc64Perm, IpcObject, Namespace, IPC_NOWAIT};
use crate::task::ThreadGroup;
use crate::vfs::WaitQueue;
use rvisor_abi::{errno, SysResult};
use std::collections::HashMap;
use std::sync::Arc;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Linux's limits: semaphores per set, sets, operations per call, largest value.
pub const SEMMSL: usize = 32000;
pub const SEMMNI: usize = 32000;
pub const SEMMNS: usize = SEMMSL * SEMMNI;
pub const SEMOPM: usize = 500;
pub const SEMVMX: i32 = 32767;
pub const SEMAEM: i32 = SEMVMX;

pub const SEM_UNDO: i16 = 0x1000;

/// `struct semid64_ds`.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct SemidDs {
    pub perm: Ipc64Perm,
    pub otime: i64,
    unused1: u64,
    pub ctime: i64,
    unused2: u64,
    pub nsems: u64,
    unused: [u64; 2],
}

/// `struct sembuf`.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Sembuf {
    pub num: u16,
    pub op: i16,
    pub flags: i16,
}

#[derive(Clone, Copy, Default)]
pub struct Sem {
    pub val: i32,
    /// The process that last changed it.
    pub pid: i32,
}

pub struct SemSet {
    pub ds: SemidDs,
    pub sems: Vec<Sem>,
    /// Sleepers in semop wait here; removal and every change wake them.
    pub queue: Arc<WaitQueue>,
    /// SEM_UNDO adjustments by process (tgid), one per semaphore.
    undo: HashMap<i32, Vec<i32>>,
    /// Blocked operations, by what they wait for: (semaphore, waits for zero).
    waiting: Vec<(u16, bool)>,
    /// Counts changes, so that a sleeper knows when to try again.
    pub version: u64,
}

/// Why semop cannot finish now.
pub enum Blocked {
    /// The operation at this semaphore must wait (for zero when the flag says so).
    On(u16, bool),
    /// It must wait but asked not to (IPC_NOWAIT).
    NoWait,
}

impl SemSet {
    /// semop's step: applies every operation, or none. Errors end the call; `Blocked`
    /// says what to wait for.
    pub fn apply(&mut self, ops: &[Sembuf], pid: i32, now: i64) -> SysResult<Result<(), Blocked>> {
        let mut vals: Vec<i32> = self.sems.iter().map(|s| s.val).collect();
        let mut undo = self.undo.get(&pid).cloned().unwrap_or_else(|| vec![0; self.sems.len()]);
        for op in ops {
            let n = op.num as usize;
            let v = vals[n];
            if op.op == 0 {
                if v != 0 {
                    return Ok(Err(if op.flags as i32 & IPC_NOWAIT != 0 { Blocked::NoWait } else { Blocked::On(op.num, true) }));
                }
                continue;
            }
            let next = v + op.op as i32;
            if next < 0 {
                return Ok(Err(if op.flags as i32 & IPC_NOWAIT != 0 { Blocked::NoWait } else { Blocked::On(op.num, false) }));
            }
            if next > SEMVMX {
                return Err(errno!(ERANGE));
            }
            if op.flags & SEM_UNDO != 0 {
                let adj = undo[n] - op.op as i32;
                if !(-SEMAEM - 1..=SEMAEM).contains(&adj) {
                    return Err(errno!(ERANGE));
                }
                undo[n] = adj;
            }
            vals[n] = next;
        }
        for op in ops {
            if op.op != 0 {
                self.sems[op.num as usize].pid = pid;
            }
        }
        for (s, v) in self.sems.iter_mut().zip(vals) {
            s.val = v;
        }
        if ops.iter().any(|o| o.flags & SEM_UNDO != 0) {
            self.undo.insert(pid, undo);
        }
        self.ds.otime = now;
        self.version += 1;
        Ok(Ok(()))
    }

    /// Sets values directly (SETVAL, SETALL): the undo entries for them are dropped
    /// in every process, as Linux does.
    pub fn set(&mut self, first: usize, vals: &[i32], pid: i32, now: i64) {
        for (i, &v) in vals.iter().enumerate() {
            self.sems[first + i] = Sem { val: v, pid };
        }
        for adj in self.undo.values_mut() {
            adj[first..first + vals.len()].fill(0);
        }
        self.ds.ctime = now;
        self.version += 1;
    }

    /// Processes waiting for semaphore `n` to grow (GETNCNT) or to be zero (GETZCNT).
    pub fn waiters(&self, n: u16, for_zero: bool) -> i32 {
        self.waiting.iter().filter(|&&w| w == (n, for_zero)).count() as i32
    }

    pub fn start_waiting(&mut self, w: (u16, bool)) {
        self.waiting.push(w);
    }

    pub fn stop_waiting(&mut self, w: (u16, bool)) {
        if let Some(i) = self.waiting.iter().position(|&x| x == w) {
            self.waiting.swap_remove(i);
        }
    }

}

impl IpcObject for SemSet {
    type Status = SemidDs;
    fn perm(&self) -> &Ipc64Perm {
        &self.ds.perm
    }
    fn perm_mut(&mut self) -> &mut Ipc64Perm {
        &mut self.ds.perm
    }
    fn status(&self, _pid: &dyn Fn(i32) -> i32) -> SemidDs {
        self.ds
    }
    fn changed(&mut self, now: i64) {
        self.ds.ctime = now;
    }
    const PROC_HEADER: &'static str = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n";
    fn proc_line(&self, id: i32, _pid: &dyn Fn(i32) -> i32) -> String {
        let (d, p) = (&self.ds, &self.ds.perm);
        format!("{:10} {:10}  {:4o} {:10} {:5} {:5} {:5} {:5} {:10} {:10}\n", p.key, id, p.mode, d.nsems, p.uid, p.gid, p.cuid, p.cgid, d.otime, d.ctime)
    }
}

impl super::Waitable for SemSet {
    fn queue(&self) -> &Arc<WaitQueue> {
        &self.queue
    }
    fn version(&self) -> u64 {
        self.version
    }
}

pub type SemSets = Namespace<SemSet>;

impl Namespace<SemSet> {
    /// semget: the id of the set with `key`, made if asked and allowed.
    pub fn get_set(&self, tg: &ThreadGroup, key: i32, nsems: i32, flags: i32, now: i64) -> SysResult<i32> {
        if nsems < 0 || nsems as usize > SEMMSL {
            return Err(errno!(EINVAL));
        }
        let fits = |s: &SemSet| if nsems as u64 > s.ds.nsems { Err(errno!(EINVAL)) } else { Ok(()) };
        let used: u64 = self.with(|reg| reg.iter().map(|s| s.ds.nsems).sum());
        let make = |perm| {
            if nsems == 0 {
                return Err(errno!(EINVAL));
            }
            if used + nsems as u64 > SEMMNS as u64 {
                return Err(errno!(ENOSPC));
            }
            Ok(SemSet {
                ds: SemidDs { perm, ctime: now, nsems: nsems as u64, ..Default::default() },
                sems: vec![Sem::default(); nsems as usize],
                queue: Arc::new(WaitQueue::default()),
                undo: HashMap::new(),
                waiting: Vec::new(),
                version: 0,
            })
        };
        self.get(tg, key, flags, SEMMNI, fits, make)
    }

    /// A process is gone: its SEM_UNDO adjustments apply, within each semaphore's
    /// range, and wake the sleepers.
    pub fn exit(&self, pid: i32) {
        let queues: Vec<Arc<WaitQueue>> = self.with(|reg| {
            reg.iter_mut()
                .filter_map(|set| {
                    let adj = set.undo.remove(&pid)?;
                    for (s, a) in set.sems.iter_mut().zip(adj) {
                        if a != 0 {
                            *s = Sem { val: (s.val + a).clamp(0, SEMVMX), pid };
                        }
                    }
                    set.version += 1;
                    Some(set.queue.clone())
                })
                .collect()
        });
        for q in queues {
            q.notify();
        }
    }
}
