//! epoll: an interest list of (file, fd) pairs and a ready list, as in Linux.
//!
//! Each interest item registers a callback (`WaitCallback`) on its file's wait
//! queue. When the file says its readiness may have changed with events the item
//! wants, the callback puts the item on the ready list (once) and wakes the epoll
//! set's own queue, where epoll_wait callers and anything polling the epoll file
//! (poll, an outer epoll set) wait. epoll_wait takes items off the ready list,
//! asks each file for its readiness, reports those with events, and puts
//! level-triggered ones back; edge-triggered ones come back only with the next
//! callback, and EPOLLONESHOT items are disabled until EPOLL_CTL_MOD. This is
//! Linux's `ep_poll_callback`/`ep_send_events`, including its edge-triggered
//! behaviour: an edge is a wake-up from the file (every pipe write is one), not a
//! change of the readiness bits.
//!
//! Items hold their file weakly: closing the last descriptor of a file removes it
//! from every epoll set (the item is dropped when next seen), while a file still
//! open through a dup stays registered, as on Linux.
//!
//! Host-backed files (the inherited standard streams) have no wait queue. Their
//! items are looked at on every epoll_wait, level-triggered as usual; in
//! edge-triggered mode an event is reported when its bit newly appears between
//! two looks (an approximation of Linux, which hears every wake-up of the file).
//! A wait that includes them is a host poll (see `vfs::readiness`).
//!
//! Locks: the interest map, then a file's wait queue (registering); the ready
//! list and each item's event mask are leaves. Callbacks run with no wait-queue or
//! file lock held, so a file may be polled with the interest map held.

use crate::vfs::StatusFlags;
use crate::vfs::readiness::{Watched, POLLIN, POLLRDNORM};
use crate::vfs::{FileDescription, WaitCallback, WaitQueue};
use crate::mm::UserBuffers;
use crate::task::Task;
use rvisor_abi::structs::Stat;
use rvisor_abi::{error, SysResult};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

pub const EPOLL_CTL_ADD: i32 = 1;
pub const EPOLL_CTL_DEL: i32 = 2;
pub const EPOLL_CTL_MOD: i32 = 3;
pub const EPOLLIN: u32 = 0x1;
pub const EPOLLOUT: u32 = 0x4;
pub const EPOLLERR: u32 = 0x8;
pub const EPOLLHUP: u32 = 0x10;
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;
/// Flags of an item that are not events.
const PRIVATE: u32 = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
/// The events EPOLLEXCLUSIVE may be combined with.
const EXCLUSIVE_OK: u32 = EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;
/// Longest chain of epoll sets inside epoll sets.
pub const EP_MAX_NESTS: usize = 4;
pub const EPOLL_CLOEXEC: u32 = 0o2000000;
const O_RDWR: u32 = 2;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Identity of an interest item: the file description and the descriptor number.
type Key = (usize, i32);

fn file_key(f: &Arc<dyn FileDescription>) -> usize {
    Arc::as_ptr(f) as *const () as usize
}

struct Item {
    file: Weak<dyn FileDescription>,
    key: Key,
    /// (events with EPOLLET/EPOLLONESHOT..., user data). A leaf lock.
    ev: Mutex<(u32, u64)>,
    /// On the ready list (or in an epoll_wait's batch).
    queued: AtomicBool,
    removed: AtomicBool,
    ep: Weak<Shared>,
    /// A host-backed file: no wait queue; looked at on every wait.
    host: bool,
    /// For host items in edge-triggered mode: the events seen at the last look.
    host_last: AtomicU32,
}

impl Item {
    fn events(&self) -> (u32, u64) {
        *lock(&self.ev)
    }
}

impl WaitCallback for Item {
    /// Deleted, or its epoll set or file is gone (Linux removes a closed file
    /// from every set).
    fn is_dead(&self) -> bool {
        self.removed.load(Ordering::Acquire) || self.ep.strong_count() == 0 || self.file.strong_count() == 0
    }

    fn wake(self: Arc<Self>, events: u32) {
        if self.removed.load(Ordering::Acquire) {
            return;
        }
        let mask = self.events().0;
        // Disabled by EPOLLONESHOT, or not an event this item wants.
        if mask & !PRIVATE == 0 || events & mask == 0 {
            return;
        }
        let Some(ep) = self.ep.upgrade() else { return };
        if !self.queued.swap(true, Ordering::AcqRel) {
            lock(&ep.ready).push_back(self.clone());
        }
        ep.queue.notify_events(POLLIN | POLLRDNORM);
    }
}

#[derive(Default)]
struct Shared {
    items: Mutex<BTreeMap<Key, Arc<Item>>>,
    ready: Mutex<VecDeque<Arc<Item>>>,
    /// epoll_wait callers, and whoever polls this epoll file.
    queue: WaitQueue,
    host_items: AtomicUsize,
    /// Epoll sets this one is in (for the nesting-depth check).
    parents: Mutex<Vec<Weak<Shared>>>,
}

/// An epoll file.
pub struct Epoll {
    shared: Arc<Shared>,
    flags: StatusFlags,
}

/// Serializes adding epoll sets to epoll sets, so two adds cannot make a loop
/// that neither sees (Linux's epmutex).
static NEST_LOCK: Mutex<()> = Mutex::new(());

thread_local! {
    /// How deep in nested epoll readiness checks this thread is.
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Default for Epoll {
    fn default() -> Self {
        Epoll::new()
    }
}

impl Epoll {
    pub fn new() -> Epoll {
        Epoll { shared: Arc::new(Shared::default()), flags: StatusFlags::new(O_RDWR) }
    }

    /// Whether `file` can be watched: it has a poll operation (a wait queue or a
    /// host descriptor). Regular files and directories cannot (EPERM).
    pub fn can_watch(file: &dyn FileDescription) -> bool {
        file.wait_queue().is_some() || file.host_fd().is_some()
    }

    /// How many levels of epoll sets lie below this one; `None` if `target` is
    /// among them or the chain is too deep.
    fn depth_below(&self, target: &Arc<Shared>, depth: usize) -> Option<usize> {
        if depth > EP_MAX_NESTS {
            return None;
        }
        let children: Vec<Arc<dyn FileDescription>> = lock(&self.shared.items).values().filter_map(|i| i.file.upgrade()).collect();
        let mut most = 0;
        for f in &children {
            if let Some(ep) = f.epoll() {
                if Arc::ptr_eq(&ep.shared, target) {
                    return None;
                }
                most = most.max(ep.depth_below(target, depth + 1)? + 1);
            }
        }
        Some(most)
    }

    fn depth_above(s: &Arc<Shared>, depth: usize) -> usize {
        if depth > EP_MAX_NESTS {
            return depth;
        }
        let parents: Vec<Arc<Shared>> = lock(&s.parents).iter().filter_map(Weak::upgrade).collect();
        parents.iter().map(|p| 1 + Self::depth_above(p, depth + 1)).max().unwrap_or(0)
    }

    /// epoll_ctl. `fd` names `file`; `event` is (events, data) for ADD and MOD.
    /// The caller has checked that `file` is not this epoll set and can be watched.
    pub fn ctl(&self, op: i32, fd: i32, file: &Arc<dyn FileDescription>, event: (u32, u64)) -> SysResult<()> {
        let key = (file_key(file), fd);
        let (events, data) = event;
        let events = if op == EPOLL_CTL_DEL { 0 } else { events | EPOLLERR | EPOLLHUP };
        if events & EPOLLEXCLUSIVE != 0
            && (op == EPOLL_CTL_MOD || (op == EPOLL_CTL_ADD && (file.epoll().is_some() || events & !EXCLUSIVE_OK != 0)))
        {
            return error!(EINVAL);
        }
        match op {
            EPOLL_CTL_ADD => {
                let _nest = file.epoll().map(|_| lock(&NEST_LOCK));
                if let Some(inner) = file.epoll() {
                    let below = inner.depth_below(&self.shared, 1).ok_or_else(|| rvisor_abi::errno!(ELOOP))?;
                    if below + 1 + Self::depth_above(&self.shared, 0) > EP_MAX_NESTS {
                        return error!(ELOOP);
                    }
                }
                let mut items = lock(&self.shared.items);
                if let Some(old) = items.get(&key) {
                    if old.file.upgrade().is_some() {
                        return error!(EEXIST);
                    }
                    // A dead item whose file's address was reused.
                    let old = old.clone();
                    self.forget_locked(&mut items, &old);
                }
                let host = file.host_fd().is_some();
                let item = Arc::new(Item {
                    file: Arc::downgrade(file),
                    key,
                    ev: Mutex::new((events, data)),
                    queued: AtomicBool::new(false),
                    removed: AtomicBool::new(false),
                    ep: Arc::downgrade(&self.shared),
                    host,
                    host_last: AtomicU32::new(0),
                });
                items.insert(key, item.clone());
                if host {
                    self.shared.host_items.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(q) = file.wait_queue() {
                    q.register_callback(item.clone());
                }
                if let Some(inner) = file.epoll() {
                    lock(&inner.shared.parents).push(Arc::downgrade(&self.shared));
                }
                drop(items);
                if !host {
                    self.queue_if_ready(&item, file);
                }
                Ok(())
            }
            EPOLL_CTL_MOD => {
                let item = lock(&self.shared.items).get(&key).cloned().filter(|i| i.file.upgrade().is_some()).ok_or_else(|| rvisor_abi::errno!(ENOENT))?;
                {
                    let mut ev = lock(&item.ev);
                    if ev.0 & EPOLLEXCLUSIVE != 0 {
                        return error!(EINVAL);
                    }
                    *ev = (events, data);
                }
                item.host_last.store(0, Ordering::Relaxed);
                if !item.host {
                    self.queue_if_ready(&item, file);
                }
                Ok(())
            }
            EPOLL_CTL_DEL => {
                let mut items = lock(&self.shared.items);
                let item = items.get(&key).cloned().filter(|i| i.file.upgrade().is_some()).ok_or_else(|| rvisor_abi::errno!(ENOENT))?;
                self.forget_locked(&mut items, &item);
                Ok(())
            }
            _ => error!(EINVAL),
        }
    }

    /// Puts `item` on the ready list if its file has events for it now.
    fn queue_if_ready(&self, item: &Arc<Item>, file: &Arc<dyn FileDescription>) {
        let mask = item.events().0;
        if file.readiness(mask & !PRIVATE) & mask != 0 {
            if !item.queued.swap(true, Ordering::AcqRel) {
                lock(&self.shared.ready).push_back(item.clone());
            }
            self.shared.queue.notify_events(POLLIN | POLLRDNORM);
        }
    }

    /// The `nth` file (from 0) on the interest list under descriptor number
    /// `fd` (kcmp's KCMP_EPOLL_TFD; a file dup'd and added again is there twice).
    pub fn target(&self, fd: i32, nth: usize) -> Option<Arc<dyn FileDescription>> {
        let items = lock(&self.shared.items);
        let mut same_fd = items.values().filter(|i| i.key.1 == fd);
        same_fd.nth(nth).and_then(|i| i.file.upgrade())
    }

    /// Removes `item` from the interest list (the map is locked by the caller).
    fn forget_locked(&self, items: &mut BTreeMap<Key, Arc<Item>>, item: &Arc<Item>) {
        if items.get(&item.key).is_some_and(|i| Arc::ptr_eq(i, item)) {
            items.remove(&item.key);
        }
        if item.removed.swap(true, Ordering::AcqRel) {
            return;
        }
        if item.host {
            self.shared.host_items.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(f) = item.file.upgrade() {
            if let Some(q) = f.wait_queue() {
                let cb: Arc<dyn WaitCallback> = item.clone();
                q.unregister_callback(&cb);
            }
            if let Some(inner) = f.epoll() {
                let mut p = lock(&inner.shared.parents);
                if let Some(i) = p.iter().position(|w| w.as_ptr() == Arc::as_ptr(&self.shared)) {
                    p.remove(i);
                }
            }
        }
    }

    fn forget(&self, item: &Arc<Item>) {
        let mut items = lock(&self.shared.items);
        self.forget_locked(&mut items, item);
    }

    fn host_item_list(&self) -> Vec<Arc<Item>> {
        if self.shared.host_items.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        lock(&self.shared.items).values().filter(|i| i.host).cloned().collect()
    }

    /// The events of host item `item` to report now (edge-triggered: only newly
    /// appeared ones), or 0.
    fn host_events(item: &Item, file: &dyn FileDescription, consume: bool) -> (u32, u64) {
        let (mask, data) = item.events();
        if mask & !PRIVATE == 0 {
            return (0, data);
        }
        let now = file.readiness(mask & !PRIVATE) & mask;
        if mask & EPOLLET == 0 {
            return (now, data);
        }
        let last = if consume { item.host_last.swap(now, Ordering::Relaxed) } else { item.host_last.load(Ordering::Relaxed) };
        (now & !last, data)
    }

    /// epoll_wait's work: reports up to `max` ready items through `emit(index,
    /// events, data)`, which returns false if it could not (a fault: that item
    /// and the rest stay ready). Returns how many were reported.
    pub fn harvest(&self, max: usize, mut emit: impl FnMut(usize, u32, u64) -> bool) -> usize {
        let batch = std::mem::take(&mut *lock(&self.shared.ready));
        let mut n = 0;
        let mut again = Vec::new();
        let mut rest = VecDeque::new();
        let mut it = batch.into_iter();
        while let Some(item) = it.next() {
            if n >= max {
                rest.push_back(item);
                rest.extend(it.by_ref());
                break;
            }
            item.queued.store(false, Ordering::Release);
            if item.removed.load(Ordering::Acquire) {
                continue;
            }
            let Some(file) = item.file.upgrade() else {
                self.forget(&item);
                continue;
            };
            let (mask, data) = item.events();
            if mask & !PRIVATE == 0 {
                continue;
            }
            let revents = file.readiness(mask & !PRIVATE) & mask;
            if revents == 0 {
                continue;
            }
            if !emit(n, revents, data) {
                if !item.queued.swap(true, Ordering::AcqRel) {
                    rest.push_back(item);
                }
                rest.extend(it.by_ref());
                break;
            }
            n += 1;
            if mask & EPOLLONESHOT != 0 {
                lock(&item.ev).0 &= PRIVATE;
            } else if mask & EPOLLET == 0 && !item.queued.swap(true, Ordering::AcqRel) {
                again.push(item);
            }
        }
        for item in self.host_item_list() {
            if n >= max {
                break;
            }
            let Some(file) = item.file.upgrade() else {
                self.forget(&item);
                continue;
            };
            let (revents, data) = Self::host_events(&item, file.as_ref(), true);
            if revents == 0 {
                continue;
            }
            if !emit(n, revents, data) {
                break;
            }
            n += 1;
            if item.events().0 & EPOLLONESHOT != 0 {
                lock(&item.ev).0 &= PRIVATE;
            }
        }
        let mut ready = lock(&self.shared.ready);
        let newer = std::mem::take(&mut *ready);
        rest.extend(newer);
        rest.extend(again);
        *ready = rest;
        n
    }

    /// The host-backed files watched by this set and the sets inside it.
    pub fn host_files(&self, out: &mut Vec<Watched>, depth: usize) {
        if depth > EP_MAX_NESTS {
            return;
        }
        for item in self.host_item_list() {
            if let Some(file) = item.file.upgrade() {
                out.push(Watched { file, events: item.events().0 & !PRIVATE });
            }
        }
        let nested: Vec<Arc<dyn FileDescription>> = lock(&self.shared.items).values().filter_map(|i| i.file.upgrade()).filter(|f| f.epoll().is_some()).collect();
        for f in nested {
            if let Some(ep) = f.epoll() {
                ep.host_files(out, depth + 1);
            }
        }
    }

    /// Whether epoll_wait would report something now (the epoll file's POLLIN).
    fn has_events(&self) -> bool {
        let items: Vec<Arc<Item>> = lock(&self.shared.ready).iter().cloned().collect();
        for item in items {
            if item.removed.load(Ordering::Acquire) {
                continue;
            }
            let Some(file) = item.file.upgrade() else { continue };
            let mask = item.events().0;
            if mask & !PRIVATE != 0 && file.readiness(mask & !PRIVATE) & mask != 0 {
                return true;
            }
        }
        self.host_item_list().iter().any(|item| item.file.upgrade().is_some_and(|f| Self::host_events(item, f.as_ref(), false).0 != 0))
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        let items: Vec<Arc<Item>> = std::mem::take(&mut *lock(&self.shared.items)).into_values().collect();
        let mut map = BTreeMap::new();
        for item in items {
            self.forget_locked(&mut map, &item);
        }
        lock(&self.shared.ready).clear();
    }
}

impl FileDescription for Epoll {
    fn read(&self, _t: &Task, _bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if offset.is_some() { error!(ESPIPE) } else { error!(EINVAL) }
    }

    fn write(&self, _t: &Task, _bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if offset.is_some() { error!(ESPIPE) } else { error!(EINVAL) }
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(super::eventfd::anon_inode_stat())
    }

    fn flags(&self) -> Option<&crate::vfs::StatusFlags> {
        Some(&self.flags)
    }

    fn readiness(&self, mask: u32) -> u32 {
        let depth = DEPTH.with(|d| d.get());
        if depth > EP_MAX_NESTS + 1 {
            return 0;
        }
        DEPTH.with(|d| d.set(depth + 1));
        let ready = self.has_events();
        DEPTH.with(|d| d.set(depth));
        if ready { mask & (POLLIN | POLLRDNORM) } else { 0 }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.shared.queue)
    }

    fn epoll(&self) -> Option<&Epoll> {
        Some(self)
    }
}
