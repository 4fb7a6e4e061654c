//! Native AIO contexts (io_setup and the calls after it), one table per address
//! space as Linux keeps them on the mm: a forked child has none, and exec drops
//! them with the old address space.
//!
//! A context's id is the address of its ring, a shared read-write mapping named
//! "/[aio] (deleted)" as on Linux, since libaio's own io_getevents reads the
//! ring's header there. The header says magic 0 (not AIO_RING_MAGIC), so libaio
//! always makes the system call; the completions themselves stay here. Contexts
//! are found by that address alone: munmapping or moving the ring leaves its
//! context usable until io_destroy or exit (Linux would lose it).

use super::ops::Placement;
use super::{MemoryManager, UserRef};
use crate::vfs::WaitQueue;
use rvisor_abi::structs::{AioRing, IoEvent};
use rvisor_abi::{errno, SysResult, UserAddr};
use rvisor_platform::{Context, Perms};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// /proc/sys/fs/aio-max-nr: the events all of the sandbox's contexts may hold.
pub const AIO_MAX_NR: u64 = 65536;

/// Linux's limit on a ring's events (after doubling), against overflows.
const RING_EVENTS_MAX: u32 = 0x1000_0000 / std::mem::size_of::<IoEvent>() as u32;

/// The address space's contexts by id (ring address). A leaf lock.
pub(super) type AioContexts = Mutex<BTreeMap<u64, Arc<AioContext>>>;

/// /proc/sys/fs/aio-nr: the events the sandbox's contexts asked io_setup for.
#[derive(Default)]
pub struct AioNr(AtomicU64);

impl AioNr {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A context's share of aio-nr, given back when the context goes (io_destroy,
/// or the address space's end).
struct Reservation {
    nr: Arc<AioNr>,
    events: u64,
}

impl Reservation {
    fn take(nr: &Arc<AioNr>, events: u64) -> SysResult<Reservation> {
        nr.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(events).filter(|&sum| sum <= AIO_MAX_NR)).map_err(|_| errno!(EAGAIN))?;
        Ok(Reservation { nr: nr.clone(), events })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.nr.0.fetch_sub(self.events, Ordering::Relaxed);
    }
}

pub struct AioContext {
    ring: u64,
    ring_len: u64,
    /// The ring's size in events (Linux's nr_events): io_submit takes at most
    /// that many per call, and one fewer may be queued or in flight at once.
    ring_events: u32,
    /// A leaf lock, never held while copying to the app or waking.
    state: Mutex<Completions>,
    /// io_getevents callers waiting for completions.
    pub queue: WaitQueue,
    _reserved: Reservation,
}

#[derive(Default)]
struct Completions {
    events: VecDeque<IoEvent>,
    /// Requests being submitted, not yet completed.
    in_flight: usize,
    /// io_destroy ran: waiters stop waiting.
    dead: bool,
}

/// A request's place in its context, from submission to completion; dropped
/// uncompleted (the submission failed), it is given back.
pub struct Slot<'a> {
    ctx: &'a AioContext,
    done: bool,
}

impl Slot<'_> {
    /// Queues the request's completion and wakes io_getevents callers.
    pub fn complete(mut self, event: IoEvent) {
        self.done = true;
        {
            let mut st = self.ctx.lock();
            st.in_flight -= 1;
            st.events.push_back(event);
        }
        self.ctx.queue.notify();
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.ctx.lock().in_flight -= 1;
        }
    }
}

impl AioContext {
    fn lock(&self) -> MutexGuard<'_, Completions> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn ring_events(&self) -> u32 {
        self.ring_events
    }

    /// A place for one more request: EAGAIN while the ring would be full.
    pub fn reserve(&self) -> SysResult<Slot<'_>> {
        let mut st = self.lock();
        if st.events.len() + st.in_flight + 1 >= self.ring_events as usize {
            return Err(errno!(EAGAIN));
        }
        st.in_flight += 1;
        Ok(Slot { ctx: self, done: false })
    }

    /// Takes up to `max` completions, oldest first.
    pub fn take(&self, max: usize) -> Vec<IoEvent> {
        let mut st = self.lock();
        let n = max.min(st.events.len());
        st.events.drain(..n).collect()
    }

    /// Puts back what `take` returned (the copy to the app failed), in order.
    pub fn put_back(&self, events: Vec<IoEvent>) {
        let mut st = self.lock();
        for e in events.into_iter().rev() {
            st.events.push_front(e);
        }
    }

    /// Whether a waiter should look again: completions queued, or the context is gone.
    pub fn ready(&self) -> bool {
        let st = self.lock();
        !st.events.is_empty() || st.dead
    }

    pub fn is_dead(&self) -> bool {
        self.lock().dead
    }
}

impl MemoryManager {
    pub(super) fn aio_lock(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<AioContext>>> {
        self.aio.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// io_setup: a context for `nr_events` requests, counted in the sandbox's
    /// `aio_nr`, with its ring mapped. Returns its id, the ring's address.
    pub fn aio_setup(&self, ctx: &mut dyn Context, nr_events: u32, aio_nr: &Arc<AioNr>, cpus: usize) -> SysResult<u64> {
        // As Linux: the ring holds twice the request (at least 4 per CPU), so
        // per-CPU batching there still leaves the caller what it asked for.
        let per_cpus = u32::try_from(cpus).unwrap_or(u32::MAX).saturating_mul(4);
        let doubled = nr_events.max(per_cpus).wrapping_mul(2);
        if doubled > RING_EVENTS_MAX {
            return Err(errno!(EINVAL));
        }
        if doubled == 0 || u64::from(nr_events) > AIO_MAX_NR {
            return Err(errno!(EAGAIN));
        }
        let reserved = Reservation::take(aio_nr, u64::from(nr_events))?;
        let ring_events = doubled + 2;
        let header = std::mem::size_of::<AioRing>() as u64;
        let ring_len = header + u64::from(ring_events) * std::mem::size_of::<IoEvent>() as u64;
        let rw = Perms { read: true, write: true, exec: false };
        let ring = self.map_anonymous(ctx, Placement::Hint(0), ring_len, rw, true, false)?;
        if let Some(v) = self.lock().vmas.get_mut(&ring) {
            v.name = Some("/[aio] (deleted)");
        }
        let head = AioRing { id: 0, nr: ring_events, head: 0, tail: 0, magic: 0, compat_features: 1, incompat_features: 0, header_length: header as u32 };
        if let Err(e) = self.write_obj(UserRef::new(UserAddr(ring)), &head) {
            self.munmap(ctx, ring, ring_len)?;
            return Err(e);
        }
        let context = AioContext { ring, ring_len, ring_events, state: Mutex::default(), queue: WaitQueue::default(), _reserved: reserved };
        self.aio_lock().insert(ring, Arc::new(context));
        Ok(ring)
    }

    /// The context `id` names: EINVAL if none.
    pub fn aio_context(&self, id: u64) -> SysResult<Arc<AioContext>> {
        self.aio_lock().get(&id).cloned().ok_or_else(|| errno!(EINVAL))
    }

    /// io_destroy: forgets the context, wakes its waiters and unmaps its ring.
    /// aio-nr gets its events back once no call holds it any more.
    pub fn aio_destroy(&self, ctx: &mut dyn Context, id: u64) -> SysResult<()> {
        let context = self.aio_lock().remove(&id).ok_or_else(|| errno!(EINVAL))?;
        context.lock().dead = true;
        context.queue.notify();
        // As Linux's vm_munmap here, whatever is mapped there now goes.
        self.munmap(ctx, context.ring, context.ring_len)
    }
}
