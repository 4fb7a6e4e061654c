//! The Linux x86-64 ABI as the sandboxed program sees it: syscall numbers, errno
//! codes, user addresses and the structs that cross the user/kernel boundary.
//!
//! Constants come from `linux-raw-sys` (bindgen output of the kernel headers); the
//! structs are our own `#[repr(C)]` types deriving `zerocopy` traits so that the
//! kernel copies them to and from user memory without hand-written byte shuffling.

pub mod addr;
pub mod errno;
pub mod structs;

pub use addr::UserAddr;
pub use errno::{Errno, ErrnoCode, SysResult};

/// Syscall numbers (`__NR_*`), re-exported under their Linux names without prefix.
pub mod nr {
    pub use linux_raw_sys::general::*;
    /// Linux 6.16's, newer than linux-raw-sys.
    #[allow(non_upper_case_globals)]
    pub const __NR_uprobe: u32 = 336;
}

pub use linux_raw_sys::general as consts;
pub use linux_raw_sys::ioctl;
pub use linux_raw_sys::landlock;
pub use linux_raw_sys::prctl;

pub const PAGE_SIZE: u64 = 4096;

/// Rounds `v` down to a page boundary.
pub const fn page_down(v: u64) -> u64 {
    v & !(PAGE_SIZE - 1)
}

/// Rounds `v` up to a page boundary, or `None` on overflow.
pub const fn page_up(v: u64) -> Option<u64> {
    match v.checked_add(PAGE_SIZE - 1) {
        Some(x) => Some(x & !(PAGE_SIZE - 1)),
        None => None,
    }
}
