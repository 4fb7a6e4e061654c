//! Every operation against a served temporary tree.

mod common;

use common::{names, Fixture};
use rvisor_abi::structs::Timespec;
use rvisor_abi::ErrnoCode;
use rvisor_gofer::{Owner, SetAttr, WalkEnd, ROOT};
use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn file(fd: std::os::fd::OwnedFd) -> fs::File {
    fs::File::from(fd)
}

#[test]
fn walk_returns_a_node_and_attributes_per_component() {
    for f in Fixture::both(false) {
        let w = f.c().walk(ROOT, &names("dir/sub/deep.txt")).unwrap();
        assert_eq!(w.end, WalkEnd::Complete);
        assert_eq!(w.nodes.len(), 3);
        for (node, path) in w.nodes.iter().zip(["dir", "dir/sub", "dir/sub/deep.txt"]) {
            let m = fs::symlink_metadata(f.root.join(path)).unwrap();
            assert_eq!(node.stat.st_ino, m.ino(), "{path}");
            assert_eq!(node.stat.st_dev, m.dev());
            assert_eq!(node.stat.st_mode, m.mode());
            assert_eq!(node.stat.st_size, m.size() as i64);
            assert_eq!(node.stat.st_nlink, m.nlink());
            assert_eq!((node.stat.st_mtime, node.stat.st_mtime_nsec), (m.mtime(), m.mtime_nsec()));
        }
        // Ids are distinct and each one stats its own file.
        let ids: BTreeSet<_> = w.nodes.iter().map(|n| n.id).collect();
        assert_eq!(ids.len(), 3);
        let st = f.c().stat(w.nodes[2].id).unwrap();
        assert_eq!(st.st_size, 4);
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFREG);

        // Longer walks than one message takes are split by the client.
        let mut long = vec![&b"dir"[..]];
        for _ in 0..400 {
            long.extend([&b"sub"[..], b".."]);
        }
        long.push(b"a.txt");
        let w = f.c().walk(ROOT, &long).unwrap();
        assert_eq!((w.nodes.len(), w.end), (long.len(), WalkEnd::Complete));
        assert_eq!(w.nodes.last().unwrap().stat.st_size, 1);
        let mut missing = long.clone();
        missing[700] = b"nope";
        let w = f.c().walk(ROOT, &missing).unwrap();
        assert_eq!((w.nodes.len(), w.end), (700, WalkEnd::Error { index: 700, errno: ErrnoCode::ENOENT }));
        f.c().close(&w.nodes.iter().map(|n| n.id).collect::<Vec<_>>()).unwrap();

        // An empty walk is complete and returns nothing.
        let w = f.c().walk(ROOT, &[]).unwrap();
        assert_eq!((w.nodes.len(), w.end), (0, WalkEnd::Complete));
    }
}

#[test]
fn walk_stops_at_the_first_missing_component() {
    for f in Fixture::both(false) {
        let w = f.c().walk(ROOT, &names("dir/nope/deeper")).unwrap();
        assert_eq!(w.nodes.len(), 1);
        assert_eq!(w.end, WalkEnd::Error { index: 1, errno: ErrnoCode::ENOENT });
        let w = f.c().walk(ROOT, &names("file.txt/x")).unwrap();
        assert_eq!(w.nodes.len(), 1);
        assert_eq!(w.end, WalkEnd::Error { index: 1, errno: ErrnoCode::ENOTDIR });
        let w = f.c().walk(ROOT, &names("file.txt/.")).unwrap();
        assert_eq!(w.end, WalkEnd::Error { index: 1, errno: ErrnoCode::ENOTDIR });
        // An unknown node id.
        assert_eq!(f.c().walk(999_999, &names("x")).unwrap_err(), ErrnoCode::EBADF);
    }
}

#[test]
fn dot_and_dotdot_come_from_the_node_table() {
    for f in Fixture::both(false) {
        let root_ino = fs::metadata(&f.root).unwrap().ino();
        let w = f.c().walk(ROOT, &names("dir/sub/../sub/./deep.txt")).unwrap();
        assert_eq!(w.end, WalkEnd::Complete);
        assert_eq!(w.nodes[2].stat.st_ino, fs::metadata(f.root.join("dir")).unwrap().ino());
        assert_eq!(w.nodes[5].stat.st_size, 4);
        let w = f.c().walk(ROOT, &names("dir/..")).unwrap();
        assert_eq!(w.nodes[1].stat.st_ino, root_ino);
        // A node walked on its own still knows its parent.
        let sub = f.walk("dir/sub");
        let w = f.c().walk(sub, &names("../a.txt")).unwrap();
        assert_eq!(w.nodes[1].stat.st_size, 1);
    }
}

#[test]
fn open_reads_and_writes_through_the_descriptor() {
    for f in Fixture::both(false) {
        let n = f.walk("file.txt");
        let mut s = String::new();
        file(f.c().open(n, libc::O_RDONLY).unwrap()).read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");

        // Read-only descriptors cannot write.
        let mut r = file(f.c().open(n, libc::O_RDONLY).unwrap());
        assert!(r.write_all(b"x").is_err());

        let mut w = file(f.c().open(n, libc::O_RDWR).unwrap());
        w.write_all(b"J").unwrap();
        assert_eq!(fs::read_to_string(f.root.join("file.txt")).unwrap(), "Jello");

        let mut a = file(f.c().open(n, libc::O_WRONLY | libc::O_APPEND).unwrap());
        a.write_all(b" world").unwrap();
        assert_eq!(fs::read_to_string(f.root.join("file.txt")).unwrap(), "Jello world");

        let mut t = file(f.c().open(n, libc::O_WRONLY | libc::O_TRUNC).unwrap());
        assert_eq!(fs::read(f.root.join("file.txt")).unwrap().len(), 0);
        t.write_all(b"new").unwrap();
        assert_eq!(fs::read_to_string(f.root.join("file.txt")).unwrap(), "new");

        // O_RDONLY|O_TRUNC truncates too, as on Linux.
        drop(f.c().open(n, libc::O_RDONLY | libc::O_TRUNC).unwrap());
        assert_eq!(fs::read(f.root.join("file.txt")).unwrap().len(), 0);

        // Descriptors arrive close-on-exec.
        let fd = f.c().open(n, libc::O_RDONLY).unwrap();
        let fl = nix::fcntl::fcntl(std::os::fd::AsRawFd::as_raw_fd(&fd), nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(fl & libc::FD_CLOEXEC, 0);
        // And without O_NONBLOCK, which the server uses internally for the reopen.
        let fl = nix::fcntl::fcntl(std::os::fd::AsRawFd::as_raw_fd(&fd), nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_eq!(fl & libc::O_NONBLOCK, 0);

        assert_eq!(f.c().open(n, libc::O_ACCMODE).unwrap_err(), ErrnoCode::EINVAL);
        assert_eq!(f.c().open(n, libc::O_RDONLY | libc::O_DIRECTORY).unwrap_err(), ErrnoCode::ENOTDIR);
    }
}

#[test]
fn open_file_reads_a_file_by_name() {
    for read_only in [false, true] {
        for f in Fixture::both(read_only) {
            let mut text = String::new();
            file(f.c().open_file(f.walk("dir"), b"a.txt").unwrap()).read_to_string(&mut text).unwrap();
            assert_eq!(text, "a");
            // Read-only, blocking, and no node was made for it.
            let fd = f.c().open_file(ROOT, b"file.txt").unwrap();
            let fl = nix::fcntl::fcntl(std::os::fd::AsRawFd::as_raw_fd(&fd), nix::fcntl::FcntlArg::F_GETFL).unwrap();
            assert_eq!(fl & (libc::O_ACCMODE | libc::O_NONBLOCK), libc::O_RDONLY);
            assert_eq!(file(fd).write(b"x").unwrap_err().raw_os_error(), Some(libc::EBADF));
            assert_eq!(f.c().open_file(ROOT, b"missing").unwrap_err(), ErrnoCode::ENOENT);
        }
    }
}

#[test]
fn open_directories() {
    for f in Fixture::both(false) {
        let d = f.walk("dir");
        let fd = f.c().open(d, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
        let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFDIR);
        assert_eq!(f.c().open(d, libc::O_WRONLY).unwrap_err(), ErrnoCode::EISDIR);
        assert_eq!(f.c().open(d, libc::O_RDWR).unwrap_err(), ErrnoCode::EISDIR);
        assert_eq!(f.c().open(d, libc::O_RDONLY | libc::O_TRUNC).unwrap_err(), ErrnoCode::EISDIR);
        // The root can be opened as well.
        drop(f.c().open(ROOT, libc::O_RDONLY).unwrap());
    }
}

#[test]
fn create_makes_and_opens_a_new_file() {
    for f in Fixture::both(false) {
        let d = f.walk("dir");
        let (node, fd) = f.c().create(d, b"new.txt", libc::O_RDWR, 0o640, None).unwrap();
        let mut fl = file(fd);
        fl.write_all(b"created").unwrap();
        fl.seek(SeekFrom::Start(0)).unwrap();
        let mut s = String::new();
        fl.read_to_string(&mut s).unwrap();
        assert_eq!(s, "created");
        let m = fs::metadata(f.root.join("dir/new.txt")).unwrap();
        // The mode is exactly what was asked: the gofer's umask is 0.
        assert_eq!(m.mode(), libc::S_IFREG | 0o640);
        assert_eq!(node.stat.st_ino, m.ino());
        assert_eq!(f.c().stat(node.id).unwrap().st_size, 7);

        assert_eq!(f.c().create(d, b"new.txt", libc::O_RDWR, 0o640, None).unwrap_err(), ErrnoCode::EEXIST);
        assert_eq!(f.c().create(d, b".", libc::O_RDWR, 0o640, None).unwrap_err(), ErrnoCode::EEXIST);
        let file_node = f.walk("file.txt");
        assert_eq!(f.c().create(file_node, b"x", libc::O_RDWR, 0o640, None).unwrap_err(), ErrnoCode::ENOTDIR);

        if nix::unistd::Uid::effective().is_root() {
            let (n, _) =
                f.c().create(ROOT, b"owned", libc::O_WRONLY, 0o600, Some(Owner { uid: 1234, gid: 5678 })).unwrap();
            let m = fs::metadata(f.root.join("owned")).unwrap();
            assert_eq!((m.uid(), m.gid()), (1234, 5678));
            assert_eq!((n.stat.st_uid, n.stat.st_gid), (1234, 5678));
        }
    }
}

#[test]
fn mkdir_unlink_rmdir() {
    for f in Fixture::both(false) {
        let n = f.c().mkdir(ROOT, b"newdir", 0o750, None).unwrap();
        let m = fs::metadata(f.root.join("newdir")).unwrap();
        assert_eq!(m.mode(), libc::S_IFDIR | 0o750);
        assert_eq!(n.stat.st_ino, m.ino());
        // The new node is a directory node: things can be made in it.
        let (_, _) = f.c().create(n.id, b"f", libc::O_WRONLY, 0o644, None).unwrap();
        assert!(f.root.join("newdir/f").is_file());
        assert_eq!(f.c().mkdir(ROOT, b"newdir", 0o750, None).unwrap_err(), ErrnoCode::EEXIST);

        assert_eq!(f.c().rmdir(ROOT, b"newdir").unwrap_err(), ErrnoCode::ENOTEMPTY);
        assert_eq!(f.c().unlink(ROOT, b"newdir").unwrap_err(), ErrnoCode::EISDIR);
        assert_eq!(f.c().rmdir(n.id, b"f").unwrap_err(), ErrnoCode::ENOTDIR);
        f.c().unlink(n.id, b"f").unwrap();
        f.c().rmdir(ROOT, b"newdir").unwrap();
        assert!(!f.root.join("newdir").exists());
        assert_eq!(f.c().unlink(ROOT, b"newdir").unwrap_err(), ErrnoCode::ENOENT);

        // Unlinking a symlink removes the link only.
        f.c().unlink(ROOT, b"abs_secret").unwrap();
        assert!(fs::symlink_metadata(f.root.join("abs_secret")).is_err());
        f.check_outside();
    }
}

#[test]
fn rename_keeps_nodes_usable() {
    for f in Fixture::both(false) {
        let file_node = f.walk("file.txt");
        let d = f.walk("dir");
        let sub = f.walk("dir/sub");
        let deep = f.walk("dir/sub/deep.txt");

        f.c().rename(ROOT, b"file.txt", d, b"moved.txt", 0).unwrap();
        assert_eq!(fs::read_to_string(f.root.join("dir/moved.txt")).unwrap(), "hello");
        // The node follows its file: reopening finds it under its new name.
        let mut s = String::new();
        file(f.c().open(file_node, libc::O_RDONLY).unwrap()).read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");

        // A directory moved: nodes beneath it and `..` follow.
        f.c().rename(d, b"sub", ROOT, b"top", 0).unwrap();
        drop(f.c().open(deep, libc::O_RDONLY).unwrap());
        let w = f.c().walk(sub, &names("..")).unwrap();
        assert_eq!(w.nodes[0].stat.st_ino, fs::metadata(&f.root).unwrap().ino());

        // NOREPLACE and EXCHANGE.
        assert_eq!(f.c().rename(d, b"moved.txt", d, b"a.txt", libc::RENAME_NOREPLACE).unwrap_err(), ErrnoCode::EEXIST);
        f.c().rename(d, b"moved.txt", d, b"a.txt", libc::RENAME_EXCHANGE).unwrap();
        assert_eq!(fs::read_to_string(f.root.join("dir/a.txt")).unwrap(), "hello");
        assert_eq!(fs::read_to_string(f.root.join("dir/moved.txt")).unwrap(), "a");
        let mut s = String::new();
        file(f.c().open(file_node, libc::O_RDONLY).unwrap()).read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        assert_eq!(f.c().rename(d, b"a.txt", d, b"b", 0x80).unwrap_err(), ErrnoCode::EINVAL);
        assert_eq!(f.c().rename(d, b"..", d, b"b", 0).unwrap_err(), ErrnoCode::EINVAL);
        assert_eq!(f.c().rename(d, b"nope", d, b"b", 0).unwrap_err(), ErrnoCode::ENOENT);
    }
}

#[test]
fn readdir_in_batches_with_cookies() {
    for f in Fixture::both(false) {
        let big = f.root.join("big");
        fs::create_dir(&big).unwrap();
        let mut want = BTreeSet::new();
        for i in 0..1500 {
            let name = format!("entry-{i:05}-{}", "x".repeat(i % 60));
            fs::write(big.join(&name), "").unwrap();
            want.insert(name.into_bytes());
        }
        fs::create_dir(big.join("a_dir")).unwrap();
        want.insert(b"a_dir".to_vec());
        std::os::unix::fs::symlink("/", big.join("a_link")).unwrap();
        want.insert(b"a_link".to_vec());

        let d = f.walk("big");
        // Small batches: many round trips, each continuing from the last cookie.
        let mut got = Vec::new();
        let mut cookie = 0;
        let mut batches = 0;
        loop {
            let b = f.c().readdir(d, cookie, 600).unwrap();
            batches += 1;
            assert!(!b.entries.is_empty() || b.eof);
            let bytes: usize = b.entries.iter().map(|e| e.wire_size()).sum();
            assert!(bytes <= 600, "batch of {bytes} bytes");
            if let Some(last) = b.entries.last() {
                cookie = last.cookie;
            }
            got.extend(b.entries);
            if b.eof {
                break;
            }
        }
        assert!(batches > 50, "{batches} batches");
        let names: BTreeSet<_> = got.iter().map(|e| e.name.clone()).collect();
        assert_eq!(names.len(), got.len(), "an entry was listed twice");
        assert_eq!(names, want, ". and .. are left out, everything else is listed");
        for e in &got {
            let m = fs::symlink_metadata(big.join(std::ffi::OsStr::from_bytes(&e.name))).unwrap();
            assert_eq!(e.ino, m.ino());
            let kind = match e.name.as_slice() {
                b"a_dir" => libc::DT_DIR,
                b"a_link" => libc::DT_LNK,
                _ => libc::DT_REG,
            };
            if e.kind != libc::DT_UNKNOWN {
                assert_eq!(e.kind, kind);
            }
            // Each entry brings its attributes (of the link itself, not its target),
            // and a directory a node of its own.
            let st = e.stat.expect("attributes");
            assert_eq!((st.st_ino, st.st_mode, st.st_size), (m.ino(), m.mode(), m.size() as i64));
            match e.node {
                Some(n) => {
                    assert_eq!(e.kind, libc::DT_DIR);
                    assert_eq!(f.c().stat(n).unwrap().st_ino, m.ino());
                }
                None => assert_ne!(e.kind, libc::DT_DIR),
            }
        }
        let key = |v: &[rvisor_gofer::Dirent]| v.iter().map(|e| (e.name.clone(), e.ino, e.kind, e.cookie)).collect::<Vec<_>>();

        // Continuing from a cookie in the middle gives exactly the rest.
        let mid = &got[700];
        let rest = {
            let mut v = Vec::new();
            let mut c = mid.cookie;
            loop {
                let b = f.c().readdir(d, c, 65536).unwrap();
                if let Some(l) = b.entries.last() {
                    c = l.cookie;
                }
                v.extend(b.entries);
                if b.eof {
                    break v;
                }
            }
        };
        assert_eq!(key(&rest), key(&got[701..]));
        assert_eq!(key(&f.c().readdir_all(d).unwrap()), key(&got));

        // Too small for one entry; not a directory.
        assert_eq!(f.c().readdir(d, 0, 4).unwrap_err(), ErrnoCode::EINVAL);
        assert_eq!(f.c().readdir(f.walk("file.txt"), 0, 4096).unwrap_err(), ErrnoCode::ENOTDIR);
        // An empty directory.
        let e = f.c().mkdir(ROOT, b"empty", 0o755, None).unwrap();
        let b = f.c().readdir(e.id, 0, 4096).unwrap();
        assert!(b.eof && b.entries.is_empty());
    }
}

#[test]
fn symlink_and_readlink() {
    for f in Fixture::both(false) {
        let n = f.c().symlink(ROOT, b"sl", b"/etc/passwd", None).unwrap();
        assert_eq!(n.stat.st_mode & libc::S_IFMT, libc::S_IFLNK);
        assert_eq!(fs::read_link(f.root.join("sl")).unwrap().to_str(), Some("/etc/passwd"));
        assert_eq!(f.c().readlink(n.id).unwrap(), b"/etc/passwd");
        let w = f.c().walk(ROOT, &names("dotdots")).unwrap();
        assert_eq!(f.c().readlink(w.nodes[0].id).unwrap(), b"../../../../../../..");
        assert_eq!(f.c().readlink(f.walk("file.txt")).unwrap_err(), ErrnoCode::EINVAL);
        assert_eq!(f.c().symlink(ROOT, b"sl", b"x", None).unwrap_err(), ErrnoCode::EEXIST);
        assert_eq!(f.c().symlink(ROOT, b"e", b"", None).unwrap_err(), ErrnoCode::ENOENT);
        assert_eq!(f.c().symlink(ROOT, b"e", b"a\0b", None).unwrap_err(), ErrnoCode::EINVAL);
        let long = vec![b'a'; 5000];
        assert_eq!(f.c().symlink(ROOT, b"e", &long, None).unwrap_err(), ErrnoCode::ENAMETOOLONG);
        if nix::unistd::Uid::effective().is_root() {
            let n = f.c().symlink(ROOT, b"owned", b"abs_secret", Some(Owner { uid: 4321, gid: 8765 })).unwrap();
            let m = fs::symlink_metadata(f.root.join("owned")).unwrap();
            assert_eq!((m.uid(), m.gid()), (4321, 8765));
            assert_eq!(n.stat.st_uid, 4321);
        }
    }
}

/// FIFO and socket nodes are only names on the host: never devices, never opened.
#[test]
fn mknod_makes_fifos_and_sockets_only() {
    use std::os::unix::fs::FileTypeExt;
    for f in Fixture::both(false) {
        let n = f.c().mknod(ROOT, b"fifo", libc::S_IFIFO | 0o640, None).unwrap();
        assert_eq!(n.stat.st_mode & libc::S_IFMT, libc::S_IFIFO);
        assert!(fs::symlink_metadata(f.root.join("fifo")).unwrap().file_type().is_fifo());
        assert_eq!(f.c().open(n.id, libc::O_RDONLY).unwrap_err(), ErrnoCode::ENXIO);
        let s = f.c().mknod(ROOT, b"sock", libc::S_IFSOCK | 0o600, None).unwrap();
        assert_eq!(s.stat.st_mode & libc::S_IFMT, libc::S_IFSOCK);
        assert!(fs::symlink_metadata(f.root.join("sock")).unwrap().file_type().is_socket());
        assert_eq!(f.c().mknod(ROOT, b"fifo", libc::S_IFIFO | 0o600, None).unwrap_err(), ErrnoCode::EEXIST);
        for kind in [libc::S_IFCHR, libc::S_IFBLK, libc::S_IFREG, libc::S_IFDIR] {
            assert_eq!(f.c().mknod(ROOT, b"dev", kind | 0o600, None).unwrap_err(), ErrnoCode::EPERM);
        }
        assert!(fs::symlink_metadata(f.root.join("dev")).is_err());
    }
}

#[test]
fn link_makes_a_hard_link() {
    for f in Fixture::both(false) {
        let t = f.walk("file.txt");
        let d = f.walk("dir");
        let n = f.c().link(d, b"hard", t).unwrap();
        let a = fs::metadata(f.root.join("file.txt")).unwrap();
        let b = fs::metadata(f.root.join("dir/hard")).unwrap();
        assert_eq!(a.ino(), b.ino());
        assert_eq!(a.nlink(), 2);
        assert_eq!(n.stat.st_ino, a.ino());
        assert_eq!(f.c().link(d, b"hard", t).unwrap_err(), ErrnoCode::EEXIST);
        assert_eq!(f.c().link(ROOT, b"dirlink", d).unwrap_err(), ErrnoCode::EPERM);
        // A hard link to a symlink links the symlink itself.
        let w = f.c().walk(ROOT, &names("abs_secret")).unwrap();
        f.c().link(ROOT, b"secret_link2", w.nodes[0].id).unwrap();
        assert!(fs::symlink_metadata(f.root.join("secret_link2")).unwrap().file_type().is_symlink());
        f.check_outside();
    }
}

#[test]
fn setattr_changes_mode_owner_size_and_times() {
    for f in Fixture::both(false) {
        let n = f.walk("file.txt");
        let p = f.root.join("file.txt");

        let st = f.c().setattr(n, &SetAttr { mode: Some(0o4711), ..Default::default() }).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode(), libc::S_IFREG | 0o4711);
        assert_eq!(st.st_mode, libc::S_IFREG | 0o4711);

        f.c().setattr(n, &SetAttr { size: Some(2), ..Default::default() }).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "he");
        let st = f.c().setattr(n, &SetAttr { size: Some(10000), ..Default::default() }).unwrap();
        assert_eq!(st.st_size, 10000);
        assert_eq!(fs::metadata(&p).unwrap().len(), 10000);

        let t = SetAttr {
            atime: Some(Timespec { tv_sec: 1_000_000_000, tv_nsec: 123 }),
            mtime: Some(Timespec { tv_sec: 1_500_000_000, tv_nsec: 456_000 }),
            ..Default::default()
        };
        let st = f.c().setattr(n, &t).unwrap();
        let m = fs::metadata(&p).unwrap();
        assert_eq!((m.atime(), m.atime_nsec()), (1_000_000_000, 123));
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_500_000_000, 456_000));
        assert_eq!((st.st_mtime, st.st_mtime_nsec), (1_500_000_000, 456_000));
        // Only mtime, set to now: atime stays.
        let st = f
            .c()
            .setattr(
                n,
                &SetAttr { mtime: Some(Timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW }), ..Default::default() },
            )
            .unwrap();
        assert!(st.st_mtime > 1_600_000_000);
        assert_eq!((st.st_atime, st.st_atime_nsec), (1_000_000_000, 123));
        let bad = SetAttr { atime: Some(Timespec { tv_sec: 0, tv_nsec: 2_000_000_000 }), ..Default::default() };
        assert_eq!(f.c().setattr(n, &bad).unwrap_err(), ErrnoCode::EINVAL);

        if nix::unistd::Uid::effective().is_root() {
            let st = f.c().setattr(n, &SetAttr { uid: Some(777), gid: Some(888), ..Default::default() }).unwrap();
            let m = fs::metadata(&p).unwrap();
            assert_eq!((m.uid(), m.gid()), (777, 888));
            assert_eq!((st.st_uid, st.st_gid), (777, 888));
            let st = f.c().setattr(n, &SetAttr { gid: Some(999), ..Default::default() }).unwrap();
            assert_eq!((st.st_uid, st.st_gid), (777, 999));
        }

        // Directories: mode and times work, size does not.
        let d = f.walk("dir");
        f.c().setattr(d, &SetAttr { mode: Some(0o700), ..Default::default() }).unwrap();
        assert_eq!(fs::metadata(f.root.join("dir")).unwrap().permissions().mode() & 0o7777, 0o700);
        assert_eq!(f.c().setattr(d, &SetAttr { size: Some(0), ..Default::default() }).unwrap_err(), ErrnoCode::EISDIR);
        f.c().setattr(ROOT, &SetAttr { mode: Some(0o755), ..Default::default() }).unwrap();
    }
}

#[test]
fn statfs_describes_the_file_system() {
    for f in Fixture::both(false) {
        let s = f.c().statfs(ROOT).unwrap();
        let host = nix::sys::statvfs::statvfs(&f.root).unwrap();
        assert_eq!(s.bsize, host.block_size());
        assert_eq!(s.blocks, host.blocks());
        assert_eq!(s.namelen, host.name_max());
        assert_eq!(s.flags & libc::ST_RDONLY, 0);
        assert_ne!(s.fs_type, 0);
        let s2 = f.c().statfs(f.walk("dir/a.txt")).unwrap();
        assert_eq!(s2.fs_type, s.fs_type);
        assert_eq!(s2.fsid, s.fsid);
    }
}

#[test]
fn close_forgets_nodes_but_not_the_root() {
    for f in Fixture::both(false) {
        let n = f.walk("file.txt");
        f.c().stat(n).unwrap();
        f.c().close(&[n, ROOT, 123_456_789]).unwrap();
        assert_eq!(f.c().stat(n).unwrap_err(), ErrnoCode::EBADF);
        assert_eq!(f.c().open(n, libc::O_RDONLY).unwrap_err(), ErrnoCode::EBADF);
        f.c().stat(ROOT).unwrap();
        // Closing a directory does not break nodes walked from it.
        let w = f.c().walk(ROOT, &names("dir/sub/deep.txt")).unwrap();
        f.c().close(&[w.nodes[0].id, w.nodes[1].id]).unwrap();
        drop(f.c().open(w.nodes[2].id, libc::O_RDONLY).unwrap());
        let up = f.c().walk(w.nodes[2].id, &[]).unwrap();
        assert_eq!(up.end, WalkEnd::Complete);
        // A large close is split across messages.
        let many: Vec<_> = (1000..20_000).collect();
        f.c().close(&many).unwrap();
    }
}

#[test]
fn several_connections_and_threads_share_one_server() {
    for f in Fixture::both(false) {
        let second = f.c().connect().unwrap();
        let n = f.walk("dir/a.txt");
        // Node ids are shared between connections.
        assert_eq!(second.stat(n).unwrap().st_size, 1);
        let third = second.connect().unwrap();
        drop(second);
        assert_eq!(third.stat(n).unwrap().st_size, 1);

        // Client is Send + Sync: hammer it from several threads.
        std::thread::scope(|s| {
            for t in 0..8 {
                let c = if t % 2 == 0 { f.c() } else { &third };
                s.spawn(move || {
                    for _ in 0..200 {
                        let w = c.walk(ROOT, &names("dir/sub/deep.txt")).unwrap();
                        assert_eq!(w.nodes[2].stat.st_size, 4);
                        let ids: Vec<_> = w.nodes.iter().map(|n| n.id).collect();
                        c.close(&ids).unwrap();
                    }
                });
            }
        });
        drop(third);
    }
}

#[test]
fn bad_names_are_refused() {
    for f in Fixture::both(false) {
        let long = vec![b'n'; 256];
        for (name, errno) in [
            (&b"dir/sub"[..], ErrnoCode::EINVAL),
            (b"/", ErrnoCode::EINVAL),
            (b"../outside", ErrnoCode::EINVAL),
            (b"", ErrnoCode::ENOENT),
            (b"a\0b", ErrnoCode::EINVAL),
            (&long, ErrnoCode::ENAMETOOLONG),
        ] {
            let w = f.c().walk(ROOT, &[name]).unwrap();
            assert_eq!(w.end, WalkEnd::Error { index: 0, errno }, "walk {name:?}");
            assert!(w.nodes.is_empty());
            assert_eq!(f.c().create(ROOT, name, libc::O_RDWR, 0o644, None).unwrap_err(), errno);
            assert_eq!(f.c().mkdir(ROOT, name, 0o755, None).unwrap_err(), errno);
            assert_eq!(f.c().unlink(ROOT, name).unwrap_err(), errno);
            assert_eq!(f.c().symlink(ROOT, name, b"t", None).unwrap_err(), errno);
            assert_eq!(f.c().rename(ROOT, b"file.txt", ROOT, name, 0).unwrap_err(), errno);
        }
        for name in [&b"."[..], b".."] {
            assert_eq!(f.c().mkdir(ROOT, name, 0o755, None).unwrap_err(), ErrnoCode::EEXIST);
            assert_eq!(f.c().unlink(ROOT, name).unwrap_err(), ErrnoCode::EINVAL);
            assert_eq!(f.c().rmdir(ROOT, name).unwrap_err(), ErrnoCode::EINVAL);
            assert_eq!(f.c().rename(ROOT, name, ROOT, b"x", 0).unwrap_err(), ErrnoCode::EINVAL);
        }
        // A name longer than a message allows is refused by the client itself.
        let huge = vec![b'x'; 70_000];
        assert_eq!(f.c().walk(ROOT, &[&huge]).unwrap_err(), ErrnoCode::ENAMETOOLONG);
        // And the connection still works.
        f.c().stat(ROOT).unwrap();
    }
}

#[test]
fn the_server_can_be_driven_directly() {
    use rvisor_gofer::protocol::{Request, Response, MAX_WALK};
    use rvisor_gofer::Server;
    let f = Fixture::new(false);
    let mut s = Server::new(common::open_dir(&f.root), false).unwrap();
    assert_eq!(s.node_count(), 1);
    let (r, fd) = s.handle(Request::Walk { dir: ROOT, names: vec![b"dir".to_vec(), b"sub".to_vec()] });
    assert!(fd.is_none());
    let Response::Walked { nodes, end: WalkEnd::Complete } = r else { panic!("{r:?}") };
    assert_eq!(s.node_count(), 3);
    let (r, _) = s.handle(Request::Close { nodes: nodes.iter().map(|n| n.id).chain([ROOT]).collect() });
    assert!(matches!(r, Response::Ok {}));
    assert_eq!(s.node_count(), 1, "nodes are forgotten, the root is not");
    // A listing makes a node for each directory in it, and only for those.
    let (r, _) = s.handle(Request::Readdir { dir: ROOT, cookie: 0, max_bytes: 65536 });
    let Response::Dirents { entries, eof: true } = r else { panic!("{r:?}") };
    let dirs: Vec<_> = entries.iter().filter_map(|e| e.node).collect();
    assert_eq!(dirs.len(), entries.iter().filter(|e| e.kind == libc::DT_DIR).count());
    assert!(!dirs.is_empty() && dirs.len() < entries.len(), "{entries:?}");
    assert_eq!(s.node_count(), 1 + dirs.len());
    s.handle(Request::Close { nodes: dirs });
    assert_eq!(s.node_count(), 1);
    let (r, _) = s.handle(Request::Walk { dir: ROOT, names: vec![b".".to_vec(); MAX_WALK + 1] });
    assert!(matches!(r, Response::Error { errno: ErrnoCode::ENAMETOOLONG }), "{r:?}");
    let (r, _) = s.handle(Request::Walk { dir: ROOT, names: vec![b".".to_vec(); MAX_WALK] });
    assert!(matches!(r, Response::Walked { end: WalkEnd::Complete, .. }));
}

/// Listing a directory with more subdirectories than the node budget makes nodes only
/// up to it; the rest come with their attributes alone (the client walks to them).
#[test]
fn listings_make_nodes_within_a_budget() {
    use rvisor_gofer::protocol::{Request, Response};
    use rvisor_gofer::server::LISTED_NODES_MAX;
    use rvisor_gofer::Server;
    let f = Fixture::new(true);
    let many = f.root.join("many");
    fs::create_dir(&many).unwrap();
    for i in 0..LISTED_NODES_MAX + 100 {
        fs::create_dir(many.join(format!("d{i}"))).unwrap();
    }
    let mut s = Server::new(common::open_dir(&f.root), true).unwrap();
    let (r, _) = s.handle(Request::Walk { dir: ROOT, names: vec![b"many".to_vec()] });
    let Response::Walked { nodes, .. } = r else { panic!("{r:?}") };
    let dir = nodes[0].id;
    let (mut cookie, mut with, mut without) = (0, 0, 0);
    loop {
        let (r, _) = s.handle(Request::Readdir { dir, cookie, max_bytes: 65536 });
        let Response::Dirents { entries, eof } = r else { panic!("{r:?}") };
        for e in &entries {
            assert!(e.stat.is_some());
            if e.node.is_some() { with += 1 } else { without += 1 }
        }
        cookie = entries.last().map_or(cookie, |e| e.cookie);
        if eof {
            break;
        }
    }
    assert_eq!(with + without, LISTED_NODES_MAX + 100);
    assert!(without >= 100, "{with} with nodes, {without} without");
    assert!(s.node_count() <= LISTED_NODES_MAX, "{} nodes", s.node_count());
    let _ = fs::remove_dir_all(&many);
}

/// The value of `name` on the host file `p`, as the host says.
fn host_xattr(p: &std::path::Path, name: &str) -> Result<Vec<u8>, i32> {
    let path = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    let mut v = vec![0u8; 65536];
    // SAFETY: both strings are NUL-terminated and `v` valid for writes of its length.
    let n = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
    if n < 0 {
        return Err(nix::errno::Errno::last_raw());
    }
    v.truncate(n as usize);
    Ok(v)
}

#[test]
fn extended_attributes_are_the_host_files() {
    for f in Fixture::both(false) {
        let c = f.c();
        let file = f.walk("file.txt");
        let dir = f.walk("dir");
        let link = f.walk("link_to_root");
        let (create, replace) = (libc::XATTR_CREATE as u32, libc::XATTR_REPLACE as u32);

        c.setxattr(file, b"user.a", b"alpha", 0).unwrap();
        assert_eq!(host_xattr(&f.root.join("file.txt"), "user.a"), Ok(b"alpha".to_vec()));
        assert_eq!(c.getxattr(file, b"user.a").unwrap(), b"alpha");
        assert_eq!(c.setxattr(file, b"user.a", b"x", create).unwrap_err(), ErrnoCode::EEXIST);
        assert_eq!(c.setxattr(file, b"user.b", b"x", replace).unwrap_err(), ErrnoCode::ENODATA);
        c.setxattr(file, b"user.a", b"", replace).unwrap();
        assert_eq!(c.getxattr(file, b"user.a").unwrap(), b"");
        c.setxattr(file, b"user.b", b"beta", create).unwrap();
        assert_eq!(c.listxattr(file).unwrap(), [b"user.a".to_vec(), b"user.b".to_vec()]);
        c.removexattr(file, b"user.a").unwrap();
        assert_eq!(c.removexattr(file, b"user.a").unwrap_err(), ErrnoCode::ENODATA);
        assert_eq!(c.getxattr(file, b"user.a").unwrap_err(), ErrnoCode::ENODATA);
        assert_eq!(host_xattr(&f.root.join("file.txt"), "user.a"), Err(libc::ENODATA));

        // Directories too, the served one itself included.
        c.setxattr(dir, b"user.d", b"dir", 0).unwrap();
        assert_eq!(host_xattr(&f.root.join("dir"), "user.d"), Ok(b"dir".to_vec()));
        c.setxattr(ROOT, b"user.r", b"root", 0).unwrap();
        assert_eq!(c.getxattr(ROOT, b"user.r").unwrap(), b"root");

        // A symlink keeps none here (nor does Linux take user ones on it).
        assert_eq!(c.setxattr(link, b"user.l", b"x", 0).unwrap_err(), ErrnoCode::EPERM);
        assert_eq!(c.getxattr(link, b"user.l").unwrap_err(), ErrnoCode::ENODATA);
        assert!(c.listxattr(link).unwrap().is_empty());

        // Only user attributes are written; trusted ones are not there to read
        // (EOPNOTSUPP), system ones never read.
        for name in [&b"trusted.t"[..], b"security.s", b"system.posix_acl_access", b"other.o"] {
            assert_eq!(c.setxattr(file, name, b"x", 0).unwrap_err(), ErrnoCode::EOPNOTSUPP, "{name:?}");
            assert_eq!(c.removexattr(file, name).unwrap_err(), ErrnoCode::EOPNOTSUPP, "{name:?}");
        }
        assert_eq!(c.getxattr(file, b"trusted.t").unwrap_err(), ErrnoCode::EOPNOTSUPP);
        assert_eq!(c.getxattr(file, b"system.posix_acl_access").unwrap_err(), ErrnoCode::ENODATA);
        assert_eq!(c.getxattr(file, b"").unwrap_err(), ErrnoCode::ERANGE);
        assert_eq!(c.getxattr(file, &[b'u'; 256]).unwrap_err(), ErrnoCode::ERANGE);
        assert_eq!(c.setxattr(file, b"user.a", b"x", 4).unwrap_err(), ErrnoCode::EINVAL);
        // The largest value fits in a message: the answer is the host file
        // system's (ext4 has no room for it, ENOSPC), as for a file set directly.
        let big = c.setxattr(file, b"user.big", &[7; 65536], 0).map_err(|e| i32::from(e.0));
        let host = f.root.join("dir/sub/deep.txt");
        let path = std::ffi::CString::new(host.as_os_str().as_bytes()).unwrap();
        // SAFETY: both strings are NUL-terminated and the value valid for reads of its length.
        let r = unsafe { libc::setxattr(path.as_ptr(), c"user.big".as_ptr(), [7u8; 65536].as_ptr().cast(), 65536, 0) };
        assert_eq!(big, if r == 0 { Ok(()) } else { Err(nix::errno::Errno::last_raw()) });
        if big.is_ok() {
            assert_eq!(c.getxattr(file, b"user.big").unwrap().len(), 65536);
        }
        assert_eq!(c.setxattr(file, b"user.big", &[7; 65537], 0).unwrap_err(), ErrnoCode::E2BIG);
    }
}
