//! The raw host-call layer: safe wrappers for the few host facts and descriptor
//! operations the kernel needs, so the kernel crate itself stays free of `unsafe`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// A value from the auxiliary vector the host kernel gave the Sentry (host CPU facts
/// such as AT_HWCAP), or 0. Read from /proc/self/auxv because glibc's `getauxval`
/// rewrites AT_HWCAP on x86-64.
pub fn host_auxval(key: u64) -> u64 {
    static AUXV: std::sync::OnceLock<Vec<(u64, u64)>> = std::sync::OnceLock::new();
    let auxv = AUXV.get_or_init(|| {
        let raw = crate::host_proc::read("self/auxv").unwrap_or_default();
        raw.chunks_exact(16)
            .map(|c| {
                let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                (word(&c[..8]), word(&c[8..]))
            })
            .collect()
    });
    auxv.iter().find(|&&(k, _)| k == key).map(|&(_, v)| v).unwrap_or(0)
}

/// Fixes glibc malloc's arena limit at its own default (8 per CPU): glibc counts the
/// CPUs the first time a thread needs a new arena, by opening
/// /sys/devices/system/cpu/online, which the Sentry's seccomp filter forbids. And fixes
/// the size from which a block is mapped of its own at glibc's initial 128 KiB: glibc
/// raises it after each such block is freed, and then serves big zeroed blocks (the
/// network stack's socket buffers) from the heap, clearing every page of them, where a
/// fresh mapping costs nothing until it is used and goes back to the host when freed.
/// Fixing it also fixes the trim threshold, which glibc raised with it: kept low, a
/// thread's heap would shrink, and glibc reads /proc/sys/vm/overcommit_memory the
/// first time one does, which the filter forbids; so it is set to glibc's own ceiling.
pub fn fix_malloc() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let arenas = i32::try_from(cpus.saturating_mul(8)).unwrap_or(i32::MAX);
    // SAFETY: mallopt takes no pointers; M_ARENA_MAX only bounds later arena creation.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    // SAFETY: as above; M_MMAP_THRESHOLD and M_TRIM_THRESHOLD only steer later
    // allocations and frees.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

/// CPU time host thread `tid` of this process has used (its thread CPU clock,
/// Linux's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)); None once it has exited.
pub fn thread_cpu_ns(tid: i32) -> Option<u64> {
    let clock = nix::time::ClockId::from_raw(((!tid) << 3) | 6);
    let ts = nix::time::clock_gettime(clock).ok()?;
    Some(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
}

/// The ID of the host mount `path` is in (statx's STATX_MNT_ID, as mountinfo's
/// first field numbers mounts); None if the host cannot say.
pub fn mount_id(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statx is a valid value of the plain struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `stx` valid for writes.
    let r = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, libc::STATX_MNT_ID, &mut stx) };
    (r == 0 && stx.stx_mask & libc::STATX_MNT_ID != 0).then_some(stx.stx_mnt_id)
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

/// Takes descriptor `fd`, which this process inherited to pass on (runc's
/// --preserve-fds, LISTEN_FDS), as its own, close-on-exec from now on; EBADF if
/// it is not open. Each number must be taken once.
pub fn take_inherited_fd(fd: RawFd) -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: F_SETFD takes an integer; it fails with EBADF on a closed number.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is open (above), came from the process that started
    // us, and nothing in this process owns it: the caller takes each number once.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
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

/// Host sockets for the network passthrough (`--network=host`): each call takes
/// and gives addresses as raw `struct sockaddr` bytes, as the sandbox's socket
/// calls carry them. Every socket is made non-blocking and close-on-exec.
pub mod socket {
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

    /// The largest address (`struct sockaddr_storage`).
    const ADDR_MAX: usize = 128;

    fn check(r: libc::c_int) -> io::Result<libc::c_int> {
        if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
    }

    fn check_len(r: libc::ssize_t) -> io::Result<usize> {
        if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
    }

    pub fn socket(domain: i32, kind: i32, protocol: i32) -> io::Result<OwnedFd> {
        // SAFETY: socket takes no pointers; the new descriptor is ours alone.
        let fd = check(unsafe { libc::socket(domain, kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, protocol) })?;
        // SAFETY: as above.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    pub fn bind(fd: BorrowedFd<'_>, addr: &[u8]) -> io::Result<()> {
        // SAFETY: the address is `addr.len()` readable bytes.
        check(unsafe { libc::bind(fd.as_raw_fd(), addr.as_ptr().cast(), addr.len() as libc::socklen_t) }).map(drop)
    }

    pub fn connect(fd: BorrowedFd<'_>, addr: &[u8]) -> io::Result<()> {
        // SAFETY: the address is `addr.len()` readable bytes.
        check(unsafe { libc::connect(fd.as_raw_fd(), addr.as_ptr().cast(), addr.len() as libc::socklen_t) }).map(drop)
    }

    pub fn listen(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
        // SAFETY: listen takes no pointers.
        check(unsafe { libc::listen(fd.as_raw_fd(), backlog) }).map(drop)
    }

    /// The next connection and its peer's address.
    pub fn accept(fd: BorrowedFd<'_>) -> io::Result<(OwnedFd, Vec<u8>)> {
        let mut addr = [0u8; ADDR_MAX];
        let mut len = ADDR_MAX as libc::socklen_t;
        // SAFETY: `addr` has `len` writable bytes, and accept4 writes at most that.
        let new = check(unsafe { libc::accept4(fd.as_raw_fd(), addr.as_mut_ptr().cast(), &mut len, libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) })?;
        // SAFETY: accept4 just made this descriptor, which nothing else owns.
        let new = unsafe { OwnedFd::from_raw_fd(new) };
        Ok((new, addr[..(len as usize).min(ADDR_MAX)].to_vec()))
    }

    /// getsockname (`peer` false) or getpeername.
    pub fn address(fd: BorrowedFd<'_>, peer: bool) -> io::Result<Vec<u8>> {
        let mut addr = [0u8; ADDR_MAX];
        let mut len = ADDR_MAX as libc::socklen_t;
        let call = if peer { libc::getpeername } else { libc::getsockname };
        // SAFETY: `addr` has `len` writable bytes, and the call writes at most that.
        check(unsafe { call(fd.as_raw_fd(), addr.as_mut_ptr().cast(), &mut len) })?;
        Ok(addr[..(len as usize).min(ADDR_MAX)].to_vec())
    }

    pub fn shutdown(fd: BorrowedFd<'_>, how: i32) -> io::Result<()> {
        // SAFETY: shutdown takes no pointers.
        check(unsafe { libc::shutdown(fd.as_raw_fd(), how) }).map(drop)
    }

    /// An option's value, at most `max` bytes of it.
    pub fn get_option(fd: BorrowedFd<'_>, level: i32, name: i32, max: usize) -> io::Result<Vec<u8>> {
        let mut value = vec![0u8; max];
        let mut len = max as libc::socklen_t;
        // SAFETY: `value` has `len` writable bytes, and getsockopt writes at most that.
        check(unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, value.as_mut_ptr().cast(), &mut len) })?;
        value.truncate(len as usize);
        Ok(value)
    }

    pub fn set_option(fd: BorrowedFd<'_>, level: i32, name: i32, value: &[u8]) -> io::Result<()> {
        // SAFETY: the value is `value.len()` readable bytes.
        check(unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, value.as_ptr().cast(), value.len() as libc::socklen_t) }).map(drop)
    }

    /// Sends `data`, to `to` if given.
    pub fn send(fd: BorrowedFd<'_>, data: &[u8], flags: i32, to: Option<&[u8]>) -> io::Result<usize> {
        let (addr, len) = to.map_or((std::ptr::null(), 0), |a| (a.as_ptr(), a.len() as libc::socklen_t));
        // SAFETY: `data` is readable for its length, and the address (or null) for `len` bytes.
        check_len(unsafe { libc::sendto(fd.as_raw_fd(), data.as_ptr().cast(), data.len(), flags, addr.cast(), len) })
    }

    /// Sends each of `messages` as one datagram (a frame, on a packet
    /// socket), gathered from its pieces, in one sendmmsg; returns how many went.
    pub fn send_each<P: AsRef<[u8]>>(fd: BorrowedFd<'_>, messages: &[Vec<P>], flags: i32) -> io::Result<usize> {
        let mut iovs: Vec<Vec<libc::iovec>> = messages
            .iter()
            .map(|m| m.iter().map(|p| libc::iovec { iov_base: p.as_ref().as_ptr() as *mut libc::c_void, iov_len: p.as_ref().len() }).collect())
            .collect();
        let mut headers: Vec<libc::mmsghdr> = iovs.iter_mut().map(|iov| {
            // SAFETY: an all-zero mmsghdr is a valid empty one.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_iov = iov.as_mut_ptr();
            h.msg_hdr.msg_iovlen = iov.len();
            h
        }).collect();
        // SAFETY: each header points at the iovecs of one message in `iovs`,
        // each iovec at one piece of it, all alive and readable until the call
        // returns.
        let n = unsafe { libc::sendmmsg(fd.as_raw_fd(), headers.as_mut_ptr(), headers.len() as libc::c_uint, flags) };
        check(n).map(|n| n as usize)
    }

    /// Receives into `buf`: the length the call returned (with MSG_TRUNC, a
    /// datagram's whole length) and the sender's address (empty if none).
    pub fn receive(fd: BorrowedFd<'_>, buf: &mut [u8], flags: i32) -> io::Result<(usize, Vec<u8>)> {
        let mut addr = [0u8; ADDR_MAX];
        let mut len = ADDR_MAX as libc::socklen_t;
        // SAFETY: `buf` and `addr` are writable for the lengths given.
        let n = check_len(unsafe { libc::recvfrom(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags, addr.as_mut_ptr().cast(), &mut len) })?;
        Ok((n, addr[..(len as usize).min(ADDR_MAX)].to_vec()))
    }

    /// A control message: (level, type, data).
    pub type ControlMessage = (i32, i32, Vec<u8>);

    /// Room for the control messages `receive_message` reads (a few IP-level ones).
    const CONTROL_MAX: usize = 512;

    /// `send` with control messages (sendmsg): the host checks them.
    pub fn send_message(fd: BorrowedFd<'_>, data: &[u8], flags: i32, to: Option<&[u8]>, control: &[ControlMessage]) -> io::Result<usize> {
        // u64 words: the buffer is aligned for cmsghdr.
        let space: usize = control.iter().map(|(_, _, d)| cmsg_space(d.len())).sum();
        let mut buf = vec![0u64; space.div_ceil(8)];
        let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
        // SAFETY: an all-zero msghdr is a valid empty one.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if let Some(a) = to {
            msg.msg_name = a.as_ptr() as *mut libc::c_void;
            msg.msg_namelen = a.len() as libc::socklen_t;
        }
        if space > 0 {
            msg.msg_control = buf.as_mut_ptr().cast();
            msg.msg_controllen = space;
            // SAFETY: the control buffer holds `space` bytes, the sum of every
            // message's CMSG_SPACE, so CMSG_FIRSTHDR/NXTHDR stay inside it and
            // each message's data fits after its header.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                for (level, kind, d) in control {
                    (*c).cmsg_level = *level;
                    (*c).cmsg_type = *kind;
                    (*c).cmsg_len = libc::CMSG_LEN(d.len() as u32) as usize;
                    std::ptr::copy_nonoverlapping(d.as_ptr(), libc::CMSG_DATA(c), d.len());
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
        }
        // SAFETY: the header points at `data`, `to` and the control buffer, all
        // alive and readable until the call returns.
        check_len(unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, flags) })
    }

    fn cmsg_space(len: usize) -> usize {
        // SAFETY: CMSG_SPACE is arithmetic.
        unsafe { libc::CMSG_SPACE(len as u32) as usize }
    }

    /// `receive` with the control messages that came along (recvmsg).
    pub fn receive_message(fd: BorrowedFd<'_>, buf: &mut [u8], flags: i32) -> io::Result<(usize, Vec<u8>, Vec<ControlMessage>)> {
        let mut addr = [0u8; ADDR_MAX];
        let mut control = [0u64; CONTROL_MAX / 8];
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // SAFETY: an all-zero msghdr is a valid empty one.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = addr.as_mut_ptr().cast();
        msg.msg_namelen = ADDR_MAX as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = CONTROL_MAX;
        // SAFETY: the header points at `buf`, `addr` and `control`, writable
        // for the lengths given, alive until the call returns.
        let n = check_len(unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags) })?;
        let mut messages = Vec::new();
        // SAFETY: the host filled `msg_controllen` bytes of `control` with
        // whole control messages; CMSG_FIRSTHDR/NXTHDR walk only those.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let len = (*c).cmsg_len.saturating_sub(libc::CMSG_LEN(0) as usize);
                messages.push(((*c).cmsg_level, (*c).cmsg_type, std::slice::from_raw_parts(libc::CMSG_DATA(c), len).to_vec()));
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Ok((n, addr[..(msg.msg_namelen as usize).min(ADDR_MAX)].to_vec(), messages))
    }

    /// An ioctl whose answer is an int (FIONREAD, SIOCOUTQ).
    pub fn ioctl_int(fd: BorrowedFd<'_>, request: u64) -> io::Result<i32> {
        let mut v: libc::c_int = 0;
        // SAFETY: these requests write one int at the pointer.
        check(unsafe { libc::ioctl(fd.as_raw_fd(), request as _, &mut v) })?;
        Ok(v)
    }
}
