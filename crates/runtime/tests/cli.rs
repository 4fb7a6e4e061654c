//! The `rvisor` command line: loader errors (126/127 with a one-line message, as a shell),
//! `rvisor syscalls`, `--strace`, `--log`, `--debug`, bad flags; and the known-failures file.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes an executable file with these contents.
fn exe_file(stem: &str, contents: &[u8]) -> PathBuf {
    let p = scratch_path(stem);
    fs::write(&p, contents).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A minimal but valid i386 ELF executable (`exit(42)` through int $0x80): crafted by hand so
/// the test does not depend on `gcc -m32` and a 32-bit libc being installed.
fn elf32() -> Vec<u8> {
    const BASE: u32 = 0x0804_8000;
    const EHSIZE: u16 = 52;
    const PHSIZE: u16 = 32;
    let code: [u8; 12] = [0xb8, 1, 0, 0, 0, 0xbb, 42, 0, 0, 0, 0xcd, 0x80]; // mov eax,1; mov ebx,42; int 0x80
    let total = (EHSIZE + PHSIZE) as u32 + code.len() as u32;
    let mut f = Vec::new();
    f.extend_from_slice(&[
        0x7f, b'E', b'L', b'F', 1, /* ELFCLASS32 */
        1, /* LSB */
        1, 0,
    ]);
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&2u16.to_le_bytes()); // e_type ET_EXEC
    f.extend_from_slice(&3u16.to_le_bytes()); // e_machine EM_386
    f.extend_from_slice(&1u32.to_le_bytes()); // e_version
    f.extend_from_slice(&(BASE + (EHSIZE + PHSIZE) as u32).to_le_bytes()); // e_entry
    f.extend_from_slice(&(EHSIZE as u32).to_le_bytes()); // e_phoff
    f.extend_from_slice(&0u32.to_le_bytes()); // e_shoff
    f.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    f.extend_from_slice(&EHSIZE.to_le_bytes());
    f.extend_from_slice(&PHSIZE.to_le_bytes());
    f.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    f.extend_from_slice(&40u16.to_le_bytes()); // e_shentsize
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    assert_eq!(f.len(), EHSIZE as usize);
    for word in [
        1, /* PT_LOAD */
        0, BASE, BASE, total, total, 5, /* R|X */
        0x1000,
    ] {
        f.extend_from_slice(&u32::to_le_bytes(word));
    }
    f.extend_from_slice(&code);
    assert_eq!(f.len(), total as usize);
    f
}

/// `rvisor do -- PATH` must fail with `status` and exactly one line on stderr naming PATH,
/// without running anything or panicking.
fn expect_refused(platform: &str, path: &Path, status: i32) -> Result<(), String> {
    let o = run_sandbox(platform, path, &Spec::default());
    sane(&o)?;
    let err = o.stderr_str();
    let lines: Vec<&str> = err.lines().collect();
    all([
        expect_status(&o, status),
        if o.stdout.is_empty() {
            Ok(())
        } else {
            Err("something was printed on stdout".into())
        },
        if lines.len() == 1 && err.ends_with('\n') {
            Ok(())
        } else {
            Err(format!(
                "want exactly one line on stderr, got {}",
                lines.len()
            ))
        },
        if err.contains(path.to_str().unwrap())
            || err.contains(path.file_name().unwrap().to_str().unwrap())
        {
            Ok(())
        } else {
            Err("the message does not name the file".into())
        },
    ])
    .map_err(|e| format!("{e}\n{}", o.describe()))
}

#[test]
fn missing_file_is_127() {
    matrix("missing_file_is_127", &[Link::Static], |v| {
        let p = scratch_path("does-not-exist");
        expect_refused(v.platform, &p, 127)
    });
}

#[test]
fn non_elf_files_are_126() {
    let text = exe_file("text-file", b"just some text\n");
    let empty = exe_file("empty", b"");
    let truncated = {
        let hello = fs::read(compile("hello", Link::Static)).unwrap();
        exe_file("truncated-elf", &hello[..40])
    };
    let dir = scratch_path("a-directory");
    fs::create_dir_all(&dir).unwrap();
    matrix("non_elf_files_are_126", &[Link::Static], |v| {
        all([&text, &empty, &truncated, &dir].map(|p| expect_refused(v.platform, p, 126)))
    });
    for f in [&text, &empty, &truncated] {
        let _ = fs::remove_file(f);
    }
    let _ = fs::remove_dir(&dir);
}

#[test]
fn elf32_is_126() {
    let p = exe_file("elf32", &elf32());
    // Sanity: the file is what it says; on hosts with IA-32 emulation it really runs.
    if let Ok(o) = Command::new(&p).output() {
        assert_eq!(
            o.status.code(),
            Some(42),
            "the crafted i386 ELF misbehaves natively"
        );
    }
    matrix("elf32_is_126", &[Link::Static], |v| {
        expect_refused(v.platform, &p, 126)
    });
    let _ = fs::remove_file(&p);
}

#[test]
fn foreign_machine_elf_is_126() {
    // A real x86-64 static binary relabelled as AArch64 (e_machine 183).
    let mut bytes = fs::read(compile("hello", Link::Static)).unwrap();
    bytes[18..20].copy_from_slice(&183u16.to_le_bytes());
    let p = exe_file("aarch64-elf", &bytes);
    matrix("foreign_machine_elf_is_126", &[Link::Static], |v| {
        expect_refused(v.platform, &p, 126)
    });
    let _ = fs::remove_file(&p);
}

#[test]
fn dynamic_elf_and_scripts_run() {
    // A dynamic ELF runs through its interpreter (ld.so from the served root), and a
    // `#!` script through its interpreter, with the same output as natively.
    let p = compile("hello", Link::Dynamic);
    let script = exe_file("script.sh", b"#!/bin/sh\necho hi from \"$0\" \"$1\"\nexit 3\n");
    matrix("dynamic_elf_and_scripts_run", &[Link::Static], |v| {
        let mut checks = Vec::new();
        for (prog, spec) in [(&p, Spec::default()), (&script, Spec::args(["arg"]))] {
            let native = run_native(prog, &spec);
            let sandbox = run_sandbox(v.platform, prog, &spec);
            checks.push(if native.stdout == sandbox.stdout && native.status == sandbox.status {
                Ok(())
            } else {
                Err(format!("native:\n{}\nsandbox:\n{}", native.describe(), sandbox.describe()))
            });
        }
        all(checks)
    });
    let _ = fs::remove_file(&script);
}

/// The system calls issue 2 implements: `rvisor syscalls` must list each as supported or
/// partial.
const FOUNDATION_SYSCALLS: &[&str] = &[
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "exit",
    "exit_group",
    "brk",
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "madvise",
    "msync",
    "mincore",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "uname",
    "getpid",
    "getppid",
    "gettid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "clock_gettime",
    "gettimeofday",
    "time",
    "clock_getres",
    "getrandom",
    "rt_sigaction",
    "rt_sigprocmask",
    "prlimit64",
    "getrlimit",
    "setrlimit",
    "ioctl",
    "fstat",
    "newfstatat",
    "sched_getaffinity",
    "sched_yield",
    "getcwd",
    "readlink",
];

#[test]
fn syscalls_table() {
    let mut cmd = Command::new(rvisor());
    cmd.arg("syscalls");
    let o = run(cmd, Input::Bytes(vec![]));
    let run_ok = all([sane(&o), expect_status(&o, 0)]);
    assert!(run_ok.is_ok(), "{}\n{}", run_ok.unwrap_err(), o.describe());
    let mut table = std::collections::BTreeMap::new();
    let mut errs = Vec::new();
    for line in o.stdout_str().lines().filter(|l| !l.trim().is_empty()) {
        // Accept `NAME STATUS [note]`, `NR NAME STATUS`, `NAME: STATUS`, ...: the status is
        // the first status word, the name the last identifier before it.
        let words: Vec<&str> = line.split_whitespace().collect();
        let clean = |w: &str| {
            w.trim_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .to_owned()
        };
        let Some(si) = words
            .iter()
            .position(|w| matches!(clean(w).as_str(), "supported" | "partial" | "missing"))
        else {
            // a header line is fine as long as it is not a syscall line
            continue;
        };
        let Some(name) = words[..si]
            .iter()
            .rev()
            .map(|w| clean(w))
            .find(|w| !w.is_empty() && !w.chars().all(|c| c.is_ascii_digit()))
        else {
            errs.push(format!("no name in {line:?}"));
            continue;
        };
        if table.insert(name.clone(), clean(words[si])).is_some() {
            errs.push(format!("{name} listed twice"));
        }
    }
    if table.get("read").map(String::as_str) != Some("supported") {
        errs.push(format!(
            "read is not listed as supported (got {:?})",
            table.get("read")
        ));
    }
    for name in FOUNDATION_SYSCALLS {
        match table.get(*name).map(String::as_str) {
            Some("supported" | "partial") => {}
            other => errs.push(format!("{name}: want supported or partial, got {other:?}")),
        }
    }
    if !table.contains_key("rseq") {
        errs.push("rseq is not listed (it should be, as ENOSYS by design)".into());
    }
    if table.len() < 300 {
        errs.push(format!(
            "only {} syscalls in the table: it should cover the whole x86-64 table",
            table.len()
        ));
    }
    assert!(errs.is_empty(), "{}\n{}", errs.join("\n"), o.describe());
}

#[test]
fn strace_flag() {
    matrix("strace_flag", &[Link::Static], |v| {
        let bin = compile("hello", v.link);
        let o = run_sandbox_flags(v.platform, &["--strace"], &bin, &Spec::default());
        sane(&o)?;
        let err = o.stderr_str();
        all([
            expect_status(&o, 0),
            expect_stdout(&o, "hello, world\nhello via write\nwrite returned 16\n"),
            if err
                .lines()
                .any(|l| l.contains("write(") && l.contains("= 16"))
            {
                Ok(())
            } else {
                Err("no strace line for write(1, ..., 16) = 16 on stderr".into())
            },
            if err.lines().any(|l| l.contains("exit_group(")) {
                Ok(())
            } else {
                Err("no strace line for exit_group".into())
            },
        ])
        .map_err(|e| format!("{e}\n{}", o.describe()))
    });
}

#[test]
fn strace_to_log_file() {
    matrix("strace_to_log_file", &[Link::Static], |v| {
        let bin = compile("hello", v.link);
        let log = scratch_path("strace.log");
        let log_arg = log.display().to_string();
        let o = run_sandbox_flags(
            v.platform,
            &["--strace", "--log", &log_arg],
            &bin,
            &Spec::default(),
        );
        sane(&o)?;
        let logged = fs::read_to_string(&log).unwrap_or_default();
        let _ = fs::remove_file(&log);
        all([
            expect_status(&o, 0),
            expect_stdout(&o, "hello, world\nhello via write\nwrite returned 16\n"),
            if logged
                .lines()
                .any(|l| l.contains("write(") && l.contains("= 16"))
            {
                Ok(())
            } else {
                Err(format!(
                    "the log file lacks the write(...) = 16 line; log:\n{logged}"
                ))
            },
            if o.stderr_str()
                .lines()
                .any(|l| l.contains("write(") && l.contains("= 16"))
            {
                Err("strace output went to stderr despite --log".into())
            } else {
                Ok(())
            },
            if o.stderr_str().contains("hello on stderr") {
                Ok(())
            } else {
                Err("the program's own stderr is missing".into())
            },
        ])
        .map_err(|e| format!("{e}\n{}", o.describe()))
    });
}

#[test]
fn debug_flag() {
    matrix("debug_flag", &[Link::Static], |v| {
        let bin = compile("hello", v.link);
        let o = run_sandbox_flags(v.platform, &["--debug"], &bin, &Spec::default());
        sane(&o)?;
        let err = o.stderr_str();
        all([
            expect_status(&o, 0),
            expect_stdout(&o, "hello, world\nhello via write\nwrite returned 16\n"),
            if err
                .lines()
                .any(|l| !l.trim().is_empty() && l != "hello on stderr")
            {
                Ok(())
            } else {
                Err("--debug printed nothing of the Sentry's internals".into())
            },
        ])
        .map_err(|e| format!("{e}\n{}", o.describe()))
    });
}

/// Without --platform, rvisor uses ptrace.
#[test]
fn default_platform_is_systrap() {
    let bin = compile("hello", Link::Static);
    let mut cmd = Command::new(rvisor());
    cmd.arg("--debug").arg("do").arg("--").arg(&bin);
    let o = run(cmd, Input::Bytes(vec![]));
    let r = all([
        expect_status(&o, 0),
        expect_stdout(&o, "hello, world\nhello via write\nwrite returned 16\n"),
        if o.stderr_str().contains("platform systrap") { Ok(()) } else { Err("the default platform is not systrap".into()) },
    ]);
    assert!(r.is_ok(), "{}\n{}", r.unwrap_err(), o.describe());
    let with_flag = run_sandbox("systrap", &bin, &Spec::default());
    assert_eq!(
        with_flag.stdout, o.stdout,
        "--platform=systrap and the default differ"
    );
}

/// `rvisor do` gives the program the caller's RLIMIT_NOFILE and RLIMIT_FSIZE, as
/// runsc's boot takes the host's, not Linux's default 1024/1048576. A soft file
/// size limit is the program's alone (the Sentry's memory file grows far past
/// it); a hard one the Sentry cannot lift stops it with a message, not SIGXFSZ.
#[test]
fn do_inherits_the_callers_file_limits() {
    let limited = |limits: &[&str], script: &str| {
        let mut cmd = Command::new("prlimit");
        cmd.args(limits).arg("--").arg(rvisor()).args(["do", "--", "/bin/sh", "-c", script]);
        run(cmd, Input::Bytes(vec![]))
    };
    let o = limited(&["--nofile=1234:5678", "--fsize=unlimited"], "ulimit -n; ulimit -Hn; ulimit -f");
    let r = all([expect_status(&o, 0), expect_stdout(&o, "1234\n5678\nunlimited\n")]);
    assert!(r.is_ok(), "{}\n{}", r.unwrap_err(), o.describe());
    // 200 blocks of 512 bytes; a write past them is the program's SIGXFSZ (153 in sh).
    let o = limited(&["--fsize=102400:unlimited"], "ulimit -f; head -c 200000 /dev/zero > /tmp/f; echo $?; wc -c < /tmp/f");
    let r = all([expect_status(&o, 0), expect_stdout(&o, "200\n153\n102400\n")]);
    assert!(r.is_ok(), "{}\n{}", r.unwrap_err(), o.describe());
    let o = limited(&["--fsize=102400"], "echo ran");
    let told = match o.stderr_str().contains("the file size limit (ulimit -Hf) is 100 KiB") {
        true => Ok(()),
        false => Err("no word of the file size limit".to_string()),
    };
    let r = all([expect_status(&o, 125), expect_stdout(&o, ""), told]);
    assert!(r.is_ok(), "{}\n{}", r.unwrap_err(), o.describe());
}

#[test]
fn bad_invocations_fail_cleanly() {
    let hello = compile("hello", Link::Static);
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "unknown platform",
            vec![
                "do".into(),
                "--platform=no-such-platform".into(),
                "--".into(),
                hello.display().to_string(),
            ],
        ),
        ("no program", vec!["do".into(), "--".into()]),
        ("unknown subcommand", vec!["no-such-subcommand".into()]),
    ];
    let mut errs = Vec::new();
    for (what, args) in cases {
        let mut cmd = Command::new(rvisor());
        cmd.args(&args);
        let o = run(cmd, Input::Bytes(vec![]));
        let r = all([
            sane(&o),
            if o.status != 0 && o.signal.is_none() {
                Ok(())
            } else {
                Err(format!("{what}: want a non-zero exit, got {}", o.status))
            },
            if o.stdout_str().contains("hello, world") {
                Err(format!("{what}: the program ran"))
            } else {
                Ok(())
            },
            if o.stderr.is_empty() {
                Err(format!("{what}: no message on stderr"))
            } else {
                Ok(())
            },
        ]);
        if let Err(e) = r {
            errs.push(format!("{e}\n{}", o.describe()));
        }
    }
    assert!(errs.is_empty(), "{}", errs.join("\n\n"));
}

/// tests/known-failures.txt parses, and every entry names a test that exists here.
#[test]
fn known_failures_file_is_valid() {
    let path = known_failures_path();
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let list = parse_known_failures(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut sources = String::new();
    for entry in fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"))
        .unwrap()
        .flatten()
    {
        if entry.path().extension().is_some_and(|e| e == "rs") {
            sources.push_str(&fs::read_to_string(entry.path()).unwrap());
        }
    }
    for k in list {
        assert!(
            sources.contains(&format!("fn {}()", k.test)),
            "{}:{}: no test named {:?} in crates/runtime/tests/*.rs",
            path.display(),
            k.line,
            k.test
        );
    }
    // The parser itself.
    let ok = parse_known_failures(
        "# comment\n\nmmap ptrace mremap not done\nauxv[static-pie] * reason here\n",
    )
    .unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[1].link, Some(Link::StaticPie));
    assert!(
        parse_known_failures("mmap ptrace\n").is_err(),
        "a reason is required"
    );
    assert!(parse_known_failures("mmap nosuchplatform why\n").is_err());
    assert!(parse_known_failures("mmap[pie] ptrace why\n").is_err());
}

/// A signal sent to rvisor reaches the sandbox's init, whose handler runs.
#[test]
fn signals_to_rvisor_reach_the_program() {
    matrix("signals_to_rvisor_reach_the_program", &[Link::Static], |v| {
        let bin = compile("term_handler", v.link);
        let mut p = Interactive::spawn(sandbox_command(v.platform, &[], &bin, &Spec::default()));
        p.expect_line("ready")?;
        // SAFETY: signalling the child we spawned.
        unsafe { libc::kill(p.pid(), libc::SIGTERM) };
        p.expect_line("got signal 15")?;
        let o = p.finish();
        expect_status(&o, 7)
    });
}

/// The gofer among the children of the sandbox process `sandbox`.
fn gofer_of(sandbox: libc::pid_t) -> Result<libc::pid_t, String> {
    let tasks = fs::read_dir(format!("/proc/{sandbox}/task")).map_err(|e| format!("tasks of {sandbox}: {e}"))?;
    let children = tasks.flatten().filter_map(|t| fs::read_to_string(t.path().join("children")).ok());
    let children: Vec<libc::pid_t> = children.flat_map(|c| c.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<_>>()).collect();
    children
        .into_iter()
        .find(|c| fs::read(format!("/proc/{c}/cmdline")).is_ok_and(|cmd| cmd.split(|&b| b == 0).nth(1) == Some(b"gofer")))
        .ok_or_else(|| format!("no gofer among the children of {sandbox}"))
}

/// A sandbox whose gofer is killed cannot reach its files any more: it ends, every
/// process killed, with a message, as runsc's does; it does not run on with every
/// lookup failing.
#[test]
fn the_sandbox_ends_with_its_gofer() {
    matrix("the_sandbox_ends_with_its_gofer", &[Link::Static], |v| {
        let spec = Spec::args(["-c", "echo ready; read x; echo the sandbox ran on"]);
        let mut p = Interactive::spawn(sandbox_command(v.platform, &[], Path::new("/bin/sh"), &spec));
        p.expect_line("ready")?;
        let gofer = gofer_of(p.pid())?;
        // SAFETY: signalling the gofer our sandbox started.
        unsafe { libc::kill(gofer, libc::SIGKILL) };
        let o = p.wait_exit();
        expect_status(&o, 128 + libc::SIGKILL)?;
        match o.stderr_str().contains("the gofer exited") {
            true => Ok(()),
            false => Err(format!("no word of the gofer\n{}", o.describe())),
        }
    });
}

/// An app busy with its files when the gofer dies never sees a call fail: the
/// call that finds the connection broken kills the sandbox before it returns.
#[test]
fn a_dead_gofer_fails_no_call() {
    matrix("a_dead_gofer_fails_no_call", &[Link::Static], |v| {
        let dir = scratch_path("gofer-busy");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let volume = format!("{}:/v", dir.display());
        // Four loops at once, so that some call is under way as the gofer dies.
        // Each makes new files, each a call to the gofer.
        let spec = Spec::args(["-c", "for i in 1 2 3 4; do (n=0; : > /v/f$i.0 && echo up; while : > /v/f$i.$n; do n=$((n+1)); done; echo lost) & done; wait"]);
        let mut p = Interactive::spawn(sandbox_command(v.platform, &["-v", &volume], Path::new("/bin/sh"), &spec));
        for _ in 0..4 {
            p.expect_line("up")?;
        }
        let gofer = gofer_of(p.pid())?;
        // SAFETY: signalling the gofer our sandbox started.
        unsafe { libc::kill(gofer, libc::SIGKILL) };
        let o = p.wait_exit();
        let _ = std::fs::remove_dir_all(&dir);
        expect_status(&o, 128 + libc::SIGKILL)?;
        match o.stdout_str().lines().any(|l| l == "lost") || o.stderr_str().contains("Input/output error") {
            false => Ok(()),
            true => Err(format!("the app saw a call fail\n{}", o.describe())),
        }
    });
}

/// A ctrl-C or a hang-up reaches the whole foreground process group, the gofer
/// with the sandbox: the sandbox forwards it to init, and the gofer, which lives as
/// long as the sandbox's connections, stays to serve the files.
#[test]
fn job_signals_spare_the_gofer() {
    matrix("job_signals_spare_the_gofer", &[Link::Static], |v| {
        let spec = Spec::args(["-c", "trap 'echo got INT' INT; trap 'echo got HUP' HUP; echo ready; until read x; do :; done; ls -d /bin"]);
        let mut p = Interactive::spawn(sandbox_command(v.platform, &[], Path::new("/bin/sh"), &spec));
        p.expect_line("ready")?;
        for (sig, line) in [(libc::SIGINT, "got INT"), (libc::SIGHUP, "got HUP")] {
            // SAFETY: signalling the process group Interactive made for the sandbox.
            unsafe { libc::kill(-p.pid(), sig) };
            p.expect_line(line)?;
        }
        p.send_line()?;
        p.expect_line("/bin")?;
        p.succeeds()
    });
}

/// rvisor run by an ordinary user (no capabilities, no cgroup to join): the
/// program runs, as that user, on systrap and on ptrace (whose stubs then stay
/// dumpable, since only CAP_SYS_PTRACE may seize undumpable ones); kvm needs
/// /dev/kvm opened to the user, and says so where it is not.
#[test]
fn an_ordinary_user_runs_sandboxes() {
    use std::os::unix::process::CommandExt;
    const NOBODY: u32 = 65534;
    matrix("an_ordinary_user_runs_sandboxes", &[Link::Static], |v| {
        // Where the user can reach both binaries, whatever the checkout's modes
        // (not /tmp: `do` mounts a tmpfs there).
        let dir = Path::new("/var/tmp").join(unique_name("rvisor-user"));
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let copy = |from: &Path, name: &str| -> Result<PathBuf, String> {
            let to = dir.join(name);
            fs::copy(from, &to).map_err(|e| format!("{}: {e}", from.display()))?;
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
            Ok(to)
        };
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        let (rvisor, hello) = (copy(&rvisor(), "rvisor")?, copy(&compile("hello", v.link), "hello")?);
        let mut cmd = Command::new(&rvisor);
        cmd.arg("do").args(platform_args(v.platform)).args(["--"]).arg(&hello).current_dir(&dir).uid(NOBODY).gid(NOBODY);
        let o = run(cmd, Input::Bytes(Vec::new()));
        let _ = fs::remove_dir_all(&dir);
        let kvm_for_all = fs::metadata("/dev/kvm").is_ok_and(|m| m.permissions().mode() & 0o006 == 0o006);
        if v.platform == "kvm" && !kvm_for_all {
            return match o.status != 0 && o.stderr_str().contains("/dev/kvm") {
                true => Ok(()),
                false => Err(format!("kvm without access to /dev/kvm: want a failure naming it:\n{}", o.describe())),
            };
        }
        all([expect_status(&o, 0), expect_stdout(&o, "hello, world\nhello via write\nwrite returned 16\n")])
    });
}

/// `rvisor features`, as containerd reads `runc features`: the runtime spec's
/// document, naming what a bundle may use here and not what it may not.
#[test]
fn features_document() {
    let mut cmd = Command::new(rvisor());
    cmd.arg("features");
    let o = run(cmd, Input::Bytes(vec![]));
    let ok = all([sane(&o), expect_status(&o, 0)]);
    assert!(ok.is_ok(), "{}\n{}", ok.unwrap_err(), o.describe());
    let doc: serde_json::Value = serde_json::from_str(&o.stdout_str()).unwrap_or_else(|e| panic!("{e}\n{}", o.describe()));
    let has = |list: &serde_json::Value, x: &str| list.as_array().is_some_and(|a| a.iter().any(|v| v == x));
    assert!(has(&doc["hooks"], "createRuntime") && !has(&doc["hooks"], "startContainer"), "{doc}");
    assert!(has(&doc["mountOptions"], "rslave") && !has(&doc["mountOptions"], "idmap"), "{doc}");
    let seccomp = &doc["linux"]["seccomp"];
    assert_eq!(seccomp["enabled"], true);
    assert!(has(&seccomp["actions"], "SCMP_ACT_ERRNO") && !has(&seccomp["actions"], "SCMP_ACT_NOTIFY"), "{doc}");
    assert!(has(&doc["linux"]["capabilities"], "CAP_CHECKPOINT_RESTORE"), "{doc}");
    assert_eq!(doc["linux"]["cgroup"]["v2"], true);
}
