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
//!
//! Reads, writes and fsyncs complete at submission; an IOCB_CMD_POLL request
//! waits for its file here (`PollRequest`), on the file's wait queue.

use super::ops::Placement;
use super::{MemoryManager, UserRef};
use crate::fs::eventfd::EventFd;
use crate::vfs::{FileDescription, WaitCallback, WaitQueue};
use rvisor_abi::structs::{AioRing, IoEvent};
use rvisor_abi::{errno, SysResult, UserAddr};
use rvisor_platform::{Context, Perms};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

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
    /// Requests submitted and not yet completed (being submitted, or polls).
    in_flight: usize,
    /// IOCB_CMD_POLL requests waiting for their files (Linux's active_reqs).
    polls: Vec<Arc<PollRequest>>,
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

/// An IOCB_CMD_POLL request waiting for its file: a callback on the file's wait
/// queue, completed once (as Linux's) by the first wanted event, by io_cancel, or
/// dropped with its context. It holds its file, as Linux's does, and its context
/// weakly: the context holds it. Its result is always the wanted events that
/// hold (Linux gives the waking event's whole mask where the wake-up names one:
/// POLLIN | POLLRDNORM for a pipe's write).
struct PollRequest {
    context: Weak<AioContext>,
    file: Arc<dyn FileDescription>,
    /// The poll events it waits for (POLLERR and POLLHUP always).
    events: u32,
    /// The iocb's address, which io_cancel names it by.
    obj: u64,
    /// Its completion (`res` to be filled in) and the eventfd to signal then;
    /// None once completed or dropped. A leaf lock.
    pending: Mutex<Option<(IoEvent, Option<Arc<dyn FileDescription>>)>>,
}

impl PollRequest {
    /// Completes the request if its file is ready for it now.
    fn check(self: &Arc<Self>) {
        let mask = self.file.readiness(self.events) & self.events;
        if mask != 0 {
            self.finish(mask);
        }
    }

    /// Completes the request with `mask` as its result, unless that was done.
    fn finish(self: &Arc<Self>, mask: u32) {
        let Some((mut event, resfd)) = self.detach() else { return };
        event.res = i64::from(mask);
        if let Some(context) = self.context.upgrade() {
            context.complete_poll(self, event);
        }
        if let Some(efd) = resfd.as_deref().and_then(EventFd::of) {
            efd.signal();
        }
    }

    /// Takes the pending completion (None if already taken) and leaves the file's
    /// wait queue.
    fn detach(self: &Arc<Self>) -> Option<(IoEvent, Option<Arc<dyn FileDescription>>)> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        if let Some(q) = self.file.wait_queue() {
            q.unregister_callback(&(self.clone() as Arc<dyn WaitCallback>));
        }
        Some(pending)
    }
}

impl WaitCallback for PollRequest {
    /// Looks at the file's readiness from the notifier's thread, which holds
    /// none of the file's locks (see `vfs::wait_queue`).
    fn wake(self: Arc<Self>, events: u32) {
        if events & self.events != 0 {
            self.check();
        }
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

    /// IOCB_CMD_POLL: the request in `slot` completes now if `file` is ready for
    /// `events`, else when its wait queue reports them (a file without one is
    /// always ready). `event` is its completion but for `res`.
    pub fn poll(self: &Arc<Self>, mut slot: Slot<'_>, file: Arc<dyn FileDescription>, events: u32, event: IoEvent, resfd: Option<Arc<dyn FileDescription>>) {
        let req = Arc::new(PollRequest { context: Arc::downgrade(self), file, events, obj: event.obj, pending: Mutex::new(Some((event, resfd))) });
        // The slot stays taken until the poll completes.
        slot.done = true;
        self.lock().polls.push(req.clone());
        if let Some(q) = req.file.wait_queue() {
            q.register_callback(req.clone());
        }
        req.check();
    }

    /// io_cancel: completes the poll request submitted from `obj` with what its
    /// file is ready for now (Linux's aio_poll_cancel). EINVAL if none waits:
    /// every other request completed at submission.
    pub fn cancel(&self, obj: u64) -> SysResult<()> {
        let req = self.lock().polls.iter().find(|r| r.obj == obj).cloned().ok_or_else(|| errno!(EINVAL))?;
        req.finish(req.file.readiness(req.events) & req.events);
        Ok(())
    }

    /// Queues a poll request's completion, unless io_destroy took it first.
    fn complete_poll(&self, req: &Arc<PollRequest>, event: IoEvent) {
        {
            let mut st = self.lock();
            let Some(i) = st.polls.iter().position(|r| Arc::ptr_eq(r, req)) else { return };
            st.polls.swap_remove(i);
            st.in_flight -= 1;
            st.events.push_back(event);
        }
        self.queue.notify();
    }

    /// Drops the waiting poll requests (io_destroy, or the context's end).
    fn drop_polls(&self) {
        let polls = {
            let mut st = self.lock();
            st.in_flight -= st.polls.len();
            std::mem::take(&mut st.polls)
        };
        for req in polls {
            req.detach();
        }
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

impl Drop for AioContext {
    fn drop(&mut self) {
        self.drop_polls();
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
        let ring = self.map_anonymous(ctx, Placement::Hint(0), ring_len, rw, true, false, None)?;
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
        context.drop_polls();
        context.queue.notify();
        // As Linux's vm_munmap here, whatever is mapped there now goes.
        self.munmap(ctx, context.ring, context.ring_len)
    }
}
