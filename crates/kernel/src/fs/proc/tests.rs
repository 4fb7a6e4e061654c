//! procfs through the Inode API, without a running kernel: the parts that do not
//! need one, and how the rest fails when the kernel is gone.

use super::*;
use crate::vfs::inode::OpenFlags;

fn fs() -> Arc<ProcFs> {
    ProcFs::new(Weak::new(), Arc::new(PidNamespace::new(16)), 0x30)
}

#[test]
fn root_entries() {
    let root = fs().root();
    assert_eq!(root.kind(), S_IFDIR);
    assert!(!root.cache_lookups(), "procfs lookups must not be cached");
    assert_eq!(root.lookup(b"self").unwrap().kind(), S_IFLNK);
    assert_eq!(root.lookup(b"thread-self").unwrap().kind(), S_IFLNK);
    assert_eq!(root.lookup(b"meminfo").unwrap().kind(), S_IFREG);
    assert_eq!(root.lookup(b"mounts").unwrap().readlink().unwrap(), b"self/mounts");
    let random = root.lookup(b"sys").unwrap().lookup(b"kernel").unwrap().lookup(b"random").unwrap();
    assert_eq!(random.kind(), S_IFDIR);
    assert!(random.lookup(b"boot_id").is_ok());
    assert!(root.lookup(b"nonexistent").is_err());
    // No kernel: no processes.
    assert!(root.lookup(b"1").is_err());
    assert!(root.lookup(b"01").is_err());
}

#[test]
fn self_without_a_task_is_enoent() {
    let root = fs().root();
    let e = root.lookup(b"self").unwrap().readlink().unwrap_err();
    assert_eq!(e.code, rvisor_abi::ErrnoCode::ENOENT);
}

#[test]
fn static_files_need_the_kernel() {
    let root = fs().root();
    let i = root.lookup(b"uptime").unwrap();
    let d = Dentry::new_root(i.clone(), Weak::new());
    let f = i.open(&d, OpenFlags(0)).unwrap();
    let mut buf = [0u8; 64];
    assert!(f.read_at(0, &mut buf).is_err());
    assert_eq!(i.stat().unwrap().st_mode & 0o777, 0o444);
}

#[test]
fn inode_numbers_are_stable_and_distinct() {
    let t = Target { tgid: 5, tid: 5, thread_view: false };
    let tt = Target { tgid: 5, tid: 5, thread_view: true };
    let a = ino_of(Node::Entry(t, PidEntry::Stat));
    assert_eq!(a, ino_of(Node::Entry(t, PidEntry::Stat)));
    assert_ne!(a, ino_of(Node::Entry(tt, PidEntry::Stat)));
    assert_ne!(a, ino_of(Node::Entry(t, PidEntry::Status)));
    assert_ne!(ino_of(Node::Fd(t, 3)), ino_of(Node::FdInfo(t, 3)));
    assert_ne!(ino_of(Node::Fd(t, 3)), ino_of(Node::Fd(t, 4)));
    assert_ne!(ino_of(Node::PidDir(t)), ino_of(Node::PidDir(Target { tgid: 6, tid: 6, thread_view: false })));
}

#[test]
fn numbers() {
    assert_eq!(parse_num(b"123"), Some(123));
    assert_eq!(parse_num(b"0"), Some(0));
    assert_eq!(parse_num(b"012"), None);
    assert_eq!(parse_num(b""), None);
    assert_eq!(parse_num(b"12a"), None);
    assert_eq!(parse_num(b"99999999999"), None);
}

#[test]
fn map_file_names() {
    assert_eq!(pid::map_file_name(0x7f00_1000, 0x7f00_3000), b"7f001000-7f003000");
    assert_eq!(pid::parse_map_file_name(b"7f001000-7f003000"), Some((0x7f00_1000, 0x7f00_3000)));
    // Linux's dname_to_vma_addr: either case, no leading zeros but a lone 0.
    assert_eq!(pid::parse_map_file_name(b"7F001000-7f003000"), Some((0x7f00_1000, 0x7f00_3000)));
    assert_eq!(pid::parse_map_file_name(b"0-1000"), Some((0, 0x1000)));
    for bad in [&b"07f001000-7f003000"[..], b"7f001000-07f003000", b"7f001000_7f003000", b"7f001000-", b"-1000", b"+1000-2000", b"1000-2000-3000", b"10000000000000000-1"] {
        assert_eq!(pid::parse_map_file_name(bad), None, "{}", String::from_utf8_lossy(bad));
    }
    let t = Target { tgid: 5, tid: 5, thread_view: false };
    assert_ne!(ino_of(Node::MapFile(t, 0x1000, 0x2000)), ino_of(Node::MapFile(t, 0x2000, 0x3000)));
    assert!(PidEntry::all(false).any(|(n, _)| n == "map_files"));
    assert!(!PidEntry::all(true).any(|(n, _)| n == "map_files"), "map_files is per process, not per thread");
}
