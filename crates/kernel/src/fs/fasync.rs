//! Signal-driven I/O, Linux's fasync: a description with O_ASYNC signals its owner
//! (F_SETOWN, F_SETOWN_EX: a process, a process group or a thread) when I/O becomes
//! possible on it, with SIGIO or the signal F_SETSIG names (then with si_code
//! POLL_IN, POLL_OUT..., si_band and si_fd, and queued if real-time).
//!
//! Linux keeps this in the struct file; here it is a side table keyed by the
//! description, since every kind of file would otherwise carry it. O_ASYNC puts a
//! callback on the file's wait queue, which hears of each change with the events
//! that may have changed, as Linux's kill_fasync calls come from the places that
//! wake readers and writers. Files without a wait queue (regular files) never
//! signal, as on Linux, where they have no fasync; but lease breaks and dnotify
//! signal the same owner (`send_msg`).

use crate::task::signals::{process_group, send_to_group, send_to_thread, SigInfo};
use crate::task::{PidNamespace, Task, Thread, ThreadGroup};
use crate::vfs::readiness::{POLLERR, POLLHUP, POLLIN, POLLMSG, POLLOUT, POLLPRI, POLLRDBAND, POLLRDNORM, POLLWRBAND, POLLWRNORM};
use crate::vfs::{FileDescription, WaitCallback};
use rvisor_abi::{consts, errno, SysResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

pub const F_OWNER_TID: i32 = 0;
pub const F_OWNER_PID: i32 = 1;
pub const F_OWNER_PGRP: i32 = 2;

/// si_code of SIGPOLL-style signals, and the band each reports (Linux's band_table).
const POLL_IN: (i32, u32) = (1, POLLIN | POLLRDNORM);
const POLL_OUT: (i32, u32) = (2, POLLOUT | POLLWRNORM | POLLWRBAND);
const POLL_MSG: (i32, u32) = (3, POLLIN | POLLRDNORM | POLLMSG);
const POLL_ERR: (i32, u32) = (4, POLLERR);
const POLL_PRI: (i32, u32) = (5, POLLPRI | POLLRDBAND);
const POLL_HUP: (i32, u32) = (6, POLLHUP | POLLERR);

/// Who gets the signals, as F_SETOWN's caller named them.
#[derive(Clone)]
enum Target {
    Thread(Weak<Thread>),
    Process(Weak<ThreadGroup>),
    Group(Arc<PidNamespace>, i32),
}

#[derive(Clone)]
struct Owner {
    target: Target,
    /// F_OWNER_* and the id in the setter's PID namespace (what F_GETOWN_EX says).
    kind: i32,
    id: i32,
    /// The setter's uid and euid, which must match the target's (Linux's sigio_perm).
    uid: u32,
    euid: u32,
}

#[derive(Default)]
struct Async {
    owner: Option<Owner>,
    /// F_SETSIG's signal; 0 for plain SIGIO.
    signal: u32,
    /// Registered on the file's wait queue while O_ASYNC is set, with the
    /// descriptor number that set it (si_fd).
    notifier: Option<Arc<Notifier>>,
}

struct Entry {
    file: Weak<dyn FileDescription>,
    state: Async,
}

/// Per description; a leaf lock, never held while a signal is sent.
static TABLE: Mutex<Option<HashMap<usize, Entry>>> = Mutex::new(None);

fn key(file: &Arc<dyn FileDescription>) -> usize {
    Arc::as_ptr(file) as *const () as usize
}

fn table() -> MutexGuard<'static, Option<HashMap<usize, Entry>>> {
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on the description's state, made afresh if none (or a dead one's).
fn with_state<R>(file: &Arc<dyn FileDescription>, f: impl FnOnce(&mut Async) -> R) -> R {
    let mut t = table();
    let map = t.get_or_insert_with(HashMap::new);
    // Descriptions that went away leave their entries: drop them now and then.
    if map.len() > 64 && map.len().is_power_of_two() {
        map.retain(|_, e| e.file.strong_count() > 0);
    }
    let e = map.entry(key(file)).or_insert_with(|| Entry { file: Arc::downgrade(file), state: Async::default() });
    if !e.file.ptr_eq(&Arc::downgrade(file)) || e.file.strong_count() == 0 {
        *e = Entry { file: Arc::downgrade(file), state: Async::default() };
    }
    f(&mut e.state)
}

/// The state of `file` if it has any, for reading.
fn read_state<R>(file: &Arc<dyn FileDescription>, f: impl FnOnce(&Async) -> R) -> Option<R> {
    let t = table();
    let e = t.as_ref()?.get(&key(file))?;
    e.file.ptr_eq(&Arc::downgrade(file)).then(|| f(&e.state))
}

/// F_SETOWN / F_SETOWN_EX: `id` 0 stops signals; otherwise the process, process
/// group or thread `id` names in the caller's PID namespace (ESRCH if none).
pub fn set_owner(t: &Task, file: &Arc<dyn FileDescription>, kind: i32, id: i32) -> SysResult<()> {
    if !matches!(kind, F_OWNER_TID | F_OWNER_PID | F_OWNER_PGRP) {
        return Err(errno!(EINVAL));
    }
    if id < 0 {
        return Err(errno!(ESRCH));
    }
    let target = match kind {
        _ if id == 0 => None,
        F_OWNER_TID => Some(Target::Thread(Arc::downgrade(&t.pid_ns().thread(id).ok_or_else(|| errno!(ESRCH))?))),
        // A process named by any of its threads' ids, as kill does.
        F_OWNER_PID => {
            let g = t.pid_ns().group(id).or_else(|| t.pid_ns().thread(id).map(|th| th.tg.clone())).ok_or_else(|| errno!(ESRCH))?;
            Some(Target::Process(Arc::downgrade(&g)))
        }
        F_OWNER_PGRP => {
            let pgid = t.pid_ns().table_id(id).ok_or_else(|| errno!(ESRCH))?;
            if process_group(t.pid_ns(), pgid).is_empty() {
                return Err(errno!(ESRCH));
            }
            Some(Target::Group(t.pid_ns().clone(), pgid))
        }
        _ => return Err(errno!(EINVAL)),
    };
    let c = t.tg.creds();
    let owner = target.map(|target| Owner { target, kind, id, uid: c.uid, euid: c.euid });
    with_state(file, |s| s.owner = owner);
    Ok(())
}

/// F_GETOWN_EX: (F_OWNER_*, id); (F_OWNER_PID, 0) when there is none.
pub fn owner(file: &Arc<dyn FileDescription>) -> (i32, i32) {
    read_state(file, |s| s.owner.as_ref().map(|o| (o.kind, o.id))).flatten().unwrap_or((F_OWNER_PID, 0))
}

/// F_SETSIG: 0 (SIGIO, without details) or a signal number.
pub fn set_signal(file: &Arc<dyn FileDescription>, signo: u64) -> SysResult<()> {
    if signo > 64 {
        return Err(errno!(EINVAL));
    }
    with_state(file, |s| s.signal = signo as u32);
    Ok(())
}

pub fn signal(file: &Arc<dyn FileDescription>) -> u32 {
    read_state(file, |s| s.signal).unwrap_or(0)
}

/// F_SETFL changed O_ASYNC to `on`: starts or stops listening to the file's wait
/// queue; `fd` is what the signals' si_fd will say.
pub fn set_async(file: &Arc<dyn FileDescription>, fd: i32, on: bool) {
    let Some(queue) = file.wait_queue() else { return };
    let (old, new) = with_state(file, |s| {
        let old = s.notifier.take();
        if on {
            s.notifier = Some(Arc::new(Notifier { file: Arc::downgrade(file), fd }));
        }
        (old, s.notifier.clone())
    });
    if let Some(old) = old {
        queue.unregister_callback(&(old as Arc<dyn WaitCallback>));
    }
    if let Some(new) = new {
        queue.register_callback(new);
    }
}

struct Notifier {
    file: Weak<dyn FileDescription>,
    fd: i32,
}

impl WaitCallback for Notifier {
    /// Its description was closed (Linux's fasync_helper runs at the last fput;
    /// here the queue drops it later).
    fn is_dead(&self) -> bool {
        self.file.strong_count() == 0
    }

    fn wake(self: Arc<Self>, events: u32) {
        let Some(file) = self.file.upgrade() else { return };
        let ready = file.readiness(events);
        let Some((code, band)) = [(POLLIN, POLL_IN), (POLLOUT, POLL_OUT), (POLLHUP, POLL_HUP), (POLLERR, POLL_ERR), (POLLPRI, POLL_PRI)]
            .into_iter()
            .find(|&(e, _)| ready & e != 0)
            .map(|(_, r)| r)
        else {
            return;
        };
        send(&file, self.fd, (code, band));
    }
}

/// Signals `file`'s owner for `reason` (si_code and band) with `fd` as si_fd
/// (Linux's send_sigio): SIGIO without details, or the F_SETSIG signal with them.
fn send(file: &Arc<dyn FileDescription>, fd: i32, (code, band): (i32, u32)) {
    let Some((owner, signo)) = read_state(file, |s| s.owner.clone().map(|o| (o, s.signal))).flatten() else { return };
    let info = match signo {
        0 => SigInfo::new(consts::SIGIO, SI_KERNEL),
        s => SigInfo::new(s, code).with_poll(band, fd),
    };
    deliver(&owner, info);
}

/// Urgent data arrived on socket `file`: SIGURG to its owner, if it has
/// one, with or without O_ASYNC (Linux's sk_send_sigurg).
pub fn send_sigurg(file: &Arc<dyn FileDescription>) {
    if let Some(owner) = read_state(file, |s| s.owner.clone()).flatten() {
        deliver(&owner, SigInfo::new(consts::SIGURG, SI_KERNEL));
    }
}

/// Sends `info` to `owner`'s target, to those processes its setter may
/// signal (Linux's sigio_perm).
fn deliver(owner: &Owner, info: SigInfo) {
    let allowed = |g: &ThreadGroup| {
        let c = g.creds();
        owner.euid == 0 || [owner.euid, owner.uid].iter().any(|&u| u == c.suid || u == c.uid)
    };
    match &owner.target {
        Target::Thread(th) => {
            if let Some(th) = th.upgrade().filter(|th| allowed(&th.tg)) {
                send_to_thread(&th, info);
            }
        }
        Target::Process(g) => {
            if let Some(g) = g.upgrade().filter(|g| allowed(g)) {
                send_to_group(&g, info);
            }
        }
        Target::Group(pid_ns, pgid) => {
            for g in process_group(pid_ns, *pgid).into_iter().filter(|g| allowed(g)) {
                send_to_group(&g, info);
            }
        }
    }
}

/// A lease break or a directory change for `file`, whose descriptor `fd` set it
/// up: POLL_MSG to its owner, whether or not it has O_ASYNC (Linux's
/// kill_fasync from lease_break_callback and dnotify).
pub fn send_msg(file: &Arc<dyn FileDescription>, fd: i32) {
    send(file, fd, POLL_MSG);
}

/// F_SETLEASE F_UNLCK forgets the owner and the signal (Linux's lease_modify).
pub fn clear_owner(file: &Arc<dyn FileDescription>) {
    with_state(file, |s| {
        s.owner = None;
        s.signal = 0;
    });
}

/// F_SETLEASE and F_NOTIFY make the caller's process the owner (Linux's
/// __f_setown with PIDTYPE_TGID).
pub fn own(t: &Task, file: &Arc<dyn FileDescription>) -> SysResult<()> {
    set_owner(t, file, F_OWNER_PID, t.vnr(t.tg.tgid))
}

/// si_code of a signal the kernel sends without details.
const SI_KERNEL: i32 = 0x80;
