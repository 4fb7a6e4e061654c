//! The gofer's seccomp filter, installed once it holds its root: from then on
//! the gofer can make only the host syscalls that serving the file protocol
//! takes (file-system calls relative to the descriptors it holds, its
//! socket's messages, memory for itself). Anything else fails with EPERM, so
//! a gofer that a request managed to subvert still cannot execute programs,
//! reach the network, trace or signal other processes, or mount anything.
//! Where the host refuses seccomp filters, the gofer serves without one, as
//! the ptrace platform's stubs run without theirs.
//!
//! The list comes from running the whole test suite with the mismatch action
//! SECCOMP_RET_LOG and reading the host's audit lines (syscall=N).

use seccompiler::{BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch};
use std::collections::BTreeMap;

/// What the gofer may call, whatever the arguments.
const ALLOWED: &[libc::c_long] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_close,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_lseek,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_futex,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_getdents64,
    libc::SYS_readlinkat,
    libc::SYS_mkdirat,
    libc::SYS_unlinkat,
    libc::SYS_renameat2,
    // nix's renameat2 without flags is renameat.
    libc::SYS_renameat,
    libc::SYS_symlinkat,
    libc::SYS_linkat,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    libc::SYS_fchmodat2,
    libc::SYS_fchownat,
    libc::SYS_fchown,
    libc::SYS_utimensat,
    libc::SYS_ftruncate,
    libc::SYS_fstatfs,
    // Extended attributes, on descriptors reopened from the nodes.
    libc::SYS_fgetxattr,
    libc::SYS_fsetxattr,
    libc::SYS_flistxattr,
    libc::SYS_fremovexattr,
    libc::SYS_fcntl,
    libc::SYS_getrandom,
    // A wait a freeze (rvisor pause) or a stop interrupted resumes through it.
    libc::SYS_restart_syscall,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// socketpair(2) of AF_UNIX only (a new connection for a Sentry thread).
fn unix_socketpair() -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    let cond = SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, libc::AF_UNIX as u64)?;
    Ok(vec![SeccompRule::new(vec![cond])?])
}

/// mknodat(2) of FIFOs and sockets only: never a device.
fn fifo_or_socket_node() -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    [libc::S_IFIFO, libc::S_IFSOCK]
        .iter()
        .map(|&kind| SeccompRule::new(vec![SeccompCondition::new(2, SeccompCmpArgLen::Dword, SeccompCmpOp::MaskedEq(libc::S_IFMT as u64), kind as u64)?]))
        .collect()
}

/// The filter: the calls above, EPERM for any other.
fn program() -> Result<BpfProgram, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = ALLOWED.iter().map(|&nr| (nr as i64, Vec::new())).collect();
    rules.insert(libc::SYS_socketpair as i64, unix_socketpair().map_err(|e| e.to_string())?);
    rules.insert(libc::SYS_mknodat as i64, fifo_or_socket_node().map_err(|e| e.to_string())?);
    let filter = SeccompFilter::new(rules, SeccompAction::Errno(libc::EPERM as u32), SeccompAction::Allow, TargetArch::x86_64).map_err(|e| e.to_string())?;
    filter.try_into().map_err(|e: seccompiler::BackendError| e.to_string())
}

/// Installs the filter (the gofer is one thread).
pub fn install() -> Result<(), String> {
    seccompiler::apply_filter(&program()?).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::ForkResult;

    /// What a call returned: 0 for success, else its errno.
    fn outcome(r: libc::c_long) -> i32 {
        if r >= 0 { 0 } else { nix::errno::Errno::last_raw() }
    }

    /// In a child process (the filter stays with it): the calls serving takes
    /// work, others fail with EPERM.
    #[test]
    fn refuses_what_serving_does_not_take() {
        let program = program().unwrap();
        // SAFETY: the child makes only raw syscalls (no allocation, no locks) and
        // ends with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            ForkResult::Child => {
                let mut sv = [0i32; 2];
                // SAFETY: raw syscalls with valid arguments; `sv` outlives them.
                let results = unsafe {
                    [
                        seccompiler::apply_filter(&program).map_or(-1, |()| 0),
                        outcome(libc::syscall(libc::SYS_socketpair, libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr())),
                        outcome(libc::syscall(libc::SYS_getdents64, -1, 0, 0)),
                        outcome(libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0)),
                        outcome(libc::syscall(libc::SYS_socketpair, libc::AF_INET, libc::SOCK_STREAM, 0, sv.as_mut_ptr())),
                        outcome(libc::syscall(libc::SYS_execve, c"/bin/true".as_ptr(), 0, 0)),
                        outcome(libc::syscall(libc::SYS_kill, 1, 0)),
                        outcome(libc::syscall(libc::SYS_ptrace, libc::PTRACE_ATTACH, 1, 0, 0)),
                        outcome(libc::syscall(libc::SYS_mknodat, -1, c"f".as_ptr(), libc::S_IFIFO | 0o600, 0)),
                        outcome(libc::syscall(libc::SYS_mknodat, -1, c"s".as_ptr(), libc::S_IFSOCK | 0o600, 0)),
                        outcome(libc::syscall(libc::SYS_mknodat, -1, c"c".as_ptr(), libc::S_IFCHR | 0o600, 0x103)),
                        outcome(libc::syscall(libc::SYS_fgetxattr, -1, c"user.a".as_ptr(), 0, 0)),
                        outcome(libc::syscall(libc::SYS_fsetxattr, -1, c"user.a".as_ptr(), c"".as_ptr(), 0, 0)),
                        outcome(libc::syscall(libc::SYS_flistxattr, -1, 0, 0)),
                        outcome(libc::syscall(libc::SYS_fremovexattr, -1, c"user.a".as_ptr())),
                        // The path forms would reach any host file by name.
                        outcome(libc::syscall(libc::SYS_getxattr, c"/".as_ptr(), c"user.a".as_ptr(), 0, 0)),
                        outcome(libc::syscall(libc::SYS_setxattr, c"/".as_ptr(), c"user.a".as_ptr(), c"".as_ptr(), 0, 0)),
                    ]
                };
                let expected = [0, 0, libc::EBADF, libc::EPERM, libc::EPERM, libc::EPERM, libc::EPERM, libc::EPERM, libc::EBADF, libc::EBADF, libc::EPERM, libc::EBADF, libc::EBADF, libc::EBADF, libc::EBADF, libc::EPERM, libc::EPERM];
                // SAFETY: _exit ends the child without running the parent's destructors.
                unsafe { libc::_exit(i32::from(results != expected)) }
            }
            ForkResult::Parent { child } => assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0)),
        }
    }
}
