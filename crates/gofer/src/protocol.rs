//! The gofer wire protocol.
//!
//! One request, one response, each a single datagram on a Unix `SOCK_SEQPACKET`
//! socket, so a message never needs framing and never arrives in pieces. A message
//! is an opcode byte followed by its fields in declaration order:
//!
//! | type              | encoding                                          |
//! |-------------------|---------------------------------------------------|
//! | `u8`, `bool`      | one byte (`bool` must be 0 or 1)                  |
//! | `u16` … `i64`     | little-endian, fixed width                        |
//! | `Vec<T>`          | `u32` count, then the items (bytes for `Vec<u8>`) |
//! | `Option<T>`       | `0`, or `1` then the value                        |
//! | structs           | their fields in order                             |
//!
//! A response carries at most one host descriptor, as `SCM_RIGHTS` ancillary data
//! (`open`, `create`, `connect`). Both peers run on the same host, so flag and mode
//! values are Linux's own (`O_RDWR`, `S_IFDIR`, `DT_DIR`, `RENAME_NOREPLACE`...).
//!
//! Nodes are named by [`NodeId`]s that the server hands out; [`ROOT`] is the served
//! directory the connection is for, and is always valid. Every other id stays valid until the client
//! forgets it with [`Request::Close`].

use rvisor_abi::structs::{Stat, Timespec};
use rvisor_abi::ErrnoCode;

/// A node (file, directory, symlink...) the server holds open for the client.
pub type NodeId = u64;

/// The served root directory. It cannot be closed.
pub const ROOT: NodeId = 1;

/// The largest message either side sends or accepts, ancillary data aside: a
/// largest extended attribute value ([`MAX_XATTR_VALUE`]) and its name fit.
pub const MAX_MESSAGE: usize = 64 * 1024 + 4096;

/// The largest extended attribute value, and the longest list of names
/// (Linux's `XATTR_SIZE_MAX` and `XATTR_LIST_MAX`).
pub const MAX_XATTR_VALUE: usize = 64 * 1024;

/// The longest extended attribute name (`XATTR_NAME_MAX`).
pub const MAX_XATTR_NAME: usize = 255;

/// `setxattr` flags the server accepts (`XATTR_CREATE`, `XATTR_REPLACE`).
pub const XATTR_FLAGS: u32 = (libc::XATTR_CREATE | libc::XATTR_REPLACE) as u32;

/// The longest name of one directory entry (`NAME_MAX`).
pub const MAX_NAME: usize = 255;

/// The most components one `Walk` takes, so that its answer (a node and its
/// attributes per component) always fits in a message. [`crate::Client::walk`]
/// splits longer walks.
pub const MAX_WALK: usize = 256;

/// The longest symlink target (`PATH_MAX` less the terminating NUL).
pub const MAX_TARGET: usize = 4095;

/// `open` flags the server honours; every other bit is ignored.
pub const OPEN_FLAGS: u32 =
    (libc::O_ACCMODE | libc::O_TRUNC | libc::O_APPEND | libc::O_DIRECTORY | libc::O_DSYNC | libc::O_SYNC) as u32;

/// `renameat2` flags the server accepts.
pub const RENAME_FLAGS: u32 = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE;

/// The bytes are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The message ended inside a field.
    Short,
    /// An opcode or enum tag that this version does not know.
    BadTag(u8),
    /// A field holds a value its type forbids (a `bool` of 2...).
    BadValue,
    /// Bytes were left over after the message.
    Trailing,
}

/// Reads fields from a received message.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Short);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }
}

/// A value with a wire encoding.
pub trait Wire: Sized {
    fn put(&self, out: &mut Vec<u8>);
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>) {
        self.put(out)
    }

    /// Decodes a whole message: trailing bytes are an error.
    fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let v = Self::get(&mut r)?;
        if r.remaining() != 0 {
            return Err(DecodeError::Trailing);
        }
        Ok(v)
    }
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            fn put(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(<$t>::from_le_bytes(r.take_array()?))
            }
        }
    )*};
}
wire_int!(u8, u16, u32, u64, i32, i64);

impl Wire for bool {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match u8::get(r)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::BadValue),
        }
    }
}

impl<T: Wire> Wire for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.put(out);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match u8::get(r)? {
            0 => Ok(None),
            1 => Ok(Some(T::get(r)?)),
            _ => Err(DecodeError::BadValue),
        }
    }
}

impl<T: Wire> Wire for Vec<T> {
    fn put(&self, out: &mut Vec<u8>) {
        (self.len() as u32).put(out);
        for v in self {
            v.put(out);
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = u32::get(r)? as usize;
        // Every item takes at least one byte: a count larger than what is left is a
        // lie, and must not make us allocate.
        if n > r.remaining() {
            return Err(DecodeError::Short);
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(T::get(r)?);
        }
        Ok(v)
    }
}

impl Wire for ErrnoCode {
    fn put(&self, out: &mut Vec<u8>) {
        self.0.put(out)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ErrnoCode(u16::get(r)?))
    }
}

impl Wire for Timespec {
    fn put(&self, out: &mut Vec<u8>) {
        self.tv_sec.put(out);
        self.tv_nsec.put(out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Timespec { tv_sec: i64::get(r)?, tv_nsec: i64::get(r)? })
    }
}

/// `Stat` is the attribute record: the kernel's `struct stat`, padding left out.
impl Wire for Stat {
    fn put(&self, out: &mut Vec<u8>) {
        self.st_dev.put(out);
        self.st_ino.put(out);
        self.st_nlink.put(out);
        self.st_mode.put(out);
        self.st_uid.put(out);
        self.st_gid.put(out);
        self.st_rdev.put(out);
        self.st_size.put(out);
        self.st_blksize.put(out);
        self.st_blocks.put(out);
        self.st_atime.put(out);
        self.st_atime_nsec.put(out);
        self.st_mtime.put(out);
        self.st_mtime_nsec.put(out);
        self.st_ctime.put(out);
        self.st_ctime_nsec.put(out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut s = Stat::zeroed();
        s.st_dev = Wire::get(r)?;
        s.st_ino = Wire::get(r)?;
        s.st_nlink = Wire::get(r)?;
        s.st_mode = Wire::get(r)?;
        s.st_uid = Wire::get(r)?;
        s.st_gid = Wire::get(r)?;
        s.st_rdev = Wire::get(r)?;
        s.st_size = Wire::get(r)?;
        s.st_blksize = Wire::get(r)?;
        s.st_blocks = Wire::get(r)?;
        s.st_atime = Wire::get(r)?;
        s.st_atime_nsec = Wire::get(r)?;
        s.st_mtime = Wire::get(r)?;
        s.st_mtime_nsec = Wire::get(r)?;
        s.st_ctime = Wire::get(r)?;
        s.st_ctime_nsec = Wire::get(r)?;
        Ok(s)
    }
}

/// Declares a struct with public fields and its wire encoding (fields in order).
macro_rules! wire_struct {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident: $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }
        impl Wire for $name {
            fn put(&self, out: &mut Vec<u8>) {
                $(self.$f.put(out);)*
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                // Struct expression fields are evaluated in the order written.
                Ok($name { $($f: Wire::get(r)?),* })
            }
        }
    };
}

/// Declares a message enum: an opcode byte, then the variant's fields in order.
macro_rules! wire_enum {
    ($(#[$m:meta])* pub enum $name:ident {
        $($(#[$vm:meta])* $var:ident = $tag:literal { $($(#[$fm:meta])* $f:ident: $t:ty),* $(,)? }),* $(,)?
    }) => {
        $(#[$m])*
        #[derive(Clone, Debug)]
        pub enum $name { $($(#[$vm])* $var { $($(#[$fm])* $f: $t),* }),* }
        impl $name {
            /// The opcode byte that starts this message.
            pub fn opcode(&self) -> u8 {
                match self { $($name::$var { .. } => $tag),* }
            }
        }
        impl Wire for $name {
            #[allow(unused_variables)]
            fn put(&self, out: &mut Vec<u8>) {
                match self {
                    $($name::$var { $($f),* } => {
                        out.push($tag);
                        $($f.put(out);)*
                    })*
                }
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                match u8::get(r)? {
                    $($tag => Ok($name::$var { $($f: Wire::get(r)?),* }),)*
                    t => Err(DecodeError::BadTag(t)),
                }
            }
        }
    };
}

wire_struct! {
    /// The owner to give a new file. The server applies it if it can (it needs
    /// `CAP_CHOWN` for ids other than its own) and otherwise leaves its own.
    #[derive(Copy, PartialEq, Eq)]
    pub struct Owner { pub uid: u32, pub gid: u32 }
}

wire_struct! {
    /// A node id and the node's attributes.
    pub struct NodeInfo { pub id: NodeId, pub stat: Stat }
}

wire_struct! {
    /// One directory entry. `.` and `..` are never sent: the Sentry knows them.
    ///
    /// An entry also carries what looking it up would give, so that a listing
    /// answers the stats and descents that usually follow it without more round
    /// trips: its attributes (`None` if the entry vanished or could not be
    /// stat'ed), and for a directory a new node, which the client owns like a
    /// walked one (`None` if the server could not open it).
    pub struct Dirent {
        pub name: Vec<u8>,
        pub ino: u64,
        /// `DT_REG`, `DT_DIR`, `DT_LNK`... (`DT_UNKNOWN` if the host file system
        /// does not say).
        pub kind: u8,
        /// The cookie to pass to `readdir` to continue after this entry.
        pub cookie: u64,
        pub stat: Option<Stat>,
        pub node: Option<NodeId>,
    }
}

/// The bytes a `Stat` takes on the wire.
const STAT_WIRE_SIZE: usize = 8 * 3 + 4 * 3 + 8 * 4 + 8 * 6;

impl Dirent {
    /// The bytes this entry takes in a `Dirents` response.
    pub fn wire_size(&self) -> usize {
        let stat = 1 + self.stat.map_or(0, |_| STAT_WIRE_SIZE);
        let node = 1 + self.node.map_or(0, |_| 8);
        4 + self.name.len() + 8 + 1 + 8 + stat + node
    }
}

wire_struct! {
    /// `struct statfs` of the file system holding a node.
    #[derive(Copy, PartialEq, Eq)]
    pub struct StatFs {
        pub fs_type: u64,
        pub bsize: u64,
        pub blocks: u64,
        pub bfree: u64,
        pub bavail: u64,
        pub files: u64,
        pub ffree: u64,
        /// `f_fsid`, its two `int`s as the low and high halves.
        pub fsid: u64,
        pub namelen: u64,
        pub frsize: u64,
        /// `ST_RDONLY`, `ST_NOSUID`...; a read-only gofer always sets `ST_RDONLY`.
        pub flags: u64,
    }
}

wire_struct! {
    /// The attributes `setattr` changes; `None` leaves one alone. The server applies
    /// them in the order size, owner, mode, times, as `notify_change` would.
    #[derive(Default)]
    pub struct SetAttr {
        /// Permission bits (`0o7777`); the file type bits are ignored.
        pub mode: Option<u32>,
        pub uid: Option<u32>,
        pub gid: Option<u32>,
        /// Truncate or extend a regular file.
        pub size: Option<u64>,
        /// `tv_nsec` may be `UTIME_NOW`.
        pub atime: Option<Timespec>,
        /// `tv_nsec` may be `UTIME_NOW`.
        pub mtime: Option<Timespec>,
    }
}

/// How a walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkEnd {
    /// Every component was walked.
    Complete,
    /// Component `index` is a symlink and more components follow it. Its node is the
    /// last one returned; the server does not follow symlinks, the Sentry resolves
    /// the target (`readlink`) and walks on.
    Symlink { index: u32 },
    /// Component `index` failed with `errno` (`ENOENT`: it does not exist; `ENOTDIR`:
    /// the node before it is not a directory). Nodes before it were returned.
    Error { index: u32, errno: ErrnoCode },
}

impl Wire for WalkEnd {
    fn put(&self, out: &mut Vec<u8>) {
        match *self {
            WalkEnd::Complete => out.push(0),
            WalkEnd::Symlink { index } => {
                out.push(1);
                index.put(out);
            }
            WalkEnd::Error { index, errno } => {
                out.push(2);
                index.put(out);
                errno.put(out);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match u8::get(r)? {
            0 => Ok(WalkEnd::Complete),
            1 => Ok(WalkEnd::Symlink { index: Wire::get(r)? }),
            2 => Ok(WalkEnd::Error { index: Wire::get(r)?, errno: Wire::get(r)? }),
            t => Err(DecodeError::BadTag(t)),
        }
    }
}

wire_enum! {
    /// What the Sentry asks. Names are single path components: never empty, no `/`,
    /// no NUL, at most [`MAX_NAME`] bytes.
    pub enum Request {
        /// Walks `names` one component at a time from `dir`, returning a new node for
        /// each. `.` is the directory itself; `..` is the node it was walked from
        /// (the root's `..` is the root). Answer: `Walked`.
        Walk = 1 { dir: NodeId, names: Vec<Vec<u8>> },
        /// Answer: `Attr`.
        Stat = 2 { node: NodeId },
        /// Opens the node's file with `flags` (see [`OPEN_FLAGS`]). Answer: `Ok`
        /// with the descriptor.
        Open = 3 { node: NodeId, flags: u32 },
        /// Creates and opens a regular file (`O_CREAT|O_EXCL`). Answer: `Node` with
        /// the descriptor.
        Create = 4 { dir: NodeId, name: Vec<u8>, flags: u32, mode: u32, owner: Option<Owner> },
        /// Answer: `Node`.
        Mkdir = 5 { dir: NodeId, name: Vec<u8>, mode: u32, owner: Option<Owner> },
        /// `unlinkat`; `rmdir` removes a directory instead of a non-directory.
        /// Answer: `Ok`.
        Unlink = 6 { dir: NodeId, name: Vec<u8>, rmdir: bool },
        /// `renameat2` with `flags` from [`RENAME_FLAGS`]. Answer: `Ok`.
        Rename = 7 { old_dir: NodeId, old_name: Vec<u8>, new_dir: NodeId, new_name: Vec<u8>, flags: u32 },
        /// Lists `dir` from `cookie` (0: the start) in at most `max_bytes` of
        /// entries, each with its attributes and a directory with a new node (see
        /// [`Dirent`]). Answer: `Dirents`.
        Readdir = 8 { dir: NodeId, cookie: u64, max_bytes: u32 },
        /// Answer: `Target`.
        Readlink = 9 { node: NodeId },
        /// Answer: `Node`.
        Symlink = 10 { dir: NodeId, name: Vec<u8>, target: Vec<u8>, owner: Option<Owner> },
        /// A new hard link `name` in `dir` to `target`. Answer: `Node`.
        Link = 11 { dir: NodeId, name: Vec<u8>, target: NodeId },
        /// Answer: `Attr` (the attributes after the change).
        SetAttr = 12 { node: NodeId, attr: SetAttr },
        /// Answer: `StatFs`.
        StatFs = 13 { node: NodeId },
        /// Forgets nodes (unknown ids and [`ROOT`] are ignored). Answer: `Ok`.
        Close = 14 { nodes: Vec<NodeId> },
        /// A new connection to the same server and node table, for root `root`
        /// (the index of a served directory; [`ROOT`] names it on the new
        /// connection). Answer: `Ok` with the new socket.
        Connect = 15 { root: u32 },
        /// Opens the regular file `name` in `dir` for reading, without a node: a
        /// file known from a listing is read in one round trip. Anything but a
        /// regular file is refused as `Open` would refuse it (a symlink is ELOOP).
        /// Answer: `Ok` with the descriptor.
        OpenFile = 16 { dir: NodeId, name: Vec<u8> },
        /// Serves the directory whose descriptor comes with the request (an
        /// `O_PATH` one) as a new root: a Kubernetes pod's container, added to
        /// a running sandbox. Answer: `Root` with a new connection for it.
        AddRoot = 17 { read_only: bool },
        /// A FIFO or socket node (`mode`'s type is `S_IFIFO` or `S_IFSOCK`; any
        /// other is EPERM): only a name on the host, as the Sentry keeps the
        /// pipe or the bound socket itself. Answer: `Node`.
        Mknod = 18 { dir: NodeId, name: Vec<u8>, mode: u32, owner: Option<Owner> },
        /// The value of the extended attribute `name` (a full name, `user.x`) of
        /// a regular file or directory; only `user.` and `security.` names are
        /// read. Answer: `Xattr`.
        GetXattr = 19 { node: NodeId, name: Vec<u8> },
        /// Sets a `user.` attribute of a regular file or directory, with `flags`
        /// from [`XATTR_FLAGS`] (any other name is EOPNOTSUPP). Answer: `Ok`.
        SetXattr = 20 { node: NodeId, name: Vec<u8>, value: Vec<u8>, flags: u32 },
        /// The `user.` and `security.` attribute names of a regular file or
        /// directory (others have none here). Answer: `Names`.
        ListXattr = 21 { node: NodeId },
        /// Removes a `user.` attribute (any other name is EOPNOTSUPP). Answer: `Ok`.
        RemoveXattr = 22 { node: NodeId, name: Vec<u8> },
    }
}

wire_enum! {
    /// What the gofer answers.
    pub enum Response {
        Error = 0 { errno: ErrnoCode },
        Ok = 1 {},
        Walked = 2 { nodes: Vec<NodeInfo>, end: WalkEnd },
        Attr = 3 { stat: Stat },
        Node = 4 { node: NodeInfo },
        /// `eof`: the listing ended within this batch.
        Dirents = 5 { entries: Vec<Dirent>, eof: bool },
        Target = 6 { target: Vec<u8> },
        StatFs = 7 { statfs: StatFs },
        /// The index of a root `AddRoot` added.
        Root = 8 { root: u32 },
        /// An extended attribute's value.
        Xattr = 9 { value: Vec<u8> },
        /// Extended attribute names, without their NULs.
        Names = 10 { names: Vec<Vec<u8>> },
    }
}

/// The size of a `Dirents` response with no entries.
pub const DIRENTS_OVERHEAD: usize = 1 + 4 + 1;

#[cfg(test)]
mod tests {
    use super::*;
    use rvisor_abi::structs::Stat;

    fn stat(seed: i64) -> Stat {
        let mut s = Stat::zeroed();
        s.st_dev = seed as u64 + 1;
        s.st_ino = u64::MAX - seed as u64;
        s.st_nlink = 3;
        s.st_mode = 0o100644;
        s.st_uid = 1000;
        s.st_gid = 100;
        s.st_rdev = 0x0801;
        s.st_size = -1;
        s.st_blksize = 4096;
        s.st_blocks = 8;
        s.st_atime = seed;
        s.st_atime_nsec = 999_999_999;
        s.st_mtime = -seed;
        s.st_mtime_nsec = 1;
        s.st_ctime = i64::MAX;
        s.st_ctime_nsec = 2;
        s
    }

    fn round_trip<T: Wire + std::fmt::Debug>(v: &T) -> T {
        let mut buf = Vec::new();
        v.encode(&mut buf);
        let back = T::decode(&buf).expect("decodes");
        // Re-encoding must give the same bytes: a field dropped or reordered shows.
        let mut again = Vec::new();
        back.encode(&mut again);
        assert_eq!(buf, again, "{v:?}");
        // Every strict prefix is short, never a different valid message.
        for cut in 0..buf.len() {
            assert!(T::decode(&buf[..cut]).is_err(), "prefix {cut} of {v:?} decoded");
        }
        // A trailing byte is refused.
        buf.push(0);
        assert_eq!(T::decode(&buf).unwrap_err(), DecodeError::Trailing);
        back
    }

    fn all_requests() -> Vec<Request> {
        let name = b"file.txt".to_vec();
        vec![
            Request::Walk { dir: ROOT, names: vec![b"usr".to_vec(), b"..".to_vec(), vec![0xff; 255]] },
            Request::Walk { dir: 7, names: vec![] },
            Request::Stat { node: 42 },
            Request::Open { node: 3, flags: (libc::O_RDWR | libc::O_TRUNC) as u32 },
            Request::Create {
                dir: 2,
                name: name.clone(),
                flags: libc::O_WRONLY as u32,
                mode: 0o644,
                owner: Some(Owner { uid: 5, gid: 6 }),
            },
            Request::Mkdir { dir: 2, name: name.clone(), mode: 0o755, owner: None },
            Request::Unlink { dir: 2, name: name.clone(), rmdir: true },
            Request::Rename {
                old_dir: 2,
                old_name: name.clone(),
                new_dir: 9,
                new_name: b"b".to_vec(),
                flags: libc::RENAME_NOREPLACE,
            },
            Request::Readdir { dir: 4, cookie: u64::MAX, max_bytes: 4096 },
            Request::OpenFile { dir: 4, name: b"notes.txt".to_vec() },
            Request::Readlink { node: 8 },
            Request::Symlink { dir: 2, name: name.clone(), target: b"/etc/../..".to_vec(), owner: None },
            Request::Mknod { dir: 2, name: name.clone(), mode: libc::S_IFIFO | 0o600, owner: Some(Owner { uid: 7, gid: 8 }) },
            Request::Link { dir: 2, name, target: 11 },
            Request::SetAttr {
                node: 5,
                attr: SetAttr {
                    mode: Some(0o4755),
                    uid: None,
                    gid: Some(0),
                    size: Some(1 << 40),
                    atime: Some(Timespec { tv_sec: 1, tv_nsec: libc::UTIME_NOW }),
                    mtime: None,
                },
            },
            Request::SetAttr { node: 5, attr: SetAttr::default() },
            Request::StatFs { node: ROOT },
            Request::Close { nodes: vec![2, 3, u64::MAX] },
            Request::Connect { root: 1 },
            Request::AddRoot { read_only: true },
            Request::GetXattr { node: 5, name: b"user.mime_type".to_vec() },
            Request::SetXattr { node: 5, name: b"user.a".to_vec(), value: vec![0, 1, 2], flags: libc::XATTR_CREATE as u32 },
            Request::ListXattr { node: ROOT },
            Request::RemoveXattr { node: 6, name: b"user.a".to_vec() },
        ]
    }

    fn all_responses() -> Vec<Response> {
        vec![
            Response::Error { errno: ErrnoCode::EROFS },
            Response::Ok {},
            Response::Root { root: 3 },
            Response::Xattr { value: vec![0xff; 300] },
            Response::Names { names: vec![b"user.a".to_vec(), b"security.selinux".to_vec()] },
            Response::Walked {
                nodes: vec![NodeInfo { id: 2, stat: stat(1) }, NodeInfo { id: 3, stat: stat(2) }],
                end: WalkEnd::Complete,
            },
            Response::Walked { nodes: vec![NodeInfo { id: 9, stat: stat(3) }], end: WalkEnd::Symlink { index: 0 } },
            Response::Walked { nodes: vec![], end: WalkEnd::Error { index: 0, errno: ErrnoCode::ENOENT } },
            Response::Attr { stat: stat(4) },
            Response::Node { node: NodeInfo { id: u64::MAX, stat: stat(5) } },
            Response::Dirents {
                entries: vec![
                    Dirent { name: b"a".to_vec(), ino: 12, kind: libc::DT_REG, cookie: 1, stat: Some(stat(6)), node: None },
                    Dirent {
                        name: vec![b'x'; 255],
                        ino: 13,
                        kind: libc::DT_DIR,
                        cookie: u64::MAX,
                        stat: Some(stat(7)),
                        node: Some(14),
                    },
                    Dirent { name: b"gone".to_vec(), ino: 15, kind: libc::DT_UNKNOWN, cookie: 2, stat: None, node: None },
                ],
                eof: true,
            },
            Response::Dirents { entries: vec![], eof: false },
            Response::Target { target: b"../../../../etc/passwd".to_vec() },
            Response::StatFs {
                statfs: StatFs {
                    fs_type: 0xEF53,
                    bsize: 4096,
                    blocks: 1,
                    bfree: 2,
                    bavail: 3,
                    files: 4,
                    ffree: 5,
                    fsid: 6,
                    namelen: 255,
                    frsize: 4096,
                    flags: 1,
                },
            },
        ]
    }

    #[test]
    fn every_request_round_trips() {
        let mut seen = std::collections::BTreeSet::new();
        for r in all_requests() {
            let back = round_trip(&r);
            assert_eq!(back.opcode(), r.opcode());
            seen.insert(r.opcode());
        }
        assert_eq!(seen.len(), 22, "a request variant is missing from the test");
    }

    #[test]
    fn every_response_round_trips() {
        let mut seen = std::collections::BTreeSet::new();
        for r in all_responses() {
            let back = round_trip(&r);
            assert_eq!(back.opcode(), r.opcode());
            seen.insert(r.opcode());
        }
        assert_eq!(seen.len(), 11, "a response variant is missing from the test");
    }

    #[test]
    fn decoded_values_match() {
        let r =
            Request::Rename { old_dir: 2, old_name: b"old".to_vec(), new_dir: 3, new_name: b"new".to_vec(), flags: 1 };
        let mut buf = Vec::new();
        r.encode(&mut buf);
        match Request::decode(&buf).unwrap() {
            Request::Rename { old_dir: 2, old_name, new_dir: 3, new_name, flags: 1 } => {
                assert_eq!(old_name, b"old");
                assert_eq!(new_name, b"new");
            }
            other => panic!("{other:?}"),
        }
        let s = stat(77);
        let mut buf = Vec::new();
        Response::Attr { stat: s }.encode(&mut buf);
        // Opcode, then 16 eight-or-four-byte fields: compact, no padding.
        assert_eq!(buf.len(), 1 + 13 * 8 + 3 * 4);
        match Response::decode(&buf).unwrap() {
            Response::Attr { stat } => assert_eq!(format!("{stat:?}"), format!("{s:?}")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dirent_wire_size_is_exact() {
        for (stat, node) in [(None, None), (Some(stat(1)), None), (Some(stat(2)), Some(3))] {
            let d = Dirent { name: b"hello".to_vec(), ino: 1, kind: 4, cookie: 9, stat, node };
            let mut buf = Vec::new();
            d.encode(&mut buf);
            assert_eq!(buf.len(), d.wire_size());
        }
        let mut buf = Vec::new();
        Response::Dirents { entries: vec![], eof: true }.encode(&mut buf);
        assert_eq!(buf.len(), DIRENTS_OVERHEAD);
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert_eq!(Request::decode(&[]).unwrap_err(), DecodeError::Short);
        assert_eq!(Request::decode(&[0]).unwrap_err(), DecodeError::BadTag(0));
        assert_eq!(Request::decode(&[200]).unwrap_err(), DecodeError::BadTag(200));
        // A bool that is neither 0 nor 1.
        let mut buf = Vec::new();
        Request::Unlink { dir: 1, name: b"a".to_vec(), rmdir: false }.encode(&mut buf);
        *buf.last_mut().unwrap() = 2;
        assert_eq!(Request::decode(&buf).unwrap_err(), DecodeError::BadValue);
        // A count far larger than the message does not allocate, it fails.
        let mut buf = vec![1];
        2u64.put(&mut buf);
        u32::MAX.put(&mut buf);
        assert_eq!(Request::decode(&buf).unwrap_err(), DecodeError::Short);
    }
}
