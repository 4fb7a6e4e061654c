//! The Sentry's side: a typed call per operation.

use crate::protocol::*;
use nix::errno::Errno;
use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags};
use rvisor_abi::structs::Stat;
use rvisor_abi::ErrnoCode;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The result of a walk: a node per component walked, and how the walk ended.
#[derive(Clone, Debug)]
pub struct Walked {
    pub nodes: Vec<NodeInfo>,
    pub end: WalkEnd,
}

/// One batch of a directory listing.
#[derive(Clone, Debug)]
pub struct Dirents {
    pub entries: Vec<Dirent>,
    /// The listing ended within this batch.
    pub eof: bool,
}

struct Conn {
    sock: OwnedFd,
    /// The request being sent.
    out: Vec<u8>,
    /// The response received: always `MAX_MESSAGE` long.
    inb: Box<[u8]>,
    /// A transport failure left the connection out of step: every later call fails.
    broken: bool,
}

/// A connection to a gofer, for one of the roots it serves ([`ROOT`] names that
/// root). Calls are serialized on one socket (the server answers in order anyway);
/// [`Client::connect`] and [`Client::connect_root`] open another connection to the
/// same server and node table.
///
/// Every method returns the host's errno for a failed operation, and `EIO` when the
/// gofer is gone or answered nonsense.
pub struct Client {
    conn: Mutex<Conn>,
    /// Nodes given up with `forget`, not yet closed: closed in batches, since a walk of
    /// a large tree gives up a node for every one it takes.
    forgotten: Mutex<Vec<NodeId>>,
    /// The index of the root this connection is for.
    root: u32,
    /// Called when a connection to this gofer breaks (shared by every connection
    /// made from this one).
    lost: Arc<OnceLock<LostHook>>,
}

type LostHook = Box<dyn Fn() + Send + Sync>;

/// How many forgotten nodes are closed at once.
const FORGET_BATCH: usize = 64;

/// How long a caller polls for the gofer's answer before it sleeps. The answer
/// usually comes within tens of microseconds; a caller that slept would leave its
/// CPU idle, and on a virtual machine waking an idle CPU costs about as much again.
const REPLY_SPIN: Duration = Duration::from_micros(60);

/// Receives a response into `buf`: its length and at most one descriptor.
fn recv(sock: RawFd, buf: &mut [u8]) -> Result<(usize, Option<OwnedFd>), ErrnoCode> {
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let spin_until = Instant::now() + REPLY_SPIN;
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        let wait = if Instant::now() < spin_until { MsgFlags::MSG_DONTWAIT } else { MsgFlags::empty() };
        let msg = match socket::recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC | wait) {
            Ok(m) => m,
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(_) => return Err(ErrnoCode::EIO),
        };
        // Take ownership of every descriptor first, so none leaks on an error below.
        let mut fds = Vec::new();
        let mut ctrunc = false;
        match msg.cmsgs() {
            Ok(cmsgs) => {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        for fd in raw {
                            // SAFETY: SCM_RIGHTS just installed `fd` in this process for
                            // us; nothing else refers to it.
                            fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                        }
                    }
                }
            }
            Err(_) => ctrunc = true,
        }
        let n = msg.bytes;
        if n == 0 || ctrunc || msg.flags.contains(MsgFlags::MSG_TRUNC) || fds.len() > 1 {
            return Err(ErrnoCode::EIO);
        }
        return Ok((n, fds.pop()));
    }
}

impl Client {
    /// A client on one end of a `SOCK_SEQPACKET` pair whose other end a server serves
    /// for its first root.
    pub fn new(sock: OwnedFd) -> Client {
        Client::for_root(sock, 0, Arc::default())
    }

    fn for_root(sock: OwnedFd, root: u32, lost: Arc<OnceLock<LostHook>>) -> Client {
        let conn = Conn { sock, out: Vec::with_capacity(MAX_MESSAGE), inb: vec![0; MAX_MESSAGE].into(), broken: false };
        Client { conn: Mutex::new(conn), forgotten: Mutex::default(), root, lost }
    }

    /// Has `hook` called, before the failing call returns `EIO`, when a connection
    /// to this gofer (this one or any made from it) breaks: the gofer died or
    /// answered nonsense. Only the first hook set counts.
    pub fn on_lost(&self, hook: impl Fn() + Send + Sync + 'static) {
        let _ = self.lost.set(Box::new(hook));
    }

    fn broke(&self, conn: &mut Conn) {
        conn.broken = true;
        if let Some(hook) = self.lost.get() {
            hook();
        }
    }

    /// Sends `req` and waits for its answer. An `Error` answer becomes `Err`.
    fn call(&self, req: &Request) -> Result<(Response, Option<OwnedFd>), ErrnoCode> {
        self.call_passing(req, None)
    }

    /// `call`, with a descriptor for the gofer.
    fn call_passing(&self, req: &Request, passed: Option<BorrowedFd<'_>>) -> Result<(Response, Option<OwnedFd>), ErrnoCode> {
        // A panic while holding the lock may have left a response unread: treat the
        // connection as broken rather than reading someone else's answer.
        let mut guard = self.conn.lock().map_err(|_| ErrnoCode::EIO)?;
        let conn = &mut *guard;
        if conn.broken {
            return Err(ErrnoCode::EIO);
        }
        conn.out.clear();
        req.encode(&mut conn.out);
        if conn.out.len() > MAX_MESSAGE {
            return Err(ErrnoCode::ENAMETOOLONG);
        }
        let sock = conn.sock.as_raw_fd();
        let raw = passed.map(|fd| [fd.as_raw_fd()]);
        let rights = raw.as_ref().map(|r| [ControlMessage::ScmRights(r)]);
        let cmsgs: &[ControlMessage<'_>] = rights.as_ref().map_or(&[], |r| r.as_slice());
        let sent = loop {
            match socket::sendmsg::<()>(sock, &[IoSlice::new(&conn.out)], cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
                Err(Errno::EINTR) => continue,
                r => break r,
            }
        };
        let got = sent.map_err(|_| ErrnoCode::EIO).and_then(|_| recv(sock, &mut conn.inb));
        let (n, fd) = match got {
            Ok(v) => v,
            Err(e) => {
                self.broke(conn);
                return Err(e);
            }
        };
        match Response::decode(&conn.inb[..n]) {
            Ok(Response::Error { errno }) => Err(errno),
            Ok(r) => Ok((r, fd)),
            Err(_) => {
                self.broke(conn);
                Err(ErrnoCode::EIO)
            }
        }
    }

    /// `call` for an answer without a descriptor.
    fn call_plain(&self, req: &Request) -> Result<Response, ErrnoCode> {
        match self.call(req)? {
            (r, None) => Ok(r),
            (_, Some(_)) => Err(ErrnoCode::EIO),
        }
    }

    /// `call` for an answer that must carry a descriptor.
    fn call_fd(&self, req: &Request) -> Result<(Response, OwnedFd), ErrnoCode> {
        match self.call(req)? {
            (r, Some(fd)) => Ok((r, fd)),
            (_, None) => Err(ErrnoCode::EIO),
        }
    }

    fn expect_ok(&self, req: &Request) -> Result<(), ErrnoCode> {
        match self.call_plain(req)? {
            Response::Ok {} => Ok(()),
            _ => Err(ErrnoCode::EIO),
        }
    }

    fn expect_node(&self, req: &Request) -> Result<NodeInfo, ErrnoCode> {
        match self.call_plain(req)? {
            Response::Node { node } => Ok(node),
            _ => Err(ErrnoCode::EIO),
        }
    }

    fn expect_attr(&self, req: &Request) -> Result<Stat, ErrnoCode> {
        match self.call_plain(req)? {
            Response::Attr { stat } => Ok(stat),
            _ => Err(ErrnoCode::EIO),
        }
    }

    /// Walks `names` from `dir`, one component at a time, returning a new node for
    /// each component walked. The walk stops at the first component that fails
    /// ([`WalkEnd::Error`]) and after a symlink that more components follow
    /// ([`WalkEnd::Symlink`]). Every returned node must be [`close`](Self::close)d.
    pub fn walk(&self, dir: NodeId, names: &[&[u8]]) -> Result<Walked, ErrnoCode> {
        let mut walked = Walked { nodes: Vec::new(), end: WalkEnd::Complete };
        let mut from = dir;
        let mut done = 0;
        // At most MAX_WALK components a message; an empty walk is one call too.
        loop {
            let chunk = &names[done..(done + MAX_WALK).min(names.len())];
            let req = Request::Walk { dir: from, names: chunk.iter().map(|n| n.to_vec()).collect() };
            let (nodes, end) = match self.call_plain(&req) {
                Ok(Response::Walked { nodes, end }) => (nodes, end),
                Ok(_) => Err(ErrnoCode::EIO)?,
                Err(e) => {
                    // Later chunks: don't leak the nodes already walked.
                    let _ = self.close(&walked.nodes.iter().map(|n| n.id).collect::<Vec<_>>());
                    return Err(e);
                }
            };
            let offset = done as u32;
            walked.end = match end {
                WalkEnd::Complete => WalkEnd::Complete,
                WalkEnd::Symlink { index } => WalkEnd::Symlink { index: index + offset },
                WalkEnd::Error { index, errno } => WalkEnd::Error { index: index + offset, errno },
            };
            walked.nodes.extend(nodes);
            done += chunk.len();
            if walked.end != WalkEnd::Complete || done == names.len() {
                return Ok(walked);
            }
            from = walked.nodes.last().expect("a complete chunk returns nodes").id;
        }
    }

    pub fn stat(&self, node: NodeId) -> Result<Stat, ErrnoCode> {
        self.expect_attr(&Request::Stat { node })
    }

    /// Opens the file of `node`: `flags` is `O_RDONLY`, `O_WRONLY` or `O_RDWR`, with
    /// `O_TRUNC`, `O_APPEND`, `O_DIRECTORY`, `O_DSYNC`, `O_SYNC`; other bits are
    /// ignored. The Sentry then reads and writes the descriptor itself.
    pub fn open(&self, node: NodeId, flags: i32) -> Result<OwnedFd, ErrnoCode> {
        match self.call_fd(&Request::Open { node, flags: flags as u32 })? {
            (Response::Ok {}, fd) => Ok(fd),
            _ => Err(ErrnoCode::EIO),
        }
    }

    /// Opens the regular file `name` in `dir` for reading, without making a node.
    pub fn open_file(&self, dir: NodeId, name: &[u8]) -> Result<OwnedFd, ErrnoCode> {
        match self.call_fd(&Request::OpenFile { dir, name: name.to_vec() })? {
            (Response::Ok {}, fd) => Ok(fd),
            _ => Err(ErrnoCode::EIO),
        }
    }

    /// Creates the regular file `name` in `dir` (`O_CREAT | O_EXCL`) and opens it with
    /// `flags` (as for [`open`](Self::open)). `mode` is final: apply the umask first.
    pub fn create(
        &self,
        dir: NodeId,
        name: &[u8],
        flags: i32,
        mode: u32,
        owner: Option<Owner>,
    ) -> Result<(NodeInfo, OwnedFd), ErrnoCode> {
        let req = Request::Create { dir, name: name.to_vec(), flags: flags as u32, mode, owner };
        match self.call_fd(&req)? {
            (Response::Node { node }, fd) => Ok((node, fd)),
            _ => Err(ErrnoCode::EIO),
        }
    }

    pub fn mkdir(&self, dir: NodeId, name: &[u8], mode: u32, owner: Option<Owner>) -> Result<NodeInfo, ErrnoCode> {
        self.expect_node(&Request::Mkdir { dir, name: name.to_vec(), mode, owner })
    }

    /// Removes the non-directory `name` from `dir`.
    pub fn unlink(&self, dir: NodeId, name: &[u8]) -> Result<(), ErrnoCode> {
        self.expect_ok(&Request::Unlink { dir, name: name.to_vec(), rmdir: false })
    }

    /// Removes the empty directory `name` from `dir`.
    pub fn rmdir(&self, dir: NodeId, name: &[u8]) -> Result<(), ErrnoCode> {
        self.expect_ok(&Request::Unlink { dir, name: name.to_vec(), rmdir: true })
    }

    /// `renameat2`; `flags` is 0, `RENAME_NOREPLACE` or `RENAME_EXCHANGE`.
    pub fn rename(
        &self,
        old_dir: NodeId,
        old_name: &[u8],
        new_dir: NodeId,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), ErrnoCode> {
        self.expect_ok(&Request::Rename {
            old_dir,
            old_name: old_name.to_vec(),
            new_dir,
            new_name: new_name.to_vec(),
            flags,
        })
    }

    /// Lists `dir` from `cookie` (0 for the start; else an entry's `cookie`), in
    /// about `max_bytes` of entries (capped by the message size).
    pub fn readdir(&self, dir: NodeId, cookie: u64, max_bytes: u32) -> Result<Dirents, ErrnoCode> {
        match self.call_plain(&Request::Readdir { dir, cookie, max_bytes })? {
            Response::Dirents { entries, eof } => Ok(Dirents { entries, eof }),
            _ => Err(ErrnoCode::EIO),
        }
    }

    /// The whole listing of `dir`, in as many round trips as it takes.
    pub fn readdir_all(&self, dir: NodeId) -> Result<Vec<Dirent>, ErrnoCode> {
        let mut all = Vec::new();
        let mut cookie = 0;
        loop {
            let batch = self.readdir(dir, cookie, MAX_MESSAGE as u32)?;
            if let Some(last) = batch.entries.last() {
                cookie = last.cookie;
            }
            let done = batch.eof || batch.entries.is_empty();
            all.extend(batch.entries);
            if done {
                return Ok(all);
            }
        }
    }

    /// The target of the symlink `node`, as stored (the gofer never follows it).
    pub fn readlink(&self, node: NodeId) -> Result<Vec<u8>, ErrnoCode> {
        match self.call_plain(&Request::Readlink { node })? {
            Response::Target { target } => Ok(target),
            _ => Err(ErrnoCode::EIO),
        }
    }

    pub fn symlink(
        &self,
        dir: NodeId,
        name: &[u8],
        target: &[u8],
        owner: Option<Owner>,
    ) -> Result<NodeInfo, ErrnoCode> {
        self.expect_node(&Request::Symlink { dir, name: name.to_vec(), target: target.to_vec(), owner })
    }

    /// A FIFO or socket node `name` in `dir` (`mode` has its type).
    pub fn mknod(&self, dir: NodeId, name: &[u8], mode: u32, owner: Option<Owner>) -> Result<NodeInfo, ErrnoCode> {
        self.expect_node(&Request::Mknod { dir, name: name.to_vec(), mode, owner })
    }

    /// A new hard link `name` in `dir` to the file of `target`.
    pub fn link(&self, dir: NodeId, name: &[u8], target: NodeId) -> Result<NodeInfo, ErrnoCode> {
        self.expect_node(&Request::Link { dir, name: name.to_vec(), target })
    }

    /// The value of the extended attribute `name` (`user.x`) of `node`.
    pub fn getxattr(&self, node: NodeId, name: &[u8]) -> Result<Vec<u8>, ErrnoCode> {
        match self.call_plain(&Request::GetXattr { node, name: name.to_vec() })? {
            Response::Xattr { value } => Ok(value),
            _ => Err(ErrnoCode::EIO),
        }
    }

    /// Sets a `user.` attribute; `flags`: `XATTR_CREATE`, `XATTR_REPLACE`.
    pub fn setxattr(&self, node: NodeId, name: &[u8], value: &[u8], flags: u32) -> Result<(), ErrnoCode> {
        self.expect_ok(&Request::SetXattr { node, name: name.to_vec(), value: value.to_vec(), flags })
    }

    /// The names of `node`'s extended attributes the sandbox may see.
    pub fn listxattr(&self, node: NodeId) -> Result<Vec<Vec<u8>>, ErrnoCode> {
        match self.call_plain(&Request::ListXattr { node })? {
            Response::Names { names } => Ok(names),
            _ => Err(ErrnoCode::EIO),
        }
    }

    pub fn removexattr(&self, node: NodeId, name: &[u8]) -> Result<(), ErrnoCode> {
        self.expect_ok(&Request::RemoveXattr { node, name: name.to_vec() })
    }

    /// Changes attributes; returns them as they are afterwards.
    pub fn setattr(&self, node: NodeId, attr: &SetAttr) -> Result<Stat, ErrnoCode> {
        self.expect_attr(&Request::SetAttr { node, attr: attr.clone() })
    }

    pub fn statfs(&self, node: NodeId) -> Result<StatFs, ErrnoCode> {
        match self.call_plain(&Request::StatFs { node })? {
            Response::StatFs { statfs } => Ok(statfs),
            _ => Err(ErrnoCode::EIO),
        }
    }

    /// Forgets nodes; their ids become invalid. [`ROOT`] stays.
    pub fn close(&self, nodes: &[NodeId]) -> Result<(), ErrnoCode> {
        // Split so that no message exceeds the limit (9 bytes per id is ample).
        for chunk in nodes.chunks((MAX_MESSAGE - 16) / 8) {
            self.expect_ok(&Request::Close { nodes: chunk.to_vec() })?;
        }
        Ok(())
    }

    /// Gives up `node` without waiting for the server: it is closed with the next
    /// [`FORGET_BATCH`] - 1 others. The id must not be used again.
    pub fn forget(&self, node: NodeId) {
        let batch = {
            let mut f = self.forgotten.lock().unwrap_or_else(|e| e.into_inner());
            f.push(node);
            if f.len() < FORGET_BATCH {
                return;
            }
            std::mem::take(&mut *f)
        };
        // A failed close only leaves the gofer holding the nodes until it exits.
        let _ = self.close(&batch);
    }

    /// Has the gofer serve the directory `dir` (a descriptor of it, opened
    /// `O_PATH`) as a root of its own, and returns a connection for it.
    pub fn add_root(&self, dir: BorrowedFd<'_>, read_only: bool) -> Result<Client, ErrnoCode> {
        match self.call_passing(&Request::AddRoot { read_only }, Some(dir))? {
            (Response::Root { root }, Some(fd)) => Ok(Client::for_root(fd, root, self.lost.clone())),
            _ => Err(ErrnoCode::EIO),
        }
    }

    /// Another connection to the same gofer and root, sharing its node ids.
    pub fn connect(&self) -> Result<Client, ErrnoCode> {
        self.connect_root(self.root)
    }

    /// A connection to the same gofer for its root `root` (the index of a served
    /// directory, from 0), sharing its node ids.
    pub fn connect_root(&self, root: u32) -> Result<Client, ErrnoCode> {
        match self.call_fd(&Request::Connect { root })? {
            (Response::Ok {}, fd) => Ok(Client::for_root(fd, root, self.lost.clone())),
            _ => Err(ErrnoCode::EIO),
        }
    }
}
