//! `rvisor do -t`: an interactive bash on a sandbox terminal, driven from a host
//! pty the way a person at a terminal would: line editing, ctrl-C, ctrl-Z with
//! `jobs` and `fg`, ctrl-D, and the exit status. Every wait is for output, with
//! a deadline.

mod common;

use common::*;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// A program running on the slave side of a host pty.
struct Terminal {
    master: std::fs::File,
    output: Receiver<Vec<u8>>,
    seen: Vec<u8>,
    child: Child,
}

impl Terminal {
    fn spawn(mut cmd: Command) -> Terminal {
        let size = nix::pty::Winsize { ws_row: 31, ws_col: 97, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup"));
        let child = cmd.stdin(slave(&pty.slave)).stdout(slave(&pty.slave)).stderr(slave(&pty.slave)).process_group(0).spawn().expect("spawn rvisor");
        drop(pty.slave);
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone().expect("dup master");
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut reader, &mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal { master, output, seen: Vec::new(), child }
    }

    /// Waits until `want` appears in the output, and consumes through it.
    fn expect(&mut self, want: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(at) = self.seen.windows(want.len()).position(|w| w == want.as_bytes()) {
                self.seen.drain(..at + want.len());
                return Ok(());
            }
            match self.output.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(d) => self.seen.extend(d),
                Err(_) => return Err(format!("no {want:?} in the output; it ends with {:?}", String::from_utf8_lossy(&self.seen))),
            }
        }
    }

    fn send(&mut self, keys: &str) {
        std::io::Write::write_all(&mut self.master, keys.as_bytes()).expect("write to the pty");
    }

    fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            // Keep draining, so the program is never blocked writing.
            let _ = self.output.recv_timeout(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn bash_session(platform: &str) -> Result<(), String> {
    let mut cmd = Command::new(rvisor());
    cmd.args(platform_args(platform)).args(["do", "-t", "--", "/usr/bin/env", "PS1=rv$ ", "/bin/bash", "--norc", "--noprofile", "-i"]);
    let mut t = Terminal::spawn(cmd);
    t.expect("rv$ ")?;
    // Line editing happens in the sandbox's terminal: the erased "x" never reaches bash.
    t.send("echo $((6*x\x7f7))\r");
    t.expect("42\r\n")?;
    t.send("tty; stty size\r");
    t.expect("/dev/pts/0\r\n")?;
    // The caller's window size.
    t.expect("31 97\r\n")?;
    // /dev/console is the same terminal.
    t.send("echo con$((1+1))sole > /dev/console\r");
    t.expect("con2sole\r\n")?;
    // The marker comes from the foreground job itself, so the keys reach it.
    t.send("sh -c 'echo started; exec cat'\r");
    t.expect("started\r\n")?;
    t.send("\x03");
    t.expect("rv$ ")?;
    t.send("echo status=$?\r");
    t.expect("status=130")?;
    t.send("sh -c 'echo go; while read l; do echo \"got $l\"; done'\r");
    t.expect("go\r\n")?;
    t.send("\x1a");
    t.expect("Stopped")?;
    t.expect("rv$ ")?;
    t.send("jobs\r");
    t.expect("Stopped")?;
    t.expect("rv$ ")?;
    t.send("fg\r");
    t.expect("done'\r\n")?;
    t.send("hello\r");
    t.expect("got hello\r\n")?;
    t.send("\x04");
    t.expect("rv$ ")?;
    t.send("echo status=$?\r");
    t.expect("status=0")?;
    t.send("exit 3\r");
    match t.wait() {
        Some(3) => Ok(()),
        other => Err(format!("rvisor exited with {other:?}, not 3")),
    }
}

#[test]
fn interactive_bash_with_job_control() {
    let failures: Vec<String> = platforms().iter().filter_map(|p| bash_session(p).err().map(|e| format!("{p}: {e}"))).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn tty_needs_a_terminal() {
    let out = Command::new(rvisor()).args(["do", "-t", "--", "/bin/true"]).stdin(Stdio::null()).output().expect("run rvisor");
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a terminal"), "{}", String::from_utf8_lossy(&out.stderr));
}
