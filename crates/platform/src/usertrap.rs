//! Syscall patching's code in the app's address space: the `[usertrap]` table the
//! kernel maps at a low address, and the jump it writes over a patched site. The
//! trampoline the entries jump to is the platform's (systrap: `rvisor_systrap_tramp`).
//!
//! A site is one of two patterns (`SiteKind`):
//! - `mov $nr, %eax; syscall` (`b8 imm32 0f 05`), most of glibc's wrappers;
//! - glibc's `read`: `xor %eax, %eax; syscall; cmp $-4096, %rax` (`31 c0 0f 05 48 3d
//!   00 f0 ff ff`), whose 4 bytes up to the `syscall`'s end no jump fits in: the
//!   entry runs the `cmp` in its stead and jumps back after it.
//!
//! Either becomes `jmp *abs32` (`ff 24 25 abs32`), an indirect jump through the
//! first word of its entry. The table lies in `[0x60000, 0x70000)`, so byte 5 of the
//! jump is `0x06`, an invalid opcode; a `read` site's entry is one whose address has
//! an invalid opcode in its byte 1 too (`READ_ENTRY_BYTE1`), byte 4 of the jump.
//! The writes that make the jump (`patch_steps`), one byte at a time, never let
//! another thread run a mix of old and new instructions to any effect but an
//! invalid opcode at a place the kernel knows (`Detour`).
//!
//! The table's first word is the trampoline's address; entry `i` is at
//! `table + ENTRY * (i + 1)`:
//! ```text
//! +0   .quad +8
//! +8   lea FALLBACK(%rip), %r11        the site, to the kernel (by its own table)
//! +15  movabs $ret, %rcx               the return address (the site's end, or +38)
//! +25  jmp *table(%rip)                the trampoline
//! +31  FALLBACK: mov $nr, %eax         the trampoline's way out when it cannot
//! +36  RESUME: syscall                 serve the call: a trapping syscall
//! +38  ud2                             (`read`: cmp $-4096, %rax; jmp *site+10)
//! ```

/// Where the table may lie (byte 2 of its addresses is 0x06) and how big it is.
pub const TABLE_RANGE: (u64, u64) = (0x60000, 0x70000);
pub const TABLE_LEN: u64 = 0x4000;
/// One entry's size, and how many the table holds (the first slot is the header).
pub const ENTRY: u64 = 64;
pub const ENTRIES: usize = (TABLE_LEN / ENTRY) as usize - 1;
/// Offsets in an entry.
pub const FALLBACK: u64 = 31;
pub const RESUME: u64 = 36;
/// Where a patched call seems to come from: as if the entry's `syscall` had run.
pub const AFTER_SYSCALL: u64 = RESUME + 2;
/// The site's pattern and its length.
pub const SITE_LEN: u64 = 7;

/// The address of entry `i` of the table at `table`.
pub fn entry_addr(table: u64, i: usize) -> u64 {
    table + ENTRY * (i as u64 + 1)
}

/// The entry that `addr` is `off` bytes into, if any (`i < ENTRIES`).
pub fn entry_at(table: u64, addr: u64, off: u64) -> Option<usize> {
    let d = addr.checked_sub(table + ENTRY + off)?;
    let i = (d / ENTRY) as usize;
    (d % ENTRY == 0 && i < ENTRIES).then_some(i)
}

/// The two patterns of a patchable site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiteKind {
    /// `mov $nr, %eax; syscall`: the call returns to the site's end.
    Mov,
    /// glibc's `read`: `xor %eax, %eax; syscall; cmp $-4096, %rax`. The call returns
    /// into its entry (`AFTER_SYSCALL`), which runs the `cmp` and jumps back.
    Read,
}

/// A `read` site's bytes.
pub const READ_SITE: [u8; 10] = [0x31, 0xc0, 0x0f, 0x05, 0x48, 0x3d, 0x00, 0xf0, 0xff, 0xff];

impl SiteKind {
    /// How far from the site's start its `syscall` ends (where the call's trap is).
    pub fn syscall_end(self) -> u64 {
        match self {
            SiteKind::Mov => SITE_LEN,
            SiteKind::Read => 4,
        }
    }

    /// How many bytes of code the site takes.
    pub fn code_len(self) -> u64 {
        match self {
            SiteKind::Mov => SITE_LEN,
            SiteKind::Read => READ_SITE.len() as u64,
        }
    }

    /// Whether entry `i` of the table at `table` can serve a site of this kind.
    pub fn fits(self, table: u64, i: usize) -> bool {
        self == SiteKind::Mov || READ_ENTRY_BYTE1.contains(&((entry_addr(table, i) >> 8) as u8))
    }
}

/// Opcodes that are invalid in 64-bit mode (Intel SDM, opcode map, "i64"): a `read`
/// site's entry has one in byte 1 of its address, byte 4 of the jump, where the
/// site's `cmp` began.
pub const READ_ENTRY_BYTE1: [u8; 20] = [0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x60, 0x61, 0x82, 0x9a, 0xce, 0xd4, 0xd5, 0xd6, 0xea];

/// The code of entry `i` for the site at `site` calling `nr`.
pub fn entry_code(table: u64, i: usize, site: u64, nr: u32, kind: SiteKind) -> [u8; ENTRY as usize] {
    let e = entry_addr(table, i);
    let ret = match kind {
        SiteKind::Mov => site + SITE_LEN,
        SiteKind::Read => e + AFTER_SYSCALL,
    };
    let mut c = [0xccu8; ENTRY as usize];
    c[0..8].copy_from_slice(&(e + 8).to_le_bytes());
    c[8..11].copy_from_slice(&[0x4c, 0x8d, 0x1d]);
    c[11..15].copy_from_slice(&((FALLBACK - 15) as u32).to_le_bytes());
    c[15..17].copy_from_slice(&[0x48, 0xb9]);
    c[17..25].copy_from_slice(&ret.to_le_bytes());
    c[25..27].copy_from_slice(&[0xff, 0x25]);
    c[27..31].copy_from_slice(&((table as i64 - (e + 31) as i64) as i32).to_le_bytes());
    c[31] = 0xb8;
    c[32..36].copy_from_slice(&nr.to_le_bytes());
    c[36..38].copy_from_slice(&[0x0f, 0x05]);
    match kind {
        SiteKind::Mov => c[38..40].copy_from_slice(&[0x0f, 0x0b]),
        SiteKind::Read => {
            // The site's `cmp`, then `jmp *0(%rip)` to the word after it: the site's end.
            c[38..44].copy_from_slice(&READ_SITE[4..10]);
            c[44..50].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]);
            c[50..58].copy_from_slice(&(site + READ_SITE.len() as u64).to_le_bytes());
        }
    }
    c
}

/// The kind of site `bytes` (read from where a call `nr` trapped, minus `SITE_LEN`:
/// the 7 bytes before the trap, then 6 after it) hold, and its start.
pub fn site_before(bytes: &[u8; SITE_LEN as usize + 6], trap: u64, nr: u64) -> Option<(u64, SiteKind)> {
    let mov = &bytes[..SITE_LEN as usize];
    if mov[0] == 0xb8 && mov[5..7] == [0x0f, 0x05] && u64::from(u32::from_le_bytes([mov[1], mov[2], mov[3], mov[4]])) == nr {
        return Some((trap - SiteKind::Mov.syscall_end(), SiteKind::Mov));
    }
    (nr == 0 && bytes[3..13] == READ_SITE).then_some((trap - SiteKind::Read.syscall_end(), SiteKind::Read))
}

/// The writes that put the jump to `entry` over a site, in order, as (offset,
/// bytes). Each leaves code whose every mix another thread may run either as the
/// old code or into an invalid opcode at a place the kernel knows (`Detour`):
/// - `Mov`: byte 5 first (`0x06`), then bytes 1..7, then byte 0. A thread that
///   decoded the old `mov` (perhaps with a torn immediate) faults on `0x06` at site+5.
/// - `Read`: bytes 4 and 5 (the `cmp`'s opcode, now invalid: a thread back from the
///   call faults at site+4); byte 2 (`0f 05` becomes `25 abs32`, an `and %eax` that
///   runs into `f0 ff ff`, invalid, at site+7); byte 3; byte 0 (`ff c0`, `inc %eax`,
///   then the same); byte 1, which makes the jump. Byte 6 is 0 before and after.
///   Bytes 2 and 3, or 0 and 1, written together could mix into `0f a0` (push %fs)
///   or `31 24 25` (an `xor` to memory).
pub fn patch_steps(entry: u64, kind: SiteKind) -> Vec<(u64, Vec<u8>)> {
    debug_assert!((TABLE_RANGE.0..TABLE_RANGE.1).contains(&entry));
    let j = jump_to(entry);
    match kind {
        SiteKind::Mov => vec![(5, vec![j[5]]), (1, j[1..7].to_vec()), (0, vec![j[0]])],
        SiteKind::Read => vec![(4, j[4..6].to_vec()), (2, vec![j[2]]), (3, vec![j[3]]), (0, vec![j[0]]), (1, vec![j[1]])],
    }
}

/// `jmp *entry`.
pub fn jump_to(entry: u64) -> [u8; SITE_LEN as usize] {
    let a = (entry as u32).to_le_bytes();
    [0xff, 0x24, 0x25, a[0], a[1], a[2], a[3]]
}

/// Where a thread that stands at `off` bytes into a patched site goes instead: on a
/// restart (the call's rip rewound by 2, onto a `syscall` that is no more), or on an
/// invalid opcode there (a thread that ran old bytes while the site was patched).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detour {
    /// To the entry's own `syscall` (RESUME): the call runs again.
    Resume,
    /// To the site's start: the call has not been made.
    Site,
    /// To the entry's code after its `syscall` (AFTER_SYSCALL): the call was made.
    AfterCall,
}

impl SiteKind {
    /// The detour of a thread `off` bytes into a patched site of this kind.
    pub fn detour(self, off: u64, restart: bool) -> Option<Detour> {
        match (self, off, restart) {
            (SiteKind::Mov, 5, true) | (SiteKind::Read, 2, true) => Some(Detour::Resume),
            (SiteKind::Mov, 5, false) | (SiteKind::Read, 7, false) => Some(Detour::Site),
            (SiteKind::Read, 4, false) => Some(Detour::AfterCall),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jump_has_an_invalid_opcode_where_syscall_was() {
        for table in [TABLE_RANGE.0, TABLE_RANGE.1 - TABLE_LEN] {
            for i in [0, ENTRIES - 1] {
                let steps = patch_steps(entry_addr(table, i), SiteKind::Mov);
                assert_eq!(steps[0], (5, vec![0x06]));
                assert_eq!(steps[1].1[4], 0x06);
            }
        }
    }

    #[test]
    fn entries_are_found_by_their_resume_address() {
        let t = 0x61000;
        assert_eq!(entry_at(t, entry_addr(t, 3) + AFTER_SYSCALL, AFTER_SYSCALL), Some(3));
        assert_eq!(entry_at(t, entry_addr(t, 3) + AFTER_SYSCALL + 1, AFTER_SYSCALL), None);
        assert_eq!(entry_at(t, t + 2, AFTER_SYSCALL), None);
        assert_eq!(entry_at(t, entry_addr(t, ENTRIES) + AFTER_SYSCALL, AFTER_SYSCALL), None);
    }

    #[test]
    fn every_table_has_entries_for_read_sites() {
        for table in (TABLE_RANGE.0..=TABLE_RANGE.1 - TABLE_LEN).step_by(0x1000) {
            let n = (0..ENTRIES).filter(|&i| SiteKind::Read.fits(table, i)).count();
            assert!(n >= 8, "table {table:#x}: {n} entries for read sites");
        }
    }

    #[test]
    fn a_read_site_is_patched_through_invalid_opcodes_only() {
        let table = 0x63000;
        let i = (0..ENTRIES).find(|&i| SiteKind::Read.fits(table, i)).unwrap();
        let entry = entry_addr(table, i);
        let mut code = READ_SITE;
        for (off, bytes) in patch_steps(entry, SiteKind::Read) {
            code[off as usize..off as usize + bytes.len()].copy_from_slice(&bytes);
            // Back from the call, a thread meets an invalid opcode or the old `cmp`.
            assert!(code[4..6] == [0x48, 0x3d] || READ_ENTRY_BYTE1.contains(&code[4]));
            assert_eq!(code[6], 0);
            assert_ne!(code[2..4], [0x0f, 0xa0]);
            assert_ne!(code[0..2], [0x31, 0x24]);
        }
        assert_eq!(code[..7], jump_to(entry));
        assert_eq!(code[7..], READ_SITE[7..]);
    }

    #[test]
    fn a_read_entry_runs_the_cmp_and_jumps_back() {
        let (table, site) = (0x63000, 0x7f00_1234_5678);
        let c = entry_code(table, 5, site, 0, SiteKind::Read);
        assert_eq!(c[17..25], (entry_addr(table, 5) + AFTER_SYSCALL).to_le_bytes());
        assert_eq!(c[36..44], [0x0f, 0x05, 0x48, 0x3d, 0x00, 0xf0, 0xff, 0xff]);
        assert_eq!(c[44..50], [0xff, 0x25, 0, 0, 0, 0]);
        assert_eq!(c[50..58], (site + 10).to_le_bytes());
    }

    #[test]
    fn sites_are_told_apart() {
        let mut b = [0x90u8; 13];
        b[..7].copy_from_slice(&[0xb8, 39, 0, 0, 0, 0x0f, 0x05]);
        assert_eq!(site_before(&b, 0x1007, 39), Some((0x1000, SiteKind::Mov)));
        assert_eq!(site_before(&b, 0x1007, 40), None);
        b[3..13].copy_from_slice(&READ_SITE);
        assert_eq!(site_before(&b, 0x1007, 0), Some((0x1003, SiteKind::Read)));
        assert_eq!(site_before(&b, 0x1007, 1), None);
    }
}
