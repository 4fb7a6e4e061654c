//! A minimal sysfs, mounted at /sys: the CPU topology files programs read to count
//! processors (glibc's get_nprocs reads `online`; get_nprocs_conf counts the
//! `cpuN` directories), the empty directories of block devices, of which the
//! sandbox has none, and fs/cgroup, where cgroup2 is mounted.

use super::simple::{GenFile, InoAlloc, StaticDir};
use crate::vfs::inode::Inode;
use std::sync::Arc;

/// "0-N" for `cpus` processors ("0" for one).
pub fn cpu_range(cpus: usize) -> String {
    match cpus {
        0 | 1 => "0\n".to_string(),
        n => format!("0-{}\n", n - 1),
    }
}

/// Builds a sysfs showing `cpus` processors and returns its root directory.
pub fn new_sysfs(dev: u64, cpus: usize) -> Arc<dyn Inode> {
    let ino = InoAlloc::new(dev);
    let dir = |entries: Vec<(&str, Arc<dyn Inode>)>| -> Arc<dyn Inode> { StaticDir::new(ino.attrs(0o755), entries) };
    let text = |s: String| -> Arc<dyn Inode> { GenFile::text(ino.attrs(0o444), s) };
    let names: Vec<String> = (0..cpus.max(1)).map(|i| format!("cpu{i}")).collect();
    let mut cpu: Vec<(&str, Arc<dyn Inode>)> = vec![
        ("online", text(cpu_range(cpus))),
        ("possible", text(cpu_range(cpus))),
        ("present", text(cpu_range(cpus))),
        ("offline", text("\n".to_string())),
        ("kernel_max", text("8191\n".to_string())),
    ];
    for n in &names {
        cpu.push((n.as_str(), dir(vec![])));
    }
    let system = dir(vec![("cpu", dir(cpu))]);
    let devices = dir(vec![("system", system)]);
    // The sandbox has no block devices: their directories are there, and empty
    // (lsblk lists /sys/dev/block and fails without it).
    let dev_dir = dir(vec![("block", dir(vec![])), ("char", dir(vec![]))]);
    dir(vec![
        ("block", dir(vec![])),
        ("bus", dir(vec![])),
        ("class", dir(vec![("block", dir(vec![]))])),
        ("dev", dev_dir),
        ("devices", devices),
        ("fs", dir(vec![("cgroup", dir(vec![]))])),
        ("kernel", dir(vec![])),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::inode::OpenFlags;
    use crate::vfs::Dentry;

    fn read(root: &Arc<dyn Inode>, path: &str) -> String {
        let mut i = root.clone();
        for c in path.split('/') {
            i = i.lookup(c.as_bytes()).unwrap();
        }
        let d = Dentry::new_root(i.clone(), std::sync::Weak::new());
        let f = i.open(&d, OpenFlags(0)).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = f.read_at(0, &mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn cpu_files() {
        let root = new_sysfs(9, 4);
        assert_eq!(read(&root, "devices/system/cpu/online"), "0-3\n");
        assert_eq!(read(&root, "devices/system/cpu/possible"), "0-3\n");
        let one = new_sysfs(9, 1);
        assert_eq!(read(&one, "devices/system/cpu/online"), "0\n");
        let cpu = root.lookup(b"devices").unwrap().lookup(b"system").unwrap().lookup(b"cpu").unwrap();
        let n = cpu.readdir().unwrap().iter().filter(|e| e.name.starts_with(b"cpu")).count();
        assert_eq!(n, 4);
        assert_eq!(cpu.lookup(b"online").unwrap().stat().unwrap().st_mode & 0o777, 0o444);
    }

    /// cgroup2 is mounted on fs/cgroup: an empty directory.
    #[test]
    fn cgroup_mount_point() {
        let cgroup = new_sysfs(9, 2).lookup(b"fs").unwrap().lookup(b"cgroup").unwrap();
        assert_eq!(cgroup.kind(), crate::vfs::inode::S_IFDIR);
        assert!(cgroup.readdir().unwrap().is_empty());
    }

    /// lsblk lists /sys/dev/block (and /sys/block): present and empty.
    #[test]
    fn no_block_devices() {
        let root = new_sysfs(9, 2);
        for path in [&[&b"dev"[..], b"block"][..], &[b"block"], &[b"class", b"block"]] {
            let mut i = root.clone();
            for c in path {
                i = i.lookup(c).unwrap();
            }
            assert_eq!(i.kind(), crate::vfs::inode::S_IFDIR);
            assert!(i.readdir().unwrap().is_empty());
        }
    }
}
