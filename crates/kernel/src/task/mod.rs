//! Tasks (threads) and thread groups (processes).
//!
//! A `Task` is owned by the host thread that runs it: the task loop switches into
//! app code, handles what comes back, and repeats. State other tasks may touch
//! lives in the shared `ThreadGroup`, behind its own locks.

mod exit;
mod run;
mod thread_group;

pub use exit::ExitStatus;
pub use thread_group::{Credentials, ThreadGroup, RLIMIT_COUNT};

use crate::kernel::Kernel;
use crate::mm::MemoryManager;
use crate::vfs::FdTable;
use rvisor_abi::UserAddr;
use rvisor_platform::{Context, CpuState};
use std::sync::Arc;

pub struct Task {
    pub kernel: Arc<Kernel>,
    /// Thread id in the sandbox's PID namespace.
    pub tid: i32,
    pub tg: Arc<ThreadGroup>,
    pub mm: Arc<MemoryManager>,
    pub fds: Arc<FdTable>,
    /// The app registers while the task is in the Sentry.
    pub cpu: CpuState,
    pub ctx: Box<dyn Context>,
    /// Blocked signals (bit n-1 for signal n).
    pub signal_mask: u64,
    /// set_tid_address: cleared and futex-woken when the thread exits.
    pub clear_child_tid: UserAddr,
    /// set_robust_list: the head of the robust futex list.
    pub robust_list: UserAddr,
    /// Set once the task has exited; the loop stops.
    pub(crate) exit: Option<ExitStatus>,
}

impl Task {
    pub fn new(
        kernel: Arc<Kernel>,
        tid: i32,
        tg: Arc<ThreadGroup>,
        mm: Arc<MemoryManager>,
        fds: Arc<FdTable>,
        cpu: CpuState,
        ctx: Box<dyn Context>,
    ) -> Task {
        Task {
            kernel,
            tid,
            tg,
            mm,
            fds,
            cpu,
            ctx,
            signal_mask: 0,
            clear_child_tid: UserAddr::NULL,
            robust_list: UserAddr::NULL,
            exit: None,
        }
    }

    /// Ends the whole thread group with `status`.
    pub fn exit_group(&mut self, status: ExitStatus) {
        self.exit = Some(status);
    }
}
