//! The request the sandbox process boots from.
//!
//! `rvisor do`, `create` and `run` re-execute the binary as `rvisor boot
//! --request-fd N` with an empty environment, so that no host process shows the
//! program's name, arguments or environment in /proc; the request travels as
//! JSON in a memfd.

use rvisor_kernel::MountFlags;
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Seek, Write};
use std::os::fd::{OwnedFd, RawFd};
use std::path::PathBuf;

/// Everything the sandbox needs to boot.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub platform: String,
    pub strace: bool,
    pub debug: bool,
    /// The Sentry's seccomp filter logs calls it lacks instead of killing the sandbox.
    #[serde(default)]
    pub debug_seccomp: bool,
    /// systrap patches hot syscall sites (`--systrap-patch`, on unless turned off).
    #[serde(default)]
    pub systrap_patch: bool,
    pub log: Option<PathBuf>,
    /// The sandbox's first program.
    pub process: Process,
    /// The host directory the sandbox's root shows (read-only, under an
    /// in-memory overlay).
    pub root: PathBuf,
    /// Whether the root mount refuses writes altogether.
    pub root_read_only: bool,
    /// The root's propagation type inside the sandbox (OCI
    /// `linux.rootfsPropagation`, as mount(2)'s flags; 0: private).
    #[serde(default)]
    pub root_propagation: u64,
    pub hostname: Option<String>,
    /// What is mounted over the root, in order.
    pub mounts: Vec<MountRequest>,
    /// Set for an OCI container: where its state lives, and whether init waits
    /// for `rvisor start`.
    pub container: Option<ContainerBoot>,
    /// The cgroup directories the sandbox joins before it starts anything.
    pub cgroups: Vec<PathBuf>,
    /// What the sandbox's inet sockets reach, in the network namespace
    /// `netns` names if any (an OCI container's, `do --netns`), else the caller's.
    pub network: Network,
    pub netns: Option<PathBuf>,
    /// net.ipv4.ip_unprivileged_port_start, if the spec's sysctls set it.
    pub unprivileged_port_start: Option<u16>,
    /// The host OOM killer's score adjustment for the whole sandbox (the
    /// process's oomScoreAdj, which Kubernetes sets by QoS class).
    pub oom_score_adj: Option<i32>,
    /// Host ports forwarded into the sandbox (`do -p`).
    #[serde(default)]
    pub publish: Vec<crate::publish::Publish>,
    /// For a pod's container: the pod sandbox whose sandbox it joins instead
    /// of booting one (`pod.rs`).
    #[serde(default)]
    pub pod: Option<PodMember>,
    /// The spec's seccomp profile, compiled (`seccomp.rs`).
    #[serde(default)]
    pub seccomp: Option<Vec<crate::seccomp::Insn>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodMember {
    /// The state directory of the pod's sandbox container.
    pub sandbox: PathBuf,
    /// It shares the sandbox container's PID namespace (the spec names one by
    /// path, as for a pod with `shareProcessNamespace`).
    pub share_pids: bool,
}

/// The sandbox's network (`--network`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// The sandbox's own loopback only.
    #[default]
    None,
    /// Inet sockets are host sockets.
    Host,
    /// The sandbox's own stack on the namespace's interfaces, which it takes
    /// from the host (`network.rs`).
    Sandbox,
}

/// A program to start in the sandbox: init, or one `rvisor exec` adds.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    /// The program: a path in the sandbox, or a name to look up on the PATH.
    pub path: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// The working directory (a path in the sandbox).
    pub cwd: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// Its standard streams are a sandbox terminal bridged to the (host)
    /// terminal on the sandbox process's standard input and output.
    pub terminal: bool,
    /// Capability sets (bit n: capability n), if not what its uid gives.
    pub caps: Option<CapSets>,
    /// Resource limits: (RLIMIT_* number, soft, hard).
    pub rlimits: Vec<(usize, u64, u64)>,
    /// noNewPrivileges.
    pub no_new_privs: bool,
    /// How many descriptors it starts with at 3, 4, …, from the host process
    /// that asks for it (runc's --preserve-fds and LISTEN_FDS). They travel as
    /// that process's own 3, 4, … (inherited) or after its standard streams
    /// (SCM_RIGHTS).
    pub preserved_fds: u32,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub bounding: u64,
    #[serde(default)]
    pub ambient: u64,
}

/// One mount, from the OCI spec's `mounts`, with its flags (`MountFlags`' bits:
/// read-only, nosuid, nodev, noexec).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountRequest {
    pub target: String,
    pub kind: MountKind,
    pub flags: u32,
    /// Propagation changes (mount(2) flags) the mount takes, in order: its OCI
    /// options `rshared`, `slave` and the like.
    #[serde(default)]
    pub propagation: Vec<u64>,
}

impl MountRequest {
    pub fn read_only(&self) -> bool {
        self.flags & MountFlags::RDONLY != 0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MountKind {
    Proc,
    Sysfs,
    /// cgroup2: the container's cgroup as the sandbox shows it.
    Cgroup,
    Devfs,
    Devpts,
    /// Its root's mode and its `size=` in bytes.
    Tmpfs { mode: u32, size: Option<u64> },
    /// A host file or directory.
    Bind { source: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerBoot {
    /// The container's directory under the runtime's root.
    pub state_dir: PathBuf,
    /// `rvisor run`: start at once instead of waiting for `rvisor start`.
    pub start_now: bool,
    /// Lead a new session whose controlling terminal is the one on standard
    /// input (a console socket's pty).
    pub new_session: bool,
    /// Its state, which the sandbox completes (pid) and keeps.
    pub state: crate::container::State,
}

/// Writes `value` as JSON into a fresh memfd that survives exec: how a request
/// reaches a re-executed rvisor without showing in its command line.
pub fn to_memfd(value: &impl Serialize) -> io::Result<OwnedFd> {
    let fd = nix::sys::memfd::memfd_create(c"rvisor-request", nix::sys::memfd::MemFdCreateFlag::empty()).map_err(io::Error::from)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(&serde_json::to_vec(value).map_err(io::Error::other)?)?;
    f.rewind()?;
    Ok(OwnedFd::from(f))
}

/// Reads (and closes) what [`to_memfd`] wrote, inherited as descriptor `fd`.
pub fn from_fd<T: for<'a> Deserialize<'a>>(fd: RawFd) -> io::Result<T> {
    if fd < 3 {
        return Err(io::Error::other("bad request descriptor"));
    }
    let mut buf = Vec::new();
    std::fs::File::open(format!("/proc/self/fd/{fd}"))?.read_to_end(&mut buf)?;
    nix::unistd::close(fd).map_err(io::Error::from)?;
    serde_json::from_slice(&buf).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::IntoRawFd;

    #[test]
    fn round_trips_through_a_memfd() {
        let r = Request {
            platform: "ptrace".into(),
            strace: true,
            log: Some("/tmp/x".into()),
            process: Process { path: b"/bin/true".to_vec(), argv: vec![b"true".to_vec(), vec![0xff]], terminal: true, ..Default::default() },
            root: "/".into(),
            mounts: vec![MountRequest { target: "/data".into(), kind: MountKind::Bind { source: "/srv".into() }, flags: MountFlags::RDONLY, propagation: vec![] }],
            network: Network::Sandbox,
            netns: Some("/var/run/netns/pod".into()),
            container: Some(ContainerBoot {
                state_dir: "/run/rvisor/c1".into(),
                start_now: false,
                new_session: true,
                state: crate::container::State {
                    oci_version: "1.0.2".into(),
                    id: "c1".into(),
                    pid: 0,
                    status: crate::container::Status::Created,
                    bundle: "/b".into(),
                    rootfs: "/b/rootfs".into(),
                    created: "2026-11-26T18:00:00.000000000Z".into(),
                    owner: String::new(),
                    annotations: Default::default(),
                    pid_start: None,
                    cgroups: Vec::new(),
                    sandbox: None,
                },
            }),
            ..Default::default()
        };
        let fd = to_memfd(&r).unwrap().into_raw_fd();
        assert_eq!(from_fd::<Request>(fd).unwrap(), r);
        assert!(from_fd::<Request>(1).is_err());
    }
}
