//! The console of `rvisor do -t`: two host threads bridge a sandbox terminal's
//! master to the caller's terminal. Each blocks (in a host read, or on the
//! terminal's condition variables), so an idle console costs no CPU.

use super::Terminal;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Tells when the bridge has written the last of the sandbox's output: the
/// caller's terminal must not leave raw mode before (its own newline
/// translation would then apply to what is left).
#[derive(Default)]
pub struct Drained {
    done: Mutex<bool>,
    cond: Condvar,
}

impl Drained {
    fn finish(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cond.notify_all();
    }

    /// Waits, at most `limit` (a process outside the sandbox's control may
    /// still hold the terminal open), for the output to be written.
    pub fn wait(&self, limit: Duration) {
        let done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.cond.wait_timeout_while(done, limit, |d| !*d);
    }
}

/// Starts the bridge: what the caller types (`input`) goes to the master, what
/// the master reads goes to `output`. The threads end with the sandbox; the
/// output's ends when no replica is left open and all is written (`drained`).
pub fn bridge(term: Arc<Terminal>, input: OwnedFd, output: OwnedFd, drained: Arc<Drained>) -> std::io::Result<()> {
    let to_master = term.clone();
    std::thread::Builder::new().name("console-in".into()).spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = nix::unistd::read(input.as_raw_fd(), &mut buf) {
            if n == 0 {
                break;
            }
            to_master.master_write_blocking(&buf[..n]);
        }
    })?;
    std::thread::Builder::new().name("console-out".into()).spawn(move || {
        'out: loop {
            let data = term.master_read_blocking(4096);
            if data.is_empty() {
                break;
            }
            let mut at = 0;
            while at < data.len() {
                match nix::unistd::write(&output, &data[at..]) {
                    Ok(n) => at += n,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break 'out,
                }
            }
        }
        drained.finish();
    })?;
    Ok(())
}
