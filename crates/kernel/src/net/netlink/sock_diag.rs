//! NETLINK_SOCK_DIAG: the sockets of the caller's network namespace, as
//! `ss` asks for them. SOCK_DIAG_BY_FAMILY dumps (or finds one of) the
//! AF_INET and AF_INET6 TCP and UDP sockets bound in the namespace's port
//! tables (loopback's and the sandbox stack's alike: one `inet_diag_msg`
//! each, with TCP_INFO and IPV6_V6ONLY attributes), and its AF_UNIX sockets
//! (`unix_diag_msg`, with name, peer, pending connections and queue lengths).
//! Inodes are the sockets' own, so `ss -p` finds their processes in
//! /proc/PID/fd. A dump is read in parts (see `super`) and ends with
//! NLMSG_DONE, which carries the error when the protocol has no handler, as
//! Linux's does.
//!
//! Not done: the bytecode filter of a request (INET_DIAG_REQ_BYTECODE, which
//! `ss` sends for an expression and then applies itself) is accepted and not
//! run; host sockets (`--network=host`) and TIME_WAIT connections are not
//! listed; the legacy TCPDIAG_GETSOCK requests are EOPNOTSUPP, as on a Linux
//! without the compatibility handler; SOCK_DESTROY destroys nothing.

use super::{attributes, Replies, AF_INET, AF_INET6, NLM_F_ACK, NLM_F_DUMP, NLM_F_MULTI};
use crate::net::inet::ProcNetRow;
use crate::net::unix::UnixDiagRow;
use crate::task::Task;
use rvisor_abi::structs::{InetDiagMsg, InetDiagReqV2, InetDiagSockid, Nlmsghdr, TcpInfo, UnixDiagMsg, UnixDiagReq};
use rvisor_abi::ErrnoCode;
use std::net::{IpAddr, SocketAddr};
use zerocopy::{FromBytes, IntoBytes};

pub const NETLINK_SOCK_DIAG: i32 = 4;

const TCPDIAG_GETSOCK: u16 = 18;
const DCCPDIAG_GETSOCK: u16 = 19;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const SOCK_DESTROY: u16 = 21;

const AF_UNIX: u8 = 1;
const AF_MAX: u8 = 46;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_UDPLITE: u8 = 136;
const IPPROTO_RAW: u8 = 255;

/// INET_DIAG_REQ_PROTOCOL: a u32 that replaces `sdiag_protocol` (for
/// protocols past 255).
const INET_DIAG_REQ_PROTOCOL: u16 = 3;
const INET_DIAG_INFO: u16 = 2;
const INET_DIAG_SKV6ONLY: u16 = 11;
/// idiag_states' bit for bound sockets that neither listen nor connect
/// (Linux 6.8's TCP_BOUND_INACTIVE); they show in state TCP_CLOSE.
const TCPF_BOUND_INACTIVE: u32 = 1 << 13;
const TCP_CLOSE: u8 = 7;
const TCP_LISTEN: u8 = 10;
/// A cookie that names no socket: the request does not check it.
const INET_DIAG_NOCOOKIE: u32 = u32::MAX;

const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_ICONS: u16 = 3;
const UNIX_DIAG_RQLEN: u16 = 4;
const UDIAG_SHOW_NAME: u32 = 0x1;
const UDIAG_SHOW_PEER: u32 = 0x4;
const UDIAG_SHOW_ICONS: u32 = 0x8;
const UDIAG_SHOW_RQLEN: u32 = 0x10;

/// One TCP or UDP socket as a dump sees it.
pub struct InetSocket {
    pub row: ProcNetRow,
    /// TCP_INFO, for a TCP socket.
    pub info: Option<TcpInfo>,
}

/// Where the sockets come from: the caller's namespace, or a test's list.
pub trait Sockets {
    /// The sockets of `protocol` (IPPROTO_TCP or IPPROTO_UDP).
    fn inet(&self, protocol: u8) -> Vec<InetSocket>;
    fn unix(&self) -> Vec<UnixDiagRow>;
}

/// The sockets of a task's network namespace, their owners shown in its
/// user namespace. TCP listeners come first, as Linux dumps its listening
/// table before the established one; each kind in the order made.
pub(super) struct TaskSockets<'a>(pub(super) &'a Task);

impl Sockets for TaskSockets<'_> {
    fn inet(&self, protocol: u8) -> Vec<InetSocket> {
        let loopback = &self.0.ns.net.loopback;
        let mut out: Vec<InetSocket> = match protocol {
            // A closed connection's TIME_WAIT has no TCP_INFO.
            IPPROTO_TCP => {
                let live = loopback.tcp.sockets().iter().filter_map(|s| Some((s.proc_net_row()?, s.tcp_info()))).map(|(row, info)| InetSocket { info: (row.inode != 0).then_some(info), row }).collect::<Vec<_>>();
                live.into_iter().chain(loopback.tcp_time_wait.rows().into_iter().map(|row| InetSocket { row, info: None })).collect()
            }
            IPPROTO_UDP => loopback.udp.sockets().iter().map(|s| InetSocket { row: s.proc_net_row(), info: None }).collect(),
            _ => Vec::new(),
        };
        let ns = self.0.tg.user_ns();
        for s in &mut out {
            s.row.uid = ns.show_uid(s.row.uid);
        }
        out.sort_by_key(|s| (s.row.state != TCP_LISTEN, s.row.inode));
        out
    }

    fn unix(&self) -> Vec<UnixDiagRow> {
        self.0.kernel.unix_sockets.in_namespace(self.0.ns.net.id).iter().map(|s| s.diag_row()).collect()
    }
}

/// Answers one request `h` (with `body`), listing `sockets`; `admin`: the
/// asker has CAP_NET_ADMIN.
pub(super) fn answer(r: &mut Replies, h: &Nlmsghdr, body: &[u8], admin: bool, sockets: &dyn Sockets) {
    match request(r, h, body, admin, sockets) {
        Ok(Answer::Dump(result)) => r.done_with(result.err().map_or(0, |e| -i32::from(e.0))),
        Ok(Answer::One) if h.flags & NLM_F_ACK != 0 => r.error(h, 0),
        Ok(Answer::One) => {}
        Err(e) => r.error(h, -i32::from(e.0)),
    }
}

/// How a request was answered: a dump (its NLMSG_DONE carries the error), or
/// a single message.
enum Answer {
    Dump(Result<(), ErrnoCode>),
    One,
}

/// Linux's sock_diag_rcv_msg and __sock_diag_cmd: the family picks the handler.
fn request(r: &mut Replies, h: &Nlmsghdr, body: &[u8], admin: bool, sockets: &dyn Sockets) -> Result<Answer, ErrnoCode> {
    match h.kind {
        SOCK_DIAG_BY_FAMILY | SOCK_DESTROY => {}
        TCPDIAG_GETSOCK | DCCPDIAG_GETSOCK => return Err(ErrnoCode::EOPNOTSUPP),
        _ => return Err(ErrnoCode::EINVAL),
    }
    let &[family, _, ..] = body else { return Err(ErrnoCode::EINVAL) };
    if family >= AF_MAX {
        return Err(ErrnoCode::EINVAL);
    }
    match family {
        AF_INET | AF_INET6 => inet(r, h, body, admin, sockets),
        AF_UNIX if h.kind == SOCK_DESTROY => Err(ErrnoCode::EOPNOTSUPP),
        AF_UNIX => unix(r, h, body, sockets),
        _ => Err(ErrnoCode::ENOENT),
    }
}

/// The protocols with a handler: TCP and UDP, and UDP-Lite and raw, of which
/// the sandbox has no sockets.
fn has_handler(protocol: u32) -> bool {
    [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, IPPROTO_RAW].iter().any(|&p| u32::from(p) == protocol)
}

/// inet_diag_handler_cmd: a dump, or one socket named by its addresses.
fn inet(r: &mut Replies, h: &Nlmsghdr, body: &[u8], admin: bool, sockets: &dyn Sockets) -> Result<Answer, ErrnoCode> {
    let (req, attrs) = InetDiagReqV2::read_from_prefix(body).map_err(|_| ErrnoCode::EINVAL)?;
    let protocol = match attributes(attrs).find(|&(kind, _)| kind == INET_DIAG_REQ_PROTOCOL) {
        Some((_, value)) => u32::from_ne_bytes(value.get(..4).and_then(|v| v.try_into().ok()).ok_or(ErrnoCode::EINVAL)?),
        None => u32::from(req.protocol),
    };
    let list = |protocol: u32| u8::try_from(protocol).map(|p| sockets.inet(p)).unwrap_or_default();
    if h.kind == SOCK_DIAG_BY_FAMILY && h.flags & NLM_F_DUMP == NLM_F_DUMP {
        r.start_dump()?;
        if !has_handler(protocol) {
            return Ok(Answer::Dump(Err(ErrnoCode::ENOENT)));
        }
        for s in list(protocol).iter().filter(|s| dumped(&req, protocol, &s.row)) {
            r.inet_socket(s, &req, NLM_F_MULTI);
        }
        return Ok(Answer::Dump(Ok(())));
    }
    if !has_handler(protocol) {
        return Err(ErrnoCode::ENOENT);
    }
    let found = list(protocol).into_iter().find(|s| names(&req.id, &s.row)).ok_or(ErrnoCode::ENOENT)?;
    if !cookie_matches(req.id.cookie, found.row.inode) {
        return Err(ErrnoCode::ESTALE);
    }
    if h.kind == SOCK_DESTROY {
        return Err(if admin { ErrnoCode::EOPNOTSUPP } else { ErrnoCode::EPERM });
    }
    r.inet_socket(&found, &req, 0);
    Ok(Answer::One)
}

/// Whether a dump of `req` shows `row`: its family, a state the mask asks
/// for (a bound TCP socket that neither listens nor connects only for
/// TCPF_BOUND_INACTIVE), and the ports it names, if any.
fn dumped(req: &InetDiagReqV2, protocol: u32, row: &ProcNetRow) -> bool {
    let state_asked = if protocol == u32::from(IPPROTO_TCP) && row.state == TCP_CLOSE {
        req.states & TCPF_BOUND_INACTIVE != 0
    } else {
        req.states & (1 << row.state) != 0
    };
    let sport = u16::from_be_bytes(req.id.sport);
    let dport = u16::from_be_bytes(req.id.dport);
    row.domain == i32::from(req.family)
        && state_asked
        && (sport == 0 || sport == row.local.port())
        && (dport == 0 || dport == row.remote.map_or(0, |a| a.port()))
}

/// Whether the socket id of a single query names `row`: family, both ends'
/// addresses and ports (an unconnected socket's peer is the wildcard, port 0).
fn names(id: &InetDiagSockid, row: &ProcNetRow) -> bool {
    let (sport, src) = sockid_address(row.local);
    let (dport, dst) = row.remote.map_or(([0; 2], [0; 16]), sockid_address);
    (sport, src, dport, dst) == (id.sport, id.src, id.dport, id.dst)
}

/// Linux's sock_diag_check_cookie: either word not "no cookie" makes the
/// socket's own (here its inode) required.
fn cookie_matches(cookie: [u32; 2], inode: u64) -> bool {
    cookie == [INET_DIAG_NOCOOKIE; 2] || cookie == split_cookie(inode)
}

fn split_cookie(inode: u64) -> [u32; 2] {
    [inode as u32, (inode >> 32) as u32]
}

/// An address as `inet_diag_sockid` has it: the port and address bytes in
/// network order, an IPv4 address in the first four.
fn sockid_address(a: SocketAddr) -> ([u8; 2], [u8; 16]) {
    let mut ip = [0; 16];
    match a.ip() {
        IpAddr::V4(v4) => ip[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => ip = v6.octets(),
    }
    (a.port().to_be_bytes(), ip)
}

/// unix_diag_handler_dump: a dump of the states asked for, or one socket by
/// its inode.
fn unix(r: &mut Replies, h: &Nlmsghdr, body: &[u8], sockets: &dyn Sockets) -> Result<Answer, ErrnoCode> {
    let (req, _) = UnixDiagReq::read_from_prefix(body).map_err(|_| ErrnoCode::EINVAL)?;
    if h.flags & NLM_F_DUMP == NLM_F_DUMP {
        r.start_dump()?;
        for s in sockets.unix().iter().filter(|s| req.states & (1 << s.state) != 0) {
            r.unix_socket(s, req.show, NLM_F_MULTI);
        }
        return Ok(Answer::Dump(Ok(())));
    }
    let found = sockets.unix().into_iter().find(|s| s.inode as u32 == req.ino).ok_or(ErrnoCode::ENOENT)?;
    if !cookie_matches(req.cookie, found.inode) {
        return Err(ErrnoCode::ESTALE);
    }
    r.unix_socket(&found, req.show, 0);
    Ok(Answer::One)
}

impl Replies<'_> {
    /// One `inet_diag_msg`, with the attributes `req.ext` asks for that the
    /// socket has, and IPV6_V6ONLY for an AF_INET6 one that is listening or
    /// unconnected, as Linux adds.
    fn inet_socket(&mut self, s: &InetSocket, req: &InetDiagReqV2, flags: u16) {
        let row = &s.row;
        let (sport, src) = sockid_address(row.local);
        let (dport, dst) = row.remote.map_or(([0; 2], [0; 16]), sockid_address);
        let id = InetDiagSockid { sport, dport, src, dst, interface: 0, cookie: split_cookie(row.inode) };
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let msg = InetDiagMsg {
            family: row.domain as u8,
            state: row.state,
            timer: 0,
            retrans: 0,
            id,
            expires: 0,
            rqueue: clamp(row.queued),
            wqueue: clamp(row.sent),
            uid: row.uid,
            inode: row.inode as u32,
        };
        let m = self.begin(SOCK_DIAG_BY_FAMILY, flags, msg.as_bytes());
        if row.domain == i32::from(AF_INET6) && (row.state == TCP_LISTEN || row.state == TCP_CLOSE) {
            self.attr(INET_DIAG_SKV6ONLY, &[u8::from(row.v6only)]);
        }
        if let Some(info) = s.info.filter(|_| req.ext & (1 << (INET_DIAG_INFO - 1)) != 0) {
            self.attr(INET_DIAG_INFO, info.as_bytes());
        }
        self.end(m);
    }

    /// One `unix_diag_msg`, with the attributes `show` asks for that the
    /// socket has.
    fn unix_socket(&mut self, s: &UnixDiagRow, show: u32, flags: u16) {
        let msg = UnixDiagMsg { family: AF_UNIX, kind: s.kind as u8, state: s.state, pad: 0, ino: s.inode as u32, cookie: split_cookie(s.inode) };
        let m = self.begin(SOCK_DIAG_BY_FAMILY, flags, msg.as_bytes());
        if show & UDIAG_SHOW_NAME != 0 {
            if let Some(name) = &s.name {
                self.attr(UNIX_DIAG_NAME, name);
            }
        }
        if show & UDIAG_SHOW_PEER != 0 {
            if let Some(peer) = s.peer {
                self.attr(UNIX_DIAG_PEER, &(peer as u32).to_ne_bytes());
            }
        }
        if show & UDIAG_SHOW_ICONS != 0 && s.state == TCP_LISTEN {
            let inodes: Vec<u32> = s.waiting.iter().map(|&i| i as u32).collect();
            self.attr(UNIX_DIAG_ICONS, inodes.as_bytes());
        }
        if show & UDIAG_SHOW_RQLEN != 0 {
            let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            self.attr(UNIX_DIAG_RQLEN, [clamp(s.rqueue), clamp(s.wqueue)].as_bytes());
        }
        self.end(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::netlink::{HDR, NLM_F_REQUEST};

    struct Fake;

    fn row(domain: i32, state: u8, local: &str, remote: Option<&str>, inode: u64) -> ProcNetRow {
        ProcNetRow { domain, local: local.parse().unwrap(), remote: remote.map(|r| r.parse().unwrap()), state, queued: 3, sent: 0, uid: 1000, inode, v6only: true, drops: None }
    }

    impl Sockets for Fake {
        fn inet(&self, protocol: u8) -> Vec<InetSocket> {
            match protocol {
                IPPROTO_TCP => vec![
                    InetSocket { row: row(2, TCP_LISTEN, "127.0.0.1:80", None, 10), info: Some(TcpInfo::zeroed()) },
                    InetSocket { row: row(2, 1, "127.0.0.1:80", Some("127.0.0.1:40000"), 11), info: Some(TcpInfo::zeroed()) },
                    InetSocket { row: row(10, TCP_LISTEN, "[::]:80", None, 12), info: Some(TcpInfo::zeroed()) },
                    InetSocket { row: row(2, TCP_CLOSE, "127.0.0.1:81", None, 13), info: Some(TcpInfo::zeroed()) },
                ],
                _ => Vec::new(),
            }
        }

        fn unix(&self) -> Vec<UnixDiagRow> {
            vec![
                UnixDiagRow { kind: 1, state: TCP_LISTEN, inode: 20, name: Some(b"/run/x.sock\0".to_vec()), peer: None, rqueue: 1, wqueue: 5, waiting: vec![22] },
                UnixDiagRow { kind: 2, state: TCP_CLOSE, inode: 21, name: None, peer: None, rqueue: 0, wqueue: 0, waiting: Vec::new() },
            ]
        }
    }

    /// The replies to every request in `data`, from socket 5 of a task without CAP_NET_ADMIN.
    fn answer_fake(data: &[u8]) -> Vec<u8> {
        crate::net::netlink::answer_all(data, 5, |r, h, body| answer(r, h, body, false, &Fake))
    }

    fn request(kind: u16, flags: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Nlmsghdr { len: (HDR + body.len()) as u32, kind, flags, seq: 9, pid: 0 }.as_bytes().to_vec();
        m.extend_from_slice(body);
        m
    }

    /// Each message's type and body (checked to lie within the reply).
    fn messages(data: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let (h, _) = Nlmsghdr::read_from_prefix(&data[at..]).unwrap();
            let len = h.len as usize;
            assert!(len >= HDR && at + len <= data.len());
            assert_eq!((h.seq, h.pid), (9, 5));
            out.push((h.kind, data[at + HDR..at + len].to_vec()));
            at += super::super::align4(len);
        }
        out
    }

    fn inet_req(family: u8, protocol: u8, states: u32, ext: u8) -> InetDiagReqV2 {
        let mut r = InetDiagReqV2::zeroed();
        (r.family, r.protocol, r.states, r.ext) = (family, protocol, states, ext);
        r
    }

    fn ask(kind: u16, flags: u16, body: &[u8]) -> Vec<(u16, Vec<u8>)> {
        messages(&answer_fake(&request(kind, NLM_F_REQUEST | flags, body)))
    }

    /// The error of a final NLMSG_DONE or NLMSG_ERROR.
    fn error_of(msgs: &[(u16, Vec<u8>)]) -> (u16, i32) {
        let (kind, body) = msgs.last().unwrap();
        (*kind, i32::from_ne_bytes(body[..4].try_into().unwrap()))
    }

    #[test]
    fn tcp_dump_filters_by_family_and_state() {
        let msgs = ask(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, inet_req(AF_INET, IPPROTO_TCP, 0xfff, 1 << (INET_DIAG_INFO - 1)).as_bytes());
        assert_eq!(msgs.len(), 3);
        let listener = InetDiagMsg::read_from_prefix(&msgs[0].1).unwrap().0;
        assert_eq!((listener.family, listener.state, listener.inode, listener.uid, listener.rqueue), (AF_INET, TCP_LISTEN, 10, 1000, 3));
        assert_eq!((listener.id.sport, &listener.id.src[..4]), (80u16.to_be_bytes(), &[127, 0, 0, 1][..]));
        assert_eq!(listener.id.cookie, [10, 0]);
        // TCP_INFO was asked for; an AF_INET socket has no IPV6_V6ONLY.
        let attrs: Vec<u16> = attributes(&msgs[0].1[72..]).map(|(k, _)| k).collect();
        assert_eq!(attrs, [INET_DIAG_INFO]);
        let conn = InetDiagMsg::read_from_prefix(&msgs[1].1).unwrap().0;
        assert_eq!((conn.state, conn.id.dport), (1, 40000u16.to_be_bytes()));
        assert_eq!(error_of(&msgs), (super::super::NLMSG_DONE, 0));

        // Listeners only; the bound socket only for TCPF_BOUND_INACTIVE.
        assert_eq!(ask(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, inet_req(AF_INET, IPPROTO_TCP, 1 << TCP_LISTEN, 0).as_bytes()).len(), 2);
        let bound = ask(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, inet_req(AF_INET, IPPROTO_TCP, TCPF_BOUND_INACTIVE, 0).as_bytes());
        assert_eq!(InetDiagMsg::read_from_prefix(&bound[0].1).unwrap().0.inode, 13);
        // A source port narrows a dump.
        let mut r = inet_req(AF_INET, IPPROTO_TCP, 0xfff, 0);
        r.id.sport = 81u16.to_be_bytes();
        assert_eq!(ask(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, r.as_bytes()).len(), 1);
        // AF_INET6: a listener shows IPV6_V6ONLY.
        let v6 = ask(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, inet_req(AF_INET6, IPPROTO_TCP, 0xfff, 0).as_bytes());
        assert_eq!(v6.len(), 2);
        assert_eq!(attributes(&v6[0].1[72..]).collect::<Vec<_>>(), [(INET_DIAG_SKV6ONLY, &[1][..])]);
    }

    #[test]
    fn one_socket_by_its_addresses() {
        let mut r = inet_req(AF_INET, IPPROTO_TCP, 0, 0);
        r.id.sport = 80u16.to_be_bytes();
        r.id.dport = 40000u16.to_be_bytes();
        r.id.src[..4].copy_from_slice(&[127, 0, 0, 1]);
        r.id.dst[..4].copy_from_slice(&[127, 0, 0, 1]);
        r.id.cookie = [INET_DIAG_NOCOOKIE; 2];
        let one = ask(SOCK_DIAG_BY_FAMILY, 0, r.as_bytes());
        assert_eq!(one.len(), 1);
        assert_eq!(InetDiagMsg::read_from_prefix(&one[0].1).unwrap().0.inode, 11);
        r.id.cookie = [11, 0];
        assert_eq!(ask(SOCK_DIAG_BY_FAMILY, 0, r.as_bytes()).len(), 1);
        r.id.cookie = [12, 0];
        assert_eq!(error_of(&ask(SOCK_DIAG_BY_FAMILY, 0, r.as_bytes())), (super::super::NLMSG_ERROR, -(ErrnoCode::ESTALE.0 as i32)));
        r.id.dport = 1u16.to_be_bytes();
        assert_eq!(error_of(&ask(SOCK_DIAG_BY_FAMILY, 0, r.as_bytes())), (super::super::NLMSG_ERROR, -(ErrnoCode::ENOENT.0 as i32)));
        r.id.dport = 40000u16.to_be_bytes();
        r.id.cookie = [INET_DIAG_NOCOOKIE; 2];
        assert_eq!(error_of(&ask(SOCK_DESTROY, 0, r.as_bytes())), (super::super::NLMSG_ERROR, -(ErrnoCode::EPERM.0 as i32)));
    }

    #[test]
    fn unix_dump_and_lookup() {
        let mut r = UnixDiagReq::zeroed();
        (r.family, r.states, r.show) = (AF_UNIX, 0xfff, UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN | UDIAG_SHOW_ICONS | UDIAG_SHOW_PEER);
        let msgs = ask(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, r.as_bytes());
        assert_eq!(msgs.len(), 3);
        let m = UnixDiagMsg::read_from_prefix(&msgs[0].1).unwrap().0;
        assert_eq!((m.family, m.kind, m.state, m.ino), (AF_UNIX, 1, TCP_LISTEN, 20));
        let attrs: Vec<(u16, &[u8])> = attributes(&msgs[0].1[16..]).collect();
        assert_eq!(attrs[0], (UNIX_DIAG_NAME, &b"/run/x.sock\0"[..]));
        assert_eq!(attrs[1], (UNIX_DIAG_ICONS, &22u32.to_ne_bytes()[..]));
        assert_eq!(attrs[2], (UNIX_DIAG_RQLEN, [1u32, 5].as_bytes()));
        // Listening ones only; one by inode; a missing inode.
        r.states = 1 << TCP_LISTEN;
        assert_eq!(ask(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, r.as_bytes()).len(), 2);
        (r.ino, r.cookie) = (21, [INET_DIAG_NOCOOKIE; 2]);
        assert_eq!(UnixDiagMsg::read_from_prefix(&ask(SOCK_DIAG_BY_FAMILY, 0, r.as_bytes())[0].1).unwrap().0.kind, 2);
        r.ino = 99;
        assert_eq!(error_of(&ask(SOCK_DIAG_BY_FAMILY, 0, r.as_bytes())).1, -(ErrnoCode::ENOENT.0 as i32));
    }

    #[test]
    fn bad_requests_get_linux_errors() {
        let err = |kind, flags, body: &[u8]| error_of(&ask(kind, flags, body));
        let einval = (super::super::NLMSG_ERROR, -(ErrnoCode::EINVAL.0 as i32));
        assert_eq!(err(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &[AF_INET]), einval);
        assert_eq!(err(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &[AF_INET, IPPROTO_TCP, 0, 0]), einval);
        assert_eq!(err(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &[AF_UNIX, 0, 0, 0]), einval);
        assert_eq!(err(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, inet_req(AF_MAX, IPPROTO_TCP, 0, 0).as_bytes()), einval);
        assert_eq!(err(99, NLM_F_DUMP, inet_req(AF_INET, IPPROTO_TCP, 0, 0).as_bytes()), einval);
        assert_eq!(err(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, inet_req(4, IPPROTO_TCP, 0, 0).as_bytes()).1, -(ErrnoCode::ENOENT.0 as i32));
        // A dump of a protocol without a handler ends in an NLMSG_DONE with ENOENT.
        assert_eq!(err(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, inet_req(AF_INET, 200, 0xfff, 0).as_bytes()), (super::super::NLMSG_DONE, -(ErrnoCode::ENOENT.0 as i32)));
        // UDP-Lite and raw have handlers and no sockets.
        assert_eq!(ask(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, inet_req(AF_INET, IPPROTO_RAW, 0xfff, 0).as_bytes()).len(), 1);
        // A bad INET_DIAG_REQ_PROTOCOL.
        let mut body = inet_req(AF_INET, IPPROTO_TCP, 0xfff, 0).as_bytes().to_vec();
        body.extend_from_slice(&[6, 0, 3, 0, 1, 0, 0, 0]);
        assert_eq!(err(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &body), einval);
        // Truncated messages get no answer.
        assert!(answer_fake(&[1, 2, 3]).is_empty());
        let mut cut = request(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, inet_req(AF_INET, IPPROTO_TCP, 0xfff, 0).as_bytes());
        cut.truncate(30);
        assert!(answer_fake(&cut).is_empty());
    }
}
