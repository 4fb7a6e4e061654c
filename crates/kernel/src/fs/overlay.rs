//! The sandbox's root: an overlay of the served host root (read-only, lower) under a
//! tmpfs (upper). Reads fall through to the lower layer; the first change to a file
//! copies it up; deletions of lower names are remembered as whiteouts. The host is
//! never written.

use super::tmpfs::TmpInode;
use crate::vfs::inode::{DirEntry, Inode, OpenFlags, SetAttr, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use crate::vfs::{Dentry, DirFile, FileDescription};
use rvisor_abi::structs::Stat;
use rvisor_abi::{errno, error, SysResult};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};

pub struct OverlayInode {
    me: Weak<OverlayInode>,
    /// Parent and name, for copying this file up into the parent's upper directory.
    parent: Option<Arc<OverlayInode>>,
    name: Vec<u8>,
    kind: u32,
    /// Lock order: a parent's before a child's.
    layers: Mutex<Layers>,
}

struct Layers {
    upper: Option<Arc<dyn Inode>>,
    /// For directories, the lower directory stays merged under the upper one.
    lower: Option<Arc<dyn Inode>>,
    /// Lower names deleted in the sandbox.
    whiteouts: HashSet<Vec<u8>>,
    /// Children looked up so far: one overlay inode per name, since whiteouts and
    /// copy-up state live in it.
    children: std::collections::HashMap<Vec<u8>, Arc<OverlayInode>>,
}

impl OverlayInode {
    pub fn root(upper: Arc<dyn Inode>, lower: Arc<dyn Inode>) -> Arc<dyn Inode> {
        OverlayInode::new(None, b"/".to_vec(), S_IFDIR, Some(upper), Some(lower))
    }

    fn new(parent: Option<Arc<OverlayInode>>, name: Vec<u8>, kind: u32, upper: Option<Arc<dyn Inode>>, lower: Option<Arc<dyn Inode>>) -> Arc<OverlayInode> {
        Arc::new_cyclic(|me| OverlayInode {
            me: me.clone(),
            parent,
            name,
            kind,
            layers: Mutex::new(Layers { upper, lower, whiteouts: HashSet::new(), children: Default::default() }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Layers> {
        self.layers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn me(&self) -> SysResult<Arc<OverlayInode>> {
        self.me.upgrade().ok_or_else(|| errno!(ENOENT))
    }

    /// The layer reads go to: the upper one once it exists.
    fn top(&self) -> SysResult<Arc<dyn Inode>> {
        let l = self.lock();
        l.upper.clone().or_else(|| l.lower.clone()).ok_or_else(|| errno!(ENOENT))
    }

    /// Makes sure this file exists in the upper layer, copying it (and its parent
    /// directories) up first. Returns the upper inode.
    fn copy_up(&self) -> SysResult<Arc<dyn Inode>> {
        if let Some(u) = self.lock().upper.clone() {
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
        let mut l = self.lock();
        if self.kind != S_IFDIR {
            l.lower = None;
        }
        l.upper = Some(upper.clone());
        Ok(upper)
    }

}

/// Copies a lower file's bytes into a fresh upper file.
fn copy_contents(lower: &Arc<dyn Inode>, upper: &TmpInode, size: u64) -> SysResult<()> {
    let dentry_less = lower_reader(lower)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < size {
        let n = dentry_less.read_at(at, &mut buf)?;
        if n == 0 {
            break;
        }
        upper.write_bytes(at, &buf[..n])?;
        at += n as u64;
    }
    Ok(())
}

/// Opens a lower file for reading without a name (copy-up happens below the VFS).
fn lower_reader(lower: &Arc<dyn Inode>) -> SysResult<Arc<dyn FileDescription>> {
    let placeholder = Dentry::new_root(lower.clone(), Weak::new());
    lower.open(&placeholder, OpenFlags(0))
}

impl Inode for OverlayInode {
    fn stat(&self) -> SysResult<Stat> {
        self.top()?.stat()
    }

    fn kind(&self) -> u32 {
        self.kind
    }

    fn lookup(&self, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        let (upper, lower, whited) = {
            let l = self.lock();
            if let Some(c) = l.children.get(name) {
                return Ok(c.clone());
            }
            (l.upper.clone(), l.lower.clone(), l.whiteouts.contains(name))
        };
        let up = upper.and_then(|u| u.lookup(name).ok());
        let low = if whited { None } else { lower.and_then(|l| l.lookup(name).ok()) };
        let (kind, up, low) = match (up, low) {
            (Some(u), Some(l)) if u.kind() == S_IFDIR && l.kind() == S_IFDIR => (S_IFDIR, Some(u), Some(l)),
            (Some(u), _) => (u.kind(), Some(u), None),
            (None, Some(l)) => (l.kind(), None, Some(l)),
            (None, None) => return error!(ENOENT),
        };
        let child = OverlayInode::new(Some(self.me()?), name.to_vec(), kind & S_IFMT, up, low);
        self.lock().children.insert(name.to_vec(), child.clone());
        Ok(child)
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
        let (upper, lower, whiteouts) = {
            let l = self.lock();
            (l.upper.clone(), l.lower.clone(), l.whiteouts.clone())
        };
        let mut out = match &upper {
            Some(u) => u.readdir()?,
            None => Vec::new(),
        };
        let seen: HashSet<Vec<u8>> = out.iter().map(|e| e.name.clone()).collect();
        if let Some(l) = lower {
            out.extend(l.readdir()?.into_iter().filter(|e| !seen.contains(&e.name) && !whiteouts.contains(&e.name)));
        }
        Ok(out)
    }

    fn create(&self, name: &[u8], mode: u32) -> SysResult<Arc<dyn Inode>> {
        let up = self.copy_up()?;
        let made = up.create(name, mode)?;
        let mut l = self.lock();
        l.whiteouts.remove(name);
        l.children.remove(name);
        Ok(made)
    }

    fn mkdir(&self, name: &[u8], mode: u32) -> SysResult<Arc<dyn Inode>> {
        let up = self.copy_up()?;
        let made = up.mkdir(name, mode)?;
        // A new directory over a deleted lower one must not show its old entries:
        // the whiteout stays, and the lookup sees only the upper directory.
        self.forget(name);
        Ok(made)
    }

    fn symlink(&self, name: &[u8], target: &[u8]) -> SysResult<Arc<dyn Inode>> {
        let up = self.copy_up()?;
        let made = up.symlink(name, target)?;
        let mut l = self.lock();
        l.whiteouts.remove(name);
        l.children.remove(name);
        Ok(made)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> SysResult<()> {
        let t = target.as_any().downcast_ref::<OverlayInode>().ok_or_else(|| errno!(EXDEV))?;
        let target_upper = t.copy_up()?;
        self.copy_up()?.link(name, &target_upper)?;
        let mut l = self.lock();
        l.whiteouts.remove(name);
        l.children.remove(name);
        Ok(())
    }

    fn unlink(&self, name: &[u8]) -> SysResult<()> {
        let child = self.lookup(name)?;
        let child = child.as_any().downcast_ref::<OverlayInode>().ok_or_else(|| errno!(EIO))?;
        if child.kind == S_IFDIR {
            return error!(EISDIR);
        }
        self.remove(name, child)
    }

    fn rmdir(&self, name: &[u8]) -> SysResult<()> {
        let child = self.lookup(name)?;
        let child = child.as_any().downcast_ref::<OverlayInode>().ok_or_else(|| errno!(EIO))?;
        if child.kind != S_IFDIR {
            return error!(ENOTDIR);
        }
        if !child.readdir()?.is_empty() {
            return error!(ENOTEMPTY);
        }
        self.remove(name, child)
    }

    fn rename(&self, name: &[u8], new_dir: &Arc<dyn Inode>, new_name: &[u8]) -> SysResult<()> {
        let dst = new_dir.as_any().downcast_ref::<OverlayInode>().ok_or_else(|| errno!(EXDEV))?;
        let child = self.lookup(name)?;
        let child = child.as_any().downcast_ref::<OverlayInode>().ok_or_else(|| errno!(EIO))?;
        if child.kind == S_IFDIR && child.lock().lower.is_some() {
            // Like overlayfs without redirect_dir: callers fall back to copying.
            return error!(EXDEV);
        }
        child.copy_up()?;
        let had_lower = self.lock().lower.as_ref().is_some_and(|l| l.lookup(name).is_ok());
        let dst_upper = dst.copy_up()?;
        if let Ok(existing) = dst.lookup(new_name) {
            if let Some(e) = existing.as_any().downcast_ref::<OverlayInode>() {
                if e.kind == S_IFDIR && !e.readdir()?.is_empty() {
                    return error!(ENOTEMPTY);
                }
                // A lower file under the new name must stay hidden.
                if e.lock().lower.is_some() {
                    dst.lock().whiteouts.insert(new_name.to_vec());
                }
            }
        }
        let up = self.copy_up()?;
        up.rename(name, &dst_upper, new_name)?;
        if had_lower {
            self.lock().whiteouts.insert(name.to_vec());
        }
        self.forget(name);
        dst.forget(new_name);
        Ok(())
    }

    fn setattr(&self, attr: &SetAttr) -> SysResult<()> {
        self.copy_up()?.setattr(attr)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl OverlayInode {
    /// Forgets the cached child `name` (it was removed, renamed or replaced).
    fn forget(&self, name: &[u8]) {
        self.lock().children.remove(name);
    }

    /// Removes `name` (the child `child`): from the upper layer if it is there, and
    /// hidden with a whiteout if the lower layer has it.
    fn remove(&self, name: &[u8], child: &OverlayInode) -> SysResult<()> {
        let (in_upper, in_lower) = {
            let l = child.lock();
            (l.upper.is_some(), l.lower.is_some() || self.lock().lower.as_ref().is_some_and(|lo| lo.lookup(name).is_ok()))
        };
        if in_upper {
            let up = self.copy_up()?;
            if child.kind == S_IFDIR {
                up.rmdir(name)?;
            } else {
                up.unlink(name)?;
            }
        }
        let mut l = self.lock();
        if in_lower {
            l.whiteouts.insert(name.to_vec());
        }
        l.children.remove(name);
        Ok(())
    }
}
