//! Host threads for tasks, kept for reuse. Every task runs on a host thread of its own;
//! starting one (a stack mapped, a clone, thread-local setup) and ending it took about
//! a tenth of a thread's create+join. A task's host thread that is done waits, uncounted
//! on any CPU, for the next task, up to [`MAX_IDLE`] of them.

use rvisor_platform::host_cpus;
use std::sync::{Arc, Condvar, Mutex};

/// What a host thread runs for a task: its whole life.
pub type TaskBody = Box<dyn FnOnce() + Send>;

/// Idle host threads kept, at most.
const MAX_IDLE: usize = 4;

/// Where a task's host thread runs.
#[derive(Clone, Copy)]
pub enum Placement {
    /// Wherever the host places it (a new process).
    Host,
    /// On its creator's CPU (a new thread; see `Clone::spawn`).
    With(u32),
}

/// The next task for one idle host thread. Lock: a leaf.
struct Slot {
    tid: i32,
    next: Mutex<Option<(String, TaskBody)>>,
    ready: Condvar,
}

#[derive(Default)]
pub struct HostThreads {
    /// Idle host threads, most recently idle last. Lock: a leaf.
    idle: Mutex<Vec<Arc<Slot>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HostThreads {
    /// Runs `body` on an idle host thread, or on a new one named `name`.
    pub fn run(self: &Arc<Self>, name: String, at: Placement, body: TaskBody) -> std::io::Result<()> {
        if let Some(slot) = lock(&self.idle).pop() {
            // Placed before it wakes, so that it wakes where it is to run: waking it on
            // another CPU and moving it would cost two CPU wake-ups.
            match at {
                Placement::Host => host_cpus::set_affinity(slot.tid, host_cpus::allowed_set()),
                Placement::With(cpu) => host_cpus::pin(slot.tid, cpu),
            };
            *lock(&slot.next) = Some((name, body));
            slot.ready.notify_one();
            return Ok(());
        }
        let me = self.clone();
        let builder = std::thread::Builder::new().name(name);
        let first = move || me.serve(body);
        match at {
            // A thread spawned by a pinned one inherits its CPU; this one must not.
            Placement::Host => host_cpus::spawn_unpinned(builder, first).map(drop),
            Placement::With(_) => builder.spawn(first).map(drop),
        }
    }

    /// Runs `body`, then whatever tasks it is given while idle, while it may stay.
    fn serve(&self, mut body: TaskBody) {
        let slot = Arc::new(Slot { tid: nix::unistd::gettid().as_raw(), next: Mutex::new(None), ready: Condvar::new() });
        loop {
            body();
            // No longer the task's: its CPU stops counting it (but it stays pinned there
            // until placed for the next task).
            host_cpus::forget_current_thread();
            {
                let mut idle = lock(&self.idle);
                if idle.len() >= MAX_IDLE {
                    return;
                }
                idle.push(slot.clone());
            }
            let mut next = lock(&slot.next);
            let (name, job) = loop {
                if let Some(job) = next.take() {
                    break job;
                }
                next = slot.ready.wait(next).unwrap_or_else(|e| e.into_inner());
            };
            drop(next);
            if let Ok(name) = std::ffi::CString::new(name) {
                let _ = nix::sys::prctl::set_name(&name);
            }
            body = job;
        }
    }
}
