//! The ELF loader for x86-64 executables (static, static-pie, and dynamic with
//! their interpreter). Segments are mapped from the file's pages (its page cache,
//! or a tmpfs file's own pages) copy-on-write, as Linux maps them: an exec copies
//! nothing but the partial page where a segment's bss begins.

use super::stack::{build_stack, StackInfo};
use crate::mm::ops::Placement;
use crate::mm::{FilePages, Layout, MemoryManager, VdsoFrames, VmFile};
use goblin::elf::header::Header;
use goblin::elf::program_header::ProgramHeader;
use goblin::elf::{header, program_header, Elf};
use rvisor_abi::{page_down, page_up, UserAddr, PAGE_SIZE};
use rvisor_memory::MemoryFile;
use rvisor_platform::{Context, Perms};
use std::borrow::Cow;
use std::sync::Arc;

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
/// How far the heap's start is randomised past the image (x86-64 Linux's
/// arch_randomize_brk), after a page's gap.
const BRK_RANDOM: u64 = 1 << 30;

/// A random multiple of the page size below `range`, or 0 when the address
/// space is not to be randomised (personality ADDR_NO_RANDOMIZE).
fn random_pages(randomize: bool, range: u64) -> u64 {
    if randomize {
        random_u64() % (range / PAGE_SIZE) * PAGE_SIZE
    } else {
        0
    }
}

/// Room kept between the stack and the top-down mmap area: RLIMIT_STACK and a
/// guard gap, at least 128 MiB and at most 5/6 of the address space, as Linux's
/// mmap_base (which for an unlimited stack lays mmaps out bottom-up instead).
fn stack_gap(stack_limit: u64, stack_top: u64) -> u64 {
    stack_limit.saturating_add(256 * PAGE_SIZE).clamp(128 << 20, stack_top / 6 * 5)
}
/// How much room below its strings the initial stack has, within RLIMIT_STACK.
const STACK_EXPAND: u64 = 128 << 10;

/// The initial stack's size, as Linux's setup_arg_pages: the pages exec copied
/// the strings to (the path, envp and argv, below a null word) and
/// `STACK_EXPAND` more, but no more than RLIMIT_STACK, which is what makes
/// a program under a tiny `ulimit -s` fault as on Linux.
fn initial_stack(stack_limit: u64, execfn: &str, argv: &[Vec<u8>], envp: &[Vec<u8>]) -> u64 {
    let strings: u64 = 8 + execfn.len() as u64 + 1 + argv.iter().chain(envp).map(|s| s.len() as u64 + 1).sum::<u64>();
    let args = page_up(strings).unwrap_or(u64::MAX);
    args.max(page_down(stack_limit).min(args.saturating_add(STACK_EXPAND)))
}

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

/// An executable file as the loader sees it: its first bytes, and either its
/// pages (segments are mapped from them) or, for a file without pages of its
/// own, its whole contents in `head`.
pub struct Image {
    pub head: Vec<u8>,
    pub size: u64,
    pub pages: Option<Arc<dyn FilePages>>,
    /// The file, which its mappings name in /proc/PID/maps.
    pub dentry: Arc<crate::vfs::Dentry>,
}

/// How much of a file with pages is read up front: its headers.
pub const IMAGE_HEAD: u64 = 4096;

impl Image {
    /// The file's bytes `[off, off + len)`.
    fn bytes(&self, mf: &MemoryFile, off: u64, len: u64) -> Result<Cow<'_, [u8]>, ExecError> {
        let outside = || ExecError::Malformed("headers outside the file".into());
        let end = off.checked_add(len).filter(|&e| e <= self.size).ok_or_else(outside)?;
        if end <= self.head.len() as u64 {
            return Ok(Cow::Borrowed(&self.head[off as usize..end as usize]));
        }
        let pages = self.pages.as_ref().ok_or_else(outside)?;
        let mut buf = vec![0u8; len as usize];
        pages.read(mf, off, &mut buf).map_err(|e| ExecError::Errno(e.code))?;
        Ok(Cow::Owned(buf))
    }
}

/// What the loader uses of an ELF file.
struct ElfInfo {
    header: Header,
    phdrs: Vec<ProgramHeader>,
    interp: Option<String>,
}

impl ElfInfo {
    fn loads(&self) -> impl Iterator<Item = &ProgramHeader> + Clone {
        self.phdrs.iter().filter(|p| p.p_type == program_header::PT_LOAD)
    }
}

/// Checks that `image` is an executable this loader can run, and returns the
/// path of its program interpreter (PT_INTERP) if it has one.
pub fn check(image: &Image, mf: &MemoryFile) -> Result<Option<String>, ExecError> {
    parse(image, mf).map(|e| e.interp)
}

/// The longest program header table read (Linux caps it at 64 KiB too).
const PHDRS_MAX: u64 = 64 << 10;

fn parse(image: &Image, mf: &MemoryFile) -> Result<ElfInfo, ExecError> {
    let head = &image.head;
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return Err(ExecError::NotElf);
    }
    if head[4] != header::ELFCLASS64 {
        return Err(ExecError::Unsupported("32-bit ELF is not supported"));
    }
    let malformed = |e: goblin::error::Error| ExecError::Malformed(e.to_string());
    let header = Elf::parse_header(head).map_err(malformed)?;
    if header.e_machine != header::EM_X86_64 {
        return Err(ExecError::Unsupported("not an x86-64 program"));
    }
    if !matches!(header.e_type, header::ET_EXEC | header::ET_DYN) {
        return Err(ExecError::Unsupported("not an executable"));
    }
    let ph_len = u64::from(header.e_phnum) * program_header::program_header64::SIZEOF_PHDR as u64;
    if usize::from(header.e_phentsize) != program_header::program_header64::SIZEOF_PHDR || ph_len > PHDRS_MAX {
        return Err(ExecError::Malformed("bad program header table".into()));
    }
    let table = image.bytes(mf, header.e_phoff, ph_len)?;
    let phdrs = ProgramHeader::parse(&table, 0, usize::from(header.e_phnum), goblin::container::Ctx::default()).map_err(malformed)?;
    let interp = match phdrs.iter().find(|p| p.p_type == program_header::PT_INTERP) {
        Some(p) if p.p_filesz <= 4096 => {
            let path = image.bytes(mf, p.p_offset, p.p_filesz)?;
            let path = path.split(|&b| b == 0).next().unwrap_or_default();
            Some(String::from_utf8_lossy(path).into_owned())
        }
        Some(_) => return Err(ExecError::Malformed("interpreter path too long".into())),
        None => None,
    };
    Ok(ElfInfo { header, phdrs, interp })
}

/// Loads `image` into `mm`, which must be empty, and builds the initial stack.
/// With `randomize` (not under ADDR_NO_RANDOMIZE) the image, stack, heap and
/// mmap area start at random, as Linux's with randomize_va_space 2; without,
/// always at the same places.
#[allow(clippy::too_many_arguments)]
pub fn load(
    mm: &MemoryManager,
    ctx: &mut dyn Context,
    vdso: VdsoFrames,
    image: &Image,
    interp: Option<&Image>,
    execfn: &str,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    creds: [u32; 4],
    randomize: bool,
) -> Result<LoadedImage, ExecError> {
    let mf = mm.memory_file().clone();
    let elf = parse(image, &mf)?;
    let bias = match elf.header.e_type {
        header::ET_DYN => ET_DYN_BASE + random_pages(randomize, PAGE_SIZE << 28),
        _ => 0,
    };

    let (first_vaddr, image_end) = map_segments(mm, ctx, &elf, image, bias)?;
    let phdr = elf
        .phdrs
        .iter()
        .find(|p| p.p_type == program_header::PT_PHDR)
        .map(|p| p.p_vaddr + bias)
        .unwrap_or(first_vaddr + elf.header.e_phoff);

    let stack_top = STACK_TOP - random_pages(randomize, STACK_RANDOM);
    let stack_size = initial_stack(mm.stack_limit(), execfn, argv, envp);
    let stack_low = stack_top.checked_sub(stack_size).ok_or(ExecError::NoMemory)?;
    mm.map_anonymous(ctx, Placement::Fixed(stack_low), stack_size, Perms { read: true, write: true, exec: false }, false, true, None)
        .map_err(|_| ExecError::NoMemory)?;
    // As Linux's load_elf_binary: randomised, the heap starts a page past the
    // image and then at random; else right at the image's end.
    let brk = page_up(image_end).ok_or(ExecError::NoMemory)?;
    let brk = if randomize { brk + PAGE_SIZE + random_pages(true, BRK_RANDOM) } else { brk };
    let mmap_base = page_down(stack_top - stack_gap(mm.stack_limit(), stack_top) - random_pages(randomize, PAGE_SIZE << 28));
    let start_data = elf.loads().map(|p| p.p_vaddr).max().unwrap_or(0).saturating_add(bias);
    let end_data = elf.loads().map(|p| p.p_vaddr.saturating_add(p.p_filesz)).max().unwrap_or(0).saturating_add(bias);
    let mut layout = Layout { mmap_base, brk_start: brk, brk, stack_top, start_data, end_data, ..Layout::default() };
    mm.set_layout(layout);
    let vdso = mm.map_vdso(vdso).map_err(|_| ExecError::NoMemory)?;
    layout.vdso = vdso;
    // The program interpreter (ld.so) goes in the mmap area; the program starts there.
    let (interp_base, start) = match interp {
        Some(ld) => {
            let ld_elf = parse(ld, &mf)?;
            let span = load_span(&ld_elf)?;
            let base = mm.find_free(span).map_err(|_| ExecError::NoMemory)?;
            let lo = ld_elf.loads().map(|p| page_down(p.p_vaddr)).min().unwrap_or(0);
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
        randomize,
    };
    let sp = build_stack(mm, stack_top, &info, &mut layout).map_err(|_| ExecError::NoMemory)?;
    mm.set_layout(layout);
    Ok(LoadedImage { entry: start, sp })
}

/// The address range the PT_LOAD segments of `elf` span, page-aligned.
fn load_span(elf: &ElfInfo) -> Result<u64, ExecError> {
    let loads = elf.loads();
    let lo = loads.clone().map(|p| page_down(p.p_vaddr)).min().ok_or_else(|| ExecError::Malformed("no loadable segments".into()))?;
    let hi = loads.map(|p| p.p_vaddr.saturating_add(p.p_memsz)).max().and_then(page_up).unwrap_or(lo);
    Ok(hi.saturating_sub(lo).max(PAGE_SIZE))
}

/// Maps the PT_LOAD segments of `elf` at `bias`: from the file's pages when it
/// has them, else by copying their contents in. Returns the address of the first
/// byte of the file as mapped, and the image end.
fn map_segments(mm: &MemoryManager, ctx: &mut dyn Context, elf: &ElfInfo, image: &Image, bias: u64) -> Result<(u64, u64), ExecError> {
    let loads: Vec<_> = elf.loads().collect();
    if loads.is_empty() {
        return Err(ExecError::Malformed("no loadable segments".into()));
    }
    let bad = |what: &str| ExecError::Malformed(what.into());
    let mut image_end = 0;
    let mut first_vaddr = None;
    let mut mapped_end = 0;
    for ph in &loads {
        if ph.p_filesz > ph.p_memsz || ph.p_offset.checked_add(ph.p_filesz).is_none_or(|e| e > image.size) {
            return Err(bad("segment outside the file"));
        }
        let vaddr = ph.p_vaddr.checked_add(bias).ok_or_else(|| bad("segment address overflows"))?;
        let end = vaddr.checked_add(ph.p_memsz).and_then(page_up).ok_or_else(|| bad("segment address overflows"))?;
        let perms = perms_of(ph.p_flags);
        match &image.pages {
            // As Linux's elf_map: the file pages privately, then anonymous pages
            // for the rest of the bss.
            Some(pages) if ph.p_filesz > 0 => {
                if ph.p_vaddr % PAGE_SIZE != ph.p_offset % PAGE_SIZE {
                    return Err(bad("segment offset and address disagree within a page"));
                }
                let file_end = page_up(vaddr + ph.p_filesz).ok_or_else(|| bad("segment address overflows"))?;
                let start = page_down(vaddr);
                // exec opens the program read-only, as Linux's open_exec.
                mm.map_file(ctx, Placement::Fixed(start), file_end - start, perms, false, true, pages.clone(), page_down(ph.p_offset), VmFile { dentry: image.dentry.clone(), writable: false }, None)
                    .map_err(|_| bad("segment cannot be mapped"))?;
                // Linux's padzero: with a bss, the rest of the last file page reads
                // as zeros (ld.so's early allocator counts on it).
                let bss = vaddr + ph.p_filesz;
                if ph.p_memsz > ph.p_filesz && file_end > bss {
                    mm.write_bytes_force(UserAddr(bss), &vec![0u8; (file_end - bss) as usize]).map_err(|_| ExecError::NoMemory)?;
                }
                if end > file_end {
                    mm.map_anonymous(ctx, Placement::Fixed(file_end), end - file_end, perms, false, false, None).map_err(|_| bad("segment cannot be mapped"))?;
                }
                mapped_end = end;
            }
            _ => {
                // Segments may share a page at their boundary: map only what is not mapped yet.
                let start = page_down(vaddr).max(mapped_end);
                if end > start {
                    mm.map_anonymous(ctx, Placement::Fixed(start), end - start, perms, false, false, None).map_err(|_| bad("segment cannot be mapped"))?;
                    mapped_end = end;
                }
                if ph.p_filesz > 0 {
                    let data = image.bytes(mm.memory_file(), ph.p_offset, ph.p_filesz)?;
                    mm.write_bytes_force(UserAddr(vaddr), &data).map_err(|_| ExecError::NoMemory)?;
                }
            }
        }
        first_vaddr.get_or_insert(vaddr.wrapping_sub(ph.p_offset));
        image_end = image_end.max(vaddr + ph.p_memsz);
    }
    Ok((first_vaddr.unwrap_or(bias), image_end))
}
