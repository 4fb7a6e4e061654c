//! execve: replacing a process's image.

use super::signals::{SIG_DFL, SIG_IGN};
use super::{comm_from_path, Task};
use crate::loader;
use crate::mm::MemoryManager;
use rvisor_abi::{errno, ErrnoCode, Errno, SysResult};
use rvisor_platform::CpuState;
use std::sync::Arc;

/// Where exec finds program images. A bridge until the VFS lands: the runtime
/// serves them from the host's read-only view, and the kernel opens no host path.
pub trait ExecutableSource: Send + Sync {
    /// The bytes of the executable at `path`, or ENOENT, EACCES...
    fn read(&self, path: &str) -> Result<Vec<u8>, ErrnoCode>;
}

impl Task {
    pub fn do_execve(&mut self, path: String, argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> SysResult<()> {
        let image = self.kernel.executables.read(&path).map_err(Errno::new)?;
        loader::check(&image).map_err(|e| match e {
            loader::ExecError::NoMemory => errno!(ENOMEM),
            _ => errno!(ENOEXEC),
        })?;
        self.dethread()?;

        // From here on the old image is gone: failures kill the process.
        let aspace = self.kernel.platform.new_address_space().map_err(|_| errno!(ENOMEM))?;
        let mm = Arc::new(MemoryManager::new(self.kernel.memory.clone(), aspace, self.kernel.platform.max_user_address()));
        // Move this context onto the new address space now: it gives up its thread
        // in the old stub, which must be gone before the old address space is reaped.
        if self.ctx.sync(&mm.aspace).is_err() {
            self.exit_group(super::ExitStatus::killed_by(rvisor_abi::consts::SIGKILL));
            return Ok(());
        }
        let creds = self.tg.creds();
        let loaded = loader::load(&mm, self.ctx.as_mut(), &self.kernel.vdso, &image, &path, &argv, &envp, [creds.uid, creds.euid, creds.gid, creds.egid]);
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("exec of {path} failed after the point of no return: {e}");
                self.exit_group(super::ExitStatus::killed_by(rvisor_abi::consts::SIGSEGV));
                return Ok(());
            }
        };
        self.mm = mm;
        self.publish_resources();
        self.fds.close_on_exec();
        {
            let mut sig = self.tg.sig();
            for a in sig.actions.iter_mut() {
                if a.handler != SIG_IGN {
                    *a = rvisor_abi::structs::KernelSigaction::zeroed();
                    a.handler = SIG_DFL;
                }
            }
        }
        {
            let mut s = self.thread.sig();
            s.altstack = Default::default();
        }
        *self.tg.exe.lock().unwrap_or_else(|e| e.into_inner()) = path.clone();
        *self.thread.comm.lock().unwrap_or_else(|e| e.into_inner()) = comm_from_path(&path);
        self.clear_child_tid = rvisor_abi::UserAddr::NULL;
        self.robust_list = rvisor_abi::UserAddr::NULL;
        self.cpu = CpuState::default();
        self.cpu.regs.rip = loaded.entry;
        self.cpu.regs.rsp = loaded.sp;
        self.release_vfork_parent();
        Ok(())
    }

    /// Makes the calling thread the only one in its group, and its leader.
    fn dethread(&mut self) -> SysResult<()> {
        let others = {
            let mut st = self.tg.state();
            if st.exiting.is_some() || st.execer.is_some() {
                return Err(errno!(EAGAIN));
            }
            let others: Vec<_> = st.threads.iter().filter(|t| !Arc::ptr_eq(t, &self.thread)).cloned().collect();
            if !others.is_empty() {
                st.execer = Some(self.thread.clone());
            }
            others
        };
        if others.is_empty() {
            return Ok(());
        }
        for t in &others {
            t.interrupt();
        }
        // Wait (unkillably, as Linux does, except by a fatal signal) for the others.
        loop {
            let seq = self.thread.waiter.seq();
            let (alone, dying) = {
                let st = self.tg.state();
                (st.threads.len() == 1, st.exiting.is_some())
            };
            if alone || dying {
                break;
            }
            self.thread.waiter.wait(seq, None);
        }
        let dying = {
            let mut st = self.tg.state();
            st.execer = None;
            st.exiting.is_some()
        };
        if dying {
            return Err(errno!(EINTR));
        }
        let leader = self.tg.tgid;
        let old = self.tid();
        if old != leader {
            self.kernel.pid_ns.rename_thread(old, leader, &self.thread);
            self.thread.set_tid(leader);
        }
        Ok(())
    }
}
