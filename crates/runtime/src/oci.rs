//! An OCI bundle's `config.json`, read with the `oci-spec` crate, turned into
//! what the sandbox boots from.
//!
//! The sandbox is its own set of namespaces, so `linux.namespaces`, ID mappings
//! and the host-side hardening (seccomp, capabilities, masked paths) of the spec
//! do not apply; the root and the mounts do, as runsc reads them.

use crate::request::{CapSets, MountKind, MountRequest, Process};
use oci_spec::runtime::{Mount, Spec};
use rvisor_kernel::MountFlags;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What a bundle asks for, resolved against the bundle's directory.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub root: PathBuf,
    pub root_read_only: bool,
    /// `linux.rootfsPropagation`, as mount(2)'s flags (0: private).
    pub root_propagation: u64,
    pub process: Process,
    pub mounts: Vec<MountRequest>,
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Bundle, String> {
        let dir = std::fs::canonicalize(dir).map_err(|e| format!("bundle {}: {e}", dir.display()))?;
        let config = dir.join("config.json");
        let spec = Spec::load(&config).map_err(|e| format!("{}: {e}", config.display()))?;
        let root = spec.root().as_ref().ok_or("config.json: no root")?;
        let root_path = dir.join(root.path());
        if !root_path.is_dir() {
            return Err(format!("root {}: not a directory", root_path.display()));
        }
        let p = spec.process().as_ref().ok_or("config.json: no process")?;
        let process = process_of(p)?;
        let mounts = spec.mounts().iter().flatten().filter_map(|m| mount_of(&dir, m).transpose()).collect::<Result<_, _>>()?;
        let propagation = spec.linux().as_ref().and_then(|l| l.rootfs_propagation().clone()).unwrap_or_default();
        let root_propagation = propagation_flags(&propagation).ok_or_else(|| format!("config.json: rootfsPropagation {propagation:?} is not a propagation type"))?;
        Ok(Bundle { root_read_only: root.readonly().unwrap_or(false), root_propagation, root: root_path, process, mounts, spec, dir })
    }
}

/// mount(2)'s flags for an OCI propagation type (runc's names; "" is none: the
/// sandbox's mounts are private); None for an unknown one, which runc refuses.
fn propagation_flags(name: &str) -> Option<u64> {
    use rvisor_kernel::vfs::propagation::{MS_PRIVATE, MS_REC, MS_SHARED, MS_SLAVE, MS_UNBINDABLE};
    let (kind, rest) = match name.strip_prefix('r') {
        Some(rest) if !rest.is_empty() => (MS_REC, rest),
        _ => (0, name),
    };
    let kind = match rest {
        "" => return Some(0),
        "private" => kind | MS_PRIVATE,
        "slave" => kind | MS_SLAVE,
        "shared" => kind | MS_SHARED,
        "unbindable" => kind | MS_UNBINDABLE,
        _ => return None,
    };
    Some(kind)
}

/// The sandbox's view of an OCI process.
pub fn process_of(p: &oci_spec::runtime::Process) -> Result<Process, String> {
    let args = p.args().as_ref().filter(|a| !a.is_empty()).ok_or("process: args must not be empty")?;
    let cwd = p.cwd();
    if !cwd.is_absolute() {
        return Err(format!("process: cwd {} is not absolute", cwd.display()));
    }
    let user = p.user();
    Ok(Process {
        path: args[0].as_bytes().to_vec(),
        argv: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        envp: p.env().iter().flatten().map(|e| e.as_bytes().to_vec()).collect(),
        cwd: cwd.as_os_str().as_bytes().to_vec(),
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        terminal: p.terminal().unwrap_or(false),
        caps: Some(capabilities(p.capabilities().as_ref())),
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        rlimits: p.rlimits().iter().flatten().map(|r| Ok((rlimit_number(r)?, r.soft(), r.hard()))).collect::<Result<_, String>>()?,
        preserved_fds: 0,
    })
}

/// Linux's resource limit names, by number.
const RLIMITS: [&str; 16] = [
    "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
];

fn rlimit_number(r: &oci_spec::runtime::PosixRlimit) -> Result<usize, String> {
    let name = serde_json::to_value(r.typ()).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    RLIMITS.iter().position(|n| *n == name).ok_or_else(|| format!("process: unknown rlimit {name:?}"))
}

/// Linux's capability names, by number.
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
    "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
];

/// An OCI process's capability sets as bit masks; none at all when the spec
/// names none, as runc gives.
fn capabilities(c: Option<&oci_spec::runtime::LinuxCapabilities>) -> CapSets {
    let mask = |set: &Option<oci_spec::runtime::Capabilities>| {
        set.iter().flatten().filter_map(|cap| serde_json::to_value(cap).ok()).filter_map(|v| CAPABILITIES.iter().position(|n| Some(*n) == v.as_str())).fold(0u64, |m, n| m | 1 << n)
    };
    match c {
        None => CapSets::default(),
        Some(c) => CapSets { effective: mask(c.effective()), permitted: mask(c.permitted()), inheritable: mask(c.inheritable()), bounding: mask(c.bounding()), ambient: mask(c.ambient()) },
    }
}

/// One OCI mount; `None` for what the sandbox provides on its own (mqueue:
/// POSIX message queues work without one). A cgroup mount, v1 or v2, is the
/// sandbox's cgroup2 view of the container's cgroup.
fn mount_of(bundle: &Path, m: &Mount) -> Result<Option<MountRequest>, String> {
    let target = m.destination().to_string_lossy().into_owned();
    if !target.starts_with('/') {
        return Err(format!("mount destination {target} is not absolute"));
    }
    let options: Vec<&str> = m.options().iter().flatten().map(String::as_str).collect();
    let flags = mount_flags(&options);
    let fstype = m.typ().as_deref().unwrap_or("");
    let bind = fstype == "bind" || options.iter().any(|o| *o == "bind" || *o == "rbind");
    let kind = if bind {
        let source = m.source().as_ref().ok_or_else(|| format!("bind mount on {target}: no source"))?;
        let source = bundle.join(source);
        if !source.exists() {
            return Err(format!("bind mount on {target}: {}: No such file or directory", source.display()));
        }
        MountKind::Bind { source }
    } else {
        match fstype {
            "proc" => MountKind::Proc,
            "sysfs" => MountKind::Sysfs,
            "devpts" => MountKind::Devpts,
            "tmpfs" if target == "/dev" => MountKind::Devfs,
            "tmpfs" => MountKind::Tmpfs { mode: mode_option(&options).unwrap_or(0o1777), size: size_option(&options).map_err(|e| format!("mount on {target}: {e}"))? },
            "cgroup" | "cgroup2" => MountKind::Cgroup,
            "mqueue" => {
                tracing::debug!("mount on {target}: {fstype} is not mounted in the sandbox");
                return Ok(None);
            }
            other => return Err(format!("mount on {target}: unsupported file system type {other:?}")),
        }
    };
    // runc applies these in order once the mount is made.
    let propagation = options.iter().filter_map(|o| propagation_flags(o)).filter(|&f| f != 0).collect();
    Ok(Some(MountRequest { target, kind, flags, propagation }))
}

/// The mount options `mount_of` honours (`rvisor features`); others are
/// ignored, `mode=` and `size=` of tmpfs aside.
pub const MOUNT_OPTIONS: [&str; 18] = [
    "bind", "rbind", "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable",
];

/// The per-mount flags among OCI mount options: ro, nosuid, nodev, noexec (the
/// last of each pair with its opposite wins, as mount(8) reads them).
fn mount_flags(options: &[&str]) -> u32 {
    options.iter().fold(0, |flags, o| match *o {
        "ro" => flags | MountFlags::RDONLY,
        "rw" => flags & !MountFlags::RDONLY,
        "nosuid" => flags | MountFlags::NOSUID,
        "suid" => flags & !MountFlags::NOSUID,
        "nodev" => flags | MountFlags::NODEV,
        "dev" => flags & !MountFlags::NODEV,
        "noexec" => flags | MountFlags::NOEXEC,
        "exec" => flags & !MountFlags::NOEXEC,
        _ => flags,
    })
}

/// A tmpfs `mode=` option, in octal.
fn mode_option(options: &[&str]) -> Option<u32> {
    options.iter().find_map(|o| o.strip_prefix("mode=")).and_then(|m| u32::from_str_radix(m, 8).ok()).map(|m| m & 0o7777)
}

/// A tmpfs `size=` option, in bytes (Docker's /dev/shm is `size=65536k`).
fn size_option(options: &[&str]) -> Result<Option<u64>, String> {
    match options.iter().find_map(|o| o.strip_prefix("size=")) {
        Some(v) => rvisor_kernel::fs::tmpfs::parse_size(v).map(Some).ok_or_else(|| format!("bad tmpfs size {v:?}")),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mount_option_rvisor_features_names_changes_the_mount() {
        let base = ["ro", "nosuid", "nodev", "noexec"];
        for o in MOUNT_OPTIONS {
            let flags = mount_flags(&[o]) != 0 || mount_flags(&[&base[..], &[o]].concat()) != mount_flags(&base);
            let bind = matches!(o, "bind" | "rbind");
            assert!(flags || bind || propagation_flags(o).is_some_and(|f| f != 0), "{o} does nothing");
        }
        assert_eq!(mount_flags(&["noatime"]), 0, "an option not named is ignored");
    }

    #[test]
    fn reads_the_default_spec() {
        let dir = std::env::temp_dir().join(format!("rvisor-oci-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        Spec::default().save(dir.join("config.json")).unwrap();
        let b = Bundle::load(&dir).unwrap();
        assert_eq!(b.process.argv, vec![b"sh".to_vec()]);
        let targets: Vec<_> = b.mounts.iter().map(|m| (m.target.as_str(), m.kind.clone())).collect();
        assert!(targets.contains(&("/proc", MountKind::Proc)));
        // runc's default: CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10).
        let caps = b.process.caps.unwrap();
        assert_eq!((caps.effective, caps.bounding, caps.ambient), (1 << 29 | 1 << 5 | 1 << 10, 1 << 29 | 1 << 5 | 1 << 10, 1 << 29 | 1 << 5 | 1 << 10));
        assert!(targets.contains(&("/dev", MountKind::Devfs)));
        assert!(targets.contains(&("/dev/pts", MountKind::Devpts)));
        // Docker's and runc's /dev/shm: size=65536k.
        assert!(targets.contains(&("/dev/shm", MountKind::Tmpfs { mode: 0o1777, size: Some(64 << 20) })));
        // The cgroup mount is the sandbox's cgroup2, read-only as the spec says;
        // mqueue is left out.
        assert!(b.mounts.iter().any(|m| m.target == "/sys/fs/cgroup" && m.kind == MountKind::Cgroup && m.read_only()));
        assert!(!targets.iter().any(|(t, _)| *t == "/dev/mqueue"));
        std::fs::remove_dir_all(dir.join("rootfs")).unwrap();
        assert!(Bundle::load(&dir).err().unwrap().contains("not a directory"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn propagation_types_are_runc_names() {
        use rvisor_kernel::vfs::propagation::{MS_PRIVATE, MS_REC, MS_SHARED, MS_SLAVE, MS_UNBINDABLE};
        assert_eq!(propagation_flags(""), Some(0));
        assert_eq!(propagation_flags("rshared"), Some(MS_REC | MS_SHARED));
        assert_eq!(propagation_flags("slave"), Some(MS_SLAVE));
        assert_eq!(propagation_flags("rprivate"), Some(MS_REC | MS_PRIVATE));
        assert_eq!(propagation_flags("runbindable"), Some(MS_REC | MS_UNBINDABLE));
        assert_eq!(propagation_flags("r"), None);
        assert_eq!(propagation_flags("rrshared"), None);
        assert_eq!(propagation_flags("shared,"), None);
    }

    #[test]
    fn tmpfs_modes_are_octal() {
        assert_eq!(mode_option(&["nosuid", "mode=755"]), Some(0o755));
        assert_eq!(mode_option(&["mode=x"]), None);
    }
}
