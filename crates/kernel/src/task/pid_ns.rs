//! The sandbox's PID namespace: ids for threads and thread groups. The first
//! program is PID 1; programs only ever see these ids.

use super::{Thread, ThreadGroup};
use rvisor_abi::{errno, SysResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Linux's default pid_max.
pub const PID_MAX: i32 = 4_194_304;

#[derive(Default)]
struct PidTable {
    last: i32,
    threads: HashMap<i32, Weak<Thread>>,
    groups: HashMap<i32, Weak<ThreadGroup>>,
    /// Ids handed out and not yet released (live threads and unreaped zombies).
    used: std::collections::HashSet<i32>,
}

pub struct PidNamespace {
    /// Its inode number in /proc/PID/ns.
    pub id: u64,
    /// Lock order: taken before any ThreadGroup or Thread lock.
    table: Mutex<PidTable>,
    /// Most tasks the sandbox may hold at once.
    max_tasks: usize,
    /// The user namespace whose capabilities rule it: the sandbox's first.
    pub owner: Arc<super::UserNamespace>,
}

impl PidNamespace {
    pub fn new(max_tasks: usize) -> PidNamespace {
        PidNamespace { id: super::namespaces::new_ns_id(), table: Mutex::new(PidTable::default()), max_tasks, owner: super::UserNamespace::initial() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PidTable> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh id, or EAGAIN when the sandbox holds its limit of tasks.
    pub fn alloc(&self) -> SysResult<i32> {
        let mut t = self.lock();
        if t.used.len() >= self.max_tasks {
            return Err(errno!(EAGAIN));
        }
        let mut id = t.last;
        loop {
            id = if id >= PID_MAX - 1 { 2 } else { id + 1 };
            if !t.used.contains(&id) {
                break;
            }
        }
        t.last = id;
        t.used.insert(id);
        Ok(id)
    }

    pub fn register_thread(&self, tid: i32, th: &Arc<Thread>) {
        self.lock().threads.insert(tid, Arc::downgrade(th));
    }

    pub fn register_group(&self, tgid: i32, tg: &Arc<ThreadGroup>) {
        self.lock().groups.insert(tgid, Arc::downgrade(tg));
    }

    /// Forgets a thread id; the id is free again unless a thread group still holds it.
    pub fn release_thread(&self, tid: i32) {
        let mut t = self.lock();
        t.threads.remove(&tid);
        if !t.groups.contains_key(&tid) {
            t.used.remove(&tid);
        }
    }

    /// Forgets a reaped thread group; its id is free again unless a thread still holds it.
    pub fn release_group(&self, tg: &ThreadGroup) {
        {
            let mut t = self.lock();
            t.groups.remove(&tg.tgid);
            if !t.threads.contains_key(&tg.tgid) {
                t.used.remove(&tg.tgid);
            }
        }
        tg.mark_reaped();
    }

    /// Moves a thread to a new id (exec by a non-leader thread takes the leader's).
    pub fn rename_thread(&self, from: i32, to: i32, th: &Arc<Thread>) {
        let mut t = self.lock();
        t.threads.remove(&from);
        t.used.remove(&from);
        t.threads.insert(to, Arc::downgrade(th));
    }

    pub fn thread(&self, tid: i32) -> Option<Arc<Thread>> {
        self.lock().threads.get(&tid).and_then(Weak::upgrade)
    }

    pub fn group(&self, tgid: i32) -> Option<Arc<ThreadGroup>> {
        self.lock().groups.get(&tgid).and_then(Weak::upgrade)
    }

    pub fn groups(&self) -> Vec<Arc<ThreadGroup>> {
        self.lock().groups.values().filter_map(Weak::upgrade).collect()
    }

    /// Number of live threads.
    pub fn thread_count(&self) -> usize {
        self.lock().threads.len()
    }
}
