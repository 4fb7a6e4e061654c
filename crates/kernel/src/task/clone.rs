//! clone, fork and vfork: new threads and processes.

use super::host_threads::Placement;
use super::{Namespaces, PidNamespace, SchedAttrs, Task, Thread, ThreadGroup, UserNamespace, RLIMIT_NPROC};
use crate::mm::{MemoryManager, UserRef};
use crate::vfs::FdTable;
use rvisor_abi::{consts, errno, SysResult, UserAddr};
use rvisor_platform::CpuState;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FS: u64 = 0x200;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_SIGHAND: u64 = 0x800;
pub const CLONE_PIDFD: u64 = 0x1000;
pub const CLONE_PTRACE: u64 = 0x2000;
pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_PARENT: u64 = 0x8000;
pub const CLONE_THREAD: u64 = 0x10000;
pub const CLONE_NEWNS: u64 = 0x20000;
pub const CLONE_SYSVSEM: u64 = 0x40000;
pub const CLONE_SETTLS: u64 = 0x80000;
pub const CLONE_PARENT_SETTID: u64 = 0x100000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
pub const CLONE_DETACHED: u64 = 0x400000;
pub const CLONE_UNTRACED: u64 = 0x800000;
pub const CLONE_CHILD_SETTID: u64 = 0x1000000;
pub const CLONE_IO: u64 = 0x8000_0000;
/// A new cgroup namespace: rooted at the process's cgroup, which is the root of
/// the container's one-cgroup view, so it looks the same; accepted as such.
pub const CLONE_NEWCGROUP: u64 = 0x0200_0000;
pub const CLONE_NEWUTS: u64 = 0x0400_0000;
pub const CLONE_NEWIPC: u64 = 0x0800_0000;
pub const CLONE_NEWUSER: u64 = 0x1000_0000;
pub const CLONE_NEWPID: u64 = 0x2000_0000;
pub const CLONE_NEWNET: u64 = 0x4000_0000;
/// Shares a bit with clone's exit signal: only clone3 and unshare can ask for it.
pub const CLONE_NEWTIME: u64 = 0x80;
/// The namespace flags the sandbox offers its programs.
const CLONE_NAMESPACES: u64 = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWTIME;
const SUPPORTED: u64 = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_PIDFD | CLONE_PTRACE | CLONE_VFORK | CLONE_PARENT
    | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_DETACHED
    | CLONE_UNTRACED | CLONE_CHILD_SETTID | CLONE_IO | CLONE_NAMESPACES | 0xff;

/// clone's arguments, from clone or clone3.
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub exit_signal: u32,
    pub stack: u64,
    pub parent_tid: UserAddr,
    pub child_tid: UserAddr,
    pub tls: u64,
    /// CLONE_PIDFD: where the parent gets the child's pidfd (clone: parent_tid).
    pub pidfd: UserAddr,
}

/// What the new task's host thread needs to start.
struct ChildSpec {
    thread: Arc<Thread>,
    mm_source: MmSource,
    fds: Arc<FdTable>,
    fs: Arc<crate::vfs::FsContext>,
    ns: Namespaces,
    cpu: CpuState,
    clear_child_tid: UserAddr,
    /// CLONE_CHILD_SETTID: where the child stores its tid before it first runs.
    set_child_tid: Option<UserAddr>,
    vfork_parent: Option<Arc<Thread>>,
}

enum MmSource {
    /// CLONE_VM: the same address space; the platform thread is already made.
    Shared(Arc<MemoryManager>, rvisor_platform::ThreadSeed),
    /// fork: the copy-on-write copy, in a fresh address space.
    Copy(MemoryManager),
}

impl Task {
    pub fn do_clone(&mut self, args: CloneArgs) -> SysResult<i32> {
        let f = args.flags;
        if f & !SUPPORTED != 0 {
            return Err(errno!(EINVAL));
        }
        // A new mount namespace is the new process's own: its root and cwd
        // move; so are new credentials.
        if f & (CLONE_NEWNS | CLONE_NEWUSER) != 0 && f & (CLONE_FS | CLONE_THREAD) != 0 {
            return Err(errno!(EINVAL));
        }
        let user_ns = self.new_user_ns(f)?;
        if (f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0) || (f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0) {
            return Err(errno!(EINVAL));
        }
        // What the child's new namespaces belong to: its new user namespace, or
        // the one it shares with this process.
        let owner = user_ns.clone().unwrap_or_else(|| self.tg.user_ns());
        // The PID namespace the child is in: a thread in its process's, a
        // process in the one for children (or a new one nested in it). A
        // namespace's init may not make siblings (CLONE_PARENT).
        let for_children = self.ns.pid_children.clone().unwrap_or_else(|| self.tg.pid_ns.clone());
        if f & CLONE_THREAD != 0 && (f & CLONE_NEWPID != 0 || !Arc::ptr_eq(&for_children, &self.tg.pid_ns)) {
            return Err(errno!(EINVAL));
        }
        if f & CLONE_PARENT != 0 && self.tg.pid_ns.is_init(&self.tg) {
            return Err(errno!(EINVAL));
        }
        let child_pid_ns = if f & CLONE_NEWPID != 0 { PidNamespace::child(&for_children, owner.clone())? } else { for_children };
        // A pidfd names a process, not a thread (before Linux 6.9).
        if f & CLONE_PIDFD != 0 && f & (CLONE_THREAD | CLONE_DETACHED) != 0 {
            return Err(errno!(EINVAL));
        }
        self.check_nproc()?;
        let tid = child_pid_ns.alloc()?;
        let tg = if f & CLONE_THREAD != 0 {
            self.tg.clone()
        } else {
            let parent = if f & CLONE_PARENT != 0 { self.tg.parent().unwrap_or_else(|| self.tg.clone()) } else { self.tg.clone() };
            let child = self.tg.forked(tid, parent, child_pid_ns.clone());
            if let Some(ns) = &user_ns {
                child.enter_user_ns(ns.clone());
            }
            // A sibling (CLONE_PARENT) ends as this process does, towards the
            // parent it shares with it (Linux's copy_process).
            let (exit_signal, parent_exec_id) = if f & CLONE_PARENT != 0 {
                (self.tg.exit_signal.load(Relaxed), self.tg.parent_exec_id.load(Relaxed))
            } else {
                (args.exit_signal, self.tg.exec_id.load(Relaxed))
            };
            child.exit_signal.store(exit_signal, Relaxed);
            child.parent_exec_id.store(parent_exec_id, Relaxed);
            let child = Arc::new(child);
            // A finite RLIMIT_CPU is inherited, and so is its enforcement.
            let cpu_limit = child.rlimit(crate::task::RLIMIT_CPU_INDEX);
            if cpu_limit.cur != u64::MAX || cpu_limit.max != u64::MAX {
                self.kernel.cpu_watch.watch(&self.kernel.timers, &child);
            }
            child
        };
        let comm = *self.thread.comm.lock().unwrap_or_else(|e| e.into_inner());
        let thread = Arc::new(Thread::new(tid, tg.clone(), comm, self.kernel.loadavg.clone(), self.kernel.clocks.uptime_ns()));
        // Scheduling settings, the memory policy, seccomp filters and the
        // Landlock domain are inherited by threads and children alike.
        let sched = self.thread.sched();
        thread.set_sched(|s| *s = SchedAttrs { default_timer_slack_ns: sched.timer_slack_ns, ..sched });
        thread.set_mempolicy(self.thread.mempolicy());
        thread.set_seccomp(self.thread.seccomp());
        thread.set_landlock(self.thread.landlock());
        {
            let mine = self.thread.sig();
            let mut s = thread.sig();
            s.mask = mine.mask;
            if f & CLONE_VM == 0 || f & CLONE_VFORK != 0 {
                s.altstack = mine.altstack;
            }
        }
        let mut cpu = self.cpu.clone();
        cpu.regs.rax = 0;
        if args.stack != 0 {
            cpu.regs.rsp = args.stack;
        }
        if f & CLONE_SETTLS != 0 {
            cpu.regs.fs_base = args.tls;
        }
        cpu.fpstate = Some(match self.cpu.fpstate.clone() {
            Some(fp) => fp,
            None => self.ctx.fpstate().map_err(|_| errno!(EAGAIN))?,
        });
        let mm_source = if f & CLONE_VM != 0 {
            let seed = self.ctx.new_thread(&self.mm.aspace).map_err(|e| {
                tracing::warn!("clone: no platform thread: {e}");
                errno!(EAGAIN)
            })?;
            MmSource::Shared(self.mm.clone(), seed)
        } else {
            let aspace = self.kernel.platform.new_address_space().map_err(|e| {
                tracing::warn!("clone: no address space: {e}");
                errno!(EAGAIN)
            })?;
            // The parent's pages are write-protected on the host before the copy is
            // done, while its other threads cannot map pages: what they write
            // afterwards stays theirs (see MemoryManager::fork).
            // A single thread's stack (where it is and the next frames down) and thread
            // block are copied for the child at once (no other thread can write them
            // meanwhile).
            let r = &self.cpu.regs;
            let hot = if self.tg.threads().len() == 1 { vec![r.rsp, r.rsp.saturating_sub(4096), r.fs_base] } else { Vec::new() };
            let (mm, ctx) = (&self.mm, &mut self.ctx);
            MmSource::Copy(mm.fork(aspace, &hot, || ctx.sync(&mm.aspace).map_err(|_| errno!(EAGAIN)))?)
        };
        let ns = self.ns.unshared(f, &owner);
        // A new process is in the time namespace made for children (a thread or a
        // CLONE_VM child shares the address space, and so the clocks, of its parent).
        let time = if f & CLONE_VM == 0 { ns.time_for_children.clone() } else { self.ns.time.clone() };
        if let MmSource::Copy(mm) = &mm_source {
            // A child in a user namespace of its own has other capabilities.
            mm.set_growth_limits(tg.growth_limits());
            if !Arc::ptr_eq(&time, &self.ns.time) {
                mm.replace_timens_page(None, &time.enter(&self.kernel.memory)?)?;
            }
        }
        let fds = if f & CLONE_FILES != 0 { self.fds.clone() } else { Arc::new(self.fds.fork()) };
        let fs = if f & CLONE_FS != 0 {
            self.fs.clone()
        } else if f & CLONE_NEWNS != 0 {
            Arc::new(self.fs.fork_with_new_mounts(owner.clone()))
        } else {
            Arc::new(self.fs.fork())
        };
        let spec = ChildSpec {
            thread: thread.clone(),
            mm_source,
            fds,
            fs,
            ns: Namespaces { pid_children: None, time, ..ns },
            cpu,
            clear_child_tid: if f & CLONE_CHILD_CLEARTID != 0 { args.child_tid } else { UserAddr::NULL },
            set_child_tid: (f & CLONE_CHILD_SETTID != 0).then_some(args.child_tid),
            vfork_parent: (f & CLONE_VFORK != 0).then(|| self.thread.clone()),
        };

        // Make the child visible before it can run, so signals and waits see it.
        tg.pid_ns.register_thread(tid, &thread);
        tg.state().threads.push(thread.clone());
        if f & CLONE_THREAD == 0 {
            tg.pid_ns.register_group(tid, &tg);
            if let Some(p) = tg.parent() {
                p.state().children.push(tg.clone());
            }
        }
        // The ids must be in place before the child can run (and exit, and clear
        // them for a joiner), as on Linux.
        if f & CLONE_PARENT_SETTID != 0 {
            let _ = self.mm.write_obj(UserRef::<i32>::new(args.parent_tid), &self.vnr(tid));
        }
        // The pidfd is the parent's (close-on-exec) before the child runs; a bad
        // address undoes the clone.
        let pidfd = if f & CLONE_PIDFD != 0 {
            let made = self.install_pidfd(&tg, args.pidfd);
            match made {
                Ok(fd) => Some(fd),
                Err(e) => {
                    self.unregister_failed_child(&tg, &thread, f);
                    return Err(e);
                }
            }
        } else {
            None
        };
        let traced_event = self.ptrace_follow(f, args.exit_signal, &thread);
        if let Err(e) = self.spawn(spec) {
            if let Some(fd) = pidfd {
                let _ = self.fds.close(fd);
            }
            self.unregister_failed_child(&tg, &thread, f);
            return Err(e);
        }
        if let Some(event) = traced_event {
            self.ptrace_clone_event(event, tid);
        }
        // Only a fatal signal ends the wait (Linux's is killable): the child
        // runs on the parent's memory, its stack too, until it execs or exits.
        if f & CLONE_VFORK != 0 {
            let _ = self.block_until_killable(|| tg.state().vfork_done || tg.state().zombie.is_some());
        }
        Ok(self.vnr(tid))
    }

    fn install_pidfd(&self, tg: &Arc<ThreadGroup>, at: UserAddr) -> SysResult<crate::vfs::Fd> {
        let file: Arc<dyn crate::vfs::FileDescription> = Arc::new(crate::fs::pidfd::PidFd::new(tg.clone(), 0));
        let limit = self.tg.rlimit(crate::task::RLIMIT_NOFILE).cur;
        let fd = self.fds.install_lowest(file, 0, limit, true)?;
        if let Err(e) = self.mm.write_obj(UserRef::<i32>::new(at), &fd.0) {
            let _ = self.fds.close(fd);
            return Err(e);
        }
        Ok(fd)
    }

    /// RLIMIT_NPROC counts the tasks (threads) of the caller's real user; the
    /// real root user, CAP_SYS_RESOURCE and CAP_SYS_ADMIN are exempt.
    fn check_nproc(&self) -> SysResult<()> {
        let creds = self.tg.creds();
        if creds.uid == 0 || self.tg.capable(rvisor_abi::consts::CAP_SYS_RESOURCE) || self.tg.capable(consts::CAP_SYS_ADMIN) {
            return Ok(());
        }
        let limit = self.tg.rlimit(RLIMIT_NPROC).cur;
        let mine: usize = self.tg.container.pid_ns.groups().iter().filter(|g| g.creds().uid == creds.uid).map(|g| g.state().threads.len()).sum();
        let mine = mine as u64;
        if mine >= limit { Err(errno!(EAGAIN)) } else { Ok(()) }
    }

    fn unregister_failed_child(&self, tg: &Arc<ThreadGroup>, thread: &Arc<Thread>, f: u64) {
        tg.state().threads.retain(|t| !Arc::ptr_eq(t, thread));
        self.pid_ns().release_thread(thread.tid());
        if f & CLONE_THREAD == 0 {
            if let Some(p) = tg.parent() {
                p.state().children.retain(|c| !Arc::ptr_eq(c, tg));
            }
            self.pid_ns().release_group(tg);
        }
    }

    /// The user namespace clone or unshare with `flags` makes (CLONE_NEWUSER:
    /// no privilege needed, but not from a chroot), or None; and checks that the
    /// other new namespaces are allowed: CAP_SYS_ADMIN in the user namespace that
    /// will own them (a new one's creator has it).
    fn new_user_ns(&self, flags: u64) -> SysResult<Option<Arc<UserNamespace>>> {
        if flags & CLONE_NEWUSER == 0 {
            if flags & CLONE_NAMESPACES != 0 && !self.tg.capable(consts::CAP_SYS_ADMIN) {
                return Err(errno!(EPERM));
            }
            return Ok(None);
        }
        if self.fs.chrooted() {
            return Err(errno!(EPERM));
        }
        let c = self.tg.creds();
        UserNamespace::child(&self.tg.user_ns(), c.euid, c.egid).map(Some)
    }

    /// unshare(2): CLONE_FILES and CLONE_FS give the caller its own descriptor
    /// table and file-system context; CLONE_SYSVSEM changes nothing, as System V
    /// undo lists are per process here; CLONE_THREAD, SIGHAND and VM are accepted
    /// from a single-threaded process, which shares none of them. The namespace
    /// flags of `CLONE_NAMESPACES` give it new ones (CAP_SYS_ADMIN, but for a
    /// new user namespace, which gives it every capability there and owns the
    /// others made with it); the others are EINVAL, as from a Linux built
    /// without them.
    pub fn unshare(&mut self, mut flags: u64) -> SysResult<()> {
        if flags & !(CLONE_FILES | CLONE_FS | CLONE_SYSVSEM | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_NAMESPACES) != 0 {
            return Err(errno!(EINVAL));
        }
        // New credentials are the whole process's, with an fs context of its own.
        if flags & CLONE_NEWUSER != 0 {
            flags |= CLONE_THREAD | CLONE_FS;
        }
        if flags & (CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) != 0 && self.tg.threads().len() > 1 {
            return Err(errno!(EINVAL));
        }
        let user_ns = self.new_user_ns(flags)?;
        let owner = user_ns.clone().unwrap_or_else(|| self.tg.user_ns());
        // A new PID namespace is for the children to come, once per namespace
        // the caller is in (Linux's copy_pid_ns).
        let pid_children = if flags & CLONE_NEWPID != 0 {
            if self.ns.pid_children.as_ref().is_some_and(|c| !Arc::ptr_eq(c, &self.tg.pid_ns)) {
                return Err(errno!(EINVAL));
            }
            Some(PidNamespace::child(&self.tg.pid_ns, owner.clone())?)
        } else {
            self.ns.pid_children.clone()
        };
        if flags & CLONE_FILES != 0 {
            self.fds = Arc::new(self.fds.fork());
        }
        if let Some(ns) = user_ns {
            self.tg.enter_user_ns(ns);
        }
        self.ns = Namespaces { pid_children, ..self.ns.unshared(flags, &owner) };
        // A new mount namespace implies an fs context of this thread's own.
        if flags & CLONE_NEWNS != 0 {
            self.fs = Arc::new(self.fs.fork_with_new_mounts(owner));
        } else if flags & CLONE_FS != 0 {
            self.fs = Arc::new(self.fs.fork());
        }
        self.publish_resources();
        Ok(())
    }

    /// Makes the child's address space (or platform thread) here, then starts its
    /// host thread, without waiting for it: the platform ties the app thread to the
    /// host thread that first runs it.
    fn spawn(&self, spec: ChildSpec) -> SysResult<()> {
        let platform = &self.kernel.platform;
        let tid = spec.thread.tid();
        let no_platform = |e: rvisor_platform::PlatformError| {
            tracing::warn!("clone: cannot start task {tid}: {e}");
            errno!(EAGAIN)
        };
        // A new process starts free of this thread's pin, so that the host places it (see
        // host_cpus). A new thread starts on this thread's CPU: threads share memory and
        // wake each other, and a short-lived one is created and joined without waking an
        // idle CPU; if it competes for the CPU, the balancer moves it.
        let (mm, ctx, at) = match spec.mm_source {
            MmSource::Shared(mm, seed) => {
                (mm, platform.adopt(seed).map_err(no_platform)?, Placement::With(rvisor_platform::host_cpus::current()))
            }
            MmSource::Copy(mm) => (Arc::new(mm), platform.new_context(), Placement::Host),
        };
        if let Some(at) = spec.set_child_tid {
            // The id the child sees.
            let own = spec.thread.tg.pid_ns.local_id(tid).unwrap_or(tid);
            let _ = mm.write_obj(UserRef::<i32>::new(at), &own);
        }
        let resources = super::Resources { mm, fds: spec.fds, fs: spec.fs, ns: spec.ns };
        // Published before the parent returns from clone, so /proc/<pid> (cmdline,
        // maps, fd/) reads the child's memory and files at once, as on Linux.
        spec.thread.set_resources(Some(resources.clone()));
        let kernel = self.kernel.clone();
        let (thread, cpu, clear_child_tid, vfork_parent) = (spec.thread, spec.cpu, spec.clear_child_tid, spec.vfork_parent);
        let body = move || {
            let mut task = Task::new(kernel, thread, resources, cpu, ctx);
            task.clear_child_tid = clear_child_tid;
            task.vfork_parent = vfork_parent;
            task.run();
        };
        self.kernel.host_threads.run(format!("task-{tid}"), at, Box::new(body)).map_err(|_| errno!(EAGAIN))
    }
}
