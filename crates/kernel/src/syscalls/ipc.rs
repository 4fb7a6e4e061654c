//! System V IPC: shared memory (shmget, shmat, shmdt, shmctl), semaphores (semget,
//! semop, semtimedop, semctl) and message queues (msgget, msgsnd, msgrcv, msgctl);
//! the objects live in `ipc/`.

use crate::ipc::msg::{MsqidDs, Pick, MSGMAX, MSGMNB, MSGMNI};
use crate::ipc::sem::{Blocked, SemidDs, Sembuf, SEMAEM, SEMMNI, SEMMNS, SEMMSL, SEMOPM, SEMVMX};
use crate::ipc::shm::{ShmidDs, SHMALL, SHMMAX, SHMMNI, SHM_DEST, SHM_LOCKED};
use crate::ipc::{IPC_64, IPC_INFO, IPC_RMID, IPC_SET, IPC_STAT};
use crate::mm::ops::Placement;
use crate::mm::UserRef;
use crate::task::Task;
use rvisor_abi::structs::Timespec;
use rvisor_abi::{errno, error, ErrnoCode, SysResult, UserAddr, PAGE_SIZE};
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
/// Read permission in all three positions (what IPC_STAT and a read-only attach need).
const S_IRUGO: i32 = 0o444;
const S_IWUGO: i32 = 0o222;

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
    t.kernel.shm.get(&t.tg, key, size, flags, now, |size| kernel.memfds.anonymous_pages(&mf, size))
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
    let (pages, size) = t.kernel.shm.lookup(id, |s| {
        if !s.ds.perm.allows(&t.tg, want) {
            return error!(EACCES);
        }
        Ok((s.pages.clone(), s.ds.segsz))
    })?;
    let placement = match at {
        0 => Placement::Hint(0),
        a if flags & SHM_REMAP != 0 => Placement::Fixed(a),
        a => Placement::FixedNoReplace(a),
    };
    let perms = Perms { read: true, write: !rdonly, exec: flags & SHM_EXEC != 0 };
    let mapped = t
        .mm
        .map_file(t.ctx.as_mut(), placement, size, perms, true, !rdonly, pages, 0)
        .map_err(|e| if e == errno!(EEXIST) { errno!(EINVAL) } else { e })?;
    let (now, pid) = (now_secs(t), t.tg.tgid);
    // The segment may have been removed meanwhile: the attachment stands all the same.
    let _ = t.kernel.shm.lookup(id, |s| {
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
    t.kernel.shm.with(|reg| {
        if let Some(s) = reg.iter_mut().find(|s| std::sync::Arc::as_ptr(&s.pages) as usize == segment) {
            s.ds.dtime = now;
            s.ds.lpid = pid;
        }
    });
    Ok(())
}

pub fn sys_shmctl(t: &mut Task, id: i32, cmd: i32, buf: UserAddr) -> SysResult<i32> {
    let now = now_secs(t);
    match cmd & !IPC_64 {
        IPC_INFO => {
            let info = ShmInfo64 { shmmax: SHMMAX, shmmin: 1, shmmni: SHMMNI as u64, shmseg: SHMMNI as u64, shmall: SHMALL, unused: [0; 4] };
            t.mm.write_obj(UserRef::<ShmInfo64>::new(buf), &info)?;
            Ok(t.kernel.shm.with(|reg| reg.max_index()))
        }
        SHM_INFO => {
            let (usage, max) = t.kernel.shm.with(|reg| {
                let pages: u64 = reg.iter().map(|(_, s)| s.ds.segsz.div_ceil(PAGE_SIZE)).sum();
                let used = reg.iter().count() as i32;
                (ShmUsage { used_ids: used, shm_tot: pages, shm_rss: pages, ..Default::default() }, reg.max_index())
            });
            t.mm.write_obj(UserRef::<ShmUsage>::new(buf), &usage)?;
            Ok(max)
        }
        IPC_STAT | SHM_STAT | SHM_STAT_ANY => {
            let c = cmd & !IPC_64;
            let (ret, ds) = t.kernel.shm.with(|reg| {
                let (ret, s) = if c == IPC_STAT {
                    (0, reg.get(id, |s| s.ds.perm.seq).ok_or_else(|| errno!(EINVAL))?)
                } else {
                    reg.at_index(id, |s| s.ds.perm.seq).ok_or_else(|| errno!(EINVAL))?
                };
                if c != SHM_STAT_ANY && !s.ds.perm.allows(&t.tg, S_IRUGO) {
                    return Err(errno!(EACCES));
                }
                Ok((ret, s.status()))
            })?;
            t.mm.write_obj(UserRef::<ShmidDs>::new(buf), &ds)?;
            Ok(ret)
        }
        IPC_SET => {
            let new = t.mm.read_obj(UserRef::<ShmidDs>::new(buf))?;
            t.kernel.shm.lookup(id, |s| {
                if !s.ds.perm.may_change(&t.tg) {
                    return error!(EPERM);
                }
                s.ds.perm.uid = new.perm.uid;
                s.ds.perm.gid = new.perm.gid;
                s.ds.perm.mode = (s.ds.perm.mode & !0o777) | (new.perm.mode & 0o777);
                s.ds.ctime = now;
                Ok(0)
            })
        }
        IPC_RMID => t.kernel.shm.lookup(id, |s| {
            if !s.ds.perm.may_change(&t.tg) {
                return error!(EPERM);
            }
            // The key is free at once; the segment goes with its last mapping.
            s.ds.perm.mode |= SHM_DEST;
            s.ds.perm.key = crate::ipc::IPC_PRIVATE;
            s.ds.ctime = now;
            Ok(0)
        }),
        SHM_LOCK | SHM_UNLOCK => t.kernel.shm.lookup(id, |s| {
            if !s.ds.perm.may_change(&t.tg) {
                return error!(EPERM);
            }
            // The memory file is never swapped: locking only shows in the mode.
            if cmd & !IPC_64 == SHM_LOCK {
                s.ds.perm.mode |= SHM_LOCKED;
            } else {
                s.ds.perm.mode &= !SHM_LOCKED;
            }
            Ok(0)
        }),
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
    t.kernel.sem.get(&t.tg, key, nsems, flags, now)
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
    let mut first = true;
    loop {
        let now = now_secs(t);
        let step = t.kernel.sem.lookup(id, |set| {
            if ops.iter().any(|o| o.num as u64 >= set.ds.nsems) {
                return error!(EFBIG);
            }
            if !set.ds.perm.allows(&t.tg, if alter { S_IWUGO } else { S_IRUGO }) {
                return error!(EACCES);
            }
            Ok(match set.apply(&ops, pid, now)? {
                Ok(()) => Ok(set.queue.clone()),
                Err(Blocked::NoWait) => return error!(EAGAIN),
                Err(Blocked::On(n, zero)) => {
                    set.start_waiting((n, zero));
                    set.queue.register(&t.thread);
                    Err(((n, zero), set.version, set.queue.clone()))
                }
            })
        });
        let step = match step {
            Err(e) if e.code == ErrnoCode::EINVAL && !first => return error!(EIDRM),
            s => s?,
        };
        first = false;
        let (waiting, seen, queue) = match step {
            Ok(queue) => {
                queue.notify();
                return Ok(());
            }
            Err(w) => w,
        };
        let r = sleep_for_change(t, &queue, seen, deadline, || t.kernel.sem.lookup(id, |s| Ok(s.version)).ok());
        let _ = t.kernel.sem.lookup(id, |set| {
            set.stop_waiting(waiting);
            Ok(())
        });
        match r {
            Err(e) if e.code == ErrnoCode::ETIMEDOUT => return error!(EAGAIN),
            r => r?,
        }
    }
}

/// Sleeps until the object's change counter moves from `seen` (`version` is None once
/// the object is gone), after registering on `queue` under its lock: EINTR on a
/// signal, whatever SA_RESTART says (System V IPC calls never restart), ETIMEDOUT at
/// the deadline.
fn sleep_for_change(t: &Task, queue: &crate::vfs::WaitQueue, seen: u64, deadline: Option<std::time::Instant>, version: impl Fn() -> Option<u64>) -> SysResult<()> {
    let r = t.block_until(deadline, || version().map_or(true, |v| v != seen));
    queue.unregister(&t.thread);
    match r {
        Err(e) if e.code.is_restart() => error!(EINTR),
        r => r,
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
            let (max, sets, sems) = t.kernel.sem.with(|reg| (reg.max_index(), reg.iter().count() as i32, reg.iter().map(|(_, s)| s.ds.nsems as i32).sum::<i32>()));
            let info = if cmd & !IPC_64 == SEM_INFO { SemInfo { semusz: sets, semaem: sems, ..info } } else { info };
            t.mm.write_obj(UserRef::<SemInfo>::new(buf), &info)?;
            Ok(max)
        }
        c @ (IPC_STAT | SEM_STAT | SEM_STAT_ANY) => {
            let (ret, ds) = t.kernel.sem.with(|reg| {
                let (ret, s) = if c == IPC_STAT {
                    (0, reg.get(id, |s| s.ds.perm.seq).ok_or_else(|| errno!(EINVAL))?)
                } else {
                    reg.at_index(id, |s| s.ds.perm.seq).ok_or_else(|| errno!(EINVAL))?
                };
                if c != SEM_STAT_ANY && !s.ds.perm.allows(&t.tg, S_IRUGO) {
                    return Err(errno!(EACCES));
                }
                Ok((ret, s.status()))
            })?;
            t.mm.write_obj(UserRef::<SemidDs>::new(buf), &ds)?;
            Ok(ret)
        }
        IPC_SET => {
            let new = t.mm.read_obj(UserRef::<SemidDs>::new(buf))?;
            t.kernel.sem.lookup(id, |s| {
                if !s.ds.perm.may_change(&t.tg) {
                    return error!(EPERM);
                }
                s.ds.perm.uid = new.perm.uid;
                s.ds.perm.gid = new.perm.gid;
                s.ds.perm.mode = (s.ds.perm.mode & !0o777) | (new.perm.mode & 0o777);
                s.ds.ctime = now;
                Ok(0)
            })
        }
        IPC_RMID => {
            let queue = t.kernel.sem.with(|reg| {
                let s = reg.get(id, |s| s.ds.perm.seq).ok_or_else(|| errno!(EINVAL))?;
                if !s.ds.perm.may_change(&t.tg) {
                    return Err(errno!(EPERM));
                }
                let q = s.queue.clone();
                reg.remove(id);
                Ok(q)
            })?;
            // Sleepers find the set gone: EIDRM.
            queue.notify();
            Ok(0)
        }
        GETALL => {
            let vals: Vec<u16> = t.kernel.sem.lookup(id, |s| {
                if !s.ds.perm.allows(&t.tg, S_IRUGO) {
                    return error!(EACCES);
                }
                Ok(s.sems.iter().map(|x| x.val as u16).collect())
            })?;
            t.mm.write_bytes(buf, vals.as_bytes())?;
            Ok(0)
        }
        SETALL => {
            let n = t.kernel.sem.lookup(id, |s| Ok(s.sems.len()))?;
            let mut vals = vec![0u16; n];
            t.mm.read_bytes(buf, vals.as_mut_slice().as_mut_bytes())?;
            let queue = t.kernel.sem.lookup(id, |s| {
                if !s.ds.perm.allows(&t.tg, S_IWUGO) {
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
            let r = t.kernel.sem.lookup(id, |s| {
                let n = usize::try_from(num).ok().filter(|&n| n < s.sems.len()).ok_or_else(|| errno!(EINVAL))?;
                let need = if c == SETVAL { S_IWUGO } else { S_IRUGO };
                if !s.ds.perm.allows(&t.tg, need) {
                    return error!(EACCES);
                }
                Ok(match c {
                    GETVAL => (s.sems[n].val, None),
                    GETPID => (s.sems[n].pid, None),
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
const IPC_NOWAIT_FLAG: i32 = 0o4000;
const CAP_SYS_RESOURCE: u32 = 24;

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
    t.kernel.msg.get(&t.tg, key, flags, now)
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
    let mut first = true;
    loop {
        let now = now_secs(t);
        let step = t.kernel.msg.lookup(id, |q| {
            if !q.ds.perm.allows(&t.tg, S_IWUGO) {
                return error!(EACCES);
            }
            if q.fits(data.len()) {
                q.push(mtype, std::mem::take(&mut data), pid, now);
                return Ok(Ok(q.queue.clone()));
            }
            if flags & IPC_NOWAIT_FLAG != 0 {
                return error!(EAGAIN);
            }
            q.queue.register(&t.thread);
            Ok(Err((q.version, q.queue.clone())))
        });
        let step = match step {
            Err(e) if e.code == ErrnoCode::EINVAL && !first => return error!(EIDRM),
            s => s?,
        };
        first = false;
        match step {
            Ok(queue) => {
                queue.notify();
                return Ok(());
            }
            Err((seen, queue)) => sleep_for_change(t, &queue, seen, None, || t.kernel.msg.lookup(id, |q| Ok(q.version)).ok())?,
        }
    }
}

pub fn sys_msgrcv(t: &mut Task, id: i32, msgp: UserAddr, size: i64, msgtyp: i64, flags: i32) -> SysResult<usize> {
    let max = usize::try_from(size).map_err(|_| errno!(EINVAL))?;
    let pick = if flags & MSG_COPY != 0 {
        if flags & IPC_NOWAIT_FLAG == 0 || flags & MSG_EXCEPT != 0 {
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
    let mut first = true;
    loop {
        let now = now_secs(t);
        let step = t.kernel.msg.lookup(id, |q| {
            if !q.ds.perm.allows(&t.tg, S_IRUGO) {
                return error!(EACCES);
            }
            if let Some(m) = q.take(pick, max, flags & MSG_NOERROR != 0, pid, now)? {
                return Ok(Ok((m, q.queue.clone())));
            }
            if flags & IPC_NOWAIT_FLAG != 0 {
                return error!(ENOMSG);
            }
            q.queue.register(&t.thread);
            Ok(Err((q.version, q.queue.clone())))
        });
        let step = match step {
            Err(e) if e.code == ErrnoCode::EINVAL && !first => return error!(EIDRM),
            s => s?,
        };
        first = false;
        match step {
            Ok(((mtype, data), queue)) => {
                // Room in the queue: senders may go on.
                queue.notify();
                t.mm.write_obj(UserRef::<i64>::new(msgp), &mtype)?;
                t.mm.write_bytes(msgp.add(8)?, &data)?;
                return Ok(data.len());
            }
            Err((seen, queue)) => sleep_for_change(t, &queue, seen, None, || t.kernel.msg.lookup(id, |q| Ok(q.version)).ok())?,
        }
    }
}

pub fn sys_msgctl(t: &mut Task, id: i32, cmd: i32, buf: UserAddr) -> SysResult<i32> {
    let now = now_secs(t);
    match cmd & !IPC_64 {
        c @ (IPC_INFO | MSG_INFO) => {
            let (max, queues, messages, bytes) = t.kernel.msg.with(|reg| {
                let (n, bytes) = reg.iter().fold((0u64, 0u64), |(n, b), (_, q)| (n + q.ds.qnum, b + q.ds.cbytes));
                (reg.max_index(), reg.iter().count() as i32, n as i32, bytes as i32)
            });
            let mut info = MsgInfo { msgpool: 32000, msgmap: MSGMNB as i32, msgmax: MSGMAX as i32, msgmnb: MSGMNB as i32, msgmni: MSGMNI as i32, msgssz: 16, msgtql: MSGMNB as i32, msgseg: 0xffff, pad: 0 };
            if c == MSG_INFO {
                (info.msgpool, info.msgmap, info.msgtql) = (queues, messages, bytes);
            }
            t.mm.write_obj(UserRef::<MsgInfo>::new(buf), &info)?;
            Ok(max)
        }
        c @ (IPC_STAT | MSG_STAT | MSG_STAT_ANY) => {
            let (ret, ds) = t.kernel.msg.with(|reg| {
                let (ret, q) = if c == IPC_STAT {
                    (0, reg.get(id, |q| q.ds.perm.seq).ok_or_else(|| errno!(EINVAL))?)
                } else {
                    reg.at_index(id, |q| q.ds.perm.seq).ok_or_else(|| errno!(EINVAL))?
                };
                if c != MSG_STAT_ANY && !q.ds.perm.allows(&t.tg, S_IRUGO) {
                    return Err(errno!(EACCES));
                }
                Ok((ret, q.ds))
            })?;
            t.mm.write_obj(UserRef::<MsqidDs>::new(buf), &ds)?;
            Ok(ret)
        }
        IPC_SET => {
            let new = t.mm.read_obj(UserRef::<MsqidDs>::new(buf))?;
            let queue = t.kernel.msg.lookup(id, |q| {
                if !q.ds.perm.may_change(&t.tg) {
                    return error!(EPERM);
                }
                if new.qbytes > MSGMNB && !t.tg.capable(CAP_SYS_RESOURCE) {
                    return error!(EPERM);
                }
                q.ds.qbytes = new.qbytes;
                q.ds.perm.uid = new.perm.uid;
                q.ds.perm.gid = new.perm.gid;
                q.ds.perm.mode = (q.ds.perm.mode & !0o777) | (new.perm.mode & 0o777);
                q.ds.ctime = now;
                q.version += 1;
                Ok(q.queue.clone())
            })?;
            // A bigger queue may take a waiting sender's message.
            queue.notify();
            Ok(0)
        }
        IPC_RMID => {
            let queue = t.kernel.msg.with(|reg| {
                let q = reg.get(id, |q| q.ds.perm.seq).ok_or_else(|| errno!(EINVAL))?;
                if !q.ds.perm.may_change(&t.tg) {
                    return Err(errno!(EPERM));
                }
                let w = q.queue.clone();
                reg.remove(id);
                Ok(w)
            })?;
            queue.notify();
            Ok(0)
        }
        _ => error!(EINVAL),
    }
}
