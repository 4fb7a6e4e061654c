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
        assert_eq!(r, 0, "mkfifo {}: {}", fifo.display(), std::io::Error::last_os_error());
        // A host process for the sandbox to (fail to) kill: it blocks reading our pipe.
        let mut victim = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn victim process");

        let spec = Spec::args([dir.as_os_str(), fifo.as_os_str(), victim.id().to_string().as_ref()]);
        let mut p = Interactive::spawn(sandbox_command(v.platform, &[], &bin, &spec));
        let mut errs = Vec::new();
        // Read the program's report up to "waiting" (it then blocks on stdin with the FIFO
        // still open, if it ever got opened on the host).
        let wanted = ["getpid = 1", "mkdir = ", "openat /etc/hostname = ", "openat fifo = ", "kill victim SIGKILL = ", "kill(1, 0) = "];
        let mut got = Vec::new();
        let mut alive = true;
        for w in wanted {
            match p.next_line() {
                Ok(line) if line.starts_with(w) => got.push(line),
                Ok(line) => {
                    errs.push(format!("expected a line starting with {w:?}, got {line:?}"));
                    alive = false;
                    break;
                }
                Err(e) => {
                    errs.push(e);
                    alive = false;
                    break;
                }
            }
        }
        if alive {
            if let Err(e) = p.expect_line("waiting") {
                errs.push(e);
                alive = false;
            }
        }

        // The host, while the program is blocked: no directory, no FIFO reader, victim alive.
        if dir.exists() {
            errs.push(format!("ESCAPE: mkdir reached the host: {} exists", dir.display()));
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
            errs.push(format!("probing the FIFO: {}", std::io::Error::last_os_error()));
        }
        match victim.try_wait() {
            Ok(None) => {}
            Ok(Some(st)) => errs.push(format!("ESCAPE: kill reached the host: the victim process ended ({st})")),
            Err(e) => errs.push(format!("try_wait on the victim: {e}")),
        }

        let o = p.finish();
        if alive {
            if let Err(e) = all([sane(&o), expect_status(&o, 0), expect_stdout_has_line(&o, "still running")]) {
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
            Err(format!("{}\nanswers seen: {got:?}\n{}", errs.join("\n"), o.describe()))
        }
    });
}
