//! The socket calls, for sockets of every family the Sentry has (see
//! `crate::net`): AF_UNIX, and AF_INET and AF_INET6 over loopback. What is
//! common to all (addresses copied in and out, control messages, the generic
//! options) is here; each family reads its own addresses.

use super::pipe::install_pair;
use crate::mm::{UserBuffers, UserRef};
use crate::net::inet::{IPPROTO_IP, IPPROTO_IPV6};
use crate::net::netlink::sock_diag::NETLINK_SOCK_DIAG;
use crate::net::netlink::{NetlinkSocket, AF_NETLINK, NETLINK_ROUTE};
use crate::net::tcp::TcpSocket;
use crate::net::udp::UdpSocket;
use crate::net::unix::{self, UnixSocket};
use crate::net::{Ancillary, BufferSizes, Received, Socket, Way, BUFFER, MSG_DONTWAIT, MSG_EOR, MSG_ERRQUEUE, MSG_MORE, MSG_NOSIGNAL, MSG_OOB, MSG_PEEK, MSG_TRUNC, MSG_WAITALL, SOCK_DGRAM, SOCK_STREAM};
use crate::task::Task;
use crate::vfs::{Fd, FileDescription};
use rvisor_abi::structs::{Cmsghdr, Msghdr, Timespec, Timeval, Ucred};
use rvisor_abi::{consts, error, SysResult, UserAddr};
use std::sync::Arc;
use zerocopy::{FromBytes, IntoBytes};

const AF_UNIX: i32 = 1;
const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;
const SOCK_NONBLOCK: i32 = 0o4000;
const SOCK_CLOEXEC: i32 = 0o2000000;
const SOCK_TYPE_MASK: i32 = 0xf;
const SOCK_RAW: i32 = 3;
const IPPROTO_TCP: i32 = 6;
const IPPROTO_UDP: i32 = 17;
const IPPROTO_ICMP: i32 = 1;
const IPPROTO_ICMPV6: i32 = 58;

const SOL_SOCKET: i32 = 1;
const SO_TYPE: i32 = 3;
const SO_ERROR: i32 = 4;
const SO_SNDBUF: i32 = 7;
const SO_RCVBUF: i32 = 8;
const SO_RCVLOWAT: i32 = 18;
const SO_SNDLOWAT: i32 = 19;
const SO_SNDBUFFORCE: i32 = 32;
const SO_RCVBUFFORCE: i32 = 33;
const SO_RCVTIMEO: i32 = 20;
const SO_SNDTIMEO: i32 = 21;
const SO_ACCEPTCONN: i32 = 30;
const SO_PROTOCOL: i32 = 38;
const SO_DOMAIN: i32 = 39;

/// Flags send/recv take here; others are EOPNOTSUPP rather than ignored.
/// MSG_CONFIRM (the neighbour answered: no need to ask its address again)
/// has nothing to confirm in the sandbox's stack, which keeps asking.
/// MSG_MORE builds one UDP datagram over several sends; a stream sends at once
/// (Linux's TCP holds a partial segment back a while: timing, not content), and
/// MSG_EOR marks nothing in a byte stream here. MSG_OOB only where the socket
/// has urgent data (`Socket::takes_oob`).
const SEND_FLAGS: u32 = MSG_DONTWAIT | MSG_NOSIGNAL | MSG_CONFIRM | MSG_MORE | MSG_EOR | MSG_OOB;
const MSG_CONFIRM: u32 = 0x800;
/// MSG_ERRQUEUE reads the error queue of a socket that has one (UDP), which
/// neither waits nor peeks, as Linux's ip_recv_error.
const RECV_FLAGS: u32 = MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC | MSG_WAITALL | MSG_ERRQUEUE | MSG_OOB;
/// MSG_CMSG_CLOEXEC: received files are close-on-exec.
const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;
const MSG_CTRUNC: u32 = 0x8;

/// sizeof(struct sockaddr_storage): the longest address the calls copy in.
const SOCKADDR_STORAGE: u32 = 128;

fn nonblock_flag(kind: i32) -> u32 {
    if kind & SOCK_NONBLOCK != 0 { crate::vfs::OpenFlags::NONBLOCK } else { 0 }
}

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
    let (a, b) = unix::socketpair(kind & SOCK_TYPE_MASK, nonblock_flag(kind), unix::task_creds(t, true))?;
    for s in [&a, &b] {
        s.made_by(t);
        t.kernel.unix_sockets.register(s, t.ns.net.id);
    }
    install_pair(t, a, b, kind & SOCK_CLOEXEC != 0, sv)
}

pub fn sys_socket(t: &mut Task, domain: i32, kind: i32, protocol: i32) -> SysResult<Fd> {
    if kind & !(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return error!(EINVAL);
    }
    let (ty, flags) = (kind & SOCK_TYPE_MASK, nonblock_flag(kind));
    let sock: Arc<dyn FileDescription> = match (domain, ty, protocol) {
        (AF_UNIX, _, 0 | AF_UNIX) => {
            let s = UnixSocket::new(ty, flags)?;
            s.made_by(t);
            t.kernel.unix_sockets.register(&s, t.ns.net.id);
            s
        }
        (AF_UNIX, _, _) => return error!(EPROTONOSUPPORT),
        (AF_INET | AF_INET6, SOCK_STREAM | SOCK_DGRAM, _) if t.ns.net.host_network => crate::net::host::HostSocket::new(domain, ty, protocol, flags)?,
        (AF_INET | AF_INET6, SOCK_STREAM, 0 | IPPROTO_TCP) => TcpSocket::new(&t.ns.net, domain, flags, t.tg.creds().fsuid),
        (AF_INET | AF_INET6, SOCK_DGRAM, 0 | IPPROTO_UDP) => UdpSocket::new(&t.ns.net, domain, flags, t.tg.creds().fsuid),
        (AF_INET, SOCK_DGRAM, IPPROTO_ICMP) | (AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6) => UdpSocket::new_ping(&t.ns.net, domain, flags, t.tg.creds().fsuid),
        (AF_INET | AF_INET6, SOCK_STREAM | SOCK_DGRAM, _) => return error!(EPROTONOSUPPORT),
        (AF_INET | AF_INET6, _, _) => return error!(ESOCKTNOSUPPORT),
        (AF_NETLINK, SOCK_RAW | SOCK_DGRAM, NETLINK_ROUTE) if t.ns.net.host_network => crate::net::host::HostSocket::new(domain, ty, protocol, flags)?,
        (AF_NETLINK, SOCK_RAW | SOCK_DGRAM, NETLINK_ROUTE) => NetlinkSocket::new(ty, protocol, flags),
        // The Sentry answers for the sandbox's sockets, host network or not.
        (AF_NETLINK, SOCK_RAW | SOCK_DGRAM, NETLINK_SOCK_DIAG) => NetlinkSocket::new(ty, protocol, flags),
        (AF_NETLINK, SOCK_RAW | SOCK_DGRAM, _) => return error!(EPROTONOSUPPORT),
        (AF_NETLINK, _, _) => return error!(ESOCKTNOSUPPORT),
        _ => return error!(EAFNOSUPPORT),
    };
    t.fds.install_lowest(sock, 0, t.tg.rlimit(crate::task::RLIMIT_NOFILE).cur, kind & SOCK_CLOEXEC != 0)
}

/// A sockaddr the caller passed, copied in whole (Linux's move_addr_to_kernel).
fn read_address(t: &Task, addr: UserAddr, len: u32) -> SysResult<Vec<u8>> {
    if len > SOCKADDR_STORAGE {
        return error!(EINVAL);
    }
    let mut raw = vec![0u8; len as usize];
    t.mm.read_bytes(addr, &mut raw)?;
    Ok(raw)
}

pub fn sys_bind(t: &mut Task, fd: Fd, addr: UserAddr, len: u32) -> SysResult<()> {
    let file = t.fds.get(fd)?;
    let raw = read_address(t, addr, len)?;
    let sock = socket(&file)?;
    crate::landlock::net::may_use_port(t.thread.landlock().as_deref(), sock, &raw, crate::landlock::NET_BIND_TCP)?;
    sock.bind(t, &raw)
}

pub fn sys_listen(t: &mut Task, fd: Fd, backlog: i32) -> SysResult<()> {
    let file = t.fds.get(fd)?;
    socket(&file)?.listen(t, backlog)
}

pub fn sys_connect(t: &mut Task, fd: Fd, addr: UserAddr, len: u32) -> SysResult<()> {
    let file = t.fds.get(fd)?;
    let raw = read_address(t, addr, len)?;
    let sock = socket(&file)?;
    crate::landlock::net::may_use_port(t.thread.landlock().as_deref(), sock, &raw, crate::landlock::NET_CONNECT_TCP)?;
    sock.connect(t, &raw)
}

/// Writes an address to a buffer of `room` bytes, cut as Linux does; returns
/// its full length.
fn put_sockaddr(t: &Task, addr: UserAddr, room: u32, name: &[u8]) -> SysResult<u32> {
    t.mm.write_bytes(addr, &name[..(room as usize).min(name.len())])?;
    Ok(name.len() as u32)
}

/// Writes an address to a sockaddr buffer of `*len` bytes, and its full
/// length to `len`.
fn write_sockaddr(t: &Task, addr: UserAddr, len: UserRef<u32>, name: &[u8]) -> SysResult<()> {
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
    let file = t.fds.get(fd)?;
    let (conn, peer) = socket(&file)?.accept(t)?;
    if flags & SOCK_NONBLOCK != 0 {
        conn.set_status_flags(conn.status_flags() | crate::vfs::OpenFlags::NONBLOCK);
    }
    if !addr.is_null() {
        match &peer {
            Some(name) => write_sockaddr(t, addr, len, name)?,
            None => t.mm.write_obj(len, &0)?,
        }
    }
    t.fds.install_lowest(conn, 0, t.tg.rlimit(crate::task::RLIMIT_NOFILE).cur, flags & SOCK_CLOEXEC != 0)
}

pub fn sys_accept(t: &mut Task, fd: Fd, addr: UserAddr, len: UserRef<u32>) -> SysResult<Fd> {
    sys_accept4(t, fd, addr, len, 0)
}

/// The socket behind a file (ENOTSOCK for other files).
fn socket(file: &Arc<dyn FileDescription>) -> SysResult<&dyn Socket> {
    file.as_socket().ok_or_else(|| rvisor_abi::errno!(ENOTSOCK))
}

/// Sends `bufs` with `anc`, to the address of `to_len` bytes at `to` when
/// `to_len` is not 0.
fn send_buffers(t: &Task, fd: Fd, bufs: &UserBuffers, flags: u32, anc: Ancillary, to: UserAddr, to_len: u32) -> SysResult<usize> {
    let file = t.fds.get(fd)?;
    let sock = socket(&file)?;
    if flags & !SEND_FLAGS != 0 || (flags & MSG_OOB != 0 && !sock.takes_oob(false)) {
        return error!(EOPNOTSUPP);
    }
    let to = if to_len != 0 { Some(read_address(t, to, to_len)?) } else { None };
    let data = crate::fs::simple::copy_in(t, bufs, (bufs.total() as usize).min(1 << 24))?;
    sock.send(t, &data, flags, anc, to.as_deref())
}

/// Receives into `bufs`; returns how many bytes were copied (or counted,
/// `Received::counted`), and what came.
fn receive_buffers(t: &Task, fd: Fd, bufs: &UserBuffers, flags: u32) -> SysResult<(usize, Received)> {
    if flags & !(RECV_FLAGS | MSG_CMSG_CLOEXEC) != 0 {
        return error!(EOPNOTSUPP);
    }
    let file = t.fds.get(fd)?;
    let sock = socket(&file)?;
    if flags & MSG_OOB != 0 && !sock.takes_oob(true) {
        return error!(EOPNOTSUPP);
    }
    let max = (bufs.total() as usize).min(BUFFER);
    let got = if flags & MSG_ERRQUEUE != 0 { sock.receive_error(t, max, flags)? } else { sock.receive(t, max, flags)? };
    let copied = crate::fs::simple::copy_out(t, bufs, &got.data)?;
    Ok((if got.counted { got.full } else { copied }, got))
}

const CMSG_HDR: usize = std::mem::size_of::<Cmsghdr>();
const SCM_RIGHTS: i32 = 1;
const SCM_CREDENTIALS: i32 = 2;
/// Most files one message may carry (Linux's SCM_MAX_FD).
const SCM_MAX_FD: usize = 253;

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
            (IPPROTO_IP | IPPROTO_IPV6, kind) => anc.ip.push((h.level, kind, data.to_vec())),
            _ => {}
        }
        at += cmsg_align(clen);
    }
    Ok(anc)
}

/// SCM_CREDENTIALS a sender may pass: its own pid (or any, with
/// CAP_SYS_ADMIN) and one of its uids and gids (or any its user namespace
/// maps, with CAP_SETUID and CAP_SETGID), of a process that exists (Linux's
/// scm_check_creds). The ids come back as the sandbox's.
fn checked_creds(t: &Task, c: Ucred) -> SysResult<Ucred> {
    let ns = t.tg.user_ns();
    let c = Ucred { pid: t.find_vpid(c.pid), uid: ns.uid_arg(c.uid)?, gid: ns.gid_arg(c.gid)? };
    if c.uid == u32::MAX || c.gid == u32::MAX {
        return error!(EINVAL);
    }
    let ids = t.tg.creds();
    let pid_ok = c.pid == t.tg.tgid || t.tg.capable_in(&t.tg.container.pid_ns.owner, consts::CAP_SYS_ADMIN);
    let uid_ok = [ids.uid, ids.euid, ids.suid].contains(&c.uid) || t.tg.capable(consts::CAP_SETUID);
    let gid_ok = [ids.gid, ids.egid, ids.sgid].contains(&c.gid) || t.tg.capable(consts::CAP_SETGID);
    if !(pid_ok && uid_ok && gid_ok) {
        return error!(EPERM);
    }
    if t.tg.container.pid_ns.thread(c.pid).is_none() {
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
/// credentials first, then IP-level messages, then files, as Linux does. Returns the bytes used and
/// whether anything was cut (MSG_CTRUNC).
fn deliver_control(t: &Task, control: UserAddr, len: usize, got: Received, cloexec: bool) -> SysResult<(usize, bool)> {
    let mut out = ControlOut { at: control, room: len, used: 0, truncated: false };
    if let Some(c) = got.creds {
        out.put(t, SOL_SOCKET, SCM_CREDENTIALS, unix::creds_seen_by(t, c).as_bytes())?;
    }
    for (level, kind, data) in &got.control {
        out.put(t, *level, *kind, data)?;
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
            Some(name) => write_sockaddr(t, addr, addrlen, name)?,
            None => t.mm.write_obj(addrlen, &0)?,
        }
    }
    Ok(received_length(flags, n, got.full))
}

/// What a receive returns: the bytes copied, or with MSG_TRUNC the full
/// length, but for the error queue, whose ip_recv_error returns what it copied.
fn received_length(flags: u32, copied: usize, full: usize) -> usize {
    if flags & (MSG_TRUNC | MSG_ERRQUEUE) == MSG_TRUNC { full } else { copied }
}

pub fn sys_sendmsg(t: &mut Task, fd: Fd, msg: UserRef<Msghdr>, flags: u32) -> SysResult<usize> {
    let m = t.mm.read_obj(msg)?;
    socket(&t.fds.get(fd)?)?;
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
            Some(name) => put_sockaddr(t, UserAddr(m.name), m.namelen, name)?,
            None => 0,
        };
    }
    let trunc = got.full > n;
    let (full, extra) = (got.full, got.flags);
    let (control, ctrunc) = deliver_control(t, UserAddr(m.control), m.controllen as usize, got, flags & MSG_CMSG_CLOEXEC != 0)?;
    m.controllen = control as u64;
    m.flags = (if trunc { MSG_TRUNC } else { 0 } | if ctrunc { MSG_CTRUNC } else { 0 } | extra) as i32;
    t.mm.write_obj(msg, &m)?;
    Ok(received_length(flags, n, full))
}

/// recvmmsg's flag: after the first message, do not wait for more.
const MSG_WAITFORONE: u32 = 0x10000;
/// Most messages one sendmmsg or recvmmsg moves (Linux's UIO_MAXIOV).
const MMSG_MAX: u32 = 1024;
/// `struct mmsghdr`: a msghdr, then the length moved (and padding).
const MMSGHDR: u64 = std::mem::size_of::<Msghdr>() as u64 + 8;

/// The `i`th `struct mmsghdr` at `msgs`: its msghdr and its length word.
fn mmsghdr(msgs: UserAddr, i: u32) -> SysResult<(UserRef<Msghdr>, UserRef<u32>)> {
    let at = msgs.add(u64::from(i) * MMSGHDR)?;
    Ok((UserRef::new(at), UserRef::new(at.add(std::mem::size_of::<Msghdr>() as u64)?)))
}

/// Moves up to `vlen` messages with `one`; an error after the first ends the
/// batch, which counts what moved (as Linux, which keeps the error for later).
fn batch(t: &mut Task, msgs: UserAddr, vlen: u32, mut one: impl FnMut(&mut Task, UserRef<Msghdr>, u32) -> SysResult<usize>) -> SysResult<usize> {
    let mut done = 0;
    for i in 0..vlen.min(MMSG_MAX) {
        let (msg, len) = mmsghdr(msgs, i)?;
        match one(t, msg, i) {
            Ok(n) => t.mm.write_obj(len, &(n as u32))?,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        }
        done += 1;
    }
    Ok(done)
}

pub fn sys_sendmmsg(t: &mut Task, fd: Fd, msgs: UserAddr, vlen: u32, flags: u32) -> SysResult<usize> {
    batch(t, msgs, vlen, |t, msg, _| sys_sendmsg(t, fd, msg, flags))
}

pub fn sys_recvmmsg(t: &mut Task, fd: Fd, msgs: UserAddr, vlen: u32, flags: u32, timeout: UserRef<Timespec>) -> SysResult<usize> {
    if !timeout.addr.is_null() {
        let ts = t.mm.read_obj(timeout)?;
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            return error!(EINVAL);
        }
    }
    let first = flags & !MSG_WAITFORONE;
    let rest = if flags & MSG_WAITFORONE != 0 { first | MSG_DONTWAIT } else { first };
    batch(t, msgs, vlen, |t, msg, i| sys_recvmsg(t, fd, msg, if i == 0 { first } else { rest }))
}

pub fn sys_shutdown(t: &mut Task, fd: Fd, how: i32) -> SysResult<()> {
    let file = t.fds.get(fd)?;
    socket(&file)?.shutdown(how)
}

/// getsockopt: what every family answers alike here, else the family's own.
pub fn sys_getsockopt(t: &mut Task, fd: Fd, level: i32, name: i32, value: UserAddr, len: UserRef<u32>) -> SysResult<()> {
    let file = t.fds.get(fd)?;
    let sock = socket(&file)?;
    if let (SOL_SOCKET, SO_RCVTIMEO | SO_SNDTIMEO, Some(timeouts)) = (level, name, sock.timeouts()) {
        let d = timeouts.get(way_of(name)).unwrap_or_default();
        let tv = Timeval { tv_sec: d.as_secs() as i64, tv_usec: i64::from(d.subsec_micros()) };
        return write_option(t, value, len, tv.as_bytes());
    }
    let v: i32 = match (level, name) {
        (SOL_SOCKET, SO_TYPE) => sock.kind(),
        (SOL_SOCKET, SO_ERROR) => sock.take_error().map_or(0, |e| i32::from(e.0)),
        (SOL_SOCKET, SO_ACCEPTCONN) => i32::from(sock.listening()),
        (SOL_SOCKET, SO_SNDBUF | SO_RCVBUF) => sock.buffer_sizes().map_or(BUFFER, |b| b.get(way_of(name))) as i32,
        (SOL_SOCKET, SO_RCVLOWAT) if sock.buffer_sizes().is_some() => sock.buffer_sizes().map_or(1, BufferSizes::rcvlowat) as i32,
        // Linux keeps no send low-water mark: always 1.
        (SOL_SOCKET, SO_SNDLOWAT) if sock.buffer_sizes().is_some() => 1,
        (SOL_SOCKET, SO_DOMAIN) => sock.domain(),
        (SOL_SOCKET, SO_PROTOCOL) => sock.protocol(),
        _ => return write_option(t, value, len, &sock.get_option(t, level, name)?),
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

/// setsockopt: the buffer sizes are accepted for every family (and kept by
/// those whose queues honour them); the rest is the family's.
pub fn sys_setsockopt(t: &mut Task, fd: Fd, level: i32, name: i32, value: UserAddr, len: u32) -> SysResult<()> {
    let file = t.fds.get(fd)?;
    let sock = socket(&file)?;
    if (len as i32) < 0 {
        return error!(EINVAL);
    }
    let mut bytes = vec![0u8; (len as usize).min(256)];
    t.mm.read_bytes(value, &mut bytes)?;
    if level == SOL_SOCKET && matches!(name, SO_SNDBUF | SO_RCVBUF | SO_SNDBUFFORCE | SO_RCVBUFFORCE) {
        let asked = crate::net::int_option(&bytes)?;
        let forced = matches!(name, SO_SNDBUFFORCE | SO_RCVBUFFORCE);
        if forced && !t.tg.capable_in(&t.ns.net.owner, consts::CAP_NET_ADMIN) {
            return error!(EPERM);
        }
        if let Some(sizes) = sock.buffer_sizes() {
            sizes.set(way_of(name), asked, forced);
            // A larger send buffer may let a blocked writer go on (Linux's
            // sk_write_space).
            if let Some(q) = file.wait_queue() {
                q.notify_events(crate::vfs::POLLOUT);
            }
        }
        return Ok(());
    }
    if let (SOL_SOCKET, SO_RCVTIMEO | SO_SNDTIMEO, Some(timeouts)) = (level, name, sock.timeouts()) {
        timeouts.set(way_of(name), timeout_of(&bytes)?);
        return Ok(());
    }
    if let (SOL_SOCKET, SO_RCVLOWAT | SO_SNDLOWAT, Some(sizes)) = (level, name, sock.buffer_sizes()) {
        let asked = crate::net::int_option(&bytes)?;
        if name == SO_SNDLOWAT {
            return error!(ENOPROTOOPT);
        }
        sizes.set_rcvlowat(asked);
        // A TCP reader or poller may now have enough (tcp_set_rcvlowat's
        // tcp_data_ready).
        if let Some(q) = file.wait_queue() {
            q.notify_events(crate::vfs::POLLIN);
        }
        return Ok(());
    }
    sock.set_option(t, level, name, &bytes)
}

/// The direction a timeout or buffer option is about.
fn way_of(name: i32) -> Way {
    if matches!(name, SO_RCVTIMEO | SO_RCVBUF | SO_RCVBUFFORCE) { Way::Receive } else { Way::Send }
}

/// A socket timeout as setsockopt gives it, a `struct timeval`, as Linux's
/// sock_set_timeout reads it: zero is no timeout, a negative one does not wait.
fn timeout_of(bytes: &[u8]) -> SysResult<Option<std::time::Duration>> {
    let Ok((tv, _)) = Timeval::read_from_prefix(bytes) else { return error!(EINVAL) };
    if !(0..1_000_000).contains(&tv.tv_usec) {
        return error!(EDOM);
    }
    Ok(match (tv.tv_sec, tv.tv_usec) {
        (0, 0) => None,
        (s, _) if s < 0 => Some(std::time::Duration::ZERO),
        (s, us) => Some(std::time::Duration::from_secs(s as u64) + std::time::Duration::from_micros(us as u64)),
    })
}

pub fn sys_getsockname(t: &mut Task, fd: Fd, addr: UserAddr, len: UserRef<u32>) -> SysResult<()> {
    let file = t.fds.get(fd)?;
    let name = socket(&file)?.name();
    write_sockaddr(t, addr, len, &name)
}

pub fn sys_getpeername(t: &mut Task, fd: Fd, addr: UserAddr, len: UserRef<u32>) -> SysResult<()> {
    let file = t.fds.get(fd)?;
    let name = socket(&file)?.peer_name()?;
    write_sockaddr(t, addr, len, &name)
}
