//! `Errno`: a Linux error code plus where in the Sentry it was raised.

use std::fmt;
use std::panic::Location;

/// A raw Linux errno value (`EINVAL` = 22). Restart codes (`ERESTARTSYS` …) are
/// kernel-internal: the syscall layer turns them into `EINTR` or a restart and they
/// never reach the application.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrnoCode(pub u16);

macro_rules! codes {
    ($($name:ident = $v:expr),* $(,)?) => {
        impl ErrnoCode {
            $(pub const $name: ErrnoCode = ErrnoCode($v);)*
            pub fn name(self) -> Option<&'static str> {
                match self.0 { $($v => Some(stringify!($name)),)* _ => None }
            }
        }
    };
}

codes! {
    EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7,
    ENOEXEC = 8, EBADF = 9, ECHILD = 10, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
    EFAULT = 14, EBUSY = 16, EEXIST = 17, EXDEV = 18, ENODEV = 19, ENOTDIR = 20,
    EISDIR = 21, EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOTTY = 25, EFBIG = 27,
    ENOSPC = 28, ESPIPE = 29, EROFS = 30, EMLINK = 31, EPIPE = 32, EDOM = 33,
    ERANGE = 34, EDEADLK = 35, ENAMETOOLONG = 36, ENOLCK = 37, ENOSYS = 38,
    ENOTEMPTY = 39, ELOOP = 40, ENOMSG = 42, EIDRM = 43, ENODATA = 61, EOVERFLOW = 75, EBADFD = 77, EUSERS = 87, ENOTSOCK = 88,
    EDESTADDRREQ = 89, EMSGSIZE = 90, EPROTOTYPE = 91, ENOPROTOOPT = 92, EPROTONOSUPPORT = 93, ESOCKTNOSUPPORT = 94,
    EOPNOTSUPP = 95, EAFNOSUPPORT = 97, EADDRINUSE = 98, EADDRNOTAVAIL = 99, ENETUNREACH = 101, ECONNRESET = 104, ENOBUFS = 105, EISCONN = 106, ENOTCONN = 107,
    ETIMEDOUT = 110, ECONNREFUSED = 111, EHOSTUNREACH = 113, EALREADY = 114, EINPROGRESS = 115, ESTALE = 116, ECANCELED = 125,
    ERESTARTSYS = 512, ERESTARTNOINTR = 513, ERESTARTNOHAND = 514,
    ERESTART_RESTARTBLOCK = 516,
}

impl ErrnoCode {
    /// Restart codes are internal to the kernel and must never be returned to the app.
    pub fn is_restart(self) -> bool {
        matches!(self.0, 512..=516)
    }
}

impl fmt::Debug for ErrnoCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "errno {}", self.0),
        }
    }
}

/// An error returned by a syscall handler. It records the source location that
/// raised it, so `--debug` can say why a call failed.
#[derive(Clone, Copy)]
pub struct Errno {
    pub code: ErrnoCode,
    pub location: &'static Location<'static>,
}

impl Errno {
    #[track_caller]
    pub fn new(code: ErrnoCode) -> Errno {
        Errno { code, location: Location::caller() }
    }

    /// The value the app sees in `rax`: `-errno`.
    pub fn to_return(self) -> u64 {
        (-(self.code.0 as i64)) as u64
    }
}

impl PartialEq for Errno {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} at {}:{}", self.code, self.location.file(), self.location.line())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

pub type SysResult<T> = Result<T, Errno>;

/// `errno!(EINVAL)` builds an `Errno` that remembers where it was raised.
#[macro_export]
macro_rules! errno {
    ($code:ident) => {
        $crate::Errno::new($crate::ErrnoCode::$code)
    };
}

/// `error!(EINVAL)` is `Err(errno!(EINVAL))`.
#[macro_export]
macro_rules! error {
    ($code:ident) => {
        Err($crate::errno!($code))
    };
}
