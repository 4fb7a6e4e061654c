//! The gofer: a process that serves one host directory to the Sentry and never
//! resolves a path outside it.
//!
//! The Sentry never opens host files itself. It asks the gofer, over a Unix
//! `SOCK_SEQPACKET` socket pair, to walk, stat, open, create, rename... and the gofer
//! answers `open` with a host descriptor (`SCM_RIGHTS`) that the Sentry then reads
//! and writes directly.
//!
//! - [`protocol`]: the messages and their hand-written encoding.
//! - [`server`]: the request loop, confined to the root ([`serve`]).
//! - [`client`]: [`Client`], one typed method per operation.
//!
//! # Starting a gofer
//! The runtime starts it as a separate process running `rvisor gofer --root DIR
//! --fd N [--read-only]`, whose handler calls [`gofer_main`]. [`spawn_gofer`] does
//! the fork and exec (of the running executable) and returns the [`Client`]. The
//! runtime's CLI needs one hidden subcommand:
//!
//! ```ignore
//! /// Serve a directory to the Sentry (internal).
//! #[command(hide = true)]
//! Gofer {
//!     #[arg(long)] root: PathBuf,
//!     #[arg(long)] fd: i32,
//!     #[arg(long)] read_only: bool,
//! },
//! // ...
//! Command::Gofer { root, fd, read_only } => rvisor_gofer::gofer_main(&root, fd, read_only),
//! ```
//!
//! Exec, not a bare fork: the runtime is multi-threaded, and only async-signal-safe
//! calls are allowed between `fork` and `exec`. The gofer exits when the last
//! client connection closes. Confining the gofer process itself (mount namespace,
//! chroot or pivot_root to the root, seccomp, no capabilities beyond what the
//! served mount needs) is the runtime's part; the server's own confinement does not
//! depend on it (see [`server`]).
//!
//! # Using it from the Sentry
//! ```ignore
//! let (gofer, client) = rvisor_gofer::spawn_gofer(Path::new("/"), true)?;
//! let w = client.walk(ROOT, &[b"etc", b"hostname"])?;       // nodes + attributes
//! match w.end {
//!     WalkEnd::Complete => {}
//!     WalkEnd::Symlink { index } => { /* readlink(w.nodes[index]) and walk on */ }
//!     WalkEnd::Error { index, errno } => { /* component `index` failed */ }
//! }
//! let fd: OwnedFd = client.open(w.nodes[1].id, libc::O_RDONLY)?; // read it directly
//! client.close(&[w.nodes[0].id, w.nodes[1].id])?;
//! ```

pub mod client;
mod filter;
pub mod protocol;
pub mod server;
mod sys;

pub use client::{Client, Dirents, Walked};
pub use protocol::{Dirent, NodeId, NodeInfo, Owner, SetAttr, StatFs, WalkEnd, ROOT};
pub use server::{serve, Options, Server};

use nix::fcntl::{FcntlArg, FdFlag, OFlag};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::stat::Mode;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

/// Whether the server confines its opens with `openat2(RESOLVE_BENEATH...)` (Linux
/// 5.6+) in addition to its own name checks and `O_NOFOLLOW`.
pub fn uses_openat2() -> bool {
    sys::has_openat2()
}

/// The descriptor number the gofer's socket has in a spawned gofer.
pub const GOFER_FD: RawFd = 3;

/// The arguments of the gofer subcommand, after the program name:
/// `gofer --root DIR --fd N [--read-only]`.
pub fn gofer_args(root: &Path, fd: RawFd, read_only: bool) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["gofer".into(), "--root".into(), root.into(), "--fd".into(), fd.to_string().into()];
    if read_only {
        v.push("--read-only".into());
    }
    v
}

/// The body of `rvisor gofer --root ROOT --fd FD [--read-only]`: opens `root` and
/// serves the socket `socket_fd`, which the process inherited, until the Sentry
/// closes it; then exits.
pub fn gofer_main(root: &Path, socket_fd: RawFd, read_only: bool) -> ! {
    if socket_fd <= 2 {
        eprintln!("rvisor gofer: the socket cannot be a standard stream ({socket_fd})");
        std::process::exit(1);
    }
    // Whatever else the spawner leaked into this process must not reach the gofer.
    close_other_fds(socket_fd);
    let root = match nix::fcntl::open(root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()) {
        // SAFETY: `open` just returned this descriptor; we are its only owner.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(e) => {
            eprintln!("rvisor gofer: {}: {e}", root.display());
            std::process::exit(1);
        }
    };
    if nix::fcntl::fcntl(socket_fd, FcntlArg::F_GETFD).is_err() {
        eprintln!("rvisor gofer: descriptor {socket_fd} is not open");
        std::process::exit(1);
    }
    // Keep the socket from any process the gofer might ever start.
    let _ = nix::fcntl::fcntl(socket_fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    // SAFETY: the spawner handed this descriptor to the new process for the gofer
    // alone (see `spawn_gofer_with`); it was checked open above and nothing else in
    // this process owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(socket_fd) };
    raise_nofile_limit();
    serve(root, socket, read_only)
}

/// Closes every descriptor but the standard streams and `keep`.
fn close_other_fds(keep: RawFd) {
    let keep = keep as u32;
    let ranges = [(3, keep - 1), (keep + 1, u32::MAX)];
    for (first, last) in ranges {
        if first > last {
            continue;
        }
        // SAFETY: this runs first thing in the gofer process, before anything in it
        // has taken ownership of a descriptor other than the standard streams and
        // `keep`, so no `OwnedFd` or `File` can be left holding a closed number.
        let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
        if r != 0 {
            // Before Linux 5.9: close them one by one.
            let max = nix::unistd::sysconf(nix::unistd::SysconfVar::OPEN_MAX).ok().flatten().unwrap_or(1024);
            for fd in first as i64..=(last as i64).min(max as i64) {
                // SAFETY: as above.
                unsafe { libc::close(fd as RawFd) };
            }
        }
    }
}

/// Every node costs the gofer a descriptor: take all the host allows.
fn raise_nofile_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// A running gofer process.
pub struct Gofer {
    child: Child,
}

impl Gofer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the gofer to exit (it does once every client connection is closed).
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait()
    }

    /// The exit status if the gofer has exited, without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    pub fn kill(&mut self) -> io::Result<()> {
        self.child.kill()
    }
}

/// Starts a gofer serving `root` by running this executable as `EXE gofer --root
/// ROOT --fd 3 [--read-only]`, and returns it with a client connected to it.
pub fn spawn_gofer(root: &Path, read_only: bool) -> io::Result<(Gofer, Client)> {
    spawn_gofer_with(Command::new(std::env::current_exe()?), root, read_only)
}

/// As [`spawn_gofer`], with the program to run (and any arguments it needs before
/// the gofer's own). The program gets [`gofer_args`] and the socket on [`GOFER_FD`].
pub fn spawn_gofer_with(mut cmd: Command, root: &Path, read_only: bool) -> io::Result<(Gofer, Client)> {
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
    let fd = theirs.as_raw_fd();
    cmd.args(gofer_args(root, GOFER_FD, read_only)).stdin(Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes only `dup2` and `fcntl` calls,
    // and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if fd == GOFER_FD {
                // Already in place: only the close-on-exec flag must go.
                nix::fcntl::fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
            } else {
                // dup2 leaves the new descriptor without close-on-exec.
                nix::unistd::dup2(fd, GOFER_FD)?;
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(theirs);
    Ok((Gofer { child }, Client::new(ours)))
}
