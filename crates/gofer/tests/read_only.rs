//! A read-only gofer refuses every change with EROFS and changes nothing.

mod common;

use common::{names, snapshot, Fixture};
use rvisor_abi::structs::Timespec;
use rvisor_abi::ErrnoCode;
use rvisor_gofer::{SetAttr, WalkEnd, ROOT};
use std::io::Read;

#[test]
fn every_change_is_erofs() {
    for f in Fixture::both(true) {
        let tree = snapshot(&f.root);
        let c = f.c();
        let file = f.walk("file.txt");
        let dir = f.walk("dir");
        let rofs = ErrnoCode::EROFS;

        assert_eq!(c.create(dir, b"new", libc::O_RDWR, 0o644, None).unwrap_err(), rofs);
        assert_eq!(c.create(dir, b"new", libc::O_RDONLY, 0o644, None).unwrap_err(), rofs);
        assert_eq!(c.mkdir(dir, b"new", 0o755, None).unwrap_err(), rofs);
        assert_eq!(c.unlink(dir, b"a.txt").unwrap_err(), rofs);
        assert_eq!(c.rmdir(dir, b"sub").unwrap_err(), rofs);
        assert_eq!(c.rename(ROOT, b"file.txt", dir, b"moved", 0).unwrap_err(), rofs);
        assert_eq!(c.symlink(dir, b"sl", b"/", None).unwrap_err(), rofs);
        assert_eq!(c.link(dir, b"hl", file).unwrap_err(), rofs);
        assert_eq!(c.mknod(dir, b"ff", libc::S_IFIFO | 0o600, None).unwrap_err(), rofs);
        for attr in [
            SetAttr { mode: Some(0o777), ..Default::default() },
            SetAttr { uid: Some(0), ..Default::default() },
            SetAttr { gid: Some(0), ..Default::default() },
            SetAttr { size: Some(0), ..Default::default() },
            SetAttr { atime: Some(Timespec { tv_sec: 1, tv_nsec: 0 }), ..Default::default() },
            SetAttr { mtime: Some(Timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW }), ..Default::default() },
            SetAttr::default(),
        ] {
            assert_eq!(c.setattr(file, &attr).unwrap_err(), rofs, "{attr:?}");
            assert_eq!(c.setattr(dir, &attr).unwrap_err(), rofs, "{attr:?}");
        }
        for flags in [
            libc::O_WRONLY,
            libc::O_RDWR,
            libc::O_RDONLY | libc::O_TRUNC,
            libc::O_WRONLY | libc::O_APPEND,
            libc::O_RDWR | libc::O_TRUNC,
        ] {
            assert_eq!(c.open(file, flags).unwrap_err(), rofs, "{flags:#x}");
        }

        assert_eq!(c.setxattr(file, b"user.a", b"x", 0).unwrap_err(), rofs);
        assert_eq!(c.setxattr(dir, b"user.a", b"x", 0).unwrap_err(), rofs);
        assert_eq!(c.removexattr(file, b"user.kept").unwrap_err(), rofs);

        // Reading works: walk, stat, open for reading, readdir, readlink, statfs.
        let w = c.walk(ROOT, &names("dir/sub/deep.txt")).unwrap();
        assert_eq!(w.end, WalkEnd::Complete);
        let mut s = String::new();
        std::fs::File::from(c.open(file, libc::O_RDONLY).unwrap()).read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        // O_APPEND means nothing without write access, and is dropped.
        drop(c.open(file, libc::O_RDONLY | libc::O_APPEND).unwrap());
        drop(c.open(dir, libc::O_RDONLY | libc::O_DIRECTORY).unwrap());
        assert_eq!(c.readdir_all(dir).unwrap().len(), 3);
        let l = c.walk(ROOT, &names("link_to_root")).unwrap().nodes[0].id;
        assert_eq!(c.readlink(l).unwrap(), b"/");
        assert_ne!(c.statfs(ROOT).unwrap().flags & libc::ST_RDONLY, 0);
        c.stat(file).unwrap();
        assert_eq!(c.getxattr(file, b"user.none").unwrap_err(), ErrnoCode::ENODATA);
        assert!(c.listxattr(dir).unwrap().is_empty());
        c.close(&[file, dir, l]).unwrap();

        assert_eq!(tree, snapshot(&f.root), "the served tree changed");
    }
}
