//! Where things go in a fresh address space.

#[derive(Clone, Copy, Debug, Default)]
pub struct Layout {
    /// Top-down mmap allocations start below this.
    pub mmap_base: u64,
    /// The heap: `[brk_start, brk)`, with its VMA rounded up to pages.
    pub brk_start: u64,
    pub brk: u64,
    /// The initial stack, for /proc and for telling the stack VMA apart.
    pub stack_top: u64,
    /// Strings the loader placed, for /proc/self/{cmdline,environ}.
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    /// A copy of the auxiliary vector the loader gave the program, up to and
    /// excluding AT_NULL (zero pairs), for /proc/[pid]/auxv.
    pub auxv: [(u64, u64); AUXV_MAX],
}

/// Most auxv entries kept for /proc/[pid]/auxv.
pub const AUXV_MAX: usize = 32;
