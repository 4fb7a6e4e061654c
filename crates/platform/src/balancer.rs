//! Moving pinned threads off crowded CPUs.
//!
//! The platforms pin each Sentry task thread and its stub thread to one CPU
//! (`host_cpus`), and the host's scheduler cannot move a pinned thread. So while any
//! of them is awake, a `cpu-balancer` thread looks every [`PERIOD`] at how long each
//! pair waited for its CPU (the host's schedstat) and how idle each CPU was (the host's
//! /proc/stat, which counts other sandboxes and host processes too). A pair that waited
//! much of the period while another CPU was mostly idle moves there: the balancer
//! re-pins the stub thread at once (an app computing without system calls runs on the
//! new CPU straight away), and the Sentry thread follows at its next event ([`follow`]).
//! A pair that merely keeps its CPU busy alone never waits, and stays. When every task
//! sleeps, the balancer sleeps too.

use crate::host_cpus;
use crate::lock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

/// How often the balancer looks.
pub const PERIOD: Duration = Duration::from_millis(100);
/// A pair that waited for its CPU more than this fraction of the period is crowded...
const CROWDED: f64 = 0.25;
/// ...and a CPU idle more than this fraction of it has room for one.
const ROOMY: f64 = 0.5;
/// Pairs looked at per period, at most (two small /proc reads each).
const LOOK_AT: usize = 64;

const NO_MOVE: u32 = u32::MAX;

/// A pinned Sentry thread and the stub thread it runs.
struct Pair {
    sentry_tid: i32,
    /// The stub thread: pid << 32 | tid (0: none yet).
    stub: AtomicU64,
    /// The CPU the stub thread is pinned to.
    cpu: AtomicU32,
    /// Where the balancer moved the stub, for the Sentry thread to follow ([`NO_MOVE`]).
    move_to: AtomicU32,
    /// Run-queue wait of the two at the balancer's last look.
    waited: AtomicU64,
}

/// Every registered pair; a pair ends with its Sentry thread. Lock: a leaf.
static PAIRS: Mutex<Vec<Weak<Pair>>> = Mutex::new(Vec::new());

thread_local! {
    static MINE: std::cell::RefCell<Option<Arc<Pair>>> = const { std::cell::RefCell::new(None) };
}

/// Registers the calling thread, just pinned to `cpu`; starts the balancer if needed.
pub(crate) fn register(cpu: u32) {
    let sentry_tid = nix::unistd::gettid().as_raw();
    let pair = Arc::new(Pair {
        sentry_tid,
        stub: AtomicU64::new(0),
        cpu: AtomicU32::new(cpu),
        move_to: AtomicU32::new(NO_MOVE),
        waited: AtomicU64::new(0),
    });
    {
        let mut pairs = lock(&PAIRS);
        pairs.retain(|p| p.strong_count() > 0);
        pairs.push(Arc::downgrade(&pair));
    }
    MINE.with(|m| *m.borrow_mut() = Some(pair));
    start();
}

/// Forgets the calling thread (it no longer runs a stub).
pub(crate) fn unregister() {
    MINE.with(|m| m.borrow_mut().take());
}

/// Records the stub thread the calling (registered) thread runs.
pub(crate) fn set_stub(pid: i32, tid: i32) {
    MINE.with(|m| {
        if let Some(p) = m.borrow().as_ref() {
            p.stub.store(((pid as u32 as u64) << 32) | tid as u32 as u64, Ordering::Relaxed);
            // Another thread's figures: the next look starts afresh.
            p.waited.store(0, Ordering::Relaxed);
        }
    });
}

/// Records that the calling thread pinned its stub thread to `cpu` (systrap runs a
/// spinning thread's stub on another CPU than its own).
pub(crate) fn stub_on(cpu: u32) {
    MINE.with(|m| {
        if let Some(p) = m.borrow().as_ref() {
            p.cpu.store(cpu, Ordering::Relaxed);
        }
    });
}

/// If the balancer moved the calling thread's stub, pins the calling thread there too
/// and returns the CPU.
pub(crate) fn follow() -> Option<u32> {
    let to = MINE.with(|m| m.borrow().as_ref().map(|p| p.move_to.swap(NO_MOVE, Ordering::Relaxed)))?;
    if to == NO_MOVE {
        return None;
    }
    host_cpus::pin_current_thread_to(to);
    Some(to)
}

struct Balancer {
    parked: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

static BALANCER: Balancer = Balancer { parked: AtomicBool::new(false), lock: Mutex::new(()), wake: Condvar::new() };

/// Wakes a parked balancer: a thread has woken up.
pub(crate) fn nudge() {
    if BALANCER.parked.load(Ordering::Relaxed) {
        let _g = lock(&BALANCER.lock);
        BALANCER.parked.store(false, Ordering::Relaxed);
        BALANCER.wake.notify_one();
    }
}

fn start() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new().name("cpu-balancer".into()).spawn(|| {
            host_cpus::unpin_current_thread();
            let mut stat = CpuStat::default();
            loop {
                {
                    let mut g = lock(&BALANCER.lock);
                    while !host_cpus::any_awake() {
                        BALANCER.parked.store(true, Ordering::Relaxed);
                        // Re-checked now and then, in case a wake-up raced the flag.
                        g = BALANCER.wake.wait_timeout(g, PERIOD * 10).unwrap_or_else(|e| e.into_inner()).0;
                    }
                }
                std::thread::sleep(PERIOD);
                let idle = stat.idle_fractions();
                let busy: Vec<(u32, f64)> = idle.iter().map(|&(c, f)| (c, 1.0 - f)).collect();
                host_cpus::note_busy(&busy, PERIOD);
                look(&idle);
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("no cpu-balancer thread ({e}): pinned threads stay where they start");
        }
    });
}

/// One look at every pair: moves at most one crowded pair to a roomy CPU.
fn look(idle: &[(u32, f64)]) {
    let pairs: Vec<Arc<Pair>> = lock(&PAIRS).iter().filter_map(Weak::upgrade).take(LOOK_AT).collect();
    let me = std::process::id() as i32;
    let mut moved = false;
    for p in pairs {
        let stub = p.stub.load(Ordering::Relaxed);
        let (pid, tid) = ((stub >> 32) as i32, stub as u32 as i32);
        if stub == 0 {
            continue;
        }
        let Some(waited) = host_cpus::schedstat(me, p.sentry_tid).zip(host_cpus::schedstat(pid, tid)).map(|(a, b)| a.1 + b.1) else {
            continue;
        };
        let before = p.waited.swap(waited, Ordering::Relaxed);
        let crowded = before != 0 && waited.saturating_sub(before) as f64 > CROWDED * PERIOD.as_nanos() as f64;
        if moved || !crowded || p.move_to.load(Ordering::Relaxed) != NO_MOVE {
            continue;
        }
        let Some(to) = pick_roomier(p.cpu.load(Ordering::Relaxed), idle) else { continue };
        // Several sandboxes read the same figures at about the same time: about half of
        // the candidates move, so that they do not all pile onto the idle CPU together.
        // The stub may have died and its id gone to another process: only a child of
        // the Sentry is moved.
        if coin() && parent_of(pid) == Some(me) && host_cpus::pin(tid, to) {
            p.cpu.store(to, Ordering::Relaxed);
            p.move_to.store(to, Ordering::Relaxed);
            moved = true;
        }
    }
}

/// The parent of process `pid`, from /proc/PID/stat (the field after the state, which
/// follows the command name in parentheses).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = crate::host_proc::read_string(&format!("{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// A coin from the clock: its low bits are as good as random here.
fn coin() -> bool {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() >> 10) & 1 == 1
}

/// The roomiest allowed CPU other than `here`, given each CPU's idle fraction, if any
/// has room.
fn pick_roomier(here: u32, idle: &[(u32, f64)]) -> Option<u32> {
    idle.iter()
        .filter(|&&(c, f)| c != here && f > ROOMY && host_cpus::allowed().contains(&(c as usize)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|&(c, _)| c)
}

/// Idle jiffies and all jiffies per CPU, from /proc/stat's `cpuN` lines.
fn parse_stat(text: &str) -> Vec<(u32, u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let cpu: u32 = f.next()?.strip_prefix("cpu")?.parse().ok()?;
            let v: Vec<u64> = f.filter_map(|x| x.parse().ok()).collect();
            // user nice system idle iowait irq softirq steal: idle includes iowait.
            let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
            Some((cpu, idle, v.iter().take(8).sum()))
        })
        .collect()
}

/// The host's per-CPU jiffies at the last look.
#[derive(Default)]
struct CpuStat {
    last: Vec<(u32, u64, u64)>,
}

impl CpuStat {
    /// Each CPU's idle fraction since the last call (empty the first time).
    fn idle_fractions(&mut self) -> Vec<(u32, f64)> {
        let Ok(text) = crate::host_proc::read_string("stat") else { return Vec::new() };
        let now = parse_stat(&text);
        let idle = now
            .iter()
            .filter_map(|&(c, i, t)| {
                let &(_, pi, pt) = self.last.iter().find(|p| p.0 == c)?;
                let dt = t.checked_sub(pt).filter(|&d| d > 0)?;
                Some((c, i.saturating_sub(pi) as f64 / dt as f64))
            })
            .collect();
        self.last = now;
        idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_gives_idle_and_total_jiffies_per_cpu() {
        let text = "cpu  10 0 10 100 5 0 0 0 0 0\ncpu0 1 2 3 40 5 6 7 8 9 10\ncpu1 0 0 0 7\nintr 1 2\n";
        assert_eq!(parse_stat(text), vec![(0, 45, 72), (1, 7, 7)]);
    }

    #[test]
    fn only_the_sentrys_children_are_moved() {
        let me = std::process::id() as i32;
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        assert_eq!(parent_of(child.id() as i32), Some(me));
        assert_ne!(parent_of(me), Some(me));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(parent_of(child.id() as i32), None, "a reaped child is nobody's");
    }

    #[test]
    fn a_crowded_pair_moves_only_to_a_roomy_cpu() {
        let cpus: Vec<u32> = host_cpus::allowed().iter().map(|&c| c as u32).collect();
        let [a, b, ..] = cpus[..] else { return }; // one CPU: nowhere to go
        assert_eq!(pick_roomier(a, &[(a, 0.0), (b, 0.9)]), Some(b));
        assert_eq!(pick_roomier(a, &[(a, 0.9), (b, 0.9)]), Some(b), "here's own figure does not matter");
        assert_eq!(pick_roomier(a, &[(a, 0.0), (b, 0.3)]), None, "nowhere roomy");
        assert_eq!(pick_roomier(a, &[(a, 1.0)]), None, "only here");
        assert_eq!(pick_roomier(a, &[(a, 0.0), (b, 0.6), (9999, 1.0)]), Some(b), "only allowed CPUs");
    }
}
