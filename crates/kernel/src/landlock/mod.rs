//! Landlock (Linux's security/landlock): access control a thread puts on
//! itself without privilege, which every thread and process it makes inherits.
//!
//! A `Ruleset` (landlock_create_ruleset) names the rights it handles; its
//! rules (landlock_add_rule) grant some of them beneath a directory or on a
//! file, or on a TCP port. landlock_restrict_self stacks it on the thread's
//! `Domain` as a new layer, which nothing removes. An access is allowed when
//! every layer that handles it grants it: by a rule on the file or any
//! directory above it, up to the real root (`fs.rs`), or on the port
//! (`net.rs`); scoped layers also keep signals and abstract unix sockets from
//! reaching processes outside the domain, and tracing from doing so
//! (`scope.rs`).
//!
//! Rules name files by device and inode number, as stat shows them, so they
//! hold across the dentry cache letting go of an inode (Linux ties them to
//! the inode itself, which it keeps).

pub mod fs;
pub mod net;
pub mod scope;

use rvisor_abi::landlock as uapi;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The ABI version landlock_create_ruleset reports: that of Linux 6.15,
/// whose logging flags restrict_self accepts (the sandbox has no audit log).
pub const ABI_VERSION: i64 = 7;
/// The errata fixed here, one bit per erratum: 1 (only TCP sockets are
/// restricted) and 2 (a scoped process may still signal its own threads).
pub const ERRATA: i64 = 0b11;
/// Layers a domain may stack (Linux's LANDLOCK_MAX_NUM_LAYERS).
pub const MAX_LAYERS: usize = 16;

pub const FS_EXECUTE: u64 = uapi::LANDLOCK_ACCESS_FS_EXECUTE as u64;
pub const FS_WRITE_FILE: u64 = uapi::LANDLOCK_ACCESS_FS_WRITE_FILE as u64;
pub const FS_READ_FILE: u64 = uapi::LANDLOCK_ACCESS_FS_READ_FILE as u64;
pub const FS_READ_DIR: u64 = uapi::LANDLOCK_ACCESS_FS_READ_DIR as u64;
pub const FS_REMOVE_DIR: u64 = uapi::LANDLOCK_ACCESS_FS_REMOVE_DIR as u64;
pub const FS_REMOVE_FILE: u64 = uapi::LANDLOCK_ACCESS_FS_REMOVE_FILE as u64;
pub const FS_MAKE_CHAR: u64 = uapi::LANDLOCK_ACCESS_FS_MAKE_CHAR as u64;
pub const FS_MAKE_DIR: u64 = uapi::LANDLOCK_ACCESS_FS_MAKE_DIR as u64;
pub const FS_MAKE_REG: u64 = uapi::LANDLOCK_ACCESS_FS_MAKE_REG as u64;
pub const FS_MAKE_SOCK: u64 = uapi::LANDLOCK_ACCESS_FS_MAKE_SOCK as u64;
pub const FS_MAKE_FIFO: u64 = uapi::LANDLOCK_ACCESS_FS_MAKE_FIFO as u64;
pub const FS_MAKE_BLOCK: u64 = uapi::LANDLOCK_ACCESS_FS_MAKE_BLOCK as u64;
pub const FS_MAKE_SYM: u64 = uapi::LANDLOCK_ACCESS_FS_MAKE_SYM as u64;
pub const FS_REFER: u64 = uapi::LANDLOCK_ACCESS_FS_REFER as u64;
pub const FS_TRUNCATE: u64 = uapi::LANDLOCK_ACCESS_FS_TRUNCATE as u64;
pub const FS_IOCTL_DEV: u64 = uapi::LANDLOCK_ACCESS_FS_IOCTL_DEV as u64;
pub const FS_ALL: u64 = (FS_IOCTL_DEV << 1) - 1;
/// The rights a rule on a file (not a directory) may grant.
pub const FS_FILE: u64 = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV;

pub const NET_BIND_TCP: u64 = uapi::LANDLOCK_ACCESS_NET_BIND_TCP as u64;
pub const NET_CONNECT_TCP: u64 = uapi::LANDLOCK_ACCESS_NET_CONNECT_TCP as u64;
pub const NET_ALL: u64 = NET_BIND_TCP | NET_CONNECT_TCP;

pub const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = uapi::LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET as u64;
pub const SCOPE_SIGNAL: u64 = uapi::LANDLOCK_SCOPE_SIGNAL as u64;
pub const SCOPE_ALL: u64 = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL;

/// What a rule is about: a file, by its device and inode numbers, or a TCP port.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Key {
    Inode(u64, u64),
    Port(u16),
}

/// The rights a ruleset or layer handles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Handled {
    pub fs: u64,
    pub net: u64,
    pub scope: u64,
}

/// A ruleset being built: rules are added until it is enforced (and after:
/// enforcing copies it).
pub struct Ruleset {
    pub handled: Handled,
    /// Rights granted by key, absolute: the rights the ruleset does not handle
    /// are granted too (Linux's landlock_append_fs_rule). A leaf lock.
    rules: Mutex<HashMap<Key, u64>>,
}

impl Ruleset {
    /// ENOMSG when it would handle nothing.
    pub fn new(handled: Handled) -> rvisor_abi::SysResult<Ruleset> {
        if handled == Handled::default() {
            return rvisor_abi::error!(ENOMSG);
        }
        Ok(Ruleset { handled, rules: Mutex::default() })
    }

    /// Grants `access` (checked by the caller to be handled) on `key`, on top
    /// of what an earlier rule on it granted.
    pub fn add(&self, key: Key, access: u64) {
        let absolute = match key {
            Key::Inode(..) => access | (FS_ALL & !layer_fs(self.handled.fs)),
            Key::Port(_) => access | (NET_ALL & !self.handled.net),
        };
        *self.rules.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_insert(0) |= absolute;
    }
}

/// The file-system rights a layer handles: FS_REFER with any other, since
/// moving a file to another directory is denied unless a rule grants it
/// (Linux's landlock_upgrade_handled_access_masks).
fn layer_fs(fs: u64) -> u64 {
    if fs == 0 { 0 } else { fs | FS_REFER }
}

/// One enforced ruleset: a frozen copy, whose identity tells domains apart.
#[derive(Debug)]
pub struct Layer {
    handled: Handled,
    rules: HashMap<Key, u64>,
}

/// A thread's Landlock domain: its layers, outermost first. A domain stacked
/// on another shares its layers, so one domain lies within another when its
/// layers begin with the other's.
#[derive(Debug)]
pub struct Domain {
    layers: Vec<Arc<Layer>>,
}

/// For each access right (by bit number), the layers (by bit) that still deny it.
pub type LayerMasks = [u16; 16];

impl Domain {
    /// `outer` with `ruleset` stacked on it (E2BIG past 16 layers).
    pub fn stack(outer: Option<&Domain>, ruleset: &Ruleset) -> rvisor_abi::SysResult<Domain> {
        let mut layers = outer.map_or_else(Vec::new, |d| d.layers.clone());
        if layers.len() >= MAX_LAYERS {
            return rvisor_abi::error!(E2BIG);
        }
        let handled = Handled { fs: layer_fs(ruleset.handled.fs), ..ruleset.handled };
        let rules = ruleset.rules.lock().unwrap_or_else(|e| e.into_inner()).clone();
        layers.push(Arc::new(Layer { handled, rules }));
        Ok(Domain { layers })
    }

    /// The rights some layer handles.
    pub fn handled(&self) -> Handled {
        self.layers.iter().fold(Handled::default(), |a, l| Handled { fs: a.fs | l.handled.fs, net: a.net | l.handled.net, scope: a.scope | l.handled.scope })
    }

    /// Linux's landlock_init_layer_masks: which layers deny each right of
    /// `request` to begin with (those that handle it); returns the rights of
    /// `request` some layer handles.
    fn init_masks(&self, request: u64, net: bool, masks: &mut LayerMasks) -> u64 {
        *masks = [0; 16];
        let mut handled = 0;
        for (i, layer) in self.layers.iter().enumerate() {
            let by_layer = if net { layer.handled.net } else { layer.handled.fs };
            for bit in bits(request & by_layer) {
                masks[bit] |= 1 << i;
                handled |= 1 << bit;
            }
        }
        handled
    }

    /// Linux's landlock_unmask_layers: clears, for each right of `request`, the
    /// layers whose rule on `key` grants it. True once nothing is denied.
    fn unmask(&self, key: Option<Key>, request: u64, masks: &mut LayerMasks) -> bool {
        if request == 0 {
            return true;
        }
        let Some(key) = key else { return false };
        for (i, layer) in self.layers.iter().enumerate() {
            let Some(&granted) = layer.rules.get(&key) else { continue };
            for bit in bits(request & granted) {
                masks[bit] &= !(1 << i);
            }
            if masks.iter().all(|&m| m == 0) {
                return true;
            }
        }
        false
    }

    /// Whether this domain is `inner` or one `inner` is stacked on (Linux's
    /// domain_scope_le): what a process may trace.
    pub fn encloses(&self, inner: Option<&Domain>) -> bool {
        let Some(inner) = inner else { return false };
        inner.layers.len() >= self.layers.len() && self.layers.iter().zip(&inner.layers).all(|(a, b)| Arc::ptr_eq(a, b))
    }

    /// Linux's domain_is_scoped: whether a layer of this domain that scopes
    /// `scope` does not enclose `other`'s domain.
    pub fn is_scoped_from(&self, other: Option<&Domain>, scope: u64) -> bool {
        let theirs = other.map_or(&[][..], |d| &d.layers[..]);
        for (i, layer) in self.layers.iter().enumerate().rev() {
            if layer.handled.scope & scope != 0 {
                return theirs.get(i).is_none_or(|l| !Arc::ptr_eq(l, layer));
            }
        }
        false
    }
}

/// The bit numbers set in `v` (below 16).
fn bits(v: u64) -> impl Iterator<Item = usize> {
    (0..16).filter(move |b| v >> b & 1 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset(fs: u64, scope: u64, rules: &[(Key, u64)]) -> Ruleset {
        let r = Ruleset::new(Handled { fs, net: 0, scope }).expect("handles something");
        for &(k, a) in rules {
            r.add(k, a);
        }
        r
    }

    #[test]
    fn a_ruleset_must_handle_something() {
        assert!(Ruleset::new(Handled::default()).is_err());
    }

    #[test]
    fn every_layer_must_grant() {
        let dir = Key::Inode(1, 2);
        let one = Domain::stack(None, &ruleset(FS_READ_FILE | FS_WRITE_FILE, 0, &[(dir, FS_READ_FILE | FS_WRITE_FILE)])).expect("one layer");
        let two = Domain::stack(Some(&one), &ruleset(FS_WRITE_FILE, 0, &[])).expect("two layers");
        let mut masks = [0; 16];
        let req = two.init_masks(FS_READ_FILE | FS_WRITE_FILE, false, &mut masks);
        assert_eq!(req, FS_READ_FILE | FS_WRITE_FILE);
        assert!(!two.unmask(Some(dir), req, &mut masks), "the second layer grants no write");
        let req = two.init_masks(FS_READ_FILE, false, &mut masks);
        assert!(two.unmask(Some(dir), req, &mut masks));
    }

    #[test]
    fn rules_grant_what_their_ruleset_does_not_handle() {
        let dir = Key::Inode(1, 2);
        let d = Domain::stack(None, &ruleset(FS_READ_FILE, 0, &[(dir, FS_READ_FILE)])).expect("one layer");
        let mut masks = [0; 16];
        // REFER is handled by every layer handling files, and granted only when asked for.
        let req = d.init_masks(FS_REFER | FS_EXECUTE, false, &mut masks);
        assert_eq!(req, FS_REFER);
        assert!(!d.unmask(Some(dir), req, &mut masks));
    }

    #[test]
    fn sixteen_layers_at_most() {
        let r = ruleset(FS_READ_FILE, 0, &[]);
        let mut d = Domain::stack(None, &r).expect("first");
        for _ in 1..MAX_LAYERS {
            d = Domain::stack(Some(&d), &r).expect("within the limit");
        }
        assert!(Domain::stack(Some(&d), &r).is_err());
    }

    #[test]
    fn scopes_and_nesting() {
        let outer = Domain::stack(None, &ruleset(0, SCOPE_SIGNAL, &[])).expect("outer");
        let inner = Domain::stack(Some(&outer), &ruleset(FS_READ_FILE, 0, &[])).expect("inner");
        let sibling = Domain::stack(None, &ruleset(0, SCOPE_SIGNAL, &[])).expect("sibling");
        assert!(!outer.is_scoped_from(Some(&inner), SCOPE_SIGNAL), "a nested domain is within reach");
        assert!(inner.is_scoped_from(None, SCOPE_SIGNAL), "an unrestricted process is outside");
        assert!(outer.is_scoped_from(Some(&sibling), SCOPE_SIGNAL), "another domain is outside");
        assert!(!outer.is_scoped_from(None, SCOPE_ABSTRACT_UNIX_SOCKET), "only what is scoped");
        assert!(outer.encloses(Some(&inner)) && !inner.encloses(Some(&outer)) && !outer.encloses(Some(&sibling)));
    }
}
