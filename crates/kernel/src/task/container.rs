//! The containers a sandbox runs. A sandbox starts with one; a Kubernetes pod
//! adds its other containers to the sandbox of its first (runsc's
//! subcontainers). Each has its own root and mounts and its own init, and a
//! PID namespace of its own unless it shares the first container's (a pod
//! with `shareProcessNamespace`); they share the sandbox's network, IPC and
//! UTS namespaces.

use super::{PidNamespace, ThreadGroup};
use crate::vfs::MountNamespace;
use std::sync::{Arc, OnceLock, Weak};

pub struct Container {
    /// Its mount namespace, where its processes start (`rvisor exec` too);
    /// a process may move to a copy of its own (unshare(CLONE_NEWNS)).
    pub mounts: Arc<MountNamespace>,
    /// The PID namespace its processes are in (or in one nested in it): the
    /// table of its tasks.
    pub pid_ns: Arc<PidNamespace>,
    /// Its first process, once loaded: orphans of the container go to it, and
    /// when it ends, so does every other process of the container.
    init: OnceLock<Weak<ThreadGroup>>,
    /// The seccomp filter of its spec, if any: see `ProgramSpec::seccomp`.
    seccomp: OnceLock<Arc<super::seccomp::Filter>>,
}

impl Container {
    pub fn new(mounts: Arc<MountNamespace>, pid_ns: Arc<PidNamespace>) -> Arc<Container> {
        Arc::new(Container { mounts, pid_ns, init: OnceLock::new(), seccomp: OnceLock::new() })
    }

    /// Records `tg` as the container's init if it has none yet.
    pub(crate) fn set_init(&self, tg: &Arc<ThreadGroup>) {
        let _ = self.init.set(Arc::downgrade(tg));
    }

    /// Its init, while that has not ended.
    pub fn init(&self) -> Option<Arc<ThreadGroup>> {
        self.init.get().and_then(Weak::upgrade).filter(|i| i.state().zombie.is_none())
    }

    pub(crate) fn set_seccomp(&self, filter: Arc<super::seccomp::Filter>) {
        let _ = self.seccomp.set(filter);
    }

    pub fn seccomp(&self) -> Option<Arc<super::seccomp::Filter>> {
        self.seccomp.get().cloned()
    }

    pub fn is_init(&self, tg: &Arc<ThreadGroup>) -> bool {
        self.init.get().is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(tg)))
    }
}
