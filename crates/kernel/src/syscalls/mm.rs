//! Memory syscalls: brk, mmap, munmap, mprotect, mremap, madvise, msync, mincore,
//! and the mlock family.

use crate::mm::ops::{Admission, Placement};
use crate::mm::Mlock;
use crate::task::{Task, RLIMIT_AS, RLIMIT_DATA, RLIMIT_MEMLOCK, RLIM_INFINITY};
use crate::vfs::{Fd, Mount, MountFlags};
use rvisor_abi::{consts, errno, error, page_up, SysResult, UserAddr, PAGE_SIZE};
use rvisor_platform::Perms;

const PROT_MASK: u32 = 0x7;
const PROT_GROWSDOWN: u32 = 0x0100_0000;
const PROT_GROWSUP: u32 = 0x0200_0000;

const MAP_SHARED: u32 = 0x01;
const MAP_PRIVATE: u32 = 0x02;
const MAP_SHARED_VALIDATE: u32 = 0x03;
const MAP_TYPE: u32 = 0x0f;
const MAP_FIXED: u32 = 0x10;
const MAP_ANONYMOUS: u32 = 0x20;
const MAP_GROWSDOWN: u32 = 0x100;
const MAP_LOCKED: u32 = 0x2000;
const MAP_POPULATE: u32 = 0x8000;
const MAP_NONBLOCK: u32 = 0x10000;
const MAP_FIXED_NOREPLACE: u32 = 0x100000;
/// Flags MAP_SHARED_VALIDATE accepts (Linux's LEGACY_MAP_MASK plus FIXED_NOREPLACE).
const MAP_KNOWN: u32 = 0x1f_ffff;

const MREMAP_MAYMOVE: u32 = 1;
const MREMAP_FIXED: u32 = 2;
const MREMAP_DONTUNMAP: u32 = 4;

const MS_ASYNC: u32 = 1;
const MS_INVALIDATE: u32 = 2;
const MS_SYNC: u32 = 4;

const MADV_FREE: i32 = 8;
const MADV_REMOVE: i32 = 9;
const MADV_DONTNEED_LOCKED: i32 = 24;
const MADV_DONTNEED: i32 = 4;
const MADV_WILLNEED: i32 = 3;
const MADV_COLD: i32 = 20;
const MADV_PAGEOUT: i32 = 21;
const MADV_COLLAPSE: i32 = 25;
const MADV_DONTFORK: i32 = 10;
const MADV_DOFORK: i32 = 11;
const MADV_WIPEONFORK: i32 = 18;
const MADV_KEEPONFORK: i32 = 19;

fn perms(prot: u32) -> SysResult<Perms> {
    if prot & !(PROT_MASK | PROT_GROWSDOWN | PROT_GROWSUP) != 0 {
        return error!(EINVAL);
    }
    Ok(Perms::from_prot(prot & PROT_MASK))
}

/// PR_SET_MDWE: no writable and executable memory, and no memory made
/// executable after it was mapped.
fn refuses_exec_gain(t: &Task) -> bool {
    t.tg.mm_flags().contains(crate::task::MmFlags::MDWE)
}

/// The limits a new mapping keeps to (checked as it is inserted): RLIMIT_AS,
/// RLIMIT_DATA for a `data` mapping (`Vma::is_data`), RLIMIT_MEMLOCK for a
/// `locked` one.
pub(super) fn admission(t: &Task, data: bool, locked: bool) -> Admission {
    let data_limit = t.tg.rlimit(RLIMIT_DATA);
    Admission {
        memlock: locked.then(|| if t.tg.capable(consts::CAP_IPC_LOCK) { RLIM_INFINITY } else { t.tg.rlimit(RLIMIT_MEMLOCK).cur }),
        address_space: t.tg.rlimit(RLIMIT_AS).cur,
        data: data.then_some((data_limit.cur, data_limit.max)),
    }
}

/// Whether the caller may lock memory at all (Linux's can_do_mlock).
fn can_mlock(t: &Task) -> bool {
    t.tg.rlimit(RLIMIT_MEMLOCK).cur != 0 || t.tg.capable(consts::CAP_IPC_LOCK)
}

/// Whether `grow` more locked bytes stay within RLIMIT_MEMLOCK, or the caller
/// has CAP_IPC_LOCK (Linux's mlock_future_ok).
fn mlock_fits(t: &Task, grow: u64) -> bool {
    t.mm.admit(&Admission { address_space: RLIM_INFINITY, ..admission(t, false, true) }, grow, None).is_ok()
}

pub fn sys_brk(t: &mut Task, addr: UserAddr) -> SysResult<u64> {
    let layout = t.mm.layout();
    let brk = layout.brk;
    // The heap and the data segment together may not pass RLIMIT_DATA, for
    // any new break, lower ones too (Linux's check_data_rlimit).
    let data_limit = t.tg.rlimit(RLIMIT_DATA).cur;
    if let Some(heap) = addr.get().checked_sub(layout.brk_start) {
        if data_limit != RLIM_INFINITY && heap.saturating_add(layout.end_data.saturating_sub(layout.start_data)) > data_limit {
            return Ok(brk);
        }
    }
    // A break past RLIMIT_AS, or past RLIMIT_MEMLOCK after mlockall(MCL_FUTURE),
    // fails as any other: the old break comes back.
    let adm = admission(t, true, t.mm.future_mlock() != Mlock::Unlocked);
    let new = t.mm.brk(t.ctx.as_mut(), addr.get(), &adm);
    if let (Some(old_top), Some(new_top)) = (page_up(brk), page_up(new)) {
        if new_top > old_top {
            t.mm.prefault(old_top, new_top, true);
        }
    }
    Ok(new)
}

pub fn sys_mmap(t: &mut Task, addr: UserAddr, len: u64, prot: u32, flags: u32, fd: i32, offset: u64) -> SysResult<u64> {
    let perms = perms(prot)?;
    if perms.write && perms.exec && refuses_exec_gain(t) {
        return error!(EACCES);
    }
    let shared = match flags & MAP_TYPE {
        MAP_SHARED => true,
        MAP_PRIVATE => false,
        MAP_SHARED_VALIDATE if flags & !MAP_KNOWN == 0 => true,
        MAP_SHARED_VALIDATE => return error!(EOPNOTSUPP),
        _ => return error!(EINVAL),
    };
    if len == 0 || offset % PAGE_SIZE != 0 {
        return error!(EINVAL);
    }
    let pages = page_up(len).ok_or_else(|| errno!(ENOMEM))?;
    let placement = if flags & MAP_FIXED_NOREPLACE != 0 {
        Placement::FixedNoReplace(addr.get())
    } else if flags & MAP_FIXED != 0 {
        Placement::Fixed(addr.get())
    } else {
        Placement::Hint(addr.get())
    };
    let data = perms.write && !shared && flags & MAP_GROWSDOWN == 0;
    if flags & MAP_LOCKED != 0 && !can_mlock(t) {
        return error!(EPERM);
    }
    let locked = flags & MAP_LOCKED != 0 || t.mm.future_mlock() != Mlock::Unlocked;
    // Checked first as Linux's do_mmap does (before the file's checks), and
    // with the rest of `adm` again as the mapping goes in.
    if locked && !mlock_fits(t, pages) {
        return error!(EAGAIN);
    }
    let adm = admission(t, data, locked);
    let addr = if flags & MAP_ANONYMOUS != 0 {
        t.mm.map_anonymous(t.ctx.as_mut(), placement, len, perms, shared, flags & MAP_GROWSDOWN != 0, Some(&adm))?
    } else {
        map_fd(t, placement, len, perms, shared, fd, offset, &adm)?
    };
    // MAP_LOCKED locks (and populates) it; MAP_POPULATE (unless MAP_NONBLOCK)
    // populates it all, mlockall(MCL_FUTURE) what it locked.
    let newly_locked = flags & MAP_LOCKED != 0 && t.mm.future_mlock() == Mlock::Unlocked;
    if newly_locked {
        t.mm.set_mlock(addr, len, Mlock::Locked)?;
    }
    let populate = flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE;
    if populate || (locked && !newly_locked) {
        t.mm.prefault(addr, addr.saturating_add(pages), !populate);
    }
    Ok(addr)
}

/// The file part of mmap: `fd`'s mapping at `placement`, within `adm`.
#[allow(clippy::too_many_arguments)]
fn map_fd(t: &mut Task, placement: Placement, len: u64, perms: Perms, shared: bool, fd: i32, offset: u64, adm: &Admission) -> SysResult<u64> {
    let file = t.fds.get(crate::vfs::Fd(fd))?;
    let access = crate::vfs::OpenFlags(file.status_flags());
    if !access.readable() || (shared && perms.write && !access.writable()) {
        return error!(EACCES);
    }
    let Some(dentry) = file.dentry().filter(|d| !d.is_dir()) else { return error!(ENODEV) };
    // Nothing from a noexec mount runs: not mapped executable, nor made so later.
    let noexec = Mount::of_has(&dentry, MountFlags::NOEXEC);
    if noexec && perms.exec {
        return error!(EPERM);
    }
    let addr = if let Some(pages) = dentry.inode.file_pages(t.mm.memory_file())? {
        if shared && perms.write {
            pages.check_shared_write()?;
        }
        let may_write = !shared || access.writable();
        let file = crate::mm::VmFile { dentry, writable: access.writable() };
        t.mm.map_file(t.ctx.as_mut(), placement, len, perms, shared, may_write, pages, offset, file, Some(adm))?
    } else if is_dev_zero(&dentry)? {
        // Linux's mmap_zero: private is anonymous memory, shared a shared
        // anonymous mapping.
        t.mm.map_anonymous(t.ctx.as_mut(), placement, len, perms, shared, false, Some(adm))?
    } else {
        // What has no pages (devices, procfs, pipes) has no mmap in Linux either.
        return error!(ENODEV);
    };
    if noexec {
        t.mm.deny_exec(addr, len);
    }
    Ok(addr)
}

/// Whether `d` is the zero device (1:5), whichever file system its node is on.
fn is_dev_zero(d: &crate::vfs::Dentry) -> SysResult<bool> {
    use crate::vfs::inode::{S_IFCHR, S_IFMT};
    let st = d.inode.stat()?;
    Ok(st.st_mode & S_IFMT == S_IFCHR && st.st_rdev == crate::fs::simple::makedev(1, 5))
}

pub fn sys_munmap(t: &mut Task, addr: UserAddr, len: u64) -> SysResult<()> {
    t.mm.munmap(t.ctx.as_mut(), addr.get(), len)
}

pub fn sys_mprotect(t: &mut Task, addr: UserAddr, len: u64, prot: u32) -> SysResult<()> {
    let perms = perms(prot)?;
    // Private memory made writable becomes data (RLIMIT_DATA).
    t.mm.mprotect(addr.get(), len, perms, refuses_exec_gain(t), &admission(t, true, false))
}

pub fn sys_mremap(t: &mut Task, old_addr: UserAddr, old_len: u64, new_len: u64, flags: u32, new_addr: UserAddr) -> SysResult<u64> {
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
        return error!(EINVAL);
    }
    if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
        return error!(EINVAL);
    }
    // MREMAP_DONTUNMAP always moves and never resizes (the lengths in pages, as
    // Linux 6.17 compares them; before, as given).
    if flags & MREMAP_DONTUNMAP != 0 {
        if flags & MREMAP_MAYMOVE == 0 || page_up(old_len) != page_up(new_len) {
            return error!(EINVAL);
        }
        let adm = admission(t, true, false);
        return t.mm.mremap_dontunmap(t.ctx.as_mut(), old_addr.get(), old_len, new_addr.get(), flags & MREMAP_FIXED != 0, &adm);
    }
    let fixed = (flags & MREMAP_FIXED != 0).then_some(new_addr.get());
    // The mapping grows within RLIMIT_AS, RLIMIT_DATA if it is data, and
    // RLIMIT_MEMLOCK (EAGAIN) if it is locked: the memory manager picks which
    // as it grows it.
    let adm = admission(t, true, true);
    let locked = t.mm.mlock_at(old_addr.get()).is_some_and(|m| m != Mlock::Unlocked);
    let at = t.mm.mremap(t.ctx.as_mut(), old_addr.get(), old_len, new_len, flags & MREMAP_MAYMOVE != 0, fixed, &adm)?;
    // A locked mapping grows locked: what it gained is populated.
    if let (true, Some(old), Some(new)) = (locked, page_up(old_len), page_up(new_len)) {
        if new > old {
            t.mm.prefault(at.saturating_add(old), at.saturating_add(new), true);
        }
    }
    Ok(at)
}

/// madvise's checks of a range: an aligned start, a length that rounds up to
/// whole pages (EINVAL otherwise); the rounded length.
fn advised_len(addr: UserAddr, len: u64) -> SysResult<u64> {
    if addr.get() % PAGE_SIZE != 0 {
        return error!(EINVAL);
    }
    page_up(len).ok_or_else(|| errno!(EINVAL))
}

pub fn sys_madvise(t: &mut Task, addr: UserAddr, len: u64, advice: i32) -> SysResult<()> {
    let len = advised_len(addr, len)?;
    if len == 0 {
        return if (0..=25).contains(&advice) { Ok(()) } else { error!(EINVAL) };
    }
    // FREE, REMOVE, DONTNEED_LOCKED and the ones below discard.
    if matches!(advice, MADV_DONTNEED | MADV_FREE | MADV_REMOVE | MADV_DONTNEED_LOCKED | MADV_DONTFORK | MADV_WIPEONFORK) {
        t.mm.may_discard(addr.get(), len)?;
    }
    // Locked pages are discarded only when the caller says so (DONTNEED_LOCKED).
    if matches!(advice, MADV_DONTNEED | MADV_FREE) && t.mm.mapped_bytes(addr.get(), addr.get().saturating_add(len), |v| v.mlock != Mlock::Unlocked) > 0 {
        return error!(EINVAL);
    }
    match advice {
        MADV_DONTNEED | MADV_DONTNEED_LOCKED => t.mm.dont_need(t.ctx.as_mut(), addr.get(), len),
        MADV_DONTFORK => t.mm.set_on_fork(addr.get(), len, |f| f.skip = true),
        MADV_DOFORK => t.mm.set_on_fork(addr.get(), len, |f| f.skip = false),
        MADV_WIPEONFORK => t.mm.set_on_fork(addr.get(), len, |f| f.wipe = true),
        MADV_KEEPONFORK => t.mm.set_on_fork(addr.get(), len, |f| f.wipe = false),
        // NORMAL, RANDOM, SEQUENTIAL, WILLNEED, FREE, REMOVE, and the hints
        // (MERGEABLE .. COLLAPSE) change nothing we must honour; the range must be
        // mapped all the same.
        0..=3 | 8..=25 => t.mm.require_mapped(addr.get(), len),
        _ => error!(EINVAL),
    }
}

/// process_madvise: the hints one process may give about another's memory
/// (Linux 6.8's: COLD, PAGEOUT, WILLNEED, COLLAPSE), which change nothing here,
/// range by range as madvise checks them; the bytes advised before a range
/// failed, or its error.
pub fn sys_process_madvise(t: &mut Task, pidfd: Fd, iov: UserAddr, vlen: u64, advice: i32, flags: u32) -> SysResult<u64> {
    if flags != 0 {
        return error!(EINVAL);
    }
    let ranges = t.mm.read_iovecs(iov, usize::try_from(vlen).map_err(|_| errno!(EINVAL))?)?;
    let (tg, _) = super::pidfd::pidfd_target(t, pidfd)?;
    if tg.is_reaped() {
        return error!(ESRCH);
    }
    if !matches!(advice, MADV_WILLNEED | MADV_COLD | MADV_PAGEOUT | MADV_COLLAPSE) {
        return error!(EINVAL);
    }
    let leader = tg.threads().into_iter().next().ok_or_else(|| errno!(ESRCH))?;
    if !crate::task::ptrace::may_trace(&t.tg, &tg) || crate::landlock::scope::may_trace(&t.thread, &leader).is_err() {
        return error!(EACCES);
    }
    let mm = tg.threads().iter().find_map(|th| th.resources()).map(|r| r.mm).ok_or_else(|| errno!(ESRCH))?;
    if !t.tg.capable(consts::CAP_SYS_NICE) {
        return error!(EPERM);
    }
    let mut advised = 0;
    for &(addr, len) in &ranges.iovs {
        let checked = advised_len(addr, len).and_then(|n| if n == 0 { Ok(()) } else { mm.require_mapped(addr.get(), n) });
        if let Err(e) = checked {
            return if advised > 0 { Ok(advised) } else { Err(e) };
        }
        advised += len;
    }
    Ok(advised)
}

pub fn sys_msync(t: &mut Task, addr: UserAddr, len: u64, flags: u32) -> SysResult<()> {
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0 || (flags & MS_ASYNC != 0 && flags & MS_SYNC != 0) {
        return error!(EINVAL);
    }
    // Invalidating locked pages is EBUSY: Linux's walk meets the locked mapping
    // before it gives up at a hole (only a plain MS_ASYNC stops at the first).
    let end = addr.get().checked_add(len).and_then(page_up);
    if let (true, 0, Some(end)) = (flags & MS_INVALIDATE != 0, addr.get() % PAGE_SIZE, end) {
        if t.mm.mapped_bytes(addr.get(), end, |v| v.mlock != Mlock::Unlocked) > 0 {
            return error!(EBUSY);
        }
    }
    t.mm.msync(t.ctx.as_mut(), addr.get(), len)
}

const MCL_CURRENT: i32 = 1;
const MCL_FUTURE: i32 = 2;
const MCL_ONFAULT: i32 = 4;
const MLOCK_ONFAULT: u32 = 1;

/// mlock and friends: the memory file is never swapped out, so a lock changes
/// only what is counted against RLIMIT_MEMLOCK (and shown in /proc), and that
/// locked pages are populated at once.
pub fn sys_mlock(t: &mut Task, addr: UserAddr, len: u64) -> SysResult<()> {
    mlock(t, addr, len, Mlock::Locked)
}

pub fn sys_mlock2(t: &mut Task, addr: UserAddr, len: u64, flags: u32) -> SysResult<()> {
    match flags {
        0 => mlock(t, addr, len, Mlock::Locked),
        MLOCK_ONFAULT => mlock(t, addr, len, Mlock::OnFault),
        _ => error!(EINVAL),
    }
}

/// Linux's do_mlock: what the range has locked already counts once against
/// RLIMIT_MEMLOCK (ENOMEM past it; EPERM when it is 0).
fn mlock(t: &mut Task, addr: UserAddr, len: u64, mode: Mlock) -> SysResult<()> {
    if !can_mlock(t) {
        return error!(EPERM);
    }
    let start = addr.get() & !(PAGE_SIZE - 1);
    let end = addr.get().checked_add(len).and_then(page_up).ok_or_else(|| errno!(EINVAL))?;
    let already = t.mm.mapped_bytes(start, end, |v| v.mlock != Mlock::Unlocked);
    if !mlock_fits(t, (end - start).saturating_sub(already)) {
        return error!(ENOMEM);
    }
    t.mm.set_mlock(addr.get(), len, mode)
}

pub fn sys_munlock(t: &mut Task, addr: UserAddr, len: u64) -> SysResult<()> {
    t.mm.set_mlock(addr.get(), len, Mlock::Unlocked)
}

pub fn sys_mlockall(t: &mut Task, flags: i32) -> SysResult<()> {
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT {
        return error!(EINVAL);
    }
    if !can_mlock(t) {
        return error!(EPERM);
    }
    let mode = if flags & MCL_ONFAULT != 0 { Mlock::OnFault } else { Mlock::Locked };
    let current = flags & MCL_CURRENT != 0;
    // Every mapping counts, as Linux compares total_vm with the limit.
    let limit = t.tg.rlimit(RLIMIT_MEMLOCK).cur;
    if current && limit != RLIM_INFINITY && !t.tg.capable(consts::CAP_IPC_LOCK) && t.mm.mapped_bytes(0, u64::MAX, |_| true) > limit {
        return error!(ENOMEM);
    }
    let future = if flags & MCL_FUTURE != 0 { mode } else { Mlock::Unlocked };
    t.mm.set_mlock_all(future, current.then_some(mode));
    Ok(())
}

pub fn sys_munlockall(t: &mut Task) -> SysResult<()> {
    t.mm.set_mlock_all(Mlock::Unlocked, Some(Mlock::Unlocked));
    Ok(())
}

pub fn sys_mincore(t: &mut Task, addr: UserAddr, len: u64, vec: UserAddr) -> SysResult<()> {
    let v = t.mm.mincore(addr.get(), len)?;
    t.mm.write_bytes(vec, &v)
}

pub fn sys_process_vm_readv(t: &mut Task, pid: i32, local: UserAddr, liovcnt: u64, remote: UserAddr, riovcnt: u64, flags: u64) -> SysResult<usize> {
    process_vm(t, pid, local, liovcnt, remote, riovcnt, flags, false)
}

pub fn sys_process_vm_writev(t: &mut Task, pid: i32, local: UserAddr, liovcnt: u64, remote: UserAddr, riovcnt: u64, flags: u64) -> SysResult<usize> {
    process_vm(t, pid, local, liovcnt, remote, riovcnt, flags, true)
}

/// Copies between the caller's buffers and another process's, remote buffer by
/// remote buffer, through a Sentry buffer. Protections count (a PROT_NONE page is
/// EFAULT); a transfer cut short by a fault returns what it moved, and fails only
/// if that is nothing.
#[allow(clippy::too_many_arguments)]
fn process_vm(t: &mut Task, pid: i32, local: UserAddr, liovcnt: u64, remote: UserAddr, riovcnt: u64, flags: u64, write: bool) -> SysResult<usize> {
    if flags != 0 {
        return error!(EINVAL);
    }
    let local = t.mm.read_iovecs(local, usize::try_from(liovcnt).map_err(|_| errno!(EINVAL))?)?;
    let remote = t.mm.read_iovecs(remote, usize::try_from(riovcnt).map_err(|_| errno!(EINVAL))?)?;
    let thread = t.pid_ns().thread(pid).ok_or_else(|| errno!(ESRCH))?;
    if !crate::task::ptrace::may_trace(&t.tg, &thread.tg) {
        return error!(EPERM);
    }
    crate::landlock::scope::may_trace(&t.thread, &thread)?;
    let theirs = thread.resources().ok_or_else(|| errno!(ESRCH))?.mm;
    let mut locals = local.iovs.iter().copied().filter(|&(_, l)| l > 0);
    let mut cur = locals.next();
    let mut done = 0usize;
    'remote: for &(raddr, rlen) in remote.iovs.iter().filter(|&&(_, l)| l > 0) {
        let mut off = 0u64;
        while off < rlen {
            let Some((laddr, llen)) = cur else { break 'remote };
            // A page at a time on either side, so that a fault cuts the transfer
            // exactly where it is.
            let r_at = raddr.get().wrapping_add(off);
            let to_page = |a: u64| PAGE_SIZE - a % PAGE_SIZE;
            let n = (rlen - off).min(llen).min(to_page(r_at)).min(to_page(laddr.get()));
            let mut buf = vec![0u8; n as usize];
            let (from, to) = if write { (&t.mm, &theirs) } else { (&theirs, &t.mm) };
            let (src, dst) = if write { (laddr, raddr.add(off)?) } else { (raddr.add(off)?, laddr) };
            if from.read_bytes(src, &mut buf).is_err() || to.write_bytes(dst, &buf).is_err() {
                break 'remote;
            }
            done += n as usize;
            off += n;
            cur = if n == llen { locals.next() } else { Some((laddr.add(n)?, llen - n)) };
        }
    }
    if done == 0 && remote.total() > 0 && local.total() > 0 {
        return error!(EFAULT);
    }
    Ok(done)
}

const MEMBARRIER_CMD_QUERY: i32 = 0;
const MEMBARRIER_CMD_GLOBAL: i32 = 1;
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: i32 = 2;
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: i32 = 4;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: i32 = 8;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: i32 = 16;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: i32 = 32;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: i32 = 64;
const MEMBARRIER_CMD_GET_REGISTRATIONS: i32 = 512;

/// membarrier: the barrier is the host's, on every CPU that runs a stub thread (the
/// stubs registered for it). Restartable sequences are not supported, so neither are
/// their commands.
pub fn sys_membarrier(t: &mut Task, cmd: i32, flags: u32, _cpu: i32) -> SysResult<i32> {
    use std::sync::atomic::Ordering;
    const SUPPORTED: i32 = MEMBARRIER_CMD_GLOBAL
        | MEMBARRIER_CMD_GLOBAL_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
        | MEMBARRIER_CMD_PRIVATE_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
        | MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE
        | MEMBARRIER_CMD_GET_REGISTRATIONS;
    if flags != 0 {
        return error!(EINVAL);
    }
    let registered = &t.tg.membarrier;
    // A host without membarrier (before Linux 4.3) cannot give one.
    let barrier = || rvisor_platform::hostcall::barrier_on_stubs().map(|()| 0).map_err(|_| errno!(ENOSYS));
    match cmd {
        MEMBARRIER_CMD_QUERY => Ok(SUPPORTED),
        MEMBARRIER_CMD_GET_REGISTRATIONS => Ok(registered.load(Ordering::Relaxed) as i32),
        MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE => {
            registered.fetch_or(cmd as u32, Ordering::Relaxed);
            Ok(0)
        }
        MEMBARRIER_CMD_GLOBAL | MEMBARRIER_CMD_GLOBAL_EXPEDITED => barrier(),
        MEMBARRIER_CMD_PRIVATE_EXPEDITED | MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE => {
            // Each needs its registration (the command's bit shifted once).
            if registered.load(Ordering::Relaxed) & ((cmd as u32) << 1) == 0 {
                return error!(EPERM);
            }
            // Alone in its address space, a thread has nobody to order against.
            if t.tg.threads().len() == 1 {
                return Ok(0);
            }
            barrier()
        }
        _ => error!(EINVAL),
    }
}

const UFFD_USER_MODE_ONLY: i32 = 1;

/// userfaultfd(2): a descriptor through which the process handles its own
/// missing pages (`mm::userfault`). Without UFFD_USER_MODE_ONLY it takes
/// CAP_SYS_PTRACE, as with vm.unprivileged_userfaultfd at its default of 0.
pub fn sys_userfaultfd(t: &mut Task, flags: i32) -> SysResult<crate::vfs::Fd> {
    let (cloexec, nonblock) = (crate::vfs::OpenFlags::CLOEXEC as i32, crate::vfs::OpenFlags::NONBLOCK as i32);
    if flags & !(cloexec | nonblock | UFFD_USER_MODE_ONLY) != 0 {
        return error!(EINVAL);
    }
    if flags & UFFD_USER_MODE_ONLY == 0 && !t.tg.capable(consts::CAP_SYS_PTRACE) {
        return error!(EPERM);
    }
    let file = std::sync::Arc::new(crate::fs::userfaultfd::UserfaultFile::new(t, (flags & nonblock) as u32));
    super::pipe::install(t, file, flags & cloexec != 0)
}

/// mseal(2): the mappings of `[addr, addr + len)` stay as they are for good.
pub fn sys_mseal(t: &mut Task, addr: UserAddr, len: u64, flags: u64) -> SysResult<()> {
    if flags != 0 || addr.get() % PAGE_SIZE != 0 {
        return error!(EINVAL);
    }
    let len = page_up(len).ok_or_else(|| errno!(EINVAL))?;
    if len == 0 {
        return Ok(());
    }
    t.mm.seal(addr.get(), len)
}
