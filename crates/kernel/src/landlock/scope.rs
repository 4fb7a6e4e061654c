//! What a domain keeps from reaching outside itself (Linux's
//! security/landlock/task.c): tracing, and for scoped layers, signals and
//! abstract unix sockets.

use super::{Domain, SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL};
use crate::task::Thread;
use rvisor_abi::{error, SysResult};

/// A restricted thread may trace only threads in its domain or one nested in
/// it; PTRACE_TRACEME asks the same of the would-be tracer.
pub fn may_trace(tracer: &Thread, tracee: &Thread) -> SysResult<()> {
    match tracer.landlock() {
        Some(d) if !d.encloses(tracee.landlock().as_deref()) => error!(EPERM),
        _ => Ok(()),
    }
}

/// `may_trace` for a process (its first thread stands for it): /proc's
/// per-process files that tracing guards.
pub fn may_trace_process(tracer: &Thread, tracee: &crate::task::ThreadGroup) -> SysResult<()> {
    if tracer.landlock().is_none() {
        return Ok(());
    }
    tracee.threads().first().map_or(Ok(()), |th| may_trace(tracer, th))
}

/// A signal from `sender` to `target`: a layer scoping signals keeps them
/// within its domain, but a process's own threads are always reachable.
pub fn may_signal(sender: &Thread, target: &Thread) -> SysResult<()> {
    if std::sync::Arc::ptr_eq(&sender.tg, &target.tg) {
        return Ok(());
    }
    match sender.landlock() {
        Some(d) if d.is_scoped_from(target.landlock().as_deref(), SCOPE_SIGNAL) => error!(EPERM),
        _ => Ok(()),
    }
}

/// Connecting or sending to a unix socket bound to an abstract name, made by
/// a thread whose domain was `server`: a layer scoping abstract sockets keeps
/// the caller within its domain.
pub fn may_reach_abstract(client: Option<&Domain>, server: Option<&Domain>) -> SysResult<()> {
    match client {
        Some(d) if d.is_scoped_from(server, SCOPE_ABSTRACT_UNIX_SOCKET) => error!(EPERM),
        _ => Ok(()),
    }
}
