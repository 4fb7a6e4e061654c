//! The gofer server: the served roots, a table of nodes, a request loop.
//!
//! # Roots
//! A server serves one or more roots (host directories, each read-only or not). A
//! connection is bound to one root, which [`ROOT`] names on it; other node ids are
//! shared by all connections. Every node belongs to the root it was reached from
//! and takes its mode from it: a change through a read-only root is `EROFS`, a
//! rename or link between two roots is `EXDEV` (as between two mounts), and the
//! gofer's bookkeeping of a rename touches only the nodes of the root renamed in.
//!
//! # Confinement
//! The server never resolves a path. Every node is an `O_PATH` descriptor obtained
//! from its parent's descriptor and one validated name (no `/`, not `.` or `..`,
//! no NUL) with `O_NOFOLLOW`, through `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
//! | RESOLVE_NO_MAGICLINKS)` where the kernel has it. So every node is the root or
//! an entry reached downwards from it, and a symlink is only ever opened as itself:
//! the server reads its target (`readlink`) but never follows it. `.` and `..` are
//! answered from the node table (`..` is the node a node was walked from; the
//! root's is the root), never by asking the host for `..`.
//!
//! Operations on a node go through its descriptor (`fstat`, `fchownat(AT_EMPTY_PATH)`,
//! `fchmodat2`, `utimensat(AT_EMPTY_PATH)`). The few that need a real descriptor
//! for a non-directory (open, truncate) reopen the node's name in its parent and
//! check that the result is the same inode, so a name swapped for something else
//! (a symlink to `/etc/passwd`, say) gives `ELOOP` or `ESTALE`, never the other file.
//!
//! What the server cannot prevent is the host itself moving a directory of the
//! served tree elsewhere while the gofer holds it; the runtime additionally
//! confines the gofer process (mount namespace, chroot to the root, seccomp).

use crate::protocol::*;
use crate::sys::{self, open_beneath, Features};
use nix::errno::Errno;
use nix::fcntl::{renameat2, AtFlags, FcntlArg, OFlag, RenameFlags};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Uid, UnlinkatFlags};
use rvisor_abi::structs::{Stat, Timespec};
use rvisor_abi::ErrnoCode;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::io;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;

type R<T> = Result<T, ErrnoCode>;

/// Listings make directory nodes only while the node table holds fewer than this, so
/// that listing huge directories cannot use up the descriptors walks and opens need.
pub const LISTED_NODES_MAX: usize = 8192;

fn code(e: Errno) -> ErrnoCode {
    ErrnoCode(e as i32 as u16)
}

/// A file the server holds open for the client.
struct Node {
    /// `O_PATH | O_NOFOLLOW`: names the inode without opening it for I/O.
    fd: OwnedFd,
    dev: u64,
    ino: u64,
    /// `S_IFMT` bits; an inode never changes type.
    kind: u32,
    /// The index of the root it was reached from.
    root: usize,
    /// The directory this node hangs from and its name there; `None` for the root.
    /// Kept current across the gofer's own renames.
    link: RefCell<Option<(Rc<Node>, CString)>>,
    /// A read descriptor for `readdir`, opened by the first one.
    stream: RefCell<Option<OwnedFd>>,
}

impl Node {
    fn is_dir(&self) -> bool {
        self.kind == libc::S_IFDIR
    }

    fn same(&self, st: &libc::stat) -> bool {
        self.dev == st.st_dev && self.ino == st.st_ino
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A served directory.
struct Root {
    node: Rc<Node>,
    read_only: bool,
}

impl Root {
    /// Root `index`, the directory `dir` (any descriptor of it), as a node.
    fn open(dir: OwnedFd, index: usize, read_only: bool, features: Features) -> io::Result<Root> {
        let fd = open_beneath(dir.as_fd(), c".", OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty(), features)?;
        let st = sys::fstat(fd.as_fd())?;
        let node = Rc::new(Node {
            fd,
            dev: st.st_dev,
            ino: st.st_ino,
            kind: st.st_mode & libc::S_IFMT,
            root: index,
            link: RefCell::new(None),
            stream: RefCell::new(None),
        });
        Ok(Root { node, read_only })
    }
}

/// The gofer's state. `run` serves its connections until all are closed.
pub struct Server {
    /// Every live id but [`ROOT`], which names the root of the connection asking.
    nodes: HashMap<NodeId, Rc<Node>>,
    next_id: NodeId,
    /// By index; `None` once no connection is left for it (a pod container
    /// that ended), when its nodes go too.
    roots: Vec<Option<Root>>,
    /// The root of the request being answered.
    current: usize,
    features: Features,
    /// Each connection and the index of its root.
    conns: Vec<(OwnedFd, usize)>,
    /// Scratch space for `getdents64`.
    dirbuf: Vec<u8>,
}

fn component(name: &[u8]) -> R<CString> {
    if name.is_empty() {
        return Err(ErrnoCode::ENOENT);
    }
    if name.len() > MAX_NAME {
        return Err(ErrnoCode::ENAMETOOLONG);
    }
    if name.contains(&b'/') {
        return Err(ErrnoCode::EINVAL);
    }
    CString::new(name).map_err(|_| ErrnoCode::EINVAL)
}

/// A name to create: `.` and `..` exist already.
fn new_name(name: &[u8]) -> R<CString> {
    let c = component(name)?;
    if name == b"." || name == b".." {
        return Err(ErrnoCode::EEXIST);
    }
    Ok(c)
}

/// A name to remove or rename: never `.` or `..`.
fn entry_name(name: &[u8]) -> R<CString> {
    let c = component(name)?;
    if name == b"." || name == b".." {
        return Err(ErrnoCode::EINVAL);
    }
    Ok(c)
}

/// An extended attribute's full name: empty or too long is ERANGE, as Linux says.
fn xattr_name(name: &[u8]) -> R<CString> {
    if name.is_empty() || name.len() > MAX_XATTR_NAME {
        return Err(ErrnoCode::ERANGE);
    }
    CString::new(name).map_err(|_| ErrnoCode::EINVAL)
}

/// The attributes the sandbox reads of host files: user ones, and security
/// ones as the host's security modules keep them.
fn readable_xattr(name: &[u8]) -> bool {
    name.starts_with(b"user.") || name.starts_with(b"security.")
}

/// The attributes the sandbox changes on host files: user ones only.
fn writable_xattr(name: &[u8]) -> R<CString> {
    let name = xattr_name(name)?;
    if !name.as_bytes().starts_with(b"user.") {
        return Err(ErrnoCode::EOPNOTSUPP);
    }
    Ok(name)
}

fn mode(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits & 0o7777)
}

fn timespec(t: Option<Timespec>) -> R<libc::timespec> {
    match t {
        None => Ok(libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT }),
        Some(t) if t.tv_nsec == libc::UTIME_NOW || (0..1_000_000_000).contains(&t.tv_nsec) => {
            Ok(libc::timespec { tv_sec: t.tv_sec, tv_nsec: t.tv_nsec })
        }
        Some(_) => Err(ErrnoCode::EINVAL),
    }
}

/// How a server runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Refuse every change with `EROFS`.
    pub read_only: bool,
    /// Use only what Linux had before 5.6 and an unprivileged gofer has: no
    /// `openat2`, `fchmodat2`, `utimensat(AT_EMPTY_PATH)`, `linkat(AT_EMPTY_PATH)`.
    /// The server falls back to these paths by itself where a call is missing; this
    /// forces them, so that tests cover them on any kernel.
    pub compat: bool,
}

impl Server {
    /// A server for the directory `root` (any descriptor of it; `O_PATH` will do).
    /// Sets the process umask to 0: modes the Sentry asks for are already final.
    pub fn new(root: OwnedFd, read_only: bool) -> io::Result<Server> {
        Server::with_options(root, Options { read_only, ..Options::default() })
    }

    pub fn with_options(root: OwnedFd, opts: Options) -> io::Result<Server> {
        Server::with_roots(vec![(root, opts.read_only)], opts.compat)
    }

    /// A server for several directories, each with whether it is read-only; root
    /// `i` is served to the connections added with [`add_connection_to`](Self::add_connection_to)`(_, i)`.
    /// `compat` is as in [`Options`].
    pub fn with_roots(roots: Vec<(OwnedFd, bool)>, compat: bool) -> io::Result<Server> {
        let features = Features { openat2: !compat, empty_path: !compat };
        let served = roots.into_iter().enumerate().map(|(i, (root, read_only))| Root::open(root, i, read_only, features)).collect::<io::Result<Vec<_>>>()?;
        if served.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no root to serve"));
        }
        nix::sys::stat::umask(Mode::empty());
        Ok(Server {
            nodes: HashMap::new(),
            next_id: ROOT + 1,
            roots: served.into_iter().map(Some).collect(),
            current: 0,
            features,
            conns: Vec::new(),
            dirbuf: vec![0; 32 * 1024],
        })
    }

    /// Serves requests on `sock` too (a `SOCK_SEQPACKET` socket), for the first root.
    pub fn add_connection(&mut self, sock: OwnedFd) {
        self.conns.push((sock, 0));
    }

    /// Serves requests on `sock` for root `root`.
    pub fn add_connection_to(&mut self, sock: OwnedFd, root: usize) -> io::Result<()> {
        if self.root(root).is_none() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no such root"));
        }
        self.conns.push((sock, root));
        Ok(())
    }

    /// The number of live node ids, one for each root included.
    pub fn node_count(&self) -> usize {
        self.nodes.len() + self.roots.iter().flatten().count()
    }

    /// Serves until every connection is closed.
    pub fn run(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut out = Vec::with_capacity(MAX_MESSAGE);
        while !self.conns.is_empty() {
            let ready: Vec<bool> = {
                let mut fds: Vec<PollFd<'_>> =
                    self.conns.iter().map(|(c, _)| PollFd::new(c.as_fd(), PollFlags::POLLIN)).collect();
                match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
                fds.iter().map(|p| p.revents().is_some_and(|r| !r.is_empty())).collect()
            };
            let mut closed = Vec::new();
            for (i, ready) in ready.into_iter().enumerate() {
                if ready && !self.serve_one(i, &mut buf, &mut out) {
                    closed.push(i);
                }
            }
            for i in closed.into_iter().rev() {
                let (_, root) = self.conns.remove(i);
                if !self.conns.iter().any(|&(_, r)| r == root) {
                    self.drop_root(root);
                }
            }
        }
        Ok(())
    }

    /// Answers one request on connection `i`; false once the connection is done.
    fn serve_one(&mut self, i: usize, buf: &mut [u8], out: &mut Vec<u8>) -> bool {
        let (sock, root) = (self.conns[i].0.as_raw_fd(), self.conns[i].1);
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let (n, truncated, passed) = {
            let mut iov = [IoSliceMut::new(buf)];
            // Room for one descriptor (`AddRoot`'s); the kernel closes any more.
            match socket::recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
                Ok(m) => {
                    let mut passed = Vec::new();
                    for c in m.cmsgs().into_iter().flatten() {
                        if let socket::ControlMessageOwned::ScmRights(fds) = c {
                            // SAFETY: SCM_RIGHTS just installed these descriptors
                            // in this process; nothing else owns them.
                            passed.extend(fds.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                        }
                    }
                    (m.bytes, m.flags.contains(MsgFlags::MSG_TRUNC), passed.pop())
                }
                Err(Errno::EINTR | Errno::EAGAIN) => return true,
                Err(e) => {
                    tracing::debug!("gofer: connection {i}: {e}");
                    return false;
                }
            }
        };
        if n == 0 {
            return false;
        }
        let (resp, fd) = if truncated {
            (Response::Error { errno: ErrnoCode(libc::EMSGSIZE as u16) }, None)
        } else {
            match Request::decode(&buf[..n]) {
                Ok(Request::AddRoot { read_only }) => match passed {
                    Some(dir) => self.add_root(dir, read_only),
                    None => (Response::Error { errno: ErrnoCode::EBADF }, None),
                },
                Ok(req) => self.handle_on(root, req),
                Err(e) => {
                    tracing::debug!("gofer: bad request: {e:?}");
                    (Response::Error { errno: ErrnoCode::EINVAL }, None)
                }
            }
        };
        out.clear();
        resp.encode(out);
        let iov = [IoSlice::new(out)];
        let raw;
        let cmsgs: &[ControlMessage<'_>] = match &fd {
            Some(fd) => {
                raw = [fd.as_raw_fd()];
                &[ControlMessage::ScmRights(&raw)]
            }
            None => &[],
        };
        loop {
            match socket::sendmsg::<()>(sock, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
                Ok(_) => return true,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::debug!("gofer: connection {i}: {e}");
                    return false;
                }
            }
        }
    }

    /// Answers a request of a connection to the first root: the response and the
    /// descriptor that goes with it.
    pub fn handle(&mut self, req: Request) -> (Response, Option<OwnedFd>) {
        self.handle_on(0, req)
    }

    /// Answers a request of a connection to root `root`.
    pub fn handle_on(&mut self, root: usize, req: Request) -> (Response, Option<OwnedFd>) {
        self.current = root;
        let r = match req {
            Request::Walk { dir, names } => {
                self.walk(dir, &names).map(|(nodes, end)| (Response::Walked { nodes, end }, None))
            }
            Request::Stat { node } => self.stat(node).map(|stat| (Response::Attr { stat }, None)),
            Request::Open { node, flags } => self.open(node, flags).map(|fd| (Response::Ok {}, Some(fd))),
            Request::Create { dir, name, flags, mode, owner } => {
                self.create(dir, &name, flags, mode, owner).map(|(node, fd)| (Response::Node { node }, Some(fd)))
            }
            Request::Mkdir { dir, name, mode, owner } => {
                self.mkdir(dir, &name, mode, owner).map(|node| (Response::Node { node }, None))
            }
            Request::Unlink { dir, name, rmdir } => self.unlink(dir, &name, rmdir).map(|()| (Response::Ok {}, None)),
            Request::Rename { old_dir, old_name, new_dir, new_name, flags } => {
                self.rename(old_dir, &old_name, new_dir, &new_name, flags).map(|()| (Response::Ok {}, None))
            }
            Request::Readdir { dir, cookie, max_bytes } => {
                self.readdir(dir, cookie, max_bytes).map(|(entries, eof)| (Response::Dirents { entries, eof }, None))
            }
            Request::Readlink { node } => self.readlink(node).map(|target| (Response::Target { target }, None)),
            Request::Symlink { dir, name, target, owner } => {
                self.symlink(dir, &name, &target, owner).map(|node| (Response::Node { node }, None))
            }
            Request::Mknod { dir, name, mode, owner } => {
                self.mknod(dir, &name, mode, owner).map(|node| (Response::Node { node }, None))
            }
            Request::Link { dir, name, target } => {
                self.link(dir, &name, target).map(|node| (Response::Node { node }, None))
            }
            Request::SetAttr { node, attr } => self.setattr(node, &attr).map(|stat| (Response::Attr { stat }, None)),
            Request::StatFs { node } => self.statfs(node).map(|statfs| (Response::StatFs { statfs }, None)),
            Request::Close { nodes } => {
                for id in nodes {
                    if id != ROOT {
                        self.nodes.remove(&id);
                    }
                }
                Ok((Response::Ok {}, None))
            }
            Request::Connect { root } => self.connect(root).map(|fd| (Response::Ok {}, Some(fd))),
            Request::OpenFile { dir, name } => self.open_file(dir, &name).map(|fd| (Response::Ok {}, Some(fd))),
            Request::GetXattr { node, name } => self.getxattr(node, &name).map(|value| (Response::Xattr { value }, None)),
            Request::SetXattr { node, name, value, flags } => {
                self.setxattr(node, &name, &value, flags).map(|()| (Response::Ok {}, None))
            }
            Request::ListXattr { node } => self.listxattr(node).map(|names| (Response::Names { names }, None)),
            Request::RemoveXattr { node, name } => self.removexattr(node, &name).map(|()| (Response::Ok {}, None)),
            // Only with its descriptor, which `serve_one` takes.
            Request::AddRoot { .. } => Err(ErrnoCode::EBADF),
        };
        r.unwrap_or_else(|errno| (Response::Error { errno }, None))
    }

    // ---- the node table ----

    fn node(&self, id: NodeId) -> R<Rc<Node>> {
        if id == ROOT {
            return self.root(self.current).map(|r| r.node.clone()).ok_or(ErrnoCode::EBADF);
        }
        self.nodes.get(&id).cloned().ok_or(ErrnoCode::EBADF)
    }

    fn dir(&self, id: NodeId) -> R<Rc<Node>> {
        let n = self.node(id)?;
        if !n.is_dir() {
            return Err(ErrnoCode::ENOTDIR);
        }
        Ok(n)
    }

    fn insert(&mut self, node: Rc<Node>, st: &libc::stat) -> NodeInfo {
        let id = self.next_id;
        self.next_id += 1;
        self.nodes.insert(id, node);
        NodeInfo { id, stat: sys::to_stat(st) }
    }

    fn read_only(&self, node: &Node) -> bool {
        self.root(node.root).is_none_or(|r| r.read_only)
    }

    /// Changes under `node` are allowed: its root is not read-only.
    fn writable(&self, node: &Node) -> R<()> {
        if self.read_only(node) {
            return Err(ErrnoCode::EROFS);
        }
        Ok(())
    }

    /// `a` and `b` are under the same root: a rename or link may join them.
    fn same_root(a: &Node, b: &Node) -> R<()> {
        if a.root != b.root {
            return Err(ErrnoCode::EXDEV);
        }
        Ok(())
    }

    /// A node for the `O_PATH` descriptor `fd` of `name` in `parent`.
    fn make_node(parent: &Rc<Node>, name: CString, fd: OwnedFd) -> R<(Rc<Node>, libc::stat)> {
        let st = sys::fstat(fd.as_fd()).map_err(code)?;
        let node = Node {
            fd,
            dev: st.st_dev,
            ino: st.st_ino,
            kind: st.st_mode & libc::S_IFMT,
            root: parent.root,
            link: RefCell::new(Some((parent.clone(), name))),
            stream: RefCell::new(None),
        };
        Ok((Rc::new(node), st))
    }

    /// Opens `name` in `dir` as a new node.
    fn lookup(&self, dir: &Rc<Node>, name: CString) -> R<(Rc<Node>, libc::stat)> {
        let fd = open_beneath(dir.fd(), &name, OFlag::O_PATH, Mode::empty(), self.features).map_err(code)?;
        Self::make_node(dir, name, fd)
    }

    /// The node `..` names: the one `node` was walked from, or the root itself.
    fn parent_of(node: &Rc<Node>) -> Rc<Node> {
        node.link.borrow().as_ref().map(|(p, _)| p.clone()).unwrap_or_else(|| node.clone())
    }

    /// A descriptor for I/O on `node`, opened with `flags` (never following a symlink).
    fn reopen(&self, node: &Node, flags: OFlag) -> R<OwnedFd> {
        if node.is_dir() {
            return open_beneath(node.fd(), c".", flags, Mode::empty(), self.features).map_err(code);
        }
        let link = node.link.borrow();
        let (parent, name) = link.as_ref().ok_or(ErrnoCode(libc::ESTALE as u16))?;
        // O_NONBLOCK: if the name now holds a FIFO, opening it must not hang the gofer.
        let fd =
            open_beneath(parent.fd(), name, flags | OFlag::O_NONBLOCK, Mode::empty(), self.features).map_err(code)?;
        let st = sys::fstat(fd.as_fd()).map_err(code)?;
        if !node.same(&st) {
            return Err(ErrnoCode(libc::ESTALE as u16));
        }
        if node.kind != libc::S_IFIFO && !flags.contains(OFlag::O_NONBLOCK) {
            nix::fcntl::fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags & !OFlag::O_ACCMODE)).map_err(code)?;
        }
        Ok(fd)
    }

    fn open_file(&self, dir: NodeId, name: &[u8]) -> R<OwnedFd> {
        let dir = self.dir(dir)?;
        let name = component(name)?;
        // Checked before opening, so that opening never touches a device or a FIFO.
        let before = sys::fstatat(dir.fd(), &name).map_err(code)?;
        match before.st_mode & libc::S_IFMT {
            libc::S_IFREG => {}
            libc::S_IFLNK => return Err(ErrnoCode::ELOOP),
            libc::S_IFDIR => return Err(ErrnoCode::EISDIR),
            libc::S_IFIFO | libc::S_IFSOCK => return Err(ErrnoCode::ENXIO),
            _ => return Err(ErrnoCode::EPERM),
        }
        // O_NONBLOCK: if the name became a FIFO meanwhile, opening it must not hang.
        let fd = open_beneath(dir.fd(), &name, OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty(), self.features).map_err(code)?;
        let st = sys::fstat(fd.as_fd()).map_err(code)?;
        if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino) {
            return Err(ErrnoCode(libc::ESTALE as u16));
        }
        nix::fcntl::fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_RDONLY)).map_err(code)?;
        Ok(fd)
    }

    fn truncate(&self, node: &Node, len: u64) -> R<()> {
        match node.kind {
            libc::S_IFREG => {}
            libc::S_IFDIR => return Err(ErrnoCode::EISDIR),
            _ => return Err(ErrnoCode::EINVAL),
        }
        let len = i64::try_from(len).map_err(|_| ErrnoCode::EFBIG)?;
        let fd = self.reopen(node, OFlag::O_WRONLY)?;
        nix::unistd::ftruncate(&fd, len).map_err(code)
    }

    /// Gives a new node the owner the client asked for, if the gofer may.
    fn chown_best_effort(fd: BorrowedFd<'_>, owner: Option<Owner>) {
        if let Some(o) = owner {
            let r = nix::unistd::fchownat(
                Some(fd.as_raw_fd()),
                c"",
                Some(Uid::from_raw(o.uid)),
                Some(Gid::from_raw(o.gid)),
                AtFlags::AT_EMPTY_PATH,
            );
            if let Err(e) = r {
                tracing::debug!("gofer: chown of a new file to {}:{}: {e}", o.uid, o.gid);
            }
        }
    }

    // ---- operations ----

    fn walk(&mut self, dir: NodeId, names: &[Vec<u8>]) -> R<(Vec<NodeInfo>, WalkEnd)> {
        let mut cur = self.node(dir)?;
        if names.len() > MAX_WALK {
            return Err(ErrnoCode::ENAMETOOLONG);
        }
        let mut out = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let index = i as u32;
            let step = if !cur.is_dir() {
                Err(ErrnoCode::ENOTDIR)
            } else {
                match name.as_slice() {
                    b"." => sys::fstat(cur.fd()).map(|st| (cur.clone(), st)).map_err(code),
                    b".." => {
                        let p = Self::parent_of(&cur);
                        sys::fstat(p.fd()).map(|st| (p, st)).map_err(code)
                    }
                    _ => component(name).and_then(|c| self.lookup(&cur, c)),
                }
            };
            let (node, st) = match step {
                Ok(v) => v,
                Err(errno) => return Ok((out, WalkEnd::Error { index, errno })),
            };
            let is_link = node.kind == libc::S_IFLNK;
            out.push(self.insert(node.clone(), &st));
            if is_link && i + 1 < names.len() {
                return Ok((out, WalkEnd::Symlink { index }));
            }
            cur = node;
        }
        Ok((out, WalkEnd::Complete))
    }

    fn stat(&self, id: NodeId) -> R<Stat> {
        let n = self.node(id)?;
        sys::fstat(n.fd()).map(|st| sys::to_stat(&st)).map_err(code)
    }

    fn open(&mut self, id: NodeId, flags: u32) -> R<OwnedFd> {
        let node = self.node(id)?;
        let flags = (flags & OPEN_FLAGS) as i32;
        let acc = flags & libc::O_ACCMODE;
        if acc == libc::O_ACCMODE {
            return Err(ErrnoCode::EINVAL);
        }
        let trunc = flags & libc::O_TRUNC != 0;
        let read_only = self.read_only(&node);
        if read_only && (acc != libc::O_RDONLY || trunc) {
            return Err(ErrnoCode::EROFS);
        }
        let mut host = OFlag::from_bits_truncate(acc | (flags & (libc::O_DSYNC | libc::O_SYNC)));
        if !read_only {
            host |= OFlag::from_bits_truncate(flags & libc::O_APPEND);
        }
        match node.kind {
            // Never opened, so never followed.
            libc::S_IFLNK => return Err(ErrnoCode::ELOOP),
            libc::S_IFDIR if acc != libc::O_RDONLY || trunc => return Err(ErrnoCode::EISDIR),
            libc::S_IFDIR => host |= OFlag::O_DIRECTORY,
            _ if flags & libc::O_DIRECTORY != 0 => return Err(ErrnoCode::ENOTDIR),
            libc::S_IFREG => {}
            // A host FIFO or socket would be a channel to host processes: the
            // sandbox's own FIFOs and sockets live in the Sentry.
            libc::S_IFIFO | libc::S_IFSOCK => return Err(ErrnoCode::ENXIO),
            // Devices come from the Sentry's own devfs, never from the host.
            _ => return Err(ErrnoCode::EPERM),
        }
        let fd = self.reopen(&node, host)?;
        if trunc && node.kind == libc::S_IFREG {
            // Truncated only once the descriptor is known to be the node's file.
            if acc == libc::O_RDONLY {
                self.truncate(&node, 0)?;
            } else {
                nix::unistd::ftruncate(&fd, 0).map_err(code)?;
            }
        }
        Ok(fd)
    }

    fn create(
        &mut self,
        dir: NodeId,
        name: &[u8],
        flags: u32,
        mode_bits: u32,
        owner: Option<Owner>,
    ) -> R<(NodeInfo, OwnedFd)> {
        let dir = self.dir(dir)?;
        self.writable(&dir)?;
        let name = new_name(name)?;
        let flags = (flags & OPEN_FLAGS) as i32;
        let acc = flags & libc::O_ACCMODE;
        if acc == libc::O_ACCMODE {
            return Err(ErrnoCode::EINVAL);
        }
        let host = OFlag::from_bits_truncate(acc | (flags & (libc::O_APPEND | libc::O_DSYNC | libc::O_SYNC)))
            | OFlag::O_CREAT
            | OFlag::O_EXCL;
        let fd = open_beneath(dir.fd(), &name, host, mode(mode_bits), self.features).map_err(code)?;
        Self::chown_best_effort(fd.as_fd(), owner);
        let path = open_beneath(dir.fd(), &name, OFlag::O_PATH, Mode::empty(), self.features).map_err(code)?;
        let (node, st) = Self::make_node(&dir, name, path)?;
        if !node.same(&sys::fstat(fd.as_fd()).map_err(code)?) {
            return Err(ErrnoCode(libc::ESTALE as u16));
        }
        Ok((self.insert(node, &st), fd))
    }

    fn mkdir(&mut self, dir: NodeId, name: &[u8], mode_bits: u32, owner: Option<Owner>) -> R<NodeInfo> {
        let dir = self.dir(dir)?;
        self.writable(&dir)?;
        let name = new_name(name)?;
        nix::sys::stat::mkdirat(Some(dir.fd().as_raw_fd()), name.as_c_str(), mode(mode_bits)).map_err(code)?;
        let fd = open_beneath(dir.fd(), &name, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty(), self.features)
            .map_err(code)?;
        Self::chown_best_effort(fd.as_fd(), owner);
        let (node, st) = Self::make_node(&dir, name, fd)?;
        Ok(self.insert(node, &st))
    }

    fn symlink(&mut self, dir: NodeId, name: &[u8], target: &[u8], owner: Option<Owner>) -> R<NodeInfo> {
        let dir = self.dir(dir)?;
        self.writable(&dir)?;
        let name = new_name(name)?;
        if target.is_empty() {
            return Err(ErrnoCode::ENOENT);
        }
        if target.len() > MAX_TARGET {
            return Err(ErrnoCode::ENAMETOOLONG);
        }
        let target = CString::new(target).map_err(|_| ErrnoCode::EINVAL)?;
        nix::unistd::symlinkat(target.as_c_str(), Some(dir.fd().as_raw_fd()), name.as_c_str()).map_err(code)?;
        let (node, _) = self.lookup(&dir, name)?;
        if node.kind != libc::S_IFLNK {
            return Err(ErrnoCode(libc::ESTALE as u16));
        }
        // On an O_PATH|O_NOFOLLOW descriptor, AT_EMPTY_PATH changes the link itself.
        Self::chown_best_effort(node.fd(), owner);
        let st = sys::fstat(node.fd()).map_err(code)?;
        Ok(self.insert(node, &st))
    }

    fn mknod(&mut self, dir: NodeId, name: &[u8], mode_bits: u32, owner: Option<Owner>) -> R<NodeInfo> {
        let kind = mode_bits & libc::S_IFMT;
        if kind != libc::S_IFIFO && kind != libc::S_IFSOCK {
            return Err(ErrnoCode::EPERM);
        }
        let dir = self.dir(dir)?;
        self.writable(&dir)?;
        let name = new_name(name)?;
        nix::sys::stat::mknodat(Some(dir.fd().as_raw_fd()), name.as_c_str(), SFlag::from_bits_truncate(kind), mode(mode_bits), 0)
            .map_err(code)?;
        let (node, _) = self.lookup(&dir, name)?;
        if node.kind != kind {
            return Err(ErrnoCode(libc::ESTALE as u16));
        }
        Self::chown_best_effort(node.fd(), owner);
        let st = sys::fstat(node.fd()).map_err(code)?;
        Ok(self.insert(node, &st))
    }

    fn link(&mut self, dir: NodeId, name: &[u8], target: NodeId) -> R<NodeInfo> {
        let dir = self.dir(dir)?;
        let target = self.node(target)?;
        Self::same_root(&dir, &target)?;
        self.writable(&dir)?;
        let name = new_name(name)?;
        if target.is_dir() {
            return Err(ErrnoCode::EPERM);
        }
        let dirfd = Some(dir.fd().as_raw_fd());
        // Link by descriptor when allowed (AT_EMPTY_PATH wants CAP_DAC_READ_SEARCH and
        // answers ENOENT without it), else by the target's name in its parent.
        let r = if self.features.empty_path {
            nix::unistd::linkat(Some(target.fd().as_raw_fd()), c"", dirfd, name.as_c_str(), AtFlags::AT_EMPTY_PATH)
        } else {
            Err(Errno::ENOENT)
        };
        let by_name = match r {
            Ok(()) => false,
            Err(Errno::ENOENT | Errno::EPERM) => {
                let link = target.link.borrow();
                let (parent, tname) = link.as_ref().ok_or(ErrnoCode(libc::ESTALE as u16))?;
                nix::unistd::linkat(
                    Some(parent.fd().as_raw_fd()),
                    tname.as_c_str(),
                    dirfd,
                    name.as_c_str(),
                    AtFlags::empty(),
                )
                .map_err(code)?;
                true
            }
            Err(e) => return Err(code(e)),
        };
        let (node, st) = self.lookup(&dir, name.clone())?;
        if !target.same(&st) {
            if by_name {
                // The target's name held another file by now: undo our link to it.
                let _ = nix::unistd::unlinkat(dirfd, name.as_c_str(), UnlinkatFlags::NoRemoveDir);
            }
            return Err(ErrnoCode(libc::ESTALE as u16));
        }
        Ok(self.insert(node, &st))
    }

    fn unlink(&mut self, dir: NodeId, name: &[u8], rmdir: bool) -> R<()> {
        let dir = self.dir(dir)?;
        self.writable(&dir)?;
        let name = entry_name(name)?;
        let flags = if rmdir { UnlinkatFlags::RemoveDir } else { UnlinkatFlags::NoRemoveDir };
        nix::unistd::unlinkat(Some(dir.fd().as_raw_fd()), name.as_c_str(), flags).map_err(code)
    }

    fn rename(&mut self, old_dir: NodeId, old_name: &[u8], new_dir: NodeId, new_name: &[u8], flags: u32) -> R<()> {
        let old_dir = self.dir(old_dir)?;
        let new_dir = self.dir(new_dir)?;
        Self::same_root(&old_dir, &new_dir)?;
        self.writable(&old_dir)?;
        let old_name = entry_name(old_name)?;
        let new_name = entry_name(new_name)?;
        if flags & !RENAME_FLAGS != 0 {
            return Err(ErrnoCode::EINVAL);
        }
        let rflags = RenameFlags::from_bits_truncate(flags);
        renameat2(
            Some(old_dir.fd().as_raw_fd()),
            old_name.as_c_str(),
            Some(new_dir.fd().as_raw_fd()),
            new_name.as_c_str(),
            rflags,
        )
        .map_err(code)?;
        self.renamed(&old_dir, &old_name, &new_dir, &new_name, rflags.contains(RenameFlags::RENAME_EXCHANGE));
        Ok(())
    }

    /// Keeps the nodes' (parent, name) current after a rename, so reopening them
    /// and `..` still work.
    fn renamed(&self, old_dir: &Rc<Node>, old_name: &CStr, new_dir: &Rc<Node>, new_name: &CStr, exchange: bool) {
        // Every node reachable from the table: the live ids and the directories
        // they hang from.
        let mut seen = HashSet::new();
        let mut all = Vec::new();
        // Only this root's: another root's nodes of the same host files go stale (a
        // reopen answers ESTALE), as they would in a gofer of their own, rather than
        // hang from this root's directories.
        for n in self.nodes.values().filter(|n| n.root == old_dir.root) {
            let mut cur = Some(n.clone());
            while let Some(c) = cur {
                if !seen.insert(Rc::as_ptr(&c)) {
                    break;
                }
                cur = c.link.borrow().as_ref().map(|(p, _)| p.clone());
                all.push(c);
            }
        }
        let same_dir = |a: &Node, b: &Node| a.dev == b.dev && a.ino == b.ino;
        for n in all {
            let mut link = n.link.borrow_mut();
            let Some((parent, name)) = link.as_mut() else { continue };
            if same_dir(parent, old_dir) && name.as_c_str() == old_name {
                *parent = new_dir.clone();
                *name = new_name.to_owned();
            } else if exchange && same_dir(parent, new_dir) && name.as_c_str() == new_name {
                *parent = old_dir.clone();
                *name = old_name.to_owned();
            }
        }
    }

    fn readdir(&mut self, dir: NodeId, cookie: u64, max_bytes: u32) -> R<(Vec<Dirent>, bool)> {
        let node = self.dir(dir)?;
        let budget = (max_bytes as usize).min(MAX_MESSAGE - 64).saturating_sub(DIRENTS_OVERHEAD);
        let mut stream = node.stream.borrow_mut();
        if stream.is_none() {
            let fd = open_beneath(node.fd(), c".", OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty(), self.features)
                .map_err(code)?;
            *stream = Some(fd);
        }
        let fd = stream.as_ref().expect("opened above");
        let off = i64::try_from(cookie).map_err(|_| ErrnoCode::EINVAL)?;
        nix::unistd::lseek(fd.as_raw_fd(), off, nix::unistd::Whence::SeekSet).map_err(code)?;
        // Taken out of `self` while its entries are parsed, since nodes go into `self`.
        let mut dirbuf = std::mem::take(&mut self.dirbuf);
        let listed = self.list(&node, fd.as_fd(), budget, &mut dirbuf);
        self.dirbuf = dirbuf;
        listed
    }

    /// Lists from `fd`'s position into entries of at most `budget` bytes in all;
    /// true if the listing ended.
    fn list(&mut self, node: &Rc<Node>, fd: BorrowedFd<'_>, budget: usize, dirbuf: &mut [u8]) -> R<(Vec<Dirent>, bool)> {
        let mut entries = Vec::new();
        let mut used = 0;
        loop {
            let n = sys::getdents64(fd, dirbuf).map_err(code)?;
            if n == 0 {
                return Ok((entries, true));
            }
            for e in sys::dirents(&dirbuf[..n]) {
                if e.name == b"." || e.name == b".." {
                    continue;
                }
                let name = component(e.name).ok();
                let stat = name.as_deref().and_then(|name| sys::fstatat(fd, name).ok());
                // A directory's name (`stat` needed it) for the node it comes with, while
                // the node table is within its budget (past it, or out of descriptors,
                // the client walks to the directory instead).
                let dir_name = name
                    .filter(|_| stat.is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR))
                    .filter(|_| self.node_count() < LISTED_NODES_MAX);
                let mut d = Dirent {
                    name: e.name.to_vec(),
                    ino: e.ino,
                    kind: e.kind,
                    cookie: e.off,
                    stat: stat.as_ref().map(sys::to_stat),
                    // Counted before the node is made, so that none is made for an
                    // entry left for the next batch.
                    node: dir_name.as_ref().map(|_| 0),
                };
                if used + d.wire_size() > budget {
                    if entries.is_empty() {
                        return Err(ErrnoCode::EINVAL);
                    }
                    return Ok((entries, false));
                }
                used += d.wire_size();
                d.node = dir_name.and_then(|name| self.lookup(node, name).ok()).map(|(child, st)| self.insert(child, &st).id);
                entries.push(d);
            }
        }
    }

    fn readlink(&self, id: NodeId) -> R<Vec<u8>> {
        let n = self.node(id)?;
        if n.kind != libc::S_IFLNK {
            return Err(ErrnoCode::EINVAL);
        }
        // An empty path reads the link the O_PATH descriptor names.
        let t = nix::fcntl::readlinkat(Some(n.fd().as_raw_fd()), c"").map_err(code)?;
        Ok(std::os::unix::ffi::OsStringExt::into_vec(t))
    }

    fn setattr(&mut self, id: NodeId, a: &SetAttr) -> R<Stat> {
        let node = self.node(id)?;
        self.writable(&node)?;
        if let Some(size) = a.size {
            self.truncate(&node, size)?;
        }
        if a.uid.is_some() || a.gid.is_some() {
            nix::unistd::fchownat(
                Some(node.fd().as_raw_fd()),
                c"",
                a.uid.map(Uid::from_raw),
                a.gid.map(Gid::from_raw),
                AtFlags::AT_EMPTY_PATH,
            )
            .map_err(code)?;
        }
        if let Some(m) = a.mode {
            self.chmod(&node, m & 0o7777)?;
        }
        if a.atime.is_some() || a.mtime.is_some() {
            let times = [timespec(a.atime)?, timespec(a.mtime)?];
            let r = if self.features.empty_path { sys::utimens_path(node.fd(), &times) } else { Err(Errno::EINVAL) };
            match r {
                Ok(()) => {}
                // Before Linux 5.8 utimensat has no AT_EMPTY_PATH.
                Err(Errno::EINVAL) => match &*node.link.borrow() {
                    Some((parent, name)) => sys::utimens_at(parent.fd(), name, &times).map_err(code)?,
                    None => sys::utimens_at(node.fd(), c".", &times).map_err(code)?,
                },
                Err(e) => return Err(code(e)),
            }
        }
        self.stat(id)
    }

    fn chmod(&self, node: &Node, mode: u32) -> R<()> {
        if node.kind == libc::S_IFLNK {
            return Err(ErrnoCode::EOPNOTSUPP);
        }
        let r = if self.features.empty_path { sys::fchmod_path(node.fd(), mode) } else { Err(Errno::ENOSYS) };
        match r {
            Ok(()) => Ok(()),
            // fchmodat2 is Linux 6.6: reopen the file and fchmod that.
            Err(Errno::ENOSYS | Errno::EINVAL) => {
                if node.kind != libc::S_IFREG && node.kind != libc::S_IFDIR {
                    return Err(ErrnoCode::EOPNOTSUPP);
                }
                let fd = self.reopen(node, OFlag::O_RDONLY)?;
                nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode)).map_err(code)
            }
            Err(e) => Err(code(e)),
        }
    }

    fn statfs(&self, id: NodeId) -> R<StatFs> {
        let n = self.node(id)?;
        let s = sys::fstatfs(n.fd()).map_err(code)?;
        let mut flags = s.f_flags as u64;
        if self.read_only(&n) {
            flags |= libc::ST_RDONLY;
        }
        Ok(StatFs {
            fs_type: s.f_type as u64,
            bsize: s.f_bsize as u64,
            blocks: s.f_blocks,
            bfree: s.f_bfree,
            bavail: s.f_bavail,
            files: s.f_files,
            ffree: s.f_ffree,
            fsid: (s.f_fsid[0] as u32 as u64) | ((s.f_fsid[1] as u32 as u64) << 32),
            namelen: s.f_namelen as u64,
            frsize: s.f_frsize as u64,
            flags,
        })
    }

    // ---- extended attributes ----

    /// A descriptor of `node`'s file for the f*xattr calls, which refuse an
    /// `O_PATH` one (EBADF): a regular file or directory reopened for reading
    /// (checked to be the same inode). `None` for other files: the sandbox's
    /// user attributes are only on these two (the Sentry refuses the rest).
    fn xattr_fd(&self, node: &Node) -> R<Option<OwnedFd>> {
        match node.kind {
            libc::S_IFREG | libc::S_IFDIR => self.reopen(node, OFlag::O_RDONLY).map(Some),
            _ => Ok(None),
        }
    }

    fn getxattr(&self, id: NodeId, name: &[u8]) -> R<Vec<u8>> {
        let name = xattr_name(name)?;
        // Trusted attributes need the host's CAP_SYS_ADMIN: the sandbox sees a
        // file system that keeps none, as Linux's without a handler for them
        // answers (EOPNOTSUPP, as setting one is). System ones (ACLs) it does
        // not take from the host.
        if name.as_bytes().starts_with(b"trusted.") {
            return Err(ErrnoCode::EOPNOTSUPP);
        }
        if !readable_xattr(name.as_bytes()) {
            return Err(ErrnoCode::ENODATA);
        }
        let Some(fd) = self.xattr_fd(&*self.node(id)?)? else { return Err(ErrnoCode::ENODATA) };
        let mut value = vec![0; MAX_XATTR_VALUE];
        let n = sys::fgetxattr(fd.as_fd(), &name, &mut value).map_err(code)?;
        value.truncate(n);
        Ok(value)
    }

    fn listxattr(&self, id: NodeId) -> R<Vec<Vec<u8>>> {
        let Some(fd) = self.xattr_fd(&*self.node(id)?)? else { return Ok(Vec::new()) };
        let mut buf = vec![0; MAX_XATTR_VALUE];
        // More than Linux's XATTR_LIST_MAX: what listxattr(2) answers too.
        let n = sys::flistxattr(fd.as_fd(), &mut buf).map_err(|e| if e == Errno::ERANGE { ErrnoCode::E2BIG } else { code(e) })?;
        Ok(buf[..n].split(|&b| b == 0).filter(|n| readable_xattr(n)).map(<[u8]>::to_vec).collect())
    }

    fn setxattr(&self, id: NodeId, name: &[u8], value: &[u8], flags: u32) -> R<()> {
        let node = self.node(id)?;
        self.writable(&node)?;
        let name = writable_xattr(name)?;
        if flags & !XATTR_FLAGS != 0 {
            return Err(ErrnoCode::EINVAL);
        }
        if value.len() > MAX_XATTR_VALUE {
            return Err(ErrnoCode::E2BIG);
        }
        let Some(fd) = self.xattr_fd(&node)? else { return Err(ErrnoCode::EPERM) };
        sys::fsetxattr(fd.as_fd(), &name, value, flags as i32).map_err(code)
    }

    fn removexattr(&self, id: NodeId, name: &[u8]) -> R<()> {
        let node = self.node(id)?;
        self.writable(&node)?;
        let name = writable_xattr(name)?;
        let Some(fd) = self.xattr_fd(&node)? else { return Err(ErrnoCode::EPERM) };
        sys::fremovexattr(fd.as_fd(), &name).map_err(code)
    }

    /// Serves `dir` as a new root; answers with its index and a connection for it.
    fn add_root(&mut self, dir: OwnedFd, read_only: bool) -> (Response, Option<OwnedFd>) {
        let index = self.roots.len();
        let added = Root::open(dir, index, read_only, self.features).map_err(|e| ErrnoCode(e.raw_os_error().unwrap_or(libc::EIO) as u16));
        let r = added.and_then(|root| {
            let index32 = u32::try_from(index).map_err(|_| ErrnoCode::EMFILE)?;
            self.roots.push(Some(root));
            self.connect(index32).map(|fd| (Response::Root { root: index32 }, Some(fd)))
        });
        r.unwrap_or_else(|errno| (Response::Error { errno }, None))
    }

    fn root(&self, index: usize) -> Option<&Root> {
        self.roots.get(index).and_then(Option::as_ref)
    }

    /// Forgets root `index` and its nodes: no connection is left for it.
    fn drop_root(&mut self, index: usize) {
        if let Some(r) = self.roots.get_mut(index) {
            *r = None;
        }
        self.nodes.retain(|_, n| n.root != index);
    }

    fn connect(&mut self, root: u32) -> R<OwnedFd> {
        let root = usize::try_from(root).map_err(|_| ErrnoCode::EINVAL)?;
        if self.root(root).is_none() {
            return Err(ErrnoCode::EINVAL);
        }
        let (ours, theirs) =
            socket::socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).map_err(code)?;
        self.conns.push((ours, root));
        Ok(theirs)
    }
}

/// Runs the gofer's request loop on `socket` (a connection to the first root) until
/// every connection is closed, then exits the process. `roots` are the served
/// directories, each with whether it is read-only (a change under it is `EROFS`).
/// Call it in a process of its own (the runtime execs `rvisor gofer`, see
/// [`crate::gofer_main`]); it sets the process umask to 0.
pub fn serve(roots: Vec<(OwnedFd, bool)>, socket: OwnedFd) -> ! {
    let code = match Server::with_roots(roots, false) {
        Ok(mut s) => {
            s.add_connection(socket);
            if let Err(e) = crate::filter::install() {
                tracing::warn!("gofer: serving without a seccomp filter: {e}");
            }
            match s.run() {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("rvisor gofer: {e}");
                    1
                }
            }
        }
        Err(e) => {
            eprintln!("rvisor gofer: cannot serve the root: {e}");
            1
        }
    };
    std::process::exit(code)
}
