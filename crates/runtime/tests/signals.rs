//! Signals (issue 3): one C program per signal feature, run natively and in the sandbox on
//! every platform, as `-static` and `-static-pie`, with identical stdout and exit status,
//! plus assertions on the lines that state Linux's behaviour.

mod common;

use common::*;

/// Runs `program ARGS` as the test `test`: same output natively and in the sandbox, the
/// program's own checks pass ("all ok"), and every line of `lines` is printed.
fn run(test: &str, program: &str, args: &[&str], lines: &'static [&'static str]) {
    compare(test, program, &Spec::args(args), move |o| {
        all([expect_all_ok(o)]
            .into_iter()
            .chain(lines.iter().map(|l| expect_stdout_has_line(o, l))))
    });
}

/// SA_SIGINFO: si_code and si_pid/si_uid/si_value for kill, sigqueue, tkill, tgkill, raise,
/// rt_sigqueueinfo, rt_tgsigqueueinfo; the handler's mask and uc_sigmask; EPERM for forged
/// si_codes sent to another process.
#[test]
fn sig_siginfo() {
    run(
        "sig_siginfo",
        "sig_info",
        &[],
        &[
            "kill: deliveries=1 si_signo=10 si_code=SI_USER si_errno=0",
            "sigqueue value: 1234",
            "sigqueue: deliveries=1 si_signo=10 si_code=SI_QUEUE si_errno=0",
            "tkill: deliveries=1 si_signo=12 si_code=SI_TKILL si_errno=0",
            "tgkill: deliveries=1 si_signo=12 si_code=SI_TKILL si_errno=0",
            "rt_sigqueueinfo: si_pid=4242 si_uid=77 value=99",
            "rt_tgsigqueueinfo: value=6",
            "rt_sigtimedwait: si_code=SI_TKILL",
        ],
    );
}

/// A handler edits its ucontext: REG_RIP skips a faulting 6-byte instruction, REG_RCX and
/// REG_RAX (a syscall's result) change, uc_sigmask changes the restored mask. SIGSEGV's
/// si_code (SEGV_ACCERR / SEGV_MAPERR) and exact si_addr.
#[test]
fn sig_ucontext() {
    run(
        "sig_ucontext",
        "sig_ucontext",
        &[],
        &[
            "write to a PROT_READ page: handler ran 1 time(s), signal 11, SEGV_ACCERR",
            "write to an unmapped page: handler ran 1 time(s), signal 11, SEGV_MAPERR",
            "write to NULL: handler ran 1 time(s), signal 11, SEGV_MAPERR",
            "read of a PROT_NONE page: handler ran 1 time(s), signal 11, SEGV_ACCERR",
            "call into a non-executable page: handler ran 1 time(s), SEGV_ACCERR",
            "kill returned 4242 after the handler set REG_RAX to 4242",
        ],
    );
}

/// REG_TRAPNO, REG_ERR (the page-fault error code) and REG_CR2 in the mcontext.
#[test]
fn sig_ucontext_fault_regs() {
    run(
        "sig_ucontext_fault_regs",
        "sig_ucontext",
        &["regs"],
        &[
            "write to a present read-only page: trapno 14, error code 0x7, cr2 == address: yes",
            "write to an unmapped page: trapno 14, error code 0x6, cr2 == address: yes",
            "read of an unmapped page: trapno 14, error code 0x4, cr2 == address: yes",
        ],
    );
}

/// xmm/ymm/x87/MXCSR preserved across a handler that clobbers them; the handler starts
/// with a fresh FP state; fpregs in the frame are read and written.
#[test]
fn sig_fp_state() {
    run(
        "sig_fp_state",
        "sig_fpu",
        &[],
        &[
            "MXCSR after the handler: 0x7f84 (before: 0x7f84)",
            "x87 control word after the handler: 0xf7f (before: 0xf7f)",
            "handler started with MXCSR 0x1f80 and x87 control word 0x37f",
            "uc_flags has UC_FP_XSTATE: yes",
            "fpregs carries the xstate magic numbers: yes",
        ],
    );
}

/// wait4 restarted under SA_RESTART, EINTR without; stops and ignored signals never
/// interrupt it.
#[test]
fn sig_sa_restart() {
    run(
        "sig_sa_restart",
        "sig_restart",
        &[],
        &[
            "SA_RESTART: wait4 returned EINTR: no",
            "SA_RESTART: handler saw the syscall rewound for restart: yes",
            "no SA_RESTART: wait4 returned EINTR: yes",
            "no SA_RESTART: handler saw it completed with -EINTR: yes",
            "restart_syscall with nothing to restart: -1 EINTR",
        ],
    );
}

/// The signal deferred inside its own handler by default, nested with SA_NODEFER;
/// sa_mask; SA_RESETHAND.
#[test]
fn sig_nodefer_resethand() {
    run(
        "sig_nodefer_resethand",
        "sig_nodefer",
        &[],
        &[
            "default (deferred): enter1 raised exit1 enter1 exit1 ",
            "SA_NODEFER (nested): enter1 enter2 exit2 raised exit1 ",
            "SIGUSR2 in sa_mask: usr1-enter usr1-raised-usr2 usr1-exit usr2 ",
            "SA_RESETHAND, raise inside the handler: child killed by signal 10",
            "SA_RESETHAND|SA_NODEFER, raise inside the handler: child killed by signal 10",
        ],
    );
}

/// SA_ONSTACK with sigaltstack, nested, errors, a stack overflow caught on it.
#[test]
fn sig_altstack() {
    run(
        "sig_altstack",
        "sig_altstack",
        &[],
        &["changing the alternate stack while on it: EPERM"],
    );
}

/// Per-thread masks; process-directed vs thread-directed delivery; a thread that blocks a
/// process-directed signal sent to it leaves it to another; fatal signals to one thread end
/// the process.
#[test]
fn sig_threads() {
    run(
        "sig_threads",
        "sig_threads",
        &[],
        &[
            "SIGTERM (default action) sent to one thread: the process killed by signal 15",
            "a SIGSEGV fault in one thread: the process killed by signal 11",
            "SIGKILL sent to one thread: the process killed by signal 9",
            "rounds whose process-directed signal no thread took: exited 0",
        ],
    );
}

/// sigpending; standard signals coalesce, real-time signals queue with their values, in
/// order; ignored signals; sigsuspend restores the earlier mask at the handler's sigreturn.
#[test]
fn sig_pending_queue() {
    run(
        "sig_pending_queue",
        "sig_queue",
        &[],
        &[
            "delivered after unblocking: USR1 RTMIN+0:1 RTMIN+0:2 RTMIN+0:3 RTMIN+0:3 RTMIN+1:10 ",
            "sigsuspend returned -1 EINTR; delivered inside it: USR1 ",
            "a blocked, ignored signal is left pending: yes",
        ],
    );
}

/// Several pending signals unblocked at once: Linux builds a frame for each, so the last
/// one set up runs first.
#[test]
fn sig_pending_nested_frames() {
    run(
        "sig_pending_nested_frames",
        "sig_queue",
        &["nested"],
        &["delivered after unblocking, handlers blocking only their own signal: RTMIN+1:10 RTMIN+0:1 RTMIN+0:2 RTMIN+0:3 RTMIN+0:3 USR1 "],
    );
}

/// RLIMIT_SIGPENDING: sigqueue fails with EAGAIN beyond it (runs as uid 54322).
#[test]
fn sig_pending_limit() {
    run(
        "sig_pending_limit",
        "sig_queue",
        &["limit"],
        &["sigqueue succeeded 5 times, then: EAGAIN"],
    );
}

/// sigtimedwait (timeouts, EAGAIN, EINTR), sigwaitinfo, sigsuspend, pause.
#[test]
fn sig_wait() {
    run(
        "sig_wait",
        "sig_wait",
        &[],
        &[
            "sigtimedwait, nothing pending, 20 ms: -1 EAGAIN",
            "sigtimedwait, zero timeout: -1 EAGAIN",
            "sigtimedwait with SIGUSR1 pending: 10, si_code SI_QUEUE, value 31",
            "sigtimedwait interrupted by a SIGUSR2 handler: -1 EINTR",
            "pause: -1 EINTR",
            "sigsuspend: -1 EINTR",
        ],
    );
}

/// The default action of every signal, seen by the parent: killed (with the core bit clear,
/// since the children are not dumpable), stopped, or unaffected; terminal stops discarded in
/// an orphaned process group; SIGKILL and SIGSTOP cannot be caught, ignored or blocked; a
/// SIGCONT right after a SIGSTOP leaves the child running, however the two race its stop.
#[test]
fn sig_default_actions() {
    run(
        "sig_default_actions",
        "sig_default",
        &[],
        &[
            "signal 1 (Hangup, default term): killed by 1, WCOREDUMP=0",
            "signal 3 (Quit, default core): killed by 3, WCOREDUMP=0",
            "signal 6 (Aborted, default core): killed by 6, WCOREDUMP=0",
            "signal 9 (Killed, default term): killed by 9, WCOREDUMP=0",
            "signal 10 (User defined signal 1, default term): killed by 10, WCOREDUMP=0",
            "signal 11 (Segmentation fault, default core): killed by 11, WCOREDUMP=0",
            "signal 15 (Terminated, default term): killed by 15, WCOREDUMP=0",
            "signal 17 (Child exited, default ignore): exited 0",
            "signal 19 (Stopped (signal), default stop): stopped by 19, then exited 0",
            "signal 20 (Stopped, default stop): stopped by 20, then exited 0",
            "signal 20 (Stopped, default stop): exited 0",
            "SIGKILL with everything blocked: killed by 9, WCOREDUMP=0",
            "abort() with a returning SIGABRT handler: killed by 6, WCOREDUMP=0",
            "SIGSTOP then SIGCONT at once: the child ran on every time: yes",
        ],
    );
}

/// SIGCHLD's siginfo for exit, kill, stop, continue; SA_NOCLDSTOP; a clone exit signal.
#[test]
fn sig_chld_job_control() {
    run(
        "sig_chld_job_control",
        "sig_chld",
        &[],
        &[
            "child exits 7: signal 17, CLD_EXITED, si_status 7, si_pid is the child: yes, si_uid ours: yes",
            "child killed by SIGTERM: signal 17, CLD_KILLED, si_status 15, si_pid is the child: yes, si_uid ours: yes",
            "child stops itself: signal 17, CLD_STOPPED, si_status 19, si_pid is the child: yes, si_uid ours: yes",
            "parent sends SIGCONT: signal 17, CLD_CONTINUED, si_status 18, si_pid is the child: yes, si_uid ours: yes",
            "clone child with exit signal SIGUSR1: signal 10, CLD_EXITED, si_status 4, si_pid is the child: yes",
        ],
    );
}

/// Synchronous faults: SIGSEGV, SIGFPE, SIGILL, SIGTRAP with their si_code and si_addr,
/// caught and left with siglongjmp; blocked or ignored fault signals still kill.
#[test]
fn sig_sync_faults() {
    run(
        "sig_sync_faults",
        "sig_faults",
        &[],
        &[
            "write to an unmapped page: handled 1, signal 11, SEGV_MAPERR, si_addr the data address, REG_RIP the instruction",
            "write to a read-only page: handled 1, signal 11, SEGV_ACCERR, si_addr the data address, REG_RIP the instruction",
            "hlt (privileged): handled 1, signal 11, SI_KERNEL, si_addr 0, REG_RIP the instruction",
            "integer divide by zero: handled 1, signal 8, FPE_INTDIV, si_addr the instruction, REG_RIP the instruction",
            "SSE divide by zero, unmasked: handled 1, signal 8, FPE_FLTDIV, si_addr the instruction, REG_RIP the instruction",
            "ud2: handled 1, signal 4, ILL_ILLOPN, si_addr the instruction, REG_RIP the instruction",
            "int3: handled 1, signal 5, SI_KERNEL, si_addr 0, REG_RIP the instruction + 1",
            "fault with SIGSEGV blocked (and a handler): killed by signal 11",
            "divide by zero with SIGFPE ignored: killed by signal 8",
        ],
    );
}

/// SIGBUS: a misaligned load with EFLAGS.AC set (BUS_ADRALN), and raise(SIGBUS).
#[test]
fn sig_sigbus() {
    run(
        "sig_sigbus",
        "sig_faults",
        &["bus"],
        &[
            "misaligned load with EFLAGS.AC set: handled 1, signal 7, BUS_ADRALN, si_addr 0, REG_RIP the instruction",
            "raise(SIGBUS): handled 1, signal 7, SI_TKILL",
        ],
    );
}

/// A 32-bit `int 0x80` from a 64-bit program is a general protection fault (SIGSEGV,
/// SI_KERNEL, at the instruction), as on a Linux without IA32 emulation, and never the
/// 64-bit syscall of the same number. Sandbox only: the host may emulate IA32.
#[test]
fn int80_is_a_fault() {
    matrix("int80_is_a_fault", LINKS, |v| {
        let o = run_sandbox(v.platform, &compile("int80", v.link), &Spec::default());
        all([expect_status(&o, 0), expect_stdout(&o, "SIGSEGV, si_code 128 (SI_KERNEL 128), at the instruction: yes\n")])
    });
}
