//! System V shared memory: segments are anonymous tmpfs files, attached as shared
//! mappings. A segment's attachment count is the number of VMAs that map it (as in
//! Linux, where splitting a VMA counts twice): each holds a reference to its
//! `SegmentPages`. A segment removed while attached lives on, with its id, until the
//! last mapping goes.

use super::{Ipc64Perm, Registry, IPC_CREAT, IPC_EXCL, IPC_PRIVATE};
use crate::mm::{FilePages, PageRun};
use crate::task::ThreadGroup;
use rvisor_abi::{errno, SysResult};
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

pub struct Segment {
    pub ds: ShmidDs,
    pub pages: Arc<SegmentPages>,
}

impl Segment {
    /// Mappings of it now.
    pub fn attachments(&self) -> u64 {
        Arc::strong_count(&self.pages) as u64 - 1
    }

    /// The status as IPC_STAT reports it.
    pub fn status(&self) -> ShmidDs {
        ShmidDs { nattch: self.attachments(), ..self.ds }
    }
}

#[derive(Default)]
pub struct Segments {
    reg: Mutex<Registry<Segment>>,
}

fn seq(s: &Segment) -> u16 {
    s.ds.perm.seq
}

impl Segments {
    /// Runs `f` on the registry, once removed segments no longer mapped are gone.
    pub fn with<R>(&self, f: impl FnOnce(&mut Registry<Segment>) -> R) -> R {
        let mut reg = self.reg.lock().unwrap_or_else(|e| e.into_inner());
        reg.retain(|s| s.ds.perm.mode & SHM_DEST == 0 || s.attachments() > 0);
        f(&mut reg)
    }

    /// shmget: the id of the segment with `key`, made if asked and allowed.
    pub fn get(&self, tg: &ThreadGroup, key: i32, size: u64, flags: i32, now: i64, make_file: impl FnOnce(u64) -> SysResult<Arc<dyn FilePages>>) -> SysResult<i32> {
        self.with(|reg| {
            if key != IPC_PRIVATE {
                if let Some((idx, s)) = reg.iter().find(|(_, s)| s.ds.perm.key == key) {
                    if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
                        return Err(errno!(EEXIST));
                    }
                    if size > s.ds.segsz {
                        return Err(errno!(EINVAL));
                    }
                    if !s.ds.perm.allows(tg, flags) {
                        return Err(errno!(EACCES));
                    }
                    return Ok(s.ds.perm.seq as i32 * super::SEQ_MULTIPLIER + idx);
                }
                if flags & IPC_CREAT == 0 {
                    return Err(errno!(ENOENT));
                }
            }
            if size == 0 || size > SHMMAX {
                return Err(errno!(EINVAL));
            }
            let used: u64 = reg.iter().map(|(_, s)| s.ds.segsz.div_ceil(rvisor_abi::PAGE_SIZE)).sum();
            if used.saturating_add(size.div_ceil(rvisor_abi::PAGE_SIZE)) > SHMALL {
                return Err(errno!(ENOSPC));
            }
            let file = make_file(size)?;
            let pages = Arc::new(SegmentPages { file, size });
            let pid = tg.tgid;
            let (id, _) = reg
                .insert(SHMMNI, |seq| Segment {
                    ds: ShmidDs { perm: Ipc64Perm::new(key, flags, seq, tg), segsz: size, ctime: now, cpid: pid, ..Default::default() },
                    pages,
                })
                .ok_or_else(|| errno!(ENOSPC))?;
            Ok(id)
        })
    }

    /// The segment with `id`, for `f`.
    pub fn lookup<R>(&self, id: i32, f: impl FnOnce(&mut Segment) -> SysResult<R>) -> SysResult<R> {
        self.with(|reg| f(reg.get(id, seq).ok_or_else(|| errno!(EINVAL))?))
    }
}
