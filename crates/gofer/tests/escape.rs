//! The gofer never resolves a path outside its root. Each fixture plants symlinks
//! to `/` and to files outside the root, and checks on drop that nothing outside
//! the root changed. Every test runs against a normal server and a compat-mode one.

mod common;

use common::{names, Fixture};
use rvisor_abi::structs::Timespec;
use rvisor_abi::ErrnoCode;
use rvisor_gofer::{SetAttr, WalkEnd, ROOT};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};

const S_IFLNK: u32 = libc::S_IFLNK;

fn is_link(mode: u32) -> bool {
    mode & libc::S_IFMT == S_IFLNK
}

#[test]
fn a_symlink_to_slash_is_reported_not_followed() {
    for f in Fixture::both(false) {
        let w = f.c().walk(ROOT, &names("link_to_root/etc/passwd")).unwrap();
        assert_eq!(w.end, WalkEnd::Symlink { index: 0 });
        assert_eq!(w.nodes.len(), 1, "nothing past the symlink is walked");
        let link = w.nodes[0].id;
        assert!(is_link(w.nodes[0].stat.st_mode));
        assert_eq!(w.nodes[0].stat.st_ino, fs::symlink_metadata(f.root.join("link_to_root")).unwrap().ino());
        assert_eq!(f.c().readlink(link).unwrap(), b"/");

        // The symlink node is not a directory, whatever it points to.
        assert_eq!(
            f.c().walk(link, &names("etc")).unwrap().end,
            WalkEnd::Error { index: 0, errno: ErrnoCode::ENOTDIR }
        );
        assert_eq!(f.c().walk(link, &names(".")).unwrap().end, WalkEnd::Error { index: 0, errno: ErrnoCode::ENOTDIR });
        assert_eq!(f.c().readdir(link, 0, 4096).unwrap_err(), ErrnoCode::ENOTDIR);
        assert_eq!(f.c().create(link, b"x", libc::O_RDWR, 0o644, None).unwrap_err(), ErrnoCode::ENOTDIR);
        assert_eq!(f.c().mkdir(link, b"x", 0o755, None).unwrap_err(), ErrnoCode::ENOTDIR);
        assert_eq!(f.c().symlink(link, b"x", b"y", None).unwrap_err(), ErrnoCode::ENOTDIR);
        assert_eq!(f.c().unlink(link, b"etc").unwrap_err(), ErrnoCode::ENOTDIR);
        assert_eq!(f.c().rename(link, b"etc", ROOT, b"stolen", 0).unwrap_err(), ErrnoCode::ENOTDIR);
        assert_eq!(f.c().link(link, b"x", f.walk("file.txt")).unwrap_err(), ErrnoCode::ENOTDIR);
        for flags in [libc::O_RDONLY, libc::O_RDONLY | libc::O_DIRECTORY, libc::O_RDWR] {
            assert_eq!(f.c().open(link, flags).unwrap_err(), ErrnoCode::ELOOP);
        }
        // A symlink as the last component is returned as itself.
        let w = f.c().walk(ROOT, &names("link_to_root")).unwrap();
        assert_eq!(w.end, WalkEnd::Complete);
        assert!(is_link(w.nodes[0].stat.st_mode));
    }
}

#[test]
fn absolute_and_relative_symlinks_out_of_the_root() {
    for f in Fixture::both(false) {
        for name in ["abs_secret", "rel_secret", "abs_outdir", "dotdots"] {
            let w = f.c().walk(ROOT, &[name.as_bytes()]).unwrap();
            assert_eq!(w.end, WalkEnd::Complete, "{name}");
            let n = w.nodes[0].id;
            assert!(is_link(w.nodes[0].stat.st_mode), "{name}");
            // The attributes are the link's, not its target's.
            assert_eq!(w.nodes[0].stat.st_ino, fs::symlink_metadata(f.root.join(name)).unwrap().ino());
            for flags in [libc::O_RDONLY, libc::O_WRONLY, libc::O_RDWR | libc::O_TRUNC, libc::O_WRONLY | libc::O_APPEND]
            {
                assert_eq!(f.c().open(n, flags).unwrap_err(), ErrnoCode::ELOOP, "{name} {flags:#x}");
            }
            assert_eq!(
                f.c().setattr(n, &SetAttr { size: Some(0), ..Default::default() }).unwrap_err(),
                ErrnoCode::EINVAL
            );
            assert_eq!(
                f.c().setattr(n, &SetAttr { mode: Some(0o777), ..Default::default() }).unwrap_err(),
                ErrnoCode::EOPNOTSUPP
            );
            // Times and owner change the link itself.
            let t = SetAttr { mtime: Some(Timespec { tv_sec: 12345, tv_nsec: 0 }), ..Default::default() };
            f.c().setattr(n, &t).unwrap();
            assert_eq!(fs::symlink_metadata(f.root.join(name)).unwrap().mtime(), 12345);
            if nix::unistd::Uid::effective().is_root() {
                f.c().setattr(n, &SetAttr { uid: Some(4242), gid: Some(4343), ..Default::default() }).unwrap();
                assert_eq!(fs::symlink_metadata(f.root.join(name)).unwrap().uid(), 4242);
            }
            // A hard link to the symlink is a second symlink, not a link to the target.
            let hl = format!("hard_{name}");
            f.c().link(ROOT, hl.as_bytes(), n).unwrap();
            assert!(fs::symlink_metadata(f.root.join(&hl)).unwrap().file_type().is_symlink());
            f.check_outside();
        }
        // Through a symlink to a directory outside: stopped at the link.
        let w = f.c().walk(ROOT, &names("abs_outdir/inner")).unwrap();
        assert_eq!((w.nodes.len(), w.end), (1, WalkEnd::Symlink { index: 0 }));
        assert_eq!(f.c().rmdir(ROOT, b"abs_outdir").unwrap_err(), ErrnoCode::ENOTDIR);
        // Unlinking the links removes the links only.
        for name in ["abs_secret", "rel_secret", "abs_outdir", "link_to_root"] {
            f.c().unlink(ROOT, name.as_bytes()).unwrap();
        }
        f.check_outside();
    }
}

#[test]
fn dotdot_never_leaves_the_root() {
    for f in Fixture::both(false) {
        let root_ino = fs::metadata(&f.root).unwrap().ino();
        let ups = vec![&b".."[..]; 64];
        let w = f.c().walk(ROOT, &ups).unwrap();
        assert_eq!(w.end, WalkEnd::Complete);
        assert!(w.nodes.iter().all(|n| n.stat.st_ino == root_ino), "`..` of the root is the root");
        // `outside` is a sibling of the root: not reachable by `..`.
        let w = f.c().walk(ROOT, &names("../outside/secret")).unwrap();
        assert_eq!(w.end, WalkEnd::Error { index: 1, errno: ErrnoCode::ENOENT });
        let w = f.c().walk(ROOT, &names("dir/sub/../../../../outside")).unwrap();
        assert_eq!(w.end, WalkEnd::Error { index: 6, errno: ErrnoCode::ENOENT });
        assert_eq!(w.nodes.len(), 6);
        assert_eq!(w.nodes[5].stat.st_ino, root_ino);
        // From a node deep down, `..` climbs to the root and stops there.
        let deep = f.walk("dir/sub");
        let w = f.c().walk(deep, &ups[..10]).unwrap();
        assert_eq!(w.nodes[0].stat.st_ino, fs::metadata(f.root.join("dir")).unwrap().ino());
        assert!(w.nodes[1..].iter().all(|n| n.stat.st_ino == root_ino));
        // A symlink to `..` in the middle of a walk is reported, not resolved.
        let w = f.c().walk(ROOT, &names("dir/updir/file.txt")).unwrap();
        assert_eq!(w.end, WalkEnd::Symlink { index: 1 });
        let w = f.c().walk(ROOT, &names("dotdots/etc")).unwrap();
        assert_eq!(w.end, WalkEnd::Symlink { index: 0 });
        // `..` inside a name is refused.
        for bad in [&b"../outside"[..], b"dir/../..", b"..\0", b"/etc"] {
            let w = f.c().walk(ROOT, &[bad]).unwrap();
            assert!(matches!(w.end, WalkEnd::Error { index: 0, .. }), "{bad:?}");
            assert!(w.nodes.is_empty());
        }
    }
}

#[test]
fn names_with_a_slash_never_reach_outside() {
    for f in Fixture::both(false) {
        let out = "../outside/secret";
        let abs = f.outside.join("secret");
        let abs = abs.to_str().unwrap();
        for name in [out, abs, "dir/../../outside/secret", "./../outside"] {
            let n = name.as_bytes();
            assert_eq!(f.c().create(ROOT, n, libc::O_RDWR, 0o666, None).unwrap_err(), ErrnoCode::EINVAL);
            assert_eq!(f.c().mkdir(ROOT, n, 0o777, None).unwrap_err(), ErrnoCode::EINVAL);
            assert_eq!(f.c().unlink(ROOT, n).unwrap_err(), ErrnoCode::EINVAL);
            assert_eq!(f.c().rmdir(ROOT, n).unwrap_err(), ErrnoCode::EINVAL);
            assert_eq!(f.c().symlink(ROOT, n, b"/", None).unwrap_err(), ErrnoCode::EINVAL);
            assert_eq!(f.c().link(ROOT, n, f.walk("file.txt")).unwrap_err(), ErrnoCode::EINVAL);
            assert_eq!(f.c().rename(ROOT, b"file.txt", ROOT, n, 0).unwrap_err(), ErrnoCode::EINVAL);
            assert_eq!(f.c().rename(ROOT, n, ROOT, b"stolen", 0).unwrap_err(), ErrnoCode::EINVAL);
        }
        assert!(!f.root.join("stolen").exists());
        f.check_outside();
    }
}

#[test]
fn creating_over_a_planted_symlink_never_writes_its_target() {
    for f in Fixture::both(false) {
        let target = f.outside.join("created_by_escape");
        symlink(&target, f.root.join("dangling")).unwrap();
        assert_eq!(f.c().create(ROOT, b"dangling", libc::O_RDWR, 0o666, None).unwrap_err(), ErrnoCode::EEXIST);
        assert_eq!(f.c().create(ROOT, b"abs_secret", libc::O_WRONLY, 0o666, None).unwrap_err(), ErrnoCode::EEXIST);
        assert_eq!(f.c().mkdir(ROOT, b"dangling", 0o777, None).unwrap_err(), ErrnoCode::EEXIST);
        assert_eq!(f.c().symlink(ROOT, b"dangling", b"/", None).unwrap_err(), ErrnoCode::EEXIST);
        assert!(!target.exists());
        // Renaming onto a symlink replaces the link, not its target.
        f.c().rename(ROOT, b"file.txt", ROOT, b"abs_secret", 0).unwrap();
        assert_eq!(fs::read_to_string(f.root.join("abs_secret")).unwrap(), "hello");
        f.c().rename(ROOT, b"abs_outdir", ROOT, b"moved_link", 0).unwrap();
        assert!(fs::symlink_metadata(f.root.join("moved_link")).unwrap().file_type().is_symlink());
        f.check_outside();
    }
}

#[test]
fn a_name_swapped_for_a_symlink_after_the_walk_is_not_followed() {
    for f in Fixture::both(false) {
        let n = f.walk("file.txt");
        let p = f.root.join("file.txt");
        // The host (or a racing writer) swaps the file for a link to a secret.
        fs::rename(&p, f.root.join("file.orig")).unwrap();
        symlink(f.outside.join("secret"), &p).unwrap();
        for flags in [libc::O_RDONLY, libc::O_RDWR | libc::O_TRUNC, libc::O_WRONLY | libc::O_APPEND] {
            let e = f.c().open(n, flags).unwrap_err();
            assert!(e == ErrnoCode::ELOOP || e.0 == libc::ESTALE as u16, "{flags:#x}: {e:?}");
        }
        assert!(f.c().setattr(n, &SetAttr { size: Some(0), ..Default::default() }).is_err());
        // Mode and times go to the node's own inode (by descriptor) or fail; never
        // to the secret.
        let _ = f.c().setattr(n, &SetAttr { mode: Some(0o777), ..Default::default() });
        let _ = f.c().setattr(n, &SetAttr { mtime: Some(Timespec { tv_sec: 1, tv_nsec: 0 }), ..Default::default() });
        if nix::unistd::Uid::effective().is_root() {
            // By descriptor: the original file, whatever its name now.
            f.c().setattr(n, &SetAttr { uid: Some(31337), ..Default::default() }).unwrap();
            assert_eq!(fs::metadata(f.root.join("file.orig")).unwrap().uid(), 31337);
        }
        f.check_outside();

        // Swapped for another regular file: ESTALE, and the other file is not truncated.
        let n = f.walk("dir/a.txt");
        let p = f.root.join("dir/a.txt");
        fs::remove_file(&p).unwrap();
        fs::write(&p, "someone else's").unwrap();
        assert_eq!(f.c().open(n, libc::O_RDWR | libc::O_TRUNC).unwrap_err().0, libc::ESTALE as u16);
        assert!(f.c().setattr(n, &SetAttr { size: Some(0), ..Default::default() }).is_err());
        assert_eq!(fs::read_to_string(&p).unwrap(), "someone else's");

        // Swapped for a FIFO: the reopen must not hang the gofer.
        let n = f.walk("dir/sub/deep.txt");
        let p = f.root.join("dir/sub/deep.txt");
        fs::remove_file(&p).unwrap();
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        assert!(f.c().open(n, libc::O_RDONLY).is_err());
        assert!(f.c().open(n, libc::O_WRONLY).is_err());
        f.c().stat(ROOT).unwrap();
    }
}

#[test]
fn a_directory_swapped_for_a_symlink_is_not_entered() {
    for f in Fixture::both(false) {
        let d = f.walk("dir");
        fs::rename(f.root.join("dir"), f.root.join("dir.orig")).unwrap();
        symlink(f.outside.join("dir"), f.root.join("dir")).unwrap();
        // The node keeps naming the directory it was walked to.
        let w = f.c().walk(d, &names("a.txt")).unwrap();
        assert_eq!(w.end, WalkEnd::Complete);
        f.c().create(d, b"made_here", libc::O_WRONLY, 0o644, None).unwrap();
        assert!(f.root.join("dir.orig/made_here").exists());
        // A fresh walk meets the symlink and stops.
        let w = f.c().walk(ROOT, &names("dir/inner")).unwrap();
        assert_eq!(w.end, WalkEnd::Symlink { index: 0 });
        f.check_outside();
    }
}

#[test]
fn special_files_are_not_opened() {
    for f in Fixture::both(false) {
        nix::unistd::mkfifo(&f.root.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let fifo = f.walk("fifo");
        // A host FIFO would be a channel to host processes: never opened, either way.
        assert_eq!(f.c().open(fifo, libc::O_RDONLY).unwrap_err(), ErrnoCode::ENXIO);
        assert_eq!(f.c().open(fifo, libc::O_WRONLY).unwrap_err(), ErrnoCode::ENXIO);
        if nix::unistd::Uid::effective().is_root() {
            // A device node (here /dev/null's numbers) is never opened on the host.
            nix::sys::stat::mknod(
                &f.root.join("null"),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o666),
                nix::sys::stat::makedev(1, 3),
            )
            .unwrap();
            let dev = f.walk("null");
            assert_eq!(f.c().open(dev, libc::O_RDONLY).unwrap_err(), ErrnoCode::EPERM);
            assert_eq!(f.c().open_file(ROOT, b"null").unwrap_err(), ErrnoCode::EPERM);
        }
        assert_eq!(f.c().open_file(ROOT, b"fifo").unwrap_err(), ErrnoCode::ENXIO);
    }
}

/// Opening a file by name reaches only a regular file in that very directory: never
/// through a symlink, never by a path.
#[test]
fn open_file_stays_in_its_directory() {
    for f in Fixture::both(false) {
        for link in ["abs_secret", "rel_secret", "link_to_root", "dotdots"] {
            assert_eq!(f.c().open_file(ROOT, link.as_bytes()).unwrap_err(), ErrnoCode::ELOOP, "{link}");
        }
        for path in ["dir/a.txt", "../outside/secret", "/etc/passwd"] {
            assert_eq!(f.c().open_file(ROOT, path.as_bytes()).unwrap_err(), ErrnoCode::EINVAL, "{path}");
        }
        assert_eq!(f.c().open_file(ROOT, b"..").unwrap_err(), ErrnoCode::EISDIR);
        assert_eq!(f.c().open_file(ROOT, b"dir").unwrap_err(), ErrnoCode::EISDIR);
        assert_eq!(f.c().open_file(ROOT, b"").unwrap_err(), ErrnoCode::ENOENT);
        assert_eq!(f.c().open_file(f.walk("file.txt"), b"x").unwrap_err(), ErrnoCode::ENOTDIR);
    }
}
