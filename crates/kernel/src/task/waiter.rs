//! `Waiter`: how a task blocks in the Sentry. Every wake-up source (futex, child
//! state, signals, timers) bumps the waiter's sequence number; a blocked task reads
//! the number before checking its condition, so no wake-up is lost in between.
//! Each sleep is one of the task's voluntary context switches (Linux's nvcsw).

use super::loadavg::LoadAvg;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

pub struct Waiter {
    seq: Mutex<u64>,
    cv: Condvar,
    /// Set while the task sleeps (here or in a host poll): /proc's state S.
    sleeping: AtomicBool,
    /// Times the task slept (getrusage's ru_nvcsw, /proc's voluntary_ctxt_switches).
    nvcsw: AtomicU64,
    /// The sandbox's load averages, which count the task as active unless asleep.
    load: Arc<LoadAvg>,
}

impl Waiter {
    pub fn new(load: Arc<LoadAvg>) -> Waiter {
        Waiter { seq: Mutex::new(0), cv: Condvar::new(), sleeping: AtomicBool::new(false), nvcsw: AtomicU64::new(0), load }
    }

    /// Runs `f`, a wait, with the task marked asleep (and not active for the
    /// load averages).
    pub fn asleep<R>(&self, f: impl FnOnce() -> R) -> R {
        self.nvcsw.fetch_add(1, Ordering::Relaxed);
        self.sleeping.store(true, Ordering::Relaxed);
        self.load.deactivate();
        let r = f();
        self.load.activate();
        self.sleeping.store(false, Ordering::Relaxed);
        r
    }

    pub fn is_asleep(&self) -> bool {
        self.sleeping.load(Ordering::Relaxed)
    }

    /// How many times the task slept.
    pub fn nvcsw(&self) -> u64 {
        self.nvcsw.load(Ordering::Relaxed)
    }

    pub fn seq(&self) -> u64 {
        *self.seq.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn wake(&self) {
        let mut s = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        *s = s.wrapping_add(1);
        self.cv.notify_all();
    }

    /// Sleeps until woken after `seen` was read, or until `deadline`. Returns false
    /// if the deadline passed.
    /// The task's CPU counts as free meanwhile (see `host_cpus`).
    pub fn wait(&self, seen: u64, deadline: Option<Instant>) -> bool {
        let mut s = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        // Woken already, or out of time: no sleep, so no context switch to count.
        if *s != seen {
            return true;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        self.asleep(|| rvisor_platform::host_cpus::asleep(|| {
            while *s == seen {
                match deadline {
                    None => s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner()),
                    Some(d) => {
                        let now = Instant::now();
                        if now >= d {
                            return false;
                        }
                        s = self.cv.wait_timeout(s, d - now).unwrap_or_else(|e| e.into_inner()).0;
                    }
                }
            }
            true
        }))
    }
}
