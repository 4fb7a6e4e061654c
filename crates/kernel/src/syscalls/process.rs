//! Process and thread life cycle and identity: clone/fork/vfork, execve, exit,
//! wait, process groups and sessions, and the per-thread registrations glibc
//! makes at start-up (arch_prctl, set_tid_address, set_robust_list).

use super::args::{UserCStr, PATH_MAX};
use crate::mm::UserRef;
use crate::task::signals::SigInfo;
use crate::task::exec::ArgRoom;
use crate::task::{CloneArgs, CpuTimes, ExitStatus, RusageCounts, Task, WaitOptions, WaitTarget};
use rvisor_abi::{consts, errno, error, SysResult, UserAddr};

const ARCH_SET_GS: i32 = 0x1001;
const ARCH_SET_FS: i32 = 0x1002;
const ARCH_GET_FS: i32 = 0x1003;
const ARCH_GET_GS: i32 = 0x1004;
/// `sizeof(struct robust_list_head)`.
const ROBUST_LIST_HEAD_LEN: usize = 24;
const CSIGNAL: u64 = 0xff;
/// The longest single argument or environment string, its NUL included.
const MAX_ARG_STRLEN: usize = 32 * 4096;

pub fn sys_exit(t: &mut Task, code: i32) -> SysResult<()> {
    t.exit = Some(ExitStatus::Exited(code as u8));
    Ok(())
}

pub fn sys_exit_group(t: &mut Task, code: i32) -> SysResult<()> {
    t.exit_group(ExitStatus::Exited(code as u8));
    Ok(())
}

pub fn sys_getpid(t: &mut Task) -> SysResult<i32> {
    Ok(t.vnr(t.tg.tgid))
}

pub fn sys_getppid(t: &mut Task) -> SysResult<i32> {
    Ok(t.tg.parent().map(|p| t.vnr(p.tgid)).unwrap_or(0))
}

pub fn sys_gettid(t: &mut Task) -> SysResult<i32> {
    Ok(t.vnr(t.tid()))
}

pub fn sys_getuid(t: &mut Task) -> SysResult<u32> {
    Ok(t.tg.user_ns().show_uid(t.tg.creds().uid))
}

pub fn sys_geteuid(t: &mut Task) -> SysResult<u32> {
    Ok(t.tg.user_ns().show_uid(t.tg.creds().euid))
}

pub fn sys_getgid(t: &mut Task) -> SysResult<u32> {
    Ok(t.tg.user_ns().show_gid(t.tg.creds().gid))
}

pub fn sys_getegid(t: &mut Task) -> SysResult<u32> {
    Ok(t.tg.user_ns().show_gid(t.tg.creds().egid))
}

fn write_ids(t: &Task, refs: [UserRef<u32>; 3], ids: [u32; 3]) -> SysResult<()> {
    for (r, id) in refs.into_iter().zip(ids) {
        t.mm.write_obj(r, &id)?;
    }
    Ok(())
}

pub fn sys_getresuid(t: &mut Task, ruid: UserRef<u32>, euid: UserRef<u32>, suid: UserRef<u32>) -> SysResult<()> {
    let (c, ns) = (t.tg.creds(), t.tg.user_ns());
    write_ids(t, [ruid, euid, suid], [c.uid, c.euid, c.suid].map(|id| ns.show_uid(id)))
}

pub fn sys_getresgid(t: &mut Task, rgid: UserRef<u32>, egid: UserRef<u32>, sgid: UserRef<u32>) -> SysResult<()> {
    let (c, ns) = (t.tg.creds(), t.tg.user_ns());
    write_ids(t, [rgid, egid, sgid], [c.gid, c.egid, c.sgid].map(|id| ns.show_gid(id)))
}

pub fn sys_arch_prctl(t: &mut Task, code: i32, addr: u64) -> SysResult<()> {
    match code {
        ARCH_SET_FS | ARCH_SET_GS => {
            // A non-canonical base would make the host reject the register write.
            if addr >= 0x0000_8000_0000_0000 {
                return error!(EPERM);
            }
            if code == ARCH_SET_FS { t.cpu.regs.fs_base = addr } else { t.cpu.regs.gs_base = addr }
            Ok(())
        }
        ARCH_GET_FS => t.mm.write_obj(UserRef::new(UserAddr(addr)), &t.cpu.regs.fs_base),
        ARCH_GET_GS => t.mm.write_obj(UserRef::new(UserAddr(addr)), &t.cpu.regs.gs_base),
        _ => error!(EINVAL),
    }
}

pub fn sys_set_tid_address(t: &mut Task, tidptr: UserAddr) -> SysResult<i32> {
    t.clear_child_tid = tidptr;
    Ok(t.vnr(t.tid()))
}

pub fn sys_get_robust_list(t: &mut Task, pid: i32, head: UserRef<u64>, len: UserRef<u64>) -> SysResult<()> {
    let target = if pid == 0 || pid == t.vnr(t.tid()) { t.robust_list } else {
        // Another thread's list lives in its Task, which only its own thread holds.
        t.pid_ns().thread(pid).ok_or_else(|| errno!(ESRCH))?;
        return error!(EPERM);
    };
    t.mm.write_obj(head, &target.get())?;
    t.mm.write_obj(len, &(ROBUST_LIST_HEAD_LEN as u64))
}

pub fn sys_set_robust_list(t: &mut Task, head: UserAddr, len: usize) -> SysResult<()> {
    if len != ROBUST_LIST_HEAD_LEN {
        return error!(EINVAL);
    }
    t.robust_list = head;
    Ok(())
}

pub fn sys_clone(t: &mut Task, flags: u64, stack: u64, parent_tid: UserAddr, child_tid: UserAddr, tls: u64) -> SysResult<i32> {
    use crate::task::clone::{CLONE_PARENT_SETTID, CLONE_PIDFD};
    // clone has one argument for both.
    if flags & CLONE_PIDFD != 0 && flags & CLONE_PARENT_SETTID != 0 {
        return error!(EINVAL);
    }
    t.do_clone(CloneArgs { flags: flags & !CSIGNAL, exit_signal: (flags & CSIGNAL) as u32, stack, parent_tid, child_tid, tls, pidfd: parent_tid })
}

pub fn sys_unshare(t: &mut Task, flags: u64) -> SysResult<()> {
    t.unshare(flags)
}

pub fn sys_setns(t: &mut Task, fd: crate::vfs::Fd, nstype: i32) -> SysResult<()> {
    let file = t.fds.get(fd)?;
    t.setns(&file, nstype as u32 as u64)
}

/// `struct clone_args` (clone3), up to the fields we use.
#[derive(Clone, Copy, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
#[repr(C)]
struct Clone3Args {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

pub fn sys_clone3(t: &mut Task, uargs: UserAddr, size: usize) -> SysResult<i32> {
    if size < std::mem::size_of::<Clone3Args>() || size > 4096 {
        return error!(EINVAL);
    }
    let a: Clone3Args = t.mm.read_obj(UserRef::new(uargs))?;
    // clone3 takes the exit signal apart, so of clone's signal bits only
    // CLONE_NEWTIME, which shares one, is a flag here.
    if a.flags & CSIGNAL & !crate::task::clone::CLONE_NEWTIME != 0 || a.exit_signal > 64 || (a.stack == 0) != (a.stack_size == 0) {
        return error!(EINVAL);
    }
    let stack = if a.stack != 0 { a.stack.checked_add(a.stack_size).ok_or_else(|| errno!(EINVAL))? } else { 0 };
    t.do_clone(CloneArgs {
        flags: a.flags,
        exit_signal: a.exit_signal as u32,
        stack,
        parent_tid: UserAddr(a.parent_tid),
        child_tid: UserAddr(a.child_tid),
        tls: a.tls,
        pidfd: UserAddr(a.pidfd),
    })
}

pub fn sys_fork(t: &mut Task) -> SysResult<i32> {
    t.do_clone(CloneArgs { exit_signal: consts::SIGCHLD, ..CloneArgs::default() })
}

pub fn sys_vfork(t: &mut Task) -> SysResult<i32> {
    use crate::task::clone::{CLONE_VFORK, CLONE_VM};
    t.do_clone(CloneArgs { flags: CLONE_VM | CLONE_VFORK, exit_signal: consts::SIGCHLD, ..CloneArgs::default() })
}

/// Reads a NULL-terminated array of string pointers (argv, envp), stopping
/// once `most` have been read (the caller then refuses them all).
fn read_pointer_array(t: &Task, at: UserAddr, most: u64) -> SysResult<Vec<u64>> {
    let mut out = Vec::new();
    if at.is_null() {
        return Ok(out);
    }
    for i in 0..=most {
        let p: u64 = t.mm.read_obj(UserRef::<u64>::new(at).at(i as usize)?)?;
        if p == 0 {
            break;
        }
        out.push(p);
    }
    Ok(out)
}

/// argv or envp, as exec copies them.
type Strings = Vec<Vec<u8>>;

/// Reads execve's argv and envp within the room Linux gives them on the new
/// stack (`ArgRoom`), `path`'s string included (E2BIG past it, or for a string
/// longer than MAX_ARG_STRLEN). Returns them and that room, which `#!` lines
/// must keep to as well.
fn read_exec_args(t: &Task, path: &[u8], argv: UserAddr, envp: UserAddr) -> SysResult<(Strings, Strings, ArgRoom)> {
    let stack_limit = t.tg.rlimit(crate::task::RLIMIT_STACK).cur;
    let most = ArgRoom::pointer_limit(stack_limit) / 8;
    let argv = read_pointer_array(t, argv, most)?;
    let envp = read_pointer_array(t, envp, most)?;
    // An empty argv gets an empty string (argc 1), and room for it.
    let room = ArgRoom::new(stack_limit, (argv.len().max(1) + envp.len()) as u64)?;
    let take = |len: usize, used: &mut u64| {
        *used += len as u64 + 1;
        if !room.fits(*used) {
            return error!(E2BIG);
        }
        Ok(())
    };
    let read = |ptrs: Vec<u64>, used: &mut u64| -> SysResult<Strings> {
        ptrs.into_iter()
            .map(|p| {
                let s = t.mm.read_cstr(UserAddr(p), MAX_ARG_STRLEN).map_err(|e| if e == errno!(ENAMETOOLONG) { errno!(E2BIG) } else { e })?;
                take(s.len(), used)?;
                Ok(s)
            })
            .collect()
    };
    let mut used = 0;
    take(path.len(), &mut used)?;
    let envp = read(envp, &mut used)?;
    // What `#!` lines make of argv must fit beside the path and envp.
    let mut room_for_argv = room;
    room_for_argv.fixed = used;
    let argv = read(argv, &mut used)?;
    Ok((argv, envp, room_for_argv))
}

pub fn sys_execve(t: &mut Task, path: UserCStr, argv: UserAddr, envp: UserAddr) -> SysResult<()> {
    let p = t.mm.read_cstr(path.0, PATH_MAX)?;
    if p.is_empty() {
        return error!(ENOENT);
    }
    let (argv, envp, room) = read_exec_args(t, &p, argv, envp)?;
    t.do_execve(String::from_utf8_lossy(&p).into_owned(), None, argv, envp, room)
}

const AT_EMPTY_PATH: i32 = 0x1000;
const AT_SYMLINK_NOFOLLOW: i32 = 0x100;

pub fn sys_execveat(t: &mut Task, dirfd: i32, path: UserCStr, argv: UserAddr, envp: UserAddr, flags: i32) -> SysResult<()> {
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return error!(EINVAL);
    }
    let p = t.mm.read_cstr(path.0, PATH_MAX)?;
    let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 { crate::vfs::Follow::No } else { crate::vfs::Follow::Yes };
    let d = super::open::lookup_at(t, dirfd, &p, follow, flags & AT_EMPTY_PATH != 0)?;
    if d.inode.kind() == crate::vfs::inode::S_IFLNK {
        return error!(ELOOP);
    }
    let (argv, envp, room) = read_exec_args(t, &p, argv, envp)?;
    t.do_execve(String::from_utf8_lossy(&d.path()).into_owned(), Some(d), argv, envp, room)
}

const WNOHANG: u32 = 1;
const WUNTRACED: u32 = 2;
const WEXITED: u32 = 4;
const WCONTINUED: u32 = 8;
const WNOWAIT: u32 = 0x0100_0000;
const WNOTHREAD: u32 = 0x2000_0000;
const WALL: u32 = 0x4000_0000;
const WCLONE: u32 = 0x8000_0000;
/// `sizeof(struct rusage)`.
const RUSAGE_SIZE: usize = 144;

fn wait_target(t: &Task, pid: i32) -> WaitTarget {
    match pid {
        -1 => WaitTarget::Any,
        0 => WaitTarget::Pgid(t.tg.state().pgid),
        p if p < 0 => WaitTarget::Pgid(t.find_vpid(p.checked_neg().unwrap_or(0))),
        p => WaitTarget::Pid(t.find_vpid(p)),
    }
}

/// Writes a `struct rusage`: CPU times, the peak size, minor faults and
/// voluntary switches (see `RusageCounts` for the fields left 0).
fn write_rusage(t: &Task, rusage: UserAddr, cpu: CpuTimes, counts: RusageCounts, maxrss_kib: u64) -> SysResult<()> {
    if rusage.is_null() {
        return Ok(());
    }
    let mut ru = [0u64; RUSAGE_SIZE / 8];
    (ru[0], ru[1]) = (cpu.user_ns / 1_000_000_000, (cpu.user_ns % 1_000_000_000) / 1000);
    (ru[2], ru[3]) = (cpu.sys_ns / 1_000_000_000, (cpu.sys_ns % 1_000_000_000) / 1000);
    ru[4] = maxrss_kib;
    (ru[8], ru[9]) = (counts.min_flt, counts.maj_flt);
    ru[16] = counts.nvcsw;
    t.mm.write_obj(UserRef::<[u64; RUSAGE_SIZE / 8]>::new(rusage), &ru)
}

pub fn sys_wait4(t: &mut Task, pid: i32, status: UserRef<i32>, options: u32, rusage: UserAddr) -> SysResult<i32> {
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 || pid == i32::MIN {
        return error!(EINVAL);
    }
    let opts = WaitOptions {
        exited: true,
        stopped: options & WUNTRACED != 0,
        continued: options & WCONTINUED != 0,
        nohang: options & WNOHANG != 0,
        nowait: false,
        clone_only: options & WCLONE != 0,
        all: options & WALL != 0,
    };
    let Some(r) = t.wait_child(wait_target(t, pid), opts)? else { return Ok(0) };
    if !status.is_null() {
        t.mm.write_obj(status, &r.status)?;
    }
    write_rusage(t, rusage, r.cpu, r.rusage, r.maxrss_kib)?;
    Ok(r.pid)
}

const P_ALL: i32 = 0;
const P_PID: i32 = 1;
const P_PGID: i32 = 2;
const P_PIDFD: i32 = 3;

pub fn sys_waitid(t: &mut Task, idtype: i32, id: i32, infop: UserAddr, options: u32, rusage: UserAddr) -> SysResult<()> {
    if options & !(WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE) != 0
        || options & (WEXITED | WUNTRACED | WCONTINUED) == 0
    {
        return error!(EINVAL);
    }
    // A nonblocking pidfd makes the wait WNOHANG, and finding nothing EAGAIN.
    let mut nonblocking_pidfd = false;
    let target = match idtype {
        P_ALL => WaitTarget::Any,
        P_PID if id > 0 => WaitTarget::Pid(t.find_vpid(id)),
        P_PGID if id > 0 => WaitTarget::Pgid(t.find_vpid(id)),
        P_PGID if id == 0 => WaitTarget::Pgid(t.tg.state().pgid),
        P_PIDFD if id >= 0 => {
            let (tg, nonblocking) = super::pidfd::pidfd_target(t, crate::vfs::Fd(id))?;
            nonblocking_pidfd = nonblocking;
            // Reaped: its id may name another process by now.
            if tg.is_reaped() {
                return error!(ECHILD);
            }
            WaitTarget::Pid(tg.tgid)
        }
        _ => return error!(EINVAL),
    };
    let opts = WaitOptions {
        exited: options & WEXITED != 0,
        stopped: options & WUNTRACED != 0,
        continued: options & WCONTINUED != 0,
        nohang: options & WNOHANG != 0 || nonblocking_pidfd,
        nowait: options & WNOWAIT != 0,
        clone_only: options & WCLONE != 0,
        all: options & WALL != 0,
    };
    let found = t.wait_child(target, opts)?;
    if found.is_none() && nonblocking_pidfd && options & WNOHANG == 0 {
        return error!(EAGAIN);
    }
    if !infop.is_null() {
        // WNOHANG with nothing to report leaves an all-zero siginfo, as Linux does.
        let info = match found {
            Some(r) => SigInfo::new(consts::SIGCHLD, r.code).with_sender(r.pid, t.tg.user_ns().show_uid(r.uid)).with_value(r.si_status as u32 as u64),
            None => zerocopy::FromZeros::new_zeroed(),
        };
        t.mm.write_obj(UserRef::new(infop), &info)?;
    }
    write_rusage(t, rusage, found.map_or(CpuTimes::default(), |r| r.cpu), found.map_or(RusageCounts::default(), |r| r.rusage), found.map_or(0, |r| r.maxrss_kib))
}

pub fn sys_setpgid(t: &mut Task, pid: i32, pgid: i32) -> SysResult<()> {
    if pgid < 0 || pid < 0 {
        return error!(EINVAL);
    }
    let pid = if pid == 0 { t.tg.tgid } else { t.find_vpid(pid) };
    let target = if pid == t.tg.tgid {
        t.tg.clone()
    } else {
        let children = t.tg.state().children.clone();
        children.into_iter().find(|c| c.tgid == pid).ok_or_else(|| errno!(ESRCH))?
    };
    let pgid = if pgid == 0 { target.tgid } else { t.pid_ns().table_id(pgid).ok_or_else(|| errno!(EPERM))? };
    let my_sid = t.tg.state().sid;
    {
        let st = target.state();
        if st.sid != my_sid {
            return error!(EPERM);
        }
        if st.sid == target.tgid {
            // A session leader cannot change its group.
            return error!(EPERM);
        }
    }
    if pgid != target.tgid {
        let exists = t.pid_ns().groups().iter().any(|g| {
            let st = g.state();
            st.pgid == pgid && st.sid == my_sid
        });
        if !exists {
            return error!(EPERM);
        }
    }
    target.state().pgid = pgid;
    Ok(())
}

fn group_by_pid(t: &Task, pid: i32) -> SysResult<std::sync::Arc<crate::task::ThreadGroup>> {
    if pid == 0 {
        return Ok(t.tg.clone());
    }
    t.pid_ns().group(pid).ok_or_else(|| errno!(ESRCH))
}

pub fn sys_getpgid(t: &mut Task, pid: i32) -> SysResult<i32> {
    let pgid = group_by_pid(t, pid)?.state().pgid;
    Ok(t.vnr(pgid))
}

pub fn sys_getpgrp(t: &mut Task) -> SysResult<i32> {
    let pgid = t.tg.state().pgid;
    Ok(t.vnr(pgid))
}

pub fn sys_getsid(t: &mut Task, pid: i32) -> SysResult<i32> {
    let sid = group_by_pid(t, pid)?.state().sid;
    Ok(t.vnr(sid))
}

pub fn sys_setsid(t: &mut Task) -> SysResult<i32> {
    let tgid = t.tg.tgid;
    let taken = t.pid_ns().groups().iter().any(|g| g.state().pgid == tgid);
    if taken {
        return error!(EPERM);
    }
    {
        let mut st = t.tg.state();
        st.pgid = tgid;
        st.sid = tgid;
    }
    // A new session starts without a controlling terminal.
    t.tg.tty.lock().unwrap_or_else(|e| e.into_inner()).take();
    Ok(t.vnr(tgid))
}

/// personality(0xffffffff) only asks.
const PERSONALITY_QUERY: u32 = 0xffff_ffff;

/// personality: any value is taken, as Linux's; it is kept (inherited by fork,
/// kept by exec) and reported. rvisor has one execution domain, Linux's; exec
/// honours ADDR_NO_RANDOMIZE.
pub fn sys_personality(t: &mut Task, persona: u32) -> SysResult<u32> {
    let p = &t.tg.personality;
    if persona == PERSONALITY_QUERY {
        return Ok(p.load(std::sync::atomic::Ordering::Relaxed));
    }
    Ok(p.swap(persona, std::sync::atomic::Ordering::Relaxed))
}

const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;
const RUSAGE_THREAD: i32 = 1;

pub fn sys_getrusage(t: &mut Task, who: i32, usage: UserAddr) -> SysResult<()> {
    let own_rss = || t.mm.populated_bytes() / 1024;
    let (cpu, counts, rss) = match who {
        RUSAGE_SELF => (t.tg.cpu_times(), t.tg.rusage_counts(), own_rss().max(t.tg.cpu.lock().unwrap_or_else(|e| e.into_inner()).maxrss_kib)),
        RUSAGE_THREAD => (t.thread.cpu_times(), t.thread.rusage_counts(), own_rss()),
        RUSAGE_CHILDREN => {
            let c = *t.tg.cpu.lock().unwrap_or_else(|e| e.into_inner());
            (c.children, c.children_rusage, c.children_maxrss_kib)
        }
        _ => return error!(EINVAL),
    };
    if usage.is_null() {
        return error!(EFAULT);
    }
    write_rusage(t, usage, cpu, counts, rss)
}

/// Clock ticks per second as times() and /proc count them (USER_HZ).
const USER_HZ: u64 = 100;

pub fn sys_times(t: &mut Task, buf: UserAddr) -> SysResult<i64> {
    if !buf.is_null() {
        let ticks = |ns: u64| ns / (1_000_000_000 / USER_HZ);
        let (mine, children) = (t.tg.cpu_times(), t.tg.cpu.lock().unwrap_or_else(|e| e.into_inner()).children);
        let tms: [u64; 4] = [ticks(mine.user_ns), ticks(mine.sys_ns), ticks(children.user_ns), ticks(children.sys_ns)];
        t.mm.write_obj(UserRef::<[u64; 4]>::new(buf), &tms)?;
    }
    Ok(t.kernel.clocks.uptime_ns() / (1_000_000_000 / USER_HZ as i64))
}
