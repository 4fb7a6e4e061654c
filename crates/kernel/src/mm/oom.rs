//! The sandbox's OOM killer. With a memory limit (the container's cgroup), the
//! memory file refuses allocations that would take what the host backs past the
//! app's share of it (`budget`), and a page fault that cannot get memory lands here:
//! as Linux's memcg OOM killer, the process holding the most memory is killed, and
//! the fault is tried again once it is gone. Without this, the host's OOM killer
//! would end the whole sandbox (the Sentry is the cgroup's biggest process), where
//! runc loses only the one process (gVisor's issue #2520). When the victim would be
//! the first container's init, whose end ends the sandbox, the host's OOM killer is
//! left to do it, so that the cgroup counts the OOM kill as it does under runc.

use crate::task::signals::{self, SigInfo};
use crate::task::ThreadGroup;
use crate::Kernel;
use rvisor_abi::consts;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What of a limit app memory may use: the Sentry's own memory (its heap, its
/// threads' stacks, the gofer and stubs beside it) is charged to the same cgroup,
/// and so is what was there before the sandbox joined it (`in_use_at_boot`).
pub fn budget(limit: u64, in_use_at_boot: u64) -> u64 {
    limit.saturating_sub((limit / 8).max(24 << 20).max(in_use_at_boot + (16 << 20)))
}

/// How long a fault waits for the killed process to go.
const VICTIM_EXIT: Duration = Duration::from_secs(5);

/// Bytes of memory `tg` holds (what /proc/PID/status calls VmRSS).
fn rss(tg: &Arc<ThreadGroup>) -> u64 {
    tg.threads().first().and_then(|t| t.resources()).map_or(0, |r| r.mm.populated_bytes())
}

/// A page fault of `faulting` found no memory. Re-reads the limit (a raise makes
/// room); else kills the process holding the most memory (unless an earlier victim
/// is still going) and waits until it is gone. Whether the fault should be tried
/// again: false when there is no limit (the memory file itself is full) or nothing
/// to kill. When `faulting` is the victim, it has SIGKILL pending.
pub fn out_of_memory(kernel: &Arc<Kernel>, faulting: &Arc<ThreadGroup>) -> bool {
    let Some(m) = &kernel.memory_limit else { return false };
    let limit = (m.read)();
    let (before, now) = (kernel.memory.limit(), limit.map(|l| budget(l, m.in_use_at_boot)));
    kernel.memory.set_limit(now);
    if now.is_none_or(|n| before.is_some_and(|b| n > b)) {
        return true;
    }
    // A victim is pending until its address space is gone (its memory freed), which
    // comes a little after it is a zombie: choosing again before that would pick
    // another process for memory that is about to come back.
    let pending = kernel.oom_victim.lock().unwrap_or_else(|e| e.into_inner()).as_ref().filter(|v| v.mm.strong_count() > 0).and_then(|v| v.tg.upgrade());
    let victim = match pending {
        Some(v) => v,
        None => {
            let Some(v) = kernel.all_groups().into_iter().filter(|tg| tg.state().zombie.is_none()).max_by_key(|tg| (rss(tg), Arc::ptr_eq(tg, faulting))) else {
                return false;
            };
            // Killing the first container's init ends the sandbox anyway: let the host's
            // OOM killer do it, so that the cgroup records the OOM kill (containerd, and
            // Kubernetes after it, report OOMKilled from there).
            if kernel.root_container.init().is_some_and(|init| Arc::ptr_eq(&init, &v)) {
                tracing::warn!("out of memory (limit {} bytes): the container's init holds the most; the host's OOM killer ends the sandbox", limit.unwrap_or(0));
                kernel.memory.set_limit(None);
                return true;
            }
            tracing::warn!("out of memory (limit {} bytes): killed process {} with {} KiB", limit.unwrap_or(0), v.tgid, rss(&v) / 1024);
            let mm = v.threads().first().and_then(|t| t.resources()).map_or_else(std::sync::Weak::new, |r| Arc::downgrade(&r.mm));
            signals::send_to_group(&v, SigInfo::new(consts::SIGKILL, signals::SI_KERNEL));
            kernel.oom_kills.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            *kernel.oom_victim.lock().unwrap_or_else(|e| e.into_inner()) = Some(OomVictim { tg: Arc::downgrade(&v), mm: mm.clone() });
            v
        }
    };
    if Arc::ptr_eq(&victim, faulting) {
        return true;
    }
    let deadline = Instant::now() + VICTIM_EXIT;
    victim.wait_zombie(Some(deadline));
    // Its address space goes when the last of its threads lets go of it, just after.
    let mm = kernel.oom_victim.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|v| v.mm.clone());
    while mm.as_ref().is_some_and(|m| m.strong_count() > 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// The process the OOM killer killed last, and its address space.
pub struct OomVictim {
    tg: std::sync::Weak<ThreadGroup>,
    mm: std::sync::Weak<super::MemoryManager>,
}
