//! userfaultfd: a program handles the page faults of ranges it registers
//! (Linux's fs/userfaultfd.c, missing-page mode, for private anonymous memory).
//!
//! A fault on a page with nothing behind it in such a range becomes a message
//! for the descriptor's reader, and the faulting thread waits until
//! UFFDIO_COPY or ZEROPAGE fills the page, UFFDIO_WAKE wakes it, or the
//! descriptor goes (its ranges are then ordinary memory); the access is then
//! retried, and faults again if the page is still missing. A signal ends the
//! wait too: the access is retried after the handler. The Sentry's own
//! accesses to such a page for a syscall (a read(2) into it) wait the same
//! way, but only a fatal signal ends their wait (then they fail with EFAULT),
//! as Linux's copy_to_user does.

use super::vma::{Frames, Pma};
use super::MemoryManager;
use crate::task::{Task, Thread};
use crate::vfs::WaitQueue;
use rvisor_abi::{errno, page_down, SysResult};
use rvisor_platform::Perms;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

const EVENT_PAGEFAULT: u8 = 0x12;
const PAGEFAULT_FLAG_WRITE: u64 = 1;
/// The faulting thread's id in each message.
pub const FEATURE_THREAD_ID: u64 = 1 << 8;
/// The faulting address itself rather than its page.
pub const FEATURE_EXACT_ADDRESS: u64 = 1 << 11;
/// What UFFDIO_API offers.
pub const FEATURES: u64 = FEATURE_THREAD_ID | FEATURE_EXACT_ADDRESS;

/// `struct uffd_msg`, as a page fault fills it.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct UffdMsg {
    event: u8,
    reserved: [u8; 7],
    flags: u64,
    address: u64,
    ptid: u32,
    pad: u32,
}

/// A fault waiting for its page.
#[derive(Clone, Copy)]
struct Fault {
    id: u64,
    page: u64,
    msg: UffdMsg,
}

#[derive(Default)]
struct State {
    /// What UFFDIO_API enabled, once it was called.
    features: Option<u64>,
    /// Faults no read took yet, oldest first.
    unread: VecDeque<Fault>,
    /// Faults read and not yet resolved.
    read: Vec<Fault>,
    next_id: u64,
    /// The descriptor is gone.
    released: bool,
}

impl State {
    fn pending(&self, id: u64) -> bool {
        self.unread.iter().chain(&self.read).any(|f| f.id == id)
    }
}

/// A userfaultfd's context: what its descriptor and the registered VMAs share.
pub struct Userfault {
    /// The address space whose ranges it handles (the creator's).
    mm: Weak<MemoryManager>,
    /// A leaf lock.
    state: Mutex<State>,
    /// Faulting threads wait here.
    resolved: WaitQueue,
    /// Readers and pollers of the descriptor wait here.
    pub readers: WaitQueue,
}

impl std::fmt::Debug for Userfault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Userfault")
    }
}

/// Registrations compare by identity.
impl PartialEq for Userfault {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Userfault {}

impl Userfault {
    pub fn new(mm: &Arc<MemoryManager>) -> Arc<Userfault> {
        Arc::new(Userfault { mm: Arc::downgrade(mm), state: Mutex::default(), resolved: WaitQueue::default(), readers: WaitQueue::default() })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The address space it handles (ESRCH once it is gone).
    pub fn mm(&self) -> SysResult<Arc<MemoryManager>> {
        self.mm.upgrade().ok_or_else(|| errno!(ESRCH))
    }

    /// Whether UFFDIO_API was called.
    pub fn ready(&self) -> bool {
        self.lock().features.is_some()
    }

    /// UFFDIO_API: enables `features`, once (EINVAL after).
    pub fn enable(&self, features: u64) -> SysResult<()> {
        let mut st = self.lock();
        if st.features.is_some() {
            return Err(errno!(EINVAL));
        }
        st.features = Some(features);
        Ok(())
    }

    /// An app thread's fault at `address`: queues it and waits (see the
    /// module's doc); any signal ends the wait.
    pub fn fault(&self, t: &Task, address: u64, write: bool) {
        self.wait_for_page(&t.thread, address, write, || t.signal_pending());
    }

    /// The Sentry's access at `address` for the syscall the current thread
    /// runs: waits as an app fault does, until a fatal signal. Whether the page
    /// may be there now (false: give up with EFAULT).
    pub fn sentry_fault(&self, address: u64, write: bool) -> bool {
        let Some(th) = crate::fs::proc::current() else { return false };
        self.wait_for_page(&th, address, write, || th.fatal_signal_pending())
    }

    /// Queues `th`'s fault and waits until it is resolved, the descriptor goes,
    /// or `interrupted` (then false).
    fn wait_for_page(&self, th: &Arc<Thread>, address: u64, write: bool, interrupted: impl Fn() -> bool) -> bool {
        let id = {
            let mut st = self.lock();
            if st.released {
                return true;
            }
            st.next_id += 1;
            let features = st.features.unwrap_or(0);
            let page = page_down(address);
            let msg = UffdMsg {
                event: EVENT_PAGEFAULT,
                reserved: [0; 7],
                flags: if write { PAGEFAULT_FLAG_WRITE } else { 0 },
                address: if features & FEATURE_EXACT_ADDRESS != 0 { address } else { page },
                ptid: if features & FEATURE_THREAD_ID != 0 { th.tg.pid_ns.local_id(th.tid()).unwrap_or(0) as u32 } else { 0 },
                pad: 0,
            };
            let id = st.next_id;
            st.unread.push_back(Fault { id, page, msg });
            id
        };
        self.readers.notify_events(crate::vfs::readiness::POLLIN);
        self.resolved.register(th);
        let resolved = th
            .block(None, interrupted, || {
                let st = self.lock();
                st.released || !st.pending(id)
            })
            .is_ok();
        self.resolved.unregister(th);
        // Interrupted, the fault is withdrawn (an app's is taken again after
        // the signal).
        let mut st = self.lock();
        st.unread.retain(|f| f.id != id);
        st.read.retain(|f| f.id != id);
        resolved
    }

    /// Whether a fault waits to be read.
    pub fn has_unread(&self) -> bool {
        !self.lock().unread.is_empty()
    }

    /// Takes up to `max` unread faults' messages for read(2).
    pub fn take_messages(&self, max: usize) -> Vec<UffdMsg> {
        let mut st = self.lock();
        let n = max.min(st.unread.len());
        let taken: Vec<Fault> = st.unread.drain(..n).collect();
        st.read.extend(&taken);
        taken.iter().map(|f| f.msg).collect()
    }

    /// Wakes the threads faulting on pages in `[start, end)`.
    pub fn wake(&self, start: u64, end: u64) {
        let outside = |f: &Fault| f.page < start || f.page >= end;
        {
            let mut st = self.lock();
            st.unread.retain(outside);
            st.read.retain(outside);
        }
        self.resolved.notify();
    }

    /// The descriptor is gone: its ranges fault as other memory does, and the
    /// threads waiting retry.
    pub fn release(self: &Arc<Self>) {
        {
            let mut st = self.lock();
            st.released = true;
            st.unread.clear();
            st.read.clear();
        }
        if let Some(mm) = self.mm.upgrade() {
            mm.userfault_forget(self);
        }
        self.resolved.notify();
    }
}

impl MemoryManager {
    /// UFFDIO_REGISTER: missing pages of the mappings in `[start, start + len)`
    /// (page-aligned, at least one, private anonymous memory: EINVAL otherwise;
    /// EBUSY when another userfaultfd has part of it) are reported to `uf`.
    pub fn userfault_register(&self, uf: &Arc<Userfault>, start: u64, len: u64) -> SysResult<()> {
        self.userfault_set(start, len, |v| {
            if v.shared || v.file.is_some() || !v.may_write {
                return Err(errno!(EINVAL));
            }
            match &v.userfault {
                Some(other) if !Arc::ptr_eq(other, uf) => Err(errno!(EBUSY)),
                _ => Ok(Some(uf.clone())),
            }
        })
    }

    /// UFFDIO_UNREGISTER: `uf` lets go of `[start, start + len)`.
    pub fn userfault_unregister(&self, uf: &Arc<Userfault>, start: u64, len: u64) -> SysResult<()> {
        self.userfault_set(start, len, |v| Ok(v.userfault.clone().filter(|o| !Arc::ptr_eq(o, uf))))
    }

    /// Gives each VMA in `[start, start + len)` the registration `change` says,
    /// if it says one for every one of them (holes between them are skipped).
    fn userfault_set(&self, start: u64, len: u64, change: impl Fn(&super::Vma) -> SysResult<Option<Arc<Userfault>>>) -> SysResult<()> {
        let end = self.check_range(start, len).map_err(|_| errno!(EINVAL))?;
        let mut st = self.lock();
        let first = st.vma_at(start).map_or(start, |(s, _)| s);
        if st.vmas.range(first..end).next().is_none() {
            return Err(errno!(EINVAL));
        }
        st.split_at(start);
        st.split_at(end);
        let new: SysResult<Vec<(u64, Option<Arc<Userfault>>)>> = st.vmas.range(start..end).map(|(&s, v)| change(v).map(|r| (s, r))).collect();
        if let Ok(new) = &new {
            for (s, r) in new {
                if let Some(v) = st.vmas.get_mut(s) {
                    v.userfault = r.clone();
                }
            }
        }
        st.merge_around(start, end);
        new.map(|_| ())
    }

    /// The descriptor of `uf` is gone: its ranges are ordinary memory again.
    fn userfault_forget(&self, uf: &Userfault) {
        let mut st = self.lock();
        let starts: Vec<u64> = st.vmas.iter().filter(|(_, v)| v.userfault.as_deref().is_some_and(|o| o == uf)).map(|(&s, _)| s).collect();
        for s in &starts {
            if let Some(v) = st.vmas.get_mut(s) {
                v.userfault = None;
            }
        }
        if let (Some(&lo), Some(last)) = (starts.first(), starts.last()) {
            let hi = st.vmas.get(last).map_or(*last, |v| v.end);
            st.merge_around(lo, hi);
        }
    }

    /// UFFDIO_COPY (`data`: the bytes for the range) and UFFDIO_ZEROPAGE
    /// (None): backs the missing pages of the page-aligned `[start, start +
    /// len)`, which must be registered (ENOENT), stopping at a page already
    /// there (EEXIST if it is the first). Returns the bytes filled.
    pub fn userfault_fill(&self, start: u64, len: u64, data: Option<&[u8]>) -> SysResult<u64> {
        let end = self.check_range(start, len).map_err(|_| errno!(EINVAL))?;
        let mut st = self.lock();
        let mut at = start;
        while at < end {
            let stop = |e| if at > start { Ok(at - start) } else { Err(e) };
            let Some((_, v)) = st.vma_at(at).filter(|(_, v)| v.userfault.is_some()) else { return stop(errno!(ENOENT)) };
            let vend = v.end;
            if st.pmas.range(..=at).next_back().is_some_and(|(_, p)| p.end > at) {
                return stop(errno!(EEXIST));
            }
            let next = st.pmas.range(at..).next().map_or(u64::MAX, |(&s, _)| s);
            let run_end = end.min(vend).min(next);
            let frames = Frames::allocate(&self.mf, run_end - at).ok_or_else(|| errno!(ENOMEM))?;
            if let Some(bytes) = data {
                let (a, b) = ((at - start) as usize, (run_end - start) as usize);
                self.mf.write(frames.range.start, bytes.get(a..b).ok_or_else(|| errno!(EFAULT))?);
            }
            st.pmas.insert(at, Pma { end: run_end, frames, offset: 0, mapped: Perms::NONE, cow: false, clean: false });
            at = run_end;
        }
        Ok(len)
    }
}
