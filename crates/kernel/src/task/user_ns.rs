//! User namespaces: what ids mean and whose capabilities count. Credentials,
//! file owners and every other id the kernel keeps are the sandbox's own (its
//! initial namespace's, Linux's kuids); a process in a namespace sees them
//! through its namespace's maps, at the system call boundary: ids without a
//! mapping show as the overflow id 65534, and naming one is EINVAL. A process's
//! capabilities count in its own namespace and the namespaces beneath it that
//! it (its effective uid) owns, as Linux's cap_capable decides.

use rvisor_abi::{consts, errno, error, SysResult};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

/// What an id without a mapping shows as (/proc/sys/kernel/overflowuid).
pub const OVERFLOW_ID: u32 = 65534;
/// The deepest a namespace may be made beneath (Linux: 33 levels below the
/// first, ENOSPC beyond).
const MAX_PARENT_LEVEL: u32 = 32;
/// Lines a map may have (UID_GID_MAP_MAX_EXTENTS).
const MAX_EXTENTS: usize = 340;

/// `count` ids from `first` in a namespace are `lower..` in the sandbox's ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extent {
    first: u32,
    lower: u32,
    count: u32,
}

/// A uid_map or gid_map once written: its extents, with the lower ids already
/// the sandbox's (Linux stores them so too).
#[derive(Clone, Debug, Default)]
struct IdMap(Vec<Extent>);

impl IdMap {
    fn down(&self, id: u32) -> Option<u32> {
        self.0.iter().find(|e| id.wrapping_sub(e.first) < e.count).map(|e| e.lower + (id - e.first))
    }

    fn up(&self, kid: u32) -> Option<u32> {
        self.0.iter().find(|e| kid.wrapping_sub(e.lower) < e.count).map(|e| e.first + (kid - e.lower))
    }
}

/// Which map a /proc/PID file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Uid,
    Gid,
}

impl std::fmt::Debug for UserNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "user:[{}]", self.id)
    }
}

pub struct UserNamespace {
    /// Its inode number in /proc/PID/ns.
    pub id: u64,
    pub parent: Option<Arc<UserNamespace>>,
    /// 0 for the sandbox's first one.
    pub level: u32,
    /// Its creator's effective uid: who holds every capability in it from outside.
    pub owner: u32,
    uid_map: OnceLock<IdMap>,
    gid_map: OnceLock<IdMap>,
    /// /proc/PID/setgroups: "deny" for good once written so (or inherited).
    setgroups_allowed: AtomicBool,
    /// Orders writing gid_map against writing setgroups. Leaf lock.
    map_writes: Mutex<()>,
}

static INITIAL: LazyLock<Arc<UserNamespace>> = LazyLock::new(|| {
    let all = IdMap(vec![Extent { first: 0, lower: 0, count: u32::MAX }]);
    Arc::new(UserNamespace {
        // Linux's number for the initial one (PROC_USER_INIT_INO).
        id: 0xEFFF_FFFD,
        parent: None,
        level: 0,
        owner: 0,
        uid_map: OnceLock::from(all.clone()),
        gid_map: OnceLock::from(all),
        setgroups_allowed: AtomicBool::new(true),
        map_writes: Mutex::new(()),
    })
});

impl UserNamespace {
    /// The sandbox's first user namespace, where every id maps to itself.
    pub fn initial() -> Arc<UserNamespace> {
        INITIAL.clone()
    }

    pub fn is_initial(&self) -> bool {
        self.parent.is_none()
    }

    /// A new namespace beneath `parent`, made by a process with effective ids
    /// `euid` and `egid`, which must have mappings there (EPERM); ENOSPC too
    /// deep. Its maps are empty until written.
    pub fn child(parent: &Arc<UserNamespace>, euid: u32, egid: u32) -> SysResult<Arc<UserNamespace>> {
        if parent.level > MAX_PARENT_LEVEL {
            return error!(ENOSPC);
        }
        if parent.uid_to_user(euid).is_none() || parent.gid_to_user(egid).is_none() {
            return error!(EPERM);
        }
        Ok(Arc::new(UserNamespace {
            id: super::namespaces::new_ns_id(),
            parent: Some(parent.clone()),
            level: parent.level + 1,
            owner: euid,
            uid_map: OnceLock::new(),
            gid_map: OnceLock::new(),
            setgroups_allowed: AtomicBool::new(parent.setgroups_allowed.load(Ordering::Relaxed)),
            map_writes: Mutex::new(()),
        }))
    }

    fn map(&self, kind: IdKind) -> Option<&IdMap> {
        match kind {
            IdKind::Uid => self.uid_map.get(),
            IdKind::Gid => self.gid_map.get(),
        }
    }

    /// The sandbox's id for this namespace's `id`, if it has one.
    pub fn to_kernel(&self, kind: IdKind, id: u32) -> Option<u32> {
        if self.is_initial() {
            return (id != u32::MAX).then_some(id);
        }
        self.map(kind)?.down(id)
    }

    /// What the sandbox's id `kid` is in this namespace, if anything.
    pub fn to_user(&self, kind: IdKind, kid: u32) -> Option<u32> {
        if self.is_initial() {
            return Some(kid);
        }
        self.map(kind)?.up(kid)
    }

    pub fn uid_to_user(&self, kuid: u32) -> Option<u32> {
        self.to_user(IdKind::Uid, kuid)
    }

    pub fn gid_to_user(&self, kgid: u32) -> Option<u32> {
        self.to_user(IdKind::Gid, kgid)
    }

    /// A uid as a process in this namespace sees it: the overflow id if unmapped.
    pub fn show_uid(&self, kuid: u32) -> u32 {
        self.uid_to_user(kuid).unwrap_or(OVERFLOW_ID)
    }

    pub fn show_gid(&self, kgid: u32) -> u32 {
        self.gid_to_user(kgid).unwrap_or(OVERFLOW_ID)
    }

    /// A uid a process in this namespace names (an argument): EINVAL if unmapped;
    /// -1 ("unchanged" to the calls that take it) stays -1.
    pub fn uid_arg(&self, uid: u32) -> SysResult<u32> {
        self.id_arg(IdKind::Uid, uid)
    }

    pub fn gid_arg(&self, gid: u32) -> SysResult<u32> {
        self.id_arg(IdKind::Gid, gid)
    }

    fn id_arg(&self, kind: IdKind, id: u32) -> SysResult<u32> {
        if id == u32::MAX {
            return Ok(id);
        }
        self.to_kernel(kind, id).ok_or_else(|| errno!(EINVAL))
    }

    /// The sandbox's uid of this namespace's root, if uid 0 is mapped: who gets
    /// every capability at exec.
    pub fn root_uid(&self) -> Option<u32> {
        self.to_kernel(IdKind::Uid, 0)
    }

    /// Whether `self` is `other` or beneath it.
    pub fn is_within(self: &Arc<Self>, other: &Arc<UserNamespace>) -> bool {
        let mut ns = self;
        loop {
            if Arc::ptr_eq(ns, other) {
                return true;
            }
            match &ns.parent {
                Some(p) => ns = p,
                None => return false,
            }
        }
    }

    /// setgroups is allowed here: the gid map is written and setgroups was
    /// not denied (Linux's userns_may_setgroups).
    pub fn may_setgroups(&self) -> bool {
        self.is_initial() || (self.gid_map.get().is_some() && self.setgroups_allowed.load(Ordering::Relaxed))
    }

    /// /proc/PID/uid_map or gid_map as a process in `reader` reads it: each
    /// line's lower ids are the reader's, or the parent's for a reader inside.
    pub fn map_text(self: &Arc<Self>, kind: IdKind, reader: &Arc<UserNamespace>) -> String {
        let Some(map) = self.map(kind) else { return String::new() };
        let lower_ns = match &self.parent {
            Some(p) if Arc::ptr_eq(reader, self) => p.clone(),
            _ => reader.clone(),
        };
        let mut out = String::new();
        for e in &map.0 {
            if let Some(lower) = lower_ns.to_user(kind, e.lower) {
                out.push_str(&format!("{:>10} {:>10} {:>10}\n", e.first, lower, e.count));
            }
        }
        out
    }

    pub fn setgroups_text(&self) -> &'static str {
        if self.setgroups_allowed.load(Ordering::Relaxed) {
            "allow\n"
        } else {
            "deny\n"
        }
    }

    /// Writes /proc/PID/setgroups: "allow" or "deny", before the gid map is
    /// written; once denied, for good.
    pub fn write_setgroups(self: &Arc<Self>, writer: &Writer, data: &[u8]) -> SysResult<()> {
        let allow = match std::str::from_utf8(data).map(str::trim_end) {
            Ok("allow") => true,
            Ok("deny") => false,
            _ => return error!(EINVAL),
        };
        if self.is_initial() || !writer.capable_in(self, consts::CAP_SYS_ADMIN) {
            return error!(EPERM);
        }
        let _order = self.map_writes.lock().unwrap_or_else(|e| e.into_inner());
        if self.gid_map.get().is_some() || (allow && !self.setgroups_allowed.load(Ordering::Relaxed)) {
            return error!(EPERM);
        }
        self.setgroups_allowed.store(allow, Ordering::Relaxed);
        Ok(())
    }

    /// Writes /proc/PID/uid_map or gid_map, once, as Linux's map_write allows:
    /// the writer in this namespace or its parent, with CAP_SYS_ADMIN here; any
    /// mapping of ids the parent maps with CAP_SETUID (CAP_SETGID) in the
    /// parent, else only the owner's own effective id, once (a gid only after
    /// setgroups is denied).
    pub fn write_map(self: &Arc<Self>, kind: IdKind, writer: &Writer, data: &[u8]) -> SysResult<()> {
        let Some(parent) = &self.parent else { return error!(EPERM) };
        if !Arc::ptr_eq(&writer.ns, self) && !Arc::ptr_eq(&writer.ns, parent) {
            return error!(EPERM);
        }
        let _order = self.map_writes.lock().unwrap_or_else(|e| e.into_inner());
        let slot = match kind {
            IdKind::Uid => &self.uid_map,
            IdKind::Gid => &self.gid_map,
        };
        if slot.get().is_some() || !writer.capable_in(self, consts::CAP_SYS_ADMIN) {
            return error!(EPERM);
        }
        let extents = parse_map(data)?;
        let (cap, own) = match kind {
            IdKind::Uid => (consts::CAP_SETUID, writer.euid),
            IdKind::Gid => (consts::CAP_SETGID, writer.egid),
        };
        let only_own = match extents.as_slice() {
            [e] => e.count == 1 && self.owner == writer.euid && parent.to_kernel(kind, e.lower) == Some(own),
            _ => false,
        };
        let permitted = (only_own && (kind == IdKind::Uid || !self.setgroups_allowed.load(Ordering::Relaxed))) || writer.capable_in(parent, cap);
        if !permitted {
            return error!(EPERM);
        }
        // Each range's lower ids, from the parent's to the sandbox's.
        let mut lowered = Vec::with_capacity(extents.len());
        for e in extents {
            let lower = parent.to_kernel(kind, e.lower).ok_or_else(|| errno!(EPERM))?;
            let last = parent.to_kernel(kind, e.lower + (e.count - 1)).ok_or_else(|| errno!(EPERM))?;
            if last.wrapping_sub(lower) != e.count - 1 {
                return error!(EPERM);
            }
            lowered.push(Extent { lower, ..e });
        }
        slot.set(IdMap(lowered)).map_err(|_| errno!(EPERM))
    }
}

/// Who writes a map or setgroups file: the credentials the checks look at.
pub struct Writer {
    pub ns: Arc<UserNamespace>,
    pub euid: u32,
    pub egid: u32,
    pub caps: u64,
}

impl Writer {
    fn capable_in(&self, target: &Arc<UserNamespace>, cap: u32) -> bool {
        capable_in(&self.ns, self.euid, self.caps, target, cap)
    }
}

/// Linux's cap_capable: whether a process in `mine` with effective uid `euid`
/// and effective capabilities `caps` holds `cap` in `target`. Its own
/// namespace: its capabilities; a namespace beneath whose creator (in `mine`)
/// it is: every capability; elsewhere none.
pub fn capable_in(mine: &Arc<UserNamespace>, euid: u32, caps: u64, target: &Arc<UserNamespace>, cap: u32) -> bool {
    let mut ns = target;
    loop {
        if Arc::ptr_eq(ns, mine) {
            return caps >> cap & 1 != 0;
        }
        if ns.level <= mine.level {
            return false;
        }
        let Some(parent) = &ns.parent else { return false };
        if Arc::ptr_eq(parent, mine) && ns.owner == euid {
            return true;
        }
        ns = parent;
    }
}

/// A map's text: lines of three numbers (first id, lower id, count), no empty
/// or overflowing range, no two overlapping, 340 lines at most.
fn parse_map(data: &[u8]) -> SysResult<Vec<Extent>> {
    let text = std::str::from_utf8(data).map_err(|_| errno!(EINVAL))?;
    let mut out: Vec<Extent> = Vec::new();
    for line in text.split('\n').filter(|l| !l.trim().is_empty()) {
        let nums: Vec<u32> = line.split_whitespace().map(|w| w.parse::<u32>().map_err(|_| errno!(EINVAL))).collect::<SysResult<_>>()?;
        let [first, lower, count] = nums[..] else { return error!(EINVAL) };
        let fits = |start: u32| start.checked_add(count - 1).is_some_and(|end| end != u32::MAX);
        if count == 0 || !fits(first) || !fits(lower) {
            return error!(EINVAL);
        }
        if out.iter().any(|e| overlap(e.first, e.count, first, count) || overlap(e.lower, e.count, lower, count)) {
            return error!(EINVAL);
        }
        out.push(Extent { first, lower, count });
        if out.len() > MAX_EXTENTS {
            return error!(EINVAL);
        }
    }
    if out.is_empty() {
        return error!(EPERM);
    }
    Ok(out)
}

/// Whether ranges `a..a+n` and `b..b+m` share an id (neither end overflows).
fn overlap(a: u32, n: u32, b: u32, m: u32) -> bool {
    u64::from(a) < u64::from(b) + u64::from(m) && u64::from(b) < u64::from(a) + u64::from(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::CAP_FULL;

    fn writer(ns: &Arc<UserNamespace>, euid: u32, caps: u64) -> Writer {
        Writer { ns: ns.clone(), euid, egid: euid, caps }
    }

    #[test]
    fn maps_translate_both_ways_and_unmapped_ids_overflow() {
        let init = UserNamespace::initial();
        let ns = UserNamespace::child(&init, 0, 0).unwrap();
        assert_eq!(ns.show_uid(0), OVERFLOW_ID);
        assert!(ns.uid_arg(0).is_err());
        ns.write_map(IdKind::Uid, &writer(&init, 0, u64::MAX), b"0 100000 10\n10 0 1\n").unwrap();
        assert_eq!(ns.show_uid(100_003), 3);
        assert_eq!(ns.show_uid(0), 10);
        assert_eq!(ns.uid_arg(9).unwrap(), 100_009);
        assert_eq!(ns.uid_arg(u32::MAX).unwrap(), u32::MAX);
        assert_eq!(ns.root_uid(), Some(100_000));
        assert_eq!(ns.map_text(IdKind::Uid, &init), "         0     100000         10\n        10          0          1\n");
        assert_eq!(ns.map_text(IdKind::Uid, &ns), ns.map_text(IdKind::Uid, &init));
        // Once only.
        assert!(ns.write_map(IdKind::Uid, &writer(&init, 0, u64::MAX), b"0 0 1").is_err());
    }

    #[test]
    fn bad_maps_are_einval() {
        for text in [&b"0 0 0"[..], b"1 2", b"0 0 1 4", b"a b c", b"4294967295 0 1", b"1 0 4294967295", b"0 10 5\n3 100 5", b"0 10 5\n100 12 5"] {
            assert_eq!(parse_map(text).unwrap_err().code, rvisor_abi::ErrnoCode::EINVAL, "{:?}", std::str::from_utf8(text));
        }
        assert_eq!(parse_map(b"\n").unwrap_err().code, rvisor_abi::ErrnoCode::EPERM);
        assert_eq!(parse_map(b"0 0 4294967295").unwrap().len(), 1);
    }

    #[test]
    fn an_unprivileged_owner_maps_only_its_own_id() {
        let init = UserNamespace::initial();
        let ns = UserNamespace::child(&init, 1000, 1000).unwrap();
        let inside = writer(&ns, 1000, CAP_FULL);
        assert!(ns.write_map(IdKind::Uid, &inside, b"0 0 1").is_err());
        assert!(ns.write_map(IdKind::Uid, &inside, b"0 1000 2").is_err());
        assert!(ns.write_map(IdKind::Gid, &inside, b"0 1000 1").is_err(), "setgroups still allowed");
        ns.write_setgroups(&inside, b"deny\n").unwrap();
        ns.write_map(IdKind::Gid, &inside, b"0 1000 1").unwrap();
        ns.write_map(IdKind::Uid, &inside, b"0 1000 1").unwrap();
        assert!(!ns.may_setgroups());
        assert!(ns.write_setgroups(&inside, b"allow").is_err());
    }

    #[test]
    fn capabilities_count_in_owned_namespaces_only() {
        let init = UserNamespace::initial();
        let a = UserNamespace::child(&init, 1000, 1000).unwrap();
        a.write_map(IdKind::Uid, &writer(&init, 0, CAP_FULL), b"0 1000 1").unwrap();
        a.write_map(IdKind::Gid, &writer(&init, 0, CAP_FULL), b"0 1000 1").unwrap();
        let b = UserNamespace::child(&a, 1000, 1000).unwrap();
        // Root outside has every capability in every namespace beneath.
        assert!(capable_in(&init, 0, CAP_FULL, &b, consts::CAP_SYS_ADMIN));
        // The owner (uid 1000 outside) has them all in what it made, with none of its own.
        assert!(capable_in(&init, 1000, 0, &a, consts::CAP_SYS_ADMIN));
        assert!(!capable_in(&init, 1001, 0, &a, consts::CAP_SYS_ADMIN));
        // A process inside has its own capabilities there, none above.
        assert!(capable_in(&a, 1000, CAP_FULL, &a, consts::CAP_SYS_ADMIN));
        assert!(!capable_in(&a, 1000, CAP_FULL, &init, consts::CAP_SYS_ADMIN));
        assert!(!capable_in(&b, 1000, CAP_FULL, &a, consts::CAP_SYS_ADMIN));
    }

    #[test]
    fn nesting_stops_after_33_levels() {
        let mut ns = UserNamespace::initial();
        for _ in 0..33 {
            let child = UserNamespace::child(&ns, 0, 0).unwrap();
            let w = writer(&child, 0, CAP_FULL);
            child.write_map(IdKind::Uid, &w, b"0 0 1").unwrap();
            child.write_setgroups(&w, b"deny").unwrap();
            child.write_map(IdKind::Gid, &w, b"0 0 1").unwrap();
            ns = child;
        }
        assert_eq!(UserNamespace::child(&ns, 0, 0).unwrap_err().code, rvisor_abi::ErrnoCode::ENOSPC);
    }
}
