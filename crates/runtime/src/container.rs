//! A container's state on the host: `<root>/<id>/state.json`, written by its
//! sandbox (created, running, stopped) and read by every other command.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// Where containers live unless `--root` says otherwise.
pub const DEFAULT_ROOT: &str = "/run/rvisor";

const STATE_FILE: &str = "state.json";

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    /// Frozen by `rvisor pause` (its cgroup's freezer).
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The OCI state of a container, as `rvisor state` prints it, and when its
/// sandbox process started (to tell it from a later process with its pid).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    /// The sandbox process: the container's init as the host sees it.
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
    /// The sandbox's cgroup directories, removed with the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroups: Vec<PathBuf>,
    /// For a pod's container: the id of the pod sandbox container whose
    /// sandbox runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// A container id as runc accepts it; it names a directory.
pub fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty() && id != "." && id != ".." && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok { Ok(()) } else { Err(format!("invalid container id {id:?}")) }
}

impl State {
    pub fn dir(root: &Path, id: &str) -> PathBuf {
        root.join(id)
    }

    /// The container `id`, with its status as of now: a sandbox process that is
    /// gone (or is another process now) means stopped.
    pub fn load(root: &Path, id: &str) -> Result<State, String> {
        check_id(id)?;
        let path = State::dir(root, id).join(STATE_FILE);
        let text = match read_locked(&path) {
            // Empty: the sandbox has created the file but not written it yet.
            Ok(t) if t.is_empty() => return Err(format!("container {id} does not exist")),
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(format!("container {id} does not exist")),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut s: State = serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if s.status != Status::Stopped && !s.sandbox_alive() {
            s.status = Status::Stopped;
        }
        Ok(s)
    }

    /// Writes the state file (see [`State::write_to`]).
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        self.write_to(&State::open_file(dir)?)
    }

    /// The state file in `dir`, created if need be. The sandbox opens it once, before
    /// its seccomp filter, which lets it open no file by name.
    pub fn open_file(dir: &Path) -> io::Result<std::fs::File> {
        std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(dir.join(STATE_FILE))
    }

    /// Rewrites the state file in place under an exclusive lock (readers take a shared
    /// one), so that a reader never sees half of it and every writer, the sandbox and
    /// `rvisor pause`, writes the same file.
    pub fn write_to(&self, file: &std::fs::File) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let bytes = serde_json::to_vec(self).map_err(io::Error::other)?;
        file.lock()?;
        let written = file.write_all_at(&bytes, 0).and_then(|()| file.set_len(bytes.len() as u64));
        let unlocked = file.unlock();
        written.and(unlocked)
    }

    pub fn sandbox_alive(&self) -> bool {
        matches!(host_process(self.pid), Some((state, start)) if state != 'Z' && state != 'X' && Some(start) == self.pid_start)
    }

    /// The state as `rvisor state` prints it (without rvisor's own fields).
    pub fn public(&self) -> State {
        State { pid_start: None, cgroups: Vec::new(), sandbox: None, pid: if self.status == Status::Stopped { 0 } else { self.pid }, ..self.clone() }
    }
}

/// A state file's contents, read under a shared lock (see [`State::write_to`]).
fn read_locked(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    file.lock_shared()?;
    let mut text = Vec::new();
    let read = file.read_to_end(&mut text);
    let unlocked = file.unlock();
    read.and(unlocked).map(|_| text)
}

/// A host process's state letter and start time (clock ticks after boot), from
/// /proc/PID/stat; `None` if there is no such process.
pub fn host_process(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let stat = rvisor_platform::host_proc::read_string(&format!("{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Every container under `root`, by id.
pub fn all(root: &Path) -> Vec<State> {
    let mut out: Vec<State> = match std::fs::read_dir(root) {
        Ok(entries) => entries.flatten().filter_map(|e| State::load(root, &e.file_name().to_string_lossy()).ok()).collect(),
        Err(_) => Vec::new(),
    };
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Now, as RFC 3339 in UTC with nanoseconds, as runc writes `created`.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z", rem / 3600, rem / 60 % 60, rem % 60, d.subsec_nanos())
}

/// The pipe a booting sandbox tells `rvisor create` on whether it is ready. It
/// says one thing, once, and closes: the reader reads to the end.
pub struct ReadyPipe(std::sync::Mutex<Option<std::fs::File>>);

/// What the sandbox writes on the pipe once it is ready.
const READY: &str = "ok";

impl ReadyPipe {
    /// The pipe's write end, inherited as descriptor `fd`: reopened through
    /// /proc (a pipe opens as itself), so that it has an owner.
    pub fn from_raw(fd: i32) -> ReadyPipe {
        let file = std::fs::OpenOptions::new().write(true).open(format!("/proc/self/fd/{fd}")).ok();
        let _ = nix::unistd::close(fd);
        ReadyPipe(std::sync::Mutex::new(file))
    }

    fn say(&self, msg: &str) {
        use std::io::Write;
        if let Some(mut f) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = f.write_all(msg.as_bytes());
        }
    }

    pub fn ready(&self) {
        self.say(READY)
    }

    pub fn fail(&self, msg: &str) {
        self.say(msg)
    }

    /// Waits for what the sandbox says on the read end `r`: Ok once it is
    /// ready, else why it is not.
    pub fn wait(r: std::os::fd::OwnedFd) -> Result<(), String> {
        use std::io::Read;
        let mut said = String::new();
        let _ = std::fs::File::from(r).read_to_string(&mut said);
        match said.as_str() {
            READY => Ok(()),
            "" => Err("the sandbox ended before it was ready".into()),
            why => Err(why.to_string()),
        }
    }
}

/// Why a container's sandbox could not boot.
pub enum BootFailure {
    Exec(rvisor_kernel::ExecError),
    Internal(String),
}

/// The host files a container's sandbox keeps in its state directory, made
/// before the Sentry loses the host's files (Landlock, `landlock.rs`): its
/// state file, open for writing, and its control socket, listening. A boot
/// that fails after that leaves the directory to `create`, which removes it.
pub struct HostFiles {
    state: std::fs::File,
    control: std::os::fd::OwnedFd,
}

impl HostFiles {
    pub fn open(dir: &Path) -> Result<HostFiles, String> {
        let state = State::open_file(dir).map_err(|e| format!("state: {e}"))?;
        let control = crate::control::listen(&dir.join(crate::control::SOCKET)).map_err(|e| format!("control socket: {e}"))?;
        Ok(HostFiles { state, control })
    }
}

/// Runs a container in its sandbox: loads init, serves the control socket,
/// records the state, tells `rvisor create` it is ready, and when init ends,
/// records that too and returns how it ended.
pub fn serve(kernel: &std::sync::Arc<rvisor_kernel::Kernel>, gofer: std::sync::Arc<rvisor_gofer::Client>, spec: rvisor_kernel::ProgramSpec, boot: crate::request::ContainerBoot, files: HostFiles, ready: Option<&ReadyPipe>, seal: impl FnOnce()) -> Result<rvisor_kernel::ExitStatus, BootFailure> {
    kernel.make_dirs(&spec.cwd).map_err(|e| BootFailure::Internal(format!("process cwd: {e}")))?;
    let HostFiles { state: file, control: listener } = files;
    let init = kernel.create_init(spec).map_err(BootFailure::Exec)?;
    let mut state = boot.state;
    state.pid = std::process::id() as i32;
    state.pid_start = host_process(state.pid).map(|(_, start)| start);
    let (waiting, start_now) = if boot.start_now {
        state.status = Status::Running;
        (None, Some(init))
    } else {
        (Some(init), None)
    };
    let shared = std::sync::Arc::new(std::sync::Mutex::new((state, file)));
    let ending = crate::control::serve(kernel.clone(), gofer, listener, waiting, shared.clone()).map_err(|e| BootFailure::Internal(format!("control socket: {e}")))?;
    save_shared(&shared).map_err(|e| BootFailure::Internal(format!("state: {e}")))?;
    // Set up: the control socket listens, the state file is open.
    seal();
    if let Some(init) = start_now {
        init.start();
    }
    if let Some(r) = ready {
        r.ready();
    }
    let status = kernel.wait_init();
    ending.wait_idle();
    {
        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
        s.0.status = Status::Stopped;
    }
    let _ = save_shared(&shared);
    Ok(status)
}

/// A container's state as its sandbox keeps it, with its open state file.
pub type SharedState = std::sync::Arc<std::sync::Mutex<(State, std::fs::File)>>;

pub fn save_shared(shared: &SharedState) -> io::Result<()> {
    let s = shared.lock().unwrap_or_else(|e| e.into_inner());
    s.0.write_to(&s.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_names() {
        assert!(check_id("abc-1.2_x").is_ok());
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn this_process_is_alive_and_a_stale_one_is_not() {
        let me = std::process::id() as i32;
        let (_, start) = host_process(me).unwrap();
        let mut s = State {
            oci_version: "1.0.2".into(),
            id: "x".into(),
            pid: me,
            status: Status::Running,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            owner: String::new(),
            annotations: BTreeMap::new(),
            pid_start: Some(start),
            cgroups: Vec::new(),
            sandbox: None,
        };
        assert!(s.sandbox_alive());
        s.pid_start = Some(start + 1);
        assert!(!s.sandbox_alive());
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 30, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T", "{t}");
    }
}
