//! The sandbox's root: an overlay of the served host root (read-only, lower) under a
//! tmpfs (upper). Reads fall through to the lower layer; the first change to a file
//! copies it up; deleting a lower name leaves a whiteout in the upper layer. The
//! host is never written.
//!
//! All state lives in the upper tmpfs, so an overlay inode can be dropped (the
//! dentry cache is bounded) and rebuilt by a later lookup: a whiteout is an upper
//! symlink whose target holds a NUL (which no app can create), and a directory made
//! over a whited-out lower one carries an entry named with a NUL that makes it opaque.
//!
//! A file with an upper inode has one overlay inode while any is alive, whatever
//! name finds it (`Files`), so tables keyed by inode (locks, inotify watches)
//! follow it through renames and links, as Linux's overlayfs inode hash does.

use super::tmpfs::TmpInode;
use crate::vfs::inode::{inode_key, DirEntry, Inode, OpenFlags, SetAttr, XattrSet, DT_DIR, DT_LNK, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use crate::vfs::{Dentry, DirFile, FileDescription};
use rvisor_abi::structs::Stat;
use rvisor_abi::{errno, error, SysResult};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

const WHITEOUT: &[u8] = b"\0whiteout";
const OPAQUE: &[u8] = b"\0opaque";

/// Set in the inode numbers of upper files, so that they never equal a lower file's
/// (as overlayfs's xino does): every file of the overlay reports the overlay's one
/// device, and (device, inode) must still name one file, or `find` and `du` take two
/// files for hard links and a directory for a loop.
const UPPER_INO: u64 = 1 << 62;

/// The live overlay inodes of upper files, by upper inode. A leaf lock.
#[derive(Default)]
struct Files {
    by_upper: HashMap<usize, Weak<OverlayInode>>,
    /// Dead entries are swept when the map reaches this size.
    sweep_at: usize,
}

impl Files {
    fn insert(&mut self, upper: &Arc<dyn Inode>, o: &Arc<OverlayInode>) {
        if self.by_upper.len() >= self.sweep_at {
            self.by_upper.retain(|_, w| w.strong_count() > 0);
            self.sweep_at = (2 * self.by_upper.len()).max(1024);
        }
        self.by_upper.insert(inode_key(upper), Arc::downgrade(o));
    }
}

pub struct OverlayInode {
    me: Weak<OverlayInode>,
    files: Arc<Mutex<Files>>,
    /// Parent and name, for copying this file up into the parent's upper directory.
    parent: Option<Arc<OverlayInode>>,
    name: Vec<u8>,
    kind: u32,
    /// The overlay's device number (its root's upper layer's), which every file of it
    /// reports: a directory's device differing from its parent's means a mount point
    /// (`find -xdev`, `mountpoint`).
    dev: u64,
    layers: Mutex<Layers>,
}

struct Layers {
    upper: Option<Arc<dyn Inode>>,
    /// For directories, the lower directory stays merged under the upper one.
    lower: Option<Arc<dyn Inode>>,
}

fn is_whiteout(i: &Arc<dyn Inode>) -> bool {
    i.kind() == S_IFLNK && i.readlink().is_ok_and(|t| t == WHITEOUT)
}

/// The upper entry `name` of `dir`, unless it is a whiteout marker.
fn upper_entry(dir: &Arc<dyn Inode>, name: &[u8]) -> Option<Arc<dyn Inode>> {
    dir.lookup(name).ok().filter(|i| !is_whiteout(i))
}

impl OverlayInode {
    pub fn root(upper: Arc<dyn Inode>, lower: Arc<dyn Inode>) -> Arc<dyn Inode> {
        let dev = upper.stat().map_or(0, |st| st.st_dev);
        Arc::new_cyclic(|me| OverlayInode { me: me.clone(), files: Arc::default(), parent: None, name: b"/".to_vec(), kind: S_IFDIR, dev, layers: Mutex::new(Layers { upper: Some(upper), lower: Some(lower) }) })
    }

    /// The overlay inode for `name` here, the one already alive for its upper file if any.
    fn child(self: Arc<Self>, name: &[u8], kind: u32, upper: Option<Arc<dyn Inode>>, lower: Option<Arc<dyn Inode>>) -> Arc<OverlayInode> {
        let files_arc = self.files.clone();
        let mut files = files_arc.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = upper.as_ref().and_then(|u| files.by_upper.get(&inode_key(u))).and_then(Weak::upgrade) {
            return found;
        }
        let dev = self.dev;
        let o = Arc::new_cyclic(|me| OverlayInode { me: me.clone(), files: files_arc.clone(), parent: Some(self), name: name.to_vec(), kind, dev, layers: Mutex::new(Layers { upper: upper.clone(), lower }) });
        if let Some(u) = &upper {
            files.insert(u, &o);
        }
        o
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Layers> {
        self.layers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn me(&self) -> SysResult<Arc<OverlayInode>> {
        self.me.upgrade().ok_or_else(|| errno!(ENOENT))
    }

    /// The upper inode, looking again in the parent in case another inode for the
    /// same name copied it up meanwhile.
    fn upper(&self) -> Option<Arc<dyn Inode>> {
        if let Some(u) = self.lock().upper.clone() {
            return Some(u);
        }
        let found = self.parent.as_ref()?.upper().and_then(|pu| upper_entry(&pu, &self.name))?;
        self.lock().upper = Some(found.clone());
        Some(found)
    }

    /// The lower directory to merge, unless the upper one is opaque.
    fn merged_lower(&self) -> Option<Arc<dyn Inode>> {
        let lower = self.lock().lower.clone()?;
        match self.upper() {
            Some(u) if u.lookup(OPAQUE).is_ok() => None,
            _ => Some(lower),
        }
    }

    /// The layer reads go to: the upper one once it exists.
    fn top(&self) -> SysResult<Arc<dyn Inode>> {
        self.upper().or_else(|| self.lock().lower.clone()).ok_or_else(|| errno!(ENOENT))
    }

    /// Makes sure this file exists in the upper layer, copying it (and its parent
    /// directories) up first. Returns the upper inode.
    fn copy_up(&self) -> SysResult<Arc<dyn Inode>> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        let parent = self.parent.as_ref().ok_or_else(|| errno!(EROFS))?;
        let parent_upper = parent.copy_up()?;
        let lower = self.lock().lower.clone().ok_or_else(|| errno!(ENOENT))?;
        let st = lower.stat()?;
        let upper = match self.kind {
            S_IFDIR => parent_upper.mkdir(&self.name, st.st_mode & 0o7777)?,
            S_IFLNK => parent_upper.symlink(&self.name, &lower.readlink()?)?,
            S_IFREG => {
                let up = parent_upper.create(&self.name, st.st_mode & 0o7777)?;
                let tmp = up.as_any().downcast_ref::<TmpInode>().ok_or_else(|| errno!(EXDEV))?;
                copy_contents(&lower, tmp, st.st_size.max(0) as u64)?;
                up
            }
            _ => return error!(EPERM),
        };
        let _ = upper.setattr(&SetAttr {
            uid: Some(st.st_uid),
            gid: Some(st.st_gid),
            atime: Some((st.st_atime, st.st_atime_nsec)),
            mtime: Some((st.st_mtime, st.st_mtime_nsec)),
            ..SetAttr::default()
        });
        // The lower file's extended attributes come along, as overlayfs copies
        // them; those the gofer cannot read (a file it may not open) stay behind
        // rather than keep the file from being copied.
        for name in lower.listxattr().unwrap_or_default() {
            if let Ok(value) = lower.getxattr(&name) {
                upper.setxattr(&name, &value, XattrSet::default())?;
            }
        }
        self.lock().upper = Some(upper.clone());
        if let Ok(me) = self.me() {
            self.files.lock().unwrap_or_else(|e| e.into_inner()).insert(&upper, &me);
        }
        Ok(upper)
    }

    /// Whether the lower layer has `name` here (and shows it).
    fn lower_has(&self, name: &[u8]) -> bool {
        self.merged_lower().is_some_and(|l| l.lookup(name).is_ok())
    }

    /// Clears a whiteout for `name` before something new takes the name.
    fn clear_whiteout(&self, up: &Arc<dyn Inode>, name: &[u8]) -> SysResult<()> {
        if up.lookup(name).is_ok_and(|i| is_whiteout(&i)) {
            up.unlink(name)?;
        }
        Ok(())
    }

    /// Removes `name` (a child of kind `kind`): from the upper layer if it is there,
    /// and hidden by a whiteout if the lower layer has it.
    fn remove(&self, name: &[u8], kind: u32) -> SysResult<()> {
        let up = self.copy_up()?;
        if upper_entry(&up, name).is_some() {
            if kind == S_IFDIR {
                up.rmdir(name)?;
            } else {
                up.unlink(name)?;
            }
        }
        if self.lower_has(name) {
            up.symlink(name, WHITEOUT)?;
        }
        Ok(())
    }
}

/// Copies a lower file's bytes into a fresh upper file.
fn copy_contents(lower: &Arc<dyn Inode>, upper: &TmpInode, size: u64) -> SysResult<()> {
    let placeholder = Dentry::new_root(lower.clone(), Weak::new());
    let reader = lower.open(&placeholder, OpenFlags(0))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < size {
        let n = reader.read_at(at, &mut buf)?;
        if n == 0 {
            break;
        }
        upper.write_bytes(at, &buf[..n])?;
        at += n as u64;
    }
    Ok(())
}

fn overlay(i: &Arc<dyn Inode>) -> SysResult<&OverlayInode> {
    i.as_any().downcast_ref::<OverlayInode>().ok_or_else(|| errno!(EXDEV))
}

impl Inode for OverlayInode {
    fn stat(&self) -> SysResult<Stat> {
        let lower = self.lock().lower.clone();
        let mut st = match (self.upper(), lower) {
            // A merged directory keeps its lower inode number, which a copy-up (of
            // anything inside it) does not change.
            (Some(u), Some(l)) if self.kind == S_IFDIR => Stat { st_ino: l.stat()?.st_ino, ..u.stat()? },
            (Some(u), _) => {
                let st = u.stat()?;
                Stat { st_ino: st.st_ino | UPPER_INO, ..st }
            }
            (None, Some(l)) => l.stat()?,
            (None, None) => return error!(ENOENT),
        };
        st.st_dev = self.dev;
        Ok(st)
    }

    fn kind(&self) -> u32 {
        self.kind
    }

    fn lookup(&self, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        if name == OPAQUE {
            return error!(ENOENT);
        }
        let upper = self.upper();
        let up_raw = upper.as_ref().and_then(|u| u.lookup(name).ok());
        if up_raw.as_ref().is_some_and(is_whiteout) {
            return error!(ENOENT);
        }
        let low = self.merged_lower().and_then(|l| l.lookup(name).ok());
        let (kind, up, low) = match (up_raw, low) {
            (Some(u), Some(l)) if u.kind() == S_IFDIR && l.kind() == S_IFDIR => (S_IFDIR, Some(u), Some(l)),
            (Some(u), _) => (u.kind(), Some(u), None),
            (None, Some(l)) => (l.kind(), None, Some(l)),
            (None, None) => return error!(ENOENT),
        };
        Ok(self.me()?.child(name, kind & S_IFMT, up, low))
    }

    fn readlink(&self) -> SysResult<Vec<u8>> {
        self.top()?.readlink()
    }

    fn open(&self, dentry: &Arc<Dentry>, flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        if self.kind == S_IFDIR {
            return Ok(Arc::new(DirFile::new(dentry.clone(), flags.0)));
        }
        let target = if flags.writable() || flags.0 & OpenFlags::TRUNC != 0 { self.copy_up()? } else { self.top()? };
        target.open(dentry, flags)
    }

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        let lower = match self.merged_lower() {
            Some(l) => l.readdir()?,
            None => Vec::new(),
        };
        let mut out = Vec::new();
        let mut hidden: HashSet<Vec<u8>> = HashSet::new();
        if let Some(u) = self.upper() {
            // An entry's d_ino is what stat says: see `stat`.
            let lower_dirs: HashMap<&[u8], u64> = lower.iter().filter(|e| e.dtype == DT_DIR).map(|e| (e.name.as_slice(), e.ino)).collect();
            for mut e in u.readdir()? {
                hidden.insert(e.name.clone());
                if e.name == OPAQUE || (e.dtype == DT_LNK && u.lookup(&e.name).is_ok_and(|i| is_whiteout(&i))) {
                    continue;
                }
                e.ino = match lower_dirs.get(e.name.as_slice()) {
                    Some(&ino) if e.dtype == DT_DIR => ino,
                    _ => e.ino | UPPER_INO,
                };
                out.push(e);
            }
        }
        out.extend(lower.into_iter().filter(|e| !hidden.contains(&e.name)));
        Ok(out)
    }

    fn create(&self, name: &[u8], mode: u32) -> SysResult<Arc<dyn Inode>> {
        let up = self.copy_up()?;
        self.clear_whiteout(&up, name)?;
        up.create(name, mode)
    }

    fn mkfifo(&self, name: &[u8], mode: u32) -> SysResult<Arc<dyn Inode>> {
        let up = self.copy_up()?;
        self.clear_whiteout(&up, name)?;
        up.mkfifo(name, mode)
    }

    fn fifo(&self) -> Option<Arc<crate::fs::pipe::Pipe>> {
        self.upper()?.fifo()
    }

    fn mksock(&self, name: &[u8], mode: u32, socket: std::sync::Weak<crate::net::unix::UnixSocket>) -> SysResult<Arc<dyn Inode>> {
        let up = self.copy_up()?;
        self.clear_whiteout(&up, name)?;
        up.mksock(name, mode, socket)
    }

    fn bound_socket(&self) -> Option<Arc<crate::net::unix::UnixSocket>> {
        self.upper()?.bound_socket()
    }

    fn mkdir(&self, name: &[u8], mode: u32) -> SysResult<Arc<dyn Inode>> {
        let up = self.copy_up()?;
        let over_whiteout = up.lookup(name).is_ok_and(|i| is_whiteout(&i));
        self.clear_whiteout(&up, name)?;
        let made = up.mkdir(name, mode)?;
        if over_whiteout {
            // The deleted lower directory's entries must not show through.
            made.symlink(OPAQUE, WHITEOUT)?;
        }
        Ok(made)
    }

    fn symlink(&self, name: &[u8], target: &[u8]) -> SysResult<Arc<dyn Inode>> {
        let up = self.copy_up()?;
        self.clear_whiteout(&up, name)?;
        up.symlink(name, target)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> SysResult<()> {
        let target_upper = overlay(target)?.copy_up()?;
        let up = self.copy_up()?;
        self.clear_whiteout(&up, name)?;
        up.link(name, &target_upper)
    }

    fn unlink(&self, name: &[u8]) -> SysResult<()> {
        let child = self.lookup(name)?;
        if child.kind() == S_IFDIR {
            return error!(EISDIR);
        }
        self.remove(name, child.kind())
    }

    fn rmdir(&self, name: &[u8]) -> SysResult<()> {
        let child = self.lookup(name)?;
        if child.kind() != S_IFDIR {
            return error!(ENOTDIR);
        }
        if !child.readdir()?.is_empty() {
            return error!(ENOTEMPTY);
        }
        // Markers inside an upper directory keep it from being removed: clear them.
        if let Some(cu) = overlay(&child)?.upper() {
            for e in cu.readdir()? {
                cu.unlink(&e.name)?;
            }
        }
        self.remove(name, S_IFDIR)
    }

    fn rename(&self, name: &[u8], new_dir: &Arc<dyn Inode>, new_name: &[u8]) -> SysResult<()> {
        let dst = overlay(new_dir)?;
        let child = self.lookup(name)?;
        let c = overlay(&child)?;
        if c.kind == S_IFDIR && c.merged_lower().is_some() {
            // Like overlayfs without redirect_dir: callers fall back to copying.
            return error!(EXDEV);
        }
        if let Ok(existing) = dst.lookup(new_name) {
            if existing.kind() == S_IFDIR && !existing.readdir()?.is_empty() {
                return error!(ENOTEMPTY);
            }
        }
        c.copy_up()?;
        let had_lower = self.lower_has(name);
        let dst_upper = dst.copy_up()?;
        let up = self.copy_up()?;
        up.rename(name, &dst_upper, new_name)?;
        if had_lower {
            up.symlink(name, WHITEOUT)?;
        }
        Ok(())
    }

    fn punch_hole(&self, offset: u64, len: u64) -> SysResult<()> {
        self.copy_up()?.punch_hole(offset, len)
    }

    /// Both files are copied up, then swapped in the upper layer: with an
    /// upper entry at each name, no whiteout is needed.
    fn exchange(&self, name: &[u8], new_dir: &Arc<dyn Inode>, new_name: &[u8]) -> SysResult<()> {
        let dst = overlay(new_dir)?;
        for (dir, n) in [(self, name), (dst, new_name)] {
            let child = dir.lookup(n)?;
            let c = overlay(&child)?;
            if c.kind == S_IFDIR && c.merged_lower().is_some() {
                return error!(EXDEV);
            }
            c.copy_up()?;
        }
        let dst_upper = dst.copy_up()?;
        self.copy_up()?.exchange(name, &dst_upper, new_name)
    }

    fn setattr(&self, attr: &SetAttr) -> SysResult<()> {
        self.copy_up()?.setattr(attr)
    }

    /// The whole overlay's: its root's lower layer's (the host's; the upper
    /// layer is in memory).
    fn host_statfs(&self) -> Option<rvisor_gofer::StatFs> {
        match &self.parent {
            Some(p) => p.host_statfs(),
            None => self.lock().lower.clone()?.host_statfs(),
        }
    }

    fn getxattr(&self, name: &[u8]) -> SysResult<Vec<u8>> {
        // The overlay keeps every namespace on its copies: a lower file whose
        // host file system keeps none of this one (trusted) has none.
        self.top()?.getxattr(name).map_err(|e| if e.code == rvisor_abi::ErrnoCode::EOPNOTSUPP { errno!(ENODATA) } else { e })
    }

    fn listxattr(&self) -> SysResult<Vec<Vec<u8>>> {
        self.top()?.listxattr()
    }

    fn setxattr(&self, name: &[u8], value: &[u8], mode: XattrSet) -> SysResult<()> {
        self.copy_up()?.setxattr(name, value, mode)
    }

    fn removexattr(&self, name: &[u8]) -> SysResult<()> {
        // A lower file's attribute is removed from its copy, made only if the
        // attribute is there to remove.
        if self.upper().is_none() {
            self.getxattr(name)?;
        }
        self.copy_up()?.removexattr(name)
    }

    fn cache_stat(&self, first: u64, last: u64) -> crate::mm::CacheStat {
        match self.upper().or_else(|| self.lock().lower.clone()) {
            Some(i) => i.cache_stat(first, last),
            None => crate::mm::CacheStat::default(),
        }
    }

    fn file_pages(&self, mf: &Arc<rvisor_memory::MemoryFile>) -> SysResult<Option<Arc<dyn crate::mm::FilePages>>> {
        match self.upper() {
            Some(u) => u.file_pages(mf),
            None => match self.lock().lower.clone() {
                Some(l) => l.file_pages(mf),
                None => Ok(None),
            },
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
