//! The gofer: a process that serves host directories to the Sentry and never
//! resolves a path outside them.
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
//! The runtime starts one process per sandbox, serving every host directory the
//! sandbox mounts (its roots), running `rvisor gofer --fd 3 --root 4[:ro] --root
//! 5[:ro]...` (the socket and the roots' directories are inherited descriptors),
//! whose handler calls [`gofer_main`]. [`spawn_gofer_roots`] opens the roots, does
//! the fork and exec (of the running executable) and returns a [`Client`] per root;
//! [`spawn_gofer`] is the one-root case. The runtime's CLI needs one hidden
//! subcommand:
//!
//! ```ignore
//! /// Serve directories to the Sentry (internal).
//! #[command(hide = true)]
//! Gofer {
//!     #[arg(long)] fd: i32,
//!     #[arg(long = "root")] roots: Vec<rvisor_gofer::RootArg>,
//! },
//! // ...
//! Command::Gofer { fd, roots } => rvisor_gofer::gofer_main(fd, &roots),
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

/// The descriptor number the gofer's socket has in a spawned gofer; its roots
/// follow it (`GOFER_FD + 1`...).
pub const GOFER_FD: RawFd = 3;

/// One `--root` of the gofer subcommand: `FD` or `FD:ro`, an inherited descriptor
/// of a directory to serve and whether it is read-only. The roots are descriptors
/// rather than paths: the spawner resolves each host path once, the gofer never
/// resolves one, and no host path shows on its command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootArg {
    pub fd: RawFd,
    pub read_only: bool,
}

impl std::str::FromStr for RootArg {
    type Err = String;
    fn from_str(s: &str) -> Result<RootArg, String> {
        let (fd, read_only) = match s.strip_suffix(":ro") {
            Some(fd) => (fd, true),
            None => (s, false),
        };
        let fd = fd.parse().map_err(|_| format!("{s:?}: expected FD or FD:ro"))?;
        Ok(RootArg { fd, read_only })
    }
}

impl std::fmt::Display for RootArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.fd, if self.read_only { ":ro" } else { "" })
    }
}

/// The arguments of the gofer subcommand, after the program name, for roots with
/// these read-only flags: `gofer --fd 3 --root 4[:ro] --root 5[:ro]...`.
pub fn gofer_args(read_only: &[bool]) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["gofer".into(), "--fd".into(), GOFER_FD.to_string().into()];
    for (i, &read_only) in read_only.iter().enumerate() {
        v.push("--root".into());
        v.push(RootArg { fd: GOFER_FD + 1 + i as RawFd, read_only }.to_string().into());
    }
    v
}

/// The body of `rvisor gofer --fd FD --root R[:ro]...`: serves the socket
/// `socket_fd` and the directories `roots`, which the process inherited, until the
/// Sentry closes every connection; then exits.
pub fn gofer_main(socket_fd: RawFd, roots: &[RootArg]) -> ! {
    let mut keep: Vec<RawFd> = roots.iter().map(|r| r.fd).chain([socket_fd]).collect();
    keep.sort_unstable();
    keep.dedup();
    if keep.len() != roots.len() + 1 || keep[0] <= 2 {
        eprintln!("rvisor gofer: the socket and roots must be distinct descriptors above the standard streams");
        std::process::exit(1);
    }
    if roots.is_empty() {
        eprintln!("rvisor gofer: no root to serve");
        std::process::exit(1);
    }
    ignore_job_signals();
    // Whatever else the spawner leaked into this process must not reach the gofer.
    close_other_fds(&keep);
    for fd in &keep {
        if nix::fcntl::fcntl(*fd, FcntlArg::F_GETFD).is_err() {
            eprintln!("rvisor gofer: descriptor {fd} is not open");
            std::process::exit(1);
        }
        // Keep them from any process the gofer might ever start.
        let _ = nix::fcntl::fcntl(*fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    }
    // SAFETY: the spawner handed these descriptors to the new process for the gofer
    // alone (see `spawn_gofer_roots_with`); they were checked open and distinct
    // above and nothing else in this process owns them.
    let socket = unsafe { OwnedFd::from_raw_fd(socket_fd) };
    // SAFETY: as above.
    let roots = roots.iter().map(|r| (unsafe { OwnedFd::from_raw_fd(r.fd) }, r.read_only)).collect();
    raise_nofile_limit();
    serve(roots, socket)
}

/// The gofer lives exactly as long as the Sentry's connections to it. The signals
/// a terminal or a supervisor sends the sandbox's process group (ctrl-C, a hang-up,
/// a SIGTERM to the group) are the Sentry's to forward to the app, not the gofer's
/// to die of: a gofer gone under a running app would leave it without its files.
fn ignore_job_signals() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    for s in [Signal::SIGHUP, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTERM, Signal::SIGUSR1, Signal::SIGUSR2] {
        // SAFETY: SIG_IGN installs no handler, so no code of ours runs in signal context.
        let _ = unsafe { signal(s, SigHandler::SigIgn) };
    }
}

/// Closes every descriptor but the standard streams and `keep` (sorted, all above 2).
fn close_other_fds(keep: &[RawFd]) {
    let mut first = 3u32;
    let gaps = keep.iter().map(|&k| k as u32).chain([u32::MAX]);
    for next in gaps {
        // `next` itself stays open (u32::MAX is no descriptor).
        if first < next {
            close_range(first, next - 1);
        }
        first = next.saturating_add(1);
    }
}

fn close_range(first: u32, last: u32) {
    // SAFETY: this runs first thing in the gofer process, before anything in it
    // has taken ownership of a descriptor other than the standard streams and
    // those kept, so no `OwnedFd` or `File` can be left holding a closed number.
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

/// Starts a gofer serving `root` by running this executable as `EXE gofer --fd 3
/// --root 4[:ro]`, and returns it with a client connected to it.
pub fn spawn_gofer(root: &Path, read_only: bool) -> io::Result<(Gofer, Client)> {
    spawn_gofer_with(Command::new(std::env::current_exe()?), root, read_only)
}

/// As [`spawn_gofer`], with the program to run (and any arguments it needs before
/// the gofer's own).
pub fn spawn_gofer_with(cmd: Command, root: &Path, read_only: bool) -> io::Result<(Gofer, Client)> {
    let (gofer, mut clients) = spawn_gofer_roots_with(cmd, &[(root, read_only)])?;
    let client = clients.pop().ok_or_else(|| io::Error::other("no client"))?;
    Ok((gofer, client))
}

/// The directory `dir` as a gofer takes a root: an `O_PATH` descriptor.
pub fn open_root(dir: &Path) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::open(dir, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("{}: {e}", dir.display())))?;
    // SAFETY: `open` just returned this descriptor; we are its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Starts one gofer serving every directory of `roots` (each with whether it is
/// read-only), and returns it with a client for each root, in order. Each client
/// is a connection of its own, on which [`ROOT`] is its root.
pub fn spawn_gofer_roots(roots: &[(&Path, bool)]) -> io::Result<(Gofer, Vec<Client>)> {
    spawn_gofer_roots_with(Command::new(std::env::current_exe()?), roots)
}

/// As [`spawn_gofer_roots`], with the program to run. The program gets
/// [`gofer_args`], the socket on [`GOFER_FD`] and the roots on the descriptors
/// after it.
pub fn spawn_gofer_roots_with(mut cmd: Command, roots: &[(&Path, bool)]) -> io::Result<(Gofer, Vec<Client>)> {
    if roots.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a gofer needs a root"));
    }
    // Every descriptor handed over is first moved above the numbers it goes to, so
    // that no `dup2` in the child overwrites one not yet moved.
    let above = GOFER_FD + 1 + roots.len() as RawFd;
    let high = |fd: OwnedFd| -> io::Result<OwnedFd> {
        let moved = nix::fcntl::fcntl(fd.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(above))?;
        // SAFETY: F_DUPFD_CLOEXEC just made this descriptor; we are its only owner.
        Ok(unsafe { OwnedFd::from_raw_fd(moved) })
    };
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
    let mut handed = vec![high(theirs)?];
    for (dir, _) in roots {
        handed.push(high(open_root(dir)?)?);
    }
    let raw: Vec<RawFd> = handed.iter().map(|fd| fd.as_raw_fd()).collect();
    let read_only: Vec<bool> = roots.iter().map(|r| r.1).collect();
    cmd.args(gofer_args(&read_only)).stdin(Stdio::null()).stdout(Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes only `dup2` calls, and
    // allocates nothing (`raw` was built before the fork).
    unsafe {
        cmd.pre_exec(move || {
            for (i, &fd) in raw.iter().enumerate() {
                // dup2 leaves the new descriptor without close-on-exec; `fd` is
                // above every target, so never one of them.
                nix::unistd::dup2(fd, GOFER_FD + i as RawFd)?;
            }
            Ok(())
        });
    }
    let mut gofer = Gofer { child: cmd.spawn()? };
    drop(handed);
    let first = Client::new(ours);
    let mut clients = Vec::with_capacity(roots.len());
    for i in 1..roots.len() {
        match first.connect_root(i as u32) {
            Ok(c) => clients.push(c),
            Err(e) => {
                // A gofer that cannot serve every root is of no use: don't leave it behind.
                let _ = gofer.kill();
                let _ = gofer.wait();
                return Err(io::Error::from_raw_os_error(i32::from(e.0)));
            }
        }
    }
    clients.insert(0, first);
    Ok((gofer, clients))
}
