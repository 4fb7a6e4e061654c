//! The OCI spec's seccomp profile (`linux.seccomp`), compiled to the classic
//! BPF program the sandbox's kernel runs on every call of the container's
//! processes, as runc has libseccomp compile it for the host kernel. The
//! rules are in the app's view (the sandbox's own kernel answers), so a
//! profile changes what the app sees exactly as under runc: a refused call's
//! errno, a trap's SIGSYS, a kill.
//!
//! Rules are tried in the profile's order for the call's number, the first
//! whose argument conditions all hold decides; no rule decides, the default
//! action does. Names this kernel does not know are skipped, as libseccomp
//! skips those of other architectures; other architectures' calls (the
//! 32-bit ABI) are killed.

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompArg, LinuxSeccompOperator as Op};
use rvisor_kernel::syscalls::names::NAMES;
use bpf::{AUDIT_ARCH_X86_64, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, RET_KILL_THREAD, RET_LOG, RET_TRACE, RET_TRAP};
use std::collections::BTreeMap;

/// One classic BPF instruction (`struct sock_filter`): code, jt, jf, k.
pub type Insn = (u16, u8, u8, u32);

use rvisor_kernel::task::seccomp as bpf;
const LD_ABS: u16 = bpf::LD | bpf::W | bpf::ABS;
const AND_K: u16 = bpf::ALU | bpf::AND | bpf::K;
const JA: u16 = bpf::JMP | bpf::JA;
const JEQ: u16 = bpf::JMP | bpf::JEQ | bpf::K;
const JGT: u16 = bpf::JMP | bpf::JGT | bpf::K;
const JGE: u16 = bpf::JMP | bpf::JGE | bpf::K;
const RET: u16 = bpf::RET | bpf::K;

const EPERM: u32 = 1;

/// Where a conditional jump goes: on to the next instruction, past the
/// condition (it holds), or to the next rule (it does not).
#[derive(Clone, Copy)]
enum To {
    Next,
    Pass,
    Fail,
}

/// The profile as a program; an error says what the kernel cannot do.
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<Insn>, String> {
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    // Each number's rules, in the profile's order.
    let mut by_nr: BTreeMap<u32, Vec<Vec<Insn>>> = BTreeMap::new();
    for rule in profile.syscalls().iter().flatten() {
        let block = rule_block(rule.args().as_deref().unwrap_or(&[]), action(rule.action(), rule.errno_ret())?)?;
        for name in rule.names() {
            if let Some(&(nr, _)) = NAMES.iter().find(|(_, n)| n == name) {
                by_nr.entry(nr).or_default().push(block.clone());
            }
        }
    }
    let mut prog: Vec<Insn> = vec![(LD_ABS, 0, 0, 4), (JEQ, 1, 0, AUDIT_ARCH_X86_64), (RET, 0, 0, RET_KILL_PROCESS), (LD_ABS, 0, 0, 0)];
    // A test and a long jump per number, then the default; then each number's block.
    let blocks: Vec<Vec<Insn>> = by_nr
        .values()
        .map(|rules| {
            let mut b: Vec<Insn> = rules.concat();
            b.push((RET, 0, 0, default));
            b
        })
        .collect();
    let dispatch_end = prog.len() + 2 * blocks.len() + 1;
    let mut at = dispatch_end;
    for ((&nr, _), block) in by_nr.iter().zip(&blocks) {
        let ja_pc = prog.len() + 1;
        prog.push((JEQ, 0, 1, nr));
        prog.push((JA, 0, 0, u32::try_from(at - ja_pc - 1).map_err(|_| "seccomp profile too large")?));
        at += block.len();
    }
    prog.push((RET, 0, 0, default));
    prog.extend(blocks.into_iter().flatten());
    if prog.len() > 4096 {
        return Err(format!("seccomp profile: {} instructions, more than a filter may hold (4096)", prog.len()));
    }
    Ok(prog)
}

/// The program as the kernel takes it.
pub fn to_kernel(prog: Vec<Insn>) -> Vec<rvisor_kernel::task::seccomp::Insn> {
    prog.into_iter().map(|(code, jt, jf, k)| rvisor_kernel::task::seccomp::Insn { code, jt, jf, k }).collect()
}

/// The actions `action` takes, by their OCI names (`rvisor features`).
pub const ACTIONS: [&str; 8] = [
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",
];

/// The comparisons `condition` makes, by their OCI names.
pub const OPERATORS: [&str; 7] = ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"];

/// The kernel's return value for an OCI action.
fn action(a: Action, errno: Option<u32>) -> Result<u32, String> {
    Ok(match a {
        Action::ScmpActKill | Action::ScmpActKillThread => RET_KILL_THREAD,
        Action::ScmpActKillProcess => RET_KILL_PROCESS,
        Action::ScmpActTrap => RET_TRAP,
        Action::ScmpActErrno => RET_ERRNO | (errno.unwrap_or(EPERM) & 0xffff),
        Action::ScmpActTrace => RET_TRACE | (errno.unwrap_or(EPERM) & 0xffff),
        Action::ScmpActLog => RET_LOG,
        Action::ScmpActAllow => RET_ALLOW,
        Action::ScmpActNotify => return Err("seccomp profile: SCMP_ACT_NOTIFY is not supported".into()),
    })
}

/// A rule: its argument conditions, then its action; a condition that does
/// not hold jumps past the action, to the number's next rule.
fn rule_block(args: &[LinuxSeccompArg], ret: u32) -> Result<Vec<Insn>, String> {
    let mut symbolic: Vec<(u16, To, To, u32)> = Vec::new();
    let mut ends = Vec::new();
    for a in args {
        let cond = condition(a)?;
        symbolic.extend(cond);
        ends.push(symbolic.len());
    }
    let fail = symbolic.len() + 1;
    let mut out = Vec::with_capacity(fail);
    let mut cond_end = ends.iter();
    let mut end = cond_end.next().copied().unwrap_or(0);
    for (pc, &(code, jt, jf, k)) in symbolic.iter().enumerate() {
        while pc >= end {
            end = cond_end.next().copied().unwrap_or(symbolic.len());
        }
        let offset = |to: To| -> Result<u8, String> {
            let target = match to {
                To::Next => pc + 1,
                To::Pass => end,
                To::Fail => fail,
            };
            u8::try_from(target - pc - 1).map_err(|_| "seccomp rule too large".to_string())
        };
        out.push((code, offset(jt)?, offset(jf)?, k));
    }
    out.push((RET, 0, 0, ret));
    Ok(out)
}

/// One argument condition over its two 32-bit halves (`struct seccomp_data`
/// has `args[i]` at 16 + 8i, low word first).
fn condition(a: &LinuxSeccompArg) -> Result<Vec<(u16, To, To, u32)>, String> {
    if a.index() > 5 {
        return Err(format!("seccomp profile: argument index {} (at most 5)", a.index()));
    }
    let lo = 16 + 8 * a.index() as u32;
    let hi = lo + 4;
    let (v_hi, v_lo) = ((a.value() >> 32) as u32, a.value() as u32);
    let (ld_hi, ld_lo) = ((LD_ABS, To::Next, To::Next, hi), (LD_ABS, To::Next, To::Next, lo));
    Ok(match a.op() {
        Op::ScmpCmpEq => vec![ld_hi, (JEQ, To::Next, To::Fail, v_hi), ld_lo, (JEQ, To::Pass, To::Fail, v_lo)],
        Op::ScmpCmpNe => vec![ld_hi, (JEQ, To::Next, To::Pass, v_hi), ld_lo, (JEQ, To::Fail, To::Pass, v_lo)],
        Op::ScmpCmpMaskedEq => {
            let want = a.value_two().unwrap_or(0);
            let (w_hi, w_lo) = ((want >> 32) as u32, want as u32);
            vec![ld_hi, (AND_K, To::Next, To::Next, v_hi), (JEQ, To::Next, To::Fail, w_hi), ld_lo, (AND_K, To::Next, To::Next, v_lo), (JEQ, To::Pass, To::Fail, w_lo)]
        }
        // Unsigned, as libseccomp compares: the high words decide unless equal.
        Op::ScmpCmpGt => vec![ld_hi, (JGT, To::Pass, To::Next, v_hi), (JEQ, To::Next, To::Fail, v_hi), ld_lo, (JGT, To::Pass, To::Fail, v_lo)],
        Op::ScmpCmpGe => vec![ld_hi, (JGT, To::Pass, To::Next, v_hi), (JEQ, To::Next, To::Fail, v_hi), ld_lo, (JGE, To::Pass, To::Fail, v_lo)],
        Op::ScmpCmpLt => vec![ld_hi, (JGT, To::Fail, To::Next, v_hi), (JEQ, To::Next, To::Pass, v_hi), ld_lo, (JGE, To::Fail, To::Pass, v_lo)],
        Op::ScmpCmpLe => vec![ld_hi, (JGT, To::Fail, To::Next, v_hi), (JEQ, To::Next, To::Pass, v_hi), ld_lo, (JGT, To::Fail, To::Pass, v_lo)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvisor_kernel::task::seccomp::Filter;

    #[test]
    fn every_action_and_operator_rvisor_features_names_compiles() {
        for a in ACTIONS {
            let p: LinuxSeccomp = serde_json::from_str(&format!(r#"{{"defaultAction": "{a}"}}"#)).unwrap();
            assert!(compile(&p).is_ok(), "{a}");
        }
        for op in OPERATORS {
            let p: LinuxSeccomp = serde_json::from_str(&format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["dup"], "action": "SCMP_ACT_ERRNO", "args": [{{"index": 0, "value": 3, "valueTwo": 1, "op": "{op}"}}]}}]}}"#)).unwrap();
            assert!(compile(&p).is_ok(), "{op}");
        }
    }

    fn filter(json: &str) -> std::sync::Arc<Filter> {
        let profile: LinuxSeccomp = serde_json::from_str(json).unwrap();
        Filter::new(to_kernel(compile(&profile).unwrap()), None).unwrap()
    }

    fn nr(name: &str) -> u64 {
        u64::from(NAMES.iter().find(|(_, n)| *n == name).unwrap().0)
    }

    #[test]
    fn rules_decide_by_number_in_order_then_the_default() {
        let f = filter(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
                {"names": ["read", "write", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["getpid"], "action": "SCMP_ACT_TRAP"}]}"#,
        );
        assert_eq!(f.evaluate(nr("read"), 0, [0; 6]), RET_ALLOW);
        assert_eq!(f.evaluate(nr("write"), 0, [0; 6]), RET_ALLOW);
        assert_eq!(f.evaluate(nr("mkdir"), 0, [0; 6]), RET_ERRNO | 13);
        assert_eq!(f.evaluate(nr("getppid"), 0, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(f.evaluate(nr("getpid"), 0, [0; 6]), RET_TRAP);
        assert_eq!(f.evaluate(nr("close"), 0, [0; 6]), RET_ERRNO | 38);
    }

    #[test]
    fn argument_conditions_compare_all_64_bits() {
        let big = 0x1_0000_0005u64;
        let f = filter(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}}]}},
                {{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}},
                {{"names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2, "args": [{{"index": 0, "value": {big}, "op": "SCMP_CMP_GT"}}]}},
                {{"names": ["dup2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3, "args": [{{"index": 1, "value": {big}, "op": "SCMP_CMP_LE"}}]}},
                {{"names": ["dup3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4, "args": [{{"index": 2, "value": 4026531840, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}}, {{"index": 0, "value": 7, "op": "SCMP_CMP_NE"}}]}},
                {{"names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5, "args": [{{"index": 0, "value": {big}, "op": "SCMP_CMP_LT"}}]}},
                {{"names": ["fsync"], "action": "SCMP_ACT_ERRNO", "errnoRet": 6, "args": [{{"index": 0, "value": {big}, "op": "SCMP_CMP_GE"}}]}}]}}"#
        ));
        let p = nr("personality");
        assert_eq!(f.evaluate(p, 0, [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW, "the first rule holds");
        assert_eq!(f.evaluate(p, 0, [8, 0, 0, 0, 0, 0]), RET_ERRNO | 1, "the next rule decides");
        assert_eq!(f.evaluate(p, 0, [0x1_ffff_ffff, 0, 0, 0, 0, 0]), RET_ERRNO | 1, "the high word counts");
        let (dup, dup2, dup3, close, fsync) = (nr("dup"), nr("dup2"), nr("dup3"), nr("close"), nr("fsync"));
        for (v, gt) in [(big + 1, true), (big, false), (5, false), (0x2_0000_0000, true), (u64::MAX, true)] {
            assert_eq!(f.evaluate(dup, 0, [v, 0, 0, 0, 0, 0]) == RET_ERRNO | 2, gt, "{v:#x} > big");
            assert_eq!(f.evaluate(dup2, 0, [0, v, 0, 0, 0, 0]) == RET_ERRNO | 3, !gt, "{v:#x} <= big");
            assert_eq!(f.evaluate(close, 0, [v, 0, 0, 0, 0, 0]) == RET_ERRNO | 5, !gt && v != big, "{v:#x} < big");
            assert_eq!(f.evaluate(fsync, 0, [v, 0, 0, 0, 0, 0]) == RET_ERRNO | 6, gt || v == big, "{v:#x} >= big");
        }
        assert_eq!(f.evaluate(dup3, 0, [1, 0, 0x0800_0000, 0, 0, 0]), RET_ERRNO | 4, "no masked bit, fd not 7");
        assert_eq!(f.evaluate(dup3, 0, [7, 0, 0x0800_0000, 0, 0, 0]), RET_ALLOW, "fd 7");
        assert_eq!(f.evaluate(dup3, 0, [1, 0, 0x1000_0000, 0, 0, 0]), RET_ALLOW, "a masked bit");
    }

    #[test]
    fn what_cannot_be_done_is_refused() {
        let notify: LinuxSeccomp = serde_json::from_str(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#).unwrap();
        assert!(compile(&notify).unwrap_err().contains("SCMP_ACT_NOTIFY"));
        let index: LinuxSeccomp = serde_json::from_str(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#).unwrap();
        assert!(compile(&index).unwrap_err().contains("index 6"));
    }
}
