//! TCP over loopback. A connection is a pair of connected stream sockets of
//! net/unix.rs: on loopback TCP delivers bytes reliably and in order, so no
//! segment, window or retransmission is needed, and the pair already has
//! what TCP's byte stream promises: buffers both ways, half-close
//! (shutdown), EPIPE and SIGPIPE, and a reset when an end closes with bytes
//! unread. What TCP adds is here: inet addresses and ports, listen and
//! accept, how a connection ends (a reset closes it both ways; a send to a
//! peer that closed is answered with a reset; SO_LINGER 0 closes with one;
//! a FIN waits unacknowledged behind bytes the peer's window has no room
//! for; the end that closes first holds its port in TIME_WAIT), and the
//! options.
//!
//! A connect completes at once (the listener's backlog takes it, as Linux's
//! handshake on loopback does before connect returns). A non-blocking one
//! still says EINPROGRESS and reports the completion to the next connect, as
//! Linux does.
//!
//! A connection to or from beyond the sandbox, through its interface
//! (`--network=sandbox`), is a smoltcp connection instead (`State::Remote`,
//! net/netstack/tcp.rs), and a listener on the wildcard or the interface's
//! address takes those too.
//!
//! Lock order: a socket's state, then the network stack's lock; otherwise
//! none nests. A socket's pending error and the port table are each taken alone.

use super::inet::{self, Endpoint, PortUser, Route};
use super::NetNamespace;
use super::netstack::tcp::{Sent, TcpConn, TcpListener, Tuning};
use super::unix::{connected_streams, Fins, UnixSocket};
use super::{shutdown_sides, Ancillary, BufferSizes, Limit, Received, Socket, SocketInode, Timeouts, Way, SIOCATMARK, MSG_DONTWAIT, MSG_NOSIGNAL, MSG_OOB, MSG_PEEK, MSG_WAITALL, SOCK_STREAM};
use crate::task::Task;
use crate::vfs::{FileDescription, OpenFlags, StatusFlags, WaitQueue, POLLERR, POLLHUP, POLLIN, POLLOUT};
use rvisor_abi::structs::TcpInfo;
use zerocopy::IntoBytes;
use rvisor_abi::{error, Errno, ErrnoCode, SysResult};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

const IPPROTO_TCP: i32 = 6;
/// Most connections a listener queues (Linux's somaxconn).
const SOMAXCONN: usize = 4096;

enum State {
    /// Made by socket(2), or disconnected, or reset.
    Closed,
    /// listen(2): connections from the sandbox wait here, as the sockets
    /// accept(2) returns; those through the interface in `remote`.
    Listening { backlog: VecDeque<Arc<TcpSocket>>, max: usize, remote: Option<TcpListener> },
    /// Its end of the connection, the peer's address as it names it, and
    /// the peer's socket (whose owner hears SIGURG for urgent data).
    Connected { stream: Arc<UnixSocket>, peer: SocketAddr, other: Weak<TcpSocket> },
    /// A connection through the interface (connecting, until its handshake ends).
    Remote { conn: Arc<TcpConn>, peer: SocketAddr },
}

/// An AF_INET or AF_INET6 stream socket.
pub struct TcpSocket {
    ep: Endpoint,
    ino: SocketInode,
    me: Weak<TcpSocket>,
    flags: StatusFlags,
    /// Woken when its readiness may change: a connection to accept, bytes,
    /// room (its stream end wakes it too).
    queue: Arc<WaitQueue>,
    state: Mutex<State>,
    timeouts: Arc<Timeouts>,
    /// SO_SNDBUF and SO_RCVBUF, which its stream end's queues follow.
    buffers: Arc<BufferSizes>,
    /// Its pending error (SO_ERROR), beyond the stream's ECONNRESET: EPIPE
    /// after the reset that answers a send to a closed peer, ECONNREFUSED
    /// after a non-blocking connect to nobody.
    error: Mutex<Option<ErrnoCode>>,
    /// The connection ended in a reset: it is hung up both ways.
    reset: AtomicBool,
    /// A non-blocking connect said EINPROGRESS: the next connect reports
    /// how it went.
    connect_unreported: AtomicBool,
    /// Made by accept(2): it holds the listener's port, in TIME_WAIT too.
    accepted: bool,
    /// It sent its FIN before its peer's came: once both are in, it is in
    /// TIME_WAIT (its peer went through LAST_ACK to CLOSE).
    fin_first: AtomicBool,
}

impl PortUser for TcpSocket {
    fn listening(&self) -> bool {
        matches!(*self.state(), State::Listening { .. })
    }
}

impl TcpSocket {
    /// socket(2) by a task whose fsuid is `uid`.
    pub fn new(net: &Arc<NetNamespace>, domain: i32, flags: u32, uid: u32) -> Arc<TcpSocket> {
        TcpSocket::make(net, domain, flags, false, uid)
    }

    fn make(net: &Arc<NetNamespace>, domain: i32, flags: u32, accepted: bool, uid: u32) -> Arc<TcpSocket> {
        Arc::new_cyclic(|me| TcpSocket {
            ep: Endpoint::new(net, domain, uid),
            ino: SocketInode::new(),
            me: me.clone(),
            flags: StatusFlags::new(flags | OpenFlags::RDWR),
            queue: Arc::default(),
            state: Mutex::new(State::Closed),
            timeouts: Arc::default(),
            buffers: Arc::new(BufferSizes::tcp()),
            error: Mutex::default(),
            reset: AtomicBool::new(false),
            connect_unreported: AtomicBool::new(false),
            accepted,
            fin_first: AtomicBool::new(false),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error(&self) -> MutexGuard<'_, Option<ErrnoCode>> {
        self.error.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stream(&self) -> Option<Arc<UnixSocket>> {
        match &*self.state() {
            State::Connected { stream, .. } => Some(stream.clone()),
            _ => None,
        }
    }

    fn oob_inline(&self) -> bool {
        self.ep.options.on(inet::SOL_SOCKET, SO_OOBINLINE)
    }

    fn nonblocking(&self) -> bool {
        self.flags.get() & OpenFlags::NONBLOCK != 0
    }

    /// MSG_DONTWAIT when the file is non-blocking: its stream end has no
    /// status flags of its own.
    fn wait_flag(&self) -> u32 {
        if self.nonblocking() { MSG_DONTWAIT } else { 0 }
    }

    fn autobind(&self, t: &Task) -> SysResult<()> {
        self.ep.autobind(t, &self.ep.net.loopback.tcp, &self.me)
    }

    /// Notes a reset the stream reported: the connection is over both ways.
    fn saw(&self, r: SysResult<Received>) -> SysResult<Received> {
        if r.as_ref().is_err_and(|e| e.code == ErrnoCode::ECONNRESET) {
            self.reset.store(true, Ordering::Relaxed);
        }
        r
    }

    /// A connection to the canonical address `dest`: the listener's new socket
    /// joins this one, and waits in its backlog for accept(2).
    fn connect_to(&self, t: &Task, dest: SocketAddr) -> SysResult<()> {
        let listener = self.ep.net.loopback.tcp.lookup(dest, PortUser::listening).ok_or_else(|| rvisor_abi::errno!(ECONNREFUSED))?;
        // A full backlog: a blocking connect waits for accept(2) to make room,
        // as Linux's retried handshake does (EINPROGRESS if SO_SNDTIMEO ends
        // the wait); a non-blocking one is taken, up to SOMAXCONN, since it
        // only promised to complete later.
        if !self.nonblocking() {
            let limit = self.timeouts.limit(Way::Send);
            listener.queue.register(&t.thread);
            let r = limit.block(t, || match &*listener.state() {
                State::Listening { backlog, max, .. } => backlog.len() < *max,
                _ => true,
            });
            listener.queue.unregister(&t.thread);
            r.map_err(|e| if e.code == ErrnoCode::EAGAIN { rvisor_abi::errno!(EINPROGRESS) } else { e })?;
        }
        self.autobind(t)?;
        self.join_listener(&self.ep.net.loopback, &listener, dest)
    }

    /// The rest of a connect to `listener` on the canonical `dest`, once
    /// this socket has its port: a new socket joins this one and waits in
    /// the listener's backlog (ECONNREFUSED if it stopped listening, or is
    /// past SOMAXCONN).
    fn join_listener(&self, loopback: &super::Loopback, listener: &Arc<TcpSocket>, dest: SocketAddr) -> SysResult<()> {
        let src = self.ep.source_for(dest);
        let domain = listener.ep.domain;
        let accepted = TcpSocket::make(&listener.ep.net, domain, 0, true, listener.ep.uid);
        accepted.ep.set_local(dest);
        accepted.ep.options.inherit(&listener.ep.options);
        for way in [Way::Receive, Way::Send] {
            accepted.timeouts.set(way, listener.timeouts.get(way));
        }
        accepted.buffers.inherit(&listener.buffers);
        accepted.buffers.established();
        loopback.tcp.bind_accepted(dest, accepted.ep.reuse_addr(), &accepted, accepted.ep.time_wait.clone());
        let [mine, theirs] = connected_streams(
            [self.queue.clone(), accepted.queue.clone()],
            [self.timeouts.clone(), accepted.timeouts.clone()],
            [self.buffers.clone(), accepted.buffers.clone()],
        );
        mine.set_oob_inline(self.oob_inline());
        theirs.set_oob_inline(accepted.oob_inline());
        *accepted.state() = State::Connected { stream: theirs, peer: inet::in_domain(domain, src), other: self.me.clone() };
        let other = Arc::downgrade(&accepted);
        {
            let mut st = listener.state();
            let State::Listening { backlog, .. } = &mut *st else { return error!(ECONNREFUSED) };
            if backlog.len() >= SOMAXCONN {
                return error!(ECONNREFUSED);
            }
            backlog.push_back(accepted);
        }
        listener.queue.notify_events(POLLIN);
        self.ep.set_local(src);
        self.buffers.established();
        *self.state() = State::Connected { stream: mine, peer: inet::in_domain(self.ep.domain, dest), other };
        Ok(())
    }

    /// recv(MSG_OOB): the urgent byte of a connection on loopback. A
    /// listener is ENOTCONN; through the interface there is none (smoltcp
    /// passes urgent bytes as plain data), so EINVAL, as without a connection.
    fn receive_urgent(&self, max: usize, flags: u32) -> SysResult<Received> {
        let stream = match &*self.state() {
            State::Connected { stream, .. } => stream.clone(),
            State::Listening { .. } => return error!(ENOTCONN),
            State::Remote { .. } | State::Closed => return error!(EINVAL),
        };
        stream.receive_urgent(max, flags & MSG_PEEK != 0)
    }

    /// A send(MSG_OOB) marked urgent data: SIGURG to the owner of the
    /// socket at the other end.
    fn urgent_sent(&self) {
        let other = match &*self.state() {
            State::Connected { other, .. } => other.upgrade(),
            _ => None,
        };
        if let Some(other) = other {
            crate::fs::fasync::send_sigurg(&(other as Arc<dyn FileDescription>));
        }
    }

    /// The reset with which a closed peer answers a send: the connection is
    /// over, and the next call hears EPIPE (Linux's reset in CLOSE_WAIT).
    fn answered_by_reset(&self, stream: &UnixSocket) {
        self.reset.store(true, Ordering::Relaxed);
        *self.error() = Some(ErrnoCode::EPIPE);
        // The closed peer's remains go with the reset.
        stream.abort();
        self.queue.notify_events(POLLERR | POLLHUP);
    }
}

/// A connection from outside the sandbox: a host connection to a forwarded
/// port (`rvisor do -p`, net/forward.rs) is relayed by a host thread through
/// one of these, a client socket on loopback as a program of the sandbox
/// would have. No task makes these calls, so none blocks: each does what it
/// can now or says EAGAIN, and the relay waits on the socket's wait queue.
impl TcpSocket {
    /// Connects a new socket of the family of `dest` (a canonical loopback
    /// address) to the sandbox's listener there, from an ephemeral port.
    /// ECONNREFUSED when nothing listens (or its backlog is past SOMAXCONN).
    pub fn connect_from_host(net: &Arc<NetNamespace>, dest: SocketAddr) -> SysResult<Arc<TcpSocket>> {
        let listener = net.loopback.tcp.lookup(dest, PortUser::listening).ok_or_else(|| rvisor_abi::errno!(ECONNREFUSED))?;
        let domain = if dest.is_ipv4() { inet::AF_INET } else { inet::AF_INET6 };
        let s = TcpSocket::new(net, domain, 0, 0);
        s.ep.bind_ephemeral(&net.loopback.tcp, &s.me)?;
        s.join_listener(&net.loopback, &listener, dest)?;
        Ok(s)
    }

    /// Queues what fits of `data` for the sandbox's end (EAGAIN when
    /// nothing does). ECONNRESET once the connection was reset, or when the
    /// sandbox's end is closed (a send to a closed peer is answered with a
    /// reset); EPIPE once it shut its reading side.
    pub fn send_from_host(&self, data: &[u8]) -> SysResult<usize> {
        let Some(stream) = self.stream().filter(|_| !self.reset.load(Ordering::Relaxed)) else { return error!(ECONNRESET) };
        if stream.take_reset() {
            self.reset.store(true, Ordering::Relaxed);
            return error!(ECONNRESET);
        }
        if stream.peer_closed() && !data.is_empty() {
            self.answered_by_reset(&stream);
            return error!(ECONNRESET);
        }
        stream.try_send_stream(data)
    }

    /// At most `max` bytes the sandbox's end sent (empty: it shut down its
    /// sending side or closed), EAGAIN when none are queued, ECONNRESET when
    /// it reset the connection.
    pub fn receive_to_host(&self, max: usize) -> SysResult<Vec<u8>> {
        let Some(stream) = self.stream().filter(|_| !self.reset.load(Ordering::Relaxed)) else { return error!(ECONNRESET) };
        let r = stream.try_receive_stream(max);
        if r.as_ref().is_err_and(|e| e.code == ErrnoCode::ECONNRESET) {
            self.reset.store(true, Ordering::Relaxed);
        }
        r
    }

    /// Ends the connection with a reset: the sandbox's end reads
    /// ECONNRESET (the host's end reset, or went away).
    pub fn abort(&self) {
        let old = std::mem::replace(&mut *self.state(), State::Closed);
        if let State::Connected { stream, .. } = old {
            stream.abort();
        }
        self.reset.store(true, Ordering::Relaxed);
    }
}

impl TcpSocket {
    fn remote(&self) -> Option<Arc<TcpConn>> {
        match &*self.state() {
            State::Remote { conn, .. } => Some(conn.clone()),
            _ => None,
        }
    }

    /// What its options ask of a connection through the interface.
    fn tuning(&self) -> Tuning {
        const SO_KEEPALIVE: i32 = 9;
        const TCP_KEEPIDLE: i32 = 4;
        let idle = self.ep.options.get(self.ep.domain, SOCK_STREAM, inet::IPPROTO_TCP, TCP_KEEPIDLE).unwrap_or(7200);
        Tuning {
            nodelay: self.ep.options.on(inet::IPPROTO_TCP, TCP_NODELAY),
            keepalive: self.ep.options.on(inet::SOL_SOCKET, SO_KEEPALIVE).then(|| std::time::Duration::from_secs(u64::try_from(idle).unwrap_or(7200).max(1))),
        }
    }

    /// How a connection through the interface's handshake stands, if it has one.
    fn remote_handshake(&self) -> Option<SysResult<bool>> {
        self.remote().map(|c| c.handshake())
    }

    /// connect(2) through the interface: the socket's port, then the
    /// handshake, waited for unless the socket is non-blocking (EINPROGRESS:
    /// poll tells when it ends, and SO_ERROR or the next connect how).
    fn connect_remote(&self, t: &Task, dest: SocketAddr) -> SysResult<()> {
        let Some(net) = &self.ep.net.netstack else { return error!(ENETUNREACH) };
        self.autobind(t)?;
        let conn = Arc::new(TcpConn::connect(net, &self.queue, self.ep.local(), dest, self.tuning())?);
        *self.state() = State::Remote { conn: conn.clone(), peer: inet::in_domain(self.ep.domain, dest) };
        if self.nonblocking() {
            self.connect_unreported.store(true, Ordering::Relaxed);
            return error!(EINPROGRESS);
        }
        let limit = self.timeouts.limit(Way::Send);
        let r = self.wait(t, limit, || conn.handshake() != Ok(false));
        match r.and_then(|()| conn.handshake()) {
            Ok(_) => {
                if let (Some(local), _) = conn.endpoints() {
                    self.ep.set_local(local);
                }
                Ok(())
            }
            Err(e) if e.code == ErrnoCode::EAGAIN => error!(EINPROGRESS),
            Err(e) if e.code == ErrnoCode::ERESTARTSYS || e.code == ErrnoCode::EINTR => {
                // The handshake goes on; a later connect reports it.
                self.connect_unreported.store(true, Ordering::Relaxed);
                Err(e)
            }
            Err(e) => {
                *self.state() = State::Closed;
                Err(e)
            }
        }
    }

    /// A socket for a connection a listener took through the interface.
    fn accepted_remote(&self, conn: TcpConn) -> super::Accepted {
        let accepted = TcpSocket::make(&self.ep.net, self.ep.domain, 0, true, self.ep.uid);
        let (local, peer) = conn.endpoints();
        let local = local.unwrap_or_else(|| self.ep.local());
        let peer = inet::in_domain(self.ep.domain, peer.unwrap_or_else(|| inet::unbound(self.ep.domain)));
        conn.watch(&accepted.queue);
        accepted.ep.set_local(local);
        accepted.ep.options.inherit(&self.ep.options);
        for way in [Way::Receive, Way::Send] {
            accepted.timeouts.set(way, self.timeouts.get(way));
        }
        conn.tune(accepted.tuning());
        self.ep.net.loopback.tcp.bind_accepted(local, accepted.ep.reuse_addr(), &accepted, accepted.ep.time_wait.clone());
        *accepted.state() = State::Remote { conn: Arc::new(conn), peer };
        let name = inet::sockaddr(peer);
        (accepted, Some(name))
    }

    /// A send through the interface: blocks until every byte is queued,
    /// unless non-blocking (then what fit, or EAGAIN).
    fn send_remote(&self, t: &Task, conn: &TcpConn, data: &[u8], flags: u32) -> SysResult<usize> {
        let limit = self.timeouts.limit(Way::Send);
        let mut done = 0;
        loop {
            match conn.send(&data[done..]) {
                Sent::Queued(n) => done += n,
                Sent::Closed if done > 0 => return Ok(done),
                Sent::Closed => {
                    if conn.was_reset() && !self.reset.swap(true, Ordering::Relaxed) {
                        return error!(ECONNRESET);
                    }
                    if flags & MSG_NOSIGNAL == 0 {
                        crate::fs::pipe::sigpipe(t);
                    }
                    return error!(EPIPE);
                }
            }
            if done == data.len() {
                return Ok(done);
            }
            if (flags | self.wait_flag()) & MSG_DONTWAIT != 0 {
                return if done > 0 { Ok(done) } else { error!(EAGAIN) };
            }
            if let Err(e) = self.wait(t, limit, || conn.readiness(1) & (POLLOUT | POLLHUP) != 0) {
                return if done > 0 { Ok(done) } else { Err(e) };
            }
        }
    }

    /// A receive through the interface: a blocking one waits for
    /// SO_RCVLOWAT's bytes, or with MSG_WAITALL for `max`, unless the stream
    /// ends or an error, a signal or the timeout comes first (then what came
    /// is returned), as the loopback one.
    fn receive_remote(&self, t: &Task, conn: &TcpConn, max: usize, flags: u32) -> SysResult<Received> {
        let limit = self.timeouts.limit(Way::Receive);
        let flags = flags | self.wait_flag();
        let peek = flags & MSG_PEEK != 0;
        let target = if flags & MSG_WAITALL != 0 { max } else { self.buffers.rcvlowat().min(max) };
        let got = |data: Vec<u8>| Received { full: data.len(), data, ..Received::default() };
        let mut data = Vec::new();
        loop {
            if conn.was_reset() {
                if !data.is_empty() && !peek {
                    return Ok(got(data));
                }
                if !self.reset.swap(true, Ordering::Relaxed) {
                    return error!(ECONNRESET);
                }
            }
            if peek {
                // What it saw is still there: it looks again.
                data.clear();
            }
            if let Some(more) = conn.receive(max - data.len(), peek) {
                let end = more.is_empty();
                data.extend_from_slice(&more);
                if end || data.len() >= target {
                    return Ok(got(data));
                }
            }
            if flags & MSG_DONTWAIT != 0 {
                return if data.is_empty() { error!(EAGAIN) } else { Ok(got(data)) };
            }
            let lowat = self.buffers.rcvlowat();
            if let Err(e) = self.wait(t, limit, || conn.readiness(lowat) & (POLLIN | POLLHUP) != 0) {
                return if data.is_empty() { Err(e) } else { Ok(got(data)) };
            }
        }
    }
}

/// Linux's TCP state numbers, as /proc/net/tcp and TCP_INFO show them.
const ESTABLISHED: u8 = 1;
const FIN_WAIT1: u8 = 4;
const FIN_WAIT2: u8 = 5;
const TIME_WAIT: u8 = 6;
const CLOSE: u8 = 7;
const CLOSE_WAIT: u8 = 8;
const LAST_ACK: u8 = 9;
const LISTEN: u8 = 10;
const CLOSING: u8 = 11;
const TCP_INFO: i32 = 11;
const TCP_NODELAY: i32 = 1;
const SO_OOBINLINE: i32 = 10;
/// The maximum segment on loopback (its MTU of 65536 less the headers).
const LOOPBACK_MSS: u32 = 65483;

impl TcpSocket {
    /// Its state in Linux's numbers, its peer, the bytes it has to read (its
    /// peer's FIN counts one until read, as Linux's rcv_nxt counts it) and
    /// those sent but not acknowledged (a listener: connections waiting, and
    /// its backlog). Loopback acknowledges what its peer's window took.
    fn linux_state(&self) -> (u8, Option<SocketAddr>, usize, usize) {
        match &*self.state() {
            State::Connected { stream, peer, .. } => {
                let fins = stream.fins().filter(|_| !self.reset.load(Ordering::Relaxed) && !stream.reset_pending());
                let state = fins.map_or(CLOSE, |f| fin_state(f, self.fin_first.load(Ordering::Relaxed)));
                (state, Some(*peer), stream.arrived() + usize::from(fins.is_some_and(|f| f.unread)), stream.unacked())
            }
            // `max` is one more than listen(2)'s backlog.
            State::Listening { backlog, max, remote } => (LISTEN, None, backlog.len() + remote.as_ref().map_or(0, TcpListener::waiting), max.saturating_sub(1)),
            State::Remote { conn, peer } => {
                let (queued, sent) = conn.queued();
                (conn.linux_state(), Some(*peer), queued, sent)
            }
            State::Closed => (CLOSE, None, 0, 0),
        }
    }

    /// Its row in /proc/net/tcp and sock_diag. A loopback connection over
    /// both ways has none: Linux unhashed its socket, and shows instead the
    /// TIME_WAIT that took its place if it sent the first FIN.
    pub fn proc_net_row(&self) -> Option<inet::ProcNetRow> {
        let (state, remote, queued, sent) = self.linux_state();
        if let (CLOSE, Some(remote), true) = (state, remote, matches!(*self.state(), State::Connected { .. })) {
            let first = self.fin_first.load(Ordering::Relaxed) && !self.reset.load(Ordering::Relaxed);
            return first.then(|| inet::ProcNetRow { domain: self.ep.domain, local: self.ep.local(), remote: Some(remote), state: TIME_WAIT, queued: 0, sent: 0, uid: 0, inode: 0, v6only: false, drops: None });
        }
        Some(inet::ProcNetRow { domain: self.ep.domain, local: self.ep.local(), remote, state, queued, sent, uid: self.ep.uid, inode: self.ino.number(), v6only: self.ep.v6only(), drops: None })
    }

    /// TCP_INFO: the state, and what a loopback connection that loses nothing
    /// would show (Linux's initial RTO and window, loopback's MSS and MTU).
    pub fn tcp_info(&self) -> TcpInfo {
        let mut info = TcpInfo::zeroed();
        info.state = self.linux_state().0;
        if ![ESTABLISHED, CLOSE_WAIT, FIN_WAIT1, FIN_WAIT2, CLOSING, LAST_ACK].contains(&info.state) {
            return info;
        }
        info.rto = 200_000;
        info.ato = 40_000;
        info.snd_mss = LOOPBACK_MSS;
        info.rcv_mss = LOOPBACK_MSS;
        info.pmtu = 65535;
        info.rcv_ssthresh = LOOPBACK_MSS;
        info.rtt = 20;
        info.rttvar = 10;
        info.snd_ssthresh = i32::MAX as u32;
        info.snd_cwnd = 10;
        info.advmss = LOOPBACK_MSS;
        info.reordering = 3;
        info.rcv_space = LOOPBACK_MSS;
        info
    }
}

/// The state of a loopback connection's end that was not reset, from its
/// FINs (`first`: it sent its FIN before its peer's came). Its FIN waits
/// unacknowledged while what it sent before waits for its peer's window:
/// FIN_WAIT1, or once its peer's FIN came CLOSING if it went first, LAST_ACK
/// if it answered. With both FINs acknowledged it is CLOSE (the end that went
/// first leaves a TIME_WAIT). A FIN the window took counts acknowledged at
/// once, where Linux's FIN_WAIT1 lasts until its peer's delayed ACK.
fn fin_state(f: Fins, first: bool) -> u8 {
    match (f.sent, f.came, f.acked) {
        (false, false, _) => ESTABLISHED,
        (false, true, _) => CLOSE_WAIT,
        (true, false, false) => FIN_WAIT1,
        (true, false, true) => FIN_WAIT2,
        (true, true, false) if first => CLOSING,
        (true, true, false) => LAST_ACK,
        (true, true, true) => CLOSE,
    }
}

/// The row of a loopback connection's end after its socket closed (Linux's
/// orphan, then its timewait socket), from its FINs: its state, the bytes it
/// has to read, those not acknowledged. None once it is gone: reset, or its
/// FIN acknowledged after its peer's (LAST_ACK ends in CLOSE).
fn closed_row(f: Fins, first: bool) -> Option<(u8, usize, usize)> {
    match fin_state(f, first) {
        _ if f.reset => None,
        CLOSE if first => Some((TIME_WAIT, 0, 0)),
        FIN_WAIT2 => Some((FIN_WAIT2, 0, 0)),
        state @ (FIN_WAIT1 | CLOSING | LAST_ACK) => Some((state, usize::from(f.unread), f.unacked)),
        _ => None,
    }
}

impl Socket for TcpSocket {
    fn domain(&self) -> i32 {
        self.ep.domain
    }

    fn kind(&self) -> i32 {
        SOCK_STREAM
    }

    fn protocol(&self) -> i32 {
        IPPROTO_TCP
    }

    fn bind(&self, t: &Task, addr: &[u8]) -> SysResult<()> {
        let addr = inet::parse(self.ep.domain, addr)?;
        self.ep.bind(t, addr, &self.ep.net.loopback.tcp, &self.me)
    }

    /// listen(2); an unbound socket gets an ephemeral port first. EADDRINUSE
    /// when a socket sharing its port (SO_REUSEADDR) listens already.
    fn listen(&self, t: &Task, backlog: i32) -> SysResult<()> {
        if matches!(*self.state(), State::Connected { .. }) {
            return error!(EINVAL);
        }
        self.autobind(t)?;
        self.ep.net.loopback.tcp.check_listen(self.ep.local().port(), self)?;
        // Linux queues one more than the backlog asks.
        let max = usize::try_from(backlog).unwrap_or(0).min(SOMAXCONN) + 1;
        let mut st = self.state();
        match &mut *st {
            State::Connected { .. } | State::Remote { .. } => return error!(EINVAL),
            State::Listening { max: m, remote, .. } => {
                *m = max;
                if let Some(l) = remote {
                    l.resize(max)?;
                }
            }
            State::Closed => {
                // Beyond loopback, the interface's connections come in too.
                let local = self.ep.local();
                let remote = match &self.ep.net.netstack {
                    Some(net) if local.ip().is_unspecified() || net.is_own(local.ip()) => Some(TcpListener::new(net, &self.queue, local, max)?),
                    _ => None,
                };
                *st = State::Listening { backlog: VecDeque::new(), max, remote };
                drop(st);
                if let (Some(mirror), true) = (&self.ep.net.loopback_mirror, local.ip().is_unspecified() || local.ip().is_loopback()) {
                    mirror.listening(&t.kernel, local.port());
                }
            }
        }
        Ok(())
    }

    /// connect(2); AF_UNSPEC ends a connection (with a reset, as Linux's
    /// tcp_disconnect). A listening or connected socket is EISCONN, except
    /// that a non-blocking connect's completion is reported once.
    fn connect(&self, t: &Task, addr: &[u8]) -> SysResult<()> {
        if inet::is_unspec(addr) {
            match std::mem::replace(&mut *self.state(), State::Closed) {
                State::Connected { stream, .. } => stream.abort(),
                State::Remote { conn, .. } => conn.abort(),
                _ => {}
            }
            return Ok(());
        }
        let route = inet::route(&self.ep.net, inet::parse(self.ep.domain, addr)?, self.ep.v6only())?;
        if let Some(r) = self.remote_handshake() {
            return match r {
                Ok(false) => error!(EALREADY),
                Ok(true) if self.connect_unreported.swap(false, Ordering::Relaxed) => Ok(()),
                Ok(true) => error!(EISCONN),
                Err(e) => {
                    self.connect_unreported.store(false, Ordering::Relaxed);
                    *self.state() = State::Closed;
                    Err(e)
                }
            };
        }
        if !matches!(*self.state(), State::Closed) {
            return if self.connect_unreported.swap(false, Ordering::Relaxed) { Ok(()) } else { error!(EISCONN) };
        }
        if let Some(e) = self.connect_unreported.swap(false, Ordering::Relaxed).then(|| self.error().take()).flatten() {
            return Err(Errno::new(e));
        }
        let dest = match route {
            Route::Local(dest) => dest,
            Route::Remote(dest) => return self.connect_remote(t, dest),
        };
        let r = self.connect_to(t, dest);
        if !self.nonblocking() {
            return r;
        }
        if let Err(e) = r {
            *self.error() = Some(e.code);
            self.reset.store(true, Ordering::Relaxed);
        }
        self.connect_unreported.store(true, Ordering::Relaxed);
        error!(EINPROGRESS)
    }

    fn accept(&self, t: &Task) -> SysResult<super::Accepted> {
        let limit = self.timeouts.limit(Way::Receive);
        loop {
            {
                let mut st = self.state();
                let State::Listening { backlog, remote, .. } = &mut *st else { return error!(EINVAL) };
                if let Some(conn) = remote.as_mut().map(TcpListener::accept).transpose()?.flatten() {
                    drop(st);
                    return Ok(self.accepted_remote(conn));
                }
                if let Some(conn) = backlog.pop_front() {
                    drop(st);
                    // A connector may be waiting for room.
                    self.queue.notify_events(POLLOUT);
                    let peer = match &*conn.state() {
                        State::Connected { peer, .. } => Some(inet::sockaddr(*peer)),
                        _ => None,
                    };
                    return Ok((conn, peer));
                }
            }
            if self.nonblocking() {
                return error!(EAGAIN);
            }
            self.wait(t, limit, || match &*self.state() {
                State::Listening { backlog, remote, .. } => !backlog.is_empty() || remote.as_ref().is_some_and(TcpListener::ready),
                _ => true,
            })?;
        }
    }

    /// A send on a connection; an address given is ignored, as Linux does.
    /// Without a connection, or once it is over, it is EPIPE (and SIGPIPE),
    /// unless an error is pending: that comes first, once.
    fn send(&self, t: &Task, data: &[u8], flags: u32, anc: Ancillary, _to: Option<&[u8]>) -> SysResult<usize> {
        if !anc.is_empty() {
            return error!(EINVAL);
        }
        if let Some(conn) = self.remote() {
            // smoltcp sends no urgent pointer.
            if flags & MSG_OOB != 0 {
                return error!(EOPNOTSUPP);
            }
            return self.send_remote(t, &conn, data, flags);
        }
        let pending = self.error().take().or_else(|| self.stream().filter(|s| s.take_reset()).map(|_| ErrnoCode::ECONNRESET));
        let e = match (pending, self.stream()) {
            (Some(e), _) => e,
            (None, Some(stream)) if !self.reset.load(Ordering::Relaxed) => {
                if stream.peer_closed() && !data.is_empty() {
                    self.answered_by_reset(&stream);
                    return Ok(data.len());
                }
                let sent = stream.send_message(t, data, flags | self.wait_flag(), Ancillary::default(), None)?;
                if flags & MSG_OOB != 0 && sent > 0 {
                    self.urgent_sent();
                }
                return Ok(sent);
            }
            _ => ErrnoCode::EPIPE,
        };
        if e == ErrnoCode::ECONNRESET {
            self.reset.store(true, Ordering::Relaxed);
        }
        if e == ErrnoCode::EPIPE && flags & MSG_NOSIGNAL == 0 {
            crate::fs::pipe::sigpipe(t);
        }
        Err(Errno::new(e))
    }

    /// TCP names no sender: recvfrom's address comes back empty. A blocking
    /// receive waits for SO_RCVLOWAT's bytes, or with MSG_WAITALL for `max`,
    /// unless EOF, an error, a signal or an urgent mark comes first (then
    /// what came is returned): the stream end's `receive_message`.
    fn receive(&self, t: &Task, max: usize, flags: u32) -> SysResult<Received> {
        if flags & MSG_OOB != 0 {
            return self.receive_urgent(max, flags);
        }
        if let Some(conn) = self.remote() {
            return self.receive_remote(t, &conn, max, flags);
        }
        let stream = self.stream().ok_or_else(|| rvisor_abi::errno!(ENOTCONN))?;
        let mut got = self.saw(stream.receive_message(t, max, flags | self.wait_flag()))?;
        got.from = None;
        Ok(got)
    }

    /// Its error queue would hold only timestamps and zero-copy notices,
    /// which it never queues: empty (Linux's inet_recv_error).
    fn receive_error(&self, _t: &Task, _max: usize, _flags: u32) -> SysResult<Received> {
        error!(EAGAIN)
    }

    /// shutdown(2) of a connection; SHUT_RD on a listener stops it (waiting
    /// accepts fail); an unconnected socket is ENOTCONN.
    fn shutdown(&self, how: i32) -> SysResult<()> {
        let (rd, _) = shutdown_sides(how)?;
        let mut st = self.state();
        match &*st {
            State::Connected { stream, .. } => {
                let stream = stream.clone();
                drop(st);
                if how != 0 && stream.fins().is_some_and(|f| !f.sent && !f.came) {
                    self.fin_first.store(true, Ordering::Relaxed);
                }
                stream.shutdown(how)
            }
            State::Listening { .. } if rd => {
                let old = std::mem::replace(&mut *st, State::Closed);
                drop(st);
                drop(old);
                self.queue.notify();
                Ok(())
            }
            State::Listening { .. } => Ok(()),
            State::Remote { conn, .. } => {
                // Reading shut stays readable (Linux then reads what came and 0).
                if how != 0 {
                    conn.shut_write();
                }
                Ok(())
            }
            State::Closed => error!(ENOTCONN),
        }
    }

    /// A connection through the interface names the address it sends from,
    /// once the stack chose it.
    fn name(&self) -> Vec<u8> {
        match self.remote().and_then(|c| c.endpoints().0) {
            Some(local) => inet::sockaddr(inet::in_domain(self.ep.domain, local)),
            None => inet::sockaddr(self.ep.local()),
        }
    }

    /// A connection that ended in a reset, reported or not, is closed
    /// (Linux's TCP_CLOSE): ENOTCONN, though bytes that came before it can
    /// still be read.
    fn peer_name(&self) -> SysResult<Vec<u8>> {
        match &*self.state() {
            State::Connected { peer, stream, .. } if !self.reset.load(Ordering::Relaxed) && !stream.reset_pending() => Ok(inet::sockaddr(*peer)),
            State::Remote { conn, peer } if conn.handshake() == Ok(true) => Ok(inet::sockaddr(*peer)),
            _ => error!(ENOTCONN),
        }
    }

    fn listening(&self) -> bool {
        PortUser::listening(self)
    }

    fn takes_oob(&self, _receiving: bool) -> bool {
        true
    }

    fn take_error(&self) -> Option<ErrnoCode> {
        if let Some(conn) = self.remote() {
            if let Err(e) = conn.handshake() {
                self.connect_unreported.store(false, Ordering::Relaxed);
                *self.state() = State::Closed;
                return Some(e.code);
            }
            return (conn.was_reset() && !self.reset.swap(true, Ordering::Relaxed)).then_some(ErrnoCode::ECONNRESET);
        }
        let e = self.error().take().or_else(|| self.stream().and_then(|s| Socket::take_error(&*s)));
        if e == Some(ErrnoCode::ECONNRESET) {
            self.reset.store(true, Ordering::Relaxed);
        }
        e
    }

    fn get_option(&self, _t: &Task, level: i32, name: i32) -> SysResult<Vec<u8>> {
        if (level, name) == (IPPROTO_TCP, TCP_INFO) {
            return Ok(self.tcp_info().as_bytes().to_vec());
        }
        self.ep.get_option(SOCK_STREAM, level, name)
    }

    fn set_option(&self, _t: &Task, level: i32, name: i32, value: &[u8]) -> SysResult<()> {
        self.ep.set_option(SOCK_STREAM, level, name, value)?;
        if (level, name) == (inet::SOL_SOCKET, SO_OOBINLINE) {
            if let Some(stream) = self.stream() {
                stream.set_oob_inline(self.oob_inline());
            }
        }
        if let Some(conn) = self.remote() {
            conn.tune(self.tuning());
        }
        Ok(())
    }

    fn timeouts(&self) -> Option<&Timeouts> {
        Some(&self.timeouts)
    }

    fn buffer_sizes(&self) -> Option<&BufferSizes> {
        Some(&self.buffers)
    }
}

impl TcpSocket {
    /// Blocks until `ready`; a socket of the interface waits for its frames
    /// itself (`Netstack::block`).
    fn wait(&self, t: &Task, limit: Limit, ready: impl FnMut() -> bool) -> SysResult<()> {
        let remote = matches!(&*self.state(), State::Remote { .. } | State::Listening { remote: Some(_), .. });
        if let Some(net) = self.ep.net.netstack.as_ref().filter(|_| remote) {
            return limit.block_with(|deadline| net.block(t, &self.queue, deadline, ready));
        }
        self.queue.register(&t.thread);
        let r = limit.block(t, ready);
        self.queue.unregister(&t.thread);
        r
    }
}

impl Drop for TcpSocket {
    /// Connections a closed listener had not accepted are reset. A connection
    /// closed with SO_LINGER 0 is reset; one closed before its peer closed
    /// holds its port in TIME_WAIT if it had one of its own (bound, or
    /// accepted on a listener's). A closed connection keeps a row while its
    /// FIN waits behind what it sent, and after it until TIME_WAIT ends.
    fn drop(&mut self) {
        match std::mem::replace(&mut *self.state(), State::Closed) {
            State::Listening { backlog, .. } => {
                for conn in backlog {
                    if let Some(s) = conn.stream() {
                        s.abort();
                    }
                }
            }
            State::Connected { stream, peer, .. } => {
                let Some(fins) = stream.fins() else { return };
                if self.ep.aborts_on_close() {
                    stream.abort();
                } else if !self.reset.load(Ordering::Relaxed) && !stream.reset_pending() && stream.queued() == 0 {
                    // Closing with bytes unread resets instead. Its FIN went
                    // (or goes now) first: FIN_WAIT until its peer's comes,
                    // then TIME_WAIT. Or its FIN waits behind what it sent
                    // (LAST_ACK or CLOSING).
                    let first = if fins.sent { self.fin_first.load(Ordering::Relaxed) } else { !fins.came };
                    if let Some(fins) = stream.fins_after_close().filter(|_| first || fins.unacked > 0) {
                        let row = Box::new(move || closed_row(fins(), first));
                        self.ep.net.loopback.tcp_time_wait.add(inet::Remains { domain: self.ep.domain, local: self.ep.local(), remote: peer, row });
                    }
                    if first && (self.accepted || self.ep.port_chosen()) {
                        self.ep.time_wait.start();
                    }
                }
            }
            State::Remote { conn, .. } => {
                if self.ep.aborts_on_close() {
                    conn.abort();
                } else if conn.handshake() == Ok(true) && !conn.was_reset() && (self.accepted || self.ep.port_chosen()) {
                    self.ep.time_wait.start();
                }
            }
            State::Closed => {}
        }
    }
}

impl FileDescription for TcpSocket {
    super::socket_file_basics!(super::STREAM_WRITE_MAX);

    /// A connection that ended in a reset is hung up; a pending error is POLLERR.
    fn readiness(&self, mask: u32) -> u32 {
        let mut ev = match &*self.state() {
            State::Connected { stream, .. } => stream.readiness(mask),
            State::Listening { backlog, remote, .. } => {
                if backlog.is_empty() && !remote.as_ref().is_some_and(TcpListener::ready) {
                    0
                } else {
                    POLLIN & mask
                }
            }
            State::Remote { conn, .. } => conn.readiness(self.buffers.rcvlowat()) & (mask | POLLHUP | POLLERR),
            // Linux's tcp_poll of a closed socket: hung up, and writable (to fail).
            State::Closed => (POLLOUT & mask) | POLLHUP,
        };
        if self.reset.load(Ordering::Relaxed) || ev & POLLERR != 0 {
            ev |= POLLHUP;
        }
        if self.error().is_some() {
            ev |= POLLERR;
        }
        ev
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    /// FIONREAD (SIOCINQ) counts what is queued to read; SIOCOUTQ and
    /// SIOCOUTQNSD what was sent and not acknowledged, or not sent (EINVAL
    /// on a listener, as FIONREAD); and the interface ioctls.
    fn ioctl(&self, t: &Task, request: u32, arg: u64) -> SysResult<u64> {
        const SIOCOUTQ: u32 = 0x5411;
        const FIONREAD: u32 = 0x541B;
        const SIOCOUTQNSD: u32 = 0x894B;
        if super::interface::is_interface_ioctl(request) {
            return super::interface::ioctl(t, request, arg);
        }
        if let Some(conn) = self.remote() {
            let (unread, unsent) = conn.queued();
            let n = match request {
                FIONREAD => unread,
                // smoltcp does not tell the bytes in flight from those not
                // sent yet: both count what is not acknowledged.
                SIOCOUTQ | SIOCOUTQNSD => unsent,
                SIOCATMARK => 0,
                _ => return error!(ENOTTY),
            };
            return t.mm.write_obj(crate::mm::UserRef::new(rvisor_abi::UserAddr(arg)), &(n as i32)).map(|()| 0);
        }
        let out = |n: usize| t.mm.write_obj(crate::mm::UserRef::new(rvisor_abi::UserAddr(arg)), &(n as i32)).map(|()| 0);
        match (request, self.stream()) {
            // tcp_ioctl: a listener has no queues; a socket not yet
            // connected has empty ones.
            (SIOCOUTQ | SIOCOUTQNSD | FIONREAD, _) if Socket::listening(self) => error!(EINVAL),
            (SIOCOUTQ | SIOCOUTQNSD, stream) => out(stream.map_or(0, |s| s.unacked())),
            (SIOCATMARK, stream) => out(usize::from(stream.is_some_and(|s| s.at_mark()))),
            (FIONREAD, stream) => out(stream.map_or(0, |s| s.readable_bytes())),
            (_, Some(stream)) => stream.ioctl(t, request, arg),
            (_, None) => error!(EINVAL),
        }
    }
}
