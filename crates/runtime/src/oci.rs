//! An OCI bundle's `config.json`, read with the `oci-spec` crate, turned into
//! what the sandbox boots from.
//!
//! The sandbox is its own set of namespaces, so `linux.namespaces`, ID mappings
//! and the host-side hardening (seccomp, capabilities, masked paths) of the spec
//! do not apply; the root and the mounts do, as runsc reads them.

use crate::request::{MountKind, MountRequest, Process};
use oci_spec::runtime::{Mount, Spec};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What a bundle asks for, resolved against the bundle's directory.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub root: PathBuf,
    pub root_read_only: bool,
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
        Ok(Bundle { root_read_only: root.readonly().unwrap_or(false), root: root_path, process, mounts, spec, dir })
    }
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
    })
}

/// One OCI mount; `None` for what the sandbox provides on its own (cgroup and
/// mqueue file systems: POSIX message queues work without one).
fn mount_of(bundle: &Path, m: &Mount) -> Result<Option<MountRequest>, String> {
    let target = m.destination().to_string_lossy().into_owned();
    if !target.starts_with('/') {
        return Err(format!("mount destination {target} is not absolute"));
    }
    let options: Vec<&str> = m.options().iter().flatten().map(String::as_str).collect();
    let read_only = options.contains(&"ro");
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
            "tmpfs" => MountKind::Tmpfs { mode: mode_option(&options).unwrap_or(0o1777) },
            "cgroup" | "cgroup2" | "mqueue" => {
                tracing::debug!("mount on {target}: {fstype} is not mounted in the sandbox");
                return Ok(None);
            }
            other => return Err(format!("mount on {target}: unsupported file system type {other:?}")),
        }
    };
    Ok(Some(MountRequest { target, kind, read_only }))
}

/// A tmpfs `mode=` option, in octal.
fn mode_option(options: &[&str]) -> Option<u32> {
    options.iter().find_map(|o| o.strip_prefix("mode=")).and_then(|m| u32::from_str_radix(m, 8).ok()).map(|m| m & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_default_spec() {
        let dir = std::env::temp_dir().join(format!("rvisor-oci-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        Spec::default().save(dir.join("config.json")).unwrap();
        let b = Bundle::load(&dir).unwrap();
        assert_eq!(b.process.argv, vec![b"sh".to_vec()]);
        let targets: Vec<_> = b.mounts.iter().map(|m| (m.target.as_str(), m.kind.clone())).collect();
        assert!(targets.contains(&("/proc", MountKind::Proc)));
        assert!(targets.contains(&("/dev", MountKind::Devfs)));
        assert!(targets.contains(&("/dev/pts", MountKind::Devpts)));
        assert!(!targets.iter().any(|(t, _)| *t == "/sys/fs/cgroup" || *t == "/dev/mqueue"));
        std::fs::remove_dir_all(dir.join("rootfs")).unwrap();
        assert!(Bundle::load(&dir).err().unwrap().contains("not a directory"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tmpfs_modes_are_octal() {
        assert_eq!(mode_option(&["nosuid", "mode=755"]), Some(0o755));
        assert_eq!(mode_option(&["mode=x"]), None);
    }
}
