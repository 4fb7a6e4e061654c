//! A gofer in its own process, started by `spawn_gofer_with` as the runtime would.

mod common;

use common::{names, Fixture};
use rvisor_abi::ErrnoCode;
use rvisor_gofer::{spawn_gofer_roots_with, spawn_gofer_with, WalkEnd, ROOT};
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

fn gofer_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rvisor-gofer"))
}

fn wait_exit(g: &mut rvisor_gofer::Gofer) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = g.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "the gofer did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_spawned_gofer_serves_and_exits_when_the_client_goes() {
    let f = Fixture::new(false);
    let (mut g, c) = spawn_gofer_with(gofer_cmd(), &f.root, false).unwrap();
    let w = c.walk(ROOT, &names("dir/a.txt")).unwrap();
    assert_eq!(w.end, WalkEnd::Complete);
    let mut s = String::new();
    std::fs::File::from(c.open(w.nodes[1].id, libc::O_RDONLY).unwrap()).read_to_string(&mut s).unwrap();
    assert_eq!(s, "a");
    let (_, fd) = c.create(ROOT, b"from_child", libc::O_WRONLY, 0o600, None).unwrap();
    std::fs::File::from(fd).write_all(b"written").unwrap();
    assert_eq!(std::fs::read_to_string(f.root.join("from_child")).unwrap(), "written");

    // The gofer holds no descriptor but its standard streams, its socket and files
    // beneath the root.
    let pid = g.pid();
    let root = std::fs::canonicalize(&f.root).unwrap();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let e = e.unwrap();
        let fd: i32 = e.file_name().to_str().unwrap().parse().unwrap();
        // Gone since the listing: a descriptor it was still closing (the
        // copy of one it passed), which it no longer holds.
        let Ok(target) = std::fs::read_link(e.path()) else { continue };
        if fd <= 2 {
            continue;
        }
        let t = target.to_string_lossy();
        assert!(t.starts_with("socket:") || target.starts_with(&root), "gofer fd {fd} -> {t}");
    }

    let second = c.connect().unwrap();
    drop(c);
    // Still served: one connection is left.
    second.stat(ROOT).unwrap();
    drop(second);
    assert!(wait_exit(&mut g).success());
}

#[test]
fn a_spawned_read_only_gofer_refuses_changes() {
    let f = Fixture::new(false);
    let (mut g, c) = spawn_gofer_with(gofer_cmd(), &f.root, true).unwrap();
    assert_eq!(c.mkdir(ROOT, b"x", 0o755, None).unwrap_err(), ErrnoCode::EROFS);
    let n = f.walk("file.txt");
    let _ = n;
    drop(c);
    assert!(wait_exit(&mut g).success());
    assert!(!f.root.join("x").exists());
}

#[test]
fn a_gofer_with_a_bad_root_is_not_started() {
    let f = Fixture::new(false);
    let bad = f.root.join("no/such/dir");
    let e = spawn_gofer_roots_with(gofer_cmd(), &[(&f.root, false), (&bad, false)]).err().expect("a missing root fails the spawn");
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
}

/// One process serves several roots, a connection each: every one sees its own
/// directory and nothing above it, a read-only root refuses changes while the
/// other takes them, and renames and links between roots are EXDEV.
#[test]
fn one_gofer_serves_several_roots() {
    let (a, b) = (Fixture::new(false), Fixture::new(false));
    std::fs::write(b.root.join("only_in_b"), "b").unwrap();
    let (mut g, clients) = spawn_gofer_roots_with(gofer_cmd(), &[(&a.root, false), (&b.root, true)]).unwrap();
    let [ca, cb] = <[_; 2]>::try_from(clients).ok().unwrap();
    let w = cb.walk(ROOT, &names("only_in_b")).unwrap();
    assert_eq!(w.end, WalkEnd::Complete);
    assert!(matches!(ca.walk(ROOT, &names("only_in_b")).unwrap().end, WalkEnd::Error { errno: ErrnoCode::ENOENT, .. }));
    // `..` of either root is that root.
    let up = cb.walk(ROOT, &names("../../..")).unwrap();
    assert_eq!(up.nodes[2].stat.st_ino, cb.stat(ROOT).unwrap().st_ino);

    assert_eq!(cb.mkdir(ROOT, b"x", 0o755, None).unwrap_err(), ErrnoCode::EROFS);
    assert_eq!(cb.open(w.nodes[0].id, libc::O_WRONLY).unwrap_err(), ErrnoCode::EROFS);
    // A node keeps its root's mode whatever connection names it.
    assert_eq!(ca.open(w.nodes[0].id, libc::O_WRONLY).unwrap_err(), ErrnoCode::EROFS);
    assert_eq!(cb.statfs(ROOT).unwrap().flags & libc::ST_RDONLY, libc::ST_RDONLY);
    let (_, fd) = ca.create(ROOT, b"new", libc::O_WRONLY, 0o600, None).unwrap();
    std::fs::File::from(fd).write_all(b"written").unwrap();
    assert_eq!(std::fs::read_to_string(a.root.join("new")).unwrap(), "written");

    let dir_a = ca.walk(ROOT, &names("dir")).unwrap().nodes[0].id;
    let dir_b = cb.walk(ROOT, &names("dir")).unwrap().nodes[0].id;
    assert_eq!(ca.rename(dir_a, b"a.txt", dir_b, b"moved", 0).unwrap_err(), ErrnoCode::EXDEV);
    let file_a = ca.walk(ROOT, &names("file.txt")).unwrap().nodes[0].id;
    assert_eq!(ca.link(dir_b, b"linked", file_a).unwrap_err(), ErrnoCode::EXDEV);
    assert!(a.root.join("dir/a.txt").exists() && !b.root.join("dir/moved").exists());

    // A connection to a root that is not served is refused.
    assert_eq!(ca.connect_root(2).err(), Some(ErrnoCode::EINVAL));
    drop((ca, cb));
    assert!(wait_exit(&mut g).success());
}

/// A running gofer serves a directory handed to it later (a pod container's)
/// as a root of its own, and lets go of it, and of its nodes, when the last
/// connection for it closes.
#[test]
fn a_root_added_later_is_served_until_its_connections_close() {
    let (a, b) = (Fixture::new(false), Fixture::new(false));
    std::fs::write(b.root.join("only_in_b"), "b").unwrap();
    let (mut g, ca) = spawn_gofer_with(gofer_cmd(), &a.root, false).unwrap();
    let open_fds = || std::fs::read_dir(format!("/proc/{}/fd", g.pid())).unwrap().count();
    ca.stat(ROOT).unwrap(); // the gofer is up and has closed what it inherited
    let before = open_fds();
    let dir = rvisor_gofer::open_root(&b.root).unwrap();
    let cb = ca.add_root(std::os::fd::AsFd::as_fd(&dir), true).unwrap();
    drop(dir);
    let w = cb.walk(ROOT, &names("only_in_b")).unwrap();
    assert_eq!(w.end, WalkEnd::Complete);
    assert_eq!(cb.open(w.nodes[0].id, libc::O_WRONLY).unwrap_err(), ErrnoCode::EROFS);
    assert!(matches!(ca.walk(ROOT, &names("only_in_b")).unwrap().end, WalkEnd::Error { errno: ErrnoCode::ENOENT, .. }));
    let node = w.nodes[0].id;
    drop(cb);
    // The root and its nodes are gone (each request is served after the
    // round of the poll loop that saw the hang-up).
    ca.stat(ROOT).unwrap();
    assert_eq!(ca.stat(node).unwrap_err(), ErrnoCode::EBADF);
    assert_eq!(open_fds(), before);
    drop(ca);
    assert!(wait_exit(&mut g).success());
}

#[test]
fn killing_the_gofer_fails_calls_with_eio() {
    let f = Fixture::new(false);
    let (mut g, c) = spawn_gofer_with(gofer_cmd(), &f.root, false).unwrap();
    c.stat(ROOT).unwrap();
    g.kill().unwrap();
    g.wait().unwrap();
    assert_eq!(c.stat(ROOT).unwrap_err(), ErrnoCode::EIO);
}

#[test]
fn forgotten_nodes_are_closed_in_batches() {
    let f = Fixture::new(false);
    let (mut g, c) = spawn_gofer_with(gofer_cmd(), &f.root, false).unwrap();
    let open_fds = || std::fs::read_dir(format!("/proc/{}/fd", g.pid())).unwrap().count();
    c.stat(ROOT).unwrap(); // the gofer is up and has closed what it inherited
    let before = open_fds();
    let nodes: Vec<_> = (0..64).map(|_| c.walk(ROOT, &names("dir")).unwrap().nodes[0].id).collect();
    assert_eq!(open_fds(), before + 64, "a node per walk");
    for &n in &nodes[..63] {
        c.forget(n);
    }
    assert_eq!(open_fds(), before + 64, "no round trip per forgotten node");
    c.forget(nodes[63]);
    assert_eq!(open_fds(), before, "the batch is closed");
    drop(c);
    assert!(wait_exit(&mut g).success());
}

/// Once serving, the gofer runs under its seccomp filter (SECCOMP_MODE_FILTER, one
/// filter), so that it can make only the calls serving takes.
#[test]
fn a_serving_gofer_is_under_its_seccomp_filter() {
    let f = Fixture::new(false);
    let (mut g, c) = spawn_gofer_with(gofer_cmd(), &f.root, false).unwrap();
    // A request answered: the gofer is past setup and in its loop.
    c.stat(ROOT).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", g.pid())).unwrap();
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).map(str::to_string);
    assert_eq!(field("Seccomp:").as_deref(), Some("2"), "{status}");
    assert_eq!(field("Seccomp_filters:").as_deref(), Some("1"), "{status}");
    drop(c);
    assert!(wait_exit(&mut g).success());
}
