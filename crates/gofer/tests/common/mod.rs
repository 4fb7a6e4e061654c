//! A served temporary tree, with sentinel files outside it that must never change.

#![allow(dead_code)]

use nix::fcntl::OFlag;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::stat::Mode;
use rvisor_gofer::{Client, NodeId, Options, Server, WalkEnd};
use std::collections::BTreeMap;
use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

/// Everything observable about a file that an escape could change (atimes aside:
/// snapshotting itself reads files and directories).
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    kind: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    nlink: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    content: Vec<u8>,
}

/// The state of every file under `dir`, `dir` included, symlinks not followed.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Seen> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        let content = if m.is_file() {
            fs::read(&p).unwrap()
        } else if m.file_type().is_symlink() {
            fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes()
        } else {
            Vec::new()
        };
        if m.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
        out.insert(
            p,
            Seen {
                kind: m.mode() & libc::S_IFMT,
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
                size: m.size(),
                nlink: m.nlink(),
                mtime: (m.mtime(), m.mtime_nsec()),
                ctime: (m.ctime(), m.ctime_nsec()),
                content,
            },
        );
    }
    out
}

pub struct Fixture {
    pub base: PathBuf,
    /// The served directory.
    pub root: PathBuf,
    /// A sibling of the root that nothing may touch.
    pub outside: PathBuf,
    pub client: Option<Client>,
    pub compat: bool,
    server: Option<JoinHandle<()>>,
    before: BTreeMap<PathBuf, Seen>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Opens a directory as the server wants its root.
pub fn open_dir(p: &Path) -> OwnedFd {
    let fd = nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
    // SAFETY: just opened; only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

impl Fixture {
    /// The tree:
    /// ```text
    /// base/outside/secret            "top secret" 0600   (never to change)
    /// base/outside/dir/inner         "inner"
    /// base/root/file.txt             "hello"
    /// base/root/dir/a.txt            "a"
    /// base/root/dir/sub/deep.txt     "deep"
    /// base/root/dir/updir         -> ..
    /// base/root/link_to_root      -> /
    /// base/root/abs_secret        -> base/outside/secret
    /// base/root/rel_secret        -> ../outside/secret
    /// base/root/abs_outdir        -> base/outside/dir
    /// base/root/dotdots           -> ../../../../../../..
    /// ```
    pub fn new(read_only: bool) -> Fixture {
        Fixture::with(read_only, false)
    }

    /// Two fixtures: a server using every kernel feature, and one in compat mode
    /// (the fallbacks for old kernels and unprivileged gofers).
    pub fn both(read_only: bool) -> [Fixture; 2] {
        [Fixture::with(read_only, false), Fixture::with(read_only, true)]
    }

    pub fn with(read_only: bool, compat: bool) -> Fixture {
        let base = std::env::temp_dir().join(format!(
            "rvisor-gofer-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&base);
        let root = base.join("root");
        let outside = base.join("outside");
        fs::create_dir_all(outside.join("dir")).unwrap();
        fs::write(outside.join("secret"), "top secret").unwrap();
        fs::set_permissions(outside.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(outside.join("dir/inner"), "inner").unwrap();
        fs::create_dir_all(root.join("dir/sub")).unwrap();
        fs::write(root.join("file.txt"), "hello").unwrap();
        fs::write(root.join("dir/a.txt"), "a").unwrap();
        fs::write(root.join("dir/sub/deep.txt"), "deep").unwrap();
        symlink("..", root.join("dir/updir")).unwrap();
        symlink("/", root.join("link_to_root")).unwrap();
        symlink(outside.join("secret"), root.join("abs_secret")).unwrap();
        symlink("../outside/secret", root.join("rel_secret")).unwrap();
        symlink(outside.join("dir"), root.join("abs_outdir")).unwrap();
        symlink("../../../../../../..", root.join("dotdots")).unwrap();
        let before = snapshot(&outside);

        let (ours, theirs) =
            socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).unwrap();
        let root_fd = open_dir(&root);
        let server = std::thread::spawn(move || {
            let mut s = Server::with_options(root_fd, Options { read_only, compat }).unwrap();
            s.add_connection(theirs);
            s.run().unwrap();
        });
        Fixture { base, root, outside, client: Some(Client::new(ours)), compat, server: Some(server), before }
    }

    pub fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// Walks a `/`-separated path from the root; panics unless it completes.
    pub fn walk(&self, path: &str) -> NodeId {
        let names: Vec<&[u8]> = path.split('/').map(str::as_bytes).collect();
        let w = self.c().walk(rvisor_gofer::ROOT, &names).unwrap();
        assert_eq!(w.end, WalkEnd::Complete, "walk {path}");
        assert_eq!(w.nodes.len(), names.len());
        w.nodes.last().unwrap().id
    }

    /// Asserts that nothing outside the root changed.
    pub fn check_outside(&self) {
        let now = snapshot(&self.outside);
        assert_eq!(self.before, now, "a file outside the served root changed");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Closing the last connection ends the server loop.
        self.client = None;
        if let Some(t) = self.server.take() {
            let r = t.join();
            if !std::thread::panicking() {
                r.expect("server thread");
                self.check_outside();
            }
        }
        let _ = fs::remove_dir_all(&self.base);
    }
}

pub fn names(path: &str) -> Vec<&[u8]> {
    if path.is_empty() {
        return vec![];
    }
    path.split('/').map(str::as_bytes).collect()
}
