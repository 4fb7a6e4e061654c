//! Datagrams through the interface: a UDP socket bound on the wildcard or the
//! interface's address, or that sent through it, has a smoltcp socket on its
//! port (`UdpPort`), whose datagrams the stack moves into the inet socket's
//! own queue (net/udp.rs), beside those from loopback. A ping socket's port
//! is an ICMP echo identifier, on a smoltcp ICMP socket bound to it. A UDP
//! port has an ICMP socket too, for the errors that answer what it sent (a
//! port unreachable makes a connected socket's next call ECONNREFUSED).

use super::{DatagramSink, Netstack};
use rvisor_abi::{error, ErrnoCode, SysResult};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{icmp, udp};
use smoltcp::wire::{IpAddress, IpListenEndpoint};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};

/// Datagrams each way the smoltcp socket holds between runs of the stack.
const SLOTS: usize = 64;
const BUFFER: usize = 256 << 10;

/// What a port carries.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum PortKind {
    Udp,
    /// ICMP echo requests out, replies in (a ping socket's).
    Echo,
}

pub struct UdpPort {
    ns: Arc<Netstack>,
    handle: SocketHandle,
    /// A UDP port's ICMP errors.
    errors: Option<SocketHandle>,
    kind: PortKind,
}

fn icmp_socket() -> icmp::Socket<'static> {
    let buffer = || icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; SLOTS], vec![0; BUFFER]);
    icmp::Socket::new(buffer(), buffer())
}

/// The destination and errno of an ICMP error about a UDP datagram (IPv4:
/// destination unreachable 3 or time exceeded 11; IPv6: 1 or 3), from the
/// packet it quotes; None for anything else (an echo reply).
pub fn unreachable(icmp: &[u8]) -> Option<(SocketAddr, ErrnoCode)> {
    let (kind, code) = (*icmp.first()?, *icmp.get(1)?);
    let quoted = icmp.get(8..)?;
    let (dest, udp): (IpAddr, usize) = match (quoted.first()? >> 4, kind) {
        (4, 3 | 11) => (<[u8; 4]>::try_from(quoted.get(16..20)?).ok()?.into(), usize::from(quoted.first()? & 0xf) * 4),
        (6, 1 | 3) => (<[u8; 16]>::try_from(quoted.get(24..40)?).ok()?.into(), 40),
        _ => return None,
    };
    let port = u16::from_be_bytes([*quoted.get(udp + 2)?, *quoted.get(udp + 3)?]);
    let v6 = dest.is_ipv6();
    let errno = match (v6, kind, code) {
        (false, 3, 3) | (true, 1, 4) => ErrnoCode::ECONNREFUSED,
        (false, 3, 0) | (true, 1, 0) => ErrnoCode::ENETUNREACH,
        _ => ErrnoCode::EHOSTUNREACH,
    };
    Some((SocketAddr::new(dest, port), errno))
}

impl UdpPort {
    /// Takes `local`'s port (and address, unless the wildcard) on the
    /// interface; what comes to it goes to `inbox`.
    pub fn bind(ns: &Arc<Netstack>, local: SocketAddr, inbox: Weak<dyn DatagramSink>, kind: PortKind) -> SysResult<UdpPort> {
        ns.with(|stack| {
            let ep = IpListenEndpoint { addr: (!local.ip().is_unspecified()).then(|| local.ip().to_canonical().into()), port: local.port() };
            let (handle, errors) = match kind {
                PortKind::Udp => {
                    let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; SLOTS], vec![0; BUFFER]);
                    let mut s = udp::Socket::new(buffer(), buffer());
                    let mut e = icmp_socket();
                    if s.bind(ep).is_err() || e.bind(icmp::Endpoint::Udp(ep)).is_err() {
                        return error!(EINVAL);
                    }
                    (stack.sockets.add(s), Some(stack.sockets.add(e)))
                }
                PortKind::Echo => {
                    let mut s = icmp_socket();
                    if s.bind(icmp::Endpoint::Ident(local.port())).is_err() {
                        return error!(EINVAL);
                    }
                    (stack.sockets.add(s), None)
                }
            };
            stack.deliver_to(handle, inbox.clone());
            if let Some(e) = errors {
                stack.deliver_to(e, inbox);
            }
            Ok(UdpPort { ns: ns.clone(), handle, errors, kind })
        })
    }

    /// Sends a datagram to `dest`. One the interface's queue has no room for
    /// is lost, as a full device queue loses it.
    /// An echo port sends `data` as the whole ICMP message.
    /// A UDP datagram goes from `source` when given (one of the interface's addresses).
    pub fn send(&self, data: &[u8], dest: SocketAddr, source: Option<IpAddr>) -> SysResult<()> {
        let meta = udp::UdpMetadata { endpoint: smoltcp::wire::IpEndpoint::from(dest), local_address: source.map(IpAddress::from), meta: Default::default() };
        self.ns.with(|stack| match self.kind {
            PortKind::Udp => match stack.sockets.get_mut::<udp::Socket>(self.handle).send_slice(data, meta) {
                Ok(()) | Err(udp::SendError::BufferFull) => Ok(()),
                Err(udp::SendError::Unaddressable) => error!(ENETUNREACH),
            },
            PortKind::Echo => match stack.sockets.get_mut::<icmp::Socket>(self.handle).send_slice(data, IpAddress::from(dest.ip().to_canonical())) {
                Ok(()) | Err(icmp::SendError::BufferFull) => Ok(()),
                Err(icmp::SendError::Unaddressable) => error!(ENETUNREACH),
            },
        })
    }
}

impl Drop for UdpPort {
    fn drop(&mut self) {
        self.ns.with(|stack| {
            stack.remove(self.handle);
            if let Some(e) = self.errors {
                stack.remove(e);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_errors_name_the_datagrams_destination() {
        // Port unreachable (3/3) quoting an IPv4+UDP datagram to 10.0.0.1:53.
        let mut v4 = vec![3, 3, 0, 0, 0, 0, 0, 0, 0x45];
        v4.extend_from_slice(&[0; 19]);
        v4[8 + 16..8 + 20].copy_from_slice(&[10, 0, 0, 1]);
        v4.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 8, 0, 0]);
        assert_eq!(unreachable(&v4), Some(("10.0.0.1:53".parse().unwrap(), ErrnoCode::ECONNREFUSED)));
        // IPv6 time exceeded (3) quoting a datagram to [fd00::1]:7.
        let mut v6 = vec![3, 0, 0, 0, 0, 0, 0, 0, 0x60];
        v6.extend_from_slice(&[0; 39]);
        v6[8 + 39] = 1;
        v6[8 + 24] = 0xfd;
        v6.extend_from_slice(&[0, 1, 0, 7, 0, 8, 0, 0]);
        assert_eq!(unreachable(&v6), Some(("[fd00::1]:7".parse().unwrap(), ErrnoCode::EHOSTUNREACH)));
        // An echo reply is no error.
        assert_eq!(unreachable(&[0, 0, 0, 0, 0, 1, 0, 1, 0x45]), None);
    }
}
