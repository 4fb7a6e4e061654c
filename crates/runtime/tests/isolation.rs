//! The application's system calls never reach the host kernel. tests/programs/escape.c makes
//! raw `syscall` instructions whose host effects this test can observe: a directory created,
//! a FIFO gaining a reader, a host process killed. The program is only ever run in the
//! sandbox (natively it would do all of that).

mod common;

use common::*;
use std::fs;
use std::process::{Command, Stdio};

#[test]
fn raw_syscalls_do_not_reach_the_host() {
    matrix("raw_syscalls_do_not_reach_the_host", LINKS, |v| {
        let bin = compile("escape", v.link);
        let dir = std::env::temp_dir().join(unique_name("rvisor-escape"));
        let fifo = scratch_path("escape-fifo");
        assert!(!dir.exists());
        // SAFETY: mkfifo with a valid NUL-terminated path.
        let r = unsafe { libc::mkfifo(cstring(&fifo).as_ptr(), 0o600) };
        assert_eq!(
            r,
            0,
            "mkfifo {}: {}",
            fifo.display(),
            std::io::Error::last_os_error()
        );
        // A host process for the sandbox to (fail to) kill: it blocks reading our pipe.
        let mut victim = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn victim process");

        let spec = Spec::args([
            dir.as_os_str(),
            fifo.as_os_str(),
            victim.id().to_string().as_ref(),
        ]);
        let mut p = Interactive::spawn(sandbox_command(v.platform, &[], &bin, &spec));
        let mut errs = Vec::new();
        // Read the program's answers up to "waiting": it then blocks on stdin, with the FIFO
        // still open if the open ever reached the host, so the host checks below are not racy.
        let mut got = Vec::new();
        let mut alive = true;
        loop {
            match p.next_line() {
                Ok(line) if line == "waiting" => break,
                Ok(line) => got.push(line),
                Err(e) => {
                    errs.push(e);
                    alive = false;
                    break;
                }
            }
        }
        let mut rest = got.iter();
        for want in [
            "getpid = 1",
            "mkdir = ",
            "openat /etc/hostname = ",
            "openat fifo = ",
            "kill victim SIGKILL = ",
            "kill(1, 0) = ",
        ] {
            if !rest.any(|l| l.starts_with(want)) {
                errs.push(format!("no answer {want:?} (in order) from the program"));
            }
        }

        // The host, while the program is blocked: no directory, no FIFO reader, victim alive.
        if dir.exists() {
            errs.push(format!(
                "ESCAPE: mkdir reached the host: {} exists",
                dir.display()
            ));
        }
        let fifo_c = cstring(&fifo);
        // SAFETY: open with a valid NUL-terminated path; the fd is closed right away.
        let wfd = unsafe { libc::open(fifo_c.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK) };
        if wfd >= 0 {
            // SAFETY: closing the descriptor just opened.
            unsafe { libc::close(wfd) };
            if alive {
                errs.push("ESCAPE: openat reached the host: the FIFO has a reader".into());
            }
        } else if std::io::Error::last_os_error().raw_os_error() != Some(libc::ENXIO) {
            errs.push(format!(
                "probing the FIFO: {}",
                std::io::Error::last_os_error()
            ));
        }
        match victim.try_wait() {
            Ok(None) => {
                if let Some(why) = signalled(victim.id()) {
                    errs.push(format!("ESCAPE: kill reached the host: the victim {why}"));
                }
            }
            Ok(Some(st)) => errs.push(format!(
                "ESCAPE: kill reached the host: the victim process ended ({st})"
            )),
            Err(e) => errs.push(format!("try_wait on the victim: {e}")),
        }

        let o = p.finish();
        if alive {
            if let Err(e) = all([
                sane(&o),
                expect_status(&o, 0),
                expect_stdout_has_line(&o, "still running"),
            ]) {
                errs.push(e);
            }
        }

        // Clean up whatever happened.
        let _ = victim.kill();
        let _ = victim.wait();
        let _ = fs::remove_file(&fifo);
        if dir.exists() {
            let _ = fs::remove_dir(&dir);
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{}\nanswers seen: {got:?}\n{}",
                errs.join("\n"),
                o.describe()
            ))
        }
    });
}

/// Whether a signal was sent to the live child `pid`. A SIGKILL sent by kill(2) is recorded in
/// the shared pending set before kill returns, and stays there until the process is reaped,
/// so this has no race with the victim's dying (unlike waitpid(WNOHANG)).
fn signalled(pid: u32) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    let pending = field("ShdPnd:") | field("SigPnd:");
    let state = status
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .unwrap_or("")
        .trim()
        .to_owned();
    if pending != 0 || state.starts_with('Z') || state.starts_with('X') {
        Some(format!("has signals pending {pending:#x}, state {state}"))
    } else {
        None
    }
}

/// On the host, the sandbox is rvisor's processes only (the Sentry, the gofer, the
/// stubs): none shows the program's name or arguments in /proc, and there are no
/// more stub processes than address spaces (here two: a process and its child).
#[test]
fn host_processes_do_not_show_the_program() {
    matrix("host_processes_do_not_show_the_program", &[Link::Static], |v| {
        let bin = compile("hidden", v.link);
        let secret = unique_name("secret-argument");
        let name = bin.file_name().unwrap().to_string_lossy().into_owned();
        let mut p = Interactive::spawn(sandbox_command(v.platform, &[], &bin, &Spec::args([secret.as_str()])));
        p.expect_line("ready")?;
        let tree = process_tree(p.pid());
        let comms: Vec<String> = tree.iter().map(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()).collect();
        let mut leaks = Vec::new();
        for pid in &tree {
            for file in ["cmdline", "comm", "environ"] {
                let data = std::fs::read(format!("/proc/{pid}/{file}")).unwrap_or_default();
                let text = String::from_utf8_lossy(&data);
                if text.contains(&secret) || text.contains(&name) {
                    leaks.push(format!("/proc/{pid}/{file}: {text:?}"));
                }
            }
        }
        p.send_line()?;
        p.expect_line("done 0")?;
        let o = p.finish();
        // The Sentry and the gofer are rvisor itself; the rest are stubs: one per
        // address space (at most 2 here), plus the zygote they are forked from and
        // systrap's 2 started ahead of need. kvm has none (its VMs are file
        // descriptors of the Sentry).
        let stubs = comms.iter().filter(|c| c.as_str() != "rvisor").count();
        let allowed = match host_platform(v.platform) {
            "kvm" => 0..=0,
            "systrap" => 1..=5,
            _ => 1..=3,
        };
        all([
            expect_status(&o, 0),
            if leaks.is_empty() { Ok(()) } else { Err(format!("host processes show the program: {leaks:?}")) },
            if allowed.contains(&stubs) {
                Ok(())
            } else {
                Err(format!("{stubs} stub processes, want {allowed:?} for 2 address spaces on {} (tree {tree:?}, names {comms:?})", v.platform))
            },
        ])
    });
}

/// The Seccomp and Seccomp_filters lines of a host /proc status file.
fn seccomp_of(status: &str) -> (String, String) {
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).unwrap_or("?").trim().to_string();
    (field("Seccomp:"), field("Seccomp_filters:"))
}

/// While the app runs, the Sentry is under its own seccomp filter (filter.rs): every
/// thread of the sandbox process is in filter mode with the two filters, installed
/// before init ran; the zygote, forked before, has none, so stubs (which must not
/// inherit the Sentry's kill action) have only their own.
#[test]
fn the_sentry_runs_under_its_seccomp_filter() {
    matrix("the_sentry_runs_under_its_seccomp_filter", &[Link::Static], |v| {
        let bin = compile("hidden", v.link);
        let mut p = Interactive::spawn(sandbox_command(v.platform, &[], &bin, &Spec::default()));
        p.expect_line("ready")?;
        let sentry = p.pid();
        let mut wrong = Vec::new();
        let threads: Vec<_> = fs::read_dir(format!("/proc/{sentry}/task")).map_err(|e| e.to_string())?.flatten().collect();
        for t in &threads {
            let status = fs::read_to_string(t.path().join("status")).unwrap_or_default();
            let comm = fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if seccomp_of(&status) != ("2".into(), "2".into()) {
                wrong.push(format!("Sentry thread {} ({}): {:?}", t.file_name().to_string_lossy(), comm.trim(), seccomp_of(&status)));
            }
        }
        let mut children = Vec::new();
        for pid in process_tree(sentry).into_iter().filter(|&c| c != sentry) {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string();
            children.push((comm, seccomp_of(&status).1));
        }
        p.send_line()?;
        p.expect_line("done 0")?;
        let o = p.finish();
        // The zygote is the one stub-named child that has no filter at all; kvm has
        // no stubs, so its only child is the gofer, under its own filter.
        let zygote = children.iter().any(|(comm, n)| comm != "rvisor" && n == "0");
        let children_ok = if v.platform == "kvm" { children.iter().all(|(comm, n)| comm == "rvisor" && n != "0") } else { zygote };
        all([
            expect_status(&o, 0),
            if threads.len() > 1 && wrong.is_empty() { Ok(()) } else { Err(format!("{} threads, unfiltered: {wrong:?}", threads.len())) },
            if children_ok { Ok(()) } else { Err(format!("children {children:?}: want an unfiltered zygote (stub platforms) or only filtered gofers (kvm)")) },
        ])
    });
}

/// The Sentry enters its Landlock domain at boot (signals, abstract sockets, TCP)
/// and, before init, loses the host's files but /proc (landlock.rs); on this host
/// (Landlock ABI 7) both are fully enforced, and the program still runs on every
/// platform: the Sentry still signals (and on ptrace traces) its stubs, which
/// were forked inside the domain.
#[test]
fn the_sentry_is_in_a_landlock_domain() {
    matrix("the_sentry_is_in_a_landlock_domain", &[Link::Static], |v| {
        let bin = compile("hello", v.link);
        let o = run_sandbox_flags(v.platform, &["--debug"], &bin, &Spec::default());
        let err = o.stderr_str();
        let enforced = |layer: &str| {
            if err.lines().any(|l| l.contains(layer) && l.contains("FullyEnforced")) {
                Ok(())
            } else {
                Err(format!("no fully enforced {layer:?} in the log"))
            }
        };
        all([
            expect_status(&o, 0),
            expect_stdout(&o, "hello, world\nhello via write\nwrite returned 16\n"),
            enforced("landlock domain"),
            enforced("landlock files"),
        ])
        .map_err(|e| format!("{e}\n{}", o.describe()))
    });
}

/// A capability field (CapEff, CapBnd, ...) of a host /proc status file.
fn capability_set(status: &str, field: &str) -> Option<u64> {
    let v = status.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    u64::from_str_radix(v.trim(), 16).ok()
}

/// The Sentry runs without capabilities and in mount, IPC and UTS namespaces of its
/// own, with no network namespace of the host's without host network, on an empty
/// read-only root (confine.rs):
/// every thread's sets, bounding and ambient included, hold nothing but
/// CAP_NET_BIND_SERVICE where the app's ports are host ports and CAP_SYS_PTRACE
/// on ptrace; so do the stubs; the gofer holds only the file capabilities. The
/// program still runs on every platform (ptrace still traces its stubs).
#[test]
fn the_sentry_holds_no_capabilities_and_its_own_namespaces() {
    const NET_BIND_SERVICE: u64 = 1 << 10;
    const SYS_PTRACE: u64 = 1 << 19;
    const GOFER: u64 = 0x1f; // CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID
    matrix("the_sentry_holds_no_capabilities_and_its_own_namespaces", &[Link::Static], |v| {
        let bin = compile("hidden", v.link);
        let mut problems = Vec::new();
        for network in ["none", "host"] {
            let want = if network == "host" { NET_BIND_SERVICE } else { 0 } | if v.platform == "ptrace" { SYS_PTRACE } else { 0 };
            let flag = format!("--network={network}");
            let mut p = Interactive::spawn(sandbox_command(v.platform, &[flag.as_str()], &bin, &Spec::default()));
            p.expect_line("ready")?;
            let sentry = p.pid();
            let mut check = |who: String, status: &str, bounding: u64, at_most: u64| {
                for field in ["CapInh", "CapPrm", "CapEff", "CapAmb", "CapBnd"] {
                    let got = capability_set(status, field);
                    let ok = match field {
                        "CapBnd" => got == Some(bounding),
                        _ => got.is_some_and(|g| g & !at_most == 0),
                    };
                    if !ok {
                        problems.push(format!("{network}: {who}: {field} {got:x?}"));
                    }
                }
            };
            let threads: Vec<_> = fs::read_dir(format!("/proc/{sentry}/task")).map_err(|e| e.to_string())?.flatten().collect();
            for t in &threads {
                let status = fs::read_to_string(t.path().join("status")).unwrap_or_default();
                let comm = fs::read_to_string(t.path().join("comm")).unwrap_or_default();
                check(format!("Sentry thread {}", comm.trim()), &status, want, want);
            }
            for pid in process_tree(sentry).into_iter().filter(|&c| c != sentry) {
                let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string();
                match comm.as_str() {
                    "rvisor" => check("the gofer".into(), &status, GOFER, GOFER),
                    _ => check(format!("stub {comm}"), &status, want, want),
                }
            }
            for ns in ["mnt", "ipc", "uts", "net"] {
                let theirs = fs::read_link(format!("/proc/{sentry}/ns/{ns}")).map_err(|e| e.to_string())?;
                let ours = fs::read_link(format!("/proc/self/ns/{ns}")).map_err(|e| e.to_string())?;
                let own = ns != "net" || network == "none";
                if (theirs != ours) != own {
                    problems.push(format!("{network}: the Sentry's {ns} namespace is {theirs:?}, the caller's {ours:?}: want {}", if own { "its own" } else { "the caller's" }));
                }
            }
            // Its root, and its stubs', is an empty read-only tmpfs; the gofer's is the host's.
            for pid in process_tree(sentry) {
                let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string();
                let entries: Vec<_> = fs::read_dir(format!("/proc/{pid}/root")).map_err(|e| e.to_string())?.flatten().map(|e| e.file_name()).collect();
                let root = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default().lines().find(|l| l.split(' ').nth(4) == Some("/")).map(str::to_string).unwrap_or_default();
                let empty = entries.is_empty() && root.contains(" ro,") && root.contains(" - tmpfs ");
                if empty == (pid != sentry && comm == "rvisor") {
                    problems.push(format!("{network}: {comm} {pid}: root {entries:?}, mounted as {root:?}"));
                }
            }
            p.send_line()?;
            p.expect_line("done 0")?;
            let o = p.finish();
            expect_status(&o, 0)?;
            if threads.len() < 2 {
                problems.push(format!("{network}: only {} Sentry threads", threads.len()));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    });
}
