//! Futexes: wait queues keyed by address. A private futex (or any futex on private
//! memory) is keyed by its address space and address; one on MAP_SHARED memory by
//! its memory-file frame, so it works across processes and after fork.

use crate::mm::MemoryManager;
use crate::task::{Task, Thread};
use rvisor_abi::{errno, SysResult, UserAddr};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FutexKey {
    /// (address space identity, address)
    Private(usize, u64),
    /// memory-file offset
    Shared(u64),
}

impl FutexKey {
    pub fn for_addr(mm: &Arc<MemoryManager>, addr: UserAddr, private: bool) -> SysResult<FutexKey> {
        if addr.get() % 4 != 0 {
            return Err(errno!(EINVAL));
        }
        if !private && mm.is_shared_at(addr) {
            return Ok(FutexKey::Shared(mm.futex_word(addr)?));
        }
        Ok(FutexKey::Private(Arc::as_ptr(mm) as usize, addr.get()))
    }
}

struct FutexWaiter {
    thread: Arc<Thread>,
    bitset: u32,
    woken: AtomicBool,
}

/// When a futex wait times out: at a host instant (None: never), or when the
/// sandbox's realtime clock reads a value (FUTEX_CLOCK_REALTIME; clock sets move it).
#[derive(Clone, Copy, Debug)]
pub enum FutexDeadline {
    At(Option<Instant>),
    Realtime(i64),
}

/// All wait queues of the sandbox. One lock: futex operations are short.
#[derive(Default)]
pub struct FutexTable {
    queues: Mutex<HashMap<FutexKey, Vec<Arc<FutexWaiter>>>>,
}

impl FutexTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FutexKey, Vec<Arc<FutexWaiter>>>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// FUTEX_WAIT(_BITSET): sleeps while `*addr == val` until woken, a signal
    /// (ERESTARTSYS) or `deadline` (ETIMEDOUT).
    pub fn wait(&self, t: &Task, addr: UserAddr, private: bool, val: u32, bitset: u32, deadline: FutexDeadline) -> SysResult<()> {
        if bitset == 0 {
            return Err(errno!(EINVAL));
        }
        let key = FutexKey::for_addr(&t.mm, addr, private)?;
        let off = t.mm.futex_word(addr)?;
        let w = Arc::new(FutexWaiter { thread: t.thread.clone(), bitset, woken: AtomicBool::new(false) });
        {
            let mut q = self.lock();
            if t.mm.memory_file().load_u32(off) != val {
                return Err(errno!(EAGAIN));
            }
            q.entry(key.clone()).or_default().push(w.clone());
        }
        let woken = || w.woken.load(Ordering::Acquire);
        let r = match deadline {
            FutexDeadline::At(d) => t.block_until(d, woken),
            FutexDeadline::Realtime(at) => t.block_until_realtime(at, woken),
        };
        if r.is_err() {
            self.remove(&w);
            if w.woken.load(Ordering::Acquire) {
                return Ok(());
            }
        }
        // A signal interrupts a futex wait with EINTR, whatever SA_RESTART says.
        r.map_err(|e| if e.code == rvisor_abi::ErrnoCode::ERESTARTSYS { errno!(EINTR) } else { e })
    }

    fn remove(&self, w: &Arc<FutexWaiter>) {
        let mut q = self.lock();
        q.retain(|_, v| {
            v.retain(|x| !Arc::ptr_eq(x, w));
            !v.is_empty()
        });
    }

    /// Wakes up to `n` waiters on `key` whose bitset meets `bitset`.
    pub fn wake(&self, key: &FutexKey, n: u32, bitset: u32) -> u32 {
        let mut q = self.lock();
        Self::wake_locked(&mut q, key, n, bitset)
    }

    fn wake_locked(q: &mut HashMap<FutexKey, Vec<Arc<FutexWaiter>>>, key: &FutexKey, n: u32, bitset: u32) -> u32 {
        let Some(v) = q.get_mut(key) else { return 0 };
        let mut woken = 0;
        v.retain(|w| {
            if woken < n && w.bitset & bitset != 0 {
                woken += 1;
                w.woken.store(true, Ordering::Release);
                w.thread.waiter.wake();
                false
            } else {
                true
            }
        });
        if v.is_empty() {
            q.remove(key);
        }
        woken
    }

    /// FUTEX_(CMP_)REQUEUE: wakes `n_wake` on `from`, moves up to `n_requeue` of the
    /// rest to `to`. With `expect`, fails with EAGAIN unless `*from == expect`.
    pub fn requeue(&self, mm: &MemoryManager, from: &FutexKey, from_off: u64, to: FutexKey, n_wake: u32, n_requeue: u32, expect: Option<u32>) -> SysResult<u32> {
        let mut q = self.lock();
        if let Some(v) = expect {
            if mm.memory_file().load_u32(from_off) != v {
                return Err(errno!(EAGAIN));
            }
        }
        let woken = Self::wake_locked(&mut q, from, n_wake, u32::MAX);
        let mut moved = Vec::new();
        if let Some(v) = q.get_mut(from) {
            let take = (n_requeue as usize).min(v.len());
            moved = v.drain(..take).collect();
            if v.is_empty() {
                q.remove(from);
            }
        }
        let count = moved.len() as u32;
        if !moved.is_empty() {
            q.entry(to).or_default().extend(moved);
        }
        Ok(woken + count)
    }

    /// FUTEX_WAKE_OP: atomically updates `*addr2`, wakes `n1` on key1, and `n2` on
    /// key2 if the old value of `*addr2` passes the comparison encoded in `op`.
    pub fn wake_op(&self, mm: &MemoryManager, key1: &FutexKey, key2: &FutexKey, off2: u64, n1: u32, n2: u32, op: u32) -> SysResult<u32> {
        let kind = (op >> 28) & 7;
        let shift_arg = (op >> 31) & 1 != 0;
        let cmp = (op >> 24) & 15;
        let mut oparg = (op >> 12) & 0xfff;
        let cmparg = op & 0xfff;
        if shift_arg {
            if oparg > 31 {
                return Err(errno!(EINVAL));
            }
            oparg = 1 << oparg;
        }
        let apply = |old: u32| match kind {
            0 => oparg,
            1 => old.wrapping_add(oparg),
            2 => old | oparg,
            3 => old & !oparg,
            _ => old ^ oparg,
        };
        if kind > 4 || cmp > 5 {
            return Err(errno!(ENOSYS));
        }
        let mut q = self.lock();
        let old = mm.memory_file().update_u32(off2, apply);
        let pass = match cmp {
            0 => old == cmparg,
            1 => old != cmparg,
            2 => (old as i32) < cmparg as i32,
            3 => (old as i32) <= cmparg as i32,
            4 => (old as i32) > cmparg as i32,
            _ => (old as i32) >= cmparg as i32,
        };
        let mut woken = Self::wake_locked(&mut q, key1, n1, u32::MAX);
        if pass {
            woken += Self::wake_locked(&mut q, key2, n2, u32::MAX);
        }
        Ok(woken)
    }
}
