//! ABI structs shared with the application. Layouts match the x86-64 kernel's.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

macro_rules! abi_struct {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident: $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
        #[repr(C)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }
        impl $name {
            pub fn zeroed() -> Self { zerocopy::FromZeros::new_zeroed() }
        }
    };
}

abi_struct! {
    pub struct Timespec { pub tv_sec: i64, pub tv_nsec: i64 }
}
abi_struct! {
    pub struct Timeval { pub tv_sec: i64, pub tv_usec: i64 }
}
abi_struct! {
    pub struct Timezone { pub tz_minuteswest: i32, pub tz_dsttime: i32 }
}
abi_struct! {
    /// `struct kcmp_epoll_slot`: KCMP_EPOLL_TFD's target, the `toff`-th file
    /// registered with descriptor `tfd` in the epoll set at `efd`.
    pub struct KcmpEpollSlot { pub efd: u32, pub tfd: u32, pub toff: u32 }
}
abi_struct! {
    /// `struct futex_waitv`: one word futex_waitv sleeps on, the value it must hold,
    /// and its FUTEX2_* flags (size, private); `reserved` must be 0.
    pub struct FutexWaitv { pub val: u64, pub uaddr: u64, pub flags: u32, pub reserved: u32 }
}
abi_struct! {
    pub struct Iovec { pub base: u64, pub len: u64 }
}
abi_struct! {
    pub struct Rlimit { pub cur: u64, pub max: u64 }
}
abi_struct! {
    /// `struct msghdr` (sendmsg, recvmsg).
    pub struct Msghdr {
        pub name: u64, pub namelen: u32, pub pad: u32,
        pub iov: u64, pub iovlen: u64, pub control: u64, pub controllen: u64,
        pub flags: i32, pub pad2: u32,
    }
}
abi_struct! {
    /// `struct cmsghdr`: a control message's length (header included), level
    /// and type; its data follows, 8-byte aligned.
    pub struct Cmsghdr { pub len: u64, pub level: i32, pub kind: i32 }
}
abi_struct! {
    /// `struct sockaddr_in`: the port and address in network byte order.
    pub struct SockaddrIn { pub family: u16, pub port: [u8; 2], pub addr: [u8; 4], pub zero: [u8; 8] }
}
abi_struct! {
    /// `struct sockaddr_in6`: the port and address in network byte order.
    pub struct SockaddrIn6 { pub family: u16, pub port: [u8; 2], pub flowinfo: u32, pub addr: [u8; 16], pub scope_id: u32 }
}
abi_struct! {
    /// `struct sock_extended_err` (linux/errqueue.h): an error read from a
    /// socket's error queue; the offender's sockaddr follows it.
    pub struct SockExtendedErr { pub errno: u32, pub origin: u8, pub kind: u8, pub code: u8, pub pad: u8, pub info: u32, pub data: u32 }
}
abi_struct! {
    /// `struct sockaddr_nl`.
    pub struct SockaddrNl { pub family: u16, pub pad: u16, pub pid: u32, pub groups: u32 }
}
abi_struct! {
    /// `struct nlmsghdr`: the header of every netlink message.
    pub struct Nlmsghdr { pub len: u32, pub kind: u16, pub flags: u16, pub seq: u32, pub pid: u32 }
}
abi_struct! {
    /// `struct ifinfomsg` (RTM_NEWLINK, RTM_GETLINK).
    pub struct Ifinfomsg { pub family: u8, pub pad: u8, pub kind: u16, pub index: i32, pub flags: u32, pub change: u32 }
}
abi_struct! {
    /// `struct ifaddrmsg` (RTM_NEWADDR, RTM_GETADDR).
    pub struct Ifaddrmsg { pub family: u8, pub prefixlen: u8, pub flags: u8, pub scope: u8, pub index: u32 }
}
abi_struct! {
    /// `struct rtmsg` (RTM_NEWROUTE, RTM_GETROUTE): `kind` is rtm_type.
    pub struct Rtmsg {
        pub family: u8, pub dst_len: u8, pub src_len: u8, pub tos: u8,
        pub table: u8, pub protocol: u8, pub scope: u8, pub kind: u8, pub flags: u32,
    }
}
abi_struct! {
    /// `struct sockaddr_ll`: an AF_PACKET address (`protocol` in network order).
    pub struct SockaddrLl {
        pub family: u16, pub protocol: u16, pub ifindex: i32,
        pub hatype: u16, pub pkttype: u8, pub halen: u8, pub addr: [u8; 8],
    }
}
abi_struct! {
    /// `struct rtattr`: a netlink attribute's header; the value follows, padded to 4.
    pub struct Rtattr { pub len: u16, pub kind: u16 }
}
abi_struct! {
    /// `struct inet_diag_sockid`: a socket's ports and addresses (network
    /// order; an IPv4 address in the first four bytes), interface and cookie.
    pub struct InetDiagSockid {
        pub sport: [u8; 2], pub dport: [u8; 2], pub src: [u8; 16], pub dst: [u8; 16],
        pub interface: u32, pub cookie: [u32; 2],
    }
}
abi_struct! {
    /// `struct inet_diag_req_v2` (SOCK_DIAG_BY_FAMILY for AF_INET, AF_INET6):
    /// `ext` asks for attributes (bit N-1 for INET_DIAG_N), `states` is a
    /// mask of TCP state numbers.
    pub struct InetDiagReqV2 {
        pub family: u8, pub protocol: u8, pub ext: u8, pub pad: u8, pub states: u32,
        pub id: InetDiagSockid,
    }
}
abi_struct! {
    /// `struct inet_diag_msg`: one socket of a SOCK_DIAG_BY_FAMILY answer.
    pub struct InetDiagMsg {
        pub family: u8, pub state: u8, pub timer: u8, pub retrans: u8,
        pub id: InetDiagSockid,
        pub expires: u32, pub rqueue: u32, pub wqueue: u32, pub uid: u32, pub inode: u32,
    }
}
abi_struct! {
    /// `struct unix_diag_req`: `show` asks for attributes (UDIAG_SHOW_*);
    /// `ino` and `cookie` name the socket of a single query.
    pub struct UnixDiagReq {
        pub family: u8, pub protocol: u8, pub pad: u16, pub states: u32,
        pub ino: u32, pub show: u32, pub cookie: [u32; 2],
    }
}
abi_struct! {
    /// `struct unix_diag_msg`: one AF_UNIX socket of an answer.
    pub struct UnixDiagMsg { pub family: u8, pub kind: u8, pub state: u8, pub pad: u8, pub ino: u32, pub cookie: [u32; 2] }
}
abi_struct! {
    /// `struct ifreq` (the SIOCGIF* ioctls): a name, then a 24-byte union.
    pub struct Ifreq { pub name: [u8; 16], pub data: [u8; 24] }
}
abi_struct! {
    /// The first 104 bytes of `struct tcp_info` (TCP_INFO), the part every Linux since
    /// 2.6 has: the state and such bytes, then times (µs), sizes and counters.
    pub struct TcpInfo {
        pub state: u8, pub ca_state: u8, pub retransmits: u8, pub probes: u8,
        pub backoff: u8, pub options: u8, pub wscale: u8, pub flags: u8,
        pub rto: u32, pub ato: u32, pub snd_mss: u32, pub rcv_mss: u32,
        pub unacked: u32, pub sacked: u32, pub lost: u32, pub retrans: u32, pub fackets: u32,
        pub last_data_sent: u32, pub last_ack_sent: u32, pub last_data_recv: u32, pub last_ack_recv: u32,
        pub pmtu: u32, pub rcv_ssthresh: u32, pub rtt: u32, pub rttvar: u32,
        pub snd_ssthresh: u32, pub snd_cwnd: u32, pub advmss: u32, pub reordering: u32,
        pub rcv_rtt: u32, pub rcv_space: u32, pub total_retrans: u32,
    }
}
abi_struct! {
    /// `struct ptrace_syscall_info` (PTRACE_GET_SYSCALL_INFO): the stop's kind, then
    /// the call's number and arguments (entry) or its result and whether it failed (exit).
    pub struct PtraceSyscallInfo {
        pub op: u8, pub pad: [u8; 3], pub arch: u32,
        pub instruction_pointer: u64, pub stack_pointer: u64,
        pub data: [u64; 8],
    }
}
abi_struct! {
    /// `struct ucred` (SCM_CREDENTIALS, SO_PEERCRED).
    #[derive(PartialEq, Eq)]
    pub struct Ucred { pub pid: i32, pub uid: u32, pub gid: u32 }
}
abi_struct! {
    /// `struct sysinfo` (112 bytes; the padding Linux leaves implicit is spelled out).
    pub struct Sysinfo {
        pub uptime: i64, pub loads: [u64; 3],
        pub totalram: u64, pub freeram: u64, pub sharedram: u64, pub bufferram: u64,
        pub totalswap: u64, pub freeswap: u64,
        pub procs: u16, pub pad: u16, pub pad2: u32,
        pub totalhigh: u64, pub freehigh: u64, pub mem_unit: u32, pub pad3: u32,
    }
}
abi_struct! {
    pub struct Winsize { pub ws_row: u16, pub ws_col: u16, pub ws_xpixel: u16, pub ws_ypixel: u16 }
}
abi_struct! {
    /// The kernel's `struct termios` (not glibc's larger one).
    pub struct Termios {
        pub c_iflag: u32, pub c_oflag: u32, pub c_cflag: u32, pub c_lflag: u32,
        pub c_line: u8, pub c_cc: [u8; 19],
    }
}
abi_struct! {
    /// `struct sigaction` as `rt_sigaction` takes it.
    pub struct KernelSigaction { pub handler: u64, pub flags: u64, pub restorer: u64, pub mask: u64 }
}
abi_struct! {
    /// `struct inotify_event` without its name, which follows it.
    pub struct InotifyEvent { pub wd: i32, pub mask: u32, pub cookie: u32, pub len: u32 }
}
abi_struct! {
    /// `struct seccomp_data`: a system call as a seccomp filter sees it.
    pub struct SeccompData { pub nr: i32, pub arch: u32, pub instruction_pointer: u64, pub args: [u64; 6] }
}
abi_struct! {
    /// `struct seccomp_notif`: a call a seccomp listener receives (SECCOMP_IOCTL_NOTIF_RECV).
    pub struct SeccompNotif { pub id: u64, pub pid: u32, pub flags: u32, pub data: SeccompData }
}
abi_struct! {
    /// `struct seccomp_notif_resp`: a seccomp listener's answer (SECCOMP_IOCTL_NOTIF_SEND).
    pub struct SeccompNotifResp { pub id: u64, pub val: i64, pub error: i32, pub flags: u32 }
}
abi_struct! {
    /// `struct seccomp_notif_addfd`: a descriptor a seccomp listener gives the caller
    /// (SECCOMP_IOCTL_NOTIF_ADDFD).
    pub struct SeccompNotifAddfd { pub id: u64, pub flags: u32, pub srcfd: u32, pub newfd: u32, pub newfd_flags: u32 }
}
abi_struct! {
    /// `struct iocb`: one native AIO request (io_submit). `key` is written back
    /// (KIOCB_KEY, 0); `rw_flags` are RWF_* flags.
    pub struct Iocb {
        pub data: u64, pub key: u32, pub rw_flags: i32,
        pub lio_opcode: u16, pub reqprio: i16, pub fildes: u32,
        pub buf: u64, pub nbytes: u64, pub offset: i64,
        pub reserved2: u64, pub flags: u32, pub resfd: u32,
    }
}
abi_struct! {
    /// `struct io_event`: a completed AIO request (io_getevents).
    pub struct IoEvent { pub data: u64, pub obj: u64, pub res: i64, pub res2: i64 }
}
abi_struct! {
    /// `struct aio_ring`: the header of the ring io_setup maps; its events follow.
    pub struct AioRing {
        pub id: u32, pub nr: u32, pub head: u32, pub tail: u32,
        pub magic: u32, pub compat_features: u32, pub incompat_features: u32, pub header_length: u32,
    }
}
abi_struct! {
    pub struct Stat {
        pub st_dev: u64, pub st_ino: u64, pub st_nlink: u64,
        pub st_mode: u32, pub st_uid: u32, pub st_gid: u32, pub pad0: u32,
        pub st_rdev: u64, pub st_size: i64, pub st_blksize: i64, pub st_blocks: i64,
        pub st_atime: i64, pub st_atime_nsec: i64,
        pub st_mtime: i64, pub st_mtime_nsec: i64,
        pub st_ctime: i64, pub st_ctime_nsec: i64,
        pub unused: [i64; 3],
    }
}
abi_struct! {
    pub struct Utsname {
        pub sysname: [u8; 65], pub nodename: [u8; 65], pub release: [u8; 65],
        pub version: [u8; 65], pub machine: [u8; 65], pub domainname: [u8; 65],
    }
}


impl Stat {
    /// The same attributes as the host's `struct stat` gives them.
    pub fn from_host(s: &libc::stat) -> Stat {
        let mut st = Stat::zeroed();
        st.st_dev = s.st_dev;
        st.st_ino = s.st_ino;
        st.st_nlink = s.st_nlink;
        st.st_mode = s.st_mode;
        st.st_uid = s.st_uid;
        st.st_gid = s.st_gid;
        st.st_rdev = s.st_rdev;
        st.st_size = s.st_size;
        st.st_blksize = s.st_blksize;
        st.st_blocks = s.st_blocks;
        st.st_atime = s.st_atime;
        st.st_atime_nsec = s.st_atime_nsec;
        st.st_mtime = s.st_mtime;
        st.st_mtime_nsec = s.st_mtime_nsec;
        st.st_ctime = s.st_ctime;
        st.st_ctime_nsec = s.st_ctime_nsec;
        st
    }
}

impl Timespec {
    /// The duration this names, or EINVAL for a negative or malformed value.
    pub fn duration(&self) -> crate::SysResult<std::time::Duration> {
        if self.tv_sec < 0 || !(0..1_000_000_000).contains(&self.tv_nsec) {
            return Err(crate::errno!(EINVAL));
        }
        Ok(std::time::Duration::new(self.tv_sec as u64, self.tv_nsec as u32))
    }

    /// Nanoseconds since the epoch of its clock (saturating).
    pub fn as_ns(&self) -> i64 {
        self.tv_sec.saturating_mul(1_000_000_000).saturating_add(self.tv_nsec)
    }
}

abi_struct! {
    /// `struct mount_attr` (mount_setattr; MOUNT_ATTR_SIZE_VER0 is its size).
    #[derive(Default)]
    pub struct MountAttr { pub attr_set: u64, pub attr_clr: u64, pub propagation: u64, pub userns_fd: u64 }
}

/// Fills a fixed-size, NUL-terminated C string field.
pub fn set_cstr(field: &mut [u8], s: &str) {
    field.fill(0);
    let n = s.len().min(field.len().saturating_sub(1));
    field[..n].copy_from_slice(&s.as_bytes()[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<Stat>(), 144);
        assert_eq!(std::mem::size_of::<Utsname>(), 390);
        assert_eq!(std::mem::size_of::<Termios>(), 36);
        assert_eq!(std::mem::size_of::<Sysinfo>(), 112);
        assert_eq!(std::mem::size_of::<Msghdr>(), 56);
        assert_eq!(std::mem::size_of::<KernelSigaction>(), 32);
        assert_eq!(std::mem::size_of::<InotifyEvent>(), 16);
        assert_eq!(std::mem::size_of::<Rtmsg>(), 12);
        assert_eq!(std::mem::size_of::<SockaddrLl>(), 20);
        assert_eq!(std::mem::size_of::<SeccompData>(), 64);
        assert_eq!(std::mem::size_of::<SeccompNotif>(), 80);
        assert_eq!(std::mem::size_of::<SeccompNotifResp>(), 24);
        assert_eq!(std::mem::size_of::<SeccompNotifAddfd>(), 24);
        assert_eq!(std::mem::size_of::<Iocb>(), 64);
        assert_eq!(std::mem::size_of::<IoEvent>(), 32);
        assert_eq!(std::mem::size_of::<AioRing>(), 32);
        assert_eq!(std::mem::size_of::<MountAttr>(), 32);
        assert_eq!(std::mem::size_of::<InetDiagReqV2>(), 56);
        assert_eq!(std::mem::size_of::<InetDiagMsg>(), 72);
        assert_eq!(std::mem::size_of::<UnixDiagReq>(), 24);
        assert_eq!(std::mem::size_of::<UnixDiagMsg>(), 16);
    }
}
