//! Runs hand-assembled code in a stub of each platform: syscalls come back as
//! events, faults as `Event::Fault`, memory mapped from the memory file is shared
//! with the Sentry, threads move between host threads, and interrupts stop a spin.

mod common;

use common::memfd;
use rvisor_platform::{by_name, CpuState, Event, Perms};

/// The next event that is not a cut-short switch (the contract: switch again).
fn next_event(ctx: &mut dyn rvisor_platform::Context, aspace: &std::sync::Arc<dyn rvisor_platform::AddressSpace>, cpu: &mut CpuState) -> Event {
    loop {
        match ctx.switch(aspace, cpu).unwrap() {
            Event::Interrupted => continue,
            e => return e,
        }
    }
}

/// Every platform this machine runs; one that cannot start fails the test.
const PLATFORMS: [&str; 3] = ["ptrace", "systrap", "kvm"];

#[test]
fn syscalls_and_faults_come_back_as_events() {
    for platform in PLATFORMS {
        syscalls_and_faults(platform);
    }
}

fn syscalls_and_faults(platform: &str) {
    let (fd, mem) = memfd();
    // mov eax, 110 (getppid); syscall; mov [0x500000], rax; mov eax, 60; syscall
    let code: &[u8] = &[0xb8, 110, 0, 0, 0, 0x0f, 0x05, 0x48, 0x89, 0x04, 0x25, 0x00, 0x00, 0x50, 0x00, 0xb8, 60, 0, 0, 0, 0x0f, 0x05];
    // SAFETY: writing into our own mapping.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), mem, code.len()) };
    let p = by_name(platform, fd).unwrap();
    let aspace = p.new_address_space().unwrap();
    let mut ctx = p.new_context();
    aspace.map(0x400000, 4096, 0, Perms { read: true, write: false, exec: true });
    let mut cpu = CpuState::default();
    cpu.regs.rip = 0x400000;
    assert_eq!(next_event(ctx.as_mut(), &aspace, &mut cpu), Event::Syscall);
    assert_eq!(cpu.syscall_nr(), 110);
    cpu.set_return(0x1234);
    // The store to 0x500000 faults: nothing is mapped there.
    match next_event(ctx.as_mut(), &aspace, &mut cpu) {
        Event::Fault { addr, signo, .. } => {
            assert_eq!(addr, 0x500000);
            assert_eq!(signo, libc::SIGSEGV);
        }
        e => panic!("unexpected {e:?}"),
    }
    aspace.map(0x500000, 4096, 4096, Perms { read: true, write: true, exec: false });
    // The store now lands in the memory file, which the Sentry sees.
    assert_eq!(next_event(ctx.as_mut(), &aspace, &mut cpu), Event::Syscall);
    assert_eq!(cpu.syscall_nr(), 60);
    let mut v = [0u8; 8];
    // SAFETY: reading our own mapping.
    unsafe { std::ptr::copy_nonoverlapping(mem.add(4096), v.as_mut_ptr(), 8) };
    assert_eq!(u64::from_le_bytes(v), 0x1234);
}

#[test]
fn threads_are_adopted_by_other_host_threads_and_interrupts_stop_a_spin() {
    for platform in PLATFORMS {
        threads_and_interrupts(platform);
    }
}

fn threads_and_interrupts(platform: &str) {
    let (fd, mem) = memfd();
    // 0x400000: mov eax, 39 (getpid); syscall; jmp 0x400000
    // 0x400010: jmp 0x400010 (spin)
    let code: &[u8] = &[0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7];
    let spin: &[u8] = &[0xeb, 0xfe];
    // SAFETY: writing into our own mapping.
    unsafe {
        std::ptr::copy_nonoverlapping(code.as_ptr(), mem, code.len());
        std::ptr::copy_nonoverlapping(spin.as_ptr(), mem.add(0x10), spin.len());
    }
    let p = by_name(platform, fd).unwrap();
    let aspace = p.new_address_space().unwrap();
    let mut ctx = p.new_context();
    aspace.map(0x400000, 4096, 0, Perms { read: true, write: false, exec: true });
    let mut cpu = CpuState::default();
    cpu.regs.rip = 0x400000;
    assert_eq!(next_event(ctx.as_mut(), &aspace, &mut cpu), Event::Syscall);
    let seed = ctx.new_thread(&aspace).unwrap();
    let (p2, a2) = (p.clone(), aspace.clone());
    let child = std::thread::spawn(move || {
        let mut c = p2.adopt(seed).unwrap();
        let mut cpu = CpuState::default();
        cpu.regs.rip = 0x400000;
        let first = c.switch(&a2, &mut cpu).unwrap();
        // Now spin until interrupted from the other thread.
        cpu.regs.rip = 0x400010;
        let (tx, rx) = std::sync::mpsc::channel();
        let kicker = c.interrupter();
        let k = std::thread::spawn(move || {
            rx.recv().unwrap();
            kicker.interrupt();
        });
        tx.send(()).unwrap();
        let second = c.switch(&a2, &mut cpu).unwrap();
        k.join().unwrap();
        (first, cpu.syscall_nr(), second)
    });
    let (first, _, second) = child.join().unwrap();
    assert_eq!(first, Event::Syscall);
    assert_eq!(second, Event::Interrupted, "{platform}");
    // The original thread still runs.
    assert_eq!(next_event(ctx.as_mut(), &aspace, &mut cpu), Event::Syscall);
    assert_eq!(cpu.syscall_nr(), 39);
    assert!(ctx.fpstate().unwrap().len() >= 576);
}

#[test]
fn a_new_address_space_starts_with_the_initial_fp_state() {
    for platform in PLATFORMS {
        fresh_fp_state(platform);
    }
}

/// One address space's thread leaves an odd MXCSR behind and ends; the first thread of
/// the next address space (on kvm, maybe the same VM and vCPU, reused) must find the
/// initial 0x1f80, as a new process on Linux does.
fn fresh_fp_state(platform: &str) {
    let (fd, mem) = memfd();
    // 0x400000: ldmxcsr [0x400100]; mov eax, 39; syscall
    // 0x400010: stmxcsr [0x500000]; mov eax, 39; syscall
    let set: &[u8] = &[0x0f, 0xae, 0x14, 0x25, 0x00, 0x01, 0x40, 0x00, 0xb8, 39, 0, 0, 0, 0x0f, 0x05];
    let get: &[u8] = &[0x0f, 0xae, 0x1c, 0x25, 0x00, 0x00, 0x50, 0x00, 0xb8, 39, 0, 0, 0, 0x0f, 0x05];
    // SAFETY: writing into our own mapping.
    unsafe {
        std::ptr::copy_nonoverlapping(set.as_ptr(), mem, set.len());
        std::ptr::copy_nonoverlapping(get.as_ptr(), mem.add(0x10), get.len());
        std::ptr::copy_nonoverlapping(0x7f80u32.to_le_bytes().as_ptr(), mem.add(0x100), 4);
    }
    let p = by_name(platform, fd).unwrap();
    let run = |rip: u64| {
        let aspace = p.new_address_space().unwrap();
        aspace.map(0x400000, 4096, 0, Perms { read: true, write: false, exec: true });
        aspace.map(0x500000, 4096, 4096, Perms { read: true, write: true, exec: false });
        let mut ctx = p.new_context();
        let mut cpu = CpuState::default();
        cpu.regs.rip = rip;
        assert_eq!(next_event(ctx.as_mut(), &aspace, &mut cpu), Event::Syscall, "{platform}");
        ctx.release();
    };
    run(0x400000);
    run(0x400010);
    let mut v = [0u8; 4];
    // SAFETY: reading our own mapping.
    unsafe { std::ptr::copy_nonoverlapping(mem.add(4096), v.as_mut_ptr(), 4) };
    assert_eq!(u32::from_le_bytes(v), 0x1f80, "{platform}: MXCSR of a new address space's first thread");
}

#[test]
fn a_new_address_space_starts_in_64_bit_mode() {
    for platform in PLATFORMS {
        fresh_mode(platform);
    }
}

/// One address space's thread far-jumps into a 32-bit code segment (Linux's user CS32,
/// 0x23) and is interrupted spinning there, and its address space ends; the first thread
/// of the next address space (on kvm, maybe the same VM and vCPU, reused) must run
/// 64-bit code.
fn fresh_mode(platform: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (fd, mem) = memfd();
    // 0x400000: push 0x23; push 0x400010; retfq   0x400010 (32-bit): jmp .
    // 0x400020: mov eax, 39; syscall
    let to32: &[u8] = &[0x6a, 0x23, 0x68, 0x10, 0x00, 0x40, 0x00, 0x48, 0xcb];
    let getpid: &[u8] = &[0xb8, 39, 0, 0, 0, 0x0f, 0x05];
    // SAFETY: writing into our own mapping.
    unsafe {
        std::ptr::copy_nonoverlapping(to32.as_ptr(), mem, to32.len());
        std::ptr::copy_nonoverlapping([0xebu8, 0xfe].as_ptr(), mem.add(0x10), 2);
        std::ptr::copy_nonoverlapping(getpid.as_ptr(), mem.add(0x20), getpid.len());
    }
    let p = by_name(platform, fd).unwrap();
    let new_space = || {
        let aspace = p.new_address_space().unwrap();
        aspace.map(0x400000, 4096, 0, Perms { read: true, write: false, exec: true });
        aspace.map(0x500000, 4096, 4096, Perms { read: true, write: true, exec: false });
        aspace
    };
    {
        let aspace = new_space();
        let mut ctx = p.new_context();
        let mut cpu = CpuState::default();
        (cpu.regs.rip, cpu.regs.rsp) = (0x400000, 0x501000);
        let (kicker, done) = (ctx.interrupter(), std::sync::Arc::new(AtomicBool::new(false)));
        let d = done.clone();
        let kicks = std::thread::spawn(move || {
            while !d.load(Ordering::Acquire) {
                kicker.interrupt();
                std::thread::yield_now();
            }
        });
        // Until a kick finds it spinning in the 32-bit code.
        while cpu.regs.rip != 0x400010 {
            assert_eq!(ctx.switch(&aspace, &mut cpu).unwrap(), Event::Interrupted, "{platform}");
        }
        done.store(true, Ordering::Release);
        kicks.join().unwrap();
        ctx.release();
    }
    let aspace = new_space();
    let mut ctx = p.new_context();
    let mut cpu = CpuState::default();
    (cpu.regs.rip, cpu.regs.rsp) = (0x400020, 0x501000);
    let event = next_event(ctx.as_mut(), &aspace, &mut cpu);
    assert_eq!(event, Event::Syscall, "{platform}");
    assert_eq!((cpu.syscall_nr(), cpu.compat_syscall == Some(true)), (39, false), "{platform}: a 64-bit getpid");
}

#[test]
fn a_fault_in_32_bit_code_resumes_there() {
    for platform in PLATFORMS {
        fault_in_32_bit_code(platform);
    }
}

/// 32-bit code (Linux's user CS32) that faults on a store goes on in 32-bit mode once
/// the page is mapped: the store lands, then an int3 (SIGTRAP; SIGILL on PVM, which
/// raises #UD for it in a 32-bit segment) stops it. Resumed in 64-bit mode instead, the
/// same bytes would decode as another instruction.
fn fault_in_32_bit_code(platform: &str) {
    let (fd, mem) = memfd();
    // 0x400000: push 0x23; push 0x400010; retfq
    // 0x400010 (32-bit): push 0x2b; pop ds (a 64-bit process's DS may be null, which
    // 32-bit code cannot store through); mov eax, 0x11223344; mov [0x500000], eax; int3
    let to32: &[u8] = &[0x6a, 0x23, 0x68, 0x10, 0x00, 0x40, 0x00, 0x48, 0xcb];
    let code32: &[u8] = &[0x6a, 0x2b, 0x1f, 0xb8, 0x44, 0x33, 0x22, 0x11, 0xa3, 0x00, 0x00, 0x50, 0x00, 0xcc];
    // SAFETY: writing into our own mapping.
    unsafe {
        std::ptr::copy_nonoverlapping(to32.as_ptr(), mem, to32.len());
        std::ptr::copy_nonoverlapping(code32.as_ptr(), mem.add(0x10), code32.len());
    }
    let p = by_name(platform, fd).unwrap();
    let aspace = p.new_address_space().unwrap();
    aspace.map(0x400000, 4096, 0, Perms { read: true, write: false, exec: true });
    aspace.map(0x400000 + 4096, 4096, 8192, Perms { read: true, write: true, exec: false });
    let mut ctx = p.new_context();
    let mut cpu = CpuState::default();
    (cpu.regs.rip, cpu.regs.rsp) = (0x400000, 0x402000);
    let mut next = |cpu: &mut CpuState| next_event(ctx.as_mut(), &aspace, cpu);
    match next(&mut cpu) {
        Event::Fault { addr, .. } => assert_eq!(addr, 0x500000, "{platform}"),
        e => panic!("{platform}: the 32-bit store gave {e:?}"),
    }
    aspace.map(0x500000, 4096, 4096, Perms { read: true, write: true, exec: false });
    let e = next(&mut cpu);
    assert!(matches!(e, Event::Signal { signo: libc::SIGTRAP | libc::SIGILL, .. }), "{platform}: after the fault, {e:?} at {:#x}", cpu.regs.rip);
    let mut v = [0u8; 4];
    // SAFETY: reading our own mapping.
    unsafe { std::ptr::copy_nonoverlapping(mem.add(4096), v.as_mut_ptr(), 4) };
    assert_eq!(u32::from_le_bytes(v), 0x11223344, "{platform}: the 32-bit store");
}
