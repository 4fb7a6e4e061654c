//! An open directory: getdents64 (and the old getdents) over the inode's entries,
//! with `.` and `..`.

use super::inode::{DT_DIR, DirEntry};
use super::{Dentry, DirentFormat, FileDescription};
use crate::mm::UserBuffers;
use crate::task::Task;
use rvisor_abi::structs::Stat;
use rvisor_abi::{errno, error, SysResult, UserAddr};
use std::sync::{Arc, Mutex};

pub struct DirFile {
    /// Its OFD and flock locks, released when it goes.
    locks: crate::vfs::locks::FileLocks,
    dentry: Arc<Dentry>,
    /// The listing taken at the first getdents, and how far the app has read.
    state: Mutex<(Option<Vec<DirEntry>>, usize)>,
    flags: u32,
}

impl DirFile {
    pub fn new(dentry: Arc<Dentry>, flags: u32) -> DirFile {
        DirFile { dentry, state: Mutex::new((None, 0)), flags, locks: Default::default() }
    }
}

impl Drop for DirFile {
    fn drop(&mut self) {
        crate::fs::inotify::closed(&self.dentry, false);
    }
}

/// Size of one record for `name`, 8-byte aligned: a linux_dirent64 (d_type
/// before the name, then its NUL), or an old linux_dirent (the name, its NUL,
/// then d_type in the record's last byte).
fn record_len(name: &[u8], format: DirentFormat) -> usize {
    match format {
        DirentFormat::Dirent64 => (19 + name.len() + 1).div_ceil(8) * 8,
        DirentFormat::Dirent => (18 + name.len() + 2).div_ceil(8) * 8,
    }
}

impl FileDescription for DirFile {
    fn read(&self, _t: &Task, _bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        error!(EISDIR)
    }

    fn write(&self, _t: &Task, _bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        error!(EBADF)
    }

    fn stat(&self) -> SysResult<Stat> {
        self.dentry.inode.stat()
    }

    fn status_flags(&self) -> u32 {
        self.flags
    }

    fn set_status_flags(&self, _flags: u32) {}

    fn seek(&self, offset: i64, whence: i32) -> SysResult<i64> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match whence {
            0 if offset >= 0 => {
                if offset == 0 {
                    st.0 = None;
                }
                st.1 = offset as usize;
                Ok(offset)
            }
            1 => Ok(st.1 as i64),
            _ => error!(EINVAL),
        }
    }

    fn getdents(&self, t: &Task, buf: UserAddr, len: usize, format: DirentFormat) -> SysResult<usize> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.0.is_none() {
            let me = self.dentry.inode.stat()?.st_ino;
            let parent = self.dentry.parent.as_ref().and_then(|p| p.inode.stat().ok()).map(|s| s.st_ino).unwrap_or(me);
            let mut all = vec![DirEntry { name: b".".to_vec(), ino: me, dtype: DT_DIR }, DirEntry { name: b"..".to_vec(), ino: parent, dtype: DT_DIR }];
            all.extend(self.dentry.inode.readdir()?);
            st.0 = Some(all);
        }
        let pos = st.1;
        let entries = st.0.as_ref().ok_or_else(|| errno!(EIO))?;
        let mut out = Vec::new();
        let mut next = pos;
        for e in entries.iter().skip(pos) {
            let rec = record_len(&e.name, format);
            if out.len() + rec > len {
                break;
            }
            let start = out.len();
            out.extend_from_slice(&e.ino.to_le_bytes());
            out.extend_from_slice(&((next + 1) as i64).to_le_bytes());
            out.extend_from_slice(&(rec as u16).to_le_bytes());
            if format == DirentFormat::Dirent64 {
                out.push(e.dtype);
            }
            out.extend_from_slice(&e.name);
            out.resize(start + rec, 0);
            if format == DirentFormat::Dirent {
                out[start + rec - 1] = e.dtype;
            }
            next += 1;
        }
        if out.is_empty() && next < entries.len() {
            return error!(EINVAL);
        }
        t.mm.write_bytes(buf, &out)?;
        st.1 = next;
        Ok(out.len())
    }

    fn dentry(&self) -> Option<Arc<Dentry>> {
        Some(self.dentry.clone())
    }
    fn file_locks(&self) -> Option<&crate::vfs::locks::FileLocks> {
        Some(&self.locks)
    }
}
