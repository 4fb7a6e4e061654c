//! POSIX message queues (mq_open and friends): named queues of messages taken
//! highest priority first, behind descriptors that poll readable while a message
//! waits and writable while there is room. The names live in the sandbox's one
//! namespace (`Kernel::mqueues`); /dev/mqueue is not mounted.

use crate::fs::eventfd::anon_inode_stat;
use crate::mm::UserBuffers;
use crate::task::signals::{SigInfo, SI_MESGQ};
use crate::task::{Task, ThreadGroup};
use crate::vfs::readiness::{POLLIN, POLLOUT};
use crate::vfs::{FileDescription, StatusFlags, WaitQueue};
use rvisor_abi::structs::Stat;
use rvisor_abi::{error, SysResult};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const MQ_PRIO_MAX: u32 = 32768;
/// /proc/sys/fs/mqueue's defaults: a new queue's size, and what an unprivileged
/// caller may ask for; the hard limits bind everyone.
pub const MSG_DEFAULT: i64 = 10;
pub const MSGSIZE_DEFAULT: i64 = 8192;
pub const MSG_MAX: i64 = 10;
pub const MSGSIZE_MAX: i64 = 8192;
pub const HARD_MSGMAX: i64 = 65536;
pub const HARD_MSGSIZEMAX: i64 = 16 << 20;
pub const O_NONBLOCK: u32 = 0o4000;

/// `struct mq_attr`.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct MqAttr {
    pub flags: i64,
    pub maxmsg: i64,
    pub msgsize: i64,
    pub curmsgs: i64,
    pub reserved: [i64; 4],
}

/// Who hears of the first message into an empty queue (mq_notify).
#[derive(Clone)]
pub struct Notify {
    pub process: Weak<ThreadGroup>,
    pub tgid: i32,
    /// 0 for SIGEV_NONE.
    pub signo: u32,
    pub value: u64,
}

#[derive(Default)]
struct MqState {
    /// By (priority, highest first; arrival order).
    messages: BTreeMap<(Reverse<u32>, u64), Vec<u8>>,
    arrivals: u64,
    notify: Option<Notify>,
    /// Receivers asleep: a notification is only for a queue nobody waits on.
    receivers: usize,
}

pub struct MessageQueue {
    pub maxmsg: usize,
    pub msgsize: usize,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// A leaf lock, never held while notifying or blocking.
    state: Mutex<MqState>,
    queue: WaitQueue,
}

impl MessageQueue {
    pub fn new(maxmsg: usize, msgsize: usize, uid: u32, gid: u32, mode: u32) -> MessageQueue {
        MessageQueue { maxmsg, msgsize, uid, gid, mode, state: Mutex::default(), queue: WaitQueue::default() }
    }

    fn lock(&self) -> MutexGuard<'_, MqState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn count(&self) -> usize {
        self.lock().messages.len()
    }

    /// Queues a message if there is room (false if not); the first message into an
    /// empty queue that no receiver waits on fires the notification.
    pub fn send(&self, data: Vec<u8>, prio: u32, sender: &ThreadGroup) -> bool {
        let fire = {
            let mut st = self.lock();
            if st.messages.len() >= self.maxmsg {
                return false;
            }
            let fire = if st.messages.is_empty() && st.receivers == 0 { st.notify.take() } else { None };
            st.arrivals += 1;
            let at = st.arrivals;
            st.messages.insert((Reverse(prio), at), data);
            fire
        };
        self.queue.notify_events(POLLIN);
        if let Some(n) = fire.filter(|n| n.signo != 0) {
            if let Some(tg) = n.process.upgrade() {
                let info = SigInfo::new(n.signo, SI_MESGQ).with_sender(sender.tgid, sender.creds().uid).with_value(n.value);
                crate::task::signals::send_to_group(&tg, info);
            }
        }
        true
    }

    /// Takes the highest-priority, oldest message, if any.
    pub fn receive(&self) -> Option<(u32, Vec<u8>)> {
        let m = {
            let mut st = self.lock();
            let key = *st.messages.keys().next()?;
            st.messages.remove(&key).map(|d| (key.0 .0, d))
        };
        self.queue.notify_events(POLLOUT);
        m
    }

    pub fn register(&self, t: &Task, receiver: bool) {
        self.queue.register(&t.thread);
        if receiver {
            self.lock().receivers += 1;
        }
    }

    pub fn unregister(&self, t: &Task, receiver: bool) {
        self.queue.unregister(&t.thread);
        if receiver {
            self.lock().receivers -= 1;
        }
    }

    /// mq_notify: registers `n` (EBUSY if another process is registered), or with
    /// None drops the caller's registration.
    pub fn set_notify(&self, tgid: i32, n: Option<Notify>) -> SysResult<()> {
        let mut st = self.lock();
        let theirs = st.notify.as_ref().is_some_and(|cur| cur.tgid != tgid && cur.process.strong_count() > 0);
        match n {
            None if !theirs => st.notify = None,
            None => {}
            Some(_) if theirs => return error!(EBUSY),
            Some(n) => st.notify = Some(n),
        }
        Ok(())
    }

}

/// The sandbox's queue names. A leaf lock.
#[derive(Default)]
pub struct MqNamespace {
    pub names: Mutex<HashMap<Vec<u8>, Arc<MessageQueue>>>,
}

/// An open queue.
pub struct MqFile {
    pub mq: Arc<MessageQueue>,
    name: Vec<u8>,
    flags: StatusFlags,
}

impl MqFile {
    pub fn new(mq: Arc<MessageQueue>, name: Vec<u8>, flags: u32) -> MqFile {
        MqFile { mq, name, flags: StatusFlags::new(flags) }
    }

    pub fn nonblocking(&self) -> bool {
        self.flags.get() & O_NONBLOCK != 0
    }
}

impl FileDescription for MqFile {
    /// What reading the queue's file in /dev/mqueue gives.
    fn read(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        let (size, signo, pid) = {
            let st = self.mq.lock();
            let size: usize = st.messages.values().map(Vec::len).sum();
            let (signo, pid) = st.notify.as_ref().map_or((0, 0), |n| (n.signo, n.tgid));
            (size, signo, pid)
        };
        let notify = if pid == 0 { 0 } else if signo == 0 { 1 } else { 0 };
        let text = format!("QSIZE:{size:<10} NOTIFY:{notify:<5} SIGNO:{signo:<5} NOTIFY_PID:{pid:<6}\n");
        let from = offset.unwrap_or(0).max(0) as usize;
        let bytes = text.as_bytes().get(from..).unwrap_or_default();
        let mut done = 0;
        for &(addr, len) in &bufs.iovs {
            let k = (len as usize).min(bytes.len() - done);
            t.mm.write_bytes(addr, &bytes[done..done + k])?;
            done += k;
        }
        Ok(done)
    }

    fn write(&self, _t: &Task, _bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        error!(EINVAL)
    }

    fn stat(&self) -> SysResult<Stat> {
        let mut st = anon_inode_stat();
        st.st_mode = 0o100000 | self.mq.mode;
        st.st_uid = self.mq.uid;
        st.st_gid = self.mq.gid;
        Ok(st)
    }

    fn flags(&self) -> Option<&crate::vfs::StatusFlags> {
        Some(&self.flags)
    }

    fn proc_name(&self) -> Option<Vec<u8>> {
        let mut n = b"/".to_vec();
        n.extend_from_slice(&self.name);
        Some(n)
    }

    fn readiness(&self, mask: u32) -> u32 {
        let n = self.mq.count();
        let mut r = 0;
        if n > 0 {
            r |= POLLIN;
        }
        if n < self.mq.maxmsg {
            r |= POLLOUT;
        }
        r & mask
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.mq.queue)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
