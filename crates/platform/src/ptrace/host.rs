//! Raw ptrace and scheduling calls on stub threads.

use crate::{Event, PlatformError, Result};
use crate::stub::QueuedCall;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Waits for a freshly spawned stub to stop itself, then sets tracing options.
pub fn wait_initial_stop(pid: i32) -> Result<()> {
    let status = wait(pid)?;
    if !libc::WIFSTOPPED(status) || libc::WSTOPSIG(status) != libc::SIGSTOP {
        kill_and_reap(pid);
        return Err(PlatformError::StubDied(status));
    }
    let opts = libc::PTRACE_O_EXITKILL | libc::PTRACE_O_TRACESYSGOOD;
    if ptrace(libc::PTRACE_SETOPTIONS, pid, 0, opts as usize) < 0 {
        return Err(host_err("PTRACE_SETOPTIONS"));
    }
    Ok(())
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

/// Runs app code until the next stop and says why it stopped.
pub fn sysemu(tid: i32, regs: &mut libc::user_regs_struct) -> Result<Event> {
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
    if sig == libc::SIGTRAP | 0x80 {
        return Ok(Event::Syscall);
    }
    match sig {
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP => {
            let si = siginfo(tid)?;
            // SAFETY: si_addr is valid for the fault signals matched above.
            let addr = unsafe { si.si_addr() } as u64;
            if sig == libc::SIGSEGV || sig == libc::SIGBUS {
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
    if ptrace(libc::PTRACE_CONT, tid, 0, 0) < 0 {
        return Err(host_err("PTRACE_CONT"));
    }
    let status = wait(tid)?;
    if !libc::WIFSTOPPED(status) || libc::WSTOPSIG(status) != libc::SIGTRAP {
        return Err(PlatformError::StubDied(status));
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

pub fn kill_and_reap(pid: i32) {
    // SAFETY: signalling and reaping our own child; status is a local.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        libc::waitpid(pid, &mut status, libc::__WALL);
    }
}

static NEXT_CPU: AtomicUsize = AtomicUsize::new(0);

/// Pins the calling thread to the next CPU in round-robin order and returns it.
pub fn pin_current_thread() -> usize {
    let cpus = allowed_cpus();
    let cpu = cpus[NEXT_CPU.fetch_add(1, Ordering::Relaxed) % cpus.len()];
    pin(0, cpu);
    cpu
}

pub fn pin(tid: i32, cpu: usize) {
    // SAFETY: cpu_set_t is plain data; CPU_SET stays in bounds for cpu < CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills the set we own.
    let cpus: Vec<usize> = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    };
    if cpus.is_empty() { vec![0] } else { cpus }
}
