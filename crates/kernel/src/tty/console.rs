//! The console of `rvisor do -t`: two host threads bridge a sandbox terminal's
//! master to the caller's terminal. Each blocks (in a host read, or on the
//! terminal's condition variables), so an idle console costs no CPU.

use super::Terminal;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

/// Starts the bridge: what the caller types (`input`) goes to the master, what
/// the master reads goes to `output`. The threads end with the sandbox.
pub fn bridge(term: Arc<Terminal>, input: OwnedFd, output: OwnedFd) -> std::io::Result<()> {
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
    std::thread::Builder::new().name("console-out".into()).spawn(move || loop {
        let data = term.master_read_blocking(4096);
        if data.is_empty() {
            break;
        }
        let mut at = 0;
        while at < data.len() {
            match nix::unistd::write(&output, &data[at..]) {
                Ok(n) => at += n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
        }
    })?;
    Ok(())
}
