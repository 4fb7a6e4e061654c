//! Random system calls with hostile arguments (tests/programs/syscall_fuzz.c): whatever
//! a program passes, the Sentry answers with an errno or kills the program. It must never
//! panic (the sandbox would die with it), hang, or let a call reach the host: a path
//! the program tries to create on the host must not appear there.

mod common;

use common::*;

/// Seeds the suite runs: each makes 150 children of three threads, 400 calls a thread,
/// different ones per seed.
const SEEDS: &[u64] = &[1, 424_242];

#[test]
fn random_syscalls_never_break_the_sentry() {
    let program = "syscall_fuzz";
    matrix("random_syscalls_never_break_the_sentry", &[Link::Static], |v| {
        let binary = compile(program, v.link);
        let mut results = Vec::new();
        for &seed in SEEDS {
            let host_path = scratch_path("rvisor-fuzz");
            let spec = Spec::args([seed.to_string().as_ref(), "150".as_ref(), "400".as_ref(), host_path.as_os_str()]);
            let o = run_sandbox(v.platform, &binary, &spec);
            let lines = o.stdout_lines();
            results.push(all([
                expect_status(&o, 0),
                expect_stdout_has_line(&o, "done"),
                if lines.iter().any(|l| l.starts_with("children 150: ")) {
                    Ok(())
                } else {
                    Err(format!("seed {seed}: no summary of 150 children"))
                },
                if o.stderr_str().contains("panicked") {
                    Err(format!("seed {seed}: the Sentry panicked:\n{}", o.stderr_str()))
                } else {
                    Ok(())
                },
                if host_path.exists() {
                    Err(format!("seed {seed}: ESCAPE: {} was made on the host", host_path.display()))
                } else {
                    Ok(())
                },
            ]));
        }
        all(results)
    });
}
