//! The Linux Security Module calls of Linux 6.8 (security/lsm_syscalls.c and
//! security/security.c): the sandbox's active modules are capability and
//! Landlock (`crate::landlock`), and neither has process attributes, so the
//! attribute calls check their arguments and find nothing (EOPNOTSUPP), as on
//! a Linux with only those modules. Sizes are `u32`, as since Linux's
//! "use 32-bit compatible data types in the LSM syscalls".

use crate::mm::UserRef;
use crate::task::Task;
use rvisor_abi::{errno, error, SysResult, UserAddr, PAGE_SIZE};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// LSM_ID_CAPABILITY and LSM_ID_LANDLOCK, in Linux's order (capability first).
const ACTIVE: [u64; 2] = [100, 110];
const LSM_ATTR_UNDEF: u32 = 0;
const LSM_ID_UNDEF: u64 = 0;
const LSM_FLAG_SINGLE: u32 = 1;

/// `struct lsm_ctx` without its context bytes.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct LsmCtxHead {
    id: u64,
    flags: u64,
    len: u64,
    ctx_len: u64,
}
const LSM_CTX_HEAD: usize = std::mem::size_of::<LsmCtxHead>();

pub fn sys_lsm_list_modules(t: &mut Task, ids: UserAddr, size: UserRef<u32>, flags: u32) -> SysResult<usize> {
    if flags != 0 {
        return error!(EINVAL);
    }
    let room = t.mm.read_obj(size)?;
    let total = std::mem::size_of_val(&ACTIVE) as u32;
    t.mm.write_obj(size, &total)?;
    if room < total {
        return error!(E2BIG);
    }
    t.mm.write_bytes(ids, ACTIVE.as_bytes())?;
    Ok(ACTIVE.len())
}

pub fn sys_lsm_get_self_attr(t: &mut Task, attr: u32, ctx: UserAddr, size: UserRef<u32>, flags: u32) -> SysResult<usize> {
    if attr == LSM_ATTR_UNDEF || size.is_null() {
        return error!(EINVAL);
    }
    t.mm.read_obj(size)?;
    if flags != 0 {
        // LSM_FLAG_SINGLE asks one module, named by the context's id.
        if flags != LSM_FLAG_SINGLE || ctx.is_null() {
            return error!(EINVAL);
        }
        let head: LsmCtxHead = t.mm.read_obj(UserRef::new(ctx))?;
        if head.id == LSM_ID_UNDEF {
            return error!(EINVAL);
        }
    }
    // No module gave an attribute: nothing was written.
    t.mm.write_obj(size, &0u32)?;
    error!(EOPNOTSUPP)
}

pub fn sys_lsm_set_self_attr(t: &mut Task, _attr: u32, ctx: UserAddr, size: u32, flags: u32) -> SysResult<()> {
    if flags != 0 || (size as usize) < LSM_CTX_HEAD {
        return error!(EINVAL);
    }
    if u64::from(size) > PAGE_SIZE {
        return error!(E2BIG);
    }
    let mut bytes = vec![0u8; size as usize];
    t.mm.read_bytes(ctx, &mut bytes)?;
    let (head, _) = LsmCtxHead::read_from_prefix(&bytes).map_err(|_| errno!(EINVAL))?;
    // The context must fit in what was given, and in its own length.
    let needed = head.ctx_len.checked_add(LSM_CTX_HEAD as u64);
    if u64::from(size) < head.len || needed.is_none_or(|n| head.len < n) {
        return error!(EINVAL);
    }
    // No module here has attributes to set.
    error!(EOPNOTSUPP)
}
