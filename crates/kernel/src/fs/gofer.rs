//! The host's files, served read-only by the gofer: every inode is a gofer node;
//! opening a file gets its host descriptor over SCM_RIGHTS and the Sentry does the
//! I/O on it directly.

use crate::vfs::inode::{DirEntry, Inode, OpenFlags, S_IFDIR, S_IFMT};
use crate::vfs::{Dentry, DirFile, FileDescription, HostFile};
use rvisor_abi::structs::Stat;
use rvisor_abi::{error, Errno, ErrnoCode, SysResult};
use rvisor_gofer::{NodeId, WalkEnd, ROOT};
use rvisor_gofer::Client;
use std::sync::Arc;

pub struct GoferInode {
    client: Arc<Client>,
    node: NodeId,
    stat: Stat,
}

#[track_caller]
fn gofer_errno(e: ErrnoCode) -> Errno {
    Errno::new(e)
}

impl GoferInode {
    /// The root of the served tree.
    pub fn root(client: Arc<Client>) -> SysResult<Arc<dyn Inode>> {
        let node = ROOT;
        let stat = client.stat(node).map_err(gofer_errno)?;
        Ok(Arc::new(GoferInode { client, node, stat }))
    }
}

impl Drop for GoferInode {
    fn drop(&mut self) {
        if self.node != ROOT {
            let _ = self.client.close(&[self.node]);
        }
    }
}

impl Inode for GoferInode {
    fn stat(&self) -> SysResult<Stat> {
        Ok(self.stat)
    }

    fn kind(&self) -> u32 {
        self.stat.st_mode & S_IFMT
    }

    fn lookup(&self, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        let walked = self.client.walk(self.node, &[name]).map_err(gofer_errno)?;
        if let WalkEnd::Error { errno, .. } = walked.end {
            return Err(Errno::new(errno));
        }
        let info = walked.nodes.into_iter().next().ok_or_else(|| rvisor_abi::errno!(ENOENT))?;
        Ok(Arc::new(GoferInode { client: self.client.clone(), node: info.id, stat: info.stat }))
    }

    fn readlink(&self) -> SysResult<Vec<u8>> {
        self.client.readlink(self.node).map_err(gofer_errno)
    }

    fn open(&self, dentry: &Arc<Dentry>, flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        if self.kind() == S_IFDIR {
            return Ok(Arc::new(DirFile::new(dentry.clone(), flags.0)));
        }
        if flags.writable() || flags.0 & OpenFlags::TRUNC != 0 {
            return error!(EROFS);
        }
        // The host descriptor's own flags stay plain: status flags live in HostFile.
        let fd = self.client.open(self.node, (flags.0 & OpenFlags::ACCMODE) as i32).map_err(gofer_errno)?;
        Ok(Arc::new(HostFile::opened(fd, dentry.clone())))
    }

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        let all = self.client.readdir_all(self.node).map_err(gofer_errno)?;
        Ok(all.into_iter().map(|d| DirEntry { name: d.name, ino: d.ino, dtype: d.kind }).collect())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
