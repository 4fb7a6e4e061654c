//! kcmp(2): whether two tasks share a kernel object (a file description, an address
//! space, a descriptor table, a file-system context, signal handlers), and an
//! order between different ones that tools sort by (CRIU). As Linux, the order
//! comes from the objects' addresses scrambled with a per-boot secret, so that it
//! tells nothing of where the Sentry keeps them. KCMP_EPOLL_TFD compares a file
//! with one registered in an epoll set (CRIU finds what a set watches with it).

use crate::mm::UserRef;
use crate::task::Task;
use crate::vfs::Fd;
use rvisor_abi::structs::KcmpEpollSlot;
use rvisor_abi::{errno, error, SysResult, UserAddr};
use std::sync::{Arc, OnceLock};

const KCMP_FILE: i32 = 0;
const KCMP_VM: i32 = 1;
const KCMP_FILES: i32 = 2;
const KCMP_FS: i32 = 3;
const KCMP_SIGHAND: i32 = 4;
const KCMP_IO: i32 = 5;
const KCMP_SYSVSEM: i32 = 6;
const KCMP_EPOLL_TFD: i32 = 7;

/// Linux's kcmp_ptr: 0 for the same object, else 1 or 2 by the scrambled addresses.
fn order(a: usize, b: usize) -> i32 {
    static COOKIE: OnceLock<(u64, u64)> = OnceLock::new();
    let (x, m) = *COOKIE.get_or_init(|| {
        let mut bytes = [0u8; 16];
        // Without the host's randomness the order is merely predictable.
        let _ = getrandom::fill(&mut bytes);
        let [x, m] = [0, 8].map(|i| u64::from_ne_bytes(bytes[i..i + 8].try_into().unwrap_or_default()));
        (x, m | 1)
    });
    let scramble = |p: usize| (p as u64 ^ x).wrapping_mul(m);
    match scramble(a).cmp(&scramble(b)) {
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Less => 1,
        std::cmp::Ordering::Greater => 2,
    }
}

fn addr<T: ?Sized>(p: &Arc<T>) -> usize {
    Arc::as_ptr(p) as *const () as usize
}

pub fn sys_kcmp(t: &mut Task, pid1: i32, pid2: i32, kind: i32, idx1: u64, idx2: u64) -> SysResult<i32> {
    let thread = |tid: i32| t.pid_ns().thread(tid).ok_or_else(|| errno!(ESRCH));
    let (a, b) = (thread(pid1)?, thread(pid2)?);
    // PTRACE_MODE_READ with real ids, and Landlock's scope.
    for th in [&a, &b] {
        if !crate::task::ptrace::may_trace(&t.tg, &th.tg) || crate::landlock::scope::may_trace(&t.thread, th).is_err() {
            return error!(EPERM);
        }
    }
    let (ra, rb) = (a.resources().ok_or_else(|| errno!(ESRCH))?, b.resources().ok_or_else(|| errno!(ESRCH))?);
    let fd = |i: u64| i32::try_from(i).map(Fd).map_err(|_| errno!(EBADF));
    Ok(match kind {
        KCMP_FILE => {
            let (fa, fb) = (ra.fds.get(fd(idx1)?)?, rb.fds.get(fd(idx2)?)?);
            order(addr(&fa), addr(&fb))
        }
        // The first process's file against one in the second's epoll set.
        KCMP_EPOLL_TFD => {
            let fa = ra.fds.get(fd(idx1)?)?;
            let slot: KcmpEpollSlot = t.mm.read_obj(UserRef::new(UserAddr(idx2)))?;
            let ep_file = rb.fds.get(fd(u64::from(slot.efd))?)?;
            let ep = ep_file.epoll().ok_or_else(|| errno!(EINVAL))?;
            let target = i32::try_from(slot.tfd).ok().and_then(|tfd| ep.target(tfd, slot.toff as usize)).ok_or_else(|| errno!(ENOENT))?;
            order(addr(&fa), addr(&target))
        }
        KCMP_VM => order(addr(&ra.mm), addr(&rb.mm)),
        KCMP_FILES => order(addr(&ra.fds), addr(&rb.fds)),
        KCMP_FS => order(addr(&ra.fs), addr(&rb.fs)),
        // Handlers belong to a thread group here (CLONE_SIGHAND alone shares none);
        // I/O contexts and semaphore undo lists to a process.
        KCMP_SIGHAND | KCMP_IO | KCMP_SYSVSEM => order(addr(&a.tg), addr(&b.tg)),
        _ => return error!(EINVAL),
    })
}
