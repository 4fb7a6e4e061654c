//! The timers a process owns: the real-time interval timer (alarm, setitimer) and
//! POSIX timers (timer_create). Each delivers a signal through the timekeeper.

use super::timers::{TimerAction, TimerId};
use crate::task::signals::{send_to_group, send_to_thread, SigInfo, SI_KERNEL};
use crate::task::{Thread, ThreadGroup};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// si_code of a signal from a POSIX timer.
pub const SI_TIMER: i32 = -2;

/// Sends a signal when a timer fires.
pub struct SignalOnExpiry {
    pub group: Weak<ThreadGroup>,
    /// SIGEV_THREAD_ID: this thread rather than the process.
    pub thread: Option<Weak<Thread>>,
    pub signo: u32,
    /// For POSIX timers: (timer id, sigev_value); None for itimers.
    pub posix: Option<(i32, u64)>,
    /// The overrun count of the last delivered signal (timer_getoverrun).
    pub overrun: AtomicU64,
    /// While the timer's signal is queued and not yet delivered, the expirations
    /// it stands for beyond the first: as on Linux, a POSIX timer has at most one
    /// signal queued, and later expirations are counted as its overrun.
    pub queued: Mutex<Option<u64>>,
}

/// Linux caps a timer's overrun count (DELAYTIMER_MAX).
const DELAYTIMER_MAX: u64 = i32::MAX as u64;

impl SignalOnExpiry {
    pub fn new(group: Weak<ThreadGroup>, thread: Option<Weak<Thread>>, signo: u32, posix: Option<(i32, u64)>) -> SignalOnExpiry {
        SignalOnExpiry { group, thread, signo, posix, overrun: AtomicU64::new(0), queued: Mutex::new(None) }
    }

    fn send(&self, info: SigInfo) -> bool {
        match self.thread.as_ref().and_then(Weak::upgrade) {
            Some(th) => send_to_thread(&th, info),
            None => self.group.upgrade().is_some_and(|g| send_to_group(&g, info)),
        }
    }

    /// The timer's signal is being delivered: fixes its overrun count.
    pub fn delivered(&self, info: &mut SigInfo) {
        let overrun = self.queued.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or(0).min(DELAYTIMER_MAX);
        self.overrun.store(overrun, Ordering::Relaxed);
        if let Some((id, _)) = self.posix {
            *info = info.with_sender(id, overrun as u32);
        }
    }
}

impl TimerAction for SignalOnExpiry {
    fn fire(&self, overrun: u64) {
        if self.signo == 0 {
            self.overrun.store(overrun, Ordering::Relaxed);
            return;
        }
        let Some((id, value)) = self.posix else {
            self.send(SigInfo::new(self.signo, SI_KERNEL));
            return;
        };
        {
            let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = queued.as_mut() {
                *n = n.saturating_add(1 + overrun);
                return;
            }
            *queued = Some(overrun);
        }
        if !self.send(SigInfo::new(self.signo, SI_TIMER).with_sender(id, 0).with_value(value)) {
            // Ignored, or nobody to take it: no signal stays queued.
            self.queued.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
    }
}

pub struct PosixTimer {
    pub timer: TimerId,
    pub action: Arc<SignalOnExpiry>,
    pub clock: i32,
}

/// A CPU-time interval timer: expiry and period in nanoseconds of the CPU time
/// it counts (`itimer_clock`).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuTimer {
    pub expires_ns: u64,
    pub interval_ns: u64,
}

/// Guarded by the thread group's timers lock (a leaf).
#[derive(Default)]
pub struct ProcessTimers {
    /// ITIMER_VIRTUAL (user time) and ITIMER_PROF (user and system time).
    pub virt: Option<CpuTimer>,
    pub prof: Option<CpuTimer>,
    /// When RLIMIT_CPU's soft limit last sent SIGXCPU (in CPU nanoseconds).
    pub xcpu_sent_ns: Option<u64>,
    /// ITIMER_REAL: (timer, its SIGALRM action).
    pub real: Option<(TimerId, Arc<SignalOnExpiry>)>,
    pub posix: HashMap<i32, PosixTimer>,
    pub next_id: i32,
}

/// How often CPU-time limits and timers are checked while any process has one.
const CPU_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Watches the processes that have CPU-time timers or a finite RLIMIT_CPU: a
/// timekeeper tick runs only while there is one (the sandbox stays tickless).
pub struct CpuWatch {
    groups: std::sync::Mutex<Vec<Weak<ThreadGroup>>>,
    timer: TimerId,
    tick: Arc<CpuTick>,
}

struct CpuTick {
    watch: std::sync::OnceLock<Weak<CpuWatch>>,
}

impl CpuWatch {
    pub fn new(timers: &Arc<super::timers::Timers>) -> Arc<CpuWatch> {
        let w = Arc::new(CpuWatch { groups: std::sync::Mutex::default(), timer: timers.create(), tick: Arc::new(CpuTick { watch: std::sync::OnceLock::new() }) });
        let _ = w.tick.watch.set(Arc::downgrade(&w));
        w
    }

    /// Starts (or keeps) checking `tg`.
    pub fn watch(&self, timers: &Arc<super::timers::Timers>, tg: &Arc<ThreadGroup>) {
        let mut g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = g.is_empty();
        if !g.iter().any(|w| w.as_ptr() == Arc::as_ptr(tg)) {
            g.push(Arc::downgrade(tg));
        }
        if was_empty {
            let weak: Weak<dyn TimerAction> = Arc::downgrade(&self.tick) as Weak<dyn TimerAction>;
            timers.arm(&self.timer, super::deadline_in(CPU_TICK).map(|d| (d, Some(CPU_TICK))), weak);
        }
    }
}

/// The CPU time an interval timer counts: ITIMER_VIRTUAL user time only,
/// ITIMER_PROF both.
pub fn itimer_clock(cpu: crate::task::CpuTimes, virt: bool) -> u64 {
    if virt { cpu.user_ns } else { cpu.total() }
}

/// Checks one process; returns whether it still needs watching.
fn check(tg: &Arc<ThreadGroup>) -> bool {
    use rvisor_abi::consts::{SIGKILL, SIGPROF, SIGVTALRM, SIGXCPU};
    if tg.state().zombie.is_some() {
        return false;
    }
    let times = tg.cpu_times();
    let cpu = times.total();
    let limit = tg.rlimit(crate::task::RLIMIT_CPU_INDEX);
    let mut fire = Vec::new();
    let watching = {
        let mut guard = tg.timers.lock().unwrap_or_else(|e| e.into_inner());
        let t = &mut *guard;
        for (slot, signo, virt) in [(&mut t.virt, SIGVTALRM, true), (&mut t.prof, SIGPROF, false)] {
            let now = itimer_clock(times, virt);
            if let Some(ct) = slot {
                if now >= ct.expires_ns {
                    fire.push(signo);
                    *slot = (ct.interval_ns > 0).then(|| CpuTimer { expires_ns: now + ct.interval_ns, interval_ns: ct.interval_ns });
                }
            }
        }
        let secs = cpu / 1_000_000_000;
        // Linux treats a zero limit as one second.
        if limit.max != u64::MAX && secs >= limit.max.max(1) {
            fire.push(SIGKILL);
        } else if limit.cur != u64::MAX && secs >= limit.cur.max(1) && t.xcpu_sent_ns.is_none_or(|at| cpu >= at + 1_000_000_000) {
            // SIGXCPU at the soft limit, and again every CPU second after it.
            t.xcpu_sent_ns = Some(cpu);
            fire.push(SIGXCPU);
        }
        t.virt.is_some() || t.prof.is_some() || limit.cur != u64::MAX || limit.max != u64::MAX
    };
    for signo in fire {
        send_to_group(tg, SigInfo::new(signo, SI_KERNEL));
    }
    watching
}

impl TimerAction for CpuTick {
    fn fire(&self, _overrun: u64) {
        let Some(w) = self.watch.get().and_then(Weak::upgrade) else { return };
        let groups: Vec<Arc<ThreadGroup>> = w.groups.lock().unwrap_or_else(|e| e.into_inner()).iter().filter_map(Weak::upgrade).collect();
        let keep: Vec<Weak<ThreadGroup>> = groups.iter().filter(|g| check(g)).map(Arc::downgrade).collect();
        let empty = keep.is_empty();
        *w.groups.lock().unwrap_or_else(|e| e.into_inner()) = keep;
        if empty {
            // Nothing left to watch: let the timekeeper sleep.
            if let Some(t) = crate::time::timers::Timers::of(&w.timer) {
                t.arm(&w.timer, None, Weak::<CpuTick>::new() as Weak<dyn TimerAction>);
            }
        }
    }
}
