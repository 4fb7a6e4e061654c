//! memfd_create.

use super::args::UserCStr;
use super::pipe::install;
use crate::task::Task;
use crate::vfs::Fd;
use rvisor_abi::{errno, error, SysResult};

const MFD_CLOEXEC: u32 = 1;
const MFD_ALLOW_SEALING: u32 = 2;
const MFD_NOEXEC_SEAL: u32 = 8;
const MFD_EXEC: u32 = 0x10;
/// NAME_MAX less the "memfd:" prefix.
const MFD_NAME_MAX: usize = 249;

pub fn sys_memfd_create(t: &mut Task, name: UserCStr, flags: u32) -> SysResult<Fd> {
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC) != 0 {
        // MFD_HUGETLB (and its page-size bits) included: there are no huge pages here.
        return error!(EINVAL);
    }
    if flags & MFD_NOEXEC_SEAL != 0 && flags & MFD_EXEC != 0 {
        return error!(EINVAL);
    }
    let name = t.mm.read_cstr(name.0, MFD_NAME_MAX + 1).map_err(|e| if e == errno!(ENAMETOOLONG) { errno!(EINVAL) } else { e })?;
    let file = t.kernel.memfds.create(&name, flags & (MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL) != 0)?;
    // The creator's file: it may fchmod it, and reopen it through /proc.
    if let Some(d) = file.dentry() {
        if let Some(dir) = &d.parent {
            crate::vfs::perm::own_new(&t.thread.fs_creds(), dir, &*d.inode)?;
        }
    }
    install(t, file, flags & MFD_CLOEXEC != 0)
}
