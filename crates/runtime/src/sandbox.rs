//! `rvisor do`: boot a sandbox around one program and wait for it.

use crate::cli::{DoArgs, GlobalOpts};
use crate::request::{MountKind, MountRequest, Network, Process, Request};
use crate::gofers::{mount_specs, Gofers};
use rvisor_kernel::{ExecError, Kernel, KernelConfig, MountFlags, Nic, Stdio};
use rvisor_memory::MemoryFile;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

/// Shell conventions: 127 when the program cannot be found, 126 when it cannot run.
const EXIT_NOT_FOUND: i32 = 127;
const EXIT_CANNOT_RUN: i32 = 126;
/// rvisor's own failure (not the program's).
const EXIT_INTERNAL: i32 = 125;

fn fail(code: i32, msg: impl std::fmt::Display) -> i32 {
    eprintln!("rvisor: {msg}");
    code
}

/// Opens the log destination: the --log file, or standard error.
fn log_writer(global: &GlobalOpts) -> std::io::Result<Box<dyn Write + Send>> {
    Ok(match &global.log {
        Some(p) => Box::new(std::fs::OpenOptions::new().create(true).append(true).open(p)?),
        None => Box::new(std::io::stderr()),
    })
}

fn init_logging(global: &GlobalOpts) -> std::io::Result<()> {
    let level = if global.debug { "debug" } else if global.log.is_some() { "info" } else { "error" };
    let writer = std::sync::Mutex::new(log_writer(global)?);
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("RVISOR_LOG").unwrap_or_else(|_| EnvFilter::new(level)))
        .with_writer(writer)
        // Colour only for a person reading a terminal, not in a log file or a pipe.
        .with_ansi(global.log.is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    Ok(())
}

/// Finds `name` the way a shell does: as a path if it has a slash, else on $PATH.
fn resolve(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The caller's standard streams, duplicated so the sandbox owns its copies.
fn stdio() -> std::io::Result<[OwnedFd; 3]> {
    Ok([
        std::io::stdin().as_fd().try_clone_to_owned()?,
        std::io::stdout().as_fd().try_clone_to_owned()?,
        std::io::stderr().as_fd().try_clone_to_owned()?,
    ])
}

pub fn run_do(global: &GlobalOpts, args: DoArgs) -> i32 {
    if args.tty && !nix::unistd::isatty(std::io::stdin().as_raw_fd()).unwrap_or(false) {
        return fail(EXIT_INTERNAL, "-t: standard input is not a terminal");
    }
    let name = &args.argv[0];
    let Some(path) = resolve(name) else {
        return fail(EXIT_NOT_FOUND, format!("{name}: command not found"));
    };
    let mounts = match volumes(&args.volumes) {
        Ok(v) => v,
        Err(e) => return fail(EXIT_INTERNAL, e),
    };
    // A program in a volume has its sandbox path, which the host may lack: the
    // sandbox says if it is missing there.
    let in_volume = mounts.iter().any(|m| matches!(m.kind, MountKind::Bind { .. }) && path.starts_with(&m.target));
    if let (false, Err(e)) = (in_volume, std::fs::metadata(&path)) {
        let code = if e.kind() == std::io::ErrorKind::NotFound { EXIT_NOT_FOUND } else { EXIT_CANNOT_RUN };
        return fail(code, format!("{}: {}", path.display(), describe(&e)));
    }
    let (uid, gid) = (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
    let network = match (global.network.as_deref(), &args.netns) {
        (Some("host"), _) => Network::Host,
        (Some("none"), _) => Network::None,
        (_, Some(_)) => Network::Sandbox,
        (Some(_), None) => return fail(EXIT_INTERNAL, "--network=sandbox needs --netns PATH: in this network namespace it would take the host's own interfaces"),
        (None, None) => Network::None,
    };
    if network == Network::Host && !args.publish.is_empty() {
        return fail(EXIT_INTERNAL, "-p: with --network=host the sandbox already shares the host's ports: its servers listen on the host itself");
    }
    let publish = match args.publish.iter().map(|p| crate::publish::parse(p)).collect::<Result<Vec<_>, _>>() {
        Ok(p) => p,
        Err(e) => return fail(EXIT_INTERNAL, e),
    };
    let request = Request {
        platform: global.platform.clone(),
        strace: global.strace,
        debug: global.debug,
        debug_seccomp: global.debug_seccomp,
        systrap_patch: global.systrap_patch,
        log: global.log.clone(),
        process: Process {
            path: path.as_os_str().as_bytes().to_vec(),
            argv: args.argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
            envp: std::env::vars_os().map(|(k, v)| [k.as_bytes(), b"=", v.as_bytes()].concat()).collect(),
            cwd: std::env::current_dir().map(|d| d.as_os_str().as_bytes().to_vec()).unwrap_or_else(|_| b"/".to_vec()),
            uid,
            gid,
            groups: Vec::new(),
            terminal: args.tty,
            caps: None,
            rlimits: inherited_rlimits(),
            no_new_privs: false,
            preserved_fds: 0,
        },
        root: "/".into(),
        mounts,
        network,
        netns: args.netns,
        publish,
        ..Request::default()
    };
    // Become the sandbox: same pid (the caller waits on us), nothing of the
    // program's in our command line or environment.
    let err = boot_command(&request, None).map_or_else(|e| e, |(mut c, _request)| c.exec());
    fail(EXIT_INTERNAL, format!("cannot start the sandbox: {err}"))
}

/// The sandbox's /proc/sys/fs/nr_open: no RLIMIT_NOFILE goes past it.
const NR_OPEN: u64 = 1 << 20;

/// The caller's RLIMIT_FSIZE and RLIMIT_NOFILE (within NR_OPEN), which the
/// program starts with, as runsc's boot takes the host's for its defaults; the
/// others are Linux's defaults.
fn inherited_rlimits() -> Vec<(usize, u64, u64)> {
    use nix::sys::resource::{getrlimit, Resource};
    use rvisor_kernel::task::{RLIMIT_FSIZE, RLIMIT_NOFILE};
    [(Resource::RLIMIT_FSIZE, RLIMIT_FSIZE, u64::MAX), (Resource::RLIMIT_NOFILE, RLIMIT_NOFILE, NR_OPEN)]
        .into_iter()
        .filter_map(|(host, resource, cap)| {
            let (cur, max) = getrlimit(host).ok()?;
            Some((resource, cur.min(cap), max.min(cap)))
        })
        .collect()
}

/// What `rvisor do` mounts: procfs, devfs with its shm and pts, sysfs with
/// cgroup2 on its fs/cgroup, a tmpfs on /tmp, then the `-v HOST:SANDBOX[:ro]` flags' bind mounts.
fn volumes(flags: &[String]) -> Result<Vec<MountRequest>, String> {
    let m = |target: &str, kind, flags: u32| MountRequest { target: target.into(), kind, flags, propagation: Vec::new() };
    let (nosuid, nodev, noexec) = (MountFlags::NOSUID, MountFlags::NODEV, MountFlags::NOEXEC);
    // With Docker's flags: nothing runs from /proc, /sys or /dev/shm.
    let mut mounts = vec![
        m("/proc", MountKind::Proc, nosuid | nodev | noexec),
        m("/dev", MountKind::Devfs, nosuid),
        m("/dev/shm", MountKind::Tmpfs { mode: 0o1777, size: None }, nosuid | nodev | noexec),
        m("/dev/pts", MountKind::Devpts, nosuid | noexec),
        m("/sys", MountKind::Sysfs, nosuid | nodev | noexec),
        m("/sys/fs/cgroup", MountKind::Cgroup, nosuid | nodev | noexec),
        m("/tmp", MountKind::Tmpfs { mode: 0o1777, size: None }, 0),
    ];
    for v in flags {
        let parts: Vec<&str> = v.split(':').collect();
        let (host, target, read_only) = match parts[..] {
            [h, t] => (h, t, false),
            [h, t, "ro"] => (h, t, true),
            [h, t, "rw"] => (h, t, false),
            _ => return Err(format!("-v {v}: want HOST:SANDBOX or HOST:SANDBOX:ro")),
        };
        if !target.starts_with('/') {
            return Err(format!("-v {v}: {target} is not an absolute path"));
        }
        let source = std::fs::canonicalize(host).map_err(|e| format!("-v {v}: {host}: {}", describe(&e)))?;
        let flags = if read_only { MountFlags::RDONLY } else { 0 };
        mounts.push(MountRequest { target: target.to_string(), kind: MountKind::Bind { source }, flags, propagation: Vec::new() });
    }
    Ok(mounts)
}

/// The command that boots a sandbox from `request` (`rvisor boot`), with an
/// empty environment; `ready` is the pipe it reports readiness on.
/// Returns the request's memfd too: the caller keeps it open until the
/// command is spawned or exec'd, which hands it on.
pub fn boot_command(request: &Request, ready: Option<&OwnedFd>) -> std::io::Result<(std::process::Command, OwnedFd)> {
    let fd = crate::request::to_memfd(request)?;
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()));
    cmd.arg0("rvisor").args(["boot", "--request-fd", &fd.as_raw_fd().to_string()]).env_clear();
    if let Some(r) = ready {
        cmd.args(["--ready-fd", &r.as_raw_fd().to_string()]);
    }
    Ok((cmd, fd))
}

/// A shell-like message for an I/O error ("No such file or directory").
fn describe(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

/// `rvisor boot`: the sandbox process proper. A container's sandbox reports on
/// `ready_fd` once init is loaded and its control socket listens ("ok"), or why
/// it could not boot.
pub fn run_boot(request_fd: i32, ready_fd: Option<i32>) -> i32 {
    let ready = ready_fd.map(crate::container::ReadyPipe::from_raw);
    let req: Request = match crate::request::from_fd(request_fd) {
        Ok(r) => r,
        Err(e) => return boot_failed(ready, EXIT_INTERNAL, format!("bad request: {e}")),
    };
    // Taken before this process opens anything: their numbers are 3, 4, ….
    let preserved = match (0..req.process.preserved_fds as i32).map(|i| rvisor_platform::hostcall::take_inherited_fd(3 + i)).collect::<std::io::Result<Vec<_>>>() {
        Ok(fds) => fds,
        Err(e) => return boot_failed(ready, EXIT_INTERNAL, format!("preserved descriptors: {e}")),
    };
    let global = GlobalOpts { platform: req.platform.clone(), strace: req.strace, debug: req.debug, log: req.log.clone(), systrap_patch: req.systrap_patch, ..GlobalOpts::default() };
    if let Err(e) = init_logging(&global) {
        return boot_failed(ready, EXIT_INTERNAL, format!("cannot open the log: {e}"));
    }
    if let Err(e) = lift_file_size_limit() {
        return boot_failed(ready, EXIT_INTERNAL, e);
    }
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(&req.process.path));
    let state_dir = req.container.as_ref().map(|c| c.state_dir.clone());
    // First, so that every process the sandbox starts is charged there too.
    if let Err(e) = crate::cgroup::join(&req.cgroups) {
        return boot_failed(ready, EXIT_INTERNAL, e);
    }
    if let Some(adj) = req.oom_score_adj {
        if let Err(e) = std::fs::write("/proc/self/oom_score_adj", adj.to_string()) {
            return boot_failed(ready, EXIT_INTERNAL, format!("oomScoreAdj {adj}: {e}"));
        }
    }
    // In the caller's network namespace (the host's ports, not those of
    // --netns), and before the Sentry's filter forbids listening.
    let forwards = match crate::publish::listen(&req.publish) {
        Ok(f) => f,
        Err(e) => return boot_failed(ready, EXIT_INTERNAL, e),
    };
    if let Some(ns) = &req.netns {
        let joined = std::fs::File::open(ns).map_err(|e| e.to_string()).and_then(|f| nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| e.to_string()));
        if let Err(e) = joined {
            return boot_failed(ready, EXIT_INTERNAL, format!("network namespace {}: {e}", ns.display()));
        }
    }
    // Before anything else runs in the namespace: the sandbox's stack takes
    // its interfaces from the host's.
    let nics = match req.network {
        Network::Sandbox => match crate::network::take_interfaces() {
            Ok(nics) => nics,
            Err(e) => return boot_failed(ready, EXIT_INTERNAL, format!("--network=sandbox: {e}")),
        },
        _ => Vec::new(),
    };
    if req.container.as_ref().is_some_and(|c| c.new_session) {
        // The console socket's pty is the container's terminal: its resizes
        // reach us as SIGWINCH.
        let _ = nix::unistd::setsid();
        if let Err(e) = rvisor_platform::hostcall::set_controlling_terminal(std::io::stdin().as_fd()) {
            return boot_failed(ready, EXIT_INTERNAL, format!("terminal: {e}"));
        }
    }
    if let Some(pod) = req.pod.clone() {
        return match crate::pod::run_member(req, &pod, &preserved, ready.as_ref()) {
            Ok(code) => code,
            Err(e) => {
                if let Some(dir) = state_dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
                boot_failed(ready, EXIT_INTERNAL, e)
            }
        };
    }
    let booted = boot(&global, req, nics, forwards, preserved, ready.as_ref());
    if let (Err(_), Some(dir)) = (&booted, state_dir) {
        let _ = std::fs::remove_dir_all(dir);
    }
    match booted {
        Ok(code) => code,
        Err(BootError::Exec(ExecError::Errno(rvisor_abi::ErrnoCode::ENOENT))) => {
            boot_failed(ready, EXIT_NOT_FOUND, format!("{}: No such file or directory (in the sandbox)", path.display()))
        }
        Err(BootError::Exec(e)) => boot_failed(ready, EXIT_CANNOT_RUN, format!("{}: {e}", path.display())),
        Err(BootError::Internal(e)) => boot_failed(ready, EXIT_INTERNAL, e),
    }
}

/// The caller's RLIMIT_FSIZE is the app's (the kernel enforces it), not the
/// Sentry's and the gofer's: their memory file is sized sparse far past any
/// such limit, and the host files they write for the app may be larger too;
/// past it the host would kill them with SIGXFSZ. So it must go, or the
/// sandbox cannot start.
fn lift_file_size_limit() -> Result<(), String> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    if setrlimit(Resource::RLIMIT_FSIZE, RLIM_INFINITY, RLIM_INFINITY).is_ok() {
        return Ok(());
    }
    let max = getrlimit(Resource::RLIMIT_FSIZE).map_or(0, |(_, max)| max);
    Err(format!("the file size limit (ulimit -Hf) is {} KiB: the sandbox needs it unlimited, for its memory file (its program may have a limit of its own)", max / 1024))
}

/// Reports a failed boot: to `rvisor create` if it waits, else on standard error.
fn boot_failed(ready: Option<crate::container::ReadyPipe>, code: i32, msg: String) -> i32 {
    match ready {
        Some(r) => {
            r.fail(&msg);
            code
        }
        None => fail(code, msg),
    }
}

enum BootError {
    Exec(ExecError),
    Internal(String),
}

fn internal(what: &str) -> impl FnOnce(std::io::Error) -> BootError + '_ {
    move |e| BootError::Internal(format!("{what}: {e}"))
}

fn boot(global: &GlobalOpts, req: Request, nics: Vec<Nic>, forwards: Vec<rvisor_kernel::net::forward::Forward>, preserved: Vec<OwnedFd>, ready: Option<&crate::container::ReadyPipe>) -> Result<i32, BootError> {
    enter_landlock_domain(req.network);
    // Every host file the Sentry uses from now on, opened while it can: it leaves
    // the host's tree in `confine::sentry`.
    rvisor_platform::host_proc::dir().ok_or_else(|| BootError::Internal("cannot open the host's /proc".into()))?;
    let platform_fail = |e| BootError::Internal(format!("platform {}: {e}", global.platform));
    let device = rvisor_platform::open_device(&global.platform).map_err(platform_fail)?;
    let strace = if global.strace { Some(log_writer(global).map_err(internal("cannot open the log"))?) } else { None };
    let (memory_limit, cgroup_limits) = (crate::cgroup::memory_limit(&req.cgroups), crate::cgroup::limits(&req.cgroups));
    let host_files = match &req.container {
        Some(c) => Some(crate::container::HostFiles::open(&c.state_dir).map_err(BootError::Internal)?),
        None => None,
    };
    // The sandbox's root is a host directory, read-only, served by the gofer process
    // with every bind-mounted one. Started first: it keeps the capabilities serving
    // files takes, which the Sentry gives up before it makes anything else.
    let (mut gofers, planned) = Gofers::plan(&req.root, &req.mounts).map_err(BootError::Internal)?;
    let clients: Vec<_> = gofers.start().map_err(internal("cannot start the gofer"))?.into_iter().map(Arc::new).collect();
    crate::confine::sentry(req.network, &global.platform).map_err(BootError::Internal)?;
    let memory = Arc::new(MemoryFile::new().map_err(internal("cannot create the memory file"))?);
    let options = rvisor_platform::Options { systrap_patch: global.systrap_patch };
    let platform = rvisor_platform::on_device_with(&global.platform, memory.fd(), device, options).map_err(platform_fail)?;
    tracing::debug!("platform {}", platform.name());
    let hostname = req.hostname.clone().unwrap_or_else(|| nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_else(|_| "rvisor".into()));
    let mounts = mount_specs(planned, &clients).map_err(BootError::Internal)?;
    let root = clients.first().cloned().ok_or_else(|| BootError::Internal("the gofer serves no root".into()))?;
    let kernel = Kernel::new(KernelConfig { platform, memory, strace, hostname, gofer: root.clone(), root_read_only: req.root_read_only, root_propagation: req.root_propagation, mounts, host_network: req.network == Network::Host, nics, unprivileged_port_start: req.unprivileged_port_start.unwrap_or(1024), memory_limit, cgroup_limits }).map_err(BootError::Internal)?;
    // Landlock's file layer, before the threads to come (signal forwarding, `-p`'s,
    // the console, the control socket's, every task thread) and, on ptrace, the
    // stub spawner.
    restrict_files();
    let (stdio, raw_terminal) = if req.process.terminal {
        let saved = nix::sys::termios::tcgetattr(std::io::stdin()).map_err(|e| BootError::Internal(format!("-t: standard input is not a terminal: {e}")))?;
        (terminal_stdio(std::io::stdin().as_fd().try_clone_to_owned().map_err(internal("-t: standard input"))?).map_err(BootError::Internal)?, Some(saved))
    } else {
        (Stdio::Host(stdio().map_err(internal("standard streams"))?), None)
    };
    let mut spec = crate::control::program_spec(req.process, stdio, preserved);
    spec.seccomp = req.seccomp.map(crate::seccomp::to_kernel);
    forward_signals(&kernel);
    // After the signal mask is set, as the forwarder's: a sandbox without its
    // files cannot go on (lookups, page-ins and writes would fail under the app),
    // so it ends, as runsc's does when its gofer dies: at once if a call finds
    // its connection broken (every process is killed before that call returns,
    // so no app sees the error), else when the gofer's exit is noticed.
    let watched = kernel.clone();
    gofers
        .watch(move |status| {
            if !watched.init_exited() {
                tracing::error!("the gofer exited ({status}): the sandbox is killed");
                watched.kill_all();
            }
        })
        .map_err(internal("cannot watch the gofer"))?;
    let weak = Arc::downgrade(&kernel);
    root.on_lost(move || {
        if let Some(kernel) = weak.upgrade().filter(|k| !k.init_exited()) {
            tracing::error!("the gofer connection broke: the sandbox is killed");
            kernel.kill_all();
        }
    });
    // After the signal mask is set, which the forwarding threads inherit.
    rvisor_kernel::net::forward::start(&kernel, forwards).map_err(internal("-p: cannot start forwarding"))?;
    let filter = crate::filter::Config { ptrace: kernel.platform.name() == "ptrace", kvm: kernel.platform.name() == "kvm", host_network: req.network == Network::Host, loopback_mirror: req.network == Network::Sandbox, debug: req.debug_seccomp };
    let seal = || seal(&*kernel.platform, filter);
    let status = match req.container {
        None => {
            seal();
            kernel.run_init(spec).map_err(BootError::Exec)?
        }
        Some(c) => {
            let files = host_files.ok_or_else(|| BootError::Internal("a container without its state directory's files".into()))?;
            crate::container::serve(&kernel, root, spec, c, files, ready, seal).map_err(|e| match e {
                crate::container::BootFailure::Exec(e) => BootError::Exec(e),
                crate::container::BootFailure::Internal(e) => BootError::Internal(e),
            })?
        }
    };
    if let Some(saved) = raw_terminal {
        kernel.console_drained.wait(std::time::Duration::from_secs(1));
        let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSADRAIN, &saved);
    }
    Ok(status.shell_code())
}

/// The Sentry's Landlock domain (`landlock.rs`), entered first thing in `boot`:
/// before any thread or process is started, so that all of them (the gofer, the
/// zygote, every stub) are in it, and the Sentry, which can then signal and trace
/// only inside it, still reaches its stubs. Network setup and `-p`'s host
/// listeners came before, in `run_boot`.
fn enter_landlock_domain(network: Network) {
    let threads = crate::landlock::thread_count();
    if threads > 1 {
        tracing::debug!("landlock: {threads} threads were started before the domain, which they are not in");
    }
    crate::landlock::report("domain (signals, abstract sockets, tcp)", crate::landlock::enter_boot_domain(network));
}

/// The calling thread, and every thread it starts from then on, loses the host's
/// files but reading /proc (Landlock: `landlock::restrict_files`). Called by the
/// main thread, which then starts init and the other threads to come, so that
/// every task thread is restricted, and before the ptrace platform starts its
/// stub spawner (at the first stub): a tracer must be in its stub's Landlock
/// domain or an outer one.
fn restrict_files() {
    crate::landlock::report("files (read-only beneath /proc)", crate::landlock::restrict_files());
}

/// Puts the sandbox process, every thread of it, under the Sentry's seccomp filter
/// (`filter.rs`), once it is set up and before the app runs. Where the host refuses
/// (no seccomp, or no zygote to fork stubs that must not inherit the filter), the
/// Sentry runs unfiltered, with a warning, as the gofer does.
fn seal(platform: &dyn rvisor_platform::Platform, config: crate::filter::Config) {
    if let Err(e) = rvisor_platform::seal(platform, || crate::filter::install(&config)) {
        tracing::warn!("the Sentry runs without a seccomp filter: {e}");
    }
}

/// Standard streams that are a sandbox terminal bridged to the host terminal
/// `term`, which goes raw: the sandbox's terminal does the line editing and
/// signal characters.
pub fn terminal_stdio(term: OwnedFd) -> Result<Stdio, String> {
    use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
    let mut raw = tcgetattr(&term).map_err(|e| format!("terminal: {e}"))?;
    cfmakeraw(&mut raw);
    tcsetattr(&term, SetArg::TCSADRAIN, &raw).map_err(|e| format!("terminal: raw mode: {e}"))?;
    let winsize = rvisor_platform::hostcall::window_size(term.as_fd()).unwrap_or([24, 80, 0, 0]);
    let output = term.try_clone().map_err(|e| format!("terminal: {e}"))?;
    Ok(Stdio::Terminal { input: term, output, winsize })
}

/// Signals the sandbox process receives (ctrl-C, `kill`) go to the sandbox's init
/// instead of ending the sandbox abruptly; init's handlers or default actions apply.
fn forward_signals(kernel: &Arc<Kernel>) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2, Signal::SIGWINCH] {
        set.add(s);
    }
    // Blocked in this thread before any other starts, so every thread inherits the
    // mask and only the forwarder takes these signals.
    if set.thread_block().is_err() {
        return;
    }
    let kernel = kernel.clone();
    let _ = std::thread::Builder::new().name("signal-forwarder".into()).spawn(move || loop {
        match set.wait() {
            // With -t the console follows the caller's terminal size.
            Ok(Signal::SIGWINCH) if kernel.console.get().is_some() => {
                if let Ok(ws) = rvisor_platform::hostcall::window_size(std::io::stdin().as_fd()) {
                    kernel.console_resized(ws);
                }
            }
            Ok(sig) => {
                tracing::debug!("host signal {sig} forwarded to init");
                kernel.signal_init(sig as u32)
            }
            Err(_) => {}
        }
    });
}
