//! Mount propagation, Linux's shared subtrees (Documentation/filesystems/
//! sharedsubtree.rst, fs/pnode.c): a shared mount is in a peer group, whose
//! members see each other's mounts and unmounts at the same places; a slave
//! receives them from its master group and sends none back; a private mount
//! does neither, and an unbindable one may not be bind mounted either.
//!
//! One state for the whole sandbox, as Linux's namespace_sem: a change to a
//! mount tree that may propagate holds it throughout, so that the groups it
//! reads are the ones it changes, in every namespace it reaches. Lock order:
//! this, then a namespace's tree, then a mount's and a dentry's leaf locks. It
//! is held across file-system lookups (finding a place in a peer) but never
//! across a wait on another task. Nothing that may be dropped under it takes
//! it again: a mount or a namespace that goes away leaves its groups at the
//! next `lock`, not in a `Drop`.

use super::dentry::{relative, Dentry, Mount, MountNamespace};
use super::path::{cross_down, walk};
use super::perm::FsCreds;
use super::Follow;
use rvisor_abi::{error, SysResult};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

pub const MS_UNBINDABLE: u64 = 1 << 17;
pub const MS_PRIVATE: u64 = 1 << 18;
pub const MS_SLAVE: u64 = 1 << 19;
pub const MS_SHARED: u64 = 1 << 20;
/// With a propagation type: for every mount beneath too.
pub const MS_REC: u64 = 16384;
/// The four propagation types' bits.
pub const PROPAGATION: u64 = MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED;

/// A propagation type, as mount(2) and mount_setattr name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Shared,
    Slave,
    Private,
    Unbindable,
}

impl Kind {
    /// The type `flags` names, if they are exactly one of the four bits
    /// (Linux's flags_to_propagation_type; anything else is EINVAL there).
    pub fn from_flags(flags: u64) -> Option<Kind> {
        match flags {
            MS_SHARED => Some(Kind::Shared),
            MS_SLAVE => Some(Kind::Slave),
            MS_PRIVATE => Some(Kind::Private),
            MS_UNBINDABLE => Some(Kind::Unbindable),
            _ => None,
        }
    }
}

/// How a copy of a mount takes part in propagation (Linux's clone_mnt flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloneAs {
    /// A bind mount or a namespace's copy: a peer of a shared mount, a slave
    /// of a slave's master, private (or unbindable) as a private one is.
    Same,
    /// A less privileged namespace's copy: a shared mount's copy is its
    /// slave instead of its peer (CL_SHARED_TO_SLAVE).
    SharedToSlave,
    /// A mount propagated to a slave: a slave of the original (CL_SLAVE),
    /// and, in a slave that is shared too, in a new peer group of its own
    /// (CL_MAKE_SHARED) for the slave's peers to join.
    Slave { shared: bool },
}

/// A mount's place in propagation; the default is private.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Prop {
    /// The peer group it is in: it is shared.
    group: Option<u32>,
    /// The group it receives from when it is in none (a group's members
    /// share the group's master, kept with the group).
    master: Option<u32>,
    unbindable: bool,
}

struct State {
    /// The mounts that are not private, in the order they became so, with
    /// their propagation.
    mounts: Vec<(Weak<Mount>, Prop)>,
    /// The peer groups by id (Linux's mnt_group_id: the smallest free from 1,
    /// taken when a group is made, free again when it is empty), each with
    /// the group it is a slave of.
    groups: BTreeMap<u32, Option<u32>>,
}

static STATE: Mutex<State> = Mutex::new(State { mounts: Vec::new(), groups: BTreeMap::new() });

/// The propagation state, held: see the module's notes for the lock order.
pub struct Propagation(MutexGuard<'static, State>);

/// Takes the propagation state, first letting the mounts gone since go.
pub fn lock() -> Propagation {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    state.prune();
    Propagation(state)
}

impl State {
    fn prop(&self, m: &Mount) -> Prop {
        self.mounts.iter().find(|(w, _)| std::ptr::eq(w.as_ptr(), m)).map_or_else(Prop::default, |(_, p)| *p)
    }

    fn set(&mut self, m: &Arc<Mount>, p: Prop) {
        let at = self.mounts.iter().position(|(w, _)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(m)));
        match (at, p == Prop::default()) {
            (Some(i), true) => {
                self.mounts.remove(i);
            }
            (Some(i), false) => self.mounts[i].1 = p,
            (None, false) => self.mounts.push((Arc::downgrade(m), p)),
            (None, true) => {}
        }
    }

    /// The group a mount with `p` receives from.
    fn master_of(&self, p: Prop) -> Option<u32> {
        match p.group {
            Some(g) => self.groups.get(&g).copied().flatten(),
            None => p.master,
        }
    }

    fn members(&self, g: u32) -> Vec<Arc<Mount>> {
        self.mounts.iter().filter(|(_, p)| p.group == Some(g)).filter_map(|(w, _)| w.upgrade()).collect()
    }

    /// The slaves of `g` that are in no group of their own.
    fn plain_slaves(&self, g: u32) -> Vec<Arc<Mount>> {
        self.mounts.iter().filter(|(_, p)| p.group.is_none() && p.master == Some(g)).filter_map(|(w, _)| w.upgrade()).collect()
    }

    /// The groups whose members are slaves of `g`.
    fn slave_groups(&self, g: u32) -> Vec<u32> {
        self.groups.iter().filter(|&(_, &master)| master == Some(g)).map(|(&h, _)| h).collect()
    }

    /// Every mount that receives from `g`: its members, and its slaves down
    /// every chain (Linux's propagation_next order, group by group).
    fn receivers(&self, g: u32) -> Vec<Arc<Mount>> {
        let mut out = Vec::new();
        let mut groups = VecDeque::from([g]);
        let mut seen = Vec::new();
        while let Some(g) = groups.pop_front() {
            if seen.contains(&g) {
                continue;
            }
            seen.push(g);
            out.extend(self.members(g));
            out.extend(self.plain_slaves(g));
            groups.extend(self.slave_groups(g));
        }
        out
    }

    fn new_group(&mut self, master: Option<u32>) -> u32 {
        let free = (1..).zip(self.groups.keys()).find(|&(id, &taken)| id != taken).map(|(id, _)| id);
        let id = free.unwrap_or(self.groups.len() as u32 + 1);
        self.groups.insert(id, master);
        id
    }

    /// `g` lost its last member: what received from it receives from its
    /// master instead (from nothing, if it had none: private), and its id is
    /// free again.
    fn release(&mut self, g: u32) {
        let up = self.groups.remove(&g).flatten();
        for (_, p) in &mut self.mounts {
            if p.group.is_none() && p.master == Some(g) {
                p.master = up;
            }
        }
        for master in self.groups.values_mut() {
            if *master == Some(g) {
                *master = up;
            }
        }
        self.mounts.retain(|(_, p)| *p != Prop::default());
    }

    /// Forgets the mounts that are gone, and the groups they left empty.
    fn prune(&mut self) {
        self.mounts.retain(|(w, _)| w.strong_count() > 0);
        let empty: Vec<u32> = self.groups.keys().copied().filter(|&g| !self.mounts.iter().any(|(_, p)| p.group == Some(g))).collect();
        empty.into_iter().for_each(|g| self.release(g));
    }

    /// Takes `m` out of its peer group, if it is in one (Linux's
    /// do_make_slave), and says which group it would then be a slave of: its
    /// old one if that has other members, else that group's master, to which
    /// the group's own slaves go too.
    fn leave_group(&mut self, m: &Arc<Mount>) -> Option<u32> {
        let p = self.prop(m);
        let Some(g) = p.group else { return p.master };
        self.set(m, Prop { group: None, master: None, unbindable: p.unbindable });
        if self.mounts.iter().any(|(_, q)| q.group == Some(g)) {
            return Some(g);
        }
        let up = self.groups.get(&g).copied().flatten();
        self.release(g);
        up
    }
}

impl Propagation {
    pub fn is_shared(&self, m: &Mount) -> bool {
        self.0.prop(m).group.is_some()
    }

    pub fn is_unbindable(&self, m: &Mount) -> bool {
        self.0.prop(m).unbindable
    }

    /// Gives `m` the propagation type `kind` (Linux's change_mnt_propagation):
    /// shared keeps its group or makes one (still receiving from its master,
    /// if it is a slave); slave leaves its group and receives from it (or from
    /// the group's master, if it was alone); private and unbindable leave
    /// group and master.
    pub fn change(&mut self, m: &Arc<Mount>, kind: Kind) {
        let p = self.0.prop(m);
        let new = match kind {
            Kind::Shared => match p.group {
                Some(_) => Prop { unbindable: false, ..p },
                None => Prop { group: Some(self.0.new_group(p.master)), master: None, unbindable: false },
            },
            Kind::Slave => Prop { group: None, master: self.0.leave_group(m), unbindable: p.unbindable },
            Kind::Private | Kind::Unbindable => {
                self.0.leave_group(m);
                Prop { group: None, master: None, unbindable: kind == Kind::Unbindable }
            }
        };
        self.0.set(m, new);
    }

    /// Gives `copy`, a new copy of `orig`, its place in propagation.
    pub fn clone_as(&mut self, orig: &Mount, copy: &Arc<Mount>, how: CloneAs) {
        let p = self.0.prop(orig);
        let new = match how {
            CloneAs::SharedToSlave if p.group.is_some() => Prop { group: None, master: p.group, unbindable: p.unbindable },
            CloneAs::Same | CloneAs::SharedToSlave => p,
            CloneAs::Slave { shared } => {
                let master = p.group.or(self.0.master_of(p));
                match shared {
                    true => Prop { group: Some(self.0.new_group(master)), master: None, unbindable: false },
                    false => Prop { group: None, master, unbindable: false },
                }
            }
        };
        self.0.set(copy, new);
    }

    /// A copy of the mount `source` is in, from `source`, grafted on `at` (or
    /// nowhere: a detached tree), each copy's propagation the original's as
    /// `how` says; with `recursive`, what is mounted beneath `source` in `ns`
    /// comes along, each on its place in the copy, but for unbindable mounts
    /// and what is beneath them (EPERM for one that is locked too). The tree is
    /// read whole before anything is attached, as Linux's copy_tree does, so a
    /// target beneath the source does not copy itself. A mount point the copy
    /// no longer has (its directory just went) is skipped, with what is beneath
    /// it, rather than leave the copy half made. The copy's root, and the
    /// mounts beneath it; EINVAL for a copy without its mounts that would
    /// uncover what a locked one hides.
    pub fn copy_tree(&mut self, ns: &MountNamespace, source: &Arc<Dentry>, at: Option<Arc<Dentry>>, recursive: bool, how: CloneAs) -> SysResult<(Arc<Mount>, Vec<Arc<Mount>>)> {
        let beneath = ns.beneath(source);
        if !recursive && beneath.iter().any(|(_, m)| m.is_locked()) {
            return error!(EINVAL);
        }
        let beneath = if recursive { beneath } else { Vec::new() };
        if beneath.iter().any(|(_, m)| m.is_locked() && self.is_unbindable(m)) {
            return error!(EPERM);
        }
        let copy = Mount::bind(source, at);
        if let Some(orig) = source.mount.upgrade() {
            self.clone_as(&orig, &copy, how);
        }
        let mut copies = Vec::new();
        let mut skipped: Vec<Arc<Mount>> = Vec::new();
        for (rel, m) in beneath {
            let under_skipped = m.parent().is_some_and(|p| skipped.iter().any(|s| Arc::ptr_eq(s, &p)));
            let at = match rel.is_empty() {
                _ if under_skipped || self.is_unbindable(&m) => None,
                true => Some(cross_down(copy.root.clone())),
                false => walk(&FsCreds::kernel(), &copy.root, &copy.root, &rel, Follow::No).ok(),
            };
            let Some(at) = at else {
                skipped.push(m);
                continue;
            };
            let c = Mount::bind(&m.root, Some(at));
            self.clone_as(&m, &c, how);
            copies.push(c);
        }
        Ok((copy, copies))
    }

    /// After `root` (and what is mounted beneath it in its namespace) was
    /// grafted on a mount, by a new mount, a bind, a move or the attaching of
    /// a detached tree: if that mount is shared, so is every mount of the new
    /// tree, and a copy of it is mounted at the same place in each mount that
    /// receives from it (Linux's attach_recursive_mnt and propagate_mnt): in
    /// its peers, copies that are peers of the new mounts; in its slaves,
    /// down every chain, copies that are their slaves, shared in groups of
    /// their own in a slave that is shared, whose peers then get peers of
    /// those. A receiver that does not show the place (a bind of another
    /// directory) is skipped; one with something mounted there gets the copy
    /// beneath it. The mounts made now receive nothing from this mount.
    /// ENOSPC if a receiver's namespace had no room for its copy (which it
    /// then goes without; what was made stays, where Linux would undo it).
    pub fn graft(&mut self, root: &Arc<Mount>) -> SysResult<()> {
        let (Some(dest), Some(mp), Some(ns)) = (root.parent(), root.mountpoint(), root.ns()) else { return Ok(()) };
        let Some(group) = self.0.prop(&dest).group else { return Ok(()) };
        let mut full = false;
        let tree = ns.subtree(root);
        for m in &tree {
            if !self.is_shared(m) {
                self.change(m, Kind::Shared);
            }
        }
        let path = mp.path_in_fs();
        let mut made = tree;
        let mut queue = VecDeque::from([(group, root.clone(), dest)]);
        let mut seen = Vec::new();
        while let Some((g, source, has)) = queue.pop_front() {
            // Chains of slaves never loop; a group is still visited once.
            if seen.contains(&g) {
                continue;
            }
            seen.push(g);
            let fresh = |m: &Arc<Mount>, made: &[Arc<Mount>]| !Arc::ptr_eq(m, &has) && !made.iter().any(|x| Arc::ptr_eq(x, m));
            for m in self.0.members(g) {
                if fresh(&m, &made) {
                    let copies = self.copy_into(&source, &m, &path, CloneAs::Same, &mut full);
                    made.extend(copies);
                }
            }
            for s in self.0.plain_slaves(g) {
                if fresh(&s, &made) {
                    let copies = self.copy_into(&source, &s, &path, CloneAs::Slave { shared: false }, &mut full);
                    made.extend(copies);
                }
            }
            for h in self.0.slave_groups(g) {
                // The first member of a shared slave group to get a copy
                // makes the copies' group, which its peers' copies join.
                for s in self.0.members(h) {
                    if !fresh(&s, &made) {
                        continue;
                    }
                    let copies = self.copy_into(&source, &s, &path, CloneAs::Slave { shared: true }, &mut full);
                    if let Some(first) = copies.first().cloned() {
                        made.extend(copies);
                        queue.push_back((h, first, s));
                        break;
                    }
                }
            }
        }
        if full { error!(ENOSPC) } else { Ok(()) }
    }

    /// A copy of the tree `source` is the root of, mounted in `m` at `path`
    /// (in their file system) and added to `m`'s namespace, beneath what `m`
    /// already has mounted there; none if `m` does not show that place.
    /// `full` is set, and nothing copied, when `m`'s namespace has no room.
    fn copy_into(&mut self, source: &Arc<Mount>, m: &Arc<Mount>, path: &[u8], how: CloneAs, full: &mut bool) -> Vec<Arc<Mount>> {
        let (Some(from), Some(to), Some(place)) = (source.ns(), m.ns(), place_in(m, path)) else { return Vec::new() };
        if to.room(from.subtree(source).len()).is_err() {
            *full = true;
            return Vec::new();
        }
        let over = place.mounted();
        let Ok((root, beneath)) = self.copy_tree(&from, &source.root, Some(place), true, how) else { return Vec::new() };
        if let Some(over) = over {
            to.tuck(&root, &over);
        }
        let copies: Vec<Arc<Mount>> = std::iter::once(root).chain(beneath).collect();
        copies.iter().for_each(|c| to.add(c.clone()));
        copies
    }

    /// Unmounts `m`, and what is mounted beneath it, from `ns`, together with
    /// the mounts at the same places in the mounts that receive from their
    /// parents, where nothing else is mounted on those (Linux's umount_tree
    /// with UMOUNT_PROPAGATE and propagate_umount); deepest first, so that a
    /// peer's copy whose own mounts all go goes too. What goes is private
    /// from then on.
    pub fn umount(&mut self, ns: &MountNamespace, m: &Arc<Mount>) {
        let tree = ns.subtree(m);
        for x in tree.iter().rev() {
            self.umount_propagated(x, &tree);
        }
        ns.detach(m);
        tree.iter().for_each(|x| self.change(x, Kind::Private));
    }

    /// The unmount of `x` (one of `tree`, all going) where its parent's
    /// receivers have a mount at its place.
    fn umount_propagated(&mut self, x: &Arc<Mount>, tree: &[Arc<Mount>]) {
        let (Some(parent), Some(mp)) = (x.parent(), x.mountpoint()) else { return };
        let Some(g) = self.0.prop(&parent).group else { return };
        let path = mp.path_in_fs();
        for t in self.0.receivers(g) {
            if Arc::ptr_eq(&t, &parent) {
                continue;
            }
            let Some(child) = place_in(&t, &path).and_then(|d| d.mounted()) else { continue };
            if tree.iter().any(|y| Arc::ptr_eq(y, &child)) || child.is_locked() {
                continue;
            }
            let Some(cns) = child.ns() else { continue };
            // One with a mount of its own on its root (tucked beneath it when
            // it came) goes too, that mount taking its place.
            match cns.children(&child).as_slice() {
                [] => cns.detach(&child),
                [topper] if topper.mountpoint().is_some_and(|mp| Arc::ptr_eq(&mp, &child.root)) => cns.untuck(&child, topper),
                _ => continue,
            }
            self.change(&child, Kind::Private);
        }
    }

    /// MOVE_MOUNT_SET_GROUP (Linux's do_set_group): `to`, private, joins the
    /// peer group of `from` and receives from its master. `to` must show the
    /// same file system as `from`, at or beneath `from`'s root, where `from`
    /// has no locked mount; `from` must be shared or a slave. EINVAL otherwise.
    pub fn set_group(&mut self, from: &Arc<Mount>, to: &Arc<Mount>) -> SysResult<()> {
        let (pf, pt) = (self.0.prop(from), self.0.prop(to));
        if !from.same_fs(to) || relative(&from.root_path, &to.root_path).is_none() {
            return error!(EINVAL);
        }
        let hides = |c: &Arc<Mount>| c.is_locked() && c.mountpoint().is_some_and(|mp| relative(&to.root_path, &mp.path_in_fs()).is_some());
        if from.ns().is_some_and(|ns| ns.children(from).iter().any(hides)) {
            return error!(EINVAL);
        }
        if pt.group.is_some() || pt.master.is_some() || (pf.group.is_none() && pf.master.is_none()) {
            return error!(EINVAL);
        }
        let new = match pf.group {
            Some(g) => Prop { group: Some(g), master: None, unbindable: false },
            None => Prop { group: None, master: pf.master, unbindable: pt.unbindable },
        };
        self.0.set(to, new);
        Ok(())
    }

    /// Where `m` stands in propagation, for a reader in `ns` whose root is at
    /// `root`: its peer group, the group it is a slave of, the nearest group up
    /// that chain with a member the reader sees (Linux's get_dominating_id;
    /// None if none has), and whether it is unbindable.
    pub fn info(&self, m: &Mount, ns: &Arc<MountNamespace>, root: &Arc<Dentry>) -> PropInfo {
        let p = self.0.prop(m);
        let master = self.0.master_of(p);
        let seen = |x: &Arc<Mount>| x.ns().is_some_and(|n| Arc::ptr_eq(&n, ns)) && x.root.path_from(root).is_some();
        let mut dominating = None;
        // Bounded, though chains never loop.
        let mut at = master;
        for _ in 0..=self.0.groups.len() {
            let Some(g) = at else { break };
            if self.0.members(g).iter().any(seen) {
                dominating = Some(g);
                break;
            }
            at = self.0.groups.get(&g).copied().flatten();
        }
        PropInfo { shared: p.group, master, dominating, unbindable: p.unbindable }
    }

    /// The optional fields /proc/PID/mountinfo shows for `m`, each with its
    /// leading space, in Linux's order: `shared:N`, `master:N`, then
    /// `propagate_from:N` when the master has no member the reader (in `ns`,
    /// its root at `root`) sees but a group further up the chain has, and
    /// `unbindable`.
    pub fn fields(&self, m: &Mount, ns: &Arc<MountNamespace>, root: &Arc<Dentry>) -> String {
        let info = self.info(m, ns, root);
        let mut s = String::new();
        if let Some(g) = info.shared {
            let _ = write!(s, " shared:{g}");
        }
        if let Some(master) = info.master {
            let _ = write!(s, " master:{master}");
            if let Some(g) = info.dominating.filter(|&g| g != master) {
                let _ = write!(s, " propagate_from:{g}");
            }
        }
        if info.unbindable {
            s.push_str(" unbindable");
        }
        s
    }
}

/// A mount's propagation as a reader sees it (`Propagation::info`).
pub struct PropInfo {
    pub shared: Option<u32>,
    pub master: Option<u32>,
    pub dominating: Option<u32>,
    pub unbindable: bool,
}

/// The dentry of `m` at `path` in its file system, if `m` shows it: the same
/// names looked up from its root, within `m` (not what is mounted on them).
fn place_in(m: &Arc<Mount>, path: &[u8]) -> Option<Arc<Dentry>> {
    let rel = relative(&m.root_path, path)?;
    rel.split(|&b| b == b'/').filter(|n| !n.is_empty()).try_fold(m.root.clone(), |d, name| d.child(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::tmpfs::Tmpfs;
    use crate::vfs::MountFlags;
    use crate::vfs::dentry::MOUNT_MAX;

    /// A namespace whose root is a tmpfs with the directories `dirs`, each
    /// with a bind of the root on it, in the order given.
    fn tree(dirs: &[&[u8]]) -> (Arc<MountNamespace>, Arc<Mount>, Vec<Arc<Mount>>) {
        let fs = Tmpfs::new(Arc::new(rvisor_memory::MemoryFile::new().unwrap()), 0x300);
        let root = Mount::new(crate::task::UserNamespace::initial(), fs.root(0o755), None, "tmpfs", "t", MountFlags::default());
        let ns = MountNamespace::new(root.clone());
        let binds = dirs
            .iter()
            .map(|d| {
                root.root.inode.mkdir(d, 0o755).unwrap();
                let m = Mount::bind(&root.root, Some(root.root.child(d).unwrap()));
                ns.add(m.clone());
                m
            })
            .collect();
        (ns, root, binds)
    }

    /// A namespace holds at most MOUNT_MAX mounts (Linux's fs.mount-max), so
    /// that propagation cannot multiply them without end: beyond, ENOSPC.
    #[test]
    fn a_namespace_has_room_for_mount_max() {
        let (ns, root, _) = tree(&[]);
        ns.room(MOUNT_MAX - 1).unwrap();
        assert_eq!(ns.room(MOUNT_MAX).unwrap_err().code, rvisor_abi::ErrnoCode::ENOSPC);
        for _ in 1..MOUNT_MAX {
            ns.add(Mount::bind(&root.root, None));
        }
        assert_eq!(ns.room(1).unwrap_err().code, rvisor_abi::ErrnoCode::ENOSPC);
        ns.room(0).unwrap();
        ns.unmount_all();
    }

    // One test, as the state is the whole process's: group ids are checked
    // against each other, not against fixed numbers.
    #[test]
    fn groups_masters_and_ids() {
        let (ns, a, binds) = tree(&[b"b", b"c"]);
        let (b, c) = (&binds[0], &binds[1]);
        let mut p = lock();
        p.change(&a, Kind::Shared);
        let g = p.0.prop(&a).group.unwrap();
        p.clone_as(&a, b, CloneAs::Same);
        assert_eq!(p.0.prop(b).group, Some(g));
        assert_eq!(p.fields(b, &ns, &a.root), format!(" shared:{g}"));

        // Made a slave while the group has another member: it receives from it.
        p.change(b, Kind::Slave);
        assert_eq!(p.0.prop(b), Prop { group: None, master: Some(g), unbindable: false });
        assert_eq!(p.fields(b, &ns, &a.root), format!(" master:{g}"));
        // Shared too: a group of its own, which receives from `g`.
        p.change(b, Kind::Shared);
        let h = p.0.prop(b).group.unwrap();
        assert_ne!(h, g);
        assert_eq!(p.fields(b, &ns, &a.root), format!(" shared:{h} master:{g}"));
        // A copy propagated into it: a slave of the original, in a new group.
        p.clone_as(b, c, CloneAs::Slave { shared: true });
        let k = p.0.prop(c).group.unwrap();
        assert_eq!(p.0.groups.get(&k), Some(&Some(h)));

        // `g` loses its last member: what received from it receives from
        // nothing, and its id is the next one given.
        p.change(&a, Kind::Unbindable);
        assert!(!p.0.groups.contains_key(&g));
        assert_eq!(p.0.groups.get(&h), Some(&None));
        assert_eq!(p.fields(&a, &ns, &a.root), " unbindable");
        p.change(&a, Kind::Shared);
        assert_eq!(p.0.prop(&a).group, Some(g));

        // Alone in its group and with no master, made a slave: private.
        p.change(&a, Kind::Slave);
        assert_eq!(p.0.prop(&a), Prop::default());
        // The last member of `h` leaves: `h`'s receivers take its master (none).
        p.change(b, Kind::Private);
        assert_eq!(p.0.prop(c).group, Some(k));
        assert_eq!(p.0.groups.get(&k), Some(&None));
        p.change(c, Kind::Private);
        assert!(p.0.mounts.iter().all(|(w, _)| ![&a, b, c].iter().any(|m| std::ptr::eq(w.as_ptr(), Arc::as_ptr(m)))));
        drop(p);
        ns.unmount_all();
    }
}
