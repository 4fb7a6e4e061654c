//! The stub: a few hundred bytes of position-independent machine code that is the
//! whole program of a stub process. No Rust (and no libc) ever runs in a stub.
//!
//! The Sentry maps a copy of the code at `STUB_CODE` in its own address space, so a
//! process forked from it finds the code at the same address, jumps there, drops every
//! other mapping and descriptor, and stops itself. All stubs come from one long-lived
//! spawner thread: a stub's parent-death signal fires when the thread that forked it
//! (or, for a stub the zygote forks with CLONE_PARENT, that forked the zygote) exits,
//! and that must mean the Sentry is gone. The thread forks the Sentry once, into the
//! zygote (`crate::zygote`), and asks it for each stub. Task threads then seize the
//! stopped stubs they run. Later the
//! Sentry points a stopped stub thread at `STUB_BATCH` to make it carry out a batch of
//! `mmap`/`munmap`/`mprotect` calls read from its (read-only) queue page.

use crate::zygote::Zygote;
use std::io;
use std::sync::OnceLock;

/// Lowest address of the stub's region; app mappings live below it.
pub const STUB_BASE: u64 = 0x7fff_fffe_0000;
/// The stub code page.
pub const STUB_CODE: u64 = STUB_BASE;
/// The stub's request queue: a page of the platform's control file, read-only here.
pub const STUB_QUEUE: u64 = STUB_BASE + 0x1000;
pub const STUB_END: u64 = STUB_BASE + 0x2000;
/// Linux's TASK_SIZE on x86-64 with 4-level paging.
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// In the stub, the memory file is descriptor 0 and the control file descriptor 1.
pub const STUB_MEMORY_FD: u64 = 0;
pub const STUB_CONTROL_FD: u64 = 1;

/// One queued syscall: number and six arguments, as the batch loop loads them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct QueuedCall {
    pub nr: u64,
    pub args: [u64; 6],
}

pub const QUEUE_CAPACITY: usize = 4096 / std::mem::size_of::<QueuedCall>();

std::arch::global_asm!(
    ".pushsection .text.rvisor_stub, \"ax\"",
    ".p2align 12",
    ".globl rvisor_stub_start",
    "rvisor_stub_start:",
    // Entry after fork: r12 = memory fd, r13 = control fd, r14 = the forking
    // thread's rseq area or 0.
    "lea r8, [rip + .Lps_body]",
    "jmp .Lp_prologue",
    ".Lps_body:",
    "mov eax, 33", "mov rdi, r12", "xor esi, esi", "syscall",          // dup2(memfd, 0)
    "mov eax, 33", "mov rdi, r13", "mov esi, 1", "syscall",            // dup2(ctlfd, 1)
    "mov eax, 436", "mov edi, 2", "mov esi, -1", "xor edx, edx", "syscall", // close_range(2, ~0, 0)
    // PTRACE_SYSEMU stops at every syscall instruction, but not at a call into the
    // vsyscall page, which the host emulates: the filter turns those into SIGSYS. A
    // host without seccomp answers them itself, as before.
    "mov eax, 157", "mov edi, 38", "mov esi, 1", "xor edx, edx", "xor r10d, r10d", "xor r8d, r8d", "syscall", // prctl(PR_SET_NO_NEW_PRIVS, 1)
    "mov eax, 317", "mov edi, 1", "xor esi, esi", "lea rdx, [rip + .Lvsyscall_fprog]", "syscall", // seccomp(SET_MODE_FILTER, 0, &prog)
    "mov eax, 324", "mov edi, 4", "xor esi, esi", "xor edx, edx", "syscall", // membarrier(REGISTER_GLOBAL_EXPEDITED): the app's membarrier reaches us
    "mov eax, 11", "xor edi, edi", "mov rsi, {base}", "syscall",       // munmap(0, STUB_BASE)
    "mov eax, 11", "mov rdi, {end}", "mov rsi, {above}", "syscall",    // munmap(STUB_END, ...)
    "mov eax, 39", "syscall",                                           // getpid()
    "mov edi, eax", "mov eax, 62", "mov esi, 19", "syscall",           // kill(pid, SIGSTOP)
    "jmp rvisor_stub_park",                                             // then wait to be seized
    // Batch: r15 = queue, r14 = count. Stops at the first error with r14 = calls left.
    ".globl rvisor_stub_batch",
    "rvisor_stub_batch:",
    "2:",
    "mov rax, [r15]", "mov rdi, [r15 + 8]", "mov rsi, [r15 + 16]", "mov rdx, [r15 + 24]",
    "mov r10, [r15 + 32]", "mov r8, [r15 + 40]", "mov r9, [r15 + 48]",
    "syscall",
    "cmp rax, -4095", "jae 3f",
    "add r15, 56", "dec r14", "jnz 2b",
    "3:",
    "int3",
    // clone() for a new app thread or process: the caller traps at the int3 with
    // the child's id in rax; the child, untraced, waits in pause() until the task
    // thread that will run it seizes it.
    ".globl rvisor_stub_clone",
    "rvisor_stub_clone:",
    "syscall",
    "test rax, rax", "jz rvisor_stub_park",
    "int3",
    ".globl rvisor_stub_park",
    "rvisor_stub_park:",
    "mov eax, 34", "syscall", "jmp rvisor_stub_park",
    // One syscall with the registers as set.
    ".globl rvisor_stub_syscall",
    "rvisor_stub_syscall:",
    "syscall",
    "int3",
    // ---- The zygote (see zygote.rs). Entered right after fork, like start, with
    // r12 = its socket, r13 = whether it (and so every stub) is made undumpable,
    // r14 = rseq area or 0. A request brings [memory file, control
    // file]; the child goes through start as if the Sentry had forked it. Its one page
    // of data is where the queue page goes in a stub. No stack.
    ".globl rvisor_stub_zygote",
    "rvisor_stub_zygote:",
    "lea r8, [rip + .Lpz_body]",
    "jmp .Lp_prologue",
    ".Lpz_body:",
    zygote_socket_asm!(".Lpz_fail", "1"),
    "mov eax, 11", "xor edi, edi", "mov rsi, {base}", "syscall",       // munmap(0, STUB_BASE)
    "mov eax, 11", "mov rdi, {end}", "mov rsi, {above}", "syscall",    // munmap(STUB_END, ...)
    "mov r12, {queue}",
    "mov eax, 9", "mov rdi, r12", "mov esi, 4096", "mov edx, 3", "mov r10d, 0x32", "mov r8, -1", "xor r9d, r9d", "syscall",
    "mov edi, 2", "cmp rax, r12", "jne .Lpz_fail",                      // mmap(RW, private, anonymous, fixed)
    "test r13d, r13d", "jz .Lpz_dumpable",                             // r13 = 0: stay dumpable
    "mov eax, 157", "mov edi, 4", "xor esi, esi", "syscall",           // prctl(PR_SET_DUMPABLE, 0)
    ".Lpz_dumpable:",
    zygote_loop_asm!(".Lpz", "24", ".Lpz_child"),
    ".Lpz_child:",
    "mov r12d, ebp", "mov r13d, r14d", "xor r14d, r14d",               // memory file, control file
    "jmp rvisor_stub_start",
    ".Lpz_done:",
    "xor edi, edi",
    ".Lpz_fail:",
    "mov eax, 231", "syscall",                                          // exit_group(edi)
    "ud2",
    // ---- What start and the zygote do first after fork, then `jmp r8`.
    ".Lp_prologue:",
    fork_prologue_asm!(".Lp"),
    "jmp r8",
    // The stub's seccomp program: a syscall from the kernel half of the address space
    // (only the vsyscall page's emulation makes one) traps; everything else, which
    // PTRACE_SYSEMU has stopped already, or the stub's own calls, is allowed. The
    // sock_fprog points at the program where the code page sits in a stub.
    ".p2align 3",
    ".Lvsyscall_fprog:",
    ".short 4", ".zero 6", ".quad {code} + .Lvsyscall_filter - rvisor_stub_start",
    ".Lvsyscall_filter:",
    ".short 0x20", ".byte 0, 0", ".long 12",                            // ld instruction_pointer >> 32
    ".short 0x15", ".byte 1, 0", ".long 0xffffffff",                    // jeq 0xffffffff: trap
    ".short 0x06", ".byte 0, 0", ".long 0x7fff0000",                    // ret SECCOMP_RET_ALLOW
    ".short 0x06", ".byte 0, 0", ".long 0x00030000",                    // ret SECCOMP_RET_TRAP
    ".globl rvisor_stub_end",
    "rvisor_stub_end:",
    ".popsection",
    // Fork and send the child into the stub copy at an entry (start or the zygote).
    // rdi = entry, rsi = r12, rdx = r13 (as the entry takes them), rcx = rseq area or 0.
    ".globl rvisor_stub_spawn",
    "rvisor_stub_spawn:",
    "push r12", "push r13", "push r14", "push r15",
    "mov r15, rdi", "mov r12, rsi", "mov r13, rdx", "mov r14, rcx",
    "mov eax, 56", "mov edi, 17", "xor esi, esi", "xor edx, edx", "xor r10d, r10d", "xor r8d, r8d",
    "syscall",                                                          // clone(SIGCHLD, 0, ...)
    "test rax, rax", "jnz 4f",
    "jmp r15",
    "4:",
    "pop r15", "pop r14", "pop r13", "pop r12",
    "ret",
    base = const STUB_BASE,
    end = const STUB_END,
    above = const TASK_SIZE - STUB_END,
    queue = const STUB_QUEUE,
    code = const STUB_CODE,
);

extern "C" {
    static rvisor_stub_start: u8;
    static rvisor_stub_batch: u8;
    static rvisor_stub_syscall: u8;
    static rvisor_stub_clone: u8;
    static rvisor_stub_park: u8;
    static rvisor_stub_zygote: u8;
    static rvisor_stub_end: u8;
    fn rvisor_stub_spawn(entry: u64, r12: i64, r13: i64, rseq: u64) -> i64;
    /// glibc's offset of the thread's rseq area from the thread pointer.
    static __rseq_offset: isize;
    static __rseq_size: u32;
}

/// The calling thread's registered rseq area, if glibc registered one.
pub(crate) fn current_rseq_area() -> u64 {
    // SAFETY: reading glibc's exported constants and the thread pointer (fs:0
    // holds the TCB's own address on x86-64).
    unsafe {
        if __rseq_size == 0 {
            return 0;
        }
        let tp: u64;
        std::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly, preserves_flags));
        tp.wrapping_add(__rseq_offset as u64)
    }
}

/// Addresses of the stub's entry points in the stub processes.
pub struct StubEntries {
    pub batch: u64,
    pub syscall: u64,
    pub clone: u64,
    /// An endless pause() loop: where threads wait untraced.
    pub park: u64,
    /// Where a forked process starts as a stub, and as the zygote.
    start: u64,
    zygote: u64,
}

static INSTALLED: OnceLock<Result<StubEntries, String>> = OnceLock::new();

/// Maps the stub code at `STUB_CODE` in the Sentry (once) and returns its entries.
pub fn install() -> io::Result<&'static StubEntries> {
    INSTALLED
        .get_or_init(|| install_once().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

fn install_once() -> io::Result<StubEntries> {
    // SAFETY: taking the addresses of symbols defined in the global_asm above.
    let (start, batch, syscall, clone, park, zygote, end) = unsafe {
        (
            &rvisor_stub_start as *const u8 as u64,
            &rvisor_stub_batch as *const u8 as u64,
            &rvisor_stub_syscall as *const u8 as u64,
            &rvisor_stub_clone as *const u8 as u64,
            &rvisor_stub_park as *const u8 as u64,
            &rvisor_stub_zygote as *const u8 as u64,
            &rvisor_stub_end as *const u8 as u64,
        )
    };
    let len = (end - start) as usize;
    assert!(len <= 4096, "stub code must fit in a page");
    // SAFETY: MAP_FIXED_NOREPLACE never clobbers an existing mapping; we own the result.
    let p = unsafe {
        libc::mmap(
            STUB_CODE as *mut libc::c_void,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED || p as u64 != STUB_CODE {
        return Err(io::Error::other(format!(
            "cannot reserve the stub page at {STUB_CODE:#x}: {}",
            io::Error::last_os_error()
        )));
    }
    // SAFETY: copying `len` bytes of our own code into the fresh page, then making
    // it read+exec.
    unsafe {
        std::ptr::copy_nonoverlapping(start as *const u8, p as *mut u8, len);
        if libc::mprotect(p, 4096, libc::PROT_READ | libc::PROT_EXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let at = |sym: u64| STUB_CODE + (sym - start);
    Ok(StubEntries { batch: at(batch), syscall: at(syscall), clone: at(clone), park: at(park), start: at(start), zygote: at(zygote) })
}

/// Whether the stubs can be undumpable, so that no other process of the user may
/// trace them or read their memory: only a tracer with CAP_SYS_PTRACE may seize
/// an undumpable process (root's Sentry keeps it, confine.rs). Without it
/// (rvisor run by an ordinary user) the stubs stay dumpable: 1 or 0, for r13.
/// Asked once, when the zygote starts: before the Sentry's filter, which has no
/// capget.
fn undumpable_stubs() -> i32 {
    static ANSWER: OnceLock<i32> = OnceLock::new();
    *ANSWER.get_or_init(|| i32::from(caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_PTRACE).unwrap_or(false)))
}

/// Forks the calling thread into the stub code at `entry` (the stub or the zygote).
fn fork_into(entry: u64, r12: i32, r13: i32) -> io::Result<i32> {
    install()?;
    // SAFETY: the child runs only the stub code (installed above) and never
    // returns into Rust; the parent gets the clone result back.
    let r = unsafe { rvisor_stub_spawn(entry, r12.into(), r13.into(), current_rseq_area()) };
    if r < 0 {
        return Err(io::Error::from_raw_os_error(-r as i32));
    }
    Ok(r as i32)
}

/// Forks a stub (by the zygote, or by the calling thread where there is none) and
/// waits until it has stopped itself.
fn fork_stub(zygote: &mut Zygote, memfd: i32, ctlfd: i32) -> io::Result<i32> {
    let entries = install()?;
    let pid = zygote.spawn(&[memfd, ctlfd], |sock| fork_into(entries.zygote, sock, undumpable_stubs()), || fork_into(entries.start, memfd, ctlfd))?;
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child; status is a local.
        let w = unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED | libc::__WALL) };
        if w == pid {
            break;
        }
        if w < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(io::Error::last_os_error());
        }
    }
    if !libc::WIFSTOPPED(status) || libc::WSTOPSIG(status) != libc::SIGSTOP {
        return Err(io::Error::other(format!("stub died while starting (status {status:#x})")));
    }
    // Set up and stopped: let it go on into its pause() loop, out of group-stop,
    // so that the threads it later clones do not start stopped.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    Ok(pid)
}

enum SpawnRequest {
    /// A stub with these memory and control files.
    Stub(i32, i32, std::sync::mpsc::Sender<io::Result<i32>>),
    /// Only the zygote, started if it was not: whether it runs.
    Zygote(std::sync::mpsc::Sender<bool>),
}

/// Returns a stopped, untraced stub process for the caller to seize.
pub fn spawn(memfd: i32, ctlfd: i32) -> io::Result<i32> {
    let (reply, answer) = std::sync::mpsc::channel();
    ask_spawner(SpawnRequest::Stub(memfd, ctlfd, reply))?;
    answer.recv().map_err(|_| io::Error::other("the stub spawner is gone"))?
}

/// Starts the zygote now, so that no later stub needs to fork from the Sentry
/// itself; whether it runs.
pub fn start_zygote() -> io::Result<bool> {
    let (reply, answer) = std::sync::mpsc::channel();
    ask_spawner(SpawnRequest::Zygote(reply))?;
    answer.recv().map_err(|_| io::Error::other("the stub spawner is gone"))
}

fn ask_spawner(request: SpawnRequest) -> io::Result<()> {
    install()?;
    static SPAWNER: OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
        let started = std::thread::Builder::new().name("stub-spawner".into()).spawn(move || {
            crate::host_cpus::unpin_current_thread();
            let mut zygote = Zygote::Untried;
            for request in rx {
                match request {
                    SpawnRequest::Stub(memfd, ctlfd, reply) => {
                        let _ = reply.send(fork_stub(&mut zygote, memfd, ctlfd));
                    }
                    SpawnRequest::Zygote(reply) => {
                        let started = match install() {
                            Ok(entries) => zygote.ensure_started(|sock| fork_into(entries.zygote, sock, undumpable_stubs())),
                            Err(_) => false,
                        };
                        let _ = reply.send(started);
                    }
                }
            }
        });
        if let Err(e) = started {
            tracing::error!("cannot start the stub spawner: {e}");
        }
        std::sync::Mutex::new(tx)
    });
    spawner.lock().unwrap_or_else(|e| e.into_inner()).send(request).map_err(|_| io::Error::other("the stub spawner is gone"))
}
