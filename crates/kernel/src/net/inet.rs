//! AF_INET and AF_INET6 addressing on the sandbox's one interface, loopback:
//! 127.0.0.0/8 and ::1 are the local addresses, every other destination is
//! unreachable (ENETUNREACH), as in a runsc sandbox with `--network=none`.
//! Also the port tables (one for TCP, one for UDP: `Ports`), and the IP-level
//! options, which the sockets keep but which change nothing on loopback.
//!
//! An AF_INET6 socket talks to IPv4 peers through v4-mapped addresses
//! (::ffff:127.0.0.1) unless IPV6_V6ONLY is set; the port tables compare
//! addresses in their canonical form, so ::ffff:127.0.0.1 and 127.0.0.1 meet.

use super::ip_control::{checked_option, get_timestamps, is_timestamp_option, set_timestamps, DEFAULT_TTL, IPV6_RECVERR, IPV6_RECVERR_RFC4884, IPV6_RECVHOPLIMIT, IPV6_RECVORIGDSTADDR, IPV6_RECVPKTINFO, IPV6_RECVTCLASS, IPV6_TCLASS, IPV6_UNICAST_HOPS, IP_PKTINFO, IP_RECVERR, IP_RECVERR_RFC4884, IP_RECVORIGDSTADDR, IP_RECVTOS, IP_RECVTTL, IP_TOS, IP_TTL};
use super::NetNamespace;
use crate::task::Task;
use rvisor_abi::structs::{SockaddrIn, SockaddrIn6};
use rvisor_abi::{consts, error, SysResult};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use zerocopy::{FromBytes, IntoBytes};

pub const AF_INET: i32 = 2;
pub const AF_INET6: i32 = 10;
const AF_UNSPEC: u16 = 0;
/// The shortest sockaddr_in6 Linux takes (RFC 2133's, without sin6_scope_id).
const SIN6_LEN_RFC2133: usize = 24;

/// Reads the address a socket of `domain` was given: a sockaddr_in for
/// AF_INET, a sockaddr_in6 for AF_INET6 (EINVAL when too short for one,
/// EAFNOSUPPORT for another family). AF_UNSPEC with the wildcard binds an
/// AF_INET socket, as Linux allows for old programs.
pub fn parse(domain: i32, raw: &[u8]) -> SysResult<SocketAddr> {
    if domain == AF_INET {
        let Ok((sin, _)) = SockaddrIn::read_from_prefix(raw) else { return error!(EINVAL) };
        let ip = Ipv4Addr::from(sin.addr);
        if i32::from(sin.family) != AF_INET && !(sin.family == AF_UNSPEC && ip.is_unspecified()) {
            return error!(EAFNOSUPPORT);
        }
        return Ok(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be_bytes(sin.port))));
    }
    if raw.len() < SIN6_LEN_RFC2133 {
        return error!(EINVAL);
    }
    let mut full = [0u8; std::mem::size_of::<SockaddrIn6>()];
    let n = raw.len().min(full.len());
    full[..n].copy_from_slice(&raw[..n]);
    let Ok(sin6) = SockaddrIn6::read_from_bytes(&full) else { return error!(EINVAL) };
    if i32::from(sin6.family) != AF_INET6 {
        return error!(EAFNOSUPPORT);
    }
    let ip = Ipv6Addr::from(sin6.addr);
    Ok(SocketAddr::V6(SocketAddrV6::new(ip, u16::from_be_bytes(sin6.port), sin6.flowinfo, sin6.scope_id)))
}

/// The family of a raw address, when it has one.
pub fn family(raw: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes([*raw.first()?, *raw.get(1)?]))
}

/// Whether a raw address is AF_UNSPEC (connect(2) to it disconnects).
pub fn is_unspec(raw: &[u8]) -> bool {
    family(raw) == Some(AF_UNSPEC)
}

/// A whole sockaddr_in or sockaddr_in6 for an address.
pub fn sockaddr(addr: SocketAddr) -> Vec<u8> {
    match addr {
        SocketAddr::V4(a) => {
            let sin = SockaddrIn { family: AF_INET as u16, port: a.port().to_be_bytes(), addr: a.ip().octets(), zero: [0; 8] };
            sin.as_bytes().to_vec()
        }
        SocketAddr::V6(a) => {
            let sin6 = SockaddrIn6 { family: AF_INET6 as u16, port: a.port().to_be_bytes(), flowinfo: a.flowinfo(), addr: a.ip().octets(), scope_id: a.scope_id() };
            sin6.as_bytes().to_vec()
        }
    }
}

/// The unbound address of a socket of `domain`: the wildcard, port 0.
pub fn unbound(domain: i32) -> SocketAddr {
    if domain == AF_INET { SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0) } else { SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0) }
}

/// `addr` as a socket of `domain` names it: an IPv4 address is v4-mapped for
/// an AF_INET6 socket.
pub fn in_domain(domain: i32, addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) if domain == AF_INET6 => SocketAddr::new(IpAddr::V6(a.ip().to_ipv6_mapped()), a.port()),
        _ => addr,
    }
}

/// Whether a bind(2) to `ip` may work: a loopback address, the wildcard, or
/// an address of the sandbox's interface.
pub fn is_local(net: &NetNamespace, ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    ip.is_loopback() || ip.is_unspecified() || net.netstack.as_ref().is_some_and(|n| n.is_own(ip))
}

/// Where a connection or datagram goes: to a socket of the sandbox (on
/// loopback, or on one of its interface's addresses), or out through the
/// interface. The address is canonical.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Route {
    Local(SocketAddr),
    Remote(SocketAddr),
}

/// The route to `addr`: the sandbox's own addresses are local, others go
/// through the interface if it reaches them, else ENETUNREACH.
pub fn route(net: &NetNamespace, addr: SocketAddr, v6only: bool) -> SysResult<Route> {
    let ip = addr.ip().to_canonical();
    if let Some(net) = &net.netstack {
        // A v4-mapped address from an IPV6_V6ONLY socket goes nowhere (below).
        let v4_refused = v6only && ip.is_ipv4() && addr.is_ipv6();
        if !v4_refused && !ip.is_loopback() && !ip.is_unspecified() {
            if net.is_own(ip) {
                return Ok(Route::Local(SocketAddr::new(ip, addr.port())));
            }
            if net.reaches(ip) {
                return Ok(Route::Remote(SocketAddr::new(ip, addr.port())));
            }
        }
    }
    destination(addr, v6only).map(Route::Local)
}

/// Where a packet to `addr` goes: to this host's loopback (the wildcard means
/// it too, as in Linux), else nowhere (ENETUNREACH). A v4-mapped address from
/// an AF_INET6 socket that has IPV6_V6ONLY is unreachable too.
pub fn destination(addr: SocketAddr, v6only: bool) -> SysResult<SocketAddr> {
    let ip = match addr.ip() {
        IpAddr::V6(v6) if v6only && v6.to_ipv4_mapped().is_some() => return error!(ENETUNREACH),
        ip => ip.to_canonical(),
    };
    let ip = match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip if ip.is_loopback() => ip,
        _ => return error!(ENETUNREACH),
    };
    Ok(SocketAddr::new(ip, addr.port()))
}

/// The address a socket bound to `local` (or unbound: the wildcard) sends
/// from to the canonical local destination `dest`: its own address, else the
/// destination itself (loopback, or the interface's address it is sent to).
pub fn source_for(local: IpAddr, dest: IpAddr) -> IpAddr {
    let local = local.to_canonical();
    if !local.is_unspecified() {
        return local;
    }
    match dest {
        IpAddr::V4(a) if a.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_loopback() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        own => own,
    }
}

/// The port range autobind takes ports from (Linux's ip_local_port_range).
const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;

/// EACCES for a privileged port (not 0, below the namespace's
/// `ip_unprivileged_port_start`, 1024 by default) without CAP_NET_BIND_SERVICE.
pub fn may_bind_port(t: &Task, net: &NetNamespace, port: u16) -> SysResult<()> {
    if port != 0 && port < net.unprivileged_port_start && !t.tg.capable_in(&net.owner, consts::CAP_NET_BIND_SERVICE) {
        return error!(EACCES);
    }
    Ok(())
}

/// What the port table needs to know of a socket to judge a bind.
pub trait PortUser: Send + Sync {
    fn listening(&self) -> bool;
}

/// One socket bound to a port.
struct Binding<T> {
    /// Canonical (IPv4 for v4-mapped), or an unspecified address.
    ip: IpAddr,
    /// An AF_INET6 wildcard that does not take IPv4 (IPV6_V6ONLY).
    v6only: bool,
    reuse_addr: bool,
    reuse_port: bool,
    socket: Weak<T>,
    /// Set when the socket closed into TIME_WAIT: the binding outlives it.
    time_wait: Arc<TimeWait>,
}

/// How long a TCP connection that closed first holds its port (TCP_TIMEWAIT_LEN).
const TIME_WAIT: Duration = Duration::from_secs(60);

/// When a closed TCP socket's TIME_WAIT ends, if it entered one. Leaf lock.
#[derive(Default)]
pub struct TimeWait(Mutex<Option<Instant>>);

impl TimeWait {
    pub fn start(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now().checked_add(TIME_WAIT);
    }

    fn holds(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|end| Instant::now() < end)
    }
}

/// A loopback connection whose socket closed, as Linux keeps it after the
/// socket is gone (an orphan socket while its FIN is not acknowledged, then a
/// timewait socket): a row without owner or inode, for /proc/net/tcp and
/// sock_diag.
pub struct Remains {
    pub domain: i32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Its state now (FIN_WAIT1, FIN_WAIT2, CLOSING, LAST_ACK or TIME_WAIT),
    /// bytes to read and bytes not acknowledged; None once it is gone.
    pub row: Box<dyn Fn() -> Option<(u8, usize, usize)> + Send + Sync>,
}

impl Remains {
    fn row(&self) -> Option<ProcNetRow> {
        let (state, queued, sent) = (self.row)()?;
        Some(ProcNetRow { domain: self.domain, local: self.local, remote: Some(self.remote), state, queued, sent, uid: 0, inode: 0, v6only: false, drops: None })
    }
}

/// The closed connections that remain, each shown until it is gone or its 60
/// seconds of TIME_WAIT (counted from the close, not from the peer's FIN)
/// end, oldest first. Whether one holds its port is its binding's
/// `TimeWait`. Leaf lock.
#[derive(Default)]
pub struct TimeWaits(Mutex<VecDeque<(Instant, Arc<Remains>)>>);

/// The most it keeps; beyond, a close leaves none (Linux's
/// tcp_max_tw_buckets, "time wait bucket table overflow").
const MAX_TIME_WAITS: usize = 262_144;

impl TimeWaits {
    /// The list, without those whose time is over.
    fn live(&self) -> MutexGuard<'_, VecDeque<(Instant, Arc<Remains>)>> {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while list.front().is_some_and(|(end, _)| *end <= now) {
            list.pop_front();
        }
        list
    }

    pub fn add(&self, remains: Remains) {
        let mut list = self.live();
        if let (Some(end), true) = (Instant::now().checked_add(TIME_WAIT), list.len() < MAX_TIME_WAITS) {
            list.push_back((end, Arc::new(remains)));
        }
    }

    /// Their rows (made after the lock: the FINs are the stream's to tell).
    pub fn rows(&self) -> Vec<ProcNetRow> {
        let live: Vec<Arc<Remains>> = self.live().iter().map(|(_, r)| r.clone()).collect();
        live.iter().filter_map(|r| r.row()).collect()
    }
}

impl<T> Binding<T> {
    /// Whether a packet to the canonical `ip` reaches this binding, and how
    /// well: 2 for its own address, 1 through a wildcard.
    fn reaches(&self, ip: IpAddr) -> Option<u8> {
        if self.ip == ip {
            return Some(2);
        }
        let wild = match self.ip {
            IpAddr::V4(a) => a.is_unspecified() && ip.is_ipv4(),
            IpAddr::V6(a) => a.is_unspecified() && (ip.is_ipv6() || !self.v6only),
        };
        wild.then_some(1)
    }

    /// Whether two bindings on one port claim a common address.
    fn overlaps(&self, other: &Binding<T>) -> bool {
        self.reaches(other.ip).is_some() || other.reaches(self.ip).is_some()
    }
}

/// How a socket asks to be bound.
struct BindRequest {
    addr: SocketAddr,
    v6only: bool,
    reuse_addr: bool,
    reuse_port: bool,
    time_wait: Arc<TimeWait>,
}

impl<T: PortUser> Binding<T> {
    /// Whether `new` may share a port with this binding, which overlaps it,
    /// as Linux's inet_csk_bind_conflict judges: both SO_REUSEPORT, or both
    /// SO_REUSEADDR with this one not listening. A connection in TIME_WAIT
    /// gives way to any SO_REUSEADDR socket.
    fn shares_with(&self, new: &Binding<T>) -> bool {
        let Some(socket) = self.socket.upgrade() else { return new.reuse_addr };
        (self.reuse_port && new.reuse_port) || (self.reuse_addr && new.reuse_addr && !socket.listening())
    }
}

/// The sockets of one protocol bound to each port. Leaf lock.
pub struct Ports<T> {
    bound: Mutex<PortMap<T>>,
}

struct PortMap<T> {
    ports: HashMap<u16, Vec<Binding<T>>>,
    next_ephemeral: u16,
}

impl<T> Default for Ports<T> {
    fn default() -> Self {
        Ports { bound: Mutex::new(PortMap { ports: HashMap::new(), next_ephemeral: *EPHEMERAL.start() }) }
    }
}

impl<T: PortUser> Ports<T> {
    /// The table, without the sockets that are gone (a socket's binding
    /// ends when it closes, or when its TIME_WAIT does).
    fn map(&self) -> MutexGuard<'_, PortMap<T>> {
        let mut map = self.bound.lock().unwrap_or_else(|e| e.into_inner());
        map.ports.retain(|_, list| {
            list.retain(|b| b.socket.strong_count() > 0 || b.time_wait.holds());
            !list.is_empty()
        });
        map
    }

    /// Binds `socket` as `req` asks, to a free ephemeral port when the port
    /// is 0; returns the port. EADDRINUSE when another socket claims the
    /// address. Who may bind a privileged port is the caller's check.
    fn bind_unchecked(&self, req: &BindRequest, socket: &Arc<T>) -> SysResult<u16> {
        let port = req.addr.port();
        let ip = req.addr.ip().to_canonical();
        let new = Binding { ip, v6only: req.v6only, reuse_addr: req.reuse_addr, reuse_port: req.reuse_port, socket: Arc::downgrade(socket), time_wait: req.time_wait.clone() };
        let mut map = self.map();
        let free = |map: &PortMap<T>, port: u16| map.ports.get(&port).is_none_or(|list| list.iter().filter(|b| b.overlaps(&new)).all(|b| b.shares_with(&new)));
        let port = if port != 0 {
            if !free(&map, port) {
                return error!(EADDRINUSE);
            }
            port
        } else {
            let span = u32::from(EPHEMERAL.end() - EPHEMERAL.start()) + 1;
            let start = map.next_ephemeral;
            let found = (0..span).map(|i| EPHEMERAL.start() + ((u32::from(start - EPHEMERAL.start()) + i) % span) as u16).find(|&p| map.ports.get(&p).is_none_or(Vec::is_empty));
            let Some(p) = found else { return error!(EADDRINUSE) };
            map.next_ephemeral = if p == *EPHEMERAL.end() { *EPHEMERAL.start() } else { p + 1 };
            p
        };
        map.ports.entry(port).or_default().push(new);
        Ok(port)
    }

    /// listen(2) of the socket at `socket` bound to `port`: EADDRINUSE when
    /// another socket listens on an address it shares (bind let them share
    /// the port because neither listened then).
    pub fn check_listen(&self, port: u16, socket: *const T) -> SysResult<()> {
        let map = self.map();
        let Some(list) = map.ports.get(&port) else { return Ok(()) };
        let Some(mine) = list.iter().find(|b| b.socket.as_ptr() == socket) else { return Ok(()) };
        let taken = list.iter().any(|b| b.socket.as_ptr() != socket && b.overlaps(mine) && !(b.reuse_port && mine.reuse_port) && b.socket.upgrade().is_some_and(|s| s.listening()));
        if taken { error!(EADDRINUSE) } else { Ok(()) }
    }

    /// Gives up the socket at `socket`'s binding on `port`.
    pub fn unbind(&self, port: u16, socket: *const T) {
        if let Some(list) = self.map().ports.get_mut(&port) {
            list.retain(|b| b.socket.as_ptr() != socket);
        }
    }

    /// Binds a connection accepted on a listener's port, so that the port
    /// stays taken while it lives (and in its TIME_WAIT), as Linux's bind
    /// buckets keep it.
    pub fn bind_accepted(&self, local: SocketAddr, reuse_addr: bool, socket: &Arc<T>, time_wait: Arc<TimeWait>) {
        let b = Binding { ip: local.ip().to_canonical(), v6only: false, reuse_addr, reuse_port: false, socket: Arc::downgrade(socket), time_wait };
        self.map().ports.entry(local.port()).or_default().push(b);
    }

    /// Every socket bound here, once each.
    pub fn sockets(&self) -> Vec<Arc<T>> {
        let map = self.map();
        let mut out: Vec<Arc<T>> = Vec::new();
        for s in map.ports.values().flatten().filter_map(|b| b.socket.upgrade()) {
            if !out.iter().any(|o| Arc::ptr_eq(o, &s)) {
                out.push(s);
            }
        }
        out
    }

    /// The sockets a packet to the canonical `dest` reaches, best first (its
    /// own address before a wildcard), that `accepts` takes.
    pub fn lookup(&self, dest: SocketAddr, accepts: impl Fn(&T) -> bool) -> Option<Arc<T>> {
        let map = self.map();
        let list = map.ports.get(&dest.port())?;
        let mut found: Vec<(u8, Arc<T>)> = list.iter().filter_map(|b| Some((b.reaches(dest.ip())?, b.socket.upgrade()?))).filter(|(_, s)| accepts(s)).collect();
        found.sort_by_key(|(rank, _)| std::cmp::Reverse(*rank));
        found.into_iter().next().map(|(_, s)| s)
    }
}

/// What TCP and UDP sockets share: their family, address and options.
pub struct Endpoint {
    pub domain: i32,
    /// The network namespace it was made in.
    pub net: Arc<NetNamespace>,
    /// Its address (port 0 until bound), in its own family, and whether
    /// bind(2) chose the address and the port (Linux's SOCK_BINDADDR_LOCK and
    /// SOCK_BINDPORT_LOCK: a UDP disconnect gives back what it did not). Leaf lock.
    local: Mutex<Local>,
    pub options: Options,
    /// SO_LINGER: (on, seconds).
    linger: Mutex<(i32, i32)>,
    /// Shared with its port binding, which a TCP socket's TIME_WAIT keeps.
    pub time_wait: Arc<TimeWait>,
    /// The kuid that owns it (Linux's sk_uid: its maker's fsuid, or for an
    /// accepted connection its listener's), which sock_diag and /proc/net show.
    pub uid: u32,
}

#[derive(Clone, Copy)]
struct Local {
    addr: SocketAddr,
    addr_chosen: bool,
    port_chosen: bool,
}

const SO_LINGER: i32 = 13;

impl Endpoint {
    pub fn new(net: &Arc<NetNamespace>, domain: i32, uid: u32) -> Endpoint {
        let local = Local { addr: unbound(domain), addr_chosen: false, port_chosen: false };
        Endpoint { domain, net: net.clone(), local: Mutex::new(local), options: Options::default(), linger: Mutex::default(), time_wait: Arc::default(), uid }
    }

    fn local_lock(&self) -> MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn local(&self) -> SocketAddr {
        self.local_lock().addr
    }

    /// Its address once a connection or peer fixed the one it sends from.
    pub fn set_local(&self, addr: SocketAddr) {
        self.local_lock().addr = in_domain(self.domain, addr);
    }

    /// Whether bind(2) gave it its port.
    pub fn port_chosen(&self) -> bool {
        self.local_lock().port_chosen
    }

    /// A UDP disconnect: gives back the address and the port that bind(2)
    /// did not choose (the port leaves `ports`).
    pub fn release_unchosen<T: PortUser>(&self, ports: &Ports<T>, socket: *const T) {
        let mut local = self.local_lock();
        if !local.addr_chosen {
            local.addr = SocketAddr::new(unbound(self.domain).ip(), local.addr.port());
        }
        if !local.port_chosen && local.addr.port() != 0 {
            ports.unbind(local.addr.port(), socket);
            local.addr.set_port(0);
        }
    }

    /// SO_LINGER with a zero timeout: close resets the connection.
    pub fn aborts_on_close(&self) -> bool {
        *self.linger.lock().unwrap_or_else(|e| e.into_inner()) == (1, 0)
    }

    /// An AF_INET6 socket that does not talk IPv4 (IPV6_V6ONLY).
    pub fn v6only(&self) -> bool {
        self.domain == AF_INET6 && self.options.on(IPPROTO_IPV6, IPV6_V6ONLY)
    }

    /// bind(2) of `socket` to `addr` (port 0: an ephemeral port) in `ports`:
    /// EINVAL when bound already, EADDRNOTAVAIL for an address not this host's.
    pub fn bind<T: PortUser>(&self, t: &Task, addr: SocketAddr, ports: &Ports<T>, socket: &Weak<T>) -> SysResult<()> {
        let mut local = self.local_lock();
        if local.addr.port() != 0 {
            return error!(EINVAL);
        }
        if !is_local(&self.net, addr.ip()) {
            return error!(EADDRNOTAVAIL);
        }
        let socket = socket.upgrade().ok_or_else(|| rvisor_abi::errno!(EINVAL))?;
        let req = BindRequest {
            addr,
            v6only: self.v6only(),
            reuse_addr: self.reuse_addr(),
            reuse_port: self.options.on(SOL_SOCKET, SO_REUSEPORT),
            time_wait: self.time_wait.clone(),
        };
        may_bind_port(t, &self.net, addr.port())?;
        let port = ports.bind_unchecked(&req, &socket)?;
        *local = Local { addr: SocketAddr::new(addr.ip(), port), addr_chosen: !addr.ip().is_unspecified(), port_chosen: addr.port() != 0 };
        Ok(())
    }

    pub fn reuse_addr(&self) -> bool {
        self.options.on(SOL_SOCKET, SO_REUSEADDR)
    }

    /// Binds an unbound socket to the wildcard and an ephemeral port, as
    /// listen, connect and a first datagram do.
    pub fn autobind<T: PortUser>(&self, t: &Task, ports: &Ports<T>, socket: &Weak<T>) -> SysResult<()> {
        // An address bind(2) chose stays (a UDP disconnect keeps it).
        let local = self.local();
        if local.port() == 0 { self.bind(t, SocketAddr::new(local.ip(), 0), ports, socket) } else { Ok(()) }
    }

    /// Binds an unbound socket that no task made (a forwarded host
    /// connection's, tcp.rs) to the wildcard and an ephemeral port.
    pub fn bind_ephemeral<T: PortUser>(&self, ports: &Ports<T>, socket: &Weak<T>) -> SysResult<()> {
        let mut local = self.local_lock();
        if local.addr.port() != 0 {
            return error!(EINVAL);
        }
        let socket = socket.upgrade().ok_or_else(|| rvisor_abi::errno!(EINVAL))?;
        let addr = unbound(self.domain);
        let req = BindRequest { addr, v6only: self.v6only(), reuse_addr: self.reuse_addr(), reuse_port: false, time_wait: self.time_wait.clone() };
        let port = ports.bind_unchecked(&req, &socket)?;
        *local = Local { addr: SocketAddr::new(addr.ip(), port), addr_chosen: false, port_chosen: false };
        Ok(())
    }

    /// The address it sends from to the canonical `dest`, canonical too.
    pub fn source_for(&self, dest: SocketAddr) -> SocketAddr {
        let local = self.local();
        SocketAddr::new(source_for(local.ip(), dest.ip()), local.port())
    }

    pub fn get_option(&self, kind: i32, level: i32, name: i32) -> SysResult<Vec<u8>> {
        if (level, name) == (SOL_SOCKET, SO_LINGER) {
            let (on, secs) = *self.linger.lock().unwrap_or_else(|e| e.into_inner());
            return Ok([on.to_ne_bytes(), secs.to_ne_bytes()].concat());
        }
        if is_timestamp_option(level, name) {
            return Ok(get_timestamps(&self.options.timestamps, name).to_ne_bytes().to_vec());
        }
        Ok(self.options.get(self.domain, kind, level, name)?.to_ne_bytes().to_vec())
    }

    /// setsockopt; SO_LINGER takes a `struct linger`, the others an int.
    pub fn set_option(&self, kind: i32, level: i32, name: i32, value: &[u8]) -> SysResult<()> {
        if (level, name) == (SOL_SOCKET, SO_LINGER) {
            let on = super::int_option(value)?;
            let secs = super::int_option(value.get(4..).unwrap_or_default())?;
            *self.linger.lock().unwrap_or_else(|e| e.into_inner()) = (i32::from(on != 0), secs);
            return Ok(());
        }
        if is_timestamp_option(level, name) {
            set_timestamps(&self.options.timestamps, name, super::int_option(value)? != 0);
            return Ok(());
        }
        self.options.set(self.domain, kind, level, name, super::int_option(value)?)
    }
}

/// What /proc/net/tcp and the like, and sock_diag, show of one socket.
pub struct ProcNetRow {
    pub domain: i32,
    pub local: SocketAddr,
    /// The peer, or None (shown as the wildcard, port 0).
    pub remote: Option<SocketAddr>,
    /// Linux's TCP state numbers (1 ESTABLISHED, 7 CLOSE, 10 LISTEN).
    pub state: u8,
    /// Bytes to read; a listener's connections waiting to be accepted.
    pub queued: usize,
    /// Bytes sent and not yet acknowledged; a listener's backlog.
    pub sent: usize,
    pub uid: u32,
    pub inode: u64,
    pub v6only: bool,
    /// UDP: the datagrams it dropped, a full receive buffer's.
    pub drops: Option<u32>,
}

/// An address as /proc/net shows it: the address's words in host byte
/// order, in hex, then the port.
fn proc_net_address(addr: SocketAddr) -> String {
    let words = |octets: &[u8]| -> String { octets.chunks(4).map(|w| format!("{:08X}", u32::from_le_bytes([w[0], w[1], w[2], w[3]]))).collect() };
    let ip = match addr.ip() {
        IpAddr::V4(a) => words(&a.octets()),
        IpAddr::V6(a) => words(&a.octets()),
    };
    format!("{ip}:{:04X}", addr.port())
}

/// The table of /proc/net/{tcp,udp}[6]: the rows of one family (UDP's, with
/// `udp`, end with the drops).
pub fn proc_net_table(rows: Vec<ProcNetRow>, v6: bool, udp: bool) -> String {
    let mut out = if v6 {
        "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode".to_string()
    } else {
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode".to_string()
    };
    out.push_str(if udp { " ref pointer drops\n" } else { "\n" });
    let domain = if v6 { AF_INET6 } else { AF_INET };
    for (i, r) in rows.iter().filter(|r| r.domain == domain).enumerate() {
        let remote = r.remote.unwrap_or_else(|| SocketAddr::new(unbound(domain).ip(), 0));
        out.push_str(&format!(
            "{i:4}: {} {} {:02X} {:08X}:{:08X} 00:00000000 00000000 {:5}        0 {} 2 0000000000000000{}\n",
            proc_net_address(r.local),
            proc_net_address(remote),
            r.state,
            // A listener's backlog is sock_diag's, not this table's.
            if r.state == 10 { 0 } else { r.sent },
            r.queued,
            r.uid,
            r.inode,
            r.drops.map_or(String::new(), |d| format!(" {d}"))
        ));
    }
    out
}

/// The protocol levels of setsockopt.
pub const SOL_SOCKET: i32 = 1;
pub const IPPROTO_IP: i32 = 0;
pub const IPPROTO_TCP: i32 = 6;
pub const IPPROTO_IPV6: i32 = 41;
const SO_REUSEADDR: i32 = 2;
const SO_REUSEPORT: i32 = 15;
const IPV6_V6ONLY: i32 = 26;

/// How an option's value reads back.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Reads back 0 or 1, whatever was set.
    Flag,
    Int,
}

/// The options an inet socket keeps: (level, name, kind, default, which
/// socket types have it). They change nothing on loopback but read back
/// what was set, as programs check.
const OPTIONS: &[(i32, i32, Kind, i32, &[i32])] = &[
    (SOL_SOCKET, SO_REUSEADDR, Kind::Flag, 0, &[1, 2]),
    (SOL_SOCKET, 5, Kind::Flag, 0, &[1, 2]),        // SO_DONTROUTE
    (SOL_SOCKET, 6, Kind::Flag, 0, &[1, 2]),        // SO_BROADCAST
    (SOL_SOCKET, 9, Kind::Flag, 0, &[1, 2]),        // SO_KEEPALIVE
    (SOL_SOCKET, 10, Kind::Flag, 0, &[1, 2]),       // SO_OOBINLINE
    (SOL_SOCKET, 12, Kind::Int, 0, &[1, 2]),        // SO_PRIORITY
    (SOL_SOCKET, SO_REUSEPORT, Kind::Flag, 0, &[1, 2]),
    (SOL_SOCKET, 16, Kind::Flag, 0, &[1, 2]),       // SO_PASSCRED
    (IPPROTO_IP, IP_TOS, Kind::Int, 0, &[1, 2]),
    (IPPROTO_IP, IP_TTL, Kind::Int, DEFAULT_TTL as i32, &[1, 2]),
    (IPPROTO_IP, 10, Kind::Int, 1, &[1, 2]),        // IP_MTU_DISCOVER
    (IPPROTO_IP, IP_RECVERR, Kind::Flag, 0, &[1, 2]),
    (IPPROTO_IP, IP_RECVERR_RFC4884, Kind::Int, 0, &[1, 2]),
    (IPPROTO_IP, IP_PKTINFO, Kind::Flag, 0, &[1, 2]),
    (IPPROTO_IP, IP_RECVTTL, Kind::Flag, 0, &[1, 2]),
    (IPPROTO_IP, IP_RECVTOS, Kind::Flag, 0, &[1, 2]),
    (IPPROTO_IP, IP_RECVORIGDSTADDR, Kind::Flag, 0, &[1, 2]),
    (IPPROTO_IP, 7, Kind::Flag, 0, &[1, 2]),        // IP_RETOPTS
    (IPPROTO_IPV6, IPV6_UNICAST_HOPS, Kind::Int, DEFAULT_TTL as i32, &[1, 2]),
    (IPPROTO_IPV6, IPV6_RECVERR, Kind::Flag, 0, &[1, 2]),
    (IPPROTO_IPV6, IPV6_RECVERR_RFC4884, Kind::Int, 0, &[1, 2]),
    (IPPROTO_IPV6, IPV6_RECVPKTINFO, Kind::Flag, 0, &[1, 2]),
    (IPPROTO_IPV6, IPV6_RECVHOPLIMIT, Kind::Flag, 0, &[1, 2]),
    (IPPROTO_IPV6, IPV6_RECVTCLASS, Kind::Flag, 0, &[1, 2]),
    (IPPROTO_IPV6, IPV6_RECVORIGDSTADDR, Kind::Flag, 0, &[1, 2]),
    (IPPROTO_IPV6, IPV6_V6ONLY, Kind::Flag, 0, &[1, 2]),
    (IPPROTO_IPV6, IPV6_TCLASS, Kind::Int, 0, &[1, 2]),
    (IPPROTO_TCP, 1, Kind::Flag, 0, &[1]),          // TCP_NODELAY
    (IPPROTO_TCP, 2, Kind::Int, 65483, &[1]),       // TCP_MAXSEG (loopback's MSS)
    (IPPROTO_TCP, 3, Kind::Flag, 0, &[1]),          // TCP_CORK
    (IPPROTO_TCP, 4, Kind::Int, 7200, &[1]),        // TCP_KEEPIDLE
    (IPPROTO_TCP, 5, Kind::Int, 75, &[1]),          // TCP_KEEPINTVL
    (IPPROTO_TCP, 6, Kind::Int, 9, &[1]),           // TCP_KEEPCNT
    (IPPROTO_TCP, 9, Kind::Int, 0, &[1]),           // TCP_DEFER_ACCEPT
    (IPPROTO_TCP, 12, Kind::Flag, 1, &[1]),         // TCP_QUICKACK
    (IPPROTO_TCP, 18, Kind::Int, 0, &[1]),          // TCP_USER_TIMEOUT
    (IPPROTO_TCP, 23, Kind::Int, 0, &[1]),          // TCP_FASTOPEN
    (IPPROTO_TCP, 25, Kind::Int, -1, &[1]),         // TCP_NOTSENT_LOWAT
];

/// An inet socket's options. Leaf lock.
#[derive(Default)]
pub struct Options {
    set: Mutex<HashMap<(i32, i32), i32>>,
    /// The SO_TIMESTAMP options' flags (`ip_control::set_timestamps`).
    pub timestamps: std::sync::atomic::AtomicU8,
}

impl Options {
    fn entry(domain: i32, kind: i32, level: i32, name: i32) -> SysResult<(Kind, i32)> {
        if level == IPPROTO_IPV6 && domain != AF_INET6 {
            return error!(ENOPROTOOPT);
        }
        match OPTIONS.iter().find(|o| o.0 == level && o.1 == name && o.4.contains(&kind)) {
            Some(o) => Ok((o.2, o.3)),
            None => error!(ENOPROTOOPT),
        }
    }

    pub fn get(&self, domain: i32, kind: i32, level: i32, name: i32) -> SysResult<i32> {
        let (_, default) = Options::entry(domain, kind, level, name)?;
        Ok(self.set.lock().unwrap_or_else(|e| e.into_inner()).get(&(level, name)).copied().unwrap_or(default))
    }

    pub fn set(&self, domain: i32, kind: i32, level: i32, name: i32, value: i32) -> SysResult<()> {
        let (k, _) = Options::entry(domain, kind, level, name)?;
        let value = if k == Kind::Flag { Some(i32::from(value != 0)) } else { checked_option(level, name, value)? };
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        match value {
            Some(v) => set.insert((level, name), v),
            None => set.remove(&(level, name)),
        };
        Ok(())
    }

    /// Takes a listener's options, for a connection it accepted.
    pub fn inherit(&self, from: &Options) {
        let values = from.set.lock().unwrap_or_else(|e| e.into_inner()).clone();
        *self.set.lock().unwrap_or_else(|e| e.into_inner()) = values;
        let stamps = from.timestamps.load(std::sync::atomic::Ordering::Relaxed);
        self.timestamps.store(stamps, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a flag option is on.
    pub fn on(&self, level: i32, name: i32) -> bool {
        self.set.lock().unwrap_or_else(|e| e.into_inner()).get(&(level, name)).is_some_and(|&v| v != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(parse(AF_INET, &sockaddr(a)).unwrap(), a);
        let b: SocketAddr = "[::1]:443".parse().unwrap();
        assert_eq!(parse(AF_INET6, &sockaddr(b)).unwrap(), b);
        assert_eq!(parse(AF_INET, &sockaddr(b)).unwrap_err().code, rvisor_abi::ErrnoCode::EAFNOSUPPORT);
        assert_eq!(parse(AF_INET6, &sockaddr(a)).unwrap_err().code, rvisor_abi::ErrnoCode::EINVAL);
        assert_eq!(parse(AF_INET, &[2, 0]).unwrap_err().code, rvisor_abi::ErrnoCode::EINVAL);
    }

    #[test]
    fn only_loopback_is_reachable() {
        let d = |s: &str| destination(s.parse().unwrap(), false);
        assert_eq!(d("0.0.0.0:1").unwrap(), "127.0.0.1:1".parse().unwrap());
        assert_eq!(d("127.1.2.3:1").unwrap(), "127.1.2.3:1".parse().unwrap());
        assert_eq!(d("[::ffff:127.0.0.1]:1").unwrap(), "127.0.0.1:1".parse().unwrap());
        assert_eq!(d("[::]:1").unwrap(), "[::1]:1".parse().unwrap());
        assert!(d("10.0.0.1:1").is_err());
        assert!(destination("[::ffff:127.0.0.1]:1".parse().unwrap(), true).is_err());
    }

    #[test]
    fn wildcards_reach_their_families() {
        let b = |ip: &str, v6only| Binding::<()> { ip: ip.parse().unwrap(), v6only, reuse_addr: false, reuse_port: false, socket: Weak::new(), time_wait: Arc::default() };
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(b("0.0.0.0", false).reaches(v4), Some(1));
        assert_eq!(b("0.0.0.0", false).reaches(v6), None);
        assert_eq!(b("::", false).reaches(v4), Some(1));
        assert_eq!(b("::", true).reaches(v4), None);
        assert_eq!(b("127.0.0.1", false).reaches(v4), Some(2));
        assert!(b("::", false).overlaps(&b("0.0.0.0", false)));
        assert!(!b("::", true).overlaps(&b("0.0.0.0", false)));
        assert!(!b("127.0.0.1", false).overlaps(&b("127.0.0.2", false)));
    }
}
