//! The ELF loader for static and static-pie x86-64 executables.

use super::stack::{build_stack, StackInfo};
use crate::mm::ops::Placement;
use crate::mm::{Frames, Layout, MemoryManager};
use std::sync::Arc;
use goblin::elf::{header, program_header, Elf};
use rvisor_abi::{page_down, page_up, UserAddr, PAGE_SIZE};
use rvisor_platform::{Context, Perms};

/// Why a file cannot be executed; the CLI maps these to a shell's 126.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("exec format error: not an ELF file")]
    NotElf,
    #[error("exec format error: {0}")]
    Unsupported(&'static str),
    #[error("{}", describe_errno(*.0))]
    Errno(rvisor_abi::ErrnoCode),
    #[error("malformed ELF: {0}")]
    Malformed(String),
    #[error("out of memory while loading")]
    NoMemory,
}

/// The C library's words for an errno ("No such file or directory").
fn describe_errno(code: rvisor_abi::ErrnoCode) -> String {
    let s = std::io::Error::from_raw_os_error(code.0 as i32).to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

/// What the task needs to start running the image.
pub struct LoadedImage {
    pub entry: u64,
    pub sp: u64,
}

/// Base of the randomised region where ET_DYN executables land (Linux's ELF_ET_DYN_BASE).
const ET_DYN_BASE: u64 = 0x5555_5555_4000;
/// Top of the stack before randomisation, and how far it is randomised (16 GiB).
const STACK_TOP: u64 = 0x7fff_ff00_0000;
const STACK_RANDOM: u64 = 1 << 34;
/// Room kept between the stack and the top-down mmap area (RLIMIT_STACK + gap).
const STACK_GAP: u64 = (8 << 20) + (128 << 20);
const INITIAL_STACK: u64 = 128 << 10;

pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // getrandom only fails if the host has no entropy source at all; fall back to
    // the clock rather than refusing to run.
    if getrandom::fill(&mut b).is_err() {
        return std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

fn perms_of(flags: u32) -> Perms {
    Perms {
        read: flags & program_header::PF_R != 0,
        write: flags & program_header::PF_W != 0,
        exec: flags & program_header::PF_X != 0,
    }
}

/// Checks that `image` is an executable this loader can run, and returns the
/// path of its program interpreter (PT_INTERP) if it has one.
pub fn check(image: &[u8]) -> Result<Option<String>, ExecError> {
    parse(image).map(|e| e.interpreter.map(str::to_string))
}

fn parse(image: &[u8]) -> Result<Elf<'_>, ExecError> {
    if image.len() < 20 || &image[..4] != b"\x7fELF" {
        return Err(ExecError::NotElf);
    }
    if image[4] != header::ELFCLASS64 {
        return Err(ExecError::Unsupported("32-bit ELF is not supported"));
    }
    let elf = Elf::parse(image).map_err(|e| ExecError::Malformed(e.to_string()))?;
    if elf.header.e_machine != header::EM_X86_64 {
        return Err(ExecError::Unsupported("not an x86-64 program"));
    }
    if !matches!(elf.header.e_type, header::ET_EXEC | header::ET_DYN) {
        return Err(ExecError::Unsupported("not an executable"));
    }
    Ok(elf)
}

/// Loads `image` into `mm`, which must be empty, and builds the initial stack.
#[allow(clippy::too_many_arguments)]
pub fn load(
    mm: &MemoryManager,
    ctx: &mut dyn Context,
    vdso: &Arc<Frames>,
    image: &[u8],
    interp: Option<&[u8]>,
    execfn: &str,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    creds: [u32; 4],
) -> Result<LoadedImage, ExecError> {
    let elf = parse(image)?;
    let bias = match elf.header.e_type {
        header::ET_DYN => ET_DYN_BASE + (random_u64() % (1 << 28)) * PAGE_SIZE,
        _ => 0,
    };

    let (first_vaddr, image_end) = map_segments(mm, ctx, &elf, image, bias)?;
    let phdr = elf
        .program_headers
        .iter()
        .find(|p| p.p_type == program_header::PT_PHDR)
        .map(|p| p.p_vaddr + bias)
        .unwrap_or(first_vaddr + elf.header.e_phoff);

    let stack_top = page_down(STACK_TOP - random_u64() % STACK_RANDOM);
    let stack_low = stack_top - INITIAL_STACK;
    mm.map_anonymous(ctx, Placement::Fixed(stack_low), INITIAL_STACK, Perms { read: true, write: true, exec: false }, false, true)
        .map_err(|_| ExecError::NoMemory)?;
    let brk = page_up(image_end).ok_or(ExecError::NoMemory)?;
    let mmap_base = page_down(stack_top - STACK_GAP - (random_u64() % (1 << 28)) * PAGE_SIZE);
    let mut layout = Layout { mmap_base, brk_start: brk, brk, stack_top, ..Layout::default() };
    mm.set_layout(layout);
    let vdso = mm.map_vdso(vdso).map_err(|_| ExecError::NoMemory)?;
    // The program interpreter (ld.so) goes in the mmap area; the program starts there.
    let (interp_base, start) = match interp {
        Some(ld) => {
            let ld_elf = parse(ld)?;
            let span = load_span(&ld_elf)?;
            let base = mm.find_free(span).map_err(|_| ExecError::NoMemory)?;
            let lo = ld_elf.program_headers.iter().filter(|p| p.p_type == program_header::PT_LOAD).map(|p| page_down(p.p_vaddr)).min().unwrap_or(0);
            let ld_bias = base - lo;
            map_segments(mm, ctx, &ld_elf, ld, ld_bias)?;
            (ld_bias, ld_elf.header.e_entry + ld_bias)
        }
        None => (0, elf.header.e_entry + bias),
    };

    let info = StackInfo {
        phdr,
        phnum: elf.header.e_phnum as u64,
        entry: elf.header.e_entry + bias,
        interp_base,
        vdso,
        execfn,
        argv,
        envp,
        creds,
    };
    let sp = build_stack(mm, stack_top, &info, &mut layout).map_err(|_| ExecError::NoMemory)?;
    mm.set_layout(layout);
    Ok(LoadedImage { entry: start, sp })
}

/// The address range the PT_LOAD segments of `elf` span, page-aligned.
fn load_span(elf: &Elf<'_>) -> Result<u64, ExecError> {
    let loads = elf.program_headers.iter().filter(|p| p.p_type == program_header::PT_LOAD);
    let lo = loads.clone().map(|p| page_down(p.p_vaddr)).min().ok_or_else(|| ExecError::Malformed("no loadable segments".into()))?;
    let hi = loads.map(|p| p.p_vaddr.saturating_add(p.p_memsz)).max().and_then(page_up).unwrap_or(lo);
    Ok(hi.saturating_sub(lo).max(PAGE_SIZE))
}

/// Maps the PT_LOAD segments of `elf` at `bias` and copies their file contents in.
/// Returns the address of the first byte of the file as mapped, and the image end.
fn map_segments(mm: &MemoryManager, ctx: &mut dyn Context, elf: &Elf<'_>, image: &[u8], bias: u64) -> Result<(u64, u64), ExecError> {
    let loads: Vec<_> = elf.program_headers.iter().filter(|p| p.p_type == program_header::PT_LOAD).collect();
    if loads.is_empty() {
        return Err(ExecError::Malformed("no loadable segments".into()));
    }
    let mut image_end = 0;
    let mut first_vaddr = None;
    let mut mapped_end = 0;
    for ph in &loads {
        if ph.p_filesz > ph.p_memsz || ph.p_offset.checked_add(ph.p_filesz).is_none_or(|e| e > image.len() as u64) {
            return Err(ExecError::Malformed("segment outside the file".into()));
        }
        let vaddr = ph.p_vaddr.checked_add(bias).ok_or_else(|| ExecError::Malformed("segment address overflows".into()))?;
        let end = vaddr.checked_add(ph.p_memsz).and_then(page_up).ok_or_else(|| ExecError::Malformed("segment address overflows".into()))?;
        // Segments may share a page at their boundary: map only what is not mapped yet.
        let start = page_down(vaddr).max(mapped_end);
        if end > start {
            mm.map_anonymous(ctx, Placement::Fixed(start), end - start, perms_of(ph.p_flags), false, false)
                .map_err(|_| ExecError::Malformed("segment cannot be mapped".into()))?;
            mapped_end = end;
        }
        let data = &image[ph.p_offset as usize..(ph.p_offset + ph.p_filesz) as usize];
        mm.write_bytes_force(UserAddr(vaddr), data).map_err(|_| ExecError::NoMemory)?;
        first_vaddr.get_or_insert(vaddr.wrapping_sub(ph.p_offset));
        image_end = image_end.max(vaddr + ph.p_memsz);
    }
    Ok((first_vaddr.unwrap_or(bias), image_end))
}
