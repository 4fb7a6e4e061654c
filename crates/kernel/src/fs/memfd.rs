//! memfd_create: anonymous tmpfs files, on a tmpfs of their own that is mounted
//! nowhere, so they have a name for /proc/self/fd ("/memfd:NAME (deleted)") but
//! no path anyone can open.

use super::tmpfs::Tmpfs;
use crate::vfs::inode::OpenFlags;
use crate::vfs::{Dentry, FileDescription};
use rvisor_abi::SysResult;
use rvisor_memory::MemoryFile;
use std::sync::{Arc, Weak};

pub struct MemfdFs {
    fs: Arc<Tmpfs>,
    root: Arc<Dentry>,
}

impl MemfdFs {
    pub fn new(mf: &Arc<MemoryFile>) -> MemfdFs {
        let fs = Tmpfs::new(mf.clone(), 0x102);
        let root = Dentry::new_root(fs.root(0o1777), Weak::new());
        MemfdFs { fs, root }
    }

    /// A new file of `size` bytes that no descriptor or walk reaches, for the System
    /// V shared memory segment of `key`: its name, which /proc/PID/maps shows as
    /// Linux's ("/SYSV0000abcd (deleted)"), and its pages.
    pub fn sysv_file(&self, mf: &Arc<MemoryFile>, size: u64, key: i32) -> SysResult<(Arc<Dentry>, Arc<dyn crate::mm::FilePages>)> {
        let inode = self.fs.unlinked_file(0o600, false);
        inode.setattr(&crate::vfs::inode::SetAttr { size: Some(size), ..Default::default() })?;
        let pages = inode.file_pages(mf)?.ok_or_else(|| rvisor_abi::errno!(ENOMEM))?;
        let dentry = Dentry::unlinked(&self.root, format!("SYSV{:08x} (deleted)", key as u32).into_bytes(), inode);
        Ok((dentry, pages))
    }

    /// A new memfd opened read-write; `sealing` allows F_ADD_SEALS on it.
    pub fn create(&self, name: &[u8], sealing: bool) -> SysResult<Arc<dyn FileDescription>> {
        let inode = self.fs.unlinked_file(0o777, sealing);
        let mut shown = b"memfd:".to_vec();
        shown.extend_from_slice(name);
        shown.extend_from_slice(b" (deleted)");
        let dentry = Dentry::unlinked(&self.root, shown, inode.clone());
        inode.open(&dentry, OpenFlags(OpenFlags::RDWR | OpenFlags::LARGEFILE))
    }
}
