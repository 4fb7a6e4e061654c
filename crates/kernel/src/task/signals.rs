//! Signals: siginfo, pending queues, default actions, and sending.

use super::{ExitStatus, StopReport, Thread, ThreadGroup};
use rvisor_abi::consts;
use std::sync::Arc;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;
pub const SA_NOCLDSTOP: u64 = 1;
pub const SA_NOCLDWAIT: u64 = 2;
pub const SA_SIGINFO: u64 = 4;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;
pub const SA_RESTORER: u64 = 0x0400_0000;

pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TKILL: i32 = -6;
/// A message queue's notification.
pub const SI_MESGQ: i32 = -3;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const BUS_ADRERR: i32 = 2;

/// Bit for signal `signo` in a signal set.
pub fn sigbit(signo: u32) -> u64 {
    1u64 << (signo - 1)
}

/// SIGKILL and SIGSTOP can be neither caught, blocked nor ignored.
pub const UNBLOCKABLE: u64 = (1 << (consts::SIGKILL - 1)) | (1 << (consts::SIGSTOP - 1));
/// Faults the CPU raises; dequeued before other signals, as Linux does.
const SYNCHRONOUS: u64 = (1 << (consts::SIGSEGV - 1)) | (1 << (consts::SIGBUS - 1)) | (1 << (consts::SIGILL - 1))
    | (1 << (consts::SIGTRAP - 1)) | (1 << (consts::SIGFPE - 1)) | (1 << (consts::SIGSYS - 1));
const STOP_SIGNALS: u64 = (1 << (consts::SIGSTOP - 1)) | (1 << (consts::SIGTSTP - 1)) | (1 << (consts::SIGTTIN - 1)) | (1 << (consts::SIGTTOU - 1));
/// First real-time signal: from here on signals queue instead of coalescing.
const SIGRTMIN: u32 = 32;

/// `siginfo_t`, 128 bytes; the union's fields are set by offset.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct SigInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    pad: i32,
    fields: [u64; 14],
}

impl std::fmt::Debug for SigInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{{si_signo={}, si_code={}, word0={:#x}}}", self.signo, self.code, self.fields[0])
    }
}

impl SigInfo {
    pub fn new(signo: u32, code: i32) -> SigInfo {
        SigInfo { signo: signo as i32, errno: 0, code, pad: 0, fields: [0; 14] }
    }

    /// si_pid and si_uid (kill, sigqueue, SIGCHLD).
    pub fn with_sender(mut self, pid: i32, uid: u32) -> SigInfo {
        self.fields[0] = (pid as u32 as u64) | ((uid as u64) << 32);
        self
    }

    /// The signal as a receiver in user namespace `ns` and PID namespace
    /// `pid_ns` gets it: a sender's uid and pid (kill, sigqueue, tgkill, a
    /// message queue's, SIGCHLD's) are the sandbox's and the table's here, the
    /// receiver's namespaces' there (a pid it cannot see is 0), as Linux maps
    /// them when sending.
    pub fn seen_from(mut self, ns: &super::UserNamespace, pid_ns: &super::PidNamespace) -> SigInfo {
        let has_uid = matches!(self.code, SI_USER | SI_QUEUE | SI_MESGQ | SI_TKILL) || (self.signo() == consts::SIGCHLD && (1..=6).contains(&self.code));
        if has_uid && !ns.is_initial() {
            let uid = ns.show_uid((self.fields[0] >> 32) as u32);
            self.fields[0] = (self.fields[0] & 0xffff_ffff) | (u64::from(uid) << 32);
        }
        if has_uid && pid_ns.level > 0 {
            let pid = pid_ns.local_id(self.fields[0] as u32 as i32).unwrap_or(0);
            self.fields[0] = (self.fields[0] & !0xffff_ffff) | u64::from(pid as u32);
        }
        self
    }

    /// si_addr (faults).
    pub fn with_addr(mut self, addr: u64) -> SigInfo {
        self.fields[0] = addr;
        self
    }

    /// si_call_addr, si_syscall and si_arch (a seccomp SIGSYS).
    pub fn with_syscall(mut self, call_addr: u64, nr: i32, arch: u32) -> SigInfo {
        self.fields[0] = call_addr;
        self.fields[1] = (nr as u32 as u64) | ((arch as u64) << 32);
        self
    }

    /// si_band and si_fd (a signal of signal-driven I/O).
    pub fn with_poll(mut self, band: u32, fd: i32) -> SigInfo {
        self.fields[0] = u64::from(band);
        self.fields[1] = u64::from(fd as u32);
        self
    }

    /// si_timerid of a POSIX timer's signal (where `with_sender` put it).
    pub fn timer_id(&self) -> i32 {
        self.fields[0] as u32 as i32
    }

    /// The first two words after si_code: (si_pid | si_uid << 32, or si_addr;
    /// si_status or si_value).
    pub fn words(&self) -> (u64, u64) {
        (self.fields[0], self.fields[1])
    }

    /// si_status (SIGCHLD) or si_value (sigqueue): the word after pid/uid.
    pub fn with_value(mut self, v: u64) -> SigInfo {
        self.fields[1] = v;
        self
    }

    pub fn signo(&self) -> u32 {
        self.signo as u32
    }

    /// Whether the sender is the kernel (then si_code > 0) rather than a process.
    pub fn from_kernel(&self) -> bool {
        self.code > 0
    }
}

/// Pending signals: standard ones coalesce, real-time ones queue with their info.
#[derive(Default)]
pub struct SigQueue {
    entries: Vec<SigInfo>,
    /// Bit n-1 set while signal n has an entry.
    pub mask: u64,
}

impl SigQueue {
    /// Queues a signal; false when a standard signal already pending absorbs it.
    pub fn push(&mut self, info: SigInfo) -> bool {
        let signo = info.signo();
        if signo < SIGRTMIN && self.mask & sigbit(signo) != 0 {
            return false;
        }
        self.mask |= sigbit(signo);
        self.entries.push(info);
        true
    }

    /// Removes and returns the next deliverable signal not in `blocked`:
    /// synchronous faults first, then the lowest number, oldest first.
    pub fn pop(&mut self, blocked: u64) -> Option<SigInfo> {
        let ready = self.mask & !blocked;
        if ready == 0 {
            return None;
        }
        let pick = if ready & SYNCHRONOUS != 0 { ready & SYNCHRONOUS } else { ready };
        let signo = pick.trailing_zeros() + 1;
        let i = self.entries.iter().position(|e| e.signo() == signo)?;
        let info = self.entries.remove(i);
        if !self.entries.iter().any(|e| e.signo() == signo) {
            self.mask &= !sigbit(signo);
        }
        Some(info)
    }

    /// How many signals are queued.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops every pending instance of the signals in `set`.
    pub fn discard(&mut self, set: u64) {
        self.entries.retain(|e| sigbit(e.signo()) & set == 0);
        self.mask &= !set;
    }
}

/// sigaltstack state.
#[derive(Clone, Copy, Default, Debug)]
pub struct SigAltStack {
    pub sp: u64,
    pub size: u64,
    pub disabled: bool,
}

impl SigAltStack {
    pub fn is_set(&self) -> bool {
        self.size != 0 && !self.disabled
    }

    pub fn contains(&self, sp: u64) -> bool {
        self.is_set() && sp > self.sp && sp <= self.sp + self.size
    }
}

/// What a signal does when its disposition is SIG_DFL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    Core,
    Stop,
    Continue,
    Ignore,
}

pub fn default_action(signo: u32) -> DefaultAction {
    match signo {
        consts::SIGCHLD | consts::SIGURG | consts::SIGWINCH => DefaultAction::Ignore,
        consts::SIGCONT => DefaultAction::Continue,
        s if sigbit(s) & STOP_SIGNALS != 0 => DefaultAction::Stop,
        consts::SIGQUIT | consts::SIGILL | consts::SIGTRAP | consts::SIGABRT | consts::SIGBUS | consts::SIGFPE
        | consts::SIGSEGV | consts::SIGXCPU | consts::SIGXFSZ | consts::SIGSYS => DefaultAction::Core,
        _ => DefaultAction::Terminate,
    }
}

/// Whether the group would throw `signo` away at generation time.
fn ignored(tg: &ThreadGroup, signo: u32) -> bool {
    let act = tg.action(signo);
    act.handler == SIG_IGN || (act.handler == SIG_DFL && default_action(signo) == DefaultAction::Ignore)
}

/// Starts the death of the whole group: every thread exits with `status`.
pub fn group_exit(tg: &ThreadGroup, status: ExitStatus) {
    let threads = {
        let mut st = tg.state();
        if st.exiting.is_none() {
            st.exiting = Some(status);
        }
        st.stopped = false;
        st.continued_untold = false;
        st.threads.clone()
    };
    for th in threads {
        th.interrupt();
    }
}

/// SIGCONT's side effect at generation: a stopped group resumes.
fn continue_group(tg: &Arc<ThreadGroup>) {
    // Pending stop signals go first: one a thread took before is either taken
    // before the count below changes, which cancels its stop (`stop_group`),
    // or stops the group before this ends the stop.
    tg.sig().pending.discard(STOP_SIGNALS);
    for th in tg.threads() {
        th.sig().pending.discard(STOP_SIGNALS);
    }
    let was_stopped = {
        let mut st = tg.state();
        st.continues += 1;
        let was = st.stopped;
        if was {
            st.stopped = false;
            st.report = Some(StopReport::Continued);
            // The parent hears of it when a thread next runs (`handle_signals`);
            // a wait finds it at once.
            st.continued_untold = true;
        }
        was
    };
    for th in tg.threads() {
        // A seized tracee stops for its tracer (Linux's ptrace_trap_notify),
        // stopped or not. A tracer waiting for a tracee to enter the group
        // stop (`wait_for_trap`) learns that it ended.
        if th.is_traced() {
            let (seized, tracer) = {
                let p = th.ptrace();
                (p.seized, p.tracer())
            };
            if seized {
                th.ptrace_trap(true);
            }
            if let Some(tracer) = tracer {
                tracer.wake_waiters();
            }
        }
    }
    if was_stopped {
        tg.wake_all();
    }
}

impl Thread {
    /// Makes `mask` the thread's blocked signals (Linux's __set_task_blocked).
    /// A process-directed signal pending that it blocks now may be one that
    /// `deliver` woke it for: the other threads that can take it are woken
    /// instead, or it would wait for this one to unblock it (Linux's
    /// retarget_shared_pending).
    pub fn set_sigmask(&self, mask: u64) {
        let mask = mask & !UNBLOCKABLE;
        let old = std::mem::replace(&mut self.sig().mask, mask);
        let retarget = self.tg.sig().pending.mask & mask & !old;
        if retarget == 0 {
            return;
        }
        for th in self.tg.threads() {
            if !std::ptr::eq(Arc::as_ptr(&th), self) && retarget & !th.sig().mask != 0 {
                th.interrupt();
            }
        }
    }
}

/// Tells the parent a child stopped or continued (SIGCHLD unless SA_NOCLDSTOP).
/// CLD_CONTINUED, for a SIGCONT that ended the group's stop, to the parent
/// and the leader's tracer.
pub fn notify_continued(tg: &ThreadGroup) {
    notify_parent_of_stop(tg, CLD_CONTINUED, consts::SIGCONT);
    // The leader's tracer is told too, unless it is the parent (Linux's
    // get_signal: "for backward compatibility").
    let leader_tracer = tg.threads().into_iter().find(|th| th.tid() == tg.tgid).and_then(|th| th.ptrace().tracer());
    if let Some(tracer) = leader_tracer.filter(|t| !tg.parent().is_some_and(|p| Arc::ptr_eq(&p, t))) {
        notify_of_stop(&tracer, tg, CLD_CONTINUED, consts::SIGCONT);
    }
}

pub fn notify_parent_of_stop(tg: &ThreadGroup, code: i32, signo: u32) {
    if let Some(parent) = tg.parent() {
        notify_of_stop(&parent, tg, code, signo);
    }
}

/// Tells `to` (a parent or tracer) that `tg` stopped or continued.
fn notify_of_stop(to: &Arc<ThreadGroup>, tg: &ThreadGroup, code: i32, signo: u32) {
    if to.action(consts::SIGCHLD).flags & SA_NOCLDSTOP == 0 {
        let uid = tg.creds().uid;
        let info = SigInfo::new(consts::SIGCHLD, code).with_sender(tg.tgid, uid).with_value(signo as u64);
        send_to_group(to, info);
    }
    to.wake_waiters();
}

/// Sends a process-directed signal.
pub fn send_to_group(tg: &Arc<ThreadGroup>, info: SigInfo) -> bool {
    deliver(tg, None, info)
}

/// The live (not yet zombie) processes of process group `pgid` (a table id)
/// visible in `pid_ns`.
pub fn process_group(pid_ns: &Arc<super::PidNamespace>, pgid: i32) -> Vec<Arc<ThreadGroup>> {
    pid_ns
        .groups()
        .into_iter()
        .filter(|g| {
            let st = g.state();
            st.pgid == pgid && st.zombie.is_none()
        })
        .collect()
}

/// Sends a signal to every live process of process group `pgid`.
pub fn send_to_process_group(pid_ns: &Arc<super::PidNamespace>, pgid: i32, info: SigInfo) {
    for g in process_group(pid_ns, pgid) {
        send_to_group(&g, info);
    }
}

/// Sends a thread-directed signal.
pub fn send_to_thread(th: &Arc<Thread>, info: SigInfo) -> bool {
    deliver(&th.tg, Some(th), info)
}

/// Returns whether the signal was queued (not dropped: ignored, or the target
/// is dying).
fn deliver(tg: &Arc<ThreadGroup>, target: Option<&Arc<Thread>>, info: SigInfo) -> bool {
    let signo = info.signo();
    let info = info.seen_from(&tg.user_ns(), &tg.pid_ns);
    {
        let st = tg.state();
        if st.zombie.is_some() || st.exiting.is_some() {
            return false;
        }
    }
    if signo == consts::SIGKILL {
        group_exit(tg, ExitStatus::killed_by(signo));
        return true;
    }
    if signo == consts::SIGCONT {
        continue_group(tg);
    }
    if sigbit(signo) & STOP_SIGNALS != 0 {
        tg.sig().pending.discard(sigbit(consts::SIGCONT));
        for th in tg.threads() {
            th.sig().pending.discard(sigbit(consts::SIGCONT));
        }
    }
    let blocked_by = |th: &Thread| th.sig().mask & sigbit(signo) != 0;
    // An ignored signal is dropped now unless a thread blocks it, or is traced:
    // a tracer sees even ignored signals (Linux's sig_ignored), and may deliver them.
    let keeps = |th: &Thread| blocked_by(th) || th.is_traced();
    match target {
        Some(th) => {
            if ignored(tg, signo) && !keeps(th) {
                return false;
            }
            if !th.sig().pending.push(info) {
                return false;
            }
            tg.signalfd_waiters.notify_events(crate::vfs::POLLIN);
            th.interrupt();
        }
        None => {
            let threads = tg.threads();
            if ignored(tg, signo) && !threads.iter().any(|t| keeps(t)) {
                return false;
            }
            if !tg.sig().pending.push(info) {
                return false;
            }
            tg.signalfd_waiters.notify_events(crate::vfs::POLLIN);
            // Wake one thread that can take it. If all block it, it stays pending,
            // but a thread in sigwait may be waiting for exactly this: let the
            // blocked waiters look again.
            match threads.iter().find(|t| !blocked_by(t)) {
                Some(th) => th.interrupt(),
                None => threads.iter().for_each(|t| t.waiter.wake()),
            }
        }
    }
    true
}
