//! TCP through the interface: one smoltcp socket per connection (`TcpConn`),
//! and a pool of listening ones per listener (`TcpListener`), since smoltcp
//! has no backlog: each listening socket takes one handshake and becomes the
//! connection, and accept(2) takes it and puts a fresh one in its place.

use super::{Netstack, Stack};
use crate::vfs::{WaitQueue, POLLERR, POLLHUP, POLLIN, POLLOUT};
use rvisor_abi::{error, SysResult};
use smoltcp::socket::tcp::{self, State};
use smoltcp::iface::SocketHandle;
use smoltcp::wire::IpListenEndpoint;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Each way's buffer: big enough for a window that fills a fast link.
const BUFFER: usize = 256 << 10;
/// Most handshakes a listener takes before accept(2) (a listen backlog
/// beyond it is refused with a reset, as a full SYN queue drops).
const POOL_MAX: usize = 16;
const POLLRDHUP: u32 = 0x2000;

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

/// One connection through the interface.
pub struct TcpConn {
    ns: Arc<Netstack>,
    handle: SocketHandle,
    /// Whether this end shut its writing (shutdown or close).
    shut_write: AtomicBool,
    /// Whether it ever was established (a connection that closes before is
    /// refused; one that closes after without our FIN was reset).
    established: AtomicBool,
}

impl TcpConn {
    fn adopt(ns: Arc<Netstack>, handle: SocketHandle, established: bool) -> TcpConn {
        TcpConn { ns, handle, shut_write: AtomicBool::new(false), established: AtomicBool::new(established) }
    }

    /// Starts a connection from `local` (its port is the socket's own) to
    /// `dest`; it completes (or fails) later, as `state` tells.
    pub fn connect(ns: &Arc<Netstack>, queue: &Arc<WaitQueue>, local: SocketAddr, dest: SocketAddr, nodelay: bool) -> SysResult<TcpConn> {
        ns.with(|stack| {
            let mut s = new_socket();
            s.set_nagle_enabled(!nodelay);
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
            State::Closed if !self.established.load(Ordering::Relaxed) => error!(ECONNREFUSED),
            _ => {
                self.established.store(true, Ordering::Relaxed);
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

    pub fn set_nodelay(&self, on: bool) {
        self.with(|s| s.set_nagle_enabled(!on));
    }

    /// Wakes `queue` from now on (an accepted connection's new socket).
    pub fn watch(&self, queue: &Arc<WaitQueue>) {
        self.ns.lock().watch(self.handle, queue);
    }

    /// poll(2)'s view, as Linux's tcp_poll.
    pub fn readiness(&self) -> u32 {
        let reset = self.was_reset();
        self.peek(|s| {
            let mut ev = 0;
            if s.can_recv() || (!s.may_recv() && !matches!(s.state(), State::SynSent | State::SynReceived)) {
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
/// in on them and wait for accept(2).
pub struct TcpListener {
    ns: Arc<Netstack>,
    local: IpListenEndpoint,
    pool: Vec<SocketHandle>,
    queue: Arc<WaitQueue>,
}

impl TcpListener {
    /// Listens on `local` (the wildcard or the interface's address), taking
    /// up to `backlog` handshakes at once.
    pub fn new(ns: &Arc<Netstack>, queue: &Arc<WaitQueue>, local: SocketAddr, backlog: usize) -> SysResult<TcpListener> {
        let ep = IpListenEndpoint { addr: (!local.ip().is_unspecified()).then(|| local.ip().to_canonical().into()), port: local.port() };
        let mut l = TcpListener { ns: ns.clone(), local: ep, pool: Vec::new(), queue: queue.clone() };
        l.resize(backlog)?;
        Ok(l)
    }

    /// Keeps `backlog` (at most POOL_MAX, at least 1) sockets listening.
    pub fn resize(&mut self, backlog: usize) -> SysResult<()> {
        let want = backlog.clamp(1, POOL_MAX);
        let (local, queue) = (self.local, self.queue.clone());
        let pool = &mut self.pool;
        self.ns.with(|stack| {
            // A handshake reset before accept(2) leaves a closed socket.
            pool.retain(|&h| {
                let closed = stack.sockets.get::<tcp::Socket>(h).state() == State::Closed;
                if closed {
                    stack.remove(h);
                }
                !closed
            });
            let listening = pool.iter().filter(|&&h| stack.sockets.get::<tcp::Socket>(h).state() == State::Listen).count();
            for _ in listening..want {
                let mut s = new_socket();
                if s.listen(local).is_err() {
                    return error!(EINVAL);
                }
                let h = stack.sockets.add(s);
                stack.watch(h, &queue);
                pool.push(h);
            }
            Ok(())
        })
    }

    /// Whether a connection waits for accept(2).
    pub fn ready(&self) -> bool {
        let stack = self.ns.lock();
        self.pool.iter().any(|&h| Self::came_in(stack.sockets.get::<tcp::Socket>(h)))
    }

    fn came_in(s: &tcp::Socket) -> bool {
        !matches!(s.state(), State::Listen | State::SynReceived | State::Closed)
    }

    /// The next connection that came in, and a fresh listening socket in its place.
    pub fn accept(&mut self) -> SysResult<Option<TcpConn>> {
        let found = {
            let stack = self.ns.lock();
            self.pool.iter().position(|&h| Self::came_in(stack.sockets.get::<tcp::Socket>(h)))
        };
        let Some(i) = found else { return Ok(None) };
        let handle = self.pool.remove(i);
        let want = self.pool.len() + 1;
        self.resize(want)?;
        Ok(Some(TcpConn::adopt(self.ns.clone(), handle, true)))
    }

    /// Connections waiting for accept(2).
    pub fn waiting(&self) -> usize {
        let stack = self.ns.lock();
        self.pool.iter().filter(|&&h| Self::came_in(stack.sockets.get::<tcp::Socket>(h))).count()
    }
}

impl Drop for TcpListener {
    /// Connections not accepted are reset; listening sockets go.
    fn drop(&mut self) {
        let pool = std::mem::take(&mut self.pool);
        self.ns.with(|stack| {
            for h in pool {
                stack.sockets.get_mut::<tcp::Socket>(h).abort();
                stack.retire(h);
            }
        });
    }
}
