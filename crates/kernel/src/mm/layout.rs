//! Where things go in a fresh address space.

#[derive(Clone, Copy, Debug, Default)]
pub struct Layout {
    /// Top-down mmap allocations start below this.
    pub mmap_base: u64,
    /// The heap: `[brk_start, brk)`, with its VMA rounded up to pages.
    pub brk_start: u64,
    pub brk: u64,
    /// The program's data segment as Linux's load_elf_binary bounds it: from
    /// the last PT_LOAD segment's start to the furthest end of file contents.
    pub start_data: u64,
    pub end_data: u64,
    /// The initial stack, for /proc and for telling the stack VMA apart.
    pub stack_top: u64,
    /// Where the vDSO image is mapped (0: not mapped); its data pages lie below.
    pub vdso: u64,
    /// Strings the loader placed, for /proc/self/{cmdline,environ}.
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    /// A copy of the auxiliary vector the loader gave the program, up to and
    /// excluding AT_NULL (zero pairs), for /proc/[pid]/auxv.
    pub auxv: [(u64, u64); AUXV_MAX],
}

impl Layout {
    /// The auxiliary vector as /proc/[pid]/auxv and PR_GET_AUXV give it: the
    /// pairs, then AT_NULL.
    pub fn auxv_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for &(k, v) in self.auxv.iter().take_while(|&&(k, _)| k != 0) {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&[0u8; 16]);
        out
    }
}

/// Most auxv entries kept for /proc/[pid]/auxv.
pub const AUXV_MAX: usize = 32;
