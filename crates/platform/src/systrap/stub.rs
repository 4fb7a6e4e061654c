//! The systrap stub: one page of position-independent machine code, the whole
//! program of a stub process, and the fixed layout of the stub's address space.
//!
//! ```text
//! STUB_BASE               code page (r-x): setup, signal handler, restorer, helper
//! STUB_BASE + 0x1000      the window: this address space's shared memfd, also
//!                         mapped (anywhere) in the Sentry
//!   + WIN_CTRL   (r--)    request queue for the helper thread (seq, count, calls)
//!   + WIN_PROG   (r--)    seccomp programs, masks, sigaction, constants
//!   + WIN_STATUS (rw-)    the helper's answer (a hint only; see `flush`)
//!   + WIN_SLOTS  (rw-)    one BLOCK per app thread: header, then signal stack
//! STUB_END                end of the region
//! ```
//!
//! The read-only pages are written only by the Sentry; the app cannot change their
//! protection (mprotect traps), so the helper executes only what the Sentry queued.
//! Everything writable is app-writable too, and the Sentry treats it as hostile.
//!
//! A stub process has two kinds of threads:
//! - app threads, under two stacked seccomp filters (`filter::helper` inherited and
//!   `filter::app`): every syscall traps with SIGSYS, except `rt_sigreturn`, `exit`
//!   and `futex` on the slots when made from the code page. Their signal handler
//!   hands the signal frame to the Sentry through the thread's slot and waits.
//! - one helper thread, the process's main one, under `filter::helper` only, signals
//!   all blocked, no stack:
//!   it sleeps on the queue's sequence word and runs batches of mmap/munmap/
//!   mprotect/clone calls, then reports completion with `write(1, &one, 8)` on an
//!   eventfd, which no app thread can do.

use crate::zygote::Zygote;
use std::io;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// The code page; also the highest address (exclusive) an app mapping may use. The
/// loader puts the app stack right below it (its STACK_TOP).
pub const STUB_BASE: u64 = 0x7fff_ff00_0000;
/// The shared window, right after the code page.
pub const WINDOW: u64 = STUB_BASE + 0x1000;
/// Offsets in the window (and in the memfd behind it).
pub const WIN_CTRL: u64 = 0;
pub const CTRL_LEN: u64 = 0x4000;
pub const WIN_PROG: u64 = 0x4000;
pub const RO_LEN: u64 = 0x5000;
pub const WIN_STATUS: u64 = 0x5000;
pub const WIN_SLOTS: u64 = 0xf000;
/// One app thread's block: `HDR` bytes of slot header, the rest its signal stack.
pub const BLOCK: u64 = 0x4000;
pub const HDR: u64 = 0x400;
/// The region ends where the ptrace platform's stub page would start.
pub const STUB_END: u64 = 0x7fff_fffe_0000;
pub const MAX_THREADS: usize = ((STUB_END - (WINDOW + WIN_SLOTS)) / BLOCK) as usize;
pub const WINDOW_LEN: u64 = WIN_SLOTS + MAX_THREADS as u64 * BLOCK;
/// Linux's TASK_SIZE on x86-64 with 4-level paging.
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// Control page: `seq` (u32, the helper's futex word), `count` (u32), calls from 64.
pub const CTRL_SEQ: u64 = 0;
pub const CTRL_COUNT: u64 = 4;
pub const CTRL_CALLS: u64 = 64;
pub const QUEUE_CAPACITY: usize = ((CTRL_LEN - CTRL_CALLS) / 56) as usize;

/// Program page layout (offsets from WIN_PROG).
pub const PROG_FPROG_APP: u64 = 0x00;
pub const PROG_FPROG_HELPER: u64 = 0x10;
pub const PROG_SYNC_MASK: u64 = 0x20;
pub const PROG_FULL_MASK: u64 = 0x28;
pub const PROG_RLIMIT_ZERO: u64 = 0x30;
pub const PROG_SIGACTION: u64 = 0x40;
pub const PROG_SIGACTION_DFL: u64 = 0x60;
pub const PROG_ONE: u64 = 0x80;
pub const PROG_FILTER_APP: u64 = 0x100;
pub const PROG_FILTER_HELPER: u64 = 0x800;
pub const PROG_FILTER_MAX: usize = 0x700 / 8;

/// Status page: `done` (u32), `left` (u64 at 8), `result` (u64 at 16).
pub const STATUS_DONE: u64 = 0;
pub const STATUS_LEFT: u64 = 8;
pub const STATUS_RESULT: u64 = 16;

/// Slot header fields (offsets from the block).
pub const SLOT_STATE: u64 = 0x00; // u32 futex word, also the thread's clear_child_tid
pub const SLOT_TID: u64 = 0x04; // u32
pub const SLOT_SELF: u64 = 0x08; // u64: the block's own address (the handler's sanity check)
pub const SLOT_CMD: u64 = 0x10; // u32: CMD_*
pub const SLOT_SETBASE: u64 = 0x14; // u32: 1 = set fs base, 2 = set gs base
pub const SLOT_NEW_FS: u64 = 0x18;
pub const SLOT_NEW_GS: u64 = 0x20;
pub const SLOT_SPIN: u64 = 0x28; // u32: pause iterations before FUTEX_WAIT
pub const SLOT_SIGNO: u64 = 0x40; // u32
pub const SLOT_SIGINFO: u64 = 0x48;
pub const SLOT_UCONTEXT: u64 = 0x50;
pub const SLOT_FS: u64 = 0x58;
pub const SLOT_GS: u64 = 0x60;
pub const SLOT_CPU: u64 = 0x68; // u32: the CPU the thread trapped on (a hint for spinning)
pub const SLOT_SENTRY_CPU: u64 = 0x2c; // u32: the CPU of the Sentry thread that replied
pub const SLOT_STACK_T: u64 = 0x100; // scratch: the stack_t for sigaltstack
/// Patched calls (`rvisor_systrap_tramp`): u32, 1 while the thread is in the
/// trampoline (a kick then only sets SLOT_KICKED, u64, and the way out takes it).
pub const SLOT_IN_TRAMP: u64 = 0x30;
pub const SLOT_KICKED: u64 = 0x38;
/// The registers of a patched call, in the frame's gregs order (rax, rcx, rsp, rip:
/// the Sentry's on the way back), then the FS base.
pub const SLOT_SAVE: u64 = 0x200;
pub const SLOT_SAVE_FS: u64 = SLOT_SAVE + 18 * 8;

/// Handoff states of `SLOT_STATE`. 0 is what the kernel writes when the thread dies.
pub const ST_DEAD: u32 = 0;
pub const ST_IDLE: u32 = 1;
pub const ST_SENTRY_SLEEP: u32 = 2;
pub const ST_REQ: u32 = 3;
pub const ST_APP_SLEEP: u32 = 4;

pub const CMD_RESUME: u32 = 0;
pub const CMD_EXIT: u32 = 1;
/// To a thread in the trampoline: raise SIGILL at `promote` for a signal frame.
pub const CMD_SLOW: u32 = 2;

/// The syscall number a new thread traps with once it is set up.
pub const READY_NR: u64 = 0x3ff0;

/// Flags of the clone that makes app threads (and the helper).
pub const THREAD_FLAGS: u64 = (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD | libc::CLONE_SYSVSEM) as u64;

/// Exit codes of a stub whose setup failed.
pub const FAIL_PARENT: i32 = 100;
pub const FAIL_FDS: i32 = 101;
pub const FAIL_MAP: i32 = 102;
pub const FAIL_SIGACTION: i32 = 103;
pub const FAIL_NO_NEW_PRIVS: i32 = 104;
pub const FAIL_SECCOMP_HELPER: i32 = 105;
pub const FAIL_CLONE: i32 = 106;
pub const FAIL_SIGALTSTACK: i32 = 107;
pub const FAIL_SECCOMP_APP: i32 = 108;

/// Sets every signal's disposition but SIGKILL's and SIGSTOP's to the sigaction at
/// rsi (the default), in assembly (`$p`: a prefix for its labels). Uses r13.
macro_rules! default_dispositions_asm {
    ($p:literal) => {
        concat!(
            "mov r13d, 1\n",
            $p, "_dfl:\n",
            "cmp r13d, 9\n", "je ", $p, "_dfl_next\n", "cmp r13d, 19\n", "je ", $p, "_dfl_next\n",
            "mov eax, 13\n", "mov edi, r13d\n", "xor edx, edx\n", "mov r10d, 8\n", "syscall\n", // rt_sigaction(sig, rsi, NULL, 8)
            $p, "_dfl_next:\n",
            "inc r13d\n", "cmp r13d, 64\n", "jbe ", $p, "_dfl\n",
        )
    };
}

std::arch::global_asm!(
    ".pushsection .text.rvisor_systrap, \"ax\"",
    ".p2align 12",
    ".globl rvisor_systrap_start",
    "rvisor_systrap_start:",

    // ---- Setup, in the child right after fork. r12 = window memfd, r13 = memory
    // file, r15 = eventfd (all >= 3), r14 = the forking thread's rseq area or 0,
    // rbx = the Sentry's pid, ebp = 0 when the signal dispositions are the default
    // already (forked by the zygote), else 1. No stack: nothing here pushes or calls.
    ".globl rvisor_systrap_setup",
    "rvisor_systrap_setup:",
    "lea r8, [rip + .Lst_body]",
    "jmp .Lst_prologue",
    ".Lst_body:",
    "mov edi, {fail_fds}",
    "mov eax, 33", "mov rdi, r13", "xor esi, esi", "syscall",              // dup2(memory file, 0)
    "mov edi, {fail_fds}", "test rax, rax", "js .Lst_fail",
    "mov eax, 33", "mov rdi, r15", "mov esi, 1", "syscall",                // dup2(eventfd, 1)
    "mov edi, {fail_fds}", "test rax, rax", "js .Lst_fail",
    "mov eax, 33", "mov rdi, r12", "mov esi, 2", "syscall",                // dup2(window memfd, 2)
    "mov edi, {fail_fds}", "test rax, rax", "js .Lst_fail",
    "mov eax, 436", "mov edi, 3", "mov esi, -1", "xor edx, edx", "syscall", // close_range(3, ~0, 0)
    "lea rbx, [rip + rvisor_systrap_start]",                               // rbx = STUB_BASE
    "mov eax, 11", "xor edi, edi", "mov rsi, rbx", "syscall",              // munmap(0, STUB_BASE)
    "mov eax, 11", "lea rdi, [rbx + 0x1000]", "mov rsi, {task_size}", "sub rsi, rdi", "syscall", // all above the code
    "lea r12, [rbx + 0x1000]",                                             // r12 = WINDOW
    "mov eax, 9", "mov rdi, r12", "mov esi, {ro_len}", "mov edx, 1", "mov r10d, 0x11", "mov r8d, 2", "xor r9d, r9d", "syscall",
    "mov edi, {fail_map}", "cmp rax, r12", "jne .Lst_fail",                // read-only: queue and programs
    "lea rdi, [r12 + {ro_len}]", "mov eax, 9", "mov esi, {rw_len}", "mov edx, 3", "mov r10d, 0x11", "mov r8d, 2", "mov r9d, {ro_len}", "syscall",
    "lea rdi, [r12 + {ro_len}]", "cmp rax, rdi", "mov edi, {fail_map}", "jne .Lst_fail",
    "mov eax, 3", "mov edi, 2", "syscall",                                 // close(2)
    "mov eax, 157", "mov edi, 4", "xor esi, esi", "syscall",               // prctl(PR_SET_DUMPABLE, 0)
    "mov eax, 302", "xor edi, edi", "mov esi, 4", "lea rdx, [r12 + {prog} + {p_rlimit}]", "xor r10d, r10d", "syscall", // RLIMIT_CORE = 0
    "mov eax, 324", "mov edi, 4", "xor esi, esi", "xor edx, edx", "syscall", // membarrier(REGISTER_GLOBAL_EXPEDITED): the app's membarrier reaches us
    // Every disposition back to the default (the Sentry's handlers are gone), unless
    // the zygote did so once for all its children (ebp = 0)...
    "test ebp, ebp", "jz .Lst_dfl_done",
    "lea rsi, [r12 + {prog} + {p_dfl}]",
    default_dispositions_asm!(".Lst"),
    ".Lst_dfl_done:",
    // ...then ours for the signals app threads report.
    "mov eax, 13", "mov edi, 31", "lea rsi, [r12 + {prog} + {p_act}]", "xor edx, edx", "mov r10d, 8", "syscall",
    "test rax, rax", "jnz .Lst_fail_act",
    "mov eax, 13", "mov edi, 11", "lea rsi, [r12 + {prog} + {p_act}]", "xor edx, edx", "mov r10d, 8", "syscall",
    "test rax, rax", "jnz .Lst_fail_act",
    "mov eax, 13", "mov edi, 7", "lea rsi, [r12 + {prog} + {p_act}]", "xor edx, edx", "mov r10d, 8", "syscall",
    "test rax, rax", "jnz .Lst_fail_act",
    "mov eax, 13", "mov edi, 4", "lea rsi, [r12 + {prog} + {p_act}]", "xor edx, edx", "mov r10d, 8", "syscall",
    "test rax, rax", "jnz .Lst_fail_act",
    "mov eax, 13", "mov edi, 8", "lea rsi, [r12 + {prog} + {p_act}]", "xor edx, edx", "mov r10d, 8", "syscall",
    "test rax, rax", "jnz .Lst_fail_act",
    "mov eax, 13", "mov edi, 5", "lea rsi, [r12 + {prog} + {p_act}]", "xor edx, edx", "mov r10d, 8", "syscall",
    "test rax, rax", "jnz .Lst_fail_act",
    "mov eax, 13", "mov edi, 23", "lea rsi, [r12 + {prog} + {p_act}]", "xor edx, edx", "mov r10d, 8", "syscall",
    "test rax, rax", "jnz .Lst_fail_act",
    "mov eax, 157", "mov edi, 38", "mov esi, 1", "xor edx, edx", "xor r10d, r10d", "xor r8d, r8d", "syscall", // PR_SET_NO_NEW_PRIVS
    "mov edi, {fail_nnp}", "test rax, rax", "jnz .Lst_fail",
    "mov eax, 14", "mov edi, 2", "lea rsi, [r12 + {prog} + {p_full}]", "xor edx, edx", "mov r10d, 8", "syscall", // block all
    "mov eax, 317", "mov edi, 1", "xor esi, esi", "lea rdx, [r12 + {prog} + {p_fprog_h}]", "syscall", // the helper filter
    "mov edi, {fail_seccomp_h}", "test rax, rax", "jnz .Lst_fail",
    // App thread 0; this thread, the process's main one, becomes the helper: it never
    // exits, so the process is no zombie while its app threads come and go.
    "mov eax, 56", "mov edi, {thread_flags}", "xor esi, esi", "xor edx, edx", "xor r10d, r10d", "xor r8d, r8d", "syscall",
    "mov edi, {fail_clone}", "test rax, rax", "js .Lst_fail",
    "jnz rvisor_systrap_helper",
    "lea r8, [r12 + {slots}]",
    "jmp rvisor_systrap_thread_init",
    ".Lst_fail_act:",
    "mov edi, {fail_act}",
    ".Lst_fail:",
    "mov eax, 231", "syscall",                                             // exit_group(edi)
    "ud2",

    // ---- An app thread's setup. r8 = its block. Runs under the helper filter.
    ".globl rvisor_systrap_thread_init",
    "rvisor_systrap_thread_init:",
    "lea r12, [rip + rvisor_systrap_start]", "add r12, 0x1000",           // r12 = WINDOW
    "lea rax, [r8 + {hdr}]", "mov [r8 + {s_stack_t}], rax",
    "mov qword ptr [r8 + {s_stack_t} + 8], 0",
    "mov qword ptr [r8 + {s_stack_t} + 16], {altstack_size}",
    "mov eax, 131", "lea rdi, [r8 + {s_stack_t}]", "xor esi, esi", "syscall", // sigaltstack(block's stack)
    "mov edi, {fail_altstack}", "test rax, rax", "jnz .Lst_fail",
    "mov eax, 218", "mov rdi, r8", "syscall",                              // set_tid_address(&state): tid
    "mov [r8 + {s_tid}], eax",
    // Unblock the synchronous signals only: a kick (SIGURG) waits for the first
    // sigreturn, whose frame the Sentry writes with an empty mask.
    "mov eax, 14", "mov edi, 2", "lea rsi, [r12 + {prog} + {p_sync}]", "xor edx, edx", "mov r10d, 8", "syscall",
    "mov eax, 317", "mov edi, 1", "xor esi, esi", "lea rdx, [r12 + {prog} + {p_fprog_a}]", "syscall", // the app filter
    "mov edi, {fail_seccomp_a}", "test rax, rax", "jnz .Lst_fail",
    "mov eax, {ready_nr}", "syscall",                                      // traps: "ready"
    "ud2",

    // ---- The helper thread: runs the queued calls. r12 = WINDOW, r13 = last seq.
    ".globl rvisor_systrap_helper",
    "rvisor_systrap_helper:",
    "lea r12, [rip + rvisor_systrap_start]", "add r12, 0x1000",
    "xor r13d, r13d",
    ".Lhp_wait:",
    "mov eax, [r12]", "cmp eax, r13d", "jne .Lhp_batch",
    "mov eax, 202", "mov rdi, r12", "xor esi, esi", "mov edx, r13d", "xor r10d, r10d", "syscall", // FUTEX_WAIT(seq, last)
    "jmp .Lhp_wait",
    ".Lhp_batch:",
    "mov r13d, eax",
    "mov r14d, [r12 + {c_count}]",
    "cmp r14, {qcap}", "jbe .Lhp_count_ok", "mov r14d, {qcap}",
    ".Lhp_count_ok:",
    "lea r15, [r12 + {c_calls}]",
    "xor eax, eax",
    "test r14, r14", "jz .Lhp_done",
    ".Lhp_call:",
    "mov rax, [r15]", "mov rdi, [r15 + 8]", "mov rsi, [r15 + 16]", "mov rdx, [r15 + 24]",
    "mov r10, [r15 + 32]", "mov r8, [r15 + 40]", "mov r9, [r15 + 48]",
    "mov rbx, rax",
    "syscall",
    "cmp rbx, 56", "jne .Lhp_check",
    "test rax, rax", "jz .Lhp_child",                                      // the new thread: r9 = its block
    ".Lhp_check:",
    "cmp rax, -4095", "jae .Lhp_done",
    "add r15, 56", "dec r14", "jnz .Lhp_call",
    ".Lhp_done:",
    "mov [r12 + {status} + {st_left}], r14",
    "mov [r12 + {status} + {st_result}], rax",
    "mov [r12 + {status} + {st_done}], r13d",
    "mov eax, 1", "mov edi, 1", "lea rsi, [r12 + {prog} + {p_one}]", "mov edx, 8", "syscall", // write(eventfd, &1, 8)
    "jmp .Lhp_wait",
    ".Lhp_child:",
    "mov r8, r9",
    "jmp rvisor_systrap_thread_init",

    // ---- The signal handler of app threads, on the thread's signal stack:
    // edi = signo, rsi = siginfo, rdx = ucontext. All signals blocked.
    ".globl rvisor_systrap_handler",
    "rvisor_systrap_handler:",
    "mov r8, rsp", "and r8, -{block}",                                     // r8 = our block
    "cmp [r8 + {s_self}], r8", "jne .Lh_bad",
    // A kick while the thread is in the patched-call trampoline waits for its way
    // out (`rvisor_systrap_tramp`): the slot is the trampoline's until then.
    "cmp edi, {sigurg}", "jne .Lh_event",
    "cmp dword ptr [r8 + {s_in_tramp}], 0", "je .Lh_event",
    "mov qword ptr [r8 + {s_kicked}], 1",
    "ret",
    ".Lh_event:",
    "mov [r8 + {s_signo}], edi", "mov [r8 + {s_siginfo}], rsi", "mov [r8 + {s_uc}], rdx",
    "cmp byte ptr [rip + rvisor_systrap_fsgsbase], 0", "je .Lh_getbase_slow",
    "rdfsbase rax", "mov [r8 + {s_fs}], rax",
    "rdgsbase rax", "mov [r8 + {s_gs}], rax",
    "jmp .Lh_got_base",
    ".Lh_getbase_slow:",
    "mov eax, 158", "mov edi, 0x1003", "lea rsi, [r8 + {s_fs}]", "syscall", // arch_prctl(ARCH_GET_FS)
    "mov eax, 158", "mov edi, 0x1004", "lea rsi, [r8 + {s_gs}]", "syscall", // arch_prctl(ARCH_GET_GS)
    ".Lh_got_base:",
    "call .Lpost",
    "jmp .Lh_replied",
    // Posts the event of the thread whose block is r8 and waits for the reply.
    // Clobbers rax, rcx, rdx, rsi, rdi, r9, r10, r11.
    ".Lpost:",
    "mov eax, 0x7b", "lsl eax, eax", "and eax, 0xfff", "mov [r8 + {s_cpu}], eax", // our CPU (vDSO getcpu's way)
    "mov ecx, {st_req}", "xchg [r8], ecx",
    "cmp ecx, {st_sentry_sleep}", "jne .Lh_spin_start",
    "mov eax, 202", "mov rdi, r8", "mov esi, 1", "mov edx, 1", "xor r10d, r10d", "syscall", // FUTEX_WAKE
    ".Lh_spin_start:",
    "mov r9d, [r8 + {s_spin}]",
    "mov ecx, [r8 + {s_cpu}]", "cmp ecx, [r8 + {s_sentry_cpu}]", "jne .Lh_spin",
    "xor r9d, r9d",                                                         // same CPU as the Sentry: spinning would only delay it
    ".Lh_spin:",
    "cmp dword ptr [r8], {st_req}", "jne .Lh_got_reply",
    "test r9d, r9d", "jz .Lh_sleep",
    "pause", "dec r9d", "jmp .Lh_spin",
    ".Lh_sleep:",
    "mov eax, {st_req}", "mov ecx, {st_app_sleep}", "lock cmpxchg [r8], ecx", "jne .Lh_got_reply",
    ".Lh_wait:",
    "mov eax, 202", "mov rdi, r8", "xor esi, esi", "mov edx, {st_app_sleep}", "xor r10d, r10d", "syscall", // FUTEX_WAIT
    "cmp dword ptr [r8], {st_app_sleep}", "je .Lh_wait",
    ".Lh_got_reply:",
    "ret",
    ".Lh_replied:",
    "cmp dword ptr [r8 + {s_cmd}], {cmd_exit}", "je .Lh_exit",
    "mov r9d, [r8 + {s_setbase}]",
    "test r9d, r9d", "jz .Lh_ret",
    "cmp byte ptr [rip + rvisor_systrap_fsgsbase], 0", "je .Lh_setbase_slow",
    "test r9d, 1", "jz .Lh_setgs",
    "mov rcx, [r8 + {s_new_fs}]", "wrfsbase rcx",
    ".Lh_setgs:",
    "test r9d, 2", "jz .Lh_ret",
    "mov rcx, [r8 + {s_new_gs}]", "wrgsbase rcx",
    "jmp .Lh_ret",
    ".Lh_setbase_slow:",
    "test r9d, 1", "jz .Lh_setgs_slow",
    "mov eax, 158", "mov edi, 0x1002", "mov rsi, [r8 + {s_new_fs}]", "syscall", // arch_prctl(ARCH_SET_FS)
    ".Lh_setgs_slow:",
    "test r9d, 2", "jz .Lh_ret",
    "mov eax, 158", "mov edi, 0x1001", "mov rsi, [r8 + {s_new_gs}]", "syscall", // arch_prctl(ARCH_SET_GS)
    ".Lh_ret:",
    "ret",                                                                  // to the restorer
    ".Lh_exit:",
    "mov eax, 60", "xor edi, edi", "syscall",                              // exit(0): this thread only
    "ud2",
    ".Lh_bad:",
    "ud2",

    // ---- A patched syscall site jumps here (through its entry in the app's
    // `[usertrap]` table): rax = the number, rcx = the address after the site,
    // r11 = the entry's fallback, which names the site to the Sentry. The app's
    // flags, stack and red zone must not change before rsp is on our block, and
    // the block is found only through GS: the host GS base is the block of a thread
    // whose app GS base is 0. Anything else takes the fallback (a trapping syscall).
    ".globl rvisor_systrap_tramp",
    "rvisor_systrap_tramp:",
    "rdgsbase rcx",
    ".globl rvisor_systrap_tramp_gs_load",
    "rvisor_systrap_tramp_gs_load:",
    "mov rax, gs:[{s_self}]",
    "not rax", "lea rcx, [rcx + rax + 1]",                                   // GS base - self, flags untouched
    "jrcxz .Lt_ours",
    "jmp r11",
    ".Lt_ours:",
    "mov qword ptr gs:[{s_kicked}], 0",
    "mov dword ptr gs:[{s_in_tramp}], 1",
    "mov gs:[{s_save} + 15 * 8], rsp",
    "rdgsbase rsp", "lea rsp, [rsp + {hdr}]",                               // the top of the slot header
    "pushfq", "pop qword ptr gs:[{s_save} + 17 * 8]",
    "mov gs:[{s_save}], r8", "mov gs:[{s_save} + 8], r9", "mov gs:[{s_save} + 16], r10", "mov gs:[{s_save} + 24], r11",
    "mov gs:[{s_save} + 32], r12", "mov gs:[{s_save} + 40], r13", "mov gs:[{s_save} + 48], r14", "mov gs:[{s_save} + 56], r15",
    "mov gs:[{s_save} + 64], rdi", "mov gs:[{s_save} + 72], rsi", "mov gs:[{s_save} + 80], rbp", "mov gs:[{s_save} + 88], rbx",
    "mov gs:[{s_save} + 96], rdx",
    "rdfsbase rax", "mov gs:[{s_save_fs}], rax",
    "rdgsbase r8",
    "mov dword ptr [r8 + {s_signo}], 0",                                    // 0: a patched call, not a signal
    "call .Lpost",
    "mov eax, [r8 + {s_cmd}]",
    "cmp eax, {cmd_exit}", "je .Lh_exit",
    "cmp eax, {cmd_resume}", "jne rvisor_systrap_promote",
    // The fast return, for a state `sysret` could produce (the Sentry checks).
    "push qword ptr [r8 + {s_save} + 17 * 8]",
    "mov r9, [r8 + {s_save} + 8]", "mov r10, [r8 + {s_save} + 16]",
    "mov r12, [r8 + {s_save} + 32]", "mov r13, [r8 + {s_save} + 40]", "mov r14, [r8 + {s_save} + 48]", "mov r15, [r8 + {s_save} + 56]",
    "mov rdi, [r8 + {s_save} + 64]", "mov rsi, [r8 + {s_save} + 72]", "mov rbp, [r8 + {s_save} + 80]", "mov rbx, [r8 + {s_save} + 88]",
    "mov rdx, [r8 + {s_save} + 96]", "mov rax, [r8 + {s_save} + 104]",
    "mov r8, [r8 + {s_save}]",
    "popfq",
    // From here on a kick is taken as usual, and the Sentry reports the state it
    // resumed with (only rcx, r11 and rsp are left to load).
    ".globl rvisor_systrap_tramp_out",
    "rvisor_systrap_tramp_out:",
    "mov dword ptr gs:[{s_in_tramp}], 0",
    "mov rcx, gs:[{s_kicked}]",
    "jrcxz .Lt_leave",
    // A kick came while we were in the trampoline: take it now.
    "ud2",
    ".Lt_leave:",
    "mov rcx, gs:[{s_save} + 16 * 8]", "mov r11, gs:[{s_save} + 24]", "mov rsp, gs:[{s_save} + 15 * 8]",
    "jmp rcx",
    // The slow return: a signal frame for the Sentry to write the whole state into
    // (the FP registers are still the app's: nothing here touches them).
    ".globl rvisor_systrap_promote",
    "rvisor_systrap_promote:",
    "ud2",
    ".globl rvisor_systrap_tramp_end",
    "rvisor_systrap_tramp_end:",

    // ---- SA_RESTORER: back to the registers in the (Sentry-edited) frame.
    ".globl rvisor_systrap_restorer",
    "rvisor_systrap_restorer:",
    "mov eax, 15", "syscall",
    "ud2",

    // ---- The zygote (see zygote.rs). Entered like setup, right after fork, with
    // r12 = its socket, r14 = rseq area or 0, rbx = the Sentry's pid. A request brings
    // [window memfd, eventfd, memory file]; the child goes through setup as if the
    // Sentry had forked it. No stack.
    ".globl rvisor_systrap_zygote",
    "rvisor_systrap_zygote:",
    "lea r8, [rip + .Lz_body]",
    "jmp .Lst_prologue",
    ".Lz_body:",
    zygote_socket_asm!(".Lz_fail", "{fail_fds}"),
    "lea r12, [rip + rvisor_systrap_start]",                               // r12 = STUB_BASE
    "mov eax, 11", "xor edi, edi", "mov rsi, r12", "syscall",              // munmap(0, STUB_BASE)
    "mov eax, 11", "lea rdi, [r12 + 0x1000]", "mov rsi, {task_size}", "sub rsi, rdi", "syscall", // all above the code
    "add r12, 0x1000",                                                     // r12 = a scratch page where the window goes
    "mov eax, 9", "mov rdi, r12", "mov esi, 4096", "mov edx, 3", "mov r10d, 0x32", "mov r8, -1", "xor r9d, r9d", "syscall",
    "mov edi, {fail_map}", "cmp rax, r12", "jne .Lz_fail",                 // mmap(RW, private, anonymous, fixed)
    "mov eax, 157", "mov edi, 4", "xor esi, esi", "syscall",               // prctl(PR_SET_DUMPABLE, 0)
    "mov rsi, r12",                                                        // the fresh page: a default sigaction
    default_dispositions_asm!(".Lz"),
    zygote_loop_asm!(".Lz", "28", ".Lz_child"),
    ".Lz_child:",
    "mov r12d, ebp", "mov r15d, r14d", "xor r14d, r14d",                   // r13: the memory file; rbx: the Sentry's pid
    "xor ebp, ebp",                                                        // dispositions: default already
    "jmp rvisor_systrap_setup",
    ".Lz_done:",
    "xor edi, edi",
    ".Lz_fail:",
    "mov eax, 231", "syscall",                                             // exit_group(edi)
    "ud2",

    // ---- What a stub and the zygote do first after fork, then `jmp r8`. r14 = the
    // forking thread's rseq area or 0, rbx = the Sentry's pid.
    ".Lst_prologue:",
    fork_prologue_asm!(".Lst"),
    "mov eax, 110", "syscall",                                             // getppid(): the Sentry still there?
    "mov edi, {fail_parent}", "cmp rax, rbx", "jne .Lst_fail",
    "mov eax, 112", "syscall",                                             // setsid(): no terminal signals
    "jmp r8",

    // Patched at install: 1 when the CPU and kernel allow rd/wrfsbase in user mode.
    ".globl rvisor_systrap_fsgsbase",
    "rvisor_systrap_fsgsbase:",
    ".byte 0",
    // Keep the address after the last syscall instruction strictly inside the code.
    "int3", "int3", "int3", "int3",
    ".globl rvisor_systrap_end",
    "rvisor_systrap_end:",
    ".popsection",

    // Fork and send the child into the stub copy (runs in the Sentry).
    // rdi = entry, rsi = window memfd, rdx = memory file, rcx = eventfd,
    // r8 = rseq area or 0, r9 = the Sentry's pid.
    ".globl rvisor_systrap_spawn",
    "rvisor_systrap_spawn:",
    "push rbx", "push r12", "push r13", "push r14", "push r15", "push rbp",
    "mov r12, rsi", "mov r13, rdx", "mov r15, rcx", "mov r14, r8", "mov rbx, r9", "mov r9, rdi",
    "mov ebp, 1",                                                           // the Sentry's dispositions
    "mov eax, 56", "mov edi, 17", "xor esi, esi", "xor edx, edx", "xor r10d, r10d", "xor r8d, r8d",
    "syscall",                                                              // clone(SIGCHLD)
    "test rax, rax", "jnz 4f",
    "jmp r9",
    "4:",
    "pop rbp", "pop r15", "pop r14", "pop r13", "pop r12", "pop rbx",
    "ret",
    fail_parent = const FAIL_PARENT,
    fail_fds = const FAIL_FDS,
    fail_map = const FAIL_MAP,
    fail_act = const FAIL_SIGACTION,
    fail_nnp = const FAIL_NO_NEW_PRIVS,
    fail_seccomp_h = const FAIL_SECCOMP_HELPER,
    fail_clone = const FAIL_CLONE,
    fail_altstack = const FAIL_SIGALTSTACK,
    fail_seccomp_a = const FAIL_SECCOMP_APP,
    task_size = const TASK_SIZE,
    ro_len = const RO_LEN,
    rw_len = const WINDOW_LEN - RO_LEN,
    prog = const WIN_PROG,
    status = const WIN_STATUS,
    slots = const WIN_SLOTS,
    p_rlimit = const PROG_RLIMIT_ZERO,
    p_dfl = const PROG_SIGACTION_DFL,
    p_act = const PROG_SIGACTION,
    p_full = const PROG_FULL_MASK,
    p_sync = const PROG_SYNC_MASK,
    p_fprog_h = const PROG_FPROG_HELPER,
    p_fprog_a = const PROG_FPROG_APP,
    p_one = const PROG_ONE,
    thread_flags = const THREAD_FLAGS,
    hdr = const HDR,
    block = const BLOCK,
    altstack_size = const BLOCK - HDR,
    s_stack_t = const SLOT_STACK_T,
    s_tid = const SLOT_TID,
    s_self = const SLOT_SELF,
    s_signo = const SLOT_SIGNO,
    s_siginfo = const SLOT_SIGINFO,
    s_uc = const SLOT_UCONTEXT,
    s_fs = const SLOT_FS,
    s_gs = const SLOT_GS,
    s_spin = const SLOT_SPIN,
    s_cpu = const SLOT_CPU,
    s_sentry_cpu = const SLOT_SENTRY_CPU,
    s_cmd = const SLOT_CMD,
    s_setbase = const SLOT_SETBASE,
    s_new_fs = const SLOT_NEW_FS,
    s_new_gs = const SLOT_NEW_GS,
    s_in_tramp = const SLOT_IN_TRAMP,
    s_kicked = const SLOT_KICKED,
    s_save = const SLOT_SAVE,
    s_save_fs = const SLOT_SAVE_FS,
    sigurg = const libc::SIGURG,
    cmd_resume = const CMD_RESUME,
    st_req = const ST_REQ,
    st_sentry_sleep = const ST_SENTRY_SLEEP,
    st_app_sleep = const ST_APP_SLEEP,
    cmd_exit = const CMD_EXIT,
    ready_nr = const READY_NR,
    c_count = const CTRL_COUNT,
    c_calls = const CTRL_CALLS,
    qcap = const QUEUE_CAPACITY,
    st_left = const STATUS_LEFT,
    st_result = const STATUS_RESULT,
    st_done = const STATUS_DONE,
);

extern "C" {
    static rvisor_systrap_start: u8;
    static rvisor_systrap_setup: u8;
    static rvisor_systrap_zygote: u8;
    static rvisor_systrap_handler: u8;
    static rvisor_systrap_restorer: u8;
    static rvisor_systrap_fsgsbase: u8;
    static rvisor_systrap_tramp: u8;
    static rvisor_systrap_tramp_gs_load: u8;
    static rvisor_systrap_tramp_out: u8;
    static rvisor_systrap_promote: u8;
    static rvisor_systrap_tramp_end: u8;
    static rvisor_systrap_end: u8;
    fn rvisor_systrap_spawn(entry: u64, winfd: i32, memfd: i32, efd: i32, rseq: u64, sentry_pid: i32) -> i64;
}

/// Where the stub code landed, and how it runs on this host.
pub struct Installed {
    pub setup: u64,
    /// The entry of a zygote (see the assembly).
    pub zygote: u64,
    pub handler: u64,
    pub restorer: u64,
    /// `[STUB_BASE, code_end)`: where the filters allow the stub's own syscalls from.
    pub code_end: u64,
    /// rd/wrfsbase usable (else the handler uses arch_prctl).
    pub fsgsbase: bool,
    pub tramp: Tramp,
}

/// Where the patched-call trampoline's parts are (see the assembly).
#[derive(Clone, Copy, Debug)]
pub struct Tramp {
    pub entry: u64,
    /// The load through GS that finds the block: a fault there (GS at memory the
    /// app has not mapped) sends the thread to the entry's fallback.
    pub gs_load: u64,
    /// `[out, end)`: the way out once the thread left the trampoline's care (a kick
    /// here, or the one it held back and replays with `ud2`, stands for the
    /// resumed state).
    pub out: u64,
    /// The `ud2` of the slow return.
    pub promote: u64,
    pub end: u64,
}

static INSTALLED: OnceLock<Result<Installed, String>> = OnceLock::new();

/// Maps the stub code at `STUB_BASE` in the Sentry (once) and says where its entries are.
pub fn install() -> io::Result<&'static Installed> {
    INSTALLED
        .get_or_init(|| install_once().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

/// Whether user-mode rd/wrfsbase work here (AT_HWCAP2 bit 1), unless the
/// environment asks for the arch_prctl path (to test it).
fn have_fsgsbase() -> bool {
    const AT_HWCAP2: u64 = 26;
    if std::env::var_os("RVISOR_SYSTRAP_NO_FSGSBASE").is_some() {
        return false;
    }
    crate::hostcall::host_auxval(AT_HWCAP2) & 2 != 0
}

fn install_once() -> io::Result<Installed> {
    // SAFETY: taking the addresses of symbols defined in the global_asm above.
    let tramp = unsafe {
        [&rvisor_systrap_tramp, &rvisor_systrap_tramp_gs_load, &rvisor_systrap_tramp_out, &rvisor_systrap_promote, &rvisor_systrap_tramp_end]
            .map(|s| s as *const u8 as u64)
    };
    // SAFETY: as above.
    let (start, setup, zygote, handler, restorer, flag, end) = unsafe {
        (
            &rvisor_systrap_start as *const u8 as u64,
            &rvisor_systrap_setup as *const u8 as u64,
            &rvisor_systrap_zygote as *const u8 as u64,
            &rvisor_systrap_handler as *const u8 as u64,
            &rvisor_systrap_restorer as *const u8 as u64,
            &rvisor_systrap_fsgsbase as *const u8 as u64,
            &rvisor_systrap_end as *const u8 as u64,
        )
    };
    let len = (end - start) as usize;
    assert!(len <= 4096, "systrap stub code must fit in a page ({len} bytes)");
    // SAFETY: MAP_FIXED_NOREPLACE never clobbers an existing mapping; we own the result.
    let p = unsafe {
        libc::mmap(
            STUB_BASE as *mut libc::c_void,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED || p as u64 != STUB_BASE {
        return Err(io::Error::other(format!(
            "cannot reserve the systrap stub page at {STUB_BASE:#x}: {}",
            io::Error::last_os_error()
        )));
    }
    let fsgsbase = have_fsgsbase();
    // SAFETY: copying `len` bytes of our own code into the fresh page, setting the
    // flag byte inside the copy, then making it read+exec.
    unsafe {
        std::ptr::copy_nonoverlapping(start as *const u8, p as *mut u8, len);
        *(p as *mut u8).add((flag - start) as usize) = fsgsbase as u8;
        if libc::mprotect(p, 4096, libc::PROT_READ | libc::PROT_EXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let at = |sym: u64| STUB_BASE + (sym - start);
    let [entry, gs_load, out, promote, tramp_end] = tramp.map(at);
    let tramp = Tramp { entry, gs_load, out, promote, end: tramp_end };
    Ok(Installed { setup: at(setup), zygote: at(zygote), handler: at(handler), restorer: at(restorer), code_end: STUB_BASE + len as u64, fsgsbase, tramp })
}

/// Descriptors a new stub gets (all >= 3 in the Sentry).
#[derive(Clone, Copy)]
pub struct SpawnFds {
    pub window: i32,
    pub memory: i32,
    pub eventfd: i32,
    /// The CPU to start the stub on: the one its Sentry thread runs on, so that the
    /// stub's setup and first hand-offs need no wake-up of another CPU.
    pub cpu: u32,
}

enum SpawnRequest {
    Stub(SpawnFds, mpsc::Sender<io::Result<i32>>),
    /// Only the zygote, started if it was not: whether it runs.
    Zygote(mpsc::Sender<bool>),
}

/// Stubs are forked by one Sentry thread that lives as long as the process: a stub's
/// parent-death signal fires when the thread that forked it exits, so this way it
/// fires exactly when the Sentry dies.
fn factory() -> io::Result<&'static Mutex<mpsc::Sender<SpawnRequest>>> {
    static FACTORY: OnceLock<Result<Mutex<mpsc::Sender<SpawnRequest>>, String>> = OnceLock::new();
    FACTORY
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<SpawnRequest>();
            std::thread::Builder::new()
                .name("systrap-stubs".into())
                .spawn(move || {
                    // This thread takes no signals: signals sent to the Sentry are for
                    // the threads that handle them (the runtime forwards some to the
                    // sandbox), and this one may start before those are blocked. The
                    // stubs start with everything blocked, too.
                    // SAFETY: sigfillset and pthread_sigmask on a local set.
                    unsafe {
                        let mut all: libc::sigset_t = std::mem::zeroed();
                        libc::sigfillset(&mut all);
                        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
                    }
                    crate::host_cpus::unpin_current_thread();
                    let mut zygote = Zygote::Untried;
                    for request in rx {
                        match request {
                            SpawnRequest::Stub(fds, reply) => {
                                let _ = reply.send(spawn_on_factory(&mut zygote, fds));
                            }
                            SpawnRequest::Zygote(reply) => {
                                let started = match install() {
                                    Ok(inst) => zygote.ensure_started(|sock| fork_into(inst.zygote, sock, -1, -1)),
                                    Err(_) => false,
                                };
                                let _ = reply.send(started);
                            }
                        }
                    }
                })
                .map(|_| Mutex::new(tx))
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

/// Forks a process of the Sentry into the stub code at `entry` (setup or the zygote),
/// with `r12`, `r13`, `r15` as the assembly says.
fn fork_into(entry: u64, r12: i32, r13: i32, r15: i32) -> io::Result<i32> {
    // SAFETY: the child runs only the stub code (installed by the caller) and never
    // returns into Rust; the parent gets the clone result back.
    let r = unsafe { rvisor_systrap_spawn(entry, r12, r13, r15, crate::stub::current_rseq_area(), libc::getpid()) };
    if r < 0 {
        return Err(io::Error::from_raw_os_error(-r as i32));
    }
    Ok(r as i32)
}

/// A new stub forked by the zygote (see the assembly and `crate::zygote`), or by
/// this thread where there is no zygote; pinned to the CPU its Sentry thread runs on.
fn spawn_on_factory(zygote: &mut Zygote, fds: SpawnFds) -> io::Result<i32> {
    let inst = install()?;
    let pid = zygote.spawn(
        &[fds.window, fds.eventfd, fds.memory],
        |sock| fork_into(inst.zygote, sock, -1, -1),
        || fork_into(inst.setup, fds.window, fds.memory, fds.eventfd),
    )?;
    crate::host_cpus::pin(pid, fds.cpu);
    Ok(pid)
}

/// Forks a new stub process (on the factory thread). Returns its pid; the child
/// sets itself up and traps on slot 0 when ready.
pub fn spawn(fds: SpawnFds) -> io::Result<i32> {
    install()?;
    let (tx, rx) = mpsc::channel();
    factory()?.lock().unwrap_or_else(|e| e.into_inner()).send(SpawnRequest::Stub(fds, tx)).map_err(|_| io::Error::other("stub factory gone"))?;
    rx.recv().map_err(|_| io::Error::other("stub factory gone"))?
}

/// Starts the zygote now, so that no later stub needs to fork from the Sentry
/// itself; whether it runs.
pub fn start_zygote() -> io::Result<bool> {
    install()?;
    let (tx, rx) = mpsc::channel();
    factory()?.lock().unwrap_or_else(|e| e.into_inner()).send(SpawnRequest::Zygote(tx)).map_err(|_| io::Error::other("stub factory gone"))?;
    rx.recv().map_err(|_| io::Error::other("stub factory gone"))
}
