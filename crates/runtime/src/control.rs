//! The sandbox's control socket: how `rvisor start`, `kill`, `ps` and `exec`
//! reach a running container.
//!
//! A `SOCK_SEQPACKET` socket in the container's state directory; each message is
//! one JSON value, and an exec request carries the new process's standard
//! streams as `SCM_RIGHTS` descriptors. One thread serves each connection, so an
//! exec can hold its connection until its process exits.

use crate::container::{save_shared, SharedState, Status};
use crate::request::Process;
use nix::sys::socket::{self, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr};
use rvisor_platform::hostcall;
use rvisor_kernel::task::{Capabilities, Credentials};
use rvisor_kernel::{Init, Kernel, ProgramSpec, Stdio};
use serde::{Deserialize, Serialize};
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The socket's name in the container's state directory (short: a socket path
/// has at most 107 bytes, and containerd's state directories are long).
pub const SOCKET: &str = "ctl.sock";

/// Largest message: an exec request with a long environment.
const MAX_MESSAGE: usize = 1 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub enum Command {
    /// Run init (`rvisor start`).
    Start,
    /// Send a signal to init, or to every process.
    Signal { signo: i32, all: bool },
    /// Send a signal to one process (one `rvisor exec` started).
    SignalProcess { pid: i32, signo: i32 },
    /// The host terminal of an exec'd process has this size (rows, columns,
    /// pixels across and down) now.
    Resize { pid: i32, winsize: [u16; 4] },
    /// List the processes.
    Ps,
    /// Start a process; its standard streams come with the message (three
    /// descriptors, or one terminal when `process.terminal`).
    Exec(Process),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Done,
    Failed(String),
    Processes(Vec<ProcessRow>),
    /// The exec'd process started with this pid in the sandbox.
    Started(i32),
    /// It ended: the exit code, or 128+N for signal N.
    Exited(i32),
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ProcessRow {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    pub state: char,
    pub threads: usize,
    pub cpu_ns: u64,
    pub cmd: String,
}

fn send(fd: BorrowedFd<'_>, value: &impl Serialize, fds: &[RawFd]) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    socket::sendmsg::<()>(fd.as_raw_fd(), &[IoSlice::new(&bytes)], cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// One message and the descriptors that came with it; `None` at end of stream.
fn receive<T: for<'a> Deserialize<'a>>(fd: BorrowedFd<'_>) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let (n, fds) = hostcall::recv_with_fds(fd, &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    let value = serde_json::from_slice(&buf[..n]).map_err(|e| io::Error::other(format!("bad control message: {e}")))?;
    Ok(Some((value, fds)))
}

/// A connection to a container's sandbox.
pub struct Client(OwnedFd);

impl Client {
    pub fn connect(state_dir: &Path) -> io::Result<Client> {
        let fd = socket::socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)?;
        socket::connect(fd.as_raw_fd(), &UnixAddr::new(&state_dir.join(SOCKET))?)?;
        Ok(Client(fd))
    }

    pub fn send(&self, cmd: &Command, fds: &[RawFd]) -> io::Result<()> {
        send(self.0.as_fd(), cmd, fds)
    }

    pub fn reply(&self) -> io::Result<Reply> {
        match receive(self.0.as_fd())? {
            Some((r, _)) => Ok(r),
            None => Err(io::Error::other("the sandbox closed the connection")),
        }
    }

    /// Sends `cmd` and returns the answer.
    pub fn call(&self, cmd: &Command) -> io::Result<Reply> {
        self.send(cmd, &[])?;
        self.reply()
    }
}

/// The commands being served: the sandbox waits for them to answer before it
/// exits, so that a command that ends the container (a start whose init exits
/// at once, a kill) still gets its answer.
#[derive(Default)]
pub struct InFlight {
    count: Mutex<usize>,
    idle: std::sync::Condvar,
}

struct Serving<'a>(&'a InFlight);

impl InFlight {
    fn enter(&self) -> Serving<'_> {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Serving(self)
    }

    pub fn wait_idle(&self) {
        let mut n = self.count.lock().unwrap_or_else(|e| e.into_inner());
        while *n > 0 {
            n = self.idle.wait(n).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        *self.0.count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.0.idle.notify_all();
    }
}

/// Serves the control socket in `state_dir` on a thread of its own. `init` is
/// taken by the first `Start`, which records in `state` that it runs.
pub fn serve(kernel: Arc<Kernel>, state_dir: &Path, init: Option<Init>, state: SharedState) -> io::Result<Arc<InFlight>> {
    let path: PathBuf = state_dir.join(SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = socket::socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)?;
    socket::bind(listener.as_raw_fd(), &UnixAddr::new(&path)?)?;
    socket::listen(&listener, socket::Backlog::new(16).map_err(io::Error::from)?)?;
    let init = Arc::new(Mutex::new(init));
    let started = Arc::new(Started { init, state });
    let in_flight = Arc::new(InFlight::default());
    let serving = in_flight.clone();
    std::thread::Builder::new().name("control".into()).spawn(move || loop {
        let conn = match hostcall::accept(listener.as_fd()) {
            Ok(c) => c,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) || e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
            // Out of descriptors or memory: try again later rather than spin.
            Err(_) => {
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        };
        let (kernel, started, serving) = (kernel.clone(), started.clone(), serving.clone());
        let _ = std::thread::Builder::new().name("control-conn".into()).spawn(move || {
            if let Err(e) = serve_connection(&kernel, &started, &serving, conn.as_fd()) {
                tracing::debug!("control connection: {e}");
            }
        });
    })?;
    Ok(in_flight)
}

/// Init until it is started, and the state that records it.
struct Started {
    init: Arc<Mutex<Option<Init>>>,
    state: SharedState,
}

fn serve_connection(kernel: &Arc<Kernel>, started: &Started, in_flight: &InFlight, fd: BorrowedFd<'_>) -> io::Result<()> {
    let Some((cmd, fds)) = receive::<Command>(fd)? else { return Ok(()) };
    let _serving = in_flight.enter();
    let reply = match cmd {
        Command::Start => match started.init.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(i) => {
                started.state.lock().unwrap_or_else(|e| e.into_inner()).0.status = Status::Running;
                i.start();
                match save_shared(&started.state) {
                    Ok(()) => Reply::Done,
                    Err(e) => Reply::Failed(format!("started, but the state was not saved: {e}")),
                }
            }
            None => Reply::Failed("the container has already been started".into()),
        },
        Command::Signal { signo, all } => {
            if !(1..=64).contains(&signo) {
                Reply::Failed(format!("invalid signal {signo}"))
            } else {
                if all {
                    kernel.signal_all(signo as u32);
                } else {
                    kernel.signal_init(signo as u32);
                }
                Reply::Done
            }
        }
        Command::SignalProcess { pid, signo } => match u32::try_from(signo) {
            Ok(s @ 1..=64) if kernel.signal_process(pid, s) => Reply::Done,
            Ok(1..=64) => Reply::Failed(format!("no process {pid}")),
            _ => Reply::Failed(format!("invalid signal {signo}")),
        },
        Command::Resize { pid, winsize } => match kernel.terminal_resized(pid, winsize) {
            true => Reply::Done,
            false => Reply::Failed(format!("process {pid} has no terminal")),
        },
        Command::Ps => Reply::Processes(
            kernel
                .processes()
                .into_iter()
                .map(|p| ProcessRow { pid: p.pid, ppid: p.ppid, uid: p.uid, state: p.state, threads: p.threads, cpu_ns: p.cpu_ns, cmd: p.cmd })
                .collect(),
        ),
        Command::Exec(process) => return exec(kernel, fd, process, fds),
    };
    send(fd, &reply, &[])
}

/// Starts `process` with the descriptors it came with as its standard streams,
/// answers with its pid, then with its status when it ends.
fn exec(kernel: &Arc<Kernel>, fd: BorrowedFd<'_>, process: Process, fds: Vec<OwnedFd>) -> io::Result<()> {
    let stdio = match (process.terminal, <[OwnedFd; 3]>::try_from(fds)) {
        (false, Ok(three)) => Stdio::Host(three),
        (true, Err(mut one)) if one.len() == 1 => {
            let term = one.remove(0);
            match crate::sandbox::terminal_stdio(term) {
                Ok(s) => s,
                Err(e) => return send(fd, &Reply::Failed(e), &[]),
            }
        }
        _ => return send(fd, &Reply::Failed("exec: wrong standard streams".into()), &[]),
    };
    let spec = program_spec(process, stdio);
    let path = String::from_utf8_lossy(&spec.argv.first().cloned().unwrap_or_default()).into_owned();
    let tg = match kernel.spawn(spec) {
        Ok(tg) => tg,
        Err(e) => return send(fd, &Reply::Failed(format!("{path}: {e}")), &[]),
    };
    send(fd, &Reply::Started(tg.tgid), &[])?;
    // The connection stands for the process: if the host process holding it
    // goes (even by SIGKILL), so does the process.
    let (watched, k) = (tg.clone(), kernel.clone());
    let watch = fd.try_clone_to_owned()?;
    let _ = std::thread::Builder::new().name("exec-watch".into()).spawn(move || {
        let mut fds = [nix::poll::PollFd::new(watch.as_fd(), nix::poll::PollFlags::from_bits_retain(libc::POLLRDHUP))];
        if nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE).is_ok() {
            k.signal_group(&watched, libc::SIGKILL as u32);
        }
    });
    let status = kernel.wait_process(&tg);
    // Ends the watch (whose kill now reaches a process that is gone).
    let _ = socket::shutdown(fd.as_raw_fd(), socket::Shutdown::Read);
    send(fd, &Reply::Exited(status.shell_code()), &[])
}

/// The kernel's view of a process to start.
pub fn program_spec(p: Process, stdio: Stdio) -> ProgramSpec {
    let (uid, gid) = (p.uid, p.gid);
    ProgramSpec {
        path: String::from_utf8_lossy(&p.path).into_owned(),
        argv: p.argv,
        envp: p.envp,
        stdio,
        cwd: String::from_utf8_lossy(&p.cwd).into_owned(),
        creds: Credentials { uid, euid: uid, suid: uid, gid, egid: gid, sgid: gid },
        groups: p.groups,
        rlimits: p.rlimits,
        no_new_privs: p.no_new_privs,
        caps: p.caps.map(|c| Capabilities { effective: c.effective, permitted: c.permitted, inheritable: c.inheritable, bounding: c.bounding, keep: false }),
    }
}
