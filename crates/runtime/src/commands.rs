//! The OCI runtime's commands, with runc's names, flags and messages, so that
//! containerd's runc shim (with `BinaryName`) can drive rvisor.

use crate::cli::{CreateArgs, GlobalOpts};
use crate::container::{check_id, now_rfc3339, ReadyPipe, State, Status};
use crate::control::{Client, Command, MemoryUsage, ProcessRow, Reply};
use crate::oci::Bundle;
use crate::request::{ContainerBoot, Network, Request};
use nix::sys::signal::Signal;
use std::io::{IoSlice, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

pub type Result<T> = std::result::Result<T, String>;

/// Reports a failed command as runc does: on standard error, and as a JSON
/// line in the --log file when --log-format is json (where containerd's shim
/// looks for the reason).
pub fn failed(global: &GlobalOpts, msg: &str) -> i32 {
    eprintln!("rvisor: {msg}");
    if let (Some(log), "json") = (&global.log, global.log_format.as_str()) {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let line = serde_json::json!({ "level": "error", "msg": msg, "time": now_rfc3339() });
            let _ = writeln!(f, "{line}");
        }
    }
    1
}

/// `rvisor spec`: a default config.json (runc's), running `sh` on a terminal.
pub fn spec(bundle: &Path) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(format!("{}: already exists", path.display()));
    }
    oci_spec::runtime::Spec::default().save(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// `rvisor create` (and `run`): boots the container's sandbox. With `start_now`
/// (`run`) init runs at once; otherwise it waits for `rvisor start`. Returns
/// the sandbox process once it is ready.
pub fn create(global: &GlobalOpts, a: &CreateArgs, start_now: bool) -> Result<std::process::Child> {
    let request = container_request(global, a, start_now)?;
    let dir = request.container.as_ref().map(|c| c.state_dir.clone()).unwrap_or_default();
    let booted = boot_sandbox(&request, a).and_then(|mut child| match create_hooks(global, &a.id) {
        Ok(()) => Ok(child),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    });
    if booted.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    booted
}

/// The bundle's createRuntime, createContainer and prestart hooks, once the
/// sandbox is ready: on the host, as runsc runs them; any failure fails create.
fn create_hooks(global: &GlobalOpts, id: &str) -> Result<()> {
    let s = State::load(&global.root, id)?;
    let Some(hooks) = Bundle::load(&s.bundle)?.spec.hooks().clone() else { return Ok(()) };
    for list in [hooks.create_runtime(), hooks.create_container(), hooks.prestart()] {
        run_hooks(list, &s)?;
    }
    Ok(())
}

/// `rvisor run --detach`: create with init started, then the poststart hooks.
pub fn run_detached(global: &GlobalOpts, a: &CreateArgs) -> Result<()> {
    create(global, a, true)?;
    late_hooks(&State::load(&global.root, &a.id)?, oci_spec::runtime::Hooks::poststart);
    Ok(())
}

/// The poststart or poststop hooks: a failure is reported but changes nothing,
/// as the runtime spec says.
fn late_hooks(s: &State, which: fn(&oci_spec::runtime::Hooks) -> &Option<Vec<oci_spec::runtime::Hook>>) {
    let hooks = Bundle::load(&s.bundle).ok().and_then(|b| b.spec.hooks().clone());
    if let Some(h) = hooks {
        if let Err(e) = run_hooks(which(&h), s) {
            eprintln!("rvisor: warning: {e}");
        }
    }
}

/// Runs each hook with the container's state on its standard input, within
/// its timeout.
fn run_hooks(hooks: &Option<Vec<oci_spec::runtime::Hook>>, s: &State) -> Result<()> {
    let state = serde_json::to_vec(&s.public()).map_err(|e| e.to_string())?;
    for h in hooks.iter().flatten() {
        let path = h.path();
        let fail = |why: String| format!("hook {}: {why}", path.display());
        let mut cmd = std::process::Command::new(path);
        if let Some(args) = h.args() {
            if let Some((first, rest)) = args.split_first() {
                cmd.arg0(first).args(rest);
            }
        }
        if let Some(env) = h.env() {
            cmd.env_clear().envs(env.iter().filter_map(|kv| kv.split_once('=')));
        }
        let mut child = cmd.stdin(std::process::Stdio::piped()).spawn().map_err(|e| fail(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(&state);
        }
        let timeout = h.timeout().filter(|&t| t > 0).map(|t| t as u64 * 1000);
        if let (Some(ms), Ok(fd)) = (timeout, rvisor_platform::hostcall::pidfd_open(child.id() as i32)) {
            let mut fds = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)];
            let waited = nix::poll::poll(&mut fds, nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX));
            if waited == Ok(0) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("timed out after {} s", ms / 1000)));
            }
        }
        let status = child.wait().map_err(|e| fail(e.to_string()))?;
        if !status.success() {
            return Err(fail(status.to_string()));
        }
    }
    Ok(())
}

/// Reads the bundle and makes the container's state directory.
fn container_request(global: &GlobalOpts, a: &CreateArgs, start_now: bool) -> Result<Request> {
    let (preserved, listen_env) = inherited_fds(a.preserve_fds, true)?;
    check_id(&a.id)?;
    let mut bundle = Bundle::load(&a.bundle)?;
    bundle.process.preserved_fds = preserved;
    if !listen_env.is_empty() {
        bundle.process.envp.retain(|e| !e.starts_with(b"LISTEN_FDS=") && !e.starts_with(b"LISTEN_PID="));
        bundle.process.envp.extend(listen_env);
    }
    if bundle.process.terminal && a.console_socket.is_none() && !start_now {
        return Err("the process asks for a terminal: give --console-socket".into());
    }
    let pod_sandbox = crate::pod::sandbox_of(&bundle)?;
    let pod = pod_sandbox.as_deref().map(|id| crate::pod::member(&global.root, id, &bundle)).transpose()?;
    // A pod's container uses its sandbox's network.
    let (network, netns) = if pod_sandbox.is_some() { (Network::None, None) } else { container_network(global, &bundle)? };
    let unprivileged_port_start = unprivileged_port_start(&bundle)?;
    let seccomp = bundle.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()).map(crate::seccomp::compile).transpose()?;
    std::fs::create_dir_all(&global.root).map_err(|e| format!("{}: {e}", global.root.display()))?;
    let dir = State::dir(&global.root, &a.id);
    // Only root may reach the control socket inside: it can exec in the container.
    std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => format!("container with id {} already exists", a.id),
        _ => format!("{}: {e}", dir.display()),
    })?;
    let cgroups = match container_cgroup(&bundle, &a.id) {
        Ok(dirs) => dirs,
        Err(e) => {
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
    };
    let state = State {
        oci_version: bundle.spec.version().clone(),
        id: a.id.clone(),
        pid: 0,
        status: Status::Created,
        bundle: bundle.dir.clone(),
        rootfs: bundle.root.clone(),
        created: now_rfc3339(),
        owner: String::new(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default().into_iter().collect(),
        pid_start: None,
        cgroups: cgroups.clone(),
        sandbox: pod_sandbox,
    };
    Ok(Request {
        platform: global.platform.clone(),
        strace: global.strace,
        debug: global.debug,
        debug_seccomp: global.debug_seccomp,
        systrap_patch: global.systrap_patch,
        log: global.log.clone(),
        hostname: bundle.spec.hostname().clone(),
        container: Some(ContainerBoot { state_dir: dir, start_now, new_session: bundle.process.terminal && a.console_socket.is_some(), state }),
        process: bundle.process,
        root: bundle.root,
        root_read_only: bundle.root_read_only,
        root_propagation: bundle.root_propagation,
        mounts: bundle.mounts,
        cgroups,
        network,
        netns,
        unprivileged_port_start,
        oom_score_adj: bundle.spec.process().as_ref().and_then(|p| p.oom_score_adj()),
        publish: Vec::new(),
        pod,
        seccomp,
    })
}

/// The descriptors a process gets from this one at 3, 4, …: with `listen`
/// (create and run), LISTEN_FDS's when LISTEN_PID names this process (systemd's
/// socket activation; the process then sees LISTEN_FDS=n and LISTEN_PID=1), then
/// `preserve` more. Each is checked open now, before this process opens anything
/// that could take one of their numbers. Returns how many, and the environment
/// the process gets for them.
pub(crate) fn inherited_fds(preserve: u32, listen: bool) -> Result<(u32, Vec<Vec<u8>>)> {
    let var = |name| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    let listening = match (listen, var("LISTEN_PID"), var("LISTEN_FDS")) {
        (true, Some(pid), Some(n)) if pid == std::process::id() && n > 0 => n,
        _ => 0,
    };
    let env = if listening > 0 { vec![format!("LISTEN_FDS={listening}").into_bytes(), b"LISTEN_PID=1".to_vec()] } else { Vec::new() };
    let count = listening.checked_add(preserve).filter(|&n| n <= 65536).ok_or("--preserve-fds: too many descriptors")?;
    for fd in 3..3 + count as i32 {
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).map_err(|_| format!("--preserve-fds: descriptor {fd} is not open"))?;
    }
    Ok((count, env))
}

/// The spec's net.ipv4.ip_unprivileged_port_start (containerd sets it to 0
/// with `enable_unprivileged_ports`); the sandbox's other sysctls are its own.
fn unprivileged_port_start(bundle: &Bundle) -> Result<Option<u16>> {
    let sysctls = bundle.spec.linux().as_ref().and_then(|l| l.sysctl().as_ref());
    sysctls
        .and_then(|s| s.get("net.ipv4.ip_unprivileged_port_start"))
        .map(|v| v.trim().parse().map_err(|_| format!("sysctl net.ipv4.ip_unprivileged_port_start: {v:?} is not a port")))
        .transpose()
}

/// The container's network: the --network flag, else what its spec asks, as
/// runsc gives it: a network namespace it names (a pod's) is joined and its
/// interfaces taken by the sandbox's own stack; a new one has only loopback
/// (the sandbox's own); without one the container shares the host's network.
fn container_network(global: &GlobalOpts, bundle: &Bundle) -> Result<(Network, Option<std::path::PathBuf>)> {
    let ns = bundle.spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()).and_then(|list| list.iter().find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network));
    let path = ns.and_then(|n| n.path().clone());
    Ok(match global.network.as_deref() {
        Some("none") => (Network::None, None),
        Some("host") => (Network::Host, path),
        Some(_) => match path {
            Some(p) => (Network::Sandbox, Some(p)),
            // In the host's namespace, it would take the host's interfaces.
            None => return Err("--network=sandbox: the spec names no network namespace (with a path) to take the interfaces of".into()),
        },
        None => match (ns, path) {
            (Some(_), Some(p)) => (Network::Sandbox, Some(p)),
            (Some(_), None) => (Network::None, None),
            (None, _) => (Network::Host, None),
        },
    })
}

/// The container's cgroup: the spec's cgroupsPath, else /rvisor/ID. Limits
/// that cannot be applied fail create; without limits, a cgroup that cannot
/// be made is only a warning (the container cannot be paused).
fn container_cgroup(bundle: &Bundle, id: &str) -> Result<Vec<std::path::PathBuf>> {
    let linux = bundle.spec.linux().as_ref();
    let resources = linux.and_then(|l| l.resources().as_ref());
    let path = linux.and_then(|l| l.cgroups_path().as_ref()).map_or_else(|| format!("/rvisor/{id}"), |p| p.to_string_lossy().into_owned());
    let limits = resources.is_some_and(|r| r.memory().is_some() || r.cpu().is_some() || r.pids().is_some());
    match crate::cgroup::create(&path, resources) {
        Ok(dirs) => Ok(dirs),
        Err(e) if !limits => {
            eprintln!("rvisor: warning: no cgroup for the container: {e}");
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

fn boot_sandbox(request: &Request, a: &CreateArgs) -> Result<std::process::Child> {
    let (r, w) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    nix::fcntl::fcntl(r.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).map_err(|e| format!("pipe: {e}"))?;
    let (mut cmd, request_fd) = crate::sandbox::boot_command(request, Some(&w)).map_err(|e| format!("cannot start the sandbox: {e}"))?;
    if let (true, Some(socket)) = (request.process.terminal, &a.console_socket) {
        let replica = send_console(socket)?;
        let dup = |f: &OwnedFd| f.try_clone().map_err(|e| format!("terminal: {e}"));
        cmd.stdin(dup(&replica)?).stdout(dup(&replica)?).stderr(replica);
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start the sandbox: {e}"))?;
    drop((w, request_fd));
    if let Err(e) = ReadyPipe::wait(r) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    if let Some(p) = &a.pid_file {
        write_pid_file(p, child.id())?;
    }
    Ok(child)
}

/// Writes a pid file whole (a rename), as runc does.
pub(crate) fn write_pid_file(path: &Path, pid: u32) -> Result<()> {
    let tmp = path.with_extension("rvisor-tmp");
    std::fs::write(&tmp, pid.to_string()).and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| format!("pid file {}: {e}", path.display()))
}

/// Makes a host pty, sends its master to the console socket (as runc does:
/// one `SCM_RIGHTS` descriptor), and returns the replica.
pub(crate) fn send_console(socket: &Path) -> Result<OwnedFd> {
    let fail = |e: &dyn std::fmt::Display| format!("console socket {}: {e}", socket.display());
    let pty = nix::pty::openpty(None, None).map_err(|e| fail(&e))?;
    let conn = std::os::unix::net::UnixStream::connect(socket).map_err(|e| fail(&e))?;
    let fds = [pty.master.as_raw_fd()];
    nix::sys::socket::sendmsg::<()>(conn.as_raw_fd(), &[IoSlice::new(b"/dev/ptmx")], &[nix::sys::socket::ControlMessage::ScmRights(&fds)], nix::sys::socket::MsgFlags::empty(), None)
        .map_err(|e| fail(&e))?;
    Ok(pty.slave)
}

/// `rvisor run` without --detach: the caller becomes the sandbox (same pid), as
/// with `rvisor do`.
pub fn run_foreground(global: &GlobalOpts, a: &CreateArgs) -> Result<()> {
    if a.console_socket.is_some() {
        return Err("--console-socket needs --detach".into());
    }
    if Bundle::load(&a.bundle)?.spec.hooks().is_some() {
        return Err("the bundle has hooks, which run beside the sandbox: use run --detach, or create and start".into());
    }
    let request = container_request(global, a, true)?;
    if request.process.terminal && !nix::unistd::isatty(std::io::stdin().as_raw_fd()).unwrap_or(false) {
        let _ = std::fs::remove_dir_all(State::dir(&global.root, &a.id));
        return Err("the process asks for a terminal, and standard input is not one".into());
    }
    let err = match crate::sandbox::boot_command(&request, None) {
        Ok((mut c, _request)) => c.exec(),
        Err(e) => e,
    };
    let _ = std::fs::remove_dir_all(State::dir(&global.root, &a.id));
    Err(format!("cannot start the sandbox: {err}"))
}

pub fn start(global: &GlobalOpts, id: &str) -> Result<()> {
    let s = State::load(&global.root, id)?;
    match s.status {
        Status::Created => {
            expect_done(call(&global.root, id, &Command::Start)?)?;
            late_hooks(&State { status: Status::Running, ..s }, oci_spec::runtime::Hooks::poststart);
            Ok(())
        }
        Status::Running | Status::Paused => Err(format!("container {id} is already running")),
        Status::Stopped => Err("cannot start a container that has stopped".into()),
    }
}

fn call(root: &Path, id: &str, cmd: &Command) -> Result<Reply> {
    let client = Client::connect(&State::dir(root, id)).map_err(|e| format!("container {id}: cannot reach its sandbox: {e}"))?;
    client.call(cmd).map_err(|e| format!("container {id}: {e}"))
}

fn expect_done(r: Reply) -> Result<()> {
    match r {
        Reply::Done => Ok(()),
        Reply::Failed(e) => Err(e),
        other => Err(format!("unexpected answer from the sandbox: {other:?}")),
    }
}

pub fn state(global: &GlobalOpts, id: &str) -> Result<()> {
    let s = State::load(&global.root, id)?;
    println!("{}", serde_json::to_string_pretty(&s.public()).map_err(|e| e.to_string())?);
    Ok(())
}

/// A signal as kill(1) takes it: a number, or a name with or without "SIG".
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) { Ok(n) } else { Err(format!("invalid signal {s:?}")) };
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<Signal>().map(|sig| sig as i32).map_err(|_| format!("invalid signal {s:?}"))
}

pub fn kill(global: &GlobalOpts, id: &str, signal: &str, all: bool) -> Result<()> {
    let signo = parse_signal(signal)?;
    let s = State::load(&global.root, id)?;
    if s.status == Status::Stopped {
        return Err("container not running".into());
    }
    // SIGKILL ends the sandbox itself (and so every process in it) even if it
    // cannot answer; so does any signal to a container whose init never ran.
    if signo == libc::SIGKILL || s.status == Status::Created {
        return kill_sandbox(&s);
    }
    if s.status == Status::Paused {
        return Err(format!("container {id} is paused: resume it first"));
    }
    expect_done(call(&global.root, id, &Command::Signal { signo, all })?)
}

/// SIGKILLs the sandbox process and waits until it is gone.
fn kill_sandbox(s: &State) -> Result<()> {
    let pidfd = rvisor_platform::hostcall::pidfd_open(s.pid);
    if !s.sandbox_alive() {
        return Ok(());
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(s.pid), Signal::SIGKILL).map_err(|e| format!("kill {}: {e}", s.pid))?;
    // A frozen process dies only once thawed.
    if s.status == Status::Paused {
        crate::cgroup::freeze(&s.cgroups, false)?;
    }
    if let Ok(fd) = pidfd {
        let mut fds = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16));
    }
    Ok(())
}

pub fn delete(global: &GlobalOpts, id: &str, force: bool) -> Result<()> {
    let s = match State::load(&global.root, id) {
        Ok(s) => s,
        Err(_) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    match s.status {
        Status::Running | Status::Paused if !force => return Err(format!("cannot delete container {id} that is not stopped: {}", s.status)),
        Status::Running | Status::Paused | Status::Created => kill_sandbox(&s)?,
        Status::Stopped => {}
    }
    std::fs::remove_dir_all(State::dir(&global.root, id)).map_err(|e| format!("container {id}: {e}"))?;
    crate::cgroup::remove(&s.cgroups);
    late_hooks(&State { status: Status::Stopped, ..s }, oci_spec::runtime::Hooks::poststop);
    Ok(())
}

pub fn list(global: &GlobalOpts, format: &str, quiet: bool) -> Result<()> {
    let all = crate::container::all(&global.root);
    if quiet {
        all.iter().for_each(|s| println!("{}", s.id));
    } else if format == "json" {
        let public: Vec<State> = all.iter().map(State::public).collect();
        println!("{}", serde_json::to_string(&public).map_err(|e| e.to_string())?);
    } else {
        println!("{:<12} {:<8} {:<8} {:<40} {:<30} OWNER", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
        for s in all.iter().map(State::public) {
            println!("{:<12} {:<8} {:<8} {:<40} {:<30} {}", s.id, s.pid, s.status, s.bundle.display(), s.created, s.owner);
        }
    }
    Ok(())
}

pub fn ps(global: &GlobalOpts, id: &str, format: &str) -> Result<()> {
    answering(global, id)?;
    let rows: Vec<ProcessRow> = match call(&global.root, id, &Command::Ps)? {
        Reply::Processes(rows) => rows,
        Reply::Failed(e) => return Err(e),
        other => return Err(format!("unexpected answer from the sandbox: {other:?}")),
    };
    if format == "json" {
        let pids: Vec<i32> = rows.iter().map(|r| r.pid).collect();
        println!("{}", serde_json::to_string(&pids).map_err(|e| e.to_string())?);
        return Ok(());
    }
    println!("{:>5} {:>6} {:>6} {:>4} {:>3} {:>8} CMD", "UID", "PID", "PPID", "STAT", "THR", "TIME");
    for r in rows {
        let secs = (r.user_ns + r.sys_ns) / 1_000_000_000;
        println!("{:>5} {:>6} {:>6} {:>4} {:>3} {:>2}:{:02}:{:02} {}", r.uid, r.pid, r.ppid, r.state, r.threads, secs / 3600, secs / 60 % 60, secs % 60, r.cmd);
    }
    Ok(())
}

/// A container that can answer: running, or created (its sandbox serves already).
fn answering(global: &GlobalOpts, id: &str) -> Result<()> {
    match State::load(&global.root, id)?.status {
        Status::Stopped => Err(format!("container {id} is not running")),
        Status::Paused => Err(format!("container {id} is paused: resume it first")),
        _ => Ok(()),
    }
}

fn usage_of(global: &GlobalOpts, id: &str) -> Result<MemoryUsage> {
    match call(&global.root, id, &Command::Usage)? {
        Reply::Usage(u) => Ok(u),
        Reply::Failed(e) => Err(e),
        other => Err(format!("unexpected answer from the sandbox: {other:?}")),
    }
}

/// `rvisor usage`: the sandbox's memory, as its memory file accounts for it.
pub fn usage(global: &GlobalOpts, id: &str) -> Result<()> {
    answering(global, id)?;
    println!("{}", serde_json::to_string(&usage_of(global, id)?).map_err(|e| e.to_string())?);
    Ok(())
}

/// One `rvisor events` stats event, in runc's shape (libcontainer's types.Stats):
/// CPU and memory of the container's own processes, its thread count, and the
/// sandbox's memory by kind under `memory.raw`.
fn stats_event(global: &GlobalOpts, id: &str) -> Result<(serde_json::Value, u64)> {
    let rows = match call(&global.root, id, &Command::Ps)? {
        Reply::Processes(rows) => rows,
        Reply::Failed(e) => return Err(e),
        other => return Err(format!("unexpected answer from the sandbox: {other:?}")),
    };
    let u = usage_of(global, id)?;
    let (user, kernel) = (rows.iter().map(|r| r.user_ns).sum::<u64>(), rows.iter().map(|r| r.sys_ns).sum::<u64>());
    let rss: u64 = rows.iter().map(|r| r.rss).sum();
    let threads: usize = rows.iter().map(|r| r.threads).sum();
    let event = serde_json::json!({
        "type": "stats",
        "id": id,
        "data": {
            "cpu": { "usage": { "total": user + kernel, "user": user, "kernel": kernel } },
            "memory": {
                "usage": { "usage": rss, "limit": 0, "failcnt": 0 },
                "raw": {
                    "rss": rss,
                    "sandbox_anonymous": u.anonymous,
                    "sandbox_tmpfs": u.tmpfs,
                    "sandbox_page_cache": u.page_cache,
                    "sandbox_system": u.system,
                    "sandbox_resident": u.resident,
                },
            },
            "pids": { "current": threads },
        },
    });
    Ok((event, u.oom_kills))
}

/// `rvisor events`: a stats event now (`--stats`), or every `interval` until the
/// container stops, each after an `oom` event when the sandbox's OOM killer killed
/// a process since the last one (as runc reports its cgroup's OOM kills).
pub fn events(global: &GlobalOpts, id: &str, once: bool, interval: &str) -> Result<()> {
    let every = parse_go_duration(interval).ok_or_else(|| format!("--interval {interval:?}: not a duration (like 5s, 500ms, 1m30s)"))?;
    if every.is_zero() {
        return Err("--interval must be greater than 0".into());
    }
    answering(global, id)?;
    let mut oom_kills = None;
    loop {
        match stats_event(global, id) {
            Ok((event, kills)) => {
                if oom_kills.is_some_and(|seen| kills > seen) {
                    println!("{}", serde_json::json!({ "type": "oom", "id": id }));
                }
                oom_kills = Some(kills);
                println!("{event}");
            }
            // The container ended between two events: that ends the stream.
            Err(_) if !once && State::load(&global.root, id).map_or(true, |s| s.status == Status::Stopped) => return Ok(()),
            Err(e) => return Err(e),
        }
        if once {
            return Ok(());
        }
        std::thread::sleep(every);
    }
}

/// A duration as Go's time.ParseDuration reads one: a sequence of decimal numbers,
/// each with a unit (ns, us, µs, ms, s, m, h).
fn parse_go_duration(text: &str) -> Option<std::time::Duration> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(std::time::Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).filter(|&n| n > 0)?;
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"].into_iter().filter(|u| rest.starts_with(u)).max_by_key(|u| u.len())?;
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            _ => 3600.0,
        };
        total += value * scale;
        rest = &rest[unit.len()..];
    }
    std::time::Duration::try_from_secs_f64(total).ok()
}

/// `rvisor pause` and `resume`: freeze or thaw the whole sandbox (its cgroup),
/// as runc does.
pub fn pause(global: &GlobalOpts, id: &str, pausing: bool) -> Result<()> {
    let mut s = State::load(&global.root, id)?;
    if let Some(sandbox) = &s.sandbox {
        return Err(format!("container {id} runs in the sandbox of pod sandbox {sandbox}: pause that"));
    }
    let (from, to) = if pausing { (Status::Running, Status::Paused) } else { (Status::Paused, Status::Running) };
    if s.status != from {
        return Err(format!("container {id} is {}, not {from}", s.status));
    }
    crate::cgroup::freeze(&s.cgroups, pausing)?;
    s.status = to;
    s.save(&State::dir(&global.root, id)).map_err(|e| format!("container {id}: {e}"))
}

/// `rvisor update`: new cgroup limits, from --resources (a JSON
/// LinuxResources, "-" for standard input, as containerd's shim gives them)
/// and the flags.
pub fn update(global: &GlobalOpts, a: &crate::cli::UpdateArgs) -> Result<()> {
    let s = State::load(&global.root, &a.id)?;
    if s.status == Status::Stopped {
        return Err("container not running".into());
    }
    let mut r: oci_spec::runtime::LinuxResources = match a.resources.as_deref() {
        None => Default::default(),
        Some(p) => {
            let text = if p == Path::new("-") { std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string())? } else { std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))? };
            serde_json::from_str(&text).map_err(|e| format!("--resources: {e}"))?
        }
    };
    let mut value = serde_json::to_value(&r).map_err(|e| e.to_string())?;
    let mut set = |section: &str, key: &str, v: Option<i64>| {
        if let Some(v) = v {
            value[section][key] = serde_json::json!(v);
        }
    };
    set("memory", "limit", a.memory);
    set("cpu", "quota", a.cpu_quota);
    set("cpu", "period", a.cpu_period);
    set("cpu", "shares", a.cpu_shares);
    set("pids", "limit", a.pids_limit);
    r = serde_json::from_value(value).map_err(|e| format!("resources: {e}"))?;
    if s.cgroups.is_empty() {
        return Err(format!("container {} has no cgroup", a.id));
    }
    crate::cgroup::set_limits(&s.cgroups, Some(&r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("TERM"), Ok(15));
        assert_eq!(parse_signal("sigusr1"), Ok(10));
        assert_eq!(parse_signal("SIGKILL"), Ok(9));
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn durations_read_as_go_writes_them() {
        use std::time::Duration;
        assert_eq!(parse_go_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("10us"), Some(Duration::from_micros(10)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "5", "s", "5x", "-1s", "1s5"] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }
}
