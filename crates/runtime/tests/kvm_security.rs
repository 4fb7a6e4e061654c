//! The kvm platform's own attack surface: the upper half of every guest address space
//! holds the IDT, the GDT and TSS of each vCPU, the entry page (the ring-3 `syscall`
//! entry and exception handlers, each an `out` to a port the TSS lets ring 3 use) and
//! the exception stacks. tests/programs/kvm_escape.c attacks them: syscalls by jumping
//! to the entry, `out`/`in`/`hlt`/`int 0x80` from app code, a `syscall` from a 32-bit
//! code segment (which PVM enters in ring 0), a forged exception report,
//! reading the descriptor tables, writing the entry page or the exception stack,
//! mapping over the upper half. Each must end in the Sentry's answer or a signal, never
//! a host effect; and a vCPU reused for a new image carries no FP state over: the test checks that a directory the program tries to create does not
//! appear on the host and that a host process it tries to kill lives on.
//!
//! Only for kvm (the routes are specific to its guest layout), in both link modes.

mod common;

use common::*;
use std::process::{Command, Stdio};

/// What kvm_escape prints, in order: the Sentry's answers, or the signal (number,
/// si_code) each attempt died of. SI_KERNEL (128) is Linux's #GP; 1 is SEGV_MAPERR.
const EXPECTED: &[&str] = &[
    "entry getpid: returned 1",
    "entry mkdir: returned 0",
    "mkdir in the sandbox: made",
    "entry kill: returned -3",
    "raw out: signal 11 code 128",
    "raw in: signal 11 code 128",
    "forged fault: signal 11 code 128",
    "read idt: signal 11 code 1",
    "read gdt: signal 11 code 1",
    "write entry: signal 11 code 1",
    "hlt: signal 11 code 128",
    "int 0x80: signal 11 code 128",
    // Replaced by `INTEL_COMPAT_SYSCALL` on Intel CPUs.
    "32-bit syscall: signal 11 code 128",
    "scribbled stack: signal 11 code 1",
    "mmap over the upper half: Cannot allocate memory",
    "mprotect of the entry page: Cannot allocate memory",
    "getpid: 1",
    "child set its MXCSR: yes",
    "a new image's MXCSR: 0x1f80",
];

/// Intel CPUs have no `syscall` in compatibility mode: it is #UD, SIGILL/ILL_ILLOPN,
/// natively as in the guest (AMD's enters the kernel, which PVM does in ring 0).
const INTEL_COMPAT_SYSCALL: &str = "32-bit syscall: signal 4 code 2";

fn expected() -> Vec<&'static str> {
    let intel = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains("GenuineIntel"));
    EXPECTED.iter().map(|&l| if intel && l.starts_with("32-bit syscall:") { INTEL_COMPAT_SYSCALL } else { l }).collect()
}

#[test]
fn kvm_guest_routes_reach_only_the_sentry() {
    let expected = expected();
    for &link in LINKS {
        let bin = compile("kvm_escape", link);
        let dir = std::env::temp_dir().join(unique_name("rvisor-kvm-escape"));
        let mut victim = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::null()).spawn().expect("spawn victim process");
        let spec = Spec::args([dir.as_os_str(), victim.id().to_string().as_ref()]);
        let o = run(sandbox_command("kvm", &[], &bin, &spec), Input::Bytes(Vec::new()));
        let mut errs = Vec::new();
        if dir.exists() {
            errs.push(format!("ESCAPE: mkdir reached the host: {} exists", dir.display()));
        }
        if let Ok(Some(st)) = victim.try_wait() {
            errs.push(format!("ESCAPE: kill reached the host: the victim ended ({st})"));
        }
        let _ = victim.kill();
        let _ = victim.wait();
        let _ = std::fs::remove_dir(&dir);
        let lines = o.stdout_lines();
        if lines != expected {
            errs.push(format!("output differs: want {expected:#?}"));
        }
        if let Err(e) = all([sane(&o), expect_status(&o, 0)]) {
            errs.push(e);
        }
        if !errs.is_empty() {
            panic!("[{}]:\n{}\n{}", link.name(), errs.join("\n"), o.describe());
        }
    }
}

/// Where /dev/kvm is not a KVM device (here: /dev/null bound over it in a private
/// mount namespace), `--platform=kvm` refuses to start with a message that says so.
#[test]
fn kvm_without_a_kvm_device_fails_clearly() {
    let program = compile("hello", Link::Static);
    let script = format!("mount --bind /dev/null /dev/kvm && exec {} do --platform=kvm -- {}", rvisor().display(), program.display());
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    let o = run(cmd, Input::Bytes(Vec::new()));
    let err = o.stderr_str();
    if let Err(e) = all([
        sane(&o),
        expect_status(&o, 125),
        if err.contains("kvm") && err.contains("/dev/kvm") { Ok(()) } else { Err("no clear message about /dev/kvm on stderr".into()) },
    ]) {
        panic!("{e}\n{}", o.describe());
    }
}
