//! execve: replacing a process's image, with the program found through the VFS
//! (`#!` scripts and ELF program interpreters included).

use super::signals::{SIG_DFL, SIG_IGN};
use super::{comm_from_path, Task};
use crate::kernel::Kernel;
use crate::loader::{self, ExecError, Image, LoadedImage};
use crate::mm::{Frames, GrowthLimits, MemoryManager, VdsoFrames};
use crate::vfs::inode::{OpenFlags, S_IFMT, S_IFREG};
use crate::vfs::path::walk;
use crate::vfs::perm::{self, FsCreds, MAY_EXEC};
use crate::vfs::{Dentry, Follow, FsContext, Mount, MountFlags};
use rvisor_abi::{errno, Errno, SysResult};
use rvisor_memory::MemoryFile;
use rvisor_platform::{Context, CpuState};
use std::sync::Arc;

/// How many `#!` interpreters may chain (Linux's BINPRM_MAX_RECURSION).
const MAX_SCRIPT_DEPTH: usize = 4;
/// personality(2)'s flag for an address space laid out the same on every exec
/// (`setarch -R`, debuggers).
pub const ADDR_NO_RANDOMIZE: u32 = 0x0040000;
/// personality(2)'s flag that a 64-bit exec clears (Linux's set_personality_64bit).
const READ_IMPLIES_EXEC: u32 = 0x0400000;
/// Longest `#!` line Linux reads.
const MAX_SHEBANG: usize = 256;

/// The room argv and envp always have, whatever the stack limit (32 pages).
const ARG_MAX: u64 = 128 << 10;
/// Linux's _STK_LIM, of which argv and envp may take three quarters at most.
const STK_LIM: u64 = 8 << 20;

/// The room execve's strings have on the new stack, as Linux's
/// bprm_stack_limits sets it (bprm->argmin): a quarter of RLIMIT_STACK, at most
/// 3/4 of 8 MiB, at least ARG_MAX, for the pointers argv and envp need and the
/// strings (the exec's path, envp, argv, and what `#!` lines make of argv). The
/// strings' pages (below a null word) are stack, which may not grow past
/// RLIMIT_STACK either (E2BIG too, from Linux's get_arg_page).
#[derive(Clone, Copy, Debug)]
pub struct ArgRoom {
    /// Bytes for the strings, NULs included.
    strings: u64,
    stack_limit: u64,
    /// What the path and envp take of it (set once they are read).
    pub fixed: u64,
}

impl ArgRoom {
    /// The room for pointers and strings together under `stack_limit`.
    pub fn pointer_limit(stack_limit: u64) -> u64 {
        (STK_LIM / 4 * 3).min(stack_limit / 4).max(ARG_MAX)
    }

    /// The room left for strings once `pointers` argv and envp pointers have
    /// theirs (E2BIG if none is).
    pub fn new(stack_limit: u64, pointers: u64) -> SysResult<ArgRoom> {
        let limit = Self::pointer_limit(stack_limit);
        let strings = limit.checked_sub(pointers.saturating_mul(8)).filter(|&r| r > 0).ok_or_else(|| errno!(E2BIG))?;
        Ok(ArgRoom { strings, stack_limit, fixed: 0 })
    }

    /// Whether strings of `used` bytes in all fit.
    pub fn fits(&self, used: u64) -> bool {
        used <= self.strings && rvisor_abi::page_up(used.saturating_add(8)).is_some_and(|s| s <= self.stack_limit.max(rvisor_abi::PAGE_SIZE))
    }

    /// Whether `argv` fits beside the path and envp.
    fn fits_argv(&self, argv: &[Vec<u8>]) -> bool {
        self.fits(self.fixed.saturating_add(argv.iter().map(|s| s.len() as u64 + 1).sum()))
    }
}

/// Opens an executable file through the VFS, walking as `c`: it must be a
/// regular file `c` may execute (EACCES otherwise).
fn read_executable(fs: &FsContext, c: &FsCreds, mf: &Arc<MemoryFile>, path: &[u8], need_exec: bool) -> SysResult<Image> {
    read_image(&walk(c, &fs.root(), &fs.cwd(), path, Follow::Yes)?, c, mf, need_exec)
}

/// The regular file `d` as the loader reads it (EACCES for anything else, or
/// when `need_exec` and `c` may not execute it): its headers and pages, or all
/// of it when it has no pages to map.
fn read_image(d: &Arc<Dentry>, c: &FsCreds, mf: &Arc<MemoryFile>, need_exec: bool) -> SysResult<Image> {
    let st = d.inode.stat()?;
    // Nor does anything run from a noexec mount (an ELF interpreter neither).
    if st.st_mode & S_IFMT != S_IFREG || Mount::of_has(d, MountFlags::NOEXEC) {
        return Err(errno!(EACCES));
    }
    if need_exec {
        perm::check(c, &st, MAY_EXEC)?;
    }
    crate::landlock::fs::may_execute(c, d)?;
    let size = st.st_size.max(0) as u64;
    if let Some(pages) = d.inode.file_pages(mf)? {
        let mut head = vec![0u8; size.min(loader::IMAGE_HEAD) as usize];
        pages.read(mf, 0, &mut head)?;
        return Ok(Image { head, size, pages: Some(pages), dentry: d.clone() });
    }
    let file = d.inode.open(d, OpenFlags(0))?;
    let mut head = vec![0u8; size as usize];
    let n = file.read_at(0, &mut head)?;
    head.truncate(n);
    Ok(Image { head, size: n as u64, pages: None, dentry: d.clone() })
}

/// The program to run for `path` and its arguments, after `#!` lines: the ELF
/// image, its interpreter's image if any, and the final argv.
pub struct Program {
    pub path: String,
    pub image: Image,
    pub interp: Option<Image>,
    pub argv: Vec<Vec<u8>>,
}

/// `opened`: the file already resolved for `path` (execveat, fexecve of a file
/// that no path reaches, like a memfd). `room`: what execve's strings must fit
/// in, which the arguments `#!` lines add must too (E2BIG, as Linux's
/// load_script copying them).
pub fn find_program(fs: &FsContext, c: &FsCreds, mf: &Arc<MemoryFile>, path: &str, mut opened: Option<Arc<Dentry>>, mut argv: Vec<Vec<u8>>, room: Option<ArgRoom>) -> Result<Program, ExecError> {
    let mut path = path.to_string();
    for _ in 0..=MAX_SCRIPT_DEPTH {
        let image = match opened.take() {
            Some(d) => read_image(&d, c, mf, true),
            None => read_executable(fs, c, mf, path.as_bytes(), true),
        }
        .map_err(|e| ExecError::Errno(e.code))?;
        if image.head.starts_with(b"#!") {
            let line = &image.head[2..image.head.len().min(MAX_SHEBANG)];
            let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
            let text = String::from_utf8_lossy(line);
            let mut words = text.trim().splitn(2, [' ', '\t']);
            let interp = words.next().filter(|w| !w.is_empty()).ok_or(ExecError::NotElf)?.to_string();
            let mut new_argv = vec![interp.clone().into_bytes()];
            if let Some(arg) = words.next().map(str::trim).filter(|a| !a.is_empty()) {
                new_argv.push(arg.as_bytes().to_vec());
            }
            new_argv.push(path.clone().into_bytes());
            new_argv.extend(argv.into_iter().skip(1));
            argv = new_argv;
            if room.is_some_and(|r| !r.fits_argv(&argv)) {
                return Err(ExecError::Errno(rvisor_abi::ErrnoCode::E2BIG));
            }
            path = interp;
            continue;
        }
        let interp = match loader::check(&image, mf)? {
            Some(ld) => Some(read_executable(fs, c, mf, ld.as_bytes(), false).map_err(|e| ExecError::Errno(e.code))?),
            None => None,
        };
        return Ok(Program { path, image, interp, argv });
    }
    Err(ExecError::Errno(rvisor_abi::ErrnoCode::ELOOP))
}

/// What the app sees of a platform that cannot give it an address space: ENOMEM,
/// as Linux's execve when it runs out; the reason goes to the log.
fn platform_failure(what: &str, e: rvisor_platform::PlatformError) -> ExecError {
    tracing::error!("exec: {what}: {e}");
    ExecError::NoMemory
}

/// Loads `prog` into a fresh address space bound to `ctx`, with time namespace
/// page `timens`, for a process whose stack grows within `limits` and whose
/// personality is `personality`.
#[allow(clippy::too_many_arguments)]
pub fn load_program(kernel: &Kernel, ctx: &mut dyn Context, prog: &Program, envp: &[Vec<u8>], creds: [u32; 4], timens: &Arc<Frames>, limits: GrowthLimits, personality: u32) -> Result<(Arc<MemoryManager>, LoadedImage), ExecError> {
    let aspace = kernel.platform.new_address_space().map_err(|e| platform_failure("a new address space", e))?;
    let mm = Arc::new(MemoryManager::new(kernel.memory.clone(), aspace, kernel.platform.max_user_address()));
    mm.set_growth_limits(limits);
    // Move the context onto the new address space now: it gives up its thread in
    // the old stub, which must be gone before the old address space is reaped.
    ctx.sync(&mm.aspace).map_err(|e| platform_failure("the first switch", e))?;
    let loaded = loader::load(&mm, ctx, VdsoFrames { shared: &kernel.vdso, timens }, &prog.image, prog.interp.as_ref(), &prog.path, &prog.argv, envp, creds, personality & ADDR_NO_RANDOMIZE == 0)?;
    Ok((mm, loaded))
}

impl Task {
    /// `room`: what execve's strings must fit in on the new stack.
    pub fn do_execve(&mut self, path: String, opened: Option<Arc<Dentry>>, argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>, room: ArgRoom) -> SysResult<()> {
        let prog = find_program(&self.fs, &self.thread.fs_creds(), &self.kernel.memory, &path, opened, argv, Some(room)).map_err(|e| match e {
            ExecError::Errno(c) => Errno::new(c),
            ExecError::NoMemory => errno!(ENOMEM),
            _ => errno!(ENOEXEC),
        })?;
        self.dethread()?;
        self.tg.exec_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The robust futexes this thread holds in the old image are released as at
        // exit, and its PI locks handed on (Linux's exec_mm_release): the new image
        // knows nothing of them.
        self.exit_robust_list();
        self.robust_list = rvisor_abi::UserAddr::NULL;
        self.kernel.futexes.release_pi(&self.thread);

        // From here on the old image is gone: failures kill the process. The new
        // image runs on a new stub thread: bank the old one's CPU time.
        self.user_dispatch = None;
        self.tg.exec_mm_flags();
        let used = self.thread.app_cpu_ns();
        self.thread.cpu_base_ns.store(used, std::sync::atomic::Ordering::Relaxed);
        let (c, user_ns) = (self.tg.creds(), self.tg.user_ns());
        {
            let mut caps = self.tg.caps.lock().unwrap_or_else(|e| e.into_inner());
            *caps = caps.on_exec(c.euid, user_ns.root_uid());
        }
        let ids = [user_ns.show_uid(c.uid), user_ns.show_uid(c.euid), user_ns.show_gid(c.gid), user_ns.show_gid(c.egid)];
        // The process enters the time namespace made for its children, if it made
        // one (Linux's exec_task_namespaces), and maps that namespace's page.
        let time_ns = self.ns.time_for_children.clone();
        let personality = self.tg.personality.fetch_and(!READ_IMPLIES_EXEC, std::sync::atomic::Ordering::Relaxed) & !READ_IMPLIES_EXEC;
        let (mm, loaded) = match time_ns.enter(&self.kernel.memory).map_err(|_| ExecError::NoMemory).and_then(|timens| load_program(&self.kernel, self.ctx.as_mut(), &prog, &envp, ids, &timens, self.tg.growth_limits(), personality)) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("exec of {path} failed after the point of no return: {e}");
                self.exit_group(super::ExitStatus::killed_by(rvisor_abi::consts::SIGSEGV));
                return Ok(());
            }
        };
        self.mm = mm;
        self.ns.time = time_ns;
        self.native_syscall_ip = 0;
        self.tg.membarrier.store(0, std::sync::atomic::Ordering::Relaxed);
        self.publish_resources();
        for file in self.fds.close_on_exec() {
            crate::syscalls::lock::release_on_close(self, &file);
        }
        {
            let mut sig = self.tg.sig();
            for a in sig.actions.iter_mut() {
                if a.handler != SIG_IGN {
                    *a = rvisor_abi::structs::KernelSigaction::zeroed();
                    a.handler = SIG_DFL;
                }
            }
        }
        {
            let mut s = self.thread.sig();
            s.altstack = Default::default();
        }
        let exe = walk(&self.thread.fs_creds(), &self.fs.root(), &self.fs.cwd(), prog.path.as_bytes(), Follow::Yes)
            .map(|d| String::from_utf8_lossy(&d.path()).into_owned())
            .unwrap_or(prog.path.clone());
        *self.tg.exe.lock().unwrap_or_else(|e| e.into_inner()) = exe;
        *self.thread.comm.lock().unwrap_or_else(|e| e.into_inner()) = comm_from_path(&path);
        self.clear_child_tid = rvisor_abi::UserAddr::NULL;
        self.cpu = CpuState::default();
        self.cpu.regs.rip = loaded.entry;
        self.cpu.regs.rsp = loaded.sp;
        self.release_vfork_parent();
        Ok(())
    }

    /// Makes the calling thread the only one in its group, and its leader
    /// (Linux's de_thread): the others are killed, and the exec waits until they
    /// are gone, the zombies of traced ones too (until their tracer reaps them),
    /// except the old leader's, which goes once it is a zombie.
    fn dethread(&mut self) -> SysResult<()> {
        let leader = self.tg.tgid;
        let (others, waits) = {
            let mut st = self.tg.state();
            if st.exiting.is_some() || st.execer.is_some() {
                return Err(errno!(EAGAIN));
            }
            let others: Vec<_> = st.threads.iter().filter(|t| !Arc::ptr_eq(t, &self.thread)).cloned().collect();
            let waits = !others.is_empty() || !st.traced_zombies_gone(leader);
            if waits {
                st.execer = Some(self.thread.clone());
            }
            (others, waits)
        };
        for t in &others {
            t.interrupt();
        }
        // Wait (unkillably, as Linux does, except by a fatal signal) for the
        // others. None may be left while the id is not ours yet: the leader exited first.
        if waits {
            loop {
                let seq = self.thread.waiter.seq();
                let (gone, dying) = {
                    let st = self.tg.state();
                    (st.threads.len() == 1 && st.traced_zombies_gone(leader), st.exiting.is_some())
                };
                if gone || dying {
                    break;
                }
                self.thread.waiter.wait(seq, None);
            }
        }
        let dying = {
            let mut st = self.tg.state();
            st.execer = None;
            st.exiting.is_some()
        };
        if dying {
            return Err(errno!(EINTR));
        }
        let leader = self.tg.tgid;
        let old = self.tid();
        if old != leader {
            // The old leader's zombie goes: its id is ours now.
            self.tg.state().zombie_threads.retain(|t| t.tid() != leader);
            self.pid_ns().rename_thread(old, leader, &self.thread);
            self.thread.set_tid(leader);
            // It takes the leader's start time too: the process's age.
            self.thread.start_ns.store(self.tg.start_ns.load(std::sync::atomic::Ordering::Relaxed), std::sync::atomic::Ordering::Relaxed);
            // Linux's de_thread: the new leader reports with SIGCHLD.
            self.tg.exit_signal.store(rvisor_abi::consts::SIGCHLD, std::sync::atomic::Ordering::Relaxed);
            // And the old one is released unseen: its tracer neither waits for it
            // nor holds the group's exit, and a wait only it could end ends (ECHILD).
            let tracer = self.tg.state().exit_tracer.take().and_then(|t| t.upgrade());
            if let Some(tracer) = tracer {
                tracer.state().tracees.retain(|t| !(Arc::ptr_eq(&t.tg, &self.tg) && !Arc::ptr_eq(t, &self.thread) && t.tid() == leader && t.ptrace().exited.is_some()));
                tracer.wake_waiters();
            }
        }
        Ok(())
    }
}
