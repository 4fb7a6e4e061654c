//! The Sentry's own seccomp filter, as runsc installs one: once the sandbox is set
//! up (gofers started, network taken, cgroup joined, zygote forked), the sandbox
//! process may make only the host calls that serving the app takes. A Sentry that a
//! bug let the app subvert still cannot execute programs, open host files by name,
//! create namespaces, mount, load modules, or open network sockets it was not
//! given (`rvisor do -p` opens its host listeners at setup, and forwarding takes
//! only calls every mode allows); any other call kills the whole sandbox (SECCOMP_RET_KILL_PROCESS), or with
//! `--debug-seccomp` is allowed and logged by the host (SECCOMP_RET_LOG: `dmesg`
//! shows `syscall=N`), to find a missing entry.
//!
//! It lives in the runtime, beside the boot that installs it, because what it allows
//! depends on what the boot chose: the platform (ptrace's calls only with ptrace),
//! the network mode (inet and netlink sockets only with `--network=host`) and the
//! host /proc descriptor the platform reads through (`host_proc`).
//!
//! The list comes from running the whole test suite with `--debug-seccomp` and
//! reading the host's audit lines, as the gofer's did.

use seccompiler::{BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond, SeccompFilter, SeccompRule, TargetArch};
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;

/// What the filter allows beyond the common list.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// ptrace's tracer calls (the systrap platform traces nothing).
    pub ptrace: bool,
    /// The kvm platform's ioctls (VMs and vCPUs are made as the app forks and
    /// clones).
    pub kvm: bool,
    /// `--network=host`: AF_INET, AF_INET6 and NETLINK_ROUTE sockets are host
    /// sockets made at run time, and their netlink requests drop capabilities.
    pub host_network: bool,
    /// `--network=sandbox`: the loopback mirror (kernel `net::forward`) makes
    /// listening TCP sockets on the host's loopback of the sandbox's namespace.
    pub loopback_mirror: bool,
    /// Log calls the list lacks instead of killing the sandbox.
    pub debug: bool,
}

/// Calls allowed whatever their arguments.
const ALLOWED: &[libc::c_long] = &[
    // Descriptors: app files are host descriptors the gofers handed over, pipes,
    // sockets, the memory file.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_close,
    libc::SYS_fcntl,
    libc::SYS_fstat,
    libc::SYS_lseek,
    libc::SYS_ftruncate,
    // Punching freed memory out of the memory file.
    libc::SYS_fallocate,
    // The app's fsync and fdatasync of a host file.
    libc::SYS_fsync,
    // The container's state file, rewritten in place under a lock (container.rs).
    libc::SYS_flock,
    // Memory: the Sentry's own, and the memory file and windows it maps.
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_brk,
    // systrap's per-address-space window is a memfd made at run time.
    libc::SYS_memfd_create,
    // Stubs register for it when they start; the Sentry's barrier reaches them.
    libc::SYS_membarrier,
    // Threads (glibc registers each new one's robust list and rseq area) and waiting.
    libc::SYS_futex,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    // The netstack's poller yields while another thread runs the stack.
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    // Pinning a Sentry thread and its stub thread to one CPU (host_cpus).
    libc::SYS_sched_setaffinity,
    libc::SYS_getcpu,
    libc::SYS_clock_nanosleep,
    libc::SYS_clock_gettime,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_eventfd2,
    // The netstack poller's timer, re-armed by whoever moves the stack's next timer.
    libc::SYS_timerfd_settime,
    // A wait a stop interrupted resumes through it.
    libc::SYS_restart_syscall,
    libc::SYS_exit,
    libc::SYS_exit_group,
    // Signals: the Sentry kicks and kills its own stubs and threads (a filter cannot
    // be told "only children" for a pid: Landlock's signal scope, landlock.rs, keeps
    // them inside the Sentry's domain); the forwarder waits for the caller's.
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigtimedwait,
    libc::SYS_sigaltstack,
    libc::SYS_kill,
    libc::SYS_tgkill,
    libc::SYS_pidfd_open,
    libc::SYS_pidfd_send_signal,
    // Reaping stubs, the zygote and gofers.
    libc::SYS_wait4,
    libc::SYS_waitid,
    // Sockets made at setup (gofer connections, the control socket, the zygote's, the
    // netstack's AF_PACKET one, the listeners of `do -p`'s forwarded ports and the
    // connections accepted on them) and host network sockets.
    libc::SYS_sendmsg,
    libc::SYS_recvmsg,
    libc::SYS_sendto,
    libc::SYS_recvfrom,
    // The netstack sends its frames in batches.
    libc::SYS_sendmmsg,
    libc::SYS_accept4,
    libc::SYS_shutdown,
    libc::SYS_getsockopt,
    libc::SYS_setsockopt,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    // Identity (a Sentry thread's tid for pinning and schedstat) and randomness
    // (hash maps' seeds, the app's getrandom).
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_getrandom,
    // The app's sysinfo and /proc/meminfo; glibc's qsort sizes its buffer by it.
    libc::SYS_sysinfo,
];

/// Allowed in host network mode only: a host socket's own calls.
const HOST_NETWORK: &[libc::c_long] = &[libc::SYS_bind, libc::SYS_connect, libc::SYS_listen];

/// The ptrace requests the ptrace platform makes as its stubs' tracer (the systrap
/// platform gets no ptrace at all).
const PTRACE_REQUESTS: &[libc::c_uint] = &[
    libc::PTRACE_SEIZE,
    libc::PTRACE_INTERRUPT,
    libc::PTRACE_CONT,
    libc::PTRACE_SYSEMU,
    libc::PTRACE_DETACH,
    libc::PTRACE_GETREGS,
    libc::PTRACE_SETREGS,
    libc::PTRACE_GETREGSET,
    libc::PTRACE_SETREGSET,
    libc::PTRACE_GETSIGINFO,
];

/// The host ioctls the Sentry makes after setup: a host terminal's attributes and
/// size (the app's stdio; an `rvisor exec -t` terminal goes raw, and `-t`'s is
/// restored at the end), a host socket's queue lengths (FIONREAD, SIOCOUTQ) and
/// urgent mark (SIOCATMARK).
const IOCTLS: &[libc::c_ulong] = &[libc::TCGETS, libc::TCSETSW, libc::TIOCGWINSZ, libc::FIONREAD, libc::TIOCOUTQ, SIOCATMARK];
/// Not in the libc crate for Linux: asm-generic/sockios.h.
const SIOCATMARK: libc::c_ulong = 0x8905;

/// Namespace flags: a clone may make none (unshare and setns are not allowed at all).
const NEW_NAMESPACES: u64 =
    (libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNET | libc::CLONE_NEWCGROUP) as u64;

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

fn rule(conds: Vec<Cond>) -> Result<SeccompRule, String> {
    SeccompRule::new(conds).map_err(|e| e.to_string())
}

fn eq(arg: u8, value: u64) -> Result<Cond, String> {
    Cond::new(arg, Len::Dword, Op::Eq, value).map_err(|e| e.to_string())
}

/// One rule per value: argument `arg` is one of `values`.
fn one_of(arg: u8, values: impl IntoIterator<Item = u64>) -> Result<Vec<SeccompRule>, String> {
    values.into_iter().map(|v| rule(vec![eq(arg, v)?])).collect()
}

fn rules(config: &Config) -> Result<Rules, String> {
    let mut r: Rules = ALLOWED.iter().map(|&nr| (nr, Vec::new())).collect();
    // Threads (glibc's clone3 is answered ENOSYS by the second filter and falls back
    // to clone, whose flags a filter can see): no new namespaces.
    let no_namespaces = Cond::new(0, Len::Qword, Op::MaskedEq(NEW_NAMESPACES), 0).map_err(|e| e.to_string())?;
    r.insert(libc::SYS_clone, vec![rule(vec![no_namespaces])?]);
    r.insert(libc::SYS_clone3, Vec::new());
    // Files: only read-only, only relative to the host /proc descriptor (seccomp
    // cannot read the path: Landlock, landlock.rs, keeps it beneath /proc).
    let proc_dir = rvisor_platform::host_proc::dir().ok_or("no host /proc descriptor")?;
    let proc_dir = u64::try_from(proc_dir.as_raw_fd()).map_err(|e| e.to_string())?;
    r.insert(libc::SYS_openat, vec![rule(vec![eq(0, proc_dir)?, eq(2, rvisor_platform::host_proc::OPEN_FLAGS as u64)?])?]);
    // fstat of a descriptor (glibc's fstat is newfstatat with AT_EMPTY_PATH).
    let empty_path = Cond::new(3, Len::Dword, Op::MaskedEq(libc::AT_EMPTY_PATH as u64), libc::AT_EMPTY_PATH as u64).map_err(|e| e.to_string())?;
    r.insert(libc::SYS_newfstatat, vec![rule(vec![empty_path])?]);
    let statx_empty = Cond::new(2, Len::Dword, Op::MaskedEq(libc::AT_EMPTY_PATH as u64), libc::AT_EMPTY_PATH as u64).map_err(|e| e.to_string())?;
    r.insert(libc::SYS_statx, vec![rule(vec![statx_empty])?]);
    let kvm_ioctls = if config.kvm { rvisor_platform::kvm::SENTRY_IOCTLS } else { &[] };
    r.insert(libc::SYS_ioctl, one_of(1, IOCTLS.iter().copied().chain(kvm_ioctls.iter().copied()))?);
    // A new thread's name (std sets it from the thread itself).
    r.insert(libc::SYS_prctl, one_of(0, [libc::PR_SET_NAME as u64])?);
    // New sockets only in host network mode, and only of the inet families and
    // NETLINK_ROUTE: every other socket (gofer connections, the zygote's, the control
    // socket, the netstack's AF_PACKET one) is made at setup, and the app's AF_UNIX
    // sockets are the Sentry's own.
    if config.host_network {
        let mut socket = one_of(0, [libc::AF_INET as u64, libc::AF_INET6 as u64])?;
        socket.push(rule(vec![eq(0, libc::AF_NETLINK as u64)?, eq(2, libc::NETLINK_ROUTE as u64)?])?);
        r.insert(libc::SYS_socket, socket);
        for &nr in HOST_NETWORK {
            r.insert(nr, Vec::new());
        }
    }
    // The loopback mirror's listeners: AF_INET stream sockets as `hostcall`
    // makes them, bound to a `sockaddr_in`. (A `sockaddr_un` that short would
    // name a path of at most 13 bytes: the Sentry has no unbound AF_UNIX socket
    // but its gofer connections, which it could bind so; nothing else.)
    if config.loopback_mirror && !config.host_network {
        let stream = (libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) as u64;
        r.insert(libc::SYS_socket, vec![rule(vec![eq(0, libc::AF_INET as u64)?, eq(1, stream)?, eq(2, 0)?])?]);
        r.insert(libc::SYS_bind, vec![rule(vec![eq(2, std::mem::size_of::<libc::sockaddr_in>() as u64)?])?]);
        r.insert(libc::SYS_listen, Vec::new());
    }
    if config.ptrace {
        r.insert(libc::SYS_ptrace, one_of(0, PTRACE_REQUESTS.iter().map(|&q| u64::from(q)))?);
    }
    Ok(r)
}

/// The allow-list filter: the calls above, and the mismatch action for any other.
pub fn allow_list(config: &Config) -> Result<BpfProgram, String> {
    let mismatch = if config.debug { SeccompAction::Log } else { SeccompAction::KillProcess };
    let filter = SeccompFilter::new(rules(config)?, mismatch, SeccompAction::Allow, TargetArch::x86_64).map_err(|e| e.to_string())?;
    filter.try_into().map_err(|e: seccompiler::BackendError| e.to_string())
}

/// The second filter: clone3 fails with ENOSYS (its flags are behind a pointer a
/// filter cannot read), so that glibc falls back to clone.
pub fn no_clone3() -> Result<BpfProgram, String> {
    let rules: Rules = [(libc::SYS_clone3, Vec::new())].into_iter().collect();
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::ENOSYS as u32), TargetArch::x86_64).map_err(|e| e.to_string())?;
    filter.try_into().map_err(|e: seccompiler::BackendError| e.to_string())
}

/// Installs both filters on every thread of the sandbox process (TSYNC); the
/// allow-list last, so that it need not allow installing a filter.
pub fn install(config: &Config) -> Result<(), String> {
    let (allow, clone3) = (allow_list(config)?, no_clone3()?);
    seccompiler::apply_filter_all_threads(&clone3).map_err(|e| e.to_string())?;
    seccompiler::apply_filter_all_threads(&allow).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvisor_kernel::task::seccomp::{Filter, Insn, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, RET_LOG};
    use std::sync::Arc;

    /// Both filters as the host chains them, checked and run by the kernel crate's
    /// seccomp interpreter (which checks programs as Linux does).
    fn chain(config: &Config) -> Arc<Filter> {
        let insns = |p: BpfProgram| p.into_iter().map(|i| Insn { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect();
        let first = Filter::new(insns(no_clone3().unwrap()), None).unwrap();
        Filter::new(insns(allow_list(config).unwrap()), Some(first)).unwrap()
    }

    const SYSTRAP: Config = Config { ptrace: false, kvm: false, host_network: false, loopback_mirror: false, debug: false };
    const PTRACE_HOST: Config = Config { ptrace: true, kvm: false, host_network: true, loopback_mirror: false, debug: false };
    const SANDBOX_NETWORK: Config = Config { ptrace: false, kvm: false, host_network: false, loopback_mirror: true, debug: false };

    #[test]
    fn the_loopback_mirror_makes_inet_listeners_only() {
        let c = chain(&SANDBOX_NETWORK);
        let stream = (libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) as u64;
        assert!(allowed(&c, libc::SYS_socket, [libc::AF_INET as u64, stream, 0, 0, 0, 0]));
        assert!(allowed(&c, libc::SYS_bind, [7, 0x1000, 16, 0, 0, 0]));
        assert!(allowed(&c, libc::SYS_listen, [7, 128, 0, 0, 0, 0]));
        assert!(killed(&c, libc::SYS_socket, [libc::AF_INET6 as u64, stream, 0, 0, 0, 0]));
        assert!(killed(&c, libc::SYS_socket, [libc::AF_INET as u64, (libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) as u64, 0, 0, 0, 0]));
        assert!(killed(&c, libc::SYS_socket, [libc::AF_UNIX as u64, stream, 0, 0, 0, 0]));
        assert!(killed(&c, libc::SYS_bind, [7, 0x1000, 110, 0, 0, 0]), "a sockaddr_un of a long path");
        assert!(killed(&c, libc::SYS_connect, [7, 0x1000, 16, 0, 0, 0]));
    }

    fn verdict(c: &Arc<Filter>, nr: libc::c_long, args: [u64; 6]) -> u32 {
        c.evaluate(nr as u64, 0x7000_0000_1000, args)
    }

    fn allowed(c: &Arc<Filter>, nr: libc::c_long, args: [u64; 6]) -> bool {
        verdict(c, nr, args) == RET_ALLOW
    }

    fn killed(c: &Arc<Filter>, nr: libc::c_long, args: [u64; 6]) -> bool {
        verdict(c, nr, args) == RET_KILL_PROCESS
    }

    fn proc_dir() -> u64 {
        rvisor_platform::host_proc::dir().unwrap().as_raw_fd() as u64
    }

    const RDONLY: u64 = rvisor_platform::host_proc::OPEN_FLAGS as u64;
    const AT_FDCWD: u64 = libc::AT_FDCWD as u32 as u64;

    #[test]
    fn what_serving_takes_passes() {
        let c = chain(&SYSTRAP);
        for nr in [libc::SYS_read, libc::SYS_futex, libc::SYS_mmap, libc::SYS_recvmsg, libc::SYS_exit_group] {
            assert!(allowed(&c, nr, [0; 6]), "{nr}");
        }
        assert!(allowed(&c, libc::SYS_openat, [proc_dir(), 0, RDONLY, 0, 0, 0]));
        assert!(allowed(&c, libc::SYS_accept4, [0; 6]));
        assert!(allowed(&c, libc::SYS_ioctl, [0, libc::TIOCGWINSZ, 0, 0, 0, 0]));
        assert!(allowed(&c, libc::SYS_newfstatat, [3, 0, 0, libc::AT_EMPTY_PATH as u64, 0, 0]));
        // A thread: glibc's clone flags.
        let thread = (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_SIGHAND | libc::CLONE_THREAD | libc::CLONE_SYSVSEM | libc::CLONE_SETTLS | libc::CLONE_PARENT_SETTID | libc::CLONE_CHILD_CLEARTID) as u64;
        assert!(allowed(&c, libc::SYS_clone, [thread, 0, 0, 0, 0, 0]));
        assert_eq!(verdict(&c, libc::SYS_clone3, [0; 6]), RET_ERRNO | libc::ENOSYS as u32, "clone3 falls back to clone");
    }

    #[test]
    fn what_a_subverted_sentry_would_want_is_refused() {
        let c = chain(&SYSTRAP);
        let refused: &[(&str, libc::c_long, [u64; 6])] = &[
            ("execve", libc::SYS_execve, [0; 6]),
            ("execveat", libc::SYS_execveat, [0; 6]),
            ("open", libc::SYS_open, [0, libc::O_RDONLY as u64, 0, 0, 0, 0]),
            ("openat from the cwd", libc::SYS_openat, [AT_FDCWD, 0, RDONLY, 0, 0, 0]),
            ("openat of /proc for writing", libc::SYS_openat, [proc_dir(), 0, (libc::O_WRONLY | libc::O_CLOEXEC) as u64, 0, 0, 0]),
            ("openat of /proc creating", libc::SYS_openat, [proc_dir(), 0, RDONLY | libc::O_CREAT as u64, 0o644, 0, 0]),
            ("openat2", libc::SYS_openat2, [proc_dir(), 0, 0, 0, 0, 0]),
            ("stat of a path", libc::SYS_newfstatat, [AT_FDCWD, 0, 0, 0, 0, 0]),
            ("mount", libc::SYS_mount, [0; 6]),
            ("umount2", libc::SYS_umount2, [0; 6]),
            ("pivot_root", libc::SYS_pivot_root, [0; 6]),
            ("unshare", libc::SYS_unshare, [libc::CLONE_NEWNS as u64, 0, 0, 0, 0, 0]),
            ("setns", libc::SYS_setns, [3, 0, 0, 0, 0, 0]),
            ("clone into a user namespace", libc::SYS_clone, [(libc::CLONE_NEWUSER | libc::SIGCHLD) as u64, 0, 0, 0, 0, 0]),
            ("clone into a network namespace", libc::SYS_clone, [(libc::CLONE_NEWNET | libc::SIGCHLD) as u64, 0, 0, 0, 0, 0]),
            ("ptrace on systrap", libc::SYS_ptrace, [libc::PTRACE_SEIZE as u64, 1, 0, 0, 0, 0]),
            ("inet socket", libc::SYS_socket, [libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0]),
            ("packet socket", libc::SYS_socket, [libc::AF_PACKET as u64, libc::SOCK_RAW as u64, 0, 0, 0, 0]),
            ("netlink socket", libc::SYS_socket, [libc::AF_NETLINK as u64, libc::SOCK_RAW as u64, 0, 0, 0, 0]),
            ("unix socket", libc::SYS_socket, [libc::AF_UNIX as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0]),
            ("socketpair", libc::SYS_socketpair, [libc::AF_UNIX as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0]),
            ("bind without host network", libc::SYS_bind, [0; 6]),
            ("connect without host network", libc::SYS_connect, [0; 6]),
            ("capset", libc::SYS_capset, [0; 6]),
            ("TIOCSTI", libc::SYS_ioctl, [0, libc::TIOCSTI, 0, 0, 0, 0]),
            ("TIOCSCTTY", libc::SYS_ioctl, [0, libc::TIOCSCTTY, 0, 0, 0, 0]),
            ("TIOCSWINSZ", libc::SYS_ioctl, [0, libc::TIOCSWINSZ, 0, 0, 0, 0]),
            ("prctl PR_SET_DUMPABLE", libc::SYS_prctl, [libc::PR_SET_DUMPABLE as u64, 1, 0, 0, 0, 0]),
            ("init_module", libc::SYS_init_module, [0; 6]),
            ("finit_module", libc::SYS_finit_module, [0; 6]),
            ("kexec_load", libc::SYS_kexec_load, [0; 6]),
            ("bpf", libc::SYS_bpf, [0; 6]),
            ("perf_event_open", libc::SYS_perf_event_open, [0; 6]),
            ("process_vm_writev", libc::SYS_process_vm_writev, [0; 6]),
            ("chroot", libc::SYS_chroot, [0; 6]),
            ("setuid", libc::SYS_setuid, [0; 6]),
            ("keyctl", libc::SYS_keyctl, [0; 6]),
            ("a 32-bit number", 0x4000_0000 | libc::SYS_execve, [0; 6]),
        ];
        for (what, nr, args) in refused {
            assert!(killed(&c, *nr, *args), "{what} is not refused");
        }
    }

    #[test]
    fn the_platform_and_network_mode_widen_it_only_as_needed() {
        let c = chain(&PTRACE_HOST);
        assert!(allowed(&c, libc::SYS_ptrace, [libc::PTRACE_SEIZE as u64, 1, 0, 0, 0, 0]));
        assert!(allowed(&c, libc::SYS_ptrace, [libc::PTRACE_SYSEMU as u64, 1, 0, 0, 0, 0]));
        assert!(killed(&c, libc::SYS_ptrace, [libc::PTRACE_ATTACH as u64, 1, 0, 0, 0, 0]), "seize is how stubs are traced");
        assert!(killed(&c, libc::SYS_ptrace, [libc::PTRACE_POKEDATA as u64, 1, 0, 0, 0, 0]), "app memory is the memory file");
        assert!(allowed(&c, libc::SYS_socket, [libc::AF_INET6 as u64, libc::SOCK_DGRAM as u64, 0, 0, 0, 0]));
        assert!(allowed(&c, libc::SYS_socket, [libc::AF_NETLINK as u64, libc::SOCK_RAW as u64, libc::NETLINK_ROUTE as u64, 0, 0, 0]));
        assert!(killed(&c, libc::SYS_socket, [libc::AF_NETLINK as u64, libc::SOCK_RAW as u64, libc::NETLINK_AUDIT as u64, 0, 0, 0]));
        assert!(killed(&c, libc::SYS_socket, [libc::AF_PACKET as u64, libc::SOCK_RAW as u64, 0, 0, 0, 0]), "never AF_PACKET");
        assert!(killed(&c, libc::SYS_socket, [libc::AF_UNIX as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0]), "nor AF_UNIX");
        assert!(allowed(&c, libc::SYS_connect, [0; 6]));
        assert!(killed(&c, libc::SYS_execve, [0; 6]));
        // KVM's ioctls only on the kvm platform, and only those it makes.
        const KVM_RUN: u64 = 0xae80;
        const KVM_SET_TSS_ADDR: u64 = 0xae47;
        assert!(killed(&c, libc::SYS_ioctl, [5, KVM_RUN, 0, 0, 0, 0]));
        let kvm = chain(&Config { kvm: true, ..SYSTRAP });
        assert!(allowed(&kvm, libc::SYS_ioctl, [5, KVM_RUN, 0, 0, 0, 0]));
        assert!(killed(&kvm, libc::SYS_ioctl, [5, KVM_SET_TSS_ADDR, 0, 0, 0, 0]));
        assert!(killed(&kvm, libc::SYS_ptrace, [libc::PTRACE_SEIZE as u64, 1, 0, 0, 0, 0]));
    }

    /// `rvisor do -p`: the host's listening sockets are made at setup
    /// (publish.rs); forwarding then takes only calls every mode allows
    /// (net/forward.rs), and still no new socket, bind or listen.
    #[test]
    fn forwarding_ports_takes_no_new_sockets() {
        let c = chain(&SYSTRAP);
        for nr in [libc::SYS_accept4, libc::SYS_poll, libc::SYS_recvfrom, libc::SYS_sendto, libc::SYS_shutdown, libc::SYS_setsockopt, libc::SYS_eventfd2, libc::SYS_read, libc::SYS_write, libc::SYS_mmap, libc::SYS_sched_setaffinity] {
            assert!(allowed(&c, nr, [0; 6]), "{nr}");
        }
        for nr in [libc::SYS_socket, libc::SYS_bind, libc::SYS_listen, libc::SYS_connect] {
            assert!(killed(&c, nr, [libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0]), "{nr}");
        }
    }

    #[test]
    fn debugging_logs_instead_of_killing() {
        let c = chain(&Config { debug: true, ..SYSTRAP });
        assert_eq!(verdict(&c, libc::SYS_execve, [0; 6]), RET_LOG);
        assert!(allowed(&c, libc::SYS_read, [0; 6]));
    }

    /// The variable that makes this test binary, run again, a probe (see below).
    const PROBE: &str = "RVISOR_FILTER_PROBE";

    /// On the host: a child (this test binary again, running only `probe`) installs
    /// the filter on all its threads and then opens a file by name, which kills it;
    /// the same child reading /proc through the Sentry's descriptor and starting a
    /// thread (clone3 refused, clone allowed) lives on.
    #[test]
    fn the_host_kills_a_sentry_that_opens_a_file_by_name() {
        let run = |what: &str| {
            let exe = std::env::current_exe().unwrap();
            std::process::Command::new(exe).args(["--exact", "filter::tests::probe", "--nocapture", "--test-threads=1"]).env(PROBE, what).output().unwrap()
        };
        use std::os::unix::process::ExitStatusExt;
        let lives = run("allowed");
        assert!(lives.status.success(), "{lives:?}");
        assert!(String::from_utf8_lossy(&lives.stdout).contains("probe survived"), "{lives:?}");
        let dies = run("open");
        assert_eq!(dies.status.signal(), Some(libc::SIGSYS), "{dies:?}");
        assert!(!String::from_utf8_lossy(&dies.stdout).contains("probe survived"), "{dies:?}");
    }

    #[test]
    fn probe() {
        let Ok(what) = std::env::var(PROBE) else { return };
        install(&SYSTRAP).unwrap();
        match what.as_str() {
            "open" => drop(std::fs::File::open("/etc/hostname")),
            _ => {
                rvisor_platform::host_proc::read("self/stat").unwrap();
                std::thread::spawn(|| ()).join().unwrap();
            }
        }
        println!("probe survived");
    }
}
