//! tmpfs: files in memory, their data in pages of the memory file (counted in its
//! usage as tmpfs).

use super::user_io::RangeCursor;
use crate::vfs::StatusFlags;
use crate::mm::UserBuffers;
use crate::task::Task;
use super::pipe::Pipe;
use crate::vfs::inode::{dtype_of, DirEntry, Inode, OpenFlags, SetAttr, XattrSet, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG};
use crate::vfs::{Dentry, DirFile, FileDescription};
use rvisor_abi::structs::Stat;
use rvisor_abi::{errno, error, SysResult, PAGE_SIZE};
use crate::mm::{CacheStat, FilePages, Frames, PageRun};
use rvisor_memory::{MemoryFile, UsageKind};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

static NEXT_INO: AtomicU64 = AtomicU64::new(2);

/// `Tmpfs::limit` of one without a size.
const NO_LIMIT: u64 = u64::MAX;

/// One mounted tmpfs.
pub struct Tmpfs {
    mf: Arc<MemoryFile>,
    dev: u64,
    /// Its `size=` in pages (NO_LIMIT without one): a write, fallocate or
    /// shared-mapping fault that would take more is ENOSPC (SIGBUS for the
    /// fault). A reconfigure may change it (`resize`).
    limit: AtomicU64,
    /// Pages its files hold (a file's pages go back when it is truncated, its
    /// holes punched, or it is gone: unlinked and closed).
    used: AtomicU64,
    /// What /proc/mounts shows of its options. A leaf lock.
    shown: Mutex<ShownOptions>,
}

/// The options of a tmpfs /proc/mounts shows after its mount's flags, each
/// only when it differs from Linux's default (shmem_show_options).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShownOptions {
    /// Whether it was given a size (`size=` or `nr_blocks=`), shown in KiB of
    /// its limit (0: none). Linux's default, half the memory, is shown only
    /// when it differs from it; a size given is taken to.
    pub sized: bool,
    pub nr_inodes: Option<u64>,
    /// Its root's mode when mounted (01777 by default).
    pub mode: u32,
    /// Its root's owner when mounted, in the sandbox's initial user namespace.
    pub uid: u32,
    pub gid: u32,
    pub inode64: bool,
    /// `huge=`: never by default.
    pub huge: Option<String>,
    pub noswap: bool,
}

impl Default for ShownOptions {
    fn default() -> Self {
        ShownOptions { sized: false, nr_inodes: None, mode: 0o1777, uid: 0, gid: 0, inode64: false, huge: None, noswap: false }
    }
}

impl Tmpfs {
    pub fn new(mf: Arc<MemoryFile>, dev: u64) -> Arc<Tmpfs> {
        Self::sized(mf, dev, None)
    }

    /// A tmpfs of at most `bytes` (in whole pages), or unbounded (also for a
    /// size of 0, as Linux's).
    pub fn sized(mf: Arc<MemoryFile>, dev: u64, bytes: Option<u64>) -> Arc<Tmpfs> {
        let limit = bytes.filter(|&b| b > 0).map_or(NO_LIMIT, |b| b.div_ceil(PAGE_SIZE));
        let shown = ShownOptions { sized: bytes.is_some(), ..ShownOptions::default() };
        Arc::new(Tmpfs { mf, dev, limit: AtomicU64::new(limit), used: AtomicU64::new(0), shown: Mutex::new(shown) })
    }

    /// Changes what /proc/mounts shows of its options (a mount's or a
    /// reconfigure's).
    pub fn show(&self, change: impl FnOnce(&mut ShownOptions)) {
        change(&mut self.shown.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Its options as /proc/mounts shows them, each after a comma, in Linux's order.
    pub fn options_text(&self) -> String {
        use std::fmt::Write;
        let o = self.shown.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut s = String::new();
        if o.sized {
            let pages = self.limit.load(Ordering::Relaxed);
            let _ = write!(s, ",size={}k", if pages == NO_LIMIT { 0 } else { pages * (PAGE_SIZE / 1024) });
        }
        if let Some(n) = o.nr_inodes {
            let _ = write!(s, ",nr_inodes={n}");
        }
        if o.mode != 0o1777 {
            let _ = write!(s, ",mode={:03o}", o.mode);
        }
        if o.uid != 0 {
            let _ = write!(s, ",uid={}", o.uid);
        }
        if o.gid != 0 {
            let _ = write!(s, ",gid={}", o.gid);
        }
        if o.inode64 {
            s += ",inode64";
        }
        if let Some(h) = o.huge.filter(|h| h != "never") {
            let _ = write!(s, ",huge={h}");
        }
        if o.noswap {
            s += ",noswap";
        }
        s
    }

    /// The tmpfs `inode` is a file of, if it is one.
    pub fn of(inode: &dyn Inode) -> Option<Arc<Tmpfs>> {
        inode.as_any().downcast_ref::<TmpInode>().map(|i| i.fs.clone())
    }

    /// A reconfigure's `size=` (0: no limit), as Linux's shmem_reconfigure:
    /// not below what its files hold (the error is Linux's message).
    pub fn resize(&self, bytes: u64) -> Result<(), &'static str> {
        let pages = bytes.div_ceil(PAGE_SIZE);
        if pages > 0 {
            crate::vfs::release_stale();
            if self.used.load(Ordering::Relaxed) > pages {
                return Err("Too small a size for current use");
            }
        }
        self.limit.store(if pages == 0 { NO_LIMIT } else { pages }, Ordering::Relaxed);
        Ok(())
    }

    /// Takes `pages` more, within the limit. At the limit, files unlinked and
    /// closed that the dentry cache still held are let go first.
    fn charge(&self, pages: u64) -> SysResult<()> {
        self.try_charge(pages).or_else(|_| {
            crate::vfs::release_stale();
            self.try_charge(pages)
        })
    }

    fn try_charge(&self, pages: u64) -> SysResult<()> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let limit = self.limit.load(Ordering::Relaxed);
            let more = used.checked_add(pages).filter(|&n| n <= limit).ok_or_else(|| errno!(ENOSPC))?;
            match self.used.compare_exchange_weak(used, more, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    fn uncharge(&self, pages: u64) {
        self.used.fetch_sub(pages, Ordering::Relaxed);
    }

    /// Its size and what its files hold, in pages, for statfs: without a
    /// `size=`, Linux's default of half the RAM stands as the size.
    fn space(&self) -> (u64, u64) {
        crate::vfs::release_stale();
        let size = match self.limit.load(Ordering::Relaxed) {
            NO_LIMIT => crate::fs::proc::ram_total() / 2 / PAGE_SIZE,
            limit => limit,
        };
        (size, self.used.load(Ordering::Relaxed))
    }

    pub fn root(self: &Arc<Self>, mode: u32) -> Arc<dyn Inode> {
        self.show(|o| o.mode = mode & 0o7777);
        TmpInode::new(self, S_IFDIR | (mode & 0o7777), Content::Dir(BTreeMap::new()))
    }

    /// A regular file in no directory (memfd_create); `sealing` allows F_ADD_SEALS.
    pub fn unlinked_file(self: &Arc<Self>, mode: u32, sealing: bool) -> Arc<dyn Inode> {
        let inode = TmpInode::new(self, S_IFREG | (mode & 0o7777), Content::File { pages: BTreeMap::new(), size: 0 });
        let mut st = inode.lock();
        st.0.nlink = 0;
        if sealing {
            st.0.seals = 0;
        }
        drop(st);
        inode
    }

    /// An O_TMPFILE file: in no directory until linkat gives it a name, which
    /// only a `linkable` one (opened without O_EXCL) may get.
    fn tmpfile(self: &Arc<Self>, mode: u32, linkable: bool) -> Arc<dyn Inode> {
        let inode = self.unlinked_file(mode, false);
        if let Some(t) = inode.as_any().downcast_ref::<TmpInode>() {
            t.lock().0.linkable = linkable;
        }
        inode
    }
}

/// lseek's whence values that look for data and holes.
const SEEK_DATA: i32 = 3;
const SEEK_HOLE: i32 = 4;

/// File seals (fcntl F_ADD_SEALS / F_GET_SEALS).
pub const F_SEAL_SEAL: u32 = 1;
pub const F_SEAL_SHRINK: u32 = 2;
pub const F_SEAL_GROW: u32 = 4;
pub const F_SEAL_WRITE: u32 = 8;
pub const F_SEAL_FUTURE_WRITE: u32 = 0x10;
const F_SEAL_ALL: u32 = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;

enum Content {
    Dir(BTreeMap<Vec<u8>, Arc<TmpInode>>),
    /// A regular file's pages by page index; shared mappings map the same frames.
    File { pages: BTreeMap<u64, Page>, size: u64 },
    Symlink(Vec<u8>),
    Fifo(Arc<Pipe>),
    /// A socket node, naming the AF_UNIX socket bound to it while it lives.
    Socket(Weak<crate::net::unix::UnixSocket>),
}

/// One page of a file: at `at` in `frames` (pages allocated together for a
/// mapping share one run of frames, freed when the last of them goes).
#[derive(Clone)]
struct Page {
    frames: Arc<Frames>,
    at: u64,
}

impl Page {
    /// The page's offset in the memory file.
    fn offset(&self) -> u64 {
        self.frames.range.start + self.at
    }
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    atime: (i64, i64),
    mtime: (i64, i64),
    ctime: (i64, i64),
    /// F_SEAL_*: every tmpfs file starts sealed against sealing, except a memfd
    /// made with MFD_ALLOW_SEALING.
    seals: u32,
    /// With no links left, linkat may still name it (O_TMPFILE without O_EXCL).
    linkable: bool,
}

pub struct TmpInode {
    fs: Arc<Tmpfs>,
    ino: u64,
    me: Weak<TmpInode>,
    /// Lock order: a parent directory's before a child's.
    state: Mutex<(Meta, Content)>,
    /// Extended attributes by full name. A leaf lock.
    xattrs: Mutex<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>,
}

fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i64)
}

impl TmpInode {
    fn new(fs: &Arc<Tmpfs>, mode: u32, content: Content) -> Arc<TmpInode> {
        let t = now();
        let nlink = if mode & S_IFMT == S_IFDIR { 2 } else { 1 };
        Arc::new_cyclic(|me| TmpInode {
            fs: fs.clone(),
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            me: me.clone(),
            state: Mutex::new((Meta { mode, uid: 0, gid: 0, nlink, atime: t, mtime: t, ctime: t, seals: F_SEAL_SEAL, linkable: false }, content)),
            xattrs: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Meta, Content)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, name: &[u8], mode: u32, content: Content) -> SysResult<Arc<dyn Inode>> {
        let mut st = self.lock();
        let Content::Dir(children) = &mut st.1 else { return error!(ENOTDIR) };
        if children.contains_key(name) {
            return error!(EEXIST);
        }
        let child = TmpInode::new(&self.fs, mode, content);
        children.insert(name.to_vec(), child.clone());
        if mode & S_IFMT == S_IFDIR {
            st.0.nlink += 1;
        }
        st.0.mtime = now();
        Ok(child)
    }

    /// Reads file bytes at `off` into `to`; returns how many.
    fn read_to(&self, off: u64, to: &mut ReadTarget<'_, '_>) -> SysResult<usize> {
        let st = self.lock();
        let Content::File { pages, size } = &st.1 else { return error!(EISDIR) };
        if off >= *size {
            return Ok(0);
        }
        let n = ((*size - off) as usize).min(to.len());
        let mut done = 0;
        while done < n {
            let at = off + done as u64;
            let (idx, inpage) = (at / PAGE_SIZE, (at % PAGE_SIZE) as usize);
            let chunk = (PAGE_SIZE as usize - inpage).min(n - done);
            to.fill(pages.get(&idx).map(|p| (&*self.fs.mf, p.offset() + inpage as u64)), done, chunk);
            done += chunk;
        }
        Ok(n)
    }

    fn read_bytes(&self, off: u64, buf: &mut [u8]) -> SysResult<usize> {
        self.read_to(off, &mut ReadTarget::Bytes(buf))
    }

    pub(crate) fn write_bytes(&self, off: u64, data: &[u8]) -> SysResult<usize> {
        self.write_from(off, &mut WriteSource::Bytes(data))
    }

    fn write_from(&self, off: u64, data: &mut WriteSource<'_, '_>) -> SysResult<usize> {
        let mut st = self.lock();
        let (meta, content) = &mut *st;
        let Content::File { pages, size } = content else { return error!(EISDIR) };
        let len = data.len();
        let end = off.checked_add(len as u64).ok_or_else(|| errno!(EFBIG))?;
        if meta.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 || (end > *size && meta.seals & F_SEAL_GROW != 0) {
            return error!(EPERM);
        }
        let mf = &self.fs.mf;
        let mut done = 0;
        while done < len {
            let at = off + done as u64;
            let (idx, inpage) = (at / PAGE_SIZE, (at % PAGE_SIZE) as usize);
            let chunk = (PAGE_SIZE as usize - inpage).min(len - done);
            match pages.get(&idx) {
                Some(p) => data.copy(mf, p.offset() + inpage as u64, done, chunk),
                None => {
                    // The run of missing pages from here, each with a frame of its
                    // own (freed with it), taken together: frames allocated one
                    // after another are mostly adjacent, and each adjacent group is
                    // filled by one host write rather than one per page.
                    let last = (off + len as u64 - 1) / PAGE_SIZE;
                    let run_end = pages.range(idx..=last).next().map_or(last + 1, |(&k, _)| k);
                    let mut fresh: Vec<Page> = Vec::new();
                    for _ in idx..run_end {
                        match self.fs.charge(1).map(|()| Frames::allocate_as(&self.fs.mf, PAGE_SIZE, UsageKind::Tmpfs)) {
                            Ok(Some(frames)) => fresh.push(Page { frames, at: 0 }),
                            failed => {
                                if failed.is_ok() {
                                    self.fs.uncharge(1);
                                }
                                break;
                            }
                        }
                    }
                    if fresh.is_empty() {
                        // Out of space part way: what was written counts.
                        if done > 0 {
                            break;
                        }
                        return error!(ENOSPC);
                    }
                    let span = (fresh.len() * PAGE_SIZE as usize - inpage).min(len - done);
                    let (mut i, mut put) = (0, 0);
                    while i < fresh.len() {
                        let mut j = i + 1;
                        while j < fresh.len() && fresh[j].offset() == fresh[j - 1].offset() + PAGE_SIZE {
                            j += 1;
                        }
                        let skip = if i == 0 { inpage } else { 0 };
                        let n = ((j - i) * PAGE_SIZE as usize - skip).min(span - put);
                        // Fresh frames are holes: a store skips faulting them in.
                        data.store(mf, fresh[i].offset() + skip as u64, done + put, n).map_err(|_| errno!(EIO))?;
                        put += n;
                        i = j;
                    }
                    for (k, p) in (idx..).zip(fresh) {
                        pages.insert(k, p);
                    }
                    done += span;
                    continue;
                }
            }
            done += chunk;
        }
        *size = (*size).max(off + done as u64);
        meta.mtime = now();
        Ok(done)
    }

    fn truncate(&self, len: u64) -> SysResult<()> {
        let mut st = self.lock();
        let (meta, content) = &mut *st;
        let Content::File { pages, size } = content else { return error!(EISDIR) };
        if (len < *size && meta.seals & F_SEAL_SHRINK != 0) || (len > *size && meta.seals & F_SEAL_GROW != 0) {
            return error!(EPERM);
        }
        let keep = len.div_ceil(PAGE_SIZE);
        let cut = pages.split_off(&keep);
        self.fs.uncharge(cut.len() as u64);
        Frames::release_all(cut.into_values().map(|p| p.frames));
        if len % PAGE_SIZE != 0 {
            if let Some(p) = pages.get(&(len / PAGE_SIZE)) {
                let from = len % PAGE_SIZE;
                self.fs.mf.zero(p.offset() + from, (PAGE_SIZE - from) as usize);
            }
        }
        *size = len;
        Ok(())
    }

    /// SEEK_DATA / SEEK_HOLE: the first byte at or after `at` that is data (in
    /// an allocated page) or hole (an unallocated page, or the end of the file).
    /// ENXIO at or past the end, or when no data follows.
    fn seek_data_or_hole(&self, at: u64, data: bool) -> SysResult<u64> {
        let st = self.lock();
        let Content::File { pages, size } = &st.1 else { return error!(EINVAL) };
        if at >= *size {
            return error!(ENXIO);
        }
        let mut idx = at / PAGE_SIZE;
        if data {
            let (&first, _) = pages.range(idx..).next().ok_or_else(|| errno!(ENXIO))?;
            let found = (first * PAGE_SIZE).max(at);
            return if found < *size { Ok(found) } else { error!(ENXIO) };
        }
        while pages.contains_key(&idx) {
            idx += 1;
        }
        Ok((idx * PAGE_SIZE).max(at).min(*size))
    }

    fn size(&self) -> u64 {
        match &self.lock().1 {
            Content::File { size, .. } => *size,
            _ => 0,
        }
    }
}

/// A file's pages go back to its file system's count when it is gone.
impl Drop for TmpInode {
    fn drop(&mut self) {
        if let Content::File { pages, .. } = &mut self.state.get_mut().unwrap_or_else(|e| e.into_inner()).1 {
            self.fs.uncharge(pages.len() as u64);
            Frames::release_all(std::mem::take(pages).into_values().map(|p| p.frames));
        }
    }
}

/// A tmpfs `size=` (or OCI mount option) value in bytes: a number with an
/// optional k, m, g or t suffix, or a percentage of the RAM.
pub fn parse_size(v: &str) -> Option<u64> {
    if let Some(p) = v.strip_suffix('%') {
        return p.parse::<u64>().ok().filter(|&p| p <= 100).map(|p| crate::fs::proc::ram_total() / 100 * p);
    }
    let (digits, shift) = match v.as_bytes().last()? {
        b'k' | b'K' => (&v[..v.len() - 1], 10),
        b'm' | b'M' => (&v[..v.len() - 1], 20),
        b'g' | b'G' => (&v[..v.len() - 1], 30),
        b't' | b'T' => (&v[..v.len() - 1], 40),
        _ => (v, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// A tmpfs file's pages are what its mappings map: a shared mapping writes the
/// file, a private one copies a page on its first write.
impl FilePages for TmpInode {
    fn end(&self) -> u64 {
        rvisor_abi::page_up(self.size()).unwrap_or(u64::MAX)
    }

    fn frames(&self, off: u64, len: u64) -> SysResult<Vec<PageRun>> {
        let mut st = self.lock();
        let Content::File { pages, .. } = &mut st.1 else { return error!(ENODEV) };
        let (first, end) = (off / PAGE_SIZE, (off + len).div_ceil(PAGE_SIZE));
        // Missing pages come from one allocation per run of them.
        let mut idx = first;
        while idx < end {
            if pages.contains_key(&idx) {
                idx += 1;
                continue;
            }
            let run_end = pages.range(idx..end).next().map_or(end, |(&k, _)| k);
            self.fs.charge(run_end - idx)?;
            let Some(frames) = Frames::allocate_as(&self.fs.mf, (run_end - idx) * PAGE_SIZE, UsageKind::Tmpfs) else {
                self.fs.uncharge(run_end - idx);
                return error!(ENOMEM);
            };
            for k in idx..run_end {
                pages.insert(k, Page { frames: frames.clone(), at: (k - idx) * PAGE_SIZE });
            }
            idx = run_end;
        }
        let mut runs: Vec<PageRun> = Vec::new();
        for (&k, p) in pages.range(first..end) {
            match runs.last_mut() {
                Some(r) if Arc::ptr_eq(&r.frames, &p.frames) && r.at + r.len == p.at && r.off + r.len == k * PAGE_SIZE => r.len += PAGE_SIZE,
                _ => runs.push(PageRun { off: k * PAGE_SIZE, len: PAGE_SIZE, frames: p.frames.clone(), at: p.at, read_in: false }),
            }
        }
        Ok(runs)
    }

    fn check_shared_write(&self) -> SysResult<()> {
        if self.lock().0.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return error!(EPERM);
        }
        Ok(())
    }

    /// Its pages are all in memory; none is dirty (Linux's shmem marks no
    /// page dirty in its page cache either).
    fn cache_stat(&self, first: u64, last: u64) -> CacheStat {
        let st = self.lock();
        let Content::File { pages, .. } = &st.1 else { return CacheStat::default() };
        let nr_cache = pages.range(first..).take_while(|&(&k, _)| k <= last).count() as u64;
        CacheStat { nr_cache, ..CacheStat::default() }
    }
}

fn tmp(i: &Arc<dyn Inode>) -> SysResult<&TmpInode> {
    i.as_any().downcast_ref::<TmpInode>().ok_or_else(|| errno!(EXDEV))
}

impl Inode for TmpInode {
    fn allocate(&self, offset: u64, len: u64) -> SysResult<()> {
        if self.kind() != S_IFREG {
            return error!(ENODEV);
        }
        FilePages::frames(self, offset, len).map(drop)
    }

    fn space(&self) -> Option<(u64, u64)> {
        Some(self.fs.space())
    }

    fn fs_options(&self) -> String {
        self.fs.options_text()
    }

    fn stat(&self) -> SysResult<Stat> {
        let st = self.lock();
        let (m, c) = &*st;
        let size = match c {
            Content::File { size, .. } => *size,
            Content::Symlink(t) => t.len() as u64,
            Content::Dir(_) => 4096,
            Content::Fifo(_) | Content::Socket(_) => 0,
        };
        let mut s = Stat::zeroed();
        s.st_dev = self.fs.dev;
        s.st_ino = self.ino;
        s.st_nlink = m.nlink;
        s.st_mode = m.mode;
        s.st_uid = m.uid;
        s.st_gid = m.gid;
        s.st_size = size as i64;
        s.st_blksize = 4096;
        s.st_blocks = match c {
            Content::File { pages, .. } => pages.len() as i64 * 8,
            _ => 0,
        };
        (s.st_atime, s.st_atime_nsec) = m.atime;
        (s.st_mtime, s.st_mtime_nsec) = m.mtime;
        (s.st_ctime, s.st_ctime_nsec) = m.ctime;
        Ok(s)
    }

    fn kind(&self) -> u32 {
        self.lock().0.mode & S_IFMT
    }

    fn lookup(&self, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        match &self.lock().1 {
            Content::Dir(c) => c.get(name).map(|i| i.clone() as Arc<dyn Inode>).ok_or_else(|| errno!(ENOENT)),
            _ => error!(ENOTDIR),
        }
    }

    fn readlink(&self) -> SysResult<Vec<u8>> {
        match &self.lock().1 {
            Content::Symlink(t) => Ok(t.clone()),
            _ => error!(EINVAL),
        }
    }

    fn open(&self, dentry: &Arc<Dentry>, flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        match self.kind() {
            S_IFDIR => return Ok(Arc::new(DirFile::new(dentry.clone(), flags.0))),
            // A FIFO's ends come from `fifo()`, opened by the open syscall (it
            // may block); a socket node is connected to, never opened.
            S_IFIFO | crate::vfs::inode::S_IFSOCK => return error!(ENXIO),
            _ => {}
        }
        if flags.0 & OpenFlags::TRUNC != 0 && flags.writable() {
            self.truncate(0)?;
        }
        let me = self.me.upgrade().ok_or_else(|| errno!(ENOENT))?;
        Ok(Arc::new(TmpFile { inode: me, dentry: dentry.clone(), pos: Mutex::new(0), flags: StatusFlags::new(flags.0), locks: Default::default() }))
    }

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        match &self.lock().1 {
            Content::Dir(c) => Ok(c.iter().map(|(n, i)| DirEntry { name: n.clone(), ino: i.ino, dtype: dtype_of(i.kind()) }).collect()),
            _ => error!(ENOTDIR),
        }
    }

    fn create(&self, name: &[u8], mode: u32) -> SysResult<Arc<dyn Inode>> {
        self.add(name, S_IFREG | (mode & 0o7777), Content::File { pages: BTreeMap::new(), size: 0 })
    }

    fn mkdir(&self, name: &[u8], mode: u32) -> SysResult<Arc<dyn Inode>> {
        self.add(name, S_IFDIR | (mode & 0o7777), Content::Dir(BTreeMap::new()))
    }

    fn symlink(&self, name: &[u8], target: &[u8]) -> SysResult<Arc<dyn Inode>> {
        self.add(name, S_IFLNK | 0o777, Content::Symlink(target.to_vec()))
    }

    fn tmpfile(&self, mode: u32, linkable: bool) -> SysResult<Arc<dyn Inode>> {
        if self.kind() != S_IFDIR {
            return error!(ENOTDIR);
        }
        Ok(self.fs.tmpfile(mode, linkable))
    }

    fn mkfifo(&self, name: &[u8], mode: u32) -> SysResult<Arc<dyn Inode>> {
        self.add(name, S_IFIFO | (mode & 0o7777), Content::Fifo(Pipe::for_fifo()))
    }

    fn fifo(&self) -> Option<Arc<Pipe>> {
        match &self.lock().1 {
            Content::Fifo(p) => Some(p.clone()),
            _ => None,
        }
    }

    fn mksock(&self, name: &[u8], mode: u32, socket: Weak<crate::net::unix::UnixSocket>) -> SysResult<Arc<dyn Inode>> {
        self.add(name, crate::vfs::inode::S_IFSOCK | (mode & 0o7777), Content::Socket(socket))
    }

    fn bound_socket(&self) -> Option<Arc<crate::net::unix::UnixSocket>> {
        match &self.lock().1 {
            Content::Socket(s) => s.upgrade(),
            _ => None,
        }
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> SysResult<()> {
        let t = tmp(target)?.me.upgrade().ok_or_else(|| errno!(ENOENT))?;
        if t.kind() == S_IFDIR {
            return error!(EPERM);
        }
        {
            let ts = t.lock();
            if ts.0.nlink == 0 && !ts.0.linkable {
                return error!(ENOENT);
            }
        }
        let mut st = self.lock();
        let Content::Dir(children) = &mut st.1 else { return error!(ENOTDIR) };
        if children.contains_key(name) {
            return error!(EEXIST);
        }
        t.lock().0.nlink += 1;
        children.insert(name.to_vec(), t);
        Ok(())
    }

    fn unlink(&self, name: &[u8]) -> SysResult<()> {
        let mut st = self.lock();
        let Content::Dir(children) = &mut st.1 else { return error!(ENOTDIR) };
        let child = children.get(name).ok_or_else(|| errno!(ENOENT))?;
        if child.kind() == S_IFDIR {
            return error!(EISDIR);
        }
        if let Some(c) = children.remove(name) {
            let mut cs = c.lock();
            cs.0.nlink = cs.0.nlink.saturating_sub(1);
        }
        Ok(())
    }

    fn rmdir(&self, name: &[u8]) -> SysResult<()> {
        let mut st = self.lock();
        let Content::Dir(children) = &mut st.1 else { return error!(ENOTDIR) };
        let child = children.get(name).ok_or_else(|| errno!(ENOENT))?;
        match &child.lock().1 {
            Content::Dir(c) if !c.is_empty() => return error!(ENOTEMPTY),
            Content::Dir(_) => {}
            _ => return error!(ENOTDIR),
        }
        children.remove(name);
        st.0.nlink = st.0.nlink.saturating_sub(1);
        Ok(())
    }

    fn rename(&self, name: &[u8], new_dir: &Arc<dyn Inode>, new_name: &[u8]) -> SysResult<()> {
        let dst = tmp(new_dir)?;
        let moving = {
            let st = self.lock();
            let Content::Dir(children) = &st.1 else { return error!(ENOTDIR) };
            children.get(name).cloned().ok_or_else(|| errno!(ENOENT))?
        };
        let same = std::ptr::eq(self, dst);
        if !same {
            let mut d = dst.lock();
            let Content::Dir(children) = &mut d.1 else { return error!(ENOTDIR) };
            if let Some(old) = children.get(new_name) {
                if old.kind() == S_IFDIR && moving.kind() != S_IFDIR {
                    return error!(EISDIR);
                }
            }
            let replaced = children.insert(new_name.to_vec(), moving);
            drop(d);
            unlinked_by_rename(replaced);
            if let Content::Dir(children) = &mut self.lock().1 {
                children.remove(name);
            }
        } else if let Content::Dir(children) = &mut self.lock().1 {
            if let Some(m) = children.remove(name) {
                let replaced = children.insert(new_name.to_vec(), m);
                unlinked_by_rename(replaced);
            }
        }
        Ok(())
    }

    fn punch_hole(&self, offset: u64, len: u64) -> SysResult<()> {
        let mut st = self.lock();
        let (meta, content) = &mut *st;
        let Content::File { pages, size } = content else { return error!(EISDIR) };
        if meta.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return error!(EPERM);
        }
        let end = offset.saturating_add(len).min(*size);
        let mut at = offset;
        while at < end {
            let (idx, inpage) = (at / PAGE_SIZE, at % PAGE_SIZE);
            let chunk = (PAGE_SIZE - inpage).min(end - at);
            if chunk == PAGE_SIZE {
                if pages.remove(&idx).is_some() {
                    self.fs.uncharge(1);
                }
            } else if let Some(p) = pages.get(&idx) {
                self.fs.mf.zero(p.offset() + inpage, chunk as usize);
            }
            at += chunk;
        }
        meta.mtime = now();
        Ok(())
    }

    fn exchange(&self, name: &[u8], new_dir: &Arc<dyn Inode>, new_name: &[u8]) -> SysResult<()> {
        let dst = tmp(new_dir)?;
        if std::ptr::eq(self, dst) {
            let mut st = self.lock();
            let Content::Dir(children) = &mut st.1 else { return error!(ENOTDIR) };
            let a = children.get(name).cloned().ok_or_else(|| errno!(ENOENT))?;
            let b = children.get(new_name).cloned().ok_or_else(|| errno!(ENOENT))?;
            children.insert(name.to_vec(), b);
            children.insert(new_name.to_vec(), a);
            return Ok(());
        }
        // Two directories: locked in address order, so that two exchanges between
        // the same pair cannot deadlock.
        let (first, second) = if (self as *const TmpInode) < (dst as *const TmpInode) { (self, dst) } else { (dst, self) };
        let (mut s1, mut s2) = (first.lock(), second.lock());
        let (mine, theirs) = if std::ptr::eq(first, self) { (&mut s1.1, &mut s2.1) } else { (&mut s2.1, &mut s1.1) };
        let (Content::Dir(here), Content::Dir(there)) = (mine, theirs) else { return error!(ENOTDIR) };
        let a = here.get(name).cloned().ok_or_else(|| errno!(ENOENT))?;
        let b = there.get(new_name).cloned().ok_or_else(|| errno!(ENOENT))?;
        here.insert(name.to_vec(), b);
        there.insert(new_name.to_vec(), a);
        Ok(())
    }

    fn getxattr(&self, name: &[u8]) -> SysResult<Vec<u8>> {
        self.xattrs.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned().ok_or_else(|| errno!(ENODATA))
    }

    fn listxattr(&self) -> SysResult<Vec<Vec<u8>>> {
        Ok(self.xattrs.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect())
    }

    fn setxattr(&self, name: &[u8], value: &[u8], mode: XattrSet) -> SysResult<()> {
        {
            let mut x = self.xattrs.lock().unwrap_or_else(|e| e.into_inner());
            let exists = x.contains_key(name);
            if exists && mode.create {
                return error!(EEXIST);
            }
            if !exists && mode.replace {
                return error!(ENODATA);
            }
            x.insert(name.to_vec(), value.to_vec());
        }
        self.lock().0.ctime = now();
        Ok(())
    }

    fn removexattr(&self, name: &[u8]) -> SysResult<()> {
        self.xattrs.lock().unwrap_or_else(|e| e.into_inner()).remove(name).ok_or_else(|| errno!(ENODATA))?;
        self.lock().0.ctime = now();
        Ok(())
    }

    fn setattr(&self, a: &SetAttr) -> SysResult<()> {
        if let Some(len) = a.size {
            self.truncate(len)?;
        }
        let mut st = self.lock();
        let m = &mut st.0;
        if let Some(mode) = a.mode {
            m.mode = (m.mode & S_IFMT) | (mode & 0o7777);
        }
        if let Some(u) = a.uid {
            m.uid = u;
        }
        if let Some(g) = a.gid {
            m.gid = g;
        }
        if let Some(t) = a.atime {
            m.atime = t;
        }
        if let Some(t) = a.mtime {
            m.mtime = t;
        }
        m.ctime = now();
        Ok(())
    }

    fn cache_stat(&self, first: u64, last: u64) -> CacheStat {
        FilePages::cache_stat(self, first, last)
    }

    fn file_pages(&self, _mf: &Arc<MemoryFile>) -> SysResult<Option<Arc<dyn FilePages>>> {
        if self.kind() != S_IFREG {
            return Ok(None);
        }
        Ok(self.me.upgrade().map(|me| me as Arc<dyn FilePages>))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A file a rename replaced lost that name (fstat of it open, and inotify, see
/// the link count drop).
fn unlinked_by_rename(replaced: Option<Arc<TmpInode>>) {
    if let Some(r) = replaced {
        let mut rs = r.lock();
        rs.0.nlink = rs.0.nlink.saturating_sub(1);
    }
}

/// An open tmpfs file.
struct TmpFile {
    /// Its OFD and flock locks, released when it goes.
    locks: crate::vfs::locks::FileLocks,
    inode: Arc<TmpInode>,
    dentry: Arc<Dentry>,
    pos: Mutex<u64>,
    flags: StatusFlags,
}

impl TmpFile {
    fn flags(&self) -> u32 {
        self.flags.get()
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        crate::fs::inotify::closed(&self.dentry, OpenFlags(self.flags()).writable());
    }
}

/// Where a read's bytes go: a Sentry buffer, or the app's buffers, filled
/// straight from the file's frames.
enum ReadTarget<'a, 'b> {
    Bytes(&'a mut [u8]),
    App(&'a mut RangeCursor<'b>),
}

impl ReadTarget<'_, '_> {
    fn len(&self) -> usize {
        match self {
            ReadTarget::Bytes(b) => b.len(),
            ReadTarget::App(c) => c.remaining(),
        }
    }

    /// Fills the `n` bytes at `at` (in order: the app's are taken as they come)
    /// from `from`, a memory file and an offset in it, or with zeros (a hole).
    fn fill(&mut self, from: Option<(&MemoryFile, u64)>, at: usize, n: usize) {
        match (self, from) {
            (ReadTarget::Bytes(b), Some((mf, off))) => mf.read(off, &mut b[at..at + n]),
            (ReadTarget::Bytes(b), None) => b[at..at + n].fill(0),
            (ReadTarget::App(c), Some((mf, off))) => {
                c.copy_from(mf, off, n);
            }
            (ReadTarget::App(c), None) => {
                c.zero(n);
            }
        }
    }
}

/// Where a write's bytes come from: a Sentry buffer, or the app's buffers,
/// copied from their frames straight into the file's.
enum WriteSource<'a, 'b> {
    Bytes(&'a [u8]),
    App(&'a mut RangeCursor<'b>),
}

impl WriteSource<'_, '_> {
    fn len(&self) -> usize {
        match self {
            WriteSource::Bytes(b) => b.len(),
            WriteSource::App(c) => c.remaining(),
        }
    }

    /// Copies the `n` bytes at `at` (in order: the app's are taken as they come)
    /// to `mf` at `off`.
    fn copy(&mut self, mf: &MemoryFile, off: u64, at: usize, n: usize) {
        match self {
            WriteSource::Bytes(b) => mf.write(off, &b[at..at + n]),
            WriteSource::App(c) => {
                c.copy_to(mf, off, n);
            }
        }
    }

    /// As `copy`, into a fresh frame.
    fn store(&mut self, mf: &MemoryFile, off: u64, at: usize, n: usize) -> nix::Result<()> {
        match self {
            WriteSource::Bytes(b) => mf.store(off, &b[at..at + n]),
            WriteSource::App(c) => c.store_to(mf, off, n).map(drop),
        }
    }
}

impl FileDescription for TmpFile {
    fn read(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if !OpenFlags(self.flags()).readable() {
            return error!(EBADF);
        }
        let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
        let start = offset.map(|o| o as u64).unwrap_or(*pos);
        // Page by page from the file's frames into the app's, with no buffer between.
        let mut to = RangeCursor::new(t.mm.memory_file(), t.mm.translate_buffers(bufs, true)?);
        let n = self.inode.read_to(start, &mut ReadTarget::App(&mut to))?;
        if offset.is_none() {
            *pos = start + n as u64;
        }
        Ok(n)
    }

    fn write(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        let flags = OpenFlags(self.flags());
        if !flags.writable() {
            return error!(EBADF);
        }
        let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
        let start = match offset {
            Some(o) => o as u64,
            None if flags.0 & OpenFlags::APPEND != 0 => self.inode.size(),
            None => *pos,
        };
        // From the app's frames straight into the file's. A buffer that faults part
        // way writes what came before, as Linux does (`translate_buffers`).
        let mut from = RangeCursor::new(t.mm.memory_file(), t.mm.translate_buffers(bufs, false)?);
        let n = self.inode.write_from(start, &mut WriteSource::App(&mut from))?;
        if offset.is_none() {
            *pos = start + n as u64;
        }
        Ok(n)
    }

    fn stat(&self) -> SysResult<Stat> {
        self.inode.stat()
    }

    fn flags(&self) -> Option<&crate::vfs::StatusFlags> {
        Some(&self.flags)
    }

    fn seek(&self, offset: i64, whence: i32) -> SysResult<i64> {
        let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
        let base = match whence {
            0 => 0,
            1 => *pos as i64,
            2 => self.inode.size() as i64,
            SEEK_DATA | SEEK_HOLE => {
                let at = u64::try_from(offset).map_err(|_| errno!(ENXIO))?;
                let new = self.inode.seek_data_or_hole(at, whence == SEEK_DATA)?;
                *pos = new;
                return Ok(new as i64);
            }
            _ => return error!(EINVAL),
        };
        let new = base.checked_add(offset).filter(|&n| n >= 0).ok_or_else(|| errno!(EINVAL))?;
        *pos = new as u64;
        Ok(new)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        self.inode.read_bytes(offset, buf)
    }

    fn write_from(&self, _t: &Task, data: &[u8], offset: Option<u64>) -> SysResult<usize> {
        let flags = OpenFlags(self.flags());
        if !flags.writable() {
            return error!(EBADF);
        }
        let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
        let start = match offset {
            Some(o) => o,
            None if flags.0 & OpenFlags::APPEND != 0 => self.inode.size(),
            None => *pos,
        };
        let n = self.inode.write_bytes(start, data)?;
        if offset.is_none() {
            *pos = start + n as u64;
        }
        Ok(n)
    }

    fn dentry(&self) -> Option<Arc<Dentry>> {
        Some(self.dentry.clone())
    }
    fn file_locks(&self) -> Option<&crate::vfs::locks::FileLocks> {
        Some(&self.locks)
    }

    fn seals(&self) -> SysResult<u32> {
        Ok(self.inode.lock().0.seals)
    }

    fn add_seals(&self, seals: u32) -> SysResult<()> {
        if seals & !F_SEAL_ALL != 0 {
            return error!(EINVAL);
        }
        if !OpenFlags(self.flags()).writable() {
            return error!(EPERM);
        }
        let mut st = self.inode.lock();
        if st.0.seals & F_SEAL_SEAL != 0 {
            return error!(EPERM);
        }
        st.0.seals |= seals;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("65536k"), Some(64 << 20));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert!(parse_size("50%").is_some_and(|b| b > 0));
        for bad in ["", "k", "12x", "-1", "101%", "99999999999999999999t"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }
}
