//! futex(2), futex_waitv(2), and the futex2 calls of Linux 6.7: futex_wake,
//! futex_wait and futex_requeue.

use super::signal::deadline_after;
use crate::futex::{FutexDeadline, FutexKey, FutexWord};
use crate::mm::UserRef;
use crate::task::{RestartBlock, Task};
use rvisor_abi::structs::{FutexWaitv, Timespec};
use rvisor_abi::{errno, error, ErrnoCode, SysResult, UserAddr};

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_REQUEUE: i32 = 3;
const FUTEX_CMP_REQUEUE: i32 = 4;
const FUTEX_WAKE_OP: i32 = 5;
const FUTEX_LOCK_PI: i32 = 6;
const FUTEX_UNLOCK_PI: i32 = 7;
const FUTEX_TRYLOCK_PI: i32 = 8;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_WAIT_REQUEUE_PI: i32 = 11;
const FUTEX_CMP_REQUEUE_PI: i32 = 12;
const FUTEX_LOCK_PI2: i32 = 13;
const FUTEX_PRIVATE_FLAG: i32 = 128;
const FUTEX_CLOCK_REALTIME: i32 = 256;

/// futex_waitv: at most this many words.
const FUTEX_WAITV_MAX: u32 = 128;
/// A futex_waitv word's flags: its size (only 32 bits exist), and whether it is
/// private. FUTEX2_NUMA (Linux 6.16) is EINVAL, as in the 6.8 the sandbox reports.
const FUTEX2_SIZE_MASK: u32 = 3;
const FUTEX2_SIZE_U32: u32 = 2;
const FUTEX2_PRIVATE: u32 = 128;
const CLOCK_REALTIME: i32 = 0;
const CLOCK_MONOTONIC: i32 = 1;

/// How many futex(2)'s wakes wake: Linux counts a waiter woken before it compares,
/// so a count of 0 (or a negative one) wakes one.
fn at_least_one(n: i32) -> u32 {
    n.max(1) as u32
}

/// An absolute timeout on the monotonic or realtime clock.
fn absolute_deadline(t: &Task, ts: UserRef<Timespec>, realtime: bool) -> SysResult<FutexDeadline> {
    if ts.is_null() {
        return Ok(FutexDeadline::At(None));
    }
    let ts = t.mm.read_obj(ts)?;
    ts.duration()?;
    if realtime {
        return Ok(FutexDeadline::Realtime(ts.as_ns()));
    }
    Ok(FutexDeadline::At(t.kernel.clocks.instant_at(1, ts.as_ns())?))
}

/// FUTEX_WAIT(_BITSET), first run or restarted. A signal restarts a wait without a
/// timeout under SA_RESTART (ERESTARTSYS); a timed one gives a handler EINTR
/// whatever SA_RESTART says, and otherwise (a stop) goes on through restart_syscall
/// until the same deadline, as Linux's futex_wait_restart does.
pub(super) fn futex_wait(t: &mut Task, addr: UserAddr, private: bool, val: u32, bitset: u32, deadline: FutexDeadline) -> SysResult<u32> {
    match t.kernel.futexes.wait(t, addr, private, val, bitset, deadline) {
        Err(e) if e.code == ErrnoCode::ERESTARTSYS && !matches!(deadline, FutexDeadline::At(None)) => {
            t.restart_block = Some(RestartBlock::FutexWait { addr, private, val, bitset, deadline });
            error!(ERESTART_RESTARTBLOCK)
        }
        r => r.map(|()| 0),
    }
}

pub fn sys_futex(t: &mut Task, uaddr: UserAddr, op: i32, val: u32, timeout: u64, uaddr2: UserAddr, val3: u32) -> SysResult<u32> {
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if realtime && !matches!(cmd, FUTEX_WAIT_BITSET | FUTEX_WAIT | FUTEX_LOCK_PI2 | FUTEX_WAIT_REQUEUE_PI) {
        return error!(ENOSYS);
    }
    let futexes = &t.kernel.futexes;
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let ts = UserRef::<Timespec>::new(UserAddr(timeout));
            let (bitset, deadline) = if cmd == FUTEX_WAIT {
                // FUTEX_WAIT's timeout is relative (FUTEX_CLOCK_REALTIME makes it absolute).
                (u32::MAX, if realtime { absolute_deadline(t, ts, true)? } else { FutexDeadline::At(deadline_after(t, ts)?) })
            } else {
                (val3, absolute_deadline(t, ts, realtime)?)
            };
            futex_wait(t, uaddr, private, val, bitset, deadline)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE { u32::MAX } else { val3 };
            if bitset == 0 {
                return error!(EINVAL);
            }
            let key = FutexKey::for_addr(&t.mm, uaddr, private)?;
            futexes.wake(&key, at_least_one(val as i32), bitset)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let (from, off) = FutexKey::with_word(&t.mm, uaddr, private)?;
            let to = FutexKey::for_addr(&t.mm, uaddr2, private)?;
            let n_requeue = timeout as u32;
            if (val as i32) < 0 || (n_requeue as i32) < 0 {
                return error!(EINVAL);
            }
            let expect = (cmd == FUTEX_CMP_REQUEUE).then_some(val3);
            futexes.requeue(&t.mm, &from, off, to, val, n_requeue, expect)
        }
        FUTEX_WAKE_OP => {
            let key1 = FutexKey::for_addr(&t.mm, uaddr, private)?;
            let key2 = FutexKey::for_addr(&t.mm, uaddr2, private)?;
            // The word is stored to: a copy-on-write page is broken first.
            let off2 = t.mm.futex_word_for_write(uaddr2)?;
            futexes.wake_op(&t.mm, &key1, &key2, off2, at_least_one(val as i32), at_least_one(timeout as i32), val3)
        }
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 => {
            // An absolute timeout: FUTEX_LOCK_PI's always on CLOCK_REALTIME,
            // FUTEX_LOCK_PI2's on CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME.
            let ts = UserRef::<Timespec>::new(UserAddr(timeout));
            let deadline = absolute_deadline(t, ts, cmd == FUTEX_LOCK_PI || realtime)?;
            futexes.lock_pi(t, uaddr, private, false, deadline).map(|()| 0)
        }
        FUTEX_TRYLOCK_PI => futexes.lock_pi(t, uaddr, private, true, FutexDeadline::At(None)).map(|()| 0),
        FUTEX_UNLOCK_PI => futexes.unlock_pi(t, uaddr, private).map(|()| 0),
        FUTEX_WAIT_REQUEUE_PI => {
            // An absolute timeout, on CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME.
            let deadline = absolute_deadline(t, UserRef::new(UserAddr(timeout)), realtime)?;
            if uaddr == uaddr2 {
                return error!(EINVAL);
            }
            futexes.wait_requeue_pi(t, uaddr, uaddr2, private, val, deadline).map(|()| 0)
        }
        FUTEX_CMP_REQUEUE_PI => {
            let n_requeue = timeout as u32;
            // Only the one waiter whose lock it takes is woken: the rest wait for the lock.
            if (val as i32) < 0 || (n_requeue as i32) < 0 || uaddr == uaddr2 || val != 1 {
                return error!(EINVAL);
            }
            let (from, off) = FutexKey::with_word(&t.mm, uaddr, private)?;
            let to = FutexKey::for_addr(&t.mm, uaddr2, private)?;
            // Shared mappings can alias one word at two addresses.
            if from == to {
                return error!(EINVAL);
            }
            futexes.cmp_requeue_pi(t, &from, off, uaddr2, &to, n_requeue, val3)
        }
        _ => error!(ENOSYS),
    }
}

/// A futex2 word's flags: whether it is private (only 32-bit words exist).
fn futex2_private(flags: u32) -> SysResult<bool> {
    if flags & !(FUTEX2_SIZE_MASK | FUTEX2_PRIVATE) != 0 || flags & FUTEX2_SIZE_MASK != FUTEX2_SIZE_U32 {
        return error!(EINVAL);
    }
    Ok(flags & FUTEX2_PRIVATE != 0)
}

/// A value (or mask) for a 32-bit word: wider is EINVAL (Linux 6.7+).
fn futex2_u32(v: u64) -> SysResult<u32> {
    u32::try_from(v).map_err(|_| errno!(EINVAL))
}

/// Entry `i` of a futex_waitv array: its word, whether private, and its value.
fn waitv_entry(t: &Task, waiters: UserRef<FutexWaitv>, i: usize) -> SysResult<(UserAddr, bool, u32)> {
    let w = t.mm.read_obj(waiters.at(i)?)?;
    if w.reserved != 0 {
        return error!(EINVAL);
    }
    Ok((UserAddr(w.uaddr), futex2_private(w.flags)?, futex2_u32(w.val)?))
}

/// An absolute futex2 timeout on `clockid` (looked at only with a timeout).
fn futex2_deadline(t: &Task, timeout: UserRef<Timespec>, clockid: i32) -> SysResult<FutexDeadline> {
    if timeout.is_null() {
        return Ok(FutexDeadline::At(None));
    }
    let realtime = match clockid {
        CLOCK_REALTIME => true,
        CLOCK_MONOTONIC => false,
        _ => return error!(EINVAL),
    };
    absolute_deadline(t, timeout, realtime)
}

/// Sleeps until a FUTEX_WAKE on any of `nr_futexes` words (the woken one's index),
/// unless one already differs from its value (EAGAIN), with an absolute `timeout` on
/// `clockid`. The checks come in Linux's order: arguments, timeout, each entry, then
/// the words themselves.
pub fn sys_futex_waitv(t: &mut Task, waiters: UserRef<FutexWaitv>, nr_futexes: u32, flags: u32, timeout: UserRef<Timespec>, clockid: i32) -> SysResult<usize> {
    if flags != 0 || nr_futexes == 0 || nr_futexes > FUTEX_WAITV_MAX || waiters.is_null() {
        return error!(EINVAL);
    }
    let deadline = futex2_deadline(t, timeout, clockid)?;
    let entries = (0..nr_futexes as usize).map(|i| waitv_entry(t, waiters, i)).collect::<SysResult<Vec<_>>>()?;
    let words = entries.into_iter().map(|(addr, private, val)| FutexWord::new(&t.mm, addr, private, val)).collect::<SysResult<Vec<_>>>()?;
    // Unlike FUTEX_WAIT's EINTR, a signal gives ERESTARTSYS (as in Linux): SA_RESTART
    // restarts the call, which the absolute timeout makes safe.
    t.kernel.futexes.wait_any(t, &words, u32::MAX, deadline)
}

/// Wakes up to `nr` waiters on `uaddr` whose mask meets `mask`; unlike FUTEX_WAKE,
/// a count of 0 wakes none.
pub fn sys_futex_wake(t: &mut Task, uaddr: UserAddr, mask: u64, nr: i32, flags: u32) -> SysResult<u32> {
    let private = futex2_private(flags)?;
    let mask = futex2_u32(mask)?;
    if mask == 0 {
        return error!(EINVAL);
    }
    let key = FutexKey::for_addr(&t.mm, uaddr, private)?;
    if nr == 0 {
        return Ok(0);
    }
    t.kernel.futexes.wake(&key, at_least_one(nr), mask)
}

/// Sleeps while `*uaddr == val` until a wake whose mask meets `mask`, with an
/// absolute `timeout` on `clockid`, as FUTEX_WAIT_BITSET.
pub fn sys_futex_wait(t: &mut Task, uaddr: UserAddr, val: u64, mask: u64, flags: u32, timeout: UserRef<Timespec>, clockid: i32) -> SysResult<u32> {
    let private = futex2_private(flags)?;
    let (val, mask) = (futex2_u32(val)?, futex2_u32(mask)?);
    let deadline = futex2_deadline(t, timeout, clockid)?;
    if mask == 0 {
        return error!(EINVAL);
    }
    futex_wait(t, uaddr, private, val, mask, deadline)
}

/// FUTEX_CMP_REQUEUE between two futex_waitv entries, each with its own flags: the
/// first's value is compared, the second's is not.
pub fn sys_futex_requeue(t: &mut Task, waiters: UserRef<FutexWaitv>, flags: u32, nr_wake: i32, nr_requeue: i32) -> SysResult<u32> {
    if flags != 0 || waiters.is_null() {
        return error!(EINVAL);
    }
    let (from_addr, from_private, val) = waitv_entry(t, waiters, 0)?;
    let (to_addr, to_private, _) = waitv_entry(t, waiters, 1)?;
    if nr_wake < 0 || nr_requeue < 0 {
        return error!(EINVAL);
    }
    let (from, off) = FutexKey::with_word(&t.mm, from_addr, from_private)?;
    let to = FutexKey::for_addr(&t.mm, to_addr, to_private)?;
    t.kernel.futexes.requeue(&t.mm, &from, off, to, nr_wake as u32, nr_requeue as u32, Some(val))
}
