//! IP-level control messages of datagram sockets (ip(7), ipv6(7), RFC 3542):
//! what a receiver asked to learn of each datagram (IP_PKTINFO, IP_RECVTTL,
//! IP_RECVTOS, IP_RECVORIGDSTADDR and their IPv6 counterparts), built from its
//! `Arrival`, and what a sender may ask of one datagram (IP_PKTINFO's source
//! address and interface, IP_TTL, IP_TOS; IPV6_PKTINFO, IPV6_HOPLIMIT,
//! IPV6_TCLASS), read into a `Sending`; and the SO_TIMESTAMP stamps. Both follow Linux: the order of
//! ip_cmsg_recv_offset and ip6_datagram_recv_*_ctl, and the checks of
//! ip_cmsg_send and ip6_datagram_send_ctl. Also the ICMP errors IP_RECVERR
//! and IPV6_RECVERR queue (`IcmpError`), as ip_recv_error and
//! ipv6_recv_error report them.

use super::inet::{self, Endpoint, AF_INET6, IPPROTO_IP, IPPROTO_IPV6};
use rvisor_abi::structs::SockExtendedErr;
use rvisor_abi::{error, ErrnoCode, SysResult};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use zerocopy::IntoBytes;
use std::sync::atomic::{AtomicU8, Ordering};

pub const IP_TOS: i32 = 1;
pub const IP_TTL: i32 = 2;
const IP_RETOPTS: i32 = 7;
pub const IP_PKTINFO: i32 = 8;
/// Also the control message's type, as IPV6_RECVERR's.
pub const IP_RECVERR: i32 = 11;
pub const IP_RECVERR_RFC4884: i32 = 26;
pub const IPV6_RECVERR: i32 = 25;
pub const IPV6_RECVERR_RFC4884: i32 = 31;
pub const IP_RECVTTL: i32 = 12;
pub const IP_RECVTOS: i32 = 13;
/// Also the control message's type (IP_ORIGDSTADDR).
pub const IP_RECVORIGDSTADDR: i32 = 20;
const IP_PROTOCOL: i32 = 52;
pub const IPV6_UNICAST_HOPS: i32 = 16;
const IPV6_2292PKTINFO: i32 = 2;
const IPV6_2292HOPLIMIT: i32 = 8;
const IPV6_FLOWINFO: i32 = 11;
pub const IPV6_RECVPKTINFO: i32 = 49;
pub const IPV6_PKTINFO: i32 = 50;
pub const IPV6_RECVHOPLIMIT: i32 = 51;
pub const IPV6_HOPLIMIT: i32 = 52;
const IPV6_DONTFRAG: i32 = 62;
pub const IPV6_RECVTCLASS: i32 = 66;
pub const IPV6_TCLASS: i32 = 67;
/// Also the control message's type (IPV6_ORIGDSTADDR).
pub const IPV6_RECVORIGDSTADDR: i32 = 74;
/// SO_TIMESTAMP and its kin, and the control messages of the same types.
pub const SO_TIMESTAMP_OLD: i32 = 29;
pub const SO_TIMESTAMPNS_OLD: i32 = 35;
pub const SO_TIMESTAMP_NEW: i32 = 63;
pub const SO_TIMESTAMPNS_NEW: i32 = 64;
/// Linux's socket flags they set (kept in a socket's `Options`).
const RCVTSTAMP: u8 = 1;
const RCVTSTAMPNS: u8 = 2;
const TSTAMP_NEW: u8 = 4;
/// Linux's default TTL and hop limit (net.ipv4.ip_default_ttl, hop_limit).
pub const DEFAULT_TTL: u8 = 64;
/// The loopback interface's index.
pub const LOOPBACK_INDEX: i32 = 1;

/// How a datagram arrived.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arrival {
    /// Where it was sent: its IP header's destination and its port, canonical.
    pub dest: SocketAddr,
    /// The interface it came in on.
    pub ifindex: i32,
    /// Its IP header's TTL (IPv6: hop limit) and TOS (IPv6: traffic class).
    pub ttl: u8,
    pub tos: u8,
    /// When it arrived: CLOCK_REALTIME, in nanoseconds (SO_TIMESTAMP).
    pub at: i64,
}

impl Arrival {
    /// A datagram arriving now.
    pub fn now(dest: SocketAddr, ifindex: i32, ttl: u8, tos: u8) -> Arrival {
        // The Sentry's realtime clock is the host's (a vDSO read, no host syscall).
        let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Arrival { dest, ifindex, ttl, tos, at }
    }
}

/// Whether (`level`, `name`) is one of the SO_TIMESTAMP options.
pub fn is_timestamp_option(level: i32, name: i32) -> bool {
    level == super::inet::SOL_SOCKET && matches!(name, SO_TIMESTAMP_OLD | SO_TIMESTAMPNS_OLD | SO_TIMESTAMP_NEW | SO_TIMESTAMPNS_NEW)
}

/// setsockopt of a SO_TIMESTAMP option, as Linux's sock_set_timestamp: on, it
/// says which kind of stamp (microseconds or nanoseconds, old or new types);
/// off, it stops them all.
pub fn set_timestamps(flags: &AtomicU8, name: i32, on: bool) {
    if on {
        let new = if matches!(name, SO_TIMESTAMP_NEW | SO_TIMESTAMPNS_NEW) { TSTAMP_NEW } else { 0 };
        let ns = if matches!(name, SO_TIMESTAMPNS_OLD | SO_TIMESTAMPNS_NEW) { RCVTSTAMPNS } else { 0 };
        flags.store(RCVTSTAMP | ns | new, Ordering::Relaxed);
    } else {
        flags.fetch_and(TSTAMP_NEW, Ordering::Relaxed);
    }
}

/// getsockopt of a SO_TIMESTAMP option: whether that kind of stamp is on.
pub fn get_timestamps(flags: &AtomicU8, name: i32) -> i32 {
    let f = flags.load(Ordering::Relaxed);
    let (on, ns, new) = (f & RCVTSTAMP != 0, f & RCVTSTAMPNS != 0, f & TSTAMP_NEW != 0);
    i32::from(match name {
        SO_TIMESTAMP_OLD => on && !new && !ns,
        SO_TIMESTAMPNS_OLD => ns && !new,
        SO_TIMESTAMP_NEW => on && new,
        _ => ns && new,
    })
}

/// The SOL_SOCKET stamp of a datagram that arrived at `at` (realtime ns), as
/// the socket's `flags` ask (none if off): seconds, then microseconds or
/// nanoseconds, each 64 bits on x86-64 in the old types and the new.
fn timestamp_message(flags: u8, at: i64) -> Option<(i32, i32, Vec<u8>)> {
    if flags & RCVTSTAMP == 0 {
        return None;
    }
    let (secs, ns) = (at.div_euclid(1_000_000_000), at.rem_euclid(1_000_000_000));
    let (kind, fraction) = match (flags & RCVTSTAMPNS != 0, flags & TSTAMP_NEW != 0) {
        (true, true) => (SO_TIMESTAMPNS_NEW, ns),
        (true, false) => (SO_TIMESTAMPNS_OLD, ns),
        (false, true) => (SO_TIMESTAMP_NEW, ns / 1000),
        (false, false) => (SO_TIMESTAMP_OLD, ns / 1000),
    };
    Some((super::inet::SOL_SOCKET, kind, [secs.to_ne_bytes(), fraction.to_ne_bytes()].concat()))
}

/// What a sender asked of one datagram; None: the socket's own setting.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sending {
    /// The source address (a local one), canonical.
    pub source: Option<IpAddr>,
    /// The interface it must leave by (0: any).
    pub ifindex: i32,
    pub ttl: Option<u8>,
    pub tos: Option<u8>,
}

/// sock_extended_err's origins: an ICMP or ICMPv6 message.
const SO_EE_ORIGIN_ICMP: u8 = 2;
const SO_EE_ORIGIN_ICMP6: u8 = 3;
/// Destination unreachable, port unreachable: ICMP's type and code, ICMPv6's.
const PORT_UNREACHABLE_V4: (u8, u8) = (3, 3);
const PORT_UNREACHABLE_V6: (u8, u8) = (1, 4);
/// How much of a datagram's payload an ICMP error quotes: Linux's icmp_send
/// makes the error at most 576 bytes (IPv6's icmp6_send, 1280), and the
/// quote starts with the datagram's IP and UDP headers.
const QUOTED_V4: usize = 576 - 20 - 8 - 20 - 8;
const QUOTED_V6: usize = 1280 - 40 - 8 - 40 - 8;

/// An ICMP error on a socket's error queue (Linux's sk_error_queue): port
/// unreachable for a datagram it sent on loopback.
pub struct IcmpError {
    /// What the ICMP message quoted of the datagram's payload.
    pub payload: Vec<u8>,
    /// Where the datagram went, canonical; on loopback the error comes from
    /// that address too.
    pub dest: SocketAddr,
}

impl IcmpError {
    /// Port unreachable for the datagram `data` sent to the canonical `dest`.
    pub fn port_unreachable(data: &[u8], dest: SocketAddr) -> IcmpError {
        let quoted = if dest.is_ipv4() { QUOTED_V4 } else { QUOTED_V6 };
        IcmpError { payload: data[..data.len().min(quoted)].to_vec(), dest }
    }

    /// The error the socket is given (its SO_ERROR and ee_errno).
    pub fn errno(&self) -> ErrnoCode {
        ErrnoCode::ECONNREFUSED
    }
}

/// Whether a host socket's control message is one `arrival_control` would
/// make, which the app may see of a host datagram.
pub fn is_arrival_message(level: i32, kind: i32) -> bool {
    is_timestamp_option(level, kind)
        || matches!((level, kind), (IPPROTO_IP, IP_PKTINFO | IP_TTL | IP_TOS | IP_RECVORIGDSTADDR) | (IPPROTO_IPV6, IPV6_PKTINFO | IPV6_HOPLIMIT | IPV6_TCLASS | IPV6_RECVORIGDSTADDR))
}

/// `struct in_pktinfo`.
fn in_pktinfo(ifindex: i32, spec_dst: Ipv4Addr, addr: Ipv4Addr) -> Vec<u8> {
    [&ifindex.to_ne_bytes()[..], &spec_dst.octets(), &addr.octets()].concat()
}

/// `struct in6_pktinfo`.
fn in6_pktinfo(addr: IpAddr, ifindex: i32) -> Vec<u8> {
    let v6 = match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    };
    [&v6.octets()[..], &ifindex.to_ne_bytes()].concat()
}

fn int(v: u8) -> Vec<u8> {
    i32::from(v).to_ne_bytes().to_vec()
}

impl Endpoint {
    /// The control messages a datagram that arrived as `a` carries for the
    /// options set, in Linux's order: an AF_INET6 socket reports IPV6_PKTINFO
    /// of any datagram, then the IPv6 messages of an IPv6 one, or the IPv4
    /// messages (which it may ask for too) of an IPv4 one.
    pub fn arrival_control(&self, a: &Arrival) -> Vec<(i32, i32, Vec<u8>)> {
        let on = |level, name| self.options.on(level, name);
        // The socket-level stamp comes first, as Linux's sock_recv_cmsgs.
        let mut out: Vec<_> = timestamp_message(self.options.timestamps.load(Ordering::Relaxed), a.at).into_iter().collect();
        if self.domain == AF_INET6 && on(IPPROTO_IPV6, IPV6_RECVPKTINFO) {
            out.push((IPPROTO_IPV6, IPV6_PKTINFO, in6_pktinfo(a.dest.ip(), a.ifindex)));
        }
        match a.dest.ip() {
            IpAddr::V4(dest) => {
                if on(IPPROTO_IP, IP_PKTINFO) {
                    // ipi_spec_dst: the local address the datagram reached,
                    // which a reply is sent from.
                    out.push((IPPROTO_IP, IP_PKTINFO, in_pktinfo(a.ifindex, dest, dest)));
                }
                if on(IPPROTO_IP, IP_RECVTTL) {
                    out.push((IPPROTO_IP, IP_TTL, int(a.ttl)));
                }
                if on(IPPROTO_IP, IP_RECVTOS) {
                    out.push((IPPROTO_IP, IP_TOS, vec![a.tos]));
                }
                if on(IPPROTO_IP, IP_RECVORIGDSTADDR) {
                    out.push((IPPROTO_IP, IP_RECVORIGDSTADDR, inet::sockaddr(a.dest)));
                }
            }
            IpAddr::V6(_) => {
                if on(IPPROTO_IPV6, IPV6_RECVHOPLIMIT) {
                    out.push((IPPROTO_IPV6, IPV6_HOPLIMIT, int(a.ttl)));
                }
                if on(IPPROTO_IPV6, IPV6_RECVTCLASS) {
                    out.push((IPPROTO_IPV6, IPV6_TCLASS, int(a.tos)));
                }
                if on(IPPROTO_IPV6, IPV6_RECVORIGDSTADDR) {
                    out.push((IPPROTO_IPV6, IPV6_RECVORIGDSTADDR, inet::sockaddr(a.dest)));
                }
            }
        }
        out
    }

    /// Whether it queues ICMP errors of datagrams to the canonical `dest`:
    /// IP_RECVERR for IPv4 (on an AF_INET6 socket too, which Linux's
    /// __udp4_lib_err asks), IPV6_RECVERR for IPv6.
    pub fn queues_errors(&self, dest: IpAddr) -> bool {
        match dest {
            IpAddr::V4(_) => self.options.on(IPPROTO_IP, IP_RECVERR),
            IpAddr::V6(_) => self.options.on(IPPROTO_IPV6, IPV6_RECVERR),
        }
    }

    /// How recvmsg(MSG_ERRQUEUE) reports `e`, as Linux's ip_recv_error and
    /// ipv6_recv_error: its msg_name (where the datagram went), and the
    /// control message of the socket's family, a sock_extended_err followed
    /// by the offender (the address that sent the ICMP error, no port).
    pub fn error_message(&self, e: &IcmpError) -> (Vec<u8>, (i32, i32, Vec<u8>)) {
        let ((kind, code), origin) = if e.dest.is_ipv4() { (PORT_UNREACHABLE_V4, SO_EE_ORIGIN_ICMP) } else { (PORT_UNREACHABLE_V6, SO_EE_ORIGIN_ICMP6) };
        let ee = SockExtendedErr { errno: u32::from(e.errno().0), origin, kind, code, pad: 0, info: 0, data: 0 };
        let offender = inet::sockaddr(inet::in_domain(self.domain, SocketAddr::new(e.dest.ip(), 0)));
        let (level, name) = if self.domain == AF_INET6 { (IPPROTO_IPV6, IPV6_RECVERR) } else { (IPPROTO_IP, IP_RECVERR) };
        let name_of_dest = inet::sockaddr(inet::in_domain(self.domain, e.dest));
        (name_of_dest, (level, name, [ee.as_bytes(), &offender].concat()))
    }

    /// The TTL (hop limit) and TOS (traffic class) a datagram to the canonical
    /// `dest` goes with: what `sending` asked, else the socket's options.
    pub fn ttl_and_tos(&self, dest: IpAddr, sending: &Sending) -> (u8, u8) {
        let option = |level, name| self.options.get(self.domain, super::SOCK_DGRAM, level, name).ok().and_then(|v| u8::try_from(v).ok());
        let (ttl, tos) = match dest {
            IpAddr::V4(_) => (option(IPPROTO_IP, IP_TTL), option(IPPROTO_IP, IP_TOS)),
            IpAddr::V6(_) => (option(IPPROTO_IPV6, IPV6_UNICAST_HOPS), option(IPPROTO_IPV6, IPV6_TCLASS)),
        };
        (sending.ttl.or(ttl).unwrap_or(DEFAULT_TTL), sending.tos.or(tos).unwrap_or(0))
    }

    /// Reads sendmsg's IP-level control messages `msgs` for a datagram to the
    /// canonical `dest`: an IPv4 one takes SOL_IP messages (and from an
    /// AF_INET6 socket a v4-mapped IPV6_PKTINFO), an IPv6 one SOL_IPV6 ones;
    /// the other level is skipped. A source must be one of `is_local`'s
    /// addresses (IPv4: ENETUNREACH, IPv6: EINVAL), an interface one
    /// `has_interface` knows (ENODEV).
    pub fn sending(&self, msgs: &[(i32, i32, Vec<u8>)], dest: IpAddr, is_local: impl Fn(IpAddr) -> bool, has_interface: impl Fn(i32) -> bool) -> SysResult<Sending> {
        let mut s = Sending::default();
        let mut source = None;
        for (level, kind, data) in msgs {
            match (dest, *level, *kind) {
                (IpAddr::V4(_), IPPROTO_IPV6, IPV6_PKTINFO) if self.domain == AF_INET6 => {
                    let (addr, ifindex) = read_in6_pktinfo(data)?;
                    let IpAddr::V4(v4) = addr.to_canonical() else { return error!(EINVAL) };
                    s.ifindex = if ifindex != 0 { ifindex } else { s.ifindex };
                    source = Some(IpAddr::V4(v4));
                }
                (IpAddr::V4(_), IPPROTO_IP, IP_PKTINFO) => {
                    if data.len() != 12 {
                        return error!(EINVAL);
                    }
                    let ifindex = i32::from_ne_bytes([data[0], data[1], data[2], data[3]]);
                    s.ifindex = if ifindex != 0 { ifindex } else { s.ifindex };
                    source = Some(IpAddr::V4(Ipv4Addr::new(data[4], data[5], data[6], data[7])));
                }
                (IpAddr::V4(_), IPPROTO_IP, IP_TTL) => s.ttl = Some(ranged(data, 1)?),
                (IpAddr::V4(_), IPPROTO_IP, IP_TOS) => {
                    s.tos = Some(match data.len() {
                        1 => data[0],
                        _ => ranged(data, 0)?,
                    })
                }
                (IpAddr::V4(_), IPPROTO_IP, IP_PROTOCOL) => {
                    ranged(data, 1)?;
                }
                // IP options are not kept; the stack sends none.
                (IpAddr::V4(_), IPPROTO_IP, IP_RETOPTS) if data.len() <= 40 => {}
                (IpAddr::V4(_), IPPROTO_IP, _) => return error!(EINVAL),
                (IpAddr::V6(_), IPPROTO_IPV6, IPV6_PKTINFO | IPV6_2292PKTINFO) => {
                    let (addr, ifindex) = read_in6_pktinfo(data)?;
                    if ifindex != 0 {
                        if s.ifindex != 0 && s.ifindex != ifindex {
                            return error!(EINVAL);
                        }
                        s.ifindex = ifindex;
                    }
                    source = Some(addr);
                }
                (IpAddr::V6(_), IPPROTO_IPV6, IPV6_HOPLIMIT | IPV6_2292HOPLIMIT) => s.ttl = optional(data)?,
                (IpAddr::V6(_), IPPROTO_IPV6, IPV6_TCLASS) => s.tos = optional(data)?,
                (IpAddr::V6(_), IPPROTO_IPV6, IPV6_FLOWINFO) if data.len() >= 4 => {}
                (IpAddr::V6(_), IPPROTO_IPV6, IPV6_DONTFRAG) => {
                    optional(data)?;
                }
                (IpAddr::V6(_), IPPROTO_IPV6, _) => return error!(EINVAL),
                _ => {}
            }
        }
        if s.ifindex != 0 && !has_interface(s.ifindex) {
            return error!(ENODEV);
        }
        s.source = match source.map(|a| a.to_canonical()) {
            Some(a) if a.is_unspecified() => None,
            Some(a) if is_local(a) => Some(a),
            // No route leaves from an IPv4 address not the sandbox's.
            Some(IpAddr::V4(_)) => return error!(ENETUNREACH),
            Some(IpAddr::V6(_)) => return error!(EINVAL),
            None => None,
        };
        Ok(s)
    }
}

/// A `struct in6_pktinfo` (EINVAL when short).
fn read_in6_pktinfo(data: &[u8]) -> SysResult<(IpAddr, i32)> {
    let (Some(addr), Some(index)) = (data.get(..16).and_then(|b| <[u8; 16]>::try_from(b).ok()), data.get(16..20).and_then(|b| <[u8; 4]>::try_from(b).ok())) else {
        return error!(EINVAL);
    };
    Ok((IpAddr::from(addr), i32::from_ne_bytes(index)))
}

/// An int message between `min` and 255 (EINVAL otherwise).
fn ranged(data: &[u8], min: i32) -> SysResult<u8> {
    let v = match <[u8; 4]>::try_from(data) {
        Ok(b) => i32::from_ne_bytes(b),
        Err(_) => return error!(EINVAL),
    };
    if v < min {
        return error!(EINVAL);
    }
    u8::try_from(v).map_err(|_| rvisor_abi::errno!(EINVAL))
}

/// An IPv6 int message: -1 (the socket's setting) to 255.
fn optional(data: &[u8]) -> SysResult<Option<u8>> {
    match <[u8; 4]>::try_from(data).map(i32::from_ne_bytes) {
        Ok(-1) => Ok(None),
        Ok(v) => u8::try_from(v).map(Some).map_err(|_| rvisor_abi::errno!(EINVAL)),
        Err(_) => error!(EINVAL),
    }
}

/// Checks an IP-level option's value as Linux's setsockopt does, and says
/// what to keep: None for "the default" (-1 for the TTL, hop limit and
/// traffic class). EINVAL out of range.
pub fn checked_option(level: i32, name: i32, value: i32) -> SysResult<Option<i32>> {
    match (level, name, value) {
        (IPPROTO_IP, IP_TTL, -1) | (IPPROTO_IPV6, IPV6_UNICAST_HOPS | IPV6_TCLASS, -1) => Ok(None),
        (IPPROTO_IP, IP_TTL, 1..=255) | (IPPROTO_IPV6, IPV6_UNICAST_HOPS | IPV6_TCLASS, 0..=255) => Ok(Some(value)),
        (IPPROTO_IP, IP_TTL, _) | (IPPROTO_IPV6, IPV6_UNICAST_HOPS | IPV6_TCLASS, _) => error!(EINVAL),
        // Linux keeps the low byte.
        (IPPROTO_IP, IP_TOS, _) => Ok(Some(value & 0xff)),
        (IPPROTO_IP, IP_RECVERR_RFC4884, 0 | 1) | (IPPROTO_IPV6, IPV6_RECVERR_RFC4884, 0 | 1) => Ok(Some(value)),
        (IPPROTO_IP, IP_RECVERR_RFC4884, _) | (IPPROTO_IPV6, IPV6_RECVERR_RFC4884, _) => error!(EINVAL),
        _ => Ok(Some(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_linux() {
        assert_eq!(checked_option(IPPROTO_IP, IP_TTL, -1).unwrap(), None);
        assert!(checked_option(IPPROTO_IP, IP_TTL, 0).is_err());
        assert!(checked_option(IPPROTO_IPV6, IPV6_TCLASS, 256).is_err());
        assert_eq!(checked_option(IPPROTO_IPV6, IPV6_UNICAST_HOPS, 0).unwrap(), Some(0));
        assert_eq!(ranged(&5i32.to_ne_bytes(), 1).unwrap(), 5);
        assert!(ranged(&[5], 1).is_err());
        assert_eq!(optional(&(-1i32).to_ne_bytes()).unwrap(), None);
        assert!(optional(&(-2i32).to_ne_bytes()).is_err());
    }

    #[test]
    fn timestamps_follow_linux_flags() {
        let f = AtomicU8::new(0);
        set_timestamps(&f, SO_TIMESTAMPNS_OLD, true);
        assert_eq!((get_timestamps(&f, SO_TIMESTAMP_OLD), get_timestamps(&f, SO_TIMESTAMPNS_OLD)), (0, 1));
        assert_eq!(timestamp_message(f.load(Ordering::Relaxed), 1_500_000_123).unwrap(), (1, SO_TIMESTAMPNS_OLD, [1i64.to_ne_bytes(), 500_000_123i64.to_ne_bytes()].concat()));
        set_timestamps(&f, SO_TIMESTAMP_NEW, true);
        assert_eq!(get_timestamps(&f, SO_TIMESTAMP_NEW), 1);
        assert_eq!(timestamp_message(f.load(Ordering::Relaxed), 1_500_000_123).unwrap().2, [1i64.to_ne_bytes(), 500_000i64.to_ne_bytes()].concat());
        set_timestamps(&f, SO_TIMESTAMP_OLD, false);
        assert!(timestamp_message(f.load(Ordering::Relaxed), 0).is_none());
        assert_eq!(get_timestamps(&f, SO_TIMESTAMP_NEW), 0);
    }

    #[test]
    fn pktinfo_layouts() {
        let v4 = in_pktinfo(1, Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(v4, [1, 0, 0, 0, 127, 0, 0, 2, 127, 0, 0, 2]);
        let v6 = in6_pktinfo("::1".parse().unwrap(), 1);
        assert_eq!(read_in6_pktinfo(&v6).unwrap(), ("::1".parse().unwrap(), 1));
        let mapped = in6_pktinfo("127.0.0.1".parse().unwrap(), 1);
        assert_eq!(read_in6_pktinfo(&mapped).unwrap().0.to_canonical(), "127.0.0.1".parse::<IpAddr>().unwrap());
    }
}
