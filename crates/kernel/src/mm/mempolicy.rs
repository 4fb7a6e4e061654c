//! NUMA memory policies (set_mempolicy(2), mbind(2), get_mempolicy(2)) on a
//! sandbox with one node, node 0, as Linux's mm/mempolicy.c judges them: a
//! thread's policy (kept in its `SchedAttrs`) and a mapping's (its `Vma`'s)
//! are kept and reported; with one node, where memory comes from never changes.

use rvisor_abi::{error, SysResult};

pub const MPOL_DEFAULT: u32 = 0;
const MPOL_PREFERRED: u32 = 1;
const MPOL_BIND: u32 = 2;
pub const MPOL_INTERLEAVE: u32 = 3;
pub const MPOL_LOCAL: u32 = 4;
const MPOL_PREFERRED_MANY: u32 = 5;
/// One past the last mode (MPOL_WEIGHTED_INTERLEAVE is 6).
const MPOL_MAX: u32 = 7;
const MPOL_F_NUMA_BALANCING: u32 = 1 << 13;
const MPOL_F_RELATIVE_NODES: u32 = 1 << 14;
const MPOL_F_STATIC_NODES: u32 = 1 << 15;
const MODE_FLAGS: u32 = MPOL_F_NUMA_BALANCING | MPOL_F_RELATIVE_NODES | MPOL_F_STATIC_NODES;

/// Linux's MAX_NUMNODES (CONFIG_NODES_SHIFT 10, as Debian's kernels): a
/// nodemask bit at or past it is EINVAL.
pub const MAX_NUMNODES: usize = 1024;
/// A node mask, node n at bit n % 64 of word n / 64.
pub type NodeMask = [u64; MAX_NUMNODES / 64];
/// The nodes there are: node 0.
pub const ALLOWED: u64 = 1;

/// A policy other than the default (which is `None` wherever one is kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemPolicy {
    pub mode: u32,
    /// MPOL_F_STATIC_NODES, MPOL_F_RELATIVE_NODES, MPOL_F_NUMA_BALANCING.
    pub flags: u32,
    /// The nodes it names: as the caller gave them with STATIC or RELATIVE
    /// (Linux reports those back), else those of them that exist.
    pub nodes: NodeMask,
}

impl MemPolicy {
    /// The policy `mode` (with its flags) over `nodes` asks for, as Linux's
    /// sanitize_mpol_flags, mpol_new and mpol_set_nodemask check it; None
    /// for the default policy.
    pub fn new(mode: u32, nodes: &NodeMask) -> SysResult<Option<MemPolicy>> {
        MemPolicy::check_mode(mode)?;
        let (flags, mut mode) = (mode & MODE_FLAGS, mode & !MODE_FLAGS);
        let statically = flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES);
        let empty = nodes.iter().all(|&w| w == 0);
        match mode {
            MPOL_DEFAULT if empty => return Ok(None),
            MPOL_DEFAULT => return error!(EINVAL),
            // PREFERRED with no node is LOCAL.
            MPOL_PREFERRED if empty && statically == 0 => mode = MPOL_LOCAL,
            MPOL_LOCAL if !empty || statically != 0 => return error!(EINVAL),
            MPOL_LOCAL => {}
            _ if empty => return error!(EINVAL),
            _ => {}
        }
        if mode == MPOL_LOCAL {
            return Ok(Some(MemPolicy { mode, flags, nodes: [0; MAX_NUMNODES / 64] }));
        }
        // RELATIVE maps the nodes onto those there are, so some always remain.
        let existing = if flags & MPOL_F_RELATIVE_NODES != 0 { ALLOWED } else { nodes[0] & ALLOWED };
        if existing == 0 {
            return error!(EINVAL);
        }
        let mut kept = [0; MAX_NUMNODES / 64];
        match statically {
            0 => kept[0] = existing,
            _ => kept = *nodes,
        }
        Ok(Some(MemPolicy { mode, flags, nodes: kept }))
    }

    /// The mode and its flags alone, as Linux's sanitize_mpol_flags checks
    /// them before it reads the nodes: EINVAL for an unknown mode, STATIC with
    /// RELATIVE, or NUMA_BALANCING but with BIND or PREFERRED_MANY.
    pub fn check_mode(mode: u32) -> SysResult<()> {
        let (flags, mode) = (mode & MODE_FLAGS, mode & !MODE_FLAGS);
        let both = MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES;
        let balancing = flags & MPOL_F_NUMA_BALANCING != 0 && mode != MPOL_BIND && mode != MPOL_PREFERRED_MANY;
        if mode >= MPOL_MAX || flags & both == both || balancing {
            return error!(EINVAL);
        }
        Ok(())
    }

    /// What get_mempolicy reports as the mode: the mode and its flags.
    pub fn reported_mode(this: Option<&MemPolicy>) -> u32 {
        this.map_or(MPOL_DEFAULT, |p| p.mode | p.flags)
    }

    /// What get_mempolicy reports as the nodes (none for the default and local).
    pub fn reported_nodes(this: Option<&MemPolicy>) -> NodeMask {
        this.map_or([0; MAX_NUMNODES / 64], |p| p.nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(bits: u64) -> NodeMask {
        let mut m = [0; MAX_NUMNODES / 64];
        m[0] = bits;
        m
    }

    #[test]
    fn policies_are_checked_as_linux_does() {
        assert_eq!(MemPolicy::new(MPOL_DEFAULT, &mask(0)).unwrap(), None);
        assert!(MemPolicy::new(MPOL_DEFAULT, &mask(1)).is_err());
        assert_eq!(MemPolicy::new(MPOL_PREFERRED, &mask(0)).unwrap().unwrap().mode, MPOL_LOCAL);
        assert!(MemPolicy::new(MPOL_BIND, &mask(0)).is_err());
        assert!(MemPolicy::new(MPOL_BIND, &mask(2)).is_err(), "node 1 does not exist");
        assert_eq!(MemPolicy::new(MPOL_BIND, &mask(3)).unwrap().unwrap().nodes, mask(1));
        assert_eq!(MemPolicy::new(MPOL_BIND | MPOL_F_STATIC_NODES, &mask(3)).unwrap().unwrap().nodes, mask(3));
        assert!(MemPolicy::new(MPOL_BIND | MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES, &mask(1)).is_err());
        assert!(MemPolicy::new(MPOL_INTERLEAVE | MPOL_F_NUMA_BALANCING, &mask(1)).is_err());
        assert!(MemPolicy::new(MPOL_MAX, &mask(1)).is_err());
        assert!(MemPolicy::new(MPOL_LOCAL, &mask(1)).is_err());
    }
}
