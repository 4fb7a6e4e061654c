//! `rvisor do`: boot a sandbox around one program and wait for it.

use crate::cli::{DoArgs, GlobalOpts};
use rvisor_kernel::task::Credentials;
use rvisor_kernel::{ExecError, Kernel, KernelConfig, ProgramSpec, Stdio};
use rvisor_memory::MemoryFile;
use std::io::Write;
use crate::request::Request;
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
    if let Err(e) = std::fs::metadata(&path) {
        let code = if e.kind() == std::io::ErrorKind::NotFound { EXIT_NOT_FOUND } else { EXIT_CANNOT_RUN };
        return fail(code, format!("{}: {}", path.display(), describe(&e)));
    }
    let exe = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    let request = Request {
        platform: global.platform.clone(),
        strace: global.strace,
        debug: global.debug,
        tty: args.tty,
        log: global.log.as_ref().map(|p| p.as_os_str().as_bytes().to_vec()),
        path: path.as_os_str().as_bytes().to_vec(),
        exe: exe.as_os_str().as_bytes().to_vec(),
        argv: args.argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
        envp: std::env::vars_os().map(|(k, v)| [k.as_bytes(), b"=", v.as_bytes()].concat()).collect(),
        cwd: std::env::current_dir().map(|d| d.as_os_str().as_bytes().to_vec()).unwrap_or_else(|_| b"/".to_vec()),
    };
    let fd = match request.to_memfd() {
        Ok(fd) => fd,
        Err(e) => return fail(EXIT_INTERNAL, format!("cannot hand over the request: {e}")),
    };
    // Become the sandbox: same pid (the caller waits on us), nothing of the
    // program's in our command line or environment.
    let err = std::process::Command::new(std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()))
        .arg0("rvisor")
        .args(["boot", "--request-fd", &fd.as_raw_fd().to_string()])
        .env_clear()
        .exec();
    fail(EXIT_INTERNAL, format!("cannot start the sandbox: {err}"))
}

/// A shell-like message for an I/O error ("No such file or directory").
fn describe(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

/// `rvisor boot`: the sandbox process proper.
pub fn run_boot(request_fd: i32) -> i32 {
    let req = match Request::from_fd(request_fd) {
        Ok(r) => r,
        Err(e) => return fail(EXIT_INTERNAL, format!("bad request: {e}")),
    };
    let global = GlobalOpts {
        platform: req.platform.clone(),
        strace: req.strace,
        debug: req.debug,
        log: req.log.as_ref().map(|l| PathBuf::from(std::ffi::OsStr::from_bytes(l))),
    };
    if let Err(e) = init_logging(&global) {
        return fail(EXIT_INTERNAL, format!("cannot open the log: {e}"));
    }
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(&req.path));
    match boot(&global, req) {
        Ok(code) => code,
        Err(BootError::Exec(ExecError::Errno(rvisor_abi::ErrnoCode::ENOENT))) => {
            fail(EXIT_NOT_FOUND, format!("{}: No such file or directory (in the sandbox)", path.display()))
        }
        Err(BootError::Exec(e)) => fail(EXIT_CANNOT_RUN, format!("{}: {e}", path.display())),
        Err(BootError::Internal(e)) => fail(EXIT_INTERNAL, e),
    }
}

enum BootError {
    Exec(ExecError),
    Internal(String),
}

fn boot(global: &GlobalOpts, req: Request) -> Result<i32, BootError> {
    let memory = Arc::new(MemoryFile::new().map_err(|e| BootError::Internal(format!("cannot create the memory file: {e}")))?);
    let platform = rvisor_platform::by_name(&global.platform, memory.fd())
        .map_err(|e| BootError::Internal(format!("platform {}: {e}", global.platform)))?;
    tracing::debug!("platform {}", platform.name());
    let strace = if global.strace {
        Some(log_writer(global).map_err(|e| BootError::Internal(format!("cannot open the log: {e}")))?)
    } else {
        None
    };
    let hostname = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_else(|_| "rvisor".into());
    // The sandbox's root is the host's, read-only, served by a gofer process.
    let (gofer_process, gofer) = rvisor_gofer::spawn_gofer(std::path::Path::new("/"), true)
        .map_err(|e| BootError::Internal(format!("cannot start the gofer: {e}")))?;
    let gofer = Arc::new(gofer);
    let kernel = Kernel::new(KernelConfig { platform, memory, strace, hostname, gofer }).map_err(BootError::Internal)?;
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let creds = Credentials { uid, euid: uid, suid: uid, gid, egid: gid, sgid: gid };
    let (stdio, raw_terminal) = if req.tty { console()? } else { (Stdio::Host(stdio().map_err(|e| BootError::Internal(format!("standard streams: {e}")))?), None) };
    let spec = ProgramSpec {
        path: String::from_utf8_lossy(&req.path).into_owned(),
        argv: req.argv,
        envp: req.envp,
        stdio,
        cwd: String::from_utf8_lossy(&req.cwd).into_owned(),
        creds,
    };
    forward_signals(&kernel);
    let status = kernel.run_init(spec);
    if let Some(saved) = raw_terminal {
        let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSADRAIN, &saved);
    }
    drop(gofer_process);
    Ok(status.map_err(BootError::Exec)?.shell_code())
}

/// `-t`: the caller's terminal goes raw (the sandbox's terminal does the line
/// editing and signal characters) and is bridged to a sandbox pty. Returns the
/// settings to restore.
fn console() -> Result<(Stdio, Option<nix::sys::termios::Termios>), BootError> {
    use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
    let fail = |what: &str, e: &dyn std::fmt::Display| BootError::Internal(format!("-t: {what}: {e}"));
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).map_err(|e| fail("standard input is not a terminal", &e))?;
    let winsize = rvisor_platform::hostcall::window_size(stdin.as_fd()).unwrap_or([24, 80, 0, 0]);
    let input = stdin.as_fd().try_clone_to_owned().map_err(|e| fail("standard input", &e))?;
    let output = std::io::stdout().as_fd().try_clone_to_owned().map_err(|e| fail("standard output", &e))?;
    let mut raw = saved.clone();
    cfmakeraw(&mut raw);
    tcsetattr(&stdin, SetArg::TCSADRAIN, &raw).map_err(|e| fail("raw mode", &e))?;
    Ok((Stdio::Terminal { input, output, winsize }, Some(saved)))
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
            Ok(sig) => kernel.signal_init(sig as u32),
            Err(_) => {}
        }
    });
}
