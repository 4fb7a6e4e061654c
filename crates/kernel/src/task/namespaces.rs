//! The UTS, IPC and network namespaces a task is in: with its mount namespace
//! (in its `FsContext`) and PID namespace (its container's), Linux's nsproxy. A
//! sandbox's containers share its first ones; unshare and clone with
//! CLONE_NEWUTS, CLONE_NEWIPC or CLONE_NEWNET give a task new ones, and setns
//! joins another's. Each is owned by a user namespace (`user_ns.rs`), whose
//! capabilities rule it.

use crate::fs::nsfs::{Namespace, NsFile, NsKind};
use crate::fs::pidfd::PidFd;
use super::clone::{CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWTIME, CLONE_NEWUTS};
use crate::time::namespace::TimeNamespace;
use crate::ipc::{mqueue::MqNamespace, msg::MsgQueues, sem::SemSets, shm::Segments};
use crate::net::NetNamespace;
use super::user_ns::{capable_in, UserNamespace};
use rvisor_abi::{consts, errno, error, SysResult};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The inode number of a new namespace, as /proc/PID/ns shows it (Linux's
/// proc_alloc_inum numbers, from 0xF0000000 up).
pub fn new_ns_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0xF000_0000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The names uname reports and sethostname and setdomainname change: any bytes, up
/// to 64 of them.
#[derive(Clone)]
pub struct UtsNames {
    pub hostname: Vec<u8>,
    pub domainname: Vec<u8>,
}

pub struct UtsNamespace {
    pub id: u64,
    /// The user namespace whose CAP_SYS_ADMIN may change the names.
    pub owner: Arc<UserNamespace>,
    /// Leaf lock.
    names: Mutex<UtsNames>,
}

impl UtsNamespace {
    pub fn new(names: UtsNames, owner: Arc<UserNamespace>) -> Arc<UtsNamespace> {
        Arc::new(UtsNamespace { id: new_ns_id(), owner, names: Mutex::new(names) })
    }

    pub fn names(&self) -> MutexGuard<'_, UtsNames> {
        self.names.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// System V shared memory, semaphores and message queues, and POSIX message
/// queues, by key or name. A namespace's objects go with it.
pub struct IpcNamespace {
    pub id: u64,
    /// The user namespace whose capabilities override its objects' permissions.
    pub owner: Arc<UserNamespace>,
    pub shm: Segments,
    pub sem: SemSets,
    pub msg: MsgQueues,
    pub mqueues: MqNamespace,
}

impl IpcNamespace {
    pub fn new(owner: Arc<UserNamespace>) -> Arc<IpcNamespace> {
        Arc::new(IpcNamespace { id: new_ns_id(), shm: Segments::new(owner.clone()), sem: SemSets::new(owner.clone()), msg: MsgQueues::new(owner.clone()), mqueues: Default::default(), owner })
    }
}

#[derive(Clone)]
pub struct Namespaces {
    pub uts: Arc<UtsNamespace>,
    pub ipc: Arc<IpcNamespace>,
    pub net: Arc<NetNamespace>,
    /// The PID namespace its children will be in, when not its own (after
    /// unshare(CLONE_NEWPID) or setns to a nested one).
    pub pid_children: Option<Arc<super::PidNamespace>>,
    /// The time namespace whose clocks it reads, and the one its children will be
    /// in (the same but after unshare(CLONE_NEWTIME)); exec moves it there too.
    pub time: Arc<TimeNamespace>,
    pub time_for_children: Arc<TimeNamespace>,
}

impl Namespaces {
    /// These, with new ones where `flags` ask (CLONE_NEWUTS: a copy of the
    /// names; CLONE_NEWIPC: no objects; CLONE_NEWNET: loopback alone;
    /// CLONE_NEWTIME: the same offsets, for children), owned by user namespace
    /// `owner`.
    pub fn unshared(&self, flags: u64, owner: &Arc<UserNamespace>) -> Namespaces {
        Namespaces {
            uts: if flags & CLONE_NEWUTS != 0 { UtsNamespace::new(self.uts.names().clone(), owner.clone()) } else { self.uts.clone() },
            ipc: if flags & CLONE_NEWIPC != 0 { IpcNamespace::new(owner.clone()) } else { self.ipc.clone() },
            net: if flags & CLONE_NEWNET != 0 { NetNamespace::new(owner.clone()) } else { self.net.clone() },
            pid_children: self.pid_children.clone(),
            time: self.time.clone(),
            time_for_children: if flags & CLONE_NEWTIME != 0 { self.time_for_children.child(owner.clone()) } else { self.time_for_children.clone() },
        }
    }
}

impl super::Task {
    /// setns: joins the namespace `file` stands for (a /proc/PID/ns file), which
    /// must be of the kind `nstype` names (0: any), or the namespaces `nstype`
    /// names of the process a pidfd `file` stands for. Joining a mount
    /// namespace starts at its root, in an fs context of this thread's own
    /// (Linux refuses a shared one instead). Joining takes CAP_SYS_ADMIN both
    /// here and over the namespace (in its owner); joining a user namespace
    /// gives every capability there.
    pub fn setns(&mut self, file: &Arc<dyn crate::vfs::FileDescription>, nstype: u64) -> SysResult<()> {
        let joins: Vec<Namespace> = if let Some(f) = NsFile::of(file) {
            if nstype != 0 && nstype != f.kind.clone_flag() {
                return error!(EINVAL);
            }
            vec![f.ns.clone()]
        } else if let Some(pidfd) = PidFd::of(file) {
            let kinds: Vec<NsKind> = NsKind::ALL.into_iter().filter(|k| !matches!(k, NsKind::PidForChildren | NsKind::TimeForChildren)).collect();
            let all = kinds.iter().fold(0, |all, k| all | k.clone_flag());
            if nstype == 0 || nstype & !all != 0 {
                return error!(EINVAL);
            }
            let res = pidfd.tg.threads().first().and_then(|th| th.resources()).ok_or_else(|| errno!(ESRCH))?;
            let wanted = kinds.into_iter().filter(|k| nstype & k.clone_flag() != 0);
            wanted.map(|k| Namespace::of(&pidfd.tg, &res, k)).collect()
        } else {
            return error!(EINVAL);
        };
        // Every one is checked before any is joined, a user namespace first: the
        // others are checked with the capabilities it gives.
        let (mut user_ns, euid) = (self.tg.user_ns(), self.tg.creds().euid);
        let mut caps = self.tg.caps.lock().unwrap_or_else(|e| e.into_inner()).effective;
        let mut new_user_ns = None;
        if let Some(target) = joins.iter().find_map(|ns| if let Namespace::User(u) = ns { Some(u.clone()) } else { None }) {
            // Re-entering one's own would give capabilities back; new
            // credentials are the whole process's.
            if Arc::ptr_eq(&target, &user_ns) || self.tg.threads().len() > 1 {
                return error!(EINVAL);
            }
            if !capable_in(&user_ns, euid, caps, &target, consts::CAP_SYS_ADMIN) {
                return error!(EPERM);
            }
            (user_ns, caps) = (target.clone(), crate::task::CAP_FULL);
            new_user_ns = Some(target);
        }
        let may = |owner: &Arc<UserNamespace>| capable_in(&user_ns, euid, caps, owner, consts::CAP_SYS_ADMIN) && caps >> consts::CAP_SYS_ADMIN & 1 != 0;
        for ns in &joins {
            let allowed = match ns {
                Namespace::Mnt(m) => may(&m.owner) && caps >> consts::CAP_SYS_CHROOT & 1 != 0,
                Namespace::Uts(u) => may(&u.owner),
                Namespace::Ipc(i) => may(&i.owner),
                Namespace::Net(n) => may(&n.owner),
                // Its children's: the process's own PID namespace or one nested in it.
                Namespace::Pid(pid_ns) if !pid_ns.is_within(&self.tg.pid_ns) => return error!(EINVAL),
                Namespace::Pid(pid_ns) => may(&pid_ns.owner),
                // Its clocks are the whole address space's.
                Namespace::Time(_) if self.tg.threads().len() > 1 => return error!(EUSERS),
                Namespace::Time(time) => may(&time.owner),
                Namespace::Sole(_) => caps >> consts::CAP_SYS_ADMIN & 1 != 0,
                Namespace::User(_) => true,
            };
            if !allowed {
                return error!(EPERM);
            }
        }
        let timens = match joins.iter().find_map(|ns| if let Namespace::Time(t) = ns { Some(t) } else { None }) {
            Some(t) => Some(t.enter(&self.kernel.memory)?),
            None => None,
        };
        // With an fs context of its own (Linux refuses a shared one instead).
        if let Some(ns) = new_user_ns {
            self.tg.enter_user_ns(ns);
            self.fs = Arc::new(self.fs.fork());
        }
        for ns in joins {
            match ns {
                Namespace::Mnt(mounts) => {
                    let fs = crate::vfs::FsContext::new(mounts);
                    fs.set_umask(self.fs.umask());
                    self.fs = Arc::new(fs);
                }
                Namespace::Uts(uts) => self.ns.uts = uts,
                Namespace::Ipc(ipc) => self.ns.ipc = ipc,
                Namespace::Net(net) => self.ns.net = net,
                Namespace::Pid(pid_ns) => self.ns.pid_children = (!Arc::ptr_eq(&pid_ns, &self.tg.pid_ns)).then_some(pid_ns),
                Namespace::Time(time) => {
                    if let Some(page) = &timens {
                        self.mm.replace_timens_page(Some(self.ctx.as_mut()), page)?;
                    }
                    self.ns.time = time.clone();
                    self.ns.time_for_children = time;
                }
                // The sandbox's one cgroup namespace: no change.
                Namespace::Sole(_) | Namespace::User(_) => {}
            }
        }
        self.publish_resources();
        Ok(())
    }
}
