//! The initial stack: strings, then auxv, envp, argv and argc, as the x86-64 psABI
//! and Linux's `create_elf_tables` lay them out.

use crate::mm::{Layout, MemoryManager};
use rvisor_abi::{SysResult, UserAddr};
use rvisor_platform::hostcall::host_auxval;

pub struct StackInfo<'a> {
    pub phdr: u64,
    pub phnum: u64,
    pub entry: u64,
    /// Where the program interpreter was loaded (AT_BASE), 0 without one.
    pub interp_base: u64,
    /// Where the vDSO image is (AT_SYSINFO_EHDR).
    pub vdso: u64,
    pub execfn: &'a str,
    pub argv: &'a [Vec<u8>],
    pub envp: &'a [Vec<u8>],
    /// uid, euid, gid, egid.
    pub creds: [u32; 4],
    /// Whether the stack's start is randomised (not under ADDR_NO_RANDOMIZE).
    pub randomize: bool,
}

const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_BASE: u64 = 7;
const AT_FLAGS: u64 = 8;
const AT_ENTRY: u64 = 9;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;
const AT_PLATFORM: u64 = 15;
const AT_HWCAP: u64 = 16;
const AT_CLKTCK: u64 = 17;
const AT_SECURE: u64 = 23;
const AT_RANDOM: u64 = 25;
const AT_HWCAP2: u64 = 26;
const AT_EXECFN: u64 = 31;
const AT_SYSINFO_EHDR: u64 = 33;
const AT_MINSIGSTKSZ: u64 = 51;

/// How far below the strings the rest of the stack starts at most.
const STACK_RANDOM_OFFSET: u64 = 8192;

/// Pushes bytes below `sp` and returns their address.
fn push(mm: &MemoryManager, sp: &mut u64, bytes: &[u8]) -> SysResult<u64> {
    *sp -= bytes.len() as u64;
    mm.write_bytes_force(UserAddr(*sp), bytes)?;
    Ok(*sp)
}

fn push_cstr(mm: &MemoryManager, sp: &mut u64, s: &[u8]) -> SysResult<u64> {
    let mut v = s.to_vec();
    v.push(0);
    push(mm, sp, &v)
}

/// Writes the initial stack below `top` and returns the app's starting `rsp`.
pub fn build_stack(mm: &MemoryManager, top: u64, info: &StackInfo<'_>, layout: &mut Layout) -> SysResult<u64> {
    let mut sp = top;
    let execfn = push_cstr(mm, &mut sp, info.execfn.as_bytes())?;
    layout.env_end = sp;
    let mut envp = Vec::with_capacity(info.envp.len());
    for e in info.envp.iter().rev() {
        envp.push(push_cstr(mm, &mut sp, e)?);
    }
    envp.reverse();
    layout.env_start = sp;
    layout.arg_end = sp;
    let mut argv = Vec::with_capacity(info.argv.len());
    for a in info.argv.iter().rev() {
        argv.push(push_cstr(mm, &mut sp, a)?);
    }
    argv.reverse();
    layout.arg_start = sp;
    // The rest starts up to 8 KiB lower, at random (Linux's arch_align_stack,
    // unless ADDR_NO_RANDOMIZE): part of the stack a program may not count on,
    // as under a tiny RLIMIT_STACK, where that decides whether it faults.
    if info.randomize {
        sp -= super::elf::random_u64() % STACK_RANDOM_OFFSET;
    }
    sp &= !15;
    let platform = push_cstr(mm, &mut sp, b"x86_64")?;
    let mut random = [0u8; 16];
    random[..8].copy_from_slice(&super::elf::random_u64().to_le_bytes());
    random[8..].copy_from_slice(&super::elf::random_u64().to_le_bytes());
    let random = push(mm, &mut sp, &random)?;

    let [uid, euid, gid, egid] = info.creds;
    let minsigstksz = match host_auxval(AT_MINSIGSTKSZ) {
        0 => 2048,
        v => v,
    };
    let auxv: [(u64, u64); 20] = [
        (AT_SYSINFO_EHDR, info.vdso),
        (AT_PHDR, info.phdr),
        (AT_PHENT, 56),
        (AT_PHNUM, info.phnum),
        (AT_PAGESZ, 4096),
        (AT_BASE, info.interp_base),
        (AT_FLAGS, 0),
        (AT_ENTRY, info.entry),
        (AT_UID, uid as u64),
        (AT_EUID, euid as u64),
        (AT_GID, gid as u64),
        (AT_EGID, egid as u64),
        (AT_SECURE, 0),
        (AT_RANDOM, random),
        (AT_HWCAP, host_auxval(AT_HWCAP)),
        (AT_HWCAP2, host_auxval(AT_HWCAP2)),
        (AT_CLKTCK, 100),
        (AT_PLATFORM, platform),
        (AT_EXECFN, execfn),
        (AT_MINSIGSTKSZ, minsigstksz),
    ];

    for (slot, &kv) in layout.auxv.iter_mut().zip(auxv.iter()) {
        *slot = kv;
    }

    // Everything below is 8-byte words; the final rsp must be 16-byte aligned.
    let words = 1 + argv.len() + 1 + envp.len() + 1 + 2 * (auxv.len() + 1);
    sp &= !15;
    if words % 2 == 1 {
        sp -= 8;
    }
    let mut table: Vec<u64> = Vec::with_capacity(words);
    table.push(argv.len() as u64);
    table.extend(&argv);
    table.push(0);
    table.extend(&envp);
    table.push(0);
    for (k, v) in auxv {
        table.push(k);
        table.push(v);
    }
    table.push(AT_NULL);
    table.push(0);
    let bytes: Vec<u8> = table.iter().flat_map(|w| w.to_le_bytes()).collect();
    push(mm, &mut sp, &bytes)
}
