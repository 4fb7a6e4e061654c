//! The kernel object: what every task shares, and starting the first program.

use crate::futex::FutexTable;
use crate::loader;
use crate::mm::Frames;
use crate::fs::{dev::new_devfs, gofer::GoferInode, overlay::OverlayInode, proc::ProcFs, sys::new_sysfs, tmpfs::Tmpfs};
use crate::vfs::Inode;
use crate::task::exec::{find_program, load_program};
use crate::task::{comm_from_path, signals, Credentials, ExitStatus, PidNamespace, Resources, Task, Thread, ThreadGroup};
use crate::vfs::path::walk;
use crate::vfs::{Follow, FsContext, Mount, MountNamespace};
use crate::time::Clocks;
use crate::vfs::{Fd, FdTable, HostFile};
use rvisor_memory::MemoryFile;
use rvisor_platform::{CpuState, Platform};
use std::collections::HashSet;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, Weak};

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
}

pub struct Kernel {
    pub platform: Arc<dyn Platform>,
    pub memory: Arc<MemoryFile>,
    pub clocks: Clocks,
    pub hostname: String,
    /// Number of CPUs the sandbox reports.
    pub cpus: usize,
    pub pid_ns: PidNamespace,
    pub futexes: FutexTable,
    pub timers: Arc<crate::time::timers::Timers>,
    pub cpu_watch: Arc<crate::time::process_timers::CpuWatch>,
    /// Where memfd_create's files live.
    pub memfds: crate::fs::memfd::MemfdFs,
    pub timerfd_cancel: crate::fs::timerfd::CancelOnSet,
    pub locks: crate::vfs::locks::LockTable,
    /// The vDSO parameter page followed by the vDSO image, shared by every process.
    pub vdso: Arc<Frames>,
    pub mounts: MountNamespace,
    pub(crate) strace: Option<Mutex<Box<dyn Write + Send>>>,
    /// Syscall numbers already reported as unimplemented (each is logged once).
    pub(crate) unimplemented_seen: Mutex<HashSet<u64>>,
    /// How init ended, once it has.
    init_status: Mutex<Option<ExitStatus>>,
    init_done: Condvar,
}

/// The first program of a sandbox.
pub struct ProgramSpec {
    /// The program's path in the sandbox.
    pub path: String,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// The caller's stdin, stdout and stderr.
    pub stdio: [OwnedFd; 3],
    /// The working directory to start in (a path in the sandbox).
    pub cwd: String,
    pub creds: Credentials,
}

impl Kernel {
    pub fn new(cfg: KernelConfig) -> Result<Arc<Kernel>, String> {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let vdso = Frames::allocate(&cfg.memory, rvisor_vdso::MAPPING_SIZE as u64).ok_or("no memory for the vDSO")?;
        cfg.memory.write(vdso.range.start + rvisor_vdso::VVAR_SIZE as u64, rvisor_vdso::IMAGE);
        let clocks = Clocks::new();
        let timers = crate::time::timers::Timers::new();
        let root = root_inode(&cfg.memory, cfg.gofer.clone()).map_err(|e| format!("cannot mount the root: {e:?}"))?;
        let (mf, vvar) = (cfg.memory.clone(), vdso.range.start);
        clocks.source.set_publisher(move |p| rvisor_vdso::Vvar::from_words(mf.atomic_u64s(vvar, rvisor_vdso::VVAR_WORDS)).write(p));
        // procfs shows the kernel's own state, so it is mounted as the kernel is made.
        Ok(Arc::new_cyclic(|me| Kernel {
            mounts: build_mounts(root, &cfg.memory, me.clone(), cpus),
            memfds: crate::fs::memfd::MemfdFs::new(&cfg.memory),
            timerfd_cancel: Default::default(),
            platform: cfg.platform,
            memory: cfg.memory,
            clocks,
            hostname: cfg.hostname,
            cpus,
            pid_ns: PidNamespace::new(MAX_TASKS),
            futexes: FutexTable::default(),
            cpu_watch: crate::time::process_timers::CpuWatch::new(&timers),
            timers,
            locks: Default::default(),
            vdso,
            strace: cfg.strace.map(Mutex::new),
            unimplemented_seen: Mutex::new(HashSet::new()),
            init_status: Mutex::new(None),
            init_done: Condvar::new(),
        }))
    }

    /// Loads and runs the sandbox's first program (PID 1), and returns how it
    /// ended; the sandbox ends with it.
    pub fn run_init(self: &Arc<Self>, spec: ProgramSpec) -> Result<ExitStatus, loader::ExecError> {
        let kernel = self.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("task-1".into())
            .spawn(move || match kernel.start_init(spec) {
                Ok(task) => {
                    let _ = tx.send(Ok(()));
                    task.run();
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            })
            .map_err(|_| loader::ExecError::NoMemory)?;
        rx.recv().unwrap_or(Err(loader::ExecError::NoMemory))?;
        let mut st = self.init_status.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(s) = *st {
                return Ok(s);
            }
            st = self.init_done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Sends `signo` to the sandbox's init from outside (signals the runtime
    /// received, as `docker kill` or ctrl-C deliver them).
    pub fn signal_init(&self, signo: u32) {
        if let Some(init) = self.pid_ns.group(1) {
            signals::send_to_group(&init, signals::SigInfo::new(signo, signals::SI_USER));
        }
    }

    /// Init has exited: like Linux tearing down a PID namespace, every other
    /// process is killed, and `run_init` returns.
    pub(crate) fn init_died(&self, status: ExitStatus) {
        for tg in self.pid_ns.groups() {
            if tg.tgid != 1 {
                signals::group_exit(&tg, ExitStatus::killed_by(rvisor_abi::consts::SIGKILL));
            }
        }
        *self.init_status.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
        self.init_done.notify_all();
    }

    /// Builds PID 1: address space, image, fd table. Runs on the task's own thread,
    /// which the platform binds the address space to.
    fn start_init(self: &Arc<Self>, spec: ProgramSpec) -> Result<Task, loader::ExecError> {
        let fs = Arc::new(FsContext::new(self.mounts.root.root.clone()));
        let root = fs.root();
        if let Ok(d) = walk(&root, &root, spec.cwd.as_bytes(), Follow::Yes) {
            if d.is_dir() {
                fs.set_cwd(d);
            }
        }
        let prog = find_program(&fs, &spec.path, None, spec.argv)?;
        let exe = walk(&root, &fs.cwd(), prog.path.as_bytes(), Follow::Yes).map(|d| String::from_utf8_lossy(&d.path()).into_owned()).unwrap_or(prog.path.clone());
        let mut ctx = self.platform.new_context();
        let c = spec.creds;
        let (mm, image) = load_program(self, ctx.as_mut(), &prog, &spec.envp, [c.uid, c.euid, c.gid, c.egid])?;
        let fds = Arc::new(FdTable::default());
        for (i, fd) in spec.stdio.into_iter().enumerate() {
            fds.install_at(Fd(i as i32), Arc::new(HostFile::new(fd)), false);
        }
        let mut cpu = CpuState::default();
        cpu.regs.rip = image.entry;
        cpu.regs.rsp = image.sp;
        let tid = self.pid_ns.alloc().map_err(|_| loader::ExecError::NoMemory)?;
        let tg = Arc::new(ThreadGroup::new(tid, None, spec.creds, exe));
        let thread = Arc::new(Thread::new(tid, tg.clone(), comm_from_path(&spec.path)));
        tg.state().threads.push(thread.clone());
        self.pid_ns.register_group(tid, &tg);
        self.pid_ns.register_thread(tid, &thread);
        Ok(Task::new(self.clone(), thread, Resources { mm, fds, fs }, cpu, ctx))
    }

    /// Writes one `--strace` line.
    pub(crate) fn strace_line(&self, line: &str) {
        if let Some(w) = &self.strace {
            let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(w, "{line}");
        }
    }
}

/// Device numbers of the synthetic file systems (anonymous devices, major 0).
const DEV_PROC: u64 = 0x14;
const DEV_SYS: u64 = 0x15;
const DEV_DEV: u64 = 0x16;

/// The sandbox's root: the host root (read-only, through the gofer) under a tmpfs
/// overlay.
fn root_inode(mf: &Arc<MemoryFile>, gofer: Arc<rvisor_gofer::Client>) -> rvisor_abi::SysResult<Arc<dyn Inode>> {
    let upper = Tmpfs::new(mf.clone(), 0x80).root(0o755);
    Ok(OverlayInode::root(upper, GoferInode::root(gofer)?))
}

/// The sandbox's mounts: the root; procfs at /proc, devfs at /dev with a tmpfs on
/// /dev/shm, sysfs at /sys, and tmpfs at /tmp, each where the root has that
/// directory to mount on.
fn build_mounts(root_inode: Arc<dyn Inode>, mf: &Arc<MemoryFile>, kernel: Weak<Kernel>, cpus: usize) -> MountNamespace {
    let root = Mount::new(root_inode, None, "overlay", "/", false);
    let ns = MountNamespace::new(root.clone());
    let at = |path: &str| walk(&root.root, &root.root, path.as_bytes(), Follow::Yes).ok().filter(|d| d.is_dir());
    if let Some(d) = at("/proc") {
        ns.add(Mount::new(ProcFs::new(kernel, DEV_PROC).root(), Some(d), "proc", "proc", false));
    }
    if let Some(d) = at("/dev") {
        ns.add(Mount::new(new_devfs(DEV_DEV), Some(d), "devtmpfs", "devtmpfs", false));
        // devfs has a "shm" directory to mount on.
        if let Some(shm) = at("/dev/shm") {
            ns.add(Mount::new(Tmpfs::new(mf.clone(), 0x101).root(0o1777), Some(shm), "tmpfs", "tmpfs", false));
        }
    }
    if let Some(d) = at("/sys") {
        ns.add(Mount::new(new_sysfs(DEV_SYS, cpus), Some(d), "sysfs", "sysfs", false));
    }
    if let Some(d) = at("/tmp") {
        ns.add(Mount::new(Tmpfs::new(mf.clone(), 0x100).root(0o1777), Some(d), "tmpfs", "tmpfs", false));
    }
    ns
}
