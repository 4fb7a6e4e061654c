//! `UserAddr`: an address in the application's address space. Arithmetic is checked
//! and fails with `EFAULT`, so a hostile pointer can never wrap around.

use crate::{errno, SysResult};
use std::fmt;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(transparent)]
pub struct UserAddr(pub u64);

impl UserAddr {
    pub const NULL: UserAddr = UserAddr(0);

    pub fn is_null(self) -> bool {
        self.0 == 0
    }

    #[track_caller]
    pub fn add(self, n: u64) -> SysResult<UserAddr> {
        self.0.checked_add(n).map(UserAddr).ok_or_else(|| errno!(EFAULT))
    }

    #[track_caller]
    pub fn sub(self, n: u64) -> SysResult<UserAddr> {
        self.0.checked_sub(n).map(UserAddr).ok_or_else(|| errno!(EFAULT))
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// Whether `[self, self + len)` lies below the top of user memory (Linux's
    /// access_ok): what some calls check before doing anything else.
    pub fn range_ok(self, len: u64) -> bool {
        self.0.checked_add(len).is_some_and(|end| end <= TASK_SIZE)
    }
}

/// The highest user address + 1 (x86-64's TASK_SIZE).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;

impl fmt::Debug for UserAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            f.write_str("NULL")
        } else {
            write!(f, "{:#x}", self.0)
        }
    }
}
