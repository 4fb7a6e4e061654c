//! `WaitQueue`: the threads blocked on a file (a pipe, an eventfd, an epoll set).
//! A blocking task registers its thread, checks readiness, and sleeps on its own
//! `Waiter`; the file calls `notify` when its readiness may have changed.

use crate::task::Thread;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct WaitQueue {
    /// A leaf lock.
    threads: Mutex<Vec<Arc<Thread>>>,
}

impl WaitQueue {
    pub fn register(&self, t: &Arc<Thread>) {
        let mut v = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        if !v.iter().any(|x| Arc::ptr_eq(x, t)) {
            v.push(t.clone());
        }
    }

    pub fn unregister(&self, t: &Arc<Thread>) {
        self.threads.lock().unwrap_or_else(|e| e.into_inner()).retain(|x| !Arc::ptr_eq(x, t));
    }

    /// Wakes every registered thread; each re-checks what it waits for.
    pub fn notify(&self) {
        for t in self.threads.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            t.waiter.wake();
        }
    }
}
