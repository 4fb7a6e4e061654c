//! UDP through the interface: a UDP socket bound on the wildcard or the
//! interface's address, or that sent through it, has a smoltcp socket on its
//! port (`UdpPort`), whose datagrams the stack moves into the inet socket's
//! own queue (net/udp.rs), beside those from loopback.

use super::{DatagramSink, Netstack};
use rvisor_abi::{error, SysResult};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::IpListenEndpoint;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

/// Datagrams each way the smoltcp socket holds between runs of the stack.
const SLOTS: usize = 64;
const BUFFER: usize = 256 << 10;

pub struct UdpPort {
    ns: Arc<Netstack>,
    handle: SocketHandle,
}

impl UdpPort {
    /// Takes `local`'s port (and address, unless the wildcard) on the
    /// interface; what comes to it goes to `inbox`.
    pub fn bind(ns: &Arc<Netstack>, local: SocketAddr, inbox: Weak<dyn DatagramSink>) -> SysResult<UdpPort> {
        ns.with(|stack| {
            let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; SLOTS], vec![0; BUFFER]);
            let mut s = udp::Socket::new(buffer(), buffer());
            let ep = IpListenEndpoint { addr: (!local.ip().is_unspecified()).then(|| local.ip().to_canonical().into()), port: local.port() };
            if s.bind(ep).is_err() {
                return error!(EINVAL);
            }
            let handle = stack.sockets.add(s);
            stack.deliver_to(handle, inbox);
            Ok(UdpPort { ns: ns.clone(), handle })
        })
    }

    /// Sends a datagram to `dest`. One the interface's queue has no room for
    /// is lost, as a full device queue loses it.
    pub fn send(&self, data: &[u8], dest: SocketAddr) -> SysResult<()> {
        self.ns.with(|stack| match stack.sockets.get_mut::<udp::Socket>(self.handle).send_slice(data, smoltcp::wire::IpEndpoint::from(dest)) {
            Ok(()) | Err(udp::SendError::BufferFull) => Ok(()),
            Err(udp::SendError::Unaddressable) => error!(ENETUNREACH),
        })
    }
}

impl Drop for UdpPort {
    fn drop(&mut self) {
        self.ns.with(|stack| stack.remove(self.handle));
    }
}
