//! AF_UNIX socket pairs (socketpair(2)): two connected ends, each direction a
//! queue in the Sentry. SOCK_STREAM carries bytes; SOCK_DGRAM and
//! SOCK_SEQPACKET carry whole messages (a short read drops the rest of one).
//! Open files travel with the bytes they were sent with (SCM_RIGHTS). Named
//! sockets (bind/connect/accept on a path) are not here yet.

use crate::fs::simple::{copy_in, copy_out};
use crate::mm::UserBuffers;
use crate::task::Task;
use crate::vfs::{FileDescription, StatusFlags, WaitQueue, POLLHUP, POLLIN, POLLOUT};
use rvisor_abi::structs::Stat;
use rvisor_abi::{error, SysResult};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

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
}

/// The two ends' shared state. The queue locks are leaves, never held together.
pub struct Pair {
    kind: i32,
    /// `queues[i]` holds what end `i` reads.
    queues: [Mutex<Queue>; 2],
    /// `waiters[i]`: end `i`'s readers and writers.
    waiters: [WaitQueue; 2],
    ino: [u64; 2],
}

impl Pair {
    fn queue(&self, i: usize) -> MutexGuard<'_, Queue> {
        self.queues[i].lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One end of a socket pair.
pub struct UnixSocket {
    pair: Arc<Pair>,
    end: usize,
    flags: StatusFlags,
}

/// A connected pair of sockets of type `kind`, with status `flags` (O_NONBLOCK).
pub fn socketpair(kind: i32, flags: u32) -> SysResult<(Arc<UnixSocket>, Arc<UnixSocket>)> {
    if !matches!(kind, SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET) {
        return error!(ESOCKTNOSUPPORT);
    }
    let ino = NEXT_INO.fetch_add(2, Ordering::Relaxed);
    let pair = Arc::new(Pair { kind, queues: Default::default(), waiters: Default::default(), ino: [ino, ino + 1] });
    let end = |end| Arc::new(UnixSocket { pair: pair.clone(), end, flags: StatusFlags::new(flags | 2) });
    Ok((end(0), end(1)))
}

/// recvmsg/sendmsg flags the pair understands.
pub const MSG_PEEK: u32 = 0x2;
pub const MSG_TRUNC: u32 = 0x20;
pub const MSG_DONTWAIT: u32 = 0x40;
pub const MSG_WAITALL: u32 = 0x100;
pub const MSG_NOSIGNAL: u32 = 0x4000;

impl UnixSocket {
    fn peer(&self) -> usize {
        1 - self.end
    }

    pub fn kind(&self) -> i32 {
        self.pair.kind
    }

    fn nonblock(&self, flags: u32) -> bool {
        flags & MSG_DONTWAIT != 0 || self.flags.get() & crate::vfs::OpenFlags::NONBLOCK != 0
    }

    fn wait(&self, t: &Task, ready: impl FnMut() -> bool) -> SysResult<()> {
        let q = &self.pair.waiters[self.end];
        q.register(&t.thread);
        let r = t.block_until(None, ready);
        q.unregister(&t.thread);
        r
    }

    /// Receives into a Sentry buffer of at most `max` bytes (empty at EOF). A
    /// stream read does not go past a chunk that carried files, nor into one
    /// after having read bytes before it.
    pub fn receive(&self, t: &Task, max: usize, flags: u32) -> SysResult<Received> {
        let stream = self.pair.kind == SOCK_STREAM;
        let peek = flags & MSG_PEEK != 0;
        loop {
            {
                let mut q = self.pair.queue(self.end);
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
                        self.pair.waiters[self.peer()].notify_events(POLLOUT);
                    }
                    return Ok(got);
                }
                if q.write_shut || q.read_shut {
                    return Ok(Received { data: Vec::new(), full: 0, files: Vec::new() });
                }
            }
            if self.nonblock(flags) {
                return error!(EAGAIN);
            }
            self.wait(t, || {
                let q = self.pair.queue(self.end);
                !q.msgs.is_empty() || q.write_shut || q.read_shut
            })?;
        }
    }

    /// Sends Sentry bytes, and `files` with the first of them: a stream takes
    /// what fits (waiting for room unless non-blocking), a datagram or packet
    /// goes whole or not at all.
    pub fn send(&self, t: &Task, data: &[u8], flags: u32, files: Vec<Arc<dyn FileDescription>>) -> SysResult<usize> {
        let stream = self.pair.kind == SOCK_STREAM;
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
                let mut q = self.pair.queue(self.peer());
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
                    self.pair.waiters[self.peer()].notify_events(POLLIN);
                    if sent == data.len() {
                        return Ok(sent);
                    }
                }
            }
            if self.nonblock(flags) {
                return if sent > 0 { Ok(sent) } else { error!(EAGAIN) };
            }
            let waited = self.wait(t, || {
                let q = self.pair.queue(self.peer());
                q.write_shut || q.read_shut || BUFFER.saturating_sub(q.bytes) >= if stream { 1 } else { data.len() }
            });
            if let Err(e) = waited {
                return if sent > 0 { Ok(sent) } else { Err(e) };
            }
        }
    }

    /// shutdown(2): SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2).
    pub fn shutdown(&self, how: i32) -> SysResult<()> {
        let (rd, wr) = match how {
            0 => (true, false),
            1 => (false, true),
            2 => (true, true),
            _ => return error!(EINVAL),
        };
        if rd {
            self.pair.queue(self.end).read_shut = true;
        }
        if wr {
            self.pair.queue(self.peer()).write_shut = true;
        }
        self.pair.waiters[0].notify();
        self.pair.waiters[1].notify();
        Ok(())
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
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
        st.st_ino = self.pair.ino[self.end];
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
        Some(format!("socket:[{}]", self.pair.ino[self.end]).into_bytes())
    }

    fn readiness(&self, mask: u32) -> u32 {
        let mut ev = 0;
        // One queue lock at a time (see `Pair`).
        let in_shut = {
            let q = self.pair.queue(self.end);
            if !q.msgs.is_empty() || q.write_shut || q.read_shut {
                ev |= POLLIN;
            }
            q.write_shut
        };
        let out_shut = {
            let q = self.pair.queue(self.peer());
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
        Some(&self.pair.waiters[self.end])
    }

    fn ioctl(&self, t: &Task, request: u32, arg: u64) -> SysResult<u64> {
        const FIONREAD: u32 = 0x541B;
        match request {
            FIONREAD => {
                let q = self.pair.queue(self.end);
                let n = if self.pair.kind == SOCK_STREAM { q.bytes } else { q.msgs.front().map_or(0, |m| m.data.len()) };
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
