//! The thread group: what all threads of one process share.

use rvisor_abi::structs::{KernelSigaction, Rlimit};
use std::sync::Mutex;

pub const RLIMIT_COUNT: usize = 16;
const RLIM_INFINITY: u64 = u64::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
}

impl Credentials {
    pub fn root() -> Credentials {
        Credentials { uid: 0, euid: 0, suid: 0, gid: 0, egid: 0, sgid: 0 }
    }
}

/// Linux's defaults for a fresh init process (as `prlimit` shows on a typical host).
fn default_rlimits() -> [Rlimit; RLIMIT_COUNT] {
    let inf = Rlimit { cur: RLIM_INFINITY, max: RLIM_INFINITY };
    let mut r = [inf; RLIMIT_COUNT];
    r[3] = Rlimit { cur: 8 << 20, max: RLIM_INFINITY }; // STACK
    r[4] = Rlimit { cur: 0, max: RLIM_INFINITY }; // CORE
    r[6] = Rlimit { cur: 63_459, max: 63_459 }; // NPROC
    r[7] = Rlimit { cur: 1024, max: 1_048_576 }; // NOFILE
    r[8] = Rlimit { cur: 8 << 20, max: 8 << 20 }; // MEMLOCK
    r[11] = Rlimit { cur: 63_459, max: 63_459 }; // SIGPENDING
    r[12] = Rlimit { cur: 819_200, max: 819_200 }; // MSGQUEUE
    r[13] = Rlimit { cur: 0, max: 0 }; // NICE
    r[14] = Rlimit { cur: 0, max: 0 }; // RTPRIO
    r
}

pub struct ThreadGroup {
    /// The process id (the leader's tid) in the sandbox's PID namespace.
    pub tgid: i32,
    /// The parent's pid; 0 for the sandbox's init, whose parent is outside.
    pub ppid: i32,
    pub creds: Mutex<Credentials>,
    /// Signal dispositions, index n-1 for signal n. Leaf lock.
    pub sigactions: Mutex<[KernelSigaction; 64]>,
    /// Leaf lock.
    pub rlimits: Mutex<[Rlimit; RLIMIT_COUNT]>,
    /// The executable's path, as /proc/self/exe shows it.
    pub exe: String,
}

impl ThreadGroup {
    pub fn new(tgid: i32, ppid: i32, creds: Credentials, exe: String) -> ThreadGroup {
        ThreadGroup {
            tgid,
            ppid,
            creds: Mutex::new(creds),
            sigactions: Mutex::new([KernelSigaction::zeroed(); 64]),
            rlimits: Mutex::new(default_rlimits()),
            exe,
        }
    }

    pub fn creds(&self) -> Credentials {
        *self.creds.lock().unwrap_or_else(|e| e.into_inner())
    }
}
