//! A sandbox container's file system on the host: one gofer process serving
//! its root and every host directory it bind-mounts, and the mount list in
//! terms of the gofer's roots. A pod container's is planned by the process
//! that stands for it on the host, which sends the directories to its pod's
//! sandbox, whose gofer serves them too.

use crate::request::{MountKind, MountRequest};
use rvisor_kernel::{HostFs, MountFlags, MountSource, MountSpec};
use serde::{Deserialize, Serialize};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The gofer: one process serving every host directory a container mounts,
/// each once per mode (bind mounts of files in one directory share one).
/// Root 0 is the container's root.
pub struct Gofers {
    roots: Vec<(PathBuf, bool)>,
    process: Option<rvisor_gofer::Gofer>,
}

/// A mount whose host directory is a root of the gofer, by index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedMount {
    pub target: String,
    pub source: Source,
    /// `MountFlags`' bits.
    pub flags: u32,
    /// As `MountRequest::propagation`.
    #[serde(default)]
    pub propagation: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Source {
    Proc,
    Sysfs,
    Cgroup,
    Devfs,
    Devpts,
    Tmpfs { mode: u32, size: Option<u64> },
    /// Root `root` of the gofer: a directory, or the file `file` in it; `host`
    /// the type and source of the host mount it is in (`host_fs`).
    Gofer {
        root: usize,
        file: Option<Vec<u8>>,
        #[serde(default)]
        host: Option<(String, String)>,
    },
}

impl Gofers {
    /// The gofer roots `root` (read-only) and the host directories of `mounts`
    /// need, and the mounts in terms of them.
    pub fn plan(root: &Path, mounts: &[MountRequest]) -> Result<(Gofers, Vec<PlannedMount>), String> {
        let mut gofers = Gofers { roots: vec![(root.to_path_buf(), true)], process: None };
        let planned = mounts.iter().map(|m| Ok(PlannedMount { target: m.target.clone(), source: gofers.source(m)?, flags: m.flags, propagation: m.propagation.clone() })).collect::<Result<_, String>>()?;
        Ok((gofers, planned))
    }

    /// The index of the root serving `dir` in this mode, added if new.
    fn add(&mut self, dir: &Path, read_only: bool) -> usize {
        let key = (dir.to_path_buf(), read_only);
        match self.roots.iter().position(|r| *r == key) {
            Some(i) => i,
            None => {
                self.roots.push(key);
                self.roots.len() - 1
            }
        }
    }

    fn source(&mut self, m: &MountRequest) -> Result<Source, String> {
        Ok(match &m.kind {
            MountKind::Proc => Source::Proc,
            MountKind::Sysfs => Source::Sysfs,
            MountKind::Cgroup => Source::Cgroup,
            MountKind::Devfs => Source::Devfs,
            MountKind::Devpts => Source::Devpts,
            MountKind::Tmpfs { mode, size } => Source::Tmpfs { mode: *mode, size: *size },
            MountKind::Bind { source } => {
                let is_dir = std::fs::metadata(source).map_err(|e| format!("bind mount {} on {}: {e}", source.display(), m.target))?.is_dir();
                // A file is served as its name in its directory.
                let (dir, name) = if is_dir { (source.as_path(), None) } else { (source.parent().unwrap_or(Path::new("/")), source.file_name()) };
                Source::Gofer { root: self.add(dir, m.read_only()), file: name.map(|n| n.as_bytes().to_vec()), host: host_fs(source) }
            }
        })
    }

    /// Each root, opened as the gofer takes it, with whether it is read-only.
    pub fn open_roots(&self) -> std::io::Result<Vec<(std::os::fd::OwnedFd, bool)>> {
        self.roots.iter().map(|(d, ro)| Ok((rvisor_gofer::open_root(d)?, *ro))).collect()
    }

    /// Starts the gofer process; returns a connection for each root, in order.
    pub fn start(&mut self) -> std::io::Result<Vec<rvisor_gofer::Client>> {
        let roots: Vec<(&Path, bool)> = self.roots.iter().map(|(d, ro)| (d.as_path(), *ro)).collect();
        let (process, clients) = rvisor_gofer::spawn_gofer_roots(&roots)?;
        self.process = Some(process);
        Ok(clients)
    }

    /// Calls `gone` with the gofer's status when it exits. The gofer exits by itself
    /// only once the Sentry has closed every connection, so while the sandbox runs
    /// this means it was killed.
    pub fn watch(&mut self, gone: impl FnOnce(std::process::ExitStatus) + Send + 'static) -> std::io::Result<()> {
        let Some(mut process) = self.process.take() else { return Ok(()) };
        std::thread::Builder::new().name("gofer-watch".into()).spawn(move || {
            if let Ok(status) = process.wait() {
                gone(status);
            }
        })?;
        Ok(())
    }
}

/// The kernel's mounts for `planned`, given a connection for each gofer root.
pub fn mount_specs(planned: Vec<PlannedMount>, clients: &[Arc<rvisor_gofer::Client>]) -> Result<Vec<MountSpec>, String> {
    let client = |root: usize| clients.get(root).cloned().ok_or_else(|| format!("the gofer serves no root {root}"));
    planned
        .into_iter()
        .map(|m| {
            let source = match m.source {
                Source::Proc => MountSource::Proc,
                Source::Sysfs => MountSource::Sysfs,
                Source::Cgroup => MountSource::Cgroup,
                Source::Devfs => MountSource::Devfs,
                Source::Devpts => MountSource::Devpts,
                Source::Tmpfs { mode, size } => MountSource::Tmpfs { mode, size },
                Source::Gofer { root, file, host } => {
                    let host = host.map(|(fstype, source)| HostFs { fstype, source });
                    match file {
                        None => MountSource::Gofer(client(root)?, host),
                        Some(n) => MountSource::GoferFile(client(root)?, n, host),
                    }
                }
            };
            Ok(MountSpec { propagation: m.propagation, ..MountSpec::new(&m.target, source, MountFlags(m.flags)) })
        })
        .collect()
}

/// The type and source of the host mount `path` is in, from this process's
/// mountinfo (statx's mount ID picks the line; a path's longest mount point
/// could be a mount hidden beneath another): what runc's bind mount of `path`
/// shows. None if either cannot be read.
fn host_fs(path: &Path) -> Option<(String, String)> {
    let id = rvisor_platform::hostcall::mount_id(path)?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo_fs(&info, id)
}

/// The type and source (unescaped) of mount `id` in mountinfo text.
fn mountinfo_fs(info: &str, id: u64) -> Option<(String, String)> {
    let line = info.lines().find(|l| l.split(' ').next().and_then(|f| f.parse::<u64>().ok()) == Some(id))?;
    let (_, after) = line.split_once(" - ")?;
    let mut fields = after.split(' ');
    let fstype = fields.next()?.to_string();
    let source = unmangle(fields.next()?);
    Some((fstype, source))
}

/// Undoes mountinfo's octal escapes of space, tab, newline and backslash.
fn unmangle(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8).wrapping_add(c - b'0')));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_gives_a_mounts_type_and_unescaped_source() {
        let info = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    30 22 0:26 / /mnt\\040x rw - fuse.sshfs me@h:/a\\040b rw,user_id=0\n";
        assert_eq!(mountinfo_fs(info, 22), Some(("ext4".into(), "/dev/vda".into())));
        assert_eq!(mountinfo_fs(info, 30), Some(("fuse.sshfs".into(), "me@h:/a b".into())));
        assert_eq!(mountinfo_fs(info, 3), None);
    }
}
