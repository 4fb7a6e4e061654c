//! wait4 and waitid: collecting children's exits, stops and continues.

use super::{StopReport, Task, ThreadGroup};
use rvisor_abi::{errno, SysResult};
use std::sync::Arc;

/// Which children a wait is about.
#[derive(Clone, Copy, Debug)]
pub enum WaitTarget {
    Pid(i32),
    Pgid(i32),
    Any,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct WaitOptions {
    pub exited: bool,
    pub stopped: bool,
    pub continued: bool,
    pub nohang: bool,
    pub nowait: bool,
    /// __WCLONE: only children whose exit signal is not SIGCHLD; __WALL: all.
    pub clone_only: bool,
    pub all: bool,
}

/// What a wait found.
#[derive(Clone, Copy, Debug)]
pub struct WaitResult {
    /// The child's id as the waiter sees it (found before the child is reaped).
    pub pid: i32,
    pub uid: u32,
    /// The wait4 status word.
    pub status: i32,
    /// si_code and si_status for waitid.
    pub code: i32,
    pub si_status: i32,
    /// The child's CPU time, faults and switches (with its reaped children's)
    /// and peak size, for rusage.
    pub cpu: super::CpuTimes,
    pub rusage: super::RusageCounts,
    pub maxrss_kib: u64,
}

impl Task {
    /// Waits for a child matching `target` to have something to report. `Ok(None)`
    /// means WNOHANG found nothing.
    pub fn wait_child(&self, target: WaitTarget, opts: WaitOptions) -> SysResult<Option<WaitResult>> {
        let mut found = None;
        let mut have_children = true;
        let r = self.block_until(None, || match self.poll_children(target, opts) {
            Err(_) => {
                have_children = false;
                true
            }
            Ok(Some(res)) => {
                found = Some(res);
                true
            }
            Ok(None) => opts.nohang,
        });
        if !have_children {
            return Err(errno!(ECHILD));
        }
        r.map(|()| found)
    }

    /// One scan of the children; Err when none match at all.
    fn poll_children(&self, target: WaitTarget, opts: WaitOptions) -> SysResult<Option<WaitResult>> {
        let children: Vec<Arc<ThreadGroup>> = self.tg.state().children.clone();
        let mut matched = false;
        for child in children {
            let mut st = child.state();
            let ok = match target {
                WaitTarget::Pid(p) => child.tgid == p,
                WaitTarget::Pgid(g) => st.pgid == g,
                WaitTarget::Any => true,
            };
            let is_clone = child.exit_signal.load(std::sync::atomic::Ordering::Relaxed) != rvisor_abi::consts::SIGCHLD;
            if !ok || (!opts.all && is_clone != opts.clone_only) {
                continue;
            }
            matched = true;
            if let (Some(status), true) = (st.zombie, opts.exited) {
                // A zombie its tracer holds is the tracer's to reap first.
                if st.exit_tracer.is_some() {
                    continue;
                }
                drop(st);
                // Still ours: not reaped at its death, nor by another of our
                // threads, since the list was read (Linux scans under tasklist_lock).
                if !self.still_child(&child, !opts.nowait) {
                    continue;
                }
                let result = self.zombie_result(&child, status, !opts.nowait);
                if !opts.nowait {
                    self.pid_ns().release_group(&child);
                }
                return Ok(Some(result));
            }
            let uid = child.creds().uid;
            let pid = self.vnr(child.tgid);
            match st.report {
                // A parent that traces the leader hears of its stops as their tracer only.
                Some(StopReport::Stopped(sig)) if opts.stopped && st.zombie.is_none() && !leader_traced_by(&st, child.tgid, &self.tg) => {
                    if !opts.nowait {
                        st.report = None;
                    }
                    return Ok(Some(WaitResult { pid, uid, status: ((sig as i32) << 8) | 0x7f, code: super::signals::CLD_STOPPED, si_status: sig as i32, cpu: Default::default(), rusage: Default::default(), maxrss_kib: 0 }));
                }
                Some(StopReport::Continued) if opts.continued && st.zombie.is_none() => {
                    if !opts.nowait {
                        st.report = None;
                    }
                    return Ok(Some(WaitResult { pid, uid, status: 0xffff, code: super::signals::CLD_CONTINUED, si_status: rvisor_abi::consts::SIGCONT as i32, cpu: Default::default(), rusage: Default::default(), maxrss_kib: 0 }));
                }
                _ => {}
            }
        }
        match self.poll_tracees(target, opts) {
            Some(found @ Some(_)) => Ok(found),
            Some(None) => Ok(None),
            None if matched => Ok(None),
            None => Err(errno!(ECHILD)),
        }
    }

    /// What a wait reports of zombie `child`; `reaped`: the caller reaps it,
    /// and counts its CPU time and usage as its children's.
    fn zombie_result(&self, child: &ThreadGroup, status: super::ExitStatus, reaped: bool) -> WaitResult {
        let (code, si_status) = status.child_code();
        let c = *child.cpu.lock().unwrap_or_else(|e| e.into_inner());
        let (cpu, maxrss_kib) = (c.dead + c.children, c.maxrss_kib.max(c.children_maxrss_kib));
        // A zombie has no threads left: all of its counts are banked.
        let rusage = child.dead_rusage.get() + c.children_rusage;
        if reaped {
            let mut mine = self.tg.cpu.lock().unwrap_or_else(|e| e.into_inner());
            mine.children += cpu;
            mine.children_rusage += rusage;
            mine.children_maxrss_kib = mine.children_maxrss_kib.max(maxrss_kib);
        }
        WaitResult { pid: self.vnr(child.tgid), uid: child.creds().uid, status: status.wait_status(), code, si_status, cpu, rusage, maxrss_kib }
    }

    /// One scan of the threads this group traces: their ptrace stops (reported
    /// whatever WUNTRACED says) and their exits, __WCLONE or not (Linux's
    /// eligible_child). A leader's exit is its group's, once that is a zombie:
    /// the tracer reaps it, then its parent hears of it (`exit::tracer_released`),
    /// unless the tracer is the parent. None when none match.
    fn poll_tracees(&self, target: WaitTarget, opts: WaitOptions) -> Option<Option<WaitResult>> {
        let tracees: Vec<Arc<super::Thread>> = self.tg.state().tracees.clone();
        let mut matched = false;
        for th in tracees {
            let tid = th.tid();
            let ok = match target {
                WaitTarget::Pid(p) => tid == p,
                WaitTarget::Pgid(g) => th.tg.state().pgid == g,
                WaitTarget::Any => true,
            };
            if !ok {
                continue;
            }
            let uid = th.tg.creds().uid;
            let mut p = th.ptrace();
            if p.exited.is_some() && tid == th.tg.tgid {
                drop(p);
                if th.tg.is_reaped() {
                    // Reaped as a child meanwhile.
                    self.tg.state().tracees.retain(|t| !Arc::ptr_eq(t, &th));
                    continue;
                }
                matched = true;
                // Not before the rest of its group is gone (Linux's delay_group_leader).
                let zombie = th.tg.state().zombie;
                let (Some(status), true) = (zombie, opts.exited) else { continue };
                if opts.nowait {
                    return Some(Some(self.zombie_result(&th.tg, status, false)));
                }
                if !self.untrace(&th) {
                    continue;
                }
                let own_child = th.tg.parent().is_some_and(|parent| Arc::ptr_eq(&parent, &self.tg));
                let result = self.zombie_result(&th.tg, status, own_child);
                if own_child {
                    self.reap(&th.tg);
                } else {
                    super::exit::tracer_released(&th.tg);
                }
                return Some(Some(result));
            }
            matched = true;
            if let (Some(stop), false) = (&p.stop, p.reported) {
                let status = stop.status;
                if !opts.nowait {
                    p.reported = true;
                }
                // waitid's si_status is the whole stop status, event and all (Linux's wait_task_stopped).
                let code = super::ptrace::CLD_TRAPPED;
                return Some(Some(WaitResult { pid: self.vnr(tid), uid, status: (status << 8) | 0x7f, code, si_status: status, cpu: Default::default(), rusage: Default::default(), maxrss_kib: 0 }));
            }
            let Some(status) = p.exited else { continue };
            drop(p);
            if !opts.exited || (!opts.nowait && !self.untrace(&th)) {
                continue;
            }
            // Once the group is dying, its exit status is every thread's
            // (Linux's wait_task_zombie, SIGNAL_GROUP_EXIT).
            let status = th.tg.state().exiting.map_or(status, |e| e.wait_status());
            if !opts.nowait {
                super::exit::release_zombie_thread(&self.kernel, &th);
            }
            let (code, si_status) = if status & 0x7f == 0 { (super::signals::CLD_EXITED, (status >> 8) & 0xff) } else { (super::signals::CLD_KILLED, status & 0x7f) };
            let (cpu, rusage, maxrss_kib) = thread_zombie_usage(&th.tg);
            return Some(Some(WaitResult { pid: self.vnr(tid), uid, status, code, si_status, cpu, rusage, maxrss_kib }));
        }
        matched.then_some(None)
    }

    /// Takes an exited tracee off this group's list; false if another of its
    /// threads' waits took it first.
    fn untrace(&self, th: &Arc<super::Thread>) -> bool {
        let mut st = self.tg.state();
        let before = st.tracees.len();
        st.tracees.retain(|t| !Arc::ptr_eq(t, th));
        st.tracees.len() != before
    }

    /// Reaps zombie `child`, unless it was reaped already.
    pub(super) fn reap(&self, child: &Arc<ThreadGroup>) {
        if self.still_child(child, true) {
            self.pid_ns().release_group(child);
        }
    }

    /// Whether `child` is among this group's children; `take`: takes it out.
    fn still_child(&self, child: &Arc<ThreadGroup>, take: bool) -> bool {
        let mut st = self.tg.state();
        if take {
            return st.take_child(child);
        }
        st.children.iter().any(|c| Arc::ptr_eq(c, child))
    }
}

/// Whether `tracer` traces the leader (thread `tgid`) of the group whose state is `st`.
fn leader_traced_by(st: &super::thread_group::TgState, tgid: i32, tracer: &Arc<ThreadGroup>) -> bool {
    st.threads.iter().find(|t| t.tid() == tgid).is_some_and(|t| t.ptrace().tracer().is_some_and(|tr| Arc::ptr_eq(&tr, tracer)))
}

/// What a tracer's wait for the zombie of a thread other than the leader reports
/// as its usage: its whole process's so far, with its reaped children's (Linux's
/// getrusage(RUSAGE_BOTH) of a thread still in its group), and a peak size only
/// once the group is dead (`signal->maxrss` is set by the last exit). None of it
/// counts as the tracer's children's.
fn thread_zombie_usage(tg: &ThreadGroup) -> (super::CpuTimes, super::RusageCounts, u64) {
    let (cpu, rusage) = (tg.cpu_times(), tg.rusage_counts());
    let dead = tg.state().group_dead;
    let c = *tg.cpu.lock().unwrap_or_else(|e| e.into_inner());
    let maxrss_kib = if dead { c.maxrss_kib.max(c.children_maxrss_kib) } else { c.children_maxrss_kib };
    (cpu + c.children, rusage + c.children_rusage, maxrss_kib)
}
