//! Path walks: from a starting dentry through names, `..`, mount points and
//! symlinks, as Linux's namei does.

use super::dentry::{Dentry, Mount, MountFlags, MountNamespace};
use super::inode::S_IFLNK;
use super::perm::{may_search, FsCreds};
use rvisor_abi::{errno, error, SysResult};
use std::sync::{Arc, Mutex};

/// Linux's limit on symlinks followed in one walk.
const MAX_SYMLINKS: u32 = 40;
/// Longest name component (NAME_MAX).
pub const NAME_MAX: usize = 255;

/// A task's view of the file system: the mount namespace it is in, its root and
/// working directory in it (shared by CLONE_FS), and umask. Leaf lock.
pub struct FsContext {
    inner: Mutex<FsInner>,
}

#[derive(Clone)]
struct FsInner {
    mounts: Arc<MountNamespace>,
    root: Arc<Dentry>,
    cwd: Arc<Dentry>,
    umask: u32,
}

impl FsContext {
    /// A context at the root of `mounts`.
    pub fn new(mounts: Arc<MountNamespace>) -> FsContext {
        let root = mounts.root().root.clone();
        FsContext { inner: Mutex::new(FsInner { mounts, cwd: root.clone(), root, umask: 0o022 }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FsInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy for a child made without CLONE_FS.
    pub fn fork(&self) -> FsContext {
        FsContext { inner: Mutex::new(self.lock().clone()) }
    }

    /// A copy in a copy of the mount namespace (CLONE_NEWNS): its root and cwd
    /// are the same directories in the copied mounts.
    pub fn fork_with_new_mounts(&self, owner: Arc<crate::task::UserNamespace>) -> FsContext {
        let mut inner = self.lock().clone();
        let (mounts, pairs) = inner.mounts.copy(owner);
        let moved = |d: &Arc<Dentry>| {
            let copy = pairs.iter().find(|(m, _)| std::ptr::eq(d.mount.as_ptr(), Arc::as_ptr(m))).map(|(_, c)| c);
            copy.map_or_else(|| d.clone(), |c| d.in_mount(c))
        };
        inner.root = moved(&inner.root);
        inner.cwd = moved(&inner.cwd);
        inner.mounts = mounts;
        FsContext { inner: Mutex::new(inner) }
    }

    /// Whether its root is not its mount namespace's (chroot moved it).
    pub fn chrooted(&self) -> bool {
        let inner = self.lock();
        !Arc::ptr_eq(&inner.root, &inner.mounts.root().root)
    }

    pub fn mounts(&self) -> Arc<MountNamespace> {
        self.lock().mounts.clone()
    }

    pub fn root(&self) -> Arc<Dentry> {
        self.lock().root.clone()
    }

    pub fn cwd(&self) -> Arc<Dentry> {
        self.lock().cwd.clone()
    }

    pub fn set_cwd(&self, d: Arc<Dentry>) {
        self.lock().cwd = d;
    }

    pub fn set_root(&self, d: Arc<Dentry>) {
        self.lock().root = d;
    }

    /// After pivot_root in `mounts`: a root or cwd at `old` moves to `new`.
    pub fn pivoted(&self, mounts: &Arc<MountNamespace>, old: &Arc<Dentry>, new: &Arc<Dentry>) {
        let mut inner = self.lock();
        if !Arc::ptr_eq(&inner.mounts, mounts) {
            return;
        }
        if Arc::ptr_eq(&inner.root, old) {
            inner.root = new.clone();
        }
        if Arc::ptr_eq(&inner.cwd, old) {
            inner.cwd = new.clone();
        }
    }

    pub fn umask(&self) -> u32 {
        self.lock().umask
    }

    pub fn set_umask(&self, m: u32) -> u32 {
        std::mem::replace(&mut self.lock().umask, m & 0o777)
    }
}

/// How the last component of a path is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    Yes,
    No,
}

/// Crosses into whatever is mounted on `d` (repeatedly: mounts may stack).
pub fn cross_down(mut d: Arc<Dentry>) -> Arc<Dentry> {
    while let Some(m) = d.mounted() {
        d = m.root.clone();
    }
    d
}

/// The parent of `d`, going up through mount points, never above `root`.
fn parent_of(d: &Arc<Dentry>, root: &Arc<Dentry>) -> Arc<Dentry> {
    let mut at = d.clone();
    loop {
        if Arc::ptr_eq(&at, root) {
            return at;
        }
        if let Some(p) = &at.parent {
            return p.clone();
        }
        match at.mount.upgrade().and_then(|m| m.mountpoint()) {
            Some(mp) => at = mp,
            None => return at,
        }
    }
}

/// openat2's RESOLVE_* restrictions on a walk (RESOLVE_IN_ROOT is a walk whose
/// root is the starting directory).
#[derive(Clone, Default)]
pub struct Resolve {
    /// RESOLVE_BENEATH: never above this directory (EXDEV): no absolute paths or
    /// symlinks, no `..` out of it, no magic links.
    pub beneath: Option<Arc<Dentry>>,
    /// RESOLVE_NO_SYMLINKS: no symlink at all (ELOOP).
    pub no_symlinks: bool,
    /// RESOLVE_NO_MAGICLINKS: no /proc magic link (ELOOP).
    pub no_magiclinks: bool,
    /// RESOLVE_NO_XDEV: no mount crossing, either way (EXDEV).
    pub no_xdev: bool,
}

fn same_mount(a: &Dentry, b: &Dentry) -> bool {
    a.mount.ptr_eq(&b.mount)
}

/// Walks `path` from `start` (or from `root` if absolute) as `c`, who needs
/// search permission on every directory it looks a name up in.
pub fn walk(c: &FsCreds, root: &Arc<Dentry>, start: &Arc<Dentry>, path: &[u8], follow: Follow) -> SysResult<Arc<Dentry>> {
    walk_resolve(c, root, start, path, follow, &Resolve::default())
}

/// `walk` under openat2's restrictions.
pub fn walk_resolve(c: &FsCreds, root: &Arc<Dentry>, start: &Arc<Dentry>, path: &[u8], follow: Follow, r: &Resolve) -> SysResult<Arc<Dentry>> {
    let mut links = 0;
    walk_inner(c, root, start, path, follow, &mut links, r)
}

fn walk_inner(c: &FsCreds, root: &Arc<Dentry>, start: &Arc<Dentry>, path: &[u8], follow: Follow, links: &mut u32, r: &Resolve) -> SysResult<Arc<Dentry>> {
    if path.is_empty() {
        return error!(ENOENT);
    }
    if path[0] == b'/' && r.beneath.is_some() {
        return error!(EXDEV);
    }
    let mut at = if path[0] == b'/' { root.clone() } else { start.clone() };
    let comps: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
    let trailing_slash = path.ends_with(b"/");
    for (i, name) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        if !at.is_dir() {
            return error!(ENOTDIR);
        }
        may_search(c, &at)?;
        if name.len() > NAME_MAX {
            return error!(ENAMETOOLONG);
        }
        match *name {
            b"." => continue,
            b".." => {
                if r.beneath.as_ref().is_some_and(|b| Arc::ptr_eq(&at, b)) {
                    return error!(EXDEV);
                }
                let up = parent_of(&at, root);
                if r.no_xdev && !same_mount(&up, &at) {
                    return error!(EXDEV);
                }
                at = up;
                continue;
            }
            _ => {}
        }
        let found = at.child(name)?;
        let child = cross_down(found.clone());
        if r.no_xdev && !Arc::ptr_eq(&child, &found) {
            return error!(EXDEV);
        }
        if child.inode.kind() == S_IFLNK && (!last || follow == Follow::Yes || trailing_slash) {
            if r.no_symlinks {
                return error!(ELOOP);
            }
            *links += 1;
            if *links > MAX_SYMLINKS || Mount::of_has(&child, MountFlags::NOSYMFOLLOW) {
                return error!(ELOOP);
            }
            if let Some(to) = child.inode.jump_link() {
                if r.no_magiclinks {
                    return error!(ELOOP);
                }
                if r.beneath.is_some() {
                    return error!(EXDEV);
                }
                let to = to?;
                if r.no_xdev && !same_mount(&to, &at) {
                    return error!(EXDEV);
                }
                at = to;
                continue;
            }
            let target = child.inode.readlink()?;
            at = walk_inner(c, root, &at, &target, Follow::Yes, links, r)?;
            continue;
        }
        at = child;
    }
    if trailing_slash && !at.is_dir() {
        return error!(ENOTDIR);
    }
    Ok(at)
}

/// Splits `path` into the directory to walk and the last name, for calls that
/// create or remove a name (mkdir, unlink, rename...). The last name is looked
/// up in the directory, so `c` needs search permission there too.
pub fn walk_parent(c: &FsCreds, root: &Arc<Dentry>, start: &Arc<Dentry>, path: &[u8]) -> SysResult<(Arc<Dentry>, Vec<u8>)> {
    walk_parent_resolve(c, root, start, path, &Resolve::default())
}

/// `walk_parent` under openat2's restrictions.
pub fn walk_parent_resolve(c: &FsCreds, root: &Arc<Dentry>, start: &Arc<Dentry>, path: &[u8], r: &Resolve) -> SysResult<(Arc<Dentry>, Vec<u8>)> {
    let trimmed: &[u8] = {
        let mut p = path;
        while p.len() > 1 && p.ends_with(b"/") {
            p = &p[..p.len() - 1];
        }
        p
    };
    if trimmed.is_empty() {
        return error!(ENOENT);
    }
    if trimmed[0] == b'/' && r.beneath.is_some() {
        return error!(EXDEV);
    }
    let (dir, name) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(0) => (root.clone(), &trimmed[1..]),
        Some(i) => (walk_resolve(c, root, start, &trimmed[..i], Follow::Yes, r)?, &trimmed[i + 1..]),
        None => (start.clone(), trimmed),
    };
    if !dir.is_dir() {
        return error!(ENOTDIR);
    }
    may_search(c, &dir)?;
    if name.len() > NAME_MAX {
        return error!(ENAMETOOLONG);
    }
    if name.is_empty() {
        return Err(errno!(EEXIST));
    }
    Ok((dir, name.to_vec()))
}
