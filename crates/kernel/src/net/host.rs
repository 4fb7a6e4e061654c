//! The host network, passed through (`--network=host`, and an OCI container
//! that shares a network namespace, as runsc's `--network=host`): AF_INET and
//! AF_INET6 sockets are host sockets the Sentry makes, in the sandbox
//! process's network namespace, and uses on the app's behalf. The app still
//! makes no host call itself; it reaches the host's network stack, which is
//! the isolation this mode gives up.
//!
//! NETLINK_ROUTE sockets pass through too, so that `ip`, getifaddrs and
//! if_nameindex see the host's interfaces; their requests go to the host
//! without the Sentry's network privileges, so the host answers any request
//! to change its network with EPERM, as it answers an unprivileged process.
//!
//! Each host socket is non-blocking; a blocking call waits in a host poll
//! beside the task's wake-up descriptor, so signals interrupt it. Options pass
//! through only from a list of those that change nothing but the socket.

use super::{Accepted, Ancillary, SIOCATMARK, Received, Socket, SocketInode, Timeouts, Way, MSG_DONTWAIT, MSG_NOSIGNAL, MSG_OOB, MSG_PEEK, MSG_TRUNC, MSG_WAITALL};
use crate::task::Task;
use crate::vfs::wait_host;
use crate::vfs::inode::OpenFlags;
use crate::vfs::{FileDescription, StatusFlags};
use nix::poll::PollFlags;
use rvisor_abi::{error, Errno, ErrnoCode, SysResult};
use rvisor_platform::hostcall::socket as host;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

const SOL_SOCKET: i32 = 1;
const IPPROTO_IP: i32 = 0;
const IPPROTO_TCP: i32 = 6;
const IPPROTO_UDP: i32 = 17;
const IPPROTO_IPV6: i32 = 41;
const SOL_NETLINK: i32 = 270;
const SO_ERROR: i32 = 4;
const SO_ACCEPTCONN: i32 = 30;

/// SOL_SOCKET options that only tune the socket: REUSEADDR, BROADCAST,
/// SNDBUF, RCVBUF, KEEPALIVE, OOBINLINE, LINGER, REUSEPORT, RCVLOWAT,
/// TIMESTAMP, TIMESTAMPNS, BUSY_POLL, TIMESTAMP_NEW, TIMESTAMPNS_NEW (not
/// PRIORITY, BINDTODEVICE, MARK or the BPF attachments, which need privileges
/// the Sentry has and the app may not).
const SOCKET_OPTIONS: &[i32] = &[2, 6, 7, 8, 9, 10, 13, 15, 18, 29, 35, 46, 63, 64];
/// IP, IPv6 and TCP options that need CAP_NET_ADMIN or CAP_NET_RAW: IP_TRANSPARENT
/// and IPsec/XFRM policies, IPV6_TRANSPARENT and its policies, TCP repair.
const PRIVILEGED_IP: &[i32] = &[16, 17, 19];
const PRIVILEGED_IPV6: &[i32] = &[34, 35, 75];
const PRIVILEGED_TCP: &[i32] = &[19, 20, 21, 22, 29];

fn io(e: std::io::Error) -> Errno {
    Errno::new(ErrnoCode(e.raw_os_error().unwrap_or(5) as u16))
}

pub struct HostSocket {
    fd: OwnedFd,
    domain: i32,
    kind: i32,
    protocol: i32,
    flags: StatusFlags,
    timeouts: Timeouts,
    ino: SocketInode,
}

impl HostSocket {
    /// A host socket of this domain, type (SOCK_STREAM or SOCK_DGRAM) and protocol.
    pub fn new(domain: i32, kind: i32, protocol: i32, flags: u32) -> SysResult<Arc<HostSocket>> {
        let fd = host::socket(domain, kind, protocol).map_err(io)?;
        Ok(HostSocket::wrap(fd, domain, kind, protocol, flags))
    }

    fn wrap(fd: OwnedFd, domain: i32, kind: i32, protocol: i32, flags: u32) -> Arc<HostSocket> {
        Arc::new(HostSocket { fd, domain, kind, protocol, flags: StatusFlags::new(flags), timeouts: Timeouts::default(), ino: SocketInode::new() })
    }

    fn nonblock(&self, flags: u32) -> bool {
        flags & MSG_DONTWAIT != 0 || self.flags.get() & OpenFlags::NONBLOCK != 0
    }

    /// Runs `call` until it stops saying EAGAIN, waiting for `events` between
    /// tries unless the caller must not block; the socket's timeout for `way`
    /// bounds the wait (then EAGAIN), and a signal interrupts it.
    fn blocking<T>(&self, t: &Task, flags: u32, way: Way, events: PollFlags, mut call: impl FnMut() -> std::io::Result<T>) -> SysResult<T> {
        let limit = self.timeouts.get(way).map(crate::time::deadline_in);
        loop {
            match call() {
                Err(e) if e.raw_os_error() == Some(nix::libc::EAGAIN) && !self.nonblock(flags) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::EINTR) => continue,
                r => return r.map_err(io),
            }
            match wait_host(t, self.fd.as_fd(), events, limit.flatten()) {
                Err(e) if e.code == ErrnoCode::ETIMEDOUT => return error!(EAGAIN),
                Err(e) if e.code == ErrnoCode::ERESTARTSYS && limit.is_some() => return error!(EINTR),
                r => r?,
            }
        }
    }

    /// Whether the next byte is TCP's urgent one, where Linux's reads stop
    /// even under MSG_WAITALL.
    fn at_mark(&self) -> bool {
        host::ioctl_int(self.fd.as_fd(), SIOCATMARK.into()).is_ok_and(|m| m != 0)
    }

    fn int_option(&self, level: i32, name: i32) -> SysResult<i32> {
        let v = host::get_option(self.fd.as_fd(), level, name, 4).map_err(io)?;
        super::int_option(&v)
    }

    /// Whether an option may pass to the host: the socket's own tuning, not
    /// what would reach beyond it.
    fn passes(&self, level: i32, name: i32) -> bool {
        if self.domain == super::netlink::AF_NETLINK {
            // Multicast groups, extended acks, strict checking: the socket's own.
            return level == SOL_NETLINK || level == SOL_SOCKET && SOCKET_OPTIONS.contains(&name);
        }
        match level {
            SOL_SOCKET => SOCKET_OPTIONS.contains(&name),
            IPPROTO_TCP => self.kind == super::SOCK_STREAM && !PRIVILEGED_TCP.contains(&name),
            IPPROTO_UDP => self.kind == super::SOCK_DGRAM,
            IPPROTO_IP => !PRIVILEGED_IP.contains(&name),
            IPPROTO_IPV6 => self.domain == nix::libc::AF_INET6 && !PRIVILEGED_IPV6.contains(&name),
            _ => false,
        }
    }
}

impl Socket for HostSocket {
    fn domain(&self) -> i32 {
        self.domain
    }

    fn kind(&self) -> i32 {
        self.kind
    }

    fn protocol(&self) -> i32 {
        match (self.protocol, self.kind) {
            (p, _) if p != 0 || self.domain == super::netlink::AF_NETLINK => p,
            (_, super::SOCK_STREAM) => IPPROTO_TCP,
            _ => IPPROTO_UDP,
        }
    }

    /// The Sentry may bind any port; the app only what its capabilities allow.
    fn bind(&self, t: &Task, addr: &[u8]) -> SysResult<()> {
        if self.domain != super::netlink::AF_NETLINK {
            super::inet::may_bind_port(t, &t.ns.net, super::inet::parse(self.domain, addr)?.port())?;
        }
        host::bind(self.fd.as_fd(), addr).map_err(io)
    }

    fn listen(&self, _t: &Task, backlog: i32) -> SysResult<()> {
        host::listen(self.fd.as_fd(), backlog).map_err(io)
    }

    /// A blocking connect waits for the handshake and reports how it ended; a
    /// non-blocking one is EINPROGRESS, as on the host.
    fn connect(&self, t: &Task, addr: &[u8]) -> SysResult<()> {
        match host::connect(self.fd.as_fd(), addr) {
            Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) && !self.nonblock(0) => {}
            r => return r.map_err(io),
        }
        let limit = self.timeouts.get(Way::Send).map(crate::time::deadline_in);
        match wait_host(t, self.fd.as_fd(), PollFlags::POLLOUT, limit.flatten()) {
            Err(e) if e.code == ErrnoCode::ETIMEDOUT => return error!(EINPROGRESS),
            // Interrupted, the connection goes on in the background (EINTR
            // rather than a restart: a repeated connect would say EALREADY).
            Err(e) if e.code == ErrnoCode::ERESTARTSYS => return error!(EINTR),
            r => r?,
        }
        match self.int_option(SOL_SOCKET, SO_ERROR)? {
            0 => Ok(()),
            e => Err(Errno::new(ErrnoCode(e as u16))),
        }
    }

    fn accept(&self, t: &Task) -> SysResult<Accepted> {
        let (fd, peer) = self.blocking(t, 0, Way::Receive, PollFlags::POLLIN, || host::accept(self.fd.as_fd()))?;
        let sock: Arc<dyn FileDescription> = HostSocket::wrap(fd, self.domain, self.kind, self.protocol, 0);
        Ok((sock, Some(peer)))
    }

    /// A datagram's IP-level control messages go to the host, which checks
    /// them; a stream skips them, as Linux's TCP.
    fn send(&self, t: &Task, data: &[u8], flags: u32, anc: Ancillary, to: Option<&[u8]>) -> SysResult<usize> {
        if !anc.is_empty() {
            return error!(EOPNOTSUPP);
        }
        let control = if self.kind == super::SOCK_STREAM { &[][..] } else { &anc.ip[..] };
        // The host must never raise SIGPIPE in the Sentry: the app gets it
        // here, as Linux would give it.
        let host_flags = (flags & !(MSG_DONTWAIT | MSG_NOSIGNAL)) as i32 | nix::libc::MSG_NOSIGNAL | nix::libc::MSG_DONTWAIT;
        let mut sent = 0;
        let r = loop {
            let r = self.blocking(t, flags, Way::Send, PollFlags::POLLOUT, || {
                host::send_message(self.fd.as_fd(), &data[sent..], host_flags, to, control)
            });
            // A blocking stream send returns once all is sent (or, after a
            // signal, an error or its timeout, with what was): the host's
            // non-blocking send takes what fits its buffer.
            match r {
                Ok(n) if self.kind == super::SOCK_STREAM && !self.nonblock(flags) && sent + n < data.len() && n > 0 => sent += n,
                Ok(n) => break Ok(sent + n),
                Err(_) if sent > 0 => break Ok(sent),
                Err(e) => break Err(e),
            }
        };
        if let Err(e) = &r {
            if e.code == ErrnoCode::EPIPE && flags & MSG_NOSIGNAL == 0 {
                crate::fs::pipe::sigpipe(t);
            }
        }
        r
    }

    /// MSG_WAITALL on a stream waits for `max` bytes, unless end of file, an
    /// error or a signal comes first (then what came is returned).
    fn receive(&self, t: &Task, max: usize, flags: u32) -> SysResult<Received> {
        let host_flags = (flags & (MSG_PEEK | MSG_TRUNC | MSG_OOB)) as i32 | nix::libc::MSG_DONTWAIT;
        // Urgent data is there or not: Linux's tcp_recv_urg never waits.
        let flags = if flags & MSG_OOB != 0 { flags | MSG_DONTWAIT } else { flags };
        let mut buf = vec![0u8; max];
        let mut got = 0;
        let mut full = 0;
        let mut from = Vec::new();
        let mut control = Vec::new();
        loop {
            let r = self.blocking(t, flags, Way::Receive, PollFlags::POLLIN, || host::receive_message(self.fd.as_fd(), &mut buf[got..], host_flags));
            let (n, addr, messages) = match r {
                Err(_) if got > 0 && self.kind == super::SOCK_STREAM => break,
                r => r?,
            };
            from = addr;
            control = messages;
            if self.kind != super::SOCK_STREAM {
                full = n;
                got = n.min(max);
                break;
            }
            got += n;
            full = got;
            if n == 0 || got == max || flags & (MSG_WAITALL | MSG_PEEK | MSG_OOB) != MSG_WAITALL || self.at_mark() {
                break;
            }
        }
        buf.truncate(got);
        let from = (!from.is_empty() && self.kind != super::SOCK_STREAM).then_some(from);
        // What the app asked for of a datagram's arrival (IP_PKTINFO...), as the host saw it.
        control.retain(|(level, kind, _)| self.kind != super::SOCK_STREAM && super::ip_control::is_arrival_message(*level, *kind));
        // An urgent byte taken into no room was cut (MSG_TRUNC).
        let full = if flags & MSG_OOB != 0 { full.max(1) } else { full };
        Ok(Received { data: buf, full, files: Vec::new(), from, control, flags: flags & MSG_OOB, ..Received::default() })
    }

    /// The host's socket answers MSG_OOB as Linux does: TCP's urgent data
    /// (but SIGURG stays with the host, whose socket has no owner), UDP
    /// receives ignoring it, the others refusing it.
    fn takes_oob(&self, _receiving: bool) -> bool {
        true
    }

    fn shutdown(&self, how: i32) -> SysResult<()> {
        host::shutdown(self.fd.as_fd(), how).map_err(io)
    }

    fn name(&self) -> Vec<u8> {
        host::address(self.fd.as_fd(), false).unwrap_or_default()
    }

    fn peer_name(&self) -> SysResult<Vec<u8>> {
        host::address(self.fd.as_fd(), true).map_err(io)
    }

    fn listening(&self) -> bool {
        self.int_option(SOL_SOCKET, SO_ACCEPTCONN).is_ok_and(|v| v != 0)
    }

    fn take_error(&self) -> Option<ErrnoCode> {
        self.int_option(SOL_SOCKET, SO_ERROR).ok().filter(|&e| e != 0).map(|e| ErrnoCode(e as u16))
    }

    fn get_option(&self, _t: &Task, level: i32, name: i32) -> SysResult<Vec<u8>> {
        if !self.passes(level, name) {
            return error!(ENOPROTOOPT);
        }
        // Large enough for TCP_INFO and the other structured options.
        host::get_option(self.fd.as_fd(), level, name, 256).map_err(io)
    }

    fn set_option(&self, _t: &Task, level: i32, name: i32, value: &[u8]) -> SysResult<()> {
        if !self.passes(level, name) {
            return error!(ENOPROTOOPT);
        }
        // The host judges it as an unprivileged process's: the Sentry holds no
        // network capability but CAP_NET_BIND_SERVICE (runtime's confine.rs).
        host::set_option(self.fd.as_fd(), level, name, value).map_err(io)
    }

    fn timeouts(&self) -> Option<&Timeouts> {
        Some(&self.timeouts)
    }
}

impl FileDescription for HostSocket {
    super::socket_file_basics!(super::STREAM_WRITE_MAX);

    fn readiness(&self, mask: u32) -> u32 {
        crate::vfs::readiness::host_readiness(self.fd.as_fd(), mask)
    }

    fn host_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        Some(self.fd.as_fd())
    }

    /// FIONREAD (SIOCINQ), SIOCOUTQ, SIOCOUTQNSD and SIOCATMARK, as the
    /// host counts them.
    fn ioctl(&self, t: &Task, request: u32, arg: u64) -> SysResult<u64> {
        const FIONREAD: u32 = 0x541B;
        const SIOCOUTQ: u32 = 0x5411;
        const SIOCOUTQNSD: u32 = 0x894B;
        if ![FIONREAD, SIOCOUTQ, SIOCOUTQNSD, SIOCATMARK].contains(&request) {
            return error!(ENOTTY);
        }
        let n = host::ioctl_int(self.fd.as_fd(), u64::from(request)).map_err(io)?;
        t.mm.write_obj(crate::mm::UserRef::new(rvisor_abi::UserAddr(arg)), &n).map(|()| 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_sockets_own_options_pass() {
        let s = HostSocket::new(nix::libc::AF_INET, super::super::SOCK_STREAM, 0, 0).unwrap();
        assert!(s.passes(SOL_SOCKET, 2)); // SO_REUSEADDR
        assert!(!s.passes(SOL_SOCKET, 25)); // SO_BINDTODEVICE
        assert!(!s.passes(SOL_SOCKET, 36)); // SO_MARK
        assert!(!s.passes(SOL_SOCKET, 12)); // SO_PRIORITY
        assert!(!s.passes(IPPROTO_IP, 19)); // IP_TRANSPARENT
        assert!(!s.passes(IPPROTO_TCP, 19)); // TCP_REPAIR
        assert!(s.passes(IPPROTO_TCP, 1)); // TCP_NODELAY
        assert!(!s.passes(IPPROTO_UDP, 1));
        assert!(!s.passes(IPPROTO_IPV6, 26)); // IPV6_V6ONLY on an AF_INET socket
        assert!(!s.passes(255, 1));
        assert_eq!(s.protocol(), IPPROTO_TCP);
    }

}
