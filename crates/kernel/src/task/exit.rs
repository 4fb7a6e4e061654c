//! How a process ended, and its encodings.

use rvisor_abi::consts;

/// Signals whose default action dumps core (the core bit in a wait status).
const CORE_SIGNALS: [u32; 10] = [
    consts::SIGQUIT, consts::SIGILL, consts::SIGTRAP, consts::SIGABRT, consts::SIGBUS,
    consts::SIGFPE, consts::SIGSEGV, consts::SIGXCPU, consts::SIGXFSZ, consts::SIGSYS,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(u8),
    Signaled { signo: u32, core: bool },
}

impl ExitStatus {
    /// Termination by `signo`'s default action.
    pub fn killed_by(signo: u32) -> ExitStatus {
        ExitStatus::Signaled { signo, core: CORE_SIGNALS.contains(&signo) }
    }

    /// The status a shell reports: the exit code, or 128+N for signal N.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c as i32,
            ExitStatus::Signaled { signo, .. } => 128 + signo as i32,
        }
    }

    /// The status word wait4 reports.
    pub fn wait_status(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => (c as i32) << 8,
            ExitStatus::Signaled { signo, core } => signo as i32 | if core { 0x80 } else { 0 },
        }
    }
}
