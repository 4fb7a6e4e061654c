//! The Sentry: rvisor's user-space Linux kernel.
//!
//! It implements the Linux system-call ABI for programs that run on a platform
//! (`rvisor_platform`) over memory from the memory file (`rvisor_memory`). Nothing
//! here touches raw host memory or makes an unchecked host call: this crate has no
//! `unsafe`, and a sandboxed program must never be able to make it panic.

#![deny(unsafe_code)]

pub mod fs;
pub mod futex;
pub mod ipc;
pub mod landlock;
mod kernel;
pub mod loader;
pub mod mm;
pub mod net;
pub mod syscalls;
pub mod task;
pub mod time;
pub mod tty;
pub mod vfs;

pub use kernel::{ContainerError, ContainerRoot, HostFs, Init, Kernel, KernelConfig, MemoryLimit, MountSource, MountSpec, Nic, ProgramSpec, Stdio};
pub use fs::cgroup::CgroupLimits;
pub use vfs::MountFlags;
pub use loader::ExecError;
pub use task::ExitStatus;
