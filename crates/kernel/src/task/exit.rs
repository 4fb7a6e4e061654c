//! How threads and processes end: exit status encodings, robust futexes and
//! clear_child_tid, zombies, reparenting, and telling the parent.

use super::signals::{self, SigInfo, CLD_DUMPED, CLD_EXITED, CLD_KILLED, SA_NOCLDWAIT, SIG_IGN};
use super::{Task, ThreadGroup};
use crate::futex::FutexKey;
use crate::mm::UserRef;
use rvisor_abi::{consts, UserAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(u8),
    Signaled { signo: u32, core: bool },
}

impl ExitStatus {
    /// Termination by `signo`, without a core dump.
    pub fn killed_by(signo: u32) -> ExitStatus {
        ExitStatus::Signaled { signo, core: false }
    }

    /// The status a shell reports: the exit code, or 128+N for signal N.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c as i32,
            ExitStatus::Signaled { signo, .. } => 128 + signo as i32,
        }
    }

    /// The status word wait4 reports.
    pub fn wait_status(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => (c as i32) << 8,
            ExitStatus::Signaled { signo, core } => signo as i32 | if core { 0x80 } else { 0 },
        }
    }

    /// si_code and si_status for SIGCHLD and waitid.
    pub fn child_code(self) -> (i32, i32) {
        match self {
            ExitStatus::Exited(c) => (CLD_EXITED, c as i32),
            ExitStatus::Signaled { signo, core: true } => (CLD_DUMPED, signo as i32),
            ExitStatus::Signaled { signo, .. } => (CLD_KILLED, signo as i32),
        }
    }
}

use crate::futex::{FUTEX_OWNER_DIED, FUTEX_TID_MASK, FUTEX_WAITERS};
/// Linux stops walking a robust list after this many entries (ROBUST_LIST_LIMIT).
const ROBUST_LIST_LIMIT: usize = 2048;

impl Task {
    /// Runs when the task loop ends: releases what the thread held, and if it was
    /// the group's last thread, turns the group into a zombie for its parent.
    pub(crate) fn finish(&mut self) {
        let status = self.exit.unwrap_or(ExitStatus::Exited(0));
        self.ptrace_exit_event(status.wait_status());
        let zombie_tracer = self.ptrace_exit(status);
        self.exit_robust_list();
        self.kernel.futexes.release_pi(&self.thread);
        if !self.clear_child_tid.is_null() {
            let at = UserRef::<u32>::new(self.clear_child_tid);
            if self.mm.write_obj(at, &0).is_ok() {
                if let Ok(key) = FutexKey::for_addr(&self.mm, self.clear_child_tid, false) {
                    // EINVAL (a PI waiter on the word) is nobody's to see.
                    let _ = self.kernel.futexes.wake(&key, 1, u32::MAX);
                }
            }
        }
        self.release_vfork_parent();
        {
            let used = self.thread.cpu_times();
            self.thread.host_tid.store(0, std::sync::atomic::Ordering::Relaxed);
            let rss = self.mm.populated_bytes() / 1024;
            let mut cpu = self.tg.cpu.lock().unwrap_or_else(|e| e.into_inner());
            cpu.dead += used;
            cpu.maxrss_kib = cpu.maxrss_kib.max(rss);
        }
        self.thread.set_interrupter(None);
        self.thread.set_resources(None);
        // A filter's listener hangs up once no live task uses the filter: at
        // exit, as on Linux since 6.11, not at reap; a zombie still shows the leader's mode.
        if self.tid() == self.tg.tgid {
            let mode = self.thread.seccomp();
            *self.tg.exit_seccomp.lock().unwrap_or_else(|e| e.into_inner()) = (mode.number(), mode.filters());
        }
        self.thread.set_seccomp(super::seccomp::Mode::Disabled);
        // As Linux's exit_files, before the parent hears of the exit: the files
        // close now (pipes and sockets see their peer gone), unless another
        // thread shares the table.
        self.fds = Arc::default();
        self.ctx.release();
        let tid = self.tid();
        let (last, leader_zombie) = {
            let mut st = self.tg.state();
            st.threads.retain(|t| !Arc::ptr_eq(t, &self.thread));
            let last = st.threads.is_empty();
            // A leader leaving others behind stays a zombie until they are gone
            // (Linux's delay_group_leader): /proc still lists it, as Z.
            let leader_zombie = tid == self.tg.tgid && !last;
            if zombie_tracer.is_some() || leader_zombie {
                st.zombie_threads.push(self.thread.clone());
            }
            // Under the same lock, so that `ThreadGroup::io` and
            // `rusage_counts` count it once.
            self.tg.dead_io.add(self.thread.io.get());
            self.tg.dead_rusage.add(self.thread.rusage_counts());
            (last, leader_zombie)
        };
        match &zombie_tracer {
            // A zombie keeps its id until reaped.
            Some(tracer) => self.thread_zombie(tracer, status),
            // Until the group dies (`group_zombie`) or an exec takes its id; a
            // tracer hears of it now all the same (Linux's exit_notify), and again then.
            None if leader_zombie => {
                let tracer = self.tg.state().exit_tracer.as_ref().and_then(Weak::upgrade);
                if let Some(tracer) = tracer {
                    notify_tracer_of_exit(&tracer, tid, &self.tg, status);
                }
            }
            None => self.pid_ns().release_thread(tid),
        }
        if last {
            // As Linux's exit_mm, before the parent hears of the exit: an address
            // space no one else uses loses its mappings now (a System V segment's
            // attachment count drops; the frames go when the stub is gone).
            if Arc::strong_count(&self.mm) == 1 {
                self.mm.forget_mappings();
            }
            crate::tty::session_leader_exit(self);
            self.tg.tty.lock().unwrap_or_else(|e| e.into_inner()).take();
            let status = self.tg.state().exiting.unwrap_or(status);
            if self.tg.pid_ns.is_init(&self.tg) {
                self.zap_pid_namespace();
            }
            // The semaphore adjustments of its SEM_UNDO operations, in its IPC namespace.
            self.ns.ipc.sem.exit(self.tg.tgid);
            group_died(&self.kernel, &self.tg, status);
        } else {
            // An exec waiting for its siblings to leave, or a dying group.
            self.tg.wake_all();
        }
    }

    /// A nested PID namespace's init is ending, and the namespace with it (Linux's
    /// zap_pid_ns_processes): no process may join it any more, every other one
    /// in it is killed, and the init reaps its children (the others' orphans
    /// come to it) until every other one has ended, before its parent hears.
    fn zap_pid_namespace(&self) {
        let ns = self.tg.pid_ns.clone();
        ns.close();
        let others = || ns.groups().into_iter().filter(|g| !Arc::ptr_eq(g, &self.tg)).collect::<Vec<_>>();
        for g in others() {
            signals::group_exit(&g, ExitStatus::killed_by(consts::SIGKILL));
        }
        loop {
            for g in others() {
                g.wait_zombie(None);
            }
            let children = self.tg.state().children.clone();
            for child in children.iter().filter(|c| c.state().zombie.is_some()) {
                self.reap(child);
            }
            // Done when only zombies others will reap are left.
            let mine = !self.tg.state().children.is_empty();
            if !mine && others().iter().all(|g| g.state().zombie.is_some()) {
                break;
            }
        }
    }

    /// Wakes a vfork parent: its child has exec'd or exited.
    pub(crate) fn release_vfork_parent(&mut self) {
        if let Some(parent) = self.vfork_parent.take() {
            self.tg.state().vfork_done = true;
            parent.interrupt();
        }
    }

    /// Marks the robust futexes this thread still holds as owner-died and wakes a
    /// waiter on each, as Linux's exit_robust_list does.
    pub(super) fn exit_robust_list(&self) {
        if self.robust_list.is_null() {
            return;
        }
        let head = self.robust_list;
        let read = |a: UserAddr| self.mm.read_obj(UserRef::<u64>::new(a)).ok();
        let (Some(first), Some(offset), Some(pending)) = (read(head), head.add(8).ok().and_then(read), head.add(16).ok().and_then(read)) else {
            return;
        };
        // The owner ids in futex words are the ones the thread sees.
        let tid = self.vnr(self.tid()) as u32;
        let (mut entry, mut pi) = robust_entry(first);
        let (pending, pending_pi) = robust_entry(pending);
        for _ in 0..ROBUST_LIST_LIMIT {
            if entry == head.get() || entry == 0 {
                break;
            }
            let next = read(UserAddr(entry));
            if entry != pending {
                self.release_robust_futex(UserAddr(entry.wrapping_add(offset)), tid, pi);
            }
            match next {
                Some(n) => (entry, pi) = robust_entry(n),
                None => break,
            }
        }
        if pending != 0 {
            self.release_robust_futex(UserAddr(pending.wrapping_add(offset)), tid, pending_pi);
        }
    }

    /// Marks a robust futex `tid` holds as owner-died. A non-PI one's waiter is woken
    /// here; a PI one's is handed the lock by `FutexTable::release_pi` afterwards.
    fn release_robust_futex(&self, addr: UserAddr, tid: u32, pi: bool) {
        let Ok(key) = FutexKey::for_addr(&self.mm, addr, false) else { return };
        let Ok(off) = self.mm.futex_word_for_write(addr) else { return };
        let mf = self.mm.memory_file();
        let old = mf.update_u32(off, |v| if v & FUTEX_TID_MASK == tid { (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED } else { v });
        if !pi && old & FUTEX_TID_MASK == tid && old & FUTEX_WAITERS != 0 {
            let _ = self.kernel.futexes.wake(&key, 1, u32::MAX);
        }
    }
}

/// A robust list pointer: the entry's address, and whether it is a PI futex's
/// (glibc sets bit 0 for those, as Linux's fetch_robust_entry expects).
fn robust_entry(ptr: u64) -> (u64, bool) {
    (ptr & !1, ptr & 1 != 0)
}

/// The last live thread of `tg` is gone: its children go to a new parent, and
/// it becomes a zombie (`group_zombie`) now or, if traced threads of it are
/// zombies still, when the last of them is reaped (Linux's delay_group_leader).
fn group_died(kernel: &Arc<crate::Kernel>, tg: &Arc<ThreadGroup>, status: ExitStatus) {
    super::ptrace::release_tracees(kernel, tg);
    kernel.locks.release_owner(crate::vfs::locks::Owner::Process(tg.tgid));
    // Its children go to their new parent first, while it is still among its
    // own parent's children: a wait() there cannot find it gone (ECHILD) before
    // they arrive. Dying, it is no longer a subreaper for them (`reaper_for`).
    let (parent, children) = {
        let mut st = tg.state();
        st.exiting.get_or_insert(status);
        (st.parent.clone(), std::mem::take(&mut st.children))
    };
    if !children.is_empty() {
        let heir = reaper_for(kernel, parent.as_ref(), tg);
        // A zombie among them is news to its new parent, which reaps it at once
        // if it ignores SIGCHLD or asked not to wait (Linux's reparent_leader);
        // one its tracer holds is news when the tracer lets it go.
        let autoreap = heir.as_ref().is_some_and(|h| ignores_children(h));
        let mut zombies: Vec<(Arc<ThreadGroup>, ExitStatus)> = Vec::new();
        {
            // The heir's lock over each child's, as `group_zombie` takes them to
            // make the zombie: a child dying meanwhile either is a zombie here,
            // or finds itself among the heir's children (Linux: tasklist_lock).
            let mut heir_st = heir.as_ref().map(|h| h.state());
            for child in &children {
                let mut st = child.state();
                st.parent = heir.clone();
                let zombie = st.zombie.filter(|_| st.exit_tracer.is_none());
                if let Some(z) = zombie {
                    zombies.push((child.clone(), z));
                }
                if let Some(h) = heir_st.as_mut().filter(|_| !autoreap || zombie.is_none()) {
                    h.children.push(child.clone());
                }
            }
        }
        for child in &children {
            // Another parent did not ask for a clone child's signal.
            child.exit_signal.store(consts::SIGCHLD, Relaxed);
            for th in child.threads() {
                let sig = th.sig().pdeathsig;
                if sig != 0 {
                    signals::send_to_thread(&th, SigInfo::new(sig, 0));
                }
            }
        }
        if let Some(h) = &heir {
            for (child, status) in zombies {
                if h.action(consts::SIGCHLD).handler != SIG_IGN {
                    let (code, st) = status.child_code();
                    signals::send_to_group(h, SigInfo::new(consts::SIGCHLD, code).with_sender(child.tgid, child.creds().uid).with_value(st as u32 as u64));
                }
                if autoreap {
                    child.container.pid_ns.release_group(&child);
                }
            }
            h.wake_waiters();
        }
    }
    let now = {
        let mut st = tg.state();
        st.group_dead = true;
        st.traced_zombies_gone(tg.tgid)
    };
    if now {
        group_zombie(kernel, tg);
    }
}

/// A traced thread's zombie is reaped (by its tracer's wait, or as its tracer
/// let it go): its id is free, and if it was the last thing left of a dead
/// group, the group is a zombie now (Linux's release_task). Nothing if another
/// got to it first.
pub(super) fn release_zombie_thread(kernel: &Arc<crate::Kernel>, th: &Arc<super::Thread>) {
    let tg = &th.tg;
    // A leader's zombie is its group's, released as the group dies.
    if th.tid() == tg.tgid {
        return;
    }
    let (last, execer) = {
        let mut st = tg.state();
        let before = st.zombie_threads.len();
        st.zombie_threads.retain(|t| !Arc::ptr_eq(t, th));
        if st.zombie_threads.len() == before {
            return;
        }
        (st.group_dead && st.traced_zombies_gone(tg.tgid), st.execer.clone())
    };
    tg.pid_ns.release_thread(th.tid());
    // An exec waits for the zombie to go (Linux's __exit_signal and notify_count).
    if let Some(execer) = execer {
        execer.interrupt();
    }
    if last {
        group_zombie(kernel, tg);
    }
}

/// Dead `tg` becomes a zombie: its tracer or its parent hears of it (and the
/// parent reaps it at once if it ignores SIGCHLD).
fn group_zombie(kernel: &Arc<crate::Kernel>, tg: &Arc<ThreadGroup>) {
    // A leader that exited before the rest is now the group's zombie, under its id.
    let leader = {
        let mut st = tg.state();
        let at = st.zombie_threads.iter().position(|t| t.tid() == tg.tgid);
        at.map(|i| st.zombie_threads.swap_remove(i))
    };
    if leader.is_some() {
        tg.pid_ns.release_thread(tg.tgid);
    }
    let status = tg.state().exiting.unwrap_or(ExitStatus::Exited(0));
    // Its leader exited traced: a tracer other than the parent hears of the
    // death first (SIGCHLD whatever the exit signal) and reaps it before the
    // parent may; a parent that traces it reaps it itself, even if it ignores
    // SIGCHLD (Linux's exit_notify and do_notify_parent).
    let tracer = tg.state().exit_tracer.as_ref().and_then(Weak::upgrade);
    let (parent, held, autoreap) = loop {
        let parent = tg.state().parent.clone();
        let parent_traces = tracer.as_ref().zip(parent.as_ref()).is_some_and(|(t, p)| Arc::ptr_eq(t, p));
        let ignored = parent.as_ref().is_some_and(|p| death_signal(tg, p) == consts::SIGCHLD && ignores_children(p));
        // The parent's lock over its own: a parent that does not want its
        // zombie takes it out of its children in the same step as it becomes
        // one, so that no wait() sees it; and a parent dying meanwhile
        // (`group_died`) either hands it over as a zombie or sees it after.
        let mut parent_st = parent.as_ref().map(|p| p.state());
        let mut st = tg.state();
        if !option_ptr_eq(&st.parent, &parent) {
            continue;
        }
        if parent_traces || tracer.is_none() {
            st.exit_tracer = None;
        }
        st.zombie = Some(status);
        // Still set unless the tracer let its tracees go meanwhile.
        let held = st.exit_tracer.is_some();
        // (A tracer that let it go meanwhile holds it no more.)
        let autoreap = !held
            && !parent_traces
            && ignored
            && parent_st.as_mut().is_some_and(|p| p.take_child(tg));
        drop((st, parent_st));
        break (parent, held, autoreap);
    };
    tg.exit_waiters.notify();
    match (held, tracer, parent) {
        (true, Some(tracer), _) => notify_tracer_of_exit(&tracer, tg.tgid, tg, status),
        (_, _, Some(parent)) => {
            let signal = death_signal(tg, &parent);
            notify_parent(tg, &parent, status, signal, autoreap);
        }
        _ => {}
    }
    if tg.container.is_init(tg) {
        if Arc::ptr_eq(&tg.container, &kernel.root_container) {
            kernel.init_died(status);
        } else {
            kernel.container_init_died(&tg.container);
        }
    }
}

/// Whether `tg`'s death takes it out of `parent`'s children at once, as a
/// parent that ignores SIGCHLD or set SA_NOCLDWAIT never sees its children as
/// zombies; it then is out of them: a wait() racing with the exit cannot reap
/// it instead of blocking until every child is gone (ECHILD).
fn leaves_parent(tg: &Arc<ThreadGroup>, parent: &ThreadGroup, signal: u32) -> bool {
    if signal != consts::SIGCHLD || !ignores_children(parent) {
        return false;
    }
    parent.state().take_child(tg)
}

/// Whether `parent` never sees its children as zombies: it ignores SIGCHLD or
/// set SA_NOCLDWAIT.
fn ignores_children(parent: &ThreadGroup) -> bool {
    let act = parent.action(consts::SIGCHLD);
    act.handler == SIG_IGN || act.flags & SA_NOCLDWAIT != 0
}

fn option_ptr_eq(a: &Option<Arc<ThreadGroup>>, b: &Option<Arc<ThreadGroup>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// Tells `parent` that its child `tg` died, with `signal` (Linux's
/// do_notify_parent); `autoreaped`: it left the parent's children as it died (`leaves_parent`, or `group_zombie` under the parent's lock), so its id goes now.
fn notify_parent(tg: &Arc<ThreadGroup>, parent: &Arc<ThreadGroup>, status: ExitStatus, signal: u32, autoreaped: bool) {
    let (code, st) = status.child_code();
    // Legacy clone takes any byte as the exit signal; one that is no signal
    // sends nothing, as 0 does. Nor is SIGCHLD sent to a parent that ignores
    // it, even if blocked.
    let ignored = signal == consts::SIGCHLD && parent.action(consts::SIGCHLD).handler == SIG_IGN;
    if (1..=64).contains(&signal) && !ignored {
        signals::send_to_group(parent, SigInfo::new(signal, code).with_sender(tg.tgid, tg.creds().uid).with_value(st as u32 as u64));
    }
    if autoreaped {
        tg.container.pid_ns.release_group(tg);
    }
    parent.wake_waiters();
}

/// Tells a tracer that its tracee `id` (of `tg`) ended: SIGCHLD, whatever
/// the exit signal, unless it ignores SIGCHLD; it is never reaped at once.
pub(super) fn notify_tracer_of_exit(tracer: &Arc<ThreadGroup>, id: i32, tg: &ThreadGroup, status: ExitStatus) {
    if tracer.action(consts::SIGCHLD).handler != SIG_IGN {
        let (code, st) = status.child_code();
        signals::send_to_group(tracer, SigInfo::new(consts::SIGCHLD, code).with_sender(id, tg.creds().uid).with_value(st as u32 as u64));
    }
    tracer.wake_waiters();
}

/// The tracer of zombie `tg` reaped it or is gone: now its parent hears of its
/// death, and may reap it (Linux's wait_task_zombie for EXIT_TRACE and
/// __ptrace_detach).
pub(super) fn tracer_released(tg: &Arc<ThreadGroup>) {
    let (parent, status) = {
        let st = tg.state();
        (st.parent.clone(), st.zombie)
    };
    let (Some(parent), Some(status)) = (parent, status) else {
        tg.state().exit_tracer = None;
        return;
    };
    let signal = death_signal(tg, &parent);
    // Out of the parent's children before its waits may see it (below).
    let autoreap = leaves_parent(tg, &parent, signal);
    tg.state().exit_tracer = None;
    notify_parent(tg, &parent, status, signal, autoreap);
}

/// The signal `tg`'s death sends `parent` (Linux's do_notify_parent): its exit
/// signal, but SIGCHLD for any other (0 too) if the parent exec'd since `tg` was made.
fn death_signal(tg: &ThreadGroup, parent: &ThreadGroup) -> u32 {
    let signal = tg.exit_signal.load(Relaxed);
    if signal != consts::SIGCHLD && tg.parent_exec_id.load(Relaxed) != parent.exec_id.load(Relaxed) {
        return consts::SIGCHLD;
    }
    signal
}

/// Where the orphans of `tg` go: the nearest live subreaper ancestor in its
/// PID namespace, else the namespace's init (for a nested namespace's own init,
/// the enclosing one's), else their container's init, else the sandbox's first.
fn reaper_for(kernel: &crate::Kernel, parent: Option<&Arc<ThreadGroup>>, tg: &Arc<ThreadGroup>) -> Option<Arc<ThreadGroup>> {
    let mut at = parent.cloned().filter(|p| Arc::ptr_eq(&p.pid_ns, &tg.pid_ns));
    while let Some(p) = at {
        let st = p.state();
        if st.subreaper && st.exiting.is_none() {
            drop(st);
            return Some(p);
        }
        at = st.parent.clone().filter(|p| Arc::ptr_eq(&p.pid_ns, &tg.pid_ns));
    }
    let mut ns = Some(&tg.pid_ns);
    while let Some(n) = ns {
        if let Some(init) = n.init().filter(|i| !Arc::ptr_eq(i, tg)) {
            return Some(init);
        }
        ns = n.parent.as_ref();
    }
    tg.container.init().or_else(|| kernel.root_container.init())
}
