//! Typed syscall arguments and return values: how a raw register becomes a
//! handler's parameter, and how `--strace` shows it.

use crate::mm::UserRef;
use crate::task::Task;
use crate::vfs::Fd;
use rvisor_abi::UserAddr;

/// A type a syscall argument register can be decoded into.
pub trait SyscallArg: Sized {
    fn from_arg(raw: u64) -> Self;
    fn strace(raw: u64, _t: &Task) -> String {
        format!("{raw:#x}")
    }
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl SyscallArg for $t {
            fn from_arg(raw: u64) -> Self { raw as $t }
            fn strace(raw: u64, _t: &Task) -> String { (raw as $t).to_string() }
        }
    )*};
}
int_arg!(i32, u32, i64, usize);

impl SyscallArg for u64 {
    fn from_arg(raw: u64) -> Self {
        raw
    }
}

impl SyscallArg for Fd {
    fn from_arg(raw: u64) -> Self {
        Fd(raw as i32)
    }
    fn strace(raw: u64, _t: &Task) -> String {
        (raw as i32).to_string()
    }
}

impl SyscallArg for UserAddr {
    fn from_arg(raw: u64) -> Self {
        UserAddr(raw)
    }
    fn strace(raw: u64, _t: &Task) -> String {
        format!("{:?}", UserAddr(raw))
    }
}

impl<T> SyscallArg for UserRef<T> {
    fn from_arg(raw: u64) -> Self {
        UserRef::new(UserAddr(raw))
    }
    fn strace(raw: u64, _t: &Task) -> String {
        format!("{:?}", UserAddr(raw))
    }
}

/// A pointer to a NUL-terminated string (a path); `--strace` shows the string.
#[derive(Clone, Copy, Debug)]
pub struct UserCStr(pub UserAddr);

/// Longest path Linux accepts (PATH_MAX).
pub const PATH_MAX: usize = 4096;

impl SyscallArg for UserCStr {
    fn from_arg(raw: u64) -> Self {
        UserCStr(UserAddr(raw))
    }
    fn strace(raw: u64, t: &Task) -> String {
        match t.mm.read_cstr(UserAddr(raw), PATH_MAX) {
            Ok(s) => format!("{:?}", String::from_utf8_lossy(&s)),
            Err(_) => format!("{:?}", UserAddr(raw)),
        }
    }
}

/// What a handler's success value puts in `rax`.
pub trait IntoSyscallReturn {
    fn into_ret(self) -> u64;
}

macro_rules! int_ret {
    ($($t:ty),*) => {$(
        impl IntoSyscallReturn for $t {
            fn into_ret(self) -> u64 { self as u64 }
        }
    )*};
}
int_ret!(u64, usize, u32, i32, i64);

impl IntoSyscallReturn for () {
    fn into_ret(self) -> u64 {
        0
    }
}

impl IntoSyscallReturn for UserAddr {
    fn into_ret(self) -> u64 {
        self.0
    }
}

impl IntoSyscallReturn for Fd {
    fn into_ret(self) -> u64 {
        self.0 as u64
    }
}
