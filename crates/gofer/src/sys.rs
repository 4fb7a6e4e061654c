//! The host calls the server makes that nix does not wrap the way it needs them,
//! and the confined open every other operation builds on. All of the crate's
//! `unsafe` for file operations is here.

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use rvisor_abi::structs::Stat;
use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once `openat2` answered `ENOSYS` (Linux before 5.6).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Kernel features the server may use, or not (to test its fallbacks).
#[derive(Clone, Copy, Debug)]
pub struct Features {
    /// `openat2` with `RESOLVE_*` (Linux 5.6).
    pub openat2: bool,
    /// `fchmodat2(AT_EMPTY_PATH)` (6.6), `utimensat(AT_EMPTY_PATH)` (5.8) and
    /// `linkat(AT_EMPTY_PATH)` (needs `CAP_DAC_READ_SEARCH`).
    pub empty_path: bool,
}

/// Takes ownership of a descriptor the kernel just returned.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was returned by a successful open call a moment ago and nothing
    // else in the process knows it, so this is its only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Opens `name`, one path component, in the directory `dir`.
///
/// The name never contains `/` (the caller checked), so this can only reach an
/// entry of `dir` itself. `O_NOFOLLOW` keeps a trailing symlink from being followed
/// (with `O_PATH` the symlink itself is opened); `openat2` with `RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS` says the same to the kernel again,
/// as defence in depth should a name check ever be wrong.
pub fn open_beneath(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: OFlag,
    mode: Mode,
    features: Features,
) -> nix::Result<OwnedFd> {
    let mut flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    // openat2 refuses O_PATH with any flag but O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC.
    if !flags.contains(OFlag::O_PATH) {
        flags |= OFlag::O_NOCTTY;
    }
    if features.openat2 && !NO_OPENAT2.load(Ordering::Relaxed) {
        let mut how = OpenHow::new().flags(flags).resolve(
            ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
        // openat2 refuses a mode without O_CREAT.
        if flags.contains(OFlag::O_CREAT) {
            how = how.mode(mode);
        }
        match openat2(dir.as_raw_fd(), name, how) {
            Ok(fd) => return Ok(owned(fd)),
            Err(Errno::ENOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
            Err(e) => return Err(e),
        }
    }
    openat(Some(dir.as_raw_fd()), name, flags, mode).map(owned)
}

/// Whether `open_beneath` uses `openat2` (for tests and diagnostics).
pub fn has_openat2() -> bool {
    !NO_OPENAT2.load(Ordering::Relaxed)
}

/// `fstat`, which works on `O_PATH` descriptors.
pub fn fstat(fd: BorrowedFd<'_>) -> nix::Result<libc::stat> {
    nix::sys::stat::fstat(fd.as_raw_fd())
}

/// `fstatat` of `name` in the directory `dir`, never following a symlink.
pub fn fstatat(dir: BorrowedFd<'_>, name: &CStr) -> nix::Result<libc::stat> {
    nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// The attribute record the protocol sends.
pub fn to_stat(s: &libc::stat) -> Stat {
    Stat::from_host(s)
}

/// `getdents64` into `buf`; 0 at the end of the directory.
pub fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> nix::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call and
    // the kernel writes at most that many; `fd` is a live descriptor.
    let n = unsafe { libc::syscall(libc::SYS_getdents64, fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
    Errno::result(n).map(|n| n as usize)
}

/// One `struct linux_dirent64` of a `getdents64` buffer.
pub struct RawDirent<'a> {
    pub ino: u64,
    /// The offset of the next entry (the continuation cookie).
    pub off: u64,
    pub kind: u8,
    pub name: &'a [u8],
}

/// Iterates over the entries `getdents64` wrote. Parsing is bounds-checked: a
/// malformed record ends the iteration instead of reading past the buffer.
pub fn dirents(buf: &[u8]) -> impl Iterator<Item = RawDirent<'_>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        // d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name[].
        if rest.len() < 19 {
            return None;
        }
        let reclen = u16::from_ne_bytes([rest[16], rest[17]]) as usize;
        if reclen < 19 || reclen > rest.len() {
            return None;
        }
        let rec = &rest[..reclen];
        rest = &rest[reclen..];
        let name = &rec[19..];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        Some(RawDirent {
            ino: u64::from_ne_bytes(rec[0..8].try_into().unwrap()),
            off: u64::from_ne_bytes(rec[8..16].try_into().unwrap()),
            kind: rec[18],
            name,
        })
    })
}

/// `fchmodat2(fd, "", mode, AT_EMPTY_PATH)`: chmod through an `O_PATH` descriptor
/// (Linux 6.6). Older kernels answer `ENOSYS` or `EINVAL`.
pub fn fchmod_path(fd: BorrowedFd<'_>, mode: u32) -> nix::Result<()> {
    // SAFETY: the path is a valid NUL-terminated string that outlives the call and
    // the kernel only reads it.
    let r = unsafe { libc::syscall(libc::SYS_fchmodat2, fd.as_raw_fd(), c"".as_ptr(), mode, libc::AT_EMPTY_PATH) };
    Errno::result(r).map(drop)
}

/// `utimensat(fd, "", times, AT_EMPTY_PATH)`: sets the times of the file `fd` refers
/// to, an `O_PATH` descriptor included (Linux 5.8; older kernels answer `EINVAL`).
pub fn utimens_path(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> nix::Result<()> {
    // SAFETY: the path is a valid NUL-terminated string and `times` points to two
    // timespecs; both outlive the call and the kernel only reads them.
    let r = unsafe { libc::utimensat(fd.as_raw_fd(), c"".as_ptr(), times.as_ptr(), libc::AT_EMPTY_PATH) };
    Errno::result(r).map(drop)
}

/// `utimensat(dir, name, times, AT_SYMLINK_NOFOLLOW)`.
pub fn utimens_at(dir: BorrowedFd<'_>, name: &CStr, times: &[libc::timespec; 2]) -> nix::Result<()> {
    // SAFETY: as in `utimens_path`.
    let r = unsafe { libc::utimensat(dir.as_raw_fd(), name.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    Errno::result(r).map(drop)
}

/// The kernel's `struct statfs` on 64-bit Linux (libc's hides `f_flags`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelStatfs {
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    pub f_flags: i64,
    pub f_spare: [i64; 4],
}

/// `fstatfs`, which works on `O_PATH` descriptors.
pub fn fstatfs(fd: BorrowedFd<'_>) -> nix::Result<KernelStatfs> {
    let mut st = KernelStatfs::default();
    // SAFETY: `st` is a `#[repr(C)]` struct with the layout of the kernel's
    // `struct statfs` on x86-64, valid for writes for the whole call; the kernel
    // writes exactly one such struct.
    let r = unsafe { libc::syscall(libc::SYS_fstatfs, fd.as_raw_fd(), &mut st as *mut KernelStatfs) };
    Errno::result(r)?;
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// The kernel check under the name checks: were a multi-component name ever to
    /// get through, `openat2` would still refuse to leave the directory or follow a
    /// symlink.
    #[test]
    fn openat2_refuses_to_leave_or_follow() {
        let base = std::env::temp_dir().join(format!("rvisor-gofer-sys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("a/sub")).unwrap();
        std::os::unix::fs::symlink("/", base.join("a/link")).unwrap();
        let dir = owned(
            nix::fcntl::open(&base.join("a"), OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
                .unwrap(),
        );
        let on = Features { openat2: true, empty_path: true };
        let off = Features { openat2: false, empty_path: false };
        let o = OFlag::O_PATH;
        // Single components work either way.
        open_beneath(dir.as_fd(), c"sub", o, Mode::empty(), on).unwrap();
        open_beneath(dir.as_fd(), c"sub", o, Mode::empty(), off).unwrap();
        // A trailing symlink is opened as itself.
        let l = open_beneath(dir.as_fd(), c"link", o, Mode::empty(), on).unwrap();
        assert_eq!(fstat(l.as_fd()).unwrap().st_mode & libc::S_IFMT, libc::S_IFLNK);
        if has_openat2() {
            assert_eq!(open_beneath(dir.as_fd(), c"..", o, Mode::empty(), on).unwrap_err(), Errno::EXDEV);
            assert_eq!(open_beneath(dir.as_fd(), c"sub/../..", o, Mode::empty(), on).unwrap_err(), Errno::EXDEV);
            assert_eq!(open_beneath(dir.as_fd(), c"/etc", o, Mode::empty(), on).unwrap_err(), Errno::EXDEV);
            assert_eq!(open_beneath(dir.as_fd(), c"link/etc", o, Mode::empty(), on).unwrap_err(), Errno::ELOOP);
            assert_eq!(
                open_beneath(dir.as_fd(), c"link", OFlag::O_RDONLY, Mode::empty(), on).unwrap_err(),
                Errno::ELOOP
            );
        }
        // Without openat2 only O_NOFOLLOW is left: the name checks are what stand
        // between the client and `..` (the server never passes such names).
        assert!(open_beneath(dir.as_fd(), c"..", o, Mode::empty(), off).is_ok());
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn dirent_parsing_is_bounded() {
        let mut buf = vec![0u8; 64];
        buf[0..8].copy_from_slice(&7u64.to_ne_bytes());
        buf[8..16].copy_from_slice(&99u64.to_ne_bytes());
        buf[16..18].copy_from_slice(&24u16.to_ne_bytes());
        buf[18] = libc::DT_REG;
        buf[19..22].copy_from_slice(b"abc");
        // A second record claiming more bytes than there are.
        buf[24 + 16..24 + 18].copy_from_slice(&200u16.to_ne_bytes());
        let v: Vec<_> = dirents(&buf).collect();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].name, b"abc");
        assert_eq!((v[0].ino, v[0].off, v[0].kind), (7, 99, libc::DT_REG));
        assert_eq!(dirents(&buf[..10]).count(), 0);
    }
}

/// `fgetxattr` of `name` into `buf`: the value's length.
pub fn fgetxattr(fd: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> nix::Result<usize> {
    // SAFETY: `name` is NUL-terminated and `buf` valid for writes of `buf.len()`
    // bytes for the whole call; the kernel writes at most that many.
    let n = unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    Errno::result(n).map(|n| n as usize)
}

/// `fsetxattr` of `name` to `value` with `XATTR_CREATE`/`XATTR_REPLACE` `flags`.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8], flags: i32) -> nix::Result<()> {
    // SAFETY: `name` is NUL-terminated and `value` valid for reads of its length.
    let r = unsafe { libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), flags) };
    Errno::result(r).map(drop)
}

/// `flistxattr` into `buf`: the names, each NUL-terminated; their length.
pub fn flistxattr(fd: BorrowedFd<'_>, buf: &mut [u8]) -> nix::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
    let n = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    Errno::result(n).map(|n| n as usize)
}

/// `fremovexattr` of `name`.
pub fn fremovexattr(fd: BorrowedFd<'_>, name: &CStr) -> nix::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    let r = unsafe { libc::fremovexattr(fd.as_raw_fd(), name.as_ptr()) };
    Errno::result(r).map(drop)
}
