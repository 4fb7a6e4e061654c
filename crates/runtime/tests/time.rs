//! Time: timers on the one timekeeper, the vDSO (no syscall per clock read), the
//! sandbox's own realtime clock, and an idle sandbox using no CPU.

mod common;

use common::*;

#[test]
fn timers() {
    compare("timers", "timers", &Spec::default(), |o| {
        all([
            expect_status(o, 0),
            expect_stdout_has_line(o, "POSIX timer: value 77, disarmed after one shot: yes"),
            expect_stdout_has_line(o, "vDSO and syscall clocks agree: yes"),
        ])
    });
}

/// Timers of every kind fire in deadline order; a blocked periodic timer counts
/// overruns on its one queued signal; periodic timers keep their period under load.
#[test]
fn timer_order_overruns_and_load() {
    compare("timer_order_overruns_and_load", "timer_order", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "0 failures"), expect_stdout_has_line(o, "fired in order: 10 20 30 40 50 ")])
    });
}

/// A million clock_gettime calls go through the vDSO: --strace shows none of them,
/// from static programs and from dynamic ones (whose ld.so finds our vDSO's symbols).
#[test]
fn vdso_clock_gettime_makes_no_syscall() {
    matrix("vdso_clock_gettime_makes_no_syscall", &[Link::Static, Link::StaticPie, Link::Dynamic], |v| {
        let bin = compile("clock_burst", v.link);
        let o = run_sandbox_flags(v.platform, &["--strace"], &bin, &Spec::default());
        let calls = o.stderr_str().lines().filter(|l| l.contains("clock_gettime(")).count();
        all([
            expect_status(&o, 0),
            expect_stdout(&o, "monotonic went backwards 0 times\n"),
            if calls < 10 { Ok(()) } else { Err(format!("{calls} clock_gettime syscalls for a million calls")) },
        ])
    });
}

/// clock_settime moves the sandbox's realtime clock only, which the vsyscall page's
/// calls read too (on ptrace, where the host emulates them, through the stub's filter).
#[test]
fn clock_settime_moves_only_the_sandbox_clock() {
    matrix("clock_settime_moves_only_the_sandbox_clock", &[Link::Static], |v| {
        let bin = compile("settime", v.link);
        let host_before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let o = run_sandbox(v.platform, &bin, &Spec::default());
        let host_after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let inside: i64 = o.stdout_lines().last().and_then(|l| l.parse().ok()).unwrap_or(0);
        all([
            expect_status(&o, 0),
            expect_stdout_has_line(&o, "clock_settime = 0, realtime moved a day: yes"),
            expect_stdout_has_line(&o, "gettimeofday agrees: yes"),
            expect_stdout_has_line(&o, "vsyscall gettimeofday = 0, agrees: yes"),
            expect_stdout_has_line(&o, "vsyscall time agrees: yes"),
            expect_stdout_has_line(&o, "vsyscall getcpu agrees with the syscall: yes"),
            expect_stdout_has_line(&o, "after a clock set, readable: 1"),
            expect_stdout_has_line(&o, "read: ECANCELED"),
            expect_stdout_has_line(&o, "blocked reader woke with: ECANCELED"),
            expect_stdout_has_line(&o, "absolute realtime timerfd fires after the jump: yes"),
            expect_stdout_has_line(&o, "absolute realtime POSIX timer fires after the jump: yes"),
            expect_stdout_has_line(&o, "absolute clock_nanosleep returns after the jump: yes"),
            expect_stdout_has_line(&o, "sem_timedwait (a realtime futex timeout) times out after the jump: yes"),
            expect_stdout_has_line(&o, "a relative realtime timerfd does not move: yes"),
            if inside - host_after >= 86000 { Ok(()) } else { Err(format!("sandbox time {inside} not a day ahead of the host's {host_after}")) },
            if host_after - host_before < 60 { Ok(()) } else { Err("the host clock moved".into()) },
        ])
    });
}

/// A sandbox whose program sleeps uses (almost) no CPU: every Sentry thread sleeps.
#[test]
fn idle_sandbox_uses_no_cpu() {
    matrix("idle_sandbox_uses_no_cpu", &[Link::Static], |v| {
        let bin = compile("sleeper", v.link);
        let mut cmd = sandbox_command(v.platform, &[], &bin, &Spec::args(["5000"]));
        cmd.stdout(std::process::Stdio::null());
        let child = cmd.spawn().map_err(|e| e.to_string())?;
        let mut status = 0;
        // SAFETY: plain data filled in by wait4 for our own child.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waiting for our own child with valid pointers.
        let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
        if r < 0 {
            return Err("wait4 failed".into());
        }
        let cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
        // Start-up and teardown cost a few ms; sleeping 5 s (the measure) must add nothing.
        if cpu_ms < 50 { Ok(()) } else { Err(format!("a sandbox sleeping 5 s used {cpu_ms} ms of CPU")) }
    });
}

#[test]
fn cpu_time_accounting() {
    compare("cpu_time_accounting", "cputime", &Spec::default(), |o| {
        all([expect_status(o, 0), expect_stdout_has_line(o, "getrusage user+system >= 20 ms: yes"), expect_stdout_has_line(o, "a loop of system calls is system time (>= 10 ms): yes"), expect_stdout_has_line(o, "a loop without system calls is not system time: yes")])
    });
}

/// ITIMER_PROF/ITIMER_VIRTUAL count CPU time, and RLIMIT_CPU sends SIGXCPU then SIGKILL.
#[test]
fn cpu_time_timers_and_limits() {
    // Static only: each run burns two CPU seconds in its RLIMIT_CPU children.
    let check = |o: &Outcome| all([expect_status(o, 0), expect_stdout_has_line(o, "SIGPROF once, after >= 10 ms of CPU: yes"), expect_stdout_has_line(o, "hard RLIMIT_CPU kills: yes")]);
    matrix("cpu_time_timers_and_limits", &[Link::Static], |v| compare_one(v, "cpu_timers", &Spec::default(), &check));
}
