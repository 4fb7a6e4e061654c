//! ptrace(2), the tracer's side (task/ptrace.rs has the tracee's): attaching
//! (PTRACE_ATTACH, PTRACE_SEIZE, PTRACE_TRACEME), the requests on a stopped
//! tracee (registers, floating-point state, memory, signal information,
//! options), and resuming, interrupting, killing or detaching it. What strace,
//! gdb's attach and LeakSanitizer use.
//!
//! Not here: the vfork-done and seccomp events (the options are accepted),
//! hardware debug registers (they read 0; only 0 can be written).

use crate::mm::UserRef;
use crate::task::ptrace::{Resume, StopKind, PTRACE_EVENT_STOP, PTRACE_O_EXITKILL};
use crate::task::signals::{self, SigInfo};
use crate::task::{Task, Thread};
use rvisor_abi::addr::TASK_SIZE;
use rvisor_abi::structs::{Iovec, PtraceSyscallInfo};
use rvisor_abi::{consts, error, SysResult, UserAddr};
use std::sync::Arc;
use zerocopy::IntoBytes;

const PTRACE_TRACEME: i64 = 0;
const PTRACE_PEEKTEXT: i64 = 1;
const PTRACE_PEEKDATA: i64 = 2;
const PTRACE_PEEKUSER: i64 = 3;
const PTRACE_POKETEXT: i64 = 4;
const PTRACE_POKEDATA: i64 = 5;
const PTRACE_POKEUSER: i64 = 6;
const PTRACE_CONT: i64 = 7;
const PTRACE_KILL: i64 = 8;
const PTRACE_SINGLESTEP: i64 = 9;
const PTRACE_GETREGS: i64 = 12;
const PTRACE_SETREGS: i64 = 13;
const PTRACE_GETFPREGS: i64 = 14;
const PTRACE_SETFPREGS: i64 = 15;
const PTRACE_ATTACH: i64 = 16;
const PTRACE_DETACH: i64 = 17;
const PTRACE_SYSCALL: i64 = 24;
const PTRACE_SETOPTIONS: i64 = 0x4200;
const PTRACE_GETEVENTMSG: i64 = 0x4201;
const PTRACE_GETSIGINFO: i64 = 0x4202;
const PTRACE_SETSIGINFO: i64 = 0x4203;
const PTRACE_GETREGSET: i64 = 0x4204;
const PTRACE_SETREGSET: i64 = 0x4205;
const PTRACE_SEIZE: i64 = 0x4206;
const PTRACE_INTERRUPT: i64 = 0x4207;
const PTRACE_LISTEN: i64 = 0x4208;
const PTRACE_GET_SYSCALL_INFO: i64 = 0x420e;

/// The options Linux knows (PTRACE_O_MASK); all act here but TRACEVFORKDONE,
/// TRACESECCOMP and SUSPEND_SECCOMP, which are accepted without effect, as
/// tracers set them all at attach.
const OPTIONS: u32 = 0xff | PTRACE_O_EXITKILL | 0x20_0000;
const NT_PRSTATUS: u64 = 1;
const NT_PRFPREG: u64 = 2;
/// `struct user_regs_struct`: 27 registers.
const REGS: usize = 27;
/// `struct user_fpregs_struct`: the 512-byte FXSAVE area that starts an XSAVE image.
const FPREGS: usize = 512;
/// offsetof(struct user, u_debugreg), and the eight debug registers there.
const DEBUGREG: u64 = 848;
/// The rflags bits a tracer may change (Linux's FLAG_MASK): CF, PF, AF, ZF,
/// SF, TF, DF, OF, RF, AC.
const USER_FLAGS: u64 = 0x50dd5;
const USER_CS: u64 = 0x33;
const USER_SS: u64 = 0x2b;

pub fn sys_ptrace(t: &mut Task, request: i64, pid: i32, addr: UserAddr, data: u64) -> SysResult<u64> {
    match request {
        PTRACE_TRACEME => traceme(t),
        PTRACE_ATTACH | PTRACE_SEIZE => attach(t, pid, request == PTRACE_SEIZE, addr, data),
        PTRACE_INTERRUPT => {
            let th = tracee(t, pid)?;
            if !th.ptrace().seized {
                return error!(EIO);
            }
            // A stopped tracee stops again after this stop, a listening one at once.
            th.ptrace_trap(false);
            Ok(0)
        }
        PTRACE_KILL => {
            let th = tracee(t, pid)?;
            signals::send_to_thread(&th, SigInfo::new(consts::SIGKILL, signals::SI_USER));
            Ok(0)
        }
        PTRACE_DETACH => {
            // Only of a stopped tracee (Linux's ptrace_check_attach): not of one
            // running or listening, nor of a zombie, which stays for the wait.
            let th = stopped_tracee(t, pid)?;
            let sig = signal_of(data)?;
            t.tg.state().tracees.retain(|x| !Arc::ptr_eq(x, &th));
            th.detach_tracer(sig);
            Ok(0)
        }
        _ => stopped_request(t, request, pid, addr, data),
    }
}

/// A request on a tracee that must be stopped (ESRCH if it is not).
fn stopped_request(t: &mut Task, request: i64, pid: i32, addr: UserAddr, data: u64) -> SysResult<u64> {
    let th = stopped_tracee(t, pid)?;
    let out = UserAddr(data);
    match request {
        PTRACE_PEEKTEXT | PTRACE_PEEKDATA => {
            // Through protections, as Linux's ptrace_access_vm (FOLL_FORCE).
            let mut word = [0u8; 8];
            if tracee_mm(&th)?.read_bytes_remote(addr, &mut word) < word.len() {
                return error!(EIO);
            }
            t.mm.write_bytes(out, &word).map(|()| 0)
        }
        PTRACE_POKETEXT | PTRACE_POKEDATA => {
            // Breakpoints go into read-only text: the write ignores protections.
            tracee_mm(&th)?.write_bytes_force(addr, &data.to_ne_bytes()).map_err(|_| rvisor_abi::errno!(EIO))?;
            Ok(0)
        }
        PTRACE_PEEKUSER => {
            let word = peek_user(&th, addr.0)?;
            t.mm.write_obj(UserRef::new(out), &word).map(|()| 0)
        }
        PTRACE_POKEUSER => poke_user(&th, addr.0, data).map(|()| 0),
        PTRACE_GETREGS => t.mm.write_bytes(out, regs_of(&th).as_bytes()).map(|()| 0),
        PTRACE_SETREGS => {
            let mut words = [0u64; REGS];
            t.mm.read_bytes(out, words.as_mut_bytes())?;
            set_regs(&th, words).map(|()| 0)
        }
        PTRACE_GETFPREGS => t.mm.write_bytes(out, &fpregs_of(&th)).map(|()| 0),
        PTRACE_SETFPREGS => {
            let mut fx = [0u8; FPREGS];
            t.mm.read_bytes(out, &mut fx)?;
            set_fpregs(&th, &fx);
            Ok(0)
        }
        PTRACE_GETREGSET | PTRACE_SETREGSET => regset(t, &th, request == PTRACE_SETREGSET, addr.0, out),
        PTRACE_GETSIGINFO => {
            let info = th.ptrace().stop.as_ref().and_then(|s| s.info).ok_or_else(|| rvisor_abi::errno!(EINVAL))?;
            t.mm.write_bytes(out, info.as_bytes()).map(|()| 0)
        }
        PTRACE_SETSIGINFO => {
            let mut info = SigInfo::new(0, 0);
            t.mm.read_bytes(out, info.as_mut_bytes())?;
            let mut p = th.ptrace();
            match p.stop.as_mut() {
                Some(stop) if stop.info.is_some() => stop.info = Some(info),
                _ => return error!(EINVAL),
            }
            Ok(0)
        }
        PTRACE_LISTEN => {
            // Only of a seized tracee's PTRACE_EVENT_STOP (an interrupt's or a
            // group stop's), as its siginfo tells.
            let mut p = th.ptrace();
            let event_stop = p.stop.as_ref().and_then(|s| s.info).is_some_and(|i| i.code >> 8 == PTRACE_EVENT_STOP as i32);
            if !p.seized || !event_stop {
                return error!(EIO);
            }
            p.listening = true;
            // A SIGCONT since the stop began ends the listening at once.
            let now = p.notify;
            p.listen_end = now;
            drop(p);
            if now {
                th.interrupt();
            }
            Ok(0)
        }
        PTRACE_SETOPTIONS => {
            let options = u32::try_from(data).ok().filter(|o| o & !OPTIONS == 0).ok_or_else(|| rvisor_abi::errno!(EINVAL))?;
            th.ptrace().options = options;
            Ok(0)
        }
        PTRACE_GET_SYSCALL_INFO => {
            let (info, size) = syscall_info(&th);
            let n = (addr.0 as usize).min(size);
            t.mm.write_bytes(out, &info.as_bytes()[..n])?;
            Ok(size as u64)
        }
        PTRACE_GETEVENTMSG => {
            let msg = th.ptrace().event_msg;
            t.mm.write_obj(UserRef::new(out), &msg).map(|()| 0)
        }
        PTRACE_CONT | PTRACE_SYSCALL | PTRACE_SINGLESTEP => {
            let sig = signal_of(data)?;
            let resume = match request {
                PTRACE_CONT => Resume::Continue(sig),
                PTRACE_SYSCALL => Resume::Syscall(sig),
                _ => Resume::Step(sig),
            };
            th.ptrace().resume = Some(resume);
            th.interrupt();
            Ok(0)
        }
        _ => error!(EIO),
    }
}

/// PTRACE_TRACEME: the parent becomes the caller's tracer.
fn traceme(t: &Task) -> SysResult<u64> {
    let parent = t.tg.parent().ok_or_else(|| rvisor_abi::errno!(EPERM))?;
    if t.thread.is_traced() {
        return error!(EPERM);
    }
    if let Some(tracer) = parent.threads().first() {
        crate::landlock::scope::may_trace(tracer, &t.thread)?;
    }
    t.thread.attach_tracer(&parent, false, 0);
    Ok(0)
}

/// PTRACE_ATTACH (which stops the tracee with SIGSTOP) and PTRACE_SEIZE
/// (which does not, and sets options): a thread of another process the
/// caller may trace, not traced yet.
fn attach(t: &Task, pid: i32, seize: bool, addr: UserAddr, data: u64) -> SysResult<u64> {
    let options = if seize {
        if !addr.is_null() {
            return error!(EIO);
        }
        u32::try_from(data).ok().filter(|o| o & !OPTIONS == 0).ok_or_else(|| rvisor_abi::errno!(EINVAL))?
    } else {
        0
    };
    let th = t.pid_ns().thread(pid).ok_or_else(|| rvisor_abi::errno!(ESRCH))?;
    // A zombie (a leader that exited before its group) cannot be attached to.
    let zombie = th.tg.state().is_zombie_thread(&th);
    if zombie || Arc::ptr_eq(&th.tg, &t.tg) || th.is_traced() || !crate::task::ptrace::may_trace(&t.tg, &th.tg) {
        return error!(EPERM);
    }
    crate::landlock::scope::may_trace(&t.thread, &th)?;
    th.attach_tracer(&t.tg, seize, options);
    // A thread held by a group stop takes its part in it for its tracer now,
    // and the attach returns once it did (Linux's JOBCTL_TRAPPING): a tracer's
    // next request or SIGCONT finds it in its stop.
    if th.tg.state().stopped {
        th.interrupt();
        wait_for_trap(t, &th);
    }
    if !seize {
        let info = SigInfo::new(consts::SIGSTOP, signals::SI_USER).with_sender(t.tg.tgid, t.tg.creds().uid);
        signals::send_to_thread(&th, info);
    }
    Ok(0)
}

/// Waits until `th`, just attached while it is in its group's stop, is in its
/// stop for the tracer (which wakes the tracer), or the group stop ended, or
/// either side is dying. A thread not in the stop yet (a vfork parent, one
/// still running app code) takes its part later, unawaited, as on Linux.
fn wait_for_trap(t: &Task, th: &Thread) {
    if !th.in_group_stop.load(std::sync::atomic::Ordering::Acquire) {
        return;
    }
    loop {
        let seq = t.thread.waiter.seq();
        let trapped = {
            let st = th.tg.state();
            !st.stopped || st.exiting.is_some() || th.ptrace().stop.is_some() || !th.is_traced()
        };
        if trapped || t.tg.state().exiting.is_some() {
            return;
        }
        t.thread.waiter.wait(seq, None);
    }
}

/// A thread the caller's group traces (ESRCH otherwise).
fn tracee(t: &Task, pid: i32) -> SysResult<Arc<Thread>> {
    let th = t.pid_ns().thread(pid).ok_or_else(|| rvisor_abi::errno!(ESRCH))?;
    let ours = th.ptrace().tracer().is_some_and(|tr| Arc::ptr_eq(&tr, &t.tg));
    if ours { Ok(th) } else { error!(ESRCH) }
}

/// A tracee of the caller's in a ptrace stop, not yet told to go on (nor
/// listening).
fn stopped_tracee(t: &Task, pid: i32) -> SysResult<Arc<Thread>> {
    let th = tracee(t, pid)?;
    let stopped = {
        let p = th.ptrace();
        p.stop.is_some() && p.resume.is_none() && !p.listening
    };
    if stopped { Ok(th) } else { error!(ESRCH) }
}

fn tracee_mm(th: &Thread) -> SysResult<Arc<crate::mm::MemoryManager>> {
    th.resources().map(|r| r.mm).ok_or_else(|| rvisor_abi::errno!(ESRCH))
}

/// The signal a resume or detach delivers (data), 0 for none.
fn signal_of(data: u64) -> SysResult<u32> {
    u32::try_from(data).ok().filter(|&s| s <= 64).ok_or_else(|| rvisor_abi::errno!(EIO))
}

/// PTRACE_GET_SYSCALL_INFO: what the stop is (a syscall entry, its exit, or
/// neither), with the call's number and arguments or its result; and the
/// length Linux reports for that kind.
fn syscall_info(th: &Thread) -> (PtraceSyscallInfo, usize) {
    const ENTRY: u8 = 1;
    const EXIT: u8 = 2;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    // The header: op, arch, instruction and stack pointers.
    const HEADER: usize = 24;
    let mut info = PtraceSyscallInfo::zeroed();
    let p = th.ptrace();
    let Some(stop) = p.stop.as_ref() else { return (info, HEADER) };
    let r = &stop.regs;
    info.arch = AUDIT_ARCH_X86_64;
    info.instruction_pointer = r.rip;
    info.stack_pointer = r.rsp;
    match stop.kind {
        StopKind::SyscallEnter => {
            info.op = ENTRY;
            info.data[..7].copy_from_slice(&[r.orig_rax, r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]);
            (info, HEADER + 7 * 8)
        }
        StopKind::SyscallExit => {
            info.op = EXIT;
            info.data[0] = r.rax;
            info.data[1] = u64::from((r.rax as i64) < 0 && (r.rax as i64) >= -4095);
            (info, HEADER + 8 + 1)
        }
        _ => (info, HEADER),
    }
}

/// The stopped tracee's registers, in `struct user_regs_struct` order.
fn regs_of(th: &Thread) -> [u64; REGS] {
    th.ptrace().stop.as_ref().map_or([0; REGS], |s| {
        let r = &s.regs;
        [
            r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx, r.rsi, r.rdi, r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base,
            r.gs_base, r.ds, r.es, r.fs, r.gs,
        ]
    })
}

/// Sets the stopped tracee's registers from `struct user_regs_struct` words,
/// as Linux's putreg allows: the segments stay user ones, only the user flags
/// change, and the TLS bases must be user addresses.
fn set_regs(th: &Thread, w: [u64; REGS]) -> SysResult<()> {
    if w[21] >= TASK_SIZE || w[22] >= TASK_SIZE {
        return error!(EIO);
    }
    let mut p = th.ptrace();
    let Some(stop) = p.stop.as_mut() else { return error!(ESRCH) };
    let r = &mut stop.regs;
    [r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx, r.rsi, r.rdi, r.orig_rax, r.rip] =
        [w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10], w[11], w[12], w[13], w[14], w[15], w[16]];
    r.eflags = (r.eflags & !USER_FLAGS) | (w[18] & USER_FLAGS);
    r.rsp = w[19];
    r.fs_base = w[21];
    r.gs_base = w[22];
    (r.cs, r.ss) = (USER_CS, USER_SS);
    stop.regs_changed = true;
    Ok(())
}

/// PEEKUSER: a register by its offset in `struct user`, or a debug register (0).
fn peek_user(th: &Thread, off: u64) -> SysResult<u64> {
    if off % 8 != 0 {
        return error!(EIO);
    }
    match off / 8 {
        i if (i as usize) < REGS => Ok(regs_of(th)[i as usize]),
        _ if (DEBUGREG..DEBUGREG + 64).contains(&off) => Ok(0),
        _ => error!(EIO),
    }
}

/// POKEUSER: a register by its offset, or a debug register set to 0.
fn poke_user(th: &Thread, off: u64, value: u64) -> SysResult<()> {
    if off % 8 != 0 {
        return error!(EIO);
    }
    match off / 8 {
        i if (i as usize) < REGS => {
            let mut words = regs_of(th);
            words[i as usize] = value;
            set_regs(th, words)
        }
        _ if (DEBUGREG..DEBUGREG + 64).contains(&off) && value == 0 => Ok(()),
        _ => error!(EIO),
    }
}

fn fpregs_of(th: &Thread) -> [u8; FPREGS] {
    let mut fx = [0u8; FPREGS];
    if let Some(stop) = th.ptrace().stop.as_ref() {
        let n = stop.fpstate.len().min(FPREGS);
        fx[..n].copy_from_slice(&stop.fpstate[..n]);
    }
    fx
}

fn set_fpregs(th: &Thread, fx: &[u8; FPREGS]) {
    if let Some(stop) = th.ptrace().stop.as_mut() {
        if stop.fpstate.len() < FPREGS {
            stop.fpstate.resize(FPREGS, 0);
        }
        stop.fpstate[..FPREGS].copy_from_slice(fx);
        stop.fp_changed = true;
    }
}

/// GETREGSET and SETREGSET of NT_PRSTATUS and NT_PRFPREG, through an iovec
/// whose length says what was moved.
fn regset(t: &Task, th: &Thread, set: bool, kind: u64, iov_at: UserAddr) -> SysResult<u64> {
    let iov_ref = UserRef::<Iovec>::new(iov_at);
    let mut iov = t.mm.read_obj(iov_ref)?;
    let size = match kind {
        NT_PRSTATUS => REGS * 8,
        NT_PRFPREG => FPREGS,
        _ => return error!(EINVAL),
    };
    let n = (iov.len as usize).min(size);
    if set {
        if n < size {
            return error!(EINVAL);
        }
        if kind == NT_PRSTATUS {
            let mut words = [0u64; REGS];
            t.mm.read_bytes(UserAddr(iov.base), words.as_mut_bytes())?;
            set_regs(th, words)?;
        } else {
            let mut fx = [0u8; FPREGS];
            t.mm.read_bytes(UserAddr(iov.base), &mut fx)?;
            set_fpregs(th, &fx);
        }
    } else {
        let bytes = if kind == NT_PRSTATUS { regs_of(th).as_bytes().to_vec() } else { fpregs_of(th).to_vec() };
        t.mm.write_bytes(UserAddr(iov.base), &bytes[..n])?;
    }
    iov.len = n as u64;
    t.mm.write_obj(iov_ref, &iov).map(|()| 0)
}
