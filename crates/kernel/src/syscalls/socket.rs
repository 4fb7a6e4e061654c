//! Socket calls on what the sandbox has of sockets: AF_UNIX, stream and
//! seqpacket sockets named by a path or an abstract name, and socket pairs of any
//! type, with open files passed over them (SCM_RIGHTS). The network families
//! are not implemented (EAFNOSUPPORT).

use super::pipe::install_pair;
use crate::mm::{UserBuffers, UserRef};
use crate::net::unix::{self, Received, UnixSocket, BUFFER, MSG_DONTWAIT, MSG_NOSIGNAL, MSG_PEEK, MSG_TRUNC, MSG_WAITALL};
use crate::task::Task;
use crate::vfs::{Fd, FileDescription};
use rvisor_abi::structs::Msghdr;
use super::open::AT_FDCWD;
use rvisor_abi::{error, SysResult, UserAddr};
use std::sync::Arc;

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
const SO_ACCEPTCONN: i32 = 30;
const SO_PROTOCOL: i32 = 38;
const SO_DOMAIN: i32 = 39;

/// Flags send/recv take here; others are EOPNOTSUPP rather than ignored.
const SEND_FLAGS: u32 = MSG_DONTWAIT | MSG_NOSIGNAL;
const RECV_FLAGS: u32 = MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC | MSG_WAITALL;
/// MSG_CMSG_CLOEXEC: received files are close-on-exec.
const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;
const MSG_CTRUNC: u32 = 0x8;

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
    let (a, b) = unix::socketpair(kind & SOCK_TYPE_MASK, nonblock)?;
    install_pair(t, a, b, kind & SOCK_CLOEXEC != 0, sv)
}

const SUN_PATH: usize = 108;

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

pub fn sys_bind(t: &mut Task, fd: Fd, addr: UserAddr, len: u32) -> SysResult<()> {
    let file = socket(t, fd)?;
    let sock = unix_of(&file)?;
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
    unix_of(&file)?.listen(backlog)
}

pub fn sys_connect(t: &mut Task, fd: Fd, addr: UserAddr, len: u32) -> SysResult<()> {
    let file = socket(t, fd)?;
    let sock = unix_of(&file)?;
    let name = read_sockaddr(t, addr, len)?;
    let server = if name.first() == Some(&0) {
        t.kernel.abstract_sockets.lookup(&name)
    } else {
        super::open::lookup_at(t, AT_FDCWD, path_of(&name), crate::vfs::Follow::Yes, false)?.inode.bound_socket()
    };
    sock.connect(t, &server.ok_or_else(|| rvisor_abi::errno!(ECONNREFUSED))?)
}

/// Writes an AF_UNIX address (unnamed when `name` is None) to a sockaddr
/// buffer of `*len` bytes, truncating as Linux does, and its full length to `len`.
fn write_sockaddr(t: &Task, addr: UserAddr, len: UserRef<u32>, name: Option<&[u8]>) -> SysResult<()> {
    let want = t.mm.read_obj(len)?;
    if (want as i32) < 0 {
        return error!(EINVAL);
    }
    let mut out = (AF_UNIX as u16).to_ne_bytes().to_vec();
    out.extend_from_slice(name.unwrap_or_default());
    t.mm.write_bytes(addr, &out[..(want as usize).min(out.len())])?;
    t.mm.write_obj(len, &(out.len() as u32))
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

fn send_buffers(t: &Task, fd: Fd, bufs: &UserBuffers, flags: u32, files: Vec<Arc<dyn FileDescription>>) -> SysResult<usize> {
    if flags & !SEND_FLAGS != 0 {
        return error!(EOPNOTSUPP);
    }
    let file = socket(t, fd)?;
    let data = crate::fs::simple::copy_in(t, bufs, (bufs.total() as usize).min(1 << 24))?;
    unix_of(&file)?.send(t, &data, flags, files)
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

/// A `struct cmsghdr`: length (header included), level, type; data follows.
const CMSG_HDR: usize = 16;
const SCM_RIGHTS: i32 = 1;
/// Most files one message may carry (Linux's SCM_MAX_FD).
const SCM_MAX_FD: usize = 253;

fn cmsg_align(n: usize) -> usize {
    (n + 7) & !7
}

/// The files a sendmsg control buffer passes (SCM_RIGHTS); other control
/// messages are EOPNOTSUPP rather than dropped.
fn passed_files(t: &Task, control: UserAddr, len: usize) -> SysResult<Vec<Arc<dyn FileDescription>>> {
    if len > 64 << 10 {
        return error!(ENOBUFS);
    }
    let mut buf = vec![0u8; len];
    t.mm.read_bytes(control, &mut buf)?;
    let mut files = Vec::new();
    let mut at = 0;
    while at + CMSG_HDR <= len {
        let word = |o: usize, n: usize| buf[at + o..at + o + n].iter().rev().fold(0u64, |v, &b| (v << 8) | u64::from(b));
        let (clen, level, kind) = (word(0, 8) as usize, word(8, 4) as i32, word(12, 4) as i32);
        if clen < CMSG_HDR || clen > len - at {
            return error!(EINVAL);
        }
        if level != SOL_SOCKET || kind != SCM_RIGHTS {
            return error!(EOPNOTSUPP);
        }
        for chunk in buf[at + CMSG_HDR..at + clen].chunks_exact(4) {
            let fd = i32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            files.push(t.fds.get(Fd(fd))?);
        }
        if files.len() > SCM_MAX_FD {
            return error!(EINVAL);
        }
        at += cmsg_align(clen);
    }
    Ok(files)
}

/// Installs received files in the caller's table and writes their SCM_RIGHTS
/// message into the recvmsg control buffer. Returns the control bytes used and
/// whether it was too small (MSG_CTRUNC: the files that did not fit are closed).
fn deliver_files(t: &Task, control: UserAddr, len: usize, files: Vec<Arc<dyn FileDescription>>, cloexec: bool) -> SysResult<(usize, bool)> {
    if files.is_empty() {
        return Ok((0, false));
    }
    if control.is_null() || len < CMSG_HDR + 4 {
        return Ok((0, true));
    }
    let room = (len - CMSG_HDR) / 4;
    let truncated = files.len() > room;
    let limit = t.tg.rlimit(crate::task::RLIMIT_NOFILE).cur;
    let mut fds = Vec::new();
    for f in files.into_iter().take(room) {
        match t.fds.install_lowest(f, 0, limit, cloexec) {
            Ok(fd) => fds.push(fd.0),
            Err(_) => break,
        }
    }
    let clen = CMSG_HDR + 4 * fds.len();
    let mut out = Vec::with_capacity(clen);
    out.extend_from_slice(&(clen as u64).to_ne_bytes());
    out.extend_from_slice(&SOL_SOCKET.to_ne_bytes());
    out.extend_from_slice(&SCM_RIGHTS.to_ne_bytes());
    for fd in &fds {
        out.extend_from_slice(&fd.to_ne_bytes());
    }
    t.mm.write_bytes(control, &out)?;
    Ok((cmsg_align(clen).min(len), truncated))
}

pub fn sys_sendto(t: &mut Task, fd: Fd, buf: UserAddr, len: usize, flags: u32, addr: UserAddr, _addrlen: u32) -> SysResult<usize> {
    if !addr.is_null() {
        // A connected pair has its peer already.
        socket(t, fd)?;
        return error!(EISCONN);
    }
    send_buffers(t, fd, &UserBuffers::single(buf, len), flags, Vec::new())
}

pub fn sys_recvfrom(t: &mut Task, fd: Fd, buf: UserAddr, len: usize, flags: u32, _addr: UserAddr, addrlen: UserRef<u32>) -> SysResult<usize> {
    let (n, got) = receive_buffers(t, fd, &UserBuffers::single(buf, len), flags)?;
    // The peer of a pair has no name: an address of length 0.
    if !addrlen.is_null() {
        t.mm.write_obj(addrlen, &0)?;
    }
    Ok(if flags & MSG_TRUNC != 0 { got.full } else { n })
}

pub fn sys_sendmsg(t: &mut Task, fd: Fd, msg: UserRef<Msghdr>, flags: u32) -> SysResult<usize> {
    let m = t.mm.read_obj(msg)?;
    socket(t, fd)?;
    if m.name != 0 {
        return error!(EISCONN);
    }
    let files = if m.control != 0 && m.controllen != 0 { passed_files(t, UserAddr(m.control), m.controllen as usize)? } else { Vec::new() };
    let bufs = t.mm.read_iovecs(UserAddr(m.iov), m.iovlen as usize)?;
    send_buffers(t, fd, &bufs, flags, files)
}

pub fn sys_recvmsg(t: &mut Task, fd: Fd, msg: UserRef<Msghdr>, flags: u32) -> SysResult<usize> {
    let mut m = t.mm.read_obj(msg)?;
    let bufs = t.mm.read_iovecs(UserAddr(m.iov), m.iovlen as usize)?;
    let (n, got) = receive_buffers(t, fd, &bufs, flags)?;
    let (control, ctrunc) = deliver_files(t, UserAddr(m.control), m.controllen as usize, got.files, flags & MSG_CMSG_CLOEXEC != 0)?;
    m.namelen = 0;
    m.controllen = control as u64;
    m.flags = if got.full > n { MSG_TRUNC as i32 } else { 0 } | if ctrunc { MSG_CTRUNC as i32 } else { 0 };
    t.mm.write_obj(msg, &m)?;
    Ok(if flags & MSG_TRUNC != 0 { got.full } else { n })
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
        SO_TYPE => sock.kind(),
        SO_ERROR | SO_PASSCRED | SO_PROTOCOL | SO_REUSEADDR | SO_REUSEPORT | SO_KEEPALIVE => 0,
        SO_ACCEPTCONN => i32::from(sock.listening()),
        SO_SNDBUF | SO_RCVBUF => BUFFER as i32,
        SO_DOMAIN => AF_UNIX,
        _ => return error!(ENOPROTOOPT),
    };
    let want = t.mm.read_obj(len)?;
    if (want as i32) < 0 {
        return error!(EINVAL);
    }
    let n = (want as usize).min(4);
    t.mm.write_bytes(value, &v.to_ne_bytes()[..n])?;
    t.mm.write_obj(len, &(n as u32))
}

/// setsockopt: options without effect on AF_UNIX (address reuse, keepalive) and
/// the buffer sizes (fixed here) are accepted; options that would change
/// behaviour rvisor does not have (timeouts...) are ENOPROTOOPT.
pub fn sys_setsockopt(t: &mut Task, fd: Fd, level: i32, name: i32, value: UserAddr, len: u32) -> SysResult<()> {
    socket(t, fd)?;
    if level != SOL_SOCKET || !matches!(name, SO_SNDBUF | SO_RCVBUF | SO_PASSCRED | SO_REUSEADDR | SO_REUSEPORT | SO_KEEPALIVE) {
        return error!(ENOPROTOOPT);
    }
    if len < 4 {
        return error!(EINVAL);
    }
    let _: i32 = t.mm.read_obj(UserRef::new(value))?;
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
