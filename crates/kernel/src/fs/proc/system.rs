//! The fixed part of /proc: system-wide files and the sys/ tree. Everything is the
//! sandbox's view (its memory file, its clocks, its processes), never the host's.

use super::{current, ProcFs};
use crate::fs::simple::{major_minor, Generator, Writer};
use crate::kernel::Kernel;
use crate::task::Namespaces;
use crate::vfs::inode::{S_IFDIR, S_IFLNK, S_IFREG};
use crate::vfs::{FsContext, Mount};
use rvisor_abi::{error, SysResult};
use rvisor_memory::UsageKind;
use std::fmt::Write as _;
use std::sync::Arc;

/// What a fixed entry is.
#[derive(Clone, Copy, Debug)]
pub(super) enum Sf {
    Dir,
    Link(&'static str),
    Text(&'static str),
    Cpuinfo,
    Filesystems,
    Loadavg,
    Meminfo,
    Vmstat,
    Stat,
    Uptime,
    Version,
    Hostname,
    Domainname,
    Osrelease,
    KernelVersion,
    BootId,
    Uuid,
    /// /proc/sys/fs/aio-nr: the events the sandbox's AIO contexts hold.
    AioNr,
    /// /proc/net/tcp, tcp6, udp, udp6: the sockets of one protocol and family.
    NetSockets(crate::net::Protocol, bool),
    NetUnix,
    /// /proc/net/dev, if_inet6 and route: the interfaces (net::interface).
    NetDev,
    NetIfInet6,
    NetRoute,
    /// /proc/locks: every lock and lease.
    Locks,
    /// /proc/sys/fs/lease-break-time (writable).
    LeaseBreakTime,
    /// /proc/sysvipc/shm, sem and msg: the reader's IPC namespace's objects.
    SysvShm,
    SysvSem,
    SysvMsg,
}

/// The fixed entries, by path below /proc. A directory's children are the
/// entries whose path continues it by one name.
pub(super) const STATIC: &[(&str, Sf)] = &[
    ("cpuinfo", Sf::Cpuinfo),
    ("diskstats", Sf::Text("")), // the sandbox has no block devices
    ("filesystems", Sf::Filesystems),
    ("loadavg", Sf::Loadavg),
    ("locks", Sf::Locks),
    ("meminfo", Sf::Meminfo),
    ("mounts", Sf::Link("self/mounts")),
    // The sandbox has one network namespace: /proc/net is the same for every process.
    ("net", Sf::Dir),
    ("net/dev", Sf::NetDev),
    ("net/if_inet6", Sf::NetIfInet6),
    ("net/route", Sf::NetRoute),
    ("net/tcp", Sf::NetSockets(crate::net::Protocol::Tcp, false)),
    ("net/tcp6", Sf::NetSockets(crate::net::Protocol::Tcp, true)),
    ("net/udp", Sf::NetSockets(crate::net::Protocol::Udp, false)),
    ("net/udp6", Sf::NetSockets(crate::net::Protocol::Udp, true)),
    ("net/unix", Sf::NetUnix),
    ("stat", Sf::Stat),
    ("sys", Sf::Dir),
    ("sys/fs", Sf::Dir),
    // mm::aio::AIO_MAX_NR.
    ("sys/fs/aio-max-nr", Sf::Text("65536\n")),
    ("sys/fs/aio-nr", Sf::AioNr),
    ("sys/fs/file-max", Sf::Text("9223372036854775807\n")),
    ("sys/fs/inotify", Sf::Dir),
    // fs::inotify's MAX_QUEUED_EVENTS; watches and instances are limited only
    // by memory here, and these are Linux's usual numbers.
    ("sys/fs/inotify/max_queued_events", Sf::Text("16384\n")),
    ("sys/fs/inotify/max_user_instances", Sf::Text("128\n")),
    ("sys/fs/inotify/max_user_watches", Sf::Text("65536\n")),
    ("sys/fs/lease-break-time", Sf::LeaseBreakTime),
    ("sys/fs/nr_open", Sf::Text("1048576\n")),
    ("sys/kernel", Sf::Dir),
    ("sys/kernel/cap_last_cap", Sf::Text("40\n")),
    ("sys/kernel/domainname", Sf::Domainname),
    ("sys/kernel/hostname", Sf::Hostname),
    ("sys/kernel/ngroups_max", Sf::Text("65536\n")),
    ("sys/kernel/osrelease", Sf::Osrelease),
    ("sys/kernel/ostype", Sf::Text("Linux\n")),
    // task::user_ns::OVERFLOW_ID: what an unmapped id shows as.
    ("sys/kernel/overflowgid", Sf::Text("65534\n")),
    ("sys/kernel/overflowuid", Sf::Text("65534\n")),
    // task::pid_ns::PID_MAX.
    ("sys/kernel/pid_max", Sf::Text("4194304\n")),
    ("sys/kernel/random", Sf::Dir),
    ("sys/kernel/random/boot_id", Sf::BootId),
    ("sys/kernel/random/uuid", Sf::Uuid),
    ("sys/kernel/version", Sf::KernelVersion),
    ("sys/net", Sf::Dir),
    ("sys/net/core", Sf::Dir),
    // net::BUFFER: a socket's buffers until set, and the most SO_SNDBUF and
    // SO_RCVBUF take (doubled).
    ("sys/net/core/rmem_default", Sf::Text("212992\n")),
    ("sys/net/core/rmem_max", Sf::Text("212992\n")),
    // net::tcp::SOMAXCONN.
    ("sys/net/core/somaxconn", Sf::Text("4096\n")),
    ("sys/net/core/wmem_default", Sf::Text("212992\n")),
    ("sys/net/core/wmem_max", Sf::Text("212992\n")),
    ("sys/net/ipv4", Sf::Dir),
    // net::inet::EPHEMERAL.
    ("sys/net/ipv4/ip_local_port_range", Sf::Text("32768\t60999\n")),
    // net::TCP_RMEM_* and TCP_WMEM_* (with Linux's smallest, a page, first).
    ("sys/net/ipv4/tcp_rmem", Sf::Text("4096\t131072\t33554432\n")),
    ("sys/net/ipv4/tcp_wmem", Sf::Text("4096\t16384\t4194304\n")),
    ("sys/vm", Sf::Dir),
    ("sys/vm/max_map_count", Sf::Text("65530\n")),
    // mm::ops::MMAP_MIN_ADDR.
    ("sys/vm/mmap_min_addr", Sf::Text("65536\n")),
    ("sys/vm/overcommit_memory", Sf::Text("0\n")),
    ("sysvipc", Sf::Dir),
    ("sysvipc/msg", Sf::SysvMsg),
    ("sysvipc/sem", Sf::SysvSem),
    ("sysvipc/shm", Sf::SysvShm),
    ("uptime", Sf::Uptime),
    ("version", Sf::Version),
    ("vmstat", Sf::Vmstat),
];

pub(super) fn mode(i: usize) -> u32 {
    match STATIC.get(i).map(|e| e.1) {
        Some(Sf::Dir) => S_IFDIR | 0o555,
        Some(Sf::Link(_)) => S_IFLNK | 0o777,
        Some(Sf::Hostname | Sf::Domainname | Sf::LeaseBreakTime) => S_IFREG | 0o644,
        _ => S_IFREG | 0o444,
    }
}

pub(super) fn link_target(i: usize) -> Option<&'static str> {
    match STATIC.get(i)?.1 {
        Sf::Link(t) => Some(t),
        _ => None,
    }
}

/// The entries directly inside `parent` (None: the /proc root), as (index, name).
pub(super) fn children(parent: Option<usize>) -> impl Iterator<Item = (usize, &'static str)> {
    let prefix = parent.and_then(|i| STATIC.get(i)).map(|e| e.0);
    STATIC.iter().enumerate().filter_map(move |(j, &(path, _))| {
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (Some(d), n),
            None => (None, path),
        };
        (dir == prefix).then_some((j, name))
    })
}

pub(super) fn lookup(parent: Option<usize>, name: &[u8]) -> Option<usize> {
    children(parent).find(|(_, n)| n.as_bytes() == name).map(|(i, _)| i)
}

/// A random (version 4) UUID.
pub(super) fn uuid() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No host entropy at all: the clock is better than refusing to answer.
        b = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The namespaces of the process reading a file (the sandbox's first ones
/// outside a task): /proc/sys/kernel/hostname and /proc/net show its own.
pub(super) fn reader_namespaces(k: &Kernel) -> Namespaces {
    current().and_then(|th| th.resources()).map_or_else(|| k.namespaces.clone(), |r| r.ns)
}

/// What writing a static file does, for the writable ones: the writer's UTS
/// namespace's host or domain name becomes the bytes up to a newline (at most
/// 64), as sethostname would set them.
pub(super) fn writer(fs: &Arc<ProcFs>, i: usize) -> Option<Writer> {
    let sf = STATIC.get(i)?.1;
    if !matches!(sf, Sf::Hostname | Sf::Domainname | Sf::LeaseBreakTime) {
        return None;
    }
    let fs = fs.clone();
    Some(Arc::new(move |data: &[u8]| {
        let k = fs.kernel()?;
        if matches!(sf, Sf::LeaseBreakTime) {
            // An int, as proc_dointvec takes it.
            let secs = std::str::from_utf8(data).ok().and_then(|s| s.trim().parse::<i32>().ok()).ok_or_else(|| rvisor_abi::errno!(EINVAL))?;
            k.locks.leases.break_time.store(secs, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        let end = data.iter().position(|&b| b == b'\n' || b == 0).unwrap_or(data.len()).min(UTS_NAME_MAX);
        let uts = reader_namespaces(&k).uts;
        let mut names = uts.names();
        let name = if matches!(sf, Sf::Hostname) { &mut names.hostname } else { &mut names.domainname };
        *name = data[..end].to_vec();
        Ok(())
    }))
}

/// The longest host or domain name (Linux's __NEW_UTS_LEN).
const UTS_NAME_MAX: usize = 64;

pub(super) fn generator(fs: &Arc<ProcFs>, i: usize) -> SysResult<Generator> {
    let Some(&(_, sf)) = STATIC.get(i) else { return error!(ENOENT) };
    if matches!(sf, Sf::Dir) {
        return error!(EISDIR);
    }
    if matches!(sf, Sf::Link(_)) {
        return error!(ELOOP);
    }
    let fs = fs.clone();
    Ok(Arc::new(move || {
        let k = fs.kernel()?;
        let net = || reader_namespaces(&k).net;
        let text = match sf {
            Sf::Dir | Sf::Link(_) => return error!(EINVAL),
            Sf::Text(t) => t.to_string(),
            Sf::Cpuinfo => super::cpuinfo::text(k.cpus, k.clocks.source.calibration().map(|c| c.tsc_hz as f64 / 1e6)),
            Sf::Filesystems => "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevtmpfs\nnodev\t9p\nnodev\tcgroup2\n".to_string(),
            Sf::Loadavg => loadavg(&k, &fs.pid_ns),
            Sf::Meminfo => meminfo(&k, k.memory_total()),
            Sf::Vmstat => vmstat(&k, k.memory_total()),
            Sf::Stat => stat(&k, &fs.pid_ns),
            Sf::Uptime => uptime(&k),
            Sf::Version => format!("Linux version {} (rvisor@rvisor) (gcc, GNU ld) {}\n", crate::syscalls::RELEASE, crate::syscalls::VERSION),
            Sf::Hostname | Sf::Domainname => {
                let uts = reader_namespaces(&k).uts;
                let uts = uts.names();
                let name = if matches!(sf, Sf::Hostname) { &uts.hostname } else { &uts.domainname };
                format!("{}\n", String::from_utf8_lossy(name))
            }
            Sf::Osrelease => format!("{}\n", crate::syscalls::RELEASE),
            Sf::KernelVersion => format!("{}\n", crate::syscalls::VERSION),
            Sf::BootId => format!("{}\n", fs.boot_id),
            Sf::Uuid => format!("{}\n", uuid()),
            Sf::AioNr => format!("{}\n", k.aio_nr.get()),
            Sf::NetSockets(protocol, v6) => net().loopback.proc_net(protocol, v6),
            Sf::NetUnix => k.unix_sockets.proc_net(),
            Sf::NetDev => {
                let net = net();
                crate::net::interface::proc_net_dev(&net.interfaces, net.netstack.as_ref().map(|n| (n.info.name.as_str(), n.traffic())))
            }
            Sf::NetIfInet6 => crate::net::interface::proc_net_if_inet6(&net().interfaces),
            Sf::NetRoute => crate::net::interface::proc_net_route(&net().interfaces),
            Sf::Locks => k.locks.proc_locks(|pid| fs.pid_ns.local_id(pid).unwrap_or(0)),
            Sf::LeaseBreakTime => format!("{}\n", k.locks.leases.break_time.load(std::sync::atomic::Ordering::Relaxed)),
            Sf::SysvShm | Sf::SysvSem | Sf::SysvMsg => {
                let ipc = reader_namespaces(&k).ipc;
                let pid = |p: i32| fs.pid_ns.local_id(p).unwrap_or(0);
                match sf {
                    Sf::SysvShm => {
                        // Removed segments no mapping holds are gone, as shm calls find them.
                        ipc.shm.sweep();
                        ipc.shm.proc_table(&pid)
                    }
                    Sf::SysvSem => ipc.sem.proc_table(&pid),
                    _ => ipc.msg.proc_table(&pid),
                }
            }
        };
        Ok(text.into_bytes())
    }))
}

/// "%lu.%02lu" of nanoseconds.
fn centis(ns: i64) -> String {
    let cs = ns.max(0) / 10_000_000;
    format!("{}.{:02}", cs / 100, cs % 100)
}

fn uptime(k: &Kernel) -> String {
    let up = k.clocks.uptime_ns();
    // A time namespace moves the uptime, not the idle time (as Linux's).
    let shown = up.saturating_add(reader_namespaces(k).time.offsets().boottime_ns);
    // Idle time sums over CPUs; with no CPU accounting yet, all of it is idle.
    format!("{} {}\n", centis(shown), centis(up.saturating_mul(k.cpus as i64)))
}

/// Linux's format: the averages to two decimals (rounded), then the reader's
/// PID namespace's running and total threads and its last id.
fn loadavg(k: &Kernel, pid_ns: &Arc<crate::task::PidNamespace>) -> String {
    use crate::task::loadavg::{FIXED_1, FSHIFT};
    let shown = k.loadavg.get_avenrun(FIXED_1 / 200, 0).map(|l| format!("{}.{:02}", l >> FSHIFT, ((l & (FIXED_1 - 1)) * 100) >> FSHIFT));
    let (running, total, last) = pid_ns.loadavg_counts();
    format!("{} {} {} {running}/{total} {last}\n", shown[0], shown[1], shown[2])
}

/// /proc/stat: with no CPU accounting yet, every CPU has been idle since boot.
/// procs_running counts the reader's PID namespace's tasks not asleep, as
/// /proc/loadavg does (the reader among them).
fn stat(k: &Kernel, pid_ns: &Arc<crate::task::PidNamespace>) -> String {
    let ticks = k.clocks.uptime_ns().max(0) / 10_000_000;
    let cpus = k.cpus.max(1);
    let mut s = format!("cpu  0 0 0 {} 0 0 0 0 0 0\n", ticks * cpus as i64);
    for i in 0..cpus {
        let _ = writeln!(s, "cpu{i} 0 0 0 {ticks} 0 0 0 0 0 0");
    }
    let btime = (k.clocks.realtime_ns() - k.clocks.uptime_ns()).max(0) / 1_000_000_000;
    let _ = write!(
        s,
        "intr 0\nctxt 0\nbtime {btime}\nprocesses {}\nprocs_running {}\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n",
        k.all_groups().len(),
        pid_ns.loadavg_counts().0.max(1)
    );
    s
}

/// /proc/meminfo from the memory file's usage: what the sandbox's memory holds,
/// against its total (`Kernel::memory_total`).
fn meminfo(k: &Kernel, total: u64) -> String {
    let mf = &k.memory;
    let anon = mf.usage(UsageKind::Anonymous);
    let tmpfs = mf.usage(UsageKind::Tmpfs);
    let cache = mf.usage(UsageKind::PageCache);
    let system = mf.usage(UsageKind::System);
    let used = anon + tmpfs + cache + system;
    let free = total.saturating_sub(used);
    let rows: [(&str, u64); 33] = [
        ("MemTotal", total),
        ("MemFree", free),
        ("MemAvailable", free + cache),
        ("Buffers", 0),
        ("Cached", cache + tmpfs),
        ("SwapCached", 0),
        ("Active", anon + cache + tmpfs),
        ("Inactive", 0),
        ("Active(anon)", anon + tmpfs),
        ("Inactive(anon)", 0),
        ("Active(file)", cache),
        ("Inactive(file)", 0),
        ("Unevictable", 0),
        ("Mlocked", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", anon),
        ("Mapped", 0),
        ("Shmem", tmpfs),
        ("KReclaimable", 0),
        ("Slab", 0),
        ("SReclaimable", 0),
        ("SUnreclaim", 0),
        ("KernelStack", 0),
        ("PageTables", 0),
        ("NFS_Unstable", 0),
        ("Bounce", 0),
        ("WritebackTmp", 0),
        ("CommitLimit", total),
        ("Committed_AS", anon + tmpfs),
        ("VmallocTotal", 34_359_738_367 << 10),
    ];
    let mut s = String::new();
    for (name, bytes) in rows {
        let _ = writeln!(s, "{:<16}{:>8} kB", format!("{name}:"), bytes >> 10);
    }
    let _ = writeln!(s, "{:<16}{:>8} kB", "VmallocUsed:", 0);
    let _ = writeln!(s, "{:<16}{:>8} kB", "VmallocChunk:", 0);
    for name in ["HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp"] {
        let _ = writeln!(s, "{:<16}{:>8}", format!("{name}:"), 0);
    }
    let _ = writeln!(s, "{:<16}{:>8} kB", "Hugepagesize:", 2048);
    s
}

/// /proc/vmstat: the page counts meminfo shows, in pages; the event counters
/// (page-ins, faults, swapping...) are not kept and read 0.
fn vmstat(k: &Kernel, total: u64) -> String {
    let mf = &k.memory;
    let anon = mf.usage(UsageKind::Anonymous);
    let tmpfs = mf.usage(UsageKind::Tmpfs);
    let cache = mf.usage(UsageKind::PageCache);
    let system = mf.usage(UsageKind::System);
    let free = total.saturating_sub(anon + tmpfs + cache + system);
    let pages = |bytes: u64| bytes >> 12;
    let rows = [
        ("nr_free_pages", pages(free)),
        ("nr_zone_inactive_anon", 0),
        ("nr_zone_active_anon", pages(anon + tmpfs)),
        ("nr_zone_inactive_file", 0),
        ("nr_zone_active_file", pages(cache)),
        ("nr_zone_unevictable", 0),
        ("nr_zone_write_pending", 0),
        ("nr_mlock", 0),
        ("nr_inactive_anon", 0),
        ("nr_active_anon", pages(anon + tmpfs)),
        ("nr_inactive_file", 0),
        ("nr_active_file", pages(cache)),
        ("nr_unevictable", 0),
        ("nr_anon_pages", pages(anon)),
        ("nr_mapped", 0),
        ("nr_file_pages", pages(cache + tmpfs)),
        ("nr_dirty", 0),
        ("nr_writeback", 0),
        ("nr_shmem", pages(tmpfs)),
        ("nr_dirty_threshold", 0),
        ("nr_dirty_background_threshold", 0),
    ];
    let mut s = String::new();
    for (name, n) in rows {
        let _ = writeln!(s, "{name} {n}");
    }
    for name in [
        "pgpgin", "pgpgout", "pswpin", "pswpout", "pgalloc_normal", "pgfree", "pgactivate", "pgdeactivate", "pgfault", "pgmajfault",
        "pgrefill", "pgsteal_kswapd", "pgsteal_direct", "pgscan_kswapd", "pgscan_direct", "oom_kill",
    ] {
        let _ = writeln!(s, "{name} 0");
    }
    s
}

/// Escapes space, tab, newline and backslash as Linux's mangle() does.
fn mangle(p: &[u8]) -> String {
    let mut out = Vec::new();
    for &b in p {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => out.extend_from_slice(format!("\\{b:03o}").as_bytes()),
            _ => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts of `fs`'s namespace its root reaches, each with its path from
/// there (Linux skips the others).
fn visible_mounts(fs: &FsContext) -> Vec<(Arc<Mount>, Vec<u8>)> {
    let root = fs.root();
    fs.mounts().mounts().into_iter().filter_map(|m| m.root.path_from(&root).map(|at| (m, at))).collect()
}

pub(super) fn mounts_text(fs: &FsContext) -> String {
    let mut s = String::new();
    for (m, at) in visible_mounts(fs) {
        let _ = writeln!(s, "{} {} {} {}{} 0 0", mangle(m.source.as_bytes()), mangle(&at), m.fstype, m.flags().text(), m.root.inode.fs_options());
    }
    s
}

pub(super) fn mountinfo_text(fs: &FsContext) -> String {
    let mut s = String::new();
    let (ns, root) = (fs.mounts(), fs.root());
    let visible = visible_mounts(fs);
    // Read together, then let go of before the file systems are asked for
    // their devices.
    let propagation = crate::vfs::propagation::lock();
    let fields: Vec<String> = visible.iter().map(|(m, _)| propagation.fields(m, &ns, &root)).collect();
    drop(propagation);
    for ((m, at), fields) in visible.iter().zip(fields) {
        let parent = m.parent().map_or(m.id, |p| p.id);
        let (major, minor) = m.root.inode.stat().map(|st| major_minor(st.st_dev)).unwrap_or((0, 0));
        let _ = writeln!(
            s,
            "{} {parent} {major}:{minor} {} {} {}{} - {} {} {}{}",
            m.id,
            mangle(&m.root_path),
            mangle(at),
            m.flags().text(),
            fields,
            m.fstype,
            mangle(m.source.as_bytes()),
            if m.sb_read_only() { "ro" } else { "rw" },
            m.root.inode.fs_options()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree() {
        let top: Vec<&str> = children(None).map(|(_, n)| n).collect();
        assert!(top.contains(&"meminfo") && top.contains(&"sys") && !top.contains(&"kernel"));
        let sys = lookup(None, b"sys").unwrap();
        let kernel = lookup(Some(sys), b"kernel").unwrap();
        let random = lookup(Some(kernel), b"random").unwrap();
        assert!(lookup(Some(random), b"boot_id").is_some());
        assert!(lookup(Some(kernel), b"boot_id").is_none());
        assert_eq!(mode(random) & S_IFDIR, S_IFDIR);
        assert_eq!(link_target(lookup(None, b"mounts").unwrap()), Some("self/mounts"));
    }

    #[test]
    fn formats() {
        assert_eq!(centis(1_234_567_890), "1.23");
        assert_eq!(mangle(b"/a b\\c"), "/a\\040b\\134c");
        let u = uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
