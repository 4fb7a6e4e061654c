//! The sandbox's control socket: how `rvisor start`, `kill`, `ps` and `exec`
//! reach a running container.
//!
//! A `SOCK_SEQPACKET` socket in the container's state directory; each message is
//! one JSON value, and an exec request carries the new process's standard
//! streams as `SCM_RIGHTS` descriptors. One thread serves each connection, so an
//! exec can hold its connection until its process exits.

use crate::container::{save_shared, SharedState, Status};
use crate::gofers::PlannedMount;
use crate::request::Process;
use nix::sys::socket::{self, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr};
use rvisor_platform::hostcall;
use rvisor_kernel::task::{Capabilities, Credentials};
use rvisor_kernel::task::{Container, ThreadGroup};
use rvisor_kernel::{ContainerRoot, Init, Kernel, ProgramSpec, Stdio};
use std::collections::HashMap;
use serde::{Deserialize, Serialize};
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
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
    /// The sandbox's memory, by kind (`rvisor usage`, `rvisor events`).
    Usage,
    /// Start a process; its standard streams come with the message (three
    /// descriptors, or one terminal when `process.terminal`).
    Exec(Process),
    /// Add one of the pod's containers to this sandbox. Its standard streams
    /// come with the message (as for `Exec`), then a descriptor of each of its
    /// roots (host directories). The connection stands for the container, as for `Exec`:
    /// `Started` answers, then `Exited` when its init ends.
    AddContainer(ContainerRequest),
    /// A command for one of the pod's containers this sandbox runs, from the
    /// host process that stands for it (`pod.rs`).
    For { container: String, command: Box<Command> },
}

/// A pod container to add to the sandbox.
#[derive(Debug, Serialize, Deserialize)]
pub struct ContainerRequest {
    pub id: String,
    pub process: Process,
    pub root_read_only: bool,
    /// Its root's propagation type, as `Request::root_propagation`.
    #[serde(default)]
    pub root_propagation: u64,
    /// Its mounts, in terms of its roots (root 0 is its root).
    pub mounts: Vec<PlannedMount>,
    /// Whether each root is read-only; the directories come with the message,
    /// for the sandbox's gofer to serve.
    pub roots: Vec<bool>,
    /// Start init at once (`rvisor run`) rather than at `Start`.
    pub start_now: bool,
    /// In the first container's PID namespace rather than one of its own.
    pub share_pids: bool,
    /// Its spec's seccomp profile, compiled.
    pub seccomp: Option<Vec<crate::seccomp::Insn>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Done,
    Failed(String),
    Processes(Vec<ProcessRow>),
    Usage(MemoryUsage),
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
    pub user_ns: u64,
    pub sys_ns: u64,
    pub rss: u64,
    pub cmd: String,
}

/// The sandbox's memory file, in bytes: what each kind of memory holds, and how much
/// of the file is resident on the host.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct MemoryUsage {
    pub anonymous: u64,
    pub tmpfs: u64,
    pub page_cache: u64,
    pub system: u64,
    pub total: u64,
    pub resident: u64,
    /// Processes the sandbox's OOM killer has killed.
    pub oom_kills: u64,
}

pub(crate) fn send(fd: BorrowedFd<'_>, value: &impl Serialize, fds: &[RawFd]) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    socket::sendmsg::<()>(fd.as_raw_fd(), &[IoSlice::new(&bytes)], cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// One message and the descriptors that came with it; `None` at end of stream.
pub(crate) fn receive<T: for<'a> Deserialize<'a>>(fd: BorrowedFd<'_>) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
    // A buffer of the message's size (MSG_TRUNC tells it), not of the largest:
    // a megabyte zeroed per message was most of a pod container's process.
    let size = loop {
        match socket::recv(fd.as_raw_fd(), &mut [], MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r?,
        }
    };
    let mut buf = vec![0u8; size.min(MAX_MESSAGE)];
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

    pub fn socket(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
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

pub(crate) struct Serving<'a>(&'a InFlight);

impl InFlight {
    pub(crate) fn enter(&self) -> Serving<'_> {
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

/// Serves the control socket `listener` (made by [`listen`] in the state
/// directory, before the Sentry lost the host's files) on a thread of its own.
/// `init` is taken by the first `Start`, which records in `state` that it runs.
pub fn serve(kernel: Arc<Kernel>, gofer: Arc<rvisor_gofer::Client>, listener: OwnedFd, init: Option<Init>, state: SharedState) -> io::Result<Ending> {
    let first = Arc::new(Served { container: kernel.root_container.clone(), init: Mutex::new(init), state: Some(state) });
    let server = Arc::new(Server { kernel, gofer, first, pod: Mutex::default(), in_flight: Arc::default() });
    let ending = Ending(server.clone());
    accept_each(listener, move |conn| {
        if let Err(e) = server.serve_connection(conn.as_fd()) {
            tracing::debug!("control connection: {e}");
        }
    })?;
    Ok(ending)
}

/// The control server of a sandbox whose first container's init has ended.
pub struct Ending(Arc<Server>);

impl Ending {
    /// Waits for the commands being served to answer. The pod's containers
    /// were killed with the sandbox's init, but one whose init was never
    /// started would never end: it starts now, only to die.
    pub fn wait_idle(&self) {
        for served in self.0.pod.lock().unwrap_or_else(|e| e.into_inner()).values() {
            if let Some(i) = served.init.lock().unwrap_or_else(|e| e.into_inner()).take() {
                i.start();
            }
        }
        self.0.in_flight.wait_idle();
    }
}

/// A control socket listening at `path`.
pub(crate) fn listen(path: &Path) -> io::Result<OwnedFd> {
    let _ = std::fs::remove_file(path);
    let listener = socket::socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)?;
    socket::bind(listener.as_raw_fd(), &UnixAddr::new(path)?)?;
    socket::listen(&listener, socket::Backlog::new(16).map_err(io::Error::from)?)?;
    Ok(listener)
}

/// Accepts connections on `listener` on a thread of its own, and serves each
/// with `serve` on a thread of its own.
pub(crate) fn accept_each(listener: OwnedFd, serve: impl Fn(OwnedFd) + Send + Sync + 'static) -> io::Result<()> {
    let serve = Arc::new(serve);
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
        let serve = serve.clone();
        let _ = std::thread::Builder::new().name("control-conn".into()).spawn(move || serve(conn));
    })?;
    Ok(())
}

/// A container this sandbox runs, as commands reach it.
struct Served {
    container: Arc<Container>,
    /// Its init, until started.
    init: Mutex<Option<Init>>,
    /// The state file the sandbox keeps: the first container's (a pod
    /// container's host process keeps its own).
    state: Option<SharedState>,
}

struct Server {
    kernel: Arc<Kernel>,
    /// The sandbox's gofer, which serves the roots of the pod's containers too.
    gofer: Arc<rvisor_gofer::Client>,
    /// The container the sandbox booted with.
    first: Arc<Served>,
    /// The pod's other containers, by id. Leaf lock.
    pod: Mutex<HashMap<String, Arc<Served>>>,
    in_flight: Arc<InFlight>,
}

impl Server {
    fn serve_connection(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let Some((cmd, fds)) = receive::<Command>(fd)? else { return Ok(()) };
        let _serving = self.in_flight.enter();
        match cmd {
            Command::AddContainer(req) => self.add_container(fd, req, fds),
            Command::For { container, command } => {
                let served = self.pod.lock().unwrap_or_else(|e| e.into_inner()).get(&container).cloned();
                match served {
                    Some(_) if matches!(*command, Command::For { .. } | Command::AddContainer(_)) => send(fd, &Reply::Failed("not a container's command".into()), &[]),
                    Some(target) => self.command(&target, fd, *command, fds),
                    None => send(fd, &Reply::Failed(format!("this sandbox runs no container {container}")), &[]),
                }
            }
            cmd => self.command(&self.first, fd, cmd, fds),
        }
    }

    /// Serves `cmd` for the container `target`.
    fn command(&self, target: &Served, fd: BorrowedFd<'_>, cmd: Command, fds: Vec<OwnedFd>) -> io::Result<()> {
        let kernel = &self.kernel;
        let reply = match cmd {
            Command::Start => match target.init.lock().unwrap_or_else(|e| e.into_inner()).take() {
                Some(i) => {
                    if let Some(state) = &target.state {
                        state.lock().unwrap_or_else(|e| e.into_inner()).0.status = Status::Running;
                    }
                    i.start();
                    match target.state.as_ref().map(save_shared) {
                        Some(Err(e)) => Reply::Failed(format!("started, but the state was not saved: {e}")),
                        _ => Reply::Done,
                    }
                }
                None => Reply::Failed("the container has already been started".into()),
            },
            Command::Signal { signo, all } => {
                if !(1..=64).contains(&signo) {
                    Reply::Failed(format!("invalid signal {signo}"))
                } else if all {
                    kernel.signal_all(&target.container, signo as u32);
                    Reply::Done
                } else if kernel.signal_container_init(&target.container, signo as u32) {
                    Reply::Done
                } else {
                    Reply::Failed("container not running".into())
                }
            }
            Command::SignalProcess { pid, signo } => match u32::try_from(signo) {
                Ok(s @ 1..=64) if kernel.signal_process(&target.container, pid, s) => Reply::Done,
                Ok(1..=64) => Reply::Failed(format!("no process {pid}")),
                _ => Reply::Failed(format!("invalid signal {signo}")),
            },
            Command::Resize { pid, winsize } => match kernel.terminal_resized(&target.container, pid, winsize) {
                true => Reply::Done,
                false => Reply::Failed(format!("process {pid} has no terminal")),
            },
            Command::Ps => Reply::Processes(
                kernel
                    .processes(&target.container)
                    .into_iter()
                    .map(|p| ProcessRow { pid: p.pid, ppid: p.ppid, uid: p.uid, state: p.state, threads: p.threads, user_ns: p.user_ns, sys_ns: p.sys_ns, rss: p.rss, cmd: p.cmd })
                    .collect(),
            ),
            Command::Usage => Reply::Usage(memory_usage(kernel)),
            Command::Exec(process) => return exec(kernel, &target.container, fd, process, fds),
            Command::AddContainer(_) | Command::For { .. } => Reply::Failed("not a container's command".into()),
        };
        send(fd, &reply, &[])
    }

    /// Adds a pod container: answers with its init's pid, then, once init has
    /// ended, with how.
    fn add_container(&self, fd: BorrowedFd<'_>, req: ContainerRequest, mut fds: Vec<OwnedFd>) -> io::Result<()> {
        if req.roots.is_empty() || fds.len() < req.roots.len() {
            return send(fd, &Reply::Failed("add container: wrong descriptors".into()), &[]);
        }
        let dirs = fds.split_off(fds.len() - req.roots.len());
        let (stdio, extra) = match streams_of(&req.process, fds) {
            Ok(s) => s,
            Err(e) => return send(fd, &Reply::Failed(e), &[]),
        };
        let clients = match dirs.iter().zip(&req.roots).map(|(dir, &ro)| self.gofer.add_root(dir.as_fd(), ro).map(Arc::new)).collect::<Result<Vec<_>, _>>() {
            Ok(c) => c,
            Err(e) => return send(fd, &Reply::Failed(format!("the gofer cannot serve the container's directories: {e:?}")), &[]),
        };
        let mounts = match crate::gofers::mount_specs(req.mounts, &clients) {
            Ok(m) => m,
            Err(e) => return send(fd, &Reply::Failed(e), &[]),
        };
        let Some(gofer) = clients.first().cloned() else { return send(fd, &Reply::Failed("no root".into()), &[]) };
        if self.pod.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&req.id) {
            return send(fd, &Reply::Failed(format!("container {} already exists in this sandbox", req.id)), &[]);
        }
        if self.kernel.init_exited() {
            return send(fd, &Reply::Failed("the pod's sandbox is ending".into()), &[]);
        }
        let mut spec = program_spec(req.process, stdio, extra);
        spec.seccomp = req.seccomp.map(crate::seccomp::to_kernel);
        let program = spec.path.clone();
        let (container, init, tg) = match self.kernel.create_container(ContainerRoot { gofer, read_only: req.root_read_only, propagation: req.root_propagation, mounts, share_pids: req.share_pids }, spec) {
            Ok(c) => c,
            Err(e @ rvisor_kernel::ContainerError::Exec(_)) => return send(fd, &Reply::Failed(format!("{program}: {e} (in the sandbox)")), &[]),
            Err(e) => return send(fd, &Reply::Failed(e.to_string()), &[]),
        };
        let init = if req.start_now {
            init.start();
            None
        } else {
            Some(init)
        };
        let served = Arc::new(Served { container, init: Mutex::new(init), state: None });
        self.pod.lock().unwrap_or_else(|e| e.into_inner()).insert(req.id.clone(), served.clone());
        if self.kernel.init_exited() {
            // The sandbox's init ended meanwhile, killing what there was.
            self.kernel.signal_all(&served.container, libc::SIGKILL as u32);
            if let Some(i) = served.init.lock().unwrap_or_else(|e| e.into_inner()).take() {
                i.start();
            }
        }
        send(fd, &Reply::Started(tg.tgid), &[])?;
        // The host process holding the connection stands for the container:
        // if it goes (even by SIGKILL), so does the container.
        let (kernel, watched) = (self.kernel.clone(), served.clone());
        on_hangup(fd, move || {
            kernel.signal_all(&watched.container, libc::SIGKILL as u32);
            // Never started: it runs only to die.
            if let Some(i) = watched.init.lock().unwrap_or_else(|e| e.into_inner()).take() {
                i.start();
            }
        })?;
        let status = self.kernel.wait_process(&tg);
        self.pod.lock().unwrap_or_else(|e| e.into_inner()).remove(&req.id);
        self.kernel.remove_container(&served.container);
        finish(fd, status)
    }
}

/// Calls `then` on a thread of its own once the peer of the connection `fd`
/// is gone (or the connection is shut down for reading).
fn memory_usage(kernel: &Kernel) -> MemoryUsage {
    use rvisor_memory::UsageKind;
    let mf = &kernel.memory;
    let [anonymous, tmpfs, page_cache, system] = [UsageKind::Anonymous, UsageKind::Tmpfs, UsageKind::PageCache, UsageKind::System].map(|k| mf.usage(k));
    let oom_kills = kernel.oom_kills.load(std::sync::atomic::Ordering::Relaxed);
    MemoryUsage { anonymous, tmpfs, page_cache, system, total: anonymous + tmpfs + page_cache + system, resident: mf.resident(), oom_kills }
}

fn on_hangup(fd: BorrowedFd<'_>, then: impl FnOnce() + Send + 'static) -> io::Result<()> {
    let watch = fd.try_clone_to_owned()?;
    std::thread::Builder::new().name("control-watch".into()).spawn(move || {
        let mut fds = [nix::poll::PollFd::new(watch.as_fd(), nix::poll::PollFlags::from_bits_retain(libc::POLLRDHUP))];
        if nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE).is_ok() {
            then();
        }
    })?;
    Ok(())
}

/// A process that a connection stands for has ended: ends the watch on the
/// connection (whose action now reaches nothing) and says how it ended.
fn finish(fd: BorrowedFd<'_>, status: rvisor_kernel::ExitStatus) -> io::Result<()> {
    let _ = socket::shutdown(fd.as_raw_fd(), socket::Shutdown::Read);
    send(fd, &Reply::Exited(status.shell_code()), &[])
}

/// Standard streams from the descriptors a request came with: three, or one
/// terminal.
/// A process's standard streams (three descriptors, or one terminal) and the
/// descriptors it keeps from its caller (`preserved_fds` of them), from `fds`,
/// which must hold exactly these.
fn streams_of(process: &Process, mut fds: Vec<OwnedFd>) -> Result<(Stdio, Vec<OwnedFd>), String> {
    let stdio_count = if process.terminal { 1 } else { 3 };
    if fds.len() != stdio_count + process.preserved_fds as usize {
        return Err("wrong standard streams".into());
    }
    let extra = fds.split_off(stdio_count);
    let stdio = match (process.terminal, <[OwnedFd; 3]>::try_from(fds)) {
        (false, Ok(three)) => Stdio::Host(three),
        (true, Err(mut one)) if one.len() == 1 => crate::sandbox::terminal_stdio(one.remove(0))?,
        _ => return Err("wrong standard streams".into()),
    };
    Ok((stdio, extra))
}

/// Starts `process` in `container` with the descriptors it came with as its
/// standard streams, answers with its pid, then with its status when it ends.
fn exec(kernel: &Arc<Kernel>, container: &Arc<Container>, fd: BorrowedFd<'_>, process: Process, fds: Vec<OwnedFd>) -> io::Result<()> {
    let (stdio, extra) = match streams_of(&process, fds) {
        Ok(s) => s,
        Err(e) => return send(fd, &Reply::Failed(format!("exec: {e}")), &[]),
    };
    let spec = program_spec(process, stdio, extra);
    let path = String::from_utf8_lossy(&spec.argv.first().cloned().unwrap_or_default()).into_owned();
    let tg: Arc<ThreadGroup> = match kernel.spawn(container, spec) {
        Ok(tg) => tg,
        Err(e) => return send(fd, &Reply::Failed(format!("{path}: {e}")), &[]),
    };
    send(fd, &Reply::Started(tg.tgid), &[])?;
    // The connection stands for the process: if the host process holding it
    // goes (even by SIGKILL), so does the process.
    let (watched, k) = (tg.clone(), kernel.clone());
    on_hangup(fd, move || k.signal_group(&watched, libc::SIGKILL as u32))?;
    finish(fd, kernel.wait_process(&tg))
}

/// The kernel's view of a process to start.
pub fn program_spec(p: Process, stdio: Stdio, extra_fds: Vec<OwnedFd>) -> ProgramSpec {
    let (uid, gid) = (p.uid, p.gid);
    ProgramSpec {
        path: String::from_utf8_lossy(&p.path).into_owned(),
        argv: p.argv,
        envp: p.envp,
        stdio,
        extra_fds,
        cwd: String::from_utf8_lossy(&p.cwd).into_owned(),
        creds: Credentials::new(uid, gid),
        groups: p.groups,
        rlimits: p.rlimits,
        no_new_privs: p.no_new_privs,
        seccomp: None,
        caps: p.caps.map(|c| Capabilities { effective: c.effective, permitted: c.permitted, inheritable: c.inheritable, bounding: c.bounding, keep: false, ambient: c.ambient }),
    }
}
