//! landlock_create_ruleset, landlock_add_rule and landlock_restrict_self
//! (`crate::landlock` holds the rulesets, domains and checks).

use crate::landlock::{self, Domain, Handled, Key, Ruleset, FS_ALL, FS_FILE, NET_ALL, SCOPE_ALL};
use crate::mm::UserRef;
use crate::task::Task;
use crate::vfs::inode::OpenFlags;
use crate::vfs::{Fd, FileDescription, StatusFlags};
use rvisor_abi::{consts, error, SysResult, UserAddr};
use std::sync::Arc;

const CREATE_RULESET_VERSION: u32 = 1;
const CREATE_RULESET_ERRATA: u32 = 2;
const RULE_PATH_BENEATH: u32 = 1;
const RULE_NET_PORT: u32 = 2;
/// restrict_self's audit-log flags (LOG_SAME_EXEC_OFF, LOG_NEW_EXEC_ON,
/// LOG_SUBDOMAINS_OFF): accepted, with no audit log to write to.
const RESTRICT_SELF_LOG_SUBDOMAINS_OFF: u32 = 4;
const RESTRICT_SELF_FLAGS: u32 = 1 | 2 | RESTRICT_SELF_LOG_SUBDOMAINS_OFF;

/// `struct landlock_ruleset_attr`, as far as ABI 7 knows it.
#[derive(Clone, Copy, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// `struct landlock_path_beneath_attr` (packed: 12 bytes).
#[derive(Clone, Copy, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout, zerocopy::Unaligned)]
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: [u8; 8],
    parent_fd: [u8; 4],
}

/// `struct landlock_net_port_attr`.
#[derive(Clone, Copy, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
#[repr(C)]
struct NetPortAttr {
    allowed_access: u64,
    port: u64,
}

/// A ruleset's descriptor ("anon_inode:[landlock-ruleset]").
struct RulesetFile {
    ruleset: Ruleset,
    flags: StatusFlags,
}

impl FileDescription for RulesetFile {
    crate::fs::eventfd::anon_file_without_io!();
    fn flags(&self) -> Option<&StatusFlags> {
        Some(&self.flags)
    }
    fn proc_name(&self) -> Option<Vec<u8>> {
        Some(b"anon_inode:[landlock-ruleset]".to_vec())
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// The ruleset of a descriptor (EBADFD for another kind of file).
fn ruleset_of(file: &Arc<dyn FileDescription>) -> SysResult<&Ruleset> {
    file.as_any().and_then(|a| a.downcast_ref::<RulesetFile>()).map(|r| &r.ruleset).ok_or_else(|| rvisor_abi::errno!(EBADFD))
}

pub fn sys_landlock_create_ruleset(t: &mut Task, attr: UserAddr, size: usize, flags: u32) -> SysResult<i64> {
    if flags != 0 {
        if !attr.is_null() || size != 0 {
            return error!(EINVAL);
        }
        return match flags {
            CREATE_RULESET_VERSION => Ok(landlock::ABI_VERSION),
            CREATE_RULESET_ERRATA => Ok(landlock::ERRATA),
            _ => error!(EINVAL),
        };
    }
    let a = read_sized::<RulesetAttr>(t, attr, size, 8)?;
    if a.handled_access_fs & !FS_ALL != 0 || a.handled_access_net & !NET_ALL != 0 || a.scoped & !SCOPE_ALL != 0 {
        return error!(EINVAL);
    }
    let ruleset = Ruleset::new(Handled { fs: a.handled_access_fs, net: a.handled_access_net, scope: a.scoped })?;
    let file: Arc<dyn FileDescription> = Arc::new(RulesetFile { ruleset, flags: StatusFlags::new(OpenFlags::RDWR) });
    Ok(t.fds.install_lowest(file, 0, t.tg.rlimit(crate::task::RLIMIT_NOFILE).cur, true)?.0.into())
}

/// A struct the caller gives with its size, as copy_struct_from_user takes
/// it: at least `least` bytes, at most a page; bytes past what we know must be
/// zero (E2BIG), and missing ones read as zero.
pub(super) fn read_sized<T: zerocopy::FromBytes + zerocopy::IntoBytes + Default>(t: &Task, addr: UserAddr, size: usize, least: usize) -> SysResult<T> {
    if addr.is_null() {
        return error!(EFAULT);
    }
    if size < least {
        return error!(EINVAL);
    }
    if size > rvisor_abi::PAGE_SIZE as usize {
        return error!(E2BIG);
    }
    let known = std::mem::size_of::<T>();
    let mut bytes = vec![0u8; size];
    t.mm.read_bytes(addr, &mut bytes)?;
    if bytes.iter().skip(known).any(|&b| b != 0) {
        return error!(E2BIG);
    }
    let mut v = T::default();
    let n = size.min(known);
    v.as_mut_bytes()[..n].copy_from_slice(&bytes[..n]);
    Ok(v)
}

pub fn sys_landlock_add_rule(t: &mut Task, ruleset_fd: Fd, rule_type: u32, rule_attr: UserAddr, flags: u32) -> SysResult<()> {
    if flags != 0 {
        return error!(EINVAL);
    }
    let file = t.fds.get(ruleset_fd)?;
    let ruleset = ruleset_of(&file)?;
    match rule_type {
        RULE_PATH_BENEATH => {
            let a: PathBeneathAttr = t.mm.read_obj(UserRef::new(rule_attr))?;
            let allowed = u64::from_le_bytes(a.allowed_access);
            if allowed == 0 {
                return error!(ENOMSG);
            }
            if allowed & !ruleset.handled.fs != 0 {
                return error!(EINVAL);
            }
            let parent = t.fds.get(Fd(i32::from_le_bytes(a.parent_fd)))?;
            // Rules name files in mounts: not pipes, sockets, memfds or rulesets.
            let Some(d) = parent.dentry().filter(|d| d.mount.upgrade().is_some()) else { return error!(EBADFD) };
            if !d.is_dir() && allowed & !FS_FILE != 0 {
                return error!(EINVAL);
            }
            ruleset.add(landlock::fs::rule_key(&d)?, allowed);
        }
        RULE_NET_PORT => {
            let a: NetPortAttr = t.mm.read_obj(UserRef::new(rule_attr))?;
            if a.allowed_access == 0 {
                return error!(ENOMSG);
            }
            if a.allowed_access & !ruleset.handled.net != 0 {
                return error!(EINVAL);
            }
            let port = u16::try_from(a.port).or_else(|_| error!(EINVAL))?;
            ruleset.add(Key::Port(port), a.allowed_access);
        }
        _ => return error!(EINVAL),
    }
    Ok(())
}

pub fn sys_landlock_restrict_self(t: &mut Task, ruleset_fd: i32, flags: u32) -> SysResult<()> {
    if t.tg.no_new_privs.load(std::sync::atomic::Ordering::Relaxed) == 0 && !t.tg.capable(consts::CAP_SYS_ADMIN) {
        return error!(EPERM);
    }
    if flags & !RESTRICT_SELF_FLAGS != 0 {
        return error!(EINVAL);
    }
    // Only a logging setting for the domains to come.
    if ruleset_fd == -1 && flags == RESTRICT_SELF_LOG_SUBDOMAINS_OFF {
        return Ok(());
    }
    let file = t.fds.get(Fd(ruleset_fd))?;
    let ruleset = ruleset_of(&file)?;
    let domain = Domain::stack(t.thread.landlock().as_deref(), ruleset)?;
    t.thread.set_landlock(Some(Arc::new(domain)));
    Ok(())
}
