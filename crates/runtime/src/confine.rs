//! What the host lets the Sentry and the gofer do beyond their filters: their
//! capabilities, and the Sentry's own namespaces (../shared/ARCHITECTURE.md, "What
//! the host sees").
//!
//! Capabilities are per thread and inherited by the threads and processes a thread
//! starts; with `no_new_privs` (set for Landlock) an `execve`, even as root, cannot
//! regain one. So the Sentry's main thread gives them up in `boot` right after it
//! starts the gofer (which keeps what serving files takes, below) and before it
//! makes anything else: the zygote and stubs, the task threads, the platform's and
//! the network stack's threads all start without. Two are kept where needed, as
//! runsc keeps them: CAP_NET_BIND_SERVICE where the app's ports are host ports
//! (host network, or the sandbox network's loopback mirror), so that an app allowed
//! a port below 1024 in the sandbox gets it on the host too; and on ptrace,
//! CAP_SYS_PTRACE, since ptrace's stubs are not dumpable (no other process of the
//! user may read or trace them) and only the capability lets the Sentry seize them.
//! Landlock's domain (landlock.rs) still confines it to tracing its own stubs.

use crate::request::Network;
use caps::{CapSet, Capability, CapsHashSet};

/// What the gofer's file operations take on files of any owner: `fchownat` to
/// the creator's ids, opening and searching what mode bits would refuse root,
/// `linkat(AT_EMPTY_PATH)`, utimes and chmod of others' files, keeping set-id bits.
const GOFER: &[Capability] = &[
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_DAC_READ_SEARCH,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
];

/// The Sentry's main thread, before it starts anything but the gofer: into new
/// mount, IPC and UTS namespaces (and a network namespace of its own with no
/// network, where no host socket is ever made), onto an empty root
/// (`empty_root`), then down to the capabilities `network` and the platform
/// need. A caller without CAP_SYS_ADMIN (not root) keeps its namespaces and root.
pub fn sentry(network: Network, platform: &str) -> Result<(), String> {
    use nix::sched::CloneFlags;
    if has(Capability::CAP_SYS_ADMIN) {
        let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
        if network == Network::None {
            flags |= CloneFlags::CLONE_NEWNET;
        }
        nix::sched::unshare(flags).map_err(|e| format!("cannot make the sandbox's namespaces: {e}"))?;
        empty_root().map_err(|e| format!("cannot leave the host's files: {e}"))?;
    }
    let mut keep = Vec::new();
    if network != Network::None {
        keep.push(Capability::CAP_NET_BIND_SERVICE);
    }
    if platform == "ptrace" {
        keep.push(Capability::CAP_SYS_PTRACE);
    }
    keep_only(&keep).map_err(|e| format!("cannot drop the Sentry's capabilities: {e}"))
}

/// Makes the root of the calling process (in a mount namespace of its own) an
/// empty, read-only tmpfs, and lets go of the host's tree, as runsc's chroot: a
/// Sentry that escaped its filter and Landlock would find no host file by name,
/// and nor would the stubs forked from it. The host's mounts are made private
/// first, so that nothing done here reaches the host. The new root is mounted on
/// /tmp, or where a host has none on /proc (which the Sentry has open already:
/// its descriptor still reaches the host's), in this namespace alone. What the
/// Sentry reads of the host later is open by now: /proc through `host_proc`'s
/// descriptor, the platform's device, the container's state file and control
/// socket, the cgroup's files.
fn empty_root() -> nix::Result<()> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let none: Option<&str> = None;
    let sealed = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)?;
    let place = ["/tmp", "/proc"].into_iter().find(|dir| std::path::Path::new(dir).is_dir()).ok_or(nix::errno::Errno::ENOENT)?;
    mount(Some("rvisor-root"), place, Some("tmpfs"), sealed, Some("mode=0555"))?;
    // runc's `pivot_root . .`: the host's root ends up on top of the new one at
    // "/", and the detach takes it away.
    nix::unistd::chdir(place)?;
    nix::unistd::pivot_root(".", ".")?;
    umount2(".", MntFlags::MNT_DETACH)?;
    nix::unistd::chdir("/")?;
    mount(none, "/", none, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | sealed, none)
}

/// The gofer process, first thing: only the file capabilities.
pub fn gofer() -> Result<(), String> {
    keep_only(GOFER).map_err(|e| format!("cannot drop the gofer's capabilities: {e}"))
}

fn has(cap: Capability) -> bool {
    caps::has_cap(None, CapSet::Effective, cap).unwrap_or(false)
}

/// Leaves this thread no capability outside `keep`, in any set, bounding and
/// ambient included (so that nothing it starts can get one back), and checks it.
fn keep_only(keep: &[Capability]) -> Result<(), String> {
    let keep: CapsHashSet = keep.iter().copied().collect();
    let err = |what: &str, e: caps::errors::CapsError| format!("{what}: {e}");
    caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
    // Dropping from the bounding set takes CAP_SETPCAP; without it the thread
    // holds nothing it could raise anyway (no_new_privs keeps execve from adding).
    if has(Capability::CAP_SETPCAP) {
        for cap in caps::all().difference(&keep) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(|e| err("bounding", e))?;
        }
    }
    for set in [CapSet::Inheritable, CapSet::Effective, CapSet::Permitted] {
        let now = caps::read(None, set).map_err(|e| err("read", e))?;
        caps::set(None, set, &now.intersection(&keep).copied().collect()).map_err(|e| err("set", e))?;
    }
    let left: CapsHashSet = caps::read(None, CapSet::Permitted).map_err(|e| err("read", e))?;
    match left.is_subset(&keep) {
        true => Ok(()),
        false => Err(format!("still holds {:?}", left.difference(&keep).collect::<Vec<_>>())),
    }
}
