//! The root overlay: the sandbox sees its own writes, deletes, renames and chmods
//! of host files; the host's files stay byte-identical.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn writes_to_host_files_stay_in_the_sandbox() {
    matrix("writes_to_host_files_stay_in_the_sandbox", &[Link::Static], |v| {
        let dir = scratch_path("overlay");
        fs::create_dir_all(dir.join("sub")).map_err(|e| e.to_string())?;
        for (name, body) in [("keep.txt", "original\n"), ("del.txt", "gone\n"), ("mv.txt", "moving\n"), ("sub/f", "inner\n")] {
            fs::write(dir.join(name), body).map_err(|e| e.to_string())?;
        }
        let snapshot = |d: &std::path::Path| -> Vec<(String, Vec<u8>, u32)> {
            let mut v = Vec::new();
            for name in ["keep.txt", "del.txt", "mv.txt", "sub/f"] {
                let p = d.join(name);
                v.push((name.to_string(), fs::read(&p).unwrap_or_default(), fs::metadata(&p).map(|m| m.permissions().mode()).unwrap_or(0)));
            }
            v
        };
        let before = snapshot(&dir);
        let script = format!(
            "cd {} && echo rewritten > keep.txt && chmod 600 keep.txt && rm del.txt && mv mv.txt moved.txt \
             && echo new > sub/g && rm -r sub && mkdir sub && echo again > del.txt \
             && cat keep.txt del.txt moved.txt && stat -c '%a' keep.txt && ls",
            dir.display()
        );
        let mut cmd = Command::new(rvisor());
        cmd.arg("do").args(platform_args(v.platform)).args(["--", "/bin/sh", "-c", &script]);
        let o = run(cmd, Input::Bytes(Vec::new()));
        let after = snapshot(&dir);
        let host_names: Vec<String> = fs::read_dir(&dir).map_err(|e| e.to_string())?.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        let _ = fs::remove_dir_all(&dir);
        all([
            expect_status(&o, 0),
            expect_stdout(&o, "rewritten\nagain\nmoving\n600\ndel.txt\nkeep.txt\nmoved.txt\nsub\n"),
            if before == after { Ok(()) } else { Err(format!("host files changed: {before:?} -> {after:?}")) },
            if !host_names.iter().any(|n| n == "moved.txt") { Ok(()) } else { Err("a rename reached the host".into()) },
        ])
    });
}

/// A host file replaced (renamed over) after the sandbox looked its name up, with
/// or without listing its directory first: opening the name finds the new file, not
/// ESTALE from the stale cached node or listing.
#[test]
fn host_file_replaced_behind_a_cached_name() {
    matrix("host_file_replaced_behind_a_cached_name", &[Link::Static], |v| {
        replaced_behind_a_cached_name(&v, "stat")?;
        replaced_behind_a_cached_name(&v, "list")
    });
}

fn replaced_behind_a_cached_name(v: &Variant, mode: &str) -> Result<(), String> {
    {
        let bin = compile("reopen", v.link);
        let path = scratch_path("replaced");
        std::fs::write(&path, "old\n").map_err(|e| e.to_string())?;
        let mut p = Interactive::spawn(sandbox_command(v.platform, &[], &bin, &Spec::args([path.as_os_str(), mode.as_ref()])));
        p.expect_line("first: found")?;
        p.expect_line("ready")?;
        let fresh = path.with_extension("new");
        std::fs::write(&fresh, "new\n").map_err(|e| e.to_string())?;
        std::fs::rename(&fresh, &path).map_err(|e| e.to_string())?;
        p.send_line()?;
        let r = p.expect_line("second: new");
        let _ = std::fs::remove_file(&path);
        r.map_err(|e| format!("{mode}: {e}"))?;
        expect_status(&p.finish(), 0)
    }
}

/// A file made in the sandbox (in the upper layer) is on the overlay's one device,
/// with an inode number of its own that readdir reports too.
#[test]
fn new_files_are_on_the_overlay_device() {
    matrix("new_files_are_on_the_overlay_device", &[Link::Static], |v| {
        let script = "touch /etc/rvisor-new && mkdir /usr/rvisor-dir && \
            [ \"$(stat -c %d /etc/rvisor-new)\" = \"$(stat -c %d /)\" ] && echo same device; \
            [ \"$(stat -c %i /etc/rvisor-new)\" = \"$(ls -i /etc | awk '$2 == \"rvisor-new\" {print $1}')\" ] && echo same inode in readdir; \
            [ \"$(stat -c %i /etc/rvisor-new)\" != \"$(stat -c %i /etc/passwd)\" ] && echo own inode; \
            find /etc /usr -xdev -name 'rvisor-*' | sort";
        let mut cmd = Command::new(rvisor());
        cmd.arg("do").args(platform_args(v.platform)).args(["--", "/bin/sh", "-c", script]);
        let o = run(cmd, Input::Bytes(Vec::new()));
        all([expect_status(&o, 0), expect_stdout(&o, "same device\nsame inode in readdir\nown inode\n/etc/rvisor-new\n/usr/rvisor-dir\n")])
    });
}

/// A name the sandbox found absent on the host is remembered only for a moment: a
/// file the host makes there afterwards shows up.
#[test]
fn host_file_made_after_a_failed_lookup() {
    matrix("host_file_made_after_a_failed_lookup", &[Link::Static], |v| {
        let path = scratch_path("made-later");
        let _ = std::fs::remove_file(&path);
        let script = format!(
            "cat {p} 2>/dev/null || echo absent; cat {p} 2>/dev/null || echo still absent; echo ready; read x; \
             i=0; while ! cat {p} 2>/dev/null && [ $i -lt 1000 ]; do i=$((i+1)); sleep 0.01; done",
            p = path.display()
        );
        let mut p = Interactive::spawn(sandbox_command(v.platform, &[], std::path::Path::new("/bin/sh"), &Spec::args(["-c", script.as_str()])));
        let r = p.expect_line("absent").and_then(|()| p.expect_line("still absent")).and_then(|()| p.expect_line("ready"));
        std::fs::write(&path, "made\n").map_err(|e| e.to_string())?;
        let r = r.and_then(|()| p.send_line()).and_then(|()| p.expect_line("made"));
        let o = p.finish();
        let _ = std::fs::remove_file(&path);
        all([r, expect_status(&o, 0)])
    });
}

/// An extended attribute set on a host file copies it up: the sandbox reads the
/// attribute back, the host file never has it.
#[test]
fn xattrs_on_host_files_stay_in_the_sandbox() {
    matrix("xattrs_on_host_files_stay_in_the_sandbox", &[Link::Static], |v| {
        let dir = scratch_path("xattr");
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let file = dir.join("f");
        fs::write(&file, "host\n").map_err(|e| e.to_string())?;
        let bin = compile("xattr", v.link);
        let script = format!("{0} set {1} && {0} get {1} && cat {1}", bin.display(), file.display());
        let mut cmd = Command::new(rvisor());
        cmd.arg("do").args(platform_args(v.platform)).args(["--", "/bin/sh", "-c", &script]);
        let o = run(cmd, Input::Bytes(Vec::new()));
        let host = run_native(&bin, &Spec::args(["get", &file.display().to_string()]));
        let _ = fs::remove_dir_all(&dir);
        all([
            expect_status(&o, 0),
            expect_stdout(&o, "set user.where: 0\nuser.where: sandbox\nhost\n"),
            expect_stdout(&host, "user.where: none\n"),
        ])
    });
}

/// A host file's user extended attributes, seen through the root: read as the
/// host has them, copied up with the file when the sandbox changes one, removed
/// from the copy only; the host file keeps its own.
#[test]
fn host_files_extended_attributes_through_the_root() {
    matrix("host_files_extended_attributes_through_the_root", &[Link::Static], |v| {
        let bin = compile("root_xattr", v.link);
        let path = scratch_path("root-xattr");
        fs::write(&path, "data").map_err(|e| e.to_string())?;
        let c = |s: &[u8]| std::ffi::CString::new(s).expect("no NUL");
        let (cpath, name) = (c(path.as_os_str().as_encoded_bytes()), c(b"user.kept"));
        // SAFETY: both strings are NUL-terminated and the value is valid for reads of 4 bytes.
        let r = unsafe { libc::setxattr(cpath.as_ptr(), name.as_ptr(), b"host".as_ptr().cast(), 4, 0) };
        if r != 0 {
            return Err(format!("setxattr on the host: {}", std::io::Error::last_os_error()));
        }
        let o = run(sandbox_command(v.platform, &[], &bin, &Spec::args([path.as_os_str()])), Input::Bytes(Vec::new()));
        let mut names = vec![0u8; 256];
        // SAFETY: `cpath` is NUL-terminated and `names` valid for writes of its length.
        let n = unsafe { libc::listxattr(cpath.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
        let _ = fs::remove_file(&path);
        all([
            expect_status(&o, 0),
            expect_stdout(
                &o,
                "size of user.kept: 4\nbefore user.kept: \"host\"\nnames before: user.kept\n\
                 remove user.none: No data available\nset user.new: ok\n\
                 after the copy-up user.kept: \"host\"\nnames after the copy-up: user.kept user.new\n\
                 remove user.kept: ok\nafter removing user.kept: No data available\nnames at the end: user.new\n",
            ),
            if n >= 0 && &names[..n as usize] == b"user.kept\0" { Ok(()) } else { Err(format!("the host file's attributes changed: {:?}", &names[..n.max(0) as usize])) },
        ])
        .map_err(|e| format!("{e}\n{}", o.describe()))
    });
}
