//! An fs context (fsopen, fspick): a file system being made, or a mounted
//! one being reconfigured, parameter by parameter (fsconfig), behind a
//! descriptor; read(2) on it returns the messages Linux logs for it, one per
//! call. The syscalls are in `syscalls/mount_api.rs`.

use crate::mm::UserBuffers;
use crate::task::Task;
use crate::vfs::inode::Inode;
use crate::vfs::inode::OpenFlags;
use crate::vfs::{FileDescription, Mount, StatusFlags};
use rvisor_abi::{error, SysResult};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// How many messages a context keeps: Linux's ring of 8 drops the oldest.
const LOG_SIZE: usize = 8;

/// One file system option: `key=value`, or a flag (`key`, without a value).
pub struct FsOption {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

impl FsOption {
    /// One of mount(2)'s comma-separated options.
    pub fn parse(opt: &[u8]) -> FsOption {
        match opt.iter().position(|&b| b == b'=') {
            Some(i) => FsOption { key: opt[..i].to_vec(), value: Some(opt[i + 1..].to_vec()) },
            None => FsOption { key: opt.to_vec(), value: None },
        }
    }
}

/// The parameters given so far.
#[derive(Default)]
pub struct Params {
    /// The file system's own options, each checked as it came.
    pub options: Vec<FsOption>,
    pub source: Option<Vec<u8>>,
    /// "ro" or "rw", if either was given.
    pub read_only: Option<bool>,
}

/// Where a context is (Linux's fs_context_phase, with the transient ones left out).
pub enum Phase {
    /// fsopen's: parameters for a new file system.
    Create(Params),
    /// FSCONFIG_CMD_CREATE made it: fsmount mounts it.
    AwaitingMount { root: Arc<dyn Inode>, params: Params },
    /// fspick's, or a created one's once fsmount mounted it: parameters for a
    /// reconfigure of `mount`.
    Reconfigure { mount: Arc<Mount>, params: Params },
    /// A create that failed: nothing more can be done with it.
    Failed,
}

pub struct FsContext {
    /// The file system type's name: messages about its options start with it.
    pub fstype: Cow<'static, str>,
    phase: Mutex<Phase>,
    /// Messages not yet read, oldest first.
    log: Mutex<VecDeque<Vec<u8>>>,
    flags: StatusFlags,
}

impl FsContext {
    pub fn new(fstype: impl Into<Cow<'static, str>>, phase: Phase) -> FsContext {
        FsContext { fstype: fstype.into(), phase: Mutex::new(phase), log: Mutex::default(), flags: StatusFlags::new(OpenFlags::RDWR) }
    }

    /// The context behind `file`, if it is one.
    pub fn of(file: &Arc<dyn FileDescription>) -> Option<&FsContext> {
        file.as_any().and_then(|a| a.downcast_ref::<FsContext>())
    }

    /// Held for the whole of an fsconfig or fsmount (Linux's uapi_mutex).
    pub fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs an error message (Linux's errorf: "e " and a newline around it).
    pub fn error(&self, message: &str) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() == LOG_SIZE {
            log.pop_front();
        }
        log.push_back(format!("e {message}\n").into_bytes());
    }
}

impl FileDescription for FsContext {
    /// The oldest message, whole: ENODATA with none, EMSGSIZE (keeping it)
    /// for a buffer too small.
    fn read(&self, t: &Task, bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let Some(message) = log.front() else { return error!(ENODATA) };
        if message.len() as u64 > bufs.total() {
            return error!(EMSGSIZE);
        }
        let n = super::simple::copy_out(t, bufs, message)?;
        log.pop_front();
        Ok(n)
    }

    fn write(&self, _t: &Task, _bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        error!(EINVAL)
    }

    fn stat(&self) -> SysResult<rvisor_abi::structs::Stat> {
        Ok(super::eventfd::anon_inode_stat())
    }

    fn flags(&self) -> Option<&StatusFlags> {
        Some(&self.flags)
    }

    fn proc_name(&self) -> Option<Vec<u8>> {
        Some(b"anon_inode:[fscontext]".to_vec())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_last_eight_messages() {
        let ctx = FsContext::new("tmpfs", Phase::Failed);
        for i in 0..10 {
            ctx.error(&format!("tmpfs: message {i}"));
        }
        let log = ctx.log.lock().unwrap();
        assert_eq!(log.len(), LOG_SIZE);
        assert_eq!(log.front().map(Vec::as_slice), Some(b"e tmpfs: message 2\n".as_slice()));
        assert_eq!(log.back().map(Vec::as_slice), Some(b"e tmpfs: message 9\n".as_slice()));
    }

    #[test]
    fn options_split_at_the_first_equals_sign() {
        let o = FsOption::parse(b"mpol=bind=1");
        assert_eq!((o.key.as_slice(), o.value.as_deref()), (b"mpol".as_slice(), Some(b"bind=1".as_slice())));
        let flag = FsOption::parse(b"inode64");
        assert_eq!((flag.key.as_slice(), flag.value), (b"inode64".as_slice(), None));
    }
}
