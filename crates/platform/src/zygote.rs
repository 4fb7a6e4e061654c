//! The zygote both platforms fork their stubs from: a process of a page or two,
//! forked from the Sentry once, that forks each new stub on request. Forking the
//! Sentry itself for every stub cost ~500 µs, and left copy-on-write faults and TLB
//! shoot-downs in the Sentry afterwards.
//!
//! Each platform's stub page holds its own zygote (assembly); this is the Sentry's
//! side. A request is one byte with the new stub's descriptors (SCM_RIGHTS); the
//! zygote forks with CLONE_PARENT, so that the stub is the Sentry's own child
//! (waitable, its parent-death signal the Sentry's), sends it into the platform's
//! stub setup with those descriptors, and answers with its pid (4 bytes, or a
//! negative errno). If the zygote cannot start or dies, stubs fork from the Sentry,
//! unless it is sealed (`seal`: under its seccomp filter, which they would inherit).

/// The zygote's request loop, in assembly, for each platform's stub page (`$p`: a
/// prefix for its labels). On entry r12 is a scratch page and the zygote's socket is
/// on descriptor 0. Per request (one byte with SCM_RIGHTS, `$len` the control
/// message's length) it forks a child with CLONE_PARENT, which goes on at `$child` with
/// the descriptors in ebp, r14d and r13d, in the order sent; the parent closes them
/// and answers with the child's pid (4 bytes). When the Sentry is gone or breaks the
/// protocol, it exits at `$p _done`. Uses no stack.
/// What a process forked into a stub page does first, in assembly (`$p`: a prefix for
/// its labels). r14 is the forking thread's rseq area or 0: the kernel would write it
/// (soon unmapped) on every return to user mode, so it is unregistered first (glibc's
/// length, then the older one, and RSEQ_SIG). Then the process asks to die with the
/// thread that forked it (or, through CLONE_PARENT, that forked the zygote).
macro_rules! fork_prologue_asm {
    ($p:literal) => {
        concat!(
            "test r14, r14\n", "jz ", $p, "_rseq_done\n",
            "mov eax, 334\n", "mov rdi, r14\n", "mov esi, 32\n", "mov edx, 1\n", "mov r10d, 0x53053053\n", "syscall\n",
            "test rax, rax\n", "jz ", $p, "_rseq_done\n",
            "mov eax, 334\n", "mov rdi, r14\n", "mov esi, 20\n", "mov edx, 1\n", "mov r10d, 0x53053053\n", "syscall\n",
            $p, "_rseq_done:\n",
            "mov eax, 157\n", "mov edi, 1\n", "mov esi, 9\n", "syscall\n", // prctl(PR_SET_PDEATHSIG, SIGKILL)
        )
    };
}

/// The zygote's first step, in assembly: its socket (r12) on descriptors 0, 1 and 2,
/// so that descriptors it receives land at 3 and up and a child can move them to 0,
/// 1 and 2 in any order; every other descriptor closed. On failure it goes to
/// `$fail` with edi = `$code`.
macro_rules! zygote_socket_asm {
    ($fail:literal, $code:literal) => {
        concat!(
            "mov eax, 33\n", "mov rdi, r12\n", "xor esi, esi\n", "syscall\n", // dup2(socket, 0)
            "mov edi, ", $code, "\n", "test rax, rax\n", "js ", $fail, "\n",
            "mov eax, 33\n", "mov rdi, r12\n", "mov esi, 1\n", "syscall\n", // dup2(socket, 1)
            "mov edi, ", $code, "\n", "test rax, rax\n", "js ", $fail, "\n",
            "mov eax, 33\n", "mov rdi, r12\n", "mov esi, 2\n", "syscall\n", // dup2(socket, 2)
            "mov edi, ", $code, "\n", "test rax, rax\n", "js ", $fail, "\n",
            "mov eax, 436\n", "mov edi, 3\n", "mov esi, -1\n", "xor edx, edx\n", "syscall\n", // close_range(3, ~0, 0)
        )
    };
}

macro_rules! zygote_loop_asm {
    ($p:literal, $len:literal, $child:literal) => {
        concat!(
            $p, "_loop:\n",
            // msghdr at +0, iovec at +64 (one byte at +96), the pid answer at +100,
            // cmsg at +128: its length, SOL_SOCKET, SCM_RIGHTS, then the descriptors.
            "xor eax, eax\n",
            "mov [r12], rax\n", "mov [r12 + 8], rax\n",
            "lea rax, [r12 + 64]\n", "mov [r12 + 16], rax\n", "mov qword ptr [r12 + 24], 1\n",
            "lea rax, [r12 + 128]\n", "mov [r12 + 32], rax\n", "mov qword ptr [r12 + 40], 32\n",
            "mov dword ptr [r12 + 48], 0\n",
            "lea rax, [r12 + 96]\n", "mov [r12 + 64], rax\n", "mov qword ptr [r12 + 72], 1\n",
            "mov qword ptr [r12 + 128], 0\n",
            "mov eax, 47\n", "xor edi, edi\n", "mov rsi, r12\n", "xor edx, edx\n", "syscall\n", // recvmsg(0, msghdr, 0)
            "test rax, rax\n", "jle ", $p, "_done\n",
            "cmp qword ptr [r12 + 128], ", $len, "\n", "jne ", $p, "_done\n",
            "mov ebp, [r12 + 144]\n", "mov r14d, [r12 + 148]\n", "mov r13d, [r12 + 152]\n",
            "mov eax, 56\n", "mov edi, 0x8000\n", "xor esi, esi\n", "xor edx, edx\n", "xor r10d, r10d\n", "xor r8d, r8d\n",
            "syscall\n", // clone(CLONE_PARENT)
            "test rax, rax\n", "jz ", $child, "\n",
            "mov [r12 + 100], eax\n",
            "lea r15, [r12 + 144]\n",
            $p, "_close:\n",
            "mov eax, 3\n", "mov edi, [r15]\n", "syscall\n", // close(each descriptor received)
            "add r15, 4\n", "mov rax, [r12 + 128]\n", "lea rax, [r12 + rax + 128]\n", "cmp r15, rax\n", "jb ", $p, "_close\n",
            "mov eax, 1\n", "xor edi, edi\n", "lea rsi, [r12 + 100]\n", "mov edx, 4\n", "syscall\n", // write(0, &pid, 4)
            "jmp ", $p, "_loop\n",
        )
    };
}

use nix::sys::socket::{recv, sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

pub(crate) enum Zygote {
    Untried,
    Running { pid: i32, sock: OwnedFd },
    Failed,
}

/// Set when the Sentry goes under its seccomp filter: a process forked from it then
/// inherits the filter, whose kill action outranks a systrap stub's trap, so stubs
/// may come only from a zygote forked before.
static SEALED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on no stub (and no zygote) forks from the Sentry itself.
pub(crate) fn seal() {
    SEALED.store(true, std::sync::atomic::Ordering::Release);
}

fn sealed() -> io::Result<()> {
    if SEALED.load(std::sync::atomic::Ordering::Acquire) {
        return Err(io::Error::other("no zygote, and a stub forked from the Sentry would inherit its seccomp filter"));
    }
    Ok(())
}

impl Zygote {
    /// A new stub's pid. The zygote forks it and hands it `fds`; `start` forks the
    /// Sentry into a zygote serving the socket it is given (on first use); `fork`
    /// forks the Sentry into the stub directly, where there is no zygote.
    pub fn spawn(
        &mut self,
        fds: &[RawFd],
        start: impl FnOnce(RawFd) -> io::Result<i32>,
        fork: impl FnOnce() -> io::Result<i32>,
    ) -> io::Result<i32> {
        self.ensure_started(start);
        match self {
            Zygote::Running { pid, sock } => match Zygote::request(sock, fds) {
                Ok(child) => Ok(child),
                Err(e) => {
                    tracing::debug!("the zygote failed ({e}); stubs fork from the Sentry");
                    kill_and_reap(*pid);
                    *self = Zygote::Failed;
                    sealed()?;
                    fork()
                }
            },
            _ => {
                sealed()?;
                fork()
            }
        }
    }

    /// Starts the zygote if it was never tried (and the Sentry is not sealed yet);
    /// whether it runs.
    pub fn ensure_started(&mut self, start: impl FnOnce(RawFd) -> io::Result<i32>) -> bool {
        if let Zygote::Untried = self {
            if sealed().is_err() {
                *self = Zygote::Failed;
                return false;
            }
            *self = Zygote::start(start).unwrap_or_else(|e| {
                tracing::debug!("no zygote ({e}); stubs fork from the Sentry");
                Zygote::Failed
            });
        }
        matches!(self, Zygote::Running { .. })
    }

    fn start(start: impl FnOnce(RawFd) -> io::Result<i32>) -> io::Result<Zygote> {
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
        let pid = start(theirs.as_raw_fd())?;
        Ok(Zygote::Running { pid, sock: ours })
    }

    fn request(sock: &OwnedFd, fds: &[RawFd]) -> io::Result<i32> {
        let iov = [io::IoSlice::new(&[0u8])];
        sendmsg::<()>(sock.as_raw_fd(), &iov, &[ControlMessage::ScmRights(fds)], MsgFlags::MSG_NOSIGNAL, None)?;
        let mut answer = [0u8; 4];
        let n = recv(sock.as_raw_fd(), &mut answer, MsgFlags::empty())?;
        let pid = i32::from_le_bytes(answer);
        match (n, pid) {
            (4, p) if p > 0 => Ok(p),
            (4, p) => Err(io::Error::from_raw_os_error(-p)),
            _ => Err(io::Error::other("the zygote hung up")),
        }
    }
}

/// Kills a child process of the Sentry (a stub or the zygote) and reaps it.
pub(crate) fn kill_and_reap(pid: i32) {
    // SAFETY: signalling and reaping our own child; status is a local.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        while libc::waitpid(pid, &mut status, libc::__WALL) < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {}
    }
}
