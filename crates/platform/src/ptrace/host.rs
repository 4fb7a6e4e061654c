//! Raw ptrace and scheduling calls on stub threads.

use crate::{CpuState, Event, PlatformError, Result};
use crate::stub::QueuedCall;
use std::io;

fn host_err(what: &'static str) -> PlatformError {
    PlatformError::Host(what, io::Error::last_os_error())
}

fn ptrace(req: libc::c_uint, tid: i32, addr: usize, data: usize) -> i64 {
    // SAFETY: the requests used here read or write only the buffers we pass,
    // which are live for the call.
    unsafe { libc::ptrace(req, tid, addr, data) }
}

/// Waits for a stop or exit of `tid`, retrying on EINTR.
fn wait(tid: i32) -> Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes the status into our local.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
        if r == tid {
            return Ok(status);
        }
        if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(host_err("waitpid"));
        }
    }
}

pub fn get_regs(tid: i32) -> Result<libc::user_regs_struct> {
    // SAFETY: plain integers; overwritten by the kernel below.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    if ptrace(libc::PTRACE_GETREGS, tid, 0, &mut regs as *mut _ as usize) < 0 {
        return Err(host_err("PTRACE_GETREGS"));
    }
    Ok(regs)
}

fn set_regs(tid: i32, regs: &libc::user_regs_struct) -> Result<()> {
    if ptrace(libc::PTRACE_SETREGS, tid, 0, regs as *const _ as usize) < 0 {
        return Err(host_err("PTRACE_SETREGS"));
    }
    Ok(())
}

fn siginfo(tid: i32) -> Result<libc::siginfo_t> {
    // SAFETY: plain data; filled in by the kernel.
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    if ptrace(libc::PTRACE_GETSIGINFO, tid, 0, &mut si as *mut _ as usize) < 0 {
        return Err(host_err("PTRACE_GETSIGINFO"));
    }
    Ok(si)
}

/// `si_code` of a SIGSYS that a seccomp filter raised.
const SYS_SECCOMP: i32 = 1;

/// The syscall number in a seccomp SIGSYS (`si_syscall`: the int after `si_call_addr`
/// at the start of the union, which libc does not name).
fn sigsys_syscall(si: &libc::siginfo_t) -> i32 {
    // SAFETY: siginfo_t is 128 bytes; the int read lies at 24..28, inside it.
    unsafe { std::ptr::read_unaligned((si as *const libc::siginfo_t as *const u8).add(24) as *const i32) }
}

/// Runs app code until the next stop and says why it stopped.
pub fn sysemu(tid: i32, cpu: &mut CpuState) -> Result<Event> {
    // Whether a syscall stop came from a 32-bit entry is not in the registers.
    cpu.compat_syscall = None;
    let regs = &mut cpu.regs;
    // The Sentry restarts syscalls itself; the host must never do it for us.
    regs.orig_rax = u64::MAX;
    set_regs(tid, regs)?;
    if ptrace(libc::PTRACE_SYSEMU, tid, 0, 0) < 0 {
        return Err(host_err("PTRACE_SYSEMU"));
    }
    let status = wait(tid)?;
    if !libc::WIFSTOPPED(status) {
        return Err(PlatformError::StubDied(status));
    }
    *regs = get_regs(tid)?;
    let sig = libc::WSTOPSIG(status);
    if status >> 16 != 0 {
        // A ptrace event stop (PTRACE_INTERRUPT, group stop): not the app's doing.
        return Ok(Event::Interrupted);
    }
    if sig == libc::SIGTRAP | 0x80 {
        return Ok(Event::Syscall);
    }
    if sig == libc::SIGSYS {
        // The stub's filter trapped a call into the vsyscall page: the host skipped
        // it (rax rolled back to the number) and emulated the `ret`. Continuing
        // without the signal drops it; the Sentry answers the call.
        let si = siginfo(tid)?;
        if si.si_code == SYS_SECCOMP {
            regs.orig_rax = sigsys_syscall(&si) as u64;
            regs.rax = (-(libc::ENOSYS as i64)) as u64;
            cpu.compat_syscall = Some(false);
            return Ok(Event::Syscall);
        }
        return Ok(Event::Interrupted);
    }
    match sig {
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP => {
            let si = siginfo(tid)?;
            // SAFETY: si_addr is valid for the fault signals matched above.
            let addr = unsafe { si.si_addr() } as u64;
            // Page faults carry SEGV_MAPERR/ACCERR (or BUS_ADRERR...); a general
            // protection fault (hlt, a privileged instruction) comes as SI_KERNEL.
            if (sig == libc::SIGSEGV || sig == libc::SIGBUS) && si.si_code > 0 && si.si_code < 0x80 {
                Ok(Event::Fault { addr, signo: sig, code: si.si_code })
            } else {
                Ok(Event::Signal { signo: sig, code: si.si_code, addr })
            }
        }
        // Anything else (a stray host signal) is dropped: nothing outside the Sentry
        // speaks to the app through host signals.
        _ => Ok(Event::Interrupted),
    }
}

/// Points `tid` at `entry` with `regs`, lets it run real syscalls until its `int3`,
/// and returns the registers it stopped with.
pub fn run_until_trap(tid: i32, regs: &mut libc::user_regs_struct, entry: u64) -> Result<()> {
    regs.rip = entry;
    regs.orig_rax = u64::MAX;
    set_regs(tid, regs)?;
    loop {
        if ptrace(libc::PTRACE_CONT, tid, 0, 0) < 0 {
            return Err(host_err("PTRACE_CONT"));
        }
        let status = wait(tid)?;
        if !libc::WIFSTOPPED(status) {
            return Err(PlatformError::StubDied(status));
        }
        match libc::WSTOPSIG(status) {
            libc::SIGTRAP => break,
            // A kick meant for the app (or an interrupt stop) arrived meanwhile:
            // drop it; the task loop checks for work after the switch anyway.
            libc::SIGURG => continue,
            _ if status >> 16 != 0 => continue,
            _ => return Err(PlatformError::StubDied(status)),
        }
    }
    *regs = get_regs(tid)?;
    Ok(())
}

/// Makes the stub run one syscall and checks its result.
pub fn inject_one(tid: i32, regs: &mut libc::user_regs_struct, entry: u64, call: &QueuedCall) -> Result<u64> {
    regs.rax = call.nr;
    regs.rdi = call.args[0];
    regs.rsi = call.args[1];
    regs.rdx = call.args[2];
    regs.r10 = call.args[3];
    regs.r8 = call.args[4];
    regs.r9 = call.args[5];
    run_until_trap(tid, regs, entry)?;
    if regs.rax > -4096i64 as u64 {
        return Err(PlatformError::Host("stub syscall", io::Error::from_raw_os_error(-(regs.rax as i64) as i32)));
    }
    Ok(regs.rax)
}

/// Takes over a stub thread that is stopped or parked in pause(): seize, interrupt,
/// and wait for the resulting ptrace stop.
pub fn seize(tid: i32) -> Result<()> {
    let opts = libc::PTRACE_O_EXITKILL | libc::PTRACE_O_TRACESYSGOOD;
    if ptrace(libc::PTRACE_SEIZE, tid, 0, opts as usize) < 0 {
        return Err(host_err("PTRACE_SEIZE"));
    }
    if ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0) < 0 {
        return Err(host_err("PTRACE_INTERRUPT"));
    }
    loop {
        let status = wait(tid)?;
        if !libc::WIFSTOPPED(status) {
            return Err(PlatformError::StubDied(status));
        }
        if status >> 16 == libc::PTRACE_EVENT_STOP {
            return Ok(());
        }
        // A signal-delivery stop that raced with the interrupt: drop it and go on.
        ptrace(libc::PTRACE_CONT, tid, 0, 0);
    }
}

/// Makes a traced stub thread leave `switch` (a signal-delivery stop its tracer
/// then discards).
pub fn kick(pid: i32, tid: i32) {
    // SAFETY: tgkill takes plain integers.
    unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGURG) };
}

/// Gives up a stopped stub thread: a thread exits; a process's main thread, whose
/// exit would leave a zombie we could not reap while others run, is parked untraced.
pub fn retire(pid: i32, tid: i32) {
    let Ok(entries) = crate::stub::install() else { return };
    let mut regs = crate::CpuState::default().regs;
    regs.orig_rax = u64::MAX;
    if tid == pid {
        regs.rip = entries.park;
        if set_regs(tid, &regs).is_ok() {
            ptrace(libc::PTRACE_DETACH, tid, 0, 0);
        }
        return;
    }
    regs.rip = entries.syscall;
    regs.rax = libc::SYS_exit as u64;
    if set_regs(tid, &regs).is_err() {
        return;
    }
    // A pending kick stops the thread once more before it reaches exit; it must
    // not be left traced by a host thread that is about to exit (EXITKILL).
    while ptrace(libc::PTRACE_CONT, tid, 0, 0) == 0 {
        match wait(tid) {
            Ok(status) if libc::WIFSTOPPED(status) => continue,
            _ => break,
        }
    }
}

/// Size of the XSAVE area for the features the host enabled (CPUID 0xD).
fn xstate_size() -> usize {
    let r = std::arch::x86_64::__cpuid_count(0xd, 0);
    (r.ebx as usize).max(512 + 64)
}

const NT_X86_XSTATE: usize = 0x202;

pub fn get_xstate(tid: i32) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; xstate_size()];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    if ptrace(libc::PTRACE_GETREGSET, tid, NT_X86_XSTATE, &mut iov as *mut _ as usize) < 0 {
        return Err(host_err("PTRACE_GETREGSET"));
    }
    buf.truncate(iov.iov_len);
    Ok(buf)
}

pub fn set_xstate(tid: i32, state: &[u8]) -> Result<()> {
    let mut buf = state.to_vec();
    buf.resize(xstate_size(), 0);
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    if ptrace(libc::PTRACE_SETREGSET, tid, NT_X86_XSTATE, &mut iov as *mut _ as usize) < 0 {
        return Err(host_err("PTRACE_SETREGSET"));
    }
    Ok(())
}

