//! UDP over loopback. A datagram goes straight into the queue of the socket
//! bound to its destination, or is dropped when there is none or its queue is
//! full, as on Linux's loopback, which loses nothing else. A connected socket
//! that sent to a port nobody has is told ECONNREFUSED by its next call, as
//! the ICMP port-unreachable makes Linux do; an unconnected one never hears,
//! unless it set IP_RECVERR (IPV6_RECVERR): then, connected or not, the error
//! is queued for recvmsg(MSG_ERRQUEUE) and pending too, as Linux's
//! __udp4_lib_err and __udp6_lib_err have it. Errors of datagrams through the
//! interface (`--network=sandbox`) are only the connected socket's pending one.
//!
//! A ping socket (SOCK_DGRAM with IPPROTO_ICMP or IPPROTO_ICMPV6, as
//! `ping` opens without privileges) is the same socket with ICMP echo for a
//! protocol: its port is the echo identifier, a send is an echo request, and
//! what it receives are the replies; on loopback the sandbox itself replies.
//!
//! A socket on the wildcard or the sandbox interface's address, or one that
//! sends beyond the sandbox (`--network=sandbox`), also has a port on the
//! interface (net/netstack/udp.rs), whose datagrams join the same queue.
//!
//! Lock order: a socket's `remote`, then the network stack's lock; otherwise
//! none nests: a socket's inbox (with its error queue), peer and pending error
//! are each taken alone.

use super::inet::{self, Endpoint, PortUser, Route, IPPROTO_IP, IPPROTO_IPV6};
use super::ip_control::{Arrival, IcmpError, Sending, IPV6_RECVERR, IP_RECVERR, LOOPBACK_INDEX};
use super::NetNamespace;
use super::netstack::udp::{PortKind, UdpPort};
use super::netstack::DatagramSink;
use super::{shutdown_sides, Ancillary, BufferSizes, Received, Socket, SocketInode, Timeouts, Way, MSG_DONTWAIT, MSG_ERRQUEUE, MSG_MORE, MSG_PEEK, SOCK_DGRAM};
use crate::task::Task;
use crate::vfs::{FileDescription, OpenFlags, StatusFlags, WaitQueue, POLLERR, POLLHUP, POLLIN, POLLOUT};
use rvisor_abi::{error, ErrnoCode, SysResult};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

const IPPROTO_UDP: i32 = 17;
const IPPROTO_ICMP: i32 = 1;
const IPPROTO_ICMPV6: i32 = 58;
/// ICMP echo request and reply types, for IPv4 and IPv6.
const ECHO_REQUEST: [u8; 2] = [8, 128];
const ECHO_REPLY: [u8; 2] = [0, 129];
const POLLRDHUP: u32 = 0x2000;
/// The largest payload: 65535 bytes less the UDP header, and for IPv4 less
/// the IP header too.
const MAX_PAYLOAD_V4: usize = 65535 - 8 - 20;
const MAX_PAYLOAD_V6: usize = 65535 - 8;

struct Datagram {
    data: Vec<u8>,
    /// The sender's address, canonical.
    from: SocketAddr,
    arrival: Arrival,
    /// What it costs of the receive buffer (its sk_buff's truesize).
    size: usize,
}

/// What a queued error costs of the receive buffer besides its payload, as
/// an sk_buff's truesize makes Linux count it.
const QUEUED_OVERHEAD: usize = 512;

#[derive(Default)]
struct Inbox {
    msgs: VecDeque<Datagram>,
    /// What `msgs` cost of the receive buffer.
    msgs_size: usize,
    /// The error queue (IP_RECVERR), and what it costs of the receive
    /// buffer, which it shares with `msgs` as Linux's sk_rmem_alloc.
    errors: VecDeque<IcmpError>,
    error_bytes: usize,
    read_shut: bool,
    write_shut: bool,
    /// Datagrams dropped for a full receive buffer (Linux's sk_drops).
    drops: u32,
}

impl Inbox {
    /// Queues an error unless the receive buffer `rcvbuf` is full (Linux's
    /// sock_queue_err_skb drops it then).
    fn queue_error(&mut self, e: IcmpError, rcvbuf: usize) {
        let cost = e.payload.len() + QUEUED_OVERHEAD;
        if self.charged() + cost < rcvbuf {
            self.error_bytes += cost;
            self.errors.push_back(e);
        }
    }

    /// What the queues take of the receive buffer (Linux's sk_rmem_alloc).
    fn charged(&self) -> usize {
        self.msgs_size + self.error_bytes
    }

    /// Queues a datagram unless it would pass the receive buffer `rcvbuf`
    /// (one always fits an empty buffer: Linux's
    /// __udp_enqueue_schedule_skb), else counts it dropped; whether it did.
    fn push(&mut self, d: Datagram, rcvbuf: usize) -> bool {
        if self.read_shut {
            return false;
        }
        let charged = self.charged();
        if charged != 0 && charged + d.size > rcvbuf {
            self.drops = self.drops.wrapping_add(1);
            return false;
        }
        self.msgs_size += d.size;
        self.msgs.push_back(d);
        true
    }

    fn pop(&mut self) -> Option<Datagram> {
        let d = self.msgs.pop_front()?;
        self.msgs_size -= d.size;
        Some(d)
    }

    fn pop_error(&mut self) -> Option<IcmpError> {
        let e = self.errors.pop_front()?;
        self.error_bytes -= e.payload.len() + QUEUED_OVERHEAD;
        Some(e)
    }
}

/// An AF_INET or AF_INET6 datagram socket.
pub struct UdpSocket {
    ep: Endpoint,
    ino: SocketInode,
    me: Weak<UdpSocket>,
    flags: StatusFlags,
    /// Woken when a datagram or an error arrives.
    queue: Arc<WaitQueue>,
    inbox: Mutex<Inbox>,
    /// connect(2)'s peer, canonical: where sends without an address go, and
    /// the only sender it hears.
    peer: Mutex<Option<SocketAddr>>,
    /// A pending error (SO_ERROR): ECONNREFUSED after sending to nobody.
    error: Mutex<Option<ErrnoCode>>,
    timeouts: Timeouts,
    /// SO_RCVBUF bounds its queue; SO_SNDBUF only reads back (a loopback
    /// datagram leaves its sender's buffer as it arrives).
    buffers: BufferSizes,
    /// Its port on the sandbox's interface, once it has one.
    remote: Mutex<Option<UdpPort>>,
    /// UDP, or ICMP echo (a ping socket).
    kind: PortKind,
    /// A datagram being built (Linux's corked `up->pending`). Not held across
    /// a send.
    cork: Mutex<Cork>,
}

/// UDP_CORK, and the datagram that sends with MSG_MORE or under UDP_CORK
/// build: it leaves whole with the first send without either, or when
/// UDP_CORK is cleared, to where the first send addressed it.
#[derive(Default)]
struct Cork {
    on: bool,
    pending: Option<Corked>,
}

struct Corked {
    data: Vec<u8>,
    to: Option<Vec<u8>>,
    anc: Ancillary,
}

/// setsockopt(IPPROTO_UDP, UDP_CORK).
const UDP_CORK: i32 = 1;

impl PortUser for UdpSocket {
    fn listening(&self) -> bool {
        false
    }
}

impl UdpSocket {
    /// socket(2) by a task whose fsuid is `uid`.
    pub fn new(net: &Arc<NetNamespace>, domain: i32, flags: u32, uid: u32) -> Arc<UdpSocket> {
        UdpSocket::make(net, domain, flags, PortKind::Udp, uid)
    }

    /// A ping socket. Linux lets only the groups of net.ipv4.ping_group_range
    /// have one; the sandbox lets every process, as runsc does.
    pub fn new_ping(net: &Arc<NetNamespace>, domain: i32, flags: u32, uid: u32) -> Arc<UdpSocket> {
        UdpSocket::make(net, domain, flags, PortKind::Echo, uid)
    }

    fn make(net: &Arc<NetNamespace>, domain: i32, flags: u32, kind: PortKind, uid: u32) -> Arc<UdpSocket> {
        Arc::new_cyclic(|me| UdpSocket {
            ep: Endpoint::new(net, domain, uid),
            ino: SocketInode::new(),
            me: me.clone(),
            flags: StatusFlags::new(flags | OpenFlags::RDWR),
            queue: Arc::default(),
            inbox: Mutex::default(),
            peer: Mutex::default(),
            error: Mutex::default(),
            timeouts: Timeouts::default(),
            buffers: BufferSizes::default(),
            remote: Mutex::default(),
            kind,
            cork: Mutex::default(),
        })
    }

    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn peer(&self) -> Option<SocketAddr> {
        *self.peer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error(&self) -> MutexGuard<'_, Option<ErrnoCode>> {
        self.error.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn nonblock(&self, flags: u32) -> bool {
        flags & MSG_DONTWAIT != 0 || self.flags.get() & OpenFlags::NONBLOCK != 0
    }

    /// Its namespace's ports (echo identifiers) of its protocol.
    fn ports(&self) -> &inet::Ports<UdpSocket> {
        match self.kind {
            PortKind::Udp => &self.ep.net.loopback.udp,
            PortKind::Echo => &self.ep.net.loopback.ping,
        }
    }

    fn autobind(&self, t: &Task) -> SysResult<()> {
        self.ep.autobind(t, self.ports(), &self.me)?;
        self.take_remote_port(false)
    }

    /// Takes its port on the interface too, when it is bound where datagrams
    /// from there reach it (the wildcard, the interface's address), or
    /// `sending` there. ENETUNREACH: it is bound to loopback and sends out.
    fn take_remote_port(&self, sending: bool) -> SysResult<()> {
        let Some(net) = &self.ep.net.netstack else { return Ok(()) };
        let mut remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        let local = self.ep.local();
        if remote.is_some() || local.port() == 0 {
            return Ok(());
        }
        if !local.ip().is_unspecified() && !net.is_own(local.ip()) {
            return if sending { error!(ENETUNREACH) } else { Ok(()) };
        }
        let me: std::sync::Weak<dyn DatagramSink> = self.me.clone();
        *remote = Some(UdpPort::bind(net, local, me, self.kind)?);
        Ok(())
    }

    /// Sends through the interface to `dest`, from `source` if given.
    fn send_remote(&self, data: &[u8], dest: SocketAddr, source: Option<std::net::IpAddr>) -> SysResult<usize> {
        self.take_remote_port(true)?;
        let remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        let Some(port) = remote.as_ref() else { return error!(ENETUNREACH) };
        port.send(data, dest, source)?;
        Ok(data.len())
    }

    /// Whether it takes a datagram from the canonical `from`: any, unless
    /// connected to another peer.
    fn hears(&self, from: SocketAddr) -> bool {
        self.peer().is_none_or(|p| p == from)
    }

    /// Queues a datagram unless the queue is full (then it is lost).
    fn deliver(&self, data: &[u8], from: SocketAddr, arrival: Arrival) {
        let size = super::skb::udp_datagram(data.len(), self.ep.domain == inet::AF_INET6);
        if self.inbox().push(Datagram { data: data.to_vec(), from, arrival, size }, self.buffers.get(Way::Receive)) {
            self.queue.notify_events(POLLIN);
        }
    }

    /// How a datagram it sends to the canonical `dest` on loopback arrives.
    fn loopback_arrival(&self, dest: SocketAddr, sending: &Sending) -> Arrival {
        let (ttl, tos) = self.ep.ttl_and_tos(dest.ip(), sending);
        Arrival::now(dest, LOOPBACK_INDEX, ttl, tos)
    }

    fn max_payload(&self) -> usize {
        if self.ep.domain == inet::AF_INET { MAX_PAYLOAD_V4 } else { MAX_PAYLOAD_V6 }
    }

    fn v6(&self) -> usize {
        usize::from(self.ep.domain == inet::AF_INET6)
    }

    /// A ping socket's send: an echo request (EINVAL for anything else, as
    /// Linux's ping_common_sendmsg), which goes out with its own identifier.
    fn echo_request(&self, data: &[u8]) -> SysResult<Vec<u8>> {
        if data.len() < 8 || data[0] != ECHO_REQUEST[self.v6()] || data[1] != 0 {
            return error!(EINVAL);
        }
        let mut req = data.to_vec();
        req[4..6].copy_from_slice(&self.ep.local().port().to_be_bytes());
        req[2..4].fill(0);
        Ok(req)
    }

    /// The reply loopback gives to `req` (already with its identifier), as
    /// the socket receives it: checksummed, so that ping finds nothing amiss.
    fn echo_reply(&self, req: &[u8], to: std::net::IpAddr) -> Vec<u8> {
        let mut reply = req.to_vec();
        reply[0] = ECHO_REPLY[self.v6()];
        let sum = match to {
            std::net::IpAddr::V6(a) => {
                // IPv6's checksum covers a pseudo-header: source, destination
                // (both the address pinged), length, next header.
                let mut pseudo = [a.octets(), a.octets()].concat();
                pseudo.extend_from_slice(&(reply.len() as u32).to_be_bytes());
                pseudo.extend_from_slice(&[0, 0, 0, IPPROTO_ICMPV6 as u8]);
                internet_checksum(&[&pseudo, &reply])
            }
            std::net::IpAddr::V4(_) => internet_checksum(&[&reply]),
        };
        reply[2..4].copy_from_slice(&sum.to_be_bytes());
        reply
    }
}

/// RFC 1071's checksum over the concatenation of `parts` (each of even length
/// but the last).
fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Datagrams forwarded from outside the sandbox: a host client of a forwarded
/// UDP port (`rvisor do -p .../udp`, net/forward.rs) is a socket of these,
/// connected on loopback to the sandbox's port, as a program of the sandbox
/// would have. No task makes these calls, and none blocks.
impl UdpSocket {
    /// A socket of the family of `dest` (a canonical loopback address) on an
    /// ephemeral port, connected to `dest`.
    pub fn connect_from_host(net: &Arc<NetNamespace>, dest: SocketAddr) -> SysResult<Arc<UdpSocket>> {
        let domain = if dest.is_ipv4() { inet::AF_INET } else { inet::AF_INET6 };
        let s = UdpSocket::new(net, domain, 0, 0);
        s.ep.bind_ephemeral(&net.loopback.udp, &s.me)?;
        s.ep.set_local(s.ep.source_for(dest));
        *s.peer.lock().unwrap_or_else(|e| e.into_inner()) = Some(dest);
        Ok(s)
    }

    /// Sends a datagram to its peer; lost, as on loopback, when nothing is
    /// bound there that hears it or its queue is full. EMSGSIZE beyond what
    /// one datagram holds.
    pub fn send_from_host(&self, loopback: &super::Loopback, data: &[u8]) -> SysResult<()> {
        if data.len() > self.max_payload() {
            return error!(EMSGSIZE);
        }
        let Some(dest) = self.peer() else { return error!(EDESTADDRREQ) };
        let from = self.ep.source_for(dest);
        if let Some(receiver) = loopback.udp.lookup(dest, |r| r.hears(from)) {
            receiver.deliver(data, from, self.loopback_arrival(dest, &Sending::default()));
        }
        Ok(())
    }

    /// The next datagram from its peer, EAGAIN when none is queued.
    pub fn receive_to_host(&self) -> SysResult<Vec<u8>> {
        let mut q = self.inbox();
        let m = q.pop().ok_or_else(|| rvisor_abi::errno!(EAGAIN))?;
        Ok(m.data)
    }
}

impl DatagramSink for UdpSocket {
    fn deliver(&self, data: &[u8], from: SocketAddr, arrival: Arrival) {
        let from = SocketAddr::new(from.ip().to_canonical(), from.port());
        if self.hears(from) {
            UdpSocket::deliver(self, data, from, arrival);
        }
    }

    /// Only a connected socket hears of it, as on Linux without IP_RECVERR.
    fn unreachable(&self, dest: SocketAddr, errno: ErrnoCode) {
        if self.peer() == Some(SocketAddr::new(dest.ip().to_canonical(), dest.port())) {
            *self.error() = Some(errno);
            self.queue.notify_events(POLLERR);
        }
    }
}

impl UdpSocket {
    /// Where a datagram to `to`, or to the peer, goes.
    fn route(&self, to: Option<&[u8]>) -> SysResult<Route> {
        match to {
            Some(raw) => inet::route(&self.ep.net, inet::parse(self.ep.domain, raw)?, self.ep.v6only()),
            None => {
                let peer = self.peer().ok_or_else(|| rvisor_abi::errno!(EDESTADDRREQ))?;
                inet::route(&self.ep.net, peer, false)
            }
        }
    }

    /// Sends one datagram; the sender gets a port first if it has none (before
    /// any check, as Linux's inet_send_prepare).
    fn send_datagram(&self, t: &Task, data: &[u8], anc: Ancillary, to: Option<&[u8]>) -> SysResult<usize> {
        self.autobind(t)?;
        if !anc.is_empty() {
            return error!(EINVAL);
        }
        let route = self.route(to)?;
        let request = match self.kind {
            PortKind::Echo => Some(self.echo_request(data)?),
            PortKind::Udp => None,
        };
        let (Route::Local(dest) | Route::Remote(dest)) = route;
        let net = &self.ep.net;
        let interface = net.netstack.as_ref().map(|n| n.info.index);
        let local = matches!(route, Route::Local(_));
        let sending = self.ep.sending(&anc.ip, dest.ip(), |a| if local { inet::is_local(net, a) } else { net.netstack.as_ref().is_some_and(|n| n.is_own(a)) }, |i| i == LOOPBACK_INDEX || Some(i) == interface)?;
        if !local {
            if data.len() > self.max_payload() {
                return error!(EMSGSIZE);
            }
            return self.send_remote(request.as_deref().unwrap_or(data), dest, sending.source).map(|_| data.len());
        }
        let from = match sending.source {
            Some(ip) => SocketAddr::new(ip, self.ep.local().port()),
            None => self.ep.source_for(dest),
        };
        if let Some(req) = request {
            // Loopback answers at once, from the address pinged.
            let arrival = self.loopback_arrival(SocketAddr::new(from.ip(), 0), &Sending::default());
            self.deliver(&self.echo_reply(&req, dest.ip()), SocketAddr::new(dest.ip(), 0), arrival);
            return Ok(data.len());
        }
        if data.len() > self.max_payload() {
            return error!(EMSGSIZE);
        }
        if let Some(e) = self.error().take() {
            return Err(rvisor_abi::Errno::new(e));
        }
        if self.inbox().write_shut {
            return error!(EPIPE);
        }
        match self.ep.net.loopback.udp.lookup(dest, |r| r.hears(from)) {
            Some(receiver) => receiver.deliver(data, from, self.loopback_arrival(dest, &sending)),
            None => self.port_unreachable(data, dest),
        }
        Ok(data.len())
    }

    /// The ICMP port unreachable its datagram `data` to the canonical `dest`
    /// brings back: queued if it asked (IP_RECVERR), and then, or when it is
    /// connected to `dest`, its pending error.
    fn port_unreachable(&self, data: &[u8], dest: SocketAddr) {
        let e = IcmpError::port_unreachable(data, dest);
        let errno = e.errno();
        let queued = self.ep.queues_errors(dest.ip());
        if queued {
            self.inbox().queue_error(e, self.buffers.get(Way::Receive));
        }
        if queued || self.peer() == Some(dest) {
            *self.error() = Some(errno);
            self.queue.notify_events(POLLERR);
        }
    }

    /// A UDP socket shows as connected (1) or not (7), as Linux's.
    pub fn proc_net_row(&self) -> inet::ProcNetRow {
        let remote = self.peer().map(|p| inet::in_domain(self.ep.domain, p));
        let state = if remote.is_some() { 1 } else { 7 };
        let (queued, drops) = {
            let q = self.inbox();
            (q.charged(), q.drops)
        };
        inet::ProcNetRow { domain: self.ep.domain, local: self.ep.local(), remote, state, queued, sent: 0, uid: self.ep.uid, inode: self.ino.number(), v6only: self.ep.v6only(), drops: Some(drops) }
    }
}

impl Socket for UdpSocket {
    fn domain(&self) -> i32 {
        self.ep.domain
    }

    /// UDP's receive ignores MSG_OOB, as Linux's udp_recvmsg; its send and
    /// ping sockets refuse it.
    fn takes_oob(&self, receiving: bool) -> bool {
        receiving && self.kind == PortKind::Udp
    }

    fn kind(&self) -> i32 {
        SOCK_DGRAM
    }

    fn protocol(&self) -> i32 {
        match (self.kind, self.ep.domain) {
            (PortKind::Udp, _) => IPPROTO_UDP,
            (PortKind::Echo, inet::AF_INET) => IPPROTO_ICMP,
            (PortKind::Echo, _) => IPPROTO_ICMPV6,
        }
    }

    fn bind(&self, t: &Task, addr: &[u8]) -> SysResult<()> {
        let addr = inet::parse(self.ep.domain, addr)?;
        self.ep.bind(t, addr, self.ports(), &self.me)?;
        self.take_remote_port(false)
    }

    fn listen(&self, _t: &Task, _backlog: i32) -> SysResult<()> {
        error!(EOPNOTSUPP)
    }

    /// connect(2) names its peer (nothing need be bound there); AF_UNSPEC
    /// forgets it, and gives back the address and port bind(2) did not choose.
    fn connect(&self, t: &Task, addr: &[u8]) -> SysResult<()> {
        if inet::is_unspec(addr) {
            *self.peer.lock().unwrap_or_else(|e| e.into_inner()) = None;
            self.ep.release_unchosen(self.ports(), self);
            if self.ep.local().port() == 0 {
                *self.remote.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
            return Ok(());
        }
        let route = inet::route(&self.ep.net, inet::parse(self.ep.domain, addr)?, self.ep.v6only())?;
        self.autobind(t)?;
        let dest = match route {
            Route::Local(dest) => {
                self.ep.set_local(self.ep.source_for(dest));
                dest
            }
            Route::Remote(dest) => {
                self.take_remote_port(true)?;
                let source = self.ep.net.netstack.as_ref().and_then(|n| n.lock().source_for(dest.ip()));
                if let (Some(ip), true) = (source, self.ep.local().ip().is_unspecified()) {
                    self.ep.set_local(SocketAddr::new(ip, self.ep.local().port()));
                }
                dest
            }
        };
        *self.peer.lock().unwrap_or_else(|e| e.into_inner()) = Some(dest);
        Ok(())
    }

    fn accept(&self, _t: &Task) -> SysResult<super::Accepted> {
        error!(EOPNOTSUPP)
    }

    /// A datagram to `to`, or to the peer; with MSG_MORE or UDP_CORK, a part
    /// of one (a ping socket sends each at once, as Linux's).
    fn send(&self, t: &Task, data: &[u8], flags: u32, anc: Ancillary, to: Option<&[u8]>) -> SysResult<usize> {
        if self.kind == PortKind::Echo {
            return self.send_datagram(t, data, anc, to);
        }
        let mut cork = self.cork.lock().unwrap_or_else(|e| e.into_inner());
        let more = flags & MSG_MORE != 0 || cork.on;
        let whole = match cork.pending.take() {
            None if !more => {
                drop(cork);
                return self.send_datagram(t, data, anc, to);
            }
            None => {
                // The address is checked by the first part, as Linux's.
                self.autobind(t)?;
                self.route(to)?;
                Corked { data: data.to_vec(), to: to.map(<[u8]>::to_vec), anc }
            }
            Some(mut c) => {
                c.data.extend_from_slice(data);
                c
            }
        };
        if whole.data.len() > self.max_payload() {
            // The whole datagram is dropped, as Linux's udp_flush_pending_frames.
            return error!(EMSGSIZE);
        }
        if more {
            cork.pending = Some(whole);
            return Ok(data.len());
        }
        drop(cork);
        self.send_datagram(t, &whole.data, whole.anc, whole.to.as_deref()).map(|_| data.len())
    }

    /// The next datagram, cut to `max` (with its full length), and its sender.
    fn receive(&self, t: &Task, max: usize, flags: u32) -> SysResult<Received> {
        let peek = flags & MSG_PEEK != 0;
        let limit = self.timeouts.limit(Way::Receive);
        loop {
            if let Some(e) = self.error().take() {
                return Err(rvisor_abi::Errno::new(e));
            }
            {
                let mut q = self.inbox();
                let taken = if peek { q.msgs.front().map(|m| Datagram { data: m.data.clone(), ..*m }) } else { q.pop() };
                if let Some(mut m) = taken {
                    let full = m.data.len();
                    m.data.truncate(max);
                    let from = Some(inet::sockaddr(inet::in_domain(self.ep.domain, m.from)));
                    return Ok(Received { data: m.data, full, from, control: self.ep.arrival_control(&m.arrival), ..Received::default() });
                }
                if q.read_shut {
                    return Ok(Received::default());
                }
            }
            if self.nonblock(flags) {
                return error!(EAGAIN);
            }
            let ready = || {
                let q = self.inbox();
                !q.msgs.is_empty() || q.read_shut || self.error().is_some()
            };
            let remote = self.remote.lock().unwrap_or_else(|e| e.into_inner()).is_some();
            match self.ep.net.netstack.as_ref().filter(|_| remote) {
                // Datagrams from the interface: it waits for their frames itself.
                Some(net) => limit.block_with(|deadline| net.block(t, &self.queue, deadline, ready))?,
                None => {
                    self.queue.register(&t.thread);
                    let r = limit.block(t, ready);
                    self.queue.unregister(&t.thread);
                    r?;
                }
            }
        }
    }

    /// The oldest queued error. The pending error becomes the next one's, or
    /// none, as Linux's sock_dequeue_err_skb.
    fn receive_error(&self, _t: &Task, max: usize, _flags: u32) -> SysResult<Received> {
        let (e, next) = {
            let mut q = self.inbox();
            let e = q.pop_error().ok_or_else(|| rvisor_abi::errno!(EAGAIN))?;
            (e, q.errors.front().map(IcmpError::errno))
        };
        *self.error() = next;
        if next.is_some() {
            self.queue.notify_events(POLLERR);
        }
        let (name, control) = self.ep.error_message(&e);
        let full = e.payload.len();
        let mut data = e.payload;
        data.truncate(max);
        Ok(Received { data, full, from: Some(name), control: vec![control], flags: MSG_ERRQUEUE, ..Received::default() })
    }

    /// shutdown(2) shuts its own sides; without a peer Linux does that and
    /// still says ENOTCONN.
    fn shutdown(&self, how: i32) -> SysResult<()> {
        let (rd, wr) = shutdown_sides(how)?;
        {
            let mut q = self.inbox();
            q.read_shut |= rd;
            q.write_shut |= wr;
        }
        self.queue.notify();
        if self.peer().is_none() { error!(ENOTCONN) } else { Ok(()) }
    }

    fn name(&self) -> Vec<u8> {
        inet::sockaddr(self.ep.local())
    }

    fn peer_name(&self) -> SysResult<Vec<u8>> {
        let peer = self.peer().ok_or_else(|| rvisor_abi::errno!(ENOTCONN))?;
        Ok(inet::sockaddr(inet::in_domain(self.ep.domain, peer)))
    }

    fn listening(&self) -> bool {
        false
    }

    fn take_error(&self) -> Option<ErrnoCode> {
        self.error().take()
    }

    fn get_option(&self, _t: &Task, level: i32, name: i32) -> SysResult<Vec<u8>> {
        if (level, name, self.kind) == (IPPROTO_UDP, UDP_CORK, PortKind::Udp) {
            return Ok(i32::from(self.cork.lock().unwrap_or_else(|e| e.into_inner()).on).to_ne_bytes().to_vec());
        }
        self.ep.get_option(SOCK_DGRAM, level, name)
    }

    /// Clearing UDP_CORK sends what it held; that send's error is lost, as
    /// Linux's udp_lib_setsockopt loses it. Clearing IP_RECVERR or
    /// IPV6_RECVERR empties the error queue, as Linux's.
    fn set_option(&self, t: &Task, level: i32, name: i32, value: &[u8]) -> SysResult<()> {
        if (level, name, self.kind) == (IPPROTO_UDP, UDP_CORK, PortKind::Udp) {
            let on = super::int_option(value)? != 0;
            let mut cork = self.cork.lock().unwrap_or_else(|e| e.into_inner());
            cork.on = on;
            let held = if on { None } else { cork.pending.take() };
            drop(cork);
            if let Some(c) = held {
                let _ = self.send_datagram(t, &c.data, c.anc, c.to.as_deref());
            }
            return Ok(());
        }
        self.ep.set_option(SOCK_DGRAM, level, name, value)?;
        if matches!((level, name), (IPPROTO_IP, IP_RECVERR) | (IPPROTO_IPV6, IPV6_RECVERR)) && super::int_option(value)? == 0 {
            let mut q = self.inbox();
            q.errors.clear();
            q.error_bytes = 0;
        }
        Ok(())
    }

    fn timeouts(&self) -> Option<&Timeouts> {
        Some(&self.timeouts)
    }

    fn buffer_sizes(&self) -> Option<&BufferSizes> {
        Some(&self.buffers)
    }
}

impl FileDescription for UdpSocket {
    super::socket_file_basics!(MAX_PAYLOAD_V6 + 1);

    fn readiness(&self, mask: u32) -> u32 {
        let mut ev = POLLOUT;
        {
            let q = self.inbox();
            if !q.msgs.is_empty() {
                ev |= POLLIN;
            }
            if q.read_shut {
                ev |= POLLIN | POLLRDHUP;
            }
            if q.read_shut && q.write_shut {
                ev |= POLLHUP;
            }
            if !q.errors.is_empty() {
                ev |= POLLERR;
            }
        }
        if self.error().is_some() {
            ev |= POLLERR;
        }
        ev & (mask | POLLHUP | POLLERR)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    /// FIONREAD: the size of the next datagram; SIOCOUTQ: nothing waits to
    /// go; and the interface ioctls.
    fn ioctl(&self, t: &Task, request: u32, arg: u64) -> SysResult<u64> {
        const FIONREAD: u32 = 0x541B;
        const SIOCOUTQ: u32 = 0x5411;
        if super::interface::is_interface_ioctl(request) {
            return super::interface::ioctl(t, request, arg);
        }
        let n = match request {
            FIONREAD => self.inbox().msgs.front().map_or(0, |m| m.data.len()),
            SIOCOUTQ => 0,
            _ => return error!(ENOTTY),
        };
        t.mm.write_obj(crate::mm::UserRef::new(rvisor_abi::UserAddr(arg)), &(n as i32)).map(|()| 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::BUFFER;

    /// A program sending empty datagrams cannot grow the queue without
    /// bound, and one datagram always fits an empty queue.
    #[test]
    fn empty_datagrams_are_bounded_too() {
        let mut q = Inbox::default();
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let arrival = Arrival { dest: from, ifindex: 1, ttl: 64, tos: 0, at: 0 };
        let datagram = |len: usize| Datagram { data: vec![0; len], from, arrival, size: crate::net::skb::udp_datagram(len, false) };
        let queued = (0..100_000).filter(|_| q.push(datagram(0), BUFFER)).count();
        assert_eq!(queued, BUFFER / 832);
        assert_eq!(q.drops as usize, 100_000 - queued);
        q.msgs.clear();
        q.msgs_size = 0;
        assert!(q.push(datagram(2 * BUFFER), 4608), "one datagram always fits an empty queue");
        assert!(!q.push(datagram(0), 4608));
    }

    #[test]
    fn error_queue_is_bounded() {
        let mut q = Inbox::default();
        let dest: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for _ in 0..10_000 {
            q.queue_error(IcmpError::port_unreachable(&[], dest), BUFFER);
        }
        assert_eq!(q.errors.len(), (BUFFER - 1) / QUEUED_OVERHEAD);
        assert!(q.error_bytes < BUFFER);
        let big = || IcmpError::port_unreachable(&[1; 5000], dest);
        q.pop_error().unwrap();
        q.queue_error(big(), BUFFER);
        assert_eq!(q.errors.len(), (BUFFER - 1) / QUEUED_OVERHEAD - 1, "one quote does not fit in one empty one's room");
        q.pop_error().unwrap();
        q.pop_error().unwrap();
        q.queue_error(big(), BUFFER);
        assert_eq!(q.errors.back().unwrap().payload.len(), 520, "ICMP quotes 520 bytes of an IPv4 datagram's payload");
    }
}
