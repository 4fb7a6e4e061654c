//! The task loop: run app code, handle what brought it back, deliver signals.

use super::signals::{self, default_action, group_exit, notify_parent_of_stop, DefaultAction, SigInfo, CLD_STOPPED, BUS_ADRERR, SEGV_ACCERR, SEGV_MAPERR, SIG_DFL, SIG_IGN};
use super::{ExitStatus, StopReport, Task, TRAP_FLAG};
use crate::mm::FaultOutcome;
use crate::syscalls;
use rvisor_abi::{consts, ErrnoCode};
use rvisor_platform::Event;

impl Task {
    /// Runs the task until its thread exits, then cleans up after it.
    pub fn run(mut self) {
        // This host thread runs this task from now on: /proc/self names it.
        crate::fs::proc::set_current(Some(&self.thread));
        self.thread.host_tid.store(nix::unistd::gettid().as_raw(), std::sync::atomic::Ordering::Relaxed);
        self.thread.set_interrupter(Some(self.ctx.interrupter()));
        // Active from here until it ends, except while asleep (`Waiter::asleep`).
        self.kernel.loadavg.activate();
        loop {
            self.handle_signals();
            if self.exit.is_some() {
                break;
            }
            self.thread.running_app.store(true, std::sync::atomic::Ordering::SeqCst);
            if self.signal_pending() {
                self.thread.running_app.store(false, std::sync::atomic::Ordering::SeqCst);
                continue;
            }
            // The trap flag's steps never enter a patched call's trampoline: they
            // take the entry's own `mov $nr, %eax; syscall` instead.
            if self.cpu.regs.eflags & TRAP_FLAG != 0 {
                if let Some(to) = self.mm.stepping_detour(self.cpu.regs.rip) {
                    self.cpu.regs.rip = to;
                }
            }
            let event = self.ctx.switch(&self.mm.aspace, &mut self.cpu);
            self.thread.running_app.store(false, std::sync::atomic::Ordering::SeqCst);
            match event {
                Ok(Event::Syscall) => syscalls::handle(&mut self),
                Ok(Event::Fault { addr, signo, code }) => match self.mm.handle_fault(self.ctx.as_mut(), addr, signo == consts::SIGSEGV as i32 && code == SEGV_MAPERR, self.cpu.fault_is_write(), &mut self.fault_retry) {
                    // Linux counts only faults that succeed (mm_account_fault).
                    Ok(FaultOutcome::Handled) => {
                        self.thread.min_flt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(FaultOutcome::ReadIn) => {
                        self.thread.maj_flt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(FaultOutcome::Unmapped) => self.force_signal(SigInfo::new(signo as u32, SEGV_MAPERR).with_addr(addr)),
                    Ok(FaultOutcome::Forbidden) => self.force_signal(SigInfo::new(signo as u32, SEGV_ACCERR).with_addr(addr)),
                    Ok(FaultOutcome::PastFileEnd) => self.force_signal(SigInfo::new(consts::SIGBUS, BUS_ADRERR).with_addr(addr)),
                    Ok(FaultOutcome::Missing(uf)) => uf.fault(&self, addr, self.cpu.fault_is_write()),
                    // The fault is taken again once the OOM killer made room.
                    Err(e) if e.code == rvisor_abi::ErrnoCode::ENOMEM && crate::mm::oom::out_of_memory(&self.kernel, &self.tg) => {}
                    Err(e) => {
                        tracing::warn!("task {}: fault at {addr:#x}: {e:?}", self.tid());
                        self.force_signal(SigInfo::new(consts::SIGBUS, BUS_ADRERR).with_addr(addr));
                    }
                },
                Ok(Event::Signal { signo, code, addr }) => match self.patched_site_detour(signo, false) {
                    Some(to) => self.cpu.regs.rip = to,
                    None => self.force_signal(SigInfo::new(signo as u32, code).with_addr(addr)),
                },
                Ok(Event::Interrupted) => {}
                Err(e) => {
                    tracing::error!("task {}: platform failure: {e}", self.tid());
                    self.exit_group(ExitStatus::killed_by(consts::SIGKILL));
                }
            }
        }
        self.finish();
        self.kernel.loadavg.deactivate();
        crate::fs::proc::set_current(None);
    }

    /// A synchronous signal caused by the app's own instruction: if it is blocked
    /// or ignored, Linux resets it to the default action so the fault is not lost.
    pub fn force_signal(&mut self, info: SigInfo) {
        let signo = info.signo();
        tracing::debug!("task {}: synchronous signal {info:?} at ip {:#x}", self.tid(), self.cpu.ip());
        let bit = signals::sigbit(signo);
        let blocked = self.thread.sig().mask & bit != 0;
        {
            let mut sig = self.tg.sig();
            let act = &mut sig.actions[signo as usize - 1];
            if blocked || act.handler == SIG_IGN {
                act.handler = SIG_DFL;
            }
        }
        let mut s = self.thread.sig();
        s.mask &= !bit;
        s.pending.push(info);
    }

    /// A signal that must take its default action whatever the program set
    /// (seccomp's SECCOMP_RET_KILL_PROCESS).
    pub fn force_default_signal(&mut self, info: SigInfo) {
        self.tg.sig().actions[info.signo() as usize - 1].handler = SIG_DFL;
        self.force_signal(info);
    }

    /// Takes the next pending signal not in `blocked`, thread-directed first. A
    /// POSIX timer's signal gets its overrun count as it leaves the queue.
    pub(crate) fn dequeue_signal(&self, blocked: u64) -> Option<SigInfo> {
        let taken = self.thread.sig().pending.pop(blocked);
        let mut info = taken.or_else(|| self.tg.sig().pending.pop(blocked))?;
        if info.code == crate::time::process_timers::SI_TIMER {
            let id = info.timer_id();
            let action = self.tg.timers.lock().unwrap_or_else(|e| e.into_inner()).posix.get(&id).map(|p| p.action.clone());
            if let Some(a) = action {
                a.delivered(&mut info);
            }
        }
        Some(info)
    }

    /// Delivers pending signals before returning to app code, and restarts an
    /// interrupted syscall when no handler runs.
    pub(crate) fn handle_signals(&mut self) {
        let mut handled = false;
        loop {
            // The first thread here after a SIGCONT ended the group's stop
            // tells the parent, before it traps for a tracer or takes a signal
            // (Linux's get_signal): a tracee held in its stop tells no one
            // until its tracer resumes it.
            let (exiting, other_execs, continued) = {
                let mut st = self.tg.state();
                (st.exiting, st.exec_zaps(&self.thread), std::mem::take(&mut st.continued_untold))
            };
            if continued {
                signals::notify_continued(&self.tg);
            }
            if let Some(status) = exiting {
                self.exit = Some(status);
                return;
            }
            if other_execs {
                // Another thread is in execve: this one leaves quietly.
                self.exit = Some(ExitStatus::Exited(0));
                return;
            }
            if self.thread.is_traced() {
                self.ptrace_interrupted();
                if self.exit.is_some() {
                    return;
                }
            }
            // Only now: a SIGCONT may have ended the group stop while this
            // thread stopped for its tracer's interrupt.
            let held = {
                let st = self.tg.state();
                self.thread.held_by_group_stop(&st).then_some((st.stop_signal, st.stop_seq))
            };
            self.thread.in_group_stop.store(held.is_some(), std::sync::atomic::Ordering::Release);
            if let Some((signo, stop_seq)) = held {
                if self.ptrace_group_stop(signo, stop_seq) {
                    continue;
                }
                let seq = self.thread.waiter.seq();
                let still = {
                    let st = self.tg.state();
                    self.thread.held_by_group_stop(&st) && st.exiting.is_none()
                };
                if still {
                    self.thread.waiter.wait(seq, None);
                }
                continue;
            }
            let mask = self.thread.sig().mask;
            // Before the signal leaves the queue: a SIGCONT from now on
            // cancels the stop it may start.
            let mut continues = self.tg.state().continues;
            let Some(info) = self.dequeue_signal(mask) else { break };
            // A tracer sees the signal first, and may change or cancel it.
            let traced = self.thread.is_traced();
            let Some(info) = self.ptrace_signal(info) else { continue };
            if self.exit.is_some() {
                return;
            }
            // A SIGCONT while the tracer held it does not cancel the signal the
            // tracer let through (Linux's ptrace_signal takes the lock again).
            if traced {
                continues = self.tg.state().continues;
            }
            let signo = info.signo();
            let act = self.tg.action(signo);
            match act.handler {
                SIG_IGN => continue,
                SIG_DFL => match default_action(signo) {
                    DefaultAction::Ignore | DefaultAction::Continue => continue,
                    // Terminal stops do nothing in an orphaned process group.
                    DefaultAction::Stop if signo != consts::SIGSTOP && self.in_orphaned_pgrp() => continue,
                    DefaultAction::Stop => self.stop_group(signo, continues),
                    DefaultAction::Terminate => group_exit(&self.tg, ExitStatus::killed_by(signo)),
                    DefaultAction::Core => {
                        // The core bit says a core was dumped: only for a dumpable
                        // process allowed a core file (RLIMIT_CORE).
                        let core = self.tg.dumpable.load(std::sync::atomic::Ordering::Relaxed) == 1 && self.tg.rlimit(super::RLIMIT_CORE).cur > 0;
                        group_exit(&self.tg, ExitStatus::Signaled { signo, core });
                    }
                },
                _ => {
                    // Like Linux, set up a frame for every deliverable signal now; the
                    // last one set up runs first.
                    if let Err(e) = self.setup_frame(&info, &act) {
                        tracing::debug!("task {}: cannot deliver signal {signo}: {e:?}", self.tid());
                        group_exit(&self.tg, ExitStatus::killed_by(consts::SIGSEGV));
                    }
                    handled = true;
                }
            }
        }
        if handled {
            return;
        }
        if let Some(code) = self.pending_restart.take() {
            if code == ErrnoCode::ERESTARTSYS || code == ErrnoCode::ERESTARTNOINTR || code == ErrnoCode::ERESTARTNOHAND {
                self.restart_syscall();
            } else if code == ErrnoCode::ERESTART_RESTARTBLOCK {
                // Resumes through restart_syscall, which runs the restart block.
                self.cpu.regs.rax = u64::from(rvisor_abi::nr::__NR_restart_syscall);
                self.cpu.regs.rip = self.cpu.regs.rip.wrapping_sub(2);
                if let Some(to) = self.patched_site_detour(0, true) {
                    self.cpu.regs.rip = to;
                }
            }
        }
        let saved = self.thread.sig().saved_mask.take();
        if let Some(mask) = saved {
            self.thread.set_sigmask(mask);
        }
    }

    /// Rewinds to the `syscall` instruction so the call runs again.
    pub(crate) fn restart_syscall(&mut self) {
        self.cpu.regs.rax = self.cpu.regs.orig_rax;
        self.cpu.regs.rip = self.cpu.regs.rip.wrapping_sub(2);
        if let Some(to) = self.patched_site_detour(0, true) {
            self.cpu.regs.rip = to;
        }
    }

    /// Syscall patching: where a thread at a patched site's former `syscall`
    /// (site+5, now an invalid opcode) goes instead: on a restart (`restart`), the
    /// `syscall` of the site's entry; on the SIGILL of a thread that ran the site's
    /// old `mov` while it was patched (`signo`), the site again.
    fn patched_site_detour(&self, signo: i32, restart: bool) -> Option<u64> {
        self.kernel.platform.patch_entry()?;
        if !restart && signo != consts::SIGILL as i32 {
            return None;
        }
        self.mm.patched_site_detour(self.cpu.regs.rip, restart)
    }

    /// Whether our process group is orphaned: no member has a parent in another
    /// group of the same session (POSIX's rule for ignoring terminal stops).
    pub(crate) fn in_orphaned_pgrp(&self) -> bool {
        let (pgid, sid) = {
            let st = self.tg.state();
            (st.pgid, st.sid)
        };
        !self.pid_ns().groups().iter().any(|g| {
            let (gp, parent) = {
                let st = g.state();
                (st.pgid, st.parent.clone())
            };
            gp == pgid
                && parent.is_some_and(|p| {
                    let ps = p.state();
                    ps.pgid != pgid && ps.sid == sid
                })
        })
    }

    /// Starts a group stop (SIGSTOP's default action), which every thread
    /// takes part in (`handle_signals`), and tells the parent, unless it traces
    /// this thread: it hears of the stop as a tracer (Linux's ptrace_stop).
    /// Not if the group is dying, or a SIGCONT came since `continues` was read,
    /// before the signal was taken.
    fn stop_group(&mut self, signo: u32, continues: u64) {
        {
            let mut st = self.tg.state();
            if st.exiting.is_some() || st.continues != continues {
                return;
            }
            st.stopped = true;
            st.stop_signal = signo;
            st.stop_seq += 1;
            st.report = Some(StopReport::Stopped(signo));
            // Stopped before the parent hears of it, as Linux's do_signal_stop.
            self.thread.in_group_stop.store(true, std::sync::atomic::Ordering::Release);
        }
        let tracer = self.thread.ptrace().tracer();
        if !tracer.is_some_and(|t| self.tg.parent().is_some_and(|p| std::sync::Arc::ptr_eq(&p, &t))) {
            notify_parent_of_stop(&self.tg, CLD_STOPPED, signo);
        }
        self.tg.wake_all();
    }
}
