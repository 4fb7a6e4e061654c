//! Priority-inheritance futexes (FUTEX_LOCK_PI, FUTEX_LOCK_PI2, FUTEX_TRYLOCK_PI,
//! FUTEX_UNLOCK_PI, and FUTEX_WAIT_REQUEUE_PI with FUTEX_CMP_REQUEUE_PI, which move
//! a plain futex's waiters onto a PI one, as glibc's old condition variables on PI
//! mutexes do), with Linux's word protocol (kernel/futex/pi.c): the word holds
//! its owner's TID, FUTEX_WAITERS once someone waits in the kernel, FUTEX_OWNER_DIED
//! once an owner died holding it. An unlock hands the lock to the first waiter. The
//! host schedules the threads, so no priority is boosted: only the lock semantics are
//! Linux's.

use super::{FutexDeadline, FutexKey, FutexTable, FutexWaiter, QueueEntry, State, NOT_WOKEN};
use crate::task::{Task, Thread};
use rvisor_abi::{errno, ErrnoCode, SysResult, UserAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub const FUTEX_WAITERS: u32 = 0x8000_0000;
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// How a PI waiter was handed the lock (its `woken` value): by an unlock, which wrote
/// the waiter's TID into the word, or by its owner's exit, after which the waiter
/// writes its TID itself (the exiting thread may not be able to reach the word).
const HANDED: usize = 0;
const HANDED_OWNER_DIED: usize = 1;

/// The kernel's side of a PI futex while threads wait on it (Linux's pi_state).
pub(super) struct PiState {
    /// The thread holding the lock, which hands it on at unlock or exit.
    owner: Arc<Thread>,
    /// The TID the word holds for `owner`.
    owner_tid: u32,
    /// Handed on at its owner's death: the new owner has yet to write its TID, and
    /// meanwhile the word still shows the dead one (or none).
    fixup: bool,
}

/// FUTEX_LOCK_PI's atomic step on a word without kernel waiters, for `tid`: a free
/// word (no owner TID, maybe FUTEX_OWNER_DIED) becomes `tid`'s, keeping
/// FUTEX_OWNER_DIED for the new owner to see; an owned one gets FUTEX_WAITERS, so that
/// its owner's unlock comes to the kernel.
fn lock_word(word: u32, tid: u32) -> u32 {
    match word & FUTEX_TID_MASK {
        owner if owner == tid => word,
        0 => (word & FUTEX_OWNER_DIED) | tid,
        _ => word | FUTEX_WAITERS,
    }
}

/// FUTEX_UNLOCK_PI's atomic step by `tid`: the word goes to `next` with
/// FUTEX_WAITERS (Linux keeps the bit on every hand-over, so the next unlock comes
/// to the kernel too), or to 0; a word `tid` does not own stays as it is.
fn unlock_word(word: u32, tid: u32, next: Option<u32>) -> u32 {
    if word & FUTEX_TID_MASK != tid {
        return word;
    }
    next.map_or(0, |n| n | FUTEX_WAITERS)
}

/// Whether a locker may wait behind a PI futex's waiters: the word must name the
/// owner the kernel knows (`owner_tid`), unless the lock was handed on at an owner's
/// death and the new owner has yet to write its TID (`fixup`). Anything else means
/// the app changed the word behind the kernel's back (EINVAL).
fn check_attach(word: u32, owner_tid: u32, fixup: bool) -> SysResult<()> {
    if fixup || word & FUTEX_TID_MASK == owner_tid {
        Ok(())
    } else {
        Err(errno!(EINVAL))
    }
}

/// The first PI waiter queued on `key`, dequeued.
fn take_top_waiter(st: &mut State, key: &FutexKey) -> Option<Arc<FutexWaiter>> {
    let q = st.queues.get_mut(key)?;
    let i = q.iter().position(|e| e.waiter.pi_tid().is_some() && !e.waiter.is_woken())?;
    let e = q.remove(i);
    if q.is_empty() {
        st.queues.remove(key);
    }
    Some(e.waiter)
}

/// Hands the lock behind `key` to its first waiter, if any, woken with `how`.
fn hand_over(st: &mut State, key: &FutexKey, how: usize) {
    let Some(next) = take_top_waiter(st, key) else { return };
    if let (Some(ps), Some(tid)) = (st.pi.get_mut(key), next.pi_tid()) {
        ps.owner = next.thread.clone();
        ps.owner_tid = tid;
        ps.fixup = how == HANDED_OWNER_DIED;
    }
    next.woken.store(how, Ordering::Release);
    next.thread.waiter.wake();
}

/// Drops the kernel's side of `key` once no PI waiter is left and no new owner has
/// its TID to write.
fn prune(st: &mut State, key: &FutexKey) {
    let waiting = st.queues.get(key).is_some_and(|q| q.iter().any(|e| e.waiter.pi_tid().is_some()));
    if !waiting && st.pi.get(key).is_some_and(|ps| !ps.fixup) {
        st.pi.remove(key);
    }
}

impl FutexTable {
    /// FUTEX_LOCK_PI(2) and, with `try_only`, FUTEX_TRYLOCK_PI: takes the lock at
    /// `addr` for the caller, or waits until an unlock or its owner's exit hands it
    /// over, a signal (restarted, as Linux's ERESTARTNOINTR) or `deadline` (ETIMEDOUT).
    pub fn lock_pi(&self, t: &Task, addr: UserAddr, private: bool, try_only: bool, deadline: FutexDeadline) -> SysResult<()> {
        let key = FutexKey::for_addr(&t.mm, addr, private)?;
        let off = t.mm.futex_word_for_write(addr)?;
        let tid = t.vnr(t.tid()) as u32;
        let mem = t.mm.memory_file();
        let w = FutexWaiter::new(t.thread.clone(), u32::MAX, tid, None);
        loop {
            // The owner is looked up before the table lock (the PID table's lock comes
            // first); the word is checked again under it.
            let seen = mem.load_u32(off) & FUTEX_TID_MASK;
            let owner = if seen == 0 || seen == tid { None } else { t.pid_ns().thread(seen as i32) };
            let mut st = self.lock();
            if let Some(ps) = st.pi.get(&key) {
                let word = mem.load_u32(off);
                if word & FUTEX_TID_MASK == tid {
                    return Err(errno!(EDEADLK));
                }
                check_attach(word, ps.owner_tid, ps.fixup)?;
                if try_only {
                    return Err(errno!(EAGAIN));
                }
            } else {
                let old = mem.update_u32(off, |v| lock_word(v, tid));
                match old & FUTEX_TID_MASK {
                    o if o == tid => return Err(errno!(EDEADLK)),
                    0 => return Ok(()),
                    // The owner changed since the look-up: look again.
                    o if o != seen => continue,
                    _ => {}
                }
                // An owner that is gone, or going and done with its PI futexes, will
                // never unlock: Linux's ESRCH. FUTEX_WAITERS stays set, as there.
                let owner = owner.filter(|o| !o.pi_exited.load(Ordering::Acquire)).ok_or_else(|| errno!(ESRCH))?;
                if try_only {
                    return Err(errno!(EAGAIN));
                }
                st.pi.insert(key.clone(), PiState { owner, owner_tid: seen, fixup: false });
            }
            st.queues.entry(key.clone()).or_default().push(QueueEntry { waiter: w.clone(), index: 0 });
            break;
        }
        let woken = || w.is_woken();
        let r = match deadline {
            FutexDeadline::At(d) => t.block_until(d, woken),
            FutexDeadline::Realtime(at) => t.block_until_realtime(at, woken),
        };
        let how = {
            let mut st = self.lock();
            if let Some(q) = st.queues.get_mut(&key) {
                q.retain(|e| !Arc::ptr_eq(&e.waiter, &w));
                if q.is_empty() {
                    st.queues.remove(&key);
                }
            }
            let how = w.woken.load(Ordering::Acquire);
            if how == NOT_WOKEN {
                prune(&mut st, &key);
            }
            how
        };
        match how {
            // Handed over, even if the deadline or a signal came as well.
            HANDED => Ok(()),
            HANDED_OWNER_DIED => self.fix_owner(t, addr, &key, tid),
            // A signal restarts the call whatever SA_RESTART says; the timeout is
            // absolute, so a restart keeps it.
            _ => Err(match r {
                Err(e) if e.code == ErrnoCode::ERESTARTSYS => errno!(ERESTARTNOINTR),
                Err(e) => e,
                Ok(()) => errno!(ETIMEDOUT),
            }),
        }
    }

    /// The caller was handed the lock at its owner's death: it writes its TID with
    /// FUTEX_OWNER_DIED (robust mutexes report EOWNERDEAD on it) and FUTEX_WAITERS.
    fn fix_owner(&self, t: &Task, addr: UserAddr, key: &FutexKey, tid: u32) -> SysResult<()> {
        let off = t.mm.futex_word_for_write(addr);
        let mut st = self.lock();
        if let Some(ps) = st.pi.get_mut(key) {
            ps.fixup = false;
        }
        prune(&mut st, key);
        t.mm.memory_file().update_u32(off?, |_| tid | FUTEX_WAITERS | FUTEX_OWNER_DIED);
        Ok(())
    }

    /// FUTEX_WAIT_REQUEUE_PI: sleeps on the plain futex `addr` while `*addr == val`,
    /// for FUTEX_CMP_REQUEUE_PI to hand it the PI lock at `addr2`, or to requeue it
    /// there as a locker. Returns once it owns the lock. Before a requeue a signal
    /// restarts the call (ERESTARTNOINTR); after it the lock is not retried: EAGAIN,
    /// as Linux's futex_wait_requeue_pi (the app locks the mutex itself). `deadline`
    /// holds throughout (ETIMEDOUT).
    pub fn wait_requeue_pi(&self, t: &Task, addr: UserAddr, addr2: UserAddr, private: bool, val: u32, deadline: FutexDeadline) -> SysResult<()> {
        let key2 = FutexKey::for_addr(&t.mm, addr2, private)?;
        let word = super::FutexWord::new(&t.mm, addr, private, val)?;
        let tid = t.vnr(t.tid()) as u32;
        let w = FutexWaiter::new(t.thread.clone(), u32::MAX, 0, Some((key2.clone(), tid)));
        {
            let mut st = self.lock();
            if t.mm.memory_file().load_u32(word.off) != val {
                return Err(errno!(EAGAIN));
            }
            // Shared mappings can alias one word at two addresses.
            if word.key == key2 {
                return Err(errno!(EINVAL));
            }
            st.queues.entry(word.key.clone()).or_default().push(QueueEntry { waiter: w.clone(), index: 0 });
        }
        let woken = || w.is_woken();
        let r = match deadline {
            FutexDeadline::At(d) => t.block_until(d, woken),
            FutexDeadline::Realtime(at) => t.block_until_realtime(at, woken),
        };
        let (how, requeued) = {
            let mut st = self.lock();
            for key in [&word.key, &key2] {
                if let Some(q) = st.queues.get_mut(key) {
                    q.retain(|e| !Arc::ptr_eq(&e.waiter, &w));
                    if q.is_empty() {
                        st.queues.remove(key);
                    }
                }
            }
            let how = w.woken.load(Ordering::Acquire);
            let requeued = w.pi_tid().is_some();
            if how == NOT_WOKEN && requeued {
                prune(&mut st, &key2);
            }
            (how, requeued)
        };
        match how {
            HANDED => Ok(()),
            HANDED_OWNER_DIED => self.fix_owner(t, addr2, &key2, tid),
            _ => Err(match r {
                Err(e) if e.code == ErrnoCode::ERESTARTSYS && requeued => errno!(EAGAIN),
                Err(e) if e.code == ErrnoCode::ERESTARTSYS => errno!(ERESTARTNOINTR),
                Err(e) => e,
                Ok(()) => errno!(ETIMEDOUT),
            }),
        }
    }

    /// FUTEX_CMP_REQUEUE_PI, with `*from == expect` (else EAGAIN): takes the PI lock
    /// at `addr2` (`to`) for the first waiter on `from` if it is free, and wakes that
    /// waiter; then requeues up to `n_requeue` more (the first one too if the lock
    /// was taken) onto `to` as its lockers. Every waiter it reaches must wait in
    /// FUTEX_WAIT_REQUEUE_PI for `to` (else EINVAL). Returns how many it woke or
    /// requeued.
    pub fn cmp_requeue_pi(&self, t: &Task, from: &FutexKey, from_off: u64, addr2: UserAddr, to: &FutexKey, n_requeue: u32, expect: u32) -> SysResult<u32> {
        let off2 = t.mm.futex_word_for_write(addr2)?;
        let mem = t.mm.memory_file();
        let mut st = loop {
            // As in lock_pi: the owner is looked up before the table lock.
            let seen = mem.load_u32(off2) & FUTEX_TID_MASK;
            let owner = if seen == 0 { None } else { t.pid_ns().thread(seen as i32) };
            let mut st = self.lock();
            if mem.load_u32(from_off) != expect {
                return Err(errno!(EAGAIN));
            }
            let top = st.queues.get(from).and_then(|q| q.iter().find(|e| !e.waiter.is_woken())).map(|e| e.waiter.clone());
            let Some(top) = top else { return Ok(0) };
            let Some((ref key2, top_tid)) = top.requeue_pi else { return Err(errno!(EINVAL)) };
            if key2 != to || top.pi_tid().is_some() {
                return Err(errno!(EINVAL));
            }
            if let Some(ps) = st.pi.get(to) {
                let word = mem.load_u32(off2);
                if word & FUTEX_TID_MASK == top_tid {
                    return Err(errno!(EDEADLK));
                }
                check_attach(word, ps.owner_tid, ps.fixup)?;
                break st;
            }
            let set_waiters = if n_requeue > 0 { FUTEX_WAITERS } else { 0 };
            let old = mem.update_u32(off2, |v| match v & FUTEX_TID_MASK {
                0 => (v & FUTEX_OWNER_DIED) | top_tid | set_waiters,
                _ => lock_word(v, top_tid),
            });
            match old & FUTEX_TID_MASK {
                o if o == top_tid => return Err(errno!(EDEADLK)),
                0 => {
                    // Taken for the top waiter, which returns owning it; any requeued
                    // after it wait behind it.
                    if let Some(q) = st.queues.get_mut(from) {
                        q.retain(|e| !Arc::ptr_eq(&e.waiter, &top));
                        if q.is_empty() {
                            st.queues.remove(from);
                        }
                    }
                    st.pi.insert(to.clone(), PiState { owner: top.thread.clone(), owner_tid: top_tid, fixup: false });
                    top.woken.store(HANDED, Ordering::Release);
                    top.thread.waiter.wake();
                    let moved = Self::requeue_to_pi(&mut st, from, to, n_requeue);
                    prune(&mut st, to);
                    return moved.map(|n| n + 1);
                }
                o if o != seen => continue,
                _ => {}
            }
            let owner = owner.filter(|o| !o.pi_exited.load(Ordering::Acquire)).ok_or_else(|| errno!(ESRCH))?;
            st.pi.insert(to.clone(), PiState { owner, owner_tid: seen, fixup: false });
            break st;
        };
        // The lock is held: the top waiter is requeued as well, beyond `n_requeue`.
        let moved = Self::requeue_to_pi(&mut st, from, to, n_requeue.saturating_add(1));
        prune(&mut st, to);
        moved
    }

    /// Moves up to `n` FUTEX_WAIT_REQUEUE_PI waiters from `from` to the PI futex `to`,
    /// where they wait as its lockers. EINVAL at the first other waiter (those moved
    /// before it stay moved).
    fn requeue_to_pi(st: &mut State, from: &FutexKey, to: &FutexKey, n: u32) -> SysResult<u32> {
        let Some(waiters) = st.queues.remove(from) else { return Ok(0) };
        let (mut count, mut bad) = (0u32, false);
        let (mut stay, mut moved) = (Vec::new(), Vec::new());
        for e in waiters {
            if e.waiter.is_woken() {
                continue;
            }
            if bad || count >= n {
                stay.push(e);
                continue;
            }
            match e.waiter.requeue_pi {
                Some((ref key2, tid)) if key2 == to && e.waiter.pi_tid().is_none() => {
                    e.waiter.pi_tid.store(tid, Ordering::Release);
                    count += 1;
                    moved.push(e);
                }
                _ => {
                    bad = true;
                    stay.push(e);
                }
            }
        }
        if !stay.is_empty() {
            st.queues.insert(from.clone(), stay);
        }
        if !moved.is_empty() {
            st.queues.entry(to.clone()).or_default().extend(moved);
        }
        if bad {
            return Err(errno!(EINVAL));
        }
        Ok(count)
    }

    /// FUTEX_UNLOCK_PI: the caller gives up the lock at `addr`, to the first waiter if
    /// any. EPERM unless the word names the caller.
    pub fn unlock_pi(&self, t: &Task, addr: UserAddr, private: bool) -> SysResult<()> {
        let tid = t.vnr(t.tid()) as u32;
        // Linux reads the word before it checks the address: a misaligned one that
        // does not name the caller is EPERM, not EINVAL.
        if t.mm.read_obj(crate::mm::UserRef::<u32>::new(addr))? & FUTEX_TID_MASK != tid {
            return Err(errno!(EPERM));
        }
        let key = FutexKey::for_addr(&t.mm, addr, private)?;
        let off = t.mm.futex_word_for_write(addr)?;
        let mem = t.mm.memory_file();
        let mut st = self.lock();
        if mem.load_u32(off) & FUTEX_TID_MASK != tid {
            return Err(errno!(EPERM));
        }
        if let Some(ps) = st.pi.get(&key) {
            if !Arc::ptr_eq(&ps.owner, &t.thread) {
                // The word names the caller, the kernel someone else: the app wrote it.
                return Err(errno!(EINVAL));
            }
            let next = st.queues.get(&key).and_then(|q| q.iter().find(|e| e.waiter.pi_tid().is_some() && !e.waiter.is_woken())).and_then(|e| e.waiter.pi_tid());
            if let Some(next) = next {
                let old = mem.update_u32(off, |v| unlock_word(v, tid, Some(next)));
                if old & FUTEX_TID_MASK != tid {
                    return Err(errno!(EPERM));
                }
                hand_over(&mut st, &key, HANDED);
                prune(&mut st, &key);
                return Ok(());
            }
            prune(&mut st, &key);
        }
        let old = mem.update_u32(off, |v| unlock_word(v, tid, None));
        if old & FUTEX_TID_MASK != tid {
            return Err(errno!(EPERM));
        }
        Ok(())
    }

    /// At a thread's exit, after its robust list: each PI futex it still owns with
    /// waiters goes to the first of them (Linux's exit_pi_state_list), and no locker
    /// may wait on the thread from now on.
    pub fn release_pi(&self, thread: &Arc<Thread>) {
        let mut st = self.lock();
        thread.pi_exited.store(true, Ordering::Release);
        let owned: Vec<FutexKey> = st.pi.iter().filter(|(_, ps)| Arc::ptr_eq(&ps.owner, thread)).map(|(k, _)| k.clone()).collect();
        for key in owned {
            hand_over(&mut st, &key, HANDED_OWNER_DIED);
            prune(&mut st, &key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: u32 = 100;
    const OTHER: u32 = 200;

    #[test]
    fn lock_takes_a_free_word_and_keeps_owner_died() {
        assert_eq!(lock_word(0, ME), ME);
        assert_eq!(lock_word(FUTEX_OWNER_DIED, ME), FUTEX_OWNER_DIED | ME);
        // FUTEX_WAITERS without an owner (the last waiter left): taken, bit dropped.
        assert_eq!(lock_word(FUTEX_WAITERS, ME), ME);
    }

    #[test]
    fn lock_marks_an_owned_word_and_leaves_one_the_caller_owns() {
        assert_eq!(lock_word(OTHER, ME), OTHER | FUTEX_WAITERS);
        assert_eq!(lock_word(OTHER | FUTEX_WAITERS | FUTEX_OWNER_DIED, ME), OTHER | FUTEX_WAITERS | FUTEX_OWNER_DIED);
        assert_eq!(lock_word(ME | FUTEX_WAITERS, ME), ME | FUTEX_WAITERS);
    }

    #[test]
    fn a_locker_waits_only_behind_the_owner_the_kernel_knows() {
        assert!(check_attach(OTHER | FUTEX_WAITERS, OTHER, false).is_ok());
        assert!(check_attach(ME | FUTEX_WAITERS, OTHER, false).is_err());
        assert!(check_attach(FUTEX_WAITERS | FUTEX_OWNER_DIED, OTHER, false).is_err());
        // Handed on at an owner's death: the word still shows none until the new owner writes it.
        assert!(check_attach(FUTEX_WAITERS | FUTEX_OWNER_DIED, OTHER, true).is_ok());
    }

    #[test]
    fn unlock_hands_over_with_waiters_or_frees() {
        assert_eq!(unlock_word(ME | FUTEX_WAITERS, ME, Some(OTHER)), OTHER | FUTEX_WAITERS);
        assert_eq!(unlock_word(ME | FUTEX_WAITERS | FUTEX_OWNER_DIED, ME, None), 0);
        // Not the caller's: untouched.
        assert_eq!(unlock_word(OTHER | FUTEX_WAITERS, ME, None), OTHER | FUTEX_WAITERS);
    }
}
