//! The kernel object: what every task shares, and starting the first program.

use crate::futex::FutexTable;
use crate::loader;
use crate::mm::Frames;
use crate::fs::{cgroup::{new_cgroupfs, CgroupLimits}, dev::new_devfs, gofer::GoferInode, overlay::OverlayInode, proc::ProcFs, sys::new_sysfs, tmpfs::Tmpfs};
use crate::vfs::Inode;
use crate::task::exec::{find_program, load_program};
use crate::net::NetNamespace;
use crate::task::namespaces::{IpcNamespace, UtsNames, UtsNamespace};
use crate::task::{comm_from_path, signals, Container, Credentials, ExitStatus, Namespaces, PidNamespace, Resources, Task, Thread, ThreadGroup, UserNamespace};
use crate::vfs::path::walk;
use crate::vfs::perm::FsCreds;
use crate::vfs::{Follow, FsContext, Mount, MountFlags, MountNamespace};
use crate::vfs::propagation;
use crate::time::Clocks;
use crate::vfs::{Fd, FdTable, HostFile};
use rvisor_memory::MemoryFile;
use rvisor_platform::{CpuState, Platform};
use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex};

/// Most tasks a sandbox may hold at once (threads and unreaped zombies).
pub const MAX_TASKS: usize = 4096;

pub struct KernelConfig {
    pub platform: Arc<dyn Platform>,
    pub memory: Arc<MemoryFile>,
    /// Where `--strace` lines go, if tracing.
    pub strace: Option<Box<dyn Write + Send>>,
    pub hostname: String,
    /// The gofer serving the sandbox's root.
    pub gofer: Arc<rvisor_gofer::Client>,
    /// Whether the root mount refuses writes (OCI `root.readonly`); either way,
    /// writes never reach the host's copy, which is under an in-memory overlay.
    pub root_read_only: bool,
    /// The root's propagation type (OCI `linux.rootfsPropagation`), as
    /// mount(2)'s flags: MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE, with
    /// MS_REC for every mount beneath it too; 0 leaves every mount private.
    pub root_propagation: u64,
    /// What is mounted over the root, in order.
    pub mounts: Vec<MountSpec>,
    /// AF_INET and AF_INET6 sockets are host sockets (`--network=host`)
    /// rather than the sandbox's own loopback.
    pub host_network: bool,
    /// Host interfaces the sandbox's own network stack takes over
    /// (`--network=sandbox`), each with an AF_PACKET socket bound to it.
    pub nics: Vec<Nic>,
    /// The first port binding needs no CAP_NET_BIND_SERVICE for
    /// (net.ipv4.ip_unprivileged_port_start; Linux's default is 1024).
    pub unprivileged_port_start: u16,
    /// Reads the sandbox's memory limit (its cgroup's), anew at each OOM decision
    /// (`rvisor update` may change it); None: no limit (see `mm::oom`).
    pub memory_limit: Option<MemoryLimit>,
    /// The cgroup's other limits, as /sys/fs/cgroup shows them.
    pub cgroup_limits: CgroupLimits,
}

/// The sandbox's memory limit (its cgroup's; see `mm::oom`).
pub struct MemoryLimit {
    /// Reads the limit now, in bytes (None: unlimited).
    pub read: Box<dyn Fn() -> Option<u64> + Send + Sync>,
    /// What the cgroup was charged when the sandbox joined it: memory of processes
    /// that were there before (a previous sandbox's, still going), which the
    /// sandbox cannot see go, so it is held back from the app's share.
    pub in_use_at_boot: u64,
}

/// A host interface for the sandbox's network stack: what it is, and a
/// non-blocking AF_PACKET socket (SOCK_RAW, ETH_P_ALL) bound to it, whose
/// frames are the sandbox's alone (the host's addresses on it are removed).
pub struct Nic {
    pub info: crate::net::interface::InterfaceInfo,
    pub packet: std::os::fd::OwnedFd,
}

/// A file system a sandbox mount shows.
pub enum MountSource {
    Proc,
    Sysfs,
    /// cgroup2: the container's cgroup (`fs::cgroup`).
    Cgroup,
    /// rvisor's devfs (`null zero full random urandom tty ptmx`).
    Devfs,
    Devpts,
    /// A tmpfs with this root mode and, in bytes, its `size=`.
    Tmpfs { mode: u32, size: Option<u64> },
    /// A host directory: a root of the gofer, through its own connection.
    Gofer(Arc<rvisor_gofer::Client>, Option<HostFs>),
    /// A host file: `name` in the directory a gofer serves.
    GoferFile(Arc<rvisor_gofer::Client>, Vec<u8>, Option<HostFs>),
}

/// The host mount a host directory or file is in, as the host's
/// /proc/self/mountinfo says: a bind mount of it shows this type and source,
/// as under runc (runsc shows 9P's, which tells a program nothing about the
/// files). Without it, the mount says "9p".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFs {
    pub fstype: String,
    pub source: String,
}

/// One mount: what, where (an absolute path in the sandbox; missing directories
/// on the way are made in the root's overlay), and its flags (read-only,
/// noexec...).
pub struct MountSpec {
    pub target: String,
    pub source: MountSource,
    pub flags: MountFlags,
    /// Propagation changes (mount(2) flags: MS_SHARED, MS_REC | MS_SLAVE…) given
    /// the mount in order, once the root has its own.
    pub propagation: Vec<u64>,
}

impl MountSpec {
    pub fn new(target: &str, source: MountSource, flags: MountFlags) -> MountSpec {
        MountSpec { target: target.to_string(), source, flags, propagation: Vec::new() }
    }
}

/// A pod container's file system: the host directory the gofer serves as its
/// root (under an in-memory overlay, as the sandbox's) and its mounts.
pub struct ContainerRoot {
    pub gofer: Arc<rvisor_gofer::Client>,
    pub read_only: bool,
    /// Its root's propagation type, as `KernelConfig::root_propagation`.
    pub propagation: u64,
    pub mounts: Vec<MountSpec>,
    /// Its processes are in the first container's PID namespace (a pod with
    /// `shareProcessNamespace`) rather than one of their own.
    pub share_pids: bool,
}

/// Why a container could not be added.
#[derive(Debug)]
pub enum ContainerError {
    Mount(String),
    Exec(loader::ExecError),
}

impl std::fmt::Display for ContainerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContainerError::Mount(e) => f.write_str(e),
            ContainerError::Exec(e) => write!(f, "{e}"),
        }
    }
}

pub struct Kernel {
    pub platform: Arc<dyn Platform>,
    pub memory: Arc<MemoryFile>,
    pub clocks: Clocks,
    /// The sandbox's first UTS, IPC and network namespaces, which its containers'
    /// processes start in.
    pub namespaces: Namespaces,
    /// Number of CPUs the sandbox reports.
    pub cpus: usize,
    pub futexes: FutexTable,
    pub timers: Arc<crate::time::timers::Timers>,
    pub cpu_watch: Arc<crate::time::process_timers::CpuWatch>,
    /// Where memfd_create's files live.
    pub memfds: crate::fs::memfd::MemfdFs,
    pub timerfd_cancel: crate::fs::timerfd::CancelOnSet,
    pub clock_sets: crate::time::ClockSets,
    pub memory_limit: Option<MemoryLimit>,
    pub cgroup_limits: CgroupLimits,
    /// The process the OOM killer killed last, until it is gone.
    pub oom_victim: Mutex<Option<crate::mm::oom::OomVictim>>,
    /// How many processes the OOM killer killed (`rvisor events` reports them).
    pub oom_kills: std::sync::atomic::AtomicU64,
    /// The events the sandbox's AIO contexts hold (/proc/sys/fs/aio-nr).
    pub aio_nr: Arc<crate::mm::aio::AioNr>,
    /// What each user has locked of System V shared memory.
    pub shm_locks: Arc<crate::ipc::shm::ShmLocks>,
    /// Every AF_UNIX socket, for /proc/net/unix.
    pub unix_sockets: crate::net::unix::UnixSockets,
    pub locks: Arc<crate::vfs::locks::LockTable>,
    /// The vDSO parameter page followed by the vDSO image, shared by every process.
    pub vdso: Arc<Frames>,
    /// The container the sandbox booted with; a pod's others join it later.
    pub root_container: Arc<Container>,
    /// Every container, the first included. Leaf lock.
    containers: Mutex<Vec<std::sync::Weak<Container>>>,
    /// The pseudo-terminals of /dev/pts.
    pub devpts: Arc<crate::fs::devpts::Devpts>,
    /// The terminal `rvisor do -t` bridges to the caller's, once made.
    pub console: std::sync::OnceLock<Arc<crate::tty::Terminal>>,
    /// When the console's last output is written to the caller's terminal.
    pub console_drained: Arc<crate::tty::Drained>,
    pub(crate) strace: Option<Mutex<Box<dyn Write + Send>>>,
    /// Syscall numbers already reported as unimplemented (each is logged once).
    pub(crate) unimplemented_seen: Mutex<HashSet<u64>>,
    /// How init ended, once it has.
    init_status: Mutex<Option<ExitStatus>>,
    /// Idle host threads for new tasks.
    pub(crate) host_threads: Arc<crate::task::host_threads::HostThreads>,
    /// The sandbox's load averages (sysinfo, /proc/loadavg).
    pub loadavg: Arc<crate::task::loadavg::LoadAvg>,
    init_done: Condvar,
}

/// The first program's standard streams.
pub enum Stdio {
    /// The caller's stdin, stdout and stderr.
    Host([OwnedFd; 3]),
    /// A sandbox terminal bridged to the caller's (`rvisor do -t`): the program
    /// runs on a pty replica that is its controlling terminal; what the caller
    /// types (read from `input`, a terminal in raw mode) is the pty's input, and
    /// its output goes to `output`.
    Terminal { input: OwnedFd, output: OwnedFd, winsize: [u16; 4] },
}

/// A program to start in a sandbox: its first (init), or one `rvisor exec` adds.
pub struct ProgramSpec {
    /// The program's path in the sandbox; without a slash, it is looked up on the
    /// PATH in `envp` (else the usual default), as execvp does.
    pub path: String,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// What the program's standard streams are.
    pub stdio: Stdio,
    /// Host descriptors it starts with at 3, 4, … (runc's --preserve-fds and
    /// LISTEN_FDS): host files, as its standard streams are.
    pub extra_fds: Vec<OwnedFd>,
    /// The working directory to start in (a path in the sandbox).
    pub cwd: String,
    pub creds: Credentials,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Its capability sets, if not what its euid gives.
    pub caps: Option<crate::task::Capabilities>,
    /// Resource limits to set: (RLIMIT_* number, soft, hard).
    pub rlimits: Vec<(usize, u64, u64)>,
    /// Starts with PR_SET_NO_NEW_PRIVS set (an OCI process's noNewPrivileges).
    pub no_new_privs: bool,
    /// A seccomp filter for the container (its spec's profile, compiled), set
    /// by its init: every process started in the container from outside (init,
    /// `rvisor exec`) runs under it, and their children inherit it.
    pub seccomp: Option<Vec<crate::task::seccomp::Insn>>,
}

/// PID 1, loaded and waiting for [`Init::start`] (between `rvisor create` and
/// `rvisor start`). Dropping it without starting leaves init never run.
pub struct Init {
    go: std::sync::mpsc::Sender<()>,
}

impl Init {
    pub fn start(self) {
        let _ = self.go.send(());
    }
}

impl Kernel {
    pub fn new(cfg: KernelConfig) -> Result<Arc<Kernel>, String> {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        if let Some(m) = &cfg.memory_limit {
            cfg.memory.set_limit((m.read)().map(|l| crate::mm::oom::budget(l, m.in_use_at_boot)));
        }
        let vdso = Frames::allocate(&cfg.memory, rvisor_vdso::SHARED_SIZE as u64).ok_or("no memory for the vDSO")?;
        let first_timens = Frames::allocate(&cfg.memory, rvisor_vdso::TIMENS_SIZE as u64).ok_or("no memory for the vDSO")?;
        cfg.memory.write(vdso.range.start + rvisor_vdso::VVAR_SIZE as u64, rvisor_vdso::IMAGE);
        let clocks = Clocks::new();
        let timers = crate::time::timers::Timers::new();
        let mounts = build_mounts(&cfg.memory, cfg.gofer.clone(), cfg.root_read_only, cfg.root_propagation, cfg.mounts, cpus)?;
        let interfaces = cfg.nics.iter().map(|n| n.info.clone()).collect();
        let mut nics = cfg.nics.into_iter();
        let netstack = nics.next().map(|nic| {
            let name = nic.info.name.clone();
            crate::net::netstack::Netstack::start(nic).map_err(|e| format!("network stack on {name}: {e}"))
        });
        let netstack = netstack.transpose()?;
        for nic in nics {
            tracing::warn!("{}: the network stack drives one interface; this one stays down", nic.info.name);
        }
        let (mf, vvar) = (cfg.memory.clone(), vdso.range.start);
        clocks.source.set_publisher(move |p| rvisor_vdso::Vvar::from_words(mf.atomic_u64s(vvar, rvisor_vdso::VVAR_WORDS)).write(p));
        let time_ns = crate::time::namespace::TimeNamespace::first(first_timens);
        // procfs shows the kernel's own state, so it is mounted as the kernel is made.
        Ok(Arc::new_cyclic(|me| {
            let devpts = crate::fs::devpts::Devpts::new(DEV_PTS);
            let pid_ns = Arc::new(PidNamespace::new(MAX_TASKS));
            let root_container = Container::new(mounts.finish(me, &pid_ns, &devpts, cpus), pid_ns);
            Kernel {
                containers: Mutex::new(vec![Arc::downgrade(&root_container)]),
                root_container,
                devpts,
                console: std::sync::OnceLock::new(),
                console_drained: Arc::default(),
                memfds: crate::fs::memfd::MemfdFs::new(&cfg.memory),
                timerfd_cancel: Default::default(),
                clock_sets: Default::default(),
                memory_limit: cfg.memory_limit,
                cgroup_limits: cfg.cgroup_limits,
                oom_victim: Mutex::default(),
                oom_kills: Default::default(),
                aio_nr: Default::default(),
                shm_locks: Default::default(),
                unix_sockets: Default::default(),
                platform: cfg.platform,
                memory: cfg.memory,
                clocks,
                namespaces: Namespaces {
                    uts: UtsNamespace::new(UtsNames { hostname: cfg.hostname.into_bytes(), domainname: b"(none)".to_vec() }, UserNamespace::initial()),
                    ipc: IpcNamespace::new(UserNamespace::initial()),
                    net: NetNamespace::first(cfg.host_network, interfaces, netstack, cfg.unprivileged_port_start),
                    pid_children: None,
                    time: time_ns.clone(),
                    time_for_children: time_ns,
                },
                cpus,
                futexes: FutexTable::default(),
                cpu_watch: crate::time::process_timers::CpuWatch::new(&timers),
                timers,
                locks: Default::default(),
                vdso,
                strace: cfg.strace.map(Mutex::new),
                unimplemented_seen: Mutex::new(HashSet::new()),
                init_status: Mutex::new(None),
                host_threads: Arc::default(),
                loadavg: Arc::default(),
                init_done: Condvar::new(),
            }
        }))
    }

    /// Loads and runs the sandbox's first program (PID 1), and returns how it
    /// ended; the sandbox ends with it.
    pub fn run_init(self: &Arc<Self>, spec: ProgramSpec) -> Result<ExitStatus, loader::ExecError> {
        self.create_init(spec)?.start();
        Ok(self.wait_init())
    }

    /// Loads the sandbox's first program (PID 1) on its own thread, where it
    /// waits to be started.
    pub fn create_init(self: &Arc<Self>, spec: ProgramSpec) -> Result<Init, loader::ExecError> {
        let (go, gate) = std::sync::mpsc::channel();
        self.start_process(&self.root_container.clone(), spec, Some(gate))?;
        Ok(Init { go })
    }

    /// Adds a container to the sandbox (one of a pod's): its root and mounts,
    /// and its init loaded on its own thread, waiting to be started. Its init
    /// has no parent in the sandbox; [`Kernel::wait_process`] reaps it.
    pub fn create_container(self: &Arc<Self>, root: ContainerRoot, spec: ProgramSpec) -> Result<(Arc<Container>, Init, Arc<ThreadGroup>), ContainerError> {
        let mounts = build_mounts(&self.memory, root.gofer, root.read_only, root.propagation, root.mounts, self.cpus).map_err(ContainerError::Mount)?;
        let pid_ns = if root.share_pids { self.root_container.pid_ns.clone() } else { Arc::new(PidNamespace::new(MAX_TASKS)) };
        let container = Container::new(mounts.finish(&Arc::downgrade(self), &pid_ns, &self.devpts, self.cpus), pid_ns);
        {
            let mut all = self.containers.lock().unwrap_or_else(|e| e.into_inner());
            all.retain(|c| c.strong_count() > 0);
            all.push(Arc::downgrade(&container));
        }
        let (go, gate) = std::sync::mpsc::channel();
        let started = mount_point(&container.mounts.root().root, spec.cwd.as_bytes(), false)
            .map_err(|e| ContainerError::Mount(format!("process cwd {}: {e:?}", spec.cwd)))
            .and_then(|_| self.start_process(&container, spec, Some(gate)).map_err(ContainerError::Exec));
        match started {
            Ok(init) => Ok((container, Init { go }, init)),
            Err(e) => {
                self.remove_container(&container);
                Err(e)
            }
        }
    }

    /// Whether the first container's init has ended (and with it the sandbox).
    pub fn init_exited(&self) -> bool {
        self.init_status.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// How init ended, once it has.
    pub fn wait_init(&self) -> ExitStatus {
        let mut st = self.init_status.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(s) = *st {
                return s;
            }
            st = self.init_done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Starts a process beside init (`rvisor exec`): it has no parent in the
    /// sandbox, as an exec'd process in runsc, and [`Kernel::wait_process`]
    /// reaps it.
    pub fn spawn(self: &Arc<Self>, container: &Arc<Container>, spec: ProgramSpec) -> Result<Arc<ThreadGroup>, loader::ExecError> {
        self.start_process(container, spec, None)
    }

    /// A container [`Kernel::create_container`] added has ended (its init was
    /// reaped): its file systems go.
    pub fn remove_container(&self, container: &Arc<Container>) {
        container.mounts.unmount_all();
    }

    /// Waits for a process [`Kernel::spawn`] started to end, and reaps it.
    pub fn wait_process(&self, tg: &Arc<ThreadGroup>) -> ExitStatus {
        let status = tg.wait_zombie(None).unwrap_or(ExitStatus::killed_by(rvisor_abi::consts::SIGKILL));
        tg.container.pid_ns.release_group(tg);
        status
    }

    /// Makes the directory `path` and any missing on the way (an OCI process's
    /// cwd, which runc makes too).
    pub fn make_dirs(&self, path: &str) -> Result<(), String> {
        mount_point(&self.root_container.mounts.root().root, path.as_bytes(), false).map(drop).map_err(|e| format!("{path}: {e:?}"))
    }

    /// Every process of `container`, as `rvisor ps` lists them.
    pub fn processes(self: &Arc<Self>, container: &Arc<Container>) -> Vec<crate::fs::proc::ProcessInfo> {
        crate::fs::proc::processes(self, container)
    }

    /// The processes of `container`.
    fn groups_of(&self, container: &Arc<Container>) -> impl Iterator<Item = Arc<ThreadGroup>> {
        let container = container.clone();
        container.pid_ns.groups().into_iter().filter(move |tg| Arc::ptr_eq(&tg.container, &container))
    }

    /// The PID namespaces of the sandbox's containers, each once.
    fn pid_namespaces(&self) -> Vec<Arc<PidNamespace>> {
        let mut out: Vec<Arc<PidNamespace>> = Vec::new();
        for c in self.containers.lock().unwrap_or_else(|e| e.into_inner()).iter().filter_map(std::sync::Weak::upgrade) {
            if !out.iter().any(|ns| Arc::ptr_eq(ns, &c.pid_ns)) {
                out.push(c.pid_ns.clone());
            }
        }
        out
    }

    /// Every process in the sandbox, whatever its container.
    pub fn all_groups(&self) -> Vec<Arc<ThreadGroup>> {
        self.pid_namespaces().iter().flat_map(|ns| ns.groups()).collect()
    }

    /// How many threads the sandbox runs.
    pub fn thread_count(&self) -> usize {
        self.pid_namespaces().iter().map(|ns| ns.thread_count()).sum()
    }

    /// Sends `signo` to every process of `container` (`rvisor kill --all`).
    pub fn signal_all(&self, container: &Arc<Container>, signo: u32) {
        for tg in self.groups_of(container) {
            signals::send_to_group(&tg, signals::SigInfo::new(signo, signals::SI_USER));
        }
    }

    /// Ends the sandbox from outside: every process of every container is killed,
    /// as when the gofer serving its files is gone.
    pub fn kill_all(&self) {
        for tg in self.all_groups() {
            self.signal_group(&tg, rvisor_abi::consts::SIGKILL);
        }
    }

    /// Sends `signo` to the init of `container` from outside. False once it has ended.
    pub fn signal_container_init(&self, container: &Arc<Container>, signo: u32) -> bool {
        let Some(init) = container.init() else { return false };
        self.signal_group(&init, signo);
        true
    }

    /// Loads a program as a new process on a thread of its own, which waits on
    /// `gate` (if any) before it runs.
    fn start_process(self: &Arc<Self>, container: &Arc<Container>, spec: ProgramSpec, gate: Option<std::sync::mpsc::Receiver<()>>) -> Result<Arc<ThreadGroup>, loader::ExecError> {
        let (kernel, container) = (self.clone(), container.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("task".into())
            .spawn(move || match kernel.load_process(&container, spec) {
                Ok(task) => {
                    let _ = tx.send(Ok(task.thread.tg.clone()));
                    if gate.is_none_or(|g| g.recv().is_ok()) {
                        task.run();
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            })
            .map_err(|_| loader::ExecError::NoMemory)?;
        rx.recv().unwrap_or(Err(loader::ExecError::NoMemory))
    }

    /// Sends `signo` to the sandbox's init from outside (signals the runtime
    /// received, as `docker kill` or ctrl-C deliver them).
    pub fn signal_init(&self, signo: u32) {
        self.signal_container_init(&self.root_container, signo);
    }

    /// Sends `signo` to process `pid` of `container` from outside (a signal to
    /// the host process that stands for an exec'd one). False if there is no
    /// such process.
    pub fn signal_process(&self, container: &Arc<Container>, pid: i32, signo: u32) -> bool {
        let Some(tg) = self.groups_of(container).find(|tg| tg.tgid == pid) else { return false };
        self.signal_group(&tg, signo);
        true
    }

    /// The memory the sandbox reports as its total (/proc/meminfo, sysinfo): the
    /// host's RAM, or the container's memory limit where that is lower, as runsc
    /// reports it (a JVM or Node sizes its heap from it). Read again each time:
    /// `rvisor update` may change the limit.
    pub fn memory_total(&self) -> u64 {
        let ram = crate::fs::proc::ram_total();
        self.memory_limit.as_ref().and_then(|m| (m.read)()).map_or(ram, |limit| limit.min(ram))
    }

    /// Sends `signo` to the process `tg` from outside (nothing, once it is gone).
    pub fn signal_group(&self, tg: &Arc<ThreadGroup>, signo: u32) {
        signals::send_to_group(tg, signals::SigInfo::new(signo, signals::SI_USER));
    }

    /// Init has exited: like Linux tearing down a PID namespace, every other
    /// process is killed, and `run_init` returns.
    pub(crate) fn init_died(&self, status: ExitStatus) {
        for tg in self.all_groups() {
            if !self.root_container.is_init(&tg) {
                signals::group_exit(&tg, ExitStatus::killed_by(rvisor_abi::consts::SIGKILL));
            }
        }
        *self.init_status.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
        self.init_done.notify_all();
    }

    /// The init of a container the sandbox did not boot with has exited: the
    /// rest of the container is killed with it.
    pub(crate) fn container_init_died(&self, container: &Arc<Container>) {
        for tg in self.groups_of(container) {
            if !container.is_init(&tg) {
                signals::group_exit(&tg, ExitStatus::killed_by(rvisor_abi::consts::SIGKILL));
            }
        }
    }

    /// Builds a process: address space, image, fd table; the first one built is
    /// PID 1. Runs on the task's own thread, which the platform binds the address
    /// space to.
    fn load_process(self: &Arc<Self>, container: &Arc<Container>, spec: ProgramSpec) -> Result<Task, loader::ExecError> {
        let fs = Arc::new(FsContext::new(container.mounts.clone()));
        let root = fs.root();
        // The process's own walks, as its exec would make them.
        let caps = spec.caps.unwrap_or_else(|| crate::task::Capabilities::for_euid(spec.creds.euid)).effective;
        let c = FsCreds { uid: spec.creds.euid, gid: spec.creds.egid, groups: spec.groups.clone(), caps, ns: None, landlock: None };
        if let Ok(d) = walk(&c, &root, &root, spec.cwd.as_bytes(), Follow::Yes) {
            if d.is_dir() {
                fs.set_cwd(d);
            }
        }
        let path = search_path(&fs, &c, &spec.path, &spec.envp);
        let prog = find_program(&fs, &c, &self.memory, &path, None, spec.argv, None)?;
        let exe = walk(&c, &root, &fs.cwd(), prog.path.as_bytes(), Follow::Yes).map(|d| String::from_utf8_lossy(&d.path()).into_owned()).unwrap_or(prog.path.clone());
        let mut ctx = self.platform.new_context();
        let c = spec.creds;
        let timens = self.namespaces.time.enter(&self.memory).map_err(|_| crate::loader::ExecError::NoMemory)?;
        let stack_limit = spec.rlimits.iter().find(|l| l.0 == crate::task::RLIMIT_STACK).map_or(crate::task::default_rlimits()[crate::task::RLIMIT_STACK].cur, |l| l.1);
        let (mm, image) = load_program(self, ctx.as_mut(), &prog, &spec.envp, [c.uid, c.euid, c.gid, c.egid], &timens, crate::mm::GrowthLimits { stack: stack_limit, ..Default::default() }, 0)?;
        let fds = Arc::new(FdTable::default());
        let console = match spec.stdio {
            Stdio::Host(stdio) => {
                for (i, fd) in stdio.into_iter().enumerate() {
                    fds.install_at(Fd(i as i32), Arc::new(HostFile::new(fd)), false);
                }
                None
            }
            Stdio::Terminal { input, output, winsize } => {
                let (term, replica) = self.open_console(&root, spec.creds.euid, winsize)?;
                for i in 0..3 {
                    fds.install_at(Fd(i), replica.clone(), false);
                }
                Some((term, input, output))
            }
        };
        for (i, fd) in spec.extra_fds.into_iter().enumerate() {
            fds.install_at(Fd(3 + i as i32), Arc::new(HostFile::new(fd)), false);
        }
        let mut cpu = CpuState::default();
        cpu.regs.rip = image.entry;
        cpu.regs.rsp = image.sp;
        let tid = container.pid_ns.alloc().map_err(|_| loader::ExecError::NoMemory)?;
        let tg = Arc::new(ThreadGroup::new(tid, None, spec.creds, exe, container.clone()));
        container.set_init(&tg);
        *tg.groups.lock().unwrap_or_else(|e| e.into_inner()) = spec.groups;
        if let Some(caps) = spec.caps {
            *tg.caps.lock().unwrap_or_else(|e| e.into_inner()) = caps;
        }
        tg.no_new_privs.store(i32::from(spec.no_new_privs), std::sync::atomic::Ordering::Relaxed);
        {
            let mut limits = tg.rlimits.lock().unwrap_or_else(|e| e.into_inner());
            for &(r, cur, max) in &spec.rlimits {
                if let Some(l) = limits.get_mut(r) {
                    *l = rvisor_abi::structs::Rlimit { cur: cur.min(max), max };
                }
            }
        }
        mm.set_growth_limits(tg.growth_limits());
        let thread = Arc::new(Thread::new(tid, tg.clone(), comm_from_path(&path), self.loadavg.clone(), self.clocks.uptime_ns()));
        if let Some(prog) = spec.seccomp {
            let filter = crate::task::seccomp::Filter::new(prog, None).map_err(|e| loader::ExecError::Errno(e.code))?;
            container.set_seccomp(filter);
        }
        if let Some(filter) = container.seccomp() {
            thread.set_seccomp(crate::task::seccomp::Mode::Filter(filter));
        }
        tg.state().threads.push(thread.clone());
        if let Some((term, input, output)) = console {
            // Init leads the session the console controls, in the foreground.
            {
                let mut st = term.lock();
                st.session = tid;
                st.pid_ns = Arc::downgrade(&container.pid_ns);
                st.fg_pgrp = tid;
            }
            *tg.tty.lock().unwrap_or_else(|e| e.into_inner()) = Some(term.clone());
            // Only the console's draining holds up the sandbox's end (an exec'd
            // process's terminal draining first must not let it go early).
            let console = self.console.get().is_some_and(|c| Arc::ptr_eq(c, &term));
            let drained = if console { self.console_drained.clone() } else { Arc::default() };
            crate::tty::bridge(term, input, output, drained).map_err(|_| loader::ExecError::NoMemory)?;
        }
        container.pid_ns.register_group(tid, &tg);
        container.pid_ns.register_thread(tid, &thread);
        Ok(Task::new(self.clone(), thread, Resources { mm, fds, fs, ns: self.namespaces.clone() }, cpu, ctx))
    }

    /// Makes the console: a pty pair whose master the `-t` bridge holds, and an
    /// open replica for init's standard streams.
    fn open_console(&self, root: &Arc<crate::vfs::Dentry>, owner: u32, winsize: [u16; 4]) -> Result<(Arc<crate::tty::Terminal>, Arc<dyn crate::vfs::FileDescription>), loader::ExecError> {
        let [ws_row, ws_col, ws_xpixel, ws_ypixel] = winsize;
        let term = self.devpts.new_terminal(owner, rvisor_abi::structs::Winsize { ws_row, ws_col, ws_xpixel, ws_ypixel }).map_err(|e| loader::ExecError::Errno(e.code))?;
        term.lock().locked = false;
        let path = format!("/dev/pts/{}", term.index);
        let dentry = walk(&FsCreds::kernel(), root, root, path.as_bytes(), Follow::Yes).map_err(|e| loader::ExecError::Errno(e.code))?;
        let replica: Arc<dyn crate::vfs::FileDescription> = Arc::new(crate::tty::PtyFile::replica(term.clone(), dentry, crate::vfs::inode::OpenFlags::RDWR));
        let _ = self.console.set(term.clone());
        Ok((term, replica))
    }

    /// The caller's terminal changed size (SIGWINCH): so does the console.
    pub fn console_resized(&self, winsize: [u16; 4]) {
        if let Some(term) = self.console.get() {
            resize(term, winsize);
        }
    }

    /// The host terminal of an exec'd process changed size: so does the
    /// controlling terminal of process `pid` of `container`. False without one.
    pub fn terminal_resized(&self, container: &Arc<Container>, pid: i32, winsize: [u16; 4]) -> bool {
        let term = self.groups_of(container).find(|tg| tg.tgid == pid).and_then(|tg| tg.tty.lock().unwrap_or_else(|e| e.into_inner()).clone());
        term.map(|t| resize(&t, winsize)).is_some()
    }

    /// The sandbox's realtime clock was set: absolute realtime timers and sleeps
    /// move with it, and TFD_TIMER_CANCEL_ON_SET timerfds are cancelled.
    pub(crate) fn clock_was_set(&self) {
        self.timers.clock_was_set(self.clocks.realtime_ns());
        self.timerfd_cancel.clock_was_set();
        self.clock_sets.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.clock_sets.sleepers.notify();
    }

    /// Writes one `--strace` line.
    pub(crate) fn strace_line(&self, line: &str) {
        if let Some(w) = &self.strace {
            let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(w, "{line}");
        }
    }
}

fn resize(term: &crate::tty::Terminal, winsize: [u16; 4]) {
    let [ws_row, ws_col, ws_xpixel, ws_ypixel] = winsize;
    term.set_winsize(rvisor_abi::structs::Winsize { ws_row, ws_col, ws_xpixel, ws_ypixel });
}

/// Device numbers of the synthetic file systems (anonymous devices, major 0).
const DEV_PROC: u64 = 0x14;
const DEV_SYS: u64 = 0x15;
const DEV_DEV: u64 = 0x16;
const DEV_PTS: u64 = 0x17;
const DEV_CGROUP: u64 = 0x18;

/// The sandbox's root: a host directory (read-only, through the gofer) under a
/// tmpfs overlay.
fn root_inode(mf: &Arc<MemoryFile>, gofer: Arc<rvisor_gofer::Client>) -> rvisor_abi::SysResult<Arc<dyn Inode>> {
    let upper = Tmpfs::new(mf.clone(), 0x80).root(0o755);
    Ok(OverlayInode::root(upper, GoferInode::root(gofer, false)?))
}

/// The mount tree [`build_mounts`] makes, and the mounts that need the kernel
/// itself (made once it exists).
struct Mounts {
    ns: Arc<MountNamespace>,
    pending: Vec<(Arc<crate::vfs::Dentry>, Special, MountFlags)>,
    /// The root's propagation type, given once every mount is made (as runc
    /// sets it on the finished root).
    propagation: u64,
    /// Each mount's own propagation changes, given after the root's.
    changes: Vec<(Made, Vec<u64>)>,
}

/// A mount [`build_mounts`] made, or the one `Mounts::finish` makes from
/// `pending[i]`.
enum Made {
    Now(Arc<Mount>),
    Pending(usize),
}

/// Gives `m` the propagation type of mount(2) flags `flags` (with MS_REC, its
/// whole subtree); no type at all changes nothing.
fn change_propagation(ns: &MountNamespace, m: &Arc<Mount>, flags: u64) {
    if let Some(kind) = propagation::Kind::from_flags(flags & !propagation::MS_REC) {
        let mounts = if flags & propagation::MS_REC != 0 { ns.subtree(m) } else { vec![m.clone()] };
        let mut state = propagation::lock();
        mounts.iter().for_each(|m| state.change(m, kind));
    }
}

impl Mounts {
    /// Mounts what needs the kernel (`me`): procfs, cgroup2, the sandbox's
    /// devpts; then gives the root its propagation type.
    fn finish(self, me: &std::sync::Weak<Kernel>, pid_ns: &Arc<PidNamespace>, devpts: &Arc<crate::fs::devpts::Devpts>, cpus: usize) -> Arc<MountNamespace> {
        let made: Vec<Arc<Mount>> = self
            .pending
            .into_iter()
            .map(|(at, special, flags)| {
                let (inode, fstype) = special.make(me, pid_ns, devpts, cpus);
                let m = Mount::new(UserNamespace::initial(), inode, Some(at), fstype, fstype, flags);
                self.ns.add(m.clone());
                m
            })
            .collect();
        change_propagation(&self.ns, &self.ns.root(), self.propagation);
        for (mount, changes) in self.changes {
            let m = match mount {
                Made::Now(m) => m,
                Made::Pending(i) => made[i].clone(),
            };
            changes.iter().for_each(|&flags| change_propagation(&self.ns, &m, flags));
        }
        self.ns
    }
}

/// The file systems made from the kernel's own state.
#[derive(Clone, Copy)]
pub(crate) enum Special {
    Proc,
    Sysfs,
    Devpts,
    Cgroup,
}

impl Special {
    /// The one called `fstype` in mount(2), if any.
    pub(crate) fn by_name(fstype: &[u8]) -> Option<Special> {
        match fstype {
            b"proc" => Some(Special::Proc),
            b"sysfs" => Some(Special::Sysfs),
            b"devpts" => Some(Special::Devpts),
            b"cgroup2" => Some(Special::Cgroup),
            _ => None,
        }
    }

    /// Its type name, as /proc/mounts shows it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Special::Proc => "proc",
            Special::Sysfs => "sysfs",
            Special::Devpts => "devpts",
            Special::Cgroup => "cgroup2",
        }
    }

    /// Its root, for the processes of `pid_ns`, and its type name.
    pub(crate) fn make(self, me: &std::sync::Weak<Kernel>, pid_ns: &Arc<PidNamespace>, devpts: &Arc<crate::fs::devpts::Devpts>, cpus: usize) -> (Arc<dyn Inode>, &'static str) {
        let root = match self {
            Special::Proc => ProcFs::new(me.clone(), pid_ns.clone(), DEV_PROC).root(),
            Special::Sysfs => new_sysfs(DEV_SYS, cpus),
            Special::Devpts => devpts.root(),
            Special::Cgroup => new_cgroupfs(me.clone(), pid_ns.clone(), DEV_CGROUP),
        };
        (root, self.name())
    }
}

/// Mounts the host directory `gofer` serves as a root (under an overlay), then
/// `specs` over it, in order, each on what the tree before it has at its
/// target; missing directories (or, for a file, the file) are made in the
/// root's overlay.
fn build_mounts(mf: &Arc<MemoryFile>, gofer: Arc<rvisor_gofer::Client>, read_only: bool, propagation: u64, specs: Vec<MountSpec>, cpus: usize) -> Result<Mounts, String> {
    let root = root_inode(mf, gofer).map_err(|e| format!("cannot mount the root: {e:?}"))?;
    let root = Mount::new(UserNamespace::initial(), root, None, "overlay", "/", MountFlags::default().read_only(read_only));
    let ns = MountNamespace::new(root.clone());
    let (mut pending, mut changes) = (Vec::new(), Vec::new());
    match mount_each(mf, &root, &ns, &mut pending, &mut changes, specs, cpus) {
        Ok(()) => Ok(Mounts { ns, pending, propagation, changes }),
        Err(e) => {
            // What was mounted goes (a mount and its mount point hold each other).
            ns.unmount_all();
            Err(e)
        }
    }
}

/// [`build_mounts`]' mounts over `root`, into `ns`; procfs, cgroup2 and devpts
/// into `pending`; their propagation changes into `changes`. sysfs is mounted at once, so that a cgroup2 mount after it
/// lands on its /sys/fs/cgroup rather than on a directory it would hide.
#[allow(clippy::type_complexity)]
fn mount_each(mf: &Arc<MemoryFile>, root: &Arc<Mount>, ns: &Arc<MountNamespace>, pending: &mut Vec<(Arc<crate::vfs::Dentry>, Special, MountFlags)>, changes: &mut Vec<(Made, Vec<u64>)>, specs: Vec<MountSpec>, cpus: usize) -> Result<(), String> {
    let mut tmpfs_dev = 0x100;
    for spec in specs {
        let file = matches!(spec.source, MountSource::GoferFile(..));
        let at = mount_point(&root.root, spec.target.as_bytes(), file).map_err(|e| format!("cannot mount on {}: {e:?}", spec.target))?;
        let special = match spec.source {
            MountSource::Proc => Some(Special::Proc),
            MountSource::Cgroup => Some(Special::Cgroup),
            MountSource::Devpts => Some(Special::Devpts),
            _ => None,
        };
        if let Some(special) = special {
            if !spec.propagation.is_empty() {
                changes.push((Made::Pending(pending.len()), spec.propagation));
            }
            pending.push((at, special, spec.flags));
            continue;
        }
        let (inode, fstype, source): (Arc<dyn Inode>, Cow<'static, str>, Option<String>) = match spec.source {
            // Deferred above.
            MountSource::Proc | MountSource::Cgroup | MountSource::Devpts => continue,
            MountSource::Sysfs => (new_sysfs(DEV_SYS, cpus), "sysfs".into(), None),
            MountSource::Devfs => {
                tmpfs_dev += 1;
                (new_devfs(DEV_DEV, Tmpfs::new(mf.clone(), tmpfs_dev)), "devtmpfs".into(), None)
            }
            MountSource::Tmpfs { mode, size } => {
                tmpfs_dev += 1;
                (Tmpfs::sized(mf.clone(), tmpfs_dev, size).root(mode), "tmpfs".into(), None)
            }
            MountSource::Gofer(client, host) => {
                let (fstype, source) = host_names(host);
                (GoferInode::root(client, !spec.flags.has(MountFlags::RDONLY)).map_err(|e| format!("{}: {e:?}", spec.target))?, fstype, source)
            }
            MountSource::GoferFile(client, name, host) => {
                let (fstype, source) = host_names(host);
                let dir = GoferInode::root(client, !spec.flags.has(MountFlags::RDONLY)).map_err(|e| format!("{}: {e:?}", spec.target))?;
                (dir.lookup(&name).map_err(|e| format!("{}: {e:?}", spec.target))?, fstype, source)
            }
        };
        let source = source.unwrap_or_else(|| fstype.to_string());
        let m = Mount::new(UserNamespace::initial(), inode, Some(at), fstype, &source, spec.flags);
        ns.add(m.clone());
        if !spec.propagation.is_empty() {
            changes.push((Made::Now(m), spec.propagation));
        }
    }
    Ok(())
}

/// A host directory's mount's type and source: its host file system's, or 9P's.
fn host_names(host: Option<HostFs>) -> (Cow<'static, str>, Option<String>) {
    match host {
        Some(h) => (h.fstype.into(), Some(h.source)),
        None => ("9p".into(), None),
    }
}

/// The dentry at `path` to mount on, making what is missing on the way.
fn mount_point(root: &Arc<crate::vfs::Dentry>, path: &[u8], file: bool) -> rvisor_abi::SysResult<Arc<crate::vfs::Dentry>> {
    let names: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|n| !n.is_empty() && *n != b".").collect();
    let mut at = root.clone();
    for (i, name) in names.iter().enumerate() {
        let last = i + 1 == names.len();
        let next = walk(&FsCreds::kernel(), root, &at, name, Follow::Yes);
        at = match next {
            Ok(d) => d,
            Err(e) if e.code == rvisor_abi::ErrnoCode::ENOENT => {
                if last && file {
                    at.inode.create(name, 0o644)?;
                } else {
                    at.inode.mkdir(name, 0o755)?;
                }
                at.forget(name);
                walk(&FsCreds::kernel(), root, &at, name, Follow::Yes)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(at)
}

/// Where execvp would find `name`: itself if it has a slash, else the first
/// regular file of that name on the PATH in `envp`.
fn search_path(fs: &FsContext, c: &FsCreds, name: &str, envp: &[Vec<u8>]) -> String {
    if name.contains('/') || name.is_empty() {
        return name.to_string();
    }
    let path = envp.iter().find_map(|e| e.strip_prefix(b"PATH=")).unwrap_or(b"/usr/local/bin:/usr/bin:/bin");
    let root = fs.root();
    for dir in path.split(|&b| b == b':').filter(|d| !d.is_empty()) {
        let candidate = [dir, b"/", name.as_bytes()].concat();
        if walk(c, &root, &fs.cwd(), &candidate, Follow::Yes).is_ok_and(|d| d.inode.kind() == crate::vfs::inode::S_IFREG) {
            return String::from_utf8_lossy(&candidate).into_owned();
        }
    }
    name.to_string()
}
