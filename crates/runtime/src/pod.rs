//! A Kubernetes pod's containers in one sandbox, as runsc runs them.
//!
//! The pod's first container (its sandbox, the pause container) boots a
//! sandbox as any container does. Each other container of the pod is added to
//! that sandbox: it gets its own root, mounts and init there, and shares the
//! sandbox's network stack (the pod's interface), IPC and processes. On the
//! host it is one small process, `rvisor boot` with a member request, which
//! - opens the container's root and the host directories it mounts, and
//!   hands them to the sandbox, whose gofer serves them too,
//! - asks the sandbox to add the container (the connection then stands for it:
//!   if this process dies, the sandbox kills the container),
//! - serves the container's control socket by passing each command on to the
//!   sandbox's, and keeps the container's state file,
//! - exits as the container's init does. It is the container's pid for the
//!   caller (containerd's shim reaps it for the exit status).

use crate::container::{host_process, ReadyPipe, SharedState, State, Status};
use crate::control::{self, Client, Command, ContainerRequest, Reply};
use crate::gofers::Gofers;
use crate::oci::Bundle;
use crate::request::{PodMember, Request};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The annotations a Kubernetes runtime marks a pod's containers with: the
/// container's type ("sandbox" for the pod's first, "container" for the
/// others) and the id of the pod's sandbox container. containerd's CRI
/// plugin's, then CRI-O's.
const POD_ANNOTATIONS: [(&str, &str); 2] = [("io.kubernetes.cri.container-type", "io.kubernetes.cri.sandbox-id"), ("io.kubernetes.cri-o.ContainerType", "io.kubernetes.cri-o.SandboxID")];

/// The id of the pod sandbox container that the bundle's container joins, if
/// the spec is for one of a pod's containers other than its first.
pub fn sandbox_of(bundle: &Bundle) -> Result<Option<String>, String> {
    let Some(annotations) = bundle.spec.annotations().as_ref() else { return Ok(None) };
    for (kind, sandbox) in POD_ANNOTATIONS {
        if annotations.get(kind).map(String::as_str) == Some("container") {
            return match annotations.get(sandbox) {
                Some(id) => Ok(Some(id.clone())),
                None => Err(format!("the spec marks a pod's container ({kind}) but names no pod sandbox ({sandbox})")),
            };
        }
    }
    Ok(None)
}

/// How the bundle's container joins pod sandbox `id`, which must be a sandbox
/// of ours that runs.
pub fn member(root: &Path, id: &str, bundle: &Bundle) -> Result<PodMember, String> {
    let s = State::load(root, id).map_err(|e| format!("pod sandbox: {e}"))?;
    if s.sandbox.is_some() {
        return Err(format!("pod sandbox {id} is itself a pod's container"));
    }
    if !matches!(s.status, Status::Created | Status::Running) {
        return Err(format!("pod sandbox {id} is {}", s.status));
    }
    let namespaces = bundle.spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default();
    let share_pids = namespaces.iter().any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_some());
    Ok(PodMember { sandbox: State::dir(root, id), share_pids })
}

/// `rvisor boot` for a pod's container: see the module's comment. Returns
/// init's exit code, or why the container could not be added (or served:
/// then it is gone too, with the connection that stood for it).
pub fn run_member(req: Request, pod: &PodMember, preserved: &[OwnedFd], ready: Option<&ReadyPipe>) -> Result<i32, String> {
    let sandbox = pod.sandbox.as_path();
    let boot = req.container.ok_or("a pod's container needs a state directory")?;
    let (gofers, mounts) = Gofers::plan(&req.root, &req.mounts)?;
    let roots = gofers.open_roots().map_err(|e| e.to_string())?;
    let terminal = req.process.terminal;
    let mut fds: Vec<i32> = if terminal { vec![0] } else { vec![0, 1, 2] };
    fds.extend(preserved.iter().map(|f| f.as_raw_fd()));
    fds.extend(roots.iter().map(|(dir, _)| dir.as_raw_fd()));
    let id = boot.state.id.clone();
    let read_only = roots.iter().map(|&(_, ro)| ro).collect();
    let add = ContainerRequest { id: id.clone(), process: req.process, root_read_only: req.root_read_only, root_propagation: req.root_propagation, mounts, roots: read_only, start_now: boot.start_now, share_pids: pod.share_pids, seccomp: req.seccomp };
    let conn = Client::connect(sandbox).map_err(|e| format!("pod sandbox: cannot reach it: {e}"))?;
    conn.send(&Command::AddContainer(add), &fds).map_err(|e| format!("pod sandbox: {e}"))?;
    drop(roots);
    let pid = match conn.reply().map_err(|e| format!("pod sandbox: {e}"))? {
        Reply::Started(pid) => pid,
        Reply::Failed(e) => return Err(e),
        other => return Err(format!("unexpected answer from the sandbox: {other:?}")),
    };
    // Before any other thread starts, so that only the forwarder takes them.
    crate::exec::forward_signals(boot.state_dir.clone(), pid, terminal);
    let mut state = boot.state;
    state.pid = std::process::id() as i32;
    state.pid_start = host_process(state.pid).map(|(_, start)| start);
    state.status = if boot.start_now { Status::Running } else { Status::Created };
    let file = State::open_file(&boot.state_dir).map_err(|e| format!("state: {e}"))?;
    let shared: SharedState = Arc::new(Mutex::new((state, file)));
    crate::container::save_shared(&shared).map_err(|e| format!("state: {e}"))?;
    let in_flight = serve(&boot.state_dir, sandbox.to_path_buf(), id, shared.clone()).map_err(|e| format!("control socket: {e}"))?;
    if let Some(r) = ready {
        r.ready();
    }
    let code = match conn.reply() {
        Ok(Reply::Exited(code)) => code,
        // The sandbox went away with the container in it.
        _ => 128 + libc::SIGKILL,
    };
    shared.lock().unwrap_or_else(|e| e.into_inner()).0.status = Status::Stopped;
    let _ = crate::container::save_shared(&shared);
    // A command that ended the container (a kill) gets its answer first.
    in_flight.wait_idle();
    Ok(code)
}

/// Serves the container's control socket in `dir`: each command goes on to
/// the sandbox's, for container `id`, and every answer comes back. A start
/// that succeeds is recorded in `state`.
fn serve(dir: &Path, sandbox: PathBuf, id: String, state: SharedState) -> std::io::Result<Arc<control::InFlight>> {
    let listener = control::listen(&dir.join(control::SOCKET))?;
    let in_flight = Arc::new(control::InFlight::default());
    let serving = in_flight.clone();
    control::accept_each(listener, move |conn| {
        // In flight once the command came (a caller that says nothing holds
        // nothing up).
        let passed = control::receive::<Command>(conn.as_fd()).and_then(|received| match received {
            Some((command, fds)) => {
                let _serving = serving.enter();
                pass_on(conn.as_fd(), command, fds, &sandbox, &id, &state)
            }
            None => Ok(()),
        });
        if let Err(e) = passed {
            tracing::debug!("control connection: {e}");
        }
    })?;
    Ok(in_flight)
}

/// Passes `command` (and `fds`) from `conn` on to the sandbox, and its answers back
/// until the sandbox has said all. If the caller goes first (an exec whose
/// host process died), the sandbox's connection is closed, as the caller's
/// would have been.
fn pass_on(conn: BorrowedFd<'_>, command: Command, fds: Vec<std::os::fd::OwnedFd>, sandbox: &Path, id: &str, state: &SharedState) -> std::io::Result<()> {
    let start = matches!(command, Command::Start);
    let upstream = Client::connect(sandbox)?;
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    upstream.send(&Command::For { container: id.to_string(), command: Box::new(command) }, &raw)?;
    drop(fds);
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let hangup = PollFlags::from_bits_retain(libc::POLLRDHUP);
        let mut fds = [PollFd::new(upstream.socket(), PollFlags::POLLIN), PollFd::new(conn, hangup)];
        poll(&mut fds, PollTimeout::NONE)?;
        let caller_gone = fds[1].revents().is_some_and(|r| !r.is_empty());
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            let Some((reply, _)) = control::receive::<Reply>(upstream.socket())? else { return Ok(()) };
            if start && matches!(reply, Reply::Done) {
                let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                s.0.status = Status::Running;
                s.0.write_to(&s.1)?;
            }
            control::send(conn, &reply, &[])?;
        } else if caller_gone {
            return Ok(());
        }
    }
}
