//! System V message queues: typed messages in arrival order, bounded in bytes;
//! senders sleep while a queue is full and receivers while nothing matches, on the
//! queue's wait queue, until its change counter moves.

use super::{Ipc64Perm, IpcObject, Namespace};
use crate::task::ThreadGroup;
use crate::vfs::WaitQueue;
use rvisor_abi::{errno, SysResult};
use std::collections::VecDeque;
use std::sync::Arc;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Linux's limits: bytes per message, bytes per queue, queues.
pub const MSGMAX: usize = 8192;
pub const MSGMNB: u64 = 16384;
pub const MSGMNI: usize = 32000;

/// `struct msqid64_ds`.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct MsqidDs {
    pub perm: Ipc64Perm,
    pub stime: i64,
    pub rtime: i64,
    pub ctime: i64,
    pub cbytes: u64,
    pub qnum: u64,
    pub qbytes: u64,
    pub lspid: i32,
    pub lrpid: i32,
    unused: [u64; 2],
}

/// Which message msgrcv takes.
#[derive(Clone, Copy)]
pub enum Pick {
    /// The first (type 0), or the first of a type, or the first not of it (MSG_EXCEPT).
    First,
    OfType(i64),
    NotOfType(i64),
    /// The first of the lowest type at most this.
    LowestUpTo(i64),
    /// The one at this position, left in place (MSG_COPY).
    Copy(usize),
}

pub struct MsgQueue {
    pub ds: MsqidDs,
    messages: VecDeque<(i64, Vec<u8>)>,
    pub queue: Arc<WaitQueue>,
    pub version: u64,
}

impl MsgQueue {
    /// Whether a message of `len` bytes fits now.
    pub fn fits(&self, len: usize) -> bool {
        self.ds.cbytes + len as u64 <= self.ds.qbytes && self.ds.qnum < self.ds.qbytes
    }

    pub fn push(&mut self, mtype: i64, data: Vec<u8>, pid: i32, now: i64) {
        self.ds.cbytes += data.len() as u64;
        self.ds.qnum += 1;
        self.ds.lspid = pid;
        self.ds.stime = now;
        self.messages.push_back((mtype, data));
        self.version += 1;
    }

    fn find(&self, pick: Pick) -> Option<usize> {
        let m = &self.messages;
        match pick {
            Pick::First => (!m.is_empty()).then_some(0),
            Pick::OfType(t) => m.iter().position(|x| x.0 == t),
            Pick::NotOfType(t) => m.iter().position(|x| x.0 != t),
            Pick::LowestUpTo(t) => m.iter().enumerate().filter(|(_, x)| x.0 <= t).min_by_key(|(_, x)| x.0).map(|(i, _)| i),
            Pick::Copy(i) => (i < m.len()).then_some(i),
        }
    }

    /// Takes (or, for MSG_COPY, copies) the message `pick` names, if there is one. A
    /// message longer than `max` is E2BIG and stays, unless `truncate` (MSG_NOERROR).
    pub fn take(&mut self, pick: Pick, max: usize, truncate: bool, pid: i32, now: i64) -> SysResult<Option<(i64, Vec<u8>)>> {
        let Some(i) = self.find(pick) else { return Ok(None) };
        if self.messages[i].1.len() > max && !truncate {
            return Err(errno!(E2BIG));
        }
        let (mtype, mut data) = if matches!(pick, Pick::Copy(_)) {
            self.messages[i].clone()
        } else {
            let m = self.messages.remove(i).ok_or_else(|| errno!(ENOMSG))?;
            self.ds.cbytes -= m.1.len() as u64;
            self.ds.qnum -= 1;
            self.ds.lrpid = pid;
            self.ds.rtime = now;
            self.version += 1;
            m
        };
        data.truncate(max);
        Ok(Some((mtype, data)))
    }
}

impl IpcObject for MsgQueue {
    type Status = MsqidDs;
    fn perm(&self) -> &Ipc64Perm {
        &self.ds.perm
    }
    fn perm_mut(&mut self) -> &mut Ipc64Perm {
        &mut self.ds.perm
    }
    fn status(&self, pid: &dyn Fn(i32) -> i32) -> MsqidDs {
        MsqidDs { lspid: pid(self.ds.lspid), lrpid: pid(self.ds.lrpid), ..self.ds }
    }
    fn changed(&mut self, now: i64) {
        self.ds.ctime = now;
        self.version += 1;
    }
    const PROC_HEADER: &'static str = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n";
    fn proc_line(&self, id: i32, pid: &dyn Fn(i32) -> i32) -> String {
        let (d, p) = (&self.ds, &self.ds.perm);
        format!(
            "{:10} {:10}  {:4o}  {:10} {:10} {:5} {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10}\n",
            p.key, id, p.mode, d.cbytes, d.qnum, pid(d.lspid), pid(d.lrpid), p.uid, p.gid, p.cuid, p.cgid, d.stime, d.rtime, d.ctime
        )
    }
}

impl super::Waitable for MsgQueue {
    fn queue(&self) -> &Arc<WaitQueue> {
        &self.queue
    }
    fn version(&self) -> u64 {
        self.version
    }
}

pub type MsgQueues = Namespace<MsgQueue>;

impl Namespace<MsgQueue> {
    /// msgget: the id of the queue with `key`, made if asked and allowed.
    pub fn get_queue(&self, tg: &ThreadGroup, key: i32, flags: i32, now: i64) -> SysResult<i32> {
        let make = |perm| {
            Ok(MsgQueue {
                ds: MsqidDs { perm, ctime: now, qbytes: MSGMNB, ..Default::default() },
                messages: VecDeque::new(),
                queue: Arc::new(WaitQueue::default()),
                version: 0,
            })
        };
        self.get(tg, key, flags, MSGMNI, |_| Ok(()), make)
    }
}
