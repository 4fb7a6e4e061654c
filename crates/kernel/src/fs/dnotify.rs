//! dnotify (fcntl F_NOTIFY): a directory's descriptor asks for a signal when an
//! entry of the directory is read, changed, made, removed or renamed, as Linux's
//! fs/notify/dnotify. The signal is fasync's, POLL_MSG to the descriptor's owner
//! (F_NOTIFY makes the caller it), F_SETSIG's with si_fd or plain SIGIO.
//!
//! Marks are kept by directory inode, and hear of events through inotify's
//! reports (`inotify::deliver` calls `event`), which carry the same fsnotify
//! events. A mark goes at its first event unless DN_MULTISHOT, when its
//! descriptor is closed by the process that set it (Linux's dnotify_flush, keyed
//! by the descriptor table), or when F_NOTIFY is given no events.

use super::fasync;
use super::inotify::{IN_ACCESS, IN_ATTRIB, IN_CREATE, IN_DELETE, IN_MODIFY, IN_MOVED_FROM, IN_MOVED_TO};
use crate::task::Task;
use crate::vfs::inode::{inode_key, Inode};
use crate::vfs::FileDescription;
use rvisor_abi::{error, SysResult};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

pub const DN_ACCESS: u32 = 0x1;
pub const DN_MODIFY: u32 = 0x2;
pub const DN_CREATE: u32 = 0x4;
pub const DN_DELETE: u32 = 0x8;
pub const DN_RENAME: u32 = 0x10;
pub const DN_ATTRIB: u32 = 0x20;
pub const DN_MULTISHOT: u32 = 0x8000_0000;

struct Mark {
    file: Weak<dyn FileDescription>,
    /// The descriptor table of the process that set it, whose close of the
    /// description removes it.
    table: usize,
    /// What si_fd says.
    fd: i32,
    mask: u32,
}

/// By directory inode key; a leaf lock, never held while a signal is sent.
static MARKS: Mutex<BTreeMap<usize, Vec<Mark>>> = Mutex::new(BTreeMap::new());
/// How many marks exist: inotify's reports look at dnotify only if some do.
static LIVE: AtomicUsize = AtomicUsize::new(0);

fn marks() -> MutexGuard<'static, BTreeMap<usize, Vec<Mark>>> {
    MARKS.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn active() -> bool {
    LIVE.load(Ordering::Relaxed) != 0
}

/// Removes the marks of `list` matching `gone`, keeping `LIVE` in step.
fn remove(list: &mut Vec<Mark>, gone: impl Fn(&Mark) -> bool) {
    let before = list.len();
    list.retain(|m| !gone(m));
    LIVE.fetch_sub(before - list.len(), Ordering::Relaxed);
}

fn table_id(t: &Task) -> usize {
    Arc::as_ptr(&t.fds) as usize
}

/// fcntl(fd, F_NOTIFY, arg), as Linux's fcntl_dirnotify: no events removes the
/// caller's mark (on any file); ENOTDIR for anything but a directory; events
/// add to those of the caller's mark on this description.
pub fn fcntl(t: &Task, file: &Arc<dyn FileDescription>, fd: i32, arg: u64) -> SysResult<()> {
    let arg = arg as u32;
    if arg & !DN_MULTISHOT == 0 {
        flush(t, file);
        return Ok(());
    }
    let Some(d) = file.dentry().filter(|d| d.is_dir()) else { return error!(ENOTDIR) };
    fasync::own(t, file)?;
    let table = table_id(t);
    let mut all = marks();
    let list = all.entry(inode_key(&d.inode)).or_default();
    match list.iter_mut().find(|m| m.table == table && m.file.ptr_eq(&Arc::downgrade(file))) {
        Some(m) => {
            m.fd = fd;
            m.mask |= arg;
        }
        None => {
            list.push(Mark { file: Arc::downgrade(file), table, fd, mask: arg });
            LIVE.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// A descriptor of `file` was closed by `t`'s process (or F_NOTIFY 0): its marks
/// through that description go.
pub fn flush(t: &Task, file: &Arc<dyn FileDescription>) {
    if !active() {
        return;
    }
    let Some(d) = file.dentry() else { return };
    let key = inode_key(&d.inode);
    let table = table_id(t);
    let mut all = marks();
    if let Some(list) = all.get_mut(&key) {
        remove(list, |m| m.table == table && m.file.ptr_eq(&Arc::downgrade(file)));
        if list.is_empty() {
            all.remove(&key);
        }
    }
}

/// The DN_* events an inotify event is (Linux's convert_arg, inverted): a
/// rename's halves count as a delete and a create; the rename itself is
/// reported apart (`renamed`).
fn dn_events(in_mask: u32) -> u32 {
    [(IN_ACCESS, DN_ACCESS), (IN_MODIFY, DN_MODIFY), (IN_ATTRIB, DN_ATTRIB), (IN_CREATE | IN_MOVED_TO, DN_CREATE), (IN_DELETE | IN_MOVED_FROM, DN_DELETE)]
        .into_iter()
        .filter(|&(i, _)| in_mask & i != 0)
        .fold(0, |acc, (_, dn)| acc | dn)
}

/// An inotify event `in_mask` on `inode` (an entry's, reported to its directory,
/// or the directory's own).
pub fn event(inode: &Arc<dyn Inode>, in_mask: u32) {
    signal(inode, dn_events(in_mask));
}

/// An entry of `dir` was renamed (Linux's FS_RENAME, to the old directory).
pub fn renamed(dir: &Arc<dyn Inode>) {
    signal(dir, DN_RENAME);
}

/// Signals the marks on `inode` that want any of `events`, dropping those that
/// are not DN_MULTISHOT and those whose description is gone.
fn signal(inode: &Arc<dyn Inode>, events: u32) {
    if events == 0 || !active() {
        return;
    }
    let key = inode_key(inode);
    let mut fire = Vec::new();
    {
        let mut all = marks();
        let Some(list) = all.get_mut(&key) else { return };
        for m in list.iter().filter(|m| m.mask & events != 0) {
            fire.push((m.file.clone(), m.fd));
        }
        remove(list, |m| m.file.strong_count() == 0 || (m.mask & events != 0 && m.mask & DN_MULTISHOT == 0));
        if list.is_empty() {
            all.remove(&key);
        }
    }
    for (file, fd) in fire {
        if let Some(file) = file.upgrade() {
            fasync::send_msg(&file, fd);
        }
    }
}
