//! TCP port rights: binding and connecting TCP sockets (Linux's
//! security/landlock/net.c). Other sockets are not restricted.

use super::{Domain, Key};
use rvisor_abi::{error, SysResult};

const AF_UNSPEC: u16 = 0;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const SOCK_STREAM: i32 = 1;
/// `sizeof(struct sockaddr_in)` and SIN6_LEN_RFC2133.
const SOCKADDR_IN_LEN: usize = 16;
const SOCKADDR_IN6_LEN_RFC2133: usize = 24;

/// Binding (`right` NET_BIND_TCP) or connecting (NET_CONNECT_TCP) `sock` to
/// the address `addr`, as the caller wrote it: the port must be granted by
/// every layer that handles the right. A malformed address is EINVAL here
/// rather than EACCES, as in Linux; AF_UNSPEC disconnects freely, and binds
/// only as the IPv4 wildcard.
pub fn may_use_port(dom: Option<&Domain>, sock: &dyn crate::net::Socket, addr: &[u8], right: u64) -> SysResult<()> {
    let Some(dom) = dom.filter(|d| d.handled().net & right != 0) else { return Ok(()) };
    let family = sock.domain() as u16;
    if sock.kind() != SOCK_STREAM || !matches!(family, AF_INET | AF_INET6) {
        return Ok(());
    }
    if addr.len() < 2 {
        return error!(EINVAL);
    }
    let given = u16::from_le_bytes([addr[0], addr[1]]);
    let least = match given {
        AF_UNSPEC | AF_INET => SOCKADDR_IN_LEN,
        AF_INET6 => SOCKADDR_IN6_LEN_RFC2133,
        _ => return Ok(()),
    };
    if addr.len() < least {
        return error!(EINVAL);
    }
    if given == AF_UNSPEC {
        if right == super::NET_CONNECT_TCP {
            return Ok(());
        }
        if family != AF_INET {
            return error!(EINVAL);
        }
        if addr[4..8] != [0; 4] {
            return error!(EAFNOSUPPORT);
        }
    } else if given != family {
        return error!(EINVAL);
    }
    let port = u16::from_be_bytes([addr[2], addr[3]]);
    let mut masks = [0; 16];
    let request = dom.init_masks(right, true, &mut masks);
    if dom.unmask(Some(Key::Port(port)), request, &mut masks) { Ok(()) } else { error!(EACCES) }
}
