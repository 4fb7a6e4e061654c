//! The task loop: run app code, handle what brought it back, repeat.

use super::{ExitStatus, Task};
use crate::mm::FaultOutcome;
use crate::syscalls;
use rvisor_abi::consts;
use rvisor_platform::Event;

impl Task {
    /// Runs the task until it exits.
    pub fn run(mut self) -> ExitStatus {
        loop {
            match self.ctx.switch(&self.mm.aspace, &mut self.cpu) {
                Ok(Event::Syscall) => syscalls::handle(&mut self),
                Ok(Event::Fault { addr, signo, .. }) => match self.mm.handle_fault(addr) {
                    Ok(FaultOutcome::Handled) => {}
                    outcome => {
                        tracing::debug!("task {}: fault at {addr:#x} ip {:#x}: {outcome:?}", self.tid, self.cpu.ip());
                        self.force_signal(signo as u32);
                    }
                },
                Ok(Event::Signal { signo, .. }) => self.force_signal(signo as u32),
                Ok(Event::Interrupted) => {}
                Err(e) => {
                    tracing::error!("task {}: platform failure: {e}", self.tid);
                    self.exit_group(ExitStatus::killed_by(consts::SIGKILL));
                }
            }
            if let Some(status) = self.exit {
                return status;
            }
        }
    }

    /// A synchronous signal the app cannot ignore here: until signal delivery
    /// exists, its default action (terminate) applies.
    pub fn force_signal(&mut self, signo: u32) {
        self.exit_group(ExitStatus::killed_by(signo));
    }
}
