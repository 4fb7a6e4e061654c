//! inotify: watches on inodes that queue events for a descriptor to read.
//!
//! Every watch is in one table keyed by the watched inode (`inode_key`); a watch
//! holds the dentry it was added by, which keeps the inode, and the name walks
//! find it by, alive. The VFS reports what happened after each operation
//! succeeded (`notify_*`, `unlinked`, `renamed`, and a file's last close from its
//! Drop); each report first loads `LIVE`, so with no watch anywhere a file
//! operation pays one atomic load. The events and their order are Linux's
//! (fsnotify): a file's event goes to its directory's watch, with its name, then
//! to its own; an event identical to the last queued one merges with it; past
//! MAX_QUEUED_EVENTS one IN_Q_OVERFLOW stands for all that were lost. dnotify
//! (`dnotify.rs`) hears of every event `deliver` sees.

use super::eventfd::anon_inode_stat;
use super::user_io::RangeCursor;
use crate::mm::UserBuffers;
use crate::task::Task;
use crate::vfs::inode::{inode_key, Inode, S_IFDIR};
use crate::vfs::readiness::{POLLIN, POLLRDNORM};
use crate::vfs::{Dentry, FileDescription, StatusFlags, WaitQueue};
use rvisor_abi::structs::{InotifyEvent, Stat};
use rvisor_abi::{errno, error, SysResult};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use zerocopy::IntoBytes;

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_MOVE_SELF: u32 = 0x800;
pub const IN_ALL_EVENTS: u32 = 0xfff;
pub const IN_UNMOUNT: u32 = 0x2000;
pub const IN_Q_OVERFLOW: u32 = 0x4000;
pub const IN_IGNORED: u32 = 0x8000;
pub const IN_ONLYDIR: u32 = 0x0100_0000;
pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
pub const IN_MASK_CREATE: u32 = 0x1000_0000;
pub const IN_MASK_ADD: u32 = 0x2000_0000;
pub const IN_ISDIR: u32 = 0x4000_0000;
pub const IN_ONESHOT: u32 = 0x8000_0000;
pub const IN_NONBLOCK: u32 = 0o4000;
pub const IN_CLOEXEC: u32 = 0o2000000;
/// Every bit inotify_add_watch knows (Linux's ALL_INOTIFY_BITS).
pub const ALL_INOTIFY_BITS: u32 = IN_ALL_EVENTS | IN_UNMOUNT | IN_Q_OVERFLOW | IN_IGNORED | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_CREATE | IN_MASK_ADD | IN_ISDIR | IN_ONESHOT;
/// What a watch keeps of the mask it was given.
const WATCH_BITS: u32 = IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK;

/// /proc/sys/fs/inotify/max_queued_events.
const MAX_QUEUED_EVENTS: usize = 16384;
const O_RDONLY: u32 = 0;
const FIONREAD: u32 = 0x541b;

/// One queued event; `name` unpadded.
#[derive(PartialEq)]
struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

impl Event {
    /// The name's length as read(2) gives it: NUL-padded to a multiple of the
    /// event header's size, as Linux pads it.
    fn name_len(&self) -> usize {
        if self.name.is_empty() { 0 } else { (self.name.len() + 1).next_multiple_of(size_of::<InotifyEvent>()) }
    }

    fn size(&self) -> usize {
        size_of::<InotifyEvent>() + self.name_len()
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        let len = self.name_len();
        out.extend_from_slice(InotifyEvent { wd: self.wd, mask: self.mask, cookie: self.cookie, len: len as u32 }.as_bytes());
        out.extend_from_slice(&self.name);
        out.resize(out.len() + len - self.name.len(), 0);
    }
}

struct Queue {
    events: VecDeque<Event>,
    /// The IN_Q_OVERFLOW event is queued (it counts toward the limit, as on Linux).
    overflowed: bool,
    /// The last watch descriptor given out: new ones count on from it (Linux's
    /// cyclic allocation), so a removed wd is not reused at once.
    last_wd: i32,
    /// `last_wd` wrapped around: a new wd may be one still in use.
    wrapped: bool,
}

impl Queue {
    /// Queues `e`; false if it merged with the last event or was lost to overflow.
    fn push(&mut self, e: Event) -> bool {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            if self.overflowed {
                return false;
            }
            self.overflowed = true;
            self.events.push_back(Event { wd: -1, mask: IN_Q_OVERFLOW, cookie: 0, name: Vec::new() });
            return true;
        }
        if self.events.back() == Some(&e) {
            return false;
        }
        self.events.push_back(e);
        true
    }
}

/// An inotify instance's queue: what its watches deliver to and its reads take from.
struct Group {
    /// A leaf lock, taken under `WATCHES`.
    queue: Mutex<Queue>,
    waiters: WaitQueue,
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Watch {
    group: Arc<Group>,
    wd: i32,
    /// Events wanted, plus IN_ONESHOT and IN_EXCL_UNLINK.
    mask: u32,
    /// Keeps the watched inode, and so its key, alive.
    _dentry: Arc<Dentry>,
}

/// Every watch, by watched inode. One table per Sentry process, like its one
/// kernel: a file description reports its last close from its Drop, with no
/// kernel at hand.
static WATCHES: Mutex<BTreeMap<usize, Vec<Watch>>> = Mutex::new(BTreeMap::new());
/// How many watches exist.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Rename cookies, shared by the MOVED_FROM/MOVED_TO pair of one rename.
static COOKIE: AtomicU32 = AtomicU32::new(0);

fn watches() -> MutexGuard<'static, BTreeMap<usize, Vec<Watch>>> {
    WATCHES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether any watch (or dnotify mark) exists: every report checks this first.
fn active() -> bool {
    LIVE.load(Ordering::Relaxed) != 0 || super::dnotify::active()
}

fn ignored(wd: i32) -> Event {
    Event { wd, mask: IN_IGNORED, cookie: 0, name: Vec::new() }
}

/// Wakes the readers of `groups` (with no table lock held) and drops `removed`
/// watches, whose dentries may be the last references to their inodes.
fn finish(groups: Vec<Arc<Group>>, removed: Vec<Watch>) {
    for g in groups {
        g.waiters.notify_events(POLLIN);
    }
    drop(removed);
}

/// Takes the watches matching `remove` out of `list` (keeping `LIVE` in step).
fn take_watches(list: &mut Vec<Watch>, mut remove: impl FnMut(&Watch) -> bool) -> Vec<Watch> {
    let (gone, kept): (Vec<Watch>, Vec<Watch>) = std::mem::take(list).into_iter().partition(|w| remove(w));
    *list = kept;
    LIVE.fetch_sub(gone.len(), Ordering::Relaxed);
    gone
}

/// Queues `mask` (with `name` and `cookie`) to the watches on `inode` that want it.
fn deliver(inode: &Arc<dyn Inode>, mask: u32, name: &[u8], cookie: u32) {
    super::dnotify::event(inode, mask);
    let key = inode_key(inode);
    let mut woken = Vec::new();
    let removed = {
        let mut table = watches();
        let Some(list) = table.get_mut(&key) else { return };
        let mut fired_oneshot = false;
        for w in list.iter().filter(|w| w.mask & mask & IN_ALL_EVENTS != 0) {
            let mut q = w.group.lock();
            let mut queued = q.push(Event { wd: w.wd, mask, cookie, name: name.to_vec() });
            if w.mask & IN_ONESHOT != 0 {
                queued |= q.push(ignored(w.wd));
                fired_oneshot = true;
            }
            if queued {
                woken.push(w.group.clone());
            }
        }
        let removed = if fired_oneshot { take_watches(list, |w| w.mask & IN_ONESHOT != 0 && w.mask & mask & IN_ALL_EVENTS != 0) } else { Vec::new() };
        if list.is_empty() {
            table.remove(&key);
        }
        removed
    };
    finish(woken, removed);
}

fn isdir(d: &Dentry) -> u32 {
    if d.is_dir() { IN_ISDIR } else { 0 }
}

/// An event on the file at `d` (Linux's fsnotify_dentry): to its directory's
/// watches with its name, then to its own.
pub fn notify_dentry(d: &Dentry, mask: u32) {
    if !active() {
        return;
    }
    let mask = mask | isdir(d);
    if let Some(parent) = &d.parent {
        deliver(&parent.inode, mask, &d.name, 0);
    }
    deliver(&d.inode, mask, &[], 0);
}

/// An event on an open file (read, write...), if it has a name.
pub fn notify_file(file: &dyn FileDescription, mask: u32) {
    if active() {
        if let Some(d) = file.dentry() {
            notify_dentry(&d, mask);
        }
    }
}

/// The last close of a file description opened at `d`.
pub fn closed(d: &Dentry, writable: bool) {
    notify_dentry(d, if writable { IN_CLOSE_WRITE } else { IN_CLOSE_NOWRITE });
}

/// An entry of `dir` appeared (IN_CREATE), for the directory's watches.
pub fn created(dir: &Dentry, name: &[u8], child_is_dir: bool) {
    if active() {
        deliver(&dir.inode, IN_CREATE | if child_is_dir { IN_ISDIR } else { 0 }, name, 0);
    }
}

/// A new link to `inode` named `name` in `dir`.
pub fn linked(dir: &Dentry, name: &[u8], inode: &Arc<dyn Inode>) {
    if active() {
        link_count(inode);
        created(dir, name, false);
    }
}

/// The inode lost a name: when that was its last (a directory's only),
/// IN_DELETE_SELF and the end of its watches.
fn deleted_if_unlinked(inode: &Arc<dyn Inode>) {
    let key = inode_key(inode);
    if !watches().contains_key(&key) || (inode.kind() != S_IFDIR && inode.stat().is_ok_and(|s| s.st_nlink > 0)) {
        return;
    }
    deliver(inode, IN_DELETE_SELF, &[], 0);
    let mut woken = Vec::new();
    let removed = {
        let mut table = watches();
        let mut list = table.remove(&key).unwrap_or_default();
        let removed = take_watches(&mut list, |_| true);
        for w in &removed {
            if w.group.lock().push(ignored(w.wd)) {
                woken.push(w.group.clone());
            }
        }
        removed
    };
    finish(woken, removed);
}

/// A non-directory's link count changed.
fn link_count(inode: &Arc<dyn Inode>) {
    if inode.kind() != S_IFDIR {
        deliver(inode, IN_ATTRIB, &[], 0);
    }
}

/// `name` in `dir`, which was `child`, was unlinked or removed.
pub fn unlinked(dir: &Dentry, name: &[u8], child: &Dentry) {
    if active() {
        link_count(&child.inode);
        deleted_if_unlinked(&child.inode);
        deliver(&dir.inode, IN_DELETE | isdir(child), name, 0);
    }
}

/// `moved` went from `old_name` in `old_dir` to `new_name` in `new_dir`,
/// replacing `replaced`.
pub fn renamed(old_dir: &Dentry, old_name: &[u8], new_dir: &Dentry, new_name: &[u8], moved: &Dentry, replaced: Option<&Dentry>) {
    if !active() {
        return;
    }
    let cookie = COOKIE.fetch_add(1, Ordering::Relaxed).wrapping_add(1).max(1);
    super::dnotify::renamed(&old_dir.inode);
    deliver(&old_dir.inode, IN_MOVED_FROM | isdir(moved), old_name, cookie);
    deliver(&new_dir.inode, IN_MOVED_TO | isdir(moved), new_name, cookie);
    if let Some(r) = replaced {
        link_count(&r.inode);
    }
    deliver(&moved.inode, IN_MOVE_SELF, &[], 0);
    if let Some(r) = replaced {
        deleted_if_unlinked(&r.inode);
    }
}

/// An inotify descriptor.
pub struct Inotify {
    group: Arc<Group>,
    flags: StatusFlags,
}

impl Inotify {
    /// inotify_init1's IN_NONBLOCK (IN_CLOEXEC is the caller's).
    pub fn new(flags: u32) -> Inotify {
        Inotify {
            group: Arc::new(Group { queue: Mutex::new(Queue { events: VecDeque::new(), overflowed: false, last_wd: 0, wrapped: false }), waiters: WaitQueue::default() }),
            flags: StatusFlags::new(O_RDONLY | (flags & IN_NONBLOCK)),
        }
    }

    /// Watches the inode at `d` for `mask`, or changes this instance's watch on it.
    pub fn add_watch(&self, d: Arc<Dentry>, mask: u32) -> SysResult<i32> {
        let key = inode_key(&d.inode);
        let mut table = watches();
        if let Some(w) = table.get_mut(&key).and_then(|l| l.iter_mut().find(|w| Arc::ptr_eq(&w.group, &self.group))) {
            if mask & IN_MASK_CREATE != 0 {
                return error!(EEXIST);
            }
            w.mask = mask & WATCH_BITS | if mask & IN_MASK_ADD != 0 { w.mask } else { 0 };
            return Ok(w.wd);
        }
        let wd = {
            let mut q = self.group.lock();
            loop {
                q.last_wd = q.last_wd.checked_add(1).unwrap_or_else(|| {
                    q.wrapped = true;
                    1
                });
                let wd = q.last_wd;
                if !q.wrapped || !table.values().flatten().any(|w| w.wd == wd && Arc::ptr_eq(&w.group, &self.group)) {
                    break wd;
                }
            }
        };
        table.entry(key).or_default().push(Watch { group: self.group.clone(), wd, mask: mask & WATCH_BITS, _dentry: d });
        LIVE.fetch_add(1, Ordering::Relaxed);
        Ok(wd)
    }

    pub fn rm_watch(&self, wd: i32) -> SysResult<()> {
        let removed = {
            let mut table = watches();
            let mut removed = Vec::new();
            table.retain(|_, list| {
                removed.extend(take_watches(list, |w| w.wd == wd && Arc::ptr_eq(&w.group, &self.group)));
                !list.is_empty()
            });
            removed
        };
        if removed.is_empty() {
            return error!(EINVAL);
        }
        self.group.lock().push(ignored(wd));
        finish(vec![self.group.clone()], removed);
        Ok(())
    }

    fn nonblock(&self) -> bool {
        self.flags.get() & IN_NONBLOCK != 0
    }

    /// Takes the whole events that fit in `room` bytes: EINVAL if the first does
    /// not, None if there is none.
    fn take(&self, room: usize) -> SysResult<Option<Vec<u8>>> {
        let mut q = self.group.lock();
        let Some(first) = q.events.front() else { return Ok(None) };
        if first.size() > room {
            return error!(EINVAL);
        }
        let mut out = Vec::new();
        while let Some(e) = q.events.front() {
            if out.len() + e.size() > room {
                break;
            }
            e.write_to(&mut out);
            if e.wd == -1 && e.mask == IN_Q_OVERFLOW {
                q.overflowed = false;
            }
            q.events.pop_front();
        }
        Ok(Some(out))
    }
}

impl Drop for Inotify {
    fn drop(&mut self) {
        let removed = {
            let mut table = watches();
            let mut removed = Vec::new();
            table.retain(|_, list| {
                removed.extend(take_watches(list, |w| Arc::ptr_eq(&w.group, &self.group)));
                !list.is_empty()
            });
            removed
        };
        finish(Vec::new(), removed);
    }
}

impl FileDescription for Inotify {
    fn read(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if offset.is_some() {
            return error!(ESPIPE);
        }
        let room = bufs.total() as usize;
        let data = loop {
            if let Some(data) = self.take(room)? {
                break data;
            }
            if self.nonblock() {
                return error!(EAGAIN);
            }
            self.group.waiters.register(&t.thread);
            let r = t.block_until(None, || !self.group.lock().events.is_empty());
            self.group.waiters.unregister(&t.thread);
            r?;
        };
        let ranges = t.mm.translate_buffers(bufs, true)?;
        if RangeCursor::new(t.mm.memory_file(), ranges).write(&data) < data.len() {
            return error!(EFAULT);
        }
        Ok(data.len())
    }

    fn write(&self, _t: &Task, _bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        error!(EINVAL)
    }

    fn ioctl(&self, t: &Task, request: u32, arg: u64) -> SysResult<u64> {
        if request != FIONREAD {
            return error!(ENOTTY);
        }
        let n: usize = self.group.lock().events.iter().map(Event::size).sum();
        let n = i32::try_from(n).map_err(|_| errno!(EOVERFLOW))?;
        t.mm.write_obj(crate::mm::UserRef::new(rvisor_abi::UserAddr(arg)), &n)?;
        Ok(0)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(anon_inode_stat())
    }

    fn flags(&self) -> Option<&crate::vfs::StatusFlags> {
        Some(&self.flags)
    }

    fn proc_name(&self) -> Option<Vec<u8>> {
        Some(b"anon_inode:inotify".to_vec())
    }

    fn readiness(&self, mask: u32) -> u32 {
        if self.group.lock().events.is_empty() { 0 } else { mask & (POLLIN | POLLRDNORM) }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.group.waiters)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
