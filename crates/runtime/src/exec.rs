//! `rvisor exec`: a new process in a running container, started through the
//! sandbox's control socket with this process's standard streams (or a
//! terminal); `--detach` leaves `rvisor exec-wait` behind to stand for it.

use crate::cli::{ExecArgs, GlobalOpts};
use crate::commands::{send_console, write_pid_file, Result};
use crate::container::{ReadyPipe, State, Status};
use crate::control::{Client, Command, Reply};
use crate::oci::{process_of, Bundle};
use crate::request::Process;
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

/// What `rvisor exec --detach` hands the process that stands for the exec'd one.
#[derive(Serialize, Deserialize)]
struct ExecRequest {
    root: std::path::PathBuf,
    id: String,
    process: Process,
}

/// `rvisor exec`: runs a process in the container. Returns the exit code
/// `rvisor exec` should end with: the process's (128+N for signal N), or 0
/// with --detach once it runs.
pub fn exec(global: &GlobalOpts, a: &ExecArgs) -> Result<i32> {
    let (preserved, _) = crate::commands::inherited_fds(a.preserve_fds, false)?;
    let s = State::load(&global.root, &a.id)?;
    if s.status != Status::Running {
        return Err(format!("cannot exec in a container that is {}", s.status));
    }
    let mut process = exec_process(&s, a)?;
    process.preserved_fds = preserved;
    let terminal = match (process.terminal, &a.console_socket) {
        (false, _) => None,
        (true, Some(socket)) => Some(send_console(socket)?),
        (true, None) if nix::unistd::isatty(std::io::stdin().as_raw_fd()).unwrap_or(false) => None,
        (true, None) => return Err("--tty: give --console-socket, or run on a terminal".into()),
    };
    let req = ExecRequest { root: global.root.clone(), id: a.id.clone(), process };
    if !a.detach {
        return run_exec(req, terminal, None);
    }
    // The process that stands for the exec'd one on the host: it holds the
    // connection and ends with the exec'd process's status.
    let fd = crate::request::to_memfd(&req).map_err(|e| format!("exec: {e}"))?;
    let (r, w) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    nix::fcntl::fcntl(r.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).map_err(|e| format!("pipe: {e}"))?;
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()));
    cmd.arg0("rvisor").args(["exec-wait", "--request-fd", &fd.as_raw_fd().to_string(), "--ready-fd", &w.as_raw_fd().to_string()]);
    if let Some(t) = terminal {
        let dup = |f: &OwnedFd| f.try_clone().map_err(|e| format!("terminal: {e}"));
        cmd.stdin(dup(&t)?).stdout(dup(&t)?).stderr(t);
    }
    let child = cmd.spawn().map_err(|e| format!("exec: {e}"))?;
    drop((w, fd));
    ReadyPipe::wait(r)?;
    if let Some(p) = &a.pid_file {
        write_pid_file(p, child.id())?;
    }
    Ok(0)
}

/// `rvisor exec-wait` (internal): the detached exec's stand-in.
pub fn exec_wait(request_fd: i32, ready_fd: i32) -> i32 {
    let ready = ReadyPipe::from_raw(ready_fd);
    let req: ExecRequest = match crate::request::from_fd(request_fd) {
        Ok(r) => r,
        Err(e) => {
            ready.fail(&format!("exec: bad request: {e}"));
            return 1;
        }
    };
    let terminal = if req.process.terminal {
        // The console socket's pty is ours to control: its resizes come to us
        // as SIGWINCH, to pass on.
        let _ = nix::unistd::setsid();
        let _ = rvisor_platform::hostcall::set_controlling_terminal(std::io::stdin().as_fd());
        std::io::stdin().as_fd().try_clone_to_owned().ok()
    } else {
        None
    };
    match run_exec(req, terminal, Some(&ready)) {
        Ok(code) => code,
        Err(e) => {
            ready.fail(&e);
            1
        }
    }
}

/// Asks the sandbox to start the process with our standard streams (or the
/// terminal) and waits for it to end.
fn run_exec(req: ExecRequest, terminal: Option<OwnedFd>, ready: Option<&ReadyPipe>) -> Result<i32> {
    let client = Client::connect(&State::dir(&req.root, &req.id)).map_err(|e| format!("container {}: cannot reach its sandbox: {e}", req.id))?;
    let own_terminal = req.process.terminal && terminal.is_none();
    let saved = if own_terminal { nix::sys::termios::tcgetattr(std::io::stdin()).ok() } else { None };
    let mut fds: Vec<i32> = match (&terminal, req.process.terminal) {
        (Some(t), _) => vec![t.as_raw_fd()],
        (None, true) => vec![0],
        (None, false) => vec![0, 1, 2],
    };
    fds.extend((0..req.process.preserved_fds as i32).map(|i| 3 + i));
    let with_terminal = req.process.terminal;
    client.send(&Command::Exec(req.process), &fds).map_err(|e| format!("exec: {e}"))?;
    drop(terminal);
    let result = (|| {
        match client.reply().map_err(|e| format!("exec: {e}"))? {
            Reply::Started(pid) => forward_signals(State::dir(&req.root, &req.id), pid, with_terminal),
            Reply::Failed(e) => return Err(e),
            other => return Err(format!("unexpected answer from the sandbox: {other:?}")),
        }
        if let Some(r) = ready {
            r.ready();
        }
        match client.reply() {
            Ok(Reply::Exited(code)) => Ok(code),
            Ok(other) => Err(format!("unexpected answer from the sandbox: {other:?}")),
            // The sandbox went away with the process in it.
            Err(_) => Ok(128 + libc::SIGKILL),
        }
    })();
    if let Some(t) = saved {
        let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSADRAIN, &t);
    }
    result
}

/// Signals this process gets (`ctr task kill --exec-id` sends them to the
/// pid file's process) go on to the process `pid` in the sandbox, through the
/// control socket of the container whose state directory is `dir`. A SIGKILL
/// cannot be caught: the sandbox kills the process when our connection
/// closes. With a terminal, its resizes (SIGWINCH) resize the process's.
pub(crate) fn forward_signals(dir: std::path::PathBuf, pid: i32, terminal: bool) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGHUP, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTERM, Signal::SIGUSR1, Signal::SIGUSR2, Signal::SIGCONT, Signal::SIGWINCH] {
        set.add(s);
    }
    // Blocked before the forwarder starts, so that only it takes them.
    if set.thread_block().is_err() {
        return;
    }
    let _ = std::thread::Builder::new().name("signal-forwarder".into()).spawn(move || {
        while let Ok(sig) = set.wait() {
            let cmd = match sig {
                Signal::SIGWINCH if terminal => match rvisor_platform::hostcall::window_size(std::io::stdin().as_fd()) {
                    Ok(winsize) => Command::Resize { pid, winsize },
                    Err(_) => continue,
                },
                Signal::SIGWINCH => continue,
                _ => Command::SignalProcess { pid, signo: sig as i32 },
            };
            if let Err(e) = Client::connect(&dir).and_then(|c| c.call(&cmd)) {
                eprintln!("rvisor: cannot pass on {sig}: {e}");
            }
        }
    });
}

/// The process `rvisor exec` asks for: --process, or COMMAND with the
/// container's own environment, directory and user unless flags say otherwise.
fn exec_process(s: &State, a: &ExecArgs) -> Result<Process> {
    if let Some(path) = &a.process {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let p: oci_spec::runtime::Process = serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        return process_of(&p);
    }
    if a.command.is_empty() {
        return Err("exec: give COMMAND or --process".into());
    }
    let bundle = Bundle::load(&s.bundle)?;
    let mut p = bundle.process;
    p.path = a.command[0].as_bytes().to_vec();
    p.argv = a.command.iter().map(|c| c.as_bytes().to_vec()).collect();
    p.terminal = a.tty;
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or(kv);
        p.envp.retain(|e| e.split(|&b| b == b'=').next() != Some(key.as_bytes()));
        p.envp.push(kv.as_bytes().to_vec());
    }
    if let Some(cwd) = &a.cwd {
        p.cwd = Path::new(cwd).as_os_str().as_bytes().to_vec();
    }
    if let Some(user) = &a.user {
        let mut parts = user.splitn(2, ':');
        let bad = || format!("--user {user}: want UID[:GID]");
        p.uid = parts.next().and_then(|u| u.parse().ok()).ok_or_else(bad)?;
        p.gid = match parts.next() {
            Some(g) => g.parse().map_err(|_| bad())?,
            None => p.gid,
        };
    }
    Ok(p)
}
