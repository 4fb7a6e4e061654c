//! The systrap platform's own attack surface: the app shares its address space with the
//! stub's code and the window it shares with the Sentry. tests/programs/systrap_escape.c
//! attacks them by every route the design names: jumping to the stub's `syscall`
//! instruction, forging rt_sigreturn frames, writing the shared slots, mapping over the
//! stub, installing another seccomp filter. Each must end in the Sentry's answer or the
//! program's death, never in a host effect: the test checks that a directory the program
//! tries to create does not appear and that a host process it tries to kill lives on.
//!
//! Only for systrap (the routes are specific to its stub), in both link modes.

mod common;

use common::*;
use std::process::{Child, Command, Stdio};

struct Host {
    dir: std::path::PathBuf,
    victim: Child,
}

impl Host {
    fn new() -> Host {
        let dir = std::env::temp_dir().join(unique_name("rvisor-systrap-escape"));
        let victim = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::null()).spawn().expect("spawn victim process");
        Host { dir, victim }
    }

    fn spec(&self, mode: &str) -> Spec {
        Spec::args([mode.as_ref(), self.dir.as_os_str(), self.victim.id().to_string().as_ref()])
    }

    /// What reached the host.
    fn escapes(&mut self) -> Vec<String> {
        let mut e = Vec::new();
        if self.dir.exists() {
            e.push(format!("ESCAPE: mkdir reached the host: {} exists", self.dir.display()));
        }
        match self.victim.try_wait() {
            Ok(None) => {}
            Ok(Some(st)) => e.push(format!("ESCAPE: kill reached the host: the victim ended ({st})")),
            Err(err) => e.push(format!("try_wait on the victim: {err}")),
        }
        e
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.victim.kill();
        let _ = self.victim.wait();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn lines_in_order(o: &Outcome, want: &[&str]) -> Result<(), String> {
    let lines = o.stdout_lines();
    let mut rest = lines.iter();
    for w in want {
        if !rest.any(|l| l.starts_with(w)) {
            return Err(format!("no line starting with {w:?} (in order)"));
        }
    }
    Ok(())
}

fn no_line(o: &Outcome, bad: &str) -> Result<(), String> {
    match o.stdout_lines().iter().find(|l| l.starts_with(bad)) {
        Some(l) => Err(format!("unexpected line {l:?}")),
        None => Ok(()),
    }
}

fn killed(o: &Outcome) -> Result<(), String> {
    if o.status > 128 && !o.timed_out {
        Ok(())
    } else {
        Err(format!("want the program killed, got status {}", o.status))
    }
}

/// Runs `mode` to completion under systrap (which patches syscall sites by default) for
/// both link modes and checks it.
fn attack(test: &str, mode: &str, check: impl Fn(&Outcome) -> Result<(), String>) {
    for &link in LINKS {
        let bin = compile("systrap_escape", link);
        let mut host = Host::new();
        let o = run(sandbox_command("systrap", &[], &bin, &host.spec(mode)), Input::Bytes(Vec::new()));
        let mut errs: Vec<String> = host.escapes();
        if let Err(e) = all([sane(&o), check(&o)]) {
            errs.push(e);
        }
        if !errs.is_empty() {
            panic!("{test} [{}]:\n{}\n{}", link.name(), errs.join("\n"), o.describe());
        }
    }
}

/// Syscalls through the stub's own `syscall` instruction are trapped like any other;
/// `exit` (which the filter must allow there) takes the thread away from the Sentry, which
/// then kills the program instead of waiting forever.
#[test]
fn systrap_gadget_syscalls_are_trapped() {
    for &link in LINKS {
        let bin = compile("systrap_escape", link);
        let mut host = Host::new();
        let mut p = Interactive::spawn(sandbox_command("systrap", &[], &bin, &host.spec("gadget")));
        let mut errs = Vec::new();
        loop {
            match p.next_line() {
                Ok(l) if l == "waiting" => break,
                Ok(_) => {}
                Err(e) => {
                    errs.push(e);
                    break;
                }
            }
        }
        // The program is blocked on stdin: check the host now.
        errs.extend(host.escapes());
        p.close_stdin();
        let o = p.finish();
        errs.extend(host.escapes());
        if let Err(e) = all([
            sane(&o),
            lines_in_order(
                &o,
                &[
                    "found the stub's restorer syscall",
                    "written through the stub's syscall",
                    "write via stub = 35",
                    "mkdir via stub = ",
                    "kill victim via stub = -ESRCH",
                    "seccomp allow-all via stub = 0",
                    "mprotect stub rwx via stub = -",
                    "futex wake on app memory via stub = 0",
                    "getppid via stub = 0",
                    "waiting",
                    "exit through the stub",
                ],
            ),
            no_line(&o, "still here"),
            expect_status(&o, 128 + libc::SIGKILL),
        ]) {
            errs.push(e);
        }
        if !errs.is_empty() {
            panic!("systrap_gadget_syscalls_are_trapped [{}]:\n{}\n{}", link.name(), errs.join("\n"), o.describe());
        }
    }
}

/// A forged frame that blocks SIGSYS on the host: the next syscall kills the stub.
#[test]
fn systrap_forged_sigreturn_blocking_sigsys_kills() {
    attack("systrap_forged_sigreturn_blocking_sigsys_kills", "sigreturn", |o| {
        all([
            lines_in_order(o, &["forging a sigreturn frame"]),
            no_line(o, "mkdir after the forged sigreturn"),
            no_line(o, "done"),
            killed(o),
        ])
    });
}

/// A forged frame that moves the host signal stack into app memory, with a fake slot: the
/// handler's futex on app memory traps with SIGSYS blocked, and the stub dies.
#[test]
fn systrap_forged_signal_stack_kills() {
    attack("systrap_forged_signal_stack_kills", "altstack", |o| {
        all([
            lines_in_order(o, &["forging a sigreturn frame"]),
            no_line(o, "mkdir after the forged sigreturn"),
            no_line(o, "done"),
            killed(o),
        ])
    });
}

/// A thread that blocks the Sentry's kick on the host and never traps again cannot be
/// interrupted: when the group must die, the Sentry kills the stub instead of waiting.
#[test]
fn systrap_unkickable_thread_is_killed() {
    attack("systrap_unkickable_thread_is_killed", "unkickable", |o| {
        all([lines_in_order(o, &["forging a sigreturn frame", "sending SIGTERM to the group"]), no_line(o, "done"), killed(o)])
    });
}

/// The read-only pages of the window cannot be written; scribbling over a slot and its
/// signal frame from another thread ends in the program's death, with the Sentry intact.
#[test]
fn systrap_shared_slot_writes_kill() {
    attack("systrap_shared_slot_writes_kill", "slot", |o| {
        all([
            lines_in_order(
                o,
                &["write to the request queue page: SIGSEGV", "write to the filter page: SIGSEGV", "hammering"],
            ),
            killed(o),
        ])
    });
}

/// mmap, munmap, mprotect, mremap and madvise over the stub region are refused by the
/// Sentry and never reach the stub.
#[test]
fn systrap_mapping_over_the_stub_is_refused() {
    attack("systrap_mapping_over_the_stub_is_refused", "remap", |o| {
        all([
            lines_in_order(
                o,
                &[
                    "mmap fixed over the stub = -",
                    "mmap fixed over the window = -",
                    "mmap fixed across the boundary = -",
                    "munmap the stub = -",
                    "munmap across the boundary = -",
                    "mprotect the stub rwx = -",
                    "mprotect the window rw = -",
                    "mremap onto the stub = -",
                    "madvise dontneed the window = -",
                    "stub code unchanged: yes",
                    "getppid still served: yes",
                    "mkdir = ",
                    "done",
                ],
            ),
            expect_status(o, 0),
        ])
    });
}

/// Installing an allow-all seccomp filter (directly, with TSYNC, by prctl, through the
/// stub) is the Sentry's business: it installs the filter for the program (and then
/// refuses strict mode), the host filter stays, and mkdir still does not reach the host.
#[test]
fn systrap_another_filter_changes_nothing() {
    attack("systrap_another_filter_changes_nothing", "filter", |o| {
        all([
            lines_in_order(
                o,
                &[
                    "seccomp allow-all = 0",
                    "seccomp allow-all with TSYNC = 0",
                    "prctl PR_SET_SECCOMP filter = 0",
                    "seccomp strict = -EINVAL",
                    "seccomp allow-all via stub = 0",
                    "mkdir = ",
                    "kill victim = -ESRCH",
                    "done",
                ],
            ),
            expect_status(o, 0),
        ])
    });
}

/// Where seccomp filters cannot be installed, `--platform=systrap` refuses to start, with
/// a message that says so (ptrace still runs there).
#[test]
fn systrap_without_seccomp_fails_clearly() {
    let deny = compile("deny_seccomp", Link::Static);
    let program = compile("hello", Link::Static);
    let under = |platform: &str| {
        let mut cmd = Command::new(&deny);
        cmd.arg(rvisor()).arg("do").arg(format!("--platform={platform}")).arg("--").arg(&program);
        run(cmd, Input::Bytes(Vec::new()))
    };
    let o = under("systrap");
    let err = o.stderr_str();
    if let Err(e) = all([
        sane(&o),
        expect_status(&o, 125),
        if err.contains("systrap") && err.contains("seccomp filter cannot be installed") {
            Ok(())
        } else {
            Err("no clear message about the seccomp filter on stderr".into())
        },
    ]) {
        panic!("{e}\n{}", o.describe());
    }
    let o = under("ptrace");
    if let Err(e) = all([sane(&o), expect_status(&o, 0)]) {
        panic!("ptrace under the same filter:\n{e}\n{}", o.describe());
    }
}

/// A stub process outlives its address space (it is recycled for the next one), so an
/// app that scribbled over its other threads' slots and frames before exiting must not
/// reach the processes that run in it next: they start fresh threads and run normally.
#[test]
fn systrap_recycled_stubs_start_clean() {
    attack("systrap_recycled_stubs_start_clean", "recycle", |o| {
        all([lines_in_order(o, &["recycle: 20 rounds ok", "done"]), no_line(o, "recycle: round"), expect_status(o, 0)])
    });
}

/// Syscall patching's routes (systrap's default): the trampoline in the stub's code
/// entered by the app with a forged site, with a real site but another number, with GS
/// at app memory or 0 (the site's trapping fallback), with GS at a forged block (the
/// thread gets back only the registers the app wrote); and a patched site whose table
/// is unmapped faults. None reaches the host.
#[test]
fn systrap_patch_routes_give_nothing() {
    attack("systrap_patch_routes_give_nothing", "usertrap", |o| {
        all([
            lines_in_order(
                o,
                &[
                    "site patched: yes",
                    "patched site serves: yes",
                    "trampoline with a forged site = -ENOSYS",
                    "trampoline with a real site and rax = kill: the site's getppid",
                    "GS at app memory: the fallback's getppid",
                    "GS base 0: the fallback's getppid",
                    "forged block: the trampoline waits on app memory: yes",
                    "forged block: the thread came back with rax = 4242",
                    "mkdir = ",
                    "unmapped table: the patched site faults (SIGSEGV)",
                    "patched site still serves: yes",
                    "done",
                ],
            ),
            expect_status(o, 0),
        ])
    });
}

/// With patching on, scribbling over a slot (its kind word and save area too) still
/// ends in the program's death, with the Sentry intact.
#[test]
fn systrap_patch_shared_slot_writes_kill() {
    attack("systrap_patch_shared_slot_writes_kill", "slot", |o| {
        all([lines_in_order(o, &["write to the request queue page: SIGSEGV", "hammering"]), killed(o)])
    });
}
