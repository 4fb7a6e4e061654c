//! Sockets, all served inside the Sentry: AF_UNIX (`unix`), and AF_INET and
//! AF_INET6 on the sandbox's only interface, loopback (`inet` for addresses
//! and ports, `tcp`, `udp`; `interface` describes `lo`), and AF_NETLINK's
//! route protocol, for listing that interface, and sock_diag, for listing
//! the sockets (`netlink`). No socket call
//! reaches the host, unless the sandbox passes the host's network through
//! (`host`): then AF_INET and AF_INET6 sockets are host sockets. Host ports
//! forwarded into the sandbox (`rvisor do -p`) are relayed to its loopback
//! listeners by host threads (`forward`).
//!
//! The socket calls (syscalls/socket.rs) see every family through `Socket`,
//! with addresses as the raw `struct sockaddr` bytes each family reads.

pub mod forward;
pub mod host;
pub mod inet;
pub mod interface;
pub mod ip_control;
pub mod netlink;
pub mod netstack;
pub mod skb;
pub mod tcp;
pub mod udp;
pub mod unix;

use crate::fs::simple::{copy_in, copy_out};
use crate::mm::UserBuffers;
use crate::task::Task;
use crate::vfs::FileDescription;
use rvisor_abi::structs::{Stat, Ucred};
use rvisor_abi::{error, ErrnoCode, SysResult};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// recvmsg/sendmsg flags the sockets understand.
pub const MSG_PEEK: u32 = 0x2;
pub const MSG_TRUNC: u32 = 0x20;
pub const MSG_DONTWAIT: u32 = 0x40;
pub const MSG_WAITALL: u32 = 0x100;
pub const MSG_NOSIGNAL: u32 = 0x4000;
pub const MSG_EOR: u32 = 0x80;
pub const MSG_MORE: u32 = 0x8000;
/// TCP's urgent data, AF_UNIX streams' OOB byte (`Socket::takes_oob`).
pub const MSG_OOB: u32 = 0x1;
/// The ioctl that says whether the next byte read is the urgent (OOB) one.
pub const SIOCATMARK: u32 = 0x8905;
/// recvmsg: read the socket's error queue, not its data (and the flag it
/// sets in msg_flags).
pub const MSG_ERRQUEUE: u32 = 0x2000;

pub const SOCK_STREAM: i32 = 1;
pub const SOCK_DGRAM: i32 = 2;
pub const SOCK_SEQPACKET: i32 = 5;

/// What one direction of a connection, or a datagram socket's queue, holds at
/// most (Linux's default socket buffer is ~208 KiB).
pub const BUFFER: usize = 208 << 10;

/// What a receive took: bytes, the length of the message they came from, the
/// files that came with them, the sender's address (a whole sockaddr; None
/// for an unnamed sender), and the credentials to deliver.
#[derive(Default)]
pub struct Received {
    pub data: Vec<u8>,
    pub full: usize,
    pub files: Vec<Arc<dyn FileDescription>>,
    pub from: Option<Vec<u8>>,
    pub creds: Option<Ucred>,
    /// IP-level control messages the socket was asked for: (level, type, data).
    pub control: Vec<(i32, i32, Vec<u8>)>,
    /// What it sets in msg_flags besides MSG_TRUNC and MSG_CTRUNC.
    pub flags: u32,
    /// The call returns `full` without MSG_TRUNC however little was copied
    /// (AF_UNIX's recv(MSG_OOB) counts its byte even into no room).
    pub counted: bool,
}

/// What a send carries besides its bytes (sendmsg's control messages).
#[derive(Default)]
pub struct Ancillary {
    pub files: Vec<Arc<dyn FileDescription>>,
    /// SCM_CREDENTIALS, already checked against the sender's rights.
    pub creds: Option<Ucred>,
    /// IP-level messages (level, type, data), which only an inet datagram
    /// socket reads (`ip_control`); the others skip them, as Linux's.
    pub ip: Vec<(i32, i32, Vec<u8>)>,
}

impl Ancillary {
    fn is_empty(&self) -> bool {
        self.files.is_empty() && self.creds.is_none()
    }
}

/// A connection accept(2) took, and its peer's address (None: unnamed).
pub type Accepted = (Arc<dyn FileDescription>, Option<Vec<u8>>);

/// A socket of any family, as the socket calls use it. Addresses in and out
/// are whole `struct sockaddr`s, family first; the caller has copied them in
/// (at most `sockaddr_storage`, as Linux's move_addr_to_kernel).
pub trait Socket: Send + Sync {
    /// AF_UNIX, AF_INET, AF_INET6 (SO_DOMAIN).
    fn domain(&self) -> i32;
    /// SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET (SO_TYPE).
    fn kind(&self) -> i32;
    /// SO_PROTOCOL.
    fn protocol(&self) -> i32;
    fn bind(&self, t: &Task, addr: &[u8]) -> SysResult<()>;
    fn listen(&self, t: &Task, backlog: i32) -> SysResult<()>;
    fn connect(&self, t: &Task, addr: &[u8]) -> SysResult<()>;
    /// The next connection, and its peer's address.
    fn accept(&self, t: &Task) -> SysResult<Accepted>;
    /// Sends Sentry bytes, to `to` when the caller named an address.
    fn send(&self, t: &Task, data: &[u8], flags: u32, anc: Ancillary, to: Option<&[u8]>) -> SysResult<usize>;
    /// Receives into a Sentry buffer of at most `max` bytes.
    fn receive(&self, t: &Task, max: usize, flags: u32) -> SysResult<Received>;
    /// Whether a send (or a receive, when `receiving`) takes MSG_OOB: TCP's
    /// urgent data, AF_UNIX streams' OOB byte; for the others it is EOPNOTSUPP.
    fn takes_oob(&self, _receiving: bool) -> bool {
        false
    }
    /// recvmsg(MSG_ERRQUEUE): the oldest queued error, its payload cut to
    /// `max`; EAGAIN when none is, without waiting. Only sockets that keep an
    /// error queue take the flag.
    fn receive_error(&self, _t: &Task, _max: usize, _flags: u32) -> SysResult<Received> {
        error!(EOPNOTSUPP)
    }
    fn shutdown(&self, how: i32) -> SysResult<()>;
    /// getsockname.
    fn name(&self) -> Vec<u8>;
    /// getpeername: ENOTCONN without a peer.
    fn peer_name(&self) -> SysResult<Vec<u8>>;
    /// SO_ACCEPTCONN.
    fn listening(&self) -> bool;
    /// SO_ERROR: the pending error, cleared.
    fn take_error(&self) -> Option<ErrnoCode>;
    /// An option the socket calls do not answer for every family.
    fn get_option(&self, t: &Task, level: i32, name: i32) -> SysResult<Vec<u8>>;
    fn set_option(&self, t: &Task, level: i32, name: i32, value: &[u8]) -> SysResult<()>;
    /// SO_RCVTIMEO and SO_SNDTIMEO, for a socket whose calls honour them.
    fn timeouts(&self) -> Option<&Timeouts> {
        None
    }
    /// SO_SNDBUF and SO_RCVBUF, for a socket whose queues honour them
    /// (others report BUFFER).
    fn buffer_sizes(&self) -> Option<&BufferSizes> {
        None
    }
}

/// Which way a socket call moves data, for its timeout.
#[derive(Clone, Copy)]
pub enum Way {
    Receive = 0,
    Send = 1,
}

/// SO_RCVTIMEO and SO_SNDTIMEO: how long a blocking receive (accept too) or
/// send waits; None waits for ever. Leaf lock.
#[derive(Default)]
pub struct Timeouts {
    values: Mutex<[Option<Duration>; 2]>,
}

impl Timeouts {
    pub fn get(&self, way: Way) -> Option<Duration> {
        self.values.lock().unwrap_or_else(|e| e.into_inner())[way as usize]
    }

    pub fn set(&self, way: Way, value: Option<Duration>) {
        self.values.lock().unwrap_or_else(|e| e.into_inner())[way as usize] = value;
    }

    /// The limit of a call that starts now.
    pub fn limit(&self, way: Way) -> Limit {
        Limit(self.get(way).map(crate::time::deadline_in))
    }
}

/// Linux's smallest send and receive buffers (SOCK_MIN_SNDBUF, SOCK_MIN_RCVBUF).
const MIN_SEND_BUFFER: usize = 4608;
const MIN_RECEIVE_BUFFER: usize = 2304;

/// Linux's default net.ipv4.tcp_wmem and tcp_rmem: a TCP socket's first send
/// and receive buffers, and the most a send buffer grows to.
const TCP_WMEM_DEFAULT: usize = 16384;
const TCP_WMEM_MAX: usize = 4 << 20;
const TCP_RMEM_DEFAULT: usize = 131072;
const TCP_RMEM_MAX: usize = 32 << 20;

/// SO_RCVBUF and SO_SNDBUF as Linux keeps them (sk_rcvbuf, sk_sndbuf): BUFFER
/// until set (TCP: its own defaults); a value set is capped at
/// net.core.rmem_max and wmem_max (BUFFER by default) and doubled, since
/// Linux charges its bookkeeping against them, and no less than the minimum.
/// What a queue may hold follows from them (net/unix.rs). Indexed by `Way`.
pub struct BufferSizes {
    values: [AtomicUsize; 2],
    /// Which were set (Linux's SOCK_RCVBUF_LOCK and SOCK_SNDBUF_LOCK): TCP
    /// tunes the others.
    set: [AtomicBool; 2],
    /// SO_RCVLOWAT (sk_rcvlowat): what a blocking stream read waits for,
    /// and, on TCP, what polls readable (net/unix.rs).
    rcvlowat: AtomicUsize,
    /// A TCP socket's, which tcp_set_rcvlowat tunes.
    tcp: bool,
}

impl Default for BufferSizes {
    fn default() -> Self {
        BufferSizes { values: [AtomicUsize::new(BUFFER), AtomicUsize::new(BUFFER)], set: Default::default(), rcvlowat: AtomicUsize::new(1), tcp: false }
    }
}

impl BufferSizes {
    /// A TCP socket's: tcp_rmem[1] and tcp_wmem[1] until set.
    pub fn tcp() -> BufferSizes {
        BufferSizes { values: [AtomicUsize::new(TCP_RMEM_DEFAULT), AtomicUsize::new(TCP_WMEM_DEFAULT)], tcp: true, ..BufferSizes::default() }
    }

    /// What getsockopt reports.
    pub fn get(&self, way: Way) -> usize {
        self.values[way as usize].load(Ordering::Relaxed)
    }

    /// What bounds a queue: the size set, else BUFFER. (A TCP size not set
    /// reports what Linux's autotuning starts from or grows to, while its
    /// queue keeps the default buffer: bulk transfers go as fast as before.)
    pub fn limit(&self, way: Way) -> usize {
        if self.set[way as usize].load(Ordering::Relaxed) { self.get(way) } else { BUFFER }
    }

    /// setsockopt's value `asked`, compared unsigned as sock_setsockopt
    /// does: a negative one is the cap (net.core.wmem_max or rmem_max). The
    /// SO_*BUFFORCE options (`forced`) have no cap but INT_MAX / 2, and take
    /// a negative value as 0.
    pub fn set(&self, way: Way, asked: i32, forced: bool) {
        let min = match way {
            Way::Receive => MIN_RECEIVE_BUFFER,
            Way::Send => MIN_SEND_BUFFER,
        };
        let value = if forced { asked.max(0) as usize } else { (asked as u32 as usize).min(BUFFER) };
        let value = value.min(i32::MAX as usize / 2) * 2;
        self.values[way as usize].store(value.max(min), Ordering::Relaxed);
        self.set[way as usize].store(true, Ordering::Relaxed);
    }

    /// SO_RCVLOWAT.
    pub fn rcvlowat(&self) -> usize {
        self.rcvlowat.load(Ordering::Relaxed)
    }

    /// Sets SO_RCVLOWAT as sock_setsockopt does: a negative value is
    /// INT_MAX, 0 is 1. TCP's (tcp_set_rcvlowat) is at most half its receive
    /// buffer if set, else half of tcp_rmem[2], and a receive buffer not set
    /// grows to what a window of that many bytes takes (twice them, at the
    /// default scaling ratio).
    pub fn set_rcvlowat(&self, asked: i32) {
        let mut value = if asked < 0 { i32::MAX as usize } else { asked as usize };
        let locked = self.set[Way::Receive as usize].load(Ordering::Relaxed);
        if self.tcp {
            value = value.min(if locked { self.get(Way::Receive) } else { TCP_RMEM_MAX } / 2);
            if !locked {
                self.values[Way::Receive as usize].fetch_max(value * 2, Ordering::Relaxed);
            }
        }
        self.rcvlowat.store(value.max(1), Ordering::Relaxed);
    }

    /// A listener's sizes, for a connection it accepted (Linux clones them).
    pub fn inherit(&self, from: &BufferSizes) {
        for way in [Way::Receive, Way::Send] {
            self.values[way as usize].store(from.get(way), Ordering::Relaxed);
            self.set[way as usize].store(from.set[way as usize].load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.rcvlowat.store(from.rcvlowat(), Ordering::Relaxed);
    }

    /// A TCP connection established over loopback: a send buffer not set
    /// grows to tcp_wmem[2] at once, as Linux's tcp_sndbuf_expand makes it
    /// for loopback's 64 KiB segments. (The receive buffer grows as data is
    /// read, by timing; it keeps tcp_rmem[1] here.)
    pub fn established(&self) {
        if !self.set[Way::Send as usize].load(Ordering::Relaxed) {
            self.values[Way::Send as usize].store(TCP_WMEM_MAX, Ordering::Relaxed);
        }
    }
}

/// How long one blocking socket call may wait: until a deadline when the
/// socket has a timeout (Some(None): one too far to reach).
#[derive(Clone, Copy, Default)]
pub struct Limit(Option<Option<Instant>>);

impl Limit {
    /// Blocks until `ready`; a timeout is EAGAIN, and a signal under a timeout
    /// is EINTR rather than a restart, as Linux's sock_intr_errno.
    pub fn block(self, t: &Task, ready: impl FnMut() -> bool) -> SysResult<()> {
        self.block_with(|deadline| t.block_until(deadline, ready))
    }

    /// As `block`, waiting with `wait` (given the deadline), which returns as
    /// `Task::block_until` does.
    pub fn block_with(self, wait: impl FnOnce(Option<Instant>) -> SysResult<()>) -> SysResult<()> {
        match wait(self.0.flatten()) {
            Err(e) if e.code == ErrnoCode::ETIMEDOUT => rvisor_abi::error!(EAGAIN),
            Err(e) if e.code == ErrnoCode::ERESTARTSYS && self.0.is_some() => rvisor_abi::error!(EINTR),
            r => r,
        }
    }
}

/// A network namespace: its interfaces, and the ports and abstract names bound
/// in it. A sandbox's first one has what the runtime gave it (the host's
/// network, the sandbox stack's interface, or loopback alone); a new one
/// (unshare(CLONE_NEWNET)) has loopback alone.
pub struct NetNamespace {
    /// Its inode number in /proc/PID/ns.
    pub id: u64,
    /// The loopback interface's TCP and UDP ports.
    pub loopback: Loopback,
    /// AF_UNIX sockets bound to abstract names.
    pub abstract_sockets: unix::AbstractNames,
    /// Whether inet sockets are the host's (see `host`).
    pub host_network: bool,
    /// The interfaces besides `lo` (`--network=sandbox`).
    pub interfaces: Vec<interface::InterfaceInfo>,
    /// The network stack on the first of them.
    pub netstack: Option<Arc<netstack::Netstack>>,
    /// With the network stack: the listeners mirrored on the host namespace's
    /// loopback.
    pub loopback_mirror: Option<forward::LoopbackMirror>,
    /// net.ipv4.ip_unprivileged_port_start.
    pub unprivileged_port_start: u16,
    /// The user namespace whose capabilities rule it (CAP_NET_ADMIN, binding
    /// low ports).
    pub owner: Arc<crate::task::UserNamespace>,
}

impl NetNamespace {
    /// The sandbox's first namespace.
    pub fn first(host_network: bool, interfaces: Vec<interface::InterfaceInfo>, netstack: Option<Arc<netstack::Netstack>>, unprivileged_port_start: u16) -> Arc<NetNamespace> {
        Arc::new(NetNamespace {
            id: crate::task::namespaces::new_ns_id(),
            loopback: Loopback::default(),
            abstract_sockets: Default::default(),
            host_network,
            interfaces,
            loopback_mirror: netstack.as_ref().map(|_| Default::default()),
            netstack,
            unprivileged_port_start,
            owner: crate::task::UserNamespace::initial(),
        })
    }

    /// A new namespace, owned by user namespace `owner`: loopback alone.
    pub fn new(owner: Arc<crate::task::UserNamespace>) -> Arc<NetNamespace> {
        Arc::new(NetNamespace {
            id: crate::task::namespaces::new_ns_id(),
            loopback: Loopback::default(),
            abstract_sockets: Default::default(),
            host_network: false,
            interfaces: Vec::new(),
            netstack: None,
            loopback_mirror: None,
            unprivileged_port_start: 1024,
            owner,
        })
    }
}

/// A namespace's loopback interface: the ports bound on it.
#[derive(Default)]
pub struct Loopback {
    pub tcp: inet::Ports<tcp::TcpSocket>,
    /// TCP connections closed into TIME_WAIT (or FIN_WAIT2, waiting for it).
    pub tcp_time_wait: inet::TimeWaits,
    pub udp: inet::Ports<udp::UdpSocket>,
    /// Ping sockets' echo identifiers.
    pub ping: inet::Ports<udp::UdpSocket>,
}

#[derive(Clone, Copy, Debug)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Loopback {
    /// /proc/net/tcp, tcp6, udp or udp6: the bound sockets of one protocol
    /// and family, in Linux's layout (netstat, ss and psutil read it).
    pub fn proc_net(&self, protocol: Protocol, v6: bool) -> String {
        let rows = match protocol {
            Protocol::Tcp => self.tcp.sockets().iter().filter_map(|s| s.proc_net_row()).chain(self.tcp_time_wait.rows()).collect(),
            Protocol::Udp => self.udp.sockets().iter().map(|s| s.proc_net_row()).collect(),
        };
        inet::proc_net_table(rows, v6, matches!(protocol, Protocol::Udp))
    }
}

/// read(2) of a socket: a receive without flags (files that came with the
/// bytes are closed: read has nowhere to put them).
pub fn read(sock: &dyn Socket, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
    if offset.is_some() {
        return rvisor_abi::error!(ESPIPE);
    }
    let got = sock.receive(t, (bufs.total() as usize).min(BUFFER), 0)?;
    copy_out(t, bufs, &got.data)
}

/// write(2) of a socket: a send without flags of what `bufs` hold, copied in
/// up to `max` bytes.
pub fn write(sock: &dyn Socket, t: &Task, bufs: &UserBuffers, offset: Option<i64>, max: usize) -> SysResult<usize> {
    if offset.is_some() {
        return rvisor_abi::error!(ESPIPE);
    }
    let data = copy_in(t, bufs, (bufs.total() as usize).min(max))?;
    sock.send(t, &data, 0, Ancillary::default(), None)
}

/// sendfile and splice into a socket: a send of Sentry bytes.
pub fn write_from(sock: &dyn Socket, t: &Task, data: &[u8], offset: Option<u64>) -> SysResult<usize> {
    if offset.is_some() {
        return rvisor_abi::error!(ESPIPE);
    }
    sock.send(t, data, 0, Ancillary::default(), None)
}

/// The file operations every socket type has alike, inside its `impl
/// FileDescription`: read and write as a receive and a send (a write copies in
/// at most `$max` bytes), sendfile and splice into it as a send, fstat and the
/// /proc name from its `ino`, status flags from its `flags`.
macro_rules! socket_file_basics {
    ($max:expr) => {
        fn read(&self, t: &crate::task::Task, bufs: &crate::mm::UserBuffers, offset: Option<i64>) -> rvisor_abi::SysResult<usize> {
            crate::net::read(self, t, bufs, offset)
        }

        fn write(&self, t: &crate::task::Task, bufs: &crate::mm::UserBuffers, offset: Option<i64>) -> rvisor_abi::SysResult<usize> {
            crate::net::write(self, t, bufs, offset, $max)
        }

        fn write_from(&self, t: &crate::task::Task, data: &[u8], offset: Option<u64>) -> rvisor_abi::SysResult<usize> {
            crate::net::write_from(self, t, data, offset)
        }

        fn stat(&self) -> rvisor_abi::SysResult<rvisor_abi::structs::Stat> {
            Ok(self.ino.stat())
        }

        fn flags(&self) -> Option<&crate::vfs::StatusFlags> {
            Some(&self.flags)
        }

        fn proc_name(&self) -> Option<Vec<u8>> {
            Some(self.ino.proc_name())
        }

        fn as_socket(&self) -> Option<&dyn crate::net::Socket> {
            Some(self)
        }
    };
}
pub(crate) use socket_file_basics;

/// The most one write(2) or sendfile chunk copies in for a stream.
pub const STREAM_WRITE_MAX: usize = 1 << 24;

/// `how` of shutdown(2) as (reading, writing) shut.
pub fn shutdown_sides(how: i32) -> SysResult<(bool, bool)> {
    match how {
        0 => Ok((true, false)),
        1 => Ok((false, true)),
        2 => Ok((true, true)),
        _ => rvisor_abi::error!(EINVAL),
    }
}

/// An int option's value (EINVAL when shorter than an int).
pub fn int_option(value: &[u8]) -> SysResult<i32> {
    match value.get(..4) {
        Some(b) => Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        None => rvisor_abi::error!(EINVAL),
    }
}

/// A socket's inode number in sockfs, where every socket is a nameless inode.
pub struct SocketInode(u64);

impl Default for SocketInode {
    fn default() -> Self {
        SocketInode::new()
    }
}

impl SocketInode {
    pub fn new() -> SocketInode {
        static NEXT: AtomicU64 = AtomicU64::new(0x20000);
        SocketInode(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// fstat of a socket.
    pub fn stat(&self) -> Stat {
        const S_IFSOCK: u32 = 0o140000;
        const SOCKFS_DEV: u64 = 0x8;
        let mut st = Stat::zeroed();
        st.st_dev = SOCKFS_DEV;
        st.st_ino = self.0;
        st.st_nlink = 1;
        st.st_mode = S_IFSOCK | 0o777;
        st.st_blksize = 4096;
        st
    }

    pub fn number(&self) -> u64 {
        self.0
    }

    /// What /proc/PID/fd shows for it.
    pub fn proc_name(&self) -> Vec<u8> {
        format!("socket:[{}]", self.0).into_bytes()
    }
}
