//! The status flags of an open file description (F_GETFL/F_SETFL), shared by every
//! kind of file.

use std::sync::atomic::{AtomicU32, Ordering};

/// The flags F_SETFL may change: O_APPEND, O_NONBLOCK, O_ASYNC, O_DIRECT, O_NOATIME.
const SETFL_MASK: u32 = 0o2000 | 0o4000 | 0o20000 | 0o40000 | 0o1000000;

#[derive(Debug)]
pub struct StatusFlags(AtomicU32);

impl StatusFlags {
    pub fn new(flags: u32) -> StatusFlags {
        StatusFlags(AtomicU32::new(flags))
    }

    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// F_SETFL: only the SETFL_MASK bits change.
    pub fn set(&self, flags: u32) {
        let old = self.get();
        self.0.store((old & !SETFL_MASK) | (flags & SETFL_MASK), Ordering::Relaxed);
    }
}
