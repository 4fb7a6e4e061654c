//! Typed access to application memory. Every Sentry read or write of user memory
//! goes through here: addresses are translated through the VMAs (with their
//! permissions) to memory-file offsets, populating on the way as a fault would.

use super::MemoryManager;
use rvisor_abi::structs::Iovec;
use rvisor_abi::{errno, page_down, SysResult, UserAddr, PAGE_SIZE};
use rvisor_memory::FileRange;
use std::marker::PhantomData;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Linux caps one read or write at this many bytes (MAX_RW_COUNT).
pub const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// Most iovecs one call may take (UIO_MAXIOV).
pub const UIO_MAXIOV: usize = 1024;

/// A typed pointer into application memory.
pub struct UserRef<T> {
    pub addr: UserAddr,
    _t: PhantomData<T>,
}

impl<T> Clone for UserRef<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for UserRef<T> {}

impl<T> UserRef<T> {
    pub fn new(addr: UserAddr) -> Self {
        UserRef { addr, _t: PhantomData }
    }

    pub fn is_null(&self) -> bool {
        self.addr.is_null()
    }

    /// The `i`-th element of an array starting here.
    pub fn at(&self, i: usize) -> SysResult<UserRef<T>> {
        let off = (i as u64).checked_mul(std::mem::size_of::<T>() as u64).ok_or_else(|| errno!(EFAULT))?;
        Ok(UserRef::new(self.addr.add(off)?))
    }
}

impl<T> From<UserAddr> for UserRef<T> {
    fn from(a: UserAddr) -> Self {
        UserRef::new(a)
    }
}

impl<T> std::fmt::Debug for UserRef<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.addr.fmt(f)
    }
}

/// The user buffers of one I/O request, in order.
#[derive(Clone, Debug, Default)]
pub struct UserBuffers {
    pub iovs: Vec<(UserAddr, u64)>,
}

impl UserBuffers {
    pub fn single(addr: UserAddr, len: usize) -> UserBuffers {
        UserBuffers { iovs: vec![(addr, (len as u64).min(MAX_RW_COUNT))] }
    }

    pub fn total(&self) -> u64 {
        self.iovs.iter().map(|&(_, l)| l).sum()
    }

    /// The first `max` bytes of these buffers.
    pub fn truncated(&self, max: u64) -> UserBuffers {
        let mut left = max;
        let mut iovs = Vec::new();
        for &(addr, len) in &self.iovs {
            if left == 0 {
                break;
            }
            iovs.push((addr, len.min(left)));
            left -= len.min(left);
        }
        UserBuffers { iovs }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Read,
    Write,
    /// The loader writes segments regardless of their final protection.
    Force,
    /// /proc reads another process's memory regardless of protection.
    Remote,
}

impl Access {
    fn writes(self) -> bool {
        matches!(self, Access::Write | Access::Force)
    }
}

impl MemoryManager {
    /// Translates `[addr, addr+len)` to memory-file ranges, stopping at the first
    /// byte the app could not access. Returns how many bytes were translated.
    fn translate(&self, addr: UserAddr, len: u64, access: Access, out: &mut Vec<FileRange>) -> usize {
        let mut st = self.lock();
        let mut at = addr.get();
        let Some(end) = at.checked_add(len) else { return 0 };
        while at < end {
            let Some(vstart) = st.vma_for_access(at) else { break };
            let v = &st.vmas[&vstart];
            let allowed = match access {
                Access::Read => v.perms.read || v.perms.exec,
                Access::Write => v.perms.write,
                Access::Force | Access::Remote => true,
            };
            if !allowed {
                break;
            }
            let pma = st.pmas.range(..=at).next_back().filter(|(_, p)| p.end > at).map(|(&s, p)| (s, p.clone()));
            let (mut ps, mut p) = match pma {
                Some(x) => x,
                None => {
                    if self.populate(&mut st, vstart, at, matches!(access, Access::Read | Access::Write)).is_err() {
                        break;
                    }
                    match st.pmas.range(..=at).next_back() {
                        Some((&s, p)) if p.end > at => (s, p.clone()),
                        _ => {
                            // A page a userfaultfd fills: the syscall waits for
                            // it, outside the lock, then looks again.
                            let uf = st.vmas[&vstart].userfault.clone().filter(|_| matches!(access, Access::Read | Access::Write));
                            drop(st);
                            match uf {
                                Some(uf) if uf.sentry_fault(at, access.writes()) => {
                                    st = self.lock();
                                    continue;
                                }
                                _ => return (at - addr.get()) as usize,
                            }
                        }
                    }
                }
            };
            // A Sentry write into frames shared copy-on-write (after fork, or a
            // private file mapping over a file's pages) gets this address space its
            // own copy first, as an app store would.
            if p.cow && access.writes() {
                let perms = st.vmas[&vstart].perms;
                match self.break_cow(&mut st, ps, at, perms) {
                    Ok(replaced) => st.unsynced.extend(replaced),
                    Err(_) => break,
                }
                match st.pmas.range(..=at).next_back() {
                    Some((&s, np)) if np.end > at => (ps, p) = (s, np.clone()),
                    _ => break,
                }
            }
            let chunk_end = p.end.min(end);
            // A Sentry store into clean pages of a file that tracks stores (a
            // read(2) into a shared mapping of it) dirties them, as an app store.
            // The bytes land after this, so this address space counts as a writer:
            // another process's msync between the two must not clean the pages.
            if p.clean && access.writes() {
                if let Some(f) = &st.vmas[&vstart].file {
                    f.pages.page_mkwrite(f.offset + (at - vstart), chunk_end - at, Some(&self.mapper));
                }
            }
            let off = p.file_offset(ps, at);
            match out.last_mut() {
                Some(last) if last.end() == off => last.len += chunk_end - at,
                _ => out.push(FileRange { start: off, len: chunk_end - at }),
            }
            at = chunk_end;
        }
        (at - addr.get()) as usize
    }

    pub(super) fn translate_all(&self, addr: UserAddr, len: u64, access: Access) -> SysResult<Vec<FileRange>> {
        let mut out = Vec::new();
        if self.translate(addr, len, access, &mut out) as u64 != len {
            return Err(errno!(EFAULT));
        }
        Ok(out)
    }

    /// Translates I/O buffers for a host read or write. Linux validates lazily: a
    /// transfer stops at the first bad byte, and fails with EFAULT only if nothing
    /// at all could be transferred (`read(fd, NULL, 0)` succeeds).
    pub fn translate_buffers(&self, bufs: &UserBuffers, for_write_to_user: bool) -> SysResult<Vec<FileRange>> {
        let access = if for_write_to_user { Access::Write } else { Access::Read };
        let mut out = Vec::new();
        for &(addr, len) in &bufs.iovs {
            if len == 0 {
                continue;
            }
            if (self.translate(addr, len, access, &mut out) as u64) < len {
                if out.is_empty() {
                    return Err(errno!(EFAULT));
                }
                break;
            }
        }
        Ok(out)
    }

    pub fn read_bytes(&self, addr: UserAddr, buf: &mut [u8]) -> SysResult<()> {
        let mut done = 0;
        for r in self.translate_all(addr, buf.len() as u64, Access::Read)? {
            self.mf.read(r.start, &mut buf[done..done + r.len as usize]);
            done += r.len as usize;
        }
        Ok(())
    }

    /// Reads another process's memory as /proc/[pid]/{cmdline,environ} do
    /// (Linux's access_remote_vm with FOLL_FORCE): protections are ignored and
    /// nothing is mapped into the platform. Stops at the first unmapped byte and
    /// returns how many bytes were read.
    pub fn read_bytes_remote(&self, addr: UserAddr, buf: &mut [u8]) -> usize {
        let mut ranges = Vec::new();
        let n = self.translate(addr, buf.len() as u64, Access::Remote, &mut ranges);
        let mut done = 0;
        for r in ranges {
            self.mf.read(r.start, &mut buf[done..done + r.len as usize]);
            done += r.len as usize;
        }
        n.min(done)
    }

    pub fn write_bytes(&self, addr: UserAddr, buf: &[u8]) -> SysResult<()> {
        self.write_with(addr, buf, Access::Write)
    }

    /// Writes regardless of the mapping's protection (the ELF loader and stack setup).
    pub fn write_bytes_force(&self, addr: UserAddr, buf: &[u8]) -> SysResult<()> {
        self.write_with(addr, buf, Access::Force)
    }

    fn write_with(&self, addr: UserAddr, buf: &[u8], access: Access) -> SysResult<()> {
        let mut done = 0;
        for r in self.translate_all(addr, buf.len() as u64, access)? {
            self.mf.write(r.start, &buf[done..done + r.len as usize]);
            done += r.len as usize;
        }
        Ok(())
    }

    pub fn zero(&self, addr: UserAddr, len: u64) -> SysResult<()> {
        for r in self.translate_all(addr, len, Access::Write)? {
            self.mf.zero(r.start, r.len as usize);
        }
        Ok(())
    }

    pub fn read_obj<T: FromBytes + IntoBytes>(&self, r: UserRef<T>) -> SysResult<T> {
        let mut v = T::new_zeroed();
        self.read_bytes(r.addr, v.as_mut_bytes())?;
        Ok(v)
    }

    pub fn write_obj<T: IntoBytes + Immutable>(&self, r: UserRef<T>, v: &T) -> SysResult<()> {
        self.write_bytes(r.addr, v.as_bytes())
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
    /// ENAMETOOLONG if no NUL is found within `max`.
    pub fn read_cstr(&self, addr: UserAddr, max: usize) -> SysResult<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < max {
            let page_end = page_down(at.get()) + PAGE_SIZE;
            let n = ((page_end - at.get()) as usize).min(max - out.len());
            let mut chunk = vec![0u8; n];
            self.read_bytes(at, &mut chunk)?;
            if let Some(i) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..i]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
            at = at.add(n as u64)?;
        }
        Err(errno!(ENAMETOOLONG))
    }

    /// Reads an iovec array for readv/writev and friends.
    pub fn read_iovecs(&self, addr: UserAddr, count: usize) -> SysResult<UserBuffers> {
        if count > UIO_MAXIOV {
            return Err(errno!(EINVAL));
        }
        let mut raw = vec![Iovec::zeroed(); count];
        self.read_bytes(addr, raw.as_mut_slice().as_mut_bytes())?;
        let mut total: u64 = 0;
        let mut iovs = Vec::with_capacity(count);
        for iov in raw {
            if iov.len > i64::MAX as u64 {
                return Err(errno!(EINVAL));
            }
            let len = iov.len.min(MAX_RW_COUNT - total);
            total += len;
            iovs.push((UserAddr(iov.base), len));
        }
        Ok(UserBuffers { iovs })
    }
}
