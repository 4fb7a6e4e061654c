//! Tasks (threads), thread groups (processes), signals, and their life cycle.
//!
//! A `Task` is owned by the host thread that runs it: the task loop switches into
//! app code, handles what comes back, delivers signals, and repeats. What other
//! tasks may touch lives in the shared `Thread` and `ThreadGroup`, behind their own
//! locks. Lock order: PID table → parent group state → child group state → group
//! signals → thread signals; futex and MM locks are leaves.

pub mod clone;
mod container;
pub mod exec;
mod exit;
pub mod host_threads;
pub mod loadavg;
pub mod namespaces;
mod pid_ns;
pub mod ptrace;
mod run;
pub mod seccomp;
mod sigframe;
pub mod signals;
mod thread_group;
pub mod user_ns;
mod wait;
mod waiter;

pub use clone::CloneArgs;
pub use container::Container;
pub use exit::ExitStatus;
pub use namespaces::Namespaces;
pub use pid_ns::PidNamespace;
pub use user_ns::UserNamespace;
pub use thread_group::{comm_from_path, default_rlimits, Capabilities, CAP_FULL, CpuTimes, Credentials, MmFlags, Resources, RusageCounts, SchedAttrs, StopReport, Thread, ThreadGroup, RLIMIT_AS, RLIMIT_CORE, RLIMIT_DATA, RLIMIT_COUNT, RLIMIT_CPU_INDEX, RLIMIT_FSIZE, RLIMIT_MEMLOCK, RLIMIT_NICE, RLIMIT_NOFILE, RLIMIT_RTPRIO, RLIMIT_STACK, RLIMIT_NPROC, RLIMIT_SIGPENDING, RLIM_INFINITY};
pub use wait::{WaitOptions, WaitResult, WaitTarget};
pub use waiter::Waiter;

use crate::kernel::Kernel;
use crate::mm::MemoryManager;
use crate::vfs::{FdTable, FsContext};
use rvisor_abi::{ErrnoCode, UserAddr};
use rvisor_platform::{Context, CpuState};
use std::sync::Arc;

/// How an interrupted call resumes through restart_syscall.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RestartBlock {
    /// A relative nanosleep or clock_nanosleep: on until `clock` reads the same
    /// end (not its whole duration again), telling `rem` what is left if
    /// interrupted anew.
    Nanosleep { clock: i32, until_ns: i64, rem: crate::mm::UserRef<rvisor_abi::structs::Timespec> },
    /// poll: on with the same descriptors until the same deadline (Linux's
    /// do_restart_poll).
    Poll { fds: UserAddr, nfds: u32, deadline: Option<std::time::Instant> },
    /// A timed FUTEX_WAIT(_BITSET): on until the same absolute deadline (Linux's
    /// futex_wait_restart).
    FutexWait { addr: UserAddr, private: bool, val: u32, bitset: u32, deadline: crate::futex::FutexDeadline },
}

/// The trap flag of rflags: one instruction, then a debug trap.
pub(crate) const TRAP_FLAG: u64 = 0x100;

pub struct Task {
    pub kernel: Arc<Kernel>,
    pub thread: Arc<Thread>,
    pub tg: Arc<ThreadGroup>,
    pub mm: Arc<MemoryManager>,
    pub fds: Arc<FdTable>,
    pub fs: Arc<FsContext>,
    pub ns: Namespaces,
    /// The app registers while the task is in the Sentry.
    pub cpu: CpuState,
    pub ctx: Box<dyn Context>,
    /// set_tid_address: cleared and futex-woken when the thread exits.
    pub clear_child_tid: UserAddr,
    /// set_robust_list: the head of the robust futex list.
    pub robust_list: UserAddr,
    /// The last fault retried as a stale host view (see `MemoryManager::handle_fault`).
    pub(crate) fault_retry: Option<(u64, u64)>,
    /// The restart code of the syscall a signal interrupted, until signals are handled.
    pub(crate) pending_restart: Option<ErrnoCode>,
    /// What restart_syscall resumes (Linux's restart_block): set by a call that
    /// returns ERESTART_RESTARTBLOCK, forgotten at sigreturn.
    pub(crate) restart_block: Option<RestartBlock>,
    /// The vfork parent waiting for this task to exec or exit.
    pub(crate) vfork_parent: Option<Arc<Thread>>,
    /// Where the last syscall the instruction bytes showed to be a 64-bit one came
    /// from (0: none yet; exec forgets it). Programs make their syscalls from a few
    /// places, so ptrace reads the bytes once per place, not per call.
    pub(crate) native_syscall_ip: u64,
    /// Set once this thread is done; the loop stops and the thread exits.
    pub(crate) exit: Option<ExitStatus>,
    /// PR_SET_SYSCALL_USER_DISPATCH's setting (not inherited, gone at exec).
    pub(crate) user_dispatch: Option<crate::syscalls::UserDispatch>,
    /// Resumed by PTRACE_SINGLESTEP: a syscall it makes ends in a SIGTRAP (Linux's
    /// TIF_SINGLESTEP), as the trap flag alone would end only after the next instruction.
    pub(crate) single_step: bool,
}

impl Task {
    /// The PID namespace the task is in: the ids it names and sees are its.
    pub fn pid_ns(&self) -> &Arc<PidNamespace> {
        &self.tg.pid_ns
    }

    /// The id the task sees for table id `id` (a thread, a process, a process
    /// group or session): 0 for one outside its PID namespace (Linux's pid_vnr).
    pub fn vnr(&self, id: i32) -> i32 {
        self.tg.pid_ns.local_id(id).unwrap_or(0)
    }

    /// The table id of what the task names `nr` in its PID namespace; 0 (no
    /// task's) when nothing there has that id.
    pub fn find_vpid(&self, nr: i32) -> i32 {
        self.tg.pid_ns.table_id(nr).unwrap_or(0)
    }

    pub fn new(kernel: Arc<Kernel>, thread: Arc<Thread>, r: Resources, cpu: CpuState, ctx: Box<dyn Context>) -> Task {
        thread.set_resources(Some(r.clone()));
        let Resources { mm, fds, fs, ns } = r;
        Task {
            kernel,
            tg: thread.tg.clone(),
            thread,
            mm,
            fds,
            fs,
            ns,
            cpu,
            ctx,
            clear_child_tid: UserAddr::NULL,
            robust_list: UserAddr::NULL,
            fault_retry: None,
            pending_restart: None,
            restart_block: None,
            native_syscall_ip: 0,
            vfork_parent: None,
            exit: None,
            user_dispatch: None,
            single_step: false,
        }
    }

    /// Publishes a changed mm/fds/fs (exec, unshare) for /proc.
    pub(crate) fn publish_resources(&self) {
        self.thread.set_resources(Some(Resources { mm: self.mm.clone(), fds: self.fds.clone(), fs: self.fs.clone(), ns: self.ns.clone() }));
    }

    pub fn tid(&self) -> i32 {
        self.thread.tid()
    }

    /// Ends the whole thread group with `status` (exit_group, fatal signals).
    pub fn exit_group(&mut self, status: ExitStatus) {
        signals::group_exit(&self.tg, status);
        self.exit = Some(status);
    }

    /// Whether a signal is pending that this thread does not block (a blocking
    /// call should give up with ERESTARTSYS), or the group is dying or stopping.
    pub fn signal_pending(&self) -> bool {
        if self.thread.is_traced() {
            let p = self.thread.ptrace();
            if p.interrupt || p.notify {
                return true;
            }
        }
        {
            let st = self.tg.state();
            if st.exiting.is_some() || self.thread.held_by_group_stop(&st) || st.exec_zaps(&self.thread) {
                return true;
            }
        }
        let (mask, mine) = {
            let s = self.thread.sig();
            (s.mask, s.pending.mask)
        };
        (mine | self.tg.sig().pending.mask) & !mask != 0
    }

    /// Blocks like `block_until` until the sandbox's realtime clock reads `at_ns`
    /// (ETIMEDOUT then), however the clock is set meanwhile: an absolute
    /// CLOCK_REALTIME timeout (clock_nanosleep, futex FUTEX_CLOCK_REALTIME).
    pub fn block_until_realtime(&self, at_ns: i64, mut ready: impl FnMut() -> bool) -> rvisor_abi::SysResult<()> {
        use std::sync::atomic::Ordering;
        let sets = &self.kernel.clock_sets;
        loop {
            let generation = sets.generation.load(Ordering::SeqCst);
            let now = self.kernel.clocks.realtime_ns();
            if now >= at_ns {
                return if ready() { Ok(()) } else { Err(rvisor_abi::errno!(ETIMEDOUT)) };
            }
            let deadline = crate::time::deadline_in(std::time::Duration::from_nanos((at_ns - now) as u64));
            sets.sleepers.register(&self.thread);
            let mut clock_set = false;
            let r = self.block_until(deadline, || {
                clock_set = sets.generation.load(Ordering::SeqCst) != generation;
                ready() || clock_set
            });
            sets.sleepers.unregister(&self.thread);
            match r {
                // Woken by a clock set (not by what it waits for): check the clock again.
                Ok(()) if clock_set && !ready() => {}
                Err(e) if e.code == rvisor_abi::ErrnoCode::ETIMEDOUT => {}
                r => return r,
            }
        }
    }

    /// Blocks until `ready` holds, a signal arrives (ERESTARTSYS) or `deadline`
    /// passes (ETIMEDOUT).
    pub fn block_until(&self, deadline: Option<std::time::Instant>, ready: impl FnMut() -> bool) -> rvisor_abi::SysResult<()> {
        self.block(deadline, Task::signal_pending, ready)
    }

    /// Blocks until `ready` holds or the task is dying (ERESTARTSYS): other
    /// signals wait (Linux's TASK_KILLABLE).
    pub fn block_until_killable(&self, ready: impl FnMut() -> bool) -> rvisor_abi::SysResult<()> {
        self.block(None, Task::fatal_signal_pending, ready)
    }

    fn fatal_signal_pending(&self) -> bool {
        self.thread.fatal_signal_pending()
    }

    /// A timeout is timed by the host's clock, but the app measures it by the
    /// sandbox's, which may run up to 500 ppm slow while it slews onto the
    /// host's: past the host's deadline, the wait goes on for what is left of
    /// its length by the sandbox's clock, so that it never ends early by the
    /// app's clock, as on Linux.
    fn block(&self, deadline: Option<std::time::Instant>, interrupted: fn(&Task) -> bool, mut ready: impl FnMut() -> bool) -> rvisor_abi::SysResult<()> {
        let Some(mut deadline) = deadline else { return self.thread.block(None, || interrupted(self), ready) };
        let clocks = &self.kernel.clocks;
        // The sandbox's clock read before the host's, so that at one rate it
        // has always gone at least as far when the host's deadline passes.
        let start = clocks.monotonic_ns();
        let length = deadline.saturating_duration_since(std::time::Instant::now()).as_nanos() as i64;
        loop {
            match self.thread.block(Some(deadline), || interrupted(self), &mut ready) {
                Err(e) if e.code == rvisor_abi::ErrnoCode::ETIMEDOUT => {
                    // What is left of the wait by the sandbox's clock.
                    let left = length - (clocks.monotonic_ns() - start);
                    match std::time::Instant::now().checked_add(std::time::Duration::from_nanos(left.max(0) as u64)) {
                        Some(later) if left > 0 => deadline = later,
                        _ => return Err(e),
                    }
                }
                r => return r,
            }
        }
    }
}
