//! TCP through the interface: one smoltcp socket per connection (`TcpConn`),
//! and a pool of listening ones per listener (`TcpListener`, `Pool`), since
//! smoltcp has no backlog: each listening socket takes one handshake and
//! becomes the connection, which accept(2) takes.

use super::{Netstack, Stack};
use crate::vfs::{WaitQueue, POLLERR, POLLHUP, POLLIN, POLLOUT};
use rvisor_abi::{error, SysResult};
use smoltcp::socket::tcp::{self, State};
use smoltcp::iface::SocketHandle;
use smoltcp::wire::IpListenEndpoint;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Each way's buffer: big enough for a window that fills a fast link.
const BUFFER: usize = 256 << 10;
/// Most handshakes and connections a listener holds before accept(2),
/// whatever its backlog asks (a handshake beyond it is refused with a reset,
/// where Linux's full queue would drop it).
const POOL_MAX: usize = 256;
const POLLRDHUP: u32 = 0x2000;

fn tune(s: &mut tcp::Socket<'static>, tuning: Tuning) {
    s.set_nagle_enabled(!tuning.nodelay);
    s.set_keep_alive(tuning.keepalive.map(Into::into));
}

fn new_socket() -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; BUFFER]), tcp::SocketBuffer::new(vec![0; BUFFER]));
    // Linux answers a delayed ACK within 40 ms; smoltcp's default is 10.
    s.set_ack_delay(Some(smoltcp::time::Duration::from_millis(40)));
    s
}

/// How a send went.
pub enum Sent {
    /// Bytes queued (0: no room now).
    Queued(usize),
    /// The connection takes no more (closed, reset, shut for writing).
    Closed,
}

/// How long a handshake is tried (Linux's 6 SYN retries: 1+2+...+64 s),
/// then ETIMEDOUT.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(127);
/// How long sent bytes may go unacknowledged before the connection is given
/// up (about Linux's tcp_retries2 of 15).
const ACK_TIMEOUT: Duration = Duration::from_secs(924);

/// What a connection's TCP options ask of the stack.
#[derive(Clone, Copy, Default)]
pub struct Tuning {
    /// TCP_NODELAY.
    pub nodelay: bool,
    /// SO_KEEPALIVE's idle time (TCP_KEEPIDLE), when on.
    pub keepalive: Option<Duration>,
}

/// One connection through the interface.
pub struct TcpConn {
    ns: Arc<Netstack>,
    handle: SocketHandle,
    /// When the handshake began (a failed one past HANDSHAKE_TIMEOUT timed out).
    started: Instant,
    /// Whether this end shut its writing (shutdown or close).
    shut_write: AtomicBool,
    /// Whether it ever was established (a connection that closes before is
    /// refused; one that closes after without our FIN was reset).
    established: AtomicBool,
}

impl TcpConn {
    fn adopt(ns: Arc<Netstack>, handle: SocketHandle, established: bool) -> TcpConn {
        TcpConn { ns, handle, started: Instant::now(), shut_write: AtomicBool::new(false), established: AtomicBool::new(established) }
    }

    /// Starts a connection from `local` (its port is the socket's own) to
    /// `dest`; it completes (or fails) later, as `state` tells.
    pub fn connect(ns: &Arc<Netstack>, queue: &Arc<WaitQueue>, local: SocketAddr, dest: SocketAddr, tuning: Tuning) -> SysResult<TcpConn> {
        ns.with(|stack| {
            let mut s = new_socket();
            tune(&mut s, tuning);
            s.set_timeout(Some(HANDSHAKE_TIMEOUT.into()));
            let local = IpListenEndpoint { addr: (!local.ip().is_unspecified()).then(|| local.ip().to_canonical().into()), port: local.port() };
            if s.connect(stack.context(), dest, local).is_err() {
                return error!(EADDRNOTAVAIL);
            }
            let handle = stack.sockets.add(s);
            stack.watch(handle, queue);
            Ok(TcpConn::adopt(ns.clone(), handle, false))
        })
    }

    /// Runs `f` on the smoltcp socket (and the stack after).
    fn with<R>(&self, f: impl FnOnce(&mut tcp::Socket<'static>) -> R) -> R {
        self.ns.with(|stack| f(stack.sockets.get_mut::<tcp::Socket>(self.handle)))
    }

    /// Looks at the smoltcp socket without running the stack.
    fn peek<R>(&self, f: impl FnOnce(&tcp::Socket<'static>) -> R) -> R {
        let stack = self.ns.lock();
        f(stack.sockets.get::<tcp::Socket>(self.handle))
    }

    /// Where the handshake is: Ok(true) established, Ok(false) still going,
    /// or how it failed.
    pub fn handshake(&self) -> SysResult<bool> {
        match self.peek(|s| s.state()) {
            State::SynSent | State::SynReceived => Ok(false),
            State::Closed if !self.established.load(Ordering::Relaxed) => {
                if self.started.elapsed() >= HANDSHAKE_TIMEOUT { error!(ETIMEDOUT) } else { error!(ECONNREFUSED) }
            }
            _ => {
                if !self.established.swap(true, Ordering::Relaxed) {
                    self.with(|s| s.set_timeout(Some(ACK_TIMEOUT.into())));
                }
                Ok(true)
            }
        }
    }

    /// Its own address and the peer's.
    pub fn endpoints(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        self.peek(|s| (s.local_endpoint().map(SocketAddr::from), s.remote_endpoint().map(SocketAddr::from)))
    }

    /// Whether the connection ended without this end closing it: a reset.
    pub fn was_reset(&self) -> bool {
        self.established.load(Ordering::Relaxed) && !self.shut_write.load(Ordering::Relaxed) && self.peek(|s| s.state()) == State::Closed
    }

    pub fn send(&self, data: &[u8]) -> Sent {
        if self.shut_write.load(Ordering::Relaxed) {
            return Sent::Closed;
        }
        self.with(|s| {
            if !s.may_send() {
                return if matches!(s.state(), State::SynSent | State::SynReceived) { Sent::Queued(0) } else { Sent::Closed };
            }
            Sent::Queued(s.send_slice(data).unwrap_or(0))
        })
    }

    /// Up to `max` bytes (None: nothing yet; an empty Vec: end of stream).
    pub fn receive(&self, max: usize, peek: bool) -> Option<Vec<u8>> {
        self.with(|s| {
            if s.can_recv() {
                let mut buf = vec![0; max.min(s.recv_queue())];
                let n = if peek { s.peek_slice(&mut buf) } else { s.recv_slice(&mut buf) }.unwrap_or(0);
                buf.truncate(n);
                return Some(buf);
            }
            (!s.may_recv() && !matches!(s.state(), State::SynSent | State::SynReceived)).then(Vec::new)
        })
    }

    /// Bytes waiting to be read, and bytes sent but not yet acknowledged.
    pub fn queued(&self) -> (usize, usize) {
        self.peek(|s| (s.recv_queue(), s.send_queue()))
    }

    /// shutdown(SHUT_WR): a FIN after what is queued.
    pub fn shut_write(&self) {
        self.shut_write.store(true, Ordering::Relaxed);
        self.with(|s| s.close());
    }

    /// Ends the connection with a reset.
    pub fn abort(&self) {
        self.shut_write.store(true, Ordering::Relaxed);
        self.with(|s| s.abort());
    }

    pub fn tune(&self, tuning: Tuning) {
        self.with(|s| tune(s, tuning));
    }

    /// Wakes `queue` from now on (an accepted connection's new socket).
    pub fn watch(&self, queue: &Arc<WaitQueue>) {
        self.ns.lock().watch(self.handle, queue);
    }

    /// poll(2)'s view, as Linux's tcp_poll: readable once `lowat` bytes
    /// (SO_RCVLOWAT) came, or the receive buffer is full.
    pub fn readiness(&self, lowat: usize) -> u32 {
        let reset = self.was_reset();
        self.peek(|s| {
            let mut ev = 0;
            let enough = s.recv_queue() >= lowat.min(s.recv_capacity());
            if (s.can_recv() && enough) || (!s.may_recv() && !matches!(s.state(), State::SynSent | State::SynReceived)) {
                ev |= POLLIN;
            }
            if s.can_send() || (s.state() == State::Closed) {
                ev |= POLLOUT;
            }
            if !s.may_recv() && s.state() != State::SynSent {
                ev |= POLLRDHUP;
            }
            if s.state() == State::Closed {
                ev |= POLLHUP;
            }
            if reset {
                ev |= POLLERR;
            }
            ev
        })
    }

    /// Linux's TCP state number for it (/proc/net/tcp, TCP_INFO).
    pub fn linux_state(&self) -> u8 {
        match self.peek(|s| s.state()) {
            State::Established => 1,
            State::SynSent => 2,
            State::SynReceived => 3,
            State::FinWait1 => 4,
            State::FinWait2 => 5,
            State::TimeWait => 6,
            State::Closed => 7,
            State::CloseWait => 8,
            State::LastAck => 9,
            State::Listen => 10,
            State::Closing => 11,
        }
    }
}

impl Drop for TcpConn {
    /// close(2): a FIN after what is queued, or a reset when bytes came that
    /// were never read (as Linux); the socket finishes on its own.
    fn drop(&mut self) {
        self.ns.with(|stack: &mut Stack| {
            let s = stack.sockets.get_mut::<tcp::Socket>(self.handle);
            if s.recv_queue() > 0 {
                s.abort();
            } else {
                s.close();
            }
            stack.retire(self.handle);
        });
    }
}

/// A listener's smoltcp sockets: listening ones, and connections that came
/// in on them and wait for accept(2). Kept in the stack (`Stack::pools`), so
/// that a run of the stack can grow it for the handshakes it is about to
/// take: one listening socket waits while none comes, and a burst gets one
/// each, up to the backlog.
pub struct Pool {
    local: IpListenEndpoint,
    handles: Vec<SocketHandle>,
    /// The backlog: most handshakes taken and connections waiting at once.
    max: usize,
    queue: Weak<WaitQueue>,
}

/// Every listener's pool, by its id.
#[derive(Default)]
pub struct Pools {
    pools: HashMap<u64, Pool>,
    next: u64,
}

impl Pool {
    fn listening(&self, stack: &Stack) -> usize {
        self.handles.iter().filter(|&&h| stack.sockets.get::<tcp::Socket>(h).state() == State::Listen).count()
    }

    fn came_in(s: &tcp::Socket) -> bool {
        !matches!(s.state(), State::Listen | State::SynReceived | State::Closed)
    }

    fn takes(&self, dest: SocketAddr) -> bool {
        self.local.port == dest.port() && self.local.addr.is_none_or(|a| IpAddr::from(a) == dest.ip())
    }
}

/// Adds a listening socket to pool `id` of `stack`.
fn add_listening(stack: &mut Stack, id: u64) -> SysResult<()> {
    let Some(pool) = stack.pools.pools.get(&id) else { return error!(EINVAL) };
    let (local, queue) = (pool.local, pool.queue.upgrade());
    let mut s = new_socket();
    if s.listen(local).is_err() {
        return error!(EINVAL);
    }
    let h = stack.sockets.add(s);
    if let Some(q) = &queue {
        stack.watch(h, q);
    }
    if let Some(pool) = stack.pools.pools.get_mut(&id) {
        pool.handles.push(h);
    }
    Ok(())
}

/// Gives each handshake about to be taken (a SYN among the frames read
/// ahead) a listening socket of the listener it is for, within its backlog.
pub fn grow_pools(stack: &mut Stack) {
    if stack.pools.pools.is_empty() {
        return;
    }
    let syns: Vec<SocketAddr> = stack.device.arrived.iter().filter_map(|f| syn_destination(f)).collect();
    let mut wanted: HashMap<u64, usize> = HashMap::new();
    for dest in syns {
        // The address's own listener before the wildcard's, as smoltcp picks.
        let mut ids: Vec<(&u64, &Pool)> = stack.pools.pools.iter().filter(|(_, p)| p.takes(dest)).collect();
        ids.sort_by_key(|(_, p)| p.local.addr.is_none());
        if let Some((&id, _)) = ids.first() {
            *wanted.entry(id).or_default() += 1;
        }
    }
    for (id, syns) in wanted {
        let Some(pool) = stack.pools.pools.get(&id) else { continue };
        let (listening, size, max) = (pool.listening(stack), pool.handles.len(), pool.max);
        let more = syns.saturating_sub(listening).min(max.saturating_sub(size));
        for _ in 0..more {
            if add_listening(stack, id).is_err() {
                break;
            }
        }
    }
}

/// Where a frame that opens a TCP handshake (SYN without ACK) goes.
fn syn_destination(frame: &[u8]) -> Option<SocketAddr> {
    let (dest, tcp) = super::tcp_header(frame)?;
    let flags = *frame.get(tcp + 13)?;
    let port = u16::from_be_bytes([*frame.get(tcp + 2)?, *frame.get(tcp + 3)?]);
    (flags & 0x12 == 0x02).then_some(SocketAddr::new(dest, port))
}

/// A listener's handle on its pool.
pub struct TcpListener {
    ns: Arc<Netstack>,
    id: u64,
}

impl TcpListener {
    /// Listens on `local` (the wildcard or the interface's address), taking
    /// up to `backlog` handshakes and connections at once.
    pub fn new(ns: &Arc<Netstack>, queue: &Arc<WaitQueue>, local: SocketAddr, backlog: usize) -> SysResult<TcpListener> {
        let ep = IpListenEndpoint { addr: (!local.ip().is_unspecified()).then(|| local.ip().to_canonical().into()), port: local.port() };
        let id = ns.with(|stack| {
            let id = stack.pools.next;
            stack.pools.next += 1;
            stack.pools.pools.insert(id, Pool { local: ep, handles: Vec::new(), max: backlog.clamp(1, POOL_MAX), queue: Arc::downgrade(queue) });
            add_listening(stack, id).map(|()| id)
        })?;
        Ok(TcpListener { ns: ns.clone(), id })
    }

    /// listen(2) again: a new backlog.
    pub fn resize(&mut self, backlog: usize) -> SysResult<()> {
        self.ns.with(|stack| {
            if let Some(pool) = stack.pools.pools.get_mut(&self.id) {
                pool.max = backlog.clamp(1, POOL_MAX);
            }
        });
        Ok(())
    }

    fn with_pool<R>(&self, f: impl FnOnce(&Stack, &Pool) -> R) -> Option<R> {
        let stack = self.ns.lock();
        stack.pools.pools.get(&self.id).map(|p| f(&stack, p))
    }

    /// Whether a connection waits for accept(2).
    pub fn ready(&self) -> bool {
        self.waiting() > 0
    }

    /// Connections waiting for accept(2).
    pub fn waiting(&self) -> usize {
        self.with_pool(|stack, p| p.handles.iter().filter(|&&h| Pool::came_in(stack.sockets.get::<tcp::Socket>(h))).count()).unwrap_or(0)
    }

    /// The next connection that came in; a listening socket stays (or is
    /// put) in the pool.
    pub fn accept(&mut self) -> SysResult<Option<TcpConn>> {
        let id = self.id;
        let taken = self.ns.with(|stack| {
            let Some(pool) = stack.pools.pools.get(&id) else { return Ok(None) };
            // A handshake reset before accept(2) leaves a closed socket.
            let closed: Vec<SocketHandle> = pool.handles.iter().copied().filter(|&h| stack.sockets.get::<tcp::Socket>(h).state() == State::Closed).collect();
            let found = pool.handles.iter().copied().find(|&h| Pool::came_in(stack.sockets.get::<tcp::Socket>(h)));
            for &h in &closed {
                stack.remove(h);
            }
            if let Some(pool) = stack.pools.pools.get_mut(&id) {
                pool.handles.retain(|h| !closed.contains(h) && Some(*h) != found);
            }
            if stack.pools.pools.get(&id).is_some_and(|p| p.listening(stack) == 0) {
                add_listening(stack, id)?;
            }
            Ok(found)
        })?;
        let conn = taken.map(|h| TcpConn::adopt(self.ns.clone(), h, true));
        if let Some(c) = &conn {
            c.with(|s| s.set_timeout(Some(ACK_TIMEOUT.into())));
        }
        Ok(conn)
    }
}

impl Drop for TcpListener {
    /// Connections not accepted are reset; listening sockets go.
    fn drop(&mut self) {
        let id = self.id;
        self.ns.with(|stack| {
            let Some(pool) = stack.pools.pools.remove(&id) else { return };
            for h in pool.handles {
                stack.sockets.get_mut::<tcp::Socket>(h).abort();
                stack.retire(h);
            }
        });
    }
}
