//! AF_UNIX sockets. Two connected sockets share a `Pair`, each direction a
//! queue in the Sentry: SOCK_STREAM carries bytes; SOCK_DGRAM and
//! SOCK_SEQPACKET carry whole messages (a short read drops the rest of one).
//! Open files travel with the bytes they were sent with (SCM_RIGHTS).
//! Connections come from socketpair(2), or from connect(2) to a listening
//! socket found by path (a socket node) or abstract name; a datagram socket
//! cannot yet connect or send to a name.
//!
//! Lock order: a listener's state before a connecting socket's (connect), then
//! a pair's queue locks, which are leaves and never held together.

use crate::fs::simple::{copy_in, copy_out};
use crate::mm::UserBuffers;
use crate::task::Task;
use crate::vfs::{FileDescription, StatusFlags, WaitQueue, POLLHUP, POLLIN, POLLOUT};
use rvisor_abi::structs::Stat;
use rvisor_abi::{error, SysResult};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

pub const SOCK_STREAM: i32 = 1;
pub const SOCK_DGRAM: i32 = 2;
pub const SOCK_SEQPACKET: i32 = 5;

const POLLRDHUP: u32 = 0x2000;
const S_IFSOCK: u32 = 0o140000;
const SOCKFS_DEV: u64 = 0x8;
static NEXT_INO: AtomicU64 = AtomicU64::new(0x20000);

/// What one direction holds at most (Linux's default socket buffer is ~208 KiB).
pub const BUFFER: usize = 208 << 10;

/// What one send queued: its bytes and the files passed with them.
struct Message {
    data: Vec<u8>,
    files: Vec<Arc<dyn FileDescription>>,
}

/// What a receive took: bytes, the length of the message they came from, and
/// the files that came with them.
pub struct Received {
    pub data: Vec<u8>,
    pub full: usize,
    pub files: Vec<Arc<dyn FileDescription>>,
}

/// One direction: what one end wrote and the other has yet to read.
#[derive(Default)]
struct Queue {
    /// Messages, or for a stream, chunks whose boundaries only matter where
    /// files were passed (a read stops after the chunk that carries them).
    msgs: VecDeque<Message>,
    bytes: usize,
    /// The writer shut down its sending side (or closed): readers see EOF.
    write_shut: bool,
    /// The reader shut down its receiving side (or closed): writers get EPIPE.
    read_shut: bool,
    /// The connection was never accepted and its listener closed: the next
    /// read is ECONNRESET.
    reset: bool,
}

/// The two ends' shared state.
pub struct Pair {
    /// `queues[i]` holds what end `i` reads.
    queues: [Mutex<Queue>; 2],
    /// `waiters[i]`: the wait queue of the socket at end `i`.
    waiters: [Arc<WaitQueue>; 2],
}

impl Pair {
    fn queue(&self, i: usize) -> MutexGuard<'_, Queue> {
        self.queues[i].lock().unwrap_or_else(|e| e.into_inner())
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
}

/// An AF_UNIX socket.
pub struct UnixSocket {
    kind: i32,
    ino: u64,
    me: Weak<UnixSocket>,
    flags: StatusFlags,
    /// Woken when this socket's readiness may change: data, room, a connection.
    queue: Arc<WaitQueue>,
    /// Leaf lock.
    state: Mutex<State>,
    /// The address it is bound to, as getsockname reports it (sun_path bytes).
    name: Mutex<Option<Vec<u8>>>,
    /// Its peer's address, for getpeername.
    peer_name: Mutex<Option<Vec<u8>>>,
}

fn check_kind(kind: i32) -> SysResult<()> {
    if matches!(kind, SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET) { Ok(()) } else { error!(ESOCKTNOSUPPORT) }
}

impl UnixSocket {
    /// socket(2): a new socket of type `kind`, with status `flags` (O_NONBLOCK).
    pub fn new(kind: i32, flags: u32) -> SysResult<Arc<UnixSocket>> {
        check_kind(kind)?;
        Ok(Arc::new_cyclic(|me| UnixSocket {
            kind,
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            me: me.clone(),
            flags: StatusFlags::new(flags | 2),
            queue: Arc::default(),
            state: Mutex::new(State::Unconnected),
            name: Mutex::default(),
            peer_name: Mutex::default(),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn conn(&self) -> SysResult<Conn> {
        match &*self.state() {
            State::Connected(c) => Ok(c.clone()),
            _ => error!(ENOTCONN),
        }
    }
}

/// Connects two sockets of one type through a new pair.
fn join(a: &Arc<UnixSocket>, b: &Arc<UnixSocket>) {
    let pair = Arc::new(Pair { queues: Default::default(), waiters: [a.queue.clone(), b.queue.clone()] });
    *a.state() = State::Connected(Conn { pair: pair.clone(), end: 0 });
    *b.state() = State::Connected(Conn { pair, end: 1 });
}

/// A connected pair of sockets of type `kind`, with status `flags` (O_NONBLOCK).
pub fn socketpair(kind: i32, flags: u32) -> SysResult<(Arc<UnixSocket>, Arc<UnixSocket>)> {
    let (a, b) = (UnixSocket::new(kind, flags)?, UnixSocket::new(kind, flags)?);
    join(&a, &b);
    Ok((a, b))
}

/// Most connections a listener queues (Linux's somaxconn).
const SOMAXCONN: usize = 4096;

/// The abstract socket namespace (names starting with a NUL byte): one per
/// sandbox, in no file system.
#[derive(Default)]
pub struct AbstractNames {
    /// Leaf lock.
    names: Mutex<std::collections::HashMap<Vec<u8>, Weak<UnixSocket>>>,
}

impl AbstractNames {
    fn bind(&self, name: &[u8], s: &UnixSocket) -> SysResult<()> {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        names.retain(|_, w| w.strong_count() > 0);
        if names.contains_key(name) {
            return error!(EADDRINUSE);
        }
        names.insert(name.to_vec(), s.me.clone());
        Ok(())
    }

    pub fn lookup(&self, name: &[u8]) -> Option<Arc<UnixSocket>> {
        self.names.lock().unwrap_or_else(|e| e.into_inner()).get(name).and_then(Weak::upgrade)
    }
}

impl UnixSocket {
    /// The address bind(2) gave it (getsockname), if any.
    pub fn name(&self) -> Option<Vec<u8>> {
        self.name.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The peer's address (getpeername): ENOTCONN unless connected.
    pub fn peer_name(&self) -> SysResult<Option<Vec<u8>>> {
        self.conn()?;
        Ok(self.peer_name.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Binds to `name` (the sun_path bytes getsockname will report): `node`
    /// makes the file-system socket node, or the name goes in the abstract
    /// namespace when it starts with a NUL.
    pub fn bind(&self, name: Vec<u8>, abstract_names: &AbstractNames, node: impl FnOnce(Weak<UnixSocket>) -> SysResult<()>) -> SysResult<()> {
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

    pub fn listening(&self) -> bool {
        matches!(*self.state(), State::Listening { .. })
    }

    /// listen(2): only bound stream and seqpacket sockets listen.
    pub fn listen(&self, backlog: i32) -> SysResult<()> {
        if self.kind == SOCK_DGRAM {
            return error!(EOPNOTSUPP);
        }
        if self.name().is_none() {
            return error!(EINVAL);
        }
        let max = usize::try_from(backlog).unwrap_or(0).clamp(1, SOMAXCONN);
        let mut st = self.state();
        match &mut *st {
            State::Connected(_) => error!(EINVAL),
            State::Listening { max: m, .. } => {
                *m = max;
                Ok(())
            }
            State::Unconnected => {
                *st = State::Listening { backlog: VecDeque::new(), max };
                Ok(())
            }
        }
    }

    /// connect(2) to the listening socket `server`: a new socket joins this one
    /// in a pair and waits in the server's backlog for accept(2).
    pub fn connect(&self, t: &Task, server: &Arc<UnixSocket>) -> SysResult<()> {
        match &*self.state() {
            State::Connected(_) => return error!(EISCONN),
            State::Listening { .. } => return error!(EINVAL),
            State::Unconnected => {}
        }
        if server.kind != self.kind {
            return error!(EPROTOTYPE);
        }
        let me = self.me.upgrade().ok_or_else(|| rvisor_abi::errno!(ECONNREFUSED))?;
        let accepted = UnixSocket::new(self.kind, 0)?;
        loop {
            let mut st = server.state();
            let State::Listening { backlog, max } = &mut *st else { return error!(ECONNREFUSED) };
            if backlog.len() < *max {
                join(&me, &accepted);
                *accepted.name.lock().unwrap_or_else(|e| e.into_inner()) = server.name();
                *accepted.peer_name.lock().unwrap_or_else(|e| e.into_inner()) = self.name();
                *self.peer_name.lock().unwrap_or_else(|e| e.into_inner()) = server.name();
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
            let r = t.block_until(None, || match &*server.state() {
                State::Listening { backlog, max } => backlog.len() < *max,
                _ => true,
            });
            server.queue.unregister(&t.thread);
            r?;
        }
    }

    /// accept(2): the next connection's server end (EINVAL unless listening).
    pub fn accept(&self, t: &Task, nonblock: bool) -> SysResult<Arc<UnixSocket>> {
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
            if nonblock || self.nonblock(0) {
                return error!(EAGAIN);
            }
            self.wait(t, || match &*self.state() {
                State::Listening { backlog, .. } => !backlog.is_empty(),
                _ => true,
            })?;
        }
    }
}

/// recvmsg/sendmsg flags the pair understands.
pub const MSG_PEEK: u32 = 0x2;
pub const MSG_TRUNC: u32 = 0x20;
pub const MSG_DONTWAIT: u32 = 0x40;
pub const MSG_WAITALL: u32 = 0x100;
pub const MSG_NOSIGNAL: u32 = 0x4000;

impl UnixSocket {
    pub fn kind(&self) -> i32 {
        self.kind
    }

    fn nonblock(&self, flags: u32) -> bool {
        flags & MSG_DONTWAIT != 0 || self.flags.get() & crate::vfs::OpenFlags::NONBLOCK != 0
    }

    fn wait(&self, t: &Task, ready: impl FnMut() -> bool) -> SysResult<()> {
        self.queue.register(&t.thread);
        let r = t.block_until(None, ready);
        self.queue.unregister(&t.thread);
        r
    }

    /// Receives into a Sentry buffer of at most `max` bytes (empty at EOF). A
    /// stream read does not go past a chunk that carried files, nor into one
    /// after having read bytes before it.
    pub fn receive(&self, t: &Task, max: usize, flags: u32) -> SysResult<Received> {
        let c = self.conn()?;
        let stream = self.kind == SOCK_STREAM;
        let peek = flags & MSG_PEEK != 0;
        loop {
            {
                let mut q = c.pair.queue(c.end);
                if !q.msgs.is_empty() {
                    let got = if stream {
                        let mut got = Received { data: Vec::with_capacity(max.min(q.bytes)), full: 0, files: Vec::new() };
                        let mut i = 0;
                        while got.data.len() < max {
                            let Some(m) = q.msgs.get_mut(i) else { break };
                            if !m.files.is_empty() && !got.data.is_empty() {
                                break;
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
                            q.bytes -= got.data.len();
                        }
                        got.full = got.data.len();
                        got
                    } else {
                        let m = if peek {
                            q.msgs.front().map(|m| Message { data: m.data.clone(), files: m.files.clone() })
                        } else {
                            q.msgs.pop_front()
                        };
                        let Some(m) = m else { continue };
                        if !peek {
                            q.bytes -= m.data.len();
                        }
                        let full = m.data.len();
                        let mut data = m.data;
                        data.truncate(max);
                        Received { data, full, files: m.files }
                    };
                    drop(q);
                    if !peek {
                        c.pair.waiters[c.peer()].notify_events(POLLOUT);
                    }
                    return Ok(got);
                }
                if std::mem::take(&mut q.reset) {
                    return error!(ECONNRESET);
                }
                if q.write_shut || q.read_shut {
                    return Ok(Received { data: Vec::new(), full: 0, files: Vec::new() });
                }
            }
            if self.nonblock(flags) {
                return error!(EAGAIN);
            }
            self.wait(t, || {
                let q = c.pair.queue(c.end);
                !q.msgs.is_empty() || q.write_shut || q.read_shut
            })?;
        }
    }

    /// Sends Sentry bytes, and `files` with the first of them: a stream takes
    /// what fits (waiting for room unless non-blocking), a datagram or packet
    /// goes whole or not at all.
    pub fn send(&self, t: &Task, data: &[u8], flags: u32, files: Vec<Arc<dyn FileDescription>>) -> SysResult<usize> {
        let c = self.conn()?;
        let stream = self.kind == SOCK_STREAM;
        if stream && data.is_empty() && files.is_empty() {
            return Ok(0);
        }
        let mut files = Some(files);
        if !stream && data.len() > BUFFER {
            return error!(EMSGSIZE);
        }
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
                let room = BUFFER.saturating_sub(q.bytes);
                let fits = if stream { room.min(data.len() - sent) } else if room >= data.len() { data.len() } else { 0 };
                if fits > 0 || data.is_empty() {
                    q.msgs.push_back(Message { data: data[sent..sent + fits].to_vec(), files: files.take().unwrap_or_default() });
                    q.bytes += fits;
                    sent += fits;
                    drop(q);
                    c.pair.waiters[c.peer()].notify_events(POLLIN);
                    if sent == data.len() {
                        return Ok(sent);
                    }
                }
            }
            if self.nonblock(flags) {
                return if sent > 0 { Ok(sent) } else { error!(EAGAIN) };
            }
            let waited = self.wait(t, || {
                let q = c.pair.queue(c.peer());
                q.write_shut || q.read_shut || BUFFER.saturating_sub(q.bytes) >= if stream { 1 } else { data.len() }
            });
            if let Err(e) = waited {
                return if sent > 0 { Ok(sent) } else { Err(e) };
            }
        }
    }

    /// shutdown(2): SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2).
    pub fn shutdown(&self, how: i32) -> SysResult<()> {
        let c = self.conn()?;
        let (rd, wr) = match how {
            0 => (true, false),
            1 => (false, true),
            2 => (true, true),
            _ => return error!(EINVAL),
        };
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
}

impl Drop for UnixSocket {
    /// A closed end shuts its connection down both ways; a closed listener drops
    /// the connections it had not accepted (their clients see EOF).
    fn drop(&mut self) {
        let pending = match &mut *self.state() {
            State::Listening { backlog, .. } => std::mem::take(backlog),
            _ => VecDeque::new(),
        };
        for s in pending {
            if let Ok(c) = s.conn() {
                c.pair.queue(c.peer()).reset = true;
            }
        }
        let _ = self.shutdown(2);
    }
}

impl FileDescription for UnixSocket {
    fn read(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if offset.is_some() {
            return error!(ESPIPE);
        }
        // Files passed with the bytes are closed: read(2) has nowhere to put them.
        let got = self.receive(t, (bufs.total() as usize).min(BUFFER), 0)?;
        copy_out(t, bufs, &got.data)
    }

    fn write(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if offset.is_some() {
            return error!(ESPIPE);
        }
        let data = copy_in(t, bufs, BUFFER.max(bufs.total().min(1 << 24) as usize))?;
        self.send(t, &data, 0, Vec::new())
    }

    fn stat(&self) -> SysResult<Stat> {
        let mut st = Stat::zeroed();
        st.st_dev = SOCKFS_DEV;
        st.st_ino = self.ino;
        st.st_nlink = 1;
        st.st_mode = S_IFSOCK | 0o777;
        st.st_blksize = 4096;
        Ok(st)
    }

    fn status_flags(&self) -> u32 {
        self.flags.get()
    }

    fn set_status_flags(&self, flags: u32) {
        self.flags.set(flags)
    }

    fn proc_name(&self) -> Option<Vec<u8>> {
        Some(format!("socket:[{}]", self.ino).into_bytes())
    }

    fn readiness(&self, mask: u32) -> u32 {
        let c = match &*self.state() {
            State::Connected(c) => c.clone(),
            State::Listening { backlog, .. } => return if backlog.is_empty() { 0 } else { POLLIN & mask },
            // Linux's unconnected stream socket: hung up, and writable (to fail).
            State::Unconnected => return (POLLOUT & mask) | POLLHUP,
        };
        let mut ev = 0;
        // One queue lock at a time (see `Pair`).
        let in_shut = {
            let q = c.pair.queue(c.end);
            if !q.msgs.is_empty() || q.write_shut || q.read_shut {
                ev |= POLLIN;
            }
            q.write_shut
        };
        let out_shut = {
            let q = c.pair.queue(c.peer());
            if q.write_shut || q.read_shut || q.bytes < BUFFER {
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
        ev & (mask | POLLHUP)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn ioctl(&self, t: &Task, request: u32, arg: u64) -> SysResult<u64> {
        const FIONREAD: u32 = 0x541B;
        match request {
            FIONREAD => {
                let c = self.conn()?;
                let q = c.pair.queue(c.end);
                let n = if self.kind == SOCK_STREAM { q.bytes } else { q.msgs.front().map_or(0, |m| m.data.len()) };
                drop(q);
                t.mm.write_obj(crate::mm::UserRef::new(rvisor_abi::UserAddr(arg)), &(n as i32)).map(|()| 0)
            }
            _ => error!(ENOTTY),
        }
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
