//! The fd table: descriptor numbers to open file descriptions.

use super::FileDescription;
use rvisor_abi::{errno, SysResult};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A file descriptor number as the app passes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fd(pub i32);

#[derive(Clone)]
struct Entry {
    file: Arc<dyn FileDescription>,
    cloexec: bool,
}

/// Shared between threads created with CLONE_FILES. The lock is a leaf: nothing
/// else is taken while it is held, and it is never held across I/O.
#[derive(Default)]
pub struct FdTable {
    entries: Mutex<Entries>,
}

#[derive(Clone, Default)]
struct Entries {
    open: BTreeMap<i32, Entry>,
    /// Every descriptor below this is open (Linux's files_struct.next_fd): the search for
    /// the lowest free one starts here, so a process with many descriptors does not scan
    /// them all on each open.
    next_fd: i32,
}

impl std::ops::Deref for Entries {
    type Target = BTreeMap<i32, Entry>;
    fn deref(&self) -> &Self::Target {
        &self.open
    }
}

impl Entries {
    /// Removes `fd`, keeping `next_fd` at or below the lowest free descriptor.
    fn remove(&mut self, fd: i32) -> Option<Entry> {
        let e = self.open.remove(&fd)?;
        self.next_fd = self.next_fd.min(fd);
        Some(e)
    }
}

impl FdTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, fd: Fd) -> SysResult<Arc<dyn FileDescription>> {
        self.lock().get(&fd.0).map(|e| e.file.clone()).ok_or_else(|| errno!(EBADF))
    }

    /// Installs `file` at exactly `fd`; returns what was there, to be released
    /// outside the table's lock.
    pub fn install_at(&self, fd: Fd, file: Arc<dyn FileDescription>, cloexec: bool) -> Option<Arc<dyn FileDescription>> {
        self.lock().open.insert(fd.0, Entry { file, cloexec }).map(|e| e.file)
    }

    /// Installs `file` at the lowest free descriptor >= `min`, below `limit`
    /// (RLIMIT_NOFILE): EMFILE when there is none.
    pub fn install_lowest(&self, file: Arc<dyn FileDescription>, min: i32, limit: u64, cloexec: bool) -> SysResult<Fd> {
        let mut t = self.lock();
        let from_next = min <= t.next_fd;
        let mut fd = min.max(t.next_fd);
        for (&k, _) in t.open.range(fd..) {
            if k != fd {
                break;
            }
            fd += 1;
        }
        if fd as u64 >= limit {
            return Err(errno!(EMFILE));
        }
        t.open.insert(fd, Entry { file, cloexec });
        if from_next {
            t.next_fd = fd + 1;
        }
        Ok(Fd(fd))
    }

    /// The highest open descriptor (select sizes its fd sets by the table).
    pub fn highest(&self) -> Option<Fd> {
        self.lock().keys().next_back().map(|&k| Fd(k))
    }

    pub fn cloexec(&self, fd: Fd) -> SysResult<bool> {
        self.lock().get(&fd.0).map(|e| e.cloexec).ok_or_else(|| errno!(EBADF))
    }

    pub fn set_cloexec(&self, fd: Fd, on: bool) -> SysResult<()> {
        self.lock().open.get_mut(&fd.0).map(|e| e.cloexec = on).ok_or_else(|| errno!(EBADF))
    }

    /// Removes `fd`; returns its file, to be released outside the table's lock.
    pub fn close(&self, fd: Fd) -> SysResult<Arc<dyn FileDescription>> {
        self.lock().remove(fd.0).map(|e| e.file).ok_or_else(|| errno!(EBADF))
    }

    /// A copy for a child made without CLONE_FILES: same open file descriptions.
    pub fn fork(&self) -> FdTable {
        FdTable { entries: Mutex::new(self.lock().clone()) }
    }

    /// Every open descriptor, in order, with its close-on-exec flag (for /proc).
    pub fn list(&self) -> Vec<(Fd, Arc<dyn FileDescription>, bool)> {
        self.lock().iter().map(|(&k, e)| (Fd(k), e.file.clone(), e.cloexec)).collect()
    }

    /// close_range: closes [first, last], or marks them close-on-exec; returns the
    /// files closed (so the caller can release their locks).
    pub fn close_range(&self, first: i32, last: i32, cloexec_only: bool) -> Vec<Arc<dyn FileDescription>> {
        let mut t = self.lock();
        if cloexec_only {
            for (_, e) in t.open.range_mut(first..=last) {
                e.cloexec = true;
            }
            return Vec::new();
        }
        let keys: Vec<i32> = t.range(first..=last).map(|(&k, _)| k).collect();
        keys.into_iter().filter_map(|k| t.remove(k)).map(|e| e.file).collect()
    }

    /// Closes every descriptor marked close-on-exec; returns the files closed.
    pub fn close_on_exec(&self) -> Vec<Arc<dyn FileDescription>> {
        let mut t = self.lock();
        let keys: Vec<i32> = t.iter().filter(|(_, e)| e.cloexec).map(|(&k, _)| k).collect();
        keys.into_iter().filter_map(|k| t.remove(k)).map(|e| e.file).collect()
    }
}
