//! ptrace(2), the tracee's side: a thread traced by a tracer (a thread group)
//! stops at signal delivery, at syscall entry and exit (PTRACE_SYSCALL), after
//! exec, after a single step, and when the tracer interrupts it. While it is
//! stopped its registers are a snapshot that the tracer reads and changes, and
//! it waits in the Sentry for the tracer's command. The tracer's wait reports
//! the stops and exits of its tracees (a tracee is always eligible, as in
//! Linux); a traced leader's exit is its zombie group's, which the tracer
//! reaps before the parent hears of it, and another traced thread is a zombie
//! until its tracer reaps it or is gone (`exit.rs`, `wait.rs`).
//!
//! Lock order: a tracer's state (its tracee list) before a tracee's ptrace
//! lock, which is otherwise a leaf.

use super::signals::{self, SigInfo};
use super::{Task, Thread, ThreadGroup, TRAP_FLAG};
use rvisor_abi::consts;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, Weak};

pub const PTRACE_EVENT_FORK: u32 = 1;
pub const PTRACE_EVENT_VFORK: u32 = 2;
pub const PTRACE_EVENT_CLONE: u32 = 3;
pub const PTRACE_EVENT_EXEC: u32 = 4;
pub const PTRACE_EVENT_EXIT: u32 = 6;
pub const PTRACE_EVENT_STOP: u32 = 128;
pub const PTRACE_O_TRACESYSGOOD: u32 = 0x1;
pub const PTRACE_O_TRACEEXEC: u32 = 0x10;
pub const PTRACE_O_TRACEEXIT: u32 = 0x40;
pub const PTRACE_O_EXITKILL: u32 = 0x10_0000;
/// si_code of a SIGCHLD for a ptrace stop.
pub const CLD_TRAPPED: i32 = 4;
/// Why a tracee stopped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StopKind {
    /// About to deliver a signal (the tracer may change or cancel it).
    Signal,
    SyscallEnter,
    SyscallExit,
    /// A PTRACE_EVENT_* stop, or (0) a group stop.
    Event(u32),
}

/// A tracee's stop, as the tracer sees and changes it.
pub struct Stop {
    pub kind: StopKind,
    /// What the tracer's wait reports in WSTOPSIG and above (the signal, or
    /// SIGTRAP with 0x80 or an event number).
    pub status: i32,
    /// The signal being delivered (GETSIGINFO, SETSIGINFO).
    pub info: Option<SigInfo>,
    pub regs: nix::libc::user_regs_struct,
    /// The XSAVE image of its floating-point state.
    pub fpstate: Vec<u8>,
    /// The tracer changed the registers or the FP state: the tracee takes them.
    pub regs_changed: bool,
    pub fp_changed: bool,
}

/// What the tracer told a stopped tracee to do; the signal to deliver (0: none).
#[derive(Clone, Copy, Debug)]
pub enum Resume {
    Continue(u32),
    Syscall(u32),
    Step(u32),
    Kill,
}

impl Resume {
    fn signal(self) -> u32 {
        match self {
            Resume::Continue(s) | Resume::Syscall(s) | Resume::Step(s) => s,
            Resume::Kill => 0,
        }
    }
}

/// A thread's ptrace state.
#[derive(Default)]
pub struct Ptrace {
    pub tracer: Option<Weak<ThreadGroup>>,
    /// Attached with PTRACE_SEIZE (stops report events; no SIGSTOP at attach).
    pub seized: bool,
    pub options: u32,
    pub stop: Option<Stop>,
    /// The tracer's wait reported the current stop.
    pub reported: bool,
    pub resume: Option<Resume>,
    /// PTRACE_INTERRUPT asked for a stop (Linux's JOBCTL_TRAP_STOP): the
    /// next stop, whatever it is, answers it; a PTRACE_EVENT_STOP if no other comes first.
    pub interrupt: bool,
    /// A SIGCONT asks a seized tracee for a PTRACE_EVENT_STOP (Linux's
    /// JOBCTL_TRAP_NOTIFY), which such a stop answers.
    pub notify: bool,
    /// PTRACE_LISTEN: the tracee stays in its PTRACE_EVENT_STOP, but for its
    /// tracer's wait and requests it is not stopped, until an interrupt or a
    /// SIGCONT (`listen_end`) has it stop anew.
    pub listening: bool,
    pub listen_end: bool,
    /// The last group stop it took part in (`TgState::stop_seq`).
    pub group_stop_seen: u64,
    /// PTRACE_GETEVENTMSG.
    pub event_msg: u64,
    /// The wait status of its exit, for a tracer that is not its parent.
    pub exited: Option<i32>,
}

impl Ptrace {
    pub fn tracer(&self) -> Option<Arc<ThreadGroup>> {
        self.tracer.as_ref().and_then(Weak::upgrade)
    }
}

impl Thread {
    pub fn ptrace(&self) -> MutexGuard<'_, Ptrace> {
        self.ptrace.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the group stop in force, if any, holds this thread: every
    /// thread but a traced one that took part in it (in a stop for its
    /// tracer), which then runs as its tracer lets it (Linux's
    /// SIGNAL_STOP_STOPPED with the thread's JOBCTL_STOP_PENDING consumed).
    pub fn held_by_group_stop(&self, st: &super::thread_group::TgState) -> bool {
        st.stopped && !(self.is_traced() && self.ptrace().group_stop_seen == st.stop_seq)
    }

    /// Asks a seized tracee for a PTRACE_EVENT_STOP (PTRACE_INTERRUPT, or
    /// `notify` for a SIGCONT), ending a PTRACE_LISTEN.
    pub fn ptrace_trap(&self, notify: bool) {
        {
            let mut p = self.ptrace();
            if notify {
                p.notify = true;
            } else {
                p.interrupt = true;
            }
            if p.listening {
                p.listen_end = true;
            }
        }
        self.interrupt();
    }

    pub fn is_traced(&self) -> bool {
        self.traced.load(Ordering::Acquire)
    }

    /// Starts being traced by `tracer` (attach, seize, traceme).
    pub fn attach_tracer(self: &Arc<Self>, tracer: &Arc<ThreadGroup>, seized: bool, options: u32) {
        {
            let mut p = self.ptrace();
            *p = Ptrace { tracer: Some(Arc::downgrade(tracer)), seized, options, ..Ptrace::default() };
        }
        self.traced.store(true, Ordering::Release);
        tracer.state().tracees.push(self.clone());
    }

    /// Stops being traced: it resumes with `signal` if it was stopped.
    pub fn detach_tracer(&self, signal: u32) {
        self.traced.store(false, Ordering::Release);
        self.syscall_stops.store(false, Ordering::Release);
        {
            let mut p = self.ptrace();
            p.tracer = None;
            if p.stop.is_some() {
                p.resume = Some(Resume::Continue(signal));
            }
        }
        self.interrupt();
    }
}

impl Task {
    /// Stops for the tracer and waits for its command. None when not traced,
    /// or when the tracer went away (the task goes on as if never stopped), or
    /// when a PTRACE_LISTEN of the stop ended.
    pub(crate) fn ptrace_stop(&mut self, kind: StopKind, status: i32, info: Option<SigInfo>) -> Option<(Resume, Stop)> {
        // A thread on its way out stops only to report its exit (Linux's
        // ptrace_stop with a fatal signal pending). So is one whose group
        // exits, or is emptied by another thread's exec, before it noticed:
        // it leaves now. A stop it made would be reported under an id the exec
        // may be about to give the execing thread.
        if kind != StopKind::Event(PTRACE_EVENT_EXIT) {
            if self.exit.is_none() {
                let st = self.tg.state();
                self.exit = st.exiting.or(st.exec_zaps(&self.thread).then_some(super::ExitStatus::Exited(0)));
            }
            if self.exit.is_some() {
                return None;
            }
        }
        let tracer = self.thread.ptrace().tracer()?;
        // Single steps end at the stop that follows.
        self.cpu.regs.eflags &= !TRAP_FLAG;
        let fpstate = match self.cpu.fpstate.clone() {
            Some(fp) => fp,
            None => self.ctx.fpstate().unwrap_or_default(),
        };
        // Linux's ptrace_do_notify: but at a signal's stop and a group stop of
        // a tracee not seized, the siginfo tells the stop: its signal, its
        // status as si_code, the tracee (as it sees itself) as the sender.
        let notice = SigInfo::new((status & 0x7f) as u32, status).with_sender(self.vnr(self.tid()), self.tg.user_ns().show_uid(self.tg.creds().uid));
        {
            let mut p = self.thread.ptrace();
            let group_stop_unseized = kind == StopKind::Event(0) && !p.seized;
            let info = info.or((!group_stop_unseized).then_some(notice));
            // Any stop answers an interrupt; a PTRACE_EVENT_STOP a SIGCONT's too.
            p.interrupt = false;
            if info.is_some_and(|i| i.code >> 8 == PTRACE_EVENT_STOP as i32) {
                p.notify = false;
            }
            p.stop = Some(Stop { kind, status, info, regs: self.cpu.regs, fpstate, regs_changed: false, fp_changed: false });
            p.reported = false;
            p.resume = None;
            p.listening = false;
            p.listen_end = false;
        }
        notify_tracer(&tracer, &self.thread, kind, status);
        let resume = loop {
            let seq = self.thread.waiter.seq();
            {
                let mut p = self.thread.ptrace();
                if let Some(r) = p.resume.take() {
                    break Some(r);
                }
                // The end of a PTRACE_LISTEN: the tracee leaves this stop for
                // the PTRACE_EVENT_STOP it owes (`ptrace_interrupted`).
                if p.listen_end {
                    p.listening = false;
                    p.listen_end = false;
                    break None;
                }
                if p.tracer().is_none() {
                    break Some(Resume::Continue(0));
                }
            }
            // Only SIGKILL ends the stop of an exiting tracee (PTRACE_EVENT_EXIT).
            let (exiting, other_execs) = {
                let st = self.tg.state();
                (st.exiting, st.exec_zaps(&self.thread))
            };
            if exiting.is_some_and(|e| kind != StopKind::Event(PTRACE_EVENT_EXIT) || e == super::ExitStatus::killed_by(consts::SIGKILL)) {
                break Some(Resume::Kill);
            }
            // Another thread's exec ends any other stop: this one leaves quietly
            // (Linux's zap_other_threads), reporting its exit first.
            if other_execs && kind != StopKind::Event(PTRACE_EVENT_EXIT) {
                self.exit = Some(super::ExitStatus::Exited(0));
                break Some(Resume::Continue(0));
            }
            self.thread.waiter.wait(seq, None);
        };
        let stop = self.thread.ptrace().stop.take()?;
        if stop.regs_changed {
            self.cpu.regs = stop.regs;
        }
        if stop.fp_changed {
            self.cpu.fpstate = Some(stop.fpstate.clone());
        }
        let resume = resume?;
        self.thread.syscall_stops.store(matches!(resume, Resume::Syscall(_)) && self.thread.is_traced(), Ordering::Release);
        self.single_step = matches!(resume, Resume::Step(_));
        match resume {
            Resume::Step(_) => self.cpu.regs.eflags |= TRAP_FLAG,
            Resume::Kill => self.exit_group(super::ExitStatus::killed_by(consts::SIGKILL)),
            _ => {}
        }
        Some((resume, stop))
    }

    /// A signal about to be delivered, past the tracer: the signal to deliver
    /// instead (None: none), as the tracer chose at the signal-delivery-stop.
    pub(crate) fn ptrace_signal(&mut self, info: SigInfo) -> Option<SigInfo> {
        let signo = info.signo();
        if signo == consts::SIGKILL || !self.thread.is_traced() {
            return Some(info);
        }
        let Some((resume, stop)) = self.ptrace_stop(StopKind::Signal, signo as i32, Some(info)) else { return Some(info) };
        match resume.signal() {
            0 => None,
            s if s == signo => stop.info.or(Some(info)),
            s => Some(SigInfo::new(s, signals::SI_USER).with_sender(self.tg.tgid, self.tg.creds().uid)),
        }
    }

    /// The PTRACE_EVENT_STOP the tracer asked for with PTRACE_INTERRUPT, or
    /// a SIGCONT did, if any (again when asked again meanwhile, or when a
    /// PTRACE_LISTEN of it ended). It reports the group stop's signal while
    /// one is in force, SIGTRAP otherwise (Linux's do_jobctl_trap).
    pub(crate) fn ptrace_interrupted(&mut self) {
        loop {
            {
                let mut p = self.thread.ptrace();
                if !p.interrupt && !p.notify {
                    return;
                }
                p.interrupt = false;
                p.notify = false;
            }
            let signo = {
                let st = self.tg.state();
                if st.stopped { st.stop_signal } else { consts::SIGTRAP }
            };
            let status = signo as i32 | ((PTRACE_EVENT_STOP as i32) << 8);
            self.ptrace_stop(StopKind::Event(PTRACE_EVENT_STOP), status, None);
            if self.exit.is_some() {
                return;
            }
        }
    }

    /// The end of a syscall made while single-stepped: a SIGTRAP at the instruction
    /// after it (Linux's user_single_step_report), in place of its exit stop.
    pub(crate) fn ptrace_step_over_syscall(&mut self) {
        const TRAP_BRKPT: i32 = 1;
        if self.single_step && self.exit.is_none() && self.thread.is_traced() {
            self.force_signal(SigInfo::new(consts::SIGTRAP, TRAP_BRKPT).with_addr(self.cpu.regs.rip));
        }
    }

    /// A syscall-entry or -exit stop, for a tracee resumed with PTRACE_SYSCALL.
    pub(crate) fn ptrace_syscall_stop(&mut self, kind: StopKind) {
        if !self.thread.syscall_stops.load(Ordering::Acquire) {
            return;
        }
        let good = self.thread.ptrace().options & PTRACE_O_TRACESYSGOOD != 0;
        let status = consts::SIGTRAP as i32 | if good { 0x80 } else { 0 };
        self.ptrace_stop(kind, status, None);
    }

    /// A clone by a traced thread whose tracer asked to follow this kind
    /// (PTRACE_O_TRACEFORK, VFORK, CLONE; never with CLONE_UNTRACED): the new
    /// thread is traced too, before it runs, and starts stopped (SIGSTOP, or
    /// PTRACE_EVENT_STOP when seized). Returns the event the parent reports.
    pub(crate) fn ptrace_follow(&self, flags: u64, exit_signal: u32, child: &Arc<Thread>) -> Option<u32> {
        use super::clone::{CLONE_UNTRACED, CLONE_VFORK};
        if !self.thread.is_traced() || flags & CLONE_UNTRACED != 0 {
            return None;
        }
        let event = if flags & CLONE_VFORK != 0 {
            PTRACE_EVENT_VFORK
        } else if exit_signal != consts::SIGCHLD {
            PTRACE_EVENT_CLONE
        } else {
            PTRACE_EVENT_FORK
        };
        let (tracer, seized, options) = {
            let p = self.thread.ptrace();
            (p.tracer()?, p.seized, p.options)
        };
        // PTRACE_O_TRACEFORK is 1 << 1, VFORK 1 << 2, CLONE 1 << 3.
        if options & (1 << event) == 0 {
            return None;
        }
        child.attach_tracer(&tracer, seized, options);
        if seized {
            child.ptrace().interrupt = true;
        } else {
            signals::send_to_thread(child, SigInfo::new(consts::SIGSTOP, signals::SI_USER));
        }
        Some(event)
    }

    /// The parent's PTRACE_EVENT_FORK, VFORK or CLONE stop, with the new
    /// thread's id as the event message.
    pub(crate) fn ptrace_clone_event(&mut self, event: u32, tid: i32) {
        self.thread.ptrace().event_msg = self.tracer_view(tid) as u64;
        let status = consts::SIGTRAP as i32 | ((event as i32) << 8);
        self.ptrace_stop(StopKind::Event(event), status, None);
    }

    /// A task's id as the tracer sees it (Linux's ptrace_event_pid): 0 for one
    /// outside the tracer's PID namespace.
    pub(crate) fn tracer_view(&self, tid: i32) -> i32 {
        let tracer_ns = self.thread.ptrace().tracer().map(|t| t.pid_ns.clone());
        tracer_ns.map_or(tid, |ns| ns.local_id(tid).unwrap_or(0))
    }

    /// After a successful execve: PTRACE_EVENT_EXEC when asked for, else (not
    /// seized) the SIGTRAP Linux sends a traced program after exec. `old_tid`:
    /// its id before the exec, as the tracer sees it (`tracer_view`).
    pub(crate) fn ptrace_exec(&mut self, old_tid: i32) {
        if !self.thread.is_traced() {
            return;
        }
        let (seized, options) = {
            let p = self.thread.ptrace();
            (p.seized, p.options)
        };
        if options & PTRACE_O_TRACEEXEC != 0 {
            self.thread.ptrace().event_msg = old_tid as u64;
            let status = consts::SIGTRAP as i32 | ((PTRACE_EVENT_EXEC as i32) << 8);
            self.ptrace_stop(StopKind::Event(PTRACE_EVENT_EXEC), status, None);
        } else if !seized {
            signals::send_to_thread(&self.thread, SigInfo::new(consts::SIGTRAP, signals::SI_USER));
        }
    }

    /// A traced thread's part in group stop `seq`: a stop for its tracer,
    /// which resumes it (while the group stays stopped for its other threads
    /// and its parent). False when not traced: it waits for SIGCONT.
    pub(crate) fn ptrace_group_stop(&mut self, signo: u32, seq: u64) -> bool {
        let seized = {
            let st = self.tg.state();
            let mut p = self.thread.ptrace();
            if !self.thread.is_traced() {
                return false;
            }
            // A SIGCONT since the caller looked ended the group stop: no part in it.
            if !st.stopped || st.stop_seq != seq {
                return true;
            }
            p.group_stop_seen = seq;
            p.seized
        };
        let status = if seized { signo as i32 | ((PTRACE_EVENT_STOP as i32) << 8) } else { signo as i32 };
        self.ptrace_stop(StopKind::Event(0), status, None);
        true
    }

    /// About to exit: PTRACE_EVENT_EXIT when asked for, with the exit status
    /// (its wait status) as the event message.
    pub(crate) fn ptrace_exit_event(&mut self, wait_status: i32) {
        if !self.thread.is_traced() || self.thread.ptrace().options & PTRACE_O_TRACEEXIT == 0 {
            return;
        }
        self.thread.ptrace().event_msg = wait_status as u64;
        let status = consts::SIGTRAP as i32 | ((PTRACE_EVENT_EXIT as i32) << 8);
        self.ptrace_stop(StopKind::Event(PTRACE_EVENT_EXIT), status, None);
    }

    /// At exit: its tracer's wait reports it. The leader's exit is its group's,
    /// when that is a zombie (`exit.rs`). Another thread becomes a zombie its
    /// tracer reaps (Linux's exit_notify never autoreaps a tracee): returns the
    /// tracer, which `thread_zombie` tells once the thread is among the group's zombies.
    pub(crate) fn ptrace_exit(&self, status: super::ExitStatus) -> Option<Arc<ThreadGroup>> {
        if !self.thread.is_traced() {
            return None;
        }
        let tracer = self.thread.ptrace().tracer()?;
        if self.tid() != self.tg.tgid {
            return Some(tracer);
        }
        self.thread.ptrace().exited = Some(status.wait_status());
        self.tg.state().exit_tracer = Some(Arc::downgrade(&tracer));
        None
    }

    /// This thread is among its group's `zombie_threads` now: its tracer's wait
    /// may report it, unless the tracer let it go meanwhile (`release_tracees`
    /// takes it out of them after detaching it), when it is reaped at once.
    pub(crate) fn thread_zombie(&self, tracer: &Arc<ThreadGroup>, status: super::ExitStatus) {
        let held = {
            let mut p = self.thread.ptrace();
            let held = p.tracer().is_some();
            if held {
                p.exited = Some(status.wait_status());
            }
            held
        };
        if held {
            super::exit::notify_tracer_of_exit(tracer, self.tid(), &self.tg, status);
        } else {
            super::exit::release_zombie_thread(&self.kernel, &self.thread);
        }
    }
}

/// Linux's PTRACE_MODE_ATTACH_REALCREDS: `tracer` may trace (or read the
/// memory of) `target` if it is the same process, or its real ids are all of
/// the target's user and group ids and the target is dumpable, or it has
/// CAP_SYS_PTRACE over the target's user namespace.
pub fn may_trace(tracer: &ThreadGroup, target: &ThreadGroup) -> bool {
    if std::ptr::eq(tracer, target) || tracer.capable_in(&target.user_ns(), consts::CAP_SYS_PTRACE) {
        return true;
    }
    let (me, them) = (tracer.creds(), target.creds());
    let same = [them.uid, them.euid, them.suid].iter().all(|&u| u == me.uid) && [them.gid, them.egid, them.sgid].iter().all(|&g| g == me.gid);
    same && target.dumpable.load(Ordering::Relaxed) == 1
}

/// Tells the tracer a tracee stopped: SIGCHLD unless it asked not to hear of
/// stops, and a wake-up for its waits. A group stop or an interrupt says
/// CLD_STOPPED with the stop signal, if any (Linux's do_jobctl_trap), the other
/// stops CLD_TRAPPED with theirs.
fn notify_tracer(tracer: &Arc<ThreadGroup>, tracee: &Thread, kind: StopKind, status: i32) {
    if tracer.action(consts::SIGCHLD).flags & signals::SA_NOCLDSTOP == 0 {
        let (code, si_status) = match kind {
            StopKind::Event(PTRACE_EVENT_STOP) => (signals::CLD_STOPPED, 0),
            StopKind::Event(0) => (signals::CLD_STOPPED, status & 0x7f),
            _ => (CLD_TRAPPED, status & 0x7f),
        };
        let info = SigInfo::new(consts::SIGCHLD, code).with_sender(tracee.tid(), tracee.tg.creds().uid).with_value(si_status as u64);
        signals::send_to_group(tracer, info);
    }
    tracer.wake_waiters();
}

/// A tracer's group is gone: its tracees go on untraced (killed, for those
/// that asked with PTRACE_O_EXITKILL), a zombie thread it held is reaped, and
/// the parent of a zombie group it held hears of it now (Linux's __ptrace_detach).
pub fn release_tracees(kernel: &Arc<crate::Kernel>, tracer: &ThreadGroup) {
    let tracees = std::mem::take(&mut tracer.state().tracees);
    for th in tracees {
        let kill = th.ptrace().options & PTRACE_O_EXITKILL != 0;
        th.detach_tracer(0);
        // After the detach: a thread exiting meanwhile sees it (`Task::thread_zombie`).
        super::exit::release_zombie_thread(kernel, &th);
        if kill {
            signals::send_to_thread(&th, SigInfo::new(consts::SIGKILL, signals::SI_USER));
        }
        let held_zombie = {
            let mut st = th.tg.state();
            let ours = st.exit_tracer.as_ref().is_some_and(|t| std::ptr::eq(t.as_ptr(), tracer));
            // A group still alive tells its parent when it dies.
            if ours && st.zombie.is_none() {
                st.exit_tracer = None;
            }
            ours && st.zombie.is_some()
        };
        if held_zombie {
            super::exit::tracer_released(&th.tg);
        }
    }
}
