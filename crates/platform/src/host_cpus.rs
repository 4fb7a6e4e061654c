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

pub fn count() -> usize {
    allowed().len()
}

/// The CPU the calling thread is running on.
pub fn current() -> u32 {
    // SAFETY: sched_getcpu takes no arguments (vDSO).
    unsafe { libc::sched_getcpu().max(0) as u32 }
}

/// Pins the calling thread to the CPU it runs on and returns it.
pub fn pin_current_thread() -> u32 {
    let cpu = current();
    pin(0, cpu);
    cpu
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
}

/// Sets host thread `tid`'s affinity (0: the caller).
pub fn set_affinity(tid: i32, set: &libc::cpu_set_t) -> bool {
    // SAFETY: sched_setaffinity reads the set we pass.
    unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), set) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus_of(set: &libc::cpu_set_t) -> Vec<usize> {
        // SAFETY: CPU_ISSET reads the set within CPU_SETSIZE.
        (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, set) }).collect()
    }

    #[test]
    fn a_thread_spawned_by_a_pinned_thread_is_free_to_run_anywhere() {
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
}
