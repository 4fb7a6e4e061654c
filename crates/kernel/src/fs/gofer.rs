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
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A node the Sentry holds in the gofer's table, forgotten when its last holder
/// drops it.
struct Node {
    client: Arc<Client>,
    id: NodeId,
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.id != ROOT {
            self.client.forget(self.id);
        }
    }
}

pub struct GoferInode {
    client: Arc<Client>,
    /// The gofer node, walked to on first use by an inode made from its parent's
    /// listing (which knew its attributes but held no node for it).
    node: OnceLock<Arc<Node>>,
    /// Where to walk from to get `node`.
    origin: Option<Origin>,
    stat: Stat,
    /// A directory's entries, fetched once: the served tree is read-only to the
    /// sandbox (changes go to the overlay's upper layer), like the cached dentries.
    /// Dropped when found stale: a file it described was replaced on the host.
    listing: Mutex<Option<Arc<Listing>>>,
    /// Names a walk found absent lately, and when: compilers and loaders look for
    /// the same absent names in the same directories again and again (gcc, for a
    /// hello world: `bits` in /usr/include 32 times). A name is known absent for
    /// `ABSENT_FOR` only, so that a file the host makes later shows up.
    absent: Mutex<HashMap<Vec<u8>, Instant>>,
    /// A symlink's target, read once (every path through the link reads it).
    target: OnceLock<Vec<u8>>,
    /// One read-only host descriptor for a regular file, shared by every read-only
    /// open (each keeps its own position), so opening costs no gofer round trip.
    read_fd: OnceLock<Arc<std::os::fd::OwnedFd>>,
    /// The contents of a regular file, read once into the memory file when first
    /// mapped; private mappings share these frames copy-on-write.
    cache: OnceLock<Arc<PageCache>>,
}

/// A listed directory: its entries in the host's order, each with what the gofer
/// sent along for looking it up, so that a lookup in a listed directory costs no
/// round trip.
struct Listing {
    entries: Vec<Listed>,
    /// Indices into `entries`, sorted by name.
    by_name: Vec<u32>,
    /// An entry turned out to be replaced on the host: lookups walk again, and the
    /// next readdir lists again.
    stale: AtomicBool,
}

/// How an inode made from its parent's listing reaches its node: by name from the
/// parent's, checked against what the listing said.
struct Origin {
    parent: Arc<Node>,
    name: Vec<u8>,
    listing: Arc<Listing>,
}

struct Listed {
    entry: DirEntry,
    /// `None`: the gofer could not stat the entry; a lookup walks to it.
    stat: Option<Stat>,
    /// A directory's node, so that descending into it needs no walk.
    node: Option<Arc<Node>>,
}

impl Listing {
    fn get(&self, name: &[u8]) -> Option<&Listed> {
        let i = self.by_name.binary_search_by(|&i| self.entries[i as usize].entry.name.as_slice().cmp(name)).ok()?;
        Some(&self.entries[self.by_name[i] as usize])
    }
}

/// How long a directory remembers a name a walk found absent, and how many names.
const ABSENT_FOR: Duration = Duration::from_millis(250);
const ABSENT_MAX: usize = 64;

/// Files larger than this are copied into each mapping instead of cached.
const PAGE_CACHE_MAX: u64 = 256 << 20;

#[track_caller]
fn gofer_errno(e: ErrnoCode) -> Errno {
    Errno::new(e)
}

impl GoferInode {
    /// The root of the served tree.
    pub fn root(client: Arc<Client>) -> SysResult<Arc<dyn Inode>> {
        let stat = client.stat(ROOT).map_err(gofer_errno)?;
        let node = Arc::new(Node { client: client.clone(), id: ROOT });
        Ok(Arc::new(GoferInode::new(client, stat, Some(node), None)))
    }

    /// An inode with its own node, or (`origin`) one to walk to from its parent's.
    fn new(client: Arc<Client>, stat: Stat, node: Option<Arc<Node>>, origin: Option<Origin>) -> GoferInode {
        let node = node.map_or_else(OnceLock::new, OnceLock::from);
        GoferInode { client, node, origin, stat, listing: Mutex::new(None), absent: Mutex::default(), target: OnceLock::new(), read_fd: OnceLock::new(), cache: OnceLock::new() }
    }

    fn node(&self) -> SysResult<&Arc<Node>> {
        if let Some(n) = self.node.get() {
            return Ok(n);
        }
        let o = self.origin.as_ref().ok_or_else(|| rvisor_abi::errno!(ESTALE))?;
        let info = self.walk(&o.parent, &o.name)?;
        let node = Arc::new(Node { client: self.client.clone(), id: info.id });
        self.check_same(info.stat.st_ino, info.stat.st_dev)?;
        Ok(self.node.get_or_init(|| node))
    }

    /// ESTALE if the host file found by name is not the one this inode was made for
    /// (it was replaced since the listing, which is then stale too: the caller's retry
    /// walks to the new file).
    fn check_same(&self, ino: u64, dev: u64) -> SysResult<()> {
        if (ino, dev) != (self.stat.st_ino, self.stat.st_dev) {
            if let Some(o) = &self.origin {
                o.listing.stale.store(true, Ordering::Relaxed);
            }
            return error!(ESTALE);
        }
        Ok(())
    }

    /// Walks one component from `dir`, taking the node it gives.
    fn walk(&self, dir: &Node, name: &[u8]) -> SysResult<rvisor_gofer::NodeInfo> {
        let walked = self.client.walk(dir.id, &[name]).map_err(gofer_errno)?;
        if let WalkEnd::Error { errno, .. } = walked.end {
            return Err(Errno::new(errno));
        }
        walked.nodes.into_iter().next().ok_or_else(|| rvisor_abi::errno!(ENOENT))
    }

    /// The shared read-only descriptor of a regular file. One known from its
    /// directory's listing is opened by name, in one round trip instead of a walk
    /// and an open.
    fn read_fd(&self) -> SysResult<Arc<std::os::fd::OwnedFd>> {
        if let Some(fd) = self.read_fd.get() {
            return Ok(fd.clone());
        }
        let fd = match (self.node.get(), &self.origin) {
            (None, Some(o)) => {
                let fd = self.client.open_file(o.parent.id, &o.name).map_err(gofer_errno)?;
                let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(crate::vfs::host_errno)?;
                self.check_same(st.st_ino, st.st_dev)?;
                fd
            }
            _ => self.client.open(self.node()?.id, 0).map_err(gofer_errno)?,
        };
        Ok(self.read_fd.get_or_init(|| Arc::new(fd)).clone())
    }

    /// The listing, unless it was found stale.
    fn cached_listing(&self) -> Option<Arc<Listing>> {
        self.listing.lock().unwrap_or_else(|e| e.into_inner()).clone().filter(|l| !l.stale.load(Ordering::Relaxed))
    }

    fn listing(&self) -> SysResult<Arc<Listing>> {
        if let Some(l) = self.cached_listing() {
            return Ok(l);
        }
        let dir = self.node()?;
        let all = self.client.readdir_all(dir.id).map_err(gofer_errno)?;
        let entries: Vec<Listed> = all
            .into_iter()
            .map(|d| Listed {
                entry: DirEntry { name: d.name, ino: d.ino, dtype: d.kind },
                stat: d.stat,
                node: d.node.map(|id| Arc::new(Node { client: self.client.clone(), id })),
            })
            .collect();
        let mut by_name: Vec<u32> = (0..entries.len() as u32).collect();
        by_name.sort_unstable_by(|&a, &b| entries[a as usize].entry.name.cmp(&entries[b as usize].entry.name));
        let listing = Arc::new(Listing { entries, by_name, stale: AtomicBool::new(false) });
        *self.listing.lock().unwrap_or_else(|e| e.into_inner()) = Some(listing.clone());
        Ok(listing)
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
        let dir = self.node()?;
        if let Some(listing) = self.cached_listing() {
            let child = listing.get(name).ok_or_else(|| rvisor_abi::errno!(ENOENT))?;
            if let Some(stat) = child.stat {
                let node = child.node.clone();
                let origin = node.is_none().then(|| Origin { parent: dir.clone(), name: name.to_vec(), listing: listing.clone() });
                return Ok(Arc::new(GoferInode::new(self.client.clone(), stat, node, origin)));
            }
        }
        if self.absent.lock().unwrap_or_else(|e| e.into_inner()).get(name).is_some_and(|at| at.elapsed() < ABSENT_FOR) {
            return error!(ENOENT);
        }
        let info = match self.walk(dir, name) {
            Ok(info) => info,
            Err(e) => {
                if e.code == ErrnoCode::ENOENT {
                    let mut absent = self.absent.lock().unwrap_or_else(|e| e.into_inner());
                    if absent.len() >= ABSENT_MAX {
                        absent.clear();
                    }
                    absent.insert(name.to_vec(), Instant::now());
                }
                return Err(e);
            }
        };
        let node = Arc::new(Node { client: self.client.clone(), id: info.id });
        Ok(Arc::new(GoferInode::new(self.client.clone(), info.stat, Some(node), None)))
    }

    fn readlink(&self) -> SysResult<Vec<u8>> {
        if let Some(t) = self.target.get() {
            return Ok(t.clone());
        }
        let target = self.client.readlink(self.node()?.id).map_err(gofer_errno)?;
        Ok(self.target.get_or_init(|| target).clone())
    }

    fn open(&self, dentry: &Arc<Dentry>, flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        if self.kind() == S_IFDIR {
            return Ok(Arc::new(DirFile::new(dentry.clone(), flags.0)));
        }
        if flags.writable() || flags.0 & OpenFlags::TRUNC != 0 {
            return error!(EROFS);
        }
        if self.kind() == crate::vfs::inode::S_IFREG {
            let file = HostFile::shared(self.read_fd()?, dentry.clone());
            file.set_status_flags(flags.0);
            return Ok(Arc::new(file));
        }
        // The host descriptor's own flags stay plain: status flags live in HostFile.
        let fd = self.client.open(self.node()?.id, (flags.0 & OpenFlags::ACCMODE) as i32).map_err(gofer_errno)?;
        Ok(Arc::new(HostFile::opened(fd, dentry.clone())))
    }

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        Ok(self.listing()?.entries.iter().map(|l| l.entry.clone()).collect())
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
        let fd = self.read_fd()?;
        mf.fill_from(frames.range.start, size, fd.as_fd(), 0).map_err(crate::vfs::host_errno)?;
        Ok(Some(self.cache.get_or_init(|| Arc::new(PageCache(frames))).clone() as Arc<dyn FilePages>))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
