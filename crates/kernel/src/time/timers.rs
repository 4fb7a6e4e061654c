//! One timer facility for the sandbox: a heap of deadlines served by a timekeeper
//! thread that sleeps until the next one (and indefinitely when there is none, so
//! an idle sandbox uses no CPU). Expiry runs the timer's action, which may re-arm.

use std::collections::{BinaryHeap, HashMap};
use std::cmp::Reverse;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// What a timer does when it fires: returns whether it stays armed (intervals).
pub trait TimerAction: Send + Sync {
    fn fire(&self, overrun: u64);
}

struct Armed {
    deadline: Instant,
    interval: Option<Duration>,
    action: Weak<dyn TimerAction>,
    /// Bumped by every (re)arm, so stale heap entries are recognised.
    generation: u64,
    /// For an absolute CLOCK_REALTIME timer, the realtime it is due at: setting
    /// the clock moves `deadline` (`clock_was_set`).
    realtime_ns: Option<i64>,
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Reverse<(Instant, u64, u64)>>,
    timers: HashMap<u64, Armed>,
    next_id: u64,
    running: bool,
}

pub struct Timers {
    state: Mutex<State>,
    cv: Condvar,
}

/// A handle to one timer; disarmed when dropped.
pub struct TimerId {
    id: u64,
    timers: Weak<Timers>,
}

impl Drop for TimerId {
    fn drop(&mut self) {
        if let Some(t) = self.timers.upgrade() {
            t.lock().timers.remove(&self.id);
        }
    }
}

impl Timers {
    pub fn new() -> Arc<Timers> {
        Arc::new(Timers { state: Mutex::default(), cv: Condvar::new() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn create(self: &Arc<Self>) -> TimerId {
        let mut st = self.lock();
        st.next_id += 1;
        TimerId { id: st.next_id, timers: Arc::downgrade(self) }
    }

    /// Arms `timer` to fire at `deadline` (then every `interval`), replacing any
    /// previous setting; `None` disarms it.
    pub fn arm(self: &Arc<Self>, timer: &TimerId, when: Option<(Instant, Option<Duration>)>, action: Weak<dyn TimerAction>) {
        let mut st = self.lock();
        let generation = st.timers.get(&timer.id).map_or(0, |a| a.generation) + 1;
        match when {
            None => {
                st.timers.remove(&timer.id);
            }
            Some((deadline, interval)) => {
                st.timers.insert(timer.id, Armed { deadline, interval: interval.filter(|i| !i.is_zero()), action, generation, realtime_ns: None });
                st.heap.push(Reverse((deadline, timer.id, generation)));
            }
        }
        if !st.running {
            st.running = true;
            let me = self.clone();
            let started = std::thread::Builder::new().name("timekeeper".into()).spawn(move || {
                // Started by whichever task first armed a timer: not pinned with it.
                rvisor_platform::host_cpus::unpin_current_thread();
                me.serve()
            });
            if started.is_err() {
                st.running = false;
                tracing::error!("cannot start the timekeeper");
            }
        }
        drop(st);
        self.cv.notify_all();
    }

    /// Arms `timer` to fire when CLOCK_REALTIME (now `realtime_now`) reads `at_ns`
    /// (then every `interval`), even if the clock is set meanwhile.
    pub fn arm_realtime(self: &Arc<Self>, timer: &TimerId, realtime_now: i64, at_ns: i64, interval: Duration, action: Weak<dyn TimerAction>) {
        let deadline = super::deadline_in(Duration::from_nanos(at_ns.saturating_sub(realtime_now).max(0) as u64));
        self.arm(timer, deadline.map(|d| (d, Some(interval))), action);
        if let Some(a) = self.lock().timers.get_mut(&timer.id) {
            a.realtime_ns = Some(at_ns);
        }
    }

    /// The sandbox's realtime clock was set (it reads `realtime_now`): absolute
    /// realtime timers are due at their realtime, so their deadlines move.
    pub fn clock_was_set(&self, realtime_now: i64) {
        let now = Instant::now();
        let mut st = self.lock();
        let moved: Vec<(u64, Instant, u64)> = st
            .timers
            .iter_mut()
            .filter_map(|(&id, a)| {
                let at = a.realtime_ns?;
                a.deadline = now.checked_add(Duration::from_nanos(at.saturating_sub(realtime_now).max(0) as u64))?;
                a.generation += 1;
                Some((id, a.deadline, a.generation))
            })
            .collect();
        for (id, deadline, generation) in moved {
            st.heap.push(Reverse((deadline, id, generation)));
        }
        drop(st);
        self.cv.notify_all();
    }

    /// The timer facility `timer` belongs to.
    pub fn of(timer: &TimerId) -> Option<Arc<Timers>> {
        timer.timers.upgrade()
    }

    /// When `timer` fires next and its interval, if armed.
    pub fn get(&self, timer: &TimerId) -> Option<(Instant, Option<Duration>)> {
        self.lock().timers.get(&timer.id).map(|a| (a.deadline, a.interval))
    }

    /// Runs `timer` now if it is due, before the timekeeper gets to it (a
    /// starved host thread may be late): what it counted is then as the clock
    /// says, as Linux's timerfd_read forwards its timer to now.
    pub fn catch_up(&self, timer: &TimerId) {
        let now = Instant::now();
        let due = {
            let mut st = self.lock();
            let deadline = st.timers.get(&timer.id).map(|a| a.deadline);
            deadline.filter(|&d| d <= now).and_then(|d| Self::expire(&mut st, timer.id, d, now))
        };
        if let Some((action, overrun)) = due {
            if let Some(a) = action.upgrade() {
                a.fire(overrun);
            }
        }
    }

    /// Takes timer `id`, due at `deadline` (a heap entry's), out of the heap's
    /// order: re-armed for its next period if it has one. Its action and the
    /// periods it missed; None for a stale entry.
    fn expire(st: &mut State, id: u64, deadline: Instant, now: Instant) -> Option<(Weak<dyn TimerAction>, u64)> {
        let a = st.timers.get_mut(&id)?;
        // An entry of an earlier arming, or of a period `catch_up` ran already.
        if a.deadline != deadline {
            return None;
        }
        let action = a.action.clone();
        match a.interval {
            Some(i) => {
                // Missed periods count as overruns; the next one is in the future.
                let missed = now.saturating_duration_since(a.deadline).as_nanos() / i.as_nanos().max(1);
                let step = u32::try_from(missed + 1).ok().and_then(|k| i.checked_mul(k));
                let next = step.and_then(|d| a.deadline.checked_add(d));
                match next {
                    Some(next) => {
                        a.deadline = next;
                        if let (Some(at), Some(d)) = (a.realtime_ns.as_mut(), step) {
                            *at = at.saturating_add(d.as_nanos().min(i64::MAX as u128) as i64);
                        }
                        let g = a.generation;
                        st.heap.push(Reverse((next, id, g)));
                    }
                    // Too far to represent: it never fires again.
                    None => {
                        st.timers.remove(&id);
                    }
                }
                Some((action, missed.min(u64::MAX as u128) as u64))
            }
            None => {
                st.timers.remove(&id);
                Some((action, 0))
            }
        }
    }

    fn serve(self: Arc<Self>) {
        let mut st = self.lock();
        loop {
            let now = Instant::now();
            let mut due = Vec::new();
            while let Some(Reverse((deadline, id, gen))) = st.heap.peek().copied() {
                if deadline > now {
                    break;
                }
                st.heap.pop();
                if st.timers.get(&id).is_some_and(|a| a.generation == gen) {
                    due.extend(Self::expire(&mut st, id, deadline, now));
                }
            }
            if !due.is_empty() {
                drop(st);
                for (action, overrun) in due {
                    if let Some(a) = action.upgrade() {
                        a.fire(overrun);
                    }
                }
                st = self.lock();
                continue;
            }
            st = match st.heap.peek() {
                Some(Reverse((deadline, _, _))) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    self.cv.wait_timeout(st, wait).unwrap_or_else(|e| e.into_inner()).0
                }
                None => self.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}
