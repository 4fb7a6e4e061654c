//! The C programs in tests/programs, run natively and in the sandbox on every platform, as
//! `-static` and `-static-pie`: same stdout, same exit status, plus per-program assertions.

mod common;

use common::*;
use std::os::fd::{FromRawFd, OwnedFd};

#[test]
fn hello() {
    compare("hello", "hello", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout(o, "hello, world\nhello via write\nwrite returned 16\n"),
            if o.stderr_str().lines().any(|l| l == "hello on stderr") {
                Ok(())
            } else {
                Err("stderr lacks \"hello on stderr\"".into())
            },
        ])
    });
}

#[test]
fn exit_codes() {
    let cases: &[(&str, i32, &str)] = &[
        ("exit0", 0, "mode exit0\n"),
        ("exit42", 42, "mode exit42\n"),
        ("exit300", 44, "mode exit300\n"),
        ("return7", 7, "mode return7\n"),
        ("_exit3", 3, "mode _exit3\n"),
        ("unflushed", 5, ""),
        ("sys_exit", 9, "mode sys_exit\n"),
        ("exit_group", 11, "mode exit_group\n"),
    ];
    let checks: Vec<_> = cases
        .iter()
        .map(|&(mode, status, out)| -> (Spec, Box<Check>) {
            (
                Spec::args([mode]),
                Box::new(move |o| all([expect_status(o, status), expect_stdout(o, out)])),
            )
        })
        .collect();
    compare_each("exit_codes", "exit", &checks);
}

#[test]
fn args_and_env() {
    let args = ["one", "two words", "", "ünïcödé", "--flag=x", "last"];
    let spec = Spec::args(args).env(&[
        ("RVT_A", "1"),
        ("RVT_B", "with space"),
        ("RVT_EMPTY", ""),
        ("PATH", "/usr/bin:/bin"),
    ]);
    compare("args_and_env", "args", &spec, |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "argc=7"),
            expect_stdout_has_line(o, "argv[2]=[two words]"),
            expect_stdout_has_line(o, "argv[3]=[]"),
            expect_stdout_has_line(o, "argv[4]=[ünïcödé]"),
            expect_stdout_has_line(o, "argv[6]=[last]"),
            expect_stdout_has_line(o, "argv[argc] is NULL: yes"),
            expect_stdout_has_line(o, "envp == environ: yes"),
            expect_stdout_has_line(o, "envc=4"),
            expect_stdout_has_line(o, "env[1]=[RVT_A=1]"),
            expect_stdout_has_line(o, "env[2]=[RVT_B=with space]"),
            expect_stdout_has_line(o, "env[3]=[RVT_EMPTY=]"),
        ])
    });
}

#[test]
fn auxv() {
    compare("auxv", "auxv", &Spec::args(["some", "args"]), expect_all_ok);
}

/// Static binaries load at their link address; static-pie loads at a random base.
#[test]
fn load_base() {
    let parse = |o: &Outcome| -> Result<u64, String> {
        let s = o.stdout_str();
        u64::from_str_radix(s.trim().trim_start_matches("0x"), 16)
            .map_err(|e| format!("cannot parse base {s:?}: {e}"))
    };
    matrix("load_base", LINKS, |v| {
        let bin = compile("auxv", v.link);
        let spec = Spec::args(["--print-base"]);
        let native = parse(&run_native(&bin, &spec)).expect("native base");
        let mut bases = Vec::new();
        for _ in 0..3 {
            let o = run_sandbox(v.platform, &bin, &spec);
            sane(&o)?;
            expect_status(&o, 0).map_err(|e| format!("{e}\n{}", o.describe()))?;
            bases.push(parse(&o).map_err(|e| format!("{e}\n{}", o.describe()))?);
        }
        match v.link {
            Link::Static if bases.iter().any(|&b| b != native) => Err(format!(
                "static binary not at its link address {native:#x}: {bases:x?}"
            )),
            Link::StaticPie if bases.iter().any(|&b| b == 0 || b & 0xfff != 0) => Err(format!(
                "static-pie base not page aligned or zero: {bases:x?}"
            )),
            Link::StaticPie if bases.iter().all(|&b| b == bases[0]) => Err(format!(
                "static-pie loaded at the same base three times: {bases:x?}"
            )),
            _ => Ok(()),
        }
    });
}

#[test]
fn malloc() {
    compare("malloc", "malloc", &Spec::default(), expect_all_ok);
}

/// The registers after a `syscall` (tests/programs/syscall_regs.c): rax the result, rcx the
/// return address, r11 the flags, everything else (flags, rsp, the red zone, vector
/// registers) as it was, from `mov $nr, %eax; syscall` sites in tight loops on four
/// threads, under a timer signal, and in a forked child: what a systrap syscall patch
/// must keep (docs/systrap-patching.md).
#[test]
fn syscall_regs() {
    compare("syscall_regs", "syscall_regs", &Spec::default(), expect_all_ok);
}

/// A call at a `mov $nr, %eax; syscall` site interrupted by a signal once the site could
/// be patched (tests/programs/syscall_patch_restart.c): restarted with SA_RESTART, EINTR
/// without, returning after the site either way (with systrap's patching the restart must
/// not run the patched bytes where `syscall` was).
#[test]
fn syscall_patch_restart() {
    compare("syscall_patch_restart", "syscall_patch_restart", &Spec::default(), expect_all_ok);
}

/// A tracer seizing a process at a `mov $nr, %eax; syscall` site it has made patchable
/// (tests/programs/ptrace_patched_site.c): its syscall stops show the site's number,
/// rip and rcx, and the number it sets at entry and the result it sets at exit reach
/// the call, on systrap's patched path as on a trapped one.
#[test]
fn ptrace_patched_site() {
    compare("ptrace_patched_site", "ptrace_patched_site", &Spec::default(), expect_all_ok);
}

/// The race patching must survive, made deterministic (tests/programs/syscall_patch_race.c):
/// a thread single-stepped to a site's `syscall`, past its `mov`, while another thread
/// gets the site patched, then let go: one call with the right result, no signal.
#[test]
fn syscall_patch_race() {
    compare("syscall_patch_race", "syscall_patch_race", &Spec::default(), expect_all_ok);
}

/// A soak of syscall patching (tests/programs/syscall_patch_stress.c): 64 sites called
/// on four threads while they are patched, from a timer signal's handler and from forked
/// children, every result checked.
#[test]
fn syscall_patch_stress() {
    compare("syscall_patch_stress", "syscall_patch_stress", &Spec::default(), expect_all_ok);
}

/// glibc's `read` site, `xor %eax, %eax; syscall; cmp $-4096, %rax`, which systrap patches
/// through an entry that runs the `cmp` (tests/programs/syscall_patch_read.c): calls from
/// four threads and a forked child while it is patched; a thread asleep in the call then,
/// woken, restarted after a handler, or failing with EINTR; a traced thread single-stepped
/// to the site's `syscall`, or over it (which ends in a SIGTRAP right after the call, as
/// on Linux), while another thread patches the site.
#[test]
fn syscall_patch_read() {
    compare("syscall_patch_read", "syscall_patch_read", &Spec::default(), expect_all_ok);
}

/// On systrap, `syscall_patch_read`'s sites are patched while its threads stand where its
/// cases put them (the `--debug` log): the test above takes the paths it means to.
#[test]
fn syscall_patch_read_is_patched() {
    matrix("syscall_patch_read_is_patched", &[Link::Static], |v| {
        let bin = compile("syscall_patch_read", v.link);
        let o = run_sandbox_flags(v.platform, &["--debug"], &bin, &Spec::default());
        expect_all_ok(&o)?;
        let log = o.stderr_str();
        let count = |what: &str| log.lines().filter(|l| l.contains(what)).count();
        let seen = (count(", Read)"), count(": AfterCall"), count(": Site"));
        let patching = v.platform == "systrap";
        let ok = if patching { seen.0 >= 6 && seen.1 >= 3 && seen.2 >= 1 } else { seen == (0, 0, 0) };
        if ok {
            Ok(())
        } else {
            Err(format!("read sites patched, detours after the call, detours to the site: {seen:?}\n{}", o.describe()))
        }
    });
}

/// statmount and listmount (tests/programs/statmount.c): every mount listed
/// from the root agrees with /proc/self/mountinfo, its file system's options
/// (MNT_OPTS) with mountinfo's last field; the mounts made there
/// (flags, a bind of a subdirectory, shared, slave, unbindable), listing in
/// pieces, statx's mount IDs, the errors, and EPERM outside a chroot without
/// CAP_SYS_ADMIN, as natively.
#[test]
fn statmount() {
    compare("statmount", "statmount", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(o, "b: root /sub, attributes 0x17, propagation 0x40000"),
            expect_stdout_has_line(o, "statmount of the type into 517 bytes: -1 EOVERFLOW"),
            expect_stdout_has_line(o, "its mask 0x80, offset 1, size right: yes"),
            expect_stdout_has_line(o, "statmount of d's options into a byte too few: -1 EOVERFLOW"),
            expect_stdout_has_line(o, "without CAP_SYS_ADMIN, statmount of base: -1 EPERM"),
        ])
    });
}

/// cachestat (tests/programs/cachestat.c): a memfd's pages counted exactly
/// through writes, holes, fallocate, hole punching and truncation; files
/// without pages; the program's own mapped file; the errors, as natively.
#[test]
fn cachestat() {
    compare("cachestat", "cachestat", &Spec::default(), |o| all([expect_all_ok(o), expect_stdout_has_line(o, "pages 60-61 allocated: cache 7 dirty 0 writeback 0 evicted 0 recently 0")]));
}

/// The LSM calls (tests/programs/lsm.c): capability among the listed modules,
/// no process attributes (EOPNOTSUPP), and the size and flag errors, as natively.
#[test]
fn lsm() {
    compare("lsm", "lsm", &Spec::default(), |o| all([expect_all_ok(o), expect_stdout_has_line(o, "get current: -1 EOPNOTSUPP")]));
}

#[test]
fn fchmodat2() {
    compare("fchmodat2", "fchmodat2", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "fchmodat2 link 0600 AT_SYMLINK_NOFOLLOW: EOPNOTSUPP"), expect_stdout_has_line(o, "fchmodat2 f 0600: ok")])
    });
}

#[test]
fn brk() {
    compare("brk", "brk", &Spec::default(), expect_all_ok);
}

#[test]
fn mmap() {
    compare("mmap", "mmap", &Spec::default(), expect_all_ok);
}

/// Once munmap, mprotect, a MAP_FIXED mmap or MADV_DONTNEED returns, another thread
/// touching the page without a system call sees the change (the TLB shootdown; on kvm
/// the shadow page tables are flushed before the call returns).
#[test]
fn mapping_changes_reach_other_threads_at_once() {
    compare("mapping_changes_reach_other_threads_at_once", "shootdown", &Spec::default(), expect_all_ok);
}

#[test]
fn stack_growth() {
    compare("stack_growth", "stack", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout(
                o,
                "recursion result matches: yes\nstack used >= 4 MiB: yes\n1 MiB frame touched from its far end: yes\n",
            ),
        ])
    });
}

#[test]
fn stack_overflow_is_sigsegv() {
    compare(
        "stack_overflow_is_sigsegv",
        "stack",
        &Spec::args(["overflow"]),
        |o| {
            all([
                expect_status(o, 139),
                expect_stdout(o, "recursing forever\n"),
            ])
        },
    );
}

#[test]
fn efault() {
    compare("efault", "efault", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "write(1, (void*)1, 10) = -1 EFAULT"),
            expect_stdout_has_line(o, "read(0, NULL, 0) = 0"),
            expect_stdout_has_line(o, "write(1, NULL, 0) = 0"),
            expect_stdout_has_line(o, "still running"),
        ])
    });
}

/// A write after mprotect(PROT_READ), and other bad accesses, kill with SIGSEGV: 139.
#[test]
fn segv() {
    let checks: Vec<_> = ["mprotect", "null", "prot_none", "exec", "munmapped"]
        .into_iter()
        .map(|mode| -> (Spec, Box<Check>) {
            let mut want = format!("before fault ({mode})\n");
            if mode == "mprotect" {
                want.push_str("read back 1 after mprotect\n");
            }
            let killed = move |o: &Outcome| match o.signal {
                // natively the child itself is killed by SIGSEGV; rvisor exits with 139
                Some(libc::SIGSEGV) | None => Ok(()),
                Some(s) => Err(format!("killed by signal {s}, not SIGSEGV")),
            };
            (
                Spec::args([mode]),
                Box::new(move |o| all([expect_status(o, 139), expect_stdout(o, &want), killed(o)])),
            )
        })
        .collect();
    compare_each("segv", "segv", &checks);
}

#[test]
fn uname() {
    compare("uname", "uname", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "sysname: Linux"),
            expect_stdout_has_line(o, "machine: x86_64"),
            expect_stdout_has_line(o, "nodename nonempty: yes"),
            expect_stdout_has_line(o, "release >= 4.0: yes"),
            expect_stdout_has_line(o, "fields NUL-terminated: yes"),
        ])
    });
}

#[test]
fn ids() {
    compare("ids", "ids", &Spec::default(), expect_all_ok);
}

#[test]
fn time() {
    // The host clock is passed in at each run; the program checks it agrees with its own.
    matrix("time", LINKS, |v| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        compare_one(v, "time", &Spec::args([now.to_string()]), &expect_all_ok)
    });
}

#[test]
fn getrandom() {
    compare("getrandom", "random", &Spec::default(), expect_all_ok);
}

#[test]
fn rlimits() {
    compare("rlimits", "rlimit", &Spec::default(), expect_all_ok);
}

/// RLIMIT_FSIZE (`ulimit -f`, which build and test scripts set against runaway
/// output): writes stop at the limit, one past it is EFBIG with SIGXFSZ (fatal by
/// default); truncate, ftruncate and fallocate may not grow a file past it;
/// copy_file_range and sendfile stop at it; a pipe is not limited.
#[test]
fn rlimit_fsize() {
    compare("rlimit_fsize", "fsize", &Spec::default(), expect_all_ok);
}

/// RLIMIT_AS (`ulimit -v`): mmap, brk and mremap may not grow the address space past
/// it, a MAP_FIXED mapping counts only what it adds, and munmap makes room again
/// (Python's MemoryError under `ulimit -v` instead of a run that eats the host).
#[test]
fn rlimit_as() {
    compare("rlimit_as", "rlimit_as", &Spec::default(), expect_all_ok);
}

/// RLIMIT_DATA (`ulimit -d`): private writable mappings that are no stack (mmap,
/// mprotect to writable, mremap, brk) may not grow past it; read-only, shared and
/// MAP_GROWSDOWN ones are not data; a limit of 0 allows up to the hard limit.
/// mlock splits, populates and counts (VmLck, smaps), is not inherited, and
/// RLIMIT_MEMLOCK bounds it without CAP_IPC_LOCK (mlock, mlockall, MAP_LOCKED,
/// MCL_FUTURE's mmap, brk and mremap), and SHM_LOCK per user.
#[test]
fn mlock_and_rlimit_memlock() {
    compare("mlock_and_rlimit_memlock", "mlock", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "mappings there: 3, VmLck 12 kB, resident pages 3 (locked ones 3)"),
            expect_stdout_has_line(o, "mlock of 2 more: ENOMEM"),
            expect_stdout_has_line(o, "then mmap of 3 pages: EAGAIN"),
            expect_stdout_has_line(o, "SHM_LOCK of 2 more: ENOMEM, SHM_LOCKED 0"),
            expect_stdout_has_line(o, "then SHM_LOCK of the 2: ok, SHM_LOCKED 1"),
            expect_stdout_has_line(o, "after the 2's removal, SHM_LOCK of the 3: ok"),
            expect_stdout_has_line(o, "limit 0: SHM_LOCK EPERM"),
        ])
    });
}

/// RLIMIT_STACK as set at the access bounds the main stack's growth, by the app
/// and by the Sentry's writes for it; an exec with an unlimited stack leaves room.
/// Exec maps no more initial stack than RLIMIT_STACK, and refuses (E2BIG) argv
/// and envp past a quarter of it (at least 128 KiB) or past its pages; growth
/// past RLIMIT_AS, or RLIMIT_MEMLOCK for a locked stack, faults.
#[test]
fn rlimit_stack_growth() {
    compare("rlimit_stack_growth", "stack_limit", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "64 MiB, touch 16 MiB below: exited 0"),
            expect_stdout_has_line(o, "1 MiB, touch 2 MiB below: killed by SEGV"),
            expect_stdout_has_line(o, "exec under 64 KiB, touch 100 KiB below: killed by SEGV"),
            expect_stdout_has_line(o, "exec under 256 KiB, touch 200 KiB below: ran"),
            expect_stdout_has_line(o, "RLIMIT_AS 1 MiB above, touch 4 MiB below: killed by SEGV"),
            expect_stdout_has_line(o, "mlockall, RLIMIT_MEMLOCK 1 MiB above, touch 4 MiB below: killed by SEGV"),
            expect_stdout_has_line(o, "mlockall, RLIMIT_MEMLOCK 1 MiB above, touch 512 KiB below: exited 0"),
            expect_stdout_has_line(o, "argv and envp of 1.5 MiB each: E2BIG"),
            expect_stdout_has_line(o, "under 64 KiB, argv of 64 KiB: E2BIG"),
            expect_stdout_has_line(o, "a string of 128 KiB: E2BIG"),
            expect_stdout_has_line(o, "under 1 MiB, 40000 empty arguments: E2BIG"),
        ])
    });
}

/// What a `#!` line adds to argv counts against execve's room for strings as the
/// strings passed do: at the boundary the script runs, a byte past it E2BIG.
#[test]
fn exec_script_e2big() {
    compare("exec_script_e2big", "exec_script_e2big", &Spec::default(), expect_all_ok);
}

/// RLIMIT_AS is checked as a mapping goes in: of two threads mapping at once with
/// room for one, exactly one succeeds, every round.
#[test]
fn rlimit_as_race() {
    compare("rlimit_as_race", "rlimit_as_race", &Spec::default(), expect_all_ok);
}

/// mprotect and mlock over several mappings stop at the first they refuse (a hole, a
/// mapping that may not be written, RLIMIT_DATA) and keep what they changed before;
/// madvise drops every mapped part before it says ENOMEM; as Linux's
/// (tests/programs/mm_holes.c).
#[test]
fn mm_calls_at_holes() {
    compare("mm_calls_at_holes", "mm_holes", &Spec::default(), expect_all_ok);
}

/// mremap's growth (in place, moving, to a fixed address, MREMAP_DONTUNMAP) keeps
/// to RLIMIT_AS and, for data, RLIMIT_DATA; mprotect making private memory
/// writable keeps to RLIMIT_DATA (refused whole, the mapping unchanged), unless
/// RLIMIT_AS would refuse the pages too, as Linux's mprotect_fixup; shmat keeps
/// to RLIMIT_AS.
#[test]
fn rlimit_mremap_mprotect_shmat() {
    compare("rlimit_mremap_mprotect_shmat", "rlimit_mremap_mprotect", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(o, "  mremap 8 -> 40 MiB in place: ENOMEM"),
            expect_stdout_has_line(o, "  mprotect of private read-only 64 MiB to read-write: ENOMEM"),
            expect_stdout_has_line(o, "  then maps shows it r--p, a write to it: SEGV"),
            expect_stdout_has_line(o, "  shmat of 32 MiB: ENOMEM"),
        ])
    });
}

/// The limits of mremap, mprotect and shmat are checked as the address space
/// changes: of a thread growing its memory so and one mapping as much at once,
/// with room for one, exactly one succeeds, every round.
#[test]
fn rlimit_grow_race() {
    compare("rlimit_grow_race", "rlimit_grow_race", &Spec::default(), expect_all_ok);
}

/// /proc/sysvipc/shm, sem and msg: Linux's headings and columns, a line per object
/// with what *_STAT says of it.
#[test]
fn sysvipc_proc() {
    compare("sysvipc_proc", "sysvipc_proc", &Spec::default(), expect_all_ok);
}

/// Raising scheduling priority takes CAP_SYS_NICE (or room under RLIMIT_NICE
/// and RLIMIT_RTPRIO), not root alone: a container's root without it is refused.
#[test]
fn sched_priority_needs_cap_sys_nice() {
    compare("sched_priority_needs_cap_sys_nice", "sched_privilege", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "back to nice 0: EACCES"),
            expect_stdout_has_line(o, "SCHED_IDLE: ok, then SCHED_OTHER: EPERM"),
        ])
    });
}

/// Root without the capabilities a container's default set leaves out is
/// refused what Linux refuses it: uid 0 is no privilege by itself.
#[test]
fn root_without_capabilities() {
    compare("root_without_capabilities", "root_without_caps", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "  clock_settime: EPERM"),
            expect_stdout_has_line(o, "  list: user.b yes, trusted.a no"),
        ])
    });
}

/// A subreaper ignoring SIGCHLD keeps no zombie of its orphans, whenever they
/// die, and its wait() never reports one, however its children die meanwhile.
#[test]
fn reparented_orphans_are_autoreaped() {
    compare("reparented_orphans_are_autoreaped", "reparent_autoreap", &Spec::default(), |o| all([expect_status(o, 0), expect_stdout_has_line(o, "0 failures")]));
}

/// Sleeps end only once their own clock (the sandbox's, which may slew) has
/// reached the end, relative and absolute, monotonic and boottime; nor does a
/// poll, ppoll, select, epoll_wait, futex wait or sigtimedwait that times out.
#[test]
fn sleeps_never_end_early() {
    compare("sleeps_never_end_early", "sleep_not_early", &Spec::default(), |o| all([expect_status(o, 0), expect_stdout_has_line(o, "0 failures")]));
}

#[test]
fn rlimit_data() {
    compare("rlimit_data", "rlimit_data", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "private writable 64 MiB: ENOMEM"),
            expect_stdout_has_line(o, "mprotect of it to read-write: ENOMEM"),
            expect_stdout_has_line(o, "brk up 64 MiB: refused, the break stays"),
            expect_stdout_has_line(o, "limit 0: brk up a page: refused"),
            expect_stdout_has_line(o, "then 1 MiB: brk down to 4 MiB: refused"),
        ])
    });
}

#[test]
fn signal_state() {
    compare("signal_state", "signals", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(o, "initially blocked signals: 0"),
            expect_stdout_has_line(o, "standard signals with a non-default disposition: 0"),
            expect_stdout_has_line(o, "raw mask after blocking everything: 0xfffffffe7ffbfeff"),
        ])
    });
}

#[test]
fn tls_and_startup_calls() {
    compare(
        "tls_and_startup_calls",
        "tls",
        &Spec::default(),
        expect_all_ok,
    );
}

#[test]
fn sched() {
    compare("sched", "sched", &Spec::default(), expect_all_ok);
}

/// Under the harness stdio are pipes: isatty is false with ENOTTY, like Linux.
#[test]
fn tty_on_pipes() {
    compare("tty_on_pipes", "tty", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "isatty(1) = 0 ENOTTY"),
            expect_stdout_has_line(o, "ioctl(0, TCGETS) = -1 ENOTTY"),
            expect_stdout_has_line(o, "ioctl(2, TIOCGWINSZ) = -1 ENOTTY"),
            expect_stdout_has_line(o, "ioctl(99, TCGETS) = -1 EBADF"),
        ])
    });
}

/// stdin is a pseudo-terminal of 24x80: TCGETS and TIOCGWINSZ reach it.
#[test]
fn tty_on_pty() {
    let pty = || -> (OwnedFd, OwnedFd) {
        let (mut master, mut slave) = (-1, -1);
        let ws = libc::winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors into the provided ints; the other pointers
        // may be NULL (name, termios) or point to a valid winsize.
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &ws,
            )
        };
        assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened by openpty and are owned by nobody else.
        unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
    };
    let check = |o: &Outcome| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "isatty(0) = 1 "),
            expect_stdout_has_line(o, "ioctl(0, TCGETS) = 0 "),
            expect_stdout_has_line(o, "ioctl(0, TIOCGWINSZ) = 0 rows=24 cols=80"),
            expect_stdout_has_line(o, "isatty(1) = 0 ENOTTY"),
        ])
    };
    matrix("tty_on_pty", LINKS, |v| {
        let bin = compile("tty", v.link);
        let (_m1, s1) = pty();
        let native = run(native_command(&bin, &Spec::default()), Input::Fd(s1));
        check(&native).unwrap_or_else(|e| {
            panic!("native run fails its own check: {e}\n{}", native.describe())
        });
        let (_m2, s2) = pty();
        let sb = run(
            sandbox_command(v.platform, &[], &bin, &Spec::default()),
            Input::Fd(s2),
        );
        sane(&sb)?;
        all([
            if sb.stdout == native.stdout {
                Ok(())
            } else {
                Err(format!(
                    "stdout differs:\n{}",
                    diff(&native.stdout, &sb.stdout)
                ))
            },
            check(&sb),
        ])
        .map_err(|e| format!("{e}\n{}", sb.describe()))
    });
}

#[test]
fn fstat_stdio() {
    compare("fstat_stdio", "fstat", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "fstat(0): fifo, S_ISFIFO=1, perms 600, nlink 1"),
            expect_stdout_has_line(o, "fstat(1): fifo, S_ISFIFO=1, perms 600, nlink 1"),
            expect_stdout_has_line(
                o,
                "newfstatat(1, \"\", AT_EMPTY_PATH) = 0, same inode: yes, same mode: yes",
            ),
            expect_stdout_has_line(o, "fstat(99) = -1 EBADF"),
        ])
    });
}

#[test]
fn getcwd() {
    compare("getcwd", "cwd", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "getcwd succeeds: yes"),
            expect_stdout_has_line(o, "cwd is absolute: yes"),
            expect_stdout_has_line(o, "getcwd(buf, 1) = NULL ERANGE"),
        ])
    });
}

#[test]
fn proc_self_exe() {
    compare("proc_self_exe", "proc_exe", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "readlink succeeds: yes"),
            expect_stdout_has_line(o, "absolute: yes"),
            expect_stdout_has_line(o, "readlink into 4 bytes returns 4 (truncated): yes"),
            if o.stdout_lines()
                .iter()
                .any(|l| l.starts_with("ends with /proc_exe-") && l.ends_with(": yes"))
            {
                Ok(())
            } else {
                Err("readlink does not end with the program's name".into())
            },
        ])
    });
}

/// stdin is copied to stdout through readv/writev, then 1 MiB in one write, then a report.
#[test]
fn stdio_read_write() {
    let input = pseudo_random_bytes(300_000, 0x5eed);
    let spec = Spec::default().stdin(input.clone());
    compare("stdio_read_write", "rw", &spec, |o| {
        let mut errs = vec![expect_status(o, 0)];
        if !o.stdout.starts_with(&input) {
            errs.push(Err(
                "stdout does not start with the bytes given on stdin".into()
            ));
        }
        let rest =
            String::from_utf8_lossy(o.stdout.get(input.len() + (1 << 20)..).unwrap_or_default())
                .into_owned();
        for line in [
            "bytes copied from stdin = 300000",
            "write of 1 MiB = 1048576",
            "pread64(0) = -1 ESPIPE",
            "pwrite64(1) = -1 ESPIPE",
            "write(99) = -1 EBADF",
            "read(1) (write end of a pipe) = -1 EBADF",
            "writev(1, iov, 1025) = -1 EINVAL",
        ] {
            if !rest.lines().any(|l| l == line) {
                errs.push(Err(format!("report lacks {line:?}; report:\n{rest}")));
            }
        }
        all(errs)
    });
}

#[test]
fn advisory_locks() {
    compare("advisory_locks", "locks", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "child: F_GETLK names the parent's lock: yes"),
            expect_stdout_has_line(o, "after it ended, flock is free: Success"),
            expect_stdout_has_line(o, "after it ended, the OFD lock is free: Success"),
            expect_stdout_has_line(o, "the parent closed its flocked fd, a child still has it: flock is free: Resource temporarily unavailable"),
            expect_stdout_has_line(o, "the child ended too: flock is free: Success"),
            expect_stdout_has_line(o, "record lock after dup2 over its fd, another process locks: Success"),
            expect_stdout_has_line(o, "record lock through a close-on-exec fd after exec, another process locks: Success"),
            expect_stdout_has_line(o, "another process's lock on the pipe: Resource temporarily unavailable"),
            expect_stdout_has_line(o, "F_SETLKW on standard output = 0"),
        ])
    });
}

#[test]
fn getdents_old_and_64() {
    compare("getdents_old_and_64", "getdents", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "getdents, 256-byte buffer: 27 entries in several calls"),
            expect_stdout_has_line(o, "  fifo type fifo"),
            expect_stdout_has_line(o, "getdents into 16 bytes: -1 Invalid argument"),
        ])
    });
}

#[test]
fn pidfds() {
    compare("pidfds", "pidfd", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "waitid: pid is the child's: yes, code CLD_KILLED, status 15"),
            expect_stdout_has_line(o, "reaped child: poll 0x11"),
            expect_stdout_has_line(o, "waitid on a nonblocking pidfd of a running child: -1 Resource temporarily unavailable"),
            expect_stdout_has_line(o, "read: via the child's fd"),
            expect_stdout_has_line(o, "exit status 7, pid matches: yes"),
            expect_stdout_has_line(o, "killed by signal 9"),
        ])
    });
}

#[test]
fn xattrs() {
    compare("xattrs", "xattr", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "get user.a: ALPHA!"),
            expect_stdout_has_line(o, "list: trusted.t user.a user.b"),
            expect_stdout_has_line(o, "lset user.x on the symlink: -1 Operation not permitted"),
        ])
    });
}

/// The xattrat calls (Linux 6.13) on tmpfs files: by dirfd and path, on a
/// symlink, by descriptor with AT_EMPTY_PATH; struct xattr_args's size rules,
/// the at-flags, and which error comes first (a name's length before the
/// lookup, its namespace after).
#[test]
fn xattrat() {
    compare("xattrat", "xattrat", &Spec::default(), expect_all_ok);
}

#[test]
fn sched_attrs() {
    compare("sched_attrs", "sched_attr", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "batch: getattr 0 size 56 policy 3 flags 0 nice 3 priority 0; getscheduler 3, getpriority 3, getparam 0"),
            expect_stdout_has_line(o, "size written back: 56"),
        ])
    });
}

/// Concurrent forks from several threads: no spurious SIGSEGV when one thread's
/// write faults while another's copy-on-write break is still on its way to the host.
#[test]
fn forks_from_many_threads() {
    compare("forks_from_many_threads", "thread_forks", &Spec::default(), |o| all([expect_status(o, 0), expect_stdout(o, "forks: 96\n")]));
}

#[test]
fn proc_io_accounting() {
    compare("proc_io_accounting", "proc_io", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "wchar +300, syscw +3"),
            expect_stdout_has_line(o, "after an exited thread's writes: wchar +100, syscw +2"),
            expect_stdout_has_line(o, "sendfile of 64 bytes: rchar +64 (less the snapshot read), wchar +64, syscr +2, syscw +1"),
        ])
    });
}

#[test]
fn kernel_log() {
    compare("kernel_log", "syslog", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "SIZE_BUFFER is positive: yes"), expect_stdout_has_line(o, "CONSOLE_LEVEL 9: Invalid argument")])
    });
}

#[test]
fn file_calls() {
    compare("file_calls", "filecalls", &Spec::default(), |o| all([expect_status(o, 0), expect_stdout_has_line(o, "size after fallocate: 8192"), expect_stdout_has_line(o, "sendfile to /dev/null = 5"), expect_stdout_has_line(o, "sync_file_range on a pipe = -1 ESPIPE")]));
}

/// Named FIFOs: mkfifo/mknod, the blocking open rendezvous, O_NONBLOCK rules, EINTR.
#[test]
fn fifos() {
    compare("fifos", "fifo", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "reader got: hello from child"),
            expect_stdout_has_line(o, "round 1 child status: 0"),
            expect_stdout_has_line(o, "write-only non-blocking, no reader: ENXIO"),
        ])
    });
}

/// open(O_TMPFILE) and naming the file later with linkat.
#[test]
fn tmpfile() {
    compare("tmpfile", "tmpfile", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "content by name: data"), expect_stdout_has_line(o, "O_EXCL open: ok, linkat: ENOENT")])
    });
}

/// splice, tee, vmsplice, and sendfile into a pipe.
#[test]
fn splice_and_tee() {
    compare("splice_and_tee", "splice", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "pipe holds the slice: yes"), expect_stdout_has_line(o, "original still there: teedata")])
    });
}

/// splice into a pipe with little or no room: only what fits leaves the source (a
/// file's position, a source pipe's data).
#[test]
fn splice_into_a_full_pipe() {
    compare("splice_into_a_full_pipe", "splice_partial", &Spec::default(), expect_all_ok);
}

/// memfd_create: read/write/truncate/mmap, its /proc/self/fd name, seals, fexecve.
#[test]
fn memfd() {
    compare("memfd", "memfd", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "fd link: /memfd:test (deleted)"),
            expect_stdout_has_line(o, "write after WRITE seal: EPERM"),
            expect_stdout_has_line(o, "exec'd from a memfd: yes"),
        ])
    });
}

#[test]
fn private_file_mappings() {
    compare("private_file_mappings", "mapfile", &Spec::default(), |o| all([expect_status(o, 0), expect_stdout_has_line(o, "the other mapping keeps the file's byte: yes"), expect_stdout_has_line(o, "MADV_DONTNEED brings back the file's bytes: yes"), expect_stdout_has_line(o, "and at the right offset after a split: yes"), expect_stdout_has_line(o, "read() into a private mapping: it changes, the file and other mappings do not: yes"), expect_stdout_has_line(o, "a child's read() into copy-on-write memory stays in the child: yes")]));
}

/// MAP_SHARED of tmpfs, shm, memfd and root-overlay files: one set of bytes with
/// the file, across fork and other opens; SIGBUS past the end; seals and modes.
/// inotify: events and their order on tmpfs and the root overlay, watch flags,
/// whole-event reads, blocking and signals, poll/select/epoll, FIONREAD, overflow.
#[test]
fn inotify() {
    compare("inotify", "inotify", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "var/tmp rename over a watched file: D MOVED_FROM b; D MOVED_TO a; O ATTRIB; F MOVE_SELF; O DELETE_SELF; O IGNORED"),
            expect_stdout_has_line(o, "overflow: 16385 events, 1 overflow, last is overflow 1"),
        ])
    });
}

#[test]
fn shared_file_mappings() {
    compare("shared_file_mappings", "shared_map", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "0 failures"), expect_stdout_has_line(o, "memfd: a forked child's store reaches the parent: ok")])
    });
}

/// Pseudo-terminals: devpts, termios and the line discipline, controlling
/// terminals and job control signals, hangup.
#[test]
fn pseudo_terminals() {
    compare("pseudo_terminals", "pty", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "0 failures"), expect_stdout_has_line(o, "^C kills the foreground group with SIGINT: ok")])
    });
}

/// lseek SEEK_DATA / SEEK_HOLE over a sparse tmpfs file.
#[test]
fn seek_data_and_holes() {
    compare("seek_data_and_holes", "seek_hole", &Spec::default(), |o| all([expect_status(o, 0), expect_stdout_has_line(o, "SEEK_HOLE from 8192: 12288 "), expect_stdout_has_line(o, "punched bytes read as zeros: yes")]));
}

/// An unlinked tmpfs file's pages are freed on its last close (the dentry cache
/// does not keep it).
#[test]
fn tmpfs_unlink_frees() {
    compare("tmpfs_unlink_frees", "tmpfs_unlink_frees", &Spec::default(), expect_all_ok);
}

/// AF_UNIX socket pairs: streams, datagrams and packets, readiness, shutdown.
#[test]
fn socket_pairs() {
    compare("socket_pairs", "socketpair", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "0 failures"), expect_stdout_has_line(o, "datagrams keep their boundaries: ok")])
    });
}

/// rename and renameat2 (NOREPLACE, EXCHANGE) on tmpfs and the root overlay.
#[test]
fn rename_and_exchange() {
    compare("rename_and_exchange", "rename", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "0 failures"), expect_stdout_has_line(o, "/var/tmp: EXCHANGE a file and a directory: ok")])
    });
}

/// openat2's RESOLVE_* flags, enforced while walking.
#[test]
fn openat2_resolve() {
    compare("openat2_resolve", "openat2", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "BENEATH keeps the walk inside: ok")])
    });
}

/// O_PATH heeds only O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC: O_DIRECTORY still
/// refuses a file (mv's probe of its target; gcc -flto=N's ltrans makefile moves
/// files with mv), O_CREAT and O_TRUNC do nothing, and openat2 refuses them.
#[test]
fn o_path_flags() {
    compare("o_path_flags", "o_path_flags", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "all ok")])
    });
}

/// Named AF_UNIX sockets: paths and abstract names, listen/connect/accept.
#[test]
fn unix_sockets() {
    compare("unix_sockets", "unix_socket", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "0 failures"), expect_stdout_has_line(o, "stream at a path: the client got the reply: ok")])
    });
}

/// AF_UNIX datagrams by name, connect and AF_UNSPEC, full queues, autobind,
/// SO_PASSCRED/SCM_CREDENTIALS (with SCM_RIGHTS) and SO_PEERCRED.
#[test]
fn unix_datagrams() {
    compare("unix_datagrams", "unix_dgram", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "path: recvfrom reports a bound sender's name: ok"),
            expect_stdout_has_line(o, "the name: length 8, starts with NUL, 5 hex digits: ok"),
            expect_stdout_has_line(o, "without CAP_SYS_ADMIN/SETUID/SETGID other ids are EPERM, one's own pass: ok"),
        ])
    });
}

/// Loopback TCP over AF_INET and AF_INET6: ephemeral ports and bind conflicts,
/// SO_REUSEADDR, connect/accept and names, refused and reset connections, EOF,
/// EPIPE, 1 MiB each way with a forked child, non-blocking accept and connect,
/// poll/epoll, FIONREAD, MSG_PEEK/WAITALL, options, ::1, dual stack, V6ONLY.
#[test]
fn inet_tcp() {
    compare("inet_tcp", "inet_tcp", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "1 MiB from a forked child: 1048576 bytes, checksum matches: yes"),
            expect_stdout_has_line(o, "close with unread data: the peer's recv is ECONNRESET: ok"),
            expect_stdout_has_line(o, "dual stack: the accepted peer is ::ffff:127.0.0.1 (AF_INET6: yes, length 28)"),
        ])
    });
}

/// TCP urgent data on loopback (tests/programs/tcp_oob.c): send(MSG_OOB)
/// marks its last byte, reads stop before the mark and skip the byte (unless
/// SO_OOBINLINE), recv(MSG_OOB) takes it or is EINVAL, new marks replace old
/// ones, SIOCATMARK, FIONREAD, POLLPRI, select's exceptfds, EPOLLPRI, SIGURG to
/// the F_SETOWN/F_SETOWN_EX owner, and MSG_OOB on UDP and AF_UNIX datagrams,
/// as natively.
#[test]
fn tcp_urgent_data() {
    compare("tcp_urgent_data", "tcp_oob", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(o, "recv 10 skips the urgent byte: 5 [world] (want 5 [world]): ok"),
            expect_stdout_has_line(o, "sigtimedwait: SIGURG si_code 0x80"),
            expect_stdout_has_line(o, "UDP recv MSG_OOB: -1 EAGAIN"),
        ])
    });
}

/// Out-of-band data on AF_UNIX streams (tests/programs/unix_oob.c), as
/// Linux 5.15+'s: send(MSG_OOB)'s last byte is the OOB byte, a newer one
/// makes it plain data; recv(MSG_OOB) takes it or is EINVAL; reads (read,
/// recv, MSG_PEEK, MSG_WAITALL, splice) stop at the mark, also where a taken
/// byte was, and skip the byte unless SO_OOBINLINE; SIOCATMARK, FIONREAD,
/// POLLIN/POLLPRI, select's exceptfds, EPOLLPRI, SIGURG to the owner; and
/// EOPNOTSUPP on seqpacket and datagram sockets, as natively.
#[test]
fn unix_oob_data() {
    compare("unix_oob_data", "unix_oob", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(o, "recv 10 passes the taken byte: 6 [hellwo] (want 6 [hellwo]): ok"),
            expect_stdout_has_line(o, "sigtimedwait: SIGURG si_code 0x80"),
            expect_stdout_has_line(o, "splice skips the OOB byte: ok"),
        ])
    });
}

/// Loopback UDP over AF_INET and AF_INET6: sender names and autobind, boundaries
/// and MSG_TRUNC, the largest datagrams, ports nobody has bound (ECONNREFUSED once
/// when connected), connected filtering and AF_UNSPEC, readiness, ::1, dual stack.
#[test]
fn inet_udp() {
    compare("inet_udp", "inet_udp", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "the sender's address is its name: ok"),
            expect_stdout_has_line(o, "AF_INET: 65508 bytes is EMSGSIZE: ok"),
            expect_stdout_has_line(o, "recv is ECONNREFUSED: ok"),
        ])
    });
}

/// NETLINK_SOCK_DIAG (tests/programs/sock_diag.c), as `ss` uses it: dumps of
/// the program's own TCP, UDP and AF_UNIX sockets by family, protocol and state
/// (listeners with their backlogs, connections and their peers, bytes unread,
/// TCP_INFO, IPV6_V6ONLY, bound-inactive TCP sockets, unix names, peers and
/// waiting connections), single sockets by address or inode and cookie, and
/// the errors of bad requests, as natively.
#[test]
fn sock_diag() {
    compare("sock_diag", "sock_diag", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "  tcp4 listener: inet LISTEN 127.0.0.1 port own peer none uid mine rqueue 1 wqueue 7 info state LISTEN"),
            expect_stdout_has_line(o, "  tcp4 accepted: inet ESTABLISHED 127.0.0.1 port own peer tcp4 client uid mine rqueue 5 wqueue 0 info state ESTABLISHED"),
            expect_stdout_has_line(o, "  udp6 x: inet6 ESTABLISHED ::1 port own peer udp6 y uid mine rqueue 0"),
            expect_stdout_has_line(o, "  unix listener: unix stream LISTEN name DIR/listener (nul yes) waiting 1 rqueue 1 backlog 5"),
            expect_stdout_has_line(o, "  unix dgram b: unix dgram ESTABLISHED peer unix dgram a rqueue 4 wqueue 0"),
            expect_stdout_has_line(o, "  unix dgram a: unix dgram ESTABLISHED peer unix dgram b rqueue 0 wqueue some"),
            expect_stdout_has_line(o, "with another cookie: ESTALE"),
            expect_stdout_has_line(o, "protocol 200: ENOENT"),
        ])
    });
}

/// send(2)'s MSG_MORE and MSG_EOR, and UDP_CORK (tests/programs/msg_more.c): a UDP
/// datagram built over sends and dropped whole when too big, stream bytes all
/// arriving, unix sockets ignoring both, MSG_OOB refused on UDP, as natively.
#[test]
fn msg_more_and_udp_cork() {
    compare("msg_more_and_udp_cork", "msg_more", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "a: [123456]"),
            expect_stdout_has_line(o, "uncorked, b: [ababab]"),
            expect_stdout_has_line(o, "big part 2: -1 Message too long"),
            expect_stdout_has_line(o, "tcp got: hello"),
        ])
    });
}

/// Netlink dumps read in parts (tests/programs/netlink_parts.c), as Linux's
/// netlink_dump hands them out: 300 AF_UNIX sockets and 100 TCP listeners dumped
/// over NETLINK_SOCK_DIAG with 4 KiB and 64 KiB buffers through recvmsg, recv,
/// read and recvfrom (several parts of whole messages, each socket once,
/// NLMSG_DONE last), MSG_PEEK and MSG_TRUNC, a 16-byte buffer's cut part, the
/// largest buffer remembered, EBUSY for a second dump, ENOBUFS when unread
/// replies overflow the receive buffer, and a NETLINK_ROUTE dump, as natively.
#[test]
fn netlink_dump_parts() {
    compare("netlink_dump_parts", "netlink_parts", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "unix, 4096-byte recvmsg: several parts: ok"),
            expect_stdout_has_line(o, "unix, 4096-byte recvmsg: each of the 300 sockets once: ok"),
            expect_stdout_has_line(o, "a second dump while the first is read: EBUSY"),
            expect_stdout_has_line(o, "flood, first receive: ENOBUFS"),
        ])
    });
}

/// IP-level control messages on loopback UDP (tests/programs/pktinfo.c): what a
/// receiver asks to learn of each datagram (IP_PKTINFO, IP_RECVTTL, IP_RECVTOS,
/// IP_RECVORIGDSTADDR and the IPv6 ones, a v4 datagram on a dual-stack socket,
/// the four SO_TIMESTAMP stamps and their flags),
/// what a sender sets for one datagram (source address, TTL, TOS, hop limit,
/// traffic class), the options' ranges, and the errors, as natively.
#[test]
fn ip_control_messages() {
    compare("ip_control_messages", "pktinfo", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "  IP_PKTINFO ifindex 1 spec_dst 127.0.0.5 addr 127.0.0.5 (len 12)"),
            expect_stdout_has_line(o, "v4 cmsg source: 1 bytes from 127.0.0.7, the client's port: yes, flags 0"),
            expect_stdout_has_line(o, "  IPV6_PKTINFO ifindex 1 addr ::ffff:127.0.0.1 (len 20)"),
            expect_stdout_has_line(o, "cmsg IPV6_PKTINFO from 2001:db8::1: EINVAL"),
            expect_stdout_has_line(o, "  SOL_SOCKET type 35 (len 16), within 10 s before now: yes"),
        ])
    });
}

/// The UDP error queue on loopback (tests/programs/errqueue.c): IP_RECVERR and
/// IPV6_RECVERR, connected and not, on and off; recvmsg(MSG_ERRQUEUE)'s EAGAIN,
/// the quoted payload (cut, MSG_TRUNC), the destination's name, the
/// sock_extended_err and its offender, MSG_ERRQUEUE in msg_flags; SO_ERROR,
/// POLLERR and the next send and recv; a v4-mapped peer; as natively.
#[test]
fn udp_error_queue() {
    compare("udp_error_queue", "errqueue", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "      ee_errno ECONNREFUSED origin 2 type 3 code 3 pad 0 info 0 data 0"),
            expect_stdout_has_line(o, "      ee_errno ECONNREFUSED origin 3 type 1 code 4 pad 0 info 0 data 0"),
            expect_stdout_has_line(o, "      offender inet6 ::1 port 0 flowinfo 0 scope 0"),
            expect_stdout_has_line(o, "      offender inet 127.0.0.3 port 0 zero yes"),
            expect_stdout_has_line(o, "  cut to 3: 3 bytes, the payload's: yes, flags 0x2020, controllen 64"),
            expect_stdout_has_line(o, "  first: 520 bytes, the payload's: yes, flags 0x2000, controllen 48"),
            expect_stdout_has_line(o, "  before: recvmsg -1 EAGAIN, recv -1 EAGAIN, recvfrom -1 EAGAIN"),
            expect_stdout_has_line(o, "  after the first: SO_ERROR ECONNREFUSED, poll POLLOUT|POLLERR"),
            expect_stdout_has_line(o, "  send meeting it: -1 ECONNREFUSED"),
        ])
    });
}

/// NUMA memory policies on one node (tests/programs/mempolicy.c): set_mempolicy's
/// modes and flags as get_mempolicy reports them, inherited by a child; mbind's
/// per-mapping policy, the splits and merges it makes; Linux's errors; and
/// protection keys as on a CPU without them, as natively.
#[test]
fn memory_policies() {
    compare("memory_policies", "mempolicy", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "after RELATIVE: mode 0x4003 nodes 0x2 0"),
            expect_stdout_has_line(o, "the child's: mode 0x2002 nodes 0x1 0"),
            expect_stdout_has_line(o, "page 1 (ADDR): mode 0x2 nodes 0x1 0"),
            expect_stdout_has_line(o, "mbind over a hole: EFAULT"),
        ])
    });
}

/// File leases and dnotify (tests/programs/leases.c): which leases are granted
/// and refused; a child's open (or truncate) breaking the parent's lease, with the
/// signal's si_fd, F_GETLEASE's target and /proc/locks' LEASE lines; O_NONBLOCK's
/// EWOULDBLOCK; F_NOTIFY's signals, one-shot and DN_MULTISHOT.
#[test]
fn leases_and_dnotify() {
    compare("leases_and_dnotify", "leases", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "lease on another's file without CAP_LEASE: EACCES"),
            expect_stdout_has_line(o, "writer's open: signal F_SETSIG's, si_code 3, si_band 0x441, si_fd is the lease's: 1"),
            expect_stdout_has_line(o, "F_GETLEASE while broken: F_UNLCK"),
            expect_stdout_has_line(o, "/proc/locks, breaking: LEASE BREAKING UNLCK"),
            expect_stdout_has_line(o, "/proc/locks, held: LEASE ACTIVE WRITE"),
            expect_stdout_has_line(o, "/proc/locks, a record lock: POSIX ADVISORY WRITE"),
            expect_stdout_has_line(o, "the writer's open: 0"),
            expect_stdout_has_line(o, "non-blocking writer's open: EAGAIN"),
            expect_stdout_has_line(o, "multishot delete: 1 signal(s), 0 SIGIO"),
            expect_stdout_has_line(o, "another create, the mark gone: 0 signal(s), 0 SIGIO"),
            expect_stdout_has_line(o, "a read, DN_ACCESS: SIGIO, si_code 0x80"),
        ])
    });
}

/// signalfd: records, readiness for poll and epoll, masks.
#[test]
fn signal_fds() {
    compare("signal_fds", "signalfd", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "0 failures"), expect_stdout_has_line(o, "SIGCHLD carries the child's pid and status: ok")])
    });
}

/// futex_waitv: EAGAIN and EINVAL cases, absolute deadlines, the index of the word a
/// FUTEX_WAKE woke (from a thread, and a shared word from a child), signals.
#[test]
fn futex_waitv() {
    compare("futex_waitv", "futex_waitv", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "absolute CLOCK_MONOTONIC deadline 20 ms ahead: -1 ETIMEDOUT"),
            expect_stdout_has_line(o, "futex_waitv returned 1"),
            expect_stdout_has_line(o, "waiting on a private word and a shared one, woken by a child: 1"),
            expect_stdout_has_line(o, "futex_waitv interrupted by a handler with SA_RESTART: 1 (wake: 1)"),
        ])
    });
}

/// The futex2 calls (futex_wake, futex_wait, futex_requeue): masks, the strict
/// count, deadlines, EINVAL and EAGAIN cases; futex(2)'s FUTEX_WAKE waking one for a
/// count of 0, private and unflagged keys kept apart, and FUTEX_WAKE_OP storing to
/// the caller's copy of a page a fork shares (it stored into the parent's).
#[test]
fn futex2() {
    compare("futex2", "futex2", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "futex_wake, nr 0: 0"),
            expect_stdout_has_line(o, "FUTEX_WAKE, count 0: 1"),
            expect_stdout_has_line(o, "futex_requeue, 1 woken and 1 moved: 2"),
            expect_stdout_has_line(o, "the parent's word after the child's FUTEX_WAKE_OP: 7"),
        ])
    });
}

/// process_madvise on a child through its pidfd: the hints one process may give
/// another, over several ranges, leave its memory alone; EINVAL, ENOMEM (or the
/// bytes before a gap), EFAULT, EBADF and ESRCH as Linux.
#[test]
fn process_madvise() {
    compare("process_madvise", "process_madvise", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "MADV_COLD over two ranges: 8192"),
            expect_stdout_has_line(o, "a mapped range, then an unmapped one: 4096"),
        ])
    });
}

/// kcmp: shared file descriptions (dup, fork), address spaces, descriptor tables,
/// file-system contexts and handlers of threads, forked and CLONE_VM children; a
/// consistent order; ESRCH, EINVAL, EBADF and EPERM.
#[test]
fn kcmp() {
    compare("kcmp", "kcmp", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "a CLONE_VM|CLONE_FS child: VM same, FILES different, FS same"),
            expect_stdout_has_line(o, "kcmp with another user's process: -1 EPERM"),
        ])
    });
}

/// Priority-inheritance futexes: the word protocol, the hand-over, timeouts and
/// errors through raw syscalls, then PTHREAD_PRIO_INHERIT mutexes (contention,
/// trylock, timed locks, robust ones whose owner thread or process exits).
#[test]
fn pi_futex() {
    compare("pi_futex", "pi_futex", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "LOCK_PI again: -1 EDEADLK"),
            expect_stdout_has_line(o, "UNLOCK_PI by a non-owner: -1 EPERM"),
            expect_stdout_has_line(o, "LOCK_PI on a word owned by no thread: -1 ESRCH"),
            expect_stdout_has_line(o, "LOCK_PI on a misaligned word: -1 EINVAL"),
            expect_stdout_has_line(o, "LOCK_PI on a word naming another than the kernel's owner: -1 EINVAL"),
            expect_stdout_has_line(o, "LOCK_PI2, CLOCK_MONOTONIC deadline 30 ms ahead: -1 ETIMEDOUT"),
            expect_stdout_has_line(o, "LOCK_PI waiting for the owner's unlock: 0"),
            expect_stdout_has_line(o, "LOCK_PI interrupted by a handler without SA_RESTART: 0 (handled: 1, owning the word: yes)"),
            expect_stdout_has_line(o, "4 threads, 3000 rounds each under a PI mutex: 12000"),
            expect_stdout_has_line(o, "pthread_mutex_timedlock, 40 ms: ETIMEDOUT"),
            expect_stdout_has_line(o, "locking a robust PI mutex whose owner exited, waiting: EOWNERDEAD"),
            expect_stdout_has_line(o, "locking a shared robust PI mutex whose owner process exited, waiting: EOWNERDEAD"),
        ])
    });
}

/// exec releases the robust futexes (plain and PI) the execing thread holds: the
/// waiting parent gets EOWNERDEAD while the new image still runs.
#[test]
fn robust_futexes_released_at_exec() {
    compare("robust_futexes_released_at_exec", "robust_exec", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(o, "plain robust mutex after the holder's exec: EOWNERDEAD: ok"),
            expect_stdout_has_line(o, "PI robust mutex after the holder's exec: EOWNERDEAD: ok"),
        ])
    });
}

/// capget/capset with Linux's rules (the harness runs as root, as CI does).
#[test]
fn capabilities() {
    compare("capabilities", "caps", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "0 failures"), expect_stdout_has_line(o, "raising a dropped capability is EPERM: ok")])
    });
}

/// setfsuid/setfsgid with Linux's rules: file checks, new files' owners and /proc
/// follow the fs ids, the file capabilities go and come back with fsuid 0.
#[test]
fn fs_ids() {
    compare("fs_ids", "fsuid", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "0 failures"), expect_stdout_has_line(o, "a new file is owned by the fsuid: ok")])
    });
}

/// UTS and IPC namespaces, /proc/PID/ns and setns (tests/programs/nsfs.c): a new
/// UTS namespace's own hostname, a new IPC namespace's own objects (gone with it),
/// setns into another process's UTS and mount namespaces, the errors, as natively.
#[test]
fn uts_and_ipc_namespaces_and_setns() {
    compare("uts_and_ipc_namespaces_and_setns", "nsfs", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "child's hostname: rvt-inner"),
            expect_stdout_has_line(o, "hostname after: rvt-proc, reads back: rvt-proc"),
            expect_stdout_has_line(o, "child shmget of the parent's key after: -1 ENOENT"),
            expect_stdout_has_line(o, "file in a's mounts after: yes"),
        ])
    });
}

/// The new mount API (tests/programs/mount_api.c): fsopen, fsconfig (the
/// context's phases and messages), fsmount, move_mount of a detached tree and
/// of an attached mount, open_tree's clones read before they are attached,
/// mount_setattr (recursive too, nosymfollow), fspick's reconfigure, locked
/// mounts in a user namespace, Landlock's refusals, the errors and EPERM
/// without CAP_SYS_ADMIN, as natively (in a private mount namespace there).
#[test]
fn mount_api() {
    compare("mount_api", "mount_api", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "its message: [e tmpfs: Unknown parameter 'bogus'"),
            expect_stdout_has_line(o, "read it back detached: [made detached]"),
            expect_stdout_has_line(o, "a/pre: [made detached]"),
            expect_stdout_has_line(o, "c/sub/deep: [deep]"),
            expect_stdout_has_line(o, "write on it: -1 EROFS"),
            expect_stdout_has_line(o, "write after the read-only reconfigure: -1 EROFS"),
            expect_stdout_has_line(o, "set after create: -1 EBUSY"),
            expect_stdout_has_line(o, "follow a/link: -1 ELOOP"),
            expect_stdout_has_line(o, "in a user namespace, clear read-only: -1 EPERM"),
            expect_stdout_has_line(o, "clone c without its submount: -1 EINVAL"),
            expect_stdout_has_line(o, "landlocked move_mount: -1 EPERM"),
            expect_stdout_has_line(o, "mount_setattr without CAP_SYS_ADMIN: -1 EPERM"),
        ])
    });
}

/// User namespaces (tests/programs/userns.c): ids through the maps written to
/// /proc/PID/uid_map and gid_map (and the rules for writing them), capabilities
/// over mapped files and owned namespaces only, exec and setuid inside, setns
/// in by the owner, mounts locked against a less privileged namespace, and the
/// errors (threads, CLONE_FS, a chroot, 33 levels), as natively.
#[test]
fn user_namespaces() {
    compare("user_namespaces", "userns", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "after the maps: uid 0 euid 0 gid 0 egid 0 caps all"),
            expect_stdout_has_line(o, "other-file owned by 65534:65534"),
            expect_stdout_has_line(o, "open a 0600 file of an unmapped owner: -1 EACCES"),
            expect_stdout_has_line(o, "mount in the parent's mount namespace: -1 EPERM"),
            expect_stdout_has_line(o, "mount in its own: 0 "),
            expect_stdout_has_line(o, "after exec: uid 0 euid 0 gid 0 egid 0 caps all"),
            expect_stdout_has_line(o, "child after setuid 5: uid 5 euid 5 gid 0 egid 0 caps none"),
            expect_stdout_has_line(o, "made-by-5 owned by 100005:0"),
            expect_stdout_has_line(o, "mapped: uid 0 euid 0 gid 0 egid 0 caps all"),
            expect_stdout_has_line(o, "shmget of root's 0600 segment for reading: -1 EACCES"),
            expect_stdout_has_line(o, "remount it read-write: -1 EPERM"),
            expect_stdout_has_line(o, "remount the bind read-write: -1 EPERM"),
            expect_stdout_has_line(o, "unmount it: -1 EINVAL"),
            expect_stdout_has_line(o, "nested 33 deep, then ENOSPC"),
        ])
    });
}

/// PID namespaces (tests/programs/pidns.c): a new one's init is PID 1 with no
/// parent, its /proc lists it alone, the enclosing /proc shows both ids, its
/// init ignores unhandled signals from inside and takes the namespace with it
/// when it ends (no process joins after: ENOMEM); clone(CLONE_NEWPID) with a
/// tracer inside told its tracee's new child by its own id, setns for the
/// children to come, 32 levels; as natively.
#[test]
fn pid_namespaces() {
    compare("pid_namespaces", "pidns", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "init getpid: 1 "),
            expect_stdout_has_line(o, "shm_cpid: 1 "),
            expect_stdout_has_line(o, "GETPID of a semaphore: 1 "),
            expect_stdout_has_line(o, "grandchild getpid 2 getppid 1"),
            expect_stdout_has_line(o, "waitid si_pid 2 si_status 7"),
            expect_stdout_has_line(o, "/proc lists: 1 3"),
            expect_stdout_has_line(o, "init survived them"),
            expect_stdout_has_line(o, "init's NSpid outside is its two ids: yes"),
            expect_stdout_has_line(o, "the last one after the init: -1 ESRCH"),
            expect_stdout_has_line(o, "fork into the ended namespace: -1 ENOMEM"),
            expect_stdout_has_line(o, "its child's pid there: 2"),
            expect_stdout_has_line(o, "fork event of tracee 2: new child 3"),
            expect_stdout_has_line(o, "nested 32 deep, then ENOSPC"),
        ])
    });
}

/// Network namespaces (tests/programs/netns.c): a new one has loopback alone
/// (brought up by netlink or ioctl), its own ports and abstract socket names,
/// /proc/net of its own, setns back, and the EPERMs, as natively.
#[test]
fn network_namespaces() {
    compare("network_namespaces", "netns", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "connect to the parent's port: -1 ECONNREFUSED"),
            expect_stdout_has_line(o, "its own listener got: ping"),
            expect_stdout_has_line(o, "connect to the parent's port after: 0 "),
        ])
    });
}

/// File permission checks as Linux makes them (the harness runs as root): children
/// that drop to uid 1000 (with a supplementary group), keep euid 0 with real uid 1000,
/// or keep uid 0 without CAP_DAC_* (as a container's root) try opens, creations,
/// removals (sticky directories too), walks, execve, chmod/chown, utimensat, truncate
/// and access; every answer must be the host's.
#[test]
fn file_permissions() {
    compare("file_permissions", "permissions", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "open secret O_RDONLY: EACCES"),
            expect_stdout_has_line(o, "open grp O_RDONLY (supplementary group): ok"),
            expect_stdout_has_line(o, "unlink sticky/theirs: EPERM"),
            expect_stdout_has_line(o, "stat private/f: EACCES"),
            expect_stdout_has_line(o, "execve noexec: EACCES"),
            expect_stdout_has_line(o, "root without CAP_DAC_*: open u600 O_RDONLY: EACCES"),
            expect_stdout_has_line(o, "the tree is removed: ok"),
        ])
    });
}

/// seccomp(2), as programs that sandbox themselves use it: errno, trap, kill-thread and
/// kill-process filters, the strictest of several winning, inheritance across fork,
/// threads (TSYNC) and exec, strict mode, and the checks that refuse bad filters.
#[test]
fn seccomp_filters() {
    compare("seccomp_filters", "seccomp", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "getppid: -1 EPERM"),
            expect_stdout_has_line(o, "after exec, getppid: -1 E2BIG; PR_GET_SECCOMP 2"),
            expect_stdout_has_line(o, "getppid returned 4242; SIGSYS: nr getppid, si_code 1 (SYS_SECCOMP), si_errno 77, arch x86-64 1, rax the syscall number, call address set 1"),
            expect_stdout_has_line(o, "KILL_PROCESS: killed by signal 31"),
            expect_stdout_has_line(o, "the other thread died, this one goes on: yes"),
            expect_stdout_has_line(o, "TSYNC: the other thread's getppid: -1 EACCES"),
            expect_stdout_has_line(o, "strict: killed by signal 9"),
            expect_stdout_has_line(o, "scratch word loaded before any store: -1 EINVAL"),
            expect_stdout_has_line(o, "dup(100 + 2^32): -1 EMFILE"),
            expect_stdout_has_line(o, "all ok"),
        ])
    });
}

/// A zombie's /proc/PID/status keeps its leader's seccomp mode and filter count (no
/// filter, two filters, strict mode), compared with Linux, though the filters go at exit;
/// one its filter or strict mode killed shows SECCOMP_MODE_DEAD (3), filters still counted.
#[test]
fn seccomp_zombie_status() {
    compare("seccomp_zombie_status", "seccomp_zombie", &Spec::default(), |o| {
        all([expect_all_ok(o), expect_stdout_has_line(o, "two filters, zombie: Seccomp 2, Seccomp_filters 2"), expect_stdout_has_line(o, "killed by its filter, zombie: Seccomp 3, Seccomp_filters 2")])
    });
}

/// seccomp user notification: a supervisor receives a child's trapped calls on the
/// filter's listener and answers them (a value, an error, CONTINUE, ADDFD); poll and
/// epoll; POLLHUP once the child is gone; ENOSYS once the listener is closed; a signal
/// withdraws a call (re-notified after SA_RESTART); one listener per chain.
#[test]
fn seccomp_user_notification() {
    compare("seccomp_user_notification", "seccomp_notify", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "GET_NOTIF_SIZES: 0: notif 80, resp 24, data 64"),
            expect_stdout_has_line(o, "listener: anon_inode:seccomp notify"),
            expect_stdout_has_line(o, "getppid: RECV 0, call getppid, pid is the child's 1, flags 0, arch x86-64 1, ip set 1"),
            expect_stdout_has_line(o, "after RECV, poll says POLLOUT "),
            expect_stdout_has_line(o, "child: getppid answered 4242"),
            expect_stdout_has_line(o, "ID_VALID after the answer: -1 ENOENT"),
            expect_stdout_has_line(o, "SEND before RECV: -1 EINPROGRESS"),
            expect_stdout_has_line(o, "child: mkdir answered -1 EPERM"),
            expect_stdout_has_line(o, "child: continued getppid is the parent: yes"),
            expect_stdout_has_line(o, "child: openat answered with a descriptor that reads \"helloworld\", close-on-exec 1"),
            expect_stdout_has_line(o, "child: mkdir answered 0; fd 100 close-on-exec 1, reads \"setfd\""),
            expect_stdout_has_line(o, "child exited 0; poll says POLLHUP "),
            expect_stdout_has_line(o, "child: getppid once the listener closed: -1 ENOSYS"),
            expect_stdout_has_line(o, "epoll: 1 ready, EPOLLIN 1, data 7"),
            expect_stdout_has_line(o, "restarted call has a new id: yes"),
            expect_stdout_has_line(o, "child: getppid after a signal with SA_RESTART: 7, handler ran 1"),
            expect_stdout_has_line(o, "child: mkdir after a signal without SA_RESTART: -1 EINTR, handler ran 2"),
            expect_stdout_has_line(o, "child: WAIT_KILLABLE_RECV: getppid after a signal: 5"),
            expect_stdout_has_line(o, "second listener: -1 EBUSY"),
            expect_stdout_has_line(o, "RECV into a buffer that is not zeroed: -1 EINVAL"),
            expect_stdout_has_line(o, "SEND to an unknown id: -1 ENOENT"),
            expect_stdout_has_line(o, "all ok"),
        ])
    });
}

/// userfaultfd: a handler thread resolves another thread's missing pages of a
/// registered range (UFFDIO_COPY, ZEROPAGE, WAKE to fault again), MADV_DONTNEED
/// makes a page missing again, a syscall's own access (read(2) into a missing
/// page, write(2) from one) waits too, a signal ends a wait and the fault comes back
/// after the handler, a forked child's memory is its own, unregistering or
/// closing the descriptor makes the range ordinary memory; the handshake and
/// the errors, as natively.
#[test]
fn userfaultfd_missing_pages() {
    compare("userfaultfd_missing_pages", "userfaultfd", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "fault: event 0x12, page 0, write flag 0, thread id set 1"),
            expect_stdout_has_line(o, "  copied 4096"),
            expect_stdout_has_line(o, "UFFDIO_COPY onto a page that is there: -1 EEXIST"),
            expect_stdout_has_line(o, "faulted again after the wake: 1"),
            expect_stdout_has_line(o, "after MADV_DONTNEED, fault on page 0"),
            expect_stdout_has_line(o, "faulted again after a signal: 1, handler ran 1"),
            expect_stdout_has_line(o, "the child reads page 6: 0"),
            expect_stdout_has_line(o, "read(2) into a missing page: fault on page 4, write flag 1"),
            expect_stdout_has_line(o, "  it read 5 bytes: \"hello\", then 'A'"),
            expect_stdout_has_line(o, "  it wrote 3 bytes: \"CCC\""),
            expect_stdout_has_line(o, "SIGTERM ends a syscall's wait for a page: killed by 15"),
            expect_stdout_has_line(o, "after the close, the faulting thread read 0"),
            expect_stdout_has_line(o, "exact address: offset 123"),
        ])
    });
}

/// More of prctl: ambient capabilities (kept by exec for a process that is not
/// root, bounded by the permitted and inheritable sets, gone with root), MDWE
/// (no writable and executable memory; inherited unless NO_INHERIT, kept by
/// exec), syscall user dispatch (SIGSYS for a thread's calls from outside, or
/// inside, a region while the selector says BLOCK; not inherited; a bad
/// selector kills), timer slack, the tid address, THP, the auxiliary vector.
#[test]
fn prctl_capabilities_mdwe_and_dispatch() {
    compare("prctl_capabilities_mdwe_and_dispatch", "prctl_more", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "after exec as uid 1000: CapEff 400 CapPrm 400 CapAmb 400"),
            expect_stdout_has_line(o, "after it: CapAmb 0, CapPrm kept 1"),
            expect_stdout_has_line(o, "map RWX: -1 EACCES"),
            expect_stdout_has_line(o, "mprotect R to RX again: -1 EACCES"),
            expect_stdout_has_line(o, "MDWE after exec: 1 "),
            expect_stdout_has_line(o, "blocked getppid: 42, si_code 2, nr 110, from outside the stub 1"),
            expect_stdout_has_line(o, "the stub's blocked getppid: 42"),
            expect_stdout_has_line(o, "the child's getppid is real: 1"),
            expect_stdout_has_line(o, "a selector of 7 kills with signal 31"),
            expect_stdout_has_line(o, "auxv: ends with AT_NULL 1, AT_PAGESZ 4096, getauxval agrees 1"),
        ])
    });
}

/// The pidfs ioctls service managers use: PIDFD_GET_INFO (ids as the caller
/// sees them, credentials, the exit status once reaped, extensible struct
/// sizes) and PIDFD_GET_*_NAMESPACE (the same namespaces /proc/PID/ns names),
/// with their errors, as natively.
#[test]
fn pidfd_info_and_namespaces() {
    compare("pidfd_info_and_namespaces", "pidfd_info", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "  uids 1000 1001 1002 fsuid 1001, gids 10 11 12 fsgid 11"),
            expect_stdout_has_line(o, "  zeros past ours 1"),
            expect_stdout_has_line(o, "uts namespace: same as /proc 1, close-on-exec 1"),
            expect_stdout_has_line(o, "mnt namespace: same as /proc 1, close-on-exec 1"),
            expect_stdout_has_line(o, "PIDFD_GET_INFO once reaped: -1 ESRCH"),
            expect_stdout_has_line(o, "  mask exit only 1, exit code 0x700"),
        ])
    });
}

/// mseal: sealed mappings are not unmapped, mapped over, moved or protected
/// anew, and sealed read-only private anonymous memory is not discarded
/// (writable memory is); neighbours and holes, fork, and the errors, as natively.
#[test]
fn mseal_sealed_mappings() {
    compare("mseal_sealed_mappings", "mseal", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "munmap page 1: -1 EPERM"),
            expect_stdout_has_line(o, "munmap page 0: 0 "),
            expect_stdout_has_line(o, "mprotect page 2: -1 EPERM"),
            expect_stdout_has_line(o, "map over page 2: -1 EPERM"),
            expect_stdout_has_line(o, "mremap page 1: -1 EPERM"),
            expect_stdout_has_line(o, "MADV_DONTNEED on it: -1 EPERM"),
            expect_stdout_has_line(o, "seal over a hole: -1 ENOMEM"),
            expect_stdout_has_line(o, "the child unmaps a sealed page: -1 EPERM"),
        ])
    });
}

/// Who may signal whom: the sender's real or effective uid must be the
/// target's real or saved one (or CAP_KILL; SIGCONT within a session), for
/// kill, tgkill, sigqueue and pidfd_send_signal alike; kill(-1) skips the
/// others, a process group of them is EPERM, as natively.
#[test]
fn kill_permissions() {
    compare("kill_permissions", "kill_permission", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "uid 1000 signals 2000's: -1 EPERM"),
            expect_stdout_has_line(o, "pidfd_send_signal to 2000's: -1 EPERM"),
            expect_stdout_has_line(o, "SIGCONT within the session: 0 "),
            expect_stdout_has_line(o, "kill -1: 0 "),
            expect_stdout_has_line(o, "a group of 2000's: -1 EPERM"),
            expect_stdout_has_line(o, "euid 2000 asks about 2000's: 0 "),
        ])
    });
}

/// Landlock, as programs that sandbox themselves use it (AI agents' shells,
/// build tools): the ruleset calls and their errors, file rights beneath
/// directories for each kind of access, moving files between directories
/// (EXDEV when one would gain rights, or without FS_REFER), stacked layers, TCP
/// ports, scoped signals and abstract sockets, tracing, device ioctls, mounts,
/// a restriction being the calling thread's, and exec, as natively.
#[test]
fn landlock_self_restriction() {
    compare("landlock_self_restriction", "landlock", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "layers: 16, then E2BIG"),
            expect_stdout_has_line(o, "read ro/f: 0 "),
            expect_stdout_has_line(o, "write ro/f: -1 EACCES"),
            expect_stdout_has_line(o, "create in ro: -1 EACCES"),
            expect_stdout_has_line(o, "O_TRUNC ro/f: -1 EACCES"),
            expect_stdout_has_line(o, "rename rw to rw2: -1 EXDEV"),
            expect_stdout_has_line(o, "rw to rw2 gains execute: -1 EXDEV"),
            expect_stdout_has_line(o, "rw2 to rw loses it: 0 "),
            expect_stdout_has_line(o, "mount a tmpfs: -1 EPERM"),
            expect_stdout_has_line(o, "connect 5556: -1 EACCES"),
            expect_stdout_has_line(o, "connect to an outsider's abstract socket: -1 EPERM"),
            expect_stdout_has_line(o, "signal an outsider: -1 EPERM"),
            expect_stdout_has_line(o, "trace an outsider: -1 EPERM"),
            expect_stdout_has_line(o, "FIONREAD on /dev/null: -1 EACCES"),
            expect_stdout_has_line(o, "the other thread reads none/f: 0 "),
            expect_stdout_has_line(o, "after exec: write rw/p: -1 EACCES"),
            expect_stdout_has_line(o, "exec: -1 EACCES"),
        ])
    });
}

/// madvise: MADV_DONTFORK leaves a forked child a hole, MADV_WIPEONFORK gives it zeros
/// (DOFORK and KEEPONFORK undo them); wiping shared memory is EINVAL, advice over a hole
/// ENOMEM.
#[test]
fn madvise_fork_advice() {
    compare("madvise_fork_advice", "madvise", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "page 1 wiped: the child sees A0CD"),
            expect_stdout_has_line(o, "pages 2-3 not copied: the child sees AB--"),
            expect_stdout_has_line(o, "page 3 copied again: the child sees AB-D"),
            expect_stdout_has_line(o, "WIPEONFORK on a shared mapping: EINVAL"),
            expect_stdout_has_line(o, "NORMAL over a hole: ENOMEM"),
            expect_stdout_has_line(o, "DONTNEED page 0: 0, reads 0"),
            expect_stdout_has_line(o, "all ok"),
        ])
    });
}

/// sethostname and setdomainname rename the sandbox, never the host: uname,
/// gethostname, /proc/sys/kernel and children see the new names; 64 bytes at most;
/// CAP_SYS_ADMIN needed. Sandbox only: natively it would rename the host.
#[test]
fn uts_names_are_the_sandbox_own() {
    matrix("uts_names_are_the_sandbox_own", &[Link::Static], |v| {
        let host_before = nix::unistd::gethostname().map_err(|e| e.to_string())?;
        let o = run_sandbox(v.platform, &compile("uts", v.link), &Spec::default());
        let host_after = nix::unistd::gethostname().map_err(|e| e.to_string())?;
        all([
            expect_status(&o, 0),
            expect_stdout(
                &o,
                "sethostname: 0\nsetdomainname: 0\nuname: nodename rvisor-uts-test, domainname example.org\n\
                 gethostname: rvisor-uts-test\n/proc/sys/kernel/hostname: rvisor-uts-test\n\
                 /proc/sys/kernel/domainname: example.org\n65 bytes: EINVAL\n64 bytes: 0\n\
                 uname nodename length 64\nbad pointer: EFAULT\na child sees rvisor-uts-test\n\
                 without CAP_SYS_ADMIN: EPERM\nstill rvisor-uts-test\n",
            ),
            if host_before == host_after { Ok(()) } else { Err(format!("the host was renamed: {host_before:?} -> {host_after:?}")) },
        ])
    });
}

/// System V shared memory: keys and IPC_PRIVATE, attachments shared across fork, a
/// second attachment of the same memory, read-only attachments, the attachment count
/// (an exited child's attachments gone by the time its parent reaps it), removal while
/// attached, permissions and the errors.
#[test]
fn sysv_shared_memory() {
    compare("sysv_shared_memory", "shm", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "the parent reads \"written by the child\""),
            expect_stdout_has_line(o, "second attachment: ok, another address 1, same memory 1"),
            expect_stdout_has_line(o, "read-only: child killed by signal 11"),
            expect_stdout_has_line(o, "after the child's exit: size 10000, nattch 1, mode 600, creator is us 1, key 0"),
            expect_stdout_has_line(o, "IPC_CREAT|IPC_EXCL: EEXIST"),
            expect_stdout_has_line(o, "another user attaches: EACCES"),
            expect_stdout_has_line(o, "removed, still attached: size 10000, nattch 1, mode 1600, creator is us 1, key 0"),
            expect_stdout_has_line(o, "after the last detach: IPC_STAT EINVAL"),
            expect_stdout_has_line(o, "all ok"),
        ])
    });
}

/// System V semaphores: values, semop's all-or-nothing operations, sleepers woken by
/// another process, by a timeout (EAGAIN), a signal (EINTR despite SA_RESTART) or the
/// set's removal (EIDRM), SEM_UNDO at exit, permissions and the errors.
#[test]
fn sysv_semaphores() {
    compare("sysv_semaphores", "sem", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "GETVAL: 5"),
            expect_stdout_has_line(o, "nothing applied: 0 2 3"),
            expect_stdout_has_line(o, "the child got it: exit 0"),
            expect_stdout_has_line(o, "the child saw zero: exit 0"),
            expect_stdout_has_line(o, "semtimedop, 10 ms: EAGAIN"),
            expect_stdout_has_line(o, "a signal interrupts semop even with SA_RESTART: exit 0"),
            expect_stdout_has_line(o, "undone at its exit: GETVAL 0"),
            expect_stdout_has_line(o, "the key is free again: ENOENT"),
            expect_stdout_has_line(o, "the sleeper got EIDRM: exit 0"),
            expect_stdout_has_line(o, "all ok"),
        ])
    });
}

/// System V message queues: selection by type (first, exact, MSG_EXCEPT, lowest up
/// to), truncation and E2BIG, MSG_COPY, a full queue blocking its sender, receivers
/// woken by a sender or by the queue's removal (EIDRM), permissions and the errors.
#[test]
fn sysv_message_queues() {
    compare("sysv_message_queues", "msg", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "lowest type up to 5: type 1, 4 bytes, \"one\""),
            expect_stdout_has_line(o, "not type 1 (MSG_EXCEPT): type 5, 5 bytes, \"five\""),
            expect_stdout_has_line(o, "too small a buffer: E2BIG"),
            expect_stdout_has_line(o, "the sleeping receiver got its message: exit 0"),
            expect_stdout_has_line(o, "10 more, IPC_NOWAIT: EAGAIN"),
            expect_stdout_has_line(o, "the blocked sender went on: exit 0"),
            expect_stdout_has_line(o, "the sleeping receiver got EIDRM: exit 0"),
            expect_stdout_has_line(o, "all ok"),
        ])
    });
}

/// process_vm_readv and process_vm_writev: scattered buffers on both sides, a transfer
/// cut short at an unreadable page, permissions and the errors.
#[test]
fn process_vm_read_and_write() {
    compare("process_vm_read_and_write", "process_vm", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "readv: 38, \"the child'\" + \"s first wordsand its second\""),
            expect_stdout_has_line(o, "readv across an unreadable page: 8, \"tailtail\""),
            expect_stdout_has_line(o, "the child now has: \"WRITTENBd's first words\" / \"Y THE PARENT\""),
            expect_stdout_has_line(o, "another user: EPERM"),
            expect_stdout_has_line(o, "all ok"),
        ])
    });
}

/// membarrier: QUERY, registration before PRIVATE_EXPEDITED (EPERM without), the global
/// commands, and the errors.
#[test]
fn membarrier_commands() {
    compare("membarrier_commands", "membarrier", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "QUERY has the basic commands: 1"),
            expect_stdout_has_line(o, "PRIVATE_EXPEDITED unregistered: EPERM"),
            expect_stdout_has_line(o, "PRIVATE_EXPEDITED: 0"),
            expect_stdout_has_line(o, "GLOBAL_EXPEDITED: 0"),
        ])
    });
}

/// POSIX message queues: attributes, priority order, sizes (EMSGSIZE), a full queue
/// (ETIMEDOUT, O_NONBLOCK's EAGAIN), a receiver woken by another process, poll
/// readiness, mq_notify's SIGEV_SIGNAL (and EBUSY for a second process), names,
/// modes and permissions.
#[test]
fn posix_message_queues() {
    compare("posix_message_queues", "mqueue", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "default attributes: flags 0, maxmsg 10, msgsize 8192, curmsgs 0"),
            expect_stdout_has_line(o, "second: \"high again\" priority 9"),
            expect_stdout_has_line(o, "full: readable 1, writable 0"),
            expect_stdout_has_line(o, "send to a full queue, 10 ms: ETIMEDOUT"),
            expect_stdout_has_line(o, "the child's message: \"from the child\" priority 3"),
            expect_stdout_has_line(o, "notified 1, si_code SI_MESGQ 1, value 42"),
            expect_stdout_has_line(o, "another user opens a 0600 queue: EACCES 1"),
            expect_stdout_has_line(o, "read on the descriptor: 60 \"QSIZE:5          NOTIFY:0     SIGNO:0     NOTIFY_PID:0     "),
            expect_stdout_has_line(o, "all ok"),
        ])
    });
}

/// Native AIO (io_setup, io_submit, io_getevents, io_pgetevents, io_cancel,
/// io_destroy) through raw syscalls: the ring at the context's address, reads,
/// writes and fsyncs with their events, which failures fail a submission (a
/// partial one too), min_nr, timeouts and signals, IOCB_FLAG_RESFD's eventfd,
/// and a forked child without its parent's contexts.
#[test]
fn native_aio() {
    compare("native_aio", "aio", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "io_setup past aio-max-nr: -1 EAGAIN"),
            expect_stdout_has_line(o, "ring readable: head 0, tail 0, header_length 32, incompat_features 0"),
            expect_stdout_has_line(o, "maps names the ring /[aio] (deleted): yes"),
            expect_stdout_has_line(o, "  read \"orld\" \"-ab-\""),
            expect_stdout_has_line(o, "  event data 13, obj is the iocb: yes, res 0, res2 0"),
            expect_stdout_has_line(o, "pread on a write-only descriptor: -1 EBADF"),
            expect_stdout_has_line(o, "submit good, bad, good: 1"),
            expect_stdout_has_line(o, "io_getevents min 2, 20 ms, one queued: 1"),
            expect_stdout_has_line(o, "io_getevents interrupted by SIGALRM (SA_RESTART): -1 EINTR"),
            expect_stdout_has_line(o, "  eventfd count 2"),
            expect_stdout_has_line(o, "child: io_getevents on the parent's context: -1 EINVAL"),
            expect_stdout_has_line(o, "ring mapped after io_destroy (msync): -1 ENOMEM"),
            expect_stdout_has_line(o, "aio-nr back: yes"),
            expect_stdout_has_line(o, "done"),
        ])
    });
}

/// ptrace(2) from the tracer's side, compared with Linux: traceme, attach and seize,
/// registers and memory, syscall and signal stops, exec and exit events, interrupts,
/// single steps, kills and the errors.
#[test]
fn ptrace_requests() {
    compare("ptrace_requests", "ptrace", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "the child saw the changed result, the skipped call's and the poked word: ok"),
            expect_stdout_has_line(o, "its read restarted and got the byte: ok"),
        ])
    });
}

/// Group stops of traced processes, compared with Linux: a seized tracee's
/// group stop is a PTRACE_EVENT_STOP with the stop signal, and so is a
/// PTRACE_INTERRUPT's stop while the group stays stopped (SIGTRAP once a SIGCONT
/// came, which stops a seized tracee too); PTRACE_LISTEN until an interrupt or a
/// SIGCONT; the siginfo of each kind of stop; waitid's si_status of a traced
/// stop; DETACH of a running tracee; SEIZE of a stopped process; and the group
/// The tracer's SIGCHLD for its seized tracee's stops: CLD_STOPPED for
/// PTRACE_INTERRUPT's (status 0 before any group stop) and the group stop's,
/// CLD_TRAPPED for a signal-delivery stop, and CLD_CONTINUED, first, for the
/// SIGCONT that ends a PTRACE_LISTEN (before the trap that follows).
#[test]
fn ptrace_sigchld() {
    compare("ptrace_sigchld", "ptrace_sigchld", &Spec::default(), expect_all_ok);
}

/// A tracer that is not the tracee's parent is told of the end of its group
/// stop too (tests/programs/ptrace_cld_continued.c).
#[test]
fn ptrace_cld_continued_to_a_tracer_not_the_parent() {
    compare("ptrace_cld_continued_to_a_tracer_not_the_parent", "ptrace_cld_continued", &Spec::default(), expect_all_ok);
}

/// CLD_CONTINUED reaches the parent when the continued child next runs, not
/// when SIGCONT is sent: a traced child held in its group stop tells its
/// parent only once its tracer resumes it (tests/programs/cld_continued_deferred.c).
#[test]
fn cld_continued_when_the_child_runs_again() {
    compare("cld_continued_when_the_child_runs_again", "cld_continued_deferred", &Spec::default(), |o| {
        all([expect_all_ok(o), expect_stdout_has_line(o, "after SIGCONT: SIGCHLD not pending"), expect_stdout_has_line(o, "after the resume: SIGCHLD CLD_CONTINUED status CONT")])
    });
}

/// stop as the parent sees it when another process traces the child.
#[test]
fn ptrace_group_stop() {
    compare("ptrace_group_stop", "ptrace_group_stop", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(o, "the interrupt's stop after PTRACE_CONT: stopped STOP event 128"),
            expect_stdout_has_line(o, "PTRACE_INTERRUPT of the running tracee: stopped STOP event 128"),
            expect_stdout_has_line(o, "SIGCONT while listening: stopped TRAP event 128"),
            expect_stdout_has_line(o, "the group stop: GETSIGINFO EINVAL"),
            expect_stdout_has_line(o, "parent: waitpid(WUNTRACED): stopped STOP event 0"),
        ])
    });
}

/// A traced process's exit, compared with Linux: a tracer that is not the parent gets
/// SIGCHLD and reaps it first, the parent's wait not seeing it meanwhile; the parent
/// hears of it and reaps it after, or once the tracer exited; a parent that traces its
/// clone child reaps it without __WCLONE, and one that ignores SIGCHLD still reaps it.
#[test]
fn ptrace_exit_notify() {
    compare("ptrace_exit_notify", "ptrace_exit", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(o, "tracer reaps: parent's waitpid(WNOHANG) while the tracer holds the zombie: 0"),
            expect_stdout_has_line(o, "tracer exits: parent's SIGCHLD after the release: yes, si_code CLD_EXITED, si_status 9, from the child yes"),
            expect_stdout_has_line(o, "clone child: waitpid(0): the child, exited 5"),
        ])
    });
}

/// A traced thread other than the leader stays a zombie when it exits: its tracer's
/// waitpid(tid, __WALL) reaps it (with the group's exit status once the leader is
/// gone too), /proc shows it as Z under task/, and the parent hears of the process
/// only after the reap, or after the tracer exits without reaping it.
#[test]
fn ptrace_thread_zombie() {
    compare("ptrace_thread_zombie", "ptrace_thread_zombie", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(o, "parent traces: parent's wait before the thread is reaped: 0, pid none"),
            expect_stdout_has_line(o, "parent traces: the tracer's waitpid(tid, __WALL): the thread, exited 3"),
            expect_stdout_has_line(o, "tracer exits: the new parent's waitpid: the child, exited 4"),
        ])
    });
}

/// An exec from a thread of a traced process (Linux's de_thread): the others leave
/// their stops, report PTRACE_EVENT_EXIT and exit with 0; the exec waits for a traced
/// thread's zombie until its tracer reaps it and for the old leader until it is a
/// zombie, then reports PTRACE_EVENT_EXEC under the leader's id with its former id as
/// the message; the old id is gone. A traced leader that exits first tells its tracer
/// at once and again with its group; a reaped thread's usage is its process's.
#[test]
fn ptrace_exec_threads() {
    compare("ptrace_exec_threads", "ptrace_exec_threads", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(o, "B not reaped yet: task/ L(Z) A(D) B(Z)"),
            expect_stdout_has_line(o, "the exec, while B is not reaped: -1 EINTR"),
            expect_stdout_has_line(o, "the exec: L stopped, 5, event EXEC, message A"),
            expect_stdout_has_line(o, "L's exit: SIGCHLD from L, CLD_EXITED, status 5"),
        ])
    });
}

/// unshare(2) of a thread's descriptor table and file-system context, and its errors,
/// compared with Linux.
#[test]
fn unshare_files_and_fs() {
    compare("unshare_files_and_fs", "unshare", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "0 failures"),
            expect_stdout_has_line(o, "what it opens after is not the others' (EBADF here): ok"),
        ])
    });
}

/// Time namespaces: unshare(CLONE_NEWTIME) makes one for the children to come,
/// /proc/self/timens_offsets sets its offsets until a process enters it (with
/// Linux's errors), and fork, clone3, exec and setns enter it. The clocks (vDSO
/// and syscall), absolute sleeps and timers, sysinfo and /proc/uptime follow it,
/// as natively.
#[test]
fn time_namespaces() {
    compare("time_namespaces", "timens", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "monotonic       86400         0"),
            expect_stdout_has_line(o, "clock before zero: ERANGE"),
            expect_stdout_has_line(o, "child: monotonic a day ahead (vDSO): ok"),
            expect_stdout_has_line(o, "child: writing offsets once entered: EACCES"),
            expect_stdout_has_line(o, "child: setns with two threads: EUSERS"),
            expect_stdout_has_line(o, "exec: monotonic is an hour ahead (vDSO): ok"),
            expect_stdout_has_line(o, "ALL OK"),
        ])
    });
}

/// Signal-driven I/O: O_ASYNC with an owner set by F_SETOWN or F_SETOWN_EX (a
/// process, a process group, a thread) signals it when input arrives, with SIGIO
/// or F_SETSIG's signal and its si_code, si_band and si_fd; and the errors, as
/// natively.
#[test]
fn signal_driven_io() {
    compare("signal_driven_io", "sigio", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "pipe input, SIGIO: 1 signal(s), si_code 0x80"),
            expect_stdout_has_line(o, "pipe input, F_SETSIG: 1 signal(s), si_code 1, si_band 0x41, si_fd is the read end: 1"),
            expect_stdout_has_line(o, "pipe input to the group: 1 signal(s)"),
            expect_stdout_has_line(o, "socket input: 1 signal(s), si_code 1, si_band 0x41, si_fd is the socket: 1"),
            expect_stdout_has_line(o, "O_ASYNC cleared: 0 signals"),
            expect_stdout_has_line(o, "ALL OK"),
        ])
    });
}

/// clone's exit signal: a SIGUSR1 or 0 child is a clone child for wait4 and
/// waitid (__WCLONE, __WALL; a pidfd's waitid too), the parent gets SIGUSR1
/// (CLD_EXITED and the status) or nothing, a byte that is no signal sends
/// nothing, SIGCHLD ignored reaps no clone child; SIGCHLD instead after the
/// parent's exec (the child still a clone child), and for good once a subreaper
/// inherits it (a zombie: reaped at once by one that ignores SIGCHLD) or a
/// thread other than its leader execs; CLONE_PARENT takes the caller's signal;
/// clone3's bad exit signals.
#[test]
fn clone_exit_signal() {
    compare("clone_exit_signal", "clone_exit_signal", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "waitpid(SIGUSR1 child, 0): -1 ECHILD"),
            expect_stdout_has_line(o, "waitpid(SIGUSR1 child, __WCLONE): the child, exited 5"),
            expect_stdout_has_line(o, "  SIGUSR1: CLD_EXITED, si_status 5"),
            expect_stdout_has_line(o, "exit signal 0: waitid(WEXITED|__WALL) 0, si_code CLD_EXITED, si_status 8; SIGCHLD no, SIGUSR1 no"),
            expect_stdout_has_line(o, "exit signal 100: waitpid(__WCLONE): the child, exited 9"),
            expect_stdout_has_line(o, "SIGCHLD ignored: a SIGUSR1 child stays to be reaped: the child, exited 10"),
            expect_stdout_has_line(o, "waitid(P_PIDFD, WEXITED|__WCLONE): 0, the child's: yes, si_status 12"),
            expect_stdout_has_line(o, "CLONE_PARENT | SIGUSR1 sibling: waitpid(0): the child, exited 14"),
            expect_stdout_has_line(o, "the orphan, inherited: waitpid(-1, 0): the child, exited 16"),
            expect_stdout_has_line(o, "SIGCHLD ignored, a zombie orphan came: waitpid(-1, __WALL): -1 ECHILD"),
            expect_stdout_has_line(o, "after a thread's exec: waitpid(0): the child, exited 17"),
            expect_stdout_has_line(o, "after the parent's exec: waitpid(0): -1 ECHILD"),
            expect_stdout_has_line(o, "  SIGCHLD: CLD_EXITED, si_status 18"),
            expect_stdout_has_line(o, "all ok"),
        ])
    });
}

/// mremap(MREMAP_DONTUNMAP): the pages move and the old range stays, empty
/// (zeros; a shared mapping's pages still; a private file mapping's file; a
/// userfaultfd's missing page), MREMAP_FIXED, part of a mapping, and the errors.
#[test]
fn mremap_dontunmap() {
    compare("mremap_dontunmap", "mremap_dontunmap", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(o, "the old range reads zeros: ok"),
            expect_stdout_has_line(o, "reading the old page is a missing fault there: ok"),
            expect_stdout_has_line(o, "a longer new length: -1 EINVAL"),
            expect_stdout_has_line(o, "a hint over the old range: -1 EINVAL"),
            expect_stdout_has_line(o, "a range past its mapping: -1 EFAULT"),
        ])
    });
}

/// FUTEX_WAIT_REQUEUE_PI and FUTEX_CMP_REQUEUE_PI (glibc's old condition variables
/// on PI mutexes): the woken waiter owns the free mutex, requeued ones get it by
/// unlocks in order; argument checks, pairing rules, timeouts, signals before the
/// requeue (restarted) and after it (EAGAIN).
#[test]
fn requeue_pi() {
    compare("requeue_pi", "requeue_pi", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(o, "CMP_REQUEUE_PI waking 2: -1 EINVAL"),
            expect_stdout_has_line(o, "WAIT_REQUEUE_PI timing out (realtime): -1 ETIMEDOUT"),
            expect_stdout_has_line(o, "waiter woken with the mutex free: returned 0 0; owned the mutex: yes"),
            expect_stdout_has_line(o, "CMP_REQUEUE_PI with the mutex held, requeueing 1 more: 2 0"),
            expect_stdout_has_line(o, "second requeued waiter: returned 0 0; owned the mutex: yes"),
            expect_stdout_has_line(o, "FUTEX_WAKE on a WAIT_REQUEUE_PI waiter: -1 EINVAL"),
            expect_stdout_has_line(o, "CMP_REQUEUE_PI to another PI futex: -1 EINVAL"),
            expect_stdout_has_line(o, "waiter signalled before the requeue: returned 0 0; owned the mutex: yes"),
            expect_stdout_has_line(o, "waiter signalled after the requeue: returned -1 EAGAIN"),
            expect_stdout_has_line(o, "timed waiter requeued onto the held mutex: returned -1 ETIMEDOUT"),
        ])
    });
}

/// Timed waits a stop interrupts go on as Linux's do: poll and a timed FUTEX_WAIT
/// until their first deadline (restart_syscall), select, pselect6 and ppoll with the
/// time left they wrote back; handlers get EINTR even with SA_RESTART; select and
/// ppoll write the time left back on every return, not under STICKY_TIMEOUTS.
#[test]
fn timeout_restart() {
    compare("timeout_restart", "timeout_restart", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(o, "poll stopped and continued: returned 0 0; waited at least 595 ms: yes; less than 780 ms: yes"),
            expect_stdout_has_line(o, "select stopped and continued: returned 0 0; waited at least 780 ms: yes; less than 950 ms: yes"),
            expect_stdout_has_line(o, "FUTEX_WAIT stopped and continued: returned -1 ETIMEDOUT; waited at least 595 ms: yes; less than 780 ms: yes"),
            expect_stdout_has_line(o, "FUTEX_WAIT_BITSET stopped and continued: returned -1 ETIMEDOUT; waited at least 595 ms: yes; less than 780 ms: yes"),
            expect_stdout_has_line(o, "poll interrupted by an SA_RESTART handler: -1 EINTR"),
            expect_stdout_has_line(o, "FUTEX_WAIT interrupted by an SA_RESTART handler: -1 EINTR"),
            expect_stdout_has_line(o, "select timing out: 0; timeval left 0.000000"),
            expect_stdout_has_line(o, "select under STICKY_TIMEOUTS: 0; timeval 0.050000"),
        ])
    });
}

/// A relative sleep a stop interrupts ends at its first deadline once
/// continued (restart_syscall), nanosleep and clock_nanosleep alike.
#[test]
fn nanosleep_stop() {
    compare("nanosleep_stop", "nanosleep_stop", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(o, "restart_syscall with nothing to restart: -1 EINTR"),
            expect_stdout_has_line(o, "nanosleep: returned 0; slept at least 400 ms: yes; less than 580 ms: yes"),
            expect_stdout_has_line(o, "clock_nanosleep: returned 0; slept at least 400 ms: yes; less than 580 ms: yes"),
        ])
    });
}

/// /proc/stat's procs_running counts runnable tasks (it was always 1).
#[test]
fn proc_stat_procs_running() {
    compare("proc_stat_procs_running", "procs_running", &Spec::default(), expect_all_ok);
}

/// New descriptors take the lowest free number, also in a table of thousands: holes left
/// by close and close_range, dup2 into a hole, F_DUPFD's minimum, EMFILE when full.
#[test]
fn fd_lowest_free() {
    compare("fd_lowest_free", "fd_lowest", &Spec::default(), expect_all_ok);
}

/// sendfile into a non-blocking socket that fills up returns what it moved, and moves the
/// offset or the file position by just that (CPython's test_socket sendfile tests).
#[test]
fn sendfile_partial_to_full_socket() {
    compare("sendfile_partial_to_full_socket", "sendfile_partial", &Spec::default(), |o| {
        all([expect_all_ok(o), expect_stdout_has_line(o, "full socket: -1 EAGAIN")])
    });
}

/// SO_SNDBUF and SO_RCVBUF read back as Linux keeps them and bound what an AF_UNIX
/// stream or a TCP connection holds; an accepted socket has its listener's; a larger
/// send buffer wakes a blocked writer (CPython's test_asyncio.test_sendfile). An
/// AF_UNIX stream's writes cost their sk_buffs (SIOCOUTQ, EAGAIN, POLLOUT at a
/// quarter); SO_RCVLOWAT, SO_SNDLOWAT and SO_*BUFFORCE as every family has them;
/// the sizes agree with /proc/sys/net's (net.core.*mem_*, net.ipv4.tcp_*mem).
#[test]
fn socket_buffer_sizes() {
    compare("socket_buffer_sizes", "socket_buffers", &Spec::default(), expect_all_ok);
}

/// SO_RCVLOWAT at work (tests/programs/socket_lowat.c): a blocking stream read
/// waits for the mark (MSG_WAITALL: its length), TCP polls readable only once
/// the mark's bytes are queued, AF_UNIX ignores it in poll; TCP's SIOCOUTQ and
/// SIOCOUTQNSD on loopback; MSG_ERRQUEUE on TCP (EAGAIN) and AF_UNIX (ignored).
#[test]
fn socket_receive_low_water_mark() {
    compare("socket_receive_low_water_mark", "socket_lowat", &Spec::default(), expect_all_ok);
}

/// A loopback TCP connection's queue ioctls (tests/programs/tcp_queues.c):
/// on a full connection the writer's SIOCOUTQ and SIOCOUTQNSD and the
/// reader's FIONREAD add up to what was written, and after shutdown(SHUT_WR)
/// the FIN waiting behind the bytes counts one more in both.
#[test]
fn tcp_queue_ioctls() {
    compare("tcp_queue_ioctls", "tcp_queues", &Spec::default(), expect_all_ok);
}

/// How a loopback TCP connection ends (tests/programs/tcp_states.c): TCP_INFO's
/// tcpi_state, /proc/net/tcp's and sock_diag's rows after each side shuts down
/// or closes (FIN_WAIT, CLOSE_WAIT, CLOSE; FIN_WAIT1, CLOSING and LAST_ACK
/// while a FIN waits behind bytes a full window has no room for, for a closed
/// socket's row too; the TIME_WAIT row without inode of the end whose FIN went
/// first; no row after a reset), and CLOSE_WAIT's unread FIN in rx_queue.
#[test]
fn tcp_states() {
    compare("tcp_states", "tcp_states", &Spec::default(), expect_all_ok);
}

/// Datagram buffers (tests/programs/dgram_buffers.c): an AF_UNIX datagram or
/// seqpacket sender's SO_SNDBUF bounds what it has queued unread (EAGAIN, a
/// blocked send, POLLOUT, SIOCOUTQ) and its datagrams (EMSGSIZE), a receiver
/// not its peer takes 11; loopback UDP's SO_RCVBUF bounds its queue, the
/// datagrams dropped counted in /proc/net/udp.
#[test]
fn datagram_buffers() {
    compare("datagram_buffers", "dgram_buffers", &Spec::default(), expect_all_ok);
}

/// A TCP connection reset by its peer (SO_LINGER 0) is closed: getpeername is ENOTCONN
/// while the bytes that came before the reset are still read (CPython's
/// test_ssl.TestPreHandshakeClose).
#[test]
fn tcp_reset_peername() {
    compare("tcp_reset_peername", "tcp_reset_peername", &Spec::default(), expect_all_ok);
}
