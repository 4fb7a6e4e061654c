//! Processes, threads and futexes (issue 3): C programs in tests/programs run natively and in
//! the sandbox on every platform, as `-static` and `-static-pie`, with identical stdout and
//! exit status, plus per-program assertions that hold on Linux.
//!
//! The programs synchronise with futexes on MAP_SHARED memory, wait4 and signals, never with
//! sleeps; they print properties (relationships between pids, statuses), never raw pids or
//! times, so native and sandboxed output can be compared byte for byte.

mod common;

use common::*;

/// Runs `program MODE` as the test `test`: same output natively and in the sandbox, the
/// program's own checks pass ("all ok"), and every line of `lines` is printed.
fn mode(test: &str, program: &str, mode: &str, lines: &'static [&'static str]) {
    compare(test, program, &Spec::args([mode]), move |o| {
        all([expect_all_ok(o)]
            .into_iter()
            .chain(lines.iter().map(|l| expect_stdout_has_line(o, l))))
    });
}

// ---- threads ----------------------------------------------------------------------------

/// 8 threads: mutex, condvars, barrier, rwlock, TLS, cancellation, pthread_kill; exit from
/// a thread, pthread_exit from main, fork from a thread.
#[test]
fn threads() {
    compare("threads", "threads", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(o, "sum of join results: 140"),
            expect_stdout_has_line(o, "mutex-protected counter: 40000"),
            expect_stdout_has_line(o, "exit(3) from a second thread: process status 3"),
            expect_stdout_has_line(
                o,
                "main pthread_exit, other thread exit(4): process status 4",
            ),
        ])
    });
}

// ---- fork and wait ----------------------------------------------------------------------

#[test]
fn wait_basic() {
    mode(
        "wait_basic",
        "wait",
        "basic",
        &[
            "child _exit(256): waitpid returns its pid: yes, exited 0",
            "child _exit(257): waitpid returns its pid: yes, exited 1",
            "child _exit(255): waitpid returns its pid: yes, exited 255",
            "sum of their statuses: 33",
            "it was killed by signal 15 (WIFSIGNALED=1 WIFEXITED=0)",
        ],
    );
}

/// WNOHANG returns 0 while the child lives (it waits on a shared futex until the parent
/// has checked).
#[test]
fn wait_wnohang() {
    mode("wait_wnohang", "wait", "wnohang", &["child exited 9"]);
}

#[test]
fn wait_waitid() {
    mode(
        "wait_waitid",
        "wait",
        "waitid",
        &[
            "P_PID: si_signo=17 si_code=CLD_EXITED si_status=3",
            "P_ALL: si_signo=17 si_code=CLD_KILLED si_status=9",
            "P_PGID statuses sum: 9",
        ],
    );
}

#[test]
fn wait_wnowait() {
    mode(
        "wait_wnowait",
        "wait",
        "wnowait",
        &[
            "first peek: si_code=CLD_EXITED si_status=7",
            "second peek: si_status=7",
            "reaped: exited 7",
        ],
    );
}

/// WUNTRACED/WSTOPPED and WCONTINUED, through waitpid and waitid.
#[test]
fn wait_stop_continue() {
    mode(
        "wait_stop_continue",
        "wait",
        "stopcont",
        &[
            "after SIGSTOP: stopped by signal 19",
            "after SIGCONT: continued",
            "finally: exited 12",
            "waitid stop: si_code=CLD_STOPPED si_status=19",
            "waitid continue: si_code=CLD_CONTINUED si_status=18",
            "stopped then SIGKILL: killed by signal 9",
        ],
    );
}

/// ECHILD without children; SIGCHLD ignored / SA_NOCLDWAIT reap automatically.
#[test]
fn wait_echild() {
    mode("wait_echild", "wait", "echild", &[]);
}

/// 64 children alive at once, each with its own exit status, all reaped.
#[test]
fn fork_storm() {
    mode(
        "fork_storm",
        "wait",
        "storm",
        &["reaped 64 children, statuses sum 8224 (expected 8224)"],
    );
}

/// A chain of 5 processes, each forking the next, exit codes passed up.
#[test]
fn fork_chain() {
    mode(
        "fork_chain",
        "wait",
        "chain",
        &["chain of 5: exited 104 (expected exited 104)"],
    );
}

/// clone3 as fork, CLONE_PARENT_SETTID, vfork (a signal with a handler does not end the
/// parent's wait), and a clone child without exit signal (only __WCLONE/__WALL wait for it).
#[test]
fn clone_vfork() {
    mode(
        "clone_vfork",
        "wait",
        "clone",
        &["clone3 child: exited 31", "clone child: exited 6"],
    );
}

/// The children's CPU time through wait4's rusage and getrusage(RUSAGE_CHILDREN).
#[test]
fn wait_rusage() {
    mode("wait_rusage", "wait", "rusage", &[]);
}

// ---- execve -----------------------------------------------------------------------------

/// fork + execve of the program itself with arguments and an environment; ENOENT, EFAULT;
/// 1000 arguments.
#[test]
fn exec_self() {
    mode(
        "exec_self",
        "exec",
        "exec",
        &[
            "[new image] argc=6",
            "[new image] argv[4]=[two words]",
            "[new image] env[0]=[RVT_EXEC=yes]",
            "[new image] same pid as before execve: yes",
            "new image exited 42",
            "[new image] 1000 arguments intact: yes",
            "exec of an image that exits 77: exited 77",
        ],
    );
}

/// personality(ADDR_NO_RANDOMIZE) gives every exec the same stack, mmap area, heap and
/// vDSO, kept across fork and exec; without it they differ between execs.
#[test]
fn personality_no_randomize() {
    compare("personality_no_randomize", "personality_aslr", &Spec::default(), expect_all_ok);
}

/// Handled signals reset, ignored stay ignored, mask and pending kept, altstack dropped.
#[test]
fn exec_signal_state() {
    mode(
        "exec_signal_state",
        "exec",
        "signals",
        &[
            "[new image] handled SIGUSR1 reset to SIG_DFL: yes",
            "[new image] ignored SIGUSR2 still SIG_IGN: yes",
            "[new image] SIGTERM still blocked: yes",
            "[new image] SIGTERM still pending: yes",
            "[new image] alternate signal stack disabled: yes",
            "new image exited 0",
        ],
    );
}

/// execve from a second thread: the other threads go, the process keeps its pid,
/// and the thread left takes the leader's start time.
#[test]
fn exec_from_thread() {
    mode(
        "exec_from_thread",
        "exec",
        "thread",
        &[
            "[new image] pid kept by execve from a thread: yes",
            "[new image] the exec'ing thread is now the leader (tid == pid): yes",
            "[thread] its start time is later than the leader's: yes",
            "[new image] its start time is the old leader's (stat, task stat): yes, yes",
            "new image exited 43",
        ],
    );
}

/// O_CLOEXEC / FD_CLOEXEC descriptors are closed by execve (uses dup2, dup3 and fcntl).
#[test]
fn exec_cloexec() {
    mode(
        "exec_cloexec",
        "exec",
        "cloexec",
        &[
            "[new image] fd 10 (O_CLOEXEC) closed: yes",
            "[new image] fd 11 open without FD_CLOEXEC: yes",
            "[new image] fd 12 (FD_CLOEXEC via fcntl) closed: yes",
            "[new image] written through fd 11",
        ],
    );
}

// ---- memory after fork -----------------------------------------------------------------

/// Copy-on-write of private memory in both directions; MAP_SHARED shared across three
/// generations; MADV_DONTNEED and munmap in a child stay in the child.
#[test]
fn copy_on_write() {
    compare("copy_on_write", "cow", &Spec::default(), expect_all_ok);
}

/// Copy-on-write in parent and child and a partial MADV_DONTNEED leave every mapping one
/// line of /proc/self/maps (they split it at each 64 KiB copied before).
#[test]
fn backing_changes_leave_mappings_whole() {
    compare("backing_changes_leave_mappings_whole", "maps_whole", &Spec::default(), expect_all_ok);
}

/// Four threads map, fill, check and unmap memory at once: fresh pages read zeros and
/// written ones keep their bytes (on kvm a thread's unmap could free frames while
/// another thread's flush of the old translations was still under way).
#[test]
fn concurrent_unmaps_free_no_reachable_frame() {
    compare("concurrent_unmaps_free_no_reachable_frame", "unmap_race", &Spec::default(), expect_all_ok);
}

/// mprotect takes write access from a thread storing to the page in a loop before
/// the caller goes on: no store lands after, and the other thread faults.
#[test]
fn mprotect_reaches_running_threads() {
    compare("mprotect_reaches_running_threads", "mprotect_other_thread", &Spec::default(), expect_all_ok);
}

// ---- futex ------------------------------------------------------------------------------

/// A shared futex over MAP_SHARED memory: the parent sleeps, the child wakes it, and back.
#[test]
fn futex_across_fork() {
    mode(
        "futex_across_fork",
        "futex",
        "fork",
        &["child's first FUTEX_WAKE woke 1 waiter"],
    );
}

#[test]
fn futex_timeouts() {
    mode(
        "futex_timeouts",
        "futex",
        "timeout",
        &[
            "FUTEX_WAIT, 20 ms relative timeout: -1 ETIMEDOUT",
            "FUTEX_WAIT, value differs: -1 EAGAIN",
            "FUTEX_WAIT_BITSET, absolute CLOCK_MONOTONIC deadline: -1 ETIMEDOUT",
            "FUTEX_WAIT_BITSET|FUTEX_CLOCK_REALTIME, absolute deadline: -1 ETIMEDOUT",
        ],
    );
}

/// FUTEX_WAIT returns EINTR for a handled signal, even with SA_RESTART.
#[test]
fn futex_eintr() {
    mode(
        "futex_eintr",
        "futex",
        "eintr",
        &["FUTEX_WAIT interrupted by a SA_RESTART handler: -1 EINTR"],
    );
}

#[test]
fn futex_restart() {
    mode(
        "futex_restart",
        "futex",
        "restart",
        &["an untimed FUTEX_WAIT under a SA_RESTART handler restarts (0 or EAGAIN, not EINTR): ok", "the handler ran: ok"],
    );
}

#[test]
fn futex_wake_requeue() {
    mode(
        "futex_wake_requeue",
        "futex",
        "wake",
        &[
            "FUTEX_WAKE(1): 1",
            "FUTEX_WAKE(2): 2",
            "FUTEX_CMP_REQUEUE with a wrong expected value: -1 EAGAIN",
            "FUTEX_CMP_REQUEUE(wake 1, requeue 2): 3",
        ],
    );
}

#[test]
fn futex_wake_op() {
    mode(
        "futex_wake_op",
        "futex",
        "wakeop",
        &[
            "WAKE_OP(SET 7, old == 0): 2, *uaddr2 = 7",
            "WAKE_OP(ADD 1, old > 100): 1, *uaddr2 = 8",
        ],
    );
}

#[test]
fn futex_bitset() {
    mode(
        "futex_bitset",
        "futex",
        "bitset",
        &[
            "WAKE_BITSET(0x8) with waiters 0x1, 0x2, 0x6: 0",
            "WAKE_BITSET(0x4): 1",
        ],
    );
}

/// Robust mutexes: EOWNERDEAD after the owner thread or process dies (robust-list cleanup).
#[test]
fn futex_robust() {
    mode(
        "futex_robust",
        "futex",
        "robust",
        &[
            "lock while the owner exits: EOWNERDEAD",
            "lock after unlocking without consistent: ENOTRECOVERABLE",
            "lock of a mutex whose owner process died: EOWNERDEAD",
            "lock while the owner process exits: EOWNERDEAD",
        ],
    );
}

/// CLONE_CHILD_CLEARTID: cleared and woken at thread exit.
#[test]
fn futex_clear_child_tid() {
    mode("futex_clear_child_tid", "futex", "cleartid", &[]);
}

// ---- process relationships and prctl ----------------------------------------------------

/// An orphaned grandchild is reparented to us (a subreaper natively; PID 1 in the sandbox).
#[test]
fn orphan_reparenting() {
    mode("orphan_reparenting", "prctl", "reparent", &[]);
}

#[test]
fn child_subreaper() {
    mode("child_subreaper", "prctl", "subreaper", &[]);
}

#[test]
fn pdeathsig() {
    mode(
        "pdeathsig",
        "prctl",
        "pdeathsig",
        &[
            "PR_GET_PDEATHSIG in the child: 15",
            "the child, when its parent exited: killed by signal 15",
        ],
    );
}

#[test]
fn prctl_name() {
    mode(
        "prctl_name",
        "prctl",
        "name",
        &[
            "after PR_SET_NAME: [rvisor-test]",
            "a long name is cut: [a-name-longer-t]",
            "the thread renamed itself: [worker]",
            "the main thread is still: [parent]",
        ],
    );
}

#[test]
fn prctl_no_new_privs() {
    mode("prctl_no_new_privs", "prctl", "nnp", &[]);
}

#[test]
fn prctl_dumpable() {
    mode("prctl_dumpable", "prctl", "dumpable", &[]);
}

/// setsid, setpgid, getpgid, getsid and their errors.
#[test]
fn sessions_and_groups() {
    mode("sessions_and_groups", "prctl", "sessions", &[]);
}

/// kill(-pgid) and kill(0) reach a whole process group.
#[test]
fn process_group_kill() {
    mode(
        "process_group_kill",
        "prctl",
        "pgkill",
        &["members of the group killed by SIGTERM: 3"],
    );
}

// ---- limits -----------------------------------------------------------------------------

/// RLIMIT_NPROC: not enforced for root; as uid 54321, fork and pthread_create give EAGAIN
/// at the limit. Needs root natively (setuid), as the harness runs here.
#[test]
fn rlimit_nproc() {
    compare("rlimit_nproc", "nproc", &Spec::default(), |o| {
        all([
            expect_all_ok(o),
            expect_stdout_has_line(
                o,
                "with RLIMIT_NPROC=4 and 1 process of ours, forks before failure: 3",
            ),
        ])
    });
}

/// Page faults and context switches (tests/programs/rusage.c): touching fresh pages
/// raises ru_minflt (by 1 to 64 for 64 pages: the Sentry fills 2 MiB at a fault), a
/// read that blocks raises ru_nvcsw, a child's counts reach RUSAGE_CHILDREN and
/// wait4's and waitid's rusage (with its own reaped child's) only once reaped, an
/// exited thread's stay in RUSAGE_SELF, and /proc's stat and status agree.
#[test]
fn rusage_faults_and_switches() {
    compare("rusage_faults_and_switches", "rusage", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "touching 64 fresh pages raises RUSAGE_THREAD ru_minflt by 1 to 64: ok"),
            expect_stdout_has_line(o, "it raises RUSAGE_THREAD ru_nvcsw: ok"),
            expect_stdout_has_line(o, "an unreaped child's faults are not in RUSAGE_CHILDREN: ok"),
            expect_stdout_has_line(o, "0 failures"),
        ])
    });
}

#[test]
fn execveat_dirfd_and_empty_path() {
    compare("execveat_dirfd_and_empty_path", "execveat", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "new image started as fexecve")])
    });
}

/// Stubs are forked by a zygote process, forked before the Sentry went under its seccomp
/// filter. If it dies (here: killed from the host), the Sentry does not fork stubs itself,
/// since they would inherit its filter: a new process cannot start (the shell's child
/// dies), and the sandbox carries on. (kvm has no stubs: a process is a VM.)
#[test]
fn without_the_zygote_no_stub_forks_from_the_sentry() {
    let failures: Vec<String> = platforms().iter().filter(|&&p| p != "kvm").filter_map(|p| without_the_zygote(p).err().map(|e| format!("{p}: {e}"))).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn without_the_zygote(platform: &str) -> Result<(), String> {
    let script = "echo ready; read x; /bin/true && echo forked; echo done";
    let mut p = Interactive::spawn(sandbox_command(platform, &[], std::path::Path::new("/bin/sh"), &Spec::args(["-c", script])));
    let mut result = p.expect_line("ready");
    // The zygote is the child of the Sentry's stub-forking thread (whose name it
    // keeps) that maps no memory file.
    let forker = if platform == "ptrace" { "stub-spawner" } else { "systrap-stubs" };
    let sentry = p.pid();
    let zygotes: Vec<libc::pid_t> = process_tree(sentry)
        .into_iter()
        .filter(|&pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
            pid != sentry && comm.trim() == forker && !maps.is_empty() && !maps.contains("memfd")
        })
        .collect();
    if zygotes.len() != 1 {
        result = result.and(Err(format!("want one zygote, found {zygotes:?}")));
    }
    for &z in &zygotes {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(z), nix::sys::signal::Signal::SIGKILL);
    }
    // No stub spares exist yet: systrap starts them with the first address space after init's.
    let result = result.and_then(|()| p.send_line()).and_then(|()| p.expect_line("done"));
    let o = p.finish();
    let forked = if o.stdout_lines().iter().any(|l| l == "forked") { Err("a process started without the zygote".to_string()) } else { Ok(()) };
    all([result, forked, expect_status(&o, 0)]).map_err(|e| format!("{e}\n{}", o.describe()))
}
