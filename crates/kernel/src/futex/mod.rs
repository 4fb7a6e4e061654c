//! Futexes: wait queues keyed by address. A private futex (or any futex on private
//! memory) is keyed by its address space and address, the flagged ones apart; one on
//! MAP_SHARED memory by its memory-file frame, so it works across processes and after
//! fork. A waiter
//! (FUTEX_WAIT, or futex_waitv on several words) is queued under each of its words' keys.
//! Priority-inheritance futexes (`pi.rs`) queue their lockers in the same queues.

mod pi;
pub use pi::{FUTEX_OWNER_DIED, FUTEX_TID_MASK, FUTEX_WAITERS};

use crate::mm::MemoryManager;
use crate::task::{Task, Thread};
use rvisor_abi::{errno, SysResult, UserAddr};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FutexKey {
    /// A FUTEX_PRIVATE_FLAG word: (address space identity, address).
    Private(usize, u64),
    /// A word without the flag in private memory: (address space identity,
    /// address), apart from the flagged ones as in Linux (FUT_OFF_MMSHARED), so a
    /// private wake does not reach a shared wait.
    Mm(usize, u64),
    /// A word in MAP_SHARED memory: its memory-file offset.
    Shared(u64),
}

impl FutexKey {
    /// A flagged word needs no mapping (as Linux, which does not look for one); an
    /// unflagged one must be mapped (EFAULT).
    pub fn for_addr(mm: &Arc<MemoryManager>, addr: UserAddr, private: bool) -> SysResult<FutexKey> {
        if !private {
            return Self::with_word(mm, addr, false).map(|(key, _)| key);
        }
        if addr.get() % 4 != 0 {
            return Err(errno!(EINVAL));
        }
        Ok(FutexKey::Private(Arc::as_ptr(mm) as usize, addr.get()))
    }

    /// The key of the word at `addr`, and where the word is in the memory file.
    pub fn with_word(mm: &Arc<MemoryManager>, addr: UserAddr, private: bool) -> SysResult<(FutexKey, u64)> {
        let off = mm.futex_word(addr)?;
        let space = Arc::as_ptr(mm) as usize;
        let key = if private {
            FutexKey::Private(space, addr.get())
        } else if mm.is_shared_at(addr) {
            FutexKey::Shared(off)
        } else {
            FutexKey::Mm(space, addr.get())
        };
        Ok((key, off))
    }
}

/// A sleeping thread. It is queued under the key of each word it waits on: one for
/// FUTEX_WAIT, up to 128 for futex_waitv.
struct FutexWaiter {
    thread: Arc<Thread>,
    bitset: u32,
    /// A PI locker's TID as futex words hold it, 0 for other waits: a FUTEX_LOCK_PI
    /// waiter's from the start, a FUTEX_WAIT_REQUEUE_PI one's once requeued onto its
    /// PI futex (under the table lock). Only a PI unlock (or its owner's exit) hands
    /// such a waiter anything.
    pi_tid: AtomicU32,
    /// A FUTEX_WAIT_REQUEUE_PI waiter's PI futex and TID: only FUTEX_CMP_REQUEUE_PI
    /// to that futex may move it.
    requeue_pi: Option<(FutexKey, u32)>,
    /// The index of the word whose wake woke it, or NOT_WOKEN. Only stored under the
    /// table lock, by the first wake, so a waiter on several words is woken once.
    woken: AtomicUsize,
}

const NOT_WOKEN: usize = usize::MAX;

impl FutexWaiter {
    fn new(thread: Arc<Thread>, bitset: u32, pi_tid: u32, requeue_pi: Option<(FutexKey, u32)>) -> Arc<FutexWaiter> {
        Arc::new(FutexWaiter { thread, bitset, pi_tid: AtomicU32::new(pi_tid), requeue_pi, woken: AtomicUsize::new(NOT_WOKEN) })
    }

    fn pi_tid(&self) -> Option<u32> {
        Some(self.pi_tid.load(Ordering::Acquire)).filter(|&tid| tid != 0)
    }

    /// Whether plain wakes and requeues must leave it alone (Linux's EINVAL): a PI
    /// locker, or a waiter paired with FUTEX_CMP_REQUEUE_PI.
    fn is_pi(&self) -> bool {
        self.pi_tid().is_some() || self.requeue_pi.is_some()
    }

    fn is_woken(&self) -> bool {
        self.woken.load(Ordering::Acquire) != NOT_WOKEN
    }
}

/// One queue entry: a waiter, and which of its words the queue is for.
struct QueueEntry {
    waiter: Arc<FutexWaiter>,
    index: usize,
}

type Queues = HashMap<FutexKey, Vec<QueueEntry>>;

/// What the table lock guards: the wait queues, and the kernel's side of each PI
/// futex that has waiters.
#[derive(Default)]
struct State {
    queues: Queues,
    pi: HashMap<FutexKey, pi::PiState>,
}

/// A word a futex wait sleeps on: its key, where it is in the memory file, and the
/// value it must hold for the wait to sleep.
pub struct FutexWord {
    key: FutexKey,
    off: u64,
    val: u32,
}

impl FutexWord {
    pub fn new(mm: &Arc<MemoryManager>, addr: UserAddr, private: bool, val: u32) -> SysResult<FutexWord> {
        let (key, off) = FutexKey::with_word(mm, addr, private)?;
        Ok(FutexWord { key, off, val })
    }
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
    state: Mutex<State>,
}

impl FutexTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// FUTEX_WAIT(_BITSET): sleeps while `*addr == val` until woken, a signal
    /// (ERESTARTSYS) or `deadline` (ETIMEDOUT).
    pub fn wait(&self, t: &Task, addr: UserAddr, private: bool, val: u32, bitset: u32, deadline: FutexDeadline) -> SysResult<()> {
        if bitset == 0 {
            return Err(errno!(EINVAL));
        }
        let word = FutexWord::new(&t.mm, addr, private, val)?;
        self.wait_any(t, &[word], bitset, deadline).map(|_| ())
    }

    /// FUTEX_WAIT and futex_waitv: unless a word already differs from its value
    /// (EAGAIN), sleeps until a wake on any of `words` (whose index it returns), a
    /// signal (ERESTARTSYS) or `deadline` (ETIMEDOUT).
    pub fn wait_any(&self, t: &Task, words: &[FutexWord], bitset: u32, deadline: FutexDeadline) -> SysResult<usize> {
        let w = FutexWaiter::new(t.thread.clone(), bitset, 0, None);
        {
            // Every wake takes this lock: a waker that changes a word after this check
            // and then wakes it finds the waiter queued.
            let mut q = self.lock();
            let mem = t.mm.memory_file();
            if words.iter().any(|word| mem.load_u32(word.off) != word.val) {
                return Err(errno!(EAGAIN));
            }
            for (index, word) in words.iter().enumerate() {
                q.queues.entry(word.key.clone()).or_default().push(QueueEntry { waiter: w.clone(), index });
            }
        }
        let woken = || w.is_woken();
        let r = match deadline {
            FutexDeadline::At(d) => t.block_until(d, woken),
            FutexDeadline::Realtime(at) => t.block_until_realtime(at, woken),
        };
        // A wake dequeues only the entry it woke: the other words' entries (all of
        // them after a timeout or a signal) are still queued.
        if words.len() > 1 || r.is_err() {
            self.remove(&w);
        }
        // Woken, even if the deadline or a signal came as well: the wake is not lost.
        let index = w.woken.load(Ordering::Acquire);
        if index != NOT_WOKEN {
            return Ok(index);
        }
        // block_until returns Ok only once `woken` holds.
        Err(r.err().unwrap_or_else(|| errno!(ETIMEDOUT)))
    }

    /// Dequeues every entry of `w`, wherever a requeue may have moved it.
    fn remove(&self, w: &Arc<FutexWaiter>) {
        let mut q = self.lock();
        q.queues.retain(|_, v| {
            v.retain(|e| !Arc::ptr_eq(&e.waiter, w));
            !v.is_empty()
        });
    }

    /// Wakes up to `n` waiters on `key` whose bitset meets `bitset`. As Linux's,
    /// EINVAL if a PI waiter comes first (those already woken stay woken).
    pub fn wake(&self, key: &FutexKey, n: u32, bitset: u32) -> SysResult<u32> {
        let mut q = self.lock();
        Self::wake_locked(&mut q.queues, key, n, bitset)
    }

    fn wake_locked(q: &mut Queues, key: &FutexKey, n: u32, bitset: u32) -> SysResult<u32> {
        let Some(v) = q.get_mut(key) else { return Ok(0) };
        let mut woken = 0;
        let mut pi = false;
        v.retain(|e| {
            let w = &e.waiter;
            if w.is_woken() {
                // A futex_waitv already woken through another of its words, not yet
                // dequeued: it no longer waits, so it takes no wake from a waiter that does.
                return false;
            }
            if pi || woken >= n {
                return true;
            }
            if w.is_pi() {
                pi = true;
                return true;
            }
            if w.bitset & bitset != 0 {
                woken += 1;
                w.woken.store(e.index, Ordering::Release);
                w.thread.waiter.wake();
                false
            } else {
                true
            }
        });
        if v.is_empty() {
            q.remove(key);
        }
        if pi {
            return Err(errno!(EINVAL));
        }
        Ok(woken)
    }

    /// FUTEX_(CMP_)REQUEUE: wakes `n_wake` on `from`, moves up to `n_requeue` of the
    /// rest to `to`. With `expect`, fails with EAGAIN unless `*from == expect`. A PI
    /// waiter among them is EINVAL (as in Linux, what was done before it stays done).
    pub fn requeue(&self, mm: &MemoryManager, from: &FutexKey, from_off: u64, to: FutexKey, n_wake: u32, n_requeue: u32, expect: Option<u32>) -> SysResult<u32> {
        let mut q = self.lock();
        if let Some(v) = expect {
            if mm.memory_file().load_u32(from_off) != v {
                return Err(errno!(EAGAIN));
            }
        }
        let q = &mut q.queues;
        let Some(waiters) = q.remove(from) else { return Ok(0) };
        let (mut count, mut pi) = (0u32, false);
        let (mut stay, mut moved) = (Vec::new(), Vec::new());
        for e in waiters {
            if e.waiter.is_woken() {
                continue;
            }
            if pi || count >= n_wake.saturating_add(n_requeue) {
                stay.push(e);
            } else if e.waiter.is_pi() {
                pi = true;
                stay.push(e);
            } else if count < n_wake {
                count += 1;
                e.waiter.woken.store(e.index, Ordering::Release);
                e.waiter.thread.waiter.wake();
            } else {
                count += 1;
                moved.push(e);
            }
        }
        if !stay.is_empty() {
            q.insert(from.clone(), stay);
        }
        if !moved.is_empty() {
            q.entry(to).or_default().extend(moved);
        }
        if pi {
            return Err(errno!(EINVAL));
        }
        Ok(count)
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
        let mut woken = Self::wake_locked(&mut q.queues, key1, n1, u32::MAX)?;
        if pass {
            woken += Self::wake_locked(&mut q.queues, key2, n2, u32::MAX)?;
        }
        Ok(woken)
    }
}
