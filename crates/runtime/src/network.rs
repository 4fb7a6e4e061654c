//! `--network=sandbox`: the sandbox's own network stack takes over the
//! interfaces of the network namespace it joined (a CNI pod's), as runsc does.
//!
//! Read through NETLINK_ROUTE: each interface that is up, Ethernet, not
//! loopback and has an address besides an IPv6 link-local one, with its
//! addresses and the routes of the main table through it. Each gets an
//! AF_PACKET socket bound to it, and then the host's stack lets it go: its
//! IPv6 is disabled and its addresses are removed, so that the host no longer
//! answers ARP, NDP or TCP for them (it would reset the sandbox's
//! connections, or autoconfigure itself an address from a router's
//! advertisement).

use rvisor_abi::structs::{Ifaddrmsg, Ifinfomsg, Nlmsghdr, Rtattr, Rtmsg, SockaddrLl, SockaddrNl};
use rvisor_kernel::net::interface::{InterfaceInfo, RouteInfo};
use rvisor_kernel::Nic;
use rvisor_platform::hostcall::socket;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};
use zerocopy::{FromBytes, Immutable, IntoBytes};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;

const ARPHRD_ETHER: u16 = 1;
const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;
const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;
const ETH_P_ALL: u16 = 0x0003;

/// Takes the usable interfaces of the calling thread's network namespace
/// for the sandbox. None is not an error: the sandbox then has loopback only.
pub fn take_interfaces() -> Result<Vec<Nic>, String> {
    let rtnl = Rtnetlink::open().map_err(|e| format!("netlink: {e}"))?;
    let interfaces = rtnl.interfaces()?;
    if interfaces.is_empty() {
        tracing::warn!("--network=sandbox: the network namespace has no interface to take (up, Ethernet, with an address): loopback only");
    }
    // Every socket first: a failure must leave the host's configuration whole.
    let nics = interfaces
        .into_iter()
        .map(|info| {
            let packet = packet_socket(info.index).map_err(|e| format!("interface {}: AF_PACKET socket: {e}", info.name))?;
            Ok(Nic { info, packet })
        })
        .collect::<Result<Vec<_>, String>>()?;
    for nic in &nics {
        release(&rtnl, &nic.info)?;
        tracing::info!("--network=sandbox: took {} ({:?}, routes {:?})", nic.info.name, nic.info.addrs, nic.info.routes);
    }
    Ok(nics)
}

/// A non-blocking AF_PACKET socket that sends and receives every frame of
/// interface `index`.
fn packet_socket(index: i32) -> io::Result<OwnedFd> {
    let protocol = ETH_P_ALL.to_be();
    let fd = socket::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(protocol))?;
    let addr = SockaddrLl { family: libc::AF_PACKET as u16, protocol, ifindex: index, hatype: 0, pkttype: 0, halen: 0, addr: [0; 8] };
    socket::bind(fd.as_fd(), addr.as_bytes())?;
    Ok(fd)
}

/// Makes the host's stack let go of `info`'s interface. IPv6 is disabled
/// first, which removes every IPv6 address at once and keeps the host from
/// adding any back (link-local on the next link change, SLAAC from a
/// router's advertisement); then the addresses left (IPv4) are removed.
fn release(rtnl: &Rtnetlink, info: &InterfaceInfo) -> Result<(), String> {
    let sysctl = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", info.name);
    match std::fs::write(&sysctl, "1") {
        // A host without IPv6 has no such file, and nothing to disable.
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(format!("interface {}: {sysctl}: {e}", info.name)),
        _ => {}
    }
    for &(addr, prefix) in &info.addrs {
        match rtnl.delete_address(info.index, addr, prefix) {
            // Already gone: an IPv6 one with IPv6 disabled, or an IPv4
            // secondary removed with its primary.
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {}
            Err(e) => return Err(format!("interface {}: cannot remove the host's address {addr}/{prefix}: {e}", info.name)),
            Ok(()) => {}
        }
    }
    Ok(())
}

/// A host NETLINK_ROUTE socket and the sequence number of its next request.
struct Rtnetlink {
    fd: OwnedFd,
    seq: std::cell::Cell<u32>,
}

/// One message of a reply: its type and what follows its header.
struct Message {
    kind: u16,
    body: Vec<u8>,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn other(msg: String) -> io::Error {
    io::Error::other(msg)
}

impl Rtnetlink {
    fn open() -> io::Result<Rtnetlink> {
        let fd = socket::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)?;
        let addr = SockaddrNl { family: libc::AF_NETLINK as u16, pad: 0, pid: 0, groups: 0 };
        socket::bind(fd.as_fd(), addr.as_bytes())?;
        Ok(Rtnetlink { fd, seq: std::cell::Cell::new(1) })
    }

    /// Sends one request (a header of `kind` and `flags`, then `body`) and
    /// returns the messages that answer it, up to NLMSG_DONE for a dump or
    /// the acknowledgement; an NLMSG_ERROR with an error is that error.
    fn request(&self, kind: u16, flags: u16, body: &[u8]) -> io::Result<Vec<Message>> {
        let seq = self.seq.get();
        self.seq.set(seq.wrapping_add(1));
        let len = std::mem::size_of::<Nlmsghdr>() + body.len();
        let hdr = Nlmsghdr { len: len as u32, kind, flags: NLM_F_REQUEST | flags, seq, pid: 0 };
        let msg = [hdr.as_bytes(), body].concat();
        socket::send(self.fd.as_fd(), &msg, 0, None)?;
        let mut replies = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = self.receive(&mut buf)?;
            let mut rest = &buf[..n];
            while let Ok((h, _)) = Nlmsghdr::read_from_prefix(rest) {
                let size = h.len as usize;
                if size < std::mem::size_of::<Nlmsghdr>() || size > rest.len() {
                    return Err(other(format!("netlink: a malformed reply (length {size})")));
                }
                let body = &rest[std::mem::size_of::<Nlmsghdr>()..size];
                rest = &rest[align4(size).min(rest.len())..];
                if h.seq != seq {
                    continue;
                }
                match h.kind {
                    NLMSG_DONE => return Ok(replies),
                    NLMSG_ERROR => {
                        let code = i32::read_from_prefix(body).map(|(c, _)| c).unwrap_or(-libc::EIO);
                        return if code == 0 { Ok(replies) } else { Err(io::Error::from_raw_os_error(-code)) };
                    }
                    _ => replies.push(Message { kind: h.kind, body: body.to_vec() }),
                }
            }
        }
    }

    /// The next datagram, waiting for it if need be (the socket is
    /// non-blocking; Linux answers within the send, and makes each next part
    /// of a dump within the receive of the one before, so this rarely waits).
    fn receive(&self, buf: &mut [u8]) -> io::Result<usize> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        loop {
            match socket::receive(self.fd.as_fd(), buf, libc::MSG_TRUNC) {
                Ok((n, _)) if n > buf.len() => return Err(other(format!("netlink: a reply of {n} bytes"))),
                Ok((n, _)) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
                    if poll(&mut fds, PollTimeout::from(5000u16)).map_err(io::Error::from)? == 0 {
                        return Err(other("netlink: no answer in 5 s".into()));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn dump<T: IntoBytes + Immutable>(&self, kind: u16, body: &T, what: &str) -> Result<Vec<Message>, String> {
        self.request(kind, NLM_F_DUMP, body.as_bytes()).map_err(|e| format!("netlink: listing the {what}: {e}"))
    }

    /// The interfaces the sandbox takes, with their addresses and routes.
    fn interfaces(&self) -> Result<Vec<InterfaceInfo>, String> {
        let mut interfaces = Vec::new();
        let link = Ifinfomsg { family: libc::AF_UNSPEC as u8, pad: 0, kind: 0, index: 0, flags: 0, change: 0 };
        for m in self.dump(RTM_GETLINK, &link, "interfaces")? {
            if let Some(info) = parse_link(&m) {
                interfaces.push(info);
            }
        }
        let addr = Ifaddrmsg { family: libc::AF_UNSPEC as u8, prefixlen: 0, flags: 0, scope: 0, index: 0 };
        for m in self.dump(RTM_GETADDR, &addr, "addresses")? {
            if let Some((index, a)) = parse_address(&m) {
                if let Some(i) = interfaces.iter_mut().find(|i| i.index == index) {
                    i.addrs.push(a);
                }
            }
        }
        // An IPv6 link-local address alone is what any interface that is up
        // has, configured or not.
        interfaces.retain(|i| i.addrs.iter().any(|&(a, _)| !is_link_local(a)));
        let route = Rtmsg::zeroed();
        for m in self.dump(RTM_GETROUTE, &route, "routes")? {
            if let Some((index, r)) = parse_route(&m) {
                if let Some(i) = interfaces.iter_mut().find(|i| i.index == index) {
                    if r.gateway.is_some() || !i.addrs.iter().any(|&(a, p)| p == r.prefix && network(a, p) == r.dest) {
                        i.routes.push(r);
                    }
                }
            }
        }
        Ok(interfaces)
    }

    /// RTM_DELADDR of `addr`/`prefix` on interface `index`.
    fn delete_address(&self, index: i32, addr: IpAddr, prefix: u8) -> io::Result<()> {
        let (family, bytes) = match addr {
            IpAddr::V4(a) => (libc::AF_INET, a.octets().to_vec()),
            IpAddr::V6(a) => (libc::AF_INET6, a.octets().to_vec()),
        };
        let msg = Ifaddrmsg { family: family as u8, prefixlen: prefix, flags: 0, scope: 0, index: index as u32 };
        let attr = Rtattr { len: (std::mem::size_of::<Rtattr>() + bytes.len()) as u16, kind: IFA_LOCAL };
        let body = [msg.as_bytes(), attr.as_bytes(), &bytes].concat();
        self.request(RTM_DELADDR, NLM_F_ACK, &body).map(drop)
    }
}

/// The attributes after a message's fixed part of `fixed` bytes: (type, value).
fn attributes(body: &[u8], fixed: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = body.get(align4(fixed)..).unwrap_or_default();
    std::iter::from_fn(move || {
        let (a, _) = Rtattr::read_from_prefix(rest).ok()?;
        let len = a.len as usize;
        if len < std::mem::size_of::<Rtattr>() || len > rest.len() {
            return None;
        }
        let value = &rest[std::mem::size_of::<Rtattr>()..len];
        rest = &rest[align4(len).min(rest.len())..];
        Some((a.kind & 0x3fff, value))
    })
}

/// An RTM_NEWLINK's interface, if it is one the sandbox takes (up,
/// Ethernet, not loopback); addresses and routes come later.
fn parse_link(m: &Message) -> Option<InterfaceInfo> {
    let (ifi, _) = Ifinfomsg::read_from_prefix(&m.body).ok()?;
    if m.kind != RTM_NEWLINK || ifi.kind != ARPHRD_ETHER || ifi.flags & IFF_UP == 0 || ifi.flags & IFF_LOOPBACK != 0 {
        return None;
    }
    let mut info = InterfaceInfo { name: String::new(), index: ifi.index, mac: [0; 6], mtu: 1500, addrs: Vec::new(), routes: Vec::new() };
    for (kind, value) in attributes(&m.body, std::mem::size_of::<Ifinfomsg>()) {
        match kind {
            IFLA_IFNAME => info.name = String::from_utf8_lossy(value.split(|&b| b == 0).next().unwrap_or_default()).into_owned(),
            IFLA_ADDRESS => info.mac = value.try_into().ok()?,
            IFLA_MTU => info.mtu = u32::read_from_bytes(value).ok()?,
            _ => {}
        }
    }
    (!info.name.is_empty()).then_some(info)
}

fn ip(family: u8, value: &[u8]) -> Option<IpAddr> {
    match family as i32 {
        libc::AF_INET => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(value).ok()?))),
        libc::AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(value).ok()?))),
        _ => None,
    }
}

/// An RTM_NEWADDR's interface index and address. IFA_LOCAL is the
/// interface's own address where there is one (IFA_ADDRESS is then a
/// point-to-point peer's).
fn parse_address(m: &Message) -> Option<(i32, (IpAddr, u8))> {
    let (ifa, _) = Ifaddrmsg::read_from_prefix(&m.body).ok()?;
    if m.kind != RTM_NEWADDR {
        return None;
    }
    let (mut local, mut address) = (None, None);
    for (kind, value) in attributes(&m.body, std::mem::size_of::<Ifaddrmsg>()) {
        match kind {
            IFA_LOCAL => local = ip(ifa.family, value),
            IFA_ADDRESS => address = ip(ifa.family, value),
            _ => {}
        }
    }
    Some((ifa.index as i32, (local.or(address)?, ifa.prefixlen)))
}

/// An RTM_NEWROUTE's interface and route, if it is a unicast route of the
/// main table through one interface (a multipath route is left out).
fn parse_route(m: &Message) -> Option<(i32, RouteInfo)> {
    let (rtm, _) = Rtmsg::read_from_prefix(&m.body).ok()?;
    if m.kind != RTM_NEWROUTE || rtm.kind != RTN_UNICAST {
        return None;
    }
    let mut table = u32::from(rtm.table);
    let (mut dest, mut gateway, mut oif) = (None, None, None);
    for (kind, value) in attributes(&m.body, std::mem::size_of::<Rtmsg>()) {
        match kind {
            RTA_DST => dest = ip(rtm.family, value),
            RTA_GATEWAY => gateway = ip(rtm.family, value),
            RTA_OIF => oif = i32::read_from_bytes(value).ok(),
            RTA_TABLE => table = u32::read_from_bytes(value).ok()?,
            _ => {}
        }
    }
    if table != RT_TABLE_MAIN {
        return None;
    }
    // The default route has no RTA_DST.
    let dest = match (dest, rtm.family as i32) {
        (Some(d), _) => d,
        (None, libc::AF_INET) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (None, libc::AF_INET6) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    Some((oif?, RouteInfo { dest, prefix: rtm.dst_len, gateway }))
}

fn is_link_local(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
}

/// `a` with all but its first `prefix` bits cleared.
fn network(a: IpAddr, prefix: u8) -> IpAddr {
    match a {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(network(v4("10.214.3.2"), 24), v4("10.214.3.0"));
        assert_eq!(network(v4("10.214.3.2"), 0), v4("0.0.0.0"));
        assert_eq!(network(v4("10.214.3.2"), 32), v4("10.214.3.2"));
        assert_eq!(network(v4("fe80::1:2"), 64), v4("fe80::"));
        assert!(is_link_local(v4("fe80::1")) && !is_link_local(v4("fd00::1")) && !is_link_local(v4("10.0.0.1")));
    }

    #[test]
    fn attributes_are_read_to_the_end_and_no_further() {
        let mut body = Ifaddrmsg { family: libc::AF_INET as u8, prefixlen: 24, flags: 0, scope: 0, index: 7 }.as_bytes().to_vec();
        for (kind, value) in [(IFA_ADDRESS, [10u8, 0, 0, 9]), (IFA_LOCAL, [10, 0, 0, 2])] {
            body.extend_from_slice(Rtattr { len: 8, kind }.as_bytes());
            body.extend_from_slice(&value);
        }
        // A truncated attribute ends the list.
        body.extend_from_slice(Rtattr { len: 64, kind: IFA_LOCAL }.as_bytes());
        let m = Message { kind: RTM_NEWADDR, body };
        assert_eq!(parse_address(&m), Some((7, ("10.0.0.2".parse().unwrap(), 24))));
    }
}
