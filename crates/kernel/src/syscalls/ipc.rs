//! IPC: System V shared memory (shmget, shmat, shmdt, shmctl), semaphores (semget,
//! semop, semtimedop, semctl) and message queues (msgget, msgsnd, msgrcv, msgctl), and
//! POSIX message queues (mq_*); the objects live in `ipc/`.

use crate::ipc::msg::{MsqidDs, Pick, MSGMAX, MSGMNB, MSGMNI};
use crate::ipc::sem::{Blocked, Sembuf, SEMAEM, SEMMNI, SEMMNS, SEMMSL, SEMOPM, SEMVMX};
use crate::ipc::shm::{SHMALL, SHMMAX, SHMMNI, SHM_DEST, SHM_LOCKED};
use crate::ipc::mqueue::{MessageQueue, MqAttr, MqFile, Notify, HARD_MSGMAX, HARD_MSGSIZEMAX, MQ_PRIO_MAX, MSGSIZE_DEFAULT, MSGSIZE_MAX, MSG_DEFAULT, MSG_MAX, O_NONBLOCK};
use crate::ipc::msg::MsgQueue;
use crate::vfs::FileDescription;
use std::sync::Arc;
use crate::ipc::sem::SemSet;
use crate::ipc::{Ipc64Perm, IpcObject, Namespace, StatBy, Waitable, IPC_64, IPC_NOWAIT, S_IRUGO, S_IWUGO, IPC_INFO, IPC_RMID, IPC_SET, IPC_STAT};
use crate::mm::ops::Placement;
use crate::mm::UserRef;
use crate::task::{Task, RLIMIT_MEMLOCK};
use rvisor_abi::structs::Timespec;
use rvisor_abi::{consts, errno, error, ErrnoCode, PAGE_SIZE, SysResult, UserAddr};
use rvisor_platform::Perms;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

const SHM_RDONLY: i32 = 0o10000;
const SHM_RND: i32 = 0o20000;
const SHM_REMAP: i32 = 0o40000;
const SHM_EXEC: i32 = 0o100000;
const SHM_LOCK: i32 = 11;
const SHM_UNLOCK: i32 = 12;
const SHM_STAT: i32 = 13;
const SHM_INFO: i32 = 14;
const SHM_STAT_ANY: i32 = 15;

/// `struct shminfo64` (IPC_INFO).
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct ShmInfo64 {
    shmmax: u64,
    shmmin: u64,
    shmmni: u64,
    shmseg: u64,
    shmall: u64,
    unused: [u64; 4],
}

/// `struct shm_info` (SHM_INFO).
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct ShmUsage {
    used_ids: i32,
    pad: i32,
    shm_tot: u64,
    shm_rss: u64,
    shm_swp: u64,
    swap_attempts: u64,
    swap_successes: u64,
}

fn now_secs(t: &Task) -> i64 {
    t.kernel.clocks.realtime_ns() / 1_000_000_000
}

pub fn sys_shmget(t: &mut Task, key: i32, size: u64, flags: i32) -> SysResult<i32> {
    let now = now_secs(t);
    let (kernel, mf) = (t.kernel.clone(), t.mm.memory_file().clone());
    t.ns.ipc.shm.get_segment(&t.tg, key, size, flags, now, |size| kernel.memfds.sysv_file(&mf, size, key))
}

/// IPC_STAT and the *_STAT forms: the status out to `buf`.
fn ctl_stat<T: IpcObject>(t: &Task, objects: &Namespace<T>, id: i32, by: StatBy, buf: UserAddr) -> SysResult<i32> {
    let (ret, status) = objects.stat(&t.tg, id, by, &|pid| t.vnr(pid))?;
    t.mm.write_obj(UserRef::<T::Status>::new(buf), &status)?;
    Ok(ret)
}

/// The permissions an IPC_SET brings: every status structure starts with them.
fn new_perm(t: &Task, buf: UserAddr) -> SysResult<Ipc64Perm> {
    t.mm.read_obj(UserRef::<Ipc64Perm>::new(buf))
}

pub fn sys_shmat(t: &mut Task, id: i32, addr: UserAddr, flags: i32) -> SysResult<u64> {
    let rdonly = flags & SHM_RDONLY != 0;
    let mut at = addr.get();
    if at != 0 && at % PAGE_SIZE != 0 {
        if flags & SHM_RND == 0 {
            return error!(EINVAL);
        }
        at -= at % PAGE_SIZE;
    }
    if at == 0 && flags & SHM_REMAP != 0 {
        return error!(EINVAL);
    }
    let want = if rdonly { S_IRUGO } else { S_IRUGO | S_IWUGO };
    t.ns.ipc.shm.sweep();
    let (pages, size, dentry) = t.ns.ipc.shm.lookup(id, |s| {
        if !s.ds.perm.allows(&t.tg, &t.ns.ipc.owner, want) {
            return error!(EACCES);
        }
        Ok((s.pages.clone(), s.ds.segsz, s.dentry.clone()))
    })?;
    let placement = match at {
        0 => Placement::Hint(0),
        a if flags & SHM_REMAP != 0 => Placement::Fixed(a),
        a => Placement::FixedNoReplace(a),
    };
    let perms = Perms { read: true, write: !rdonly, exec: flags & SHM_EXEC != 0 };
    // Linux's shmat maps through do_mmap: within RLIMIT_AS, and RLIMIT_MEMLOCK
    // after mlockall(MCL_FUTURE), checked as the mapping goes in.
    let adm = super::mm::admission(t, false, t.mm.future_mlock() != crate::mm::Mlock::Unlocked);
    let mapped = t
        .mm
        .map_file(t.ctx.as_mut(), placement, size, perms, true, !rdonly, pages, 0, crate::mm::VmFile { dentry, writable: !rdonly }, Some(&adm))
        .map_err(|e| if e == errno!(EEXIST) { errno!(EINVAL) } else { e })?;
    let (now, pid) = (now_secs(t), t.tg.tgid);
    // The segment may have been removed meanwhile: the attachment stands all the same.
    let _ = t.ns.ipc.shm.lookup(id, |s| {
        s.ds.atime = now;
        s.ds.lpid = pid;
        Ok(())
    });
    Ok(mapped)
}

pub fn sys_shmdt(t: &mut Task, addr: UserAddr) -> SysResult<()> {
    if addr.get() % PAGE_SIZE != 0 {
        return error!(EINVAL);
    }
    let segment = t.mm.detach_sysv_segment(t.ctx.as_mut(), addr.get())?;
    let (now, pid) = (now_secs(t), t.tg.tgid);
    t.ns.ipc.shm.with(|reg| {
        if let Some(s) = reg.iter_mut().find(|s| std::sync::Arc::as_ptr(&s.pages) as usize == segment) {
            s.ds.dtime = now;
            s.ds.lpid = pid;
        }
    });
    Ok(())
}

pub fn sys_shmctl(t: &mut Task, id: i32, cmd: i32, buf: UserAddr) -> SysResult<i32> {
    let now = now_secs(t);
    let shm = &t.ns.ipc.shm;
    shm.sweep();
    match cmd & !IPC_64 {
        IPC_INFO => {
            let info = ShmInfo64 { shmmax: SHMMAX, shmmin: 1, shmmni: SHMMNI as u64, shmseg: SHMMNI as u64, shmall: SHMALL, unused: [0; 4] };
            t.mm.write_obj(UserRef::<ShmInfo64>::new(buf), &info)?;
            Ok(shm.with(|reg| reg.max_index()))
        }
        SHM_INFO => {
            let (usage, max) = shm.with(|reg| {
                let pages: u64 = reg.iter().map(|s| s.ds.segsz.div_ceil(PAGE_SIZE)).sum();
                (ShmUsage { used_ids: reg.iter().count() as i32, shm_tot: pages, shm_rss: pages, ..Default::default() }, reg.max_index())
            });
            t.mm.write_obj(UserRef::<ShmUsage>::new(buf), &usage)?;
            Ok(max)
        }
        IPC_STAT => ctl_stat(t, shm, id, StatBy::Id, buf),
        SHM_STAT => ctl_stat(t, shm, id, StatBy::Index, buf),
        SHM_STAT_ANY => ctl_stat(t, shm, id, StatBy::IndexAny, buf),
        IPC_SET => shm.set(&t.tg, id, &new_perm(t, buf)?, now, |_| Ok(())).map(|()| 0),
        // The key is free at once; an attached segment goes with its last mapping.
        IPC_RMID => shm
            .remove(&t.tg, id, now, |s| {
                s.ds.perm.mode |= SHM_DEST;
                s.ds.perm.key = crate::ipc::IPC_PRIVATE;
                s.attachments() > 0
            })
            .map(|_| 0),
        // Without CAP_IPC_LOCK only the owner or creator may, and SHM_LOCK
        // counts against the caller's RLIMIT_MEMLOCK what its user has locked
        // (ENOMEM past it, EPERM when it is 0), as Linux's shmctl_do_lock. The
        // memory file is never swapped: locking changes only that and the mode.
        c @ (SHM_LOCK | SHM_UNLOCK) => {
            let capable = t.tg.capable(consts::CAP_IPC_LOCK);
            let limit = t.tg.rlimit(RLIMIT_MEMLOCK).cur;
            let creds = t.tg.creds();
            shm.lookup(id, |s| {
                if !capable && creds.euid != s.ds.perm.uid && creds.euid != s.ds.perm.cuid {
                    return error!(EPERM);
                }
                if c == SHM_UNLOCK {
                    s.lock = None;
                    s.ds.perm.mode &= !SHM_LOCKED;
                    return Ok(0);
                }
                if !capable && limit == 0 {
                    return error!(EPERM);
                }
                if s.lock.is_none() {
                    s.lock = Some(t.kernel.shm_locks.charge(creds.uid, s.ds.segsz, limit, capable).ok_or_else(|| errno!(ENOMEM))?);
                    s.ds.perm.mode |= SHM_LOCKED;
                }
                Ok(0)
            })
        }
        _ => error!(EINVAL),
    }
}

const GETPID: i32 = 11;
const GETVAL: i32 = 12;
const GETALL: i32 = 13;
const GETNCNT: i32 = 14;
const GETZCNT: i32 = 15;
const SETVAL: i32 = 16;
const SETALL: i32 = 17;
const SEM_STAT: i32 = 18;
const SEM_INFO: i32 = 19;
const SEM_STAT_ANY: i32 = 20;

/// `struct seminfo` (IPC_INFO, SEM_INFO).
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct SemInfo {
    semmap: i32,
    semmni: i32,
    semmns: i32,
    semmnu: i32,
    semmsl: i32,
    semopm: i32,
    semume: i32,
    semusz: i32,
    semvmx: i32,
    semaem: i32,
}

pub fn sys_semget(t: &mut Task, key: i32, nsems: i32, flags: i32) -> SysResult<i32> {
    let now = now_secs(t);
    t.ns.ipc.sem.get_set(&t.tg, key, nsems, flags, now)
}

pub fn sys_semop(t: &mut Task, id: i32, sops: UserAddr, nsops: usize) -> SysResult<()> {
    semop(t, id, sops, nsops, None)
}

pub fn sys_semtimedop(t: &mut Task, id: i32, sops: UserAddr, nsops: usize, timeout: UserRef<Timespec>) -> SysResult<()> {
    let deadline = if timeout.addr.is_null() { None } else { Some(t.mm.read_obj(timeout)?.duration()?) };
    semop(t, id, sops, nsops, deadline)
}

/// semop: every operation at once, sleeping until they can all be done (EAGAIN at
/// the timeout, EINTR on a signal whatever SA_RESTART says, EIDRM if the set goes).
fn semop(t: &mut Task, id: i32, sops: UserAddr, nsops: usize, timeout: Option<std::time::Duration>) -> SysResult<()> {
    if nsops == 0 {
        return error!(EINVAL);
    }
    if nsops > SEMOPM {
        return error!(E2BIG);
    }
    let mut ops = vec![Sembuf::default(); nsops];
    t.mm.read_bytes(sops, ops.as_mut_slice().as_mut_bytes())?;
    let deadline = timeout.and_then(crate::time::deadline_in);
    let alter = ops.iter().any(|o| o.op != 0);
    let pid = t.tg.tgid;
    let waiting = std::cell::Cell::new((0, false));
    let attempt = |set: &mut SemSet| {
        if ops.iter().any(|o| o.num as u64 >= set.ds.nsems) {
            return error!(EFBIG);
        }
        if !set.ds.perm.allows(&t.tg, &t.ns.ipc.owner, if alter { S_IWUGO } else { S_IRUGO }) {
            return error!(EACCES);
        }
        match set.apply(&ops, pid, now_secs(t))? {
            Ok(()) => Ok(Attempt::Done(())),
            Err(Blocked::NoWait) => error!(EAGAIN),
            Err(Blocked::On(n, zero)) => {
                waiting.set((n, zero));
                set.start_waiting((n, zero));
                Ok(Attempt::Wait)
            }
        }
    };
    let woke = |set: &mut SemSet| set.stop_waiting(waiting.get());
    until_done(t, &t.ns.ipc.sem, id, deadline, attempt, woke).map_err(|e| if e.code == ErrnoCode::ETIMEDOUT { errno!(EAGAIN) } else { e })
}

/// What one attempt of a sleeping call came to.
enum Attempt<R> {
    Done(R),
    Wait,
}

/// The loop of semop, msgsnd and msgrcv: `attempt` runs under the object's lock and
/// either finishes or says to wait; the caller then sleeps on the object's wait queue
/// until the object changes (EINTR on a signal, whatever SA_RESTART says: System V
/// IPC calls never restart; ETIMEDOUT at the deadline), and `woke` runs under the
/// lock. An object gone meanwhile is EIDRM. A finished attempt wakes the other
/// sleepers, who may go on now.
fn until_done<T: Waitable, R>(
    t: &Task,
    objects: &Namespace<T>,
    id: i32,
    deadline: Option<std::time::Instant>,
    mut attempt: impl FnMut(&mut T) -> SysResult<Attempt<R>>,
    mut woke: impl FnMut(&mut T),
) -> SysResult<R> {
    let mut first = true;
    loop {
        let step = objects.lookup(id, |o| {
            let r = attempt(o)?;
            if matches!(r, Attempt::Wait) {
                o.queue().register(&t.thread);
            }
            Ok((r, o.version(), o.queue().clone()))
        });
        let (r, seen, queue) = match step {
            Err(e) if e.code == ErrnoCode::EINVAL && !first => return error!(EIDRM),
            s => s?,
        };
        first = false;
        if let Attempt::Done(v) = r {
            queue.notify();
            return Ok(v);
        }
        let slept = t.block_until(deadline, || !objects.lookup(id, |o| Ok(o.version())).is_ok_and(|v| v == seen));
        queue.unregister(&t.thread);
        let _ = objects.lookup(id, |o| {
            woke(o);
            Ok(())
        });
        match slept {
            Err(e) if e.code.is_restart() => return error!(EINTR),
            r => r?,
        }
    }
}

pub fn sys_semctl(t: &mut Task, id: i32, num: i32, cmd: i32, arg: u64) -> SysResult<i32> {
    let now = now_secs(t);
    let pid = t.tg.tgid;
    let buf = UserAddr(arg);
    match cmd & !IPC_64 {
        IPC_INFO | SEM_INFO => {
            let info = SemInfo {
                semmap: SEMMNS as i32,
                semmni: SEMMNI as i32,
                semmns: SEMMNS as i32,
                semmnu: SEMMNS as i32,
                semmsl: SEMMSL as i32,
                semopm: SEMOPM as i32,
                semume: SEMOPM as i32,
                semusz: 20,
                semvmx: SEMVMX,
                semaem: SEMAEM,
            };
            let (max, sets, sems) = t.ns.ipc.sem.with(|reg| (reg.max_index(), reg.iter().count() as i32, reg.iter().map(|s| s.ds.nsems as i32).sum::<i32>()));
            let info = if cmd & !IPC_64 == SEM_INFO { SemInfo { semusz: sets, semaem: sems, ..info } } else { info };
            t.mm.write_obj(UserRef::<SemInfo>::new(buf), &info)?;
            Ok(max)
        }
        IPC_STAT => ctl_stat(t, &t.ns.ipc.sem, id, StatBy::Id, buf),
        SEM_STAT => ctl_stat(t, &t.ns.ipc.sem, id, StatBy::Index, buf),
        SEM_STAT_ANY => ctl_stat(t, &t.ns.ipc.sem, id, StatBy::IndexAny, buf),
        IPC_SET => t.ns.ipc.sem.set(&t.tg, id, &new_perm(t, buf)?, now, |_| Ok(())).map(|()| 0),
        IPC_RMID => {
            // Sleepers find the set gone: EIDRM.
            if let Some(set) = t.ns.ipc.sem.remove(&t.tg, id, now, |_| false)? {
                set.queue.notify();
            }
            Ok(0)
        }
        GETALL => {
            let vals: Vec<u16> = t.ns.ipc.sem.lookup(id, |s| {
                if !s.ds.perm.allows(&t.tg, &t.ns.ipc.owner, S_IRUGO) {
                    return error!(EACCES);
                }
                Ok(s.sems.iter().map(|x| x.val as u16).collect())
            })?;
            t.mm.write_bytes(buf, vals.as_bytes())?;
            Ok(0)
        }
        SETALL => {
            let n = t.ns.ipc.sem.lookup(id, |s| Ok(s.sems.len()))?;
            let mut vals = vec![0u16; n];
            t.mm.read_bytes(buf, vals.as_mut_slice().as_mut_bytes())?;
            let queue = t.ns.ipc.sem.lookup(id, |s| {
                if !s.ds.perm.allows(&t.tg, &t.ns.ipc.owner, S_IWUGO) {
                    return error!(EACCES);
                }
                if vals.len() != s.sems.len() || vals.iter().any(|&v| v as i32 > SEMVMX) {
                    return error!(ERANGE);
                }
                let vals: Vec<i32> = vals.iter().map(|&v| v as i32).collect();
                s.set(0, &vals, pid, now);
                Ok(s.queue.clone())
            })?;
            queue.notify();
            Ok(0)
        }
        c @ (GETVAL | GETPID | GETNCNT | GETZCNT | SETVAL) => {
            let r = t.ns.ipc.sem.lookup(id, |s| {
                let n = usize::try_from(num).ok().filter(|&n| n < s.sems.len()).ok_or_else(|| errno!(EINVAL))?;
                let need = if c == SETVAL { S_IWUGO } else { S_IRUGO };
                if !s.ds.perm.allows(&t.tg, &t.ns.ipc.owner, need) {
                    return error!(EACCES);
                }
                Ok(match c {
                    GETVAL => (s.sems[n].val, None),
                    GETPID => (t.vnr(s.sems[n].pid), None),
                    GETNCNT => (s.waiters(n as u16, false), None),
                    GETZCNT => (s.waiters(n as u16, true), None),
                    _ => {
                        let v = arg as i32;
                        if !(0..=SEMVMX).contains(&v) {
                            return error!(ERANGE);
                        }
                        s.set(n, &[v], pid, now);
                        (0, Some(s.queue.clone()))
                    }
                })
            })?;
            if let Some(q) = r.1 {
                q.notify();
            }
            Ok(r.0)
        }
        _ => error!(EINVAL),
    }
}

const MSG_NOERROR: i32 = 0o10000;
const MSG_EXCEPT: i32 = 0o20000;
const MSG_COPY: i32 = 0o40000;
const MSG_STAT: i32 = 11;
const MSG_INFO: i32 = 12;
const MSG_STAT_ANY: i32 = 13;

/// `struct msginfo` (IPC_INFO, MSG_INFO).
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct MsgInfo {
    msgpool: i32,
    msgmap: i32,
    msgmax: i32,
    msgmnb: i32,
    msgmni: i32,
    msgssz: i32,
    msgtql: i32,
    msgseg: u16,
    pad: u16,
}

pub fn sys_msgget(t: &mut Task, key: i32, flags: i32) -> SysResult<i32> {
    let now = now_secs(t);
    t.ns.ipc.msg.get_queue(&t.tg, key, flags, now)
}

pub fn sys_msgsnd(t: &mut Task, id: i32, msgp: UserAddr, size: i64, flags: i32) -> SysResult<()> {
    let size = usize::try_from(size).ok().filter(|&s| s <= MSGMAX).ok_or_else(|| errno!(EINVAL))?;
    let mtype = t.mm.read_obj(UserRef::<i64>::new(msgp))?;
    if mtype < 1 {
        return error!(EINVAL);
    }
    let mut data = vec![0u8; size];
    t.mm.read_bytes(msgp.add(8)?, &mut data)?;
    let pid = t.tg.tgid;
    let attempt = |q: &mut MsgQueue| {
        if !q.ds.perm.allows(&t.tg, &t.ns.ipc.owner, S_IWUGO) {
            return error!(EACCES);
        }
        if q.fits(data.len()) {
            q.push(mtype, std::mem::take(&mut data), pid, now_secs(t));
            return Ok(Attempt::Done(()));
        }
        if flags & IPC_NOWAIT != 0 {
            return error!(EAGAIN);
        }
        Ok(Attempt::Wait)
    };
    until_done(t, &t.ns.ipc.msg, id, None, attempt, |_| {})
}

pub fn sys_msgrcv(t: &mut Task, id: i32, msgp: UserAddr, size: i64, msgtyp: i64, flags: i32) -> SysResult<usize> {
    let max = usize::try_from(size).map_err(|_| errno!(EINVAL))?;
    let pick = if flags & MSG_COPY != 0 {
        if flags & IPC_NOWAIT == 0 || flags & MSG_EXCEPT != 0 {
            return error!(EINVAL);
        }
        Pick::Copy(usize::try_from(msgtyp).map_err(|_| errno!(EINVAL))?)
    } else {
        match msgtyp {
            0 => Pick::First,
            m if m > 0 && flags & MSG_EXCEPT != 0 => Pick::NotOfType(m),
            m if m > 0 => Pick::OfType(m),
            m => Pick::LowestUpTo(m.checked_neg().unwrap_or(i64::MAX)),
        }
    };
    let pid = t.tg.tgid;
    let attempt = |q: &mut MsgQueue| {
        if !q.ds.perm.allows(&t.tg, &t.ns.ipc.owner, S_IRUGO) {
            return error!(EACCES);
        }
        if let Some(m) = q.take(pick, max, flags & MSG_NOERROR != 0, pid, now_secs(t))? {
            return Ok(Attempt::Done(m));
        }
        if flags & IPC_NOWAIT != 0 {
            return error!(ENOMSG);
        }
        Ok(Attempt::Wait)
    };
    let (mtype, data) = until_done(t, &t.ns.ipc.msg, id, None, attempt, |_| {})?;
    t.mm.write_obj(UserRef::<i64>::new(msgp), &mtype)?;
    t.mm.write_bytes(msgp.add(8)?, &data)?;
    Ok(data.len())
}

pub fn sys_msgctl(t: &mut Task, id: i32, cmd: i32, buf: UserAddr) -> SysResult<i32> {
    let now = now_secs(t);
    match cmd & !IPC_64 {
        c @ (IPC_INFO | MSG_INFO) => {
            let (max, queues, messages, bytes) = t.ns.ipc.msg.with(|reg| {
                let (n, bytes) = reg.iter().fold((0u64, 0u64), |(n, b), q| (n + q.ds.qnum, b + q.ds.cbytes));
                (reg.max_index(), reg.iter().count() as i32, n as i32, bytes as i32)
            });
            let mut info = MsgInfo { msgpool: 32000, msgmap: MSGMNB as i32, msgmax: MSGMAX as i32, msgmnb: MSGMNB as i32, msgmni: MSGMNI as i32, msgssz: 16, msgtql: MSGMNB as i32, msgseg: 0xffff, pad: 0 };
            if c == MSG_INFO {
                (info.msgpool, info.msgmap, info.msgtql) = (queues, messages, bytes);
            }
            t.mm.write_obj(UserRef::<MsgInfo>::new(buf), &info)?;
            Ok(max)
        }
        IPC_STAT => ctl_stat(t, &t.ns.ipc.msg, id, StatBy::Id, buf),
        MSG_STAT => ctl_stat(t, &t.ns.ipc.msg, id, StatBy::Index, buf),
        MSG_STAT_ANY => ctl_stat(t, &t.ns.ipc.msg, id, StatBy::IndexAny, buf),
        IPC_SET => {
            let new = t.mm.read_obj(UserRef::<MsqidDs>::new(buf))?;
            t.ns.ipc.msg.set(&t.tg, id, &new.perm, now, |q| {
                if new.qbytes > MSGMNB && !t.tg.capable_in(&crate::task::UserNamespace::initial(), consts::CAP_SYS_RESOURCE) {
                    return error!(EPERM);
                }
                q.ds.qbytes = new.qbytes;
                // A bigger queue may take a waiting sender's message.
                q.queue.notify();
                Ok(())
            })?;
            Ok(0)
        }
        IPC_RMID => {
            // Sleepers find the queue gone: EIDRM.
            if let Some(q) = t.ns.ipc.msg.remove(&t.tg, id, now, |_| false)? {
                q.queue.notify();
            }
            Ok(0)
        }
        _ => error!(EINVAL),
    }
}

const NAME_MAX: usize = 255;
const O_ACCMODE: i32 = 3;
const O_CREAT: i32 = 0o100;
const O_EXCL: i32 = 0o200;
const O_CLOEXEC: i32 = 0o2000000;

/// A queue's name as mq_open and mq_unlink take it (glibc drops the leading slash).
fn mq_name(t: &Task, name: crate::syscalls::args::UserCStr) -> SysResult<Vec<u8>> {
    let n = t.mm.read_cstr(name.0, NAME_MAX + 1)?;
    if n.is_empty() {
        return error!(ENOENT);
    }
    // As Linux's lookup in the mqueue file system: no "." or "..", no inner slash.
    if n.contains(&b'/') || n == b"." || n == b".." {
        return error!(EACCES);
    }
    Ok(n)
}

/// Whether `t` may open `mq` for `acc` (O_RDONLY, O_WRONLY, O_RDWR), by its mode bits.
fn mq_allows(t: &Task, mq: &MessageQueue, acc: i32) -> bool {
    let want = match acc {
        0 => 4,
        1 => 2,
        _ => 6,
    };
    let c = t.tg.creds();
    let bits = if c.euid == mq.uid {
        mq.mode >> 6
    } else if c.egid == mq.gid || t.tg.groups.lock().unwrap_or_else(|e| e.into_inner()).contains(&mq.gid) {
        mq.mode >> 3
    } else {
        mq.mode
    };
    bits & want == want || t.tg.capable_in(&t.ns.ipc.owner, consts::CAP_DAC_OVERRIDE)
}

pub fn sys_mq_open(t: &mut Task, name: crate::syscalls::args::UserCStr, oflag: i32, mode: u32, attr: UserRef<MqAttr>) -> SysResult<crate::vfs::Fd> {
    let name = mq_name(t, name)?;
    let acc = oflag & O_ACCMODE;
    if acc == O_ACCMODE {
        return error!(EINVAL);
    }
    let wanted = if oflag & O_CREAT != 0 && !attr.addr.is_null() { Some(t.mm.read_obj(attr)?) } else { None };
    let mq = {
        let mut names = t.ns.ipc.mqueues.names.lock().unwrap_or_else(|e| e.into_inner());
        match names.get(&name) {
            Some(_) if oflag & O_CREAT != 0 && oflag & O_EXCL != 0 => return error!(EEXIST),
            Some(mq) => {
                if !mq_allows(t, mq, acc) {
                    return error!(EACCES);
                }
                mq.clone()
            }
            None if oflag & O_CREAT == 0 => return error!(ENOENT),
            None => {
                let (maxmsg, msgsize) = match wanted {
                    None => (MSG_DEFAULT, MSGSIZE_DEFAULT),
                    Some(a) => {
                        let privileged = t.tg.capable_in(&crate::task::UserNamespace::initial(), consts::CAP_SYS_RESOURCE);
                        if a.maxmsg <= 0 || a.msgsize <= 0 || a.maxmsg > HARD_MSGMAX || a.msgsize > HARD_MSGSIZEMAX {
                            return error!(EINVAL);
                        }
                        if !privileged && (a.maxmsg > MSG_MAX || a.msgsize > MSGSIZE_MAX) {
                            return error!(EINVAL);
                        }
                        (a.maxmsg, a.msgsize)
                    }
                };
                let c = t.tg.creds();
                let mode = mode & 0o777 & !t.fs.umask();
                let mq = Arc::new(MessageQueue::new(maxmsg as usize, msgsize as usize, c.euid, c.egid, mode));
                names.insert(name.clone(), mq.clone());
                mq
            }
        }
    };
    let file = MqFile::new(mq, name, acc as u32 | (oflag as u32 & O_NONBLOCK));
    crate::syscalls::pipe::install(t, Arc::new(file), oflag & O_CLOEXEC != 0)
}

pub fn sys_mq_unlink(t: &mut Task, name: crate::syscalls::args::UserCStr) -> SysResult<()> {
    let name = mq_name(t, name)?;
    let mut names = t.ns.ipc.mqueues.names.lock().unwrap_or_else(|e| e.into_inner());
    let mq = names.get(&name).ok_or_else(|| errno!(ENOENT))?;
    // /dev/mqueue is sticky: the owner, or root, removes a name.
    if mq.uid != t.tg.creds().euid && !t.tg.capable_in(&t.ns.ipc.owner, consts::CAP_FOWNER) {
        return error!(EACCES);
    }
    names.remove(&name);
    Ok(())
}

/// The queue behind descriptor `fd` (EBADF for any other file), checked for reading
/// or writing.
fn mq_file(t: &Task, fd: crate::vfs::Fd, write: bool) -> SysResult<Arc<dyn crate::vfs::FileDescription>> {
    let f = t.fds.get(fd)?;
    let acc = f.as_any().and_then(|a| a.downcast_ref::<MqFile>()).map(|m| m.status_flags() as i32 & O_ACCMODE).ok_or_else(|| errno!(EBADF))?;
    if (write && acc == 0) || (!write && acc == 1) {
        return error!(EBADF);
    }
    Ok(f)
}

/// An absolute CLOCK_REALTIME deadline, checked whether or not it will be needed.
fn mq_deadline(t: &Task, timeout: UserRef<Timespec>) -> SysResult<Option<i64>> {
    if timeout.addr.is_null() {
        return Ok(None);
    }
    let ts = t.mm.read_obj(timeout)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return error!(EINVAL);
    }
    Ok(Some(ts.as_ns()))
}

/// Waits on `mq` until `ready`, or the deadline (ETIMEDOUT), or a signal
/// (ERESTARTSYS: these calls restart under SA_RESTART).
fn mq_wait(t: &Task, mq: &MessageQueue, receiver: bool, deadline: Option<i64>, ready: impl FnMut() -> bool) -> SysResult<()> {
    mq.register(t, receiver);
    let r = match deadline {
        Some(at) => t.block_until_realtime(at, ready),
        None => t.block_until(None, ready),
    };
    mq.unregister(t, receiver);
    r
}

pub fn sys_mq_timedsend(t: &mut Task, mqd: crate::vfs::Fd, msg: UserAddr, len: usize, prio: u32, timeout: UserRef<Timespec>) -> SysResult<()> {
    let f = mq_file(t, mqd, true)?;
    let Some(file) = f.as_any().and_then(|a| a.downcast_ref::<MqFile>()) else { return error!(EBADF) };
    let mq = &file.mq;
    if prio >= MQ_PRIO_MAX {
        return error!(EINVAL);
    }
    if len > mq.msgsize {
        return error!(EMSGSIZE);
    }
    let deadline = mq_deadline(t, timeout)?;
    let mut data = vec![0u8; len];
    t.mm.read_bytes(msg, &mut data)?;
    loop {
        if mq.send(data.clone(), prio, &t.tg) {
            return Ok(());
        }
        if file.nonblocking() {
            return error!(EAGAIN);
        }
        mq_wait(t, mq, false, deadline, || mq.count() < mq.maxmsg)?;
    }
}

pub fn sys_mq_timedreceive(t: &mut Task, mqd: crate::vfs::Fd, msg: UserAddr, len: usize, prio: UserAddr, timeout: UserRef<Timespec>) -> SysResult<usize> {
    let f = mq_file(t, mqd, false)?;
    let Some(file) = f.as_any().and_then(|a| a.downcast_ref::<MqFile>()) else { return error!(EBADF) };
    let mq = &file.mq;
    if len < mq.msgsize {
        return error!(EMSGSIZE);
    }
    let deadline = mq_deadline(t, timeout)?;
    let (p, data) = loop {
        if let Some(m) = mq.receive() {
            break m;
        }
        if file.nonblocking() {
            return error!(EAGAIN);
        }
        mq_wait(t, mq, true, deadline, || mq.count() > 0)?;
    };
    t.mm.write_bytes(msg, &data)?;
    if !prio.is_null() {
        t.mm.write_obj(UserRef::<u32>::new(prio), &p)?;
    }
    Ok(data.len())
}

pub fn sys_mq_notify(t: &mut Task, mqd: crate::vfs::Fd, sevp: UserAddr) -> SysResult<()> {
    const SIGEV_SIGNAL: i32 = 0;
    const SIGEV_NONE: i32 = 1;
    let f = t.fds.get(mqd)?;
    let Some(file) = f.as_any().and_then(|a| a.downcast_ref::<MqFile>()) else { return error!(EBADF) };
    let n = if sevp.is_null() {
        None
    } else {
        let raw: [u8; 64] = t.mm.read_obj(UserRef::new(sevp))?;
        let word = |i: usize| i32::from_ne_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        let value = u64::from_ne_bytes(raw[..8].try_into().map_err(|_| errno!(EFAULT))?);
        let (signo, notify) = (word(8), word(12));
        let signo = match notify {
            SIGEV_NONE => 0,
            SIGEV_SIGNAL if (1..=64).contains(&signo) => signo as u32,
            // SIGEV_THREAD needs a netlink socket, which the sandbox has not.
            _ => return error!(EINVAL),
        };
        Some(Notify { process: Arc::downgrade(&t.tg), tgid: t.tg.tgid, signo, value })
    };
    file.mq.set_notify(t.tg.tgid, n)
}

pub fn sys_mq_getsetattr(t: &mut Task, mqd: crate::vfs::Fd, new: UserRef<MqAttr>, old: UserRef<MqAttr>) -> SysResult<()> {
    let f = t.fds.get(mqd)?;
    let Some(file) = f.as_any().and_then(|a| a.downcast_ref::<MqFile>()) else { return error!(EBADF) };
    let set = if new.addr.is_null() { None } else { Some(t.mm.read_obj(new)?) };
    if set.is_some_and(|a| a.flags & !(O_NONBLOCK as i64) != 0) {
        return error!(EINVAL);
    }
    if !old.addr.is_null() {
        let now = MqAttr { flags: (file.status_flags() & O_NONBLOCK) as i64, maxmsg: file.mq.maxmsg as i64, msgsize: file.mq.msgsize as i64, curmsgs: file.mq.count() as i64, ..Default::default() };
        t.mm.write_obj(old, &now)?;
    }
    if let Some(a) = set {
        file.set_status_flags((file.status_flags() & !O_NONBLOCK) | a.flags as u32);
    }
    Ok(())
}
