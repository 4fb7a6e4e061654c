//! procfs, devfs, sysfs and cgroup2: C programs that check /proc, /dev and /sys
//! against what they know of themselves, run natively and in the sandbox (same
//! stdout, same status, and every check passing); /sys/fs/cgroup, which is the
//! sandbox's own, in the sandbox only.

mod common;

use common::*;

/// /proc/self and /proc/[pid]: links, cmdline, environ, status, stat, statm, comm,
/// limits, maps, fd/ and fdinfo/, auxv, mounts, task/, children and zombies.
#[test]
fn procfs_self() {
    let spec = Spec::args(["one", "two words", "", "last"]);
    compare("procfs_self", "procfs", &spec, expect_all_ok);
}

/// /proc/self/fd/N of a pipe: its name, and opening the pipe through it.
#[test]
fn procfs_fd_pipe() {
    compare("procfs_fd_pipe", "procfs", &Spec::args(["pipe"]), expect_all_ok);
}

/// /proc/self/maps of file mappings: offset, device and inode as fstat gives them,
/// and the name (a path, " (deleted)", a memfd's, a System V segment's,
/// "/dev/zero (deleted)" for shared anonymous memory) through splits, mremap and
/// fork; the executable's header mapping names /proc/self/exe.
#[test]
fn procfs_maps_files() {
    compare("procfs_maps_files", "maps_files", &Spec::default(), expect_all_ok);
}

/// /proc/self/map_files: a link per file mapping (a file open read-write or
/// read-only, an unlinked one, a memfd, the executable), named by its exact
/// range, none for anonymous memory; readlink, lstat's mode, and opening the
/// mapped file through it, which takes CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE.
#[test]
fn procfs_map_files() {
    compare("procfs_map_files", "map_files", &Spec::default(), expect_all_ok);
}

/// A leader that exits before the rest of its group stays a zombie until the
/// group is gone: task/ lists it, stat and status say Z, Threads: counts it, and
/// /proc/PID (and /proc/self, for any thread) shows what a zombie's does, while
/// the live thread's task/TID works; an exec from that thread takes its id.
#[test]
fn procfs_leader_zombie() {
    compare("procfs_leader_zombie", "leader_zombie", &Spec::default(), expect_all_ok);
}

/// System-wide /proc files, /proc/sys and /sys/devices/system/cpu.
#[test]
fn procfs_system() {
    compare("procfs_system", "procsys", &Spec::default(), expect_all_ok);
}

/// /dev: null, zero, full, random, urandom, their numbers, the standard-stream
/// links (reading stdin through /dev/stdin, writing through /dev/stdout) and the
/// tmpfs on /dev/shm.
#[test]
fn devfs() {
    let spec = Spec::default().stdin("stdin data\n");
    compare("devfs", "devfs", &spec, |o| {
        all([expect_all_ok(o), expect_stdout_has_line(o, "written through /dev/stdout")])
    });
}

/// /sys/fs/cgroup: a cgroup2 mount of the sandbox's cgroup, with its processes,
/// no limits under `rvisor do`, memory and CPU use that follow the program's,
/// and writes refused. Not compared with a native run: the host's cgroups are
/// laid out as the host likes (this one's are v1).
#[test]
fn cgroupfs() {
    matrix("cgroupfs", LINKS, |v| {
        let o = run_sandbox(v.platform, &compile("cgroupfs", v.link), &Spec::default());
        sane(&o)?;
        expect_all_ok(&o).map_err(|e| format!("{e}\n{}", o.describe()))
    });
}

/// Load averages (tests/programs/loadavg.c): four threads running for 11 s
/// raise sysinfo's 1-minute load and /proc/loadavg's above 0.5, alike, with
/// /proc/loadavg in Linux's format. Sandbox only (the host's load is its own);
/// static only, as each run takes 11 s.
#[test]
fn loadavg() {
    matrix("loadavg", &[Link::Static], |v| {
        let o = run_sandbox(v.platform, &compile("loadavg", v.link), &Spec::default());
        sane(&o)?;
        expect_all_ok(&o).map_err(|e| format!("{e}\n{}", o.describe()))
    });
}
