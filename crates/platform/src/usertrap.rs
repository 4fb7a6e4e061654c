//! Syscall patching's code in the app's address space: the `[usertrap]` table the
//! kernel maps at a low address, and the jump it writes over a patched site. The
//! trampoline the entries jump to is the platform's (systrap: `rvisor_systrap_tramp`).
//!
//! A site is `mov $nr, %eax; syscall` (`b8 imm32 0f 05`). It becomes `jmp *abs32`
//! (`ff 24 25 abs32`), an indirect jump through the first word of its entry. The
//! table lies in `[0x60000, 0x70000)`, so byte 5 of the jump, where `syscall` was,
//! is `0x06`, an invalid opcode: the three-step write (`PATCH_STEPS`) never lets
//! another thread run a mix of the two instructions, only fault on `0x06`.
//!
//! The table's first word is the trampoline's address; entry `i` is at
//! `table + ENTRY * (i + 1)`:
//! ```text
//! +0   .quad +8
//! +8   lea FALLBACK(%rip), %r11        the site, to the kernel (by its own table)
//! +15  movabs $site+7, %rcx            the return address
//! +25  jmp *table(%rip)                the trampoline
//! +31  FALLBACK: mov $nr, %eax         the trampoline's way out when it cannot
//! +36  RESUME: syscall                 serve the call: a trapping syscall
//! +38  ud2
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

/// The code of entry `i` for the site at `site` calling `nr`.
pub fn entry_code(table: u64, i: usize, site: u64, nr: u32) -> [u8; ENTRY as usize] {
    let e = entry_addr(table, i);
    let mut c = [0xccu8; ENTRY as usize];
    c[0..8].copy_from_slice(&(e + 8).to_le_bytes());
    c[8..11].copy_from_slice(&[0x4c, 0x8d, 0x1d]);
    c[11..15].copy_from_slice(&((FALLBACK - 15) as u32).to_le_bytes());
    c[15..17].copy_from_slice(&[0x48, 0xb9]);
    c[17..25].copy_from_slice(&(site + SITE_LEN).to_le_bytes());
    c[25..27].copy_from_slice(&[0xff, 0x25]);
    c[27..31].copy_from_slice(&((table as i64 - (e + 31) as i64) as i32).to_le_bytes());
    c[31] = 0xb8;
    c[32..36].copy_from_slice(&nr.to_le_bytes());
    c[36..40].copy_from_slice(&[0x0f, 0x05, 0x0f, 0x0b]);
    c
}

/// A site's bytes if it can be patched: `mov $nr, %eax; syscall` with this `nr`.
pub fn is_site(bytes: &[u8; SITE_LEN as usize], nr: u64) -> bool {
    bytes[0] == 0xb8 && bytes[5..7] == [0x0f, 0x05] && u64::from(u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]])) == nr
}

/// The jump that replaces a site whose entry is at `entry`, and the three writes
/// that put it there, in order, as (offset, bytes): byte 5 first (`0x06`), then
/// bytes 1..7, then byte 0. A thread that decoded the old `mov` (perhaps with a
/// torn immediate) faults on `0x06` at site+5, and the kernel sends it back to the site.
pub fn patch_steps(entry: u64) -> [(u64, Vec<u8>); 3] {
    debug_assert!((TABLE_RANGE.0..TABLE_RANGE.1).contains(&entry));
    let a = (entry as u32).to_le_bytes();
    let jump = [0xff, 0x24, 0x25, a[0], a[1], a[2], a[3]];
    [(5, vec![jump[5]]), (1, jump[1..7].to_vec()), (0, vec![jump[0]])]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jump_has_an_invalid_opcode_where_syscall_was() {
        for table in [TABLE_RANGE.0, TABLE_RANGE.1 - TABLE_LEN] {
            for i in [0, ENTRIES - 1] {
                let steps = patch_steps(entry_addr(table, i));
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
}
