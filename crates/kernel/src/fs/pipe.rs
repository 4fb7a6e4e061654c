//! Pipes (pipe, pipe2), with Linux's semantics.
//!
//! A `Pipe` is a ring of page-sized buffers, as in Linux: its capacity is counted
//! in slots (16 by default, 64 KiB), a small write merges into the last buffer when
//! the data fits in that buffer's page, and a write of at most `PIPE_BUF` bytes is
//! atomic because it always lands in one buffer. Modelling the slots rather than a
//! byte count makes how much a non-blocking writer can put in (and FIONREAD) agree
//! with Linux's exactly. Data lives in the Sentry's heap (a `VecDeque` of pages);
//! backing it with the memory file can come later.
//!
//! Each end is its own open file description (`PipeFile`); dropping the last
//! reference to an end (the last close) updates the pipe's reader and writer
//! counts, which give EOF to readers and EPIPE/SIGPIPE to writers.
//!
//! `O_DIRECT` (pipe2 or F_SETFL on the write end) is packet mode: each write makes
//! its own buffers, never merged, and a read takes at most one buffer, dropping
//! what does not fit in the reader's buffer.
//!
//! A named FIFO (mknod S_IFIFO on tmpfs) is a `Pipe` its inode keeps; each open
//! makes another end. A blocking open waits for the other side by generation:
//! a reader waits until some writer has opened since it came (not until one is
//! still open), so a writer that opens and closes at once still wakes it.

use crate::vfs::StatusFlags;
use super::user_io::RangeCursor;
use crate::mm::UserBuffers;
use crate::task::signals::{send_to_thread, SigInfo, SI_USER};
use crate::task::Task;
use crate::vfs::readiness::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::vfs::{Dentry, FileDescription, WaitQueue};
use rvisor_abi::structs::{Stat, Timespec};
use rvisor_abi::{errno, error, SysResult, UserAddr};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Writes of at most this many bytes are atomic.
pub const PIPE_BUF: usize = 4096;
const PAGE: usize = 4096;
/// Default capacity: 16 pages.
pub const DEFAULT_SLOTS: usize = 16;
/// /proc/sys/fs/pipe-max-size: the most an unprivileged F_SETPIPE_SZ may ask for.
/// The sandbox has no CAP_SYS_RESOURCE, so this holds for everyone.
pub const PIPE_MAX_SIZE: u64 = 1 << 20;

pub const F_SETPIPE_SZ: i32 = 1031;
pub const F_GETPIPE_SZ: i32 = 1032;
pub const FIONREAD: u32 = 0x541B;
pub const FIONBIO: u32 = 0x5421;

pub const O_WRONLY: u32 = 0o1;
const O_ACCMODE: u32 = 0o3;
const O_RDWR: u32 = 0o2;
pub const O_NONBLOCK: u32 = 0o4000;
pub const O_DIRECT: u32 = 0o40000;

/// The device number pipes report (Linux's pipefs is an anonymous device too).
const PIPEFS_DEV: u64 = 0xd;
static NEXT_INO: AtomicU64 = AtomicU64::new(0x10000);

/// One slot: at most a page of data, `off` bytes of which have been read.
struct Buf {
    data: Vec<u8>,
    off: usize,
    /// Written in packet mode: never merged into, read whole.
    packet: bool,
}

impl Buf {
    fn len(&self) -> usize {
        self.data.len() - self.off
    }
}

struct State {
    bufs: VecDeque<Buf>,
    /// Capacity in slots (F_SETPIPE_SZ).
    slots: usize,
    readers: usize,
    writers: usize,
    /// Ends ever opened for reading and for writing (FIFO opens wait on these).
    readers_opened: u64,
    writers_opened: u64,
}

impl State {
    fn full(&self) -> bool {
        self.bufs.len() >= self.slots
    }

    fn bytes(&self) -> usize {
        self.bufs.iter().map(Buf::len).sum()
    }
}

/// What both ends of a pipe share.
pub struct Pipe {
    /// Taken alone; never held while notifying a wait queue or blocking.
    state: Mutex<State>,
    /// Readers wait here for data or EOF; writers notify it.
    rd_queue: WaitQueue,
    /// Writers wait here for room or for the last reader to go; readers notify it.
    wr_queue: WaitQueue,
    ino: u64,
    uid: u32,
    gid: u32,
    ctime: Timespec,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes waiting to be read (FIONREAD).
    pub fn bytes(&self) -> usize {
        self.lock().bytes()
    }

    /// What a `put` takes without waiting: its free slots' pages.
    pub fn room(&self) -> usize {
        let st = self.lock();
        st.slots.saturating_sub(st.bufs.len()) * PAGE
    }

    /// F_GETPIPE_SZ.
    pub fn size(&self) -> u64 {
        (self.lock().slots * PAGE) as u64
    }

    /// F_SETPIPE_SZ: rounds up to a power of two of pages; EBUSY if the data
    /// already in the pipe would not fit, EPERM above /proc/sys/fs/pipe-max-size.
    pub fn set_size(&self, arg: u64) -> SysResult<u64> {
        let size = arg as u32 as u64;
        if size > 1 << 31 {
            return error!(EINVAL);
        }
        let size = if size < PAGE as u64 { PAGE as u64 } else { size.next_power_of_two() };
        let slots = (size / PAGE as u64) as usize;
        let grew = {
            let mut st = self.lock();
            if slots > st.slots && size > PIPE_MAX_SIZE {
                return error!(EPERM);
            }
            if slots < st.bufs.len() {
                return error!(EBUSY);
            }
            let grew = slots > st.slots;
            st.slots = slots;
            grew
        };
        if grew {
            self.wr_queue.notify_events(POLLOUT | POLLWRNORM);
        }
        Ok(size)
    }

    /// Waits (unless `nonblock`) until the pipe has data or no writer is left.
    /// Returns false at EOF.
    fn wait_readable(&self, t: &Task, nonblock: bool) -> SysResult<bool> {
        loop {
            {
                let st = self.lock();
                if !st.bufs.is_empty() {
                    return Ok(true);
                }
                if st.writers == 0 {
                    return Ok(false);
                }
            }
            if nonblock {
                return error!(EAGAIN);
            }
            self.rd_queue.register(&t.thread);
            let r = t.block_until(None, || {
                let st = self.lock();
                !st.bufs.is_empty() || st.writers == 0
            });
            self.rd_queue.unregister(&t.thread);
            r?;
        }
    }

    fn read(&self, t: &Task, bufs: &UserBuffers, nonblock: bool) -> SysResult<usize> {
        if bufs.total() == 0 {
            return Ok(0);
        }
        loop {
            // Linux finds EOF (or waits for data) before it copies: a bad buffer
            // only fails once there is something to copy. The buffers are
            // translated after the wait, so no memory-file range is held across it
            // (the app may unmap them meanwhile).
            if !self.wait_readable(t, nonblock)? {
                return Ok(0);
            }
            let ranges = t.mm.translate_buffers(bufs, true)?;
            let mut st = self.lock();
            if st.bufs.is_empty() {
                // Another reader took it.
                continue;
            }
            let was_full = st.full();
            let mut cur = RangeCursor::new(t.mm.memory_file(), ranges);
            let mut n = 0;
            while cur.remaining() > 0 {
                let Some(b) = st.bufs.front_mut() else { break };
                let k = cur.write(&b.data[b.off..]);
                n += k;
                b.off += k;
                let packet = b.packet;
                if packet {
                    // The rest of a packet that did not fit is dropped.
                    b.off = b.data.len();
                }
                if b.len() == 0 {
                    st.bufs.pop_front();
                }
                if packet {
                    break;
                }
            }
            drop(st);
            if was_full {
                self.wr_queue.notify_events(POLLOUT | POLLWRNORM);
            }
            return Ok(n);
        }
    }

    fn write(&self, t: &Task, bufs: &UserBuffers, nonblock: bool, packet: bool) -> SysResult<usize> {
        let total = bufs.total() as usize;
        if total == 0 {
            return Ok(0);
        }
        let r = self.write_all(t, bufs, total, nonblock, packet);
        // Readers hear of every write (epoll's edge-triggered mode relies on it),
        // even one that put nothing in.
        self.rd_queue.notify_events(POLLIN | POLLRDNORM);
        r
    }

    fn write_all(&self, t: &Task, bufs: &UserBuffers, total: usize, nonblock: bool, packet: bool) -> SysResult<usize> {
        let partial = |written: usize, e: rvisor_abi::Errno| if written > 0 { Ok(written) } else { Err(e) };
        let mut written = 0;
        let mut first = true;
        loop {
            // What is left of the buffers, translated with no pipe lock held and
            // afresh after every wait (the app may unmap them while we block).
            let ranges = t.mm.translate_buffers(&skip(bufs, written as u64), false);
            let mut st = self.lock();
            if st.readers == 0 {
                drop(st);
                sigpipe(t);
                return partial(written, errno!(EPIPE));
            }
            let ranges = match ranges {
                Ok(r) => r,
                Err(e) => return partial(written, e),
            };
            let mut cur = RangeCursor::new(t.mm.memory_file(), ranges);
            if first {
                first = false;
                // The part of the write that is not a whole number of pages goes
                // into the last buffer if it fits there entirely (even in packet
                // mode, if that buffer was not written in packet mode: Linux checks
                // only the buffer).
                let chars = total % PAGE;
                if let Some(last) = st.bufs.back_mut().filter(|l| chars != 0 && !l.packet && l.data.len() + chars <= PAGE) {
                    let n = cur.read_append(&mut last.data, chars);
                    written += n;
                    if n < chars {
                        return partial(written, errno!(EFAULT));
                    }
                    if written == total {
                        return Ok(written);
                    }
                }
            }
            loop {
                if st.readers == 0 {
                    drop(st);
                    sigpipe(t);
                    return partial(written, errno!(EPIPE));
                }
                if st.full() {
                    break;
                }
                let want = PAGE.min(total - written);
                let mut data = Vec::with_capacity(if packet { want } else { PAGE });
                let n = cur.read_append(&mut data, want);
                if n > 0 {
                    st.bufs.push_back(Buf { data, off: 0, packet });
                }
                written += n;
                if n < want {
                    return partial(written, errno!(EFAULT));
                }
                if written == total {
                    return Ok(written);
                }
            }
            drop(st);
            if let Err(e) = self.wait_for_room(t, nonblock, written) {
                return partial(written, e);
            }
        }
    }
}

impl Pipe {
    /// Up to `max` bytes for splice, tee and sendfile, waiting (unless
    /// `nonblock`) for data; empty at EOF. `consume: false` (tee) leaves them in.
    pub fn take(&self, t: &Task, max: usize, nonblock: bool, consume: bool) -> SysResult<Vec<u8>> {
        loop {
            if max == 0 || !self.wait_readable(t, nonblock)? {
                return Ok(Vec::new());
            }
            let mut st = self.lock();
            let was_full = st.full();
            let mut out = Vec::new();
            if consume {
                while out.len() < max {
                    let Some(b) = st.bufs.front_mut() else { break };
                    let k = b.len().min(max - out.len());
                    out.extend_from_slice(&b.data[b.off..b.off + k]);
                    b.off += k;
                    if b.len() == 0 {
                        st.bufs.pop_front();
                    }
                }
            } else {
                for b in &st.bufs {
                    let k = b.len().min(max - out.len());
                    out.extend_from_slice(&b.data[b.off..b.off + k]);
                    if out.len() == max {
                        break;
                    }
                }
            }
            drop(st);
            if out.is_empty() {
                // Another reader took it first.
                continue;
            }
            if consume && was_full {
                self.wr_queue.notify_events(POLLOUT | POLLWRNORM);
            }
            return Ok(out);
        }
    }

    /// A writer that found the pipe full (having put `written` bytes in so far)
    /// waits for room or for the last reader to go; EAGAIN if `nonblock`. The
    /// caller holds no pipe lock.
    fn wait_for_room(&self, t: &Task, nonblock: bool, written: usize) -> SysResult<()> {
        if nonblock {
            return error!(EAGAIN);
        }
        if t.signal_pending() {
            return error!(ERESTARTSYS);
        }
        if written > 0 {
            self.rd_queue.notify_events(POLLIN | POLLRDNORM);
        }
        self.wr_queue.register(&t.thread);
        let r = t.block_until(None, || {
            let st = self.lock();
            !st.full() || st.readers == 0
        });
        self.wr_queue.unregister(&t.thread);
        r.map(|_| ())
    }

    /// EPIPE (and SIGPIPE) if no reader is left: splice checks before it reads.
    pub fn ensure_reader(&self, t: &Task) -> SysResult<()> {
        if self.lock().readers == 0 {
            sigpipe(t);
            return error!(EPIPE);
        }
        Ok(())
    }

    /// Writes Sentry bytes (splice, tee, sendfile into a pipe), waiting for room
    /// unless `nonblock`; with no reader left, SIGPIPE and EPIPE.
    pub fn put(&self, t: &Task, data: &[u8], nonblock: bool) -> SysResult<usize> {
        let partial = |written: usize, e: rvisor_abi::Errno| if written > 0 { Ok(written) } else { Err(e) };
        let mut written = 0;
        let r = loop {
            let mut st = self.lock();
            if st.readers == 0 {
                drop(st);
                sigpipe(t);
                break partial(written, errno!(EPIPE));
            }
            while !st.full() && written < data.len() {
                let k = PAGE.min(data.len() - written);
                st.bufs.push_back(Buf { data: data[written..written + k].to_vec(), off: 0, packet: false });
                written += k;
            }
            if written == data.len() {
                break Ok(written);
            }
            drop(st);
            if let Err(e) = self.wait_for_room(t, nonblock, written) {
                break partial(written, e);
            }
        };
        self.rd_queue.notify_events(POLLIN | POLLRDNORM);
        r
    }
}

/// `bufs` without its first `n` bytes.
fn skip(bufs: &UserBuffers, mut n: u64) -> UserBuffers {
    let mut out = UserBuffers::default();
    for &(addr, len) in &bufs.iovs {
        if n >= len {
            n -= len;
            continue;
        }
        match addr.0.checked_add(n) {
            Some(a) => out.iovs.push((UserAddr(a), len - n)),
            None => break,
        }
        n = 0;
    }
    out
}

/// A writer with no reader gets SIGPIPE, as from itself (send_sig(..., 0)).
/// A write to a pipe or socket nobody reads: SIGPIPE to the writing thread.
pub(crate) fn sigpipe(t: &Task) {
    let info = SigInfo::new(rvisor_abi::consts::SIGPIPE, SI_USER).with_sender(t.tg.tgid, t.tg.creds().uid);
    send_to_thread(&t.thread, info);
}

/// One end of a pipe: an open file description.
pub struct PipeFile {
    /// Its OFD and flock locks, released when it goes.
    locks: crate::vfs::locks::FileLocks,
    pipe: Arc<Pipe>,
    readable: bool,
    writable: bool,
    flags: StatusFlags,
    /// A FIFO's name in the tree (fstat and /proc/self/fd show it); None for pipe(2).
    fifo: Option<Arc<Dentry>>,
}

impl PipeFile {
    fn new(pipe: Arc<Pipe>, readable: bool, writable: bool, flags: u32, fifo: Option<Arc<Dentry>>) -> PipeFile {
        {
            let mut st = pipe.lock();
            st.readers += readable as usize;
            st.writers += writable as usize;
            st.readers_opened += readable as u64;
            st.writers_opened += writable as u64;
        }
        PipeFile { pipe, readable, writable, flags: StatusFlags::new(flags), fifo, locks: Default::default() }
    }

    fn nonblock(&self) -> bool {
        self.status_flags() & O_NONBLOCK != 0
    }
}

impl Drop for PipeFile {
    fn drop(&mut self) {
        {
            let mut st = self.pipe.lock();
            st.readers -= self.readable as usize;
            st.writers -= self.writable as usize;
        }
        let all = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM | POLLERR | POLLHUP;
        self.pipe.rd_queue.notify_events(all);
        self.pipe.wr_queue.notify_events(all);
        if let Some(d) = &self.fifo {
            crate::fs::inotify::closed(d, self.writable);
        }
    }
}

impl Pipe {
    /// An empty pipe with no ends yet, owned by `t`'s effective ids.
    pub fn new(t: &Task) -> Arc<Pipe> {
        let creds = t.tg.creds();
        Pipe::with_owner(creds.euid, creds.egid, crate::time::to_timespec(t.kernel.clocks.realtime_ns()))
    }

    /// The pipe behind a FIFO inode: its ends stat as the inode, so the owner
    /// and time here are never shown.
    pub fn for_fifo() -> Arc<Pipe> {
        Pipe::with_owner(0, 0, Timespec { tv_sec: 0, tv_nsec: 0 })
    }

    fn with_owner(uid: u32, gid: u32, ctime: Timespec) -> Arc<Pipe> {
        Arc::new(Pipe {
            state: Mutex::new(State { bufs: VecDeque::new(), slots: DEFAULT_SLOTS, readers: 0, writers: 0, readers_opened: 0, writers_opened: 0 }),
            rd_queue: WaitQueue::default(),
            wr_queue: WaitQueue::default(),
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            uid,
            gid,
            ctime,
        })
    }

    /// Opens an end of an anonymous pipe. `flags` are the status flags F_GETFL
    /// reports (access mode, O_NONBLOCK, O_DIRECT).
    fn open(self: &Arc<Pipe>, readable: bool, writable: bool, flags: u32) -> Arc<PipeFile> {
        Arc::new(PipeFile::new(self.clone(), readable, writable, flags, None))
    }

    /// open(2) of the FIFO at `dentry`: O_RDWR opens both ends at once; a
    /// blocking read-only (write-only) open waits for a writer (reader);
    /// a non-blocking write-only open without a reader is ENXIO.
    pub fn open_fifo(self: &Arc<Pipe>, t: &Task, dentry: Arc<Dentry>, flags: u32) -> SysResult<Arc<PipeFile>> {
        let (readable, writable) = match flags & O_ACCMODE {
            0 => (true, false),
            O_WRONLY => (false, true),
            O_RDWR => (true, true),
            _ => return error!(EINVAL),
        };
        let nonblock = flags & O_NONBLOCK != 0;
        // The other side's open count before ours: any later change is a partner.
        let partner_before = {
            let st = self.lock();
            if writable && !readable && nonblock && st.readers == 0 {
                return error!(ENXIO);
            }
            match (readable, writable) {
                (true, false) if st.writers == 0 => Some(st.writers_opened),
                (false, true) if st.readers == 0 => Some(st.readers_opened),
                _ => None,
            }
        };
        let file = Arc::new(PipeFile::new(self.clone(), readable, writable, flags & (O_ACCMODE | O_NONBLOCK), Some(dentry)));
        let all = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;
        self.rd_queue.notify_events(all);
        self.wr_queue.notify_events(all);
        let Some(before) = partner_before.filter(|_| !nonblock) else { return Ok(file) };
        let queue = if readable { &self.rd_queue } else { &self.wr_queue };
        queue.register(&t.thread);
        let r = t.block_until(None, || {
            let st = self.lock();
            (if readable { st.writers_opened } else { st.readers_opened }) != before
        });
        queue.unregister(&t.thread);
        // Interrupted: dropping `file` closes the end again.
        r.map(|_| file)
    }
}

/// Makes a new pipe: (read end, write end). `flags` are pipe2's O_NONBLOCK and
/// O_DIRECT (the write end's packet mode).
pub fn new_pipe(t: &Task, flags: u32) -> (Arc<PipeFile>, Arc<PipeFile>) {
    let pipe = Pipe::new(t);
    let r = pipe.open(true, false, flags & O_NONBLOCK);
    let w = pipe.open(false, true, O_WRONLY | (flags & (O_NONBLOCK | O_DIRECT)));
    (r, w)
}

/// fcntl's F_GETPIPE_SZ and F_SETPIPE_SZ on `file`: EBADF if it is not a pipe.
pub fn fcntl_pipe_size(file: &dyn FileDescription, cmd: i32, arg: u64) -> SysResult<u64> {
    let pipe = file.pipe().ok_or_else(|| errno!(EBADF))?;
    match cmd {
        F_GETPIPE_SZ => Ok(pipe.size()),
        F_SETPIPE_SZ => pipe.set_size(arg),
        _ => error!(EINVAL),
    }
}

impl FileDescription for PipeFile {
    fn read(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if offset.is_some() {
            return error!(ESPIPE);
        }
        if !self.readable {
            return error!(EBADF);
        }
        self.pipe.read(t, bufs, self.nonblock())
    }

    fn write(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if offset.is_some() {
            return error!(ESPIPE);
        }
        if !self.writable {
            return error!(EBADF);
        }
        let flags = self.status_flags();
        self.pipe.write(t, bufs, flags & O_NONBLOCK != 0, flags & O_DIRECT != 0)
    }

    fn stat(&self) -> SysResult<Stat> {
        if let Some(d) = &self.fifo {
            return d.inode.stat();
        }
        let p = &self.pipe;
        let mut st = Stat::zeroed();
        st.st_dev = PIPEFS_DEV;
        st.st_ino = p.ino;
        st.st_nlink = 1;
        st.st_mode = crate::vfs::inode::S_IFIFO | 0o600;
        st.st_uid = p.uid;
        st.st_gid = p.gid;
        st.st_blksize = PAGE as i64;
        st.st_atime = p.ctime.tv_sec;
        st.st_atime_nsec = p.ctime.tv_nsec;
        st.st_mtime = p.ctime.tv_sec;
        st.st_mtime_nsec = p.ctime.tv_nsec;
        st.st_ctime = p.ctime.tv_sec;
        st.st_ctime_nsec = p.ctime.tv_nsec;
        Ok(st)
    }

    fn ioctl(&self, t: &Task, request: u32, arg: u64) -> SysResult<u64> {
        match request {
            FIONREAD => {
                let n = self.pipe.bytes() as i32;
                t.mm.write_obj(UserAddr(arg).into(), &n)?;
                Ok(0)
            }
            FIONBIO => {
                let on: i32 = t.mm.read_obj(UserAddr(arg).into())?;
                let fl = self.status_flags();
                self.flags.set(if on != 0 { fl | O_NONBLOCK } else { fl & !O_NONBLOCK });
                Ok(0)
            }
            _ => error!(ENOTTY),
        }
    }

    fn flags(&self) -> Option<&crate::vfs::StatusFlags> {
        Some(&self.flags)
    }

    fn readiness(&self, mask: u32) -> u32 {
        let st = self.pipe.lock();
        let mut m = 0;
        if self.readable {
            if !st.bufs.is_empty() {
                m |= POLLIN | POLLRDNORM;
            }
            if st.writers == 0 {
                m |= POLLHUP;
            }
        }
        if self.writable {
            if !st.full() {
                m |= POLLOUT | POLLWRNORM;
            }
            if st.readers == 0 {
                m |= POLLERR;
            }
        }
        m & mask
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        // An O_RDWR end (a FIFO) waits with the readers: it misses the writers'
        // wake-ups (room freed by reads) until the trait can name two queues.
        Some(if self.readable { &self.pipe.rd_queue } else { &self.pipe.wr_queue })
    }

    fn pipe(&self) -> Option<&Arc<Pipe>> {
        Some(&self.pipe)
    }

    fn dentry(&self) -> Option<Arc<Dentry>> {
        self.fifo.clone()
    }
    fn file_locks(&self) -> Option<&crate::vfs::locks::FileLocks> {
        Some(&self.locks)
    }

    fn write_from(&self, t: &Task, data: &[u8], offset: Option<u64>) -> SysResult<usize> {
        if offset.is_some() {
            return error!(ESPIPE);
        }
        if !self.writable {
            return error!(EBADF);
        }
        self.pipe.put(t, data, self.nonblock())
    }
}
