//! devpts, mounted at /dev/pts: `ptmx` makes a new pseudo-terminal pair and
//! opens its master; `N` opens the replica of pair N once unlocked. /dev/ptmx is
//! a link to pts/ptmx, as container runtimes set it up.

use super::simple::{makedev, now, Attrs};
use crate::tty::{PtyFile, Terminal};
use crate::vfs::inode::{DirEntry, Inode, OpenFlags, S_IFCHR, S_IFDIR, DT_CHR};
use crate::vfs::{Dentry, DirFile, FileDescription};
use rvisor_abi::structs::{Stat, Winsize};
use rvisor_abi::{errno, error, SysResult};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

/// Linux's major number of pty replicas (UNIX98_PTY_SLAVE_MAJOR), and ptmx's.
const PTS_MAJOR: u64 = 136;
const TTYAUX_MAJOR: u64 = 5;
/// Pairs one devpts holds at most (Linux's default kernel.pty.max is 4096).
const PTY_MAX: u32 = 4096;
/// The tty group owns replicas, as on most distributions.
const TTY_GID: u32 = 5;

/// One devpts instance: its live terminals by index.
pub struct Devpts {
    dev: u64,
    time: (i64, i64),
    /// Leaf lock. A terminal stays listed while any of its files is open.
    terminals: Mutex<BTreeMap<u32, Weak<Terminal>>>,
}

impl Devpts {
    pub fn new(dev: u64) -> Arc<Devpts> {
        Arc::new(Devpts { dev, time: now(), terminals: Mutex::new(BTreeMap::new()) })
    }

    pub fn root(self: &Arc<Self>) -> Arc<dyn Inode> {
        Arc::new(DevptsDir { fs: self.clone() })
    }

    fn attrs(&self, ino: u64, mode: u32, rdev: u64, gid: u32) -> Attrs {
        Attrs { dev: self.dev, ino, mode, uid: 0, gid, rdev, time: self.time }
    }

    /// A new pair at the lowest free index (ENOSPC past PTY_MAX), its master
    /// counted as open (the caller's master `PtyFile` or console bridge holds it),
    /// its replica owned by `owner`. An index is free again once its last master
    /// closes, as on Linux.
    pub fn new_terminal(&self, owner: u32, winsize: Winsize) -> SysResult<Arc<Terminal>> {
        let mut terms = self.terminals.lock().unwrap_or_else(|e| e.into_inner());
        terms.retain(|_, t| t.upgrade().is_some_and(|t| t.lock().masters > 0));
        let index = (0..PTY_MAX).find(|i| !terms.contains_key(i)).ok_or_else(|| errno!(ENOSPC))?;
        let term = Arc::new(Terminal::new(index, owner, winsize));
        term.opened(true);
        terms.insert(index, Arc::downgrade(&term));
        Ok(term)
    }

    /// The pairs whose master is open.
    fn live(&self) -> Vec<Arc<Terminal>> {
        let terms = self.terminals.lock().unwrap_or_else(|e| e.into_inner());
        terms.values().filter_map(Weak::upgrade).filter(|t| t.lock().masters > 0).collect()
    }

    fn replica_inode(self: &Arc<Self>, term: Arc<Terminal>) -> Arc<dyn Inode> {
        let attrs = Attrs { uid: term.owner, ..self.attrs(u64::from(term.index) + 3, S_IFCHR | 0o620, makedev(PTS_MAJOR, u64::from(term.index)), TTY_GID) };
        Arc::new(ReplicaInode { attrs, term })
    }
}

/// The /dev/pts directory.
struct DevptsDir {
    fs: Arc<Devpts>,
}

impl Inode for DevptsDir {
    fn stat(&self) -> SysResult<Stat> {
        Ok(self.fs.attrs(1, S_IFDIR | 0o755, 0, 0).stat(0))
    }

    fn kind(&self) -> u32 {
        S_IFDIR
    }

    /// Entries come and go with terminals.
    fn cache_lookups(&self) -> bool {
        false
    }

    fn lookup(&self, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        if name == b"ptmx" {
            return Ok(Arc::new(PtmxInode { fs: self.fs.clone() }));
        }
        let index: u32 = std::str::from_utf8(name).ok().filter(|s| !s.starts_with('+')).and_then(|s| s.parse().ok()).ok_or_else(|| errno!(ENOENT))?;
        let term = self.fs.live().into_iter().find(|t| t.index == index).ok_or_else(|| errno!(ENOENT))?;
        Ok(self.fs.replica_inode(term))
    }

    fn open(&self, dentry: &Arc<Dentry>, flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        if flags.writable() {
            return error!(EISDIR);
        }
        Ok(Arc::new(DirFile::new(dentry.clone(), flags.0)))
    }

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        let mut entries = vec![DirEntry { name: b"ptmx".to_vec(), ino: 2, dtype: DT_CHR }];
        for t in self.fs.live() {
            entries.push(DirEntry { name: t.index.to_string().into_bytes(), ino: u64::from(t.index) + 3, dtype: DT_CHR });
        }
        Ok(entries)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// /dev/pts/ptmx: each open is a new pair's master, its replica locked.
struct PtmxInode {
    fs: Arc<Devpts>,
}

impl Inode for PtmxInode {
    fn stat(&self) -> SysResult<Stat> {
        Ok(self.fs.attrs(2, S_IFCHR | 0o666, makedev(TTYAUX_MAJOR, 2), 0).stat(0))
    }

    fn kind(&self) -> u32 {
        S_IFCHR
    }

    fn open(&self, dentry: &Arc<Dentry>, flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        // Owned by the opener, who may then open the replica by name.
        let owner = super::proc::current().map_or(0, |t| t.tg.creds().euid);
        let term = self.fs.new_terminal(owner, Winsize::zeroed())?;
        Ok(Arc::new(PtyFile::master(term, dentry.clone(), super::simple::kept_flags(flags.0))))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// /dev/pts/N.
struct ReplicaInode {
    attrs: Attrs,
    term: Arc<Terminal>,
}

impl Inode for ReplicaInode {
    fn stat(&self) -> SysResult<Stat> {
        Ok(self.attrs.stat(0))
    }

    fn kind(&self) -> u32 {
        S_IFCHR
    }

    fn open(&self, dentry: &Arc<Dentry>, flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        if self.term.lock().locked {
            return error!(EIO);
        }
        Ok(Arc::new(PtyFile::replica(self.term.clone(), dentry.clone(), super::simple::kept_flags(flags.0))))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
