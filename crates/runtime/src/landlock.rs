//! The Sentry's Landlock domain: what its seccomp filter (`filter.rs`) cannot
//! see. seccomp reads a call's number and arguments, never a path, a pid or a
//! port: `openat(procfd, "../etc/passwd")` passes it, and so do `kill` and
//! `ptrace(PTRACE_SEIZE)` of any process the Sentry's user may reach. Landlock
//! judges the object: the file a path resolves to, the process a signal or a
//! tracer reaches, the TCP port of a bind or connect.
//!
//! Landlock restricts the calling thread and what it starts afterwards (the
//! kernels this was tested on, Landlock ABI 7, have no way to restrict a whole
//! process at once), and every `landlock_restrict_self` makes a new domain, so
//! the Sentry enters its domain in two layers, on its main thread:
//! - `enter_boot_domain`, first thing in `boot`, while the main thread is the
//!   only one and before any process is forked: signal and abstract-socket
//!   scoping, and the TCP rights of the network mode. Every thread, the gofer, the
//!   zygote and every stub inherit this one domain, so the Sentry still signals
//!   (and, on ptrace, traces) its stubs, which were forked inside it, and can
//!   signal or trace nothing outside it.
//! - `restrict_files`, once the kernel is built, by the main thread, before it
//!   starts the threads to come (every task thread, which serve the app's
//!   calls): the file system, read-only beneath /proc only. It names no scope,
//!   so it does not narrow whom the Sentry may signal; but a tracer must be in
//!   its tracee's domain or an outer one, so on ptrace the zygote is forked
//!   after it, by a thread that has it. The threads started while the platform
//!   and kernel were built keep only the first layer (see ARCHITECTURE.md).
//!
//! Both are best effort: a kernel without Landlock (or without a right) runs
//! the Sentry without it, and `tracing::debug` says what was enforced.

use crate::request::Network;
use ::landlock::{Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, RestrictionStatus, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetError, Scope, ABI};

/// The Landlock ABI this was written and tested against (Linux 6.15): the crate
/// drops what an older kernel lacks, and a newer kernel's rights are not asked
/// for until someone has run the suite under them.
const ABI_TESTED: ABI = ABI::V7;

/// The TCP rights a network mode hands over to Landlock (and allows on no port).
/// `none`: the Sentry binds and connects no host TCP socket after setup (`-p`'s
/// listeners are bound before). `sandbox`: the loopback mirror binds host
/// listeners at run time, but nothing connects. `host`: the app's sockets are
/// host sockets, on any port.
fn tcp_handled(network: Network) -> BitFlags<AccessNet> {
    match network {
        Network::None => AccessNet::BindTcp | AccessNet::ConnectTcp,
        Network::Sandbox => AccessNet::ConnectTcp.into(),
        Network::Host => BitFlags::EMPTY,
    }
}

/// The first layer (see the module's comment): no signal to, and no ptrace of,
/// a process outside the domain; no connection to an abstract unix socket made
/// outside it; and the network mode's TCP rights. Applies to the calling thread
/// and everything it starts from now on.
pub fn enter_boot_domain(network: Network) -> Result<RestrictionStatus, String> {
    let boot_domain = || -> Result<RestrictionStatus, RulesetError> {
        let mut ruleset = Ruleset::default().set_compatibility(CompatLevel::BestEffort).scope(Scope::from_all(ABI_TESTED))?;
        let tcp = tcp_handled(network);
        // An empty set of handled rights is an error to the crate, not "nothing".
        if !tcp.is_empty() {
            ruleset = ruleset.handle_access(tcp)?;
        }
        ruleset.create()?.restrict_self()
    };
    boot_domain().map_err(|e| e.to_string())
}

/// The second layer: every file-system right the ABI knows is handled, and only
/// reading files and listing directories beneath the host /proc (the descriptor
/// `rvisor_platform::host_proc` reads through) is allowed. What the Sentry uses
/// after the seal is already open (gofer files, memfds, /dev/kvm, the state
/// file), and Landlock checks a file's rights when it is opened, not later.
pub fn restrict_files() -> Result<RestrictionStatus, String> {
    let dir = rvisor_platform::host_proc::dir().ok_or("cannot open the host's /proc")?;
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let files = || -> Result<RestrictionStatus, RulesetError> {
        Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(AccessFs::from_all(ABI_TESTED))?
            .create()?
            .add_rule(PathBeneath::new(dir, read))?
            .restrict_self()
    };
    files().map_err(|e| e.to_string())
}

/// Logs what a layer enforced, or why it could not be set up: the Sentry runs
/// on either way (as it does without seccomp on a host without it).
pub fn report(layer: &str, status: Result<RestrictionStatus, String>) {
    match status {
        Ok(s) => tracing::debug!("landlock {layer}: {:?} (landlock {:?}, no_new_privs {})", s.ruleset, s.landlock, s.no_new_privs),
        Err(e) => tracing::warn!("landlock {layer}: not enforced: {e}"),
    }
}

/// How many threads the process has: the first layer covers only threads
/// started after it, so `boot` says so if any was started before.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::landlock::RulesetStatus;
    use std::io::ErrorKind;
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::process::ExitStatusExt;

    /// Set, this test binary run again is a probe (see `probe`): which one.
    const PROBE: &str = "RVISOR_LANDLOCK_PROBE";
    /// A port the parent listens on, for the TCP probes.
    const PORT: &str = "RVISOR_LANDLOCK_PORT";

    /// Runs `probe` in a child process (this test binary again), so that only
    /// the child is restricted; its output when it got to the end.
    fn run(what: &str, port: Option<u16>) -> String {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["--exact", "landlock::tests::probe", "--nocapture", "--test-threads=1"]).env(PROBE, what);
        if let Some(p) = port {
            cmd.env(PORT, p.to_string());
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "probe {what}: {:?} {}\n{}", out.status.signal(), stdout, String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("probe survived"), "probe {what}: {stdout}");
        stdout
    }

    #[test]
    fn files_are_read_only_beneath_proc() {
        run("files", None);
    }

    #[test]
    fn signals_and_abstract_sockets_reach_only_the_domain() {
        run("signals", None);
    }

    #[test]
    fn tcp_follows_the_network_mode() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accept (and drop) what the probes connect, so none waits on a backlog.
        std::thread::spawn(move || for _ in listener.incoming() {});
        for mode in ["tcp-none", "tcp-sandbox", "tcp-host"] {
            run(mode, Some(port));
        }
    }

    fn enforced(status: Result<RestrictionStatus, String>) {
        let status = status.unwrap();
        assert_eq!(status.ruleset, RulesetStatus::FullyEnforced, "{status:?}");
    }

    fn denied<T: std::fmt::Debug>(what: &str, r: std::io::Result<T>) {
        match r {
            Err(e) => assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{what}: {e}"),
            Ok(v) => panic!("{what} was allowed: {v:?}"),
        }
    }

    /// After `restrict_files`, host files are out of reach even through the /proc
    /// descriptor (`..`, an absolute path, a magic link), while /proc itself
    /// reads as the Sentry reads it.
    fn probe_files() {
        let before = rvisor_platform::host_proc::read("../etc/hostname");
        assert!(before.is_ok(), "the host's /etc/hostname is readable before: {before:?}");
        enforced(restrict_files());
        denied("openat(procfd, ../etc/hostname)", rvisor_platform::host_proc::read("../etc/hostname"));
        denied("openat(procfd, /etc/hostname)", rvisor_platform::host_proc::read("/etc/hostname"));
        denied("openat(procfd, self/root/etc/hostname)", rvisor_platform::host_proc::read("self/root/etc/hostname"));
        denied("open(/etc/hostname)", std::fs::File::open("/etc/hostname"));
        denied("creating /tmp/x", std::fs::File::create("/tmp/rvisor-landlock-probe"));
        let status = rvisor_platform::host_proc::read_string("self/status").unwrap();
        assert!(status.starts_with("Name:"), "{status}");
        assert!(rvisor_platform::host_proc::read_string("stat").unwrap().starts_with("cpu "));
    }

    /// After `enter_boot_domain`, the parent (outside the domain) cannot be
    /// signalled, not even probed with signal 0; a child started afterwards (as
    /// the zygote and stubs are) is inside it and can be. An abstract unix
    /// socket made before the domain cannot be connected to.
    fn probe_signals() {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
        let parent = Pid::from_raw(std::os::unix::process::parent_id() as i32);
        kill(parent, None).expect("the parent is reachable before");
        let name = SocketAddr::from_abstract_name(format!("rvisor-landlock-probe-{}", std::process::id())).unwrap();
        let _outside = UnixListener::bind_addr(&name).unwrap();
        UnixStream::connect_addr(&name).expect("the abstract socket is reachable before");
        enforced(enter_boot_domain(Network::Host));
        assert_eq!(kill(parent, None), Err(nix::errno::Errno::EPERM));
        let connected = UnixStream::connect_addr(&name);
        assert_eq!(connected.as_ref().map_err(|e| e.raw_os_error()).err(), Some(Some(libc::EPERM)), "{connected:?}");
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        kill(pid, None).expect("a child of the domain is reachable");
        kill(pid, Signal::SIGKILL).unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    }

    fn probe_tcp(network: Network) {
        let port: u16 = std::env::var(PORT).unwrap().parse().unwrap();
        TcpStream::connect(("127.0.0.1", port)).expect("the port is reachable before");
        enforced(enter_boot_domain(network));
        let connected = TcpStream::connect(("127.0.0.1", port));
        let bound = TcpListener::bind("127.0.0.1:0");
        match network {
            Network::None => {
                denied("connect", connected);
                denied("bind", bound);
            }
            // The loopback mirror's listeners.
            Network::Sandbox => {
                denied("connect", connected);
                bound.unwrap();
            }
            Network::Host => {
                connected.unwrap();
                bound.unwrap();
            }
        }
    }

    /// On a kernel without Landlock (here: its calls answered ENOSYS by a
    /// seccomp filter, as a kernel built without it answers), both layers are
    /// reported not enforced and the Sentry goes on.
    #[test]
    fn a_kernel_without_landlock_is_no_failure() {
        run("no-landlock", None);
    }

    fn probe_without_landlock() {
        use seccompiler::{SeccompAction, SeccompFilter, TargetArch};
        let calls = [libc::SYS_landlock_create_ruleset, libc::SYS_landlock_add_rule, libc::SYS_landlock_restrict_self];
        let rules = calls.iter().map(|&nr| (nr, Vec::new())).collect();
        let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::ENOSYS as u32), TargetArch::x86_64).unwrap();
        let program: seccompiler::BpfProgram = filter.try_into().unwrap();
        seccompiler::apply_filter(&program).unwrap();
        for status in [enter_boot_domain(Network::None), restrict_files()] {
            let status = status.unwrap();
            assert_eq!(status.ruleset, RulesetStatus::NotEnforced, "{status:?}");
            assert_eq!(status.landlock, ::landlock::LandlockStatus::NotImplemented, "{status:?}");
        }
        std::fs::File::open("/etc/hostname").expect("nothing was restricted");
    }

    #[test]
    fn probe() {
        let Ok(what) = std::env::var(PROBE) else { return };
        match what.as_str() {
            "files" => probe_files(),
            "signals" => probe_signals(),
            "tcp-none" => probe_tcp(Network::None),
            "tcp-sandbox" => probe_tcp(Network::Sandbox),
            "tcp-host" => probe_tcp(Network::Host),
            "no-landlock" => probe_without_landlock(),
            other => panic!("no probe {other}"),
        }
        println!("probe survived");
    }
}
