//! What the guest sees besides app memory: the upper half of every address space
//! (the IDT, the entry page, and per vCPU a GDT with its TSS and an exception stack),
//! and the vCPU's control registers, segments and MSRs.
//!
//! Nothing here runs in guest ring 0: this host's KVM (PVM) emulates ring 0 an
//! instruction at a time, and a ring-3 `syscall` stays in ring 3 anyway (see
//! ../shared/notes/machine.md). So the `syscall` entry (LSTAR) and the exception
//! handlers are ring-3 code on one user-readable page, each a single `out` to a port
//! the TSS's I/O bitmap lets ring 3 use: the exit hands the app's registers to the
//! Sentry, which resumes the app by setting them, never returning to that code.

use kvm_bindings::{kvm_dtable, kvm_segment, kvm_sregs};

/// The end of the lower half, where app mappings live.
pub const LOWER_HALF_END: u64 = 1 << 47;
/// The upper-half region every address space shares (PML4 slot 511).
pub const KERNEL_BASE: u64 = 0xffff_ff80_0000_0000;
/// The IDT (supervisor-only: ring 3 cannot read or change it).
pub const IDT: u64 = KERNEL_BASE;
/// The entry page: the `syscall` entry at its start, exception handler `v` at
/// `HANDLERS + 16 * v`. User-readable and executable, never writable.
pub const ENTRY: u64 = KERNEL_BASE + 0x1000;
const HANDLERS_OFF: u64 = 0x100;
/// A `syscall` instruction on the entry page, which the platform runs once at start
/// to see where this KVM enters `syscall` (an app may run it too: it is a syscall).
pub const PROBE: u64 = ENTRY + 0x800;
/// Per vCPU `i`: its GDT and TSS page (supervisor-only) at `VCPU_AREAS + 2 pages * i`,
/// then its exception stack page (user-writable: ring-3 handlers run on it).
const VCPU_AREAS: u64 = KERNEL_BASE + 0x10_0000;
/// How many vCPUs an address space may have (2 pages of upper-half space each).
pub const MAX_VCPUS: usize = 4096;

/// The port a `syscall` reports on, and the first of the exception ports (one per
/// vector 0..32).
pub const SYSCALL_PORT: u16 = 0x10;
pub const EXCEPTION_PORT: u16 = 0x20;
const VECTORS: u64 = 32;

/// Linux's GDT layout (PVM requires the host's user selectors).
pub const USER_CS: u16 = 0x33;
pub const USER_DS: u16 = 0x2b;
const KERNEL_CS: u16 = 0x10;
pub const USER_CS32: u16 = 0x23;
const TSS_SEL: u16 = 0x40;
/// Where the TSS sits in its vCPU's GDT page, and its limit: the 104-byte TSS, an
/// I/O bitmap of ports 0..64 and the bitmap's terminating byte.
const TSS_OFF: u64 = 0x800;
const TSS_LIMIT: u32 = 104 + 8 + 1 - 1;

pub fn handler(vector: u64) -> u64 {
    ENTRY + HANDLERS_OFF + 16 * vector
}

pub fn vcpu_tables(i: usize) -> u64 {
    VCPU_AREAS + 0x2000 * i as u64
}

/// The top of vCPU `i`'s exception stack.
pub fn exception_stack_top(i: usize) -> u64 {
    vcpu_tables(i) + 0x2000
}

/// The syscall a call to `addr` in Linux's legacy vsyscall page stands for.
pub fn vsyscall(addr: u64) -> Option<u64> {
    match addr {
        0xffff_ffff_ff60_0000 => Some(libc::SYS_gettimeofday as u64),
        0xffff_ffff_ff60_0400 => Some(libc::SYS_time as u64),
        0xffff_ffff_ff60_0800 => Some(libc::SYS_getcpu as u64),
        _ => None,
    }
}

/// The port whose `out` is at `rip` (or was just before it) in the entry page.
pub fn port_at(rip: u64) -> Option<u16> {
    let off = rip.checked_sub(ENTRY).filter(|&o| o < 4096)?;
    let (stub, at) = (off & !15, off & 15);
    if at != 0 && at != 2 {
        return None;
    }
    match stub {
        0 => Some(SYSCALL_PORT),
        s if (HANDLERS_OFF..HANDLERS_OFF + 16 * VECTORS).contains(&s) => Some(EXCEPTION_PORT + ((s - HANDLERS_OFF) / 16) as u16),
        _ => None,
    }
}

/// The entry page's bytes: `out %al, $port` then `ud2` (which only runs if the
/// Sentry resumed at the next instruction, a bug that then shows as SIGILL).
pub fn entry_page() -> [u8; 4096] {
    let mut page = [0xccu8; 4096];
    let stub = |port: u16| [0xe6, port as u8, 0x0f, 0x0b];
    page[..4].copy_from_slice(&stub(SYSCALL_PORT));
    let probe = (PROBE - ENTRY) as usize;
    page[probe..probe + 4].copy_from_slice(&[0x0f, 0x05, 0x0f, 0x0b]);
    for v in 0..VECTORS {
        let at = (HANDLERS_OFF + 16 * v) as usize;
        page[at..at + 4].copy_from_slice(&stub(EXCEPTION_PORT + v as u16));
    }
    page
}

/// The IDT: vectors 0..32 go to their ring-3 handler on IST 1 (interrupt gates, DPL 0
/// so that `int n` from the app is a #GP); the rest are absent.
pub fn idt_page() -> [u8; 4096] {
    let mut page = [0u8; 4096];
    for v in 0..VECTORS {
        let h = handler(v);
        let lo = (h & 0xffff) | (u64::from(USER_CS) << 16) | (1 << 32) | (0x8e << 40) | ((h >> 16) & 0xffff) << 48;
        let at = (v * 16) as usize;
        page[at..at + 8].copy_from_slice(&lo.to_le_bytes());
        page[at + 8..at + 16].copy_from_slice(&(h >> 32).to_le_bytes());
    }
    page
}

/// vCPU `i`'s GDT page: Linux's descriptors, then its TSS (IST 1 = its exception
/// stack) with an I/O bitmap that lets ring 3 use ports 0x10..0x40 only.
pub fn vcpu_tables_page(i: usize) -> [u8; 4096] {
    let mut page = [0u8; 4096];
    let gdt: [u64; 7] = [
        0,
        0x00cf_9b00_0000_ffff, // kernel CS32
        0x00af_9b00_0000_ffff, // kernel CS64 (0x10)
        0x00cf_9300_0000_ffff, // kernel DS (0x18)
        0x00cf_fb00_0000_ffff, // user CS32 (0x23)
        0x00cf_f300_0000_ffff, // user DS (0x2b)
        0x00af_fb00_0000_ffff, // user CS64 (0x33)
    ];
    for (k, d) in gdt.iter().enumerate() {
        page[k * 8..k * 8 + 8].copy_from_slice(&d.to_le_bytes());
    }
    let tss = vcpu_tables(i) + TSS_OFF;
    let limit = u64::from(TSS_LIMIT);
    let lo = (limit & 0xffff) | (tss & 0xff_ffff) << 16 | 0x8b << 40 | ((limit >> 16) & 0xf) << 48 | ((tss >> 24) & 0xff) << 56;
    let sel = usize::from(TSS_SEL);
    page[sel..sel + 8].copy_from_slice(&lo.to_le_bytes());
    page[sel + 8..sel + 16].copy_from_slice(&(tss >> 32).to_le_bytes());
    let t = TSS_OFF as usize;
    page[t + 36..t + 44].copy_from_slice(&exception_stack_top(i).to_le_bytes());
    page[t + 102..t + 104].copy_from_slice(&104u16.to_le_bytes());
    page[t + 104..t + 113].copy_from_slice(&[0xff, 0xff, 0, 0, 0, 0, 0, 0, 0xff]);
    page
}

fn segment(selector: u16, type_: u8, long: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 3,
        db: u8::from(!long),
        s: 1,
        l: u8::from(long),
        g: 1,
        ..Default::default()
    }
}

const CR0_PE: u64 = 1;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
pub const CR4_FSGSBASE: u64 = 1 << 16;
const CR4_OSXSAVE: u64 = 1 << 18;
const EFER_SCE: u64 = 1;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;

/// The app's code segment that `cs` names: Linux's 32-bit one, else the 64-bit one
/// (the only two an app may run in).
pub fn user_code_segment(cs: u64) -> (u16, kvm_segment) {
    if cs == u64::from(USER_CS32) {
        (USER_CS32, segment(USER_CS32, 0xb, false))
    } else {
        (USER_CS, segment(USER_CS, 0xb, true))
    }
}

/// A vCPU in 64-bit ring 3 with the app's segments, on page tables at `cr3`.
pub fn user_sregs(mut s: kvm_sregs, cr3: u64, i: usize, cr4_extra: u64) -> kvm_sregs {
    s.cs = segment(USER_CS, 0xb, true);
    let data = segment(USER_DS, 0x3, false);
    (s.ds, s.es, s.fs, s.gs, s.ss) = (data, data, data, data, data);
    s.tr = kvm_segment { base: vcpu_tables(i) + TSS_OFF, limit: TSS_LIMIT, selector: TSS_SEL, type_: 0xb, present: 1, ..Default::default() };
    s.ldt = kvm_segment { type_: 2, unusable: 1, ..Default::default() };
    s.gdt = kvm_dtable { base: vcpu_tables(i), limit: TSS_SEL + 15, ..Default::default() };
    s.idt = kvm_dtable { base: IDT, limit: 0xfff, ..Default::default() };
    s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    s.cr3 = cr3;
    s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE | cr4_extra;
    s.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
    s
}

pub const MSR_STAR: u32 = 0xc000_0081;
pub const MSR_LSTAR: u32 = 0xc000_0082;
pub const MSR_CSTAR: u32 = 0xc000_0083;
pub const MSR_SFMASK: u32 = 0xc000_0084;
pub const MSR_FS_BASE: u32 = 0xc000_0100;
pub const MSR_GS_BASE: u32 = 0xc000_0101;
pub const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;

/// The syscall MSRs: `syscall` (from either mode) lands on the entry page; the
/// flags it masks are Linux's.
pub fn syscall_msrs() -> [(u32, u64); 5] {
    [
        (MSR_STAR, u64::from(USER_CS32 & !3) << 48 | u64::from(KERNEL_CS) << 32),
        (MSR_LSTAR, ENTRY),
        (MSR_CSTAR, ENTRY),
        (MSR_SFMASK, 0x47700),
        (MSR_KERNEL_GS_BASE, 0),
    ]
}
