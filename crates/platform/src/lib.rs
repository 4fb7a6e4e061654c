//! Platforms run application code until it does something the Sentry must handle.
//!
//! A platform offers address spaces (where app memory is mapped from the memory
//! file) and contexts (a host thread's way to run one app thread). Every platform
//! must behave the same; the kernel never knows which one it runs on.

// First: the stub pages of both platforms use its assembly macro.
#[macro_use]
mod zygote;
mod balancer;
mod cpu;
pub mod host_cpus;
pub mod host_proc;
pub mod hostcall;
pub mod kvm;
pub mod ptrace;
mod stub;
pub mod systrap;
pub mod usertrap;

pub use cpu::{CpuState, Perms};

use std::any::Any;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("host call {0} failed: {1}")]
    Host(&'static str, std::io::Error),
    #[error("stub process died unexpectedly (status {0:#x})")]
    StubDied(i32),
    #[error("{0}")]
    Unsupported(String),
}

pub type Result<T> = std::result::Result<T, PlatformError>;

/// A platform lock: a panicked holder leaves data that is still consistent (every
/// critical section here is a plain update), so poisoning is ignored.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why `Context::switch` came back to the Sentry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The app made a system call; its number and arguments are in the registers.
    Syscall,
    /// A memory access at `addr` faulted (`SIGSEGV` or `SIGBUS` on the host side).
    Fault { addr: u64, signo: i32, code: i32 },
    /// Another synchronous signal raised by app code (SIGILL, SIGFPE, SIGTRAP...).
    Signal { signo: i32, code: i32, addr: u64 },
    /// The switch was cut short for a Sentry-side reason; just switch again.
    Interrupted,
}

pub trait Platform: Send + Sync {
    fn name(&self) -> &'static str;
    /// Starts the process that forks stubs, if it was not: whether it runs.
    fn start_zygote(&self) -> std::io::Result<bool>;
    /// Creates an empty address space with one app thread in it, which the first
    /// context to switch into it runs. Any host thread may create it: the thread is
    /// tied to the host thread that runs that context at its first switch (ptrace:
    /// that thread becomes the tracer).
    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>>;
    fn new_context(&self) -> Box<dyn Context>;
    /// A context for an app thread made by `Context::new_thread`. Any host thread
    /// may adopt it; the thread is tied to the one that first switches into it.
    fn adopt(&self, seed: ThreadSeed) -> Result<Box<dyn Context>>;
    /// The highest address (exclusive) an app mapping may use.
    fn max_user_address(&self) -> u64;
    /// Where patched syscall sites jump (see `usertrap`), when the platform patches.
    fn patch_entry(&self) -> Option<u64> {
        None
    }
}

/// Choices a platform is made with.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// systrap: patch hot syscall sites to call the stub without a signal.
    pub systrap_patch: bool,
}

/// An application address space. Changes may be queued and carried out in one batch
/// at the next `Context::switch` or `Context::sync`.
pub trait AddressSpace: Send + Sync {
    /// Maps `[addr, addr+len)` to the memory file at `file_offset`.
    fn map(&self, addr: u64, len: u64, file_offset: u64, perms: Perms);
    fn unmap(&self, addr: u64, len: u64);
    fn protect(&self, addr: u64, len: u64, perms: Perms);
    fn as_any(&self) -> &dyn Any;
}

/// The state a host thread keeps to run app code.
pub trait Context: Send {
    /// Runs app code in `aspace` with registers `cpu` until the next event.
    fn switch(&mut self, aspace: &Arc<dyn AddressSpace>, cpu: &mut CpuState) -> Result<Event>;
    /// Carries out queued address-space changes now (before frames are reused).
    fn sync(&mut self, aspace: &Arc<dyn AddressSpace>) -> Result<()>;
    /// Makes another app thread in `aspace` (clone with CLONE_VM), to be adopted by
    /// the host thread that will run it.
    fn new_thread(&mut self, aspace: &Arc<dyn AddressSpace>) -> Result<ThreadSeed>;
    /// The app's floating-point and vector state (the XSAVE area), for signal frames.
    fn fpstate(&mut self) -> Result<Vec<u8>>;
    /// A handle that makes a running `switch` return `Event::Interrupted` promptly.
    fn interrupter(&self) -> Arc<dyn Interrupter>;
    /// Gives up the app thread this context runs (the task exited).
    fn release(&mut self);
}

/// Lets any Sentry thread kick a task out of app code (to deliver a signal).
pub trait Interrupter: Send + Sync {
    fn interrupt(&self);
    /// CPU time the app thread has used so far on the host, in nanoseconds.
    fn cpu_time_ns(&self) -> u64 {
        0
    }
    /// Whether that time is spent on the host thread that runs the context (kvm's
    /// vCPUs), and so is part of that thread's own CPU time.
    fn runs_on_host_thread(&self) -> bool {
        false
    }
}

/// A new app thread made by one host thread and handed to another.
pub struct ThreadSeed(pub Box<dyn Any + Send>);

/// Puts the Sentry under its seccomp filter (`install` does, on every thread): first host
/// /proc is opened (every later read is relative to it), what would be read from host
/// files later is read or fixed now and the platform's zygote is started; once the filter
/// is on, no stub forks from the Sentry itself, since it would inherit the filter. Without
/// a zygote the Sentry is not filtered.
pub fn seal(platform: &dyn Platform, install: impl FnOnce() -> std::result::Result<(), String>) -> std::result::Result<(), String> {
    host_proc::dir().ok_or("cannot open the host's /proc")?;
    hostcall::host_auxval(0);
    hostcall::fix_malloc();
    match platform.start_zygote() {
        Ok(true) => {}
        Ok(false) => return Err("no zygote: stubs fork from the Sentry".into()),
        Err(e) => return Err(format!("zygote: {e}")),
    }
    install()?;
    zygote::seal();
    Ok(())
}

/// The host device the platform called `name` runs on (kvm's /dev/kvm; the others
/// need none), opened now: the sandbox opens it before it leaves the host's files,
/// as runsc passes its `--device-fd`.
pub fn open_device(name: &str) -> Result<Option<std::os::fd::OwnedFd>> {
    match name {
        "ptrace" | "systrap" => Ok(None),
        "kvm" => kvm::open_device().map(Some),
        other => Err(PlatformError::Unsupported(format!(
            "unknown platform '{other}' (available: ptrace, systrap, kvm)"
        ))),
    }
}

/// Creates the platform called `name` on its `device` (from [`open_device`]).
pub fn on_device(name: &str, memory_fd: std::os::fd::RawFd, device: Option<std::os::fd::OwnedFd>) -> Result<Arc<dyn Platform>> {
    on_device_with(name, memory_fd, device, Options::default())
}

/// As `on_device`, with `options`.
pub fn on_device_with(name: &str, memory_fd: std::os::fd::RawFd, device: Option<std::os::fd::OwnedFd>, options: Options) -> Result<Arc<dyn Platform>> {
    match (name, device) {
        ("ptrace", None) => Ok(Arc::new(ptrace::PtracePlatform::new(memory_fd)?)),
        ("systrap", None) => Ok(Arc::new(systrap::SystrapPlatform::new(memory_fd, options.systrap_patch)?)),
        ("kvm", Some(device)) => Ok(Arc::new(kvm::KvmPlatform::new(memory_fd, device)?)),
        (other, _) => Err(PlatformError::Unsupported(format!("platform '{other}' given the wrong device"))),
    }
}

/// Creates the platform called `name`, opening its device.
pub fn by_name(name: &str, memory_fd: std::os::fd::RawFd) -> Result<Arc<dyn Platform>> {
    on_device(name, memory_fd, open_device(name)?)
}
