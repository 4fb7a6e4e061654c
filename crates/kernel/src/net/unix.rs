//! AF_UNIX sockets. Two connected stream or seqpacket sockets share a `Pair`,
//! each direction a queue in the Sentry: SOCK_STREAM carries bytes;
//! SOCK_SEQPACKET whole messages (a short read drops the rest of one). A
//! datagram socket has a queue of its own (its inbox) that any socket may send
//! to by name, and at most a default peer (connect(2), socketpair(2)): where
//! sends without an address go, and then the only socket it hears from.
//! Messages carry open files (SCM_RIGHTS), the sender's credentials
//! (SCM_CREDENTIALS) and its address (recvfrom). Connections come from
//! socketpair(2), or from connect(2) to a listening socket found by path (a
//! socket node) or abstract name; abstract names are per socket type, as in
//! Linux.
//!
//! Lock order: a listener's state before a connecting socket's (connect), a
//! socket's name before the abstract names (bind). Names and credentials are
//! leaves; a socket's state, a pair's queues and an inbox are otherwise held
//! one at a time.

use super::{int_option, BufferSizes, Limit, SocketInode, Timeouts, Way, Ancillary, Received, Socket, MSG_DONTWAIT, MSG_NOSIGNAL, MSG_OOB, MSG_PEEK, MSG_WAITALL, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM};
use crate::syscalls::open::{lookup_at_as, parent_at, read_only, AT_FDCWD};
use crate::task::Task;
use crate::vfs::{FileDescription, StatusFlags, WaitCallback, WaitQueue, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLPRI};
use rvisor_abi::structs::Ucred;
use rvisor_abi::{error, ErrnoCode, SysResult};
use zerocopy::IntoBytes;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

const POLLRDHUP: u32 = 0x2000;

/// What a datagram may be short of the sender's send buffer (Linux's
/// unix_dgram_sendmsg: EMSGSIZE past SO_SNDBUF less 32).
const DATAGRAM_SLACK: usize = 32;
/// Datagrams an inbox holds beyond which senders other than its peer wait
/// (Linux's net.unix.max_dgram_qlen).
const MAX_DGRAM_QLEN: usize = 10;

/// What a receiver with SO_PASSCRED sees for a message sent when neither end
/// had it: no pid, and the overflow ids Linux shows for an invalid id.
const NO_CREDS: Ucred = Ucred { pid: 0, uid: 65534, gid: 65534 };

/// What one send queued.
#[derive(Clone)]
struct Message {
    data: Vec<u8>,
    files: Vec<Arc<dyn FileDescription>>,
    /// The sender's address when it sent.
    from: Option<Vec<u8>>,
    /// Recorded when the sender passed them or either end had SO_PASSCRED.
    creds: Option<Ucred>,
    /// AF_UNIX stream: the chunk is a send(MSG_OOB)'s last byte (Linux's
    /// skb that was once oob_skb): the pending OOB byte while it holds it
    /// (the queue's `oob`), or empty once recv(MSG_OOB) took it, where reads
    /// still stop. A newer OOB byte makes the old one plain data.
    oob: bool,
    /// A datagram's or packet's cost to its sender's send buffer while it
    /// waits to be read (shared by the copies a peek makes); held for its
    /// drop, which gives it back.
    _charge: Option<Arc<Charge>>,
}

/// What a queued datagram, packet or stream piece costs its sender's send
/// buffer, given back when the last copy goes (Linux's sock_wfree), which
/// wakes the sender if it has room again (unix_write_space). A stream's
/// pieces go under their queue's lock, where no wait queue may be woken: the
/// reader wakes the writer after (`Pair::made_room`).
struct Charge {
    sender: Weak<UnixSocket>,
    size: usize,
    wake: bool,
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(s) = self.sender.upgrade() {
            s.sent.fetch_sub(self.size, Ordering::Relaxed);
            if self.wake && s.writable() {
                s.queue.notify_events(POLLOUT);
            }
        }
    }
}

/// Finds the socket a send or connect names (the lookup runs where Linux
/// runs it, after the checks that come first).
pub type Find<'a> = &'a dyn Fn() -> SysResult<Arc<UnixSocket>>;

/// The caller's credentials as a socket records them: its process id with its
/// real ids (SCM_CREDENTIALS) or its effective ids (SO_PEERCRED), as Linux does.
pub fn task_creds(t: &Task, effective: bool) -> Ucred {
    let c = t.tg.creds();
    let (uid, gid) = if effective { (c.euid, c.egid) } else { (c.uid, c.gid) };
    Ucred { pid: t.tg.tgid, uid, gid }
}

/// Credentials as a reader sees them: ids in its user and PID namespaces.
pub fn creds_seen_by(t: &Task, c: Ucred) -> Ucred {
    let ns = t.tg.user_ns();
    Ucred { pid: t.vnr(c.pid), uid: ns.show_uid(c.uid), gid: ns.show_gid(c.gid) }
}

/// Messages waiting to be read: one direction of a pair, or a datagram
/// socket's inbox.
#[derive(Default)]
struct Queue {
    /// Messages, or for a stream, chunks whose boundaries only matter where
    /// files were passed or (for a reader with SO_PASSCRED) the credentials
    /// change.
    msgs: VecDeque<Message>,
    bytes: usize,
    /// Pair: the writer shut down its sending side (or closed): readers see EOF.
    /// Inbox: the socket shut down its own sending side: its sends are EPIPE.
    write_shut: bool,
    /// The reader shut down its receiving side (or closed): writers get EPIPE,
    /// and it reads EOF once the queue is empty.
    read_shut: bool,
    /// Stream: the bytes read so far (TCP's copied_seq), where urgent marks are.
    taken: u64,
    /// Stream: TCP's urgent mark, from its peer's last send(MSG_OOB).
    urgent: Option<Urgent>,
    /// AF_UNIX stream: one chunk holds the pending OOB byte (the one
    /// non-empty `Message::oob` chunk).
    oob: bool,
    /// TCP: a read reached the writer's FIN (Linux's copied_seq past it):
    /// one that took the last byte after it came, or read EOF.
    fin_read: bool,
}

/// TCP's urgent mark (Linux's urg_seq and urg_data): the stream offset of
/// the urgent byte, and the byte until recv(MSG_OOB) takes it. The byte stays
/// in the stream, where reads stop before it and skip it (unless
/// SO_OOBINLINE); the mark goes once reads pass it.
#[derive(Clone, Copy)]
struct Urgent {
    at: u64,
    byte: Option<u8>,
}

impl Queue {
    /// A stream read that was not a peek left nothing after the writer's
    /// FIN: it read the FIN too.
    fn note_fin_read(&mut self, peek: bool) {
        if !peek && self.bytes == 0 && self.write_shut {
            self.fin_read = true;
        }
    }

    /// The first message whole, or a copy of it when peeking.
    fn take(&mut self, peek: bool) -> Option<Message> {
        if peek {
            return self.msgs.front().cloned();
        }
        let m = self.msgs.pop_front()?;
        self.bytes -= m.data.len();
        Some(m)
    }

    /// Whether the next byte read is the urgent one (SIOCATMARK). On
    /// AF_UNIX (Linux's unix_ioctl): the OOB byte is next, or a taken one
    /// with no other pending, or with the pending one right after it.
    fn at_mark(&self) -> bool {
        let mut chunks = self.msgs.iter();
        let oob = match chunks.next() {
            Some(m) if m.oob && m.data.is_empty() => !self.oob || chunks.next().is_some_and(|n| n.oob && !n.data.is_empty()),
            Some(m) => m.oob,
            None => false,
        };
        oob || self.at_urgent_mark()
    }

    /// Whether the next byte read is TCP's urgent one.
    fn at_urgent_mark(&self) -> bool {
        self.urgent.is_some_and(|u| u.at == self.taken)
    }

    /// The pending AF_UNIX OOB chunk.
    fn oob_chunk(&mut self) -> Option<(usize, &mut Message)> {
        if !self.oob {
            return None;
        }
        self.msgs.iter_mut().enumerate().find(|(_, m)| m.oob && !m.data.is_empty())
    }

    /// An AF_UNIX OOB byte (Linux's queue_oob): a chunk of its own, the
    /// pending one; the old one's byte is plain data from now on.
    fn queue_oob(&mut self, m: Message) {
        if let Some((_, old)) = self.oob_chunk() {
            old.oob = false;
        }
        self.bytes += m.data.len();
        self.msgs.push_back(Message { oob: true, ..m });
        self.oob = true;
    }

    /// recv(MSG_OOB) on AF_UNIX (Linux's unix_stream_recv_urg): the pending
    /// OOB byte, taken unless peeking: its chunk stays, empty, and an empty
    /// one right before it goes.
    fn take_oob(&mut self, peek: bool) -> Option<u8> {
        let (i, m) = self.oob_chunk()?;
        let byte = m.data[0];
        if !peek {
            m.data.clear();
            self.bytes -= 1;
            self.oob = false;
            if i > 0 && self.msgs[i - 1].oob && self.msgs[i - 1].data.is_empty() {
                self.msgs.remove(i - 1);
            }
        }
        Some(byte)
    }

    /// Whether a blocking read finds bytes: not only pending OOB bytes (unless
    /// `inline`) or taken ones, which it skips (and drops, unless peeking).
    fn has_bytes(&self, inline: bool) -> bool {
        self.msgs.iter().any(|m| !m.oob || (inline && !m.data.is_empty()))
    }

    /// Whether it polls readable: something is queued, but on TCP not only
    /// the urgent byte, that a reader without SO_OOBINLINE skips (Linux's
    /// tcp_poll asks for one byte more at the mark; unix_poll does not).
    fn readable(&self, inline: bool) -> bool {
        !self.msgs.is_empty() && !(self.bytes == 1 && !inline && self.at_urgent_mark())
    }

    /// Drops `n` bytes from the front of a stream.
    fn drop_front(&mut self, mut n: usize) {
        self.bytes -= n;
        self.taken += n as u64;
        while n > 0 {
            let Some(m) = self.msgs.front_mut() else { return };
            if m.data.len() > n {
                m.data.drain(..n);
                return;
            }
            n -= m.data.len();
            self.msgs.pop_front();
        }
    }

    /// A stream read while an urgent mark is set (Linux's tcp_recvmsg): up
    /// to `max` bytes, stopping before the mark; at the mark the urgent byte
    /// is skipped unless `inline`. None when nothing but that byte was
    /// there. Reading past the mark ends it.
    fn read_around_mark(&mut self, max: usize, peek: bool, inline: bool) -> Option<Vec<u8>> {
        if max == 0 {
            return Some(Vec::new());
        }
        let at = self.urgent.map_or(u64::MAX, |u| u.at);
        let skip = usize::from(at == self.taken && !inline);
        let before_mark = if at > self.taken { (at - self.taken) as usize } else { usize::MAX };
        let n = max.min(self.bytes - skip).min(before_mark);
        let mut data = Vec::with_capacity(n);
        let mut offset = skip;
        for m in &self.msgs {
            if data.len() == n {
                break;
            }
            if offset >= m.data.len() {
                offset -= m.data.len();
                continue;
            }
            let k = (n - data.len()).min(m.data.len() - offset);
            data.extend_from_slice(&m.data[offset..offset + k]);
            offset = 0;
        }
        if !peek {
            self.drop_front(skip + n);
            if self.taken > at {
                self.urgent = None;
            }
        }
        (n > 0).then_some(data)
    }

    /// A new urgent byte `byte` at offset `at` (Linux's tcp_check_urg and
    /// tcp_urg): it replaces the old mark, whose byte becomes plain data,
    /// but a reader without SO_OOBINLINE standing at the old mark skips the
    /// old byte. False when already read past.
    fn mark_urgent(&mut self, at: u64, byte: u8, inline: bool) -> bool {
        if self.taken > at || self.urgent.is_some_and(|u| u.at >= at) {
            return false;
        }
        if self.at_urgent_mark() && !inline {
            self.drop_front(1);
        }
        self.urgent = Some(Urgent { at, byte: Some(byte) });
        true
    }

    /// Whether an inbox takes another datagram: beyond the queue length only
    /// from the receiver's own peer (Linux's unix_recvq_full; what the queue
    /// holds in bytes is bounded by each sender's send buffer).
    fn has_room(&self, from_peer: bool) -> bool {
        from_peer || self.msgs.len() <= MAX_DGRAM_QLEN
    }
}

/// What a stream read does at an AF_UNIX OOB chunk.
enum AtOob {
    Stop,
    Skip,
    Read,
}

/// The two ends' shared state.
pub struct Pair {
    /// `queues[i]` holds what end `i` reads.
    queues: [Mutex<Queue>; 2],
    /// `waiters[i]`: the wait queue of the socket at end `i`.
    waiters: [Arc<WaitQueue>; 2],
    /// The sockets, for what a send asks of the receiver (SO_PASSCRED).
    ends: [Weak<UnixSocket>; 2],
    /// The ends' SO_SNDBUF and SO_RCVBUF.
    sizes: [Arc<BufferSizes>; 2],
    /// It carries a TCP connection (net/tcp.rs).
    tcp: bool,
    /// TCP: an end reset the connection (`reset_peer`), which its peer
    /// may have closed already.
    reset: AtomicBool,
}

/// TCP: how the FINs of a connection's end stand. On loopback what its
/// peer's window took is acknowledged at once, so its FIN is acknowledged
/// once nothing it sent waits for room: until then Linux's FIN_WAIT1,
/// CLOSING or LAST_ACK.
#[derive(Clone, Copy)]
pub struct Fins {
    /// It sent its FIN (shut writing, or closed).
    pub sent: bool,
    /// Its FIN was acknowledged.
    pub acked: bool,
    /// Its peer's FIN came: its peer shut writing, and all it sent arrived.
    pub came: bool,
    /// That FIN was not read yet: Linux's rcv_nxt less copied_seq counts it.
    pub unread: bool,
    /// What it sent that was not acknowledged, its FIN included (`unacked`).
    pub unacked: usize,
    /// The connection was reset.
    pub reset: bool,
}

impl Pair {
    fn queue(&self, i: usize) -> MutexGuard<'_, Queue> {
        self.queues[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bytes the TCP stream queue end `i` reads may hold: what the
    /// writer's send queue and the reader's window take, about half of each
    /// buffer (the rest goes to Linux's bookkeeping). (An AF_UNIX writer's
    /// send buffer bounds the charges of its pieces or packets instead,
    /// `Charge`; the reader's receive buffer plays no part.)
    fn capacity(&self, i: usize) -> usize {
        self.sizes[1 - i].limit(Way::Send) / 2 + self.window(i)
    }

    /// TCP: the reader's half of the stream queue end `i` reads, its
    /// window: what of the queue arrived and was acknowledged (the rest
    /// waits in the writer's send queue).
    fn window(&self, i: usize) -> usize {
        self.sizes[i].limit(Way::Receive) / 2
    }

    /// TCP: the bytes of the queue end `i` reads that arrived (Linux's
    /// rcv_nxt less copied_seq), those its window took.
    fn arrived(&self, i: usize, q: &Queue) -> usize {
        q.bytes.min(self.window(i))
    }

    /// TCP: SIOCOUTQ of end `i` (`UnixSocket::unacked`).
    fn unacked(&self, i: usize) -> usize {
        let q = self.queue(1 - i);
        let waiting = q.bytes.saturating_sub(self.window(1 - i));
        waiting + usize::from(waiting > 0 && q.write_shut)
    }

    /// TCP: the FINs of end `i`, which may be closed.
    fn fins(&self, i: usize) -> Fins {
        let sent = self.queue(1 - i).write_shut;
        let unacked = self.unacked(i);
        let q = self.queue(i);
        let came = q.write_shut && q.bytes <= self.window(i);
        Fins { sent, acked: sent && unacked == 0, came, unread: came && !q.fin_read, unacked, reset: self.reset.load(Ordering::Relaxed) }
    }

    /// Room left in the TCP stream queue end `i` reads.
    fn room(&self, i: usize, q: &Queue) -> usize {
        self.capacity(i).saturating_sub(q.bytes)
    }

    /// Whether the writer into the queue end `i` reads may queue more: on
    /// TCP room, on AF_UNIX a send buffer not yet full.
    fn takes_more(&self, i: usize, q: &Queue) -> bool {
        if self.tcp {
            self.room(i, q) > 0
        } else {
            self.ends[1 - i].upgrade().is_some_and(|w| w.has_send_room())
        }
    }

    /// A read from the queue end `i` reads made room: its writer hears of
    /// it, an AF_UNIX one once it polls writable (unix_write_space).
    fn made_room(&self, i: usize) {
        if self.tcp || self.ends[1 - i].upgrade().is_none_or(|w| w.writable()) {
            self.waiters[1 - i].notify_events(POLLOUT);
        }
    }
}

/// A connection: the pair and which end of it a socket is.
#[derive(Clone)]
struct Conn {
    pair: Arc<Pair>,
    end: usize,
}

impl Conn {
    fn peer(&self) -> usize {
        1 - self.end
    }
}

enum State {
    /// Made by socket(2): neither connected nor listening.
    Unconnected,
    /// listen(2): connections wait here, as the server ends accept(2) returns.
    Listening { backlog: VecDeque<Arc<UnixSocket>>, max: usize },
    Connected(Conn),
    /// A datagram socket's default peer, held weakly: as Linux finds a dead
    /// peer, the next send finds it gone (ECONNREFUSED).
    Peer(Weak<UnixSocket>),
}

/// Passes a datagram peer's "room again" on to a socket connected to it, so
/// that its pollers hear of POLLOUT (Linux's peer_wake).
struct Relay(Weak<WaitQueue>);

impl WaitCallback for Relay {
    fn wake(self: Arc<Self>, events: u32) {
        if events & POLLOUT != 0 {
            if let Some(q) = self.0.upgrade() {
                q.notify_events(POLLOUT);
            }
        }
    }
}

/// An AF_UNIX socket.
pub struct UnixSocket {
    kind: i32,
    ino: SocketInode,
    me: Weak<UnixSocket>,
    flags: StatusFlags,
    /// Woken when this socket's readiness may change: data, room, a connection.
    queue: Arc<WaitQueue>,
    /// Datagram: woken when its inbox has room again. Blocked senders wait
    /// here; sockets connected to it have their `relay` here.
    room: Arc<WaitQueue>,
    /// Registered on its datagram peer's `room`.
    relay: Arc<dyn WaitCallback>,
    state: Mutex<State>,
    /// Datagram: what was sent to it.
    inbox: Mutex<Queue>,
    /// The address it is bound to, as getsockname reports it (sun_path bytes).
    name: Mutex<Option<Vec<u8>>>,
    /// Its peer's address, for getpeername.
    peer_name: Mutex<Option<Vec<u8>>>,
    /// SO_PEERCRED: its peer's credentials when they connected (a listener's
    /// own from listen(2), which its clients get).
    peer_creds: Mutex<Option<Ucred>>,
    /// SO_PASSCRED.
    passcred: AtomicBool,
    /// The Landlock domain of the thread that made it (Linux looks at the
    /// file's credentials): what a scoped client's domain must enclose to
    /// reach it by an abstract name. A leaf lock.
    creator_domain: Mutex<Option<Arc<crate::landlock::Domain>>>,
    /// SO_RCVTIMEO and SO_SNDTIMEO (a TCP connection's ends share their
    /// sockets').
    timeouts: Arc<Timeouts>,
    /// SO_SNDBUF and SO_RCVBUF (shared likewise).
    buffers: Arc<BufferSizes>,
    /// Datagram and seqpacket: what its messages not yet read cost
    /// (`Charge`; Linux's sk_wmem_alloc less its initial 1), which SO_SNDBUF
    /// bounds.
    sent: AtomicUsize,
    /// A pending ECONNRESET (Linux's sk_err): its peer closed with messages
    /// unread or before accepting the connection, or a datagram peer connected
    /// back to it dropped what it had queued. The next send or receive (or
    /// SO_ERROR) reports it, once.
    reset: AtomicBool,
    /// SO_OOBINLINE (of the TCP socket this stream end serves, if `tcp`):
    /// urgent (OOB) bytes are read in the stream.
    oob_inline: AtomicBool,
    /// A stream end carrying a TCP connection (`connected_streams`): its
    /// MSG_OOB is TCP's urgent mark, not AF_UNIX's OOB byte.
    tcp: bool,
}

fn check_kind(kind: i32) -> SysResult<()> {
    if matches!(kind, SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET) { Ok(()) } else { error!(ESOCKTNOSUPPORT) }
}

impl UnixSocket {
    /// socket(2): a new socket of type `kind`, with status `flags` (O_NONBLOCK).
    pub fn new(kind: i32, flags: u32) -> SysResult<Arc<UnixSocket>> {
        check_kind(kind)?;
        Ok(UnixSocket::with_queue(kind, flags, Arc::default(), Arc::default(), Arc::default(), false))
    }

    /// A socket whose readiness changes wake `queue`, with `timeouts` and
    /// `buffers`; `tcp` for a stream end carrying a TCP connection.
    fn with_queue(kind: i32, flags: u32, queue: Arc<WaitQueue>, timeouts: Arc<Timeouts>, buffers: Arc<BufferSizes>, tcp: bool) -> Arc<UnixSocket> {
        let relay = Arc::new(Relay(Arc::downgrade(&queue)));
        Arc::new_cyclic(|me| UnixSocket {
            kind,
            ino: SocketInode::new(),
            me: me.clone(),
            flags: StatusFlags::new(flags | 2),
            queue,
            room: Arc::default(),
            relay,
            state: Mutex::new(State::Unconnected),
            inbox: Mutex::default(),
            name: Mutex::default(),
            peer_name: Mutex::default(),
            peer_creds: Mutex::default(),
            passcred: AtomicBool::new(false),
            creator_domain: Mutex::default(),
            reset: AtomicBool::new(false),
            oob_inline: AtomicBool::new(false),
            tcp,
            timeouts,
            buffers,
            sent: AtomicUsize::new(0),
        })
    }

    /// Records the Landlock domain of the thread that made it.
    pub fn made_by(&self, t: &Task) {
        *self.creator_domain.lock().unwrap_or_else(|e| e.into_inner()) = t.thread.landlock();
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn inbox(&self) -> MutexGuard<'_, Queue> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn conn(&self) -> SysResult<Conn> {
        match &*self.state() {
            State::Connected(c) => Ok(c.clone()),
            _ => error!(ENOTCONN),
        }
    }

    /// Its datagram peer, if it has one (alive or not).
    fn peer(&self) -> Option<Weak<UnixSocket>> {
        match &*self.state() {
            State::Peer(w) => Some(w.clone()),
            _ => None,
        }
    }

    /// Whether a datagram socket hears from `sender` (it has no peer, or
    /// `sender` is its peer: Linux's unix_may_send), and whether `sender` is
    /// its peer.
    fn hears_from(&self, sender: &UnixSocket) -> (bool, bool) {
        match &*self.state() {
            State::Peer(w) => {
                let is_peer = std::ptr::eq(w.as_ptr(), sender);
                (is_peer, is_peer)
            }
            _ => (true, false),
        }
    }

    pub fn passcred(&self) -> bool {
        self.passcred.load(Ordering::Relaxed)
    }

    pub fn set_passcred(&self, on: bool) {
        self.passcred.store(on, Ordering::Relaxed)
    }

    /// SO_PEERCRED: None when nothing recorded its peer's credentials.
    pub fn peer_creds(&self) -> Option<Ucred> {
        *self.peer_creds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pending ECONNRESET, cleared.
    pub fn take_reset(&self) -> bool {
        self.reset.swap(false, Ordering::Relaxed)
    }

    /// Whether an ECONNRESET waits to be reported.
    pub fn reset_pending(&self) -> bool {
        self.reset.load(Ordering::Relaxed)
    }

    fn set_reset(&self) {
        self.reset.store(true, Ordering::Relaxed);
        self.queue.notify_events(POLLERR);
    }

    /// Makes `new` its datagram peer (None: none). When the peer changes, what
    /// it had queued is dropped, and an old peer connected back to it hears
    /// ECONNRESET once (Linux's unix_dgram_disconnected).
    fn set_peer(&self, new: Option<&Arc<UnixSocket>>) {
        let old = match std::mem::replace(&mut *self.state(), new.map_or(State::Unconnected, |p| State::Peer(p.me.clone()))) {
            State::Peer(w) => Some(w),
            _ => None,
        };
        *self.peer_name.lock().unwrap_or_else(|e| e.into_inner()) = new.and_then(|p| p.sun_name());
        let old_ptr = old.as_ref().map_or(std::ptr::null(), Weak::as_ptr);
        if old_ptr == new.map_or(std::ptr::null(), Arc::as_ptr) {
            return;
        }
        if let Some(p) = new {
            p.room.register_callback(self.relay.clone());
        }
        let Some(old) = old else { return };
        match old.upgrade() {
            Some(old) => {
                old.room.unregister_callback(&self.relay);
                self.purge(Some(&old));
            }
            None => self.purge(None),
        }
    }

    /// Drops what its inbox holds (after the lock: files may close sockets);
    /// if anything was, `old_peer` hears ECONNRESET when connected back to it.
    fn purge(&self, old_peer: Option<&Arc<UnixSocket>>) {
        let dropped = {
            let mut q = self.inbox();
            q.bytes = 0;
            std::mem::take(&mut q.msgs)
        };
        if dropped.is_empty() {
            return;
        }
        self.room.notify_events(POLLOUT);
        if let Some(old) = old_peer.filter(|o| o.hears_from(self).1) {
            old.set_reset();
        }
    }
}

/// Connects two sockets of one type: a new pair for a stream or seqpacket,
/// each the other's peer for datagrams.
/// Connects `a` and `b` (a TCP connection's ends when they are marked so).
fn join(a: &Arc<UnixSocket>, b: &Arc<UnixSocket>) {
    if a.kind == SOCK_DGRAM {
        a.set_peer(Some(b));
        b.set_peer(Some(a));
        return;
    }
    let pair = Arc::new(Pair {
        queues: Default::default(),
        waiters: [a.queue.clone(), b.queue.clone()],
        ends: [a.me.clone(), b.me.clone()],
        sizes: [a.buffers.clone(), b.buffers.clone()],
        tcp: a.tcp,
        reset: AtomicBool::new(false),
    });
    *a.state() = State::Connected(Conn { pair: pair.clone(), end: 0 });
    *b.state() = State::Connected(Conn { pair, end: 1 });
}

/// A connected pair of sockets of type `kind`, with status `flags`
/// (O_NONBLOCK), each with `creds` (its creator's) as its peer's.
pub fn socketpair(kind: i32, flags: u32, creds: Ucred) -> SysResult<(Arc<UnixSocket>, Arc<UnixSocket>)> {
    let (a, b) = (UnixSocket::new(kind, flags)?, UnixSocket::new(kind, flags)?);
    join(&a, &b);
    for s in [&a, &b] {
        *s.peer_creds.lock().unwrap_or_else(|e| e.into_inner()) = Some(creds);
    }
    Ok((a, b))
}

/// Two connected stream sockets that carry a TCP connection: they wake
/// `queues` and keep `timeouts` and `buffers` (those of the files they serve).
pub fn connected_streams(queues: [Arc<WaitQueue>; 2], timeouts: [Arc<Timeouts>; 2], buffers: [Arc<BufferSizes>; 2]) -> [Arc<UnixSocket>; 2] {
    let ([qa, qb], [ta, tb], [ba, bb]) = (queues, timeouts, buffers);
    let (a, b) = (UnixSocket::with_queue(SOCK_STREAM, 0, qa, ta, ba, true), UnixSocket::with_queue(SOCK_STREAM, 0, qb, tb, bb, true));
    join(&a, &b);
    [a, b]
}

/// The sandbox's AF_UNIX sockets, for /proc/net/unix and sock_diag (not the
/// stream ends that carry TCP connections), each with the id of the network
/// namespace it was made in. Leaf lock.
#[derive(Default)]
pub struct UnixSockets {
    all: Mutex<Vec<(Weak<UnixSocket>, u64)>>,
}

impl UnixSockets {
    pub fn register(&self, s: &Arc<UnixSocket>, net: u64) {
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        // Closed sockets go now and then, so the list stays near the live count.
        if all.len().is_power_of_two() {
            all.retain(|(w, _)| w.strong_count() > 0);
        }
        all.push((Arc::downgrade(s), net));
    }

    /// The live sockets made in network namespace `net`, oldest first.
    pub fn in_namespace(&self, net: u64) -> Vec<Arc<UnixSocket>> {
        self.all.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|(_, n)| *n == net).filter_map(|(w, _)| w.upgrade()).collect()
    }

    /// /proc/net/unix in Linux's layout (ss -x, netstat -x and psutil read it):
    /// listening flag, type, connected or not, inode, and the name it is bound to
    /// (an abstract one with '@' for each NUL).
    pub fn proc_net(&self) -> String {
        const ACCEPTCON: u32 = 0x10000;
        let live: Vec<Arc<UnixSocket>> = self.all.lock().unwrap_or_else(|e| e.into_inner()).iter().filter_map(|(w, _)| w.upgrade()).collect();
        let mut out = "Num       RefCount Protocol Flags    Type St Inode Path\n".to_string();
        for s in live {
            let (listening, connected) = match &*s.state() {
                State::Listening { .. } => (true, false),
                State::Connected(_) | State::Peer(_) => (false, true),
                State::Unconnected => (false, false),
            };
            let flags = if listening { ACCEPTCON } else { 0 };
            let st = if connected { 3 } else { 1 };
            out.push_str(&format!("0000000000000000: 00000002 00000000 {flags:08X} {:04X} {st:02X} {:5}", s.kind, s.ino.number()));
            if let Some(name) = s.sun_name() {
                let shown: String = match name.split_first() {
                    Some((0, rest)) => std::iter::once('@').chain(rest.iter().map(|&b| if b == 0 { '@' } else { b as char })).collect(),
                    _ => String::from_utf8_lossy(path_of(&name)).into_owned(),
                };
                out.push(' ');
                out.push_str(&shown);
            }
            out.push('\n');
        }
        out
    }
}

/// Most connections a listener queues (Linux's somaxconn).
const SOMAXCONN: usize = 4096;

/// What unix_diag shows of one socket.
pub struct UnixDiagRow {
    pub kind: i32,
    /// Linux's numbers: 10 listening, 1 connected (a datagram socket: with a
    /// peer), 7 neither.
    pub state: u8,
    pub inode: u64,
    /// The address it is bound to as UNIX_DIAG_NAME has it: sun_path bytes,
    /// a path with its NUL.
    pub name: Option<Vec<u8>>,
    /// Its peer's inode, while the peer lives.
    pub peer: Option<u64>,
    /// Bytes to read (a datagram socket: those of its first datagram) and
    /// bytes its peer has yet to read (datagram and seqpacket: what its
    /// messages unread cost, SIOCOUTQ); a listener: connections waiting and
    /// its backlog.
    pub rqueue: usize,
    pub wqueue: usize,
    /// A listener's connections waiting to be accepted (their inodes).
    pub waiting: Vec<u64>,
}

impl UnixSocket {
    pub fn diag_row(&self) -> UnixDiagRow {
        let name = self.sun_name().map(|n| match n.first() {
            Some(0) => n,
            _ => [path_of(&n), &[0]].concat(),
        });
        let mut row = UnixDiagRow { kind: self.kind, state: 7, inode: self.ino.number(), name, peer: None, rqueue: 0, wqueue: 0, waiting: Vec::new() };
        // The state's lock is let go before a pair's queue is taken.
        let conn = match &*self.state() {
            State::Listening { backlog, max } => {
                row.state = 10;
                (row.rqueue, row.wqueue) = (backlog.len(), *max);
                row.waiting = backlog.iter().map(|s| s.ino.number()).collect();
                None
            }
            State::Connected(c) => Some(c.clone()),
            State::Peer(w) => {
                row.state = 1;
                row.peer = w.upgrade().map(|p| p.ino.number());
                None
            }
            State::Unconnected => None,
        };
        match conn {
            Some(c) => {
                row.state = 1;
                row.peer = c.pair.ends[c.peer()].upgrade().map(|p| p.ino.number());
                row.rqueue = c.pair.queue(c.end).bytes;
            }
            None if self.kind == SOCK_DGRAM => row.rqueue = self.inbox().msgs.front().map_or(0, |m| m.data.len()),
            None => {}
        }
        // Linux's unix_outq_len: what its messages unread cost.
        if row.state != 10 {
            row.wqueue = self.sent.load(Ordering::Relaxed);
        }
        row
    }
}

/// The abstract socket namespace (names starting with a NUL byte): one per
/// sandbox, in no file system.
#[derive(Default)]
pub struct AbstractNames {
    /// Leaf lock.
    names: Mutex<Names>,
}

#[derive(Default)]
struct Names {
    /// By socket type and name: Linux hashes the type in, so each type has a
    /// namespace of its own.
    bound: HashMap<(i32, Vec<u8>), Weak<UnixSocket>>,
    /// The number autobind tries next.
    next_auto: u32,
}

/// Autobind's names are "\0" and five hex digits.
const AUTOBIND_NAMES: u32 = 1 << 20;

impl AbstractNames {
    fn names(&self) -> MutexGuard<'_, Names> {
        let mut n = self.names.lock().unwrap_or_else(|e| e.into_inner());
        n.bound.retain(|_, w| w.strong_count() > 0);
        n
    }

    fn bind(&self, name: &[u8], s: &UnixSocket) -> SysResult<()> {
        let mut names = self.names();
        let key = (s.kind, name.to_vec());
        if names.bound.contains_key(&key) {
            return error!(EADDRINUSE);
        }
        names.bound.insert(key, s.me.clone());
        Ok(())
    }

    /// Binds `s` to the first free autobind name, as Linux's unix_autobind.
    fn autobind(&self, s: &UnixSocket) -> SysResult<Vec<u8>> {
        let mut names = self.names();
        for _ in 0..AUTOBIND_NAMES {
            let n = names.next_auto;
            names.next_auto = (n + 1) % AUTOBIND_NAMES;
            let name = format!("\0{n:05x}").into_bytes();
            if let Entry::Vacant(e) = names.bound.entry((s.kind, name.clone())) {
                e.insert(s.me.clone());
                return Ok(name);
            }
        }
        error!(ENOSPC)
    }

    /// The socket of type `kind` bound to `name`.
    pub fn lookup(&self, kind: i32, name: &[u8]) -> Option<Arc<UnixSocket>> {
        self.names.lock().unwrap_or_else(|e| e.into_inner()).bound.get(&(kind, name.to_vec())).and_then(Weak::upgrade)
    }
}

impl UnixSocket {
    /// The address bind(2) gave it (getsockname), if any.
    pub fn sun_name(&self) -> Option<Vec<u8>> {
        self.name.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The peer's address (getpeername): ENOTCONN unless connected.
    pub fn sun_peer_name(&self) -> SysResult<Option<Vec<u8>>> {
        if self.kind == SOCK_DGRAM {
            self.peer().ok_or_else(|| rvisor_abi::errno!(ENOTCONN))?;
        } else {
            self.conn()?;
        }
        Ok(self.peer_name.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Binds to `name` (the sun_path bytes getsockname will report): `node`
    /// makes the file-system socket node, or the name goes in the abstract
    /// namespace when it starts with a NUL.
    pub fn bind_name(&self, name: Vec<u8>, abstract_names: &AbstractNames, node: impl FnOnce(Weak<UnixSocket>) -> SysResult<()>) -> SysResult<()> {
        let mut mine = self.name.lock().unwrap_or_else(|e| e.into_inner());
        if mine.is_some() {
            return error!(EINVAL);
        }
        if name.first() == Some(&0) {
            abstract_names.bind(&name, self)?;
        } else {
            node(self.me.clone())?;
        }
        *mine = Some(name);
        Ok(())
    }

    /// Binds an unbound socket to a free abstract name (bind(2) with only the
    /// family); a bound one keeps its name.
    pub fn autobind(&self, abstract_names: &AbstractNames) -> SysResult<()> {
        let mut mine = self.name.lock().unwrap_or_else(|e| e.into_inner());
        if mine.is_none() {
            *mine = Some(abstract_names.autobind(self)?);
        }
        Ok(())
    }

    /// A socket with SO_PASSCRED gets a name before it connects or sends
    /// datagrams, so that its messages have a sender to answer.
    fn autobind_for_creds(&self, t: &Task) -> SysResult<()> {
        if self.passcred() { self.autobind(&t.ns.net.abstract_sockets) } else { Ok(()) }
    }

    /// connect(2) to the socket `find` names: a datagram socket's new peer, or
    /// a listening socket, where a new socket joins this one in a pair and
    /// waits in the backlog for accept(2).
    pub fn connect_found(&self, t: &Task, find: Find) -> SysResult<()> {
        self.autobind_for_creds(t)?;
        let server = find()?;
        if self.kind == SOCK_DGRAM {
            if !server.hears_from(self).0 {
                return error!(EPERM);
            }
            self.set_peer(Some(&server));
            return Ok(());
        }
        match &*self.state() {
            State::Connected(_) | State::Peer(_) => return error!(EISCONN),
            State::Listening { .. } => return error!(EINVAL),
            State::Unconnected => {}
        }
        let me = self.me.upgrade().ok_or_else(|| rvisor_abi::errno!(ECONNREFUSED))?;
        let accepted = UnixSocket::new(self.kind, 0)?;
        t.kernel.unix_sockets.register(&accepted, t.ns.net.id);
        let limit = self.timeouts.limit(Way::Send);
        loop {
            let mut st = server.state();
            let State::Listening { backlog, max } = &mut *st else { return error!(ECONNREFUSED) };
            if backlog.len() < *max {
                join(&me, &accepted);
                *accepted.name.lock().unwrap_or_else(|e| e.into_inner()) = server.sun_name();
                *accepted.peer_name.lock().unwrap_or_else(|e| e.into_inner()) = self.sun_name();
                *accepted.peer_creds.lock().unwrap_or_else(|e| e.into_inner()) = Some(task_creds(t, true));
                // Linux 6.18 copies the listener's SO_PASSCRED at connect, so
                // what the client sends before accept(2) records credentials.
                accepted.set_passcred(server.passcred());
                *self.peer_name.lock().unwrap_or_else(|e| e.into_inner()) = server.sun_name();
                *self.peer_creds.lock().unwrap_or_else(|e| e.into_inner()) = server.peer_creds();
                backlog.push_back(accepted);
                drop(st);
                server.queue.notify_events(POLLIN);
                return Ok(());
            }
            drop(st);
            if self.nonblock(0) {
                return error!(EAGAIN);
            }
            server.queue.register(&t.thread);
            let r = limit.block(t, || match &*server.state() {
                State::Listening { backlog, max } => backlog.len() < *max,
                _ => true,
            });
            server.queue.unregister(&t.thread);
            r?;
        }
    }

    /// connect(2) of a datagram socket to AF_UNSPEC: it has no peer any more.
    pub fn disconnect(&self) {
        self.set_peer(None)
    }

    /// accept(2): the next connection's server end (EINVAL unless listening;
    /// datagram sockets have no accept).
    pub fn accept_conn(&self, t: &Task) -> SysResult<Arc<UnixSocket>> {
        if self.kind == SOCK_DGRAM {
            return error!(EOPNOTSUPP);
        }
        let limit = self.timeouts.limit(Way::Receive);
        loop {
            {
                let mut st = self.state();
                let State::Listening { backlog, .. } = &mut *st else { return error!(EINVAL) };
                if let Some(s) = backlog.pop_front() {
                    drop(st);
                    // A connector may be waiting for room.
                    self.queue.notify_events(POLLOUT);
                    return Ok(s);
                }
            }
            if self.nonblock(0) {
                return error!(EAGAIN);
            }
            self.wait(t, limit, || match &*self.state() {
                State::Listening { backlog, .. } => !backlog.is_empty(),
                _ => true,
            })?;
        }
    }
}


impl UnixSocket {
    fn nonblock(&self, flags: u32) -> bool {
        flags & MSG_DONTWAIT != 0 || self.flags.get() & crate::vfs::OpenFlags::NONBLOCK != 0
    }

    fn wait(&self, t: &Task, limit: Limit, ready: impl FnMut() -> bool) -> SysResult<()> {
        self.queue.register(&t.thread);
        let r = limit.block(t, ready);
        self.queue.unregister(&t.thread);
        r
    }

    /// A whole message as this socket receives it: cut to `max` bytes, with
    /// credentials if it has SO_PASSCRED.
    fn received(&self, m: Message, max: usize) -> Received {
        let full = m.data.len();
        let mut data = m.data;
        data.truncate(max);
        Received { data, full, files: m.files, from: m.from, creds: self.passcred().then(|| m.creds.unwrap_or(NO_CREDS)), control: Vec::new(), flags: 0, counted: false }
    }

    /// Receives into a Sentry buffer of at most `max` bytes (empty at EOF). A
    /// stream read does not go past a chunk that carried files, nor into one
    /// after having read bytes before it; with SO_PASSCRED, nor into a chunk
    /// with other credentials; on TCP, nor past an urgent mark after bytes.
    /// Short of those, a blocking stream read waits for its target (Linux's
    /// sock_rcvlowat): `max` bytes with MSG_WAITALL, else SO_RCVLOWAT's, at
    /// most `max`, unless EOF, an error, a signal or its timeout comes first
    /// (then it returns what it read). An AF_UNIX peek returns what is there
    /// (unix_stream_read_generic's peek stops at the queue's end); a TCP one
    /// looks again from the front until it sees the target.
    pub fn receive_message(&self, t: &Task, max: usize, flags: u32) -> SysResult<Received> {
        if self.kind == SOCK_DGRAM {
            return self.receive_datagram(t, max, flags);
        }
        let c = self.conn()?;
        let stream = self.kind == SOCK_STREAM;
        let peek = flags & MSG_PEEK != 0;
        let limit = self.timeouts.limit(Way::Receive);
        let target = match () {
            _ if peek && !self.tcp => 1,
            _ if flags & MSG_WAITALL != 0 => max,
            _ => self.buffers.rcvlowat(),
        }
        .min(max);
        let mut got = Received::default();
        let mut first_creds = None;
        loop {
            // A packet's pending error comes before what is queued, a stream's after (as in Linux).
            if !stream && self.take_reset() {
                return error!(ECONNRESET);
            }
            {
                let mut q = c.pair.queue(c.end);
                if !stream && !q.msgs.is_empty() {
                    // Dropped unlocked: its charge wakes the sender.
                    let m = q.take(peek);
                    drop(q);
                    if !peek {
                        c.pair.made_room(c.end);
                    }
                    if let Some(m) = m {
                        return Ok(self.received(m, max));
                    }
                    q = c.pair.queue(c.end);
                } else if !q.msgs.is_empty() {
                    if peek {
                        // What it saw is still there: it looks again.
                        got = Received::default();
                        first_creds = None;
                    } else if !got.data.is_empty() && q.at_urgent_mark() {
                        return Ok(got);
                    }
                    self.read_some(&mut q, &mut got, max, peek, &mut first_creds);
                    q.note_fin_read(peek);
                    // Stopped short of what is queued: at files, other
                    // credentials, an OOB byte or an urgent mark, which end a read.
                    let stopped = if peek { q.urgent.is_some() } else { !q.msgs.is_empty() };
                    drop(q);
                    if !peek {
                        c.pair.made_room(c.end);
                    }
                    let some = !got.data.is_empty() || !got.files.is_empty();
                    if (some || max == 0) && (got.data.len() >= target || !got.files.is_empty() || (stopped && got.data.len() < max)) {
                        return Ok(got);
                    }
                    q = c.pair.queue(c.end);
                }
                if !got.data.is_empty() && (q.write_shut || q.read_shut || self.reset_pending()) {
                    return Ok(got);
                }
                if self.take_reset() {
                    return error!(ECONNRESET);
                }
                if q.write_shut || q.read_shut {
                    q.note_fin_read(peek);
                    return Ok(got);
                }
            }
            if self.nonblock(flags) {
                return if got.data.is_empty() { error!(EAGAIN) } else { Ok(got) };
            }
            let waited = self.wait(t, limit, || {
                let q = c.pair.queue(c.end);
                self.wakes_reader(&c, &q) || q.write_shut || q.read_shut || self.reset.load(Ordering::Relaxed)
            });
            if let Err(e) = waited {
                return if got.data.is_empty() { Err(e) } else { Ok(got) };
            }
        }
    }

    /// Whether bytes in its queue `q` wake a blocked reader: any it would
    /// read, as far as `lowat_reached` says.
    fn wakes_reader(&self, c: &Conn, q: &Queue) -> bool {
        let inline = self.oob_inline();
        q.readable(inline) && q.has_bytes(inline) && self.lowat_reached(c, q)
    }

    /// Whether its queue `q` holds enough to wake a reader or poll readable:
    /// on TCP, SO_RCVLOWAT's bytes (Linux's tcp_data_ready and tcp_poll,
    /// which do not count what a blocked reader took already), or a closed
    /// window; AF_UNIX ignores it (unix_poll, and a reader wakes for any
    /// byte).
    fn lowat_reached(&self, c: &Conn, q: &Queue) -> bool {
        !self.tcp || q.bytes >= self.buffers.rcvlowat() || c.pair.room(c.end, q) == 0
    }

    /// What a stream read takes from its queue (not empty) into `got`, up
    /// to `max` bytes in all: nothing when it only skipped an urgent byte,
    /// or AF_UNIX OOB chunks.
    fn read_some(&self, q: &mut Queue, got: &mut Received, max: usize, peek: bool, first_creds: &mut Option<Option<Ucred>>) {
        if q.urgent.is_none() {
            self.read_stream(q, got, max, peek, first_creds);
        } else if let Some(data) = q.read_around_mark(max - got.data.len(), peek, self.oob_inline()) {
            got.data.extend_from_slice(&data);
        }
        got.full = got.data.len();
    }

    /// Up to `max` bytes in all from a stream's queue (not empty) into
    /// `got`, within the limits `receive` describes; `first_creds`: those of
    /// the first chunk it read.
    fn read_stream(&self, q: &mut Queue, got: &mut Received, max: usize, peek: bool, first_creds: &mut Option<Option<Ucred>>) {
        let passcred = self.passcred();
        let before = got.data.len();
        got.data.reserve(max.min(q.bytes));
        let mut i = 0;
        while got.data.len() < max {
            let Some(m) = q.msgs.get(i) else { break };
            if m.oob {
                match self.at_oob_chunk(q, &mut i, !got.data.is_empty(), peek) {
                    AtOob::Stop => break,
                    AtOob::Skip => continue,
                    AtOob::Read => {}
                }
            }
            let Some(m) = q.msgs.get_mut(i) else { break };
            if !got.data.is_empty() && (!m.files.is_empty() || (passcred && *first_creds != Some(m.creds))) {
                break;
            }
            if first_creds.is_none() {
                *first_creds = Some(m.creds);
                got.from = m.from.clone();
                got.creds = passcred.then(|| m.creds.unwrap_or(NO_CREDS));
            }
            let k = (max - got.data.len()).min(m.data.len());
            got.data.extend_from_slice(&m.data[..k]);
            let carried = !m.files.is_empty();
            got.files = if peek { m.files.clone() } else { std::mem::take(&mut m.files) };
            if !peek && k == m.data.len() {
                q.msgs.remove(i);
            } else {
                if !peek {
                    m.data.drain(..k);
                }
                i += 1;
            }
            if carried {
                break;
            }
        }
        if !peek {
            let n = got.data.len() - before;
            q.bytes -= n;
            q.taken += n as u64;
        }
    }

    /// What a stream read does at AF_UNIX OOB chunk `i` (Linux's
    /// manage_oob), after `copied` bytes or not: it stops before the pending
    /// byte, and before a taken one while none is pending. Else it skips a
    /// taken byte, and the pending one unless SO_OOBINLINE has it read as
    /// plain data; unless peeking, the reader has no OOB byte any more and
    /// what it skips goes (else `i` moves past it).
    fn at_oob_chunk(&self, q: &mut Queue, i: &mut usize, copied: bool, peek: bool) -> AtOob {
        let taken = q.msgs[*i].data.is_empty();
        if copied && (!taken || !q.oob) {
            return AtOob::Stop;
        }
        if !taken && !peek {
            q.oob = false;
            q.msgs[*i].oob = false;
        }
        if !taken && self.oob_inline() {
            return AtOob::Read;
        }
        if peek {
            *i += 1;
        } else {
            q.bytes -= q.msgs.remove(*i).map_or(0, |m| m.data.len());
        }
        AtOob::Skip
    }

    /// Takes the next datagram from its inbox; EOF once it shut down reading
    /// and the inbox is empty.
    fn receive_datagram(&self, t: &Task, max: usize, flags: u32) -> SysResult<Received> {
        let peek = flags & MSG_PEEK != 0;
        let limit = self.timeouts.limit(Way::Receive);
        loop {
            if self.take_reset() {
                return error!(ECONNRESET);
            }
            {
                let mut q = self.inbox();
                if let Some(m) = q.take(peek) {
                    drop(q);
                    if !peek {
                        self.room.notify_events(POLLOUT);
                    }
                    return Ok(self.received(m, max));
                }
                if q.read_shut {
                    return Ok(Received::default());
                }
            }
            if self.nonblock(flags) {
                return error!(EAGAIN);
            }
            self.wait(t, limit, || {
                let q = self.inbox();
                !q.msgs.is_empty() || q.read_shut || self.reset.load(Ordering::Relaxed)
            })?;
        }
    }

    /// Sends Sentry bytes, with `anc`'s files with the first of them: a stream
    /// takes what fits (waiting for room unless non-blocking), a datagram or
    /// packet goes whole or not at all. A datagram goes to the socket `to`
    /// finds, else to the peer; a seqpacket socket ignores `to`, a stream
    /// socket refuses it.
    pub fn send_message(&self, t: &Task, data: &[u8], flags: u32, anc: Ancillary, to: Option<Find>) -> SysResult<usize> {
        match self.kind {
            SOCK_DGRAM => return self.send_datagram(t, data, flags, anc, to),
            SOCK_STREAM if to.is_some() => return if self.conn().is_ok() { error!(EISCONN) } else { error!(EOPNOTSUPP) },
            _ => {}
        }
        // AF_UNIX's MSG_OOB: the last byte goes alone, as the OOB byte.
        let oob_byte = !self.tcp && self.kind == SOCK_STREAM && flags & MSG_OOB != 0;
        if oob_byte && data.is_empty() {
            return error!(EOPNOTSUPP);
        }
        let c = self.conn()?;
        if self.kind == SOCK_SEQPACKET {
            return self.send_packet(t, &c, data, flags, anc);
        }
        let limit = self.timeouts.limit(Way::Send);
        // No bytes, nothing sent (files without bytes are dropped, as
        // unix_stream_sendmsg's loop never runs); a shut side is EPIPE still.
        // TCP's (tcp_sendmsg) minds only its own: a peer that closed or shut
        // its reading side is no error for zero bytes.
        if data.is_empty() {
            let shut = {
                let q = c.pair.queue(c.peer());
                q.write_shut || (q.read_shut && !self.tcp)
            };
            if shut && flags & MSG_NOSIGNAL == 0 {
                crate::fs::pipe::sigpipe(t);
            }
            return if shut { error!(EPIPE) } else { Ok(0) };
        }
        let peer = c.pair.ends[c.peer()].upgrade();
        let peer_passcred = peer.as_ref().is_some_and(|p| p.passcred());
        // TCP's MSG_OOB: each push marks its last byte urgent, as Linux's
        // tcp_push marks what was written so far.
        let urgent = self.tcp && flags & MSG_OOB != 0;
        let peer_inline = urgent && peer.as_ref().is_some_and(|p| p.oob_inline());
        let plain = data.len() - usize::from(oob_byte);
        let creds = anc.creds.or_else(|| (self.passcred() || peer_passcred).then(|| task_creds(t, false)));
        let from = self.sun_name();
        let mut files = Some(anc.files);
        let mut sent = 0;
        loop {
            {
                let mut q = c.pair.queue(c.peer());
                if q.write_shut || q.read_shut {
                    drop(q);
                    if flags & MSG_NOSIGNAL == 0 {
                        crate::fs::pipe::sigpipe(t);
                    }
                    return if sent > 0 { Ok(sent) } else { error!(EPIPE) };
                }
                let before = sent;
                let mut marked = false;
                if self.tcp {
                    let fits = c.pair.room(c.peer(), &q).min(plain - sent);
                    if fits > 0 {
                        let files = files.take().unwrap_or_default();
                        q.msgs.push_back(Message { data: data[sent..sent + fits].to_vec(), files, from: from.clone(), creds, oob: false, _charge: None });
                        q.bytes += fits;
                        sent += fits;
                        let end = q.taken + q.bytes as u64;
                        marked = urgent && q.mark_urgent(end - 1, data[sent - 1], peer_inline);
                    }
                } else {
                    // Pieces while the send buffer is not full, each charged
                    // as Linux's sk_buff (sock_alloc_send_pskb), so the last
                    // may pass it.
                    let piece = super::skb::unix_stream_piece(self.buffers.get(Way::Send));
                    while sent < plain && self.has_send_room() {
                        let n = (plain - sent).min(piece);
                        let charge = self.charge(super::skb::unix_stream(n), false);
                        let files = files.take().unwrap_or_default();
                        q.msgs.push_back(Message { data: data[sent..sent + n].to_vec(), files, from: from.clone(), creds, oob: false, _charge: Some(charge) });
                        q.bytes += n;
                        sent += n;
                    }
                    if oob_byte && sent == plain && self.has_send_room() {
                        let charge = self.charge(super::skb::unix_stream(1), false);
                        let files = files.take().unwrap_or_default();
                        q.queue_oob(Message { data: data[plain..].to_vec(), files, from: from.clone(), creds, oob: true, _charge: Some(charge) });
                        sent += 1;
                        marked = true;
                    }
                }
                if sent > before {
                    drop(q);
                    c.pair.waiters[c.peer()].notify_events(if marked { POLLIN | POLLPRI } else { POLLIN });
                    if marked && oob_byte {
                        if let Some(p) = &peer {
                            crate::fs::fasync::send_sigurg(&(p.clone() as Arc<dyn FileDescription>));
                        }
                    }
                    if sent == data.len() {
                        return Ok(sent);
                    }
                }
            }
            if self.nonblock(flags) {
                return if sent > 0 { Ok(sent) } else { error!(EAGAIN) };
            }
            let waited = self.wait(t, limit, || {
                let q = c.pair.queue(c.peer());
                q.write_shut || q.read_shut || c.pair.takes_more(c.peer(), &q)
            });
            if let Err(e) = waited {
                return if sent > 0 { Ok(sent) } else { Err(e) };
            }
        }
    }

    /// A seqpacket send: Linux's is a datagram send to the peer
    /// (unix_seqpacket_sendmsg), whole once the send buffer takes it, and
    /// without SIGPIPE.
    fn send_packet(&self, t: &Task, c: &Conn, data: &[u8], flags: u32, anc: Ancillary) -> SysResult<usize> {
        self.autobind_for_creds(t)?;
        self.check_datagram_size(data.len())?;
        let shut = || {
            let q = c.pair.queue(c.peer());
            q.write_shut || q.read_shut
        };
        let charge = self.charge_datagram(t, data.len(), flags, shut)?;
        let peer_passcred = c.pair.ends[c.peer()].upgrade().is_some_and(|p| p.passcred());
        let creds = anc.creds.or_else(|| (self.passcred() || peer_passcred).then(|| task_creds(t, false)));
        let from = self.sun_name();
        {
            let mut q = c.pair.queue(c.peer());
            if q.write_shut || q.read_shut {
                return error!(EPIPE);
            }
            q.msgs.push_back(Message { data: data.to_vec(), files: anc.files, from, creds, oob: false, _charge: Some(charge) });
            q.bytes += data.len();
        }
        c.pair.waiters[c.peer()].notify_events(POLLIN);
        Ok(data.len())
    }

    /// EMSGSIZE for a datagram or packet its send buffer cannot hold.
    fn check_datagram_size(&self, len: usize) -> SysResult<()> {
        if len + DATAGRAM_SLACK > self.buffers.get(Way::Send) {
            return error!(EMSGSIZE);
        }
        Ok(())
    }

    /// Whether it polls writable (Linux's unix_writable): what it sent and
    /// is unread takes at most a quarter of its send buffer.
    fn writable(&self) -> bool {
        (self.sent.load(Ordering::Relaxed) + 1) * 4 <= self.buffers.get(Way::Send)
    }

    /// Whether its send buffer takes one more sk_buff, whatever its size
    /// (sock_alloc_send_pskb's test).
    fn has_send_room(&self) -> bool {
        self.sent.load(Ordering::Relaxed) + 1 < self.buffers.get(Way::Send)
    }

    /// Charges `size` bytes to its send buffer (`Charge`).
    fn charge(&self, size: usize, wake: bool) -> Arc<Charge> {
        self.sent.fetch_add(size, Ordering::Relaxed);
        Arc::new(Charge { sender: self.me.clone(), size, wake })
    }

    /// Waits until its send buffer takes one more datagram or packet of
    /// `len` bytes, and charges it (Linux's sock_alloc_send_pskb: it does
    /// while what it sent and is unread stays below SO_SNDBUF, so the last
    /// one may go past). A pending error comes first, then EPIPE once `shut`
    /// (its sending side is).
    fn charge_datagram(&self, t: &Task, len: usize, flags: u32, shut: impl Fn() -> bool) -> SysResult<Arc<Charge>> {
        let size = super::skb::unix_datagram(len);
        let limit = self.timeouts.limit(Way::Send);
        loop {
            if self.take_reset() {
                return error!(ECONNRESET);
            }
            if shut() {
                return error!(EPIPE);
            }
            let sndbuf = self.buffers.get(Way::Send);
            if self.sent.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| (s + 1 < sndbuf).then_some(s + size)).is_ok() {
                return Ok(Arc::new(Charge { sender: self.me.clone(), size, wake: true }));
            }
            if self.nonblock(flags) {
                return error!(EAGAIN);
            }
            self.wait(t, limit, || self.has_send_room() || shut() || self.reset_pending())?;
        }
    }

    /// A datagram to the socket `to` finds, or to the peer, in Linux's order
    /// of checks (unix_dgram_sendmsg): its own send buffer first, then the
    /// receiver's queue length.
    fn send_datagram(&self, t: &Task, data: &[u8], flags: u32, anc: Ancillary, to: Option<Find>) -> SysResult<usize> {
        let peer = if to.is_none() { self.peer().ok_or_else(|| rvisor_abi::errno!(ENOTCONN))? } else { Weak::new() };
        self.autobind_for_creds(t)?;
        self.check_datagram_size(data.len())?;
        let charge = self.charge_datagram(t, data.len(), flags, || self.inbox().write_shut)?;
        // Held weakly across waits, so that a receiver closed meanwhile goes.
        let target = match to {
            Some(find) => Arc::downgrade(&find()?),
            None => peer,
        };
        let from = self.sun_name();
        let limit = self.timeouts.limit(Way::Send);
        loop {
            let Some(dest) = target.upgrade() else {
                if to.is_none() {
                    self.set_peer(None);
                }
                return error!(ECONNREFUSED);
            };
            let (may, from_peer) = dest.hears_from(self);
            if !may {
                return error!(EPERM);
            }
            let creds = anc.creds.or_else(|| (self.passcred() || dest.passcred()).then(|| task_creds(t, false)));
            {
                let mut q = dest.inbox();
                if q.read_shut {
                    return error!(EPIPE);
                }
                if q.has_room(from_peer) {
                    q.msgs.push_back(Message { data: data.to_vec(), files: anc.files, from, creds, oob: false, _charge: Some(charge) });
                    q.bytes += data.len();
                    drop(q);
                    dest.queue.notify_events(POLLIN);
                    return Ok(data.len());
                }
            }
            if self.nonblock(flags) {
                return error!(EAGAIN);
            }
            let room = dest.room.clone();
            drop(dest);
            room.register(&t.thread);
            let r = limit.block(t, || {
                target.upgrade().is_none_or(|d| {
                    let (may, from_peer) = d.hears_from(self);
                    let q = d.inbox();
                    !may || q.read_shut || q.has_room(from_peer)
                })
            });
            room.unregister(&t.thread);
            r?;
        }
    }

    /// A stream send from no task (a host thread relaying a forwarded port,
    /// net/forward.rs): what fits now, never waiting (EAGAIN when full);
    /// EPIPE once either side shut the direction. No files, no credentials.
    pub fn try_send_stream(&self, data: &[u8]) -> SysResult<usize> {
        let c = self.conn()?;
        let sent = {
            let mut q = c.pair.queue(c.peer());
            if q.write_shut || q.read_shut {
                return error!(EPIPE);
            }
            let fits = c.pair.room(c.peer(), &q).min(data.len());
            if fits == 0 {
                return if data.is_empty() { Ok(0) } else { error!(EAGAIN) };
            }
            q.msgs.push_back(Message { data: data[..fits].to_vec(), files: Vec::new(), from: None, creds: None, oob: false, _charge: None });
            q.bytes += fits;
            fits
        };
        c.pair.waiters[c.peer()].notify_events(POLLIN);
        Ok(sent)
    }

    /// A stream receive from no task: at most `max` bytes of what is queued
    /// (empty at EOF), never waiting (EAGAIN when nothing is); a pending
    /// reset comes after what was queued, as `receive_message` has it.
    pub fn try_receive_stream(&self, max: usize) -> SysResult<Vec<u8>> {
        let c = self.conn()?;
        {
            let mut q = c.pair.queue(c.end);
            if !q.msgs.is_empty() {
                let mut got = Received::default();
                self.read_some(&mut q, &mut got, max, false, &mut None);
                q.note_fin_read(false);
                drop(q);
                c.pair.made_room(c.end);
                // Nothing when it only skipped an urgent byte.
                if max == 0 || !got.data.is_empty() {
                    return Ok(got.data);
                }
                q = c.pair.queue(c.end);
            }
            if self.take_reset() {
                return error!(ECONNRESET);
            }
            if q.write_shut || q.read_shut {
                q.note_fin_read(false);
                return Ok(Vec::new());
            }
        }
        error!(EAGAIN)
    }

    /// SO_OOBINLINE (of the TCP socket it serves, if it serves one).
    pub fn set_oob_inline(&self, on: bool) {
        self.oob_inline.store(on, Ordering::Relaxed);
    }

    fn oob_inline(&self) -> bool {
        self.oob_inline.load(Ordering::Relaxed)
    }

    /// recv(MSG_OOB) (Linux's tcp_recv_urg, unix_stream_recv_urg): the
    /// urgent (OOB) byte, taken unless peeking, with MSG_OOB in msg_flags
    /// (when `max` is 0, TCP's is MSG_TRUNC and AF_UNIX's counts as read,
    /// taken all the same). EINVAL with SO_OOBINLINE, or when there is none or it was
    /// taken; on AF_UNIX also without a connection.
    pub fn receive_urgent(&self, max: usize, peek: bool) -> SysResult<Received> {
        let c = self.conn().map_err(|e| if self.tcp { e } else { rvisor_abi::errno!(EINVAL) })?;
        let mut q = c.pair.queue(c.end);
        if self.oob_inline() {
            return error!(EINVAL);
        }
        let byte = match q.urgent {
            Some(Urgent { byte: Some(byte), .. }) => {
                if !peek {
                    q.urgent = q.urgent.map(|u| Urgent { byte: None, ..u });
                }
                byte
            }
            _ => q.take_oob(peek).ok_or_else(|| rvisor_abi::errno!(EINVAL))?,
        };
        drop(q);
        if !peek {
            c.pair.made_room(c.end);
        }
        let data = if max == 0 { Vec::new() } else { vec![byte] };
        // TCP's byte into no room is MSG_TRUNC and 0; AF_UNIX's counts 1.
        Ok(Received { data, full: 1, flags: MSG_OOB, counted: !self.tcp, ..Received::default() })
    }

    /// SIOCATMARK: whether the next byte read is the urgent one.
    pub fn at_mark(&self) -> bool {
        self.conn().is_ok_and(|c| c.pair.queue(c.end).at_mark())
    }

    /// FIONREAD on TCP (Linux's tcp_inq): what arrived (`arrived`), without
    /// SO_OOBINLINE only the bytes before an urgent mark.
    pub fn readable_bytes(&self) -> usize {
        let Ok(c) = self.conn() else { return 0 };
        let q = c.pair.queue(c.end);
        let arrived = c.pair.arrived(c.end, &q);
        match q.urgent {
            Some(u) if !self.oob_inline() => arrived.min(u.at.saturating_sub(q.taken) as usize),
            _ => arrived,
        }
    }

    /// TCP's SIOCOUTQ and SIOCOUTQNSD over loopback (Linux's write_seq less
    /// snd_una, and less snd_nxt): what it sent that its peer's window did
    /// not take, the bytes past the reader's half of the queue
    /// (`Pair::window`), and after shutdown(SHUT_WR) the FIN waiting behind
    /// them. Loopback acknowledges the rest at once, and sends nothing the
    /// window has no room for, so both are the same. (A FIN the window took
    /// counts as acknowledged at once: Linux's peer delays that ACK, by a
    /// timer, until it sends something.)
    pub fn unacked(&self) -> usize {
        self.conn().map_or(0, |c| c.pair.unacked(c.end))
    }

    /// The bytes waiting for it to read.
    pub fn queued(&self) -> usize {
        self.conn().map_or(0, |c| c.pair.queue(c.end).bytes)
    }

    /// TCP: the bytes that arrived for it to read (`Pair::arrived`); the
    /// rest its peer's SIOCOUTQ counts.
    pub fn arrived(&self) -> usize {
        self.conn().map_or(0, |c| c.pair.arrived(c.end, &c.pair.queue(c.end)))
    }

    /// Whether the other end of its connection was closed (for TCP, whose
    /// closed peer answers what is sent with a reset).
    pub fn peer_closed(&self) -> bool {
        self.conn().is_ok_and(|c| c.pair.ends[c.peer()].strong_count() == 0)
    }

    /// TCP: how its connection's FINs stand.
    pub fn fins(&self) -> Option<Fins> {
        self.conn().ok().map(|c| c.pair.fins(c.end))
    }

    /// TCP: its FINs as they will stand after it closed (the row its
    /// closed socket leaves follows them): the function keeps the
    /// connection's shared state, whose queues its ends empty as they close.
    pub fn fins_after_close(&self) -> Option<impl Fn() -> Fins + Send + Sync + 'static> {
        let c = self.conn().ok()?;
        Some(move || c.pair.fins(c.end))
    }

    /// Ends its connection with a reset: its peer has ECONNRESET pending and
    /// reads EOF after it (a TCP connection closed before it was accepted).
    pub fn abort(&self) {
        self.reset_peer();
        let _ = Socket::shutdown(self, 2);
    }

    /// Gives its connected peer a pending ECONNRESET.
    fn reset_peer(&self) {
        if let Ok(c) = self.conn() {
            c.pair.reset.store(true, Ordering::Relaxed);
            if let Some(peer) = c.pair.ends[c.peer()].upgrade() {
                peer.set_reset();
            }
        }
    }

    fn datagram_readiness(&self, mask: u32) -> u32 {
        let mut ev = 0;
        let (rd, wr) = {
            let q = self.inbox();
            if !q.msgs.is_empty() {
                ev |= POLLIN;
            }
            (q.read_shut, q.write_shut)
        };
        if rd {
            ev |= POLLIN | POLLRDHUP;
        }
        if rd && wr {
            ev |= POLLHUP;
        }
        if self.reset.load(Ordering::Relaxed) {
            ev |= POLLERR;
        }
        // Writable with room in its send buffer, unless its peer's queue is
        // full (and the peer not connected back to it): Linux's unix_dgram_poll.
        let full = self.peer().and_then(|w| w.upgrade()).is_some_and(|p| {
            let from_peer = p.hears_from(self).1;
            !p.inbox().has_room(from_peer)
        });
        if self.writable() && !full {
            ev |= POLLOUT;
        }
        ev & (mask | POLLHUP | POLLERR)
    }
}

const AF_UNIX: u16 = 1;
const AF_UNSPEC: u16 = 0;
/// sizeof(sun_path).
const SUN_PATH: usize = 108;

/// The name in a `struct sockaddr_un`: the sun_path bytes as getsockname
/// reports them (a path with its NUL, or an abstract name whole).
fn sun_path_of(raw: &[u8]) -> SysResult<Vec<u8>> {
    if !(2..=2 + SUN_PATH).contains(&raw.len()) || family_of(raw) != Some(AF_UNIX) {
        return error!(EINVAL);
    }
    let path = &raw[2..];
    match path.first() {
        None => error!(EINVAL),
        Some(0) => Ok(path.to_vec()),
        Some(_) => {
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            let mut name = path[..end].to_vec();
            name.push(0);
            Ok(name)
        }
    }
}

/// The family of a sockaddr (None if too short for one).
fn family_of(raw: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes([*raw.first()?, *raw.get(1)?]))
}

/// The path of a file-system name (without its NUL).
fn path_of(name: &[u8]) -> &[u8] {
    name.strip_suffix(&[0]).unwrap_or(name)
}

/// A whole `struct sockaddr_un` for a name (unnamed: the family alone).
fn sockaddr_un(name: Option<&[u8]>) -> Vec<u8> {
    let mut out = AF_UNIX.to_ne_bytes().to_vec();
    out.extend_from_slice(name.unwrap_or_default());
    out
}

/// The socket of type `kind` bound to the name in `raw`: ECONNREFUSED when
/// none is, EPROTOTYPE when a path names a socket of another type (abstract
/// names are per type).
fn find_bound(t: &Task, raw: &[u8], kind: i32) -> SysResult<Arc<UnixSocket>> {
    let name = sun_path_of(raw)?;
    let found = if name.first() == Some(&0) {
        let found = t.ns.net.abstract_sockets.lookup(kind, &name);
        if let Some(server) = &found {
            let theirs = server.creator_domain.lock().unwrap_or_else(|e| e.into_inner()).clone();
            crate::landlock::scope::may_reach_abstract(t.thread.landlock().as_deref(), theirs.as_deref())?;
        }
        found
    } else {
        let c = t.thread.fs_creds();
        let node = lookup_at_as(t, &c, AT_FDCWD, path_of(&name), crate::vfs::Follow::Yes, false)?;
        // Connecting writes to the socket: Linux asks for write permission.
        crate::vfs::perm::permission(&c, &*node.inode, crate::vfs::perm::MAY_WRITE)?;
        node.inode.bound_socket()
    };
    let found = found.ok_or_else(|| rvisor_abi::errno!(ECONNREFUSED))?;
    if found.kind != kind {
        return error!(EPROTOTYPE);
    }
    Ok(found)
}

const SOL_SOCKET: i32 = 1;
const SO_REUSEADDR: i32 = 2;
const SO_KEEPALIVE: i32 = 9;
const SO_REUSEPORT: i32 = 15;
const SO_OOBINLINE: i32 = 10;
const SO_PASSCRED: i32 = 16;
const SO_PEERCRED: i32 = 17;

/// What SO_PEERCRED reports when nothing recorded a peer: no pid, ids -1.
const NO_PEER_CREDS: Ucred = Ucred { pid: 0, uid: u32::MAX, gid: u32::MAX };

impl Socket for UnixSocket {
    fn domain(&self) -> i32 {
        i32::from(AF_UNIX)
    }

    fn kind(&self) -> i32 {
        self.kind
    }

    fn protocol(&self) -> i32 {
        0
    }

    /// bind(2) to a path (a socket node is made there) or an abstract name;
    /// an address that is the family alone autobinds.
    fn bind(&self, t: &Task, addr: &[u8]) -> SysResult<()> {
        if addr.len() == 2 && family_of(addr) == Some(AF_UNIX) {
            return self.autobind(&t.ns.net.abstract_sockets);
        }
        let name = sun_path_of(addr)?;
        let umask = t.fs.umask();
        self.bind_name(name.clone(), &t.ns.net.abstract_sockets, |me| {
            let c = t.thread.fs_creds();
            let (dir, leaf) = parent_at(t, &c, AT_FDCWD, path_of(&name))?;
            if dir.child(&leaf).is_ok() {
                return error!(EADDRINUSE);
            }
            if read_only(&dir) {
                return error!(EROFS);
            }
            crate::landlock::fs::may_make(&c, &dir, crate::vfs::inode::S_IFSOCK)?;
            crate::vfs::perm::may_create(&c, &dir)?;
            let made = dir.inode.mksock(&leaf, 0o777 & !umask, me)?;
            crate::vfs::perm::own_new(&c, &dir, &*made)?;
            dir.forget(&leaf);
            Ok(())
        })
    }

    /// listen(2): only bound stream and seqpacket sockets listen. The caller's
    /// credentials become what its clients see as their peer's.
    fn listen(&self, t: &Task, backlog: i32) -> SysResult<()> {
        if self.kind == SOCK_DGRAM {
            return error!(EOPNOTSUPP);
        }
        if self.sun_name().is_none() {
            return error!(EINVAL);
        }
        let max = usize::try_from(backlog).unwrap_or(0).clamp(1, SOMAXCONN);
        let mut st = self.state();
        match &mut *st {
            State::Connected(_) | State::Peer(_) => return error!(EINVAL),
            State::Listening { max: m, .. } => *m = max,
            State::Unconnected => *st = State::Listening { backlog: VecDeque::new(), max },
        }
        drop(st);
        *self.peer_creds.lock().unwrap_or_else(|e| e.into_inner()) = Some(task_creds(t, true));
        Ok(())
    }

    /// connect(2); a datagram socket connected to AF_UNSPEC has no peer any more.
    fn connect(&self, t: &Task, addr: &[u8]) -> SysResult<()> {
        if self.kind == SOCK_DGRAM && addr.len() >= 2 && family_of(addr) == Some(AF_UNSPEC) {
            self.disconnect();
            return Ok(());
        }
        self.connect_found(t, &|| find_bound(t, addr, self.kind))
    }

    fn accept(&self, t: &Task) -> SysResult<super::Accepted> {
        let conn = self.accept_conn(t)?;
        let peer = conn.sun_peer_name()?;
        Ok((conn, Some(sockaddr_un(peer.as_deref()))))
    }

    fn send(&self, t: &Task, data: &[u8], flags: u32, anc: Ancillary, to: Option<&[u8]>) -> SysResult<usize> {
        let find = |raw: &[u8]| find_bound(t, raw, self.kind);
        match to {
            Some(raw) => self.send_message(t, data, flags, anc, Some(&|| find(raw))),
            None => self.send_message(t, data, flags, anc, None),
        }
    }

    fn receive(&self, t: &Task, max: usize, flags: u32) -> SysResult<Received> {
        if flags & MSG_OOB != 0 {
            return self.receive_urgent(max, flags & MSG_PEEK != 0);
        }
        let mut got = self.receive_message(t, max, flags)?;
        got.from = got.from.map(|name| sockaddr_un(Some(&name)));
        Ok(got)
    }

    /// AF_UNIX has no error queue: the flag is ignored, as Linux's
    /// unix_*_recvmsg do.
    fn receive_error(&self, t: &Task, max: usize, flags: u32) -> SysResult<Received> {
        self.receive(t, max, flags & !super::MSG_ERRQUEUE)
    }

    /// Streams have OOB bytes (Linux's CONFIG_AF_UNIX_OOB).
    fn takes_oob(&self, _receiving: bool) -> bool {
        self.kind == SOCK_STREAM
    }

    /// shutdown(2): SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2). A datagram
    /// socket shuts only its own sides.
    fn shutdown(&self, how: i32) -> SysResult<()> {
        let (rd, wr) = super::shutdown_sides(how)?;
        if self.kind == SOCK_DGRAM {
            {
                let mut q = self.inbox();
                q.read_shut |= rd;
                q.write_shut |= wr;
            }
            self.queue.notify();
            self.room.notify();
            return Ok(());
        }
        // Linux accepts it on a socket without a connection, to no effect here.
        let Ok(c) = self.conn() else { return Ok(()) };
        if rd {
            c.pair.queue(c.end).read_shut = true;
        }
        if wr {
            c.pair.queue(c.peer()).write_shut = true;
        }
        c.pair.waiters[0].notify();
        c.pair.waiters[1].notify();
        Ok(())
    }

    fn name(&self) -> Vec<u8> {
        sockaddr_un(self.sun_name().as_deref())
    }

    fn peer_name(&self) -> SysResult<Vec<u8>> {
        Ok(sockaddr_un(self.sun_peer_name()?.as_deref()))
    }

    fn listening(&self) -> bool {
        matches!(*self.state(), State::Listening { .. })
    }

    fn take_error(&self) -> Option<ErrnoCode> {
        self.take_reset().then_some(ErrnoCode::ECONNRESET)
    }

    fn timeouts(&self) -> Option<&Timeouts> {
        Some(&self.timeouts)
    }

    fn buffer_sizes(&self) -> Option<&BufferSizes> {
        Some(&self.buffers)
    }

    /// SO_PEERCRED, SO_PASSCRED and SO_OOBINLINE; address reuse and
    /// keepalive mean nothing here and read 0.
    fn get_option(&self, t: &Task, level: i32, name: i32) -> SysResult<Vec<u8>> {
        if level != SOL_SOCKET {
            return error!(ENOPROTOOPT);
        }
        Ok(match name {
            SO_PEERCRED => self.peer_creds().map_or(NO_PEER_CREDS, |c| creds_seen_by(t, c)).as_bytes().to_vec(),
            SO_PASSCRED => i32::from(self.passcred()).to_ne_bytes().to_vec(),
            SO_OOBINLINE => i32::from(self.oob_inline()).to_ne_bytes().to_vec(),
            SO_REUSEADDR | SO_REUSEPORT | SO_KEEPALIVE => 0i32.to_ne_bytes().to_vec(),
            _ => return error!(ENOPROTOOPT),
        })
    }

    /// SO_PASSCRED and SO_OOBINLINE; address reuse and keepalive are
    /// accepted to no effect.
    fn set_option(&self, _t: &Task, level: i32, name: i32, value: &[u8]) -> SysResult<()> {
        if level != SOL_SOCKET || !matches!(name, SO_PASSCRED | SO_OOBINLINE | SO_REUSEADDR | SO_REUSEPORT | SO_KEEPALIVE) {
            return error!(ENOPROTOOPT);
        }
        let v = int_option(value)?;
        match name {
            SO_PASSCRED => self.set_passcred(v != 0),
            SO_OOBINLINE => self.set_oob_inline(v != 0),
            _ => {}
        }
        Ok(())
    }
}

impl Drop for UnixSocket {
    /// A closed end shuts its connection down both ways; a closed listener drops
    /// the connections it had not accepted (their clients see EOF); a closed
    /// datagram socket lets senders waiting for its room find it gone.
    fn drop(&mut self) {
        if self.kind == SOCK_DGRAM {
            if let Some(peer) = self.peer().and_then(|w| w.upgrade()) {
                peer.room.unregister_callback(&self.relay);
            }
            self.room.notify();
            return;
        }
        let pending = match &mut *self.state() {
            State::Listening { backlog, .. } => std::mem::take(backlog),
            _ => VecDeque::new(),
        };
        for s in pending {
            s.reset_peer();
        }
        // Closing with messages unread resets the peer, and drops them
        // (after the lock: files may close sockets, charges go back).
        let unread = self.conn().map(|c| {
            let mut q = c.pair.queue(c.end);
            (q.bytes, q.oob) = (0, false);
            std::mem::take(&mut q.msgs)
        });
        if unread.as_ref().is_ok_and(|m| !m.is_empty()) {
            self.reset_peer();
        }
        drop(unread);
        let _ = self.shutdown(2);
        // An AF_UNIX peer is shut down both ways (unix_release_sock), so it
        // polls hung up; a TCP peer got a FIN.
        if let Some(c) = self.conn().ok().filter(|_| !self.tcp) {
            c.pair.queue(c.end).write_shut = true;
            c.pair.waiters[c.peer()].notify();
        }
    }
}

impl FileDescription for UnixSocket {
    super::socket_file_basics!(super::STREAM_WRITE_MAX);

    fn readiness(&self, mask: u32) -> u32 {
        if self.kind == SOCK_DGRAM {
            return self.datagram_readiness(mask);
        }
        let c = match &*self.state() {
            State::Connected(c) => c.clone(),
            State::Listening { backlog, .. } => return if backlog.is_empty() { 0 } else { POLLIN & mask },
            // Linux's unconnected stream socket: hung up, and writable (to fail).
            State::Unconnected | State::Peer(_) => return (POLLOUT & mask) | POLLHUP,
        };
        let mut ev = 0;
        // One queue lock at a time (see `Pair`).
        let in_shut = {
            let q = c.pair.queue(c.end);
            if (q.readable(self.oob_inline()) && self.lowat_reached(&c, &q)) || q.write_shut || q.read_shut {
                ev |= POLLIN;
            }
            if q.urgent.is_some_and(|u| u.byte.is_some()) || q.oob {
                ev |= POLLPRI;
            }
            q.write_shut
        };
        let out_shut = {
            let q = c.pair.queue(c.peer());
            // AF_UNIX: its send buffer alone (unix_writable; a closed peer
            // dropped what it had not read).
            let out = if self.tcp { q.write_shut || q.read_shut || c.pair.room(c.peer(), &q) > 0 } else { self.writable() };
            if out {
                ev |= POLLOUT;
            }
            q.write_shut
        };
        if in_shut {
            ev |= POLLRDHUP;
        }
        if in_shut && out_shut {
            ev |= POLLHUP;
        }
        if self.reset.load(Ordering::Relaxed) {
            ev |= POLLERR;
        }
        ev & (mask | POLLHUP | POLLERR)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn ioctl(&self, t: &Task, request: u32, arg: u64) -> SysResult<u64> {
        const FIONREAD: u32 = 0x541B;
        const SIOCOUTQ: u32 = 0x5411;
        let out = |n: usize| t.mm.write_obj(crate::mm::UserRef::new(rvisor_abi::UserAddr(arg)), &(n as i32)).map(|()| 0);
        match request {
            _ if super::interface::is_interface_ioctl(request) => super::interface::ioctl(t, request, arg),
            // Linux's unix_inq_len: a datagram socket counts its next
            // datagram, the others all they hold; a listener has none.
            FIONREAD => match self.kind {
                SOCK_DGRAM => out(self.inbox().msgs.front().map_or(0, |m| m.data.len())),
                _ if self.listening() => error!(EINVAL),
                _ => out(self.queued()),
            },
            // Linux's unix_outq_len: what it sent and is unread costs.
            SIOCOUTQ => out(self.sent.load(Ordering::Relaxed)),
            // Only streams have OOB bytes; without a connection none is next.
            super::SIOCATMARK if self.kind == SOCK_STREAM => {
                let mark = i32::from(self.at_mark());
                t.mm.write_obj(crate::mm::UserRef::new(rvisor_abi::UserAddr(arg)), &mark).map(|()| 0)
            }
            super::SIOCATMARK => error!(EOPNOTSUPP),
            _ => error!(ENOTTY),
        }
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autobind_names() {
        let names = AbstractNames::default();
        let (a, b) = (UnixSocket::new(SOCK_DGRAM, 0).unwrap(), UnixSocket::new(SOCK_DGRAM, 0).unwrap());
        a.autobind(&names).unwrap();
        b.autobind(&names).unwrap();
        let (na, nb) = (a.sun_name().unwrap(), b.sun_name().unwrap());
        assert_eq!(na.len(), 6);
        assert_eq!(na[0], 0);
        assert!(na[1..].iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)));
        assert_ne!(na, nb);
        // A bound socket keeps its name.
        a.autobind(&names).unwrap();
        assert_eq!(a.sun_name().unwrap(), na);
        assert!(Arc::ptr_eq(&names.lookup(SOCK_DGRAM, &na).unwrap(), &a));
        // Each type has its own namespace.
        assert!(names.lookup(SOCK_STREAM, &na).is_none());
        let s = UnixSocket::new(SOCK_STREAM, 0).unwrap();
        s.bind_name(na.clone(), &names, |_| unreachable!()).unwrap();
        let d = UnixSocket::new(SOCK_DGRAM, 0).unwrap();
        assert_eq!(d.bind_name(na, &names, |_| unreachable!()).unwrap_err().code, rvisor_abi::ErrnoCode::EADDRINUSE);
    }

    #[test]
    fn inbox_room() {
        let mut q = Queue::default();
        for _ in 0..=MAX_DGRAM_QLEN {
            assert!(q.has_room(false));
            q.msgs.push_back(Message { data: vec![0], files: Vec::new(), from: None, creds: None, oob: false, _charge: None });
            q.bytes += 1;
        }
        // Full for others, not for the receiver's own peer.
        assert!(!q.has_room(false));
        assert!(q.has_room(true));
    }

    /// TCP's urgent mark in a stream queue: reads stop before it, skip its
    /// byte (peeking too) unless inline, and end it once past.
    #[test]
    fn urgent_marks() {
        let push = |q: &mut Queue, s: &[u8]| {
            q.msgs.push_back(Message { data: s.to_vec(), files: Vec::new(), from: None, creds: None, oob: false, _charge: None });
            q.bytes += s.len();
        };
        let mut q = Queue::default();
        push(&mut q, b"hello");
        assert!(q.mark_urgent(4, b'o', false));
        assert!(!q.mark_urgent(3, b'l', false));
        assert_eq!(q.read_around_mark(10, false, false).unwrap(), b"hell");
        assert!(q.at_mark());
        assert!(!q.readable(false) && q.readable(true));
        assert_eq!(q.read_around_mark(10, true, false), None);
        push(&mut q, b"world");
        assert_eq!(q.read_around_mark(10, true, false).unwrap(), b"world");
        assert_eq!(q.read_around_mark(10, false, true).unwrap(), b"oworld");
        assert!(q.urgent.is_none());
        assert_eq!((q.taken, q.bytes), (10, 0));
        // A new mark while the reader stands at the old one drops the old byte.
        push(&mut q, b"xy");
        assert!(q.mark_urgent(10, b'x', false));
        assert!(q.mark_urgent(11, b'y', false));
        assert_eq!((q.taken, q.bytes), (11, 1));
        assert!(q.at_mark());
    }

    /// AF_UNIX OOB chunks in a stream queue: a newer byte makes the old one
    /// plain data, reads stop before the pending one, and a taken one stops
    /// reads while none is pending, then goes.
    #[test]
    fn oob_chunks() {
        let s = UnixSocket::new(SOCK_STREAM, 0).unwrap();
        let chunk = |d: &[u8]| Message { data: d.to_vec(), files: Vec::new(), from: None, creds: None, oob: false, _charge: None };
        let push = |q: &mut Queue, d: &[u8]| {
            q.msgs.push_back(chunk(d));
            q.bytes += d.len();
        };
        let read = |q: &mut Queue| {
            let mut got = Received::default();
            s.read_stream(q, &mut got, 10, false, &mut None);
            got.data
        };
        let mut q = Queue::default();
        push(&mut q, b"ab");
        q.queue_oob(chunk(b"c"));
        q.queue_oob(chunk(b"d"));
        assert!(!q.at_mark());
        assert_eq!(read(&mut q), b"abc");
        assert!(q.at_mark() && !q.has_bytes(false) && q.has_bytes(true));
        assert_eq!(q.take_oob(true), Some(b'd'));
        assert_eq!(q.take_oob(false), Some(b'd'));
        assert_eq!(q.take_oob(false), None);
        assert!(q.at_mark() && q.bytes == 0 && !q.has_bytes(false));
        push(&mut q, b"x");
        q.queue_oob(chunk(b"y"));
        assert_eq!(q.take_oob(false), Some(b'y'));
        push(&mut q, b"z");
        assert_eq!(read(&mut q), b"x");
        assert_eq!(read(&mut q), b"z");
        assert!(q.msgs.is_empty());
    }

    #[test]
    fn datagram_peers() {
        let (a, b) = socketpair(SOCK_DGRAM, 0, NO_CREDS).unwrap();
        assert_eq!(b.hears_from(&a), (true, true));
        let c = UnixSocket::new(SOCK_DGRAM, 0).unwrap();
        assert_eq!(b.hears_from(&c), (false, false));
        assert_eq!(c.hears_from(&a), (true, false));
        // A closed peer leaves a dead one behind, as Linux does.
        drop(a);
        assert!(b.peer().is_some_and(|w| w.upgrade().is_none()));
        b.disconnect();
        assert!(b.peer().is_none());
        assert_eq!(b.hears_from(&c), (true, false));
    }

    /// The calls a host thread relays a forwarded TCP connection with
    /// (net/forward.rs): never blocking, and EOF, EPIPE and resets as a
    /// task's calls see them.
    #[test]
    fn task_free_stream_calls() {
        let code = |r: SysResult<usize>| r.unwrap_err().code;
        let [a, b] = connected_streams([Arc::default(), Arc::default()], [Arc::default(), Arc::default()], [Arc::default(), Arc::default()]);
        assert_eq!(a.try_receive_stream(10).unwrap_err().code, ErrnoCode::EAGAIN);
        assert_eq!(a.try_send_stream(b"hello").unwrap(), 5);
        assert_eq!(b.try_receive_stream(3).unwrap(), b"hel");
        assert_eq!(b.try_receive_stream(10).unwrap(), b"lo");
        // A full buffer takes what fits, then nothing.
        let big = vec![7u8; crate::net::BUFFER + 10];
        assert_eq!(a.try_send_stream(&big).unwrap(), crate::net::BUFFER);
        assert_eq!(code(a.try_send_stream(b"x")), ErrnoCode::EAGAIN);
        assert_eq!(b.try_receive_stream(crate::net::BUFFER).unwrap().len(), crate::net::BUFFER);
        // A half-close: EOF for the reader, EPIPE for the writer; the other way still flows.
        Socket::shutdown(&*a, 1).unwrap();
        assert_eq!(b.try_receive_stream(10).unwrap(), b"");
        assert_eq!(code(a.try_send_stream(b"x")), ErrnoCode::EPIPE);
        assert_eq!(b.try_send_stream(b"back").unwrap(), 4);
        assert_eq!(a.try_receive_stream(10).unwrap(), b"back");
        // A reset: what was queued first, then ECONNRESET, then EOF.
        assert_eq!(b.try_send_stream(b"last").unwrap(), 4);
        b.abort();
        assert_eq!(a.try_receive_stream(10).unwrap(), b"last");
        assert_eq!(a.try_receive_stream(10).unwrap_err().code, ErrnoCode::ECONNRESET);
        assert_eq!(a.try_receive_stream(10).unwrap(), b"");
    }
}
