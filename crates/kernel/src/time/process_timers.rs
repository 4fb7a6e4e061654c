//! The timers a process owns: the real-time interval timer (alarm, setitimer) and
//! POSIX timers (timer_create). Each delivers a signal through the timekeeper.

use super::timers::{TimerAction, TimerId};
use crate::task::signals::{send_to_group, send_to_thread, SigInfo, SI_KERNEL};
use crate::task::{Thread, ThreadGroup};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

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
    /// Periods missed at the last expiry (timer_getoverrun).
    pub overrun: AtomicU64,
}

impl TimerAction for SignalOnExpiry {
    fn fire(&self, overrun: u64) {
        self.overrun.store(overrun, Ordering::Relaxed);
        if self.signo == 0 {
            return;
        }
        let info = match self.posix {
            Some((id, value)) => SigInfo::new(self.signo, SI_TIMER).with_sender(id, overrun.min(i32::MAX as u64) as u32).with_value(value),
            None => SigInfo::new(self.signo, SI_KERNEL),
        };
        match self.thread.as_ref().and_then(Weak::upgrade) {
            Some(th) => send_to_thread(&th, info),
            None => {
                if let Some(g) = self.group.upgrade() {
                    send_to_group(&g, info);
                }
            }
        }
    }
}

pub struct PosixTimer {
    pub timer: TimerId,
    pub action: Arc<SignalOnExpiry>,
    pub clock: i32,
}

/// Guarded by the thread group's timers lock (a leaf).
#[derive(Default)]
pub struct ProcessTimers {
    /// ITIMER_REAL: (timer, its SIGALRM action).
    pub real: Option<(TimerId, Arc<SignalOnExpiry>)>,
    pub posix: HashMap<i32, PosixTimer>,
    pub next_id: i32,
}
