//! cgroup2, mounted at /sys/fs/cgroup: the container's cgroup as its processes
//! see it from inside a cgroup namespace, one root directory ("/", as
//! /proc/PID/cgroup says) with the files programs read their limits from (a
//! JVM's or Node's heap, Go's automaxprocs, systemd-detect-virt): the memory
//! limit and use, the CPU quota and time, the process count and limit, and the
//! processes themselves. Everything is read from the kernel at each open, so
//! `rvisor update` shows at once.
//!
//! The view is read-only, as a container's cgroup is when not delegated to it:
//! writing a control file (memory.max, cgroup.procs, cgroup.subtree_control...)
//! is EPERM, as is mkdir of a child cgroup. On a read-only mount (an OCI
//! bundle's, as Docker mounts it) the VFS answers EROFS first, as Linux does.

use super::simple::{GenFile, Generator, InoAlloc, StaticDir, Writer};
use crate::kernel::Kernel;
use crate::task::{CpuTimes, PidNamespace};
use crate::vfs::inode::{DirEntry, Inode, OpenFlags, S_IFDIR};
use crate::vfs::{Dentry, FileDescription};
use rvisor_abi::structs::Stat;
use rvisor_abi::{errno, error, SysResult};
use rvisor_memory::UsageKind;
use std::fmt::Write as _;
use std::sync::{Arc, Weak};

/// The controllers the root serves, in Linux's order.
pub const CONTROLLERS: &str = "cpu memory pids";

/// The container cgroup's CPU and pids limits, which the runtime reads through
/// descriptors it opened at boot, anew at each read (`rvisor update` changes
/// them). A reader that is missing, or answers None, means no limit.
#[derive(Default)]
pub struct CgroupLimits {
    /// cpu.max: (quota, period) in microseconds.
    pub cpu_max: Option<LimitReader<(u64, u64)>>,
    pub pids_max: Option<LimitReader<u64>>,
}

/// Reads one of the cgroup's limits now (None: no limit).
pub type LimitReader<T> = Box<dyn Fn() -> Option<T> + Send + Sync>;

/// Linux's default CFS period, in microseconds (cpu.max without a quota).
const DEFAULT_PERIOD_US: u64 = 100_000;

/// A limit as cgroup v2 prints it: the number, or "max" for none.
fn limit_text(limit: Option<u64>) -> String {
    limit.map_or_else(|| "max\n".to_string(), |l| format!("{l}\n"))
}

/// cpu.max: "QUOTA PERIOD", or "max PERIOD" without a quota.
fn cpu_max_text(quota: Option<(u64, u64)>) -> String {
    match quota {
        Some((quota, period)) => format!("{quota} {period}\n"),
        None => format!("max {DEFAULT_PERIOD_US}\n"),
    }
}

/// cpu.stat from the processes' CPU time (no throttling is accounted).
fn cpu_stat_text(cpu: CpuTimes) -> String {
    let (user, system) = (cpu.user_ns / 1000, cpu.sys_ns / 1000);
    format!("usage_usec {}\nuser_usec {user}\nsystem_usec {system}\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n", user + system)
}

/// What the memory file holds for the sandbox, by kind, in bytes.
#[derive(Clone, Copy, Debug, Default)]
struct MemoryUse {
    anon: u64,
    /// tmpfs and shared memory: file memory that is not a host file's cache.
    shmem: u64,
    /// Host files' page cache.
    cache: u64,
    /// What the Sentry keeps in the memory file for itself (`UsageKind::System`).
    kernel: u64,
}

impl MemoryUse {
    fn of(k: &Kernel) -> MemoryUse {
        let mf = &k.memory;
        MemoryUse {
            anon: mf.usage(UsageKind::Anonymous),
            shmem: mf.usage(UsageKind::Tmpfs),
            cache: mf.usage(UsageKind::PageCache),
            kernel: mf.usage(UsageKind::System),
        }
    }

    /// memory.current: all of it, what /proc/meminfo counts as used.
    fn current(self) -> u64 {
        self.anon + self.shmem + self.cache + self.kernel
    }

    /// memory.stat, with the split /proc/meminfo shows (everything active;
    /// event counters are not kept and read 0).
    fn stat_text(self) -> String {
        let file = self.cache + self.shmem;
        let rows = [
            ("anon", self.anon),
            ("file", file),
            ("kernel", self.kernel),
            ("kernel_stack", 0),
            ("pagetables", 0),
            ("sock", 0),
            ("shmem", self.shmem),
            ("file_mapped", 0),
            ("file_dirty", 0),
            ("file_writeback", 0),
            ("anon_thp", 0),
            ("inactive_anon", 0),
            ("active_anon", self.anon + self.shmem),
            ("inactive_file", 0),
            ("active_file", self.cache),
            ("unevictable", 0),
            ("slab_reclaimable", 0),
            ("slab_unreclaimable", 0),
            ("slab", 0),
            ("pgfault", 0),
            ("pgmajfault", 0),
        ];
        let mut s = String::new();
        for (name, n) in rows {
            let _ = writeln!(s, "{name} {n}");
        }
        s
    }
}

/// Ids one a line, as cgroup.procs and cgroup.threads list them.
fn id_list(mut ids: Vec<i32>) -> String {
    ids.sort_unstable();
    ids.iter().map(|id| format!("{id}\n")).collect()
}

/// What the generators read from.
struct Source {
    kernel: Weak<Kernel>,
    /// The PID namespace of the container that mounted it: whose processes a
    /// reader that is no task (a unit test) sees.
    pid_ns: Arc<PidNamespace>,
}

impl Source {
    fn kernel(&self) -> SysResult<Arc<Kernel>> {
        self.kernel.upgrade().ok_or_else(|| errno!(ENOENT))
    }

    /// The cgroup's processes: those of the reader's PID namespace, numbered as
    /// it numbers them (a pod container's reader sees its own container's), as
    /// Linux's cgroup.procs numbers tasks in the opener's namespace. Zombies have
    /// left the cgroup.
    fn groups(&self) -> Vec<Arc<crate::task::ThreadGroup>> {
        self.reader_ns().groups().into_iter().filter(|tg| !tg.threads().is_empty()).collect()
    }

    fn reader_ns(&self) -> Arc<PidNamespace> {
        crate::fs::proc::current().map_or_else(|| self.pid_ns.clone(), |th| th.tg.pid_ns.clone())
    }

    /// Ids as the reader numbers them.
    fn ids(&self, ids: impl Iterator<Item = i32>) -> String {
        let ns = self.reader_ns();
        id_list(ids.filter_map(|id| ns.local_id(id)).collect())
    }

    fn text(self: &Arc<Self>, f: impl Fn(&Source) -> SysResult<String> + Send + Sync + 'static) -> Generator {
        let src = self.clone();
        Arc::new(move || f(&src).map(String::into_bytes))
    }
}

/// The cgroup's one directory: a fixed set of files, in which no child cgroup
/// may be made.
struct CgroupDir {
    dir: Arc<StaticDir>,
}

impl Inode for CgroupDir {
    fn stat(&self) -> SysResult<Stat> {
        self.dir.stat()
    }

    fn kind(&self) -> u32 {
        S_IFDIR
    }

    fn lookup(&self, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        self.dir.lookup(name)
    }

    fn open(&self, dentry: &Arc<Dentry>, flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        self.dir.open(dentry, flags)
    }

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        self.dir.readdir()
    }

    /// A child cgroup: not in a view the container may not change.
    fn mkdir(&self, _name: &[u8], _mode: u32) -> SysResult<Arc<dyn Inode>> {
        error!(EPERM)
    }

    fn create(&self, _name: &[u8], _mode: u32) -> SysResult<Arc<dyn Inode>> {
        error!(EPERM)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Builds a cgroup2 file system showing the sandbox (see the module docs) and
/// returns its root directory.
pub fn new_cgroupfs(kernel: Weak<Kernel>, pid_ns: Arc<PidNamespace>, dev: u64) -> Arc<dyn Inode> {
    let ino = InoAlloc::new(dev);
    let src = Arc::new(Source { kernel, pid_ns });
    let refuse: Writer = Arc::new(|_| error!(EPERM));
    // Linux's modes: 0644 for what a delegated cgroup's owner may write, 0444 for the rest.
    let knob = |gen: Generator| -> Arc<dyn Inode> { GenFile::new(ino.attrs(0o644), gen, Some(refuse.clone())) };
    let fixed = |text: &str| -> Arc<dyn Inode> { GenFile::text(ino.attrs(0o444), text.to_string()) };
    let fixed_knob = |text: &'static str| knob(Arc::new(move || Ok(text.as_bytes().to_vec())));
    let shown = |gen: Generator| -> Arc<dyn Inode> { GenFile::new(ino.attrs(0o444), gen, None) };
    let entries: Vec<(&str, Arc<dyn Inode>)> = vec![
        ("cgroup.controllers", fixed(&format!("{CONTROLLERS}\n"))),
        ("cgroup.events", fixed("populated 1\nfrozen 0\n")),
        ("cgroup.freeze", fixed_knob("0\n")),
        ("cgroup.max.depth", fixed_knob("max\n")),
        ("cgroup.max.descendants", fixed_knob("max\n")),
        ("cgroup.procs", knob(src.text(|s| Ok(s.ids(s.groups().iter().map(|tg| tg.tgid)))))),
        ("cgroup.stat", fixed("nr_descendants 0\nnr_dying_descendants 0\n")),
        ("cgroup.subtree_control", fixed_knob("\n")),
        ("cgroup.threads", knob(src.text(|s| Ok(s.ids(s.groups().iter().flat_map(|tg| tg.threads()).map(|th| th.tid())))))),
        ("cgroup.type", fixed_knob("domain\n")),
        ("cpu.max", knob(src.text(|s| Ok(cpu_max_text(s.kernel()?.cgroup_limits.cpu_max.as_ref().and_then(|read| read())))))),
        ("cpu.stat", shown(src.text(|s| Ok(cpu_stat_text(s.groups().iter().fold(CpuTimes::default(), |sum, tg| sum + cpu_time(tg))))))),
        ("cpu.weight", fixed_knob("100\n")),
        ("memory.current", shown(src.text(|s| Ok(format!("{}\n", MemoryUse::of(&*s.kernel()?).current()))))),
        ("memory.events", shown(src.text(|s| Ok(memory_events_text(s.kernel()?.oom_kills.load(std::sync::atomic::Ordering::Relaxed)))))),
        ("memory.high", fixed_knob("max\n")),
        ("memory.low", fixed_knob("0\n")),
        ("memory.max", knob(src.text(|s| Ok(limit_text(s.kernel()?.memory_limit.as_ref().and_then(|m| (m.read)())))))),
        ("memory.min", fixed_knob("0\n")),
        ("memory.stat", shown(src.text(|s| Ok(MemoryUse::of(&*s.kernel()?).stat_text())))),
        // The sandbox's memory never swaps (/proc/meminfo has no swap either).
        ("memory.swap.current", fixed("0\n")),
        ("memory.swap.max", fixed_knob("0\n")),
        ("pids.current", shown(src.text(|s| Ok(format!("{}\n", s.groups().iter().map(|tg| tg.threads().len()).sum::<usize>()))))),
        ("pids.max", knob(src.text(|s| Ok(limit_text(s.kernel()?.cgroup_limits.pids_max.as_ref().and_then(|read| read())))))),
    ];
    Arc::new(CgroupDir { dir: StaticDir::new(ino.attrs(0o755), entries) })
}

/// A process's CPU time and its reaped children's. Summed over the live
/// processes, that is what the cgroup has used, less what went with processes
/// whose reaper has exited too (Linux's cgroup keeps it; nothing here does).
fn cpu_time(tg: &crate::task::ThreadGroup) -> CpuTimes {
    tg.cpu_times() + tg.cpu.lock().unwrap_or_else(|e| e.into_inner()).children
}

/// memory.events: the sandbox's OOM kills (no reclaim thresholds are kept).
fn memory_events_text(oom_kills: u64) -> String {
    format!("low 0\nhigh 0\nmax {oom_kills}\noom {oom_kills}\noom_kill {oom_kills}\noom_group_kill 0\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(root: &Arc<dyn Inode>, name: &str) -> SysResult<String> {
        let i = root.lookup(name.as_bytes())?;
        let d = Dentry::new_root(i.clone(), Weak::new());
        let f = i.open(&d, OpenFlags(0))?;
        let mut buf = vec![0u8; 4096];
        let n = f.read_at(0, &mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    #[test]
    fn formats() {
        assert_eq!(limit_text(None), "max\n");
        assert_eq!(limit_text(Some(134_217_728)), "134217728\n");
        assert_eq!(cpu_max_text(None), "max 100000\n");
        assert_eq!(cpu_max_text(Some((50_000, 100_000))), "50000 100000\n");
        assert_eq!(id_list(vec![12, 1, 7]), "1\n7\n12\n");
        assert_eq!(id_list(vec![]), "");
        let stat = cpu_stat_text(CpuTimes { user_ns: 3_000_000, sys_ns: 1_500_999 });
        assert!(stat.starts_with("usage_usec 4500\nuser_usec 3000\nsystem_usec 1500\n"), "{stat}");
        let m = MemoryUse { anon: 4096, shmem: 8192, cache: 16384, kernel: 4096 };
        assert_eq!(m.current(), 32768);
        let text = m.stat_text();
        for line in ["anon 4096", "file 24576", "shmem 8192", "kernel 4096", "active_file 16384"] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
    }

    #[test]
    fn tree() {
        let root = new_cgroupfs(Weak::new(), Arc::new(PidNamespace::new(16)), 9);
        assert_eq!(read(&root, "cgroup.controllers").unwrap(), "cpu memory pids\n");
        assert_eq!(read(&root, "cgroup.subtree_control").unwrap(), "\n");
        assert_eq!(read(&root, "cgroup.type").unwrap(), "domain\n");
        assert_eq!(read(&root, "cgroup.procs").unwrap(), "");
        // Without the kernel (gone), its files are gone too.
        assert_eq!(read(&root, "memory.max").unwrap_err().code, rvisor_abi::ErrnoCode::ENOENT);
        let names: Vec<Vec<u8>> = root.readdir().unwrap().into_iter().map(|e| e.name).collect();
        for n in ["cgroup.procs", "memory.max", "memory.current", "cpu.max", "cpu.stat", "pids.max", "pids.current"] {
            assert!(names.contains(&n.as_bytes().to_vec()), "{n}");
        }
        let mode = |n: &str| root.lookup(n.as_bytes()).unwrap().stat().unwrap().st_mode & 0o777;
        assert_eq!((mode("memory.max"), mode("memory.current"), mode("cgroup.controllers")), (0o644, 0o444, 0o444));
        assert_eq!(root.mkdir(b"child", 0o755).err().map(|e| e.code), Some(rvisor_abi::ErrnoCode::EPERM));
    }
}
