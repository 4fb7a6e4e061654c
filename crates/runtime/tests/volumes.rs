//! Bind mounts of host directories (`rvisor do -v HOST:SANDBOX[:ro]`): a read-write
//! one changes the host files as a native run would; a read-only one changes nothing.

mod common;
use common::*;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What a directory tree holds, one line per entry in name order: its path, type,
/// permission bits and contents (a symlink's target), and a file's or
/// directory's user extended attributes.
fn contents(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = fs::read_dir(dir).expect("read_dir").map(|e| e.expect("entry").path()).collect();
        names.sort();
        for p in names {
            let rel = p.strip_prefix(root).expect("under the root").display().to_string();
            let meta = fs::symlink_metadata(&p).expect("lstat");
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.push(format!("{rel} -> {}", fs::read_link(&p).expect("readlink").display()));
            } else if meta.is_dir() {
                out.push(format!("{rel}/ {mode:o}{}", user_xattrs(&p)));
                walk(root, &p, out);
            } else {
                out.push(format!("{rel} {mode:o} {:?}{}", String::from_utf8_lossy(&fs::read(&p).expect("read")), user_xattrs(&p)));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// ` user.a="value"` for each user attribute of `p`, in name order.
fn user_xattrs(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(p.as_os_str().as_bytes()).expect("a path without NUL");
    let mut names = vec![0u8; 65536];
    // SAFETY: `path` is NUL-terminated and `names` valid for writes of its length.
    let n = unsafe { libc::llistxattr(path.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    let n = usize::try_from(n).expect("llistxattr");
    let mut names: Vec<&[u8]> = names[..n].split(|&b| b == 0).filter(|n| n.starts_with(b"user.")).collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        let name = std::ffi::CString::new(name).expect("a name without NUL");
        let mut value = vec![0u8; 65536];
        // SAFETY: both strings are NUL-terminated and `value` valid for writes of its length.
        let n = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
        let n = usize::try_from(n).expect("lgetxattr");
        out += &format!(" {}={:?}", name.to_string_lossy(), String::from_utf8_lossy(&value[..n]));
    }
    out
}

fn set_user_xattr(p: &Path, name: &str, value: &str) {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(p.as_os_str().as_bytes()).expect("a path without NUL");
    let name = std::ffi::CString::new(name).expect("a name without NUL");
    // SAFETY: both strings are NUL-terminated and `value` valid for reads of its length.
    let r = unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    assert_eq!(r, 0, "setxattr {p:?}");
}

fn fresh_dir(stem: &str) -> std::path::PathBuf {
    let d = scratch_path(stem);
    fs::create_dir_all(&d).expect("make a scratch directory");
    d
}

#[test]
fn read_write_bind_mount_changes_host_files_as_native() {
    same_on_a_read_write_volume("read_write_bind_mount_changes_host_files_as_native", "bind_rw");
}

/// FIFOs and sockets made in a read-write bind mount: nodes on the host, the
/// pipe or bound socket behind each in the Sentry.
#[test]
fn fifos_and_sockets_in_a_read_write_bind_mount() {
    same_on_a_read_write_volume("fifos_and_sockets_in_a_read_write_bind_mount", "bind_fifo_socket");
}

/// statfs in a bind mount says the host file system's type, block size, size
/// and name length, as under runc.
#[test]
fn statfs_in_a_bind_mount_is_the_host_file_systems() {
    same_on_a_read_write_volume("statfs_in_a_bind_mount_is_the_host_file_systems", "bind_statfs");
}

/// /proc/self/mounts and mountinfo give a bind mount of a host directory its
/// host file system's type and source, as a bind mount under runc does: the
/// scratch directory's (ext4, btrfs...) and a tmpfs's.
#[test]
fn a_bind_mount_shows_the_host_file_systems_type() {
    same_on_a_read_write_volume("a_bind_mount_shows_the_host_file_systems_type", "bind_mounts_type");
    matrix("a_bind_mount_shows_the_host_file_systems_type_on_tmpfs", &[Link::Static], |v| {
        let dir = PathBuf::from(format!("/dev/shm/{}", unique_name("bind-type")));
        if fs::create_dir(&dir).is_err() {
            return Ok(());
        }
        let bin = compile("bind_mounts_type", v.link);
        let native = run_native(&bin, &Spec::args([&dir]));
        let volume = format!("{0}:{0}", dir.display());
        let sb = run(sandbox_command(v.platform, &["-v", &volume], &bin, &Spec::args([&dir])), Input::Bytes(Vec::new()));
        let _ = fs::remove_dir(&dir);
        sane(&sb)?;
        all([expect_status(&sb, 0), expect_stdout_has_line(&sb, "mounts: type tmpfs source tmpfs"), if sb.stdout == native.stdout { Ok(()) } else { Err(format!("stdout differs from native:\n{}", diff(&native.stdout, &sb.stdout))) }])
            .map_err(|e| format!("{e}\n{}", sb.describe()))
    });
}

/// trusted.* attributes of a host file (tests/programs/bind_trusted_xattr.c):
/// without CAP_SYS_ADMIN Linux's answers (get ENODATA, set and remove EPERM,
/// list hides them); with it, those of a file system that keeps none
/// (EOPNOTSUPP), while the root overlay keeps them on its copies (a lower
/// file has none: ENODATA).
#[test]
fn trusted_xattrs_of_host_files() {
    matrix("trusted_xattrs_of_host_files", &[Link::Static], |v| {
        let bin = compile("bind_trusted_xattr", v.link);
        let dir = fresh_dir("bind-trusted");
        let volume = format!("{}:/d", dir.display());
        let sb = run(sandbox_command(v.platform, &["-v", &volume], &bin, &Spec::args(["/d"])), Input::Bytes(Vec::new()));
        let _ = fs::remove_dir_all(&dir);
        sane(&sb)?;
        all([
            expect_status(&sb, 0),
            expect_stdout_has_line(&sb, "host with CAP_SYS_ADMIN: get trusted.x: -1 EOPNOTSUPP"),
            expect_stdout_has_line(&sb, "host with CAP_SYS_ADMIN: set trusted.x: -1 EOPNOTSUPP"),
            expect_stdout_has_line(&sb, "host with CAP_SYS_ADMIN: remove trusted.x: -1 EOPNOTSUPP"),
            expect_stdout_has_line(&sb, "host with CAP_SYS_ADMIN: list: user.u"),
            expect_stdout_has_line(&sb, "root with CAP_SYS_ADMIN: get trusted.x: -1 ENODATA"),
            expect_stdout_has_line(&sb, "root with CAP_SYS_ADMIN: remove trusted.x: -1 ENODATA"),
            expect_stdout_has_line(&sb, "host without: get trusted.x: -1 ENODATA"),
            expect_stdout_has_line(&sb, "host without: set trusted.x: -1 EPERM"),
            expect_stdout_has_line(&sb, "host without: remove trusted.x: -1 EPERM"),
            expect_stdout_has_line(&sb, "all ok"),
        ])
        .map_err(|e| format!("{e}\n{}", sb.describe()))
    });
}

/// A hole punched under a shared mapping that stored to it stays a hole when
/// the mapping is written back (st_blocks, SEEK_HOLE as natively).
#[test]
fn punched_hole_under_a_shared_mapping_stays_a_hole() {
    same_on_a_read_write_volume("punched_hole_under_a_shared_mapping_stays_a_hole", "bind_punch_mapped");
}

/// Runs `program` on a host directory natively and on one bound read-write into
/// the sandbox: outputs, statuses and the directories afterwards must match.
fn same_on_a_read_write_volume(test: &str, program: &str) {
    matrix(test, LINKS, |v| {
        let bin = compile(program, v.link);
        let native_dir = fresh_dir("bind-native");
        let native = run_native(&bin, &Spec::args([&native_dir]));
        if native.status != 0 {
            panic!("the native run of {program} failed:\n{}", native.describe());
        }
        let sandbox_dir = fresh_dir("bind-sandbox");
        let volume = format!("{0}:{0}", sandbox_dir.display());
        let sb = run(sandbox_command(v.platform, &["-v", &volume], &bin, &Spec::args([&sandbox_dir])), Input::Bytes(Vec::new()));
        sane(&sb)?;
        let mut errs = Vec::new();
        if sb.status != native.status {
            errs.push(format!("exit status: native {}, sandbox {}", native.status, sb.status));
        }
        if sb.stdout != native.stdout {
            errs.push(format!("stdout differs from native:\n{}", diff(&native.stdout, &sb.stdout)));
        }
        let (want, got) = (contents(&native_dir), contents(&sandbox_dir));
        if want != got {
            errs.push(format!("the host directory differs from native:\n{}", diff(want.join("\n").as_bytes(), got.join("\n").as_bytes())));
        }
        let _ = fs::remove_dir_all(&native_dir);
        let _ = fs::remove_dir_all(&sandbox_dir);
        if errs.is_empty() {
            Ok(())
        } else {
            Err(format!("{}\nsandbox run:\n{}", errs.join("\n"), sb.describe()))
        }
    });
}

#[test]
fn read_only_bind_mount_refuses_changes() {
    matrix("read_only_bind_mount_refuses_changes", LINKS, |v| {
        let bin = compile("bind_rw", v.link);
        let dir = fresh_dir("bind-ro");
        fs::write(dir.join("a.txt"), "kept").expect("write a.txt");
        set_user_xattr(&dir.join("a.txt"), "user.kept", "host");
        let before = contents(&dir);
        let volume = format!("{}:/data:ro", dir.display());
        let sb = run(sandbox_command(v.platform, &["-v", &volume], &bin, &Spec::args(["/data"])), Input::Bytes(Vec::new()));
        sane(&sb)?;
        let after = contents(&dir);
        let _ = fs::remove_dir_all(&dir);
        all([
            expect_status(&sb, 0),
            expect_stdout_has_line(&sb, "create ro.txt 0444: Read-only file system"),
            expect_stdout_has_line(&sb, "truncate 5: Read-only file system"),
            expect_stdout_has_line(&sb, "mkdir d: Read-only file system"),
            expect_stdout_has_line(&sb, "setxattr on the mount's directory: Read-only file system"),
            expect_stdout_has_line(&sb, "getxattr user.kept of a.txt: 4 \"host\""),
            expect_stdout_has_line(&sb, "a.txt = \"kept\" (4 bytes)"),
            if before == after { Ok(()) } else { Err(format!("the host directory changed: {before:?} -> {after:?}")) },
        ])
        .map_err(|e| format!("{e}\n{}", sb.describe()))
    });
}

/// A program in a volume runs by its path in the sandbox, which the host does
/// not have; a missing one there is reported by the sandbox.
#[test]
fn a_program_runs_from_a_volume_by_its_sandbox_path() {
    matrix("a_program_runs_from_a_volume_by_its_sandbox_path", LINKS, |v| {
        let bin = compile("hello", v.link);
        let dir = fresh_dir("vol-prog");
        fs::copy(&bin, dir.join("hello")).map_err(|e| e.to_string())?;
        let volume = format!("{}:/vol-{}:ro", dir.display(), std::process::id());
        let inside = PathBuf::from(format!("/vol-{}/hello", std::process::id()));
        let sb = run(sandbox_command(v.platform, &["-v", &volume], &inside, &Spec::default()), Input::Bytes(Vec::new()));
        let missing = run(sandbox_command(v.platform, &["-v", &volume], &inside.with_file_name("absent"), &Spec::default()), Input::Bytes(Vec::new()));
        let _ = fs::remove_dir_all(&dir);
        all([expect_status(&sb, 0), expect_stdout_has_line(&sb, "hello, world"), expect_status(&missing, 127), stderr_says(&missing, "No such file or directory")])
            .map_err(|e| format!("{e}\n{}\n{}", sb.describe(), missing.describe()))
    });
}

fn stderr_says(o: &Outcome, what: &str) -> Result<(), String> {
    if o.stderr_str().contains(what) { Ok(()) } else { Err(format!("stderr does not say {what:?}")) }
}

/// Whether host process `pid` is a gofer (`rvisor gofer ...`).
fn is_gofer(pid: libc::pid_t) -> bool {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    cmdline.split(|&b| b == 0).nth(1) == Some(b"gofer".as_slice())
}

/// However many host directories a sandbox mounts, one gofer process serves them
/// all, each mount its own directory in its own mode: a read-only one refuses
/// changes the read-write one takes, and a rename between them is EXDEV.
#[test]
fn one_gofer_serves_every_bind_mount() {
    matrix("one_gofer_serves_every_bind_mount", &[Link::Static], |v| {
        let bin = compile("two_binds", v.link);
        let (rw, ro) = (fresh_dir("multi-rw"), fresh_dir("multi-ro"));
        fs::write(rw.join("marker"), "rw").expect("write marker");
        fs::write(rw.join("moveme"), "m").expect("write moveme");
        fs::write(ro.join("marker"), "ro").expect("write marker");
        let before_ro = contents(&ro);
        let volumes = [format!("{}:/a", rw.display()), format!("{}:/b:ro", ro.display())];
        let flags = ["-v", volumes[0].as_str(), "-v", volumes[1].as_str()];
        let mut p = Interactive::spawn(sandbox_command(v.platform, &flags, &bin, &Spec::args(["/a", "/b"])));
        p.expect_line("ready")?;
        // The gofers are started at boot, before the program runs.
        let gofers = process_tree(p.pid()).into_iter().filter(|&pid| is_gofer(pid)).count();
        p.send_line()?;
        let o = p.finish();
        let after_rw = contents(&rw);
        let after_ro = contents(&ro);
        let _ = (fs::remove_dir_all(&rw), fs::remove_dir_all(&ro));
        all([
            expect_status(&o, 0),
            expect_stdout_has_line(&o, "create in the ro mount: EROFS"),
            expect_stdout_has_line(&o, "rename across mounts: EXDEV"),
            if gofers == 1 { Ok(()) } else { Err(format!("{gofers} gofer processes for the root and two bind mounts")) },
            if after_rw.iter().any(|l| l.starts_with("new.txt ") && l.ends_with("\"new\"")) && after_rw.iter().any(|l| l.starts_with("moveme ")) {
                Ok(())
            } else {
                Err(format!("the read-write directory: {after_rw:?}"))
            },
            if before_ro == after_ro { Ok(()) } else { Err(format!("the read-only directory changed: {before_ro:?} -> {after_ro:?}")) },
        ])
        .map_err(|e| format!("{e}\n{}", o.describe()))
    });
}

/// Mount namespaces, MS_MOVE and pivot_root (tests/programs/mntns.c): mounts made
/// after unshare(CLONE_NEWNS) or clone(CLONE_NEWNS) stay in the namespace, cwds
/// move along, /proc/PID/mountinfo shows each process's own tree, pivot_root
/// with a put_old and runc's `pivot_root . .`, getcwd outside a chroot, and the
/// errors, as natively.
#[test]
fn mount_namespaces_move_and_pivot_root() {
    compare("mount_namespaces_move_and_pivot_root", "mntns", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "parent sees a/child-file: no"),
            expect_stdout_has_line(o, "pivoted child sees /marker: yes"),
            expect_stdout_has_line(o, "/ after: inside"),
        ])
    });
}

/// Mount propagation (tests/programs/propagation.c): shared bind mounts see
/// each other's mounts and unmounts (lazy ones too), a slave receives and
/// sends nothing back (what it receives goes beneath its own mount there), a
/// private bind does neither, an unbindable mount is
/// bound nowhere and an rbind leaves it out, MS_MOVE's rules, unshare's copies
/// are peers (slaves from a new user namespace), mountinfo's optional fields
/// (propagate_from in a chroot), mount_setattr's propagation with
/// AT_RECURSIVE, MOVE_MOUNT_SET_GROUP and the errors, as natively.
#[test]
fn mount_propagation_peers_slaves_and_unbindable() {
    compare("mount_propagation_peers_slaves_and_unbindable", "propagation", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "b sees b/x/f: yes"),
            expect_stdout_has_line(o, "a sees a/t/f: no"),
            expect_stdout_has_line(o, "c sees c/k/mine: yes"),
            expect_stdout_has_line(o, "b/dx is a mount: no"),
            expect_stdout_has_line(o, "rb sees rb/un/f: no"),
            expect_stdout_has_line(o, "parent: n/y is a mount: yes"),
            expect_stdout_has_line(o, "in the chroot, /c has master: yes, propagate_from: yes"),
            expect_stdout_has_line(o, "g2 sees g2/x/f: yes"),
        ])
    });
}

/// Mount flags (tests/programs/mount_flags.c): nothing runs from a noexec mount
/// (execve, mmap and mprotect refuse), a nodev bind of a device opens nothing,
/// statvfs and mountinfo show the flags, bind remounts change them, as natively.
#[test]
fn noexec_nodev_and_nosuid_mounts() {
    compare("noexec_nodev_and_nosuid_mounts", "mount_flags", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "run from the noexec mount: -13"),
            expect_stdout_has_line(o, "mmap PROT_EXEC: -1 EPERM"),
            expect_stdout_has_line(o, "open it nodev: -1 EACCES"),
            expect_stdout_has_line(o, "run after: 42"),
        ])
    });
}

/// mount(2) and umount2(2) inside the sandbox (tests/programs/mount.c): tmpfs with
/// options and stacked, proc, bind mounts and read-only remounts, propagation
/// changes, the errors and EPERM without CAP_SYS_ADMIN, as natively (in a private
/// mount namespace there); the host's tree is untouched.
#[test]
fn mount_and_umount_inside_the_sandbox() {
    compare("mount_and_umount_inside_the_sandbox", "mount", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "remount the bind read-only: 0 "),
            expect_stdout_has_line(o, "create through the read-only bind: -1 EROFS"),
            expect_stdout_has_line(o, "umount without CAP_SYS_ADMIN: -1 EPERM"),
        ])
    });
}

/// tmpfs's options in /proc/mounts and mountinfo (tests/programs/tmpfs_options.c):
/// size=, nr_inodes=, mode=, uid=, gid=, inode64, huge=, noswap as Linux shows
/// them, after a remount too.
#[test]
fn tmpfs_mount_options_show_as_natively() {
    compare("tmpfs_mount_options_show_as_natively", "tmpfs_options", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "  mounts t tmpfs rw,relatime,size=1024k,nr_inodes=100,mode=700,uid=1,gid=2,inode64,huge=within_size,noswap"),
            expect_stdout_has_line(o, "  mountinfo t tmpfs rw,size=16k,nr_inodes=7,mode=711"),
            expect_stdout_has_line(o, "all ok"),
        ])
    });
}

/// A sparse file of 1 GiB and 3 pages with `bigfile_map`'s markers in it, and an
/// empty one, in a fresh directory.
fn big_sparse_file(stem: &str) -> PathBuf {
    use std::os::unix::fs::FileExt;
    let dir = fresh_dir(stem);
    let size = (1u64 << 30) + 3 * 4096;
    let f = fs::File::create(dir.join("big")).expect("create big");
    f.set_len(size).expect("size big");
    for (i, off) in [0, (100 << 20) + 17, (300 << 20) + 5, size - 100].into_iter().enumerate() {
        f.write_all_at(format!("mark{i}").as_bytes(), off).expect("write a marker");
    }
    fs::write(dir.join("empty"), "").expect("create empty");
    dir
}

/// Host files past 256 MiB on a volume map without being copied
/// (tests/programs/bigfile_map.c): on a read-write one shared and writable, the
/// stores reaching the host file at msync and munmap, private stores not; on a
/// read-only one shared and private. Only touched pages cost memory, maps names
/// the file, and an empty file maps but SIGBUSes when touched, as natively.
#[test]
fn large_host_files_map_without_copying() {
    matrix("large_host_files_map_without_copying", &[Link::Static], |v| {
        let bin = compile("bigfile_map", v.link);
        let native_dir = fresh_dir("bigmap-native");
        let native = run_native(&bin, &Spec::args([Path::new("rw"), &native_dir]));
        let _ = fs::remove_dir_all(&native_dir);
        if native.status != 0 {
            panic!("the native run of bigfile_map rw failed:\n{}", native.describe());
        }
        let rw = fresh_dir("bigmap-rw");
        let volume = format!("{0}:{0}", rw.display());
        let sb = run(sandbox_command(v.platform, &["-v", &volume], &bin, &Spec::args([Path::new("rw"), &rw])), Input::Bytes(Vec::new()));
        let _ = fs::remove_dir_all(&rw);
        let ro = big_sparse_file("bigmap-ro");
        let big = ro.join("big");
        let native_ro = run_native(&bin, &Spec::args([Path::new("ro"), &big]));
        let volume = format!("{0}:{0}:ro", ro.display());
        let sb_ro = run(sandbox_command(v.platform, &["-v", &volume], &bin, &Spec::args([Path::new("ro"), &big])), Input::Bytes(Vec::new()));
        let _ = fs::remove_dir_all(&ro);
        if native_ro.status != 0 {
            panic!("the native run of bigfile_map ro failed:\n{}", native_ro.describe());
        }
        sane(&sb)?;
        sane(&sb_ro)?;
        let same = |n: &Outcome, s: &Outcome| if n.stdout == s.stdout { Ok(()) } else { Err(format!("stdout differs from native:\n{}", diff(&n.stdout, &s.stdout))) };
        all([expect_status(&sb, 0), same(&native, &sb), expect_status(&sb_ro, 0), same(&native_ro, &sb_ro)])
            .map_err(|e| format!("{e}\n{}\n{}", sb.describe(), sb_ro.describe()))
    });
}

/// Shared writable mappings of files on a read-write volume write back only what
/// was stored to (tests/programs/map_writeback.c): a sparse file read through the
/// mapping stays sparse, and bytes written through another name where the mapping
/// only read are not overwritten at msync; the mapping follows the file's size
/// (ftruncate growing or shrinking it, write() past its end), as natively.
#[test]
fn shared_file_mappings_write_back_only_what_was_stored() {
    matrix("shared_file_mappings_write_back_only_what_was_stored", &[Link::Static], |v| {
        let bin = compile("map_writeback", v.link);
        let native_dir = fresh_dir("writeback-native");
        let native = run_native(&bin, &Spec::args([&native_dir]));
        let _ = fs::remove_dir_all(&native_dir);
        if native.status != 0 {
            panic!("the native run of map_writeback failed:\n{}", native.describe());
        }
        let dir = fresh_dir("writeback-sandbox");
        let volume = format!("{0}:{0}", dir.display());
        let sb = run(sandbox_command(v.platform, &["-v", &volume], &bin, &Spec::args([&dir])), Input::Bytes(Vec::new()));
        let _ = fs::remove_dir_all(&dir);
        sane(&sb)?;
        let same = if native.stdout == sb.stdout { Ok(()) } else { Err(format!("stdout differs from native:\n{}", diff(&native.stdout, &sb.stdout))) };
        all([expect_status(&sb, 0), same]).map_err(|e| format!("{e}\n{}", sb.describe()))
    });
}
