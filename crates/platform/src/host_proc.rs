//! The host's /proc, read through one directory descriptor opened at setup.
//!
//! The Sentry reads host /proc at run time (threads' schedstat, /proc/stat for the
//! balancer, a stub's parent). Under its seccomp filter it may not open paths from
//! its working directory or root, only relative to this descriptor and only with
//! `OPEN_FLAGS`; [`dir`] opens it on first use, which the runtime makes sure happens
//! before the filter goes on.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

/// The only flags an open under the Sentry's filter may have: read-only, nothing created.
pub const OPEN_FLAGS: i32 = libc::O_RDONLY | libc::O_CLOEXEC;

/// The descriptor of the host's /proc (`None` if it could not be opened: every read
/// then fails, as reads of a missing /proc did).
pub fn dir() -> Option<BorrowedFd<'static>> {
    static DIR: OnceLock<Option<OwnedFd>> = OnceLock::new();
    DIR.get_or_init(|| {
        // SAFETY: a constant NUL-terminated path; the result is a new descriptor we own.
        let fd = unsafe { libc::open(c"/proc".as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        // SAFETY: `fd` was just opened and nothing else owns it.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
    })
    .as_ref()
    .map(AsFd::as_fd)
}

/// Reads `/proc/<rel>` whole (`rel` is relative: "stat", "1234/task/1235/schedstat").
pub fn read(rel: &str) -> io::Result<Vec<u8>> {
    let dir = dir().ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
    let path = std::ffi::CString::new(rel).map_err(io::Error::other)?;
    // SAFETY: `path` is NUL-terminated and outlives the call; the result is a new
    // descriptor we own.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), path.as_ptr(), OPEN_FLAGS) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut out = Vec::new();
    file.read_to_end(&mut out)?;
    Ok(out)
}

/// [`read`] as text.
pub fn read_string(rel: &str) -> io::Result<String> {
    String::from_utf8(read(rel)?).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_relative_to_the_proc_descriptor() {
        let me = std::process::id();
        let stat = super::read_string(&format!("{me}/stat")).unwrap();
        assert!(stat.starts_with(&format!("{me} (")), "{stat}");
        assert!(super::read_string("stat").unwrap().starts_with("cpu "));
        assert!(super::read("no-such-entry").is_err());
    }
}
