//! Socket calls on what the sandbox has of sockets: AF_UNIX socket pairs.
//! socket(2), bind, connect and the network families are not implemented.

use super::pipe::install;
use crate::mm::{UserBuffers, UserRef};
use crate::net::unix::{self, UnixSocket, BUFFER, MSG_DONTWAIT, MSG_NOSIGNAL, MSG_PEEK, MSG_TRUNC, MSG_WAITALL};
use crate::task::Task;
use crate::vfs::{Fd, FileDescription};
use rvisor_abi::structs::Msghdr;
use rvisor_abi::{error, SysResult, UserAddr};
use std::sync::Arc;

const AF_UNIX: i32 = 1;
const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;
const SOCK_NONBLOCK: i32 = 0o4000;
const SOCK_CLOEXEC: i32 = 0o2000000;
const SOCK_TYPE_MASK: i32 = 0xf;

const SOL_SOCKET: i32 = 1;
const SO_TYPE: i32 = 3;
const SO_ERROR: i32 = 4;
const SO_SNDBUF: i32 = 7;
const SO_RCVBUF: i32 = 8;
const SO_PASSCRED: i32 = 16;
const SO_ACCEPTCONN: i32 = 30;
const SO_PROTOCOL: i32 = 38;
const SO_DOMAIN: i32 = 39;

/// Flags send/recv take here; others are EOPNOTSUPP rather than ignored.
const SEND_FLAGS: u32 = MSG_DONTWAIT | MSG_NOSIGNAL;
const RECV_FLAGS: u32 = MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC | MSG_WAITALL;
/// MSG_CMSG_CLOEXEC: harmless without control messages.
const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;

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
    let cloexec = kind & SOCK_CLOEXEC != 0;
    let fa = install(t, a, cloexec)?;
    let fb = match install(t, b, cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = t.fds.close(fa);
            return Err(e);
        }
    };
    if let Err(e) = t.mm.write_obj(sv, &[fa.0, fb.0]) {
        let _ = t.fds.close(fa);
        let _ = t.fds.close(fb);
        return Err(e);
    }
    Ok(())
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

fn send_buffers(t: &Task, fd: Fd, bufs: &UserBuffers, flags: u32) -> SysResult<usize> {
    if flags & !SEND_FLAGS != 0 {
        return error!(EOPNOTSUPP);
    }
    let file = socket(t, fd)?;
    let data = crate::fs::simple::copy_in(t, bufs, (bufs.total() as usize).min(1 << 24))?;
    unix_of(&file)?.send(t, &data, flags)
}

/// Receives into `bufs`; returns (bytes copied, the message's full length).
fn receive_buffers(t: &Task, fd: Fd, bufs: &UserBuffers, flags: u32) -> SysResult<(usize, usize)> {
    if flags & !(RECV_FLAGS | MSG_CMSG_CLOEXEC) != 0 {
        return error!(EOPNOTSUPP);
    }
    let file = socket(t, fd)?;
    let (data, full) = unix_of(&file)?.receive(t, (bufs.total() as usize).min(BUFFER), flags)?;
    Ok((crate::fs::simple::copy_out(t, bufs, &data)?, full))
}

pub fn sys_sendto(t: &mut Task, fd: Fd, buf: UserAddr, len: usize, flags: u32, addr: UserAddr, _addrlen: u32) -> SysResult<usize> {
    if !addr.is_null() {
        // A connected pair has its peer already.
        socket(t, fd)?;
        return error!(EISCONN);
    }
    send_buffers(t, fd, &UserBuffers::single(buf, len), flags)
}

pub fn sys_recvfrom(t: &mut Task, fd: Fd, buf: UserAddr, len: usize, flags: u32, _addr: UserAddr, addrlen: UserRef<u32>) -> SysResult<usize> {
    let (n, full) = receive_buffers(t, fd, &UserBuffers::single(buf, len), flags)?;
    // The peer of a pair has no name: an address of length 0.
    if !addrlen.is_null() {
        t.mm.write_obj(addrlen, &0)?;
    }
    Ok(if flags & MSG_TRUNC != 0 { full } else { n })
}

pub fn sys_sendmsg(t: &mut Task, fd: Fd, msg: UserRef<Msghdr>, flags: u32) -> SysResult<usize> {
    let m = t.mm.read_obj(msg)?;
    if m.controllen != 0 && m.control != 0 {
        // SCM_RIGHTS and SCM_CREDENTIALS are not carried yet: refuse rather than drop them.
        socket(t, fd)?;
        return error!(EOPNOTSUPP);
    }
    if m.name != 0 {
        socket(t, fd)?;
        return error!(EISCONN);
    }
    let bufs = t.mm.read_iovecs(UserAddr(m.iov), m.iovlen as usize)?;
    send_buffers(t, fd, &bufs, flags)
}

pub fn sys_recvmsg(t: &mut Task, fd: Fd, msg: UserRef<Msghdr>, flags: u32) -> SysResult<usize> {
    let mut m = t.mm.read_obj(msg)?;
    let bufs = t.mm.read_iovecs(UserAddr(m.iov), m.iovlen as usize)?;
    let (n, full) = receive_buffers(t, fd, &bufs, flags)?;
    m.namelen = 0;
    m.controllen = 0;
    m.flags = if full > n { MSG_TRUNC as i32 } else { 0 };
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
        SO_TYPE => sock.kind(),
        SO_ERROR | SO_PASSCRED | SO_ACCEPTCONN | SO_PROTOCOL => 0,
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

/// setsockopt: the buffer sizes and credential passing are accepted (the pair's
/// buffers are fixed); other options are ENOPROTOOPT.
pub fn sys_setsockopt(t: &mut Task, fd: Fd, level: i32, name: i32, value: UserAddr, len: u32) -> SysResult<()> {
    socket(t, fd)?;
    if level != SOL_SOCKET || !matches!(name, SO_SNDBUF | SO_RCVBUF | SO_PASSCRED) {
        return error!(ENOPROTOOPT);
    }
    if len < 4 {
        return error!(EINVAL);
    }
    let _: i32 = t.mm.read_obj(UserRef::new(value))?;
    Ok(())
}

/// getsockname and getpeername: an unnamed AF_UNIX address (the family alone).
fn unnamed(t: &Task, fd: Fd, addr: UserAddr, len: UserRef<u32>) -> SysResult<()> {
    socket(t, fd)?;
    let want = t.mm.read_obj(len)?;
    if (want as i32) < 0 {
        return error!(EINVAL);
    }
    let family = (AF_UNIX as u16).to_ne_bytes();
    t.mm.write_bytes(addr, &family[..(want as usize).min(2)])?;
    t.mm.write_obj(len, &2)
}

pub fn sys_getsockname(t: &mut Task, fd: Fd, addr: UserAddr, len: UserRef<u32>) -> SysResult<()> {
    unnamed(t, fd, addr, len)
}

pub fn sys_getpeername(t: &mut Task, fd: Fd, addr: UserAddr, len: UserRef<u32>) -> SysResult<()> {
    unnamed(t, fd, addr, len)
}
