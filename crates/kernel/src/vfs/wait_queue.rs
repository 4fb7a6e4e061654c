//! `WaitQueue`: the threads blocked on a file (a pipe, an eventfd, an epoll set).
//! A blocking task registers its thread, checks readiness, and sleeps on its own
//! `Waiter`; the file calls `notify` when its readiness may have changed.
//!
//! Besides threads, a queue holds callbacks (`WaitCallback`): an epoll set hears of
//! its files this way, with the events that may have changed, as Linux's
//! `ep_poll_callback` does. A thread that waits in a host poll (a poll over a mix of
//! host streams and Sentry files) registers with `register_host`, so a notification
//! also kicks its host wake-up eventfd.
//!
//! A file calls `notify` with none of its own locks held: callbacks take the epoll
//! set's ready-list lock.

use crate::task::Thread;
use std::sync::{Arc, Mutex};

/// Something other than a thread that wants to hear when a file's readiness may
/// have changed. `wake` runs with no wait-queue lock held; it must not block.
pub trait WaitCallback: Send + Sync {
    /// `events`: the poll events that may have changed (POLLIN for new data...).
    fn wake(self: Arc<Self>, events: u32);

    /// Whether it can never act again (what it served is gone): the queue
    /// drops such callbacks when the next one registers, so a long-lived file
    /// does not collect them.
    fn is_dead(&self) -> bool {
        false
    }
}

struct Registered {
    thread: Arc<Thread>,
    /// Also write the thread's host wake-up eventfd.
    host: bool,
}

#[derive(Default)]
pub struct WaitQueue {
    /// A leaf lock.
    threads: Mutex<Vec<Registered>>,
    /// A leaf lock; never held while a callback runs.
    callbacks: Mutex<Vec<Arc<dyn WaitCallback>>>,
}

impl WaitQueue {
    pub fn register(&self, t: &Arc<Thread>) {
        self.register_thread(t, false)
    }

    /// Registers a thread that waits in a host poll beside its host wake-up eventfd.
    pub fn register_host(&self, t: &Arc<Thread>) {
        self.register_thread(t, true)
    }

    fn register_thread(&self, t: &Arc<Thread>, host: bool) {
        let mut v = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        match v.iter_mut().find(|x| Arc::ptr_eq(&x.thread, t)) {
            Some(r) => r.host |= host,
            None => v.push(Registered { thread: t.clone(), host }),
        }
    }

    pub fn unregister(&self, t: &Arc<Thread>) {
        self.threads.lock().unwrap_or_else(|e| e.into_inner()).retain(|x| !Arc::ptr_eq(&x.thread, t));
    }

    pub fn register_callback(&self, cb: Arc<dyn WaitCallback>) {
        let mut v = self.callbacks.lock().unwrap_or_else(|e| e.into_inner());
        v.retain(|x| !x.is_dead());
        if !v.iter().any(|x| Arc::ptr_eq(x, &cb)) {
            v.push(cb);
        }
    }

    pub fn unregister_callback(&self, cb: &Arc<dyn WaitCallback>) {
        self.callbacks.lock().unwrap_or_else(|e| e.into_inner()).retain(|x| !Arc::ptr_eq(x, cb));
    }

    /// Wakes every registered thread; each re-checks what it waits for.
    pub fn notify(&self) {
        self.notify_events(!0)
    }

    /// Wakes every registered thread, and every callback with `events`.
    pub fn notify_events(&self, events: u32) {
        for r in self.threads.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            r.thread.waiter.wake();
            if r.host {
                if let Some(efd) = r.thread.host_wake() {
                    let _ = efd.write(1);
                }
            }
        }
        let cbs: Vec<Arc<dyn WaitCallback>> = {
            let v = self.callbacks.lock().unwrap_or_else(|e| e.into_inner());
            if v.is_empty() {
                return;
            }
            v.clone()
        };
        for cb in cbs {
            cb.wake(events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    #[derive(Default)]
    struct Probe {
        dead: AtomicBool,
        woken: AtomicU32,
    }

    impl WaitCallback for Probe {
        fn wake(self: Arc<Self>, _events: u32) {
            self.woken.fetch_add(1, Ordering::Relaxed);
        }

        fn is_dead(&self) -> bool {
            self.dead.load(Ordering::Relaxed)
        }
    }

    /// A file that outlives many short-lived watchers (O_ASYNC descriptions of a
    /// FIFO, epoll sets closed without EPOLL_CTL_DEL) keeps only the live ones.
    #[test]
    fn dead_callbacks_go_when_the_next_registers() {
        let q = WaitQueue::default();
        let probes: Vec<Arc<Probe>> = (0..1000).map(|_| Arc::new(Probe::default())).collect();
        for p in &probes {
            q.register_callback(p.clone());
            p.dead.store(true, Ordering::Relaxed);
        }
        let live = Arc::new(Probe::default());
        q.register_callback(live.clone());
        assert_eq!(q.callbacks.lock().unwrap().len(), 1);
        q.notify_events(1);
        assert_eq!(live.woken.load(Ordering::Relaxed), 1);
        assert!(probes.iter().all(|p| p.woken.load(Ordering::Relaxed) == 0));
    }
}
