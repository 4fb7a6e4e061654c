//! System calls: the table, the entry path, and one file per family.

mod args;
mod fs;
mod info;
mod mm;
pub mod names;
mod process;
mod signal;
pub mod table;
mod time;

use crate::mm::UserRef;
use crate::task::Task;
use crate::vfs::Fd;
use args::UserCStr;
use fs::*;
use info::*;
use mm::*;
use process::*;
use rvisor_abi::structs::{KernelSigaction, Rlimit, Stat, Timespec, Timeval, Timezone, Utsname};
use rvisor_abi::{errno, UserAddr};
use signal::*;
use table::syscall_table;
pub use table::{Status, SyscallInfo};
use time::*;

syscall_table! {
    read(fd: Fd, buf: UserAddr, count: usize) => Supported;
    write(fd: Fd, buf: UserAddr, count: usize) => Supported;
    close(fd: Fd) => Supported;
    fstat(fd: Fd, statbuf: UserRef<Stat>) => Supported;
    mmap(addr: UserAddr, len: u64, prot: u32, flags: u32, fd: i32, offset: u64) => Partial("anonymous mappings only until the VFS lands");
    mprotect(addr: UserAddr, len: u64, prot: u32) => Supported;
    munmap(addr: UserAddr, len: u64) => Supported;
    brk(addr: UserAddr) => Supported;
    rt_sigaction(signo: i32, act: UserRef<KernelSigaction>, oldact: UserRef<KernelSigaction>, sigsetsize: usize) => Partial("dispositions are recorded; handlers run once signal delivery lands");
    rt_sigprocmask(how: i32, set: UserRef<u64>, oldset: UserRef<u64>, sigsetsize: usize) => Supported;
    ioctl(fd: Fd, request: u32, arg: u64) => Partial("TCGETS and TIOCGWINSZ on host streams");
    pread64(fd: Fd, buf: UserAddr, count: usize, offset: i64) => Supported;
    pwrite64(fd: Fd, buf: UserAddr, count: usize, offset: i64) => Supported;
    readv(fd: Fd, iov: UserAddr, iovcnt: i32) => Supported;
    writev(fd: Fd, iov: UserAddr, iovcnt: i32) => Supported;
    sched_yield() => Supported;
    mremap(old_addr: UserAddr, old_len: u64, new_len: u64, flags: u32, new_addr: UserAddr) => Partial("MREMAP_DONTUNMAP is not supported");
    msync(addr: UserAddr, len: u64, flags: u32) => Supported;
    mincore(addr: UserAddr, len: u64, vec: UserAddr) => Supported;
    madvise(addr: UserAddr, len: u64, advice: i32) => Partial("MADV_DONTNEED acts; other advice is accepted and ignored");
    getpid() => Supported;
    exit(code: i32) => Supported;
    kill(pid: i32, signo: i32) => Partial("only the sandbox's own process; default actions only");
    uname(buf: UserRef<Utsname>) => Supported;
    getcwd(buf: UserAddr, size: usize) => Partial("always / until the VFS lands");
    readlink(path: UserCStr, buf: UserAddr, bufsiz: usize) => Partial("only /proc/self/exe until the VFS lands");
    gettimeofday(tv: UserRef<Timeval>, tz: UserRef<Timezone>) => Supported;
    getrlimit(resource: u32, rlim: UserRef<Rlimit>) => Supported;
    getuid() => Supported;
    getgid() => Supported;
    geteuid() => Supported;
    getegid() => Supported;
    getppid() => Supported;
    getresuid(ruid: UserRef<u32>, euid: UserRef<u32>, suid: UserRef<u32>) => Supported;
    getresgid(rgid: UserRef<u32>, egid: UserRef<u32>, sgid: UserRef<u32>) => Supported;
    setrlimit(resource: u32, rlim: UserRef<Rlimit>) => Supported;
    arch_prctl(code: i32, addr: u64) => Supported;
    gettid() => Supported;
    tkill(tid: i32, signo: i32) => Partial("only the calling thread; default actions only");
    time(tloc: UserRef<i64>) => Supported;
    sched_getaffinity(pid: i32, len: usize, mask: UserAddr) => Supported;
    set_tid_address(tidptr: UserAddr) => Supported;
    clock_gettime(clock: i32, tp: UserRef<Timespec>) => Partial("CPU-time clocks are approximate");
    clock_getres(clock: i32, res: UserRef<Timespec>) => Supported;
    exit_group(code: i32) => Supported;
    tgkill(tgid: i32, tid: i32, signo: i32) => Partial("only the calling thread; default actions only");
    newfstatat(dirfd: Fd, path: UserCStr, statbuf: UserRef<Stat>, flags: i32) => Partial("AT_EMPTY_PATH on open descriptors until the VFS lands");
    set_robust_list(head: UserAddr, len: usize) => Supported;
    prlimit64(pid: i32, resource: u32, new: UserRef<Rlimit>, old: UserRef<Rlimit>) => Supported;
    getrandom(buf: UserAddr, len: usize, flags: u32) => Supported;
    rseq(rseq: UserAddr, len: u32, flags: i32, sig: u32) => Missing("restartable sequences; glibc runs without them");
}

/// Handles the syscall the task stopped at and sets its return value.
pub fn handle(t: &mut Task) {
    let nr = t.cpu.syscall_nr();
    let a = t.cpu.syscall_args();
    let call = t.kernel.strace.is_some().then(|| strace_call(t, nr, a).unwrap_or_else(|| format!("syscall_{nr}({:#x}, {:#x}, {:#x}, ...)", a[0], a[1], a[2])));
    let result = dispatch(t, nr, a).unwrap_or_else(|| Err(errno!(ENOSYS)));
    let ret = match result {
        Ok(v) => v,
        Err(e) => {
            if e.code == rvisor_abi::ErrnoCode::ENOSYS {
                report_unimplemented(t, nr);
            }
            tracing::debug!("task {}: syscall {} failed: {:?}", t.tid, names::name(nr).unwrap_or("?"), e);
            // Nothing can interrupt a syscall yet, so a restart code means EINTR.
            if e.code.is_restart() { errno!(EINTR).to_return() } else { e.to_return() }
        }
    };
    if let Some(call) = call {
        let shown = if t.exit.is_some() {
            "?".to_string()
        } else if (ret as i64) < 0 && (ret as i64) > -4096 {
            let code = rvisor_abi::ErrnoCode(-(ret as i64) as u16);
            format!("-1 {:?}", code)
        } else if ret > 0xffff {
            format!("{ret:#x}")
        } else {
            ret.to_string()
        };
        t.kernel.strace_line(&format!("[pid {}] {} = {}", t.tid, call, shown));
    }
    t.cpu.set_return(ret);
}

/// Logs an unimplemented syscall the first time the sandbox sees it.
fn report_unimplemented(t: &Task, nr: u64) {
    let first = t.kernel.unimplemented_seen.lock().map(|mut s| s.insert(nr)).unwrap_or(false);
    if first {
        tracing::info!("unimplemented syscall {} ({nr}) returns ENOSYS", names::name(nr).unwrap_or("unknown"));
    }
}

/// The status of syscall `nr` as `rvisor syscalls` reports it.
pub fn status_of(nr: u32) -> Status {
    TABLE.iter().find(|e| e.nr == nr).map(|e| e.status).unwrap_or(Status::Missing("not implemented"))
}
