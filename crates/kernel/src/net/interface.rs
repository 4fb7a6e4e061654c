//! The sandbox's network interfaces, as every view describes them: `lo`
//! (index 1, up, with 127.0.0.1/8 and ::1/128, as Linux's loopback comes up
//! in a new network namespace), then the interfaces the sandbox's own network
//! stack took over (`Kernel::interfaces`), each shown as Linux shows an
//! Ethernet (veth) interface. `interfaces` is the one list rtnetlink
//! (netlink.rs), the SIOCGIF* ioctls of sockets and /proc/net read, and
//! `routes` the main routing table Linux derives from it.

use crate::mm::UserRef;
use crate::task::Task;
use rvisor_abi::structs::{Ifreq, SockaddrIn};
use rvisor_abi::{consts, error, SysResult, UserAddr};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use zerocopy::IntoBytes;

/// A network interface besides `lo`: a host interface the sandbox's own
/// network stack took over (`--network=sandbox`), as the sandbox shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct InterfaceInfo {
    pub name: String,
    /// Its index in the network namespace it came from.
    pub index: i32,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// Its addresses and their prefix lengths.
    pub addrs: Vec<(IpAddr, u8)>,
    /// The routes through it, beyond the subnets of its addresses.
    pub routes: Vec<RouteInfo>,
}

/// A route through an interface: to `dest`/`prefix` (0.0.0.0/0 or ::/0: the
/// default route), through `gateway` when it is not on the link.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteInfo {
    pub dest: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
}

/// The hardware types of a loopback and of an Ethernet device.
pub const ARPHRD_LOOPBACK: u16 = 772;
pub const ARPHRD_ETHER: u16 = 1;
/// The transmit queue length Linux gives lo and a veth.
pub const TXQLEN: u32 = 1000;

const IFF_UP: u32 = 0x1;
const IFF_BROADCAST: u32 = 0x2;
const IFF_LOOPBACK: u32 = 0x8;
const IFF_RUNNING: u32 = 0x40;
const IFF_MULTICAST: u32 = 0x1000;
const IFF_LOWER_UP: u32 = 0x10000;

/// IF_OPER_UNKNOWN (what Linux reports for lo, which has no carrier) and IF_OPER_UP.
const OPER_UNKNOWN: u8 = 0;
const OPER_UP: u8 = 6;

pub const RT_SCOPE_UNIVERSE: u8 = 0;
pub const RT_SCOPE_LINK: u8 = 253;
pub const RT_SCOPE_HOST: u8 = 254;

static LO_ADDRS: [(IpAddr, u8); 2] = [(IpAddr::V4(Ipv4Addr::LOCALHOST), 8), (IpAddr::V6(Ipv6Addr::LOCALHOST), 128)];

/// One interface as the views show it.
#[derive(Clone, Copy, Debug)]
pub struct Interface<'a> {
    pub name: &'a str,
    pub index: i32,
    pub loopback: bool,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub addrs: &'a [(IpAddr, u8)],
    pub routes: &'a [RouteInfo],
}

/// `lo`, then each of `others` (the kernel's `interfaces`).
pub fn interfaces(others: &[InterfaceInfo]) -> impl Iterator<Item = Interface<'_>> {
    let lo = Interface { name: "lo", index: 1, loopback: true, mac: [0; 6], mtu: 65536, addrs: &LO_ADDRS, routes: &[] };
    std::iter::once(lo).chain(others.iter().map(|i| Interface {
        name: &i.name,
        index: i.index,
        loopback: false,
        mac: i.mac,
        mtu: i.mtu,
        addrs: &i.addrs,
        routes: &i.routes,
    }))
}

pub fn by_index(others: &[InterfaceInfo], index: i32) -> Option<Interface<'_>> {
    interfaces(others).find(|i| i.index == index)
}

pub fn by_name<'a>(others: &'a [InterfaceInfo], name: &[u8]) -> Option<Interface<'a>> {
    interfaces(others).find(|i| i.name.as_bytes() == name)
}

impl Interface<'_> {
    /// Its IFF_* flags: up and running, as Linux's lo and a veth with its
    /// peer up are.
    pub fn flags(&self) -> u32 {
        let kind = if self.loopback { IFF_LOOPBACK } else { IFF_BROADCAST | IFF_MULTICAST };
        IFF_UP | IFF_RUNNING | IFF_LOWER_UP | kind
    }

    pub fn hw_type(&self) -> u16 {
        if self.loopback { ARPHRD_LOOPBACK } else { ARPHRD_ETHER }
    }

    /// Its link-layer broadcast address.
    pub fn hw_broadcast(&self) -> [u8; 6] {
        if self.loopback { [0; 6] } else { [0xff; 6] }
    }

    pub fn operstate(&self) -> u8 {
        if self.loopback { OPER_UNKNOWN } else { OPER_UP }
    }

    pub fn v4_addrs(&self) -> impl Iterator<Item = (Ipv4Addr, u8)> + '_ {
        self.addrs.iter().filter_map(|&(a, p)| match a {
            IpAddr::V4(a) => Some((a, p)),
            IpAddr::V6(_) => None,
        })
    }

    /// The broadcast address of its IPv4 address `addr`/`prefix`: none on
    /// lo, nor on a /31 or /32, which have no room for one.
    pub fn broadcast(&self, addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
        (!self.loopback && prefix <= 30).then(|| Ipv4Addr::from(addr.to_bits() | !netmask(prefix).to_bits()))
    }

    /// The scope of one of its addresses, as Linux gives it.
    pub fn scope(&self, addr: IpAddr) -> u8 {
        match addr {
            _ if self.loopback || addr.is_loopback() => RT_SCOPE_HOST,
            IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => RT_SCOPE_LINK,
            _ => RT_SCOPE_UNIVERSE,
        }
    }
}

pub fn netmask(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0))
}

/// `addr` with the bits past `prefix` cleared.
fn network(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(a.to_bits() & netmask(prefix).to_bits())),
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(a.to_bits() & mask))
        }
    }
}

/// One route of the main table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Route {
    pub dest: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    /// The source address an IPv4 subnet route prefers: the address that made it.
    pub prefsrc: Option<IpAddr>,
    pub index: i32,
    /// Made by the kernel for an address's subnet (proto kernel), rather than
    /// configured (proto boot, what `ip route add` and CNI plugins give).
    pub subnet: bool,
    pub metric: u32,
}

impl Route {
    /// An IPv4 subnet route reaches only the link; IPv6 routes have no scope.
    pub fn scope(&self) -> u8 {
        if self.subnet && self.dest.is_ipv4() { RT_SCOPE_LINK } else { RT_SCOPE_UNIVERSE }
    }
}

/// Where the namespace sends a packet for `dest` (`ip route get`).
pub enum Lookup {
    /// To one of the sandbox's own addresses, loopback's included.
    Local,
    /// Out of an interface, by the longest matching route of the main table,
    /// from `src` (the interface's address that a connection would use).
    Route { route: Route, src: Option<IpAddr> },
}

/// The route to `dest`, or None if none reaches it (ENETUNREACH).
pub fn lookup(others: &[InterfaceInfo], dest: IpAddr) -> Option<Lookup> {
    if dest.is_loopback() || interfaces(others).any(|i| i.addrs.iter().any(|&(a, _)| a == dest)) {
        return Some(Lookup::Local);
    }
    let route = routes(others)
        .into_iter()
        .filter(|r| r.dest.is_ipv4() == dest.is_ipv4() && network(dest, r.prefix) == r.dest)
        .max_by_key(|r| (r.prefix, std::cmp::Reverse(r.metric)))?;
    let own = others.iter().find(|i| i.index == route.index).map(|i| i.addrs.as_slice()).unwrap_or_default();
    // The route's own preference, else the interface's first address of the
    // family (for IPv6 not a link-local one, unless the destination is).
    let src = route.prefsrc.or_else(|| {
        let usable = |a: &IpAddr| match (a, dest) {
            (IpAddr::V6(a), IpAddr::V6(d)) => (a.segments()[0] & 0xffc0 == 0xfe80) == (d.segments()[0] & 0xffc0 == 0xfe80),
            (a, d) => a.is_ipv4() == d.is_ipv4(),
        };
        own.iter().map(|&(a, _)| a).find(usable)
    });
    Some(Lookup::Route { route, src })
}

/// The main routing table of a namespace with these interfaces, IPv4 then
/// IPv6, in the order Linux dumps them: each address's subnet (but for an
/// IPv4 /32; IPv6's metric 256), then each configured route (IPv6's metric
/// 1024); IPv4 by destination, IPv6 likewise but with the default route last.
/// lo has none: Linux (6.x) keeps its routes, ::1's too, in the local table.
pub fn routes(others: &[InterfaceInfo]) -> Vec<Route> {
    let mut out: Vec<Route> = Vec::new();
    for i in interfaces(others).filter(|i| !i.loopback) {
        for &(addr, prefix) in i.addrs {
            let route = match addr {
                IpAddr::V4(_) if prefix >= 32 => continue,
                IpAddr::V4(_) => Route { dest: network(addr, prefix), prefix, gateway: None, prefsrc: Some(addr), index: i.index, subnet: true, metric: 0 },
                IpAddr::V6(_) => Route { dest: network(addr, prefix), prefix, gateway: None, prefsrc: None, index: i.index, subnet: true, metric: 256 },
            };
            // Two addresses in one subnet make one route.
            if !out.iter().any(|r| (r.dest, r.prefix, r.index) == (route.dest, route.prefix, route.index)) {
                out.push(route);
            }
        }
        for r in i.routes {
            // A gateway of the other family (RTA_VIA) is not described here.
            if r.gateway.is_some_and(|g| g.is_ipv4() != r.dest.is_ipv4()) {
                continue;
            }
            let metric = if r.dest.is_ipv4() { 0 } else { 1024 };
            out.push(Route { dest: network(r.dest, r.prefix), prefix: r.prefix, gateway: r.gateway, prefsrc: None, index: i.index, subnet: false, metric });
        }
    }
    out.sort_by_key(|r| (r.dest.is_ipv6(), r.dest.is_ipv6() && r.prefix == 0, r.dest, r.prefix));
    out
}

/// /proc/net/dev: a row per interface, with no traffic counted.
pub fn proc_net_dev(others: &[InterfaceInfo], traffic: Option<(&str, Traffic)>) -> String {
    let mut s = String::from(
        "Inter-|   Receive                                                |  Transmit\n \
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
    );
    for i in interfaces(others) {
        let t = traffic.filter(|(name, _)| *name == i.name).map(|(_, t)| t).unwrap_or_default();
        let _ = writeln!(s, "{:>6}:{:>8} {:>7} {:>4} {:>4} {:>4} {:>5} {:>10} {:>9} {:>8} {:>7} {:>4} {:>4} {:>4} {:>5} {:>7} {:>10}", i.name, t.rx_bytes, t.rx_packets, 0, 0, 0, 0, 0, 0, t.tx_bytes, t.tx_packets, 0, 0, 0, 0, 0, 0);
    }
    s
}

/// What an interface has carried (the sandbox stack's counts; loopback's
/// shortcut carries no packets).
#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub struct Traffic {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
}

/// A /proc/net/route line: Linux pads each to 127 characters.
fn route_line(s: &mut String, line: &str) {
    let _ = writeln!(s, "{line:<127}");
}

/// /proc/net/route: the IPv4 main table, addresses as the hex of their
/// network-order bytes read as a host (little-endian) word, as Linux prints them.
pub fn proc_net_route(others: &[InterfaceInfo]) -> String {
    const RTF_UP: u16 = 0x1;
    const RTF_GATEWAY: u16 = 0x2;
    let hex = |a: Ipv4Addr| format!("{:08X}", u32::from_le_bytes(a.octets()));
    let mut s = String::new();
    route_line(&mut s, "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT");
    let names: Vec<Interface> = interfaces(others).collect();
    for r in routes(others) {
        let (IpAddr::V4(dest), Some(i)) = (r.dest, names.iter().find(|i| i.index == r.index)) else { continue };
        let gateway = match r.gateway {
            Some(IpAddr::V4(g)) => g,
            _ => Ipv4Addr::UNSPECIFIED,
        };
        let flags = if r.gateway.is_some() { RTF_UP | RTF_GATEWAY } else { RTF_UP };
        let line = format!("{}\t{}\t{}\t{flags:04X}\t0\t0\t{}\t{}\t0\t0\t0", i.name, hex(dest), hex(gateway), r.metric, hex(netmask(r.prefix)));
        route_line(&mut s, &line);
    }
    s
}

/// /proc/net/if_inet6: each IPv6 address with its interface's index, its
/// prefix, scope (IPv6's own encoding: host 0x10, link 0x20, global 0) and flags (permanent).
pub fn proc_net_if_inet6(others: &[InterfaceInfo]) -> String {
    let mut s = String::new();
    for i in interfaces(others) {
        for &(addr, prefix) in i.addrs {
            let IpAddr::V6(a) = addr else { continue };
            let scope = match i.scope(addr) {
                RT_SCOPE_HOST => 0x10,
                RT_SCOPE_LINK => 0x20,
                _ => 0,
            };
            let _ = writeln!(s, "{:032x} {:02x} {prefix:02x} {scope:02x} 80 {:>8}", a.to_bits(), i.index, i.name);
        }
    }
    s
}

const SIOCGIFNAME: u32 = 0x8910;
const SIOCGIFCONF: u32 = 0x8912;
const SIOCGIFFLAGS: u32 = 0x8913;
const SIOCSIFFLAGS: u32 = 0x8914;
const SIOCGIFADDR: u32 = 0x8915;
const SIOCGIFBRDADDR: u32 = 0x8919;
const SIOCGIFNETMASK: u32 = 0x891b;
const SIOCGIFMTU: u32 = 0x8921;
const SIOCGIFHWADDR: u32 = 0x8927;
const SIOCGIFINDEX: u32 = 0x8933;
const SIOCGIFTXQLEN: u32 = 0x8942;

/// Whether `request` is one of the interface ioctls `ioctl` answers.
pub fn is_interface_ioctl(request: u32) -> bool {
    matches!(
        request,
        SIOCGIFNAME | SIOCGIFCONF | SIOCGIFFLAGS | SIOCSIFFLAGS | SIOCGIFADDR | SIOCGIFBRDADDR | SIOCGIFNETMASK | SIOCGIFMTU | SIOCGIFHWADDR | SIOCGIFINDEX | SIOCGIFTXQLEN
    )
}

fn sockaddr_in(addr: Ipv4Addr) -> [u8; 16] {
    let sin = SockaddrIn { family: super::inet::AF_INET as u16, port: [0; 2], addr: addr.octets(), zero: [0; 8] };
    let mut out = [0u8; 16];
    out.copy_from_slice(sin.as_bytes());
    out
}

/// An `ifreq` whose union starts with `value`.
fn with_data(mut req: Ifreq, value: &[u8]) -> Ifreq {
    req.data = [0; 24];
    req.data[..value.len()].copy_from_slice(value);
    req
}

/// The SIOCGIF* ioctls on a socket (ENODEV for a name or index no interface has).
pub fn ioctl(t: &Task, request: u32, arg: u64) -> SysResult<u64> {
    if request == SIOCGIFCONF {
        return ifconf(t, UserAddr(arg));
    }
    let at = UserRef::<Ifreq>::new(UserAddr(arg));
    let req = t.mm.read_obj(at)?;
    if request == SIOCSIFFLAGS {
        return set_flags(t, &req).map(|()| 0);
    }
    let out = answer(&t.ns.net.interfaces, request, req)?;
    t.mm.write_obj(at, &out).map(|()| 0)
}

/// SIOCSIFFLAGS: bringing an interface up (`ifconfig lo up`) is all that is
/// offered, and every interface is up; taking one down is EOPNOTSUPP.
fn set_flags(t: &Task, req: &Ifreq) -> SysResult<()> {
    let end = req.name.iter().position(|&b| b == 0).unwrap_or(req.name.len());
    if by_name(&t.ns.net.interfaces, &req.name[..end]).is_none() {
        return error!(ENODEV);
    }
    if !t.tg.capable_in(&t.ns.net.owner, consts::CAP_NET_ADMIN) {
        return error!(EPERM);
    }
    let flags = u32::from(u16::from_ne_bytes([req.data[0], req.data[1]]));
    if flags & IFF_UP == 0 {
        return error!(EOPNOTSUPP);
    }
    Ok(())
}

/// The answer to one SIOCGIF* request other than SIOCGIFCONF.
fn answer(others: &[InterfaceInfo], request: u32, req: Ifreq) -> SysResult<Ifreq> {
    if request == SIOCGIFNAME {
        let index = i32::from_ne_bytes([req.data[0], req.data[1], req.data[2], req.data[3]]);
        let Some(i) = by_index(others, index) else { return error!(ENODEV) };
        let mut out = req;
        out.name = [0; 16];
        let name = i.name.as_bytes();
        let n = name.len().min(15);
        out.name[..n].copy_from_slice(&name[..n]);
        return Ok(out);
    }
    let end = req.name.iter().position(|&b| b == 0).unwrap_or(req.name.len());
    let Some(i) = by_name(others, &req.name[..end]) else { return error!(ENODEV) };
    let v4 = i.v4_addrs().next();
    Ok(match (request, v4) {
        (SIOCGIFINDEX, _) => with_data(req, &i.index.to_ne_bytes()),
        // ifr_flags is a short: IFF_LOWER_UP and above do not fit, as on Linux.
        (SIOCGIFFLAGS, _) => with_data(req, &(i.flags() as u16).to_ne_bytes()),
        (SIOCGIFMTU, _) => with_data(req, &i.mtu.to_ne_bytes()),
        (SIOCGIFTXQLEN, _) => with_data(req, &TXQLEN.to_ne_bytes()),
        (SIOCGIFHWADDR, _) => {
            let mut hw = i.hw_type().to_ne_bytes().to_vec();
            hw.extend_from_slice(&i.mac);
            with_data(req, &hw)
        }
        (SIOCGIFADDR | SIOCGIFNETMASK | SIOCGIFBRDADDR, None) => return error!(EADDRNOTAVAIL),
        (SIOCGIFADDR, Some((a, _))) => with_data(req, &sockaddr_in(a)),
        (SIOCGIFNETMASK, Some((_, p))) => with_data(req, &sockaddr_in(netmask(p))),
        (SIOCGIFBRDADDR, Some((a, p))) => with_data(req, &sockaddr_in(i.broadcast(a, p).unwrap_or(Ipv4Addr::UNSPECIFIED))),
        _ => return error!(ENOTTY),
    })
}

/// SIOCGIFCONF's entries: one per IPv4 address, as Linux lists them.
fn ifconf_entries(others: &[InterfaceInfo]) -> Vec<Ifreq> {
    let mut out = Vec::new();
    for i in interfaces(others) {
        for (a, _) in i.v4_addrs() {
            let mut name = [0u8; 16];
            let n = i.name.len().min(15);
            name[..n].copy_from_slice(&i.name.as_bytes()[..n]);
            out.push(with_data(Ifreq { name, data: [0; 24] }, &sockaddr_in(a)));
        }
    }
    out
}

/// SIOCGIFCONF: `struct ifconf` is a length and a buffer; a NULL buffer asks
/// for the length needed, and the entries that fit are written.
fn ifconf(t: &Task, at: UserAddr) -> SysResult<u64> {
    let len_at = UserRef::<i32>::new(at);
    let buf_at = UserRef::<u64>::new(at.add(8)?);
    let (room, buf) = (t.mm.read_obj(len_at)?, t.mm.read_obj(buf_at)?);
    let entries = ifconf_entries(&t.ns.net.interfaces);
    let entry = std::mem::size_of::<Ifreq>();
    if buf == 0 {
        return t.mm.write_obj(len_at, &((entries.len() * entry) as i32)).map(|()| 0);
    }
    let fit = usize::try_from(room).unwrap_or(0) / entry;
    let mut written = 0;
    for req in entries.iter().take(fit) {
        t.mm.write_obj(UserRef::new(UserAddr(buf).add(written as u64)?), req)?;
        written += entry;
    }
    t.mm.write_obj(len_at, &(written as i32)).map(|()| 0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A pod's veth as CNI leaves it: 10.214.1.2/24, a link-local address,
    /// and a default route through 10.214.1.1.
    pub(crate) fn eth0() -> InterfaceInfo {
        InterfaceInfo {
            name: "eth0".to_string(),
            index: 2,
            mac: [0x02, 0x42, 0x0a, 0xd6, 0x01, 0x02],
            mtu: 1500,
            addrs: vec![(IpAddr::V4(Ipv4Addr::new(10, 214, 1, 2)), 24), (IpAddr::V6("fe80::42:aff:fed6:102".parse().unwrap()), 64)],
            routes: vec![RouteInfo { dest: IpAddr::V4(Ipv4Addr::UNSPECIFIED), prefix: 0, gateway: Some(IpAddr::V4(Ipv4Addr::new(10, 214, 1, 1))) }],
        }
    }

    /// What Linux shows for lo alone, which the sandbox showed before it had other interfaces.
    #[test]
    fn lo_alone_is_unchanged() {
        assert_eq!(
            proc_net_dev(&[], None),
            "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n"
        );
        assert_eq!(proc_net_if_inet6(&[]), "00000000000000000000000000000001 01 80 10 80       lo\n");
        assert_eq!(
            proc_net_route(&[]),
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       \n"
        );
        assert_eq!(routes(&[]), []);
    }

    #[test]
    fn proc_texts() {
        let eth = [eth0()];
        let traffic = Traffic { rx_bytes: 1500, rx_packets: 1, tx_bytes: 120, tx_packets: 2 };
        let dev = proc_net_dev(&eth, Some(("eth0", traffic)));
        let rows: Vec<&str> = dev.lines().skip(2).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1], "  eth0:    1500       1    0    0    0     0          0         0      120       2    0    0    0     0       0          0");
        assert_eq!(proc_net_if_inet6(&eth).lines().nth(1), Some("fe8000000000000000420afffed60102 02 40 20 80     eth0"));
        let route = proc_net_route(&eth);
        let lines: Vec<&str> = route.lines().collect();
        assert!(lines.iter().all(|l| l.len() == 127));
        assert_eq!(lines[1].trim_end(), "eth0\t00000000\t0101D60A\t0003\t0\t0\t0\t00000000\t0\t0\t0");
        assert_eq!(lines[2].trim_end(), "eth0\t0001D60A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0");
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn main_table() {
        let r = routes(&[eth0()]);
        let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
        assert_eq!(r.len(), 3);
        assert_eq!(r[0], Route { dest: v4(0, 0, 0, 0), prefix: 0, gateway: Some(v4(10, 214, 1, 1)), prefsrc: None, index: 2, subnet: false, metric: 0 });
        assert_eq!(r[1], Route { dest: v4(10, 214, 1, 0), prefix: 24, gateway: None, prefsrc: Some(v4(10, 214, 1, 2)), index: 2, subnet: true, metric: 0 });
        assert_eq!((r[1].scope(), r[0].scope()), (RT_SCOPE_LINK, RT_SCOPE_UNIVERSE));
        assert_eq!((r[2].dest, r[2].prefix, r[2].metric, r[2].scope(), r[2].index), (IpAddr::V6("fe80::".parse().unwrap()), 64, 256, RT_SCOPE_UNIVERSE, 2));
    }

    /// IPv6 subnets by destination, the default route after them.
    #[test]
    fn ipv6_default_route_last() {
        let mut eth = eth0();
        eth.addrs.push((IpAddr::V6("2001:db8::2".parse().unwrap()), 64));
        eth.routes.push(RouteInfo { dest: IpAddr::V6(Ipv6Addr::UNSPECIFIED), prefix: 0, gateway: Some(IpAddr::V6("fe80::1".parse().unwrap())) });
        let v6: Vec<(IpAddr, u8, u32, bool)> = routes(&[eth]).into_iter().filter(|r| r.dest.is_ipv6()).map(|r| (r.dest, r.prefix, r.metric, r.gateway.is_some())).collect();
        let ip = |s: &str| IpAddr::V6(s.parse().unwrap());
        assert_eq!(v6, [(ip("2001:db8::"), 64, 256, false), (ip("fe80::"), 64, 256, false), (ip("::"), 0, 1024, true)]);
    }

    fn ifreq(name: &str, data: &[u8]) -> Ifreq {
        let mut n = [0u8; 16];
        n[..name.len()].copy_from_slice(name.as_bytes());
        with_data(Ifreq { name: n, data: [0; 24] }, data)
    }

    #[test]
    fn ioctls() {
        let eth = [eth0()];
        let ask = |name: &str, request| answer(&eth, request, ifreq(name, &[])).map(|r| r.data);
        assert_eq!(&ask("eth0", SIOCGIFINDEX).unwrap()[..4], &2i32.to_ne_bytes());
        assert_eq!(&ask("eth0", SIOCGIFFLAGS).unwrap()[..2], &0x1043u16.to_ne_bytes());
        assert_eq!(&ask("lo", SIOCGIFFLAGS).unwrap()[..2], &0x49u16.to_ne_bytes());
        assert_eq!(&ask("eth0", SIOCGIFMTU).unwrap()[..4], &1500u32.to_ne_bytes());
        assert_eq!(ask("eth0", SIOCGIFHWADDR).unwrap()[..8], [1, 0, 0x02, 0x42, 0x0a, 0xd6, 0x01, 0x02]);
        assert_eq!(ask("lo", SIOCGIFHWADDR).unwrap()[..8], [4, 3, 0, 0, 0, 0, 0, 0]);
        // sockaddr_in: AF_INET, port 0, then the address.
        assert_eq!(ask("eth0", SIOCGIFADDR).unwrap()[..8], [2, 0, 0, 0, 10, 214, 1, 2]);
        assert_eq!(ask("eth0", SIOCGIFNETMASK).unwrap()[4..8], [255, 255, 255, 0]);
        assert_eq!(ask("eth0", SIOCGIFBRDADDR).unwrap()[4..8], [10, 214, 1, 255]);
        assert_eq!(ask("lo", SIOCGIFADDR).unwrap()[4..8], [127, 0, 0, 1]);
        assert_eq!(ask("lo", SIOCGIFNETMASK).unwrap()[4..8], [255, 0, 0, 0]);
        assert_eq!(ask("eth1", SIOCGIFINDEX), error!(ENODEV));
        let name = answer(&eth, SIOCGIFNAME, ifreq("", &2i32.to_ne_bytes())).unwrap();
        assert_eq!(&name.name[..5], b"eth0\0");
        assert_eq!(answer(&eth, SIOCGIFNAME, ifreq("", &3i32.to_ne_bytes())).map(|_| ()), error!(ENODEV));
        let conf = ifconf_entries(&eth);
        assert_eq!(conf.len(), 2);
        assert_eq!((&conf[0].name[..3], &conf[0].data[4..8]), (&b"lo\0"[..], &[127, 0, 0, 1][..]));
        assert_eq!((&conf[1].name[..5], &conf[1].data[4..8]), (&b"eth0\0"[..], &[10, 214, 1, 2][..]));
    }

    #[test]
    fn no_ipv4_address() {
        let mut v6only = eth0();
        v6only.addrs.remove(0);
        let r = answer(&[v6only.clone()], SIOCGIFADDR, ifreq("eth0", &[]));
        assert_eq!(r.map(|_| ()), error!(EADDRNOTAVAIL));
        assert_eq!(ifconf_entries(&[v6only]).len(), 1);
    }
}
