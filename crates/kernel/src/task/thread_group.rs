//! Thread groups (processes) and threads, as other tasks see them.

use super::signals::{SigAltStack, SigQueue};
use super::{ExitStatus, Waiter};
use rvisor_abi::structs::{KernelSigaction, Rlimit};
use rvisor_platform::Interrupter;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub const RLIMIT_COUNT: usize = 16;
pub const RLIMIT_CPU_INDEX: usize = 0;
pub const RLIMIT_FSIZE: usize = 1;
pub const RLIMIT_AS: usize = 9;
pub const RLIMIT_DATA: usize = 2;
pub const RLIMIT_STACK: usize = 3;
pub const RLIMIT_CORE: usize = 4;
pub const RLIMIT_MEMLOCK: usize = 8;
pub const RLIMIT_SIGPENDING: usize = 11;
pub const RLIMIT_NPROC: usize = 6;
pub const RLIMIT_NOFILE: usize = 7;
pub const RLIMIT_NICE: usize = 13;
pub const RLIMIT_RTPRIO: usize = 14;
pub const RLIM_INFINITY: u64 = u64::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    /// What file-system checks and new files' owners use: the effective uid,
    /// unless setfsuid moved it.
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
}

impl Credentials {
    /// Every user id `uid`, every group id `gid`.
    pub fn new(uid: u32, gid: u32) -> Credentials {
        Credentials { uid, euid: uid, suid: uid, fsuid: uid, gid, egid: gid, sgid: gid, fsgid: gid }
    }
}

/// Capability sets (bit n: capability n): what capget reports and capset
/// changes. File permission checks (`vfs::perm`) and SCM_CREDENTIALS look at
/// the effective set; other checks still look at the effective uid. The
/// bounding set limits what an exec gives root (an OCI process's
/// `capabilities.bounding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub bounding: u64,
    /// PR_SET_KEEPCAPS: giving up uid 0 keeps the permitted set (until exec).
    pub keep: bool,
    /// Kept across exec by a process that is not root (PR_CAP_AMBIENT); always
    /// within the permitted and inheritable sets.
    pub ambient: u64,
}

/// A process's address-space flags (Linux's MMF_*) that prctl sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmFlags(pub u32);

impl MmFlags {
    /// PR_SET_THP_DISABLE: kept and reported (the memory file has no huge pages).
    pub const THP_DISABLED: MmFlags = MmFlags(1);
    /// PR_SET_MDWE's MDWE_REFUSE_EXEC_GAIN: no writable and executable
    /// memory, and no memory made executable later.
    pub const MDWE: MmFlags = MmFlags(2);
    /// MDWE_NO_INHERIT: children and new programs start without MDWE.
    pub const MDWE_NO_INHERIT: MmFlags = MmFlags(4);

    pub fn contains(self, f: MmFlags) -> bool {
        self.0 & f.0 == f.0
    }

    /// PR_GET_MDWE's bits (MDWE_REFUSE_EXEC_GAIN 1, MDWE_NO_INHERIT 2).
    pub fn mdwe_bits(self) -> u64 {
        u64::from(self.0 >> 1 & 3)
    }

    /// PR_SET_MDWE's bits as flags: NO_INHERIT only with REFUSE_EXEC_GAIN.
    pub fn from_mdwe_bits(bits: u64) -> Option<MmFlags> {
        match bits {
            0 | 1 | 3 => Some(MmFlags((bits as u32) << 1)),
            _ => None,
        }
    }

    /// What a child or a new program gets (Linux's mmf_init_flags).
    fn inherited(self) -> MmFlags {
        if self.contains(MmFlags::MDWE_NO_INHERIT) { MmFlags(self.0 & !(MmFlags::MDWE.0 | MmFlags::MDWE_NO_INHERIT.0)) } else { self }
    }
}

/// Every capability up to CAP_CHECKPOINT_RESTORE (40).
pub const CAP_FULL: u64 = (1 << 41) - 1;

impl Capabilities {
    /// A first process's sets: everything to root, nothing to others.
    pub fn for_euid(euid: u32) -> Capabilities {
        let all = if euid == 0 { CAP_FULL } else { 0 };
        Capabilities { effective: all, permitted: all, inheritable: 0, bounding: CAP_FULL, keep: false, ambient: 0 }
    }

    /// A process's sets in the user namespace it has just made or joined: every
    /// capability there (Linux's set_cred_user_ns).
    pub fn in_new_user_namespace() -> Capabilities {
        Capabilities { effective: CAP_FULL, permitted: CAP_FULL, inheritable: 0, bounding: CAP_FULL, keep: false, ambient: 0 }
    }

    /// What exec gives (no file capabilities): root (the uid `root` of the user
    /// namespace, if it maps one) gets its bounding and inheritable sets,
    /// others nothing; the ambient set comes on top (Linux's
    /// cap_bprm_creds_from_file).
    pub fn on_exec(self, euid: u32, root: Option<u32>) -> Capabilities {
        let is_root = Some(euid) == root;
        let permitted = if is_root { self.bounding | self.inheritable } else { 0 } | self.ambient;
        let effective = if is_root { permitted } else { self.ambient };
        Capabilities { effective, permitted, keep: false, ..self }
    }

    /// Linux's rules when the ids change: losing euid root clears the effective
    /// set, losing uid root everywhere the permitted one (unless
    /// PR_SET_KEEPCAPS), regaining euid root restores the effective set from
    /// the permitted one. Root is the user namespace's uid 0 (`root`).
    pub fn after_setuid(&mut self, old: &Credentials, new: &Credentials, root: Option<u32>) {
        let Some(root) = root else { return };
        let had_root = [old.uid, old.euid, old.suid].contains(&root);
        let has_root = [new.uid, new.euid, new.suid].contains(&root);
        if had_root && !has_root {
            if !self.keep {
                self.permitted = 0;
            }
            self.effective = 0;
            // Even with PR_SET_KEEPCAPS: programs from before ambient
            // capabilities expect the next exec to drop them.
            self.ambient = 0;
        }
        if old.euid == root && new.euid != root {
            self.effective = 0;
        }
        if old.euid != root && new.euid == root {
            self.effective = self.permitted;
        }
    }

    /// setfsuid's effect (Linux's cap_task_fix_setuid, LSM_SETID_FS): an fsuid
    /// leaving root drops the file-system capabilities from the effective set,
    /// one coming back to root raises those permitted.
    pub fn after_setfsuid(&mut self, old_fsuid: u32, new_fsuid: u32, root: Option<u32>) {
        // CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID, LINUX_IMMUTABLE,
        // MKNOD, MAC_OVERRIDE.
        const FS_CAPS: u64 = 0x1f | 1 << 9 | 1 << 27 | 1 << 32;
        let Some(root) = root else { return };
        if old_fsuid == root && new_fsuid != root {
            self.effective &= !FS_CAPS;
        }
        if old_fsuid != root && new_fsuid == root {
            self.effective |= self.permitted & FS_CAPS;
        }
    }
}

/// Linux's defaults for a fresh init process (as `prlimit` shows on a typical host).
pub fn default_rlimits() -> [Rlimit; RLIMIT_COUNT] {
    let inf = Rlimit { cur: RLIM_INFINITY, max: RLIM_INFINITY };
    let mut r = [inf; RLIMIT_COUNT];
    r[RLIMIT_STACK] = Rlimit { cur: 8 << 20, max: RLIM_INFINITY };
    r[RLIMIT_CORE] = Rlimit { cur: 0, max: RLIM_INFINITY };
    r[RLIMIT_NPROC] = Rlimit { cur: 63_459, max: 63_459 };
    r[RLIMIT_NOFILE] = Rlimit { cur: 1024, max: 1_048_576 };
    r[RLIMIT_MEMLOCK] = Rlimit { cur: 8 << 20, max: 8 << 20 };
    r[11] = Rlimit { cur: 63_459, max: 63_459 }; // SIGPENDING
    r[12] = Rlimit { cur: 819_200, max: 819_200 }; // MSGQUEUE
    r[RLIMIT_NICE] = Rlimit { cur: 0, max: 0 };
    r[RLIMIT_RTPRIO] = Rlimit { cur: 0, max: 0 };
    r
}

/// CPU time, as Linux splits it: user (the app's own code, measured on its stub
/// threads) and system (the Sentry's work on its behalf, measured on the task's
/// host thread).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct CpuTimes {
    pub user_ns: u64,
    pub sys_ns: u64,
}

impl CpuTimes {
    pub fn total(self) -> u64 {
        self.user_ns + self.sys_ns
    }
}

impl std::ops::Add for CpuTimes {
    type Output = CpuTimes;
    fn add(self, o: CpuTimes) -> CpuTimes {
        CpuTimes { user_ns: self.user_ns + o.user_ns, sys_ns: self.sys_ns + o.sys_ns }
    }
}

impl std::ops::AddAssign for CpuTimes {
    fn add_assign(&mut self, o: CpuTimes) {
        *self = *self + o;
    }
}

/// Page faults and context switches, as getrusage and /proc report them
/// (Linux's min_flt, maj_flt and nvcsw). A major fault read a host file's bytes
/// into its page cache. nivcsw stays 0: the Sentry never preempts a task, only
/// the host preempts its threads, which the Sentry does not see.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct RusageCounts {
    /// Page faults the Sentry resolved for the app's accesses from memory.
    pub min_flt: u64,
    /// Those it resolved by reading a host file.
    pub maj_flt: u64,
    /// Times the task slept (`Waiter`).
    pub nvcsw: u64,
}

impl std::ops::Add for RusageCounts {
    type Output = RusageCounts;
    fn add(self, o: RusageCounts) -> RusageCounts {
        RusageCounts { min_flt: self.min_flt + o.min_flt, maj_flt: self.maj_flt + o.maj_flt, nvcsw: self.nvcsw + o.nvcsw }
    }
}

impl std::ops::AddAssign for RusageCounts {
    fn add_assign(&mut self, o: RusageCounts) {
        *self = *self + o;
    }
}

/// `RusageCounts` banked from exited threads, added to without a lock.
#[derive(Default)]
pub struct RusageCounters {
    min_flt: AtomicU64,
    maj_flt: AtomicU64,
    nvcsw: AtomicU64,
}

impl RusageCounters {
    pub fn get(&self) -> RusageCounts {
        RusageCounts { min_flt: self.min_flt.load(Ordering::Relaxed), maj_flt: self.maj_flt.load(Ordering::Relaxed), nvcsw: self.nvcsw.load(Ordering::Relaxed) }
    }

    pub fn add(&self, c: RusageCounts) {
        self.min_flt.fetch_add(c.min_flt, Ordering::Relaxed);
        self.maj_flt.fetch_add(c.maj_flt, Ordering::Relaxed);
        self.nvcsw.fetch_add(c.nvcsw, Ordering::Relaxed);
    }
}

/// CPU accounting a process keeps beyond its live threads.
#[derive(Clone, Copy, Default, Debug)]
pub struct GroupCpu {
    /// CPU time of threads that have exited.
    pub dead: CpuTimes,
    /// Everything reaped children (and their reaped children) used.
    pub children: CpuTimes,
    /// Reaped children's (and their reaped children's) faults and switches.
    pub children_rusage: RusageCounts,
    /// The largest resident size, in KiB, of this process and of reaped children.
    pub maxrss_kib: u64,
    pub children_maxrss_kib: u64,
}

/// I/O accounting (/proc/[pid]/io): bytes the read and write calls moved and how
/// many calls there were, as Linux's task_io_accounting counts them (rchar/wchar
/// and syscr/syscw; storage traffic, read_bytes/write_bytes, is not kept: the
/// sandbox's files are memory or the host's page cache).
#[derive(Default)]
pub struct IoCounters {
    pub rchar: AtomicU64,
    pub wchar: AtomicU64,
    pub syscr: AtomicU64,
    pub syscw: AtomicU64,
}

impl IoCounters {
    pub fn read_call(&self, bytes: usize) {
        self.rchar.fetch_add(bytes as u64, Ordering::Relaxed);
        self.syscr.fetch_add(1, Ordering::Relaxed);
    }

    pub fn write_call(&self, bytes: usize) {
        self.wchar.fetch_add(bytes as u64, Ordering::Relaxed);
        self.syscw.fetch_add(1, Ordering::Relaxed);
    }

    /// The four counts (rchar, wchar, syscr, syscw).
    pub fn get(&self) -> [u64; 4] {
        [&self.rchar, &self.wchar, &self.syscr, &self.syscw].map(|c| c.load(Ordering::Relaxed))
    }

    /// Adds another's counts (an exited thread's into its group's).
    pub fn add(&self, other: [u64; 4]) {
        for (c, v) in [&self.rchar, &self.wchar, &self.syscr, &self.syscw].into_iter().zip(other) {
            c.fetch_add(v, Ordering::Relaxed);
        }
    }
}

/// What a parent's wait may report about a stopped or continued child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReport {
    Stopped(u32),
    Continued,
}

/// The part of a thread group guarded by its state lock. Lock order: a parent's
/// state before a child's; never held while taking the PID table.
pub struct TgState {
    pub parent: Option<Arc<ThreadGroup>>,
    pub children: Vec<Arc<ThreadGroup>>,
    pub threads: Vec<Arc<Thread>>,
    /// Exited threads that keep their ids (Linux's EXIT_ZOMBIE threads), which
    /// /proc shows as Z: traced threads other than the leader, until their
    /// tracer reaps them (the group is no zombie before they go), and a leader
    /// that exited before the rest, until the group dies or an exec takes its id.
    pub zombie_threads: Vec<Arc<Thread>>,
    /// Its last live thread exited and did what the group's death does (`exit::group_died`);
    /// it becomes a zombie once only the leader, if any, is left in `zombie_threads`.
    pub group_dead: bool,
    pub pgid: i32,
    pub sid: i32,
    /// Set when the group is dying (exit_group or a fatal signal): every thread exits.
    pub exiting: Option<ExitStatus>,
    /// Set once the last thread is gone: the parent may reap it.
    pub zombie: Option<ExitStatus>,
    /// Group stop (SIGSTOP and friends) in force.
    pub stopped: bool,
    /// The signal of the last group stop (Linux's group_exit_code while
    /// stopped), which a tracee's PTRACE_EVENT_STOP reports while it is in force.
    pub stop_signal: u32,
    /// Counts the group stops: a traced thread takes part in each once, in a
    /// stop for its tracer, and then runs as its tracer lets it (`Ptrace::group_stop_seen`).
    pub stop_seq: u64,
    /// Counts the SIGCONTs sent: a stop signal taken from the queue before
    /// one does not stop the group after it (Linux takes the signal and starts
    /// the stop under one lock, which SIGCONT's generation takes too).
    pub continues: u64,
    /// A stop or continue the parent has not yet collected with wait.
    pub report: Option<StopReport>,
    /// A SIGCONT ended a stop and the parent is not yet told: the first thread
    /// to look at its signals tells it (Linux's SIGNAL_CLD_CONTINUED, which
    /// get_signal acts on); a group exit drops it.
    pub continued_untold: bool,
    /// The threads this group traces (ptrace), whose stops its waits report.
    pub tracees: Vec<Arc<Thread>>,
    /// The tracer its leader exited traced by. Unless that is its parent, the
    /// zombie group goes to the tracer first, and to the parent only once the
    /// tracer reaped it or is gone (Linux's EXIT_TRACE).
    pub exit_tracer: Option<std::sync::Weak<ThreadGroup>>,
    /// PR_SET_CHILD_SUBREAPER.
    pub subreaper: bool,
    /// The thread in execve, which waits for its siblings to leave.
    pub execer: Option<Arc<Thread>>,
    /// Set by the child's exec or exit; the vfork parent waits for it.
    pub vfork_done: bool,
}

impl TgState {
    /// Whether another thread's execve is emptying the group, which `thread`
    /// must leave quietly (Linux's zap_other_threads).
    pub fn exec_zaps(&self, thread: &Arc<Thread>) -> bool {
        self.execer.as_ref().is_some_and(|t| !Arc::ptr_eq(t, thread))
    }

    /// Takes `child` out of the children; false if it was not among them.
    pub fn take_child(&mut self, child: &Arc<ThreadGroup>) -> bool {
        let Some(at) = self.children.iter().position(|c| Arc::ptr_eq(c, child)) else { return false };
        self.children.remove(at);
        true
    }

    /// Whether no traced thread's zombie is left: only the leader's, if any,
    /// which goes with its group.
    pub fn traced_zombies_gone(&self, tgid: i32) -> bool {
        self.zombie_threads.iter().all(|t| t.tid() == tgid)
    }

    /// Whether `th` exited and is among the zombies.
    pub fn is_zombie_thread(&self, th: &Thread) -> bool {
        self.zombie_threads.iter().any(|z| std::ptr::eq(Arc::as_ptr(z), th))
    }
}

/// Signal state shared by the whole group.
pub struct GroupSignals {
    pub actions: [KernelSigaction; 64],
    /// Process-directed pending signals.
    pub pending: SigQueue,
}

pub struct ThreadGroup {
    pub tgid: i32,
    state: Mutex<TgState>,
    sig: Mutex<GroupSignals>,
    pub creds: Mutex<Credentials>,
    /// Supplementary groups.
    pub groups: Mutex<Vec<u32>>,
    pub rlimits: Mutex<[Rlimit; RLIMIT_COUNT]>,
    /// The executable's path, as /proc/self/exe shows it.
    pub exe: Mutex<String>,
    /// When its first thread was made, in the sandbox's uptime: its leader's
    /// start time (/proc/[pid]/stat's starttime), which an exec keeps.
    pub start_ns: std::sync::atomic::AtomicI64,
    /// PR_SET_DUMPABLE.
    pub dumpable: AtomicI32,
    /// PR_SET_NO_NEW_PRIVS.
    pub no_new_privs: AtomicI32,
    /// `MmFlags`: what Linux keeps in the address space's flags, which fork and
    /// exec carry over.
    mm_flags: std::sync::atomic::AtomicU32,
    /// The membarrier commands the process registered for (its address space's, so a
    /// fork or exec starts without).
    pub membarrier: std::sync::atomic::AtomicU32,
    /// personality(2)'s execution domain and flags: kept and reported.
    pub personality: std::sync::atomic::AtomicU32,
    /// CPU time of exited threads and reaped children. Leaf lock.
    pub cpu: Mutex<GroupCpu>,
    /// alarm/setitimer and timer_create timers. Leaf lock.
    pub timers: Mutex<crate::time::process_timers::ProcessTimers>,
    /// Signalfds of this process wait here: signal delivery notifies it.
    pub signalfd_waiters: Arc<crate::vfs::WaitQueue>,
    /// Its pidfds wait here: notified when it becomes a zombie and when it is reaped.
    pub exit_waiters: crate::vfs::WaitQueue,
    /// Set once its parent reaped it (or it was reaped at once) and its id is free.
    reaped: std::sync::atomic::AtomicBool,
    /// Its leader's seccomp mode number and filter count when it exited, which a
    /// zombie's /proc status shows: the filters themselves go at exit. Leaf lock.
    pub exit_seccomp: Mutex<(i32, usize)>,
    /// Capability sets. Leaf lock.
    pub caps: Mutex<Capabilities>,
    /// The user namespace its credentials and capabilities belong to (Linux's
    /// cred->user_ns). Leaf lock.
    user_ns: Mutex<Arc<super::UserNamespace>>,
    /// The controlling terminal (inherited by fork, dropped by setsid). Leaf lock.
    pub tty: Mutex<Option<Arc<crate::tty::Terminal>>>,
    /// I/O of its exited threads (live ones count in their `Thread::io`).
    pub dead_io: IoCounters,
    /// Faults and switches of its exited threads, banked with `dead_io`.
    pub dead_rusage: RusageCounters,
    /// The signal the parent gets when this process ends (clone's CSIGNAL; 0: none).
    /// A child with another signal than SIGCHLD is a "clone" child for wait.
    /// SIGCHLD again once it has another parent, or a thread other than its
    /// leader execs (Linux's reparent_leader and de_thread).
    pub exit_signal: std::sync::atomic::AtomicU32,
    /// How many times it exec'd (Linux's self_exec_id).
    pub exec_id: std::sync::atomic::AtomicU32,
    /// Its parent's `exec_id` when it was made: a parent that exec'd since gets
    /// SIGCHLD, not another exit signal meant for the program it was.
    pub parent_exec_id: std::sync::atomic::AtomicU32,
    /// The container it belongs to (inherited by fork).
    pub container: Arc<super::Container>,
    /// The PID namespace it is in: its container's, or one nested in it.
    pub pid_ns: Arc<super::PidNamespace>,
}

impl ThreadGroup {
    pub fn new(tgid: i32, parent: Option<Arc<ThreadGroup>>, creds: Credentials, exe: String, container: Arc<super::Container>) -> ThreadGroup {
        ThreadGroup {
            tgid,
            state: Mutex::new(TgState {
                parent,
                children: Vec::new(),
                tracees: Vec::new(),
                exit_tracer: None,
                threads: Vec::new(),
                zombie_threads: Vec::new(),
                group_dead: false,
                pgid: tgid,
                sid: tgid,
                exiting: None,
                zombie: None,
                stopped: false,
                stop_signal: 0,
                stop_seq: 0,
                continues: 0,
                report: None,
                continued_untold: false,
                subreaper: false,
                execer: None,
                vfork_done: false,
            }),
            sig: Mutex::new(GroupSignals { actions: [KernelSigaction::zeroed(); 64], pending: SigQueue::default() }),
            creds: Mutex::new(creds),
            groups: Mutex::new(Vec::new()),
            rlimits: Mutex::new(default_rlimits()),
            exe: Mutex::new(exe),
            dumpable: AtomicI32::new(1),
            no_new_privs: AtomicI32::new(0),
            mm_flags: Default::default(),
            membarrier: Default::default(),
            personality: std::sync::atomic::AtomicU32::new(0),
            exit_signal: std::sync::atomic::AtomicU32::new(rvisor_abi::consts::SIGCHLD),
            exec_id: std::sync::atomic::AtomicU32::new(0),
            parent_exec_id: std::sync::atomic::AtomicU32::new(0),
            timers: Mutex::default(),
            cpu: Mutex::default(),
            tty: Mutex::new(None),
            caps: Mutex::new(Capabilities::for_euid(creds.euid)),
            user_ns: Mutex::new(super::UserNamespace::initial()),
            signalfd_waiters: Arc::default(),
            exit_waiters: Default::default(),
            dead_io: IoCounters::default(),
            dead_rusage: RusageCounters::default(),
            reaped: std::sync::atomic::AtomicBool::new(false),
            exit_seccomp: Mutex::new((0, 0)),
            start_ns: std::sync::atomic::AtomicI64::new(0),
            pid_ns: container.pid_ns.clone(),
            container,
        }
    }

    /// A child made by fork, in PID namespace `pid_ns`: same credentials,
    /// limits, dispositions, groups.
    pub fn forked(&self, tgid: i32, parent: Arc<ThreadGroup>, pid_ns: Arc<super::PidNamespace>) -> ThreadGroup {
        let tg = ThreadGroup { pid_ns, ..ThreadGroup::new(tgid, Some(parent), self.creds(), self.exe.lock().unwrap_or_else(|e| e.into_inner()).clone(), self.container.clone()) };
        {
            let mine = self.state();
            let mut st = tg.state();
            st.pgid = mine.pgid;
            st.sid = mine.sid;
        }
        tg.sig().actions = self.sig().actions;
        *tg.caps.lock().unwrap_or_else(|e| e.into_inner()) = *self.caps.lock().unwrap_or_else(|e| e.into_inner());
        *tg.user_ns.lock().unwrap_or_else(|e| e.into_inner()) = self.user_ns();
        *tg.tty.lock().unwrap_or_else(|e| e.into_inner()) = self.tty.lock().unwrap_or_else(|e| e.into_inner()).clone();
        *tg.groups.lock().unwrap_or_else(|e| e.into_inner()) = self.groups.lock().unwrap_or_else(|e| e.into_inner()).clone();
        *tg.rlimits.lock().unwrap_or_else(|e| e.into_inner()) = self.rlimit_all();
        tg.no_new_privs.store(self.no_new_privs.load(Ordering::Relaxed), Ordering::Relaxed);
        tg.mm_flags.store(self.mm_flags().inherited().0, Ordering::Relaxed);
        tg.dumpable.store(self.dumpable.load(Ordering::Relaxed), Ordering::Relaxed);
        tg.personality.store(self.personality.load(Ordering::Relaxed), Ordering::Relaxed);
        tg
    }

    pub fn mm_flags(&self) -> MmFlags {
        MmFlags(self.mm_flags.load(Ordering::Relaxed))
    }

    pub fn set_mm_flag(&self, flag: MmFlags, on: bool) {
        if on {
            self.mm_flags.fetch_or(flag.0, Ordering::Relaxed);
        } else {
            self.mm_flags.fetch_and(!flag.0, Ordering::Relaxed);
        }
    }

    /// exec keeps the address-space flags, as fork does.
    pub fn exec_mm_flags(&self) {
        self.mm_flags.store(self.mm_flags().inherited().0, Ordering::Relaxed);
    }

    pub fn state(&self) -> MutexGuard<'_, TgState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn sig(&self) -> MutexGuard<'_, GroupSignals> {
        self.sig.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn creds(&self) -> Credentials {
        *self.creds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether capability `cap` is in the effective set: the process holds it
    /// in its own user namespace (Linux's ns_capable(current_user_ns())).
    pub fn capable(&self, cap: u32) -> bool {
        self.caps.lock().unwrap_or_else(|e| e.into_inner()).effective >> cap & 1 != 0
    }

    /// Whether it holds `cap` over what user namespace `ns` owns (a mount,
    /// network, UTS or IPC namespace, another process).
    pub fn capable_in(&self, ns: &Arc<super::UserNamespace>, cap: u32) -> bool {
        let caps = self.caps.lock().unwrap_or_else(|e| e.into_inner()).effective;
        super::user_ns::capable_in(&self.user_ns(), self.creds().euid, caps, ns, cap)
    }

    /// The user namespace its credentials belong to.
    pub fn user_ns(&self) -> Arc<super::UserNamespace> {
        self.user_ns.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Moves it into user namespace `ns`, with every capability there.
    pub fn enter_user_ns(&self, ns: Arc<super::UserNamespace>) {
        *self.user_ns.lock().unwrap_or_else(|e| e.into_inner()) = ns;
        *self.caps.lock().unwrap_or_else(|e| e.into_inner()) = Capabilities::in_new_user_namespace();
        self.publish_growth_limits();
    }

    /// Who this process is to file permission checks: its effective ids,
    /// supplementary groups and effective capabilities (in its user namespace).
    fn rlimit_all(&self) -> [Rlimit; RLIMIT_COUNT] {
        *self.rlimits.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn rlimit(&self, r: usize) -> Rlimit {
        self.rlimit_all()[r]
    }

    /// What bounds its stack's growth: its RLIMIT_STACK, RLIMIT_AS, and
    /// RLIMIT_MEMLOCK unless it has CAP_IPC_LOCK.
    pub fn growth_limits(&self) -> crate::mm::GrowthLimits {
        let r = self.rlimit_all();
        let memlock = if self.capable(rvisor_abi::consts::CAP_IPC_LOCK) { RLIM_INFINITY } else { r[RLIMIT_MEMLOCK].cur };
        crate::mm::GrowthLimits { stack: r[RLIMIT_STACK].cur, address_space: r[RLIMIT_AS].cur, memlock }
    }

    /// Hands its `growth_limits` to the address spaces its threads use, after
    /// a change of limits or capabilities: faults grow the stack on their own.
    pub fn publish_growth_limits(&self) {
        let limits = self.growth_limits();
        for th in self.threads() {
            if let Some(res) = th.resources() {
                res.mm.set_growth_limits(limits);
            }
        }
    }

    pub fn action(&self, signo: u32) -> KernelSigaction {
        self.sig().actions[signo as usize - 1]
    }

    pub fn threads(&self) -> Vec<Arc<Thread>> {
        self.state().threads.clone()
    }

    /// How many threads /proc counts: live ones and zombies not yet reaped (Linux's nr_threads).
    pub fn nr_threads(&self) -> usize {
        let st = self.state();
        st.threads.len() + st.zombie_threads.len()
    }

    pub fn parent(&self) -> Option<Arc<ThreadGroup>> {
        self.state().parent.clone()
    }

    /// CPU time of the whole process so far (live and exited threads).
    pub fn cpu_times(&self) -> CpuTimes {
        let dead = self.cpu.lock().unwrap_or_else(|e| e.into_inner()).dead;
        self.threads().iter().fold(dead, |acc, t| acc + t.cpu_times())
    }

    /// Waits (a host wait, not a task's) until the process is a zombie, or the
    /// deadline: its exit status, if it got there.
    pub fn wait_zombie(&self, deadline: Option<std::time::Instant>) -> Option<ExitStatus> {
        struct Wake(std::sync::mpsc::Sender<()>);
        impl crate::vfs::WaitCallback for Wake {
            fn wake(self: Arc<Self>, _events: u32) {
                let _ = self.0.send(());
            }
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let cb: Arc<dyn crate::vfs::WaitCallback> = Arc::new(Wake(tx));
        self.exit_waiters.register_callback(cb.clone());
        let status = loop {
            if let Some(s) = self.state().zombie {
                break Some(s);
            }
            let woken = match deadline {
                Some(d) => rx.recv_timeout(d.saturating_duration_since(std::time::Instant::now())).is_ok(),
                None => rx.recv().is_ok(),
            };
            if !woken {
                break self.state().zombie;
            }
        };
        self.exit_waiters.unregister_callback(&cb);
        status
    }

    pub fn is_reaped(&self) -> bool {
        self.reaped.load(Ordering::Acquire)
    }

    /// It has been reaped (see `PidNamespace::release_group`): pidfds hang up.
    pub fn mark_reaped(&self) {
        self.reaped.store(true, Ordering::Release);
        self.exit_waiters.notify();
    }

    /// The whole process's I/O counts: exited threads' and live ones'.
    pub fn io(&self) -> [u64; 4] {
        let st = self.state();
        let mut sum = self.dead_io.get();
        for th in &st.threads {
            for (s, v) in sum.iter_mut().zip(th.io.get()) {
                *s += v;
            }
        }
        sum
    }

    /// The whole process's faults and switches: exited threads' and live ones'.
    pub fn rusage_counts(&self) -> RusageCounts {
        let st = self.state();
        st.threads.iter().fold(self.dead_rusage.get(), |sum, th| sum + th.rusage_counts())
    }

    /// Interrupts every thread of the group (the group stops, continues, dies...).
    pub fn wake_all(&self) {
        for th in self.threads() {
            th.interrupt();
        }
    }

    /// Wakes the group's threads that wait in the Sentry: a child or tracee changed
    /// state. One running app code is left alone: kicking it cost a parent that
    /// had not reached its wait4 yet a trap for nothing (any SIGCHLD it takes
    /// interrupts it on its own).
    pub fn wake_waiters(&self) {
        for th in self.threads() {
            th.wake();
        }
    }
}

/// Per-thread signal state, guarded by the thread's signal lock (a leaf).
#[derive(Default)]
pub struct ThreadSignals {
    /// Blocked signals, bit n-1 for signal n.
    pub mask: u64,
    pub pending: SigQueue,
    pub altstack: SigAltStack,
    /// The mask to restore when a handler returns after sigsuspend/ppoll.
    pub saved_mask: Option<u64>,
    /// PR_SET_PDEATHSIG.
    pub pdeathsig: u32,
}

/// A thread's scheduling settings (nice value, policy and priority, affinity):
/// the host schedules its threads, so these are only kept and reported.
#[derive(Clone, Copy, Debug)]
pub struct SchedAttrs {
    pub nice: i32,
    pub policy: i32,
    pub priority: i32,
    /// CPU mask (bit n: CPU n); all bits set until sched_setaffinity.
    pub affinity: u64,
    /// The I/O priority ioprio_set gave (class << 13 | hint << 3 | level); 0
    /// (IOPRIO_CLASS_NONE: follow the nice value) until then.
    pub ioprio: u16,
    /// sched_setattr's utilization clamps (0 and 1024 until set).
    pub util_min: u32,
    pub util_max: u32,
    /// PR_SET_TIMERSLACK's value, and what 0 restores (the creator's value
    /// when the thread was made).
    pub timer_slack_ns: u64,
    pub default_timer_slack_ns: u64,
}

impl Default for SchedAttrs {
    fn default() -> Self {
        SchedAttrs { nice: 0, policy: 0, priority: 0, affinity: u64::MAX, ioprio: 0, util_min: 0, util_max: 1024, timer_slack_ns: 50_000, default_timer_slack_ns: 50_000 }
    }
}

/// One thread, as other tasks see it: the handle signals and wake-ups go through.
pub struct Thread {
    tid: AtomicI32,
    pub tg: Arc<ThreadGroup>,
    pub waiter: Waiter,
    sig: Mutex<ThreadSignals>,
    interrupter: Mutex<Option<Arc<dyn Interrupter>>>,
    /// The name prctl(PR_SET_NAME) sets and /proc shows (comm).
    pub comm: Mutex<[u8; 16]>,
    /// When it was made, in the sandbox's uptime (/proc/[pid]/task/[tid]/stat's
    /// starttime); an exec from it takes the leader's (Linux's de_thread).
    pub start_ns: std::sync::atomic::AtomicI64,
    /// Made readable by `interrupt`, for a task blocked in a host poll; created
    /// the first time the task waits on a host descriptor.
    host_wake: std::sync::OnceLock<nix::sys::eventfd::EventFd>,
    /// App CPU time of stub threads this thread ran on before (exec changes it).
    pub cpu_base_ns: std::sync::atomic::AtomicU64,
    /// The host thread running the task (its CPU clock is the task's system
    /// time); 0 before it starts and after it ends.
    pub host_tid: AtomicI32,
    /// Leaf lock.
    sched: Mutex<SchedAttrs>,
    /// What the task uses, for others to inspect (/proc/[pid]/...). Leaf lock.
    resources: Mutex<Option<Resources>>,
    /// Set while the task may be running app code: only then does `interrupt`
    /// need to kick it out through the platform (a costly host signal and stop).
    pub running_app: std::sync::atomic::AtomicBool,
    /// Its read and write calls (/proc/[pid]/task/[tid]/io).
    pub io: IoCounters,
    /// Page faults the Sentry resolved for it, minor and major (its switches:
    /// `waiter`).
    pub min_flt: AtomicU64,
    pub maj_flt: AtomicU64,
    /// Its seccomp mode (another thread may set it: TSYNC). Leaf lock; `seccomp_on`
    /// spares the syscall path the lock while the mode is Disabled.
    seccomp: Mutex<super::seccomp::Mode>,
    seccomp_on: std::sync::atomic::AtomicBool,
    /// Its ptrace state; `traced` and `syscall_stops` spare the signal and
    /// syscall paths the lock while it is not traced.
    pub(super) ptrace: Mutex<super::ptrace::Ptrace>,
    pub(super) traced: std::sync::atomic::AtomicBool,
    pub(super) syscall_stops: std::sync::atomic::AtomicBool,
    /// It is in a group stop (Linux's TASK_STOPPED): it began the stop, or
    /// found itself held by it on its way back to app code, until the stop is
    /// over for it. A tracer's attach waits only for such a thread to trap (a
    /// vfork parent, say, takes its part later).
    pub(crate) in_group_stop: std::sync::atomic::AtomicBool,
    /// Its Landlock domain (Linux keeps it in the thread's credentials); set
    /// only by the thread itself. A leaf lock.
    landlock: Mutex<Option<Arc<crate::landlock::Domain>>>,
    /// Set under the futex table's lock once the exiting thread handed on the PI
    /// futexes it owned: no FUTEX_LOCK_PI may wait on it after that (ESRCH).
    pub(crate) pi_exited: std::sync::atomic::AtomicBool,
    /// Its NUMA memory policy (set_mempolicy), None for the default; set only
    /// by the thread itself. A leaf lock.
    mempolicy: Mutex<Option<Arc<crate::mm::mempolicy::MemPolicy>>>,
}

/// A task's address space, descriptor table and file-system context.
#[derive(Clone)]
pub struct Resources {
    pub mm: Arc<crate::mm::MemoryManager>,
    pub fds: Arc<crate::vfs::FdTable>,
    pub fs: Arc<crate::vfs::FsContext>,
    pub ns: super::Namespaces,
}

impl Thread {
    /// A thread made at `start_ns` of the sandbox's uptime; the leader's
    /// start is its group's.
    pub fn new(tid: i32, tg: Arc<ThreadGroup>, comm: [u8; 16], load: Arc<super::loadavg::LoadAvg>, start_ns: i64) -> Thread {
        if tid == tg.tgid {
            tg.start_ns.store(start_ns, Ordering::Relaxed);
        }
        Thread {
            tid: AtomicI32::new(tid),
            tg,
            waiter: Waiter::new(load),
            sig: Mutex::new(ThreadSignals::default()),
            interrupter: Mutex::new(None),
            comm: Mutex::new(comm),
            start_ns: std::sync::atomic::AtomicI64::new(start_ns),
            host_wake: std::sync::OnceLock::new(),
            resources: Mutex::new(None),
            cpu_base_ns: std::sync::atomic::AtomicU64::new(0),
            host_tid: AtomicI32::new(0),
            sched: Mutex::default(),
            running_app: std::sync::atomic::AtomicBool::new(false),
            io: IoCounters::default(),
            min_flt: AtomicU64::new(0),
            maj_flt: AtomicU64::new(0),
            seccomp: Mutex::default(),
            seccomp_on: std::sync::atomic::AtomicBool::new(false),
            ptrace: Mutex::default(),
            traced: std::sync::atomic::AtomicBool::new(false),
            syscall_stops: std::sync::atomic::AtomicBool::new(false),
            in_group_stop: std::sync::atomic::AtomicBool::new(false),
            landlock: Mutex::new(None),
            pi_exited: std::sync::atomic::AtomicBool::new(false),
            mempolicy: Mutex::new(None),
        }
    }

    /// Who asks, for file-system checks: the process's file-system ids,
    /// groups and capabilities, and the thread's Landlock domain.
    pub fn fs_creds(&self) -> crate::vfs::perm::FsCreds {
        let c = self.tg.creds();
        let caps = self.tg.caps.lock().unwrap_or_else(|e| e.into_inner()).effective;
        // Every path walk asks: the first namespace costs no reference count.
        let ns = {
            let ns = self.tg.user_ns.lock().unwrap_or_else(|e| e.into_inner());
            (!ns.is_initial()).then(|| ns.clone())
        };
        crate::vfs::perm::FsCreds { uid: c.fsuid, gid: c.fsgid, groups: self.tg.groups.lock().unwrap_or_else(|e| e.into_inner()).clone(), caps, ns, landlock: self.landlock() }
    }

    /// Sleeps on the thread's waiter until `ready` holds, `interrupted` does
    /// (ERESTARTSYS) or `deadline` passes (ETIMEDOUT). `Task::block_until` is
    /// the usual way in; this one serves waits made for a thread from code
    /// that has no `Task` (the Sentry's own accesses to user memory).
    pub fn block(&self, deadline: Option<std::time::Instant>, interrupted: impl Fn() -> bool, mut ready: impl FnMut() -> bool) -> rvisor_abi::SysResult<()> {
        loop {
            let seq = self.waiter.seq();
            if ready() {
                return Ok(());
            }
            if interrupted() {
                return Err(rvisor_abi::errno!(ERESTARTSYS));
            }
            if !self.waiter.wait(seq, deadline) {
                return if ready() { Ok(()) } else { Err(rvisor_abi::errno!(ETIMEDOUT)) };
            }
        }
    }

    /// Whether the thread is dying: its group is exiting, SIGKILL is pending,
    /// or a signal is that will kill the process (unblocked, its default
    /// action, which terminates), as Linux turns such a signal into SIGKILL
    /// when it is sent (unless the thread is traced).
    pub fn fatal_signal_pending(&self) -> bool {
        use super::signals::{default_action, sigbit, DefaultAction, SIG_DFL};
        if self.tg.state().exiting.is_some() {
            return true;
        }
        let (blocked, mine) = {
            let s = self.sig();
            (s.mask, s.pending.mask)
        };
        let pending = mine | self.tg.sig().pending.mask;
        if pending & sigbit(rvisor_abi::consts::SIGKILL) != 0 {
            return true;
        }
        !self.is_traced()
            && (1..=64u32).filter(|&s| pending & !blocked & sigbit(s) != 0).any(|s| {
                self.tg.action(s).handler == SIG_DFL && matches!(default_action(s), DefaultAction::Terminate | DefaultAction::Core)
            })
    }

    /// The thread's Landlock domain, if it restricted itself.
    pub fn landlock(&self) -> Option<Arc<crate::landlock::Domain>> {
        self.landlock.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_landlock(&self, domain: Option<Arc<crate::landlock::Domain>>) {
        *self.landlock.lock().unwrap_or_else(|e| e.into_inner()) = domain;
    }

    /// The thread's NUMA memory policy (None: the default).
    pub fn mempolicy(&self) -> Option<Arc<crate::mm::mempolicy::MemPolicy>> {
        self.mempolicy.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_mempolicy(&self, policy: Option<Arc<crate::mm::mempolicy::MemPolicy>>) {
        *self.mempolicy.lock().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// The thread's seccomp mode.
    pub fn seccomp(&self) -> super::seccomp::Mode {
        if !self.seccomp_on.load(Ordering::Acquire) {
            return super::seccomp::Mode::Disabled;
        }
        self.seccomp.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_seccomp(&self, mode: super::seccomp::Mode) {
        let on = !matches!(mode, super::seccomp::Mode::Disabled);
        let old = std::mem::replace(&mut *self.seccomp.lock().unwrap_or_else(|e| e.into_inner()), mode);
        self.seccomp_on.store(on, Ordering::Release);
        // Outside the lock: the last reference to a filter wakes its listener.
        drop(old);
    }

    /// App CPU time this thread has used, in nanoseconds.
    pub fn app_cpu_ns(&self) -> u64 {
        let live = self.interrupter.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or(0, |i| i.cpu_time_ns());
        self.cpu_base_ns.load(Ordering::Relaxed) + live
    }

    pub fn sched(&self) -> SchedAttrs {
        *self.sched.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_sched(&self, f: impl FnOnce(&mut SchedAttrs)) {
        f(&mut self.sched.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// User and system CPU time this thread has used.
    pub fn cpu_times(&self) -> CpuTimes {
        let host = self.host_tid.load(Ordering::Relaxed);
        let host_ns = if host > 0 { rvisor_platform::hostcall::thread_cpu_ns(host).unwrap_or(0) } else { 0 };
        let user_ns = self.app_cpu_ns();
        // On kvm the app runs on the task's own host thread: its time is in both.
        let shared = self.interrupter.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|i| i.runs_on_host_thread());
        CpuTimes { user_ns, sys_ns: if shared { host_ns.saturating_sub(user_ns) } else { host_ns } }
    }

    /// Its own faults and switches.
    pub fn rusage_counts(&self) -> RusageCounts {
        RusageCounts { min_flt: self.min_flt.load(Ordering::Relaxed), maj_flt: self.maj_flt.load(Ordering::Relaxed), nvcsw: self.waiter.nvcsw() }
    }

    /// The task's address space, fd table and fs context; None once it exited.
    pub fn resources(&self) -> Option<Resources> {
        self.resources.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_resources(&self, r: Option<Resources>) {
        *self.resources.lock().unwrap_or_else(|e| e.into_inner()) = r;
    }

    /// The eventfd `interrupt` signals, for polling beside a host descriptor.
    pub fn host_wake(&self) -> Option<&nix::sys::eventfd::EventFd> {
        if self.host_wake.get().is_none() {
            let efd = nix::sys::eventfd::EventFd::from_flags(nix::sys::eventfd::EfdFlags::EFD_CLOEXEC | nix::sys::eventfd::EfdFlags::EFD_NONBLOCK).ok()?;
            let _ = self.host_wake.set(efd);
        }
        self.host_wake.get()
    }

    pub fn tid(&self) -> i32 {
        self.tid.load(Ordering::Relaxed)
    }

    pub fn set_tid(&self, tid: i32) {
        self.tid.store(tid, Ordering::Relaxed)
    }

    pub fn sig(&self) -> MutexGuard<'_, ThreadSignals> {
        self.sig.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_interrupter(&self, i: Option<Arc<dyn Interrupter>>) {
        *self.interrupter.lock().unwrap_or_else(|e| e.into_inner()) = i;
    }

    /// Wakes the thread if it is blocked in the Sentry, without kicking it out of
    /// app code: for news only a wait looks for (a child changed state), which a
    /// thread running app code finds at its next wait, as Linux's
    /// `__wake_up_parent` only wakes sleepers.
    pub fn wake(&self) {
        self.waiter.wake();
        if let Some(efd) = self.host_wake.get() {
            let _ = efd.write(1);
        }
    }

    /// Makes the thread notice new work: wakes it if blocked in the Sentry and
    /// kicks it out of app code if running there.
    pub fn interrupt(&self) {
        self.wake();
        // Pairs with the task loop's store-then-check before it switches: either
        // it sees our pending work, or we see it running and kick it.
        if self.running_app.load(Ordering::SeqCst) {
            if let Some(i) = self.interrupter.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                i.interrupt();
            }
        }
    }
}

/// The name a program gets from its path: the basename, cut to 15 bytes.
pub fn comm_from_path(path: &str) -> [u8; 16] {
    let base = path.rsplit('/').next().unwrap_or(path).as_bytes();
    let mut c = [0u8; 16];
    let n = base.len().min(15);
    c[..n].copy_from_slice(&base[..n]);
    c
}
