//! The kernel object: what every task shares, and starting the first program.

use crate::loader;
use crate::mm::MemoryManager;
use crate::task::{Credentials, ExitStatus, Task, ThreadGroup};
use crate::time::Clocks;
use crate::vfs::{Fd, FdTable, HostFile};
use rvisor_memory::MemoryFile;
use rvisor_platform::{CpuState, Platform};
use std::collections::HashSet;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

pub struct KernelConfig {
    pub platform: Arc<dyn Platform>,
    pub memory: Arc<MemoryFile>,
    /// Where `--strace` lines go, if tracing.
    pub strace: Option<Box<dyn Write + Send>>,
    pub hostname: String,
}

pub struct Kernel {
    pub platform: Arc<dyn Platform>,
    pub memory: Arc<MemoryFile>,
    pub clocks: Clocks,
    pub hostname: String,
    /// Number of CPUs the sandbox reports.
    pub cpus: usize,
    pub(crate) strace: Option<Mutex<Box<dyn Write + Send>>>,
    /// Syscall numbers already reported as unimplemented (each is logged once).
    pub(crate) unimplemented_seen: Mutex<HashSet<u64>>,
}

/// The first program of a sandbox.
pub struct ProgramSpec {
    pub image: Vec<u8>,
    /// The path as the caller named it (AT_EXECFN).
    pub path: String,
    /// The absolute path of the executable (/proc/self/exe).
    pub exe: String,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// The caller's stdin, stdout and stderr.
    pub stdio: [OwnedFd; 3],
    pub creds: Credentials,
}

impl Kernel {
    pub fn new(cfg: KernelConfig) -> Arc<Kernel> {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Arc::new(Kernel {
            platform: cfg.platform,
            memory: cfg.memory,
            clocks: Clocks::new(),
            hostname: cfg.hostname,
            cpus,
            strace: cfg.strace.map(Mutex::new),
            unimplemented_seen: Mutex::new(HashSet::new()),
        })
    }

    /// Loads and runs the sandbox's first program (PID 1) to completion on a
    /// dedicated task thread, and returns how it ended.
    pub fn run_init(self: &Arc<Self>, spec: ProgramSpec) -> Result<ExitStatus, loader::ExecError> {
        let kernel = self.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("task-1".into())
            .spawn(move || {
                let task = match kernel.start_init(spec) {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let _ = tx.send(Ok(task.run()));
            })
            .map_err(|_| loader::ExecError::NoMemory)?;
        let result = rx.recv().unwrap_or(Ok(ExitStatus::Signaled { signo: 9, core: false }));
        let _ = handle.join();
        result
    }

    /// Builds PID 1: address space, image, fd table. Runs on the task's own thread,
    /// which the platform binds the address space to.
    fn start_init(self: &Arc<Self>, spec: ProgramSpec) -> Result<Task, loader::ExecError> {
        let aspace = self.platform.new_address_space().map_err(|e| {
            tracing::error!("cannot create an address space: {e}");
            loader::ExecError::NoMemory
        })?;
        let mm = Arc::new(MemoryManager::new(self.memory.clone(), aspace, self.platform.max_user_address()));
        let mut ctx = self.platform.new_context();
        let c = spec.creds;
        let image = loader::load(&mm, ctx.as_mut(), &spec.image, &spec.path, &spec.argv, &spec.envp, [c.uid, c.euid, c.gid, c.egid])?;
        let fds = Arc::new(FdTable::default());
        for (i, fd) in spec.stdio.into_iter().enumerate() {
            fds.install_at(Fd(i as i32), Arc::new(HostFile::new(fd)));
        }
        let mut cpu = CpuState::default();
        cpu.regs.rip = image.entry;
        cpu.regs.rsp = image.sp;
        let tg = Arc::new(ThreadGroup::new(1, 0, spec.creds, spec.exe));
        Ok(Task::new(self.clone(), 1, tg, mm, fds, cpu, ctx))
    }
}

impl Kernel {
    /// Writes one `--strace` line.
    pub(crate) fn strace_line(&self, line: &str) {
        if let Some(w) = &self.strace {
            let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(w, "{line}");
        }
    }
}
