//! NUMA memory policies (set_mempolicy, get_mempolicy, mbind) on the sandbox's
//! one node (`mm::mempolicy`), with Linux's argument checks and node-mask
//! copying (mm/mempolicy.c's get_nodes and copy_nodes_to_user); and memory
//! protection keys as Linux has them on a CPU without PKU.

use crate::mm::mempolicy::{MemPolicy, NodeMask, ALLOWED, MAX_NUMNODES, MPOL_INTERLEAVE};
use crate::mm::UserRef;
use crate::task::Task;
use rvisor_abi::{consts, error, page_up, PAGE_SIZE, SysResult, UserAddr};
use std::sync::Arc;

const MPOL_F_NODE: u64 = 1;
const MPOL_F_ADDR: u64 = 2;
const MPOL_F_MEMS_ALLOWED: u64 = 4;
const MPOL_MF_STRICT: u32 = 1;
const MPOL_MF_MOVE: u32 = 2;
const MPOL_MF_MOVE_ALL: u32 = 4;
/// The most bits a node mask may have (Linux: a page of them).
const MASK_BITS_MAX: u64 = PAGE_SIZE * 8;

/// Reads a node mask of `maxnode - 1` bits at `at` (none if null or 0 bits),
/// as Linux's get_nodes: more than a page of bits is EINVAL, and so is a
/// node at or past MAX_NUMNODES.
fn read_nodes(t: &Task, at: UserAddr, maxnode: u64) -> SysResult<NodeMask> {
    let bits = maxnode.wrapping_sub(1);
    let mut nodes: NodeMask = [0; MAX_NUMNODES / 64];
    if bits == 0 || at.is_null() {
        return Ok(nodes);
    }
    if bits > MASK_BITS_MAX {
        return error!(EINVAL);
    }
    let mut words = vec![0u64; bits.div_ceil(64) as usize];
    t.mm.read_bytes(at, zerocopy::IntoBytes::as_mut_bytes(&mut words[..]))?;
    if bits % 64 != 0 {
        if let Some(last) = words.last_mut() {
            *last &= (1 << (bits % 64)) - 1;
        }
    }
    if words.iter().skip(nodes.len()).any(|&w| w != 0) {
        return error!(EINVAL);
    }
    for (n, w) in nodes.iter_mut().zip(&words) {
        *n = *w;
    }
    Ok(nodes)
}

/// Writes the node mask for a caller's `maxnode`, as Linux's copy_nodes_to_user
/// with one node: the first word, and zeroes up to the mask's size (EINVAL
/// past a page).
fn write_nodes(t: &Task, at: UserAddr, maxnode: u64, nodes: &NodeMask) -> SysResult<()> {
    let bytes = maxnode.saturating_sub(1).div_ceil(64) * 8;
    if bytes == 0 {
        return Ok(());
    }
    if bytes > PAGE_SIZE {
        return error!(EINVAL);
    }
    let mut out = vec![0u8; bytes as usize];
    out[..8].copy_from_slice(&nodes[0].to_ne_bytes());
    t.mm.write_bytes(at, &out)
}

/// The policy `mode` over the nodes at `nmask`: the mode is checked first,
/// then the mask read, then the two together (Linux's order).
fn read_policy(t: &Task, mode: u32, nmask: UserAddr, maxnode: u64) -> SysResult<Option<Arc<MemPolicy>>> {
    MemPolicy::check_mode(mode)?;
    let nodes = read_nodes(t, nmask, maxnode)?;
    Ok(MemPolicy::new(mode, &nodes)?.map(Arc::new))
}

pub fn sys_set_mempolicy(t: &mut Task, mode: i32, nmask: UserAddr, maxnode: u64) -> SysResult<()> {
    let policy = read_policy(t, mode as u32, nmask, maxnode)?;
    t.thread.set_mempolicy(policy);
    Ok(())
}

pub fn sys_get_mempolicy(t: &mut Task, mode: UserRef<i32>, nmask: UserAddr, maxnode: u64, addr: UserAddr, flags: u64) -> SysResult<()> {
    if flags & !(MPOL_F_NODE | MPOL_F_ADDR | MPOL_F_MEMS_ALLOWED) != 0 || (!nmask.is_null() && maxnode < 1) {
        return error!(EINVAL);
    }
    let (value, nodes) = if flags & MPOL_F_MEMS_ALLOWED != 0 {
        if flags & (MPOL_F_NODE | MPOL_F_ADDR) != 0 {
            return error!(EINVAL);
        }
        let mut all: NodeMask = [0; MAX_NUMNODES / 64];
        all[0] = ALLOWED;
        (0, all)
    } else {
        let policy = if flags & MPOL_F_ADDR != 0 {
            t.mm.policy_at(addr.get())?
        } else if !addr.is_null() {
            return error!(EINVAL);
        } else {
            t.thread.mempolicy()
        };
        let value = match (flags & MPOL_F_NODE != 0, flags & MPOL_F_ADDR != 0) {
            // The node of the page there, or the next node interleaving
            // allocates from: with one node, node 0.
            (true, true) => 0,
            (true, false) if policy.as_ref().is_some_and(|p| p.mode == MPOL_INTERLEAVE) => 0,
            (true, false) => return error!(EINVAL),
            (false, _) => MemPolicy::reported_mode(policy.as_deref()),
        };
        (value, MemPolicy::reported_nodes(policy.as_deref()))
    };
    if !mode.addr.is_null() {
        t.mm.write_obj(mode, &(value as i32))?;
    }
    if !nmask.is_null() {
        write_nodes(t, nmask, maxnode, &nodes)?;
    }
    Ok(())
}

pub fn sys_mbind(t: &mut Task, start: UserAddr, len: u64, mode: u64, nmask: UserAddr, maxnode: u64, flags: u32) -> SysResult<()> {
    MemPolicy::check_mode(mode as u32)?;
    let nodes = read_nodes(t, nmask, maxnode)?;
    if flags & !(MPOL_MF_STRICT | MPOL_MF_MOVE | MPOL_MF_MOVE_ALL) != 0 {
        return error!(EINVAL);
    }
    if flags & MPOL_MF_MOVE_ALL != 0 && !t.tg.capable_in(&crate::task::UserNamespace::initial(), consts::CAP_SYS_NICE) {
        return error!(EPERM);
    }
    if start.get() % PAGE_SIZE != 0 {
        return error!(EINVAL);
    }
    let len = page_up(len).ok_or_else(|| rvisor_abi::errno!(EINVAL))?;
    let end = start.get().checked_add(len).ok_or_else(|| rvisor_abi::errno!(EINVAL))?;
    if len == 0 {
        return Ok(());
    }
    let policy = MemPolicy::new(mode as u32, &nodes)?.map(Arc::new);
    // With one node every page already lies where any policy would put it:
    // MPOL_MF_STRICT and MOVE find nothing to report or move.
    t.mm.set_policy(start.get(), end, policy)
}

/// pkey_alloc: this machine's CPUs have no protection keys (as Linux without
/// X86_FEATURE_OSPKE, which says EINVAL).
pub fn sys_pkey_alloc(_t: &mut Task, _flags: u64, _rights: u64) -> SysResult<i32> {
    error!(EINVAL)
}

/// pkey_free: no key was allocated.
pub fn sys_pkey_free(_t: &mut Task, _pkey: i32) -> SysResult<()> {
    error!(EINVAL)
}

/// pkey_mprotect: mprotect with key -1 (none); any other key was never
/// allocated (EINVAL, after mprotect's own checks of the range).
pub fn sys_pkey_mprotect(t: &mut Task, addr: UserAddr, len: u64, prot: u32, pkey: i32) -> SysResult<()> {
    if pkey == -1 {
        return super::mm::sys_mprotect(t, addr, len, prot);
    }
    if addr.get() % PAGE_SIZE != 0 {
        return error!(EINVAL);
    }
    if len == 0 {
        return Ok(());
    }
    error!(EINVAL)
}
