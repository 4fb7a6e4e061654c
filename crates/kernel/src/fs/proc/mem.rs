//! /proc/[pid]/mem: a process's memory as a file, at offsets that are its
//! addresses. As Linux's, it reads and writes through protections (a
//! debugger's breakpoints go into read-only text, copied on write), stops a
//! read at the first unmapped byte (EIO if that is the first), and may be
//! opened only by a process that could ptrace the owner.

use crate::fs::simple::{copy_in, copy_out};
use crate::mm::{MemoryManager, UserBuffers};
use crate::task::Task;
use crate::vfs::{Dentry, FileDescription, StatusFlags};
use rvisor_abi::structs::Stat;
use rvisor_abi::{error, SysResult, UserAddr};
use std::sync::{Arc, Mutex};

/// The most one read or write moves.
const CHUNK: usize = 1 << 20;

pub struct MemFile {
    dentry: Arc<Dentry>,
    mm: Arc<MemoryManager>,
    flags: StatusFlags,
    /// The file position: an address. Leaf lock.
    pos: Mutex<u64>,
}

impl MemFile {
    pub fn new(dentry: Arc<Dentry>, mm: Arc<MemoryManager>, flags: u32) -> MemFile {
        MemFile { dentry, mm, flags: StatusFlags::new(flags), pos: Mutex::new(0) }
    }

    fn position(&self) -> std::sync::MutexGuard<'_, u64> {
        self.pos.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `io` at `offset` (pread, pwrite) or at the position, which then moves.
    fn at(&self, offset: Option<i64>, io: impl FnOnce(u64) -> SysResult<usize>) -> SysResult<usize> {
        if let Some(off) = offset {
            return io(off as u64);
        }
        let mut pos = self.position();
        let n = io(*pos)?;
        *pos = pos.wrapping_add(n as u64);
        Ok(n)
    }
}

impl FileDescription for MemFile {
    fn read(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        self.at(offset, |addr| {
            let mut buf = vec![0u8; (bufs.total() as usize).min(CHUNK)];
            let n = self.mm.read_bytes_remote(UserAddr(addr), &mut buf);
            if n == 0 && !buf.is_empty() {
                return error!(EIO);
            }
            copy_out(t, bufs, &buf[..n])
        })
    }

    fn write(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        let data = copy_in(t, bufs, (bufs.total() as usize).min(CHUNK))?;
        self.at(offset, |addr| {
            self.mm.write_bytes_force(UserAddr(addr), &data).map_err(|_| rvisor_abi::errno!(EIO))?;
            Ok(data.len())
        })
    }

    /// SEEK_SET and SEEK_CUR: the position is an address, any address.
    fn seek(&self, offset: i64, whence: i32) -> SysResult<i64> {
        let mut pos = self.position();
        *pos = match whence {
            0 => offset as u64,
            1 => pos.wrapping_add(offset as u64),
            _ => return error!(EINVAL),
        };
        Ok(*pos as i64)
    }

    fn stat(&self) -> SysResult<Stat> {
        self.dentry.inode.stat()
    }

    fn flags(&self) -> Option<&StatusFlags> {
        Some(&self.flags)
    }

    fn dentry(&self) -> Option<Arc<Dentry>> {
        Some(self.dentry.clone())
    }
}
