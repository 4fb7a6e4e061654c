//! AF_NETLINK sockets of the NETLINK_ROUTE protocol, enough for programs to
//! list the network: RTM_GETLINK, RTM_GETADDR and RTM_GETROUTE answer with
//! the interfaces of interface.rs (`lo` and those the sandbox's stack took
//! over) and their main routing table, which is what getifaddrs(3),
//! if_nameindex(3), Node's os.networkInterfaces(), `ip addr` and `ip route`
//! ask; a single RTM_GETROUTE (`ip route get DEST`, what scripts use to find
//! their own address) answers with the route to it, as Linux's does. Neighbour and rule dumps are empty; any other request (changing the
//! network included) is EOPNOTSUPP. No multicast groups: no events ever arrive.
//!
//! Each request is answered as its send is: a single answer, error or
//! acknowledgement is a datagram of its own; a dump (NLM_F_DUMP) is built
//! whole and read in parts, as Linux's netlink_dump hands it out: each part
//! as many whole messages as fit the largest buffer a receive has offered
//! (at least NLMSG_GOODSIZE), the next made when a receive leaves the queue
//! half empty, NLMSG_DONE in the last. One dump runs at a time (another is
//! EBUSY), and what waits to be read is bounded by the receive buffer: a
//! reply that finds it full is dropped and the next receive is ENOBUFS. The
//! socket is the same for NETLINK_SOCK_DIAG (`ss`), whose requests
//! `sock_diag` answers.

pub mod sock_diag;

use super::interface::{self, Interface, InterfaceInfo, Route, Traffic};
use super::{Ancillary, Received, Socket, SocketInode, BUFFER, MSG_DONTWAIT, MSG_PEEK};
use crate::task::Task;
use crate::vfs::{FileDescription, OpenFlags, StatusFlags, WaitQueue, POLLERR, POLLIN, POLLOUT};
use rvisor_abi::structs::{Ifaddrmsg, Ifinfomsg, Nlmsghdr, Rtattr, Rtmsg, SockaddrNl};
use rvisor_abi::{consts, error, ErrnoCode, SysResult};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use zerocopy::{FromBytes, IntoBytes};

pub const AF_NETLINK: i32 = 16;
pub const NETLINK_ROUTE: i32 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const SOL_NETLINK: i32 = 270;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_SETLINK: u16 = 19;
const RTM_NEWNSID: u16 = 88;
const RTM_GETNSID: u16 = 90;
const NETNSA_NSID: u16 = 1;
const IFF_UP: u32 = 1;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_GETNEIGH: u16 = 30;
const RTM_GETRULE: u16 = 34;
const RTM_GETNETCONF: u16 = 82;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;

const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_QDISC: u16 = 6;
const IFLA_TXQLEN: u16 = 13;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKMODE: u16 = 17;
const IFLA_GROUP: u16 = 27;
const IFLA_STATS64: u16 = 23;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;
const IFA_CACHEINFO: u16 = 6;
const IFA_FLAGS: u16 = 8;
/// `struct ifa_cacheinfo` of an address that never expires: preferred and
/// valid lifetimes INFINITY_LIFE_TIME, no timestamps.
const FOREVER: [u32; 4] = [u32::MAX, u32::MAX, 0, 0];
const IFA_F_PERMANENT: u8 = 0x80;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_TABLE: u16 = 15;
const RTA_UID: u16 = 25;
const RTN_LOCAL: u8 = 2;
/// A route get's answer: a route made for the one destination ("cache").
const RTM_F_CLONED: u32 = 0x200;
/// ... to a local address ("<local>").
const RTCF_LOCAL: u32 = 0x8000_0000;
const RTA_PREF: u16 = 20;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_KERNEL: u8 = 2;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;
/// ICMPV6_ROUTER_PREF_MEDIUM: an IPv6 route's preference.
const PREF_MEDIUM: u8 = 0;

const HDR: usize = std::mem::size_of::<Nlmsghdr>();

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Replies being written for one request.
struct Replies<'a> {
    out: &'a mut Vec<u8>,
    seq: u32,
    port: u32,
    /// The socket's previous dump is still being read.
    busy: bool,
    /// The request started a dump: `out` is read in parts.
    dumping: bool,
}

impl Replies<'_> {
    /// Starts a dump (Linux's netlink_dump_start): EBUSY while the socket's
    /// previous one is still being read.
    fn start_dump(&mut self) -> Result<(), ErrnoCode> {
        if self.busy {
            return Err(ErrnoCode::EBUSY);
        }
        self.dumping = true;
        Ok(())
    }

    /// Starts a message of `kind` with its fixed body; returns where it begins.
    fn begin(&mut self, kind: u16, flags: u16, body: &[u8]) -> usize {
        let start = self.out.len();
        self.out.extend_from_slice(Nlmsghdr { len: 0, kind, flags, seq: self.seq, pid: self.port }.as_bytes());
        self.out.extend_from_slice(body);
        self.out.resize(align4(self.out.len()), 0);
        start
    }

    fn attr(&mut self, kind: u16, value: &[u8]) {
        self.out.extend_from_slice(Rtattr { len: (4 + value.len()) as u16, kind }.as_bytes());
        self.out.extend_from_slice(value);
        self.out.resize(align4(self.out.len()), 0);
    }

    /// RTM_GETNSID's answer: the id this namespace gives the other one asked
    /// about. None is ever assigned (NETNSA_NSID_NOT_ASSIGNED), as Linux
    /// answers until `ip netns set` assigns one.
    fn nsid(&mut self) {
        // `struct rtgenmsg`: a family byte, padded.
        let m = self.begin(RTM_NEWNSID, 0, &[0; 4]);
        self.attr(NETNSA_NSID, &(-1i32).to_ne_bytes());
        self.end(m);
    }

    /// Ends the message begun at `start`: its length goes in its header.
    fn end(&mut self, start: usize) {
        let len = (self.out.len() - start) as u32;
        self.out[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    fn link(&mut self, i: &Interface, flags: u16, traffic: Traffic) {
        let info = Ifinfomsg { family: 0, pad: 0, kind: i.hw_type(), index: i.index, flags: i.flags(), change: 0 };
        let m = self.begin(RTM_NEWLINK, flags, info.as_bytes());
        self.attr(IFLA_IFNAME, &c_string(i.name));
        self.attr(IFLA_TXQLEN, &interface::TXQLEN.to_ne_bytes());
        self.attr(IFLA_OPERSTATE, &[i.operstate()]);
        self.attr(IFLA_LINKMODE, &[0]);
        self.attr(IFLA_MTU, &i.mtu.to_ne_bytes());
        self.attr(IFLA_QDISC, b"noqueue\0");
        self.attr(IFLA_GROUP, &0u32.to_ne_bytes());
        self.attr(IFLA_ADDRESS, &i.mac);
        self.attr(IFLA_BROADCAST, &i.hw_broadcast());
        // `struct rtnl_link_stats64`: packets, then bytes, each way; no errors.
        let mut stats = [0u64; 24];
        stats[..4].copy_from_slice(&[traffic.rx_packets, traffic.tx_packets, traffic.rx_bytes, traffic.tx_bytes]);
        self.attr(IFLA_STATS64, stats.as_bytes());
        self.end(m);
    }

    /// The addresses of `family` (0: both), IPv4 ones first, as Linux dumps
    /// one family at a time.
    fn addresses(&mut self, family: u8, others: &[InterfaceInfo]) {
        let permanent = u32::from(IFA_F_PERMANENT).to_ne_bytes();
        if family == 0 || family == AF_INET {
            for i in interface::interfaces(others) {
                for (a, prefix) in i.v4_addrs() {
                    let msg = Ifaddrmsg { family: AF_INET, prefixlen: prefix, flags: IFA_F_PERMANENT, scope: i.scope(IpAddr::V4(a)), index: i.index as u32 };
                    let m = self.begin(RTM_NEWADDR, NLM_F_MULTI, msg.as_bytes());
                    self.attr(IFA_ADDRESS, &a.octets());
                    self.attr(IFA_LOCAL, &a.octets());
                    if let Some(b) = i.broadcast(a, prefix) {
                        self.attr(IFA_BROADCAST, &b.octets());
                    }
                    self.attr(IFA_LABEL, &c_string(i.name));
                    self.attr(IFA_FLAGS, &permanent);
                    self.attr(IFA_CACHEINFO, FOREVER.as_bytes());
                    self.end(m);
                }
            }
        }
        if family == 0 || family == AF_INET6 {
            for i in interface::interfaces(others) {
                for &(addr, prefix) in i.addrs {
                    let IpAddr::V6(a) = addr else { continue };
                    let msg = Ifaddrmsg { family: AF_INET6, prefixlen: prefix, flags: IFA_F_PERMANENT, scope: i.scope(addr), index: i.index as u32 };
                    let m = self.begin(RTM_NEWADDR, NLM_F_MULTI, msg.as_bytes());
                    self.attr(IFA_ADDRESS, &a.octets());
                    self.attr(IFA_FLAGS, &permanent);
                    self.attr(IFA_CACHEINFO, FOREVER.as_bytes());
                    self.end(m);
                }
            }
        }
    }

    /// The main table's routes of `family` (0: both).
    fn routes(&mut self, family: u8, others: &[InterfaceInfo]) {
        for r in interface::routes(others) {
            let f = if r.dest.is_ipv4() { AF_INET } else { AF_INET6 };
            if family == 0 || family == f {
                self.route(f, &r);
            }
        }
    }

    fn route(&mut self, family: u8, r: &Route) {
        let protocol = if r.subnet { RTPROT_KERNEL } else { RTPROT_BOOT };
        let msg = Rtmsg { family, dst_len: r.prefix, src_len: 0, tos: 0, table: RT_TABLE_MAIN, protocol, scope: r.scope(), kind: RTN_UNICAST, flags: 0 };
        let m = self.begin(RTM_NEWROUTE, NLM_F_MULTI, msg.as_bytes());
        self.attr(RTA_TABLE, &u32::from(RT_TABLE_MAIN).to_ne_bytes());
        if r.prefix > 0 {
            self.attr(RTA_DST, &ip_bytes(r.dest));
        }
        if r.metric != 0 {
            self.attr(RTA_PRIORITY, &r.metric.to_ne_bytes());
        }
        if let Some(src) = r.prefsrc {
            self.attr(RTA_PREFSRC, &ip_bytes(src));
        }
        if let Some(gw) = r.gateway {
            self.attr(RTA_GATEWAY, &ip_bytes(gw));
        }
        self.attr(RTA_OIF, &(r.index as u32).to_ne_bytes());
        if family == AF_INET6 {
            self.attr(RTA_PREF, &[PREF_MEDIUM]);
        }
        self.end(m);
    }

    /// The answer to `ip route get DEST` for a task of user `uid`.
    fn route_to(&mut self, family: u8, dest: IpAddr, uid: u32, others: &[InterfaceInfo]) -> Result<(), ErrnoCode> {
        let full = if dest.is_ipv4() { 32 } else { 128 };
        let (msg, oif, src, gateway) = match interface::lookup(others, dest).ok_or(ErrnoCode::ENETUNREACH)? {
            interface::Lookup::Local => {
                // Linux answers with the main table here too (`ip route get`
                // shows none for a local destination).
                let msg = Rtmsg { family, dst_len: full, src_len: 0, tos: 0, table: RT_TABLE_MAIN, protocol: 0, scope: interface::RT_SCOPE_HOST, kind: RTN_LOCAL, flags: RTM_F_CLONED | RTCF_LOCAL };
                (msg, 1, Some(dest), None)
            }
            interface::Lookup::Route { route, src } => {
                let msg = Rtmsg { family, dst_len: full, src_len: 0, tos: 0, table: RT_TABLE_MAIN, protocol: 0, scope: interface::RT_SCOPE_UNIVERSE, kind: RTN_UNICAST, flags: RTM_F_CLONED };
                (msg, route.index, src, route.gateway)
            }
        };
        let m = self.begin(RTM_NEWROUTE, 0, msg.as_bytes());
        self.attr(RTA_TABLE, &u32::from(msg.table).to_ne_bytes());
        self.attr(RTA_DST, &ip_bytes(dest));
        self.attr(RTA_OIF, &(oif as u32).to_ne_bytes());
        if let Some(s) = src {
            self.attr(RTA_PREFSRC, &ip_bytes(s));
        }
        if let Some(gw) = gateway {
            self.attr(RTA_GATEWAY, &ip_bytes(gw));
        }
        self.attr(RTA_UID, &uid.to_ne_bytes());
        self.end(m);
        Ok(())
    }

    /// NLMSG_ERROR: `error` 0 is an acknowledgement. It carries the request's header.
    fn error(&mut self, request: &Nlmsghdr, error: i32) {
        let mut body = error.to_ne_bytes().to_vec();
        body.extend_from_slice(request.as_bytes());
        let m = self.begin(NLMSG_ERROR, 0, &body);
        self.end(m);
    }

    fn done(&mut self) {
        self.done_with(0);
    }

    /// NLMSG_DONE carrying how the dump went (0, or a negative errno).
    fn done_with(&mut self, error: i32) {
        let m = self.begin(NLMSG_DONE, NLM_F_MULTI, &error.to_ne_bytes());
        self.end(m);
    }
}

fn c_string(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    v
}

fn ip_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The value of the first attribute of `kind` among `attrs`.
fn attribute(attrs: &[u8], kind: u16) -> Option<&[u8]> {
    attributes(attrs).find(|&(k, _)| k == kind).map(|(_, value)| value)
}

/// The well-formed attributes at the start of `attrs`: (type, value).
fn attributes(attrs: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (a, _) = Rtattr::read_from_prefix(attrs.get(at..).unwrap_or_default()).ok()?;
        let len = usize::from(a.len);
        if len < 4 || at + len > attrs.len() {
            return None;
        }
        let value = &attrs[at + 4..at + len];
        at += align4(len);
        Some((a.kind, value))
    })
}

/// RTM_NEWLINK or RTM_SETLINK on an existing link (`ip link set lo up`):
/// bringing it up is all that is offered, and every interface is up; taking
/// one down or changing anything else is EOPNOTSUPP.
fn set_link(body: &[u8], others: &[InterfaceInfo], admin: bool) -> Result<(), ErrnoCode> {
    let (info, attrs) = Ifinfomsg::read_from_prefix(body).map_err(|_| ErrnoCode::EINVAL)?;
    named_link(body, others).ok_or(ErrnoCode::ENODEV)?;
    if !admin {
        return Err(ErrnoCode::EPERM);
    }
    let names_only = attributes(attrs).all(|(kind, _)| kind == IFLA_IFNAME);
    let up = info.change == 0 || (info.change == IFF_UP && info.flags & IFF_UP != 0);
    if names_only && up { Ok(()) } else { Err(ErrnoCode::EOPNOTSUPP) }
}

/// RTM_NEWADDR: giving an interface an address it has already (bubblewrap
/// adds 127.0.0.1/8 to a new namespace's `lo`, which is up with it from the
/// start here) succeeds; any other address is EOPNOTSUPP.
fn new_addr(body: &[u8], others: &[InterfaceInfo], admin: bool) -> Result<(), ErrnoCode> {
    let (msg, attrs) = Ifaddrmsg::read_from_prefix(body).map_err(|_| ErrnoCode::EINVAL)?;
    let i = interface::by_index(others, msg.index as i32).ok_or(ErrnoCode::ENODEV)?;
    if !admin {
        return Err(ErrnoCode::EPERM);
    }
    let value = attribute(attrs, IFA_LOCAL).or_else(|| attribute(attrs, IFA_ADDRESS)).ok_or(ErrnoCode::EINVAL)?;
    let addr = match msg.family {
        AF_INET => <[u8; 4]>::try_from(value).map(IpAddr::from).map_err(|_| ErrnoCode::EINVAL)?,
        AF_INET6 => <[u8; 16]>::try_from(value).map(IpAddr::from).map_err(|_| ErrnoCode::EINVAL)?,
        _ => return Err(ErrnoCode::EAFNOSUPPORT),
    };
    if i.addrs.contains(&(addr, msg.prefixlen)) { Ok(()) } else { Err(ErrnoCode::EOPNOTSUPP) }
}

/// The interface a single-link request names, by index or IFLA_IFNAME.
fn named_link<'a>(body: &[u8], others: &'a [InterfaceInfo]) -> Option<Interface<'a>> {
    let (info, attrs) = Ifinfomsg::read_from_prefix(body).ok()?;
    if info.index != 0 {
        return interface::by_index(others, info.index);
    }
    let name = attribute(attrs, IFLA_IFNAME)?;
    interface::by_name(others, name.strip_suffix(&[0]).unwrap_or(name))
}

/// The destination a route get asks for (RTA_DST after the `rtmsg`).
fn route_destination(body: &[u8]) -> Option<(u8, IpAddr)> {
    let (msg, attrs) = Rtmsg::read_from_prefix(body).ok()?;
    let value = attribute(attrs, RTA_DST)?;
    match msg.family {
        AF_INET => <[u8; 4]>::try_from(value).ok().map(|o| (AF_INET, IpAddr::from(o))),
        AF_INET6 => <[u8; 16]>::try_from(value).ok().map(|o| (AF_INET6, IpAddr::from(o))),
        _ => None,
    }
}

/// Answers one request `h` (with `body`) for a task of user `uid` (with
/// CAP_NET_ADMIN: `admin`), describing `lo` and `others` (with what the one
/// the network stack drives has carried, `traffic`).
fn rtnetlink(r: &mut Replies, h: &Nlmsghdr, body: &[u8], uid: u32, admin: bool, others: &[InterfaceInfo], traffic: Option<(&str, Traffic)>) {
    let carried = |name: &str| traffic.filter(|(n, _)| *n == name).map(|(_, t)| t).unwrap_or_default();
    let dump = h.flags & NLM_F_DUMP == NLM_F_DUMP;
    let result = match h.kind {
        RTM_GETLINK if dump => r.start_dump().map(|()| {
            for i in interface::interfaces(others) {
                r.link(&i, NLM_F_MULTI, carried(i.name));
            }
        }),
        RTM_GETLINK => match named_link(body, others) {
            Some(i) => {
                r.link(&i, 0, carried(i.name));
                Ok(())
            }
            None => Err(ErrnoCode::ENODEV),
        },
        RTM_GETADDR if dump => r.start_dump().map(|()| r.addresses(body.first().copied().unwrap_or(0), others)),
        RTM_GETROUTE if dump => r.start_dump().map(|()| r.routes(body.first().copied().unwrap_or(0), others)),
        RTM_GETROUTE => match route_destination(body) {
            Some((family, dest)) => r.route_to(family, dest, uid, others),
            None => Err(ErrnoCode::EINVAL),
        },
        RTM_NEWLINK | RTM_SETLINK => set_link(body, others, admin),
        RTM_NEWADDR => new_addr(body, others, admin),
        RTM_GETNSID => {
            r.nsid();
            Ok(())
        }
        RTM_GETNEIGH | RTM_GETRULE | RTM_GETNETCONF if dump => r.start_dump(),
        _ => Err(ErrnoCode::EOPNOTSUPP),
    };
    match result {
        Ok(()) if r.dumping => r.done(),
        Ok(()) if h.flags & NLM_F_ACK != 0 => r.error(h, 0),
        Ok(()) => {}
        Err(e) => r.error(h, -i32::from(e.0)),
    }
}

/// The replies to every request of `data`, answered by `one`, one after
/// another, with no dump running.
#[cfg(test)]
fn answer_all(data: &[u8], port: u32, mut one: impl FnMut(&mut Replies, &Nlmsghdr, &[u8])) -> Vec<u8> {
    let mut out = Vec::new();
    for (h, body) in requests(data) {
        let mut r = Replies { out: &mut out, seq: h.seq, port, busy: false, dumping: false };
        one(&mut r, &h, body);
    }
    out
}

/// The requests among the messages of one send, with their bodies: those
/// with NLM_F_REQUEST, up to the first whose length is out of bounds.
fn requests(data: &[u8]) -> impl Iterator<Item = (Nlmsghdr, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || loop {
        let (h, _) = Nlmsghdr::read_from_prefix(data.get(at..)?).ok()?;
        let len = h.len as usize;
        let body = data.get(at + HDR..at.checked_add(len)?).filter(|_| len >= HDR)?;
        at = at.saturating_add(align4(len));
        if h.flags & NLM_F_REQUEST != 0 {
            return Some((h, body));
        }
    })
}

/// `struct skb_shared_info`'s size on x86-64 and arm64: what Linux takes
/// from an allocation's size before counting its room for data.
const SKB_SHARED_INFO: usize = 320;
/// `struct sk_buff`'s size, cache-aligned: with the shared info, what a
/// buffer costs beyond its data (SKB_TRUESIZE).
const SKB_BUFF: usize = 256;
/// The room of a dump's part when no receive offered more: a page's worth.
const NLMSG_GOODSIZE: usize = 4096 - SKB_SHARED_INFO;
/// The most room a part gets, however large the reader's buffer (Linux caps
/// max_recvmsg_len at SKB_WITH_OVERHEAD(32768)).
const MAX_RECVMSG_LEN: usize = 32768 - SKB_SHARED_INFO;

/// What a datagram of `len` bytes is charged against the receive buffer,
/// as Linux charges an skb's truesize.
fn truesize(len: usize) -> usize {
    len + SKB_BUFF + SKB_SHARED_INFO
}

/// The length of the message at the start of `bytes`, padded, or None when
/// no whole message is there.
fn message_len(bytes: &[u8]) -> Option<usize> {
    let (h, _) = Nlmsghdr::read_from_prefix(bytes).ok()?;
    let len = h.len as usize;
    (len >= HDR && len <= bytes.len()).then(|| align4(len).min(bytes.len()))
}

/// A dump being read: its messages, NLMSG_DONE last, and how far the parts
/// made so far reach.
struct Dump {
    messages: Vec<u8>,
    at: usize,
}

/// What a socket holds for its reader: Linux's receive queue, with its
/// running dump and pending error.
#[derive(Default)]
struct Inbox {
    /// Datagrams ready to read.
    queue: VecDeque<Vec<u8>>,
    /// What `queue` is charged (sk_rmem_alloc), at most about BUFFER, the
    /// receive buffer (SO_RCVBUF reads BUFFER).
    charged: usize,
    /// The dump whose parts are still to be made (cb_running).
    dump: Option<Dump>,
    /// The largest buffer a receive has offered, capped (max_recvmsg_len).
    max_recvmsg_len: usize,
    /// The error the next receive (or SO_ERROR) reports (sk_err).
    error: Option<ErrnoCode>,
    /// Replies are dropped until the queue empties (NETLINK_S_CONGESTED).
    congested: bool,
}

impl Inbox {
    /// Queues the replies to one request: a dump's first part is made now, as
    /// netlink_dump_start makes it, the rest as receives make room; anything
    /// else is one datagram.
    fn deliver(&mut self, replies: Vec<u8>, dump: bool) {
        if dump {
            self.dump = Some(Dump { messages: replies, at: 0 });
            // Linux acks a dump that could not start with ENOBUFS, and the
            // full queue drops that ack; the dump waits for room.
            if self.dump_part().is_err() {
                self.overrun();
            }
        } else if !replies.is_empty() {
            self.unicast(replies);
        }
    }

    /// netlink_unicast from the kernel: dropped when the queue is full.
    fn unicast(&mut self, datagram: Vec<u8>) {
        if self.charged > BUFFER || self.congested {
            self.overrun();
            return;
        }
        self.charged += truesize(datagram.len());
        self.queue.push_back(datagram);
    }

    /// netlink_overrun: a reply was dropped, which the reader learns once,
    /// by ENOBUFS, until the queue has emptied.
    fn overrun(&mut self) {
        if !self.congested {
            self.congested = true;
            self.error = Some(ErrnoCode::ENOBUFS);
        }
    }

    /// netlink_dump: queues the running dump's next part, as many whole
    /// messages as fit the room the reader's largest buffer asked for (at
    /// least NLMSG_GOODSIZE), and at least one; ENOBUFS while the queue is full.
    fn dump_part(&mut self) -> Result<(), ErrnoCode> {
        let Some(dump) = &mut self.dump else { return Ok(()) };
        if self.charged >= BUFFER {
            return Err(ErrnoCode::ENOBUFS);
        }
        let room = self.max_recvmsg_len.max(NLMSG_GOODSIZE);
        let rest = dump.messages.get(dump.at..).unwrap_or_default();
        let mut len = 0;
        while let Some(next) = rest.get(len..).and_then(message_len) {
            if len > 0 && len + next > room {
                break;
            }
            len += next;
        }
        // Nothing but whole messages is ever dumped; should the rest not be
        // one, it goes whole rather than never.
        let len = if len == 0 { rest.len() } else { len };
        let part = rest[..len].to_vec();
        dump.at += len;
        if dump.at >= dump.messages.len() {
            self.dump = None;
        }
        if !part.is_empty() {
            self.charged += truesize(part.len());
            self.queue.push_back(part);
        }
        Ok(())
    }

    /// netlink_recvmsg's taking of the next datagram for a buffer of `max`
    /// bytes (its first `max` bytes, and its length), then the dump's next
    /// part if the queue is at most half full. None when nothing is queued.
    fn take(&mut self, max: usize, peek: bool) -> Option<(Vec<u8>, usize)> {
        let front = self.queue.front()?;
        let full = front.len();
        let data = if peek {
            front[..max.min(full)].to_vec()
        } else {
            let mut data = self.queue.pop_front()?;
            self.charged = self.charged.saturating_sub(truesize(full));
            data.truncate(max);
            data
        };
        self.max_recvmsg_len = self.max_recvmsg_len.max(max).min(MAX_RECVMSG_LEN);
        if self.dump.is_some() && self.charged <= BUFFER / 2 {
            if let Err(e) = self.dump_part() {
                self.error = Some(e);
            }
        }
        if self.queue.is_empty() {
            self.congested = false;
        }
        Some((data, full))
    }
}

/// A NETLINK_ROUTE or NETLINK_SOCK_DIAG socket.
pub struct NetlinkSocket {
    kind: i32,
    protocol: i32,
    ino: SocketInode,
    flags: StatusFlags,
    queue: Arc<WaitQueue>,
    /// Its port id (nl_pid), 0 until bound.
    port: AtomicU32,
    /// Held while a send's requests are answered, so that one dump starts
    /// at a time (Linux's cb_mutex). Taken before `inbox`; never held
    /// across a wait.
    sending: Mutex<()>,
    /// What waits to be read. Leaf lock.
    inbox: Mutex<Inbox>,
}

impl NetlinkSocket {
    pub fn new(kind: i32, protocol: i32, flags: u32) -> Arc<NetlinkSocket> {
        Arc::new(NetlinkSocket {
            kind,
            protocol,
            ino: SocketInode::new(),
            flags: StatusFlags::new(flags | OpenFlags::RDWR),
            queue: Arc::default(),
            port: AtomicU32::new(0),
            sending: Mutex::default(),
            inbox: Mutex::default(),
        })
    }

    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Its port id, given on first use: the process id, as Linux gives the
    /// first socket of a process.
    fn port(&self, t: &Task) -> u32 {
        let _ = self.port.compare_exchange(0, t.tg.tgid as u32, Ordering::Relaxed, Ordering::Relaxed);
        self.port.load(Ordering::Relaxed)
    }

    fn sockaddr(pid: u32) -> Vec<u8> {
        SockaddrNl { family: AF_NETLINK as u16, pad: 0, pid, groups: 0 }.as_bytes().to_vec()
    }

    fn read_address(raw: &[u8]) -> SysResult<SockaddrNl> {
        let Ok((a, _)) = SockaddrNl::read_from_prefix(raw) else { return error!(EINVAL) };
        if i32::from(a.family) != AF_NETLINK {
            return error!(EINVAL);
        }
        Ok(a)
    }
}

impl Socket for NetlinkSocket {
    fn domain(&self) -> i32 {
        AF_NETLINK
    }

    fn kind(&self) -> i32 {
        self.kind
    }

    fn protocol(&self) -> i32 {
        self.protocol
    }

    /// bind(2) to a port id (0: the process id); multicast groups are
    /// accepted, but no event is ever sent to them.
    fn bind(&self, t: &Task, addr: &[u8]) -> SysResult<()> {
        let a = NetlinkSocket::read_address(addr)?;
        if a.pid != 0 {
            let _ = self.port.compare_exchange(0, a.pid, Ordering::Relaxed, Ordering::Relaxed);
        }
        self.port(t);
        Ok(())
    }

    fn listen(&self, _t: &Task, _backlog: i32) -> SysResult<()> {
        error!(EOPNOTSUPP)
    }

    /// connect(2): only the kernel (port 0) answers here.
    fn connect(&self, t: &Task, addr: &[u8]) -> SysResult<()> {
        NetlinkSocket::read_address(addr)?;
        self.port(t);
        Ok(())
    }

    fn accept(&self, _t: &Task) -> SysResult<super::Accepted> {
        error!(EOPNOTSUPP)
    }

    fn send(&self, t: &Task, data: &[u8], _flags: u32, _anc: Ancillary, to: Option<&[u8]>) -> SysResult<usize> {
        if let Some(raw) = to {
            if NetlinkSocket::read_address(raw)?.pid != 0 {
                return error!(ECONNREFUSED);
            }
        }
        let port = self.port(t);
        let uid = t.tg.creds().uid;
        let admin = t.tg.capable_in(&t.ns.net.owner, consts::CAP_NET_ADMIN);
        let traffic = t.ns.net.netstack.as_ref().map(|n| (n.info.name.as_str(), n.traffic()));
        let _sending = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        for (h, body) in requests(data) {
            let mut out = Vec::new();
            let busy = self.inbox().dump.is_some();
            let mut r = Replies { out: &mut out, seq: h.seq, port, busy, dumping: false };
            if self.protocol == sock_diag::NETLINK_SOCK_DIAG {
                sock_diag::answer(&mut r, &h, body, admin, &sock_diag::TaskSockets(t));
            } else {
                rtnetlink(&mut r, &h, body, uid, admin, &t.ns.net.interfaces, traffic);
            }
            let dumping = r.dumping;
            let queued = {
                let mut inbox = self.inbox();
                let before = inbox.queue.len();
                inbox.deliver(out, dumping);
                inbox.queue.len() > before
            };
            if queued {
                self.queue.notify_events(POLLIN);
            }
        }
        Ok(data.len())
    }

    /// recvmsg: the next datagram, cut to `max` bytes (its whole length for
    /// MSG_TRUNC), after any error a dropped reply left.
    fn receive(&self, t: &Task, max: usize, flags: u32) -> SysResult<Received> {
        loop {
            {
                let mut inbox = self.inbox();
                if let Some(e) = inbox.error.take() {
                    return Err(rvisor_abi::Errno::new(e));
                }
                if let Some((data, full)) = inbox.take(max, flags & MSG_PEEK != 0) {
                    let more = !inbox.queue.is_empty();
                    drop(inbox);
                    if more {
                        // A new part may have been queued for other readers.
                        self.queue.notify_events(POLLIN);
                    }
                    return Ok(Received { data, full, from: Some(NetlinkSocket::sockaddr(0)), ..Received::default() });
                }
            }
            if flags & MSG_DONTWAIT != 0 || self.flags.get() & OpenFlags::NONBLOCK != 0 {
                return error!(EAGAIN);
            }
            self.queue.register(&t.thread);
            let r = t.block_until(None, || {
                let inbox = self.inbox();
                !inbox.queue.is_empty() || inbox.error.is_some()
            });
            self.queue.unregister(&t.thread);
            r?;
        }
    }

    fn shutdown(&self, _how: i32) -> SysResult<()> {
        error!(EOPNOTSUPP)
    }

    fn name(&self) -> Vec<u8> {
        NetlinkSocket::sockaddr(self.port.load(Ordering::Relaxed))
    }

    fn peer_name(&self) -> SysResult<Vec<u8>> {
        Ok(NetlinkSocket::sockaddr(0))
    }

    fn listening(&self) -> bool {
        false
    }

    fn take_error(&self) -> Option<ErrnoCode> {
        self.inbox().error.take()
    }

    /// SOL_NETLINK options (extended acks, strict checking, memberships)
    /// are accepted and read 0: the answers here do not depend on them.
    fn get_option(&self, _t: &Task, level: i32, _name: i32) -> SysResult<Vec<u8>> {
        if level != SOL_NETLINK {
            return error!(ENOPROTOOPT);
        }
        Ok(0i32.to_ne_bytes().to_vec())
    }

    fn set_option(&self, _t: &Task, level: i32, _name: i32, value: &[u8]) -> SysResult<()> {
        if level != SOL_NETLINK {
            return error!(ENOPROTOOPT);
        }
        super::int_option(value).map(drop)
    }
}

impl FileDescription for NetlinkSocket {
    super::socket_file_basics!(BUFFER);

    fn readiness(&self, mask: u32) -> u32 {
        let inbox = self.inbox();
        let readable = if inbox.queue.is_empty() { 0 } else { POLLIN };
        let error = if inbox.error.is_some() { POLLERR } else { 0 };
        (POLLOUT | readable | error) & mask
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn ioctl(&self, t: &Task, request: u32, arg: u64) -> SysResult<u64> {
        if interface::is_interface_ioctl(request) {
            return interface::ioctl(t, request, arg);
        }
        error!(ENOTTY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: u16, flags: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Nlmsghdr { len: (HDR + body.len()) as u32, kind, flags, seq: 7, pid: 0 }.as_bytes().to_vec();
        m.extend_from_slice(body);
        m
    }

    /// The (type, seq, pid) of each message in a reply.
    fn messages(mut data: &[u8]) -> Vec<(u16, u32, u32)> {
        let mut out = Vec::new();
        while let Ok((h, _)) = Nlmsghdr::read_from_prefix(data) {
            out.push((h.kind, h.seq, h.pid));
            data = &data[align4(h.len as usize).min(data.len())..];
        }
        out
    }

    fn answer(data: &[u8], port: u32, uid: u32, admin: bool, others: &[InterfaceInfo], traffic: Option<(&str, Traffic)>) -> Vec<u8> {
        answer_all(data, port, |r, h, body| rtnetlink(r, h, body, uid, admin, others, traffic))
    }

    fn answer_lo(data: &[u8], port: u32) -> Vec<u8> {
        answer(data, port, 0, true, &[], None)
    }

    /// One parsed reply message: its type, fixed body and attributes.
    struct Msg {
        kind: u16,
        body: Vec<u8>,
        attrs: Vec<(u16, Vec<u8>)>,
    }

    impl Msg {
        fn attr(&self, kind: u16) -> Option<&[u8]> {
            self.attrs.iter().find(|a| a.0 == kind).map(|a| a.1.as_slice())
        }
    }

    /// Parses a reply as a reader walks it (NLMSG_NEXT, RTA_NEXT), checking
    /// that every length is in bounds and everything starts 4-aligned.
    fn parse(data: &[u8]) -> Vec<Msg> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let (h, _) = Nlmsghdr::read_from_prefix(&data[at..]).unwrap();
            let len = h.len as usize;
            assert!(len >= HDR && at + len <= data.len(), "message length {len} at {at}");
            let fixed = match h.kind {
                RTM_NEWLINK => 16,
                RTM_NEWADDR => 8,
                RTM_NEWROUTE => 12,
                RTM_NEWNSID => 4,
                _ => len - HDR,
            };
            let msg = &data[at + HDR..at + len];
            let mut attrs = Vec::new();
            let mut a = align4(fixed);
            while a < msg.len() {
                let (rta, _) = Rtattr::read_from_prefix(&msg[a..]).unwrap();
                let alen = usize::from(rta.len);
                assert!(alen >= 4 && a + alen <= msg.len(), "attribute {} length {alen}", rta.kind);
                attrs.push((rta.kind, msg[a + 4..a + alen].to_vec()));
                a += align4(alen);
            }
            assert_eq!(a, msg.len());
            out.push(Msg { kind: h.kind, body: msg[..fixed].to_vec(), attrs });
            at += align4(len);
        }
        assert_eq!(at, data.len());
        out
    }

    fn dump(kind: u16, body: &[u8]) -> Vec<Msg> {
        let msgs = parse(&answer(&request(kind, NLM_F_REQUEST | NLM_F_DUMP, body), 1, 0, true, &[interface::tests::eth0()], None));
        assert_eq!(msgs.last().map(|m| m.kind), Some(NLMSG_DONE));
        msgs
    }

    #[test]
    fn links() {
        let msgs = dump(RTM_GETLINK, &[0; 16]);
        assert_eq!(msgs.len(), 3);
        let lo = Ifinfomsg::read_from_bytes(&msgs[0].body).unwrap();
        assert_eq!((lo.kind, lo.index, lo.flags), (interface::ARPHRD_LOOPBACK, 1, 0x10049));
        assert_eq!(msgs[0].attr(IFLA_IFNAME), Some(&b"lo\0"[..]));
        assert_eq!(msgs[0].attr(IFLA_OPERSTATE), Some(&[0][..]));
        let eth = Ifinfomsg::read_from_bytes(&msgs[1].body).unwrap();
        // ARPHRD_ETHER; IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_MULTICAST | IFF_LOWER_UP.
        assert_eq!((eth.kind, eth.index, eth.flags), (1, 2, 0x11043));
        assert_eq!(msgs[1].attr(IFLA_IFNAME), Some(&b"eth0\0"[..]));
        assert_eq!(msgs[1].attr(IFLA_ADDRESS), Some(&[0x02, 0x42, 0x0a, 0xd6, 0x01, 0x02][..]));
        assert_eq!(msgs[1].attr(IFLA_BROADCAST), Some(&[0xff; 6][..]));
        assert_eq!(msgs[1].attr(IFLA_MTU), Some(&1500u32.to_ne_bytes()[..]));
        assert_eq!(msgs[1].attr(IFLA_TXQLEN), Some(&1000u32.to_ne_bytes()[..]));
        assert_eq!(msgs[1].attr(IFLA_OPERSTATE), Some(&[6][..]));

        // One link, by index or by name.
        let others = [interface::tests::eth0()];
        let mut by_index = Ifinfomsg::zeroed();
        by_index.index = 2;
        let one = parse(&answer(&request(RTM_GETLINK, NLM_F_REQUEST, by_index.as_bytes()), 1, 0, true, &others, None));
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].attr(IFLA_IFNAME), Some(&b"eth0\0"[..]));
        let mut by_name = Ifinfomsg::zeroed().as_bytes().to_vec();
        by_name.extend_from_slice(Rtattr { len: 9, kind: IFLA_IFNAME }.as_bytes());
        by_name.extend_from_slice(b"eth0\0\0\0\0");
        let one = parse(&answer(&request(RTM_GETLINK, NLM_F_REQUEST, &by_name), 1, 0, true, &others, None));
        assert_eq!(Ifinfomsg::read_from_bytes(&one[0].body).unwrap().index, 2);
    }

    #[test]
    fn links_come_up_and_stay_up() {
        let others = [interface::tests::eth0()];
        let msg = |flags: u32, change: u32, extra: &[u8]| {
            let mut body = Ifinfomsg { family: 0, pad: 0, kind: 0, index: 2, flags, change }.as_bytes().to_vec();
            body.extend_from_slice(extra);
            body
        };
        assert_eq!(set_link(&msg(IFF_UP, IFF_UP, &[]), &others, true), Ok(()));
        assert_eq!(set_link(&msg(IFF_UP, IFF_UP, &[]), &others, false), Err(ErrnoCode::EPERM));
        assert_eq!(set_link(&msg(0, IFF_UP, &[]), &others, true), Err(ErrnoCode::EOPNOTSUPP));
        let mut mtu = Rtattr { len: 8, kind: IFLA_MTU }.as_bytes().to_vec();
        mtu.extend_from_slice(&9000u32.to_ne_bytes());
        assert_eq!(set_link(&msg(0, 0, &mtu), &others, true), Err(ErrnoCode::EOPNOTSUPP));
        let mut missing = msg(IFF_UP, IFF_UP, &[]);
        missing[4] = 9;
        assert_eq!(set_link(&missing, &others, true), Err(ErrnoCode::ENODEV));
    }

    #[test]
    fn no_namespace_has_an_id() {
        let msgs = parse(&answer(&request(RTM_GETNSID, NLM_F_REQUEST, &[0; 4]), 1, 0, true, &[], None));
        assert_eq!((msgs.len(), msgs[0].kind), (1, RTM_NEWNSID));
        assert_eq!(msgs[0].attr(NETNSA_NSID), Some(&(-1i32).to_ne_bytes()[..]));
    }

    #[test]
    fn addresses() {
        let msgs = dump(RTM_GETADDR, &[0; 8]);
        let addrs: Vec<Ifaddrmsg> = msgs[..msgs.len() - 1].iter().map(|m| Ifaddrmsg::read_from_bytes(&m.body).unwrap()).collect();
        // IPv4 of every interface, then IPv6.
        let summary: Vec<(u8, u8, u8, u32)> = addrs.iter().map(|a| (a.family, a.prefixlen, a.scope, a.index)).collect();
        assert_eq!(summary, [(AF_INET, 8, 254, 1), (AF_INET, 24, 0, 2), (AF_INET6, 128, 254, 1), (AF_INET6, 64, 253, 2)]);
        assert_eq!(msgs[0].attr(IFA_BROADCAST), None);
        assert_eq!(msgs[1].attr(IFA_ADDRESS), Some(&[10, 214, 1, 2][..]));
        assert_eq!(msgs[1].attr(IFA_LOCAL), Some(&[10, 214, 1, 2][..]));
        assert_eq!(msgs[1].attr(IFA_BROADCAST), Some(&[10, 214, 1, 255][..]));
        assert_eq!(msgs[1].attr(IFA_LABEL), Some(&b"eth0\0"[..]));
        let fe80: std::net::Ipv6Addr = "fe80::42:aff:fed6:102".parse().unwrap();
        assert_eq!(msgs[3].attr(IFA_ADDRESS), Some(&fe80.octets()[..]));
        assert_eq!(dump(RTM_GETADDR, &[AF_INET, 0, 0, 0, 0, 0, 0, 0]).len(), 3);
    }

    #[test]
    fn routes() {
        let msgs = dump(RTM_GETROUTE, &[AF_INET, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(msgs.len(), 3);
        let default = Rtmsg::read_from_bytes(&msgs[0].body).unwrap();
        assert_eq!((default.dst_len, default.table, default.protocol, default.scope, default.kind), (0, RT_TABLE_MAIN, RTPROT_BOOT, 0, RTN_UNICAST));
        assert_eq!(msgs[0].attr(RTA_DST), None);
        assert_eq!(msgs[0].attr(RTA_GATEWAY), Some(&[10, 214, 1, 1][..]));
        assert_eq!(msgs[0].attr(RTA_OIF), Some(&2u32.to_ne_bytes()[..]));
        assert_eq!(msgs[0].attr(RTA_TABLE), Some(&254u32.to_ne_bytes()[..]));
        let subnet = Rtmsg::read_from_bytes(&msgs[1].body).unwrap();
        assert_eq!((subnet.dst_len, subnet.protocol, subnet.scope), (24, RTPROT_KERNEL, 253));
        assert_eq!(msgs[1].attr(RTA_DST), Some(&[10, 214, 1, 0][..]));
        assert_eq!(msgs[1].attr(RTA_PREFSRC), Some(&[10, 214, 1, 2][..]));
        assert_eq!(msgs[1].attr(RTA_GATEWAY), None);

        let all = dump(RTM_GETROUTE, &[0; 12]);
        assert_eq!(all.len(), 4);
        let v6 = Rtmsg::read_from_bytes(&all[2].body).unwrap();
        assert_eq!((v6.family, v6.dst_len, v6.protocol, v6.scope), (AF_INET6, 64, RTPROT_KERNEL, 0));
        assert_eq!(all[2].attr(RTA_DST), Some(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]));
        assert_eq!(all[2].attr(RTA_OIF), Some(&2u32.to_ne_bytes()[..]));
        assert_eq!(all[2].attr(RTA_PRIORITY), Some(&256u32.to_ne_bytes()[..]));
        assert_eq!(all[2].attr(RTA_PREF), Some(&[0][..]));
        // lo alone has no route in the main table.
        assert_eq!(parse(&answer_lo(&request(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, &[0; 12]), 1)).len(), 1);
    }

    #[test]
    fn dumps_end_with_done() {
        let links = answer_lo(&request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &[0; 16]), 42);
        assert_eq!(messages(&links), [(RTM_NEWLINK, 7, 42), (NLMSG_DONE, 7, 42)]);
        let addrs = answer_lo(&request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &[0; 8]), 42);
        assert_eq!(messages(&addrs), [(RTM_NEWADDR, 7, 42), (RTM_NEWADDR, 7, 42), (NLMSG_DONE, 7, 42)]);
        let v6 = answer_lo(&request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &[AF_INET6, 0, 0, 0, 0, 0, 0, 0]), 1);
        assert_eq!(messages(&v6).len(), 2);
    }

    /// A dump of `n` messages of 100 bytes each, NLMSG_DONE last.
    fn big_dump(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut r = Replies { out: &mut out, seq: 1, port: 1, busy: false, dumping: false };
        for _ in 0..n {
            let m = r.begin(RTM_NEWADDR, NLM_F_MULTI, &[0; 84]);
            r.end(m);
        }
        r.done();
        out
    }

    #[test]
    fn dumps_are_read_in_parts_of_whole_messages() {
        let mut inbox = Inbox::default();
        inbox.deliver(big_dump(700), true);
        // The first part fills NLMSG_GOODSIZE; a peek leaves it queued.
        let (peeked, full) = inbox.take(0, true).unwrap();
        assert_eq!((peeked.len(), full), (0, NLMSG_GOODSIZE / 100 * 100));
        let (first, _) = inbox.take(4096, false).unwrap();
        assert_eq!(first.len(), full);
        assert_eq!(messages(&first).len(), NLMSG_GOODSIZE / 100);
        // The peek made the second part, as large as the buffers offered
        // then; later ones are as large as the largest since, capped.
        let sizes: Vec<usize> = (0..3).map(|_| inbox.take(1 << 20, false).unwrap().0.len()).collect();
        assert_eq!(sizes, [3700, 4000, MAX_RECVMSG_LEN / 100 * 100]);
        // A short buffer gets the part's start, and the rest of it is gone.
        let (cut, full) = inbox.take(16, false).unwrap();
        assert_eq!((cut.len(), full), (16, 70000 - 3700 * 2 - 4000 - 32400 + 20));
        assert!(inbox.dump.is_none() && inbox.take(16, false).is_none());
        assert_eq!(inbox.charged, 0);
    }

    #[test]
    fn a_second_dump_is_busy_and_unread_replies_are_bounded() {
        let data = request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &[0; 16]);
        let mut out = Vec::new();
        let (h, body) = requests(&data).next().unwrap();
        let mut r = Replies { out: &mut out, seq: 7, port: 1, busy: true, dumping: false };
        rtnetlink(&mut r, &h, body, 0, true, &[], None);
        assert!(!r.dumping);
        assert_eq!(messages(&out), [(NLMSG_ERROR, 7, 1)]);
        assert_eq!(i32::from_ne_bytes(out[HDR..HDR + 4].try_into().unwrap()), -(ErrnoCode::EBUSY.0 as i32));

        // Replies nobody reads fill the receive buffer; the next is dropped,
        // reported once by ENOBUFS, and the queue takes replies again once empty.
        let mut inbox = Inbox::default();
        let mut kept = 0;
        while inbox.error.is_none() {
            inbox.deliver(out.clone(), false);
            kept += 1;
        }
        assert_eq!(inbox.queue.len(), kept - 1);
        assert!(inbox.charged <= BUFFER + truesize(out.len()));
        inbox.deliver(big_dump(1000), true);
        assert_eq!(inbox.queue.len(), kept - 1);
        assert_eq!(inbox.error.take(), Some(ErrnoCode::ENOBUFS));
        while inbox.take(1 << 16, false).is_some() {}
        assert!(inbox.dump.is_none() && !inbox.congested);
        inbox.deliver(out.clone(), false);
        assert_eq!(inbox.queue.len(), 1);
    }

    #[test]
    fn errors_and_acks() {
        let mut other = Ifinfomsg::zeroed();
        other.index = 5;
        let reply = answer_lo(&request(RTM_GETLINK, NLM_F_REQUEST, other.as_bytes()), 1);
        assert_eq!(messages(&reply), [(NLMSG_ERROR, 7, 1)]);
        assert_eq!(i32::from_ne_bytes(reply[HDR..HDR + 4].try_into().unwrap()), -19);
        let unknown = answer_lo(&request(99, NLM_F_REQUEST | NLM_F_ACK, &[]), 1);
        assert_eq!(i32::from_ne_bytes(unknown[HDR..HDR + 4].try_into().unwrap()), -95);
        // Truncated or non-request messages get no answer.
        assert!(answer_lo(&[1, 2, 3], 1).is_empty());
        assert!(answer_lo(&request(RTM_GETLINK, 0, &[]), 1).is_empty());
    }
}
