//! The container's cgroup: the whole sandbox (Sentry, stubs, gofers) is charged
//! to the OCI spec's `linux.cgroupsPath`, with its memory, CPU and pids limits.
//! Only these few files are written, for cgroup v1 and v2, so no cgroup crate.

use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";
/// The v1 controllers the limits below use, and the freezer (pause).
const V1_CONTROLLERS: [&str; 4] = ["memory", "cpu", "pids", "freezer"];

/// Whether the host has the unified hierarchy (v2) only.
fn unified(root: &Path) -> bool {
    root.join("cgroup.controllers").exists()
}

/// `cgroupsPath` as a path under a hierarchy. systemd's "slice:prefix:name" is
/// the scope `<slice>/<prefix>-<name>.scope`.
fn relative(cgroups_path: &str) -> Result<PathBuf, String> {
    let parts: Vec<&str> = cgroups_path.split(':').collect();
    let rel = match parts[..] {
        [slice, prefix, name] => format!("{slice}/{prefix}-{name}.scope"),
        [path] => path.to_string(),
        _ => return Err(format!("cgroupsPath {cgroups_path:?}: not a path or slice:prefix:name")),
    };
    let rel = PathBuf::from(rel.trim_start_matches('/'));
    if rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return Err(format!("cgroupsPath {cgroups_path:?}: not a plain path"));
    }
    Ok(rel)
}

/// Makes the container's cgroup directories and writes its limits; returns
/// the directories, which the sandbox joins as it boots.
pub fn create(cgroups_path: &str, resources: Option<&LinuxResources>) -> Result<Vec<PathBuf>, String> {
    create_under(Path::new(ROOT), cgroups_path, resources)
}

fn create_under(root: &Path, cgroups_path: &str, resources: Option<&LinuxResources>) -> Result<Vec<PathBuf>, String> {
    let rel = relative(cgroups_path)?;
    let dirs: Vec<PathBuf> = if unified(root) { vec![root.join(&rel)] } else { V1_CONTROLLERS.iter().map(|c| root.join(c).join(&rel)).collect() };
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|e| format!("cgroup {}: {e}", d.display()))?;
    }
    set_limits(&dirs, resources)?;
    Ok(dirs)
}

/// A reader of the memory limit of the container's cgroup, through a descriptor
/// opened now (the sealed Sentry opens no files): the sandbox's OOM killer reads it
/// anew when memory runs out, since `rvisor update` may have changed it. None
/// without a cgroup.
pub fn memory_limit(dirs: &[PathBuf]) -> Option<rvisor_kernel::MemoryLimit> {
    let v2 = dirs.len() == 1;
    let dir = dirs.first()?;
    let read = reader(&dir.join(if v2 { "memory.max" } else { "memory.limit_in_bytes" }))?;
    let in_use = std::fs::read_to_string(dir.join(if v2 { "memory.current" } else { "memory.usage_in_bytes" })).ok()?.trim().parse().ok()?;
    Some(rvisor_kernel::MemoryLimit { read: Box::new(move || limit(&read()?)), in_use_at_boot: in_use })
}

/// Readers of the cgroup's CPU quota and pids limit, for the sandbox's
/// /sys/fs/cgroup, through descriptors opened now, as `memory_limit`'s.
pub fn limits(dirs: &[PathBuf]) -> rvisor_kernel::CgroupLimits {
    use rvisor_kernel::fs::cgroup::LimitReader;
    let (cpu_max, pids): (Option<LimitReader<(u64, u64)>>, _) = match dirs {
        [v2] => (reader(&v2.join("cpu.max")).map(|read| Box::new(move || cpu_max_v2(&read()?)) as LimitReader<_>), v2),
        [_, cpu, pids, ..] => {
            let quota = reader(&cpu.join("cpu.cfs_quota_us"));
            let period = reader(&cpu.join("cpu.cfs_period_us"));
            (quota.zip(period).map(|(quota, period)| Box::new(move || cpu_max_v1(&quota()?, &period()?)) as LimitReader<_>), pids)
        }
        _ => return Default::default(),
    };
    let pids_max = reader(&pids.join("pids.max")).map(|read| Box::new(move || limit(&read()?)) as LimitReader<_>);
    rvisor_kernel::CgroupLimits { cpu_max, pids_max }
}

/// A reader of the host file at `path` (opened now), whole, at each call.
fn reader(path: &Path) -> Option<impl Fn() -> Option<String> + Send + Sync> {
    let file = std::fs::File::open(path).ok()?;
    Some(move || {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 64];
        let n = file.read_at(&mut buf, 0).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
}

/// A limit file's number: None for "max" (v2) or v1's page-rounded i64::MAX.
fn limit(text: &str) -> Option<u64> {
    text.trim().parse::<u64>().ok().filter(|&l| l < 1 << 62)
}

/// v2's cpu.max ("QUOTA PERIOD" or "max PERIOD") as (quota, period).
fn cpu_max_v2(text: &str) -> Option<(u64, u64)> {
    let (quota, period) = text.trim().split_once(' ')?;
    Some((quota.parse().ok()?, period.parse().ok()?))
}

/// v1's cpu.cfs_quota_us (-1: none) and cpu.cfs_period_us as (quota, period).
fn cpu_max_v1(quota: &str, period: &str) -> Option<(u64, u64)> {
    Some((quota.trim().parse().ok()?, period.trim().parse().ok()?))
}

/// Writes the limits `resources` sets into the container's directories
/// (`rvisor update` too).
pub fn set_limits(dirs: &[PathBuf], resources: Option<&LinuxResources>) -> Result<(), String> {
    let v2 = dirs.len() == 1;
    let write = |controller: usize, file: &str, value: String| {
        let dir = if v2 { &dirs[0] } else { &dirs[controller] };
        std::fs::write(dir.join(file), &value).map_err(|e| format!("cgroup {}: {value}: {e}", dir.join(file).display()))
    };
    let Some(r) = resources else { return Ok(()) };
    if let Some(limit) = r.memory().as_ref().and_then(|m| m.limit()).filter(|&l| l > 0) {
        write(0, if v2 { "memory.max" } else { "memory.limit_in_bytes" }, limit.to_string())?;
    }
    if let Some(cpu) = r.cpu() {
        let period = cpu.period().unwrap_or(100_000);
        if let Some(quota) = cpu.quota().filter(|&q| q > 0) {
            if v2 {
                write(1, "cpu.max", format!("{quota} {period}"))?;
            } else {
                write(1, "cpu.cfs_period_us", period.to_string())?;
                write(1, "cpu.cfs_quota_us", quota.to_string())?;
            }
        }
        if let Some(shares) = cpu.shares().filter(|&s| s > 0) {
            if v2 {
                // runc's conversion of shares (2..262144) to a weight (1..10000).
                write(1, "cpu.weight", (1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142).to_string())?;
            } else {
                write(1, "cpu.shares", shares.to_string())?;
            }
        }
    }
    if let Some(max) = r.pids().as_ref().map(|p| p.limit()).filter(|&l| l > 0) {
        write(2, "pids.max", max.to_string())?;
    }
    Ok(())
}

/// Freezes (pause) or thaws (resume) every process in the cgroup, and waits
/// until the kernel says it is done.
pub fn freeze(dirs: &[PathBuf], frozen: bool) -> Result<(), String> {
    let (file, value, state, done) = match dirs {
        [v2] => (v2.join("cgroup.freeze"), if frozen { "1" } else { "0" }, v2.join("cgroup.events"), if frozen { "frozen 1" } else { "frozen 0" }),
        _ => {
            let dir = dirs.get(3).ok_or("the container has no freezer cgroup")?;
            let v = if frozen { "FROZEN" } else { "THAWED" };
            (dir.join("freezer.state"), v, dir.join("freezer.state"), v)
        }
    };
    std::fs::write(&file, value).map_err(|e| format!("cgroup {}: {e}", file.display()))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&state).is_ok_and(|s| s.lines().any(|l| l.trim() == done)) {
        if std::time::Instant::now() > deadline {
            return Err(format!("cgroup {}: not {done} after 10 s", state.display()));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(())
}

/// Moves the calling process (and so everything it starts later) into `dirs`.
pub fn join(dirs: &[PathBuf]) -> Result<(), String> {
    for d in dirs {
        std::fs::write(d.join("cgroup.procs"), "0").map_err(|e| format!("cgroup {}: {e}", d.display()))?;
    }
    Ok(())
}

/// Removes the directories once nothing is in them (the stubs and gofers of a
/// killed sandbox take a moment to go), giving up after a few seconds.
pub fn remove(dirs: &[PathBuf]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    for d in dirs {
        while std::fs::read_to_string(d.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let _ = std::fs::remove_dir(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_systemd_scopes() {
        assert_eq!(relative("/default/c1").unwrap(), PathBuf::from("default/c1"));
        assert_eq!(relative("system.slice:cri-containerd:abc").unwrap(), PathBuf::from("system.slice/cri-containerd-abc.scope"));
        assert!(relative("/a/../b").is_err());
        assert!(relative("").is_err());
        assert!(relative("a:b").is_err());
    }

    #[test]
    fn writes_v1_and_v2_limits() {
        let resources: LinuxResources = serde_json::from_str(r#"{"memory": {"limit": 67108864}, "cpu": {"quota": 50000, "period": 100000, "shares": 1024}, "pids": {"limit": 64}}"#).unwrap();
        let base = std::env::temp_dir().join(format!("rvisor-cgroup-{}", std::process::id()));
        for v2 in [false, true] {
            let root = base.join(if v2 { "v2" } else { "v1" });
            std::fs::create_dir_all(&root).unwrap();
            if v2 {
                std::fs::write(root.join("cgroup.controllers"), "cpu memory pids").unwrap();
            }
            let dirs = create_under(&root, "/pod/c1", Some(&resources)).unwrap();
            let read = |c: usize, f: &str| std::fs::read_to_string(dirs[if v2 { 0 } else { c }].join(f)).unwrap();
            if v2 {
                assert_eq!((read(0, "memory.max"), read(1, "cpu.max"), read(1, "cpu.weight"), read(2, "pids.max")), ("67108864".into(), "50000 100000".into(), "39".into(), "64".into()));
            } else {
                assert_eq!(dirs[0], root.join("memory/pod/c1"));
                assert_eq!((read(0, "memory.limit_in_bytes"), read(1, "cpu.cfs_quota_us"), read(1, "cpu.shares"), read(2, "pids.max")), ("67108864".into(), "50000".into(), "1024".into(), "64".into()));
            }
            // What the sandbox's /sys/fs/cgroup shows.
            let limits = limits(&dirs);
            assert_eq!(limits.cpu_max.as_ref().and_then(|r| r()), Some((50_000, 100_000)));
            assert_eq!(limits.pids_max.as_ref().and_then(|r| r()), Some(64));
            assert_eq!(memory_limit(&dirs).and_then(|m| (m.read)()), None, "no memory.current here: no reader");
        }
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn reads_limits() {
        assert_eq!(cpu_max_v2("max 100000\n"), None);
        assert_eq!(cpu_max_v2("150000 100000\n"), Some((150_000, 100_000)));
        assert_eq!(cpu_max_v1("-1\n", "100000\n"), None);
        assert_eq!(cpu_max_v1("50000\n", "200000\n"), Some((50_000, 200_000)));
        assert_eq!(limit("max\n"), None);
        assert_eq!(limit("9223372036854771712\n"), None);
        assert_eq!(limit("134217728\n"), Some(134_217_728));
    }
}
