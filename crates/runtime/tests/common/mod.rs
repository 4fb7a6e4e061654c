//! Integration-test harness shared by the test files in this directory.
//!
//! - Compiles `tests/programs/NAME.c` with the system `gcc`, as `-static` and `-static-pie`
//!   (and, for loader tests, dynamic), caching the result by source modification time.
//! - Runs a program natively and under `rvisor do --platform=P` for every platform in
//!   [`platforms()`], and compares stdout and exit status.
//! - Applies `tests/known-failures.txt`: a listed (test, platform) pair is expected to fail;
//!   the failure is reported on stderr, never skipped silently, and an unexpected pass fails
//!   the test so that the list stays true.
//!
//! Exit statuses are normalised the way a shell reports them: the exit code, or 128+N when
//! signal N killed the process. That is also what `rvisor do` exits with, so native and
//! sandboxed outcomes compare directly.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::ffi::{CString, OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// Every platform the suite runs on. A platform that cannot run here fails its tests: it is
/// never skipped. Add "kvm" here when it exists.
pub const ALL_PLATFORMS: &[&str] = &["ptrace", "systrap", "kvm"];

/// Variants a run covers only when `RVISOR_TEST_PLATFORMS` names them: "systrap-nopatch"
/// is systrap without syscall patching (`--systrap-patch=false`: every call traps), and
/// takes systrap's known failures.
pub const EXTRA_PLATFORMS: &[&str] = &["systrap-nopatch"];

/// The platforms this run covers: all of them, unless `RVISOR_TEST_PLATFORMS` (a
/// comma-separated list) narrows the run, as `bench/suite` does to time each platform alone.
pub fn platforms() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| match std::env::var("RVISOR_TEST_PLATFORMS") {
        Ok(v) => {
            let wanted: Vec<&str> = v.split(',').map(str::trim).collect();
            for w in &wanted {
                assert!(ALL_PLATFORMS.contains(w) || EXTRA_PLATFORMS.contains(w), "RVISOR_TEST_PLATFORMS: unknown platform {w:?} (known: {ALL_PLATFORMS:?}, {EXTRA_PLATFORMS:?})");
            }
            ALL_PLATFORMS.iter().chain(EXTRA_PLATFORMS).copied().filter(|p| wanted.contains(p)).collect()
        }
        Err(_) => ALL_PLATFORMS.to_vec(),
    })
}

/// How test programs are linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Link {
    Static,
    StaticPie,
    /// Linked against the host's glibc: runs through ld.so from the served root.
    Dynamic,
}

/// The link modes every program is tested in.
pub const LINKS: &[Link] = &[Link::Static, Link::StaticPie];

impl Link {
    pub fn name(self) -> &'static str {
        match self {
            Link::Static => "static",
            Link::StaticPie => "static-pie",
            Link::Dynamic => "dynamic",
        }
    }

    fn flag(self) -> Option<&'static str> {
        match self {
            Link::Static => Some("-static"),
            Link::StaticPie => Some("-static-pie"),
            Link::Dynamic => None,
        }
    }

    fn parse(s: &str) -> Option<Link> {
        [Link::Static, Link::StaticPie, Link::Dynamic]
            .into_iter()
            .find(|l| l.name() == s)
    }
}

/// One cell of the test matrix.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    pub platform: &'static str,
    pub link: Link,
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.link.name(), self.platform)
    }
}

// ---------------------------------------------------------------------------------------
// Paths and compilation
// ---------------------------------------------------------------------------------------

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

pub fn programs_dir() -> PathBuf {
    repo_root().join("tests/programs")
}

pub fn rvisor() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_rvisor"))
}

/// A fresh, unique scratch path (not created) under the target's tmp dir.
pub fn scratch_path(stem: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scratch");
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir.join(unique_name(stem))
}

/// `stem-PID-NANOS-COUNTER`: unique across threads and concurrent test processes.
pub fn unique_name(stem: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{stem}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Compiles `tests/programs/NAME.c` for `link` and returns the binary's path. The binary is
/// reused while it is newer than its source and `check.h`. Safe under parallel tests and parallel test
/// processes: gcc writes a unique temporary file which is then renamed into place.
pub fn compile(name: &str, link: Link) -> PathBuf {
    let src = programs_dir().join(format!("{name}.c"));
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("programs");
    fs::create_dir_all(&out_dir).expect("create programs dir");
    let out = out_dir.join(format!("{name}-{}", link.name()));
    let src_mtime = fs::metadata(&src)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("test program {}: {e}", src.display()));
    // The programs share headers (check.h, inet.h): a newer one rebuilds them too.
    let header_mtime = fs::read_dir(programs_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "h"))
        .filter_map(|e| e.metadata().and_then(|m| m.modified()).ok())
        .max();
    let src_mtime = header_mtime.map_or(src_mtime, |h| h.max(src_mtime));
    if let Ok(m) = fs::metadata(&out).and_then(|m| m.modified()) {
        if m >= src_mtime {
            return out;
        }
    }
    let tmp = out_dir.join(unique_name(&format!(".{name}-{}", link.name())));
    let mut cmd = Command::new("gcc");
    cmd.args(["-O2", "-Wall", "-g"]);
    if let Some(flag) = link.flag() {
        cmd.arg(flag);
    }
    cmd.arg("-o").arg(&tmp).arg(&src);
    let result = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run gcc (is it installed?): {e}"));
    if !result.status.success() {
        let _ = fs::remove_file(&tmp);
        panic!(
            "gcc failed to build {} ({}):\n{}",
            src.display(),
            link.name(),
            String::from_utf8_lossy(&result.stderr)
        );
    }
    fs::rename(&tmp, &out).expect("rename compiled program into place");
    out
}

// ---------------------------------------------------------------------------------------
// Running programs
// ---------------------------------------------------------------------------------------

/// Installs Debian package `package` when no `program` is on the PATH,
/// updating the package lists if the first try fails; panics if it still
/// is not there.
pub fn ensure_installed(program: &str, package: &str) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // A program on the PATH, or a file by its absolute path.
    let present = || Path::new(program).is_absolute() && Path::new(program).is_file() || std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|dir| dir.join(program).is_file());
    if present() {
        return;
    }
    let apt = |args: &[&str]| Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive").output();
    if !apt(&["install", "-y", "-q", package]).is_ok_and(|o| o.status.success()) {
        let _ = apt(&["update", "-q"]);
        let _ = apt(&["install", "-y", "-q", package]);
    }
    assert!(present(), "{program} is not installed and apt-get could not install {package}");
}

/// How long one run may take before it is killed and reported as hung.
pub fn timeout() -> Duration {
    let secs = std::env::var("RVISOR_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// What a program is run with.
#[derive(Clone, Debug, Default)]
pub struct Spec {
    pub args: Vec<OsString>,
    pub stdin: Vec<u8>,
    /// When set, the environment is exactly this (for the program natively; for rvisor,
    /// which passes it on).
    pub env: Option<Vec<(String, String)>>,
}

impl Spec {
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> Spec {
        Spec {
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            ..Spec::default()
        }
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Spec {
        self.stdin = data.into();
        self
    }

    pub fn env(mut self, vars: &[(&str, &str)]) -> Spec {
        self.env = Some(
            vars.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self
    }
}

/// How a run ended and what it printed.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub command: String,
    /// Shell-style: exit code, or 128+N if killed by signal N. -1 if it timed out.
    pub status: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// ru_maxrss of the process and its waited-for descendants, KiB.
    pub maxrss_kib: i64,
    /// Something odd about the run itself (e.g. output pipes left open after exit).
    pub notes: Vec<String>,
}

impl Outcome {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout_str().lines().map(str::to_owned).collect()
    }

    /// A multi-line description for failure messages.
    pub fn describe(&self) -> String {
        let mut s = format!("  command: {}\n  status: {}", self.command, self.status);
        if let Some(sig) = self.signal {
            let _ = write!(s, " (killed by signal {sig})");
        }
        if self.timed_out {
            let _ = write!(s, " (TIMED OUT after {:?}, killed)", timeout());
        }
        for n in &self.notes {
            let _ = write!(s, "\n  note: {n}");
        }
        let _ = write!(
            s,
            "\n  stdout:\n{}",
            indent(&clip(&self.stdout_str(), 3000))
        );
        let _ = write!(
            s,
            "\n  stderr:\n{}",
            indent(&clip(&self.stderr_str(), 3000))
        );
        s
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}\n[... {} more bytes]", &s[..cut], s.len() - cut)
}

fn indent(s: &str) -> String {
    if s.is_empty() {
        return "    (empty)".into();
    }
    s.lines()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The command that runs `program` natively.
pub fn native_command(program: &Path, spec: &Spec) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(&spec.args);
    apply_env(&mut cmd, spec);
    cmd
}

/// The platform a variant of [`platforms()`] runs on: what known failures are listed under.
pub fn host_platform(variant: &str) -> &str {
    match variant {
        "systrap-nopatch" => "systrap",
        p => p,
    }
}

/// The global flags that select `platform` (one of [`platforms()`]), for any command.
pub fn platform_args(platform: &str) -> Vec<String> {
    match platform {
        "systrap-nopatch" => vec!["--platform=systrap".into(), "--systrap-patch=false".into()],
        _ => vec![format!("--platform={platform}")],
    }
}

/// The command that runs `program` under `rvisor do --platform=PLATFORM FLAGS... --`.
pub fn sandbox_command(platform: &str, flags: &[&str], program: &Path, spec: &Spec) -> Command {
    let mut cmd = Command::new(rvisor());
    cmd.arg("do")
        .args(platform_args(platform))
        .args(flags)
        .arg("--")
        .arg(program)
        .args(&spec.args);
    apply_env(&mut cmd, spec);
    cmd
}

fn apply_env(cmd: &mut Command, spec: &Spec) {
    if let Some(env) = &spec.env {
        cmd.env_clear();
        for (k, v) in env {
            cmd.env(k, v);
        }
    }
}

pub fn run_native(program: &Path, spec: &Spec) -> Outcome {
    run(
        native_command(program, spec),
        Input::Bytes(spec.stdin.clone()),
    )
}

pub fn run_sandbox(platform: &str, program: &Path, spec: &Spec) -> Outcome {
    run_sandbox_flags(platform, &[], program, spec)
}

pub fn run_sandbox_flags(platform: &str, flags: &[&str], program: &Path, spec: &Spec) -> Outcome {
    run(
        sandbox_command(platform, flags, program, spec),
        Input::Bytes(spec.stdin.clone()),
    )
}

/// What the child gets as stdin.
pub enum Input {
    /// A pipe that receives these bytes and is then closed.
    Bytes(Vec<u8>),
    /// This descriptor (e.g. a pseudo-terminal).
    Fd(OwnedFd),
}

fn describe_command(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains([' ', '"', '\'']) {
            let _ = write!(s, " {a:?}");
        } else {
            let _ = write!(s, " {a}");
        }
    }
    s
}

/// Wait status and rusage of a reaped child.
struct Reaped {
    status: libc::c_int,
    maxrss_kib: i64,
}

/// Reaps `pid` on a thread (so the caller can time out), with wait4 to get rusage.
fn spawn_waiter(pid: libc::pid_t) -> Receiver<Reaped> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut status = 0;
        // SAFETY: rusage is plain old data, zero is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: plain wait4 on our own child with valid out-pointers.
            let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
            if r == pid {
                break;
            }
            if r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            panic!("wait4({pid}): {}", std::io::Error::last_os_error());
        }
        let _ = tx.send(Reaped {
            status,
            maxrss_kib: ru.ru_maxrss,
        });
    });
    rx
}

/// Kills the process group `pgid` (a group this harness created for its own child).
fn kill_group(pgid: libc::pid_t) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

fn reader<R: Read + Send + 'static>(mut r: R) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Runs `cmd` to completion (bounded by [`timeout`]) in its own process group, feeding stdin
/// and collecting stdout and stderr.
pub fn run(mut cmd: Command, input: Input) -> Outcome {
    let command = describe_command(&cmd);
    let bytes = match input {
        Input::Bytes(b) => {
            cmd.stdin(Stdio::piped());
            Some(b)
        }
        Input::Fd(fd) => {
            cmd.stdin(Stdio::from(fd));
            None
        }
    };
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                command,
                status: 127,
                signal: None,
                timed_out: false,
                stdout: vec![],
                stderr: format!("harness: spawn failed: {e}").into_bytes(),
                maxrss_kib: 0,
                notes: vec![format!("spawn failed: {e}")],
            }
        }
    };
    let pid = child.id() as libc::pid_t;
    if let (Some(data), Some(mut stdin)) = (bytes, child.stdin.take()) {
        thread::spawn(move || {
            let _ = stdin.write_all(&data); // EPIPE is fine: the program need not read it all
        });
    }
    let out = reader(child.stdout.take().unwrap());
    let err = reader(child.stderr.take().unwrap());
    let waiter = spawn_waiter(pid);
    let started = Instant::now();
    let outcome = finish(command, pid, waiter, out, err, started + timeout());
    log_time(&outcome.command, started.elapsed());
    outcome
}

/// With `RVISOR_TEST_TIMES=FILE`, appends `PLATFORM MILLISECONDS COMMAND` for each run (the
/// platform is `native` for a run outside the sandbox), so that `bench/suite` can say where
/// the suite's time goes on each platform.
fn log_time(command: &str, took: Duration) {
    let Some(path) = std::env::var_os("RVISOR_TEST_TIMES") else { return };
    let platform = command
        .split(' ')
        .find_map(|a| a.strip_prefix("--platform="))
        .unwrap_or("native");
    let line = format!("{platform}\t{:.3}\t{command}\n", took.as_secs_f64() * 1e3);
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(line.as_bytes());
    }
}

fn finish(
    command: String,
    pid: libc::pid_t,
    waiter: Receiver<Reaped>,
    out: Receiver<Vec<u8>>,
    err: Receiver<Vec<u8>>,
    deadline: Instant,
) -> Outcome {
    let mut notes = Vec::new();
    let mut timed_out = false;
    let reaped = match waiter.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(r) => r,
        Err(_) => {
            timed_out = true;
            kill_group(pid);
            waiter.recv().expect("waiter thread")
        }
    };
    // The output pipes close when every process holding them is gone. Something left
    // running (a stub, a Sentry helper) keeps them open: report it and kill the group.
    let grace = Duration::from_secs(10);
    let mut collect = |rx: &Receiver<Vec<u8>>, what: &str| match rx.recv_timeout(grace) {
        Ok(b) => b,
        Err(_) => {
            notes.push(format!("{what} still open {grace:?} after the process exited: leftover processes; killed its process group"));
            kill_group(pid);
            rx.recv_timeout(grace).unwrap_or_default()
        }
    };
    let stdout = collect(&out, "stdout");
    let stderr = collect(&err, "stderr");
    let st = reaped.status;
    let (status, signal) = if libc::WIFEXITED(st) {
        (libc::WEXITSTATUS(st), None)
    } else if libc::WIFSIGNALED(st) {
        (128 + libc::WTERMSIG(st), Some(libc::WTERMSIG(st)))
    } else {
        (-1, None)
    };
    Outcome {
        command,
        status: if timed_out { -1 } else { status },
        signal,
        timed_out,
        stdout,
        stderr,
        maxrss_kib: reaped.maxrss_kib,
        notes,
    }
}

/// A running program driven line by line through its stdin and stdout.
pub struct Interactive {
    command: String,
    pid: libc::pid_t,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stdout_done: Receiver<Vec<u8>>,
    stderr: Receiver<Vec<u8>>,
    waiter: Receiver<Reaped>,
    deadline: Instant,
    reaped: bool,
}

impl Drop for Interactive {
    /// A test that gives up half way (an error from `?`) must not leave the run behind.
    fn drop(&mut self) {
        if !self.reaped {
            kill_group(self.pid);
        }
    }
}

impl Interactive {
    pub fn spawn(mut cmd: Command) -> Interactive {
        let command = describe_command(&cmd);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // Reaped by `spawn_waiter` (wait4, for rusage), not by `Child::wait`.
        #[allow(clippy::zombie_processes)]
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command}: {e}"));
        let pid = child.id() as libc::pid_t;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (line_tx, lines) = mpsc::channel();
        let (done_tx, stdout_done) = mpsc::channel();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let acc = stdout.clone();
        thread::spawn(move || {
            loop {
                let mut line = Vec::new();
                match out.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        acc.lock().unwrap().extend_from_slice(&line);
                        let _ = line_tx.send(
                            String::from_utf8_lossy(&line)
                                .trim_end_matches('\n')
                                .to_owned(),
                        );
                    }
                }
            }
            let _ = done_tx.send(Vec::new());
        });
        Interactive {
            command,
            pid,
            stdin: child.stdin.take(),
            lines,
            stdout,
            stdout_done,
            stderr: reader(child.stderr.take().unwrap()),
            waiter: spawn_waiter(pid),
            deadline: Instant::now() + timeout(),
            reaped: false,
        }
    }

    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Waits for the next line of output. On EOF or timeout the program is killed and the
    /// error carries its whole outcome.
    pub fn next_line(&mut self) -> Result<String, String> {
        match self
            .lines
            .recv_timeout(self.deadline.saturating_duration_since(Instant::now()))
        {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => {
                Err(self.abort("timed out waiting for a line of output"))
            }
            Err(RecvTimeoutError::Disconnected) => {
                Err(self.abort("stdout closed while a line was expected"))
            }
        }
    }

    /// Waits for the next line of output and checks it is `want`.
    pub fn expect_line(&mut self, want: &str) -> Result<(), String> {
        match self.next_line() {
            Ok(line) if line == want => Ok(()),
            Ok(line) => Err(self.abort(&format!("expected the line {want:?}, got {line:?}"))),
            Err(e) => Err(format!("while waiting for {want:?}: {e}")),
        }
    }

    /// Sends one newline-terminated line.
    pub fn send_line(&mut self) -> Result<(), String> {
        let r = self
            .stdin
            .as_mut()
            .map(|s| s.write_all(b"\n").and_then(|_| s.flush()));
        match r {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(self.abort(&format!("writing to stdin: {e}"))),
            None => Err(self.abort("stdin already closed")),
        }
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn abort(&mut self, why: &str) -> String {
        kill_group(self.pid);
        self.stdin = None;
        let o = self.collect(Instant::now() + Duration::from_secs(10));
        format!("{why}\n{}", o.describe())
    }

    fn collect(&mut self, deadline: Instant) -> Outcome {
        let (tx, rx) = mpsc::channel();
        // The stdout thread signals the end; the accumulated bytes are in `self.stdout`.
        let acc = self.stdout.clone();
        let done = std::mem::replace(&mut self.stdout_done, mpsc::channel().1);
        thread::spawn(move || {
            let _ = done.recv();
            let _ = tx.send(acc.lock().unwrap().clone());
        });
        let waiter = std::mem::replace(&mut self.waiter, mpsc::channel().1);
        let err = std::mem::replace(&mut self.stderr, mpsc::channel().1);
        let o = finish(self.command.clone(), self.pid, waiter, rx, err, deadline);
        self.reaped = true;
        o
    }

    /// Closes stdin and waits for the program to exit.
    pub fn finish(mut self) -> Outcome {
        self.stdin = None;
        let deadline = self.deadline;
        self.collect(deadline)
    }

    /// Waits for the program to exit by itself, its stdin still open.
    pub fn wait_exit(mut self) -> Outcome {
        let deadline = self.deadline;
        self.collect(deadline)
    }

    /// `finish`, and the program exited 0 without a sign of trouble.
    pub fn succeeds(self) -> Result<(), String> {
        let o = self.finish();
        sane(&o)?;
        if o.status != 0 {
            return Err(o.describe());
        }
        Ok(())
    }
}

/// Accepts one connection on `listener` and answers "pong:" and what it read.
pub fn serve_tcp_once(listener: std::net::TcpListener) -> std::thread::JoinHandle<()> {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = listener.accept() {
            let mut buf = [0u8; 100];
            let n = c.read(&mut buf).unwrap_or(0);
            let _ = c.write_all(&[b"pong:", &buf[..n]].concat());
        }
    })
}

// ---------------------------------------------------------------------------------------
// Known failures and the test matrix
// ---------------------------------------------------------------------------------------

/// One line of tests/known-failures.txt: `TEST[LINK] PLATFORM REASON...`, where `[LINK]`
/// (`[static]` or `[static-pie]`) is optional and PLATFORM may be `*`.
#[derive(Clone, Debug)]
pub struct KnownFailure {
    pub test: String,
    pub link: Option<Link>,
    pub platform: String,
    pub reason: String,
    pub line: usize,
}

impl KnownFailure {
    fn matches(&self, test: &str, v: Variant) -> bool {
        self.test == test
            && self.link.is_none_or(|l| l == v.link)
            && (self.platform == "*" || self.platform == host_platform(v.platform))
    }
}

pub fn known_failures_path() -> PathBuf {
    repo_root().join("tests/known-failures.txt")
}

/// One line of an expectation file (known failures, the Python suite's): `NAME
/// PLATFORM REASON...`, PLATFORM a platform or `*`.
pub struct ExpectationLine<'a> {
    pub line: usize,
    pub name: &'a str,
    pub platform: &'a str,
    pub reason: &'a str,
}

/// The lines of an expectation file, skipping blank lines and `#` comments; a line
/// without a reason or with an unknown platform is an error.
pub fn expectation_lines(text: &str) -> Result<Vec<ExpectationLine<'_>>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.splitn(3, char::is_whitespace);
        let (Some(name), Some(platform), Some(reason)) = (it.next(), it.next(), it.next().map(str::trim)) else {
            return Err(format!("line {}: want `NAME PLATFORM REASON...`, got {raw:?}", i + 1));
        };
        if reason.is_empty() {
            return Err(format!("line {}: an expectation needs a reason: {raw:?}", i + 1));
        }
        if platform != "*" && !ALL_PLATFORMS.contains(&platform) {
            return Err(format!("line {}: unknown platform {platform:?} (known: {ALL_PLATFORMS:?} or *)", i + 1));
        }
        out.push(ExpectationLine { line: i + 1, name, platform, reason });
    }
    Ok(out)
}

/// Parses the known-failures file; malformed lines are errors.
pub fn parse_known_failures(text: &str) -> Result<Vec<KnownFailure>, String> {
    let mut out = Vec::new();
    for l in expectation_lines(text)? {
        let (test, link) = match l.name.split_once('[') {
            Some((t, rest)) => {
                let link = rest
                    .strip_suffix(']')
                    .and_then(Link::parse)
                    .ok_or_else(|| format!("line {}: bad link in {:?} (use [static] or [static-pie])", l.line, l.name))?;
                (t, Some(link))
            }
            None => (l.name, None),
        };
        out.push(KnownFailure { test: test.to_owned(), link, platform: l.platform.to_owned(), reason: l.reason.to_owned(), line: l.line });
    }
    Ok(out)
}

pub fn known_failures() -> &'static [KnownFailure] {
    static LIST: OnceLock<Vec<KnownFailure>> = OnceLock::new();
    LIST.get_or_init(|| {
        let path = known_failures_path();
        let text = fs::read_to_string(&path).unwrap_or_default();
        parse_known_failures(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

pub fn known_failure(test: &str, v: Variant) -> Option<&'static KnownFailure> {
    known_failures().iter().find(|k| k.matches(test, v))
}

/// Writes straight to the process's stderr, past libtest's output capture, so known
/// failures show up in every `cargo test` run.
pub fn report(msg: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(msg.as_bytes());
    let _ = e.flush();
}

/// Runs `f` for every platform in [`platforms()`] and every link mode in `links`, applying the
/// known-failures list, and panics with a summary if any cell failed unexpectedly or a known
/// failure passed.
pub fn matrix(test: &str, links: &[Link], f: impl Fn(Variant) -> Result<(), String>) {
    let mut problems = Vec::new();
    let mut summary = Vec::new();
    for &link in links {
        for &platform in platforms() {
            let v = Variant { platform, link };
            let result = f(v);
            match (result, known_failure(test, v)) {
                (Ok(()), None) => summary.push(format!("pass  {test} [{v}]")),
                (Err(e), None) => {
                    summary.push(format!("FAIL  {test} [{v}]"));
                    problems.push(format!("--- {test} [{v}] FAILED:\n{e}"));
                }
                (Err(e), Some(k)) => {
                    summary.push(format!("known {test} [{v}]"));
                    report(&format!(
                        "KNOWN FAILURE {test} [{v}] (tests/known-failures.txt:{}: {}):\n{}\n",
                        k.line,
                        k.reason,
                        indent(&clip(&e, 1500))
                    ));
                }
                (Ok(()), Some(k)) => {
                    summary.push(format!("XPASS {test} [{v}]"));
                    problems.push(format!(
                        "--- {test} [{v}] PASSED UNEXPECTEDLY: it is listed in tests/known-failures.txt:{} ({}); \
                         remove that line",
                        k.line, k.reason
                    ));
                }
            }
        }
    }
    if !problems.is_empty() {
        panic!(
            "{}\n\nsummary:\n{}\n",
            problems.join("\n\n"),
            summary.join("\n")
        );
    }
}

/// Checks common to every sandboxed run: it finished, and rvisor did not panic.
pub fn sane(o: &Outcome) -> Result<(), String> {
    if o.timed_out {
        return Err(format!("timed out\n{}", o.describe()));
    }
    let err = o.stderr_str();
    if err.contains("panicked at") || err.contains("RUST_BACKTRACE") {
        return Err(format!("rvisor panicked\n{}", o.describe()));
    }
    if !o.notes.is_empty() {
        return Err(format!("the run left processes behind\n{}", o.describe()));
    }
    Ok(())
}

/// Line-by-line difference of two outputs, for failure messages.
pub fn diff(native: &[u8], sandbox: &[u8]) -> String {
    let a = String::from_utf8_lossy(native);
    let b = String::from_utf8_lossy(sandbox);
    let (al, bl): (Vec<&str>, Vec<&str>) = (a.split('\n').collect(), b.split('\n').collect());
    let mut out = String::new();
    let mut shown = 0;
    for i in 0..al.len().max(bl.len()) {
        let (x, y) = (al.get(i), bl.get(i));
        if x != y {
            shown += 1;
            if shown > 20 {
                out.push_str("    ... more differences\n");
                break;
            }
            let show = |s: Option<&&str>| {
                s.map_or("<missing>".to_owned(), |s| format!("{:?}", clip(s, 200)))
            };
            let _ = writeln!(
                out,
                "    line {}: native {}\n    {}  sandbox {}",
                i + 1,
                show(x),
                " ".repeat((i + 1).to_string().len() + 5),
                show(y)
            );
        }
    }
    if a.len() != b.len() {
        let _ = writeln!(
            out,
            "    (native {} bytes, sandbox {} bytes)",
            native.len(),
            sandbox.len()
        );
    }
    out
}

/// The core comparison: runs `program` with `spec` natively and in the sandbox for every
/// platform and link mode; `check` must accept the native outcome (otherwise the test
/// program itself is wrong and the test panics) and the sandboxed one, and the sandboxed
/// stdout and status must equal the native ones.
pub fn compare(
    test: &str,
    program: &str,
    spec: &Spec,
    check: impl Fn(&Outcome) -> Result<(), String>,
) {
    matrix(test, LINKS, |v| compare_one(v, program, spec, &check));
}

/// Several runs of one program (e.g. one per mode argument) as one test: every run is
/// compared in every cell of the matrix, and all failures are reported together.
pub fn compare_each(test: &str, program: &str, runs: &[(Spec, Box<Check>)]) {
    matrix(test, LINKS, |v| {
        all(runs
            .iter()
            .map(|(spec, check)| compare_one(v, program, spec, check)))
    });
}

/// An assertion on an outcome.
pub type Check<'a> = dyn Fn(&Outcome) -> Result<(), String> + 'a;

/// One cell of [`compare`].
pub fn compare_one(v: Variant, program: &str, spec: &Spec, check: &Check) -> Result<(), String> {
    let bin = compile(program, v.link);
    let native = run_native(&bin, spec);
    if let Err(e) = check(&native) {
        panic!(
            "the NATIVE run of {program} ({}) fails its own check, so the test program is wrong:\n{e}\n{}",
            v.link.name(),
            native.describe()
        );
    }
    let sb = run_sandbox(v.platform, &bin, spec);
    sane(&sb)?;
    let mut errs = Vec::new();
    if sb.status != native.status {
        errs.push(format!(
            "exit status: native {}, sandbox {}",
            native.status, sb.status
        ));
    }
    if sb.stdout != native.stdout {
        errs.push(format!(
            "stdout differs from native:\n{}",
            diff(&native.stdout, &sb.stdout)
        ));
    }
    if let Err(e) = check(&sb) {
        errs.push(e);
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\nsandbox run:\n{}",
            errs.join("\n"),
            sb.describe()
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Assertion helpers (return errors rather than panicking, for the matrix)
// ---------------------------------------------------------------------------------------

pub fn expect_status(o: &Outcome, status: i32) -> Result<(), String> {
    if o.status == status {
        Ok(())
    } else {
        Err(format!("expected exit status {status}, got {}", o.status))
    }
}

pub fn expect_stdout(o: &Outcome, want: &str) -> Result<(), String> {
    if o.stdout == want.as_bytes() {
        Ok(())
    } else {
        Err(format!(
            "stdout is not what was expected:\n{}",
            diff(want.as_bytes(), &o.stdout).replace("native", "expected")
        ))
    }
}

pub fn expect_stdout_has_line(o: &Outcome, line: &str) -> Result<(), String> {
    if o.stdout_lines().iter().any(|l| l == line) {
        Ok(())
    } else {
        Err(format!("stdout lacks the line {line:?}"))
    }
}

/// For the `check(...)` style programs: exit 0, last line "all ok", no line ending in FAIL.
pub fn expect_all_ok(o: &Outcome) -> Result<(), String> {
    let lines = o.stdout_lines();
    let failed: Vec<&String> = lines.iter().filter(|l| l.ends_with(": FAIL")).collect();
    if !failed.is_empty() {
        return Err(format!("failed checks: {failed:?}"));
    }
    if lines.last().map(String::as_str) != Some("all ok") {
        return Err("the program did not reach its final \"all ok\"".into());
    }
    expect_status(o, 0)
}

pub fn all(results: impl IntoIterator<Item = Result<(), String>>) -> Result<(), String> {
    let errs: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n"))
    }
}

// ---------------------------------------------------------------------------------------
// Host footprint
// ---------------------------------------------------------------------------------------

/// Bytes of host memory backing the application memory of the sandbox whose `rvisor`
/// process is `root`: the allocated blocks (st_blocks) of its memory file (the memfd named
/// `rvisor-memory`), seen through /proc/PID/fd in `root`'s process tree. The platform's own
/// memfds (systrap's per-stub windows, spare stubs started in the background) are not
/// application memory and change on their own schedule. This is the hook for the memory tests;
/// if the Sentry hides its descriptors (non-dumpable, another user), replace this with a
/// query the runtime offers (e.g. `rvisor usage`).
pub fn sandbox_memory_bytes(root: libc::pid_t) -> Result<u64, String> {
    let pids = process_tree(root);
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut errors = Vec::new();
    for pid in &pids {
        let dir = format!("/proc/{pid}/fd");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                errors.push(format!("{dir}: {e}"));
                continue;
            }
        };
        for entry in entries.flatten() {
            let Ok(target) = fs::read_link(entry.path()) else {
                continue;
            };
            if !target.as_os_str().as_bytes().starts_with(b"/memfd:rvisor-memory") {
                continue;
            }
            match fs::metadata(entry.path()) {
                Ok(m) => {
                    if seen.insert((m.dev(), m.ino())) {
                        total += m.blocks() * 512;
                    }
                }
                Err(e) => errors.push(format!("{}: {e}", entry.path().display())),
            }
        }
    }
    if seen.is_empty() {
        return Err(format!(
            "found no memfd in the sandbox's process tree {pids:?} (errors: {errors:?}); \
             the memory-file hook in tests/common needs wiring"
        ));
    }
    Ok(total)
}

/// Anonymous resident memory of a native process, bytes (RssAnon in /proc/PID/status).
pub fn native_anon_bytes(pid: libc::pid_t) -> Result<u64, String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .ok_or("no RssAnon line")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or("bad RssAnon line")?;
    Ok(kib * 1024)
}

/// `root` and all its descendants, from /proc/*/stat.
pub fn process_tree(root: libc::pid_t) -> Vec<libc::pid_t> {
    let mut children: BTreeMap<libc::pid_t, Vec<libc::pid_t>> = BTreeMap::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<libc::pid_t>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name is in parentheses and may contain spaces: parse after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c);
        }
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------
// Misc
// ---------------------------------------------------------------------------------------

pub fn cstring(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

/// A deterministic pseudo-random byte string.
pub fn pseudo_random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Network namespaces
// ---------------------------------------------------------------------------------------

/// A network namespace of the test's own (`ip netns`), with a veth pair between
/// it and the host: `10.NET.N.1/24` on the host's end, `10.NET.N.2/24` on the
/// namespace's, which routes by default through the host's end. N counts the
/// namespaces this test process made; each test file takes its own NET, so
/// that files run side by side do not share a subnet. Removed on drop.
pub struct Netns {
    pub name: String,
    pub host_if: String,
    pub ns_if: String,
    pub host_addr: std::net::Ipv4Addr,
    pub ns_addr: std::net::Ipv4Addr,
    /// fd00:NET:N::1 and ::2 (/64), usable at once (no duplicate detection).
    pub host_addr6: std::net::Ipv6Addr,
    pub ns_addr6: std::net::Ipv6Addr,
}

impl Netns {
    pub fn new(net: u8) -> Result<Netns, String> {
        static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let ns = Netns {
            name: format!("rvisor-test-{pid}-{n}"),
            host_if: format!("rvh{}{n}", pid % 10000),
            ns_if: format!("rvn{}{n}", pid % 10000),
            host_addr: std::net::Ipv4Addr::new(10, net, n, 1),
            ns_addr: std::net::Ipv4Addr::new(10, net, n, 2),
            host_addr6: std::net::Ipv6Addr::new(0xfd00, net.into(), n.into(), 0, 0, 0, 0, 1),
            ns_addr6: std::net::Ipv6Addr::new(0xfd00, net.into(), n.into(), 0, 0, 0, 0, 2),
        };
        let ip = |args: &str| -> Result<(), String> {
            let o = Command::new("ip").args(args.split_whitespace()).output().map_err(|e| format!("ip {args}: {e}"))?;
            if o.status.success() { Ok(()) } else { Err(format!("ip {args}: {}", String::from_utf8_lossy(&o.stderr))) }
        };
        let Netns { name, host_if, ns_if, host_addr, ns_addr, host_addr6, ns_addr6 } = &ns;
        ip(&format!("netns add {name}"))?;
        ip(&format!("link add {host_if} type veth peer name {ns_if}"))?;
        ip(&format!("link set {ns_if} netns {name}"))?;
        ip(&format!("addr add {host_addr}/24 dev {host_if}"))?;
        ip(&format!("link set {host_if} up"))?;
        ip(&format!("-n {name} addr add {ns_addr}/24 dev {ns_if}"))?;
        ip(&format!("-n {name} link set {ns_if} up"))?;
        ip(&format!("-n {name} link set lo up"))?;
        ip(&format!("-n {name} route add default via {host_addr}"))?;
        ip(&format!("addr add {host_addr6}/64 dev {host_if} nodad"))?;
        ip(&format!("-n {name} addr add {ns_addr6}/64 dev {ns_if} nodad"))?;
        Ok(ns)
    }

    /// The path a network namespace is joined by.
    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    /// What the shell command `script` prints, run in the namespace.
    pub fn ip_netns_sh(&self, script: &str) -> Result<String, String> {
        let o = Command::new("ip").args(["netns", "exec", &self.name, "sh", "-c", script]).output().map_err(|e| format!("{script}: {e}"))?;
        if !o.status.success() {
            return Err(format!("ip netns exec {} sh -c {script:?}: {}", self.name, String::from_utf8_lossy(&o.stderr)));
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// What `ip -n NAME ARGS` prints.
    pub fn ip(&self, args: &str) -> Result<String, String> {
        let o = Command::new("ip").args(["-n", &self.name]).args(args.split_whitespace()).output().map_err(|e| format!("ip {args}: {e}"))?;
        if !o.status.success() {
            return Err(format!("ip -n {} {args}: {}", self.name, String::from_utf8_lossy(&o.stderr)));
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// Runs `cmd` (an rvisor command whose process is oci_init's `fds` mode) with two
/// host pipes as its descriptors 3 and 4: 3 one the process writes, 4 one
/// holding `input` for it to read. Its output must be `want`, and what reached
/// the first pipe oci_init's line.
pub fn runs_with_pipes_at_3_and_4(mut cmd: Command, input: &str, want: &str) -> Result<(), String> {
    use nix::fcntl::OFlag;
    use std::os::fd::AsRawFd;
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    let (in_r, in_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    nix::unistd::write(&in_w, input.as_bytes()).map_err(|e| e.to_string())?;
    drop(in_w);
    let (w, r) = (out_w.as_raw_fd(), in_r.as_raw_fd());
    // SAFETY: between fork and exec the closure makes only async-signal-safe
    // calls (fcntl, dup2) on descriptors this process keeps open until then.
    unsafe {
        cmd.pre_exec(move || {
            // Both above 4 first, so that neither dup2 overwrites the other;
            // dup2 leaves 3 and 4 open across exec, the rest close.
            let (w, r) = (libc::fcntl(w, libc::F_DUPFD_CLOEXEC, 100), libc::fcntl(r, libc::F_DUPFD_CLOEXEC, 100));
            if w < 0 || r < 0 || libc::dup2(w, 3) < 0 || libc::dup2(r, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let o = run(cmd, Input::Bytes(Vec::new()));
    // Ours gone, the first pipe ends where the command's writes did.
    drop((out_w, in_r));
    let mut written = String::new();
    let _ = fs::File::from(out_r).read_to_string(&mut written);
    expect_status(&o, 0)?;
    if o.stdout_str() != want || written != "written to fd 3\n" {
        return Err(format!("want {want:?} and a line on fd 3, got {written:?}:\n{}", o.describe()));
    }
    Ok(())
}
