//! Building blocks for synthetic file systems (procfs, devfs, sysfs): fixed
//! directories, symlinks, and files whose contents are generated when read.

use crate::vfs::StatusFlags;
use crate::mm::UserBuffers;
use crate::task::Task;
use crate::vfs::inode::{dtype_of, DirEntry, Inode, OpenFlags, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use crate::vfs::{Dentry, DirFile, FileDescription};
use rvisor_abi::structs::Stat;
use rvisor_abi::{errno, error, SysResult};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Produces a synthetic file's contents, afresh for each open (or rewind).
pub type Generator = Arc<dyn Fn() -> SysResult<Vec<u8>> + Send + Sync>;
/// Takes what the app writes to a synthetic file (e.g. /proc/self/comm).
pub type Writer = Arc<dyn Fn(&[u8]) -> SysResult<()> + Send + Sync>;

/// The attributes every synthetic inode reports.
#[derive(Clone, Copy, Debug)]
pub struct Attrs {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub time: (i64, i64),
}

impl Attrs {
    pub fn stat(&self, size: i64) -> Stat {
        let mut s = Stat::zeroed();
        s.st_dev = self.dev;
        s.st_ino = self.ino;
        s.st_nlink = if self.mode & S_IFMT == S_IFDIR { 2 } else { 1 };
        s.st_mode = self.mode;
        s.st_uid = self.uid;
        s.st_gid = self.gid;
        s.st_rdev = self.rdev;
        s.st_size = size;
        s.st_blksize = 4096;
        (s.st_atime, s.st_atime_nsec) = self.time;
        (s.st_mtime, s.st_mtime_nsec) = self.time;
        (s.st_ctime, s.st_ctime_nsec) = self.time;
        s
    }
}

/// Now, as (seconds, nanoseconds) since the epoch.
pub fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i64)
}

/// Linux's `makedev`, as glibc encodes it in st_rdev.
pub fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffff_ff00) << 12) | (minor & 0xff)
}

/// The (major, minor) pair of an encoded device number.
pub fn major_minor(dev: u64) -> (u64, u64) {
    (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff), (dev & 0xff) | ((dev >> 12) & !0xff))
}

/// Hands out inode numbers for one synthetic file system.
pub struct InoAlloc {
    pub dev: u64,
    next: AtomicU64,
    pub time: (i64, i64),
}

impl InoAlloc {
    pub fn new(dev: u64) -> InoAlloc {
        InoAlloc { dev, next: AtomicU64::new(1), time: now() }
    }

    pub fn attrs(&self, mode: u32) -> Attrs {
        Attrs { dev: self.dev, ino: self.next.fetch_add(1, Ordering::Relaxed), mode, uid: 0, gid: 0, rdev: 0, time: self.time }
    }
}

/// Copies `data` out to the app's buffers. Stops at the first bad buffer like a
/// read does: EFAULT only if nothing could be copied.
pub fn copy_out(t: &Task, bufs: &UserBuffers, data: &[u8]) -> SysResult<usize> {
    let mut done = 0;
    for &(addr, len) in &bufs.iovs {
        if done >= data.len() {
            break;
        }
        let k = (len as usize).min(data.len() - done);
        if k == 0 {
            continue;
        }
        if let Err(e) = t.mm.write_bytes(addr, &data[done..done + k]) {
            // Copy what fits page by page before the fault, as Linux's copy_to_user does.
            let mut ok = 0;
            while ok < k {
                let page_left = (4096 - ((addr.get() + ok as u64) % 4096)) as usize;
                let n = page_left.min(k - ok);
                let Ok(a) = addr.add(ok as u64) else { break };
                if t.mm.write_bytes(a, &data[done + ok..done + ok + n]).is_err() {
                    break;
                }
                ok += n;
            }
            done += ok;
            return if done == 0 { Err(e) } else { Ok(done) };
        }
        done += k;
    }
    Ok(done)
}

/// Reads everything the app passed in `bufs`, at most `max` bytes.
pub fn copy_in(t: &Task, bufs: &UserBuffers, max: usize) -> SysResult<Vec<u8>> {
    let mut data = Vec::new();
    for &(addr, len) in &bufs.iovs {
        let k = (len as usize).min(max - data.len());
        if k == 0 {
            continue;
        }
        let mut b = vec![0u8; k];
        t.mm.read_bytes(addr, &mut b)?;
        data.extend_from_slice(&b);
    }
    Ok(data)
}

/// The file status flags open(2) keeps (the rest, like O_CREAT, only act at open).
pub fn kept_flags(flags: u32) -> u32 {
    flags & !(OpenFlags::CREAT | OpenFlags::EXCL | OpenFlags::NOCTTY | OpenFlags::TRUNC | OpenFlags::CLOEXEC)
}

/// F_SETFL: only these status flags change.

/// An open synthetic file. Like Linux's seq_file, the contents are generated at
/// the first read and served from that snapshot, so a program reading in small
/// pieces sees one consistent text; seeking back to 0 takes a new snapshot.
pub struct SeqFile {
    /// Its OFD and flock locks, released when it goes.
    locks: crate::vfs::locks::FileLocks,
    dentry: Arc<Dentry>,
    gen: Generator,
    writer: Option<Writer>,
    flags: StatusFlags,
    /// The snapshot, and the file position.
    state: Mutex<(Option<Arc<Vec<u8>>>, u64)>,
}

impl SeqFile {
    pub fn new(dentry: Arc<Dentry>, gen: Generator, writer: Option<Writer>, flags: OpenFlags) -> SeqFile {
        SeqFile { dentry, gen, writer, flags: StatusFlags::new(kept_flags(flags.0)), state: Mutex::new((None, 0)), locks: Default::default() }
    }

    fn flags(&self) -> OpenFlags {
        OpenFlags(self.flags.get())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<Arc<Vec<u8>>>, u64)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The snapshot, taken now if there is none. The generator runs without the
    /// lock held: it may look at this very file (/proc/self/fdinfo/N of itself
    /// asks for its position).
    fn snapshot(&self) -> SysResult<Arc<Vec<u8>>> {
        if let Some(d) = &self.lock().0 {
            return Ok(d.clone());
        }
        let d = Arc::new((self.gen)()?);
        Ok(self.lock().0.get_or_insert(d).clone())
    }
}

impl FileDescription for SeqFile {
    fn read(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if !self.flags().readable() {
            return error!(EBADF);
        }
        let data = self.snapshot()?;
        let mut st = self.lock();
        let start = offset.map(|o| o as u64).unwrap_or(st.1);
        let from = (start.min(data.len() as u64)) as usize;
        let n = copy_out(t, bufs, &data[from..])?;
        if offset.is_none() {
            st.1 = start + n as u64;
        }
        Ok(n)
    }

    fn write(&self, t: &Task, bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        if !self.flags().writable() {
            return error!(EBADF);
        }
        let Some(w) = &self.writer else { return error!(EINVAL) };
        let data = copy_in(t, bufs, 4096)?;
        w(&data)?;
        // A written control file is regenerated on the next read.
        self.lock().0 = None;
        Ok(bufs.total() as usize)
    }

    fn stat(&self) -> SysResult<Stat> {
        self.dentry.inode.stat()
    }

    fn flags(&self) -> Option<&crate::vfs::StatusFlags> {
        Some(&self.flags)
    }

    fn seek(&self, offset: i64, whence: i32) -> SysResult<i64> {
        let mut st = self.lock();
        let new = match whence {
            0 => offset,
            1 => (st.1 as i64).checked_add(offset).ok_or_else(|| errno!(EINVAL))?,
            _ => return error!(EINVAL),
        };
        if new < 0 {
            return error!(EINVAL);
        }
        if new == 0 {
            st.0 = None;
        }
        st.1 = new as u64;
        Ok(new)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        let data = self.snapshot()?;
        let from = offset.min(data.len() as u64) as usize;
        let n = buf.len().min(data.len() - from);
        buf[..n].copy_from_slice(&data[from..from + n]);
        Ok(n)
    }

    fn dentry(&self) -> Option<Arc<Dentry>> {
        Some(self.dentry.clone())
    }
    fn file_locks(&self) -> Option<&crate::vfs::locks::FileLocks> {
        Some(&self.locks)
    }
}

/// A directory whose entries are fixed when it is built (or, growable, added
/// and removed as in devtmpfs).
pub struct StaticDir {
    pub attrs: Attrs,
    /// A leaf lock.
    entries: Mutex<BTreeMap<Vec<u8>, Arc<dyn Inode>>>,
    /// Set where names may be added and removed, as in devtmpfs: new files are
    /// tmpfs files, new directories are directories like this one.
    growable: Option<Growable>,
}

struct Growable {
    files: Arc<crate::fs::tmpfs::Tmpfs>,
    ino: Arc<InoAlloc>,
}

impl StaticDir {
    pub fn new(attrs: Attrs, entries: Vec<(&str, Arc<dyn Inode>)>) -> Arc<StaticDir> {
        StaticDir::with(attrs, entries, None)
    }

    /// A directory that starts with `entries` and takes new files (made in
    /// `files`) and directories, as devtmpfs at /dev does.
    pub fn growable(attrs: Attrs, entries: Vec<(&str, Arc<dyn Inode>)>, files: Arc<crate::fs::tmpfs::Tmpfs>, ino: Arc<InoAlloc>) -> Arc<StaticDir> {
        StaticDir::with(attrs, entries, Some(Growable { files, ino }))
    }

    fn with(attrs: Attrs, entries: Vec<(&str, Arc<dyn Inode>)>, growable: Option<Growable>) -> Arc<StaticDir> {
        let entries = entries.into_iter().map(|(n, i)| (n.as_bytes().to_vec(), i)).collect();
        Arc::new(StaticDir { attrs: Attrs { mode: S_IFDIR | (attrs.mode & 0o7777), ..attrs }, entries: Mutex::new(entries), growable })
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Arc<dyn Inode>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `make()` as `name`, if the directory grows and has no such name.
    fn add(&self, name: &[u8], make: impl FnOnce(&Growable) -> Arc<dyn Inode>) -> SysResult<Arc<dyn Inode>> {
        let Some(g) = &self.growable else { return error!(EROFS) };
        let mut entries = self.entries();
        if entries.contains_key(name) {
            return error!(EEXIST);
        }
        let inode = make(g);
        entries.insert(name.to_vec(), inode.clone());
        Ok(inode)
    }

    /// Removes `name` if `removable` says it may go.
    fn remove(&self, name: &[u8], removable: impl FnOnce(&Arc<dyn Inode>) -> SysResult<()>) -> SysResult<()> {
        if self.growable.is_none() {
            return error!(EROFS);
        }
        let mut entries = self.entries();
        removable(entries.get(name).ok_or_else(|| errno!(ENOENT))?)?;
        entries.remove(name);
        Ok(())
    }
}

impl Inode for StaticDir {
    /// devtmpfs's options as Linux shows them, but for size= and nr_inodes=,
    /// limits ours has not: its root's mode at mount, 755.
    fn fs_options(&self) -> String {
        if self.growable.is_some() { ",mode=755".into() } else { String::new() }
    }

    fn stat(&self) -> SysResult<Stat> {
        let mut s = self.attrs.stat(0);
        s.st_nlink = 2 + self.entries().values().filter(|i| i.kind() == S_IFDIR).count() as u64;
        Ok(s)
    }

    fn kind(&self) -> u32 {
        S_IFDIR
    }

    fn lookup(&self, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        self.entries().get(name).cloned().ok_or_else(|| errno!(ENOENT))
    }

    fn open(&self, dentry: &Arc<Dentry>, flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        if flags.writable() {
            return error!(EISDIR);
        }
        Ok(Arc::new(DirFile::new(dentry.clone(), flags.0)))
    }

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        Ok(self
            .entries()
            .iter()
            .map(|(n, i)| {
                let st = i.stat().ok();
                DirEntry { name: n.clone(), ino: st.map(|s| s.st_ino).unwrap_or(0), dtype: dtype_of(i.kind()) }
            })
            .collect())
    }

    fn create(&self, name: &[u8], mode: u32) -> SysResult<Arc<dyn Inode>> {
        self.add(name, |g| g.files.unlinked_file(mode, false))
    }

    fn mkdir(&self, name: &[u8], mode: u32) -> SysResult<Arc<dyn Inode>> {
        self.add(name, |g| StaticDir::growable(g.ino.attrs(mode), vec![], g.files.clone(), g.ino.clone()))
    }

    fn unlink(&self, name: &[u8]) -> SysResult<()> {
        self.remove(name, |i| if i.kind() == S_IFDIR { error!(EISDIR) } else { Ok(()) })
    }

    fn rmdir(&self, name: &[u8]) -> SysResult<()> {
        self.remove(name, |i| match i.as_any().downcast_ref::<StaticDir>() {
            None => error!(ENOTDIR),
            Some(d) if d.growable.is_none() => error!(EBUSY),
            Some(d) if !d.entries().is_empty() => error!(ENOTEMPTY),
            Some(_) => Ok(()),
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A symlink with a fixed target.
pub struct StaticLink {
    pub attrs: Attrs,
    pub target: Vec<u8>,
}

impl StaticLink {
    pub fn new(attrs: Attrs, target: &str) -> Arc<StaticLink> {
        Arc::new(StaticLink { attrs: Attrs { mode: S_IFLNK | 0o777, ..attrs }, target: target.as_bytes().to_vec() })
    }
}

impl Inode for StaticLink {
    fn stat(&self) -> SysResult<Stat> {
        Ok(self.attrs.stat(self.target.len() as i64))
    }

    fn kind(&self) -> u32 {
        S_IFLNK
    }

    fn readlink(&self) -> SysResult<Vec<u8>> {
        Ok(self.target.clone())
    }

    fn open(&self, _dentry: &Arc<Dentry>, _flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        error!(ELOOP)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A regular file whose contents a generator makes at each open.
pub struct GenFile {
    pub attrs: Attrs,
    gen: Generator,
    writer: Option<Writer>,
}

impl GenFile {
    pub fn new(attrs: Attrs, gen: Generator, writer: Option<Writer>) -> Arc<GenFile> {
        Arc::new(GenFile { attrs: Attrs { mode: S_IFREG | (attrs.mode & 0o7777), ..attrs }, gen, writer })
    }

    /// A read-only file with fixed text.
    pub fn text(attrs: Attrs, text: String) -> Arc<GenFile> {
        let text = Arc::new(text.into_bytes());
        GenFile::new(Attrs { mode: 0o444, ..attrs }, Arc::new(move || Ok(text.to_vec())), None)
    }
}

impl Inode for GenFile {
    fn stat(&self) -> SysResult<Stat> {
        // Like procfs and sysfs, synthetic files report size 0 (4096 in sysfs;
        // nothing depends on it).
        Ok(self.attrs.stat(0))
    }

    fn kind(&self) -> u32 {
        S_IFREG
    }

    fn open(&self, dentry: &Arc<Dentry>, flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        // Permission to write is the VFS's check (by the mode); without a writer,
        // write(2) is EINVAL.
        Ok(Arc::new(SeqFile::new(dentry.clone(), self.gen.clone(), self.writer.clone(), flags)))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
