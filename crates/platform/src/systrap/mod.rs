//! The systrap platform: app threads run in stub processes under a seccomp filter
//! that turns every syscall into a SIGSYS. The stub's handler (a page of assembly,
//! see `stub.rs`) leaves the signal frame on the thread's signal stack, which lives
//! in memory shared with the Sentry, and waits; the Sentry reads the registers from
//! the frame, serves the event, writes the registers back into the frame and lets
//! the handler return through `rt_sigreturn`. Faults and kicks (SIGURG) come the
//! same way. No ptrace anywhere.
//!
//! Handoff, per thread, on one futex word (`stub::SLOT_STATE`): the stub posts
//! REQ (waking the Sentry only if it sleeps), spins if told to, then sleeps as
//! APP_SLEEP; the Sentry replies IDLE (waking the stub only if it sleeps). By default
//! a stub thread is pinned to its Sentry thread's CPU and neither spins (they take
//! turns, like a pinned ptrace tracee and its tracer: no wake-up of an idle CPU,
//! which is what costs on virtual machines). A thread whose events are hot, while
//! another CPU is free (`host_cpus::claim_free`), runs its stub there and both sides
//! spin (see `Context::switch`).
//!
//! Address-space changes are queued and run by the stub's helper thread in one
//! batch (`flush`). Its completion is an eventfd write, which app code cannot make:
//! a frame is only reused after the stub really dropped it.

mod filter;
mod stub;
mod window;

use crate::{balancer, host_cpus};
use crate::stub::QueuedCall;
use crate::{AddressSpace, Context, CpuState, Event, Interrupter, Perms, Platform, PlatformError, Result, ThreadSeed};
use std::any::Any;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use crate::lock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use stub::*;
use window::{above_stdio, block_off, stub_addr, Window};

pub use stub::MAX_THREADS;

fn host_err(what: &'static str) -> PlatformError {
    PlatformError::Host(what, io::Error::last_os_error())
}

// ---------------------------------------------------------------------------------
// Spinning policy
// ---------------------------------------------------------------------------------

/// How long the Sentry spins for an event before sleeping.
const SENTRY_SPIN: Duration = Duration::from_micros(20);
/// How many `pause`s a stub thread spins for its reply before sleeping (~25 ns each here).
const STUB_SPIN: u32 = 1000;
/// An event is hot when the app ran less than this before it, and the Sentry took
/// less than this to serve the one before; this many hot events in a row switch a
/// thread to spinning.
const HOT: Duration = Duration::from_micros(30);
const HOT_EVENTS: u32 = 8;
/// A thread's hot count saturates here and a slow event takes `HOT_EVENTS` off it,
/// so that a lone slow event (a gofer request among quick calls) does not move the
/// stub back and forth: each move costs ~30 µs here.
const HOT_MAX: u32 = 2 * HOT_EVENTS;

/// How fast a thread's events come and go, which decides where its stub runs.
#[derive(Default)]
struct Pace {
    /// How many events were recently hot (app code ran briefly, and so did the
    /// Sentry): up by one for a hot event, down by `HOT_EVENTS` for another.
    hot: u32,
    /// The stub thread was just moved to another CPU: the next event pays for the
    /// move (waking an idle CPU, 50–100 µs on a slow host) and says nothing about the
    /// thread. Counting it would undo the move: a thread moved to spin lost its hot
    /// count to the move's own cost and moved back, again and again (systrap's
    /// `getppid` read 20–30 µs instead of 4 on a host twice as slow as usual).
    moved: bool,
    /// Events since the stub was moved to spin, while it spins.
    spell: Option<u32>,
}

impl Pace {
    fn note(&mut self, hot: bool) {
        if let Some(n) = &mut self.spell {
            *n = n.saturating_add(1);
        }
        if !std::mem::take(&mut self.moved) {
            self.hot = if hot { (self.hot + 1).min(HOT_MAX) } else { self.hot.saturating_sub(HOT_EVENTS) };
        }
    }

    fn wants_spinning(&self) -> bool {
        self.hot >= HOT_EVENTS
    }

    /// The stub thread was moved; a move to spin starts with a full count, so that
    /// moving back takes more than one slow event from the start. A move back ends a
    /// spell of spinning: returns whether it paid (lasted `SPELL_PAID` events).
    fn moved(&mut self, to_spin: bool) -> Option<bool> {
        self.moved = true;
        if to_spin {
            self.hot = HOT_MAX;
            self.spell = Some(0);
            return None;
        }
        self.spell.take().map(|n| n >= SPELL_PAID)
    }
}

/// A spell of spinning that ends within this many events did not pay.
const SPELL_PAID: u32 = 64;
/// How long no thread starts spinning after a spell that did not pay: doubled by each
/// such spell up to the most, back to the least after one that paid.
const SPIN_BAN_MIN: Duration = Duration::from_millis(1);
const SPIN_BAN_MAX: Duration = Duration::from_secs(1);

/// Spinning needs the host to run both CPUs at once. A host that throttles this
/// machine (a burstable VM out of credit: its CPUs show steal time) runs them in
/// turn, and each side spins while the other is off its CPU: `getppid` took
/// 37–56 µs spinning where the two taking turns on one CPU took 12–14. That state
/// lasts seconds, and such spells end fast, so after each one spinning is barred
/// for longer; a spell that pays lifts the bar.
struct SpinBan {
    /// Nanoseconds after `epoch` until which no thread starts spinning.
    until: AtomicU64,
    /// The next bar's length in nanoseconds (0: the least).
    next: AtomicU64,
}

static SPIN_BAN: SpinBan = SpinBan { until: AtomicU64::new(0), next: AtomicU64::new(0) };

impl SpinBan {
    fn epoch() -> Instant {
        static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *EPOCH.get_or_init(Instant::now)
    }

    fn now() -> u64 {
        Self::epoch().elapsed().as_nanos() as u64
    }

    fn allows(&self, now: u64) -> bool {
        now >= self.until.load(Ordering::Relaxed)
    }

    /// A spell of spinning ended at `now`, having paid or not.
    fn spell_ended(&self, paid: bool, now: u64) {
        if paid {
            self.next.store(0, Ordering::Relaxed);
            return;
        }
        let ban = self.next.load(Ordering::Relaxed).max(SPIN_BAN_MIN.as_nanos() as u64);
        self.until.store(now + ban, Ordering::Relaxed);
        self.next.store((ban * 2).min(SPIN_BAN_MAX.as_nanos() as u64), Ordering::Relaxed);
    }
}

/// CPU time a kicked thread may use without answering before it is deemed to block
/// the kick (answering takes microseconds of it).
const KICK_CPU_NS: u64 = 50_000_000;
/// How long the Sentry sleeps before checking that a silent stub is still alive.
const LIVENESS_PERIOD: Duration = Duration::from_millis(200);

fn futex_wait(word: &AtomicU32, val: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec { tv_sec: d.as_secs() as i64, tv_nsec: d.subsec_nanos() as i64 });
    let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT (shared: the stub waits on the same memfd page) reads the
    // word we point to; the timeout is a local.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, val, tsp, 0, 0) };
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1, 0, 0, 0) };
}

// ---------------------------------------------------------------------------------
// The platform
// ---------------------------------------------------------------------------------

pub struct SystrapPlatform {
    memory: Arc<OwnedFd>,
    spares: Arc<Spares>,
    /// Syscall patching (`--systrap-patch`): the trampoline, when on.
    tramp: Option<Tramp>,
}

/// Stubs started ahead of need. Starting one (its process, two seccomp filters,
/// its helper thread) is most of what a fork or exec costs here; a new address
/// space takes a ready one, and a background thread starts the next, off the
/// critical path and usually on the other CPU. That thread also recycles the stubs
/// of address spaces that are gone (`recycle`), so that a process that forks
/// again and again starts no stub process at all.
struct Spares {
    /// Leaf lock.
    pool: Mutex<Pool>,
    wanted: Condvar,
    /// Set once the refilling thread runs (or cannot: then stubs start on demand).
    refilling: std::sync::Once,
    /// The refilling thread runs: stubs given back are recycled.
    recycling: AtomicBool,
}

struct Pool {
    ready: Vec<Arc<Stub>>,
    /// Stub processes whose address space is gone, to recycle.
    returned: Vec<Returned>,
}

/// A stub process given back, with what its slots held.
struct Returned {
    proc: Arc<StubProcess>,
    slots: Vec<SlotUse>,
}

/// How many started stubs wait for an address space (a fork then an exec take two).
const SPARE_STUBS: usize = 2;
/// How many may wait when recycled ones come back (each costs ~20 KiB of host memory
/// and two sleeping threads).
const MAX_SPARE_STUBS: usize = 4;

impl Spares {
    fn take(&self) -> Option<Arc<Stub>> {
        let stub = lock(&self.pool).ready.pop();
        self.wanted.notify_one();
        stub
    }

    fn give_back(&self, r: Returned) {
        if self.recycling.load(Ordering::Acquire) {
            lock(&self.pool).returned.push(r);
            self.wanted.notify_one();
        }
    }

    /// Starts the thread that keeps `SPARE_STUBS` stubs ready.
    fn start_refilling(self: &Arc<Self>, memory: &Arc<OwnedFd>) {
        self.refilling.call_once(|| {
            let (me, memory) = (self.clone(), memory.clone());
            let started = std::thread::Builder::new().name("stub-spares".into()).spawn(move || {
                host_cpus::unpin_current_thread();
                me.recycling.store(true, Ordering::Release);
                loop {
                    let mut pool = lock(&me.pool);
                    while pool.ready.len() >= SPARE_STUBS && pool.returned.is_empty() {
                        pool = me.wanted.wait(pool).unwrap_or_else(|e| e.into_inner());
                    }
                    if let Some(r) = pool.returned.pop() {
                        let full = pool.ready.len() >= MAX_SPARE_STUBS;
                        drop(pool);
                        if !full {
                            match Stub::recycle(r) {
                                Ok(s) => lock(&me.pool).ready.push(Arc::new(s)),
                                Err(e) => tracing::debug!("a stub could not be recycled: {e}"),
                            }
                        }
                        continue;
                    }
                    drop(pool);
                    match Stub::spawn(memory.as_raw_fd()).and_then(Stub::started) {
                        Ok(s) => lock(&me.pool).ready.push(Arc::new(s)),
                        Err(e) => {
                            me.recycling.store(false, Ordering::Release);
                            lock(&me.pool).returned.clear();
                            tracing::warn!("cannot start a spare stub ({e}); stubs start on demand");
                            return;
                        }
                    }
                }
            });
            if let Err(e) = started {
                tracing::warn!("no stub-spares thread ({e}); stubs start on demand");
            }
        });
    }
}

impl SystrapPlatform {
    /// `patch`: let the kernel patch syscall sites to jump to the trampoline (needs
    /// user-mode fsgsbase: the trampoline finds its slot through GS).
    pub fn new(memory_fd: RawFd, patch: bool) -> Result<SystrapPlatform> {
        let inst = stub::install().map_err(|e| PlatformError::Host("systrap stub install", e))?;
        if patch && !inst.fsgsbase {
            // Patching is on by default, so its absence is no news worth a warning.
            tracing::info!("systrap: no user-mode fsgsbase here, so no syscall patching");
        }
        let tramp = (patch && inst.fsgsbase).then_some(inst.tramp);
        // Read the CPU set now, before any thread is pinned.
        host_cpus::allowed();
        // SAFETY: PR_GET_SECCOMP takes no pointers.
        if unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } < 0 {
            return Err(PlatformError::Unsupported(format!(
                "systrap needs seccomp, which this host kernel does not offer ({})",
                io::Error::last_os_error()
            )));
        }
        // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor we own.
        let dup = unsafe { libc::fcntl(memory_fd, libc::F_DUPFD_CLOEXEC, 3) };
        if dup < 0 {
            return Err(host_err("dup memory file"));
        }
        // SAFETY: dup is a fresh descriptor.
        let memory = unsafe { OwnedFd::from_raw_fd(dup) };
        let probe = Stub::spawn(memory.as_raw_fd())?
            .started()
            .map_err(|e| PlatformError::Unsupported(format!("cannot start a systrap stub: {e}")))?;
        // The probe is the first address space's stub.
        let pool = Pool { ready: vec![Arc::new(probe)], returned: Vec::new() };
        let spares = Arc::new(Spares { pool: Mutex::new(pool), wanted: Condvar::new(), refilling: std::sync::Once::new(), recycling: AtomicBool::new(false) });
        Ok(SystrapPlatform { memory: Arc::new(memory), spares, tramp })
    }
}

impl Platform for SystrapPlatform {
    fn name(&self) -> &'static str {
        "systrap"
    }

    fn start_zygote(&self) -> std::io::Result<bool> {
        stub::start_zygote()
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>> {
        let stub = match self.spares.take() {
            Some(s) => s,
            None => {
                self.spares.start_refilling(&self.memory);
                Arc::new(Stub::spawn(self.memory.as_raw_fd())?)
            }
        };
        let _ = stub.pool.set(Arc::downgrade(&self.spares));
        Ok(Arc::new(SystrapAddressSpace { stub }))
    }

    fn new_context(&self) -> Box<dyn Context> {
        Box::new(SystrapContext { bound: None, kick: Arc::default(), tramp: self.tramp })
    }

    fn adopt(&self, seed: ThreadSeed) -> Result<Box<dyn Context>> {
        let mut seed = seed.0.downcast::<Seed>().map_err(|_| PlatformError::Unsupported("foreign thread seed".into()))?;
        let stub = seed.stub.take().ok_or_else(|| PlatformError::Unsupported("thread seed already used".into()))?;
        let mut ctx = SystrapContext { bound: None, kick: Arc::default(), tramp: self.tramp };
        ctx.bound = Some(Bound::new(stub, seed.slot, false));
        Ok(Box::new(ctx))
    }

    fn max_user_address(&self) -> u64 {
        STUB_BASE
    }

    fn patch_entry(&self) -> Option<u64> {
        self.tramp.map(|t| t.entry)
    }
}

// ---------------------------------------------------------------------------------
// A stub process
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SlotUse {
    Free,
    InUse,
    /// Told to exit; reusable once the kernel cleared its state word.
    Released,
    /// Its task is gone, but the thread waits in its handler to be reused by the next
    /// new thread: no clone, no seccomp filter to compile.
    Parked,
}

/// How many released threads a stub keeps parked.
const MAX_PARKED: usize = 8;

/// A stub process: what outlives one address space when the stub is recycled
/// (`Spares::recycle`). Dropping it kills and reaps the process.
struct StubProcess {
    pid: i32,
    pidfd: OwnedFd,
    /// The helper's completion eventfd (the stub has it as descriptor 1).
    efd: OwnedFd,
    win: Window,
    /// Held while a batch runs (ordering, as in ptrace); holds the last batch number.
    flushing: Mutex<u32>,
    /// The CPU the helper thread (the process's main thread: its tid is `pid`) was
    /// last pinned to.
    helper_cpu: AtomicU32,
}

impl Drop for StubProcess {
    fn drop(&mut self) {
        crate::zygote::kill_and_reap(self.pid);
    }
}

/// A stub process serving one address space.
struct Stub {
    proc: Arc<StubProcess>,
    slots: Mutex<Vec<SlotUse>>,
    /// Changes not yet carried out in the stub, in order.
    pending: Mutex<Vec<QueuedCall>>,
    /// The host tid of the thread the first context takes, in slot 0: the process's
    /// main thread in a new stub, a fresh thread in a recycled one.
    leader_tid: i32,
    /// Whether a context has taken the leader thread.
    leader_claimed: AtomicBool,
    /// Whether the leader's "ready" event was already consumed (`Stub::started`).
    leader_ready: AtomicBool,
    /// Where the process goes when the address space is done with it; unset while
    /// the stub is being started or recycled.
    pool: std::sync::OnceLock<std::sync::Weak<Spares>>,
}

/// The signal frame of a thread's current event: where it is (a validated window
/// offset) and what it held, so that only changes are written back.
#[derive(Clone, Copy, Debug)]
struct Frame {
    uc: u64,
    /// The frame's XSAVE pointer (a stub address, validated when used).
    fpstate: u64,
    gregs: [u64; 18],
    csgsfs: u64,
    /// Whether the frame's signal mask and signal stack are what the Sentry wants.
    canonical: bool,
    fs: u64,
    gs: u64,
}

/// What a thread waits in for its reply: its signal handler (a frame), or the
/// patched-call trampoline (its save area, as read).
#[derive(Clone, Copy, Debug)]
enum Held {
    Frame(Frame),
    Patched(Patched),
}

#[derive(Clone, Copy, Debug)]
struct Patched {
    gregs: [u64; 18],
    fs: u64,
}

/// The host GS base of a thread whose app GS base is `app`: with patching, its own
/// block (`block`) stands for 0, which is how the trampoline finds the block.
fn host_gs(app: u64, block: Option<u64>) -> u64 {
    match block {
        Some(b) if app == 0 => b,
        _ => app,
    }
}

fn app_gs(host: u64, block: Option<u64>) -> u64 {
    if Some(host) == block { 0 } else { host }
}

/// Whether a patched call may return straight from the trampoline: only to a state
/// `sysret` could produce (Linux's own test for its fast return), with the FP state,
/// the FS base and the GS base (the block) as they are.
fn fast_return_ok(p: &Patched, cpu: &CpuState) -> bool {
    const TF: u64 = 0x100;
    const NT: u64 = 0x4000;
    const RF: u64 = 0x10000;
    let r = &cpu.regs;
    cpu.fpstate.is_none()
        && r.rcx == r.rip
        && r.r11 == r.eflags
        && r.eflags & (TF | NT | RF) == 0
        && r.cs == 0x33
        && r.ss == 0x2b
        && r.rip < 1 << 47
        && r.fs_base == p.fs
        && r.gs_base == 0
}

/// The window offset of `[addr, addr+size)` if it lies in thread `k`'s signal stack.
fn inside_stack(k: usize, addr: u64, size: u64, align: u64) -> Option<u64> {
    let (lo, hi) = (block_off(k) + HDR, block_off(k) + BLOCK);
    let off = addr.checked_sub(WINDOW)?;
    (off >= lo && off.checked_add(size)? <= hi && off % align == 0).then_some(off)
}

// Layout of the kernel's struct ucontext (x86-64).
const UC_STACK: u64 = 16;
const UC_MCONTEXT: u64 = 40;
const UC_FPSTATE: u64 = UC_MCONTEXT + 23 * 8;
const UC_SIGMASK: u64 = 296;
const UC_SIZE: u64 = 304;
const SIGINFO_SIZE: u64 = 128;
/// `si_arch` of a seccomp SIGSYS: after `si_call_addr` and `si_syscall`.
const SI_ARCH: u64 = 28;
// gregs indexes
const REG_CSGSFS: u64 = 18;
const REG_ERR: u64 = 19;
const REG_TRAPNO: u64 = 20;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const SW_RESERVED: u64 = 464;
const XSAVE_HDR: u64 = 512;
const XSAVE_EXT: u64 = 576;

impl Stub {
    fn spawn(memory_fd: RawFd) -> Result<Stub> {
        let inst = stub::install().map_err(|e| PlatformError::Host("systrap stub install", e))?;
        let mut win = Window::new().map_err(|e| PlatformError::Host("systrap window", e))?;
        write_programs(&win, inst);
        init_slot(&win, 0);
        // SAFETY: a fresh eventfd, owned below.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(host_err("eventfd"));
        }
        // SAFETY: raw is a fresh descriptor.
        let efd = above_stdio(unsafe { OwnedFd::from_raw_fd(raw) }).map_err(|e| PlatformError::Host("eventfd", e))?;
        let cpu = host_cpus::current();
        let pid = stub::spawn(SpawnFds { window: win.fd(), memory: memory_fd, eventfd: efd.as_raw_fd(), cpu })
            .map_err(|e| PlatformError::Host("fork stub", e))?;
        win.close_fd();
        // SAFETY: pidfd_open of our own child.
        let pfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        if pfd < 0 {
            let e = io::Error::last_os_error();
            crate::zygote::kill_and_reap(pid);
            return Err(PlatformError::Host("pidfd_open", e));
        }
        // SAFETY: pfd is a fresh descriptor.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pfd) };
        let proc = StubProcess {
            pid,
            pidfd,
            efd,
            win,
            flushing: Mutex::new(0),
            // The helper stays where it was forked.
            helper_cpu: AtomicU32::new(cpu),
        };
        // The leader's tid is known once it is ready (`started`, `ensure_ready`).
        Ok(Stub::serving(Arc::new(proc), 0))
    }

    /// A stub whose slots are all free but the leader's (0).
    fn serving(proc: Arc<StubProcess>, leader_tid: i32) -> Stub {
        let mut slots = vec![SlotUse::Free; MAX_THREADS];
        slots[0] = SlotUse::InUse;
        Stub {
            proc,
            slots: Mutex::new(slots),
            pending: Mutex::new(Vec::new()),
            leader_tid,
            leader_claimed: AtomicBool::new(false),
            leader_ready: AtomicBool::new(false),
            pool: std::sync::OnceLock::new(),
        }
    }

    /// Waits (up to 10 s) until the new stub's first thread has set itself up and
    /// posted its "ready" event, which the first context to bind it then takes
    /// without waiting: the probe at start-up, and each spare before it is offered,
    /// so that a fork or an exec does not wait for a stub's filters and helper
    /// (35–180 µs of a forked child's first run here).
    fn started(mut self) -> Result<Stub> {
        if let Err(e) = self.leader_started() {
            return Err(PlatformError::Host("systrap stub start", io::Error::other(self.describe_failure(e))));
        }
        Ok(self)
    }

    /// Waits for the leader's "ready" event and learns its tid. No app code has run in
    /// the stub yet (or since its app threads exited), so the tid the thread wrote in
    /// its slot is its own.
    fn leader_started(&mut self) -> Result<()> {
        self.wait_event(0, Some(Instant::now() + Duration::from_secs(10)), None, false)?;
        let tid = self.proc.win.read_u32(block_off(0) + SLOT_TID) as i32;
        // SAFETY: tgkill with signal 0 only checks that the thread exists in the group.
        if tid <= 0 || tid == self.proc.pid || unsafe { libc::syscall(libc::SYS_tgkill, self.proc.pid, tid, 0) } != 0 {
            return Err(self.dead("bad thread id"));
        }
        self.leader_tid = tid;
        self.leader_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Makes a stub process given back fit to serve another address space, as a
    /// new stub would: its app threads are told to exit and waited for, everything
    /// below the stub is unmapped, and a fresh thread (from the helper, with a fresh
    /// slot header) becomes the leader. Nothing of the old threads is reused: the
    /// app they ran could write their slots and signal frames, and the next process
    /// must not be at its mercy. The helper keeps no state the app can reach (it runs
    /// on registers, from the read-only queue), nor does the process (every other
    /// call of the app trapped). Any failure kills the process instead.
    fn recycle(r: Returned) -> Result<Stub> {
        let Returned { proc, slots } = r;
        if slots.iter().any(|&u| u == SlotUse::InUse) {
            return Err(PlatformError::Unsupported("a thread of the stub is still in use".into()));
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        for (k, &u) in slots.iter().enumerate() {
            if u == SlotUse::Parked {
                let b = block_off(k);
                proc.win.write_u32(b + SLOT_CMD, CMD_EXIT);
                proc.win.word(b + SLOT_STATE).store(ST_IDLE, Ordering::Release);
                futex_wake(proc.win.word(b + SLOT_STATE));
            }
        }
        for (k, &u) in slots.iter().enumerate() {
            if u == SlotUse::Free {
                continue;
            }
            // The kernel clears the word when the thread is gone (set_tid_address).
            let st = proc.win.word(block_off(k) + SLOT_STATE);
            loop {
                let v = st.load(Ordering::Acquire);
                if v == ST_DEAD {
                    break;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(PlatformError::Unsupported("a thread of the stub did not exit".into()));
                }
                futex_wait(st, v, Some(left));
            }
        }
        let mut stub = Stub::serving(proc, 0);
        init_slot(&stub.proc.win, 0);
        stub.push(QueuedCall { nr: libc::SYS_munmap as u64, args: [0, STUB_BASE, 0, 0, 0, 0] });
        stub.push(QueuedCall { nr: libc::SYS_clone as u64, args: [THREAD_FLAGS, 0, 0, 0, 0, stub_addr(block_off(0))] });
        stub.flush()?;
        stub.leader_started()?;
        Ok(stub)
    }

    fn state(&self, k: usize) -> &AtomicU32 {
        self.proc.win.word(block_off(k) + SLOT_STATE)
    }

    /// Whether the stub process has exited (it stays a zombie until we reap it).
    fn exited(&self) -> Option<i32> {
        let mut pfd = libc::pollfd { fd: self.proc.pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: polling one descriptor we own.
        let r = unsafe { libc::poll(&mut pfd, 1, 0) };
        if r <= 0 {
            return None;
        }
        // SAFETY: waitid without reaping (WNOWAIT) fills our local siginfo.
        let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::waitid(libc::P_PIDFD, self.proc.pidfd.as_raw_fd() as libc::id_t, &mut si, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
        if r < 0 {
            return Some(-1);
        }
        // SAFETY: si was filled by waitid for a child that exited.
        let (code, status) = unsafe { (si.si_code, si.si_status()) };
        Some(if code == libc::CLD_EXITED { status << 8 } else { status & 0x7f })
    }

    /// The stub broke the protocol or lost a thread: make sure it is gone.
    fn dead(&self, why: &str) -> PlatformError {
        tracing::warn!("systrap stub {}: {why}", self.proc.pid);
        // SAFETY: signalling our own child (not yet reaped: we own the pidfd and reap on drop).
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, self.proc.pidfd.as_raw_fd(), libc::SIGKILL, 0, 0) };
        PlatformError::StubDied(self.exited().unwrap_or(libc::SIGKILL))
    }

    fn describe_failure(&self, e: PlatformError) -> String {
        let status = match e {
            PlatformError::StubDied(s) => s,
            other => return other.to_string(),
        };
        if status & 0x7f == 0 {
            let code = status >> 8;
            let what = match code {
                FAIL_PARENT => "the Sentry went away",
                FAIL_FDS => "cannot set up its descriptors",
                FAIL_MAP => "cannot map its shared window",
                FAIL_SIGACTION => "cannot install its signal handlers",
                FAIL_NO_NEW_PRIVS => "prctl(PR_SET_NO_NEW_PRIVS) failed",
                FAIL_SECCOMP_HELPER | FAIL_SECCOMP_APP => "the seccomp filter cannot be installed on this host",
                FAIL_CLONE => "cannot start its helper thread",
                FAIL_SIGALTSTACK => "sigaltstack failed",
                _ => "unknown failure",
            };
            format!("the stub exited with status {code}: {what}")
        } else {
            format!("the stub was killed by signal {}", status & 0x7f)
        }
    }

    /// Waits until thread `k` posts an event (or dies).
    /// With `kick`: a thread that runs (uses CPU time) but leaves a kick unanswered
    /// blocks SIGURG on the host (a forged frame can do that) and could never be
    /// interrupted again, so the stub is killed. A thread that merely did not get a CPU
    /// (a busy host) is waited for.
    fn wait_event(&self, k: usize, deadline: Option<Instant>, kick: Option<&Kick>, spin: bool) -> Result<()> {
        let st = self.state(k);
        let mut spun = !spin;
        let mut cpu_at_kick: Option<u64> = None;
        loop {
            let v = st.load(Ordering::Acquire);
            match v {
                ST_REQ | ST_APP_SLEEP => return Ok(()),
                ST_DEAD => return Err(self.dead("thread died")),
                ST_IDLE | ST_SENTRY_SLEEP => {}
                _ => return Err(self.dead("bad handoff state")),
            }
            if !spun {
                spun = true;
                let start = Instant::now();
                let mut n = 0u32;
                let got = loop {
                    let v = st.load(Ordering::Acquire);
                    if v != ST_IDLE && v != ST_SENTRY_SLEEP {
                        break true;
                    }
                    std::hint::spin_loop();
                    n += 1;
                    if n % 64 == 0 && start.elapsed() >= SENTRY_SPIN {
                        break false;
                    }
                };
                if got {
                    continue;
                }
            }
            if v == ST_IDLE && st.compare_exchange(ST_IDLE, ST_SENTRY_SLEEP, Ordering::AcqRel, Ordering::Acquire).is_err() {
                continue;
            }
            let before = Instant::now();
            futex_wait(st, ST_SENTRY_SLEEP, Some(LIVENESS_PERIOD));
            if before.elapsed() >= LIVENESS_PERIOD / 2 {
                if self.exited().is_some() {
                    return Err(self.dead("exited"));
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(self.dead("no answer"));
                }
                if let Some(kick) = kick.filter(|k| k.kicked.load(Ordering::Acquire)) {
                    let tid = kick.target.load(Ordering::Acquire) as u32 as i32;
                    if let Some(now) = thread_cpu_ns(self.proc.pid, tid) {
                        match cpu_at_kick {
                            Some(then) if now.saturating_sub(then) >= KICK_CPU_NS => {
                                return Err(self.dead("thread ignores interrupts"));
                            }
                            Some(_) => {}
                            None => cpu_at_kick = Some(now),
                        }
                    }
                }
            }
        }
    }

    /// Hands thread `k` back to the stub: it returns from its handler (or exits).
    fn reply(&self, k: usize, cmd: u32, spin: u32) {
        let b = block_off(k);
        self.proc.win.write_u32(b + SLOT_CMD, cmd);
        self.proc.win.write_u32(b + SLOT_SPIN, spin);
        self.proc.win.write_u32(b + SLOT_SENTRY_CPU, host_cpus::current());
        self.wake(k);
    }

    fn wake(&self, k: usize) {
        let old = self.state(k).swap(ST_IDLE, Ordering::AcqRel);
        if old == ST_APP_SLEEP {
            futex_wake(self.state(k));
        }
    }

    /// Reads and validates the frame thread `k` posted. Returns the event.
    fn read_event(&self, k: usize, cpu: &mut CpuState, block: Option<u64>) -> Result<(Event, Held)> {
        let b = block_off(k);
        let signo = self.proc.win.read_u32(b + SLOT_SIGNO) as i32;
        if signo == 0 && block.is_some() {
            return Ok((Event::Syscall, Held::Patched(self.read_patched(k, cpu))));
        }
        let Some(uc) = inside_stack(k, self.proc.win.read_u64(b + SLOT_UCONTEXT), UC_SIZE, 8) else {
            return Err(self.dead("frame outside its signal stack"));
        };
        let fs = self.proc.win.read_u64(b + SLOT_FS);
        let gs = self.proc.win.read_u64(b + SLOT_GS);
        let mut gregs = [0u64; 18];
        for (i, g) in gregs.iter_mut().enumerate() {
            *g = self.proc.win.read_u64(uc + UC_MCONTEXT + 8 * i as u64);
        }
        let csgsfs = self.proc.win.read_u64(uc + UC_MCONTEXT + 8 * REG_CSGSFS);
        let fpstate = self.proc.win.read_u64(uc + UC_FPSTATE);
        let canonical = self.proc.win.read_u64(uc + UC_SIGMASK) == 0
            && self.proc.win.read_u64(uc + UC_STACK) == stub_addr(b + HDR)
            && self.proc.win.read_u64(uc + UC_STACK + 8) == 0
            && self.proc.win.read_u64(uc + UC_STACK + 16) == BLOCK - HDR;
        let r = &mut cpu.regs;
        set_gregs(r, gregs);
        r.cs = csgsfs & 0xffff;
        r.ss = csgsfs >> 48;
        r.fs_base = fs;
        r.gs_base = app_gs(gs, block);
        r.orig_rax = u64::MAX;
        let Some(si) = inside_stack(k, self.proc.win.read_u64(b + SLOT_SIGINFO), SIGINFO_SIZE, 8) else {
            return Err(self.dead("siginfo outside its signal stack"));
        };
        let event = match signo {
            libc::SIGSYS => {
                // seccomp rolled rax back to the syscall number; rip is past the
                // instruction. Present it as a ptrace syscall stop would.
                r.orig_rax = r.rax;
                r.rax = (-(libc::ENOSYS as i64)) as u64;
                cpu.compat_syscall = Some(self.proc.win.read_u32(si + SI_ARCH) != filter::AUDIT_ARCH_X86_64);
                Event::Syscall
            }
            libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP => {
                let code = self.proc.win.read_u32(si + 8) as i32;
                let addr = self.proc.win.read_u64(si + 16);
                cpu.err = self.proc.win.read_u64(uc + UC_MCONTEXT + 8 * REG_ERR);
                cpu.trapno = self.proc.win.read_u64(uc + UC_MCONTEXT + 8 * REG_TRAPNO);
                // Page faults carry SEGV_MAPERR/ACCERR (or BUS_ADRERR...); a general
                // protection fault (hlt, a privileged instruction) comes as SI_KERNEL.
                if (signo == libc::SIGSEGV || signo == libc::SIGBUS) && code > 0 && code < 0x80 {
                    Event::Fault { addr, signo, code }
                } else {
                    Event::Signal { signo, code, addr }
                }
            }
            _ => Event::Interrupted,
        };
        Ok((event, Held::Frame(Frame { uc, fpstate, gregs, csgsfs, canonical, fs, gs })))
    }

    /// A patched call from the trampoline: its save area, read once. It is
    /// reported as if the entry's fallback `syscall` had trapped, with the number
    /// unknown (orig_rax -1): the kernel knows the site, the number and the return
    /// address from the fallback's address (r11), in its own table. Whatever the
    /// app wrote here, it only makes a syscall of its own.
    fn read_patched(&self, k: usize, cpu: &mut CpuState) -> Patched {
        let save = block_off(k) + SLOT_SAVE;
        let mut gregs = [0u64; 18];
        for (i, g) in gregs.iter_mut().enumerate() {
            *g = self.proc.win.read_u64(save + 8 * i as u64);
        }
        let fs = self.proc.win.read_u64(block_off(k) + SLOT_SAVE_FS);
        let r = &mut cpu.regs;
        set_gregs(r, gregs);
        r.rip = r.r11.wrapping_add(crate::usertrap::AFTER_SYSCALL - crate::usertrap::FALLBACK);
        r.rcx = r.rip;
        r.orig_rax = u64::MAX;
        r.rax = (-(libc::ENOSYS as i64)) as u64;
        r.cs = 0x33;
        r.ss = 0x2b;
        r.fs_base = fs;
        r.gs_base = 0;
        cpu.compat_syscall = Some(false);
        cpu.trapno = 0;
        cpu.err = 0;
        Patched { gregs, fs }
    }

    /// The fast return of a patched call: the registers into the save area (the
    /// trampoline loads them, rip and rsp included), then the reply.
    fn write_patched(&self, k: usize, p: &Patched, cpu: &CpuState) {
        let save = block_off(k) + SLOT_SAVE;
        let r = &cpu.regs;
        let gregs = gregs_of(r);
        for (i, v) in gregs.iter().enumerate() {
            if *v != p.gregs[i] {
                self.proc.win.write_u64(save + 8 * i as u64, *v);
            }
        }
    }

    /// The slow return of a patched call: the trampoline raises SIGILL at `promote`,
    /// and the handler's frame is what the thread then resumes through. A kick the
    /// trampoline held back is sent again (it is blocked until the handler returns).
    fn promote(&self, k: usize, tid: i32, tramp: &Tramp) -> Result<Frame> {
        self.reply(k, CMD_SLOW, 0);
        self.wait_event(k, None, None, false)?;
        let b = block_off(k);
        let mut scratch = CpuState::default();
        let frame = match self.read_event(k, &mut scratch, Some(stub_addr(b)))? {
            (Event::Signal { signo: libc::SIGILL, .. }, Held::Frame(f)) if f.gregs[16] == tramp.promote => f,
            _ => return Err(self.dead("no frame for a slow return")),
        };
        self.proc.win.write_u32(b + SLOT_IN_TRAMP, 0);
        if self.proc.win.read_u64(b + SLOT_KICKED) != 0 {
            self.proc.win.write_u64(b + SLOT_KICKED, 0);
            // SAFETY: tgkill takes plain integers; the thread is one of our stub's.
            unsafe { libc::syscall(libc::SYS_tgkill, self.proc.pid, tid, libc::SIGURG) };
        }
        Ok(frame)
    }

    /// Where the frame's XSAVE area is: (window offset, size, features), validated.
    fn fp_area(&self, k: usize, f: &Frame) -> Result<(u64, u64, u64)> {
        let Some(fp) = inside_stack(k, f.fpstate, 512, 16) else {
            return Err(self.dead("FP state outside its signal stack"));
        };
        if self.proc.win.read_u32(fp + SW_RESERVED) == FP_XSTATE_MAGIC1 {
            let size = self.proc.win.read_u32(fp + SW_RESERVED + 16) as u64;
            if size >= XSAVE_EXT && inside_stack(k, stub_addr(fp), size + 4, 16).is_some() {
                return Ok((fp, size, self.proc.win.read_u64(fp + SW_RESERVED + 8)));
            }
        }
        Ok((fp, 512, 3))
    }

    /// Writes `cpu` into the frame thread `k` will return through. Only what changed
    /// is written: every line the Sentry dirties is one more cache miss for the stub.
    fn write_frame(&self, k: usize, f: &Frame, cpu: &mut CpuState, first: bool, block: Option<u64>) -> Result<()> {
        let b = block_off(k);
        let r = &cpu.regs;
        let gregs = gregs_of(r);
        for (i, v) in gregs.iter().enumerate() {
            if *v != f.gregs[i] {
                self.proc.win.write_u64(f.uc + UC_MCONTEXT + 8 * i as u64, *v);
            }
        }
        // The app's code segment: Linux's 32-bit one if it ran there (a fault in
        // 32-bit code goes on in it), else the 64-bit one; never any other.
        let cs = if r.cs == 0x23 { 0x23 } else { 0x33 };
        let sel = (f.csgsfs & 0x0000_ffff_ffff_0000) | cs | (0x2b << 48);
        if sel != f.csgsfs {
            self.proc.win.write_u64(f.uc + UC_MCONTEXT + 8 * REG_CSGSFS, sel);
        }
        if !f.canonical {
            // Nothing blocked on the host side (the app's masks live in the Sentry),
            // and the thread's own signal stack, whatever a forged frame set before.
            self.proc.win.write_u64(f.uc + UC_SIGMASK, 0);
            self.proc.win.write_u64(f.uc + UC_STACK, stub_addr(b + HDR));
            self.proc.win.write_u64(f.uc + UC_STACK + 8, 0);
            self.proc.win.write_u64(f.uc + UC_STACK + 16, BLOCK - HDR);
        }
        match cpu.fpstate.take() {
            Some(img) => self.write_fp(self.fp_area(k, f)?, &img),
            None if first => self.write_fp(self.fp_area(k, f)?, &[]),
            None => {}
        }
        let mut set = 0;
        if first || r.fs_base != f.fs {
            self.proc.win.write_u64(b + SLOT_NEW_FS, r.fs_base);
            set |= 1;
        }
        let gs = host_gs(r.gs_base, block);
        if first || gs != f.gs {
            self.proc.win.write_u64(b + SLOT_NEW_GS, gs);
            set |= 2;
        }
        self.proc.win.write_u32(b + SLOT_SETBASE, set);
        Ok(())
    }

    /// Loads an XSAVE image into the frame (an empty image: the initial state). The
    /// frame's own software-reserved bytes (its format, written by the host kernel)
    /// stay; the header is made valid for the features the frame has.
    fn write_fp(&self, (fp, fp_size, xfeatures): (u64, u64, u64), img: &[u8]) {
        let mut legacy = [0u8; SW_RESERVED as usize];
        if img.len() >= SW_RESERVED as usize {
            legacy.copy_from_slice(&img[..SW_RESERVED as usize]);
        } else {
            legacy[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
            legacy[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        }
        // MXCSR bits the CPU does not have would make the restore fail.
        let mask = match self.proc.win.read_u32(fp + 28) {
            0 => 0xffbf,
            m => m,
        };
        let mxcsr = u32::from_le_bytes(legacy[24..28].try_into().unwrap()) & mask;
        legacy[24..28].copy_from_slice(&mxcsr.to_le_bytes());
        legacy[28..32].copy_from_slice(&mask.to_le_bytes());
        self.proc.win.write_bytes(fp, &legacy);
        if fp_size < XSAVE_EXT {
            return;
        }
        let bv = if img.len() >= XSAVE_EXT as usize {
            u64::from_le_bytes(img[512..520].try_into().unwrap())
        } else if img.len() >= 512 {
            3
        } else {
            0
        };
        let mut hdr = [0u8; 64];
        hdr[0..8].copy_from_slice(&(bv & xfeatures).to_le_bytes());
        self.proc.win.write_bytes(fp + XSAVE_HDR, &hdr);
        if img.len() > XSAVE_EXT as usize {
            let n = (img.len() as u64).min(fp_size) as usize;
            self.proc.win.write_bytes(fp + XSAVE_EXT, &img[XSAVE_EXT as usize..n]);
        }
    }

    fn read_fp(&self, k: usize, f: &Frame) -> Result<Vec<u8>> {
        let (fp, size, _) = self.fp_area(k, f)?;
        let mut v = vec![0u8; size as usize];
        self.proc.win.read_bytes(fp, &mut v);
        Ok(v)
    }

    fn push(&self, call: QueuedCall) {
        lock(&self.pending).push(call);
    }

    /// Runs every queued change in the helper thread, a queue page at a time.
    fn flush(&self) -> Result<()> {
        let mut seq = lock(&self.proc.flushing);
        let calls = std::mem::take(&mut *lock(&self.pending));
        for chunk in calls.chunks(QUEUE_CAPACITY) {
            for (i, c) in chunk.iter().enumerate() {
                let at = WIN_CTRL + CTRL_CALLS + 56 * i as u64;
                self.proc.win.write_u64(at, c.nr);
                for (j, a) in c.args.iter().enumerate() {
                    self.proc.win.write_u64(at + 8 + 8 * j as u64, *a);
                }
            }
            self.proc.win.write_u32(WIN_CTRL + CTRL_COUNT, chunk.len() as u32);
            *seq = seq.wrapping_add(1).max(1);
            let word = self.proc.win.word(WIN_CTRL + CTRL_SEQ);
            word.store(*seq, Ordering::Release);
            self.helper_near_us();
            futex_wake(word);
            self.wait_helper()?;
            let left = self.proc.win.read_u64(WIN_STATUS + STATUS_LEFT);
            if left != 0 {
                let failed = chunk.len().checked_sub(left as usize).and_then(|i| chunk.get(i));
                let result = self.proc.win.read_u64(WIN_STATUS + STATUS_RESULT) as i64;
                return Err(PlatformError::Host(
                    "stub address-space call",
                    io::Error::other(format!("{failed:?} returned {result}")),
                ));
            }
        }
        Ok(())
    }

    /// Waits for the helper's eventfd write: the one signal of completion app code
    /// cannot forge.
    /// The helper runs on this thread's CPU (or has not started yet): waiting for it
    /// means blocking here, which hands it the CPU.
    fn wait_helper(&self) -> Result<()> {
        loop {
            let mut v = 0u64;
            // SAFETY: reading 8 bytes into our local from our eventfd (non-blocking
            // poll first so a dead stub cannot hang us).
            let mut fds = [
                libc::pollfd { fd: self.proc.efd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: self.proc.pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: polling two descriptors we own.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if r < 0 {
                if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(host_err("poll"));
            }
            if fds[0].revents & libc::POLLIN != 0 {
                // SAFETY: as above.
                let n = unsafe { libc::read(self.proc.efd.as_raw_fd(), &mut v as *mut u64 as *mut libc::c_void, 8) };
                if n == 8 {
                    return Ok(());
                }
                continue;
            }
            if fds[1].revents != 0 {
                return Err(self.dead("exited while running a batch"));
            }
        }
    }

    /// Makes the helper thread run on the calling thread's CPU, where handing it a
    /// batch and getting the answer are two cheap switches rather than wake-ups of an
    /// idle CPU (as ptrace pins a stub with its tracer). Whether it is there.
    fn helper_near_us(&self) -> bool {
        let here = host_cpus::current();
        if self.proc.helper_cpu.load(Ordering::Relaxed) == here {
            return true;
        }
        let pinned = host_cpus::pin(self.proc.pid, here);
        self.proc.helper_cpu.store(if pinned { here } else { u32::MAX }, Ordering::Relaxed);
        pinned
    }

    /// A free slot for a new thread, with its header initialised.
    fn alloc_slot(&self) -> Result<usize> {
        let mut slots = lock(&self.slots);
        let k = (0..MAX_THREADS)
            .find(|&k| slots[k] == SlotUse::Free || (slots[k] == SlotUse::Released && self.state(k).load(Ordering::Acquire) == ST_DEAD))
            .ok_or_else(|| PlatformError::Unsupported(format!("more than {MAX_THREADS} threads in one address space")))?;
        slots[k] = SlotUse::InUse;
        init_slot(&self.proc.win, k);
        Ok(k)
    }

    /// A parked thread for a new thread, if there is one.
    fn take_parked(&self) -> Option<usize> {
        let mut slots = lock(&self.slots);
        let k = (0..MAX_THREADS).find(|&k| slots[k] == SlotUse::Parked)?;
        slots[k] = SlotUse::InUse;
        Some(k)
    }

    /// Lets thread `k` go: parks it if it waits in its handler and few are parked,
    /// else tells it to exit.
    fn release(&self, k: usize, ready: bool) {
        if ready {
            let mut slots = lock(&self.slots);
            if slots.iter().filter(|&&u| u == SlotUse::Parked).count() < MAX_PARKED {
                slots[k] = SlotUse::Parked;
                return;
            }
        }
        self.retire(k, ready);
    }

    /// Lets thread `k` go: once it posted its first event, tell it to exit.
    fn retire(&self, k: usize, ready: bool) {
        if ready || self.wait_event(k, Some(Instant::now() + Duration::from_secs(10)), None, false).is_ok() {
            self.reply(k, CMD_EXIT, 0);
        }
        lock(&self.slots)[k] = SlotUse::Released;
    }
}

impl Drop for Stub {
    /// Gives the process back for another address space (see `Spares::recycle`);
    /// dropping the last `StubProcess` handle kills it otherwise.
    fn drop(&mut self) {
        if let Some(spares) = self.pool.get().and_then(std::sync::Weak::upgrade) {
            let slots = std::mem::take(&mut *lock(&self.slots));
            spares.give_back(Returned { proc: self.proc.clone(), slots });
        }
    }
}

/// CPU time a stub thread has used, in ns (from /proc; None where it cannot be read).
fn thread_cpu_ns(pid: i32, tid: i32) -> Option<u64> {
    host_cpus::schedstat(pid, tid).map(|(run, _)| run)
}

fn init_slot(win: &Window, k: usize) {
    let b = block_off(k);
    win.write_bytes(b, &[0u8; 0x100]);
    win.write_u64(b + SLOT_SELF, stub_addr(b));
    win.write_u32(b + SLOT_SPIN, 0);
    win.word(b + SLOT_STATE).store(ST_IDLE, Ordering::Release);
}

/// Fills the read-only program page: the two filters and what the setup reads.
fn write_programs(win: &Window, inst: &Installed) {
    let ranges = filter::StubRanges {
        code: (STUB_BASE, inst.code_end),
        slots: (stub_addr(WIN_SLOTS), stub_addr(WINDOW_LEN)),
        fsgsbase: inst.fsgsbase,
    };
    let put_prog = |fprog_at: u64, insns_at: u64, prog: &[filter::Insn]| {
        assert!(prog.len() <= PROG_FILTER_MAX, "seccomp program too long");
        for (i, ins) in prog.iter().enumerate() {
            let v = ins.code as u64 | (ins.jt as u64) << 16 | (ins.jf as u64) << 24 | (ins.k as u64) << 32;
            win.write_u64(WIN_PROG + insns_at + 8 * i as u64, v);
        }
        win.write_u64(WIN_PROG + fprog_at, prog.len() as u64);
        win.write_u64(WIN_PROG + fprog_at + 8, stub_addr(WIN_PROG + insns_at));
    };
    put_prog(PROG_FPROG_APP, PROG_FILTER_APP, &filter::app(&ranges));
    put_prog(PROG_FPROG_HELPER, PROG_FILTER_HELPER, &filter::helper(&ranges, THREAD_FLAGS));
    let bit = |s: i32| 1u64 << (s - 1);
    let sync = [libc::SIGSYS, libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGTRAP].iter().fold(0, |m, &s| m | bit(s));
    win.write_u64(WIN_PROG + PROG_SYNC_MASK, !sync);
    win.write_u64(WIN_PROG + PROG_FULL_MASK, !0);
    win.write_u64(WIN_PROG + PROG_RLIMIT_ZERO, 0);
    win.write_u64(WIN_PROG + PROG_RLIMIT_ZERO + 8, 0);
    const SA_RESTORER: u64 = 0x0400_0000;
    let flags = libc::SA_SIGINFO as u64 | libc::SA_ONSTACK as u64 | SA_RESTORER;
    for (i, v) in [inst.handler, flags, inst.restorer, !0u64].iter().enumerate() {
        win.write_u64(WIN_PROG + PROG_SIGACTION + 8 * i as u64, *v);
    }
    for i in 0..4 {
        win.write_u64(WIN_PROG + PROG_SIGACTION_DFL + 8 * i, 0);
    }
    win.write_u64(WIN_PROG + PROG_ONE, 1);
}

// ---------------------------------------------------------------------------------
// Address spaces, contexts, threads
// ---------------------------------------------------------------------------------

pub struct SystrapAddressSpace {
    stub: Arc<Stub>,
}

impl SystrapAddressSpace {
    fn push_checked(&self, addr: u64, len: u64, call: QueuedCall) {
        // The kernel never maps above max_user_address; never let the stub do it.
        if addr.checked_add(len).is_none_or(|end| end > STUB_BASE) {
            tracing::error!("systrap: refusing an address-space change at {addr:#x}+{len:#x} over the stub");
            return;
        }
        self.stub.push(call);
    }
}

impl AddressSpace for SystrapAddressSpace {
    fn map(&self, addr: u64, len: u64, file_offset: u64, perms: Perms) {
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        self.push_checked(addr, len, QueuedCall {
            nr: libc::SYS_mmap as u64,
            args: [addr, len, perms.to_prot() as u64, flags, 0, file_offset],
        });
    }

    fn unmap(&self, addr: u64, len: u64) {
        self.push_checked(addr, len, QueuedCall { nr: libc::SYS_munmap as u64, args: [addr, len, 0, 0, 0, 0] });
    }

    fn protect(&self, addr: u64, len: u64, perms: Perms) {
        self.push_checked(addr, len, QueuedCall { nr: libc::SYS_mprotect as u64, args: [addr, len, perms.to_prot() as u64, 0, 0, 0] });
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A new app thread, made by `new_thread`, until a context adopts it.
struct Seed {
    stub: Option<Arc<Stub>>,
    slot: usize,
}

impl Drop for Seed {
    fn drop(&mut self) {
        if let Some(stub) = self.stub.take() {
            stub.retire(self.slot, false);
        }
    }
}

/// The stub thread a context interrupts: (pid << 32) | tid, or 0; whether a kick is
/// still unanswered; and the thread's CPU time when the context took it (a parked
/// thread comes with its previous task's time).
#[derive(Default)]
struct Kick {
    target: AtomicU64,
    kicked: AtomicBool,
    cpu_base: AtomicU64,
}

impl Kick {
    fn set(&self, pid: i32, tid: i32) {
        self.cpu_base.store(thread_cpu_ns(pid, tid).unwrap_or(0), Ordering::Relaxed);
        self.target.store(((pid as u32 as u64) << 32) | tid as u32 as u64, Ordering::Release);
    }
}

impl Interrupter for Kick {
    fn interrupt(&self) {
        let v = self.target.load(Ordering::Acquire);
        if v != 0 {
            self.kicked.store(true, Ordering::Release);
            // SAFETY: tgkill takes plain integers; the thread group is our stub's, so
            // whatever tid the stub reported, nothing outside it can be hit.
            unsafe { libc::syscall(libc::SYS_tgkill, (v >> 32) as i32, v as u32 as i32, libc::SIGURG) };
        }
    }

    fn cpu_time_ns(&self) -> u64 {
        let v = self.target.load(Ordering::Acquire);
        if v == 0 {
            return 0;
        }
        let now = thread_cpu_ns((v >> 32) as i32, v as u32 as i32).unwrap_or(0);
        now.saturating_sub(self.cpu_base.load(Ordering::Relaxed))
    }
}

struct Bound {
    stub: Arc<Stub>,
    slot: usize,
    /// Whether the thread's first event ("ready") has been consumed.
    ready: bool,
    /// The next switch is the thread's first: set FS/GS and FP state from scratch.
    first: bool,
    frame: Option<Held>,
    /// The registers a patched call returned with by the fast way, until the next
    /// event: a kick on the trampoline's way out stands for them.
    resumed: Option<libc::user_regs_struct>,
    /// The stub thread's host tid (checked to be in the stub), once ready.
    tid: i32,
    /// The CPU the stub thread is pinned to: its Sentry thread's (the two take turns) or
    /// a free one (the two spin for each other); None before the first switch.
    placed: Option<u32>,
    pace: Pace,
    /// When the last event arrived, and how long the app ran before it.
    event_at: Instant,
    ran: Duration,
}

impl Bound {
    fn new(stub: Arc<Stub>, slot: usize, ready: bool) -> Bound {
        Bound { stub, slot, ready, first: true, frame: None, resumed: None, tid: 0, placed: None, pace: Pace::default(), event_at: Instant::now(), ran: Duration::MAX }
    }
}

#[derive(Default)]
pub struct SystrapContext {
    bound: Option<Bound>,
    kick: Arc<Kick>,
    /// Syscall patching is on: the trampoline.
    tramp: Option<Tramp>,
}

impl SystrapContext {
    fn aspace(aspace: &Arc<dyn AddressSpace>) -> &SystrapAddressSpace {
        aspace.as_any().downcast_ref::<SystrapAddressSpace>().expect("systrap context given a foreign address space")
    }

    /// The thread this context runs in `asp`: its own, or else the stub's main thread.
    fn bind_in(&mut self, asp: &SystrapAddressSpace) -> Result<()> {
        if self.bound.as_ref().is_some_and(|b| Arc::ptr_eq(&b.stub, &asp.stub)) {
            return Ok(());
        }
        if asp.stub.leader_claimed.swap(true, Ordering::AcqRel) {
            return Err(PlatformError::Unsupported("address space has no free thread for this context".into()));
        }
        self.release();
        let ready = asp.stub.leader_ready.load(Ordering::Acquire);
        self.bound = Some(Bound::new(asp.stub.clone(), 0, false));
        if ready {
            // `started` consumed the ready event; the frame is still there.
            let b = self.bound.as_mut().unwrap();
            let mut scratch = CpuState::default();
            let (_, frame) = b.stub.read_event(0, &mut scratch, self.tramp.map(|_| stub_addr(block_off(0))))?;
            b.frame = Some(frame);
            b.ready = true;
            b.tid = b.stub.leader_tid;
            self.kick.set(b.stub.proc.pid, b.tid);
        }
        Ok(())
    }

    /// Makes sure the bound thread has posted its first event and we hold its frame.
    fn ensure_ready(&mut self) -> Result<&mut Bound> {
        let block = self.tramp.map(|_| ());
        let b = self.bound.as_mut().ok_or_else(|| PlatformError::Unsupported("context runs no thread".into()))?;
        if !b.ready {
            b.stub.wait_event(b.slot, None, None, false)?;
            let mut scratch = CpuState::default();
            // A parked thread may wait in the trampoline.
            let (_, frame) = b.stub.read_event(b.slot, &mut scratch, block.map(|_| stub_addr(block_off(b.slot))))?;
            b.frame = Some(frame);
            b.ready = true;
            let tid = b.stub.proc.win.read_u32(block_off(b.slot) + SLOT_TID) as i32;
            // The stub reports the tid: make sure it is one of its own threads.
            // SAFETY: tgkill with signal 0 only checks that the thread exists in the group.
            if tid <= 0 || tid == b.stub.proc.pid || unsafe { libc::syscall(libc::SYS_tgkill, b.stub.proc.pid, tid, 0) } != 0 {
                return Err(b.stub.dead("bad thread id"));
            }
            b.tid = tid;
            self.kick.set(b.stub.proc.pid, tid);
        }
        Ok(self.bound.as_mut().unwrap())
    }
}

impl Context for SystrapContext {
    fn switch(&mut self, aspace: &Arc<dyn AddressSpace>, cpu: &mut CpuState) -> Result<Event> {
        let asp = Self::aspace(aspace);
        self.bind_in(asp)?;
        asp.stub.flush()?;
        let kick = self.kick.clone();
        let tramp = self.tramp;
        let b = self.ensure_ready()?;
        let stub = &b.stub;
        let block = tramp.map(|_| stub_addr(block_off(b.slot)));
        match b.frame.take().ok_or_else(|| PlatformError::Unsupported("no frame to resume".into()))? {
            Held::Frame(f) => stub.write_frame(b.slot, &f, cpu, b.first, block)?,
            Held::Patched(p) if !b.first && fast_return_ok(&p, cpu) => {
                stub.write_patched(b.slot, &p, cpu);
                b.resumed = Some(cpu.regs);
            }
            Held::Patched(_) => {
                let Some(t) = &tramp else { return Err(PlatformError::Unsupported("a patched call without patching".into())) };
                let f = stub.promote(b.slot, b.tid, t)?;
                stub.write_frame(b.slot, &f, cpu, b.first, block)?;
            }
        }
        b.first = false;
        // Two ways to hand the thread over. Local (the default): the stub thread runs
        // on this thread's CPU and the two pass the CPU back and forth, as a ptrace
        // tracer and its pinned tracee do; nobody spins, and no wake-up ever has to
        // rouse an idle CPU (the expensive part on virtual machines). Spinning: for a
        // thread whose events come fast and are served fast, while CPUs are free, the
        // two run apart and spin for each other, and an event costs little more than
        // the host's signal delivery.
        let now = Instant::now();
        // An event served by sleeping (a futex wait, a read of an empty pipe) is not hot,
        // however short the sleep: the stub would outlast its spin and need waking
        // across CPUs.
        b.pace.note(b.ran < HOT && now.duration_since(b.event_at) < HOT && !host_cpus::slept());
        let here = match b.placed {
            None => {
                let cpu = host_cpus::pin_current_thread();
                balancer::set_stub(stub.proc.pid, b.tid);
                cpu
            }
            Some(_) => balancer::follow().unwrap_or_else(host_cpus::current),
        };
        // A CPU is free when no awake Sentry thread is pinned there and no stub is spun
        // for there: a thread blocked in the Sentry (a futex, a pipe) leaves its CPU free,
        // and one that is only between two events does not.
        let apart = if b.pace.wants_spinning() && SPIN_BAN.allows(SpinBan::now()) { host_cpus::claim_free(here) } else { None };
        let spinning = apart.is_some();
        let want = apart.as_ref().map_or(here, |c| c.cpu);
        if b.placed != Some(want) && b.tid > 0 {
            // Where affinity cannot be set (a restrictive cpuset), this only costs speed:
            // do not retry on every event.
            host_cpus::pin(b.tid, want);
            if b.placed.is_some() {
                if let Some(paid) = b.pace.moved(spinning) {
                    SPIN_BAN.spell_ended(paid, SpinBan::now());
                }
            }
            b.placed = Some(want);
            balancer::stub_on(want);
        }
        stub.reply(b.slot, CMD_RESUME, if spinning { STUB_SPIN } else { 0 });
        let replied = Instant::now();
        let r = stub.wait_event(b.slot, None, Some(&kick), spinning);
        if let Some(c) = apart {
            host_cpus::release(c);
        }
        kick.kicked.store(false, Ordering::Release);
        r?;
        b.event_at = Instant::now();
        b.ran = b.event_at.duration_since(replied);
        let (mut event, frame) = stub.read_event(b.slot, cpu, block)?;
        let resumed = b.resumed.take();
        if let (Some(t), Event::Fault { .. } | Event::Signal { .. }) = (&tramp, event) {
            // The trampoline's GS is no block, nor memory: r11 names the entry's
            // fallback, the site's own trapping syscall.
            if cpu.regs.rip == t.gs_load {
                cpu.regs.rip = cpu.regs.r11;
                event = Event::Interrupted;
            }
        }
        if let (Some(t), Held::Frame(f), Some(regs)) = (&tramp, &frame, resumed) {
            // A kick on the trampoline's way out, or the one it held back and
            // replays (`ud2` once it saw SLOT_KICKED): the thread is, for all that
            // matters, where it was resumed.
            let replay = matches!(event, Event::Signal { signo: libc::SIGILL, .. }) && stub.proc.win.read_u64(block_off(b.slot) + SLOT_KICKED) != 0;
            if (t.out..t.end).contains(&f.gregs[16]) && f.gregs[16] != t.promote && (event == Event::Interrupted || replay) {
                cpu.regs = regs;
                event = Event::Interrupted;
            }
        }
        b.frame = Some(frame);
        Ok(event)
    }

    fn sync(&mut self, aspace: &Arc<dyn AddressSpace>) -> Result<()> {
        let asp = Self::aspace(aspace);
        self.bind_in(asp)?;
        asp.stub.flush()
    }

    fn new_thread(&mut self, aspace: &Arc<dyn AddressSpace>) -> Result<ThreadSeed> {
        let asp = Self::aspace(aspace);
        self.bind_in(asp)?;
        let stub = &asp.stub;
        if let Some(k) = stub.take_parked() {
            return Ok(ThreadSeed(Box::new(Seed { stub: Some(stub.clone()), slot: k })));
        }
        let k = stub.alloc_slot()?;
        stub.push(QueuedCall { nr: libc::SYS_clone as u64, args: [THREAD_FLAGS, 0, 0, 0, 0, stub_addr(block_off(k))] });
        if let Err(e) = stub.flush() {
            lock(&stub.slots)[k] = SlotUse::Free;
            return Err(e);
        }
        Ok(ThreadSeed(Box::new(Seed { stub: Some(stub.clone()), slot: k })))
    }

    fn fpstate(&mut self) -> Result<Vec<u8>> {
        let tramp = self.tramp;
        let b = self.ensure_ready()?;
        let frame = match b.frame.ok_or_else(|| PlatformError::Unsupported("no frame".into()))? {
            Held::Frame(f) => f,
            Held::Patched(_) => {
                // The FP registers are live in the thread: a frame has them.
                let Some(t) = &tramp else { return Err(PlatformError::Unsupported("a patched call without patching".into())) };
                let f = b.stub.promote(b.slot, b.tid, t)?;
                b.frame = Some(Held::Frame(f));
                f
            }
        };
        b.stub.read_fp(b.slot, &frame)
    }

    fn interrupter(&self) -> Arc<dyn Interrupter> {
        self.kick.clone()
    }

    fn release(&mut self) {
        if let Some(b) = self.bound.take() {
            self.kick.target.store(0, Ordering::Release);
            b.stub.release(b.slot, b.ready);
        }
    }
}

impl Drop for SystrapContext {
    fn drop(&mut self) {
        self.release();
    }
}

/// The general registers in the order of a signal frame's gregs (and of the
/// patched-call save area), from r8 to eflags.
fn gregs_of(r: &libc::user_regs_struct) -> [u64; 18] {
    [r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx, r.rdx, r.rax, r.rcx, r.rsp, r.rip, r.eflags]
}

/// `gregs_of`'s inverse.
fn set_gregs(r: &mut libc::user_regs_struct, g: [u64; 18]) {
    [r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx, r.rdx, r.rax, r.rcx, r.rsp, r.rip, r.eflags] = g;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_turns_to_spinning_after_a_run_of_hot_events() {
        let mut p = Pace::default();
        for _ in 0..HOT_EVENTS - 1 {
            p.note(true);
        }
        assert!(!p.wants_spinning());
        p.note(true);
        assert!(p.wants_spinning());
    }

    #[test]
    fn the_event_after_a_move_does_not_count() {
        let mut p = Pace { hot: HOT_EVENTS, ..Pace::default() };
        p.moved(true);
        // The move's own cost makes the next event slow: it must not send the
        // thread back.
        p.note(false);
        assert!(p.wants_spinning());
        assert_eq!(p.hot, HOT_MAX);
        // A later slow event counts.
        p.note(false);
        assert_eq!(p.hot, HOT_MAX - HOT_EVENTS);
    }

    #[test]
    fn a_spinning_thread_moves_back_after_two_slow_events_not_one() {
        let mut p = Pace::default();
        for _ in 0..HOT_EVENTS {
            p.note(true);
        }
        p.moved(true);
        p.note(true);
        p.note(false);
        assert!(p.wants_spinning());
        p.note(false);
        assert!(!p.wants_spinning());
    }

    #[test]
    fn a_spell_of_spinning_pays_when_it_lasts() {
        let mut p = Pace::default();
        assert_eq!(p.moved(true), None);
        p.note(true);
        assert_eq!(p.moved(false), Some(false), "one event: it did not pay");
        assert_eq!(p.moved(false), None, "a move between local CPUs ends no spell");
        p.moved(true);
        for _ in 0..SPELL_PAID {
            p.note(true);
        }
        assert_eq!(p.moved(false), Some(true));
    }

    #[test]
    fn spells_that_do_not_pay_bar_spinning_for_longer_each_time() {
        let ban = SpinBan { until: AtomicU64::new(0), next: AtomicU64::new(0) };
        let (min, max) = (SPIN_BAN_MIN.as_nanos() as u64, SPIN_BAN_MAX.as_nanos() as u64);
        assert!(ban.allows(0));
        ban.spell_ended(false, 10);
        assert!(!ban.allows(10 + min - 1));
        assert!(ban.allows(10 + min));
        let mut at = 10 + min;
        ban.spell_ended(false, at);
        assert!(!ban.allows(at + 2 * min - 1) && ban.allows(at + 2 * min));
        for _ in 0..64 {
            at += max;
            ban.spell_ended(false, at);
        }
        assert!(!ban.allows(at + max - 1) && ban.allows(at + max), "the bar stops growing");
        ban.spell_ended(true, at + max);
        at += 2 * max;
        ban.spell_ended(false, at);
        assert!(ban.allows(at + min), "a spell that paid brings the bar back to the least");
    }
}

