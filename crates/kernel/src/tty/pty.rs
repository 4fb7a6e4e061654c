//! The open ends of a pseudo-terminal (`PtyFile`: the master from /dev/ptmx, a
//! replica from /dev/pts/N, /dev/tty or /dev/console), and the terminal ioctls.

use super::ldisc::{VMIN, VTIME};
use super::{background_check, Terminal};
use crate::fs::simple::{copy_in, copy_out};
use crate::mm::{UserBuffers, UserRef};
use crate::task::Task;
use crate::vfs::inode::OpenFlags;
use crate::vfs::{Dentry, FileDescription, StatusFlags, WaitQueue};
use rvisor_abi::consts::{SIGTTIN, SIGTTOU};
use rvisor_abi::structs::{Stat, Termios, Winsize};
use rvisor_abi::{error, SysResult, UserAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TCGETS: u32 = 0x5401;
const TCSETS: u32 = 0x5402;
const TCSETSW: u32 = 0x5403;
const TCSETSF: u32 = 0x5404;
const TCSBRK: u32 = 0x5409;
const TCXONC: u32 = 0x540A;
const TCFLSH: u32 = 0x540B;
const TIOCEXCL: u32 = 0x540C;
const TIOCNXCL: u32 = 0x540D;
const TIOCSCTTY: u32 = 0x540E;
const TIOCGPGRP: u32 = 0x540F;
const TIOCSPGRP: u32 = 0x5410;
const TIOCOUTQ: u32 = 0x5411;
const TIOCGWINSZ: u32 = 0x5413;
const TIOCSWINSZ: u32 = 0x5414;
const FIONREAD: u32 = 0x541B;
const TIOCNOTTY: u32 = 0x5422;
const TCSBRKP: u32 = 0x5425;
const TIOCGSID: u32 = 0x5429;
const TIOCGPTN: u32 = 0x8004_5430;
const TIOCSPTLCK: u32 = 0x4004_5431;
const TIOCGPTLCK: u32 = 0x8004_5439;

/// Largest chunk one read or write moves through the Sentry at a time.
const CHUNK: usize = 64 << 10;

/// Waits on `queue` until `ready`, a signal (ERESTARTSYS) or `deadline`.
fn wait(t: &Task, queue: &WaitQueue, nonblock: bool, deadline: Option<Instant>, ready: impl FnMut() -> bool) -> SysResult<()> {
    if nonblock {
        return error!(EAGAIN);
    }
    queue.register(&t.thread);
    let r = t.block_until(deadline, ready);
    queue.unregister(&t.thread);
    r
}

fn is_nonblock(flags: &StatusFlags) -> bool {
    flags.get() & OpenFlags::NONBLOCK != 0
}

/// One open end of a pty. The master writes the replica's input and reads its
/// output; the replica is the terminal programs see, through the line discipline.
pub struct PtyFile {
    /// Its OFD and flock locks, released when it goes.
    locks: crate::vfs::locks::FileLocks,
    pub term: Arc<Terminal>,
    /// Which end.
    pub master: bool,
    dentry: Arc<Dentry>,
    flags: StatusFlags,
}

impl PtyFile {
    /// A master: it holds the master count `Devpts::new_terminal` took for it.
    pub fn master(term: Arc<Terminal>, dentry: Arc<Dentry>, flags: u32) -> PtyFile {
        PtyFile { term, master: true, dentry, flags: StatusFlags::new(flags), locks: Default::default() }
    }

    pub fn replica(term: Arc<Terminal>, dentry: Arc<Dentry>, flags: u32) -> PtyFile {
        term.opened(false);
        PtyFile { term, master: false, dentry, flags: StatusFlags::new(flags), locks: Default::default() }
    }

    fn queue(&self) -> &WaitQueue {
        if self.master { &self.term.master_queue } else { &self.term.replica_queue }
    }

    fn events(&self) -> u32 {
        if self.master { self.term.master_events() } else { self.term.replica_events() }
    }

    fn read_master(&self, t: &Task, bufs: &UserBuffers) -> SysResult<usize> {
        let max = (bufs.total() as usize).min(CHUNK);
        loop {
            match self.term.master_read(max) {
                Some(data) if data.is_empty() => return error!(EIO),
                Some(data) => return copy_out(t, bufs, &data),
                None => wait(t, self.queue(), is_nonblock(&self.flags), None, || self.events() & 0x11 != 0)?,
            }
        }
    }

    fn read_replica(&self, t: &Task, bufs: &UserBuffers) -> SysResult<usize> {
        // A background process reading its terminal is stopped (or told EIO).
        background_check(t, &self.term, SIGTTIN)?;
        let max = (bufs.total() as usize).min(CHUNK);
        let (vmin, vtime, canonical) = {
            let st = self.term.lock();
            (st.ldisc.termios.c_cc[VMIN], st.ldisc.termios.c_cc[VTIME], st.ldisc.canonical())
        };
        // Non-canonical VMIN 0: a poll (VTIME 0) or a read with a timeout.
        let deadline = (!canonical && vmin == 0).then(|| Instant::now() + Duration::from_millis(100 * u64::from(vtime)));
        loop {
            if let Some(data) = self.term.replica_read(max) {
                return copy_out(t, bufs, &data);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(0);
            }
            match wait(t, self.queue(), is_nonblock(&self.flags), deadline, || self.events() & 0x11 != 0) {
                Err(e) if e.code == rvisor_abi::ErrnoCode::ETIMEDOUT => return Ok(0),
                r => r?,
            }
        }
    }
}

impl Drop for PtyFile {
    fn drop(&mut self) {
        self.term.closed(self.master);
    }
}

impl FileDescription for PtyFile {
    fn read(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if offset.is_some() {
            return error!(ESPIPE);
        }
        if self.master { self.read_master(t, bufs) } else { self.read_replica(t, bufs) }
    }

    fn write(&self, t: &Task, bufs: &UserBuffers, offset: Option<i64>) -> SysResult<usize> {
        if offset.is_some() {
            return error!(ESPIPE);
        }
        if !self.master && self.term.lock().ldisc.termios.c_lflag & super::ldisc::TOSTOP != 0 {
            background_check(t, &self.term, SIGTTOU)?;
        }
        let data = copy_in(t, bufs, CHUNK)?;
        let mut done = 0;
        while done < data.len() {
            if !self.master && self.term.lock().hung_up {
                return if done > 0 { Ok(done) } else { error!(EIO) };
            }
            let n = if self.master { self.term.master_write(&data[done..]) } else { self.term.replica_write(&data[done..]) };
            done += n;
            if n == 0 {
                let waited = wait(t, self.queue(), is_nonblock(&self.flags), None, || self.events() & 0x14 != 0);
                if let Err(e) = waited {
                    return if done > 0 { Ok(done) } else { Err(e) };
                }
            }
        }
        Ok(done)
    }

    fn stat(&self) -> SysResult<Stat> {
        self.dentry.inode.stat()
    }

    fn ioctl(&self, t: &Task, request: u32, arg: u64) -> SysResult<u64> {
        let term = &self.term;
        match (request, self.master) {
            (TIOCGPTN, true) => write(t, arg, &term.index).map(|()| 0),
            (TIOCSPTLCK, true) => {
                let lock: i32 = t.mm.read_obj(UserRef::new(UserAddr(arg)))?;
                term.lock().locked = lock != 0;
                Ok(0)
            }
            (TIOCGPTLCK, true) => write(t, arg, &i32::from(term.lock().locked)).map(|()| 0),
            (TIOCGPTN | TIOCSPTLCK | TIOCGPTLCK, false) => error!(ENOTTY),
            // The master's own settings are kept and reported, never applied.
            (TCGETS, true) => write(t, arg, &term.lock().master_termios).map(|()| 0),
            (TCGETS, false) => write(t, arg, &term.lock().ldisc.termios).map(|()| 0),
            (TCSETS | TCSETSW | TCSETSF, master) => {
                let tio: Termios = t.mm.read_obj(UserRef::new(UserAddr(arg)))?;
                if master {
                    term.lock().master_termios = tio;
                    return Ok(0);
                }
                super::check_change(t, term)?;
                if request == TCSETSF {
                    term.flush(true, false);
                }
                term.set_termios(tio);
                Ok(0)
            }
            (FIONREAD, true) => write(t, arg, &(term.lock().ldisc.output.len() as i32)).map(|()| 0),
            (FIONREAD, false) => write(t, arg, &(term.lock().ldisc.readable_bytes() as i32)).map(|()| 0),
            _ => common_ioctl(t, term, request, arg),
        }
    }

    fn flags(&self) -> Option<&crate::vfs::StatusFlags> {
        Some(&self.flags)
    }

    fn dentry(&self) -> Option<Arc<Dentry>> {
        Some(self.dentry.clone())
    }
    fn file_locks(&self) -> Option<&crate::vfs::locks::FileLocks> {
        Some(&self.locks)
    }

    fn readiness(&self, mask: u32) -> u32 {
        self.events() & (mask | 0x18)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(self.queue())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

fn write<T: zerocopy::IntoBytes + zerocopy::Immutable>(t: &Task, arg: u64, v: &T) -> SysResult<()> {
    t.mm.write_obj(UserRef::new(UserAddr(arg)), v)
}

/// The ioctls both sides answer alike (for the master, about its replica).
fn common_ioctl(t: &Task, term: &Arc<Terminal>, request: u32, arg: u64) -> SysResult<u64> {
    match request {
        TIOCGWINSZ => write(t, arg, &term.lock().winsize).map(|()| 0),
        TIOCSWINSZ => {
            let w: Winsize = t.mm.read_obj(UserRef::new(UserAddr(arg)))?;
            term.set_winsize(w);
            Ok(0)
        }
        TIOCGPGRP => {
            super::require_controlling(t, term)?;
            let fg = term.lock().fg_pgrp;
            write(t, arg, &t.vnr(fg)).map(|()| 0)
        }
        TIOCSPGRP => {
            let pgrp: i32 = t.mm.read_obj(UserRef::new(UserAddr(arg)))?;
            super::set_foreground(t, term, pgrp).map(|()| 0)
        }
        TIOCGSID => {
            super::require_controlling(t, term)?;
            let session = term.lock().session;
            write(t, arg, &t.vnr(session)).map(|()| 0)
        }
        TIOCSCTTY => super::make_controlling(t, term, arg == 1).map(|()| 0),
        TIOCNOTTY => super::give_up_controlling(t, term).map(|()| 0),
        TIOCOUTQ => write(t, arg, &(term.lock().ldisc.output.len() as i32)).map(|()| 0),
        TCFLSH => {
            let (input, output) = match arg {
                0 => (true, false),
                1 => (false, true),
                2 => (true, true),
                _ => return error!(EINVAL),
            };
            term.flush(input, output);
            Ok(0)
        }
        // TCOOFF, TCOON, TCIOFF, TCION: checked, then nothing (no flow control).
        TCXONC if arg > 3 => error!(EINVAL),
        TCSBRK | TCSBRKP | TCXONC | TIOCEXCL | TIOCNXCL => Ok(0),
        _ => error!(ENOTTY),
    }
}
