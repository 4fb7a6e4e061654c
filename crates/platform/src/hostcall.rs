//! The raw host-call layer: safe wrappers for the few host facts and descriptor
//! operations the kernel needs, so the kernel crate itself stays free of `unsafe`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// A value from the auxiliary vector the host kernel gave the Sentry (host CPU facts
/// such as AT_HWCAP), or 0. Read from /proc/self/auxv because glibc's `getauxval`
/// rewrites AT_HWCAP on x86-64.
pub fn host_auxval(key: u64) -> u64 {
    static AUXV: std::sync::OnceLock<Vec<(u64, u64)>> = std::sync::OnceLock::new();
    let auxv = AUXV.get_or_init(|| {
        let raw = std::fs::read("/proc/self/auxv").unwrap_or_default();
        raw.chunks_exact(16)
            .map(|c| {
                let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                (word(&c[..8]), word(&c[8..]))
            })
            .collect()
    });
    auxv.iter().find(|&&(k, _)| k == key).map(|&(_, v)| v).unwrap_or(0)
}

/// CPU time host thread `tid` of this process has used (its thread CPU clock,
/// Linux's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)); None once it has exited.
pub fn thread_cpu_ns(tid: i32) -> Option<u64> {
    let clock = nix::time::ClockId::from_raw(((!tid) << 3) | 6);
    let ts = nix::time::clock_gettime(clock).ok()?;
    Some(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
}

/// `TIOCGWINSZ` on a host descriptor.
pub fn window_size(fd: BorrowedFd<'_>) -> io::Result<[u16; 4]> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into our local.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok([ws.ws_row, ws.ws_col, ws.ws_xpixel, ws.ws_ypixel])
}

/// `TIOCSWINSZ` on a host descriptor.
pub fn set_window_size(fd: BorrowedFd<'_>, ws: [u16; 4]) -> io::Result<()> {
    let ws = libc::winsize { ws_row: ws[0], ws_col: ws[1], ws_xpixel: ws[2], ws_ypixel: ws[3] };
    // SAFETY: TIOCSWINSZ reads one winsize from our local.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `cpuid` with `leaf` and `subleaf`: [eax, ebx, ecx, edx]. For the Sentry's
/// synthesized /proc/cpuinfo.
#[allow(unused_unsafe)]
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    // SAFETY: cpuid only reads processor identification; every x86-64 CPU has it.
    // (Newer Rust declares the intrinsic safe, hence the allow.)
    let r = unsafe { core::arch::x86_64::__cpuid_count(leaf, subleaf) };
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// A memory barrier on every host CPU that runs a thread of a stub (each stub
/// registers for it when it starts): membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), or
/// where the host lacks that, the slow MEMBARRIER_CMD_GLOBAL.
pub fn barrier_on_stubs() -> io::Result<()> {
    const GLOBAL: libc::c_long = 1;
    const GLOBAL_EXPEDITED: libc::c_long = 2;
    for cmd in [GLOBAL_EXPEDITED, GLOBAL] {
        // SAFETY: membarrier takes no pointers.
        if unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) } == 0 {
            return Ok(());
        }
    }
    Err(io::Error::last_os_error())
}

/// Accepts a connection on a listening socket.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<std::os::fd::OwnedFd> {
    let fd = nix::sys::socket::accept4(listener.as_raw_fd(), nix::sys::socket::SockFlag::SOCK_CLOEXEC)?;
    // SAFETY: accept4 just returned this descriptor, and nothing else owns it.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// Receives one message into `buf`, with the descriptors that came with it
/// (`SCM_RIGHTS`, close-on-exec): the message's length and the descriptors.
pub fn recv_with_fds(socket: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Vec<std::os::fd::OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 8]);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(got) = c {
            // SAFETY: SCM_RIGHTS just installed these descriptors in this
            // process, and nothing else owns them.
            fds.extend(got.into_iter().map(|f| unsafe { std::os::fd::FromRawFd::from_raw_fd(f) }));
        }
    }
    Ok((msg.bytes, fds))
}

/// Makes the terminal on `fd` the controlling terminal of the calling process,
/// which must lead a session without one (TIOCSCTTY).
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument, no pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A descriptor that becomes readable when process `pid` ends (pidfd_open).
pub fn pidfd_open(pid: i32) -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: pidfd_open takes no pointers; on success it returns a new
    // descriptor that nothing else owns.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) })
}
