//! A userfaultfd's descriptor ("anon_inode:[userfaultfd]"): read(2) gives the
//! faults of its registered ranges as `struct uffd_msg`s, poll says when one
//! waits, and the ioctls negotiate the API, register ranges and resolve faults
//! (`mm::userfault` keeps the faults and fills the pages).

use super::eventfd::anon_inode_stat;
use super::user_io::RangeCursor;
use crate::mm::userfault::{UffdMsg, Userfault, FEATURES};
use crate::mm::{UserBuffers, UserRef};
use crate::task::Task;
use crate::vfs::readiness::{POLLERR, POLLIN, POLLRDNORM};
use crate::vfs::{FileDescription, StatusFlags, WaitQueue};
use rvisor_abi::structs::Stat;
use rvisor_abi::{errno, error, SysResult, UserAddr, PAGE_SIZE};
use std::sync::Arc;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

const UFFD_API: u64 = 0xaa;
const UFFDIO_API: u32 = 0xc018_aa3f;
const UFFDIO_REGISTER: u32 = 0xc020_aa00;
const UFFDIO_UNREGISTER: u32 = 0x8010_aa01;
const UFFDIO_WAKE: u32 = 0x8010_aa02;
const UFFDIO_COPY: u32 = 0xc028_aa03;
const UFFDIO_ZEROPAGE: u32 = 0xc020_aa04;
/// The ioctls UFFDIO_API and UFFDIO_REGISTER report, by their numbers.
const API_IOCTLS: u64 = 1 << 0x00 | 1 << 0x01 | 1 << 0x3f;
const RANGE_IOCTLS: u64 = 1 << 0x02 | 1 << 0x03 | 1 << 0x04;
const REGISTER_MODE_MISSING: u64 = 1;
const MODE_DONTWAKE: u64 = 1;
/// How much of a UFFDIO_COPY is read from the caller at a time.
const COPY_CHUNK: u64 = 1 << 20;
const MSG_SIZE: usize = std::mem::size_of::<UffdMsg>();

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct UffdioRange {
    start: u64,
    len: u64,
}

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct UffdioCopy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct UffdioZeropage {
    range: UffdioRange,
    mode: u64,
    zeropage: i64,
}

pub struct UserfaultFile {
    uf: Arc<Userfault>,
    flags: StatusFlags,
}

impl UserfaultFile {
    pub fn new(t: &Task, flags: u32) -> UserfaultFile {
        UserfaultFile { uf: Userfault::new(&t.mm), flags: StatusFlags::new(flags | crate::vfs::OpenFlags::RDWR) }
    }

    fn nonblocking(&self) -> bool {
        self.flags.get() & crate::vfs::OpenFlags::NONBLOCK != 0
    }

    /// A range the ioctls take: page-aligned, not empty, in user space.
    fn range(&self, t: &Task, start: u64, len: u64) -> SysResult<(u64, u64)> {
        let end = start.checked_add(len).ok_or_else(|| errno!(EINVAL))?;
        if start % PAGE_SIZE != 0 || len % PAGE_SIZE != 0 || len == 0 || start < PAGE_SIZE || end > t.kernel.platform.max_user_address() {
            return error!(EINVAL);
        }
        Ok((start, len))
    }

    fn api(&self, t: &Task, at: UserRef<UffdioApi>) -> SysResult<u64> {
        let mut a = t.mm.read_obj(at)?;
        let result = if a.api != UFFD_API || a.features & !FEATURES != 0 { error!(EINVAL) } else { self.uf.enable(a.features) };
        // Linux reports what it offers, or zeros when it refuses.
        (a.features, a.ioctls) = if result.is_ok() { (FEATURES, API_IOCTLS) } else { (0, 0) };
        if result.is_err() {
            a.api = 0;
        }
        t.mm.write_obj(at, &a)?;
        result.map(|()| 0)
    }

    fn register(&self, t: &Task, at: UserRef<UffdioRegister>) -> SysResult<u64> {
        let mut r = t.mm.read_obj(at)?;
        // Write-protect and minor-fault modes are not offered.
        if r.mode != REGISTER_MODE_MISSING {
            return error!(EINVAL);
        }
        let (start, len) = self.range(t, r.range.start, r.range.len)?;
        self.uf.mm()?.userfault_register(&self.uf, start, len)?;
        r.ioctls = RANGE_IOCTLS;
        t.mm.write_obj(at, &r)?;
        Ok(0)
    }

    fn copy(&self, t: &Task, at: UserRef<UffdioCopy>) -> SysResult<u64> {
        let mut c = t.mm.read_obj(at)?;
        if c.mode & !MODE_DONTWAKE != 0 || c.src.checked_add(c.len).is_none() {
            return error!(EINVAL);
        }
        let (dst, len) = self.range(t, c.dst, c.len)?;
        let mm = self.uf.mm()?;
        let mut done = 0;
        let mut failed = None;
        while done < len {
            let n = COPY_CHUNK.min(len - done);
            let mut bytes = vec![0u8; n as usize];
            let filled = t.mm.read_bytes(UserAddr(c.src + done), &mut bytes).and_then(|()| mm.userfault_fill(dst + done, n, Some(&bytes)));
            match filled {
                Ok(k) if k == n => done += k,
                Ok(k) => {
                    done += k;
                    break;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        c.copy = filled_field(done, failed);
        t.mm.write_obj(at, &c)?;
        self.resolved(dst, done, len, c.mode, failed)
    }

    fn zeropage(&self, t: &Task, at: UserRef<UffdioZeropage>) -> SysResult<u64> {
        let mut z = t.mm.read_obj(at)?;
        if z.mode & !MODE_DONTWAKE != 0 {
            return error!(EINVAL);
        }
        let (start, len) = self.range(t, z.range.start, z.range.len)?;
        let filled = self.uf.mm()?.userfault_fill(start, len, None);
        let (done, failed) = match filled {
            Ok(k) => (k, None),
            Err(e) => (0, Some(e)),
        };
        z.zeropage = filled_field(done, failed);
        t.mm.write_obj(at, &z)?;
        self.resolved(start, done, len, z.mode, failed)
    }

    /// After COPY or ZEROPAGE filled `done` of `len` bytes at `start`: wakes
    /// the faults there (unless DONTWAKE); EAGAIN when only part was filled.
    fn resolved(&self, start: u64, done: u64, len: u64, mode: u64, failed: Option<rvisor_abi::Errno>) -> SysResult<u64> {
        if done == 0 {
            return Err(failed.unwrap_or_else(|| errno!(EAGAIN)));
        }
        if mode & MODE_DONTWAKE == 0 {
            self.uf.wake(start, start + done);
        }
        if done == len { Ok(0) } else { error!(EAGAIN) }
    }
}

/// UFFDIO_COPY's `copy` and ZEROPAGE's `zeropage`: the bytes filled, or the
/// negated errno when none were.
fn filled_field(done: u64, failed: Option<rvisor_abi::Errno>) -> i64 {
    if done == 0 { failed.map_or(0, |e| -i64::from(e.code.0)) } else { done as i64 }
}

impl Drop for UserfaultFile {
    fn drop(&mut self) {
        self.uf.release();
    }
}

impl FileDescription for UserfaultFile {
    fn read(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if offset.is_some() {
            return error!(ESPIPE);
        }
        if !self.uf.ready() || bufs.total() < MSG_SIZE as u64 {
            return error!(EINVAL);
        }
        loop {
            let msgs = self.uf.take_messages(bufs.total() as usize / MSG_SIZE);
            if !msgs.is_empty() {
                let bytes: Vec<u8> = msgs.iter().flat_map(|m| m.as_bytes().iter().copied()).collect();
                let ranges = t.mm.translate_buffers(bufs, true)?;
                let n = RangeCursor::new(t.mm.memory_file(), ranges).write(&bytes);
                return if n == 0 { error!(EFAULT) } else { Ok(n) };
            }
            if self.nonblocking() {
                return error!(EAGAIN);
            }
            self.uf.readers.register(&t.thread);
            let r = t.block_until(None, || self.uf.has_unread());
            self.uf.readers.unregister(&t.thread);
            r?;
        }
    }

    fn write(&self, _t: &Task, _bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        error!(EINVAL)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(anon_inode_stat())
    }

    fn ioctl(&self, t: &Task, request: u32, arg: u64) -> SysResult<u64> {
        if request != UFFDIO_API && !self.uf.ready() {
            return error!(EINVAL);
        }
        let at = UserAddr(arg);
        match request {
            UFFDIO_API => self.api(t, UserRef::new(at)),
            UFFDIO_REGISTER => self.register(t, UserRef::new(at)),
            UFFDIO_UNREGISTER | UFFDIO_WAKE => {
                let r: UffdioRange = t.mm.read_obj(UserRef::new(at))?;
                let (start, len) = self.range(t, r.start, r.len)?;
                if request == UFFDIO_UNREGISTER {
                    self.uf.mm()?.userfault_unregister(&self.uf, start, len)?;
                }
                self.uf.wake(start, start + len);
                Ok(0)
            }
            UFFDIO_COPY => self.copy(t, UserRef::new(at)),
            UFFDIO_ZEROPAGE => self.zeropage(t, UserRef::new(at)),
            _ => error!(EINVAL),
        }
    }

    fn flags(&self) -> Option<&StatusFlags> {
        Some(&self.flags)
    }

    fn readiness(&self, mask: u32) -> u32 {
        let m = if !self.uf.ready() {
            POLLERR
        } else if self.uf.has_unread() {
            POLLIN | POLLRDNORM
        } else {
            0
        };
        m & mask
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.uf.readers)
    }

    fn proc_name(&self) -> Option<Vec<u8>> {
        Some(b"anon_inode:[userfaultfd]".to_vec())
    }
}
