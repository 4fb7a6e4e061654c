//! PID namespaces: ids for threads and thread groups. A container's namespace
//! holds the table of its tasks, by the ids the kernel uses everywhere (its
//! first program is PID 1). A namespace nested in it (clone or unshare with
//! CLONE_NEWPID) is a view of part of that table: its members have an id there
//! too, from 1, and its own members, its descendants' and nothing else are
//! visible in it. Ids are translated only where a program names or is told
//! one.

use super::{Thread, ThreadGroup, UserNamespace};
use rvisor_abi::{errno, SysResult};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Linux's default pid_max.
pub const PID_MAX: i32 = 4_194_304;
/// Namespaces nest 32 deep at most (MAX_PID_NS_LEVEL; ENOSPC beyond).
const MAX_LEVEL: u32 = 32;

#[derive(Default)]
struct PidTable {
    last: i32,
    threads: HashMap<i32, Weak<Thread>>,
    groups: HashMap<i32, Weak<ThreadGroup>>,
    /// Ids handed out and not yet released (live threads and unreaped zombies).
    used: std::collections::HashSet<i32>,
    /// The innermost nested namespace an id also has an id in.
    nested: HashMap<i32, Arc<PidNamespace>>,
}

/// A nested namespace's ids, both ways.
#[derive(Default)]
struct Ids {
    last: i32,
    to_table: HashMap<i32, i32>,
    from_table: HashMap<i32, i32>,
}

pub struct PidNamespace {
    /// Its inode number in /proc/PID/ns.
    pub id: u64,
    /// A container's: its tasks. Lock order: taken before any ThreadGroup or
    /// Thread lock, and before a nested namespace's `ids`.
    table: Mutex<PidTable>,
    /// Most tasks the sandbox may hold at once.
    max_tasks: usize,
    /// The user namespace whose capabilities rule it.
    pub owner: Arc<UserNamespace>,
    /// The namespace it is nested in; None for a container's.
    pub parent: Option<Arc<PidNamespace>>,
    /// 0 for a container's.
    pub level: u32,
    /// A nested one's ids (a leaf lock).
    ids: Mutex<Ids>,
    /// A nested one's init: the process that got id 1 in it.
    init: OnceLock<Weak<ThreadGroup>>,
    /// Set when that init ended: no process may join it any more (ENOMEM).
    dead: AtomicBool,
}

impl PidNamespace {
    /// A container's namespace.
    pub fn new(max_tasks: usize) -> PidNamespace {
        PidNamespace {
            id: super::namespaces::new_ns_id(),
            table: Mutex::new(PidTable::default()),
            max_tasks,
            owner: UserNamespace::initial(),
            parent: None,
            level: 0,
            ids: Mutex::default(),
            init: OnceLock::new(),
            dead: AtomicBool::new(false),
        }
    }

    /// A namespace nested in `parent`, owned by `owner`.
    pub fn child(parent: &Arc<PidNamespace>, owner: Arc<UserNamespace>) -> SysResult<Arc<PidNamespace>> {
        if parent.level >= MAX_LEVEL {
            return Err(errno!(ENOSPC));
        }
        Ok(Arc::new(PidNamespace { owner, parent: Some(parent.clone()), level: parent.level + 1, ..PidNamespace::new(parent.max_tasks) }))
    }

    /// The container's namespace this one is (nested) in, which holds the table.
    fn table_ns(self: &Arc<Self>) -> Arc<PidNamespace> {
        let mut ns = self.clone();
        while let Some(p) = ns.parent.clone() {
            ns = p;
        }
        ns
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PidTable> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ids(&self) -> std::sync::MutexGuard<'_, Ids> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh id for a task in this namespace, with an id in each namespace it
    /// is nested in: the table's id is returned. EAGAIN when the sandbox holds
    /// its limit of tasks, ENOMEM in a namespace whose init has ended.
    pub fn alloc(self: &Arc<Self>) -> SysResult<i32> {
        let table = self.table_ns();
        let mut t = table.lock();
        let mut ns = Some(self);
        while let Some(n) = ns.filter(|n| n.level > 0) {
            if n.dead.load(Ordering::Relaxed) {
                return Err(errno!(ENOMEM));
            }
            ns = n.parent.as_ref();
        }
        if t.used.len() >= table.max_tasks {
            return Err(errno!(EAGAIN));
        }
        let id = next_free(t.last, |id| t.used.contains(&id));
        t.last = id;
        t.used.insert(id);
        let mut ns = Some(self);
        while let Some(n) = ns.filter(|n| n.level > 0) {
            let mut ids = n.ids();
            let local = next_free(ids.last, |l| ids.to_table.contains_key(&l));
            ids.last = local;
            ids.to_table.insert(local, id);
            ids.from_table.insert(id, local);
            ns = n.parent.as_ref();
        }
        if self.level > 0 {
            t.nested.insert(id, self.clone());
        }
        Ok(id)
    }

    /// The id a task with table id `id` has here, if it is visible here.
    pub fn local_id(&self, id: i32) -> Option<i32> {
        if self.level == 0 {
            return Some(id);
        }
        self.ids().from_table.get(&id).copied()
    }

    /// The table id of what this namespace's id `local` names.
    pub fn table_id(&self, local: i32) -> Option<i32> {
        if self.level == 0 {
            return Some(local);
        }
        self.ids().to_table.get(&local).copied()
    }

    /// Whether this namespace is `other` or nested (at any depth) in it.
    pub fn is_within(self: &Arc<Self>, other: &Arc<PidNamespace>) -> bool {
        let mut ns = Some(self);
        while let Some(n) = ns {
            if Arc::ptr_eq(n, other) {
                return true;
            }
            ns = n.parent.as_ref();
        }
        false
    }

    /// Every id a task with table id `id` has, from this namespace's level
    /// down to its own (/proc/PID/status's NSpid), when visible here.
    pub fn ids_from_here(self: &Arc<Self>, id: i32) -> Vec<i32> {
        let table = self.table_ns();
        let inner = table.lock().nested.get(&id).cloned();
        let mut chain = Vec::new();
        let mut ns = inner.as_ref().unwrap_or(&table);
        loop {
            chain.push(ns.local_id(id).unwrap_or(0));
            if Arc::ptr_eq(ns, self) {
                break;
            }
            match &ns.parent {
                Some(p) => ns = p,
                None => return Vec::new(),
            }
        }
        chain.reverse();
        chain
    }

    /// Forgets an id the table released, in every namespace it was nested in.
    fn forget(t: &mut PidTable, id: i32) {
        t.used.remove(&id);
        let mut ns = t.nested.remove(&id);
        while let Some(n) = ns.filter(|n| n.level > 0) {
            let mut ids = n.ids();
            if let Some(local) = ids.from_table.remove(&id) {
                ids.to_table.remove(&local);
            }
            drop(ids);
            ns = n.parent.clone();
        }
    }

    pub fn register_thread(self: &Arc<Self>, tid: i32, th: &Arc<Thread>) {
        self.table_ns().lock().threads.insert(tid, Arc::downgrade(th));
    }

    pub fn register_group(self: &Arc<Self>, tgid: i32, tg: &Arc<ThreadGroup>) {
        if self.local_id(tgid) == Some(1) && self.level > 0 {
            let _ = self.init.set(Arc::downgrade(tg));
        }
        self.table_ns().lock().groups.insert(tgid, Arc::downgrade(tg));
    }

    /// Forgets a thread id; the id is free again unless a thread group still holds it.
    pub fn release_thread(self: &Arc<Self>, tid: i32) {
        let table = self.table_ns();
        let mut t = table.lock();
        t.threads.remove(&tid);
        if !t.groups.contains_key(&tid) {
            Self::forget(&mut t, tid);
        }
    }

    /// Forgets a reaped thread group; its id is free again unless a thread still holds it.
    pub fn release_group(self: &Arc<Self>, tg: &ThreadGroup) {
        {
            let table = self.table_ns();
            let mut t = table.lock();
            t.groups.remove(&tg.tgid);
            if !t.threads.contains_key(&tg.tgid) {
                Self::forget(&mut t, tg.tgid);
            }
        }
        tg.mark_reaped();
    }

    /// Moves a thread to a new id (exec by a non-leader thread takes the leader's).
    pub fn rename_thread(self: &Arc<Self>, from: i32, to: i32, th: &Arc<Thread>) {
        let table = self.table_ns();
        let mut t = table.lock();
        t.threads.remove(&from);
        Self::forget(&mut t, from);
        t.threads.insert(to, Arc::downgrade(th));
    }

    /// The thread with id `tid` here.
    pub fn thread(self: &Arc<Self>, tid: i32) -> Option<Arc<Thread>> {
        let id = self.table_id(tid)?;
        self.table_ns().lock().threads.get(&id).and_then(Weak::upgrade)
    }

    /// The thread group with id `tgid` here.
    pub fn group(self: &Arc<Self>, tgid: i32) -> Option<Arc<ThreadGroup>> {
        let id = self.table_id(tgid)?;
        self.table_ns().lock().groups.get(&id).and_then(Weak::upgrade)
    }

    /// The thread groups visible here.
    pub fn groups(self: &Arc<Self>) -> Vec<Arc<ThreadGroup>> {
        let all: Vec<Arc<ThreadGroup>> = self.table_ns().lock().groups.values().filter_map(Weak::upgrade).collect();
        if self.level == 0 {
            return all;
        }
        all.into_iter().filter(|g| self.local_id(g.tgid).is_some()).collect()
    }

    /// Number of live threads (of the table).
    pub fn thread_count(&self) -> usize {
        self.lock().threads.len()
    }

    /// For /proc/loadavg: how many of the threads visible here are not asleep,
    /// how many there are, and the last id handed out here.
    pub fn loadavg_counts(self: &Arc<Self>) -> (usize, usize, i32) {
        let table = self.table_ns();
        let threads: Vec<Arc<Thread>> = {
            let t = table.lock();
            t.threads.iter().filter(|&(&id, _)| self.local_id(id).is_some()).filter_map(|(_, w)| w.upgrade()).collect()
        };
        let last = if self.level == 0 { table.lock().last } else { self.ids().last };
        let running = threads.iter().filter(|th| !th.waiter.is_asleep()).count();
        (running, threads.len(), last)
    }

    /// A nested namespace's init, while it lives.
    pub fn init(&self) -> Option<Arc<ThreadGroup>> {
        self.init.get().and_then(Weak::upgrade).filter(|i| i.state().zombie.is_none())
    }

    /// Whether `tg` is this nested namespace's init.
    pub fn is_init(&self, tg: &ThreadGroup) -> bool {
        self.init.get().is_some_and(|w| std::ptr::eq(w.as_ptr(), tg))
    }

    /// Its init ended: no process joins it any more.
    pub fn close(&self) {
        self.dead.store(true, Ordering::Relaxed);
    }
}

/// The next id after `last` that `taken` does not hold, from 2 after wrapping
/// at PID_MAX (1 is only ever the first).
fn next_free(last: i32, taken: impl Fn(i32) -> bool) -> i32 {
    let mut id = last;
    loop {
        id = if id >= PID_MAX - 1 { 2 } else { id + 1 };
        if !taken(id) {
            return id;
        }
    }
}
