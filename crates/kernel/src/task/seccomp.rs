//! Seccomp: the filters a thread installs on itself (seccomp(2), prctl), which the
//! Sentry runs on each of the thread's syscalls. Filters are classic BPF, checked on
//! install as Linux checks them and interpreted here; a thread's filters form a chain
//! (newest first) that clone and exec keep. A filter may have a listener, which a
//! supervisor answers the calls it traps with (`fs/seccomp_notify.rs`).

use crate::fs::seccomp_notify::Notifier;
use rvisor_abi::{errno, SysResult};
use std::sync::Arc;

/// `struct sock_filter`.
#[derive(Clone, Copy, Debug, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
#[repr(C)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Linux's limits: instructions per filter, and per chain (each filter counting 4
/// more than its length).
pub const MAX_INSNS: usize = 4096;
const MAX_INSNS_PER_PATH: usize = 8 * MAX_INSNS;
const MEM_WORDS: u32 = 16;
/// `sizeof(struct seccomp_data)`.
const DATA_LEN: u32 = 64;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;
pub const RET_DATA: u32 = 0x0000_ffff;
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

// Classic BPF opcodes: class, size and mode, ALU and jump operations, source
// (public for the runtime, which compiles OCI profiles to such programs).
pub const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
pub const ALU: u16 = 0x04;
pub const JMP: u16 = 0x05;
pub const RET: u16 = 0x06;
const MISC: u16 = 0x07;
pub const W: u16 = 0x00;
const IMM: u16 = 0x00;
pub const ABS: u16 = 0x20;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
pub const K: u16 = 0x00;
const X: u16 = 0x08;
const A: u16 = 0x10;
const ADD: u16 = 0x00;
const SUB: u16 = 0x10;
const MUL: u16 = 0x20;
const DIV: u16 = 0x30;
const OR: u16 = 0x40;
pub const AND: u16 = 0x50;
const LSH: u16 = 0x60;
const RSH: u16 = 0x70;
const NEG: u16 = 0x80;
const XOR: u16 = 0xa0;
pub const JA: u16 = 0x00;
pub const JEQ: u16 = 0x10;
pub const JGT: u16 = 0x20;
pub const JGE: u16 = 0x30;
const JSET: u16 = 0x40;
const TAX: u16 = 0x00;
const TXA: u16 = 0x80;

/// A thread's seccomp mode.
#[derive(Clone, Default)]
pub enum Mode {
    #[default]
    Disabled,
    /// read, write, exit and rt_sigreturn only; anything else kills the thread.
    Strict,
    Filter(Arc<Filter>),
    /// Its mode or a filter killed it (Linux's SECCOMP_MODE_DEAD): the filters
    /// it had stay until it exits, and stay counted, as Linux's.
    Dead(Option<Arc<Filter>>),
}

impl Mode {
    /// The number prctl(PR_GET_SECCOMP) and /proc report.
    pub fn number(&self) -> i32 {
        match self {
            Mode::Disabled => 0,
            Mode::Strict => 1,
            Mode::Filter(_) => 2,
            Mode::Dead(_) => 3,
        }
    }

    /// How many filters it has (/proc's Seccomp_filters).
    pub fn filters(&self) -> usize {
        match self {
            Mode::Filter(f) | Mode::Dead(Some(f)) => f.count(),
            _ => 0,
        }
    }
}

/// The syscall numbers [`Filter::allowed`] remembers.
const CACHED_NRS: usize = 512;

/// One installed filter and the ones installed before it.
pub struct Filter {
    prog: Vec<Insn>,
    prev: Option<Arc<Filter>>,
    /// Instructions of the whole chain, as Linux counts them.
    path_len: usize,
    /// A bit per syscall number the whole chain allows whatever the arguments
    /// and instruction pointer (Linux's SECCOMP_ARCH_NATIVE cache): a filter
    /// that looks only at the number and architecture of most calls, as an
    /// OCI profile's, costs a bit test on them instead of a run of each filter.
    allowed: Box<[u64; CACHED_NRS / 64]>,
    /// Where its SECCOMP_RET_USER_NOTIF answers go (SECCOMP_FILTER_FLAG_NEW_LISTENER).
    notifier: Option<Arc<Notifier>>,
}

impl Filter {
    /// Checks `prog` as Linux does (EINVAL) and puts it in front of `prev` (ENOMEM
    /// when the chain grows too long).
    pub fn new(prog: Vec<Insn>, prev: Option<Arc<Filter>>) -> SysResult<Arc<Filter>> {
        Filter::build(prog, prev, None)
    }

    /// `new` for a filter with a listener.
    pub fn with_notifier(prog: Vec<Insn>, prev: Option<Arc<Filter>>, notifier: Arc<Notifier>) -> SysResult<Arc<Filter>> {
        Filter::build(prog, prev, Some(notifier))
    }

    fn build(prog: Vec<Insn>, prev: Option<Arc<Filter>>, notifier: Option<Arc<Notifier>>) -> SysResult<Arc<Filter>> {
        let prog = check(prog)?;
        let path_len = prog.len() + 4 + prev.as_ref().map_or(0, |p| p.path_len);
        if path_len > MAX_INSNS_PER_PATH {
            return Err(errno!(ENOMEM));
        }
        let mut allowed = Box::new([0u64; CACHED_NRS / 64]);
        for nr in 0..CACHED_NRS {
            let before = prev.as_ref().is_none_or(|p| p.allowed[nr / 64] & (1 << (nr % 64)) != 0);
            // Only the number and the architecture are known: a load of anything
            // else makes the answer depend on the call.
            let known = |word: usize| match word {
                0 => Some(nr as u32),
                1 => Some(AUDIT_ARCH_X86_64),
                _ => None,
            };
            if before && run(&prog, known) == Some(RET_ALLOW) {
                allowed[nr / 64] |= 1 << (nr % 64);
            }
        }
        Ok(Arc::new(Filter { prog, prev, path_len, allowed, notifier }))
    }

    /// Whether a filter of the chain has a listener still open (Linux's
    /// has_duplicate_listener: a chain has one at most).
    pub fn has_listener(&self) -> bool {
        let mut f = Some(self);
        while let Some(cur) = f {
            if cur.notifier.as_ref().is_some_and(|n| !n.detached()) {
                return true;
            }
            f = cur.prev.as_deref();
        }
        false
    }

    /// The filter's listener, if it has one.
    pub fn notifier(&self) -> Option<&Arc<Notifier>> {
        self.notifier.as_ref()
    }

    /// Whether `other` is this filter or one installed before it (TSYNC may replace
    /// a thread's chain only by one that extends it).
    pub fn extends(self: &Arc<Filter>, other: &Arc<Filter>) -> bool {
        let mut f = Some(self);
        while let Some(cur) = f {
            if Arc::ptr_eq(cur, other) {
                return true;
            }
            f = cur.prev.as_ref();
        }
        false
    }

    /// How many filters the chain holds (/proc/[pid]/status).
    pub fn count(&self) -> usize {
        1 + self.prev.as_ref().map_or(0, |p| p.count())
    }

    /// Runs every filter of the chain on a syscall; the most restrictive answer wins,
    /// and of equal ones the newest filter's.
    pub fn evaluate(&self, nr: u64, ip: u64, args: [u64; 6]) -> u32 {
        self.evaluate_match(nr, ip, args).0
    }

    /// `evaluate`, and the filter whose answer it is (a SECCOMP_RET_USER_NOTIF
    /// goes to that filter's listener).
    pub fn evaluate_match(&self, nr: u64, ip: u64, args: [u64; 6]) -> (u32, &Filter) {
        if let Some(word) = self.allowed.get((nr / 64) as usize) {
            if word & (1 << (nr % 64)) != 0 {
                return (RET_ALLOW, self);
            }
        }
        let mut data = [0u32; (DATA_LEN / 4) as usize];
        data[0] = nr as u32;
        data[1] = AUDIT_ARCH_X86_64;
        (data[2], data[3]) = (ip as u32, (ip >> 32) as u32);
        for (i, a) in args.iter().enumerate() {
            (data[4 + 2 * i], data[5 + 2 * i]) = (*a as u32, (*a >> 32) as u32);
        }
        let (mut ret, mut matched) = (RET_ALLOW, self);
        let mut f = Some(self);
        while let Some(cur) = f {
            let r = run(&cur.prog, |word| data.get(word).copied()).unwrap_or(RET_KILL_THREAD);
            if action_rank(r) < action_rank(ret) {
                (ret, matched) = (r, cur);
            }
            f = cur.prev.as_deref();
        }
        (ret, matched)
    }
}

impl Drop for Filter {
    /// No task and no later filter uses it any more: its listener hangs up.
    fn drop(&mut self) {
        if let Some(n) = &self.notifier {
            n.orphan();
        }
    }
}

/// Actions compare as signed numbers: KILL_PROCESS (negative) is the most restrictive.
fn action_rank(ret: u32) -> i32 {
    (ret & RET_ACTION_FULL) as i32
}

/// Whether seccomp knows the action (SECCOMP_GET_ACTION_AVAIL).
pub fn action_known(action: u32) -> bool {
    matches!(action, RET_KILL_PROCESS | RET_KILL_THREAD | RET_TRAP | RET_ERRNO | RET_USER_NOTIF | RET_TRACE | RET_LOG | RET_ALLOW)
}

/// Linux's checks of a classic BPF program (bpf_check_classic, then seccomp's own
/// list of allowed instructions); rewrites the `LEN` loads into immediates.
fn check(mut prog: Vec<Insn>) -> SysResult<Vec<Insn>> {
    let len = prog.len();
    if len == 0 || len > MAX_INSNS {
        return Err(errno!(EINVAL));
    }
    for (pc, i) in prog.iter_mut().enumerate() {
        let left = (len - pc - 1) as u64;
        let ok = match i.code {
            c if c == LD | W | ABS => i.k < DATA_LEN && i.k % 4 == 0,
            c if c == LD | W | LEN || c == LDX | W | LEN => {
                i.code = if c == LD | W | LEN { LD | IMM } else { LDX | IMM };
                i.k = DATA_LEN;
                true
            }
            c if c == LD | IMM || c == LDX | IMM || c == MISC | TAX || c == MISC | TXA => true,
            c if c == RET | K || c == RET | A => true,
            c if c == LD | MEM || c == LDX | MEM || c == ST || c == STX => i.k < MEM_WORDS,
            c if c == ALU | NEG => true,
            c if c & 0x07 == ALU && matches!(c & 0xf0, ADD | SUB | MUL | DIV | OR | AND | LSH | RSH | XOR) && c & !0xf8 == ALU => {
                match (c & 0xf0, c & X) {
                    (DIV, K) => i.k != 0,
                    (LSH | RSH, K) => i.k < 32,
                    _ => true,
                }
            }
            c if c == JMP | JA => (i.k as u64) < left,
            c if c & 0x07 == JMP && matches!(c & 0xf0, JEQ | JGT | JGE | JSET) && c & !0xf8 == JMP => {
                (i.jt as u64) < left && (i.jf as u64) < left
            }
            _ => false,
        };
        if !ok {
            return Err(errno!(EINVAL));
        }
    }
    if !matches!(prog[len - 1].code, c if c == RET | K || c == RET | A) {
        return Err(errno!(EINVAL));
    }
    check_loads_after_stores(&prog)?;
    Ok(prog)
}

/// A scratch word may be loaded only where every path to the load stored it first.
fn check_loads_after_stores(prog: &[Insn]) -> SysResult<()> {
    let mut masks = vec![u16::MAX; prog.len()];
    let mut valid: u16 = 0;
    for (pc, i) in prog.iter().enumerate() {
        valid &= masks[pc];
        match i.code {
            c if c == ST || c == STX => valid |= 1 << i.k,
            c if (c == LD | MEM || c == LDX | MEM) && valid & (1 << i.k) == 0 => return Err(errno!(EINVAL)),
            c if c == JMP | JA => {
                masks[pc + 1 + i.k as usize] &= valid;
                valid = u16::MAX;
            }
            c if c & 0x07 == JMP => {
                masks[pc + 1 + i.jt as usize] &= valid;
                masks[pc + 1 + i.jf as usize] &= valid;
                valid = u16::MAX;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs a checked program (jumps only go forward and stay inside it, and it
/// ends in a return, so this always returns) over the `struct seccomp_data`
/// words `load` gives; `None` if it loads one that `load` does not know.
fn run(prog: &[Insn], load: impl Fn(usize) -> Option<u32>) -> Option<u32> {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEM_WORDS as usize];
    let mut pc = 0;
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let src = if i.code & X != 0 { x } else { i.k };
        match i.code & 0x07 {
            LD => a = match i.code & 0xe0 { ABS => load((i.k / 4) as usize)?, MEM => mem[i.k as usize], _ => i.k },
            LDX => x = if i.code & 0xe0 == MEM { mem[i.k as usize] } else { i.k },
            ST => mem[i.k as usize] = a,
            STX => mem[i.k as usize] = x,
            ALU => {
                a = match i.code & 0xf0 {
                    ADD => a.wrapping_add(src),
                    SUB => a.wrapping_sub(src),
                    MUL => a.wrapping_mul(src),
                    // Division by a zero X ends the program with 0, as classic BPF does.
                    DIV => match a.checked_div(src) {
                        Some(q) => q,
                        None => return Some(0),
                    },
                    OR => a | src,
                    AND => a & src,
                    LSH => a.wrapping_shl(src),
                    RSH => a.wrapping_shr(src),
                    XOR => a ^ src,
                    _ => a.wrapping_neg(),
                }
            }
            JMP => {
                let taken = match i.code & 0xf0 {
                    JA => {
                        pc += i.k as usize;
                        continue;
                    }
                    JEQ => a == src,
                    JGT => a > src,
                    JGE => a >= src,
                    _ => a & src != 0,
                };
                pc += if taken { i.jt } else { i.jf } as usize;
            }
            RET => return Some(if i.code & A != 0 { a } else { i.k }),
            _ => {
                if i.code & 0xf8 == TXA {
                    a = x;
                } else {
                    x = a;
                }
            }
        }
    }
    Some(RET_KILL_THREAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    /// errno 1 for getpid (39), allow the rest.
    fn deny_getpid() -> Vec<Insn> {
        vec![
            insn(LD | W | ABS, 0, 0, 0),
            insn(JMP | JEQ | K, 0, 1, 39),
            insn(RET | K, 0, 0, RET_ERRNO | 1),
            insn(RET | K, 0, 0, RET_ALLOW),
        ]
    }

    #[test]
    fn filters_decide_by_number_and_the_strictest_wins() {
        let f = Filter::new(deny_getpid(), None).unwrap();
        assert_eq!(f.evaluate(39, 0, [0; 6]), RET_ERRNO | 1);
        assert_eq!(f.evaluate(110, 0, [0; 6]), RET_ALLOW);
        let trap_all = vec![insn(RET | K, 0, 0, RET_TRAP | 7)];
        let g = Filter::new(trap_all, Some(f.clone())).unwrap();
        assert_eq!(g.evaluate(110, 0, [0; 6]), RET_TRAP | 7);
        assert_eq!(g.evaluate(39, 0, [0; 6]), RET_TRAP | 7);
        assert!(g.extends(&f) && !f.extends(&g));
        assert_eq!(g.count(), 2);
        let errno2 = vec![insn(RET | K, 0, 0, RET_ERRNO | 2)];
        let h = Filter::new(errno2, Some(f)).unwrap();
        assert_eq!(h.evaluate(39, 0, [0; 6]), RET_ERRNO | 2, "of equal actions the newest filter's");
        let (_, matched) = h.evaluate_match(39, 0, [0; 6]);
        assert!(std::ptr::eq(matched, &*h), "the answer is the newest filter's");
        let kill = Filter::new(vec![insn(RET | K, 0, 0, RET_KILL_PROCESS)], Some(h.clone())).unwrap();
        assert_eq!(kill.evaluate(39, 0, [0; 6]), RET_KILL_PROCESS);
        let (_, matched) = kill.evaluate_match(110, 0, [0; 6]);
        assert!(std::ptr::eq(matched, &*kill));
        let notify = Filter::new(vec![insn(RET | K, 0, 0, RET_USER_NOTIF)], Some(h.clone())).unwrap();
        let (ret, matched) = notify.evaluate_match(39, 0, [0; 6]);
        assert_eq!(ret, RET_ERRNO | 2, "an errno outranks a notification");
        assert!(std::ptr::eq(matched, &*h));
    }

    #[test]
    fn calls_allowed_whatever_their_arguments_skip_the_filters() {
        // getpid (39) is ERRNO; write (1) is allowed only for fd 2; the rest is allowed.
        let p = vec![
            insn(LD | W | ABS, 0, 0, 0),
            insn(JMP | JEQ | K, 0, 1, 39),
            insn(RET | K, 0, 0, RET_ERRNO | 1),
            insn(JMP | JEQ | K, 0, 3, 1),
            insn(LD | W | ABS, 0, 0, 16),
            insn(JMP | JEQ | K, 1, 0, 2),
            insn(RET | K, 0, 0, RET_ERRNO | 9),
            insn(RET | K, 0, 0, RET_ALLOW),
        ];
        let f = Filter::new(p, None).unwrap();
        let cached = |f: &Filter, nr: usize| f.allowed[nr / 64] & (1 << (nr % 64)) != 0;
        assert!(cached(&f, 0) && cached(&f, 511), "allowed by number alone");
        assert!(!cached(&f, 39), "refused");
        assert!(!cached(&f, 1), "depends on an argument");
        assert_eq!(f.evaluate(1, 0, [2, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(f.evaluate(1, 0, [1, 0, 0, 0, 0, 0]), RET_ERRNO | 9);
        assert_eq!(f.evaluate(39, 0, [0; 6]), RET_ERRNO | 1);
        // A chain allows by number only what every filter of it does.
        let g = Filter::new(vec![insn(LD | W | ABS, 0, 0, 0), insn(JMP | JEQ | K, 0, 1, 0), insn(RET | K, 0, 0, RET_TRAP), insn(RET | K, 0, 0, RET_ALLOW)], Some(f)).unwrap();
        assert!(!cached(&g, 0) && cached(&g, 511) && !cached(&g, 39));
        assert_eq!(g.evaluate(0, 0, [0; 6]), RET_TRAP);
        // Numbers past the cache are run.
        assert_eq!(g.evaluate(1000, 0, [0; 6]), RET_ALLOW);
    }

    #[test]
    fn arithmetic_scratch_memory_and_arguments() {
        // A = args[1] (low word) * 3 + 1; M[2] = A; X = M[2]; A = X >> 1; return A.
        let p = vec![
            insn(LD | W | ABS, 0, 0, 24),
            insn(ALU | MUL | K, 0, 0, 3),
            insn(ALU | ADD | K, 0, 0, 1),
            insn(ST, 0, 0, 2),
            insn(LDX | MEM, 0, 0, 2),
            insn(MISC | TXA, 0, 0, 0),
            insn(ALU | RSH | K, 0, 0, 1),
            insn(JMP | JSET | K, 1, 0, 0x8000_0000),
            insn(RET | A, 0, 0, 0),
            insn(RET | K, 0, 0, 0),
        ];
        let f = Filter::new(p, None).unwrap();
        assert_eq!(f.evaluate(0, 0, [0, 5, 0, 0, 0, 0]), 8);
        // The instruction pointer's high word, and LEN.
        let p = vec![insn(LD | W | ABS, 0, 0, 12), insn(RET | A, 0, 0, 0)];
        assert_eq!(Filter::new(p, None).unwrap().evaluate(0, 0x1234_0000_0000, [0; 6]), 0x1234);
        let p = vec![insn(LD | W | LEN, 0, 0, 0), insn(RET | A, 0, 0, 0)];
        assert_eq!(Filter::new(p, None).unwrap().evaluate(0, 0, [0; 6]), 64);
        // Division by a zero X returns 0.
        let p = vec![insn(LD | IMM, 0, 0, 9), insn(LDX | IMM, 0, 0, 0), insn(ALU | DIV | X, 0, 0, 0), insn(RET | K, 0, 0, RET_ALLOW)];
        assert_eq!(Filter::new(p, None).unwrap().evaluate(0, 0, [0; 6]), 0);
    }

    #[test]
    fn bad_programs_are_refused() {
        let bad = |p: Vec<Insn>| Filter::new(p, None).err().map(|e| e.code);
        let einval = Some(rvisor_abi::ErrnoCode::EINVAL);
        assert_eq!(bad(vec![]), einval);
        assert_eq!(bad(vec![insn(LD | W | ABS, 0, 0, 0)]), einval, "no final return");
        assert_eq!(bad(vec![insn(LD | W | ABS, 0, 0, 64), insn(RET | A, 0, 0, 0)]), einval, "load past the data");
        assert_eq!(bad(vec![insn(LD | W | ABS, 0, 0, 2), insn(RET | A, 0, 0, 0)]), einval, "misaligned load");
        assert_eq!(bad(vec![insn(JMP | JA, 0, 0, 1), insn(RET | A, 0, 0, 0)]), einval, "jump past the end");
        assert_eq!(bad(vec![insn(JMP | JEQ | K, 0, 1, 0), insn(RET | A, 0, 0, 0)]), einval);
        assert_eq!(bad(vec![insn(LD | MEM, 0, 0, 0), insn(RET | A, 0, 0, 0)]), einval, "load before store");
        assert_eq!(bad(vec![insn(ST, 0, 0, 16), insn(RET | A, 0, 0, 0)]), einval);
        assert_eq!(bad(vec![insn(ALU | DIV | K, 0, 0, 0), insn(RET | A, 0, 0, 0)]), einval);
        assert_eq!(bad(vec![insn(ALU | LSH | K, 0, 0, 32), insn(RET | A, 0, 0, 0)]), einval);
        assert_eq!(bad(vec![insn(0x90 | ALU, 0, 0, 3), insn(RET | A, 0, 0, 0)]), einval, "BPF_MOD is not for seccomp");
        assert_eq!(bad(vec![insn(LD | 0x40, 0, 0, 0), insn(RET | A, 0, 0, 0)]), einval, "BPF_IND");
        assert_eq!(bad(vec![insn(RET | X, 0, 0, 0)]), einval);
        assert_eq!(bad(vec![insn(RET | K, 0, 0, 0); MAX_INSNS + 1]), einval);
        // A store on one path only: the load after the join is refused.
        let p = vec![
            insn(JMP | JEQ | K, 0, 1, 0),
            insn(ST, 0, 0, 0),
            insn(LD | MEM, 0, 0, 0),
            insn(RET | A, 0, 0, 0),
        ];
        assert_eq!(bad(p), einval);
        let mut chain = None;
        let mut refused = None;
        for _ in 0..MAX_INSNS_PER_PATH {
            match Filter::new(vec![insn(RET | K, 0, 0, RET_ALLOW); MAX_INSNS], chain.clone()) {
                Ok(f) => chain = Some(f),
                Err(e) => {
                    refused = Some(e.code);
                    break;
                }
            }
        }
        assert_eq!(refused, Some(rvisor_abi::ErrnoCode::ENOMEM));
    }
}
