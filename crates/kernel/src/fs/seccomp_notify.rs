//! seccomp user notification, as Linux's kernel/seccomp.c and seccomp_unotify(2):
//! a filter installed with SECCOMP_FILTER_FLAG_NEW_LISTENER has a `Notifier`,
//! and its listener descriptor (`Listener`, "anon_inode:seccomp notify") is how a
//! supervisor hears of the calls the filter answers SECCOMP_RET_USER_NOTIF. The
//! calling task waits (`Notifier::ask`) until the supervisor takes the call
//! (SECCOMP_IOCTL_NOTIF_RECV) and answers it (SEND: a value, an error, or
//! "continue", which runs the call); ADDFD gives the caller a descriptor first.
//! A signal withdraws the call, which restarts as any interrupted call does.

use crate::mm::UserRef;
use crate::task::{Task, Thread, ThreadGroup, RLIMIT_NOFILE};
use crate::vfs::readiness::{POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::vfs::{Fd, FdTable, FileDescription, StatusFlags, WaitQueue};
use rvisor_abi::structs::{SeccompData, SeccompNotif, SeccompNotifAddfd, SeccompNotifResp};
use rvisor_abi::{errno, error, SysResult, UserAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use zerocopy::IntoBytes;

const SECCOMP_IOCTL_NOTIF_RECV: u32 = 0xc050_2100;
const SECCOMP_IOCTL_NOTIF_SEND: u32 = 0xc018_2101;
const SECCOMP_IOCTL_NOTIF_ID_VALID: u32 = 0x4008_2102;
/// ID_VALID's number before Linux 5.17, with the wrong direction; still accepted.
const SECCOMP_IOCTL_NOTIF_ID_VALID_WRONG_DIR: u32 = 0x8008_2102;
const SECCOMP_IOCTL_NOTIF_SET_FLAGS: u32 = 0x4008_2104;
/// ADDFD takes any size of its struct from the first version's on (an
/// extensible argument): only its number's type and number bits are compared.
const SECCOMP_IOCTL_NOTIF_ADDFD: u32 = 0x4018_2103;
const IOCTL_NR_MASK: u32 = 0xffff;
const ADDFD_SIZE_VER0: usize = 24;

const USER_NOTIF_FLAG_CONTINUE: u32 = 1;
const ADDFD_FLAG_SETFD: u32 = 1;
const ADDFD_FLAG_SEND: u32 = 2;
/// SET_FLAGS's only flag, a scheduling hint the Sentry has no use for.
const USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;
const O_CLOEXEC: u32 = 0o2000000;
const O_RDWR: u32 = 2;
const PAGE_SIZE: usize = 4096;

/// What the supervisor answered.
#[derive(Clone, Copy)]
pub enum Reply {
    /// The call's return value (a negative errno for an error).
    Value(u64),
    /// Run the call (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
    Continue,
}

#[derive(Clone, Copy)]
enum State {
    /// Waiting for a RECV.
    Init,
    /// Received, waiting for an answer.
    Sent,
    Replied(Reply),
}

/// A trapped call. Only its caller takes it off the list, once it wakes.
struct Notification {
    id: u64,
    thread: Arc<Thread>,
    /// The caller's process and descriptors (ADDFD installs there).
    tg: Arc<ThreadGroup>,
    fds: Arc<FdTable>,
    data: SeccompData,
    state: State,
}

struct Inner {
    next_id: u64,
    /// Oldest first: RECV hands them out in order.
    list: Vec<Notification>,
    /// The listener is closed: calls fail with ENOSYS.
    detached: bool,
    /// No task uses the filter any more: the listener hangs up.
    orphaned: bool,
}

pub struct Notifier {
    /// Taken before a caller's descriptor table (ADDFD); never held while waking,
    /// notifying or blocking.
    inner: Mutex<Inner>,
    /// The supervisors': RECV, poll and epoll wait here.
    queue: WaitQueue,
    /// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: once received, a call waits
    /// for its answer through any signal but a fatal one.
    wait_killable: bool,
}

impl Notifier {
    pub fn new(wait_killable: bool) -> Arc<Notifier> {
        // Ids start anywhere, as Linux's, so that none is guessed.
        let mut start = [0u8; 8];
        let _ = getrandom::fill(&mut start);
        Arc::new(Notifier {
            inner: Mutex::new(Inner { next_id: u64::from_ne_bytes(start), list: Vec::new(), detached: false, orphaned: false }),
            queue: WaitQueue::default(),
            wait_killable,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the listener has been closed.
    pub fn detached(&self) -> bool {
        self.lock().detached
    }

    /// The filter is gone (no task and no later filter used it): RECV fails
    /// with ENOENT instead of waiting, and poll reports POLLHUP.
    pub fn orphan(&self) {
        self.lock().orphaned = true;
        self.queue.notify_events(POLLHUP);
    }

    /// The listener closed: every call waiting for an answer fails with ENOSYS,
    /// and so will every later one.
    fn detach(&self) {
        let waiting: Vec<Arc<Thread>> = {
            let mut inner = self.lock();
            inner.detached = true;
            let enosys = Reply::Value(errno!(ENOSYS).to_return());
            inner
                .list
                .iter_mut()
                .filter(|n| !matches!(n.state, State::Replied(_)))
                .map(|n| {
                    n.state = State::Replied(enosys);
                    n.thread.clone()
                })
                .collect()
        };
        for th in waiting {
            th.waiter.wake();
        }
    }

    fn state_is(&self, id: u64, f: impl Fn(State) -> bool) -> bool {
        self.lock().list.iter().find(|n| n.id == id).is_some_and(|n| f(n.state))
    }

    fn answered(&self, id: u64) -> bool {
        self.state_is(id, |s| matches!(s, State::Replied(_)))
    }

    /// Whether the call waits killably: it has been received, under WAIT_KILLABLE_RECV.
    fn killable(&self, id: u64) -> bool {
        self.wait_killable && self.state_is(id, |s| matches!(s, State::Sent))
    }

    /// Hands the calling task's syscall to the supervisor and waits for the
    /// answer: ENOSYS once the listener is closed, ERESTARTSYS when a signal
    /// comes first (the call is withdrawn; a restart notifies anew).
    pub fn ask(&self, t: &Task, data: SeccompData) -> SysResult<Reply> {
        let id = {
            let mut inner = self.lock();
            if inner.detached {
                return error!(ENOSYS);
            }
            let id = inner.next_id;
            inner.next_id = id.wrapping_add(1);
            inner.list.push(Notification { id, thread: t.thread.clone(), tg: t.tg.clone(), fds: t.fds.clone(), data, state: State::Init });
            id
        };
        self.queue.notify_events(POLLIN | POLLRDNORM);
        let interrupted = loop {
            if self.answered(id) {
                break None;
            }
            // Each wait ends when the call moves between waiting interruptibly and killably.
            let killable = self.killable(id);
            let r = if killable {
                t.block_until_killable(|| self.answered(id) || !self.killable(id))
            } else {
                t.block_until(None, || self.answered(id) || self.killable(id))
            };
            match r {
                Err(e) if killable || !self.killable(id) => break Some(e),
                _ => {}
            }
        };
        let removed = {
            let mut inner = self.lock();
            let at = inner.list.iter().position(|n| n.id == id);
            at.map(|i| inner.list.remove(i))
        };
        match (removed.map(|n| n.state), interrupted) {
            // An answer that came with the signal still counts.
            (Some(State::Replied(reply)), _) => Ok(reply),
            (_, Some(e)) => Err(e),
            _ => error!(ENOSYS),
        }
    }

    /// SECCOMP_IOCTL_NOTIF_RECV: the oldest call not yet received, waiting for
    /// one (whatever O_NONBLOCK says, as Linux); ENOENT once the filter is gone.
    fn recv(&self, t: &Task, at: UserRef<SeccompNotif>) -> SysResult<u64> {
        // The buffer must be zeroed, so that the struct can grow.
        if t.mm.read_obj(at)?.as_bytes().iter().any(|&b| b != 0) {
            return error!(EINVAL);
        }
        let pending = |inner: &Inner| inner.list.iter().any(|n| matches!(n.state, State::Init));
        let (id, thread, data) = loop {
            self.queue.register(&t.thread);
            let r = t.block_until(None, || {
                let inner = self.lock();
                inner.orphaned || pending(&inner)
            });
            self.queue.unregister(&t.thread);
            r?;
            let mut inner = self.lock();
            let orphaned = inner.orphaned;
            match inner.list.iter_mut().find(|n| matches!(n.state, State::Init)) {
                Some(n) => {
                    n.state = State::Sent;
                    break (n.id, n.thread.clone(), n.data);
                }
                None if orphaned => return error!(ENOENT),
                // Another supervisor took it, or its caller withdrew it.
                None => {}
            }
        };
        self.queue.notify_events(POLLOUT | POLLWRNORM);
        if self.wait_killable {
            // Its caller waits killably from now on.
            thread.waiter.wake();
        }
        let notif = SeccompNotif { id, pid: t.vnr(thread.tid()) as u32, flags: 0, data };
        if let Err(e) = t.mm.write_obj(at, &notif) {
            // Back to the queue for the next RECV, as Linux does.
            let requeued = {
                let mut inner = self.lock();
                let n = inner.list.iter_mut().find(|n| n.id == id && matches!(n.state, State::Sent));
                n.map(|n| n.state = State::Init).is_some()
            };
            if requeued {
                thread.waiter.wake();
                self.queue.notify_events(POLLIN | POLLRDNORM);
            }
            return Err(e);
        }
        Ok(0)
    }

    /// SECCOMP_IOCTL_NOTIF_SEND: answers a received call, once.
    fn send(&self, t: &Task, at: UserRef<SeccompNotifResp>) -> SysResult<u64> {
        let resp = t.mm.read_obj(at)?;
        let cont = resp.flags & USER_NOTIF_FLAG_CONTINUE != 0;
        if resp.flags & !USER_NOTIF_FLAG_CONTINUE != 0 || (cont && (resp.error != 0 || resp.val != 0)) {
            return error!(EINVAL);
        }
        let reply = match (cont, resp.error) {
            (true, _) => Reply::Continue,
            (false, 0) => Reply::Value(resp.val as u64),
            (false, e) => Reply::Value(e as i64 as u64),
        };
        let thread = {
            let mut inner = self.lock();
            let n = inner.list.iter_mut().find(|n| n.id == resp.id).ok_or_else(|| errno!(ENOENT))?;
            if !matches!(n.state, State::Sent) {
                return error!(EINPROGRESS);
            }
            n.state = State::Replied(reply);
            n.thread.clone()
        };
        thread.waiter.wake();
        Ok(0)
    }

    /// SECCOMP_IOCTL_NOTIF_ID_VALID: whether `id` is a received call still waiting.
    fn id_valid(&self, t: &Task, at: UserRef<u64>) -> SysResult<u64> {
        let id = t.mm.read_obj(at)?;
        if self.state_is(id, |s| matches!(s, State::Sent)) {
            Ok(0)
        } else {
            error!(ENOENT)
        }
    }

    /// SECCOMP_IOCTL_NOTIF_ADDFD: installs one of the supervisor's descriptors in
    /// the caller's table (the lowest free one, or `newfd` with SETFD), and with
    /// SEND answers the call with its number. Linux has the caller install it
    /// while the supervisor waits; the caller is blocked either way, so the
    /// Sentry installs it at once, by the caller's RLIMIT_NOFILE.
    fn addfd(&self, t: &Task, arg: UserAddr, size: usize) -> SysResult<u64> {
        if !(ADDFD_SIZE_VER0..PAGE_SIZE).contains(&size) {
            return error!(EINVAL);
        }
        let req = t.mm.read_obj(UserRef::<SeccompNotifAddfd>::new(arg))?;
        // Linux's copy_struct_from_user: a newer struct's tail must be zero.
        if size > ADDFD_SIZE_VER0 {
            let mut tail = vec![0u8; size - ADDFD_SIZE_VER0];
            t.mm.read_bytes(arg.add(ADDFD_SIZE_VER0 as u64)?, &mut tail)?;
            if tail.iter().any(|&b| b != 0) {
                return error!(E2BIG);
            }
        }
        if req.newfd_flags & !O_CLOEXEC != 0 || req.flags & !(ADDFD_FLAG_SETFD | ADDFD_FLAG_SEND) != 0 || (req.newfd != 0 && req.flags & ADDFD_FLAG_SETFD == 0) {
            return error!(EINVAL);
        }
        let file = t.fds.get(Fd(i32::try_from(req.srcfd).map_err(|_| errno!(EBADF))?))?;
        let cloexec = req.newfd_flags & O_CLOEXEC != 0;
        let (fd, replaced, answered) = {
            let mut inner = self.lock();
            let n = inner.list.iter_mut().find(|n| n.id == req.id).ok_or_else(|| errno!(ENOENT))?;
            if !matches!(n.state, State::Sent) {
                return error!(EINPROGRESS);
            }
            let limit = n.tg.rlimit(RLIMIT_NOFILE).cur;
            let (fd, replaced) = if req.flags & ADDFD_FLAG_SETFD != 0 {
                if req.newfd as u64 >= limit || req.newfd > i32::MAX as u32 {
                    return error!(EBADF);
                }
                let fd = Fd(req.newfd as i32);
                (fd, n.fds.install_at(fd, file, cloexec).map(|old| (old, n.tg.tgid)))
            } else {
                (n.fds.install_lowest(file, 0, limit, cloexec)?, None)
            };
            let answered = (req.flags & ADDFD_FLAG_SEND != 0).then(|| {
                n.state = State::Replied(Reply::Value(fd.0 as u64));
                n.thread.clone()
            });
            (fd, replaced, answered)
        };
        // A replaced descriptor closes outside the lock: it may be a listener.
        if let Some((old, tgid)) = replaced {
            crate::syscalls::lock::release_process_locks(&t.kernel.locks, tgid, &old);
        }
        if let Some(th) = answered {
            th.waiter.wake();
        }
        Ok(fd.0 as u64)
    }
}

/// The listener descriptor seccomp(2) returns. Closing it detaches the notifier.
pub struct Listener {
    notifier: Arc<Notifier>,
    flags: StatusFlags,
}

impl Listener {
    pub fn new(notifier: Arc<Notifier>) -> Listener {
        Listener { notifier, flags: StatusFlags::new(O_RDWR) }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.notifier.detach();
    }
}

impl FileDescription for Listener {
    crate::fs::eventfd::anon_file_without_io!();

    fn ioctl(&self, t: &Task, request: u32, arg: u64) -> SysResult<u64> {
        let n = &self.notifier;
        match request {
            SECCOMP_IOCTL_NOTIF_RECV => n.recv(t, UserRef::new(UserAddr(arg))),
            SECCOMP_IOCTL_NOTIF_SEND => n.send(t, UserRef::new(UserAddr(arg))),
            SECCOMP_IOCTL_NOTIF_ID_VALID | SECCOMP_IOCTL_NOTIF_ID_VALID_WRONG_DIR => n.id_valid(t, UserRef::new(UserAddr(arg))),
            SECCOMP_IOCTL_NOTIF_SET_FLAGS if arg & !USER_NOTIF_FD_SYNC_WAKE_UP == 0 => Ok(0),
            r if r & IOCTL_NR_MASK == SECCOMP_IOCTL_NOTIF_ADDFD & IOCTL_NR_MASK => n.addfd(t, UserAddr(arg), ((r >> 16) & 0x3fff) as usize),
            _ => error!(EINVAL),
        }
    }

    fn flags(&self) -> Option<&StatusFlags> {
        Some(&self.flags)
    }

    fn readiness(&self, mask: u32) -> u32 {
        let inner = self.notifier.lock();
        let mut m = 0;
        for n in &inner.list {
            match n.state {
                State::Init => m |= POLLIN | POLLRDNORM,
                State::Sent => m |= POLLOUT | POLLWRNORM,
                State::Replied(_) => {}
            }
        }
        if inner.orphaned {
            m |= POLLHUP;
        }
        m & mask
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.notifier.queue)
    }

    fn proc_name(&self) -> Option<Vec<u8>> {
        Some(b"anon_inode:seccomp notify".to_vec())
    }
}
