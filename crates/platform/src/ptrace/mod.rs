//! The ptrace platform: app threads run in stub processes under `PTRACE_SYSEMU`, so
//! every syscall stops the stub without reaching the host kernel.
//!
//! Each Sentry task thread is the tracer of its stub thread, and the two are pinned to
//! the same CPU: a ptrace stop then costs a context switch instead of a cross-CPU
//! wake-up (~10 µs instead of ~60 µs here). Address-space changes are queued and
//! carried out by the stub in one batch right before the app runs again.

mod control;
mod host;

use crate::{balancer, host_cpus};
use crate::stub::{self, QueuedCall, QUEUE_CAPACITY, STUB_BASE, STUB_CONTROL_FD, STUB_MEMORY_FD, STUB_QUEUE};
use crate::{AddressSpace, Context, CpuState, Event, Interrupter, Perms, Platform, PlatformError, Result, ThreadSeed};
use control::{ControlFile, ControlSlot};
use std::any::Any;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub struct PtracePlatform {
    memory_fd: RawFd,
    control: Arc<ControlFile>,
}

impl PtracePlatform {
    pub fn new(memory_fd: RawFd) -> Result<PtracePlatform> {
        stub::install().map_err(|e| PlatformError::Host("stub install", e))?;
        // Read the CPU set now, before any thread is pinned.
        host_cpus::allowed();
        let control = Arc::new(ControlFile::new().map_err(|e| PlatformError::Host("control memfd", e))?);
        Ok(PtracePlatform { memory_fd, control })
    }
}

fn entries() -> Result<&'static stub::StubEntries> {
    stub::install().map_err(|e| PlatformError::Host("stub install", e))
}

impl Platform for PtracePlatform {
    fn name(&self) -> &'static str {
        "ptrace"
    }

    fn start_zygote(&self) -> std::io::Result<bool> {
        stub::start_zygote()
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>> {
        let slot = self.control.alloc_slot().ok_or_else(|| PlatformError::Unsupported("too many address spaces".into()))?;
        let pid = stub::spawn(self.memory_fd, self.control.fd()).map_err(|e| PlatformError::Host("fork stub", e))?;
        Ok(Arc::new(PtraceAddressSpace {
            pid,
            slot,
            pending: Mutex::new(Vec::new()),
            flushing: Mutex::new(()),
            leader_claimed: AtomicBool::new(false),
        }))
    }

    fn new_context(&self) -> Box<dyn Context> {
        Box::new(PtraceContext::default())
    }

    fn adopt(&self, seed: ThreadSeed) -> Result<Box<dyn Context>> {
        let (pid, tid) = *seed.0.downcast::<(i32, i32)>().map_err(|_| PlatformError::Unsupported("foreign thread seed".into()))?;
        Ok(Box::new(PtraceContext { binding: Arc::default(), unseized: Some((pid, tid)) }))
    }

    fn max_user_address(&self) -> u64 {
        STUB_BASE
    }
}

pub struct PtraceAddressSpace {
    /// The stub process; its main thread is seized by the first context to run it.
    pid: i32,
    slot: ControlSlot,
    /// Changes not yet carried out in the stub, in order.
    pending: Mutex<Vec<QueuedCall>>,
    /// Held while a batch runs, so that batches from different threads run in
    /// queue order and nobody returns to the app while a change it made is in flight.
    flushing: Mutex<()>,
    /// Whether a context has taken the stub's main thread.
    leader_claimed: AtomicBool,
}

impl PtraceAddressSpace {
    fn push(&self, call: QueuedCall) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).push(call);
    }

    /// Runs every queued change in the stub thread `tid`, a queue page at a time.
    fn flush(&self, tid: i32) -> Result<()> {
        let _order = self.flushing.lock().unwrap_or_else(|e| e.into_inner());
        let calls = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if calls.is_empty() {
            return Ok(());
        }
        let batch = entries()?.batch;
        for chunk in calls.chunks(QUEUE_CAPACITY) {
            self.slot.write_queue(chunk);
            let mut regs = CpuState::default().regs;
            regs.r15 = STUB_QUEUE;
            regs.r14 = chunk.len() as u64;
            host::run_until_trap(tid, &mut regs, batch)?;
            if regs.r14 != 0 {
                let failed = chunk[chunk.len() - regs.r14 as usize];
                return Err(PlatformError::Host(
                    "stub address-space call",
                    std::io::Error::other(format!("{:?} returned {}", failed, regs.rax as i64)),
                ));
            }
        }
        Ok(())
    }
}

impl AddressSpace for PtraceAddressSpace {
    fn map(&self, addr: u64, len: u64, file_offset: u64, perms: Perms) {
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        self.push(QueuedCall {
            nr: libc::SYS_mmap as u64,
            args: [addr, len, perms.to_prot() as u64, flags, STUB_MEMORY_FD, file_offset],
        });
    }

    fn unmap(&self, addr: u64, len: u64) {
        self.push(QueuedCall { nr: libc::SYS_munmap as u64, args: [addr, len, 0, 0, 0, 0] });
    }

    fn protect(&self, addr: u64, len: u64, perms: Perms) {
        self.push(QueuedCall { nr: libc::SYS_mprotect as u64, args: [addr, len, perms.to_prot() as u64, 0, 0, 0] });
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for PtraceAddressSpace {
    fn drop(&mut self) {
        crate::zygote::kill_and_reap(self.pid);
    }
}

/// The stub thread a context runs, shared with its interrupter: (pid << 32) | tid,
/// or 0 while unbound.
#[derive(Default)]
struct Binding(AtomicU64);

impl Binding {
    fn get(&self) -> Option<(i32, i32)> {
        match self.0.load(Ordering::Acquire) {
            0 => None,
            v => Some(((v >> 32) as i32, v as u32 as i32)),
        }
    }
}

impl Interrupter for Binding {
    fn interrupt(&self) {
        if let Some((pid, tid)) = self.get() {
            host::kick(pid, tid);
        }
    }

    fn cpu_time_ns(&self) -> u64 {
        self.get().and_then(|(pid, tid)| host_cpus::schedstat(pid, tid)).map_or(0, |(run, _)| run)
    }
}

#[derive(Default)]
pub struct PtraceContext {
    binding: Arc<Binding>,
    /// An adopted thread, seized (by the host thread that runs this context) at the
    /// first switch.
    unseized: Option<(i32, i32)>,
}

impl PtraceContext {
    /// Becomes the tracer of stub thread `tid`, pinned to this thread's CPU.
    fn seize(&self, pid: i32, tid: i32) -> Result<()> {
        let cpu = host_cpus::pin_current_thread();
        host::seize(tid)?;
        host_cpus::pin(tid, cpu);
        self.binding.0.store(((pid as u64) << 32) | tid as u32 as u64, Ordering::Release);
        balancer::set_stub(pid, tid);
        Ok(())
    }

    fn aspace(aspace: &Arc<dyn AddressSpace>) -> &PtraceAddressSpace {
        aspace.as_any().downcast_ref::<PtraceAddressSpace>().expect("ptrace context given a foreign address space")
    }

    /// The stub thread to run `aspace` with: ours if we have one there, else the
    /// stub's main thread. Either is seized here, by the host thread that runs it.
    fn thread_in(&mut self, asp: &PtraceAddressSpace) -> Result<i32> {
        if let Some((pid, tid)) = self.unseized.take() {
            self.seize(pid, tid)?;
        }
        match self.binding.get() {
            Some((pid, tid)) if pid == asp.pid => Ok(tid),
            current => {
                if asp.leader_claimed.swap(true, Ordering::AcqRel) {
                    return Err(PlatformError::Unsupported("address space has no free thread for this context".into()));
                }
                if current.is_some() {
                    self.release();
                }
                self.seize(asp.pid, asp.pid)?;
                // The stub's queue page, read-only.
                let mut regs = CpuState::default().regs;
                let queue = [STUB_QUEUE, 4096, libc::PROT_READ as u64, (libc::MAP_SHARED | libc::MAP_FIXED) as u64, STUB_CONTROL_FD, asp.slot.offset()];
                host::inject_one(asp.pid, &mut regs, entries()?.syscall, &QueuedCall { nr: libc::SYS_mmap as u64, args: queue })?;
                Ok(asp.pid)
            }
        }
    }

    fn bound_tid(&self) -> Result<i32> {
        self.binding.get().map(|(_, tid)| tid).ok_or_else(|| PlatformError::Unsupported("context runs no thread".into()))
    }
}

impl Context for PtraceContext {
    fn switch(&mut self, aspace: &Arc<dyn AddressSpace>, cpu: &mut CpuState) -> Result<Event> {
        let asp = Self::aspace(aspace);
        let tid = self.thread_in(asp)?;
        asp.flush(tid)?;
        if let Some(to) = balancer::follow() {
            host_cpus::pin(tid, to);
        }
        if let Some(fp) = cpu.fpstate.take() {
            host::set_xstate(tid, &fp)?;
        }
        host::sysemu(tid, cpu)
    }

    fn sync(&mut self, aspace: &Arc<dyn AddressSpace>) -> Result<()> {
        let asp = Self::aspace(aspace);
        let tid = self.thread_in(asp)?;
        asp.flush(tid)
    }

    fn new_thread(&mut self, aspace: &Arc<dyn AddressSpace>) -> Result<ThreadSeed> {
        let asp = Self::aspace(aspace);
        let tid = self.thread_in(asp)?;
        asp.flush(tid)?;
        let flags = libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_SIGHAND | libc::CLONE_THREAD | libc::CLONE_SYSVSEM;
        let mut regs = CpuState::default().regs;
        let call = QueuedCall { nr: libc::SYS_clone as u64, args: [flags as u64, 0, 0, 0, 0, 0] };
        let child = host::inject_one(tid, &mut regs, entries()?.clone, &call)?;
        Ok(ThreadSeed(Box::new((asp.pid, child as i32))))
    }

    fn fpstate(&mut self) -> Result<Vec<u8>> {
        host::get_xstate(self.bound_tid()?)
    }

    fn interrupter(&self) -> Arc<dyn Interrupter> {
        self.binding.clone()
    }

    fn release(&mut self) {
        // A thread adopted but never run is seized only to be retired.
        if let Some((pid, tid)) = self.unseized.take() {
            if self.seize(pid, tid).is_err() {
                return;
            }
        }
        if let Some((pid, tid)) = self.binding.get() {
            self.binding.0.store(0, Ordering::Release);
            host::retire(pid, tid);
        }
    }
}

impl Drop for PtraceContext {
    fn drop(&mut self) {
        self.release();
    }
}
