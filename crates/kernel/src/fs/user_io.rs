//! Copying between Sentry buffers and the memory-file ranges of an I/O request
//! (`MemoryManager::translate_buffers`), a piece at a time: what files that keep
//! their data in the Sentry (pipes, eventfds) read and write through.

use rvisor_memory::{FileRange, MemoryFile};

/// A position in a list of memory-file ranges.
pub struct RangeCursor<'a> {
    mf: &'a MemoryFile,
    ranges: Vec<FileRange>,
    /// Index of the current range and offset inside it.
    i: usize,
    off: u64,
    left: usize,
}

impl<'a> RangeCursor<'a> {
    pub fn new(mf: &'a MemoryFile, ranges: Vec<FileRange>) -> RangeCursor<'a> {
        let left = ranges.iter().map(|r| r.len as usize).sum();
        RangeCursor { mf, ranges, i: 0, off: 0, left }
    }

    /// Bytes not yet copied.
    pub fn remaining(&self) -> usize {
        self.left
    }

    /// Calls `f(file offset, length)` for the next `n` bytes (at most what remains).
    fn advance(&mut self, mut n: usize, mut f: impl FnMut(u64, usize, usize)) -> usize {
        n = n.min(self.left);
        let mut done = 0;
        while done < n {
            let Some(r) = self.ranges.get(self.i) else { break };
            let avail = (r.len - self.off) as usize;
            let k = avail.min(n - done);
            f(r.start + self.off, done, k);
            done += k;
            self.off += k as u64;
            if self.off == r.len {
                self.i += 1;
                self.off = 0;
            }
        }
        self.left -= done;
        done
    }

    /// Copies from the application into the end of `dst`, at most `n` bytes.
    pub fn read_append(&mut self, dst: &mut Vec<u8>, n: usize) -> usize {
        let start = dst.len();
        let n = n.min(self.left);
        dst.resize(start + n, 0);
        let mf = self.mf;
        let got = self.advance(n, |off, at, k| mf.read(off, &mut dst[start + at..start + at + k]));
        dst.truncate(start + got);
        got
    }

    /// Copies `n` bytes (or as many as fit) of memory file `src` from `src_off`
    /// on to the application.
    pub fn copy_from(&mut self, src: &MemoryFile, src_off: u64, n: usize) -> usize {
        let mf = self.mf;
        self.advance(n, |off, at, k| mf.copy_from(off, src, src_off + at as u64, k))
    }

    /// Copies the next `n` bytes (or as many as remain) of the application's
    /// buffers into memory file `dst` at `dst_off`.
    pub fn copy_to(&mut self, dst: &MemoryFile, dst_off: u64, n: usize) -> usize {
        let mf = self.mf;
        self.advance(n, |off, at, k| dst.copy_from(dst_off + at as u64, mf, off, k))
    }

    /// As [`RangeCursor::copy_to`], into fresh frames of `dst`, which a host
    /// write fills without faulting them in (`MemoryFile::store`).
    /// The app's pieces go in one host call.
    pub fn store_to(&mut self, dst: &MemoryFile, dst_off: u64, n: usize) -> nix::Result<usize> {
        let mut pieces: Vec<FileRange> = Vec::new();
        let done = self.advance(n, |off, _, k| pieces.push(FileRange { start: off, len: k as u64 }));
        dst.store_ranges(dst_off, self.mf, &pieces).map(|()| done)
    }

    /// Zeroes the next `n` bytes (or as many as remain) of the application's buffers.
    pub fn zero(&mut self, n: usize) -> usize {
        let mf = self.mf;
        self.advance(n, |off, _, k| mf.zero(off, k))
    }

    /// Copies `src` (or as much as fits) to the application.
    pub fn write(&mut self, src: &[u8]) -> usize {
        let mf = self.mf;
        self.advance(src.len(), |off, at, k| mf.write(off, &src[at..at + k]))
    }
}
