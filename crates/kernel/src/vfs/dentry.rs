//! Dentries: names in the tree, cached so repeated walks of the same path cost no
//! file-system round trip; and mounts, which graft a file system onto a dentry.

use super::inode::{inode_key, Inode, S_IFDIR};
use super::propagation::{self, CloneAs};
use crate::task::namespaces::new_ns_id;
use rvisor_abi::{error, SysResult};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
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
    /// recently-used list lets go of it (`forget`, `release_stale`).
    stale: AtomicBool,
    /// 1 + its place in the recently-used list (`Recent::seq`), 0 if none; only
    /// read or changed under that list's lock.
    recent: AtomicU64,
}

impl Dentry {
    pub fn new_root(inode: Arc<dyn Inode>, mount: Weak<Mount>) -> Arc<Dentry> {
        Arc::new(Dentry { name: b"/".to_vec(), parent: None, inode, mount, children: Mutex::default(), mounted: Mutex::default(), stale: AtomicBool::new(false), recent: AtomicU64::new(0) })
    }

    /// A name for a file that is in no directory (a memfd): it has a path for
    /// /proc/self/fd, under `parent`, but no walk can reach it.
    pub fn unlinked(parent: &Arc<Dentry>, name: Vec<u8>, inode: Arc<dyn Inode>) -> Arc<Dentry> {
        Arc::new(Dentry { name, parent: Some(parent.clone()), inode, mount: parent.mount.clone(), children: Mutex::default(), mounted: Mutex::default(), stale: AtomicBool::new(false), recent: AtomicU64::new(0) })
    }

    /// No longer its parent's child by its name (unlinked, or renamed away).
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    pub fn is_dir(&self) -> bool {
        self.inode.kind() == S_IFDIR
    }

    /// The child called `name`, from the cache or the file system. A mount
    /// point is always found again, even in a directory whose lookups are not
    /// cached (/proc/sys bound on itself, as bubblewrap does).
    pub fn child(self: &Arc<Self>, name: &[u8]) -> SysResult<Arc<Dentry>> {
        let cache = self.inode.cache_lookups();
        if let Some(d) = self.children.lock().unwrap_or_else(|e| e.into_inner()).get(name).and_then(Weak::upgrade) {
            if cache || d.mounted().is_some() {
                recently_used(&d);
                return Ok(d);
            }
        }
        if !self.is_dir() {
            return error!(ENOTDIR);
        }
        let inode = self.inode.lookup(name)?;
        Ok(self.new_child(name, inode, cache))
    }

    /// A new dentry for `inode` as the child `name`, entered in the cache if `cache`.
    fn new_child(self: &Arc<Self>, name: &[u8], inode: Arc<dyn Inode>, cache: bool) -> Arc<Dentry> {
        let d = Arc::new(Dentry {
            name: name.to_vec(),
            parent: Some(self.clone()),
            inode,
            mount: self.mount.clone(),
            children: Mutex::default(),
            mounted: Mutex::default(),
            stale: AtomicBool::new(false),
            recent: AtomicU64::new(0),
        });
        if cache {
            let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
            children.retain(|_, w| w.strong_count() > 0);
            children.insert(name.to_vec(), Arc::downgrade(&d));
            drop(children);
            recently_used(&d);
        }
        d
    }

    /// The dentry of the same file, by the same names, in `m`: a copy of this
    /// dentry's mount (a new mount namespace's) has a tree of its own. Made
    /// from the inodes along the way, without asking the file system, so a
    /// directory since removed (a cwd) has its place too, outside the cache.
    pub fn in_mount(self: &Arc<Self>, m: &Arc<Mount>) -> Arc<Dentry> {
        let Some(parent) = &self.parent else { return m.root.clone() };
        let parent = parent.in_mount(m);
        let cached = parent.children.lock().unwrap_or_else(|e| e.into_inner()).get(&self.name).and_then(Weak::upgrade);
        match cached {
            Some(d) if inode_key(&d.inode) == inode_key(&self.inode) => d,
            _ => {
                let cache = parent.inode.cache_lookups() && !self.stale.load(Ordering::Relaxed);
                parent.new_child(&self.name, self.inode.clone(), cache)
            }
        }
    }

    /// Whether `ancestor` is this dentry or above it, crossing mount points.
    pub fn is_beneath(self: &Arc<Self>, ancestor: &Arc<Dentry>) -> bool {
        let mut at = self.clone();
        loop {
            if Arc::ptr_eq(&at, ancestor) {
                return true;
            }
            at = match &at.parent {
                Some(p) => p.clone(),
                None => match at.mount.upgrade().and_then(|m| m.mountpoint()) {
                    Some(mp) => mp,
                    None => return false,
                },
            };
        }
    }

    /// Forgets a cached child (after unlink, rmdir or rename changed the directory).
    /// The recently-used list lets go of it too: no walk finds it again, and an
    /// unlinked file must go (its tmpfs pages with it) once nothing uses it.
    pub fn forget(&self, name: &[u8]) {
        let gone = self.children.lock().unwrap_or_else(|e| e.into_inner()).remove(name).and_then(|w| w.upgrade());
        if let Some(d) = gone {
            d.stale.store(true, Ordering::Relaxed);
            let held = RECENT.lock().unwrap_or_else(|e| e.into_inner()).remove(&d);
            // Dropped outside the lock, as evicted dentries are.
            drop(held);
        }
    }

    /// The mount grafted on this dentry, if any.
    pub fn mounted(&self) -> Option<Arc<Mount>> {
        self.mounted.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn graft(self: &Arc<Self>, m: Arc<Mount>) {
        *self.mounted.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
        if let Some(parent) = &self.parent {
            parent.children.lock().unwrap_or_else(|e| e.into_inner()).insert(self.name.clone(), Arc::downgrade(self));
        }
    }

    /// The path of this dentry in its file system: its mount's `root_path`
    /// joined with its path in the mount. Peers of a bind mount may have
    /// different roots; a place is the same in each by this path.
    pub fn path_in_fs(&self) -> Vec<u8> {
        let inside = self.path_in_mount();
        match self.mount.upgrade() {
            Some(m) if m.root_path != b"/" => if inside == b"/" { m.root_path.clone() } else { [m.root_path.as_slice(), &inside].concat() },
            _ => inside,
        }
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
        self.path_up_to(None).0
    }

    /// The path of this dentry for a process whose root is `root`; None if it is
    /// not beneath `root` (outside a chroot, or in a mount taken off the tree).
    pub fn path_from(self: &Arc<Self>, root: &Arc<Dentry>) -> Option<Vec<u8>> {
        let (path, reached) = self.path_up_to(Some(root));
        reached.then_some(path)
    }

    /// The path up to `stop` (or the top of the tree), crossing mounts upward,
    /// and whether `stop` was met.
    fn path_up_to(self: &Arc<Self>, stop: Option<&Arc<Dentry>>) -> (Vec<u8>, bool) {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut at = self.clone();
        let reached = loop {
            if stop.is_some_and(|s| Arc::ptr_eq(s, &at)) {
                break true;
            }
            match &at.parent {
                Some(p) => {
                    parts.push(at.name.clone());
                    at = p.clone();
                }
                None => match at.mount.upgrade().and_then(|m| m.mountpoint()) {
                    Some(mp) => at = mp,
                    None => break false,
                },
            }
        };
        if parts.is_empty() {
            return (b"/".to_vec(), reached);
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        (out, reached)
    }
}

/// How many recently used dentries are kept alive with nobody using them. Each
/// one may hold a gofer node, and with it a host descriptor of the gofer's.
const DENTRY_CACHE: usize = 8192;

/// The recently used dentries, most recent last, each in one slot at most (a
/// use moves it to the back). Bounded by slots, the emptied ones included.
struct Recent {
    slots: std::collections::VecDeque<Option<Arc<Dentry>>>,
    /// The place of `slots[0]`: places only grow, so a dentry's recorded one
    /// finds its slot while it is in the list.
    seq: u64,
}

impl Recent {
    /// The index of `d`'s slot, if it has one.
    fn index(&self, d: &Arc<Dentry>) -> Option<usize> {
        let at = d.recent.load(Ordering::Relaxed).checked_sub(1)?.checked_sub(self.seq)?;
        let i = usize::try_from(at).ok()?;
        self.slots.get(i)?.as_ref().filter(|e| Arc::ptr_eq(e, d)).map(|_| i)
    }

    /// Takes `d` out of the list; the caller drops it outside the lock.
    fn remove(&mut self, d: &Arc<Dentry>) -> Option<Arc<Dentry>> {
        let i = self.index(d)?;
        d.recent.store(0, Ordering::Relaxed);
        self.slots[i].take()
    }

    /// Moves `d` to the back; returns the dentries that fell off the front.
    fn touch(&mut self, d: &Arc<Dentry>) -> Vec<Arc<Dentry>> {
        if let Some(i) = self.index(d) {
            self.slots[i] = None;
        }
        self.slots.push_back(Some(d.clone()));
        d.recent.store(self.seq + self.slots.len() as u64, Ordering::Relaxed);
        let excess = self.slots.len().saturating_sub(DENTRY_CACHE);
        self.seq += excess as u64;
        self.slots.drain(..excess).flatten().collect()
    }

    /// Takes out the dentries `gone` picks.
    fn take_if(&mut self, gone: impl Fn(&Dentry) -> bool) -> Vec<Arc<Dentry>> {
        let mut out = Vec::new();
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|d| gone(d)) {
                out.extend(slot.take());
            }
        }
        for d in &out {
            d.recent.store(0, Ordering::Relaxed);
        }
        out
    }
}

/// One per Sentry process, like its one kernel.
static RECENT: Mutex<Recent> = Mutex::new(Recent { slots: std::collections::VecDeque::new(), seq: 0 });

fn recently_used(d: &Arc<Dentry>) {
    let evicted = RECENT.lock().unwrap_or_else(|e| e.into_inner()).touch(d);
    // Dropped outside the lock: the last reference may close a gofer node.
    drop(evicted);
}

/// Lets the recently-used list go of the dentries no longer in their directory,
/// and with them of files nothing else holds: a tmpfs that is full, or asked its
/// use, must not count files unlinked and closed.
pub fn release_stale() {
    let stale = RECENT.lock().unwrap_or_else(|e| e.into_inner()).take_if(|d| d.stale.load(Ordering::Relaxed));
    // Dropped outside the lock, as evicted dentries are.
    drop(stale);
}

/// A mount's own flags, with mount(2)'s bit values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountFlags(pub u32);

impl MountFlags {
    pub const RDONLY: u32 = 1;
    pub const NOSUID: u32 = 2;
    pub const NODEV: u32 = 4;
    pub const NOEXEC: u32 = 8;
    /// No symlink on it is followed (ELOOP); readlink still reads them.
    pub const NOSYMFOLLOW: u32 = 256;
    /// Atime modes, kept and shown (not acted on): noatime, or strictatime;
    /// neither is relatime, the default.
    pub const NOATIME: u32 = 1024;
    pub const NODIRATIME: u32 = 2048;
    pub const STRICTATIME: u32 = 1 << 24;
    pub const ATIME: u32 = Self::NOATIME | Self::NODIRATIME | Self::STRICTATIME;
    /// The flags a less privileged namespace's copy locks (Linux's MNT_LOCK_*).
    pub const LOCKABLE: u32 = Self::RDONLY | Self::NOSUID | Self::NODEV | Self::NOEXEC;
    /// nosuid, nodev, noexec: what proc, sysfs and cgroup2 are mounted with.
    pub const SPECIAL: MountFlags = MountFlags(Self::NOSUID | Self::NODEV | Self::NOEXEC);

    /// The per-mount flags among mount(2)'s `flags` (MS_STRICTATIME wins over
    /// MS_NOATIME, as in Linux's path_mount).
    pub fn from_bits(flags: u64) -> MountFlags {
        let f = flags as u32 & (Self::LOCKABLE | Self::NOSYMFOLLOW | Self::ATIME);
        MountFlags(if f & Self::STRICTATIME != 0 { f & !Self::NOATIME } else { f })
    }

    pub fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }

    /// These with RDONLY set or not.
    pub fn read_only(self, ro: bool) -> MountFlags {
        MountFlags(if ro { self.0 | Self::RDONLY } else { self.0 & !Self::RDONLY })
    }

    /// As /proc/mounts shows them.
    pub fn text(self) -> String {
        let mut s = String::from(if self.has(Self::RDONLY) { "ro" } else { "rw" });
        for (flag, name) in [(Self::NOSUID, ",nosuid"), (Self::NODEV, ",nodev"), (Self::NOEXEC, ",noexec")] {
            if self.has(flag) {
                s.push_str(name);
            }
        }
        for (flag, name) in [(Self::NOATIME, ",noatime"), (Self::NODIRATIME, ",nodiratime")] {
            if self.has(flag) {
                s.push_str(name);
            }
        }
        if !self.has(Self::NOATIME | Self::STRICTATIME) {
            s.push_str(",relatime");
        }
        if self.has(Self::NOSYMFOLLOW) {
            s.push_str(",nosymfollow");
        }
        s
    }
}

/// A mounted file system.
pub struct Mount {
    /// Its mount ID (/proc/PID/mountinfo), unique in the sandbox.
    pub id: u64,
    pub root: Arc<Dentry>,
    /// Where it is mounted; None for its namespace's root mount, or once it is
    /// off the tree. Changed by MS_MOVE and pivot_root. A leaf lock.
    mountpoint: Mutex<Option<Arc<Dentry>>>,
    /// The file system's type, as /proc/mounts shows it: a host directory's
    /// is its host file system's.
    pub fstype: Cow<'static, str>,
    pub source: String,
    /// The path of `root` in its file system: "/" but for a bind mount.
    pub root_path: Vec<u8>,
    /// `MountFlags`, changed by a remount.
    flags: AtomicU32,
    /// Its file system's superblock state, which every bind and copy of the
    /// mount shares.
    sb: Arc<SuperBlock>,
    /// The flags a remount may not clear, and whether it may not be unmounted
    /// or moved alone (what is beneath it stays hidden): a mount a user
    /// namespace's process got from a more privileged one (Linux's MNT_LOCK_*
    /// and MNT_LOCKED).
    locked_flags: AtomicU32,
    locked: AtomicBool,
    /// The namespace (or detached tree) whose tree holds it, set when it joins
    /// one: propagation finds there the peers and slaves it mounts in. A leaf lock.
    ns: Mutex<Weak<MountNamespace>>,
}

/// What a mounted file system holds apart from its mounts (Linux's super_block
/// flags): whether it is read-only (SB_RDONLY), set when it is mounted and by a
/// remount without MS_BIND, and in force through every mount of it.
pub struct SuperBlock {
    read_only: AtomicBool,
    /// The user namespace of its maker: only who holds CAP_SYS_ADMIN there
    /// reconfigures it (Linux's s_user_ns).
    owner: Arc<crate::task::UserNamespace>,
}

impl Mount {
    /// Mounts `root_inode` on `mountpoint` (or as a namespace root): a new
    /// superblock, read-only if the mount is, made by a task of user namespace `owner`.
    pub fn new(owner: Arc<crate::task::UserNamespace>, root_inode: Arc<dyn Inode>, mountpoint: Option<Arc<Dentry>>, fstype: impl Into<Cow<'static, str>>, source: &str, flags: MountFlags) -> Arc<Mount> {
        let sb = Arc::new(SuperBlock { read_only: AtomicBool::new(flags.has(MountFlags::RDONLY)), owner });
        Self::graft_new(root_inode, mountpoint, fstype.into(), source, b"/".to_vec(), flags, sb)
    }

    /// Mounts what `source` names, in its file system, on `mountpoint` too (a bind
    /// mount; nowhere: the root of a detached tree), with the flags of the mount
    /// it is in. What is mounted beneath `source` does not come along.
    pub fn bind(source: &Arc<Dentry>, mountpoint: Option<Arc<Dentry>>) -> Arc<Mount> {
        let from = source.mount.upgrade();
        let orphan = || Arc::new(SuperBlock { read_only: AtomicBool::new(false), owner: crate::task::UserNamespace::initial() });
        let (fstype, name, flags, sb) = from.as_ref().map_or_else(|| (Cow::Borrowed("none"), String::new(), MountFlags::default(), orphan()), |m| (m.fstype.clone(), m.source.clone(), m.flags(), m.sb.clone()));
        let m = Self::graft_new(source.inode.clone(), mountpoint, fstype, &name, source.path_in_fs(), flags, sb);
        // Its locked flags come along.
        if let Some(from) = from {
            m.locked_flags.store(from.locked_flags.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        m
    }

    /// The same file system mounted again, on `mountpoint` (a new namespace's
    /// copy), with its locks.
    fn copy(&self, mountpoint: Option<Arc<Dentry>>) -> Arc<Mount> {
        let m = Self::graft_new(self.root.inode.clone(), mountpoint, self.fstype.clone(), &self.source, self.root_path.clone(), self.flags(), self.sb.clone());
        m.locked_flags.store(self.locked_flags.load(Ordering::Relaxed), Ordering::Relaxed);
        m.locked.store(self.is_locked(), Ordering::Relaxed);
        m
    }

    /// Locks its flags and its place (Linux's lock_mnt_tree), for a user
    /// namespace less privileged than the one it came from.
    fn lock(&self) {
        self.locked_flags.fetch_or(self.flags().0 & MountFlags::LOCKABLE, Ordering::Relaxed);
        self.locked.store(true, Ordering::Relaxed);
    }

    /// Whether it may be unmounted or moved alone.
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }

    /// Whether a remount may give it `flags`: none of its locked ones cleared.
    pub fn may_set_flags(&self, flags: MountFlags) -> bool {
        self.locked_flags.load(Ordering::Relaxed) & !flags.0 == 0
    }

    fn graft_new(root_inode: Arc<dyn Inode>, mountpoint: Option<Arc<Dentry>>, fstype: Cow<'static, str>, source: &str, root_path: Vec<u8>, flags: MountFlags, sb: Arc<SuperBlock>) -> Arc<Mount> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let m = Arc::new_cyclic(|weak: &Weak<Mount>| Mount {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            root: Dentry::new_root(root_inode, weak.clone()),
            mountpoint: Mutex::default(),
            fstype,
            source: source.to_string(),
            root_path,
            flags: AtomicU32::new(flags.0),
            sb,
            locked_flags: AtomicU32::new(0),
            locked: AtomicBool::new(false),
            ns: Mutex::default(),
        });
        m.attach(mountpoint);
        m
    }

    /// Its 64-bit unique ID (statx's STATX_MNT_ID_UNIQUE, statmount, listmount).
    /// Linux 6.8 counts these from 2^32, apart from the old 32-bit IDs it
    /// reuses; ours are never reused, so the unique ID is the old one past 2^32.
    pub fn unique_id(&self) -> u64 {
        MNT_UNIQUE_ID_BASE + self.id
    }

    pub fn mountpoint(&self) -> Option<Arc<Dentry>> {
        self.mountpoint.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The namespace (or detached tree) it is in, if that is still alive.
    pub fn ns(&self) -> Option<Arc<MountNamespace>> {
        self.ns.lock().unwrap_or_else(|e| e.into_inner()).upgrade()
    }

    /// Enters it in `ns`'s tree, or in none (`Weak::new()`, once it is off).
    fn join(&self, ns: Weak<MountNamespace>) {
        *self.ns.lock().unwrap_or_else(|e| e.into_inner()) = ns;
    }

    /// The file system it shows, told apart by device number (Linux compares
    /// superblocks).
    pub fn same_fs(&self, other: &Mount) -> bool {
        let dev = |m: &Mount| m.root.inode.stat().map(|s| s.st_dev).ok();
        dev(self).is_some() && dev(self) == dev(other)
    }

    /// The mount its mount point is in.
    pub fn parent(&self) -> Option<Arc<Mount>> {
        self.mountpoint().and_then(|mp| mp.mount.upgrade())
    }

    /// Grafts this mount on `at` (nowhere: a namespace root).
    fn attach(self: &Arc<Self>, at: Option<Arc<Dentry>>) {
        if let Some(d) = &at {
            d.graft(self.clone());
        }
        *self.mountpoint.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    /// Takes this mount off its mount point (what is mounted beneath it stays
    /// with it): a mount and its mount point hold each other until then.
    fn take_off(self: &Arc<Self>) {
        let Some(mp) = self.mountpoint.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
        let mut mounted = mp.mounted.lock().unwrap_or_else(|e| e.into_inner());
        if mounted.as_ref().is_some_and(|x| Arc::ptr_eq(x, self)) {
            *mounted = None;
        }
    }

    pub fn flags(&self) -> MountFlags {
        MountFlags(self.flags.load(Ordering::Relaxed))
    }

    pub fn set_flags(&self, flags: MountFlags) {
        self.flags.store(flags.0, Ordering::Relaxed)
    }

    /// Whether nothing may be written through it: the mount or its superblock
    /// is read-only (Linux's mnt_is_readonly).
    pub fn is_read_only(&self) -> bool {
        self.flags().has(MountFlags::RDONLY) || self.sb_read_only()
    }

    /// Whether its superblock is read-only (SB_RDONLY: mountinfo's super
    /// options, statmount's sb_flags, statfs's ST_RDONLY).
    pub fn sb_read_only(&self) -> bool {
        self.sb.read_only.load(Ordering::Relaxed)
    }

    /// The user namespace its superblock belongs to.
    pub fn sb_owner(&self) -> &Arc<crate::task::UserNamespace> {
        &self.sb.owner
    }

    /// A remount without MS_BIND makes the superblock read-only or writable.
    pub fn set_sb_read_only(&self, ro: bool) {
        self.sb.read_only.store(ro, Ordering::Relaxed)
    }

    /// Whether `d` is on a mount with `flag` (noexec: no program runs from it).
    pub fn of_has(d: &Dentry, flag: u32) -> bool {
        d.mount.upgrade().is_some_and(|m| m.flags().has(flag))
    }
}

/// Where unique mount IDs start (Linux 6.8's mnt_id_ctr).
pub const MNT_UNIQUE_ID_BASE: u64 = 1 << 32;

/// The most mounts a namespace holds (Linux's default fs.mount-max).
pub const MOUNT_MAX: usize = 100_000;

/// A mount tree: a root mount and what is mounted beneath it. The processes in
/// one see the same mounts; unshare(CLONE_NEWNS) gives a process a copy of its
/// own. Lock: `tree`, taken after the propagation state (`propagation::lock`,
/// which a change that may propagate holds throughout) and before a mount's
/// mount point, namespace and a dentry's graft slot; changes to the shape of
/// the tree are made under it.
pub struct MountNamespace {
    /// Its inode number in /proc/PID/ns.
    pub id: u64,
    tree: Mutex<Tree>,
    /// The user namespace whose CAP_SYS_ADMIN may mount and unmount here.
    pub owner: Arc<crate::task::UserNamespace>,
}

struct Tree {
    root: Arc<Mount>,
    /// Every mount in the tree, the root first, in the order they were mounted.
    mounts: Vec<Arc<Mount>>,
}

impl MountNamespace {
    pub fn new(root: Arc<Mount>) -> Arc<MountNamespace> {
        let ns = Arc::new(MountNamespace { id: new_ns_id(), tree: Mutex::new(Tree { mounts: vec![root.clone()], root: root.clone() }), owner: crate::task::UserNamespace::initial() });
        root.join(Arc::downgrade(&ns));
        ns
    }

    /// The namespace of a detached tree (open_tree's clone, fsmount): `root`,
    /// mounted nowhere, and `beneath` belong to no process's namespace until
    /// `attach_tree` grafts them; dropping it unmounts them.
    pub fn detached(owner: Arc<crate::task::UserNamespace>, root: Arc<Mount>, beneath: Vec<Arc<Mount>>) -> Arc<MountNamespace> {
        let mounts: Vec<Arc<Mount>> = std::iter::once(root.clone()).chain(beneath).collect();
        let ns = Arc::new(MountNamespace { id: new_ns_id(), tree: Mutex::new(Tree { root, mounts }), owner });
        ns.tree().mounts.iter().for_each(|m| m.join(Arc::downgrade(&ns)));
        ns
    }

    /// move_mount of a detached tree (whose root the caller found in it): its
    /// mounts join this namespace, the root grafted on `at`. `tree` is left
    /// empty, so that dropping it unmounts nothing.
    pub fn attach_tree(self: &Arc<Self>, tree: &MountNamespace, at: Arc<Dentry>) {
        let (root, mounts) = {
            let mut t = tree.tree();
            (t.root.clone(), std::mem::take(&mut t.mounts))
        };
        let mut mine = self.tree();
        root.attach(Some(at));
        mounts.iter().for_each(|m| m.join(Arc::downgrade(self)));
        mine.mounts.extend(mounts);
    }

    fn tree(&self) -> std::sync::MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn root(&self) -> Arc<Mount> {
        self.tree().root.clone()
    }

    /// ENOSPC if `n` more mounts would take it past `MOUNT_MAX` (Linux's
    /// fs.mount-max, which keeps propagation from multiplying mounts without end).
    pub fn room(&self, n: usize) -> SysResult<()> {
        if self.tree().mounts.len().saturating_add(n) > MOUNT_MAX {
            return error!(ENOSPC);
        }
        Ok(())
    }

    pub fn add(self: &Arc<Self>, m: Arc<Mount>) {
        let mut tree = self.tree();
        m.join(Arc::downgrade(self));
        tree.mounts.push(m);
    }

    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        self.tree().mounts.clone()
    }

    /// Whether `m` is in this tree.
    pub fn contains(&self, m: &Arc<Mount>) -> bool {
        self.tree().mounts.iter().any(|x| Arc::ptr_eq(x, m))
    }

    /// The mounts whose mount point is in `m` (mounted on it or beneath it).
    pub fn children(&self, m: &Arc<Mount>) -> Vec<Arc<Mount>> {
        self.mounts().into_iter().filter(|c| c.parent().is_some_and(|p| Arc::ptr_eq(&p, m))).collect()
    }

    /// The mounts beneath `d` (recursively), each with the path of its mount
    /// point from `d`, parents before what is mounted in them.
    pub fn beneath(&self, d: &Arc<Dentry>) -> Vec<(Vec<u8>, Arc<Mount>)> {
        let Some(m) = d.mount.upgrade() else { return Vec::new() };
        let base = d.path_in_mount();
        let mut out = Vec::new();
        for child in self.children(&m) {
            let Some(rel) = child.mountpoint().and_then(|mp| relative(&base, &mp.path_in_mount())) else { continue };
            let deeper = self.beneath(&child.root);
            out.push((rel.clone(), child));
            for (sub, grandchild) in deeper {
                let path = match (rel.is_empty(), sub.is_empty()) {
                    (true, _) => sub,
                    (false, true) => rel.clone(),
                    (false, false) => [rel.as_slice(), b"/", &sub].concat(),
                };
                out.push((path, grandchild));
            }
        }
        out
    }

    /// `m` and the mounts beneath it, parents first (Linux's next_mnt order).
    pub fn subtree(&self, m: &Arc<Mount>) -> Vec<Arc<Mount>> {
        std::iter::once(m.clone()).chain(self.beneath(&m.root).into_iter().map(|(_, c)| c)).collect()
    }

    /// Takes `m` off its mount point, and with it every mount beneath it (a
    /// lazy unmount's detach). Files open in them stay usable.
    pub fn detach(&self, m: &Arc<Mount>) {
        for c in self.children(m) {
            self.detach(&c);
        }
        let mut tree = self.tree();
        m.take_off();
        m.join(Weak::new());
        tree.mounts.retain(|x| !Arc::ptr_eq(x, m));
    }

    /// Puts `under`, just grafted on the place where `over` was mounted, beneath
    /// `over`, which goes on top of `under`'s root: a mount propagated to a place
    /// something was already mounted on does not hide it (Linux's
    /// mnt_change_mountpoint in attach_recursive_mnt).
    pub fn tuck(&self, under: &Arc<Mount>, over: &Arc<Mount>) {
        let _tree = self.tree();
        over.take_off();
        over.attach(Some(super::path::cross_down(under.root.clone())));
    }

    /// Unmounts `m`, whose root `topper` alone covers, and puts `topper` in its
    /// place: the undoing of `tuck` when an unmount propagates.
    pub fn untuck(&self, m: &Arc<Mount>, topper: &Arc<Mount>) {
        let place = m.mountpoint();
        {
            let _tree = self.tree();
            topper.take_off();
        }
        self.detach(m);
        let _tree = self.tree();
        topper.attach(place);
    }

    /// MS_MOVE: grafts `m` (and what is mounted beneath it) on `to` instead.
    pub fn move_mount(&self, m: &Arc<Mount>, to: Arc<Dentry>) {
        let _tree = self.tree();
        m.take_off();
        m.attach(Some(to));
    }

    /// pivot_root: `new_root` takes the place of `old_root` (a process's root
    /// mount; the tree's root, or mounted somewhere), and `old_root` is mounted on
    /// `put_old`.
    pub fn pivot_root(&self, old_root: &Arc<Mount>, new_root: &Arc<Mount>, put_old: Arc<Dentry>) {
        let mut tree = self.tree();
        let place = old_root.mountpoint();
        new_root.take_off();
        old_root.take_off();
        old_root.attach(Some(put_old));
        new_root.attach(place);
        // The old root's lock goes to the new one, which now hides it: the old
        // root may then be unmounted (bubblewrap's umount of its old root).
        if old_root.locked.swap(false, Ordering::Relaxed) {
            new_root.locked.store(true, Ordering::Relaxed);
        }
        if Arc::ptr_eq(&tree.root, old_root) {
            tree.root = new_root.clone();
        }
    }

    /// A new namespace with a copy of each mount in this one, grafted at the
    /// same places in the copies, and the pairs (mount, its copy).
    pub fn copy(&self, owner: Arc<crate::task::UserNamespace>) -> (Arc<MountNamespace>, MountCopies) {
        // Held throughout, so that no mount propagates into this tree between
        // its reading and its copies joining the groups.
        let mut propagation = propagation::lock();
        let root = self.root();
        let copy_root = root.copy(None);
        let mut pairs = vec![(root, copy_root.clone())];
        // Parents before children: a copy's mount point is in its parent's copy.
        let mut i = 0;
        while let Some((m, copy)) = pairs.get(i).cloned() {
            for child in self.children(&m) {
                if let Some(mp) = child.mountpoint() {
                    let child_copy = child.copy(Some(mp.in_mount(&copy)));
                    pairs.push((child, child_copy));
                }
            }
            i += 1;
        }
        let mounts: Vec<Arc<Mount>> = self.mounts().iter().filter_map(|m| pairs.iter().find(|(x, _)| Arc::ptr_eq(x, m)).map(|(_, c)| c.clone())).collect();
        // A less privileged user namespace may not undo what its creator's
        // mounts hold, nor send mounts back to them: its copies of shared
        // mounts are their slaves (Linux's CL_SHARED_TO_SLAVE). Otherwise a
        // copy is a peer of a shared mount and a slave of a slave's master.
        let less_privileged = !Arc::ptr_eq(&owner, &self.owner);
        if less_privileged {
            mounts.iter().for_each(|m| m.lock());
        }
        let how = if less_privileged { CloneAs::SharedToSlave } else { CloneAs::Same };
        pairs.iter().for_each(|(m, copy)| propagation.clone_as(m, copy, how));
        let ns = Arc::new(MountNamespace { id: new_ns_id(), tree: Mutex::new(Tree { root: copy_root, mounts }), owner });
        ns.tree().mounts.iter().for_each(|m| m.join(Arc::downgrade(&ns)));
        drop(propagation);
        (ns, pairs)
    }

    /// Takes the tree apart once nothing runs in it any more (a pod container
    /// that ended, a namespace its last process left): a mount and its mount
    /// point hold each other, and the recently-used list holds its dentries, so
    /// without this it would keep its file systems, and their gofer
    /// connections, for good.
    pub fn unmount_all(&self) {
        let mounts = std::mem::take(&mut self.tree().mounts);
        for m in &mounts {
            m.take_off();
            m.join(Weak::new());
        }
        let gone = RECENT.lock().unwrap_or_else(|e| e.into_inner()).take_if(|d| mounts.iter().any(|m| std::ptr::eq(d.mount.as_ptr(), Arc::as_ptr(m))));
        // Dropped outside the lock, as evicted dentries are.
        drop(gone);
    }
}

/// Mounts and their copies in a new namespace.
pub type MountCopies = Vec<(Arc<Mount>, Arc<Mount>)>;

/// `path` relative to `base` (both absolute in one file system), if it is `base`
/// or beneath it: "" for `base` itself.
pub fn relative(base: &[u8], path: &[u8]) -> Option<Vec<u8>> {
    let rest = path.strip_prefix(base)?;
    match rest {
        [] => Some(Vec::new()),
        _ if base == b"/" => Some(rest.to_vec()),
        [b'/', tail @ ..] => Some(tail.to_vec()),
        _ => None,
    }
}

impl Drop for MountNamespace {
    fn drop(&mut self) {
        self.unmount_all();
    }
}

#[cfg(test)]
mod tests {
    use super::relative;

    #[test]
    fn relative_paths() {
        assert_eq!(relative(b"/", b"/a/b"), Some(b"a/b".to_vec()));
        assert_eq!(relative(b"/a", b"/a"), Some(Vec::new()));
        assert_eq!(relative(b"/a", b"/a/b"), Some(b"b".to_vec()));
        assert_eq!(relative(b"/a", b"/ab"), None);
        assert_eq!(relative(b"/a", b"/b"), None);
    }
}
