//! The memory file: one memfd backs all application memory.
//!
//! A frame allocator hands out page-aligned ranges of the file; freed ranges go back
//! to the host at once with `fallocate(PUNCH_HOLE)`, so a hole reads as zeros when it
//! is handed out again. The Sentry reaches application memory through its own shared
//! mapping of the whole file (`MemoryFile::read`/`write`), never through the stubs.

mod allocator;
mod file;

pub use allocator::FrameAllocator;
pub use file::{FileRange, MemoryFile, UsageKind, FILE_SIZE};
