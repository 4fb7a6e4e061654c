//! Linux native AIO: io_setup, io_destroy, io_submit, io_cancel, io_getevents
//! and io_pgetevents. A read, write or fsync runs synchronously at submission,
//! through the same paths as pread64, pwritev or fsync, and its completion waits
//! in the context (`mm::aio`) for io_getevents; an IOCB_CMD_POLL request waits
//! there for its file, and only it can be cancelled. What fails a submission and
//! what becomes the event's result follow Linux's fs/aio.c.

use super::fs::{check_offset, read, write, RWF_SUPPORTED};
use super::namei::fsync_file;
use super::poll::{restore_sigmask, set_sigmask_arg, SigsetArg};
use super::sched::check_ioprio;
use crate::fs::eventfd::EventFd;
use crate::mm::aio::AioContext;
use crate::mm::{UserBuffers, UserRef};
use crate::task::Task;
use crate::vfs::{Fd, FileDescription, POLLERR, POLLHUP};
use rvisor_abi::structs::{IoEvent, Iocb, Timespec};
use rvisor_abi::{errno, error, ErrnoCode, SysResult, UserAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zerocopy::IntoBytes;

const IOCB_CMD_PREAD: u16 = 0;
const IOCB_CMD_PWRITE: u16 = 1;
const IOCB_CMD_FSYNC: u16 = 2;
const IOCB_CMD_FDSYNC: u16 = 3;
const IOCB_CMD_POLL: u16 = 5;
const IOCB_CMD_PREADV: u16 = 7;
const IOCB_CMD_PWRITEV: u16 = 8;
/// aio_flags: add 1 to the eventfd `aio_resfd` at completion.
const IOCB_FLAG_RESFD: u32 = 1;
/// aio_flags: `aio_reqprio` is an I/O priority (otherwise it is ignored).
const IOCB_FLAG_IOPRIO: u32 = 2;
/// Where `aio_key` sits in a `struct iocb`: submission writes KIOCB_KEY (0)
/// there, and io_cancel looks for it.
const AIO_KEY_OFFSET: u64 = 8;

pub fn sys_io_setup(t: &mut Task, nr_events: u32, ctxp: UserRef<u64>) -> SysResult<()> {
    if t.mm.read_obj(ctxp)? != 0 || nr_events == 0 {
        return error!(EINVAL);
    }
    let id = t.mm.aio_setup(t.ctx.as_mut(), nr_events, &t.kernel.aio_nr, t.kernel.cpus)?;
    if let Err(e) = t.mm.write_obj(ctxp, &id) {
        t.mm.aio_destroy(t.ctx.as_mut(), id)?;
        return Err(e);
    }
    Ok(())
}

pub fn sys_io_destroy(t: &mut Task, ctx: u64) -> SysResult<()> {
    t.mm.aio_destroy(t.ctx.as_mut(), ctx)
}

/// Submits the requests in order; returns how many went in. The first that
/// fails stops the call, which fails with its error if it was the first.
pub fn sys_io_submit(t: &mut Task, ctx: u64, nr: i64, iocbpp: UserRef<u64>) -> SysResult<usize> {
    if nr < 0 {
        return error!(EINVAL);
    }
    let context = t.mm.aio_context(ctx)?;
    // Linux takes at most a ring's worth per call.
    let nr = nr.min(i64::from(context.ring_events())) as usize;
    for i in 0..nr {
        let r = iocbpp.at(i).and_then(|p| t.mm.read_obj(p)).and_then(|iocb| submit(t, &context, UserAddr(iocb)));
        if let Err(e) = r {
            return if i == 0 { Err(e) } else { Ok(i) };
        }
    }
    Ok(nr)
}

/// One request, run now: what is wrong with the request fails it; the I/O's
/// own outcome is its completion's `res`.
fn submit(t: &Task, context: &Arc<AioContext>, at: UserAddr) -> SysResult<()> {
    let iocb: Iocb = t.mm.read_obj(UserRef::new(at))?;
    if iocb.reserved2 != 0 || (iocb.nbytes as i64) < 0 {
        return error!(EINVAL);
    }
    let slot = context.reserve()?;
    // An aio_fildes past i32 names no descriptor: EBADF, as Fd(-1).
    let file = t.fds.get(Fd(iocb.fildes as i32))?;
    let resfd = if iocb.flags & IOCB_FLAG_RESFD != 0 {
        let efd = t.fds.get(Fd(iocb.resfd as i32))?;
        if EventFd::of(&*efd).is_none() {
            return error!(EINVAL);
        }
        Some(efd)
    } else {
        None
    };
    t.mm.write_obj(UserRef::<u32>::new(at.add(AIO_KEY_OFFSET)?), &0)?;
    let event = IoEvent { data: iocb.data, obj: at.get(), res: 0, res2: 0 };
    let res = match iocb.lio_opcode {
        IOCB_CMD_PREAD | IOCB_CMD_PREADV | IOCB_CMD_PWRITE | IOCB_CMD_PWRITEV => read_write(t, &iocb, &*file)?,
        IOCB_CMD_FSYNC | IOCB_CMD_FDSYNC => {
            if iocb.buf != 0 || iocb.offset != 0 || iocb.nbytes != 0 || iocb.rw_flags != 0 {
                return error!(EINVAL);
            }
            event_result(fsync_file(&*file).map(|()| 0))
        }
        IOCB_CMD_POLL => {
            // The poll events, which fit in 16 bits; the other fields unused.
            let events = u16::try_from(iocb.buf).map_err(|_| errno!(EINVAL))?;
            if iocb.offset != 0 || iocb.nbytes != 0 || iocb.rw_flags != 0 {
                return error!(EINVAL);
            }
            context.poll(slot, file, u32::from(events) | POLLERR | POLLHUP, event, resfd);
            return Ok(());
        }
        // IOCB_CMD_NOOP (6) is EINVAL on Linux too.
        _ => return error!(EINVAL),
    };
    slot.complete(IoEvent { res, ..event });
    // After the event is queued, so a reader woken by the eventfd finds it.
    if let Some(efd) = resfd.as_deref().and_then(EventFd::of) {
        efd.signal();
    }
    Ok(())
}

/// PREAD and PWRITE (one buffer), PREADV and PWRITEV (an iovec array), at
/// `aio_offset`. Returns the completion's `res`.
fn read_write(t: &Task, iocb: &Iocb, file: &dyn FileDescription) -> SysResult<i64> {
    if iocb.flags & IOCB_FLAG_IOPRIO != 0 {
        check_ioprio(t, i32::from(iocb.reqprio))?;
    }
    if iocb.rw_flags & !RWF_SUPPORTED != 0 {
        return error!(EOPNOTSUPP);
    }
    let writing = matches!(iocb.lio_opcode, IOCB_CMD_PWRITE | IOCB_CMD_PWRITEV);
    let bufs = if matches!(iocb.lio_opcode, IOCB_CMD_PREADV | IOCB_CMD_PWRITEV) {
        t.mm.read_iovecs(UserAddr(iocb.buf), iocb.nbytes as usize)?
    } else {
        UserBuffers::single(UserAddr(iocb.buf), iocb.nbytes as usize)
    };
    // Linux's AIO does not refuse streams as pread does: it reads a pipe or a
    // socket from where it is, whatever the offset says.
    let offset = if file.pipe().is_some() || file.as_socket().is_some() { None } else { check_offset(iocb.offset)? };
    let r = if writing { write(t, file, &bufs, offset) } else { read(t, file, &bufs, offset) };
    match r {
        // Not open for reading (writing): Linux checks that before the I/O and
        // fails the submission.
        Err(e) if e.code == ErrnoCode::EBADF => Err(e),
        r => Ok(event_result(r.map(|n| n as i64))),
    }
}

/// A completion's `res`: the count, or the negated errno. A restart code is
/// EINTR: the other requests went ahead, so the call cannot be restarted.
fn event_result(r: SysResult<i64>) -> i64 {
    match r {
        Ok(n) => n,
        Err(e) if e.code.is_restart() => -i64::from(ErrnoCode::EINTR.0),
        Err(e) => -i64::from(e.code.0),
    }
}

/// Only a waiting poll request can be cancelled (EINVAL for any other, as for
/// a finished one): its event is queued, as Linux always does now (`result` is
/// unused), and the call says EINPROGRESS.
pub fn sys_io_cancel(t: &mut Task, ctx: u64, iocb: UserAddr, _result: UserAddr) -> SysResult<()> {
    let key: u32 = t.mm.read_obj(UserRef::new(iocb.add(AIO_KEY_OFFSET)?))?;
    if key != 0 {
        return error!(EINVAL);
    }
    t.mm.aio_context(ctx)?.cancel(iocb.get())?;
    error!(EINPROGRESS)
}

/// How long io_getevents may wait for `min_nr` events.
#[derive(Clone, Copy)]
enum Wait {
    /// A zero timeout: take what is there.
    No,
    /// Until the deadline (None: for ever).
    Until(Option<Instant>),
}

/// io_getevents' relative timeout (NULL: for ever). Linux does not check the
/// timespec, it only sums it: zero means no waiting, and a negative sum waits
/// for ever (as Linux 6.18 does).
fn read_timeout(t: &Task, timeout: UserRef<Timespec>) -> SysResult<Wait> {
    if timeout.is_null() {
        return Ok(Wait::Until(None));
    }
    let ts = t.mm.read_obj(timeout)?;
    let ns = ts.tv_sec.saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec);
    Ok(match u64::try_from(ns) {
        Ok(0) => Wait::No,
        Ok(ns) => Wait::Until(crate::time::deadline_in(Duration::from_nanos(ns))),
        Err(_) => Wait::Until(None),
    })
}

pub fn sys_io_getevents(t: &mut Task, ctx: u64, min_nr: i64, nr: i64, events: UserAddr, timeout: UserRef<Timespec>) -> SysResult<usize> {
    let wait = read_timeout(t, timeout)?;
    let n = get_events(t, ctx, min_nr, nr, events, wait)?;
    // Not restarted, as on Linux.
    if n == 0 && t.signal_pending() {
        return error!(EINTR);
    }
    Ok(n)
}

/// io_getevents with a signal mask for the wait, as ppoll's; interrupted with
/// nothing taken, it restarts unless a handler runs.
pub fn sys_io_pgetevents(t: &mut Task, ctx: u64, min_nr: i64, nr: i64, events: UserAddr, timeout: UserRef<Timespec>, usig: UserRef<SigsetArg>) -> SysResult<usize> {
    let wait = read_timeout(t, timeout)?;
    let masked = set_sigmask_arg(t, usig)?;
    let r = get_events(t, ctx, min_nr, nr, events, wait);
    let interrupted = t.signal_pending();
    restore_sigmask(t, masked, interrupted);
    match r {
        Ok(0) if interrupted => error!(ERESTARTNOHAND),
        r => r,
    }
}

/// Linux's read_events: takes what is queued, then waits for more until
/// `min_nr` were taken, the wait ends (a timeout or a signal: the callers look
/// for one), or the context is destroyed. Returns how many were taken.
fn get_events(t: &Task, ctx: u64, min_nr: i64, nr: i64, events: UserAddr, wait: Wait) -> SysResult<usize> {
    let context = t.mm.aio_context(ctx)?;
    if min_nr < 0 || min_nr > nr {
        return error!(EINVAL);
    }
    let (min_nr, nr) = (min_nr as usize, nr as usize);
    let mut got = 0;
    loop {
        match take(t, &context, events, got, nr - got) {
            Ok(n) => got += n,
            Err(e) if got == 0 => return Err(e),
            Err(_) => return Ok(got),
        }
        let dead = context.is_dead();
        if dead && got == 0 {
            return error!(EINVAL);
        }
        if got >= min_nr || dead {
            return Ok(got);
        }
        let Wait::Until(deadline) = wait else { return Ok(got) };
        context.queue.register(&t.thread);
        let r = t.block_until(deadline, || context.ready());
        context.queue.unregister(&t.thread);
        if r.is_err() {
            return Ok(got);
        }
    }
}

/// Moves up to `max` completions to the app's array from index `at` on. A
/// failed copy leaves them queued.
fn take(t: &Task, context: &AioContext, events: UserAddr, at: usize, max: usize) -> SysResult<usize> {
    let dst = UserRef::<IoEvent>::new(events).at(at)?;
    let taken = context.take(max);
    if taken.is_empty() {
        return Ok(0);
    }
    if let Err(e) = t.mm.write_bytes(dst.addr, taken.as_slice().as_bytes()) {
        context.put_back(taken);
        return Err(e);
    }
    Ok(taken.len())
}
