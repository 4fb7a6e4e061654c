//! /proc/[pid] and /proc/[pid]/task/[tid]: what each file shows, in Linux's formats
//! (fs/proc/array.c, fs/proc/base.c, fs/proc/task_mmu.c).

use super::system::{mounts_text, mountinfo_text, reader_namespaces};
use super::{current, may_trace, reader_user_ns, Proc, ProcFs, Target};
use crate::fs::simple::{major_minor, Generator, Writer};
use crate::mm::{MapInfo, VmFile};
use crate::task::signals::{SIG_DFL, SIG_IGN};
use crate::task::user_ns::{IdKind, Writer as UserNsWriter};
use crate::task::{RLIMIT_COUNT, RLIMIT_SIGPENDING};
use crate::vfs::inode::{S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};
use crate::vfs::FileDescription;
use rvisor_abi::{consts, errno, error, PAGE_SIZE, SysResult, UserAddr};
use std::fmt::Write as _;
use std::sync::Arc;

/// The entries of a /proc/[pid] directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PidEntry {
    Auxv,
    Cgroup,
    Cmdline,
    Comm,
    Cwd,
    Environ,
    Exe,
    GidMap,
    FdDir,
    FdInfoDir,
    Io,
    Limits,
    MapFilesDir,
    Maps,
    Mem,
    Smaps,
    SmapsRollup,
    Mountinfo,
    Mounts,
    NsDir,
    OomScoreAdj,
    Root,
    Setgroups,
    Stat,
    Statm,
    Status,
    Task,
    TimensOffsets,
    UidMap,
}

const ENTRIES: &[(&str, PidEntry)] = &[
    ("auxv", PidEntry::Auxv),
    ("cgroup", PidEntry::Cgroup),
    ("cmdline", PidEntry::Cmdline),
    ("comm", PidEntry::Comm),
    ("cwd", PidEntry::Cwd),
    ("environ", PidEntry::Environ),
    ("exe", PidEntry::Exe),
    ("fd", PidEntry::FdDir),
    ("fdinfo", PidEntry::FdInfoDir),
    ("gid_map", PidEntry::GidMap),
    ("io", PidEntry::Io),
    ("limits", PidEntry::Limits),
    ("map_files", PidEntry::MapFilesDir),
    ("maps", PidEntry::Maps),
    ("mem", PidEntry::Mem),
    ("smaps", PidEntry::Smaps),
    ("smaps_rollup", PidEntry::SmapsRollup),
    ("mountinfo", PidEntry::Mountinfo),
    ("mounts", PidEntry::Mounts),
    ("ns", PidEntry::NsDir),
    ("oom_score_adj", PidEntry::OomScoreAdj),
    ("root", PidEntry::Root),
    ("setgroups", PidEntry::Setgroups),
    ("stat", PidEntry::Stat),
    ("statm", PidEntry::Statm),
    ("status", PidEntry::Status),
    ("task", PidEntry::Task),
    ("timens_offsets", PidEntry::TimensOffsets),
    ("uid_map", PidEntry::UidMap),
];

impl PidEntry {
    /// The entries of a process directory (with task/) or a thread's (without).
    pub fn all(thread_view: bool) -> impl Iterator<Item = (&'static str, PidEntry)> {
        ENTRIES.iter().copied().filter(move |&(_, e)| !(thread_view && matches!(e, PidEntry::Task | PidEntry::TimensOffsets | PidEntry::MapFilesDir)))
    }

    pub fn mode(self) -> u32 {
        match self {
            PidEntry::FdDir | PidEntry::FdInfoDir | PidEntry::MapFilesDir => S_IFDIR | 0o500,
            PidEntry::NsDir => S_IFDIR | 0o511,
            PidEntry::Task => S_IFDIR | 0o555,
            PidEntry::Cwd | PidEntry::Exe | PidEntry::Root => S_IFLNK | 0o777,
            PidEntry::Environ | PidEntry::Auxv | PidEntry::Io => S_IFREG | 0o400,
            PidEntry::Mem => S_IFREG | 0o600,
            PidEntry::Comm | PidEntry::OomScoreAdj | PidEntry::UidMap | PidEntry::GidMap | PidEntry::Setgroups | PidEntry::TimensOffsets => S_IFREG | 0o644,
            _ => S_IFREG | 0o444,
        }
    }
}

/// The open file at descriptor `fd` of the process, or ENOENT.
pub(super) fn fd_file(p: &Proc, fd: i32) -> SysResult<Arc<dyn FileDescription>> {
    let res = p.res.as_ref().ok_or_else(|| errno!(ENOENT))?;
    res.fds.get(crate::vfs::Fd(fd)).map_err(|_| errno!(ENOENT))
}

/// The name of a character device, by its numbers.
fn char_device_name(rdev: u64) -> String {
    match major_minor(rdev) {
        (1, 3) => "/dev/null".into(),
        (1, 5) => "/dev/zero".into(),
        (1, 7) => "/dev/full".into(),
        (1, 8) => "/dev/random".into(),
        (1, 9) => "/dev/urandom".into(),
        (5, 0) => "/dev/tty".into(),
        (5, 1) => "/dev/console".into(),
        (5, 2) => "/dev/ptmx".into(),
        (4, n) => format!("/dev/tty{n}"),
        (m @ 136..=143, n) => format!("/dev/pts/{}", (m - 136) * 256 + n),
        (m, n) => format!("/dev/char/{m}:{n}"),
    }
}

/// What /proc/[pid]/fd/N, maps and map_files show for a file by its name: its
/// path, and " (deleted)" once the name is gone and no other link is left
/// (Linux's d_path of an unlinked dentry). A memfd's name says so itself.
pub(super) fn dentry_name(d: &Arc<crate::vfs::Dentry>) -> Vec<u8> {
    let mut path = d.path();
    if d.is_stale() && d.inode.stat().is_ok_and(|st| st.st_nlink == 0) {
        path.extend_from_slice(b" (deleted)");
    }
    path
}

/// What /proc/[pid]/fd/N shows for an open file.
pub(super) fn fd_name(file: &Arc<dyn FileDescription>) -> Vec<u8> {
    if let Some(n) = file.proc_name() {
        return n;
    }
    if let Some(d) = file.dentry() {
        return dentry_name(&d);
    }
    let name = match file.stat() {
        Ok(st) => match st.st_mode & S_IFMT {
            S_IFIFO => format!("pipe:[{}]", st.st_ino),
            S_IFSOCK => format!("socket:[{}]", st.st_ino),
            S_IFCHR => char_device_name(st.st_rdev),
            // A host file handed to the sandbox (a redirected standard stream):
            // its host path is not the sandbox's to know.
            0 => "anon_inode:[unknown]".to_string(),
            _ => format!("host:[{}]", st.st_ino),
        },
        Err(_) => "anon_inode:[unknown]".to_string(),
    };
    name.into_bytes()
}

/// The generator of a /proc/[pid] file.
pub(super) fn generator(fs: &Arc<ProcFs>, t: Target, e: PidEntry) -> Generator {
    let fs = fs.clone();
    Arc::new(move || {
        let p = fs.resolve(t)?;
        match e {
            PidEntry::Auxv => Ok(auxv(&p)),
            PidEntry::Cgroup => Ok(b"0::/\n".to_vec()),
            PidEntry::Cmdline => Ok(cmdline(&p, false)),
            PidEntry::Environ => Ok(cmdline(&p, true)),
            PidEntry::Comm => Ok(comm(&p)),
            PidEntry::Io => Ok(io(&p, t).into_bytes()),
            PidEntry::Limits => Ok(limits(&p).into_bytes()),
            PidEntry::Maps => Ok(maps(&p).into_bytes()),
            PidEntry::Smaps => Ok(smaps(&p).into_bytes()),
            PidEntry::SmapsRollup => Ok(smaps_rollup(&p).into_bytes()),
            // As the process sees them: its namespace, from its root. A zombie
            // has none (Linux's EINVAL).
            PidEntry::Mountinfo => Ok(mountinfo_text(&p.res.as_ref().ok_or_else(|| errno!(EINVAL))?.fs).into_bytes()),
            PidEntry::Mounts => Ok(mounts_text(&p.res.as_ref().ok_or_else(|| errno!(EINVAL))?.fs).into_bytes()),
            PidEntry::OomScoreAdj => Ok(b"0\n".to_vec()),
            PidEntry::Stat => Ok(stat(&p, t).into_bytes()),
            PidEntry::Statm => Ok(statm(&p).into_bytes()),
            PidEntry::Status => Ok(status(&p, t).into_bytes()),
            PidEntry::UidMap => Ok(p.tg.user_ns().map_text(IdKind::Uid, &reader_user_ns()).into_bytes()),
            PidEntry::GidMap => Ok(p.tg.user_ns().map_text(IdKind::Gid, &reader_user_ns()).into_bytes()),
            PidEntry::Setgroups => Ok(p.tg.user_ns().setgroups_text().as_bytes().to_vec()),
            PidEntry::TimensOffsets => Ok(timens_offsets(&p.res.as_ref().ok_or_else(|| errno!(ESRCH))?.ns.time_for_children.offsets()).into_bytes()),
            PidEntry::Cwd | PidEntry::Exe | PidEntry::Root | PidEntry::FdDir | PidEntry::FdInfoDir | PidEntry::MapFilesDir | PidEntry::NsDir | PidEntry::Task | PidEntry::Mem => error!(EINVAL),
        }
    })
}

/// Opens /proc/[pid]/mem: only a process that may ptrace the owner may (EACCES).
pub(super) fn open_mem(fs: &Arc<ProcFs>, t: Target, dentry: &Arc<crate::vfs::Dentry>, flags: u32) -> SysResult<Arc<dyn FileDescription>> {
    let p = fs.resolve(t)?;
    let mm = p.res.as_ref().map(|r| r.mm.clone()).ok_or_else(|| errno!(ENOENT))?;
    may_trace(&p)?;
    Ok(Arc::new(super::mem::MemFile::new(dentry.clone(), mm, flags)))
}

/// What writing a /proc/[pid] file does, for the writable ones.
pub(super) fn writer(fs: &Arc<ProcFs>, t: Target, e: PidEntry) -> Option<Writer> {
    let fs = fs.clone();
    match e {
        // Linux's comm_write: only within the caller's own process; the bytes
        // become the name as written (a trailing newline included), cut to 15.
        PidEntry::Comm => Some(Arc::new(move |data: &[u8]| {
            let p = fs.resolve(t)?;
            if current().is_none_or(|c| !Arc::ptr_eq(&c.tg, &p.tg)) {
                return error!(EINVAL);
            }
            let th = p.th.ok_or_else(|| errno!(ESRCH))?;
            let mut c = [0u8; 16];
            let n = data.iter().take(15).position(|&b| b == 0).unwrap_or(data.len().min(15));
            c[..n].copy_from_slice(&data[..n]);
            *th.comm.lock().unwrap_or_else(|e| e.into_inner()) = c;
            Ok(())
        })),
        // Accepted and checked, not acted on: the sandbox has no OOM killer.
        PidEntry::OomScoreAdj => Some(Arc::new(move |data: &[u8]| {
            fs.resolve(t)?;
            let s = std::str::from_utf8(data).map_err(|_| errno!(EINVAL))?;
            match s.trim().parse::<i32>() {
                Ok(v) if (-1000..=1000).contains(&v) => Ok(()),
                _ => error!(EINVAL),
            }
        })),
        PidEntry::UidMap | PidEntry::GidMap | PidEntry::Setgroups => Some(Arc::new(move |data: &[u8]| {
            let ns = fs.resolve(t)?.tg.user_ns();
            let me = current().ok_or_else(|| errno!(EPERM))?;
            let caps = me.tg.caps.lock().unwrap_or_else(|e| e.into_inner()).effective;
            let c = me.tg.creds();
            let writer = UserNsWriter { ns: me.tg.user_ns(), euid: c.euid, egid: c.egid, caps };
            match e {
                PidEntry::UidMap => ns.write_map(IdKind::Uid, &writer, data),
                PidEntry::GidMap => ns.write_map(IdKind::Gid, &writer, data),
                _ => ns.write_setgroups(&writer, data),
            }
        })),
        // The offsets of the time namespace for the process's children, which
        // the writer's CAP_SYS_TIME over it may set until a process enters it.
        PidEntry::TimensOffsets => Some(Arc::new(move |data: &[u8]| {
            let ns = fs.resolve(t)?.res.ok_or_else(|| errno!(ESRCH))?.ns.time_for_children;
            let changes = parse_timens_offsets(data)?;
            if current().is_none_or(|me| !me.tg.capable_in(&ns.owner, consts::CAP_SYS_TIME)) {
                return error!(EPERM);
            }
            let k = fs.kernel()?;
            ns.set_offsets(&changes, |clock| k.clocks.read(clock))
        })),
        _ => None,
    }
}

/// /proc/[pid]/timens_offsets as Linux prints it.
fn timens_offsets(o: &crate::time::namespace::TimeOffsets) -> String {
    let line = |name: &str, ns: i64| format!("{name:<10} {:>10} {:>9}\n", ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    line("monotonic", o.monotonic_ns) + &line("boottime", o.boottime_ns)
}

/// Lines of "CLOCK SECONDS NANOSECONDS", CLOCK a name or a number, as Linux's
/// timens_offsets_write reads them (its sscanf "%9s %lld %lu"): at most two, the
/// rest ignored; anything unreadable is EINVAL.
fn parse_timens_offsets(data: &[u8]) -> SysResult<Vec<(i32, i64, i64)>> {
    use crate::time::namespace::{CLOCK_BOOTTIME, CLOCK_MONOTONIC};
    let text = std::str::from_utf8(data).map_err(|_| errno!(EINVAL))?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.split('\n').take(2) {
        let mut words = line.split_ascii_whitespace();
        let (Some(clock), Some(sec), Some(nsec)) = (words.next(), words.next(), words.next()) else { return error!(EINVAL) };
        let clock = match clock {
            "monotonic" | "1" => CLOCK_MONOTONIC,
            "boottime" | "7" => CLOCK_BOOTTIME,
            _ => return error!(EINVAL),
        };
        let sec: i64 = sec.parse().map_err(|_| errno!(EINVAL))?;
        let nsec: i64 = nsec.parse().ok().filter(|n| (0..1_000_000_000).contains(n)).ok_or_else(|| errno!(EINVAL))?;
        out.push((clock, sec, nsec));
    }
    Ok(out)
}

/// /proc/[pid]/fdinfo/N.
pub(super) fn fdinfo_generator(fs: &Arc<ProcFs>, t: Target, fd: i32) -> Generator {
    let fs = fs.clone();
    Arc::new(move || {
        let p = fs.resolve(t)?;
        let res = p.res.as_ref().ok_or_else(|| errno!(ENOENT))?;
        let (_, file, cloexec) = res.fds.list().into_iter().find(|(f, _, _)| f.0 == fd).ok_or_else(|| errno!(ENOENT))?;
        let pos = file.seek(0, 1).unwrap_or(0);
        let flags = file.status_flags() | if cloexec { crate::vfs::OpenFlags::CLOEXEC } else { 0 };
        let mnt = file.dentry().and_then(|d| d.mount.upgrade()).map_or(0, |m| m.id);
        let ino = file.stat().map(|s| s.st_ino).unwrap_or(0);
        let mut text = format!("pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt}\nino:\t{ino}\n");
        if let Some(pidfd) = crate::fs::pidfd::PidFd::of(&file) {
            // As this /proc sees it (0: outside its namespace; -1: reaped).
            let pid = pidfd.pid();
            let pid = if pid < 0 { pid } else { fs.pid_ns.local_id(pid).unwrap_or(0) };
            text.push_str(&format!("Pid:\t{pid}\nNSpid:\t{pid}\n"));
        }
        Ok(text.into_bytes())
    })
}

fn comm_of(p: &Proc) -> String {
    let c = match &p.th {
        Some(th) => *th.comm.lock().unwrap_or_else(|e| e.into_inner()),
        None => crate::task::comm_from_path(&p.tg.exe.lock().unwrap_or_else(|e| e.into_inner())),
    };
    let n = c.iter().position(|&b| b == 0).unwrap_or(c.len());
    String::from_utf8_lossy(&c[..n]).into_owned()
}

/// A process as `rvisor ps` lists it.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    /// The one-letter state of /proc/PID/stat.
    pub state: char,
    pub threads: usize,
    /// CPU time: the app's own, and the Sentry's on its behalf.
    pub user_ns: u64,
    pub sys_ns: u64,
    /// Bytes of its address space backed by memory (as /proc/PID/status's VmRSS).
    pub rss: u64,
    /// The command line, arguments joined by spaces; `[comm]` when it has none.
    pub cmd: String,
}

/// Every process of `container`, by pid.
pub fn processes(k: &Arc<crate::Kernel>, container: &Arc<crate::task::Container>) -> Vec<ProcessInfo> {
    let mut out: Vec<ProcessInfo> = k
        .all_groups()
        .into_iter()
        .filter(|tg| Arc::ptr_eq(&tg.container, container))
        .map(|tg| {
            let th = tg.threads().into_iter().next();
            let res = th.as_ref().and_then(|t| t.resources());
            let p = Proc { k: k.clone(), tg, th, res, ns: container.pid_ns.clone() };
            let args = cmdline(&p, false);
            let cmd = if args.is_empty() {
                format!("[{}]", comm_of(&p))
            } else {
                String::from_utf8_lossy(args.strip_suffix(b"\0").unwrap_or(&args)).replace('\0', " ")
            };
            let cpu = p.tg.cpu_times();
            let rss = p.res.as_ref().map_or(0, |r| r.mm.populated_bytes());
            ProcessInfo { pid: p.tg.tgid, ppid: ids(&p).0, uid: p.tg.creds().uid, state: state(&p).0, threads: p.tg.threads().len(), user_ns: cpu.user_ns, sys_ns: cpu.sys_ns, rss, cmd }
        })
        .collect();
    out.sort_by_key(|p| p.pid);
    out
}

fn comm(p: &Proc) -> Vec<u8> {
    let mut v = comm_of(p).into_bytes();
    v.push(b'\n');
    v
}

/// cmdline (or environ): the strings the loader placed, read from the process's
/// memory as it is now.
fn cmdline(p: &Proc, environ: bool) -> Vec<u8> {
    let Some(res) = &p.res else { return Vec::new() };
    let l = res.mm.layout();
    let (start, end) = if environ { (l.env_start, l.env_end) } else { (l.arg_start, l.arg_end) };
    if end <= start || end - start > 1 << 24 {
        return Vec::new();
    }
    let mut buf = vec![0u8; (end - start) as usize];
    let n = res.mm.read_bytes_remote(UserAddr(start), &mut buf);
    buf.truncate(n);
    buf
}

fn auxv(p: &Proc) -> Vec<u8> {
    p.res.as_ref().map(|res| res.mm.layout().auxv_bytes()).unwrap_or_default()
}

fn mappings(p: &Proc) -> Vec<MapInfo> {
    p.res.as_ref().map(|r| r.mm.mappings()).unwrap_or_default()
}

/// The file mappings /proc/[pid]/map_files lists, as (start, end, file) (Linux's
/// VMAs with a vm_file). Only a process that may ptrace the owner may list or
/// look them up (EACCES); following a link asks more (`ProcInode::jump`).
pub(super) fn mapped_files(p: &Proc) -> SysResult<Vec<(u64, u64, VmFile)>> {
    may_trace(p)?;
    Ok(mappings(p).into_iter().filter_map(|m| Some((m.start, m.end, m.file?.0))).collect())
}

/// The file mapped at exactly `[start, end)`, or ENOENT.
pub(super) fn mapped_file(p: &Proc, start: u64, end: u64) -> SysResult<VmFile> {
    mapped_files(p)?.into_iter().find(|m| (m.0, m.1) == (start, end)).map(|m| m.2).ok_or_else(|| errno!(ENOENT))
}

/// A map_files entry's name, "start-end" in lowercase hex.
pub(super) fn map_file_name(start: u64, end: u64) -> Vec<u8> {
    format!("{start:x}-{end:x}").into_bytes()
}

/// The range a map_files name stands for: two hex numbers without leading zeros
/// joined by '-' (Linux's dname_to_vma_addr), or None.
pub(super) fn parse_map_file_name(name: &[u8]) -> Option<(u64, u64)> {
    let hex = |s: &[u8]| {
        if s.is_empty() || s.len() > 16 || s[0] == b'0' && s.len() > 1 || !s.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u64::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok()
    };
    let dash = name.iter().position(|&b| b == b'-')?;
    Some((hex(&name[..dash])?, hex(&name[dash + 1..])?))
}

/// What a mapping's line shows after its permissions: the offset in its file,
/// the file's device and inode number, and its name.
#[derive(Default)]
struct Backing {
    offset: u64,
    dev: u64,
    ino: u64,
    name: Option<String>,
}

impl Backing {
    /// A file mapping's as the sandbox's stat and /proc/PID/fd show the file; a
    /// shared anonymous mapping's, Linux's file of its own on its internal tmpfs
    /// (device 00:01). Called without the address space's lock: stat may ask a
    /// file system.
    fn of(m: &MapInfo) -> Backing {
        if let Some((f, offset)) = &m.file {
            let d = &f.dentry;
            // A file whose stat fails (a host error) still has its offset and name.
            let (dev, ino) = d.inode.stat().map_or((0, 0), |st| (st.st_dev, st.st_ino));
            return Backing { offset: *offset, dev, ino, name: Some(String::from_utf8_lossy(&dentry_name(d)).into_owned()) };
        }
        if m.shmem_ino != 0 {
            let name = m.name.unwrap_or("/dev/zero (deleted)");
            return Backing { dev: 1, ino: m.shmem_ino, name: Some(name.to_string()), ..Backing::default() };
        }
        Backing { name: m.name.map(str::to_string), ..Backing::default() }
    }
}

/// Linux's show_map_vma: the fixed part, and the name from column 74.
fn map_line(out: &mut String, start: u64, end: u64, perms: &str, b: &Backing) {
    let line_start = out.len();
    let (major, minor) = major_minor(b.dev);
    let _ = write!(out, "{:08x}-{:08x} {perms} {:08x} {:02x}:{:02x} {} ", start, end, b.offset, major, minor, b.ino);
    if let Some(name) = &b.name {
        while out.len() - line_start < 73 {
            out.push(' ');
        }
        out.push_str(name);
    }
    out.push('\n');
}

fn perms_text(m: &MapInfo) -> String {
    format!(
        "{}{}{}{}",
        if m.perms.read { 'r' } else { '-' },
        if m.perms.write { 'w' } else { '-' },
        if m.perms.exec { 'x' } else { '-' },
        if m.shared { 's' } else { 'p' }
    )
}

fn maps(p: &Proc) -> String {
    let mut out = String::new();
    for m in mappings(p) {
        map_line(&mut out, m.start, m.end, &perms_text(&m), &Backing::of(&m));
    }
    out
}

/// What smaps says of a mapping's pages, in bytes. The Sentry does not track which
/// pages are dirty or shared with another process: a private file mapping's pages
/// count as clean, the rest as dirty, and each as this process's alone (Pss = Rss).
#[derive(Default, Clone, Copy)]
struct PageCounts {
    rss: u64,
    anon: u64,
    file: u64,
    shmem: u64,
    shared_clean: u64,
    shared_dirty: u64,
    private_clean: u64,
    private_dirty: u64,
    /// What of it is in locked mappings (mlock).
    locked: u64,
}

impl PageCounts {
    fn of(m: &MapInfo) -> PageCounts {
        let rss = m.resident;
        let locked = if m.mlock == crate::mm::Mlock::Unlocked { 0 } else { rss };
        let mut c = PageCounts { rss, locked, ..PageCounts::default() };
        match (m.shared, m.file.is_some()) {
            (true, true) => (c.file, c.shared_dirty) = (rss, rss),
            (true, false) => (c.shmem, c.shared_dirty) = (rss, rss),
            (false, true) => (c.file, c.private_clean) = (rss, rss),
            (false, false) => (c.anon, c.private_dirty) = (rss, rss),
        }
        c
    }

    fn add(&mut self, o: &PageCounts) {
        self.rss += o.rss;
        self.anon += o.anon;
        self.file += o.file;
        self.shmem += o.shmem;
        self.shared_clean += o.shared_clean;
        self.shared_dirty += o.shared_dirty;
        self.private_clean += o.private_clean;
        self.private_dirty += o.private_dirty;
        self.locked += o.locked;
    }

    /// The fields smaps and smaps_rollup share; the rollup adds the Pss split.
    fn write(&self, out: &mut String, rollup: bool) {
        let mut fields = vec![("Rss", self.rss), ("Pss", self.rss), ("Pss_Dirty", self.shared_dirty + self.private_dirty)];
        if rollup {
            fields.extend([("Pss_Anon", self.anon), ("Pss_File", self.file), ("Pss_Shmem", self.shmem)]);
        }
        fields.extend([
            ("Shared_Clean", self.shared_clean),
            ("Shared_Dirty", self.shared_dirty),
            ("Private_Clean", self.private_clean),
            ("Private_Dirty", self.private_dirty),
            ("Referenced", self.rss),
            ("Anonymous", self.anon),
        ]);
        for name in ["KSM", "LazyFree", "AnonHugePages", "ShmemPmdMapped", "FilePmdMapped", "Shared_Hugetlb", "Private_Hugetlb", "Swap", "SwapPss"] {
            fields.push((name, 0));
        }
        fields.push(("Locked", self.locked));
        for (name, v) in fields {
            kb_line(out, name, v / 1024);
        }
    }
}

/// One `Name:   N kB` line, as Linux's smaps aligns them.
fn kb_line(out: &mut String, name: &str, kb: u64) {
    let _ = writeln!(out, "{:<16}{:>8} kB", format!("{name}:"), kb);
}

fn smaps(p: &Proc) -> String {
    let mut out = String::new();
    for m in mappings(p) {
        map_line(&mut out, m.start, m.end, &perms_text(&m), &Backing::of(&m));
        kb_line(&mut out, "Size", (m.end - m.start) / 1024);
        kb_line(&mut out, "KernelPageSize", 4);
        kb_line(&mut out, "MMUPageSize", 4);
        PageCounts::of(&m).write(&mut out, false);
        let _ = writeln!(out, "{:<16}{:>8}", "THPeligible:", 0);
        out.push_str("VmFlags: ");
        let flags = [
            (m.perms.read, "rd"),
            (m.perms.write, "wr"),
            (m.perms.exec, "ex"),
            (m.shared, "sh"),
            (true, "mr"),
            (m.may_write, "mw"),
            (true, "me"),
            (m.growsdown, "gd"),
            (m.mlock != crate::mm::Mlock::Unlocked, "lo"),
            (m.mlock == crate::mm::Mlock::OnFault, "lf"),
        ];
        for (_, f) in flags.iter().filter(|(on, _)| *on) {
            out.push_str(f);
            out.push(' ');
        }
        out.push('\n');
    }
    out
}

fn smaps_rollup(p: &Proc) -> String {
    let maps = mappings(p);
    let mut out = String::new();
    let (Some(first), Some(last)) = (maps.first(), maps.last()) else { return out };
    map_line(&mut out, first.start, last.end, "---p", &Backing { name: Some("[rollup]".into()), ..Backing::default() });
    let mut sum = PageCounts::default();
    for m in &maps {
        sum.add(&PageCounts::of(m));
    }
    sum.write(&mut out, true);
    out
}

/// Sizes in bytes: total, resident, locked, stack, data (private writable), exec.
struct VmSizes {
    total: u64,
    resident: u64,
    locked: u64,
    stack: u64,
    data: u64,
    exe: u64,
    start_code: u64,
    end_code: u64,
}

fn vm_sizes(p: &Proc) -> VmSizes {
    let mut s = VmSizes { total: 0, resident: 0, locked: 0, stack: 0, data: 0, exe: 0, start_code: 0, end_code: 0 };
    for m in mappings(p) {
        let len = m.end - m.start;
        s.total += len;
        if m.mlock != crate::mm::Mlock::Unlocked {
            s.locked += len;
        }
        s.resident += m.resident;
        match m.name {
            Some("[stack]") => s.stack += len,
            Some(_) => {}
            None if m.perms.exec && !m.perms.write => {
                s.exe += len;
                if s.start_code == 0 {
                    (s.start_code, s.end_code) = (m.start, m.end);
                }
            }
            None => {}
        }
        if m.perms.write && !m.shared && m.name != Some("[stack]") {
            s.data += len;
        }
    }
    s
}

/// The one-letter state and its name.
fn state(p: &Proc) -> (char, &'static str) {
    let st = p.tg.state();
    let zombie_thread = p.th.as_ref().is_some_and(|th| st.is_zombie_thread(th));
    if st.zombie.is_some() || p.th.is_none() || zombie_thread {
        return ('Z', "zombie");
    }
    // An exec waiting for the rest of its group to go sleeps killably (Linux's TASK_KILLABLE).
    let execs = p.th.as_ref().is_some_and(|th| st.execer.as_ref().is_some_and(|e| Arc::ptr_eq(e, th)));
    // A traced thread that took its part in the group stop runs on.
    let stopped = p.th.as_ref().map_or(st.stopped, |th| th.held_by_group_stop(&st));
    drop(st);
    // A stop for its tracer (a group stop of a traced thread is one too).
    if p.th.as_ref().is_some_and(|th| th.is_traced() && th.ptrace().stop.is_some()) {
        return ('t', "tracing stop");
    }
    if stopped {
        return ('T', "stopped");
    }
    match (&p.th, current()) {
        (Some(th), _) if th.waiter.is_asleep() && execs => ('D', "disk sleep"),
        (Some(th), _) if th.waiter.is_asleep() => ('S', "sleeping"),
        _ => ('R', "running"),
    }
}

/// Pending signals (this thread's, the group's), blocked, ignored, caught.
fn signal_masks(p: &Proc) -> (u64, u64, u64, u64, u64) {
    let (pending, blocked) = match &p.th {
        Some(th) => {
            let s = th.sig();
            (s.pending.mask, s.mask)
        }
        None => (0, 0),
    };
    let (shared, ignored, caught) = {
        let s = p.tg.sig();
        let mut ign = 0u64;
        let mut cgt = 0u64;
        for (i, a) in s.actions.iter().enumerate() {
            match a.handler {
                SIG_IGN => ign |= 1 << i,
                SIG_DFL => {}
                _ => cgt |= 1 << i,
            }
        }
        (s.pending.mask, ign, cgt)
    };
    (pending, shared, blocked, ignored, caught)
}

/// Its parent's, group's and session's ids, as this /proc shows them.
fn ids(p: &Proc) -> (i32, i32, i32) {
    let st = p.tg.state();
    let ppid = st.parent.as_ref().map(|g| p.local(g.tgid)).unwrap_or(0);
    (ppid, p.local(st.pgid), p.local(st.sid))
}

/// /proc/[pid]/stat (do_task_stat).
fn stat(p: &Proc, t: Target) -> String {
    let (state, _) = state(p);
    let (ppid, pgid, sid) = ids(p);
    let vm = vm_sizes(p);
    let layout = p.res.as_ref().map(|r| r.mm.layout()).unwrap_or_default();
    let (pending, shared, blocked, ignored, caught) = signal_masks(p);
    let threads = p.tg.nr_threads().max(1);
    let exit_signal = p.tg.exit_signal.load(std::sync::atomic::Ordering::Relaxed);
    let rss_lim = p.tg.rlimit(5).cur;
    // Clock ticks (USER_HZ = 100).
    let ticks = |ns: u64| (ns / 10_000_000).to_string();
    let (cpu, children) = (p.tg.cpu_times(), p.tg.cpu.lock().unwrap_or_else(|e| e.into_inner()).children);
    // A thread's own faults under task/, the whole process's otherwise; the
    // children's are the process's either way, as Linux's do_task_stat.
    let faults = match (&p.th, t.thread_view) {
        (Some(th), true) => th.rusage_counts(),
        _ => p.tg.rusage_counts(),
    };
    let child_faults = p.tg.cpu.lock().unwrap_or_else(|e| e.into_inner()).children_rusage;
    // The thread's start under task/, the leader's (the process's) otherwise,
    // on the reader's boot clock (Linux's timens_add_boottime_ns).
    let start_ns = match (&p.th, t.thread_view) {
        (Some(th), true) => th.start_ns.load(std::sync::atomic::Ordering::Relaxed),
        _ => p.tg.start_ns.load(std::sync::atomic::Ordering::Relaxed),
    };
    let start_ns = start_ns.saturating_add(reader_namespaces(&p.k).time.offsets().boottime_ns).max(0) as u64;
    let fields: Vec<String> = vec![
        ppid.to_string(),
        pgid.to_string(),
        sid.to_string(),
        "0".into(),  // tty_nr
        "-1".into(), // tpgid
        "4194304".into(), // flags: PF_RANDOMIZE
        faults.min_flt.to_string(),
        child_faults.min_flt.to_string(),
        faults.maj_flt.to_string(),
        child_faults.maj_flt.to_string(),
        ticks(cpu.user_ns),
        ticks(cpu.sys_ns),
        ticks(children.user_ns),
        ticks(children.sys_ns),
        "20".into(), // priority
        "0".into(),  // nice
        threads.to_string(),
        "0".into(), // itrealvalue
        ticks(start_ns),
        vm.total.to_string(),
        (vm.resident / PAGE_SIZE).to_string(),
        rss_lim.to_string(),
        vm.start_code.to_string(),
        vm.end_code.to_string(),
        layout.stack_top.to_string(),
        "0".into(),
        "0".into(), // kstkesp, kstkeip
        (pending | shared).to_string(),
        blocked.to_string(),
        ignored.to_string(),
        caught.to_string(),
        "0".into(),
        "0".into(),
        "0".into(), // wchan, nswap, cnswap
        exit_signal.to_string(),
        "0".into(), // processor
        "0".into(),
        "0".into(), // rt_priority, policy
        "0".into(),
        "0".into(),
        "0".into(), // blkio, guest_time, cguest_time
        "0".into(),
        "0".into(), // start_data, end_data
        layout.brk_start.to_string(),
        layout.arg_start.to_string(),
        layout.arg_end.to_string(),
        layout.env_start.to_string(),
        layout.env_end.to_string(),
        "0".into(), // exit_code
    ];
    format!("{} ({}) {} {}\n", t.tid, comm_of(p), state, fields.join(" "))
}

/// io: the process's counts (its exited threads' too), or one thread's under task/.
fn io(p: &Proc, t: Target) -> String {
    let [rchar, wchar, syscr, syscw] = match (&p.th, t.thread_view) {
        (Some(th), true) => th.io.get(),
        _ => p.tg.io(),
    };
    format!("rchar: {rchar}\nwchar: {wchar}\nsyscr: {syscr}\nsyscw: {syscw}\nread_bytes: 0\nwrite_bytes: 0\ncancelled_write_bytes: 0\n")
}

fn statm(p: &Proc) -> String {
    let vm = vm_sizes(p);
    format!("{} {} 0 {} 0 {} 0\n", vm.total / PAGE_SIZE, vm.resident / PAGE_SIZE, vm.exe / PAGE_SIZE, (vm.data + vm.stack) / PAGE_SIZE)
}

/// A CPU mask as "%*pb" prints it: 32-bit hex words, highest first, comma-separated.
fn cpu_mask(cpus: usize) -> String {
    let cpus = cpus.max(1);
    let words = cpus.div_ceil(32);
    let mut parts = Vec::new();
    for w in (0..words).rev() {
        let bits = (cpus - w * 32).min(32);
        let v: u64 = if bits == 32 { 0xffff_ffff } else { (1u64 << bits) - 1 };
        if w == words - 1 {
            parts.push(format!("{:0width$x}", v, width = bits.div_ceil(4)));
        } else {
            parts.push(format!("{v:08x}"));
        }
    }
    parts.join(",")
}

/// /proc/[pid]/status (proc_pid_status).
fn status(p: &Proc, t: Target) -> String {
    let (c, state_name) = state(p);
    let (ppid, pgid, sid) = ids(p);
    let creds = p.tg.creds();
    let groups = p.tg.groups.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let umask = p.res.as_ref().map(|r| r.fs.umask()).unwrap_or(0o022);
    let fd_size = p.res.as_ref().map(|r| r.fds.list().last().map(|(f, _, _)| f.0 as usize + 1).unwrap_or(0)).unwrap_or(0).max(64).next_power_of_two();
    let vm = vm_sizes(p);
    let (pending, shared, blocked, ignored, caught) = signal_masks(p);
    let threads = p.tg.nr_threads();
    let cpus = p.k.cpus;
    let caps = *p.tg.caps.lock().unwrap_or_else(|e| e.into_inner());
    let kb = |b: u64| format!("{:8} kB", b / 1024);
    let mut s = String::new();
    let _ = writeln!(s, "Name:\t{}", comm_of(p));
    // Linux's "%#04o".
    let _ = writeln!(s, "Umask:\t{umask:04o}");
    let _ = writeln!(s, "State:\t{c} ({state_name})");
    let _ = writeln!(s, "Tgid:\t{}", t.tgid);
    let _ = writeln!(s, "Ngid:\t0");
    let _ = writeln!(s, "Pid:\t{}", t.tid);
    let _ = writeln!(s, "PPid:\t{ppid}");
    let tracer = p.ns.thread(t.tid).and_then(|th| th.ptrace().tracer()).map_or(0, |g| p.local(g.tgid));
    let _ = writeln!(s, "TracerPid:\t{tracer}");
    let ns = reader_user_ns();
    let [uid, euid, suid, fsuid] = [creds.uid, creds.euid, creds.suid, creds.fsuid].map(|id| ns.show_uid(id));
    let [gid, egid, sgid, fsgid] = [creds.gid, creds.egid, creds.sgid, creds.fsgid].map(|id| ns.show_gid(id));
    let _ = writeln!(s, "Uid:\t{uid}\t{euid}\t{suid}\t{fsuid}");
    let _ = writeln!(s, "Gid:\t{gid}\t{egid}\t{sgid}\t{fsgid}");
    let _ = writeln!(s, "FDSize:\t{fd_size}");
    let _ = writeln!(s, "Groups:\t{}", groups.iter().map(|g| format!("{} ", ns.show_gid(*g))).collect::<String>());
    // Its ids from this /proc's namespace down to its own.
    let nested = |id: i32| p.ns.ids_from_here(id).iter().map(|i| i.to_string()).collect::<Vec<_>>().join("\t");
    let (st_pgid, st_sid) = {
        let st = p.tg.state();
        (st.pgid, st.sid)
    };
    let _ = writeln!(s, "NStgid:\t{}", nested(p.tg.tgid));
    let _ = writeln!(s, "NSpid:\t{}", nested(p.th.as_ref().map_or(p.tg.tgid, |th| th.tid())));
    let _ = writeln!(s, "NSpgid:\t{}", if pgid == 0 { "0".into() } else { nested(st_pgid) });
    let _ = writeln!(s, "NSsid:\t{}", if sid == 0 { "0".into() } else { nested(st_sid) });
    if p.res.is_some() {
        let _ = writeln!(s, "VmPeak:\t{}", kb(vm.total));
        let _ = writeln!(s, "VmSize:\t{}", kb(vm.total));
        let _ = writeln!(s, "VmLck:\t{}", kb(vm.locked));
        let _ = writeln!(s, "VmPin:\t{}", kb(0));
        let _ = writeln!(s, "VmHWM:\t{}", kb(vm.resident));
        let _ = writeln!(s, "VmRSS:\t{}", kb(vm.resident));
        let _ = writeln!(s, "RssAnon:\t{}", kb(vm.resident));
        let _ = writeln!(s, "RssFile:\t{}", kb(0));
        let _ = writeln!(s, "RssShmem:\t{}", kb(0));
        let _ = writeln!(s, "VmData:\t{}", kb(vm.data));
        let _ = writeln!(s, "VmStk:\t{}", kb(vm.stack));
        let _ = writeln!(s, "VmExe:\t{}", kb(vm.exe));
        let _ = writeln!(s, "VmLib:\t{}", kb(0));
        let _ = writeln!(s, "VmPTE:\t{}", kb(0));
        let _ = writeln!(s, "VmSwap:\t{}", kb(0));
        let _ = writeln!(s, "HugetlbPages:\t{}", kb(0));
        let _ = writeln!(s, "CoreDumping:\t0");
        let _ = writeln!(s, "THP_enabled:\t1");
    }
    let _ = writeln!(s, "Threads:\t{threads}");
    let _ = writeln!(s, "SigQ:\t0/{}", p.tg.rlimit(RLIMIT_SIGPENDING).cur);
    let _ = writeln!(s, "SigPnd:\t{pending:016x}");
    let _ = writeln!(s, "ShdPnd:\t{shared:016x}");
    let _ = writeln!(s, "SigBlk:\t{blocked:016x}");
    let _ = writeln!(s, "SigIgn:\t{ignored:016x}");
    let _ = writeln!(s, "SigCgt:\t{caught:016x}");
    let _ = writeln!(s, "CapInh:\t{:016x}", caps.inheritable);
    let _ = writeln!(s, "CapPrm:\t{:016x}", caps.permitted);
    let _ = writeln!(s, "CapEff:\t{:016x}", caps.effective);
    let _ = writeln!(s, "CapBnd:\t{:016x}", caps.bounding);
    let _ = writeln!(s, "CapAmb:\t{:016x}", caps.ambient);
    let _ = writeln!(s, "NoNewPrivs:\t{}", p.tg.no_new_privs.load(std::sync::atomic::Ordering::Relaxed));
    let (mode, filters) = match &p.th {
        Some(th) if p.res.is_some() || th.tid() != p.tg.tgid => {
            let seccomp = th.seccomp();
            (seccomp.number(), seccomp.filters())
        }
        // A zombie (or its leader's, before the rest): its leader's at exit.
        _ => *p.tg.exit_seccomp.lock().unwrap_or_else(|e| e.into_inner()),
    };
    let _ = writeln!(s, "Seccomp:\t{mode}");
    let _ = writeln!(s, "Seccomp_filters:\t{filters}");
    let _ = writeln!(s, "Speculation_Store_Bypass:\tthread vulnerable");
    let _ = writeln!(s, "SpeculationIndirectBranch:\tconditional enabled");
    let _ = writeln!(s, "Cpus_allowed:\t{}", cpu_mask(cpus));
    let _ = writeln!(s, "Cpus_allowed_list:\t{}", super::super::sys::cpu_range(cpus).trim_end());
    let _ = writeln!(s, "Mems_allowed:\t00000000,00000001");
    let _ = writeln!(s, "Mems_allowed_list:\t0");
    // The thread's own, as Linux's task_context_switch_counts.
    let _ = writeln!(s, "voluntary_ctxt_switches:\t{}", p.th.as_ref().map_or(0, |th| th.rusage_counts().nvcsw));
    let _ = writeln!(s, "nonvoluntary_ctxt_switches:\t0");
    s
}

/// /proc/[pid]/limits (proc_pid_limits).
fn limits(p: &Proc) -> String {
    const ROWS: [(&str, &str); RLIMIT_COUNT] = [
        ("Max cpu time", "seconds"),
        ("Max file size", "bytes"),
        ("Max data size", "bytes"),
        ("Max stack size", "bytes"),
        ("Max core file size", "bytes"),
        ("Max resident set", "bytes"),
        ("Max processes", "processes"),
        ("Max open files", "files"),
        ("Max locked memory", "bytes"),
        ("Max address space", "bytes"),
        ("Max file locks", "locks"),
        ("Max pending signals", "signals"),
        ("Max msgqueue size", "bytes"),
        ("Max nice priority", ""),
        ("Max realtime priority", ""),
        ("Max realtime timeout", "us"),
    ];
    let mut s = format!("{:<25} {:<20} {:<20} {:<10}\n", "Limit", "Soft Limit", "Hard Limit", "Units");
    let show = |v: u64| if v == u64::MAX { "unlimited".to_string() } else { v.to_string() };
    for (i, (name, unit)) in ROWS.iter().enumerate() {
        let r = p.tg.rlimit(i);
        let _ = write!(s, "{:<25} {:<20} {:<20} ", name, show(r.cur), show(r.max));
        if unit.is_empty() {
            s.push('\n');
        } else {
            let _ = writeln!(s, "{unit:<10}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(cpu_mask(1), "1");
        assert_eq!(cpu_mask(8), "ff");
        assert_eq!(cpu_mask(32), "ffffffff");
        assert_eq!(cpu_mask(36), "f,ffffffff");
        assert_eq!(cpu_mask(64), "ffffffff,ffffffff");
    }

    #[test]
    fn device_names() {
        use crate::fs::simple::makedev;
        assert_eq!(char_device_name(makedev(1, 3)), "/dev/null");
        assert_eq!(char_device_name(makedev(136, 4)), "/dev/pts/4");
        assert_eq!(char_device_name(makedev(137, 1)), "/dev/pts/257");
    }
}
