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
//! negative errno). If the zygote cannot start or dies, stubs fork from the Sentry.

use nix::sys::socket::{recv, sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

pub(crate) enum Zygote {
    Untried,
    Running { pid: i32, sock: OwnedFd },
    Failed,
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
        if let Zygote::Untried = self {
            *self = Zygote::start(start).unwrap_or_else(|e| {
                tracing::debug!("no zygote ({e}); stubs fork from the Sentry");
                Zygote::Failed
            });
        }
        match self {
            Zygote::Running { pid, sock } => match Zygote::request(sock, fds) {
                Ok(child) => Ok(child),
                Err(e) => {
                    tracing::debug!("the zygote failed ({e}); stubs fork from the Sentry");
                    kill_and_reap(*pid);
                    *self = Zygote::Failed;
                    fork()
                }
            },
            _ => fork(),
        }
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
