//! Which host CPUs the Sentry's threads run on.
//!
//! Both platforms pin a Sentry task thread and its stub thread to one CPU, so that the
//! two take turns there and no event has to wake an idle CPU (tens of microseconds on
//! a virtual machine). Which CPU is the host's choice: a task thread is spawned free to
//! run anywhere the Sentry may ([`spawn_unpinned`]), the host scheduler places it as it
//! places any new thread (on the idlest CPU, counting every sandbox and host process),
//! and the platform then pins it where it runs ([`pin_current_thread`]).
//!
//! The allowed set is read once, at platform start: a thread spawned by a pinned thread
//! inherits its one-CPU mask and would otherwise see only that CPU.
//!
//! Each CPU counts the pinned Sentry threads on it that are awake (serving, or waiting
//! for their stub, which then runs there), and the stubs another thread spins for there.
//! A thread sleeping in the Sentry is not awake ([`asleep`]). A CPU whose count is 0 is
//! free, unless the host keeps it busy with others' work (other sandboxes, host
//! processes: the balancer's figures): systrap may run a busy thread's stub there and
//! spin for it ([`claim_free`]).
//!
//! A pin is not forever: the host cannot move a pinned thread, so `balancer` does.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

/// The CPUs the Sentry may use, as when first asked (call [`allowed`] at platform start).
pub fn allowed_set() -> &'static libc::cpu_set_t {
    static SET: OnceLock<libc::cpu_set_t> = OnceLock::new();
    SET.get_or_init(|| {
        // SAFETY: sched_getaffinity fills the set we own; CPU_SET stays in bounds.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 || libc::CPU_COUNT(&set) == 0 {
                set = std::mem::zeroed();
                libc::CPU_SET(libc::sched_getcpu().max(0) as usize, &mut set);
            }
            set
        }
    })
}

/// [`allowed_set`] as a list of CPU numbers (never empty).
pub fn allowed() -> &'static [usize] {
    static LIST: OnceLock<Vec<usize>> = OnceLock::new();
    LIST.get_or_init(|| {
        let set = allowed_set();
        // SAFETY: CPU_ISSET reads the set within CPU_SETSIZE.
        (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, set) }).collect()
    })
}

/// The CPU the calling thread is running on.
pub fn current() -> u32 {
    nix::sched::sched_getcpu().map_or(0, |c| c as u32)
}

/// CPUs counted in [`AWAKE`]; threads pinned to higher ones are not counted (and such a
/// CPU is never deemed free).
const TRACKED: usize = 256;

/// Per CPU: awake pinned Sentry threads plus stubs spun for there.
static AWAKE: [AtomicU32; TRACKED] = [const { AtomicU32::new(0) }; TRACKED];

fn awake(cpu: u32) -> Option<&'static AtomicU32> {
    AWAKE.get(cpu as usize)
}

/// The CPU the calling thread is pinned to and counted on; uncounted when the thread ends.
struct Pinned(Cell<Option<u32>>);

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(a) = self.0.get().and_then(awake) {
            a.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

thread_local! {
    static PINNED: Pinned = const { Pinned(Cell::new(None)) };
    /// The calling thread has slept in the Sentry since [`slept`] last said.
    static SLEPT: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread slept in the Sentry ([`asleep`]) since the last call.
pub(crate) fn slept() -> bool {
    SLEPT.with(|s| s.replace(false))
}

/// Pins the calling thread to the CPU it runs on, counts it awake there, and returns it.
pub fn pin_current_thread() -> u32 {
    let cpu = current();
    pin_current_thread_to(cpu);
    crate::balancer::register(cpu);
    cpu
}

/// Pins the calling thread to `cpu` and counts it awake there (not where it was).
pub(crate) fn pin_current_thread_to(cpu: u32) {
    pin(0, cpu);
    PINNED.with(|p| {
        if let Some(a) = p.0.replace(Some(cpu)).and_then(awake) {
            a.fetch_sub(1, Ordering::Relaxed);
        }
    });
    if let Some(a) = awake(cpu) {
        a.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether any pinned Sentry thread is awake.
pub(crate) fn any_awake() -> bool {
    AWAKE.iter().any(|a| a.load(Ordering::Relaxed) > 0)
}

/// Runs `f`, a sleep of the calling thread in the Sentry, with the thread not counted
/// as awake on its CPU.
pub fn asleep<R>(f: impl FnOnce() -> R) -> R {
    SLEPT.with(|s| s.set(true));
    let counted = PINNED.with(|p| p.0.get()).and_then(awake);
    if let Some(a) = counted {
        a.fetch_sub(1, Ordering::Relaxed);
    }
    let r = f();
    if let Some(a) = counted {
        a.fetch_add(1, Ordering::Relaxed);
        crate::balancer::nudge();
    }
    r
}

/// Per CPU: nanoseconds stubs were spun for there (see [`Claim`]).
static SPUN_NS: [AtomicU64; TRACKED] = [const { AtomicU64::new(0) }; TRACKED];
/// Per CPU, in thousandths: how busy the host kept it over the balancer's last period
/// with this Sentry's spinning left out: other sandboxes' and host processes' work.
static OTHERS_BUSY: [AtomicU32; TRACKED] = [const { AtomicU32::new(0) }; TRACKED];
/// A CPU the host keeps busier than this (thousandths) with others' work is not free.
const OTHERS_BUSY_MAX: u32 = 300;

/// A free CPU, claimed: one more awake there until [`release`]d.
pub struct Claim {
    pub cpu: u32,
    at: std::time::Instant,
}

/// Claims a free CPU other than `except`: none of this Sentry's threads awake there, and
/// not kept busy by anyone else either. None when there is no such CPU.
pub(crate) fn claim_free(except: u32) -> Option<Claim> {
    let cpu = allowed().iter().map(|&c| c as u32).filter(|&c| c != except).find(|&c| {
        OTHERS_BUSY.get(c as usize).is_some_and(|b| b.load(Ordering::Relaxed) <= OTHERS_BUSY_MAX)
            && awake(c).is_some_and(|a| a.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed).is_ok())
    })?;
    Some(Claim { cpu, at: std::time::Instant::now() })
}

/// Gives back a claimed CPU, counting the time spun there.
pub(crate) fn release(claim: Claim) {
    if let Some(a) = awake(claim.cpu) {
        a.fetch_sub(1, Ordering::Relaxed);
        SPUN_NS[claim.cpu as usize].fetch_add(claim.at.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Records how busy each CPU was over the last `period` (`busy`: fractions from the
/// host's figures), less what this Sentry spun there, for [`claim_free`].
pub(crate) fn note_busy(busy: &[(u32, f64)], period: std::time::Duration) {
    for &(c, b) in busy {
        let Some(slot) = OTHERS_BUSY.get(c as usize) else { continue };
        let spun = SPUN_NS[c as usize].swap(0, Ordering::Relaxed) as f64 / period.as_nanos().max(1) as f64;
        slot.store(((b - spun).clamp(0.0, 1.0) * 1000.0) as u32, Ordering::Relaxed);
    }
}

/// A host thread's schedstat: nanoseconds run on a CPU and waited on a run queue.
pub(crate) fn schedstat(pid: i32, tid: i32) -> Option<(u64, u64)> {
    let s = crate::host_proc::read_string(&format!("{pid}/task/{tid}/schedstat")).ok()?;
    let mut f = s.split_whitespace().map(|x| x.parse::<u64>().ok());
    Some((f.next()??, f.next()??))
}

/// Spawns a thread that may run on every allowed CPU, even when the caller is pinned,
/// so that the host places it. The caller's own mask is the same afterwards.
pub fn spawn_unpinned<F, T>(builder: std::thread::Builder, f: F) -> std::io::Result<std::thread::JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let mine = mask_of_caller();
    let all = allowed_set();
    // SAFETY: CPU_EQUAL reads two sets we hold.
    let pinned = !unsafe { libc::CPU_EQUAL(&mine, all) };
    if pinned {
        set_affinity(0, all);
    }
    let spawned = builder.spawn(f);
    if pinned {
        set_affinity(0, &mine);
    }
    spawned
}

/// The calling thread's affinity mask.
fn mask_of_caller() -> libc::cpu_set_t {
    // SAFETY: sched_getaffinity fills the set we own; on failure it stays all-allowed.
    unsafe {
        let mut set = *allowed_set();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        set
    }
}

/// Pins host thread `tid` (0: the caller) to `cpu`; false if the host refused.
pub fn pin(tid: i32, cpu: u32) -> bool {
    if cpu as usize >= libc::CPU_SETSIZE as usize {
        return false;
    }
    // SAFETY: cpu_set_t is plain data; CPU_SET stays in bounds (checked above).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        set_affinity(tid, &set)
    }
}

/// Lets the calling thread run on every allowed CPU again: for helper threads spawned
/// by a pinned thread.
pub fn unpin_current_thread() {
    set_affinity(0, allowed_set());
    forget_current_thread();
}

/// Stops counting the calling thread on its CPU, and the balancer stops moving it: it
/// runs no stub any more.
pub fn forget_current_thread() {
    PINNED.with(|p| {
        if let Some(a) = p.0.take().and_then(awake) {
            a.fetch_sub(1, Ordering::Relaxed);
        }
    });
    crate::balancer::unregister();
}

/// Sets host thread `tid`'s affinity (0: the caller).
pub fn set_affinity(tid: i32, set: &libc::cpu_set_t) -> bool {
    // SAFETY: sched_setaffinity reads the set we pass.
    unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), set) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests count threads on CPUs: one at a time.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn cpus_of(set: &libc::cpu_set_t) -> Vec<usize> {
        // SAFETY: CPU_ISSET reads the set within CPU_SETSIZE.
        (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, set) }).collect()
    }

    #[test]
    fn a_thread_spawned_by_a_pinned_thread_is_free_to_run_anywhere() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let all = allowed().to_vec();
        std::thread::spawn(move || {
            let first = pin_current_thread();
            assert_eq!(cpus_of(&mask_of_caller()), vec![first as usize]);
            let child = spawn_unpinned(std::thread::Builder::new(), move || {
                let free = cpus_of(&mask_of_caller());
                let here = pin_current_thread();
                (free, here, cpus_of(&mask_of_caller()))
            });
            let (free, here, pinned) = child.unwrap().join().unwrap();
            assert_eq!(free, all, "the child inherited its parent's pin");
            assert_eq!(pinned, vec![here as usize]);
            assert_eq!(allowed(), &all[..]);
            // The parent is still pinned where it was.
            assert_eq!(cpus_of(&mask_of_caller()), vec![first as usize]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_cpu_is_free_while_its_threads_sleep() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let here = std::thread::spawn(|| {
            let here = pin_current_thread();
            let count = || AWAKE[here as usize].load(Ordering::Relaxed);
            let before = count();
            asleep(|| assert_eq!(count(), before - 1, "asleep: not counted"));
            assert_eq!(count(), before);
            // Nobody else runs this test's threads: a CPU other than `here` is free
            // when there is one, and claiming it makes it busy until released.
            if let Some(other) = allowed().iter().map(|&c| c as u32).find(|&c| c != here) {
                if AWAKE[other as usize].load(Ordering::Relaxed) == 0 {
                    let claim = claim_free(here).expect("a free CPU");
                    assert_eq!(claim.cpu, other);
                    assert!(claim_free(here).is_none(), "claimed twice");
                    release(claim);
                    // A CPU the host keeps busy with others' work is not free; this
                    // Sentry's own spinning there does not count against it.
                    let period = std::time::Duration::from_millis(100);
                    note_busy(&[(other, 0.9)], period);
                    assert!(claim_free(here).is_none(), "busy with others' work");
                    SPUN_NS[other as usize].store(80_000_000, Ordering::Relaxed);
                    note_busy(&[(other, 0.9)], period);
                    let claim = claim_free(here).expect("busy with our own spinning");
                    release(claim);
                    note_busy(&[(other, 0.0)], period);
                    assert_eq!(AWAKE[other as usize].load(Ordering::Relaxed), 0);
                }
            }
            (here, count())
        })
        .join()
        .unwrap();
        let (cpu, while_alive) = here;
        assert_eq!(AWAKE[cpu as usize].load(Ordering::Relaxed), while_alive - 1, "an ended thread is not counted");
    }
}
