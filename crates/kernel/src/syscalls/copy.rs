//! Copying between files in the Sentry: sendfile, copy_file_range, splice, tee and
//! vmsplice (the data goes through a Sentry buffer; no page is shared, so a
//! splice is a copy, as Linux's is for most files).

use crate::mm::UserRef;
use crate::task::Task;
use crate::vfs::{Fd, FileDescription, OpenFlags};
use rvisor_abi::{error, SysResult};
use std::sync::Arc;

/// Bytes moved per step.
const CHUNK: usize = 64 << 10;

/// Reads up to `len` bytes from `src` at `off` (or its position) into a buffer;
/// from a pipe, waiting for data unless `nonblock`.
fn pull(t: &Task, src: &Arc<dyn FileDescription>, off: Option<u64>, len: usize, nonblock: bool) -> SysResult<Vec<u8>> {
    if let Some(p) = src.pipe() {
        return p.take(t, len.min(CHUNK), nonblock, true);
    }
    let mut buf = vec![0u8; len.min(CHUNK)];
    let n = match off {
        Some(o) => src.read_at(o, &mut buf)?,
        None => {
            // A stream: its position moves, so go through lseek and read_at.
            let pos = src.seek(0, 1)?;
            let n = src.read_at(pos as u64, &mut buf)?;
            src.seek(pos + n as i64, 0)?;
            n
        }
    };
    buf.truncate(n);
    Ok(buf)
}

/// Writes `data` to the file `dst` at `off` (or its position) under RLIMIT_FSIZE, as
/// Linux's iter_file_splice_write: what fits below the limit goes out; when that is
/// not all, the next write, at the limit, raises SIGXFSZ, and the call still returns
/// what went out.
fn splice_write(t: &Task, dst: &dyn FileDescription, data: &[u8], off: Option<u64>) -> SysResult<usize> {
    let n = super::fs::writable_len(t, dst, data.len() as u64, off)? as usize;
    let written = dst.write_from(t, &data[..n], off)?;
    if written == n && n < data.len() {
        super::fs::file_too_big(t);
    }
    Ok(written)
}

fn transfer(t: &Task, src: &Arc<dyn FileDescription>, dst: &Arc<dyn FileDescription>, mut src_off: Option<u64>, mut dst_off: Option<u64>, len: usize) -> SysResult<(usize, Option<u64>, Option<u64>)> {
    if !OpenFlags(src.status_flags()).readable() || !OpenFlags(dst.status_flags()).writable() {
        return error!(EBADF);
    }
    let mut done = 0;
    while done < len {
        // An error after some bytes moved ends the call with what moved (a full non-blocking
        // socket: EAGAIN), as Linux's do_splice_direct does: the caller goes on from there.
        let step = pull(t, src, src_off, len - done, src.status_flags() & crate::fs::pipe::O_NONBLOCK != 0)
            .and_then(|data| Ok((splice_write(t, &**dst, &data, dst_off)?, data.len())));
        let (n, read) = match step {
            Ok(s) => s,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        if read == 0 {
            break;
        }
        if src_off.is_none() && src.pipe().is_none() && n < read {
            // pull moved the file's position past what was read: back to what was written.
            src.seek(-((read - n) as i64), 1)?;
        }
        done += n;
        src_off = src_off.map(|o| o + n as u64);
        dst_off = dst_off.map(|o| o + n as u64);
        if n < read {
            break;
        }
    }
    Ok((done, src_off, dst_off))
}

fn read_off(t: &Task, p: UserRef<i64>) -> SysResult<Option<u64>> {
    if p.is_null() {
        return Ok(None);
    }
    let o = t.mm.read_obj(p)?;
    if o < 0 { error!(EINVAL) } else { Ok(Some(o as u64)) }
}

/// sendfile and copy_file_range count as one read and one write of what they
/// moved (/proc/[pid]/io), as Linux's do_sendfile and copy_file_range do.
fn account<T, U>(t: &Task, r: &SysResult<(usize, T, U)>) {
    let n = r.as_ref().map(|&(n, _, _)| n).unwrap_or(0);
    t.thread.io.read_call(n);
    t.thread.io.write_call(n);
}

pub fn sys_sendfile(t: &mut Task, out_fd: Fd, in_fd: Fd, offset: UserRef<i64>, count: usize) -> SysResult<usize> {
    let (src, dst) = (t.fds.get(in_fd)?, t.fds.get(out_fd)?);
    let off = read_off(t, offset)?;
    let r = transfer(t, &src, &dst, off, None, count);
    account(t, &r);
    let (n, new_off, _) = r?;
    if let Some(o) = new_off {
        t.mm.write_obj(offset, &(o as i64))?;
    }
    Ok(n)
}

pub fn sys_copy_file_range(t: &mut Task, fd_in: Fd, off_in: UserRef<i64>, fd_out: Fd, off_out: UserRef<i64>, len: usize, flags: u32) -> SysResult<usize> {
    if flags != 0 {
        return error!(EINVAL);
    }
    let (src, dst) = (t.fds.get(fd_in)?, t.fds.get(fd_out)?);
    if src.dentry().is_none() || dst.dentry().is_none() {
        return error!(EINVAL);
    }
    let (si, so) = (read_off(t, off_in)?, read_off(t, off_out)?);
    // RLIMIT_FSIZE cuts the whole copy short up front (Linux's generic_copy_file_checks).
    let len = super::fs::writable_len(t, &*dst, len as u64, so)? as usize;
    let r = transfer(t, &src, &dst, si, so, len);
    account(t, &r);
    let (n, ni, no) = r?;
    if let Some(o) = ni.filter(|_| !off_in.is_null()) {
        t.mm.write_obj(off_in, &(o as i64))?;
    }
    if let Some(o) = no.filter(|_| !off_out.is_null()) {
        t.mm.write_obj(off_out, &(o as i64))?;
    }
    Ok(n)
}

const SPLICE_F_MOVE: u32 = 1;
const SPLICE_F_NONBLOCK: u32 = 2;
const SPLICE_F_MORE: u32 = 4;
const SPLICE_F_GIFT: u32 = 8;
const SPLICE_FLAGS: u32 = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT;

fn same_pipe(a: &Arc<dyn FileDescription>, b: &Arc<dyn FileDescription>) -> bool {
    matches!((a.pipe(), b.pipe()), (Some(x), Some(y)) if Arc::ptr_eq(x, y))
}

/// One step of at most 64 KiB; one side must be a pipe. SPLICE_F_NONBLOCK makes
/// the pipe sides non-blocking.
pub fn sys_splice(t: &mut Task, fd_in: Fd, off_in: UserRef<i64>, fd_out: Fd, off_out: UserRef<i64>, len: usize, flags: u32) -> SysResult<usize> {
    if flags & !SPLICE_FLAGS != 0 {
        return error!(EINVAL);
    }
    let (src, dst) = (t.fds.get(fd_in)?, t.fds.get(fd_out)?);
    if !OpenFlags(src.status_flags()).readable() || !OpenFlags(dst.status_flags()).writable() {
        return error!(EBADF);
    }
    if (src.pipe().is_none() && dst.pipe().is_none()) || same_pipe(&src, &dst) {
        return error!(EINVAL);
    }
    let socket_in = src.as_socket().is_some();
    if ((src.pipe().is_some() || socket_in) && !off_in.is_null()) || (dst.pipe().is_some() && !off_out.is_null()) {
        return error!(ESPIPE);
    }
    if len == 0 {
        return Ok(0);
    }
    let (si, so) = (read_off(t, off_in)?, read_off(t, off_out)?);
    if let Some(p) = dst.pipe() {
        p.ensure_reader(t)?;
    }
    let nonblock = |f: &Arc<dyn FileDescription>| flags & SPLICE_F_NONBLOCK != 0 || f.status_flags() & crate::fs::pipe::O_NONBLOCK != 0;
    // Only what goes out leaves the source, as in Linux, where splice moves only the
    // buffers there is room for: a source pipe's data is peeked and taken once
    // written, a file's position goes back over what was not.
    let data = match (src.pipe(), src.as_socket(), dst.pipe()) {
        (Some(p), _, _) => p.take(t, len.min(CHUNK), nonblock(&src), false)?,
        (None, Some(s), Some(p)) => receive_for_pipe(t, s, p, len, nonblock(&src), nonblock(&dst))?,
        _ => pull(t, &src, si, len, nonblock(&src))?,
    };
    if data.is_empty() {
        return Ok(0);
    }
    let written = match dst.pipe() {
        Some(p) => p.put(t, &data, nonblock(&dst)),
        None => splice_write(t, &*dst, &data, so),
    };
    let n = *written.as_ref().unwrap_or(&0);
    match src.pipe() {
        Some(p) if n > 0 => {
            p.take(t, n, true, true)?;
        }
        None if si.is_none() && !socket_in && n < data.len() => {
            src.seek(-((data.len() - n) as i64), 1)?;
        }
        _ => {}
    }
    let n = written?;
    if let Some(o) = si {
        t.mm.write_obj(off_in, &((o + n as u64) as i64))?;
    }
    if let Some(o) = so {
        t.mm.write_obj(off_out, &((o + n as u64) as i64))?;
    }
    Ok(n)
}

/// A socket's receive of at most `len` bytes for a splice into pipe `p`:
/// only what the pipe has room for, since what is received cannot go back
/// (Linux's splice_read fills only the free slots), EAGAIN when full and
/// `nonblock_out`. The socket's own rules apply, e.g. a stream's stop at an
/// OOB mark.
fn receive_for_pipe(t: &Task, s: &dyn crate::net::Socket, p: &crate::fs::pipe::Pipe, len: usize, nonblock_in: bool, nonblock_out: bool) -> SysResult<Vec<u8>> {
    let room = p.room();
    if room == 0 && nonblock_out {
        return error!(EAGAIN);
    }
    let max = if room == 0 { len } else { len.min(room) }.min(CHUNK);
    let flags = if nonblock_in { crate::net::MSG_DONTWAIT } else { 0 };
    Ok(s.receive(t, max, flags)?.data)
}

/// Copies (without consuming) up to `len` bytes from one pipe into another.
pub fn sys_tee(t: &mut Task, fd_in: Fd, fd_out: Fd, len: usize, flags: u32) -> SysResult<usize> {
    if flags & !SPLICE_FLAGS != 0 {
        return error!(EINVAL);
    }
    let (src, dst) = (t.fds.get(fd_in)?, t.fds.get(fd_out)?);
    let (Some(pin), Some(pout)) = (src.pipe(), dst.pipe()) else { return error!(EINVAL) };
    if !OpenFlags(src.status_flags()).readable() || !OpenFlags(dst.status_flags()).writable() || same_pipe(&src, &dst) {
        return error!(EINVAL);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let data = pin.take(t, len.min(CHUNK), nonblock, false)?;
    if data.is_empty() {
        return Ok(0);
    }
    pout.put(t, &data, nonblock)
}

/// vmsplice: user memory into a pipe's write end (as writev), or a read end's
/// data into user memory (as readv).
pub fn sys_vmsplice(t: &mut Task, fd: Fd, iov: rvisor_abi::UserAddr, nr_segs: usize, flags: u32) -> SysResult<usize> {
    if flags & !SPLICE_FLAGS != 0 {
        return error!(EINVAL);
    }
    let file = t.fds.get(fd)?;
    if file.pipe().is_none() {
        return error!(EBADF);
    }
    let bufs = t.mm.read_iovecs(iov, nr_segs)?;
    if OpenFlags(file.status_flags()).writable() {
        file.write(t, &bufs, None)
    } else {
        file.read(t, &bufs, None)
    }
}
