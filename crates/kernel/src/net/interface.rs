//! The sandbox's one network interface, `lo`, as rtnetlink (netlink.rs) and
//! the SIOCGIF* ioctls of inet sockets describe it: index 1, up, with
//! 127.0.0.1/8 and ::1/128, as Linux's loopback comes up in a new network
//! namespace.

use crate::mm::UserRef;
use crate::task::Task;
use rvisor_abi::structs::{Ifreq, SockaddrIn};
use rvisor_abi::{error, SysResult, UserAddr};
use std::net::IpAddr;
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

pub const INDEX: i32 = 1;
pub const NAME: &[u8] = b"lo";
pub const MTU: u32 = 65536;
pub const TXQLEN: u32 = 1000;
/// IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP.
pub const FLAGS: u32 = 0x1 | 0x8 | 0x40 | 0x10000;
/// The hardware type of a loopback device.
pub const ARPHRD_LOOPBACK: u16 = 772;
pub const V4: [u8; 4] = [127, 0, 0, 1];
pub const V4_PREFIX: u8 = 8;
pub const V6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const V6_PREFIX: u8 = 128;

/// /proc/net/dev: lo, with no traffic counted.
pub const PROC_NET_DEV: &str = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n";

const SIOCGIFNAME: u32 = 0x8910;
const SIOCGIFCONF: u32 = 0x8912;
const SIOCGIFFLAGS: u32 = 0x8913;
const SIOCGIFADDR: u32 = 0x8915;
const SIOCGIFNETMASK: u32 = 0x891b;
const SIOCGIFMTU: u32 = 0x8921;
const SIOCGIFHWADDR: u32 = 0x8927;
const SIOCGIFINDEX: u32 = 0x8933;
const SIOCGIFTXQLEN: u32 = 0x8942;

/// Whether `request` is one of the interface ioctls `ioctl` answers.
pub fn is_interface_ioctl(request: u32) -> bool {
    matches!(request, SIOCGIFNAME | SIOCGIFCONF | SIOCGIFFLAGS | SIOCGIFADDR | SIOCGIFNETMASK | SIOCGIFMTU | SIOCGIFHWADDR | SIOCGIFINDEX | SIOCGIFTXQLEN)
}

fn sockaddr_in(addr: [u8; 4]) -> [u8; 16] {
    let sin = SockaddrIn { family: super::inet::AF_INET as u16, port: [0; 2], addr, zero: [0; 8] };
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

/// The SIOCGIF* ioctls on an inet socket, for `lo` (ENODEV for any other name).
pub fn ioctl(t: &Task, request: u32, arg: u64) -> SysResult<u64> {
    if request == SIOCGIFCONF {
        return ifconf(t, UserAddr(arg));
    }
    let at = UserRef::<Ifreq>::new(UserAddr(arg));
    let req = t.mm.read_obj(at)?;
    if request == SIOCGIFNAME {
        if i32::from_ne_bytes([req.data[0], req.data[1], req.data[2], req.data[3]]) != INDEX {
            return error!(ENODEV);
        }
        let mut out = req;
        out.name = [0; 16];
        out.name[..NAME.len()].copy_from_slice(NAME);
        return t.mm.write_obj(at, &out).map(|()| 0);
    }
    let end = req.name.iter().position(|&b| b == 0).unwrap_or(req.name.len());
    if &req.name[..end] != NAME {
        return error!(ENODEV);
    }
    let out = match request {
        SIOCGIFINDEX => with_data(req, &INDEX.to_ne_bytes()),
        SIOCGIFFLAGS => with_data(req, &(FLAGS as u16).to_ne_bytes()),
        SIOCGIFMTU => with_data(req, &MTU.to_ne_bytes()),
        SIOCGIFTXQLEN => with_data(req, &TXQLEN.to_ne_bytes()),
        SIOCGIFADDR => with_data(req, &sockaddr_in(V4)),
        SIOCGIFNETMASK => with_data(req, &sockaddr_in([255, 0, 0, 0])),
        SIOCGIFHWADDR => with_data(req, &ARPHRD_LOOPBACK.to_ne_bytes()),
        _ => return error!(ENOTTY),
    };
    t.mm.write_obj(at, &out).map(|()| 0)
}

/// SIOCGIFCONF: `struct ifconf` is a length and a buffer; a NULL buffer asks
/// for the length needed. `lo` is the one interface with an IPv4 address.
fn ifconf(t: &Task, at: UserAddr) -> SysResult<u64> {
    let len_at = UserRef::<i32>::new(at);
    let buf_at = UserRef::<u64>::new(at.add(8)?);
    let (room, buf) = (t.mm.read_obj(len_at)?, t.mm.read_obj(buf_at)?);
    let entry = std::mem::size_of::<Ifreq>() as i32;
    if buf == 0 {
        return t.mm.write_obj(len_at, &entry).map(|()| 0);
    }
    if room < entry {
        return t.mm.write_obj(len_at, &0).map(|()| 0);
    }
    let mut name = [0u8; 16];
    name[..NAME.len()].copy_from_slice(NAME);
    let req = with_data(Ifreq { name, data: [0; 24] }, &sockaddr_in(V4));
    t.mm.write_obj(UserRef::new(UserAddr(buf)), &req)?;
    t.mm.write_obj(len_at, &entry).map(|()| 0)
}
