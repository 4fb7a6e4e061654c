//! The host's files, served by the gofer (read-only for the root's lower layer,
//! read-write for a bind mount that allows it): every inode is a gofer node;
//! opening a file gets its host descriptor over SCM_RIGHTS and the Sentry does the
//! I/O on it directly.

use crate::fs::pipe::Pipe;
use nix::fcntl::FallocateFlags;
use crate::net::unix::UnixSocket;
use crate::vfs::inode::{DirEntry, Inode, OpenFlags, SetAttr, XattrSet, S_IFDIR, S_IFIFO, S_IFMT, S_IFREG, S_IFSOCK};
use crate::mm::{page_span, CacheStat, FileChunks, FilePages, Mapper, NoPages, PageCache, PageRun};
use crate::vfs::{host_errno, Dentry, DirFile, FileDescription, HostFile};
use rvisor_abi::structs::{Stat, Timespec};
use rvisor_abi::{errno, error, Errno, ErrnoCode, SysResult, PAGE_SIZE};
use rvisor_gofer::{NodeId, NodeInfo, WalkEnd, ROOT};
use rvisor_gofer::Client;
use rvisor_memory::{FileRange, MemoryFile};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
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
    /// A read-write mount's: the sandbox changes the host files through it, so
    /// attributes are not taken on trust from listings and regular files' come
    /// from the host file itself. A read-only tree never changes from within.
    writable: bool,
    /// The gofer node, walked to on first use by an inode made from its parent's
    /// listing (which knew its attributes but held no node for it).
    node: OnceLock<Arc<Node>>,
    /// Where to walk from to get `node`.
    origin: Option<Origin>,
    /// The file type bits and the host file's (st_ino, st_dev), which never change.
    kind: u32,
    ident: (u64, u64),
    stat: Mutex<Stat>,
    /// `stat` may be out of date (the sandbox changed a directory's entries, or
    /// the inode came from a listing of a writable mount): the next stat asks
    /// the gofer.
    stale: AtomicBool,
    /// A directory's entries, fetched once: the served tree is read-only to the
    /// sandbox (changes go to the overlay's upper layer), like the cached dentries,
    /// or, on a writable mount, changed only through this inode, which drops them.
    /// Dropped when found stale: a file it described was replaced on the host.
    listing: Mutex<Option<Arc<Listing>>>,
    /// Names a walk found absent lately, and when: compilers and loaders look for
    /// the same absent names in the same directories again and again (gcc, for a
    /// hello world: `bits` in /usr/include 32 times). A name is known absent for
    /// `ABSENT_FOR` only, so that a file the host makes later shows up.
    absent: Mutex<HashMap<Vec<u8>, Instant>>,
    /// A file `create` just made here and its name, for the lookup that follows
    /// (open(O_CREAT) opens what a lookup finds): it holds the descriptor the
    /// creation opened.
    created: Mutex<Option<(Vec<u8>, Arc<GoferInode>)>>,
    /// A file `create` made: the read-write descriptor the creation opened, for
    /// its first open, which Linux does not refuse for the file's mode (0444).
    fresh_fd: Mutex<Option<OwnedFd>>,
    /// A symlink's target, read once (every path through the link reads it).
    target: OnceLock<Vec<u8>>,
    /// One read-only host descriptor for a regular file, shared by every read-only
    /// open (each keeps its own position), so opening costs no gofer round trip.
    read_fd: OnceLock<Arc<OwnedFd>>,
    /// The contents of a regular file of a read-only mount up to
    /// `PAGE_CACHE_KEEP` in the memory file, read in as mappings need them;
    /// private mappings share these frames copy-on-write.
    cache: OnceLock<Arc<PageCache>>,
    /// A file larger than `PAGE_CACHE_KEEP`: its page cache while mapped.
    large_cache: Mutex<Weak<PageCache>>,
    /// A writable mount's file: its pages while mapped (see `HostPages`).
    mapped: Mutex<Weak<HostPages>>,
    /// The mount's FIFOs' pipes and bound sockets, shared by all its inodes.
    ends: Arc<SandboxEnds>,
}

/// What is behind the FIFO and socket nodes of a mount: the host node is only
/// a name (the gofer never opens one, which would reach host processes), and
/// the pipe, or the socket bound there, lives in the Sentry, by the host file's
/// (st_ino, st_dev), while anything holds it.
#[derive(Default)]
struct SandboxEnds {
    fifos: Mutex<HashMap<(u64, u64), Weak<Pipe>>>,
    sockets: Mutex<HashMap<(u64, u64), Weak<UnixSocket>>>,
}

impl SandboxEnds {
    /// The FIFO's pipe: the one open ends (or an open waiting for a partner)
    /// hold, or a new one, as a FIFO no one has open holds no data.
    fn pipe(&self, ident: (u64, u64)) -> Arc<Pipe> {
        let mut fifos = self.fifos.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = fifos.get(&ident).and_then(Weak::upgrade) {
            return p;
        }
        fifos.retain(|_, p| p.strong_count() > 0);
        let p = Pipe::for_fifo();
        fifos.insert(ident, Arc::downgrade(&p));
        p
    }
}

/// The pages of a file of a writable mount while anything maps it: a copy of
/// the host file, read in by chunks as mappings need them ([`FileChunks`]),
/// which shared mappings store into. Stores are tracked as Linux's writenotify
/// does: shared mappings map the pages read-only until the first store, whose
/// fault marks them dirty (`page_mkwrite`); what is dirty goes back to the host
/// file before the Sentry reads or writes it directly, at msync and fsync, and
/// when the last mapping goes, and only that: pages only read are never written
/// (a sparse file stays sparse; what another writer changed there stays). Bytes
/// written to the host file directly are copied into the chunks read in; the
/// others read them when faulted. The pages end where the file does as the
/// sandbox changes its size (SIGBUS past it): the chunks have room for growth,
/// and a file growing past it gets more. A later mapping reads the file anew.
struct HostPages {
    /// The file's chunks by extents in file order, each from where the last one
    /// ends (`FileChunks::base`): the first made at the first mapping, the
    /// others as the file grew past their room. Leaf lock, held briefly.
    extents: Mutex<Vec<Arc<FileChunks>>>,
    /// Where the file's pages end for mappings (its size, page-rounded, within
    /// the extents' room): an access past it is SIGBUS.
    end: AtomicU64,
    mf: Arc<MemoryFile>,
    /// The file's read descriptor, to copy host bytes in from.
    read: Arc<OwnedFd>,
    node: Arc<Node>,
    /// Where stores go back to: opened by the first shared writable mapping.
    write: Mutex<Option<OwnedFd>>,
    /// What was stored to since it was last written back. Taken under the
    /// address space's lock (faults), after `write` (write-back).
    dirty: Mutex<Dirty>,
    /// The address spaces that map the file (told when it shrinks). Leaf lock.
    mappers: Mutex<Vec<Weak<Mapper>>>,
}

/// The pages stored to and not written back yet (a bit each), and the address
/// spaces that map some of them writable, whose stores no fault reports: while
/// any of those lives, pages written back stay dirty.
#[derive(Default)]
struct Dirty {
    pages: Vec<u64>,
    writers: Vec<Weak<Mapper>>,
}

impl Dirty {
    /// Marks pages `[lo, hi)` dirty.
    fn mark(&mut self, lo: u64, hi: u64) {
        let words = hi.div_ceil(64) as usize;
        if self.pages.len() < words {
            self.pages.resize(words, 0);
        }
        for p in lo..hi {
            self.pages[(p / 64) as usize] |= 1 << (p % 64);
        }
    }

    /// Marks pages `[lo, hi)` clean.
    fn clear(&mut self, lo: u64, hi: u64) {
        for p in lo..hi.min(self.pages.len() as u64 * 64) {
            self.pages[(p / 64) as usize] &= !(1 << (p % 64));
        }
    }

    /// How many of pages `[lo, hi)` are dirty.
    fn count(&self, lo: u64, hi: u64) -> u64 {
        let set = |(i, &w): (usize, &u64)| (0..64u64).filter(move |b| w & (1 << b) != 0).map(move |b| i as u64 * 64 + b);
        self.pages.iter().enumerate().flat_map(set).filter(|p| (lo..hi).contains(p)).count() as u64
    }

    /// The dirty pages, as byte ranges in file order.
    fn runs(&self) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for (i, &w) in self.pages.iter().enumerate().filter(|(_, w)| **w != 0) {
            for b in (0..64).filter(|b| w & (1 << b) != 0) {
                let at = (i as u64 * 64 + b) * PAGE_SIZE;
                match runs.last_mut() {
                    Some(last) if last.1 == at => last.1 += PAGE_SIZE,
                    _ => runs.push((at, at + PAGE_SIZE)),
                }
            }
        }
        runs
    }
}

impl HostPages {
    fn lock_dirty(&self) -> std::sync::MutexGuard<'_, Dirty> {
        self.dirty.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn extents(&self) -> Vec<Arc<FileChunks>> {
        self.extents.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Calls `f` on each extent's part of the file range `[off, off + len)`, as
    /// the extent, and the part's start and end relative to the extent's base.
    fn each_extent(&self, off: u64, len: u64, mut f: impl FnMut(&FileChunks, u64, u64) -> SysResult<()>) -> SysResult<()> {
        let end = off.saturating_add(len);
        for x in self.extents() {
            let (a, b) = (off.max(x.base), end.min(x.base + x.end()));
            if a < b {
                f(&x, a - x.base, b - x.base)?;
            }
        }
        Ok(())
    }

    /// The file is `size` bytes now: its pages end there. Past the extents'
    /// room, a new extent makes more (where there is no memory-file room for
    /// it, the pages end where the room does). Where they end earlier than they
    /// did, the address spaces mapping them let go of what lies past the end.
    fn set_size(&self, size: u64) {
        let old = self.end.load(Ordering::Acquire);
        self.set_end(size);
        if self.end.load(Ordering::Acquire) < old {
            let mappers: Vec<_> = self.mappers.lock().unwrap_or_else(|e| e.into_inner()).iter().filter_map(Weak::upgrade).collect();
            mappers.iter().for_each(|m| m.file_shrank(self as *const HostPages as *const ()));
        }
    }

    fn set_end(&self, size: u64) {
        let want = rvisor_abi::page_up(size).unwrap_or(u64::MAX);
        let mut extents = self.extents.lock().unwrap_or_else(|e| e.into_inner());
        let mut room = extents.last().map_or(0, |x| x.base + x.end());
        if want > room {
            match FileChunks::growable(&self.mf, room, want - room, self.read.clone()) {
                Ok(x) => {
                    room += x.end();
                    extents.push(Arc::new(x));
                }
                Err(_) => tracing::warn!("gofer: no room for a mapped file to grow to {size} bytes"),
            }
        }
        self.end.store(want.min(room), Ordering::Release);
    }

    /// Writes the dirty pages back, up to the host file's size (as Linux, stores
    /// past the end of the file are not kept). They are clean afterwards unless
    /// an address space may still store to them unnoticed.
    fn write_back(&self) -> SysResult<()> {
        let w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let Some(fd) = w.as_ref() else { return Ok(()) };
        let size = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(host_errno)?.st_size.max(0) as u64;
        let (runs, cleaned) = {
            let mut d = self.lock_dirty();
            d.writers.retain(|w| w.strong_count() > 0);
            let cleaned = d.writers.is_empty();
            let runs = d.runs();
            if cleaned {
                d.pages.clear();
            }
            (runs, cleaned)
        };
        for (i, &(a, b)) in runs.iter().enumerate() {
            let b = b.min(size);
            let written = self.each_extent(a, b.saturating_sub(a), |x, xa, xb| self.write_run(fd, x.frames.range.start + xa, x.base + xa, x.base + xb));
            if let Err(e) = written {
                if cleaned {
                    let mut d = self.lock_dirty();
                    runs[i..].iter().for_each(|&(a, b)| d.mark(a / PAGE_SIZE, b / PAGE_SIZE));
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Writes the file's bytes `[a, b)` from its pages (from `start` in the
    /// memory file on) to the host file.
    fn write_run(&self, fd: &OwnedFd, start: u64, a: u64, b: u64) -> SysResult<()> {
        let mut done = a;
        while done < b {
            let slices = self.mf.io_slices(&[FileRange { start: start + (done - a), len: b - done }]);
            match nix::sys::uio::pwritev(fd, &slices, done as i64) {
                Ok(0) => return error!(EIO),
                Ok(n) => done += n as u64,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(host_errno(e)),
            }
        }
        Ok(())
    }

    /// A hole was punched over the file's bytes `[off, off + len)`: its whole
    /// pages there leave the shared mappings and are clean, so that no write-back
    /// fills the hole again with their zeros.
    fn punched(&self, off: u64, len: u64) {
        let (lo, hi) = (rvisor_abi::page_up(off).unwrap_or(u64::MAX), (off.saturating_add(len) / PAGE_SIZE) * PAGE_SIZE);
        if lo >= hi {
            return;
        }
        let mappers: Vec<_> = self.mappers.lock().unwrap_or_else(|e| e.into_inner()).iter().filter_map(Weak::upgrade).collect();
        mappers.iter().for_each(|m| m.file_punched(self as *const HostPages as *const (), lo, hi));
        self.lock_dirty().clear(lo / PAGE_SIZE, hi / PAGE_SIZE);
    }

    /// Copies the host file's bytes `[off, off + len)` into the chunks read in,
    /// zeros past its end, and follows its size.
    fn refresh(&self, off: u64, len: u64) {
        let size = nix::sys::stat::fstat(self.read.as_raw_fd()).map_or(u64::MAX, |st| st.st_size.max(0) as u64);
        if size != u64::MAX {
            self.set_size(size);
        }
        let _ = self.each_extent(off, len, |x, xa, xb| {
            let start = x.frames.range.start;
            x.each_read_in(xa, xb - xa, |a, b| {
                let data_end = size.saturating_sub(x.base).clamp(a, b);
                if self.mf.fill_from(start + a, data_end - a, self.read.as_fd(), x.base + a).is_err() {
                    tracing::warn!("gofer: a mapped file's new bytes could not be read");
                }
                if data_end < b {
                    self.mf.zero(start + data_end, (b - data_end) as usize);
                }
                Ok(())
            })
        });
    }
}

impl FilePages for HostPages {
    fn end(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    /// The pages read in within the file's end, and those stored to through
    /// shared mappings and not written back yet.
    fn cache_stat(&self, first: u64, last: u64) -> CacheStat {
        let (off, len) = page_span(first, last);
        let len = len.min(self.end().saturating_sub(off));
        let mut cached = 0;
        let _ = self.each_extent(off, len, |x, a, b| {
            cached += x.bytes_read_in(a, b - a);
            Ok(())
        });
        let nr_dirty = self.lock_dirty().count(off / PAGE_SIZE, (off + len) / PAGE_SIZE);
        CacheStat { nr_cache: cached / PAGE_SIZE, nr_dirty, ..CacheStat::default() }
    }

    fn frames(&self, off: u64, len: u64) -> SysResult<Vec<PageRun>> {
        let mut runs = Vec::new();
        self.each_extent(off, len, |x, a, b| {
            let read_in = x.read_in(a, b - a)?;
            runs.push(PageRun { off: x.base + a, len: b - a, frames: x.frames.clone(), at: a, read_in });
            Ok(())
        })?;
        Ok(runs)
    }

    fn check_shared_write(&self) -> SysResult<()> {
        let mut w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_none() {
            *w = Some(self.node.client.open(self.node.id, OpenFlags::WRONLY as i32).map_err(gofer_errno)?);
        }
        Ok(())
    }

    fn sync(&self) -> SysResult<()> {
        self.write_back()
    }

    fn all_present(&self) -> bool {
        self.extents().iter().all(|x| x.complete())
    }

    fn fault_span(&self, off: u64, len: u64, at: u64) -> (u64, u64) {
        // Within the extent holding `at`.
        let mut span = (off, off + len);
        let _ = self.each_extent(off, len, |x, a, b| {
            if (x.base + a..x.base + b).contains(&at) {
                let (s, e) = x.fault_span(a, b - a, at - x.base);
                span = (x.base + s, x.base + e);
            }
            Ok(())
        });
        span
    }

    fn tracks_writes(&self) -> bool {
        true
    }

    fn add_mapper(&self, mapper: &Arc<Mapper>) {
        let mut mappers = self.mappers.lock().unwrap_or_else(|e| e.into_inner());
        if !mappers.iter().any(|m| std::ptr::eq(m.as_ptr(), Arc::as_ptr(mapper))) {
            mappers.retain(|m| m.strong_count() > 0);
            mappers.push(Arc::downgrade(mapper));
        }
    }

    fn page_mkwrite(&self, off: u64, len: u64, writer: Option<&Arc<Mapper>>) {
        let mut d = self.lock_dirty();
        if let Some(w) = writer {
            if !d.writers.iter().any(|x| std::ptr::eq(x.as_ptr(), Arc::as_ptr(w))) {
                d.writers.retain(|x| x.strong_count() > 0);
                d.writers.push(Arc::downgrade(w));
            }
        }
        d.mark(off / PAGE_SIZE, off.saturating_add(len).div_ceil(PAGE_SIZE));
    }

    fn drop_writer(&self, writer: &Arc<Mapper>) {
        self.lock_dirty().writers.retain(|x| x.strong_count() > 0 && !std::ptr::eq(x.as_ptr(), Arc::as_ptr(writer)));
    }
}

impl Drop for HostPages {
    fn drop(&mut self) {
        if let Err(e) = self.write_back() {
            tracing::warn!("gofer: a mapped file's stores were lost: {e:?}");
        }
    }
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

/// A read-only file up to this size keeps its page cache while its inode lives
/// (libraries mapped by one short process after another); a larger one's goes
/// with its last mapping, as its chunks read in could be gigabytes.
const PAGE_CACHE_KEEP: u64 = 256 << 20;

#[track_caller]
fn gofer_errno(e: ErrnoCode) -> Errno {
    Errno::new(e)
}

impl GoferInode {
    /// The root of the served tree; `writable` for a read-write mount.
    pub fn root(client: Arc<Client>, writable: bool) -> SysResult<Arc<dyn Inode>> {
        let stat = client.stat(ROOT).map_err(gofer_errno)?;
        let node = Arc::new(Node { client: client.clone(), id: ROOT });
        Ok(Arc::new(GoferInode::new(client, writable, Arc::default(), stat, Some(node), None)))
    }

    /// An inode with its own node, or (`origin`) one to walk to from its parent's.
    fn new(client: Arc<Client>, writable: bool, ends: Arc<SandboxEnds>, stat: Stat, node: Option<Arc<Node>>, origin: Option<Origin>) -> GoferInode {
        let node = node.map_or_else(OnceLock::new, OnceLock::from);
        GoferInode {
            client,
            writable,
            node,
            origin,
            kind: stat.st_mode & S_IFMT,
            ident: (stat.st_ino, stat.st_dev),
            stat: Mutex::new(stat),
            stale: AtomicBool::new(false),
            listing: Mutex::new(None),
            absent: Mutex::default(),
            created: Mutex::default(),
            fresh_fd: Mutex::default(),
            target: OnceLock::new(),
            read_fd: OnceLock::new(),
            cache: OnceLock::new(),
            large_cache: Mutex::default(),
            mapped: Mutex::default(),
            ends,
        }
    }

    /// A child inode for a node the gofer just made or walked to.
    fn child(&self, info: NodeInfo) -> GoferInode {
        let node = Arc::new(Node { client: self.client.clone(), id: info.id });
        GoferInode::new(self.client.clone(), self.writable, self.ends.clone(), info.stat, Some(node), None)
    }

    fn node(&self) -> SysResult<&Arc<Node>> {
        if let Some(n) = self.node.get() {
            return Ok(n);
        }
        let o = self.origin.as_ref().ok_or_else(|| errno!(ESTALE))?;
        let info = self.walk(&o.parent, &o.name)?;
        let node = Arc::new(Node { client: self.client.clone(), id: info.id });
        self.check_same(info.stat.st_ino, info.stat.st_dev)?;
        Ok(self.node.get_or_init(|| node))
    }

    /// ESTALE if the host file found by name is not the one this inode was made for
    /// (it was replaced since the listing, which is then stale too: the caller's retry
    /// walks to the new file).
    fn check_same(&self, ino: u64, dev: u64) -> SysResult<()> {
        if (ino, dev) != self.ident {
            if let Some(o) = &self.origin {
                o.listing.stale.store(true, Ordering::Relaxed);
            }
            return error!(ESTALE);
        }
        Ok(())
    }

    /// Walks one component from `dir`, taking the node it gives.
    fn walk(&self, dir: &Node, name: &[u8]) -> SysResult<NodeInfo> {
        let walked = self.client.walk(dir.id, &[name]).map_err(gofer_errno)?;
        if let WalkEnd::Error { errno, .. } = walked.end {
            return Err(Errno::new(errno));
        }
        walked.nodes.into_iter().next().ok_or_else(|| errno!(ENOENT))
    }

    /// The shared read-only descriptor of a regular file. One known from its
    /// directory's listing is opened by name, in one round trip instead of a walk
    /// and an open.
    fn read_fd(&self) -> SysResult<Arc<OwnedFd>> {
        if let Some(fd) = self.read_fd.get() {
            return Ok(fd.clone());
        }
        let fd = match (self.node.get(), &self.origin) {
            (None, Some(o)) => {
                let fd = self.client.open_file(o.parent.id, &o.name).map_err(gofer_errno)?;
                let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(host_errno)?;
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

    /// The sandbox changed the entry `name` of this directory: what was known of
    /// it and of the directory's own attributes is out of date.
    fn changed(&self, name: &[u8]) {
        *self.listing.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.absent.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        if created.as_ref().is_some_and(|(n, _)| n == name) {
            *created = None;
        }
        self.stale.store(true, Ordering::Relaxed);
    }

    /// The gofer inode of another inode of this mount (rename, link); EXDEV for
    /// any other.
    /// fallocate(2) of the host file, through a descriptor of its own (the
    /// host holds the space, or says ENOSPC); the size stays.
    fn host_fallocate(&self, mode: FallocateFlags, offset: u64, len: u64) -> SysResult<()> {
        if !self.writable || self.kind != S_IFREG {
            return error!(EOPNOTSUPP);
        }
        let (offset, len) = (i64::try_from(offset).map_err(|_| errno!(EFBIG))?, i64::try_from(len).map_err(|_| errno!(EFBIG))?);
        let fd = self.client.open(self.node()?.id, OpenFlags::WRONLY as i32).map_err(gofer_errno)?;
        nix::fcntl::fallocate(fd.as_raw_fd(), mode, offset, len).map_err(host_errno)?;
        // Its block count changed.
        self.stale.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn same_mount<'a>(&self, other: &'a Arc<dyn Inode>) -> SysResult<&'a GoferInode> {
        other.as_any().downcast_ref::<GoferInode>().filter(|g| Arc::ptr_eq(&g.client, &self.client)).ok_or_else(|| errno!(EXDEV))
    }

    /// The pages of a writable mount's file, while mapped.
    fn mapped(&self) -> Option<Arc<HostPages>> {
        if !self.writable {
            return None;
        }
        self.mapped.lock().unwrap_or_else(|e| e.into_inner()).upgrade()
    }

    /// rename, or with RENAME_EXCHANGE exchange, within this mount.
    fn rename_with(&self, name: &[u8], new_dir: &Arc<dyn Inode>, new_name: &[u8], flags: u32) -> SysResult<()> {
        let to = self.same_mount(new_dir)?;
        self.client.rename(self.node()?.id, name, to.node()?.id, new_name, flags).map_err(gofer_errno)?;
        self.changed(name);
        to.changed(new_name);
        Ok(())
    }
}

impl Inode for GoferInode {
    fn stat(&self) -> SysResult<Stat> {
        if self.writable && self.kind == S_IFREG {
            // Written through descriptors and names this inode does not see (other
            // opens, hard links): the host file's own attributes are the truth.
            if let Ok(fd) = self.read_fd() {
                return Ok(Stat::from_host(&nix::sys::stat::fstat(fd.as_raw_fd()).map_err(host_errno)?));
            }
            self.stale.store(true, Ordering::Relaxed);
        }
        if self.stale.swap(false, Ordering::AcqRel) {
            let fresh = self.node().and_then(|n| self.client.stat(n.id).map_err(gofer_errno));
            match fresh {
                Ok(st) => *self.stat.lock().unwrap_or_else(|e| e.into_inner()) = st,
                Err(e) => {
                    self.stale.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        Ok(*self.stat.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn kind(&self) -> u32 {
        self.kind
    }

    fn lookup(&self, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        {
            let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
            if created.as_ref().is_some_and(|(n, _)| n == name) {
                if let Some((_, inode)) = created.take() {
                    return Ok(inode);
                }
            }
        }
        let dir = self.node()?;
        if let Some(listing) = self.cached_listing() {
            let child = listing.get(name).ok_or_else(|| errno!(ENOENT))?;
            if let Some(stat) = child.stat {
                let node = child.node.clone();
                let origin = node.is_none().then(|| Origin { parent: dir.clone(), name: name.to_vec(), listing: listing.clone() });
                let inode = GoferInode::new(self.client.clone(), self.writable, self.ends.clone(), stat, node, origin);
                // The sandbox may have changed the file since the listing, through
                // another name or an inode since forgotten.
                inode.stale.store(self.writable, Ordering::Relaxed);
                return Ok(Arc::new(inode));
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
        Ok(Arc::new(self.child(info)))
    }

    fn readlink(&self) -> SysResult<Vec<u8>> {
        if let Some(t) = self.target.get() {
            return Ok(t.clone());
        }
        let target = self.client.readlink(self.node()?.id).map_err(gofer_errno)?;
        Ok(self.target.get_or_init(|| target).clone())
    }

    fn open(&self, dentry: &Arc<Dentry>, flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        if self.kind == S_IFDIR {
            return Ok(Arc::new(DirFile::new(dentry.clone(), flags.0)));
        }
        let changes = flags.writable() || flags.0 & OpenFlags::TRUNC != 0;
        if changes && !self.writable {
            return error!(EROFS);
        }
        if self.kind == S_IFREG {
            let fresh = self.fresh_fd.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(fd) = fresh {
                if flags.writable() {
                    return Ok(Arc::new(HostFile::opened_as(fd, dentry.clone(), flags.0)));
                }
                let _ = self.read_fd.set(Arc::new(fd));
            }
            if changes {
                const KEPT: u32 = OpenFlags::ACCMODE | OpenFlags::TRUNC | OpenFlags::APPEND | O_SYNC;
                let fd = self.client.open(self.node()?.id, (flags.0 & KEPT) as i32).map_err(gofer_errno)?;
                if flags.0 & OpenFlags::TRUNC != 0 {
                    self.host_written(&|| Some(0), u64::MAX);
                }
                return Ok(Arc::new(HostFile::opened_as(fd, dentry.clone(), flags.0)));
            }
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

    fn create(&self, name: &[u8], mode: u32) -> SysResult<Arc<dyn Inode>> {
        let dir = self.node()?;
        let (info, fd) = self.client.create(dir.id, name, OpenFlags::RDWR as i32, mode, None).map_err(gofer_errno)?;
        self.changed(name);
        let inode = Arc::new(self.child(info));
        *inode.fresh_fd.lock().unwrap_or_else(|e| e.into_inner()) = Some(fd);
        *self.created.lock().unwrap_or_else(|e| e.into_inner()) = Some((name.to_vec(), inode.clone()));
        Ok(inode)
    }

    fn mkdir(&self, name: &[u8], mode: u32) -> SysResult<Arc<dyn Inode>> {
        let info = self.client.mkdir(self.node()?.id, name, mode, None).map_err(gofer_errno)?;
        self.changed(name);
        Ok(Arc::new(self.child(info)))
    }

    fn symlink(&self, name: &[u8], target: &[u8]) -> SysResult<Arc<dyn Inode>> {
        let info = self.client.symlink(self.node()?.id, name, target, None).map_err(gofer_errno)?;
        self.changed(name);
        Ok(Arc::new(self.child(info)))
    }

    fn mkfifo(&self, name: &[u8], mode: u32) -> SysResult<Arc<dyn Inode>> {
        let info = self.client.mknod(self.node()?.id, name, S_IFIFO | (mode & 0o7777), None).map_err(gofer_errno)?;
        self.changed(name);
        // A new file: no pipe of a file gone before with the same inode number.
        self.ends.fifos.lock().unwrap_or_else(|e| e.into_inner()).remove(&(info.stat.st_ino, info.stat.st_dev));
        Ok(Arc::new(self.child(info)))
    }

    fn fifo(&self) -> Option<Arc<Pipe>> {
        (self.kind == S_IFIFO).then(|| self.ends.pipe(self.ident))
    }

    fn mksock(&self, name: &[u8], mode: u32, socket: Weak<UnixSocket>) -> SysResult<Arc<dyn Inode>> {
        let info = self.client.mknod(self.node()?.id, name, S_IFSOCK | (mode & 0o7777), None).map_err(gofer_errno)?;
        self.changed(name);
        let mut sockets = self.ends.sockets.lock().unwrap_or_else(|e| e.into_inner());
        sockets.retain(|_, s| s.strong_count() > 0);
        sockets.insert((info.stat.st_ino, info.stat.st_dev), socket);
        drop(sockets);
        Ok(Arc::new(self.child(info)))
    }

    fn bound_socket(&self) -> Option<Arc<UnixSocket>> {
        if self.kind != S_IFSOCK {
            return None;
        }
        self.ends.sockets.lock().unwrap_or_else(|e| e.into_inner()).get(&self.ident)?.upgrade()
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> SysResult<()> {
        let t = self.same_mount(target)?;
        let info = self.client.link(self.node()?.id, name, t.node()?.id).map_err(gofer_errno)?;
        // Not kept: a lookup of the new name makes its own.
        drop(Node { client: self.client.clone(), id: info.id });
        self.changed(name);
        // Its link count changed.
        t.stale.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn unlink(&self, name: &[u8]) -> SysResult<()> {
        self.client.unlink(self.node()?.id, name).map_err(gofer_errno)?;
        self.changed(name);
        Ok(())
    }

    fn rmdir(&self, name: &[u8]) -> SysResult<()> {
        self.client.rmdir(self.node()?.id, name).map_err(gofer_errno)?;
        self.changed(name);
        Ok(())
    }

    fn rename(&self, name: &[u8], new_dir: &Arc<dyn Inode>, new_name: &[u8]) -> SysResult<()> {
        self.rename_with(name, new_dir, new_name, 0)
    }

    fn exchange(&self, name: &[u8], new_dir: &Arc<dyn Inode>, new_name: &[u8]) -> SysResult<()> {
        self.rename_with(name, new_dir, new_name, RENAME_EXCHANGE)
    }

    fn setattr(&self, a: &SetAttr) -> SysResult<()> {
        let node = self.node()?;
        // Stores through mappings first, so that the cut or grown file keeps them;
        // then the bytes that changed (from the shorter size on) are taken in.
        let old_size = match a.size {
            Some(_) => {
                self.sync(false)?;
                Some(self.stat()?.st_size.max(0) as u64)
            }
            None => None,
        };
        let ts = |t: Option<(i64, i64)>| t.map(|(tv_sec, tv_nsec)| Timespec { tv_sec, tv_nsec });
        let attr = rvisor_gofer::SetAttr { mode: a.mode, uid: a.uid, gid: a.gid, size: a.size, atime: ts(a.atime), mtime: ts(a.mtime) };
        let st = self.client.setattr(node.id, &attr).map_err(gofer_errno)?;
        *self.stat.lock().unwrap_or_else(|e| e.into_inner()) = st;
        self.stale.store(false, Ordering::Relaxed);
        if let (Some(new), Some(old)) = (a.size, old_size) {
            self.host_written(&|| Some(new.min(old)), u64::MAX);
        }
        Ok(())
    }

    fn host_statfs(&self) -> Option<rvisor_gofer::StatFs> {
        self.client.statfs(self.node().ok()?.id).ok()
    }

    /// Extended attributes are the host file's, through the gofer: user ones
    /// (and security ones to read); the syscalls checked names and namespaces.
    fn getxattr(&self, name: &[u8]) -> SysResult<Vec<u8>> {
        self.client.getxattr(self.node()?.id, name).map_err(gofer_errno)
    }

    fn listxattr(&self) -> SysResult<Vec<Vec<u8>>> {
        self.client.listxattr(self.node()?.id).map_err(gofer_errno)
    }

    fn setxattr(&self, name: &[u8], value: &[u8], mode: XattrSet) -> SysResult<()> {
        if !self.writable {
            return error!(EROFS);
        }
        let flags = if mode.create { nix::libc::XATTR_CREATE as u32 } else { 0 } | if mode.replace { nix::libc::XATTR_REPLACE as u32 } else { 0 };
        self.client.setxattr(self.node()?.id, name, value, flags).map_err(gofer_errno)?;
        // The host changed the file's ctime.
        self.stale.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn removexattr(&self, name: &[u8]) -> SysResult<()> {
        if !self.writable {
            return error!(EROFS);
        }
        self.client.removexattr(self.node()?.id, name).map_err(gofer_errno)?;
        self.stale.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn sync(&self, durable: bool) -> SysResult<()> {
        if let Some(pages) = self.mapped() {
            pages.write_back()?;
        }
        // Any descriptor of the file commits it; one the gofer may not open for
        // reading (mode 0200) leaves the commit to the host.
        if let (true, true, Ok(fd)) = (durable, self.writable && self.kind == S_IFREG, self.read_fd()) {
            nix::unistd::fsync(fd.as_raw_fd()).map_err(host_errno)?;
        }
        Ok(())
    }

    fn allocate(&self, offset: u64, len: u64) -> SysResult<()> {
        self.host_fallocate(FallocateFlags::FALLOC_FL_KEEP_SIZE, offset, len)
    }

    fn punch_hole(&self, offset: u64, len: u64) -> SysResult<()> {
        // Stores through mappings go back first; then the copies mappings hold
        // of the range read the zeros, and its whole pages are clean and
        // unmapped, so that only a later store fills the hole again.
        self.sync(false)?;
        self.host_fallocate(FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE, offset, len)?;
        self.host_written(&|| Some(offset), len);
        if let Some(pages) = self.mapped() {
            pages.punched(offset, len);
        }
        Ok(())
    }

    fn host_written(&self, start: &dyn Fn() -> Option<u64>, len: u64) {
        if let Some(pages) = self.mapped() {
            if let Some(off) = start() {
                pages.refresh(off, len);
            }
        }
    }

    /// The pages mappings read in, while the page cache or `HostPages` that
    /// holds them lives.
    fn cache_stat(&self, first: u64, last: u64) -> CacheStat {
        let pages: Option<Arc<dyn FilePages>> = match self.mapped() {
            Some(p) => Some(p),
            None => self.cache.get().cloned().or_else(|| self.large_cache.lock().unwrap_or_else(|e| e.into_inner()).upgrade()).map(|c| c as Arc<dyn FilePages>),
        };
        pages.map_or_else(CacheStat::default, |p| p.cache_stat(first, last))
    }

    fn file_pages(&self, mf: &Arc<MemoryFile>) -> SysResult<Option<Arc<dyn FilePages>>> {
        if self.kind != S_IFREG {
            return Ok(None);
        }
        if self.writable {
            let mut mapped = self.mapped.lock().unwrap_or_else(|e| e.into_inner());
            let size = self.stat()?.st_size.max(0) as u64;
            if let Some(p) = mapped.upgrade() {
                // The host file may have changed size behind the sandbox's back.
                p.set_size(size);
                return Ok(Some(p as Arc<dyn FilePages>));
            }
            let read = self.read_fd()?;
            let first = FileChunks::growable(mf, 0, size, read.clone())?;
            let pages = Arc::new(HostPages { extents: Mutex::new(vec![Arc::new(first)]), end: AtomicU64::new(0), mf: mf.clone(), read, node: self.node()?.clone(), write: Mutex::default(), dirty: Mutex::default(), mappers: Mutex::default() });
            pages.set_size(size);
            *mapped = Arc::downgrade(&pages);
            return Ok(Some(pages as Arc<dyn FilePages>));
        }
        if let Some(c) = self.cache.get() {
            return Ok(Some(c.clone() as Arc<dyn FilePages>));
        }
        let size = self.stat()?.st_size.max(0) as u64;
        if size == 0 {
            return Ok(Some(Arc::new(NoPages)));
        }
        if size > PAGE_CACHE_KEEP {
            let mut large = self.large_cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = large.upgrade() {
                return Ok(Some(c as Arc<dyn FilePages>));
            }
            let cache = Arc::new(PageCache::new(mf, size, self.read_fd()?)?);
            *large = Arc::downgrade(&cache);
            return Ok(Some(cache as Arc<dyn FilePages>));
        }
        let cache = PageCache::new(mf, size, self.read_fd()?)?;
        Ok(Some(self.cache.get_or_init(|| Arc::new(cache)).clone() as Arc<dyn FilePages>))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// open(2)'s O_SYNC (which includes O_DSYNC's bit).
const O_SYNC: u32 = 0o4010000;
/// renameat2's RENAME_EXCHANGE.
const RENAME_EXCHANGE: u32 = 2;
