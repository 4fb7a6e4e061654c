//! System V shared memory: segments are anonymous tmpfs files, attached as shared
//! mappings. A segment's attachment count is the number of VMAs that map it (as in
//! Linux, where splitting a VMA counts twice): each holds a reference to its
//! `SegmentPages`. A segment removed while attached lives on, with its id, until the
//! last mapping goes.

use super::{Ipc64Perm, IpcObject, Namespace};
use crate::mm::{FilePages, PageRun};
use crate::task::ThreadGroup;
use rvisor_abi::{errno, SysResult, PAGE_SIZE};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Linux's defaults: SHMMNI segments, SHMMAX bytes each, SHMALL pages in all.
pub const SHMMNI: usize = 4096;
pub const SHMMAX: u64 = u64::MAX - (1 << 24);
pub const SHMALL: u64 = u64::MAX - (1 << 24);
/// Flags in a segment's `shm_perm.mode` beside the permission bits.
pub const SHM_DEST: u32 = 0o1000;
pub const SHM_LOCKED: u32 = 0o2000;

/// `struct shmid64_ds`.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ShmidDs {
    pub perm: Ipc64Perm,
    pub segsz: u64,
    pub atime: i64,
    pub dtime: i64,
    pub ctime: i64,
    pub cpid: i32,
    pub lpid: i32,
    pub nattch: u64,
    unused: [u64; 2],
}

/// A segment's pages, as its mappings see them: the tmpfs file's.
pub struct SegmentPages {
    file: Arc<dyn FilePages>,
    size: u64,
}

impl FilePages for SegmentPages {
    fn end(&self) -> u64 {
        self.file.end()
    }
    fn frames(&self, off: u64, len: u64) -> SysResult<Vec<PageRun>> {
        self.file.frames(off, len)
    }
    fn check_shared_write(&self) -> SysResult<()> {
        self.file.check_shared_write()
    }
    fn sysv_segment_size(&self) -> Option<u64> {
        Some(self.size)
    }
}

/// How many pages of System V shared memory each user (by real uid) has
/// locked with SHM_LOCK: Linux's per-user UCOUNT_RLIMIT_MEMLOCK, which the
/// locker's RLIMIT_MEMLOCK bounds (user_shm_lock), apart from what mlock
/// counts per process.
#[derive(Default)]
pub struct ShmLocks(Mutex<HashMap<u32, u64>>);

impl ShmLocks {
    /// Charges `bytes` (in pages) to `uid`, unless that takes its total past
    /// `limit` (RLIMIT_MEMLOCK, in bytes) and it is not `capable` (CAP_IPC_LOCK).
    pub fn charge(self: &Arc<Self>, uid: u32, bytes: u64, limit: u64, capable: bool) -> Option<ShmLockCharge> {
        let pages = bytes.div_ceil(PAGE_SIZE);
        let mut users = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let total = users.get(&uid).copied().unwrap_or(0).saturating_add(pages);
        if total > limit / PAGE_SIZE && limit != u64::MAX && !capable {
            return None;
        }
        users.insert(uid, total);
        Some(ShmLockCharge { locks: self.clone(), uid, pages })
    }
}

/// A locked segment's charge to the user who locked it, given back at
/// SHM_UNLOCK or when the segment goes.
pub struct ShmLockCharge {
    locks: Arc<ShmLocks>,
    uid: u32,
    pages: u64,
}

impl Drop for ShmLockCharge {
    fn drop(&mut self) {
        let mut users = self.locks.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = users.get_mut(&self.uid) {
            *n = n.saturating_sub(self.pages);
            if *n == 0 {
                users.remove(&self.uid);
            }
        }
    }
}

pub struct Segment {
    pub ds: ShmidDs,
    /// SHM_LOCK's charge while the segment is locked (SHM_LOCKED).
    pub lock: Option<ShmLockCharge>,
    pub pages: Arc<SegmentPages>,
    /// The file's name, for its mappings' lines in /proc/PID/maps.
    pub dentry: Arc<crate::vfs::Dentry>,
}

impl Segment {
    /// Mappings of it now.
    pub fn attachments(&self) -> u64 {
        Arc::strong_count(&self.pages) as u64 - 1
    }
}

impl IpcObject for Segment {
    type Status = ShmidDs;
    fn perm(&self) -> &Ipc64Perm {
        &self.ds.perm
    }
    fn perm_mut(&mut self) -> &mut Ipc64Perm {
        &mut self.ds.perm
    }
    fn status(&self, pid: &dyn Fn(i32) -> i32) -> ShmidDs {
        ShmidDs { nattch: self.attachments(), cpid: pid(self.ds.cpid), lpid: pid(self.ds.lpid), ..self.ds }
    }
    fn changed(&mut self, now: i64) {
        self.ds.ctime = now;
    }
    const PROC_HEADER: &'static str = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n";
    /// Its resident size is what its tmpfs file holds; nothing is ever swapped.
    fn proc_line(&self, id: i32, pid: &dyn Fn(i32) -> i32) -> String {
        let (d, p) = (&self.ds, &self.ds.perm);
        let rss = self.dentry.inode.stat().map_or(0, |st| st.st_blocks.max(0) as u64 * 512);
        format!(
            "{:10} {:10}  {:4o} {:21} {:5} {:5}  {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10} {:21} {:21}\n",
            p.key, id, p.mode, d.segsz, pid(d.cpid), pid(d.lpid), self.attachments(), p.uid, p.gid, p.cuid, p.cgid, d.atime, d.dtime, d.ctime, rss, 0
        )
    }
}

pub type Segments = Namespace<Segment>;

impl Namespace<Segment> {
    /// Drops the removed segments no mapping holds any more; every shm call starts so.
    pub fn sweep(&self) {
        self.with(|reg| reg.retain(|s| s.ds.perm.mode & SHM_DEST == 0 || s.attachments() > 0));
    }

    /// shmget: the id of the segment with `key`, made (by `make_file`, given the
    /// size) if asked and allowed.
    pub fn get_segment(&self, tg: &ThreadGroup, key: i32, size: u64, flags: i32, now: i64, make_file: impl FnOnce(u64) -> SysResult<(Arc<crate::vfs::Dentry>, Arc<dyn FilePages>)>) -> SysResult<i32> {
        self.sweep();
        let fits = |s: &Segment| if size > s.ds.segsz { Err(errno!(EINVAL)) } else { Ok(()) };
        let used: u64 = self.with(|reg| reg.iter().map(|s| s.ds.segsz.div_ceil(rvisor_abi::PAGE_SIZE)).sum());
        let make = |perm: Ipc64Perm| {
            if size == 0 || size > SHMMAX {
                return Err(errno!(EINVAL));
            }
            if used.saturating_add(size.div_ceil(rvisor_abi::PAGE_SIZE)) > SHMALL {
                return Err(errno!(ENOSPC));
            }
            let (dentry, file) = make_file(size)?;
            let pages = Arc::new(SegmentPages { file, size });
            Ok(Segment { ds: ShmidDs { perm, segsz: size, ctime: now, cpid: tg.tgid, ..Default::default() }, lock: None, pages, dentry })
        };
        self.get(tg, key, flags, SHMMNI, fits, make)
    }
}
