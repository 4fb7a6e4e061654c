//! The host's files, served read-only by the gofer: every inode is a gofer node;
//! opening a file gets its host descriptor over SCM_RIGHTS and the Sentry does the
//! I/O on it directly.

use crate::vfs::inode::{DirEntry, Inode, OpenFlags, S_IFDIR, S_IFMT};
use crate::mm::{FilePages, Frames, PageCache};
use crate::vfs::{Dentry, DirFile, FileDescription, HostFile};
use rvisor_abi::structs::Stat;
use rvisor_abi::{error, Errno, ErrnoCode, SysResult};
use rvisor_gofer::{NodeId, WalkEnd, ROOT};
use rvisor_gofer::Client;
use std::sync::Arc;

pub struct GoferInode {
    client: Arc<Client>,
    node: NodeId,
    stat: Stat,
    /// A directory's entries, fetched once: the served tree is read-only to the
    /// sandbox (changes go to the overlay's upper layer), like the cached dentries.
    listing: std::sync::OnceLock<Vec<DirEntry>>,
    /// One read-only host descriptor for a regular file, shared by every read-only
    /// open (each keeps its own position), so opening costs no gofer round trip.
    read_fd: std::sync::OnceLock<Arc<std::os::fd::OwnedFd>>,
    /// The contents of a regular file, read once into the memory file when first
    /// mapped; private mappings share these frames copy-on-write.
    cache: std::sync::OnceLock<Arc<PageCache>>,
}

/// Files larger than this are copied into each mapping instead of cached.
const PAGE_CACHE_MAX: u64 = 256 << 20;

#[track_caller]
fn gofer_errno(e: ErrnoCode) -> Errno {
    Errno::new(e)
}

impl GoferInode {
    /// The root of the served tree.
    pub fn root(client: Arc<Client>) -> SysResult<Arc<dyn Inode>> {
        let node = ROOT;
        let stat = client.stat(node).map_err(gofer_errno)?;
        Ok(Arc::new(GoferInode { client, node, stat, listing: std::sync::OnceLock::new(), read_fd: std::sync::OnceLock::new(), cache: std::sync::OnceLock::new() }))
    }
}

impl Drop for GoferInode {
    fn drop(&mut self) {
        if self.node != ROOT {
            self.client.forget(self.node);
        }
    }
}

impl Inode for GoferInode {
    fn stat(&self) -> SysResult<Stat> {
        Ok(self.stat)
    }

    fn kind(&self) -> u32 {
        self.stat.st_mode & S_IFMT
    }

    fn lookup(&self, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        let walked = self.client.walk(self.node, &[name]).map_err(gofer_errno)?;
        if let WalkEnd::Error { errno, .. } = walked.end {
            return Err(Errno::new(errno));
        }
        let info = walked.nodes.into_iter().next().ok_or_else(|| rvisor_abi::errno!(ENOENT))?;
        Ok(Arc::new(GoferInode { client: self.client.clone(), node: info.id, stat: info.stat, listing: std::sync::OnceLock::new(), read_fd: std::sync::OnceLock::new(), cache: std::sync::OnceLock::new() }))
    }

    fn readlink(&self) -> SysResult<Vec<u8>> {
        self.client.readlink(self.node).map_err(gofer_errno)
    }

    fn open(&self, dentry: &Arc<Dentry>, flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        if self.kind() == S_IFDIR {
            return Ok(Arc::new(DirFile::new(dentry.clone(), flags.0)));
        }
        if flags.writable() || flags.0 & OpenFlags::TRUNC != 0 {
            return error!(EROFS);
        }
        if self.kind() == crate::vfs::inode::S_IFREG {
            let fd = match self.read_fd.get() {
                Some(fd) => fd.clone(),
                None => {
                    let fd = Arc::new(self.client.open(self.node, 0).map_err(gofer_errno)?);
                    self.read_fd.get_or_init(|| fd).clone()
                }
            };
            let file = HostFile::shared(fd, dentry.clone());
            file.set_status_flags(flags.0);
            return Ok(Arc::new(file));
        }
        // The host descriptor's own flags stay plain: status flags live in HostFile.
        let fd = self.client.open(self.node, (flags.0 & OpenFlags::ACCMODE) as i32).map_err(gofer_errno)?;
        Ok(Arc::new(HostFile::opened(fd, dentry.clone())))
    }

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        if let Some(l) = self.listing.get() {
            return Ok(l.clone());
        }
        let all = self.client.readdir_all(self.node).map_err(gofer_errno)?;
        let entries: Vec<DirEntry> = all.into_iter().map(|d| DirEntry { name: d.name, ino: d.ino, dtype: d.kind }).collect();
        Ok(self.listing.get_or_init(|| entries).clone())
    }

    fn file_pages(&self, mf: &Arc<rvisor_memory::MemoryFile>) -> SysResult<Option<Arc<dyn FilePages>>> {
        let size = self.stat.st_size.max(0) as u64;
        if self.kind() != crate::vfs::inode::S_IFREG || size == 0 || size > PAGE_CACHE_MAX {
            return Ok(None);
        }
        if let Some(c) = self.cache.get() {
            return Ok(Some(c.clone() as Arc<dyn FilePages>));
        }
        let len = rvisor_abi::page_up(size).ok_or_else(|| rvisor_abi::errno!(EFBIG))?;
        let frames = Frames::allocate_as(mf, len, rvisor_memory::UsageKind::PageCache).ok_or_else(|| rvisor_abi::errno!(ENOMEM))?;
        let fd = self.client.open(self.node, 0).map_err(gofer_errno)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0u64;
        while at < size {
            let n = nix::sys::uio::pread(&fd, &mut buf, at as i64).map_err(crate::vfs::host_errno)?;
            if n == 0 {
                break;
            }
            mf.write(frames.range.start + at, &buf[..n]);
            at += n as u64;
        }
        Ok(Some(self.cache.get_or_init(|| Arc::new(PageCache(frames))).clone() as Arc<dyn FilePages>))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
