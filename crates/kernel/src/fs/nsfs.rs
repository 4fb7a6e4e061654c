//! nsfs: a namespace as a file. /proc/PID/ns/* are links to one (`mnt:[id]`),
//! whose inode number tells namespaces apart; setns(2) takes one open.

use crate::fs::simple::Attrs;
use crate::mm::UserBuffers;
use crate::net::NetNamespace;
use crate::task::namespaces::{IpcNamespace, UtsNamespace};
use crate::time::namespace::TimeNamespace;
use crate::task::{PidNamespace, Resources, Task, ThreadGroup, UserNamespace};
use crate::vfs::inode::{Inode, S_IFMT, S_IFREG};
use crate::vfs::{Dentry, FileDescription, MountNamespace, OpenFlags};
use rvisor_abi::structs::Stat;
use rvisor_abi::{error, SysResult};
use std::sync::Arc;

/// nsfs's device (Linux's is an anonymous one too).
const DEV_NSFS: u64 = 0x4;

/// The kinds of namespace, as /proc/PID/ns names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NsKind {
    Cgroup,
    Ipc,
    Mnt,
    Net,
    Pid,
    PidForChildren,
    Time,
    TimeForChildren,
    User,
    Uts,
}

impl NsKind {
    pub const ALL: [NsKind; 10] = [
        NsKind::Cgroup,
        NsKind::Ipc,
        NsKind::Mnt,
        NsKind::Net,
        NsKind::Pid,
        NsKind::PidForChildren,
        NsKind::Time,
        NsKind::TimeForChildren,
        NsKind::User,
        NsKind::Uts,
    ];

    /// Its file's name in /proc/PID/ns.
    pub fn file_name(self) -> &'static str {
        match self {
            NsKind::Cgroup => "cgroup",
            NsKind::Ipc => "ipc",
            NsKind::Mnt => "mnt",
            NsKind::Net => "net",
            NsKind::Pid => "pid",
            NsKind::PidForChildren => "pid_for_children",
            NsKind::Time => "time",
            NsKind::TimeForChildren => "time_for_children",
            NsKind::User => "user",
            NsKind::Uts => "uts",
        }
    }

    /// The type its link names (`pid_for_children` links to a `pid:[…]`).
    fn type_name(self) -> &'static str {
        match self {
            NsKind::PidForChildren => "pid",
            NsKind::TimeForChildren => "time",
            k => k.file_name(),
        }
    }

    /// Its CLONE_NEW* flag, as setns's nstype names it.
    pub fn clone_flag(self) -> u64 {
        match self {
            NsKind::Cgroup => 0x0200_0000,
            NsKind::Ipc => 0x0800_0000,
            NsKind::Mnt => 0x0002_0000,
            NsKind::Net => 0x4000_0000,
            NsKind::Pid | NsKind::PidForChildren => 0x2000_0000,
            NsKind::Time | NsKind::TimeForChildren => 0x80,
            NsKind::User => 0x1000_0000,
            NsKind::Uts => 0x0400_0000,
        }
    }
}

/// A namespace a file stands for.
#[derive(Clone)]
pub enum Namespace {
    Mnt(Arc<MountNamespace>),
    Uts(Arc<UtsNamespace>),
    Ipc(Arc<IpcNamespace>),
    Pid(Arc<PidNamespace>),
    Net(Arc<NetNamespace>),
    User(Arc<UserNamespace>),
    Time(Arc<TimeNamespace>),
    /// The cgroup namespace, which the sandbox has only one of, with Linux's
    /// number for the initial one.
    Sole(NsKind),
}

impl Namespace {
    /// The namespace of `kind` a process is in, from its resources.
    pub fn of(tg: &ThreadGroup, res: &Resources, kind: NsKind) -> Namespace {
        match kind {
            NsKind::Mnt => Namespace::Mnt(res.fs.mounts()),
            NsKind::Uts => Namespace::Uts(res.ns.uts.clone()),
            NsKind::Ipc => Namespace::Ipc(res.ns.ipc.clone()),
            NsKind::Net => Namespace::Net(res.ns.net.clone()),
            NsKind::Pid => Namespace::Pid(tg.pid_ns.clone()),
            NsKind::PidForChildren => Namespace::Pid(res.ns.pid_children.clone().unwrap_or_else(|| tg.pid_ns.clone())),
            NsKind::User => Namespace::User(tg.user_ns()),
            NsKind::Time => Namespace::Time(res.ns.time.clone()),
            NsKind::TimeForChildren => Namespace::Time(res.ns.time_for_children.clone()),
            k => Namespace::Sole(k),
        }
    }

    pub fn id(&self) -> u64 {
        match self {
            Namespace::Mnt(n) => n.id,
            Namespace::Uts(n) => n.id,
            Namespace::Ipc(n) => n.id,
            Namespace::Pid(n) => n.id,
            Namespace::Net(n) => n.id,
            Namespace::User(n) => n.id,
            Namespace::Time(n) => n.id,
            Namespace::Sole(_) => 0xEFFF_FFFB,
        }
    }
}

/// A namespace's inode: what a walk through /proc/PID/ns/* reaches.
pub struct NsInode {
    kind: NsKind,
    ns: Namespace,
}

impl NsInode {
    /// The dentry a /proc/PID/ns link leads to.
    pub fn dentry(kind: NsKind, ns: Namespace) -> Arc<Dentry> {
        Dentry::new_root(Arc::new(NsInode { kind, ns }), std::sync::Weak::new())
    }

    /// The link's text: `mnt:[4026531841]`.
    pub fn link(kind: NsKind, ns: &Namespace) -> Vec<u8> {
        format!("{}:[{}]", kind.type_name(), ns.id()).into_bytes()
    }

    fn attrs(&self) -> Attrs {
        Attrs { dev: DEV_NSFS, ino: self.ns.id(), mode: S_IFREG | 0o444, uid: 0, gid: 0, rdev: 0, time: (0, 0) }
    }
}

impl Inode for NsInode {
    fn stat(&self) -> SysResult<Stat> {
        Ok(self.attrs().stat(0))
    }

    fn kind(&self) -> u32 {
        self.attrs().mode & S_IFMT
    }

    fn open(&self, _dentry: &Arc<Dentry>, _flags: OpenFlags) -> SysResult<Arc<dyn FileDescription>> {
        Ok(Arc::new(NsFile { kind: self.kind, ns: self.ns.clone(), stat: self.attrs().stat(0) }))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An open namespace file: setns's argument; nothing to read or write.
pub struct NsFile {
    pub kind: NsKind,
    pub ns: Namespace,
    stat: Stat,
}

impl NsFile {
    /// The namespace file behind `file`, if it is one.
    pub fn of(file: &Arc<dyn FileDescription>) -> Option<&NsFile> {
        file.as_any().and_then(|a| a.downcast_ref::<NsFile>())
    }
}

impl FileDescription for NsFile {
    fn read(&self, _t: &Task, _bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        error!(EINVAL)
    }

    fn write(&self, _t: &Task, _bufs: &UserBuffers, _offset: Option<i64>) -> SysResult<usize> {
        error!(EINVAL)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(self.stat)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
