//! Pipes, eventfd, poll/select and epoll (issue 4): C programs run natively and in the
//! sandbox on every platform, as `-static` and `-static-pie`, with identical stdout and exit
//! status, plus assertions on the lines that state Linux's behaviour.

mod common;

use common::*;

/// Runs `program ARGS` as the test `test`: same output natively and in the sandbox, the
/// program's own checks pass ("all ok"), and every line of `lines` is printed.
fn run(test: &str, program: &str, args: &[&str], lines: &'static [&'static str]) {
    run_with(test, program, Spec::args(args), lines)
}

fn run_with(test: &str, program: &str, spec: Spec, lines: &'static [&'static str]) {
    compare(test, program, &spec, move |o| {
        all([expect_all_ok(o)]
            .into_iter()
            .chain(lines.iter().map(|l| expect_stdout_has_line(o, l))))
    });
}

/// 1 MiB from a writer thread in growing write sizes, read back in odd sizes: intact, in
/// order, then EOF.
#[test]
fn pipe_threads() {
    run(
        "pipe_threads",
        "pipe",
        &["threads"],
        &["threads: writer wrote 1048576, reader read 1048576"],
    );
}

/// A forked child's lines and one 300000-byte write (completed in one call while the parent
/// reads); EOF when the child exits.
#[test]
fn pipe_fork() {
    run(
        "pipe_fork",
        "pipe",
        &["fork"],
        &["fork: one 300000-byte write from the child read as 300000 bytes"],
    );
}

/// EOF only once every writer (dups, children) is gone; data written before the close is
/// still read; zero-length reads and writes.
#[test]
fn pipe_eof() {
    run(
        "pipe_eof",
        "pipe",
        &["eof"],
        &[
            "EOF: read with data and a dup'ed writer open: 3",
            "EOF: read after the last writer closed: 0",
            "EOF: read into NULL at EOF: 0",
            "EOF: data written before the close is still read: 2 1 0",
            "EOF: write of 0 bytes without a reader: 0 0",
            "EOF: from an exited child: \"bye\" then 0",
        ],
    );
}

/// EPIPE and SIGPIPE (SI_USER from the writer itself): handled, ignored, blocked (stays
/// pending), default (kills); a blocked writer returns its partial count when the reader goes.
#[test]
fn pipe_epipe() {
    run(
        "pipe_epipe",
        "pipe",
        &["epipe"],
        &[
            "EPIPE: write without a reader: -1 EPIPE",
            "EPIPE: writev: -1 EPIPE, signals 2",
            "EPIPE: with SIGPIPE ignored: -1 EPIPE",
            "EPIPE: with SIGPIPE blocked: -1 EPIPE, pending 1",
            "EPIPE: default action: killed by signal 13",
        ],
    );
}

/// O_NONBLOCK: EAGAIN; capacity counted in page slots (64 KiB of 1-byte writes, less for
/// writes that do not fill pages); atomic writes of <= PIPE_BUF; partial larger ones;
/// merging small writes; FIONREAD; F_SETFL and FIONBIO.
#[test]
fn pipe_nonblock() {
    run(
        "pipe_nonblock",
        "pipe",
        &["nonblock"],
        &[
            "nonblock: read of an empty pipe: -1 EAGAIN",
            "nonblock: F_GETPIPE_SZ: 65536",
            "nonblock: 1-byte writes until EAGAIN: 65536 bytes, FIONREAD 65536 (write end 65536)",
            "nonblock: 3000-byte writes until EAGAIN: 48000 bytes, FIONREAD 48000",
            "nonblock: 4097-byte writes until EAGAIN: 45066 bytes, FIONREAD 45066",
            "nonblock: 70000-byte writes until EAGAIN: 65536 bytes, FIONREAD 65536",
            "nonblock: full slots, 100 bytes read, write of 50: -1 EAGAIN",
            "nonblock: one free slot, write of 4096: 4096 0",
            "nonblock: then a write of 1: -1 EAGAIN",
            "nonblock: two free slots, write of 8202 (> PIPE_BUF): 8192 0",
            "nonblock: after FIONBIO 1: F_GETFL 04000, read -1 EAGAIN",
        ],
    );
}

/// F_SETPIPE_SZ rounding (to a power of two of pages, at least one), the new capacity,
/// EBUSY below the data held, EINVAL, EBADF on a non-pipe.
#[test]
fn pipe_size() {
    run(
        "pipe_size",
        "pipe",
        &["size"],
        &[
            "F_SETPIPE_SZ 0: 4096, F_GETPIPE_SZ 4096",
            "F_SETPIPE_SZ 5000: 8192, F_GETPIPE_SZ 8192",
            "F_SETPIPE_SZ 100000: 131072, F_GETPIPE_SZ 131072",
            "F_SETPIPE_SZ 8192: holds 8192 bytes",
            "F_SETPIPE_SZ below the data in it: -1 EBUSY",
            "F_SETPIPE_SZ -1: -1 EINVAL",
            "F_GETPIPE_SZ of an eventfd: -1 EBADF",
        ],
    );
}

/// Four processes writing PIPE_BUF-byte records into one pipe: no record is split.
#[test]
fn pipe_atomic_writers() {
    run("pipe_atomic_writers", "pipe", &["atomic"], &[]);
}

/// pipe2 flags, packet mode (O_DIRECT), wrong ends (EBADF), pread/pwrite (ESPIPE), ENOTTY,
/// fstat, bad buffers.
#[test]
fn pipe_flags_and_misc() {
    run(
        "pipe_flags_and_misc",
        "pipe",
        &["misc"],
        &[
            "pipe2 O_CLOEXEC: FD_CLOEXEC 1 1",
            "read of the write end: -1 EBADF",
            "pread: -1 ESPIPE",
            "fstat: fifo 1, perms 600, nlink 1, size 0 (with 5 bytes in: 0), blksize 4096, same inode 1",
            "pipe2 O_APPEND: -1 EINVAL",
            "read into a bad buffer with data: -1 EFAULT (FIONREAD after: 5)",
            "O_DIRECT: F_GETFL 0 040001",
            "O_DIRECT: two 10-byte writes, read of 64: 10",
            "O_DIRECT: read 4 of a 10-byte packet: 4 (\"abcd\"), then -1 EAGAIN",
            "O_DIRECT: 1-byte packets until EAGAIN: 16",
        ],
    );
}

/// A blocked read: EINTR without SA_RESTART, restarted with it; a blocked write: EINTR.
#[test]
fn pipe_signals() {
    run(
        "pipe_signals",
        "pipe",
        &["signals"],
        &[
            "signal without SA_RESTART: read -1 EINTR",
            "signal with SA_RESTART: read 1 0 '!'",
            "signal without SA_RESTART: write to a full pipe -1 EINTR",
        ],
    );
}

/// eventfd counting, EFD_SEMAPHORE, the 2^64-2 limit, EINVAL for short buffers, flags,
/// poll readiness, wake-ups across threads and fork.
#[test]
fn eventfd() {
    run(
        "eventfd",
        "eventfd",
        &[],
        &[
            "counter: read 7",
            "2^64-1: write -1 EINVAL",
            "one more: write -1 EAGAIN",
            "counter at the limit: read 18446744073709551614",
            "read of 4 bytes: -1 EINVAL",
            "semaphore 6: read -1 EAGAIN",
            "threads: 4000 adds of 1 read back as 4000",
            "fork: what is left: read 10",
        ],
    );
}

/// Readiness bits of pipes and eventfds in poll (HUP, ERR, NVAL, a full pipe made writable
/// only by reading a whole page), regular files (always ready), bad arguments.
#[test]
fn poll_readiness() {
    run(
        "poll_readiness",
        "poll",
        &["readiness"],
        &[
            "writer closed, data left: read end IN|HUP",
            "reader closed: write end OUT|ERR, with events 0: ERR",
            "full pipe after reading 1 byte: write end 0",
            "after reading a whole page: write end OUT",
            "poll [data, -1, 999 (closed), writable]: 3 -> IN, 0, NVAL, OUT",
            "poll of RLIMIT_NOFILE+1 descriptors: -1 EINVAL",
            "regular file: IN|OUT|RDNORM|WRNORM",
        ],
    );
}

/// Timeouts of poll, ppoll, select, pselect6 and the remaining time they write back.
#[test]
fn poll_timeouts() {
    run(
        "poll_timeouts",
        "poll",
        &["timeouts"],
        &[
            "poll, empty pipe, 10 ms: 0",
            "ppoll, 10 ms: 0, time left 0.000000000",
            "select, 10 ms: 0, set now 0, time left 0.000000",
            "select, negative timeout: -1 EINVAL",
            "pselect6, negative tv_nsec: -1 EINVAL",
        ],
    );
}

/// select's three sets, counting, EBADF, nfds.
#[test]
fn poll_select() {
    run(
        "poll_select",
        "poll",
        &["select"],
        &[
            "select: 2; read a 0 b 1, write a 1, except a 0 b 0",
            "select: an eventfd readable and writable counts 2",
            "select with nfds -1: -1 EINVAL",
        ],
    );
}

/// poll and select woken by a thread's write, a child's write, and the last writer's exit.
#[test]
fn poll_wakeups() {
    run(
        "poll_wakeups",
        "poll",
        &["wakeups"],
        &[
            "poll woken by a thread's write: 1 IN",
            "select woken by a child's write: 1 1",
            "poll woken by the last writer exiting: 1 HUP",
        ],
    );
}

/// ppoll and pselect's temporary signal mask: EINTR with the handler seeing the old mask,
/// the mask restored, a signal the old mask blocks left pending when the call returns
/// ready; poll and select return EINTR even under SA_RESTART.
#[test]
fn poll_sigmask() {
    run(
        "poll_sigmask",
        "poll",
        &["masks"],
        &[
            "ppoll with SIGUSR1 let in: -1 EINTR, handler ran 1",
            "ppoll ready at once with SIGUSR1 let in: 1, handler ran 0, still pending 1",
            "pselect with SIGUSR1 let in: -1 EINTR, handler ran 1",
            "poll interrupted by a handler with SA_RESTART: -1 EINTR",
            "select interrupted by a handler with SA_RESTART: -1 EINTR",
        ],
    );
}

/// epoll_create1/epoll_ctl/epoll_wait errors; EPERM for a regular file.
#[test]
fn epoll_errors() {
    run(
        "epoll_errors",
        "epoll",
        &["errors"],
        &[
            "add(ep, p[0], EPOLLIN, 1) = -1 EEXIST",
            "mod(ep, p[1], EPOLLOUT, 2) = -1 ENOENT",
            "epoll_ctl(ep, EPOLL_CTL_ADD, ep, &e) = -1 EINVAL",
            "mod(ep, p[1], EPOLLOUT | EPOLLEXCLUSIVE, 3) = -1 EINVAL",
            "add(ep, reg, EPOLLIN, 9) = -1 EPERM",
            "epoll_wait(ep, out, 0, 0) = -1 EINVAL",
        ],
    );
}

/// Level-triggered, edge-triggered (one event per write, even an eventfd write of 0),
/// EPOLLONESHOT, EPOLLOUT on a filling pipe, EPOLLHUP/EPOLLERR.
#[test]
fn epoll_triggers() {
    run(
        "epoll_triggers",
        "epoll",
        &["triggers"],
        &[
            "LT, again without reading: 1 [10 IN]",
            "ET, again: 0",
            "ET, after a second write, nothing read: 1 [11 IN]",
            "ET, after a partial read: 0",
            "ONESHOT, after another write: 0",
            "ONESHOT, re-armed: 1 [14 IN]",
            "OUT ET, 1 byte read: 0",
            "OUT ET, a page read: 1 [20 OUT]",
            "write end closed (its item goes with it): 1 [30 IN|HUP]",
            "read end closed: 1 [32 OUT|ERR]",
            "eventfd ET, +0: 1 [40 IN]",
        ],
    );
}

/// maxevents and the round-robin order of ready items; closing watched descriptors (a dup
/// keeps the item); timeouts of epoll_wait and epoll_pwait2.
#[test]
fn epoll_order_and_close() {
    run(
        "epoll_order_and_close",
        "epoll",
        &["order"],
        &[
            "three ready, maxevents 2: 2 [102 IN] [100 IN]",
            "again, maxevents 2: 2 [103 IN] [102 IN]",
            "after closing one that has a dup: 2 [100 IN] [103 IN]",
            "two items for the same pipe: 3 [100 IN] [103 IN] [200 IN]",
            "epoll_wait with nothing ready, 10 ms: 0",
        ],
    );
}

/// Nested epoll sets, poll on an epoll descriptor, ELOOP for loops and chains too deep.
#[test]
fn epoll_nesting() {
    run(
        "epoll_nesting",
        "epoll",
        &["nesting"],
        &[
            "nested: outer with data: 1 [2 IN]",
            "nested: adding the outer set into the inner one: -1 ELOOP",
            "nested: chain: 0 0 0 0 -1/ELOOP 0 0",
            "nested: a set under a parent, taking a 3-deep chain: -1 ELOOP",
        ],
    );
}

/// epoll_wait woken by a thread and a child; an epoll set in poll() and in an outer set.
#[test]
fn epoll_wakeups() {
    run(
        "epoll_wakeups",
        "epoll",
        &["wakeups"],
        &[
            "epoll_wait woken by a thread: 1 [7 IN]",
            "poll on an epoll set woken by a thread: 1 0x1",
            "the outer set saw it too: 1 [8 IN]",
        ],
    );
}

/// epoll_wait's EINTR under SA_RESTART; epoll_pwait's temporary mask.
#[test]
fn epoll_sigmask() {
    run(
        "epoll_sigmask",
        "epoll",
        &["signals"],
        &[
            "epoll_wait interrupted by a handler with SA_RESTART: -1 EINTR",
            "epoll_pwait letting a pending SIGUSR1 in: -1 EINTR, handler ran 1",
            "epoll_pwait ready at once: 1, handler ran 0, still pending 1",
        ],
    );
}

/// poll, select and epoll over the host streams (host pipes), alone and mixed with sandbox
/// pipes: data, EOF, timeouts over a never-ready host descriptor, wake-ups by a thread.
#[test]
fn poll_host_streams() {
    run_with(
        "poll_host_streams",
        "poll_host",
        Spec::default().stdin("hello\n"),
        &[
            "stdin: read \"hello\" then 0",
            "stdin at EOF: 1 HUP",
            "epoll ET, stdin at EOF: 1 [1 HUP]",
            "epoll ET, again: 0",
            "poll stderr for POLLIN, 20 ms: 0",
            "poll [stderr for POLLIN, pipe] woken by a thread: 1 0 IN",
            "epoll_wait [stderr, pipe] woken by a thread: 1 [3 IN]",
        ],
    );
}
