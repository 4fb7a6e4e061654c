//! procfs, devfs and sysfs: C programs that check /proc, /dev and /sys against what
//! they know of themselves, run natively and in the sandbox (same stdout, same
//! status, and every check passing).

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
