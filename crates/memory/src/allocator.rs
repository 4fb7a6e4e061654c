//! First-fit range allocator over file offsets, with coalescing of freed ranges.

use std::collections::BTreeMap;

#[derive(Debug)]
pub struct FrameAllocator {
    /// Free ranges below `high_water`, keyed by start, value = length.
    free: BTreeMap<u64, u64>,
    /// Offsets at and above this have never been handed out.
    high_water: u64,
    limit: u64,
}

impl FrameAllocator {
    pub fn new(limit: u64) -> Self {
        FrameAllocator { free: BTreeMap::new(), high_water: 0, limit }
    }

    /// Allocates `len` bytes (a multiple of the page size), returning the offset.
    pub fn alloc(&mut self, len: u64) -> Option<u64> {
        let found = self.free.iter().find(|(_, &l)| l >= len).map(|(&s, &l)| (s, l));
        if let Some((start, flen)) = found {
            self.free.remove(&start);
            if flen > len {
                self.free.insert(start + len, flen - len);
            }
            return Some(start);
        }
        let start = self.high_water;
        let end = start.checked_add(len)?;
        if end > self.limit {
            return None;
        }
        self.high_water = end;
        Some(start)
    }

    /// Returns `[start, start+len)` to the free set, merging with neighbours.
    pub fn free(&mut self, start: u64, len: u64) {
        let mut start = start;
        let mut len = len;
        if let Some((&ps, &pl)) = self.free.range(..start).next_back() {
            if ps + pl == start {
                self.free.remove(&ps);
                start = ps;
                len += pl;
            }
        }
        if let Some(&nl) = self.free.get(&(start + len)) {
            self.free.remove(&(start + len));
            len += nl;
        }
        if start + len == self.high_water {
            self.high_water = start;
        } else {
            self.free.insert(start, len);
        }
    }

    /// Bytes handed out and not yet freed.
    pub fn allocated(&self) -> u64 {
        self.high_water - self.free.values().sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_and_coalesces() {
        let mut a = FrameAllocator::new(1 << 20);
        let x = a.alloc(4096).unwrap();
        let y = a.alloc(8192).unwrap();
        let z = a.alloc(4096).unwrap();
        assert_eq!((x, y, z), (0, 4096, 12288));
        a.free(x, 4096);
        a.free(y, 8192);
        assert_eq!(a.alloc(12288), Some(0));
        a.free(0, 12288);
        a.free(z, 4096);
        assert_eq!(a.allocated(), 0);
        assert_eq!(a.alloc(16384), Some(0));
        assert_eq!(a.alloc(1 << 20), None);
    }
}
