//! procfs, mounted at /proc: a view of the sandbox's processes and of the
//! (sandbox's) system, generated on demand from the kernel's own state.
//!
//! - `/proc/[pid]/...` and `/proc/[pid]/task/[tid]/...` (`pid.rs`): looked up in the
//!   kernel's PID namespace at every walk. procfs directories tell the VFS not to
//!   cache their lookups (`Inode::cache_lookups`), so a process that exits, or a
//!   descriptor that closes, disappears from the tree at once.
//! - `fd/N`, `map_files/START-END`, `cwd` and `root` are "magic" links
//!   (`Inode::jump_link`): a walk through them lands on the open or mapped file's
//!   own dentry (or the open file itself, for pipes and inherited host streams)
//!   rather than re-resolving the text readlink shows.
//! - System files (`system.rs`, `cpuinfo.rs`): meminfo from the memory file's usage,
//!   cpuinfo synthesized from CPUID, stat, uptime, loadavg, version, filesystems,
//!   and the `sys/` tree.
//!
//! ## Who is asking: `/proc/self`
//! `Inode::readlink` takes no task, but /proc/self and /proc/thread-self name the
//! caller. Every task runs on its own Sentry host thread for its whole life (the
//! task loop in `Task::run`), so the host thread identifies the task exactly: the
//! loop records its `Thread` in the thread-local [`CURRENT`] when it starts
//! ([`set_current`]). It holds the `Thread` (weakly), not its ids, because a thread's
//! id changes when a non-leader thread execs. This costs nothing per syscall and
//! needs no task argument threaded through the VFS. A thread that is not a task
//! (a unit test, a Sentry helper) has no current task, and /proc/self is then
//! ENOENT, as Linux answers a process outside the PID namespace.

mod cpuinfo;
mod mem;
mod pid;
pub use pid::{processes, ProcessInfo};
mod system;

use super::nsfs::{Namespace, NsInode, NsKind};
use super::simple::{now, Attrs, SeqFile};
use crate::kernel::Kernel;
use crate::task::{PidNamespace, Resources, Thread, ThreadGroup};
use crate::vfs::inode::{DirEntry, Inode, OpenFlags, DT_DIR, DT_LNK, DT_REG, S_IFDIR, S_IFLNK, S_IFREG, S_IFSOCK};
use crate::vfs::{Dentry, DirFile, FileDescription};
use pid::PidEntry;
use rvisor_abi::structs::Stat;
use rvisor_abi::{consts, errno, error, SysResult};
use std::cell::RefCell;
use std::sync::{Arc, Weak};

thread_local! {
    /// The task this Sentry thread runs (see the module docs).
    static CURRENT: RefCell<Weak<Thread>> = const { RefCell::new(Weak::new()) };
}

/// Records the task the calling host thread runs (None when it stops).
pub fn set_current(t: Option<&Arc<Thread>>) {
    CURRENT.with(|c| *c.borrow_mut() = t.map(Arc::downgrade).unwrap_or_default());
}

/// The task the calling host thread runs, if any.
pub fn current() -> Option<Arc<Thread>> {
    CURRENT.with(|c| c.borrow().upgrade())
}

/// The user namespace of the task reading a file, whose ids it shows (the
/// sandbox's first for the runtime's own reads).
fn reader_user_ns() -> Arc<crate::task::UserNamespace> {
    current().map_or_else(crate::task::UserNamespace::initial, |th| th.tg.user_ns())
}

/// EACCES unless the reading task may ptrace the process (Linux's
/// PTRACE_MODE_READ checks of /proc/[pid] files that reveal its memory or
/// namespaces), Landlock's scope included.
fn may_trace(p: &Proc) -> SysResult<()> {
    let reader = current().ok_or_else(|| errno!(EACCES))?;
    if !crate::task::ptrace::may_trace(&reader.tg, &p.tg) || crate::landlock::scope::may_trace_process(&reader, &p.tg).is_err() {
        return error!(EACCES);
    }
    Ok(())
}

/// The host's RAM (the sandbox's total memory without a limit: see
/// `Kernel::memory_total`).
pub fn ram_total() -> u64 {
    nix::sys::sysinfo::sysinfo().map(|i| i.ram_total()).unwrap_or(8 << 30)
}

/// One mounted procfs.
pub struct ProcFs {
    kernel: Weak<Kernel>,
    /// The PID namespace of the container that mounted it: the processes it shows.
    pid_ns: Arc<PidNamespace>,
    dev: u64,
    time: (i64, i64),
    /// /proc/sys/kernel/random/boot_id: fixed for the sandbox's life.
    boot_id: String,
}

/// Which process (and thread) a /proc/[pid] node shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Target {
    pub tgid: i32,
    /// The thread: the leader for /proc/[pid], or [tid] of /proc/[pid]/task/[tid]
    /// (and of /proc/[tid], which Linux also answers for non-leader threads).
    pub tid: i32,
    /// Under task/: per-thread values, and no task/ directory.
    pub thread_view: bool,
}

#[derive(Clone, Copy, Debug)]
enum Node {
    Root,
    /// An entry of `system::STATIC`.
    Static(usize),
    SelfLink,
    ThreadSelf,
    PidDir(Target),
    Entry(Target, PidEntry),
    Fd(Target, i32),
    FdInfo(Target, i32),
    /// A link in /proc/[pid]/map_files: the file mapped at [start, end).
    MapFile(Target, u64, u64),
    /// A link in /proc/[pid]/ns.
    Ns(Target, NsKind),
}

pub struct ProcInode {
    fs: Arc<ProcFs>,
    node: Node,
}

/// What a /proc/[pid] node needs, resolved from the PID namespace.
pub(super) struct Proc {
    pub k: Arc<Kernel>,
    pub tg: Arc<ThreadGroup>,
    /// The thread shown; None for a zombie.
    pub th: Option<Arc<Thread>>,
    /// Its address space, fds and fs context; None once it has exited.
    pub res: Option<Resources>,
    /// The PID namespace of the /proc it is seen through, whose ids it shows.
    pub ns: Arc<PidNamespace>,
}

impl Proc {
    /// The id this /proc shows for table id `id` (0: not visible in it).
    pub fn local(&self, id: i32) -> i32 {
        self.ns.local_id(id).unwrap_or(0)
    }
}

fn parse_num(name: &[u8]) -> Option<i32> {
    if name.is_empty() || name.len() > 10 || name[0] == b'0' && name.len() > 1 || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

impl ProcFs {
    pub fn new(kernel: Weak<Kernel>, pid_ns: Arc<PidNamespace>, dev: u64) -> Arc<ProcFs> {
        Arc::new(ProcFs { kernel, pid_ns, dev, time: now(), boot_id: system::uuid() })
    }

    pub fn root(self: &Arc<Self>) -> Arc<dyn Inode> {
        self.inode(Node::Root)
    }

    fn inode(self: &Arc<Self>, node: Node) -> Arc<dyn Inode> {
        Arc::new(ProcInode { fs: self.clone(), node })
    }

    fn kernel(&self) -> SysResult<Arc<Kernel>> {
        self.kernel.upgrade().ok_or_else(|| errno!(ENOENT))
    }

    /// The process and thread `t` names, or ENOENT if they are gone.
    pub(super) fn resolve(&self, t: Target) -> SysResult<Proc> {
        let k = self.kernel()?;
        let tg = self.pid_ns.group(t.tgid).ok_or_else(|| errno!(ENOENT))?;
        let th = self.pid_ns.thread(t.tid).filter(|th| Arc::ptr_eq(&th.tg, &tg));
        // A leader that exited before the rest is still there, as a zombie
        // (`TgState::zombie_threads`): no thread is left only of a zombie group.
        let th = match (th, t.thread_view) {
            (Some(th), _) => Some(th),
            (None, true) => return error!(ENOENT),
            (None, false) => None,
        };
        let res = match &th {
            Some(th) => th.resources(),
            None => None,
        };
        Ok(Proc { k, tg, th, res, ns: self.pid_ns.clone() })
    }

    /// The /proc/[name] entry for a process or thread id, if it exists.
    fn pid_target(&self, id: i32) -> Option<Target> {
        if self.pid_ns.group(id).is_some() {
            return Some(Target { tgid: id, tid: id, thread_view: false });
        }
        let th = self.pid_ns.thread(id)?;
        Some(Target { tgid: self.pid_ns.local_id(th.tg.tgid)?, tid: id, thread_view: false })
    }

    fn attrs(&self, ino: u64, mode: u32) -> Attrs {
        Attrs { dev: self.dev, ino, mode, uid: 0, gid: 0, rdev: 0, time: self.time }
    }
}

/// Inode numbers: small ones for the fixed entries, and for process nodes the
/// thread id (never 0, so these are all at least 2^32), the view, the entry and
/// the descriptor packed so that a path keeps its number for as long as it names
/// the same thing.
fn ino_of(node: Node) -> u64 {
    const ROOT: u64 = 1;
    fn pid_ino(t: Target, code: u64, fd: i32) -> u64 {
        ((t.tid as u64) << 32) | ((t.thread_view as u64) << 31) | (code << 24) | (fd as u64 & 0xff_ffff)
    }
    match node {
        Node::Root => ROOT,
        Node::SelfLink => 2,
        Node::ThreadSelf => 3,
        Node::Static(i) => 16 + i as u64,
        Node::PidDir(t) => pid_ino(t, 0, 0),
        Node::Entry(t, e) => pid_ino(t, e as u64 + 1, 0),
        Node::Fd(t, fd) => pid_ino(t, 100, fd),
        Node::FdInfo(t, fd) => pid_ino(t, 101, fd),
        Node::Ns(t, kind) => pid_ino(t, 102, kind as i32),
        // The start's page number in 24 bits: distinct unless starts are 64 GiB apart.
        Node::MapFile(t, start, _) => pid_ino(t, 103, (start >> 12) as i32),
    }
}

/// The process a /proc/[pid] directory stands for (before pidfd_open, an open
/// one was a pidfd: pidfd_send_signal still takes it); None for anything else.
pub fn process_dir_tgid(inode: &Arc<dyn Inode>) -> Option<i32> {
    match inode.as_any().downcast_ref::<ProcInode>()?.node {
        Node::PidDir(t) if !t.thread_view => Some(t.tgid),
        _ => None,
    }
}

impl ProcInode {
    fn target(&self) -> Option<Target> {
        match self.node {
            Node::PidDir(t) | Node::Entry(t, _) | Node::Fd(t, _) | Node::FdInfo(t, _) | Node::MapFile(t, ..) | Node::Ns(t, _) => Some(t),
            _ => None,
        }
    }

    fn mode(&self) -> u32 {
        match self.node {
            Node::Root => S_IFDIR | 0o555,
            Node::Static(i) => system::mode(i),
            Node::SelfLink | Node::ThreadSelf => S_IFLNK | 0o777,
            Node::PidDir(_) => S_IFDIR | 0o555,
            Node::Entry(_, e) => e.mode(),
            Node::Fd(..) => S_IFLNK | 0o700,
            Node::MapFile(..) => S_IFLNK | 0o600,
            Node::FdInfo(..) => S_IFREG | 0o444,
            Node::Ns(..) => S_IFLNK | 0o777,
        }
    }

    /// The entries of a directory node.
    fn list(&self) -> SysResult<Vec<DirEntry>> {
        let fs = &self.fs;
        let entry = |node: Node, name: Vec<u8>| {
            let dtype = match fs.inode(node).kind() {
                S_IFDIR => DT_DIR,
                S_IFLNK => DT_LNK,
                _ => DT_REG,
            };
            DirEntry { name, ino: ino_of(node), dtype }
        };
        match self.node {
            Node::Root => {
                let mut out = Vec::new();
                for (i, name) in system::children(None) {
                    out.push(entry(Node::Static(i), name.as_bytes().to_vec()));
                }
                out.push(entry(Node::SelfLink, b"self".to_vec()));
                out.push(entry(Node::ThreadSelf, b"thread-self".to_vec()));
                let mut ids: Vec<i32> = fs.pid_ns.groups().iter().filter_map(|g| fs.pid_ns.local_id(g.tgid)).collect();
                ids.sort_unstable();
                for id in ids {
                    out.push(entry(Node::PidDir(Target { tgid: id, tid: id, thread_view: false }), id.to_string().into_bytes()));
                }
                Ok(out)
            }
            Node::Static(i) => Ok(system::children(Some(i)).map(|(j, name)| entry(Node::Static(j), name.as_bytes().to_vec())).collect()),
            Node::PidDir(t) => {
                fs.resolve(t)?;
                Ok(PidEntry::all(t.thread_view).map(|(name, e)| entry(Node::Entry(t, e), name.as_bytes().to_vec())).collect())
            }
            Node::Entry(t, PidEntry::Task) => {
                let p = fs.resolve(t)?;
                // Copied out first: the namespace's id lock is not taken under the state lock.
                let threads: Vec<Arc<Thread>> = {
                    let st = p.tg.state();
                    st.threads.iter().chain(&st.zombie_threads).cloned().collect()
                };
                let mut tids: Vec<i32> = threads.iter().map(|th| p.local(th.tid())).collect();
                tids.sort_unstable();
                Ok(tids
                    .into_iter()
                    .map(|tid| entry(Node::PidDir(Target { tgid: t.tgid, tid, thread_view: true }), tid.to_string().into_bytes()))
                    .collect())
            }
            Node::Entry(t, e @ (PidEntry::FdDir | PidEntry::FdInfoDir)) => {
                let p = fs.resolve(t)?;
                let Some(res) = p.res else { return Ok(Vec::new()) };
                Ok(res
                    .fds
                    .list()
                    .into_iter()
                    .map(|(fd, _, _)| {
                        let node = if e == PidEntry::FdDir { Node::Fd(t, fd.0) } else { Node::FdInfo(t, fd.0) };
                        entry(node, fd.0.to_string().into_bytes())
                    })
                    .collect())
            }
            Node::Entry(t, PidEntry::MapFilesDir) => Ok(pid::mapped_files(&fs.resolve(t)?)?
                .into_iter()
                .map(|(start, end, _)| entry(Node::MapFile(t, start, end), pid::map_file_name(start, end)))
                .collect()),
            Node::Entry(t, PidEntry::NsDir) => {
                fs.resolve(t)?;
                Ok(NsKind::ALL.iter().map(|&k| entry(Node::Ns(t, k), k.file_name().as_bytes().to_vec())).collect())
            }
            _ => error!(ENOTDIR),
        }
    }

    /// The namespace a /proc/[pid]/ns link stands for; only a process that may
    /// ptrace the owner may follow or read it (Linux's EACCES).
    fn namespace(&self, t: Target, kind: NsKind) -> SysResult<Namespace> {
        let p = self.fs.resolve(t)?;
        may_trace(&p)?;
        let res = p.res.as_ref().ok_or_else(|| errno!(ENOENT))?;
        Ok(Namespace::of(&p.tg, res, kind))
    }

    /// The dentry a magic link stands for.
    fn jump(&self) -> SysResult<Arc<Dentry>> {
        match self.node {
            Node::Entry(t, PidEntry::Cwd | PidEntry::Root) => {
                let res = self.fs.resolve(t)?.res.ok_or_else(|| errno!(ENOENT))?;
                Ok(if matches!(self.node, Node::Entry(_, PidEntry::Cwd)) { res.fs.cwd() } else { res.fs.root() })
            }
            Node::Fd(t, fd) => {
                let file = pid::fd_file(&self.fs.resolve(t)?, fd)?;
                Ok(match file.dentry() {
                    Some(d) => d,
                    // A pipe, socket or inherited host stream: a walk reaches the
                    // open file itself.
                    None => Dentry::new_root(Arc::new(OpenFileInode { file }), Weak::new()),
                })
            }
            Node::MapFile(t, start, end) => {
                // Linux lets only CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in the
                // initial user namespace follow these links (reading them needs
                // no more than listing them): they reach files whose directories
                // the follower may not search.
                let me = current().ok_or_else(|| errno!(EPERM))?;
                let init = crate::task::UserNamespace::initial();
                if !me.tg.capable_in(&init, consts::CAP_SYS_ADMIN) && !me.tg.capable_in(&init, consts::CAP_CHECKPOINT_RESTORE) {
                    return error!(EPERM);
                }
                Ok(pid::mapped_file(&self.fs.resolve(t)?, start, end)?.dentry)
            }
            Node::Ns(t, kind) => Ok(NsInode::dentry(kind, self.namespace(t, kind)?)),
            _ => error!(EINVAL),
        }
    }
}

impl Inode for ProcInode {
    fn stat(&self) -> SysResult<Stat> {
        let mode = self.mode();
        let mut st = self.fs.attrs(ino_of(self.node), mode).stat(0);
        match self.node {
            Node::Root => {
                st.st_nlink = 3 + self.fs.pid_ns.groups().len() as u64;
            }
            Node::SelfLink | Node::ThreadSelf => {
                st.st_size = self.readlink().map(|l| l.len() as i64).unwrap_or(0);
            }
            _ => {}
        }
        if let Some(t) = self.target() {
            let p = self.fs.resolve(t)?;
            // Owned by the process's effective ids, as Linux shows a dumpable task.
            let c = p.tg.creds();
            (st.st_uid, st.st_gid) = (c.euid, c.egid);
            if let Node::FdInfo(_, fd) = self.node {
                pid::fd_file(&p, fd)?;
            }
            if let Node::Fd(_, fd) = self.node {
                // lrwx, lr-x or l-wx by the open mode.
                let f = pid::fd_file(&p, fd)?;
                let fl = OpenFlags(f.status_flags());
                st.st_mode = S_IFLNK | if fl.readable() { 0o500 } else { 0 } | if fl.writable() { 0o300 } else { 0 };
                st.st_size = 64;
            }
            if let Node::MapFile(_, start, end) = self.node {
                // lr- or lrw- by the mapped file's open mode; it is always readable.
                let f = pid::mapped_file(&p, start, end)?;
                st.st_mode = S_IFLNK | 0o400 | if f.writable { 0o200 } else { 0 };
                st.st_size = 64;
            }
            if matches!(self.node, Node::PidDir(_)) {
                st.st_nlink = 2 + PidEntry::all(t.thread_view).filter(|(_, e)| e.mode() & S_IFDIR == S_IFDIR).count() as u64;
            }
            // One link per thread: 3 says single-threaded (Chrome's sandbox
            // checks so before it changes credentials).
            if matches!(self.node, Node::Entry(_, PidEntry::Task)) {
                st.st_nlink = 2 + p.tg.nr_threads() as u64;
            }
        }
        Ok(st)
    }

    fn kind(&self) -> u32 {
        self.mode() & crate::vfs::inode::S_IFMT
    }

    fn lookup(&self, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        let fs = &self.fs;
        let node = match self.node {
            Node::Root => match name {
                b"self" => Node::SelfLink,
                b"thread-self" => Node::ThreadSelf,
                _ => match parse_num(name) {
                    Some(id) => Node::PidDir(fs.pid_target(id).ok_or_else(|| errno!(ENOENT))?),
                    None => Node::Static(system::lookup(None, name).ok_or_else(|| errno!(ENOENT))?),
                },
            },
            Node::Static(i) => {
                if self.kind() != S_IFDIR {
                    return error!(ENOTDIR);
                }
                Node::Static(system::lookup(Some(i), name).ok_or_else(|| errno!(ENOENT))?)
            }
            Node::PidDir(t) => {
                fs.resolve(t)?;
                let e = PidEntry::all(t.thread_view).find(|(n, _)| n.as_bytes() == name).ok_or_else(|| errno!(ENOENT))?.1;
                Node::Entry(t, e)
            }
            Node::Entry(t, PidEntry::Task) => {
                let tid = parse_num(name).ok_or_else(|| errno!(ENOENT))?;
                let target = Target { tgid: t.tgid, tid, thread_view: true };
                fs.resolve(target)?;
                Node::PidDir(target)
            }
            Node::Entry(t, e @ (PidEntry::FdDir | PidEntry::FdInfoDir)) => {
                let fd = parse_num(name).ok_or_else(|| errno!(ENOENT))?;
                pid::fd_file(&fs.resolve(t)?, fd)?;
                if e == PidEntry::FdDir {
                    Node::Fd(t, fd)
                } else {
                    Node::FdInfo(t, fd)
                }
            }
            Node::Entry(t, PidEntry::MapFilesDir) => {
                let (start, end) = pid::parse_map_file_name(name).ok_or_else(|| errno!(ENOENT))?;
                pid::mapped_file(&fs.resolve(t)?, start, end)?;
                Node::MapFile(t, start, end)
            }
            Node::Entry(t, PidEntry::NsDir) => {
                let kind = NsKind::ALL.into_iter().find(|k| k.file_name().as_bytes() == name).ok_or_else(|| errno!(ENOENT))?;
                fs.resolve(t)?;
                Node::Ns(t, kind)
            }
            _ => return error!(ENOTDIR),
        };
        Ok(fs.inode(node))
    }

    fn readlink(&self) -> SysResult<Vec<u8>> {
        match self.node {
            Node::SelfLink => {
                let th = current().ok_or_else(|| errno!(ENOENT))?;
                let tgid = self.fs.pid_ns.local_id(th.tg.tgid).ok_or_else(|| errno!(ENOENT))?;
                Ok(tgid.to_string().into_bytes())
            }
            Node::ThreadSelf => {
                let th = current().ok_or_else(|| errno!(ENOENT))?;
                let local = |id| self.fs.pid_ns.local_id(id).ok_or_else(|| errno!(ENOENT));
                Ok(format!("{}/task/{}", local(th.tg.tgid)?, local(th.tid())?).into_bytes())
            }
            Node::Static(i) => system::link_target(i).map(|s| s.as_bytes().to_vec()).ok_or_else(|| errno!(EINVAL)),
            Node::Entry(t, PidEntry::Exe) => {
                let p = self.fs.resolve(t)?;
                if p.res.is_none() {
                    return error!(ENOENT);
                }
                let exe = p.tg.exe.lock().unwrap_or_else(|e| e.into_inner()).clone();
                Ok(exe.into_bytes())
            }
            Node::Entry(_, PidEntry::Cwd | PidEntry::Root) => Ok(self.jump()?.path()),
            Node::Fd(t, fd) => Ok(pid::fd_name(&pid::fd_file(&self.fs.resolve(t)?, fd)?)),
            Node::MapFile(t, start, end) => Ok(pid::dentry_name(&pid::mapped_file(&self.fs.resolve(t)?, start, end)?.dentry)),
            Node::Ns(t, kind) => Ok(NsInode::link(kind, &self.namespace(t, kind)?)),
            _ => error!(EINVAL),
        }
    }

    fn jump_link(&self) -> Option<SysResult<Arc<Dentry>>> {
        match self.node {
            Node::Entry(_, PidEntry::Cwd | PidEntry::Root) | Node::Fd(..) | Node::MapFile(..) | Node::Ns(..) => Some(self.jump()),
            _ => None,
        }
    }

    fn open(&self, dentry: &Arc<Dentry>, flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        match self.kind() {
            S_IFDIR => {
                if flags.writable() {
                    return error!(EISDIR);
                }
                // Fail now, not at the first getdents, if the process is gone.
                if let Some(t) = self.target() {
                    self.fs.resolve(t)?;
                }
                Ok(Arc::new(DirFile::new(dentry.clone(), flags.0)))
            }
            S_IFLNK => error!(ELOOP),
            _ => {
                if let Node::Entry(t, PidEntry::Mem) = self.node {
                    return pid::open_mem(&self.fs, t, dentry, flags.0);
                }
                let (gen, writer) = match self.node {
                    Node::Static(i) => (system::generator(&self.fs, i)?, system::writer(&self.fs, i)),
                    Node::Entry(t, e) => {
                        self.fs.resolve(t)?;
                        (pid::generator(&self.fs, t, e), pid::writer(&self.fs, t, e))
                    }
                    Node::FdInfo(t, fd) => {
                        pid::fd_file(&self.fs.resolve(t)?, fd)?;
                        (pid::fdinfo_generator(&self.fs, t, fd), None)
                    }
                    _ => return error!(EINVAL),
                };
                // Who may open for writing is the VFS's permission check (by the
                // mode); a file with nothing to write to answers EINVAL to write(2),
                // as Linux's files without a write operation do.
                Ok(Arc::new(SeqFile::new(dentry.clone(), gen, writer, flags)))
            }
        }
    }

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        self.list()
    }

    fn cache_lookups(&self) -> bool {
        false
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// What a walk through /proc/[pid]/fd/N reaches for a file with no dentry: the
/// open file itself. Opening it shares that open file description (Linux would
/// make a new one on the same pipe; the difference shows only in status flags);
/// a socket does not open (ENXIO: sockfs inodes have Linux's no_open).
struct OpenFileInode {
    file: Arc<dyn FileDescription>,
}

impl Inode for OpenFileInode {
    fn stat(&self) -> SysResult<Stat> {
        self.file.stat()
    }

    fn kind(&self) -> u32 {
        self.file.stat().map(|s| s.st_mode & crate::vfs::inode::S_IFMT).unwrap_or(S_IFREG)
    }

    fn open(&self, _dentry: &Arc<Dentry>, _flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        if self.kind() == S_IFSOCK {
            return error!(ENXIO);
        }
        Ok(self.file.clone())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests;
