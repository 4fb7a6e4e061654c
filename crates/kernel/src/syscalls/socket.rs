//! Socket calls on what the sandbox has of sockets: AF_UNIX sockets of every
//! type, named by a path or an abstract name (or autobound to one), and socket
//! pairs: stream and seqpacket connections, datagrams to a name or a connected
//! peer, with open files (SCM_RIGHTS) and credentials (SCM_CREDENTIALS,
//! SO_PASSCRED, SO_PEERCRED) passed over them. The network families are not
//! implemented (EAFNOSUPPORT).

use super::open::AT_FDCWD;
use super::pipe::install_pair;
use crate::mm::{UserBuffers, UserRef};
use crate::net::unix::{self, Ancillary, Received, UnixSocket, BUFFER, MSG_DONTWAIT, MSG_NOSIGNAL, MSG_PEEK, MSG_TRUNC, MSG_WAITALL};
use crate::task::Task;
use crate::vfs::{Fd, FileDescription};
use rvisor_abi::structs::{Cmsghdr, Msghdr, Ucred};
use rvisor_abi::{error, SysResult, UserAddr};
use std::sync::Arc;
use zerocopy::{FromBytes, IntoBytes};

const AF_UNSPEC: u16 = 0;
const AF_UNIX: i32 = 1;
const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;
const SOCK_NONBLOCK: i32 = 0o4000;
const SOCK_CLOEXEC: i32 = 0o2000000;
const SOCK_TYPE_MASK: i32 = 0xf;

const SOL_SOCKET: i32 = 1;
const SO_REUSEADDR: i32 = 2;
const SO_TYPE: i32 = 3;
const SO_ERROR: i32 = 4;
const SO_SNDBUF: i32 = 7;
const SO_RCVBUF: i32 = 8;
const SO_KEEPALIVE: i32 = 9;
const SO_REUSEPORT: i32 = 15;
const SO_PASSCRED: i32 = 16;
const SO_PEERCRED: i32 = 17;
const SO_ACCEPTCONN: i32 = 30;
const SO_PROTOCOL: i32 = 38;
const SO_DOMAIN: i32 = 39;

/// Flags send/recv take here; others are EOPNOTSUPP rather than ignored.
const SEND_FLAGS: u32 = MSG_DONTWAIT | MSG_NOSIGNAL;
const RECV_FLAGS: u32 = MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC | MSG_WAITALL;
/// MSG_CMSG_CLOEXEC: received files are close-on-exec.
const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;
const MSG_CTRUNC: u32 = 0x8;

/// What SO_PEERCRED reports when nothing recorded a peer: no pid, ids -1.
const NO_PEER_CREDS: Ucred = Ucred { pid: 0, uid: u32::MAX, gid: u32::MAX };

pub fn sys_socketpair(t: &mut Task, domain: i32, kind: i32, protocol: i32, sv: UserRef<[i32; 2]>) -> SysResult<()> {
    match domain {
        AF_UNIX => {}
        AF_INET | AF_INET6 => return error!(EOPNOTSUPP),
        _ => return error!(EAFNOSUPPORT),
    }
    if kind & !(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return error!(EINVAL);
    }
    if protocol != 0 && protocol != AF_UNIX {
        return error!(EPROTONOSUPPORT);
    }
    let nonblock = if kind & SOCK_NONBLOCK != 0 { crate::vfs::OpenFlags::NONBLOCK } else { 0 };
    let (a, b) = unix::socketpair(kind & SOCK_TYPE_MASK, nonblock, unix::task_creds(t, true))?;
    install_pair(t, a, b, kind & SOCK_CLOEXEC != 0, sv)
}

const SUN_PATH: usize = 108;
/// sizeof(sa_family_t): an address that is the family alone.
const FAMILY_LEN: u32 = 2;

pub fn sys_socket(t: &mut Task, domain: i32, kind: i32, protocol: i32) -> SysResult<Fd> {
    if domain != AF_UNIX {
        return error!(EAFNOSUPPORT);
    }
    if kind & !(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return error!(EINVAL);
    }
    if protocol != 0 && protocol != AF_UNIX {
        return error!(EPROTONOSUPPORT);
    }
    let nonblock = if kind & SOCK_NONBLOCK != 0 { crate::vfs::OpenFlags::NONBLOCK } else { 0 };
    let sock = UnixSocket::new(kind & SOCK_TYPE_MASK, nonblock)?;
    t.fds.install_lowest(sock, 0, t.tg.rlimit(crate::task::RLIMIT_NOFILE).cur, kind & SOCK_CLOEXEC != 0)
}

/// The family of a sockaddr of `len` bytes (EINVAL if too short for one).
fn read_family(t: &Task, addr: UserAddr, len: u32) -> SysResult<u16> {
    if len < FAMILY_LEN {
        return error!(EINVAL);
    }
    t.mm.read_obj(UserRef::new(addr))
}

/// The name in a `struct sockaddr_un` of `len` bytes: the sun_path bytes as
/// getsockname reports them (a path with its NUL, or an abstract name whole).
fn read_sockaddr(t: &Task, addr: UserAddr, len: u32) -> SysResult<Vec<u8>> {
    let len = len as usize;
    if !(2..=2 + SUN_PATH).contains(&len) {
        return error!(EINVAL);
    }
    let mut raw = vec![0u8; len];
    t.mm.read_bytes(addr, &mut raw)?;
    if u16::from_ne_bytes([raw[0], raw[1]]) != AF_UNIX as u16 {
        return error!(EINVAL);
    }
    let path = &raw[2..];
    match path.first() {
        None => error!(EINVAL),
        Some(0) => Ok(path.to_vec()),
        Some(_) => {
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            let mut name = path[..end].to_vec();
            name.push(0);
            Ok(name)
        }
    }
}

/// The path of a file-system name (without its NUL).
fn path_of(name: &[u8]) -> &[u8] {
    name.strip_suffix(&[0]).unwrap_or(name)
}

/// The socket of type `kind` bound to the name at `addr`: ECONNREFUSED when
/// none is, EPROTOTYPE when a path names a socket of another type (abstract
/// names are per type).
fn find_bound(t: &Task, addr: UserAddr, len: u32, kind: i32) -> SysResult<Arc<UnixSocket>> {
    let name = read_sockaddr(t, addr, len)?;
    let found = if name.first() == Some(&0) {
        t.kernel.abstract_sockets.lookup(kind, &name)
    } else {
        super::open::lookup_at(t, AT_FDCWD, path_of(&name), crate::vfs::Follow::Yes, false)?.inode.bound_socket()
    };
    let found = found.ok_or_else(|| rvisor_abi::errno!(ECONNREFUSED))?;
    if found.kind() != kind {
        return error!(EPROTOTYPE);
    }
    Ok(found)
}

pub fn sys_bind(t: &mut Task, fd: Fd, addr: UserAddr, len: u32) -> SysResult<()> {
    let file = socket(t, fd)?;
    let sock = unix_of(&file)?;
    if len == FAMILY_LEN && read_family(t, addr, len)? == AF_UNIX as u16 {
        return sock.autobind(&t.kernel.abstract_sockets);
    }
    let name = read_sockaddr(t, addr, len)?;
    let umask = t.fs.umask();
    sock.bind(name.clone(), &t.kernel.abstract_sockets, |me| {
        let (dir, leaf) = super::open::parent_at(t, AT_FDCWD, path_of(&name))?;
        if dir.child(&leaf).is_ok() {
            return error!(EADDRINUSE);
        }
        if super::open::read_only(&dir) {
            return error!(EROFS);
        }
        dir.inode.mksock(&leaf, 0o777 & !umask, me)?;
        dir.forget(&leaf);
        Ok(())
    })
}

pub fn sys_listen(t: &mut Task, fd: Fd, backlog: i32) -> SysResult<()> {
    let file = socket(t, fd)?;
    unix_of(&file)?.listen(t, backlog)
}

pub fn sys_connect(t: &mut Task, fd: Fd, addr: UserAddr, len: u32) -> SysResult<()> {
    let file = socket(t, fd)?;
    let sock = unix_of(&file)?;
    if sock.kind() == unix::SOCK_DGRAM && read_family(t, addr, len)? == AF_UNSPEC {
        sock.disconnect();
        return Ok(());
    }
    sock.connect(t, &|| find_bound(t, addr, len, sock.kind()))
}

/// Writes an AF_UNIX address (unnamed when `name` is None) to a buffer of
/// `room` bytes, truncated as Linux does; returns its full length.
fn put_sockaddr(t: &Task, addr: UserAddr, room: u32, name: Option<&[u8]>) -> SysResult<u32> {
    let mut out = (AF_UNIX as u16).to_ne_bytes().to_vec();
    out.extend_from_slice(name.unwrap_or_default());
    t.mm.write_bytes(addr, &out[..(room as usize).min(out.len())])?;
    Ok(out.len() as u32)
}

/// Writes an AF_UNIX address to a sockaddr buffer of `*len` bytes, and its
/// full length to `len`.
fn write_sockaddr(t: &Task, addr: UserAddr, len: UserRef<u32>, name: Option<&[u8]>) -> SysResult<()> {
    let room = t.mm.read_obj(len)?;
    if (room as i32) < 0 {
        return error!(EINVAL);
    }
    let full = put_sockaddr(t, addr, room, name)?;
    t.mm.write_obj(len, &full)
}

pub fn sys_accept4(t: &mut Task, fd: Fd, addr: UserAddr, len: UserRef<u32>, flags: i32) -> SysResult<Fd> {
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return error!(EINVAL);
    }
    let file = socket(t, fd)?;
    let conn = unix_of(&file)?.accept(t, false)?;
    if flags & SOCK_NONBLOCK != 0 {
        conn.set_status_flags(conn.status_flags() | crate::vfs::OpenFlags::NONBLOCK);
    }
    if !addr.is_null() {
        write_sockaddr(t, addr, len, conn.peer_name()?.as_deref())?;
    }
    t.fds.install_lowest(conn, 0, t.tg.rlimit(crate::task::RLIMIT_NOFILE).cur, flags & SOCK_CLOEXEC != 0)
}

pub fn sys_accept(t: &mut Task, fd: Fd, addr: UserAddr, len: UserRef<u32>) -> SysResult<Fd> {
    sys_accept4(t, fd, addr, len, 0)
}

/// The socket behind `fd` (ENOTSOCK for other files).
fn socket(t: &Task, fd: Fd) -> SysResult<Arc<dyn FileDescription>> {
    let file = t.fds.get(fd)?;
    if file.as_any().and_then(|a| a.downcast_ref::<UnixSocket>()).is_none() {
        return error!(ENOTSOCK);
    }
    Ok(file)
}

fn unix_of(file: &Arc<dyn FileDescription>) -> SysResult<&UnixSocket> {
    file.as_any().and_then(|a| a.downcast_ref::<UnixSocket>()).ok_or_else(|| rvisor_abi::errno!(ENOTSOCK))
}

/// Sends `bufs` with `anc`, to the address of `to_len` bytes at `to` when
/// `to_len` is not 0 (the name is read only when the socket type uses it).
fn send_buffers(t: &Task, fd: Fd, bufs: &UserBuffers, flags: u32, anc: Ancillary, to: UserAddr, to_len: u32) -> SysResult<usize> {
    if flags & !SEND_FLAGS != 0 {
        return error!(EOPNOTSUPP);
    }
    let file = socket(t, fd)?;
    let sock = unix_of(&file)?;
    let data = crate::fs::simple::copy_in(t, bufs, (bufs.total() as usize).min(1 << 24))?;
    let find = || find_bound(t, to, to_len, sock.kind());
    sock.send(t, &data, flags, anc, if to_len != 0 { Some(&find) } else { None })
}

/// Receives into `bufs`; returns how many bytes were copied, and what came.
fn receive_buffers(t: &Task, fd: Fd, bufs: &UserBuffers, flags: u32) -> SysResult<(usize, Received)> {
    if flags & !(RECV_FLAGS | MSG_CMSG_CLOEXEC) != 0 {
        return error!(EOPNOTSUPP);
    }
    let file = socket(t, fd)?;
    let got = unix_of(&file)?.receive(t, (bufs.total() as usize).min(BUFFER), flags)?;
    Ok((crate::fs::simple::copy_out(t, bufs, &got.data)?, got))
}

const CMSG_HDR: usize = std::mem::size_of::<Cmsghdr>();
const SCM_RIGHTS: i32 = 1;
const SCM_CREDENTIALS: i32 = 2;
/// Most files one message may carry (Linux's SCM_MAX_FD).
const SCM_MAX_FD: usize = 253;
/// The capabilities that let SCM_CREDENTIALS claim other ids.
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;
const CAP_SYS_ADMIN: u32 = 21;

fn cmsg_align(n: usize) -> usize {
    (n + 7) & !7
}

/// What a sendmsg control buffer passes, as Linux's __scm_send reads it:
/// messages of other levels are skipped, other SOL_SOCKET types are EINVAL.
fn ancillary(t: &Task, control: UserAddr, len: usize) -> SysResult<Ancillary> {
    if len > 64 << 10 {
        return error!(ENOBUFS);
    }
    let mut buf = vec![0u8; len];
    t.mm.read_bytes(control, &mut buf)?;
    let mut anc = Ancillary::default();
    let mut at = 0;
    // The last message's padding may run past the end.
    while let Ok((h, _)) = Cmsghdr::read_from_prefix(buf.get(at..).unwrap_or_default()) {
        let clen = usize::try_from(h.len).unwrap_or(usize::MAX);
        if clen < CMSG_HDR || clen > len - at {
            return error!(EINVAL);
        }
        let data = &buf[at + CMSG_HDR..at + clen];
        match (h.level, h.kind) {
            (SOL_SOCKET, SCM_RIGHTS) => {
                for chunk in data.chunks_exact(4) {
                    anc.files.push(t.fds.get(Fd(i32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])))?);
                }
                if anc.files.len() > SCM_MAX_FD {
                    return error!(EINVAL);
                }
            }
            (SOL_SOCKET, SCM_CREDENTIALS) => {
                let c = Ucred::read_from_bytes(data).map_err(|_| rvisor_abi::errno!(EINVAL))?;
                anc.creds = Some(checked_creds(t, c)?);
            }
            (SOL_SOCKET, _) => return error!(EINVAL),
            _ => {}
        }
        at += cmsg_align(clen);
    }
    Ok(anc)
}

/// SCM_CREDENTIALS a sender may pass: its own pid (or any, with
/// CAP_SYS_ADMIN) and one of its uids and gids (or any, with CAP_SETUID and
/// CAP_SETGID), of a process that exists (Linux's scm_check_creds).
fn checked_creds(t: &Task, c: Ucred) -> SysResult<Ucred> {
    if c.uid == u32::MAX || c.gid == u32::MAX {
        return error!(EINVAL);
    }
    let ids = t.tg.creds();
    let pid_ok = c.pid == t.tg.tgid || t.tg.capable(CAP_SYS_ADMIN);
    let uid_ok = [ids.uid, ids.euid, ids.suid].contains(&c.uid) || t.tg.capable(CAP_SETUID);
    let gid_ok = [ids.gid, ids.egid, ids.sgid].contains(&c.gid) || t.tg.capable(CAP_SETGID);
    if !(pid_ok && uid_ok && gid_ok) {
        return error!(EPERM);
    }
    if t.kernel.pid_ns.thread(c.pid).is_none() {
        return error!(ESRCH);
    }
    Ok(c)
}

/// A recvmsg control buffer being filled, as Linux's put_cmsg and
/// scm_detach_fds fill it: what does not fit is cut, and MSG_CTRUNC set.
struct ControlOut {
    at: UserAddr,
    room: usize,
    used: usize,
    truncated: bool,
}

impl ControlOut {
    /// Skips `n` bytes (a message and its padding, within the buffer).
    fn advance(&mut self, n: usize) {
        let n = n.min(self.room);
        self.at = UserAddr(self.at.0 + n as u64);
        self.room -= n;
        self.used += n;
    }

    /// One control message, cut to the room left.
    fn put(&mut self, t: &Task, level: i32, kind: i32, data: &[u8]) -> SysResult<()> {
        if self.at.is_null() || self.room < CMSG_HDR {
            self.truncated = true;
            return Ok(());
        }
        let full = CMSG_HDR + data.len();
        let len = full.min(self.room);
        self.truncated |= len < full;
        let mut out = Cmsghdr { len: len as u64, level, kind }.as_bytes().to_vec();
        out.extend_from_slice(&data[..len - CMSG_HDR]);
        t.mm.write_bytes(self.at, &out)?;
        self.advance(cmsg_align(full));
        Ok(())
    }

    /// Installs received files in the caller's table and writes their
    /// SCM_RIGHTS message; the files that do not fit are closed.
    fn put_files(&mut self, t: &Task, files: Vec<Arc<dyn FileDescription>>, cloexec: bool) -> SysResult<()> {
        if files.is_empty() {
            return Ok(());
        }
        let max = if self.at.is_null() { 0 } else { self.room.saturating_sub(CMSG_HDR) / 4 };
        let count = files.len();
        let limit = t.tg.rlimit(crate::task::RLIMIT_NOFILE).cur;
        let mut fds = Vec::new();
        for f in files.into_iter().take(max) {
            match t.fds.install_lowest(f, 0, limit, cloexec) {
                Ok(fd) => fds.push(fd.0),
                Err(_) => break,
            }
        }
        self.truncated |= fds.len() < count;
        if fds.is_empty() {
            return Ok(());
        }
        let data: Vec<u8> = fds.iter().flat_map(|fd| fd.to_ne_bytes()).collect();
        self.put(t, SOL_SOCKET, SCM_RIGHTS, &data)
    }
}

/// Writes what came with a message into the recvmsg control buffer:
/// credentials first, then files, as Linux does. Returns the bytes used and
/// whether anything was cut (MSG_CTRUNC).
fn deliver_control(t: &Task, control: UserAddr, len: usize, got: Received, cloexec: bool) -> SysResult<(usize, bool)> {
    let mut out = ControlOut { at: control, room: len, used: 0, truncated: false };
    if let Some(c) = got.creds {
        out.put(t, SOL_SOCKET, SCM_CREDENTIALS, c.as_bytes())?;
    }
    out.put_files(t, got.files, cloexec)?;
    Ok((out.used, out.truncated))
}

pub fn sys_sendto(t: &mut Task, fd: Fd, buf: UserAddr, len: usize, flags: u32, addr: UserAddr, addrlen: u32) -> SysResult<usize> {
    let to_len = if addr.is_null() { 0 } else { addrlen };
    send_buffers(t, fd, &UserBuffers::single(buf, len), flags, Ancillary::default(), addr, to_len)
}

pub fn sys_recvfrom(t: &mut Task, fd: Fd, buf: UserAddr, len: usize, flags: u32, addr: UserAddr, addrlen: UserRef<u32>) -> SysResult<usize> {
    let (n, got) = receive_buffers(t, fd, &UserBuffers::single(buf, len), flags)?;
    // An unnamed sender's address has length 0.
    if !addr.is_null() {
        match &got.from {
            Some(name) => write_sockaddr(t, addr, addrlen, Some(name))?,
            None => t.mm.write_obj(addrlen, &0)?,
        }
    }
    Ok(if flags & MSG_TRUNC != 0 { got.full } else { n })
}

pub fn sys_sendmsg(t: &mut Task, fd: Fd, msg: UserRef<Msghdr>, flags: u32) -> SysResult<usize> {
    let m = t.mm.read_obj(msg)?;
    socket(t, fd)?;
    let anc = if m.control != 0 && m.controllen != 0 { ancillary(t, UserAddr(m.control), m.controllen as usize)? } else { Ancillary::default() };
    let bufs = t.mm.read_iovecs(UserAddr(m.iov), m.iovlen as usize)?;
    let to_len = if m.name == 0 { 0 } else { m.namelen };
    send_buffers(t, fd, &bufs, flags, anc, UserAddr(m.name), to_len)
}

pub fn sys_recvmsg(t: &mut Task, fd: Fd, msg: UserRef<Msghdr>, flags: u32) -> SysResult<usize> {
    let mut m = t.mm.read_obj(msg)?;
    if (m.namelen as i32) < 0 {
        return error!(EINVAL);
    }
    let bufs = t.mm.read_iovecs(UserAddr(m.iov), m.iovlen as usize)?;
    let (n, got) = receive_buffers(t, fd, &bufs, flags)?;
    if m.name != 0 {
        m.namelen = match &got.from {
            Some(name) => put_sockaddr(t, UserAddr(m.name), m.namelen, Some(name))?,
            None => 0,
        };
    }
    let trunc = got.full > n;
    let full = got.full;
    let (control, ctrunc) = deliver_control(t, UserAddr(m.control), m.controllen as usize, got, flags & MSG_CMSG_CLOEXEC != 0)?;
    m.controllen = control as u64;
    m.flags = if trunc { MSG_TRUNC as i32 } else { 0 } | if ctrunc { MSG_CTRUNC as i32 } else { 0 };
    t.mm.write_obj(msg, &m)?;
    Ok(if flags & MSG_TRUNC != 0 { full } else { n })
}

pub fn sys_shutdown(t: &mut Task, fd: Fd, how: i32) -> SysResult<()> {
    let file = socket(t, fd)?;
    unix_of(&file)?.shutdown(how)
}

pub fn sys_getsockopt(t: &mut Task, fd: Fd, level: i32, name: i32, value: UserAddr, len: UserRef<u32>) -> SysResult<()> {
    let file = socket(t, fd)?;
    let sock = unix_of(&file)?;
    if level != SOL_SOCKET {
        return error!(ENOPROTOOPT);
    }
    let v: i32 = match name {
        SO_PEERCRED => return write_option(t, value, len, sock.peer_creds().unwrap_or(NO_PEER_CREDS).as_bytes()),
        SO_TYPE => sock.kind(),
        SO_ERROR => if sock.take_reset() { i32::from(rvisor_abi::ErrnoCode::ECONNRESET.0) } else { 0 },
        SO_PASSCRED => i32::from(sock.passcred()),
        SO_PROTOCOL | SO_REUSEADDR | SO_REUSEPORT | SO_KEEPALIVE => 0,
        SO_ACCEPTCONN => i32::from(sock.listening()),
        SO_SNDBUF | SO_RCVBUF => BUFFER as i32,
        SO_DOMAIN => AF_UNIX,
        _ => return error!(ENOPROTOOPT),
    };
    write_option(t, value, len, &v.to_ne_bytes())
}

/// Writes an option's value to a buffer of `*len` bytes, cut to fit, and the
/// length written to `len`.
fn write_option(t: &Task, value: UserAddr, len: UserRef<u32>, bytes: &[u8]) -> SysResult<()> {
    let want = t.mm.read_obj(len)?;
    if (want as i32) < 0 {
        return error!(EINVAL);
    }
    let n = (want as usize).min(bytes.len());
    t.mm.write_bytes(value, &bytes[..n])?;
    t.mm.write_obj(len, &(n as u32))
}

/// setsockopt: SO_PASSCRED; options without effect on AF_UNIX (address reuse,
/// keepalive) and the buffer sizes (fixed here) are accepted; options that
/// would change behaviour rvisor does not have (timeouts...) are ENOPROTOOPT.
pub fn sys_setsockopt(t: &mut Task, fd: Fd, level: i32, name: i32, value: UserAddr, len: u32) -> SysResult<()> {
    let file = socket(t, fd)?;
    let sock = unix_of(&file)?;
    if level != SOL_SOCKET || !matches!(name, SO_SNDBUF | SO_RCVBUF | SO_PASSCRED | SO_REUSEADDR | SO_REUSEPORT | SO_KEEPALIVE) {
        return error!(ENOPROTOOPT);
    }
    if len < 4 {
        return error!(EINVAL);
    }
    let v: i32 = t.mm.read_obj(UserRef::new(value))?;
    if name == SO_PASSCRED {
        sock.set_passcred(v != 0);
    }
    Ok(())
}

pub fn sys_getsockname(t: &mut Task, fd: Fd, addr: UserAddr, len: UserRef<u32>) -> SysResult<()> {
    let file = socket(t, fd)?;
    let name = unix_of(&file)?.name();
    write_sockaddr(t, addr, len, name.as_deref())
}

pub fn sys_getpeername(t: &mut Task, fd: Fd, addr: UserAddr, len: UserRef<u32>) -> SysResult<()> {
    let file = socket(t, fd)?;
    let name = unix_of(&file)?.peer_name()?;
    write_sockaddr(t, addr, len, name.as_deref())
}
