//! Host ports forwarded into the sandbox (`rvisor do -p HOST_PORT:SANDBOX_PORT`),
//! as Docker's userland proxy does it: the runtime opens the host's listening
//! sockets at boot, before the Sentry's seccomp filter (which allows no new
//! socket, nor bind or listen, outside host network mode); here a
//! `port-forward` thread accepts on them, and each host connection gets a
//! `port-relay` thread that connects a client of the sandbox's own loopback
//! (`TcpSocket::connect_from_host`, as a program of the sandbox connecting to
//! 127.0.0.1 or ::1) to the sandbox's listener on SANDBOX_PORT, and copies
//! bytes both ways. Half-closes pass through (a shutdown of writing becomes
//! the other side's EOF), and so do resets; nothing listening in the
//! sandbox resets the host connection.
//!
//! UDP (`-p HOST_PORT:SANDBOX_PORT/udp`): one thread per flag relays the
//! datagrams of every host client, each of which gets a UDP socket of its own
//! on the sandbox's loopback, connected to SANDBOX_PORT, so that the server's
//! replies go back to the client they answer; a flow idle for FLOW_IDLE ends.
//!
//! The relay never spins: it waits in one host poll over the host socket and
//! an eventfd that the sandbox socket's wait queue writes (a `WaitCallback`),
//! so an idle forwarded connection costs no CPU. The host calls it makes
//! after the filter is on — poll, accept4, recvfrom, sendto, shutdown,
//! setsockopt (TCP_NODELAY; SO_LINGER for a reset), eventfd2 and read and
//! write of the eventfd, and for its threads clone, mmap and
//! sched_setaffinity (`spawn_unpinned`) — the filter allows in every network
//! mode (runtime filter.rs, `forwarding_ports_takes_no_new_sockets`).

use super::tcp::TcpSocket;
use super::{Loopback, NetNamespace};
use crate::kernel::Kernel;
use crate::vfs::{FileDescription, WaitCallback};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use rvisor_abi::ErrnoCode;
use rvisor_platform::hostcall::socket as host;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What a relay moves per host call, each way.
const CHUNK: usize = 128 << 10;
/// The most connections one forwarded TCP port relays at once (a thread
/// each); further ones are reset.
const MAX_RELAYS: usize = 4096;
/// A relay thread's stack.
const RELAY_STACK: usize = 256 << 10;
const IPPROTO_TCP: i32 = 6;
const TCP_NODELAY: i32 = 1;

/// One forwarded port: the host's listening (TCP) or bound (UDP) sockets for
/// it (non-blocking; one per address, e.g. 0.0.0.0 and [::]) and the
/// sandbox's port.
pub struct Forward {
    pub listeners: Vec<OwnedFd>,
    pub sandbox_port: u16,
    pub udp: bool,
    /// Whether the host addresses are IPv6, by listener: the relay connects
    /// to the sandbox's loopback in the same family first.
    pub ipv6: Vec<bool>,
}

/// Sandbox network mode: every TCP port the sandbox listens on, on loopback
/// or every address, is mirrored on 127.0.0.1 of the host's stack in the
/// sandbox's network namespace (whose loopback is all that stack keeps once
/// the sandbox took the interface): what the namespace's own host processes
/// dial there reaches the sandbox's listener, as it would reach a runc
/// container's. containerd's `kubectl port-forward` dials localhost:PORT in
/// the pod's namespace. A mirror stays once made; while nothing listens on
/// its port in the sandbox, a connection to it is reset.
#[derive(Default)]
pub struct LoopbackMirror {
    /// The ports mirrored (or that could not be). Leaf lock.
    ports: std::sync::Mutex<std::collections::HashSet<u16>>,
}

/// The most ports mirrored: a thread each.
const MAX_MIRRORED: usize = 256;

impl LoopbackMirror {
    /// The sandbox listens on `port`: mirrors it, if it is not yet.
    pub fn listening(&self, kernel: &Arc<Kernel>, port: u16) {
        {
            let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
            if ports.len() >= MAX_MIRRORED || !ports.insert(port) {
                return;
            }
        }
        let mirror = listen_on_loopback(port).and_then(|l| start(kernel, vec![Forward { listeners: vec![l], sandbox_port: port, udp: false, ipv6: vec![false] }]));
        if let Err(e) = mirror {
            tracing::debug!("port {port}: not mirrored on the namespace's loopback: {e}");
        }
    }
}

/// A listening host socket on 127.0.0.1:`port`.
fn listen_on_loopback(port: u16) -> io::Result<OwnedFd> {
    const SOL_SOCKET: i32 = 1;
    const SO_REUSEADDR: i32 = 2;
    let l = host::socket(nix::libc::AF_INET, super::SOCK_STREAM, 0)?;
    host::set_option(l.as_fd(), SOL_SOCKET, SO_REUSEADDR, &1i32.to_ne_bytes())?;
    host::bind(l.as_fd(), &super::inet::sockaddr(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)))?;
    host::listen(l.as_fd(), 128)?;
    Ok(l)
}

/// Starts a thread for each forward: accepting on its listeners (TCP), or
/// relaying its datagrams (UDP).
pub fn start(kernel: &Arc<Kernel>, forwards: Vec<Forward>) -> io::Result<()> {
    for fwd in forwards {
        let kernel = kernel.clone();
        let name = std::thread::Builder::new().name("port-forward".into());
        if fwd.udp {
            let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
            rvisor_platform::host_cpus::spawn_unpinned(name, move || datagrams(&kernel.namespaces.net, &fwd, Arc::new(Wake(efd))))?;
        } else {
            rvisor_platform::host_cpus::spawn_unpinned(name, move || accept_loop(&kernel, &fwd))?;
        }
    }
    Ok(())
}

/// Accepts host connections for ever, each relayed by a thread of its own.
fn accept_loop(kernel: &Arc<Kernel>, fwd: &Forward) {
    let relays = Arc::new(AtomicUsize::new(0));
    loop {
        let mut fds: Vec<PollFd> = fwd.listeners.iter().map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN)).collect();
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!("port {}: poll: {e}; no longer forwarded", fwd.sandbox_port);
                return;
            }
        }
        drop(fds);
        for (listener, &ipv6) in fwd.listeners.iter().zip(&fwd.ipv6) {
            loop {
                match host::accept(listener.as_fd()) {
                    Ok((conn, _)) => {
                        let port = fwd.sandbox_port;
                        if relays.load(Ordering::Relaxed) >= MAX_RELAYS {
                            tracing::warn!("port {port}: {MAX_RELAYS} connections already; one more is reset");
                            reset(conn);
                            continue;
                        }
                        // As Go's net (Docker's proxy) does: the relay passes on
                        // what it has at once, and the sandbox's program decides
                        // how its bytes are grouped.
                        let _ = host::set_option(conn.as_fd(), IPPROTO_TCP, TCP_NODELAY, &1i32.to_ne_bytes());
                        relays.fetch_add(1, Ordering::Relaxed);
                        let (kernel, count) = (kernel.clone(), relays.clone());
                        // Its buffers are on the heap.
                        let name = std::thread::Builder::new().name("port-relay".into()).stack_size(RELAY_STACK);
                        // Without a thread, the connection closes (dropped with the closure).
                        let spawned = rvisor_platform::host_cpus::spawn_unpinned(name, move || {
                            relay(&kernel.namespaces.net, conn, ipv6, port);
                            count.fetch_sub(1, Ordering::Relaxed);
                        });
                        if let Err(e) = spawned {
                            relays.fetch_sub(1, Ordering::Relaxed);
                            tracing::warn!("port {port}: cannot start a relay: {e}");
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if matches!(e.raw_os_error(), Some(libc_errno::EINTR | libc_errno::ECONNABORTED)) => {}
                    Err(e) => {
                        // Out of descriptors: let connections wait in the backlog a while.
                        tracing::warn!("port {}: accept: {e}", fwd.sandbox_port);
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        break;
                    }
                }
            }
        }
    }
}

/// The errno values the accept loop tells apart (the kernel crate has no libc).
mod libc_errno {
    pub const EINTR: i32 = 4;
    pub const ECONNABORTED: i32 = 103;
}

/// Connects to the sandbox's listener on `port` on loopback, in the host
/// connection's family first (127.0.0.1 or ::1), then the other.
pub fn connect_loopback(net: &Arc<NetNamespace>, port: u16, ipv6: bool) -> rvisor_abi::SysResult<Arc<TcpSocket>> {
    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port);
    let (first, second) = if ipv6 { (v6, v4) } else { (v4, v6) };
    match TcpSocket::connect_from_host(net, first) {
        Err(e) if e.code == ErrnoCode::ECONNREFUSED => TcpSocket::connect_from_host(net, second),
        r => r,
    }
}

/// Writes an eventfd whenever the sandbox socket's readiness may change.
struct Wake(EventFd);

impl WaitCallback for Wake {
    fn wake(self: Arc<Self>, _events: u32) {
        let _ = self.0.write(1);
    }
}

/// How a relayed connection ended.
#[derive(Debug, PartialEq)]
enum End {
    /// Both sides shut down their sending: a normal close.
    Done,
    /// The host side reset the connection or went away: reset the sandbox's.
    HostReset,
    /// The sandbox side reset it (or closed with bytes coming): reset the host's.
    SandboxReset,
}

/// Relays one accepted host connection to the sandbox's `port`.
fn relay(net: &Arc<NetNamespace>, conn: OwnedFd, ipv6: bool, port: u16) {
    let Ok(sock) = connect_loopback(net, port, ipv6) else {
        // Nothing listens in the sandbox (or no port was left): as Docker's
        // proxy, the host's client sees its connection reset.
        reset(conn);
        return;
    };
    let Ok(efd) = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK) else {
        sock.abort();
        reset(conn);
        return;
    };
    let wake = Arc::new(Wake(efd));
    let cb: Arc<dyn WaitCallback> = wake.clone();
    let queue = sock.wait_queue();
    if let Some(q) = queue {
        q.register_callback(cb.clone());
    }
    let end = pump(&sock, conn.as_fd(), &wake.0);
    tracing::debug!("port {port}: relayed connection ended: {end:?}");
    if let Some(q) = queue {
        q.unregister_callback(&cb);
    }
    match end {
        End::Done => {}
        End::HostReset => sock.abort(),
        End::SandboxReset => {
            sock.abort();
            reset(conn);
        }
    }
}

/// Closes a host connection with a reset (SO_LINGER with a zero timeout).
fn reset(conn: OwnedFd) {
    let linger: [i32; 2] = [1, 0];
    let bytes: Vec<u8> = linger.iter().flat_map(|v| v.to_ne_bytes()).collect();
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let _ = host::set_option(conn.as_fd(), SOL_SOCKET, SO_LINGER, &bytes);
    drop(conn);
}

const MSG_DONTWAIT: i32 = 0x40;
const MSG_NOSIGNAL: i32 = 0x4000;
const SHUT_WR: i32 = 1;

/// Copies both ways until both sides have shut down sending, or one resets.
fn pump(sock: &TcpSocket, conn: BorrowedFd<'_>, wake: &EventFd) -> End {
    // Host to sandbox: bytes read from the host, not yet queued in the sandbox.
    let mut up: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut up_at = 0;
    let mut host_eof = false;
    let mut up_shut = false;
    // Sandbox to host.
    let mut down: Vec<u8> = Vec::new();
    let mut down_at = 0;
    let mut sandbox_eof = false;
    let mut down_shut = false;
    loop {
        // Notifications from before this point are seen by the tries below.
        let _ = wake.read();
        loop {
            if up_at < up.len() {
                match sock.send_from_host(&up[up_at..]) {
                    Ok(n) => up_at += n,
                    Err(e) if e.code == ErrnoCode::EAGAIN => break,
                    Err(_) => return End::SandboxReset,
                }
                continue;
            }
            if host_eof {
                if !up_shut {
                    let _ = crate::net::Socket::shutdown(sock, SHUT_WR);
                    up_shut = true;
                }
                break;
            }
            up.resize(CHUNK, 0);
            up_at = 0;
            match host::receive(conn, &mut up, MSG_DONTWAIT) {
                Ok((n, _)) => {
                    up.truncate(n);
                    host_eof = n == 0;
                }
                Err(e) => {
                    up.clear();
                    match e.kind() {
                        io::ErrorKind::WouldBlock => break,
                        io::ErrorKind::Interrupted => {}
                        _ => return End::HostReset,
                    }
                }
            }
        }
        loop {
            if down_at < down.len() {
                match host::send(conn, &down[down_at..], MSG_DONTWAIT | MSG_NOSIGNAL, None) {
                    Ok(n) => down_at += n,
                    Err(e) => match e.kind() {
                        io::ErrorKind::WouldBlock => break,
                        io::ErrorKind::Interrupted => {}
                        _ => return End::HostReset,
                    },
                }
                continue;
            }
            if sandbox_eof {
                if !down_shut {
                    let _ = host::shutdown(conn, SHUT_WR);
                    down_shut = true;
                }
                break;
            }
            match sock.receive_to_host(CHUNK) {
                Ok(d) => {
                    sandbox_eof = d.is_empty();
                    down = d;
                    down_at = 0;
                }
                Err(e) if e.code == ErrnoCode::EAGAIN => break,
                Err(_) => return End::SandboxReset,
            }
        }
        if up_shut && down_shut {
            return End::Done;
        }
        // Wait for the host socket (readable when there is room to pass on
        // what it has, writable when bytes wait for it) or the sandbox socket
        // (through the eventfd). Until we shut down writing, the host socket
        // is watched for a reset even when neither: it hangs up only then (a
        // reset is an error too). Once we have, a hang-up is its FIN after
        // ours, not a reset, and would only wake the poll again and again
        // while the sandbox has no room for what it sent: it is watched only
        // for what we want of it, and a reset is found when it is read.
        let mut host_events = PollFlags::empty();
        if !host_eof && up_at >= up.len() {
            host_events |= PollFlags::POLLIN;
        }
        if down_at < down.len() {
            host_events |= PollFlags::POLLOUT;
        }
        let watch_host = !host_events.is_empty() || !down_shut;
        let mut fds = vec![PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
        if watch_host {
            fds.push(PollFd::new(conn, host_events));
        }
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return End::HostReset,
        }
        let host = fds.get(1).and_then(|f| f.revents()).unwrap_or(PollFlags::empty());
        if host.intersects(PollFlags::POLLERR | PollFlags::POLLNVAL) || (host.contains(PollFlags::POLLHUP) && !down_shut) {
            return End::HostReset;
        }
    }
}

/// How long a UDP flow (a host client's address and its socket in the
/// sandbox) lives without a datagram either way, as Linux's conntrack keeps a
/// UDP stream that was answered (nf_conntrack_udp_timeout_stream is 120 s).
const FLOW_IDLE: std::time::Duration = std::time::Duration::from_secs(120);
/// The most flows a forwarded UDP port keeps: datagrams from further clients
/// are dropped until one expires.
const MAX_FLOWS: usize = 4096;

/// One host client of a forwarded UDP port.
struct Flow {
    /// The host socket it sent to, by index, and its address as the host gave it.
    listener: usize,
    client: Vec<u8>,
    sock: Arc<super::udp::UdpSocket>,
    last: std::time::Instant,
}

/// Where a forwarded datagram goes in the sandbox: 127.0.0.1 or ::1 (the
/// host client's family first), whichever has a socket bound on `port`.
fn udp_destination(loopback: &Loopback, port: u16, ipv6: bool) -> SocketAddr {
    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port);
    let (first, second) = if ipv6 { (v6, v4) } else { (v4, v6) };
    if loopback.udp.lookup(first, |_| true).is_none() && loopback.udp.lookup(second, |_| true).is_some() {
        second
    } else {
        first
    }
}

/// Relays a forwarded UDP port for ever: each host client gets a socket of
/// its own in the sandbox (so that the server's replies find their way back),
/// connected to the sandbox's port on loopback. One thread waits in one poll
/// over the host sockets and an eventfd every flow's socket writes.
fn datagrams(net: &Arc<NetNamespace>, fwd: &Forward, wake: Arc<Wake>) {
    let loopback = &net.loopback;
    let cb: Arc<dyn WaitCallback> = wake.clone();
    let mut flows: Vec<Flow> = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let _ = wake.0.read();
        let now = std::time::Instant::now();
        // From the host.
        for (i, (listener, &ipv6)) in fwd.listeners.iter().zip(&fwd.ipv6).enumerate() {
            loop {
                let (n, client) = match host::receive(listener.as_fd(), &mut buf, MSG_DONTWAIT) {
                    Ok(got) => got,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // Would block, or an error an earlier send left (an ICMP
                    // unreachable from a client gone, which this call cleared).
                    Err(_) => break,
                };
                let at = match flows.iter().position(|f| f.listener == i && f.client == client) {
                    Some(at) => at,
                    None if flows.len() >= MAX_FLOWS => continue,
                    None => {
                        let dest = udp_destination(loopback, fwd.sandbox_port, ipv6);
                        let Ok(sock) = super::udp::UdpSocket::connect_from_host(net, dest) else { continue };
                        if let Some(q) = sock.wait_queue() {
                            q.register_callback(cb.clone());
                        }
                        flows.push(Flow { listener: i, client, sock, last: now });
                        flows.len() - 1
                    }
                };
                let flow = &mut flows[at];
                flow.last = now;
                let _ = flow.sock.send_from_host(loopback, &buf[..n]);
            }
        }
        // From the sandbox, back to each client (lost if the host socket is full, as UDP may be).
        for flow in &mut flows {
            while let Ok(data) = flow.sock.receive_to_host() {
                flow.last = now;
                if let Some(listener) = fwd.listeners.get(flow.listener) {
                    let _ = host::send(listener.as_fd(), &data, MSG_DONTWAIT | MSG_NOSIGNAL, Some(&flow.client));
                }
            }
        }
        flows.retain(|f| {
            let live = now.duration_since(f.last) < FLOW_IDLE;
            if !live {
                if let Some(q) = f.sock.wait_queue() {
                    q.unregister_callback(&cb);
                }
            }
            live
        });
        // Until a datagram comes either way, or the next flow expires.
        let next = flows.iter().map(|f| f.last + FLOW_IDLE).min();
        let timeout = match next {
            None => PollTimeout::NONE,
            Some(at) => {
                let ms = at.saturating_duration_since(std::time::Instant::now()).as_millis().saturating_add(1);
                PollTimeout::try_from(ms.min(60_000)).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds: Vec<PollFd> = fwd.listeners.iter().map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN)).collect();
        fds.push(PollFd::new(wake.0.as_fd(), PollFlags::POLLIN));
        match nix::poll::poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!("port {}/udp: poll: {e}; no longer forwarded", fwd.sandbox_port);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_listening_is_refused_and_datagrams_to_nobody_are_lost() {
        let net = NetNamespace::new(crate::task::UserNamespace::initial());
        let loopback = &net.loopback;
        for ipv6 in [false, true] {
            assert_eq!(connect_loopback(&net, 8000, ipv6).err().map(|e| e.code), Some(ErrnoCode::ECONNREFUSED));
            assert_eq!(udp_destination(loopback, 8000, ipv6).is_ipv6(), ipv6);
        }
        let dest = udp_destination(loopback, 8000, false);
        let flow = super::super::udp::UdpSocket::connect_from_host(&net, dest).unwrap();
        flow.send_from_host(loopback, b"to nobody").unwrap();
        assert_eq!(flow.send_from_host(loopback, &vec![0; 70000]).unwrap_err().code, ErrnoCode::EMSGSIZE);
        assert_eq!(flow.receive_to_host().unwrap_err().code, ErrnoCode::EAGAIN);
        // The flow's socket holds a port of its own while it lives.
        assert_eq!(loopback.udp.sockets().len(), 1);
        drop(flow);
        assert!(loopback.udp.sockets().is_empty());
    }
}
