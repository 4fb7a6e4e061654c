//! Runs hand-assembled code in a systrap stub: syscalls come back as events, faults
//! as `Event::Fault`, and memory mapped from the memory file is shared with the Sentry.

use rvisor_platform::{by_name, CpuState, Event, Perms};

fn memfd() -> (i32, *mut u8) {
    // SAFETY: test-only setup of a 1 MiB shared memfd mapping.
    unsafe {
        let fd = libc::memfd_create(c"test".as_ptr(), 0);
        assert!(fd >= 0);
        assert_eq!(libc::ftruncate(fd, 1 << 20), 0);
        let p = libc::mmap(std::ptr::null_mut(), 1 << 20, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
        assert_ne!(p, libc::MAP_FAILED);
        (fd, p as *mut u8)
    }
}

#[test]
fn syscalls_and_faults_come_back_as_events() {
    let (fd, mem) = memfd();
    // mov eax, 110 (getppid); syscall; mov [0x500000], rax; mov eax, 60; syscall
    let code: &[u8] = &[0xb8, 110, 0, 0, 0, 0x0f, 0x05, 0x48, 0x89, 0x04, 0x25, 0x00, 0x00, 0x50, 0x00, 0xb8, 60, 0, 0, 0, 0x0f, 0x05];
    // SAFETY: writing into our own mapping.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), mem, code.len()) };
    let p = by_name("systrap", fd).unwrap();
    let aspace = p.new_address_space().unwrap();
    let mut ctx = p.new_context();
    aspace.map(0x400000, 4096, 0, Perms { read: true, write: false, exec: true });
    let mut cpu = CpuState::default();
    cpu.regs.rip = 0x400000;
    assert_eq!(ctx.switch(&aspace, &mut cpu).unwrap(), Event::Syscall);
    assert_eq!(cpu.syscall_nr(), 110);
    cpu.set_return(0x1234);
    // The store to 0x500000 faults: nothing is mapped there.
    match ctx.switch(&aspace, &mut cpu).unwrap() {
        Event::Fault { addr, signo, .. } => {
            assert_eq!(addr, 0x500000);
            assert_eq!(signo, libc::SIGSEGV);
        }
        e => panic!("unexpected {e:?}"),
    }
    aspace.map(0x500000, 4096, 4096, Perms { read: true, write: true, exec: false });
    // The store now lands in the memory file, which the Sentry sees.
    assert_eq!(ctx.switch(&aspace, &mut cpu).unwrap(), Event::Syscall);
    assert_eq!(cpu.syscall_nr(), 60);
    let mut v = [0u8; 8];
    // SAFETY: reading our own mapping.
    unsafe { std::ptr::copy_nonoverlapping(mem.add(4096), v.as_mut_ptr(), 8) };
    assert_eq!(u64::from_le_bytes(v), 0x1234);
}

#[test]
fn threads_are_adopted_by_other_host_threads_and_interrupts_stop_a_spin() {
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
    let p = by_name("systrap", fd).unwrap();
    let aspace = p.new_address_space().unwrap();
    let mut ctx = p.new_context();
    aspace.map(0x400000, 4096, 0, Perms { read: true, write: false, exec: true });
    let mut cpu = CpuState::default();
    cpu.regs.rip = 0x400000;
    assert_eq!(ctx.switch(&aspace, &mut cpu).unwrap(), Event::Syscall);
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
    assert_eq!(second, Event::Interrupted);
    // The original thread still runs.
    assert_eq!(ctx.switch(&aspace, &mut cpu).unwrap(), Event::Syscall);
    assert_eq!(cpu.syscall_nr(), 39);
    assert!(ctx.fpstate().unwrap().len() >= 576);
}

/// A platform with one code page mapped at 0x400000 and a data page at 0x500000.
fn setup(code: &[u8]) -> (std::sync::Arc<dyn rvisor_platform::Platform>, std::sync::Arc<dyn rvisor_platform::AddressSpace>, *mut u8) {
    let (fd, mem) = memfd();
    // SAFETY: writing into our own mapping.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), mem, code.len()) };
    let p = by_name("systrap", fd).unwrap();
    let aspace = p.new_address_space().unwrap();
    aspace.map(0x400000, 4096, 0, Perms { read: true, write: false, exec: true });
    aspace.map(0x500000, 4096, 4096, Perms { read: true, write: true, exec: false });
    (p, aspace, mem)
}

#[test]
fn fs_and_gs_bases_reach_the_app_and_come_back() {
    // mov rax, fs:[8]; syscall; mov rax, gs:[16]; syscall; wrfsbase is not used: the
    // app's base changes come from the Sentry (arch_prctl) and are read back.
    let code: &[u8] = &[
        0x64, 0x48, 0x8b, 0x04, 0x25, 0x08, 0, 0, 0, // mov rax, fs:[8]
        0x0f, 0x05,
        0x65, 0x48, 0x8b, 0x04, 0x25, 0x10, 0, 0, 0, // mov rax, gs:[16]
        0x0f, 0x05,
    ];
    let (p, aspace, mem) = setup(code);
    // SAFETY: the data page of our own mapping.
    unsafe {
        std::ptr::write_unaligned(mem.add(4096 + 0x108) as *mut u64, 0x1111);
        std::ptr::write_unaligned(mem.add(4096 + 0x210) as *mut u64, 0x2222);
    }
    let mut ctx = p.new_context();
    let mut cpu = CpuState::default();
    cpu.regs.rip = 0x400000;
    cpu.regs.fs_base = 0x500100;
    cpu.regs.gs_base = 0x500200;
    assert_eq!(ctx.switch(&aspace, &mut cpu).unwrap(), Event::Syscall);
    assert_eq!(cpu.syscall_nr(), 0x1111);
    assert_eq!(cpu.regs.fs_base, 0x500100);
    assert_eq!(ctx.switch(&aspace, &mut cpu).unwrap(), Event::Syscall);
    assert_eq!(cpu.syscall_nr(), 0x2222);
    assert_eq!(cpu.regs.gs_base, 0x500200);
}

#[test]
fn fp_state_is_loaded_and_read_back() {
    // movq rax, xmm0; syscall; mov eax, 0x5678; movq xmm1, rax; mov eax, 39; syscall
    let code: &[u8] = &[
        0x66, 0x48, 0x0f, 0x7e, 0xc0, // movq rax, xmm0
        0x0f, 0x05,
        0xb8, 0x78, 0x56, 0, 0, // mov eax, 0x5678
        0x66, 0x48, 0x0f, 0x6e, 0xc8, // movq xmm1, rax
        0xb8, 39, 0, 0, 0, // mov eax, 39
        0x0f, 0x05,
    ];
    let (p, aspace, _) = setup(code);
    let mut ctx = p.new_context();
    let mut cpu = CpuState::default();
    cpu.regs.rip = 0x400000;
    // First run: a fresh thread starts with the initial FP state (xmm0 = 0).
    assert_eq!(ctx.switch(&aspace, &mut cpu).unwrap(), Event::Syscall);
    assert_eq!(cpu.syscall_nr(), 0);
    let mut img = ctx.fpstate().unwrap();
    assert!(img.len() >= 576);
    assert_eq!(u16::from_le_bytes([img[0], img[1]]), 0x37f, "x87 control word of the initial state");
    // Load xmm0 = 0xabcd through an image, as sigreturn does.
    img[160..168].copy_from_slice(&0xabcdu64.to_le_bytes());
    cpu.fpstate = Some(img);
    cpu.regs.rip = 0x400000;
    assert_eq!(ctx.switch(&aspace, &mut cpu).unwrap(), Event::Syscall);
    assert_eq!(cpu.syscall_nr(), 0xabcd);
    assert_eq!(ctx.switch(&aspace, &mut cpu).unwrap(), Event::Syscall);
    assert_eq!(cpu.syscall_nr(), 39);
    let img = ctx.fpstate().unwrap();
    assert_eq!(u64::from_le_bytes(img[176..184].try_into().unwrap()), 0x5678, "xmm1 as the app left it");
}

#[test]
fn released_threads_are_reused_and_exit_cleanly() {
    // mov eax, 39; syscall; jmp back
    let code: &[u8] = &[0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7];
    let (p, aspace, _) = setup(code);
    let mut ctx = p.new_context();
    let mut cpu = CpuState::default();
    cpu.regs.rip = 0x400000;
    assert_eq!(ctx.switch(&aspace, &mut cpu).unwrap(), Event::Syscall);
    for _ in 0..20 {
        let seed = ctx.new_thread(&aspace).unwrap();
        let (p2, a2) = (p.clone(), aspace.clone());
        let r = std::thread::spawn(move || {
            let mut c = p2.adopt(seed).unwrap();
            let mut cpu = CpuState::default();
            cpu.regs.rip = 0x400000;
            let e = c.switch(&a2, &mut cpu).unwrap();
            c.release();
            (e, cpu.syscall_nr())
        })
        .join()
        .unwrap();
        assert_eq!(r, (Event::Syscall, 39));
    }
    // A seed never adopted is let go too.
    drop(ctx.new_thread(&aspace).unwrap());
    assert_eq!(ctx.switch(&aspace, &mut cpu).unwrap(), Event::Syscall);
}
