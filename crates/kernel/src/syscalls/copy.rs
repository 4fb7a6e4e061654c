//! Copying between files in the Sentry: sendfile and copy_file_range (the data
//! goes through a Sentry buffer; no page is shared).

use crate::mm::UserRef;
use crate::task::Task;
use crate::vfs::{Fd, FileDescription, OpenFlags};
use rvisor_abi::{error, SysResult};
use std::sync::Arc;

/// Bytes moved per step.
const CHUNK: usize = 64 << 10;

/// Reads up to `len` bytes from `src` at `off` (or its position) into a buffer.
fn pull(src: &Arc<dyn FileDescription>, off: Option<u64>, len: usize) -> SysResult<Vec<u8>> {
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

fn transfer(t: &Task, src: &Arc<dyn FileDescription>, dst: &Arc<dyn FileDescription>, mut src_off: Option<u64>, mut dst_off: Option<u64>, len: usize) -> SysResult<(usize, Option<u64>, Option<u64>)> {
    if !OpenFlags(src.status_flags()).readable() || !OpenFlags(dst.status_flags()).writable() {
        return error!(EBADF);
    }
    let mut done = 0;
    while done < len {
        let data = pull(src, src_off, len - done)?;
        if data.is_empty() {
            break;
        }
        let n = dst.write_from(t, &data, dst_off)?;
        done += n;
        src_off = src_off.map(|o| o + n as u64);
        dst_off = dst_off.map(|o| o + n as u64);
        if n < data.len() {
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

pub fn sys_sendfile(t: &mut Task, out_fd: Fd, in_fd: Fd, offset: UserRef<i64>, count: usize) -> SysResult<usize> {
    let (src, dst) = (t.fds.get(in_fd)?, t.fds.get(out_fd)?);
    let off = read_off(t, offset)?;
    let (n, new_off, _) = transfer(t, &src, &dst, off, None, count)?;
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
    let (n, ni, no) = transfer(t, &src, &dst, si, so, len)?;
    if let Some(o) = ni.filter(|_| !off_in.is_null()) {
        t.mm.write_obj(off_in, &(o as i64))?;
    }
    if let Some(o) = no.filter(|_| !off_out.is_null()) {
        t.mm.write_obj(off_out, &(o as i64))?;
    }
    Ok(n)
}
