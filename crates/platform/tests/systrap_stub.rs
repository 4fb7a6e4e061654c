//! systrap-only stub tests: segment bases and FP state cross the signal frame,
//! and released stub threads are reused. (`stub_events.rs` holds the tests every
//! platform shares.)

mod common;

use common::memfd;
use rvisor_platform::{by_name, CpuState, Event, Perms};

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
