//! Application CPU state.

/// User registers of one app thread, in the host's `user_regs_struct` layout.
#[derive(Clone)]
pub struct CpuState {
    pub regs: libc::user_regs_struct,
    /// An XSAVE image the Sentry changed (sigreturn) and the next switch must load.
    pub fpstate: Option<Vec<u8>>,
    /// The trap number and error code of the thread's last fault (what Linux puts in
    /// a signal frame's REG_TRAPNO and REG_ERR), when the platform sees them: systrap
    /// does (the host's frame), ptrace does not (they stay 0).
    pub trapno: u64,
    pub err: u64,
    /// Whether the last syscall came in through a 32-bit entry (`int 0x80`, or any
    /// syscall instruction in a 32-bit code segment), when the platform knows: systrap
    /// does (the seccomp arch), ptrace does not (None).
    pub compat_syscall: Option<bool>,
}

impl Default for CpuState {
    fn default() -> Self {
        // SAFETY: user_regs_struct is plain integers; all-zero is a valid value.
        let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        regs.cs = 0x33;
        regs.ss = 0x2b;
        regs.eflags = 0x202;
        CpuState { regs, fpstate: None, trapno: 0, err: 0, compat_syscall: None }
    }
}

/// x86's page-fault exception vector, and the error-code bit of a write access.
const TRAP_PAGE_FAULT: u64 = 14;
const PF_WRITE: u64 = 2;

impl CpuState {
    /// Whether the last fault is known to be a write: a page fault whose error code
    /// says so. False where the platform cannot tell (ptrace).
    pub fn fault_is_write(&self) -> bool {
        self.trapno == TRAP_PAGE_FAULT && self.err & PF_WRITE != 0
    }

    pub fn syscall_nr(&self) -> u64 {
        self.regs.orig_rax
    }

    /// The six syscall argument registers in ABI order.
    pub fn syscall_args(&self) -> [u64; 6] {
        let r = &self.regs;
        [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]
    }

    pub fn set_return(&mut self, v: u64) {
        self.regs.rax = v;
    }

    pub fn ip(&self) -> u64 {
        self.regs.rip
    }

    pub fn sp(&self) -> u64 {
        self.regs.rsp
    }
}

impl std::fmt::Debug for CpuState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.regs;
        write!(f, "rip={:#x} rsp={:#x} rax={:#x} orig_rax={:#x}", r.rip, r.rsp, r.rax, r.orig_rax)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Perms {
    pub const NONE: Perms = Perms { read: false, write: false, exec: false };

    pub fn from_prot(prot: u32) -> Perms {
        Perms { read: prot & 1 != 0, write: prot & 2 != 0, exec: prot & 4 != 0 }
    }

    pub fn to_prot(self) -> u32 {
        (self.read as u32) | (self.write as u32) << 1 | (self.exec as u32) << 2
    }

    /// Whether every right in `want` is in `self`.
    pub fn allows(self, want: Perms) -> bool {
        (want.to_prot() & !self.to_prot()) == 0
    }
}
