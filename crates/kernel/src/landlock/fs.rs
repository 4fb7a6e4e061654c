//! File-system rights: the checks of Linux's security/landlock/fs.c, called
//! by the syscalls after their discretionary checks. Each walks from the file
//! (or the directory a name is made or removed in) up to the real root,
//! crossing mount points (a mount point's own hidden directory does not
//! count), until every layer that handles the rights asked for has granted
//! them; reaching the root first means EACCES. Files in no mount (pipes and
//! sockets through /proc, memfds) are not restricted, as Linux's internal
//! mounts are not.

use super::{Domain, Key, LayerMasks, FS_ALL, FS_EXECUTE, FS_FILE, FS_IOCTL_DEV, FS_MAKE_BLOCK, FS_MAKE_CHAR, FS_MAKE_DIR, FS_MAKE_FIFO, FS_MAKE_REG, FS_MAKE_SOCK, FS_MAKE_SYM, FS_READ_DIR, FS_READ_FILE, FS_REFER, FS_REMOVE_DIR, FS_REMOVE_FILE, FS_TRUNCATE, FS_WRITE_FILE};
use crate::vfs::inode::{OpenFlags, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFSOCK};
use crate::vfs::perm::FsCreds;
use crate::vfs::{Dentry, FileDescription};
use rvisor_abi::{error, SysResult};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// The domain of `c`, if it restricts files.
fn domain(c: &FsCreds) -> Option<&Domain> {
    c.landlock.as_deref().filter(|d| d.handled().fs != 0)
}

/// The key of the rules on `d`'s file.
fn key(d: &Dentry) -> Option<Key> {
    rule_key(d).ok()
}

/// The key a rule on `d`'s file gets.
pub fn rule_key(d: &Dentry) -> SysResult<Key> {
    d.inode.stat().map(|st| Key::Inode(st.st_dev, st.st_ino))
}

/// One step up from a dentry.
enum Up {
    To(Arc<Dentry>),
    /// The root of the mount tree (or of a mount taken off it).
    RealRoot,
    /// The top of a file system mounted nowhere (memfd's, /proc's view of pipes).
    Internal,
}

fn up(d: &Arc<Dentry>) -> Up {
    let mut at = d.clone();
    loop {
        if let Some(p) = &at.parent {
            return Up::To(p.clone());
        }
        match at.mount.upgrade() {
            None => return Up::Internal,
            Some(m) => match m.mountpoint() {
                // The mount point's directory is hidden: its parent is next.
                Some(mp) => at = mp,
                None => return Up::RealRoot,
            },
        }
    }
}

/// Linux's is_access_to_paths_allowed for one request: unmasks the layers
/// granting `request` from `start` upward.
fn walk_allowed(dom: &Domain, start: &Arc<Dentry>, request: u64, masks: &mut LayerMasks) -> bool {
    if request == 0 {
        return true;
    }
    let mut at = start.clone();
    loop {
        if dom.unmask(key(&at), request, masks) {
            return true;
        }
        at = match up(&at) {
            Up::To(d) => d,
            Up::RealRoot => return false,
            Up::Internal => return true,
        };
    }
}

/// Whether `dom` grants all of `request` on `d`.
fn allowed(dom: &Domain, d: &Arc<Dentry>, request: u64) -> bool {
    let mut masks = [0; 16];
    let request = dom.init_masks(request, false, &mut masks);
    walk_allowed(dom, d, request, &mut masks)
}

fn check(c: &FsCreds, d: &Arc<Dentry>, request: u64) -> SysResult<()> {
    match domain(c) {
        Some(dom) if !allowed(dom, d, request) => error!(EACCES),
        _ => Ok(()),
    }
}

/// The right to make a file of type `mode & S_IFMT` (0: regular).
fn make_right(mode: u32) -> u64 {
    match mode & S_IFMT {
        S_IFLNK => FS_MAKE_SYM,
        S_IFDIR => FS_MAKE_DIR,
        S_IFCHR => FS_MAKE_CHAR,
        S_IFBLK => FS_MAKE_BLOCK,
        S_IFIFO => FS_MAKE_FIFO,
        S_IFSOCK => FS_MAKE_SOCK,
        _ => FS_MAKE_REG,
    }
}

fn remove_right(d: &Dentry) -> u64 {
    if d.is_dir() { FS_REMOVE_DIR } else { FS_REMOVE_FILE }
}

/// Making a file of type `mode & S_IFMT` in `dir` (mkdir, mknod, symlink,
/// open's O_CREAT, binding a unix socket to a path).
pub fn may_make(c: &FsCreds, dir: &Arc<Dentry>, mode: u32) -> SysResult<()> {
    check(c, dir, make_right(mode))
}

/// Removing `victim` from `dir` (unlink, rmdir).
pub fn may_remove(c: &FsCreds, dir: &Arc<Dentry>, victim: &Dentry) -> SysResult<()> {
    check(c, dir, remove_right(victim))
}

/// Truncating by path (truncate, open's O_TRUNC).
pub fn may_truncate(c: &FsCreds, d: &Arc<Dentry>) -> SysResult<()> {
    check(c, d, FS_TRUNCATE)
}

/// Running `d` or loading it as a program's interpreter: opened to read and
/// execute, as Linux's open_exec.
pub fn may_execute(c: &FsCreds, d: &Arc<Dentry>) -> SysResult<()> {
    check(c, d, FS_EXECUTE | FS_READ_FILE)
}

/// Whether a thread in `dom` may change the mount tree (mount, umount,
/// pivot_root, MS_MOVE, remounts): rules follow the tree, so not in a domain
/// that restricts files.
pub fn may_change_mounts(dom: Option<&Domain>) -> bool {
    dom.is_none_or(|d| d.handled().fs == 0)
}

/// Opening `d` with `flags` (not O_PATH): EACCES unless reading (listing a
/// directory), writing and executing as asked are granted. Returns the rights
/// later calls on the open file check (truncate, device ioctls), which the
/// caller records with `opened`.
pub fn may_open(c: &FsCreds, d: &Arc<Dentry>, flags: u32, exec: bool) -> SysResult<u64> {
    let Some(dom) = domain(c) else { return Ok(FS_ALL) };
    let of = OpenFlags(flags);
    let kind = d.inode.kind();
    let mut wanted = 0;
    if flags & OpenFlags::ACCMODE != OpenFlags::WRONLY {
        wanted = if kind == S_IFDIR { FS_READ_DIR } else { FS_READ_FILE };
    }
    if of.writable() && kind != S_IFDIR {
        wanted |= FS_WRITE_FILE;
    }
    if exec {
        wanted |= FS_EXECUTE;
    }
    // Only a device's ioctls need a right.
    let device = matches!(kind, S_IFCHR | S_IFBLK);
    let full = wanted | FS_TRUNCATE | if device { FS_IOCTL_DEV } else { 0 };
    let mut masks = [0; 16];
    let request = dom.init_masks(full, false, &mut masks);
    let granted = if walk_allowed(dom, d, request, &mut masks) { full } else { super::bits(full).filter(|&b| masks[b] == 0).fold(0, |a, b| a | 1 << b) };
    if wanted & !granted != 0 {
        return error!(EACCES);
    }
    Ok(granted | if device { 0 } else { FS_IOCTL_DEV })
}

/// Open files whose open left out truncating or device ioctls, by the
/// address of their description: what later calls on them may not do (Linux
/// keeps it in the struct file). A leaf lock; `ANY_LIMITED` spares the
/// lock while it is empty.
static LIMITED: Mutex<Limited> = Mutex::new(Limited { files: None, sweep_at: 0 });
static ANY_LIMITED: AtomicBool = AtomicBool::new(false);

/// By description address: the description (to tell a reused address) and the
/// rights its open left out.
type LimitedFiles = HashMap<usize, (Weak<dyn FileDescription>, u64)>;

struct Limited {
    files: Option<LimitedFiles>,
    sweep_at: usize,
}

fn address(file: &Arc<dyn FileDescription>) -> usize {
    Arc::as_ptr(file) as *const () as usize
}

/// Records what `may_open` granted `file`.
pub fn opened(file: &Arc<dyn FileDescription>, granted: u64) {
    let denied = (FS_TRUNCATE | FS_IOCTL_DEV) & !granted;
    if denied == 0 {
        return;
    }
    let mut l = LIMITED.lock().unwrap_or_else(|e| e.into_inner());
    let Limited { files, sweep_at } = &mut *l;
    let files = files.get_or_insert_with(HashMap::new);
    if files.len() >= *sweep_at {
        files.retain(|_, (w, _)| w.strong_count() > 0);
        *sweep_at = (2 * files.len()).max(64);
    }
    files.insert(address(file), (Arc::downgrade(file), denied));
    ANY_LIMITED.store(true, Ordering::Release);
}

/// What the open of `file` left out.
fn denied(file: &Arc<dyn FileDescription>) -> u64 {
    if !ANY_LIMITED.load(Ordering::Acquire) {
        return 0;
    }
    let l = LIMITED.lock().unwrap_or_else(|e| e.into_inner());
    match l.files.as_ref().and_then(|f| f.get(&address(file))) {
        Some((w, denied)) if w.upgrade().is_some_and(|f| Arc::ptr_eq(&f, file)) => *denied,
        _ => 0,
    }
}

/// ftruncate: truncating must have been granted at open.
pub fn file_may_truncate(file: &Arc<dyn FileDescription>) -> SysResult<()> {
    if denied(file) & FS_TRUNCATE != 0 { error!(EACCES) } else { Ok(()) }
}

/// ioctl on a device: granted at open, or one of the commands fs/ioctl.c
/// answers for every file (Linux's is_masked_device_ioctl).
pub fn file_may_ioctl(file: &Arc<dyn FileDescription>, cmd: u32) -> SysResult<()> {
    const ALWAYS: [u32; 14] = [
        0x5451,     // FIOCLEX
        0x5450,     // FIONCLEX
        0x5421,     // FIONBIO
        0x5452,     // FIOASYNC
        0x5460,     // FIOQSIZE
        0xc004_5877, // FIFREEZE
        0xc004_5878, // FITHAW
        0xc020_660b, // FS_IOC_FIEMAP
        2,          // FIGETBSZ
        0x4004_9409, // FICLONE
        0x4020_940d, // FICLONERANGE
        0xc018_9436, // FIDEDUPERANGE
        0x8011_1500, // FS_IOC_GETFSUUID
        0x8081_1501, // FS_IOC_GETFSSYSFSPATH
    ];
    if denied(file) & FS_IOCTL_DEV != 0 && !ALWAYS.contains(&cmd) { error!(EACCES) } else { Ok(()) }
}

/// Linux's collect_domain_accesses: from `dir` up to `top` (the common mount's
/// root), the layers still denying each handled right. True when every
/// layer grants all of them on the way.
fn collect(dom: &Domain, top: &Arc<Dentry>, dir: &Arc<Dentry>, masks: &mut LayerMasks) -> bool {
    let all = dom.init_masks(FS_ALL, false, masks);
    let mut at = dir.clone();
    loop {
        if dom.unmask(key(&at), all, masks) {
            return true;
        }
        if Arc::ptr_eq(&at, top) {
            return false;
        }
        match &at.parent {
            Some(p) => at = p.clone(),
            None => return false,
        }
    }
}

/// Linux's no_more_access: the layers denying each right at the destination
/// include those denying it to the moved file where it was (and the other way
/// round for an exchange). Rights only directories have do not count for a file.
fn no_more_access(parent1: &LayerMasks, child1: &LayerMasks, child1_dir: bool, parent2: &LayerMasks, child2: Option<(&LayerMasks, bool)>) -> bool {
    (0..16).all(|bit| {
        let file_right = FS_FILE >> bit & 1 != 0;
        let one = !(child1_dir || file_right) || (parent1[bit] & child1[bit]) | parent2[bit] == parent2[bit];
        let two = child2.is_none_or(|(child2, dir)| !(dir || file_right) || (parent2[bit] & child2[bit]) | parent1[bit] == parent1[bit]);
        one && two
    })
}

/// The layers denying each right to `child` itself, its rule considered.
fn child_masks(dom: &Domain, child: &Dentry) -> LayerMasks {
    let mut masks = [0; 16];
    let all = dom.init_masks(FS_ALL, false, &mut masks);
    dom.unmask(key(child), all, &mut masks);
    masks
}

/// Whether a right other than FS_REFER is still denied (Linux's is_eacces).
fn is_eacces(masks: &LayerMasks, request: u64) -> bool {
    super::bits(request & !FS_REFER).any(|b| masks[b] != 0)
}

/// A link or rename of `old` (in `old_dir`) into `new_dir`, over `new` if it
/// exists (`rename`: the old name goes; `exchange`: both move). In one
/// directory only making (and removing) the names counts; moving to another
/// takes FS_REFER on both sides, and the moved file may not gain rights
/// there: EXDEV, so that a caller copies instead (Linux's
/// current_check_refer_path).
pub fn may_refer(c: &FsCreds, old_dir: &Arc<Dentry>, old: &Arc<Dentry>, new_dir: &Arc<Dentry>, new: Option<&Arc<Dentry>>, rename: bool, exchange: bool) -> SysResult<()> {
    let Some(dom) = domain(c) else { return Ok(()) };
    let mode_of = |d: &Dentry| d.inode.kind();
    let mut req1 = match (exchange, new) {
        (true, Some(n)) => make_right(mode_of(n)),
        _ => 0,
    };
    let mut req2 = make_right(mode_of(old));
    if rename {
        req1 |= remove_right(old);
        req2 |= new.map_or(0, |n| remove_right(n));
    }
    if Arc::ptr_eq(old_dir, new_dir) || crate::vfs::inode::inode_key(&old_dir.inode) == crate::vfs::inode::inode_key(&new_dir.inode) {
        return check(c, new_dir, req1 | req2);
    }
    req1 |= FS_REFER;
    req2 |= FS_REFER;
    let top = new_dir.mount.upgrade().map_or_else(|| new_dir.clone(), |m| m.root.clone());
    let old_parent = if Arc::ptr_eq(old, &top) { old } else { old_dir };
    let (mut masks1, mut masks2) = ([0; 16], [0; 16]);
    let allow1 = collect(dom, &top, old_parent, &mut masks1);
    let allow2 = collect(dom, &top, new_dir, &mut masks2);
    if allow1 && allow2 {
        return Ok(());
    }
    if paths_allowed(dom, &top, (req1, &mut masks1, old), (req2, &mut masks2), exchange.then_some(new).flatten()) {
        return Ok(());
    }
    if is_eacces(&masks1, req1) || is_eacces(&masks2, req2) { error!(EACCES) } else { error!(EXDEV) }
}

/// Linux's is_access_to_paths_allowed for a link or rename: first the domain
/// check (the destination at least as restricted as the source), then the
/// requests, walking from the common mount's root upward.
fn paths_allowed(dom: &Domain, top: &Arc<Dentry>, one: (u64, &mut LayerMasks, &Arc<Dentry>), two: (u64, &mut LayerMasks), child2: Option<&Arc<Dentry>>) -> bool {
    let (req1, masks1, child1) = one;
    let (req2, masks2) = two;
    let all_clear = |m: &LayerMasks| m.iter().all(|&x| x == 0);
    let (mut allowed1, mut allowed2) = (all_clear(masks1), all_clear(masks2));
    let handled = dom.handled().fs;
    let (mut asked1, mut asked2) = (handled, handled);
    let mut dom_check = true;
    let c1 = child_masks(dom, child1);
    let c2 = child2.map(|d| (child_masks(dom, d), d.is_dir()));
    let mut at = top.clone();
    loop {
        if dom_check && no_more_access(masks1, &c1, child1.is_dir(), masks2, c2.as_ref().map(|(m, d)| (m, *d))) {
            dom_check = false;
            (asked1, asked2) = (req1, req2);
            allowed1 = allowed1 || scope_to(req1, masks1);
            allowed2 = allowed2 || scope_to(req2, masks2);
            if allowed1 && allowed2 {
                return true;
            }
        }
        let k = key(&at);
        allowed1 = allowed1 || dom.unmask(k, asked1, masks1);
        allowed2 = allowed2 || dom.unmask(k, asked2, masks2);
        if allowed1 && allowed2 {
            return true;
        }
        at = match up(&at) {
            Up::To(d) => d,
            Up::RealRoot => return false,
            Up::Internal => return true,
        };
    }
}

/// Forgets the rights not asked for; true when nothing asked is denied.
fn scope_to(request: u64, masks: &mut LayerMasks) -> bool {
    for (bit, m) in masks.iter_mut().enumerate() {
        if request >> bit & 1 == 0 {
            *m = 0;
        }
    }
    masks.iter().all(|&m| m == 0)
}
