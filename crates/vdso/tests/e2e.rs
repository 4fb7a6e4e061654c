//! The vDSO run for real, without rvisor: the test maps the parameter page and
//! the image next to each other in its own address space, exactly as the Sentry
//! maps them into a process, fills the page from a real calibration, and calls
//! the image's functions through pointers.

use rvisor_vdso::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

type ClockFn = extern "C" fn(i64, *mut libc::timespec) -> i64;
type GettimeofdayFn = extern "C" fn(*mut libc::timeval, *mut Timezone) -> i64;

#[repr(C)]
struct Timezone {
    tz_minuteswest: i32,
    tz_dsttime: i32,
}
type TimeFn = extern "C" fn(*mut i64) -> i64;
type GetcpuFn = extern "C" fn(*mut u32, *mut u32, *mut libc::c_void) -> i64;

/// The vDSO mapped as in a process: time namespace page, parameter page, then the
/// image (read+exec). The pages stay writable here so the test can play the Sentry.
struct Mapped {
    base: *mut u8,
}

// SAFETY: the mapping is never unmapped (tests leak it) and its page is only
// written through atomics.
unsafe impl Send for Mapped {}
// SAFETY: as above.
unsafe impl Sync for Mapped {}

impl Mapped {
    fn new() -> &'static Mapped {
        // SAFETY: a fresh private anonymous mapping at an address the host picks.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MAPPING_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        // The time namespace's page comes first.
        let base = (base as *mut u8).wrapping_add(TIMENS_SIZE);
        // SAFETY: the image fits in the mapping after the parameter page.
        unsafe { std::ptr::copy_nonoverlapping(IMAGE.as_ptr(), base.add(VVAR_SIZE), IMAGE.len()) };
        // SAFETY: changes the protection of pages of our own mapping only.
        let rc = unsafe {
            libc::mprotect(
                base.add(VVAR_SIZE) as *mut _,
                IMAGE_PAGES * PAGE_SIZE,
                libc::PROT_READ | libc::PROT_EXEC,
            )
        };
        assert_eq!(rc, 0);
        Box::leak(Box::new(Mapped { base }))
    }

    fn vvar(&self) -> Vvar<'_> {
        // SAFETY: the page is mapped, page-aligned and lives forever; it is only
        // accessed atomically from Rust (the vDSO reads it with plain loads).
        let words = unsafe { &*(self.base as *const [AtomicU64; PAGE_SIZE / 8]) };
        Vvar::from_words(words)
    }

    fn sym<F: Copy>(&self, offset: u64) -> F {
        assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>());
        let addr = self.base as usize + VVAR_SIZE + offset as usize;
        // SAFETY: `addr` is the entry of a function of the mapped image with the
        // C ABI signature `F` (checked against vdso.c by the tests' results).
        unsafe { std::mem::transmute_copy(&addr) }
    }

    fn clock_gettime(&self, clock: i32) -> Result<i64, i64> {
        let f: ClockFn = self.sym(symbols::CLOCK_GETTIME);
        let mut ts = libc::timespec {
            tv_sec: -1,
            tv_nsec: -1,
        };
        let rc = f(clock as i64, &mut ts);
        if rc != 0 {
            return Err(rc);
        }
        assert!((0..1_000_000_000).contains(&ts.tv_nsec), "{ts:?}");
        Ok(ts.tv_sec * 1_000_000_000 + ts.tv_nsec)
    }

    fn clock_getres(&self, clock: i32) -> Result<i64, i64> {
        let f: ClockFn = self.sym(symbols::CLOCK_GETRES);
        let mut ts = libc::timespec {
            tv_sec: -1,
            tv_nsec: -1,
        };
        let rc = f(clock as i64, &mut ts);
        if rc != 0 {
            return Err(rc);
        }
        Ok(ts.tv_sec * 1_000_000_000 + ts.tv_nsec)
    }
}

fn host_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec.
    assert_eq!(unsafe { libc::clock_gettime(clock, &mut ts) }, 0);
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

const MS: i64 = 1_000_000;

/// Tests time things; one at a time keeps them honest on a small machine.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A mapped vDSO whose page `clock` publishes to.
fn setup(clock: &ClockSource) -> &'static Mapped {
    let m = Mapped::new();
    clock.set_publisher(move |p| m.vvar().write(p));
    m
}

/// Asserts that `read()` lies within `tolerance` of the host's `clock` read just
/// before and just after it (plus `shift`).
fn assert_near(
    what: &str,
    clock: libc::clockid_t,
    shift: i64,
    tolerance: i64,
    read: impl FnOnce() -> i64,
) {
    let before = host_ns(clock) + shift;
    let v = read();
    let after = host_ns(clock) + shift;
    assert!(
        before - tolerance <= v && v <= after + tolerance,
        "{what}: {v} not within {tolerance} ns of [{before}, {after}]"
    );
}

/// How far a vDSO reading of `clock` lies outside the host readings of `host`
/// just before and just after it (0 inside), so preemption cannot fail a test.
fn error_ns(m: &Mapped, clock: i32, host: libc::clockid_t) -> i64 {
    let before = host_ns(host);
    let v = m.clock_gettime(clock).unwrap();
    let after = host_ns(host);
    (before - v).max(v - after).max(0)
}

fn assert_agrees(m: &Mapped, clock: i32, host: libc::clockid_t) {
    let e = error_ns(m, clock, host);
    assert!(e <= MS, "clock {clock}: vDSO off the host's by {e} ns");
}

#[test]
fn clocks_agree_with_the_host() {
    let _s = serial();
    let cs = ClockSource::new();
    assert!(
        cs.calibration().is_some(),
        "this host's TSC is not invariant"
    );
    let m = setup(&cs);
    for (clock, host) in [
        (CLOCK_MONOTONIC, libc::CLOCK_MONOTONIC),
        (CLOCK_REALTIME, libc::CLOCK_REALTIME),
        (CLOCK_MONOTONIC_RAW, libc::CLOCK_MONOTONIC),
        (CLOCK_BOOTTIME, libc::CLOCK_BOOTTIME),
        (CLOCK_MONOTONIC_COARSE, libc::CLOCK_MONOTONIC),
        (CLOCK_REALTIME_COARSE, libc::CLOCK_REALTIME),
    ] {
        for _ in 0..1000 {
            assert_agrees(m, clock, host);
        }
    }
}

/// A time namespace's page shifts CLOCK_MONOTONIC (and its variants) and
/// CLOCK_BOOTTIME by its offsets, and leaves CLOCK_REALTIME alone.
#[test]
fn the_time_namespace_page_shifts_monotonic_and_boottime() {
    let _s = serial();
    let cs = ClockSource::new();
    let m = setup(&cs);
    let offsets = TimensPage { monotonic_offset_ns: 3_600 * 1_000_000_000, boottime_offset_ns: -5_000_000_000 };
    // SAFETY: the page below the parameter page belongs to the mapping and is
    // writable here; no vDSO call runs while it is written (`serial`).
    unsafe { std::ptr::write(m.base.sub(TIMENS_SIZE) as *mut TimensPage, offsets) };
    let (hour, minus5) = (offsets.monotonic_offset_ns, offsets.boottime_offset_ns);
    for (clock, shift) in [(CLOCK_MONOTONIC, hour), (CLOCK_MONOTONIC_RAW, hour), (CLOCK_MONOTONIC_COARSE, hour), (CLOCK_BOOTTIME, minus5), (CLOCK_REALTIME, 0)] {
        let a = cs.now_ns(clock).unwrap() + shift;
        let v = m.clock_gettime(clock).unwrap();
        let b = cs.now_ns(clock).unwrap() + shift;
        assert!(a - 10 * MS <= v && v <= b + 10 * MS, "clock {clock}: {a} <= {v} <= {b}");
    }
}

/// Served from the page, the vDSO and the Sentry's own clock agree exactly:
/// the vDSO's reading lies between two readings of `ClockSource`.
#[test]
fn vdso_and_sentry_agree_to_the_nanosecond() {
    let _s = serial();
    let cs = ClockSource::new();
    let m = setup(&cs);
    for clock in [CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME] {
        for _ in 0..10_000 {
            let a = cs.now_ns(clock).unwrap();
            let v = m.clock_gettime(clock).unwrap();
            let b = cs.now_ns(clock).unwrap();
            assert!(a <= v && v <= b, "clock {clock}: {a} <= {v} <= {b}");
        }
    }
}

#[test]
fn agreement_survives_a_second_of_refreshes() {
    let _s = serial();
    let cs = ClockSource::new();
    let m = setup(&cs);
    let start = Instant::now();
    let mut last = i64::MIN;
    let mut worst = 0i64;
    while start.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(50));
        cs.refresh();
        for _ in 0..100 {
            let v = m.clock_gettime(CLOCK_MONOTONIC).unwrap();
            assert!(v >= last, "monotonic went back: {last} then {v}");
            last = v;
            worst = worst.max(error_ns(m, CLOCK_MONOTONIC, libc::CLOCK_MONOTONIC));
        }
    }
    assert!(worst < MS, "worst error {worst} ns");
    eprintln!(
        "worst error over 1.5 s of refreshes: {worst} ns; calibration {:?}",
        cs.calibration()
    );
}

#[test]
fn other_clocks_take_the_syscall() {
    let _s = serial();
    let cs = ClockSource::new();
    let m = setup(&cs);
    for (clock, host) in [
        (CLOCK_PROCESS_CPUTIME_ID, libc::CLOCK_PROCESS_CPUTIME_ID),
        (CLOCK_THREAD_CPUTIME_ID, libc::CLOCK_THREAD_CPUTIME_ID),
        (11, libc::CLOCK_TAI),
    ] {
        let before = host_ns(host);
        let got = m.clock_gettime(clock).unwrap();
        let after = host_ns(host);
        assert!(
            before <= got && got <= after,
            "clock {clock}: {before} <= {got} <= {after}"
        );
    }
    // A pthread's CPU clock (a negative id) is the host's answer too.
    let mut id: libc::clockid_t = 0;
    // SAFETY: asks for the calling thread's CPU clock id.
    assert_eq!(
        unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) },
        0
    );
    assert!(m.clock_gettime(id).unwrap() > 0);
    // Errors come back as -errno, the kernel vDSO's convention glibc expects.
    assert_eq!(m.clock_gettime(12345), Err(-libc::EINVAL as i64));
    assert_eq!(m.clock_getres(12345), Err(-libc::EINVAL as i64));
}

#[test]
fn gettimeofday_time_getres_getcpu() {
    let _s = serial();
    let cs = ClockSource::new();
    let m = setup(&cs);
    cs.set_timezone(-60, 1);

    let gtod: GettimeofdayFn = m.sym(symbols::GETTIMEOFDAY);
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: -1,
    };
    let mut tz = Timezone {
        tz_minuteswest: 7,
        tz_dsttime: 7,
    };
    assert_near("gettimeofday", libc::CLOCK_REALTIME, 0, MS, || {
        assert_eq!(gtod(&mut tv, &mut tz), 0);
        tv.tv_sec * 1_000_000_000 + tv.tv_usec * 1000
    });
    assert!((0..1_000_000).contains(&tv.tv_usec));
    assert_eq!((tz.tz_minuteswest, tz.tz_dsttime), (-60, 1));
    assert_eq!(gtod(std::ptr::null_mut(), std::ptr::null_mut()), 0);

    let time: TimeFn = m.sym(symbols::TIME);
    let mut t = 0i64;
    let r = time(&mut t);
    assert_eq!(r, t);
    assert!((r - host_ns(libc::CLOCK_REALTIME) / 1_000_000_000).abs() <= 1);
    assert_eq!(
        time(std::ptr::null_mut()),
        r.max(time(std::ptr::null_mut()))
    );

    for clock in [
        CLOCK_REALTIME,
        CLOCK_MONOTONIC,
        CLOCK_MONOTONIC_RAW,
        CLOCK_BOOTTIME,
    ] {
        assert_eq!(m.clock_getres(clock), Ok(1));
    }
    for clock in [CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE] {
        assert_eq!(m.clock_getres(clock), Ok(COARSE_RES_NS));
    }
    // CPU clocks are the Sentry's (here the host's) to answer.
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec.
    unsafe { libc::clock_getres(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(
        m.clock_getres(CLOCK_PROCESS_CPUTIME_ID),
        Ok(ts.tv_sec * 1_000_000_000 + ts.tv_nsec)
    );
    let getres: ClockFn = m.sym(symbols::CLOCK_GETRES);
    assert_eq!(getres(CLOCK_MONOTONIC as i64, std::ptr::null_mut()), 0);

    let getcpu: GetcpuFn = m.sym(symbols::GETCPU);
    let (mut cpu, mut node) = (9u32, 9u32);
    assert_eq!(getcpu(&mut cpu, &mut node, std::ptr::null_mut()), 0);
    assert_eq!((cpu, node), (0, 0));
    assert_eq!(
        getcpu(
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut()
        ),
        0
    );
}

/// Before the Sentry fills the page, and on hosts without a usable TSC, every
/// call is the real syscall.
#[test]
fn without_parameters_everything_takes_the_syscall() {
    let _s = serial();
    let m = Mapped::new(); // a zero page: flags clear
    let m2 = setup(&ClockSource::without_tsc());
    for m in [m, m2] {
        for (clock, host) in [
            (CLOCK_MONOTONIC, libc::CLOCK_MONOTONIC),
            (CLOCK_REALTIME, libc::CLOCK_REALTIME),
        ] {
            let before = host_ns(host);
            let got = m.clock_gettime(clock).unwrap();
            let after = host_ns(host);
            assert!(
                before <= got && got <= after,
                "clock {clock}: {before} <= {got} <= {after}"
            );
        }
        let time: TimeFn = m.sym(symbols::TIME);
        assert!(
            (time(std::ptr::null_mut()) - host_ns(libc::CLOCK_REALTIME) / 1_000_000_000).abs() <= 1
        );
        let gtod: GettimeofdayFn = m.sym(symbols::GETTIMEOFDAY);
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        assert_near("gettimeofday", libc::CLOCK_REALTIME, 0, MS, || {
            assert_eq!(gtod(&mut tv, std::ptr::null_mut()), 0);
            tv.tv_sec * 1_000_000_000 + tv.tv_usec * 1000
        });
    }
    // The zero page has no coarse resolution either: clock_getres asks the kernel.
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec.
    unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    assert_eq!(m.clock_getres(CLOCK_MONOTONIC_COARSE), Ok(ts.tv_nsec));
}

/// `clock_settime` inside the sandbox moves the sandbox's realtime, not the host's.
#[test]
fn setting_realtime_moves_only_the_sandbox() {
    let _s = serial();
    let cs = ClockSource::new();
    let m = setup(&cs);
    let day = 86_400 * 1_000_000_000i64;
    cs.set_realtime_ns(host_ns(libc::CLOCK_REALTIME) + day);
    assert_near(
        "vDSO realtime + 1 day",
        libc::CLOCK_REALTIME,
        day,
        MS,
        || m.clock_gettime(CLOCK_REALTIME).unwrap(),
    );
    assert_near(
        "Sentry realtime + 1 day",
        libc::CLOCK_REALTIME,
        day,
        MS,
        || cs.realtime_ns(),
    );
    assert_agrees(m, CLOCK_MONOTONIC, libc::CLOCK_MONOTONIC);
    // Before 1970: negative times split into a floor second and a positive nsec.
    cs.set_realtime_ns(-1_500_000_000);
    let r = m.clock_gettime(CLOCK_REALTIME).unwrap();
    assert!((-1_500_000_000..-1_400_000_000).contains(&r), "{r}");
}

/// Readers racing a writer never see a torn page. The writer flips between two
/// parameter sets that describe the same clock but share none of its base,
/// rate or scale, so any mix of the two is far off.
#[test]
fn seqlock_readers_never_see_a_torn_page() {
    let _s = serial();
    let cs = ClockSource::new();
    let m = setup(&cs);
    let a = cs.params();
    // The same clock from another base point, with the scale doubled.
    let mut b = a;
    b.tsc_base = a.tsc_base / 2;
    b.mono_base_ns =
        a.mono_base_ns - (((a.tsc_base - b.tsc_base) as u128 * a.mult as u128) >> a.shift) as i64;
    b.mult = a.mult * 2;
    b.shift = a.shift + 1;
    assert!(a.tsc_base > 1 << 32, "TSC too small for this test");
    let sets = [a, b];

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, writes) = (stop.clone(), writes.clone());
        std::thread::spawn(move || {
            let v = m.vvar();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                v.write(&sets[i & 1]);
                i += 1;
                writes.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let start = Instant::now();
    let mut reads = 0u64;
    while start.elapsed() < Duration::from_millis(500) {
        assert_agrees(m, CLOCK_MONOTONIC, libc::CLOCK_MONOTONIC);
        assert_agrees(m, CLOCK_REALTIME, libc::CLOCK_REALTIME);
        let p = m.vvar().read();
        assert!(p == a || p == b, "torn Rust read {p:?}");
        reads += 1;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let seq = m.vvar().seq();
    assert_eq!(seq & 1, 0);
    eprintln!(
        "{reads} reads during {} writes",
        writes.load(Ordering::Relaxed)
    );
    assert!(writes.load(Ordering::Relaxed) > 1000);
}

/// Refreshing from another thread while readers read keeps monotonic time monotonic.
#[test]
fn monotonic_under_concurrent_refresh() {
    let _s = serial();
    let cs = Arc::new(ClockSource::new());
    let m = setup(&cs);
    let stop = Arc::new(AtomicBool::new(false));
    let refresher = {
        let (cs, stop) = (cs.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                cs.refresh();
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let start = Instant::now();
    let mut last = i64::MIN;
    while start.elapsed() < Duration::from_millis(300) {
        let v = m.clock_gettime(CLOCK_MONOTONIC).unwrap();
        assert!(v >= last, "went back by {} ns", last - v);
        last = v;
    }
    stop.store(true, Ordering::Relaxed);
    refresher.join().unwrap();
    assert_agrees(m, CLOCK_MONOTONIC, libc::CLOCK_MONOTONIC);
}

/// The vDSO really avoids the kernel: a call costs well under a syscall.
#[test]
fn fast_path_is_fast() {
    let _s = serial();
    let cs = ClockSource::new();
    let m = setup(&cs);
    let n = 1_000_000;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(m.clock_gettime(CLOCK_MONOTONIC).unwrap());
    }
    let per = start.elapsed().as_nanos() as f64 / n as f64;
    let start = Instant::now();
    for _ in 0..10_000 {
        std::hint::black_box(host_ns(libc::CLOCK_MONOTONIC));
    }
    let host = start.elapsed().as_nanos() as f64 / 10_000.0;
    eprintln!("vDSO clock_gettime: {per:.1} ns per call (host's: {host:.1} ns)");
    assert!(per < 500.0, "{per} ns per call");
}
