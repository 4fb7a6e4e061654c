//! The two calls of the host's uprobe trampolines (Linux 6.11 and 6.16). Linux takes
//! them only from a trampoline it mapped itself, and seccomp lets them through
//! unfiltered, so on systrap an app's call reaches the host kernel, which refuses it
//! as below (no sandboxed process has a trampoline). The Sentry answers the same on
//! every platform.

use crate::task::signals::{SigInfo, SI_KERNEL};
use crate::task::Task;
use rvisor_abi::{consts, error, SysResult};

/// Outside a uretprobe trampoline: SIGILL, and -1 as the return value.
pub fn sys_uretprobe(t: &mut Task) -> SysResult<i64> {
    t.force_signal(SigInfo::new(consts::SIGILL, SI_KERNEL));
    Ok(-1)
}

/// Outside a uprobe trampoline: ENXIO.
pub fn sys_uprobe(_t: &mut Task) -> SysResult<()> {
    error!(ENXIO)
}
