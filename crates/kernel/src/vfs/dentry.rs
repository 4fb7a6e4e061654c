//! Dentries: names in the tree, cached so repeated walks of the same path cost no
//! file-system round trip; and mounts, which graft a file system onto a dentry.

use super::inode::{Inode, S_IFDIR};
use rvisor_abi::{error, SysResult};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub struct Dentry {
    pub name: Vec<u8>,
    /// None at the root of a mount.
    pub parent: Option<Arc<Dentry>>,
    pub inode: Arc<dyn Inode>,
    /// The mount this dentry is in.
    pub mount: Weak<Mount>,
    /// Looked-up children, held weakly: what keeps a dentry alive is a user (an
    /// open file, a cwd, a mount, a child) or a place in the recently-used list.
    /// A leaf lock: held only to read or insert an entry.
    children: Mutex<HashMap<Vec<u8>, Weak<Dentry>>>,
    /// The mount grafted here, if this dentry is a mount point.
    mounted: Mutex<Option<Arc<Mount>>>,
    /// No longer its parent's child by this name (unlinked, renamed away): the
    /// recently-used list may let go of it early (`release_stale`).
    stale: AtomicBool,
}

impl Dentry {
    pub fn new_root(inode: Arc<dyn Inode>, mount: Weak<Mount>) -> Arc<Dentry> {
        Arc::new(Dentry { name: b"/".to_vec(), parent: None, inode, mount, children: Mutex::default(), mounted: Mutex::default(), stale: AtomicBool::new(false) })
    }

    /// A name for a file that is in no directory (a memfd): it has a path for
    /// /proc/self/fd, under `parent`, but no walk can reach it.
    pub fn unlinked(parent: &Arc<Dentry>, name: Vec<u8>, inode: Arc<dyn Inode>) -> Arc<Dentry> {
        Arc::new(Dentry { name, parent: Some(parent.clone()), inode, mount: parent.mount.clone(), children: Mutex::default(), mounted: Mutex::default(), stale: AtomicBool::new(false) })
    }

    pub fn is_dir(&self) -> bool {
        self.inode.kind() == S_IFDIR
    }

    /// The child called `name`, from the cache or the file system.
    pub fn child(self: &Arc<Self>, name: &[u8]) -> SysResult<Arc<Dentry>> {
        let cache = self.inode.cache_lookups();
        if cache {
            if let Some(d) = self.children.lock().unwrap_or_else(|e| e.into_inner()).get(name).and_then(Weak::upgrade) {
                recently_used(&d);
                return Ok(d);
            }
        }
        if !self.is_dir() {
            return error!(ENOTDIR);
        }
        let inode = self.inode.lookup(name)?;
        let d = Arc::new(Dentry {
            name: name.to_vec(),
            parent: Some(self.clone()),
            inode,
            mount: self.mount.clone(),
            children: Mutex::default(),
            mounted: Mutex::default(),
            stale: AtomicBool::new(false),
        });
        if cache {
            let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
            children.retain(|_, w| w.strong_count() > 0);
            children.insert(name.to_vec(), Arc::downgrade(&d));
            drop(children);
            recently_used(&d);
        }
        Ok(d)
    }

    /// Forgets a cached child (after unlink, rmdir or rename changed the directory).
    pub fn forget(&self, name: &[u8]) {
        let gone = self.children.lock().unwrap_or_else(|e| e.into_inner()).remove(name).and_then(|w| w.upgrade());
        if let Some(d) = gone {
            d.stale.store(true, Ordering::Relaxed);
        }
    }

    /// The mount grafted on this dentry, if any.
    pub fn mounted(&self) -> Option<Arc<Mount>> {
        self.mounted.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn graft(&self, m: Arc<Mount>) {
        *self.mounted.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
    }

    /// The path of this dentry from the root of its own mount.
    pub fn path_in_mount(&self) -> Vec<u8> {
        let mut parts = vec![self.name.as_slice()];
        let mut at = self;
        while let Some(p) = &at.parent {
            parts.push(p.name.as_slice());
            at = p;
        }
        // The last part is the mount root's ("/").
        parts.pop();
        if parts.is_empty() {
            return b"/".to_vec();
        }
        parts.iter().rev().flat_map(|p| [b"/".as_slice(), p].concat()).collect()
    }

    /// The absolute path of this dentry, crossing mounts upward.
    pub fn path(self: &Arc<Self>) -> Vec<u8> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut at = self.clone();
        loop {
            match &at.parent {
                Some(p) => {
                    parts.push(at.name.clone());
                    at = p.clone();
                }
                None => match at.mount.upgrade().and_then(|m| m.mountpoint.clone()) {
                    Some(mp) => at = mp,
                    None => break,
                },
            }
        }
        if parts.is_empty() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        out
    }
}

/// How many recently used dentries are kept alive with nobody using them. Each
/// one may hold a gofer node, and with it a host descriptor of the gofer's.
const DENTRY_CACHE: usize = 8192;

/// The recently used dentries, most recent last (with repeats: cheap to push,
/// bounded by count). One per Sentry process, like its one kernel.
static RECENT: Mutex<std::collections::VecDeque<Arc<Dentry>>> = Mutex::new(std::collections::VecDeque::new());

fn recently_used(d: &Arc<Dentry>) {
    let mut r = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    r.push_back(d.clone());
    let excess = r.len().saturating_sub(DENTRY_CACHE);
    let evicted: Vec<Arc<Dentry>> = r.drain(..excess).collect();
    drop(r);
    // Dropped outside the lock: the last reference may close a gofer node.
    drop(evicted);
}

/// Lets the recently-used list go of the dentries no longer in their directory,
/// and with them of files nothing else holds: a tmpfs that is full, or asked its
/// use, must not count files unlinked and closed.
pub fn release_stale() {
    let mut r = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    let (stale, kept): (Vec<Arc<Dentry>>, Vec<_>) = r.drain(..).partition(|d| d.stale.load(Ordering::Relaxed));
    *r = kept.into();
    drop(r);
    // Dropped outside the lock, as evicted dentries are.
    drop(stale);
}

/// A mounted file system.
pub struct Mount {
    /// Its mount ID (/proc/PID/mountinfo), unique in the sandbox.
    pub id: u64,
    pub root: Arc<Dentry>,
    /// Where it is mounted; None for the namespace's root mount.
    pub mountpoint: Option<Arc<Dentry>>,
    /// The file system's type, as /proc/mounts shows it.
    pub fstype: &'static str,
    pub source: String,
    /// The path of `root` in its file system: "/" but for a bind mount.
    pub root_path: Vec<u8>,
    /// Changed by a remount.
    read_only: AtomicBool,
}

impl Mount {
    /// Mounts `root_inode` on `mountpoint` (or as a namespace root).
    pub fn new(root_inode: Arc<dyn Inode>, mountpoint: Option<Arc<Dentry>>, fstype: &'static str, source: &str, read_only: bool) -> Arc<Mount> {
        Self::graft_new(root_inode, mountpoint, fstype, source, b"/".to_vec(), read_only)
    }

    /// Mounts what `source` names, in its file system, on `mountpoint` too (a bind
    /// mount). What is mounted beneath `source` does not come along.
    pub fn bind(source: &Arc<Dentry>, mountpoint: Arc<Dentry>) -> Arc<Mount> {
        let from = source.mount.upgrade();
        let (fstype, name, read_only) = from.as_ref().map_or(("none", String::new(), false), |m| (m.fstype, m.source.clone(), m.is_read_only()));
        Self::graft_new(source.inode.clone(), Some(mountpoint), fstype, &name, source.path_in_mount(), read_only)
    }

    fn graft_new(root_inode: Arc<dyn Inode>, mountpoint: Option<Arc<Dentry>>, fstype: &'static str, source: &str, root_path: Vec<u8>, read_only: bool) -> Arc<Mount> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let m = Arc::new_cyclic(|weak: &Weak<Mount>| Mount {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            root: Dentry::new_root(root_inode, weak.clone()),
            mountpoint: mountpoint.clone(),
            fstype,
            source: source.to_string(),
            root_path,
            read_only: AtomicBool::new(read_only),
        });
        if let Some(mp) = mountpoint {
            mp.graft(m.clone());
        }
        m
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Relaxed)
    }

    pub fn set_read_only(&self, ro: bool) {
        self.read_only.store(ro, Ordering::Relaxed)
    }
}

/// The sandbox's mount tree. Lock: the list of mounts, a leaf.
pub struct MountNamespace {
    pub root: Arc<Mount>,
    mounts: Mutex<Vec<Arc<Mount>>>,
}

impl MountNamespace {
    pub fn new(root: Arc<Mount>) -> MountNamespace {
        MountNamespace { mounts: Mutex::new(vec![root.clone()]), root }
    }

    pub fn add(&self, m: Arc<Mount>) {
        self.mounts.lock().unwrap_or_else(|e| e.into_inner()).push(m);
    }

    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        self.mounts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The mounts whose mount point is in `m` (mounted on it or beneath it).
    pub fn children(&self, m: &Arc<Mount>) -> Vec<Arc<Mount>> {
        self.mounts().into_iter().filter(|c| c.mountpoint.as_ref().is_some_and(|mp| std::ptr::eq(mp.mount.as_ptr(), Arc::as_ptr(m)))).collect()
    }

    /// Takes `m` off its mount point, and with it every mount beneath it (a
    /// lazy unmount's detach). Files open in them stay usable.
    pub fn detach(&self, m: &Arc<Mount>) {
        for c in self.children(m) {
            self.detach(&c);
        }
        if let Some(mp) = &m.mountpoint {
            let mut mounted = mp.mounted.lock().unwrap_or_else(|e| e.into_inner());
            if mounted.as_ref().is_some_and(|x| Arc::ptr_eq(x, m)) {
                *mounted = None;
            }
        }
        self.mounts.lock().unwrap_or_else(|e| e.into_inner()).retain(|x| !Arc::ptr_eq(x, m));
    }

    /// Takes the tree apart once nothing runs in it any more (a pod container
    /// that ended): a mount and its mount point hold each other, and the
    /// recently-used list holds its dentries, so without this it would keep
    /// its file systems, and their gofer connections, for good.
    pub fn unmount_all(&self) {
        let mounts = std::mem::take(&mut *self.mounts.lock().unwrap_or_else(|e| e.into_inner()));
        for mp in mounts.iter().filter_map(|m| m.mountpoint.as_ref()) {
            *mp.mounted.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
        let (gone, kept): (Vec<Arc<Dentry>>, Vec<_>) = recent.drain(..).partition(|d| mounts.iter().any(|m| std::ptr::eq(d.mount.as_ptr(), Arc::as_ptr(m))));
        *recent = kept.into();
        drop(recent);
        // Dropped outside the lock, as evicted dentries are.
        drop(gone);
    }
}
