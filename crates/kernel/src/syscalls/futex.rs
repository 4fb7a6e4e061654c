//! futex(2).

use super::signal::deadline_after;
use crate::futex::{FutexDeadline, FutexKey};
use crate::mm::UserRef;
use crate::task::Task;
use rvisor_abi::structs::Timespec;
use rvisor_abi::{error, SysResult, UserAddr};

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_REQUEUE: i32 = 3;
const FUTEX_CMP_REQUEUE: i32 = 4;
const FUTEX_WAKE_OP: i32 = 5;
const FUTEX_LOCK_PI: i32 = 6;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_PRIVATE_FLAG: i32 = 128;
const FUTEX_CLOCK_REALTIME: i32 = 256;

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

pub fn sys_futex(t: &mut Task, uaddr: UserAddr, op: i32, val: u32, timeout: u64, uaddr2: UserAddr, val3: u32) -> SysResult<u32> {
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if realtime && !matches!(cmd, FUTEX_WAIT_BITSET | FUTEX_WAIT) {
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
            futexes.wait(t, uaddr, private, val, bitset, deadline).map(|()| 0)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE { u32::MAX } else { val3 };
            if bitset == 0 {
                return error!(EINVAL);
            }
            let key = FutexKey::for_addr(&t.mm, uaddr, private)?;
            Ok(futexes.wake(&key, val, bitset))
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let from = FutexKey::for_addr(&t.mm, uaddr, private)?;
            let off = t.mm.futex_word(uaddr)?;
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
            let off2 = t.mm.futex_word(uaddr2)?;
            futexes.wake_op(&t.mm, &key1, &key2, off2, val, timeout as u32, val3)
        }
        FUTEX_LOCK_PI.. => error!(ENOSYS),
        _ => error!(ENOSYS),
    }
}
