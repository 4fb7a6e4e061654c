//! The two seccomp programs of a stub, in classic BPF written by hand (seccompiler
//! cannot test the instruction pointer).
//!
//! `app`: every syscall of an app thread traps (SECCOMP_RET_TRAP), except, when the
//! instruction pointer is inside the stub's code page, `rt_sigreturn`, `exit`, and
//! `futex` WAIT/WAKE on a word of the slot area (plus `arch_prctl`
//! FS/GS when the CPU has no user-mode fsgsbase). The app can jump to those
//! instructions, but all it gets is the same as returning from a signal, leaving,
//! or waking/waiting on hostile-by-design words.
//!
//! `helper`: installed first, so every thread has it. From the code page it allows
//! the few calls the setup and the helper make (clone only with the thread flags)
//! and traps the rest; a trap in the helper
//! (signals blocked) kills the stub. Anything not from the code page traps too, which
//! for app threads is what `app` says anyway.
//!
//! Both are kept short: the host compiles each program when a stub (or stub thread)
//! installs it, at ~1.6 µs per instruction here.

/// `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_JGT_K: u16 = 0x25;
const BPF_RET_K: u16 = 0x06;

pub const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

// Offsets in struct seccomp_data.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_IP_LO: u32 = 8;
const OFF_IP_HI: u32 = 12;
const fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
const fn arg_hi(i: u32) -> u32 {
    20 + 8 * i
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum To {
    Next,
    L(usize),
}

/// A tiny assembler with forward labels.
#[derive(Default)]
struct Asm {
    insns: Vec<(u16, u32, To, To)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.insns.len());
    }
    fn ld(&mut self, off: u32) {
        self.insns.push((BPF_LD_W_ABS, off, To::Next, To::Next));
    }
    fn jmp(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.insns.push((code, k, jt, jf));
    }
    fn ret(&mut self, k: u32) {
        self.insns.push((BPF_RET_K, k, To::Next, To::Next));
    }
    fn finish(self) -> Vec<Insn> {
        let at = |t: To, i: usize| -> u8 {
            let target = match t {
                To::Next => i + 1,
                To::L(l) => self.labels[l].expect("unbound BPF label"),
            };
            assert!(target > i && target - i - 1 <= 255, "BPF jump out of range");
            (target - i - 1) as u8
        };
        self.insns
            .iter()
            .enumerate()
            .map(|(i, &(code, k, jt, jf))| {
                if code == BPF_RET_K || code == BPF_LD_W_ABS {
                    Insn { code, jt: 0, jf: 0, k }
                } else {
                    Insn { code, jt: at(jt, i), jf: at(jf, i), k }
                }
            })
            .collect()
    }

    /// Falls through when `lo <= ip <= hi_incl` (one 4 GiB block) and the arch is
    /// x86-64, else jumps to `out`. The instruction pointer comes first: app code fails
    /// there after two instructions (every app syscall runs this).
    fn check_ip_and_arch(&mut self, lo: u64, hi_incl: u64, out: usize) {
        assert_eq!(lo >> 32, hi_incl >> 32, "stub code crosses a 4 GiB boundary");
        self.ld(OFF_IP_HI);
        self.jmp(BPF_JEQ_K, (lo >> 32) as u32, To::Next, To::L(out));
        self.ld(OFF_IP_LO);
        self.jmp(BPF_JGE_K, lo as u32, To::Next, To::L(out));
        self.jmp(BPF_JGT_K, hi_incl as u32, To::L(out), To::Next);
        // int 0x80 from the stub page (its bytes could hide a CD 80) uses i386 numbers.
        self.ld(OFF_ARCH);
        self.jmp(BPF_JEQ_K, AUDIT_ARCH_X86_64, To::Next, To::L(out));
    }

    /// Falls through when the 64-bit argument `i` equals `v`, else jumps to `out`.
    fn arg_eq(&mut self, i: u32, v: u64, out: usize) {
        self.ld(arg_hi(i));
        self.jmp(BPF_JEQ_K, (v >> 32) as u32, To::Next, To::L(out));
        self.ld(arg_lo(i));
        self.jmp(BPF_JEQ_K, v as u32, To::Next, To::L(out));
    }
}

/// The range the filters allow the stub's syscalls from. The instruction pointer
/// seccomp sees is the address after the `syscall` instruction.
#[derive(Clone, Copy)]
pub struct StubRanges {
    pub code: (u64, u64),
    /// `[lo, hi)` of the slot area: the only futex words app threads may use.
    pub slots: (u64, u64),
    pub fsgsbase: bool,
}

pub fn app(r: &StubRanges) -> Vec<Insn> {
    let mut a = Asm::default();
    let trap = a.label();
    let allow = a.label();
    let futex = a.label();
    let arch_prctl = a.label();
    a.check_ip_and_arch(r.code.0, r.code.1 - 1, trap);
    a.ld(OFF_NR);
    a.jmp(BPF_JEQ_K, libc::SYS_rt_sigreturn as u32, To::L(allow), To::Next);
    a.jmp(BPF_JEQ_K, libc::SYS_exit as u32, To::L(allow), To::Next);
    if r.fsgsbase {
        a.jmp(BPF_JEQ_K, libc::SYS_futex as u32, To::L(futex), To::L(trap));
    } else {
        a.jmp(BPF_JEQ_K, libc::SYS_futex as u32, To::L(futex), To::Next);
        a.jmp(BPF_JEQ_K, libc::SYS_arch_prctl as u32, To::L(arch_prctl), To::L(trap));
    }
    a.bind(futex);
    // FUTEX_WAIT (0) or FUTEX_WAKE (1), shared (no PRIVATE flag), on a slot word. A
    // timeout is harmless: it only bounds a wait.
    a.ld(arg_hi(1));
    a.jmp(BPF_JEQ_K, 0, To::Next, To::L(trap));
    a.ld(arg_lo(1));
    a.jmp(BPF_JGT_K, libc::FUTEX_WAKE as u32, To::L(trap), To::Next);
    assert_eq!(r.slots.0 >> 32, (r.slots.1 - 1) >> 32, "slot area crosses a 4 GiB boundary");
    a.ld(arg_hi(0));
    a.jmp(BPF_JEQ_K, (r.slots.0 >> 32) as u32, To::Next, To::L(trap));
    a.ld(arg_lo(0));
    a.jmp(BPF_JGE_K, r.slots.0 as u32, To::Next, To::L(trap));
    a.jmp(BPF_JGT_K, (r.slots.1 - 4) as u32, To::L(trap), To::L(allow));
    a.bind(arch_prctl);
    if !r.fsgsbase {
        // ARCH_SET_GS 0x1001, ARCH_SET_FS 0x1002, ARCH_GET_FS 0x1003, ARCH_GET_GS 0x1004:
        // a thread changing or reading its own bases.
        a.ld(arg_hi(0));
        a.jmp(BPF_JEQ_K, 0, To::Next, To::L(trap));
        a.ld(arg_lo(0));
        a.jmp(BPF_JGE_K, 0x1001, To::Next, To::L(trap));
        a.jmp(BPF_JGT_K, 0x1004, To::L(trap), To::L(allow));
    }
    a.bind(trap);
    a.ret(SECCOMP_RET_TRAP);
    a.bind(allow);
    a.ret(SECCOMP_RET_ALLOW);
    a.finish()
}

pub fn helper(r: &StubRanges, thread_flags: u64) -> Vec<Insn> {
    let mut a = Asm::default();
    let trap = a.label();
    let allow = a.label();
    let clone = a.label();
    a.check_ip_and_arch(r.code.0, r.code.1 - 1, trap);
    a.ld(OFF_NR);
    let mut plain = vec![
        libc::SYS_write, // the completion eventfd
        libc::SYS_rt_sigreturn,
        libc::SYS_futex,
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_sigaltstack,
        libc::SYS_set_tid_address,
        libc::SYS_rt_sigprocmask,
        libc::SYS_seccomp,
    ];
    if !r.fsgsbase {
        plain.push(libc::SYS_arch_prctl);
    }
    for nr in plain {
        a.jmp(BPF_JEQ_K, nr as u32, To::L(allow), To::Next);
    }
    a.jmp(BPF_JEQ_K, libc::SYS_clone as u32, To::L(clone), To::Next);
    // mmap 9, mprotect 10, munmap 11
    const { assert!(libc::SYS_mmap == 9 && libc::SYS_mprotect == 10 && libc::SYS_munmap == 11) };
    a.jmp(BPF_JGE_K, libc::SYS_mmap as u32, To::Next, To::L(trap));
    a.jmp(BPF_JGT_K, libc::SYS_munmap as u32, To::L(trap), To::L(allow));
    a.bind(clone);
    a.arg_eq(0, thread_flags, trap);
    a.jmp(BPF_JEQ_K, 0, To::L(allow), To::L(allow));
    a.bind(trap);
    a.ret(SECCOMP_RET_TRAP);
    a.bind(allow);
    a.ret(SECCOMP_RET_ALLOW);
    a.finish()
}

/// Evaluates a program the way the kernel does (for tests).
#[cfg(test)]
pub fn run(prog: &[Insn], nr: u32, ip: u64, args: [u64; 6]) -> u32 {
    run_arch(prog, nr, AUDIT_ARCH_X86_64, ip, args)
}

#[cfg(test)]
pub fn run_arch(prog: &[Insn], nr: u32, arch: u32, ip: u64, args: [u64; 6]) -> u32 {
    let mut data = [0u32; 16];
    data[0] = nr;
    data[1] = arch;
    data[2] = ip as u32;
    data[3] = (ip >> 32) as u32;
    for (i, v) in args.iter().enumerate() {
        data[4 + 2 * i] = *v as u32;
        data[5 + 2 * i] = (v >> 32) as u32;
    }
    let mut acc = 0u32;
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        match i.code {
            BPF_LD_W_ABS => acc = data[(i.k / 4) as usize],
            BPF_RET_K => return i.k,
            BPF_JEQ_K | BPF_JGE_K | BPF_JGT_K => {
                let t = match i.code {
                    BPF_JEQ_K => acc == i.k,
                    BPF_JGE_K => acc >= i.k,
                    _ => acc > i.k,
                };
                pc += if t { i.jt } else { i.jf } as usize;
            }
            c => panic!("unknown BPF op {c:#x}"),
        }
        pc += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: StubRanges = StubRanges { code: (0x7fff_ff00_0000, 0x7fff_ff00_0400), slots: (0x7fff_ff01_0000, 0x7fff_ff80_0000), fsgsbase: true };
    const IN: u64 = 0x7fff_ff00_0100;

    #[test]
    fn app_filter_traps_all_but_the_stub_calls() {
        let p = app(&R);
        let t = SECCOMP_RET_TRAP;
        let ok = SECCOMP_RET_ALLOW;
        assert_eq!(run(&p, 39, 0x401000, [0; 6]), t);
        assert_eq!(run(&p, 15, 0x401000, [0; 6]), t);
        assert_eq!(run(&p, 15, IN, [0; 6]), ok);
        assert_eq!(run(&p, 60, IN, [0; 6]), ok);
        assert_eq!(run(&p, 15, R.code.1, [0; 6]), t);
        assert_eq!(run(&p, 15, R.code.0 - 1, [0; 6]), t);
        assert_eq!(run(&p, 15, IN + (1 << 32), [0; 6]), t);
        assert_eq!(run(&p, 1, IN, [1, 0, 0, 0, 0, 0]), t);
        assert_eq!(run(&p, 9, IN, [0; 6]), t);
        assert_eq!(run(&p, 56, IN, [THREAD; 6]), t);
        assert_eq!(run(&p, 202, IN, [R.slots.0, 0, 5, 0, 0, 0]), ok);
        assert_eq!(run(&p, 202, IN, [R.slots.0, 1, 1, 0, 0, 0]), ok);
        assert_eq!(run(&p, 202, IN, [R.slots.1 - 4, 1, 1, 0, 0, 0]), ok);
        assert_eq!(run(&p, 202, IN, [R.slots.1, 1, 1, 0, 0, 0]), t);
        assert_eq!(run(&p, 202, IN, [R.slots.0 - 4, 1, 1, 0, 0, 0]), t);
        assert_eq!(run(&p, 202, IN, [0x601000, 1, 1, 0, 0, 0]), t);
        assert_eq!(run(&p, 202, IN, [R.slots.0, 1 | 128, 1, 0, 0, 0]), t);
        assert_eq!(run(&p, 202, IN, [R.slots.0, 5, 1, 0, 0, 0]), t);
        assert_eq!(run(&p, 202, IN, [R.slots.0, 0, 1, 0x1000, 0, 0]), ok);
        assert_eq!(run(&p, 202, IN, [R.slots.0, 2, 1, 0, 0, 0]), t);
        assert_eq!(run(&p, 202, IN, [R.slots.0, 9, 1, 0, 0, 0]), t);
        assert_eq!(run(&p, 202, IN, [R.slots.0, 1 << 32, 1, 0, 0, 0]), t);
        assert_eq!(run(&p, 202, 0x401000, [R.slots.0, 1, 1, 0, 0, 0]), t);
        assert_eq!(run(&p, 158, IN, [0x1002, 0, 0, 0, 0, 0]), t);
        assert_eq!(run(&p, 317, IN, [1, 0, 0, 0, 0, 0]), t);
        const I386: u32 = 0x4000_0003;
        assert_eq!(run_arch(&p, 15, I386, IN, [0; 6]), t);
        assert_eq!(run_arch(&p, 15, I386, 0x401000, [0; 6]), t);
        assert_eq!(run_arch(&helper(&R, THREAD), 11, I386, IN, [0; 6]), t);
        assert!(p.len() <= 24, "app filter has {} instructions", p.len());
        let slow = app(&StubRanges { fsgsbase: false, ..R });
        assert_eq!(run(&slow, 158, IN, [0x1002, 0, 0, 0, 0, 0]), ok);
        assert_eq!(run(&slow, 158, IN, [0x3001, 0, 0, 0, 0, 0]), t);
        assert_eq!(run(&slow, 158, 0x401000, [0x1002, 0, 0, 0, 0, 0]), t);
    }

    const THREAD: u64 = 0x50f00;

    #[test]
    fn helper_filter_allows_its_calls_from_the_stub_only() {
        let p = helper(&R, THREAD);
        let t = SECCOMP_RET_TRAP;
        let ok = SECCOMP_RET_ALLOW;
        assert_eq!(run(&p, 9, IN, [0; 6]), ok);
        assert_eq!(run(&p, 9, 0x401000, [0; 6]), t);
        assert_eq!(run(&p, 56, IN, [THREAD, 0, 0, 0, 0, 0]), ok);
        assert_eq!(run(&p, 56, IN, [THREAD | 0x100000, 0, 0, 0, 0, 0]), t);
        assert_eq!(run(&p, 56, IN, [17, 0, 0, 0, 0, 0]), t);
        assert_eq!(run(&p, 1, IN, [1, 0, 0, 0, 0, 0]), ok);
        assert_eq!(run(&p, 10, IN, [0; 6]), ok);
        assert_eq!(run(&p, 11, IN, [0; 6]), ok);
        assert_eq!(run(&p, 12, IN, [0; 6]), t);
        assert_eq!(run(&p, 8, IN, [0; 6]), t);
        assert_eq!(run(&p, 39, IN, [0; 6]), t);
        assert_eq!(run(&p, 59, IN, [0; 6]), t);
        assert!(p.len() <= 28, "helper filter has {} instructions", p.len());
    }
}
