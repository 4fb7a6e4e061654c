//! The request `rvisor do` hands to the sandbox process it becomes.
//!
//! `rvisor do` re-executes itself as `rvisor boot --request-fd N` with an empty
//! environment, so that no host process shows the program's name, arguments or
//! environment in /proc; the request travels in a memfd.

use std::io::{self, Read, Seek, Write};
use std::os::fd::{OwnedFd, RawFd};

/// Everything the sandbox needs to boot.
#[derive(Debug, Default, PartialEq)]
pub struct Request {
    pub platform: String,
    pub strace: bool,
    pub debug: bool,
    /// `-t`: the program gets a sandbox terminal bridged to the caller's.
    pub tty: bool,
    pub log: Option<Vec<u8>>,
    /// The program path as resolved, and its absolute form.
    pub path: Vec<u8>,
    pub exe: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// The caller's working directory, where the program starts.
    pub cwd: Vec<u8>,
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_le_bytes());
    out.extend_from_slice(field);
}

fn put_list(out: &mut Vec<u8>, list: &[Vec<u8>]) {
    out.extend_from_slice(&(list.len() as u32).to_le_bytes());
    for f in list {
        put(out, f);
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u32(&mut self) -> io::Result<u32> {
        let (h, t) = self.0.split_at_checked(4).ok_or_else(|| io::Error::other("truncated request"))?;
        self.0 = t;
        Ok(u32::from_le_bytes(h.try_into().map_err(io::Error::other)?))
    }

    fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = self.u32()? as usize;
        let (h, t) = self.0.split_at_checked(n).ok_or_else(|| io::Error::other("truncated request"))?;
        self.0 = t;
        Ok(h.to_vec())
    }

    fn list(&mut self) -> io::Result<Vec<Vec<u8>>> {
        (0..self.u32()?).map(|_| self.bytes()).collect()
    }
}

impl Request {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put(&mut out, self.platform.as_bytes());
        put(&mut out, &[self.strace as u8, self.debug as u8, self.tty as u8]);
        put_list(&mut out, &self.log.iter().cloned().collect::<Vec<_>>());
        put(&mut out, &self.path);
        put(&mut out, &self.exe);
        put_list(&mut out, &self.argv);
        put_list(&mut out, &self.envp);
        put(&mut out, &self.cwd);
        out
    }

    fn decode(buf: &[u8]) -> io::Result<Request> {
        let mut r = Reader(buf);
        let platform = String::from_utf8(r.bytes()?).map_err(io::Error::other)?;
        let flags = r.bytes()?;
        let log = r.list()?.into_iter().next();
        Ok(Request {
            platform,
            strace: flags.first() == Some(&1),
            debug: flags.get(1) == Some(&1),
            tty: flags.get(2) == Some(&1),
            log,
            path: r.bytes()?,
            exe: r.bytes()?,
            argv: r.list()?,
            envp: r.list()?,
            cwd: r.bytes()?,
        })
    }

    /// Writes the request into a fresh memfd that survives exec.
    pub fn to_memfd(&self) -> io::Result<OwnedFd> {
        let fd = nix::sys::memfd::memfd_create(c"rvisor-request", nix::sys::memfd::MemFdCreateFlag::empty()).map_err(io::Error::from)?;
        let mut f = std::fs::File::from(fd);
        f.write_all(&self.encode())?;
        f.rewind()?;
        Ok(OwnedFd::from(f))
    }

    /// Reads (and closes) the request handed over on `fd`.
    pub fn from_fd(fd: RawFd) -> io::Result<Request> {
        if fd < 3 {
            return Err(io::Error::other("bad request descriptor"));
        }
        let mut buf = Vec::new();
        std::fs::File::open(format!("/proc/self/fd/{fd}"))?.read_to_end(&mut buf)?;
        nix::unistd::close(fd).map_err(io::Error::from)?;
        Request::decode(&buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let r = Request {
            platform: "ptrace".into(),
            strace: true,
            debug: false,
            tty: true,
            log: Some(b"/tmp/x".to_vec()),
            path: b"/bin/true".to_vec(),
            exe: b"/usr/bin/true".to_vec(),
            argv: vec![b"true".to_vec(), b"".to_vec()],
            envp: vec![b"A=1".to_vec()],
            cwd: b"/tmp".to_vec(),
        };
        assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        assert!(Request::decode(&r.encode()[..10]).is_err());
    }
}
