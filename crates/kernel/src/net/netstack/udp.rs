//! Datagrams through the interface: a UDP socket bound on the wildcard or the
//! interface's address, or that sent through it, has a smoltcp socket on its
//! port (`UdpPort`), whose datagrams the stack moves into the inet socket's
//! own queue (net/udp.rs), beside those from loopback. A ping socket's port
//! is an ICMP echo identifier, on a smoltcp ICMP socket bound to it.

use super::{DatagramSink, Netstack};
use rvisor_abi::{error, SysResult};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{icmp, udp};
use smoltcp::wire::{IpAddress, IpListenEndpoint};
use std::net::SocketAddr;
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
    kind: PortKind,
}

impl UdpPort {
    /// Takes `local`'s port (and address, unless the wildcard) on the
    /// interface; what comes to it goes to `inbox`.
    pub fn bind(ns: &Arc<Netstack>, local: SocketAddr, inbox: Weak<dyn DatagramSink>, kind: PortKind) -> SysResult<UdpPort> {
        ns.with(|stack| {
            let handle = match kind {
                PortKind::Udp => {
                    let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; SLOTS], vec![0; BUFFER]);
                    let mut s = udp::Socket::new(buffer(), buffer());
                    let ep = IpListenEndpoint { addr: (!local.ip().is_unspecified()).then(|| local.ip().to_canonical().into()), port: local.port() };
                    if s.bind(ep).is_err() {
                        return error!(EINVAL);
                    }
                    stack.sockets.add(s)
                }
                PortKind::Echo => {
                    let buffer = || icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; SLOTS], vec![0; BUFFER]);
                    let mut s = icmp::Socket::new(buffer(), buffer());
                    if s.bind(icmp::Endpoint::Ident(local.port())).is_err() {
                        return error!(EINVAL);
                    }
                    stack.sockets.add(s)
                }
            };
            stack.deliver_to(handle, inbox);
            Ok(UdpPort { ns: ns.clone(), handle, kind })
        })
    }

    /// Sends a datagram to `dest`. One the interface's queue has no room for
    /// is lost, as a full device queue loses it.
    /// An echo port sends `data` as the whole ICMP message.
    pub fn send(&self, data: &[u8], dest: SocketAddr) -> SysResult<()> {
        self.ns.with(|stack| match self.kind {
            PortKind::Udp => match stack.sockets.get_mut::<udp::Socket>(self.handle).send_slice(data, smoltcp::wire::IpEndpoint::from(dest)) {
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
        self.ns.with(|stack| stack.remove(self.handle));
    }
}
